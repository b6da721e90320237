//! The transaction coordinator (KIP-98 transactions, KIP-360 epoch bumps, KIP-664
//! DescribeTransactions/ListTransactions): Kafka 4.0's `TransactionCoordinator`,
//! `TransactionStateManager` and `TransactionMarkerChannelManager` for one broker, with
//! transaction version 1 semantics (EndTxn up to v4: the epoch is bumped by InitProducerId
//! and by fencing, not by every transaction).
//!
//! [`metadata`] is the per-transactional-id state machine (pure: `now` in, transitions out);
//! [`records`] the `__transaction_state` key/value formats; [`TransactionCoordinator`] owns
//! every transactional id behind one mutex, persists each transition before it takes effect
//! and writes the transaction markers. Its methods block (they append to logs): handlers
//! call them through `handlers::blocking`.
//!
//! # Durability
//!
//! `__transaction_state` is created on first use with `transaction.state.log.num.partitions`
//! partitions (default 50), `cleanup.policy=compact`, `segment.bytes` from
//! `transaction.state.log.segment.bytes`, as Kafka creates it. A transactional id lives in
//! partition `abs(javaHashCode(id)) % partitions`. Every transition (Kafka's
//! `prepareTransitionTo` / `completeTransitionTo`) is appended as one `TransactionLogKey` /
//! `TransactionLogValue` record before it is applied in memory and before the request is
//! answered; an expired id gets a tombstone. On startup the topic is replayed (the last value
//! of an id wins); transactions found in PrepareCommit/PrepareAbort are completed (markers
//! written, then CompleteCommit/CompleteAbort), Ongoing ones resume and time out.
//!
//! # Markers
//!
//! EndTxn persists PrepareCommit/PrepareAbort, then writes a marker (control batch,
//! `PartitionLog::append_txn_marker`) to every partition of the transaction (a partition
//! that no longer exists is skipped, as Kafka skips unknown partitions), tells the group
//! coordinator about markers written to `__consumer_offsets` (Kafka's
//! `scheduleHandleTxnCompletion`: pending transactional offsets are materialized or
//! dropped), then persists CompleteCommit/CompleteAbort, and answers. A marker that cannot be
//! written (storage error) is retried by the timer; the request is still answered NONE once
//! the Prepare record is written, as Kafka answers before its markers are sent. Tests can
//! hold markers back ([`FaultInjector::hold_txn_markers`]) to stop the broker mid-commit.
//!
//! # Timer
//!
//! [`TransactionCoordinator::tick`] (driven by the server every 100 ms) retries pending
//! markers, aborts Ongoing transactions older than their timeout every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms` (the epoch is bumped so the
//! old producer is fenced, as Kafka's `abortTimedOutTransactions`), and removes ids idle for
//! `transactional.id.expiration.ms` every
//! `transaction.remove.expired.transaction.cleanup.interval.ms`.
//!
//! Lock order: the transaction coordinator's mutex, then a partition's log lock or the
//! group coordinator's mutex (never the other way round).
//!
//! [`FaultInjector::hold_txn_markers`]: crate::faults::FaultInjector::hold_txn_markers

pub mod metadata;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{BatchOptions, RecordBatchBuilder};
use kafka_wire::ErrorCode;
use tracing::{debug, info, warn};

pub use metadata::{TxnMetadata, TxnPartition, TxnState};
pub use records::TRANSACTION_STATE_TOPIC;

use crate::config::BrokerConfig;
use crate::group::records::partition_for;
use crate::group::OFFSETS_TOPIC;
use crate::producer_ids::ProducerIdError;
use crate::state::{AdminError, BrokerState, Topic};
use crate::storage::TxnMarker;
use metadata::{EndStep, InitStep, Transit};
use records::TxnLogValue;

/// The coordinator's settings (Kafka's `TransactionConfig`).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`.
    pub partitions: i32,
    /// `transaction.state.log.segment.bytes`.
    pub segment_bytes: i64,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_interval_ms: i64,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
}

