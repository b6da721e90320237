//! Per-partition producer state for idempotent producers: KIP-98 (producer ids, epochs and
//! sequence numbers) with the relaxations of KIP-360.
//!
//! Follows Kafka's `ProducerStateManager`, `ProducerStateEntry` and `ProducerAppendInfo`
//! (`storage/src/main/java/org/apache/kafka/storage/internals/log/`) and
//! `UnifiedLog.analyzeAndValidateProducerState`, for appends from clients:
//!
//! * For every producer id the partition remembers the producer epoch and the metadata of the
//!   last [`NUM_BATCHES_TO_RETAIN`] (5) batches appended with that epoch: first and last
//!   sequence, first and last offset, max timestamp. Five is the largest
//!   `max.in.flight.requests.per.connection` an idempotent producer may use, so every retry a
//!   client can send is still recognized.
//! * A batch with the current epoch and the same first and last sequence as one of those is a
//!   **duplicate** (a retry whose first attempt was written): nothing is appended and the
//!   append answers with the original offsets (`ProducerStateEntry.findDuplicateBatch`). As in
//!   Kafka, the duplicate check comes first, and the first duplicate batch of an append
//!   answers for the whole append.
//! * An epoch **lower** than the current one is `INVALID_PRODUCER_EPOCH`
//!   (`checkProducerEpoch`; Kafka 2.7+ returns it instead of the fatal `PRODUCER_FENCED`).
//! * **Same epoch**: the first sequence must follow the last one (`lastSeq + 1`, 0 after
//!   `i32::MAX`), else `OUT_OF_ORDER_SEQUENCE_NUMBER` (`checkSequence`).
//! * A **new (higher) epoch** must start at sequence 0 unless the producer had no epoch
//!   recorded (KIP-360: an idempotent producer bumps its epoch and restarts its sequences after
//!   an error), else `OUT_OF_ORDER_SEQUENCE_NUMBER`; it replaces the cached batches.
//! * An **unknown producer id** accepts any sequence (Kafka 2.5+, KIP-360: its state may have
//!   been removed by retention or expiry; `UNKNOWN_PRODUCER_ID` is no longer returned).
//!
//! The state of an append is computed first ([`ProducerStateManager::check_append`]) and
//! applied only once the batches are in the log ([`ProducerStateManager::apply`]), under the
//! same lock as the append (the [`PartitionLog`](super::PartitionLog) owns this state).
//!
//! **Transactions** (the transactional half of KIP-98, as Kafka's `ProducerAppendInfo.append`
//! / `appendDataBatch` / `appendEndTxnMarker` with transaction version 0/1 rules):
//!
//! * A transactional data batch (attribute bit 4) of a producer with no transaction open in
//!   this partition opens one at the batch's first offset (`currentTxnFirstOffset`); open
//!   transactions are kept ordered by first offset, the earliest one bounds the last stable
//!   offset ([`ProducerStateManager::first_undecided_offset`]).
//! * A non-transactional batch from a producer whose transaction is open is
//!   `INVALID_TXN_STATE` ("Expected transactional write from producer").
//! * A transaction marker (control batch) ends the transaction: a marker epoch below the
//!   producer's is `INVALID_PRODUCER_EPOCH`; a coordinator epoch below the one stored for the
//!   producer is `TRANSACTION_COORDINATOR_FENCED`. The marker's epoch becomes the producer's
//!   (a higher one, after the coordinator bumped it, forgets the cached batches, so the next
//!   batch must start at sequence 0), and its coordinator epoch is stored. A marker closing an
//!   open transaction yields a [`CompletedTxn`] (an abort goes into the `.txnindex`); a marker
//!   without open transaction completes nothing, as in Kafka (no index entry).
//! * Appends by a coordinator on the broker ([`AppendOrigin::Coordinator`]: the group
//!   coordinator's transactional offset commits, base sequence -1) are checked for epochs and
//!   transaction state, not sequences, and never answered as duplicates.
//! * A producer with an open transaction never expires.
//!
//! **Durability.** Instead of Kafka's `.snapshot` files, the state is rebuilt when the log is
//! opened by scanning batch headers (61 bytes each; records are never decoded), oldest segment
//! first, applying every batch as Kafka's replication path does (no validation: the log was
//! validated when written). Memory is bounded by the number of producer ids: at most
//! [`NUM_BATCHES_TO_RETAIN`] batch entries each. The state of a producer whose batches were all
//! deleted by retention is kept while the broker runs, as Kafka keeps it, until
//! `producer.id.expiration.ms` after its last batch timestamp ([`remove_expired`]); after a
//! restart only producers with batches still in the log are known.
//!
//! [`remove_expired`]: ProducerStateManager::remove_expired

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::batch::{BatchHeader, NO_SEQUENCE, NO_TIMESTAMP};
use super::error::{Result, StorageError};
use super::txn_index::TxnIndexEntry;

