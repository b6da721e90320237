//! Consumer-group scenarios with three and more of kafka-client's consumers against
//! broker-lite (`group.initial.rebalance.delay.ms=0`) over a 12-partition topic:
//!
//! - each assignor gives exactly what Kafka's algorithm gives, read through `assignment()`
//!   and checked against the broker's record (DescribeGroups): `range` contiguous quarters in
//!   member-id order, `roundrobin` dealt in turn in member-id order, `sticky` and
//!   `cooperative-sticky` balanced 4/4/4 keeping what each member had (cooperative: only the
//!   moved partitions are revoked, the newcomer gets exactly those);
//! - a member that dies without leaving (dropped: no commit, no LeaveGroup) keeps its
//!   partitions until its session times out, then the survivors take them over from the
//!   committed offsets: the only records read twice are the ones it processed and did not
//!   commit;
//! - committed offsets survive a broker crash (a live member carries on) and a clean restart
//!   (a new member resumes from them, metadata included);
//! - with commit-after-processing and commit-on-revoke, no record is lost and none is read
//!   twice while members join, leave and crash as records are produced continuously (eager
//!   and cooperative); the only duplicates are the crashed member's uncommitted records.

mod consumer_common;
mod producer_common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consumer_common::*;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig, ConsumerConfigBuilder};
use kafka_client::consumer::{Consumer, OffsetAndMetadata, TopicPartition};
use kafka_client::producer::Producer;
use kafka_integration_tests::broker_api;
use kafka_wire::consumer_protocol::decode_assignment;
use kafka_wire::messages::DescribeGroupsRequest;
use kafka_wire::ErrorCode;
use producer_common::*;
use tokio::task::JoinHandle;

const PARTITIONS: i32 = 12;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn all_tps(topic: &str) -> Vec<TopicPartition> {
    (0..PARTITIONS).map(|p| tp(topic, p)).collect()
}

fn group_config(bootstrap: &str, group: &str, strategy: &str) -> ConsumerConfigBuilder {
    ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .group_id(group)
        .partition_assignment_strategy([strategy])
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .heartbeat_interval(Duration::from_millis(100))
        .session_timeout(Duration::from_secs(6))
        .max_poll_interval(Duration::from_secs(20))
        .fetch_max_wait(Duration::from_millis(100))
}

/// The session timeout of members that crash: their partitions move this long after.
const SHORT_SESSION: Duration = Duration::from_millis(2000);

/// Waits until the group committed `offset` for every partition of `topic`.
async fn committed_everywhere(c: &Consumer, topic: &str, offset: i64) {
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let committed = c.committed(&all_tps(topic)).await.expect("committed");
        if committed
            .values()
            .all(|o| o.as_ref().map(|o| o.offset) == Some(offset))
        {
            return;
        }
        assert!(Instant::now() < deadline, "committed {committed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The group as the broker recorded it (DescribeGroups): state, protocol, and each member's
/// assignment by member id.
async fn broker_view(
    bootstrap: &str,
    group: &str,
    topic: &str,
) -> (String, String, BTreeMap<String, BTreeSet<i32>>) {
    let mut c = broker_api::connect(bootstrap).await;
    let mut r = c
        .send(
            DescribeGroupsRequest {
                groups: vec![group.into()],
                ..Default::default()
            },
            5,
        )
        .await
        .expect("DescribeGroups");
    let g = r.groups.remove(0);
    assert_eq!(ErrorCode::from_code(g.error_code), ErrorCode::None);
    let members = g
        .members
        .into_iter()
        .map(|m| {
            let (_, a) = decode_assignment(m.member_assignment).expect("assignment decodes");
            let ps = a
                .assigned_partitions
                .into_iter()
                .filter(|t| t.topic == topic)
                .flat_map(|t| t.partitions)
                .collect();
            (m.member_id, ps)
        })
        .collect();
    (g.group_state, g.protocol_data, members)
}

/// Checks that the broker recorded exactly the members' own view of the assignment.
async fn broker_agrees(bootstrap: &str, group: &str, topic: &str, strategy: &str, ms: &[&Member]) {
    let (state, protocol, recorded) = broker_view(bootstrap, group, topic).await;
    assert_eq!(state, "Stable");
    assert_eq!(protocol, strategy, "the group's protocol");
    let ours: BTreeMap<String, BTreeSet<i32>> =
        ms.iter().map(|m| (m.member_id(), m.assigned())).collect();
    assert_eq!(recorded, ours, "the broker's record of the assignment");
}

/// The members sorted by member id (the order Kafka's range and round-robin assignors use
/// for dynamic members).
fn by_member_id<'a>(members: &[&'a Member]) -> Vec<&'a Member> {
    let mut sorted = members.to_vec();
    sorted.sort_by_key(|m| m.member_id());
    sorted
}

