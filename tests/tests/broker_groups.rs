//! broker-lite's classic group coordinator over the wire: JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup cycles with several members (KIP-394 member-id-required round trip, rebalances,
//! session expiry, KIP-345 static members, the initial rebalance delay), OffsetCommit /
//! OffsetFetch (simple and group commits, v1 to v9), their errors, ListGroups /
//! DescribeGroups / DeleteGroups / OffsetDelete, and durability of offsets and groups in
//! `__consumer_offsets` across a restart.

use std::time::{Duration, Instant};

use broker_lite::Broker;
use bytes::Bytes;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::consumer_protocol::{decode_assignment, encode_assignment, encode_subscription};
use kafka_wire::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_wire::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_wire::messages::leave_group_request::MemberIdentity;
use kafka_wire::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_wire::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_wire::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_wire::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_wire::messages::*;
use kafka_wire::ErrorCode;
use tokio::task::JoinHandle;

const JOIN_VERSION: i16 = 9;
const SYNC_VERSION: i16 = 5;
const HEARTBEAT_VERSION: i16 = 4;
const COMMIT_VERSION: i16 = 8;
const FETCH_VERSION: i16 = 8;

/// A broker with no initial rebalance delay and short session timeouts allowed.
async fn start(extra: &[(&str, &str)]) -> Broker {
    let mut b = Broker::builder()
        .config("group.initial.rebalance.delay.ms", "0")
        .unwrap()
        .config("group.min.session.timeout.ms", "100")
        .unwrap();
    for (k, v) in extra {
        b = b.config(k, v).unwrap();
    }
    b.start().await.expect("broker starts")
}

fn code(c: i16) -> ErrorCode {
    ErrorCode::from_code(c)
}

fn subscription(topics: &[&str]) -> Bytes {
    let s = kafka_wire::messages::ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    encode_subscription(&s, 1).expect("subscription encodes")
}

fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let a = kafka_wire::messages::ConsumerProtocolAssignment {
        assigned_partitions: vec![AssignedPartitions {
            topic: topic.into(),
            partitions: partitions.to_vec(),
        }],
        ..Default::default()
    };
    encode_assignment(&a, 1).expect("assignment encodes")
}

fn join_request(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    session_ms: i32,
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: session_ms,
        rebalance_timeout_ms: 5000,
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_string),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: subscription(&["t"]),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn join(c: &mut RawClient, req: JoinGroupRequest) -> JoinGroupResponse {
    c.send(req, JOIN_VERSION).await.expect("JoinGroup")
}

/// A JoinGroup that may wait for a rebalance, on its own connection.
fn join_later(addr: String, req: JoinGroupRequest) -> JoinHandle<(RawClient, JoinGroupResponse)> {
    tokio::spawn(async move {
        let mut c = connect(&addr).await;
        let r = join(&mut c, req).await;
        (c, r)
    })
}

/// A new dynamic member: the KIP-394 round trip (MEMBER_ID_REQUIRED with an id, then the
/// real join, which may wait for a rebalance).
async fn join_new_member(
    addr: &str,
    group: &str,
    session_ms: i32,
) -> (String, JoinHandle<(RawClient, JoinGroupResponse)>) {
    let mut c = connect(addr).await;
    let r = join(&mut c, join_request(group, "", None, session_ms)).await;
    assert_eq!(code(r.error_code), ErrorCode::MemberIdRequired);
    assert!(
        r.member_id.starts_with("kafka-rs-tests-"),
        "{}",
        r.member_id
    );
    assert_eq!(r.generation_id, -1);
    let id = r.member_id.clone();
    (
        id.clone(),
        join_later(addr.to_string(), join_request(group, &id, None, session_ms)),
    )
}

