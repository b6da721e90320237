//! broker-lite's transaction coordinator (KIP-98, KIP-360, KIP-447, KIP-664) driven with raw
//! requests: FindCoordinator for transactional ids, InitProducerId with epoch bumps and
//! fencing, AddPartitionsToTxn / AddOffsetsToTxn, transactional Produce, EndTxn commit and
//! abort with their markers (read_committed vs read_uncommitted fetches, the last stable
//! offset and the aborted transactions), the coordinator's timeout abort, TxnOffsetCommit
//! offsets that become visible only on commit, a restart in the middle of a commit (markers
//! held back by the fault injector), and Describe/ListTransactions.

use std::path::Path;
use std::time::{Duration, Instant};

use broker_lite::Broker;
use bytes::Bytes;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_wire::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_wire::messages::*;
use kafka_wire::{ApiKey, ErrorCode};

fn code(c: i16) -> ErrorCode {
    ErrorCode::from_code(c)
}

async fn start(dir: Option<&Path>, extra: &[(&str, &str)]) -> Broker {
    let mut b = Broker::builder()
        .config(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "100",
        )
        .unwrap()
        .config("transaction.state.log.num.partitions", "5")
        .unwrap()
        .config("offsets.topic.num.partitions", "5")
        .unwrap();
    if let Some(d) = dir {
        b = b.data_dir(d);
    }
    for (k, v) in extra {
        b = b.config(k, v).unwrap();
    }
    b.start().await.expect("broker starts")
}

async fn connect(broker: &Broker) -> RawClient {
    RawClient::connect(&broker.bootstrap_servers())
        .await
        .expect("connect")
}

/// InitProducerId for `txn` (v4 unless given): `Ok((producer id, epoch))` or the error.
async fn init_pid(
    c: &mut RawClient,
    txn: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    version: i16,
) -> Result<(i64, i16), ErrorCode> {
    let (producer_id, producer_epoch) = expected.unwrap_or((-1, -1));
    let r = c
        .send(
            InitProducerIdRequest {
                transactional_id: Some(txn.into()),
                transaction_timeout_ms: timeout_ms,
                producer_id,
                producer_epoch,
                ..Default::default()
            },
            version,
        )
        .await
        .expect("InitProducerId");
    if r.error_code != 0 {
        assert_eq!((r.producer_id, r.producer_epoch), (-1, -1));
        return Err(code(r.error_code));
    }
    Ok((r.producer_id, r.producer_epoch))
}

/// InitProducerId, retrying CONCURRENT_TRANSACTIONS (an open transaction being aborted).
async fn init_retrying(c: &mut RawClient, txn: &str, timeout_ms: i32) -> (i64, i16) {
    for _ in 0..100 {
        match init_pid(c, txn, timeout_ms, None, 4).await {
            Ok(r) => return r,
            Err(ErrorCode::ConcurrentTransactions) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("InitProducerId: {e:?}"),
        }
    }
    panic!("InitProducerId kept answering CONCURRENT_TRANSACTIONS")
}

async fn end_txn(
    c: &mut RawClient,
    txn: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
    version: i16,
) -> ErrorCode {
    let r = c
        .send(
            EndTxnRequest {
                transactional_id: txn.into(),
                producer_id: pid,
                producer_epoch: epoch,
                committed: commit,
                ..Default::default()
            },
            version,
        )
        .await
        .expect("EndTxn");
    code(r.error_code)
}

async fn add_offsets(
    c: &mut RawClient,
    txn: &str,
    (pid, epoch): (i64, i16),
    group: &str,
) -> ErrorCode {
    let r = c
        .send(
            AddOffsetsToTxnRequest {
                transactional_id: txn.into(),
                producer_id: pid,
                producer_epoch: epoch,
                group_id: group.into(),
                ..Default::default()
            },
            3,
        )
        .await
        .expect("AddOffsetsToTxn");
    code(r.error_code)
}

