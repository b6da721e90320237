//! The durable partition log, stored in Apache Kafka's own on-disk layout.
//!
//! [`PartitionLog`] is one partition's log: appends assign offsets and write record batches
//! byte for byte, reads return whole stored batches, ListOffsets lookups go through the
//! indexes, retention deletes old segments, compaction keeps the latest record per key
//! (`compaction.rs`), transactions (KIP-98) hold back the last stable offset and record their
//! aborts in `.txnindex` files, and opening a log recovers it after a crash.
//! This layer does plain blocking `std::fs` I/O and never reads the clock: every
//! time-dependent operation takes `now_ms` (except the log cleaner's I/O throttle, which
//! measures elapsed time with `Instant`; its decisions are pure, see `throttler.rs`). The
//! network layer runs it on a blocking-safe path, typically behind a `Mutex`/`RwLock`
//! (`PartitionLog` is `Send + Sync`), and maps [`StorageError`]s to Kafka error codes with
//! [`StorageError::error_code`].
//!
//! # On-disk layout
//!
//! ```text
//! <data dir>/
//!   <topic>-<partition>/                 one directory per partition (partition_dir)
//!     00000000000000000000.log           record batches, exactly as Kafka stores them
//!     00000000000000000000.index         offset index: 8-byte entries
//!     00000000000000000000.timeindex     time index: 12-byte entries
//!     00000000000000000000.txnindex      aborted transactions whose marker is in the
//!                                        segment: 34-byte entries (only if it has any)
//!     00000000000000001234.log           next segment, base offset 1234
//!     00000000000000001234.index
//!     00000000000000001234.timeindex
//!     *.deleted                          segments awaiting removal (file.delete.delay.ms)
//!     *.cleaned, *.swap                  log cleaner output being written / swapped in
//!     .kafka_cleanshutdown               present only while the log is cleanly closed
//!     log-start-offset-checkpoint        "0\n<log start offset>\n" (after deletions)
//!   cleaner-offset-checkpoint            "0\n<n>\n<topic> <partition> <offset>\n"... (the
//!                                        broker writes it; see compaction.rs)
//! ```
//!
//! * **Segments** are named by their base offset (the first offset they may hold) in 20
//!   zero-padded digits. The `.log` file is a plain concatenation of record batches v2
//!   (magic 2), each `12 + batchLength` bytes, with the broker-assigned `baseOffset` and
//!   `partitionLeaderEpoch` in their headers. No other framing exists, so a Kafka broker
//!   or `kafka-dump-log` can read these files.
//! * **`.index`**: entries of `relativeOffset: i32 BE, position: i32 BE`: a batch's last
//!   offset minus the segment's base offset, and the batch's byte position in the `.log`.
//!   An entry is added before a batch when more than `index.interval.bytes` were appended
//!   since the previous entry (Kafka's rule), so lookups binary-search the index and then
//!   scan at most about `index.interval.bytes` of batch headers.
//! * **`.timeindex`**: entries of `timestamp: i64 BE, relativeOffset: i32 BE`, appended at
//!   the same moments as offset index entries when the segment's largest batch
//!   `maxTimestamp` so far grew: the timestamp and the last offset of the batch holding it.
//!   The final entry, added when the segment is rolled, closed or recovered, holds the
//!   segment's largest timestamp.
//! * **`.txnindex`** (Kafka's `TransactionIndex`, KIP-98): one entry per aborted transaction
//!   whose abort marker the segment holds, in marker order: `version: i16 BE` (0),
//!   `producerId: i64`, `firstOffset: i64` (the transaction's first batch in this
//!   partition), `lastOffset: i64` (the marker), `lastStableOffset: i64` (the LSO once it
//!   completed: the first offset of the earliest other open transaction, else `lastOffset +
//!   1`), all big-endian. Created on the first entry; absent for a segment without aborted
//!   transactions. Kept in memory too; `read_committed` fetches get their aborted
//!   transactions from it (`txn_index.rs`).
//! * Index files hold exactly their valid entries (no preallocation); an index with the
//!   wrong size, non-increasing entries or entries pointing outside the log is rebuilt.
//!   A `.txnindex` is checked on every open against the aborted transactions the producer
//!   state rebuild meets: missing, cut or damaged entries are rebuilt from the markers,
//!   entries past a truncated tail are dropped; the file's entries are otherwise kept (after
//!   compaction the log alone no longer gives an aborted transaction's first offset).
//!
//! # Invariants
//!
//! * Segment base offsets strictly increase; every offset in a segment is below the next
//!   segment's base offset; batches within a segment have increasing offsets; the last
//!   segment is the *active* one, the only one appended to.
//! * `log start offset <= high watermark <= log end offset`. Reads below the log start
//!   offset or above the log end offset are `OffsetOutOfRange`; reads never return a batch
//!   reaching the high watermark passed in.
//! * After [`PartitionLog::open`], every byte of every `.log` file up to its size is a
//!   whole batch that passed validation (when recovered: framing, magic, offsets, CRC).
//!   Recovery truncates at the first bad batch and deletes all later segments, so nothing
//!   after the first bad batch is ever served.
//! * Retention may expire the active segment (never an empty one); a new empty active
//!   segment is rolled first, so a log always has at least one segment.
//! * Idempotent producers (KIP-98, KIP-360): every append of batches with a producer id is
//!   checked against the partition's producer state (epoch, last 5 batches per producer id)
//!   before anything is written, and the state is updated only after the write, under the
//!   same `&mut` borrow. Duplicates append nothing and answer with the original offsets. The
//!   state is rebuilt from batch headers (and transaction markers) when the log is opened
//!   (`producer_state.rs`).
//! * Transactions (KIP-98): a transactional batch opens its producer's transaction at its
//!   first offset; the transaction coordinator's marker
//!   ([`PartitionLog::append_txn_marker`]) closes it (an abort adds a `.txnindex` entry to the
//!   segment holding the marker). The **last stable offset** is the first offset of the
//!   earliest open transaction (at least the log start offset), capped by the high
//!   watermark; `read_committed` reads stop before it, and so do compaction and
//!   `read_committed` ListOffsets. `log start offset <= LSO <= high watermark`. Open
//!   transactions and coordinator epochs are rebuilt from the log on open, so a restart keeps
//!   the LSO where it was.
//! * Compaction (`cleanup.policy=compact`, `compaction.rs`) rewrites only inactive segments
//!   below the first uncleanable offset, never changes an offset (batches keep their base
//!   offset and `lastOffsetDelta`, so producer state rebuilt from headers is unchanged), and
//!   swaps cleaned segments in through `.cleaned` and `.swap` files that recovery completes
//!   or discards. Reads at an offset a cleaning removed return the next batch.
//! * Nothing is fsynced except on roll (the old segment), on [`PartitionLog::close`], on
//!   [`PartitionLog::flush`], and as `flush.messages`/`flush.ms` require (default never):
//!   like Kafka, durability comes from replication and the page cache. A crash therefore
//!   loses at most the unflushed tail, which recovery truncates cleanly.
//!
//! # Left out
//!
//! Producer state `.snapshot` files (the producer state of `producer_state` is rebuilt from
//! the log on open instead), KIP-890 transaction verification and transaction version 2
//! markers, the removal of transaction markers by the log cleaner (`compaction.rs`), the
//! leader epoch checkpoint, replication appends with pre-assigned offsets, tiered
//! storage, `segment.jitter.ms`, record-level validation (other than keys on compacted
//! topics: `message.timestamp.*.max.ms`, recompression to `compression.type`), and index
//! preallocation or memory mapping (indexes are held in memory).

