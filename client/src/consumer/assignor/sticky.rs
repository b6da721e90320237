//! Java's `StickyAssignor` (`sticky`, KIP-54) and the algorithm it shares with the
//! cooperative one (Java's `AbstractStickyAssignor`, without rack matching).
//!
//! The algorithm has two paths, as in Java:
//! - **constrained** (every member subscribes to the same topics): each member keeps its
//!   previously owned partitions up to its quota (`floor` or `ceil` of partitions / members,
//!   with exactly `partitions % members` members at the ceiling), then the remaining
//!   partitions are dealt round-robin to the members under quota. Counts differ by at most
//!   one.
//! - **general**: keep every still-valid owned partition, give each unassigned partition to
//!   the least loaded member that can take it, then move partitions from members with at
//!   least two more than some other eligible member, preferring to give a partition back to
//!   its owner of the previous generation, and keep the result only if it is better balanced.
//!
//! Previously owned partitions come from each member's [`StickyMemberData`]; when two members
//! claim the same partition, the one of the higher generation keeps it, and a partition
//! claimed by two members of the same generation is taken from both.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{
    subscribed_partitions, validate, ConsumerPartitionAssignor, GroupAssignment,
    MemberSubscription, RebalanceProtocol, TopicPartition, DEFAULT_GENERATION,
};

/// Java's `StickyAssignor`: the sticky algorithm with the eager protocol. Each member sends
/// its last assignment and generation as user data (`StickyAssignorUserData` v1, see
/// [`encode_sticky_user_data`]); the leader reads the previous assignment from there (Java's
/// behaviour), or, for a member without user data, from the subscription's owned partitions
/// and generation (ConsumerProtocol v1+/v2+).
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

impl StickyAssignor {
    /// The previous assignment and generation the leader takes for `subscription`.
    pub fn member_data(subscription: &MemberSubscription) -> StickyMemberData {
        match &subscription.user_data {
            Some(data) if !data.is_empty() => decode_sticky_user_data(data),
            _ => StickyMemberData {
                partitions: subscription.owned_partitions.clone(),
                generation: (subscription.generation_id >= 0).then_some(subscription.generation_id),
            },
        }
    }
}

impl ConsumerPartitionAssignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    /// `None` before the member's first assignment (no partitions, no generation), as Java;
    /// otherwise the `StickyAssignorUserData` v1 of `owned` and `generation`.
    fn subscription_user_data(
        &self,
        _topics: &[String],
        owned: &[TopicPartition],
        generation: i32,
    ) -> Option<Bytes> {
        if owned.is_empty() && generation < 0 {
            return None;
        }
        Some(encode_sticky_user_data(owned, generation))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<String, MemberSubscription>,
    ) -> Result<GroupAssignment, crate::Error> {
        validate(subscriptions)?;
        let member_data = subscriptions
            .iter()
            .map(|(m, s)| (m.clone(), StickyAssignor::member_data(s)))
            .collect();
        let outcome = assign_sticky(partitions_per_topic, subscriptions, &member_data)?;
        Ok(GroupAssignment::from_partitions(outcome.assignment))
    }
}

/// A member's previous assignment as the sticky algorithm sees it (Java's
/// `AbstractStickyAssignor.MemberData`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StickyMemberData {
    /// The partitions the member had.
    pub partitions: Vec<TopicPartition>,
    /// The generation they were assigned in, when known.
    pub generation: Option<i32>,
}

/// Java's `StickyAssignor.serializeTopicPartitionAssignment`: `StickyAssignorUserData` v1
/// without a version prefix — `[topic: string, partitions: [int32]]` (topics in order of
/// first appearance, partitions in list order) followed by the int32 generation.
pub fn encode_sticky_user_data(partitions: &[TopicPartition], generation: i32) -> Bytes {
    let groups = super::group_by_topic(partitions);
    let mut buf = BytesMut::new();
    buf.put_i32(groups.len() as i32);
    for (topic, parts) in groups {
        buf.put_i16(topic.len() as i16);
        buf.put_slice(topic.as_bytes());
        buf.put_i32(parts.len() as i32);
        for p in parts {
            buf.put_i32(p);
        }
    }
    buf.put_i32(generation);
    buf.freeze()
}

