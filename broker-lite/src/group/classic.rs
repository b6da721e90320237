//! The classic group state machine (Kafka's `ClassicGroup` and the classic-group parts of
//! `GroupMetadataManager`, Kafka 4.0), with no I/O and no clock: every operation takes `now`
//! (milliseconds) and returns the responses it completes ([`Effects`]) and whether the group
//! metadata must be written to `__consumer_offsets`.
//!
//! Requests that wait (JoinGroup until the join phase completes, SyncGroup until the leader's
//! assignment arrives) leave a waiter `W` in the member; the waiter comes back in
//! [`Effects`] with its result. Timers are deadlines kept in the group: the owner calls
//! [`ClassicGroup::on_timer`] when [`ClassicGroup::next_deadline`] has passed.
//!
//! States: Empty → PreparingRebalance → CompletingRebalance → Stable (→ PreparingRebalance
//! again on a join, leave, expiry or protocol change), and Dead once deleted.
//!
//! - **Initial rebalance delay** (`group.initial.rebalance.delay.ms`): a rebalance that starts
//!   from Empty completes only when the delay expires; it is extended by one more delay (within
//!   the rebalance timeout) while new members keep arriving in generation 0.
//! - **Join phase**: completes when every member has rejoined and no KIP-394 pending member is
//!   left, or when the rebalance timeout (the largest of the members') expires; dynamic members
//!   that did not rejoin are then removed. The next generation selects the protocol every
//!   member supports with the most votes (each member votes for its first supported one).
//! - **Sync phase**: the leader's assignment (missing members get an empty one) is stored and
//!   sent to every member waiting in SyncGroup; members that have not synced within the
//!   rebalance timeout are removed and the group rebalances.
//! - **Sessions**: a member that neither heartbeats nor waits in JoinGroup/SyncGroup within
//!   its session timeout is removed (new members get 5 minutes to complete their first join).
//! - **Static members** (KIP-345): a rejoin with a known `group.instance.id` and no member id
//!   replaces the old member id; in Stable it does not rebalance unless the selected protocol
//!   would change. A stale member id for an instance id is FENCED_INSTANCE_ID.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kafka_wire::ErrorCode;

/// A group's state, as Kafka names them in DescribeGroups and ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (offsets may exist).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Members have their assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Group settings (broker configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
        }
    }
}

