//! The classic consumer group protocol as a pure state machine: Java's `AbstractCoordinator`
//! and `ConsumerCoordinator` (JoinGroup / SyncGroup / Heartbeat / LeaveGroup, KIP-394 member
//! ids, KIP-345 static members, KIP-429 cooperative rebalancing, committed offsets).
//!
//! [`ConsumerCoordinator`] does no I/O and reads no clock: a driver feeds it time, responses
//! and transport failures (`handle_*`, [`ConsumerCoordinator::poll_called`],
//! [`ConsumerCoordinator::request_rejoin`]) and carries out the [`Action`]s that
//! [`ConsumerCoordinator::next_action`] returns, in order, until it returns `None`; then it
//! sleeps until [`ConsumerCoordinator::poll_timeout`] or the next input. Every request action
//! carries a [`RequestId`]; its response (or failure) is handed back with that id, and answers
//! to requests the machine has since given up on (the coordinator moved, the member left) are
//! ignored.
//!
//! The rebalance listener callbacks ([`Action::PartitionsRevoked`],
//! [`Action::PartitionsAssigned`], [`Action::PartitionsLost`]) come in the same queue, in
//! Java's order relative to the requests: for the eager protocol every owned partition is
//! revoked before the JoinGroup is sent; for the cooperative protocol only the partitions that
//! the new assignment takes away are revoked, after SyncGroup, and the member then rejoins at
//! once. The driver invokes them from the application's poll path and must do so before it
//! sends any request queued after them. The revocations that precede a JoinGroup are handed
//! out *before* the JoinGroup is built (it comes from the next [`ConsumerCoordinator::next_action`]),
//! while the member is still in its generation, so an offset commit made when handling them
//! (auto-commit, or the application's listener) is accepted, as in Java's `onJoinPrepare`. A
//! driver holding actions back while the application runs callbacks can keep the session
//! alive with [`ConsumerCoordinator::next_heartbeat`].
//!
//! Behaviour follows Java (Kafka 3.x/4.0 classic protocol):
//! - **Errors**: REBALANCE_IN_PROGRESS → rejoin (without resetting the generation);
//!   UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION → reset the generation (UNKNOWN_MEMBER_ID also the
//!   member id) and rejoin, the owned partitions being *lost*; MEMBER_ID_REQUIRED → rejoin at
//!   once with the member id the coordinator gave; COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR
//!   or a transport failure → forget the coordinator and look it up again;
//!   COORDINATOR_LOAD_IN_PROGRESS and other retriable errors → retry after `retry.backoff.ms`;
//!   FENCED_INSTANCE_ID, GROUP_AUTHORIZATION_FAILED, INCONSISTENT_GROUP_PROTOCOL,
//!   INVALID_SESSION_TIMEOUT, INVALID_GROUP_ID, GROUP_MAX_SIZE_REACHED, UNSUPPORTED_VERSION and
//!   unexpected errors → [`Action::Fatal`], after which the machine does nothing more.
//! - **Heartbeats** go every `heartbeat.interval.ms` from the JoinGroup response on (the
//!   CompletingRebalance and Stable states), one at a time; a failed one is retried after
//!   `retry.backoff.ms`. No heartbeat response within `session.timeout.ms` marks the
//!   coordinator unknown (Java's heartbeat thread does the same), and the lookup that follows
//!   restarts the session timer.
//! - **`max.poll.interval.ms`**: when the application has not called poll for that long while
//!   the member is in the group, the member leaves (LeaveGroup for dynamic members only) and
//!   resets its generation; it rejoins only after the next [`ConsumerCoordinator::poll_called`],
//!   when its partitions are reported lost (Java's `onPartitionsLost` after a poll timeout).
//! - **Close**: the owned partitions are revoked (lost when the generation is gone or a
//!   rebalance is in progress), then a dynamic member sends LeaveGroup.
//!
//! Not done here: fetching committed offsets for newly assigned partitions and committing
//! before a rebalance or on close when auto-commit is on (the driver's job: the
//! [`Consumer`](super::Consumer) does both, committing when it handles
//! [`Action::PartitionsRevoked`]); matching a subscription pattern against metadata (the
//! driver does it on every metadata update and passes the matches to
//! [`ConsumerCoordinator::subscribe_pattern_matches`]), KIP-881 rack-aware assignment, the
//! leader's validation of cooperative assignments, exponential retry backoff and the new
//! (KIP-848) consumer protocol.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_wire::consumer_protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};
use kafka_wire::messages::{
    consumer_protocol_subscription, find_coordinator_response, join_group_request,
    leave_group_request, offset_commit_request, offset_fetch_request, sync_group_request,
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest,
    FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_wire::{ErrorCode, Message};

use super::assignor::{
    group_by_topic, ConsumerPartitionAssignor, CooperativeStickyAssignor, MemberAssignment,
    MemberSubscription, RangeAssignor, RebalanceProtocol, TopicPartition,
};
use crate::error::Error;

/// The protocol type consumers use in JoinGroup / SyncGroup.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Java's `Generation.NO_GENERATION.generationId` (and `OffsetCommitRequest.DEFAULT_GENERATION_ID`).
pub const NO_GENERATION_ID: i32 = -1;

/// Java's `JoinGroupRequest.UNKNOWN_MEMBER_ID`: no member id yet.
pub const UNKNOWN_MEMBER_ID: &str = "";

/// Extra time a JoinGroup may take over the rebalance timeout (Java's `JOIN_GROUP_TIMEOUT_LAPSE`).
const JOIN_GROUP_TIMEOUT_LAPSE: Duration = Duration::from_secs(5);

/// The group settings of a consumer (Java's `GroupRebalanceConfig` plus the consumer keys the
/// coordinator reads).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: a static member (KIP-345) when set.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms` (default 45 s).
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`, also sent as the rebalance timeout (default 5 min).
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms` (default 3 s).
    pub heartbeat_interval: Duration,
    /// `retry.backoff.ms` (default 100 ms).
    pub retry_backoff: Duration,
    /// `request.timeout.ms` (default 30 s); JoinGroup gets at least the rebalance timeout + 5 s.
    pub request_timeout: Duration,
    /// `auto.commit.interval.ms` when `enable.auto.commit` is true (default 5 s), else `None`.
    pub auto_commit_interval: Option<Duration>,
    /// `client.rack`, sent in the subscription (ConsumerProtocol v3).
    pub client_rack: Option<String>,
    /// `partition.assignment.strategy`, in preference order (default `range`,
    /// `cooperative-sticky`, as Java 3.x/4.0).
    pub assignors: Vec<Arc<dyn ConsumerPartitionAssignor>>,
}

impl CoordinatorConfig {
    /// Java's defaults for `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        CoordinatorConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            session_timeout: Duration::from_millis(45_000),
            rebalance_timeout: Duration::from_millis(300_000),
            heartbeat_interval: Duration::from_millis(3_000),
            retry_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_millis(30_000),
            auto_commit_interval: Some(Duration::from_millis(5_000)),
            client_rack: None,
            assignors: vec![Arc::new(RangeAssignor), Arc::new(CooperativeStickyAssignor)],
        }
    }
}

/// Identifies one request the machine asked for; hand it back with the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The group coordinator broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorNode {
    /// Its node id.
    pub node_id: i32,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: i32,
}

/// A member's generation (Java's `AbstractCoordinator.Generation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The generation id ([`NO_GENERATION_ID`] when none).
    pub generation_id: i32,
    /// The member id ([`UNKNOWN_MEMBER_ID`] when none).
    pub member_id: String,
    /// The group's selected protocol (assignor name).
    pub protocol_name: Option<String>,
}

impl Generation {
    /// Java's `Generation.NO_GENERATION`.
    pub fn none() -> Self {
        Generation {
            generation_id: NO_GENERATION_ID,
            member_id: UNKNOWN_MEMBER_ID.to_string(),
            protocol_name: None,
        }
    }

