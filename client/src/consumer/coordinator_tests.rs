//! Unit tests of the coordinator state machine: the test plays the broker by hand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_wire::consumer_protocol::{decode_subscription, encode_assignment, encode_subscription};
use kafka_wire::messages::{
    find_coordinator_response, join_group_response, offset_commit_response, offset_fetch_response,
    ConsumerProtocolSubscription, FindCoordinatorResponse, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, OffsetCommitResponse, OffsetFetchResponse, SyncGroupResponse,
};
use kafka_wire::ErrorCode;

use super::*;
use crate::consumer::assignor::{
    ConsumerPartitionAssignor, CooperativeStickyAssignor, MemberAssignment, RangeAssignor,
    RoundRobinAssignor, TopicPartition,
};

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

fn config(assignors: Vec<Arc<dyn ConsumerPartitionAssignor>>) -> CoordinatorConfig {
    let mut c = CoordinatorConfig::new("g");
    c.assignors = assignors;
    c.client_rack = Some("rack-a".into());
    c.auto_commit_interval = None;
    c
}

fn eager() -> CoordinatorConfig {
    config(vec![Arc::new(RangeAssignor)])
}

fn cooperative() -> CoordinatorConfig {
    config(vec![Arc::new(CooperativeStickyAssignor)])
}

fn new_member(config: CoordinatorConfig, now: Instant) -> ConsumerCoordinator {
    let mut c = ConsumerCoordinator::new(config, now).unwrap();
    c.subscribe(["t"]);
    c.handle_metadata(&BTreeMap::from([("t".to_string(), 4)]));
    c
}

fn find_response(node_id: i32) -> FindCoordinatorResponse {
    FindCoordinatorResponse {
        coordinators: vec![find_coordinator_response::Coordinator {
            key: "g".into(),
            node_id,
            host: format!("broker{node_id}"),
            port: 9092,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn join_error(code: ErrorCode, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.code(),
        generation_id: -1,
        member_id: member_id.into(),
        ..Default::default()
    }
}

fn join_ok(
    generation: i32,
    member_id: &str,
    leader: &str,
    protocol: &str,
    members: Vec<(&str, Bytes)>,
) -> JoinGroupResponse {
    JoinGroupResponse {
        generation_id: generation,
        protocol_type: Some("consumer".into()),
        protocol_name: Some(protocol.into()),
        leader: leader.into(),
        member_id: member_id.into(),
        members: members
            .into_iter()
            .map(
                |(m, metadata)| join_group_response::JoinGroupResponseMember {
                    member_id: m.into(),
                    metadata,
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    }
}

fn sync_ok(protocol: &str, partitions: &[TopicPartition]) -> SyncGroupResponse {
    let a = MemberAssignment {
        partitions: partitions.to_vec(),
        user_data: None,
    };
    SyncGroupResponse {
        protocol_type: Some("consumer".into()),
        protocol_name: Some(protocol.into()),
        assignment: encode_assignment(&a.to_protocol(), 3).unwrap(),
        ..Default::default()
    }
}

fn heartbeat(code: ErrorCode) -> HeartbeatResponse {
    HeartbeatResponse {
        error_code: code.code(),
        ..Default::default()
    }
}

fn subscription_of(req: &JoinGroupRequest, protocol: &str) -> ConsumerProtocolSubscription {
    let p = req.protocols.iter().find(|p| p.name == protocol).unwrap();
    decode_subscription(p.metadata.clone()).unwrap().1
}

fn owned_in(sub: &ConsumerProtocolSubscription) -> Vec<TopicPartition> {
    sub.owned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| tp(&t.topic, p)))
        .collect()
}

#[track_caller]
fn expect_find(c: &mut ConsumerCoordinator, now: Instant) -> RequestId {
    match c.next_action(now) {
        Some(Action::FindCoordinator(f)) => {
            assert_eq!(f.request(4).coordinator_keys, vec!["g".to_string()]);
            assert_eq!(f.request(3).key, "g");
            f.id
        }
        other => panic!("expected FindCoordinator, got {other:?}"),
    }
}

#[track_caller]
fn expect_join(
    c: &mut ConsumerCoordinator,
    now: Instant,
) -> (RequestId, CoordinatorNode, JoinGroupRequest) {
    match c.next_action(now) {
        Some(Action::JoinGroup(j)) => (j.id, j.coordinator, j.request),
        other => panic!("expected JoinGroup, got {other:?}"),
    }
}

#[track_caller]
fn expect_sync(
    c: &mut ConsumerCoordinator,
    now: Instant,
) -> (RequestId, kafka_wire::messages::SyncGroupRequest) {
    match c.next_action(now) {
        Some(Action::SyncGroup(s)) => (s.id, s.request),
        other => panic!("expected SyncGroup, got {other:?}"),
    }
}

#[track_caller]
fn expect_heartbeat(c: &mut ConsumerCoordinator, now: Instant) -> RequestId {
    match c.next_action(now) {
        Some(Action::Heartbeat(h)) => h.id,
        other => panic!("expected Heartbeat, got {other:?}"),
    }
}

/// Drives a member to Stable as a follower of generation 1 with `partitions`.
fn stable_follower(
    config: CoordinatorConfig,
    now: Instant,
    partitions: &[TopicPartition],
) -> ConsumerCoordinator {
    let protocol = config.assignors[0].name();
    let mut c = new_member(config, now);
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(1));
    let (id, _, _) = expect_join(&mut c, now);
    c.handle_join_group(id, now, &join_ok(1, "m1", "leader", protocol, vec![]));
    let (id, req) = expect_sync(&mut c, now);
    assert!(req.assignments.is_empty());
    c.handle_sync_group(id, now, &sync_ok(protocol, partitions));
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsAssigned(partitions.to_vec()))
    );
    assert_eq!(c.state(), MemberState::Stable);
    assert_eq!(c.next_action(now), None);
    c
}