fn sync_request(
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member_id.into(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .into_iter()
            .map(|(member_id, assignment)| SyncGroupRequestAssignment {
                member_id,
                assignment,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

async fn sync(c: &mut RawClient, req: SyncGroupRequest) -> SyncGroupResponse {
    c.send(req, SYNC_VERSION).await.expect("SyncGroup")
}

fn sync_later(addr: String, req: SyncGroupRequest) -> JoinHandle<SyncGroupResponse> {
    tokio::spawn(async move {
        let mut c = connect(&addr).await;
        sync(&mut c, req).await
    })
}

async fn heartbeat(c: &mut RawClient, group: &str, member_id: &str, generation: i32) -> ErrorCode {
    let r = c
        .send(
            HeartbeatRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member_id.into(),
                ..Default::default()
            },
            HEARTBEAT_VERSION,
        )
        .await
        .expect("Heartbeat");
    code(r.error_code)
}

async fn leave(c: &mut RawClient, group: &str, member_ids: &[&str]) -> LeaveGroupResponse {
    let req = LeaveGroupRequest {
        group_id: group.into(),
        members: member_ids
            .iter()
            .map(|m| MemberIdentity {
                member_id: m.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    c.send(req, 5).await.expect("LeaveGroup")
}

fn commit_request(
    group: &str,
    member_id: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o) in offsets {
        let partition = OffsetCommitRequestPartition {
            partition_index: *p,
            committed_offset: *o,
            committed_leader_epoch: 0,
            committed_metadata: Some(format!("meta-{p}")),
            ..Default::default()
        };
        match topics.iter_mut().find(|x| x.name == *t) {
            Some(x) => x.partitions.push(partition),
            None => topics.push(OffsetCommitRequestTopic {
                name: t.to_string(),
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.into(),
        topics,
        ..Default::default()
    }
}

/// Commits and returns every partition's code, in request order.
async fn commit(
    c: &mut RawClient,
    group: &str,
    member_id: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
    version: i16,
) -> Vec<ErrorCode> {
    let r = c
        .send(
            commit_request(group, member_id, generation, offsets),
            version,
        )
        .await
        .expect("OffsetCommit");
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| code(p.error_code)))
        .collect()
}

/// OffsetFetch v8 of one group: `(topic, partition, offset, metadata)` in answer order, or
/// the group's error.
async fn fetch_offsets(
    c: &mut RawClient,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> Result<Vec<(String, i32, i64, String)>, ErrorCode> {
    let req = OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: group.into(),
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|(t, ps)| OffsetFetchRequestTopics {
                        name: t.to_string(),
                        partition_indexes: ps.to_vec(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.send(req, FETCH_VERSION).await.expect("OffsetFetch");
    let g = &r.groups[0];
    assert_eq!(g.group_id, group);
    if g.error_code != 0 {
        return Err(code(g.error_code));
    }
    Ok(g.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                assert_eq!(p.error_code, 0);
                (
                    t.name.clone(),
                    p.partition_index,
                    p.committed_offset,
                    p.metadata.clone().unwrap_or_default(),
                )
            })
        })
        .collect())
}

async fn describe(c: &mut RawClient, group: &str) -> describe_groups_response::DescribedGroup {
    let mut r = c
        .send(
            DescribeGroupsRequest {
                groups: vec![group.into()],
                include_authorized_operations: true,
                ..Default::default()
            },
            5,
        )
        .await
        .expect("DescribeGroups");
    r.groups.remove(0)
}

async fn assigned(r: SyncGroupResponse) -> Vec<i32> {
    assert_eq!(code(r.error_code), ErrorCode::None);
    let (_, a) = decode_assignment(r.assignment).expect("assignment decodes");
    a.assigned_partitions
        .into_iter()
        .flat_map(|tp| tp.partitions)
        .collect()
}

#[tokio::test]
async fn two_members_join_sync_heartbeat_rebalance_and_leave() {
    let broker = start(&[]).await;
    let addr = broker.bootstrap_servers();
    let mut admin = connect(&addr).await;
    create_topic(&mut admin, "t", 4, &[]).await;
    let g = "cycle";

    // A: MEMBER_ID_REQUIRED, then the join; with no initial delay it completes at once.
    let (a, pending) = join_new_member(&addr, g, 10_000).await;
    let (mut ca, ja) = pending.await.unwrap();
    assert_eq!(code(ja.error_code), ErrorCode::None);
    assert_eq!((ja.generation_id, ja.leader.as_str()), (1, a.as_str()));
    assert_eq!(ja.member_id, a);
    assert_eq!(ja.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(ja.protocol_name.as_deref(), Some("range"));
    assert_eq!(ja.members.len(), 1);
    assert_eq!(ja.members[0].metadata, subscription(&["t"]));
    let s = sync(
        &mut ca,
        sync_request(g, &a, 1, vec![(a.clone(), assignment("t", &[0, 1, 2, 3]))]),
    )
    .await;
    assert_eq!(assigned(s).await, vec![0, 1, 2, 3]);
    assert_eq!(heartbeat(&mut ca, g, &a, 1).await, ErrorCode::None);
    assert_eq!(
        code(describe(&mut admin, g).await.error_code),
        ErrorCode::None
    );
    assert_eq!(describe(&mut admin, g).await.group_state, "Stable");

    // B joins: the group rebalances; A learns it from its heartbeat and rejoins.
    let (b, pending_b) = join_new_member(&addr, g, 10_000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending_b.is_finished(), "B waits for A to rejoin");
    assert_eq!(
        heartbeat(&mut ca, g, &a, 1).await,
        ErrorCode::RebalanceInProgress
    );
    assert_eq!(
        describe(&mut admin, g).await.group_state,
        "PreparingRebalance"
    );
    let ja = join(&mut ca, join_request(g, &a, None, 10_000)).await;
    let (mut cb, jb) = pending_b.await.unwrap();
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    assert_eq!(
        (ja.leader.as_str(), jb.leader.as_str()),
        (a.as_str(), a.as_str())
    );
    let mut ids: Vec<&str> = ja.members.iter().map(|m| m.member_id.as_str()).collect();
    ids.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(ids, want, "the leader sees every member");
    assert!(jb.members.is_empty(), "followers get no member list");
    // The old generation is over.
    assert_eq!(
        heartbeat(&mut ca, g, &a, 1).await,
        ErrorCode::IllegalGeneration
    );
    // Heartbeats while waiting for the assignment are fine (Kafka 4.0).
    assert_eq!(heartbeat(&mut cb, g, &b, 2).await, ErrorCode::None);

    // B syncs first and waits for the leader's assignment.
    let sb = sync_later(addr.clone(), sync_request(g, &b, 2, vec![]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sb.is_finished(), "a follower waits for the leader");
    let sa = sync(
        &mut ca,
        sync_request(
            g,
            &a,
            2,
            vec![
                (a.clone(), assignment("t", &[0, 1])),
                (b.clone(), assignment("t", &[2, 3])),
            ],
        ),
    )
    .await;
    assert_eq!(assigned(sa).await, vec![0, 1]);
    assert_eq!(assigned(sb.await.unwrap()).await, vec![2, 3]);
    assert_eq!(heartbeat(&mut ca, g, &a, 2).await, ErrorCode::None);
    assert_eq!(heartbeat(&mut cb, g, &b, 2).await, ErrorCode::None);
    let d = describe(&mut admin, g).await;
    assert_eq!(
        (d.group_state.as_str(), d.protocol_data.as_str()),
        ("Stable", "range")
    );
    assert_eq!(d.members.len(), 2);
    assert!(d.members.iter().all(|m| m.client_host == "/127.0.0.1"));
    assert!(d.members.iter().all(|m| m.client_id == "kafka-rs-tests"));
    assert!(d.members.iter().all(|m| !m.member_assignment.is_empty()));

    // A Stable member syncing again gets its assignment at once.
    let again = sync(&mut cb, sync_request(g, &b, 2, vec![])).await;
    assert_eq!(assigned(again).await, vec![2, 3]);

    // B leaves: A must rejoin, alone, in generation 3.
    let l = leave(&mut cb, g, &[&b]).await;
    assert_eq!(l.error_code, 0);
    assert_eq!(code(l.members[0].error_code), ErrorCode::None);
    assert_eq!(
        heartbeat(&mut ca, g, &a, 2).await,
        ErrorCode::RebalanceInProgress
    );
    let ja = join(&mut ca, join_request(g, &a, None, 10_000)).await;
    assert_eq!(
        (ja.error_code, ja.generation_id, ja.members.len()),
        (0, 3, 1)
    );
    let sa = sync(
        &mut ca,
        sync_request(g, &a, 3, vec![(a.clone(), assignment("t", &[0, 1, 2, 3]))]),
    )
    .await;
    assert_eq!(assigned(sa).await.len(), 4);
    // Leaving twice: the second time the member is unknown.
    assert_eq!(
        code(leave(&mut cb, g, &[&b]).await.members[0].error_code),
        ErrorCode::UnknownMemberId
    );

    // The last member leaves (v0 LeaveGroup: one member, top-level code): the group is Empty.
    let l = ca
        .send(
            LeaveGroupRequest {
                group_id: g.into(),
                member_id: a.clone(),
                ..Default::default()
            },
            0,
        )
        .await
        .unwrap();
    assert_eq!(l.error_code, 0);
    let d = describe(&mut admin, g).await;
    assert_eq!(
        (d.group_state.as_str(), d.protocol_type.as_str()),
        ("Empty", "consumer")
    );
    assert!(d.members.is_empty());
    assert_eq!(
        heartbeat(&mut ca, g, &a, 3).await,
        ErrorCode::UnknownMemberId
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn member_id_is_required_from_v4_only() {
    let broker = start(&[]).await;
    let addr = broker.bootstrap_servers();
    let mut c = connect(&addr).await;
    // v3: a member without an id joins directly.
    let r = c
        .send(join_request("v3", "", None, 10_000), 3)
        .await
        .unwrap();
    assert_eq!(code(r.error_code), ErrorCode::None);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
    // v4+: MEMBER_ID_REQUIRED, whatever the version.
    for v in [4, 5, 6, 7, 8, 9] {
        let r = c
            .send(join_request("v4", "", None, 10_000), v)
            .await
            .unwrap();
        assert_eq!(code(r.error_code), ErrorCode::MemberIdRequired, "v{v}");
        assert!(!r.member_id.is_empty());
    }
    // v0 (no rebalance timeout) works too.
    let r = c
        .send(join_request("v0", "", None, 10_000), 0)
        .await
        .unwrap();
    assert_eq!((code(r.error_code), r.generation_id), (ErrorCode::None, 1));
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    broker.shutdown().await;
}

#[tokio::test]
async fn initial_rebalance_delay_gathers_members_into_one_generation() {
    let broker = start(&[("group.initial.rebalance.delay.ms", "300")]).await;
    let addr = broker.bootstrap_servers();
    let started = Instant::now();
    let (_, a) = join_new_member(&addr, "delayed", 10_000).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, b) = join_new_member(&addr, "delayed", 10_000).await;
    let (_, ja) = a.await.unwrap();
    let (_, jb) = b.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
    assert_eq!(ja.leader, jb.leader);
    broker.shutdown().await;
}

#[tokio::test]
async fn an_expired_session_removes_the_member() {
    let broker = start(&[]).await;
    let addr = broker.bootstrap_servers();
    let g = "expiry";
    let (a, pa) = join_new_member(&addr, g, 10_000).await;
    let (mut ca, _) = pa.await.unwrap();
    let _ = sync(&mut ca, sync_request(g, &a, 1, vec![])).await;
    // B has a 300 ms session and never heartbeats after its sync.
    let (b, pb) = join_new_member(&addr, g, 300).await;
    let ja = join(&mut ca, join_request(g, &a, None, 10_000)).await;
    let (mut cb, jb) = pb.await.unwrap();
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    let sb = sync_later(addr.clone(), sync_request(g, &b, 2, vec![]));
    let _ = sync(&mut ca, sync_request(g, &a, 2, vec![])).await;
    assert_eq!(code(sb.await.unwrap().error_code), ErrorCode::None);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match heartbeat(&mut ca, g, &a, 2).await {
            ErrorCode::None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => {
                assert_eq!(other, ErrorCode::RebalanceInProgress);
                break;
            }
        }
    }
    let ja = join(&mut ca, join_request(g, &a, None, 10_000)).await;
    assert_eq!((ja.generation_id, ja.members.len()), (3, 1));
    assert_eq!(
        heartbeat(&mut cb, g, &b, 2).await,
        ErrorCode::UnknownMemberId
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_static_member_rejoins_without_a_rebalance() {
    let broker = start(&[]).await;
    let addr = broker.bootstrap_servers();
    let g = "static";
    let mut c = connect(&addr).await;
    // Static members skip the member-id round trip.
    let j1 = join(&mut c, join_request(g, "", Some("instance-1"), 10_000)).await;
    assert_eq!(code(j1.error_code), ErrorCode::None);
    assert!(j1.member_id.starts_with("instance-1-"));
    let old = j1.member_id.clone();
    let mut s = sync_request(g, &old, 1, vec![(old.clone(), assignment("t", &[0]))]);
    s.group_instance_id = Some("instance-1".into());
    assert_eq!(code(sync(&mut c, s).await.error_code), ErrorCode::None);

    // The instance restarts (no member id): new member id, same generation, no rebalance.
    let mut c2 = connect(&addr).await;
    let j2 = join(&mut c2, join_request(g, "", Some("instance-1"), 10_000)).await;
    assert_eq!(code(j2.error_code), ErrorCode::None);
    assert_ne!(j2.member_id, old);
    assert_eq!(j2.generation_id, 1);
    assert_eq!(
        j2.leader, old,
        "the old leader id, so that no assignment is run"
    );
    let d = describe(&mut c2, g).await;
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id, j2.member_id);
    assert_eq!(
        d.members[0].group_instance_id.as_deref(),
        Some("instance-1")
    );
    // Its assignment is kept.
    let mut s = sync_request(g, &j2.member_id, 1, vec![]);
    s.group_instance_id = Some("instance-1".into());
    assert_eq!(assigned(sync(&mut c2, s).await).await, vec![0]);

    // The old member id is fenced.
    let hb = HeartbeatRequest {
        group_id: g.into(),
        generation_id: 1,
        member_id: old.clone(),
        group_instance_id: Some("instance-1".into()),
        ..Default::default()
    };
    let r = c.send(hb.clone(), 4).await.unwrap();
    assert_eq!(code(r.error_code), ErrorCode::FencedInstanceId);
    let r = join(&mut c, join_request(g, &old, Some("instance-1"), 10_000)).await;
    assert_eq!(code(r.error_code), ErrorCode::FencedInstanceId);
    let r = c
        .send(
            HeartbeatRequest {
                member_id: j2.member_id.clone(),
                ..hb
            },
            4,
        )
        .await
        .unwrap();
    assert_eq!(code(r.error_code), ErrorCode::None);
    // Leaving by instance id alone (v3+).
    let l = c
        .send(
            LeaveGroupRequest {
                group_id: g.into(),
                members: vec![MemberIdentity {
                    member_id: String::new(),
                    group_instance_id: Some("instance-1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    assert_eq!(code(l.members[0].error_code), ErrorCode::None);
    assert_eq!(describe(&mut c, g).await.group_state, "Empty");
    broker.shutdown().await;
}

#[tokio::test]
async fn offsets_commit_and_fetch_round_trip() {
    let broker = start(&[]).await;
    let addr = broker.bootstrap_servers();
    let mut c = connect(&addr).await;
    create_topic(&mut c, "t", 3, &[]).await;
    create_topic(&mut c, "u", 1, &[]).await;

    // A simple consumer (generation -1, no member id) commits to a group that does not exist.
    let codes = commit(
        &mut c,
        "simple",
        "",
        -1,
        &[("t", 0, 10), ("t", 2, 30), ("u", 0, 5)],
        COMMIT_VERSION,
    )
    .await;
    assert_eq!(codes, vec![ErrorCode::None; 3]);
    let got = fetch_offsets(&mut c, "simple", Some(&[("t", &[0, 1, 2]), ("u", &[0])]))
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            ("t".into(), 0, 10, "meta-0".into()),
            ("t".into(), 1, -1, String::new()),
            ("t".into(), 2, 30, "meta-2".into()),
            ("u".into(), 0, 5, "meta-0".into()),
        ]
    );
    // Null topics: every committed offset.
    let all = fetch_offsets(&mut c, "simple", None).await.unwrap();
    assert_eq!(all.len(), 3);
    // An unknown group has no offsets.
    let none = fetch_offsets(&mut c, "nobody", Some(&[("t", &[0])]))
        .await
        .unwrap();
    assert_eq!(none, vec![("t".into(), 0, -1, String::new())]);
    assert!(fetch_offsets(&mut c, "nobody", None)
        .await
        .unwrap()
        .is_empty());

    // Several groups in one v8 request.
    let r = c
        .send(
            OffsetFetchRequest {
                groups: vec![
                    OffsetFetchRequestGroup {
                        group_id: "simple".into(),
                        topics: None,
                        ..Default::default()
                    },
                    OffsetFetchRequestGroup {
                        group_id: String::new(),
                        topics: None,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            9,
        )
        .await
        .unwrap();
    assert_eq!(r.groups.len(), 2);
    assert_eq!(
        r.groups[0]
            .topics
            .iter()
            .map(|t| t.partitions.len())
            .sum::<usize>(),
        3
    );
    assert_eq!(code(r.groups[1].error_code), ErrorCode::InvalidGroupId);

    // Older versions: v1 (no leader epoch) up to v7 (single group).
    for v in [1i16, 2, 5, 7] {
        let codes = commit(&mut c, "old", "", -1, &[("t", 1, 100 + v as i64)], v).await;
        assert_eq!(codes, vec![ErrorCode::None], "OffsetCommit v{v}");
        let r = c
            .send(
                OffsetFetchRequest {
                    group_id: "old".into(),
                    topics: Some(vec![OffsetFetchRequestTopic {
                        name: "t".into(),
                        partition_indexes: vec![1],
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                v,
            )
            .await
            .unwrap();
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.committed_offset, p.error_code),
            (100 + v as i64, 0),
            "OffsetFetch v{v}"
        );
        // The epoch is committed from v6 and fetched from v5.
        assert_eq!(p.committed_leader_epoch, if v >= 6 { 0 } else { -1 });
    }

    // Per-partition errors.
    let codes = commit(
        &mut c,
        "simple",
        "",
        -1,
        &[("missing", 0, 1), ("t", 0, 11)],
        COMMIT_VERSION,
    )
    .await;
    assert_eq!(
        codes,
        vec![ErrorCode::UnknownTopicOrPartition, ErrorCode::None]
    );
    let mut big = commit_request("simple", "", -1, &[("t", 0, 12)]);
    big.topics[0].partitions[0].committed_metadata = Some("x".repeat(5000));
    let r = c.send(big, COMMIT_VERSION).await.unwrap();
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        ErrorCode::OffsetMetadataTooLarge
    );
    let codes = commit(&mut c, "", "", -1, &[("t", 0, 1)], COMMIT_VERSION).await;
    assert_eq!(codes, vec![ErrorCode::InvalidGroupId]);
    broker.shutdown().await;
}

#[tokio::test]
async fn group_errors_unknown_member_and_illegal_generation() {
    let broker = start(&[]).await;
    let addr = broker.bootstrap_servers();
    let mut c = connect(&addr).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let g = "errors";
    // Unknown group.
    assert_eq!(
        heartbeat(&mut c, g, "m", 1).await,
        ErrorCode::UnknownMemberId
    );
    let s = sync(&mut c, sync_request(g, "m", 1, vec![])).await;
    assert_eq!(code(s.error_code), ErrorCode::UnknownMemberId);
    let j = join(&mut c, join_request(g, "made-up", None, 10_000)).await;
    assert_eq!(code(j.error_code), ErrorCode::UnknownMemberId);
    assert_eq!(
        commit(&mut c, g, "m", 1, &[("t", 0, 1)], 8).await,
        vec![ErrorCode::IllegalGeneration]
    );
    assert_eq!(
        commit(&mut c, g, "m", 1, &[("t", 0, 1)], 9).await,
        vec![ErrorCode::GroupIdNotFound]
    );
    // Session timeout out of range.
    let j = join(&mut c, join_request(g, "", None, 10)).await;
    assert_eq!(code(j.error_code), ErrorCode::InvalidSessionTimeout);
    let j = join(&mut c, join_request("", "", None, 10_000)).await;
    assert_eq!(code(j.error_code), ErrorCode::InvalidGroupId);

    // A Stable group of one member.
    let j = c.send(join_request(g, "", None, 10_000), 3).await.unwrap();
    let m = j.member_id.clone();
    let _ = sync(&mut c, sync_request(g, &m, 1, vec![])).await;
    assert_eq!(
        heartbeat(&mut c, g, &m, 7).await,
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        heartbeat(&mut c, g, "stranger", 1).await,
        ErrorCode::UnknownMemberId
    );
    let s = sync(&mut c, sync_request(g, &m, 2, vec![])).await;
    assert_eq!(code(s.error_code), ErrorCode::IllegalGeneration);
    let mut s = sync_request(g, &m, 1, vec![]);
    s.protocol_name = Some("roundrobin".into());
    assert_eq!(
        code(sync(&mut c, s).await.error_code),
        ErrorCode::InconsistentGroupProtocol
    );
    let mut s = sync_request(g, &m, 1, vec![]);
    s.protocol_name = None;
    assert_eq!(
        code(sync(&mut c, s).await.error_code),
        ErrorCode::InconsistentGroupProtocol
    );
    assert_eq!(
        commit(&mut c, g, &m, 0, &[("t", 0, 1)], 8).await,
        vec![ErrorCode::IllegalGeneration]
    );
    assert_eq!(
        commit(&mut c, g, "stranger", 1, &[("t", 0, 1)], 8).await,
        vec![ErrorCode::UnknownMemberId]
    );
    // Without generation and member id, only an Empty group accepts commits.
    assert_eq!(
        commit(&mut c, g, "", -1, &[("t", 0, 1)], 8).await,
        vec![ErrorCode::UnknownMemberId]
    );
    assert_eq!(
        commit(&mut c, g, &m, 1, &[("t", 0, 42)], 8).await,
        vec![ErrorCode::None]
    );
    assert_eq!(
        fetch_offsets(&mut c, g, Some(&[("t", &[0])]))
            .await
            .unwrap()[0]
            .2,
        42
    );
    // Another protocol type cannot join.
    let mut other = join_request(g, "", None, 10_000);
    other.protocol_type = "connect".into();
    let j = c.send(other, 3).await.unwrap();
    assert_eq!(code(j.error_code), ErrorCode::InconsistentGroupProtocol);
    broker.shutdown().await;
}

#[tokio::test]
async fn group_max_size_is_enforced() {
    let broker = start(&[("group.max.size", "1")]).await;
    let addr = broker.bootstrap_servers();
    let mut c = connect(&addr).await;
    let j = c
        .send(join_request("small", "", None, 10_000), 3)
        .await
        .unwrap();
    assert_eq!(code(j.error_code), ErrorCode::None);
    let j = c
        .send(join_request("small", "", None, 10_000), 3)
        .await
        .unwrap();
    assert_eq!(code(j.error_code), ErrorCode::GroupMaxSizeReached);
    assert_eq!(j.member_id, "");
    broker.shutdown().await;
}

#[tokio::test]
async fn list_describe_delete_groups_and_delete_offsets() {
    let broker = start(&[]).await;
    let addr = broker.bootstrap_servers();
    let mut c = connect(&addr).await;
    create_topic(&mut c, "t", 2, &[]).await;
    create_topic(&mut c, "other", 1, &[]).await;
    // "active" is a Stable consumer group subscribed to "t"; "idle" holds offsets only.
    let j = c
        .send(join_request("active", "", None, 10_000), 3)
        .await
        .unwrap();
    let m = j.member_id.clone();
    let _ = sync(
        &mut c,
        sync_request("active", &m, 1, vec![(m.clone(), assignment("t", &[0, 1]))]),
    )
    .await;
    assert_eq!(
        commit(&mut c, "active", &m, 1, &[("t", 0, 1), ("other", 0, 2)], 8).await,
        vec![ErrorCode::None; 2]
    );
    assert_eq!(
        commit(&mut c, "idle", "", -1, &[("t", 1, 3)], 8).await,
        vec![ErrorCode::None]
    );

    for v in 0..=5i16 {
        let r = c.send(ListGroupsRequest::default(), v).await.unwrap();
        assert_eq!(r.error_code, 0);
        let mut got: Vec<(String, String)> = r
            .groups
            .iter()
            .map(|g| (g.group_id.clone(), g.protocol_type.clone()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("active".into(), "consumer".into()),
                ("idle".into(), String::new())
            ],
            "ListGroups v{v}"
        );
        if v >= 4 {
            let states: Vec<&str> = r.groups.iter().map(|g| g.group_state.as_str()).collect();
            assert!(states.contains(&"Stable") && states.contains(&"Empty"));
        }
        if v >= 5 {
            assert!(r.groups.iter().all(|g| g.group_type == "classic"));
        }
    }
    let r = c
        .send(
            ListGroupsRequest {
                states_filter: vec!["stable".into()],
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].group_id, "active");
    let r = c
        .send(
            ListGroupsRequest {
                types_filter: vec!["consumer".into()],
                ..Default::default()
            },
            5,
        )
        .await
        .unwrap();
    assert!(r.groups.is_empty(), "no KIP-848 groups");

    // DescribeGroups at every version; an unknown group is Dead.
    for v in 0..=5i16 {
        let r = c
            .send(
                DescribeGroupsRequest {
                    groups: vec!["active".into(), "missing".into()],
                    include_authorized_operations: v >= 3,
                    ..Default::default()
                },
                v,
            )
            .await
            .unwrap();
        assert_eq!(r.groups[0].group_state, "Stable");
        assert_eq!(r.groups[0].members[0].member_id, m);
        assert_eq!(r.groups[0].members[0].member_metadata, subscription(&["t"]));
        assert_eq!(
            (r.groups[1].group_state.as_str(), r.groups[1].error_code),
            ("Dead", 0)
        );
        if v >= 3 {
            assert_ne!(r.groups[0].authorized_operations, i32::MIN);
        }
    }

    // OffsetDelete: not for topics a Stable consumer group subscribes to.
    let del = |group: &str, topic: &str, partition: i32| OffsetDeleteRequest {
        group_id: group.into(),
        topics: vec![OffsetDeleteRequestTopic {
            name: topic.into(),
            partitions: vec![OffsetDeleteRequestPartition {
                partition_index: partition,
            }],
        }],
    };
    let r = c.send(del("active", "t", 0), 0).await.unwrap();
    assert_eq!(r.error_code, 0);
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        ErrorCode::GroupSubscribedToTopic
    );
    let r = c.send(del("active", "other", 0), 0).await.unwrap();
    assert_eq!(code(r.topics[0].partitions[0].error_code), ErrorCode::None);
    let r = c.send(del("active", "nope", 0), 0).await.unwrap();
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
    let r = c.send(del("missing", "t", 0), 0).await.unwrap();
    assert_eq!(code(r.error_code), ErrorCode::GroupIdNotFound);
    let left = fetch_offsets(&mut c, "active", None).await.unwrap();
    assert_eq!(left, vec![("t".into(), 0, 1, "meta-0".into())]);

    // DeleteGroups: only Empty groups.
    let r = c
        .send(
            DeleteGroupsRequest {
                groups_names: vec![
                    "active".into(),
                    "idle".into(),
                    "missing".into(),
                    String::new(),
                ],
                ..Default::default()
            },
            2,
        )
        .await
        .unwrap();
    let codes: Vec<(String, ErrorCode)> = r
        .results
        .iter()
        .map(|x| (x.group_id.clone(), code(x.error_code)))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("active".into(), ErrorCode::NonEmptyGroup),
            ("idle".into(), ErrorCode::None),
            ("missing".into(), ErrorCode::GroupIdNotFound),
            (String::new(), ErrorCode::InvalidGroupId),
        ]
    );
    assert_eq!(
        fetch_offsets(&mut c, "idle", Some(&[("t", &[1])]))
            .await
            .unwrap()[0]
            .2,
        -1
    );
    let l = leave(&mut c, "active", &[&m]).await;
    assert_eq!(code(l.members[0].error_code), ErrorCode::None);
    let r = c
        .send(
            DeleteGroupsRequest {
                groups_names: vec!["active".into()],
                ..Default::default()
            },
            0,
        )
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, 0);
    let r = c.send(ListGroupsRequest::default(), 5).await.unwrap();
    assert!(r.groups.is_empty(), "{:?}", r.groups);
    broker.shutdown().await;
}

#[tokio::test]
async fn offsets_and_groups_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let boot = || async {
        Broker::builder()
            .data_dir(dir.path())
            .config("group.initial.rebalance.delay.ms", "0")
            .unwrap()
            .start()
            .await
            .unwrap()
    };
    let broker = boot().await;
    let addr = broker.bootstrap_servers();
    let mut c = connect(&addr).await;
    create_topic(&mut c, "t", 2, &[]).await;
    // "my-group" lives in partition abs("my-group".hashCode()) % 50 = 12 (from Java).
    let j = c
        .send(join_request("my-group", "", None, 10_000), 3)
        .await
        .unwrap();
    let m = j.member_id.clone();
    let _ = sync(
        &mut c,
        sync_request(
            "my-group",
            &m,
            1,
            vec![(m.clone(), assignment("t", &[0, 1]))],
        ),
    )
    .await;
    assert_eq!(
        commit(&mut c, "my-group", &m, 1, &[("t", 0, 7), ("t", 1, 9)], 8).await,
        vec![ErrorCode::None; 2]
    );
    assert_eq!(
        commit(&mut c, "my-group", &m, 1, &[("t", 0, 8)], 8).await,
        vec![ErrorCode::None]
    );
    assert_eq!(
        commit(&mut c, "doomed", "", -1, &[("t", 0, 1)], 8).await,
        vec![ErrorCode::None]
    );
    let r = c
        .send(
            DeleteGroupsRequest {
                groups_names: vec!["doomed".into()],
                ..Default::default()
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, 0);

    // __consumer_offsets: internal, 50 partitions, the group's records in partition 12.
    let md = metadata(&mut c, Some(&["__consumer_offsets"])).await;
    let topic = &md.topics[0];
    assert_eq!(topic.error_code, 0);
    assert!(topic.is_internal);
    assert_eq!(topic.partitions.len(), 50);
    assert!(offset_for(&mut c, "__consumer_offsets", 12, -1).await >= 4);
    assert_eq!(offset_for(&mut c, "__consumer_offsets", 11, -1).await, 0);
    broker.shutdown().await;

    let broker = boot().await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let got = fetch_offsets(&mut c, "my-group", None).await.unwrap();
    assert_eq!(
        got,
        vec![
            ("t".into(), 0, 8, "meta-0".into()),
            ("t".into(), 1, 9, "meta-1".into()),
        ]
    );
    // The group comes back Empty, with its protocol type; the old member is gone.
    let d = describe(&mut c, "my-group").await;
    assert_eq!(
        (d.group_state.as_str(), d.protocol_type.as_str()),
        ("Empty", "consumer")
    );
    assert_eq!(
        heartbeat(&mut c, "my-group", &m, 1).await,
        ErrorCode::UnknownMemberId
    );
    // The deleted group stays deleted.
    assert_eq!(describe(&mut c, "doomed").await.group_state, "Dead");
    assert_eq!(
        fetch_offsets(&mut c, "doomed", Some(&[("t", &[0])]))
            .await
            .unwrap()[0]
            .2,
        -1
    );
    // A new generation continues from the stored one.
    let j = c
        .send(join_request("my-group", "", None, 10_000), 3)
        .await
        .unwrap();
    assert_eq!((j.error_code, j.generation_id), (0, 2));
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_a_waiting_join() {
    let broker = start(&[]).await;
    let addr = broker.bootstrap_servers();
    let (a, pa) = join_new_member(&addr, "stop", 10_000).await;
    let (mut ca, _) = pa.await.unwrap();
    let _ = sync(&mut ca, sync_request("stop", &a, 1, vec![])).await;
    // B waits for A, which never rejoins; shutting down must not wait for the rebalance.
    let (_, pb) = join_new_member(&addr, "stop", 10_000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pb.is_finished(), "B's join is parked, waiting for A");
    let started = Instant::now();
    broker.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let (_, jb) = pb.await.unwrap();
    assert_eq!(code(jb.error_code), ErrorCode::NotCoordinator);
}
