//! The transactional half of the producer's `TransactionManager` (KIP-98 transactions,
//! KIP-447 consumer group metadata in `TxnOffsetCommit`, KIP-360 epoch bumps when aborting):
//! Java's `TransactionManager` state machine, its request queue and its request handlers
//! (`InitProducerIdHandler`, `AddPartitionsToTxnHandler`, `AddOffsetsToTxnHandler`,
//! `TxnOffsetCommitHandler`, `EndTxnHandler`, `FindCoordinatorHandler`).
//!
//! Pure logic without sockets or clocks, driven like a quinn connection: the `Sender` asks
//! [`TransactionManager::next_request`] for the one transactional request to send (at most
//! one is in flight), sends it to the node the request names, and feeds the outcome back
//! with [`TransactionManager::handle_response`], [`TransactionManager::handle_disconnect`] or
//! [`TransactionManager::handle_request_error`]. The application's calls
//! (`initialize_transactions`, `begin_transaction`, `begin_commit`, `begin_abort`,
//! `send_offsets_to_transaction`) enqueue requests and return a [`TxnResult`] to wait on.
//!
//! States and transitions are Java's (`isTransitionValid`):
//!
//! ```text
//! UNINITIALIZED -> INITIALIZING -> READY -> IN_TRANSACTION -> COMMITTING_TRANSACTION -> READY
//!                                                          -> ABORTING_TRANSACTION   -> READY
//!                                          IN_TRANSACTION / COMMITTING -> ABORTABLE_ERROR
//!                                          ABORTABLE_ERROR -> ABORTING_TRANSACTION
//!                  ABORTING_TRANSACTION -> INITIALIZING (epoch bump, KIP-360) -> READY
//!                  any -> FATAL_ERROR (sticky: the producer must be closed)
//! ```
//!
//! Requests go out in Java's priority order: FindCoordinator, InitProducerId,
//! AddPartitionsToTxn / AddOffsetsToTxn / TxnOffsetCommit, EndTxn, then an epoch-bumping
//! InitProducerId. EndTxn waits until every batch of the transaction has completed, and is
//! skipped when no partition or offsets were ever added (`transactionStarted`). A batch may
//! be drained only once its partition was added by AddPartitionsToTxn
//! ([`TransactionManager::is_send_to_partition_allowed`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_wire::ErrorCode;
use tokio::sync::watch;

use super::TransactionManager;
use crate::consumer::coordinator::{CoordinatorNode, OffsetAndMetadata};
use crate::consumer::group::ConsumerGroupMetadata;
use crate::error::Error;
use crate::producer::batch::{ProducerIdAndEpoch, TopicPartition};

/// Java's `ADD_PARTITIONS_RETRY_BACKOFF_MS`: the backoff after CONCURRENT_TRANSACTIONS for
/// the first AddPartitionsToTxn of a transaction (the previous one is still completing).
pub(crate) const ADD_PARTITIONS_RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// The transaction manager's state (Java's `TransactionManager.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// `init_transactions` was not called yet.
    Uninitialized,
    /// InitProducerId in progress.
    Initializing,
    /// A producer id; no transaction open.
    Ready,
    /// `begin_transaction` was called.
    InTransaction,
    /// `commit_transaction` in progress.
    CommittingTransaction,
    /// `abort_transaction` in progress.
    AbortingTransaction,
    /// The transaction failed; only an abort is possible.
    AbortableError,
    /// The producer cannot continue and must be closed.
    FatalError,
}

impl State {
    /// Java's name for the state.
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Uninitialized => "UNINITIALIZED",
            State::Initializing => "INITIALIZING",
            State::Ready => "READY",
            State::InTransaction => "IN_TRANSACTION",
            State::CommittingTransaction => "COMMITTING_TRANSACTION",
            State::AbortingTransaction => "ABORTING_TRANSACTION",
            State::AbortableError => "ABORTABLE_ERROR",
            State::FatalError => "FATAL_ERROR",
        }
    }

    /// Java's `isTransitionValid`.
    pub(crate) fn is_transition_valid(self, target: State) -> bool {
        use State::*;
        match target {
            Uninitialized => self == Ready,
            Initializing => matches!(self, Uninitialized | AbortingTransaction),
            Ready => matches!(
                self,
                Initializing | CommittingTransaction | AbortingTransaction
            ),
            InTransaction => self == Ready,
            CommittingTransaction => self == InTransaction,
            AbortingTransaction => matches!(self, InTransaction | AbortableError),
            AbortableError => {
                matches!(self, InTransaction | CommittingTransaction | AbortableError)
            }
            FatalError => true,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// FindCoordinator key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CoordinatorType {
    /// A consumer group (key type 0).
    Group,
    /// A transactional id (key type 1).
    Transaction,
}

impl CoordinatorType {
    /// The wire `KeyType`.
    pub(crate) fn key_type(self) -> i8 {
        match self {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        }
    }
}

/// The outcome of a transactional operation, shared by the application's call and the
/// handlers that complete it (Java's `TransactionalRequestResult`). Completed once; waiting
/// again (a retried call after a timeout) sees the same outcome.
#[derive(Debug, Clone)]
pub(crate) struct TxnResult {
    inner: Arc<watch::Sender<Option<Result<(), Error>>>>,
}

impl TxnResult {
    pub(crate) fn new() -> Self {
        TxnResult {
            inner: Arc::new(watch::Sender::new(None)),
        }
    }

    fn complete(&self, outcome: Result<(), Error>) {
        self.inner.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(outcome);
                true
            } else {
                false
            }
        });
    }

    pub(crate) fn done(&self) {
        self.complete(Ok(()));
    }

    pub(crate) fn fail(&self, error: Error) {
        self.complete(Err(error));
    }

    pub(crate) fn is_completed(&self) -> bool {
        self.inner.borrow().is_some()
    }

    /// The outcome, once completed.
    #[cfg(test)]
    pub(crate) fn outcome(&self) -> Option<Result<(), Error>> {
        self.inner.borrow().clone()
    }

    /// Whether both are the same operation.
    #[cfg(test)]
    pub(crate) fn same(&self, other: &TxnResult) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Waits for the outcome.
    ///
    /// # Cancel safety
    /// Cancel safe: the operation does not depend on anyone waiting.
    pub(crate) async fn wait(&self) -> Result<(), Error> {
        let mut rx = self.inner.subscribe();
        let outcome = match rx.wait_for(|v| v.is_some()).await {
            Ok(v) => v.clone().unwrap_or(Ok(())),
            Err(_) => Err(Error::Closed),
        };
        outcome
    }
}

/// Which application call a pending result belongs to (Java's
/// `handleCachedTransactionRequestResult` keys it by the target state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Init,
    Commit,
    Abort,
}