/// How long a new member may take to complete its first join (Kafka's
/// `classicGroupNewMemberJoinTimeoutMs`).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// A JoinGroup request, version differences already resolved.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// The member id ("" when unknown).
    pub member_id: String,
    /// `group.instance.id` (static membership, v5+).
    pub group_instance_id: Option<String>,
    /// Whether a new dynamic member must first get its id (KIP-394, v4+).
    pub require_known_member_id: bool,
    /// The client id of the request header.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// The rebalance timeout (the session timeout for v0).
    pub rebalance_timeout_ms: i32,
    /// The session timeout.
    pub session_timeout_ms: i32,
    /// The protocol type ("consumer" for consumers).
    pub protocol_type: String,
    /// Supported protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// The member id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Its metadata for the selected protocol.
    pub metadata: Bytes,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// The error (NONE on success).
    pub error: ErrorCode,
    /// The generation (-1 on error).
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id ("" on error).
    pub leader: String,
    /// The member id of the joining member (also with MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// Every member, for the leader only.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    /// An error answer (Kafka's `joinError`).
    pub fn error(member_id: &str, error: ErrorCode) -> JoinResult {
        JoinResult {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// The error (NONE on success).
    pub error: ErrorCode,
    /// The group's protocol type (on success).
    pub protocol_type: Option<String>,
    /// The selected protocol (on success).
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncResult {
    /// An error answer.
    pub fn error(error: ErrorCode) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What an operation completed.
#[derive(Debug)]
pub struct Effects<W> {
    /// JoinGroup requests answered.
    pub joins: Vec<(W, JoinResult)>,
    /// SyncGroup requests answered.
    pub syncs: Vec<(W, SyncResult)>,
    /// The group metadata changed in a way Kafka persists (a new empty generation, an
    /// assignment, a static member replaced): write a GroupMetadata record before answering.
    pub store: bool,
}

impl<W> Default for Effects<W> {
    fn default() -> Self {
        Effects {
            joins: Vec::new(),
            syncs: Vec::new(),
            store: false,
        }
    }
}

impl<W> Effects<W> {
    /// Appends `other`.
    pub fn merge(&mut self, other: Effects<W>) {
        self.joins.extend(other.joins);
        self.syncs.extend(other.syncs);
        self.store |= other.store;
    }
}

/// One member.
#[derive(Debug)]
pub struct Member<W> {
    /// The member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Supported protocols, in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// The assignment of the current generation.
    pub assignment: Bytes,
    join_waiter: Option<W>,
    sync_waiter: Option<W>,
    /// When the session expires unless the member heartbeats (`i64::MAX`: no expectation).
    heartbeat_deadline: i64,
    is_new: bool,
}

impl<W> Member<W> {
    fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// The member's metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn vote(&self, candidates: &HashSet<&str>) -> Option<String> {
        self.protocols
            .iter()
            .find(|(name, _)| candidates.contains(name.as_str()))
            .map(|(name, _)| name.clone())
    }

    fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.join_waiter.is_some() || self.sync_waiter.is_some())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinTimer {
    /// The initial rebalance delay (from Empty).
    Initial {
        deadline: i64,
        delay: i64,
        remaining: i64,
    },
    /// The rebalance timeout.
    Rebalance { deadline: i64 },
}

impl JoinTimer {
    fn deadline(self) -> i64 {
        match self {
            JoinTimer::Initial { deadline, .. } | JoinTimer::Rebalance { deadline } => deadline,
        }
    }
}

/// A classic group (see the [module documentation](self)).
#[derive(Debug)]
pub struct ClassicGroup<W> {
    id: String,
    state: GroupState,
    previous_state: GroupState,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader_id: Option<String>,
    /// Members in join order.
    members: Vec<Member<W>>,
    /// KIP-394 member ids handed out and not yet used, with their expiry.
    pending_members: HashMap<String, i64>,
    pending_sync: HashSet<String>,
    new_member_added: bool,
    join_timer: Option<JoinTimer>,
    /// Deadline and generation of the pending-sync check.
    sync_timer: Option<(i64, i32)>,
    state_timestamp: i64,
}

/// Kafka's member ids: the client id (or `group.instance.id`), a dash and a random UUID in
/// Java's `UUID.toString()` form.
fn generate_member_id(prefix: &str) -> String {
    let b = crate::state::random_uuid();
    let hex: String = b.as_bytes().iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{prefix}-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl<W> ClassicGroup<W> {
    /// A new, Empty group.
    pub fn new(id: &str, now: i64) -> ClassicGroup<W> {
        ClassicGroup {
            id: id.to_string(),
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: Vec::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_timer: None,
            state_timestamp: now,
        }
    }

    /// An Empty group restored from `__consumer_offsets` (its generation and protocol type).
    pub fn restored(
        id: &str,
        generation_id: i32,
        protocol_type: Option<String>,
        now: i64,
    ) -> ClassicGroup<W> {
        let mut g = ClassicGroup::new(id, now);
        g.generation_id = generation_id;
        g.protocol_type = protocol_type.filter(|t| !t.is_empty());
        g
    }

    /// The group id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The generation.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The protocol type, if any member ever joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The selected protocol of the current generation.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// The leader's member id.
    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// When the state last changed.
    pub fn state_timestamp(&self) -> i64 {
        self.state_timestamp
    }

    /// The members, in join order.
    pub fn members(&self) -> &[Member<W>] {
        &self.members
    }

    /// Whether `member_id` is a member.
    pub fn has_member(&self, member_id: &str) -> bool {
        self.member_index(member_id).is_some()
    }

    fn member_index(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.member_id == member_id)
    }

    fn member_mut(&mut self, member_id: &str) -> Option<&mut Member<W>> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    fn static_member_id(&self, instance_id: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.group_instance_id.as_deref() == Some(instance_id))
            .map(|m| m.member_id.clone())
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    fn transition(&mut self, to: GroupState, now: i64) {
        self.previous_state = self.state;
        self.state = to;
        self.state_timestamp = now;
    }

    /// The largest rebalance timeout of the members (Kafka's `rebalanceTimeoutMs`).
    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn awaiting_join_count(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.join_waiter.is_some())
            .count()
    }

    fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.awaiting_join_count() && self.pending_members.is_empty()
    }

    fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    /// Kafka's `isStaticMemberFenced`: the instance id belongs to another member id.
    fn is_static_member_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|i| self.static_member_id(i))
            .is_some_and(|existing| existing != member_id)
    }

    /// Kafka's `validateMember`.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), ErrorCode> {
        match instance_id {
            Some(instance) => match self.static_member_id(instance) {
                None => Err(ErrorCode::UnknownMemberId),
                Some(existing) if existing != member_id => Err(ErrorCode::FencedInstanceId),
                Some(_) => Ok(()),
            },
            None if !self.has_member(member_id) => Err(ErrorCode::UnknownMemberId),
            None => Ok(()),
        }
    }

    fn protocol_counts(&self) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for m in &self.members {
            for (name, _) in &m.protocols {
                *counts.entry(name.as_str()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Kafka's `supportsProtocols`.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        let counts = self.protocol_counts();
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| counts.get(name.as_str()).copied() == Some(self.members.len()))
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports, the one with the
    /// most votes. Ties (broken by hash order in Kafka) go to the candidate the earliest member
    /// prefers most, which makes the choice deterministic.
    pub fn select_protocol(&self) -> Option<String> {
        let counts = self.protocol_counts();
        let candidates: HashSet<&str> = counts
            .iter()
            .filter(|(_, &c)| c == self.members.len())
            .map(|(&n, _)| n)
            .collect();
        let mut votes: Vec<(String, usize)> = Vec::new();
        for m in &self.members {
            if let Some(v) = m.vote(&candidates) {
                match votes.iter_mut().find(|(n, _)| *n == v) {
                    Some((_, c)) => *c += 1,
                    None => votes.push((v, 1)),
                }
            }
        }
        let best = votes.iter().map(|(_, c)| *c).max()?;
        let first = self.members.first()?;
        first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .find(|n| votes.iter().any(|(v, c)| v == *n && *c == best))
            .cloned()
    }

    /// The earliest deadline of any timer (join, sync, sessions, pending members).
    pub fn next_deadline(&self) -> Option<i64> {
        let timers = self
            .join_timer
            .map(JoinTimer::deadline)
            .into_iter()
            .chain(self.sync_timer.map(|(d, _)| d))
            .chain(self.pending_members.values().copied())
            .chain(
                self.members
                    .iter()
                    .map(|m| m.heartbeat_deadline)
                    .filter(|d| *d != i64::MAX),
            );
        timers.min()
    }

    fn reschedule_heartbeat(&mut self, member_id: &str, now: i64) {
        if let Some(m) = self.member_mut(member_id) {
            m.heartbeat_deadline = now.saturating_add(i64::from(m.session_timeout_ms));
        }
    }

    /// Removes a member (or pending member), moving leadership to the next member.
    fn remove(&mut self, member_id: &str) -> Option<Member<W>> {
        let removed = self.member_index(member_id).map(|i| self.members.remove(i));
        if self.is_leader(member_id) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        self.pending_members.remove(member_id);
        self.pending_sync.remove(member_id);
        removed
    }

    // ---------------------------------------------------------------------------------------
    // JoinGroup
    // ---------------------------------------------------------------------------------------

    /// Handles a JoinGroup; the answer (now or when the join phase completes) comes back with
    /// `waiter` in the effects.
    pub fn join(&mut self, req: JoinRequest, waiter: W, now: i64, cfg: &GroupConfig) -> Effects<W> {
        let mut fx = Effects::default();
        if req.session_timeout_ms < cfg.min_session_timeout_ms
            || req.session_timeout_ms > cfg.max_session_timeout_ms
        {
            fx.joins.push((
                waiter,
                JoinResult::error(&req.member_id, ErrorCode::InvalidSessionTimeout),
            ));
            return fx;
        }
        if self.state == GroupState::Dead {
            fx.joins.push((
                waiter,
                JoinResult::error(&req.member_id, ErrorCode::CoordinatorNotAvailable),
            ));
            return fx;
        }
        if !self.accept_joining_member(&req.member_id, cfg) {
            // Kafka removes the member (shedding an oversized group) and answers with no id.
            let removed = self.remove_member_and_update(&req.member_id, now, cfg);
            fx.merge(removed);
            fx.joins.push((
                waiter,
                JoinResult::error("", ErrorCode::GroupMaxSizeReached),
            ));
            return fx;
        }
        if req.member_id.is_empty() {
            self.join_new_member(req, waiter, now, cfg, &mut fx);
        } else {
            self.join_existing_member(req, waiter, now, cfg, &mut fx);
        }
        fx.merge(self.on_timer(now, cfg));
        fx
    }

    /// Kafka's `acceptJoiningMember` (`group.max.size`).
    fn accept_joining_member(&self, member_id: &str, cfg: &GroupConfig) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members
                    .iter()
                    .any(|m| m.member_id == member_id && m.join_waiter.is_some())
                    || self.awaiting_join_count() < cfg.max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.has_member(member_id) || self.members.len() < cfg.max_size
            }
        }
    }

    fn join_new_member(
        &mut self,
        req: JoinRequest,
        waiter: W,
        now: i64,
        cfg: &GroupConfig,
        fx: &mut Effects<W>,
    ) {
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            fx.joins.push((
                waiter,
                JoinResult::error("", ErrorCode::InconsistentGroupProtocol),
            ));
            return;
        }
        match req.group_instance_id.clone() {
            Some(instance) => {
                let new_id = generate_member_id(&instance);
                match self.static_member_id(&instance) {
                    Some(old_id) => {
                        self.replace_static_member(req, waiter, old_id, new_id, now, cfg, fx)
                    }
                    None => self.add_member_and_rebalance(req, new_id, waiter, now, cfg, fx),
                }
            }
            None => {
                let new_id = generate_member_id(&req.client_id);
                if req.require_known_member_id {
                    // KIP-394: hand out the id and wait for the member to come back with it.
                    self.pending_members.insert(
                        new_id.clone(),
                        now.saturating_add(i64::from(req.session_timeout_ms)),
                    );
                    fx.joins.push((
                        waiter,
                        JoinResult::error(&new_id, ErrorCode::MemberIdRequired),
                    ));
                } else {
                    self.add_member_and_rebalance(req, new_id, waiter, now, cfg, fx);
                }
            }
        }
    }

    fn join_existing_member(
        &mut self,
        req: JoinRequest,
        waiter: W,
        now: i64,
        cfg: &GroupConfig,
        fx: &mut Effects<W>,
    ) {
        let member_id = req.member_id.clone();
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            fx.joins.push((
                waiter,
                JoinResult::error(&member_id, ErrorCode::InconsistentGroupProtocol),
            ));
            return;
        }
        if self.pending_members.contains_key(&member_id) {
            // A KIP-394 member coming back with its id (never a static member).
            self.add_member_and_rebalance(req, member_id, waiter, now, cfg, fx);
            return;
        }
        let instance = req.group_instance_id.as_deref();
        if self.is_static_member_fenced(&member_id, instance) {
            fx.joins.push((
                waiter,
                JoinResult::error(&member_id, ErrorCode::FencedInstanceId),
            ));
            return;
        }
        let instance_unknown = instance.is_some_and(|i| self.static_member_id(i).is_none());
        if !self.has_member(&member_id) || instance_unknown {
            fx.joins.push((
                waiter,
                JoinResult::error(&member_id, ErrorCode::UnknownMemberId),
            ));
            return;
        }
        let matches = self
            .members
            .iter()
            .any(|m| m.member_id == member_id && m.matches(&req.protocols));
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(req, waiter, now, cfg, fx)
            }
            GroupState::CompletingRebalance if matches => {
                // The member lost its JoinGroup response: answer it again.
                let result = self.current_join_result(&member_id, self.is_leader(&member_id));
                fx.joins.push((waiter, result));
            }
            GroupState::Stable if matches && !self.is_leader(&member_id) => {
                let result = self.current_join_result(&member_id, false);
                fx.joins.push((waiter, result));
            }
            // Changed metadata, or the leader asking for a new assignment.
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(req, waiter, now, cfg, fx)
            }
            GroupState::Empty | GroupState::Dead => fx.joins.push((
                waiter,
                JoinResult::error(&member_id, ErrorCode::UnknownMemberId),
            )),
        }
    }

    fn current_join_result(&self, member_id: &str, with_members: bool) -> JoinResult {
        JoinResult {
            error: ErrorCode::None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.joined_members()
            } else {
                Vec::new()
            },
        }
    }

    fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(&protocol),
            })
            .collect()
    }

    fn add_member_and_rebalance(
        &mut self,
        req: JoinRequest,
        member_id: String,
        waiter: W,
        now: i64,
        cfg: &GroupConfig,
        fx: &mut Effects<W>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        if self.state == GroupState::PreparingRebalance && self.generation_id == 0 {
            self.new_member_added = true;
        }
        self.pending_members.remove(&member_id);
        self.members.push(Member {
            member_id,
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(waiter),
            sync_waiter: None,
            heartbeat_deadline: now.saturating_add(NEW_MEMBER_JOIN_TIMEOUT_MS),
            is_new: true,
        });
        fx.merge(self.maybe_prepare_rebalance_or_complete_join(now, cfg));
    }

    fn update_member_and_rebalance(
        &mut self,
        req: JoinRequest,
        waiter: W,
        now: i64,
        cfg: &GroupConfig,
        fx: &mut Effects<W>,
    ) {
        if let Some(m) = self.member_mut(&req.member_id) {
            m.protocols = req.protocols;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.session_timeout_ms = req.session_timeout_ms;
            m.client_id = req.client_id;
            m.client_host = req.client_host;
            // A duplicate JoinGroup replaces the earlier one (dropped: it gets an error).
            m.join_waiter = Some(waiter);
        }
        fx.merge(self.maybe_prepare_rebalance_or_complete_join(now, cfg));
    }

    #[allow(clippy::too_many_arguments)]
    fn replace_static_member(
        &mut self,
        req: JoinRequest,
        waiter: W,
        old_id: String,
        new_id: String,
        now: i64,
        cfg: &GroupConfig,
        fx: &mut Effects<W>,
    ) {
        let current_leader = self.leader_id.clone().unwrap_or_default();
        let Some(idx) = self.member_index(&old_id) else {
            return;
        };
        let old_protocol = self.protocol_name.clone();
        let member = &mut self.members[idx];
        // The old member's waiting requests are fenced.
        if let Some(w) = member.join_waiter.take() {
            fx.joins
                .push((w, JoinResult::error(&old_id, ErrorCode::FencedInstanceId)));
        }
        if let Some(w) = member.sync_waiter.take() {
            fx.syncs
                .push((w, SyncResult::error(ErrorCode::FencedInstanceId)));
        }
        member.member_id = new_id.clone();
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.join_waiter = Some(waiter);
        member.heartbeat_deadline = now.saturating_add(i64::from(req.session_timeout_ms));
        if self.is_leader(&old_id) {
            self.leader_id = Some(new_id.clone());
        }
        if self.pending_sync.remove(&old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        match self.state {
            GroupState::Stable => {
                if old_protocol.is_some() && self.select_protocol() == old_protocol {
                    // No rebalance: persist the new member id and answer with the current
                    // generation and the *old* leader id, so that the leader does not think
                    // it must assign (a Stable group would not broadcast a new assignment).
                    fx.store = true;
                    if let Some(w) = self.members[idx].join_waiter.take() {
                        let mut result = self.current_join_result(&new_id, false);
                        result.leader = current_leader;
                        fx.joins.push((w, result));
                    }
                } else {
                    fx.merge(self.maybe_prepare_rebalance_or_complete_join(now, cfg));
                }
            }
            // The leader may already have assigned the old member id: rebalance.
            GroupState::CompletingRebalance => fx.merge(self.prepare_rebalance(now, cfg)),
            // Wait for the join phase to complete.
            GroupState::PreparingRebalance => fx.merge(self.maybe_complete_join_phase(now)),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // ---------------------------------------------------------------------------------------
    // Rebalance
    // ---------------------------------------------------------------------------------------

    fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        now: i64,
        cfg: &GroupConfig,
    ) -> Effects<W> {
        if self.can_rebalance() {
            self.prepare_rebalance(now, cfg)
        } else {
            self.maybe_complete_join_phase(now)
        }
    }

    fn prepare_rebalance(&mut self, now: i64, cfg: &GroupConfig) -> Effects<W> {
        let mut fx = Effects::default();
        if self.state == GroupState::CompletingRebalance {
            // Members waiting in SyncGroup must rejoin.
            for m in &mut self.members {
                m.assignment = Bytes::new();
            }
            fx.merge(self.propagate_assignment(ErrorCode::RebalanceInProgress, now));
        }
        self.pending_sync.clear();
        self.sync_timer = None;
        let initial = self.state == GroupState::Empty;
        if initial {
            let delay = cfg.initial_rebalance_delay_ms;
            self.join_timer = Some(JoinTimer::Initial {
                deadline: now.saturating_add(delay),
                delay,
                remaining: (self.rebalance_timeout_ms() - delay).max(0),
            });
        }
        self.transition(GroupState::PreparingRebalance, now);
        if !initial {
            if self.has_all_members_joined() {
                fx.merge(self.complete_join(now));
            } else {
                self.join_timer = Some(JoinTimer::Rebalance {
                    deadline: now.saturating_add(self.rebalance_timeout_ms()),
                });
            }
        }
        fx
    }

    fn maybe_complete_join_phase(&mut self, now: i64) -> Effects<W> {
        if self.state != GroupState::PreparingRebalance
            || self.previous_state == GroupState::Empty
            || !self.has_all_members_joined()
        {
            return Effects::default();
        }
        self.complete_join(now)
    }

    /// Kafka's `maybeElectNewJoinedLeader`.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        let leader_joined = self
            .members
            .iter()
            .any(|m| m.member_id == leader && m.join_waiter.is_some());
        if leader_joined {
            return true;
        }
        match self.members.iter().find(|m| m.join_waiter.is_some()) {
            Some(m) => {
                self.leader_id = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    fn complete_join(&mut self, now: i64) -> Effects<W> {
        let mut fx = Effects::default();
        self.join_timer = None;
        // Dynamic members that did not rejoin are removed.
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.join_waiter.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove(&id);
        }
        if self.state == GroupState::Dead {
            return fx;
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that have not rejoined: wait for them (or their sessions).
            self.join_timer = Some(JoinTimer::Rebalance {
                deadline: now.saturating_add(self.rebalance_timeout_ms()),
            });
            return fx;
        }
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(GroupState::Empty, now);
            fx.store = true;
            return fx;
        }
        self.protocol_name = self.select_protocol();
        self.transition(GroupState::CompletingRebalance, now);
        let all = self.joined_members();
        for i in 0..self.members.len() {
            let id = self.members[i].member_id.clone();
            let leader = self.is_leader(&id);
            let mut result = self.current_join_result(&id, false);
            if leader {
                result.members = all.clone();
            }
            let m = &mut self.members[i];
            if let Some(w) = m.join_waiter.take() {
                fx.joins.push((w, result));
            }
            m.heartbeat_deadline = now.saturating_add(i64::from(m.session_timeout_ms));
            m.is_new = false;
            self.pending_sync.insert(id);
        }
        self.sync_timer = Some((
            now.saturating_add(self.rebalance_timeout_ms()),
            self.generation_id,
        ));
        fx
    }

    /// Answers every member waiting in SyncGroup with its assignment (or `error`).
    fn propagate_assignment(&mut self, error: ErrorCode, now: i64) -> Effects<W> {
        let mut fx = Effects::default();
        let (protocol_type, protocol_name) = if error == ErrorCode::None {
            (self.protocol_type.clone(), self.protocol_name.clone())
        } else {
            (None, None)
        };
        for m in &mut self.members {
            if let Some(w) = m.sync_waiter.take() {
                fx.syncs.push((
                    w,
                    SyncResult {
                        error,
                        protocol_type: protocol_type.clone(),
                        protocol_name: protocol_name.clone(),
                        assignment: m.assignment.clone(),
                    },
                ));
                m.heartbeat_deadline = now.saturating_add(i64::from(m.session_timeout_ms));
            }
        }
        fx
    }

    /// Removes a member (answering its pending JoinGroup with UNKNOWN_MEMBER_ID) and
    /// rebalances or completes the join phase as Kafka's `removeMemberAndUpdateClassicGroup`.
    fn remove_member_and_update(
        &mut self,
        member_id: &str,
        now: i64,
        cfg: &GroupConfig,
    ) -> Effects<W> {
        let mut fx = Effects::default();
        let was_pending = self.pending_members.contains_key(member_id);
        let Some(mut member) = self.remove(member_id) else {
            if was_pending
                && self.state == GroupState::PreparingRebalance
                && self.has_all_members_joined()
            {
                fx.merge(self.complete_join(now));
            }
            return fx;
        };
        if let Some(w) = member.join_waiter.take() {
            fx.joins
                .push((w, JoinResult::error("", ErrorCode::UnknownMemberId)));
        }
        if let Some(w) = member.sync_waiter.take() {
            fx.syncs
                .push((w, SyncResult::error(ErrorCode::UnknownMemberId)));
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                fx.merge(self.maybe_prepare_rebalance_or_complete_join(now, cfg))
            }
            GroupState::PreparingRebalance if self.has_all_members_joined() => {
                fx.merge(self.complete_join(now))
            }
            _ => {}
        }
        fx
    }

    /// Fires every timer whose deadline is `<= now`: the initial delay and rebalance timeout,
    /// the pending-sync timeout, member sessions and KIP-394 pending members.
    pub fn on_timer(&mut self, now: i64, cfg: &GroupConfig) -> Effects<W> {
        let mut fx = Effects::default();
        // Bounded: every round either fires a timer (removing or moving it) or stops.
        for _ in 0..1000 {
            if let Some(timer) = self.join_timer.filter(|t| t.deadline() <= now) {
                self.join_timer = None;
                match timer {
                    JoinTimer::Initial {
                        deadline,
                        remaining,
                        ..
                    } if self.new_member_added && remaining != 0 => {
                        self.new_member_added = false;
                        let delay = cfg.initial_rebalance_delay_ms.min(remaining);
                        self.join_timer = Some(JoinTimer::Initial {
                            deadline: deadline.saturating_add(delay.max(1)),
                            delay,
                            remaining: (remaining - cfg.initial_rebalance_delay_ms).max(0),
                        });
                    }
                    _ => {
                        if self.state == GroupState::PreparingRebalance {
                            fx.merge(self.complete_join(now));
                        }
                    }
                }
                continue;
            }
            if let Some((deadline, generation)) = self.sync_timer.filter(|(d, _)| *d <= now) {
                let _ = deadline;
                self.sync_timer = None;
                if generation == self.generation_id
                    && matches!(
                        self.state,
                        GroupState::CompletingRebalance | GroupState::Stable
                    )
                    && !self.pending_sync.is_empty()
                {
                    let missing: Vec<String> = self.pending_sync.iter().cloned().collect();
                    for id in missing {
                        if let Some(mut m) = self.remove(&id) {
                            if let Some(w) = m.sync_waiter.take() {
                                fx.syncs
                                    .push((w, SyncResult::error(ErrorCode::UnknownMemberId)));
                            }
                        }
                    }
                    fx.merge(self.prepare_rebalance(now, cfg));
                }
                continue;
            }
            if let Some(id) = self
                .pending_members
                .iter()
                .find(|(_, d)| **d <= now)
                .map(|(id, _)| id.clone())
            {
                fx.merge(self.remove_member_and_update(&id, now, cfg));
                continue;
            }
            let expired = self
                .members
                .iter()
                .position(|m| m.heartbeat_deadline <= now);
            if let Some(i) = expired {
                if self.members[i].has_satisfied_heartbeat() {
                    // Waiting in JoinGroup/SyncGroup keeps a member alive until answered.
                    self.members[i].heartbeat_deadline = i64::MAX;
                } else {
                    let id = self.members[i].member_id.clone();
                    tracing::info!(group = %self.id, member = %id, "session expired: removing member");
                    fx.merge(self.remove_member_and_update(&id, now, cfg));
                }
                continue;
            }
            break;
        }
        fx
    }

    // ---------------------------------------------------------------------------------------
    // SyncGroup, Heartbeat, LeaveGroup
    // ---------------------------------------------------------------------------------------

    /// Handles a SyncGroup; the answer (now, or when the leader's assignment arrives) comes
    /// back with `waiter` in the effects.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        waiter: W,
        now: i64,
    ) -> Effects<W> {
        let mut fx = Effects::default();
        let inconsistent = |asked: Option<&str>, have: Option<&str>| matches!((asked, have), (Some(a), Some(h)) if a != h);
        let check = if self.state == GroupState::Dead {
            Err(ErrorCode::CoordinatorNotAvailable)
        } else {
            self.validate_member(member_id, instance_id).and_then(|()| {
                if generation_id != self.generation_id {
                    Err(ErrorCode::IllegalGeneration)
                } else if inconsistent(protocol_type, self.protocol_type.as_deref())
                    || inconsistent(protocol_name, self.protocol_name.as_deref())
                {
                    Err(ErrorCode::InconsistentGroupProtocol)
                } else {
                    Ok(())
                }
            })
        };
        if let Err(e) = check {
            fx.syncs.push((waiter, SyncResult::error(e)));
            return fx;
        }
        match self.state {
            GroupState::Empty => fx
                .syncs
                .push((waiter, SyncResult::error(ErrorCode::UnknownMemberId))),
            GroupState::PreparingRebalance => fx
                .syncs
                .push((waiter, SyncResult::error(ErrorCode::RebalanceInProgress))),
            GroupState::CompletingRebalance => {
                self.pending_sync.remove(member_id);
                if let Some(m) = self.member_mut(member_id) {
                    m.sync_waiter = Some(waiter);
                }
                if self.is_leader(member_id) {
                    for m in &mut self.members {
                        m.assignment = assignments
                            .iter()
                            .find(|(id, _)| *id == m.member_id)
                            .map(|(_, a)| a.clone())
                            .unwrap_or_default();
                    }
                    fx.store = true;
                    fx.merge(self.propagate_assignment(ErrorCode::None, now));
                    self.transition(GroupState::Stable, now);
                }
            }
            GroupState::Stable => {
                self.pending_sync.remove(member_id);
                let assignment = self
                    .members
                    .iter()
                    .find(|m| m.member_id == member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                fx.syncs.push((
                    waiter,
                    SyncResult {
                        error: ErrorCode::None,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol_name.clone(),
                        assignment,
                    },
                ));
                self.reschedule_heartbeat(member_id, now);
            }
            GroupState::Dead => {}
        }
        fx
    }

    /// Handles a Heartbeat (Kafka 4.0: NONE in CompletingRebalance and Stable,
    /// REBALANCE_IN_PROGRESS while preparing a rebalance).
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: i64,
    ) -> ErrorCode {
        if self.state == GroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if let Err(e) = self.validate_member(member_id, instance_id) {
            return e;
        }
        if generation_id != self.generation_id {
            return ErrorCode::IllegalGeneration;
        }
        match self.state {
            GroupState::Empty => ErrorCode::UnknownMemberId,
            GroupState::PreparingRebalance => {
                self.reschedule_heartbeat(member_id, now);
                ErrorCode::RebalanceInProgress
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.reschedule_heartbeat(member_id, now);
                ErrorCode::None
            }
            GroupState::Dead => ErrorCode::CoordinatorNotAvailable,
        }
    }

    /// Handles a LeaveGroup of `members` (`(member id, group.instance.id)`); returns one code
    /// per member, or a group-level error.
    pub fn leave(
        &mut self,
        members: &[(String, Option<String>)],
        now: i64,
        cfg: &GroupConfig,
    ) -> Result<(Vec<ErrorCode>, Effects<W>), ErrorCode> {
        if self.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let mut fx = Effects::default();
        let mut codes = Vec::with_capacity(members.len());
        for (member_id, instance_id) in members {
            let target = match instance_id {
                None => {
                    if self.pending_members.contains_key(member_id) || self.has_member(member_id) {
                        Ok(member_id.clone())
                    } else {
                        Err(ErrorCode::UnknownMemberId)
                    }
                }
                Some(instance) => match self.static_member_id(instance) {
                    None => Err(ErrorCode::UnknownMemberId),
                    Some(existing) if !member_id.is_empty() && existing != *member_id => {
                        Err(ErrorCode::FencedInstanceId)
                    }
                    Some(existing) => Ok(existing),
                },
            };
            match target {
                Ok(id) => {
                    tracing::info!(group = %self.id, member = %id, "member left the group");
                    fx.merge(self.remove_member_and_update(&id, now, cfg));
                    codes.push(ErrorCode::None);
                }
                Err(e) => codes.push(e),
            }
        }
        Ok((codes, fx))
    }

    // ---------------------------------------------------------------------------------------
    // Offsets and administration
    // ---------------------------------------------------------------------------------------

    /// Kafka's `ClassicGroup.validateOffsetCommit` (non-transactional). A commit with
    /// generation -1 and no member id is accepted only for an Empty group (simple consumers).
    pub fn validate_offset_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now: i64,
    ) -> Result<(), ErrorCode> {
        if self.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation_id {
                return Err(ErrorCode::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            return Err(ErrorCode::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ErrorCode::RebalanceInProgress);
        }
        if matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            self.reschedule_heartbeat(member_id, now);
        }
        Ok(())
    }

    /// Kafka's `validateOffsetCommit` for a transactional commit (TxnOffsetCommit, KIP-447):
    /// generation -1 with no member id and no instance id (v0-v2, or a producer without group
    /// metadata) is not checked; otherwise the member must belong to the group
    /// (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) with the group's generation
    /// (ILLEGAL_GENERATION). A rebalance in progress does not refuse it.
    pub fn validate_txn_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        if self.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation_id {
                return Err(ErrorCode::IllegalGeneration);
            }
        }
        Ok(())
    }

    /// Kafka's `validateOffsetDelete`: an Empty group may delete any offset; a non-empty
    /// consumer group only those of topics it is not subscribed to (checked per topic with
    /// [`is_subscribed_to_topic`](Self::is_subscribed_to_topic)).
    pub fn validate_offset_delete(&self) -> Result<(), ErrorCode> {
        match self.state {
            GroupState::Dead => Err(ErrorCode::GroupIdNotFound),
            GroupState::Empty => Ok(()),
            _ if self.protocol_type.as_deref() == Some("consumer") => Ok(()),
            _ => Err(ErrorCode::NonEmptyGroup),
        }
    }

    /// Whether a member of a non-empty consumer group subscribes to `topic` (true when a
    /// subscription cannot be parsed, as Kafka).
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        if self.state == GroupState::Empty {
            return false;
        }
        let Some(protocol) = self.protocol_name.as_deref() else {
            return true;
        };
        self.members.iter().any(|m| {
            match kafka_wire::consumer_protocol::decode_subscription(m.metadata(protocol)) {
                Ok((_, s)) => s.topics.iter().any(|t| t == topic),
                Err(_) => true,
            }
        })
    }

    /// Kafka's `validateDeleteGroup`.
    pub fn validate_delete(&self) -> Result<(), ErrorCode> {
        match self.state {
            GroupState::Dead => Err(ErrorCode::GroupIdNotFound),
            GroupState::Empty => Ok(()),
            _ => Err(ErrorCode::NonEmptyGroup),
        }
    }

    /// Marks the group Dead, answering every waiting request with `error`.
    pub fn mark_dead(&mut self, error: ErrorCode, now: i64) -> Effects<W> {
        let fx = self.drain_waiters(error);
        self.transition(GroupState::Dead, now);
        fx
    }

    /// Answers every waiting JoinGroup and SyncGroup with `error` (shutdown).
    pub fn drain_waiters(&mut self, error: ErrorCode) -> Effects<W> {
        let mut fx = Effects::default();
        for m in &mut self.members {
            if let Some(w) = m.join_waiter.take() {
                fx.joins.push((w, JoinResult::error(&m.member_id, error)));
            }
            if let Some(w) = m.sync_waiter.take() {
                fx.syncs.push((w, SyncResult::error(error)));
            }
        }
        fx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn cfg(delay: i64) -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: delay,
            min_session_timeout_ms: 10,
            ..GroupConfig::default()
        }
    }

    fn join_req(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            group_instance_id: None,
            require_known_member_id: false,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 500,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(p.to_string())))
                .collect(),
        }
    }

    fn only_join(fx: Effects<u32>) -> (u32, JoinResult) {
        assert_eq!(fx.joins.len(), 1, "{fx:?}");
        fx.joins.into_iter().next().unwrap()
    }

    #[test]
    fn protocol_with_most_votes_supported_by_all_wins() {
        let c = cfg(0);
        let mut g: ClassicGroup<u32> = ClassicGroup::new("g", NOW);
        // a prefers range, b and c prefer roundrobin; all support both, only a supports sticky.
        let (_, r) =
            only_join(g.join(join_req("", &["range", "roundrobin", "sticky"]), 1, NOW, &c));
        assert_eq!(r.error, ErrorCode::None);
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        let a = r.member_id;
        let fx = g.join(join_req("", &["roundrobin", "range"]), 2, NOW, &c);
        assert!(fx.joins.is_empty());
        let fx = g.join(join_req("", &["roundrobin", "range"]), 3, NOW, &c);
        assert!(fx.joins.is_empty());
        let fx = g.join(join_req(&a, &["range", "roundrobin", "sticky"]), 4, NOW, &c);
        assert_eq!(fx.joins.len(), 3);
        for (_, r) in &fx.joins {
            assert_eq!(r.generation_id, 2);
            assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
            assert_eq!(r.leader, a);
        }
        // Not supported by everyone.
        let (_, r) = only_join(g.join(join_req("", &["sticky"]), 5, NOW, &c));
        assert_eq!(r.error, ErrorCode::InconsistentGroupProtocol);
    }

    #[test]
    fn initial_delay_waits_and_extends_for_new_members() {
        let c = cfg(100);
        let mut g: ClassicGroup<u32> = ClassicGroup::new("g", NOW);
        assert!(g
            .join(join_req("", &["range"]), 1, NOW, &c)
            .joins
            .is_empty());
        assert_eq!(g.state(), GroupState::PreparingRebalance);
        assert_eq!(g.next_deadline(), Some(NOW + 100));
        assert!(g
            .join(join_req("", &["range"]), 2, NOW + 50, &c)
            .joins
            .is_empty());
        // A member was added during the delay: extended once more.
        assert!(g.on_timer(NOW + 100, &c).joins.is_empty());
        let fx = g.on_timer(NOW + 200, &c);
        assert_eq!(fx.joins.len(), 2);
        assert_eq!(g.state(), GroupState::CompletingRebalance);
        assert_eq!(g.generation_id(), 1);
    }

    #[test]
    fn member_id_required_then_join() {
        let c = cfg(0);
        let mut g: ClassicGroup<u32> = ClassicGroup::new("g", NOW);
        let mut req = join_req("", &["range"]);
        req.require_known_member_id = true;
        let (_, r) = only_join(g.join(req.clone(), 1, NOW, &c));
        assert_eq!(r.error, ErrorCode::MemberIdRequired);
        assert!(r.member_id.starts_with("c-"));
        req.member_id = r.member_id.clone();
        let (_, r2) = only_join(g.join(req, 2, NOW, &c));
        assert_eq!(r2.error, ErrorCode::None);
        assert_eq!(r2.member_id, r.member_id);
        assert_eq!(r2.leader, r.member_id);
        // An unused pending id expires with the session timeout.
        let mut req = join_req("", &["range"]);
        req.require_known_member_id = true;
        let (_, _) = only_join(g.join(req, 3, NOW, &c));
        assert_eq!(g.pending_members.len(), 1);
        let _ = g.on_timer(NOW + 500, &c);
        assert!(g.pending_members.is_empty());
    }

    #[test]
    fn sync_distributes_the_leaders_assignment() {
        let c = cfg(0);
        let mut g: ClassicGroup<u32> = ClassicGroup::new("g", NOW);
        let (_, a) = only_join(g.join(join_req("", &["range"]), 1, NOW, &c));
        let fx = g.sync(&a.member_id, None, 1, None, None, vec![], 2, NOW);
        assert_eq!(fx.syncs.len(), 1);
        assert!(fx.store);
        assert_eq!(g.state(), GroupState::Stable);
        // b joins: a must rejoin.
        assert!(g
            .join(join_req("", &["range"]), 3, NOW, &c)
            .joins
            .is_empty());
        assert_eq!(
            g.heartbeat(&a.member_id, None, 1, NOW),
            ErrorCode::RebalanceInProgress
        );
        let fx = g.join(join_req(&a.member_id, &["range"]), 4, NOW, &c);
        assert_eq!(fx.joins.len(), 2);
        let b = fx
            .joins
            .iter()
            .find(|(_, r)| r.member_id != a.member_id)
            .unwrap()
            .1
            .member_id
            .clone();
        // The follower waits for the leader.
        assert!(g
            .sync(&b, None, 2, None, None, vec![], 5, NOW)
            .syncs
            .is_empty());
        assert_eq!(g.heartbeat(&b, None, 2, NOW), ErrorCode::None);
        let fx = g.sync(
            &a.member_id,
            None,
            2,
            Some("consumer"),
            Some("range"),
            vec![(b.clone(), Bytes::from_static(b"B"))],
            6,
            NOW,
        );
        let mut syncs = fx.syncs;
        syncs.sort_by_key(|(w, _)| *w);
        assert_eq!(syncs[0].1.assignment, Bytes::from_static(b"B"));
        assert_eq!(syncs[1].1.assignment, Bytes::new());
        assert_eq!(g.heartbeat(&b, None, 1, NOW), ErrorCode::IllegalGeneration);
        assert_eq!(g.heartbeat("x", None, 2, NOW), ErrorCode::UnknownMemberId);
    }

    #[test]
    fn sessions_expire_and_leaving_empties_the_group() {
        let c = cfg(0);
        let mut g: ClassicGroup<u32> = ClassicGroup::new("g", NOW);
        let (_, a) = only_join(g.join(join_req("", &["range"]), 1, NOW, &c));
        let _ = g.sync(&a.member_id, None, 1, None, None, vec![], 2, NOW);
        assert_eq!(
            g.heartbeat(&a.member_id, None, 1, NOW + 400),
            ErrorCode::None
        );
        assert!(g.on_timer(NOW + 800, &c).joins.is_empty());
        assert!(g.has_member(&a.member_id));
        let fx = g.on_timer(NOW + 900, &c);
        assert!(fx.store);
        assert!(!g.has_member(&a.member_id));
        assert_eq!(g.state(), GroupState::Empty);
        assert_eq!(g.generation_id(), 2);
    }

    #[test]
    fn static_member_rejoin_keeps_the_generation() {
        let c = cfg(0);
        let mut g: ClassicGroup<u32> = ClassicGroup::new("g", NOW);
        let mut req = join_req("", &["range"]);
        req.group_instance_id = Some("i1".into());
        let (_, a) = only_join(g.join(req.clone(), 1, NOW, &c));
        assert!(a.member_id.starts_with("i1-"));
        let _ = g.sync(&a.member_id, Some("i1"), 1, None, None, vec![], 2, NOW);
        let (_, a2) = only_join(g.join(req.clone(), 3, NOW, &c));
        assert_eq!(a2.error, ErrorCode::None);
        assert_ne!(a2.member_id, a.member_id);
        assert_eq!(a2.generation_id, 1);
        assert_eq!(a2.leader, a.member_id, "the old leader id is returned");
        assert_eq!(g.state(), GroupState::Stable);
        assert_eq!(
            g.heartbeat(&a.member_id, Some("i1"), 1, NOW),
            ErrorCode::FencedInstanceId
        );
        assert_eq!(
            g.heartbeat(&a2.member_id, Some("i1"), 1, NOW),
            ErrorCode::None
        );
        let mut stale = req;
        stale.member_id = a.member_id;
        let (_, r) = only_join(g.join(stale, 4, NOW, &c));
        assert_eq!(r.error, ErrorCode::FencedInstanceId);
    }

    #[test]
    fn max_size_and_offset_commit_rules() {
        let mut c = cfg(0);
        c.max_size = 1;
        let mut g: ClassicGroup<u32> = ClassicGroup::new("g", NOW);
        assert_eq!(g.validate_offset_commit("", None, -1, NOW), Ok(()));
        let (_, a) = only_join(g.join(join_req("", &["range"]), 1, NOW, &c));
        let (_, r) = only_join(g.join(join_req("", &["range"]), 2, NOW, &c));
        assert_eq!(r.error, ErrorCode::GroupMaxSizeReached);
        assert_eq!(
            g.validate_offset_commit(&a.member_id, None, 1, NOW),
            Err(ErrorCode::RebalanceInProgress)
        );
        let _ = g.sync(&a.member_id, None, 1, None, None, vec![], 3, NOW);
        assert_eq!(g.validate_offset_commit(&a.member_id, None, 1, NOW), Ok(()));
        assert_eq!(
            g.validate_offset_commit(&a.member_id, None, 0, NOW),
            Err(ErrorCode::IllegalGeneration)
        );
        assert_eq!(
            g.validate_offset_commit("", None, -1, NOW),
            Err(ErrorCode::UnknownMemberId)
        );
        assert_eq!(g.validate_delete(), Err(ErrorCode::NonEmptyGroup));
    }
}
