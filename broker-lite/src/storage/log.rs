//! [`PartitionLog`]: the durable log of one partition, a sequence of segments.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tracing::{debug, info};

use super::batch::{patch_for_append, validate_batches, NO_TIMESTAMP};
use super::checkpoint;
use super::config::{LogConfig, MessageTimestampType};
use super::error::{Result, StorageError};
use super::producer_state::{
    AppendCheck, AppendOrigin, CompletedTxn, MarkerBatch, PendingUpdates, ProducerBatch,
    ProducerStateManager,
};
use super::segment::{AppendedBatch, LogSegment};
use super::txn_index::TxnIndexEntry;

/// ListOffsets timestamp for the log end offset (the high watermark for consumers).
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets timestamp for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp for the record with the largest timestamp (KIP-734).
pub const MAX_TIMESTAMP: i64 = -3;
/// ListOffsets timestamp for the earliest offset in local storage (KIP-405); without tiered
/// storage, the log start offset.
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;

/// What an append did: the offsets assigned and the timestamps recorded, as the Produce
/// response reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended (the Produce response's `base_offset`).
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Number of records appended.
    pub record_count: i64,
    /// Number of batches appended.
    pub batch_count: usize,
    /// Bytes appended to the log.
    pub size_in_bytes: usize,
    /// Largest batch `maxTimestamp` appended (the append time for `LogAppendTime`).
    pub max_timestamp: i64,
    /// Last offset of the first appended batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// The broker's append time for `LogAppendTime` topics, -1 for `CreateTime` (the Produce
    /// response's `log_append_time_ms`).
    pub log_append_time: i64,
    /// The log start offset after the append (the Produce response's `log_start_offset`).
    pub log_start_offset: i64,
    /// The append was a retry of an idempotent producer's batch that is already in the log
    /// (KIP-98): nothing was written, and `base_offset`, `last_offset`, `max_timestamp` and
    /// `log_append_time` are those of the original batch (`record_count`, `batch_count` and
    /// `size_in_bytes` are 0).
    pub duplicate: bool,
}

/// What a read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole record batches, byte for byte as stored, ready for a Fetch response's
    /// `records`. The first batch contains the fetch offset, so it may start before it.
    pub records: Bytes,
    /// The offset after the last returned batch (the fetch offset when nothing was
    /// returned): where the next fetch continues.
    pub next_offset: i64,
    /// The high watermark at the time of the read.
    pub high_watermark: i64,
    /// The log start offset at the time of the read.
    pub log_start_offset: i64,
    /// The log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// An offset found by timestamp (ListOffsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The record's timestamp, -1 for `EARLIEST`/`LATEST`.
    pub timestamp: i64,
    /// The offset.
    pub offset: i64,
    /// The leader epoch of the batch holding the offset, when known.
    pub leader_epoch: Option<i32>,
}

/// A transaction marker for [`PartitionLog::append_txn_marker`]: what the transaction
/// coordinator writes to end a transaction in a partition (KIP-98 `WriteTxnMarkers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transactional producer's id.
    pub producer_id: i64,
    /// The producer epoch the transaction ends with (the coordinator may have bumped it).
    pub producer_epoch: i16,
    /// The epoch of the transaction coordinator writing the marker.
    pub coordinator_epoch: i32,
    /// Commit (`true`) or abort (`false`).
    pub commit: bool,
}

/// One producer's state in a partition, as DescribeProducers reports it (KIP-664; Kafka's
/// `UnifiedLog.activeProducers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ActiveProducer {
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// The last sequence appended with that epoch, -1 if none is cached.
    pub last_sequence: i32,
    /// `maxTimestamp` of its last batch, or the timestamp of its last marker; -1 if none.
    pub last_timestamp: i64,
    /// The epoch of the coordinator that wrote its last marker, -1 if none.
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction in this partition, if any.
    pub current_txn_start_offset: Option<i64>,
}

/// An aborted transaction overlapping a fetch (Fetch's `AbortedTransaction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer id of the aborted transaction.
    pub producer_id: i64,
    /// The first offset of the aborted transaction in this partition.
    pub first_offset: i64,
}

/// What [`PartitionLog::write_append`] records once the bytes are written.
struct WrittenAppend {
    /// Largest `maxTimestamp` of the appended batches (for `segment.ms`).
    max_timestamp: i64,
    /// Offset of the last appended record.
    last_offset: i64,
    /// Records appended (for `flush.messages`).
    record_count: i64,
    /// Producer state to apply.
    producer_updates: Option<PendingUpdates>,
    /// The transaction a marker completes.
    completed_txn: Option<CompletedTxn>,
}

