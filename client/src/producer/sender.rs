//! The `Sender`: the producer's background task. It drains ready batches from the
//! `RecordAccumulator` into one Produce request per leader, keeps at most
//! `max.in.flight.requests.per.connection` requests in flight per broker, completes, retries,
//! splits or fails batches from the responses, expires batches after `delivery.timeout.ms`,
//! refreshes metadata and obtains the producer id (KIP-98). Java's `Sender`.
//!
//! With a `transactional.id` it also drives the transaction manager (KIP-98, KIP-447): it
//! asks it for the next transactional request (FindCoordinator, InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn; one in flight), sends it
//! to the coordinator over the same `ConnectionPool` and feeds the outcome back. Produce
//! requests for partitions already in the transaction keep going out meanwhile. While the
//! transaction is abortable or aborting, batches not drained yet are failed (Java's
//! `abortUndrainedBatches`); after a fatal error nothing more is sent. A graceful close
//! aborts a transaction still open, as Java's `Sender.run`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use kafka_wire::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_wire::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kafka_wire::messages::end_txn_request::EndTxnRequest;
use kafka_wire::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_wire::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_wire::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_wire::messages::produce_response::ProduceResponse;
use kafka_wire::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_wire::messages::MetadataResponse;
use kafka_wire::{ApiKey, ErrorCode, VersionRange};

use super::batch::{Outcome, ProducerBatch, ProducerIdAndEpoch, TopicPartition};
use super::txn_manager::{CoordinatorType, TxnNext, TxnRequest, TxnRequestBody, TxnResponse};
use super::{lock, ProducerInner};
use crate::config::Acks;
use crate::consumer::coordinator::{find_coordinator_answer, find_coordinator_request};
use crate::error::Error;
use crate::metadata::Cluster;
use crate::network::connection::BrokerConnection;
use crate::network::pool::ExponentialBackoff;

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The last Produce version before transactions v2 (KIP-890): a transactional producer
/// adds its partitions with AddPartitionsToTxn, as Java does without `transaction.version` 2.
const PRODUCE_MAX_VERSION_TXN_V1: i16 = 11;
/// AddPartitionsToTxn v4+ is for brokers (batched verification); clients use v3 and below.
const ADD_PARTITIONS_TO_TXN_MAX_CLIENT_VERSION: i16 = 3;
/// EndTxn v5 and TxnOffsetCommit v5 are transactions v2 (KIP-890).
const END_TXN_MAX_VERSION_TXN_V1: i16 = 4;
const TXN_OFFSET_COMMIT_MAX_VERSION_TXN_V1: i16 = 4;

/// How a transactional request ended.
#[derive(Debug)]
enum TxnOutcome {
    /// Answered.
    Response(TxnResponse),
    /// Not sent, or its connection broke or timed out: find the coordinator again and retry.
    Disconnected(Error),
    /// Cannot be sent at all (no common version).
    Fatal(Error),
}

/// A finished Produce request: the node, its batches and the outcome.
struct InFlightDone {
    node: i32,
    batches: Vec<ProducerBatch>,
    result: Result<Option<ProduceResponse>, Error>,
}

/// Errors after which the partition's metadata is stale (Java's `InvalidMetadataException`
/// subclasses).
fn is_invalid_metadata(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::KafkaStorageError
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::UnknownTopicId
    )
}

pub(crate) struct Sender {
    inner: Arc<ProducerInner>,
    in_flight: FuturesUnordered<BoxFut<InFlightDone>>,
    in_flight_per_node: HashMap<i32, usize>,
    /// The connection each node's in-flight requests were written to.
    in_flight_conn: HashMap<i32, BrokerConnection>,
    connecting: FuturesUnordered<BoxFut<(i32, Result<BrokerConnection, Error>)>>,
    connecting_nodes: HashSet<i32>,
    metadata_fetch: Option<BoxFut<Result<MetadataResponse, Error>>>,
    last_metadata_attempt: Option<Instant>,
    last_metadata_success: Option<Instant>,
    metadata_failures: u32,
    init_fetch: Option<BoxFut<Result<ProducerIdAndEpoch, Error>>>,
    init_backoff_until: Option<Instant>,
    init_failures: u32,
    /// The transactional request in flight (at most one), with its id.
    txn_fetch: Option<BoxFut<(u64, TxnOutcome)>>,
    last_idle_check: Instant,
    /// `retry.backoff.ms` growing to `retry.backoff.max.ms` (metadata and InitProducerId).
    retry: ExponentialBackoff,
}

impl Sender {
    pub(crate) fn new(inner: Arc<ProducerInner>) -> Self {
        Sender {
            in_flight: FuturesUnordered::new(),
            in_flight_per_node: HashMap::new(),
            in_flight_conn: HashMap::new(),
            connecting: FuturesUnordered::new(),
            connecting_nodes: HashSet::new(),
            metadata_fetch: None,
            last_metadata_attempt: None,
            last_metadata_success: None,
            metadata_failures: 0,
            init_fetch: None,
            init_backoff_until: None,
            init_failures: 0,
            txn_fetch: None,
            last_idle_check: Instant::now(),
            retry: ExponentialBackoff::new(
                inner.config.retry_backoff,
                2.0,
                inner.config.retry_backoff_max,
                0.2,
            ),
            inner,
        }
    }

