//! Incremental fetch sessions (KIP-227): the broker's session cache, as Kafka's
//! `FetchManager`, `FetchSessionCache(Shard)`, `FetchSession` and the `FetchContext`s.
//!
//! Pure and deterministic: no I/O, the time (`now_ms`) is passed in and session ids come from
//! a seeded generator. The Fetch handler ([`crate::handlers`]) asks [`FetchSessionCache::new_context`]
//! what a request is, serves it, and then reports the response it is about to send
//! ([`FetchSessionCache::create_session`] for a full fetch,
//! [`FetchSessionCache::finish_incremental`] for an incremental one).
//!
//! Kafka's rules, reproduced here:
//! - The request's `(session_id, epoch)` is Kafka's `FetchMetadata`. Epoch 0 (initial) or -1
//!   (final) is a *full* request, whatever the session id: the session it names (if any) is
//!   closed first. Epoch 0 then tries to create a session holding every requested partition
//!   (with the high watermark and log start offset the response reports); epoch -1 is served
//!   without a session (session id 0). Versions below 7 have no session fields and are always
//!   sessionless.
//! - Any other epoch is *incremental* on the session named: an unknown id is
//!   FETCH_SESSION_ID_NOT_FOUND, an epoch other than the session's is
//!   INVALID_FETCH_SESSION_EPOCH, a request whose version does not match the session's use of
//!   topic ids (v13+ ids vs names) is FETCH_SESSION_TOPIC_ID_ERROR; each is a top-level error
//!   with session id 0 and no partitions, the session kept. Otherwise the partitions listed
//!   are added or updated (fetch offset, max bytes, log start offset, leader epochs),
//!   `forgotten_topics_data` removes partitions, the session's epoch advances
//!   ([`next_epoch`]: after `i32::MAX` comes 1) and the whole session is fetched. A session
//!   left with no partitions is closed and the request served sessionless.
//! - An incremental response carries only the partitions that have something to report
//!   (`CachedPartition.maybeUpdateResponseData`): records, an error, a preferred read replica,
//!   a diverging epoch, or a high watermark or log start offset other than the one the session
//!   last reported (errors reset the cached high watermark to -1 so that the partition is
//!   reported again when the error clears). Kafka does not compare the last stable offset
//!   (a transaction marker that moves it also moves the high watermark). Partitions that
//!   returned records move to the end of the session's order, so that `max_bytes` cannot
//!   starve the others. If the session's epoch moved between the request and its response (a
//!   duplicate request), the response is INVALID_FETCH_SESSION_EPOCH with the session id.
//! - Capacity: `max.incremental.fetch.session.cache.slots` sessions (Kafka counts sessions,
//!   not partitions; one shard here, Kafka splits the slots over 8 shards for lock
//!   contention). When full, a new session may evict, per `FetchSessionCacheShard.tryEvict`,
//!   the least recently used session if it has been unused for more than
//!   [`EVICTION_MS`] (Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`), else the smallest
//!   session among those older than [`EVICTION_MS`] at their last use, if the new one has
//!   strictly more partitions. Every session here is a consumer's (not privileged). When no
//!   session can be created the full fetch is served with session id 0, which the protocol
//!   allows. A full fetch of zero partitions still creates a session, as Kafka.
//! - A deleted topic's partitions stay in sessions and answer UNKNOWN_TOPIC_OR_PARTITION /
//!   UNKNOWN_TOPIC_ID, as in Kafka.

use std::collections::{BTreeMap, HashMap};

pub use kafka_wire::fetch_session::{next_epoch, FINAL_EPOCH, INITIAL_EPOCH, INVALID_SESSION_ID};
use kafka_wire::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_wire::messages::fetch_response::PartitionData;
use kafka_wire::messages::{FetchRequest, FetchResponse};
use kafka_wire::{ErrorCode, Uuid};

/// How long a session must be unused (or have existed) before another may evict it: Kafka's
/// constant `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`.
pub const EVICTION_MS: i64 = 120_000;
/// The first version with session fields.
const SESSION_VERSION: i16 = 7;
/// The first version naming topics by id.
const TOPIC_ID_VERSION: i16 = 13;

/// How a session names a partition's topic: by topic id (sessions created at v13+) or by
/// name (before v13), as Kafka's `CachedPartition` equality.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TopicKey {
    /// By topic id (v13+).
    Id(Uuid),
    /// By topic name (v7-12).
    Name(String),
}

/// One partition of a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    /// The topic.
    pub topic: TopicKey,
    /// The partition index.
    pub partition: i32,
}

impl PartitionKey {
    fn new(version: i16, name: &str, id: Uuid, partition: i32) -> PartitionKey {
        let topic = if version >= TOPIC_ID_VERSION {
            TopicKey::Id(id)
        } else {
            TopicKey::Name(name.to_string())
        };
        PartitionKey { topic, partition }
    }
}

/// A partition cached in a session: the request parameters last sent for it and what the
/// session last reported about it.
#[derive(Clone, Debug)]
struct CachedPartition {
    /// The request parameters (fetch offset, max bytes, log start offset, epochs).
    request: FetchPartition,
    reported: Reported,
}

/// What a session last reported about a partition.
#[derive(Clone, Copy, Debug)]
struct Reported {
    /// The high watermark last reported (-1 after an error).
    high_watermark: i64,
    /// The partition's log start offset last reported.
    log_start_offset: i64,
}

impl Reported {
    /// Nothing reported yet.
    const NONE: Reported = Reported {
        high_watermark: -1,
        log_start_offset: -1,
    };

