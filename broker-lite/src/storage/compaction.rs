//! Log compaction (`cleanup.policy=compact`), following Kafka's `LogCleaner`.
//!
//! # What is cleaned
//!
//! The log is split at the cleaner checkpoint (the *first dirty offset*, persisted by the
//! broker in the data directory's `cleaner-offset-checkpoint`, Kafka's format) into a *clean*
//! part, already compacted, and a *dirty* part. The dirty part ends at the *first uncleanable
//! offset*: the base offset of the segment holding the smallest of the active segment's base
//! offset, the last stable offset (KIP-98: at most the high watermark, and before the first
//! batch of any open transaction), and (with `min.compaction.lag.ms`) the base offset of the
//! first segment whose newest record is younger than the lag. **The active segment is never
//! cleaned**, nor is anything at or after the first uncleanable offset.
//!
//! A pass ([`PartitionLog::maybe_compact`]) runs when the dirty ratio — bytes of the dirty
//! segments over bytes of the clean and dirty segments — is **above**
//! `min.cleanable.dirty.ratio` (Kafka compares with `>`), when the oldest dirty batch is older
//! than `max.compaction.lag.ms`, or when tombstones kept by an earlier pass have reached their
//! delete horizon. [`PartitionLog::compact_now`] runs one regardless of the ratio. The broker
//! runs passes through [`compact_unlocked`] (below: without the partition's lock).
//!
//! # How
//!
//! 1. The *offset map* (`offset_map.rs`, Kafka's `SkimpyOffsetMap`): the MD5 hash of every
//!    key in the dirty part → the offset of its latest record, in a fixed-capacity table of
//!    `log.cleaner.dedupe.buffer.size / 24` slots filled to at most
//!    `log.cleaner.io.buffer.load.factor` of them ([`CleanerConfig`]). Memory is bounded by
//!    the config, whatever the keys on disk. Keys are compared through their hashes, as in
//!    Kafka (an MD5 collision between two keys of a partition is ignored: the older key's
//!    record would be removed as superseded). **When the map is full** before the dirty part
//!    is indexed, indexing stops and the pass cleans only up to the last offset put in the map
//!    (Kafka's `offsetMap.latestOffset + 1`, which may fall inside a segment or a batch);
//!    records after it are kept as they are (Kafka's `pastLatestOffset`), the cleaner
//!    checkpoint advances only that far, and the next pass continues from it. Kafka's only
//!    requirement is that the map holds more than one entry (`slots × load factor > 1`,
//!    [`CleanerConfig::validate`]); the broker also requires a buffer of more than 1 MiB, as
//!    Kafka's `KafkaConfig` does.
//! 2. Every segment below the pass's end (the first uncleanable offset, or where a full map
//!    stopped), clean and dirty, is rewritten, in
//!    groups of consecutive segments whose total size fits `segment.bytes` and whose indexes
//!    and offsets fit one segment (Kafka's `groupSegmentsBySize`). A record is kept when it
//!    is after the map's latest offset, or when it
//!    has a key, no later record of the map has the same key, and it is not a tombstone whose
//!    batch's delete horizon has passed (`shouldRetainRecord`). Keyless records are dropped
//!    (Kafka counts them as invalid); appends to compacted topics refuse them.
//! 3. Offsets never change. A batch keeping every record and needing no delete horizon is
//!    copied byte for byte. Otherwise it is re-encoded with the retained records at their
//!    original offset deltas, **keeping the original base offset and `lastOffsetDelta`**,
//!    producer id, epoch and base sequence, leader epoch, codec and timestamp type (Kafka's
//!    `buildRetainedRecordsInto` with `overrideLastOffset`), so the producer's last sequence
//!    is unchanged. An emptied batch is dropped, unless it is the last batch of a producer
//!    the partition still knows: it is then kept as an empty batch header (record count 0,
//!    Kafka's `RETAIN_EMPTY` / `writeEmptyHeader`), so producer state rebuilt from the log
//!    stays valid.
//! 4. **Tombstones** (null values) use the batch v2 delete horizon (KIP-534): the first pass
//!    that keeps a tombstone rewrites its batch with attribute bit 6 set and `baseTimestamp =
//!    now + delete.retention.ms`; a later pass after that time removes it.
//! 5. **Transactions** (KIP-98, Kafka's `CleanedTransactionMetadata`): the records of aborted
//!    transactions are removed and never enter the offset map, so an aborted value never
//!    hides an older committed one (this matters for `__consumer_offsets`, which holds
//!    transactional offset commits). A transactional data batch belongs to an aborted
//!    transaction when a `.txnindex` entry of its producer spans it (`firstOffset <= base
//!    offset <= lastOffset`, the abort marker's offset; the entry may be in a later segment).
//!    Its batch goes like an emptied one (kept as an empty header if it is its producer's last
//!    batch). Committed transactional records are cleaned like any other. Nothing at or after
//!    the last stable offset is cleaned, so open transactions are never touched.
//!    **Control batches (markers) are always kept**, and a cleaned segment keeps the
//!    `.txnindex` entries of the segments it replaces: Kafka removes a marker (and the index
//!    entry) once its transaction's records are all gone and the marker's delete horizon has
//!    passed; broker-lite does not (a documented gap: markers and index entries of aborted
//!    transactions cost a few dozen bytes each and are harmless to readers).
//!
//! # Cleaning beside appends and reads
//!
//! Like Kafka's cleaner threads, a pass reads only inactive segments, which are immutable, so
//! it needs the log (the partition's lock) only at its start and end. It runs in three
//! phases:
//!
//! * **(a) snapshot, under the lock** ([`PartitionLog::prepare_cleaning`]): the cleanable
//!   range (cleaner checkpoint, first uncleanable offset) and `now`; for each segment below
//!   the first uncleanable offset its base offset, the next segment's base offset, its size,
//!   next offset, index entry counts, `.txnindex` entries, path, file identity (device and
//!   inode) and a *duplicated handle* of its `.log`; the aborted transactions of the whole
//!   log; the producers' last batch offsets (`RETAIN_EMPTY`); the log config. A pass holds
//!   the log's turn until it ends: a second pass of the same log does not start meanwhile
//!   (two passes would write the same `.cleaned` files).
//! * **(b) offset map and `.cleaned` files, without the lock** (`CleaningPass::clean`):
//!   reads go through the duplicated handles, which stay readable if retention renames or
//!   removes the files meanwhile. Appends, rolls, reads and retention go on.
//! * **(c) check and swap, under the lock** ([`PartitionLog::complete_cleaning`]): the log
//!   must be open and online and still start with exactly the snapshot's segments (same
//!   base offsets, sizes and files) followed by a segment with the same base offset;
//!   otherwise (retention or DeleteRecords removed segments, the topic was deleted, the log
//!   went offline) the `.cleaned` files are removed and the pass is given up: the
//!   checkpoint stays and the next pass starts afresh. Then the groups are swapped in (from
//!   the last one, as below), the cleaner checkpoint and the tombstone horizon are set.
//!
//! What the snapshot cannot miss: data appended meanwhile lies at or after the first
//! uncleanable offset (in the active segment or segments rolled from it), which the pass
//! never touches; a transaction with records in the cleaned range was already complete at
//! (a) (the range ends before the last stable offset), so its abort marker and `.txnindex`
//! entry were in the snapshot; producers only move their last batch forward or are
//! forgotten, so the snapshot keeps at most an empty batch header too many. Reads already
//! served copied their bytes under the lock, and reads after the swap see the new
//! segments. A replaced segment is renamed `.deleted` and removed after
//! `file.delete.delay.ms`.
//!
//! Deleting a topic closes each partition's log, then stops its pass ([`abort_cleaning`],
//! Kafka's `abortCleaning`) and waits for it to end before the directory is removed: the pass
//! checks before every batch it reads (Kafka's `checkDone` per read buffer) and between the
//! slices of a throttle sleep, removes the `.cleaned` files it wrote and swaps nothing.
//!
//! # I/O throttle
//!
//! `log.cleaner.io.max.bytes.per.second` ([`CleanerConfig::io_max_bytes_per_second`],
//! default `f64::MAX`: unthrottled) limits the cleaner's reads and writes through Kafka's
//! `Throttler` (`throttler.rs`: once per 300 ms check interval, a sleep bringing the period's
//! average rate down to the desired one). As in Kafka's `Cleaner`, it is told the bytes of
//! every batch read while building the offset map (`buildOffsetMapForSegment`), and of every
//! batch read plus the bytes it wrote while copying segments (`cleanInto`). The broker
//! shares one throttler between the passes of a cleaning round (Kafka shares one between
//! its cleaner threads). Sleeps happen in phase (b) only, so no lock is held while
//! sleeping: not the partition's, not the throttler's. They are taken in slices of at most
//! 50 ms, between which the pass checks whether it was aborted. Unthrottled, the cost per
//! batch is one comparison (no throttler) and the abort check (an atomic load). Passes run
//! under a `&mut` borrow of the log ([`PartitionLog::maybe_compact`],
//! [`PartitionLog::compact_now`]) are never throttled. Measuring elapsed time for the
//! throttle is the only clock this module reads (`Instant`, monotonic).
//!
//! # Crash safety
//!
//! A group is written to a new segment named `<base>.log.cleaned` (with `.index.cleaned`,
//! `.timeindex.cleaned` and, if the group has aborted transactions, `.txnindex.cleaned`),
//! fsynced, renamed to `.swap` (indexes first, `.log` last), the
//! replaced segments are renamed `.deleted`, and the `.swap` files lose their suffix
//! (Kafka's `replaceSegments`). On open ([`complete_interrupted_cleaning`]), `.cleaned`
//! files are removed (the originals are intact), and a `<base>.log.swap` completes its
//! swap: the segments whose base offsets lie in `[base, next offset of the swap)` are
//! removed and the swap file becomes `<base>.log` (its indexes are rebuilt). A damaged swap
//! file is discarded while the segments it replaces are all still there.
//!
//! # Simplifications (documented gaps)
//!
//! * One cleaner: passes run one partition after another in the retention task (on a
//!   blocking-safe thread), not on `log.cleaner.threads` dedicated threads, and the offset
//!   map is allocated per pass, never larger than the pass can fill, instead of once per
//!   thread. A throttled pass therefore also delays the retention checks and passes of the
//!   partitions after it in that round.
//! * The earliest delete horizon that triggers a pass is kept in memory only; after a
//!   restart, tombstones are removed by the next pass the dirty ratio triggers.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::ops::{DerefMut, Range};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_wire::codec::{write_varint, write_varlong};
use kafka_wire::records::{compress, Compression, RecordBatch, RecordIter};
use tracing::{debug, info, trace, warn};

