//! The state of one transactional id and its transitions: Kafka's `TransactionMetadata` and
//! the decisions of its `TransactionCoordinator` (KIP-98; KIP-360 epoch bumps; transaction
//! version 1 semantics: the epoch is bumped by InitProducerId and fencing only).
//!
//! Pure: no I/O, no clock (`now` comes in). The coordinator ([`super`]) asks for a
//! [`Transit`] (Kafka's `TxnTransitMetadata`, the target of a `prepareTransitionTo`), writes it
//! to `__transaction_state`, and only then applies it with [`TxnMetadata::complete`]
//! (`completeTransitionTo`). The coordinator holds its lock from the preparation to the
//! completion, so there is never more than one pending transition (Kafka's `pendingState`).

use std::collections::BTreeSet;

use kafka_wire::ErrorCode;

/// `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A transaction's state, with Kafka's ids (persisted) and names (DescribeTransactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction in progress (after InitProducerId).
    Empty,
    /// Partitions were added: a transaction is open.
    Ongoing,
    /// EndTxn(commit) was accepted; markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence; markers are being written.
    PrepareAbort,
    /// Every commit marker was written.
    CompleteCommit,
    /// Every abort marker was written.
    CompleteAbort,
    /// The transactional id expired and is being removed.
    Dead,
    /// The epoch is being bumped to fence a producer (never persisted by Kafka).
    PrepareEpochFence,
}

impl TxnState {
    /// Every state, in id order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// Kafka's id (`TransactionState.id`), the `TransactionStatus` byte of the log value.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state with Kafka's id `id`.
    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state named `name` (case-sensitive, as Kafka's `fromName`).
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Kafka's `validPreviousStates`: whether this state may follow `from`.
    pub fn may_follow(self, from: TxnState) -> bool {
        use TxnState::*;
        match self {
            Empty => matches!(from, Empty | CompleteCommit | CompleteAbort),
            Ongoing => matches!(from, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareCommit => from == Ongoing,
            PrepareAbort => matches!(from, Ongoing | PrepareEpochFence),
            CompleteCommit => from == PrepareCommit,
            CompleteAbort => from == PrepareAbort,
            Dead => matches!(from, Empty | CompleteCommit | CompleteAbort),
            PrepareEpochFence => from == Ongoing,
        }
    }

    /// Whether the transactional id may expire in this state (`isExpirationAllowed`).
    pub fn expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }

    /// PrepareCommit or PrepareAbort: markers remain to be written.
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// A partition of a transaction: `(topic, partition)`.
pub type TxnPartition = (String, i32);

/// Kafka's `isEpochExhausted`: the epoch is `Short.MaxValue - 1` or more (one epoch is kept
/// for fencing).
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// The target of a transition (Kafka's `TxnTransitMetadata`): what is written to
/// `__transaction_state` before it takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transit {
    /// Producer id.
    pub producer_id: i64,
    /// The producer id before this transition (Kafka's `lastProducerId`).
    pub last_producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// The previous epoch, for KIP-360 retries (-1 none).
    pub last_producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// Target state.
    pub state: TxnState,
    /// Partitions of the transaction.
    pub partitions: BTreeSet<TxnPartition>,
    /// When the transaction started (-1 none).
    pub start_timestamp: i64,
    /// The time of this transition.
    pub last_update_timestamp: i64,
}

/// One transactional id's metadata (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// Current producer id.
    pub producer_id: i64,
    /// The previous producer id (after a rotation).
    pub last_producer_id: i64,
    /// Current epoch (-1 before the first InitProducerId completed).
    pub producer_epoch: i16,
    /// The epoch before the last KIP-360 bump (-1 none; not persisted, as Kafka).
    pub last_producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions of the open (or completing) transaction; while markers are written, the
    /// partitions that still need one.
    pub partitions: BTreeSet<TxnPartition>,
    /// When the open transaction started (-1 none).
    pub start_timestamp: i64,
    /// When the metadata last changed.
    pub last_update_timestamp: i64,
    /// A fence's epoch bump may not have been persisted: the next fence reuses it.
    pub has_failed_epoch_fence: bool,
}

/// What InitProducerId does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Persist the transit, then answer its producer id and epoch.
    Bump(Transit),
    /// An open transaction must be aborted first (the epoch is bumped to fence its
    /// producer); the answer is CONCURRENT_TRANSACTIONS and the client retries.
    FenceAndAbort,
}