/// The durable log of one partition, stored in Kafka's on-disk layout; see the
/// [module documentation](super) for the layout and invariants.
///
/// All methods do blocking file I/O: call them from a blocking-safe context (a blocking
/// thread, or behind a mutex held briefly). `&self` methods only read, so a
/// `RwLock<PartitionLog>` lets fetches run concurrently. The log is `Send` and `Sync`.
///
/// After an I/O failure that may have left the files inconsistent, every operation returns
/// [`StorageError::LogOffline`]; reopening recovers the log.
#[derive(Debug)]
pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    /// Sorted by base offset, never empty; the last one is the active segment.
    pub(super) segments: Vec<LogSegment>,
    pub(super) log_start_offset: i64,
    pub(super) high_watermark: i64,
    /// Whether appends move the high watermark to the log end offset (single replica).
    pub(super) auto_high_watermark: bool,
    pub(super) leader_epoch: i32,
    pub(super) unflushed_messages: i64,
    pub(super) last_flush_ms: i64,
    /// Files renamed with `.deleted`, and when they may be removed.
    pub(super) pending_deletes: Vec<(PathBuf, i64)>,
    pub(super) offline: bool,
    /// Set by [`close`](PartitionLog::close).
    pub(super) closed: bool,
    /// Idempotent producers' state (KIP-98), rebuilt on open.
    pub(super) producers: ProducerStateManager,
    /// How far the log cleaner has cleaned (its first dirty offset), as kept in the data
    /// directory's `cleaner-offset-checkpoint`; `None` before the first cleaning.
    pub(super) cleaner_checkpoint: Option<i64>,
    /// The earliest delete horizon of the tombstones the last cleaning kept: a cleaning
    /// after it can remove them (in memory only).
    pub(super) tombstone_horizon: Option<i64>,
}

impl PartitionLog {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in effect.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration (AlterConfigs). Takes effect from the next append, roll
    /// or retention pass; existing segments are not rewritten.
    ///
    /// The configuration should come from [`LogConfig::from_props`] or have passed
    /// [`LogConfig::validate`]; out-of-range values never cause a panic, they only make the
    /// log behave conservatively (e.g. a non-positive `segment.bytes` rejects every append).
    pub fn set_config(&mut self, config: LogConfig) {
        for segment in &mut self.segments {
            segment.update_config(&config);
        }
        self.config = config;
    }

    /// Whether appending `bytes` bytes now may wait on the disk rather than only copy into
    /// the page cache: an fsync is configured (`flush.messages` or `flush.ms` set), or the
    /// append would roll the active segment (which fsyncs the old one). A conservative
    /// estimate made before the batches are parsed: the append's max timestamp is taken to be
    /// `now_ms` and its last offset the log end offset plus `bytes`.
    pub fn append_may_block(&self, bytes: usize, now_ms: i64) -> bool {
        if self.config.flush_messages != i64::MAX || self.config.flush_ms != i64::MAX {
            return true;
        }
        let bytes = bytes as u64;
        self.active().should_roll(
            &self.config,
            bytes,
            now_ms,
            self.log_end_offset().saturating_add(bytes as i64),
            now_ms,
        )
    }

    /// The first offset that may be read.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next appended record will get (LEO).
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// The high watermark: reads for consumers stop before it. With a single replica it
    /// follows the log end offset after every append.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Sets the high watermark, clamped to `[log_start_offset, log_end_offset]` as Kafka
    /// does; returns the value set. For replication, disable the automatic advance with
    /// [`set_auto_high_watermark`](Self::set_auto_high_watermark) first.
    pub fn set_high_watermark(&mut self, offset: i64) -> i64 {
        self.high_watermark = offset.min(self.log_end_offset()).max(self.log_start_offset);
        self.high_watermark
    }

    /// Whether each append moves the high watermark to the new log end offset (the
    /// default: a single-replica partition). Turning it off leaves the high watermark to
    /// [`set_high_watermark`](Self::set_high_watermark).
    pub fn set_auto_high_watermark(&mut self, enabled: bool) {
        self.auto_high_watermark = enabled;
    }

    /// The leader epoch written into appended batches (`partitionLeaderEpoch`).
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Sets the leader epoch written into appended batches. Default 0.
    pub fn set_leader_epoch(&mut self, epoch: i32) {
        self.leader_epoch = epoch;
    }

