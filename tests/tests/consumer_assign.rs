//! The consumer with manual assignment against broker-lite, fed by our producer: reading
//! back every codec in order, seek / position, pause / resume, offset lookups,
//! `auto.offset.reset`, many partitions, `max.poll.records`, `wakeup`, and a long poll while
//! the producer writes.

mod consumer_common;
mod producer_common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use consumer_common::consumer;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig, ConsumerConfigBuilder};
use kafka_client::consumer::{is_wakeup, Consumer, ConsumerRecord, TopicPartition};
use kafka_client::producer::Producer;
use kafka_client::serializer::StringSerializer;
use kafka_client::{Error, ProducerRecord};
use kafka_wire::records::Compression;
use kafka_wire::ErrorCode;
use producer_common::*;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn consumer_config(bootstrap: &str, reset: AutoOffsetReset) -> ConsumerConfigBuilder {
    ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(reset)
        .fetch_max_wait(Duration::from_millis(100))
}

/// Produces `count` records to `topic`-`partition`: value `v-<i>`, key `k-<i>`, timestamp
/// `1_700_000_000_000 + i`, a header, every 10th a tombstone.
async fn produce(p: &Producer, topic: &str, partition: i32, count: usize) {
    let mut futs = Vec::new();
    for i in 0..count {
        let value = (i % 10 != 9).then(|| Bytes::from(format!("v-{i}")));
        let rec = ProducerRecord {
            topic: topic.to_owned(),
            partition: Some(partition),
            key: Some(Bytes::from(format!("k-{i}"))),
            value,
            headers: vec![kafka_client::Header::new("i", i.to_string())],
            timestamp: Some(1_700_000_000_000 + i as i64),
        };
        futs.push(send(p, rec).await);
    }
    promptly("flush", p.flush()).await.unwrap();
    delivered_all(futs).await;
}

/// Polls until `count` records arrived (failing after [`PROMPTLY`]).
async fn drain<K: Send + 'static, V: Send + 'static>(
    c: &Consumer<K, V>,
    count: usize,
) -> Vec<ConsumerRecord<K, V>> {
    let deadline = Instant::now() + PROMPTLY;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records arrived",
            out.len()
        );
        out.extend(c.poll(Duration::from_millis(500)).await.expect("poll"));
    }
    assert_eq!(out.len(), count, "more records than expected");
    out
}

fn by_partition(records: &[ConsumerRecord]) -> BTreeMap<i32, Vec<&ConsumerRecord>> {
    let mut m: BTreeMap<i32, Vec<&ConsumerRecord>> = BTreeMap::new();
    for r in records {
        m.entry(r.partition).or_default().push(r);
    }
    m
}

fn check_record(r: &ConsumerRecord, i: i64) {
    assert_eq!(r.offset, i);
    assert_eq!(r.key.as_deref(), Some(format!("k-{i}").as_bytes()));
    if i % 10 == 9 {
        assert_eq!(r.value, None, "tombstone at {i}");
        assert_eq!(r.serialized_value_size, -1);
    } else {
        assert_eq!(r.value.as_deref(), Some(format!("v-{i}").as_bytes()));
        assert_eq!(r.serialized_value_size, format!("v-{i}").len() as i32);
    }
    assert_eq!(r.timestamp, 1_700_000_000_000 + i);
    assert_eq!(r.headers.len(), 1);
    assert_eq!(r.headers[0].key, "i");
    assert_eq!(
        r.headers[0].value.as_deref(),
        Some(i.to_string().as_bytes())
    );
}

