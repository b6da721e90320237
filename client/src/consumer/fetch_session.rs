//! Incremental fetch sessions, client side (KIP-227): Java's `FetchSessionHandler` and
//! `FetchMetadata`, one handler per broker, pure and deterministic (no I/O).
//!
//! A fetch session lets a consumer stop listing every partition in every Fetch request. The
//! first request of a session is *full* (epoch 0): it lists every partition, and the broker
//! answers with a new session id (or 0 when it declines sessions). The next requests are
//! *incremental* (that session id, epoch 1, 2, ...): they list only the partitions added to
//! the session or whose fetch parameters changed (offset, max bytes, leader epoch...), and
//! name the partitions to drop in `forgotten_topics_data`; the broker answers only for the
//! partitions with something new (records, a changed high watermark / log start offset, an
//! error). A partition missing from an incremental answer is not an error: it keeps its
//! position and stays in the session.
//!
//! Behaviour, as Java's:
//! * [`FetchSessionHandler::new_builder`] / [`FetchRequestBuilder::add`] /
//!   [`FetchRequestBuilder::build`]: the partitions wanted next, in order, become a full
//!   request (the session is replaced by them) or an incremental one (added, altered,
//!   removed; a partition whose topic id changed is *replaced*: forgotten under its old id
//!   and sent again, which Fetch v13+ expresses).
//! * [`FetchSessionHandler::handle_response`] checks the answer against the session (a full
//!   answer must hold exactly the session's partitions, an incremental one only session
//!   partitions; from v13 every topic id must be known) and picks the next request's
//!   metadata: a new session id gives epoch 1, each valid incremental answer the next epoch
//!   (wrapping to 1 after `i32::MAX`), session id 0 means the broker has no session for us
//!   (full requests again). FETCH_SESSION_ID_NOT_FOUND starts over without a session id;
//!   other top-level errors and invalid answers close the session and ask for a new one
//!   (the session id with epoch 0).
//! * [`FetchSessionHandler::handle_error`]: the request failed (connection lost, timeout):
//!   the next request closes the session and asks for a new one.
//! * [`FetchSessionHandler::notify_close`]: the next request closes the session without
//!   creating a new one (epoch -1), as a closing consumer sends.
//!
//! The caller keeps at most one request in flight per handler (Java's
//! `nodesWithPendingFetchRequests`): each answer decides the next request's metadata.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use kafka_wire::messages::FetchResponse;
use kafka_wire::{ErrorCode, Uuid};

use crate::producer::TopicPartition;

pub use kafka_wire::fetch_session::{FINAL_EPOCH, INITIAL_EPOCH, INVALID_SESSION_ID};

/// The session id and epoch a Fetch request carries (Java's `FetchMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FetchMetadata {
    /// The session id (0: none).
    pub session_id: i32,
    /// The epoch: 0 creates a session, -1 closes it, 1 and up are incremental requests.
    pub epoch: i32,
}

impl FetchMetadata {
    /// A new handler's metadata: full request, create a session.
    pub const INITIAL: FetchMetadata = FetchMetadata {
        session_id: INVALID_SESSION_ID,
        epoch: INITIAL_EPOCH,
    };

    /// A sessionless full request (what requests before v7 implicitly are).
    pub const LEGACY: FetchMetadata = FetchMetadata {
        session_id: INVALID_SESSION_ID,
        epoch: FINAL_EPOCH,
    };

    /// The epoch after `prev` (Kafka's `FetchMetadata.nextEpoch`, see
    /// [`kafka_wire::fetch_session::next_epoch`]).
    pub fn next_epoch(prev: i32) -> i32 {
        kafka_wire::fetch_session::next_epoch(prev)
    }

    /// Whether a request with this metadata lists every partition (epoch 0 or -1).
    pub fn is_full(&self) -> bool {
        self.epoch == INITIAL_EPOCH || self.epoch == FINAL_EPOCH
    }

    /// The next request closes this session and creates none.
    pub fn next_close_existing(&self) -> FetchMetadata {
        FetchMetadata {
            session_id: self.session_id,
            epoch: FINAL_EPOCH,
        }
    }

    /// The next request closes this session and asks for a new one.
    pub fn next_close_existing_attempt_new(&self) -> FetchMetadata {
        FetchMetadata {
            session_id: self.session_id,
            epoch: INITIAL_EPOCH,
        }
    }

    /// The first incremental request of the new session `session_id`.
    pub fn new_incremental(session_id: i32) -> FetchMetadata {
        FetchMetadata {
            session_id,
            epoch: Self::next_epoch(INITIAL_EPOCH),
        }
    }

    /// The next incremental request of this session.
    pub fn next_incremental(&self) -> FetchMetadata {
        FetchMetadata {
            session_id: self.session_id,
            epoch: Self::next_epoch(self.epoch),
        }
    }
}

impl fmt::Display for FetchMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.session_id == INVALID_SESSION_ID {
            f.write_str("(sessionId=INVALID, ")?;
        } else {
            write!(f, "(sessionId={}, ", self.session_id)?;
        }
        match self.epoch {
            INITIAL_EPOCH => f.write_str("epoch=INITIAL)"),
            FINAL_EPOCH => f.write_str("epoch=FINAL)"),
            e => write!(f, "epoch={e})"),
        }
    }
}

