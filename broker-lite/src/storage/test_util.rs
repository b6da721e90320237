//! Test helpers: temporary directories and record batches built with `kafka-wire`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{BatchOptions, RecordBatch, RecordBatchBuilder};

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "broker-lite-storage-{}-{}-{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A plain batch (base offset 0, as a producer sends it) of `(timestamp, value)` records.
pub(crate) fn batch(records: &[(i64, &str)]) -> BytesMut {
    batch_with(BatchOptions::default(), records)
}

/// A batch with the given options.
pub(crate) fn batch_with(opts: BatchOptions, records: &[(i64, &str)]) -> BytesMut {
    let mut builder = RecordBatchBuilder::new(opts);
    for (ts, value) in records {
        builder
            .append(*ts, None, Some(value.as_bytes()), &[])
            .expect("append record");
    }
    BytesMut::from(&builder.finish().expect("finish batch")[..])
}

/// A batch of `count` records, all with timestamp `ts`, values `v0`, `v1`, ...
pub(crate) fn batch_of(count: usize, ts: i64) -> BytesMut {
    let values: Vec<String> = (0..count).map(|i| format!("v{i}")).collect();
    let records: Vec<(i64, &str)> = values.iter().map(|v| (ts, v.as_str())).collect();
    batch(&records)
}

/// Decodes fetched bytes into `(offset, timestamp, value)` for every record, checking every
/// batch's CRC and that the bytes hold only whole batches.
pub(crate) fn decode(bytes: &Bytes) -> Vec<(i64, i64, String)> {
    let mut buf = bytes.clone();
    let mut out = Vec::new();
    while !buf.is_empty() {
        let batch = RecordBatch::decode(&mut buf).expect("whole batch");
        batch.verify_crc().expect("valid CRC");
        for record in batch.records(1 << 24).expect("records") {
            let record = record.expect("record");
            let value = record
                .value
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            out.push((record.offset, record.timestamp, value));
        }
    }
    out
}

/// The offsets of [`decode`].
pub(crate) fn offsets(bytes: &Bytes) -> Vec<i64> {
    decode(bytes).into_iter().map(|(o, _, _)| o).collect()
}