#[test]
fn leader_joins_assigns_and_heartbeats() {
    let now = Instant::now();
    let mut c = new_member(eager(), now);
    assert_eq!(c.rebalance_protocol(), RebalanceProtocol::Eager);
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(7));
    assert_eq!(c.coordinator().unwrap().node_id, 7);

    let (id, node, req) = expect_join(&mut c, now);
    assert_eq!(node.node_id, 7);
    assert_eq!(req.group_id, "g");
    assert_eq!(req.protocol_type, "consumer");
    assert_eq!(req.member_id, "");
    assert_eq!(req.session_timeout_ms, 45_000);
    assert_eq!(req.rebalance_timeout_ms, 300_000);
    let mine = subscription_of(&req, "range");
    assert_eq!(mine.topics, vec!["t".to_string()]);
    assert_eq!(mine.generation_id, -1);
    assert_eq!(mine.rack_id.as_deref(), Some("rack-a"));
    assert!(mine.owned_partitions.is_empty());
    assert_eq!(c.state(), MemberState::PreparingRebalance);
    assert_eq!(c.next_action(now), None, "one JoinGroup at a time");

    // The other member's subscription, as another client would send it.
    let other = encode_subscription(
        &ConsumerProtocolSubscription {
            topics: vec!["t".into()],
            ..Default::default()
        },
        1,
    )
    .unwrap();
    let mine_bytes = req.protocols[0].metadata.clone();
    c.handle_join_group(
        id,
        now,
        &join_ok(
            1,
            "m1",
            "m1",
            "range",
            vec![("m1", mine_bytes), ("m2", other)],
        ),
    );
    assert!(c.is_leader());
    assert_eq!(c.state(), MemberState::CompletingRebalance);
    let (id, sync) = expect_sync(&mut c, now);
    assert_eq!(sync.generation_id, 1);
    assert_eq!(sync.member_id, "m1");
    assert_eq!(sync.protocol_name.as_deref(), Some("range"));
    let mut all = Vec::new();
    let mut mine_assigned = Vec::new();
    for a in &sync.assignments {
        let (_, decoded) =
            kafka_wire::consumer_protocol::decode_assignment(a.assignment.clone()).unwrap();
        let parts = MemberAssignment::from_protocol(&decoded).partitions;
        if a.member_id == "m1" {
            mine_assigned = parts.clone();
        }
        all.extend(parts);
    }
    all.sort();
    assert_eq!(all, (0..4).map(|p| tp("t", p)).collect::<Vec<_>>());
    assert_eq!(mine_assigned, vec![tp("t", 0), tp("t", 1)]);

    c.handle_sync_group(id, now, &sync_ok("range", &mine_assigned));
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsAssigned(mine_assigned.clone()))
    );
    assert_eq!(c.state(), MemberState::Stable);
    assert_eq!(c.owned_partitions(), mine_assigned);
    assert_eq!(c.next_action(now), None);

    // Heartbeats every heartbeat.interval (3 s) from the JoinGroup response on.
    let hb = now + Duration::from_secs(3);
    assert_eq!(c.poll_timeout(), Some(hb));
    assert_eq!(c.next_action(hb - Duration::from_millis(1)), None);
    let id = expect_heartbeat(&mut c, hb);
    assert_eq!(
        c.next_action(hb + Duration::from_secs(10)),
        None,
        "one in flight"
    );
    c.poll_called(hb);
    c.handle_heartbeat(id, hb, &heartbeat(ErrorCode::None));
    assert_eq!(c.next_action(hb + Duration::from_millis(2999)), None);
    expect_heartbeat(&mut c, hb + Duration::from_secs(3));
}

