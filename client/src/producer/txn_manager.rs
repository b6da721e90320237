//! Idempotent producer state (KIP-98, KIP-360): the producer id and epoch, per-partition
//! sequence numbers, the batches in flight by sequence, and the epoch-bump logic that
//! recovers from sequence gaps. Java's `TransactionManager` (its idempotent half) and
//! `TxnPartitionMap`. The transactional half (KIP-98 transactions, KIP-447) lives in
//! `transaction.rs`, on the same type: a transactional producer never bumps its epoch
//! locally; its sequence errors make the transaction abortable and the epoch is bumped by
//! InitProducerId when it is aborted.
//!
//! Pure logic without sockets or clocks: the `Sender` calls it when it drains a batch, when
//! a response arrives and when a batch fails.
//!
//! Invariants:
//! - a partition's in-flight list is sorted by base sequence and holds every batch that has
//!   been given a sequence and has not completed (sent, waiting for a response, or queued
//!   for a retry);
//! - new batches are not given sequences while the partition has in-flight batches of an
//!   older producer id/epoch, or while a failed batch left the partition's sequence state
//!   unresolved;
//! - a retried batch is sent only when it is the partition's first in-flight batch, so
//!   retries go out in sequence order.

use std::collections::{HashMap, HashSet};

use kafka_wire::ErrorCode;

use super::batch::{ProducerIdAndEpoch, TopicPartition};
use crate::error::Error;

#[path = "transaction.rs"]
mod transaction;

pub(crate) use transaction::{
    CoordinatorType, TxnNext, TxnRequest, TxnRequestBody, TxnResponse, TxnResult,
};

const NO_LAST_ACKED_SEQUENCE: i32 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    batch_id: u64,
    base_sequence: i32,
    record_count: i32,
    /// Sequences rewritten after an epoch bump (Java's `sequenceHasBeenReset`).
    reset: bool,
    /// The batch failed once and is being retried.
    retrying: bool,
}

#[derive(Debug, Clone)]
struct PartitionEntry {
    producer: ProducerIdAndEpoch,
    next_sequence: i32,
    last_acked_sequence: i32,
    last_acked_offset: i64,
    in_flight: Vec<InFlight>,
}

impl PartitionEntry {
    fn new(producer: ProducerIdAndEpoch) -> Self {
        PartitionEntry {
            producer,
            next_sequence: 0,
            last_acked_sequence: NO_LAST_ACKED_SEQUENCE,
            last_acked_offset: -1,
            in_flight: Vec::new(),
        }
    }
}

/// What to write into a batch: producer id and epoch, base sequence, and whether the
/// sequence was rewritten by an epoch bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SequenceAssignment {
    pub(crate) producer: ProducerIdAndEpoch,
    pub(crate) base_sequence: i32,
    pub(crate) reset: bool,
}

/// Idempotent producer bookkeeping.
#[derive(Debug)]
pub(crate) struct TransactionManager {
    producer: ProducerIdAndEpoch,
    partitions: HashMap<TopicPartition, PartitionEntry>,
    unresolved: HashSet<TopicPartition>,
    to_rewrite: HashSet<TopicPartition>,
    epoch_bump_required: bool,
    init_in_flight: bool,
    /// The transactional state, with a `transactional.id`.
    txn: Option<Box<transaction::Txn>>,
}

impl TransactionManager {
    pub(crate) fn new() -> Self {
        TransactionManager {
            producer: ProducerIdAndEpoch::NONE,
            partitions: HashMap::new(),
            unresolved: HashSet::new(),
            to_rewrite: HashSet::new(),
            epoch_bump_required: false,
            init_in_flight: false,
            txn: None,
        }
    }

    /// The current producer id and epoch.
    pub(crate) fn producer_id_and_epoch(&self) -> ProducerIdAndEpoch {
        self.producer
    }

    pub(crate) fn has_producer_id(&self) -> bool {
        self.producer.is_valid()
    }

    /// Whether an (idempotent) InitProducerId request should be sent now. A transactional
    /// producer's goes through [`next_request`](Self::next_request) instead.
    pub(crate) fn needs_init(&self) -> bool {
        self.txn.is_none() && !self.has_producer_id() && !self.init_in_flight
    }

    pub(crate) fn init_started(&mut self) {
        self.init_in_flight = true;
    }

    /// InitProducerId failed (it is retried).
    pub(crate) fn init_failed(&mut self) {
        self.init_in_flight = false;
    }