    /// Runs until the producer is closed and everything pending is delivered or failed.
    pub(crate) async fn run(mut self) {
        tracing::debug!(client_id = %self.inner.config.client_id, "producer sender started");
        loop {
            let now = Instant::now();
            if self.inner.force_close.load(Ordering::Acquire) {
                self.abort_all(Error::Closed);
                if let Some(txn) = &self.inner.txn {
                    lock(txn).close();
                }
                break;
            }
            self.sync_transactional_fatal();
            let closing = self.inner.closing.load(Ordering::Acquire);
            if closing
                && self.in_flight.is_empty()
                && !lock(&self.inner.acc).has_incomplete()
                && !self.close_waits_for_transaction()
            {
                break;
            }
            let fatal = lock(&self.inner.fatal).clone();
            if let Some(e) = fatal {
                self.abort_all(e);
                if closing && self.in_flight.is_empty() {
                    break;
                }
            }

            let timeout = self.run_once(now);

            let sleep = tokio::time::sleep(timeout);
            tokio::pin!(sleep);
            let has_in_flight = !self.in_flight.is_empty();
            let has_connecting = !self.connecting.is_empty();
            let has_txn_fetch = self.txn_fetch.is_some();
            tokio::select! {
                biased;
                Some(done) = self.in_flight.next(), if has_in_flight => {
                    self.handle_produce_done(done);
                    // Handle whatever else already completed before draining again.
                    while let Some(Some(done)) = futures::FutureExt::now_or_never(self.in_flight.next()) {
                        self.handle_produce_done(done);
                    }
                }
                Some((node, res)) = self.connecting.next(), if has_connecting => {
                    self.connecting_nodes.remove(&node);
                    if let Err(e) = res {
                        tracing::debug!(node, error = %e, "connecting to broker failed");
                        self.inner.metadata.request_update();
                    }
                }
                res = poll_opt(&mut self.metadata_fetch) => {
                    self.metadata_fetch = None;
                    self.handle_metadata(res);
                }
                res = poll_opt(&mut self.init_fetch) => {
                    self.init_fetch = None;
                    self.handle_init(res);
                }
                (id, outcome) = poll_opt(&mut self.txn_fetch), if has_txn_fetch => {
                    self.txn_fetch = None;
                    self.handle_txn_outcome(id, outcome);
                }
                _ = self.inner.wakeup.notified() => {}
                _ = &mut sleep => {}
            }
        }
        // Whatever transactional call is still pending can no longer complete.
        if let Some(txn) = &self.inner.txn {
            lock(txn).close();
        }
        self.inner.pool.close();
        self.inner.connections.close_all();
        self.inner.stopped.send_replace(true);
        tracing::debug!(client_id = %self.inner.config.client_id, "producer sender stopped");
    }

