//! DeleteRecords (KIP-107) against broker-lite with raw kafka-wire requests: the log start
//! offset moves (ListOffsets earliest, Fetch below it OFFSET_OUT_OF_RANGE, Fetch at it, the
//! segment files below it deleted), -1 for the high watermark, offsets out of range,
//! unknown topics and partitions, no move backwards, compacted and internal topics refused,
//! open transactions, a restart keeping the start, and every advertised version.

use std::path::Path;

use broker_lite::Broker;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_wire::messages::*;
use kafka_wire::records::{Compression, Record};
use kafka_wire::{ApiKey, ErrorCode};

/// Current timestamps: old ones would let time retention delete the segments.
fn now() -> i64 {
    broker_lite::state::now_ms()
}

fn code(c: i16) -> ErrorCode {
    ErrorCode::from_code(c)
}

/// DeleteRecords of `(topic, partition, offset)` entries at `version`; returns every
/// partition's `(topic, partition, low_watermark, error)` in response order.
async fn delete_records(
    c: &mut RawClient,
    entries: &[(&str, i32, i64)],
    version: i16,
) -> Vec<(String, i32, i64, ErrorCode)> {
    let mut topics: Vec<DeleteRecordsTopic> = Vec::new();
    for &(topic, partition_index, offset) in entries {
        let p = DeleteRecordsPartition {
            partition_index,
            offset,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.name == topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(DeleteRecordsTopic {
                name: topic.into(),
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    let r = c
        .send(
            DeleteRecordsRequest {
                topics,
                timeout_ms: 30_000,
                ..Default::default()
            },
            version,
        )
        .await
        .expect("DeleteRecords");
    assert_eq!(r.throttle_time_ms, 0);
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.clone(),
                    p.partition_index,
                    p.low_watermark,
                    code(p.error_code),
                )
            })
        })
        .collect()
}

/// DeleteRecords of one partition (v2): `Ok(low watermark)` or the error (low watermark -1).
async fn delete_one(
    c: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, ErrorCode> {
    let r = delete_records(c, &[(topic, partition, offset)], 2).await;
    assert_eq!(r.len(), 1, "{r:?}");
    let (name, index, low_watermark, error) = r.into_iter().next().unwrap();
    assert_eq!((name.as_str(), index), (topic, partition));
    if error == ErrorCode::None {
        Ok(low_watermark)
    } else {
        assert_eq!(low_watermark, -1, "a failed partition has no low watermark");
        Err(error)
    }
}

/// Produces `n` one-record batches with values `"{prefix}-{i}"`; returns the first offset.
async fn produce_singles(c: &mut RawClient, topic: &str, prefix: &str, n: usize) -> i64 {
    let mut first = None;
    for i in 0..n {
        let v = format!("{prefix}-{i}");
        let offset = produce_ok(
            c,
            topic,
            0,
            kafka_integration_tests::batch(&[(None, Some(v.as_bytes()))], Compression::None, now()),
        )
        .await;
        first.get_or_insert(offset);
    }
    first.unwrap_or(-1)
}

/// `(offset, value)` of each record.
fn offset_values(records: Vec<Record>) -> Vec<(i64, String)> {
    records
        .into_iter()
        .map(|r| {
            let v = String::from_utf8(r.value.expect("value").to_vec()).expect("utf-8");
            (r.offset, v)
        })
        .collect()
}

fn values(p: &fetch_response::PartitionData) -> Vec<(i64, String)> {
    offset_values(records_of(&batches_of(p)))
}

/// Every record of partition 0 from `from` to the high watermark (fetched segment by
/// segment), as `(offset, value)`.
async fn all_values(c: &mut RawClient, topic: &str, from: i64) -> Vec<(i64, String)> {
    let mut records = records_of(&fetch_all(c, topic, 0, from).await);
    records.retain(|r| r.offset >= from);
    offset_values(records)
}

/// The `.log` segments of `<dir>/<topic>-0`, by base offset.
fn segment_bases(dir: &Path, topic: &str) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir.join(format!("{topic}-0")))
        .expect("partition dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

#[tokio::test]
async fn delete_before_a_mid_offset_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    // Small segments (a few batches each) and no delay before the files are removed.
    create_topic(
        &mut c,
        "t",
        1,
        &[("segment.bytes", "300"), ("file.delete.delay.ms", "0")],
    )
    .await;
    assert_eq!(produce_singles(&mut c, "t", "v", 10).await, 0);
    let before = segment_bases(dir.path(), "t");
    assert!(before.len() >= 3, "several segments: {before:?}");

    assert_eq!(delete_one(&mut c, "t", 0, 6).await, Ok(6));

    assert_eq!(offset_for(&mut c, "t", 0, -2).await, 6);
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 10);
    let below = fetch(&mut c, "t", 0, 5, 1 << 20).await;
    assert_eq!(code(below.error_code), ErrorCode::OffsetOutOfRange);
    assert_eq!(below.log_start_offset, 6);
    let at = fetch(&mut c, "t", 0, 6, 1 << 20).await;
    assert_eq!(code(at.error_code), ErrorCode::None);
    assert_eq!(at.log_start_offset, 6);
    assert_eq!(values(&at)[0], (6, "v-6".to_string()));
    assert_eq!(
        all_values(&mut c, "t", 6).await,
        (6..10).map(|i| (i, format!("v-{i}"))).collect::<Vec<_>>()
    );
    // Segments wholly below 6 are gone; the one holding 6 (or starting at it) stays.
    let after = segment_bases(dir.path(), "t");
    let expected: Vec<i64> = {
        let holding = before.iter().rposition(|&b| b <= 6).unwrap();
        before[holding..].to_vec()
    };
    assert_eq!(after, expected);
    assert!(after[0] <= 6 && after.len() < before.len(), "{after:?}");
    // The next produce reports the new log start offset.
    let r = produce(
        &mut c,
        "t",
        0,
        kafka_integration_tests::batch(&[(None, Some(&b"v-10"[..]))], Compression::None, now()),
    )
    .await;
    assert_eq!((r.base_offset, r.log_start_offset), (10, 6));
    broker.shutdown().await;
}