/// Java's `StickyAssignor.deserializeTopicPartitionAssignment`: reads v1, else v0 (no
/// generation); data neither can read is an empty assignment of generation
/// [`DEFAULT_GENERATION`]. A generation that is not positive counts as unknown, and bytes
/// after the known fields are ignored, as in Java.
pub fn decode_sticky_user_data(data: &[u8]) -> StickyMemberData {
    if let Some(v1) = read_sticky_user_data(data, true) {
        return v1;
    }
    read_sticky_user_data(data, false).unwrap_or(StickyMemberData {
        partitions: Vec::new(),
        generation: Some(DEFAULT_GENERATION),
    })
}

fn read_sticky_user_data(mut data: &[u8], v1: bool) -> Option<StickyMemberData> {
    fn i32_of(data: &mut &[u8]) -> Option<i32> {
        (data.remaining() >= 4).then(|| data.get_i32())
    }
    fn count_of(data: &mut &[u8], element_size: usize) -> Option<usize> {
        let n = usize::try_from(i32_of(data)?).ok()?;
        // Checked before allocating or looping: each element takes at least `element_size`.
        (n.checked_mul(element_size)? <= data.remaining()).then_some(n)
    }
    let mut partitions = Vec::new();
    for _ in 0..count_of(&mut data, 6)? {
        if data.remaining() < 2 {
            return None;
        }
        let len = usize::try_from(data.get_i16()).ok()?;
        if data.remaining() < len {
            return None;
        }
        let topic = String::from_utf8_lossy(&data[..len]).into_owned();
        data.advance(len);
        for _ in 0..count_of(&mut data, 4)? {
            partitions.push(TopicPartition::new(&topic, data.get_i32()));
        }
    }
    let generation = if v1 {
        Some(i32_of(&mut data)?).filter(|&g| g > 0)
    } else {
        None
    };
    Some(StickyMemberData {
        partitions,
        generation,
    })
}

/// The sticky algorithm's result.
pub(super) struct StickyOutcome {
    /// Member id → partitions.
    pub assignment: BTreeMap<String, Vec<TopicPartition>>,
    /// Partitions given to a member other than their previous owner, and to whom — known on
    /// the constrained path only (Java's `partitionsTransferringOwnership`, `null` on the
    /// general path).
    pub transferring: Option<BTreeMap<TopicPartition, String>>,
}

/// Java's `AbstractStickyAssignor.assign`, members taken in member-id order.
pub(super) fn assign_sticky(
    partitions_per_topic: &BTreeMap<String, i32>,
    subscriptions: &BTreeMap<String, MemberSubscription>,
    member_data: &BTreeMap<String, StickyMemberData>,
) -> Result<StickyOutcome, crate::Error> {
    let partitions_per_topic = subscribed_partitions(partitions_per_topic, subscriptions);
    if subscriptions.is_empty() {
        return Ok(StickyOutcome {
            assignment: BTreeMap::new(),
            transferring: Some(BTreeMap::new()),
        });
    }
    let owned = owned_partitions(&partitions_per_topic, subscriptions, member_data);
    if owned.all_subscriptions_equal {
        let (assignment, transferring) = Constrained::new(
            &partitions_per_topic,
            &owned.consumer_to_owned,
            &owned.multiple_owners,
        )
        .build()?;
        Ok(StickyOutcome {
            assignment,
            transferring: Some(transferring),
        })
    } else {
        let assignment = General::new(
            &partitions_per_topic,
            subscriptions,
            owned.consumer_to_owned,
        )
        .build(member_data, owned.max_generation);
        Ok(StickyOutcome {
            assignment,
            transferring: None,
        })
    }
}