    /// One pass: idempotence, metadata, ready check, expiry, drain and send. Returns how
    /// long to sleep at most.
    fn run_once(&mut self, now: Instant) -> Duration {
        let inner = self.inner.clone();
        let cfg = &inner.config;
        let mut timeout = cfg.metadata_max_age.min(Duration::from_secs(1));

        // Transactions (KIP-98): the next transactional request; batches of an aborted
        // transaction; a completing transaction flushes everything.
        let completing = self.drive_transaction(now, &mut timeout);

        // Producer id (KIP-98) and epoch bumps (KIP-360).
        if let Some(txn) = &self.inner.txn {
            let mut t = lock(txn);
            t.bump_epoch_if_needed();
            if t.needs_init() && self.init_fetch.is_none() {
                match self.init_backoff_until {
                    Some(until) if now < until => {
                        timeout = timeout.min(until - now);
                    }
                    _ => {
                        t.init_started();
                        self.init_fetch = Some(Box::pin(init_producer_id(self.inner.clone())));
                    }
                }
            }
        }

        // Idle connections (`connections.max.idle.ms`), checked about once a second.
        if now.saturating_duration_since(self.last_idle_check) >= Duration::from_secs(1) {
            self.last_idle_check = now;
            self.inner.connections.close_idle(now);
        }

        // Metadata.
        self.maybe_update_metadata(now, &mut timeout);
        let cluster = self.inner.metadata.cluster();

        // Ready check.
        let exhausted = self.inner.pool.queued() > 0 || completing;
        let ready = lock(&self.inner.acc).ready(&cluster, now, exhausted);
        if !ready.unknown_leader_topics.is_empty() {
            self.inner.metadata.request_update();
        }
        if let Some(t) = ready.next_ready_check {
            timeout = timeout.min(t);
        }
        let max_in_flight = cfg.max_in_flight_requests_per_connection;
        let mut sendable = Vec::new();
        let mut conns = HashMap::new();
        for node in ready.ready_nodes {
            match self.inner.connections.connected(node) {
                Some(conn) => {
                    let n = self.in_flight_per_node.get(&node).copied().unwrap_or(0);
                    // Requests still outstanding on an older connection to this node must
                    // be settled first: their batches may come back for a retry, and nothing
                    // newer may overtake them (a new batch appended after a retried one was
                    // already written would make the retry an out-of-order duplicate).
                    let same_conn = self
                        .in_flight_conn
                        .get(&node)
                        .is_none_or(|c| c.ptr_eq(&conn));
                    if n < max_in_flight && (n == 0 || same_conn) {
                        sendable.push(node);
                        conns.insert(node, conn);
                    }
                }
                None => {
                    if self.connecting_nodes.contains(&node) {
                        continue;
                    }
                    if self.inner.connections.is_backing_off(node, now) {
                        timeout = timeout.min(cfg.reconnect_backoff.max(Duration::from_millis(5)));
                        continue;
                    }
                    let Some(broker) = cluster.broker(node).cloned() else {
                        self.inner.metadata.request_update();
                        continue;
                    };
                    let pool = self.inner.connections.clone();
                    self.connecting_nodes.insert(node);
                    self.connecting.push(Box::pin(async move {
                        let r = pool.get(node, &broker.address()).await;
                        (node, r)
                    }));
                }
            }
        }

        // Expire queued batches (delivery.timeout.ms).
        let expired = lock(&self.inner.acc).expired_batches(now);
        for batch in expired {
            let msg = format!(
                "Expiring {} record(s) for {}: {} ms has passed since batch creation",
                batch.record_count,
                batch.tp,
                now.saturating_duration_since(batch.created).as_millis()
            );
            let maybe_written = batch.sent;
            self.fail_batch(batch, Error::Timeout(msg), None, maybe_written, false);
        }
        if let Some(t) = lock(&self.inner.acc).next_expiry(now) {
            timeout = timeout.min(t.max(Duration::from_millis(1)));
        }

        // Drain and send.
        if !sendable.is_empty() {
            let drained = {
                let mut acc = lock(&self.inner.acc);
                match &self.inner.txn {
                    Some(txn) => {
                        let mut t = lock(txn);
                        acc.drain(&cluster, &sendable, cfg.max_request_size, now, Some(&mut t))
                    }
                    None => acc.drain(&cluster, &sendable, cfg.max_request_size, now, None),
                }
            };
            for (node, batches) in drained {
                if let Some(conn) = conns.remove(&node) {
                    self.send_produce(node, conn, batches);
                }
            }
        }
        timeout.max(Duration::from_millis(0))
    }

    fn maybe_update_metadata(&mut self, now: Instant, timeout: &mut Duration) {
        let inner = self.inner.clone();
        let cfg = &inner.config;
        if self.metadata_fetch.is_some() {
            return;
        }
        let stale = self
            .last_metadata_success
            .is_none_or(|t| now.saturating_duration_since(t) >= cfg.metadata_max_age);
        let wanted = self.inner.metadata.update_requested() || stale;
        let interest = self.inner.metadata.has_interest()
            || !lock(&self.inner.acc)
                .topics_used_within(now, cfg.metadata_max_idle)
                .is_empty();
        if !wanted || !interest && self.last_metadata_success.is_some() {
            if !stale {
                if let Some(t) = self.last_metadata_success {
                    *timeout = (*timeout).min(cfg.metadata_max_age.saturating_sub(now - t));
                }
            }
            if !wanted {
                return;
            }
        }
        if let Some(last) = self.last_metadata_attempt {
            let min_gap = if self.metadata_failures > 0 {
                self.retry.backoff(self.metadata_failures - 1)
            } else {
                // Java's metadata refresh backoff between successful updates.
                cfg.retry_backoff
            };
            if now < last + min_gap {
                *timeout = (*timeout).min(last + min_gap - now);
                return;
            }
        }
        self.last_metadata_attempt = Some(now);
        let mut topics = self
            .inner
            .metadata
            .topics_of_interest(now, cfg.metadata_max_idle);
        for t in lock(&self.inner.acc).topics_used_within(now, cfg.metadata_max_idle) {
            if !topics.contains(&t) {
                topics.push(t);
            }
        }
        self.inner.metadata.clear_update_request();
        self.metadata_fetch = Some(Box::pin(fetch_metadata(
            self.inner.clone(),
            topics,
            cfg.allow_auto_create_topics,
        )));
    }

    fn handle_metadata(&mut self, res: Result<MetadataResponse, Error>) {
        match res {
            Ok(resp) => {
                self.metadata_failures = 0;
                self.last_metadata_success = Some(Instant::now());
                let previous = self.inner.metadata.cluster();
                let cluster = Cluster::from_response(&previous, &resp);
                // Topics whose leader is not yet known (auto-creation in progress) are
                // asked for again soon.
                let leaderless = cluster
                    .topics
                    .values()
                    .any(|t| t.available_partitions.len() < t.partitions.len())
                    || cluster.topic_errors.values().any(|c| c.is_retriable());
                self.inner.metadata.update(cluster);
                if leaderless {
                    self.inner.metadata.request_update();
                }
            }
            Err(e) => {
                self.metadata_failures += 1;
                tracing::debug!(error = %e, "metadata request failed");
                self.inner.metadata.request_update();
            }
        }
    }

