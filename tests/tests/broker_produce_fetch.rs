//! Produce and Fetch against broker-lite with raw kafka-wire requests: acks, validation errors
//! (unknown partitions, CRC, size, magic, offsets, codecs), every compression codec, fetch
//! positioning (middle of a batch, high watermark, out of range), KIP-74 size limits, long
//! polls, topic ids, fetch sessions and leader epochs.

use std::time::Duration;

use broker_lite::Broker;
use bytes::BytesMut;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::{batch, RawClient};
use kafka_wire::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_wire::messages::*;
use kafka_wire::records::{set_base_offset, Compression};
use kafka_wire::{ErrorCode, Uuid};

/// Hang guard for long polls; never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

async fn setup(partitions: i32, configs: &[(&str, &str)]) -> (Broker, RawClient) {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", partitions, configs).await;
    (broker, c)
}

fn values(batches: &[kafka_wire::records::RecordBatch]) -> Vec<String> {
    records_of(batches)
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Produce
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn produce_acks_1_and_all_at_every_version() {
    let (broker, mut c) = setup(1, &[]).await;
    let mut next = 0;
    for v in 3..=11 {
        for acks in [1, -1] {
            let p = produce_with(
                &mut c,
                "t",
                0,
                value_batch(&format!("v{v}"), 2, Compression::None, 1_000),
                acks,
                v,
            )
            .await;
            assert_eq!(p.error_code, 0, "v{v} acks={acks}: {:?}", p.error_message);
            assert_eq!(p.base_offset, next, "v{v} acks={acks}");
            if v >= 5 {
                assert_eq!(p.log_start_offset, 0);
            }
            if v >= 2 {
                assert_eq!(p.log_append_time_ms, -1, "CreateTime topic");
            }
            next += 2;
        }
    }
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, next);
    broker.shutdown().await;
}

/// acks=0: no response at all; the next request on the connection gets its own response
/// (RawClient checks the correlation id), and the data was appended.
#[tokio::test]
async fn produce_acks_0_sends_no_response() {
    let (broker, mut c) = setup(1, &[]).await;
    for i in 0..3 {
        c.send_no_response(
            produce_request(
                "t",
                0,
                value_batch(&format!("a{i}"), 2, Compression::None, 1_000),
                0,
            ),
            9,
        )
        .await
        .unwrap();
    }
    let m = metadata(&mut c, Some(&["t"])).await;
    assert_eq!(m.topics[0].error_code, 0);
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 6);
    assert_eq!(
        values(&fetch_all(&mut c, "t", 0, 0).await),
        vec!["a0-0", "a0-1", "a1-0", "a1-1", "a2-0", "a2-1"]
    );
    broker.shutdown().await;
}