#[test]
fn follower_sends_empty_sync_and_gets_its_share() {
    let now = Instant::now();
    let c = stable_follower(eager(), now, &[tp("t", 2), tp("t", 3)]);
    assert!(!c.is_leader());
    assert_eq!(c.generation().generation_id, 1);
    assert_eq!(c.generation().member_id, "m1");
}

#[test]
fn member_id_required_round_trip() {
    let now = Instant::now();
    let mut c = new_member(eager(), now);
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(1));
    let (id, _, req) = expect_join(&mut c, now);
    assert_eq!(req.member_id, "");
    c.handle_join_group(id, now, &join_error(ErrorCode::MemberIdRequired, "m-42"));
    let (id, _, req) = expect_join(&mut c, now);
    assert_eq!(req.member_id, "m-42", "rejoins at once with the given id");
    c.handle_join_group(id, now, &join_ok(1, "m-42", "m-0", "range", vec![]));
    let (_, sync) = expect_sync(&mut c, now);
    assert_eq!(sync.member_id, "m-42");
}

#[test]
fn stale_responses_are_ignored() {
    let now = Instant::now();
    let mut c = new_member(eager(), now);
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(RequestId(999), now, &find_response(1));
    assert!(c.coordinator().is_none());
    c.handle_find_coordinator(id, now, &find_response(1));
    let (id, _, _) = expect_join(&mut c, now);
    c.handle_join_group(id, now, &join_ok(1, "m1", "x", "range", vec![]));
    // The same answer again is not a second join.
    c.handle_join_group(id, now, &join_ok(2, "m1", "x", "range", vec![]));
    assert_eq!(c.generation().generation_id, 1);
}

#[test]
fn eager_rebalance_revokes_everything_before_rejoining() {
    let now = Instant::now();
    let owned = [tp("t", 0), tp("t", 1)];
    let mut c = stable_follower(eager(), now, &owned);
    let t = now + Duration::from_secs(3);
    c.poll_called(t);
    let id = expect_heartbeat(&mut c, t);
    c.handle_heartbeat(id, t, &heartbeat(ErrorCode::RebalanceInProgress));
    assert_eq!(
        c.next_action(t),
        Some(Action::PartitionsRevoked(owned.to_vec()))
    );
    let (id, _, req) = expect_join(&mut c, t);
    assert_eq!(req.member_id, "m1");
    let sub = subscription_of(&req, "range");
    assert!(owned_in(&sub).is_empty(), "eager members own nothing");
    assert_eq!(sub.generation_id, 1);
    assert!(c.owned_partitions().is_empty());
    assert_eq!(
        c.next_action(t + Duration::from_secs(10)),
        None,
        "no heartbeat"
    );
    // New generation: everything assigned is "added".
    c.handle_join_group(id, t, &join_ok(2, "m1", "x", "range", vec![]));
    let (id, _) = expect_sync(&mut c, t);
    c.handle_sync_group(id, t, &sync_ok("range", &[tp("t", 1), tp("t", 2)]));
    assert_eq!(
        c.next_action(t),
        Some(Action::PartitionsAssigned(vec![tp("t", 1), tp("t", 2)]))
    );
    assert_eq!(c.next_action(t), None);
}

#[test]
fn cooperative_rebalance_revokes_only_moved_partitions_then_rejoins() {
    let now = Instant::now();
    let owned = [tp("t", 0), tp("t", 1)];
    let mut c = stable_follower(cooperative(), now, &owned);
    assert_eq!(c.rebalance_protocol(), RebalanceProtocol::Cooperative);
    c.request_rejoin("test");
    // No revocation before joining: the owned partitions go in the subscription.
    let (id, _, req) = expect_join(&mut c, now);
    let sub = subscription_of(&req, "cooperative-sticky");
    assert_eq!(owned_in(&sub), owned.to_vec());
    assert_eq!(sub.generation_id, 1);
    assert_eq!(sub.user_data.as_deref(), Some(&1i32.to_be_bytes()[..]));
    assert_eq!(c.owned_partitions(), owned.to_vec());

    c.handle_join_group(
        id,
        now,
        &join_ok(2, "m1", "x", "cooperative-sticky", vec![]),
    );
    let (id, _) = expect_sync(&mut c, now);
    // t-1 moves elsewhere: it is revoked, nothing is added, and the member rejoins at once.
    c.handle_sync_group(id, now, &sync_ok("cooperative-sticky", &[tp("t", 0)]));
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsRevoked(vec![tp("t", 1)]))
    );
    assert_eq!(c.next_action(now), Some(Action::PartitionsAssigned(vec![])));
    let (id, _, req) = expect_join(&mut c, now);
    assert_eq!(
        owned_in(&subscription_of(&req, "cooperative-sticky")),
        vec![tp("t", 0)]
    );
    // Follow-up rebalance: nothing revoked, t-2 added.
    c.handle_join_group(
        id,
        now,
        &join_ok(3, "m1", "x", "cooperative-sticky", vec![]),
    );
    let (id, _) = expect_sync(&mut c, now);
    c.handle_sync_group(
        id,
        now,
        &sync_ok("cooperative-sticky", &[tp("t", 0), tp("t", 2)]),
    );
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsAssigned(vec![tp("t", 2)]))
    );
    assert_eq!(c.next_action(now), None);
    assert_eq!(c.state(), MemberState::Stable);
}

