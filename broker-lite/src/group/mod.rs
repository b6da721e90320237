//! The classic group coordinator: consumer group membership (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), committed offsets and their durability in `__consumer_offsets`.
//!
//! [`classic`] is the per-group state machine (pure: `now` in, responses out);
//! [`GroupCoordinator`] owns every group behind one mutex, persists what Kafka persists and
//! delivers the answers of waiting JoinGroup/SyncGroup requests through oneshot channels. Its
//! methods block (they append to the log): handlers call them through `handlers::blocking`.
//! A timer task ([`GroupCoordinator::tick`], every 50 ms) fires expired deadlines (initial
//! rebalance delay, rebalance and sync timeouts, sessions, KIP-394 pending members); deadlines
//! that are already due when a request is handled fire with it (so with
//! `group.initial.rebalance.delay.ms=0` a first join completes in its own request).
//!
//! # Durability
//!
//! `__consumer_offsets` is created on first use with `offsets.topic.num.partitions`
//! partitions (default 50), `cleanup.policy=compact`, `segment.bytes` from
//! `offsets.topic.segment.bytes` and no compression, as Kafka creates it. A group lives in
//! partition `abs(javaHashCode(groupId)) % partitions` ([`records::partition_for`]). An offset
//! commit appends one batch holding an `OffsetCommitKey`/`OffsetCommitValue` record per
//! partition (all or nothing) before it is answered; group metadata (`GroupMetadataValue`) is
//! appended when a generation becomes empty, when the leader's assignment arrives (before the
//! SyncGroup answers) and when a static member is replaced; DeleteGroups and OffsetDelete
//! append tombstones. Everything goes through the ordinary [`PartitionLog`] append path.
//!
//! On startup the topic is replayed: offsets come back, and every group with metadata or
//! offsets comes back **Empty** with its generation and protocol type (members rejoin: their
//! member ids are unknown, so their heartbeats get UNKNOWN_MEMBER_ID). A tombstone deletes.
//!
//! [`PartitionLog`]: crate::storage::PartitionLog

pub mod classic;
pub mod records;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{
    BatchOptions, ControlRecordType, EndTransactionMarker, RecordBatchBuilder,
};
use kafka_wire::ErrorCode;
use tokio::sync::oneshot;
use tracing::{info, warn};

pub use classic::{
    ClassicGroup, Effects, GroupConfig, GroupState, JoinRequest, JoinResult, JoinedMember,
    SyncResult,
};
pub use records::{OffsetAndMetadata, OFFSETS_TOPIC};

use crate::config::BrokerConfig;
use crate::state::{AdminError, BrokerState, Topic};
use records::{GroupMetadata, MemberMetadata, RecordKey};

/// The answer a waiting JoinGroup or SyncGroup receives.
#[derive(Debug)]
pub enum Reply {
    /// A JoinGroup answer.
    Join(JoinResult),
    /// A SyncGroup answer.
    Sync(SyncResult),
}

type Waiter = oneshot::Sender<Reply>;

/// A partition's offset: `(topic, partition)`.
type OffsetKey = (String, i32);

/// An offset and the log offset of its record in `__consumer_offsets`.
type RecordedOffset = (OffsetAndMetadata, i64);

/// A group and its committed offsets.
#[derive(Debug)]
struct Entry {
    group: ClassicGroup<Waiter>,
    /// The committed offsets, with the log offset of their records: a transactional offset
    /// replaces a committed one only if its record is newer (Kafka keeps the most recent
    /// record).
    offsets: BTreeMap<OffsetKey, RecordedOffset>,
    /// Transactional offsets (TxnOffsetCommit, KIP-98/KIP-447) not yet committed, per
    /// producer id: invisible to OffsetFetch until the commit marker.
    pending: HashMap<i64, BTreeMap<OffsetKey, RecordedOffset>>,
}

impl Entry {
    fn new(group: ClassicGroup<Waiter>) -> Entry {
        Entry {
            group,
            offsets: BTreeMap::new(),
            pending: HashMap::new(),
        }
    }

    /// Whether a transaction has an uncommitted offset for `key`.
    fn has_pending(&self, key: &OffsetKey) -> bool {
        self.pending.values().any(|p| p.contains_key(key))
    }

    /// Materializes (commit) or drops (abort) the pending offsets of `producer_id`
    /// (Kafka's `replayEndTransactionMarker`).
    fn complete_txn(&mut self, producer_id: i64, commit: bool) {
        let Some(pending) = self.pending.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for (key, recorded) in pending {
            commit_if_newer(&mut self.offsets, key, recorded);
        }
    }
}