/// Kafka's `KafkaApis.handleProduceRequest`: with acks=0 and an error, "the server will close
/// socket server so that the producer client will know that some error has happened".
#[tokio::test]
async fn produce_acks_0_with_an_error_closes_the_connection() {
    let (broker, mut c) = setup(1, &[]).await;
    c.send_no_response(
        produce_request("t", 0, value_batch("ok", 1, Compression::None, 1_000), 0),
        9,
    )
    .await
    .unwrap();
    c.send_no_response(
        produce_request("nope", 0, value_batch("x", 1, Compression::None, 1_000), 0),
        9,
    )
    .await
    .unwrap();
    assert!(c.is_closed_by_peer(HANG_GUARD).await);
    let mut fresh = connect(&broker.bootstrap_servers()).await;
    assert_eq!(
        values(&fetch_all(&mut fresh, "t", 0, 0).await),
        vec!["ok-0"]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn produce_invalid_acks_is_invalid_required_acks() {
    let (broker, mut c) = setup(1, &[]).await;
    for acks in [2, -2, 5] {
        let p = produce_with(
            &mut c,
            "t",
            0,
            value_batch("x", 1, Compression::None, 1_000),
            acks,
            9,
        )
        .await;
        assert_eq!(
            p.error_code,
            ErrorCode::InvalidRequiredAcks.code(),
            "acks={acks}"
        );
        assert_eq!(p.base_offset, -1);
    }
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 0, "nothing stored");
    broker.shutdown().await;
}

#[tokio::test]
async fn produce_to_unknown_topic_or_partition() {
    let (broker, mut c) = setup(2, &[]).await;
    for (topic, partition) in [("nope", 0), ("t", 2), ("t", 100), ("t", -1)] {
        let p = produce(
            &mut c,
            topic,
            partition,
            value_batch("x", 1, Compression::None, 1_000),
        )
        .await;
        assert_eq!(
            p.error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "{topic}-{partition}"
        );
        assert_eq!(p.base_offset, -1);
    }
    for v in 3..=11 {
        let p = produce_with(
            &mut c,
            "t",
            7,
            value_batch("x", 1, Compression::None, 1_000),
            1,
            v,
        )
        .await;
        assert_eq!(
            p.error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "v{v}"
        );
    }
    // Produce never auto-creates.
    assert_eq!(metadata(&mut c, None).await.topics.len(), 1);
    // One request, several partitions: each gets its own answer.
    let mut req = produce_request("t", 0, value_batch("ok", 1, Compression::None, 1_000), -1);
    let mut bad = req.topic_data[0].partition_data[0].clone();
    bad.index = 9;
    req.topic_data[0].partition_data.push(bad);
    let r = c.send(req, 9).await.unwrap();
    let codes: Vec<(i32, i16)> = r.responses[0]
        .partition_responses
        .iter()
        .map(|p| (p.index, p.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![(0, 0), (9, ErrorCode::UnknownTopicOrPartition.code())]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn produce_corrupt_crc_is_corrupt_message_and_stores_nothing() {
    let (broker, mut c) = setup(1, &[]).await;
    produce_ok(
        &mut c,
        "t",
        0,
        value_batch("good", 2, Compression::None, 1_000),
    )
    .await;
    for codec in [Compression::None, Compression::Gzip] {
        let mut bad = BytesMut::from(&value_batch("bad", 3, codec, 1_000)[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // inside the CRC-covered records section
        let p = produce(&mut c, "t", 0, bad.freeze()).await;
        assert_eq!(p.error_code, ErrorCode::CorruptMessage.code(), "{codec:?}");
    }
    // A truncated batch (batchLength says more than was sent): Kafka's batch iterator
    // (ByteBufferLogInputStream.nextBatch) yields no batch at all, so
    // ProduceRequest.validateRecords answers INVALID_RECORD ("must have at least one record
    // batch per partition").
    let good = value_batch("cut", 3, Compression::None, 1_000);
    let p = produce(&mut c, "t", 0, good.slice(..good.len() - 5)).await;
    assert_eq!(p.error_code, ErrorCode::InvalidRecord.code());
    // A magic byte outside 0..=2 is a CorruptRecordException: CORRUPT_MESSAGE.
    let mut bad_magic = BytesMut::from(&value_batch("m", 1, Compression::None, 1_000)[..]);
    bad_magic[16] = 7;
    let p = produce(&mut c, "t", 0, bad_magic.freeze()).await;
    assert_eq!(p.error_code, ErrorCode::CorruptMessage.code());

    let hw = fetch(&mut c, "t", 0, 0, 1 << 20).await.high_watermark;
    assert_eq!(hw, 2, "high watermark unchanged");
    assert_eq!(
        values(&fetch_all(&mut c, "t", 0, 0).await),
        vec!["good-0", "good-1"]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn produce_batch_over_max_message_bytes_is_message_too_large() {
    let (broker, mut c) = setup(1, &[("max.message.bytes", "1000")]).await;
    let big = big_batch(2000, 1_000);
    assert!(big.len() > 1000);
    let p = produce(&mut c, "t", 0, big).await;
    assert_eq!(p.error_code, ErrorCode::MessageTooLarge.code());
    produce_ok(&mut c, "t", 0, big_batch(500, 1_000)).await;
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 1);
    broker.shutdown().await;
}

/// Produce v3+ carries record batches v2 only. Kafka's `ProduceRequest.validateRecords`
/// answers a batch with magic 0 or 1 with INVALID_RECORD (`InvalidRecordException`).
#[tokio::test]
async fn produce_batch_with_magic_1_is_invalid_record() {
    let (broker, mut c) = setup(1, &[]).await;
    for magic in [0u8, 1] {
        let mut b = BytesMut::from(&value_batch("old", 2, Compression::None, 1_000)[..]);
        b[16] = magic; // the magic byte sits at the same position in every format
        let p = produce(&mut c, "t", 0, b.freeze()).await;
        assert_eq!(
            p.error_code,
            ErrorCode::InvalidRecord.code(),
            "magic {magic}"
        );
    }
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 0, "nothing stored");
    broker.shutdown().await;
}

/// Kafka's `ProduceRequest.validateRecords` (called per partition by
/// `KafkaApis.handleProduceRequest`): "Produce requests with version >= 3 are only allowed to
/// contain exactly one record batch per partition" (InvalidRecordException, INVALID_RECORD).
#[tokio::test]
async fn produce_several_batches_for_one_partition_is_invalid_record() {
    let (broker, mut c) = setup(1, &[]).await;
    let mut two = BytesMut::new();
    two.extend_from_slice(&value_batch("a", 2, Compression::None, 1_000));
    two.extend_from_slice(&value_batch("b", 3, Compression::Gzip, 2_000));
    let p = produce(&mut c, "t", 0, two.freeze()).await;
    assert_eq!(p.error_code, ErrorCode::InvalidRecord.code());
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 0, "nothing stored");
    broker.shutdown().await;
}

/// Kafka's `UnifiedLog.analyzeAndValidateRecords`: for a client append, "The baseOffset of
/// the record batch in the append to <tp> should be 0, but it is <n>" (INVALID_RECORD).
#[tokio::test]
async fn produce_batch_with_nonzero_base_offset_is_invalid_record() {
    let (broker, mut c) = setup(1, &[]).await;
    let mut b = BytesMut::from(&value_batch("x", 2, Compression::None, 1_000)[..]);
    set_base_offset(&mut b, 5).unwrap(); // not covered by the CRC
    let p = produce(&mut c, "t", 0, b.freeze()).await;
    assert_eq!(p.error_code, ErrorCode::InvalidRecord.code());
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 0, "nothing stored");
    broker.shutdown().await;
}

/// Kafka's `ProduceRequest.validateRecords`: "Produce requests with version < 7 are not
/// allowed to use ZStandard compression" (UNSUPPORTED_COMPRESSION_TYPE, KIP-110).
#[tokio::test]
async fn produce_zstd_before_v7_is_unsupported_compression_type() {
    let (broker, mut c) = setup(1, &[]).await;
    for v in 3..=6 {
        let p = produce_with(
            &mut c,
            "t",
            0,
            value_batch("z", 2, Compression::Zstd, 1_000),
            -1,
            v,
        )
        .await;
        assert_eq!(
            p.error_code,
            ErrorCode::UnsupportedCompressionType.code(),
            "v{v}"
        );
    }
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 0, "nothing stored");
    let p = produce_with(
        &mut c,
        "t",
        0,
        value_batch("z", 2, Compression::Zstd, 1_000),
        -1,
        7,
    )
    .await;
    assert_eq!(p.error_code, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn produce_and_fetch_every_compression_codec() {
    let (broker, mut c) = setup(1, &[]).await;
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut expected = Vec::new();
    for (i, codec) in codecs.iter().enumerate() {
        let name = format!("{codec:?}");
        let key = format!("k{i}");
        type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
        let recs: Vec<KeyValue> = vec![
            (Some(key.as_bytes()), Some(name.as_bytes())),
            (None, None),
            (None, Some(b"tail")),
        ];
        let base = produce_ok(&mut c, "t", 0, batch(&recs, *codec, 1_000 + i as i64 * 10)).await;
        assert_eq!(base, i as i64 * 3);
        expected.push((base, *codec, key, name));
    }
    let batches = fetch_all(&mut c, "t", 0, 0).await;
    assert_eq!(batches.len(), codecs.len());
    for (b, (base, codec, key, name)) in batches.iter().zip(&expected) {
        assert_eq!(b.base_offset(), *base);
        assert_eq!(b.compression().unwrap(), *codec, "stored as produced");
        let recs = records_of(std::slice::from_ref(b));
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].key.as_deref(), Some(key.as_bytes()));
        assert_eq!(recs[0].value.as_deref(), Some(name.as_bytes()));
        assert_eq!(
            (recs[1].key.as_ref(), recs[1].value.as_ref()),
            (None, None),
            "null key and tombstone"
        );
        assert_eq!(recs[2].value.as_deref(), Some(&b"tail"[..]));
        assert_eq!(
            recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![*base, base + 1, base + 2]
        );
        assert_eq!(recs[0].timestamp, 1_000 + (*base / 3) * 10);
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn record_order_and_offsets_are_consistent_across_partitions() {
    let (broker, mut c) = setup(3, &[]).await;
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); 3];
    for round in 0..10 {
        for (p, expected_p) in expected.iter_mut().enumerate() {
            let n = 1 + (round + p) % 4;
            let prefix = format!("p{p}r{round}");
            produce_ok(
                &mut c,
                "t",
                p as i32,
                value_batch(&prefix, n, Compression::Lz4, 1_000 + round as i64),
            )
            .await;
            expected_p.extend((0..n).map(|i| format!("{prefix}-{i}")));
        }
    }
    for (p, expected_p) in expected.iter().enumerate() {
        let batches = fetch_all(&mut c, "t", p as i32, 0).await;
        let recs = records_of(&batches);
        assert_eq!(
            recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (0..expected_p.len() as i64).collect::<Vec<_>>()
        );
        assert_eq!(&values(&batches), expected_p);
        let mut next = 0;
        for b in &batches {
            assert_eq!(b.base_offset(), next, "batches are contiguous");
            next = b.next_offset();
        }
        assert_eq!(offset_for(&mut c, "t", p as i32, -1).await, next);
    }
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Fetch
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn fetch_every_version_by_name_and_by_topic_id() {
    let (broker, mut c) = setup(1, &[]).await;
    for i in 0..3 {
        produce_ok(
            &mut c,
            "t",
            0,
            value_batch(&format!("b{i}"), 2, Compression::None, 1_000),
        )
        .await;
    }
    let id = topic_metadata(&mut c, "t").await.topic_id;
    let all = vec!["b0-0", "b0-1", "b1-0", "b1-1", "b2-0", "b2-1"];
    for v in 4..=17 {
        let mut req = fetch_request("t", 0, 0, 1 << 20, 0);
        if v >= 13 {
            req.topics[0].topic = String::new();
            req.topics[0].topic_id = id;
        }
        let r = c.send(req, v).await.unwrap_or_else(|e| panic!("v{v}: {e}"));
        assert_eq!(r.error_code, 0, "v{v}");
        assert_eq!(r.responses.len(), 1);
        if v >= 13 {
            assert_eq!(r.responses[0].topic_id, id, "v{v}");
        } else {
            assert_eq!(r.responses[0].topic, "t", "v{v}");
        }
        let p = &r.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 6), "v{v}");
        assert_eq!(p.last_stable_offset, 6, "v{v}");
        if v >= 5 {
            assert_eq!(p.log_start_offset, 0, "v{v}");
        }
        assert_eq!(values(&batches_of(p)), all, "v{v}");

        // Error answers and read_committed at every version too.
        let mut bad = req_for(v, id, 99);
        let r = c
            .send(bad.clone(), v)
            .await
            .unwrap_or_else(|e| panic!("v{v}: {e}"));
        assert_eq!(
            r.responses[0].partitions[0].error_code,
            ErrorCode::OffsetOutOfRange.code(),
            "v{v}"
        );
        bad.topics[0].partitions[0].fetch_offset = 2;
        bad.isolation_level = 1;
        let r = c.send(bad, v).await.unwrap_or_else(|e| panic!("v{v}: {e}"));
        let p = &r.responses[0].partitions[0];
        assert_eq!(
            (p.error_code, p.last_stable_offset),
            (0, 6),
            "v{v} read_committed"
        );
        assert_eq!(
            values(&batches_of(p)),
            all[2..].to_vec(),
            "v{v} read_committed"
        );
    }
    broker.shutdown().await;
}

fn req_for(v: i16, id: Uuid, offset: i64) -> FetchRequest {
    let mut req = fetch_request("t", 0, offset, 1 << 20, 0);
    if v >= 13 {
        req.topics[0].topic = String::new();
        req.topics[0].topic_id = id;
    }
    req
}

#[tokio::test]
async fn fetch_unknown_topic_id_and_unknown_partition() {
    let (broker, mut c) = setup(1, &[]).await;
    let unknown = Uuid::from_u64_pair(0x0a0b_0c0d_0e0f_4a0b, 0x8c0d_0e0f_0a0b_0c0d);
    let mut req = fetch_request("", 0, 0, 1 << 20, 0);
    req.topics[0].topic_id = unknown;
    let r = c.send(req, 13).await.unwrap();
    assert_eq!(r.error_code, 0);
    assert_eq!(r.responses[0].topic_id, unknown);
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ErrorCode::UnknownTopicId.code()
    );

    assert_eq!(
        fetch(&mut c, "nope", 0, 0, 1 << 20).await.error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        fetch(&mut c, "t", 3, 0, 1 << 20).await.error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn fetch_positions_middle_of_batch_high_watermark_and_out_of_range() {
    let (broker, mut c) = setup(1, &[]).await;
    produce_ok(
        &mut c,
        "t",
        0,
        value_batch("first", 5, Compression::None, 1_000),
    )
    .await; // 0..4
    produce_ok(
        &mut c,
        "t",
        0,
        value_batch("second", 5, Compression::Snappy, 1_000),
    )
    .await; // 5..9

    // From the middle of a batch: the whole containing batch comes back (clients skip the
    // records before the fetch offset).
    for (offset, base) in [(2, 0), (4, 0), (5, 5), (7, 5)] {
        let p = fetch(&mut c, "t", 0, offset, 1 << 20).await;
        assert_eq!(p.error_code, 0);
        let batches = batches_of(&p);
        assert_eq!(batches[0].base_offset(), base, "fetch at {offset}");
        assert!(batches[0].last_offset() >= offset);
    }

    // At the high watermark: no records, no error.
    let p = fetch(&mut c, "t", 0, 10, 1 << 20).await;
    assert_eq!((p.error_code, p.high_watermark), (0, 10));
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));

    // Beyond the log end offset, or below the log start offset: OFFSET_OUT_OF_RANGE.
    for offset in [11, 1000, -1] {
        let p = fetch(&mut c, "t", 0, offset, 1 << 20).await;
        assert_eq!(
            p.error_code,
            ErrorCode::OffsetOutOfRange.code(),
            "offset {offset}"
        );
        assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    }
    broker.shutdown().await;
}

/// KIP-74: the first batch of the first partition with data is returned even when it is
/// larger than `partition_max_bytes` or `max_bytes`; after that, the limits hold, so a later
/// partition gets nothing once `max_bytes` is used up.
#[tokio::test]
async fn fetch_size_limits_follow_kip_74() {
    let (broker, mut c) = setup(2, &[]).await;
    produce_ok(&mut c, "t", 0, big_batch(5000, 1_000)).await;
    produce_ok(&mut c, "t", 0, big_batch(5000, 1_001)).await;
    produce_ok(&mut c, "t", 1, big_batch(3000, 1_000)).await;

    // One partition, partition_max_bytes far below the batch: exactly the first batch.
    let p = fetch(&mut c, "t", 0, 0, 100).await;
    let batches = batches_of(&p);
    assert_eq!(batches.len(), 1);
    assert!(batches[0].size_in_bytes() > 5000);

    // Two partitions, max_bytes 100: p0 gets its first batch anyway, p1 nothing.
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 100,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![
                FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: 100,
                    current_leader_epoch: -1,
                    ..Default::default()
                },
                FetchPartition {
                    partition: 1,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    current_leader_epoch: -1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.send(req.clone(), 12).await.unwrap();
    let parts = &r.responses[0].partitions;
    assert_eq!(parts.len(), 2);
    assert_eq!(batches_of(&parts[0]).len(), 1);
    assert_eq!(parts[1].error_code, 0);
    assert!(
        parts[1].records.as_ref().is_none_or(|b| b.is_empty()),
        "max_bytes used up by p0"
    );
    assert_eq!(parts[1].high_watermark, 1);

    // If p0 has nothing at its offset, p1 is the first partition with data and gets its batch.
    let mut req2 = req.clone();
    req2.topics[0].partitions[0].fetch_offset = 2;
    let r = c.send(req2, 12).await.unwrap();
    let parts = &r.responses[0].partitions;
    assert!(parts[0].records.as_ref().is_none_or(|b| b.is_empty()));
    assert_eq!(batches_of(&parts[1]).len(), 1);

    // With room for everything, everything comes back.
    let mut req3 = req;
    req3.max_bytes = 1 << 20;
    req3.topics[0].partitions[0].partition_max_bytes = 1 << 20;
    let r = c.send(req3, 12).await.unwrap();
    assert_eq!(batches_of(&r.responses[0].partitions[0]).len(), 2);
    assert_eq!(batches_of(&r.responses[0].partitions[1]).len(), 1);
    broker.shutdown().await;
}

/// The broker's `fetch.max.bytes` (KIP-541) caps a Fetch whose `max_bytes` asks for more, as
/// Kafka's `min(request max_bytes, fetch.max.bytes)`; KIP-74's first batch still comes back.
/// A request `max_bytes` of 0 is a limit of 0, not "unlimited": one batch in all.
#[tokio::test]
async fn broker_fetch_max_bytes_caps_the_request_max_bytes() {
    let broker = Broker::builder()
        .config("fetch.max.bytes", "12000")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", 2, &[]).await;
    for ts in 0..3 {
        produce_ok(&mut c, "t", 0, big_batch(5000, 1_000 + ts)).await;
        produce_ok(&mut c, "t", 1, big_batch(5000, 1_000 + ts)).await;
    }
    let req = |max_bytes: i32| FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: (0..2)
                .map(|p| FetchPartition {
                    partition: p,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    current_leader_epoch: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let counts = |r: &FetchResponse| -> Vec<usize> {
        r.responses[0]
            .partitions
            .iter()
            .map(|p| batches_of(p).len())
            .collect()
    };
    // Asked for 50 MB, capped at 12,000 bytes: two ~5 KB batches of p0, nothing of p1.
    let r = c.send(req(50 << 20), 12).await.unwrap();
    assert_eq!(counts(&r), [2, 0]);
    let total: usize = r.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
        .sum();
    assert!(total <= 12_000, "{total} bytes returned");
    // A smaller request limit still wins.
    let r = c.send(req(6000), 12).await.unwrap();
    assert_eq!(counts(&r), [1, 0]);
    // max_bytes 0: only KIP-74's first batch.
    let r = c.send(req(0), 12).await.unwrap();
    assert_eq!(counts(&r), [1, 0]);
    broker.shutdown().await;
    // Kafka's atLeast(1024).
    assert!(Broker::builder().config("fetch.max.bytes", "1023").is_err());
}

/// A Fetch naming no partitions (a session close, epoch -1) has nothing to wait for: Kafka's
/// `ReplicaManager.fetchMessages` answers it at once whatever `max_wait_ms` says.
#[tokio::test]
async fn fetch_without_partitions_is_answered_at_once() {
    let (broker, mut c) = setup(1, &[]).await;
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 60_000,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_id: 0,
        session_epoch: -1,
        ..Default::default()
    };
    let r = tokio::time::timeout(HANG_GUARD, c.send(req, 12))
        .await
        .expect("answered before max_wait_ms (60 s)")
        .unwrap();
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert!(r.responses.is_empty());
    broker.shutdown().await;
}

/// A long poll on an empty partition completes once another connection produces.
#[tokio::test]
async fn fetch_long_poll_wakes_up_on_produce() {
    let (broker, mut c) = setup(1, &[]).await;
    let addr = broker.bootstrap_servers();
    let mut poller = connect(&addr).await;
    let waiting = tokio::spawn(async move {
        let mut req = fetch_request("t", 0, 0, 1 << 20, 5000);
        req.min_bytes = 1;
        poller.send(req, 12).await.unwrap()
    });
    produce_ok(
        &mut c,
        "t",
        0,
        value_batch("wake", 2, Compression::None, 1_000),
    )
    .await;
    let r = tokio::time::timeout(HANG_GUARD, waiting)
        .await
        .expect("the long poll completes")
        .unwrap();
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(values(&batches_of(p)), vec!["wake-0", "wake-1"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn fetch_long_poll_on_empty_partition_times_out_empty() {
    let (broker, mut c) = setup(1, &[]).await;
    let r = tokio::time::timeout(
        HANG_GUARD,
        c.send(fetch_request("t", 0, 0, 1 << 20, 200), 12),
    )
    .await
    .expect("max_wait_ms bounds the fetch")
    .unwrap();
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 0));
    assert!(p.records.as_ref().is_none_or(|b| b.is_empty()));
    broker.shutdown().await;
}

/// A fetch whose partition has an error returns at once instead of waiting out max_wait_ms.
#[tokio::test]
async fn fetch_long_poll_with_error_returns_at_once() {
    let (broker, mut c) = setup(1, &[]).await;
    let mut req = fetch_request("t", 0, 0, 1 << 20, 60_000);
    req.topics[0].partitions[0].fetch_offset = 50;
    let r = tokio::time::timeout(HANG_GUARD, c.send(req, 12))
        .await
        .expect("no wait on errors")
        .unwrap();
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ErrorCode::OffsetOutOfRange.code()
    );
    broker.shutdown().await;
}

fn session_fetch(session_id: i32, session_epoch: i32) -> FetchRequest {
    let mut req = fetch_request("t", 0, 0, 1 << 20, 0);
    req.session_id = session_id;
    req.session_epoch = session_epoch;
    req
}

/// KIP-227, served (details in broker_fetch_sessions.rs): at every version with sessions a
/// full request with epoch 0 creates a session (non-zero id) and gets the data; epoch -1 gets
/// the data without a session (id 0); an incremental request (epoch > 0) naming a session the
/// broker does not have gets FETCH_SESSION_ID_NOT_FOUND at the top level.
#[tokio::test]
async fn fetch_sessions_created_by_epoch_0_and_unknown_sessions() {
    let (broker, mut c) = setup(1, &[]).await;
    produce_ok(
        &mut c,
        "t",
        0,
        value_batch("s", 1, Compression::None, 1_000),
    )
    .await;
    for v in [7, 12, 17] {
        for epoch in [0, -1] {
            let mut req = session_fetch(0, epoch);
            if v >= 13 {
                req.topics[0].topic = String::new();
                req.topics[0].topic_id = topic_metadata(&mut c, "t").await.topic_id;
            }
            let r = c.send(req, v).await.unwrap();
            assert_eq!(r.error_code, 0, "v{v} epoch {epoch}");
            assert_eq!(r.session_id != 0, epoch == 0, "v{v} epoch {epoch}");
            assert_eq!(batches_of(&r.responses[0].partitions[0]).len(), 1);
        }
        let r = c.send(session_fetch(12345, 1), v.min(12)).await.unwrap();
        assert_eq!(
            r.error_code,
            ErrorCode::FetchSessionIdNotFound.code(),
            "v{v}"
        );
        assert_eq!(r.session_id, 0);
        assert!(r.responses.is_empty());
    }
    // Versions 4-6 have no session fields: never a session.
    for v in 4..7 {
        let r = c.send(session_fetch(0, 0), v).await.unwrap();
        assert_eq!((r.error_code, r.session_id), (0, 0), "v{v}");
        assert_eq!(batches_of(&r.responses[0].partitions[0]).len(), 1);
    }
    broker.shutdown().await;
}

/// Kafka's `FetchManager.newContext`: a request is "full" when its epoch is 0 or -1
/// (`FetchMetadata.isFull`), whatever its session id, and closes the session it names; any
/// other epoch looks the session id up: FETCH_SESSION_ID_NOT_FOUND when there is no such
/// session (session id 0 included, so (0, 5) is not INVALID_FETCH_SESSION_EPOCH), and
/// INVALID_FETCH_SESSION_EPOCH when the epoch is not the session's.
#[tokio::test]
async fn fetch_session_errors_follow_kafka_fetch_manager() {
    let (broker, mut c) = setup(1, &[]).await;
    produce_ok(
        &mut c,
        "t",
        0,
        value_batch("s", 1, Compression::None, 1_000),
    )
    .await;
    let r = c.send(session_fetch(0, 5), 12).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::FetchSessionIdNotFound.code());
    let session = c.send(session_fetch(0, 0), 12).await.unwrap().session_id;
    assert_ne!(session, 0);
    // The session expects epoch 1.
    let r = c.send(session_fetch(session, 5), 12).await.unwrap();
    assert_eq!(
        (r.error_code, r.session_id),
        (ErrorCode::InvalidFetchSessionEpoch.code(), 0)
    );
    assert!(r.responses.is_empty());
    // Epoch 0 naming it: closed, a new session created, data served.
    let r = c.send(session_fetch(session, 0), 12).await.unwrap();
    assert_eq!(r.error_code, 0);
    assert!(r.session_id != 0 && r.session_id != session);
    assert_eq!(batches_of(&r.responses[0].partitions[0]).len(), 1);
    let r = c.send(session_fetch(session, 1), 12).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::FetchSessionIdNotFound.code());
    // Epoch -1 naming an unknown session: a full, sessionless fetch.
    let r = c.send(session_fetch(777, -1), 12).await.unwrap();
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(batches_of(&r.responses[0].partitions[0]).len(), 1);
    broker.shutdown().await;
}

/// KIP-320: `current_leader_epoch` (v9+) newer than the leader's is UNKNOWN_LEADER_EPOCH,
/// older is FENCED_LEADER_EPOCH; -1 skips the check.
#[tokio::test]
async fn fetch_current_leader_epoch_is_checked() {
    let (broker, mut c) = setup(1, &[]).await;
    produce_ok(
        &mut c,
        "t",
        0,
        value_batch("e", 1, Compression::None, 1_000),
    )
    .await;
    let epoch = topic_metadata(&mut c, "t").await.partitions[0].leader_epoch;
    assert!(epoch >= 0);
    for (current, code) in [
        (epoch, 0),
        (-1, 0),
        (epoch + 5, ErrorCode::UnknownLeaderEpoch.code()),
    ] {
        let mut req = fetch_request("t", 0, 0, 1 << 20, 0);
        req.topics[0].partitions[0].current_leader_epoch = current;
        let r = c.send(req, 12).await.unwrap();
        assert_eq!(
            r.responses[0].partitions[0].error_code, code,
            "current_leader_epoch {current}"
        );
    }
    if epoch > 0 {
        let mut req = fetch_request("t", 0, 0, 1 << 20, 0);
        req.topics[0].partitions[0].current_leader_epoch = epoch - 1;
        let r = c.send(req, 12).await.unwrap();
        assert_eq!(
            r.responses[0].partitions[0].error_code,
            ErrorCode::FencedLeaderEpoch.code()
        );
    }
    // Stored batches carry the leader epoch.
    let batches = fetch_all(&mut c, "t", 0, 0).await;
    assert_eq!(batches[0].partition_leader_epoch(), epoch);
    broker.shutdown().await;
}

/// Each partition of a multi-partition fetch is answered independently.
#[tokio::test]
async fn fetch_mixed_partitions_in_one_request() {
    let (broker, mut c) = setup(2, &[]).await;
    produce_ok(
        &mut c,
        "t",
        1,
        value_batch("one", 2, Compression::None, 1_000),
    )
    .await;
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![
            FetchTopic {
                topic: "t".into(),
                partitions: vec![
                    FetchPartition {
                        partition: 0,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        current_leader_epoch: -1,
                        ..Default::default()
                    },
                    FetchPartition {
                        partition: 1,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        current_leader_epoch: -1,
                        ..Default::default()
                    },
                    FetchPartition {
                        partition: 1,
                        fetch_offset: 9,
                        partition_max_bytes: 1 << 20,
                        current_leader_epoch: -1,
                        ..Default::default()
                    },
                    FetchPartition {
                        partition: 7,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        current_leader_epoch: -1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            FetchTopic {
                topic: "ghost".into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    partition_max_bytes: 1 << 20,
                    current_leader_epoch: -1,
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let r = c.send(req, 12).await.unwrap();
    let t = &r.responses[0].partitions;
    assert_eq!(t[0].error_code, 0);
    assert!(t[0].records.as_ref().is_none_or(|b| b.is_empty()));
    assert_eq!(values(&batches_of(&t[1])), vec!["one-0", "one-1"]);
    assert_eq!(t[2].error_code, ErrorCode::OffsetOutOfRange.code());
    assert_eq!(t[3].error_code, ErrorCode::UnknownTopicOrPartition.code());
    assert_eq!(
        r.responses[1].partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    broker.shutdown().await;
}

/// `message.timestamp.type=LogAppendTime`: the broker stamps each batch with its append time
/// (timestamp-type bit set, `maxTimestamp` = append time, CRC recomputed) and reports the time
/// in the produce response.
#[tokio::test]
async fn log_append_time_topic_stamps_batches() {
    let (broker, mut c) = setup(1, &[("message.timestamp.type", "LogAppendTime")]).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let p = produce(
        &mut c,
        "t",
        0,
        value_batch("lat", 3, Compression::Gzip, 1_000),
    )
    .await;
    assert_eq!(p.error_code, 0);
    assert!(
        p.log_append_time_ms >= before,
        "append time {} < {before}",
        p.log_append_time_ms
    );
    let batches = fetch_all(&mut c, "t", 0, 0).await; // CRCs verified
    assert_eq!(
        batches[0].timestamp_type(),
        kafka_wire::records::TimestampType::LogAppendTime
    );
    assert_eq!(batches[0].max_timestamp(), p.log_append_time_ms);
    let ts: Vec<i64> = records_of(&batches).iter().map(|r| r.timestamp).collect();
    assert_eq!(ts, vec![p.log_append_time_ms; 3]);
    broker.shutdown().await;
}

/// Kafka's `LogValidator`: "Producer should not set timestamp type to LogAppendTime"
/// (InvalidTimestampException, INVALID_TIMESTAMP).
#[tokio::test]
async fn producer_batch_claiming_log_append_time_is_invalid_timestamp() {
    let (broker, mut c) = setup(1, &[]).await;
    let mut b = kafka_wire::records::RecordBatchBuilder::new(kafka_wire::records::BatchOptions {
        timestamp_type: kafka_wire::records::TimestampType::LogAppendTime,
        ..Default::default()
    });
    b.append(1_000, None, Some(b"v"), &[]).unwrap();
    let p = produce(&mut c, "t", 0, b.finish().unwrap()).await;
    assert_eq!(p.error_code, ErrorCode::InvalidTimestamp.code());
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 0, "nothing stored");
    broker.shutdown().await;
}
