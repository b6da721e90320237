//! Quickstart: broker-lite in-process, the idempotent producer and a consumer group.
//!
//! 1. Starts broker-lite in-process (ephemeral port, temporary data directory,
//!    `group.initial.rebalance.delay.ms=0` so the group forms at once).
//! 2. Creates the topic `quickstart` with 6 partitions (CreateTopics).
//! 3. Forms the group `quickstart-group` of two `kafka-client` consumers (`subscribe`): both
//!    poll until the group's assignment gives each of them some of the partitions.
//! 4. Produces 10,000 keyed records with the idempotent [`Producer`] (murmur2 keyed
//!    partitioning as the Java client, lz4), keeping the offset of each one
//!    ([`RecordMetadata`](kafka_client::RecordMetadata)).
//! 5. The two consumers read them: process every record a poll returned (check it), *then*
//!    `commit_sync`. Every record must arrive exactly once, in offset order per partition,
//!    with the key and value the producer wrote at that offset; the group's committed
//!    offsets must end up at the end of every partition.
//!
//! Nothing waits on a sleep: the group is awaited through `poll`, the producer through its
//! delivery futures, and the consumers stop as soon as the last record is processed.
//!
//! ```sh
//! cargo run --release -p kafka-examples --example quickstart
//! ```

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig, ProducerConfig};
use kafka_client::consumer::{
    is_wakeup, Consumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition,
};
use kafka_client::partitioner::partition_for_key;
use kafka_client::producer::Producer;
use kafka_client::serializer::StringSerializer;
use kafka_client::ProducerRecord;
use kafka_wire::records::Compression;
use kafka_wire::ErrorCode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TOPIC: &str = "quickstart";
const GROUP: &str = "quickstart-group";
const PARTITIONS: i32 = 6;
const RECORDS: usize = 10_000;
/// Bounds each phase, so that a problem is an error rather than a hang.
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);

type StringConsumer = Consumer<String, String>;

/// What the producer wrote: per partition, `(key, value)` at index = offset.
type Written = BTreeMap<i32, Vec<(String, String)>>;

/// Checks every consumed record against what was written, across both consumers.
struct Verifier {
    written: Written,
    /// The next offset expected per partition (whichever member reads it).
    next: BTreeMap<i32, i64>,
    /// Records per member and partition.
    counts: BTreeMap<&'static str, BTreeMap<i32, usize>>,
    total: usize,
    finished: Option<Instant>,
}

impl Verifier {
    fn new(written: Written) -> Self {
        Verifier {
            next: written.keys().map(|&p| (p, 0)).collect(),
            written,
            counts: BTreeMap::new(),
            total: 0,
            finished: None,
        }
    }

    /// Processes one record: it must be the next one of its partition (no gap, no
    /// duplicate) and hold what the producer wrote at that offset.
    fn process(
        &mut self,
        member: &'static str,
        r: &ConsumerRecord<String, String>,
    ) -> Result<(), BoxError> {
        let next = self
            .next
            .get_mut(&r.partition)
            .ok_or_else(|| format!("record from unexpected partition {}", r.partition))?;
        if r.offset != *next {
            return Err(format!(
                "{member} read {}-{}@{} but offset {next} was expected (duplicate or gap)",
                r.topic, r.partition, r.offset
            )
            .into());
        }
        let written = &self.written[&r.partition][r.offset as usize];
        if (r.key.as_ref(), r.value.as_ref()) != (Some(&written.0), Some(&written.1)) {
            return Err(format!(
                "{}-{}@{} holds {:?}={:?}, the producer wrote {:?}={:?}",
                r.topic, r.partition, r.offset, r.key, r.value, written.0, written.1
            )
            .into());
        }
        *next += 1;
        *self
            .counts
            .entry(member)
            .or_default()
            .entry(r.partition)
            .or_default() += 1;
        self.total += 1;
        if self.total == RECORDS {
            self.finished = Some(Instant::now());
        }
        Ok(())
    }
}

/// Commits what was processed before partitions move to the other member (only needed if
/// the group rebalanced while reading; it does not in this demo).
struct CommitOnRevoke;

impl ConsumerRebalanceListener<String, String> for CommitOnRevoke {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a StringConsumer,
        _partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<(), kafka_client::Error>> {
        Box::pin(async move { consumer.commit_sync(None).await })
    }
}

fn partitions_of(consumer: &StringConsumer) -> Vec<i32> {
    let mut ps: Vec<i32> = consumer
        .assignment()
        .iter()
        .map(|tp| tp.partition)
        .collect();
    ps.sort_unstable();
    ps
}

