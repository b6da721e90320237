//! Producer: configure `kafka-client`'s [`Producer`] two ways and send records two ways.
//!
//! * **Typed builder** (`ProducerConfig::builder()`) for a `Producer<String, String>`
//!   ([`StringSerializer`] keys and values) that sends orders and awaits each record's
//!   [`DeliveryFuture`](kafka_client::producer::DeliveryFuture) (`send` returns once the
//!   record is queued; the future resolves when the broker acknowledged it).
//! * **Properties** with Kafka's key names (`ProducerConfig::from_properties`, validated: a
//!   misspelt key is an error) for a `Producer<String, i64>` ([`StringSerializer`] keys,
//!   [`LongSerializer`] values) that sends counters with a **callback** per record, then
//!   `flush`es.
//! * Both are `close`d (pending records are delivered first); a send after close fails.
//!
//! Runs against broker-lite started in-process, or against any Kafka broker with
//! `--bootstrap host:port` (the topics `producer-example-orders` and
//! `producer-example-counters` are created with 3 partitions if they do not exist).
//!
//! ```sh
//! cargo run --release -p kafka-examples --example producer
//! cargo run --release -p kafka-examples --example producer -- --bootstrap localhost:9092
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use kafka_client::config::{Acks, ProducerConfig};
use kafka_client::producer::Producer;
use kafka_client::serializer::{LongSerializer, StringSerializer};
use kafka_client::{Error, ProducerRecord, RecordMetadata};
use kafka_wire::records::Compression;

use kafka_examples::{bootstrap_arg, BoxError};

const ORDERS: &str = "producer-example-orders";
const COUNTERS: &str = "producer-example-counters";
const PARTITIONS: i32 = 3;

const USAGE: &str = "usage: producer [--bootstrap host:port]\n\
    Without --bootstrap, broker-lite is started in-process.";

/// Creates the topics that do not exist yet.
async fn create_topics(bootstrap: &str, topics: &[&str]) -> Result<(), BoxError> {
    for (name, created) in kafka_examples::create_topics(bootstrap, topics, PARTITIONS).await? {
        if created {
            println!("created topic '{name}' ({PARTITIONS} partitions)");
        } else {
            println!("topic '{name}' already exists");
        }
    }
    Ok(())
}

/// Sends orders and awaits their delivery futures.
async fn send_with_futures(bootstrap: &str) -> Result<(), BoxError> {
    // Typed builder: every Kafka key has a method; `set` takes Kafka's names as well.
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap)
        .client_id("producer-example-typed")
        .acks(Acks::All) // the default, required by idempotence (also the default)
        .enable_idempotence(true)
        .linger(Duration::from_millis(5))
        .compression(Compression::Zstd)
        .set("batch.size", "32768")
        .build()?;
    let producer: Producer<String, String> =
        Producer::builder(config, StringSerializer, StringSerializer).build()?;

    let started = Instant::now();
    let mut deliveries = Vec::new();
    for i in 0..1_000 {
        let customer = format!("customer-{}", i % 7);
        let record = ProducerRecord::new(ORDERS, format!("order {i}"))
            .with_key(customer) // same key, same partition (murmur2, as the Java client)
            .with_header("origin", "producer-example");
        // Returns as soon as the record is queued.
        deliveries.push(producer.send(record).await?);
    }
    // An explicit partition wins over the key.
    deliveries.push(
        producer
            .send(ProducerRecord::new(ORDERS, "audit".to_string()).with_partition(0))
            .await?,
    );
    // Each future resolves with the record's partition and offset once acknowledged.
    let delivered: Vec<RecordMetadata> = try_join_all(deliveries).await?;
    let mut per_partition: BTreeMap<i32, (i64, i64, usize)> = BTreeMap::new();
    for m in &delivered {
        let e = per_partition
            .entry(m.partition)
            .or_insert((m.offset, m.offset, 0));
        e.0 = e.0.min(m.offset);
        e.1 = e.1.max(m.offset);
        e.2 += 1;
    }
    let id = producer
        .producer_id_and_epoch()
        .map_or("none".to_string(), |p| {
            format!("producer id {}, epoch {}", p.producer_id, p.epoch)
        });
    println!(
        "[futures] {} records acknowledged in {:.1?} (idempotent: {id}):",
        delivered.len(),
        started.elapsed(),
    );
    for (p, (first, last, n)) in &per_partition {
        println!("  {ORDERS}-{p}: {n} records at offsets {first}..={last}");
    }
    producer.close(Duration::from_secs(10)).await?;
    Ok(())
}

/// What the delivery callbacks saw.
#[derive(Default)]
struct Outcomes {
    acknowledged: usize,
    failed: Vec<String>,
    last: BTreeMap<i32, i64>,
}

/// Sends counters with a callback per record, flushes, and shows that a closed producer
/// refuses new records.
async fn send_with_callbacks(bootstrap: &str) -> Result<(), BoxError> {
    // Kafka's property names, e.g. from a properties file; validated when built.
    let misspelt =
        ProducerConfig::from_properties([("bootstrap.servers", bootstrap), ("linger.msec", "10")]);
    if let Err(e) = misspelt {
        println!("[properties] a misspelt key is refused: {e}");
    }
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("client.id", "producer-example-properties"),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "10"),
        ("compression.type", "lz4"),
        ("delivery.timeout.ms", "60000"), // >= linger.ms + request.timeout.ms,
    ])?;
    let producer: Producer<String, i64> =
        Producer::builder(config, StringSerializer, LongSerializer).build()?;

    let started = Instant::now();
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    for i in 0..500_i64 {
        let record = ProducerRecord::new(COUNTERS, i).with_key(format!("page-{}", i % 10));
        let outcomes = outcomes.clone();
        // The callback runs on the producer's I/O task when the delivery completes: keep it
        // short (no blocking).
        producer
            .send_with_callback(record, move |result: Result<RecordMetadata, Error>| {
                let mut o = outcomes.lock().unwrap();
                match result {
                    Ok(m) => {
                        o.acknowledged += 1;
                        o.last.insert(m.partition, m.offset);
                    }
                    Err(e) => o.failed.push(e.to_string()),
                }
            })
            .await?;
    }
    // flush: sends what lingers and waits until every record sent so far has completed,
    // so every callback has run.
    producer.flush().await?;
    {
        let o = outcomes.lock().unwrap();
        println!(
            "[callbacks] after flush ({:.1?}): {} acknowledged, {} failed; last offset per \
             partition {:?}",
            started.elapsed(),
            o.acknowledged,
            o.failed.len(),
            o.last
        );
        if let Some(e) = o.failed.first() {
            return Err(format!("a delivery failed: {e}").into());
        }
    }

    producer.close(Duration::from_secs(10)).await?;
    match producer
        .send(ProducerRecord::new(COUNTERS, 0_i64).with_key("late".to_string()))
        .await
    {
        Err(e @ Error::Closed) => println!("[close] a send after close fails: {e}"),
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("a closed producer accepted a record".into()),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (broker, bootstrap) = match bootstrap_arg(USAGE) {
        Some(bootstrap) => (None, bootstrap),
        None => {
            let broker = broker_lite::Broker::start_ephemeral().await?;
            let bootstrap = broker.bootstrap_servers();
            println!("broker-lite listening on {bootstrap} (in-process)");
            (Some(broker), bootstrap)
        }
    };
    create_topics(&bootstrap, &[ORDERS, COUNTERS]).await?;

    send_with_futures(&bootstrap).await?;
    send_with_callbacks(&bootstrap).await?;

    if let Some(broker) = broker {
        broker.shutdown().await;
        println!("broker-lite shut down");
    }
    Ok(())
}
