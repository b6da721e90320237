//! Property tests on random groups: validity, balance, stickiness, and KIP-429's rule that a
//! partition is never given to a new owner in the round its previous owner revokes it.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests::subs;
use super::*;

const TOPICS: [&str; 4] = ["t0", "t1", "t2", "t3"];

/// A random member: subscribed topics, static instance id, previously owned partitions
/// (indices into all partitions), generation.
type RandomMember = (Vec<String>, Option<String>, Vec<usize>, i32);

#[derive(Debug, Clone)]
struct Group {
    partitions: BTreeMap<String, i32>,
    /// Per member: subscribed topics, static instance id, previously owned partitions
    /// (indices into all partitions), generation.
    members: Vec<RandomMember>,
}

impl Group {
    fn all_partitions(&self) -> Vec<TopicPartition> {
        self.partitions
            .iter()
            .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t, p)))
            .collect()
    }

    fn member_id(i: usize) -> String {
        format!("m{i}")
    }

    fn owned(&self, i: usize) -> Vec<TopicPartition> {
        let all = self.all_partitions();
        if all.is_empty() {
            return Vec::new();
        }
        let set: BTreeSet<usize> = self.members[i].2.iter().map(|x| x % all.len()).collect();
        set.into_iter().map(|x| all[x].clone()).collect()
    }

    /// Fresh subscriptions (nothing owned).
    fn fresh(&self) -> BTreeMap<String, MemberSubscription> {
        subs(
            self.members
                .iter()
                .enumerate()
                .map(|(i, (topics, instance, _, _))| MemberSubscription {
                    group_instance_id: instance.clone(),
                    ..MemberSubscription::new(Self::member_id(i), topics.iter().cloned())
                })
                .collect(),
        )
    }

    /// Subscriptions reporting the random previous ownership (which may conflict), as the
    /// sticky assignor (user data) or the cooperative one (owned partitions + generation).
    fn with_owned(&self, cooperative: bool) -> BTreeMap<String, MemberSubscription> {
        let mut subscriptions = self.fresh();
        for (i, sub) in subscriptions.values_mut().enumerate() {
            let owned = self.owned(i);
            let generation = self.members[i].3;
            if cooperative {
                sub.owned_partitions = owned;
                sub.generation_id = generation;
            } else {
                sub.user_data = StickyAssignor.subscription_user_data(&[], &owned, generation);
            }
        }
        subscriptions
    }
}

fn group(equal_subscriptions: bool) -> impl Strategy<Value = Group> {
    let partitions = prop::collection::vec(0..8i32, 1..=TOPICS.len());
    (partitions, 1..=6usize, 1u8..16).prop_flat_map(move |(counts, n_members, shared)| {
        let n_topics = counts.len();
        let member = (
            1u8..(1 << n_topics),
            prop::option::weighted(0.3, 0..10u8),
            prop::collection::vec(any::<usize>(), 0..8),
            1..4i32,
        );
        prop::collection::vec(member, n_members).prop_map(move |members| {
            let partitions = counts
                .iter()
                .enumerate()
                .map(|(i, &n)| (TOPICS[i].to_string(), n))
                .collect();
            let topics_of = |mask: u8| -> Vec<String> {
                let mask = if equal_subscriptions { shared } else { mask };
                let mut ts: Vec<String> = (0..n_topics)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| TOPICS[i].to_string())
                    .collect();
                if ts.is_empty() {
                    ts.push(TOPICS[0].to_string());
                }
                ts
            };
            Group {
                partitions,
                members: members
                    .into_iter()
                    .map(|(mask, instance, owned, generation)| {
                        (
                            topics_of(mask),
                            instance.map(|x| format!("instance-{x}")),
                            owned,
                            generation,
                        )
                    })
                    .collect(),
            }
        })
    })
}