#[derive(Debug, Clone)]
enum Kind {
    FindCoordinator {
        coordinator_type: CoordinatorType,
        key: String,
    },
    InitProducerId {
        epoch_bump: bool,
        producer: ProducerIdAndEpoch,
    },
    AddPartitions {
        producer: ProducerIdAndEpoch,
        partitions: Vec<TopicPartition>,
    },
    AddOffsets {
        producer: ProducerIdAndEpoch,
        group: ConsumerGroupMetadata,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    },
    TxnOffsetCommit {
        producer: ProducerIdAndEpoch,
        group: ConsumerGroupMetadata,
    },
    EndTxn {
        producer: ProducerIdAndEpoch,
        commit: bool,
    },
}

impl Kind {
    /// Java's `Priority`: lower goes first.
    fn priority(&self) -> u8 {
        match self {
            Kind::FindCoordinator { .. } => 0,
            Kind::InitProducerId {
                epoch_bump: false, ..
            } => 1,
            Kind::AddPartitions { .. } | Kind::AddOffsets { .. } | Kind::TxnOffsetCommit { .. } => {
                2
            }
            Kind::EndTxn { .. } => 3,
            Kind::InitProducerId {
                epoch_bump: true, ..
            } => 4,
        }
    }

    fn is_end_txn(&self) -> bool {
        matches!(self, Kind::EndTxn { .. })
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::FindCoordinator { .. } => "FindCoordinator",
            Kind::InitProducerId { .. } => "InitProducerId",
            Kind::AddPartitions { .. } => "AddPartitionsToTxn",
            Kind::AddOffsets { .. } => "AddOffsetsToTxn",
            Kind::TxnOffsetCommit { .. } => "TxnOffsetCommit",
            Kind::EndTxn { .. } => "EndTxn",
        }
    }
}

#[derive(Debug)]
struct Handler {
    id: u64,
    /// Enqueue order among requests of the same priority.
    seq: u64,
    kind: Kind,
    result: TxnResult,
    retry_backoff: Duration,
    /// Not before this instant (a retry after its backoff).
    ready_at: Option<Instant>,
}

/// A transactional request for the `Sender` to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TxnRequest {
    /// Hand back with the outcome.
    pub(crate) id: u64,
    /// The coordinator to send it to; `None`: any broker (FindCoordinator).
    pub(crate) target: Option<CoordinatorNode>,
    /// Which coordinator `target` is.
    pub(crate) coordinator_type: Option<CoordinatorType>,
    /// What to send.
    pub(crate) body: TxnRequestBody,
}

/// The requests the transaction manager sends (fields as on the wire).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TxnRequestBody {
    FindCoordinator {
        key_type: CoordinatorType,
        key: String,
    },
    InitProducerId {
        transactional_id: String,
        transaction_timeout_ms: i32,
        /// `NONE` for a first initialization; the current id and epoch to bump the epoch
        /// (KIP-360, InitProducerId v3+).
        producer: ProducerIdAndEpoch,
    },
    AddPartitionsToTxn {
        transactional_id: String,
        producer: ProducerIdAndEpoch,
        partitions: Vec<TopicPartition>,
    },
    AddOffsetsToTxn {
        transactional_id: String,
        producer: ProducerIdAndEpoch,
        group_id: String,
    },
    TxnOffsetCommit {
        transactional_id: String,
        producer: ProducerIdAndEpoch,
        /// Group id, generation, member id and instance id (the last three v3+, KIP-447).
        group: ConsumerGroupMetadata,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    },
    EndTxn {
        transactional_id: String,
        producer: ProducerIdAndEpoch,
        commit: bool,
    },
}

/// A decoded answer to a [`TxnRequest`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TxnResponse {
    FindCoordinator {
        error: ErrorCode,
        message: Option<String>,
        coordinator: CoordinatorNode,
    },
    InitProducerId {
        error: ErrorCode,
        producer: ProducerIdAndEpoch,
    },
    AddPartitionsToTxn {
        errors: Vec<(TopicPartition, ErrorCode)>,
    },
    AddOffsetsToTxn {
        error: ErrorCode,
    },
    TxnOffsetCommit {
        errors: Vec<(TopicPartition, ErrorCode)>,
    },
    EndTxn {
        error: ErrorCode,
    },
}

/// What [`TransactionManager::next_request`] asks the `Sender` to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TxnNext {
    /// Send this request now.
    Send(TxnRequest),
    /// The next request waits for its retry backoff: ask again at this instant.
    Backoff(Instant),
    /// Nothing to send (a request is in flight, EndTxn waits for batches, or none queued).
    Idle,
}

/// The transactional state of a [`TransactionManager`].
#[derive(Debug)]
pub(crate) struct Txn {
    transactional_id: String,
    transaction_timeout_ms: i32,
    retry_backoff: Duration,
    state: State,
    last_error: Option<Error>,
    /// Whether a partition or offsets were added (else EndTxn is skipped).
    transaction_started: bool,
    /// The transaction coordinator's InitProducerId is v3+ (it can bump epochs, KIP-360).
    coordinator_supports_epoch_bump: bool,
    new_partitions: BTreeSet<TopicPartition>,
    pending_partitions: BTreeSet<TopicPartition>,
    partitions: HashSet<TopicPartition>,
    pending_offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    queue: Vec<Handler>,
    in_flight: Option<Handler>,
    txn_coordinator: Option<CoordinatorNode>,
    group_coordinator: Option<CoordinatorNode>,
    pending_result: Option<(Op, TxnResult)>,
    next_id: u64,
}

impl Txn {
    pub(crate) fn new(
        transactional_id: String,
        transaction_timeout_ms: i32,
        retry_backoff: Duration,
    ) -> Self {
        Txn {
            transactional_id,
            transaction_timeout_ms,
            retry_backoff,
            state: State::Uninitialized,
            last_error: None,
            transaction_started: false,
            coordinator_supports_epoch_bump: false,
            new_partitions: BTreeSet::new(),
            pending_partitions: BTreeSet::new(),
            partitions: HashSet::new(),
            pending_offsets: BTreeMap::new(),
            queue: Vec::new(),
            in_flight: None,
            txn_coordinator: None,
            group_coordinator: None,
            pending_result: None,
            next_id: 1,
        }
    }

    fn has_error(&self) -> bool {
        matches!(self.state, State::AbortableError | State::FatalError)
    }

    fn is_completing(&self) -> bool {
        matches!(
            self.state,
            State::CommittingTransaction | State::AbortingTransaction
        )
    }

