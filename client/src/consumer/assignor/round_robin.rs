//! Java's `RoundRobinAssignor` (`roundrobin`).

use std::collections::{BTreeMap, BTreeSet};

use super::{
    member_info_cmp, subscribed_partitions, validate, ConsumerPartitionAssignor, GroupAssignment,
    MemberSubscription, RebalanceProtocol, TopicPartition,
};

/// Lays out all partitions of all subscribed topics sorted by (topic, partition) and deals
/// them in turn to the members sorted as Java's `MemberInfo` (static members by
/// `group.instance.id` first, then by member id). A member not subscribed to a partition's
/// topic is skipped, and the next partition goes to the member after the one that got this
/// one (Java's `CircularIterator`).
///
/// With identical subscriptions the counts differ by at most one; with different
/// subscriptions the result can be unbalanced.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl ConsumerPartitionAssignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<String, MemberSubscription>,
    ) -> Result<GroupAssignment, crate::Error> {
        validate(subscriptions)?;
        let partitions_per_topic = subscribed_partitions(partitions_per_topic, subscriptions);
        let mut assignment: BTreeMap<String, Vec<TopicPartition>> = subscriptions
            .keys()
            .map(|m| (m.clone(), Vec::new()))
            .collect();
        let mut members: Vec<&MemberSubscription> = subscriptions.values().collect();
        members.sort_by(|a, b| member_info_cmp(a, b));
        let topics: Vec<BTreeSet<&str>> = members
            .iter()
            .map(|m| m.topics.iter().map(String::as_str).collect())
            .collect();
        let mut next = 0;
        // `partitions_per_topic` only holds subscribed topics, so some member always matches.
        for (topic, &count) in &partitions_per_topic {
            for partition in 0..count {
                while !topics[next].contains(topic.as_str()) {
                    next = (next + 1) % members.len();
                }
                assignment
                    .get_mut(&members[next].member_id)
                    .expect("member")
                    .push(TopicPartition::new(topic, partition));
                next = (next + 1) % members.len();
            }
        }
        Ok(GroupAssignment::from_partitions(assignment))
    }
}
