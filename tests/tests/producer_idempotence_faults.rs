//! The idempotent producer under faults: 100,000 records sent while broker-lite drops
//! connections after appending (the classic duplicate) and answers with retriable errors.
//! Afterwards every partition's log holds every record exactly once, in send order, and every
//! delivery future reported the offset the record really has.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_client::config::ProducerConfig;
use kafka_client::producer::Producer;
use kafka_client::ProducerRecord;
use kafka_integration_tests::broker_api;
use kafka_wire::{ApiKey, ErrorCode};

const TOPIC: &str = "faults";
const PARTITIONS: i32 = 4;
const RECORDS: usize = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_exactly_once_in_order_despite_drops_and_retriable_errors() {
    let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
    let bootstrap = broker.bootstrap_servers();
    let mut c = broker_api::connect(&bootstrap).await;
    broker_api::create_topic(&mut c, TOPIC, PARTITIONS, &[]).await;

    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap.as_str())
        .set("linger.ms", "2")
        .set("batch.size", "4096")
        .set("retry.backoff.ms", "5")
        .set("retry.backoff.max.ms", "50")
        .set("reconnect.backoff.ms", "5")
        .set("reconnect.backoff.max.ms", "50")
        .set("request.timeout.ms", "5000")
        .build()
        .unwrap();
    assert!(config.enable_idempotence, "idempotence is the default");
    let producer = Producer::new(config).unwrap();

    // Faults injected while the records flow: every few milliseconds (once the previous fault
    // was consumed) either drop the
    // connection right after the broker appended a Produce request, or fail the next Produce
    // (whole request, or one partition) with a retriable error.
    let faults = broker.faults();
    let stop = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicUsize::new(0));
    let injector = {
        let (stop, injected, faults) = (stop.clone(), injected.clone(), faults.clone());
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(7)).await;
                // One fault at a time: a queue of faults growing faster than requests consume
                // them would fail every retry forever.
                if faults.is_armed() {
                    continue;
                }
                match i % 4 {
                    0 | 2 => faults.drop_connection_after(ApiKey::Produce, 1),
                    1 => faults.push_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower),
                    _ => faults.push_partition_error(
                        ApiKey::Produce,
                        TOPIC,
                        (i / 4 % PARTITIONS as u32) as i32,
                        ErrorCode::RequestTimedOut,
                    ),
                }
                injected.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };

    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let p = (i % PARTITIONS as usize) as i32;
        let seq = i / PARTITIONS as usize;
        let record = ProducerRecord::<Bytes, Bytes>::new(TOPIC, Bytes::from(format!("{seq}")))
            .with_partition(p);
        deliveries.push(producer.send(record).await.expect("queued"));
        if i % 5_000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut offsets = vec![Vec::new(); PARTITIONS as usize];
    for (i, d) in deliveries.into_iter().enumerate() {
        let md = tokio::time::timeout(Duration::from_secs(120), d)
            .await
            .expect("delivery completes")
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        offsets[md.partition as usize].push(md.offset);
    }
    stop.store(true, Ordering::Relaxed);
    injector.await.unwrap();
    faults.clear();
    producer.close(Duration::from_secs(10)).await.unwrap();
    let injected = injected.load(Ordering::Relaxed);
    assert!(injected >= 20, "only {injected} faults were injected");

    for p in 0..PARTITIONS {
        let batches = broker_api::fetch_all(&mut c, TOPIC, p, 0).await;
        let records = broker_api::records_of(&batches);
        let values: Vec<usize> = records
            .iter()
            .map(|r| {
                std::str::from_utf8(r.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        let expected: Vec<usize> = (0..RECORDS / PARTITIONS as usize).collect();
        assert_eq!(values.len(), expected.len(), "partition {p}: exactly once");
        assert_eq!(
            values, expected,
            "partition {p}: in send order, no duplicates"
        );
        // The offsets reported to the application are where the records really are.
        let want: Vec<i64> = (0..expected.len() as i64).collect();
        assert_eq!(offsets[p as usize], want, "partition {p}: reported offsets");
        // One producer id, and batches with the same epoch are in sequence.
        let ids: std::collections::BTreeSet<i64> =
            batches.iter().map(|b| b.producer_id()).collect();
        assert_eq!(ids.len(), 1, "partition {p}: one producer id");
    }
    broker.shutdown().await;
}
