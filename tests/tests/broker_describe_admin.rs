//! DescribeLogDirs (KIP-113), DescribeProducers (KIP-664) and the ACL APIs (KIP-140) against
//! broker-lite with raw kafka-wire requests, at every advertised version: log directory sizes
//! equal to the segment files on disk (internal topics included), the producer state after
//! idempotent and transactional produces (before and after the commit marker, and after a
//! restart), and SECURITY_DISABLED with Kafka's messages from the ACL APIs of a broker
//! without an authorizer.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use broker_lite::Broker;
use bytes::Bytes;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::create_acls_request::AclCreation;
use kafka_wire::messages::delete_acls_request::DeleteAclsFilter;
use kafka_wire::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_wire::messages::describe_producers_request::TopicRequest;
use kafka_wire::messages::describe_producers_response::PartitionResponse;
use kafka_wire::messages::*;
use kafka_wire::records::{BatchOptions, Compression, RecordBatchBuilder};
use kafka_wire::{ApiKey, ErrorCode};

/// Hang guard for the asynchronous commit markers; never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn now() -> i64 {
    broker_lite::state::now_ms()
}

async fn start(dir: &Path) -> Broker {
    Broker::builder()
        .data_dir(dir)
        .config("transaction.state.log.num.partitions", "2")
        .unwrap()
        .start()
        .await
        .expect("broker starts on the data dir")
}