fn topic_partitions() -> Vec<TopicPartition> {
    (0..PARTITIONS)
        .map(|p| TopicPartition {
            topic: TOPIC.into(),
            partition: p,
        })
        .collect()
}

fn consumer(bootstrap: &str, client_id: &str) -> Result<StringConsumer, BoxError> {
    let config = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .client_id(client_id)
        .group_id(GROUP)
        .enable_auto_commit(false) // we commit ourselves, after processing
        .auto_offset_reset(AutoOffsetReset::Earliest)
        // The first member learns that the second one joined from a heartbeat: a short
        // interval (default 3 s) lets the group settle in a fraction of a second.
        .heartbeat_interval(Duration::from_millis(100))
        // An empty fetch is answered after 100 ms rather than 500: broker-lite's shutdown
        // waits for the long polls still in flight.
        .fetch_max_wait(Duration::from_millis(100))
        .build()?;
    let consumer = Consumer::builder(config, StringSerializer, StringSerializer).build()?;
    consumer.subscribe_with_listener(&[TOPIC], CommitOnRevoke)?;
    Ok(consumer)
}

/// Polls both members until each owns some partitions and together they own the topic.
async fn form_group(members: &[(&'static str, StringConsumer); 2]) -> Result<(), BoxError> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let [(_, a), (_, b)] = members;
        let poll = Duration::from_millis(50);
        let (ra, rb) = tokio::join!(a.poll(poll), b.poll(poll));
        if !ra?.is_empty() || !rb?.is_empty() {
            return Err("records arrived before any was produced".into());
        }
        let (pa, pb) = (partitions_of(a), partitions_of(b));
        let mut all: Vec<i32> = pa.iter().chain(&pb).copied().collect();
        all.sort_unstable();
        if !pa.is_empty() && !pb.is_empty() && all == (0..PARTITIONS).collect::<Vec<_>>() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the group did not form: {pa:?} / {pb:?}").into());
        }
    }
}

