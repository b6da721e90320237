//! kafka-client's consumer group state machine (`consumer::coordinator`) against broker-lite's
//! classic group coordinator: two members, each driven by a tiny driver over a `RawClient`,
//! join one after the other and must end up Stable with disjoint assignments that cover every
//! partition, with both the eager (range) and the cooperative (cooperative-sticky) protocol;
//! then one member closes (LeaveGroup) and the other takes every partition.

mod consumer_common;
mod producer_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_client::consumer::assignor::{
    ConsumerPartitionAssignor, CooperativeStickyAssignor, RangeAssignor, TopicPartition,
};
use kafka_client::consumer::coordinator::{
    Action, ConsumerCoordinator, CoordinatorConfig, MemberState,
};
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;

const PARTITIONS: i32 = 6;

/// What a member's driver publishes for the test to check.
#[derive(Debug, Default)]
struct View {
    state: Option<MemberState>,
    owned: BTreeSet<TopicPartition>,
    /// Partitions currently owned according to the listener callbacks.
    by_callbacks: BTreeSet<TopicPartition>,
    rejoin_pending: bool,
}

async fn run_member(
    addr: String,
    assignor: Arc<dyn ConsumerPartitionAssignor>,
    view: Arc<Mutex<View>>,
    stop: Arc<AtomicBool>,
) {
    let mut client = RawClient::connect(&addr).await.expect("connect");
    let mut config = CoordinatorConfig::new("coordinator-it");
    config.assignors = vec![assignor];
    config.heartbeat_interval = Duration::from_millis(100);
    config.session_timeout = Duration::from_secs(10);
    config.rebalance_timeout = Duration::from_secs(20);
    config.auto_commit_interval = None;
    let mut c = ConsumerCoordinator::new(config, Instant::now()).expect("config");
    c.subscribe(["t"]);
    c.handle_metadata(&BTreeMap::from([("t".to_string(), PARTITIONS)]));
    let mut closing = false;
    loop {
        let now = Instant::now();
        c.poll_called(now);
        while let Some(action) = c.next_action(Instant::now()) {
            match action {
                Action::FindCoordinator(f) => {
                    let r = client.send(f.request(4), 4).await.expect("FindCoordinator");
                    c.handle_find_coordinator(f.id, Instant::now(), &r);
                }
                Action::JoinGroup(j) => {
                    let r = client.send(j.request, 9).await.expect("JoinGroup");
                    c.handle_join_group(j.id, Instant::now(), &r);
                }
                Action::SyncGroup(s) => {
                    let r = client.send(s.request, 5).await.expect("SyncGroup");
                    c.handle_sync_group(s.id, Instant::now(), &r);
                }
                Action::Heartbeat(h) => {
                    let r = client.send(h.request, 4).await.expect("Heartbeat");
                    c.handle_heartbeat(h.id, Instant::now(), &r);
                }
                Action::LeaveGroup(l) => {
                    let r = client.send(l.request(5), 5).await.expect("LeaveGroup");
                    c.handle_leave_group(l.id, Instant::now(), &r);
                }
                Action::PartitionsRevoked(ps) | Action::PartitionsLost(ps) => {
                    let mut v = view.lock().unwrap();
                    for p in ps {
                        assert!(v.by_callbacks.remove(&p), "revoked {p} not owned");
                    }
                }
                Action::PartitionsAssigned(ps) => {
                    let mut v = view.lock().unwrap();
                    for p in ps {
                        assert!(v.by_callbacks.insert(p.clone()), "{p} assigned twice");
                    }
                }
                Action::UpdateMetadata(topics) => {
                    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                    let m = metadata(&mut client, Some(&names)).await;
                    let counts = m
                        .topics
                        .iter()
                        .filter(|t| t.error_code == 0)
                        .map(|t| {
                            (
                                t.name.clone().unwrap_or_default(),
                                t.partitions.len() as i32,
                            )
                        })
                        .collect();
                    c.handle_metadata(&counts);
                }
                Action::AutoCommitDue => {}
                Action::Fatal(e) => panic!("fatal: {e}"),
            }
        }
        {
            let mut v = view.lock().unwrap();
            v.state = Some(c.state());
            v.owned = c.owned_partitions().into_iter().collect();
            v.rejoin_pending = c.rejoin_needed_or_pending();
        }
        if closing {
            return;
        }
        if stop.load(Ordering::SeqCst) {
            c.close(Instant::now());
            closing = true;
            continue;
        }
        let wake = c
            .poll_timeout()
            .map_or(Duration::from_millis(20), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(20));
        tokio::time::sleep(wake).await;
    }
}

fn settled(views: &[&Arc<Mutex<View>>]) -> bool {
    let mut all = BTreeSet::new();
    let mut total = 0;
    for v in views {
        let v = v.lock().unwrap();
        if v.state != Some(MemberState::Stable) || v.rejoin_pending || v.owned != v.by_callbacks {
            return false;
        }
        total += v.owned.len();
        all.extend(v.owned.iter().cloned());
    }
    total == all.len() && all.len() == PARTITIONS as usize
}

async fn two_members_share_the_partitions(assignor: fn() -> Arc<dyn ConsumerPartitionAssignor>) {
    let broker = consumer_common::group_broker().await;
    let addr = broker.local_addr().to_string();
    let mut admin = connect(&addr).await;
    create_topic(&mut admin, "t", PARTITIONS, &[]).await;

    let (v1, v2) = (
        Arc::new(Mutex::new(View::default())),
        Arc::new(Mutex::new(View::default())),
    );
    let (s1, s2) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let m1 = tokio::spawn(run_member(addr.clone(), assignor(), v1.clone(), s1.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !settled(&[&v1]) {
        assert!(Instant::now() < deadline, "first member alone: {v1:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(v1.lock().unwrap().owned.len(), PARTITIONS as usize);

    let m2 = tokio::spawn(run_member(addr.clone(), assignor(), v2.clone(), s2.clone()));
    // Settled for a little while (no rebalance still going on).
    let mut stable_since: Option<Instant> = None;
    loop {
        assert!(Instant::now() < deadline, "two members: {v1:?} {v2:?}");
        if settled(&[&v1, &v2]) {
            let since = *stable_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(500) {
                break;
            }
        } else {
            stable_since = None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (n1, n2) = (
        v1.lock().unwrap().owned.len(),
        v2.lock().unwrap().owned.len(),
    );
    assert_eq!((n1, n2), (3, 3), "balanced");

    // The second member leaves; the first gets everything back.
    s2.store(true, Ordering::SeqCst);
    m2.await.expect("member 2");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(settled(&[&v1]) && v1.lock().unwrap().owned.len() == PARTITIONS as usize) {
        assert!(Instant::now() < deadline, "after leave: {v1:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s1.store(true, Ordering::SeqCst);
    m1.await.expect("member 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_members_end_up_stable_with_disjoint_complete_assignments() {
    two_members_share_the_partitions(|| Arc::new(RangeAssignor)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_members_end_up_stable_with_disjoint_complete_assignments() {
    two_members_share_the_partitions(|| Arc::new(CooperativeStickyAssignor)).await;
}