/// What is fetched for one partition (Java's `FetchRequest.PartitionData`); a change of any
/// field since the last request makes the partition *altered* (sent again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionFetchData {
    /// The topic id ([`Uuid::ZERO`] when unknown: the request then uses names, v12 or less).
    pub topic_id: Uuid,
    /// The offset to fetch from.
    pub fetch_offset: i64,
    /// The log start offset (-1 for consumers).
    pub log_start_offset: i64,
    /// `max.partition.fetch.bytes`.
    pub max_bytes: i32,
    /// The leader epoch the position was read in, when known.
    pub current_leader_epoch: Option<i32>,
    /// The epoch of the last fetched record, when known (followers; `None` for consumers).
    pub last_fetched_epoch: Option<i32>,
}

/// A partition and the topic id it was known by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicIdPartition {
    /// The topic id ([`Uuid::ZERO`] when unknown).
    pub topic_id: Uuid,
    /// The partition.
    pub tp: TopicPartition,
}

impl TopicIdPartition {
    fn new(topic_id: Uuid, tp: &TopicPartition) -> Self {
        TopicIdPartition {
            topic_id,
            tp: tp.clone(),
        }
    }
}

/// A session's partitions in session order with what each is fetched with, indexed by
/// partition. Immutable once built: the handler and the requests written from it share one
/// (an answer is read against the session its request was written for, without a copy).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SessionPartitions {
    partitions: Vec<(TopicPartition, PartitionFetchData)>,
    index: HashMap<TopicPartition, usize>,
}

impl SessionPartitions {
    /// `partitions` (each listed once), in order.
    fn new(partitions: Vec<(TopicPartition, PartitionFetchData)>) -> Self {
        let index = partitions
            .iter()
            .enumerate()
            .map(|(i, (tp, _))| (tp.clone(), i))
            .collect();
        SessionPartitions { partitions, index }
    }

    /// The partitions, in session order.
    pub fn as_slice(&self) -> &[(TopicPartition, PartitionFetchData)] {
        &self.partitions
    }

    /// What `tp` is fetched with, when it is in the session.
    pub fn get(&self, tp: &TopicPartition) -> Option<&PartitionFetchData> {
        self.index.get(tp).map(|&i| &self.partitions[i].1)
    }

    /// Whether `tp` is in the session.
    pub fn contains(&self, tp: &TopicPartition) -> bool {
        self.index.contains_key(tp)
    }

    /// How many partitions the session has.
    pub fn len(&self) -> usize {
        self.partitions.len()
    }

    /// Whether the session has no partitions.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }
}

/// What one Fetch request carries (Java's `FetchSessionHandler.FetchRequestData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequestData {
    /// The partitions listed in the request, in order: all of them for a full request; for
    /// an incremental one the added partitions, then the altered and replaced ones.
    pub to_send: Vec<(TopicPartition, PartitionFetchData)>,
    /// Partitions removed from the session (`forgotten_topics_data`).
    pub to_forget: Vec<TopicIdPartition>,
    /// Partitions whose topic id changed, under their old id: forgotten too from Fetch v13
    /// (before v13 the forget list names topics, which would drop the new partition).
    pub to_replace: Vec<TopicIdPartition>,
    /// Every partition of the session after this request, in session order (what an answer
    /// may name, with the offset each is fetched from); shared with the handler.
    pub session_partitions: Arc<SessionPartitions>,
    /// The session id and epoch to send.
    pub metadata: FetchMetadata,
    /// Whether every topic involved has an id (the request may use v13+).
    pub can_use_topic_ids: bool,
}

impl FetchRequestData {
    /// The fetch parameters `tp` has in the session after this request.
    pub fn session_partition(&self, tp: &TopicPartition) -> Option<&PartitionFetchData> {
        self.session_partitions.get(tp)
    }
}

/// The fetch session with one broker (Java's `FetchSessionHandler`).
#[derive(Debug, Clone)]
pub struct FetchSessionHandler {
    node: i32,
    next_metadata: FetchMetadata,
    /// The session's partitions, in session order.
    session_partitions: Arc<SessionPartitions>,
    /// Topic ids of the session's topics (empty when the session does not use ids).
    session_topic_names: HashMap<Uuid, Arc<str>>,
}

impl FetchSessionHandler {
    /// A handler for broker `node`, with no session yet.
    pub fn new(node: i32) -> Self {
        FetchSessionHandler {
            node,
            next_metadata: FetchMetadata::INITIAL,
            session_partitions: Arc::default(),
            session_topic_names: HashMap::new(),
        }
    }

    /// The broker.
    pub fn node(&self) -> i32 {
        self.node
    }

    /// The session id the next request carries (0: none).
    pub fn session_id(&self) -> i32 {
        self.next_metadata.session_id
    }

    /// The metadata of the next request.
    pub fn next_metadata(&self) -> FetchMetadata {
        self.next_metadata
    }