    /// Whether this is no generation at all, or one whose member id was lost (Java's test in
    /// `onJoinPrepare` for "partitions lost").
    fn is_reset(&self) -> bool {
        self.generation_id == NO_GENERATION_ID || self.member_id.is_empty()
    }
}

/// Java's `AbstractCoordinator.MemberState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Not in the group (never joined, left, or reset after an error).
    Unjoined,
    /// JoinGroup sent, waiting for its response.
    PreparingRebalance,
    /// JoinGroup answered, SyncGroup in progress.
    CompletingRebalance,
    /// Assignment received; heartbeating.
    Stable,
}

/// FindCoordinator to send to any broker (the least loaded one).
#[derive(Debug, Clone, PartialEq)]
pub struct FindCoordinatorSend {
    /// Hand back with the response.
    pub id: RequestId,
    /// The group to find the coordinator of.
    pub group_id: String,
}

impl FindCoordinatorSend {
    /// The request at `version` (the key field moved to a list in v4).
    pub fn request(&self, version: i16) -> FindCoordinatorRequest {
        find_coordinator_request(0, &self.group_id, version)
    }
}

/// A FindCoordinator request for `key` of `key_type` (0: group, 1: transaction) at
/// `version` (the key moved to a list in v4).
pub(crate) fn find_coordinator_request(
    key_type: i8,
    key: &str,
    version: i16,
) -> FindCoordinatorRequest {
    let mut r = FindCoordinatorRequest {
        key_type,
        ..Default::default()
    };
    if version >= 4 {
        r.coordinator_keys = vec![key.to_owned()];
    } else {
        r.key = key.to_owned();
    }
    r
}

/// The answer a FindCoordinator response gives for `key`: the error, its message and the
/// node, from the v4+ list (the entry for `key`, else the first) or, when the list is empty,
/// from the v0-v3 top-level fields.
pub(crate) fn find_coordinator_answer(
    response: &FindCoordinatorResponse,
    key: &str,
) -> (ErrorCode, Option<String>, CoordinatorNode) {
    match response
        .coordinators
        .iter()
        .find(|c| c.key == key)
        .or_else(|| response.coordinators.first())
    {
        Some(c) => (
            ErrorCode::from_code(c.error_code),
            c.error_message.clone(),
            node_of(c),
        ),
        None => (
            ErrorCode::from_code(response.error_code),
            response.error_message.clone(),
            CoordinatorNode {
                node_id: response.node_id,
                host: response.host.clone(),
                port: response.port,
            },
        ),
    }
}

/// A request to send to the coordinator.
#[derive(Debug, Clone, PartialEq)]
pub struct CoordinatorSend<R> {
    /// Hand back with the response.
    pub id: RequestId,
    /// Where to send it.
    pub coordinator: CoordinatorNode,
    /// How long to wait for the response before reporting a failure (JoinGroup waits for the
    /// whole rebalance).
    pub timeout: Duration,
    /// The request (valid at every version the API has, except where noted on the action).
    pub request: R,
}

/// LeaveGroup to send to the coordinator.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaveGroupSend {
    /// Hand back with the response.
    pub id: RequestId,
    /// Where to send it.
    pub coordinator: CoordinatorNode,
    /// The group.
    pub group_id: String,
    /// The leaving member.
    pub member_id: String,
    /// Why (LeaveGroup v5+).
    pub reason: String,
}

impl LeaveGroupSend {
    /// The request at `version` (the member moved to a list in v3).
    pub fn request(&self, version: i16) -> LeaveGroupRequest {
        let mut r = LeaveGroupRequest {
            group_id: self.group_id.clone(),
            ..Default::default()
        };
        if version >= 3 {
            r.members = vec![leave_group_request::MemberIdentity {
                member_id: self.member_id.clone(),
                group_instance_id: None,
                reason: Some(self.reason.clone()),
                ..Default::default()
            }];
        } else {
            r.member_id = self.member_id.clone();
        }
        r
    }
}

/// What the driver must do next ([`ConsumerCoordinator::next_action`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Look up the group coordinator; answer with
    /// [`ConsumerCoordinator::handle_find_coordinator`].
    FindCoordinator(FindCoordinatorSend),
    /// Join the group; answer with [`ConsumerCoordinator::handle_join_group`]. A static member
    /// needs JoinGroup v5+ (the request does not encode below).
    JoinGroup(CoordinatorSend<JoinGroupRequest>),
    /// Send the assignment (leader) or ask for it; answer with
    /// [`ConsumerCoordinator::handle_sync_group`].
    SyncGroup(CoordinatorSend<SyncGroupRequest>),
    /// Heartbeat; answer with [`ConsumerCoordinator::handle_heartbeat`].
    Heartbeat(CoordinatorSend<HeartbeatRequest>),
    /// Leave the group (best effort: Java does not retry); the response may be given to
    /// [`ConsumerCoordinator::handle_leave_group`] or dropped.
    LeaveGroup(LeaveGroupSend),
    /// Invoke `ConsumerRebalanceListener.onPartitionsRevoked` (committing offsets first when
    /// auto-commit is on); the partitions are no longer owned.
    PartitionsRevoked(Vec<TopicPartition>),
    /// Invoke `onPartitionsAssigned` with the newly added partitions (possibly none, as Java
    /// does after every rebalance); fetch their committed offsets.
    PartitionsAssigned(Vec<TopicPartition>),
    /// Invoke `onPartitionsLost`: the partitions may already belong to another member; do not
    /// commit for them.
    PartitionsLost(Vec<TopicPartition>),
    /// The leader needs partition counts for these topics (other members subscribe to them):
    /// fetch metadata and call [`ConsumerCoordinator::handle_metadata`]; the assignment waits.
    UpdateMetadata(Vec<String>),
    /// Auto-commit is due: commit the consumed positions
    /// ([`ConsumerCoordinator::offset_commit_request`]).
    AutoCommitDue,
    /// The consumer cannot continue (Java throws this from `poll`); nothing more happens.
    Fatal(Error),
}

/// An offset to commit (Java's `OffsetAndMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, if known.
    pub leader_epoch: Option<i32>,
    /// Application metadata.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset without epoch or metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }
}

/// Why a commit or offset fetch failed, with Java's exception semantics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommitError {
    /// Retriable (Java's `RetriableCommitFailedException` / retriable exceptions): try again,
    /// after the coordinator has been looked up again if it moved.
    #[error("retriable commit error: {0}")]
    Retriable(Error),
    /// Java's `RebalanceInProgressException`: the group is rebalancing; complete the
    /// rebalance by polling, then retry.
    #[error("offset commit cannot be completed since the consumer group is rebalancing")]
    RebalanceInProgress,
    /// Java's `CommitFailedException`: the member is no longer part of the group (kicked out,
    /// typically after exceeding `max.poll.interval.ms`); its partitions will be lost.
    #[error("commit cannot be completed since the group has already rebalanced and assigned the partitions to another member")]
    CommitFailed,
    /// Not retriable (authorization, offset metadata too large, fenced instance, unexpected
    /// errors, unknown partitions on fetch).
    #[error("commit failed: {0}")]
    Fatal(Error),
}

/// An OffsetCommit ready to send to the coordinator, with the generation it carries (give
/// it back to [`ConsumerCoordinator::handle_offset_commit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetCommitSend {
    /// Where to send it.
    pub coordinator: CoordinatorNode,
    /// The generation the request carries.
    pub generation: Generation,
    /// The request. A static member needs OffsetCommit v7+.
    pub request: OffsetCommitRequest,
}

/// A committed offset read by OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The committed offset.
    pub offset: i64,
    /// Its leader epoch, if stored.
    pub leader_epoch: Option<i32>,
    /// The metadata stored with it.
    pub metadata: String,
}

#[derive(Debug, Clone)]
struct InFlight {
    id: RequestId,
    generation: Generation,
}