/// A committed transactional offset: kept unless the current one's record is newer (Kafka
/// keeps the most recent record).
fn commit_if_newer(
    offsets: &mut BTreeMap<OffsetKey, RecordedOffset>,
    key: OffsetKey,
    recorded: RecordedOffset,
) {
    if offsets
        .get(&key)
        .is_none_or(|(_, existing)| recorded.1 > *existing)
    {
        offsets.insert(key, recorded);
    }
}

/// One partition's OffsetFetch answer: the committed offset (`None`: none), or an error
/// (UNSTABLE_OFFSET_COMMIT when a transaction has an uncommitted offset and the request
/// requires stable offsets).
pub type FetchedOffset = Result<Option<OffsetAndMetadata>, ErrorCode>;

/// Fetched offsets of one topic.
pub type TopicFetched = (String, Vec<(i32, FetchedOffset)>);

#[derive(Debug, Default)]
struct Inner {
    groups: HashMap<String, Entry>,
    shutting_down: bool,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("" for groups that only store offsets).
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata of the selected protocol (Stable groups only, else empty).
    pub metadata: Bytes,
    /// Assignment (Stable groups only, else empty).
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State.
    pub state: GroupState,
    /// Protocol type ("" if none).
    pub protocol_type: String,
    /// Selected protocol (Stable groups only, else "").
    pub protocol_data: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// Per-partition results of one topic.
pub type TopicCodes = (String, Vec<(i32, ErrorCode)>);

/// Kafka's mapping of append errors for group metadata
/// (`appendGroupMetadataErrorToResponseError`).
fn group_append_error(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::MessageTooLarge
        | ErrorCode::RecordListTooLarge
        | ErrorCode::InvalidFetchSize => ErrorCode::UnknownServerError,
        other => other,
    }
}

/// The same for offset commits (too large is INVALID_COMMIT_OFFSET_SIZE).
fn offset_append_error(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::MessageTooLarge
        | ErrorCode::RecordListTooLarge
        | ErrorCode::InvalidFetchSize => ErrorCode::InvalidCommitOffsetSize,
        other => group_append_error(other),
    }
}

/// The group coordinator (see the [module documentation](self)).
#[derive(Debug)]
pub struct GroupCoordinator {
    inner: Mutex<Inner>,
    config: GroupConfig,
    offsets_partitions: i32,
    offsets_segment_bytes: i64,
}

impl GroupCoordinator {
    /// A coordinator with the group settings of `config`.
    pub fn new(config: &BrokerConfig) -> GroupCoordinator {
        let int = |k: &str| config.get_i64(k);
        GroupCoordinator {
            inner: Mutex::new(Inner::default()),
            config: GroupConfig {
                initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms").max(0),
                min_session_timeout_ms: int("group.min.session.timeout.ms") as i32,
                max_session_timeout_ms: int("group.max.session.timeout.ms") as i32,
                max_size: int("group.max.size").max(1) as usize,
            },
            offsets_partitions: int("offsets.topic.num.partitions").clamp(1, 10_000) as i32,
            offsets_segment_bytes: int("offsets.topic.segment.bytes").max(1024),
        }
    }