#[test]
fn cooperative_subscription_change_revokes_unsubscribed_topics_before_join() {
    let now = Instant::now();
    let mut c = stable_follower(cooperative(), now, &[tp("t", 0)]);
    c.subscribe(["u"]);
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsRevoked(vec![tp("t", 0)]))
    );
    let (_, _, req) = expect_join(&mut c, now);
    assert_eq!(
        subscription_of(&req, "cooperative-sticky").topics,
        vec!["u".to_string()]
    );
}

#[test]
fn unknown_member_loses_partitions_and_rejoins_without_id() {
    let now = Instant::now();
    let owned = [tp("t", 0)];
    let mut c = stable_follower(cooperative(), now, &owned);
    let t = now + Duration::from_secs(3);
    let id = expect_heartbeat(&mut c, t);
    c.handle_heartbeat(id, t, &heartbeat(ErrorCode::UnknownMemberId));
    assert_eq!(c.state(), MemberState::Unjoined);
    assert_eq!(
        c.next_action(t),
        Some(Action::PartitionsLost(owned.to_vec()))
    );
    let (_, _, req) = expect_join(&mut c, t);
    assert_eq!(req.member_id, "");
    assert_eq!(
        subscription_of(&req, "cooperative-sticky").generation_id,
        -1
    );
}

#[test]
fn illegal_generation_keeps_member_id_but_loses_partitions() {
    let now = Instant::now();
    let mut c = stable_follower(eager(), now, &[tp("t", 0)]);
    let t = now + Duration::from_secs(3);
    let id = expect_heartbeat(&mut c, t);
    c.handle_heartbeat(id, t, &heartbeat(ErrorCode::IllegalGeneration));
    assert_eq!(
        c.next_action(t),
        Some(Action::PartitionsLost(vec![tp("t", 0)]))
    );
    let (_, _, req) = expect_join(&mut c, t);
    assert_eq!(req.member_id, "m1");
}

#[test]
fn sync_group_errors() {
    let now = Instant::now();
    // REBALANCE_IN_PROGRESS: rejoin with the same member id, nothing lost.
    let mut c = new_member(eager(), now);
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(1));
    let (id, _, _) = expect_join(&mut c, now);
    c.handle_join_group(id, now, &join_ok(1, "m1", "x", "range", vec![]));
    let (id, _) = expect_sync(&mut c, now);
    c.handle_sync_group(
        id,
        now,
        &SyncGroupResponse {
            error_code: ErrorCode::RebalanceInProgress.code(),
            ..Default::default()
        },
    );
    let (id, _, req) = expect_join(&mut c, now);
    assert_eq!(req.member_id, "m1");
    // FENCED_INSTANCE_ID in SyncGroup is fatal.
    c.handle_join_group(id, now, &join_ok(2, "m1", "x", "range", vec![]));
    let (id, _) = expect_sync(&mut c, now);
    c.handle_sync_group(
        id,
        now,
        &SyncGroupResponse {
            error_code: ErrorCode::FencedInstanceId.code(),
            ..Default::default()
        },
    );
    assert_eq!(
        c.next_action(now),
        Some(Action::Fatal(Error::kafka(ErrorCode::FencedInstanceId)))
    );
    assert_eq!(c.next_action(now + Duration::from_secs(100)), None);
    assert!(c.fatal_error().is_some());
}