    /// The session's partitions, in session order.
    pub fn session_partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.session_partitions.as_slice().iter().map(|(tp, _)| tp)
    }

    /// The names of the session's topics by id (used to read v13+ answers).
    pub fn session_topic_names(&self) -> &HashMap<Uuid, Arc<str>> {
        &self.session_topic_names
    }

    /// Starts the next request: [`add`](FetchRequestBuilder::add) the partitions wanted, in
    /// order, then [`build`](FetchRequestBuilder::build).
    pub fn new_builder(&mut self) -> FetchRequestBuilder<'_> {
        FetchRequestBuilder {
            handler: self,
            next: Vec::new(),
            index: HashMap::new(),
            topic_names: HashMap::new(),
            partitions_without_topic_ids: 0,
        }
    }

    /// The broker cannot use sessions (Fetch before v7, which has no session fields): the
    /// next requests are full.
    pub fn reset(&mut self) {
        self.next_metadata = FetchMetadata::INITIAL;
    }

    /// A Fetch answer to the request last built, sent at `version`. Returns whether it is
    /// valid: when false, none of its partitions may be used and the next request is full.
    pub fn handle_response(&mut self, response: &FetchResponse, version: i16) -> bool {
        let error = ErrorCode::from(response.error_code);
        if !error.is_ok() {
            tracing::info!(
                node = self.node,
                metadata = %self.next_metadata,
                %error,
                "the broker could not process the fetch request"
            );
            self.next_metadata = if error == ErrorCode::FetchSessionIdNotFound {
                FetchMetadata::INITIAL
            } else {
                self.next_metadata.next_close_existing_attempt_new()
            };
            return false;
        }
        let (partitions, ids) = self.response_partitions(response, version);
        if self.next_metadata.is_full() {
            if partitions.is_empty() && response.throttle_time_ms > 0 {
                // KIP-219: a throttled broker answers a full request with nothing.
                tracing::debug!(
                    node = self.node,
                    throttle_ms = response.throttle_time_ms,
                    "empty full fetch response: throttled"
                );
                self.next_metadata = FetchMetadata::INITIAL;
                return false;
            }
            if let Some(problem) = self.verify_full_response(&partitions, &ids, version) {
                tracing::info!(node = self.node, %problem, "invalid full fetch response");
                self.next_metadata = FetchMetadata::INITIAL;
                return false;
            }
            if response.session_id == INVALID_SESSION_ID {
                tracing::debug!(
                    node = self.node,
                    partitions = partitions.len(),
                    "full fetch response"
                );
                self.next_metadata = FetchMetadata::INITIAL;
            } else {
                tracing::debug!(
                    node = self.node,
                    session_id = response.session_id,
                    partitions = partitions.len(),
                    "full fetch response created a fetch session"
                );
                self.next_metadata = FetchMetadata::new_incremental(response.session_id);
            }
            true
        } else {
            if let Some(problem) = self.verify_incremental_response(&partitions, &ids, version) {
                tracing::info!(node = self.node, %problem, "invalid incremental fetch response");
                self.next_metadata = self.next_metadata.next_close_existing_attempt_new();
                return false;
            }
            if response.session_id == INVALID_SESSION_ID {
                tracing::debug!(
                    node = self.node,
                    session_id = self.next_metadata.session_id,
                    "incremental fetch response closed the session"
                );
                self.next_metadata = FetchMetadata::INITIAL;
            } else {
                tracing::trace!(
                    node = self.node,
                    session_id = response.session_id,
                    partitions = partitions.len(),
                    implied = self
                        .session_partitions
                        .len()
                        .saturating_sub(partitions.len()),
                    "incremental fetch response"
                );
                self.next_metadata = self.next_metadata.next_incremental();
            }
            true
        }
    }

    /// The closing consumer's last request closes the session (epoch -1, no partitions).
    pub fn notify_close(&mut self) {
        tracing::debug!(
            node = self.node,
            session_id = self.session_id(),
            "closing the fetch session"
        );
        self.next_metadata = self.next_metadata.next_close_existing();
    }

    /// The request failed (no answer): the next one closes the session and asks for a new
    /// one.
    pub fn handle_error(&mut self, error: &dyn fmt::Display) {
        tracing::info!(
            node = self.node,
            metadata = %self.next_metadata,
            %error,
            "error sending a fetch request"
        );
        self.next_metadata = self.next_metadata.next_close_existing_attempt_new();
    }

    /// The partitions an answer names (topics resolved by id from v13, unknown ids left
    /// out) and the topic ids it names.
    fn response_partitions(
        &self,
        response: &FetchResponse,
        version: i16,
    ) -> (Vec<TopicPartition>, HashSet<Uuid>) {
        let mut partitions = Vec::new();
        let mut ids = HashSet::new();
        for topic in &response.responses {
            let name: Arc<str> = if version >= 13 {
                ids.insert(topic.topic_id);
                match self.session_topic_names.get(&topic.topic_id) {
                    Some(n) => n.clone(),
                    None => continue,
                }
            } else {
                Arc::from(topic.topic.as_str())
            };
            for p in &topic.partitions {
                partitions.push(TopicPartition {
                    topic: name.clone(),
                    partition: p.partition_index,
                });
            }
        }
        (partitions, ids)
    }

    fn unknown_ids(&self, ids: &HashSet<Uuid>, version: i16) -> Vec<Uuid> {
        if version < 13 {
            return Vec::new();
        }
        let mut extra: Vec<Uuid> = ids
            .iter()
            .filter(|id| !self.session_topic_names.contains_key(id))
            .copied()
            .collect();
        extra.sort();
        extra
    }

    /// Java's `verifyFullFetchResponsePartitions`: `None` when the answer names exactly the
    /// session's partitions (and only known topic ids from v13), else the problem.
    pub fn verify_full_response(
        &self,
        partitions: &[TopicPartition],
        ids: &HashSet<Uuid>,
        version: i16,
    ) -> Option<String> {
        let answered: HashSet<&TopicPartition> = partitions.iter().collect();
        let extra: Vec<&TopicPartition> = partitions
            .iter()
            .filter(|tp| !self.session_partitions.contains(tp))
            .collect();
        let omitted: Vec<&TopicPartition> = self
            .session_partitions()
            .filter(|tp| !answered.contains(tp))
            .collect();
        let extra_ids = self.unknown_ids(ids, version);
        describe_problem(&omitted, &extra, &extra_ids, partitions)
    }

    /// Java's `verifyIncrementalFetchResponsePartitions`: `None` when the answer names only
    /// session partitions (and only known topic ids from v13), else the problem.
    pub fn verify_incremental_response(
        &self,
        partitions: &[TopicPartition],
        ids: &HashSet<Uuid>,
        version: i16,
    ) -> Option<String> {
        let extra: Vec<&TopicPartition> = partitions
            .iter()
            .filter(|tp| !self.session_partitions.contains(tp))
            .collect();
        let extra_ids = self.unknown_ids(ids, version);
        describe_problem(&[], &extra, &extra_ids, partitions)
    }
}