#[tokio::test]
async fn reads_back_every_codec_in_order() {
    let broker = start_broker().await;
    for codec in Compression::ALL {
        let topic = format!("codec-{}", codec.name());
        create_topic(&broker, &topic, 2, &[]).await;
        let p = producer(
            config(&broker.bootstrap_servers())
                .set("compression.type", codec.name())
                .linger(Duration::from_millis(20))
                .batch_size(4 * 1024),
        );
        produce(&p, &topic, 0, 300).await;
        produce(&p, &topic, 1, 150).await;
        close(&p).await;

        let c = consumer(consumer_config(
            &broker.bootstrap_servers(),
            AutoOffsetReset::Earliest,
        ));
        c.assign(vec![tp(&topic, 0), tp(&topic, 1)]).unwrap();
        let got = drain(&c, 450).await;
        let parts = by_partition(&got);
        assert_eq!(parts[&0].len(), 300, "{codec}");
        assert_eq!(parts[&1].len(), 150, "{codec}");
        for recs in parts.values() {
            for (i, r) in recs.iter().enumerate() {
                check_record(r, i as i64);
                assert_eq!(&*r.topic, topic);
            }
        }
        assert!(c.poll(Duration::from_millis(200)).await.unwrap().is_empty());
        assert_eq!(c.position(&tp(&topic, 0)).await.unwrap(), 300);
        c.close().await.unwrap();
        assert_eq!(c.poll(Duration::ZERO).await.unwrap_err(), Error::Closed);
    }
}