    /// Kafka's `maybeUpdateResponseData`: whether `p` must be in an incremental response,
    /// recording what it reports when `update`.
    fn must_respond(&mut self, p: &PartitionData, update: bool) -> bool {
        let mut must = records_len(p) > 0;
        if self.high_watermark != p.high_watermark {
            must = true;
            if update {
                self.high_watermark = p.high_watermark;
            }
        }
        if self.log_start_offset != p.log_start_offset {
            must = true;
            if update {
                self.log_start_offset = p.log_start_offset;
            }
        }
        if p.preferred_read_replica != -1 {
            must = true;
        }
        if p.error_code != ErrorCode::None.code() {
            // Reported again once the error clears.
            if update {
                self.high_watermark = -1;
            }
            must = true;
        }
        if p.diverging_epoch.epoch != -1 {
            must = true;
        }
        must
    }
}

/// The bytes of records in a response partition.
fn records_len(p: &PartitionData) -> usize {
    p.records.as_ref().map_or(0, |r| r.len())
}

/// A session's partitions in their order (insertion, with partitions that returned records
/// moved to the end): Kafka's `ImplicitLinkedHashCollection`.
#[derive(Clone, Debug, Default)]
struct PartitionMap {
    next_seq: u64,
    order: BTreeMap<u64, PartitionKey>,
    entries: HashMap<PartitionKey, (u64, CachedPartition)>,
}

impl PartitionMap {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `key` at the end, or updates its request parameters in place.
    fn add_or_update(&mut self, key: PartitionKey, request: &FetchPartition) {
        if let Some((_, cached)) = self.entries.get_mut(&key) {
            cached.request = request.clone();
            return;
        }
        let cached = CachedPartition {
            request: request.clone(),
            reported: Reported::NONE,
        };
        self.push(key, cached);
    }

    fn push(&mut self, key: PartitionKey, cached: CachedPartition) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some((old, _)) = self.entries.insert(key.clone(), (seq, cached)) {
            self.order.remove(&old);
        }
        self.order.insert(seq, key);
    }

    fn remove(&mut self, key: &PartitionKey) -> bool {
        match self.entries.remove(key) {
            Some((seq, _)) => {
                self.order.remove(&seq);
                true
            }
            None => false,
        }
    }

    fn move_to_end(&mut self, key: &PartitionKey) {
        let seq = self.next_seq;
        if let Some((pos, _)) = self.entries.get_mut(key) {
            let old = std::mem::replace(pos, seq);
            self.next_seq += 1;
            self.order.remove(&old);
            self.order.insert(seq, key.clone());
        }
    }

    fn get_mut(&mut self, key: &PartitionKey) -> Option<&mut CachedPartition> {
        self.entries.get_mut(key).map(|(_, c)| c)
    }

    fn iter(&self) -> impl Iterator<Item = (&PartitionKey, &CachedPartition)> {
        self.order
            .values()
            .filter_map(|k| self.entries.get(k).map(|(_, c)| (k, c)))
    }
}

/// One incremental fetch session (Kafka's `FetchSession`).
#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    epoch: i32,
    /// Created by a v13+ request: partitions are keyed by topic id.
    uses_topic_ids: bool,
    creation_ms: i64,
    last_used_ms: i64,
    /// The partition count at the last touch (Kafka's `cachedSize`, the eviction key).
    cached_size: usize,
    /// Older than [`EVICTION_MS`] at the last touch: evictable by a larger session (Kafka's
    /// `evictableByAll`).
    evictable: bool,
    partitions: PartitionMap,
}

/// What a Fetch request is, as Kafka's `FetchManager.newContext` decides.
#[derive(Debug)]
pub enum FetchContext {
    /// A session error: answer with this top-level code, session id 0 and no partitions
    /// (Kafka's `SessionErrorContext`).
    Error(ErrorCode),
    /// Serve the request's partitions without a session: session id 0.
    Sessionless,
    /// Serve the request's partitions, then offer a session with
    /// [`FetchSessionCache::create_session`] (Kafka's `FullFetchContext`).
    Full,
    /// Serve the session's partitions, then filter the response with
    /// [`FetchSessionCache::finish_incremental`] (Kafka's `IncrementalFetchContext`).
    Incremental(IncrementalContext),
}

/// An incremental request accepted on a session.
#[derive(Debug)]
pub struct IncrementalContext {
    /// The session.
    pub session_id: i32,
    /// The session's epoch after this request (the next request's epoch).
    pub expected_epoch: i32,
    /// The partitions to fetch: every partition of the session, in its order, with the
    /// cached request parameters, grouped into topics as a request would carry them.
    pub topics: Vec<FetchTopic>,
    /// What the session had reported when the request arrived, in the order of `topics`, to
    /// filter the response with if the session is gone by then (Kafka keeps its reference
    /// to the removed session).
    snapshot: Vec<Reported>,
}

/// The broker's fetch sessions (Kafka's `FetchSessionCache`, one shard).
#[derive(Debug)]
pub struct FetchSessionCache {
    max_sessions: usize,
    sessions: HashMap<i32, Session>,
    rng: u64,
}

impl FetchSessionCache {
    /// A cache of at most `max_sessions` sessions
    /// (`max.incremental.fetch.session.cache.slots`; 0 disables sessions); `seed` seeds
    /// the session id generator.
    pub fn new(max_sessions: usize, seed: u64) -> FetchSessionCache {
        FetchSessionCache {
            max_sessions,
            sessions: HashMap::new(),
            rng: seed,
        }
    }

