//! Helpers shared by the consumer integration tests (`consumer_*.rs`,
//! `client_group_interop.rs`): building a consumer, filling every partition of a topic, the
//! rebalance-listener event log, and group members polling in their own tasks with the
//! checks on what they read. Needs `mod producer_common;` beside it.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_lite::{Broker, BrokerBuilder};
use bytes::Bytes;
use kafka_client::config::ConsumerConfigBuilder;
use kafka_client::consumer::{Consumer, ConsumerRebalanceListener, TopicPartition};
use kafka_client::producer::Producer;
use kafka_client::{Error, ProducerRecord};
use kafka_wire::ErrorCode;
use tokio::task::JoinHandle;

use crate::producer_common::{delivered_all, promptly, send, PROMPTLY};

/// A consumer from `builder` (bytes keys and values).
pub fn consumer(builder: ConsumerConfigBuilder) -> Consumer {
    Consumer::new(builder.build().expect("valid consumer config")).expect("consumer starts")
}

/// Record `i` of `partition` of `topic`: no key, value `<partition>-<i>`.
pub fn indexed_record(topic: &str, partition: i32, i: usize) -> ProducerRecord {
    ProducerRecord {
        topic: topic.to_owned(),
        partition: Some(partition),
        key: None,
        value: Some(Bytes::from(format!("{partition}-{i}"))),
        headers: Vec::new(),
        timestamp: None,
    }
}

/// Produces `count` records to each of the `partitions` partitions of `topic`
/// ([`indexed_record`]), and waits until all are delivered.
pub async fn produce_all(p: &Producer, topic: &str, partitions: i32, count: usize) {
    let mut futs = Vec::new();
    for partition in 0..partitions {
        for i in 0..count {
            futs.push(send(p, indexed_record(topic, partition, i)).await);
        }
    }
    promptly("flush", p.flush()).await.unwrap();
    delivered_all(futs).await;
}

/// What a rebalance listener saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `on_partitions_assigned`.
    Assigned(BTreeSet<i32>),
    /// `on_partitions_revoked`.
    Revoked(BTreeSet<i32>),
    /// `on_partitions_lost`.
    Lost(BTreeSet<i32>),
}

/// A listener's events, in order.
pub type Log = Arc<Mutex<Vec<Event>>>;

/// The partition numbers of `ps`.
pub fn partitions(ps: &[TopicPartition]) -> BTreeSet<i32> {
    ps.iter().map(|tp| tp.partition).collect()
}

// ---------------------------------------------------------------------------------------------
// Group members
// ---------------------------------------------------------------------------------------------

/// A broker-lite builder for group tests: no initial rebalance delay, short sessions allowed.
pub fn group_broker_builder() -> BrokerBuilder {
    Broker::builder()
        .config("group.initial.rebalance.delay.ms", "0")
        .unwrap()
        .config("group.min.session.timeout.ms", "100")
        .unwrap()
}

/// A started [`group_broker_builder`] broker.
pub async fn group_broker() -> Broker {
    group_broker_builder().start().await.expect("broker starts")
}

/// Every record read: (partition, offset, member).
pub type Seen = Arc<Mutex<Vec<(i32, i64, String)>>>;
/// Records a member processed and has not committed yet: (partition, offset).
pub type Uncommitted = Arc<Mutex<BTreeSet<(i32, i64)>>>;

type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// Records the callbacks in `log`, checking that revoked partitions are still assigned (their
/// positions can be committed) and assigned ones are in the assignment. When `commit` is set
/// it commits the consumed positions on revocation, then clears `uncommitted`; a failure is
/// returned by the poll running the callback.
pub struct Recorder {
    /// The events seen.
    pub log: Log,
    /// Commit on revocation.
    pub commit: bool,
    /// Cleared by each commit on revocation.
    pub uncommitted: Uncommitted,
}

impl Recorder {
    /// A recorder into `log` that commits on revocation.
    pub fn committing(log: &Log) -> Recorder {
        Recorder {
            log: log.clone(),
            commit: true,
            uncommitted: Uncommitted::default(),
        }
    }
}