mod batch;
mod checkpoint;
mod compaction;
mod config;
mod error;
mod file;
mod index;
mod log;
mod offset_map;
mod producer_state;
mod recovery;
mod retention;
mod segment;
pub mod throttler;
mod time_index;
mod txn_index;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod txn_tests;

use std::fs;
use std::path::{Path, PathBuf};

pub(crate) use compaction::{abort_cleaning, compact_unlocked};
pub use compaction::{
    read_cleaner_checkpoints, write_cleaner_checkpoints, CleanableRange, CleanerConfig,
    CompactionOutcome, CLEANER_CHECKPOINT_FILE,
};
pub use config::{CleanupPolicy, ConfigError, LogConfig, MessageTimestampType};
pub use error::{Result, StorageError};
pub(crate) use file::recycle as recycle_read_buffer;
pub use log::{
    AbortedTxn, AppendInfo, PartitionLog, ReadResult, TimestampOffset, TxnMarker,
    EARLIEST_LOCAL_TIMESTAMP, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP,
};
pub use retention::{RetentionOutcome, DELETE_UP_TO_HIGH_WATERMARK};

/// The directory name of a partition: `<topic>-<partition>`, as Kafka names it.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// The directory of a partition under `data_dir`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(partition_dir_name(topic, partition))
}