struct OwnedPartitions {
    all_subscriptions_equal: bool,
    consumer_to_owned: BTreeMap<String, Vec<TopicPartition>>,
    multiple_owners: BTreeSet<TopicPartition>,
    max_generation: i32,
}

/// Java's `allSubscriptionsEqual`: whether all members subscribe to the same topics, and each
/// member's previously owned partitions (of existing topics) after resolving conflicting
/// claims by generation.
fn owned_partitions(
    partitions_per_topic: &BTreeMap<String, i32>,
    subscriptions: &BTreeMap<String, MemberSubscription>,
    member_data: &BTreeMap<String, StickyMemberData>,
) -> OwnedPartitions {
    let generation_of = |m: &str| {
        member_data
            .get(m)
            .and_then(|d| d.generation)
            .unwrap_or(DEFAULT_GENERATION)
    };
    let mut first_topics: Option<BTreeSet<&str>> = None;
    let mut all_subscriptions_equal = true;
    let mut max_generation = DEFAULT_GENERATION;
    let mut consumer_to_owned: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    let mut owner_of: HashMap<TopicPartition, String> = HashMap::new();
    let mut multiple_owners = BTreeSet::new();
    for (consumer, subscription) in subscriptions {
        let topics: BTreeSet<&str> = subscription.topics.iter().map(String::as_str).collect();
        match &first_topics {
            None => first_topics = Some(topics),
            Some(first) => all_subscriptions_equal &= *first == topics,
        }
        let generation = generation_of(consumer);
        max_generation = max_generation.max(generation);
        consumer_to_owned.insert(consumer.clone(), Vec::new());
        let Some(data) = member_data.get(consumer) else {
            continue;
        };
        for tp in &data.partitions {
            let exists = partitions_per_topic
                .get(&tp.topic)
                .is_some_and(|&n| (0..n).contains(&tp.partition));
            if !exists {
                continue;
            }
            match owner_of.get(tp).cloned() {
                None => {
                    consumer_to_owned
                        .get_mut(consumer)
                        .expect("member")
                        .push(tp.clone());
                    owner_of.insert(tp.clone(), consumer.clone());
                }
                // The member listed the partition twice.
                Some(other) if other == *consumer => {}
                Some(other) => {
                    let other_generation = generation_of(&other);
                    if generation == other_generation {
                        // Two members of one generation claim it: it is no one's.
                        multiple_owners.insert(tp.clone());
                        consumer_to_owned
                            .get_mut(&other)
                            .expect("member")
                            .retain(|p| p != tp);
                        owner_of.insert(tp.clone(), consumer.clone());
                    } else if generation > other_generation {
                        consumer_to_owned
                            .get_mut(consumer)
                            .expect("member")
                            .push(tp.clone());
                        consumer_to_owned
                            .get_mut(&other)
                            .expect("member")
                            .retain(|p| p != tp);
                        owner_of.insert(tp.clone(), consumer.clone());
                    }
                }
            }
        }
    }
    OwnedPartitions {
        all_subscriptions_equal,
        consumer_to_owned,
        multiple_owners,
        max_generation,
    }
}

/// All partitions of `topics`, in that topic order, partitions ascending.
fn all_partitions<'a>(
    partitions_per_topic: &BTreeMap<String, i32>,
    topics: impl IntoIterator<Item = &'a String>,
) -> Vec<TopicPartition> {
    topics
        .into_iter()
        .flat_map(|t| (0..partitions_per_topic[t]).map(move |p| TopicPartition::new(t, p)))
        .collect()
}

