//! Helpers shared by the producer integration tests (`tests/tests/producer_*.rs`): an
//! in-process broker-lite, producer configs, reading a topic back, and brokers that are dead
//! or never answer.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use broker_lite::Broker;
use kafka_client::config::{ProducerConfig, ProducerConfigBuilder};
use kafka_client::producer::{DeliveryFuture, Producer};
use kafka_client::{Error, ProducerRecord, RecordMetadata};
use kafka_integration_tests::broker_api;
use kafka_wire::records::{Record, RecordBatch};
use kafka_wire::ApiKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Upper bound for anything that should complete promptly (generous: CI machines are slow).
pub const PROMPTLY: Duration = Duration::from_secs(20);

/// Starts a broker with Kafka's defaults on an ephemeral port.
pub async fn start_broker() -> Broker {
    Broker::start_ephemeral().await.expect("broker starts")
}

/// Starts a broker and creates `topic` with `partitions` partitions and `configs`.
pub async fn broker_with_topic(topic: &str, partitions: i32, configs: &[(&str, &str)]) -> Broker {
    let broker = start_broker().await;
    create_topic(&broker, topic, partitions, configs).await;
    broker
}

/// Creates a topic through CreateTopics.
pub async fn create_topic(broker: &Broker, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut c = broker_api::connect(&broker.bootstrap_servers()).await;
    broker_api::create_topic(&mut c, topic, partitions, configs).await;
}

/// Whether the broker under test serves InitProducerId, i.e. whether the idempotent producer
/// (the default) can run against it.
pub fn broker_supports_idempotence() -> bool {
    broker_lite::supported_versions(ApiKey::InitProducerId).is_some()
}

/// A producer config for `bootstrap` with the client's defaults, except that idempotence is
/// turned off while the broker does not serve InitProducerId. Tests that are not about
/// idempotence run with the default (idempotent) producer as soon as the broker supports it.
pub fn config(bootstrap: &str) -> ProducerConfigBuilder {
    let b = ProducerConfig::builder().bootstrap_servers(bootstrap);
    if broker_supports_idempotence() {
        b
    } else {
        b.set("enable.idempotence", "false")
    }
}

/// A raw-bytes producer built from `builder`.
pub fn producer(builder: ProducerConfigBuilder) -> Producer {
    Producer::new(builder.build().expect("valid producer config")).expect("producer starts")
}

/// Awaits `fut`, failing the test if it takes longer than [`PROMPTLY`].
pub async fn promptly<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(PROMPTLY, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not complete within {PROMPTLY:?}"),
    }
}

/// Awaits a delivery, panicking on an error or a hang.
pub async fn delivered(fut: DeliveryFuture) -> RecordMetadata {
    promptly("delivery", fut)
        .await
        .unwrap_or_else(|e| panic!("delivery failed: {e}"))
}

/// Awaits every delivery, in order.
pub async fn delivered_all(futs: Vec<DeliveryFuture>) -> Vec<RecordMetadata> {
    let mut out = Vec::with_capacity(futs.len());
    for f in futs {
        out.push(delivered(f).await);
    }
    out
}

/// Sends a record and returns its delivery future (`send` itself must succeed promptly).
pub async fn send(p: &Producer, record: ProducerRecord) -> DeliveryFuture {
    promptly("send", p.send(record))
        .await
        .unwrap_or_else(|e| panic!("send failed: {e}"))
}

/// Closes the producer (waiting up to 10 s for pending records).
pub async fn close(p: &Producer) {
    promptly("close", p.close(Duration::from_secs(10)))
        .await
        .expect("close");
}

/// Every stored batch of `topic`-`partition`.
pub async fn batches(broker: &Broker, topic: &str, partition: i32) -> Vec<RecordBatch> {
    let mut c = broker_api::connect(&broker.bootstrap_servers()).await;
    broker_api::fetch_all(&mut c, topic, partition, 0).await
}