/// How many batches per producer are remembered for duplicate detection (Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub(crate) const NUM_BATCHES_TO_RETAIN: usize = 5;
/// `RecordBatch.NO_PRODUCER_EPOCH`.
pub(crate) const NO_PRODUCER_EPOCH: i16 = -1;
/// No coordinator epoch recorded yet (Kafka's `ProducerStateEntry.empty`).
const NO_COORDINATOR_EPOCH: i32 = -1;

/// Where an append comes from (Kafka's `AppendOrigin`), which decides what is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendOrigin {
    /// A producer's Produce request: epochs, sequences, duplicates and transaction state.
    Client,
    /// A coordinator on this broker (transaction markers, the group coordinator's
    /// transactional offset commits): epochs and transaction state; no sequence checks and
    /// no duplicate detection.
    Coordinator,
}

/// A transaction marker as appended (or about to be): the control batch's producer fields
/// and the marker record's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MarkerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub coordinator_epoch: i32,
    /// The marker's offset.
    pub offset: i64,
    /// The marker record's timestamp.
    pub timestamp: i64,
    /// Commit or abort.
    pub commit: bool,
}

/// A transaction a marker ended in this partition (Kafka's `CompletedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    /// Aborted (`true`) or committed.
    pub aborted: bool,
}

/// `sequence + increment`, wrapping to 0 after `i32::MAX` (Kafka's
/// `DefaultRecordBatch.incrementSequence`). A negative increment leaves the sequence as is;
/// no input overflows.
pub(crate) fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if increment < 0 {
        return sequence;
    }
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Whether `next_seq` directly follows `last_seq` (Kafka's `ProducerAppendInfo.inSequence`).
fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    i64::from(next_seq) == i64::from(last_seq) + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// One batch of an idempotent producer, as appended (or about to be): its producer fields and
/// the offsets and timestamp it has in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's `maxTimestamp` as stored (the append time for `LogAppendTime`).
    pub max_timestamp: i64,
    /// Whether the stored batch carries `LogAppendTime`.
    pub log_append_time: bool,
    /// Whether the batch is transactional (attribute bit 4).
    pub transactional: bool,
}

impl ProducerBatch {
    /// The producer fields of `header`, for a batch stored from `first_offset` with
    /// `max_timestamp` (which differs from the header's for a `LogAppendTime` append).
    pub fn new(
        header: &BatchHeader,
        first_offset: i64,
        max_timestamp: i64,
        log_append_time: bool,
    ) -> ProducerBatch {
        ProducerBatch {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            first_offset,
            last_offset: first_offset.saturating_add(i64::from(header.last_offset_delta.max(0))),
            max_timestamp,
            log_append_time,
            transactional: header.is_transactional(),
        }
    }

    /// A stored batch, as read back from the log.
    pub fn stored(header: &BatchHeader) -> ProducerBatch {
        ProducerBatch::new(
            header,
            header.base_offset,
            header.max_timestamp,
            header.is_log_append_time(),
        )
    }

    fn metadata(&self) -> BatchMetadata {
        BatchMetadata {
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            max_timestamp: self.max_timestamp,
            log_append_time: self.log_append_time,
        }
    }
}

/// What is remembered of one appended batch (Kafka's `BatchMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The batch's `maxTimestamp` as stored.
    pub max_timestamp: i64,
    /// Whether the batch was stored with `LogAppendTime` (then `max_timestamp` is the append
    /// time the Produce response reported).
    pub log_append_time: bool,
}