/// Java's `ConstrainedAssignmentBuilder` (without rack matching).
struct Constrained<'a> {
    partitions_per_topic: &'a BTreeMap<String, i32>,
    current: &'a BTreeMap<String, Vec<TopicPartition>>,
    multiple_owners: &'a BTreeSet<TopicPartition>,
    revoked: HashSet<TopicPartition>,
    under_min_quota: Vec<String>,
    exactly_min_quota: VecDeque<String>,
    min_quota: usize,
    max_quota: usize,
    expected_over_min_quota: usize,
    current_over_min_quota: usize,
    assignment: BTreeMap<String, Vec<TopicPartition>>,
    assigned: HashSet<TopicPartition>,
    transferring: BTreeMap<TopicPartition, String>,
}

impl<'a> Constrained<'a> {
    fn new(
        partitions_per_topic: &'a BTreeMap<String, i32>,
        current: &'a BTreeMap<String, Vec<TopicPartition>>,
        multiple_owners: &'a BTreeSet<TopicPartition>,
    ) -> Self {
        let total: usize = partitions_per_topic.values().map(|&n| n as usize).sum();
        let members = current.len();
        Constrained {
            partitions_per_topic,
            current,
            multiple_owners,
            revoked: HashSet::new(),
            under_min_quota: Vec::new(),
            exactly_min_quota: VecDeque::new(),
            min_quota: total / members,
            max_quota: total.div_ceil(members),
            expected_over_min_quota: total % members,
            current_over_min_quota: 0,
            assignment: current.keys().map(|m| (m.clone(), Vec::new())).collect(),
            assigned: HashSet::new(),
            transferring: BTreeMap::new(),
        }
    }

    #[allow(clippy::type_complexity)]
    fn build(
        mut self,
    ) -> Result<
        (
            BTreeMap<String, Vec<TopicPartition>>,
            BTreeMap<TopicPartition, String>,
        ),
        crate::Error,
    > {
        self.assign_owned_partitions();
        let unassigned: Vec<TopicPartition> =
            all_partitions(self.partitions_per_topic, self.partitions_per_topic.keys())
                .into_iter()
                .filter(|tp| !self.assigned.contains(tp))
                .collect();
        self.under_min_quota.sort();
        self.exactly_min_quota.make_contiguous().sort();
        self.assign_round_robin(&unassigned)?;
        self.verify_unfilled_members()?;
        Ok((self.assignment, self.transferring))
    }

    fn assign_owned_partitions(&mut self) {
        for (consumer, owned) in self.current {
            let mut owned: Vec<TopicPartition> = owned
                .iter()
                .filter(|tp| !self.multiple_owners.contains(*tp))
                .cloned()
                .collect();
            // Java sorts by partition, then topic, before keeping the first ones.
            owned.sort_by(|a, b| {
                a.partition
                    .cmp(&b.partition)
                    .then_with(|| a.topic.cmp(&b.topic))
            });
            let keep = if owned.len() < self.min_quota {
                self.under_min_quota.push(consumer.clone());
                owned.len()
            } else if owned.len() >= self.max_quota
                && self.current_over_min_quota < self.expected_over_min_quota
            {
                self.current_over_min_quota += 1;
                if self.current_over_min_quota == self.expected_over_min_quota {
                    self.exactly_min_quota.clear();
                }
                self.max_quota
            } else {
                if self.current_over_min_quota < self.expected_over_min_quota {
                    self.exactly_min_quota.push_back(consumer.clone());
                }
                self.min_quota
            };
            self.revoked.extend(owned.drain(keep..));
            self.assigned.extend(owned.iter().cloned());
            self.assignment
                .get_mut(consumer)
                .expect("member")
                .extend(owned);
        }
    }