/// Every stored record of `topic`-`partition`, in offset order.
pub async fn records(broker: &Broker, topic: &str, partition: i32) -> Vec<Record> {
    broker_api::records_of(&batches(broker, topic, partition).await)
}

/// Every stored record of every partition of `topic` (0..partitions), by partition.
pub async fn all_records(
    broker: &Broker,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<Record>> {
    let mut out = BTreeMap::new();
    for p in 0..partitions {
        out.insert(p, records(broker, topic, p).await);
    }
    out
}

/// The high watermark of `topic`-`partition` (ListOffsets latest).
pub async fn log_end(broker: &Broker, topic: &str, partition: i32) -> i64 {
    let mut c = broker_api::connect(&broker.bootstrap_servers()).await;
    broker_api::offset_for(&mut c, topic, partition, -1).await
}

/// Waits until `topic`-`partition` holds `count` records (for acks=0, where the producer
/// does not learn when the broker appended).
pub async fn wait_for_log_end(broker: &Broker, topic: &str, partition: i32, count: i64) {
    promptly("log to fill", async {
        loop {
            if log_end(broker, topic, partition).await >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A record's value as UTF-8.
pub fn value_str(r: &Record) -> String {
    String::from_utf8(r.value.as_deref().expect("value").to_vec()).expect("UTF-8 value")
}

/// A record's key as UTF-8.
pub fn key_str(r: &Record) -> String {
    String::from_utf8(r.key.as_deref().expect("key").to_vec()).expect("UTF-8 key")
}

/// A broker whose topic `topic` (1 partition) is known to `p`'s metadata, and which is then
/// shut down: the producer keeps the metadata and a leader it can no longer reach. One record
/// was delivered before the shutdown (offset 0).
pub async fn producer_with_dead_broker(
    topic: &str,
    configure: impl FnOnce(ProducerConfigBuilder) -> ProducerConfigBuilder,
) -> Producer {
    let broker = broker_with_topic(topic, 1, &[]).await;
    let p = producer(configure(config(&broker.bootstrap_servers())));
    let md = delivered(send(&p, ProducerRecord::new(topic, "before-shutdown")).await).await;
    assert_eq!(md.offset, 0);
    broker.shutdown().await;
    p
}

/// A TCP listener that accepts connections and never answers: the producer's bootstrap
/// connection never completes its ApiVersions handshake, so no metadata ever arrives. The
/// accepted sockets stay open until the task is aborted.
pub async fn silent_listener() -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// When `p` is idempotent, checks that every batch of `stored` (a partition `p` was the only
/// writer of, from offset 0) carries `p`'s producer id and epoch, and sequence numbers that
/// match the offsets (sequences start at 0 per partition and have no gaps). Returns whether
/// the producer was idempotent.
pub fn check_idempotent_batches(p: &Producer, stored: &[RecordBatch]) -> bool {
    if !p.config().enable_idempotence {
        return false;
    }
    let pid = p
        .producer_id_and_epoch()
        .expect("an idempotent producer that delivered has an id");
    for b in stored {
        assert_eq!(
            b.producer_id(),
            pid.producer_id,
            "batch at {}",
            b.base_offset()
        );
        assert_eq!(
            b.producer_epoch(),
            pid.epoch,
            "batch at {}",
            b.base_offset()
        );
        assert_eq!(
            i64::from(b.base_sequence()),
            b.base_offset(),
            "sequence of batch at {}",
            b.base_offset()
        );
    }
    true
}

/// Asserts that `e` is `Error::Timeout` and that its message mentions `needle`.
pub fn assert_timeout(e: &Error, needle: &str) {
    match e {
        Error::Timeout(msg) => assert!(
            msg.contains(needle),
            "timeout message {msg:?} does not mention {needle:?}"
        ),
        other => panic!("expected Error::Timeout mentioning {needle:?}, got {other:?}"),
    }
}
