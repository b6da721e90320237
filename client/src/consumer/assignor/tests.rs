//! Known assignments, ported from Kafka's `RangeAssignorTest`, `RoundRobinAssignorTest`,
//! `StickyAssignorTest` / `AbstractStickyAssignorTest` and `CooperativeStickyAssignorTest`
//! (the cases without racks), and the user data bytes.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_wire::consumer_protocol::{decode_subscription, encode_assignment, encode_subscription};
use kafka_wire::messages::{consumer_protocol_subscription, ConsumerProtocolSubscription};

use super::*;

pub(super) fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

pub(super) fn topics(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
    counts.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

pub(super) fn subs(members: Vec<MemberSubscription>) -> BTreeMap<String, MemberSubscription> {
    members
        .into_iter()
        .map(|m| (m.member_id.clone(), m))
        .collect()
}

fn sub(member: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription::new(member, topics.iter().copied())
}

fn static_sub(member: &str, instance: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription {
        group_instance_id: Some(instance.into()),
        ..sub(member, topics)
    }
}

/// A member that had `owned` in `generation`, as each sticky assignor reports it.
fn sticky_sub(
    member: &str,
    topics: &[&str],
    owned: &[TopicPartition],
    generation: i32,
) -> MemberSubscription {
    MemberSubscription {
        user_data: StickyAssignor.subscription_user_data(&[], owned, generation),
        ..sub(member, topics)
    }
}

fn coop_sub(
    member: &str,
    topics: &[&str],
    owned: &[TopicPartition],
    generation: i32,
) -> MemberSubscription {
    MemberSubscription {
        owned_partitions: owned.to_vec(),
        generation_id: generation,
        ..sub(member, topics)
    }
}

fn sorted(mut v: Vec<TopicPartition>) -> Vec<TopicPartition> {
    v.sort();
    v
}

fn run(
    assignor: &dyn ConsumerPartitionAssignor,
    partitions: &BTreeMap<String, i32>,
    subscriptions: &BTreeMap<String, MemberSubscription>,
) -> GroupAssignment {
    let result = assignor.assign(partitions, subscriptions).unwrap();
    assert_eq!(
        result.assignments.keys().collect::<Vec<_>>(),
        subscriptions.keys().collect::<Vec<_>>(),
        "every member gets an entry"
    );
    assert!(result.assignments.values().all(|a| a.user_data.is_none()));
    result
}

#[test]
fn names_and_protocols() {
    assert_eq!(RangeAssignor.name(), "range");
    assert_eq!(RoundRobinAssignor.name(), "roundrobin");
    assert_eq!(StickyAssignor.name(), "sticky");
    assert_eq!(CooperativeStickyAssignor.name(), "cooperative-sticky");
    assert_eq!(
        RangeAssignor.supported_protocols(),
        &[RebalanceProtocol::Eager]
    );
    assert_eq!(
        StickyAssignor.supported_protocols(),
        &[RebalanceProtocol::Eager]
    );
    assert_eq!(
        CooperativeStickyAssignor.supported_protocols(),
        &[RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    );
    assert_eq!(
        RangeAssignor.subscription_user_data(&[], &[tp("t", 0)], 3),
        None
    );
    assert_eq!(
        RoundRobinAssignor.subscription_user_data(&[], &[tp("t", 0)], 3),
        None
    );
}

#[test]
fn every_assignor_handles_no_members_and_no_topics() {
    let assignors: [&dyn ConsumerPartitionAssignor; 4] = [
        &RangeAssignor,
        &RoundRobinAssignor,
        &StickyAssignor,
        &CooperativeStickyAssignor,
    ];
    for assignor in assignors {
        let empty = run(assignor, &topics(&[("t", 3)]), &BTreeMap::new());
        assert!(empty.assignments.is_empty());
        // testOneConsumerNoTopic / testOneConsumerNonexistentTopic
        let none = run(assignor, &BTreeMap::new(), &subs(vec![sub("c", &["t"])]));
        assert!(none.partitions("c").is_empty());
        let zero = run(
            assignor,
            &topics(&[("t", 0)]),
            &subs(vec![sub("c", &["t"])]),
        );
        assert!(zero.partitions("c").is_empty());
        // testOnlyAssignsPartitionsFromSubscribedTopics
        let only = run(
            assignor,
            &topics(&[("t", 3), ("other", 3)]),
            &subs(vec![sub("c", &["t"])]),
        );
        assert_eq!(only.partitions("c"), &[tp("t", 0), tp("t", 1), tp("t", 2)]);
        // Subscriptions must be keyed by member id.
        let mut bad = subs(vec![sub("c", &["t"])]);
        bad.insert("d".into(), sub("c", &["t"]));
        assert!(matches!(
            assignor.assign(&topics(&[("t", 1)]), &bad),
            Err(crate::Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn range_known_assignments() {
    let r = &RangeAssignor;
    // testTwoConsumersOneTopicOnePartition
    let a = run(
        r,
        &topics(&[("t", 1)]),
        &subs(vec![sub("c1", &["t"]), sub("c2", &["t"])]),
    );
    assert_eq!(a.partitions("c1"), &[tp("t", 0)]);
    assert!(a.partitions("c2").is_empty());
    // testMultipleConsumersMixedTopics
    let a = run(
        r,
        &topics(&[("t1", 3), ("t2", 2)]),
        &subs(vec![
            sub("c1", &["t1"]),
            sub("c2", &["t1", "t2"]),
            sub("c3", &["t1"]),
        ]),
    );
    assert_eq!(a.partitions("c1"), &[tp("t1", 0)]);
    assert_eq!(a.partitions("c2"), &[tp("t1", 1), tp("t2", 0), tp("t2", 1)]);
    assert_eq!(a.partitions("c3"), &[tp("t1", 2)]);
    // testTwoConsumersTwoTopicsSixPartitions
    let a = run(
        r,
        &topics(&[("t1", 3), ("t2", 3)]),
        &subs(vec![sub("c1", &["t1", "t2"]), sub("c2", &["t1", "t2"])]),
    );
    assert_eq!(
        a.partitions("c1"),
        &[tp("t1", 0), tp("t1", 1), tp("t2", 0), tp("t2", 1)]
    );
    assert_eq!(a.partitions("c2"), &[tp("t1", 2), tp("t2", 2)]);
    // 7 partitions, 3 consumers: 3, 2, 2.
    let a = run(
        r,
        &topics(&[("t", 7)]),
        &subs(vec![sub("a", &["t"]), sub("b", &["t"]), sub("c", &["t"])]),
    );
    assert_eq!(a.partitions("a").len(), 3);
    assert_eq!(a.partitions("b"), &[tp("t", 3), tp("t", 4)]);
    assert_eq!(a.partitions("c"), &[tp("t", 5), tp("t", 6)]);
}

#[test]
fn range_orders_static_members_by_instance_id_first() {
    // testStaticMemberRangeAssignmentPersistent: static members sort by group.instance.id
    // (whatever their member ids) ahead of dynamic members.
    let members = subs(vec![
        static_sub("z-member", "instance-1", &["t"]),
        static_sub("a-member", "instance-2", &["t"]),
        sub("b-dynamic", &["t"]),
    ]);
    let a = run(&RangeAssignor, &topics(&[("t", 3)]), &members);
    assert_eq!(a.partitions("z-member"), &[tp("t", 0)]);
    assert_eq!(a.partitions("a-member"), &[tp("t", 1)]);
    assert_eq!(a.partitions("b-dynamic"), &[tp("t", 2)]);
    // Same instance ids with new member ids: same partitions.
    let rejoined = subs(vec![
        static_sub("new-1", "instance-1", &["t"]),
        static_sub("new-0", "instance-2", &["t"]),
        sub("b-dynamic", &["t"]),
    ]);
    let b = run(&RangeAssignor, &topics(&[("t", 3)]), &rejoined);
    assert_eq!(b.partitions("new-1"), a.partitions("z-member"));
    assert_eq!(b.partitions("new-0"), a.partitions("a-member"));
}

#[test]
fn roundrobin_known_assignments() {
    let r = &RoundRobinAssignor;
    // testMultipleConsumersMixedTopics
    let a = run(
        r,
        &topics(&[("t1", 3), ("t2", 2)]),
        &subs(vec![
            sub("c1", &["t1"]),
            sub("c2", &["t1", "t2"]),
            sub("c3", &["t1"]),
        ]),
    );
    assert_eq!(a.partitions("c1"), &[tp("t1", 0)]);
    assert_eq!(a.partitions("c2"), &[tp("t1", 1), tp("t2", 0), tp("t2", 1)]);
    assert_eq!(a.partitions("c3"), &[tp("t1", 2)]);
    // testTwoConsumersTwoTopicsSixPartitions
    let a = run(
        r,
        &topics(&[("t1", 3), ("t2", 3)]),
        &subs(vec![sub("c1", &["t1", "t2"]), sub("c2", &["t1", "t2"])]),
    );
    assert_eq!(a.partitions("c1"), &[tp("t1", 0), tp("t1", 2), tp("t2", 1)]);
    assert_eq!(a.partitions("c2"), &[tp("t1", 1), tp("t2", 0), tp("t2", 2)]);
    // StickyAssignor javadoc, example 2: round robin is unbalanced here.
    let a = run(
        r,
        &topics(&[("t0", 1), ("t1", 2), ("t2", 3)]),
        &subs(vec![
            sub("C0", &["t0"]),
            sub("C1", &["t0", "t1"]),
            sub("C2", &["t0", "t1", "t2"]),
        ]),
    );
    assert_eq!(a.partitions("C0"), &[tp("t0", 0)]);
    assert_eq!(a.partitions("C1"), &[tp("t1", 0)]);
    assert_eq!(
        a.partitions("C2"),
        &[tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]
    );
}

#[test]
fn roundrobin_static_members() {
    // testStaticMemberRoundRobinAssignmentPersistent (shape): instance ids decide the order.
    let members = subs(vec![
        static_sub("m-b", "instance-1", &["t"]),
        static_sub("m-a", "instance-2", &["t"]),
        sub("m-0", &["t"]),
    ]);
    let a = run(&RoundRobinAssignor, &topics(&[("t", 4)]), &members);
    assert_eq!(a.partitions("m-b"), &[tp("t", 0), tp("t", 3)]);
    assert_eq!(a.partitions("m-a"), &[tp("t", 1)]);
    assert_eq!(a.partitions("m-0"), &[tp("t", 2)]);
}

#[test]
fn sticky_javadoc_example_1() {
    let parts = topics(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
    let all = ["t0", "t1", "t2", "t3"];
    let first = run(
        &StickyAssignor,
        &parts,
        &subs(vec![sub("C0", &all), sub("C1", &all), sub("C2", &all)]),
    );
    assert_eq!(
        first.partitions("C0"),
        &[tp("t0", 0), tp("t1", 1), tp("t3", 0)]
    );
    assert_eq!(
        first.partitions("C1"),
        &[tp("t0", 1), tp("t2", 0), tp("t3", 1)]
    );
    assert_eq!(first.partitions("C2"), &[tp("t1", 0), tp("t2", 1)]);
    // C1 leaves: C0 and C2 keep everything they had and share C1's partitions.
    let second = run(
        &StickyAssignor,
        &parts,
        &subs(vec![
            sticky_sub("C0", &all, first.partitions("C0"), 1),
            sticky_sub("C2", &all, first.partitions("C2"), 1),
        ]),
    );
    assert_eq!(second.partitions("C0").len(), 4);
    assert_eq!(second.partitions("C2").len(), 4);
    for member in ["C0", "C2"] {
        for p in first.partitions(member) {
            assert!(second.partitions(member).contains(p), "{member} kept {p}");
        }
    }
}

#[test]
fn sticky_javadoc_example_2() {
    let parts = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let first = run(
        &StickyAssignor,
        &parts,
        &subs(vec![
            sub("C0", &["t0"]),
            sub("C1", &["t0", "t1"]),
            sub("C2", &["t0", "t1", "t2"]),
        ]),
    );
    assert_eq!(first.partitions("C0"), &[tp("t0", 0)]);
    assert_eq!(first.partitions("C1"), &[tp("t1", 0), tp("t1", 1)]);
    assert_eq!(
        first.partitions("C2"),
        &[tp("t2", 0), tp("t2", 1), tp("t2", 2)]
    );
    // C0 leaves: 5 of 6 partitions stay put.
    let second = run(
        &StickyAssignor,
        &parts,
        &subs(vec![
            sticky_sub("C1", &["t0", "t1"], first.partitions("C1"), 1),
            sticky_sub("C2", &["t0", "t1", "t2"], first.partitions("C2"), 1),
        ]),
    );
    assert_eq!(
        second.partitions("C1"),
        &[tp("t0", 0), tp("t1", 0), tp("t1", 1)]
    );
    assert_eq!(
        second.partitions("C2"),
        &[tp("t2", 0), tp("t2", 1), tp("t2", 2)]
    );
}

#[test]
fn sticky_add_remove_consumer_one_topic() {
    // AbstractStickyAssignorTest.testAddRemoveConsumerOneTopic (eager).
    let parts = topics(&[("t", 3)]);
    let a = run(&StickyAssignor, &parts, &subs(vec![sub("c1", &["t"])]));
    assert_eq!(a.partitions("c1"), &[tp("t", 0), tp("t", 1), tp("t", 2)]);
    let b = run(
        &StickyAssignor,
        &parts,
        &subs(vec![
            sticky_sub("c1", &["t"], a.partitions("c1"), 1),
            sub("c2", &["t"]),
        ]),
    );
    assert_eq!(b.partitions("c1"), &[tp("t", 0), tp("t", 1)]);
    assert_eq!(b.partitions("c2"), &[tp("t", 2)]);
    let c = run(
        &StickyAssignor,
        &parts,
        &subs(vec![sticky_sub("c2", &["t"], b.partitions("c2"), 2)]),
    );
    assert_eq!(c.partitions("c2"), &[tp("t", 0), tp("t", 1), tp("t", 2)]);
}

#[test]
fn sticky_all_consumers_reach_expected_quota() {
    // AbstractStickyAssignorTest.testAllConsumersReachExpectedQuotaAndAreConsideredFilled.
    let parts = topics(&[("t", 4)]);
    let a = run(
        &StickyAssignor,
        &parts,
        &subs(vec![
            sticky_sub("c1", &["t"], &[tp("t", 0), tp("t", 1)], 1),
            sticky_sub("c2", &["t"], &[tp("t", 2)], 1),
            sticky_sub("c3", &["t"], &[], 1),
        ]),
    );
    assert_eq!(a.partitions("c1"), &[tp("t", 0), tp("t", 1)]);
    assert_eq!(a.partitions("c2"), &[tp("t", 2)]);
    assert_eq!(a.partitions("c3"), &[tp("t", 3)]);
}

#[test]
fn sticky_owned_partitions_over_quota_are_revoked() {
    // A member that owned everything keeps up to its quota; the rest is spread.
    let parts = topics(&[("t", 6)]);
    let owned: Vec<_> = (0..6).map(|p| tp("t", p)).collect();
    let a = run(
        &StickyAssignor,
        &parts,
        &subs(vec![
            sticky_sub("c1", &["t"], &owned, 3),
            sub("c2", &["t"]),
            sub("c3", &["t"]),
        ]),
    );
    assert_eq!(a.partitions("c1"), &[tp("t", 0), tp("t", 1)]);
    assert_eq!(a.partitions("c2"), &[tp("t", 2), tp("t", 4)]);
    assert_eq!(a.partitions("c3"), &[tp("t", 3), tp("t", 5)]);
}

#[test]
fn sticky_conflicting_claims_go_to_the_higher_generation() {
    // AbstractStickyAssignorTest.testAssignmentWithConflictingPreviousGenerations (shape):
    // the newest generation's claim wins; stale claims of older generations are dropped.
    let parts = topics(&[("t", 6)]);
    let a = run(
        &StickyAssignor,
        &parts,
        &subs(vec![
            sticky_sub("c1", &["t"], &[tp("t", 0), tp("t", 1), tp("t", 4)], 1),
            sticky_sub("c2", &["t"], &[tp("t", 0), tp("t", 2), tp("t", 3)], 2),
            sticky_sub("c3", &["t"], &[tp("t", 3), tp("t", 4), tp("t", 5)], 3),
        ]),
    );
    // c2 (gen 2) takes t-0 from c1 (gen 1); c3 (gen 3) takes t-3 from c2 and t-4 from c1;
    // c3 is then over quota and gives up t-5, which goes to c1 (under quota).
    assert_eq!(a.partitions("c1"), &[tp("t", 1), tp("t", 5)]);
    assert_eq!(a.partitions("c2"), &[tp("t", 0), tp("t", 2)]);
    assert_eq!(a.partitions("c3"), &[tp("t", 3), tp("t", 4)]);
}

#[test]
fn sticky_same_generation_double_claim_is_taken_from_both() {
    // testAllConsumersHaveOwnedPartitionInvalidatedWhenClaimedByMultipleConsumersInSameGeneration
    let parts = topics(&[("t", 3)]);
    let eager = run(
        &StickyAssignor,
        &parts,
        &subs(vec![
            sticky_sub("c1", &["t"], &[tp("t", 0), tp("t", 1)], 1),
            sticky_sub("c2", &["t"], &[tp("t", 0), tp("t", 2)], 1),
            sticky_sub("c3", &["t"], &[], 1),
        ]),
    );
    assert_eq!(eager.partitions("c1"), &[tp("t", 1)]);
    assert_eq!(eager.partitions("c2"), &[tp("t", 2)]);
    assert_eq!(eager.partitions("c3"), &[tp("t", 0)]);
    // Cooperative: t-0 changes owner, so it is withheld this round.
    let coop = run(
        &CooperativeStickyAssignor,
        &parts,
        &subs(vec![
            coop_sub("c1", &["t"], &[tp("t", 0), tp("t", 1)], 1),
            coop_sub("c2", &["t"], &[tp("t", 0), tp("t", 2)], 1),
            coop_sub("c3", &["t"], &[], 1),
        ]),
    );
    assert_eq!(coop.partitions("c1"), &[tp("t", 1)]);
    assert_eq!(coop.partitions("c2"), &[tp("t", 2)]);
    assert!(coop.partitions("c3").is_empty());
}

#[test]
fn cooperative_add_consumer_takes_two_rebalances() {
    // CooperativeStickyAssignorTest.testAddRemoveConsumerOneTopic.
    let parts = topics(&[("t", 3)]);
    let c = &CooperativeStickyAssignor;
    let a = run(c, &parts, &subs(vec![coop_sub("c1", &["t"], &[], -1)]));
    assert_eq!(a.partitions("c1"), &[tp("t", 0), tp("t", 1), tp("t", 2)]);
    // c2 joins: t-2 must move, so c1 is told to give it up and c2 gets nothing yet.
    let b = run(
        c,
        &parts,
        &subs(vec![
            coop_sub("c1", &["t"], a.partitions("c1"), 1),
            coop_sub("c2", &["t"], &[], -1),
        ]),
    );
    assert_eq!(b.partitions("c1"), &[tp("t", 0), tp("t", 1)]);
    assert!(b.partitions("c2").is_empty());
    // Follow-up rebalance after c1 revoked it.
    let c2 = run(
        c,
        &parts,
        &subs(vec![
            coop_sub("c1", &["t"], b.partitions("c1"), 2),
            coop_sub("c2", &["t"], &[], 2),
        ]),
    );
    assert_eq!(c2.partitions("c1"), &[tp("t", 0), tp("t", 1)]);
    assert_eq!(c2.partitions("c2"), &[tp("t", 2)]);
    // c1 leaves: c2 takes everything at once (nothing to revoke from anyone).
    let d = run(
        c,
        &parts,
        &subs(vec![coop_sub("c2", &["t"], c2.partitions("c2"), 3)]),
    );
    assert_eq!(d.partitions("c2"), &[tp("t", 0), tp("t", 1), tp("t", 2)]);
}

#[test]
fn cooperative_general_case_withholds_moving_partitions() {
    // Unequal subscriptions (general path): c1 stops subscribing to t2. Balancing gives t1-1
    // to c1 and t2 to c2; t2-0 and t2-1 (still owned by c1) and t1-1 (owned by c2) change
    // owner, so all three are withheld this round.
    let parts = topics(&[("t1", 2), ("t2", 2)]);
    let c = &CooperativeStickyAssignor;
    let owned_c1 = [tp("t1", 0), tp("t2", 0), tp("t2", 1)];
    let a = run(
        c,
        &parts,
        &subs(vec![
            coop_sub("c1", &["t1"], &owned_c1, 4),
            coop_sub("c2", &["t1", "t2"], &[tp("t1", 1)], 4),
        ]),
    );
    assert_eq!(a.partitions("c1"), &[tp("t1", 0)]);
    assert!(a.partitions("c2").is_empty());
    let b = run(
        c,
        &parts,
        &subs(vec![
            coop_sub("c1", &["t1"], a.partitions("c1"), 5),
            coop_sub("c2", &["t1", "t2"], a.partitions("c2"), 5),
        ]),
    );
    assert_eq!(b.partitions("c1"), &[tp("t1", 0), tp("t1", 1)]);
    assert_eq!(b.partitions("c2"), &[tp("t2", 0), tp("t2", 1)]);
}

#[test]
fn sticky_user_data_bytes() {
    // StickyAssignorUserData v1 as Java's serializeTopicPartitionAssignment writes it:
    // [topic: int16 length + UTF-8, partitions: int32 count + int32s], int32 generation.
    let partitions = [tp("t", 0), tp("u", 2), tp("t", 1)];
    let bytes = encode_sticky_user_data(&partitions, 3);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0, 0, 0, 2,
        0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1,
        0, 1, b'u', 0, 0, 0, 1, 0, 0, 0, 2,
        0, 0, 0, 3,
    ];
    assert_eq!(&bytes[..], expected);
    let back = decode_sticky_user_data(&bytes);
    assert_eq!(back.partitions, vec![tp("t", 0), tp("t", 1), tp("u", 2)]);
    assert_eq!(back.generation, Some(3));

    // v0 (no generation) is read as such.
    let v0 = &expected[..expected.len() - 4];
    let back = decode_sticky_user_data(v0);
    assert_eq!(back.partitions.len(), 3);
    assert_eq!(back.generation, None);
    // Newer Java treats a non-positive generation as unknown; trailing bytes are ignored.
    let mut zero = encode_sticky_user_data(&[tp("t", 0)], 0).to_vec();
    zero.extend_from_slice(b"future");
    assert_eq!(
        decode_sticky_user_data(&zero),
        StickyMemberData {
            partitions: vec![tp("t", 0)],
            generation: None
        }
    );
    // Garbage: an empty previous assignment of the default generation.
    for garbage in [
        &[0xff, 0xff, 0xff, 0xff][..],
        &[0, 0],
        &[0x7f, 0xff, 0xff, 0xff, 0, 1],
    ] {
        assert_eq!(
            decode_sticky_user_data(garbage),
            StickyMemberData {
                partitions: vec![],
                generation: Some(DEFAULT_GENERATION)
            }
        );
    }
    // Empty assignment of a known generation.
    assert_eq!(
        &encode_sticky_user_data(&[], 7)[..],
        &[0, 0, 0, 0, 0, 0, 0, 7]
    );
}

#[test]
fn sticky_subscription_user_data_and_member_data() {
    let s = &StickyAssignor;
    // Before any assignment Java sends no user data.
    assert_eq!(s.subscription_user_data(&[], &[], DEFAULT_GENERATION), None);
    // After an (even empty) assignment it sends it, with the generation.
    assert_eq!(
        s.subscription_user_data(&[], &[], 2).as_deref(),
        Some(&[0, 0, 0, 0, 0, 0, 0, 2][..])
    );
    let data = s.subscription_user_data(&[], &[tp("t", 1)], 4);
    let member = MemberSubscription {
        user_data: data,
        // User data wins over the subscription's owned partitions, as in Java.
        owned_partitions: vec![tp("t", 0)],
        generation_id: 9,
        ..MemberSubscription::new("m", ["t"])
    };
    assert_eq!(
        StickyAssignor::member_data(&member),
        StickyMemberData {
            partitions: vec![tp("t", 1)],
            generation: Some(4)
        }
    );
    // Without user data, the owned partitions (ConsumerProtocol v1+) and generation (v2+).
    let member = MemberSubscription {
        user_data: None,
        ..member
    };
    assert_eq!(
        StickyAssignor::member_data(&member),
        StickyMemberData {
            partitions: vec![tp("t", 0)],
            generation: Some(9)
        }
    );
}

#[test]
fn cooperative_user_data_is_the_generation() {
    // CooperativeStickyAssignorTest.testEncodeAndDecodeGeneration.
    let c = &CooperativeStickyAssignor;
    assert_eq!(
        c.subscription_user_data(&[], &[], 5).as_deref(),
        Some(&[0, 0, 0, 5][..])
    );
    assert_eq!(
        c.subscription_user_data(&[], &[], DEFAULT_GENERATION)
            .as_deref(),
        Some(&[0xff, 0xff, 0xff, 0xff][..])
    );
    assert_eq!(
        decode_cooperative_user_data(Some(&encode_cooperative_user_data(42))),
        Some(42)
    );
    assert_eq!(decode_cooperative_user_data(None), None);
    assert_eq!(
        decode_cooperative_user_data(Some(&Bytes::from_static(&[1, 2]))),
        Some(DEFAULT_GENERATION)
    );
    // The subscription's generation (v2+) wins over user data; user data is the fallback.
    let member = MemberSubscription {
        owned_partitions: vec![tp("t", 0)],
        user_data: Some(encode_cooperative_user_data(3)),
        generation_id: 8,
        ..MemberSubscription::new("m", ["t"])
    };
    assert_eq!(
        CooperativeStickyAssignor::member_data(&member).generation,
        Some(8)
    );
    let v1 = MemberSubscription {
        generation_id: DEFAULT_GENERATION,
        ..member
    };
    assert_eq!(
        CooperativeStickyAssignor::member_data(&v1),
        StickyMemberData {
            partitions: vec![tp("t", 0)],
            generation: Some(3)
        }
    );
}

#[test]
fn cooperative_prefers_newer_generation_from_user_data() {
    // A member reporting (through v1 user data) an older generation loses a contested
    // partition to the member of the newer generation.
    let parts = topics(&[("t", 2)]);
    let old = MemberSubscription {
        owned_partitions: vec![tp("t", 0), tp("t", 1)],
        user_data: Some(encode_cooperative_user_data(1)),
        ..MemberSubscription::new("a", ["t"])
    };
    let new = MemberSubscription {
        owned_partitions: vec![tp("t", 1)],
        user_data: Some(encode_cooperative_user_data(2)),
        ..MemberSubscription::new("b", ["t"])
    };
    let a = run(&CooperativeStickyAssignor, &parts, &subs(vec![old, new]));
    assert_eq!(a.partitions("a"), &[tp("t", 0)]);
    assert_eq!(a.partitions("b"), &[tp("t", 1)]);
}

#[test]
fn protocol_conversions_round_trip() {
    let wire = ConsumerProtocolSubscription {
        topics: vec!["t".into(), "u".into()],
        user_data: Some(encode_cooperative_user_data(6)),
        owned_partitions: vec![consumer_protocol_subscription::TopicPartition {
            topic: "t".into(),
            partitions: vec![0, 2],
        }],
        generation_id: 6,
        rack_id: Some(String::new()),
    };
    let (_, decoded) = decode_subscription(encode_subscription(&wire, 3).unwrap()).unwrap();
    let member = MemberSubscription::from_protocol("m-1", Some("i-1".into()), &decoded);
    assert_eq!(member.owned_partitions, vec![tp("t", 0), tp("t", 2)]);
    assert_eq!(member.generation_id, 6);
    assert_eq!(member.rack_id, None);
    assert_eq!(member.group_instance_id.as_deref(), Some("i-1"));

    let assignment = MemberAssignment {
        partitions: vec![tp("t", 0), tp("u", 1), tp("t", 2)],
        user_data: None,
    };
    let wire = assignment.to_protocol();
    assert_eq!(wire.assigned_partitions.len(), 2);
    assert_eq!(wire.assigned_partitions[0].partitions, vec![0, 2]);
    assert!(encode_assignment(&wire, 0).is_ok());
    assert_eq!(
        sorted(MemberAssignment::from_protocol(&wire).partitions),
        sorted(assignment.partitions)
    );
}