    fn assign_round_robin(&mut self, unassigned: &[TopicPartition]) -> Result<(), crate::Error> {
        // Index of the next member of `under_min_quota` (Java's iterator over the list).
        let mut cursor = 0;
        for tp in unassigned {
            let (consumer, from_under) = if cursor < self.under_min_quota.len() {
                cursor += 1;
                (self.under_min_quota[cursor - 1].clone(), true)
            } else if self.under_min_quota.is_empty() {
                match self.exactly_min_quota.pop_front() {
                    Some(consumer) => (consumer, false),
                    None => {
                        return Err(crate::Error::InvalidArgument(format!(
                            "sticky assignment: no member can take {tp}"
                        )))
                    }
                }
            } else {
                cursor = 1;
                (self.under_min_quota[0].clone(), true)
            };
            let partitions = self.assignment.get_mut(&consumer).expect("member");
            partitions.push(tp.clone());
            let count = partitions.len();
            if self.revoked.contains(tp) || self.multiple_owners.contains(tp) {
                self.transferring.insert(tp.clone(), consumer.clone());
            }
            if count == self.min_quota {
                if from_under {
                    cursor -= 1;
                    self.under_min_quota.remove(cursor);
                }
                self.exactly_min_quota.push_back(consumer);
            } else if count == self.max_quota {
                self.current_over_min_quota += 1;
            }
        }
        Ok(())
    }

    fn verify_unfilled_members(&self) -> Result<(), crate::Error> {
        if self.under_min_quota.is_empty() {
            return Ok(());
        }
        if self.current_over_min_quota != self.expected_over_min_quota {
            return Err(crate::Error::InvalidArgument(
                "sticky assignment: members left under quota with no partitions left".into(),
            ));
        }
        for member in &self.under_min_quota {
            if self.assignment[member].len() != self.min_quota {
                return Err(crate::Error::InvalidArgument(format!(
                    "sticky assignment: member `{member}` left under quota"
                )));
            }
        }
        Ok(())
    }
}

/// Java's `PartitionMovements`: the moves made while balancing, to move back a partition of
/// the same topic rather than make a second one travel between the same two members.
#[derive(Default)]
struct PartitionMovements {
    by_topic: BTreeMap<String, BTreeMap<(String, String), BTreeSet<TopicPartition>>>,
    moves: HashMap<TopicPartition, (String, String)>,
}

impl PartitionMovements {
    fn remove_record(&mut self, tp: &TopicPartition) -> Option<(String, String)> {
        let pair = self.moves.remove(tp)?;
        if let Some(topic_moves) = self.by_topic.get_mut(&tp.topic) {
            if let Some(set) = topic_moves.get_mut(&pair) {
                set.remove(tp);
                if set.is_empty() {
                    topic_moves.remove(&pair);
                }
            }
            if topic_moves.is_empty() {
                self.by_topic.remove(&tp.topic);
            }
        }
        Some(pair)
    }

    fn add_record(&mut self, tp: &TopicPartition, pair: (String, String)) {
        self.moves.insert(tp.clone(), pair.clone());
        self.by_topic
            .entry(tp.topic.clone())
            .or_default()
            .entry(pair)
            .or_default()
            .insert(tp.clone());
    }

    fn move_partition(&mut self, tp: &TopicPartition, old: &str, new: &str) {
        match self.remove_record(tp) {
            // Moved before: record the move from its original member, unless it goes back.
            Some((src, _)) => {
                if src != new {
                    self.add_record(tp, (src, new.to_string()));
                }
            }
            None => self.add_record(tp, (old.to_string(), new.to_string())),
        }
    }

    fn actual_partition_to_move(
        &self,
        tp: &TopicPartition,
        old: &str,
        new: &str,
    ) -> TopicPartition {
        let Some(topic_moves) = self.by_topic.get(&tp.topic) else {
            return tp.clone();
        };
        let old = self.moves.get(tp).map_or(old, |(src, _)| src.as_str());
        topic_moves
            .get(&(new.to_string(), old.to_string()))
            .and_then(|set| set.first())
            .unwrap_or(tp)
            .clone()
    }
}