#[tokio::test]
async fn inside_a_batch_fetch_returns_that_batch_from_the_start() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "b", 1, &[]).await;
    produce_ok(
        &mut c,
        "b",
        0,
        value_batch("x", 5, Compression::None, now()),
    )
    .await;
    assert_eq!(delete_one(&mut c, "b", 0, 3).await, Ok(3));
    assert_eq!(offset_for(&mut c, "b", 0, -2).await, 3);
    // As Kafka, the whole batch holding offset 3 is returned; the records below 3 are for the
    // client to skip (they are no longer readable on their own).
    let at = fetch(&mut c, "b", 0, 3, 1 << 20).await;
    assert_eq!(code(at.error_code), ErrorCode::None);
    let batches = batches_of(&at);
    assert_eq!(batches.len(), 1);
    assert_eq!((batches[0].base_offset(), batches[0].last_offset()), (0, 4));
    let fetched = values(&at);
    assert_eq!(fetched[3], (3, "x-3".to_string()));
    let below = fetch(&mut c, "b", 0, 2, 1 << 20).await;
    assert_eq!(code(below.error_code), ErrorCode::OffsetOutOfRange);
    broker.shutdown().await;
}

#[tokio::test]
async fn minus_one_means_the_high_watermark() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "hw", 1, &[]).await;
    produce_singles(&mut c, "hw", "v", 7).await;
    assert_eq!(delete_one(&mut c, "hw", 0, -1).await, Ok(7));
    assert_eq!(offset_for(&mut c, "hw", 0, -2).await, 7);
    assert_eq!(offset_for(&mut c, "hw", 0, -1).await, 7);
    let p = fetch(&mut c, "hw", 0, 7, 1 << 20).await;
    assert_eq!(code(p.error_code), ErrorCode::None);
    assert!(batches_of(&p).is_empty());
    assert_eq!((p.high_watermark, p.log_start_offset), (7, 7));
    // Appends continue at 7.
    assert_eq!(produce_singles(&mut c, "hw", "w", 1).await, 7);
    let p = fetch(&mut c, "hw", 0, 7, 1 << 20).await;
    assert_eq!(values(&p), vec![(7, "w-0".to_string())]);
    // An empty partition: -1 is 0, a no-op.
    create_topic(&mut c, "empty", 1, &[]).await;
    assert_eq!(delete_one(&mut c, "empty", 0, -1).await, Ok(0));
    broker.shutdown().await;
}

