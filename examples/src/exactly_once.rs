//! Exactly-once consume-transform-produce (KIP-98, KIP-447), the logic of the
//! `exactly_once` example and of its test: a processor reads the input topic, writes one
//! transformed record per input record to the output topic and commits its input offsets in
//! the same transaction as its output (`send_offsets_to_transaction`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kafka_client::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel, ProducerConfig};
use kafka_client::consumer::{Consumer, OffsetAndMetadata, TopicPartition};
use kafka_client::producer::Producer;
use kafka_client::serializer::StringSerializer;
use kafka_client::ProducerRecord;

pub use crate::BoxError;

/// Partitions of the input and output topics.
pub const PARTITIONS: i32 = 3;

/// Where the example runs.
#[derive(Debug, Clone)]
pub struct Target {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The input topic (orders).
    pub input: String,
    /// The output topic (invoices).
    pub output: String,
    /// The processors' consumer group.
    pub group: String,
    /// The processors' `transactional.id`.
    pub transactional_id: String,
}

fn input_partitions(target: &Target) -> Vec<TopicPartition> {
    (0..PARTITIONS)
        .map(|p| TopicPartition {
            topic: target.input.as_str().into(),
            partition: p,
        })
        .collect()
}

/// The transformation: order `n` of a customer becomes invoice `n`.
pub fn transform(order: &str) -> String {
    order.replacen("order", "invoice", 1)
}

/// How a processor run ends.
#[derive(Debug, Clone, Copy)]
pub enum Run {
    /// Crash (drop everything without committing) once this many orders were committed,
    /// in the middle of the next transaction.
    CrashAfter(usize),
    /// Process until the group's position reaches the end of the input.
    ToTheEnd,
}

/// One processor instance: a consumer of the input in the group and a transactional
/// producer of the output. Returns how many orders it committed.
pub async fn run_processor(name: &str, target: &Target, run: Run) -> Result<usize, BoxError> {
    let consumer: Consumer<String, String> = Consumer::builder(
        ConsumerConfig::builder()
            .bootstrap_servers(target.bootstrap.as_str())
            .client_id(name)
            .group_id(target.group.as_str())
            // Static membership (KIP-345): a restarted processor takes over its crashed
            // predecessor's member at once instead of waiting out its session timeout.
            .group_instance_id(format!("{}-0", target.transactional_id))
            .enable_auto_commit(false) // offsets are committed by the transactions
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .isolation_level(IsolationLevel::ReadCommitted)
            .build()?,
        StringSerializer,
        StringSerializer,
    )
    .build()?;
    let producer: Producer<String, String> = Producer::builder(
        ProducerConfig::builder()
            .bootstrap_servers(target.bootstrap.as_str())
            .client_id(name)
            .transactional_id(target.transactional_id.as_str())
            .build()?,
        StringSerializer,
        StringSerializer,
    )
    .build()?;
    // Fences any earlier instance with this transactional id and has the coordinator
    // finish (abort) its open transaction.
    producer.init_transactions().await?;
    println!(
        "[{name}] init_transactions done: {:?}",
        producer.producer_id_and_epoch()
    );
    consumer.subscribe(&[target.input.as_str()])?;

    let tps = input_partitions(target);
    let mut committed = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            return Err(format!("[{name}] did not finish in time").into());
        }
        if let Run::ToTheEnd = run {
            let ends = consumer.end_offsets(&tps).await?;
            let assigned = consumer.assignment();
            if assigned.len() == tps.len() {
                let mut done = true;
                for tp in &tps {
                    done &= consumer.position(tp).await? >= ends[tp];
                }
                if done {
                    break;
                }
            }
        }
        let records = consumer.poll(Duration::from_millis(100)).await?;
        if records.is_empty() {
            continue;
        }
        let crash = matches!(run, Run::CrashAfter(n) if committed >= n);

        producer.begin_transaction()?;
        let mut offsets: HashMap<TopicPartition, OffsetAndMetadata> = HashMap::new();
        for r in &records {
            let order = r.value.as_deref().unwrap_or_default();
            let mut out = ProducerRecord::new(target.output.as_str(), transform(order));
            if let Some(key) = &r.key {
                out = out.with_key(key.clone());
            }
            // Delivery is confirmed by the commit (which flushes); the futures need no await.
            drop(producer.send(out).await?);
            offsets.insert(
                TopicPartition {
                    topic: r.topic.as_ref().into(),
                    partition: r.partition,
                },
                OffsetAndMetadata::new(r.offset + 1),
            );
        }
        if crash {
            producer.flush().await?; // the output is in the log, uncommitted
            println!(
                "[{name}] crashing with {} uncommitted invoices in an open transaction",
                records.len()
            );
            // A crash: no commit_transaction, no abort_transaction. A forced close
            // (`Duration::ZERO`) sends nothing more and leaves the transaction open, as a
            // killed process would (dropping the producer would close it gracefully, which
            // aborts the open transaction, as Java's close does).
            producer.close(Duration::ZERO).await.ok();
            drop(producer);
            drop(consumer);
            return Ok(committed);
        }
        producer
            .send_offsets_to_transaction(&offsets, &consumer.group_metadata()?)
            .await?;
        producer.commit_transaction().await?;
        committed += records.len();
    }
    println!("[{name}] reached the end of the input");
    consumer.close().await?;
    producer.close(Duration::from_secs(5)).await?;
    Ok(committed)
}