    fn transition_to(&mut self, target: State, error: Option<Error>) -> Result<(), Error> {
        if !self.state.is_transition_valid(target) {
            return Err(Error::IllegalState(format!(
                "TransactionalId {}: Invalid transition attempted from state {} to state {}",
                self.transactional_id, self.state, target
            )));
        }
        if matches!(target, State::FatalError | State::AbortableError) {
            self.last_error = error;
        } else {
            self.last_error = None;
        }
        match &self.last_error {
            Some(e) => tracing::debug!(
                transactional_id = %self.transactional_id,
                from = %self.state, to = %target, error = %e,
                "transaction manager transition to an error state"
            ),
            None => tracing::debug!(
                transactional_id = %self.transactional_id,
                from = %self.state, to = %target,
                "transaction manager transition"
            ),
        }
        self.state = target;
        Ok(())
    }

    /// Java's `transitionToAbortableError`. Skipped while aborting, and (where Java would
    /// throw) from a state that cannot move to ABORTABLE_ERROR, e.g. FATAL_ERROR.
    fn transition_to_abortable_error(&mut self, error: Error) {
        if self.state == State::AbortingTransaction {
            tracing::debug!(error = %error, "skipping transition to abortable error state since the transaction is already being aborted");
            return;
        }
        if !self.state.is_transition_valid(State::AbortableError) {
            tracing::debug!(state = %self.state, error = %error, "not transitioning to abortable error state");
            return;
        }
        tracing::info!(transactional_id = %self.transactional_id, error = %error, "transiting to abortable error state");
        let _ = self.transition_to(State::AbortableError, Some(error));
    }

    /// Java's `transitionToFatalError`: also fails the pending application call.
    fn transition_to_fatal_error(&mut self, error: Error) {
        if self.state == State::FatalError {
            // Sticky: the first fatal error is the one every call reports.
            let first = self.last_error.clone().unwrap_or(error);
            if let Some((_, r)) = &self.pending_result {
                r.fail(first);
            }
            return;
        }
        tracing::info!(transactional_id = %self.transactional_id, error = %error, "transiting to fatal error state");
        let _ = self.transition_to(State::FatalError, Some(error.clone()));
        if let Some((_, r)) = &self.pending_result {
            r.fail(error);
        }
    }

    /// Java's `maybeFailWithError`: the error every call fails with in an error state.
    fn maybe_fail_with_error(&self) -> Result<(), Error> {
        if self.has_error() {
            return Err(self.last_error.clone().unwrap_or_else(|| {
                Error::IllegalState(format!("transaction manager in state {}", self.state))
            }));
        }
        Ok(())
    }

    fn coordinator(&self, t: CoordinatorType) -> Option<&CoordinatorNode> {
        match t {
            CoordinatorType::Group => self.group_coordinator.as_ref(),
            CoordinatorType::Transaction => self.txn_coordinator.as_ref(),
        }
    }

    /// Where a request goes: `None` for any broker.
    fn coordinator_of(&self, kind: &Kind) -> Option<(CoordinatorType, String)> {
        match kind {
            Kind::FindCoordinator { .. } => None,
            Kind::TxnOffsetCommit { group, .. } => {
                Some((CoordinatorType::Group, group.group_id.clone()))
            }
            _ => Some((CoordinatorType::Transaction, self.transactional_id.clone())),
        }
    }

    fn enqueue_with(&mut self, kind: Kind, result: TxnResult) -> TxnResult {
        let id = self.next_id;
        self.next_id += 1;
        tracing::debug!(request = kind.name(), "enqueuing transactional request");
        self.queue.push(Handler {
            id,
            seq: id,
            kind,
            result: result.clone(),
            retry_backoff: self.retry_backoff,
            ready_at: None,
        });
        result
    }

    fn enqueue(&mut self, kind: Kind) -> TxnResult {
        self.enqueue_with(kind, TxnResult::new())
    }

    /// Java's `lookupCoordinator`: forget the coordinator and queue a FindCoordinator (once).
    fn lookup_coordinator(&mut self, t: CoordinatorType, key: String) {
        match t {
            CoordinatorType::Group => self.group_coordinator = None,
            CoordinatorType::Transaction => self.txn_coordinator = None,
        }
        let queued = self.queue.iter().any(|h| {
            matches!(&h.kind, Kind::FindCoordinator { coordinator_type, key: k }
                if *coordinator_type == t && *k == key)
        });
        if !queued {
            self.enqueue(Kind::FindCoordinator {
                coordinator_type: t,
                key,
            });
        }
    }

    /// Java's `reenqueue` / `retry`: queued again, sent after its backoff.
    fn reenqueue(&mut self, mut h: Handler, now: Instant) {
        h.ready_at = Some(now + h.retry_backoff);
        self.queue.push(h);
    }

    /// Java's `addPartitionsToTransactionHandler`: new partitions become pending, in one
    /// AddPartitionsToTxn (merged into one already queued).
    fn enqueue_add_partitions(&mut self, producer: ProducerIdAndEpoch) {
        let new = std::mem::take(&mut self.new_partitions);
        self.pending_partitions.extend(new);
        let partitions: Vec<TopicPartition> = self.pending_partitions.iter().cloned().collect();
        if let Some(h) = self
            .queue
            .iter_mut()
            .find(|h| matches!(h.kind, Kind::AddPartitions { .. }))
        {
            h.kind = Kind::AddPartitions {
                producer,
                partitions,
            };
            return;
        }
        self.enqueue(Kind::AddPartitions {
            producer,
            partitions,
        });
    }

    /// Java's `completeTransaction`.
    fn complete_transaction(&mut self, epoch_bump_required: bool) {
        let target = if epoch_bump_required {
            State::Initializing
        } else {
            State::Ready
        };
        if let Err(e) = self.transition_to(target, None) {
            tracing::warn!(error = %e, "completing the transaction");
        }
        self.last_error = None;
        self.transaction_started = false;
        self.new_partitions.clear();
        self.pending_partitions.clear();
        self.partitions.clear();
    }

    fn body(&self, kind: &Kind) -> TxnRequestBody {
        let transactional_id = self.transactional_id.clone();
        match kind {
            Kind::FindCoordinator {
                coordinator_type,
                key,
            } => TxnRequestBody::FindCoordinator {
                key_type: *coordinator_type,
                key: key.clone(),
            },
            Kind::InitProducerId { producer, .. } => TxnRequestBody::InitProducerId {
                transactional_id,
                transaction_timeout_ms: self.transaction_timeout_ms,
                producer: *producer,
            },
            Kind::AddPartitions {
                producer,
                partitions,
            } => TxnRequestBody::AddPartitionsToTxn {
                transactional_id,
                producer: *producer,
                partitions: partitions.clone(),
            },
            Kind::AddOffsets {
                producer, group, ..
            } => TxnRequestBody::AddOffsetsToTxn {
                transactional_id,
                producer: *producer,
                group_id: group.group_id.clone(),
            },
            Kind::TxnOffsetCommit { producer, group } => TxnRequestBody::TxnOffsetCommit {
                transactional_id,
                producer: *producer,
                group: group.clone(),
                offsets: self
                    .pending_offsets
                    .iter()
                    .map(|(tp, o)| (tp.clone(), o.clone()))
                    .collect(),
            },
            Kind::EndTxn { producer, commit } => TxnRequestBody::EndTxn {
                transactional_id,
                producer: *producer,
                commit: *commit,
            },
        }
    }
}

