//! broker-lite fault injection (`Broker::faults()`): whole-request errors for each API,
//! partition errors, delayed responses, connections dropped after handling a request (the
//! classic lost-response duplicate of KIP-98), FIFO order and `clear`.

use std::time::{Duration, Instant};

use broker_lite::Broker;
use bytes::Bytes;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_wire::messages::*;
use kafka_wire::records::{BatchOptions, Compression, RecordBatchBuilder};
use kafka_wire::{ApiKey, ErrorCode};

/// Hang guard for reads that must see a closed connection; never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

async fn setup(partitions: i32) -> (Broker, RawClient) {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", partitions, &[]).await;
    (broker, c)
}

fn one(value: &str) -> Bytes {
    value_batch(value, 1, Compression::None, 1_000)
}

fn code(c: i16) -> ErrorCode {
    ErrorCode::from_code(c)
}

/// A Produce of one batch to each of `partitions` of "t".
fn produce_to(partitions: &[i32], acks: i16) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: partitions
                .iter()
                .map(|p| PartitionProduceData {
                    index: *p,
                    records: Some(one(&format!("p{p}"))),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The error codes of a Produce response, by partition index.
fn produce_codes(r: &ProduceResponse) -> Vec<(i32, ErrorCode, i64)> {
    r.responses[0]
        .partition_responses
        .iter()
        .map(|p| (p.index, code(p.error_code), p.base_offset))
        .collect()
}

#[tokio::test]
async fn produce_error_fails_every_partition_and_appends_nothing() {
    let (broker, mut c) = setup(2).await;
    broker
        .faults()
        .push_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower);
    let r = c
        .send(produce_to(&[0, 1], -1), PRODUCE_VERSION)
        .await
        .unwrap();
    assert_eq!(
        produce_codes(&r),
        vec![
            (0, ErrorCode::NotLeaderOrFollower, -1),
            (1, ErrorCode::NotLeaderOrFollower, -1)
        ]
    );
    for p in 0..2 {
        assert_eq!(offset_for(&mut c, "t", p, -1).await, 0, "nothing appended");
    }
    // The fault is consumed: the next Produce is handled.
    let r = c
        .send(produce_to(&[0, 1], -1), PRODUCE_VERSION)
        .await
        .unwrap();
    assert_eq!(
        produce_codes(&r),
        vec![(0, ErrorCode::None, 0), (1, ErrorCode::None, 0)]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn errors_are_used_in_fifo_order_and_only_by_their_api() {
    let (broker, mut c) = setup(1).await;
    let faults = broker.faults();
    faults.push_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower);
    faults.push_error(ApiKey::Produce, ErrorCode::RequestTimedOut);
    faults.push_error(ApiKey::Produce, ErrorCode::KafkaStorageError);
    // Other APIs are unaffected.
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 0);
    topic_metadata(&mut c, "t").await;
    // FIFO, across connections.
    assert_eq!(
        code(produce(&mut c, "t", 0, one("a")).await.error_code),
        ErrorCode::NotLeaderOrFollower
    );
    let mut other = connect(&broker.bootstrap_servers()).await;
    assert_eq!(
        code(produce(&mut other, "t", 0, one("b")).await.error_code),
        ErrorCode::RequestTimedOut
    );
    assert_eq!(
        code(produce(&mut c, "t", 0, one("c")).await.error_code),
        ErrorCode::KafkaStorageError
    );
    assert_eq!(produce_ok(&mut c, "t", 0, one("d")).await, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn produce_error_on_acks_0_closes_the_connection() {
    let (broker, mut c) = setup(1).await;
    broker
        .faults()
        .push_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower);
    c.send_no_response(produce_to(&[0], 0), PRODUCE_VERSION)
        .await
        .unwrap();
    assert!(c.is_closed_by_peer(HANG_GUARD).await);
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn error_responses_of_other_apis() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let topic_id = create_topic(&mut c, "t", 1, &[]).await.topic_id;
    produce_ok(&mut c, "t", 0, one("x")).await;
    let faults = broker.faults();
    let e = ErrorCode::NotLeaderOrFollower;

    // Fetch by name (v12): the top-level code and every partition.
    faults.push_error(ApiKey::Fetch, e);
    let r = c
        .send(fetch_request("t", 0, 0, 1 << 20, 0), FETCH_VERSION)
        .await
        .unwrap();
    assert_eq!(code(r.error_code), e);
    let p = &r.responses[0].partitions[0];
    assert_eq!((code(p.error_code), p.high_watermark), (e, -1));
    assert!(p.records.as_ref().is_none_or(|b| b.is_empty()));
    // Fetch by id (v13+): the top-level code only, as Kafka.
    faults.push_error(ApiKey::Fetch, e);
    let mut req = fetch_request("", 0, 0, 1 << 20, 0);
    req.topics[0].topic_id = topic_id;
    let r = c.send(req, 13).await.unwrap();
    assert_eq!(code(r.error_code), e);
    assert!(r.responses.is_empty());

    // Metadata: every requested topic.
    faults.push_error(ApiKey::Metadata, ErrorCode::UnknownServerError);
    let m = metadata(&mut c, Some(&["t"])).await;
    assert_eq!(m.topics.len(), 1);
    assert_eq!(code(m.topics[0].error_code), ErrorCode::UnknownServerError);
    assert!(m.topics[0].partitions.is_empty());
    assert_eq!(topic_metadata(&mut c, "t").await.partitions.len(), 1);

    // ListOffsets: every partition.
    faults.push_error(ApiKey::ListOffsets, e);
    let p = list_offset(&mut c, "t", 0, -1).await;
    assert_eq!((code(p.error_code), p.offset), (e, -1));
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 1);

    // InitProducerId.
    faults.push_error(ApiKey::InitProducerId, ErrorCode::CoordinatorLoadInProgress);
    let req = InitProducerIdRequest {
        transactional_id: None,
        ..Default::default()
    };
    let r = c.send(req.clone(), 4).await.unwrap();
    assert_eq!(
        (code(r.error_code), r.producer_id, r.producer_epoch),
        (ErrorCode::CoordinatorLoadInProgress, -1, -1)
    );
    assert_eq!(c.send(req, 4).await.unwrap().error_code, 0);

    // FindCoordinator: the top-level fields (v0-3), every key (v4+).
    faults.push_error(ApiKey::FindCoordinator, ErrorCode::CoordinatorNotAvailable);
    faults.push_error(ApiKey::FindCoordinator, ErrorCode::CoordinatorNotAvailable);
    let r = c
        .send(
            FindCoordinatorRequest {
                key: "g".into(),
                ..Default::default()
            },
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        (code(r.error_code), r.node_id),
        (ErrorCode::CoordinatorNotAvailable, -1)
    );
    let r = c
        .send(
            FindCoordinatorRequest {
                coordinator_keys: vec!["g1".into(), "g2".into()],
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    let codes: Vec<(String, ErrorCode)> = r
        .coordinators
        .iter()
        .map(|k| (k.key.clone(), code(k.error_code)))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("g1".into(), ErrorCode::CoordinatorNotAvailable),
            ("g2".into(), ErrorCode::CoordinatorNotAvailable)
        ]
    );

    // CreateTopics: nothing is created.
    faults.push_error(ApiKey::CreateTopics, ErrorCode::PolicyViolation);
    let r = create_topic_result(&mut c, "never", 1, &[]).await.unwrap();
    assert_eq!(code(r.error_code), ErrorCode::PolicyViolation);
    assert_eq!(
        code(metadata(&mut c, Some(&["never"])).await.topics[0].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
    assert!(!faults.is_armed(), "every injected error was consumed");
    broker.shutdown().await;
}

#[tokio::test]
async fn partition_error_hits_only_that_partition() {
    let (broker, mut c) = setup(2).await;
    let faults = broker.faults();
    faults.push_partition_error(ApiKey::Produce, "t", 1, ErrorCode::NotLeaderOrFollower);
    // A request without partition 1 leaves the fault queued.
    assert_eq!(produce_ok(&mut c, "t", 0, one("a")).await, 0);
    let r = c
        .send(produce_to(&[0, 1], -1), PRODUCE_VERSION)
        .await
        .unwrap();
    assert_eq!(
        produce_codes(&r),
        vec![
            (0, ErrorCode::None, 1),
            (1, ErrorCode::NotLeaderOrFollower, -1)
        ]
    );
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 2);
    assert_eq!(offset_for(&mut c, "t", 1, -1).await, 0, "not appended");
    // Consumed: the retry goes through.
    assert_eq!(produce_ok(&mut c, "t", 1, one("b")).await, 0);

    // Fetch: only the faulted partition fails, the other returns its records.
    faults.push_partition_error(ApiKey::Fetch, "t", 0, ErrorCode::KafkaStorageError);
    let mut req = fetch_request("t", 0, 0, 1 << 20, 0);
    let second = req.topics[0].partitions[0].clone();
    req.topics[0]
        .partitions
        .push(kafka_wire::messages::fetch_request::FetchPartition {
            partition: 1,
            ..second
        });
    let r = c.send(req, FETCH_VERSION).await.unwrap();
    assert_eq!(r.error_code, 0);
    let parts = &r.responses[0].partitions;
    assert_eq!(
        (parts[0].partition_index, code(parts[0].error_code)),
        (0, ErrorCode::KafkaStorageError)
    );
    assert_eq!((parts[1].partition_index, parts[1].error_code), (1, 0));
    assert_eq!(batches_of(&parts[1]).len(), 1);
    assert_eq!(fetch(&mut c, "t", 0, 0, 1 << 20).await.error_code, 0);

    // ListOffsets.
    faults.push_partition_error(ApiKey::ListOffsets, "t", 1, ErrorCode::NotLeaderOrFollower);
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 2);
    let p = list_offset(&mut c, "t", 1, -1).await;
    assert_eq!(code(p.error_code), ErrorCode::NotLeaderOrFollower);
    assert_eq!(offset_for(&mut c, "t", 1, -1).await, 1);
    assert!(!faults.is_armed());
    broker.shutdown().await;
}

#[tokio::test]
async fn delay_holds_the_response_back_until_cleared() {
    let (broker, mut c) = setup(1).await;
    let faults = broker.faults();
    let delay = Duration::from_millis(300);
    faults.set_delay(ApiKey::Metadata, delay);
    for _ in 0..2 {
        let started = Instant::now();
        topic_metadata(&mut c, "t").await;
        assert!(
            started.elapsed() >= delay,
            "the delay applies to every response"
        );
    }
    // Other APIs are not delayed (no timing assertion: they just work).
    produce_ok(&mut c, "t", 0, one("a")).await;
    // Responses stay in order behind a delayed one on the same connection.
    let mut pipelined = Vec::new();
    pipelined.extend_from_slice(&request_frame(
        MetadataRequest::default(),
        METADATA_VERSION,
        101,
    ));
    pipelined.extend_from_slice(&request_frame(ApiVersionsRequest::default(), 0, 102));
    let mut raw = connect(&broker.bootstrap_servers()).await;
    raw.write_raw(&pipelined).await.unwrap();
    for expected in [101, 102] {
        let frame = raw.read_frame().await.unwrap();
        let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(correlation_id, expected);
    }
    faults.clear_delay(ApiKey::Metadata);
    assert!(!faults.is_armed());
    topic_metadata(&mut c, "t").await;
    broker.shutdown().await;
}

/// One batch of idempotent producer `pid`, epoch 0, sequence `seq`.
fn idempotent(pid: i64, seq: i32) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions {
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: seq,
        ..Default::default()
    });
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    b.append(ts, None, Some(format!("seq-{seq}").as_bytes()), &[])
        .unwrap();
    b.finish().unwrap()
}