    /// InitProducerId succeeded: a new producer id; every partition starts again at 0 once
    /// its in-flight batches of the old id have completed.
    pub(crate) fn set_producer_id_and_epoch(&mut self, producer: ProducerIdAndEpoch) {
        self.init_in_flight = false;
        self.producer = producer;
        for tp in self.to_rewrite.drain() {
            if let Some(e) = self.partitions.get_mut(&tp) {
                start_sequences_at_beginning(e, producer);
            }
            self.unresolved.remove(&tp);
        }
    }

    /// Java's `bumpIdempotentEpochAndResetIdIfNeeded`, called at the top of every sender
    /// loop: applies a requested epoch bump locally (or drops the producer id when the epoch
    /// is exhausted, so a new one is requested).
    pub(crate) fn bump_epoch_if_needed(&mut self) {
        self.maybe_resolve_sequences();
        if self.txn.is_some() {
            // A transactional producer bumps its epoch through InitProducerId when aborting.
            return;
        }
        if !self.epoch_bump_required || !self.has_producer_id() {
            return;
        }
        self.epoch_bump_required = false;
        if self.producer.epoch == i16::MAX {
            tracing::info!(
                producer_id = self.producer.producer_id,
                "epoch exhausted; requesting a new producer id"
            );
            self.producer = ProducerIdAndEpoch::NONE;
            return; // sequences are rewritten when the new id arrives
        }
        self.producer.epoch += 1;
        tracing::info!(
            producer_id = self.producer.producer_id,
            epoch = self.producer.epoch,
            "bumped the idempotent producer epoch (KIP-360)"
        );
        let producer = self.producer;
        for tp in self.to_rewrite.drain() {
            if let Some(e) = self.partitions.get_mut(&tp) {
                start_sequences_at_beginning(e, producer);
            }
            self.unresolved.remove(&tp);
        }
    }

    fn request_epoch_bump(&mut self, tp: &TopicPartition) {
        self.epoch_bump_required = true;
        self.to_rewrite.insert(tp.clone());
    }

    fn entry(&mut self, tp: &TopicPartition) -> &mut PartitionEntry {
        let producer = self.producer;
        self.partitions
            .entry(tp.clone())
            .or_insert_with(|| PartitionEntry::new(producer))
    }

    fn has_in_flight(&self, tp: &TopicPartition) -> bool {
        self.partitions
            .get(tp)
            .is_some_and(|e| !e.in_flight.is_empty())
    }

    fn has_stale_producer(&self, tp: &TopicPartition) -> bool {
        self.partitions
            .get(tp)
            .is_some_and(|e| e.producer != self.producer)
    }

    /// The base sequence of the partition's first in-flight batch, or -1.
    #[cfg(test)]
    pub(crate) fn first_in_flight_sequence(&self, tp: &TopicPartition) -> i32 {
        self.partitions
            .get(tp)
            .and_then(|e| e.in_flight.first())
            .map_or(kafka_wire::records::NO_SEQUENCE, |f| f.base_sequence)
    }

    /// Java's `shouldStopDrainBatchesForPartition`: whether the partition's first queued
    /// batch must wait. `has_sequence` tells whether that batch is a retry.
    pub(crate) fn should_stop_drain(
        &self,
        tp: &TopicPartition,
        batch_id: u64,
        has_sequence: bool,
    ) -> bool {
        if !self.is_send_to_partition_allowed(tp) {
            return true;
        }
        if !self.has_producer_id() {
            return true;
        }
        if !has_sequence {
            if self.has_in_flight(tp) && self.has_stale_producer(tp) {
                return true;
            }
            if self.unresolved.contains(tp) {
                return true;
            }
            // While a batch of the partition is being retried, newer batches wait: had the
            // retried batch been written before its response was lost, a newer batch could be
            // appended and push the retry out of the broker's duplicate window (last 5
            // batches), turning a duplicate into OUT_OF_ORDER_SEQUENCE_NUMBER.
            return self
                .partitions
                .get(tp)
                .is_some_and(|e| e.in_flight.iter().any(|f| f.retrying));
        }
        match self.partitions.get(tp).and_then(|e| e.in_flight.first()) {
            Some(first) => first.batch_id != batch_id,
            None => false,
        }
    }