use super::batch::{
    compute_crc, BatchHeader, BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, NO_TIMESTAMP,
};
use super::checkpoint;
use super::config::{ConfigError, LogConfig};
use super::error::{Result, StorageError};
use super::file::BatchScanner;
use super::log::PartitionLog;
use super::offset_map::{self, OffsetMap};
use super::recovery::parse_base_offset;
use super::segment::{
    file_name, visit_batches_of, BatchPosition, LogSegment, INDEX_SUFFIX, LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
};
use super::throttler::Throttler;
use super::txn_index::{TxnIndexEntry, TXN_INDEX_SUFFIX};

/// Suffix of the log cleaner's output while it is written.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a complete cleaner output about to replace its segments.
pub(crate) const SWAP_SUFFIX: &str = ".swap";
/// The cleaner checkpoint file in the data directory (Kafka's name).
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// Largest decompressed records section the cleaner decodes.
const MAX_DECOMPRESSED: usize = 128 * 1024 * 1024;
/// Attribute bit 6: `baseTimestamp` holds the delete horizon.
const DELETE_HORIZON_FLAG: i16 = 0x40;
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
/// The longest single sleep of a throttled pass: between slices, it checks whether it was
/// aborted.
const THROTTLE_SLICE: Duration = Duration::from_millis(50);
/// `log.cleaner.io.max.bytes.per.second`.
const IO_MAX_BYTES_PER_SECOND: &str = "log.cleaner.io.max.bytes.per.second";

/// What one compaction pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Segments replaced by cleaned ones.
    pub segments_replaced: usize,
    /// Cleaned segments written (one per group of replaced segments).
    pub segments_written: usize,
    /// Bytes of the replaced segments.
    pub bytes_before: u64,
    /// Bytes of the segments that replaced them.
    pub bytes_after: u64,
    /// Records removed (superseded, expired tombstones, keyless).
    pub records_removed: u64,
    /// The new cleaner checkpoint: the first offset not cleaned.
    pub first_dirty_offset: i64,
}

/// The cleanable part of a log (Kafka's `LogToClean`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CleanableRange {
    /// Where the dirty part starts (the cleaner checkpoint, or the log start offset).
    pub first_dirty_offset: i64,
    /// Where cleaning stops: a segment base offset, at most the active segment's.
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the segments in the dirty part.
    pub dirty_bytes: u64,
    /// `dirty / (clean + dirty)`, 0 for an empty log.
    pub dirty_ratio: f64,
    /// The oldest dirty batch is older than `max.compaction.lag.ms`.
    pub max_lag_exceeded: bool,
}

/// After which step a compaction pass stops as if the process died (crash-safety tests;
/// production passes use `None`).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrashPoint {
    /// After the `.cleaned` files were written and fsynced.
    Cleaned,
    /// After the `.cleaned` files were renamed `.swap`.
    Swapped,
    /// After the replaced segments were renamed `.deleted`.
    OldDeleted,
}

/// What the filter decided for one batch.
enum Filtered {
    /// Copy the batch as it is.
    Keep,
    /// Write these bytes instead (re-encoded, or an empty header).
    Rewrite(Vec<u8>),
    /// Drop the batch.
    Drop,
}

/// The aborted transactions of the log, per producer: `(first offset, marker offset)`
/// ranges sorted by first offset, from the `.txnindex` entries.
#[derive(Debug, Default)]
struct AbortedRanges(HashMap<i64, Vec<(i64, i64)>>);

impl AbortedRanges {
    fn new(entries: impl Iterator<Item = TxnIndexEntry>) -> AbortedRanges {
        let mut ranges: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for e in entries {
            ranges
                .entry(e.producer_id)
                .or_default()
                .push((e.first_offset, e.last_offset));
        }
        for r in ranges.values_mut() {
            r.sort_unstable();
        }
        AbortedRanges(ranges)
    }

    /// Whether the batch with header `h` holds records of an aborted transaction (Kafka's
    /// `CleanedTransactionMetadata.onBatchRead`).
    fn contains(&self, h: &BatchHeader) -> bool {
        if h.is_control() || !h.is_transactional() {
            return false;
        }
        let Some(ranges) = self.0.get(&h.producer_id) else {
            return false;
        };
        let n = ranges.partition_point(|(first, _)| *first <= h.base_offset);
        n > 0 && ranges[n - 1].1 >= h.base_offset
    }
}

/// The log cleaner's settings: Kafka's broker configs `log.cleaner.dedupe.buffer.size`,
/// `log.cleaner.io.buffer.load.factor` (broker-lite has one cleaner, so the whole buffer
/// serves it; Kafka divides it among `log.cleaner.threads`) and
/// `log.cleaner.io.max.bytes.per.second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size`: memory for the offset map, 24 bytes per key (a
    /// 16-byte MD5 hash and an offset); at most `i32::MAX` is used. Default 128 MiB.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.buffer.load.factor`: the share of the map's slots a pass may fill
    /// before it stops indexing. Default 0.9.
    pub load_factor: f64,
    /// `log.cleaner.io.max.bytes.per.second`: the cleaner's reads plus writes, in bytes per
    /// second, averaged over 300 ms check intervals (Kafka's `Throttler`). Default
    /// `f64::MAX` (Kafka's `Double.MaxValue`): unthrottled.
    pub io_max_bytes_per_second: f64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_size: 128 * 1024 * 1024,
            load_factor: 0.9,
            io_max_bytes_per_second: f64::MAX,
        }
    }
}

impl CleanerConfig {
    /// How many distinct keys one pass can index: `floor(buffer / 24 × load factor)`
    /// (Kafka's `maxDesiredMapSize`).
    pub fn max_keys(&self) -> usize {
        offset_map::max_entries_for(
            offset_map::slots_for(self.dedupe_buffer_size),
            self.load_factor,
        )
    }

    /// The I/O throttle of a cleaning round, its first period starting at `now`, to share
    /// between the round's passes (`compact_unlocked`); `None` when unthrottled (the rate
    /// is `f64::MAX` or more, as by default, or not a number), so that passes skip it.
    pub fn io_throttler(&self, now: Instant) -> Option<Mutex<Throttler>> {
        (self.io_max_bytes_per_second < f64::MAX)
            .then(|| Mutex::new(Throttler::new(self.io_max_bytes_per_second, now)))
    }