#[test]
fn heartbeat_retries_after_backoff_and_session_timeout_rediscovers() {
    let now = Instant::now();
    let mut c = stable_follower(eager(), now, &[tp("t", 0)]);
    let t = now + Duration::from_secs(3);
    c.poll_called(t);
    let id = expect_heartbeat(&mut c, t);
    c.handle_heartbeat(id, t, &heartbeat(ErrorCode::CoordinatorLoadInProgress));
    assert_eq!(c.poll_timeout(), Some(t + Duration::from_millis(100)));
    let t2 = t + Duration::from_millis(100);
    let id = expect_heartbeat(&mut c, t2);
    // No answer: the session times out 45 s after the last successful heartbeat (here,
    // the JoinGroup response at `now`), and the coordinator is looked up again.
    c.handle_request_failed(id, t2, &Error::Timeout("heartbeat".into()));
    assert!(c.coordinator().is_none());
    let id = expect_find(&mut c, t2);
    c.handle_find_coordinator(id, t2, &find_response(2));
    // Still Stable with the same generation: heartbeats resume to the new coordinator.
    assert_eq!(c.state(), MemberState::Stable);
    match c.next_action(t2 + Duration::from_millis(100)) {
        Some(Action::Heartbeat(h)) => {
            assert_eq!(h.coordinator.node_id, 2);
            assert_eq!(h.request.generation_id, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn session_expiry_marks_coordinator_unknown() {
    let now = Instant::now();
    let mut c = stable_follower(eager(), now, &[tp("t", 0)]);
    let _lost_hb = expect_heartbeat(&mut c, now + Duration::from_secs(3));
    let t = now + Duration::from_secs(45);
    c.poll_called(t);
    let id = expect_find(&mut c, t);
    assert!(c.coordinator().is_none());
    c.handle_find_coordinator(id, t, &find_response(1));
    // The lookup restarts the session timer.
    assert!(c.coordinator().is_some());
    expect_heartbeat(&mut c, t);
}

#[test]
fn max_poll_interval_expiry_leaves_and_loses_partitions_on_next_poll() {
    let now = Instant::now();
    let mut c = stable_follower(eager(), now, &[tp("t", 0)]);
    // Heartbeats keep the session alive, but the application never polls.
    let mut t = now;
    let expiry = now + Duration::from_secs(300);
    while t + Duration::from_secs(3) < expiry {
        t += Duration::from_secs(3);
        let id = expect_heartbeat(&mut c, t);
        c.handle_heartbeat(id, t, &heartbeat(ErrorCode::None));
    }
    assert_eq!(c.poll_timeout(), Some(expiry));
    match c.next_action(expiry) {
        Some(Action::LeaveGroup(l)) => {
            assert_eq!(l.member_id, "m1");
            let r = l.request(5);
            assert_eq!(r.members[0].member_id, "m1");
            assert_eq!(l.request(0).member_id, "m1");
        }
        other => panic!("expected LeaveGroup, got {other:?}"),
    }
    assert_eq!(c.state(), MemberState::Unjoined);
    assert_eq!(c.generation(), &Generation::none());
    // Nothing until the application polls again.
    assert_eq!(c.next_action(expiry + Duration::from_secs(60)), None);
    let t = expiry + Duration::from_secs(61);
    c.poll_called(t);
    assert_eq!(
        c.next_action(t),
        Some(Action::PartitionsLost(vec![tp("t", 0)]))
    );
    let (_, _, req) = expect_join(&mut c, t);
    assert_eq!(req.member_id, "");
}

#[test]
fn static_member_does_not_send_leave_group() {
    let now = Instant::now();
    let mut cfg = eager();
    cfg.group_instance_id = Some("instance-1".into());
    let mut c = stable_follower(cfg, now, &[tp("t", 0)]);
    c.close(now);
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsRevoked(vec![tp("t", 0)]))
    );
    assert_eq!(c.next_action(now), None);
}

#[test]
fn close_revokes_and_leaves() {
    let now = Instant::now();
    let mut c = stable_follower(eager(), now, &[tp("t", 0)]);
    c.close(now);
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsRevoked(vec![tp("t", 0)]))
    );
    // Still in the generation while the revocation is handled: a commit goes through.
    let offsets = BTreeMap::from([(tp("t", 0), OffsetAndMetadata::new(3))]);
    assert!(c.offset_commit_request(&offsets).is_ok());
    assert!(matches!(c.next_action(now), Some(Action::LeaveGroup(_))));
    assert_eq!(c.generation(), &Generation::none());
    assert_eq!(c.next_action(now + Duration::from_secs(10)), None);
}