impl TxnConfig {
    /// The settings of `config`.
    pub fn from_broker(config: &BrokerConfig) -> TxnConfig {
        let int = |k: &str| config.get_i64(k);
        TxnConfig {
            partitions: int("transaction.state.log.num.partitions").clamp(1, 10_000) as i32,
            segment_bytes: int("transaction.state.log.segment.bytes").max(1024),
            max_timeout_ms: int("transaction.max.timeout.ms").max(1),
            abort_interval_ms: int("transaction.abort.timed.out.transaction.cleanup.interval.ms")
                .max(1),
            id_expiration_ms: int("transactional.id.expiration.ms").max(1),
            remove_expired_interval_ms: int(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
            )
            .max(1),
        }
    }
}

/// A transaction as ListTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    /// Transactional id.
    pub transactional_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// State.
    pub state: TxnState,
}

#[derive(Debug)]
struct Inner {
    txns: HashMap<String, TxnMetadata>,
    shutting_down: bool,
    next_abort_check: i64,
    next_expiration_check: i64,
}

/// Kafka's mapping of `__transaction_state` append errors
/// (`TransactionStateManager.appendTransactionToLog`).
fn log_append_error(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => ErrorCode::UnknownServerError,
        other => other,
    }
}

/// The log value of a transition, as Kafka's `TransactionLog.valueToBytes` writes it.
fn log_value(t: &Transit) -> Bytes {
    records::encode_value(
        &TxnLogValue {
            producer_id: t.producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: t.producer_epoch,
            timeout_ms: t.timeout_ms,
            state: t.state.id(),
            partitions: if t.state == TxnState::Empty {
                None
            } else {
                Some(t.partitions.clone())
            },
            last_update_timestamp: t.last_update_timestamp,
            start_timestamp: t.start_timestamp,
            client_transaction_version: 0,
        },
        1,
    )
}

/// The transaction coordinator (see the [module documentation](self)).
#[derive(Debug)]
pub struct TransactionCoordinator {
    inner: Mutex<Inner>,
    config: TxnConfig,
}

impl TransactionCoordinator {
    /// A coordinator with the transaction settings of `config`; its periodic checks start
    /// one interval after `now`.
    pub fn new(config: &BrokerConfig, now: i64) -> TransactionCoordinator {
        let config = TxnConfig::from_broker(config);
        TransactionCoordinator {
            inner: Mutex::new(Inner {
                txns: HashMap::new(),
                shutting_down: false,
                next_abort_check: now.saturating_add(config.abort_interval_ms),
                next_expiration_check: now.saturating_add(config.remove_expired_interval_ms),
            }),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.config.partitions)
    }

