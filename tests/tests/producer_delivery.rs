//! Delivery: every `acks` setting delivers; offsets in `RecordMetadata` are the log's and
//! increase in send order per partition; keys, values, headers, timestamps, null keys and
//! tombstones arrive as sent; `flush` and `close` wait for everything; records to a dead
//! broker fail with `Error::Timeout` after `delivery.timeout.ms`, and a forced close fails
//! every pending record; clones of one producer shared by many tasks deliver every record
//! exactly once.

mod producer_common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_client::config::Acks;
use kafka_client::{Error, Header, ProducerRecord, RecordMetadata};
use producer_common::*;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn acks_deliver(acks: Acks) {
    let topic = "acks";
    let broker = broker_with_topic(topic, 2, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()).acks(acks));
    assert_eq!(p.config().acks, acks);
    let mut futs = Vec::new();
    for i in 0..100 {
        let rec = ProducerRecord::new(topic, format!("v{i}"))
            .with_key(format!("k{i}"))
            .with_partition(i % 2);
        futs.push(send(&p, rec).await);
    }
    let mds = delivered_all(futs).await;
    close(&p).await;
    for (i, md) in mds.iter().enumerate() {
        assert_eq!(md.topic, topic);
        assert_eq!(md.partition, i as i32 % 2);
        if acks == Acks::None {
            assert_eq!(md.offset, -1, "acks=0 cannot know the offset");
        } else {
            assert_eq!(md.offset, i as i64 / 2, "record {i}");
        }
        assert_eq!(md.serialized_key_size, format!("k{i}").len() as i32);
        assert_eq!(md.serialized_value_size, format!("v{i}").len() as i32);
    }
    for partition in 0..2 {
        // With acks=0 the producer does not know when the broker appended.
        wait_for_log_end(&broker, topic, partition, 50).await;
        let stored = batches(&broker, topic, partition).await;
        let values: Vec<String> = kafka_integration_tests::broker_api::records_of(&stored)
            .iter()
            .map(value_str)
            .collect();
        let expected: Vec<String> = (0..100)
            .filter(|i| i % 2 == partition)
            .map(|i| format!("v{i}"))
            .collect();
        assert_eq!(values, expected);
        // Idempotence (the default) needs acks=all; with acks 0 or 1 it is silently off.
        let idempotent = check_idempotent_batches(&p, &stored);
        assert_eq!(
            idempotent,
            acks == Acks::All && broker_supports_idempotence()
        );
    }
}

#[tokio::test]
async fn acks_0_delivers_without_offsets() {
    acks_deliver(Acks::None).await;
}

#[tokio::test]
async fn acks_1_delivers() {
    acks_deliver(Acks::Leader).await;
}

#[tokio::test]
async fn acks_all_delivers() {
    acks_deliver(Acks::All).await;
}

#[tokio::test]
async fn offsets_match_the_log_and_increase_in_send_order_per_partition() {
    let topic = "ordering";
    let n = 3;
    let broker = broker_with_topic(topic, n, &[]).await;
    // Small batches and several requests in flight: ordering must still hold per partition.
    let p = producer(
        config(&broker.bootstrap_servers())
            .batch_size(512)
            .linger(Duration::from_millis(1)),
    );
    let mut futs = Vec::new();
    for i in 0..2000 {
        let rec = ProducerRecord::new(topic, format!("{i}")).with_key(format!("key-{}", i % 13));
        futs.push(send(&p, rec).await);
    }
    let mds = delivered_all(futs).await;
    for partition in 0..n {
        check_idempotent_batches(&p, &batches(&broker, topic, partition).await);
    }
    close(&p).await;

    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for (i, md) in mds.iter().enumerate() {
        let prev = last.insert(md.partition, md.offset);
        assert!(
            prev.is_none_or(|o| o < md.offset),
            "record {i}: {prev:?} then {}",
            md.offset
        );
    }
    let by_value: BTreeMap<String, &RecordMetadata> = mds
        .iter()
        .enumerate()
        .map(|(i, m)| (i.to_string(), m))
        .collect();
    let mut total = 0;
    for (partition, recs) in all_records(&broker, topic, n).await {
        for (pos, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, pos as i64, "offsets are dense");
            let md = by_value[&value_str(r)];
            assert_eq!(
                (md.partition, md.offset),
                (partition, r.offset),
                "record {}",
                value_str(r)
            );
        }
        // In send order: values (send indexes) increase along the log.
        let idx: Vec<usize> = recs.iter().map(|r| value_str(r).parse().unwrap()).collect();
        assert!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "partition {partition} out of order"
        );
        total += recs.len();
    }
    assert_eq!(total, 2000);
}

