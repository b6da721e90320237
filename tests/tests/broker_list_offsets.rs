//! ListOffsets (key 2) against broker-lite: earliest, latest, by timestamp (record
//! granularity), max timestamp (KIP-734), no match, unknown and duplicate partitions, every
//! served version.

use broker_lite::Broker;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_wire::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_wire::messages::*;
use kafka_wire::ErrorCode;

/// Offsets 0-2: ts 1000..1002; 3-5: ts 2000..2002; 6-8: ts 3000..3002; 9-11: ts 5000, 9000,
/// 7000 (the largest timestamp in the middle of a batch).
async fn setup() -> (Broker, RawClient) {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", 2, &[]).await;
    for ts in [
        [1000, 1001, 1002],
        [2000, 2001, 2002],
        [3000, 3001, 3002],
        [5000, 9000, 7000],
    ] {
        produce_ok(&mut c, "t", 0, timestamped_batch(&ts)).await;
    }
    (broker, c)
}

async fn list(
    c: &mut RawClient,
    partitions: &[(i32, i64)],
    v: i16,
) -> Vec<ListOffsetsPartitionResponse> {
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: partitions
                .iter()
                .map(|(p, ts)| ListOffsetsPartition {
                    partition_index: *p,
                    timestamp: *ts,
                    current_leader_epoch: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut r = c.send(req, v).await.unwrap();
    assert_eq!(r.topics.len(), 1);
    r.topics.remove(0).partitions
}

/// Earliest, latest and timestamp lookups at `versions`, against [`setup`]'s data.
async fn check_lookups(versions: std::ops::RangeInclusive<i16>) {
    let (broker, mut c) = setup().await;
    for v in versions {
        let cases: Vec<(i64, i64, i64)> = vec![
            // (timestamp query, offset, timestamp answered; -1 where Kafka answers none)
            (-2, 0, -1),
            (-1, 12, -1),
            (0, 0, 1000),
            (1000, 0, 1000),
            (1001, 1, 1001),
            (1500, 3, 2000),
            (2002, 5, 2002),
            (2003, 6, 3000),
            (3002, 8, 3002),
            (4000, 9, 5000),
            (6000, 10, 9000),
            (8000, 10, 9000),
            (9000, 10, 9000),
            (9001, -1, -1),
        ];
        let queries: Vec<(i32, i64)> = cases.iter().map(|(ts, _, _)| (0, *ts)).collect();
        // One query per request: a partition may appear once per request.
        for (q, (ts, offset, found_ts)) in queries.iter().zip(&cases) {
            let r = list(&mut c, &[*q], v).await;
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].error_code, 0, "v{v} ts {ts}");
            assert_eq!(r[0].offset, *offset, "v{v} ts {ts}");
            if *ts >= 0 {
                assert_eq!(r[0].timestamp, *found_ts, "v{v} ts {ts}");
            }
        }
    }
    // The empty partition: earliest = latest = 0, any timestamp finds nothing.
    for (ts, offset) in [(-2, 0), (-1, 0), (0, -1)] {
        let r = list(&mut c, &[(1, ts)], 7).await;
        assert_eq!((r[0].error_code, r[0].offset), (0, offset), "ts {ts}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp_v4_to_v10() {
    check_lookups(4..=10).await;
}

/// `LeaderEpoch` exists in ListOffsets responses from v4 (ListOffsetsResponse.json,
/// `"versions": "4+"`, not ignorable): a v1-v3 response must leave it out.
#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp_v1_to_v3() {
    check_lookups(1..=3).await;
}

/// KIP-734 (v7+): MAX_TIMESTAMP (-3) is the offset of the record with the largest timestamp,
/// found inside its batch, with that timestamp.
#[tokio::test]
async fn list_offsets_max_timestamp() {
    let (broker, mut c) = setup().await;
    for v in 7..=10 {
        let r = list(&mut c, &[(0, -3)], v).await;
        assert_eq!(r[0].error_code, 0);
        assert_eq!((r[0].offset, r[0].timestamp), (10, 9000), "v{v}");
    }
    // Ties: the earliest record with the largest timestamp.
    produce_ok(&mut c, "t", 0, timestamped_batch(&[9000, 100])).await;
    let r = list(&mut c, &[(0, -3)], 7).await;
    assert_eq!((r[0].offset, r[0].timestamp), (10, 9000));
    // The empty partition has none.
    let r = list(&mut c, &[(1, -3)], 7).await;
    assert_eq!((r[0].error_code, r[0].offset), (0, -1));
    broker.shutdown().await;
}

#[tokio::test]
async fn list_offsets_unknown_and_duplicate_partitions() {
    let (broker, mut c) = setup().await;
    let r = list(&mut c, &[(0, -1), (5, -1), (-1, -2)], 7).await;
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0].partition_index, r[0].error_code, r[0].offset),
        (0, 0, 12)
    );
    assert_eq!(
        (r[1].partition_index, r[1].error_code),
        (5, ErrorCode::UnknownTopicOrPartition.code())
    );
    assert_eq!(r[2].error_code, ErrorCode::UnknownTopicOrPartition.code());

    // A partition named twice: INVALID_REQUEST for each occurrence; others are answered.
    let r = list(&mut c, &[(0, -1), (1, -1), (0, -2)], 7).await;
    let codes: Vec<(i32, i16)> = r
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (0, ErrorCode::InvalidRequest.code()),
            (1, 0),
            (0, ErrorCode::InvalidRequest.code())
        ]
    );

    // An unknown topic.
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "ghost".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: -1,
                current_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.send(req, 7).await.unwrap();
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    broker.shutdown().await;
}

/// KIP-320 (v4+): `current_leader_epoch` newer than the leader's is UNKNOWN_LEADER_EPOCH.
#[tokio::test]
async fn list_offsets_current_leader_epoch_is_checked() {
    let (broker, mut c) = setup().await;
    let epoch = topic_metadata(&mut c, "t").await.partitions[0].leader_epoch;
    let mut req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: -1,
                current_leader_epoch: epoch,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = c.send(req.clone(), 7).await.unwrap();
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset, p.leader_epoch), (0, 12, epoch));
    req.topics[0].partitions[0].current_leader_epoch = epoch + 5;
    let r = c.send(req, 7).await.unwrap();
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::UnknownLeaderEpoch.code()
    );
    broker.shutdown().await;
}

/// Offsets stay consistent with what was appended: latest follows every produce.
#[tokio::test]
async fn list_offsets_latest_tracks_appends() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "grow", 1, &[]).await;
    let mut expected = 0;
    for n in 1..=8 {
        assert_eq!(offset_for(&mut c, "grow", 0, -1).await, expected);
        produce_ok(
            &mut c,
            "grow",
            0,
            value_batch("x", n, Default::default(), 1_000),
        )
        .await;
        expected += n as i64;
    }
    assert_eq!(offset_for(&mut c, "grow", 0, -1).await, expected);
    assert_eq!(offset_for(&mut c, "grow", 0, -2).await, 0);
    broker.shutdown().await;
}
