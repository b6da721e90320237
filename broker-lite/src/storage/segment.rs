//! One log segment: a `.log` file of record batches with its `.index`, `.timeindex` and
//! (when it holds aborted transactions' markers) `.txnindex`.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use kafka_wire::records::{ControlRecordType, EndTransactionMarker, RecordBatch};
use tracing::{debug, info, warn};

use super::batch::{BatchHeader, BATCH_HEADER_SIZE, MAGIC_V2, NO_TIMESTAMP};
use super::config::LogConfig;
use super::error::{Result, StorageError};
use super::file::{read_at, read_at_pooled, BatchScanner};
use super::index::{self, OffsetIndex};
use super::log::TimestampOffset;
use super::time_index::{self, TimeIndex};
use super::txn_index::{self, StoredTxnIndex, TxnIndex, TxnIndexEntry, TXN_INDEX_SUFFIX};

/// Suffix of a segment's record file.
pub(crate) const LOG_SUFFIX: &str = ".log";
/// Suffix of a segment's offset index.
pub(crate) const INDEX_SUFFIX: &str = ".index";
/// Suffix of a segment's time index.
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Suffix of files scheduled for deletion.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// Largest decompressed records section decoded when a timestamp lookup must look inside
/// a batch; a larger batch is answered at batch granularity.
const MAX_DECOMPRESSED: usize = 128 * 1024 * 1024;

/// The file name of a segment file: the base offset in 20 digits, then `suffix`.
pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// A position inside the segment file: where a batch starts, its header and its size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchPosition {
    pub position: u64,
    pub header: BatchHeader,
    pub size: u64,
}

/// What [`LogSegment::read`] found.
#[derive(Debug)]
pub(crate) struct SegmentRead {
    /// Whole batches, possibly none (limited by `max_offset` or `max_bytes`).
    pub bytes: Vec<u8>,
    /// Next offset after the last returned batch (the fetch offset if none).
    pub next_offset: i64,
}

/// One batch of an append, with its position relative to the start of the appended bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AppendedBatch {
    pub start: u64,
    pub size: u64,
    pub header: BatchHeader,
}

/// How an append failed.
#[derive(Debug)]
pub(crate) struct AppendFailure {
    pub error: StorageError,
    /// The segment is exactly as before the append (the write was rolled back).
    pub rolled_back: bool,
}

/// Whether a segment was loaded as is or recovered, and what recovery cut off.
#[derive(Debug, Default)]
pub(crate) struct LoadOutcome {
    /// The segment was scanned batch by batch and its indexes rebuilt.
    pub recovered: bool,
    /// Bytes removed from the end of the `.log`.
    pub truncated_bytes: u64,
}

/// One segment of a partition log.
#[derive(Debug)]
pub(crate) struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    log: File,
    /// Valid bytes in the `.log` file.
    size: u64,
    index: OffsetIndex,
    time_index: TimeIndex,
    /// Aborted transactions whose marker is in this segment (`.txnindex`).
    txn_index: TxnIndex,
    /// Offset after the last batch (the base offset when empty).
    next_offset: i64,
    /// Largest batch `maxTimestamp` so far, [`NO_TIMESTAMP`] if none.
    max_timestamp: i64,
    /// Last offset of the first batch that reached `max_timestamp`.
    offset_of_max_timestamp: i64,
    /// `maxTimestamp` of the first batch: the reference for `segment.ms`.
    rolling_based_timestamp: Option<i64>,
    /// When the segment was created or loaded (the fallback reference for `segment.ms`).
    created_ms: i64,
    bytes_since_last_index_entry: u64,
    /// Written since the last fsync.
    dirty: bool,
}

impl LogSegment {
    /// Creates an empty segment (replacing stale files with the same base offset).
    pub fn create(dir: &Path, base_offset: i64, config: &LogConfig, now_ms: i64) -> Result<Self> {
        Self::create_with_suffix(dir, base_offset, config, now_ms, "")
    }

