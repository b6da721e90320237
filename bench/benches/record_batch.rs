//! Record batch v2 encode/decode throughput (`kafka_wire::records`).
//!
//! Batches of 1000 records, each with a 10-byte key and a 100-byte value (text-like, so the
//! codecs have something to compress), built with every codec. Byte throughput is counted in
//! *uncompressed* batch bytes for every codec, so the figures are comparable; a second group
//! reports records per second.
//!
//! Run: `cargo bench -p kafka-bench --bench record_batch -- --warm-up-time 1 --measurement-time 3`
//!
//! On a shared, busy machine set `KAFKA_BENCH_CPU_TIME=1` to measure the benchmark thread's
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`, Unix only) instead of wall-clock time, so that time
//! spent descheduled while other processes run is not counted.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput};
use kafka_wire::records::{BatchOptions, Compression, RecordBatch, RecordBatchBuilder};

const RECORDS: usize = 1000;
const KEY_LEN: usize = 10;
const VALUE_LEN: usize = 100;
const TS: i64 = 1_763_683_200_000;

/// Deterministic, moderately compressible payloads.
fn payloads() -> Vec<(Vec<u8>, Vec<u8>)> {
    const WORDS: &[&str] = &[
        "order", "user", "id", "status", "created", "shipped", "amount", "EUR", "true", "false",
        "null", "item", "sku", "qty", "price", "region", "eu-west", "us-east",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..RECORDS)
        .map(|i| {
            let key = format!("key-{i:06}").into_bytes();
            assert_eq!(key.len(), KEY_LEN);
            let mut value = Vec::with_capacity(VALUE_LEN);
            while value.len() < VALUE_LEN {
                let r = next();
                value.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
                value.push(b':');
                value.extend_from_slice(format!("{}", (r >> 20) % 10_000).as_bytes());
                value.push(b',');
            }
            value.truncate(VALUE_LEN);
            (key, value)
        })
        .collect()
}

fn build(codec: Compression, data: &[(Vec<u8>, Vec<u8>)], buf: BytesMut) -> Bytes {
    let mut b = RecordBatchBuilder::with_buffer(
        BatchOptions {
            compression: codec,
            producer_id: 1,
            producer_epoch: 0,
            base_sequence: 0,
            ..BatchOptions::default()
        },
        buf,
    );
    for (i, (k, v)) in data.iter().enumerate() {
        b.append(TS + i as i64, Some(k), Some(v), &[]).unwrap();
    }
    b.finish().unwrap()
}

/// Decodes every record and touches key/value lengths.
fn decode(bytes: &Bytes, verify_crc: bool) -> usize {
    let mut buf = bytes.clone();
    let batch = RecordBatch::decode(&mut buf).unwrap();
    if verify_crc {
        batch.verify_crc().unwrap();
    }
    let mut total = 0usize;
    for r in batch.records(16 << 20).unwrap() {
        let r = r.unwrap();
        total += r.key.map_or(0, |k| k.len()) + r.value.map_or(0, |v| v.len());
    }
    total
}

/// Same, with borrowed keys and values (`RecordIter::next_borrowed`).
fn decode_borrowed(bytes: &Bytes) -> usize {
    let mut buf = bytes.clone();
    let batch = RecordBatch::decode(&mut buf).unwrap();
    let mut records = batch.records(16 << 20).unwrap();
    let mut total = 0usize;
    while let Some(r) = records.next_borrowed() {
        let r = r.unwrap();
        total += r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len);
    }
    total
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let data = payloads();
    let uncompressed_len = build(Compression::None, &data, BytesMut::new()).len() as u64;

    for (group_name, throughput) in [
        ("record_batch_bytes", Throughput::Bytes(uncompressed_len)),
        ("record_batch_records", Throughput::Elements(RECORDS as u64)),
    ] {
        let mut g = c.benchmark_group(group_name);
        g.throughput(throughput);
        for codec in Compression::ALL {
            // Encode, recycling the builder buffer as a producer pool would.
            let mut spare = Some(BytesMut::with_capacity(uncompressed_len as usize + 1024));
            g.bench_function(BenchmarkId::new("encode", codec.name()), |b| {
                b.iter(|| {
                    let buf = spare.take().unwrap_or_default();
                    let out = build(codec, black_box(&data), buf);
                    let n = out.len();
                    spare = out.try_into_mut().ok();
                    n
                })
            });
            let encoded = build(codec, &data, BytesMut::new());
            g.bench_function(BenchmarkId::new("decode", codec.name()), |b| {
                b.iter(|| decode(black_box(&encoded), false))
            });
            g.bench_function(BenchmarkId::new("decode+crc", codec.name()), |b| {
                b.iter(|| decode(black_box(&encoded), true))
            });
            g.bench_function(BenchmarkId::new("decode_borrowed", codec.name()), |b| {
                b.iter(|| decode_borrowed(black_box(&encoded)))
            });
        }
        g.finish();
    }

    // Sizes, for the report.
    for codec in Compression::ALL {
        let n = build(codec, &data, BytesMut::new()).len();
        eprintln!("batch size {codec}: {n} bytes (uncompressed {uncompressed_len})");
    }
}

/// Criterion measurement of the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`),
/// reported like wall time.
#[cfg(unix)]
struct ThreadCpuTime;

#[cfg(unix)]
static WALL_TIME: WallTime = WallTime;

#[cfg(unix)]
impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}

#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn main() {
    #[cfg(unix)]
    if std::env::var_os("KAFKA_BENCH_CPU_TIME").is_some() {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args();
        bench(&mut c);
        c.final_summary();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