/// What EndTxn does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Nothing to do: the transaction already ended this way (a retry); answer NONE.
    AlreadyDone,
    /// Persist the PrepareCommit/PrepareAbort transit, then write the markers.
    Prepare(Transit),
}

impl TxnMetadata {
    /// Metadata for a new transactional id: the producer id is allocated, the epoch is -1
    /// until the first InitProducerId transition completes.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp: -1,
            last_update_timestamp: now,
            has_failed_epoch_fence: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn transit(
        &self,
        state: TxnState,
        producer_id: i64,
        producer_epoch: i16,
        last_producer_epoch: i16,
        timeout_ms: i32,
        partitions: BTreeSet<TxnPartition>,
        start_timestamp: i64,
        now: i64,
    ) -> Transit {
        debug_assert!(
            state.may_follow(self.state),
            "{:?} -> {:?}",
            self.state,
            state
        );
        Transit {
            producer_id,
            last_producer_id: self.producer_id,
            producer_epoch,
            last_producer_epoch,
            timeout_ms,
            state,
            partitions,
            start_timestamp,
            last_update_timestamp: now,
        }
    }

    /// Whether the epoch is exhausted (the next InitProducerId rotates the producer id).
    pub fn epoch_exhausted(&self) -> bool {
        epoch_exhausted(self.producer_epoch)
    }

    /// InitProducerId for an existing id (`prepareInitProducerIdTransit`). `expected` is the
    /// KIP-360 `(producer_id, epoch)` of the request (v3+), `new_producer_id` allocates an id
    /// when the epoch is exhausted.
    ///
    /// # Errors
    /// CONCURRENT_TRANSACTIONS (markers being written), PRODUCER_FENCED (KIP-360 mismatch),
    /// or the allocation's error.
    pub fn prepare_init(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
        new_producer_id: &mut dyn FnMut() -> Result<i64, ErrorCode>,
    ) -> Result<InitStep, ErrorCode> {
        let valid_id = |(pid, epoch): (i64, i16)| {
            self.producer_epoch == NO_PRODUCER_EPOCH
                || pid == self.producer_id
                || (pid == self.last_producer_id && epoch_exhausted(epoch))
        };
        if !expected.is_none_or(valid_id) {
            return Err(ErrorCode::ProducerFenced);
        }
        match self.state {
            TxnState::PrepareAbort | TxnState::PrepareCommit => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit => {
                if self.epoch_exhausted() && expected.is_none_or(|(_, e)| e == self.producer_epoch)
                {
                    let pid = new_producer_id()?;
                    let last_epoch = if expected.is_some() {
                        self.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    return Ok(InitStep::Bump(self.transit(
                        TxnState::Empty,
                        pid,
                        0,
                        last_epoch,
                        timeout_ms,
                        BTreeSet::new(),
                        -1,
                        now,
                    )));
                }
                self.prepare_increment_epoch(timeout_ms, expected.map(|(_, e)| e), now)
                    .map(InitStep::Bump)
            }
            TxnState::Ongoing => Ok(InitStep::FenceAndAbort),
            TxnState::Dead | TxnState::PrepareEpochFence => Err(ErrorCode::UnknownServerError),
        }
    }

    /// `prepareIncrementProducerEpoch`.
    fn prepare_increment_epoch(
        &self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now: i64,
    ) -> Result<Transit, ErrorCode> {
        if self.epoch_exhausted() {
            return Err(ErrorCode::UnknownServerError);
        }
        let bumped = self.producer_epoch + 1;
        let (epoch, last) = match expected_epoch {
            None => (bumped, NO_PRODUCER_EPOCH),
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                (bumped, self.producer_epoch)
            }
            // A retry of a bump that succeeded: the same answer again.
            Some(e) if e == self.last_producer_epoch => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(ErrorCode::ProducerFenced),
        };
        Ok(self.transit(
            TxnState::Empty,
            self.producer_id,
            epoch,
            last,
            timeout_ms,
            BTreeSet::new(),
            -1,
            now,
        ))
    }