    /// `__transaction_state`, created (as Kafka creates it) if it does not exist yet.
    ///
    /// # Errors
    /// Creation failures.
    pub fn ensure_topic(&self, state: &BrokerState) -> Result<Arc<Topic>, AdminError> {
        if let Some(t) = state.topic(TRANSACTION_STATE_TOPIC) {
            return Ok(t);
        }
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                self.config.segment_bytes.to_string(),
            ),
            ("compression.type".to_string(), "uncompressed".to_string()),
            (
                "unclean.leader.election.enable".to_string(),
                "false".to_string(),
            ),
        ]);
        match state.create_topic(TRANSACTION_STATE_TOPIC, self.config.partitions, 1, configs) {
            Ok(t) => {
                info!("created {TRANSACTION_STATE_TOPIC}");
                Ok(t)
            }
            Err(AdminError::TopicExists(name)) => state
                .topic(TRANSACTION_STATE_TOPIC)
                .ok_or(AdminError::UnknownTopic(name)),
            Err(e) => Err(e),
        }
    }

    /// Appends the record of `transactional_id` (a value, or a tombstone) to its partition.
    fn persist(
        &self,
        state: &BrokerState,
        transactional_id: &str,
        value: Option<Bytes>,
        now: i64,
    ) -> Result<(), ErrorCode> {
        let topic = self.ensure_topic(state).map_err(|e| {
            warn!(error = %e, "cannot create {TRANSACTION_STATE_TOPIC}");
            ErrorCode::CoordinatorNotAvailable
        })?;
        let index = partition_for(transactional_id, topic.partition_count());
        let partition = topic
            .partition(index)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let key = records::key(transactional_id);
        let mut builder = RecordBatchBuilder::new(BatchOptions::default());
        builder
            .append(now, Some(&key), value.as_deref(), &[])
            .map_err(|_| ErrorCode::UnknownServerError)?;
        let batch = builder
            .finish()
            .map_err(|_| ErrorCode::UnknownServerError)?;
        let mut bytes = BytesMut::from(&batch[..]);
        let result = partition.log().append(&mut bytes, now);
        result.map(|_| ()).map_err(|e| {
            warn!(transactional_id, error = %e, "cannot append to {TRANSACTION_STATE_TOPIC}");
            log_append_error(e.error_code())
        })
    }

    /// Persists `t` for `meta`, then applies it.
    fn transition(
        &self,
        state: &BrokerState,
        meta: &mut TxnMetadata,
        t: Transit,
        now: i64,
    ) -> Result<(), ErrorCode> {
        self.persist(state, &meta.transactional_id, Some(log_value(&t)), now)?;
        debug!(
            transactional_id = %meta.transactional_id,
            from = meta.state.name(),
            to = t.state.name(),
            producer_id = t.producer_id,
            epoch = t.producer_epoch,
            "transaction state transition"
        );
        meta.complete(t);
        Ok(())
    }

    /// The epoch of the coordinator of `transactional_id`: the leader epoch of its
    /// `__transaction_state` partition (what Kafka writes in markers).
    fn coordinator_epoch(&self, state: &BrokerState, transactional_id: &str) -> i32 {
        state
            .topic(TRANSACTION_STATE_TOPIC)
            .and_then(|t| t.partition(partition_for(transactional_id, t.partition_count())))
            .map_or(0, |p| p.log().leader_epoch().max(0))
    }

    /// Writes the markers still missing for a PrepareCommit/PrepareAbort transaction, then
    /// completes it (unless markers are held by a test, or a marker failed: the timer
    /// retries).
    fn send_markers(&self, state: &BrokerState, meta: &mut TxnMetadata, now: i64) {
        if !meta.state.is_prepare() || state.faults().txn_markers_held() {
            return;
        }
        let commit = meta.state == TxnState::PrepareCommit;
        let marker = TxnMarker {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            coordinator_epoch: self.coordinator_epoch(state, &meta.transactional_id),
            commit,
        };
        let mut written = false;
        let pending: Vec<TxnPartition> = meta.partitions.iter().cloned().collect();
        for (topic, index) in pending {
            let found = state
                .topic(&topic)
                .and_then(|t| t.partition(index).map(|p| (p, t.partition_count())));
            let Some((partition, partition_count)) = found else {
                // Deleted topic or partition: Kafka skips unknown partitions.
                info!(transactional_id = %meta.transactional_id, %topic, partition = index,
                    "skipping the transaction marker of a partition that no longer exists");
                meta.partitions.remove(&(topic, index));
                continue;
            };
            let result = partition.log().append_txn_marker(marker, now);
            match result {
                Ok(_) => {
                    written = true;
                    if topic == OFFSETS_TOPIC {
                        state.groups().complete_txn(
                            index,
                            partition_count,
                            marker.producer_id,
                            commit,
                        );
                    }
                    meta.partitions.remove(&(topic, index));
                }
                Err(e) => {
                    let code = e.error_code();
                    if matches!(
                        code,
                        ErrorCode::InvalidProducerEpoch
                            | ErrorCode::ProducerFenced
                            | ErrorCode::TransactionCoordinatorFenced
                            | ErrorCode::UnknownTopicOrPartition
                    ) {
                        // The partition has moved on (a newer epoch wrote there): nothing to
                        // end there any more. Never wedge the transaction on it.
                        warn!(transactional_id = %meta.transactional_id, %topic, partition = index,
                            error = %e, "dropping a transaction marker the partition refuses");
                        meta.partitions.remove(&(topic, index));
                    } else {
                        warn!(transactional_id = %meta.transactional_id, %topic, partition = index,
                            error = %e, "cannot write a transaction marker; will retry");
                    }
                }
            }
        }
        if written {
            state.data_arrived.notify_waiters();
        }
        if !meta.partitions.is_empty() {
            return;
        }
        if let Some(t) = meta.prepare_complete(now) {
            if let Err(code) = self.transition(state, meta, t, now) {
                warn!(transactional_id = %meta.transactional_id, error = code.name(),
                    "cannot persist the end of a transaction; will retry");
            } else {
                info!(transactional_id = %meta.transactional_id, commit,
                    producer_id = meta.producer_id, epoch = meta.producer_epoch,
                    "transaction completed");
            }
        }
    }

    /// Aborts the open transaction of `meta` with a bumped epoch (fencing its producer).
    fn fence_and_abort(
        &self,
        state: &BrokerState,
        meta: &mut TxnMetadata,
        now: i64,
    ) -> Result<(), ErrorCode> {
        let t = meta.prepare_fence_abort(now)?;
        if let Err(code) = self.transition(state, meta, t, now) {
            meta.has_failed_epoch_fence = true;
            return Err(code);
        }
        self.send_markers(state, meta, now);
        Ok(())
    }

    /// InitProducerId with a transactional id (`handleInitProducerId`): the producer id and
    /// epoch to use. `expected` is the KIP-360 `(producer_id, epoch)` (v3+).
    ///
    /// # Errors
    /// INVALID_REQUEST, INVALID_TRANSACTION_TIMEOUT, CONCURRENT_TRANSACTIONS (retry: markers
    /// being written, or an open transaction was just aborted to fence its producer),
    /// PRODUCER_FENCED, NOT_COORDINATOR (shutting down), log write errors.
    pub fn init_producer_id(
        &self,
        state: &BrokerState,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
    ) -> Result<(i64, i16), ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        if timeout_ms <= 0 || i64::from(timeout_ms) > self.config.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        let mut inner = self.lock();
        if inner.shutting_down {
            return Err(ErrorCode::NotCoordinator);
        }
        let mut allocate = || {
            state.allocate_producer_id().map_err(|e| {
                warn!(error = %e, "cannot allocate a producer id");
                match e {
                    ProducerIdError::Exhausted => ErrorCode::UnknownServerError,
                    _ => ErrorCode::CoordinatorLoadInProgress,
                }
            })
        };
        if !inner.txns.contains_key(transactional_id) {
            let producer_id = allocate()?;
            inner.txns.insert(
                transactional_id.to_string(),
                TxnMetadata::new(transactional_id, producer_id, timeout_ms, now),
            );
        }
        let Some(meta) = inner.txns.get_mut(transactional_id) else {
            return Err(ErrorCode::CoordinatorNotAvailable);
        };
        match meta.prepare_init(timeout_ms, expected, now, &mut allocate)? {
            InitStep::Bump(t) => {
                let answer = (t.producer_id, t.producer_epoch);
                self.transition(state, meta, t, now)?;
                info!(
                    transactional_id,
                    producer_id = answer.0,
                    epoch = answer.1,
                    "initialized transactional id"
                );
                Ok(answer)
            }
            InitStep::FenceAndAbort => {
                info!(
                    transactional_id,
                    "fencing the previous producer: aborting its transaction"
                );
                self.fence_and_abort(state, meta, now)?;
                Err(ErrorCode::ConcurrentTransactions)
            }
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn (`handleAddPartitionsToTransaction`): adds
    /// `partitions` (which exist) to the transaction.
    ///
    /// # Errors
    /// INVALID_REQUEST, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
    /// CONCURRENT_TRANSACTIONS, NOT_COORDINATOR, log write errors.
    pub fn add_partitions(
        &self,
        state: &BrokerState,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: BTreeSet<TxnPartition>,
        now: i64,
    ) -> Result<(), ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let mut inner = self.lock();
        if inner.shutting_down {
            return Err(ErrorCode::NotCoordinator);
        }
        let Some(meta) = inner.txns.get_mut(transactional_id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        match meta.prepare_add_partitions(producer_id, producer_epoch, &partitions, now)? {
            None => Ok(()),
            Some(t) => self.transition(state, meta, t, now),
        }
    }

    /// EndTxn (`handleEndTransaction`): commits or aborts the open transaction, writing its
    /// markers before answering (unless held by a test).
    ///
    /// # Errors
    /// INVALID_REQUEST, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, INVALID_TXN_STATE,
    /// CONCURRENT_TRANSACTIONS, NOT_COORDINATOR, log write errors.
    pub fn end_txn(
        &self,
        state: &BrokerState,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now: i64,
    ) -> Result<(), ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let mut inner = self.lock();
        if inner.shutting_down {
            return Err(ErrorCode::NotCoordinator);
        }
        let Some(meta) = inner.txns.get_mut(transactional_id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        match meta.prepare_end(producer_id, producer_epoch, commit, now)? {
            EndStep::AlreadyDone => Ok(()),
            EndStep::Prepare(t) => {
                self.transition(state, meta, t, now)?;
                self.send_markers(state, meta, now);
                Ok(())
            }
        }
    }

    /// DescribeTransactions of one id (`handleDescribeTransactions`).
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE (shutting down), INVALID_REQUEST (empty id),
    /// TRANSACTIONAL_ID_NOT_FOUND.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnMetadata, ErrorCode> {
        let inner = self.lock();
        if inner.shutting_down {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        match inner.txns.get(transactional_id) {
            Some(m) if m.state != TxnState::Dead => Ok(m.clone()),
            _ => Err(ErrorCode::TransactionalIdNotFound),
        }
    }

    /// ListTransactions (`listTransactionStates`): the unknown state filters and the
    /// transactions matching every filter (empty filters match everything; `duration_ms`
    /// >= 0 keeps transactions that started more than that long ago, KIP-994), sorted by id.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE while shutting down.
    pub fn list(
        &self,
        state_filters: &[String],
        producer_ids: &[i64],
        duration_ms: i64,
        now: i64,
    ) -> Result<(Vec<String>, Vec<TxnListing>), ErrorCode> {
        let inner = self.lock();
        if inner.shutting_down {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let mut unknown = Vec::new();
        let mut states = BTreeSet::new();
        for name in state_filters {
            match TxnState::from_name(name) {
                Some(s) => {
                    states.insert(s);
                }
                None => unknown.push(name.clone()),
            }
        }
        let mut out: Vec<TxnListing> = inner
            .txns
            .values()
            .filter(|m| {
                m.state != TxnState::Dead
                    && (producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                    && (states.is_empty() || states.contains(&m.state))
                    && !(duration_ms >= 0 && now.saturating_sub(m.start_timestamp) <= duration_ms)
            })
            .map(|m| TxnListing {
                transactional_id: m.transactional_id.clone(),
                producer_id: m.producer_id,
                state: m.state,
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok((unknown, out))
    }

    /// Whether the timer has work at `now`: markers to write (not held), or a periodic check
    /// due. Busy counts as due, so that the async caller never blocks on the mutex.
    pub fn has_due_work(&self, state: &BrokerState, now: i64) -> bool {
        match self.inner.try_lock() {
            Ok(inner) => {
                !inner.shutting_down
                    && (now >= inner.next_abort_check
                        || now >= inner.next_expiration_check
                        || (!state.faults().txn_markers_held()
                            && inner.txns.values().any(|m| m.state.is_prepare())))
            }
            Err(_) => true,
        }
    }

    /// The timer: retries pending markers, aborts timed-out transactions and removes expired
    /// transactional ids when their intervals are due.
    pub fn tick(&self, state: &BrokerState, now: i64) {
        let mut inner = self.lock();
        if inner.shutting_down {
            return;
        }
        for meta in inner.txns.values_mut() {
            if meta.state.is_prepare() {
                self.send_markers(state, meta, now);
            }
        }
        if now >= inner.next_abort_check {
            inner.next_abort_check = now.saturating_add(self.config.abort_interval_ms);
            for meta in inner.txns.values_mut() {
                if meta.timed_out(now) {
                    info!(transactional_id = %meta.transactional_id, producer_id = meta.producer_id,
                        epoch = meta.producer_epoch, timeout_ms = meta.timeout_ms,
                        "aborting a transaction that timed out");
                    if let Err(code) = self.fence_and_abort(state, meta, now) {
                        warn!(transactional_id = %meta.transactional_id, error = code.name(),
                            "cannot abort a timed-out transaction; will retry");
                    }
                }
            }
        }
        if now >= inner.next_expiration_check {
            inner.next_expiration_check =
                now.saturating_add(self.config.remove_expired_interval_ms);
            let expired: Vec<String> = inner
                .txns
                .values()
                .filter(|m| m.expired(now, self.config.id_expiration_ms))
                .map(|m| m.transactional_id.clone())
                .collect();
            for id in expired {
                match self.persist(state, &id, None, now) {
                    Ok(()) => {
                        info!(transactional_id = %id, "removed an expired transactional id");
                        inner.txns.remove(&id);
                    }
                    Err(code) => warn!(transactional_id = %id, error = code.name(),
                        "cannot write the tombstone of an expired transactional id"),
                }
            }
        }
    }

    /// Stops serving: later requests get NOT_COORDINATOR (COORDINATOR_NOT_AVAILABLE for
    /// Describe/ListTransactions, as Kafka's inactive coordinator) and the timer stops.
    pub fn shutdown(&self) {
        self.lock().shutting_down = true;
    }

    /// Replays `__transaction_state` (if it exists): the last value of each id wins, a
    /// tombstone removes it; then completes the transactions found mid-commit or mid-abort.
    /// Undecodable records are skipped with a warning.
    pub fn load(&self, state: &BrokerState, now: i64) {
        let Some(topic) = state.topic(TRANSACTION_STATE_TOPIC) else {
            return;
        };
        let mut loaded: HashMap<String, TxnMetadata> = HashMap::new();
        let mut count = 0usize;
        for partition in topic.all_partitions() {
            partition.replay_records(|batch, record| {
                if !batch.is_control() {
                    count += 1;
                    apply_record(&mut loaded, record.key, record.value);
                }
            });
        }
        let mut inner = self.lock();
        for (id, meta) in loaded {
            inner.txns.entry(id).or_insert(meta);
        }
        if count > 0 {
            info!(
                records = count,
                transactional_ids = inner.txns.len(),
                "loaded transactions from {TRANSACTION_STATE_TOPIC}"
            );
        }
        for meta in inner.txns.values_mut() {
            if meta.state.is_prepare() {
                info!(transactional_id = %meta.transactional_id, state = meta.state.name(),
                    "completing a transaction found mid-commit or mid-abort");
                self.send_markers(state, meta, now);
            }
        }
    }
}

/// Applies one `__transaction_state` record to the replay state.
fn apply_record(
    loaded: &mut HashMap<String, TxnMetadata>,
    key: Option<Bytes>,
    value: Option<Bytes>,
) {
    let Some(key) = key else { return };
    let id = match records::decode_key(key) {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(e) => {
            warn!(error = %e, "skipping an undecodable {TRANSACTION_STATE_TOPIC} key");
            return;
        }
    };
    let Some(value) = value else {
        loaded.remove(&id);
        return;
    };
    let v = match records::decode_value(value) {
        Ok(v) => v,
        Err(e) => {
            warn!(transactional_id = %id, error = %e, "skipping an undecodable transaction state");
            return;
        }
    };
    let Some(state) = TxnState::from_id(v.state) else {
        warn!(transactional_id = %id, state = v.state, "skipping an unknown transaction state");
        return;
    };
    if matches!(state, TxnState::Dead | TxnState::PrepareEpochFence) {
        loaded.remove(&id);
        return;
    }
    let meta = TxnMetadata::restored(
        &id,
        v.producer_id,
        v.previous_producer_id,
        v.producer_epoch,
        v.timeout_ms,
        state,
        v.partitions.unwrap_or_default(),
        v.start_timestamp,
        v.last_update_timestamp,
    );
    loaded.insert(id, meta);
}