/// Splits a partition directory name into topic and partition; `None` for other names
/// (including Kafka's `-delete`, `-future` and `-stray` directories, whose suffix is not a
/// partition number).
pub fn parse_partition_dir_name(name: &str) -> Option<(String, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic.to_string(), partition.parse().ok()?))
}

/// A partition directory found under the data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionDir {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The directory.
    pub path: PathBuf,
}

/// Lists the partition directories under `data_dir` (for opening every log at startup),
/// sorted by topic and partition. A missing `data_dir` has none.
///
/// # Errors
/// [`StorageError::Io`] if the directory cannot be listed.
pub fn list_partition_dirs(data_dir: &Path) -> Result<Vec<PartitionDir>> {
    let entries = match fs::read_dir(data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io("list", data_dir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StorageError::io("list", data_dir))?;
        let is_dir = entry
            .file_type()
            .map_err(StorageError::io("stat", &entry.path()))?
            .is_dir();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let (true, Some((topic, partition))) = (is_dir, parse_partition_dir_name(&name)) {
            found.push(PartitionDir {
                topic,
                partition,
                path: entry.path(),
            });
        }
    }
    found.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_util::TempDir;

    #[test]
    fn partition_dir_names() {
        assert_eq!(partition_dir_name("orders", 3), "orders-3");
        assert_eq!(
            parse_partition_dir_name("my-topic-12"),
            Some(("my-topic".to_string(), 12))
        );
        assert_eq!(parse_partition_dir_name("orders"), None);
        assert_eq!(parse_partition_dir_name("-1"), None);
        assert_eq!(parse_partition_dir_name("orders-"), None);
        assert_eq!(parse_partition_dir_name("orders-0.abc123-delete"), None);
        assert_eq!(
            parse_partition_dir_name("orders--1"),
            Some(("orders-".to_string(), 1))
        );
    }

    #[test]
    fn lists_partition_dirs() {
        let data = TempDir::new();
        assert!(list_partition_dirs(&data.path().join("missing"))
            .unwrap()
            .is_empty());
        for name in ["b-1", "a-10", "a-2", "x.y-0.1234-delete"] {
            fs::create_dir(data.path().join(name)).unwrap();
        }
        fs::write(data.path().join("c-0"), b"not a dir").unwrap();
        fs::write(data.path().join("meta.properties"), b"").unwrap();
        let dirs = list_partition_dirs(data.path()).unwrap();
        let names: Vec<(String, i32)> = dirs
            .iter()
            .map(|d| (d.topic.clone(), d.partition))
            .collect();
        assert_eq!(
            names,
            vec![("a".into(), 2), ("a".into(), 10), ("b".into(), 1)]
        );
        assert_eq!(dirs[0].path, partition_dir(data.path(), "a", 2));
    }

    #[test]
    fn partition_log_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PartitionLog>();
        assert_send_sync::<StorageError>();
    }
}