    /// Gives a drained batch its sequence (or, for a retry, returns its current one, which
    /// an epoch bump may have rewritten).
    pub(crate) fn assign(
        &mut self,
        tp: &TopicPartition,
        batch_id: u64,
        record_count: i32,
    ) -> SequenceAssignment {
        let producer = self.producer;
        let e = self.entry(tp);
        if let Some(f) = e.in_flight.iter().find(|f| f.batch_id == batch_id) {
            return SequenceAssignment {
                producer: e.producer,
                base_sequence: f.base_sequence,
                reset: f.reset,
            };
        }
        // Java's maybeUpdateProducerIdAndEpoch: a partition left on an old id/epoch with
        // nothing in flight starts again at 0.
        if e.producer != producer && e.in_flight.is_empty() {
            *e = PartitionEntry::new(producer);
        }
        let base_sequence = e.next_sequence;
        e.next_sequence = increment_sequence(base_sequence, record_count);
        e.in_flight.push(InFlight {
            batch_id,
            base_sequence,
            record_count,
            reset: false,
            retrying: false,
        });
        SequenceAssignment {
            producer: e.producer,
            base_sequence,
            reset: false,
        }
    }

    /// A batch was split (MESSAGE_TOO_LARGE): its in-flight entry is replaced by the new
    /// batches, which take over its sequence range in order (Java's `split` keeps the big
    /// batch's sequences). `None` for each when the big batch had no sequence.
    pub(crate) fn replace_in_flight(
        &mut self,
        tp: &TopicPartition,
        old_batch_id: u64,
        new_batches: &[(u64, i32)],
    ) -> Vec<Option<SequenceAssignment>> {
        let Some(e) = self.partitions.get_mut(tp) else {
            return vec![None; new_batches.len()];
        };
        let Some(i) = e.in_flight.iter().position(|f| f.batch_id == old_batch_id) else {
            return vec![None; new_batches.len()];
        };
        let old = e.in_flight.remove(i);
        let mut seq = old.base_sequence;
        let mut out = Vec::with_capacity(new_batches.len());
        for (k, &(id, count)) in new_batches.iter().enumerate() {
            e.in_flight.insert(
                i + k,
                InFlight {
                    batch_id: id,
                    base_sequence: seq,
                    record_count: count,
                    reset: old.reset,
                    retrying: old.retrying,
                },
            );
            out.push(Some(SequenceAssignment {
                producer: e.producer,
                base_sequence: seq,
                reset: old.reset,
            }));
            seq = increment_sequence(seq, count);
        }
        out
    }

    /// The batch will be retried (see [`should_stop_drain`](Self::should_stop_drain)).
    pub(crate) fn mark_retrying(&mut self, tp: &TopicPartition, batch_id: u64) {
        if let Some(f) = self
            .partitions
            .get_mut(tp)
            .and_then(|e| e.in_flight.iter_mut().find(|f| f.batch_id == batch_id))
        {
            f.retrying = true;
        }
    }

    /// Whether the broker must already hold the batch: its sequences are at or below the
    /// last acknowledged sequence of the same producer id and epoch (the broker accepts a
    /// sequence only after all earlier ones). An OUT_OF_ORDER_SEQUENCE_NUMBER for such a batch
    /// is a duplicate that fell out of the broker's window, not a gap.
    pub(crate) fn is_already_acked(
        &self,
        tp: &TopicPartition,
        batch_id: u64,
        producer: ProducerIdAndEpoch,
    ) -> bool {
        let Some(e) = self.partitions.get(tp) else {
            return false;
        };
        if e.producer != producer || producer != self.producer {
            return false;
        }
        if e.last_acked_sequence == NO_LAST_ACKED_SEQUENCE {
            return false;
        }
        e.in_flight
            .iter()
            .find(|f| f.batch_id == batch_id)
            .is_some_and(|f| {
                let last = increment_sequence(f.base_sequence, f.record_count - 1);
                !seq_after(last, e.last_acked_sequence)
            })
    }

    fn remove_in_flight(&mut self, tp: &TopicPartition, batch_id: u64) -> Option<InFlight> {
        let e = self.partitions.get_mut(tp)?;
        let i = e.in_flight.iter().position(|f| f.batch_id == batch_id)?;
        Some(e.in_flight.remove(i))
    }