/// Java's `GeneralAssignmentBuilder` (without rack matching).
struct General<'a> {
    partitions_per_topic: &'a BTreeMap<String, i32>,
    subscriptions: &'a BTreeMap<String, MemberSubscription>,
    topic_consumers: BTreeMap<String, Vec<String>>,
    consumer_topics: BTreeMap<String, BTreeSet<String>>,
    current: BTreeMap<String, Vec<TopicPartition>>,
    partition_consumer: HashMap<TopicPartition, String>,
    sorted_all_partitions: Vec<TopicPartition>,
    /// Members by (number of partitions, member id).
    sorted_members: BTreeSet<(usize, String)>,
    movements: PartitionMovements,
    revocation_required: bool,
}

impl<'a> General<'a> {
    fn new(
        partitions_per_topic: &'a BTreeMap<String, i32>,
        subscriptions: &'a BTreeMap<String, MemberSubscription>,
        current: BTreeMap<String, Vec<TopicPartition>>,
    ) -> Self {
        let mut topic_consumers: BTreeMap<String, Vec<String>> = partitions_per_topic
            .keys()
            .map(|t| (t.clone(), Vec::new()))
            .collect();
        let mut consumer_topics = BTreeMap::new();
        for (consumer, subscription) in subscriptions {
            let mut topics = BTreeSet::new();
            for topic in &subscription.topics {
                if let Some(consumers) = topic_consumers.get_mut(topic) {
                    if topics.insert(topic.clone()) {
                        consumers.push(consumer.clone());
                    }
                }
            }
            consumer_topics.insert(consumer.clone(), topics);
        }
        let mut sorted_topics: Vec<&String> = topic_consumers.keys().collect();
        sorted_topics.sort_by_key(|t| (topic_consumers[*t].len(), *t));
        let sorted_all_partitions = all_partitions(partitions_per_topic, sorted_topics);
        General {
            partitions_per_topic,
            subscriptions,
            topic_consumers,
            consumer_topics,
            current,
            partition_consumer: HashMap::new(),
            sorted_all_partitions,
            sorted_members: BTreeSet::new(),
            movements: PartitionMovements::default(),
            revocation_required: false,
        }
    }

    fn build(
        mut self,
        member_data: &BTreeMap<String, StickyMemberData>,
        max_generation: i32,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let prev = self.previous_assignment(member_data, max_generation);
        let assigned = self.assign_owned_partitions();
        let unassigned: Vec<TopicPartition> = self
            .sorted_all_partitions
            .iter()
            .filter(|tp| !assigned.contains(*tp))
            .cloned()
            .collect();
        self.sorted_members = self
            .current
            .iter()
            .map(|(m, p)| (p.len(), m.clone()))
            .collect();
        self.balance(&prev, unassigned);
        self.current
    }

    /// Java's `prepopulateCurrentAssignments`: for each partition, the member of the highest
    /// generation below the newest that had it.
    fn previous_assignment(
        &self,
        member_data: &BTreeMap<String, StickyMemberData>,
        max_generation: i32,
    ) -> HashMap<TopicPartition, (String, i32)> {
        let mut prev: HashMap<TopicPartition, (String, i32)> = HashMap::new();
        for consumer in self.subscriptions.keys() {
            let Some(data) = member_data.get(consumer) else {
                continue;
            };
            let generation = match data.generation {
                Some(g) if g < max_generation => g,
                None if max_generation > DEFAULT_GENERATION => DEFAULT_GENERATION,
                _ => continue,
            };
            for tp in &data.partitions {
                match prev.get(tp) {
                    Some((_, g)) if generation <= *g => {}
                    _ => {
                        prev.insert(tp.clone(), (consumer.clone(), generation));
                    }
                }
            }
        }
        prev
    }

    /// Keeps owned partitions of topics the owner still subscribes to; returns them.
    fn assign_owned_partitions(&mut self) -> HashSet<TopicPartition> {
        let mut assigned = HashSet::new();
        for (consumer, partitions) in &mut self.current {
            let topics = &self.subscriptions[consumer].topics;
            partitions.retain(|tp| {
                let keep = topics.contains(&tp.topic);
                self.revocation_required |= !keep;
                keep
            });
            for tp in partitions.iter() {
                assigned.insert(tp.clone());
                self.partition_consumer.insert(tp.clone(), consumer.clone());
            }
        }
        assigned
    }

