//! Java's `RangeAssignor` (`range`).

use std::collections::BTreeMap;

use super::{
    member_info_cmp, subscribed_partitions, validate, ConsumerPartitionAssignor, GroupAssignment,
    MemberSubscription, RebalanceProtocol, TopicPartition,
};

/// Assigns each topic on its own: the topic's subscribers are sorted (static members by
/// `group.instance.id` first, then by member id, as Java's `MemberInfo`), and with `n`
/// partitions per consumer and `m` left over, the first `m` consumers get `n + 1` contiguous
/// partitions and the rest `n`.
///
/// Consumers subscribed to several topics with the same partition count thus get the same
/// partition numbers of each (useful for joins), at the cost of balance: with many topics the
/// first consumers get the extra partitions of every topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl ConsumerPartitionAssignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
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
        for (topic, &count) in &partitions_per_topic {
            let mut consumers: Vec<&MemberSubscription> = subscriptions
                .values()
                .filter(|s| s.topics.contains(topic))
                .collect();
            if consumers.is_empty() {
                continue;
            }
            consumers.sort_by(|a, b| member_info_cmp(a, b));
            let n = consumers.len() as i32;
            let per_consumer = count / n;
            let with_extra = count % n;
            for (i, consumer) in consumers.iter().enumerate() {
                let i = i as i32;
                let start = per_consumer * i + i.min(with_extra);
                let length = per_consumer + i32::from(i < with_extra);
                let partitions = assignment.get_mut(&consumer.member_id).expect("member");
                partitions.extend((start..start + length).map(|p| TopicPartition::new(topic, p)));
            }
        }
        Ok(GroupAssignment::from_partitions(assignment))
    }
}