/// The state of one producer id in one partition (Kafka's `ProducerStateEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    /// The current epoch, [`NO_PRODUCER_EPOCH`] if none.
    pub epoch: i16,
    /// The last batches appended with `epoch`, oldest first, at most
    /// [`NUM_BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// `maxTimestamp` of the last batch (or the last marker's timestamp): the reference for
    /// `producer.id.expiration.ms`.
    pub last_timestamp: i64,
    /// The epoch of the transaction coordinator that wrote the last marker, -1 if none.
    pub coordinator_epoch: i32,
    /// The first offset of the producer's open transaction in this partition, if any
    /// (Kafka's `currentTxnFirstOffset`).
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn empty() -> ProducerEntry {
        ProducerEntry {
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp: NO_TIMESTAMP,
            coordinator_epoch: NO_COORDINATOR_EPOCH,
            current_txn_first_offset: None,
        }
    }

    /// A copy without the cached batches: the start of an append's updated entry (Kafka's
    /// `withProducerIdAndBatchMetadata(producerId, Optional.empty())`).
    fn without_batches(&self) -> ProducerEntry {
        ProducerEntry {
            epoch: self.epoch,
            batches: VecDeque::new(),
            last_timestamp: self.last_timestamp,
            coordinator_epoch: self.coordinator_epoch,
            current_txn_first_offset: self.current_txn_first_offset,
        }
    }

    /// Applies a marker to the entry (Kafka's `ProducerStateEntry.update(epoch,
    /// coordinatorEpoch, timestamp)`): the transaction is closed; returns it if one was open.
    fn end_txn(&mut self, marker: &MarkerBatch) -> Option<CompletedTxn> {
        let completed = self.current_txn_first_offset.map(|first| CompletedTxn {
            producer_id: marker.producer_id,
            first_offset: first,
            last_offset: marker.offset,
            aborted: !marker.commit,
        });
        self.maybe_update_epoch(marker.epoch);
        self.coordinator_epoch = marker.coordinator_epoch;
        self.current_txn_first_offset = None;
        self.last_timestamp = marker.timestamp;
        completed
    }

    /// Kafka's `appendDataBatch` transaction bookkeeping after the batch was added: returns
    /// the first offset of the transaction the batch opens, if it opens one.
    fn track_txn(&mut self, batch: &ProducerBatch) -> Result<Option<i64>> {
        match (self.current_txn_first_offset, batch.transactional) {
            (Some(_), false) => Err(StorageError::InvalidTxnState(format!(
                "expected transactional write from producer {} at offset {}",
                batch.producer_id, batch.first_offset
            ))),
            (None, true) => {
                self.current_txn_first_offset = Some(batch.first_offset);
                Ok(Some(batch.first_offset))
            }
            _ => Ok(None),
        }
    }

    /// The last sequence appended, [`NO_SEQUENCE`] if no batch is cached.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// A new epoch forgets the batches of the old one.
    fn maybe_update_epoch(&mut self, epoch: i16) {
        if self.epoch != epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    fn push(&mut self, batch: BatchMetadata) {
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }

    fn add_batch(&mut self, batch: &ProducerBatch) {
        self.maybe_update_epoch(batch.epoch);
        self.push(batch.metadata());
        self.last_timestamp = batch.max_timestamp;
    }

    /// The cached batch with exactly this epoch and sequence range.
    fn find_duplicate(&self, batch: &ProducerBatch) -> Option<BatchMetadata> {
        if batch.epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|m| m.first_seq == batch.first_seq && m.last_seq == batch.last_seq)
            .copied()
    }
}

/// The producer-state changes of an append that passed [`ProducerStateManager::check_append`]
/// (or [`check_marker`](ProducerStateManager::check_marker)), to
/// [`apply`](ProducerStateManager::apply) once the batches are written.
#[derive(Debug, Default)]
pub(crate) struct PendingUpdates {
    entries: HashMap<i64, ProducerEntry>,
    /// Transactions the append opens: (first offset, producer id).
    started: Vec<(i64, i64)>,
}

/// What [`ProducerStateManager::check_append`] decided.
#[derive(Debug)]
pub(crate) enum AppendCheck {
    /// Append the batches, then apply these updates.
    Append(PendingUpdates),
    /// A batch was already appended: append nothing, answer with the original batch.
    Duplicate(BatchMetadata),
}

