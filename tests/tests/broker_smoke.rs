//! broker-lite end to end with raw kafka-wire requests: create a topic, produce, fetch,
//! list offsets.

use kafka_integration_tests::{batch, RawClient};
use kafka_wire::messages::create_topics_request::CreatableTopic;
use kafka_wire::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_wire::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_wire::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_wire::messages::*;
use kafka_wire::records::{decode_all, Compression};

#[tokio::test]
async fn create_produce_fetch_list_offsets() {
    let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
    let mut c = RawClient::connect(&broker.bootstrap_servers())
        .await
        .unwrap();

    let v = c
        .send(
            ApiVersionsRequest {
                client_software_name: "tests".into(),
                client_software_version: "1".into(),
                ..Default::default()
            },
            3,
        )
        .await
        .unwrap();
    assert_eq!(v.error_code, 0);
    assert!(v.api_keys.iter().any(|k| k.api_key == 0));

    let r = c
        .send(
            CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: "t".into(),
                    num_partitions: 2,
                    replication_factor: 1,
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            },
            7,
        )
        .await
        .unwrap();
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);

    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let records = batch(
            &[(Some(b"k1"), Some(b"v1")), (None, Some(b"v2"))],
            codec,
            1_700_000_000_000,
        );
        let p = c
            .send(
                ProduceRequest {
                    acks: -1,
                    timeout_ms: 1000,
                    topic_data: vec![TopicProduceData {
                        name: "t".into(),
                        partition_data: vec![PartitionProduceData {
                            index: 1,
                            records: Some(records),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                9,
            )
            .await
            .unwrap();
        assert_eq!(
            p.responses[0].partition_responses[0].error_code, 0,
            "{codec:?}: {:?}",
            p.responses[0].partition_responses[0].error_message
        );
    }

    let f = c
        .send(
            FetchRequest {
                replica_id: -1,
                max_wait_ms: 100,
                min_bytes: 1,
                max_bytes: 1 << 20,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: "t".into(),
                    partitions: vec![FetchPartition {
                        partition: 1,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        current_leader_epoch: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            12,
        )
        .await
        .unwrap();
    let pd = &f.responses[0].partitions[0];
    assert_eq!(pd.error_code, 0);
    assert_eq!(pd.high_watermark, 10);
    let batches = decode_all(pd.records.clone().unwrap()).unwrap();
    assert_eq!(batches.len(), 5);
    let mut offsets = Vec::new();
    for b in &batches {
        b.verify_crc().unwrap();
        for r in b.records(1 << 20).unwrap() {
            let r = r.unwrap();
            offsets.push(r.offset);
        }
    }
    assert_eq!(offsets, (0..10).collect::<Vec<i64>>());

    let l = c
        .send(
            ListOffsetsRequest {
                replica_id: -1,
                topics: vec![ListOffsetsTopic {
                    name: "t".into(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: 1,
                        timestamp: -1,
                        current_leader_epoch: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            7,
        )
        .await
        .unwrap();
    assert_eq!(l.topics[0].partitions[0].offset, 10);
    broker.shutdown().await;
}