/// Reads `topic` from the beginning to its end (as the isolation level sees it): order
/// number -> times seen.
pub async fn read_all(
    target: &Target,
    topic: &str,
    isolation: IsolationLevel,
) -> Result<BTreeMap<usize, usize>, BoxError> {
    let consumer: Consumer<String, String> = Consumer::builder(
        ConsumerConfig::builder()
            .bootstrap_servers(target.bootstrap.as_str())
            .isolation_level(isolation)
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .build()?,
        StringSerializer,
        StringSerializer,
    )
    .build()?;
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition {
            topic: topic.into(),
            partition: p,
        })
        .collect();
    consumer.assign(tps.clone())?;
    // For read_committed the end is the last stable offset.
    let ends = consumer.end_offsets(&tps).await?;
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut done = true;
        for tp in &tps {
            done &= consumer.position(tp).await? >= ends[tp];
        }
        if done {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("could not read {topic} to its end").into());
        }
        for r in consumer.poll(Duration::from_millis(100)).await? {
            let value = r.value.unwrap_or_default();
            let n: usize = value
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("unexpected record {value:?}"))?;
            *seen.entry(n).or_default() += 1;
        }
    }
    consumer.close().await?;
    Ok(seen)
}

/// What a run of [`run`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Orders produced to the input.
    pub orders: usize,
    /// Orders processor #1 committed before it crashed.
    pub committed_before_crash: usize,
    /// Orders processor #2 committed.
    pub committed_after_restart: usize,
    /// Distinct invoices a `read_committed` reader sees.
    pub distinct_committed: usize,
    /// Orders without an invoice (read_committed).
    pub missing: usize,
    /// Orders with more than one invoice (read_committed).
    pub duplicated: usize,
    /// Invoices a `read_uncommitted` reader sees in all.
    pub uncommitted_total: usize,
}

impl Report {
    /// Whether every order was invoiced exactly once, and the crashed transaction's output
    /// was really written (and hidden from read_committed).
    pub fn exactly_once(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.distinct_committed == self.orders
            && self.uncommitted_total > self.orders
    }
}

/// The whole scenario: creates the topics, produces `orders` orders, runs processor #1 until
/// it crashes mid-transaction after about a third, restarts it as processor #2 with the same
/// `transactional.id`, and reads the output back with both isolation levels.
///
/// # Errors
/// Client errors, or a processor not reaching the end in time.
pub async fn run(target: &Target, orders: usize) -> Result<Report, BoxError> {
    crate::create_topics(
        &target.bootstrap,
        &[&target.input, &target.output],
        PARTITIONS,
    )
    .await?;
    let producer: Producer<String, String> = Producer::builder(
        ProducerConfig::builder()
            .bootstrap_servers(target.bootstrap.as_str())
            .build()?,
        StringSerializer,
        StringSerializer,
    )
    .build()?;
    let mut deliveries = Vec::with_capacity(orders);
    for i in 0..orders {
        let record = ProducerRecord::new(target.input.as_str(), format!("order {i}"))
            .with_key(format!("customer-{}", i % 37));
        deliveries.push(producer.send(record).await?);
    }
    for d in deliveries {
        d.await?;
    }
    producer.close(Duration::from_secs(5)).await?;
    println!("produced {orders} orders to '{}'", target.input);

    let committed_before_crash =
        run_processor("processor-1", target, Run::CrashAfter(orders / 3)).await?;
    println!("[processor-1] committed {committed_before_crash} orders before the crash");
    let committed_after_restart = run_processor("processor-2", target, Run::ToTheEnd).await?;
    println!("[processor-2] committed {committed_after_restart} orders");

    let committed = read_all(target, &target.output, IsolationLevel::ReadCommitted).await?;
    let uncommitted = read_all(target, &target.output, IsolationLevel::ReadUncommitted).await?;
    Ok(Report {
        orders,
        committed_before_crash,
        committed_after_restart,
        distinct_committed: committed.len(),
        missing: (0..orders).filter(|n| !committed.contains_key(n)).count(),
        duplicated: committed.values().filter(|&&c| c > 1).count(),
        uncommitted_total: uncommitted.values().sum(),
    })
}