    /// Kafka's requirement on a cleaner: `slots × load factor > 1` ("offset map is too small
    /// to fit in even a single message, so log cleaning will never make progress"); and a
    /// positive I/O rate (Kafka accepts any double, but a rate of 0 makes its cleaner sleep
    /// forever, and a negative one or NaN never throttles).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `log.cleaner.dedupe.buffer.size` or
    /// `log.cleaner.io.max.bytes.per.second`.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        if self.io_max_bytes_per_second.is_nan() || self.io_max_bytes_per_second <= 0.0 {
            return Err(ConfigError::Invalid {
                name: IO_MAX_BYTES_PER_SECOND.to_string(),
                value: self.io_max_bytes_per_second.to_string(),
                reason: "the log cleaner's I/O rate must be above 0".to_string(),
            });
        }
        let slots = offset_map::slots_for(self.dedupe_buffer_size) as f64;
        if self.load_factor > 0.0 && slots * self.load_factor > 1.0 {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            name: "log.cleaner.dedupe.buffer.size".to_string(),
            value: self.dedupe_buffer_size.to_string(),
            reason: format!(
                "with log.cleaner.io.buffer.load.factor {} the offset map is too small to fit \
                 even a single key, so log cleaning would never make progress",
                self.load_factor
            ),
        })
    }
}

/// The partition directories with a cleaning pass under way in this process (Kafka's
/// `LogCleanerManager.inProgress`), each with its flag asking it to stop: one pass per log at
/// a time, since two passes would write the same `.cleaned` files.
static IN_PROGRESS: Mutex<Vec<(PathBuf, Arc<AtomicBool>)>> = Mutex::new(Vec::new());
/// Signalled whenever a pass ends (for [`abort_cleaning`]).
static PASS_ENDED: Condvar = Condvar::new();

/// Marks a log's cleaning as under way until dropped; holds the flag [`abort_cleaning`]
/// sets, which the pass reads before every batch (an atomic load, no lock).
#[derive(Debug)]
struct InProgress(PathBuf, Arc<AtomicBool>);

impl InProgress {
    fn acquire(dir: &Path) -> Option<InProgress> {
        let mut dirs = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
        if dirs.iter().any(|(d, _)| d == dir) {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        dirs.push((dir.to_path_buf(), stop.clone()));
        Some(InProgress(dir.to_path_buf(), stop))
    }

    /// Whether [`abort_cleaning`] asked this pass to stop.
    fn aborted(&self) -> bool {
        self.1.load(Ordering::Acquire)
    }

    /// [`StorageError::LogClosed`] when the pass was asked to stop.
    fn check(&self) -> Result<()> {
        if self.aborted() {
            return Err(StorageError::LogClosed(self.0.clone()));
        }
        Ok(())
    }

    /// Sleeps for `duration` (a throttle's), in slices of at most [`THROTTLE_SLICE`],
    /// checking before each whether the pass was asked to stop.
    ///
    /// # Errors
    /// [`StorageError::LogClosed`] as soon as the pass was asked to stop.
    fn sleep(&self, duration: Duration) -> Result<()> {
        let until = Instant::now().checked_add(duration);
        loop {
            self.check()?;
            let left = until.map_or(THROTTLE_SLICE, |u| {
                u.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(THROTTLE_SLICE));
        }
    }
}

/// What a pass does beside its work for each batch, without any lock: notice an abort, and
/// tell the I/O throttle (if any) what it read and wrote, sleeping as long as it asks.
struct PassIo<'a> {
    pass: &'a InProgress,
    throttle: Option<&'a Mutex<Throttler>>,
}

impl PassIo<'_> {
    /// [`StorageError::LogClosed`] when the pass was asked to stop.
    fn check(&self) -> Result<()> {
        self.pass.check()
    }

    /// Kafka's `throttler.maybeThrottle(bytes)`: the throttler's lock is held only while it
    /// decides, never while sleeping.
    ///
    /// # Errors
    /// [`StorageError::LogClosed`] when the pass was asked to stop during the sleep.
    fn throttle(&self, bytes: u64) -> Result<()> {
        let Some(throttle) = self.throttle else {
            return Ok(());
        };
        let sleep = throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .maybe_throttle(bytes, Instant::now());
        match sleep {
            Some(duration) => {
                trace!(dir = %self.pass.0.display(), sleep_ms = duration.as_millis(),
                    "throttling the log cleaner (log.cleaner.io.max.bytes.per.second)");
                self.pass.sleep(duration)
            }
            None => Ok(()),
        }
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut dirs = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = dirs.iter().position(|(d, _)| *d == self.0) {
            dirs.swap_remove(i);
        }
        PASS_ENDED.notify_all();
    }
}

/// Stops the cleaning pass of the log in `dir`, if one is under way, and waits until it has
/// ended (Kafka's `LogCleanerManager.abortCleaning`, used before a log is deleted). The pass
/// notices before its next batch (or within a slice of a throttle sleep), removes the
/// `.cleaned` files it wrote and ends without swapping anything; the log must already be
/// closed so that no new pass starts.
pub(crate) fn abort_cleaning(dir: &Path) {
    let mut dirs = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
    let mut asked = false;
    while let Some(entry) = dirs.iter_mut().find(|(d, _)| d == dir) {
        if !asked {
            entry.1.store(true, Ordering::Release);
            asked = true;
            debug!(dir = %dir.display(), "waiting for the log cleaner to stop its pass");
        }
        dirs = PASS_ENDED.wait(dirs).unwrap_or_else(|p| p.into_inner());
    }
}

/// Device and inode of an open file: tells a segment from the one a swap put in its place.
fn file_identity(file: &File, path: &Path) -> Result<(u64, u64)> {
    let meta = file.metadata().map_err(StorageError::io("stat", path))?;
    Ok((meta.dev(), meta.ino()))
}

/// An inactive segment as a pass saw it under the log's lock: its `.log` through a
/// duplicated handle (still readable if retention renames or removes the file meanwhile) and
/// what the pass needs of its in-memory state. Inactive segments are never written, so the
/// handle's first `size` bytes are the batches the log holds.
#[derive(Debug)]
struct SourceSegment {
    base_offset: i64,
    /// The next segment's base offset: every offset of this segment is below it.
    next_base: i64,
    /// The offset after the segment's last batch.
    next_offset: i64,
    size: u64,
    path: PathBuf,
    file: File,
    identity: (u64, u64),
    /// Offset and time index entry counts (for grouping).
    index_entries: (usize, usize),
    /// The segment's `.txnindex` entries.
    aborted: Vec<TxnIndexEntry>,
}

impl SourceSegment {
    fn snapshot(segment: &LogSegment, next_base: i64) -> Result<SourceSegment> {
        let path = segment.log_path().to_path_buf();
        let file = segment
            .log_file()
            .try_clone()
            .map_err(StorageError::io("duplicate the handle of", &path))?;
        let identity = file_identity(&file, &path)?;
        Ok(SourceSegment {
            base_offset: segment.base_offset(),
            next_base,
            next_offset: segment.next_offset(),
            size: segment.size(),
            identity,
            index_entries: segment.index_entry_counts(),
            aborted: segment.txn_index().entries().to_vec(),
            path,
            file,
        })
    }