    fn handle_init(&mut self, res: Result<ProducerIdAndEpoch, Error>) {
        let Some(txn) = &self.inner.txn else { return };
        match res {
            Ok(p) => {
                self.init_failures = 0;
                self.init_backoff_until = None;
                tracing::debug!(
                    producer_id = p.producer_id,
                    epoch = p.epoch,
                    "producer id obtained"
                );
                lock(txn).set_producer_id_and_epoch(p);
            }
            Err(e) => {
                lock(txn).init_failed();
                if e.is_retriable()
                    || matches!(e, Error::Kafka { code, .. } if code == ErrorCode::CoordinatorLoadInProgress)
                {
                    self.init_failures += 1;
                    let backoff = self.retry.backoff(self.init_failures - 1);
                    tracing::debug!(error = %e, "InitProducerId failed; retrying");
                    self.init_backoff_until = Some(Instant::now() + backoff);
                } else {
                    tracing::error!(error = %e, "InitProducerId failed fatally");
                    self.inner.set_fatal(e);
                }
            }
        }
    }

    fn send_produce(&mut self, node: i32, conn: BrokerConnection, mut batches: Vec<ProducerBatch>) {
        let inner = self.inner.clone();
        let cfg = &inner.config;
        let max = if cfg.transactional_id.is_some() {
            PRODUCE_MAX_VERSION_TXN_V1
        } else {
            i16::MAX
        };
        let version = match capped_version(&conn, ApiKey::Produce, max) {
            Some(v) if v >= 3 => v,
            _ => {
                for b in batches {
                    let e = Error::UnsupportedVersion(
                        "the broker does not support Produce v3+ (record batch v2)".into(),
                    );
                    self.fail_batch(b, e, None, false, false);
                }
                return;
            }
        };
        let acks = cfg.acks.as_i16();
        let mut topic_data: Vec<TopicProduceData> = Vec::new();
        for b in &mut batches {
            b.sent = true;
            let Some(records) = b.bytes().cloned() else {
                continue;
            };
            let pd = PartitionProduceData {
                index: b.tp.partition,
                records: Some(records),
                ..Default::default()
            };
            match topic_data.iter_mut().find(|t| *t.name == *b.tp.topic) {
                Some(t) => t.partition_data.push(pd),
                None => topic_data.push(TopicProduceData {
                    name: b.tp.topic.to_string(),
                    partition_data: vec![pd],
                    ..Default::default()
                }),
            }
        }
        let request = ProduceRequest {
            transactional_id: cfg.transactional_id.clone(),
            acks,
            timeout_ms: i32::try_from(cfg.request_timeout.as_millis()).unwrap_or(i32::MAX),
            topic_data,
            ..Default::default()
        };
        *self.in_flight_per_node.entry(node).or_insert(0) += 1;
        self.in_flight_conn.insert(node, conn.clone());
        if cfg.acks == Acks::None {
            let write = conn.send_no_response(request, version);
            self.in_flight.push(Box::pin(async move {
                let result = write.await.map(|_| None);
                InFlightDone {
                    node,
                    batches,
                    result,
                }
            }));
        } else {
            let fut = conn.send_with_version(request, version);
            self.in_flight.push(Box::pin(async move {
                let result = fut.await.map(Some);
                InFlightDone {
                    node,
                    batches,
                    result,
                }
            }));
        }
    }