    /// Total bytes of all segments (DescribeLogDirs).
    pub fn size_in_bytes(&self) -> u64 {
        self.segments.iter().map(LogSegment::size).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.iter().map(LogSegment::base_offset).collect()
    }

    pub(super) fn active(&self) -> &LogSegment {
        // `segments` is never empty: open creates a segment and retention keeps the active.
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    pub(super) fn check_online(&self) -> Result<()> {
        if self.closed {
            return Err(StorageError::LogClosed(self.dir.clone()));
        }
        if self.offline {
            return Err(StorageError::LogOffline(self.dir.clone()));
        }
        Ok(())
    }

    /// Marks the log offline when `result` is an I/O failure.
    pub(super) fn offline_on_io<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(StorageError::Io { .. }) = &result {
            self.offline = true;
        }
        result
    }

    /// Appends one or more record batches v2 (a Produce request's `records` for this
    /// partition), assigning offsets from the log end offset.
    ///
    /// Every batch is validated first, as Kafka does for client appends; nothing is written
    /// unless all pass. Batches with a producer id (idempotent producers, KIP-98) are then
    /// checked against the partition's producer state: a retry of a batch already in the log
    /// writes nothing and returns the original offsets with [`AppendInfo::duplicate`] set; an
    /// old epoch or a sequence gap rejects the append. The producer's fields are stored as
    /// sent. The broker-owned header fields are then patched in place in
    /// `records`: `baseOffset` and `partitionLeaderEpoch` (outside the CRC), and for
    /// `message.timestamp.type=LogAppendTime` the timestamp-type bit and `maxTimestamp =
    /// now_ms` (with the CRC recomputed). The segment is rolled first if needed, then the
    /// bytes are written as they are.
    ///
    /// # Errors
    /// * [`StorageError::CorruptMessage`]: truncated batch, bad length or CRC.
    /// * [`StorageError::InvalidRecord`]: no batch, magic other than 2, inconsistent
    ///   `recordCount`/`lastOffsetDelta`, control batch, unknown codec, idempotent batch
    ///   without a sequence.
    /// * [`StorageError::InvalidTimestamp`]: the producer set `LogAppendTime`.
    /// * [`StorageError::MessageTooLarge`]: a batch exceeds `max.message.bytes`.
    /// * [`StorageError::RecordListTooLarge`]: the append exceeds `segment.bytes`.
    /// * [`StorageError::InvalidProducerEpoch`]: a batch's producer epoch is older than the
    ///   partition's for that producer id.
    /// * [`StorageError::OutOfOrderSequence`]: a batch's sequence does not follow the
    ///   producer's last one (or a new epoch does not start at 0).
    /// * [`StorageError::InvalidTxnState`]: a non-transactional batch from a producer whose
    ///   transaction is open in this partition (KIP-98).
    /// * [`StorageError::Io`] / [`StorageError::LogOffline`]: storage failure.
    pub fn append(&mut self, records: &mut [u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_with_origin(records, now_ms, AppendOrigin::Client)
    }

    /// Appends batches written by a coordinator on the broker itself (Kafka's `appendAsLeader`
    /// with origin `COORDINATOR`), e.g. the group coordinator's transactional offset commits
    /// (TxnOffsetCommit): batches may carry a producer id and the transactional bit without a
    /// sequence (`NO_SEQUENCE`, -1); epochs and the transaction state are checked, sequences
    /// are not and no duplicate is detected. A transactional batch opens (or continues) the
    /// producer's transaction in this partition, as for client batches, so the last stable
    /// offset stays before it until its marker is written. Control batches are refused: use
    /// [`append_txn_marker`](Self::append_txn_marker).
    ///
    /// # Errors
    /// As [`append`](Self::append), without the sequence errors.
    pub fn append_as_coordinator(&mut self, records: &mut [u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_with_origin(records, now_ms, AppendOrigin::Coordinator)
    }

    fn append_with_origin(
        &mut self,
        records: &mut [u8],
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        self.check_online()?;
        let validated =
            validate_batches(records, &self.config, origin == AppendOrigin::Coordinator)?;
        let size = records.len();
        if size > usize::try_from(self.config.segment_bytes).unwrap_or(0) {
            return Err(StorageError::RecordListTooLarge {
                size,
                segment_bytes: self.config.segment_bytes,
            });
        }

        let timestamp_type = self.config.message_timestamp_type;
        let base_offset = self.log_end_offset();

        // Producer state (KIP-98), checked before anything is patched or written, with the
        // offsets and timestamps the batches will have in the log.
        let log_append_time = timestamp_type == MessageTimestampType::LogAppendTime;
        let mut producer_batches = Vec::new();
        let mut offset = base_offset;
        for v in &validated {
            let h = &v.header;
            if h.has_producer_id() && !h.is_control() {
                let max_timestamp = if log_append_time {
                    now_ms
                } else {
                    h.max_timestamp
                };
                producer_batches.push(ProducerBatch::new(
                    h,
                    offset,
                    max_timestamp,
                    log_append_time,
                ));
            }
            offset = offset
                .saturating_add(i64::from(h.last_offset_delta))
                .saturating_add(1);
        }
        let producer_updates = if producer_batches.is_empty() {
            None
        } else {
            match self.producers.check_append(&producer_batches, origin)? {
                AppendCheck::Append(updates) => Some(updates),
                AppendCheck::Duplicate(original) => {
                    debug!(
                        dir = %self.dir.display(),
                        base_offset = original.first_offset,
                        "duplicate batch of an idempotent producer; not appended"
                    );
                    return Ok(AppendInfo {
                        base_offset: original.first_offset,
                        last_offset: original.last_offset,
                        record_count: 0,
                        batch_count: 0,
                        size_in_bytes: 0,
                        max_timestamp: original.max_timestamp,
                        offset_of_max_timestamp: original.last_offset,
                        log_append_time: if original.log_append_time {
                            original.max_timestamp
                        } else {
                            NO_TIMESTAMP
                        },
                        log_start_offset: self.log_start_offset,
                        duplicate: true,
                    });
                }
            }
        };

        let mut next_offset = base_offset;
        let mut record_count = 0i64;
        let mut max_timestamp = NO_TIMESTAMP;
        let mut offset_of_max_timestamp = base_offset;
        let mut batches = Vec::with_capacity(validated.len());
        for v in &validated {
            let Some(last) = next_offset.checked_add(i64::from(v.header.last_offset_delta)) else {
                return Err(StorageError::InvalidRecord("offset overflow".into()));
            };
            let header = patch_for_append(
                &mut records[v.start..v.start + v.size],
                next_offset,
                self.leader_epoch,
                timestamp_type,
                now_ms,
            );
            if header.max_timestamp > max_timestamp {
                max_timestamp = header.max_timestamp;
                offset_of_max_timestamp = last;
            }
            record_count += i64::from(header.record_count);
            batches.push(AppendedBatch {
                start: v.start as u64,
                size: v.size as u64,
                header,
            });
            next_offset = last.saturating_add(1);
        }
        let last_offset = next_offset - 1;
        self.write_append(
            records,
            &batches,
            WrittenAppend {
                max_timestamp,
                last_offset,
                record_count,
                producer_updates,
                completed_txn: None,
            },
            now_ms,
        )?;
        debug!(dir = %self.dir.display(), base_offset, last_offset, size, "appended");
        Ok(AppendInfo {
            base_offset,
            last_offset,
            record_count,
            batch_count: batches.len(),
            size_in_bytes: size,
            max_timestamp,
            offset_of_max_timestamp,
            log_append_time: match timestamp_type {
                MessageTimestampType::LogAppendTime => now_ms,
                MessageTimestampType::CreateTime => NO_TIMESTAMP,
            },
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })
    }

    /// The tail every append shares once its batches are patched and its producer state
    /// checked: roll the active segment if needed, write, then update the producer state (and
    /// the `.txnindex` for an aborted transaction), the high watermark and the flush
    /// accounting (Kafka's `UnifiedLog.append` after validation).
    fn write_append(
        &mut self,
        bytes: &[u8],
        batches: &[AppendedBatch],
        append: WrittenAppend,
        now_ms: i64,
    ) -> Result<()> {
        if self.active().should_roll(
            &self.config,
            bytes.len() as u64,
            append.max_timestamp,
            append.last_offset,
            now_ms,
        ) {
            let rolled = self.roll(now_ms);
            self.offline_on_io(rolled)?;
        }
        let interval = self.config.index_interval();
        if let Err(failure) = self.active_mut().append(bytes, batches, interval) {
            if !failure.rolled_back {
                self.offline = true;
            }
            return Err(failure.error);
        }
        if let Some(updates) = append.producer_updates {
            self.producers.apply(updates);
        }
        if let Some(completed) = append.completed_txn {
            if let Some(entry) = self.producers.complete_txn(&completed) {
                let indexed = self.active_mut().append_aborted_txn(entry);
                if indexed.is_err() {
                    // The marker is in the log but its index entry may not be: reopening
                    // rebuilds the index from the log.
                    self.offline = true;
                }
                indexed?;
            }
        }
        if self.auto_high_watermark {
            self.high_watermark = append.last_offset.saturating_add(1);
        }
        self.unflushed_messages = self.unflushed_messages.saturating_add(append.record_count);
        if self.unflushed_messages >= self.config.flush_messages
            || now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms
        {
            let flushed = self.flush_at(now_ms);
            self.offline_on_io(flushed)?;
        }
        Ok(())
    }

    /// Writes a transaction marker (a control batch, Kafka's `EndTransactionMarker` built as
    /// `MemoryRecords.withEndTransactionMarker`) at the log end offset, ending the producer's
    /// open transaction in this partition (Kafka's `appendAsLeader` with origin
    /// `COORDINATOR`). The marker is checked against the producer state first: its epoch
    /// becomes the producer's (a bumped epoch forgets the cached batches, so the producer's
    /// next batch starts at sequence 0) and its coordinator epoch is remembered. An abort
    /// that closes an open transaction adds an entry to the `.txnindex` of the segment that
    /// holds the marker. The last stable offset moves past the transaction. A marker for a
    /// producer without open transaction is written all the same and completes nothing.
    ///
    /// # Errors
    /// * [`StorageError::InvalidProducerEpoch`]: the marker's epoch is below the producer's.
    /// * [`StorageError::TransactionCoordinatorFenced`]: the coordinator epoch is below the
    ///   one of the producer's last marker in this partition.
    /// * Storage failures.
    pub fn append_txn_marker(&mut self, marker: TxnMarker, now_ms: i64) -> Result<AppendInfo> {
        self.check_online()?;
        let base_offset = self.log_end_offset();
        let built = kafka_wire::records::end_transaction_marker_batch(
            base_offset,
            now_ms,
            self.leader_epoch,
            marker.producer_id,
            marker.producer_epoch,
            kafka_wire::records::EndTransactionMarker {
                control_type: if marker.commit {
                    kafka_wire::records::ControlRecordType::Commit
                } else {
                    kafka_wire::records::ControlRecordType::Abort
                },
                coordinator_epoch: marker.coordinator_epoch,
            },
        )
        .map_err(|e| StorageError::InvalidRecord(e.to_string()))?;
        let (updates, completed) = self.producers.check_marker(&MarkerBatch {
            producer_id: marker.producer_id,
            epoch: marker.producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            offset: base_offset,
            timestamp: now_ms,
            commit: marker.commit,
        })?;
        let mut bytes = built.to_vec();
        let header = patch_for_append(
            &mut bytes,
            base_offset,
            self.leader_epoch,
            self.config.message_timestamp_type,
            now_ms,
        );
        let size = bytes.len();
        let batches = [AppendedBatch {
            start: 0,
            size: size as u64,
            header,
        }];
        self.write_append(
            &bytes,
            &batches,
            WrittenAppend {
                max_timestamp: header.max_timestamp,
                last_offset: base_offset,
                record_count: 1,
                producer_updates: Some(updates),
                completed_txn: completed,
            },
            now_ms,
        )?;
        debug!(dir = %self.dir.display(), offset = base_offset,
            producer_id = marker.producer_id, commit = marker.commit, "wrote transaction marker");
        Ok(AppendInfo {
            base_offset,
            last_offset: base_offset,
            record_count: 1,
            batch_count: 1,
            size_in_bytes: size,
            max_timestamp: header.max_timestamp,
            offset_of_max_timestamp: base_offset,
            log_append_time: match self.config.message_timestamp_type {
                MessageTimestampType::LogAppendTime => now_ms,
                MessageTimestampType::CreateTime => NO_TIMESTAMP,
            },
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })
    }

    /// The last stable offset (KIP-98): the first offset of the earliest transaction still
    /// open in this partition (at least the log start offset), or the high watermark when
    /// none is or when it is lower. `read_committed` consumers read up to it.
    pub fn last_stable_offset(&self) -> i64 {
        match self.producers.first_undecided_offset() {
            Some(first) => first.max(self.log_start_offset).min(self.high_watermark),
            None => self.high_watermark,
        }
    }

    /// The aborted transactions a `read_committed` fetch from `fetch_offset` up to
    /// `upper_bound_offset` (exclusive; the offset after the returned data) must be told
    /// about, from the `.txnindex` entries (Kafka's `UnifiedLog.collectAbortedTransactions`):
    /// starting with the segment holding `fetch_offset`, the entries with `lastOffset >=
    /// fetch_offset` and `firstOffset < upper_bound_offset`, stopping at an entry whose last
    /// stable offset reaches `upper_bound_offset`. Ordered by first offset.
    ///
    /// # Errors
    /// [`StorageError::LogOffline`] / [`StorageError::LogClosed`].
    pub fn aborted_transactions(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTxn>> {
        self.check_online()?;
        let mut found = Vec::new();
        for segment in &self.segments[self.segment_position(fetch_offset)..] {
            if segment
                .txn_index()
                .collect(fetch_offset, upper_bound_offset, &mut found)
            {
                break;
            }
        }
        let mut aborted: Vec<AbortedTxn> = found.iter().map(TxnIndexEntry::aborted_txn).collect();
        aborted.sort_by_key(|a| a.first_offset);
        Ok(aborted)
    }

    /// Forgets idempotent producers whose last batch timestamp is `expiration_ms` or more
    /// before `now_ms` (Kafka's `producer.id.expiration.ms`, checked every
    /// `producer.id.expiration.check.interval.ms`). A producer with an open transaction is
    /// kept, as in Kafka. A forgotten producer is unknown: its next batch is accepted whatever
    /// its sequence (KIP-360). Returns how many were removed.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let removed = self.producers.remove_expired(now_ms, expiration_ms);
        if removed > 0 {
            debug!(dir = %self.dir.display(), removed, "expired idempotent producer state");
        }
        removed
    }

    /// Number of producer ids with idempotent-producer state in this partition.
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// The producers with state in this partition (idempotent and transactional), by
    /// producer id: what DescribeProducers reports.
    pub(crate) fn active_producers(&self) -> Vec<ActiveProducer> {
        self.producers
            .producers()
            .into_iter()
            .map(|(producer_id, e)| ActiveProducer {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.last_seq(),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset,
            })
            .collect()
    }

    /// Rebuilds the producer state (idempotent producers, open transactions, coordinator
    /// epochs) from the batches of every segment, oldest first, and checks each segment's
    /// `.txnindex` against the aborted transactions met on the way (on open). Data batches
    /// are read from their headers; transaction markers (control batches) are read whole,
    /// they are tiny. A segment whose headers turn out inconsistent is scanned up to the bad
    /// batch, which reads will refuse to serve anyway.
    ///
    /// Kafka replays the log after its last producer snapshot and rebuilds the transaction
    /// index of each segment it recovers; broker-lite replays everything and repairs an index
    /// that is missing, damaged, cut short or holds entries past its segment's end (a torn
    /// tail truncated). Entries the file holds for markers still in the segment are kept as
    /// they are: after compaction removed an aborted transaction's data, the log alone no
    /// longer tells its first offset.
    pub(super) fn rebuild_producer_state(&mut self) -> Result<()> {
        let mut producers = ProducerStateManager::default();
        let mut aborted_per_segment = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            let mut aborted = Vec::new();
            let scanned = segment.visit_batches(|at| {
                let h = &at.header;
                if !h.has_producer_id() {
                    return Ok(());
                }
                if !h.is_control() {
                    producers.replay(&ProducerBatch::stored(h));
                    return Ok(());
                }
                let Some((commit, coordinator_epoch)) = segment.read_txn_marker(at)? else {
                    return Ok(());
                };
                let marker = MarkerBatch {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    coordinator_epoch,
                    offset: h.base_offset,
                    timestamp: h.max_timestamp,
                    commit,
                };
                if let Some(completed) = producers.replay_marker(&marker) {
                    aborted.extend(producers.complete_txn(&completed));
                }
                Ok(())
            });
            match scanned {
                Ok(()) => {}
                Err(StorageError::CorruptLog {
                    path,
                    position,
                    reason,
                }) => {
                    tracing::warn!(segment = %path.display(), position, %reason,
                        "producer state rebuild stopped at an inconsistent batch");
                }
                Err(e) => return Err(e),
            }
            aborted_per_segment.push(aborted);
        }
        self.producers = producers;
        for (segment, aborted) in self.segments.iter_mut().zip(aborted_per_segment) {
            segment.reconcile_txn_index(aborted)?;
        }
        Ok(())
    }

    /// Rolls a new active segment whose base offset is the log end offset. The old active
    /// segment gets its final time index entry and is fsynced.
    pub(super) fn roll(&mut self, now_ms: i64) -> Result<()> {
        let base_offset = self.log_end_offset();
        if self.active().size() == 0 {
            return Ok(());
        }
        let old = self.active_mut();
        old.on_become_inactive()?;
        old.sync()?;
        let segment = LogSegment::create(&self.dir, base_offset, &self.config, now_ms)?;
        checkpoint::sync_dir(&self.dir)?;
        info!(dir = %self.dir.display(), base_offset, "rolled new log segment");
        self.segments.push(segment);
        Ok(())
    }

    /// Reads from `fetch_offset`, at most `max_bytes` but at least one whole batch (KIP-74),
    /// never reaching `max_offset` (exclusive; pass the high watermark for consumers).
    /// Equivalent to [`read_with`](Self::read_with) with `min_one_batch = true`.
    ///
    /// # Errors
    /// As [`read_with`](Self::read_with).
    pub fn read(&self, fetch_offset: i64, max_bytes: usize, max_offset: i64) -> Result<ReadResult> {
        self.read_with(fetch_offset, max_bytes, max_offset, true)
    }

    /// Reads whole batches, starting with the batch that contains `fetch_offset` (it may
    /// start earlier, as in Kafka), then following batches while the total stays within
    /// `max_bytes` and each batch's last offset is below `max_offset` (and the log end
    /// offset). With `min_one_batch` the first batch is returned even if larger than
    /// `max_bytes` (the first partition of a Fetch response, KIP-74). A read never spans two
    /// segments, like Kafka's.
    ///
    /// Reading at the log end offset, or at or beyond `max_offset`, returns no records.
    ///
    /// # Errors
    /// [`StorageError::OffsetOutOfRange`] when `fetch_offset` is below the log start offset
    /// or above the log end offset; [`StorageError::Io`], [`StorageError::CorruptLog`] or
    /// [`StorageError::LogOffline`] on storage failure.
    pub fn read_with(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult> {
        self.check_online()?;
        let log_end_offset = self.log_end_offset();
        if fetch_offset < self.log_start_offset || fetch_offset > log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        let mut result = ReadResult {
            records: Bytes::new(),
            next_offset: fetch_offset,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            log_end_offset,
        };
        let max_offset = max_offset.min(log_end_offset);
        if fetch_offset >= max_offset {
            return Ok(result);
        }
        for segment in &self.segments[self.segment_position(fetch_offset)..] {
            if let Some(read) = segment.read(fetch_offset, max_bytes, max_offset, min_one_batch)? {
                result.records = Bytes::from(read.bytes);
                result.next_offset = read.next_offset;
                break;
            }
        }
        Ok(result)
    }

    /// Index in `segments` of the segment that may hold `offset` (the last one whose base
    /// offset is `<= offset`; the first one if none).
    pub(super) fn segment_position(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// ListOffsets for one partition, as for a `read_uncommitted` consumer: `-1` latest, `-2`
    /// earliest, `-3` max timestamp, `-4` earliest local (the log start offset without tiered
    /// storage), any other value a timestamp lookup. `None` when no offset qualifies (Kafka
    /// answers offset -1 then). Equivalent to
    /// [`list_offsets_isolated`](Self::list_offsets_isolated) with `read_committed = false`.
    ///
    /// # Errors
    /// Storage failures.
    pub fn list_offsets(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        self.list_offsets_isolated(timestamp, false)
    }

    /// ListOffsets with the consumer's isolation level (Kafka's
    /// `Partition.fetchOffsetForTimestamp`): the *last fetchable offset* is the last stable
    /// offset for `read_committed` and the high watermark otherwise. `-1` (latest) answers
    /// it; `-3` (max timestamp) and timestamp lookups only find offsets below it; `-2`/`-4`
    /// (earliest) are not bounded.
    ///
    /// # Errors
    /// Storage failures.
    pub fn list_offsets_isolated(
        &self,
        timestamp: i64,
        read_committed: bool,
    ) -> Result<Option<TimestampOffset>> {
        let bound = if read_committed {
            self.last_stable_offset()
        } else {
            self.high_watermark
        };
        match timestamp {
            LATEST_TIMESTAMP => Ok(Some(TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: bound,
                leader_epoch: Some(self.leader_epoch),
            })),
            EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => self.earliest().map(Some),
            MAX_TIMESTAMP => self.max_timestamp_offset_below(bound),
            t => self.offset_for_timestamp_below(t, bound),
        }
    }

    /// The log start offset, with the leader epoch of the batch holding it (ListOffsets
    /// `EARLIEST`).
    ///
    /// # Errors
    /// Storage failures.
    pub fn earliest(&self) -> Result<TimestampOffset> {
        self.check_online()?;
        let offset = self.log_start_offset;
        let mut leader_epoch = None;
        if offset < self.log_end_offset() {
            let segment = &self.segments[self.segment_position(offset)];
            if let Some(found) = segment.find_batch(offset)? {
                leader_epoch = found.header.leader_epoch();
            }
        }
        Ok(TimestampOffset {
            timestamp: NO_TIMESTAMP,
            offset,
            leader_epoch,
        })
    }

    /// The earliest record whose timestamp is `>= timestamp`, at or after the log start
    /// offset and below the high watermark (ListOffsets by timestamp). The first segment
    /// whose largest timestamp reaches `timestamp` is searched through its time index; the
    /// exact record is found by decoding the batch (answered at batch granularity if the
    /// batch cannot be decoded).
    ///
    /// # Errors
    /// Storage failures.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        self.offset_for_timestamp_below(timestamp, self.high_watermark)
    }

    fn offset_for_timestamp_below(
        &self,
        timestamp: i64,
        bound: i64,
    ) -> Result<Option<TimestampOffset>> {
        self.check_online()?;
        for segment in &self.segments {
            if segment.max_timestamp_and_offset().0 < timestamp {
                continue;
            }
            if let Some(found) =
                segment.find_offset_by_timestamp(timestamp, self.log_start_offset)?
            {
                return Ok((found.offset < bound).then_some(found));
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp, the earliest one on ties (ListOffsets
    /// `MAX_TIMESTAMP`, KIP-734), if it is below the high watermark.
    ///
    /// # Errors
    /// Storage failures.
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>> {
        self.max_timestamp_offset_below(self.high_watermark)
    }

    fn max_timestamp_offset_below(&self, bound: i64) -> Result<Option<TimestampOffset>> {
        self.check_online()?;
        let mut best: Option<&LogSegment> = None;
        for segment in &self.segments {
            let ts = segment.max_timestamp_and_offset().0;
            let better = match best {
                None => true,
                Some(b) => ts > b.max_timestamp_and_offset().0,
            };
            if better {
                best = Some(segment);
            }
        }
        let Some(segment) = best else {
            return Ok(None);
        };
        let found = segment.max_timestamp_record()?;
        Ok(found.filter(|f| f.offset < bound && f.offset >= self.log_start_offset))
    }

    /// fsyncs every segment written since its last fsync.
    ///
    /// # Errors
    /// [`StorageError::Io`] (the log then goes offline) or [`StorageError::LogOffline`].
    pub fn flush(&mut self) -> Result<()> {
        self.check_online()?;
        let result = self.sync_all_segments();
        self.offline_on_io(result)
    }

    fn sync_all_segments(&mut self) -> Result<()> {
        for segment in &mut self.segments {
            segment.sync()?;
        }
        self.unflushed_messages = 0;
        Ok(())
    }

    fn flush_at(&mut self, now_ms: i64) -> Result<()> {
        self.sync_all_segments()?;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    /// Applies `flush.ms` for a periodic flusher task: fsyncs if the last fsync is at least
    /// `flush.ms` old (and something was appended since). Returns whether it flushed.
    ///
    /// # Errors
    /// [`StorageError::Io`] (the log then goes offline) or [`StorageError::LogOffline`].
    pub fn maybe_flush(&mut self, now_ms: i64) -> Result<bool> {
        self.check_online()?;
        if self.unflushed_messages == 0
            || now_ms.saturating_sub(self.last_flush_ms) < self.config.flush_ms
        {
            return Ok(false);
        }
        let result = self.flush_at(now_ms);
        self.offline_on_io(result)?;
        Ok(true)
    }

    /// Closes the log cleanly: the active segment's largest timestamp goes into its time
    /// index, everything is fsynced, files awaiting deletion are removed, and the
    /// clean-shutdown marker is written so the next open only recovers the last segment.
    ///
    /// Afterwards every operation returns [`StorageError::LogClosed`]; closing again does
    /// nothing. Dropping the log without `close` is like a crash: the next open recovers
    /// every segment.
    ///
    /// # Errors
    /// Storage failures, or [`StorageError::LogOffline`] (no marker is written then).
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.check_online()?;
        let result = self.close_files();
        self.closed = true;
        if let Err(StorageError::Io { .. }) = &result {
            self.offline = true;
        }
        result
    }

    fn close_files(&mut self) -> Result<()> {
        self.active_mut().on_become_inactive()?;
        self.sync_all_segments()?;
        for (path, _) in std::mem::take(&mut self.pending_deletes) {
            checkpoint::remove_if_exists(&path)?;
        }
        checkpoint::write_clean_shutdown(&self.dir)?;
        info!(dir = %self.dir.display(), log_end_offset = self.log_end_offset(), "closed log");
        Ok(())
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