/// Bytes of the `.log` segment files of `<dir>/<topic>-<partition>`.
fn log_bytes(dir: &Path, topic: &str, partition: i32) -> i64 {
    std::fs::read_dir(dir.join(format!("{topic}-{partition}")))
        .expect("partition dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().expect("metadata").len() as i64)
        .sum()
}

/// DescribeLogDirs at `version`; checks the single log directory and returns its partitions
/// as `(topic, partition) -> (size, offset lag, is future)`.
async fn describe_log_dirs(
    c: &mut RawClient,
    dir: &Path,
    topics: Option<&[(&str, &[i32])]>,
    version: i16,
) -> BTreeMap<(String, i32), (i64, i64, bool)> {
    let req = DescribeLogDirsRequest {
        topics: topics.map(|t| {
            t.iter()
                .map(|(topic, partitions)| DescribableLogDirTopic {
                    topic: (*topic).into(),
                    partitions: partitions.to_vec(),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    };
    let r = c.send(req, version).await.expect("DescribeLogDirs");
    assert_eq!((r.throttle_time_ms, r.error_code), (0, 0), "v{version}");
    assert_eq!(r.results.len(), 1, "one log directory");
    let result = &r.results[0];
    assert_eq!(result.error_code, 0);
    let expected_dir = std::path::absolute(dir).unwrap();
    assert_eq!(Path::new(&result.log_dir), expected_dir, "v{version}");
    if version >= 4 {
        // The volume's size and free space (statvfs), as Kafka's FileStore reports them.
        assert!(result.total_bytes > 0, "v{version}: {}", result.total_bytes);
        assert!(
            (0..=result.total_bytes).contains(&result.usable_bytes),
            "v{version}: {} of {}",
            result.usable_bytes,
            result.total_bytes
        );
    } else {
        // Not in the format below v4: decoded as the default, -1 (unknown).
        assert_eq!((result.total_bytes, result.usable_bytes), (-1, -1));
    }
    let mut out = BTreeMap::new();
    for t in &result.topics {
        assert!(!t.partitions.is_empty(), "no empty topic: {}", t.name);
        for p in &t.partitions {
            let previous = out.insert(
                (t.name.clone(), p.partition_index),
                (p.partition_size, p.offset_lag, p.is_future_key),
            );
            assert!(previous.is_none(), "{}-{} twice", t.name, p.partition_index);
        }
    }
    out
}

/// What DescribeLogDirs should say for `partitions`: their file sizes, lag 0, not future.
fn on_disk(dir: &Path, partitions: &[(&str, i32)]) -> BTreeMap<(String, i32), (i64, i64, bool)> {
    partitions
        .iter()
        .map(|&(t, p)| ((t.to_string(), p), (log_bytes(dir, t, p), 0, false)))
        .collect()
}

#[tokio::test]
async fn describe_log_dirs_reports_every_partition_with_its_size_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let versions = advertised_versions(&mut c, ApiKey::DescribeLogDirs).await;
    assert_eq!(versions, 0..=4);

    create_topic(&mut c, "a", 2, &[]).await;
    create_topic(&mut c, "b", 1, &[("segment.bytes", "300")]).await;
    for i in 0..3 {
        produce_ok(
            &mut c,
            "a",
            1,
            value_batch("a", i + 1, Compression::None, now()),
        )
        .await;
    }
    // Several segments in b-0: the size is all of them.
    for _ in 0..8 {
        produce_ok(
            &mut c,
            "b",
            0,
            value_batch("bbbb", 2, Compression::None, now()),
        )
        .await;
    }
    // The transaction coordinator's topic (internal) is created by FindCoordinator.
    let fc = c
        .send(
            FindCoordinatorRequest {
                key_type: 1,
                coordinator_keys: vec!["tx".into()],
                ..Default::default()
            },
            4,
        )
        .await
        .expect("FindCoordinator");
    assert_eq!(fc.coordinators[0].error_code, 0);
    let segments = std::fs::read_dir(dir.path().join("b-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    assert!(segments >= 3, "b-0 has {segments} segments");

    let all = [
        ("__transaction_state", 0),
        ("__transaction_state", 1),
        ("a", 0),
        ("a", 1),
        ("b", 0),
    ];
    let expected_all = on_disk(dir.path(), &all);
    assert_eq!(expected_all[&("a".to_string(), 0)].0, 0);
    assert!(expected_all[&("a".to_string(), 1)].0 > 0);
    assert!(expected_all[&("b".to_string(), 0)].0 > 300);
    for version in versions {
        assert_eq!(
            describe_log_dirs(&mut c, dir.path(), None, version).await,
            expected_all,
            "v{version}"
        );
        // Named partitions only; unknown topics and partitions are absent, a topic with
        // none left is left out.
        assert_eq!(
            describe_log_dirs(
                &mut c,
                dir.path(),
                Some(&[
                    ("a", &[1, 9]),
                    ("nope", &[0]),
                    ("b", &[3]),
                    ("__transaction_state", &[1]),
                ]),
                version
            )
            .await,
            on_disk(dir.path(), &[("__transaction_state", 1), ("a", 1)]),
            "v{version}"
        );
        assert!(describe_log_dirs(&mut c, dir.path(), Some(&[]), version)
            .await
            .is_empty());
    }
    broker.shutdown().await;
}

/// A batch of producer `(pid, epoch)`: `timestamps.len()` records from sequence `seq`.
fn producer_batch((pid, epoch): (i64, i16), seq: i32, txn: bool, timestamps: &[i64]) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        is_transactional: txn,
        ..Default::default()
    });
    for ts in timestamps {
        b.append(*ts, None, Some(b"v"), &[]).unwrap();
    }
    b.finish().unwrap()
}

/// `(producer_id, epoch, last_sequence, last_timestamp, coordinator_epoch, txn_start)`.
type Row = (i64, i32, i32, i64, i32, i64);

fn rows(p: &PartitionResponse) -> Vec<Row> {
    p.active_producers
        .iter()
        .map(|s| {
            (
                s.producer_id,
                s.producer_epoch,
                s.last_sequence,
                s.last_timestamp,
                s.coordinator_epoch,
                s.current_txn_start_offset,
            )
        })
        .collect()
}

/// DescribeProducers (v0) of `topic`'s `partitions`: `(index, error, message, producers)`.
async fn describe_producers(
    c: &mut RawClient,
    topics: &[(&str, &[i32])],
) -> Vec<(String, i32, ErrorCode, Option<String>, Vec<Row>)> {
    let r = c
        .send(
            DescribeProducersRequest {
                topics: topics
                    .iter()
                    .map(|(name, partitions)| TopicRequest {
                        name: (*name).into(),
                        partition_indexes: partitions.to_vec(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            0,
        )
        .await
        .expect("DescribeProducers");
    assert_eq!(r.throttle_time_ms, 0);
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.clone(),
                    p.partition_index,
                    ErrorCode::from_code(p.error_code),
                    p.error_message.clone(),
                    rows(p),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn describe_producers_reports_idempotent_and_transactional_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(
        advertised_versions(&mut c, ApiKey::DescribeProducers).await,
        0..=0
    );
    create_topic(&mut c, "t", 2, &[]).await;

    // An idempotent producer: sequences 0-2, then 3-4, at known timestamps.
    let idem = init_producer(&mut c, None).await;
    assert_eq!(idem.1, 0);
    let t0 = now();
    let b1 = producer_batch(idem, 0, false, &[t0, t0 + 5, t0 + 2]);
    assert_eq!(produce_ok(&mut c, "t", 0, b1).await, 0);
    let b2 = producer_batch(idem, 3, false, &[t0 + 7, t0 + 9]);
    assert_eq!(produce_ok(&mut c, "t", 0, b2).await, 3);
    let idem_row = (idem.0, 0, 4, t0 + 9, -1, -1);

    // A transactional producer: one batch (sequences 0-1) in t-0 at offset 5, t-1 added to
    // the transaction but never written to.
    let txn = init_producer(&mut c, Some("tx")).await;
    add_partitions_to_txn_ok(&mut c, "tx", txn, &[("t", 0), ("t", 1)]).await;
    let mut req = produce_request(
        "t",
        0,
        producer_batch(txn, 0, true, &[t0 + 20, t0 + 21]),
        -1,
    );
    req.transactional_id = Some("tx".into());
    let pr = c.send(req, PRODUCE_VERSION).await.expect("Produce");
    let pr = &pr.responses[0].partition_responses[0];
    assert_eq!((pr.error_code, pr.base_offset), (0, 5));

    let mut open = vec![idem_row, (txn.0, i32::from(txn.1), 1, t0 + 21, -1, 5)];
    open.sort_unstable();
    let not_hosted = Some("This server does not host this topic-partition.".to_string());
    assert_eq!(
        describe_producers(&mut c, &[("t", &[0, 1, 2]), ("nope", &[0]), ("a b", &[1])]).await,
        vec![
            ("t".into(), 0, ErrorCode::None, None, open.clone()),
            ("t".into(), 1, ErrorCode::None, None, vec![]),
            (
                "t".into(),
                2,
                ErrorCode::UnknownTopicOrPartition,
                None,
                vec![]
            ),
            (
                "nope".into(),
                0,
                ErrorCode::UnknownTopicOrPartition,
                not_hosted,
                vec![]
            ),
            (
                "a b".into(),
                1,
                ErrorCode::InvalidTopicException,
                Some(
                    "Topic name \"a b\" is illegal, it contains a character other than ASCII \
                     alphanumerics, '.', '_' and '-'"
                        .into()
                ),
                vec![]
            ),
        ]
    );

    // The commit marker: the transaction is no longer open, the coordinator epoch (the
    // leader epoch of the __transaction_state partition) is recorded, and the last
    // timestamp is the marker's (its append time).
    let before_commit = now();
    let end = c
        .send(
            EndTxnRequest {
                transactional_id: "tx".into(),
                producer_id: txn.0,
                producer_epoch: txn.1,
                committed: true,
                ..Default::default()
            },
            3,
        )
        .await
        .expect("EndTxn");
    assert_eq!(end.error_code, 0);
    let coordinator_epochs: Vec<i32> = topic_metadata(&mut c, "__transaction_state")
        .await
        .partitions
        .iter()
        .map(|p| p.leader_epoch)
        .collect();
    assert_eq!(coordinator_epochs.len(), 2);
    let coordinator_epoch = coordinator_epochs[0];
    assert!(coordinator_epochs.iter().all(|e| *e == coordinator_epoch));

    // Markers go to both partitions of the transaction: in t-1, which holds no data of the
    // producer, the marker alone creates its state (no sequence: -1), as Kafka's
    // `appendEndTxnMarker` does on an empty entry.
    let (committed, marker_only) = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let mut d = describe_producers(&mut c, &[("t", &[0, 1])]).await;
            let (marker_only, committed) = (d.remove(1).4, d.remove(0).4);
            if committed.iter().all(|r| r.5 == -1) && !marker_only.is_empty() {
                break (committed, marker_only);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the commit markers are written");
    let after_commit = now();
    let txn_row = committed
        .iter()
        .find(|r| r.0 == txn.0)
        .copied()
        .expect("the transactional producer");
    assert_eq!(
        (txn_row.1, txn_row.2, txn_row.4, txn_row.5),
        (i32::from(txn.1), 1, coordinator_epoch, -1)
    );
    let mut expected = vec![idem_row, txn_row];
    expected.sort_unstable();
    assert_eq!(committed, expected);
    assert_eq!(marker_only.len(), 1, "{marker_only:?}");
    let marker_row = marker_only[0];
    assert_eq!(
        (
            marker_row.0,
            marker_row.1,
            marker_row.2,
            marker_row.4,
            marker_row.5
        ),
        (txn.0, i32::from(txn.1), -1, coordinator_epoch, -1)
    );
    for ts in [txn_row.3, marker_row.3] {
        assert!(
            (before_commit..=after_commit).contains(&ts),
            "marker timestamp {ts} not in {before_commit}..={after_commit}"
        );
    }

    // Rebuilt from the log after a restart: the same state.
    broker.shutdown().await;
    let broker = start(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let d = describe_producers(&mut c, &[("t", &[0, 1])]).await;
    assert_eq!(d[0].4, expected);
    assert_eq!(d[1].4, vec![marker_row]);
    broker.shutdown().await;
}

#[tokio::test]
async fn acl_apis_answer_security_disabled_at_every_version() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let security_disabled = ErrorCode::SecurityDisabled.code();
    assert_eq!(security_disabled, 54);

    for version in advertised_versions(&mut c, ApiKey::DescribeAcls).await {
        let r = c
            .send(
                DescribeAclsRequest {
                    resource_type_filter: 1, // ANY
                    resource_name_filter: None,
                    // ANY; v0 has no pattern type (LITERAL, the default, on the wire).
                    pattern_type_filter: if version >= 1 { 1 } else { 3 },
                    principal_filter: None,
                    host_filter: None,
                    operation: 1,       // ANY
                    permission_type: 1, // ANY
                    ..Default::default()
                },
                version,
            )
            .await
            .expect("DescribeAcls");
        assert_eq!(r.throttle_time_ms, 0);
        assert_eq!(r.error_code, security_disabled, "v{version}");
        assert_eq!(
            r.error_message.as_deref(),
            Some("No Authorizer is configured on the broker")
        );
        assert!(r.resources.is_empty());
    }

    let creation = |name: &str| AclCreation {
        resource_type: 2, // TOPIC
        resource_name: name.into(),
        resource_pattern_type: 3, // LITERAL
        principal: "User:alice".into(),
        host: "*".into(),
        operation: 3,       // READ
        permission_type: 3, // ALLOW
        ..Default::default()
    };
    for version in advertised_versions(&mut c, ApiKey::CreateAcls).await {
        let r = c
            .send(
                CreateAclsRequest {
                    creations: vec![creation("t1"), creation("t2")],
                    ..Default::default()
                },
                version,
            )
            .await
            .expect("CreateAcls");
        assert_eq!(r.throttle_time_ms, 0);
        let results: Vec<(i16, Option<&str>)> = r
            .results
            .iter()
            .map(|x| (x.error_code, x.error_message.as_deref()))
            .collect();
        assert_eq!(
            results,
            vec![(security_disabled, Some("No Authorizer is configured.")); 2],
            "v{version}"
        );
        let empty = c
            .send(CreateAclsRequest::default(), version)
            .await
            .expect("CreateAcls");
        assert!(empty.results.is_empty());
    }

    for version in advertised_versions(&mut c, ApiKey::DeleteAcls).await {
        let filter = DeleteAclsFilter {
            resource_type_filter: 2,
            resource_name_filter: Some("t1".into()),
            pattern_type_filter: 3,
            principal_filter: None,
            host_filter: None,
            operation: 1,
            permission_type: 1,
            ..Default::default()
        };
        let r = c
            .send(
                DeleteAclsRequest {
                    filters: vec![filter.clone(), filter.clone(), filter],
                    ..Default::default()
                },
                version,
            )
            .await
            .expect("DeleteAcls");
        assert_eq!(r.throttle_time_ms, 0);
        assert_eq!(r.filter_results.len(), 3, "v{version}");
        for f in &r.filter_results {
            assert_eq!(f.error_code, security_disabled);
            assert_eq!(
                f.error_message.as_deref(),
                Some("No Authorizer is configured.")
            );
            assert!(f.matching_acls.is_empty());
        }
    }
    // The connection is still served.
    assert_eq!(
        advertised_versions(&mut c, ApiKey::DescribeAcls).await,
        0..=3
    );
    broker.shutdown().await;
}