    fn handle_produce_done(&mut self, done: InFlightDone) {
        if let Some(n) = self.in_flight_per_node.get_mut(&done.node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight_conn.remove(&done.node);
            }
        }
        let now = Instant::now();
        match done.result {
            Ok(None) => {
                // acks=0: complete once written.
                for b in done.batches {
                    self.complete_batch(b, -1, -1);
                }
            }
            Ok(Some(resp)) => {
                let mut by_tp: HashMap<(&str, i32), usize> = HashMap::new();
                for (ti, t) in resp.responses.iter().enumerate() {
                    for (pi, p) in t.partition_responses.iter().enumerate() {
                        by_tp.insert((t.name.as_str(), p.index), ti << 32 | pi);
                    }
                }
                let mut updates = Vec::new();
                for b in done.batches {
                    let found = by_tp
                        .get(&(&*b.tp.topic, b.tp.partition))
                        .map(|&k| &resp.responses[k >> 32].partition_responses[k & 0xffff_ffff]);
                    match found {
                        Some(p) => {
                            let code = ErrorCode::from(p.error_code);
                            let message = p.error_message.clone().or_else(|| {
                                p.record_errors
                                    .first()
                                    .and_then(|r| r.batch_index_error_message.clone())
                            });
                            updates.push((
                                b,
                                code,
                                message,
                                p.base_offset,
                                p.log_append_time_ms,
                                p.log_start_offset,
                            ));
                        }
                        None => updates.push((
                            b,
                            ErrorCode::UnknownServerError,
                            Some("partition missing from the Produce response".into()),
                            -1,
                            -1,
                            -1,
                        )),
                    }
                }
                for (b, code, message, base_offset, log_append_time, log_start_offset) in updates {
                    self.handle_partition_response(
                        b,
                        code,
                        message,
                        base_offset,
                        log_append_time,
                        log_start_offset,
                        now,
                    );
                }
            }
            Err(e) => {
                // The request failed as a whole (disconnect, timeout): every batch may or
                // may not have been written.
                tracing::debug!(node = done.node, error = %e, "produce request failed");
                for b in done.batches {
                    if self.can_retry_transport(&b, now) {
                        if let Some(txn) = &self.inner.txn {
                            lock(txn).mark_retrying(&b.tp, b.id);
                        }
                        lock(&self.inner.acc).reenqueue(b, now);
                    } else {
                        self.fail_batch(b, e.clone(), None, true, false);
                    }
                }
            }
        }
    }

    fn can_retry_transport(&self, b: &ProducerBatch, now: Instant) -> bool {
        let cfg = &self.inner.config;
        now.saturating_duration_since(b.created) < cfg.delivery_timeout
            && b.attempts < cfg.retries
            && !self.inner.closing_forced()
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_partition_response(
        &mut self,
        batch: ProducerBatch,
        code: ErrorCode,
        message: Option<String>,
        base_offset: i64,
        log_append_time: i64,
        log_start_offset: i64,
        now: Instant,
    ) {
        let inner = self.inner.clone();
        let cfg = &inner.config;
        if code.is_ok() || code == ErrorCode::DuplicateSequenceNumber {
            self.complete_batch(batch, base_offset, log_append_time);
            return;
        }
        if code == ErrorCode::MessageTooLarge && batch.record_count > 1 {
            tracing::debug!(tp = %batch.tp, records = batch.record_count, "splitting a batch the broker found too large");
            let mut big = batch;
            let mut acc = lock(&self.inner.acc);
            let res = match &self.inner.txn {
                Some(txn) => {
                    let mut t = lock(txn);
                    acc.split_and_reenqueue(&mut big, Some(&mut t))
                }
                None => acc.split_and_reenqueue(&mut big, None),
            };
            drop(acc);
            match res {
                Ok(_) => self.release(big),
                Err(e) => self.fail_batch(big, e, Some(code), false, true),
            }
            self.inner.wakeup.notify_one();
            return;
        }
        if code == ErrorCode::OutOfOrderSequenceNumber {
            if let Some(txn) = &self.inner.txn {
                if lock(txn).is_already_acked(&batch.tp, batch.id, batch.producer) {
                    tracing::debug!(tp = %batch.tp, seq = batch.base_sequence, "out-of-order batch is below the acknowledged sequence: already written");
                    self.complete_batch(batch, -1, -1);
                    return;
                }
            }
        }
        if is_invalid_metadata(code) {
            self.inner.metadata.request_update();
        }
        let retriable_budget = now.saturating_duration_since(batch.created) < cfg.delivery_timeout
            && batch.attempts < cfg.retries
            && !self.inner.closing_forced();
        let can_retry = retriable_budget
            && match &self.inner.txn {
                Some(txn) => lock(txn).can_retry(
                    &batch.tp,
                    batch.id,
                    batch.base_sequence,
                    code,
                    log_start_offset,
                ),
                None => code.is_retriable(),
            };
        if can_retry {
            tracing::debug!(tp = %batch.tp, error = %code, attempt = batch.attempts + 1, "retrying batch");
            if let Some(txn) = &self.inner.txn {
                lock(txn).mark_retrying(&batch.tp, batch.id);
            }
            lock(&self.inner.acc).reenqueue(batch, now);
            return;
        }
        let adjust = batch.attempts < cfg.retries;
        let err = Error::kafka_with_message(code, message);
        self.fail_batch(batch, err, Some(code), false, adjust);
    }

    fn complete_batch(&mut self, mut batch: ProducerBatch, base_offset: i64, log_append_time: i64) {
        if let Some(txn) = &self.inner.txn {
            lock(txn).handle_completed_batch(&batch.tp, batch.id, batch.producer, base_offset);
        }
        lock(&self.inner.acc).deallocate(batch.id);
        batch.complete(Outcome::Done {
            base_offset,
            log_append_time,
        });
        self.release(batch);
    }

    fn fail_batch(
        &mut self,
        mut batch: ProducerBatch,
        error: Error,
        code: Option<ErrorCode>,
        maybe_written: bool,
        adjust_sequences: bool,
    ) {
        tracing::debug!(tp = %batch.tp, error = %error, "batch failed");
        if let Some(txn) = &self.inner.txn {
            lock(txn).handle_failed_batch(
                &batch.tp,
                batch.id,
                &error,
                code,
                maybe_written,
                adjust_sequences,
            );
        }
        lock(&self.inner.acc).deallocate(batch.id);
        batch.complete(Outcome::Failed(error));
        self.release(batch);
    }

    fn release(&self, mut batch: ProducerBatch) {
        let size = batch.pool_size;
        if size == 0 {
            return;
        }
        match batch.take_buffer() {
            Some(buf) => self.inner.pool.deallocate(buf, size),
            None => self.inner.pool.release(size),
        }
    }

    /// Copies a transactional fatal error to the producer's (so `send` fails with it and
    /// pending batches are failed).
    fn sync_transactional_fatal(&self) {
        if self.inner.config.transactional_id.is_none()
            || self.inner.has_fatal.load(Ordering::Acquire)
        {
            return;
        }
        if let Some(txn) = &self.inner.txn {
            let fatal = lock(txn).fatal_error();
            if let Some(e) = fatal {
                self.inner.set_fatal(e);
            }
        }
    }

    /// Java's `Sender.run` after `initiateClose`: once every batch completed, a transaction
    /// still open is aborted (never committed) unless a commit or abort is in progress;
    /// returns whether the sender must keep running for it.
    fn close_waits_for_transaction(&mut self) -> bool {
        let inner = self.inner.clone();
        let Some(txn) = &inner.txn else {
            return false;
        };
        let mut t = lock(txn);
        if !t.is_transactional() || t.has_fatal_error() || !t.has_ongoing_transaction() {
            return false;
        }
        if self.txn_fetch.is_some() {
            return true;
        }
        if !t.is_completing() {
            tracing::info!("aborting incomplete transaction due to shutdown");
            if let Err(e) = t.begin_abort() {
                tracing::error!(error = %e, "aborting the transaction while closing failed");
                return false;
            }
        }
        true
    }

    /// One step of the transaction manager: fails the undrained batches of an abortable or
    /// aborting transaction, sends the next transactional request. Returns whether the
    /// transaction is completing (every queued batch is then sendable, as a flush).
    fn drive_transaction(&mut self, now: Instant, timeout: &mut Duration) -> bool {
        let inner = self.inner.clone();
        let Some(txn) = &inner.txn else {
            return false;
        };
        if inner.config.transactional_id.is_none() {
            return false;
        }
        let (abort_undrained, reason, fatal, completing) = {
            let t = lock(txn);
            (
                t.has_abortable_error() || t.is_aborting(),
                t.last_error(),
                t.has_fatal_error(),
                t.is_completing(),
            )
        };
        if fatal {
            // Nothing more is sent; pending batches fail with the fatal error (run loop).
            return false;
        }
        if abort_undrained {
            let batches = lock(&inner.acc).abort_undrained_batches();
            if !batches.is_empty() {
                let reason = reason.unwrap_or(Error::TransactionAborted);
                tracing::debug!(batches = batches.len(), error = %reason, "aborting batches not sent before the transaction was aborted");
                for b in batches {
                    self.abort_batch(b, reason.clone());
                }
            }
        }
        if self.txn_fetch.is_some() {
            return completing;
        }
        let has_incomplete = lock(&inner.acc).has_incomplete();
        let next = lock(txn).next_request(now, has_incomplete);
        match next {
            TxnNext::Send(request) => {
                tracing::debug!(id = request.id, request = ?request.body, "sending transactional request");
                self.txn_fetch = Some(Box::pin(send_txn_request(inner.clone(), request)));
            }
            TxnNext::Backoff(at) => {
                *timeout = (*timeout).min(at.saturating_duration_since(now));
            }
            TxnNext::Idle => {}
        }
        completing
    }

    fn handle_txn_outcome(&mut self, id: u64, outcome: TxnOutcome) {
        let Some(txn) = &self.inner.txn else { return };
        let now = Instant::now();
        {
            let mut t = lock(txn);
            match outcome {
                TxnOutcome::Response(r) => t.handle_response(id, r, now),
                TxnOutcome::Disconnected(e) => {
                    tracing::debug!(id, error = %e, "transactional request failed; will retry");
                    t.handle_disconnect(id, now);
                }
                TxnOutcome::Fatal(e) => t.handle_request_error(id, e),
            }
        }
        self.sync_transactional_fatal();
    }

    /// Fails a batch that was never sent (its transaction is aborted).
    fn abort_batch(&mut self, mut batch: ProducerBatch, error: Error) {
        lock(&self.inner.acc).deallocate(batch.id);
        batch.complete(Outcome::Failed(error));
        self.release(batch);
    }

    /// Fails every queued batch (in-flight requests complete on their own).
    fn abort_all(&mut self, error: Error) {
        let batches = lock(&self.inner.acc).drain_all();
        for b in batches {
            let sent = b.sent;
            self.fail_batch(b, error.clone(), None, sent, false);
        }
        if self.inner.force_close.load(Ordering::Acquire) {
            // In-flight requests are abandoned: dropping their futures drops their batches,
            // which fails every record still waiting (ProducerBatch's Drop).
            self.in_flight = FuturesUnordered::new();
        }
    }
}