/// One member's loop: poll, process (verify), then commit, until every record of the
/// topic has been processed by one member or the other.
async fn consume(
    name: &'static str,
    consumer: &StringConsumer,
    other: &StringConsumer,
    verifier: &Mutex<Verifier>,
) -> Result<(), BoxError> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        if verifier.lock().unwrap().total == RECORDS {
            return Ok(());
        }
        let records = match consumer.poll(Duration::from_secs(1)).await {
            Ok(records) => records,
            // The other member processed the last record and woke this one up.
            Err(e) if is_wakeup(&e) => continue,
            Err(e) => return Err(e.into()),
        };
        if records.is_empty() {
            if Instant::now() > deadline {
                let done = verifier.lock().unwrap().total;
                return Err(format!("only {done} of {RECORDS} records consumed").into());
            }
            continue;
        }
        // 1. Process.
        let complete = {
            let mut v = verifier.lock().unwrap();
            for r in &records {
                v.process(name, r)?;
            }
            v.total == RECORDS
        };
        // 2. Then commit. Refused while the group rebalances: the listener commits on
        //    revocation instead.
        match consumer.commit_sync(None).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::RebalanceInProgress) => {}
            Err(e) => return Err(e.into()),
        }
        if complete {
            other.wakeup(); // stop its poll now rather than at its timeout
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let started = Instant::now();
    let broker = broker_lite::Broker::builder()
        .config("group.initial.rebalance.delay.ms", "0")?
        .start()
        .await?;
    let bootstrap = broker.bootstrap_servers();
    println!(
        "broker-lite listening on {bootstrap} (started in {:.1?})",
        started.elapsed()
    );

    kafka_examples::create_topics(&bootstrap, &[TOPIC], PARTITIONS).await?;
    println!("created topic '{TOPIC}' with {PARTITIONS} partitions");

    // The group forms first, so that the two members split the partitions before there is
    // anything to read (records produced earlier would work too, but the first member to
    // join would read some of them alone before the second one arrives).
    let group_start = Instant::now();
    let members = [
        ("consumer-1", consumer(&bootstrap, "consumer-1")?),
        ("consumer-2", consumer(&bootstrap, "consumer-2")?),
    ];
    form_group(&members).await?;
    println!(
        "group '{GROUP}' formed in {:.1?}: consumer-1 {:?}, consumer-2 {:?}",
        group_start.elapsed(),
        partitions_of(&members[0].1),
        partitions_of(&members[1].1),
    );

    // Produce: keyed records with the idempotent producer (the default), lz4-compressed.
    let produce_start = Instant::now();
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap.as_str())
        .client_id("quickstart-producer")
        .compression(Compression::Lz4)
        .build()?;
    let producer: Producer<String, String> =
        Producer::builder(config, StringSerializer, StringSerializer).build()?;
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("user-{}", i % 97);
        let value = format!("event {i} for {key}");
        let record = ProducerRecord::new(TOPIC, value.clone()).with_key(key.clone());
        // `send` returns once the record is queued; the future reports its offset.
        deliveries.push((key, value, producer.send(record).await?));
    }
    let partition_count = NonZeroU32::new(PARTITIONS as u32).ok_or("no partitions")?;
    let mut by_offset: BTreeMap<i32, BTreeMap<i64, (String, String)>> = BTreeMap::new();
    for (key, value, delivery) in deliveries {
        let metadata = delivery.await?;
        if metadata.partition as u32 != partition_for_key(key.as_bytes(), partition_count) {
            return Err(format!("{key} is not where the Java client puts it").into());
        }
        if let Some(dup) = by_offset
            .entry(metadata.partition)
            .or_default()
            .insert(metadata.offset, (key, value))
        {
            return Err(format!("two records at {metadata:?}: {dup:?}").into());
        }
    }
    let producer_id = producer
        .producer_id_and_epoch()
        .map_or("none".to_string(), |p| {
            format!("producer id {}, epoch {}", p.producer_id, p.epoch)
        });
    producer.close(Duration::from_secs(10)).await?;
    let produce_time = produce_start.elapsed();
    // The offsets the producer got must be 0..n in every partition.
    let mut written: Written = (0..PARTITIONS).map(|p| (p, Vec::new())).collect();
    for (p, records) in by_offset {
        let offsets: Vec<i64> = records.keys().copied().collect();
        if offsets != (0..records.len() as i64).collect::<Vec<_>>() {
            return Err(format!("partition {p}: offsets are not 0..{}", records.len()).into());
        }
        written.insert(p, records.into_values().collect());
    }
    println!(
        "produced {RECORDS} keyed records in {produce_time:.1?} (idempotent: {producer_id}; lz4)"
    );

    // Consume with both members at once; each commits after processing.
    let consume_start = Instant::now();
    let verifier = Mutex::new(Verifier::new(written));
    let [(name_a, a), (name_b, b)] = &members;
    let (ra, rb) = tokio::join!(
        consume(name_a, a, b, &verifier),
        consume(name_b, b, a, &verifier)
    );
    ra?;
    rb?;
    let verifier = verifier.into_inner().unwrap();
    let consume_time = verifier.finished.unwrap_or_else(Instant::now) - consume_start;
    println!("consumed {} records in {consume_time:.1?}:", verifier.total);
    for (name, consumer) in &members {
        let counts = verifier.counts.get(name).cloned().unwrap_or_default();
        let per_partition: Vec<String> = counts.iter().map(|(p, n)| format!("p{p}={n}")).collect();
        println!(
            "  {name}: partitions {:?}, {} records ({})",
            partitions_of(consumer),
            counts.values().sum::<usize>(),
            per_partition.join(", ")
        );
    }

    // Every record once, in order: each partition was read up to its end...
    for (p, records) in &verifier.written {
        if verifier.next[p] != records.len() as i64 {
            return Err(format!("partition {p}: read up to {}", verifier.next[p]).into());
        }
    }
    // ... and the group's committed offsets are the end of every partition.
    let tps = topic_partitions();
    let committed = members[0].1.committed(&tps).await?;
    let mut ends = Vec::new();
    for tp in &tps {
        let c = committed[tp].as_ref().map_or(-1, |o| o.offset);
        let end = verifier.written[&tp.partition].len() as i64;
        if c != end {
            return Err(format!("partition {}: committed {c}, end {end}", tp.partition).into());
        }
        ends.push(format!("p{}={c}", tp.partition));
    }
    println!(
        "every record arrived exactly once, in order per partition, at the offset the producer \
         reported; committed offsets at the end of each partition ({})",
        ends.join(", ")
    );

    let close_start = Instant::now();
    let (ca, cb) = tokio::join!(members[0].1.close(), members[1].1.close());
    ca?;
    cb?;
    broker.shutdown().await;
    println!(
        "consumers left the group and broker-lite shut down in {:.1?}; total {:.1?}",
        close_start.elapsed(),
        started.elapsed()
    );
    Ok(())
}