#[tokio::test]
async fn keys_values_headers_timestamps_null_keys_and_tombstones_round_trip() {
    let topic = "contents";
    let broker = broker_with_topic(topic, 1, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    let explicit_ts = 1_600_000_000_123;
    let null_header = Header {
        key: "null-valued".into(),
        value: None,
    };
    let records_to_send: Vec<ProducerRecord> = vec![
        // Explicit timestamp, key, value, headers (repeated keys keep their order).
        ProducerRecord::new(topic, "v0")
            .with_key("k0")
            .with_timestamp(explicit_ts)
            .with_header("h", "1")
            .with_header("h", "2")
            .with_header("empty", ""),
        // Null key, defaulted timestamp.
        ProducerRecord::new(topic, "v1"),
        // Tombstone: key, no value.
        ProducerRecord::tombstone(topic, "k2"),
        // Neither key nor value, a null-valued header.
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: None,
            headers: vec![null_header.clone()],
            timestamp: Some(0),
        },
        // Empty key and value are not null.
        ProducerRecord::new(topic, Bytes::new()).with_key(Bytes::new()),
        // Binary data.
        ProducerRecord::new(topic, Bytes::from_static(&[0, 255, 1, 254]))
            .with_key(Bytes::from_static(&[0xff; 3])),
    ];
    let before = now_ms();
    let mut futs = Vec::new();
    for r in records_to_send.clone() {
        futs.push(send(&p, r).await);
    }
    let mds = delivered_all(futs).await;
    let after = now_ms();
    close(&p).await;

    let stored = records(&broker, topic, 0).await;
    assert_eq!(stored.len(), records_to_send.len());
    for (i, ((sent, md), r)) in records_to_send.iter().zip(&mds).zip(&stored).enumerate() {
        assert_eq!(md.offset, i as i64);
        assert_eq!(r.offset, md.offset);
        assert_eq!(r.key, sent.key, "key of record {i}");
        assert_eq!(r.value, sent.value, "value of record {i}");
        let headers: Vec<(String, Option<Bytes>)> = r
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        let sent_headers: Vec<(String, Option<Bytes>)> = sent
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        assert_eq!(headers, sent_headers, "headers of record {i}");
        assert_eq!(
            md.serialized_key_size,
            sent.key.as_ref().map_or(-1, |k| k.len() as i32)
        );
        assert_eq!(
            md.serialized_value_size,
            sent.value.as_ref().map_or(-1, |v| v.len() as i32)
        );
        match sent.timestamp {
            Some(ts) => {
                assert_eq!(md.timestamp, ts, "explicit timestamp of record {i}");
                assert_eq!(r.timestamp, ts);
            }
            None => {
                assert!(
                    (before..=after).contains(&md.timestamp),
                    "defaulted timestamp {} of record {i}",
                    md.timestamp
                );
                assert_eq!(r.timestamp, md.timestamp);
            }
        }
    }
    assert_eq!(stored[0].headers[0].key, "h");
    assert_eq!(stored[3].headers[0].value, None);
    assert_eq!(stored[2].value, None, "tombstone");
    assert_eq!(stored[1].key, None, "null key");
}