    /// The group settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `__consumer_offsets`, created (as Kafka creates it) if it does not exist yet.
    ///
    /// # Errors
    /// Creation failures.
    pub fn ensure_offsets_topic(&self, state: &BrokerState) -> Result<Arc<Topic>, AdminError> {
        if let Some(t) = state.topic(OFFSETS_TOPIC) {
            return Ok(t);
        }
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                self.offsets_segment_bytes.to_string(),
            ),
            ("compression.type".to_string(), "producer".to_string()),
        ]);
        match state.create_topic(OFFSETS_TOPIC, self.offsets_partitions, 1, configs) {
            Ok(t) => Ok(t),
            Err(AdminError::TopicExists(name)) => state
                .topic(OFFSETS_TOPIC)
                .ok_or(AdminError::UnknownTopic(name)),
            Err(e) => Err(e),
        }
    }

    /// Appends `records` (key, value or tombstone) as one batch to the group's partition.
    fn append(
        &self,
        state: &BrokerState,
        group_id: &str,
        records: &[(Bytes, Option<Bytes>)],
        now: i64,
    ) -> Result<(), ErrorCode> {
        self.append_batch(state, group_id, records, None, now)
            .map(|_| ())
    }

    /// Appends `records` as one batch to the group's partition: a plain batch, or with
    /// `txn = Some((producer_id, epoch))` a transactional batch without sequence, written
    /// as the coordinator (TxnOffsetCommit). Returns the batch's base offset (-1 if there
    /// was nothing to write).
    fn append_batch(
        &self,
        state: &BrokerState,
        group_id: &str,
        records: &[(Bytes, Option<Bytes>)],
        txn: Option<(i64, i16)>,
        now: i64,
    ) -> Result<i64, ErrorCode> {
        if records.is_empty() {
            return Ok(-1);
        }
        let topic = self.ensure_offsets_topic(state).map_err(|e| {
            warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
            ErrorCode::CoordinatorNotAvailable
        })?;
        let index = records::partition_for(group_id, topic.partition_count());
        let partition = topic
            .partition(index)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let mut options = BatchOptions::default();
        if let Some((producer_id, producer_epoch)) = txn {
            options.producer_id = producer_id;
            options.producer_epoch = producer_epoch;
            options.is_transactional = true;
        }
        let mut builder = RecordBatchBuilder::new(options);
        for (key, value) in records {
            builder
                .append(now, Some(key), value.as_deref(), &[])
                .map_err(|_| ErrorCode::MessageTooLarge)?;
        }
        let batch = builder.finish().map_err(|_| ErrorCode::MessageTooLarge)?;
        let mut bytes = BytesMut::from(&batch[..]);
        let result = if txn.is_some() {
            partition.log().append_as_coordinator(&mut bytes, now)
        } else {
            partition.log().append(&mut bytes, now)
        };
        state.data_arrived.notify_waiters();
        result.map(|info| info.base_offset).map_err(|e| {
            warn!(group = group_id, error = %e, "cannot append to {OFFSETS_TOPIC}");
            e.error_code()
        })
    }

    fn group_metadata(group: &ClassicGroup<Waiter>) -> GroupMetadata {
        let protocol = group.protocol_name().unwrap_or_default().to_string();
        GroupMetadata {
            protocol_type: group.protocol_type().unwrap_or_default().to_string(),
            generation: group.generation_id(),
            protocol: group.protocol_name().map(str::to_string),
            leader: group.leader_id().map(str::to_string),
            current_state_timestamp: group.state_timestamp(),
            members: group
                .members()
                .iter()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Persists what the effects require, then answers the waiting requests.
    fn finish(
        &self,
        state: &BrokerState,
        group: &ClassicGroup<Waiter>,
        fx: Effects<Waiter>,
        now: i64,
    ) {
        let mut stored = Ok(());
        if fx.store {
            let value = records::group_value(&Self::group_metadata(group));
            stored = self
                .append(
                    state,
                    group.id(),
                    &[(records::group_key(group.id()), Some(value))],
                    now,
                )
                .map_err(group_append_error);
        }
        for (w, r) in fx.joins {
            let _ = w.send(Reply::Join(r));
        }
        for (w, mut r) in fx.syncs {
            if let (Err(code), ErrorCode::None) = (stored, r.error) {
                // Kafka answers the assignment only once it is written.
                r = SyncResult::error(code);
            }
            let _ = w.send(Reply::Sync(r));
        }
    }

    /// JoinGroup. The receiver gets the answer (at once, or when the join phase completes).
    pub fn join(
        &self,
        state: &BrokerState,
        group_id: &str,
        req: JoinRequest,
        now: i64,
    ) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        if inner.shutting_down {
            let _ = tx.send(Reply::Join(JoinResult::error(
                &req.member_id,
                ErrorCode::NotCoordinator,
            )));
            return rx;
        }
        if !inner.groups.contains_key(group_id) {
            // Only a member without an id creates a group.
            if !req.member_id.is_empty() {
                let _ = tx.send(Reply::Join(JoinResult::error(
                    &req.member_id,
                    ErrorCode::UnknownMemberId,
                )));
                return rx;
            }
            if req.session_timeout_ms < self.config.min_session_timeout_ms
                || req.session_timeout_ms > self.config.max_session_timeout_ms
            {
                let _ = tx.send(Reply::Join(JoinResult::error(
                    &req.member_id,
                    ErrorCode::InvalidSessionTimeout,
                )));
                return rx;
            }
            inner.groups.insert(
                group_id.to_string(),
                Entry::new(ClassicGroup::new(group_id, now)),
            );
        }
        let Some(entry) = inner.groups.get_mut(group_id) else {
            return rx;
        };
        let fx = entry.group.join(req, tx, now, &self.config);
        self.finish(state, &entry.group, fx, now);
        rx
    }

    /// SyncGroup. The receiver gets the answer (at once, or when the leader's assignment
    /// arrives).
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        state: &BrokerState,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        if inner.shutting_down {
            let _ = tx.send(Reply::Sync(SyncResult::error(ErrorCode::NotCoordinator)));
            return rx;
        }
        let Some(entry) = inner.groups.get_mut(group_id) else {
            let _ = tx.send(Reply::Sync(SyncResult::error(ErrorCode::UnknownMemberId)));
            return rx;
        };
        let mut fx = entry.group.sync(
            member_id,
            instance_id,
            generation_id,
            protocol_type,
            protocol_name,
            assignments,
            tx,
            now,
        );
        fx.merge(entry.group.on_timer(now, &self.config));
        self.finish(state, &entry.group, fx, now);
        rx
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        state: &BrokerState,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: i64,
    ) -> ErrorCode {
        let mut inner = self.lock();
        let Some(entry) = inner.groups.get_mut(group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        let fx = entry.group.on_timer(now, &self.config);
        self.finish(state, &entry.group, fx, now);
        entry
            .group
            .heartbeat(member_id, instance_id, generation_id, now)
    }

    /// LeaveGroup of `members` (`(member id, group.instance.id)`): one code per member, or a
    /// group-level error.
    pub fn leave(
        &self,
        state: &BrokerState,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: i64,
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let mut inner = self.lock();
        let Some(entry) = inner.groups.get_mut(group_id) else {
            return Ok(vec![ErrorCode::UnknownMemberId; members.len()]);
        };
        let (codes, mut fx) = entry.group.leave(members, now, &self.config)?;
        fx.merge(entry.group.on_timer(now, &self.config));
        self.finish(state, &entry.group, fx, now);
        Ok(codes)
    }

    /// OffsetCommit: validates the member and generation, then writes every offset in one
    /// batch. A group-level error applies to every partition.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_offsets(
        &self,
        state: &BrokerState,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        version: i16,
        offsets: Vec<(String, i32, OffsetAndMetadata)>,
        now: i64,
    ) -> Result<(), ErrorCode> {
        let mut inner = self.lock();
        if inner.shutting_down {
            return Err(ErrorCode::NotCoordinator);
        }
        if !inner.groups.contains_key(group_id) {
            if generation_id >= 0 {
                // v9+ says so; older versions get ILLEGAL_GENERATION (Kafka 4.0).
                return Err(if version >= 9 {
                    ErrorCode::GroupIdNotFound
                } else {
                    ErrorCode::IllegalGeneration
                });
            }
            // A "simple" group: offsets only, no group management.
            inner.groups.insert(
                group_id.to_string(),
                Entry::new(ClassicGroup::new(group_id, now)),
            );
        }
        let Some(entry) = inner.groups.get_mut(group_id) else {
            return Err(ErrorCode::CoordinatorNotAvailable);
        };
        let fx = entry.group.on_timer(now, &self.config);
        self.finish(state, &entry.group, fx, now);
        entry
            .group
            .validate_offset_commit(member_id, instance_id, generation_id, now)?;
        let records: Vec<(Bytes, Option<Bytes>)> = offsets
            .iter()
            .map(|(t, p, o)| {
                (
                    records::offset_key(group_id, t, *p),
                    Some(records::offset_value(o)),
                )
            })
            .collect();
        let base = self
            .append_batch(state, group_id, &records, None, now)
            .map_err(offset_append_error)?;
        for (i, (t, p, o)) in offsets.into_iter().enumerate() {
            entry.offsets.insert((t, p), (o, base + i as i64));
        }
        Ok(())
    }

    /// TxnOffsetCommit (KIP-98; KIP-447 member checks from v3): validates the member as
    /// Kafka's `validateOffsetCommit` for transactional commits, then writes every offset as
    /// one transactional batch of `producer_id`/`producer_epoch` (no sequence, written as the
    /// coordinator). The offsets stay pending (invisible to OffsetFetch) until the
    /// transaction coordinator writes the transaction's marker to the group's partition
    /// ([`complete_txn`](Self::complete_txn)). An unknown group is created (offsets only)
    /// for generation -1, else ILLEGAL_GENERATION (Kafka 4.0).
    ///
    /// # Errors
    /// A group-level error for every partition.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit_offsets(
        &self,
        state: &BrokerState,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        offsets: Vec<(String, i32, OffsetAndMetadata)>,
        now: i64,
    ) -> Result<(), ErrorCode> {
        let mut inner = self.lock();
        if inner.shutting_down {
            return Err(ErrorCode::NotCoordinator);
        }
        if !inner.groups.contains_key(group_id) {
            if generation_id >= 0 {
                return Err(ErrorCode::IllegalGeneration);
            }
            inner.groups.insert(
                group_id.to_string(),
                Entry::new(ClassicGroup::new(group_id, now)),
            );
        }
        let Some(entry) = inner.groups.get_mut(group_id) else {
            return Err(ErrorCode::CoordinatorNotAvailable);
        };
        let fx = entry.group.on_timer(now, &self.config);
        self.finish(state, &entry.group, fx, now);
        entry
            .group
            .validate_txn_offset_commit(member_id, instance_id, generation_id)?;
        let records: Vec<(Bytes, Option<Bytes>)> = offsets
            .iter()
            .map(|(t, p, o)| {
                (
                    records::offset_key(group_id, t, *p),
                    Some(records::offset_value(o)),
                )
            })
            .collect();
        let base = self
            .append_batch(
                state,
                group_id,
                &records,
                Some((producer_id, producer_epoch)),
                now,
            )
            .map_err(offset_append_error)?;
        let pending = entry.pending.entry(producer_id).or_default();
        for (i, (t, p, o)) in offsets.into_iter().enumerate() {
            pending.insert((t, p), (o, base + i as i64));
        }
        Ok(())
    }

    /// The transaction coordinator wrote the marker of `producer_id`'s transaction to
    /// partition `partition` of `__consumer_offsets` (of `partition_count` partitions):
    /// Kafka's `scheduleHandleTxnCompletion`. The pending offsets of that producer in the
    /// groups of that partition are committed (`commit`) or dropped.
    pub fn complete_txn(
        &self,
        partition: i32,
        partition_count: i32,
        producer_id: i64,
        commit: bool,
    ) {
        let mut inner = self.lock();
        for (id, entry) in inner.groups.iter_mut() {
            if entry.pending.contains_key(&producer_id)
                && records::partition_for(id, partition_count) == partition
            {
                entry.complete_txn(producer_id, commit);
            }
        }
    }

    /// OffsetFetch: the committed offsets of `topics` (`None`: every committed offset).
    /// An unknown group has none. With `require_stable` (v7+), a partition with an
    /// uncommitted transactional offset answers UNSTABLE_OFFSET_COMMIT (as Kafka).
    ///
    /// # Errors
    /// A group-level error.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Result<Vec<TopicFetched>, ErrorCode> {
        let inner = self.lock();
        let entry = inner.groups.get(group_id);
        if entry.is_some_and(|e| e.group.state() == GroupState::Dead) {
            return Err(ErrorCode::GroupIdNotFound);
        }
        let lookup = |t: &str, p: i32| -> FetchedOffset {
            let key = (t.to_string(), p);
            match entry {
                Some(e) if require_stable && e.has_pending(&key) => {
                    Err(ErrorCode::UnstableOffsetCommit)
                }
                Some(e) => Ok(e.offsets.get(&key).map(|(o, _)| o.clone())),
                None => Ok(None),
            }
        };
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(t, parts)| {
                    let found = parts.iter().map(|p| (*p, lookup(&t, *p))).collect();
                    (t, found)
                })
                .collect(),
            None => {
                let mut out: Vec<TopicFetched> = Vec::new();
                for (t, p) in entry.map(|e| e.offsets.keys()).into_iter().flatten() {
                    let found = lookup(t, *p);
                    match out.last_mut() {
                        Some((last, parts)) if last == t => parts.push((*p, found)),
                        _ => out.push((t.clone(), vec![(*p, found)])),
                    }
                }
                out
            }
        })
    }

    /// Every group, sorted by id.
    pub fn list_groups(&self) -> Vec<GroupListing> {
        let inner = self.lock();
        let mut out: Vec<GroupListing> = inner
            .groups
            .values()
            .map(|e| GroupListing {
                group_id: e.group.id().to_string(),
                protocol_type: e.group.protocol_type().unwrap_or_default().to_string(),
                state: e.group.state(),
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// A group's description (`None`: no such group), as Kafka's `ClassicGroup.describe`.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let inner = self.lock();
        let g = &inner.groups.get(group_id)?.group;
        let stable = g.state() == GroupState::Stable;
        let protocol = g.protocol_name().unwrap_or_default().to_string();
        Some(GroupDescription {
            state: g.state(),
            protocol_type: g.protocol_type().unwrap_or_default().to_string(),
            protocol_data: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members()
                .iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    /// DeleteGroups: one code per group. A deleted group's offsets and metadata get
    /// tombstones.
    pub fn delete_groups(
        &self,
        state: &BrokerState,
        group_ids: &[String],
        now: i64,
    ) -> Vec<ErrorCode> {
        let mut inner = self.lock();
        group_ids
            .iter()
            .map(|id| {
                let Some(entry) = inner.groups.get_mut(id) else {
                    return ErrorCode::GroupIdNotFound;
                };
                if let Err(e) = entry.group.validate_delete() {
                    return e;
                }
                let mut tombstones: Vec<(Bytes, Option<Bytes>)> = entry
                    .offsets
                    .keys()
                    .map(|(t, p)| (records::offset_key(id, t, *p), None))
                    .collect();
                tombstones.push((records::group_key(id), None));
                if let Err(e) = self.append(state, id, &tombstones, now) {
                    return group_append_error(e);
                }
                let fx = entry
                    .group
                    .mark_dead(ErrorCode::CoordinatorNotAvailable, now);
                self.finish(state, &entry.group, fx, now);
                inner.groups.remove(id);
                info!(group = %id, "deleted group");
                ErrorCode::None
            })
            .collect()
    }

    /// OffsetDelete: removes the offsets of `topics` (partitions of topics a non-empty
    /// consumer group subscribes to get GROUP_SUBSCRIBED_TO_TOPIC).
    ///
    /// # Errors
    /// A group-level error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, append failures).
    pub fn delete_offsets(
        &self,
        state: &BrokerState,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
        now: i64,
    ) -> Result<Vec<TopicCodes>, ErrorCode> {
        let mut inner = self.lock();
        let Some(entry) = inner.groups.get_mut(group_id) else {
            return Err(ErrorCode::GroupIdNotFound);
        };
        entry.group.validate_offset_delete()?;
        let mut results = Vec::with_capacity(topics.len());
        let mut tombstones = Vec::new();
        let mut doomed = Vec::new();
        for (topic, partitions) in topics {
            let code = if entry.group.is_subscribed_to_topic(&topic) {
                ErrorCode::GroupSubscribedToTopic
            } else {
                ErrorCode::None
            };
            if code == ErrorCode::None {
                for p in &partitions {
                    let key = (topic.clone(), *p);
                    if entry.offsets.contains_key(&key) {
                        tombstones.push((records::offset_key(group_id, &topic, *p), None));
                        doomed.push(key);
                    }
                }
            }
            results.push((topic, partitions.into_iter().map(|p| (p, code)).collect()));
        }
        self.append(state, group_id, &tombstones, now)
            .map_err(group_append_error)?;
        for key in doomed {
            entry.offsets.remove(&key);
        }
        Ok(results)
    }

    /// Whether any group has a deadline at or before `now` (cheap check for the timer task).
    /// Busy (another thread holds the coordinator, perhaps appending) counts as due, so that
    /// the async caller never blocks on the mutex.
    pub fn has_due_timers(&self, now: i64) -> bool {
        match self.inner.try_lock() {
            Ok(inner) => inner
                .groups
                .values()
                .any(|e| e.group.next_deadline().is_some_and(|d| d <= now)),
            Err(_) => true,
        }
    }

    /// Fires every expired deadline of every group.
    pub fn tick(&self, state: &BrokerState, now: i64) {
        let mut inner = self.lock();
        for entry in inner.groups.values_mut() {
            if entry.group.next_deadline().is_some_and(|d| d <= now) {
                let fx = entry.group.on_timer(now, &self.config);
                self.finish(state, &entry.group, fx, now);
            }
        }
    }

    /// Stops serving: every waiting JoinGroup/SyncGroup (and any later one) is answered with
    /// NOT_COORDINATOR, so that connections can finish their requests.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        inner.shutting_down = true;
        for entry in inner.groups.values_mut() {
            let fx = entry.group.drain_waiters(ErrorCode::NotCoordinator);
            for (w, r) in fx.joins {
                let _ = w.send(Reply::Join(r));
            }
            for (w, r) in fx.syncs {
                let _ = w.send(Reply::Sync(r));
            }
        }
    }

    /// Replays `__consumer_offsets` (if it exists): committed offsets come back, and every
    /// group with metadata or offsets comes back Empty with its generation and protocol type.
    /// Transactional batches (TxnOffsetCommit) are pending per producer until a commit
    /// marker in the same partition materializes them (an abort marker drops them); those of
    /// transactions still open stay pending. Undecodable records are skipped with a warning.
    pub fn load(&self, state: &BrokerState, now: i64) {
        let Some(topic) = state.topic(OFFSETS_TOPIC) else {
            return;
        };
        let mut replay = Replay::default();
        let mut count = 0usize;
        for partition in topic.all_partitions() {
            // Pending transactional offsets of this partition, per producer id.
            let mut pending: HashMap<i64, Vec<PendingRecord>> = HashMap::new();
            partition.replay_records(|batch, record| {
                let producer_id = batch.producer_id();
                if batch.is_control() {
                    match EndTransactionMarker::decode(
                        record.key.as_deref(),
                        record.value.as_deref(),
                    ) {
                        Ok(Some(marker)) => {
                            let commit = marker.control_type == ControlRecordType::Commit;
                            for p in pending.remove(&producer_id).unwrap_or_default() {
                                if commit {
                                    replay.commit(p);
                                }
                            }
                        }
                        Ok(None) => {}
                        Err(e) => warn!(error = %e, "skipping an undecodable transaction marker"),
                    }
                    return;
                }
                count += 1;
                if batch.is_transactional() {
                    if let Some(p) = pending_record(record.key, record.value, record.offset) {
                        pending.entry(producer_id).or_default().push(p);
                    }
                } else {
                    replay.apply(record.key, record.value, record.offset);
                }
            });
            for (producer_id, records) in pending {
                for p in records {
                    replay
                        .pending
                        .entry(p.group.clone())
                        .or_default()
                        .entry(producer_id)
                        .or_default()
                        .insert(p.key, (p.offset, p.record_offset));
                }
            }
        }
        let mut inner = self.lock();
        let ids: Vec<String> = replay
            .offsets
            .keys()
            .chain(replay.metadata.keys())
            .chain(replay.pending.keys())
            .cloned()
            .collect();
        for id in ids {
            if inner.groups.contains_key(&id) {
                continue;
            }
            let meta = replay.metadata.remove(&id);
            let group = match meta {
                Some(m) => ClassicGroup::restored(&id, m.generation, Some(m.protocol_type), now),
                None => ClassicGroup::new(&id, now),
            };
            let mut entry = Entry::new(group);
            entry.offsets = replay.offsets.remove(&id).unwrap_or_default();
            entry.pending = replay.pending.remove(&id).unwrap_or_default();
            inner.groups.insert(id.clone(), entry);
        }
        if count > 0 {
            info!(
                records = count,
                groups = inner.groups.len(),
                "loaded groups and offsets from {OFFSETS_TOPIC}"
            );
        }
    }
}

/// A transactional offset commit record met during replay.
#[derive(Debug)]
struct PendingRecord {
    group: String,
    key: OffsetKey,
    offset: OffsetAndMetadata,
    record_offset: i64,
}

/// The offset commit of a transactional batch's record (other records are ignored).
fn pending_record(
    key: Option<Bytes>,
    value: Option<Bytes>,
    record_offset: i64,
) -> Option<PendingRecord> {
    let RecordKey::Offset {
        group,
        topic,
        partition,
    } = records::decode_key(key?).ok()?
    else {
        return None;
    };
    match records::decode_offset_value(value?) {
        Ok(offset) => Some(PendingRecord {
            group,
            key: (topic, partition),
            offset,
            record_offset,
        }),
        Err(e) => {
            warn!(%group, error = %e, "skipping an undecodable transactional offset commit");
            None
        }
    }
}

/// The replay state of `__consumer_offsets`.
#[derive(Debug, Default)]
struct Replay {
    offsets: HashMap<String, BTreeMap<OffsetKey, RecordedOffset>>,
    metadata: HashMap<String, GroupMetadata>,
    pending: HashMap<String, HashMap<i64, BTreeMap<OffsetKey, RecordedOffset>>>,
}

impl Replay {
    /// A committed transactional offset: kept if its record is newer than the current one.
    fn commit(&mut self, p: PendingRecord) {
        commit_if_newer(
            self.offsets.entry(p.group).or_default(),
            p.key,
            (p.offset, p.record_offset),
        );
    }

    /// Applies one plain `__consumer_offsets` record.
    fn apply(&mut self, key: Option<Bytes>, value: Option<Bytes>, record_offset: i64) {
        apply_record(
            &mut self.offsets,
            &mut self.metadata,
            key,
            value,
            record_offset,
        );
    }
}

/// Applies one `__consumer_offsets` record to the replay state.
fn apply_record(
    offsets: &mut HashMap<String, BTreeMap<OffsetKey, RecordedOffset>>,
    metadata: &mut HashMap<String, GroupMetadata>,
    key: Option<Bytes>,
    value: Option<Bytes>,
    record_offset: i64,
) {
    let Some(key) = key else { return };
    match records::decode_key(key) {
        Ok(RecordKey::Offset {
            group,
            topic,
            partition,
        }) => match value.map(records::decode_offset_value) {
            None => {
                if let Some(o) = offsets.get_mut(&group) {
                    o.remove(&(topic, partition));
                    if o.is_empty() {
                        offsets.remove(&group);
                    }
                }
            }
            Some(Ok(v)) => {
                offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), (v, record_offset));
            }
            Some(Err(e)) => warn!(%group, error = %e, "skipping an undecodable offset commit"),
        },
        Ok(RecordKey::Group { group }) => match value.map(records::decode_group_value) {
            None => {
                metadata.remove(&group);
            }
            Some(Ok(v)) => {
                metadata.insert(group, v);
            }
            Some(Err(e)) => warn!(%group, error = %e, "skipping undecodable group metadata"),
        },
        Ok(RecordKey::Other(_)) => {}
        Err(e) => warn!(error = %e, "skipping an undecodable {OFFSETS_TOPIC} key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn om(offset: i64) -> OffsetAndMetadata {
        OffsetAndMetadata {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
        }
    }

    fn key(p: i32) -> OffsetKey {
        ("t".to_string(), p)
    }

    #[test]
    fn pending_offsets_materialize_on_commit_unless_a_newer_commit_exists() {
        let mut e = Entry::new(ClassicGroup::new("g", 0));
        // A plain commit at record offset 10 for t-0; a transaction writes t-0 at 5 (older)
        // and t-1 at 6.
        e.offsets.insert(key(0), (om(100), 10));
        e.pending
            .entry(7)
            .or_default()
            .extend([(key(0), (om(1), 5)), (key(1), (om(2), 6))]);
        e.pending.entry(8).or_default().insert(key(1), (om(3), 11));
        assert!(e.has_pending(&key(0)) && e.has_pending(&key(1)));
        e.complete_txn(7, true);
        assert_eq!(
            e.offsets[&key(0)].0.offset,
            100,
            "the newer plain commit wins"
        );
        assert_eq!(e.offsets[&key(1)].0.offset, 2);
        assert!(!e.has_pending(&key(0)));
        assert!(e.has_pending(&key(1)), "producer 8 is still open");
        e.complete_txn(8, false);
        assert_eq!(e.offsets[&key(1)].0.offset, 2, "aborted: dropped");
        assert!(e.pending.is_empty());
        // Completing an unknown producer does nothing.
        e.complete_txn(9, true);
        assert_eq!(e.offsets.len(), 2);
    }

    #[test]
    fn replay_commits_keep_the_newest_record() {
        let mut r = Replay::default();
        r.apply(
            Some(records::offset_key("g", "t", 0)),
            Some(records::offset_value(&om(100))),
            10,
        );
        let pending = |offset, at| PendingRecord {
            group: "g".into(),
            key: key(0),
            offset: om(offset),
            record_offset: at,
        };
        r.commit(pending(1, 5));
        assert_eq!(r.offsets["g"][&key(0)].0.offset, 100);
        r.commit(pending(2, 12));
        assert_eq!(r.offsets["g"][&key(0)], (om(2), 12));
        let p = pending_record(
            Some(records::offset_key("g", "t", 3)),
            Some(records::offset_value(&om(4))),
            20,
        )
        .unwrap();
        assert_eq!(
            (p.group.as_str(), p.key.clone(), p.record_offset),
            ("g", key(3), 20)
        );
        assert!(pending_record(Some(records::group_key("g")), None, 1).is_none());
    }
}