    fn subscribed(&self, consumer: &str, topic: &str) -> bool {
        self.consumer_topics
            .get(consumer)
            .is_some_and(|t| t.contains(topic))
    }

    fn max_assignment_size(&self, consumer: &str) -> usize {
        self.consumer_topics[consumer]
            .iter()
            .map(|t| self.partitions_per_topic[t] as usize)
            .sum()
    }

    fn len_of(&self, consumer: &str) -> Option<usize> {
        self.current.get(consumer).map(Vec::len)
    }

    fn is_balanced(&self) -> bool {
        let (Some((min, _)), Some((max, _))) =
            (self.sorted_members.first(), self.sorted_members.last())
        else {
            return true;
        };
        if *min + 1 >= *max {
            return true;
        }
        for (count, consumer) in &self.sorted_members {
            if *count == self.max_assignment_size(consumer) {
                continue;
            }
            for topic in &self.consumer_topics[consumer] {
                for p in 0..self.partitions_per_topic[topic] {
                    let tp = TopicPartition::new(topic, p);
                    let Some(other) = self.partition_consumer.get(&tp) else {
                        continue;
                    };
                    if other == consumer {
                        continue;
                    }
                    if self
                        .len_of(other)
                        .is_some_and(|other_count| count + 1 < other_count)
                    {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn balance_score(assignment: &BTreeMap<String, Vec<TopicPartition>>) -> usize {
        let sizes: Vec<usize> = assignment.values().map(Vec::len).collect();
        let mut score = 0;
        for (i, a) in sizes.iter().enumerate() {
            for b in &sizes[i + 1..] {
                score += a.abs_diff(*b);
            }
        }
        score
    }

    fn assign_to_least_loaded(&mut self, tp: &TopicPartition) {
        let chosen = self
            .sorted_members
            .iter()
            .find(|(_, c)| self.subscribed(c, &tp.topic))
            .cloned();
        if let Some((count, consumer)) = chosen {
            self.sorted_members.remove(&(count, consumer.clone()));
            let partitions = self.current.get_mut(&consumer).expect("member");
            partitions.push(tp.clone());
            self.sorted_members
                .insert((partitions.len(), consumer.clone()));
            self.partition_consumer.insert(tp.clone(), consumer);
        }
    }

    fn can_consumer_participate(&self, consumer: &str) -> bool {
        let current = &self.current[consumer];
        current.len() < self.max_assignment_size(consumer)
            || current
                .iter()
                .any(|tp| self.topic_consumers[&tp.topic].len() >= 2)
    }

    fn balance(
        &mut self,
        prev: &HashMap<TopicPartition, (String, i32)>,
        mut unassigned: Vec<TopicPartition>,
    ) {
        let Some((_, last)) = self.sorted_members.last() else {
            return;
        };
        let initializing = self.current[last].is_empty();

        for tp in &unassigned {
            if !self.topic_consumers[&tp.topic].is_empty() {
                self.assign_to_least_loaded(tp);
            }
        }

        // Only partitions of topics with two or more subscribers can move.
        let movable =
            |tp: &TopicPartition, tc: &BTreeMap<String, Vec<String>>| tc[&tp.topic].len() >= 2;
        let tc = &self.topic_consumers;
        self.sorted_all_partitions.retain(|tp| movable(tp, tc));
        unassigned.retain(|tp| movable(tp, tc));

        // Members that cannot gain or lose anything sit out.
        let mut fixed = BTreeMap::new();
        let members: Vec<String> = self.consumer_topics.keys().cloned().collect();
        for consumer in members {
            if !self.can_consumer_participate(&consumer) {
                let partitions = self.current.remove(&consumer).expect("member");
                self.sorted_members
                    .remove(&(partitions.len(), consumer.clone()));
                fixed.insert(consumer, partitions);
            }
        }

        let pre_balance = self.current.clone();
        let pre_balance_consumers = self.partition_consumer.clone();
        if !self.revocation_required {
            self.perform_reassignments(&unassigned, prev);
        }
        let all = std::mem::take(&mut self.sorted_all_partitions);
        let reassigned = self.perform_reassignments(&all, prev);
        if !initializing
            && reassigned
            && Self::balance_score(&self.current) >= Self::balance_score(&pre_balance)
        {
            self.current = pre_balance;
            self.partition_consumer = pre_balance_consumers;
        }
        self.current.extend(fixed);
    }

    fn perform_reassignments(
        &mut self,
        partitions: &[TopicPartition],
        prev: &HashMap<TopicPartition, (String, i32)>,
    ) -> bool {
        let mut reassigned = false;
        // Java loops until a pass changes nothing; the bound only guards against cycling.
        for _ in 0..=partitions.len() * 2 + 16 {
            let mut modified = false;
            for tp in partitions {
                if self.is_balanced() {
                    break;
                }
                let Some(consumer) = self.partition_consumer.get(tp).cloned() else {
                    continue;
                };
                let Some(count) = self.len_of(&consumer) else {
                    continue;
                };
                // Give it back to its owner of the previous generation if that one has 2+ fewer.
                if let Some((prev_consumer, _)) = prev.get(tp) {
                    let prev_count = self.len_of(prev_consumer);
                    if self.subscribed(prev_consumer, &tp.topic)
                        && prev_count.is_some_and(|prev_count| count > prev_count + 1)
                    {
                        let prev_consumer = prev_consumer.clone();
                        self.reassign_partition_to(tp, &prev_consumer);
                        reassigned = true;
                        modified = true;
                        continue;
                    }
                }
                let better = self.topic_consumers[&tp.topic]
                    .iter()
                    .any(|other| self.len_of(other).is_some_and(|n| count > n + 1));
                if better {
                    self.reassign_partition(tp);
                    reassigned = true;
                    modified = true;
                }
            }
            if !modified {
                break;
            }
        }
        reassigned
    }

    fn reassign_partition(&mut self, tp: &TopicPartition) {
        let new = self
            .sorted_members
            .iter()
            .find(|(_, c)| self.subscribed(c, &tp.topic))
            .map(|(_, c)| c.clone());
        if let Some(new) = new {
            self.reassign_partition_to(tp, &new);
        }
    }

    fn reassign_partition_to(&mut self, tp: &TopicPartition, new: &str) {
        let Some(consumer) = self.partition_consumer.get(tp).cloned() else {
            return;
        };
        let to_move = self.movements.actual_partition_to_move(tp, &consumer, new);
        self.process_partition_movement(&to_move, new);
    }

    fn process_partition_movement(&mut self, tp: &TopicPartition, new: &str) {
        let Some(old) = self.partition_consumer.get(tp).cloned() else {
            return;
        };
        if old == new || !self.current.contains_key(&old) || !self.current.contains_key(new) {
            return;
        }
        let old_len = self.current[&old].len();
        let new_len = self.current[new].len();
        self.sorted_members.remove(&(old_len, old.clone()));
        self.sorted_members.remove(&(new_len, new.to_string()));
        self.movements.move_partition(tp, &old, new);
        let old_partitions = self.current.get_mut(&old).expect("member");
        if let Some(i) = old_partitions.iter().position(|p| p == tp) {
            old_partitions.remove(i);
        }
        let old_len = old_partitions.len();
        let new_partitions = self.current.get_mut(new).expect("member");
        new_partitions.push(tp.clone());
        let new_len = new_partitions.len();
        self.partition_consumer.insert(tp.clone(), new.to_string());
        self.sorted_members.insert((new_len, new.to_string()));
        self.sorted_members.insert((old_len, old));
    }
}