#[test]
fn coordinator_failover_during_join() {
    let now = Instant::now();
    let mut c = new_member(eager(), now);
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(1));
    let (id, _, _) = expect_join(&mut c, now);
    c.handle_join_group(id, now, &join_error(ErrorCode::NotCoordinator, ""));
    assert!(c.coordinator().is_none());
    let id = expect_find(&mut c, now);
    // FindCoordinator failure: retried after the backoff.
    c.handle_find_coordinator(
        id,
        now,
        &FindCoordinatorResponse {
            coordinators: vec![find_coordinator_response::Coordinator {
                key: "g".into(),
                error_code: ErrorCode::CoordinatorNotAvailable.code(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    assert_eq!(c.next_action(now), None);
    let t = now + Duration::from_millis(100);
    let id = expect_find(&mut c, t);
    c.handle_find_coordinator(id, t, &find_response(2));
    let (id, node, _) = expect_join(&mut c, t);
    assert_eq!(node.node_id, 2);
    // A broken connection during SyncGroup: rediscover and rejoin.
    c.handle_join_group(id, t, &join_ok(1, "m1", "x", "range", vec![]));
    let (id, _) = expect_sync(&mut c, t);
    c.handle_request_failed(
        id,
        t,
        &Error::Connection {
            broker: "broker2".into(),
            reason: "reset".into(),
        },
    );
    let id = expect_find(&mut c, t);
    c.handle_find_coordinator(id, t, &find_response(3));
    let t = t + Duration::from_millis(100);
    let (_, node, req) = expect_join(&mut c, t);
    assert_eq!(node.node_id, 3);
    assert_eq!(req.member_id, "m1");
}

#[test]
fn fatal_join_errors() {
    for code in [
        ErrorCode::FencedInstanceId,
        ErrorCode::GroupAuthorizationFailed,
        ErrorCode::InconsistentGroupProtocol,
        ErrorCode::InvalidSessionTimeout,
        ErrorCode::GroupMaxSizeReached,
    ] {
        let now = Instant::now();
        let mut c = new_member(eager(), now);
        let id = expect_find(&mut c, now);
        c.handle_find_coordinator(id, now, &find_response(1));
        let (id, _, _) = expect_join(&mut c, now);
        c.handle_join_group(id, now, &join_error(code, ""));
        assert_eq!(c.next_action(now), Some(Action::Fatal(Error::kafka(code))));
        assert_eq!(c.next_action(now), None);
    }
}

#[test]
fn leader_waits_for_metadata_of_other_members_topics() {
    let now = Instant::now();
    let mut c = new_member(config(vec![Arc::new(RoundRobinAssignor)]), now);
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(1));
    let (id, _, req) = expect_join(&mut c, now);
    let other = encode_subscription(
        &ConsumerProtocolSubscription {
            topics: vec!["u".into()],
            ..Default::default()
        },
        3,
    )
    .unwrap();
    c.handle_join_group(
        id,
        now,
        &join_ok(
            1,
            "m1",
            "m1",
            "roundrobin",
            vec![("m1", req.protocols[0].metadata.clone()), ("m2", other)],
        ),
    );
    assert_eq!(
        c.next_action(now),
        Some(Action::UpdateMetadata(vec!["u".to_string()]))
    );
    assert_eq!(c.next_action(now), None);
    assert_eq!(c.metadata_topics(), vec!["t".to_string(), "u".to_string()]);
    c.handle_metadata(&BTreeMap::from([("u".to_string(), 2)]));
    let (_, sync) = expect_sync(&mut c, now);
    assert_eq!(sync.assignments.len(), 2);
}

#[test]
fn leader_rejoins_when_partition_counts_change() {
    let now = Instant::now();
    let mut c = new_member(eager(), now);
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(1));
    let (id, _, req) = expect_join(&mut c, now);
    c.handle_join_group(
        id,
        now,
        &join_ok(
            1,
            "m1",
            "m1",
            "range",
            vec![("m1", req.protocols[0].metadata.clone())],
        ),
    );
    let (id, _) = expect_sync(&mut c, now);
    let all: Vec<_> = (0..4).map(|p| tp("t", p)).collect();
    c.handle_sync_group(id, now, &sync_ok("range", &all));
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsAssigned(all.clone()))
    );
    c.handle_metadata(&BTreeMap::from([("t".to_string(), 4)]));
    assert_eq!(c.next_action(now), None);
    c.handle_metadata(&BTreeMap::from([("t".to_string(), 6)]));
    assert_eq!(c.next_action(now), Some(Action::PartitionsRevoked(all)));
    expect_join(&mut c, now);
}

#[test]
fn common_rebalance_protocol() {
    let coop: Arc<dyn ConsumerPartitionAssignor> = Arc::new(CooperativeStickyAssignor);
    let range: Arc<dyn ConsumerPartitionAssignor> = Arc::new(RangeAssignor);
    assert_eq!(
        common_protocol(std::slice::from_ref(&coop)).unwrap(),
        RebalanceProtocol::Cooperative
    );
    assert_eq!(
        common_protocol(&[range, coop]).unwrap(),
        RebalanceProtocol::Eager
    );
    assert!(common_protocol(&[]).is_err());
    assert!(ConsumerCoordinator::new(CoordinatorConfig::new(""), Instant::now()).is_err());
}

#[test]
fn auto_commit_due_times() {
    let now = Instant::now();
    let mut cfg = eager();
    cfg.auto_commit_interval = Some(Duration::from_secs(5));
    let mut c = stable_follower(cfg, now, &[tp("t", 0)]);
    assert_eq!(c.auto_commit_due_at(), Some(now + Duration::from_secs(5)));
    let hb = expect_heartbeat(&mut c, now + Duration::from_secs(3));
    c.handle_heartbeat(hb, now, &heartbeat(ErrorCode::None));
    let t = now + Duration::from_secs(5);
    c.poll_called(t);
    assert_eq!(c.next_action(t), Some(Action::AutoCommitDue));
    assert_eq!(c.auto_commit_due_at(), Some(t + Duration::from_secs(5)));
}

