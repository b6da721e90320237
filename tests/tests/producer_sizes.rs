//! Size limits: a record over `max.request.size` (or `buffer.memory`) is refused before it is
//! queued; a record over `batch.size` gets a batch of its own; a batch the broker refuses with
//! MESSAGE_TOO_LARGE (topic `max.message.bytes`) is split and every record delivered.

mod producer_common;

use std::time::Duration;

use bytes::Bytes;
use kafka_client::{Error, ProducerRecord};
use kafka_wire::records::Compression;
use producer_common::*;

fn value(len: usize, fill: u8) -> Bytes {
    Bytes::from(vec![fill; len])
}

#[tokio::test]
async fn a_record_over_max_request_size_is_refused_before_queueing() {
    let topic = "too-large";
    let broker = broker_with_topic(topic, 1, &[]).await;
    let p = producer(
        config(&broker.bootstrap_servers())
            .max_request_size(1024)
            .linger(Duration::from_millis(0)),
    );
    let err = promptly(
        "send",
        p.send(ProducerRecord::new(topic, value(2000, b'x'))),
    )
    .await
    .unwrap_err();
    match err {
        Error::RecordTooLarge {
            size,
            limit,
            config,
        } => {
            assert!(size > 2000, "{size}");
            assert_eq!(limit, 1024);
            assert_eq!(config, "max.request.size");
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    // The key and headers count too.
    let err = p
        .try_send(ProducerRecord::new(topic, value(10, b'v')).with_key(value(1100, b'k')))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RecordTooLarge {
                config: "max.request.size",
                ..
            }
        ),
        "{err:?}"
    );

    // Nothing was queued, and the producer keeps working.
    let md = delivered(send(&p, ProducerRecord::new(topic, "small")).await).await;
    assert_eq!(md.offset, 0);
    close(&p).await;
    let values: Vec<String> = records(&broker, topic, 0)
        .await
        .iter()
        .map(value_str)
        .collect();
    assert_eq!(values, ["small"]);

    // buffer.memory is a limit too.
    let p = producer(
        config(&broker.bootstrap_servers())
            .buffer_memory(4096)
            .batch_size(1024),
    );
    let err = p
        .send(ProducerRecord::new(topic, value(5000, b'y')))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RecordTooLarge {
                config: "buffer.memory",
                ..
            }
        ),
        "{err:?}"
    );
    close(&p).await;
    assert_eq!(log_end(&broker, topic, 0).await, 1);
}

#[tokio::test]
async fn a_record_over_batch_size_gets_its_own_batch() {
    let topic = "big-record";
    let broker = broker_with_topic(topic, 1, &[]).await;
    let batch_size = 1024;
    let p = producer(
        config(&broker.bootstrap_servers())
            .batch_size(batch_size)
            .linger(Duration::from_secs(600)),
    );
    let mut futs = Vec::new();
    for i in 0..5 {
        futs.push(send(&p, ProducerRecord::new(topic, format!("small-{i}"))).await);
    }
    futs.push(send(&p, ProducerRecord::new(topic, value(10_000, b'B'))).await);
    for i in 5..10 {
        futs.push(send(&p, ProducerRecord::new(topic, format!("small-{i}"))).await);
    }
    promptly("flush", p.flush()).await.unwrap();
    let offsets: Vec<i64> = delivered_all(futs).await.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..11).collect::<Vec<_>>());
    close(&p).await;

    let stored = batches(&broker, topic, 0).await;
    let counts: Vec<i32> = stored.iter().map(|b| b.record_count()).collect();
    assert_eq!(counts, [5, 1, 5], "batches: {counts:?}");
    assert!(stored[1].size_in_bytes() > 10_000);
    let recs = kafka_integration_tests::broker_api::records_of(&stored);
    assert_eq!(recs[5].value.as_ref().unwrap().len(), 10_000);
    assert!(recs[5].value.as_ref().unwrap().iter().all(|&b| b == b'B'));
}