/// Every partition is assigned at most once, only to a member subscribed to its topic, and
/// (when `complete`) every partition of a subscribed topic is assigned.
fn check_valid(
    partitions: &BTreeMap<String, i32>,
    subscriptions: &BTreeMap<String, MemberSubscription>,
    assignment: &GroupAssignment,
    complete: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        assignment.assignments.keys().collect::<Vec<_>>(),
        subscriptions.keys().collect::<Vec<_>>()
    );
    let mut seen = BTreeSet::new();
    for (member, a) in &assignment.assignments {
        for tp in &a.partitions {
            prop_assert!(seen.insert(tp.clone()), "{} assigned twice", tp);
            prop_assert!(
                subscriptions[member].topics.contains(&tp.topic),
                "{} given to {} not subscribed to it",
                tp,
                member
            );
            prop_assert!(tp.partition >= 0 && tp.partition < partitions[&tp.topic]);
        }
    }
    if complete {
        for (topic, &n) in partitions {
            if subscriptions.values().any(|s| s.topics.contains(topic)) {
                for p in 0..n {
                    prop_assert!(
                        seen.contains(&TopicPartition::new(topic, p)),
                        "{}-{} unassigned",
                        topic,
                        p
                    );
                }
            }
        }
    }
    Ok(())
}

fn spread(assignment: &GroupAssignment) -> usize {
    let sizes: Vec<usize> = assignment
        .assignments
        .values()
        .map(|a| a.partitions.len())
        .collect();
    sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0)
}

/// Java's `verifyValidityAndBalance`: two members whose counts differ by more than one do not
/// share a topic (else a partition could have moved to the less loaded one).
fn check_general_balance(assignment: &GroupAssignment) -> Result<(), TestCaseError> {
    let members: Vec<(&String, &MemberAssignment)> = assignment.assignments.iter().collect();
    for (i, (m1, a1)) in members.iter().enumerate() {
        for (m2, a2) in &members[i + 1..] {
            if a1.partitions.len().abs_diff(a2.partitions.len()) <= 1 {
                continue;
            }
            let t1: BTreeSet<&str> = a1.partitions.iter().map(|tp| tp.topic.as_str()).collect();
            let t2: BTreeSet<&str> = a2.partitions.iter().map(|tp| tp.topic.as_str()).collect();
            prop_assert!(
                t1.is_disjoint(&t2),
                "{} and {} share topics but differ by more than one",
                m1,
                m2
            );
        }
    }
    Ok(())
}

fn assignors() -> [&'static dyn ConsumerPartitionAssignor; 4] {
    [
        &RangeAssignor,
        &RoundRobinAssignor,
        &StickyAssignor,
        &CooperativeStickyAssignor,
    ]
}

/// Runs cooperative rebalances (members revoke what they lose, then rejoin with what they
/// kept) until the assignment is stable; checks KIP-429's rule each round.
fn cooperative_rounds(
    partitions: &BTreeMap<String, i32>,
    mut subscriptions: BTreeMap<String, MemberSubscription>,
) -> Result<GroupAssignment, TestCaseError> {
    for round in 0..4 {
        let assignment = CooperativeStickyAssignor
            .assign(partitions, &subscriptions)
            .unwrap();
        check_valid(partitions, &subscriptions, &assignment, false)?;
        // No partition goes to a new owner while anyone else still claims it.
        for (member, a) in &assignment.assignments {
            for tp in &a.partitions {
                if subscriptions[member].owned_partitions.contains(tp) {
                    continue;
                }
                for (other, s) in &subscriptions {
                    prop_assert!(
                        !s.owned_partitions.contains(tp),
                        "round {}: {} given to {} while {} still owns it",
                        round,
                        tp,
                        member,
                        other
                    );
                }
            }
        }
        let stable = subscriptions
            .iter()
            .all(|(m, s)| sorted(&s.owned_partitions) == assignment.assignments[m].partitions);
        if stable {
            return Ok(assignment);
        }
        for (m, s) in subscriptions.iter_mut() {
            s.owned_partitions = assignment.assignments[m].partitions.clone();
            s.generation_id = s.generation_id.max(0) + 10;
        }
    }
    Err(TestCaseError::fail(
        "cooperative rebalances did not converge",
    ))
}