    /// The fence that aborts an open transaction (InitProducerId of a new instance, or a
    /// timeout): Kafka's `prepareFenceProducerEpoch` followed by `endTransaction(ABORT,
    /// isFromClient = false)`. Bumps the in-memory epoch at once (so the fenced producer is
    /// refused even if the write fails; [`has_failed_epoch_fence`](Self::has_failed_epoch_fence)
    /// then keeps the next fence from bumping again) and returns the PrepareAbort transit
    /// with the bumped epoch.
    ///
    /// # Errors
    /// INVALID_TXN_STATE when no transaction is open, UNKNOWN_SERVER_ERROR when the epoch
    /// cannot be bumped (`Short.MaxValue`).
    pub fn prepare_fence_abort(&mut self, now: i64) -> Result<Transit, ErrorCode> {
        if self.state != TxnState::Ongoing {
            return Err(ErrorCode::InvalidTxnState);
        }
        if self.producer_epoch == i16::MAX {
            return Err(ErrorCode::UnknownServerError);
        }
        if !self.has_failed_epoch_fence {
            self.producer_epoch += 1;
        }
        self.last_producer_epoch = NO_PRODUCER_EPOCH;
        Ok(self.transit(
            TxnState::PrepareAbort,
            self.producer_id,
            self.producer_epoch,
            NO_PRODUCER_EPOCH,
            self.timeout_ms,
            self.partitions.clone(),
            self.start_timestamp,
            now,
        ))
    }