#[tokio::test]
async fn deserializers_apply() {
    let broker = broker_with_topic("strings", 1, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    produce(&p, "strings", 0, 5).await;
    let c = Consumer::builder(
        consumer_config(&broker.bootstrap_servers(), AutoOffsetReset::Earliest)
            .build()
            .unwrap(),
        StringSerializer,
        StringSerializer,
    )
    .build()
    .unwrap();
    c.assign(vec![tp("strings", 0)]).unwrap();
    let got = drain(&c, 5).await;
    assert_eq!(got[3].key.as_deref(), Some("k-3"));
    assert_eq!(got[3].value.as_deref(), Some("v-3"));
}

#[tokio::test]
async fn seek_and_position() {
    let broker = broker_with_topic("seek", 1, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    produce(&p, "seek", 0, 20).await;
    let c = consumer(consumer_config(
        &broker.bootstrap_servers(),
        AutoOffsetReset::Earliest,
    ));
    let t = tp("seek", 0);
    assert!(c.seek(&t, 3).is_err(), "not assigned");
    c.assign(vec![t.clone()]).unwrap();
    assert_eq!(c.assignment(), vec![t.clone()]);
    assert_eq!(c.position(&t).await.unwrap(), 0);
    c.seek(&t, 15).unwrap();
    assert_eq!(c.position(&t).await.unwrap(), 15);
    let got = drain(&c, 5).await;
    assert_eq!(got[0].offset, 15);
    check_record(&got[4], 19);
    assert_eq!(c.position(&t).await.unwrap(), 20);
    c.seek_to_beginning(std::slice::from_ref(&t)).unwrap();
    assert_eq!(c.position(&t).await.unwrap(), 0);
    let got = drain(&c, 20).await;
    for (i, r) in got.iter().enumerate() {
        check_record(r, i as i64);
    }
    c.seek(&t, 7).unwrap();
    c.seek_to_end(&[]).unwrap();
    assert_eq!(c.position(&t).await.unwrap(), 20);
    assert!(c.poll(Duration::from_millis(200)).await.unwrap().is_empty());
    // A seek into the middle of a (multi-record) batch skips the records before it.
    c.seek(&t, 11).unwrap();
    let got = drain(&c, 9).await;
    assert_eq!(got[0].offset, 11);
    assert!(c.subscribe(&["seek"]).is_err());
}

#[tokio::test]
async fn pause_and_resume() {
    let broker = broker_with_topic("pause", 2, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    produce(&p, "pause", 0, 10).await;
    produce(&p, "pause", 1, 10).await;
    let c = consumer(consumer_config(
        &broker.bootstrap_servers(),
        AutoOffsetReset::Earliest,
    ));
    c.assign(vec![tp("pause", 0), tp("pause", 1)]).unwrap();
    c.pause(&[tp("pause", 0)]).unwrap();
    assert_eq!(c.paused(), vec![tp("pause", 0)]);
    let got = drain(&c, 10).await;
    assert!(got.iter().all(|r| r.partition == 1));
    assert!(c.poll(Duration::from_millis(300)).await.unwrap().is_empty());
    c.resume(&[tp("pause", 0)]).unwrap();
    assert!(c.paused().is_empty());
    let got = drain(&c, 10).await;
    assert!(got.iter().all(|r| r.partition == 0));
    check_record(&got[9], 9);
    assert!(c.pause(&[tp("other", 0)]).is_err());
}

#[tokio::test]
async fn offset_lookups() {
    let broker = broker_with_topic("lookups", 2, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    produce(&p, "lookups", 0, 10).await;
    let c = consumer(consumer_config(
        &broker.bootstrap_servers(),
        AutoOffsetReset::Latest,
    ));
    // No assignment needed for lookups.
    let parts = [tp("lookups", 0), tp("lookups", 1)];
    let begin = c.beginning_offsets(&parts).await.unwrap();
    assert_eq!(begin[&parts[0]], 0);
    assert_eq!(begin[&parts[1]], 0);
    let end = c.end_offsets(&parts).await.unwrap();
    assert_eq!(end[&parts[0]], 10);
    assert_eq!(end[&parts[1]], 0);
    let mut query = HashMap::new();
    query.insert(parts[0].clone(), 1_700_000_000_005);
    query.insert(parts[1].clone(), 1_700_000_000_005);
    let found = c.offsets_for_times(&query).await.unwrap();
    let at = found[&parts[0]].expect("offset for timestamp");
    assert_eq!(at.offset, 5);
    assert_eq!(at.timestamp, 1_700_000_000_005);
    assert_eq!(found[&parts[1]], None);
    query.insert(parts[0].clone(), 1_800_000_000_000);
    assert_eq!(c.offsets_for_times(&query).await.unwrap()[&parts[0]], None);
    query.insert(parts[0].clone(), -5);
    assert!(matches!(
        c.offsets_for_times(&query).await,
        Err(Error::InvalidArgument(_))
    ));
    // Seeking to a looked-up offset.
    c.assign(vec![parts[0].clone()]).unwrap();
    c.seek(&parts[0], at.offset).unwrap();
    let got = drain(&c, 5).await;
    check_record(&got[0], 5);
}

#[tokio::test]
async fn auto_offset_reset_earliest_latest_none() {
    let broker = broker_with_topic("reset", 1, &[]).await;
    let bootstrap = broker.bootstrap_servers();
    let p = producer(config(&bootstrap));
    produce(&p, "reset", 0, 5).await;
    let t = tp("reset", 0);

    // latest: only what is written after the position was looked up.
    let latest = consumer(consumer_config(&bootstrap, AutoOffsetReset::Latest));
    latest.assign(vec![t.clone()]).unwrap();
    assert_eq!(latest.position(&t).await.unwrap(), 5);
    produce(&p, "reset", 0, 3).await;
    let got = drain(&latest, 3).await;
    assert_eq!(got[0].offset, 5);
    assert_eq!(got[2].offset, 7);

    // earliest, and an out-of-range position is reset to earliest.
    let earliest = consumer(consumer_config(&bootstrap, AutoOffsetReset::Earliest));
    earliest.assign(vec![t.clone()]).unwrap();
    assert_eq!(drain(&earliest, 8).await[0].offset, 0);
    earliest.seek(&t, 1_000).unwrap();
    let got = drain(&earliest, 8).await;
    assert_eq!(got[0].offset, 0);

    // none: no position is an error naming the partition, so is an out-of-range one.
    let none = consumer(consumer_config(&bootstrap, AutoOffsetReset::None));
    none.assign(vec![t.clone()]).unwrap();
    let e = none.poll(Duration::from_secs(1)).await.unwrap_err();
    assert!(e.to_string().contains("reset-0"), "{e}");
    assert!(none.position(&t).await.is_err());
    none.seek(&t, 1_000).unwrap();
    let deadline = Instant::now() + PROMPTLY;
    let e = loop {
        match none.poll(Duration::from_millis(500)).await {
            Err(e) => break e,
            Ok(r) => assert!(r.is_empty() && Instant::now() < deadline),
        }
    };
    assert_eq!(e.code(), Some(ErrorCode::OffsetOutOfRange), "{e}");
    assert!(e.to_string().contains("reset-0"), "{e}");
    none.seek(&t, 6).unwrap();
    let got = drain(&none, 2).await;
    assert_eq!(got[0].offset, 6);
}

#[tokio::test]
async fn many_partitions() {
    let broker = broker_with_topic("many", 12, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    for partition in 0..12 {
        produce(&p, "many", partition, 20 + partition as usize).await;
    }
    let c = consumer(consumer_config(
        &broker.bootstrap_servers(),
        AutoOffsetReset::Earliest,
    ));
    c.assign((0..12).map(|i| tp("many", i)).collect()).unwrap();
    let total: usize = (0..12).map(|i| 20 + i).sum();
    let got = drain(&c, total).await;
    let parts = by_partition(&got);
    assert_eq!(parts.len(), 12);
    for (partition, recs) in parts {
        assert_eq!(recs.len(), 20 + partition as usize);
        for (i, r) in recs.iter().enumerate() {
            check_record(r, i as i64);
        }
    }
}

#[tokio::test]
async fn max_poll_records_is_respected() {
    let broker = broker_with_topic("maxpoll", 2, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    produce(&p, "maxpoll", 0, 50).await;
    produce(&p, "maxpoll", 1, 30).await;
    let c = consumer(
        consumer_config(&broker.bootstrap_servers(), AutoOffsetReset::Earliest).max_poll_records(7),
    );
    c.assign(vec![tp("maxpoll", 0), tp("maxpoll", 1)]).unwrap();
    let deadline = Instant::now() + PROMPTLY;
    let mut got = Vec::new();
    while got.len() < 80 {
        assert!(Instant::now() < deadline);
        let batch = c.poll(Duration::from_millis(500)).await.unwrap();
        assert!(batch.len() <= 7, "{} records in one poll", batch.len());
        got.extend(batch);
    }
    assert_eq!(got.len(), 80);
    for recs in by_partition(&got).values() {
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
        }
    }
}

#[tokio::test]
async fn wakeup_interrupts_poll() {
    let broker = broker_with_topic("wakeup", 1, &[]).await;
    let c = Arc::new(consumer(consumer_config(
        &broker.bootstrap_servers(),
        AutoOffsetReset::Earliest,
    )));
    c.assign(vec![tp("wakeup", 0)]).unwrap();
    let poller = {
        let c = c.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = c.poll(Duration::from_secs(60)).await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.wakeup_handle().wakeup();
    let (r, took) = promptly("woken poll", poller).await.unwrap();
    let e = r.unwrap_err();
    assert!(is_wakeup(&e), "{e}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // A wakeup without a poll in progress interrupts the next one, once.
    c.wakeup();
    assert!(is_wakeup(
        &c.poll(Duration::from_secs(5)).await.unwrap_err()
    ));
    assert!(c.poll(Duration::from_millis(100)).await.unwrap().is_empty());
}

#[tokio::test]
async fn reads_while_the_producer_writes() {
    let broker = broker_with_topic("live", 2, &[]).await;
    let bootstrap = broker.bootstrap_servers();
    let c = consumer(
        consumer_config(&bootstrap, AutoOffsetReset::Earliest)
            .fetch_max_wait(Duration::from_secs(5)),
    );
    c.assign(vec![tp("live", 0), tp("live", 1)]).unwrap();
    // Both positions are known before anything is written.
    assert_eq!(c.position(&tp("live", 0)).await.unwrap(), 0);
    let p = producer(config(&bootstrap).linger(Duration::ZERO));
    let writer = tokio::spawn(async move {
        for i in 0..60i64 {
            let rec = ProducerRecord::new("live", Bytes::from(format!("live-{i}")))
                .with_partition((i % 2) as i32)
                .with_timestamp(i);
            delivered(send(&p, rec).await).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        close(&p).await;
    });
    let mut stream = c.stream();
    let mut got = Vec::new();
    let started = Instant::now();
    while got.len() < 60 {
        let r = promptly("stream", stream.next())
            .await
            .expect("stream open")
            .expect("record");
        got.push(r);
    }
    drop(stream);
    writer.await.unwrap();
    // Long polls answer as soon as data arrives: far less than 60 × fetch.max.wait.
    assert!(started.elapsed() < Duration::from_secs(20));
    for recs in by_partition(&got).values() {
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            let n = r.timestamp;
            assert_eq!(r.value.as_deref(), Some(format!("live-{n}").as_bytes()));
        }
    }
}