fn commit_response(code: ErrorCode) -> OffsetCommitResponse {
    OffsetCommitResponse {
        topics: vec![offset_commit_response::OffsetCommitResponseTopic {
            name: "t".into(),
            partitions: vec![offset_commit_response::OffsetCommitResponsePartition {
                partition_index: 0,
                error_code: code.code(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn offset_commit_requests_and_errors() {
    let now = Instant::now();
    let mut c = new_member(eager(), now);
    let offsets = BTreeMap::from([
        (tp("t", 1), OffsetAndMetadata::new(10)),
        (
            tp("t", 0),
            OffsetAndMetadata {
                offset: 5,
                leader_epoch: Some(3),
                metadata: "m".into(),
            },
        ),
        (tp("u", 0), OffsetAndMetadata::new(1)),
    ]);
    assert!(matches!(
        c.offset_commit_request(&offsets),
        Err(CommitError::Retriable(_))
    ));
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(1));
    assert_eq!(
        c.offset_commit_request(&offsets),
        Err(CommitError::CommitFailed)
    );
    let (id, _, _) = expect_join(&mut c, now);
    assert_eq!(
        c.offset_commit_request(&offsets),
        Err(CommitError::RebalanceInProgress)
    );
    c.handle_join_group(id, now, &join_ok(4, "m1", "x", "range", vec![]));
    let (id, _) = expect_sync(&mut c, now);
    c.handle_sync_group(id, now, &sync_ok("range", &[tp("t", 0)]));
    c.next_action(now);

    let send = c.offset_commit_request(&offsets).unwrap();
    let r = &send.request;
    assert_eq!(r.generation_id_or_member_epoch, 4);
    assert_eq!(r.member_id, "m1");
    assert_eq!(r.topics.len(), 2);
    assert_eq!(r.topics[0].name, "t");
    assert_eq!(r.topics[0].partitions[0].partition_index, 0);
    assert_eq!(r.topics[0].partitions[0].committed_leader_epoch, 3);
    assert_eq!(r.topics[0].partitions[1].committed_offset, 10);

    assert_eq!(
        c.handle_offset_commit(&send, &commit_response(ErrorCode::None)),
        Ok(())
    );
    assert!(matches!(
        c.handle_offset_commit(
            &send,
            &commit_response(ErrorCode::CoordinatorLoadInProgress)
        ),
        Err(CommitError::Retriable(_))
    ));
    assert!(matches!(
        c.handle_offset_commit(&send, &commit_response(ErrorCode::OffsetMetadataTooLarge)),
        Err(CommitError::Fatal(_))
    ));
    // REBALANCE_IN_PROGRESS: rejoin requested, generation kept.
    assert_eq!(
        c.handle_offset_commit(&send, &commit_response(ErrorCode::RebalanceInProgress)),
        Err(CommitError::RebalanceInProgress)
    );
    assert!(c.rejoin_needed_or_pending());
    assert_eq!(c.generation().generation_id, 4);
    // ILLEGAL_GENERATION: CommitFailed, generation reset, partitions lost on rejoin.
    assert_eq!(
        c.handle_offset_commit(&send, &commit_response(ErrorCode::IllegalGeneration)),
        Err(CommitError::CommitFailed)
    );
    assert_eq!(c.generation().generation_id, -1);
    assert_eq!(
        c.next_action(now),
        Some(Action::PartitionsLost(vec![tp("t", 0)]))
    );
    // NOT_COORDINATOR forgets the coordinator.
    let mut c2 = stable_follower(eager(), now, &[tp("t", 0)]);
    let send = c2.offset_commit_request(&offsets).unwrap();
    assert!(matches!(
        c2.handle_offset_commit(&send, &commit_response(ErrorCode::NotCoordinator)),
        Err(CommitError::Retriable(_))
    ));
    assert!(c2.coordinator().is_none());
}

#[test]
fn offset_fetch_requests_and_responses() {
    let now = Instant::now();
    let mut c = new_member(eager(), now);
    let parts = [tp("t", 0), tp("t", 1)];
    let r8 = c.offset_fetch_request(&parts, true, 8);
    assert_eq!(r8.groups[0].group_id, "g");
    assert_eq!(
        r8.groups[0].topics.as_ref().unwrap()[0].partition_indexes,
        vec![0, 1]
    );
    assert!(r8.require_stable);
    let r1 = c.offset_fetch_request(&parts, true, 1);
    assert_eq!(r1.group_id, "g");
    assert!(!r1.require_stable);

    let v8 = OffsetFetchResponse {
        groups: vec![offset_fetch_response::OffsetFetchResponseGroup {
            group_id: "g".into(),
            topics: vec![offset_fetch_response::OffsetFetchResponseTopics {
                name: "t".into(),
                partitions: vec![
                    offset_fetch_response::OffsetFetchResponsePartitions {
                        partition_index: 0,
                        committed_offset: 42,
                        committed_leader_epoch: 2,
                        metadata: Some("x".into()),
                        ..Default::default()
                    },
                    offset_fetch_response::OffsetFetchResponsePartitions {
                        partition_index: 1,
                        committed_offset: -1,
                        committed_leader_epoch: -1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let got = c.handle_offset_fetch(&v8).unwrap();
    assert_eq!(
        got[&tp("t", 0)],
        Some(CommittedOffset {
            offset: 42,
            leader_epoch: Some(2),
            metadata: "x".into()
        })
    );
    assert_eq!(got[&tp("t", 1)], None);

    let old = OffsetFetchResponse {
        topics: vec![offset_fetch_response::OffsetFetchResponseTopic {
            name: "t".into(),
            partitions: vec![offset_fetch_response::OffsetFetchResponsePartition {
                partition_index: 0,
                committed_offset: 7,
                committed_leader_epoch: -1,
                error_code: ErrorCode::UnstableOffsetCommit.code(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(matches!(
        c.handle_offset_fetch(&old),
        Err(CommitError::Retriable(_))
    ));
    let not_coord = OffsetFetchResponse {
        error_code: ErrorCode::NotCoordinator.code(),
        ..Default::default()
    };
    let id = expect_find(&mut c, now);
    c.handle_find_coordinator(id, now, &find_response(1));
    assert!(matches!(
        c.handle_offset_fetch(&not_coord),
        Err(CommitError::Retriable(_))
    ));
    assert!(c.coordinator().is_none());
}

#[test]
fn eager_revocation_is_handed_out_while_still_stable_so_commits_work() {
    let now = Instant::now();
    let owned = [tp("t", 0)];
    let mut c = stable_follower(eager(), now, &owned);
    let t = now + Duration::from_secs(3);
    c.poll_called(t);
    let id = expect_heartbeat(&mut c, t);
    c.handle_heartbeat(id, t, &heartbeat(ErrorCode::RebalanceInProgress));
    assert_eq!(
        c.next_action(t),
        Some(Action::PartitionsRevoked(owned.to_vec()))
    );
    // The JoinGroup is not built yet: the member can still commit in its generation.
    assert_eq!(c.state(), MemberState::Stable);
    let offsets = BTreeMap::from([(tp("t", 0), OffsetAndMetadata::new(5))]);
    let send = c.offset_commit_request(&offsets).expect("commit allowed");
    assert_eq!(send.generation.generation_id, 1);
    // A driver waiting for the callbacks only heartbeats.
    let t2 = t + Duration::from_secs(3);
    assert_eq!(c.heartbeat_due_at(), Some(t2));
    assert_eq!(c.next_heartbeat(t), None);
    match c.next_heartbeat(t2) {
        Some(Action::Heartbeat(h)) => c.handle_heartbeat(h.id, t2, &heartbeat(ErrorCode::None)),
        other => panic!("expected Heartbeat, got {other:?}"),
    }
    let (_, _, req) = expect_join(&mut c, t2);
    assert_eq!(req.member_id, "m1");
    assert_eq!(c.state(), MemberState::PreparingRebalance);
    assert_eq!(c.next_heartbeat(t2 + Duration::from_secs(10)), None);
}

#[test]
fn coordinator_failure_reported_by_the_driver_forgets_it() {
    let now = Instant::now();
    let mut c = stable_follower(eager(), now, &[tp("t", 0)]);
    let node = c.coordinator().cloned().expect("known");
    let other = CoordinatorNode {
        node_id: node.node_id + 1,
        ..node.clone()
    };
    c.handle_coordinator_failure(&other);
    assert!(c.coordinator().is_some(), "another node: ignored");
    c.handle_coordinator_failure(&node);
    assert!(c.coordinator().is_none());
    expect_find(&mut c, now);
}

#[test]
fn an_empty_topic_subscription_idles_but_an_empty_pattern_match_joins() {
    let now = Instant::now();
    let mut c = ConsumerCoordinator::new(eager(), now).unwrap();
    c.subscribe(Vec::<String>::new());
    assert!(c.next_action(now).is_none(), "nothing to do without topics");

    // A pattern that matches nothing yet: the member is in the group all the same (Java's
    // AUTO_PATTERN), so it looks the coordinator up.
    c.subscribe_pattern_matches(Vec::<String>::new());
    let Some(Action::FindCoordinator(find)) = c.next_action(now) else {
        panic!("expected a coordinator lookup");
    };
    assert!(c.subscription().is_empty());

    // New matches change the subscription (and ask for a rebalance).
    c.subscribe_pattern_matches(["t2", "t1"]);
    assert_eq!(c.subscription(), ["t1", "t2"]);
    assert!(c.rejoin_needed_or_pending());
    // A plain subscription turns pattern mode off again.
    c.subscribe(Vec::<String>::new());
    c.handle_find_coordinator(find.id, now, &find_response(1));
    assert!(c.next_action(now).is_none());
}
