//! Every `compression.type` round-trips through broker-lite: the stored batches carry the
//! codec in their attributes and decode to exactly the records sent.

mod producer_common;

use std::time::Duration;

use bytes::Bytes;
use kafka_client::ProducerRecord;
use kafka_wire::records::Compression;
use producer_common::*;

async fn round_trip(codec: Compression) {
    let topic = format!("compressed-{}", codec.name());
    let broker = broker_with_topic(&topic, 2, &[]).await;
    let p = producer(
        config(&broker.bootstrap_servers())
            .set("compression.type", codec.name())
            // Long linger: records are batched until the flush, so batches hold many records.
            .linger(Duration::from_secs(30))
            .batch_size(8 * 1024),
    );
    assert_eq!(p.config().compression, codec);
    let mut futs = Vec::new();
    let mut sent = Vec::new();
    for i in 0..400 {
        // Compressible values (repetitive text), a few of them large, some tombstones.
        let value = (i % 37 != 0).then(|| Bytes::from(format!("value {i} ").repeat(1 + i % 40)));
        let key = Bytes::from(format!("key-{}", i % 17));
        let partition = i as i32 % 2;
        let rec = ProducerRecord {
            topic: topic.clone(),
            partition: Some(partition),
            key: Some(key.clone()),
            value: value.clone(),
            headers: vec![kafka_client::Header::new("i", i.to_string())],
            timestamp: Some(1_700_000_000_000 + i as i64),
        };
        futs.push(send(&p, rec).await);
        sent.push((partition, key, value, i));
    }
    promptly("flush", p.flush()).await.unwrap();
    let mds = delivered_all(futs).await;
    close(&p).await;

    for partition in 0..2 {
        let stored = batches(&broker, &topic, partition).await;
        assert!(!stored.is_empty());
        for b in &stored {
            assert_eq!(
                b.compression().unwrap(),
                codec,
                "batch at {}",
                b.base_offset()
            );
            assert_eq!(
                Compression::from_attributes(b.attributes()).unwrap(),
                codec,
                "attributes {:#x}",
                b.attributes()
            );
        }
        // The codec batches many records together (the flush sent them at once).
        assert!(stored.len() < 200 / 2, "{} batches", stored.len());
        let recs = kafka_integration_tests::broker_api::records_of(&stored);
        let expected: Vec<_> = sent
            .iter()
            .zip(&mds)
            .filter(|((p, ..), _)| *p == partition)
            .collect();
        assert_eq!(recs.len(), expected.len());
        for (r, ((_, key, value, i), md)) in recs.iter().zip(expected) {
            assert_eq!(r.offset, md.offset, "record {i}");
            assert_eq!(r.key.as_ref(), Some(key), "record {i}");
            assert_eq!(r.value.as_ref(), value.as_ref(), "record {i}");
            assert_eq!(r.timestamp, 1_700_000_000_000 + *i as i64);
            assert_eq!(r.headers.len(), 1);
            assert_eq!(r.headers[0].key, "i");
            assert_eq!(
                r.headers[0].value.as_deref(),
                Some(i.to_string().as_bytes())
            );
        }
    }
}

#[tokio::test]
async fn compression_none_round_trips() {
    round_trip(Compression::None).await;
}

#[tokio::test]
async fn compression_gzip_round_trips() {
    round_trip(Compression::Gzip).await;
}

#[tokio::test]
async fn compression_snappy_round_trips() {
    round_trip(Compression::Snappy).await;
}

#[tokio::test]
async fn compression_lz4_round_trips() {
    round_trip(Compression::Lz4).await;
}

#[tokio::test]
async fn compression_zstd_round_trips() {
    round_trip(Compression::Zstd).await;
}

/// A compressed batch may hold far more than `batch.size` bytes of records once compressed
/// (the accumulator estimates the ratio): highly compressible records all arrive intact.
#[tokio::test]
async fn compressed_batches_of_highly_compressible_records_arrive_intact() {
    let topic = "compressible";
    let broker = broker_with_topic(topic, 1, &[]).await;
    let p = producer(
        config(&broker.bootstrap_servers())
            .compression(Compression::Zstd)
            .linger(Duration::from_secs(30))
            .batch_size(4096),
    );
    let value = Bytes::from(vec![b'z'; 1000]);
    let mut futs = Vec::new();
    for _ in 0..200 {
        futs.push(send(&p, ProducerRecord::new(topic, value.clone())).await);
    }
    promptly("flush", p.flush()).await.unwrap();
    let mds = delivered_all(futs).await;
    close(&p).await;
    let offsets: Vec<i64> = mds.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..200).collect::<Vec<i64>>());
    let recs = records(&broker, topic, 0).await;
    assert_eq!(recs.len(), 200);
    assert!(recs.iter().all(|r| r.value.as_ref() == Some(&value)));
}
