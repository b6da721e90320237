//! Consumer group partition assignors, as in Java's `ConsumerPartitionAssignor`.
//!
//! In the classic group protocol the broker only relays bytes: every member sends its
//! subscription (topics, owned partitions, generation, rack, assignor-specific *user data*)
//! in JoinGroup, and the leader runs the assignor named by the group's chosen protocol and
//! sends each member its share in SyncGroup. For a group mixing Java, librdkafka and this
//! client to work, the assignors here use Kafka's protocol names and read and write the user
//! data byte for byte as Java does:
//!
//! | assignor | name | protocols | user data |
//! |---|---|---|---|
//! | [`RangeAssignor`] | `range` | eager | none |
//! | [`RoundRobinAssignor`] | `roundrobin` | eager | none |
//! | [`StickyAssignor`] | `sticky` | eager | `StickyAssignorUserData` v1 (previous assignment + generation) |
//! | [`CooperativeStickyAssignor`] | `cooperative-sticky` | cooperative, eager | int32 generation |
//!
//! The sticky assignors implement KIP-54 (balanced assignments that preserve as much of the
//! previous assignment as possible) following Java's `AbstractStickyAssignor`; the
//! cooperative one adds KIP-429 incremental cooperative rebalancing: a partition that must move
//! to another member is left out of this round's assignment (so its owner revokes it) and is
//! assigned in the follow-up rebalance.
//!
//! Everything here is pure and deterministic (no I/O, no clock, no randomness, no hash-order
//! iteration): the same input always gives the same assignment. Where Java iterates a
//! `HashMap` (member order in the sticky algorithm), members are taken in member-id order, so
//! the exact assignment may differ from the one a Java leader would compute for the same input
//! while satisfying the same guarantees. That is fine for interoperability: only the leader
//! runs the assignor, and only the encodings must agree.
//!
//! Partition-rack matching (KIP-881) is not done: [`ConsumerPartitionAssignor::assign`] gets
//! partition counts, not replica placement, which is what Java does on the
//! `assign(Map<String, Integer>, ...)` path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use kafka_wire::messages::{
    consumer_protocol_assignment, ConsumerProtocolAssignment, ConsumerProtocolSubscription,
};

mod cooperative_sticky;
mod range;
mod round_robin;
mod sticky;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use cooperative_sticky::{
    decode_cooperative_user_data, encode_cooperative_user_data, CooperativeStickyAssignor,
};
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use sticky::{
    decode_sticky_user_data, encode_sticky_user_data, StickyAssignor, StickyMemberData,
};

/// Java's `AbstractStickyAssignor.DEFAULT_GENERATION`: no (known) generation.
pub const DEFAULT_GENERATION: i32 = -1;

/// A partition of a topic. Ordered by topic, then partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A partition of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    /// `topic-partition`, as Java's `TopicPartition.toString`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One member's subscription as the leader sees it (JoinGroup member metadata, decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// The topics the member subscribes to.
    pub topics: Vec<String>,
    /// The partitions the member owns (ConsumerProtocol v1+; empty before).
    pub owned_partitions: Vec<TopicPartition>,
    /// Assignor-specific data (see each assignor).
    pub user_data: Option<Bytes>,
    /// The generation the member's owned partitions come from (ConsumerProtocol v2+);
    /// [`DEFAULT_GENERATION`] when unknown.
    pub generation_id: i32,
    /// `client.rack` (ConsumerProtocol v3+).
    pub rack_id: Option<String>,
}

impl MemberSubscription {
    /// A dynamic member subscribed to `topics`, owning nothing, without user data or
    /// generation.
    pub fn new<S: Into<String>>(
        member_id: impl Into<String>,
        topics: impl IntoIterator<Item = S>,
    ) -> Self {
        MemberSubscription {
            member_id: member_id.into(),
            group_instance_id: None,
            topics: topics.into_iter().map(Into::into).collect(),
            owned_partitions: Vec::new(),
            user_data: None,
            generation_id: DEFAULT_GENERATION,
            rack_id: None,
        }
    }

    /// The subscription a member sent in JoinGroup (`metadata` decoded with
    /// [`kafka_wire::consumer_protocol::decode_subscription`]), with the member id and
    /// `group.instance.id` from the JoinGroup response. An empty rack id is no rack, as in
    /// Java.
    pub fn from_protocol(
        member_id: impl Into<String>,
        group_instance_id: Option<String>,
        subscription: &ConsumerProtocolSubscription,
    ) -> Self {
        MemberSubscription {
            member_id: member_id.into(),
            group_instance_id,
            topics: subscription.topics.clone(),
            owned_partitions: subscription
                .owned_partitions
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|&p| TopicPartition::new(&t.topic, p))
                })
                .collect(),
            user_data: subscription.user_data.clone(),
            generation_id: subscription.generation_id,
            rack_id: subscription.rack_id.clone().filter(|r| !r.is_empty()),
        }
    }
}

/// What one member gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberAssignment {
    /// The partitions assigned to the member.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific data for the member (none of Kafka's built-in assignors send any).
    pub user_data: Option<Bytes>,
}

impl MemberAssignment {
    /// The SyncGroup assignment for this member (encode it with
    /// [`kafka_wire::consumer_protocol::encode_assignment`]): partitions grouped by topic in
    /// order of first appearance, as Java's `ConsumerProtocol.serializeAssignment` does.
    pub fn to_protocol(&self) -> ConsumerProtocolAssignment {
        ConsumerProtocolAssignment {
            assigned_partitions: group_by_topic(&self.partitions)
                .into_iter()
                .map(
                    |(topic, partitions)| consumer_protocol_assignment::TopicPartition {
                        topic: topic.to_string(),
                        partitions,
                    },
                )
                .collect(),
            user_data: self.user_data.clone(),
        }
    }