/// The leader's JoinGroup result kept while waiting for metadata.
#[derive(Debug, Clone)]
struct PendingAssignment {
    protocol: String,
    subscriptions: BTreeMap<String, MemberSubscription>,
}

/// Java's `ConsumerCoordinator` for the classic protocol, without I/O (see the
/// [module documentation](self)).
#[derive(Debug)]
pub struct ConsumerCoordinator {
    config: CoordinatorConfig,
    protocol: RebalanceProtocol,
    subscription: BTreeSet<String>,
    /// The subscription is the topics a pattern matched (Java's `AUTO_PATTERN`): the member
    /// stays in the group even when the pattern matches nothing.
    pattern: bool,
    partition_counts: BTreeMap<String, i32>,

    next_request_id: u64,
    actions: VecDeque<Action>,

    coordinator: Option<CoordinatorNode>,
    find_in_flight: Option<RequestId>,
    find_backoff_until: Option<Instant>,

    state: MemberState,
    generation: Generation,
    rejoin_needed: bool,
    rejoin_reason: String,
    needs_join_prepare: bool,
    join_backoff_until: Option<Instant>,
    join_in_flight: Option<InFlight>,
    sync_in_flight: Option<InFlight>,
    /// After a poll timeout, rejoin only once the application polls again.
    rejoin_waits_for_poll: bool,
    is_leader: bool,
    pending_assignment: Option<PendingAssignment>,
    awaiting_metadata: bool,
    /// Partition counts of the group's topics when the leader assigned them.
    assignment_snapshot: Option<BTreeMap<String, i32>>,
    group_subscription: BTreeSet<String>,

    heartbeat_in_flight: Option<InFlight>,
    next_heartbeat_at: Option<Instant>,
    session_deadline: Option<Instant>,
    last_poll: Instant,

    owned: BTreeSet<TopicPartition>,
    /// The last assignment received and its generation, for the assignors' user data.
    assignor_owned: Vec<TopicPartition>,
    assignor_generation: i32,

    next_auto_commit_at: Option<Instant>,
    closed: bool,
    /// Closed, and the LeaveGroup comes after the revocation callbacks.
    leave_on_close: bool,
    fatal: Option<Error>,
}

impl ConsumerCoordinator {
    /// A coordinator for `config`, created at `now`.
    ///
    /// # Errors
    /// [`Error::Config`] when no assignor is configured, the assignors share no rebalance
    /// protocol (Java's `IllegalArgumentException`), or the group id is empty.
    pub fn new(config: CoordinatorConfig, now: Instant) -> Result<Self, Error> {
        if config.group_id.is_empty() {
            return Err(Error::Config {
                key: "group.id".into(),
                reason: "a group id is required for group management".into(),
            });
        }
        let protocol = common_protocol(&config.assignors)?;
        Ok(ConsumerCoordinator {
            next_auto_commit_at: config.auto_commit_interval.map(|i| now + i),
            config,
            protocol,
            subscription: BTreeSet::new(),
            pattern: false,
            partition_counts: BTreeMap::new(),
            next_request_id: 0,
            actions: VecDeque::new(),
            coordinator: None,
            find_in_flight: None,
            find_backoff_until: None,
            state: MemberState::Unjoined,
            generation: Generation::none(),
            rejoin_needed: true,
            rejoin_reason: "initial join".into(),
            needs_join_prepare: true,
            join_backoff_until: None,
            join_in_flight: None,
            sync_in_flight: None,
            rejoin_waits_for_poll: false,
            is_leader: false,
            pending_assignment: None,
            awaiting_metadata: false,
            assignment_snapshot: None,
            group_subscription: BTreeSet::new(),
            heartbeat_in_flight: None,
            next_heartbeat_at: None,
            session_deadline: None,
            last_poll: now,
            owned: BTreeSet::new(),
            assignor_owned: Vec::new(),
            assignor_generation: NO_GENERATION_ID,
            closed: false,
            leave_on_close: false,
            fatal: None,
        })
    }

    // ---------------------------------------------------------------- accessors