fn fenced() -> Error {
    Error::kafka(ErrorCode::ProducerFenced)
}

/// The error of a handler for an unexpected code.
fn unexpected(code: ErrorCode, what: &str) -> Error {
    Error::kafka_with_message(code, Some(format!("{what}: {}", code.message())))
}

impl TransactionManager {
    /// A transactional producer's manager (`transactional.id`).
    pub(crate) fn new_transactional(
        transactional_id: String,
        transaction_timeout_ms: i32,
        retry_backoff: Duration,
    ) -> Self {
        let mut t = TransactionManager::new();
        t.txn = Some(Box::new(Txn::new(
            transactional_id,
            transaction_timeout_ms,
            retry_backoff,
        )));
        t
    }

    /// Whether the producer has a `transactional.id`.
    pub(crate) fn is_transactional(&self) -> bool {
        self.txn.is_some()
    }

    /// The transactional state (`None` for an idempotent-only producer).
    pub(crate) fn state(&self) -> Option<State> {
        self.txn.as_ref().map(|t| t.state)
    }

    fn txn_mut(&mut self) -> Result<&mut Txn, Error> {
        self.txn.as_deref_mut().ok_or_else(|| {
            Error::IllegalState(
                "Transactional method invoked on a non-transactional producer.".into(),
            )
        })
    }

    /// The error that put the manager in ABORTABLE_ERROR or FATAL_ERROR.
    pub(crate) fn last_error(&self) -> Option<Error> {
        self.txn.as_ref().and_then(|t| t.last_error.clone())
    }

    /// The fatal error, in FATAL_ERROR.
    pub(crate) fn fatal_error(&self) -> Option<Error> {
        self.txn
            .as_ref()
            .filter(|t| t.state == State::FatalError)
            .and_then(|t| t.last_error.clone())
    }

    pub(crate) fn has_fatal_error(&self) -> bool {
        self.state() == Some(State::FatalError)
    }

    pub(crate) fn has_abortable_error(&self) -> bool {
        self.state() == Some(State::AbortableError)
    }

    pub(crate) fn is_aborting(&self) -> bool {
        self.state() == Some(State::AbortingTransaction)
    }