#[allow(clippy::too_many_arguments)]
async fn txn_offset_commit(
    c: &mut RawClient,
    txn: &str,
    (pid, epoch): (i64, i16),
    group: &str,
    generation: i32,
    member: &str,
    offsets: &[(&str, i32, i64)],
) -> Vec<ErrorCode> {
    let r = c
        .send(
            TxnOffsetCommitRequest {
                transactional_id: txn.into(),
                group_id: group.into(),
                producer_id: pid,
                producer_epoch: epoch,
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: None,
                topics: offsets
                    .iter()
                    .map(|(t, p, o)| TxnOffsetCommitRequestTopic {
                        name: t.to_string(),
                        partitions: vec![TxnOffsetCommitRequestPartition {
                            partition_index: *p,
                            committed_offset: *o,
                            committed_leader_epoch: -1,
                            committed_metadata: Some("m".into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            3,
        )
        .await
        .expect("TxnOffsetCommit");
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| code(p.error_code)))
        .collect()
}

/// OffsetFetch v8 of one partition: `(offset, code)`.
async fn fetch_offset(
    c: &mut RawClient,
    group: &str,
    topic: &str,
    partition: i32,
    require_stable: bool,
) -> (i64, ErrorCode) {
    let r = c
        .send(
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: group.into(),
                    topics: Some(vec![OffsetFetchRequestTopics {
                        name: topic.into(),
                        partition_indexes: vec![partition],
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                require_stable,
                ..Default::default()
            },
            8,
        )
        .await
        .expect("OffsetFetch");
    let p = &r.groups[0].topics[0].partitions[0];
    (p.committed_offset, code(p.error_code))
}

/// The same with OffsetFetch v7 (one group).
async fn fetch_offset_v7(
    c: &mut RawClient,
    group: &str,
    topic: &str,
    partition: i32,
    require_stable: bool,
) -> (i64, ErrorCode) {
    let r = c
        .send(
            OffsetFetchRequest {
                group_id: group.into(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: topic.into(),
                    partition_indexes: vec![partition],
                    ..Default::default()
                }]),
                require_stable,
                ..Default::default()
            },
            7,
        )
        .await
        .expect("OffsetFetch");
    let p = &r.topics[0].partitions[0];
    (p.committed_offset, code(p.error_code))
}

/// Produces a transactional batch (Produce v9 with the transactional id).
async fn produce_txn(
    c: &mut RawClient,
    txn: &str,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> produce_response::PartitionProduceResponse {
    let mut req = produce_request(topic, partition, batch, -1);
    req.transactional_id = Some(txn.into());
    let mut r = c.send(req, PRODUCE_VERSION).await.expect("Produce");
    r.responses.remove(0).partition_responses.remove(0)
}

async fn produce_txn_ok(
    c: &mut RawClient,
    txn: &str,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> i64 {
    let r = produce_txn(c, txn, topic, partition, batch).await;
    assert_eq!(code(r.error_code), ErrorCode::None, "{:?}", r.error_message);
    r.base_offset
}

/// Fetch v12 of one partition from `offset` with the isolation level (0 uncommitted,
/// 1 committed).
async fn fetch_iso(
    c: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> fetch_response::PartitionData {
    let mut req = fetch_request(topic, partition, offset, 1 << 20, 0);
    req.isolation_level = isolation;
    let mut r = c.send(req, FETCH_VERSION).await.expect("Fetch");
    r.responses.remove(0).partitions.remove(0)
}

/// The values of the data (non-control) records of a fetch, minus those of aborted
/// transactions (as a read_committed consumer filters them).
fn visible_values(p: &fetch_response::PartitionData) -> Vec<String> {
    // As the Java consumer: aborted transactions, by first offset, become "open aborted"
    // when the fetch reaches their first offset, until the producer's abort marker.
    let mut aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.first_offset, a.producer_id))
        .collect();
    aborted.sort();
    let mut aborted = std::collections::VecDeque::from(aborted);
    let mut open_aborted: Vec<i64> = Vec::new();
    let mut out = Vec::new();
    for b in batches_of(p) {
        while aborted
            .front()
            .is_some_and(|(first, _)| *first <= b.last_offset())
        {
            if let Some((_, pid)) = aborted.pop_front() {
                open_aborted.push(pid);
            }
        }
        if b.is_control() {
            open_aborted.retain(|pid| *pid != b.producer_id());
            continue;
        }
        if b.is_transactional() && open_aborted.contains(&b.producer_id()) {
            continue;
        }
        for r in b.records(1 << 20).unwrap() {
            let r = r.unwrap();
            out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    out
}

fn control_batches(p: &fetch_response::PartitionData) -> usize {
    batches_of(p).iter().filter(|b| b.is_control()).count()
}

async fn describe_txns(
    c: &mut RawClient,
    ids: &[&str],
) -> Vec<describe_transactions_response::TransactionState> {
    c.send(
        DescribeTransactionsRequest {
            transactional_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        0,
    )
    .await
    .expect("DescribeTransactions")
    .transaction_states
}

async fn txn_state(c: &mut RawClient, id: &str) -> String {
    describe_txns(c, &[id]).await.remove(0).transaction_state
}

async fn wait_for_state(c: &mut RawClient, id: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let s = txn_state(c, id).await;
        if s == want {
            return;
        }
        assert!(Instant::now() < deadline, "{id} is {s}, not {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn find_coordinator_creates_the_transaction_state_topic() {
    let broker = start(None, &[]).await;
    let mut c = connect(&broker).await;
    let r = c
        .send(
            FindCoordinatorRequest {
                key: "tx".into(),
                key_type: 1,
                ..Default::default()
            },
            3,
        )
        .await
        .unwrap();
    assert_eq!(r.error_code, 0);
    assert_eq!(r.node_id, 1);
    let r = c
        .send(
            FindCoordinatorRequest {
                key_type: 1,
                coordinator_keys: vec!["a".into(), "b".into(), String::new()],
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    let codes: Vec<i16> = r.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, vec![0, 0, ErrorCode::InvalidRequest.code()]);
    let m = topic_metadata(&mut c, "__transaction_state").await;
    assert_eq!(m.error_code, 0);
    assert_eq!(m.partitions.len(), 5);
    // ApiVersions advertises the transaction APIs (AddPartitionsToTxn: the client form).
    let v = c.send(ApiVersionsRequest::default(), 3).await.unwrap();
    let range = |k: ApiKey| {
        v.api_keys
            .iter()
            .find(|a| a.api_key == k.key())
            .map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(range(ApiKey::AddPartitionsToTxn), Some((0, 3)));
    assert_eq!(range(ApiKey::AddOffsetsToTxn), Some((0, 4)));
    assert_eq!(range(ApiKey::EndTxn), Some((0, 4)));
    assert_eq!(range(ApiKey::TxnOffsetCommit), Some((0, 4)));
    assert_eq!(range(ApiKey::DescribeTransactions), Some((0, 0)));
    assert_eq!(range(ApiKey::ListTransactions), Some((0, 1)));
    assert_eq!(range(ApiKey::WriteTxnMarkers), None);
    broker.shutdown().await;
}

#[tokio::test]
async fn init_producer_id_validates_and_bumps() {
    let broker = start(None, &[("transaction.max.timeout.ms", "60000")]).await;
    let mut c = connect(&broker).await;
    assert_eq!(
        init_pid(&mut c, "", 1000, None, 4).await,
        Err(ErrorCode::InvalidRequest)
    );
    assert_eq!(
        init_pid(&mut c, "tx", 60_001, None, 4).await,
        Err(ErrorCode::InvalidTransactionTimeout)
    );
    assert_eq!(
        init_pid(&mut c, "tx", 0, None, 4).await,
        Err(ErrorCode::InvalidTransactionTimeout)
    );
    let (pid, e0) = init_pid(&mut c, "tx", 1000, None, 0).await.unwrap();
    assert_eq!(e0, 0);
    let (pid1, e1) = init_pid(&mut c, "tx", 1000, None, 2).await.unwrap();
    assert_eq!((pid1, e1), (pid, 1));
    // KIP-360: the producer (pid, 1) bumps; its retry gets the same answer.
    let (_, e2) = init_pid(&mut c, "tx", 1000, Some((pid, 1)), 4)
        .await
        .unwrap();
    assert_eq!(e2, 2);
    let again = init_pid(&mut c, "tx", 1000, Some((pid, 1)), 4)
        .await
        .unwrap();
    assert_eq!(again, (pid, 2));
    // A stale producer is fenced (INVALID_PRODUCER_EPOCH before v4).
    assert_eq!(
        init_pid(&mut c, "tx", 1000, Some((pid, 0)), 4).await,
        Err(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        init_pid(&mut c, "tx", 1000, Some((pid, 0)), 3).await,
        Err(ErrorCode::InvalidProducerEpoch)
    );
    // Idempotent producers are unchanged: a fresh id each time.
    let idempotent = InitProducerIdRequest {
        transactional_id: None,
        ..Default::default()
    };
    let r = c.send(idempotent, 4).await.unwrap();
    assert_eq!(r.error_code, 0);
    assert_ne!(r.producer_id, pid);
    broker.shutdown().await;
}

#[tokio::test]
async fn commit_and_abort_write_markers_and_read_committed_filters() {
    let broker = start(None, &[]).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let pe = init_pid(&mut c, "tx", 60_000, None, 4).await.unwrap();
    // Unknown partitions: nothing is added.
    let codes =
        add_partitions_to_txn(&mut c, "tx", pe, &[("t", 0), ("nope", 0), ("t", 7)], 3).await;
    assert_eq!(
        codes,
        vec![
            ErrorCode::OperationNotAttempted,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::UnknownTopicOrPartition
        ]
    );
    assert_eq!(txn_state(&mut c, "tx").await, "Empty");
    // Ending a transaction that never started.
    assert_eq!(
        end_txn(&mut c, "tx", pe, true, 3).await,
        ErrorCode::InvalidTxnState
    );
    // Transaction 1: committed.
    add_partitions_to_txn_ok(&mut c, "tx", pe, &[("t", 0)]).await;
    add_partitions_to_txn_ok(&mut c, "tx", pe, &[("t", 0)]).await; // again: fine
    assert_eq!(txn_state(&mut c, "tx").await, "Ongoing");
    let first = produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(pe, 0, "c", 3)).await;
    assert_eq!(first, 0);
    assert_eq!(end_txn(&mut c, "tx", pe, true, 3).await, ErrorCode::None);
    assert_eq!(txn_state(&mut c, "tx").await, "CompleteCommit");
    // Retries: the same outcome is fine, the other is not.
    assert_eq!(end_txn(&mut c, "tx", pe, true, 3).await, ErrorCode::None);
    assert_eq!(
        end_txn(&mut c, "tx", pe, false, 3).await,
        ErrorCode::InvalidTxnState
    );
    assert_eq!(
        end_txn(&mut c, "tx", (pe.0 + 1, pe.1), true, 3).await,
        ErrorCode::InvalidProducerIdMapping
    );
    assert_eq!(
        end_txn(&mut c, "tx", (pe.0, pe.1 + 1), true, 3).await,
        ErrorCode::ProducerFenced
    );
    assert_eq!(
        end_txn(&mut c, "tx", (pe.0, pe.1 + 1), true, 1).await,
        ErrorCode::InvalidProducerEpoch
    );
    // Transaction 2: aborted.
    add_partitions_to_txn_ok(&mut c, "tx", pe, &[("t", 0)]).await;
    let aborted_first = produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(pe, 3, "a", 2)).await;
    assert_eq!(aborted_first, 4, "after 3 records and the commit marker");
    assert_eq!(end_txn(&mut c, "tx", pe, false, 3).await, ErrorCode::None);
    assert_eq!(txn_state(&mut c, "tx").await, "CompleteAbort");
    // Transaction 3: committed after the abort.
    add_partitions_to_txn_ok(&mut c, "tx", pe, &[("t", 0)]).await;
    produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(pe, 5, "d", 1)).await;
    assert_eq!(end_txn(&mut c, "tx", pe, true, 3).await, ErrorCode::None);

    let all = fetch_iso(&mut c, "t", 0, 0, 0).await;
    assert_eq!(all.high_watermark, 9, "6 records and 3 markers");
    assert_eq!(control_batches(&all), 3);
    let data: Vec<_> = batches_of(&all)
        .into_iter()
        .filter(|b| !b.is_control())
        .collect();
    let values: Vec<String> = records_of(&data)
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(values, ["c-0", "c-1", "c-2", "a-0", "a-1", "d-0"]);

    let committed = fetch_iso(&mut c, "t", 0, 0, 1).await;
    assert_eq!(committed.last_stable_offset, 9);
    assert_eq!(
        committed
            .aborted_transactions
            .iter()
            .flatten()
            .map(|a| (a.producer_id, a.first_offset))
            .collect::<Vec<_>>(),
        vec![(pe.0, aborted_first)]
    );
    assert_eq!(visible_values(&committed), ["c-0", "c-1", "c-2", "d-0"]);

    // An open transaction holds the last stable offset at its first offset.
    add_partitions_to_txn_ok(&mut c, "tx", pe, &[("t", 0)]).await;
    let open = produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(pe, 6, "o", 1)).await;
    let p = fetch_iso(&mut c, "t", 0, 0, 1).await;
    assert_eq!(p.high_watermark, 10);
    assert_eq!(p.last_stable_offset, open);
    assert_eq!(visible_values(&p), ["c-0", "c-1", "c-2", "d-0"]);
    let desc = describe_txns(&mut c, &["tx"]).await.remove(0);
    assert_eq!(desc.transaction_state, "Ongoing");
    assert_eq!(desc.topics.len(), 1);
    assert_eq!(
        (
            desc.topics[0].topic.as_str(),
            desc.topics[0].partitions.clone()
        ),
        ("t", vec![0])
    );
    assert!(desc.transaction_start_time_ms > 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_new_instance_fences_the_old_one_and_aborts_its_transaction() {
    let broker = start(None, &[]).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let old = init_pid(&mut c, "tx", 60_000, None, 4).await.unwrap();
    add_partitions_to_txn_ok(&mut c, "tx", old, &[("t", 0)]).await;
    produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(old, 0, "old", 2)).await;
    // The new instance: the open transaction is aborted first (retry), then it gets old+2.
    assert_eq!(
        init_pid(&mut c, "tx", 60_000, None, 4).await,
        Err(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(txn_state(&mut c, "tx").await, "CompleteAbort");
    let new = init_retrying(&mut c, "tx", 60_000).await;
    assert_eq!(new, (old.0, old.1 + 2));
    // The old instance is fenced everywhere.
    assert_eq!(
        end_txn(&mut c, "tx", old, true, 3).await,
        ErrorCode::ProducerFenced
    );
    assert_eq!(
        add_partitions_to_txn(&mut c, "tx", old, &[("t", 0)], 3).await,
        vec![ErrorCode::ProducerFenced]
    );
    assert_eq!(
        add_partitions_to_txn(&mut c, "tx", old, &[("t", 0)], 1).await,
        vec![ErrorCode::InvalidProducerEpoch]
    );
    let r = produce_txn(&mut c, "tx", "t", 0, txn_batch(old, 2, "late", 1)).await;
    assert!(
        matches!(
            code(r.error_code),
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced
        ),
        "a fenced producer's batch is refused: {:?}",
        code(r.error_code)
    );
    // The new instance works; the old records were aborted.
    add_partitions_to_txn_ok(&mut c, "tx", new, &[("t", 0)]).await;
    produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(new, 0, "new", 1)).await;
    assert_eq!(end_txn(&mut c, "tx", new, true, 3).await, ErrorCode::None);
    let p = fetch_iso(&mut c, "t", 0, 0, 1).await;
    assert_eq!(visible_values(&p), ["new-0"]);
    let p = fetch_iso(&mut c, "t", 0, 0, 0).await;
    assert_eq!(control_batches(&p), 2);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_transaction_left_open_past_its_timeout_is_aborted() {
    let broker = start(None, &[]).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let pe = init_pid(&mut c, "slow", 300, None, 4).await.unwrap();
    add_partitions_to_txn_ok(&mut c, "slow", pe, &[("t", 0)]).await;
    produce_txn_ok(&mut c, "slow", "t", 0, txn_batch(pe, 0, "x", 2)).await;
    wait_for_state(&mut c, "slow", "CompleteAbort", Duration::from_secs(10)).await;
    let d = describe_txns(&mut c, &["slow"]).await.remove(0);
    assert_eq!(d.producer_epoch, pe.1 + 1, "the abort bumped the epoch");
    // The producer learns it was fenced.
    assert_eq!(
        end_txn(&mut c, "slow", pe, true, 3).await,
        ErrorCode::ProducerFenced
    );
    assert_eq!(
        end_txn(&mut c, "slow", pe, false, 1).await,
        ErrorCode::InvalidProducerEpoch
    );
    let p = fetch_iso(&mut c, "t", 0, 0, 1).await;
    assert_eq!(p.last_stable_offset, 3);
    assert!(visible_values(&p).is_empty());
    let p = fetch_iso(&mut c, "t", 0, 0, 0).await;
    assert_eq!(control_batches(&p), 1);
    // A new InitProducerId continues from the bumped epoch.
    assert_eq!(
        init_pid(&mut c, "slow", 300, None, 4).await,
        Ok((pe.0, pe.1 + 2))
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn transactional_offsets_are_visible_only_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(Some(dir.path()), &[]).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "in", 2, &[]).await;
    let pe = init_pid(&mut c, "tx", 60_000, None, 4).await.unwrap();
    assert_eq!(add_offsets(&mut c, "tx", pe, "g").await, ErrorCode::None);
    assert_eq!(
        add_offsets(&mut c, "tx", (pe.0, pe.1 + 1), "g").await,
        ErrorCode::ProducerFenced
    );
    assert_eq!(
        add_offsets(&mut c, "tx", pe, "").await,
        ErrorCode::InvalidGroupId
    );
    let d = describe_txns(&mut c, &["tx"]).await.remove(0);
    assert_eq!(d.transaction_state, "Ongoing");
    assert_eq!(d.topics[0].topic, "__consumer_offsets");
    let codes = txn_offset_commit(
        &mut c,
        "tx",
        pe,
        "g",
        -1,
        "",
        &[("in", 0, 42), ("nope", 0, 1)],
    )
    .await;
    assert_eq!(
        codes,
        vec![ErrorCode::None, ErrorCode::UnknownTopicOrPartition]
    );
    // Pending: not visible; require_stable says so.
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 0, false).await,
        (-1, ErrorCode::None)
    );
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 0, true).await,
        (-1, ErrorCode::UnstableOffsetCommit)
    );
    assert_eq!(
        fetch_offset_v7(&mut c, "g", "in", 0, true).await,
        (-1, ErrorCode::UnstableOffsetCommit)
    );
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 1, true).await,
        (-1, ErrorCode::None)
    );
    assert_eq!(end_txn(&mut c, "tx", pe, true, 3).await, ErrorCode::None);
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 0, true).await,
        (42, ErrorCode::None)
    );
    // An aborted transaction's offsets are dropped.
    assert_eq!(add_offsets(&mut c, "tx", pe, "g").await, ErrorCode::None);
    assert_eq!(
        txn_offset_commit(&mut c, "tx", pe, "g", -1, "", &[("in", 0, 50)]).await,
        vec![ErrorCode::None]
    );
    assert_eq!(end_txn(&mut c, "tx", pe, false, 3).await, ErrorCode::None);
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 0, true).await,
        (42, ErrorCode::None)
    );
    // KIP-447 member checks (v3+).
    assert_eq!(
        txn_offset_commit(&mut c, "tx", pe, "g", 0, "someone", &[("in", 0, 1)]).await,
        vec![ErrorCode::UnknownMemberId]
    );
    assert_eq!(
        txn_offset_commit(&mut c, "tx", pe, "unknown-group", 3, "m", &[("in", 0, 1)]).await,
        vec![ErrorCode::IllegalGeneration]
    );
    // A transaction left open at the restart: its offset stays pending.
    assert_eq!(add_offsets(&mut c, "tx", pe, "g").await, ErrorCode::None);
    assert_eq!(
        txn_offset_commit(&mut c, "tx", pe, "g", -1, "", &[("in", 1, 9)]).await,
        vec![ErrorCode::None]
    );
    drop(c);
    broker.shutdown().await;
    // The replay applies the markers: the committed offset, not the aborted one; the open
    // transaction's offset is still pending until it ends.
    let broker = start(Some(dir.path()), &[]).await;
    let mut c = connect(&broker).await;
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 0, true).await,
        (42, ErrorCode::None)
    );
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 1, true).await,
        (-1, ErrorCode::UnstableOffsetCommit)
    );
    assert_eq!(end_txn(&mut c, "tx", pe, true, 3).await, ErrorCode::None);
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 1, true).await,
        (9, ErrorCode::None)
    );
    drop(c);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_commit_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(Some(dir.path()), &[]).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", 2, &[]).await;
    create_topic(&mut c, "in", 1, &[]).await;
    let pe = init_pid(&mut c, "tx", 60_000, None, 4).await.unwrap();
    add_partitions_to_txn_ok(&mut c, "tx", pe, &[("t", 0), ("t", 1)]).await;
    assert_eq!(add_offsets(&mut c, "tx", pe, "g").await, ErrorCode::None);
    produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(pe, 0, "p0", 3)).await;
    produce_txn_ok(&mut c, "tx", "t", 1, txn_batch(pe, 0, "p1", 2)).await;
    assert_eq!(
        txn_offset_commit(&mut c, "tx", pe, "g", -1, "", &[("in", 0, 7)]).await,
        vec![ErrorCode::None]
    );
    broker.faults().hold_txn_markers(true);
    assert_eq!(end_txn(&mut c, "tx", pe, true, 3).await, ErrorCode::None);
    assert_eq!(txn_state(&mut c, "tx").await, "PrepareCommit");
    // Nothing is committed yet: read_committed sees nothing, the offset is pending.
    for p in 0..2 {
        let f = fetch_iso(&mut c, "t", p, 0, 1).await;
        assert_eq!(f.last_stable_offset, 0, "partition {p}");
        assert!(visible_values(&f).is_empty());
    }
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 0, false).await,
        (-1, ErrorCode::None)
    );
    // The client retries: markers still being written.
    assert_eq!(
        init_pid(&mut c, "tx", 60_000, None, 4).await,
        Err(ErrorCode::ConcurrentTransactions)
    );
    drop(c);
    broker.shutdown().await;

    let broker = start(Some(dir.path()), &[]).await;
    let mut c = connect(&broker).await;
    assert_eq!(txn_state(&mut c, "tx").await, "CompleteCommit");
    let f = fetch_iso(&mut c, "t", 0, 0, 1).await;
    assert_eq!(visible_values(&f), ["p0-0", "p0-1", "p0-2"]);
    assert_eq!(f.last_stable_offset, 4);
    let f = fetch_iso(&mut c, "t", 1, 0, 1).await;
    assert_eq!(visible_values(&f), ["p1-0", "p1-1"]);
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 0, true).await,
        (7, ErrorCode::None)
    );
    // The coordinator's state was restored: the next InitProducerId bumps the stored epoch.
    assert_eq!(
        init_pid(&mut c, "tx", 60_000, None, 4).await,
        Ok((pe.0, pe.1 + 1))
    );
    drop(c);
    broker.shutdown().await;

    // Once more: the bumped epoch and the committed offset survive.
    let broker = start(Some(dir.path()), &[]).await;
    let mut c = connect(&broker).await;
    let d = describe_txns(&mut c, &["tx"]).await.remove(0);
    assert_eq!(
        (d.transaction_state.as_str(), d.producer_epoch),
        ("Empty", pe.1 + 1)
    );
    assert_eq!(
        fetch_offset(&mut c, "g", "in", 0, true).await,
        (7, ErrorCode::None)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn held_markers_are_written_once_released() {
    let broker = start(None, &[]).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let pe = init_pid(&mut c, "tx", 60_000, None, 4).await.unwrap();
    add_partitions_to_txn_ok(&mut c, "tx", pe, &[("t", 0)]).await;
    produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(pe, 0, "v", 1)).await;
    broker.faults().hold_txn_markers(true);
    assert_eq!(end_txn(&mut c, "tx", pe, false, 3).await, ErrorCode::None);
    assert_eq!(
        end_txn(&mut c, "tx", pe, false, 3).await,
        ErrorCode::ConcurrentTransactions
    );
    assert_eq!(
        end_txn(&mut c, "tx", pe, true, 3).await,
        ErrorCode::InvalidTxnState
    );
    assert_eq!(
        add_partitions_to_txn(&mut c, "tx", pe, &[("t", 0)], 3).await,
        vec![ErrorCode::ConcurrentTransactions]
    );
    broker.faults().hold_txn_markers(false);
    wait_for_state(&mut c, "tx", "CompleteAbort", Duration::from_secs(10)).await;
    let p = fetch_iso(&mut c, "t", 0, 0, 0).await;
    assert_eq!(control_batches(&p), 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn describe_and_list_transactions() {
    let broker = start(None, &[]).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let a = init_pid(&mut c, "a", 60_000, None, 4).await.unwrap();
    let b = init_pid(&mut c, "b", 45_000, None, 4).await.unwrap();
    add_partitions_to_txn_ok(&mut c, "a", a, &[("t", 0)]).await;
    let d = describe_txns(&mut c, &["a", "b", "nope", ""]).await;
    assert_eq!(d[0].transaction_state, "Ongoing");
    assert_eq!(
        (
            d[0].producer_id,
            d[0].producer_epoch,
            d[0].transaction_timeout_ms
        ),
        (a.0, 0, 60_000)
    );
    assert_eq!(d[1].transaction_state, "Empty");
    assert_eq!(
        (d[1].transaction_timeout_ms, d[1].transaction_start_time_ms),
        (45_000, -1)
    );
    assert!(d[1].topics.is_empty());
    assert_eq!(code(d[2].error_code), ErrorCode::TransactionalIdNotFound);
    assert_eq!(code(d[3].error_code), ErrorCode::InvalidRequest);

    let list = |states: &[&str], pids: &[i64], duration: i64| ListTransactionsRequest {
        state_filters: states.iter().map(|s| s.to_string()).collect(),
        producer_id_filters: pids.to_vec(),
        duration_filter: duration,
        ..Default::default()
    };
    let ids = |r: &ListTransactionsResponse| {
        r.transaction_states
            .iter()
            .map(|t| (t.transactional_id.clone(), t.transaction_state.clone()))
            .collect::<Vec<_>>()
    };
    let r = c.send(list(&[], &[], -1), 0).await.unwrap();
    assert_eq!(r.error_code, 0);
    assert_eq!(
        ids(&r),
        vec![("a".into(), "Ongoing".into()), ("b".into(), "Empty".into())]
    );
    let r = c.send(list(&["Ongoing"], &[], -1), 0).await.unwrap();
    assert_eq!(ids(&r), vec![("a".into(), "Ongoing".into())]);
    let r = c.send(list(&[], &[b.0], -1), 0).await.unwrap();
    assert_eq!(ids(&r), vec![("b".into(), "Empty".into())]);
    let r = c.send(list(&["Bogus"], &[], -1), 0).await.unwrap();
    assert_eq!(r.unknown_state_filters, vec!["Bogus".to_string()]);
    assert_eq!(r.transaction_states.len(), 2);
    // v1 (KIP-994): only transactions running longer than the duration.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = c.send(list(&["Ongoing"], &[], 3_600_000), 1).await.unwrap();
    assert!(r.transaction_states.is_empty());
    let r = c.send(list(&["Ongoing"], &[], 5), 1).await.unwrap();
    assert_eq!(ids(&r), vec![("a".into(), "Ongoing".into())]);
    broker.shutdown().await;
}

#[tokio::test]
async fn requests_after_shutdown_starts_are_refused_by_the_coordinator() {
    let broker = start(None, &[]).await;
    let state = broker.state().clone();
    let pe = state
        .txns()
        .init_producer_id(&state, "tx", 1000, None, broker_lite::state::now_ms())
        .unwrap();
    state.txns().shutdown();
    assert_eq!(
        state
            .txns()
            .end_txn(&state, "tx", pe.0, pe.1, true, broker_lite::state::now_ms()),
        Err(ErrorCode::NotCoordinator)
    );
    assert_eq!(
        state.txns().describe("tx").err(),
        Some(ErrorCode::CoordinatorNotAvailable)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_deleted_topic_does_not_wedge_the_commit() {
    let broker = start(None, &[]).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", 1, &[]).await;
    create_topic(&mut c, "gone", 1, &[]).await;
    let pe = init_pid(&mut c, "tx", 60_000, None, 4).await.unwrap();
    add_partitions_to_txn_ok(&mut c, "tx", pe, &[("t", 0), ("gone", 0)]).await;
    produce_txn_ok(&mut c, "tx", "t", 0, txn_batch(pe, 0, "kept", 1)).await;
    produce_txn_ok(&mut c, "tx", "gone", 0, txn_batch(pe, 0, "lost", 1)).await;
    let r = c
        .send(
            DeleteTopicsRequest {
                topic_names: vec!["gone".into()],
                timeout_ms: 5000,
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(end_txn(&mut c, "tx", pe, true, 3).await, ErrorCode::None);
    assert_eq!(txn_state(&mut c, "tx").await, "CompleteCommit");
    let p = fetch_iso(&mut c, "t", 0, 0, 1).await;
    assert_eq!(visible_values(&p), ["kept-0"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn idle_transactional_ids_expire() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = [
        ("transactional.id.expiration.ms", "200"),
        (
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            "100",
        ),
    ];
    let broker = start(Some(dir.path()), &cfg).await;
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", 1, &[]).await;
    init_pid(&mut c, "idle", 60_000, None, 4).await.unwrap();
    let busy = init_pid(&mut c, "busy", 60_000, None, 4).await.unwrap();
    add_partitions_to_txn_ok(&mut c, "busy", busy, &[("t", 0)]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = describe_txns(&mut c, &["idle"]).await.remove(0);
        if code(d.error_code) == ErrorCode::TransactionalIdNotFound {
            break;
        }
        assert!(Instant::now() < deadline, "idle never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An open transaction never expires.
    assert_eq!(txn_state(&mut c, "busy").await, "Ongoing");
    drop(c);
    broker.shutdown().await;
    // The tombstone survives a restart.
    let broker = start(Some(dir.path()), &[]).await;
    let mut c = connect(&broker).await;
    let d = describe_txns(&mut c, &["idle", "busy"]).await;
    assert_eq!(code(d[0].error_code), ErrorCode::TransactionalIdNotFound);
    assert_eq!(d[1].transaction_state, "Ongoing");
    broker.shutdown().await;
}