    /// Checks of AddPartitionsToTxn / AddOffsetsToTxn (`handleAddPartitionsToTransaction`);
    /// `Ok(None)` when every partition is already in the open transaction.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS.
    pub fn prepare_add_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TxnPartition>,
        now: i64,
    ) -> Result<Option<Transit>, ErrorCode> {
        if self.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if self.producer_epoch != producer_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Ongoing if partitions.is_subset(&self.partitions) => Ok(None),
            TxnState::Empty
            | TxnState::Ongoing
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort => {
                let start = if self.state == TxnState::Ongoing {
                    self.start_timestamp
                } else {
                    now
                };
                let all = self.partitions.union(partitions).cloned().collect();
                Ok(Some(self.transit(
                    TxnState::Ongoing,
                    self.producer_id,
                    self.producer_epoch,
                    self.last_producer_epoch,
                    self.timeout_ms,
                    all,
                    start,
                    now,
                )))
            }
            TxnState::Dead | TxnState::PrepareEpochFence => Err(ErrorCode::UnknownServerError),
        }
    }

    /// EndTxn from the client (`endTransaction` with `isFromClient = true`).
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS (markers still
    /// being written for the same outcome), INVALID_TXN_STATE (nothing to end, or the other
    /// outcome).
    pub fn prepare_end(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now: i64,
    ) -> Result<EndStep, ErrorCode> {
        if self.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if producer_epoch != self.producer_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                Ok(EndStep::Prepare(self.transit(
                    state,
                    self.producer_id,
                    self.producer_epoch,
                    self.last_producer_epoch,
                    self.timeout_ms,
                    self.partitions.clone(),
                    self.start_timestamp,
                    now,
                )))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndStep::AlreadyDone)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            (TxnState::Dead | TxnState::PrepareEpochFence, _) => Err(ErrorCode::UnknownServerError),
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// `prepareComplete`: PrepareCommit → CompleteCommit, PrepareAbort → CompleteAbort, once
    /// every marker is written. `None` in any other state.
    pub fn prepare_complete(&self, now: i64) -> Option<Transit> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        Some(self.transit(
            state,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.timeout_ms,
            BTreeSet::new(),
            self.start_timestamp,
            now,
        ))
    }

    /// Applies a transit whose record was written (`completeTransitionTo`).
    pub fn complete(&mut self, t: Transit) {
        match t.state {
            TxnState::Empty => {
                self.timeout_ms = t.timeout_ms;
                self.producer_epoch = t.producer_epoch;
                self.last_producer_epoch = t.last_producer_epoch;
                self.producer_id = t.producer_id;
                self.last_producer_id = t.last_producer_id;
            }
            TxnState::Ongoing => {
                self.start_timestamp = t.start_timestamp;
                self.partitions.extend(t.partitions);
            }
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                self.start_timestamp = t.start_timestamp;
                self.partitions.clear();
                self.has_failed_epoch_fence = false;
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                self.producer_epoch = t.producer_epoch;
                self.last_producer_epoch = t.last_producer_epoch;
                self.partitions = t.partitions;
            }
            TxnState::Dead | TxnState::PrepareEpochFence => {}
        }
        self.last_update_timestamp = t.last_update_timestamp;
        self.state = t.state;
    }

    /// Whether the open transaction has outlived its timeout (`timedOutTransactions`:
    /// Ongoing and `start + timeout < now`).
    pub fn timed_out(&self, now: i64) -> bool {
        self.state == TxnState::Ongoing
            && self
                .start_timestamp
                .saturating_add(i64::from(self.timeout_ms))
                < now
    }

    /// Whether the transactional id has been idle for `expiration_ms`
    /// (`transactional.id.expiration.ms`) in a state that allows expiration.
    pub fn expired(&self, now: i64, expiration_ms: i64) -> bool {
        self.state.expiration_allowed()
            && self.last_update_timestamp <= now.saturating_sub(expiration_ms)
    }

    /// The metadata restored from a log value (Kafka's `readTxnRecordValue`): the previous
    /// epoch is unknown (-1).
    #[allow(clippy::too_many_arguments)]
    pub fn restored(
        transactional_id: &str,
        producer_id: i64,
        last_producer_id: i64,
        producer_epoch: i16,
        timeout_ms: i32,
        state: TxnState,
        partitions: BTreeSet<TxnPartition>,
        start_timestamp: i64,
        last_update_timestamp: i64,
    ) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            last_producer_id,
            producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state,
            partitions: if state == TxnState::Empty {
                BTreeSet::new()
            } else {
                partitions
            },
            start_timestamp,
            last_update_timestamp,
            has_failed_epoch_fence: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(&str, i32)]) -> BTreeSet<TxnPartition> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn no_alloc() -> impl FnMut() -> Result<i64, ErrorCode> {
        || panic!("no producer id expected")
    }

    /// A fresh id after its first InitProducerId: producer 7, epoch 0, Empty.
    fn initialized(now: i64) -> TxnMetadata {
        let mut m = TxnMetadata::new("tx", 7, 60_000, now);
        let InitStep::Bump(t) = m.prepare_init(60_000, None, now, &mut no_alloc()).unwrap() else {
            panic!("bump expected")
        };
        assert_eq!(
            (t.producer_id, t.producer_epoch, t.state),
            (7, 0, TxnState::Empty)
        );
        m.complete(t);
        m
    }

    fn ongoing(now: i64) -> TxnMetadata {
        let mut m = initialized(now);
        let t = m
            .prepare_add_partitions(7, 0, &parts(&[("a", 0)]), now + 1)
            .unwrap()
            .unwrap();
        m.complete(t);
        m
    }

    #[test]
    fn state_ids_names_and_transitions_are_kafkas() {
        for (i, s) in TxnState::ALL.iter().enumerate() {
            assert_eq!(s.id(), i as i8);
            assert_eq!(TxnState::from_id(i as i8), Some(*s));
            assert_eq!(TxnState::from_name(s.name()), Some(*s));
        }
        assert_eq!(TxnState::from_id(8), None);
        assert_eq!(TxnState::from_name("ongoing"), None);
        use TxnState::*;
        assert!(PrepareAbort.may_follow(PrepareEpochFence));
        assert!(!PrepareCommit.may_follow(Empty));
        assert!(!CompleteAbort.may_follow(PrepareCommit));
        assert!(Ongoing.may_follow(CompleteCommit));
        assert!(!Empty.may_follow(Ongoing));
    }

    #[test]
    fn add_partitions_starts_and_extends_a_transaction() {
        let m = ongoing(100);
        assert_eq!(m.state, TxnState::Ongoing);
        assert_eq!(m.start_timestamp, 101);
        // Already added: nothing to write.
        assert_eq!(
            m.prepare_add_partitions(7, 0, &parts(&[("a", 0)]), 200),
            Ok(None)
        );
        let t = m
            .prepare_add_partitions(7, 0, &parts(&[("b", 1)]), 200)
            .unwrap()
            .unwrap();
        assert_eq!(t.partitions, parts(&[("a", 0), ("b", 1)]));
        assert_eq!(t.start_timestamp, 101, "the start time is kept");
        assert_eq!(
            m.prepare_add_partitions(8, 0, &parts(&[("b", 1)]), 200),
            Err(ErrorCode::InvalidProducerIdMapping)
        );
        assert_eq!(
            m.prepare_add_partitions(7, 1, &parts(&[("b", 1)]), 200),
            Err(ErrorCode::ProducerFenced)
        );
    }

    #[test]
    fn commit_and_abort_and_their_retries() {
        for commit in [true, false] {
            let mut m = ongoing(0);
            let EndStep::Prepare(t) = m.prepare_end(7, 0, commit, 10).unwrap() else {
                panic!()
            };
            m.complete(t);
            let prepared = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            assert_eq!(m.state, prepared);
            assert_eq!(m.partitions, parts(&[("a", 0)]));
            // Same outcome while markers are written: retry later; the other: invalid.
            assert_eq!(
                m.prepare_end(7, 0, commit, 11),
                Err(ErrorCode::ConcurrentTransactions)
            );
            assert_eq!(
                m.prepare_end(7, 0, !commit, 11),
                Err(ErrorCode::InvalidTxnState)
            );
            assert_eq!(
                m.prepare_add_partitions(7, 0, &parts(&[("a", 0)]), 11),
                Err(ErrorCode::ConcurrentTransactions)
            );
            assert_eq!(
                m.prepare_init(1000, None, 11, &mut no_alloc()),
                Err(ErrorCode::ConcurrentTransactions)
            );
            let t = m.prepare_complete(12).unwrap();
            m.complete(t);
            assert!(m.partitions.is_empty());
            assert!(m.state.expiration_allowed());
            assert_eq!(m.prepare_end(7, 0, commit, 13), Ok(EndStep::AlreadyDone));
            assert_eq!(
                m.prepare_end(7, 0, !commit, 13),
                Err(ErrorCode::InvalidTxnState)
            );
            // The next transaction starts from Complete*.
            let t = m
                .prepare_add_partitions(7, 0, &parts(&[("b", 0)]), 14)
                .unwrap()
                .unwrap();
            assert_eq!(t.start_timestamp, 14);
        }
    }

    #[test]
    fn end_without_a_transaction_or_with_a_stale_producer() {
        let m = initialized(0);
        assert_eq!(
            m.prepare_end(7, 0, true, 1),
            Err(ErrorCode::InvalidTxnState)
        );
        assert_eq!(
            m.prepare_end(8, 0, true, 1),
            Err(ErrorCode::InvalidProducerIdMapping)
        );
        let m = ongoing(0);
        assert_eq!(m.prepare_end(7, 1, true, 1), Err(ErrorCode::ProducerFenced));
    }

    #[test]
    fn init_bumps_the_epoch_and_fences_an_open_transaction() {
        let mut m = initialized(0);
        let InitStep::Bump(t) = m.prepare_init(5000, None, 1, &mut no_alloc()).unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.producer_epoch, t.last_producer_epoch, t.timeout_ms),
            (1, -1, 5000)
        );
        m.complete(t);
        assert_eq!((m.producer_epoch, m.timeout_ms), (1, 5000));
        // An open transaction: fence it.
        let t = m
            .prepare_add_partitions(7, 1, &parts(&[("a", 0)]), 2)
            .unwrap()
            .unwrap();
        m.complete(t);
        assert_eq!(
            m.prepare_init(5000, None, 3, &mut no_alloc()),
            Ok(InitStep::FenceAndAbort)
        );
        let t = m.prepare_fence_abort(3).unwrap();
        assert_eq!((t.state, t.producer_epoch), (TxnState::PrepareAbort, 2));
        assert_eq!(m.producer_epoch, 2, "bumped before the write");
        // The fenced producer (epoch 1) is refused everywhere.
        assert_eq!(m.prepare_end(7, 1, true, 3), Err(ErrorCode::ProducerFenced));
        m.complete(t);
        let t = m.prepare_complete(4).unwrap();
        m.complete(t);
        assert_eq!(m.state, TxnState::CompleteAbort);
        // The retry bumps again.
        let InitStep::Bump(t) = m.prepare_init(5000, None, 5, &mut no_alloc()).unwrap() else {
            panic!()
        };
        assert_eq!(t.producer_epoch, 3);
    }

    #[test]
    fn a_failed_fence_is_not_bumped_twice() {
        let mut m = ongoing(0);
        let t = m.prepare_fence_abort(1).unwrap();
        assert_eq!(t.producer_epoch, 1);
        // The write failed: the coordinator marks it.
        m.has_failed_epoch_fence = true;
        let t = m.prepare_fence_abort(2).unwrap();
        assert_eq!(t.producer_epoch, 1);
        m.complete(t);
        let t = m.prepare_complete(3).unwrap();
        m.complete(t);
        assert!(!m.has_failed_epoch_fence);
    }

    #[test]
    fn kip_360_retries_and_stale_producers() {
        let mut m = initialized(0);
        // The producer (7, 0) asks for a bump: 1, last 0.
        let InitStep::Bump(t) = m
            .prepare_init(1000, Some((7, 0)), 1, &mut no_alloc())
            .unwrap()
        else {
            panic!()
        };
        assert_eq!((t.producer_epoch, t.last_producer_epoch), (1, 0));
        m.complete(t);
        // Its retry (the answer was lost) gets the same result.
        let InitStep::Bump(t) = m
            .prepare_init(1000, Some((7, 0)), 2, &mut no_alloc())
            .unwrap()
        else {
            panic!()
        };
        assert_eq!((t.producer_epoch, t.last_producer_epoch), (1, 0));
        // A stale epoch, or another producer id, is fenced.
        let mut stale = m.clone();
        stale.complete(t);
        let InitStep::Bump(t) = stale.prepare_init(1000, None, 3, &mut no_alloc()).unwrap() else {
            panic!()
        };
        stale.complete(t);
        assert_eq!((stale.producer_epoch, stale.last_producer_epoch), (2, -1));
        assert_eq!(
            stale.prepare_init(1000, Some((7, 0)), 4, &mut no_alloc()),
            Err(ErrorCode::ProducerFenced)
        );
        assert_eq!(
            stale.prepare_init(1000, Some((9, 2)), 4, &mut no_alloc()),
            Err(ErrorCode::ProducerFenced)
        );
        // A brand-new id accepts any expected id (the producer lost its id: KIP-360).
        let fresh = TxnMetadata::new("tx", 11, 1000, 0);
        let InitStep::Bump(t) = fresh
            .prepare_init(1000, Some((3, 4)), 1, &mut no_alloc())
            .unwrap()
        else {
            panic!()
        };
        assert_eq!((t.producer_id, t.producer_epoch), (11, 0));
    }

    #[test]
    fn an_exhausted_epoch_rotates_the_producer_id() {
        let mut m = initialized(0);
        m.producer_epoch = i16::MAX - 1;
        let mut alloc = || Ok(42);
        let InitStep::Bump(t) = m.prepare_init(1000, None, 1, &mut alloc).unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.producer_id, t.producer_epoch, t.last_producer_id),
            (42, 0, 7)
        );
        assert_eq!(t.last_producer_epoch, -1);
        m.complete(t);
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.last_producer_id),
            (42, 0, 7)
        );
        // KIP-360: the producer of the old id retrying with the exhausted epoch is not fenced.
        let mut m2 = initialized(0);
        m2.producer_epoch = i16::MAX - 1;
        let mut alloc = || Ok(43);
        let InitStep::Bump(t) = m2
            .prepare_init(1000, Some((7, i16::MAX - 1)), 1, &mut alloc)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!((t.producer_id, t.last_producer_epoch), (43, i16::MAX - 1));
        m2.complete(t);
        let mut alloc = || Ok(44);
        assert!(matches!(
            m2.prepare_init(1000, Some((7, i16::MAX - 1)), 2, &mut alloc),
            Ok(InitStep::Bump(_))
        ));
        // Allocation failures are the answer.
        let mut failing = || Err(ErrorCode::CoordinatorLoadInProgress);
        m.producer_epoch = i16::MAX - 1;
        assert_eq!(
            m.prepare_init(1000, None, 3, &mut failing),
            Err(ErrorCode::CoordinatorLoadInProgress)
        );
    }

    #[test]
    fn timeouts_and_expiration() {
        let m = ongoing(1000); // started at 1001, timeout 60 s
        assert!(!m.timed_out(61_001));
        assert!(m.timed_out(61_002));
        let e = initialized(1000);
        assert!(!e.timed_out(i64::MAX));
        assert!(e.expired(2000, 1000));
        assert!(!e.expired(1999, 1000));
        assert!(!m.expired(i64::MAX, 0), "an open transaction never expires");
        let mut fence = m.clone();
        fence.producer_epoch = i16::MAX;
        assert_eq!(
            fence.prepare_fence_abort(5),
            Err(ErrorCode::UnknownServerError)
        );
        let mut idle = initialized(0);
        assert_eq!(idle.prepare_fence_abort(5), Err(ErrorCode::InvalidTxnState));
    }
}
