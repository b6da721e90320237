//! Group consumption with kafka-client's `Consumer` against broker-lite
//! (`group.initial.rebalance.delay.ms=0`), fed by our producer: members split a topic and
//! read every record exactly once through joins and departures (committing after
//! processing and on revocation), cooperative rebalances revoke only the moved partitions,
//! a static member that restarts keeps its assignment without a rebalance, auto-commit
//! survives a crash and a close, the commit / committed / group metadata APIs, and pattern
//! subscriptions (whole-name matches, topics created later picked up at a metadata refresh,
//! internal topics only with `exclude.internal.topics=false`).

mod consumer_common;
mod producer_common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumer_common::*;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig, ConsumerConfigBuilder};
use kafka_client::consumer::{
    Consumer, ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition,
};
use kafka_client::Error;
use producer_common::*;

const PARTITIONS: i32 = 6;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn group_config(bootstrap: &str, group: &str) -> ConsumerConfigBuilder {
    ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .group_id(group)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .heartbeat_interval(Duration::from_millis(100))
        .session_timeout(Duration::from_secs(6))
        .max_poll_interval(Duration::from_secs(20))
        .fetch_max_wait(Duration::from_millis(100))
}

type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

fn readers(seen: &Seen, from: usize) -> BTreeSet<String> {
    seen.lock().unwrap()[from..]
        .iter()
        .map(|(_, _, m)| m.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_split_the_topic_and_read_every_record_exactly_once_through_rebalances() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "orders", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    let seen: Seen = Arc::default();

    // Two members split the topic.
    let a = Member::start("a", group_config(&bootstrap, "g1"), "orders", &seen);
    let b = Member::start("b", group_config(&bootstrap, "g1"), "orders", &seen);
    settled(&[&a, &b], PARTITIONS).await;
    assert_eq!((a.assigned().len(), b.assigned().len()), (3, 3));
    produce_all(&p, "orders", PARTITIONS, 50).await;
    read_exactly_once(&seen, PARTITIONS, 50).await;
    assert_eq!(readers(&seen, 0), BTreeSet::from(["a".into(), "b".into()]));

    // A third joins while records keep coming: eager rebalance, still exactly once.
    let a_before = a.assigned();
    let c = Member::start("c", group_config(&bootstrap, "g1"), "orders", &seen);
    produce_all(&p, "orders", PARTITIONS, 50).await;
    settled(&[&a, &b, &c], PARTITIONS).await;
    assert_eq!(
        (a.assigned().len(), b.assigned().len(), c.assigned().len()),
        (2, 2, 2)
    );
    let mark = seen.lock().unwrap().len();
    produce_all(&p, "orders", PARTITIONS, 50).await;
    read_exactly_once(&seen, PARTITIONS, 150).await;
    assert_eq!(readers(&seen, mark).len(), 3, "every member reads");
    // The eager protocol revoked everything the first members owned.
    assert!(
        a.events().contains(&Event::Revoked(a_before)),
        "{:?}",
        a.events()
    );

    // One leaves: its partitions move and resume from the committed offsets.
    let moved = b.assigned();
    b.stop().await;
    settled(&[&a, &c], PARTITIONS).await;
    let now_owned: BTreeSet<i32> = a.assigned().union(&c.assigned()).copied().collect();
    assert!(moved.is_subset(&now_owned));
    produce_all(&p, "orders", PARTITIONS, 50).await;
    read_exactly_once(&seen, PARTITIONS, 200).await;

    let committed = a
        .consumer
        .committed(&(0..PARTITIONS).map(|i| tp("orders", i)).collect::<Vec<_>>())
        .await
        .expect("committed");
    for (tp, o) in committed {
        assert_eq!(o.map(|o| o.offset), Some(200), "{tp}");
    }
    a.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_rebalance_revokes_only_the_moved_partitions() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "coop", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    let seen: Seen = Arc::default();
    let cfg =
        || group_config(&bootstrap, "g2").partition_assignment_strategy(["cooperative-sticky"]);

    let a = Member::start("a", cfg(), "coop", &seen);
    let deadline = Instant::now() + PROMPTLY;
    while a.assigned().len() != PARTITIONS as usize {
        assert!(Instant::now() < deadline, "a alone: {:?}", a.assigned());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    produce_all(&p, "coop", PARTITIONS, 40).await;
    read_exactly_once(&seen, PARTITIONS, 40).await;

    let b = Member::start("b", cfg(), "coop", &seen);
    produce_all(&p, "coop", PARTITIONS, 40).await;
    settled(&[&a, &b], PARTITIONS).await;
    read_exactly_once(&seen, PARTITIONS, 80).await;
    let (kept, moved) = (a.assigned(), b.assigned());
    assert_eq!((kept.len(), moved.len()), (3, 3));
    // a was asked to give up exactly what b got, nothing else; it never lost anything.
    assert_eq!(a.revoked_since(0), vec![moved.clone()], "{:?}", a.events());
    let b_assigned: BTreeSet<i32> = b
        .events()
        .into_iter()
        .flat_map(|e| match e {
            Event::Assigned(ps) => ps,
            other => panic!("b: {other:?}"),
        })
        .collect();
    assert_eq!(b_assigned, moved);

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_member_that_restarts_keeps_its_assignment_without_a_rebalance() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "static", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    let seen: Seen = Arc::default();
    let cfg = |instance: &str| {
        group_config(&bootstrap, "g3")
            .group_instance_id(instance)
            .session_timeout(Duration::from_secs(10))
    };

    let a = Member::start("a", cfg("instance-a"), "static", &seen);
    let b = Member::start("b", cfg("instance-b"), "static", &seen);
    settled(&[&a, &b], PARTITIONS).await;
    produce_all(&p, "static", PARTITIONS, 30).await;
    read_exactly_once(&seen, PARTITIONS, 30).await;
    let (a_owned, b_owned) = (a.assigned(), b.assigned());
    let a_events = a.events().len();
    let generation = a.consumer.group_metadata().unwrap().generation_id;
    assert_eq!(
        b.consumer
            .group_metadata()
            .unwrap()
            .group_instance_id
            .as_deref(),
        Some("instance-b")
    );

    // b restarts (a static member sends no LeaveGroup) and gets its partitions back.
    b.stop().await;
    let b2 = Member::start("b2", cfg("instance-b"), "static", &seen);
    produce_all(&p, "static", PARTITIONS, 30).await;
    settled(&[&a, &b2], PARTITIONS).await;
    assert_eq!(b2.assigned(), b_owned);
    assert_eq!(a.assigned(), a_owned);
    read_exactly_once(&seen, PARTITIONS, 60).await;
    assert_eq!(
        a.events().len(),
        a_events,
        "a saw a rebalance: {:?}",
        a.events()
    );
    assert_eq!(
        a.consumer.group_metadata().unwrap().generation_id,
        generation,
        "no new generation"
    );
    a.stop().await;
    b2.stop().await;
}

/// Polls `c` until `count` records arrived; returns (partition, offset) of each.
async fn drain(c: &Consumer, count: usize) -> Vec<(i32, i64)> {
    let deadline = Instant::now() + PROMPTLY;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records arrived",
            out.len()
        );
        for r in c.poll(Duration::from_millis(100)).await.expect("poll") {
            out.push((r.partition, r.offset));
        }
    }
    assert_eq!(out.len(), count, "more records than expected");
    out
}