    /// Creates an empty segment whose three file names end with `suffix` after the usual
    /// one (`.cleaned` for the log cleaner's output, as Kafka names it).
    pub fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        suffix: &str,
    ) -> Result<Self> {
        let named = |kind: &str| dir.join(format!("{}{suffix}", file_name(base_offset, kind)));
        let log_path = named(LOG_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(StorageError::io("create", &log_path))?;
        let index = OffsetIndex::open(
            named(INDEX_SUFFIX),
            base_offset,
            Vec::new(),
            config.max_index_entries(),
            true,
        )?;
        let time_index = TimeIndex::open(
            named(TIME_INDEX_SUFFIX),
            base_offset,
            Vec::new(),
            config.max_time_index_entries(),
            true,
        )?;
        // Created on its first entry; a stale one must not be taken for it.
        let txn_path = named(TXN_INDEX_SUFFIX);
        super::checkpoint::remove_if_exists(&txn_path)?;
        Ok(LogSegment {
            base_offset,
            log_path,
            log,
            size: 0,
            index,
            time_index,
            txn_index: TxnIndex::new(txn_path, Vec::new()),
            next_offset: base_offset,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            rolling_based_timestamp: None,
            created_ms: now_ms,
            bytes_since_last_index_entry: 0,
            dirty: true,
        })
    }

    /// Opens an existing segment. With `recover`, or when its index files are missing or
    /// fail their sanity checks, every batch is validated (framing, magic, offsets, CRC),
    /// the `.log` is truncated after the last good batch and both indexes are rebuilt.
    ///
    /// `offset_limit` is the next segment's base offset: every offset here must be below it.
    pub fn load(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        recover: bool,
        offset_limit: Option<i64>,
    ) -> Result<(Self, LoadOutcome)> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(StorageError::io("open", &log_path))?;
        let file_len = log
            .metadata()
            .map_err(StorageError::io("stat", &log_path))?
            .len();
        if !recover {
            match Self::load_clean(
                dir,
                base_offset,
                config,
                offset_limit,
                &log,
                &log_path,
                file_len,
            )? {
                Ok(parts) => {
                    let segment =
                        Self::assemble(log_path, log, file_len, base_offset, now_ms, parts);
                    return Ok((segment, LoadOutcome::default()));
                }
                Err(reason) => {
                    info!(segment = %log_path.display(), %reason, "rebuilding segment indexes");
                }
            }
        }
        Self::recover(
            dir,
            log_path,
            log,
            file_len,
            base_offset,
            config,
            now_ms,
            offset_limit,
        )
    }

    fn assemble(
        log_path: PathBuf,
        log: File,
        size: u64,
        base_offset: i64,
        now_ms: i64,
        parts: LoadedParts,
    ) -> Self {
        let (max_timestamp, offset_of_max_timestamp) = parts
            .time_index
            .last_entry()
            .unwrap_or((NO_TIMESTAMP, base_offset));
        let last_index_position = parts
            .index
            .entries()
            .last()
            .map_or(0, |e| u64::from(e.position));
        let txn_path = txn_index_path(&log_path, base_offset);
        LogSegment {
            base_offset,
            log_path,
            log,
            size,
            index: parts.index,
            time_index: parts.time_index,
            txn_index: TxnIndex::new(txn_path, Vec::new()),
            next_offset: parts.next_offset,
            max_timestamp,
            offset_of_max_timestamp,
            rolling_based_timestamp: parts.first_max_timestamp,
            created_ms: now_ms,
            bytes_since_last_index_entry: size - last_index_position,
            dirty: false,
        }
    }

    /// Loads the index files as they are if they pass the sanity checks; `Ok(Err(reason))`
    /// when they must be rebuilt.
    fn load_clean(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        offset_limit: Option<i64>,
        log: &File,
        log_path: &Path,
        file_len: u64,
    ) -> Result<Result<LoadedParts, String>> {
        if file_len > i32::MAX as u64 {
            return Ok(Err(format!("log file of {file_len} bytes is too large")));
        }
        let min_batch = super::batch::BATCH_HEADER_SIZE as u64;
        let index_path = dir.join(file_name(base_offset, INDEX_SUFFIX));
        let time_path = dir.join(file_name(base_offset, TIME_INDEX_SUFFIX));
        let max_index_len = (file_len / min_batch + 1) * index::ENTRY_SIZE as u64;
        let Some(index_bytes) = index::read_index_file(&index_path, max_index_len)? else {
            return Ok(Err("offset index missing or oversized".into()));
        };
        let entries = match OffsetIndex::parse(&index_bytes, file_len) {
            Ok(e) => e,
            Err(reason) => return Ok(Err(format!("offset index: {reason}"))),
        };
        let max_time_len = (file_len / min_batch + 2) * time_index::ENTRY_SIZE as u64;
        let Some(time_bytes) = index::read_index_file(&time_path, max_time_len)? else {
            return Ok(Err("time index missing or oversized".into()));
        };
        let time_entries = match TimeIndex::parse(&time_bytes) {
            Ok(e) => e,
            Err(reason) => return Ok(Err(format!("time index: {reason}"))),
        };
        if file_len > 0 && time_entries.is_empty() {
            return Ok(Err("time index is empty".into()));
        }

        // Walk the batch headers after the last index entry: they must frame the rest of the
        // file exactly, with increasing offsets below the next segment's base offset.
        let mut scanner = BatchScanner::new(log, log_path, file_len);
        let (mut position, mut expected_offset) = match entries.last() {
            Some(e) => {
                let entry_offset = base_offset.saturating_add(i64::from(e.relative_offset));
                match scanner.header_at(u64::from(e.position)) {
                    Ok(Some((h, _))) if h.last_offset() == entry_offset => {
                        (u64::from(e.position), h.base_offset)
                    }
                    Ok(_) | Err(StorageError::CorruptLog { .. }) => {
                        return Ok(Err("last offset index entry does not match the log".into()))
                    }
                    Err(e) => return Err(e),
                }
            }
            None => (0, base_offset),
        };
        let mut first_max_timestamp = None;
        loop {
            let (h, size) = match scanner.header_at(position) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(StorageError::CorruptLog { reason, .. }) => return Ok(Err(reason)),
                Err(e) => return Err(e),
            };
            if let Err(reason) = check_offsets(&h, base_offset, expected_offset, offset_limit) {
                return Ok(Err(reason));
            }
            if position == 0 {
                first_max_timestamp = Some(h.max_timestamp);
            }
            expected_offset = h.next_offset();
            position += size;
        }
        if let Some((_, offset)) = time_entries.last().map(|e| {
            (
                e.timestamp,
                base_offset.saturating_add(i64::from(e.relative_offset)),
            )
        }) {
            if offset >= expected_offset {
                return Ok(Err("time index points past the end of the log".into()));
            }
        }
        if first_max_timestamp.is_none() && file_len > 0 {
            first_max_timestamp = match scanner.header_at(0) {
                Ok(found) => found.map(|(h, _)| h.max_timestamp),
                Err(StorageError::CorruptLog { reason, .. }) => return Ok(Err(reason)),
                Err(e) => return Err(e),
            };
        }
        let index = OffsetIndex::open(
            index_path,
            base_offset,
            entries,
            config.max_index_entries(),
            false,
        )?;
        let time_index = TimeIndex::open(
            time_path,
            base_offset,
            time_entries,
            config.max_time_index_entries(),
            false,
        )?;
        Ok(Ok(LoadedParts {
            index,
            time_index,
            next_offset: expected_offset,
            first_max_timestamp,
        }))
    }

    /// Kafka's `LogSegment.recover`: validates every batch, truncates the file after the
    /// last valid one and rebuilds both indexes.
    #[allow(clippy::too_many_arguments)]
    fn recover(
        dir: &Path,
        log_path: PathBuf,
        log: File,
        file_len: u64,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        offset_limit: Option<i64>,
    ) -> Result<(Self, LoadOutcome)> {
        let index = OffsetIndex::open(
            dir.join(file_name(base_offset, INDEX_SUFFIX)),
            base_offset,
            Vec::new(),
            config.max_index_entries(),
            true,
        )?;
        let time_index = TimeIndex::open(
            dir.join(file_name(base_offset, TIME_INDEX_SUFFIX)),
            base_offset,
            Vec::new(),
            config.max_time_index_entries(),
            true,
        )?;
        let txn_path = dir.join(file_name(base_offset, TXN_INDEX_SUFFIX));
        let mut segment = LogSegment {
            base_offset,
            log_path,
            log,
            size: 0,
            index,
            time_index,
            txn_index: TxnIndex::new(txn_path, Vec::new()),
            next_offset: base_offset,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            rolling_based_timestamp: None,
            created_ms: now_ms,
            bytes_since_last_index_entry: 0,
            dirty: true,
        };
        let interval = config.index_interval();
        // Segment positions are i32 in the index: nothing may end beyond i32::MAX.
        let end = file_len.min(i32::MAX as u64);
        let mut position = 0u64;
        let mut problem: Option<String> = None;
        {
            let mut scanner = BatchScanner::new(&segment.log, &segment.log_path, end);
            loop {
                let (h, size) = match scanner.header_at(position) {
                    Ok(Some(found)) => found,
                    Ok(None) => break,
                    Err(StorageError::CorruptLog { reason, .. }) => {
                        problem = Some(reason);
                        break;
                    }
                    Err(e) => return Err(e),
                };
                if let Err(reason) =
                    check_offsets(&h, base_offset, segment.next_offset, offset_limit)
                {
                    problem = Some(reason);
                    break;
                }
                let crc = scanner.crc_of(position, size)?;
                if crc != h.crc {
                    problem = Some(format!(
                        "CRC {:#010x} does not match the computed {crc:#010x}",
                        h.crc
                    ));
                    break;
                }
                if position == 0 {
                    segment.rolling_based_timestamp = Some(h.max_timestamp);
                }
                if h.max_timestamp > segment.max_timestamp {
                    segment.max_timestamp = h.max_timestamp;
                    segment.offset_of_max_timestamp = h.last_offset();
                }
                if segment.bytes_since_last_index_entry > interval {
                    segment.index.append(h.last_offset(), position)?;
                    segment.time_index.maybe_append(
                        segment.max_timestamp,
                        segment.offset_of_max_timestamp,
                        false,
                    )?;
                    segment.bytes_since_last_index_entry = 0;
                }
                segment.bytes_since_last_index_entry += size;
                segment.next_offset = h.next_offset();
                position += size;
            }
        }
        if problem.is_none() && end < file_len {
            problem = Some("segment is larger than 2 GiB".into());
        }
        segment.size = position;
        let truncated_bytes = file_len - position;
        if truncated_bytes > 0 {
            warn!(
                segment = %segment.log_path.display(),
                position,
                truncated_bytes,
                reason = problem.as_deref().unwrap_or("trailing bytes"),
                "truncating invalid data at the end of the segment"
            );
            segment
                .log
                .set_len(position)
                .map_err(StorageError::io("truncate", &segment.log_path))?;
        }
        // As a cleanly closed segment: the largest timestamp is the last time index entry.
        segment.time_index.maybe_append(
            segment.max_timestamp,
            segment.offset_of_max_timestamp,
            true,
        )?;
        Ok((
            segment,
            LoadOutcome {
                recovered: true,
                truncated_bytes,
            },
        ))
    }

    /// The segment's base offset.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Valid bytes in the `.log` file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The offset after the last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Largest batch timestamp and the last offset of the (first) batch holding it.
    pub fn max_timestamp_and_offset(&self) -> (i64, i64) {
        (self.max_timestamp, self.offset_of_max_timestamp)
    }

    /// The path of the `.log` file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The open `.log` file (the log cleaner duplicates the handle to read an inactive
    /// segment without the log's lock, and compares file identities before its swap).
    pub fn log_file(&self) -> &File {
        &self.log
    }

    /// The offset index (for tests and diagnostics).
    #[cfg(test)]
    pub fn index(&self) -> &OffsetIndex {
        &self.index
    }

    /// The time index (for tests and diagnostics).
    #[cfg(test)]
    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    /// Applies a changed configuration (index capacities).
    pub fn update_config(&mut self, config: &LogConfig) {
        self.index.set_max_entries(config.max_index_entries());
        self.time_index
            .set_max_entries(config.max_time_index_entries());
    }

    /// The segment's largest timestamp for time retention: the largest batch timestamp, or
    /// the file's modification time when no batch has a timestamp (as Kafka).
    pub fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(NO_TIMESTAMP, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            })
    }

    /// Kafka's `LogSegment.shouldRoll`, for an append of `messages_size` bytes whose largest
    /// timestamp is `max_timestamp` and largest offset `max_offset`. An empty segment is
    /// never rolled.
    pub fn should_roll(
        &self,
        config: &LogConfig,
        messages_size: u64,
        max_timestamp: i64,
        max_offset: i64,
        now_ms: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let waited = match self.rolling_based_timestamp {
            Some(t) if t >= 0 => max_timestamp.saturating_sub(t),
            _ => now_ms.saturating_sub(self.created_ms),
        };
        let segment_bytes = u64::try_from(config.segment_bytes).unwrap_or(0);
        let fits_relative = max_offset
            .checked_sub(self.base_offset)
            .is_some_and(|r| r <= i64::from(i32::MAX));
        self.size + messages_size > segment_bytes
            || waited > config.segment_ms
            || self.index.is_full()
            || self.time_index.is_full()
            || !fits_relative
    }

    /// Appends validated batches (already holding their offsets), then updates the indexes
    /// following Kafka's rule.
    pub fn append(
        &mut self,
        bytes: &[u8],
        batches: &[AppendedBatch],
        index_interval: u64,
    ) -> Result<(), AppendFailure> {
        let start = self.size;
        if let Err(e) = self.log.write_all_at(bytes, start) {
            let error = StorageError::io("write", &self.log_path)(e);
            let rolled_back = self.log.set_len(start).is_ok();
            return Err(AppendFailure { error, rolled_back });
        }
        self.dirty = true;
        self.size += bytes.len() as u64;
        if start == 0 {
            self.rolling_based_timestamp = batches.first().map(|b| b.header.max_timestamp);
        }
        if let Some(last) = batches.last() {
            self.next_offset = last.header.next_offset();
        }
        let mut result = Ok(());
        for b in batches {
            let h = &b.header;
            if h.max_timestamp > self.max_timestamp {
                self.max_timestamp = h.max_timestamp;
                self.offset_of_max_timestamp = h.last_offset();
            }
            if self.bytes_since_last_index_entry > index_interval {
                result = result
                    .and_then(|()| self.index.append(h.last_offset(), start + b.start))
                    .and_then(|()| {
                        self.time_index.maybe_append(
                            self.max_timestamp,
                            self.offset_of_max_timestamp,
                            false,
                        )
                    });
                self.bytes_since_last_index_entry = 0;
            }
            self.bytes_since_last_index_entry += b.size;
        }
        result.map_err(|error| AppendFailure {
            error,
            rolled_back: false,
        })
    }

    /// Called when the segment stops being the active one: records the largest timestamp
    /// in the time index (Kafka's `onBecomeInactiveSegment`).
    pub fn on_become_inactive(&mut self) -> Result<()> {
        self.time_index
            .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, true)
    }

    /// fsyncs the `.log` and both indexes if anything was written since the last fsync.
    pub fn sync(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.log
            .sync_all()
            .map_err(StorageError::io("fsync", &self.log_path))?;
        self.index.sync()?;
        self.time_index.sync()?;
        self.txn_index.sync()?;
        self.dirty = false;
        Ok(())
    }

    fn scanner(&self) -> BatchScanner<'_> {
        BatchScanner::new(&self.log, &self.log_path, self.size)
    }

    /// The batch header at `position`, checked against what the segment must hold: magic 2,
    /// a base offset of at least `min_base_offset` (the previous batch's next offset, or the
    /// segment's base offset), and offsets below the segment's next offset. Inactive
    /// segments loaded after a clean shutdown are not CRC-checked on open (as in Kafka);
    /// this keeps damage there from being served as if it were data.
    fn header_at(
        &self,
        scanner: &mut BatchScanner<'_>,
        position: u64,
        min_base_offset: i64,
    ) -> Result<Option<(BatchHeader, u64)>> {
        let Some((h, size)) = scanner.header_at(position)? else {
            return Ok(None);
        };
        self.check_header(&h, position, min_base_offset)?;
        Ok(Some((h, size)))
    }

    /// The checks of [`header_at`](Self::header_at) that do not depend on how the header
    /// was read.
    fn check_header(&self, h: &BatchHeader, position: u64, min_base_offset: i64) -> Result<()> {
        check_batch_header(
            &self.log_path,
            h,
            position,
            min_base_offset,
            self.next_offset,
        )
    }

    /// The header of the batch at offset `at` of `buf`, which holds the segment's bytes from
    /// `start`, checked like [`header_at`](Self::header_at). `None` when the segment ends at
    /// `at`, or when `buf` ends before the header does (the batch is then beyond the
    /// caller's budget).
    fn header_in(
        &self,
        buf: &[u8],
        start: u64,
        at: usize,
        min_base_offset: i64,
    ) -> Result<Option<(BatchHeader, u64)>> {
        let position = start + at as u64;
        if position >= self.size {
            return Ok(None);
        }
        let corrupt = |reason: String| StorageError::CorruptLog {
            path: self.log_path.clone(),
            position,
            reason,
        };
        if buf.len() - at < BATCH_HEADER_SIZE {
            if self.size - position < BATCH_HEADER_SIZE as u64 {
                return Err(corrupt("partial batch header".into()));
            }
            return Ok(None);
        }
        let header = BatchHeader::parse(&buf[at..at + BATCH_HEADER_SIZE]);
        let Some(size) = header.size() else {
            return Err(corrupt(format!(
                "batch length {} is too small",
                header.batch_length
            )));
        };
        if size > self.size - position {
            return Err(corrupt(format!(
                "batch of {size} bytes extends past the end of the segment"
            )));
        }
        self.check_header(&header, position, min_base_offset)?;
        Ok(Some((header, size)))
    }

    /// The first batch whose last offset is `>= offset`: index lookup, then a scan of batch
    /// headers from the indexed position. `None` when the segment ends first.
    pub fn find_batch(&self, offset: i64) -> Result<Option<BatchPosition>> {
        let (_, mut position) = self.index.lookup(offset);
        let mut scanner = self.scanner();
        let mut min_base = self.base_offset;
        while let Some((header, size)) = self.header_at(&mut scanner, position, min_base)? {
            if header.last_offset() >= offset {
                return Ok(Some(BatchPosition {
                    position,
                    header,
                    size,
                }));
            }
            min_base = header.next_offset();
            position += size;
        }
        Ok(None)
    }

    /// Reads whole batches starting with the one containing `fetch_offset` (or the first
    /// after it), stopping before a batch that reaches `max_offset` or would take the total
    /// over `max_bytes` (unless `min_one_batch` and nothing was taken yet). `None` when this
    /// segment has no batch at or after `fetch_offset`.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<SegmentRead>> {
        let Some(first) = self.find_batch(fetch_offset)? else {
            return Ok(None);
        };
        let empty = SegmentRead {
            bytes: Vec::new(),
            next_offset: fetch_offset,
        };
        if first.header.last_offset() >= max_offset
            || (first.size > max_bytes as u64 && !min_one_batch)
        {
            return Ok(Some(empty));
        }
        // One read covers everything that may be returned: up to `max_bytes` (bounded by the
        // segment), or the whole first batch when it alone is larger (KIP-74). The batches
        // are then cut in memory.
        let start = first.position;
        let budget = (max_bytes as u64).min(self.size - start).max(first.size);
        let mut bytes = read_at_pooled(&self.log, &self.log_path, start, budget as usize)?;
        let mut end = first.size as usize;
        let mut next_offset = first.header.next_offset();
        while let Some((header, size)) = self.header_in(&bytes, start, end, next_offset)? {
            if header.last_offset() >= max_offset || (end as u64 + size) > max_bytes as u64 {
                break;
            }
            end += size as usize;
            next_offset = header.next_offset();
        }
        bytes.truncate(end);
        Ok(Some(SegmentRead { bytes, next_offset }))
    }

    /// Reads one whole batch and decodes it with `kafka-wire` (for record-level lookups).
    fn decode_batch(&self, at: &BatchPosition) -> Result<Option<RecordBatch>> {
        let bytes = read_at(&self.log, &self.log_path, at.position, at.size as usize)?;
        match RecordBatch::from_bytes(Bytes::from(bytes)) {
            Ok(batch) => Ok(Some(batch)),
            Err(e) => {
                debug!(segment = %self.log_path.display(), position = at.position, error = %e,
                    "cannot decode batch for a timestamp lookup");
                Ok(None)
            }
        }
    }

    /// The first record with `offset >= starting_offset` whose timestamp is `>= target`
    /// (Kafka's `LogSegment.findOffsetByTimestamp`): the time index gives the starting
    /// batch, batch headers are scanned for `maxTimestamp >= target`, and the records of
    /// that batch are decoded to find the exact record.
    pub fn find_offset_by_timestamp(
        &self,
        target: i64,
        starting_offset: i64,
    ) -> Result<Option<TimestampOffset>> {
        let from_offset = self
            .time_index
            .lookup(target)
            .map_or(self.base_offset, |(_, offset)| offset);
        let (_, mut position) = self.index.lookup(from_offset);
        let mut scanner = self.scanner();
        let mut min_base = self.base_offset;
        while let Some((header, size)) = self.header_at(&mut scanner, position, min_base)? {
            let at = BatchPosition {
                position,
                header,
                size,
            };
            position += size;
            min_base = header.next_offset();
            if header.max_timestamp < target || header.last_offset() < starting_offset {
                continue;
            }
            if let Some(found) =
                self.first_record_matching(&at, starting_offset, |ts| ts >= target)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The first record of the batch at `at` with `offset >= starting_offset` and a
    /// timestamp accepted by `accept`. A `LogAppendTime` batch needs no decoding (every
    /// record has the batch's `maxTimestamp`); a batch that cannot be decoded is answered at
    /// batch granularity.
    fn first_record_matching(
        &self,
        at: &BatchPosition,
        starting_offset: i64,
        accept: impl Fn(i64) -> bool,
    ) -> Result<Option<TimestampOffset>> {
        let h = &at.header;
        let batch_level = TimestampOffset {
            timestamp: h.max_timestamp,
            offset: h.base_offset.max(starting_offset),
            leader_epoch: h.leader_epoch(),
        };
        if h.is_log_append_time() {
            return Ok(accept(h.max_timestamp).then_some(batch_level));
        }
        let Some(batch) = self.decode_batch(at)? else {
            return Ok(Some(batch_level));
        };
        let records = match batch.records(MAX_DECOMPRESSED) {
            Ok(r) => r,
            Err(_) => return Ok(Some(batch_level)),
        };
        for record in records {
            let Ok(record) = record else {
                return Ok(Some(batch_level));
            };
            if record.offset >= starting_offset && accept(record.timestamp) {
                return Ok(Some(TimestampOffset {
                    timestamp: record.timestamp,
                    offset: record.offset,
                    leader_epoch: h.leader_epoch(),
                }));
            }
        }
        Ok(None)
    }

    /// The record with the segment's largest timestamp (ListOffsets `MAX_TIMESTAMP`): the
    /// first batch whose `maxTimestamp` is the segment's maximum, and in it the first record
    /// with that timestamp (the batch's last offset if it cannot be decoded).
    pub fn max_timestamp_record(&self) -> Result<Option<TimestampOffset>> {
        if self.max_timestamp < 0 {
            return Ok(None);
        }
        let (_, mut position) = self.index.lookup(self.offset_of_max_timestamp);
        let mut scanner = self.scanner();
        let mut min_base = self.base_offset;
        while let Some((header, size)) = self.header_at(&mut scanner, position, min_base)? {
            let at = BatchPosition {
                position,
                header,
                size,
            };
            position += size;
            min_base = header.next_offset();
            if header.max_timestamp != self.max_timestamp {
                continue;
            }
            let max = self.max_timestamp;
            let found = self.first_record_matching(&at, header.base_offset, |ts| ts == max)?;
            return Ok(Some(found.unwrap_or(TimestampOffset {
                timestamp: max,
                offset: header.last_offset(),
                leader_epoch: header.leader_epoch(),
            })));
        }
        Ok(None)
    }

    /// Renames the segment's files from `<name><from>` to `<name><to>` (Kafka's
    /// `changeFileSuffixes`): the two indexes first, the `.log` last, so that the `.log` file's
    /// name tells recovery whether the whole set was renamed. Open handles stay valid.
    pub fn change_file_suffixes(&mut self, from: &str, to: &str) -> Result<()> {
        let renamed = |path: &Path| -> Result<PathBuf> {
            let name = path
                .to_str()
                .and_then(|p| p.strip_suffix(from))
                .ok_or_else(|| {
                    StorageError::io("rename", path)(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("file name does not end with {from:?}"),
                    ))
                })?;
            let target = PathBuf::from(format!("{name}{to}"));
            fs::rename(path, &target).map_err(StorageError::io("rename", path))?;
            Ok(target)
        };
        let index = renamed(self.index.path())?;
        self.index.set_path(index);
        let time_index = renamed(self.time_index.path())?;
        self.time_index.set_path(time_index);
        // The transaction index exists only when it has entries; its new name is kept
        // either way.
        let txn_path = self.txn_index.path().to_path_buf();
        if super::checkpoint::exists(&txn_path)? {
            let target = renamed(&txn_path)?;
            self.txn_index.set_path(target);
        } else if let Some(name) = txn_path.to_str().and_then(|p| p.strip_suffix(from)) {
            self.txn_index
                .set_path(PathBuf::from(format!("{name}{to}")));
        }
        self.log_path = renamed(&self.log_path)?;
        Ok(())
    }

    /// The transaction index.
    pub fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }

    /// Records an aborted transaction whose marker was just appended to this segment.
    ///
    /// # Errors
    /// [`StorageError::Io`].
    pub fn append_aborted_txn(&mut self, entry: TxnIndexEntry) -> Result<()> {
        self.dirty = true;
        self.txn_index.append(entry)
    }

    /// Replaces the transaction index's entries and file (the log cleaner's output).
    ///
    /// # Errors
    /// [`StorageError::Io`].
    pub fn set_aborted_txns(&mut self, entries: Vec<TxnIndexEntry>) -> Result<()> {
        self.dirty = true;
        self.txn_index.rewrite(entries)
    }

    /// Loads the `.txnindex` when the log is opened, checked against `computed`, the
    /// aborted transactions the producer state rebuild found in this segment. The file's
    /// entries for markers inside the segment are kept; entries past the segment's end (a
    /// truncated tail) are dropped, entries of `computed` the file lacks (a missing, cut or
    /// damaged file) are added; the file is rewritten when that changed anything.
    ///
    /// # Errors
    /// [`StorageError::Io`].
    pub fn reconcile_txn_index(&mut self, computed: Vec<TxnIndexEntry>) -> Result<()> {
        let path = self.txn_index.path().to_path_buf();
        let (stored, mut problem) = match txn_index::read(&path)? {
            StoredTxnIndex::Missing => (Vec::new(), None),
            StoredTxnIndex::Read(entries, problem) => (entries, problem),
        };
        let mut merged = std::collections::BTreeMap::new();
        for e in &stored {
            if e.last_offset >= self.base_offset && e.last_offset < self.next_offset {
                merged.insert(e.last_offset, *e);
            } else {
                problem.get_or_insert_with(|| {
                    format!("entry ending at {} is outside the segment", e.last_offset)
                });
            }
        }
        for e in computed {
            if let std::collections::btree_map::Entry::Vacant(v) = merged.entry(e.last_offset) {
                v.insert(e);
                problem.get_or_insert_with(|| {
                    format!("aborted transaction ending at {} is missing", e.last_offset)
                });
            }
        }
        let merged: Vec<TxnIndexEntry> = merged.into_values().collect();
        match problem {
            None => {
                self.txn_index = TxnIndex::new(path, merged);
                Ok(())
            }
            Some(reason) => {
                info!(file = %path.display(), %reason, entries = merged.len(),
                    "rebuilding transaction index");
                self.txn_index = TxnIndex::new(path, Vec::new());
                self.txn_index.rewrite(merged)?;
                self.txn_index.sync()
            }
        }
    }

    /// Calls `f` with the position, header and size of every batch, in log order. Stops at
    /// the first error of `f`, or with [`StorageError::CorruptLog`] at a batch inconsistent
    /// with the segment (the batches before it have been visited).
    pub fn visit_batches(&self, mut f: impl FnMut(&BatchPosition) -> Result<()>) -> Result<()> {
        visit_batches_of(
            &self.log,
            &self.log_path,
            self.size,
            (self.base_offset, self.next_offset),
            |at, _| f(at),
        )
    }

    /// Reads the transaction marker of the control batch at `at`: `(commit, coordinator
    /// epoch)`, or `None` when the batch holds no commit/abort marker (an emptied or unknown
    /// control batch, or one that cannot be decoded, which is logged).
    ///
    /// # Errors
    /// [`StorageError::Io`].
    pub fn read_txn_marker(&self, at: &BatchPosition) -> Result<Option<(bool, i32)>> {
        // A marker batch is about 80 bytes; anything much larger is not one.
        if at.size > 64 * 1024 {
            return Ok(None);
        }
        let Some(batch) = self.decode_batch(at)? else {
            return Ok(None);
        };
        let decoded =
            batch
                .records(MAX_DECOMPRESSED)
                .and_then(|mut records| match records.next_borrowed() {
                    Some(record) => {
                        let record = record?;
                        EndTransactionMarker::decode(record.key, record.value)
                    }
                    None => Ok(None),
                });
        match decoded {
            Ok(marker) => Ok(marker.map(|m| {
                (
                    m.control_type == ControlRecordType::Commit,
                    m.coordinator_epoch,
                )
            })),
            Err(e) => {
                warn!(segment = %self.log_path.display(), position = at.position, error = %e,
                    "cannot decode a transaction marker");
                Ok(None)
            }
        }
    }

    /// Appends one stored batch (already holding its final offsets), updating the indexes
    /// (for the log cleaner's output segment).
    pub fn append_stored(&mut self, batch: &[u8], index_interval: u64) -> Result<()> {
        let header = BatchHeader::parse(batch);
        let appended = AppendedBatch {
            start: 0,
            size: batch.len() as u64,
            header,
        };
        self.append(batch, &[appended], index_interval)
            .map_err(|failure| failure.error)
    }

    /// Numbers of offset index and time index entries.
    pub fn index_entry_counts(&self) -> (usize, usize) {
        (self.index.entries().len(), self.time_index.len())
    }

    /// The first batch's `maxTimestamp` (Kafka's `getFirstBatchTimestamp`), if any.
    pub fn first_batch_timestamp(&self) -> Option<i64> {
        self.rolling_based_timestamp
    }

    /// Sets the `.log` file's modification time (Kafka gives a cleaned segment the time of
    /// the last segment it replaces).
    pub fn set_last_modified(&self, time: std::time::SystemTime) -> Result<()> {
        self.log
            .set_modified(time)
            .map_err(StorageError::io("set modification time", &self.log_path))
    }

    /// Closes the files; returns the paths of the `.log`, `.index`, `.timeindex` and
    /// `.txnindex` (which may not exist).
    fn close_files(self) -> [PathBuf; 4] {
        [
            self.log_path.clone(),
            self.index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            self.txn_index.path().to_path_buf(),
        ]
    }

    /// Closes and removes the segment's files (a cleaner output that is not used; the
    /// `.txnindex` if it exists).
    pub fn remove_files(self) -> Result<()> {
        let paths = self.close_files();
        for path in paths {
            super::checkpoint::remove_if_exists(&path)?;
        }
        Ok(())
    }

    /// Closes the files and renames them with the `.deleted` suffix (the `.txnindex` too, if
    /// it exists); returns the new paths.
    pub fn rename_to_deleted(self) -> Result<Vec<PathBuf>> {
        let paths = self.close_files();
        let mut renamed = Vec::with_capacity(paths.len());
        for path in paths {
            let mut target = path.clone().into_os_string();
            target.push(DELETED_SUFFIX);
            let target = PathBuf::from(target);
            match fs::rename(&path, &target) {
                Ok(()) => renamed.push(target),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("rename", &path)(e)),
            }
        }
        Ok(renamed)
    }
}