#[tokio::test]
async fn dropped_connection_after_an_append_and_the_retry_is_deduplicated() {
    let (broker, mut c) = setup(1).await;
    let pid = c
        .send(
            InitProducerIdRequest {
                transactional_id: None,
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap()
        .producer_id;
    broker.faults().drop_connection_after(ApiKey::Produce, 1);
    // The request is handled (appended) but its response never comes.
    let lost = c
        .send(
            produce_request("t", 0, idempotent(pid, 0), -1),
            PRODUCE_VERSION,
        )
        .await;
    assert!(lost.is_err(), "the connection is closed without a response");
    // The client reconnects and retries: the broker recognizes the batch.
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(
        offset_for(&mut c, "t", 0, -1).await,
        1,
        "the first attempt was appended"
    );
    let retry = produce(&mut c, "t", 0, idempotent(pid, 0)).await;
    assert_eq!((retry.error_code, retry.base_offset), (0, 0));
    assert_eq!(fetch_all(&mut c, "t", 0, 0).await.len(), 1, "stored once");
    // Without idempotence the retry is a second copy: what the fault is for.
    broker.faults().drop_connection_after(ApiKey::Produce, 2);
    for _ in 0..2 {
        let mut c = connect(&broker.bootstrap_servers()).await;
        assert!(c
            .send(produce_request("t", 0, one("plain"), -1), PRODUCE_VERSION)
            .await
            .is_err());
    }
    assert_eq!(
        offset_for(&mut c, "t", 0, -1).await,
        3,
        "both attempts appended"
    );
    assert_eq!(produce_ok(&mut c, "t", 0, one("after")).await, 3);
    assert!(!broker.faults().is_armed());
    broker.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_for_other_apis_keeps_side_effects() {
    let broker = Broker::start_ephemeral().await.unwrap();
    broker
        .faults()
        .drop_connection_after(ApiKey::CreateTopics, 1);
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert!(create_topic_result(&mut c, "made", 1, &[]).await.is_err());
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(topic_metadata(&mut c, "made").await.partitions.len(), 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn clear_removes_every_fault() {
    let (broker, mut c) = setup(1).await;
    let faults = broker.faults();
    faults.push_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower);
    faults.push_partition_error(ApiKey::Fetch, "t", 0, ErrorCode::NotLeaderOrFollower);
    faults.set_delay(ApiKey::Metadata, Duration::from_secs(60));
    faults.drop_connection_after(ApiKey::ListOffsets, 5);
    assert!(faults.is_armed());
    faults.clear();
    assert!(!faults.is_armed());
    assert_eq!(produce_ok(&mut c, "t", 0, one("a")).await, 0);
    assert_eq!(fetch(&mut c, "t", 0, 0, 1 << 20).await.error_code, 0);
    topic_metadata(&mut c, "t").await;
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 1);
    broker.shutdown().await;
}
