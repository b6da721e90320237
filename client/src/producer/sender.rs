//! The `Sender`: the producer's background task. It drains ready batches from the
//! `RecordAccumulator` into one Produce request per leader, keeps at most
//! `max.in.flight.requests.per.connection` requests in flight per broker, completes, retries,
//! splits or fails batches from the responses, expires batches after `delivery.timeout.ms`,
//! refreshes metadata and obtains the producer id (KIP-98). Java's `Sender`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use kafka_wire::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_wire::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_wire::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_wire::messages::produce_response::ProduceResponse;
use kafka_wire::messages::MetadataResponse;
use kafka_wire::{ApiKey, ErrorCode};

use super::batch::{Outcome, ProducerBatch, ProducerIdAndEpoch};
use super::{lock, ProducerInner};
use crate::config::Acks;
use crate::error::Error;
use crate::metadata::Cluster;
use crate::network::connection::BrokerConnection;
use crate::network::pool::ExponentialBackoff;

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

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
                break;
            }
            let closing = self.inner.closing.load(Ordering::Acquire);
            if closing && self.in_flight.is_empty() && !lock(&self.inner.acc).has_incomplete() {
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
                _ = self.inner.wakeup.notified() => {}
                _ = &mut sleep => {}
            }
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
        let exhausted = self.inner.pool.queued() > 0;
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
        let version = match conn.version_for(ApiKey::Produce) {
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