/// The producer state of one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset → producer id (Kafka's `ongoingTxns`).
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerStateManager {
    /// Number of producer ids with state.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// The state of `producer_id`, if any.
    #[cfg(test)]
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer id with state and its entry, by producer id (Kafka's
    /// `ProducerStateManager.activeProducers`, which DescribeProducers reports).
    pub fn producers(&self) -> Vec<(i64, &ProducerEntry)> {
        let mut all: Vec<(i64, &ProducerEntry)> =
            self.producers.iter().map(|(id, e)| (*id, e)).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// The last offset of each known producer's last batch (Kafka's
    /// `lastRecordsOfActiveProducers`): the log cleaner keeps that batch, even emptied, so
    /// that the producer's last sequence survives compaction.
    pub fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset)))
            .collect()
    }

    /// Validates the producer batches of one append (data batches, no markers), in log
    /// order, against the current state and each other (Kafka's
    /// `analyzeAndValidateProducerState`): epochs and transaction state always, sequences and
    /// duplicates for [`AppendOrigin::Client`]. Nothing changes until [`apply`](Self::apply).
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`], [`StorageError::OutOfOrderSequence`] or
    /// [`StorageError::InvalidTxnState`]; the whole append is then rejected.
    pub fn check_append(
        &self,
        batches: &[ProducerBatch],
        origin: AppendOrigin,
    ) -> Result<AppendCheck> {
        let mut pending = PendingUpdates::default();
        for batch in batches {
            let current = self.producers.get(&batch.producer_id);
            if origin == AppendOrigin::Client {
                if let Some(duplicate) = current.and_then(|e| e.find_duplicate(batch)) {
                    return Ok(AppendCheck::Duplicate(duplicate));
                }
            }
            // Kafka's `updatedEntry`: the current state, no batches yet.
            let updated = pending.entries.entry(batch.producer_id).or_insert_with(|| {
                current.map_or_else(ProducerEntry::empty, |e| e.without_batches())
            });
            check_epoch(
                batch.producer_id,
                batch.epoch,
                batch.first_offset,
                updated.epoch,
            )?;
            if origin == AppendOrigin::Client {
                check_sequence(batch, current, updated)?;
            }
            updated.add_batch(batch);
            if let Some(first) = updated.track_txn(batch)? {
                pending.started.push((first, batch.producer_id));
            }
        }
        Ok(AppendCheck::Append(pending))
    }

    /// Validates a transaction marker about to be written (Kafka's `appendEndTxnMarker` for
    /// origin `COORDINATOR`, transaction version 0/1) and returns the state change and the
    /// transaction it completes, if one is open. Nothing changes until [`apply`](Self::apply)
    /// (and [`complete_txn`](Self::complete_txn)).
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`] for an epoch below the producer's;
    /// [`StorageError::TransactionCoordinatorFenced`] for a coordinator epoch below the one
    /// of the producer's last marker.
    pub fn check_marker(
        &self,
        marker: &MarkerBatch,
    ) -> Result<(PendingUpdates, Option<CompletedTxn>)> {
        let mut updated = self
            .producers
            .get(&marker.producer_id)
            .map_or_else(ProducerEntry::empty, |e| e.without_batches());
        check_epoch(
            marker.producer_id,
            marker.epoch,
            marker.offset,
            updated.epoch,
        )?;
        if updated.coordinator_epoch > marker.coordinator_epoch {
            return Err(StorageError::TransactionCoordinatorFenced(format!(
                "invalid coordinator epoch for producer {} at offset {}: {} (zombie), {} (current)",
                marker.producer_id,
                marker.offset,
                marker.coordinator_epoch,
                updated.coordinator_epoch
            )));
        }
        let completed = updated.end_txn(marker);
        let mut pending = PendingUpdates::default();
        pending.entries.insert(marker.producer_id, updated);
        Ok((pending, completed))
    }

    /// Records an append's state changes once it is written (Kafka's
    /// `ProducerStateManager.update`): a new epoch replaces the cached batches, the newest
    /// [`NUM_BATCHES_TO_RETAIN`] are kept; transactions opened are added to the open ones.
    pub fn apply(&mut self, updates: PendingUpdates) {
        for (producer_id, update) in updates.entries {
            match self.producers.get_mut(&producer_id) {
                Some(current) => {
                    current.maybe_update_epoch(update.epoch);
                    for batch in update.batches {
                        current.push(batch);
                    }
                    current.last_timestamp = update.last_timestamp;
                    current.coordinator_epoch = update.coordinator_epoch;
                    current.current_txn_first_offset = update.current_txn_first_offset;
                }
                None => {
                    self.producers.insert(producer_id, update);
                }
            }
        }
        for (first_offset, producer_id) in updates.started {
            self.ongoing.insert(first_offset, producer_id);
        }
    }

    /// The last stable offset once `completed` is complete, before it is marked so (Kafka's
    /// `lastStableOffset(completedTxn)`): the first offset of the earliest other open
    /// transaction, else the offset after the marker. Goes into the `.txnindex` entry.
    fn last_stable_offset_after(&self, completed: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, pid)| **pid != completed.producer_id)
            .map_or(completed.last_offset.saturating_add(1), |(first, _)| *first)
    }

    /// Removes a completed transaction from the open ones (Kafka's `completeTxn`). For an
    /// abort, returns its `.txnindex` entry, whose last stable offset is taken before the
    /// removal ([`last_stable_offset_after`](Self::last_stable_offset_after), as Kafka's
    /// `UnifiedLog` does before `completeTxn`).
    pub fn complete_txn(&mut self, completed: &CompletedTxn) -> Option<TxnIndexEntry> {
        let entry = completed.aborted.then(|| TxnIndexEntry {
            producer_id: completed.producer_id,
            first_offset: completed.first_offset,
            last_offset: completed.last_offset,
            last_stable_offset: self.last_stable_offset_after(completed),
        });
        self.ongoing.remove(&completed.first_offset);
        entry
    }

    /// The first offset of the earliest open transaction (Kafka's `firstUndecidedOffset`).
    pub fn first_undecided_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// The open transactions, as (first offset, producer id), by first offset.
    #[cfg(test)]
    pub fn ongoing_txns(&self) -> Vec<(i64, i64)> {
        self.ongoing.iter().map(|(o, p)| (*o, *p)).collect()
    }

    /// Records a data batch read back from the log while rebuilding the state, without
    /// validation (as Kafka's replication and recovery paths do); a transactional batch opens
    /// its producer's transaction if none is open.
    pub fn replay(&mut self, batch: &ProducerBatch) {
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(ProducerEntry::empty);
        entry.add_batch(batch);
        if batch.transactional && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(batch.first_offset);
            self.ongoing.insert(batch.first_offset, batch.producer_id);
        }
    }

    /// Records a marker read back from the log while rebuilding the state, without
    /// validation. Returns the transaction it completes, still open: the caller then calls
    /// [`complete_txn`](Self::complete_txn).
    pub fn replay_marker(&mut self, marker: &MarkerBatch) -> Option<CompletedTxn> {
        self.producers
            .entry(marker.producer_id)
            .or_insert_with(ProducerEntry::empty)
            .end_txn(marker)
    }

    /// Forgets producers whose last batch timestamp is `expiration_ms` or more before `now_ms`
    /// and that have no open transaction (Kafka's `removeExpiredProducers` for
    /// `producer.id.expiration.ms`). Returns how many.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }
}