fn describe_problem(
    omitted: &[&TopicPartition],
    extra: &[&TopicPartition],
    extra_ids: &[Uuid],
    response: &[TopicPartition],
) -> Option<String> {
    if omitted.is_empty() && extra.is_empty() && extra_ids.is_empty() {
        return None;
    }
    fn join<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
        items
            .into_iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
    let mut out = String::new();
    if !omitted.is_empty() {
        out.push_str(&format!("omittedPartitions=({}), ", join(omitted)));
    }
    if !extra.is_empty() {
        out.push_str(&format!("extraPartitions=({}), ", join(extra)));
    }
    if !extra_ids.is_empty() {
        out.push_str(&format!("extraIds=({}), ", join(extra_ids)));
    }
    out.push_str(&format!("response=({})", join(response)));
    Some(out)
}

/// The partitions wanted in the next request of a [`FetchSessionHandler`] (Java's
/// `FetchSessionHandler.Builder`).
#[derive(Debug)]
pub struct FetchRequestBuilder<'a> {
    handler: &'a mut FetchSessionHandler,
    next: Vec<(TopicPartition, PartitionFetchData)>,
    index: HashMap<TopicPartition, usize>,
    topic_names: HashMap<Uuid, Arc<str>>,
    partitions_without_topic_ids: usize,
}

