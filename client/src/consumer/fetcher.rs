//! The fetcher: Fetch requests per leader, and turning Fetch responses into records (Java's
//! `Fetcher`, `FetchBuffer`, `CompletedFetch` and `FetchCollector`), plus the offset lookups
//! of resets (`OffsetFetcher`'s ListOffsets).
//!
//! The core is pure and deterministic: [`prepare_fetches`] chooses what to fetch from which
//! broker, [`FetchSessions::build`] writes the request within the broker's fetch session,
//! [`FetchSessions::handle_response`] checks the answer against the session and splits it
//! into per-partition [`CompletedFetch`]es ([`completed_fetches`]), and
//! [`FetchBuffer::collect`] returns records from them. The I/O functions at the end
//! ([`send_fetch`], [`list_offsets`]) are the thin layer the consumer's background task
//! calls.
//!
//! # Behaviour
//! * **One fetch in flight per broker**, covering every fetchable partition it leads that
//!   has **no buffered data** (prefetch is bounded: a partition is fetched again only once the
//!   application has drained what was fetched for it). A broker's next fetch can go out
//!   while the application still processes data from other brokers or partitions
//!   (pipelining). Memory is bounded by about `fetch.max.bytes` per broker (plus one batch,
//!   KIP-74) and one decompressed batch per partition being drained.
//! * **Incremental fetch sessions** (KIP-227, always on as in Java;
//!   [`fetch_session`](super::fetch_session)): the first request to a broker is full (epoch
//!   0); once the broker answers with a session id, requests list only the partitions added
//!   or altered (new position after records were consumed or a seek, new leader epoch...) and
//!   forget the partitions no longer fetched from it (paused, unassigned, moved to another
//!   leader, or holding buffered data: Java also leaves those out of the next request). The
//!   answer names only partitions with news; the others keep their position and get no
//!   [`CompletedFetch`]. The one-fetch-in-flight rule is what sessions need: each answer
//!   decides the next request's epoch. A failed request, a session error or an answer that
//!   does not match the session makes the next request full again; a broker that declines
//!   sessions (session id 0) gets full requests every time. Requests below Fetch v7 carry no
//!   session. Closing the consumer closes the sessions (Java's `maybeCloseFetchSessions`):
//!   [`FetchSessions::close_requests`] writes one request per session (the session id, epoch
//!   -1, no partitions) for the brokers still connected, sent after any fetch in flight
//!   (answered in order) and waited for until [`close_sessions_deadline`].
//! * **Records** come out in offset order per partition, at most `max.poll.records` per
//!   collect. Batches are decompressed one at a time (any codec, bounded by
//!   [`FetchConfig::max_decompressed_batch`]); the CRC is checked when `check.crcs` is on;
//!   control batches are skipped; records below the fetch position are skipped (a batch can
//!   start before it).
//! * **read_committed**: the broker returns data up to the last stable offset; records of
//!   aborted transactions are dropped with Java's algorithm: aborted transactions (from the
//!   response) are consumed in first-offset order up to each batch's last offset, adding
//!   their producer ids to the aborted set; a transactional batch of a producer in the set
//!   is skipped; an ABORT marker removes its producer from the set.
//! * **Errors**: OFFSET_OUT_OF_RANGE resets the partition per `auto.offset.reset` (an error
//!   naming the partition with "none"); NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
//!   FENCED_LEADER_EPOCH and the other stale-metadata codes ask for a metadata refresh and
//!   the partition is fetched again; UNKNOWN_LEADER_EPOCH is retried; anything else (for
//!   example TOPIC_AUTHORIZATION_FAILED, a corrupt batch) is an error for the caller, after
//!   the records collected before it.
//! * Data fetched for a position that has since changed (seek, reset, pause, reassignment)
//!   is discarded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_wire::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_wire::messages::fetch_response::PartitionData;
use kafka_wire::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_wire::messages::{FetchRequest, FetchResponse, ListOffsetsRequest};
use kafka_wire::records::{
    ControlRecordType, RecordBatch, RecordBatches, RecordIter, TimestampType,
};
use kafka_wire::{ApiKey, ErrorCode, Uuid};

use super::consumer::ConsumerRecord;
use super::fetch_session::{
    FetchRequestData, FetchSessionHandler, PartitionFetchData, INVALID_SESSION_ID,
};
use super::subscription_state::{FetchPosition, SubscriptionState};
use crate::error::Error;
use crate::metadata::Cluster;
use crate::network::connection::{BrokerConnection, ResponseFuture};
use crate::producer::TopicPartition;
use crate::record::Header;

/// The largest decompressed batch accepted by default (64 MiB).
pub const DEFAULT_MAX_DECOMPRESSED_BATCH: usize = 64 << 20;

/// What the fetcher needs from the consumer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`.
    pub max_bytes: i32,
    /// `fetch.max.wait.ms`.
    pub max_wait: Duration,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// `isolation.level=read_committed`.
    pub read_committed: bool,
    /// `check.crcs`.
    pub check_crcs: bool,
    /// `client.rack` (sent as the fetch's rack id).
    pub rack: Option<String>,
    /// Bound on the decompressed size of one batch; larger is an error.
    pub max_decompressed_batch: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            min_bytes: 1,
            max_bytes: 52_428_800,
            max_wait: Duration::from_millis(500),
            partition_max_bytes: 1_048_576,
            read_committed: false,
            check_crcs: true,
            rack: None,
            max_decompressed_batch: DEFAULT_MAX_DECOMPRESSED_BATCH,
        }
    }
}

/// A fetch to send to one broker: the partitions and the positions they are fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedFetch {
    /// The leader's node id.
    pub node: i32,
    /// The partitions, in assignment order, with their positions.
    pub partitions: Vec<(TopicPartition, FetchPosition)>,
}

/// What [`prepare_fetches`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPlan {
    /// One fetch per broker that has none in flight.
    pub fetches: Vec<PreparedFetch>,
    /// Some fetchable partition has no known leader: metadata should be refreshed.
    pub missing_leader: bool,
}

/// Chooses what to fetch (Java's `prepareFetchRequests`): every fetchable partition with no
/// buffered data, grouped by leader, skipping brokers for which `busy` is true (a fetch in
/// flight, or not connected yet).
pub fn prepare_fetches(
    subs: &SubscriptionState,
    cluster: &Cluster,
    buffered: &HashSet<TopicPartition>,
    busy: impl Fn(i32) -> bool,
) -> FetchPlan {
    let mut plan = FetchPlan::default();
    let mut by_node: Vec<PreparedFetch> = Vec::new();
    for (tp, position) in subs.fetchable() {
        if buffered.contains(&tp) {
            continue;
        }
        let leader = cluster
            .topic(&tp.topic)
            .and_then(|t| t.leader(tp.partition))
            .filter(|n| cluster.broker(*n).is_some());
        let Some(node) = leader else {
            plan.missing_leader = true;
            continue;
        };
        if busy(node) {
            continue;
        }
        match by_node.iter_mut().find(|f| f.node == node) {
            Some(f) => f.partitions.push((tp, position)),
            None => by_node.push(PreparedFetch {
                node,
                partitions: vec![(tp, position)],
            }),
        }
    }
    plan.fetches = by_node;
    plan
}

/// The Fetch version to use with a broker whose highest common version is `max`, for a
/// request that can (or cannot) name every topic by id: topic ids are needed from v13, so
/// without an id for every topic the version is capped at 12. `None` below v4 (no record
/// batch v2 / isolation level).
pub fn fetch_version(can_use_topic_ids: bool, max: i16) -> Option<i16> {
    if max < 4 {
        return None;
    }
    Some(if can_use_topic_ids { max } else { max.min(12) })
}

/// What `prepared` fetches for each partition (Java's `FetchRequest.PartitionData`: no log
/// start offset, no last fetched epoch for consumers).
pub fn partition_fetch_data<'a>(
    prepared: &'a PreparedFetch,
    config: &'a FetchConfig,
    cluster: &'a Cluster,
) -> impl Iterator<Item = (TopicPartition, PartitionFetchData)> + 'a {
    prepared.partitions.iter().map(|(tp, position)| {
        let data = PartitionFetchData {
            topic_id: cluster.topic(&tp.topic).map_or(Uuid::ZERO, |t| t.topic_id),
            fetch_offset: position.offset,
            log_start_offset: -1,
            max_bytes: config.partition_max_bytes,
            current_leader_epoch: position.leader_epoch,
            last_fetched_epoch: None,
        };
        (tp.clone(), data)
    })
}