impl ConsumerRebalanceListener for Recorder {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        ps: &'a [TopicPartition],
    ) -> BoxFut<'a> {
        Box::pin(async move {
            for tp in ps {
                assert!(
                    consumer.assignment().contains(tp),
                    "{tp} revoked, not assigned"
                );
            }
            self.log
                .lock()
                .unwrap()
                .push(Event::Revoked(partitions(ps)));
            if self.commit {
                consumer.commit_sync(None).await?;
                self.uncommitted.lock().unwrap().clear();
            }
            Ok(())
        })
    }

    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        ps: &'a [TopicPartition],
    ) -> BoxFut<'a> {
        Box::pin(async move {
            for tp in ps {
                assert!(
                    consumer.assignment().contains(tp),
                    "{tp} assigned, not in assignment"
                );
            }
            self.log
                .lock()
                .unwrap()
                .push(Event::Assigned(partitions(ps)));
            Ok(())
        })
    }

    fn on_partitions_lost<'a>(&'a self, _: &'a Consumer, ps: &'a [TopicPartition]) -> BoxFut<'a> {
        Box::pin(async move {
            self.log.lock().unwrap().push(Event::Lost(partitions(ps)));
            Ok(())
        })
    }
}

/// A group member polling in its own task: processes (records in `seen`) each poll, then
/// commits it; commits on revocation too ([`Recorder`]). Stopped gracefully (close: commit
/// on revoke, LeaveGroup) or crashed (after processing its next non-empty poll it is
/// dropped: no commit, no close, no LeaveGroup).
pub struct Member {
    /// The name its records are marked with in `seen`, and its client id.
    pub name: String,
    /// The consumer.
    pub consumer: Arc<Consumer>,
    log: Log,
    uncommitted: Uncommitted,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Member {
    /// Starts a member `name` (also its client id) subscribed to `topic`.
    pub fn start(name: &str, config: ConsumerConfigBuilder, topic: &str, seen: &Seen) -> Member {
        let consumer = Arc::new(consumer(config.client_id(name)));
        let log: Log = Arc::default();
        let uncommitted: Uncommitted = Arc::default();
        consumer
            .subscribe_with_listener(
                &[topic],
                Recorder {
                    log: log.clone(),
                    commit: true,
                    uncommitted: uncommitted.clone(),
                },
            )
            .expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let crash = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (consumer, stop, crash, seen, uncommitted, name) = (
                consumer.clone(),
                stop.clone(),
                crash.clone(),
                seen.clone(),
                uncommitted.clone(),
                name.to_owned(),
            );
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let records = consumer
                        .poll(Duration::from_millis(50))
                        .await
                        .unwrap_or_else(|e| panic!("{name}: poll failed: {e}"));
                    if records.is_empty() {
                        continue;
                    }
                    {
                        let mut seen = seen.lock().unwrap();
                        let mut uncommitted = uncommitted.lock().unwrap();
                        for r in &records {
                            seen.push((r.partition, r.offset, name.clone()));
                            uncommitted.insert((r.partition, r.offset));
                        }
                    }
                    if crash.load(Ordering::SeqCst) {
                        // Processed, never committed; the consumer is dropped with the task.
                        return;
                    }
                    // Commit after processing; a rebalance may refuse it (the listener
                    // commits on revocation instead).
                    match consumer.commit_sync(None).await {
                        Ok(()) => uncommitted.lock().unwrap().clear(),
                        Err(e) if e.code() == Some(ErrorCode::RebalanceInProgress) => {}
                        Err(e) => panic!("{name}: commit failed: {e}"),
                    }
                }
                consumer.close().await.expect("close");
            }
        });
        Member {
            name: name.to_owned(),
            consumer,
            log,
            uncommitted,
            stop,
            crash,
            task,
        }
    }

    /// The partitions it owns now.
    pub fn assigned(&self) -> BTreeSet<i32> {
        partitions(&self.consumer.assignment())
    }

    /// Its member id.
    pub fn member_id(&self) -> String {
        self.consumer.group_metadata().unwrap().member_id
    }

    /// Its generation.
    pub fn generation(&self) -> i32 {
        self.consumer.group_metadata().unwrap().generation_id
    }

    /// Its listener's events.
    pub fn events(&self) -> Vec<Event> {
        self.log.lock().unwrap().clone()
    }

    /// Revoked partitions in the events from `from` on (panics on a loss).
    pub fn revoked_since(&self, from: usize) -> Vec<BTreeSet<i32>> {
        self.events()[from..]
            .iter()
            .filter_map(|e| match e {
                Event::Revoked(ps) => Some(ps.clone()),
                Event::Lost(ps) => panic!("{} lost {ps:?}: {:?}", self.name, self.events()),
                Event::Assigned(_) => None,
            })
            .collect()
    }

    /// Fails the test when its task ended (a failed poll or commit).
    pub fn check_alive(&self) {
        assert!(
            !self.task.is_finished(),
            "{}: the member's task ended",
            self.name
        );
    }

    /// Stops it gracefully and waits for its task.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        promptly(&format!("{} stops", self.name), self.task)
            .await
            .expect("member task");
    }

    /// Arms the crash: the member's next non-empty poll is processed and never committed,
    /// then the consumer is dropped (no LeaveGroup).
    pub fn arm_crash(&self) {
        self.crash.store(true, Ordering::SeqCst);
    }

    /// Waits for an armed crash; returns what the member processed and did not commit.
    pub async fn crashed(self) -> BTreeSet<(i32, i64)> {
        assert!(self.crash.load(Ordering::SeqCst), "crash not armed");
        promptly(&format!("{} crashes", self.name), self.task)
            .await
            .expect("member task");
        assert_eq!(Arc::strong_count(&self.consumer), 1, "the last handle");
        drop(self.consumer);
        let uncommitted = self.uncommitted.lock().unwrap().clone();
        assert!(!uncommitted.is_empty(), "crashed after processing a poll");
        uncommitted
    }
}