    /// The rebalance protocol in use: cooperative when every assignor supports it.
    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        self.protocol
    }

    /// The member state.
    pub fn state(&self) -> MemberState {
        self.state
    }

    /// The current generation.
    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    /// The coordinator, when known.
    pub fn coordinator(&self) -> Option<&CoordinatorNode> {
        self.coordinator.as_ref()
    }

    /// The partitions the member owns (as of the callbacks already handed out).
    pub fn owned_partitions(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// Whether this member was the leader of the current generation.
    pub fn is_leader(&self) -> bool {
        self.is_leader
    }

    /// The subscribed topics.
    pub fn subscription(&self) -> Vec<String> {
        self.subscription.iter().cloned().collect()
    }

    /// The topics of the whole group (the leader's view; else the member's own), whose
    /// metadata the driver should keep fresh.
    pub fn metadata_topics(&self) -> Vec<String> {
        self.subscription
            .union(&self.group_subscription)
            .cloned()
            .collect()
    }

    /// Whether a rebalance is in progress (Java's `rebalanceInProgress`).
    pub fn rebalance_in_progress(&self) -> bool {
        matches!(
            self.state,
            MemberState::PreparingRebalance | MemberState::CompletingRebalance
        )
    }

    /// Whether the member must (re)join before it can consume (Java's
    /// `rejoinNeededOrPending`).
    pub fn rejoin_needed_or_pending(&self) -> bool {
        self.rejoin_needed || self.join_in_flight.is_some() || self.sync_in_flight.is_some()
    }

    /// The fatal error, once one happened.
    pub fn fatal_error(&self) -> Option<&Error> {
        self.fatal.as_ref()
    }

    /// When auto-commit is next due (`None` when auto-commit is off or the member is not
    /// Stable).
    pub fn auto_commit_due_at(&self) -> Option<Instant> {
        if self.state == MemberState::Stable && !self.closed && self.fatal.is_none() {
            self.next_auto_commit_at
        } else {
            None
        }
    }

    // ---------------------------------------------------------------- inputs

    /// Subscribes to `topics` (replacing the subscription); a change while in the group
    /// triggers a rebalance (the cooperative protocol then revokes the partitions of topics no
    /// longer subscribed to before rejoining).
    pub fn subscribe<S: Into<String>>(&mut self, topics: impl IntoIterator<Item = S>) {
        self.pattern = false;
        self.set_subscription(topics);
    }

    /// Subscribes to the topics a pattern matches now (Java's `subscribeFromPattern`, called
    /// with every metadata update): as [`Self::subscribe`], except that an empty match keeps
    /// the member in the group (with no topics) instead of idling.
    pub fn subscribe_pattern_matches<S: Into<String>>(
        &mut self,
        topics: impl IntoIterator<Item = S>,
    ) {
        self.pattern = true;
        self.set_subscription(topics);
    }

    fn set_subscription<S: Into<String>>(&mut self, topics: impl IntoIterator<Item = S>) {
        let topics: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if topics != self.subscription {
            self.subscription = topics;
            self.request_rejoin("subscription changed");
        }
    }

    /// The latest partition counts of (at least) [`Self::metadata_topics`]. The leader
    /// rebalances when the counts of the group's topics changed since it assigned them.
    pub fn handle_metadata(&mut self, partition_counts: &BTreeMap<String, i32>) {
        for (t, &n) in partition_counts {
            self.partition_counts.insert(t.clone(), n);
        }
        if self.awaiting_metadata {
            self.awaiting_metadata = false;
            if let Some(pending) = self.pending_assignment.take() {
                self.complete_leader_assignment(pending);
            }
            return;
        }
        if let Some(snapshot) = &self.assignment_snapshot {
            if self.state == MemberState::Stable && *snapshot != self.group_snapshot() {
                self.request_rejoin("cached metadata has changed");
            }
        }
    }

    /// The application called `poll` at `now`: resets the `max.poll.interval.ms` timer and
    /// allows a rejoin that waits for the application.
    pub fn poll_called(&mut self, now: Instant) {
        self.last_poll = now;
        self.rejoin_waits_for_poll = false;
    }

    /// Asks for a rebalance (Java's `requestRejoin`); it starts on the next
    /// [`Self::next_action`].
    pub fn request_rejoin(&mut self, reason: &str) {
        self.rejoin_needed = true;
        self.rejoin_reason = reason.to_string();
    }

    /// Closes: revokes (or, without a valid generation or during a rebalance, loses) the
    /// owned partitions and then, for a dynamic member in the group, sends a LeaveGroup. The
    /// member leaves (and forgets its generation) only once the driver has taken the
    /// revocation, so a commit made while handling it still carries the generation (Java's
    /// `onLeavePrepare` before `maybeLeaveGroup`). After that, [`Self::next_action`] returns
    /// `None`.
    pub fn close(&mut self, now: Instant) {
        let _ = now;
        if self.closed {
            return;
        }
        if self.fatal.is_none() {
            // Java's onLeavePrepare.
            if !self.owned.is_empty() {
                let dropped = self.take_owned();
                if self.generation.is_reset() || self.rebalance_in_progress() {
                    self.actions.push_back(Action::PartitionsLost(dropped));
                } else {
                    self.actions.push_back(Action::PartitionsRevoked(dropped));
                }
            }
            self.leave_on_close = true;
        }
        self.closed = true;
    }

    /// A FindCoordinator response.
    pub fn handle_find_coordinator(
        &mut self,
        id: RequestId,
        now: Instant,
        response: &FindCoordinatorResponse,
    ) {
        if self.find_in_flight != Some(id) {
            return;
        }
        self.find_in_flight = None;
        let (code, message, node) = find_coordinator_answer(response, &self.config.group_id);
        match code {
            ErrorCode::None => {
                self.coordinator = Some(node);
                self.find_backoff_until = None;
                // Java resets the session timer once the coordinator is found.
                if self.heartbeat_enabled() {
                    self.session_deadline = Some(now + self.config.session_timeout);
                }
            }
            ErrorCode::GroupAuthorizationFailed => {
                self.fail(Error::kafka_with_message(
                    ErrorCode::GroupAuthorizationFailed,
                    message,
                ));
            }
            _ => self.find_backoff_until = Some(now + self.config.retry_backoff),
        }
    }

    /// A JoinGroup response.
    pub fn handle_join_group(&mut self, id: RequestId, now: Instant, response: &JoinGroupResponse) {
        let Some(sent) = self.join_in_flight.take_if_id(id) else {
            return;
        };
        let code = ErrorCode::from_code(response.error_code);
        match code {
            ErrorCode::None => {
                if self.state != MemberState::PreparingRebalance {
                    // Java's UnjoinedGroupException (the member left meanwhile): retriable.
                    self.join_backoff_until = Some(now + self.config.retry_backoff);
                    return;
                }
                if response
                    .protocol_type
                    .as_deref()
                    .is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE)
                {
                    self.fail(Error::kafka(ErrorCode::InconsistentGroupProtocol));
                    return;
                }
                let Some(protocol_name) = response.protocol_name.clone() else {
                    self.fail(Error::Protocol(
                        "JoinGroup response without a protocol name".into(),
                    ));
                    return;
                };
                self.generation = Generation {
                    generation_id: response.generation_id,
                    member_id: response.member_id.clone(),
                    protocol_name: Some(protocol_name.clone()),
                };
                self.state = MemberState::CompletingRebalance;
                self.enable_heartbeat(now);
                self.is_leader = response.leader == response.member_id;
                if self.is_leader && !response.skip_assignment {
                    self.on_leader_elected(protocol_name, response);
                } else {
                    let request = self.sync_request(Vec::new());
                    self.send_sync(request);
                }
            }
            ErrorCode::MemberIdRequired => {
                // KIP-394: rejoin at once with the member id the coordinator gave.
                self.generation = Generation {
                    generation_id: NO_GENERATION_ID,
                    member_id: response.member_id.clone(),
                    protocol_name: None,
                };
                self.rejoin_needed = true;
            }
            ErrorCode::UnknownMemberId => {
                if sent.generation == self.generation {
                    self.reset_state_and_generation(true);
                }
                self.request_rejoin("JoinGroup failed with UNKNOWN_MEMBER_ID");
            }
            ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => {
                self.request_rejoin("JoinGroup: the group is rebalancing");
            }
            ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
                self.mark_coordinator_unknown();
                self.rejoin_needed = true;
                self.join_backoff_until = Some(now + self.config.retry_backoff);
            }
            ErrorCode::CoordinatorLoadInProgress => {
                self.rejoin_needed = true;
                self.join_backoff_until = Some(now + self.config.retry_backoff);
            }
            c if c.is_retriable() => {
                self.rejoin_needed = true;
                self.join_backoff_until = Some(now + self.config.retry_backoff);
            }
            c => self.fail(Error::kafka(c)),
        }
    }

    /// A SyncGroup response.
    pub fn handle_sync_group(&mut self, id: RequestId, now: Instant, response: &SyncGroupResponse) {
        let Some(sent) = self.sync_in_flight.take_if_id(id) else {
            return;
        };
        let code = ErrorCode::from_code(response.error_code);
        match code {
            ErrorCode::None => {
                if response
                    .protocol_type
                    .as_deref()
                    .is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE)
                    || response
                        .protocol_name
                        .as_deref()
                        .is_some_and(|n| Some(n) != self.generation.protocol_name.as_deref())
                {
                    self.fail(Error::kafka(ErrorCode::InconsistentGroupProtocol));
                    return;
                }
                let assignment = match decode_assignment(response.assignment.clone()) {
                    Ok((_, a)) => MemberAssignment::from_protocol(&a),
                    Err(e) => {
                        self.fail(Error::from(e));
                        return;
                    }
                };
                self.state = MemberState::Stable;
                self.needs_join_prepare = true;
                self.rejoin_needed = false;
                self.on_join_complete(now, assignment);
            }
            ErrorCode::RebalanceInProgress => {
                self.request_rejoin("SyncGroup: the group began another rebalance");
            }
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                if sent.generation == self.generation {
                    self.reset_state_and_generation(code == ErrorCode::UnknownMemberId);
                }
                self.request_rejoin("SyncGroup failed: the member's generation is gone");
            }
            ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
                self.mark_coordinator_unknown();
                self.request_rejoin("SyncGroup failed: the coordinator moved");
                self.join_backoff_until = Some(now + self.config.retry_backoff);
            }
            c if c.is_retriable() => {
                self.request_rejoin("SyncGroup failed with a retriable error");
                self.join_backoff_until = Some(now + self.config.retry_backoff);
            }
            c => self.fail(Error::kafka(c)),
        }
    }

    /// A Heartbeat response.
    pub fn handle_heartbeat(&mut self, id: RequestId, now: Instant, response: &HeartbeatResponse) {
        let Some(sent) = self.heartbeat_in_flight.take_if_id(id) else {
            return;
        };
        let code = ErrorCode::from_code(response.error_code);
        match code {
            ErrorCode::None => self.receive_heartbeat(now),
            ErrorCode::RebalanceInProgress => {
                self.receive_heartbeat(now);
                if self.state == MemberState::Stable {
                    self.request_rejoin("the group is already rebalancing");
                }
            }
            ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId => {
                if sent.generation == self.generation {
                    self.reset_state_and_generation(code == ErrorCode::UnknownMemberId);
                    self.request_rejoin("heartbeat failed: the member's generation is gone");
                }
            }
            ErrorCode::FencedInstanceId => {
                if sent.generation == self.generation {
                    self.fail(Error::kafka(ErrorCode::FencedInstanceId));
                }
            }
            ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
                self.mark_coordinator_unknown();
                self.fail_heartbeat(now);
            }
            ErrorCode::GroupAuthorizationFailed => {
                self.fail(Error::kafka(ErrorCode::GroupAuthorizationFailed));
            }
            c if c.is_retriable() => self.fail_heartbeat(now),
            c => self.fail(Error::kafka(c)),
        }
    }

    /// A LeaveGroup response (errors are only informative, as in Java).
    pub fn handle_leave_group(
        &mut self,
        id: RequestId,
        now: Instant,
        response: &LeaveGroupResponse,
    ) {
        let _ = (id, now, response);
    }

    /// The request `id` failed without a response (connection broken, request timed out,
    /// version not supported, encoding failed).
    pub fn handle_request_failed(&mut self, id: RequestId, now: Instant, error: &Error) {
        if self.find_in_flight == Some(id) {
            self.find_in_flight = None;
            self.find_backoff_until = Some(now + self.config.retry_backoff);
            return;
        }
        let fatal_version = matches!(error, Error::UnsupportedVersion(_) | Error::Protocol(_));
        if self.join_in_flight.take_if_id(id).is_some()
            || self.sync_in_flight.take_if_id(id).is_some()
        {
            if fatal_version {
                self.fail(error.clone());
                return;
            }
            self.mark_coordinator_unknown();
            self.rejoin_needed = true;
            self.join_backoff_until = Some(now + self.config.retry_backoff);
        } else if self.heartbeat_in_flight.take_if_id(id).is_some() {
            if fatal_version {
                self.fail(error.clone());
                return;
            }
            self.mark_coordinator_unknown();
            self.fail_heartbeat(now);
        }
    }

    // ---------------------------------------------------------------- outputs

    /// The next thing to do at `now`, or `None` until [`Self::poll_timeout`] or the next input.
    pub fn next_action(&mut self, now: Instant) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        if self.leave_on_close {
            self.leave_on_close = false;
            self.maybe_leave_group("the consumer is being closed");
            return self.actions.pop_front();
        }
        if self.closed || self.fatal.is_some() {
            return None;
        }
        self.check_timers(now);
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        if self.subscription.is_empty() && !self.pattern {
            return None;
        }
        let Some(coordinator) = self.coordinator.clone() else {
            if self.find_in_flight.is_none() && self.find_backoff_until.is_none_or(|t| now >= t) {
                self.find_backoff_until = None;
                let id = self.new_id();
                self.find_in_flight = Some(id);
                return Some(Action::FindCoordinator(FindCoordinatorSend {
                    id,
                    group_id: self.config.group_id.clone(),
                }));
            }
            return None;
        };
        if self.rejoin_needed
            && !self.rejoin_waits_for_poll
            && self.join_in_flight.is_none()
            && self.sync_in_flight.is_none()
            && !self.awaiting_metadata
            && self.join_backoff_until.is_none_or(|t| now >= t)
        {
            self.join_backoff_until = None;
            if self.needs_join_prepare {
                self.needs_join_prepare = false;
                self.on_join_prepare();
                // Java runs onJoinPrepare (auto-commit, revocation callbacks) while the member
                // is still in its generation: hand the callbacks out first, so the driver can
                // commit before the JoinGroup (built on the next call) starts the rebalance.
                if let Some(a) = self.actions.pop_front() {
                    return Some(a);
                }
            }
            let request = self.join_request();
            let id = self.new_id();
            self.state = MemberState::PreparingRebalance;
            self.rejoin_needed = false;
            self.heartbeat_in_flight = None;
            self.join_in_flight = Some(InFlight {
                id,
                generation: self.generation.clone(),
            });
            self.actions.push_back(Action::JoinGroup(CoordinatorSend {
                id,
                coordinator,
                timeout: self
                    .config
                    .request_timeout
                    .max(self.config.rebalance_timeout + JOIN_GROUP_TIMEOUT_LAPSE),
                request,
            }));
            return self.actions.pop_front();
        }
        if self.heartbeat_enabled()
            && self.heartbeat_in_flight.is_none()
            && self.next_heartbeat_at.is_some_and(|t| now >= t)
        {
            return Some(self.heartbeat_action(now, coordinator));
        }
        if let (Some(due), Some(interval)) =
            (self.auto_commit_due_at(), self.config.auto_commit_interval)
        {
            if now >= due {
                self.next_auto_commit_at = Some(now + interval);
                return Some(Action::AutoCommitDue);
            }
        }
        None
    }

    /// Only a heartbeat, when one is due at `now`: for a driver that holds the other actions
    /// back while the application runs listener callbacks (Java's heartbeat thread keeps the
    /// session alive meanwhile).
    pub fn next_heartbeat(&mut self, now: Instant) -> Option<Action> {
        if self.closed || self.fatal.is_some() || !self.heartbeat_enabled() {
            return None;
        }
        let coordinator = self.coordinator.clone()?;
        if self.heartbeat_in_flight.is_some() || self.next_heartbeat_at.is_none_or(|t| now < t) {
            return None;
        }
        Some(self.heartbeat_action(now, coordinator))
    }

    /// When [`Self::next_heartbeat`] has something to send (`None`: not before an input).
    pub fn heartbeat_due_at(&self) -> Option<Instant> {
        if self.closed
            || self.fatal.is_some()
            || !self.heartbeat_enabled()
            || self.coordinator.is_none()
            || self.heartbeat_in_flight.is_some()
        {
            return None;
        }
        self.next_heartbeat_at
    }

    /// A request the driver sent to `coordinator` on its own (an offset commit or fetch)
    /// failed without a response: forget the coordinator if it is still this one (Java's
    /// `markCoordinatorUnknown` after a disconnect), so it is looked up again.
    pub fn handle_coordinator_failure(&mut self, coordinator: &CoordinatorNode) {
        if self.coordinator.as_ref() == Some(coordinator) {
            self.mark_coordinator_unknown();
        }
    }

    /// When [`Self::next_action`] may next have something to do without any input (`None`:
    /// only an input can change anything). An instant in the past means at once.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.actions.is_empty() {
            return Some(self.last_poll);
        }
        if self.closed || self.fatal.is_some() || self.subscription.is_empty() {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.coordinator.is_none() {
            if self.find_in_flight.is_none() {
                at(self.find_backoff_until.or(Some(self.last_poll)));
            }
        } else {
            if self.rejoin_needed
                && !self.rejoin_waits_for_poll
                && self.join_in_flight.is_none()
                && self.sync_in_flight.is_none()
                && !self.awaiting_metadata
            {
                at(self.join_backoff_until.or(Some(self.last_poll)));
            }
            if self.heartbeat_enabled() {
                if self.heartbeat_in_flight.is_none() {
                    at(self.next_heartbeat_at);
                }
                at(self.session_deadline);
                at(Some(self.last_poll + self.config.rebalance_timeout));
            }
            at(self.auto_commit_due_at());
        }
        t
    }

    // ---------------------------------------------------------------- offsets

    /// An OffsetCommit of `offsets` for the current generation (Java's
    /// `sendOffsetCommitRequest` with subscription-based assignment). An empty map gives a
    /// request without topics, which Java does not send.
    ///
    /// # Errors
    /// [`CommitError::Retriable`] (COORDINATOR_NOT_AVAILABLE) when the coordinator is
    /// unknown; [`CommitError::RebalanceInProgress`] during a rebalance;
    /// [`CommitError::CommitFailed`] when the member is not in the group.
    pub fn offset_commit_request(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<OffsetCommitSend, CommitError> {
        if let Some(e) = &self.fatal {
            return Err(CommitError::Fatal(e.clone()));
        }
        let Some(coordinator) = self.coordinator.clone() else {
            return Err(CommitError::Retriable(Error::kafka(
                ErrorCode::CoordinatorNotAvailable,
            )));
        };
        if self.state != MemberState::Stable {
            return Err(if self.rebalance_in_progress() {
                CommitError::RebalanceInProgress
            } else {
                CommitError::CommitFailed
            });
        }
        Ok(OffsetCommitSend {
            coordinator,
            generation: self.generation.clone(),
            request: build_offset_commit_request(
                &self.config.group_id,
                &self.generation,
                self.config.group_instance_id.clone(),
                offsets,
            ),
        })
    }

    /// Interprets an OffsetCommit response (Java's `OffsetCommitResponseHandler`):
    /// coordinator errors forget the coordinator; REBALANCE_IN_PROGRESS requests a rejoin;
    /// UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION reset the generation (the partitions will be
    /// lost) unless the generation already changed during a rebalance.
    ///
    /// # Errors
    /// The first partition error, classified as [`CommitError`].
    pub fn handle_offset_commit(
        &mut self,
        sent: &OffsetCommitSend,
        response: &OffsetCommitResponse,
    ) -> Result<(), CommitError> {
        let mut unauthorized = BTreeSet::new();
        for topic in &response.topics {
            for p in &topic.partitions {
                let code = ErrorCode::from_code(p.error_code);
                match code {
                    ErrorCode::None => {}
                    ErrorCode::GroupAuthorizationFailed => {
                        return Err(CommitError::Fatal(Error::kafka(code)));
                    }
                    ErrorCode::TopicAuthorizationFailed => {
                        unauthorized.insert(topic.name.clone());
                    }
                    ErrorCode::OffsetMetadataTooLarge | ErrorCode::InvalidCommitOffsetSize => {
                        return Err(CommitError::Fatal(Error::kafka(code)));
                    }
                    ErrorCode::CoordinatorLoadInProgress | ErrorCode::UnknownTopicOrPartition => {
                        return Err(CommitError::Retriable(Error::kafka(code)));
                    }
                    ErrorCode::CoordinatorNotAvailable
                    | ErrorCode::NotCoordinator
                    | ErrorCode::RequestTimedOut => {
                        if self.coordinator.as_ref() == Some(&sent.coordinator) {
                            self.mark_coordinator_unknown();
                        }
                        return Err(CommitError::Retriable(Error::kafka(code)));
                    }
                    ErrorCode::FencedInstanceId => {
                        return Err(CommitError::Fatal(Error::kafka(code)));
                    }
                    ErrorCode::RebalanceInProgress => {
                        self.request_rejoin("offset commit failed since group is rebalancing");
                        return Err(CommitError::RebalanceInProgress);
                    }
                    ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                        if sent.generation != self.generation && self.rebalance_in_progress() {
                            return Err(CommitError::RebalanceInProgress);
                        }
                        self.reset_state_and_generation(code == ErrorCode::UnknownMemberId);
                        self.request_rejoin("offset commit failed: the generation is gone");
                        return Err(CommitError::CommitFailed);
                    }
                    c if c.is_retriable() => return Err(CommitError::Retriable(Error::kafka(c))),
                    c => return Err(CommitError::Fatal(Error::kafka(c))),
                }
            }
        }
        if !unauthorized.is_empty() {
            let topics: Vec<String> = unauthorized.into_iter().collect();
            return Err(CommitError::Fatal(Error::kafka_with_message(
                ErrorCode::TopicAuthorizationFailed,
                Some(format!("not authorized to commit to topics {topics:?}")),
            )));
        }
        Ok(())
    }

    /// An OffsetFetch for `partitions` of this group at `version` (the layout changed in v8).
    /// `require_stable` is Java's `isolation.level=read_committed` (v7+).
    pub fn offset_fetch_request(
        &self,
        partitions: &[TopicPartition],
        require_stable: bool,
        version: i16,
    ) -> OffsetFetchRequest {
        build_offset_fetch_request(&self.config.group_id, partitions, require_stable, version)
    }

    /// Interprets an OffsetFetch response (Java's `OffsetFetchResponseHandler`): `None` for a
    /// partition without a committed offset.
    ///
    /// # Errors
    /// COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR (the coordinator is forgotten) and
    /// UNSTABLE_OFFSET_COMMIT are retriable; authorization and unknown partitions are fatal.
    pub fn handle_offset_fetch(
        &mut self,
        response: &OffsetFetchResponse,
    ) -> Result<BTreeMap<TopicPartition, Option<CommittedOffset>>, CommitError> {
        let parsed = parse_offset_fetch_response(&self.config.group_id, response);
        if let Err(CommitError::Retriable(Error::Kafka {
            code: ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable,
            ..
        })) = &parsed
        {
            self.mark_coordinator_unknown();
        }
        parsed
    }

    // ---------------------------------------------------------------- internals

    fn heartbeat_action(&mut self, now: Instant, coordinator: CoordinatorNode) -> Action {
        self.next_heartbeat_at = Some(now + self.config.heartbeat_interval);
        let id = self.new_id();
        self.heartbeat_in_flight = Some(InFlight {
            id,
            generation: self.generation.clone(),
        });
        Action::Heartbeat(CoordinatorSend {
            id,
            coordinator,
            timeout: self.config.request_timeout,
            request: HeartbeatRequest {
                group_id: self.config.group_id.clone(),
                generation_id: self.generation.generation_id,
                member_id: self.generation.member_id.clone(),
                group_instance_id: self.config.group_instance_id.clone(),
                ..Default::default()
            },
        })
    }

    fn new_id(&mut self) -> RequestId {
        self.next_request_id += 1;
        RequestId(self.next_request_id)
    }

    fn fail(&mut self, error: Error) {
        if self.fatal.is_none() {
            self.fatal = Some(error.clone());
            self.actions.push_back(Action::Fatal(error));
        }
    }

    fn heartbeat_enabled(&self) -> bool {
        matches!(
            self.state,
            MemberState::CompletingRebalance | MemberState::Stable
        )
    }

    /// Java's `HeartbeatThread.enable` → `Heartbeat.resetTimeouts`.
    fn enable_heartbeat(&mut self, now: Instant) {
        self.session_deadline = Some(now + self.config.session_timeout);
        self.last_poll = now;
        self.next_heartbeat_at = Some(now + self.config.heartbeat_interval);
        self.heartbeat_in_flight = None;
    }

    fn receive_heartbeat(&mut self, now: Instant) {
        self.session_deadline = Some(now + self.config.session_timeout);
    }

    fn fail_heartbeat(&mut self, now: Instant) {
        self.next_heartbeat_at = Some(now + self.config.retry_backoff);
    }

    fn check_timers(&mut self, now: Instant) {
        if !self.heartbeat_enabled() || self.coordinator.is_none() {
            return;
        }
        if self.session_deadline.is_some_and(|d| now >= d) {
            // Java: "session timed out without receiving a heartbeat response".
            self.mark_coordinator_unknown();
        } else if now >= self.last_poll + self.config.rebalance_timeout {
            // Java: "consumer poll timeout has expired".
            self.maybe_leave_group("consumer poll timeout has expired");
            self.rejoin_waits_for_poll = true;
        }
    }

    /// Java's `markCoordinatorUnknown`: forgets the coordinator; requests in flight to it
    /// are abandoned (a join or sync in progress is retried once it is found again).
    fn mark_coordinator_unknown(&mut self) {
        if self.coordinator.take().is_some() {
            if self.join_in_flight.take().is_some() || self.sync_in_flight.take().is_some() {
                self.rejoin_needed = true;
            }
            self.heartbeat_in_flight = None;
        }
    }

    /// Java's `resetStateAndGeneration`.
    fn reset_state_and_generation(&mut self, reset_member_id: bool) {
        self.generation = if reset_member_id {
            Generation::none()
        } else {
            Generation {
                generation_id: NO_GENERATION_ID,
                member_id: self.generation.member_id.clone(),
                protocol_name: None,
            }
        };
        self.state = MemberState::Unjoined;
        self.is_leader = false;
        self.assignment_snapshot = None;
        self.heartbeat_in_flight = None;
        self.join_in_flight = None;
        self.sync_in_flight = None;
        self.pending_assignment = None;
        self.awaiting_metadata = false;
    }

    /// Java's `maybeLeaveGroup`: LeaveGroup for a dynamic member in the group, then reset.
    fn maybe_leave_group(&mut self, reason: &str) {
        if self.config.group_instance_id.is_none()
            && self.state != MemberState::Unjoined
            && !self.generation.member_id.is_empty()
        {
            if let Some(coordinator) = self.coordinator.clone() {
                let id = self.new_id();
                self.actions.push_back(Action::LeaveGroup(LeaveGroupSend {
                    id,
                    coordinator,
                    group_id: self.config.group_id.clone(),
                    member_id: self.generation.member_id.clone(),
                    reason: reason.to_string(),
                }));
            }
        }
        self.reset_state_and_generation(true);
        self.request_rejoin(reason);
    }

    fn take_owned(&mut self) -> Vec<TopicPartition> {
        std::mem::take(&mut self.owned).into_iter().collect()
    }

    /// Java's `ConsumerCoordinator.onJoinPrepare`.
    fn on_join_prepare(&mut self) {
        if self.generation.is_reset() {
            if !self.owned.is_empty() {
                let lost = self.take_owned();
                self.actions.push_back(Action::PartitionsLost(lost));
            }
        } else {
            match self.protocol {
                RebalanceProtocol::Eager => {
                    if !self.owned.is_empty() {
                        let revoked = self.take_owned();
                        self.actions.push_back(Action::PartitionsRevoked(revoked));
                    }
                }
                RebalanceProtocol::Cooperative => {
                    let revoked: Vec<TopicPartition> = self
                        .owned
                        .iter()
                        .filter(|tp| !self.subscription.contains(&tp.topic))
                        .cloned()
                        .collect();
                    if !revoked.is_empty() {
                        for tp in &revoked {
                            self.owned.remove(tp);
                        }
                        self.actions.push_back(Action::PartitionsRevoked(revoked));
                    }
                }
            }
        }
        self.is_leader = false;
        self.group_subscription.clear();
        self.assignment_snapshot = None;
    }

    fn join_request(&self) -> JoinGroupRequest {
        let topics: Vec<String> = self.subscription.iter().cloned().collect();
        let owned: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        let owned_partitions = group_by_topic(&owned)
            .into_iter()
            .map(
                |(topic, partitions)| consumer_protocol_subscription::TopicPartition {
                    topic: topic.to_string(),
                    partitions,
                },
            )
            .collect::<Vec<_>>();
        let protocols = self
            .config
            .assignors
            .iter()
            .map(|assignor| {
                let subscription = ConsumerProtocolSubscription {
                    topics: topics.clone(),
                    user_data: assignor.subscription_user_data(
                        &topics,
                        &self.assignor_owned,
                        self.assignor_generation,
                    ),
                    owned_partitions: owned_partitions.clone(),
                    generation_id: self.generation.generation_id,
                    rack_id: self.config.client_rack.clone(),
                };
                let metadata =
                    encode_subscription(&subscription, ConsumerProtocolSubscription::VERSIONS.max)
                        .unwrap_or_else(|_| Bytes::new());
                join_group_request::JoinGroupRequestProtocol {
                    name: assignor.name().to_string(),
                    metadata,
                    ..Default::default()
                }
            })
            .collect();
        JoinGroupRequest {
            group_id: self.config.group_id.clone(),
            session_timeout_ms: duration_ms(self.config.session_timeout),
            rebalance_timeout_ms: duration_ms(self.config.rebalance_timeout),
            member_id: self.generation.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
            protocols,
            reason: Some(self.rejoin_reason.clone()),
            ..Default::default()
        }
    }

    fn sync_request(
        &self,
        assignments: Vec<sync_group_request::SyncGroupRequestAssignment>,
    ) -> SyncGroupRequest {
        SyncGroupRequest {
            group_id: self.config.group_id.clone(),
            generation_id: self.generation.generation_id,
            member_id: self.generation.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: self.generation.protocol_name.clone(),
            assignments,
            ..Default::default()
        }
    }

    fn send_sync(&mut self, request: SyncGroupRequest) {
        let Some(coordinator) = self.coordinator.clone() else {
            self.rejoin_needed = true;
            return;
        };
        let id = self.new_id();
        self.sync_in_flight = Some(InFlight {
            id,
            generation: self.generation.clone(),
        });
        self.actions.push_back(Action::SyncGroup(CoordinatorSend {
            id,
            coordinator,
            timeout: self.config.request_timeout,
            request,
        }));
    }

    /// Java's `ConsumerCoordinator.onLeaderElected`, up to the metadata check.
    fn on_leader_elected(&mut self, protocol: String, response: &JoinGroupResponse) {
        let mut subscriptions = BTreeMap::new();
        for m in &response.members {
            match decode_subscription(m.metadata.clone()) {
                Ok((_, s)) => {
                    subscriptions.insert(
                        m.member_id.clone(),
                        MemberSubscription::from_protocol(
                            m.member_id.clone(),
                            m.group_instance_id.clone(),
                            &s,
                        ),
                    );
                }
                Err(e) => {
                    self.fail(Error::from(e));
                    return;
                }
            }
        }
        self.group_subscription = subscriptions
            .values()
            .flat_map(|s| s.topics.iter().cloned())
            .collect();
        let missing: Vec<String> = self
            .group_subscription
            .iter()
            .filter(|t| !self.partition_counts.contains_key(*t))
            .cloned()
            .collect();
        let pending = PendingAssignment {
            protocol,
            subscriptions,
        };
        if missing.is_empty() {
            self.complete_leader_assignment(pending);
        } else {
            self.awaiting_metadata = true;
            self.pending_assignment = Some(pending);
            self.actions.push_back(Action::UpdateMetadata(missing));
        }
    }

    fn group_snapshot(&self) -> BTreeMap<String, i32> {
        self.partition_counts
            .iter()
            .filter(|(t, _)| self.group_subscription.contains(*t))
            .map(|(t, &n)| (t.clone(), n))
            .collect()
    }

    fn complete_leader_assignment(&mut self, pending: PendingAssignment) {
        if self.state != MemberState::CompletingRebalance {
            return;
        }
        let Some(assignor) = self
            .config
            .assignors
            .iter()
            .find(|a| a.name() == pending.protocol)
            .cloned()
        else {
            self.fail(Error::InvalidArgument(format!(
                "coordinator selected invalid assignment protocol: {}",
                pending.protocol
            )));
            return;
        };
        let snapshot = self.group_snapshot();
        let result = match assignor.assign(&snapshot, &pending.subscriptions) {
            Ok(r) => r,
            Err(e) => {
                self.fail(e);
                return;
            }
        };
        let mut assignments = Vec::with_capacity(result.assignments.len());
        for (member, a) in &result.assignments {
            match encode_assignment(&a.to_protocol(), ConsumerProtocolAssignment::VERSIONS.max) {
                Ok(bytes) => assignments.push(sync_group_request::SyncGroupRequestAssignment {
                    member_id: member.clone(),
                    assignment: bytes,
                    ..Default::default()
                }),
                Err(e) => {
                    self.fail(Error::from(e));
                    return;
                }
            }
        }
        self.assignment_snapshot = Some(snapshot);
        let request = self.sync_request(assignments);
        self.send_sync(request);
    }

    /// Java's `ConsumerCoordinator.onJoinComplete`.
    fn on_join_complete(&mut self, now: Instant, assignment: MemberAssignment) {
        let assigned: BTreeSet<TopicPartition> = assignment.partitions.iter().cloned().collect();
        if !assigned
            .iter()
            .all(|tp| self.subscription.contains(&tp.topic))
        {
            self.request_rejoin("assigned partitions do not match the subscription");
            return;
        }
        let mut added: Vec<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
        if self.protocol == RebalanceProtocol::Cooperative {
            let revoked: Vec<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
            if !revoked.is_empty() {
                self.actions
                    .push_back(Action::PartitionsRevoked(revoked.clone()));
                self.request_rejoin("need to revoke partitions and re-join");
            }
        } else {
            added = assigned.iter().cloned().collect();
        }
        if let Some(assignor) = self
            .generation
            .protocol_name
            .as_deref()
            .and_then(|p| self.config.assignors.iter().find(|a| a.name() == p))
        {
            assignor.on_assignment(
                &assignment.partitions,
                assignment.user_data.as_ref(),
                self.generation.generation_id,
            );
        }
        self.assignor_owned = assignment.partitions.clone();
        self.assignor_generation = self.generation.generation_id;
        if let Some(interval) = self.config.auto_commit_interval {
            self.next_auto_commit_at = Some(now + interval);
        }
        self.owned = assigned;
        self.actions.push_back(Action::PartitionsAssigned(added));
    }
}