    /// Calls `f` with every batch's position, header and size, in log order, checking each
    /// header as `LogSegment` does (magic 2, increasing offsets inside the segment), and the
    /// scanner that found it, for [`read_batch`].
    fn visit(
        &self,
        f: impl FnMut(&BatchPosition, &mut BatchScanner<'_>) -> Result<()>,
    ) -> Result<()> {
        visit_batches_of(
            &self.file,
            &self.path,
            self.size,
            (self.base_offset, self.next_offset),
            f,
        )
    }

    fn decode(
        &self,
        scanner: &mut BatchScanner<'_>,
        at: &BatchPosition,
        buf: &mut BytesMut,
    ) -> Result<RecordBatch> {
        let bytes = read_batch(scanner, at, buf)?;
        RecordBatch::from_bytes(bytes).map_err(|e| corrupt(&self.path, at.position, e))
    }
}

/// The bytes of the batch at `at`, which `scanner` (a segment visit's) has just found: copied
/// from the scanner's read window (one read per window of batches rather than one per batch)
/// into `buf`, whose memory is reused from batch to batch once the previous batch's bytes are
/// dropped (no allocation per batch).
fn read_batch(
    scanner: &mut BatchScanner<'_>,
    at: &BatchPosition,
    buf: &mut BytesMut,
) -> Result<Bytes> {
    buf.clear();
    scanner.read_into(at.position, at.size as usize, buf)?;
    Ok(buf.split().freeze())
}

/// Phase (a) of a cleaning pass, taken under the log's lock by
/// [`PartitionLog::prepare_cleaning`]: everything the pass reads, so that phase (b)
/// ([`clean`](CleaningPass::clean)) runs without the lock.
#[derive(Debug)]
pub(crate) struct CleaningPass {
    dir: PathBuf,
    config: LogConfig,
    now_ms: i64,
    range: CleanableRange,
    /// The segments below the first uncleanable offset, from the first one.
    segments: Vec<SourceSegment>,
    /// Aborted transactions of the whole log (an entry may sit in a later segment).
    aborted: AbortedRanges,
    /// Last batch offset per known producer (`RETAIN_EMPTY`). Producers only move their
    /// last batch forward (into the active segment) or are forgotten, so a pass that keeps
    /// a batch this names keeps at most one empty header too many.
    producer_last_offsets: HashMap<i64, i64>,
    _in_progress: InProgress,
}

/// One group of source segments and the cleaned segment (`.cleaned` files) replacing it.
#[derive(Debug)]
struct CleanedGroup {
    /// Positions in the pass's segments (and, unchanged, in the log's).
    segments: Range<usize>,
    cleaned: LogSegment,
}

/// Phase (b)'s result: the `.cleaned` segments written, waiting for
/// [`PartitionLog::complete_cleaning`] (phase (c), under the lock) or
/// [`discard`](CleanedPass::discard).
#[derive(Debug)]
pub(crate) struct CleanedPass {
    pass: CleaningPass,
    /// Groups whose cleaned segment differs from the originals, in log order.
    groups: Vec<CleanedGroup>,
    /// The first offset not cleaned: the new cleaner checkpoint.
    end_offset: i64,
    removed: u64,
    min_horizon: Option<i64>,
}

#[cfg(test)]
impl CleanedPass {
    /// The offset this pass cleaned up to (the cleaner checkpoint it will set).
    pub(crate) fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// Removes the `.cleaned` files (a pass given up). Failures are logged: reopening the
    /// log removes leftover `.cleaned` files, and the next pass overwrites them.
    pub(crate) fn discard(self) {
        discard_groups(self.groups);
    }
}

fn discard_groups(groups: Vec<CleanedGroup>) {
    for group in groups {
        if let Err(e) = group.cleaned.remove_files() {
            warn!(error = %e, "cannot remove an unused log cleaner output");
        }
    }
}

/// The state a pass shares between batches.
struct PassContext<'a> {
    map: &'a OffsetMap,
    aborted: &'a AbortedRanges,
    producer_last_offsets: &'a HashMap<i64, i64>,
    now_ms: i64,
    delete_retention_ms: i64,
    removed: u64,
    /// Earliest delete horizon of a batch still holding tombstones.
    min_horizon: Option<i64>,
    /// [`filter_batch`]'s decision for each record of the batch it filters (reused from
    /// batch to batch).
    keep: Vec<bool>,
}