    #[cfg(test)]
    /// The number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    #[cfg(test)]
    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    #[cfg(test)]
    /// The epoch session `id` expects next, if it exists.
    pub fn epoch(&self, id: i32) -> Option<i32> {
        self.sessions.get(&id).map(|s| s.epoch)
    }

    #[cfg(test)]
    /// The partitions of session `id`, in order, if it exists.
    pub fn partitions(&self, id: i32) -> Option<Vec<PartitionKey>> {
        self.sessions
            .get(&id)
            .map(|s| s.partitions.iter().map(|(k, _)| k.clone()).collect())
    }

    /// Closes session `id`; whether it existed.
    pub fn remove(&mut self, id: i32) -> bool {
        self.sessions.remove(&id).is_some()
    }

    /// Kafka's `FetchManager.newContext`: what `req` (at `version`) is, applying its session
    /// changes (closing a session named by a full request; adding, updating and forgetting
    /// partitions and advancing the epoch for an incremental one).
    pub fn new_context(&mut self, version: i16, req: &FetchRequest, now_ms: i64) -> FetchContext {
        if version < SESSION_VERSION {
            return FetchContext::Sessionless;
        }
        if req.session_epoch == INITIAL_EPOCH || req.session_epoch == FINAL_EPOCH {
            if req.session_id != INVALID_SESSION_ID && self.remove(req.session_id) {
                tracing::debug!(
                    session = req.session_id,
                    "fetch session closed by a full fetch"
                );
            }
            return if req.session_epoch == FINAL_EPOCH {
                FetchContext::Sessionless
            } else {
                FetchContext::Full
            };
        }
        let Some(session) = self.sessions.get_mut(&req.session_id) else {
            return FetchContext::Error(ErrorCode::FetchSessionIdNotFound);
        };
        if session.epoch != req.session_epoch {
            return FetchContext::Error(ErrorCode::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != (version >= TOPIC_ID_VERSION) {
            return FetchContext::Error(ErrorCode::FetchSessionTopicIdError);
        }
        let (mut changed, mut removed) = (0usize, 0usize);
        for ft in &req.topics {
            for fp in &ft.partitions {
                let key = PartitionKey::new(version, &ft.topic, ft.topic_id, fp.partition);
                session.partitions.add_or_update(key, fp);
                changed += 1;
            }
        }
        for forgotten in &req.forgotten_topics_data {
            for &partition in &forgotten.partitions {
                let key =
                    PartitionKey::new(version, &forgotten.topic, forgotten.topic_id, partition);
                removed += usize::from(session.partitions.remove(&key));
            }
        }
        if session.partitions.is_empty() {
            tracing::debug!(
                session = req.session_id,
                "fetch session closed: no partitions left"
            );
            self.sessions.remove(&req.session_id);
            return FetchContext::Sessionless;
        }
        touch(session, now_ms);
        session.epoch = next_epoch(session.epoch);
        tracing::debug!(
            session = req.session_id,
            epoch = session.epoch,
            changed,
            removed,
            size = session.partitions.len(),
            "incremental fetch"
        );
        let mut topics: Vec<FetchTopic> = Vec::new();
        let mut snapshot = Vec::with_capacity(session.partitions.len());
        for (key, cached) in session.partitions.iter() {
            let same = topics.last().is_some_and(|t| match &key.topic {
                TopicKey::Id(id) => t.topic_id == *id,
                TopicKey::Name(name) => t.topic == *name,
            });
            if !same {
                let (topic, topic_id) = match &key.topic {
                    TopicKey::Id(id) => (String::new(), *id),
                    TopicKey::Name(name) => (name.clone(), Uuid::ZERO),
                };
                topics.push(FetchTopic {
                    topic,
                    topic_id,
                    ..Default::default()
                });
            }
            if let Some(t) = topics.last_mut() {
                // The cached request names the partition `key` does.
                t.partitions.push(cached.request.clone());
            }
            snapshot.push(cached.reported);
        }
        FetchContext::Incremental(IncrementalContext {
            session_id: req.session_id,
            expected_epoch: session.epoch,
            topics,
            snapshot,
        })
    }

    /// Kafka's `FullFetchContext.updateAndGenerateResponseData`: after serving a full request
    /// whose context was [`FetchContext::Full`], creates a session holding every partition of
    /// `req` with what `resp` reports for it (`resp` answers `req`'s partitions in order, as
    /// the handler builds it). Returns the session id for the response, or 0 when the cache
    /// is full and no session could be evicted.
    pub fn create_session(
        &mut self,
        version: i16,
        req: &FetchRequest,
        resp: &FetchResponse,
        now_ms: i64,
    ) -> i32 {
        let mut partitions = PartitionMap::default();
        for (ft, rt) in req.topics.iter().zip(&resp.responses) {
            for (fp, rp) in ft.partitions.iter().zip(&rt.partitions) {
                let key = PartitionKey::new(version, &ft.topic, ft.topic_id, fp.partition);
                partitions.push(
                    key,
                    CachedPartition {
                        request: fp.clone(),
                        reported: Reported {
                            high_watermark: rp.high_watermark,
                            log_start_offset: rp.log_start_offset,
                        },
                    },
                );
            }
        }
        let size = partitions.len();
        if self.sessions.len() >= self.max_sessions && !self.try_evict(size, now_ms) {
            tracing::debug!(size, "no fetch session created: the cache is full");
            return INVALID_SESSION_ID;
        }
        let id = self.new_session_id();
        let mut session = Session {
            epoch: next_epoch(INITIAL_EPOCH),
            uses_topic_ids: version >= TOPIC_ID_VERSION,
            creation_ms: now_ms,
            last_used_ms: now_ms,
            cached_size: size,
            evictable: false,
            partitions,
        };
        touch(&mut session, now_ms);
        tracing::debug!(session = id, size, "fetch session created");
        self.sessions.insert(id, session);
        id
    }

    /// Kafka's `IncrementalFetchContext.updateAndGenerateResponseData`: turns `resp`, the
    /// answer for `ctx.topics`, into the incremental response actually sent. Keeps only the
    /// partitions with something to report and records what they report in the session, or,
    /// if the session's epoch moved since the request, clears the response to
    /// INVALID_FETCH_SESSION_EPOCH. Sets the response's session id. Returns the partitions
    /// dropped (their record buffers can be recycled).
    pub fn finish_incremental(
        &mut self,
        ctx: IncrementalContext,
        version: i16,
        resp: &mut FetchResponse,
    ) -> Vec<PartitionData> {
        resp.session_id = ctx.session_id;
        let mut dropped = Vec::new();
        match self.sessions.get_mut(&ctx.session_id) {
            Some(session) if session.epoch != ctx.expected_epoch => {
                tracing::info!(
                    session = ctx.session_id,
                    expected = ctx.expected_epoch,
                    actual = session.epoch,
                    "incremental fetch session epoch moved: possible duplicate request"
                );
                resp.error_code = ErrorCode::InvalidFetchSessionEpoch.code();
                for t in resp.responses.drain(..) {
                    dropped.extend(t.partitions);
                }
            }
            Some(session) => {
                let mut moved = Vec::new();
                filter(version, resp, &mut dropped, |key, p| {
                    let Some(cached) = session.partitions.get_mut(key) else {
                        return false;
                    };
                    let must = cached.reported.must_respond(p, true);
                    if must && records_len(p) > 0 {
                        moved.push(key.clone());
                    }
                    must
                });
                for key in &moved {
                    session.partitions.move_to_end(key);
                }
            }
            None => {
                // The response answers `ctx.topics` partition by partition, in order.
                let mut snapshot = ctx.snapshot.into_iter();
                filter(version, resp, &mut dropped, |_, p| {
                    snapshot
                        .next()
                        .is_some_and(|mut r| r.must_respond(p, false))
                });
            }
        }
        dropped
    }

    /// Kafka's `tryEvict` for an unprivileged session of `size` partitions.
    fn try_evict(&mut self, size: usize, now_ms: i64) -> bool {
        let Some((&stale_id, stale)) = self
            .sessions
            .iter()
            .min_by_key(|(id, s)| (s.last_used_ms, **id))
        else {
            return false;
        };
        if now_ms - stale.last_used_ms > EVICTION_MS {
            tracing::debug!(session = stale_id, "evicting a stale fetch session");
            self.sessions.remove(&stale_id);
            return true;
        }
        let Some((&id, victim)) = self
            .sessions
            .iter()
            .filter(|(_, s)| s.evictable)
            .min_by_key(|(id, s)| (s.cached_size, **id))
        else {
            return false;
        };
        // (unprivileged, size, id 0) may evict (unprivileged, cached size, id) when not
        // smaller: since ids are positive, only when it has strictly more partitions.
        if size <= victim.cached_size {
            return false;
        }
        tracing::debug!(
            session = id,
            victim_size = victim.cached_size,
            size,
            "evicting a smaller fetch session"
        );
        self.sessions.remove(&id);
        true
    }

    /// A random positive session id not in use (splitmix64).
    fn new_session_id(&mut self) -> i32 {
        loop {
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let id = (z % i32::MAX as u64) as i32 + 1;
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Kafka's `FetchSessionCacheShard.touch`: the session was used at `now_ms`.
fn touch(session: &mut Session, now_ms: i64) {
    session.last_used_ms = now_ms;
    session.cached_size = session.partitions.len();
    session.evictable = now_ms - session.creation_ms > EVICTION_MS;
}

/// Keeps the partitions of `resp` for which `keep` is true, dropping topics left empty.
fn filter(
    version: i16,
    resp: &mut FetchResponse,
    dropped: &mut Vec<PartitionData>,
    mut keep: impl FnMut(&PartitionKey, &PartitionData) -> bool,
) {
    for t in &mut resp.responses {
        let partitions = std::mem::take(&mut t.partitions);
        for p in partitions {
            let key = PartitionKey::new(version, &t.topic, t.topic_id, p.partition_index);
            if keep(&key, &p) {
                t.partitions.push(p);
            } else {
                dropped.push(p);
            }
        }
    }
    resp.responses.retain(|t| !t.partitions.is_empty());
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_wire::messages::fetch_request::ForgottenTopic;
    use kafka_wire::messages::fetch_response::FetchableTopicResponse;

    use super::*;

    fn id(n: u64) -> Uuid {
        Uuid::from_u64_pair(7, n)
    }

    /// A request at `version` of `(topic, partition, fetch offset)`; topics are named
    /// `t<n>` before v13 and `id(n)` from v13.
    fn request(
        version: i16,
        session_id: i32,
        epoch: i32,
        parts: &[(u64, i32, i64)],
    ) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for &(t, partition, offset) in parts {
            let (name, topic_id) = if version >= 13 {
                (String::new(), id(t))
            } else {
                (format!("t{t}"), Uuid::ZERO)
            };
            if topics
                .last()
                .is_none_or(|l| l.topic != name || l.topic_id != topic_id)
            {
                topics.push(FetchTopic {
                    topic: name,
                    topic_id,
                    ..Default::default()
                });
            }
            topics.last_mut().unwrap().partitions.push(FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1024,
                current_leader_epoch: -1,
                ..Default::default()
            });
        }
        FetchRequest {
            session_id,
            session_epoch: epoch,
            topics,
            ..Default::default()
        }
    }

    fn forget(req: &mut FetchRequest, version: i16, t: u64, partitions: &[i32]) {
        req.forgotten_topics_data.push(ForgottenTopic {
            topic: if version >= 13 {
                String::new()
            } else {
                format!("t{t}")
            },
            topic_id: if version >= 13 { id(t) } else { Uuid::ZERO },
            partitions: partitions.to_vec(),
            ..Default::default()
        });
    }

    /// What a partition answers: high watermark, log start offset, record bytes, error.
    #[derive(Clone, Copy)]
    struct Answer {
        hw: i64,
        log_start: i64,
        records: usize,
        error: ErrorCode,
    }

    const QUIET: Answer = Answer {
        hw: 10,
        log_start: 0,
        records: 0,
        error: ErrorCode::None,
    };

    /// The response to `topics`, each partition answered by `answer(topic, partition)`.
    fn respond(
        topics: &[FetchTopic],
        answer: impl Fn(&FetchTopic, i32) -> Answer,
    ) -> FetchResponse {
        FetchResponse {
            responses: topics
                .iter()
                .map(|t| FetchableTopicResponse {
                    topic: t.topic.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| {
                            let a = answer(t, p.partition);
                            PartitionData {
                                partition_index: p.partition,
                                error_code: a.error.code(),
                                high_watermark: a.hw,
                                last_stable_offset: a.hw,
                                log_start_offset: a.log_start,
                                records: Some(Bytes::from(vec![0u8; a.records])),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The `n` of a topic [`request`] named `t<n>` (before v13) or `id(n)` (from v13).
    fn topic_number(version: i16, name: &str, topic_id: Uuid) -> u64 {
        if version >= 13 {
            topic_id.as_bytes()[15] as u64
        } else {
            name[1..].parse().unwrap()
        }
    }

    /// (topic, partition) of every partition in a response, in order.
    fn listed(version: i16, resp: &FetchResponse) -> Vec<(u64, i32)> {
        resp.responses
            .iter()
            .flat_map(|t| {
                let n = topic_number(version, &t.topic, t.topic_id);
                t.partitions.iter().map(move |p| (n, p.partition_index))
            })
            .collect()
    }

    /// (topic, partition, fetch offset) of the partitions an incremental context fetches.
    fn fetched(version: i16, ctx: &IncrementalContext) -> Vec<(u64, i32, i64)> {
        ctx.topics
            .iter()
            .flat_map(|t| {
                let n = topic_number(version, &t.topic, t.topic_id);
                t.partitions
                    .iter()
                    .map(move |p| (n, p.partition, p.fetch_offset))
            })
            .collect()
    }

    /// Creates a session at `version` over `parts` (every partition answering `QUIET`) at
    /// `now`; returns its id.
    fn open(
        cache: &mut FetchSessionCache,
        version: i16,
        parts: &[(u64, i32, i64)],
        now: i64,
    ) -> i32 {
        let req = request(version, 0, INITIAL_EPOCH, parts);
        assert!(matches!(
            cache.new_context(version, &req, now),
            FetchContext::Full
        ));
        let resp = respond(&req.topics, |_, _| QUIET);
        cache.create_session(version, &req, &resp, now)
    }

    fn incremental(
        cache: &mut FetchSessionCache,
        version: i16,
        req: &FetchRequest,
        now: i64,
    ) -> IncrementalContext {
        match cache.new_context(version, req, now) {
            FetchContext::Incremental(ctx) => ctx,
            other => panic!("expected an incremental context, got {other:?}"),
        }
    }

    fn error_of(ctx: FetchContext) -> Option<ErrorCode> {
        match ctx {
            FetchContext::Error(code) => Some(code),
            _ => None,
        }
    }

    const SIX: &[(u64, i32, i64)] = &[
        (1, 0, 0),
        (1, 1, 0),
        (1, 2, 0),
        (2, 0, 0),
        (2, 1, 0),
        (2, 2, 0),
    ];

    #[test]
    fn full_fetch_creates_a_session_of_every_partition() {
        for version in [7, 12, 13, 17] {
            let mut cache = FetchSessionCache::new(10, 1);
            let sid = open(&mut cache, version, SIX, 0);
            assert!(sid > 0, "v{version}");
            assert_eq!(cache.epoch(sid), Some(1));
            let keys = cache.partitions(sid).unwrap();
            assert_eq!(keys.len(), 6);
            let expected = if version >= 13 {
                TopicKey::Id(id(1))
            } else {
                TopicKey::Name("t1".into())
            };
            assert_eq!(keys[0].topic, expected);
            assert_eq!(
                keys.iter().map(|k| k.partition).collect::<Vec<_>>(),
                [0, 1, 2, 0, 1, 2]
            );
        }
    }

    #[test]
    fn versions_before_7_and_final_epoch_are_sessionless() {
        let mut cache = FetchSessionCache::new(10, 1);
        for version in [4, 5, 6] {
            // Whatever the (absent) session fields decode to.
            let req = request(version, 0, INITIAL_EPOCH, SIX);
            assert!(matches!(
                cache.new_context(version, &req, 0),
                FetchContext::Sessionless
            ));
            let req = request(version, 99, 3, SIX);
            assert!(matches!(
                cache.new_context(version, &req, 0),
                FetchContext::Sessionless
            ));
        }
        let req = request(12, 0, FINAL_EPOCH, SIX);
        assert!(matches!(
            cache.new_context(12, &req, 0),
            FetchContext::Sessionless
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_fetch_naming_a_session_closes_it() {
        let mut cache = FetchSessionCache::new(10, 1);
        let a = open(&mut cache, 12, SIX, 0);
        // Epoch 0 with the id: closed, and a new session offered.
        let req = request(12, a, INITIAL_EPOCH, SIX);
        assert!(matches!(cache.new_context(12, &req, 1), FetchContext::Full));
        assert_eq!(cache.epoch(a), None);
        let b = cache.create_session(12, &req, &respond(&req.topics, |_, _| QUIET), 1);
        assert!(b > 0 && b != a);
        // Epoch -1 with the id: closed, sessionless.
        let req = request(12, b, FINAL_EPOCH, SIX);
        assert!(matches!(
            cache.new_context(12, &req, 2),
            FetchContext::Sessionless
        ));
        assert!(cache.is_empty());
        // A later incremental request on it: not found.
        let req = request(12, b, 1, &[]);
        assert_eq!(
            error_of(cache.new_context(12, &req, 3)),
            Some(ErrorCode::FetchSessionIdNotFound)
        );
    }

    #[test]
    fn session_errors_keep_the_session() {
        let mut cache = FetchSessionCache::new(10, 1);
        let sid = open(&mut cache, 12, SIX, 0);
        let unknown = if sid == 5 { 6 } else { 5 };
        let cases = [
            (
                request(12, unknown, 1, &[]),
                12,
                ErrorCode::FetchSessionIdNotFound,
            ),
            // Session id 0 with an incremental epoch names no session either.
            (
                request(12, 0, 5, &[]),
                12,
                ErrorCode::FetchSessionIdNotFound,
            ),
            (
                request(12, sid, 2, &[]),
                12,
                ErrorCode::InvalidFetchSessionEpoch,
            ),
            (
                request(12, sid, -2, &[]),
                12,
                ErrorCode::InvalidFetchSessionEpoch,
            ),
            // A name-based session used at v13.
            (
                request(13, sid, 1, &[]),
                13,
                ErrorCode::FetchSessionTopicIdError,
            ),
        ];
        for (req, version, code) in cases {
            assert_eq!(error_of(cache.new_context(version, &req, 1)), Some(code));
            assert_eq!(
                cache.epoch(sid),
                Some(1),
                "{code:?}: the epoch does not move"
            );
            assert_eq!(cache.partitions(sid).unwrap().len(), 6);
        }
        // And an id-based session used before v13.
        let tid = open(&mut cache, 13, SIX, 0);
        let req = request(12, tid, 1, &[]);
        assert_eq!(
            error_of(cache.new_context(12, &req, 1)),
            Some(ErrorCode::FetchSessionTopicIdError)
        );
        assert_eq!(cache.epoch(tid), Some(1));
    }

    #[test]
    fn incremental_requests_add_update_and_forget_partitions() {
        for version in [7, 12, 13] {
            let mut cache = FetchSessionCache::new(10, 1);
            let sid = open(&mut cache, version, SIX, 0);
            // No change: the whole session is fetched.
            let ctx = incremental(&mut cache, version, &request(version, sid, 1, &[]), 1);
            assert_eq!(fetched(version, &ctx), SIX.to_vec(), "v{version}");
            assert_eq!((ctx.expected_epoch, cache.epoch(sid)), (2, Some(2)));
            // Update 1-1's offset, add 3-0, forget 2-0 and 2-2 (and an unknown partition).
            let mut req = request(version, sid, 2, &[(1, 1, 40), (3, 0, 5)]);
            forget(&mut req, version, 2, &[0, 2, 9]);
            let ctx = incremental(&mut cache, version, &req, 2);
            assert_eq!(
                fetched(version, &ctx),
                vec![(1, 0, 0), (1, 1, 40), (1, 2, 0), (2, 1, 0), (3, 0, 5)],
                "v{version}"
            );
            assert_eq!(cache.epoch(sid), Some(3));
            // The update stays in the session.
            let ctx = incremental(&mut cache, version, &request(version, sid, 3, &[]), 3);
            assert_eq!(fetched(version, &ctx)[1], (1, 1, 40));
        }
    }

    #[test]
    fn forgetting_every_partition_closes_the_session() {
        let mut cache = FetchSessionCache::new(10, 1);
        let sid = open(&mut cache, 12, &[(1, 0, 0), (1, 1, 0)], 0);
        let mut req = request(12, sid, 1, &[]);
        forget(&mut req, 12, 1, &[0, 1]);
        assert!(matches!(
            cache.new_context(12, &req, 1),
            FetchContext::Sessionless
        ));
        assert_eq!(cache.epoch(sid), None);
    }

    #[test]
    fn the_epoch_wraps_after_i32_max() {
        let mut cache = FetchSessionCache::new(10, 1);
        let sid = open(&mut cache, 12, SIX, 0);
        cache.sessions.get_mut(&sid).unwrap().epoch = i32::MAX;
        let ctx = incremental(&mut cache, 12, &request(12, sid, i32::MAX, &[]), 1);
        assert_eq!(ctx.expected_epoch, 1);
        let mut resp = respond(&ctx.topics, |_, _| QUIET);
        cache.finish_incremental(ctx, 12, &mut resp);
        assert_eq!((resp.error_code, resp.session_id), (0, sid));
        incremental(&mut cache, 12, &request(12, sid, 1, &[]), 2);
        assert_eq!(cache.epoch(sid), Some(2));
    }

    #[test]
    fn incremental_responses_carry_only_what_changed() {
        for version in [12, 13] {
            let mut cache = FetchSessionCache::new(10, 1);
            let sid = open(&mut cache, version, SIX, 0);
            let t = |ft: &FetchTopic| topic_number(version, &ft.topic, ft.topic_id);
            // Nothing changed: an empty response (topics without partitions dropped).
            let ctx = incremental(&mut cache, version, &request(version, sid, 1, &[]), 1);
            let mut resp = respond(&ctx.topics, |_, _| QUIET);
            let dropped = cache.finish_incremental(ctx, version, &mut resp);
            assert_eq!(dropped.len(), 6);
            assert!(resp.responses.is_empty());
            assert_eq!((resp.error_code, resp.session_id), (0, sid));

            // 1-0 records, 1-2 a new high watermark, 2-0 a new log start offset, 2-1 an error.
            let ctx = incremental(&mut cache, version, &request(version, sid, 2, &[]), 2);
            let mut resp = respond(&ctx.topics, |ft, p| match (t(ft), p) {
                (1, 0) => Answer {
                    records: 100,
                    hw: 12,
                    ..QUIET
                },
                (1, 2) => Answer { hw: 11, ..QUIET },
                (2, 0) => Answer {
                    log_start: 3,
                    ..QUIET
                },
                (2, 1) => Answer {
                    hw: -1,
                    log_start: -1,
                    error: ErrorCode::OffsetOutOfRange,
                    ..QUIET
                },
                _ => QUIET,
            });
            cache.finish_incremental(ctx, version, &mut resp);
            assert_eq!(
                listed(version, &resp),
                vec![(1, 0), (1, 2), (2, 0), (2, 1)],
                "v{version}"
            );

            // Same answers again: only what still has records or an error; the cleared error
            // (2-1 back with high watermark 10) is reported once more.
            let ctx = incremental(&mut cache, version, &request(version, sid, 3, &[]), 3);
            // 1-0 returned records: it moved to the end of the session's order.
            assert_eq!(
                fetched(version, &ctx)
                    .iter()
                    .map(|f| (f.0, f.1))
                    .collect::<Vec<_>>(),
                vec![(1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (1, 0)]
            );
            // 1-2 keeps its new high watermark and 2-0 its new log start offset; the rest quiet.
            let steady = |ft: &FetchTopic, p: i32| match (t(ft), p) {
                (1, 2) => Answer { hw: 11, ..QUIET },
                (2, 0) => Answer {
                    log_start: 3,
                    ..QUIET
                },
                _ => QUIET,
            };
            let mut resp = respond(&ctx.topics, steady);
            cache.finish_incremental(ctx, version, &mut resp);
            // 1-0 is back at hw 10 (was 12): reported; 2-1's error cleared: reported.
            assert_eq!(listed(version, &resp), vec![(2, 1), (1, 0)], "v{version}");

            // Now everything is as last reported.
            let ctx = incremental(&mut cache, version, &request(version, sid, 4, &[]), 4);
            let mut resp = respond(&ctx.topics, steady);
            cache.finish_incremental(ctx, version, &mut resp);
            assert!(resp.responses.is_empty(), "v{version}");
        }
    }

    #[test]
    fn an_error_is_reported_every_time() {
        let mut cache = FetchSessionCache::new(10, 1);
        let sid = open(&mut cache, 13, &[(1, 0, 0)], 0);
        for epoch in 1..4 {
            let ctx = incremental(&mut cache, 13, &request(13, sid, epoch, &[]), 1);
            let mut resp = respond(&ctx.topics, |_, _| Answer {
                hw: -1,
                log_start: -1,
                error: ErrorCode::UnknownTopicId,
                ..QUIET
            });
            cache.finish_incremental(ctx, 13, &mut resp);
            assert_eq!(listed(13, &resp), vec![(1, 0)]);
        }
    }

    #[test]
    fn a_duplicate_request_gets_invalid_epoch_at_response_time() {
        let mut cache = FetchSessionCache::new(10, 1);
        let sid = open(&mut cache, 12, SIX, 0);
        let first = incremental(&mut cache, 12, &request(12, sid, 1, &[]), 1);
        // Another request on the session completes while the first is still polling.
        let second = incremental(&mut cache, 12, &request(12, sid, 2, &[]), 2);
        let mut resp = respond(&second.topics, |_, _| QUIET);
        cache.finish_incremental(second, 12, &mut resp);
        let mut resp = respond(&first.topics, |_, _| Answer {
            records: 5,
            ..QUIET
        });
        let dropped = cache.finish_incremental(first, 12, &mut resp);
        assert_eq!(resp.error_code, ErrorCode::InvalidFetchSessionEpoch.code());
        assert_eq!(resp.session_id, sid);
        assert!(resp.responses.is_empty());
        assert_eq!(dropped.len(), 6);
        assert_eq!(cache.epoch(sid), Some(3));
    }

    #[test]
    fn a_session_removed_during_the_poll_still_filters_its_response() {
        let mut cache = FetchSessionCache::new(10, 1);
        let sid = open(&mut cache, 12, SIX, 0);
        let ctx = incremental(&mut cache, 12, &request(12, sid, 1, &[]), 1);
        assert!(cache.remove(sid));
        let mut resp = respond(&ctx.topics, |ft, p| {
            if ft.topic == "t2" && p == 2 {
                Answer { hw: 20, ..QUIET }
            } else {
                QUIET
            }
        });
        cache.finish_incremental(ctx, 12, &mut resp);
        assert_eq!((resp.error_code, resp.session_id), (0, sid));
        assert_eq!(listed(12, &resp), vec![(2, 2)]);
    }

    #[test]
    fn a_full_fetch_of_no_partition_creates_a_session() {
        let mut cache = FetchSessionCache::new(10, 1);
        let sid = open(&mut cache, 12, &[], 0);
        assert!(sid > 0);
        // Adding partitions to it incrementally.
        let ctx = incremental(&mut cache, 12, &request(12, sid, 1, &[(1, 0, 3)]), 1);
        assert_eq!(fetched(12, &ctx), vec![(1, 0, 3)]);
    }

    #[test]
    fn a_full_cache_declines_new_sessions() {
        let mut cache = FetchSessionCache::new(1, 1);
        let a = open(&mut cache, 12, SIX, 0);
        assert!(a > 0);
        // The first session is fresh: a second one (even larger) is declined.
        let bigger: Vec<_> = (0..10).map(|p| (3, p, 0)).collect();
        assert_eq!(open(&mut cache, 12, &bigger, 1_000), INVALID_SESSION_ID);
        assert_eq!(cache.len(), 1);
        // Zero slots: never a session.
        let mut none = FetchSessionCache::new(0, 1);
        assert_eq!(open(&mut none, 12, SIX, 0), INVALID_SESSION_ID);
        assert!(none.is_empty());
    }

    #[test]
    fn a_stale_session_is_evicted() {
        let mut cache = FetchSessionCache::new(1, 1);
        let a = open(&mut cache, 12, SIX, 0);
        // Unused for exactly EVICTION_MS: not yet stale.
        assert_eq!(
            open(&mut cache, 12, &[(1, 0, 0)], EVICTION_MS),
            INVALID_SESSION_ID
        );
        let b = open(&mut cache, 12, &[(1, 0, 0)], EVICTION_MS + 1);
        assert!(b > 0);
        assert_eq!(cache.epoch(a), None);
        assert_eq!(cache.len(), 1);
        // An incremental request on the evicted session: not found.
        let req = request(12, a, 1, &[]);
        assert_eq!(
            error_of(cache.new_context(12, &req, EVICTION_MS + 2)),
            Some(ErrorCode::FetchSessionIdNotFound)
        );
    }

    #[test]
    fn an_old_active_session_is_evicted_only_by_a_larger_one() {
        let mut cache = FetchSessionCache::new(1, 1);
        let a = open(&mut cache, 12, &[(1, 0, 0), (1, 1, 0)], 0);
        // Used recently, but created more than EVICTION_MS ago as of that use.
        let now = EVICTION_MS + 10;
        incremental(&mut cache, 12, &request(12, a, 1, &[]), now);
        // Same size: kept.
        assert_eq!(
            open(&mut cache, 12, &[(2, 0, 0), (2, 1, 0)], now + 1),
            INVALID_SESSION_ID
        );
        assert_eq!(cache.epoch(a), Some(2));
        // Larger: evicts it.
        let b = open(&mut cache, 12, &[(2, 0, 0), (2, 1, 0), (2, 2, 0)], now + 2);
        assert!(b > 0);
        assert_eq!(cache.epoch(a), None);
        // b is new (not evictable yet) even by a much larger session.
        let huge: Vec<_> = (0..50).map(|p| (3, p, 0)).collect();
        assert_eq!(open(&mut cache, 12, &huge, now + 3), INVALID_SESSION_ID);
        assert!(cache.epoch(b).is_some());
    }

    #[test]
    fn a_session_is_evictable_only_once_touched_after_eviction_ms() {
        // Kafka decides evictability at touch time: a session created and last used before
        // EVICTION_MS passed is only evictable as stale.
        let mut cache = FetchSessionCache::new(1, 1);
        let a = open(&mut cache, 12, &[(1, 0, 0)], 0);
        incremental(&mut cache, 12, &request(12, a, 1, &[]), EVICTION_MS - 1);
        let big: Vec<_> = (0..5).map(|p| (2, p, 0)).collect();
        assert_eq!(
            open(&mut cache, 12, &big, EVICTION_MS + 5),
            INVALID_SESSION_ID
        );
        assert!(cache.epoch(a).is_some());
    }

    #[test]
    fn session_ids_are_positive_and_unique() {
        let mut cache = FetchSessionCache::new(500, 42);
        let mut ids = std::collections::HashSet::new();
        for _ in 0..500 {
            let sid = open(&mut cache, 12, &[(1, 0, 0)], 0);
            assert!(sid > 0);
            assert!(ids.insert(sid));
        }
        assert_eq!(cache.len(), 500);
        // The same seed gives the same ids (deterministic).
        let mut again = FetchSessionCache::new(500, 42);
        let first = open(&mut again, 12, &[(1, 0, 0)], 0);
        assert!(ids.contains(&first));
    }
}