    /// A batch was acknowledged (or found to be a duplicate of one that was).
    pub(crate) fn handle_completed_batch(
        &mut self,
        tp: &TopicPartition,
        batch_id: u64,
        producer: ProducerIdAndEpoch,
        base_offset: i64,
    ) {
        let Some(f) = self.remove_in_flight(tp, batch_id) else {
            return;
        };
        let current = self.producer;
        if let Some(e) = self.partitions.get_mut(tp) {
            if producer == current && e.producer == current {
                let last = increment_sequence(f.base_sequence, f.record_count - 1);
                if e.last_acked_sequence == NO_LAST_ACKED_SEQUENCE
                    || seq_after(last, e.last_acked_sequence)
                {
                    e.last_acked_sequence = last;
                }
                if base_offset >= 0 {
                    e.last_acked_offset = e
                        .last_acked_offset
                        .max(base_offset + i64::from(f.record_count) - 1);
                }
            }
        }
    }

    /// Java's `TransactionManager.canRetry` for an error from the broker, given that the
    /// batch is otherwise retriable (attempts and delivery timeout left). May request an
    /// epoch bump.
    pub(crate) fn can_retry(
        &mut self,
        tp: &TopicPartition,
        batch_id: u64,
        base_sequence: i32,
        error: ErrorCode,
        log_start_offset: i64,
    ) -> bool {
        let reset = self
            .partitions
            .get(tp)
            .and_then(|e| e.in_flight.iter().find(|f| f.batch_id == batch_id))
            .is_some_and(|f| f.reset);
        let transactional = self.txn.is_some();
        match error {
            ErrorCode::UnknownProducerId => {
                if log_start_offset == -1 || reset {
                    return true;
                }
                if transactional {
                    // The head of the log was removed (retention): the broker lost our state
                    // legitimately; restart the partition's sequences and retry, so the
                    // transaction need not be aborted. Otherwise the batch fails and the
                    // transaction becomes abortable (epoch bumped when aborting).
                    let last_acked_offset =
                        self.partitions.get(tp).map_or(-1, |e| e.last_acked_offset);
                    if last_acked_offset < log_start_offset {
                        let producer = self.producer;
                        if let Some(e) = self.partitions.get_mut(tp) {
                            start_sequences_at_beginning(e, producer);
                        }
                        return true;
                    }
                    return false;
                }
                self.request_epoch_bump(tp);
                true
            }
            ErrorCode::OutOfOrderSequenceNumber => {
                let unresolved = self.unresolved.contains(tp);
                if !unresolved && (reset || !self.is_next_sequence(tp, base_sequence)) {
                    // Not the next batch: an earlier one failed; retry once it resolves.
                    return true;
                }
                if transactional {
                    return false;
                }
                if !unresolved || self.is_next_sequence(tp, base_sequence) {
                    self.request_epoch_bump(tp);
                }
                true
            }
            other => other.is_retriable(),
        }
    }

    fn is_next_sequence(&self, tp: &TopicPartition, sequence: i32) -> bool {
        let last = self
            .partitions
            .get(tp)
            .map_or(NO_LAST_ACKED_SEQUENCE, |e| e.last_acked_sequence);
        if last == NO_LAST_ACKED_SEQUENCE {
            return sequence == 0;
        }
        increment_sequence(last, 1) == sequence
    }

    /// A batch failed for good with `failure` (`error` is its Kafka code, when it came from
    /// the broker). `maybe_written` is true when it was sent and its outcome on the broker is
    /// unknown (timeouts) — then the partition's sequences are unresolved until everything in
    /// flight completes. Otherwise a batch that was rejected leaves a gap: the idempotent
    /// producer bumps the epoch, the transactional one shifts the later sequences down (Java's
    /// `handleFailedBatch`). A transactional producer's transaction becomes abortable (fatal
    /// for fencing and authorization errors), as Java's `maybeTransitionToErrorState`.
    pub(crate) fn handle_failed_batch(
        &mut self,
        tp: &TopicPartition,
        batch_id: u64,
        failure: &Error,
        error: Option<ErrorCode>,
        maybe_written: bool,
        adjust_sequences: bool,
    ) {
        if self.txn.is_some() {
            self.maybe_transition_to_error_state(failure);
        }
        let Some(removed) = self.remove_in_flight(tp, batch_id) else {
            return; // never given a sequence: nothing to fix
        };
        if self.has_fatal_error() {
            return;
        }
        if maybe_written {
            self.unresolved.insert(tp.clone());
            return;
        }
        let transactional = self.txn.is_some();
        match error {
            Some(ErrorCode::OutOfOrderSequenceNumber) if !transactional => {
                self.request_epoch_bump(tp)
            }
            Some(ErrorCode::UnknownProducerId) => {
                if let Some(e) = self.partitions.get_mut(tp) {
                    e.next_sequence = 0;
                    e.last_acked_sequence = NO_LAST_ACKED_SEQUENCE;
                }
            }
            _ if adjust_sequences && transactional => {
                self.adjust_sequences_due_to_failed_batch(tp, removed)
            }
            _ if adjust_sequences => self.request_epoch_bump(tp),
            _ => {}
        }
    }

