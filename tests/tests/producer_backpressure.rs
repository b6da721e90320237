//! Backpressure: `send` blocks at most `max.block.ms` for metadata and for `buffer.memory`,
//! then fails with `Error::Timeout`; `try_send` never blocks (`Error::BufferFull`,
//! `Error::Timeout` for unknown metadata).

mod producer_common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_client::{Error, ProducerRecord};
use producer_common::*;

#[tokio::test]
async fn send_times_out_after_max_block_when_metadata_never_arrives() {
    let (bootstrap, listener) = silent_listener().await;
    let max_block = Duration::from_millis(400);
    let p = producer(
        config(&bootstrap)
            .buffer_memory(64 * 1024)
            .max_block(max_block),
    );

    let started = Instant::now();
    let err = promptly("send", p.send(ProducerRecord::new("no-metadata", "v")))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_timeout(&err, "no-metadata");
    assert!(
        waited >= max_block,
        "send gave up after {waited:?}, before max.block.ms"
    );
    assert!(waited < PROMPTLY, "send blocked for {waited:?}");

    // try_send does not wait at all.
    let err = p
        .try_send(ProducerRecord::new("no-metadata", "v"))
        .unwrap_err();
    assert_timeout(&err, "no-metadata");

    let err = promptly("partitions_for", p.partitions_for("no-metadata"))
        .await
        .unwrap_err();
    assert_timeout(&err, "no-metadata");

    promptly("close", p.close(Duration::from_secs(1)))
        .await
        .unwrap();
    listener.abort();
}

/// A value of `len` bytes.
fn value(len: usize) -> Bytes {
    Bytes::from(vec![b'b'; len])
}

#[tokio::test]
async fn a_full_buffer_blocks_send_for_max_block_and_fails_try_send_at_once() {
    let topic = "exhausted";
    let buffer_memory = 64 * 1024;
    let batch_size = 16 * 1024;
    let max_block = Duration::from_millis(500);
    let p = producer_with_dead_broker(topic, |c| {
        c.buffer_memory(buffer_memory)
            .batch_size(batch_size)
            .linger(Duration::from_millis(0))
            .max_block(max_block)
            // Queued batches must not expire while the test fills the buffer.
            .request_timeout(Duration::from_secs(30))
            .delivery_timeout(Duration::from_secs(60))
    })
    .await;

    // Fill buffer.memory with records nobody can send: 4 KiB records, three per 16 KiB batch.
    let mut queued = Vec::new();
    let mut refused = None;
    for i in 0..64 {
        let started = Instant::now();
        match promptly("send", p.send(ProducerRecord::new(topic, value(4096)))).await {
            Ok(f) => queued.push(f),
            Err(e) => {
                refused = Some((i, e, started.elapsed()));
                break;
            }
        }
    }
    let (i, err, waited) = refused.expect("64 x 4 KiB never fit in a 64 KiB buffer");
    assert!(i >= 8, "the buffer held only {i} records");
    assert!(
        matches!(&err, Error::Timeout(m) if m.to_lowercase().contains("memory") || m.contains("buffer")),
        "{err:?}"
    );
    assert!(waited >= max_block, "send waited only {waited:?}");

    // A record that needs a new batch cannot get memory without waiting.
    // (try_send is synchronous: BufferFull rather than Timeout shows it did not wait.)
    let err = p
        .try_send(ProducerRecord::new(topic, value(15 * 1024)))
        .unwrap_err();
    assert_eq!(err, Error::BufferFull);
    // Nothing that needs a buffer gets one: send waits max.block.ms again.
    let err = promptly("send", p.send(ProducerRecord::new(topic, value(15 * 1024))))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(
        queued.iter().all(|f| !f.is_done()),
        "queued records are still pending"
    );

    // Closing fails the pending records instead of leaving them hanging.
    promptly("close", p.close(Duration::from_millis(200)))
        .await
        .unwrap();
    for f in queued {
        assert!(promptly("pending record", f).await.is_err());
    }
}

#[tokio::test]
async fn memory_is_returned_once_records_are_delivered() {
    let topic = "recycled";
    let broker = broker_with_topic(topic, 1, &[]).await;
    // 64 KiB of buffer, 1 MiB of records: sends wait for memory freed by deliveries.
    let p = producer(
        config(&broker.bootstrap_servers())
            .buffer_memory(64 * 1024)
            .batch_size(16 * 1024)
            .max_block(Duration::from_secs(10)),
    );
    let mut futs = Vec::new();
    for i in 0..256 {
        let mut v = format!("{i:04}").into_bytes();
        v.resize(4096, b'-');
        futs.push(send(&p, ProducerRecord::new(topic, Bytes::from(v))).await);
    }
    let offsets: Vec<i64> = delivered_all(futs).await.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..256).collect::<Vec<_>>());
    // try_send succeeds again once memory is back.
    let f = p
        .try_send(ProducerRecord::new(topic, value(15 * 1024)))
        .expect("memory is free");
    assert_eq!(delivered(f).await.offset, 256);
    close(&p).await;
    let recs = records(&broker, topic, 0).await;
    assert_eq!(recs.len(), 257);
    for (i, r) in recs.iter().take(256).enumerate() {
        assert_eq!(&value_str(r)[..4], format!("{i:04}"));
    }
}