async fn committed_offsets(c: &Consumer, topic: &str) -> BTreeMap<i32, Option<i64>> {
    let tps: Vec<TopicPartition> = (0..PARTITIONS).map(|i| tp(topic, i)).collect();
    c.committed(&tps)
        .await
        .expect("committed")
        .into_iter()
        .map(|(tp, o)| (tp.partition, o.map(|o| o.offset)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_survives_a_crash_and_a_close() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "auto", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    let cfg = |interval: Duration| {
        group_config(&bootstrap, "g4")
            .enable_auto_commit(true)
            .auto_commit_interval(interval)
            .session_timeout(Duration::from_millis(1500))
    };
    produce_all(&p, "auto", PARTITIONS, 10).await;

    // Auto-commit on its interval while polling; then the consumer "crashes" (dropped
    // without close: no commit, no LeaveGroup).
    let c1 = consumer(cfg(Duration::from_millis(200)));
    c1.subscribe(&["auto"]).unwrap();
    let got = drain(&c1, 60).await;
    assert!(got.iter().all(|(_, o)| *o < 10));
    let deadline = Instant::now() + PROMPTLY;
    loop {
        assert!(c1
            .poll(Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty());
        let committed = committed_offsets(&c1, "auto").await;
        if committed.values().all(|o| *o == Some(10)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not auto-committed: {committed:?}"
        );
    }
    drop(c1);

    // The next member starts after the committed offsets (once the crashed member's session
    // expired); its interval is long, so only close commits.
    produce_all(&p, "auto", PARTITIONS, 5).await;
    let c2 = consumer(cfg(Duration::from_secs(60)));
    c2.subscribe(&["auto"]).unwrap();
    let got = drain(&c2, 30).await;
    assert!(got.iter().all(|(_, o)| (10..15).contains(o)), "{got:?}");
    assert_eq!(
        committed_offsets(&c2, "auto")
            .await
            .values()
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([&Some(10)]),
        "no interval commit yet"
    );
    c2.close().await.unwrap();

    produce_all(&p, "auto", PARTITIONS, 5).await;
    let c3 = consumer(cfg(Duration::from_secs(60)));
    c3.subscribe(&["auto"]).unwrap();
    let got = drain(&c3, 30).await;
    assert!(got.iter().all(|(_, o)| (15..20).contains(o)), "{got:?}");
    assert!(c3
        .poll(Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());
    c3.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_apis_group_metadata_and_subscription_rules() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "api", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    produce_all(&p, "api", PARTITIONS, 10).await;

    // No group: no group APIs.
    let plain = consumer(
        ConsumerConfig::builder()
            .bootstrap_servers(&bootstrap)
            .auto_offset_reset(AutoOffsetReset::Earliest),
    );
    assert!(matches!(
        plain.subscribe(&["api"]),
        Err(Error::Config { .. })
    ));
    assert!(plain.group_metadata().is_err());
    assert!(plain.commit_sync(None).await.is_err());

    let log: Log = Arc::default();
    let c = consumer(group_config(&bootstrap, "g5"));
    let md = c.group_metadata().unwrap();
    assert_eq!((md.group_id.as_str(), md.generation_id), ("g5", -1));
    c.subscribe_with_listener(&["api"], Recorder::committing(&log))
        .unwrap();
    assert_eq!(c.subscription(), ["api"]);
    assert!(matches!(
        c.assign(vec![tp("api", 0)]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(c.subscribe::<&str>(&[]).is_err());
    drain(&c, 60).await;
    let md = c.group_metadata().unwrap();
    assert!(md.generation_id >= 1 && !md.member_id.is_empty(), "{md:?}");
    assert_eq!(c.assignment().len(), PARTITIONS as usize);

    // commit_async with explicit offsets, then committed() sees them.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let offsets = HashMap::from([(
        tp("api", 0),
        OffsetAndMetadata {
            offset: 7,
            leader_epoch: None,
            metadata: "seven".into(),
        },
    )]);
    c.commit_async(Some(offsets), move |result, offsets| {
        let _ = tx.send((result, offsets.clone()));
    })
    .unwrap();
    let (result, sent) = promptly("commit callback", rx).await.unwrap();
    result.expect("async commit");
    assert_eq!(sent[&tp("api", 0)].offset, 7);
    let committed = c.committed(&[tp("api", 0), tp("api", 1)]).await.unwrap();
    assert_eq!(committed[&tp("api", 0)].as_ref().unwrap().metadata, "seven");
    assert_eq!(committed[&tp("api", 1)], None);
    assert!(c
        .commit_sync(Some(HashMap::from([(
            tp("api", 1),
            OffsetAndMetadata::new(-1)
        )])))
        .await
        .is_err());
    c.commit_sync(None).await.unwrap();
    assert_eq!(
        committed_offsets(&c, "api")
            .await
            .values()
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([&Some(10)])
    );

    // unsubscribe revokes everything and leaves; then manual assignment is allowed and
    // starts at the committed offsets (partition 0 is moved back to 4).
    c.unsubscribe().await.unwrap();
    assert!(c.assignment().is_empty() && c.subscription().is_empty());
    assert_eq!(
        log.lock().unwrap().last(),
        Some(&Event::Revoked((0..PARTITIONS).collect()))
    );
    c.commit_sync(Some(HashMap::from([(
        tp("api", 0),
        OffsetAndMetadata::new(4),
    )])))
    .await
    .unwrap();
    c.assign(vec![tp("api", 0), tp("api", 1)]).unwrap();
    assert!(matches!(
        c.subscribe(&["api"]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(c.position(&tp("api", 0)).await.unwrap(), 4);
    assert_eq!(c.position(&tp("api", 1)).await.unwrap(), 10);
    let got = drain(&c, 6).await;
    assert!(got.iter().all(|(p, o)| *p == 0 && (4..10).contains(o)));
    // Manual assignment commits with generation -1.
    c.commit_sync(None).await.unwrap();
    assert_eq!(committed_offsets(&c, "api").await[&0], Some(10));
    c.close().await.unwrap();
}

/// Polls `c` until `count` records arrived; returns (topic, partition, offset) of each.
async fn drain_topics(c: &Consumer, count: usize) -> Vec<(String, i32, i64)> {
    let deadline = Instant::now() + PROMPTLY;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records arrived: {out:?}",
            out.len()
        );
        for r in c.poll(Duration::from_millis(100)).await.expect("poll") {
            out.push((r.topic.to_string(), r.partition, r.offset));
        }
    }
    assert_eq!(out.len(), count, "more records than expected");
    out
}

/// Polls `c` until `check` holds; returns how many records the polls returned.
async fn poll_until(c: &Consumer, what: &str, mut check: impl FnMut(&Consumer) -> bool) -> usize {
    let deadline = Instant::now() + PROMPTLY;
    let mut records = 0;
    while !check(c) {
        assert!(Instant::now() < deadline, "{what}: {:?}", c.subscription());
        records += c.poll(Duration::from_millis(50)).await.expect("poll").len();
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pattern_subscription_follows_matching_topics_as_they_appear() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    for t in ["events-a", "events-b", "other", "events"] {
        create_topic(&broker, t, PARTITIONS, &[]).await;
    }
    let p = producer(config(&bootstrap));
    for t in ["events-a", "events-b", "other", "events"] {
        produce_all(&p, t, PARTITIONS, 5).await;
    }
    let cfg = || group_config(&bootstrap, "g6").metadata_max_age(Duration::from_millis(200));

    // Bad patterns, and patterns are exclusive with manual assignment.
    let c = consumer(cfg());
    for bad in ["", "events-(", "[z-a]"] {
        assert!(
            matches!(c.subscribe_pattern(bad), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    c.assign(vec![tp("other", 0)]).unwrap();
    assert!(matches!(
        c.subscribe_pattern("events-.*"),
        Err(Error::InvalidArgument(_))
    ));
    c.assign(Vec::new()).unwrap();

    // The whole name must match: "events" is not an "events-.*" topic.
    let log: Log = Arc::default();
    c.subscribe_pattern_with_listener("events-.*", Recorder::committing(&log))
        .unwrap();
    let got = drain_topics(&c, 2 * 5 * PARTITIONS as usize).await;
    let topics: BTreeSet<&str> = got.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(topics, BTreeSet::from(["events-a", "events-b"]));
    assert_eq!(c.subscription(), ["events-a", "events-b"]);
    c.commit_sync(None).await.unwrap();

    // A topic created later is picked up at a metadata refresh (metadata.max.age.ms), the
    // group rebalances and its records are read too.
    create_topic(&broker, "events-c", PARTITIONS, &[]).await;
    produce_all(&p, "events-c", PARTITIONS, 5).await;
    let got = drain_topics(&c, 5 * PARTITIONS as usize).await;
    assert!(got.iter().all(|r| r.0 == "events-c"), "{got:?}");
    assert_eq!(c.subscription(), ["events-a", "events-b", "events-c"]);
    assert_eq!(c.assignment().len(), 3 * PARTITIONS as usize);
    let assigned_events = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Assigned(_)))
        .count();
    assert_eq!(assigned_events, 2, "one rebalance for the new topic");

    // A second member with the same pattern shares the matched topics.
    let c2 = consumer(cfg());
    c2.subscribe_pattern("events-.*").unwrap();
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let (a, b) = (c.assignment(), c2.assignment());
        let _ = tokio::join!(
            c.poll(Duration::from_millis(20)),
            c2.poll(Duration::from_millis(20))
        );
        if a.len() + b.len() == 3 * PARTITIONS as usize && !a.is_empty() && !b.is_empty() {
            assert!(a.iter().all(|tp| !b.contains(tp)), "{a:?} / {b:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{a:?} / {b:?}");
    }
    c2.close().await.unwrap();

    // Back to a plain topic list: patterns no longer apply.
    c.subscribe(&["other"]).unwrap();
    create_topic(&broker, "events-d", PARTITIONS, &[]).await;
    let got = drain_topics(&c, 5 * PARTITIONS as usize).await;
    assert!(got.iter().all(|r| r.0 == "other"), "{got:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.subscription(), ["other"]);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_subscription_leaves_out_internal_topics_unless_asked() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", PARTITIONS, &[]).await;
    // A commit makes sure __consumer_offsets exists.
    let committer = consumer(group_config(&bootstrap, "g7"));
    committer
        .commit_sync(Some(HashMap::from([(
            tp("t", 0),
            OffsetAndMetadata::new(0),
        )])))
        .await
        .unwrap();

    // Excluded (the default): the pattern matches nothing, yet the member is in the group.
    let c = consumer(group_config(&bootstrap, "g7").metadata_max_age(Duration::from_millis(200)));
    c.subscribe_pattern("__.*").unwrap();
    let read = poll_until(&c, "joined with no topics", |c| {
        c.group_metadata().unwrap().generation_id >= 1
    })
    .await;
    assert_eq!(read, 0);
    assert!(c.subscription().is_empty() && c.assignment().is_empty());

    // Included when exclude.internal.topics=false.
    let c2 = consumer(
        group_config(&bootstrap, "g8")
            .metadata_max_age(Duration::from_millis(200))
            .exclude_internal_topics(false),
    );
    c2.subscribe_pattern("__.*").unwrap();
    poll_until(&c2, "internal topic matched", |c| {
        c.subscription() == ["__consumer_offsets"] && !c.assignment().is_empty()
    })
    .await;
    c.close().await.unwrap();
    c2.close().await.unwrap();
}

/// Fails the callbacks named in `fail` (once each), or makes them hang for `hang`.
struct Faulty {
    fail: Mutex<BTreeSet<&'static str>>,
    hang: Option<Duration>,
    log: Log,
}

impl Faulty {
    fn new(fail: &[&'static str], hang: Option<Duration>) -> Faulty {
        Faulty {
            fail: Mutex::new(fail.iter().copied().collect()),
            hang,
            log: Log::default(),
        }
    }

    async fn run(&self, name: &'static str, event: Event) -> Result<(), Error> {
        self.log.lock().unwrap().push(event);
        if let Some(d) = self.hang {
            tokio::time::sleep(d).await;
        }
        if self.fail.lock().unwrap().remove(name) {
            return Err(Error::Callback(format!("{name} failed")));
        }
        Ok(())
    }
}

impl ConsumerRebalanceListener for Faulty {
    fn on_partitions_revoked<'a>(
        &'a self,
        _: &'a Consumer,
        ps: &'a [TopicPartition],
    ) -> BoxFut<'a> {
        Box::pin(self.run("revoked", Event::Revoked(partitions(ps))))
    }

    fn on_partitions_assigned<'a>(
        &'a self,
        _: &'a Consumer,
        ps: &'a [TopicPartition],
    ) -> BoxFut<'a> {
        Box::pin(self.run("assigned", Event::Assigned(partitions(ps))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_errors_are_returned_by_poll_unsubscribe_and_close() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "cb", PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    produce_all(&p, "cb", PARTITIONS, 5).await;
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();

    // on_partitions_assigned fails: the poll returns its error, the partitions are assigned
    // all the same and the next polls read them.
    let c = consumer(group_config(&bootstrap, "g9"));
    c.subscribe_with_listener(&["cb"], Faulty::new(&["assigned", "revoked"], None))
        .unwrap();
    let deadline = Instant::now() + PROMPTLY;
    let err = loop {
        match c.poll(Duration::from_millis(100)).await {
            Ok(records) => assert!(records.is_empty(), "records before the callback"),
            Err(e) => break e,
        }
        assert!(Instant::now() < deadline, "no rebalance");
    };
    assert_eq!(err, Error::Callback("assigned failed".into()));
    assert_eq!(partitions(&c.assignment()), all);
    assert_eq!(drain(&c, 5 * PARTITIONS as usize).await.len(), 30);

    // on_partitions_revoked fails on unsubscribe: the error is returned, the member has left.
    let err = c.unsubscribe().await.unwrap_err();
    assert_eq!(err, Error::Callback("revoked failed".into()));
    assert!(c.assignment().is_empty() && c.subscription().is_empty());
    assert_eq!(c.group_metadata().unwrap().generation_id, -1);

    // ... and on close: returned, and the consumer is closed all the same.
    c.subscribe_with_listener(&["cb"], Faulty::new(&["revoked"], None))
        .unwrap();
    poll_until(&c, "rejoined", |c| {
        c.assignment().len() == PARTITIONS as usize
    })
    .await;
    assert_eq!(
        c.close().await.unwrap_err(),
        Error::Callback("revoked failed".into())
    );
    assert!(matches!(
        c.poll(Duration::from_millis(10)).await,
        Err(Error::Closed)
    ));
    c.close().await.expect("closing twice is harmless");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_timeout_bounds_the_cleanup() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "slow", PARTITIONS, &[]).await;

    // The revocation callback hangs for a minute: close gives up after its timeout.
    let listener = Faulty::new(&[], None);
    let c = consumer(group_config(&bootstrap, "g10"));
    c.subscribe_with_listener(&["slow"], listener).unwrap();
    poll_until(&c, "joined", |c| {
        c.assignment().len() == PARTITIONS as usize
    })
    .await;
    c.subscribe_with_listener(&["slow"], Faulty::new(&[], Some(Duration::from_secs(60))))
        .unwrap();
    let started = Instant::now();
    c.close_with_timeout(Duration::from_millis(300))
        .await
        .expect("a timeout is not an error");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(matches!(
        c.poll(Duration::from_millis(10)).await,
        Err(Error::Closed)
    ));

    // Duration::ZERO: no cleanup (no LeaveGroup: the member stays until its session ends).
    let c = consumer(group_config(&bootstrap, "g11"));
    c.subscribe(&["slow"]).unwrap();
    poll_until(&c, "joined", |c| {
        c.assignment().len() == PARTITIONS as usize
    })
    .await;
    let started = Instant::now();
    c.close_with_timeout(Duration::ZERO).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut raw = kafka_integration_tests::broker_api::connect(&bootstrap).await;
    let described = raw
        .send(
            kafka_wire::messages::DescribeGroupsRequest {
                groups: vec!["g11".into()],
                ..Default::default()
            },
            5,
        )
        .await
        .unwrap();
    assert_eq!(
        described.groups[0].members.len(),
        1,
        "no LeaveGroup was sent"
    );
}