// ---------------------------------------------------------------------------------------------
// Assignors
// ---------------------------------------------------------------------------------------------

/// Three members start together; once settled, member `i` in member-id order must own
/// `expected(i, 3)`; the broker recorded the same; every record is read once.
async fn three_members_exactly_as_kafka(
    strategy: &str,
    expected: fn(usize, usize) -> BTreeSet<i32>,
) {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let group = format!("assign-{strategy}");
    create_topic(&broker, "t", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    produce_all(&p, "t", PARTITIONS, 10).await;
    let seen: Seen = Arc::default();
    let cfg = || group_config(&bootstrap, &group, strategy);
    let a = Member::start("a", cfg(), "t", &seen);
    let b = Member::start("b", cfg(), "t", &seen);
    let c = Member::start("c", cfg(), "t", &seen);
    settled(&[&a, &b, &c], PARTITIONS).await;
    for (i, m) in by_member_id(&[&a, &b, &c]).into_iter().enumerate() {
        assert_eq!(
            m.assigned(),
            expected(i, 3),
            "{strategy}: member {i} ({}) in member-id order",
            m.member_id()
        );
    }
    broker_agrees(&bootstrap, &group, "t", strategy, &[&a, &b, &c]).await;
    read_exactly_once(&seen, PARTITIONS, 10).await;
    produce_all(&p, "t", PARTITIONS, 10).await;
    read_exactly_once(&seen, PARTITIONS, 20).await;
    for m in [a, b, c] {
        m.stop().await;
    }
}

/// Kafka's RangeAssignor for one topic: contiguous ranges, the first `partitions % members`
/// members one larger.
fn range(i: usize, members: usize) -> BTreeSet<i32> {
    let n = PARTITIONS as usize;
    let (per, extra) = (n / members, n % members);
    let start = i * per + i.min(extra);
    let len = per + usize::from(i < extra);
    (start..start + len).map(|p| p as i32).collect()
}

/// Kafka's RoundRobinAssignor for one topic: partitions dealt to the members in turn.
fn round_robin(i: usize, members: usize) -> BTreeSet<i32> {
    (0..PARTITIONS)
        .filter(|p| *p as usize % members == i)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn range_gives_contiguous_quarters_in_member_id_order() {
    assert_eq!(range(0, 3), BTreeSet::from([0, 1, 2, 3]));
    assert_eq!(range(2, 3), BTreeSet::from([8, 9, 10, 11]));
    three_members_exactly_as_kafka("range", range).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roundrobin_deals_the_partitions_in_member_id_order() {
    assert_eq!(round_robin(1, 3), BTreeSet::from([1, 4, 7, 10]));
    three_members_exactly_as_kafka("roundrobin", round_robin).await;
}

/// Members join one at a time under `strategy` (sticky or cooperative-sticky): each step is
/// balanced, every earlier member keeps a subset of what it had (it gives up only what the
/// newcomer needs), and under cooperative-sticky only those partitions are revoked and the
/// newcomer gets exactly them.
async fn sticky_joins(strategy: &str) {
    let cooperative = strategy == "cooperative-sticky";
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let group = format!("joins-{strategy}");
    create_topic(&broker, "t", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    produce_all(&p, "t", PARTITIONS, 10).await;
    let seen: Seen = Arc::default();
    let cfg = || group_config(&bootstrap, &group, strategy);

    let a = Member::start("a", cfg(), "t", &seen);
    settled(&[&a], PARTITIONS).await;
    read_exactly_once(&seen, PARTITIONS, 10).await;

    let mut members = vec![a];
    let mut per_partition = 10;
    for (name, size) in [("b", 6), ("c", 4)] {
        let before: Vec<BTreeSet<i32>> = members.iter().map(Member::assigned).collect();
        let marks: Vec<usize> = members.iter().map(|m| m.events().len()).collect();
        let newcomer = Member::start(name, cfg(), "t", &seen);
        // Records keep coming during the rebalance.
        produce_all(&p, "t", PARTITIONS, 10).await;
        per_partition += 10;
        members.push(newcomer);
        let refs: Vec<&Member> = members.iter().collect();
        settled(&refs, PARTITIONS).await;
        for m in &members {
            assert_eq!(m.assigned().len(), size, "{strategy}: {} balanced", m.name);
        }
        let newcomer = members.last().unwrap();
        let mut moved = BTreeSet::new();
        for ((m, before), mark) in members.iter().zip(&before).zip(&marks) {
            let after = m.assigned();
            assert!(
                after.is_subset(before),
                "{strategy}: {} kept {after:?} of {before:?}",
                m.name
            );
            let gave_up: BTreeSet<i32> = before.difference(&after).copied().collect();
            assert_eq!(gave_up.len(), before.len() - size, "only what it must");
            let revoked = m.revoked_since(*mark);
            if cooperative {
                // Only the moved partitions were revoked, once.
                assert_eq!(
                    revoked,
                    vec![gave_up.clone()],
                    "{}: {:?}",
                    m.name,
                    m.events()
                );
            } else {
                // Eager: everything was revoked first, the kept ones assigned back.
                assert_eq!(
                    revoked,
                    vec![before.clone()],
                    "{}: {:?}",
                    m.name,
                    m.events()
                );
            }
            moved.extend(gave_up);
        }
        assert_eq!(newcomer.assigned(), moved, "the newcomer got what moved");
        assert!(newcomer.revoked_since(0).is_empty());
        read_exactly_once(&seen, PARTITIONS, per_partition).await;
    }
    let refs: Vec<&Member> = members.iter().collect();
    broker_agrees(&bootstrap, &group, "t", strategy, &refs).await;
    for m in members {
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sticky_balances_and_keeps_partitions_as_members_join() {
    sticky_joins("sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_sticky_join_moves_only_what_it_must() {
    sticky_joins("cooperative-sticky").await;
}

// ---------------------------------------------------------------------------------------------
// A member that dies without leaving
// ---------------------------------------------------------------------------------------------

/// Three members; `c` (short session) dies without leaving after processing records it never
/// commits. Until its session times out the broker keeps it; then the survivors take its
/// partitions over from the committed offsets, so exactly its uncommitted records are read
/// twice and nothing is lost.
async fn member_dies_without_leaving(strategy: &str) {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let group = format!("dies-{strategy}");
    create_topic(&broker, "t", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    let seen: Seen = Arc::default();
    let cfg = || group_config(&bootstrap, &group, strategy);
    let a = Member::start("a", cfg(), "t", &seen);
    let b = Member::start("b", cfg(), "t", &seen);
    let c = Member::start("c", cfg().session_timeout(SHORT_SESSION), "t", &seen);
    settled(&[&a, &b, &c], PARTITIONS).await;
    produce_all(&p, "t", PARTITIONS, 20).await;
    read_exactly_once(&seen, PARTITIONS, 20).await;
    committed_everywhere(&a.consumer, "t", 20).await;

    let (a_before, b_before, c_owned) = (a.assigned(), b.assigned(), c.assigned());
    let c_id = c.member_id();
    let marks = (a.events().len(), b.events().len());
    c.arm_crash();
    produce_all(&p, "t", PARTITIONS, 10).await;
    let uncommitted = c.crashed().await;
    assert!(
        uncommitted
            .iter()
            .all(|(p, o)| c_owned.contains(p) && *o >= 20),
        "{uncommitted:?}"
    );
    // No LeaveGroup: the broker still counts it (its session has not timed out yet).
    let (_, _, recorded) = broker_view(&bootstrap, &group, "t").await;
    assert!(recorded.contains_key(&c_id), "c left: {recorded:?}");

    // Its session times out: the survivors own everything.
    settled(&[&a, &b], PARTITIONS).await;
    let (_, _, recorded) = broker_view(&bootstrap, &group, "t").await;
    assert_eq!(recorded.len(), 2, "c was removed: {recorded:?}");
    broker_agrees(&bootstrap, &group, "t", strategy, &[&a, &b]).await;
    match strategy {
        "range" => {
            for (i, m) in by_member_id(&[&a, &b]).into_iter().enumerate() {
                assert_eq!(m.assigned(), range(i, 2), "range over the survivors");
            }
        }
        "cooperative-sticky" => {
            // The survivors kept theirs and revoked nothing; c's were split between them.
            for (m, before, mark) in [(&a, &a_before, marks.0), (&b, &b_before, marks.1)] {
                assert!(m.assigned().is_superset(before), "{}", m.name);
                assert_eq!(m.assigned().len(), 6, "{}", m.name);
                assert!(m.revoked_since(mark).is_empty(), "{:?}", m.events());
            }
        }
        _ => unreachable!(),
    }

    // Nothing lost; the only records read twice are c's uncommitted ones, read again by a
    // survivor that resumed at the committed offset (20) of each of c's partitions.
    let dups = read_all(&seen, &first_n(PARTITIONS, 30)).await;
    let twice: BTreeSet<(i32, i64)> = dups.keys().copied().collect();
    assert_eq!(twice, uncommitted, "read twice");
    for (key, readers) in &dups {
        assert_eq!(readers.len(), 2, "{key:?}: {readers:?}");
        assert_eq!(readers[0], "c", "{key:?}: {readers:?}");
    }
    {
        let seen = seen.lock().unwrap();
        for &part in &c_owned {
            let resumed = seen
                .iter()
                .filter(|(p, _, m)| *p == part && m != "c")
                .map(|(_, o, _)| *o)
                .min();
            assert_eq!(resumed, Some(20), "partition {part}: resumed at the commit");
        }
    }
    committed_everywhere(&a.consumer, "t", 30).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_dies_without_leaving_loses_its_partitions_after_its_session_range() {
    member_dies_without_leaving("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_dies_without_leaving_loses_its_partitions_after_its_session_cooperative() {
    member_dies_without_leaving("cooperative-sticky").await;
}

// ---------------------------------------------------------------------------------------------
// Broker restarts
// ---------------------------------------------------------------------------------------------

/// broker-lite on its own runtime and thread, so that it can crash (runtime dropped, no
/// shutdown) as well as shut down cleanly, and restart on the same data dir and port.
struct BrokerThread {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BrokerThread {
    async fn start(dir: &Path, listen: SocketAddr) -> BrokerThread {
        let dir: PathBuf = dir.to_owned();
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<bool>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let broker = group_broker_builder()
                    .data_dir(dir)
                    .listen(listen)
                    .start()
                    .await
                    .expect("broker starts on the data dir");
                let _ = addr_tx.send(broker.local_addr());
                if stop_rx.await.unwrap_or(false) {
                    broker.shutdown().await;
                } else {
                    drop(broker); // no shutdown
                }
            });
            drop(rt); // a crash: every broker task dropped mid-flight, logs left unclosed
        });
        let addr = promptly("broker start", addr_rx)
            .await
            .expect("broker started");
        BrokerThread {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    async fn stop(mut self, clean: bool) {
        let _ = self.stop.take().unwrap().send(clean);
        let thread = self.thread.take().unwrap();
        promptly(
            "broker stops",
            tokio::task::spawn_blocking(move || thread.join()),
        )
        .await
        .unwrap()
        .expect("broker thread");
    }
}

/// Polls `c` until `count` records arrived; returns (partition, offset) of each.
async fn drain(c: &Consumer, count: usize) -> Vec<(i32, i64)> {
    let deadline = Instant::now() + PROMPTLY;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records arrived: {:?}",
            out.len(),
            c.assignment()
        );
        for r in c.poll(Duration::from_millis(100)).await.expect("poll") {
            out.push((r.partition, r.offset));
        }
    }
    assert_eq!(out.len(), count, "more records than expected");
    out
}

/// Exactly offsets `from..to` of every partition, each once.
fn exactly(got: &[(i32, i64)], from: i64, to: i64) {
    let set: BTreeSet<(i32, i64)> = got.iter().copied().collect();
    assert_eq!(set.len(), got.len(), "duplicates");
    let want: BTreeSet<(i32, i64)> = (0..PARTITIONS)
        .flat_map(|p| (from..to).map(move |o| (p, o)))
        .collect();
    assert_eq!(set, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_offsets_survive_a_broker_crash_and_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b1 = BrokerThread::start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let addr = b1.addr;
    let bootstrap = b1.bootstrap();
    {
        let mut raw = broker_api::connect(&bootstrap).await;
        broker_api::create_topic(&mut raw, "durable", PARTITIONS, &[]).await;
    }
    let p = producer(config(&bootstrap));
    produce_all(&p, "durable", PARTITIONS, 10).await;
    close(&p).await;

    // A member reads and commits everything, then the broker crashes under it.
    let log: Log = Arc::default();
    let a = consumer(group_config(&bootstrap, "durable", "range").client_id("a"));
    a.subscribe_with_listener(
        &["durable"],
        // No commit on revoke: the offsets committed below must stay as they are.
        Recorder {
            log: log.clone(),
            uncommitted: Uncommitted::default(),
            commit: false,
        },
    )
    .unwrap();
    exactly(&drain(&a, 120).await, 0, 10);
    a.commit_sync(None).await.unwrap();
    committed_everywhere(&a, "durable", 10).await;
    b1.stop(false).await;

    // Restarted on the same data dir and port: the member carries on from its positions
    // (whether it kept its membership or rejoined and resumed from its commits) and commits
    // with metadata.
    let b2 = BrokerThread::start(dir.path(), addr).await;
    committed_everywhere(&a, "durable", 10).await;
    let p = producer(config(&bootstrap));
    produce_all(&p, "durable", PARTITIONS, 5).await;
    close(&p).await;
    exactly(&drain(&a, 60).await, 10, 15);
    a.commit_sync(Some(
        (0..PARTITIONS)
            .map(|p| {
                (
                    tp("durable", p),
                    OffsetAndMetadata {
                        offset: 15 - i64::from(p % 3),
                        leader_epoch: None,
                        metadata: format!("p{p}"),
                    },
                )
            })
            .collect::<HashMap<_, _>>(),
    ))
    .await
    .unwrap();
    println!("member a across the crash: {:?}", log.lock().unwrap());
    assert!(a.poll(Duration::from_millis(200)).await.unwrap().is_empty());
    a.close().await.unwrap();

    // A clean restart (on a new port), then a new member resumes from the commits.
    b2.stop(true).await;
    let b3 = BrokerThread::start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let bootstrap = b3.bootstrap();
    let b = consumer(group_config(&bootstrap, "durable", "range").client_id("b"));
    let committed = b.committed(&all_tps("durable")).await.unwrap();
    for p in 0..PARTITIONS {
        let o = committed[&tp("durable", p)].clone().expect("committed");
        assert_eq!(
            (o.offset, o.metadata.as_str()),
            (15 - i64::from(p % 3), format!("p{p}").as_str())
        );
    }
    let p = producer(config(&bootstrap));
    produce_all(&p, "durable", PARTITIONS, 5).await;
    close(&p).await;
    b.subscribe(&["durable"]).unwrap();
    let got = drain(&b, (0..PARTITIONS).map(|p| 5 + (p % 3) as usize).sum()).await;
    let want: BTreeSet<(i32, i64)> = (0..PARTITIONS)
        .flat_map(|p| (15 - i64::from(p % 3)..20).map(move |o| (p, o)))
        .collect();
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), want);
    b.commit_sync(None).await.unwrap();
    committed_everywhere(&b, "durable", 20).await;
    b.close().await.unwrap();
    b3.stop(true).await;
}

// ---------------------------------------------------------------------------------------------
// Continuous production through rebalances
// ---------------------------------------------------------------------------------------------

/// Produces to every partition in turn until told to stop; returns every record's
/// (partition, offset).
fn produce_continuously(
    p: Producer,
    topic: &'static str,
) -> (Arc<AtomicBool>, JoinHandle<BTreeSet<(i32, i64)>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut futs = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                for partition in 0..PARTITIONS {
                    futs.push(send(&p, indexed_record(topic, partition, i)).await);
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            promptly("flush", p.flush()).await.unwrap();
            delivered_all(futs)
                .await
                .into_iter()
                .map(|md| (md.partition, md.offset))
                .collect()
        }
    });
    (stop, task)
}

/// While records are produced continuously, members join, leave (close: commit on revoke,
/// LeaveGroup) and one crashes. Every record is read; the only ones read twice are those the
/// crashed member processed and never committed.
async fn continuous_rebalances(strategy: &str) {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let group = format!("continuous-{strategy}");
    create_topic(&broker, "stream", PARTITIONS, &[]).await;
    let seen: Seen = Arc::default();
    let cfg = || group_config(&bootstrap, &group, strategy);
    let (stop_producing, producing) = produce_continuously(producer(config(&bootstrap)), "stream");
    let mut generations = BTreeSet::new();

    let a = Member::start("a", cfg(), "stream", &seen);
    settled(&[&a], PARTITIONS).await;
    let b = Member::start("b", cfg(), "stream", &seen);
    settled(&[&a, &b], PARTITIONS).await;
    let c = Member::start("c", cfg().session_timeout(SHORT_SESSION), "stream", &seen);
    settled(&[&a, &b, &c], PARTITIONS).await;
    generations.insert(a.generation());
    a.stop().await;
    settled(&[&b, &c], PARTITIONS).await;
    generations.insert(b.generation());
    let d = Member::start("d", cfg(), "stream", &seen);
    settled(&[&b, &c, &d], PARTITIONS).await;
    generations.insert(b.generation());
    c.arm_crash();
    let uncommitted = c.crashed().await;
    settled(&[&b, &d], PARTITIONS).await;
    generations.insert(b.generation());
    let e = Member::start("e", cfg(), "stream", &seen);
    settled(&[&b, &d, &e], PARTITIONS).await;
    generations.insert(b.generation());
    b.stop().await;
    settled(&[&d, &e], PARTITIONS).await;
    generations.insert(d.generation());

    stop_producing.store(true, Ordering::SeqCst);
    let produced = promptly("producer", producing).await.unwrap();
    let dups = read_all(&seen, &produced).await;
    let twice: BTreeSet<(i32, i64)> = dups.keys().copied().collect();
    assert_eq!(twice, uncommitted, "read twice: {dups:?}");
    for (key, readers) in &dups {
        assert_eq!(readers.len(), 2, "{key:?}: {readers:?}");
        assert_eq!(readers[0], "c", "{key:?}: {readers:?}");
    }
    let readers: BTreeSet<String> = seen.lock().unwrap().iter().map(|r| r.2.clone()).collect();
    assert_eq!(readers.len(), 5, "every member read: {readers:?}");
    println!(
        "[{strategy}] {} records produced, {} generations seen, {} read twice (c's \
         uncommitted)",
        produced.len(),
        generations.len(),
        twice.len()
    );
    let end: BTreeMap<i32, i64> = produced.iter().fold(BTreeMap::new(), |mut m, (p, o)| {
        let e = m.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
        m
    });
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let committed = d.consumer.committed(&all_tps("stream")).await.unwrap();
        let committed: BTreeMap<i32, i64> = committed
            .into_iter()
            .map(|(tp, o)| (tp.partition, o.map_or(-1, |o| o.offset)))
            .collect();
        if committed == end {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "committed {committed:?}, end {end:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.stop().await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_record_is_lost_through_eager_rebalances_while_producing() {
    continuous_rebalances("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_record_is_lost_through_cooperative_rebalances_while_producing() {
    continuous_rebalances("cooperative-sticky").await;
}