#[tokio::test]
async fn offsets_beyond_the_high_watermark_or_below_minus_one_are_out_of_range() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "r", 1, &[]).await;
    produce_singles(&mut c, "r", "v", 4).await;
    for bad in [5, 100, i64::MAX, -2, i64::MIN] {
        assert_eq!(
            delete_one(&mut c, "r", 0, bad).await,
            Err(ErrorCode::OffsetOutOfRange),
            "{bad}"
        );
    }
    assert_eq!(offset_for(&mut c, "r", 0, -2).await, 0);
    // Exactly the high watermark is allowed.
    assert_eq!(delete_one(&mut c, "r", 0, 4).await, Ok(4));
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topics_and_partitions_and_a_mixed_request() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "k", 2, &[]).await;
    produce_singles(&mut c, "k", "v", 3).await;
    let r = delete_records(
        &mut c,
        &[
            ("nope", 0, 0),
            ("k", 0, 2),
            ("k", 2, 0),
            ("k", -1, 0),
            ("k", 1, 0),
        ],
        2,
    )
    .await;
    assert_eq!(
        r,
        vec![
            ("nope".into(), 0, -1, ErrorCode::UnknownTopicOrPartition),
            ("k".into(), 0, 2, ErrorCode::None),
            ("k".into(), 2, -1, ErrorCode::UnknownTopicOrPartition),
            ("k".into(), -1, -1, ErrorCode::UnknownTopicOrPartition),
            ("k".into(), 1, 0, ErrorCode::None),
        ]
    );
    assert_eq!(offset_for(&mut c, "k", 0, -2).await, 2);
    // DeleteRecords never creates a topic.
    let m = metadata(&mut c, Some(&["nope"])).await;
    assert_eq!(
        code(m.topics[0].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
    // A partition named twice is handled once, with the last offset (Kafka's request map).
    let r = delete_records(&mut c, &[("k", 0, 3), ("k", 0, 1)], 2).await;
    assert_eq!(r, vec![("k".into(), 0, 2, ErrorCode::None)]);
    broker.shutdown().await;
}

#[tokio::test]
async fn moving_backwards_is_a_no_op_answering_the_current_start() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "back", 1, &[]).await;
    produce_singles(&mut c, "back", "v", 8).await;
    assert_eq!(delete_one(&mut c, "back", 0, 5).await, Ok(5));
    for earlier in [0, 2, 5] {
        assert_eq!(delete_one(&mut c, "back", 0, earlier).await, Ok(5));
    }
    assert_eq!(offset_for(&mut c, "back", 0, -2).await, 5);
    let p = fetch(&mut c, "back", 0, 5, 1 << 20).await;
    assert_eq!(values(&p)[0], (5, "v-5".to_string()));
    assert_eq!(delete_one(&mut c, "back", 0, 6).await, Ok(6));
    broker.shutdown().await;
}

#[tokio::test]
async fn compacted_topics_are_a_policy_violation_unless_delete_is_in_the_policy() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "compact", 1, &[("cleanup.policy", "compact")]).await;
    create_topic(&mut c, "both", 1, &[("cleanup.policy", "compact,delete")]).await;
    for t in ["compact", "both"] {
        let keyed = kafka_integration_tests::batch(
            &[
                (Some(&b"k1"[..]), Some(&b"a"[..])),
                (Some(&b"k2"[..]), Some(&b"b"[..])),
            ],
            Compression::None,
            1,
        );
        produce_ok(&mut c, t, 0, keyed).await;
    }
    assert_eq!(
        delete_one(&mut c, "compact", 0, 1).await,
        Err(ErrorCode::PolicyViolation)
    );
    assert_eq!(offset_for(&mut c, "compact", 0, -2).await, 0);
    assert_eq!(delete_one(&mut c, "both", 0, 1).await, Ok(1));
    assert_eq!(offset_for(&mut c, "both", 0, -2).await, 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn internal_topics_are_refused() {
    let broker = Broker::builder()
        .config("offsets.topic.num.partitions", "2")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    // Metadata with auto-creation creates __consumer_offsets as the group coordinator does
    // (compacted: the internal check comes first).
    let m = c
        .send(
            MetadataRequest {
                topics: Some(vec![metadata_request::MetadataRequestTopic {
                    name: Some("__consumer_offsets".into()),
                    ..Default::default()
                }]),
                allow_auto_topic_creation: true,
                ..Default::default()
            },
            METADATA_VERSION,
        )
        .await
        .unwrap();
    assert_eq!(code(m.topics[0].error_code), ErrorCode::None);
    assert_eq!(m.topics[0].partitions.len(), 2);
    let r = delete_records(
        &mut c,
        &[("__consumer_offsets", 0, -1), ("__consumer_offsets", 9, 0)],
        2,
    )
    .await;
    assert_eq!(
        r,
        vec![
            (
                "__consumer_offsets".into(),
                0,
                -1,
                ErrorCode::InvalidTopicException
            ),
            // Existence is checked first (KafkaApis), internal next (ReplicaManager).
            (
                "__consumer_offsets".into(),
                9,
                -1,
                ErrorCode::UnknownTopicOrPartition
            ),
        ]
    );
    broker.shutdown().await;
}

/// ListOffsets latest with read_committed (v7): the last stable offset.
async fn last_stable_offset(c: &mut RawClient, topic: &str) -> i64 {
    let mut req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 1,
        ..Default::default()
    };
    req.topics = vec![list_offsets_request::ListOffsetsTopic {
        name: topic.into(),
        partitions: vec![list_offsets_request::ListOffsetsPartition {
            partition_index: 0,
            timestamp: -1,
            current_leader_epoch: -1,
            ..Default::default()
        }],
        ..Default::default()
    }];
    let r = c.send(req, LIST_OFFSETS_VERSION).await.unwrap();
    let p = &r.topics[0].partitions[0];
    assert_eq!(code(p.error_code), ErrorCode::None);
    p.offset
}