/// Waits until the members' assignments are disjoint, non-empty, cover the `partitions`
/// partitions and are of one generation, and stay so for half a second (no rebalance still
/// going on).
pub async fn settled(members: &[&Member], partitions: i32) {
    let all: BTreeSet<i32> = (0..partitions).collect();
    let deadline = Instant::now() + PROMPTLY;
    let mut since: Option<Instant> = None;
    loop {
        let sets: Vec<BTreeSet<i32>> = members.iter().map(|m| m.assigned()).collect();
        let generations: BTreeSet<i32> = members.iter().map(|m| m.generation()).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        let ok = sets.iter().all(|s| !s.is_empty())
            && total == union.len()
            && union == all
            && generations.len() == 1;
        if ok {
            let s = *since.get_or_insert_with(Instant::now);
            if s.elapsed() > Duration::from_millis(500) {
                return;
            }
        } else {
            since = None;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {sets:?}, generations {generations:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Offsets 0..`per_partition` of the `partitions` partitions.
pub fn first_n(partitions: i32, per_partition: i64) -> BTreeSet<(i32, i64)> {
    (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect()
}

/// Waits (up to `within`, calling `alive` meanwhile to fail early when a member died) until
/// every (partition, offset) in `want` was read; then, a little later so that duplicates and
/// strays would show up, checks that nothing else was read and returns the keys read more
/// than once with their readers.
pub async fn read_all_within(
    seen: &Seen,
    want: &BTreeSet<(i32, i64)>,
    within: Duration,
    alive: &mut dyn FnMut(),
) -> BTreeMap<(i32, i64), Vec<String>> {
    let read = || -> BTreeSet<(i32, i64)> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|(p, o, _)| (*p, *o))
            .collect()
    };
    let deadline = Instant::now() + within;
    loop {
        let missing = want.difference(&read()).count();
        if missing == 0 {
            break;
        }
        alive();
        assert!(
            Instant::now() < deadline,
            "{missing} of {} records never read",
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = read();
    let extra: Vec<_> = got.difference(want).collect();
    assert!(extra.is_empty(), "unexpected records read: {extra:?}");
    let mut counts: BTreeMap<(i32, i64), Vec<String>> = BTreeMap::new();
    for (p, o, m) in seen.lock().unwrap().iter() {
        counts.entry((*p, *o)).or_default().push(m.clone());
    }
    counts.retain(|_, v| v.len() > 1);
    counts
}

/// [`read_all_within`] [`PROMPTLY`].
pub async fn read_all(
    seen: &Seen,
    want: &BTreeSet<(i32, i64)>,
) -> BTreeMap<(i32, i64), Vec<String>> {
    read_all_within(seen, want, PROMPTLY, &mut || {}).await
}

/// Waits until every record of [`first_n`]`(partitions, per_partition)` was read, each
/// exactly once (and nothing else).
pub async fn read_exactly_once(seen: &Seen, partitions: i32, per_partition: i64) {
    let dups = read_all(seen, &first_n(partitions, per_partition)).await;
    assert!(dups.is_empty(), "read more than once: {dups:?}");
}