/// Kafka's `ProducerAppendInfo.checkProducerEpoch` (transaction version 0/1: an epoch equal
/// to the current one is accepted, for data batches and markers alike).
fn check_epoch(producer_id: i64, epoch: i16, offset: i64, current_epoch: i16) -> Result<()> {
    if epoch < current_epoch {
        return Err(StorageError::InvalidProducerEpoch(format!(
            "epoch of producer {producer_id} at offset {offset} is {epoch}, which is smaller \
             than the last seen epoch {current_epoch}"
        )));
    }
    Ok(())
}

/// Kafka's `ProducerAppendInfo.checkSequence` (without transaction verification).
/// `current` is the state before the append, `updated` the state including the append's
/// earlier batches of this producer.
fn check_sequence(
    batch: &ProducerBatch,
    current: Option<&ProducerEntry>,
    updated: &ProducerEntry,
) -> Result<()> {
    let current_epoch = current.map_or(NO_PRODUCER_EPOCH, |e| e.epoch);
    if batch.epoch != updated.epoch {
        if batch.first_seq != 0 && updated.epoch != NO_PRODUCER_EPOCH {
            return Err(StorageError::OutOfOrderSequence(format!(
                "invalid sequence number for new epoch of producer {} at offset {}: {} (request \
                 epoch), {} (seq. number), {} (current producer epoch)",
                batch.producer_id, batch.first_offset, batch.epoch, batch.first_seq, updated.epoch
            )));
        }
        return Ok(());
    }
    let current_last_seq = if !updated.batches.is_empty() {
        updated.last_seq()
    } else if batch.epoch == current_epoch {
        current.map_or(NO_SEQUENCE, ProducerEntry::last_seq)
    } else {
        NO_SEQUENCE
    };
    // No current epoch (an unknown producer, or one whose batches were all removed): any
    // sequence is accepted.
    if current_epoch == NO_PRODUCER_EPOCH || in_sequence(current_last_seq, batch.first_seq) {
        return Ok(());
    }
    Err(StorageError::OutOfOrderSequence(format!(
        "out of order sequence number for producer {} at offset {}: {} (incoming seq. number), \
         {} (current end sequence number)",
        batch.producer_id, batch.first_offset, batch.first_seq, current_last_seq
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: i64 = 1000;

    /// A batch of `count` records of producer `PID` at `offset`.
    fn b(epoch: i16, first_seq: i32, count: i32, offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: PID,
            epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, count - 1),
            first_offset: offset,
            last_offset: offset + i64::from(count) - 1,
            max_timestamp: 1_000 + offset,
            log_append_time: false,
            transactional: false,
        }
    }

    /// Checks and, when accepted, applies; returns the decision.
    fn append(
        m: &mut ProducerStateManager,
        batches: &[ProducerBatch],
    ) -> Result<Option<BatchMetadata>> {
        match m.check_append(batches, AppendOrigin::Client)? {
            AppendCheck::Append(p) => {
                m.apply(p);
                Ok(None)
            }
            AppendCheck::Duplicate(d) => Ok(Some(d)),
        }
    }

    fn is_oos(r: Result<Option<BatchMetadata>>) -> bool {
        matches!(r, Err(StorageError::OutOfOrderSequence(_)))
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(increment_sequence(0, 4), 4);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, -3), 5);
        assert_eq!(increment_sequence(i32::MIN, i32::MAX), -1);
        assert!(in_sequence(4, 5));
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(-1, 0));
        assert!(!in_sequence(4, 6));
        assert!(!in_sequence(4, 4));
    }

    #[test]
    fn unknown_producer_accepts_any_sequence() {
        let mut m = ProducerStateManager::default();
        assert_eq!(append(&mut m, &[b(0, 42, 3, 0)]).unwrap(), None);
        let e = m.entry(PID).unwrap();
        assert_eq!((e.epoch, e.last_seq(), e.batches.len()), (0, 44, 1));
        assert_eq!(append(&mut m, &[b(0, 45, 1, 3)]).unwrap(), None);
        assert_eq!(m.entry(PID).unwrap().last_seq(), 45);
    }

    #[test]
    fn in_order_gap_and_duplicates() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &[b(0, 0, 2, 0)]).unwrap();
        append(&mut m, &[b(0, 2, 2, 2)]).unwrap();
        // A gap, or a sequence from the past that is not a cached batch.
        assert!(is_oos(append(&mut m, &[b(0, 5, 1, 4)])));
        assert!(is_oos(append(&mut m, &[b(0, 1, 1, 4)])));
        // Duplicates answer with the original batch, whichever of the cached ones.
        let d = append(&mut m, &[b(0, 0, 2, 99)]).unwrap().unwrap();
        assert_eq!(
            (d.first_offset, d.last_offset, d.first_seq, d.last_seq),
            (0, 1, 0, 1)
        );
        let d = append(&mut m, &[b(0, 2, 2, 99)]).unwrap().unwrap();
        assert_eq!((d.first_offset, d.last_offset), (2, 3));
        // Same first sequence but another last sequence is not a duplicate: out of order.
        assert!(is_oos(append(&mut m, &[b(0, 2, 3, 99)])));
        assert_eq!(m.entry(PID).unwrap().batches.len(), 2);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut m = ProducerStateManager::default();
        for i in 0..7 {
            append(&mut m, &[b(0, i, 1, i64::from(i))]).unwrap();
        }
        let e = m.entry(PID).unwrap();
        assert_eq!(e.batches.len(), NUM_BATCHES_TO_RETAIN);
        assert_eq!(e.batches.front().unwrap().first_seq, 2);
        assert!(append(&mut m, &[b(0, 2, 1, 50)]).unwrap().is_some());
        // Sequence 1 fell out of the cache: it is out of order now, not a duplicate.
        assert!(is_oos(append(&mut m, &[b(0, 1, 1, 50)])));
    }

    #[test]
    fn epochs() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &[b(3, 0, 1, 0)]).unwrap();
        append(&mut m, &[b(3, 1, 1, 1)]).unwrap();
        // A lower epoch is fenced, even with a plausible sequence.
        assert!(matches!(
            append(&mut m, &[b(2, 2, 1, 2)]),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        // A higher epoch must start at 0.
        assert!(is_oos(append(&mut m, &[b(4, 2, 1, 2)])));
        assert_eq!(append(&mut m, &[b(4, 0, 1, 2)]).unwrap(), None);
        let e = m.entry(PID).unwrap();
        assert_eq!((e.epoch, e.batches.len(), e.last_seq()), (4, 1, 0));
        // The old epoch's batches are forgotten: their retries are fenced, not duplicates.
        assert!(matches!(
            append(&mut m, &[b(3, 0, 1, 9)]),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        // A duplicate of the new epoch's batch.
        assert_eq!(
            append(&mut m, &[b(4, 0, 1, 9)])
                .unwrap()
                .unwrap()
                .first_offset,
            2
        );
    }

    #[test]
    fn sequence_wraps_after_max() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &[b(0, i32::MAX - 1, 2, 0)]).unwrap();
        assert_eq!(m.entry(PID).unwrap().last_seq(), i32::MAX);
        assert_eq!(append(&mut m, &[b(0, 0, 1, 2)]).unwrap(), None);
        // A batch spanning the wrap.
        let mut m = ProducerStateManager::default();
        append(&mut m, &[b(0, i32::MAX - 1, 4, 0)]).unwrap();
        assert_eq!(m.entry(PID).unwrap().last_seq(), 1);
        assert!(append(&mut m, &[b(0, i32::MAX - 1, 4, 9)])
            .unwrap()
            .is_some());
        assert_eq!(append(&mut m, &[b(0, 2, 1, 4)]).unwrap(), None);
    }

    #[test]
    fn several_batches_in_one_append_are_checked_against_each_other() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &[b(0, 0, 1, 0)]).unwrap();
        // In order within the append.
        assert_eq!(
            append(&mut m, &[b(0, 1, 2, 1), b(0, 3, 1, 3)]).unwrap(),
            None
        );
        assert_eq!(m.entry(PID).unwrap().last_seq(), 3);
        // A gap between the batches of one append rejects all of it.
        assert!(is_oos(append(&mut m, &[b(0, 4, 1, 4), b(0, 6, 1, 5)])));
        assert_eq!(m.entry(PID).unwrap().last_seq(), 3);
        // A duplicate anywhere answers for the append.
        let d = append(&mut m, &[b(0, 4, 1, 4), b(0, 3, 1, 5)])
            .unwrap()
            .unwrap();
        assert_eq!(d.first_offset, 3);
        assert_eq!(m.entry(PID).unwrap().last_seq(), 3);
        // An epoch bump inside an append.
        assert_eq!(
            append(&mut m, &[b(0, 4, 1, 4), b(1, 0, 1, 5)]).unwrap(),
            None
        );
        let e = m.entry(PID).unwrap();
        assert_eq!((e.epoch, e.batches.len()), (1, 1));
        // Two producers in one append.
        let mut other = b(0, 7, 1, 6);
        other.producer_id = PID + 1;
        assert_eq!(append(&mut m, &[b(1, 1, 1, 6), other]).unwrap(), None);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn replay_rebuilds_without_validation_and_expiry_forgets() {
        let mut m = ProducerStateManager::default();
        for (epoch, seq, offset) in [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3)] {
            m.replay(&b(epoch, seq, 1, offset));
        }
        // Replay does not validate (a batch appended after the state was lost).
        m.replay(&b(1, 40, 1, 4));
        let e = m.entry(PID).unwrap();
        assert_eq!((e.epoch, e.batches.len(), e.last_seq()), (1, 3, 40));
        assert_eq!(e.last_timestamp, 1_004);
        assert!(append(&mut m, &[b(1, 0, 1, 9)]).unwrap().is_some());
        assert_eq!(append(&mut m, &[b(1, 41, 1, 5)]).unwrap(), None);

        assert_eq!(m.remove_expired(1_004 + 99, 100), 0);
        assert_eq!(m.remove_expired(1_005 + 100, 100), 1);
        assert_eq!(m.len(), 0);
        // After expiry the producer is unknown again: any sequence is accepted.
        assert_eq!(append(&mut m, &[b(0, 7, 1, 6)]).unwrap(), None);
    }

    /// A transactional batch of `count` records of producer `pid` at `offset`.
    fn txn(pid: i64, epoch: i16, first_seq: i32, count: i32, offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            transactional: true,
            ..b(epoch, first_seq, count, offset)
        }
    }

    fn marker(
        pid: i64,
        epoch: i16,
        coordinator_epoch: i32,
        offset: i64,
        commit: bool,
    ) -> MarkerBatch {
        MarkerBatch {
            producer_id: pid,
            epoch,
            coordinator_epoch,
            offset,
            timestamp: 5_000 + offset,
            commit,
        }
    }

    /// Checks and applies a marker, completing its transaction; returns it with the last
    /// stable offset its index entry would get (and checks that an abort gets that entry).
    fn end(m: &mut ProducerStateManager, mk: MarkerBatch) -> Result<Option<(CompletedTxn, i64)>> {
        let (updates, completed) = m.check_marker(&mk)?;
        m.apply(updates);
        Ok(completed.map(|c| {
            let lso = m.last_stable_offset_after(&c);
            let entry = m.complete_txn(&c);
            let expected = TxnIndexEntry {
                producer_id: c.producer_id,
                first_offset: c.first_offset,
                last_offset: c.last_offset,
                last_stable_offset: lso,
            };
            assert_eq!(entry, c.aborted.then_some(expected));
            (c, lso)
        }))
    }

    #[test]
    fn transactions_open_at_their_first_batch_and_markers_close_them() {
        let mut m = ProducerStateManager::default();
        assert_eq!(m.first_undecided_offset(), None);
        append(&mut m, &[txn(1, 0, 0, 2, 10)]).unwrap();
        append(&mut m, &[txn(2, 0, 0, 1, 12)]).unwrap();
        // A second batch of the same transaction does not move its first offset.
        append(&mut m, &[txn(1, 0, 2, 1, 13)]).unwrap();
        assert_eq!(m.ongoing_txns(), vec![(10, 1), (12, 2)]);
        assert_eq!(m.first_undecided_offset(), Some(10));
        assert_eq!(m.entry(1).unwrap().current_txn_first_offset, Some(10));
        // Producer 1 aborts at 14 while producer 2's transaction (from 12) is open.
        let (c, lso) = end(&mut m, marker(1, 0, 3, 14, false)).unwrap().unwrap();
        assert_eq!(
            c,
            CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 14,
                aborted: true
            }
        );
        assert_eq!(lso, 12);
        assert_eq!(m.first_undecided_offset(), Some(12));
        let e = m.entry(1).unwrap();
        assert_eq!((e.current_txn_first_offset, e.coordinator_epoch), (None, 3));
        assert_eq!(e.last_timestamp, 5_014);
        // Same epoch: the cached batches stay (a retry is still a duplicate).
        assert!(append(&mut m, &[txn(1, 0, 2, 1, 99)]).unwrap().is_some());
        // Producer 2 commits: no other transaction open, the LSO is after the marker.
        let (c, lso) = end(&mut m, marker(2, 0, 3, 15, true)).unwrap().unwrap();
        assert!(!c.aborted);
        assert_eq!(lso, 16);
        assert_eq!(m.first_undecided_offset(), None);
        // A marker without open transaction completes nothing (Kafka emits no CompletedTxn).
        assert_eq!(end(&mut m, marker(2, 0, 3, 16, false)).unwrap(), None);
    }

    #[test]
    fn non_transactional_write_during_a_transaction_is_invalid() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &[txn(PID, 0, 0, 1, 0)]).unwrap();
        assert!(matches!(
            append(&mut m, &[b(0, 1, 1, 1)]),
            Err(StorageError::InvalidTxnState(_))
        ));
        // Nothing changed: the transactional next batch is in sequence.
        assert_eq!(append(&mut m, &[txn(PID, 0, 1, 1, 1)]).unwrap(), None);
        end(&mut m, marker(PID, 0, 0, 2, true)).unwrap();
        // After the marker, idempotent writes are fine again.
        assert_eq!(append(&mut m, &[b(0, 2, 1, 3)]).unwrap(), None);
    }

    #[test]
    fn markers_are_fenced_by_producer_and_coordinator_epochs() {
        let mut m = ProducerStateManager::default();
        append(&mut m, &[txn(PID, 2, 0, 3, 0)]).unwrap();
        assert!(matches!(
            end(&mut m, marker(PID, 1, 0, 3, true)),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        end(&mut m, marker(PID, 2, 5, 3, false)).unwrap().unwrap();
        append(&mut m, &[txn(PID, 2, 3, 1, 4)]).unwrap();
        assert!(matches!(
            end(&mut m, marker(PID, 2, 4, 5, true)),
            Err(StorageError::TransactionCoordinatorFenced(_))
        ));
        assert_eq!(m.first_undecided_offset(), Some(4));
        // The coordinator bumped the epoch (fencing, timeout): the marker is accepted, the
        // producer's epoch moves and its batches are forgotten.
        let (c, _) = end(&mut m, marker(PID, 3, 5, 5, false)).unwrap().unwrap();
        assert_eq!(c.first_offset, 4);
        let e = m.entry(PID).unwrap();
        assert_eq!((e.epoch, e.batches.len()), (3, 0));
        // The old epoch is fenced; the new epoch starts at sequence 0.
        assert!(matches!(
            append(&mut m, &[txn(PID, 2, 4, 1, 6)]),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        assert_eq!(append(&mut m, &[txn(PID, 3, 0, 1, 6)]).unwrap(), None);
    }

    #[test]
    fn coordinator_appends_skip_sequences_but_track_transactions() {
        let mut m = ProducerStateManager::default();
        let mut commit = txn(PID, 4, 0, 2, 0);
        commit.first_seq = NO_SEQUENCE;
        commit.last_seq = NO_SEQUENCE;
        for offset in [0, 2] {
            let batch = ProducerBatch {
                first_offset: offset,
                last_offset: offset + 1,
                ..commit
            };
            // Never a duplicate, though the sequences are the same.
            let AppendCheck::Append(u) =
                m.check_append(&[batch], AppendOrigin::Coordinator).unwrap()
            else {
                panic!("a coordinator append is never a duplicate");
            };
            m.apply(u);
        }
        assert_eq!(m.ongoing_txns(), vec![(0, PID)]);
        // Epochs still apply.
        let old = ProducerBatch { epoch: 3, ..commit };
        assert!(matches!(
            m.check_append(&[old], AppendOrigin::Coordinator),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
    }

    #[test]
    fn replay_restores_open_transactions_and_expiry_spares_them() {
        let mut m = ProducerStateManager::default();
        m.replay(&txn(1, 0, 0, 2, 0));
        m.replay(&txn(2, 0, 0, 1, 2));
        let c = m.replay_marker(&marker(1, 0, 7, 3, false)).unwrap();
        assert_eq!(m.complete_txn(&c).map(|e| e.last_stable_offset), Some(2));
        assert_eq!(m.ongoing_txns(), vec![(2, 2)]);
        assert_eq!(m.entry(1).unwrap().coordinator_epoch, 7);
        // Producer 2 is idle for long but its transaction is open: it stays.
        assert_eq!(m.remove_expired(1_000_000, 10), 1);
        assert!(m.entry(2).is_some());
        assert_eq!(m.first_undecided_offset(), Some(2));
    }
}