/// Runs one cleaning pass of the log `lock` gives access to (if cleaning is due, or always
/// with `force`), holding the lock only for phase (a), the snapshot, and phase (c), the
/// check and the swap; the offset map and the `.cleaned` files are built in between without
/// it, so appends and reads of the partition go on. `None` when nothing was done: the log is
/// not compacted, cleaning is not due, another pass is under way, or the log changed in a way
/// that conflicts with the pass (which is then given up; the next one retries).
///
/// `throttle` ([`CleanerConfig::io_throttler`], shared by the passes of a cleaning round) is
/// told the bytes the pass reads and writes; its sleeps happen without the lock.
///
/// # Errors
/// As [`PartitionLog::maybe_compact`], and [`StorageError::InvalidConfig`] for a
/// `cleaner` config that cannot make progress.
pub(crate) fn compact_unlocked<G: DerefMut<Target = PartitionLog>>(
    lock: impl Fn() -> G,
    now_ms: i64,
    force: bool,
    cleaner: &CleanerConfig,
    throttle: Option<&Mutex<Throttler>>,
) -> Result<Option<CompactionOutcome>> {
    let pass = lock().prepare_cleaning(now_ms, force)?;
    let Some(pass) = pass else {
        return Ok(None);
    };
    let cleaned = match pass.clean(cleaner, throttle) {
        Ok(cleaned) => cleaned,
        // Stopped by `abort_cleaning`: the log is being deleted.
        Err(StorageError::LogClosed(dir)) => {
            debug!(dir = %dir.display(), "cleaning pass stopped: the log is closed");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    lock().complete_cleaning(cleaned)
}

impl PartitionLog {
    /// The cleaner checkpoint: the first offset the log cleaner has not cleaned, `None`
    /// before the first pass (or when none was restored).
    pub fn cleaner_checkpoint(&self) -> Option<i64> {
        self.cleaner_checkpoint
    }

    /// Restores the cleaner checkpoint (from `cleaner-offset-checkpoint`, on startup).
    pub fn set_cleaner_checkpoint(&mut self, offset: Option<i64>) {
        self.cleaner_checkpoint = offset;
    }

    /// The cleanable part of the log at `now_ms` (see `storage/compaction.rs`).
    pub fn cleanable_range(&self, now_ms: i64) -> CleanableRange {
        let log_start = self.log_start_offset;
        let active_base = self.active().base_offset();
        let first_dirty = match self.cleaner_checkpoint {
            Some(c) if c >= log_start && c <= self.log_end_offset() => c,
            _ => log_start,
        };
        let mut uncleanable = active_base.min(self.last_stable_offset());
        let min_lag = self.config.min_compaction_lag_ms;
        let inactive = &self.segments[..self.segments.len() - 1];
        if min_lag > 0 {
            let horizon = now_ms.saturating_sub(min_lag);
            let young = inactive
                .iter()
                .enumerate()
                .filter(|(i, _)| self.segments[i + 1].base_offset() > first_dirty)
                .find(|(_, s)| s.largest_timestamp() > horizon);
            if let Some((_, young)) = young {
                uncleanable = uncleanable.min(young.base_offset());
            }
        }
        // Whole segments only: cleaning stops at the segment holding `uncleanable`.
        let first_uncleanable = if uncleanable >= active_base {
            active_base
        } else {
            self.segments[self.segment_position(uncleanable)].base_offset()
        }
        .max(first_dirty);

        let mut clean_bytes = 0u64;
        let mut dirty_bytes = 0u64;
        let mut earliest_dirty_timestamp = i64::MAX;
        for (i, segment) in inactive.iter().enumerate() {
            let end = self.segments[i + 1].base_offset();
            if segment.base_offset() < first_dirty {
                clean_bytes += segment.size();
            }
            if segment.base_offset() < first_uncleanable && end > first_dirty {
                dirty_bytes += segment.size();
                if let Some(ts) = segment.first_batch_timestamp().filter(|t| *t > 0) {
                    earliest_dirty_timestamp = earliest_dirty_timestamp.min(ts);
                }
            }
        }
        let total = clean_bytes + dirty_bytes;
        let max_lag = self.config.max_compaction_lag_ms.max(0);
        CleanableRange {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: first_uncleanable,
            clean_bytes,
            dirty_bytes,
            dirty_ratio: if total == 0 {
                0.0
            } else {
                dirty_bytes as f64 / total as f64
            },
            max_lag_exceeded: earliest_dirty_timestamp < now_ms.saturating_sub(max_lag),
        }
    }

    /// Runs a compaction pass if the log is compacted (`cleanup.policy` includes `compact`)
    /// and cleaning is due: the dirty ratio is above `min.cleanable.dirty.ratio`, the oldest
    /// dirty batch is older than `max.compaction.lag.ms`, or kept tombstones have reached
    /// their delete horizon. `None` when nothing was done. The whole pass runs under this
    /// `&mut` borrow, with the default [`CleanerConfig`]; the broker cleans without holding
    /// the partition's lock through `compact_unlocked` instead.
    ///
    /// # Errors
    /// Storage failures: an I/O failure while replacing segments takes the log offline
    /// (reopening completes or discards the interrupted swap); a batch that cannot be decoded
    /// ([`StorageError::CorruptLog`]) stops the pass with the log unchanged.
    pub fn maybe_compact(&mut self, now_ms: i64) -> Result<Option<CompactionOutcome>> {
        self.compact_in_place(now_ms, false, &CleanerConfig::default(), None)
    }

    /// Runs a compaction pass now, whatever the dirty ratio (still only below the first
    /// uncleanable offset: never the active segment). `None` when the log is not compacted.
    ///
    /// # Errors
    /// As [`maybe_compact`](Self::maybe_compact).
    pub fn compact_now(&mut self, now_ms: i64) -> Result<Option<CompactionOutcome>> {
        self.compact_in_place(now_ms, true, &CleanerConfig::default(), None)
    }

    /// [`compact_now`](Self::compact_now) with the given cleaner settings.
    #[cfg(test)]
    pub(crate) fn compact_now_with(
        &mut self,
        now_ms: i64,
        cleaner: &CleanerConfig,
    ) -> Result<Option<CompactionOutcome>> {
        self.compact_in_place(now_ms, true, cleaner, None)
    }

    /// [`compact_now`](Self::compact_now) stopping at `crash` as if the process died there.
    #[cfg(test)]
    pub(crate) fn compact_until_crash(&mut self, now_ms: i64, crash: CrashPoint) -> Result<()> {
        self.compact_in_place(now_ms, true, &CleanerConfig::default(), Some(crash))
            .map(|_| ())
    }

    fn compact_in_place(
        &mut self,
        now_ms: i64,
        force: bool,
        cleaner: &CleanerConfig,
        crash: Option<CrashPoint>,
    ) -> Result<Option<CompactionOutcome>> {
        let Some(pass) = self.prepare_cleaning(now_ms, force)? else {
            return Ok(None);
        };
        // The caller's borrow of the log is held throughout: never throttled.
        let cleaned = pass.clean(cleaner, None)?;
        self.finish_cleaning(cleaned, crash)
    }

    /// Phase (a) of a cleaning pass, under the log's lock: when the log is compacted and
    /// cleaning is due (always with `force`), a snapshot of what the pass reads — the
    /// segments below the first uncleanable offset (base offsets, sizes, paths, duplicated
    /// `.log` handles, index entry counts, `.txnindex` entries), the aborted transactions,
    /// the producers' last batch offsets, the cleanable range (with the checkpoint) and
    /// `now_ms`. `None` when the log is not compacted, cleaning is not due, or another pass of
    /// this log is under way (one at a time; the pass holds the log's turn until dropped).
    ///
    /// # Errors
    /// [`StorageError::LogOffline`] / [`StorageError::LogClosed`]; [`StorageError::Io`] if a
    /// segment's handle cannot be duplicated.
    pub(crate) fn prepare_cleaning(
        &self,
        now_ms: i64,
        force: bool,
    ) -> Result<Option<CleaningPass>> {
        self.check_online()?;
        if !self.config.cleanup_policy.compact {
            return Ok(None);
        }
        let range = self.cleanable_range(now_ms);
        if !force {
            let due = range.dirty_bytes > 0
                && (range.dirty_ratio > self.config.min_cleanable_dirty_ratio
                    || range.max_lag_exceeded);
            let tombstones_due = self.tombstone_horizon.is_some_and(|h| h <= now_ms);
            if !due && !tombstones_due {
                return Ok(None);
            }
        }
        let Some(in_progress) = InProgress::acquire(&self.dir) else {
            debug!(dir = %self.dir.display(), "a cleaning pass of this log is already under way");
            return Ok(None);
        };
        // Segments wholly below the first uncleanable offset (never the active one).
        let count = self
            .segments
            .partition_point(|s| s.base_offset() < range.first_uncleanable_offset)
            .min(self.segments.len() - 1);
        let segments = (0..count)
            .map(|i| SourceSegment::snapshot(&self.segments[i], self.segments[i + 1].base_offset()))
            .collect::<Result<Vec<_>>>()?;
        let aborted = AbortedRanges::new(
            self.segments
                .iter()
                .flat_map(|s| s.txn_index().entries().iter().copied()),
        );
        Ok(Some(CleaningPass {
            dir: self.dir.clone(),
            config: self.config.clone(),
            now_ms,
            range,
            segments,
            aborted,
            producer_last_offsets: self.producers.last_batch_offsets(),
            _in_progress: in_progress,
        }))
    }

    /// Phase (c) of a cleaning pass, under the log's lock: checks that the log still holds
    /// exactly the segments the pass read (same base offsets, sizes and files, followed by
    /// the same next segment) and is open and online, then swaps each cleaned group in
    /// (crash-safe, see the module documentation), sets the cleaner checkpoint to the pass's
    /// end and returns what was done. If anything changed — retention or DeleteRecords
    /// removed segments, another swap replaced them, the log was closed (topic deleted) or
    /// went offline — the `.cleaned` files are removed and `None` is returned: the pass is
    /// given up and the next one starts afresh.
    ///
    /// # Errors
    /// [`StorageError::Io`] during the swap (the log is then offline; reopening completes or
    /// discards the interrupted swap).
    pub(crate) fn complete_cleaning(
        &mut self,
        cleaned: CleanedPass,
    ) -> Result<Option<CompactionOutcome>> {
        self.finish_cleaning(cleaned, None)
    }

    fn finish_cleaning(
        &mut self,
        cleaned: CleanedPass,
        crash: Option<CrashPoint>,
    ) -> Result<Option<CompactionOutcome>> {
        let CleanedPass {
            pass,
            groups,
            end_offset,
            removed,
            min_horizon,
        } = cleaned;
        let conflict = match self.check_online() {
            Err(e) => Some(e.to_string()),
            Ok(()) => self.changed_since(&pass.segments),
        };
        if let Some(reason) = conflict {
            info!(dir = %self.dir.display(), %reason,
                "giving up a log cleaning pass: the log changed while it ran");
            discard_groups(groups);
            return Ok(None);
        }
        let mut outcome = CompactionOutcome {
            first_dirty_offset: end_offset,
            ..CompactionOutcome::default()
        };
        if crash == Some(CrashPoint::Cleaned) && !groups.is_empty() {
            return Ok(Some(outcome));
        }
        let due = pass.now_ms.saturating_add(self.config.file_delete_delay_ms);
        // Groups are replaced from the last one, so earlier positions stay valid.
        for group in groups.into_iter().rev() {
            let replaced = self.swap_in(group.segments, group.cleaned, &mut outcome, due, crash);
            if self.offline_on_io(replaced)? {
                return Ok(Some(outcome));
            }
        }
        outcome.records_removed = removed;
        self.tombstone_horizon = min_horizon;
        self.cleaner_checkpoint = Some(end_offset);
        if outcome.segments_written > 0 {
            info!(
                dir = %self.dir.display(),
                replaced = outcome.segments_replaced,
                bytes_before = outcome.bytes_before,
                bytes_after = outcome.bytes_after,
                records_removed = outcome.records_removed,
                first_dirty_offset = end_offset,
                "compacted log"
            );
        }
        Ok(Some(outcome))
    }

    /// Why the log no longer holds exactly `segments` at its start, followed by the segment
    /// that followed them; `None` when it does.
    fn changed_since(&self, segments: &[SourceSegment]) -> Option<String> {
        if self.segments.len() <= segments.len() {
            return Some("segments were removed".to_string());
        }
        for (live, seen) in self.segments.iter().zip(segments) {
            let same_file =
                file_identity(live.log_file(), live.log_path()).is_ok_and(|id| id == seen.identity);
            if live.base_offset() != seen.base_offset || live.size() != seen.size || !same_file {
                return Some(format!(
                    "segment {} was removed or replaced",
                    seen.base_offset
                ));
            }
        }
        match segments.last() {
            Some(last) if self.segments[segments.len()].base_offset() != last.next_base => {
                Some(format!("the segment after {} changed", last.base_offset))
            }
            _ => None,
        }
    }

    /// Kafka's `replaceSegments`: `.cleaned` → `.swap`, the replaced segments renamed
    /// `.deleted` (removed at `due`), `.swap` → final names; then the new segment takes the
    /// group's place. Returns whether `crash` stopped it.
    fn swap_in(
        &mut self,
        group: Range<usize>,
        mut cleaned: LogSegment,
        outcome: &mut CompactionOutcome,
        due: i64,
        crash: Option<CrashPoint>,
    ) -> Result<bool> {
        cleaned.change_file_suffixes(CLEANED_SUFFIX, SWAP_SUFFIX)?;
        checkpoint::sync_dir(&self.dir)?;
        if crash == Some(CrashPoint::Swapped) {
            return Ok(true);
        }
        // From here until the new segment is in place, a failure leaves the log offline.
        self.offline = true;
        let start = group.start;
        let old: Vec<LogSegment> = self.segments.drain(group).collect();
        outcome.segments_replaced += old.len();
        outcome.segments_written += 1;
        outcome.bytes_after += cleaned.size();
        for segment in old {
            outcome.bytes_before += segment.size();
            let paths = segment.rename_to_deleted()?;
            self.pending_deletes
                .extend(paths.into_iter().map(|p| (p, due)));
        }
        if crash == Some(CrashPoint::OldDeleted) {
            return Ok(true);
        }
        cleaned.change_file_suffixes(SWAP_SUFFIX, "")?;
        checkpoint::sync_dir(&self.dir)?;
        self.segments.insert(start, cleaned);
        self.offline = false;
        Ok(false)
    }
}

impl CleaningPass {
    /// Phase (b) of a cleaning pass, without the log's lock: builds the offset map over the
    /// dirty part (stopping when the map is full: the pass then cleans only up to the last
    /// batch indexed whole, Kafka's `offsetMap.latestOffset + 1`), then writes each group of
    /// segments below that end into a `.cleaned` segment (fsynced). Groups in which nothing
    /// changes are not kept. On error, the `.cleaned` files written so far are removed.
    /// Every batch read and written is reported to `throttle`, which may make the pass sleep
    /// (see the module documentation); the pass checks before every batch, and during
    /// sleeps, whether [`abort_cleaning`] stopped it.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] when `cleaner` cannot index a single key or has no
    /// positive I/O rate; [`StorageError::CorruptLog`] for a batch that cannot be decoded;
    /// [`StorageError::Io`]; [`StorageError::LogClosed`] when stopped by [`abort_cleaning`].
    pub(crate) fn clean(
        self,
        cleaner: &CleanerConfig,
        throttle: Option<&Mutex<Throttler>>,
    ) -> Result<CleanedPass> {
        cleaner.validate()?;
        let start = self.range.first_dirty_offset;
        let end = self.range.first_uncleanable_offset;
        let mut map = new_offset_map(cleaner, end.saturating_sub(start));
        let io = PassIo {
            pass: &self._in_progress,
            throttle,
        };
        let full = build_offset_map(&self.segments, start, end, &self.aborted, &mut map, &io)?;
        let end_offset = if full {
            let indexed_to = map.latest_offset().saturating_add(1);
            if indexed_to <= start {
                warn!(dir = %self.dir.display(), keys = map.max_entries(),
                    "the log cleaner's offset map cannot hold the keys of one batch; increase \
                     log.cleaner.dedupe.buffer.size");
                start
            } else {
                info!(dir = %self.dir.display(), keys = map.len(), cleaned_to = indexed_to,
                    first_uncleanable_offset = end,
                    "the log cleaner's offset map is full; the next pass continues");
                indexed_to
            }
        } else {
            map.update_latest_offset(end - 1);
            end
        };
        let mut ctx = PassContext {
            map: &map,
            aborted: &self.aborted,
            producer_last_offsets: &self.producer_last_offsets,
            now_ms: self.now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            removed: 0,
            min_horizon: None,
            keep: Vec::new(),
        };
        // A pass that indexed nothing rewrites nothing: the map would keep every record.
        let count = if end_offset > start || !full {
            self.segments
                .partition_point(|s| s.base_offset < end_offset)
        } else {
            0
        };
        let mut groups = Vec::new();
        for range in group_segments(&self.segments[..count], &self.config) {
            if let Err(e) = io.check() {
                discard_groups(groups);
                return Err(e);
            }
            match self.write_group(range.clone(), &mut ctx, &io) {
                Ok(Some(cleaned)) => groups.push(CleanedGroup {
                    segments: range,
                    cleaned,
                }),
                Ok(None) => {}
                Err(e) => {
                    discard_groups(groups);
                    return Err(e);
                }
            }
        }
        let (removed, min_horizon) = (ctx.removed, ctx.min_horizon);
        Ok(CleanedPass {
            pass: self,
            groups,
            end_offset,
            removed,
            min_horizon,
        })
    }

    /// Cleans one group of segments into a new `.cleaned` segment; `None` (its files
    /// removed) when no batch changes.
    fn write_group(
        &self,
        group: Range<usize>,
        ctx: &mut PassContext<'_>,
        io: &PassIo<'_>,
    ) -> Result<Option<LogSegment>> {
        let base = self.segments[group.start].base_offset;
        let mut cleaned = LogSegment::create_with_suffix(
            &self.dir,
            base,
            &self.config,
            self.now_ms,
            CLEANED_SUFFIX,
        )?;
        match self.write_cleaned(&group, &mut cleaned, ctx, io) {
            Ok(true) => Ok(Some(cleaned)),
            Ok(false) => cleaned.remove_files().map(|()| None),
            Err(e) => {
                if let Err(cleanup) = cleaned.remove_files() {
                    warn!(error = %cleanup, "cannot remove an unused log cleaner output");
                }
                Err(e)
            }
        }
    }

    /// Writes the retained batches of `group` into `cleaned` and fsyncs it. Returns whether
    /// any batch differs from the originals. Each batch's bytes read plus the bytes written
    /// for it go to the throttle (Kafka's `cleanInto` reports the read buffer, then the
    /// output buffer).
    fn write_cleaned(
        &self,
        group: &Range<usize>,
        cleaned: &mut LogSegment,
        ctx: &mut PassContext<'_>,
        io: &PassIo<'_>,
    ) -> Result<bool> {
        let interval = self.config.index_interval();
        let mut changed = false;
        let mut aborted_txns = Vec::new();
        let mut buf = BytesMut::new();
        for segment in &self.segments[group.clone()] {
            aborted_txns.extend_from_slice(&segment.aborted);
            segment.visit(|at, scanner| {
                io.check()?;
                let bytes = read_batch(scanner, at, &mut buf)?;
                let written = match filter_batch(&segment.path, at, &bytes, ctx)? {
                    Filtered::Keep => {
                        cleaned.append_stored(&bytes, interval)?;
                        bytes.len()
                    }
                    Filtered::Rewrite(new) => {
                        changed = true;
                        cleaned.append_stored(&new, interval)?;
                        new.len()
                    }
                    Filtered::Drop => {
                        changed = true;
                        0
                    }
                };
                io.throttle(at.size.saturating_add(written as u64))
            })?;
        }
        cleaned.set_aborted_txns(aborted_txns)?;
        cleaned.on_become_inactive()?;
        let last = &self.segments[group.end - 1];
        let modified = last
            .file
            .metadata()
            .and_then(|m| m.modified())
            .map_err(StorageError::io("stat", &last.path))?;
        cleaned.set_last_modified(modified)?;
        cleaned.sync()?;
        Ok(changed)
    }
}

/// An offset map for a pass over `span` offsets: `log.cleaner.dedupe.buffer.size / 24`
/// slots (Kafka's `SkimpyOffsetMap`), but never more than the pass can fill (one key per
/// offset, over the load factor), so that a small log does not allocate the whole buffer.
/// Either way the map becomes full at the same key count as Kafka's would, if at all.
fn new_offset_map(cleaner: &CleanerConfig, span: i64) -> OffsetMap {
    let buffer_slots = offset_map::slots_for(cleaner.dedupe_buffer_size);
    let span = u64::try_from(span).unwrap_or(0);
    // `as` saturates: a huge span means the buffer's slots.
    let needed = ((span as f64 / cleaner.load_factor).ceil() as u64).saturating_add(1);
    let slots = usize::try_from(needed)
        .unwrap_or(usize::MAX)
        .min(buffer_slots);
    let max_entries = if slots == buffer_slots {
        cleaner.max_keys()
    } else {
        offset_map::max_entries_for(slots, cleaner.load_factor)
    };
    OffsetMap::new(slots, max_entries)
}

/// Kafka's `buildOffsetMap`: the latest offset of each key in `[start, end)` of `segments`
/// (control batches and aborted transactions excluded). The map's latest offset follows each
/// batch read whole and, after a segment read whole, the next segment's base offset minus
/// one. Returns whether the map became full (indexing stopped inside a batch, which is then
/// not counted as indexed). Every batch from the first dirty offset on is reported to the
/// throttle, whole, before it is indexed (Kafka's `buildOffsetMapForSegment` reports each
/// read buffer), up to and including the one that filled the map; the pass checks for an
/// abort before each.
fn build_offset_map(
    segments: &[SourceSegment],
    start: i64,
    end: i64,
    aborted: &AbortedRanges,
    map: &mut OffsetMap,
    io: &PassIo<'_>,
) -> Result<bool> {
    let mut buf = BytesMut::new();
    for segment in segments {
        if segment.next_base <= start {
            continue;
        }
        io.check()?;
        if segment.base_offset >= end {
            break;
        }
        let mut full = false;
        let visited = segment.visit(|at, scanner| {
            let h = &at.header;
            if full || h.last_offset() < start {
                return Ok(());
            }
            io.check()?;
            io.throttle(at.size)?;
            if !h.is_control() && !aborted.contains(h) {
                let batch = segment.decode(scanner, at, &mut buf)?;
                let mut records = batch
                    .records(MAX_DECOMPRESSED)
                    .map_err(|e| corrupt(&segment.path, at.position, e))?;
                while let Some(record) = records.next_borrowed() {
                    let record = record.map_err(|e| corrupt(&segment.path, at.position, e))?;
                    if let Some(key) = record.key {
                        if record.offset >= start && !map.put(key, record.offset) {
                            full = true;
                            return Ok(());
                        }
                    }
                }
            }
            map.update_latest_offset(h.last_offset());
            Ok(())
        });
        visited?;
        if full {
            return Ok(true);
        }
        map.update_latest_offset(segment.next_base.min(end) - 1);
    }
    Ok(false)
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose sizes add up to at most
/// `segment.bytes`, whose index entries fit one index, and whose offsets fit relative to the
/// group's base offset.
fn group_segments(segments: &[SourceSegment], config: &LogConfig) -> Vec<Range<usize>> {
    let max_size = u64::try_from(config.segment_bytes).unwrap_or(0);
    let max_index = config.max_index_entries();
    let max_time_index = config.max_time_index_entries();
    let count = segments.len();
    let mut groups = Vec::new();
    let mut i = 0;
    while i < count {
        let start = i;
        let mut size = segments[i].size;
        let (mut index, mut time_index) = segments[i].index_entries;
        i += 1;
        while i < count {
            let s = &segments[i];
            let (si, st) = s.index_entries;
            // The next segment's base offset bounds this one's offsets.
            let last_offset = s.next_base - 1;
            let fits = size + s.size <= max_size
                && index + si <= max_index
                && time_index + st <= max_time_index
                && last_offset - segments[start].base_offset <= i64::from(i32::MAX);
            if !fits {
                break;
            }
            size += s.size;
            index += si;
            time_index += st;
            i += 1;
        }
        groups.push(start..i);
    }
    groups
}

fn corrupt(path: &Path, position: u64, e: impl std::fmt::Display) -> StorageError {
    StorageError::CorruptLog {
        path: path.to_path_buf(),
        position,
        reason: format!("the log cleaner cannot decode the batch: {e}"),
    }
}

/// Kafka's `MemoryRecords.filterTo` for one batch with the cleaner's `shouldRetainRecord`
/// and `checkBatchRetention`. Records after the offset map's latest offset (beyond what this
/// pass indexed) are kept as they are (Kafka's `pastLatestOffset`).
///
/// The records are decided on first (nothing is copied); only a batch that changes is read
/// a second time, from a copy of the iterator (the decompressed section is shared), and
/// re-encoded.
fn filter_batch(
    path: &Path,
    at: &BatchPosition,
    bytes: &Bytes,
    ctx: &mut PassContext<'_>,
) -> Result<Filtered> {
    let h = &at.header;
    if h.is_control() {
        return Ok(Filtered::Keep);
    }
    let last_of_producer = h.has_producer_id()
        && ctx.producer_last_offsets.get(&h.producer_id) == Some(&h.last_offset());
    if ctx.aborted.contains(h) && h.record_count > 0 {
        ctx.removed += u64::try_from(h.record_count).unwrap_or(0);
        return Ok(if last_of_producer {
            Filtered::Rewrite(empty_batch(h))
        } else {
            Filtered::Drop
        });
    }
    let corrupt = |e: &dyn std::fmt::Display| corrupt(path, at.position, e);
    let batch = RecordBatch::from_bytes(bytes.clone()).map_err(|e| corrupt(&e))?;
    let horizon = batch.delete_horizon_ms();
    let retain_deletes = horizon.is_none_or(|h| ctx.now_ms < h);
    let latest_indexed = ctx.map.latest_offset();
    let records = batch.records(MAX_DECOMPRESSED).map_err(|e| corrupt(&e))?;
    let mut scan = records.clone();
    ctx.keep.clear();
    let mut kept = 0u64;
    let mut has_tombstones = false;
    while let Some(record) = scan.next_borrowed() {
        let record = record.map_err(|e| corrupt(&e))?;
        // A keyless record is dropped (Kafka: an invalid message on a compacted topic).
        let retained = record.key.is_some_and(|key| {
            record.offset > latest_indexed || {
                let latest = ctx.map.get(key).is_none_or(|o| record.offset >= o);
                latest && (record.value.is_some() || retain_deletes)
            }
        });
        if retained {
            kept += 1;
            has_tombstones |= record.value.is_none();
        }
        ctx.keep.push(retained);
    }
    let total = ctx.keep.len() as u64;
    ctx.removed += total - kept;
    let needs_horizon = has_tombstones && horizon.is_none();
    let horizon = if needs_horizon {
        Some(ctx.now_ms.saturating_add(ctx.delete_retention_ms))
    } else {
        horizon
    };
    if has_tombstones {
        if let Some(h) = horizon {
            ctx.min_horizon = Some(ctx.min_horizon.map_or(h, |m| m.min(h)));
        }
    }
    if kept == total && !needs_horizon {
        return Ok(Filtered::Keep);
    }
    if kept == 0 {
        return Ok(if last_of_producer {
            Filtered::Rewrite(empty_batch(h))
        } else {
            Filtered::Drop
        });
    }
    encode_retained(h, records, &ctx.keep, horizon)
        .map(Filtered::Rewrite)
        .map_err(|e| corrupt(&e))
}

/// Kafka's `DefaultRecordBatch.writeEmptyHeader`: the batch's offsets, producer state and
/// max timestamp without records (uncompressed, no base timestamp, record count 0).
fn empty_batch(h: &BatchHeader) -> Vec<u8> {
    let attributes = h.attributes & (TIMESTAMP_TYPE_FLAG | 0x10 | 0x20);
    write_batch(h, attributes, NO_TIMESTAMP, h.max_timestamp, 0, &[])
}

/// Re-encodes the records of the batch with header `h` that `keep` marks (one flag per
/// record of `records`, at least one set) at their original offset deltas, keeping the base
/// offset, `lastOffsetDelta`, producer fields, leader epoch, codec and timestamp type; with a
/// delete horizon, attribute bit 6 is set and the horizon is the base timestamp.
fn encode_retained(
    h: &BatchHeader,
    mut records: RecordIter,
    keep: &[bool],
    horizon: Option<i64>,
) -> std::result::Result<Vec<u8>, String> {
    let mut base_timestamp = horizon;
    let mut max_timestamp: Option<i64> = None;
    let mut section = BytesMut::new();
    let mut body = BytesMut::new();
    let mut count = 0usize;
    let mut keep = keep.iter();
    while let Some(record) = records.next_borrowed() {
        let record = record.map_err(|e| e.to_string())?;
        if keep.next() != Some(&true) {
            continue;
        }
        let base = *base_timestamp.get_or_insert(record.timestamp);
        max_timestamp = Some(max_timestamp.map_or(record.timestamp, |m| m.max(record.timestamp)));
        let offset_delta = i32::try_from(record.offset - h.base_offset)
            .map_err(|_| format!("offset {} is outside the batch", record.offset))?;
        body.clear();
        body.put_u8(0); // record attributes: unused
        write_varlong(&mut body, record.timestamp.wrapping_sub(base));
        write_varint(&mut body, offset_delta);
        put_nullable(&mut body, record.key);
        put_nullable(&mut body, record.value);
        write_varint(&mut body, len_i32(record.headers.len())?);
        for header in record.headers {
            put_nullable(&mut body, Some(header.key));
            put_nullable(&mut body, header.value);
        }
        write_varint(&mut section, len_i32(body.len())?);
        section.extend_from_slice(&body);
        count += 1;
    }
    let max_timestamp = if h.is_log_append_time() {
        h.max_timestamp
    } else {
        max_timestamp.unwrap_or(NO_TIMESTAMP)
    };
    let codec = Compression::from_id((h.attributes & COMPRESSION_MASK) as u8)
        .ok_or_else(|| format!("unknown codec {}", h.attributes & COMPRESSION_MASK))?;
    let mut compressed = BytesMut::new();
    compress(codec, &section, None, &mut compressed).map_err(|e| e.to_string())?;
    let mut attributes = h.attributes & !DELETE_HORIZON_FLAG;
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG;
    }
    Ok(write_batch(
        h,
        attributes,
        base_timestamp.unwrap_or(NO_TIMESTAMP),
        max_timestamp,
        len_i32(count)?,
        &compressed,
    ))
}

fn len_i32(n: usize) -> std::result::Result<i32, String> {
    i32::try_from(n).map_err(|_| format!("length {n} does not fit a record batch"))
}

fn put_nullable(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => write_varint(buf, -1),
        Some(b) => {
            write_varint(buf, b.len() as i32);
            buf.extend_from_slice(b);
        }
    }
}

/// A whole v2 batch: the header of `h` with the given attributes, timestamps and record
/// count, then `records` (already compressed), with its length and CRC.
fn write_batch(
    h: &BatchHeader,
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
    records: &[u8],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(BATCH_HEADER_SIZE + records.len());
    let batch_length = (BATCH_HEADER_SIZE - LOG_OVERHEAD + records.len()) as i32;
    b.extend_from_slice(&h.base_offset.to_be_bytes());
    b.extend_from_slice(&batch_length.to_be_bytes());
    b.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    b.push(h.magic as u8);
    b.extend_from_slice(&[0; 4]); // CRC, below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&max_timestamp.to_be_bytes());
    b.extend_from_slice(&h.producer_id.to_be_bytes());
    b.extend_from_slice(&h.producer_epoch.to_be_bytes());
    b.extend_from_slice(&h.base_sequence.to_be_bytes());
    b.extend_from_slice(&record_count.to_be_bytes());
    b.extend_from_slice(records);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Completes or discards a compaction interrupted by a crash, before a log is opened
/// (Kafka's `LogLoader` handling of `.cleaned` and `.swap` files):
///
/// * `.cleaned` files are removed: the segments they were to replace are intact.
/// * `<base>.log.swap` is a complete, fsynced cleaner output: the segments with base offsets
///   in `[base, next offset of the swap)` are removed (the replaced segments not yet renamed
///   `.deleted`), then it becomes `<base>.log`; its offset and time indexes are rebuilt by
///   the load, its `<base>.txnindex.swap` (if any) becomes `<base>.txnindex`. (A swap
///   file that is not entirely valid batches — damage — is discarded instead while
///   `<base>.log` still exists, i.e. before any replaced segment was removed.)
/// * Index `.swap` files without their `.log.swap` are removed (the rename to `.swap` was
///   interrupted; the `.cleaned` log was removed above).
///
/// # Errors
/// [`StorageError::Io`].
pub(crate) fn complete_interrupted_cleaning(dir: &Path) -> Result<()> {
    let mut swaps = Vec::new();
    let mut index_swaps = Vec::new();
    let mut logs = Vec::new();
    let mut found = false;
    for entry in fs::read_dir(dir).map_err(StorageError::io("list", dir))? {
        let entry = entry.map_err(StorageError::io("list", dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(CLEANED_SUFFIX) {
            info!(file = %entry.path().display(), "removing an interrupted log cleaner output");
            checkpoint::remove_if_exists(&entry.path())?;
            found = true;
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            match parse_base_offset(stem, LOG_SUFFIX) {
                Some(base) => swaps.push(base),
                None => index_swaps.push((stem.to_string(), entry.path())),
            }
        } else if let Some(base) = parse_base_offset(&name, LOG_SUFFIX) {
            logs.push(base);
        }
    }
    for (stem, path) in index_swaps {
        let base = parse_base_offset(&stem, INDEX_SUFFIX)
            .or_else(|| parse_base_offset(&stem, TIME_INDEX_SUFFIX))
            .or_else(|| parse_base_offset(&stem, TXN_INDEX_SUFFIX));
        if !base.is_some_and(|b| swaps.contains(&b)) {
            checkpoint::remove_if_exists(&path)?;
            found = true;
        }
    }
    for base in swaps {
        found = true;
        let swap = dir.join(format!("{}{SWAP_SUFFIX}", file_name(base, LOG_SUFFIX)));
        let (next_offset, whole) = scan_swap(&swap, base)?;
        if !whole && logs.contains(&base) {
            // Not a complete cleaner output (it is fsynced before its rename, so this is
            // damage), and nothing it replaces was removed yet: keep the originals.
            warn!(file = %swap.display(), "discarding an invalid log cleaner swap file");
            for suffix in [
                LOG_SUFFIX,
                INDEX_SUFFIX,
                TIME_INDEX_SUFFIX,
                TXN_INDEX_SUFFIX,
            ] {
                let name = format!("{}{SWAP_SUFFIX}", file_name(base, suffix));
                checkpoint::remove_if_exists(&dir.join(name))?;
            }
            continue;
        }
        for &old in logs
            .iter()
            .filter(|&&b| b >= base && b < next_offset.max(base + 1))
        {
            info!(
                segment = old,
                swap = base,
                "removing a segment replaced by an interrupted swap"
            );
            for suffix in [
                LOG_SUFFIX,
                INDEX_SUFFIX,
                TIME_INDEX_SUFFIX,
                TXN_INDEX_SUFFIX,
            ] {
                checkpoint::remove_if_exists(&dir.join(file_name(old, suffix)))?;
            }
        }
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let name = format!("{}{SWAP_SUFFIX}", file_name(base, suffix));
            checkpoint::remove_if_exists(&dir.join(name))?;
        }
        // The transaction index cannot be rebuilt from the cleaned log alone (the aborted
        // transactions' data is gone): it is swapped in with the log.
        let txn_swap = dir.join(format!(
            "{}{SWAP_SUFFIX}",
            file_name(base, TXN_INDEX_SUFFIX)
        ));
        if checkpoint::exists(&txn_swap)? {
            let target = dir.join(file_name(base, TXN_INDEX_SUFFIX));
            fs::rename(&txn_swap, &target).map_err(StorageError::io("rename", &txn_swap))?;
        }
        let target = dir.join(file_name(base, LOG_SUFFIX));
        fs::rename(&swap, &target).map_err(StorageError::io("rename", &swap))?;
        info!(segment = %target.display(), "completed an interrupted log cleaner swap");
    }
    if found {
        checkpoint::sync_dir(dir)?;
    }
    Ok(())
}

/// The offset after the last valid batch of a swap file (its base offset when empty), and
/// whether the whole file is valid batches (framing, offsets, CRC).
fn scan_swap(path: &Path, base: i64) -> Result<(i64, bool)> {
    let file = fs::File::open(path).map_err(StorageError::io("open", path))?;
    let len = file
        .metadata()
        .map_err(StorageError::io("stat", path))?
        .len();
    let mut scanner = BatchScanner::new(&file, path, len);
    let mut position = 0u64;
    let mut next = base;
    loop {
        let (h, size) = match scanner.header_at(position) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok((next, true)),
            Err(StorageError::CorruptLog { .. }) => return Ok((next, false)),
            Err(e) => return Err(e),
        };
        let valid = h.magic == MAGIC_V2
            && h.base_offset >= next
            && h.last_offset_delta >= 0
            && scanner.crc_of(position, size)? == h.crc;
        if !valid {
            return Ok((next, false));
        }
        next = h.next_offset();
        position += size;
    }
}

/// Reads the data directory's `cleaner-offset-checkpoint` (Kafka's `OffsetCheckpointFile`:
/// `0`, the entry count, then `<topic> <partition> <offset>` lines). A missing file is
/// empty; a malformed one is ignored with a warning (every compacted log is then cleaned
/// from its start, which is only extra work).
///
/// # Errors
/// [`StorageError::Io`] when the file exists but cannot be read.
pub fn read_cleaner_checkpoints(data_dir: &Path) -> Result<BTreeMap<(String, i32), i64>> {
    let path = data_dir.join(CLEANER_CHECKPOINT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(StorageError::io("read", &path)(e)),
    };
    let parsed = (|| {
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut out = BTreeMap::new();
        for line in lines.by_ref().take(count) {
            let mut parts = line.split_whitespace();
            let (topic, partition, offset) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            out.insert(
                (topic.to_string(), partition.parse().ok()?),
                offset.parse().ok()?,
            );
        }
        (out.len() == count).then_some(out)
    })();
    Ok(parsed.unwrap_or_else(|| {
        warn!(path = %path.display(), "ignoring a malformed cleaner offset checkpoint");
        BTreeMap::new()
    }))
}

/// Writes `cleaner-offset-checkpoint` atomically in Kafka's format.
///
/// # Errors
/// [`StorageError::Io`].
pub fn write_cleaner_checkpoints(
    data_dir: &Path,
    checkpoints: &BTreeMap<(String, i32), i64>,
) -> Result<()> {
    let mut text = format!("0\n{}\n", checkpoints.len());
    for ((topic, partition), offset) in checkpoints {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    checkpoint::write_atomically(data_dir, CLEANER_CHECKPOINT_FILE, text.as_bytes())
}

#[cfg(test)]
#[path = "compaction_tests.rs"]
mod tests;