/// An open transaction does not hold deletion back (Kafka bounds it by the high watermark
/// only); the last stable offset is raised to the new log start offset.
#[tokio::test]
async fn an_open_transaction_does_not_hold_deletion_back() {
    let broker = Broker::builder()
        .config("transaction.state.log.num.partitions", "2")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "tx", 1, &[]).await;
    produce_singles(&mut c, "tx", "v", 2).await;
    let pe = init_producer(&mut c, Some("dr-txn")).await;
    add_partitions_to_txn_ok(&mut c, "dr-txn", pe, &[("tx", 0)]).await;
    let mut req = produce_request("tx", 0, txn_batch(pe, 0, "txn", 2), -1);
    req.transactional_id = Some("dr-txn".into());
    let r = c.send(req, PRODUCE_VERSION).await.unwrap();
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((code(p.error_code), p.base_offset), (ErrorCode::None, 2));
    produce_singles(&mut c, "tx", "after", 2).await; // offsets 4-5
    assert_eq!(last_stable_offset(&mut c, "tx").await, 2);

    assert_eq!(delete_one(&mut c, "tx", 0, 3).await, Ok(3));
    assert_eq!(last_stable_offset(&mut c, "tx").await, 3);
    assert_eq!(offset_for(&mut c, "tx", 0, -1).await, 6);
    broker.shutdown().await;
}

#[tokio::test]
async fn the_log_start_offset_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "keep", 1, &[("segment.bytes", "300")]).await;
    produce_singles(&mut c, "keep", "v", 10).await;
    assert_eq!(delete_one(&mut c, "keep", 0, 7).await, Ok(7));
    broker.shutdown().await;
    // Kafka's checkpoint format: version 0, one entry.
    let checkpoint = std::fs::read_to_string(dir.path().join("keep-0/log-start-offset-checkpoint"))
        .expect("checkpoint written");
    assert_eq!(checkpoint, "0\n7\n");

    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(offset_for(&mut c, "keep", 0, -2).await, 7);
    assert_eq!(offset_for(&mut c, "keep", 0, -1).await, 10);
    let below = fetch(&mut c, "keep", 0, 6, 1 << 20).await;
    assert_eq!(code(below.error_code), ErrorCode::OffsetOutOfRange);
    let at = fetch(&mut c, "keep", 0, 7, 1 << 20).await;
    assert_eq!(values(&at)[0], (7, "v-7".to_string()));
    assert_eq!(
        all_values(&mut c, "keep", 7).await,
        (7..10).map(|i| (i, format!("v-{i}"))).collect::<Vec<_>>()
    );
    // Backwards after the restart is still a no-op.
    assert_eq!(delete_one(&mut c, "keep", 0, 1).await, Ok(7));
    broker.shutdown().await;
}

#[tokio::test]
async fn every_advertised_version_is_served() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    // v0-1, and v2 (flexible).
    let versions = advertised_versions(&mut c, ApiKey::DeleteRecords).await;
    assert_eq!(versions, 0..=2);

    create_topic(&mut c, "ver", 1, &[]).await;
    produce_singles(&mut c, "ver", "v", 6).await;
    for version in versions {
        let offset = i64::from(version) + 1;
        let r = delete_records(&mut c, &[("ver", 0, offset), ("gone", 0, 0)], version).await;
        assert_eq!(
            r,
            vec![
                ("ver".into(), 0, offset, ErrorCode::None),
                ("gone".into(), 0, -1, ErrorCode::UnknownTopicOrPartition),
            ],
            "v{version}"
        );
        assert_eq!(offset_for(&mut c, "ver", 0, -2).await, offset);
    }
    // The connection is still served after every version.
    assert_eq!(offset_for(&mut c, "ver", 0, -1).await, 6);
    broker.shutdown().await;
}