    /// Committing or aborting.
    pub(crate) fn is_completing(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.is_completing())
    }

    /// Java's `hasOngoingTransaction`: from `begin_transaction` until completed or fatal.
    pub(crate) fn has_ongoing_transaction(&self) -> bool {
        matches!(
            self.state(),
            Some(
                State::InTransaction
                    | State::CommittingTransaction
                    | State::AbortingTransaction
                    | State::AbortableError
            )
        )
    }

    /// Whether a transactional request is queued or in flight.
    #[cfg(test)]
    pub(crate) fn has_pending_requests(&self) -> bool {
        self.txn
            .as_ref()
            .is_some_and(|t| !t.queue.is_empty() || t.in_flight.is_some())
    }

    /// Java's `canBumpEpoch`.
    pub(crate) fn can_bump_epoch(&self) -> bool {
        self.txn
            .as_ref()
            .is_none_or(|t| t.coordinator_supports_epoch_bump)
    }

    /// Java's `handleCoordinatorReady`: whether the transaction coordinator can bump epochs
    /// (InitProducerId v3+), learnt when a request is sent to it.
    pub(crate) fn handle_coordinator_ready(&mut self, supports_epoch_bump: bool) {
        if let Some(t) = self.txn.as_deref_mut() {
            t.coordinator_supports_epoch_bump = supports_epoch_bump;
        }
    }

    /// Java's `handleCachedTransactionRequestResult`: a call made again while its operation
    /// is still running (the caller timed out) gets the same result.
    fn cached(
        &mut self,
        op: Op,
        target: State,
        start: impl FnOnce(&mut Self) -> Result<TxnResult, Error>,
    ) -> Result<TxnResult, Error> {
        let t = self.txn_mut()?;
        if let Some((pop, r)) = &t.pending_result {
            if *pop == op && (!r.is_completed() || t.state == target) {
                let r = r.clone();
                if r.is_completed() {
                    t.pending_result = None;
                }
                return Ok(r);
            }
        }
        let r = start(self)?;
        if let Some(t) = self.txn.as_deref_mut() {
            t.pending_result = Some((op, r.clone()));
        }
        Ok(r)
    }

    /// Java's `initializeTransactions`: UNINITIALIZED → INITIALIZING, InitProducerId (after
    /// FindCoordinator) with the transactional id and `transaction.timeout.ms`.
    pub(crate) fn initialize_transactions(&mut self) -> Result<TxnResult, Error> {
        self.cached(Op::Init, State::Initializing, |s| {
            let t = s.txn_mut()?;
            if t.state == State::FatalError {
                t.maybe_fail_with_error()?;
            }
            t.transition_to(State::Initializing, None)?;
            tracing::info!(transactional_id = %t.transactional_id, "invoking InitProducerId for the first time in order to acquire a producer ID");
            Ok(t.enqueue(Kind::InitProducerId {
                epoch_bump: false,
                producer: ProducerIdAndEpoch::NONE,
            }))
        })
    }

    /// Java's `beginTransaction`: READY → IN_TRANSACTION (local, nothing is sent).
    pub(crate) fn begin_transaction(&mut self) -> Result<(), Error> {
        let t = self.txn_mut()?;
        t.maybe_fail_with_error()?;
        t.transition_to(State::InTransaction, None)
    }

    /// Java's `beginCommit`: IN_TRANSACTION → COMMITTING_TRANSACTION, EndTxn(commit) once
    /// every batch completed.
    pub(crate) fn begin_commit(&mut self) -> Result<TxnResult, Error> {
        self.cached(Op::Commit, State::CommittingTransaction, |s| {
            let t = s.txn_mut()?;
            t.maybe_fail_with_error()?;
            t.transition_to(State::CommittingTransaction, None)?;
            Ok(s.begin_completing_transaction(true, false))
        })
    }

    /// Java's `beginAbort`: IN_TRANSACTION or ABORTABLE_ERROR → ABORTING_TRANSACTION,
    /// EndTxn(abort) once the batches in flight completed (the `Sender` fails those not sent
    /// yet), then an epoch bump when an error required one.
    pub(crate) fn begin_abort(&mut self) -> Result<TxnResult, Error> {
        self.cached(Op::Abort, State::AbortingTransaction, |s| {
            let t = s.txn_mut()?;
            if t.state != State::AbortableError {
                t.maybe_fail_with_error()?;
            }
            let pid_mapping_lost = t
                .last_error
                .as_ref()
                .and_then(Error::code)
                .is_some_and(|c| c == ErrorCode::InvalidProducerIdMapping);
            t.transition_to(State::AbortingTransaction, None)?;
            // We're aborting the transaction, so there should be no need to add new partitions.
            t.new_partitions.clear();
            // A commit that failed before its EndTxn was sent must not send it now.
            let (stale, keep): (Vec<Handler>, Vec<Handler>) = std::mem::take(&mut t.queue)
                .into_iter()
                .partition(|h| matches!(h.kind, Kind::EndTxn { commit: true, .. }));
            t.queue = keep;
            for h in stale {
                h.result.fail(Error::TransactionAborted);
            }
            Ok(s.begin_completing_transaction(false, pid_mapping_lost))
        })
    }

    /// Java's `beginCompletingTransaction`.
    fn begin_completing_transaction(&mut self, commit: bool, pid_mapping_lost: bool) -> TxnResult {
        let producer = self.producer;
        let bump = self.epoch_bump_required;
        let Some(t) = self.txn.as_deref_mut() else {
            return TxnResult::new();
        };
        if !t.new_partitions.is_empty() {
            t.enqueue_add_partitions(producer);
        }
        // With INVALID_PRODUCER_ID_MAPPING the coordinator does not accept EndTxn: go to
        // InitProducerId directly. Otherwise end the transaction first (a bare InitProducerId
        // would fence us).
        if !pid_mapping_lost {
            let r = t.enqueue(Kind::EndTxn { producer, commit });
            if !bump {
                return r;
            }
        }
        tracing::info!(producer_id = producer.producer_id, epoch = producer.epoch, "invoking InitProducerId with the current producer ID and epoch in order to bump the epoch");
        t.enqueue(Kind::InitProducerId {
            epoch_bump: true,
            producer,
        })
    }

    /// Java's `sendOffsetsToTransaction`: AddOffsetsToTxn(group) to the transaction
    /// coordinator, then TxnOffsetCommit to the group coordinator; the result completes when
    /// the offsets are committed to the transaction.
    pub(crate) fn send_offsets_to_transaction(
        &mut self,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
        group: ConsumerGroupMetadata,
    ) -> Result<TxnResult, Error> {
        let producer = self.producer;
        let t = self.txn_mut()?;
        t.maybe_fail_with_error()?;
        if t.state != State::InTransaction {
            return Err(Error::IllegalState(
                "Cannot send offsets to transaction either because the producer is not in an active transaction".into(),
            ));
        }
        tracing::debug!(group_id = %group.group_id, offsets = offsets.len(), "begin adding offsets to transaction");
        Ok(t.enqueue(Kind::AddOffsets {
            producer,
            group,
            offsets,
        }))
    }

    /// Java's `failIfNotReadyForSend`: a record may be sent only inside a transaction, after
    /// `init_transactions`, and not after an error.
    pub(crate) fn fail_if_not_ready_for_send(&self) -> Result<(), Error> {
        let Some(t) = self.txn.as_deref() else {
            return Ok(());
        };
        t.maybe_fail_with_error()?;
        if !self.has_producer_id() {
            return Err(Error::IllegalState(
                "Cannot perform a 'send' before completing a call to initTransactions when transactions are enabled.".into(),
            ));
        }
        if t.state != State::InTransaction {
            return Err(Error::IllegalState(format!(
                "Cannot call send in state {}",
                t.state
            )));
        }
        Ok(())
    }

    /// Java's `maybeAddPartition`: a partition the transaction has not seen is queued for
    /// the next AddPartitionsToTxn.
    pub(crate) fn maybe_add_partition(&mut self, tp: &TopicPartition) {
        let Some(t) = self.txn.as_deref_mut() else {
            return;
        };
        if t.partitions.contains(tp)
            || t.new_partitions.contains(tp)
            || t.pending_partitions.contains(tp)
        {
            return;
        }
        tracing::debug!(%tp, "begin adding new partition to transaction");
        t.new_partitions.insert(tp.clone());
    }

    /// Java's `isSendToPartitionAllowed`: batches of a transactional producer are drained
    /// only for partitions added to the transaction, and never after a fatal error.
    pub(crate) fn is_send_to_partition_allowed(&self, tp: &TopicPartition) -> bool {
        match self.txn.as_deref() {
            None => true,
            Some(t) => t.state != State::FatalError && t.partitions.contains(tp),
        }
    }

    /// Java's `maybeTransitionToErrorState`, for a failed batch.
    pub(crate) fn maybe_transition_to_error_state(&mut self, error: &Error) {
        let fatal = match error {
            Error::Kafka { code, .. } => matches!(
                code,
                ErrorCode::ClusterAuthorizationFailed
                    | ErrorCode::TransactionalIdAuthorizationFailed
                    | ErrorCode::ProducerFenced
                    | ErrorCode::UnsupportedVersion
            ),
            Error::UnsupportedVersion(_) => true,
            _ => false,
        };
        let can_bump = self.can_bump_epoch();
        let Some(t) = self.txn.as_deref_mut() else {
            return;
        };
        if fatal {
            t.transition_to_fatal_error(error.clone());
        } else {
            if can_bump && !t.is_completing() && t.state != State::FatalError {
                self.epoch_bump_required = true;
            }
            t.transition_to_abortable_error(error.clone());
        }
    }

    /// The transactional half of Java's `maybeResolveSequences` for a partition whose
    /// unacknowledged batches all expired: bump the epoch when aborting (if possible).
    pub(crate) fn unresolved_sequences_failed(&mut self) {
        let can_bump = self.can_bump_epoch();
        let Some(t) = self.txn.as_deref_mut() else {
            return;
        };
        let msg =
            "The client hasn't received acknowledgment for some previously sent messages and can no longer retry them. ";
        if can_bump {
            self.epoch_bump_required = true;
            t.transition_to_abortable_error(Error::Timeout(format!(
                "{msg}It is safe to abort the transaction and continue."
            )));
        } else {
            t.transition_to_fatal_error(Error::Timeout(format!("{msg}It isn't safe to continue.")));
        }
    }

    /// Java's `nextRequest`: the next transactional request to send, if any. At most one is
    /// in flight; EndTxn waits until no batch is incomplete (`has_incomplete_batches`).
    pub(crate) fn next_request(&mut self, now: Instant, has_incomplete_batches: bool) -> TxnNext {
        let producer = self.producer;
        let bump = self.epoch_bump_required;
        let Some(t) = self.txn.as_deref_mut() else {
            return TxnNext::Idle;
        };
        if t.in_flight.is_some() {
            return TxnNext::Idle;
        }
        if !t.new_partitions.is_empty() {
            t.enqueue_add_partitions(producer);
        }
        loop {
            let Some(i) = t
                .queue
                .iter()
                .enumerate()
                .min_by_key(|(_, h)| (h.kind.priority(), h.seq))
                .map(|(i, _)| i)
            else {
                return TxnNext::Idle;
            };
            let h = &t.queue[i];
            // Do not send the EndTxn until all batches have been flushed.
            if h.kind.is_end_txn() && has_incomplete_batches {
                return TxnNext::Idle;
            }
            if let Some(at) = h.ready_at {
                if at > now {
                    return TxnNext::Backoff(at);
                }
            }
            let h = t.queue.remove(i);
            // Java's maybeTerminateRequestWithError.
            if t.has_error() {
                let find_while_abortable = t.state == State::AbortableError
                    && matches!(h.kind, Kind::FindCoordinator { .. });
                if !find_while_abortable {
                    tracing::trace!(
                        request = h.kind.name(),
                        "not sending transactional request because we are in an error state"
                    );
                    h.result
                        .fail(t.last_error.clone().unwrap_or(Error::TransactionAborted));
                    continue;
                }
            }
            if h.kind.is_end_txn() && !t.transaction_started {
                h.result.done();
                if t.state != State::FatalError {
                    tracing::debug!("not sending EndTxn for completed transaction since no partitions or offsets were successfully added");
                    t.complete_transaction(bump);
                    self.epoch_bump_required = false;
                }
                return self.next_request(now, has_incomplete_batches);
            }
            let coordinator = t.coordinator_of(&h.kind);
            let target = match &coordinator {
                None => None,
                Some((ct, key)) => match t.coordinator(*ct) {
                    Some(node) => Some(node.clone()),
                    None => {
                        // Java also sleeps `retry.backoff.ms` before sending it after the
                        // lookup; nothing failed, so it goes right after FindCoordinator.
                        tracing::trace!(
                            request = h.kind.name(),
                            "coordinator not known; finding it first"
                        );
                        t.lookup_coordinator(*ct, key.clone());
                        t.queue.push(h);
                        continue;
                    }
                },
            };
            let request = TxnRequest {
                id: h.id,
                target,
                coordinator_type: coordinator.map(|(ct, _)| ct),
                body: t.body(&h.kind),
            };
            t.in_flight = Some(h);
            return TxnNext::Send(request);
        }
    }

    fn take_in_flight(&mut self, id: u64) -> Option<Handler> {
        let t = self.txn.as_deref_mut()?;
        if t.in_flight.as_ref().is_some_and(|h| h.id == id) {
            t.in_flight.take()
        } else {
            tracing::debug!(
                id,
                "outcome of a transactional request that is not in flight"
            );
            None
        }
    }

    /// The request could not be sent or its connection broke (or timed out): find the
    /// coordinator again and retry (Java's `wasDisconnected` / `maybeFindCoordinatorAndRetry`).
    pub(crate) fn handle_disconnect(&mut self, id: u64, now: Instant) {
        let Some(h) = self.take_in_flight(id) else {
            return;
        };
        let Some(t) = self.txn.as_deref_mut() else {
            return;
        };
        if let Some((ct, key)) = t.coordinator_of(&h.kind) {
            t.lookup_coordinator(ct, key);
        }
        t.reenqueue(h, now);
    }

    /// The request cannot be sent at all (no common version): fatal, as Java's
    /// `versionMismatch`.
    pub(crate) fn handle_request_error(&mut self, id: u64, error: Error) {
        let Some(h) = self.take_in_flight(id) else {
            return;
        };
        self.fail_fatal(&h.result, error);
    }

    fn fail_fatal(&mut self, result: &TxnResult, error: Error) {
        result.fail(error.clone());
        if let Some(t) = self.txn.as_deref_mut() {
            t.transition_to_fatal_error(error);
        }
    }

    fn abortable_error(&mut self, result: &TxnResult, error: Error) {
        result.fail(error.clone());
        if let Some(t) = self.txn.as_deref_mut() {
            t.transition_to_abortable_error(error);
        }
    }

    fn abortable_error_if_possible(&mut self, result: &TxnResult, error: Error) {
        if self.can_bump_epoch() {
            self.epoch_bump_required = true;
            self.abortable_error(result, error);
        } else {
            self.fail_fatal(result, error);
        }
    }

    fn reenqueue(&mut self, h: Handler, now: Instant) {
        if let Some(t) = self.txn.as_deref_mut() {
            t.reenqueue(h, now);
        }
    }

    fn lookup_coordinator(&mut self, ct: CoordinatorType, key: String) {
        if let Some(t) = self.txn.as_deref_mut() {
            t.lookup_coordinator(ct, key);
        }
    }

    fn transactional_id(&self) -> String {
        self.txn
            .as_ref()
            .map(|t| t.transactional_id.clone())
            .unwrap_or_default()
    }

    /// A response to the request in flight (Java's handlers' `handleResponse`).
    pub(crate) fn handle_response(&mut self, id: u64, response: TxnResponse, now: Instant) {
        let Some(h) = self.take_in_flight(id) else {
            return;
        };
        match (&h.kind, response) {
            (
                Kind::FindCoordinator {
                    coordinator_type,
                    key,
                },
                TxnResponse::FindCoordinator {
                    error,
                    message,
                    coordinator,
                },
            ) => {
                let (ct, key) = (*coordinator_type, key.clone());
                self.handle_find_coordinator(h, ct, key, error, message, coordinator, now)
            }
            (
                Kind::InitProducerId { epoch_bump, .. },
                TxnResponse::InitProducerId { error, producer },
            ) => {
                let epoch_bump = *epoch_bump;
                self.handle_init_producer_id(h, epoch_bump, error, producer, now)
            }
            (Kind::AddPartitions { .. }, TxnResponse::AddPartitionsToTxn { errors }) => {
                self.handle_add_partitions(h, errors, now)
            }
            (Kind::AddOffsets { .. }, TxnResponse::AddOffsetsToTxn { error }) => {
                self.handle_add_offsets(h, error, now)
            }
            (Kind::TxnOffsetCommit { .. }, TxnResponse::TxnOffsetCommit { errors }) => {
                self.handle_txn_offset_commit(h, errors, now)
            }
            (Kind::EndTxn { .. }, TxnResponse::EndTxn { error }) => {
                self.handle_end_txn(h, error, now)
            }
            (kind, other) => {
                let e = Error::Protocol(format!(
                    "{} answered with an unexpected response: {other:?}",
                    kind.name()
                ));
                self.fail_fatal(&h.result, e);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_find_coordinator(
        &mut self,
        h: Handler,
        ct: CoordinatorType,
        key: String,
        error: ErrorCode,
        message: Option<String>,
        node: CoordinatorNode,
        now: Instant,
    ) {
        match error {
            ErrorCode::None => {
                tracing::info!(coordinator_type = ?ct, node = node.node_id, host = %node.host, port = node.port, "discovered coordinator");
                if let Some(t) = self.txn.as_deref_mut() {
                    match ct {
                        CoordinatorType::Group => t.group_coordinator = Some(node),
                        CoordinatorType::Transaction => t.txn_coordinator = Some(node),
                    }
                }
                h.result.done();
            }
            ErrorCode::CoordinatorNotAvailable => self.reenqueue(h, now),
            ErrorCode::TransactionalIdAuthorizationFailed => {
                self.fail_fatal(&h.result, Error::kafka(error))
            }
            ErrorCode::GroupAuthorizationFailed => self.abortable_error(
                &h.result,
                Error::kafka_with_message(error, Some(format!("Not authorized to access group: {key}"))),
            ),
            other => self.fail_fatal(
                &h.result,
                Error::kafka_with_message(
                    other,
                    Some(format!(
                        "Could not find a coordinator with type {ct:?} with key {key} due to unexpected error: {}",
                        message.unwrap_or_else(|| other.message().to_owned())
                    )),
                ),
            ),
        }
    }

    fn handle_init_producer_id(
        &mut self,
        h: Handler,
        epoch_bump: bool,
        error: ErrorCode,
        producer: ProducerIdAndEpoch,
        now: Instant,
    ) {
        match error {
            ErrorCode::None => {
                tracing::info!(
                    producer_id = producer.producer_id,
                    epoch = producer.epoch,
                    "ProducerId set"
                );
                self.producer = producer;
                if epoch_bump {
                    // Java's resetSequenceNumbers: every partition starts at 0 again.
                    self.partitions.clear();
                    self.unresolved.clear();
                    self.to_rewrite.clear();
                    self.epoch_bump_required = false;
                }
                if let Some(t) = self.txn.as_deref_mut() {
                    // Ready, with no transaction left over (an abort that skipped EndTxn,
                    // INVALID_PRODUCER_ID_MAPPING, leaves its partitions for the bump).
                    t.complete_transaction(false);
                }
                h.result.done();
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                let id = self.transactional_id();
                self.lookup_coordinator(CoordinatorType::Transaction, id);
                self.reenqueue(h, now);
            }
            ErrorCode::CoordinatorLoadInProgress | ErrorCode::ConcurrentTransactions => {
                self.reenqueue(h, now)
            }
            ErrorCode::TransactionalIdAuthorizationFailed
            | ErrorCode::ClusterAuthorizationFailed => {
                self.fail_fatal(&h.result, Error::kafka(error))
            }
            // An old coordinator may still answer INVALID_PRODUCER_EPOCH: the same as fenced.
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => {
                self.fail_fatal(&h.result, fenced())
            }
            other => self.fail_fatal(
                &h.result,
                unexpected(other, "Unexpected error in InitProducerIdResponse"),
            ),
        }
    }

    fn handle_add_partitions(
        &mut self,
        mut h: Handler,
        errors: Vec<(TopicPartition, ErrorCode)>,
        now: Instant,
    ) {
        let Some(t) = self.txn.as_deref_mut() else {
            return;
        };
        h.retry_backoff = t.retry_backoff;
        let mut partition_error: Option<ErrorCode> = None;
        let mut unauthorized: BTreeSet<String> = BTreeSet::new();
        for (tp, code) in &errors {
            match *code {
                ErrorCode::None => continue,
                ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
                    let id = t.transactional_id.clone();
                    t.lookup_coordinator(CoordinatorType::Transaction, id);
                    t.reenqueue(h, now);
                    return;
                }
                ErrorCode::ConcurrentTransactions => {
                    // Java's maybeOverrideRetryBackoffMs: the previous transaction is still
                    // completing; do not wait long before starting the new one.
                    if t.partitions.is_empty() {
                        h.retry_backoff = h.retry_backoff.min(ADD_PARTITIONS_RETRY_BACKOFF);
                    }
                    t.reenqueue(h, now);
                    return;
                }
                ErrorCode::CoordinatorLoadInProgress | ErrorCode::UnknownTopicOrPartition => {
                    t.reenqueue(h, now);
                    return;
                }
                ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => {
                    self.fail_fatal(&h.result, fenced());
                    return;
                }
                ErrorCode::TransactionalIdAuthorizationFailed | ErrorCode::InvalidTxnState => {
                    self.fail_fatal(&h.result, Error::kafka(*code));
                    return;
                }
                ErrorCode::TopicAuthorizationFailed => {
                    unauthorized.insert(tp.topic.to_string());
                }
                ErrorCode::OperationNotAttempted => {
                    tracing::debug!(%tp, "did not attempt to add partition to transaction because other partitions in the batch had errors");
                    partition_error.get_or_insert(*code);
                }
                ErrorCode::UnknownProducerId | ErrorCode::InvalidProducerIdMapping => {
                    self.abortable_error_if_possible(&h.result, Error::kafka(*code));
                    return;
                }
                other => {
                    tracing::error!(%tp, error = %other, "could not add partition to transaction due to unexpected error");
                    if partition_error.is_none_or(|c| c == ErrorCode::OperationNotAttempted) {
                        partition_error = Some(other);
                    }
                }
            }
        }
        // Removed from the pending set whatever the result: batches of partitions that
        // failed to be added are aborted with the transaction.
        for (tp, _) in &errors {
            t.pending_partitions.remove(tp);
        }
        if !unauthorized.is_empty() {
            let topics: Vec<String> = unauthorized.into_iter().collect();
            self.abortable_error(
                &h.result,
                Error::kafka_with_message(
                    ErrorCode::TopicAuthorizationFailed,
                    Some(format!("Not authorized to access topics: {topics:?}")),
                ),
            );
        } else if let Some(code) = partition_error {
            let detail: Vec<String> = errors
                .iter()
                .map(|(tp, c)| format!("{tp}={}", c.name()))
                .collect();
            self.abortable_error(
                &h.result,
                Error::kafka_with_message(
                    code,
                    Some(format!(
                        "Could not add partitions to transaction due to errors: {{{}}}",
                        detail.join(", ")
                    )),
                ),
            );
        } else {
            tracing::debug!(
                partitions = errors.len(),
                "successfully added partitions to transaction"
            );
            t.partitions.extend(errors.into_iter().map(|(tp, _)| tp));
            t.transaction_started = true;
            h.result.done();
        }
    }

    fn handle_add_offsets(&mut self, h: Handler, error: ErrorCode, now: Instant) {
        match error {
            ErrorCode::None => {
                let Some(t) = self.txn.as_deref_mut() else {
                    return;
                };
                let Kind::AddOffsets {
                    producer,
                    group,
                    offsets,
                } = h.kind
                else {
                    return;
                };
                tracing::debug!(group_id = %group.group_id, "successfully added the consumer group to the transaction");
                t.pending_offsets.extend(offsets);
                // The result completes when TxnOffsetCommit does.
                t.enqueue_with(Kind::TxnOffsetCommit { producer, group }, h.result);
                t.transaction_started = true;
            }
            ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
                let id = self.transactional_id();
                self.lookup_coordinator(CoordinatorType::Transaction, id);
                self.reenqueue(h, now);
            }
            ErrorCode::CoordinatorLoadInProgress | ErrorCode::ConcurrentTransactions => {
                self.reenqueue(h, now)
            }
            ErrorCode::UnknownProducerId | ErrorCode::InvalidProducerIdMapping => {
                self.abortable_error_if_possible(&h.result, Error::kafka(error))
            }
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => {
                self.fail_fatal(&h.result, fenced())
            }
            ErrorCode::TransactionalIdAuthorizationFailed => {
                self.fail_fatal(&h.result, Error::kafka(error))
            }
            ErrorCode::GroupAuthorizationFailed => {
                let group_id = match &h.kind {
                    Kind::AddOffsets { group, .. } => group.group_id.clone(),
                    _ => String::new(),
                };
                self.abortable_error(
                    &h.result,
                    Error::kafka_with_message(
                        error,
                        Some(format!("Not authorized to access group: {group_id}")),
                    ),
                )
            }
            other => self.fail_fatal(
                &h.result,
                unexpected(other, "Unexpected error in AddOffsetsToTxnResponse"),
            ),
        }
    }

    fn handle_txn_offset_commit(
        &mut self,
        h: Handler,
        errors: Vec<(TopicPartition, ErrorCode)>,
        now: Instant,
    ) {
        let group_id = match &h.kind {
            Kind::TxnOffsetCommit { group, .. } => group.group_id.clone(),
            _ => String::new(),
        };
        let mut coordinator_reloaded = false;
        for (tp, code) in errors {
            match code {
                ErrorCode::None => {
                    if let Some(t) = self.txn.as_deref_mut() {
                        t.pending_offsets.remove(&tp);
                    }
                }
                ErrorCode::CoordinatorNotAvailable
                | ErrorCode::NotCoordinator
                | ErrorCode::RequestTimedOut => {
                    if !coordinator_reloaded {
                        coordinator_reloaded = true;
                        self.lookup_coordinator(CoordinatorType::Group, group_id.clone());
                    }
                }
                // Retried with the current coordinator.
                ErrorCode::UnknownTopicOrPartition
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::ConcurrentTransactions
                | ErrorCode::UnstableOffsetCommit => continue,
                ErrorCode::GroupAuthorizationFailed => {
                    self.abortable_error(
                        &h.result,
                        Error::kafka_with_message(
                            code,
                            Some(format!("Not authorized to access group: {group_id}")),
                        ),
                    );
                    break;
                }
                ErrorCode::FencedInstanceId => {
                    self.abortable_error(&h.result, Error::kafka(code));
                    break;
                }
                // Java's CommitFailedException.
                ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                    self.abortable_error(
                        &h.result,
                        Error::kafka_with_message(
                            code,
                            Some(format!(
                                "Transaction offset Commit failed due to consumer group metadata mismatch: {}",
                                code.message()
                            )),
                        ),
                    );
                    break;
                }
                ErrorCode::TransactionalIdAuthorizationFailed
                | ErrorCode::InvalidProducerEpoch
                | ErrorCode::ProducerFenced
                | ErrorCode::UnsupportedForMessageFormat => {
                    self.fail_fatal(&h.result, Error::kafka(code));
                    break;
                }
                other => {
                    self.fail_fatal(
                        &h.result,
                        unexpected(other, "Unexpected error in TxnOffsetCommitResponse"),
                    );
                    break;
                }
            }
        }
        let Some(t) = self.txn.as_deref_mut() else {
            return;
        };
        if h.result.is_completed() {
            t.pending_offsets.clear();
        } else if t.pending_offsets.is_empty() {
            h.result.done();
        } else {
            // Retry the commits which failed with a retriable error.
            t.reenqueue(h, now);
        }
    }

    fn handle_end_txn(&mut self, h: Handler, error: ErrorCode, now: Instant) {
        match error {
            ErrorCode::None => {
                let bump = self.epoch_bump_required;
                if let Some(t) = self.txn.as_deref_mut() {
                    t.complete_transaction(bump);
                }
                self.epoch_bump_required = false;
                h.result.done();
            }
            ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
                let id = self.transactional_id();
                self.lookup_coordinator(CoordinatorType::Transaction, id);
                self.reenqueue(h, now);
            }
            ErrorCode::CoordinatorLoadInProgress | ErrorCode::ConcurrentTransactions => {
                self.reenqueue(h, now)
            }
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => {
                self.fail_fatal(&h.result, fenced())
            }
            ErrorCode::TransactionalIdAuthorizationFailed | ErrorCode::InvalidTxnState => {
                self.fail_fatal(&h.result, Error::kafka(error))
            }
            ErrorCode::UnknownProducerId | ErrorCode::InvalidProducerIdMapping => {
                self.abortable_error_if_possible(&h.result, Error::kafka(error))
            }
            other => self.fail_fatal(
                &h.result,
                unexpected(other, "Unhandled error in EndTxnResponse"),
            ),
        }
    }

    /// Java's `close` on a forced close: every pending operation fails.
    pub(crate) fn close(&mut self) {
        let Some(t) = self.txn.as_deref_mut() else {
            return;
        };
        for h in t.queue.drain(..).chain(t.in_flight.take()) {
            h.result.fail(Error::Closed);
        }
        if let Some((_, r)) = &t.pending_result {
            r.fail(Error::Closed);
        }
    }

    /// Whether the partition was added to the transaction.
    #[cfg(test)]
    pub(crate) fn transaction_contains_partition(&self, tp: &TopicPartition) -> bool {
        self.txn.as_ref().is_some_and(|t| t.partitions.contains(tp))
    }

    /// Whether the partition waits for AddPartitionsToTxn.
    #[cfg(test)]
    pub(crate) fn is_partition_pending_add(&self, tp: &TopicPartition) -> bool {
        self.txn
            .as_ref()
            .is_some_and(|t| t.new_partitions.contains(tp) || t.pending_partitions.contains(tp))
    }

    /// Whether an epoch bump is required (KIP-360).
    #[cfg(test)]
    pub(crate) fn epoch_bump_required(&self) -> bool {
        self.epoch_bump_required
    }
}

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