    /// Java's `adjustSequencesDueToFailedBatch`: a transactional batch the broker rejected
    /// for good leaves a gap; the later batches of the partition move down by its record
    /// count (their bytes are patched when they are drained again).
    fn adjust_sequences_due_to_failed_batch(&mut self, tp: &TopicPartition, failed: InFlight) {
        let Some(e) = self.partitions.get_mut(tp) else {
            return;
        };
        let count = failed.record_count;
        if e.next_sequence < count {
            tracing::warn!(%tp, "sequence number would become negative; not adjusting");
            return;
        }
        e.next_sequence -= count;
        for f in &mut e.in_flight {
            if f.base_sequence < failed.base_sequence || f.base_sequence < count {
                continue;
            }
            f.base_sequence -= count;
        }
    }

    /// Java's `maybeResolveSequences`.
    fn maybe_resolve_sequences(&mut self) {
        let unresolved: Vec<TopicPartition> = self.unresolved.iter().cloned().collect();
        for tp in unresolved {
            if self.has_in_flight(&tp) {
                continue;
            }
            let next = self.partitions.get(&tp).map_or(0, |e| e.next_sequence);
            if !self.is_next_sequence(&tp, next) {
                if self.txn.is_some() {
                    self.unresolved_sequences_failed();
                } else {
                    self.request_epoch_bump(&tp);
                }
            }
            self.unresolved.remove(&tp);
        }
    }

    /// The last acknowledged offset of a partition (-1 when none).
    #[cfg(test)]
    pub(crate) fn last_acked_offset(&self, tp: &TopicPartition) -> i64 {
        self.partitions.get(tp).map_or(-1, |e| e.last_acked_offset)
    }

    /// The next sequence of a partition.
    #[cfg(test)]
    pub(crate) fn next_sequence(&self, tp: &TopicPartition) -> i32 {
        self.partitions.get(tp).map_or(0, |e| e.next_sequence)
    }
}

/// Sequences wrap to 0 after `i32::MAX`, as in Kafka's `DefaultRecordBatch.incrementSequence`.
fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Whether `a` comes after `b` in sequence order (with wraparound).
/// Sequences live in `0..=i32::MAX` (a 2^31 ring).
fn seq_after(a: i32, b: i32) -> bool {
    let d = (i64::from(a) - i64::from(b)).rem_euclid(1 << 31);
    d > 0 && d < (1 << 30)
}