/// Writes the Fetch request for `data` at `version` (Java's `FetchRequest.Builder`): the
/// partitions to send grouped by consecutive topic, the session id and epoch, and from v7
/// the forgotten partitions (with the replaced ones from v13: before v13 the forget list
/// names topics, which would drop the replacing partition).
pub fn write_fetch_request(
    data: &FetchRequestData,
    config: &FetchConfig,
    version: i16,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, d) in &data.to_send {
        let partition = FetchPartition {
            partition: tp.partition,
            current_leader_epoch: d.current_leader_epoch.unwrap_or(-1),
            fetch_offset: d.fetch_offset,
            last_fetched_epoch: d.last_fetched_epoch.unwrap_or(-1),
            log_start_offset: d.log_start_offset,
            partition_max_bytes: d.max_bytes,
            ..Default::default()
        };
        match topics.last_mut() {
            Some(t) if t.topic == *tp.topic && t.topic_id == d.topic_id => {
                t.partitions.push(partition)
            }
            _ => topics.push(FetchTopic {
                topic: tp.topic.to_string(),
                topic_id: d.topic_id,
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    if version >= 7 {
        let replaced = if version >= 13 {
            &data.to_replace[..]
        } else {
            &[]
        };
        for p in data.to_forget.iter().chain(replaced) {
            match forgotten
                .iter_mut()
                .find(|f| f.topic == *p.tp.topic && f.topic_id == p.topic_id)
            {
                Some(f) => f.partitions.push(p.tp.partition),
                None => forgotten.push(ForgottenTopic {
                    topic: p.tp.topic.to_string(),
                    topic_id: p.topic_id,
                    partitions: vec![p.tp.partition],
                    ..Default::default()
                }),
            }
        }
    }
    FetchRequest {
        replica_id: -1,
        max_wait_ms: i32::try_from(config.max_wait.as_millis()).unwrap_or(i32::MAX),
        min_bytes: config.min_bytes,
        max_bytes: config.max_bytes,
        isolation_level: i8::from(config.read_committed),
        session_id: data.metadata.session_id,
        session_epoch: data.metadata.epoch,
        topics,
        forgotten_topics_data: forgotten,
        rack_id: config.rack.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// A Fetch request on its way to a broker: what reading its answer needs.
#[derive(Debug, Clone)]
pub struct SentFetch {
    /// The broker.
    pub node: i32,
    /// The request's version.
    pub version: i16,
    /// The session data the request was written from.
    pub data: FetchRequestData,
}

/// The consumer's fetch sessions, one [`FetchSessionHandler`] per broker (Java's
/// `sessionHandlers`, KIP-227). The caller keeps at most one request in flight per broker
/// and hands every outcome back: [`handle_response`](Self::handle_response) for an answer,
/// [`handle_error`](Self::handle_error) for a request that failed.
#[derive(Debug, Default)]
pub struct FetchSessions {
    handlers: HashMap<i32, FetchSessionHandler>,
}

impl FetchSessions {
    /// No sessions yet.
    pub fn new() -> Self {
        FetchSessions::default()
    }

    /// The session with `node`, once a request was built for it.
    pub fn handler(&self, node: i32) -> Option<&FetchSessionHandler> {
        self.handlers.get(&node)
    }

    /// Builds the request for `prepared` to a broker whose highest Fetch version is `max`:
    /// a full request when there is no session (or it must be re-created), else an
    /// incremental one listing only what changed and forgetting what is no longer fetched.
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`] without Fetch v4 (the session is left as it was).
    pub fn build(
        &mut self,
        prepared: &PreparedFetch,
        config: &FetchConfig,
        cluster: &Cluster,
        max: Option<i16>,
    ) -> Result<(FetchRequest, SentFetch), Error> {
        let max = max.ok_or_else(|| Error::UnsupportedVersion("Fetch".into()))?;
        if fetch_version(true, max).is_none() {
            return Err(Error::UnsupportedVersion(
                "the broker does not support Fetch v4+".into(),
            ));
        }
        let handler = self
            .handlers
            .entry(prepared.node)
            .or_insert_with(|| FetchSessionHandler::new(prepared.node));
        if max < 7 {
            // No session fields before v7: every request lists everything.
            handler.reset();
        }
        let mut builder = handler.new_builder();
        for (tp, data) in partition_fetch_data(prepared, config, cluster) {
            builder.add(tp, data);
        }
        let data = builder.build();
        let version = fetch_version(data.can_use_topic_ids, max).unwrap_or(max);
        let request = write_fetch_request(&data, config, version);
        Ok((
            request,
            SentFetch {
                node: prepared.node,
                version,
                data,
            },
        ))
    }

    /// The answer to `sent`: one [`CompletedFetch`] per partition it names. A partition of
    /// the session that an incremental answer leaves out has nothing new: it keeps its
    /// position and gets none. A top-level error other than the session errors fails every
    /// partition of the request.
    ///
    /// # Errors
    /// An answer that does not match the session ([`Error::Protocol`]) or
    /// FETCH_SESSION_TOPIC_ID_ERROR ([`Error::Kafka`]: metadata should be refreshed); the
    /// next request is full. FETCH_SESSION_ID_NOT_FOUND and INVALID_FETCH_SESSION_EPOCH give
    /// no fetches and no error: the next request re-creates the session.
    pub fn handle_response(
        &mut self,
        sent: &SentFetch,
        response: FetchResponse,
    ) -> Result<Vec<CompletedFetch>, Error> {
        let handler = self
            .handlers
            .entry(sent.node)
            .or_insert_with(|| FetchSessionHandler::new(sent.node));
        if !handler.handle_response(&response, sent.version) {
            let code = ErrorCode::from(response.error_code);
            return match code {
                ErrorCode::None
                    if response.throttle_time_ms > 0 && response.responses.is_empty() =>
                {
                    Ok(Vec::new())
                }
                ErrorCode::None => Err(Error::Protocol(format!(
                    "node {} sent a fetch response that does not match fetch session {}",
                    sent.node, sent.data.metadata
                ))),
                ErrorCode::FetchSessionIdNotFound | ErrorCode::InvalidFetchSessionEpoch => {
                    Ok(Vec::new())
                }
                ErrorCode::FetchSessionTopicIdError => Err(Error::kafka_with_message(
                    code,
                    Some(format!(
                        "fetch session topic id error from node {}",
                        sent.node
                    )),
                )),
                _ => Ok(completed_fetches(&sent.data, response, &HashMap::new())),
            };
        }
        Ok(completed_fetches(
            &sent.data,
            response,
            handler.session_topic_names(),
        ))
    }

    /// `sent` failed without an answer (connection lost, timeout): the next request to its
    /// broker closes the session and asks for a new one.
    pub fn handle_error(&mut self, sent: &SentFetch, error: &Error) {
        if let Some(h) = self.handlers.get_mut(&sent.node) {
            h.handle_error(error);
        }
    }

    /// Requests closing every session (epoch -1, no partitions; Java's
    /// `prepareCloseFetchSessionRequests`), in broker order, for the brokers `max` gives a
    /// Fetch v7+ version for (the caller answers `None` for a broker it cannot reach without
    /// connecting: Java skips unreachable ones too). Brokers that never granted a session are
    /// skipped, and so are the others `max` refuses: their sessions are left as they were.
    pub fn close_requests(
        &mut self,
        config: &FetchConfig,
        mut max: impl FnMut(i32) -> Option<i16>,
    ) -> Vec<(FetchRequest, SentFetch)> {
        let mut out = Vec::new();
        let mut nodes: Vec<i32> = self.handlers.keys().copied().collect();
        nodes.sort_unstable();
        for node in nodes {
            let Some(handler) = self.handlers.get_mut(&node) else {
                continue;
            };
            if handler.session_id() == INVALID_SESSION_ID {
                continue;
            }
            let Some(version) = max(node).filter(|v| *v >= 7) else {
                continue;
            };
            handler.notify_close();
            let data = handler.new_builder().build();
            let request = write_fetch_request(&data, config, version);
            out.push((
                request,
                SentFetch {
                    node,
                    version,
                    data,
                },
            ));
        }
        out
    }
}

/// One partition's part of a Fetch response, drained record by record (Java's
/// `CompletedFetch`).
pub struct CompletedFetch {
    tp: TopicPartition,
    fetch_offset: i64,
    error: ErrorCode,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    records_size: usize,
    batches: RecordBatches,
    current: Option<(RecordBatch, RecordIter)>,
    next_fetch_offset: i64,
    last_epoch: Option<i32>,
    /// Aborted transactions by first offset (read_committed only).
    aborted: BinaryHeap<Reverse<(i64, i64)>>,
    aborted_producers: HashSet<i64>,
    initialized: bool,
    /// An error met after records were already returned by the same collect.
    pending_error: Option<Error>,
    done: bool,
}

impl std::fmt::Debug for CompletedFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletedFetch")
            .field("tp", &self.tp)
            .field("fetch_offset", &self.fetch_offset)
            .field("error", &self.error)
            .field("next_fetch_offset", &self.next_fetch_offset)
            .field("records_size", &self.records_size)
            .finish_non_exhaustive()
    }
}

impl CompletedFetch {
    /// A completed fetch of `tp` from `fetch_offset` with the partition's response.
    pub fn new(tp: TopicPartition, fetch_offset: i64, data: PartitionData) -> Self {
        let records = data.records.unwrap_or_default();
        let aborted = data
            .aborted_transactions
            .unwrap_or_default()
            .into_iter()
            .map(|a| Reverse((a.first_offset, a.producer_id)))
            .collect();
        CompletedFetch {
            tp,
            fetch_offset,
            error: ErrorCode::from(data.error_code),
            high_watermark: data.high_watermark,
            last_stable_offset: data.last_stable_offset,
            log_start_offset: data.log_start_offset,
            records_size: records.len(),
            batches: RecordBatches::for_fetch(records),
            current: None,
            next_fetch_offset: fetch_offset,
            last_epoch: None,
            aborted,
            aborted_producers: HashSet::new(),
            initialized: false,
            pending_error: None,
            done: false,
        }
    }

    /// A completed fetch failed as a whole (the request failed, or a top-level error).
    pub fn failed(tp: TopicPartition, fetch_offset: i64, error: ErrorCode) -> Self {
        Self::new(
            tp,
            fetch_offset,
            PartitionData {
                error_code: error.code(),
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                ..Default::default()
            },
        )
    }

    /// The partition.
    pub fn partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// Size of the records bytes the broker returned.
    pub fn size_in_bytes(&self) -> usize {
        self.records_size
    }

    /// The next record batch to read, applying read_committed's abort logic. `Ok(None)`
    /// when the fetch is exhausted.
    fn next_record(
        &mut self,
        config: &FetchConfig,
    ) -> Result<Option<(kafka_wire::records::Record, TimestampType)>, Error> {
        loop {
            if let Some((batch, iter)) = &mut self.current {
                match iter.next() {
                    Some(Ok(record)) => {
                        if record.offset < self.next_fetch_offset {
                            continue;
                        }
                        if batch.is_control() {
                            self.next_fetch_offset = record.offset + 1;
                            continue;
                        }
                        return Ok(Some((record, batch.timestamp_type())));
                    }
                    Some(Err(e)) => {
                        return Err(corrupt(&self.tp, self.next_fetch_offset, &e.to_string()))
                    }
                    None => {
                        // Past the batch (its last record may have been compacted away).
                        self.next_fetch_offset = self.next_fetch_offset.max(batch.next_offset());
                        self.current = None;
                    }
                }
                continue;
            }
            let batch = match self.batches.next() {
                None => {
                    self.done = true;
                    return Ok(None);
                }
                Some(Err(e)) => {
                    return Err(corrupt(&self.tp, self.next_fetch_offset, &e.to_string()))
                }
                Some(Ok(b)) => b,
            };
            if batch.next_offset() <= self.next_fetch_offset {
                // Entirely below the position.
                continue;
            }
            if config.check_crcs {
                batch
                    .verify_crc()
                    .map_err(|e| corrupt(&self.tp, batch.base_offset(), &e.to_string()))?;
            }
            let epoch = batch.partition_leader_epoch();
            if epoch >= 0 {
                self.last_epoch = Some(epoch);
            }
            if config.read_committed && batch.producer_id() >= 0 {
                self.consume_aborted_up_to(batch.last_offset());
                let producer = batch.producer_id();
                if contains_abort_marker(&batch, config)? {
                    self.aborted_producers.remove(&producer);
                } else if batch.is_transactional() && self.aborted_producers.contains(&producer) {
                    tracing::trace!(tp = %self.tp, offset = batch.base_offset(), producer, "skipping aborted batch");
                    self.next_fetch_offset = self.next_fetch_offset.max(batch.next_offset());
                    continue;
                }
            }
            let iter = batch
                .records(config.max_decompressed_batch)
                .map_err(|e| corrupt(&self.tp, batch.base_offset(), &e.to_string()))?;
            self.current = Some((batch, iter));
        }
    }

    fn consume_aborted_up_to(&mut self, offset: i64) {
        while let Some(Reverse((first, producer))) = self.aborted.peek().copied() {
            if first > offset {
                break;
            }
            self.aborted.pop();
            self.aborted_producers.insert(producer);
        }
    }

    /// Up to `max` records from this fetch, advancing its next fetch offset.
    fn fetch_records(
        &mut self,
        config: &FetchConfig,
        max: usize,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<(), Error> {
        if let Some(e) = self.pending_error.take() {
            self.done = true;
            return Err(e);
        }
        let mut taken = 0;
        while taken < max {
            match self.next_record(config) {
                Ok(Some((record, timestamp_type))) => {
                    self.next_fetch_offset = record.offset + 1;
                    out.push(to_consumer_record(
                        &self.tp,
                        record,
                        timestamp_type,
                        self.last_epoch,
                    ));
                    taken += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    if taken == 0 {
                        self.done = true;
                        return Err(e);
                    }
                    self.pending_error = Some(e);
                    break;
                }
            }
        }
        Ok(())
    }
}

fn to_consumer_record(
    tp: &TopicPartition,
    r: kafka_wire::records::Record,
    timestamp_type: TimestampType,
    leader_epoch: Option<i32>,
) -> ConsumerRecord {
    ConsumerRecord {
        topic: tp.topic.clone(),
        partition: tp.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        timestamp_type,
        serialized_key_size: r.key.as_ref().map_or(-1, |k| k.len() as i32),
        serialized_value_size: r.value.as_ref().map_or(-1, |v| v.len() as i32),
        key: r.key,
        value: r.value,
        headers: r
            .headers
            .into_iter()
            .map(|h| Header {
                key: h.key,
                value: h.value,
            })
            .collect(),
        leader_epoch,
    }
}

fn contains_abort_marker(batch: &RecordBatch, config: &FetchConfig) -> Result<bool, Error> {
    if !batch.is_control() {
        return Ok(false);
    }
    let mut records = batch
        .records(config.max_decompressed_batch)
        .map_err(|e| Error::Protocol(e.to_string()))?;
    match records.next() {
        Some(Ok(r)) => Ok(r
            .key
            .as_deref()
            .and_then(|k| ControlRecordType::parse_key(k).ok().flatten())
            == Some(ControlRecordType::Abort)),
        _ => Ok(false),
    }
}

fn corrupt(tp: &TopicPartition, offset: i64, reason: &str) -> Error {
    Error::kafka_with_message(
        ErrorCode::CorruptMessage,
        Some(format!(
            "Received exception when fetching the next record from {tp} at offset {offset}: \
             {reason}. If needed, please seek past the record to continue consumption."
        )),
    )
}

/// Errors after which the partition's leader is stale: refresh metadata and fetch again
/// (Java's `InvalidMetadataException` cases in `handleInitializeErrors`).
pub fn needs_metadata_refresh(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::ReplicaNotAvailable
            | ErrorCode::KafkaStorageError
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::OffsetNotAvailable
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::UnknownTopicId
            | ErrorCode::InconsistentTopicId
            | ErrorCode::LeaderNotAvailable
    )
}

/// Splits a Fetch response into one [`CompletedFetch`] per partition it names, each read
/// from the offset the request's session has for it; a partition the response omits gets
/// none (an incremental answer names only partitions with news; the others keep their
/// position and are fetched again), a top-level error fails every partition of the session.
/// Topics are matched by id when the response names none (v13+, `by_id`), else by name.
pub fn completed_fetches(
    data: &FetchRequestData,
    response: FetchResponse,
    by_id: &HashMap<Uuid, Arc<str>>,
) -> Vec<CompletedFetch> {
    let top = ErrorCode::from(response.error_code);
    if !top.is_ok() {
        return data
            .session_partitions
            .as_slice()
            .iter()
            .map(|(tp, p)| CompletedFetch::failed(tp.clone(), p.fetch_offset, top))
            .collect();
    }
    let mut out = Vec::new();
    for topic in response.responses {
        let name: Arc<str> = if topic.topic.is_empty() {
            match by_id.get(&topic.topic_id) {
                Some(n) => n.clone(),
                None => continue,
            }
        } else {
            Arc::from(topic.topic.as_str())
        };
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            let Some(offset) = data.session_partition(&tp).map(|d| d.fetch_offset) else {
                continue;
            };
            out.push(CompletedFetch::new(tp, offset, p));
        }
    }
    out
}

/// What [`FetchBuffer::collect`] returned besides records.
#[derive(Debug, Default)]
pub struct Collected {
    /// Records in offset order per partition.
    pub records: Vec<ConsumerRecord>,
    /// Some partition's leader is stale: refresh metadata.
    pub metadata_refresh: bool,
    /// The error to report (after `records`, which were returned first).
    pub error: Option<Error>,
}

/// Completed fetches waiting for the application (Java's `FetchBuffer`).
#[derive(Debug, Default)]
pub struct FetchBuffer {
    queue: VecDeque<CompletedFetch>,
}

impl FetchBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        FetchBuffer::default()
    }

    /// Adds completed fetches at the back.
    pub fn extend(&mut self, fetches: impl IntoIterator<Item = CompletedFetch>) {
        self.queue.extend(fetches);
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many completed fetches (partitions' responses) are buffered.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// The partitions with buffered data (not fetched again until drained).
    pub fn buffered_partitions(&self) -> HashSet<TopicPartition> {
        self.queue.iter().map(|f| f.tp.clone()).collect()
    }

    /// The partitions whose buffered fetches still hold record data (not only an empty
    /// answer or an error).
    pub fn partitions_with_records(&self) -> impl Iterator<Item = &TopicPartition> {
        self.queue
            .iter()
            .filter(|f| f.records_size > 0 && !f.done)
            .map(|f| &f.tp)
    }

    /// Bytes of fetched record data buffered.
    pub fn buffered_bytes(&self) -> usize {
        self.queue.iter().map(|f| f.records_size).sum()
    }

    /// Drops buffered data of partitions that are no longer assigned.
    pub fn retain_assigned(&mut self, subs: &SubscriptionState) {
        self.queue.retain(|f| subs.is_assigned(&f.tp));
    }

    /// Returns up to `max_records` records (Java's `FetchCollector.collectFetch`), advancing
    /// positions in `subs`. Partitions that are paused stay buffered; data for a position
    /// that has changed is dropped.
    pub fn collect(
        &mut self,
        subs: &mut SubscriptionState,
        config: &FetchConfig,
        max_records: usize,
    ) -> Collected {
        self.collect_into(subs, config, max_records, Vec::new())
    }

    /// As [`collect`](Self::collect), appending to `records` (an empty vector whose memory
    /// is reused) rather than to a new vector.
    pub fn collect_into(
        &mut self,
        subs: &mut SubscriptionState,
        config: &FetchConfig,
        max_records: usize,
        records: Vec<ConsumerRecord>,
    ) -> Collected {
        debug_assert!(records.is_empty());
        let mut out = Collected {
            records,
            ..Collected::default()
        };
        let mut paused = VecDeque::new();
        while out.records.len() < max_records {
            let Some(mut fetch) = self.queue.pop_front() else {
                break;
            };
            if subs.is_paused(&fetch.tp) {
                // Kept for when the partition is resumed.
                paused.push_back(fetch);
                continue;
            }
            if !fetch.initialized {
                match initialize(&mut fetch, subs, &mut out.metadata_refresh) {
                    Ok(true) => fetch.initialized = true,
                    Ok(false) => continue,
                    Err(e) => {
                        if out.records.is_empty() {
                            out.error = Some(e);
                        } else {
                            // Reported at the next collect.
                            fetch.initialized = true;
                            fetch.pending_error = Some(e);
                            self.queue.push_front(fetch);
                        }
                        break;
                    }
                }
            }
            if !subs.is_fetchable_at(&fetch.tp, fetch.next_fetch_offset) {
                // Seeked, reset or unassigned since: stale.
                continue;
            }
            let remaining = max_records - out.records.len();
            let result = fetch.fetch_records(config, remaining, &mut out.records);
            let position = subs.position(&fetch.tp);
            if position.is_some_and(|p| fetch.next_fetch_offset > p.offset) {
                subs.advance(
                    &fetch.tp,
                    FetchPosition {
                        offset: fetch.next_fetch_offset,
                        leader_epoch: fetch.last_epoch.or(position.and_then(|p| p.leader_epoch)),
                    },
                );
            }
            match result {
                Ok(()) => {
                    if !fetch.done || fetch.pending_error.is_some() {
                        self.queue.push_front(fetch);
                    }
                }
                Err(e) => {
                    if out.records.is_empty() {
                        out.error = Some(e);
                    } else {
                        fetch.pending_error = Some(e);
                        fetch.done = false;
                        self.queue.push_front(fetch);
                    }
                    break;
                }
            }
        }
        while let Some(f) = paused.pop_back() {
            self.queue.push_front(f);
        }
        out
    }
}

/// Java's `initializeCompletedFetch`: `Ok(true)` when the fetch has data to drain,
/// `Ok(false)` when it is to be dropped.
fn initialize(
    fetch: &mut CompletedFetch,
    subs: &mut SubscriptionState,
    metadata_refresh: &mut bool,
) -> Result<bool, Error> {
    let tp = fetch.tp.clone();
    if !subs.is_fetchable_at(&tp, fetch.fetch_offset) {
        tracing::debug!(%tp, offset = fetch.fetch_offset, "discarding stale fetch data");
        return Ok(false);
    }
    let code = fetch.error;
    if code.is_ok() {
        subs.update_offsets(
            &tp,
            fetch.high_watermark,
            fetch.last_stable_offset,
            fetch.log_start_offset,
        );
        if fetch.records_size > 0 && fetch.batches.clone().next().is_none() {
            // Only a partial batch: it is larger than the fetch size (cannot happen with
            // KIP-74 brokers, which always return the first batch whole).
            return Err(Error::RecordTooLarge {
                size: fetch.records_size,
                limit: fetch.records_size,
                config: "max.partition.fetch.bytes",
            });
        }
        return Ok(true);
    }
    match code {
        ErrorCode::OffsetOutOfRange => {
            tracing::info!(%tp, offset = fetch.fetch_offset, "fetch offset out of range");
            subs.offset_out_of_range(&tp, fetch.fetch_offset)?;
            Ok(false)
        }
        c if needs_metadata_refresh(c) => {
            tracing::debug!(%tp, error = %c, "fetch error: refreshing metadata");
            *metadata_refresh = true;
            Ok(false)
        }
        ErrorCode::UnknownLeaderEpoch | ErrorCode::UnknownServerError => {
            tracing::debug!(%tp, error = %code, "fetch error: retrying");
            Ok(false)
        }
        ErrorCode::RequestTimedOut | ErrorCode::NetworkException => Ok(false),
        ErrorCode::TopicAuthorizationFailed => Err(Error::kafka_with_message(
            code,
            Some(format!("Not authorized to access topics: [{}]", tp.topic)),
        )),
        _ => Err(Error::kafka_with_message(
            code,
            Some(format!(
                "Unexpected error code {code} while fetching from partition {tp}"
            )),
        )),
    }
}

/// Sends a request [`FetchSessions::build`] or [`FetchSessions::close_requests`] wrote over
/// `conn` (the answer goes back to [`FetchSessions::handle_response`], a failure to
/// [`FetchSessions::handle_error`]). The request is queued on the connection before this
/// returns, so requests to a broker go out in the order they were written, whenever their
/// futures are polled.
///
/// The future fails with the connection's errors.
pub fn send_fetch(
    conn: &BrokerConnection,
    request: FetchRequest,
    sent: &SentFetch,
) -> ResponseFuture<FetchResponse> {
    conn.send_with_version(request, sent.version)
}

/// The instant a closing consumer stops waiting for the answers to its close-session requests
/// ([`FetchSessions::close_requests`]), or `None` when none should be sent: Java's
/// `KafkaConsumer.close` gives the fetcher what is left of the close timeout at `now`, at most
/// `request.timeout.ms`; with nothing left the requests are never sent.
pub fn close_sessions_deadline(
    close_deadline: Instant,
    now: Instant,
    request_timeout: Duration,
) -> Option<Instant> {
    if close_deadline <= now {
        return None;
    }
    Some(close_deadline.min(now + request_timeout))
}

/// One partition's answer to a ListOffsets lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset (-1 when no offset matches, e.g. a timestamp after the last record).
    pub offset: i64,
    /// The record's timestamp for a time lookup (-1 otherwise).
    pub timestamp: i64,
    /// The leader epoch of the offset, when the broker sent it.
    pub leader_epoch: Option<i32>,
}

/// Writes a ListOffsets request for `partitions` (each with its timestamp: -2 earliest, -1
/// latest, or a time in milliseconds).
pub fn build_list_offsets_request(
    partitions: &[(TopicPartition, i64)],
    read_committed: bool,
    timeout: Duration,
) -> ListOffsetsRequest {
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for (tp, timestamp) in partitions {
        let p = ListOffsetsPartition {
            partition_index: tp.partition,
            current_leader_epoch: -1,
            timestamp: *timestamp,
            max_num_offsets: 1,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.name == *tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(ListOffsetsTopic {
                name: tp.topic.to_string(),
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    ListOffsetsRequest {
        replica_id: -1,
        isolation_level: i8::from(read_committed),
        topics,
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        ..Default::default()
    }
}

/// Looks up offsets on one leader: each partition's result, or its error code.
///
/// # Errors
/// [`Error::UnsupportedVersion`] without ListOffsets v1+; the connection's errors.
pub async fn list_offsets(
    conn: &BrokerConnection,
    partitions: &[(TopicPartition, i64)],
    read_committed: bool,
    timeout: Duration,
) -> Result<Vec<(TopicPartition, Result<ListedOffset, ErrorCode>)>, Error> {
    let version = conn
        .version_for(ApiKey::ListOffsets)
        .filter(|v| *v >= 1 && (*v >= 2 || !read_committed))
        .ok_or_else(|| Error::UnsupportedVersion("ListOffsets v1+".into()))?;
    let request = build_list_offsets_request(partitions, read_committed, timeout);
    let response = conn.send_with_version(request, version).await?;
    let mut out = Vec::new();
    for (tp, _) in partitions {
        let found = response
            .topics
            .iter()
            .filter(|t| t.name == *tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition);
        let result = match found {
            None => Err(ErrorCode::UnknownServerError),
            Some(p) => {
                let code = ErrorCode::from(p.error_code);
                if code.is_ok() {
                    Ok(ListedOffset {
                        offset: p.offset,
                        timestamp: p.timestamp,
                        leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                    })
                } else {
                    Err(code)
                }
            }
        };
        out.push((tp.clone(), result));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{BrokerInfo, PartitionInfo, TopicInfo};
    use crate::producer::TopicPartition;
    use bytes::{Bytes, BytesMut};
    use kafka_wire::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse};
    use kafka_wire::records::{
        end_transaction_marker_batch, BatchOptions, Compression, EndTransactionMarker,
        RecordBatchBuilder,
    };

    use super::super::subscription_state::ResetStrategy;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition {
            topic: t.into(),
            partition: p,
        }
    }

    /// Topic `t` with partitions led by `leaders`, brokers 1 and 2.
    fn cluster(topics: &[(&str, &[i32], Uuid)]) -> Cluster {
        let mut c = Cluster::default();
        for id in [1, 2] {
            c.brokers.insert(
                id,
                BrokerInfo {
                    node_id: id,
                    host: "localhost".into(),
                    port: 9000 + id,
                    rack: None,
                },
            );
        }
        for (name, leaders, id) in topics {
            let partitions: Vec<PartitionInfo> = leaders
                .iter()
                .enumerate()
                .map(|(i, l)| PartitionInfo {
                    partition: i as i32,
                    leader: (*l >= 0).then_some(*l),
                    leader_epoch: 3,
                    replicas: vec![],
                    isr: vec![],
                    error: ErrorCode::None,
                })
                .collect();
            c.topics.insert(
                name.to_string(),
                Arc::new(TopicInfo {
                    name: name.to_string(),
                    topic_id: *id,
                    is_internal: false,
                    available_partitions: (0..partitions.len() as i32).collect(),
                    partitions,
                }),
            );
        }
        c
    }

    fn batch(base_offset: i64, values: &[&str], opts: BatchOptions) -> Bytes {
        let mut b = RecordBatchBuilder::new(BatchOptions {
            base_offset,
            ..opts
        });
        for (i, v) in values.iter().enumerate() {
            b.append(
                1_000 + base_offset + i as i64,
                Some(b"k"),
                Some(v.as_bytes()),
                &[("h", Some(b"x"))],
            )
            .unwrap();
        }
        b.finish().unwrap()
    }

    fn plain(base_offset: i64, values: &[&str]) -> Bytes {
        batch(base_offset, values, BatchOptions::default())
    }

    fn txn(base_offset: i64, producer_id: i64, values: &[&str]) -> Bytes {
        batch(
            base_offset,
            values,
            BatchOptions {
                producer_id,
                producer_epoch: 0,
                base_sequence: 0,
                is_transactional: true,
                ..BatchOptions::default()
            },
        )
    }

    fn marker(offset: i64, producer_id: i64, abort: bool) -> Bytes {
        end_transaction_marker_batch(
            offset,
            5,
            0,
            producer_id,
            0,
            EndTransactionMarker {
                control_type: if abort {
                    ControlRecordType::Abort
                } else {
                    ControlRecordType::Commit
                },
                coordinator_epoch: 0,
            },
        )
        .unwrap()
    }

    fn concat(parts: &[Bytes]) -> Bytes {
        let mut b = BytesMut::new();
        for p in parts {
            b.extend_from_slice(p);
        }
        b.freeze()
    }

    fn data(records: Bytes, hw: i64) -> PartitionData {
        PartitionData {
            partition_index: 0,
            high_watermark: hw,
            last_stable_offset: hw,
            log_start_offset: 0,
            records: Some(records),
            ..Default::default()
        }
    }

    fn values(records: &[ConsumerRecord]) -> Vec<(i64, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn subs_at(tps: &[(TopicPartition, i64)]) -> SubscriptionState {
        let mut s = SubscriptionState::new(Some(ResetStrategy::Earliest));
        s.assign(tps.iter().map(|(t, _)| t.clone()));
        for (t, o) in tps {
            s.seek(t, *o).unwrap();
        }
        s
    }

    #[test]
    fn fetches_group_by_leader_and_skip_busy_buffered_paused() {
        let c = cluster(&[("a", &[1, 2, 1, -1], Uuid::ZERO)]);
        let mut s = subs_at(&[
            (tp("a", 0), 5),
            (tp("a", 1), 6),
            (tp("a", 2), 7),
            (tp("a", 3), 0),
        ]);
        let plan = prepare_fetches(&s, &c, &HashSet::new(), |_| false);
        assert!(plan.missing_leader);
        assert_eq!(plan.fetches.len(), 2);
        assert_eq!(plan.fetches[0].node, 1);
        assert_eq!(
            plan.fetches[0].partitions,
            vec![
                (tp("a", 0), FetchPosition::new(5)),
                (tp("a", 2), FetchPosition::new(7))
            ]
        );
        // Node 2 busy, partition 0 buffered, partition 2 paused: nothing left.
        let buffered: HashSet<_> = [tp("a", 0)].into_iter().collect();
        s.pause(&[tp("a", 2)]).unwrap();
        let plan = prepare_fetches(&s, &c, &buffered, |n| n == 2);
        assert!(plan.fetches.is_empty());
    }

    fn at(offset: i64, leader_epoch: Option<i32>) -> FetchPosition {
        FetchPosition {
            offset,
            leader_epoch,
        }
    }

    fn prepared(node: i32, partitions: &[(TopicPartition, i64)]) -> PreparedFetch {
        PreparedFetch {
            node,
            partitions: partitions
                .iter()
                .map(|(t, o)| (t.clone(), FetchPosition::new(*o)))
                .collect(),
        }
    }

    /// A v13+ answer for topic id `id` naming `parts` (index, high watermark, records).
    fn answer(session_id: i32, id: Uuid, parts: &[(i32, Bytes)]) -> FetchResponse {
        FetchResponse {
            session_id,
            responses: if parts.is_empty() {
                Vec::new()
            } else {
                vec![FetchableTopicResponse {
                    topic_id: id,
                    partitions: parts
                        .iter()
                        .map(|(i, r)| PartitionData {
                            partition_index: *i,
                            ..data(r.clone(), 100)
                        })
                        .collect(),
                    ..Default::default()
                }]
            },
            ..Default::default()
        }
    }

    #[test]
    fn fetch_request_fields_and_version() {
        let id = Uuid::from_u64_pair(1, 2);
        let c = cluster(&[("a", &[1, 1], id), ("b", &[1], Uuid::ZERO)]);
        let prepared = PreparedFetch {
            node: 1,
            partitions: vec![
                (tp("a", 0), at(5, Some(3))),
                (tp("a", 1), FetchPosition::new(6)),
            ],
        };
        let config = FetchConfig {
            read_committed: true,
            rack: Some("r1".into()),
            ..FetchConfig::default()
        };
        let mut sessions = FetchSessions::new();
        let (req, sent) = sessions.build(&prepared, &config, &c, Some(17)).unwrap();
        assert_eq!(sent.version, 17);
        assert_eq!(req.isolation_level, 1);
        assert_eq!(req.max_wait_ms, 500);
        assert_eq!(req.min_bytes, 1);
        assert_eq!(req.max_bytes, 52_428_800);
        assert_eq!(req.rack_id, "r1");
        // The first request creates a session.
        assert_eq!((req.session_id, req.session_epoch), (0, 0));
        assert!(req.forgotten_topics_data.is_empty());
        assert_eq!(req.topics.len(), 1);
        assert_eq!(req.topics[0].topic_id, id);
        let p = &req.topics[0].partitions;
        assert_eq!((p[0].fetch_offset, p[0].current_leader_epoch), (5, 3));
        assert_eq!((p[1].fetch_offset, p[1].current_leader_epoch), (6, -1));
        assert_eq!((p[1].log_start_offset, p[1].last_fetched_epoch), (-1, -1));
        assert_eq!(p[1].partition_max_bytes, 1_048_576);
        assert!(matches!(
            sessions.build(&prepared, &config, &c, Some(3)),
            Err(Error::UnsupportedVersion(_))
        ));
        assert!(matches!(
            sessions.build(&prepared, &config, &c, None),
            Err(Error::UnsupportedVersion(_))
        ));
        let without_id = prepared_one(2, tp("b", 0));
        let (_, sent) = sessions.build(&without_id, &config, &c, Some(17)).unwrap();
        assert_eq!(sent.version, 12);
        assert_eq!(fetch_version(true, 3), None);
        assert_eq!(fetch_version(false, 9), Some(9));
    }

    fn prepared_one(node: i32, t: TopicPartition) -> PreparedFetch {
        PreparedFetch {
            node,
            partitions: vec![(t, FetchPosition::new(0))],
        }
    }

    #[test]
    fn responses_match_by_id_or_name_and_top_level_errors_fail_all() {
        let id = Uuid::from_u64_pair(1, 2);
        let c = cluster(&[("a", &[1], id)]);
        let mut sessions = FetchSessions::new();
        let (_, sent) = sessions
            .build(
                &prepared(1, &[(tp("a", 0), 0)]),
                &FetchConfig::default(),
                &c,
                Some(17),
            )
            .unwrap();
        let by_id: HashMap<Uuid, Arc<str>> = [(id, Arc::from("a"))].into_iter().collect();
        let out = completed_fetches(&sent.data, answer(0, id, &[(0, plain(0, &["x"]))]), &by_id);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].partition(), &tp("a", 0));
        let by_name = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "a".into(),
                partitions: vec![data(plain(0, &["x"]), 1)],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            completed_fetches(&sent.data, by_name, &HashMap::new()).len(),
            1
        );
        let resp = FetchResponse {
            error_code: ErrorCode::UnknownServerError.code(),
            ..Default::default()
        };
        let out = completed_fetches(&sent.data, resp, &by_id);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].error, ErrorCode::UnknownServerError);
        // Through the session: a top-level error that is not a session error fails all.
        let resp = FetchResponse {
            error_code: ErrorCode::TopicAuthorizationFailed.code(),
            ..Default::default()
        };
        let out = sessions.handle_response(&sent, resp).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].error, ErrorCode::TopicAuthorizationFailed);
    }

    #[test]
    fn session_requests_list_only_changes_and_answers_only_news() {
        let id = Uuid::from_u64_pair(1, 2);
        let c = cluster(&[("a", &[1, 1, 1, 1], id)]);
        let config = FetchConfig::default();
        let mut sessions = FetchSessions::new();
        let all = [(tp("a", 0), 0), (tp("a", 1), 0), (tp("a", 2), 0)];
        let (_, sent) = sessions
            .build(&prepared(1, &all), &config, &c, Some(17))
            .unwrap();
        // The broker creates session 7 and answers every partition (a full answer).
        let full = answer(
            7,
            id,
            &[(0, plain(0, &["x0"])), (1, Bytes::new()), (2, Bytes::new())],
        );
        let out = sessions.handle_response(&sent, full).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(sessions.handler(1).unwrap().session_id(), 7);

        // a-0 was consumed (offset 1), a-1 is unchanged, a-2 has buffered data (left out),
        // a-3 is newly assigned.
        let next = [(tp("a", 0), 1), (tp("a", 1), 0), (tp("a", 3), 0)];
        let (req, sent) = sessions
            .build(&prepared(1, &next), &config, &c, Some(17))
            .unwrap();
        assert_eq!((req.session_id, req.session_epoch), (7, 1));
        let listed: Vec<(i32, i64)> = req.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.fetch_offset))
            .collect();
        assert_eq!(listed, vec![(3, 0), (0, 1)]);
        assert_eq!(req.forgotten_topics_data.len(), 1);
        assert_eq!(req.forgotten_topics_data[0].topic_id, id);
        assert_eq!(req.forgotten_topics_data[0].partitions, vec![2]);
        // The answer only names a-3: a-0 and a-1 get nothing and keep their positions.
        let out = sessions
            .handle_response(&sent, answer(7, id, &[(3, plain(0, &["y"]))]))
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].partition(), &tp("a", 3));
        assert_eq!(out[0].fetch_offset, 0);

        // Nothing changed: an empty incremental request, epoch 2.
        let next = [(tp("a", 0), 1), (tp("a", 1), 0), (tp("a", 3), 0)];
        let (req, sent) = sessions
            .build(&prepared(1, &next), &config, &c, Some(17))
            .unwrap();
        assert_eq!((req.session_id, req.session_epoch), (7, 2));
        assert!(req.topics.is_empty() && req.forgotten_topics_data.is_empty());
        // An answer for a partition outside the session is rejected; the next is full.
        let bad = answer(7, id, &[(2, Bytes::new())]);
        assert!(matches!(
            sessions.handle_response(&sent, bad),
            Err(Error::Protocol(_))
        ));
        let (req, _) = sessions
            .build(&prepared(1, &next), &config, &c, Some(17))
            .unwrap();
        assert_eq!((req.session_id, req.session_epoch), (7, 0));
        assert_eq!(req.topics[0].partitions.len(), 3);
    }

    #[test]
    fn session_errors_and_failures_restart_with_a_full_request() {
        let id = Uuid::from_u64_pair(1, 2);
        let c = cluster(&[("a", &[1], id)]);
        let config = FetchConfig::default();
        let p = prepared(1, &[(tp("a", 0), 0)]);
        let established = |sessions: &mut FetchSessions| {
            let (_, sent) = sessions.build(&p, &config, &c, Some(17)).unwrap();
            sessions
                .handle_response(&sent, answer(9, id, &[(0, Bytes::new())]))
                .unwrap();
            let (req, sent) = sessions.build(&p, &config, &c, Some(17)).unwrap();
            assert_eq!((req.session_id, req.session_epoch), (9, 1));
            sent
        };
        let error = |code: ErrorCode| FetchResponse {
            error_code: code.code(),
            ..Default::default()
        };

        let mut sessions = FetchSessions::new();
        let sent = established(&mut sessions);
        let out = sessions
            .handle_response(&sent, error(ErrorCode::FetchSessionIdNotFound))
            .unwrap();
        assert!(out.is_empty());
        let (req, _) = sessions.build(&p, &config, &c, Some(17)).unwrap();
        assert_eq!((req.session_id, req.session_epoch), (0, 0));

        let mut sessions = FetchSessions::new();
        let sent = established(&mut sessions);
        let out = sessions
            .handle_response(&sent, error(ErrorCode::InvalidFetchSessionEpoch))
            .unwrap();
        assert!(out.is_empty());
        let (req, _) = sessions.build(&p, &config, &c, Some(17)).unwrap();
        assert_eq!((req.session_id, req.session_epoch), (9, 0));
        assert_eq!(req.topics[0].partitions.len(), 1);

        let mut sessions = FetchSessions::new();
        let sent = established(&mut sessions);
        let e = sessions
            .handle_response(&sent, error(ErrorCode::FetchSessionTopicIdError))
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::FetchSessionTopicIdError));

        let mut sessions = FetchSessions::new();
        let sent = established(&mut sessions);
        sessions.handle_error(&sent, &Error::Timeout("Fetch".into()));
        let (req, _) = sessions.build(&p, &config, &c, Some(17)).unwrap();
        assert_eq!((req.session_id, req.session_epoch), (9, 0));

        // A broker that declines sessions: full requests every time.
        let mut sessions = FetchSessions::new();
        for _ in 0..3 {
            let (req, sent) = sessions.build(&p, &config, &c, Some(17)).unwrap();
            assert_eq!((req.session_id, req.session_epoch), (0, 0));
            let out = sessions
                .handle_response(&sent, answer(0, id, &[(0, Bytes::new())]))
                .unwrap();
            assert_eq!(out.len(), 1);
        }
        // Before v7 there are no session fields: a session is never assumed.
        let mut sessions = FetchSessions::new();
        let sent = established(&mut sessions);
        sessions.handle_response(&sent, answer(9, id, &[])).unwrap();
        let (req, sent) = sessions.build(&p, &config, &c, Some(6)).unwrap();
        assert_eq!(sent.version, 6);
        assert_eq!(req.session_epoch, 0);
        assert_eq!(req.topics[0].partitions.len(), 1);
    }

    #[test]
    fn replaced_partitions_are_forgotten_from_v13_only() {
        let old = Uuid::from_u64_pair(1, 1);
        let new = Uuid::from_u64_pair(2, 2);
        let data = FetchRequestData {
            to_send: vec![(
                tp("a", 0),
                PartitionFetchData {
                    topic_id: new,
                    fetch_offset: 0,
                    log_start_offset: -1,
                    max_bytes: 1,
                    current_leader_epoch: None,
                    last_fetched_epoch: None,
                },
            )],
            to_forget: vec![],
            to_replace: vec![super::super::fetch_session::TopicIdPartition {
                topic_id: old,
                tp: tp("a", 0),
            }],
            session_partitions: Default::default(),
            metadata: super::super::fetch_session::FetchMetadata {
                session_id: 3,
                epoch: 4,
            },
            can_use_topic_ids: true,
        };
        let req = write_fetch_request(&data, &FetchConfig::default(), 13);
        assert_eq!((req.session_id, req.session_epoch), (3, 4));
        assert_eq!(req.forgotten_topics_data.len(), 1);
        assert_eq!(req.forgotten_topics_data[0].topic_id, old);
        assert_eq!(req.topics[0].topic_id, new);
        let req = write_fetch_request(&data, &FetchConfig::default(), 12);
        assert!(req.forgotten_topics_data.is_empty());
    }

    #[test]
    fn close_requests_end_live_sessions_only() {
        let id = Uuid::from_u64_pair(1, 2);
        let c = cluster(&[("a", &[1, 2], id)]);
        let config = FetchConfig::default();
        let mut sessions = FetchSessions::new();
        let p1 = prepared(1, &[(tp("a", 0), 0)]);
        let (_, sent) = sessions.build(&p1, &config, &c, Some(17)).unwrap();
        sessions
            .handle_response(&sent, answer(9, id, &[(0, Bytes::new())]))
            .unwrap();
        // Broker 2 declined sessions.
        let p2 = prepared(2, &[(tp("a", 1), 0)]);
        let (_, sent) = sessions.build(&p2, &config, &c, Some(17)).unwrap();
        sessions
            .handle_response(&sent, answer(0, id, &[(1, Bytes::new())]))
            .unwrap();
        // Only brokers with a session are asked about (broker 2 is not).
        let mut asked = Vec::new();
        // Not connected (`None`) or too old: nothing, and the session stays as it was.
        assert!(sessions
            .close_requests(&config, |n| {
                asked.push(n);
                None
            })
            .is_empty());
        assert_eq!(asked, [1]);
        assert!(sessions.close_requests(&config, |_| Some(6)).is_empty());
        assert_eq!(
            (
                sessions.handler(1).unwrap().next_metadata().session_id,
                sessions.handler(1).unwrap().next_metadata().epoch
            ),
            (9, 1)
        );
        let close = sessions.close_requests(&config, |_| Some(17));
        assert_eq!(close.len(), 1);
        let (req, sent) = &close[0];
        assert_eq!((sent.node, sent.version), (1, 17));
        assert_eq!((req.session_id, req.session_epoch), (9, -1));
        assert_eq!(req.max_wait_ms, 500);
        assert!(req.topics.is_empty() && req.forgotten_topics_data.is_empty());
    }

    #[test]
    fn session_closes_get_the_time_left_at_most_the_request_timeout() {
        let now = Instant::now();
        let rt = Duration::from_secs(30);
        let s = Duration::from_secs(1);
        assert_eq!(close_sessions_deadline(now + s, now, rt), Some(now + s));
        assert_eq!(
            close_sessions_deadline(now + 60 * s, now, rt),
            Some(now + rt)
        );
        assert_eq!(close_sessions_deadline(now, now, rt), None);
        assert_eq!(close_sessions_deadline(now, now + s, rt), None);
    }

    #[test]
    fn records_in_order_from_position_bounded_per_collect() {
        let mut s = subs_at(&[(tp("a", 0), 2)]);
        let records = concat(&[plain(0, &["v0", "v1", "v2", "v3"]), plain(4, &["v4", "v5"])]);
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::new(tp("a", 0), 2, data(records, 6))]);
        let config = FetchConfig::default();
        let c = buf.collect(&mut s, &config, 3);
        assert_eq!(
            values(&c.records),
            vec![(2, "v2".into()), (3, "v3".into()), (4, "v4".into())]
        );
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 5);
        assert_eq!(buf.buffered_partitions().len(), 1);
        let r = &c.records[0];
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.timestamp, 1_002);
        assert_eq!(r.headers[0].key, "h");
        assert_eq!((r.serialized_key_size, r.serialized_value_size), (1, 2));
        let c = buf.collect(&mut s, &config, 3);
        assert_eq!(values(&c.records), vec![(5, "v5".into())]);
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 6);
        assert!(buf.is_empty());
        assert_eq!(s.state(&tp("a", 0)).unwrap().high_watermark, Some(6));
    }

    #[test]
    fn collect_spans_partitions() {
        let mut s = subs_at(&[(tp("a", 0), 0), (tp("a", 1), 0)]);
        let mut buf = FetchBuffer::new();
        buf.extend([
            CompletedFetch::new(tp("a", 0), 0, data(plain(0, &["a0", "a1"]), 2)),
            CompletedFetch::new(tp("a", 1), 0, data(plain(0, &["b0", "b1"]), 2)),
        ]);
        let c = buf.collect(&mut s, &FetchConfig::default(), 3);
        assert_eq!(c.records.len(), 3);
        assert_eq!(&*c.records[2].topic, "a");
        assert_eq!(c.records[2].partition, 1);
        let c = buf.collect(&mut s, &FetchConfig::default(), 3);
        assert_eq!(values(&c.records), vec![(1, "b1".into())]);
    }

    #[test]
    fn every_codec_decompresses() {
        for codec in Compression::ALL {
            let mut s = subs_at(&[(tp("a", 0), 0)]);
            let opts = BatchOptions {
                compression: codec,
                ..BatchOptions::default()
            };
            let many: Vec<String> = (0..50).map(|i| format!("value-{i}")).collect();
            let refs: Vec<&str> = many.iter().map(String::as_str).collect();
            let mut buf = FetchBuffer::new();
            buf.extend([CompletedFetch::new(
                tp("a", 0),
                0,
                data(batch(0, &refs, opts), 50),
            )]);
            let c = buf.collect(&mut s, &FetchConfig::default(), 500);
            assert!(c.error.is_none(), "{codec}: {:?}", c.error);
            assert_eq!(c.records.len(), 50, "{codec}");
            assert_eq!(values(&c.records)[49], (49, "value-49".into()));
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let mut s = subs_at(&[(tp("a", 0), 0)]);
        let big = "x".repeat(10_000);
        let opts = BatchOptions {
            compression: Compression::Gzip,
            ..BatchOptions::default()
        };
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::new(
            tp("a", 0),
            0,
            data(batch(0, &[&big], opts), 1),
        )]);
        let config = FetchConfig {
            max_decompressed_batch: 1_000,
            ..FetchConfig::default()
        };
        let c = buf.collect(&mut s, &config, 10);
        assert!(c.records.is_empty());
        assert_eq!(c.error.unwrap().code(), Some(ErrorCode::CorruptMessage));
    }

    #[test]
    fn crc_checked_when_enabled() {
        let good = plain(0, &["hello"]);
        let mut bad = BytesMut::from(&good[..]);
        let n = bad.len();
        bad[n - 6] ^= 0x20; // inside the value: still decodes, CRC fails
        let bad = bad.freeze();
        let mut s = subs_at(&[(tp("a", 0), 0)]);
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::new(tp("a", 0), 0, data(bad.clone(), 1))]);
        let c = buf.collect(&mut s, &FetchConfig::default(), 10);
        let e = c.error.unwrap();
        assert_eq!(e.code(), Some(ErrorCode::CorruptMessage));
        assert!(e.to_string().contains("a-0"), "{e}");
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 0);
        assert!(buf.is_empty());

        buf.extend([CompletedFetch::new(tp("a", 0), 0, data(bad, 1))]);
        let config = FetchConfig {
            check_crcs: false,
            ..FetchConfig::default()
        };
        let c = buf.collect(&mut s, &config, 10);
        assert!(c.error.is_none(), "{:?}", c.error);
        assert_eq!(c.records.len(), 1);
    }

    #[test]
    fn error_after_records_is_reported_next_time() {
        let good = plain(0, &["a", "b"]);
        let mut bad = BytesMut::from(&plain(2, &["c"])[..]);
        let n = bad.len();
        bad[n - 5] ^= 0x01;
        let mut s = subs_at(&[(tp("a", 0), 0)]);
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::new(
            tp("a", 0),
            0,
            data(concat(&[good, bad.freeze()]), 3),
        )]);
        let config = FetchConfig::default();
        let c = buf.collect(&mut s, &config, 10);
        assert_eq!(c.records.len(), 2);
        assert!(c.error.is_none());
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 2);
        let c = buf.collect(&mut s, &config, 10);
        assert!(c.records.is_empty());
        assert_eq!(c.error.unwrap().code(), Some(ErrorCode::CorruptMessage));
        assert!(buf.is_empty());
    }

    #[test]
    fn control_batches_skipped_and_position_moves_past_them() {
        let mut s = subs_at(&[(tp("a", 0), 0)]);
        let records = concat(&[txn(0, 7, &["t0", "t1"]), marker(2, 7, false)]);
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::new(tp("a", 0), 0, data(records, 3))]);
        let c = buf.collect(&mut s, &FetchConfig::default(), 10);
        assert_eq!(values(&c.records), vec![(0, "t0".into()), (1, "t1".into())]);
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 3);
    }

    fn aborted(list: &[(i64, i64)]) -> Option<Vec<AbortedTransaction>> {
        Some(
            list.iter()
                .map(|(producer_id, first_offset)| AbortedTransaction {
                    producer_id: *producer_id,
                    first_offset: *first_offset,
                    ..Default::default()
                })
                .collect(),
        )
    }

    /// Producer 7 aborts twice, producer 8 commits in between, a non-transactional batch.
    fn transactional_log() -> (Bytes, Option<Vec<AbortedTransaction>>) {
        let records = concat(&[
            txn(0, 7, &["a0", "a1"]), // 0-1 aborted
            txn(2, 8, &["c2"]),       // 2 committed
            marker(3, 7, true),       // 3 abort 7
            plain(4, &["p4"]),        // 4 plain
            marker(5, 8, false),      // 5 commit 8
            txn(6, 7, &["a6"]),       // 6 aborted again
            txn(7, 8, &["c7", "c8"]), // 7-8 committed
            marker(9, 7, true),       // 9 abort 7
            txn(10, 7, &["c10"]),     // 10 committed
            marker(11, 7, false),     // 11 commit 7
            marker(12, 8, false),     // 12 commit 8
        ]);
        (records, aborted(&[(7, 0), (7, 6)]))
    }

    #[test]
    fn read_committed_drops_aborted_transactions() {
        let (records, aborted_list) = transactional_log();
        let mut s = subs_at(&[(tp("a", 0), 0)]);
        let mut buf = FetchBuffer::new();
        let mut d = data(records, 13);
        d.aborted_transactions = aborted_list;
        buf.extend([CompletedFetch::new(tp("a", 0), 0, d)]);
        let config = FetchConfig {
            read_committed: true,
            ..FetchConfig::default()
        };
        let c = buf.collect(&mut s, &config, 100);
        assert_eq!(
            values(&c.records),
            vec![
                (2, "c2".into()),
                (4, "p4".into()),
                (7, "c7".into()),
                (8, "c8".into()),
                (10, "c10".into())
            ]
        );
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 13);
    }

    #[test]
    fn read_committed_from_the_middle_of_an_aborted_transaction() {
        let (records, aborted_list) = transactional_log();
        let mut s = subs_at(&[(tp("a", 0), 1)]);
        let mut d = data(records, 13);
        d.aborted_transactions = aborted_list;
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::new(tp("a", 0), 1, d)]);
        let config = FetchConfig {
            read_committed: true,
            ..FetchConfig::default()
        };
        let c = buf.collect(&mut s, &config, 2);
        assert_eq!(values(&c.records), vec![(2, "c2".into()), (4, "p4".into())]);
        let c = buf.collect(&mut s, &config, 100);
        assert_eq!(
            values(&c.records),
            vec![(7, "c7".into()), (8, "c8".into()), (10, "c10".into())]
        );
    }

    #[test]
    fn read_uncommitted_returns_everything_but_markers() {
        let (records, aborted_list) = transactional_log();
        let mut s = subs_at(&[(tp("a", 0), 0)]);
        let mut d = data(records, 13);
        d.aborted_transactions = aborted_list;
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::new(tp("a", 0), 0, d)]);
        let c = buf.collect(&mut s, &FetchConfig::default(), 100);
        let offsets: Vec<i64> = c.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, 2, 4, 6, 7, 8, 10]);
    }

    #[test]
    fn out_of_range_resets_or_fails() {
        let mut s = subs_at(&[(tp("a", 0), 50)]);
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::failed(
            tp("a", 0),
            50,
            ErrorCode::OffsetOutOfRange,
        )]);
        let c = buf.collect(&mut s, &FetchConfig::default(), 10);
        assert!(c.error.is_none());
        assert!(s.position(&tp("a", 0)).is_none());
        assert_eq!(
            s.resets_due(std::time::Instant::now())[0].1,
            ResetStrategy::Earliest
        );

        let mut s = SubscriptionState::new(None);
        s.assign([tp("a", 0)]);
        s.seek(&tp("a", 0), 50).unwrap();
        buf.extend([CompletedFetch::failed(
            tp("a", 0),
            50,
            ErrorCode::OffsetOutOfRange,
        )]);
        let c = buf.collect(&mut s, &FetchConfig::default(), 10);
        let e = c.error.unwrap();
        assert_eq!(e.code(), Some(ErrorCode::OffsetOutOfRange));
        assert!(e.to_string().contains("a-0"), "{e}");
        assert!(buf.is_empty());
    }

    #[test]
    fn stale_leader_errors_ask_for_metadata() {
        for code in [
            ErrorCode::NotLeaderOrFollower,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::FencedLeaderEpoch,
        ] {
            let mut s = subs_at(&[(tp("a", 0), 0)]);
            let mut buf = FetchBuffer::new();
            buf.extend([CompletedFetch::failed(tp("a", 0), 0, code)]);
            let c = buf.collect(&mut s, &FetchConfig::default(), 10);
            assert!(c.metadata_refresh, "{code}");
            assert!(c.error.is_none());
            assert!(buf.is_empty());
        }
        let mut s = subs_at(&[(tp("a", 0), 0)]);
        let mut buf = FetchBuffer::new();
        buf.extend([CompletedFetch::failed(
            tp("a", 0),
            0,
            ErrorCode::TopicAuthorizationFailed,
        )]);
        let c = buf.collect(&mut s, &FetchConfig::default(), 10);
        assert_eq!(
            c.error.unwrap().code(),
            Some(ErrorCode::TopicAuthorizationFailed)
        );
    }

    #[test]
    fn stale_and_paused_data() {
        let mut s = subs_at(&[(tp("a", 0), 0), (tp("a", 1), 0)]);
        let mut buf = FetchBuffer::new();
        buf.extend([
            CompletedFetch::new(tp("a", 0), 0, data(plain(0, &["x"]), 1)),
            CompletedFetch::new(tp("a", 1), 0, data(plain(0, &["y"]), 1)),
        ]);
        s.seek(&tp("a", 0), 10).unwrap();
        s.pause(&[tp("a", 1)]).unwrap();
        let c = buf.collect(&mut s, &FetchConfig::default(), 10);
        assert!(c.records.is_empty());
        // The stale fetch is gone, the paused one kept.
        assert_eq!(
            buf.buffered_partitions(),
            [tp("a", 1)].into_iter().collect::<HashSet<_>>()
        );
        s.resume(&[tp("a", 1)]).unwrap();
        let c = buf.collect(&mut s, &FetchConfig::default(), 10);
        assert_eq!(values(&c.records), vec![(0, "y".into())]);
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 10);
    }

    #[test]
    fn list_offsets_request_groups_topics() {
        let req = build_list_offsets_request(
            &[(tp("a", 0), -2), (tp("b", 0), -1), (tp("a", 1), 123)],
            true,
            Duration::from_secs(30),
        );
        assert_eq!(req.isolation_level, 1);
        assert_eq!(req.replica_id, -1);
        assert_eq!(req.topics.len(), 2);
        assert_eq!(req.topics[0].partitions.len(), 2);
        assert_eq!(req.topics[0].partitions[1].timestamp, 123);
        assert_eq!(req.timeout_ms, 30_000);
    }
}