#[tokio::test]
async fn log_append_time_topics_report_the_broker_timestamp() {
    let topic = "append-time";
    let broker = broker_with_topic(topic, 1, &[("message.timestamp.type", "LogAppendTime")]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    let before = now_ms();
    let md = delivered(send(&p, ProducerRecord::new(topic, "v").with_timestamp(42)).await).await;
    let after = now_ms();
    close(&p).await;
    assert!(
        (before..=after).contains(&md.timestamp),
        "log append time {}",
        md.timestamp
    );
    let r = &records(&broker, topic, 0).await[0];
    assert_eq!(r.timestamp, md.timestamp);
}

#[tokio::test]
async fn flush_waits_for_every_record() {
    let topic = "flush";
    let broker = broker_with_topic(topic, 2, &[]).await;
    // A linger far longer than the test: only flush (or a full batch) sends anything.
    let p = producer(config(&broker.bootstrap_servers()).linger(Duration::from_secs(600)));
    let mut futs = Vec::new();
    for i in 0..100 {
        futs.push(
            send(
                &p,
                ProducerRecord::new(topic, format!("{i}")).with_partition(i % 2),
            )
            .await,
        );
    }
    assert!(
        futs.iter().all(|f| !f.is_done()),
        "nothing is sent before the linger expires"
    );
    promptly("flush", p.flush()).await.unwrap();
    assert!(
        futs.iter().all(|f| f.is_done()),
        "flush returned before every record completed"
    );
    for md in delivered_all(futs).await {
        assert!(md.offset >= 0);
    }
    assert_eq!(log_end(&broker, topic, 0).await, 50);
    assert_eq!(log_end(&broker, topic, 1).await, 50);

    // Records sent after a flush are not flushed by it: they wait for their linger again.
    let later = send(&p, ProducerRecord::new(topic, "later").with_partition(0)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!later.is_done());
    promptly("flush", p.flush()).await.unwrap();
    assert!(later.is_done());
    assert_eq!(delivered(later).await.offset, 50);
    close(&p).await;
}

#[tokio::test]
async fn close_delivers_pending_records_then_refuses_sends() {
    let topic = "close-live";
    let broker = broker_with_topic(topic, 1, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()).linger(Duration::from_secs(600)));
    let clone = p.clone();
    let mut futs = Vec::new();
    for i in 0..50 {
        futs.push(send(&p, ProducerRecord::new(topic, format!("{i}"))).await);
    }
    promptly("close", p.close(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(
        futs.iter().all(|f| f.is_done()),
        "close waits for pending records"
    );
    let offsets: Vec<i64> = delivered_all(futs).await.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..50).collect::<Vec<_>>());
    assert_eq!(records(&broker, topic, 0).await.len(), 50);

    // Closed for every clone; closing twice is harmless.
    let err = clone
        .send(ProducerRecord::new(topic, "late"))
        .await
        .unwrap_err();
    assert_eq!(err, Error::Closed);
    assert_eq!(
        clone
            .try_send(ProducerRecord::new(topic, "late"))
            .unwrap_err(),
        Error::Closed
    );
    promptly("second close", clone.close(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(log_end(&broker, topic, 0).await, 50);
}

#[tokio::test]
async fn close_with_a_dead_broker_fails_every_pending_record() {
    let topic = "close-dead";
    let p = producer_with_dead_broker(topic, |c| c.linger(Duration::from_millis(0))).await;
    let mut futs = Vec::new();
    for i in 0..20 {
        futs.push(send(&p, ProducerRecord::new(topic, format!("{i}"))).await);
    }
    let started = Instant::now();
    promptly("close", p.close(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(started.elapsed() < PROMPTLY);
    for f in futs {
        let res = promptly("pending record after close", f).await;
        assert!(
            res.is_err(),
            "a record was reported delivered to a dead broker: {res:?}"
        );
    }
}

#[tokio::test]
async fn records_to_a_dead_broker_time_out_after_delivery_timeout() {
    let topic = "delivery-timeout";
    let delivery_timeout = Duration::from_millis(1500);
    let p = producer_with_dead_broker(topic, |c| {
        c.linger(Duration::from_millis(0))
            .request_timeout(Duration::from_millis(500))
            .delivery_timeout(delivery_timeout)
            .retry_backoff(Duration::from_millis(20))
            .reconnect_backoff(Duration::from_millis(20))
            .max_block(Duration::from_secs(10))
    })
    .await;
    let acked: Arc<Mutex<Vec<Result<RecordMetadata, Error>>>> = Arc::default();
    let started = Instant::now();
    let mut futs = Vec::new();
    for i in 0..10 {
        futs.push(send(&p, ProducerRecord::new(topic, format!("{i}"))).await);
        let acked = acked.clone();
        p.send_with_callback(ProducerRecord::new(topic, format!("cb{i}")), move |r| {
            acked.lock().unwrap().push(r)
        })
        .await
        .unwrap();
    }
    for f in futs {
        let err = promptly("expiry", f).await.unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    }
    // Generous upper bound (10 x delivery.timeout.ms), far below the 120 s default.
    assert!(
        started.elapsed() < delivery_timeout * 10,
        "took {:?}",
        started.elapsed()
    );
    promptly("close", p.close(Duration::from_secs(5)))
        .await
        .unwrap();
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), 10, "every callback is called once");
    assert!(
        acked.iter().all(|r| matches!(r, Err(Error::Timeout(_)))),
        "{acked:?}"
    );
}

#[tokio::test]
async fn send_with_callback_reports_the_metadata() {
    let topic = "callback";
    let broker = broker_with_topic(topic, 1, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    let results: Arc<Mutex<Vec<(usize, RecordMetadata)>>> = Arc::default();
    for i in 0..30 {
        let results = results.clone();
        p.send_with_callback(
            ProducerRecord::new(topic, format!("{i}")).with_key("k"),
            move |r| {
                results.lock().unwrap().push((i, r.expect("delivered")));
            },
        )
        .await
        .unwrap();
    }
    promptly("flush", p.flush()).await.unwrap();
    let results = results.lock().unwrap().clone();
    assert_eq!(results.len(), 30);
    for (i, md) in &results {
        assert_eq!(md.offset, *i as i64);
        assert_eq!(md.serialized_key_size, 1);
    }
    close(&p).await;
    let values: Vec<String> = records(&broker, topic, 0)
        .await
        .iter()
        .map(value_str)
        .collect();
    assert_eq!(values, (0..30).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn concurrent_tasks_sharing_one_producer_deliver_every_record_once() {
    let topic = "concurrent";
    let n = 4;
    let tasks = 8;
    let per_task = 300;
    let broker = broker_with_topic(topic, n, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()).batch_size(2048));
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let p = p.clone();
        set.spawn(async move {
            let mut futs = Vec::new();
            for i in 0..per_task {
                let rec = ProducerRecord::new(topic, format!("{t}-{i}"))
                    .with_key(format!("{t}-{}", i % 7));
                futs.push(p.send(rec).await.expect("send"));
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let mut mds = Vec::new();
            for f in futs {
                mds.push(f.await.expect("delivered"));
            }
            mds
        });
    }
    let mut acked = HashSet::new();
    while let Some(res) = promptly("task", set.join_next()).await {
        for md in res.expect("task") {
            assert!(
                acked.insert((md.partition, md.offset)),
                "offset reported twice: {md:?}"
            );
        }
    }
    for partition in 0..n {
        check_idempotent_batches(&p, &batches(&broker, topic, partition).await);
    }
    close(&p).await;
    assert_eq!(acked.len(), tasks * per_task);

    let mut values = HashSet::new();
    let mut stored = HashSet::new();
    for (partition, recs) in all_records(&broker, topic, n).await {
        // Per task and key, send order is kept.
        let mut last: BTreeMap<String, usize> = BTreeMap::new();
        for r in &recs {
            let v = value_str(r);
            assert!(values.insert(v.clone()), "{v} stored twice");
            stored.insert((partition, r.offset));
            let (t, i) = v.split_once('-').unwrap();
            let i: usize = i.parse().unwrap();
            if let Some(prev) = last.insert(format!("{t}/{}", i % 7), i) {
                assert!(prev < i, "{v} after {t}-{prev}");
            }
        }
    }
    assert_eq!(values.len(), tasks * per_task);
    assert_eq!(
        stored, acked,
        "acknowledged offsets are exactly the stored ones"
    );
}