/// Java's `startSequencesAtBeginning`: rewrites the in-flight batches from sequence 0 under
/// the new producer id/epoch.
fn start_sequences_at_beginning(e: &mut PartitionEntry, producer: ProducerIdAndEpoch) {
    let mut seq = 0i32;
    for f in &mut e.in_flight {
        f.base_sequence = seq;
        f.reset = true;
        seq = increment_sequence(seq, f.record_count);
    }
    e.producer = producer;
    e.next_sequence = seq;
    e.last_acked_sequence = NO_LAST_ACKED_SEQUENCE;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition {
            topic: Arc::from("t"),
            partition: p,
        }
    }

    fn pid(id: i64, epoch: i16) -> ProducerIdAndEpoch {
        ProducerIdAndEpoch {
            producer_id: id,
            epoch,
        }
    }

    fn ready() -> TransactionManager {
        let mut t = TransactionManager::new();
        assert!(t.needs_init());
        t.init_started();
        assert!(!t.needs_init());
        t.set_producer_id_and_epoch(pid(7, 0));
        t
    }

    #[test]
    fn no_drain_without_producer_id() {
        let t = TransactionManager::new();
        assert!(t.should_stop_drain(&tp(0), 1, false));
    }

    #[test]
    fn sequences_are_assigned_per_partition_in_drain_order() {
        let mut t = ready();
        assert_eq!(t.assign(&tp(0), 1, 10).base_sequence, 0);
        assert_eq!(t.assign(&tp(0), 2, 5).base_sequence, 10);
        assert_eq!(t.assign(&tp(1), 3, 3).base_sequence, 0);
        assert_eq!(t.next_sequence(&tp(0)), 15);
        // Asking again for a batch in flight returns its sequence, not a new one.
        assert_eq!(t.assign(&tp(0), 1, 10).base_sequence, 0);
        assert_eq!(t.first_in_flight_sequence(&tp(0)), 0);
        t.handle_completed_batch(&tp(0), 1, pid(7, 0), 100);
        assert_eq!(t.first_in_flight_sequence(&tp(0)), 10);
        assert_eq!(t.last_acked_offset(&tp(0)), 109);
    }

    #[test]
    fn retries_wait_until_they_are_first_in_flight() {
        let mut t = ready();
        t.assign(&tp(0), 1, 1);
        t.assign(&tp(0), 2, 1);
        // Batch 2 came back for a retry before batch 1 completed: it waits.
        assert!(t.should_stop_drain(&tp(0), 2, true));
        assert!(!t.should_stop_drain(&tp(0), 1, true));
        t.handle_completed_batch(&tp(0), 1, pid(7, 0), 0);
        assert!(!t.should_stop_drain(&tp(0), 2, true));
    }

    #[test]
    fn out_of_order_behind_a_failed_batch_is_retried_without_a_bump() {
        let mut t = ready();
        t.assign(&tp(0), 1, 1); // seq 0
        t.assign(&tp(0), 2, 1); // seq 1
                                // Batch 1 got a retriable error, batch 2 then OUT_OF_ORDER (seq 1 is not next: last acked is -1).
        assert!(t.can_retry(&tp(0), 1, 0, ErrorCode::NotLeaderOrFollower, 0));
        assert!(t.can_retry(&tp(0), 2, 1, ErrorCode::OutOfOrderSequenceNumber, 0));
        t.bump_epoch_if_needed();
        assert_eq!(t.producer_id_and_epoch(), pid(7, 0));
    }

    #[test]
    fn out_of_order_for_the_next_sequence_bumps_the_epoch_and_rewrites_in_flight() {
        let mut t = ready();
        t.assign(&tp(0), 1, 2); // 0..1
        t.assign(&tp(0), 2, 3); // 2..4
        t.assign(&tp(1), 9, 1);
        t.handle_completed_batch(&tp(1), 9, pid(7, 0), 0);
        // The broker lost our state: batch 1 (the next sequence) is out of order.
        assert!(t.can_retry(&tp(0), 1, 0, ErrorCode::OutOfOrderSequenceNumber, 0));
        t.bump_epoch_if_needed();
        assert_eq!(t.producer_id_and_epoch(), pid(7, 1));
        let a = t.assign(&tp(0), 1, 2);
        assert_eq!((a.producer, a.base_sequence, a.reset), (pid(7, 1), 0, true));
        assert_eq!(t.assign(&tp(0), 2, 3).base_sequence, 2);
        assert_eq!(t.next_sequence(&tp(0)), 5);
        // Partition 1 is stale but idle: its next batch starts at 0 under the new epoch.
        let b = t.assign(&tp(1), 10, 1);
        assert_eq!((b.producer, b.base_sequence), (pid(7, 1), 0));
    }

    #[test]
    fn new_batches_wait_for_stale_in_flight_batches() {
        let mut t = ready();
        t.assign(&tp(0), 1, 1);
        t.assign(&tp(1), 2, 1);
        t.can_retry(&tp(1), 2, 0, ErrorCode::OutOfOrderSequenceNumber, 0);
        t.bump_epoch_if_needed();
        // Partition 0 still has a batch in flight under epoch 0: no new batch may start at 0.
        assert!(t.should_stop_drain(&tp(0), 3, false));
        t.handle_completed_batch(&tp(0), 1, pid(7, 0), 5);
        assert!(!t.should_stop_drain(&tp(0), 3, false));
        assert_eq!(t.assign(&tp(0), 3, 1).base_sequence, 0);
    }

    #[test]
    fn an_expired_batch_leaves_sequences_unresolved_until_in_flight_completes() {
        let mut t = ready();
        t.assign(&tp(0), 1, 1); // seq 0, expires after being sent
        t.assign(&tp(0), 2, 1); // seq 1
        t.handle_failed_batch(&tp(0), 1, &Error::Timeout(String::new()), None, true, false);
        assert!(
            t.should_stop_drain(&tp(0), 3, false),
            "unresolved blocks new batches"
        );
        // Batch 2 succeeds, so batch 1 must have been written too: resolved without a bump.
        t.handle_completed_batch(&tp(0), 2, pid(7, 0), 10);
        t.bump_epoch_if_needed();
        assert_eq!(t.producer_id_and_epoch(), pid(7, 0));
        assert!(!t.should_stop_drain(&tp(0), 3, false));
    }

    #[test]
    fn an_expired_last_batch_forces_an_epoch_bump() {
        let mut t = ready();
        t.assign(&tp(0), 1, 1);
        t.handle_failed_batch(&tp(0), 1, &Error::Timeout(String::new()), None, true, false);
        t.bump_epoch_if_needed();
        assert_eq!(t.producer_id_and_epoch(), pid(7, 1));
        assert_eq!(t.assign(&tp(0), 2, 1).base_sequence, 0);
    }

    #[test]
    fn a_rejected_batch_bumps_the_epoch() {
        let mut t = ready();
        t.assign(&tp(0), 1, 1);
        t.assign(&tp(0), 2, 1);
        t.handle_failed_batch(
            &tp(0),
            1,
            &Error::kafka(ErrorCode::InvalidRecord),
            Some(ErrorCode::InvalidRecord),
            false,
            true,
        );
        t.bump_epoch_if_needed();
        assert_eq!(t.producer_id_and_epoch(), pid(7, 1));
        let a = t.assign(&tp(0), 2, 1);
        assert_eq!((a.base_sequence, a.reset), (0, true));
    }

    #[test]
    fn exhausted_epoch_asks_for_a_new_producer_id() {
        let mut t = TransactionManager::new();
        t.set_producer_id_and_epoch(pid(3, i16::MAX));
        t.assign(&tp(0), 1, 1);
        t.handle_failed_batch(
            &tp(0),
            1,
            &Error::kafka(ErrorCode::OutOfOrderSequenceNumber),
            Some(ErrorCode::OutOfOrderSequenceNumber),
            false,
            true,
        );
        t.bump_epoch_if_needed();
        assert!(!t.has_producer_id());
        assert!(t.needs_init());
        t.set_producer_id_and_epoch(pid(4, 0));
        assert_eq!(t.assign(&tp(0), 2, 1).base_sequence, 0);
    }

    #[test]
    fn a_split_batch_keeps_its_sequence_range() {
        let mut t = ready();
        t.assign(&tp(0), 1, 10); // 0..9
        t.assign(&tp(0), 2, 1); // 10
        let a = t.replace_in_flight(&tp(0), 1, &[(5, 4), (6, 6)]);
        assert_eq!(a[0].map(|a| a.base_sequence), Some(0));
        assert_eq!(a[1].map(|a| a.base_sequence), Some(4));
        assert_eq!(t.first_in_flight_sequence(&tp(0)), 0);
        assert!(!t.should_stop_drain(&tp(0), 5, true));
        assert!(t.should_stop_drain(&tp(0), 6, true));
        assert_eq!(t.next_sequence(&tp(0)), 11);
    }

    #[test]
    fn new_batches_wait_while_a_batch_is_retried() {
        let mut t = ready();
        t.assign(&tp(0), 1, 1);
        assert!(!t.should_stop_drain(&tp(0), 2, false));
        t.mark_retrying(&tp(0), 1);
        assert!(t.should_stop_drain(&tp(0), 2, false));
        assert!(
            !t.should_stop_drain(&tp(0), 1, true),
            "the retry itself goes"
        );
        t.handle_completed_batch(&tp(0), 1, pid(7, 0), 0);
        assert!(!t.should_stop_drain(&tp(0), 2, false));
    }

    #[test]
    fn a_batch_below_the_last_acked_sequence_is_already_written() {
        let mut t = ready();
        t.assign(&tp(0), 1, 5); // 0..4
        t.assign(&tp(0), 2, 5); // 5..9
        assert!(!t.is_already_acked(&tp(0), 1, pid(7, 0)));
        t.handle_completed_batch(&tp(0), 2, pid(7, 0), 5);
        assert!(t.is_already_acked(&tp(0), 1, pid(7, 0)));
        assert!(!t.is_already_acked(&tp(0), 1, pid(7, 1)), "other epoch");
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 3), 8);
        assert!(seq_after(0, i32::MAX));
        assert!(!seq_after(3, 4));
    }
}