impl FetchRequestBuilder<'_> {
    /// Asks for `tp` in the next request (order matters: a broker short of room answers the
    /// first partitions). Adding a partition again replaces its data in place.
    pub fn add(&mut self, tp: TopicPartition, data: PartitionFetchData) {
        if data.topic_id == Uuid::ZERO {
            self.partitions_without_topic_ids += 1;
        } else {
            self.topic_names
                .entry(data.topic_id)
                .or_insert_with(|| tp.topic.clone());
        }
        match self.index.get(&tp) {
            Some(&i) => self.next[i].1 = data,
            None => {
                self.index.insert(tp.clone(), self.next.len());
                self.next.push((tp, data));
            }
        }
    }

    /// Writes the request's data and updates the session to hold exactly the partitions
    /// added.
    pub fn build(self) -> FetchRequestData {
        let FetchRequestBuilder {
            handler,
            next,
            mut index,
            topic_names,
            partitions_without_topic_ids,
        } = self;
        let mut can_use_topic_ids = partitions_without_topic_ids == 0;
        let metadata = handler.next_metadata;
        if metadata.is_full() {
            tracing::debug!(
                node = handler.node,
                %metadata,
                partitions = next.len(),
                "built a full fetch request"
            );
            handler.session_topic_names = if can_use_topic_ids {
                topic_names
            } else {
                HashMap::new()
            };
            // The builder's index is the new session's.
            handler.session_partitions = Arc::new(SessionPartitions {
                partitions: next.clone(),
                index,
            });
            return FetchRequestData {
                session_partitions: Arc::clone(&handler.session_partitions),
                to_send: next,
                to_forget: Vec::new(),
                to_replace: Vec::new(),
                metadata,
                can_use_topic_ids,
            };
        }

        let mut removed = Vec::new();
        let mut altered = 0usize;
        let mut replaced = Vec::new();
        // Altered and replaced partitions, in session order: sent after the added ones.
        let mut moved: Vec<(TopicPartition, PartitionFetchData)> = Vec::new();
        let old = std::mem::take(&mut handler.session_partitions);
        let mut session = Vec::with_capacity(next.len());
        for (tp, prev) in old.as_slice() {
            let (tp, prev) = (tp.clone(), *prev);
            match index.remove(&tp) {
                Some(i) => {
                    let data = next[i].1;
                    if prev.topic_id != data.topic_id
                        && prev.topic_id != Uuid::ZERO
                        && data.topic_id != Uuid::ZERO
                    {
                        replaced.push(TopicIdPartition::new(prev.topic_id, &tp));
                        moved.push((tp.clone(), data));
                    } else if prev != data {
                        altered += 1;
                        moved.push((tp.clone(), data));
                    }
                    session.push((tp, data));
                }
                None => {
                    if prev.topic_id == Uuid::ZERO {
                        can_use_topic_ids = false;
                    }
                    removed.push(TopicIdPartition::new(prev.topic_id, &tp));
                }
            }
        }
        // What is left in the index was not in the session: added, in the order asked.
        let mut added: Vec<(TopicPartition, PartitionFetchData)> = next
            .into_iter()
            .filter(|(tp, _)| index.contains_key(tp))
            .collect();
        session.extend(added.iter().cloned());
        handler.session_partitions = Arc::new(SessionPartitions::new(session));
        handler.session_topic_names = if can_use_topic_ids {
            topic_names
        } else {
            HashMap::new()
        };
        tracing::debug!(
            node = handler.node,
            %metadata,
            added = added.len(),
            altered,
            removed = removed.len(),
            replaced = replaced.len(),
            session = handler.session_partitions.len(),
            "built an incremental fetch request"
        );
        added.extend(moved);
        FetchRequestData {
            to_send: added,
            to_forget: removed,
            to_replace: replaced,
            session_partitions: Arc::clone(&handler.session_partitions),
            metadata,
            can_use_topic_ids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_wire::messages::fetch_response::{FetchableTopicResponse, PartitionData};

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition {
            topic: t.into(),
            partition: p,
        }
    }

    fn id(n: u64) -> Uuid {
        Uuid::from_u64_pair(0, n)
    }

    fn data(topic_id: Uuid, offset: i64) -> PartitionFetchData {
        PartitionFetchData {
            topic_id,
            fetch_offset: offset,
            log_start_offset: -1,
            max_bytes: 1_048_576,
            current_leader_epoch: None,
            last_fetched_epoch: None,
        }
    }

    /// Builds the next request from `(partition, topic id, offset)`.
    fn build(
        h: &mut FetchSessionHandler,
        parts: &[(TopicPartition, Uuid, i64)],
    ) -> FetchRequestData {
        let mut b = h.new_builder();
        for (t, i, o) in parts {
            b.add(t.clone(), data(*i, *o));
        }
        b.build()
    }

    /// An answer naming `parts` (by name below v13, by id from v13).
    fn response(session_id: i32, parts: &[(TopicPartition, Uuid)], version: i16) -> FetchResponse {
        let mut responses: Vec<FetchableTopicResponse> = Vec::new();
        for (t, i) in parts {
            let p = PartitionData {
                partition_index: t.partition,
                high_watermark: 10,
                ..Default::default()
            };
            match responses.last_mut() {
                Some(r)
                    if (version >= 13 && r.topic_id == *i)
                        || (version < 13 && r.topic == *t.topic) =>
                {
                    r.partitions.push(p)
                }
                _ => responses.push(FetchableTopicResponse {
                    topic: if version >= 13 {
                        String::new()
                    } else {
                        t.topic.to_string()
                    },
                    topic_id: if version >= 13 { *i } else { Uuid::ZERO },
                    partitions: vec![p],
                    ..Default::default()
                }),
            }
        }
        FetchResponse {
            session_id,
            responses,
            ..Default::default()
        }
    }

    fn names(v: &[(TopicPartition, PartitionFetchData)]) -> Vec<String> {
        v.iter().map(|(t, _)| t.to_string()).collect()
    }

    fn forgotten(v: &[TopicIdPartition]) -> Vec<String> {
        v.iter().map(|t| t.tp.to_string()).collect()
    }

    #[test]
    fn next_epoch_wraps_to_one_and_final_stays_final() {
        assert_eq!(FetchMetadata::next_epoch(0), 1);
        assert_eq!(FetchMetadata::next_epoch(41), 42);
        assert_eq!(FetchMetadata::next_epoch(i32::MAX), 1);
        assert_eq!(FetchMetadata::next_epoch(-1), -1);
        assert!(FetchMetadata::INITIAL.is_full());
        assert!(FetchMetadata::LEGACY.is_full());
        assert!(!FetchMetadata::new_incremental(7).is_full());
        assert_eq!(FetchMetadata::new_incremental(7).epoch, 1);
        let m = FetchMetadata {
            session_id: 7,
            epoch: 5,
        };
        assert_eq!(m.next_incremental().epoch, 6);
        assert_eq!(
            m.next_close_existing(),
            FetchMetadata {
                session_id: 7,
                epoch: -1
            }
        );
        assert_eq!(
            m.next_close_existing_attempt_new(),
            FetchMetadata {
                session_id: 7,
                epoch: 0
            }
        );
        assert_eq!(m.to_string(), "(sessionId=7, epoch=5)");
        assert_eq!(
            FetchMetadata::INITIAL.to_string(),
            "(sessionId=INVALID, epoch=INITIAL)"
        );
    }

    #[test]
    fn first_request_is_full_and_a_session_id_makes_the_next_incremental() {
        let mut h = FetchSessionHandler::new(1);
        let (a, b) = (id(1), id(2));
        let d = build(
            &mut h,
            &[(tp("a", 0), a, 0), (tp("a", 1), a, 5), (tp("b", 0), b, 9)],
        );
        assert_eq!(d.metadata, FetchMetadata::INITIAL);
        assert_eq!(names(&d.to_send), ["a-0", "a-1", "b-0"]);
        assert!(d.to_forget.is_empty() && d.to_replace.is_empty());
        assert!(d.can_use_topic_ids);
        assert_eq!(d.session_partition(&tp("a", 1)).unwrap().fetch_offset, 5);
        let all = [(tp("a", 0), a), (tp("a", 1), a), (tp("b", 0), b)];
        assert!(h.handle_response(&response(123, &all, 17), 17));
        assert_eq!(
            h.next_metadata(),
            FetchMetadata {
                session_id: 123,
                epoch: 1
            }
        );

        // Nothing changed: an empty incremental request.
        let d = build(
            &mut h,
            &[(tp("a", 0), a, 0), (tp("a", 1), a, 5), (tp("b", 0), b, 9)],
        );
        assert_eq!(
            d.metadata,
            FetchMetadata {
                session_id: 123,
                epoch: 1
            }
        );
        assert!(d.to_send.is_empty());
        assert!(d.to_forget.is_empty());
        assert_eq!(
            names(d.session_partitions.as_slice()),
            ["a-0", "a-1", "b-0"]
        );
        // The answer only names what changed: valid, the others are implied.
        assert!(h.handle_response(&response(123, &[(tp("b", 0), b)], 17), 17));
        assert_eq!(h.next_metadata().epoch, 2);
        assert!(h.handle_response(&response(123, &[], 17), 17));
        assert_eq!(h.next_metadata().epoch, 3);
    }

    #[test]
    fn incremental_sends_added_then_altered_and_forgets_removed() {
        let mut h = FetchSessionHandler::new(1);
        let a = id(1);
        build(
            &mut h,
            &[(tp("a", 0), a, 0), (tp("a", 1), a, 0), (tp("a", 2), a, 0)],
        );
        let all = [(tp("a", 0), a), (tp("a", 1), a), (tp("a", 2), a)];
        assert!(h.handle_response(&response(9, &all, 13), 13));
        // a-0 consumed (offset moved), a-1 unchanged, a-2 gone (paused), a-3 new.
        let d = build(
            &mut h,
            &[(tp("a", 3), a, 0), (tp("a", 0), a, 50), (tp("a", 1), a, 0)],
        );
        assert_eq!(
            d.metadata,
            FetchMetadata {
                session_id: 9,
                epoch: 1
            }
        );
        assert_eq!(names(&d.to_send), ["a-3", "a-0"]);
        assert_eq!(d.to_send[1].1.fetch_offset, 50);
        assert_eq!(forgotten(&d.to_forget), ["a-2"]);
        assert_eq!(d.to_forget[0].topic_id, a);
        // Session order: kept partitions in place, added ones at the end.
        assert_eq!(
            names(d.session_partitions.as_slice()),
            ["a-0", "a-1", "a-3"]
        );
        assert_eq!(h.session_partitions().count(), 3);
        // The request shares the session it was written for (no copy per fetch).
        assert!(Arc::ptr_eq(&d.session_partitions, &h.session_partitions));
        assert_eq!(d.session_partitions.len(), 3);
        assert!(
            d.session_partitions.contains(&tp("a", 3))
                && !d.session_partitions.contains(&tp("a", 2))
        );
        // A different max bytes or leader epoch alters a partition too.
        assert!(h.handle_response(&response(9, &[], 13), 13));
        let mut b = h.new_builder();
        b.add(
            tp("a", 0),
            PartitionFetchData {
                max_bytes: 10,
                ..data(a, 50)
            },
        );
        b.add(
            tp("a", 1),
            PartitionFetchData {
                current_leader_epoch: Some(4),
                ..data(a, 0)
            },
        );
        b.add(tp("a", 3), data(a, 0));
        let d = b.build();
        assert_eq!(names(&d.to_send), ["a-0", "a-1"]);
        assert!(d.to_forget.is_empty());
    }

    #[test]
    fn replaced_topic_id_is_forgotten_and_sent_again() {
        let mut h = FetchSessionHandler::new(1);
        let (old, new) = (id(1), id(2));
        build(&mut h, &[(tp("a", 0), old, 0), (tp("a", 1), old, 0)]);
        assert!(h.handle_response(
            &response(5, &[(tp("a", 0), old), (tp("a", 1), old)], 13),
            13
        ));
        // The topic was re-created: same name, new id.
        let d = build(&mut h, &[(tp("a", 0), new, 0), (tp("a", 1), old, 0)]);
        assert_eq!(names(&d.to_send), ["a-0"]);
        assert_eq!(d.to_send[0].1.topic_id, new);
        assert!(d.to_forget.is_empty());
        assert_eq!(d.to_replace, vec![TopicIdPartition::new(old, &tp("a", 0))]);
        // The answer names both ids: the session knows `new` (from the request) and `old`.
        assert!(d.can_use_topic_ids);
        assert_eq!(h.session_topic_names().get(&new).map(|n| &**n), Some("a"));
    }

    #[test]
    fn partitions_without_topic_ids_disable_ids() {
        let mut h = FetchSessionHandler::new(1);
        let d = build(
            &mut h,
            &[(tp("a", 0), Uuid::ZERO, 0), (tp("b", 0), id(2), 0)],
        );
        assert!(!d.can_use_topic_ids);
        assert!(h.session_topic_names().is_empty());
        assert!(h.handle_response(
            &response(5, &[(tp("a", 0), Uuid::ZERO), (tp("b", 0), id(2))], 12),
            12
        ));
        // Removing the id-less partition still cannot use ids in this request (it is
        // forgotten by name).
        let d = build(&mut h, &[(tp("b", 0), id(2), 0)]);
        assert!(!d.can_use_topic_ids);
        assert_eq!(forgotten(&d.to_forget), ["a-0"]);
        assert!(h.handle_response(&response(5, &[], 12), 12));
        let d = build(&mut h, &[(tp("b", 0), id(2), 0)]);
        assert!(d.can_use_topic_ids);
    }

    #[test]
    fn full_response_must_hold_exactly_the_session() {
        let a = id(1);
        let mut h = FetchSessionHandler::new(1);
        build(&mut h, &[(tp("a", 0), a, 0), (tp("a", 1), a, 0)]);
        // Omitted partition.
        assert!(!h.handle_response(&response(5, &[(tp("a", 0), a)], 13), 13));
        assert_eq!(h.next_metadata(), FetchMetadata::INITIAL);
        let problem = h
            .verify_full_response(&[tp("a", 0), tp("z", 0)], &HashSet::new(), 12)
            .unwrap();
        assert!(problem.contains("omittedPartitions=(a-1)"), "{problem}");
        assert!(problem.contains("extraPartitions=(z-0)"), "{problem}");
        // An unknown topic id (v13+).
        build(&mut h, &[(tp("a", 0), a, 0), (tp("a", 1), a, 0)]);
        let mut r = response(5, &[(tp("a", 0), a), (tp("a", 1), a)], 13);
        r.responses.push(FetchableTopicResponse {
            topic_id: id(99),
            ..Default::default()
        });
        assert!(!h.handle_response(&r, 13));
        assert_eq!(h.next_metadata(), FetchMetadata::INITIAL);
        // Valid, but the broker declines sessions: full requests again.
        build(&mut h, &[(tp("a", 0), a, 0), (tp("a", 1), a, 0)]);
        assert!(h.handle_response(&response(0, &[(tp("a", 0), a), (tp("a", 1), a)], 13), 13));
        assert_eq!(h.next_metadata(), FetchMetadata::INITIAL);
        let d = build(&mut h, &[(tp("a", 0), a, 1)]);
        assert_eq!(d.metadata, FetchMetadata::INITIAL);
        assert_eq!(names(&d.to_send), ["a-0"]);
        assert!(d.to_forget.is_empty());
    }

    #[test]
    fn throttled_empty_full_response_is_not_used() {
        let mut h = FetchSessionHandler::new(1);
        build(&mut h, &[(tp("a", 0), id(1), 0)]);
        let r = FetchResponse {
            throttle_time_ms: 100,
            session_id: 5,
            ..Default::default()
        };
        assert!(!h.handle_response(&r, 13));
        assert_eq!(h.next_metadata(), FetchMetadata::INITIAL);
    }

    #[test]
    fn incremental_response_with_a_partition_outside_the_session_is_invalid() {
        let a = id(1);
        let mut h = FetchSessionHandler::new(1);
        build(&mut h, &[(tp("a", 0), a, 0)]);
        assert!(h.handle_response(&response(5, &[(tp("a", 0), a)], 12), 12));
        build(&mut h, &[(tp("a", 0), a, 3)]);
        assert!(!h.handle_response(&response(5, &[(tp("a", 7), a)], 12), 12));
        // Close the session and ask for a new one.
        assert_eq!(
            h.next_metadata(),
            FetchMetadata {
                session_id: 5,
                epoch: 0
            }
        );
        let d = build(&mut h, &[(tp("a", 0), a, 3)]);
        assert!(d.metadata.is_full());
        assert_eq!(d.metadata.session_id, 5);
        assert_eq!(names(&d.to_send), ["a-0"]);
    }

    #[test]
    fn incremental_response_without_session_id_ends_the_session() {
        let a = id(1);
        let mut h = FetchSessionHandler::new(1);
        build(&mut h, &[(tp("a", 0), a, 0)]);
        assert!(h.handle_response(&response(5, &[(tp("a", 0), a)], 12), 12));
        build(&mut h, &[(tp("a", 0), a, 0)]);
        assert!(h.handle_response(&response(0, &[], 12), 12));
        assert_eq!(h.next_metadata(), FetchMetadata::INITIAL);
    }

    #[test]
    fn top_level_errors_and_request_failures_restart_the_session() {
        let a = id(1);
        let established = |h: &mut FetchSessionHandler| {
            build(h, &[(tp("a", 0), a, 0)]);
            assert!(h.handle_response(&response(5, &[(tp("a", 0), a)], 12), 12));
            build(h, &[(tp("a", 0), a, 0)]);
            assert!(h.handle_response(&response(5, &[], 12), 12));
            assert_eq!(
                h.next_metadata(),
                FetchMetadata {
                    session_id: 5,
                    epoch: 2
                }
            );
        };
        let mut h = FetchSessionHandler::new(1);
        established(&mut h);
        build(&mut h, &[(tp("a", 0), a, 0)]);
        let err = FetchResponse {
            error_code: ErrorCode::FetchSessionIdNotFound.code(),
            ..Default::default()
        };
        assert!(!h.handle_response(&err, 12));
        assert_eq!(h.next_metadata(), FetchMetadata::INITIAL);

        for code in [
            ErrorCode::InvalidFetchSessionEpoch,
            ErrorCode::FetchSessionTopicIdError,
        ] {
            let mut h = FetchSessionHandler::new(1);
            established(&mut h);
            build(&mut h, &[(tp("a", 0), a, 0)]);
            let err = FetchResponse {
                error_code: code.code(),
                ..Default::default()
            };
            assert!(!h.handle_response(&err, 12), "{code}");
            assert_eq!(
                h.next_metadata(),
                FetchMetadata {
                    session_id: 5,
                    epoch: 0
                },
                "{code}"
            );
        }

        let mut h = FetchSessionHandler::new(1);
        established(&mut h);
        build(&mut h, &[(tp("a", 0), a, 0)]);
        h.handle_error(&"connection reset");
        assert_eq!(
            h.next_metadata(),
            FetchMetadata {
                session_id: 5,
                epoch: 0
            }
        );
        // The next request is full, listing everything.
        let d = build(&mut h, &[(tp("a", 0), a, 0), (tp("a", 1), a, 0)]);
        assert!(d.metadata.is_full());
        assert_eq!(names(&d.to_send), ["a-0", "a-1"]);
        // The broker answers with a new session.
        assert!(h.handle_response(&response(6, &[(tp("a", 0), a), (tp("a", 1), a)], 12), 12));
        assert_eq!(
            h.next_metadata(),
            FetchMetadata {
                session_id: 6,
                epoch: 1
            }
        );
    }

    #[test]
    fn close_sends_final_epoch_with_no_partitions() {
        let a = id(1);
        let mut h = FetchSessionHandler::new(1);
        build(&mut h, &[(tp("a", 0), a, 0)]);
        assert!(h.handle_response(&response(5, &[(tp("a", 0), a)], 12), 12));
        h.notify_close();
        let d = h.new_builder().build();
        assert_eq!(
            d.metadata,
            FetchMetadata {
                session_id: 5,
                epoch: -1
            }
        );
        assert!(d.to_send.is_empty() && d.to_forget.is_empty());
        assert!(h.handle_response(&response(0, &[], 12), 12));
        assert_eq!(h.next_metadata(), FetchMetadata::INITIAL);
    }

    #[test]
    fn epoch_wraps_after_max() {
        let a = id(1);
        let mut h = FetchSessionHandler::new(1);
        build(&mut h, &[(tp("a", 0), a, 0)]);
        assert!(h.handle_response(&response(5, &[(tp("a", 0), a)], 12), 12));
        h.next_metadata.epoch = i32::MAX;
        let d = build(&mut h, &[(tp("a", 0), a, 0)]);
        assert_eq!(d.metadata.epoch, i32::MAX);
        assert!(h.handle_response(&response(5, &[], 12), 12));
        assert_eq!(
            h.next_metadata(),
            FetchMetadata {
                session_id: 5,
                epoch: 1
            }
        );
    }

    #[test]
    fn adding_twice_replaces_in_place_and_reset_forces_full() {
        let a = id(1);
        let mut h = FetchSessionHandler::new(1);
        let mut b = h.new_builder();
        b.add(tp("a", 0), data(a, 1));
        b.add(tp("a", 1), data(a, 1));
        b.add(tp("a", 0), data(a, 2));
        let d = b.build();
        assert_eq!(names(&d.to_send), ["a-0", "a-1"]);
        assert_eq!(d.to_send[0].1.fetch_offset, 2);
        assert!(h.handle_response(&response(5, &[(tp("a", 0), a), (tp("a", 1), a)], 12), 12));
        h.reset();
        let d = build(&mut h, &[(tp("a", 0), a, 2)]);
        assert_eq!(d.metadata, FetchMetadata::INITIAL);
    }
}
