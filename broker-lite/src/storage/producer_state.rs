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
//! Transactions (the transactional half of KIP-98: markers, the last stable offset,
//! coordinator epochs, KIP-890 verification) are not modelled yet; transactional batches are
//! checked like idempotent ones.
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

use std::collections::{HashMap, VecDeque};

use super::batch::{BatchHeader, NO_TIMESTAMP};
use super::error::{Result, StorageError};

/// How many batches per producer are remembered for duplicate detection (Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub(crate) const NUM_BATCHES_TO_RETAIN: usize = 5;
/// `RecordBatch.NO_PRODUCER_EPOCH`.
pub(crate) const NO_PRODUCER_EPOCH: i16 = -1;
/// `RecordBatch.NO_SEQUENCE`.
const NO_SEQUENCE: i32 = -1;

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
    /// `maxTimestamp` of the last batch: the reference for `producer.id.expiration.ms`.
    pub last_timestamp: i64,
}

impl ProducerEntry {
    fn new(epoch: i16, last_timestamp: i64) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_timestamp,
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

/// The producer-state changes of an append that passed [`ProducerStateManager::check_append`],
/// to [`apply`](ProducerStateManager::apply) once the batches are written.
#[derive(Debug, Default)]
pub(crate) struct PendingUpdates(HashMap<i64, ProducerEntry>);

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

    /// The last offset of each known producer's last batch (Kafka's
    /// `lastRecordsOfActiveProducers`): the log cleaner keeps that batch, even emptied, so
    /// that the producer's last sequence survives compaction.
    pub fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset)))
            .collect()
    }

    /// Validates the idempotent batches of one client append, in log order, against the
    /// current state and each other (Kafka's `analyzeAndValidateProducerState` with
    /// `AppendOrigin.CLIENT`). Nothing changes until [`apply`](Self::apply).
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`] or [`StorageError::OutOfOrderSequence`]; the
    /// whole append is then rejected.
    pub fn check_append(&self, batches: &[ProducerBatch]) -> Result<AppendCheck> {
        let mut pending: HashMap<i64, ProducerEntry> = HashMap::new();
        for batch in batches {
            let current = self.producers.get(&batch.producer_id);
            if let Some(duplicate) = current.and_then(|e| e.find_duplicate(batch)) {
                return Ok(AppendCheck::Duplicate(duplicate));
            }
            // Kafka's `updatedEntry`: the current epoch, no batches yet.
            let updated = pending.entry(batch.producer_id).or_insert_with(|| {
                ProducerEntry::new(
                    current.map_or(NO_PRODUCER_EPOCH, |e| e.epoch),
                    current.map_or(NO_TIMESTAMP, |e| e.last_timestamp),
                )
            });
            check_epoch(batch, updated.epoch)?;
            check_sequence(batch, current, updated)?;
            updated.add_batch(batch);
        }
        Ok(AppendCheck::Append(PendingUpdates(pending)))
    }

    /// Records appended batches (Kafka's `ProducerStateManager.update`): a new epoch replaces
    /// the cached batches, the newest [`NUM_BATCHES_TO_RETAIN`] are kept.
    pub fn apply(&mut self, updates: PendingUpdates) {
        for (producer_id, update) in updates.0 {
            match self.producers.get_mut(&producer_id) {
                Some(current) => {
                    current.maybe_update_epoch(update.epoch);
                    for batch in update.batches {
                        current.push(batch);
                    }
                    current.last_timestamp = update.last_timestamp;
                }
                None => {
                    self.producers.insert(producer_id, update);
                }
            }
        }
    }

    /// Records a batch read back from the log while rebuilding the state, without validation
    /// (as Kafka's replication and recovery paths do).
    pub fn replay(&mut self, batch: &ProducerBatch) {
        self.producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry::new(NO_PRODUCER_EPOCH, NO_TIMESTAMP))
            .add_batch(batch);
    }

    /// Forgets producers whose last batch timestamp is `expiration_ms` or more before `now_ms`
    /// (Kafka's `removeExpiredProducers` for `producer.id.expiration.ms`). Returns how many.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) < expiration_ms);
        before - self.producers.len()
    }
}

/// Kafka's `ProducerAppendInfo.checkProducerEpoch` for data batches from clients.
fn check_epoch(batch: &ProducerBatch, current_epoch: i16) -> Result<()> {
    if batch.epoch < current_epoch {
        return Err(StorageError::InvalidProducerEpoch(format!(
            "epoch of producer {} at offset {} is {}, which is smaller than the last seen epoch {}",
            batch.producer_id, batch.first_offset, batch.epoch, current_epoch
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
        }
    }

    /// Checks and, when accepted, applies; returns the decision.
    fn append(
        m: &mut ProducerStateManager,
        batches: &[ProducerBatch],
    ) -> Result<Option<BatchMetadata>> {
        match m.check_append(batches)? {
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
}