/// Polls an optional future; pending forever when `None`.
async fn poll_opt<T>(f: &mut Option<BoxFut<T>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn fetch_metadata(
    inner: Arc<ProducerInner>,
    topics: Vec<String>,
    allow_auto_create: bool,
) -> Result<MetadataResponse, Error> {
    let conn = inner.connections.any().await?;
    let version = conn
        .version_for(ApiKey::Metadata)
        .ok_or_else(|| Error::UnsupportedVersion("Metadata".into()))?;
    let request = MetadataRequest {
        topics: Some(
            topics
                .into_iter()
                .map(|name| MetadataRequestTopic {
                    name: Some(name),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: allow_auto_create,
        ..Default::default()
    };
    conn.send_with_version(request, version).await
}

async fn init_producer_id(inner: Arc<ProducerInner>) -> Result<ProducerIdAndEpoch, Error> {
    let conn = inner.connections.any().await?;
    let version = conn
        .version_for(ApiKey::InitProducerId)
        .ok_or_else(|| Error::UnsupportedVersion("InitProducerId (idempotence)".into()))?;
    let request = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: i32::MAX,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    let resp = conn.send_with_version(request, version).await?;
    let code = ErrorCode::from(resp.error_code);
    if !code.is_ok() {
        return Err(Error::kafka(code));
    }
    Ok(ProducerIdAndEpoch {
        producer_id: resp.producer_id,
        epoch: resp.producer_epoch,
    })
}

/// The highest version of `api` both sides support, at most `max`.
fn capped_version(conn: &BrokerConnection, api: ApiKey, max: i16) -> Option<i16> {
    let ours = api.valid_versions();
    let ours = VersionRange {
        min: ours.min,
        max: ours.max.min(max),
    };
    let (_, theirs) = conn.broker_versions().iter().find(|(k, _)| *k == api)?;
    ours.highest_common(theirs)
}

/// Sends one transactional request and decodes its answer.
async fn send_txn_request(inner: Arc<ProducerInner>, request: TxnRequest) -> (u64, TxnOutcome) {
    let id = request.id;
    (id, txn_request(&inner, request).await)
}

/// The outcome of a transport-level failure: a version problem is fatal, anything else
/// (broken connection, timeout, undecodable answer) is retried after a coordinator lookup.
fn txn_failure(e: Error) -> TxnOutcome {
    match e {
        Error::UnsupportedVersion(_) => TxnOutcome::Fatal(e),
        other => TxnOutcome::Disconnected(other),
    }
}

fn txn_version(conn: &BrokerConnection, api: ApiKey, max: i16) -> Result<i16, TxnOutcome> {
    capped_version(conn, api, max).ok_or_else(|| {
        TxnOutcome::Fatal(Error::UnsupportedVersion(format!(
            "the broker does not support {api:?} (needed for transactions)"
        )))
    })
}

async fn txn_request(inner: &ProducerInner, request: TxnRequest) -> TxnOutcome {
    let conn = match &request.target {
        None => inner.connections.any().await,
        Some(node) => {
            inner
                .connections
                .get(node.node_id, &format!("{}:{}", node.host, node.port))
                .await
        }
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => return TxnOutcome::Disconnected(e),
    };
    if request.coordinator_type == Some(CoordinatorType::Transaction) {
        if let Some(txn) = &inner.txn {
            let bump = conn
                .version_for(ApiKey::InitProducerId)
                .is_some_and(|v| v >= 3);
            lock(txn).handle_coordinator_ready(bump);
        }
    }
    match txn_exchange(&conn, request.body).await {
        Ok(r) => TxnOutcome::Response(r),
        Err(outcome) => outcome,
    }
}

async fn txn_exchange(
    conn: &BrokerConnection,
    body: TxnRequestBody,
) -> Result<TxnResponse, TxnOutcome> {
    match body {
        TxnRequestBody::FindCoordinator { key_type, key } => {
            let version = txn_version(conn, ApiKey::FindCoordinator, i16::MAX)?;
            if version < 1 {
                return Err(TxnOutcome::Fatal(Error::UnsupportedVersion(
                    "FindCoordinator v1+ is needed for transaction coordinators".into(),
                )));
            }
            let r = find_coordinator_request(key_type.key_type(), &key, version);
            let resp = conn
                .send_with_version(r, version)
                .await
                .map_err(txn_failure)?;
            if version >= 4 && !resp.coordinators.iter().any(|c| c.key == key) {
                return Err(TxnOutcome::Fatal(Error::Protocol(
                    "FindCoordinator response without the requested key".into(),
                )));
            }
            let (error, message, coordinator) = find_coordinator_answer(&resp, &key);
            Ok(TxnResponse::FindCoordinator {
                error,
                message,
                coordinator,
            })
        }
        TxnRequestBody::InitProducerId {
            transactional_id,
            transaction_timeout_ms,
            producer,
        } => {
            let version = txn_version(conn, ApiKey::InitProducerId, i16::MAX)?;
            if producer.is_valid() && version < 3 {
                return Err(TxnOutcome::Fatal(Error::UnsupportedVersion(
                    "bumping the epoch needs InitProducerId v3+".into(),
                )));
            }
            let r = InitProducerIdRequest {
                transactional_id: Some(transactional_id),
                transaction_timeout_ms,
                producer_id: producer.producer_id,
                producer_epoch: producer.epoch,
                ..Default::default()
            };
            let resp = conn
                .send_with_version(r, version)
                .await
                .map_err(txn_failure)?;
            Ok(TxnResponse::InitProducerId {
                error: ErrorCode::from(resp.error_code),
                producer: ProducerIdAndEpoch {
                    producer_id: resp.producer_id,
                    epoch: resp.producer_epoch,
                },
            })
        }
        TxnRequestBody::AddPartitionsToTxn {
            transactional_id,
            producer,
            partitions,
        } => {
            let version = txn_version(
                conn,
                ApiKey::AddPartitionsToTxn,
                ADD_PARTITIONS_TO_TXN_MAX_CLIENT_VERSION,
            )?;
            let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
            for tp in &partitions {
                match topics.iter_mut().find(|t| *t.name == *tp.topic) {
                    Some(t) => t.partitions.push(tp.partition),
                    None => topics.push(AddPartitionsToTxnTopic {
                        name: tp.topic.to_string(),
                        partitions: vec![tp.partition],
                        ..Default::default()
                    }),
                }
            }
            let r = AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: transactional_id,
                v3_and_below_producer_id: producer.producer_id,
                v3_and_below_producer_epoch: producer.epoch,
                v3_and_below_topics: topics,
                ..Default::default()
            };
            let resp = conn
                .send_with_version(r, version)
                .await
                .map_err(txn_failure)?;
            let mut errors = Vec::new();
            for t in &resp.results_by_topic_v3_and_below {
                let topic: Arc<str> = Arc::from(t.name.as_str());
                for p in &t.results_by_partition {
                    errors.push((
                        TopicPartition {
                            topic: topic.clone(),
                            partition: p.partition_index,
                        },
                        ErrorCode::from(p.partition_error_code),
                    ));
                }
            }
            Ok(TxnResponse::AddPartitionsToTxn { errors })
        }
        TxnRequestBody::AddOffsetsToTxn {
            transactional_id,
            producer,
            group_id,
        } => {
            let version = txn_version(conn, ApiKey::AddOffsetsToTxn, i16::MAX)?;
            let r = AddOffsetsToTxnRequest {
                transactional_id,
                producer_id: producer.producer_id,
                producer_epoch: producer.epoch,
                group_id,
                ..Default::default()
            };
            let resp = conn
                .send_with_version(r, version)
                .await
                .map_err(txn_failure)?;
            Ok(TxnResponse::AddOffsetsToTxn {
                error: ErrorCode::from(resp.error_code),
            })
        }
        TxnRequestBody::TxnOffsetCommit {
            transactional_id,
            producer,
            group,
            offsets,
        } => {
            let version = txn_version(
                conn,
                ApiKey::TxnOffsetCommit,
                TXN_OFFSET_COMMIT_MAX_VERSION_TXN_V1,
            )?;
            let has_group_metadata = !group.member_id.is_empty()
                || group.generation_id != -1
                || group.group_instance_id.is_some();
            if version < 3 && has_group_metadata {
                return Err(TxnOutcome::Fatal(Error::UnsupportedVersion(format!(
                    "Broker doesn't support group metadata commit API on version {version}, minimum supported request version is 3 which requires brokers to be on version 2.5 or above."
                ))));
            }
            let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
            for (tp, o) in &offsets {
                let p = TxnOffsetCommitRequestPartition {
                    partition_index: tp.partition,
                    committed_offset: o.offset,
                    committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
                    committed_metadata: Some(o.metadata.clone()),
                    ..Default::default()
                };
                match topics.iter_mut().find(|t| *t.name == *tp.topic) {
                    Some(t) => t.partitions.push(p),
                    None => topics.push(TxnOffsetCommitRequestTopic {
                        name: tp.topic.to_string(),
                        partitions: vec![p],
                        ..Default::default()
                    }),
                }
            }
            let mut r = TxnOffsetCommitRequest {
                transactional_id,
                group_id: group.group_id.clone(),
                producer_id: producer.producer_id,
                producer_epoch: producer.epoch,
                topics,
                ..Default::default()
            };
            if version >= 3 {
                r.generation_id = group.generation_id;
                r.member_id = group.member_id.clone();
                r.group_instance_id = group.group_instance_id.clone();
            }
            let resp = conn
                .send_with_version(r, version)
                .await
                .map_err(txn_failure)?;
            let mut errors = Vec::new();
            for t in &resp.topics {
                let topic: Arc<str> = Arc::from(t.name.as_str());
                for p in &t.partitions {
                    errors.push((
                        TopicPartition {
                            topic: topic.clone(),
                            partition: p.partition_index,
                        },
                        ErrorCode::from(p.error_code),
                    ));
                }
            }
            Ok(TxnResponse::TxnOffsetCommit { errors })
        }
        TxnRequestBody::EndTxn {
            transactional_id,
            producer,
            commit,
        } => {
            let version = txn_version(conn, ApiKey::EndTxn, END_TXN_MAX_VERSION_TXN_V1)?;
            let r = EndTxnRequest {
                transactional_id,
                producer_id: producer.producer_id,
                producer_epoch: producer.epoch,
                committed: commit,
                ..Default::default()
            };
            let resp = conn
                .send_with_version(r, version)
                .await
                .map_err(txn_failure)?;
            Ok(TxnResponse::EndTxn {
                error: ErrorCode::from(resp.error_code),
            })
        }
    }
}