/// The checks a batch header read from a segment must pass: magic 2, a base offset of at
/// least `min_base_offset` (the previous batch's next offset, or the segment's base offset),
/// and offsets below the segment's `next_offset`.
fn check_batch_header(
    path: &Path,
    h: &BatchHeader,
    position: u64,
    min_base_offset: i64,
    next_offset: i64,
) -> Result<()> {
    if h.magic != MAGIC_V2
        || h.last_offset_delta < 0
        || h.base_offset < min_base_offset
        || h.last_offset() >= next_offset
    {
        return Err(StorageError::CorruptLog {
            path: path.to_path_buf(),
            position,
            reason: format!(
                "batch header (magic {}, offsets {}..={}) is inconsistent with the segment \
                 (offsets {}..{})",
                h.magic,
                h.base_offset,
                h.last_offset(),
                min_base_offset,
                next_offset
            ),
        });
    }
    Ok(())
}

/// [`LogSegment::visit_batches`] over the first `size` bytes of a segment's `.log` file
/// `file` (at `path`), whose offsets lie in `offsets` (base offset, next offset): also used
/// by the log cleaner on a duplicated handle of an inactive segment. `f` also gets the
/// scanner that read the header, to read the batch through its window
/// ([`BatchScanner::read_into`]).
pub(crate) fn visit_batches_of(
    file: &File,
    path: &Path,
    size: u64,
    offsets: (i64, i64),
    mut f: impl FnMut(&BatchPosition, &mut BatchScanner<'_>) -> Result<()>,
) -> Result<()> {
    let (base_offset, next_offset) = offsets;
    let mut scanner = BatchScanner::new(file, path, size);
    let mut position = 0u64;
    let mut min_base = base_offset;
    while let Some((header, size)) = scanner.header_at(position)? {
        check_batch_header(path, &header, position, min_base, next_offset)?;
        let at = BatchPosition {
            position,
            header,
            size,
        };
        f(&at, &mut scanner)?;
        min_base = header.next_offset();
        position += size;
    }
    Ok(())
}

/// The `.txnindex` path of the segment whose `.log` is at `log_path`.
fn txn_index_path(log_path: &Path, base_offset: i64) -> PathBuf {
    log_path.with_file_name(file_name(base_offset, TXN_INDEX_SUFFIX))
}

/// The pieces [`LogSegment::load_clean`] reads from disk.
struct LoadedParts {
    index: OffsetIndex,
    time_index: TimeIndex,
    next_offset: i64,
    first_max_timestamp: Option<i64>,
}

/// Checks a stored batch's magic and offsets: at or after `expected_offset`, a non-negative
/// delta, relative offsets that fit an `i32`, and below the next segment's base offset.
fn check_offsets(
    h: &BatchHeader,
    base_offset: i64,
    expected_offset: i64,
    offset_limit: Option<i64>,
) -> Result<(), String> {
    if h.magic != MAGIC_V2 {
        return Err(format!("unsupported magic {}", h.magic));
    }
    if h.base_offset < expected_offset {
        return Err(format!(
            "batch base offset {} is below the expected {expected_offset}",
            h.base_offset
        ));
    }
    if h.last_offset_delta < 0 {
        return Err(format!("negative lastOffsetDelta {}", h.last_offset_delta));
    }
    let last = h.last_offset();
    if last - base_offset > i64::from(i32::MAX) {
        return Err(format!(
            "offset {last} does not fit the index of segment {base_offset}"
        ));
    }
    if let Some(limit) = offset_limit {
        if last >= limit {
            return Err(format!(
                "offset {last} overlaps the next segment starting at {limit}"
            ));
        }
    }
    Ok(())
}