    /// A member's assignment from the SyncGroup data (decoded with
    /// [`kafka_wire::consumer_protocol::decode_assignment`]).
    pub fn from_protocol(assignment: &ConsumerProtocolAssignment) -> Self {
        MemberAssignment {
            partitions: assignment
                .assigned_partitions
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|&p| TopicPartition::new(&t.topic, p))
                })
                .collect(),
            user_data: assignment.user_data.clone(),
        }
    }
}

/// The leader's result: every member of the group, by member id, with its share (possibly
/// nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupAssignment {
    /// Member id → assignment.
    pub assignments: BTreeMap<String, MemberAssignment>,
}

impl GroupAssignment {
    /// The partitions assigned to `member_id` (empty for an unknown member).
    pub fn partitions(&self, member_id: &str) -> &[TopicPartition] {
        self.assignments
            .get(member_id)
            .map(|a| a.partitions.as_slice())
            .unwrap_or(&[])
    }

    /// A group assignment with no user data, each member's partitions sorted.
    pub(crate) fn from_partitions(assignments: BTreeMap<String, Vec<TopicPartition>>) -> Self {
        GroupAssignment {
            assignments: assignments
                .into_iter()
                .map(|(member, mut partitions)| {
                    partitions.sort();
                    (
                        member,
                        MemberAssignment {
                            partitions,
                            user_data: None,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The rebalance protocols of KIP-429 (Java's `ConsumerPartitionAssignor.RebalanceProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining ("stop the world").
    Eager,
    /// Members keep their partitions while rejoining; only the partitions that move are
    /// revoked, and they are assigned to their new owner in a follow-up rebalance.
    Cooperative,
}

/// A partition assignment strategy (Java's `ConsumerPartitionAssignor`). Implementations are
/// pure: they are given everything they need and do no I/O.
pub trait ConsumerPartitionAssignor: Send + Sync + fmt::Debug {
    /// The protocol name sent in JoinGroup (`partition.assignment.strategy`); members of a
    /// group must share one.
    fn name(&self) -> &'static str;

    /// The rebalance protocols the assignor supports, preferred first.
    fn supported_protocols(&self) -> &[RebalanceProtocol];

    /// User data for this member's subscription. `owned` is the member's last assignment
    /// (for the eager protocol: the assignment before revoking it) and `generation` the
    /// generation it was received in ([`DEFAULT_GENERATION`] if none).
    fn subscription_user_data(
        &self,
        topics: &[String],
        owned: &[TopicPartition],
        generation: i32,
    ) -> Option<Bytes> {
        let _ = (topics, owned, generation);
        None
    }

    /// Computes the group's assignment. `partitions_per_topic` gives the partition count of
    /// the subscribed topics known to the cluster metadata (topics nobody subscribes to are
    /// ignored); `subscriptions` is keyed by member id. Every member gets an entry.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] on inconsistent input (for example a subscription
    /// whose key is not its member id).
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<String, MemberSubscription>,
    ) -> Result<GroupAssignment, crate::Error>;

    /// Called on every member when it receives its assignment.
    fn on_assignment(
        &self,
        assignment: &[TopicPartition],
        user_data: Option<&Bytes>,
        generation: i32,
    ) {
        let _ = (assignment, user_data, generation);
    }
}

/// Checks that subscriptions are keyed by their member id.
pub(crate) fn validate(
    subscriptions: &BTreeMap<String, MemberSubscription>,
) -> Result<(), crate::Error> {
    for (key, sub) in subscriptions {
        if *key != sub.member_id {
            return Err(crate::Error::InvalidArgument(format!(
                "subscription keyed `{key}` is for member `{}`",
                sub.member_id
            )));
        }
    }
    Ok(())
}

/// The partition counts of the topics someone subscribes to (negative counts are 0), as
/// Java's `AbstractPartitionAssignor` builds `partitionsPerTopic`.
pub(crate) fn subscribed_partitions(
    partitions_per_topic: &BTreeMap<String, i32>,
    subscriptions: &BTreeMap<String, MemberSubscription>,
) -> BTreeMap<String, i32> {
    let subscribed: BTreeSet<&str> = subscriptions
        .values()
        .flat_map(|s| s.topics.iter().map(String::as_str))
        .collect();
    partitions_per_topic
        .iter()
        .filter(|(t, _)| subscribed.contains(t.as_str()))
        .map(|(t, &n)| (t.clone(), n.max(0)))
        .collect()
}

/// Java's `MemberInfo` ordering: static members first, by `group.instance.id`, then dynamic
/// members by member id.
pub(crate) fn member_info_cmp(
    a: &MemberSubscription,
    b: &MemberSubscription,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

/// Partitions grouped by topic in order of the topic's first appearance, partitions in
/// list order.
pub(crate) fn group_by_topic(partitions: &[TopicPartition]) -> Vec<(&str, Vec<i32>)> {
    let mut groups: Vec<(&str, Vec<i32>)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for tp in partitions {
        let i = *index.entry(tp.topic.as_str()).or_insert_with(|| {
            groups.push((tp.topic.as_str(), Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(tp.partition);
    }
    groups
}
