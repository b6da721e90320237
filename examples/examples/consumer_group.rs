//! Consumer group: two `kafka-client` consumers share a topic in one group, at-least-once.
//!
//! Starts broker-lite in-process, runs two consumers of the group `order-processors`
//! (`subscribe`, range assignor), produces 6,000 keyed records and lets the two process them.
//! Each consumer follows the at-least-once pattern:
//!
//! * process every record a poll returned, *then* `commit_sync` the positions: a crash
//!   between the two re-delivers records (at least once), never skips them;
//! * a rebalance listener commits what was processed when partitions are revoked, so the
//!   member that takes them over starts exactly where this one stopped.
//!
//! The second consumer joins while the first already owns every partition: the output shows
//! the revocation, the split, the records each one processed and the committed offsets.
//!
//! With `--bootstrap host:port` it runs against that broker instead (any Kafka broker),
//! on a topic and group named for the run (`orders-<millis>`, `order-processors-<millis>`)
//! so that earlier runs do not count.
//!
//! ```sh
//! cargo run -p kafka-examples --example consumer_group
//! cargo run -p kafka-examples --example consumer_group -- --bootstrap localhost:9092
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig, ProducerConfig};
use kafka_client::consumer::{Consumer, ConsumerRebalanceListener, TopicPartition};
use kafka_client::producer::Producer;
use kafka_client::serializer::StringSerializer;
use kafka_client::{Error, ProducerRecord};
use kafka_wire::ErrorCode;

use kafka_examples::{bootstrap_arg, create_topics, BoxError};

const PARTITIONS: i32 = 6;
const RECORDS: usize = 6_000;

type OrderConsumer = Consumer<String, String>;

/// Where the example runs: the broker, the topic and the group.
#[derive(Debug, Clone)]
struct Target {
    bootstrap: String,
    topic: String,
    group: String,
}

const USAGE: &str = "usage: consumer_group [--bootstrap host:port]\n\
    Without --bootstrap, broker-lite is started in-process.";

/// What the members processed: (partition, offset) -> member.
type Processed = Arc<Mutex<BTreeMap<(i32, i64), Vec<&'static str>>>>;

fn names(ps: &[TopicPartition]) -> Vec<i32> {
    ps.iter().map(|tp| tp.partition).collect()
}

/// Each member's current partitions, as its listener saw them.
type Assignments = Arc<Mutex<BTreeMap<&'static str, BTreeSet<i32>>>>;

/// Commits the processed offsets before partitions move to another member.
struct CommitOnRevoke {
    member: &'static str,
    assignments: Assignments,
}

impl ConsumerRebalanceListener<String, String> for CommitOnRevoke {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a OrderConsumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            println!(
                "  [{}] revoked {:?}: committing",
                self.member,
                names(partitions)
            );
            if let Some(owned) = self.assignments.lock().unwrap().get_mut(self.member) {
                owned.retain(|p| !names(partitions).contains(p));
            }
            // Still assigned here: their positions are what was processed. A failure is
            // returned by the poll that ran this callback.
            consumer.commit_sync(None).await
        })
    }

    fn on_partitions_assigned<'a>(
        &'a self,
        _consumer: &'a OrderConsumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            println!("  [{}] assigned {:?}", self.member, names(partitions));
            self.assignments
                .lock()
                .unwrap()
                .entry(self.member)
                .or_default()
                .extend(names(partitions));
            Ok(())
        })
    }
}