/// Sends 40 records of ~200 bytes into one long-lingering batch (~8.7 KB, far under
/// `batch.size`) and flushes: the broker refuses the batch (over the topic's
/// `max.message.bytes` of 2048), the producer splits it, again as needed, and every record is
/// delivered exactly once, with the offsets the log has. In order when the producer
/// guarantees it: idempotent, or one request in flight (as Java: without idempotence, retries
/// with several requests in flight may reorder).
async fn split_and_deliver(compression: Compression, max_in_flight: usize) {
    let topic = format!("split-{}-{max_in_flight}", compression.name());
    let max_message_bytes = 2048;
    let broker = broker_with_topic(&topic, 1, &[("max.message.bytes", "2048")]).await;
    let p = producer(
        config(&broker.bootstrap_servers())
            .batch_size(16384)
            .linger(Duration::from_secs(600))
            .compression(compression)
            .max_in_flight_requests_per_connection(max_in_flight)
            .request_timeout(Duration::from_secs(5))
            .delivery_timeout(Duration::from_secs(700)),
    );
    let ordered = max_in_flight == 1 || p.config().enable_idempotence;
    let count = 40;
    let mut futs = Vec::new();
    let mut sent = Vec::new();
    for i in 0..count {
        // Incompressible-ish bytes so that compression cannot bring the batch under the limit.
        let v: Vec<u8> = (0..200u32)
            .map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i * 7919) >> 13) as u8)
            .collect();
        let v = Bytes::from(v);
        sent.push(v.clone());
        let rec = ProducerRecord::new(topic.as_str(), v)
            .with_key(format!("k{i}"))
            .with_header("i", i.to_string());
        futs.push(send(&p, rec).await);
    }
    promptly("flush after split", p.flush()).await.unwrap();
    let mds = delivered_all(futs).await;
    let stored = batches(&broker, &topic, 0).await;
    // The split batches took over the big batch's sequence range, in order.
    check_idempotent_batches(&p, &stored);
    close(&p).await;

    assert!(
        stored.len() > 1,
        "the batch was split: {} batch(es)",
        stored.len()
    );
    for b in &stored {
        assert!(
            b.size_in_bytes() <= max_message_bytes,
            "stored batch of {} bytes",
            b.size_in_bytes()
        );
        assert_eq!(b.compression().unwrap(), compression);
    }
    let recs = kafka_integration_tests::broker_api::records_of(&stored);
    assert_eq!(recs.len(), count as usize, "every record stored once");
    let mut seen = vec![false; count as usize];
    for (pos, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, pos as i64);
        let i: usize = std::str::from_utf8(r.headers[0].value.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            !std::mem::replace(&mut seen[i], true),
            "record {i} stored twice"
        );
        assert_eq!(mds[i].offset, r.offset, "RecordMetadata of record {i}");
        assert_eq!(r.value.as_ref(), Some(&sent[i]));
        assert_eq!(key_str(r), format!("k{i}"));
        if ordered {
            assert_eq!(i, pos, "record {i} stored at offset {pos}");
        }
    }
}

#[tokio::test]
async fn message_too_large_batches_are_split_and_every_record_delivered() {
    split_and_deliver(Compression::None, 5).await;
}

#[tokio::test]
async fn message_too_large_split_keeps_order_with_one_request_in_flight() {
    split_and_deliver(Compression::None, 1).await;
}

#[tokio::test]
async fn message_too_large_compressed_batches_are_split_and_every_record_delivered() {
    split_and_deliver(Compression::Lz4, 1).await;
}

#[tokio::test]
async fn a_single_record_over_max_message_bytes_fails_with_message_too_large() {
    let topic = "single-too-large";
    let broker = broker_with_topic(topic, 1, &[("max.message.bytes", "1024")]).await;
    let p = producer(config(&broker.bootstrap_servers()).linger(Duration::from_millis(0)));
    let big = send(&p, ProducerRecord::new(topic, value(3000, b'x'))).await;
    let err = promptly("delivery", big).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(kafka_wire::ErrorCode::MessageTooLarge),
        "{err:?}"
    );
    // The partition is still usable.
    let md = delivered(send(&p, ProducerRecord::new(topic, "fits")).await).await;
    assert_eq!(md.offset, 0);
    close(&p).await;
    assert_eq!(records(&broker, topic, 0).await.len(), 1);
}
