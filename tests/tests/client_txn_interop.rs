//! Transactions across clients (KIP-98): confluent-kafka's (librdkafka's) transactional
//! producer against broker-lite, read back with `read_committed` by confluent-kafka and by our
//! consumer; our transactional producer's output read by confluent-kafka with
//! `isolation.level=read_committed`. Every third transaction is aborted: read_committed
//! readers must see exactly the committed records, read_uncommitted readers all of them.
//!
//! The scripts are in `tests/interop/` (`txn_confluent.py`), run by the interpreter
//! `scripts/setup-interop.sh` prepares (see `kafka_integration_tests::interop`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_client::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel, ProducerConfig};
use kafka_client::consumer::{Consumer, TopicPartition};
use kafka_client::producer::Producer;
use kafka_client::serializer::StringSerializer;
use kafka_client::ProducerRecord;
use kafka_integration_tests::broker_api;
use kafka_integration_tests::interop::{python, run_script};
use serde_json::Value;

const PARTITIONS: i32 = 3;
const TRANSACTIONS: usize = 6;
const PER_TXN: usize = 50;
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Reads `topic` with our consumer from the beginning to the end its isolation level sees
/// (the last stable offset for read_committed); values in partition/offset order.
async fn read_ours(bootstrap: &str, topic: &str, isolation: IsolationLevel) -> Vec<String> {
    let consumer: Consumer<String, String> = Consumer::builder(
        ConsumerConfig::builder()
            .bootstrap_servers(bootstrap)
            .isolation_level(isolation)
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .build()
            .unwrap(),
        StringSerializer,
        StringSerializer,
    )
    .build()
    .unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition {
            topic: topic.into(),
            partition: p,
        })
        .collect();
    consumer.assign(tps.clone()).unwrap();
    let ends = consumer.end_offsets(&tps).await.unwrap();
    let mut got: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut done = true;
        for tp in &tps {
            done &= consumer.position(tp).await.unwrap() >= ends[tp];
        }
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "our consumer did not reach {ends:?}"
        );
        for r in consumer.poll(Duration::from_millis(100)).await.unwrap() {
            got.insert((r.partition, r.offset), r.value.unwrap_or_default());
        }
    }
    consumer.close().await.unwrap();
    got.into_values().collect()
}

async fn read_confluent(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let summary = run_script(
        bootstrap,
        "txn_confluent.py",
        &[
            "read".into(),
            "--topic".into(),
            topic.into(),
            "--partitions".into(),
            PARTITIONS.to_string(),
            "--isolation".into(),
            isolation.into(),
        ],
        SCRIPT_TIMEOUT,
    )
    .await;
    strings(&summary["values"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_transactions_read_by_confluent_and_by_us() {
    python();
    let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
    let bootstrap = broker.bootstrap_servers();
    let mut c = broker_api::connect(&bootstrap).await;
    broker_api::create_topic(&mut c, "from-librdkafka", PARTITIONS, &[]).await;

    let produced = run_script(
        &bootstrap,
        "txn_confluent.py",
        &[
            "produce".into(),
            "--topic".into(),
            "from-librdkafka".into(),
            "--partitions".into(),
            PARTITIONS.to_string(),
            "--transactions".into(),
            TRANSACTIONS.to_string(),
            "--per-txn".into(),
            PER_TXN.to_string(),
        ],
        SCRIPT_TIMEOUT,
    )
    .await;
    let committed = strings(&produced["committed"]);
    let aborted = strings(&produced["aborted"]);
    assert_eq!(committed.len(), 4 * PER_TXN);
    assert_eq!(aborted.len(), 2 * PER_TXN);
    let all = sorted([committed.clone(), aborted.clone()].concat());

    let theirs = read_confluent(&bootstrap, "from-librdkafka", "read_committed").await;
    assert_eq!(
        sorted(theirs),
        sorted(committed.clone()),
        "librdkafka read_committed"
    );
    let theirs = read_confluent(&bootstrap, "from-librdkafka", "read_uncommitted").await;
    assert_eq!(sorted(theirs), all, "librdkafka read_uncommitted");

    let ours = read_ours(&bootstrap, "from-librdkafka", IsolationLevel::ReadCommitted).await;
    assert_eq!(sorted(ours), sorted(committed), "our read_committed");
    let ours = read_ours(
        &bootstrap,
        "from-librdkafka",
        IsolationLevel::ReadUncommitted,
    )
    .await;
    assert_eq!(sorted(ours), all, "our read_uncommitted");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_transactions_read_by_confluent() {
    python();
    let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
    let bootstrap = broker.bootstrap_servers();
    let mut c = broker_api::connect(&bootstrap).await;
    broker_api::create_topic(&mut c, "from-us", PARTITIONS, &[]).await;

    let producer: Producer<String, String> = Producer::builder(
        ProducerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .transactional_id("our-txn")
            .build()
            .unwrap(),
        StringSerializer,
        StringSerializer,
    )
    .build()
    .unwrap();
    producer.init_transactions().await.unwrap();
    let (mut committed, mut aborted) = (Vec::new(), Vec::new());
    let mut n = 0i32;
    for t in 0..TRANSACTIONS {
        producer.begin_transaction().unwrap();
        let mut values = Vec::new();
        for r in 0..PER_TXN {
            let value = format!("t{t}-r{r}");
            let record = ProducerRecord::new("from-us", value.clone())
                .with_key(format!("k{r}"))
                .with_partition(n % PARTITIONS);
            n += 1;
            drop(producer.send(record).await.unwrap());
            values.push(value);
        }
        if t % 3 == 2 {
            // Delivered first, so the aborted records are in the log for read_uncommitted.
            producer.flush().await.unwrap();
            producer.abort_transaction().await.unwrap();
            aborted.extend(values);
        } else {
            producer.commit_transaction().await.unwrap();
            committed.extend(values);
        }
    }
    producer.close(Duration::from_secs(5)).await.unwrap();
    let all = sorted([committed.clone(), aborted].concat());

    let theirs = read_confluent(&bootstrap, "from-us", "read_committed").await;
    assert_eq!(
        sorted(theirs),
        sorted(committed),
        "librdkafka read_committed"
    );
    let theirs = read_confluent(&bootstrap, "from-us", "read_uncommitted").await;
    assert_eq!(sorted(theirs), all, "librdkafka read_uncommitted");
    broker.shutdown().await;
}