fn sorted(v: &[TopicPartition]) -> Vec<TopicPartition> {
    let mut v = v.to_vec();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_partition_assigned_once_to_a_subscriber(g in group(false)) {
        let fresh = g.fresh();
        for assignor in assignors() {
            let a = assignor.assign(&g.partitions, &fresh).unwrap();
            check_valid(&g.partitions, &fresh, &a, true)?;
            // Deterministic.
            prop_assert_eq!(&a, &assignor.assign(&g.partitions, &fresh).unwrap());
        }
        let sticky = g.with_owned(false);
        let a = StickyAssignor.assign(&g.partitions, &sticky).unwrap();
        check_valid(&g.partitions, &sticky, &a, true)?;
        let coop = g.with_owned(true);
        let a = CooperativeStickyAssignor.assign(&g.partitions, &coop).unwrap();
        check_valid(&g.partitions, &coop, &a, false)?;
    }

    #[test]
    fn equal_subscriptions_are_balanced(g in group(true)) {
        let fresh = g.fresh();
        for assignor in [&RoundRobinAssignor as &dyn ConsumerPartitionAssignor, &StickyAssignor, &CooperativeStickyAssignor] {
            let a = assignor.assign(&g.partitions, &fresh).unwrap();
            prop_assert!(spread(&a) <= 1, "{} spread {}", assignor.name(), spread(&a));
        }
        // Whatever the (possibly conflicting) previous ownership.
        let a = StickyAssignor.assign(&g.partitions, &g.with_owned(false)).unwrap();
        prop_assert!(spread(&a) <= 1);
    }

    #[test]
    fn sticky_general_case_is_balanced(g in group(false)) {
        let a = StickyAssignor.assign(&g.partitions, &g.fresh()).unwrap();
        check_general_balance(&a)?;
        let previous = g.with_owned(false);
        let b = StickyAssignor.assign(&g.partitions, &previous).unwrap();
        check_valid(&g.partitions, &previous, &b, true)?;
    }

    #[test]
    fn sticky_moves_only_what_it_must(g in group(true), remove in any::<bool>(), pick in any::<usize>()) {
        let first = StickyAssignor.assign(&g.partitions, &g.fresh()).unwrap();
        let mut next: BTreeMap<String, MemberSubscription> = g
            .fresh()
            .into_iter()
            .map(|(m, mut s)| {
                s.user_data = StickyAssignor.subscription_user_data(&[], first.partitions(&m), 1);
                (m, s)
            })
            .collect();
        let topics_of_all = next.values().next().unwrap().topics.clone();
        if remove && next.len() > 1 {
            let gone = next.keys().nth(pick % next.len()).unwrap().clone();
            next.remove(&gone);
        } else {
            next.insert("new".into(), MemberSubscription::new("new", topics_of_all));
        }
        let second = StickyAssignor.assign(&g.partitions, &next).unwrap();
        check_valid(&g.partitions, &next, &second, true)?;
        prop_assert!(spread(&second) <= 1);
        for (m, a) in &second.assignments {
            let before: BTreeSet<&TopicPartition> = first.partitions(m).iter().collect();
            let after: BTreeSet<&TopicPartition> = a.partitions.iter().collect();
            let lost = before.difference(&after).count();
            let gained = after.difference(&before).count();
            // A member either keeps all it had (and maybe gains) or only gives up the excess.
            prop_assert!(lost == 0 || gained == 0, "{} lost {} and gained {}", m, lost, gained);
        }
    }

    #[test]
    fn cooperative_never_hands_over_a_partition_in_the_round_it_is_revoked(g in group(false)) {
        let last = cooperative_rounds(&g.partitions, g.with_owned(true))?;
        check_valid(&g.partitions, &g.with_owned(true), &last, true)?;
    }

    #[test]
    fn cooperative_converges_to_a_balanced_assignment(g in group(true)) {
        let last = cooperative_rounds(&g.partitions, g.with_owned(true))?;
        prop_assert!(spread(&last) <= 1);
    }

    #[test]
    fn sticky_user_data_round_trips(
        parts in prop::collection::vec(("[a-z]{1,5}", 0..100i32), 0..10),
        generation in 1..i32::MAX,
    ) {
        let partitions: Vec<TopicPartition> =
            parts.into_iter().map(|(t, p)| TopicPartition::new(t, p)).collect();
        let back = decode_sticky_user_data(&encode_sticky_user_data(&partitions, generation));
        prop_assert_eq!(back.generation, Some(generation));
        let mut expected = partitions.clone();
        let mut got = back.partitions;
        expected.sort();
        got.sort();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn sticky_user_data_decoding_never_panics(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_sticky_user_data(&data);
    }
}
