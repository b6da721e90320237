//! Java's `CooperativeStickyAssignor` (`cooperative-sticky`, KIP-429 over KIP-54).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bytes::{Buf, Bytes};

use super::sticky::{assign_sticky, StickyMemberData};
use super::{
    validate, ConsumerPartitionAssignor, GroupAssignment, MemberSubscription, RebalanceProtocol,
    TopicPartition, DEFAULT_GENERATION,
};

/// The sticky algorithm with incremental cooperative rebalancing (KIP-429).
///
/// Members keep their partitions while the group rebalances and report them as the
/// subscription's owned partitions. A partition the algorithm moves from one member to
/// another is left out of this round's assignment: its owner sees it missing and revokes it,
/// then rejoins, and the follow-up rebalance assigns it to its new owner. So no partition is
/// ever owned by two members at once.
///
/// Supports [`RebalanceProtocol::Cooperative`] and (for upgrades from eager assignors)
/// [`RebalanceProtocol::Eager`]. User data is the int32 generation of the member's owned
/// partitions (Java's `COOPERATIVE_STICKY_ASSIGNOR_USER_DATA_V0`), used by the leader only
/// when the subscription does not carry the generation itself (ConsumerProtocol v0/v1).
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl CooperativeStickyAssignor {
    /// The owned partitions and generation the leader takes for `subscription` (Java's
    /// `CooperativeStickyAssignor.memberData`).
    pub fn member_data(subscription: &MemberSubscription) -> StickyMemberData {
        let generation = if subscription.generation_id >= 0 {
            Some(subscription.generation_id)
        } else {
            decode_cooperative_user_data(subscription.user_data.as_ref())
        };
        StickyMemberData {
            partitions: subscription.owned_partitions.clone(),
            generation,
        }
    }
}

/// The user data Java's `CooperativeStickyAssignor` sends: the generation as a big-endian
/// int32, nothing else.
pub fn encode_cooperative_user_data(generation: i32) -> Bytes {
    Bytes::copy_from_slice(&generation.to_be_bytes())
}

/// Reads [`encode_cooperative_user_data`]'s format as Java does: no user data is no
/// generation; data too short for an int32 is [`DEFAULT_GENERATION`]; extra bytes are
/// ignored.
pub fn decode_cooperative_user_data(user_data: Option<&Bytes>) -> Option<i32> {
    let mut data = user_data?.clone();
    Some(if data.remaining() >= 4 {
        data.get_i32()
    } else {
        DEFAULT_GENERATION
    })
}

impl ConsumerPartitionAssignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    /// Always the generation (Java sends [`DEFAULT_GENERATION`] before the first assignment).
    fn subscription_user_data(
        &self,
        _topics: &[String],
        _owned: &[TopicPartition],
        generation: i32,
    ) -> Option<Bytes> {
        Some(encode_cooperative_user_data(generation))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<String, MemberSubscription>,
    ) -> Result<GroupAssignment, crate::Error> {
        validate(subscriptions)?;
        let member_data = subscriptions
            .iter()
            .map(|(m, s)| (m.clone(), CooperativeStickyAssignor::member_data(s)))
            .collect();
        let outcome = assign_sticky(partitions_per_topic, subscriptions, &member_data)?;
        let mut assignment = outcome.assignment;
        let transferring = match outcome.transferring {
            Some(transferring) => transferring,
            None => partitions_transferring_ownership(subscriptions, &assignment),
        };
        for (tp, consumer) in &transferring {
            if let Some(partitions) = assignment.get_mut(consumer) {
                partitions.retain(|p| p != tp);
            }
        }
        Ok(GroupAssignment::from_partitions(assignment))
    }
}

/// Java's `computePartitionsTransferringOwnership`: partitions assigned to a member that did
/// not own them while some member that owned them does not get them.
fn partitions_transferring_ownership(
    subscriptions: &BTreeMap<String, MemberSubscription>,
    assignment: &BTreeMap<String, Vec<TopicPartition>>,
) -> BTreeMap<TopicPartition, String> {
    let mut added = BTreeMap::new();
    let mut revoked = BTreeSet::new();
    for (consumer, assigned) in assignment {
        let owned: HashSet<&TopicPartition> = subscriptions
            .get(consumer)
            .map(|s| s.owned_partitions.iter().collect())
            .unwrap_or_default();
        let assigned_set: HashSet<&TopicPartition> = assigned.iter().collect();
        for tp in assigned {
            if !owned.contains(tp) {
                added.insert(tp.clone(), consumer.clone());
            }
        }
        for tp in owned {
            if !assigned_set.contains(tp) {
                revoked.insert(tp.clone());
            }
        }
    }
    added.retain(|tp, _| revoked.contains(tp));
    added
}