trait TakeIfId {
    fn take_if_id(&mut self, id: RequestId) -> Option<InFlight>;
}

impl TakeIfId for Option<InFlight> {
    fn take_if_id(&mut self, id: RequestId) -> Option<InFlight> {
        if self.as_ref().is_some_and(|f| f.id == id) {
            self.take()
        } else {
            None
        }
    }
}

fn node_of(c: &find_coordinator_response::Coordinator) -> CoordinatorNode {
    CoordinatorNode {
        node_id: c.node_id,
        host: c.host.clone(),
        port: c.port,
    }
}

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The rebalance protocol of `assignors` (Java's `ConsumerCoordinator` constructor): the
/// highest one all of them support, cooperative above eager.
///
/// # Errors
/// [`Error::Config`] when `assignors` is empty or they share no protocol.
pub fn common_protocol(
    assignors: &[Arc<dyn ConsumerPartitionAssignor>],
) -> Result<RebalanceProtocol, Error> {
    let config_err = |reason: String| Error::Config {
        key: "partition.assignment.strategy".into(),
        reason,
    };
    let Some(first) = assignors.first() else {
        return Err(config_err("no assignor configured".into()));
    };
    let mut common: Vec<RebalanceProtocol> = first.supported_protocols().to_vec();
    for a in assignors {
        common.retain(|p| a.supported_protocols().contains(p));
    }
    if common.contains(&RebalanceProtocol::Cooperative) {
        Ok(RebalanceProtocol::Cooperative)
    } else if common.contains(&RebalanceProtocol::Eager) {
        Ok(RebalanceProtocol::Eager)
    } else {
        let names: Vec<&str> = assignors.iter().map(|a| a.name()).collect();
        Err(config_err(format!(
            "assignors {names:?} do not have a commonly supported rebalance protocol"
        )))
    }
}

/// An OffsetCommit request for `generation` (use [`Generation::none`] and no instance id for
/// manually assigned partitions, as Java does). Partitions are grouped by topic in order.
pub fn build_offset_commit_request(
    group_id: &str,
    generation: &Generation,
    group_instance_id: Option<String>,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> OffsetCommitRequest {
    let mut topics: Vec<offset_commit_request::OffsetCommitRequestTopic> = Vec::new();
    for (tp, o) in offsets {
        if topics.last().is_none_or(|t| t.name != tp.topic) {
            topics.push(offset_commit_request::OffsetCommitRequestTopic {
                name: tp.topic.clone(),
                ..Default::default()
            });
        }
        if let Some(t) = topics.last_mut() {
            t.partitions
                .push(offset_commit_request::OffsetCommitRequestPartition {
                    partition_index: tp.partition,
                    committed_offset: o.offset,
                    committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
                    committed_metadata: Some(o.metadata.clone()),
                    ..Default::default()
                });
        }
    }
    OffsetCommitRequest {
        group_id: group_id.to_string(),
        generation_id_or_member_epoch: generation.generation_id,
        member_id: generation.member_id.clone(),
        group_instance_id,
        topics,
        ..Default::default()
    }
}

/// An OffsetFetch request for `partitions` of `group_id` at `version`.
pub fn build_offset_fetch_request(
    group_id: &str,
    partitions: &[TopicPartition],
    require_stable: bool,
    version: i16,
) -> OffsetFetchRequest {
    let grouped = group_by_topic(partitions);
    let mut r = OffsetFetchRequest {
        require_stable: require_stable && version >= 7,
        ..Default::default()
    };
    if version >= 8 {
        r.groups = vec![offset_fetch_request::OffsetFetchRequestGroup {
            group_id: group_id.to_string(),
            topics: Some(
                grouped
                    .into_iter()
                    .map(|(t, ps)| offset_fetch_request::OffsetFetchRequestTopics {
                        name: t.to_string(),
                        partition_indexes: ps,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }];
    } else {
        r.group_id = group_id.to_string();
        r.topics = Some(
            grouped
                .into_iter()
                .map(|(t, ps)| offset_fetch_request::OffsetFetchRequestTopic {
                    name: t.to_string(),
                    partition_indexes: ps,
                    ..Default::default()
                })
                .collect(),
        );
    }
    r
}

/// Reads an OffsetFetch response of any version for `group_id` (Java's
/// `OffsetFetchResponseHandler`), without side effects.
///
/// # Errors
/// See [`ConsumerCoordinator::handle_offset_fetch`].
pub fn parse_offset_fetch_response(
    group_id: &str,
    response: &OffsetFetchResponse,
) -> Result<BTreeMap<TopicPartition, Option<CommittedOffset>>, CommitError> {
    // (topic, partition, offset, epoch, metadata, error)
    let mut rows: Vec<(String, i32, i64, i32, Option<String>, i16)> = Vec::new();
    let group_error;
    if let Some(g) = response
        .groups
        .iter()
        .find(|g| g.group_id == group_id)
        .or_else(|| response.groups.first())
    {
        group_error = g.error_code;
        for t in &g.topics {
            for p in &t.partitions {
                rows.push((
                    t.name.clone(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.clone(),
                    p.error_code,
                ));
            }
        }
    } else {
        group_error = response.error_code;
        for t in &response.topics {
            for p in &t.partitions {
                rows.push((
                    t.name.clone(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.clone(),
                    p.error_code,
                ));
            }
        }
    }
    match ErrorCode::from_code(group_error) {
        ErrorCode::None => {}
        c @ (ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::NotCoordinator
        | ErrorCode::CoordinatorNotAvailable) => {
            return Err(CommitError::Retriable(Error::kafka(c)));
        }
        c => return Err(CommitError::Fatal(Error::kafka(c))),
    }
    let mut out = BTreeMap::new();
    let mut unauthorized = BTreeSet::new();
    let mut unstable = false;
    for (topic, partition, offset, epoch, metadata, error) in rows {
        let tp = TopicPartition::new(topic, partition);
        match ErrorCode::from_code(error) {
            ErrorCode::None => {
                let committed = (offset >= 0).then(|| CommittedOffset {
                    offset,
                    leader_epoch: (epoch >= 0).then_some(epoch),
                    metadata: metadata.unwrap_or_default(),
                });
                out.insert(tp, committed);
            }
            ErrorCode::TopicAuthorizationFailed => {
                unauthorized.insert(tp.topic);
            }
            ErrorCode::UnstableOffsetCommit => unstable = true,
            c => {
                return Err(CommitError::Fatal(Error::kafka_with_message(
                    c,
                    Some(format!("offset fetch failed for partition {tp}")),
                )));
            }
        }
    }
    if !unauthorized.is_empty() {
        return Err(CommitError::Fatal(Error::kafka(
            ErrorCode::TopicAuthorizationFailed,
        )));
    }
    if unstable {
        return Err(CommitError::Retriable(Error::kafka(
            ErrorCode::UnstableOffsetCommit,
        )));
    }
    Ok(out)
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