/// One group member: poll, process, commit, until `stop`.
async fn run_member(
    member: &'static str,
    target: Target,
    processed: Processed,
    assignments: Assignments,
    stop: Arc<AtomicBool>,
) -> Result<Vec<i32>, BoxError> {
    let config = ConsumerConfig::builder()
        .bootstrap_servers(target.bootstrap.as_str())
        .client_id(member)
        .group_id(target.group.as_str())
        .enable_auto_commit(false) // we commit ourselves, after processing
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .build()?;
    let consumer: OrderConsumer =
        Consumer::builder(config, StringSerializer, StringSerializer).build()?;
    consumer.subscribe_with_listener(
        &[target.topic.as_str()],
        CommitOnRevoke {
            member,
            assignments,
        },
    )?;
    while !stop.load(Ordering::SeqCst) {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        if records.is_empty() {
            continue;
        }
        // 1. Process.
        {
            let mut processed = processed.lock().unwrap_or_else(|e| e.into_inner());
            for r in &records {
                processed
                    .entry((r.partition, r.offset))
                    .or_default()
                    .push(member);
            }
        }
        // 2. Commit what was processed. During a rebalance the commit may be refused; the
        //    listener commits on revocation instead, so nothing is lost.
        match consumer.commit_sync(None).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::RebalanceInProgress) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let assignment = names(&consumer.assignment());
    consumer.close().await?;
    Ok(assignment)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (broker, target) = match bootstrap_arg(USAGE) {
        Some(bootstrap) => {
            // Names of this run only: earlier runs' records and offsets stay out of it.
            let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
            let target = Target {
                bootstrap,
                topic: format!("orders-{run}"),
                group: format!("order-processors-{run}"),
            };
            (None, target)
        }
        None => {
            let broker = broker_lite::Broker::builder()
                .config("group.initial.rebalance.delay.ms", "0")?
                .start()
                .await?;
            let target = Target {
                bootstrap: broker.bootstrap_servers(),
                topic: "orders".into(),
                group: "order-processors".into(),
            };
            println!("broker-lite listening on {}", target.bootstrap);
            (Some(broker), target)
        }
    };
    let Target {
        bootstrap,
        topic,
        group,
    } = target.clone();

    create_topics(&bootstrap, &[&topic], PARTITIONS).await?;
    let producer: Producer<String, String> = Producer::builder(
        ProducerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .build()?,
        StringSerializer,
        StringSerializer,
    )
    .build()?;
    let partitions = producer.partitions_for(&topic).await?;
    println!("topic '{topic}' has {} partitions", partitions.len());

    let processed: Processed = Arc::default();
    let assignments: Assignments = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let spawn = |member: &'static str| {
        tokio::spawn(run_member(
            member,
            target.clone(),
            processed.clone(),
            assignments.clone(),
            stop.clone(),
        ))
    };
    // Waits until the members' assignments cover the topic, each member owning some.
    let settled = |members: usize| {
        let assignments = assignments.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let now = assignments.lock().unwrap().clone();
                let owned: usize = now.values().map(BTreeSet::len).sum();
                let busy = now.values().filter(|s| !s.is_empty()).count();
                if owned == PARTITIONS as usize && busy == members {
                    return Ok(now);
                }
                if Instant::now() > deadline {
                    return Err(format!("the group did not settle: {now:?}"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    println!("consumer A joins {group}");
    let a = spawn("A");
    settled(1).await?;
    println!("consumer B joins {group}: the group rebalances (A learns of it by heartbeat)");
    let b = spawn("B");
    let split = settled(2).await?;
    println!("assignment: {split:?}");

    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("customer-{}", i % 101);
        let record = ProducerRecord::new(topic.as_str(), format!("order {i}")).with_key(key);
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        delivery.await?;
    }
    println!("produced {RECORDS} orders");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = processed.lock().unwrap_or_else(|e| e.into_inner()).len();
        if done >= RECORDS {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {done} of {RECORDS} orders processed").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("all {RECORDS} orders processed in {:?}", started.elapsed());
    stop.store(true, Ordering::SeqCst);
    let a_assignment = a.await??;
    let b_assignment = b.await??;

    let (per_member, twice) = {
        let processed = processed.lock().unwrap_or_else(|e| e.into_inner());
        let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
        for members in processed.values() {
            for m in members {
                *per_member.entry(m).or_default() += 1;
            }
        }
        let twice = processed.values().filter(|m| m.len() > 1).count();
        (per_member, twice)
    };
    println!("final assignment: A {a_assignment:?}, B {b_assignment:?}");
    for (member, count) in &per_member {
        println!("  consumer {member} processed {count} orders");
    }
    println!("  processed more than once: {twice} (at-least-once; 0 when nobody crashes)");

    // The group's committed offsets are the end of every partition.
    let checker: OrderConsumer = Consumer::builder(
        ConsumerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .group_id(group.as_str())
            .build()?,
        StringSerializer,
        StringSerializer,
    )
    .build()?;
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition {
            topic: topic.as_str().into(),
            partition: p,
        })
        .collect();
    let committed = checker.committed(&tps).await?;
    let ends = checker.end_offsets(&tps).await?;
    let mut all_committed = BTreeSet::new();
    for tp in &tps {
        let c = committed[tp].as_ref().map_or(-1, |o| o.offset);
        println!(
            "  partition {}: committed {c} of {}",
            tp.partition, ends[tp]
        );
        all_committed.insert(c == ends[tp]);
    }
    checker.close().await?;
    producer.close(Duration::from_secs(5)).await?;
    if let Some(broker) = broker {
        broker.shutdown().await;
        println!("broker-lite shut down");
    }
    if all_committed != BTreeSet::from([true]) {
        return Err("some offsets were not committed".into());
    }
    println!("every partition committed to its end");
    Ok(())
}
