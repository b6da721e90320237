//! broker-lite and idempotent producers (KIP-98, KIP-360): InitProducerId hands out distinct
//! producer ids (also across restarts), and Produce deduplicates retried batches, rejects
//! sequence gaps and stale epochs, accepts epoch bumps starting at sequence 0, and keeps all of
//! it across a restart (clean or crash) on the same data directory.

use std::time::{SystemTime, UNIX_EPOCH};

use broker_lite::Broker;
use bytes::Bytes;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::produce_response::PartitionProduceResponse;
use kafka_wire::messages::*;
use kafka_wire::records::{BatchOptions, Compression, RecordBatchBuilder};
use kafka_wire::{ApiKey, ErrorCode};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One batch of idempotent producer `pid` with `count` records, sequences from `seq`, values
/// `"{pid}/{epoch}/{sequence}"`, timestamped now (producer state expires
/// `producer.id.expiration.ms` after the last batch timestamp, as in Kafka).
fn idempotent_batch(pid: i64, epoch: i16, seq: i32, count: i32) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        ..Default::default()
    });
    let ts = now_ms();
    for i in 0..count {
        let v = format!("{pid}/{epoch}/{}", seq + i);
        b.append(ts, None, Some(v.as_bytes()), &[])
            .expect("record fits");
    }
    b.finish().expect("batch encodes")
}

/// InitProducerId for an idempotent (non-transactional) producer at `version`.
async fn init_producer_id(c: &mut RawClient, version: i16) -> InitProducerIdResponse {
    let req = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    c.send(req, version).await.expect("InitProducerId")
}

/// A fresh producer id from the broker.
async fn new_producer(c: &mut RawClient) -> i64 {
    let r = init_producer_id(c, 5).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
    r.producer_id
}

/// Every stored batch of `topic`-0: `(base offset, producer id, epoch, base sequence,
/// record count)`.
async fn stored(c: &mut RawClient, topic: &str) -> Vec<(i64, i64, i16, i32, usize)> {
    let mut out = Vec::new();
    for b in fetch_all(c, topic, 0, 0).await {
        let records = records_of(std::slice::from_ref(&b)).len();
        out.push((
            b.base_offset(),
            b.producer_id(),
            b.producer_epoch(),
            b.base_sequence(),
            records,
        ));
    }
    out
}

fn assert_error(r: &PartitionProduceResponse, code: ErrorCode) {
    assert_eq!(
        ErrorCode::from_code(r.error_code),
        code,
        "produce answered {:?}",
        r
    );
    assert_eq!(r.base_offset, -1);
    // Kafka gives no message for producer-state errors.
    assert_eq!(r.error_message, None);
}

#[tokio::test]
async fn init_producer_id_is_advertised_and_served_at_every_version() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let versions = c
        .send(ApiVersionsRequest::default(), 3)
        .await
        .unwrap()
        .api_keys;
    let range = ApiKey::InitProducerId.valid_versions();
    let advertised = versions
        .iter()
        .find(|k| k.api_key == ApiKey::InitProducerId.key())
        .expect("InitProducerId is advertised");
    assert_eq!(
        (advertised.min_version, advertised.max_version),
        (range.min, range.max)
    );
    let mut ids = Vec::new();
    for v in range.min..=range.max {
        let r = init_producer_id(&mut c, v).await;
        assert_eq!(r.error_code, 0, "v{v}");
        assert_eq!(r.producer_epoch, 0, "v{v}");
        assert!(r.producer_id >= 0, "v{v}");
        ids.push(r.producer_id);
    }
    // KIP-360 (v3+): an idempotent producer naming its current id and epoch still gets a
    // fresh id with epoch 0, as Kafka's coordinator does for a null transactional id.
    let req = InitProducerIdRequest {
        transactional_id: None,
        producer_id: ids[0],
        producer_epoch: 0,
        ..Default::default()
    };
    let r = c.send(req, 4).await.unwrap();
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
    ids.push(r.producer_id);
    // Other connections draw from the same allocator.
    let mut other = connect(&broker.bootstrap_servers()).await;
    ids.push(new_producer(&mut other).await);
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "distinct producer ids: {ids:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn init_producer_id_bumps_transactional_epochs_and_refuses_half_given_ids() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    // A transactional id keeps its producer id; each new InitProducerId bumps the epoch
    // (fencing the previous instance), in every version.
    let mut first_id = None;
    for (expected_epoch, v) in [0, 2, 5].into_iter().enumerate() {
        let req = InitProducerIdRequest {
            transactional_id: Some("my-txn".into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let r = c.send(req, v).await.unwrap();
        assert_eq!(ErrorCode::from_code(r.error_code), ErrorCode::None, "v{v}");
        assert!(r.producer_id >= 0, "v{v}");
        assert_eq!(
            *first_id.get_or_insert(r.producer_id),
            r.producer_id,
            "v{v}"
        );
        assert_eq!(r.producer_epoch, expected_epoch as i16, "v{v}");
    }
    let empty = InitProducerIdRequest {
        transactional_id: Some(String::new()),
        ..Default::default()
    };
    let r = c.send(empty, 5).await.unwrap();
    assert_eq!(
        ErrorCode::from_code(r.error_code),
        ErrorCode::InvalidRequest
    );
    for (producer_id, producer_epoch) in [(7, -1), (-1, 3)] {
        let req = InitProducerIdRequest {
            transactional_id: None,
            producer_id,
            producer_epoch,
            ..Default::default()
        };
        let r = c.send(req, 3).await.unwrap();
        assert_eq!(
            ErrorCode::from_code(r.error_code),
            ErrorCode::InvalidRequest
        );
    }
    // The connection is still usable.
    new_producer(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn producer_ids_are_never_reused_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut before = Vec::new();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    for _ in 0..5 {
        before.push(new_producer(&mut c).await);
    }
    broker.shutdown().await;

    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    for _ in 0..5 {
        let id = new_producer(&mut c).await;
        assert!(
            before.iter().all(|b| id > *b),
            "id {id} after a restart must be new (before: {before:?})"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn duplicate_batch_returns_the_original_offset_and_is_stored_once() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let pid = new_producer(&mut c).await;

    assert_eq!(
        produce_ok(
            &mut c,
            "t",
            0,
            value_batch("plain", 1, Compression::None, now_ms())
        )
        .await,
        0
    );
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 0, 0, 3)).await,
        1
    );
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 0, 3, 2)).await,
        4
    );

    // Retries of either batch (the client never saw the response): NONE, original offset.
    for (seq, count, offset) in [(0, 3, 1), (3, 2, 4), (0, 3, 1)] {
        let r = produce(&mut c, "t", 0, idempotent_batch(pid, 0, seq, count)).await;
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        assert_eq!(r.base_offset, offset);
        assert_eq!(r.log_append_time_ms, -1);
    }
    // Stored once, with the producer's fields as sent.
    assert_eq!(
        stored(&mut c, "t").await,
        vec![(0, -1, -1, -1, 1), (1, pid, 0, 0, 3), (4, pid, 0, 3, 2)]
    );
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 6);
    // The sequence carries on after the duplicates.
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 0, 5, 1)).await,
        6
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn duplicate_on_a_log_append_time_topic_reports_the_original_append_time() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let pid = new_producer(&mut c).await;
    let first = produce(&mut c, "lat", 0, idempotent_batch(pid, 0, 0, 2)).await;
    assert_eq!(first.error_code, 0);
    assert!(first.log_append_time_ms > 0);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let retry = produce(&mut c, "lat", 0, idempotent_batch(pid, 0, 0, 2)).await;
    assert_eq!(retry.error_code, 0);
    assert_eq!(
        (retry.base_offset, retry.log_append_time_ms),
        (first.base_offset, first.log_append_time_ms)
    );
    assert_eq!(offset_for(&mut c, "lat", 0, -1).await, 2);
    broker.shutdown().await;
}

#[tokio::test]
async fn sequence_gap_is_out_of_order_and_appends_nothing() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let pid = new_producer(&mut c).await;
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 0, 0, 2)).await,
        0
    );
    // Sequence 2 is next: 3 is a gap, 1 overlaps without being a cached batch.
    for seq in [3, 1, 100] {
        let r = produce(&mut c, "t", 0, idempotent_batch(pid, 0, seq, 1)).await;
        assert_error(&r, ErrorCode::OutOfOrderSequenceNumber);
    }
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 2);
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 0, 2, 1)).await,
        2
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn stale_epoch_is_invalid_producer_epoch() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let pid = new_producer(&mut c).await;
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 2, 0, 1)).await,
        0
    );
    for (epoch, seq) in [(1, 1), (0, 0), (1, 0)] {
        let r = produce(&mut c, "t", 0, idempotent_batch(pid, epoch, seq, 1)).await;
        assert_error(&r, ErrorCode::InvalidProducerEpoch);
    }
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn epoch_bump_restarts_sequences_at_zero() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", 1, &[]).await;
    let pid = new_producer(&mut c).await;
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 0, 0, 2)).await,
        0
    );
    // A new epoch must start at sequence 0 (KIP-360).
    let r = produce(&mut c, "t", 0, idempotent_batch(pid, 1, 2, 1)).await;
    assert_error(&r, ErrorCode::OutOfOrderSequenceNumber);
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 1, 0, 1)).await,
        2
    );
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 1, 1, 1)).await,
        3
    );
    // The old epoch is fenced now, even for a retry of one of its batches.
    let r = produce(&mut c, "t", 0, idempotent_batch(pid, 0, 0, 2)).await;
    assert_error(&r, ErrorCode::InvalidProducerEpoch);
    // A producer id the partition has never seen accepts any first sequence.
    let other = new_producer(&mut c).await;
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(other, 0, 41, 1)).await,
        4
    );
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(other, 0, 42, 1)).await,
        5
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn producer_state_is_per_partition() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "t", 2, &[]).await;
    let pid = new_producer(&mut c).await;
    assert_eq!(
        produce_ok(&mut c, "t", 0, idempotent_batch(pid, 0, 0, 1)).await,
        0
    );
    // Sequences are per partition: partition 1 starts at 0 too, and is not a duplicate.
    assert_eq!(
        produce_ok(&mut c, "t", 1, idempotent_batch(pid, 0, 0, 1)).await,
        0
    );
    assert_eq!(
        produce_ok(&mut c, "t", 1, idempotent_batch(pid, 0, 1, 1)).await,
        1
    );
    assert_eq!(offset_for(&mut c, "t", 0, -1).await, 1);
    broker.shutdown().await;
}

/// Produces the fixture of the restart tests: pid's batches at offsets 0 (seq 0-1) and 2
/// (seq 2), a plain batch at 3; returns pid.
async fn populate(c: &mut RawClient) -> i64 {
    create_topic(c, "t", 1, &[]).await;
    let pid = new_producer(c).await;
    assert_eq!(
        produce_ok(c, "t", 0, idempotent_batch(pid, 3, 0, 2)).await,
        0
    );
    assert_eq!(
        produce_ok(c, "t", 0, idempotent_batch(pid, 3, 2, 1)).await,
        2
    );
    assert_eq!(
        produce_ok(
            c,
            "t",
            0,
            value_batch("plain", 1, Compression::None, now_ms())
        )
        .await,
        3
    );
    pid
}

/// After a restart: duplicates get their original offsets and are not stored again, the
/// epoch and sequence carry on, and new producer ids are new.
async fn check_after_restart(c: &mut RawClient, pid: i64) {
    for (seq, count, offset) in [(2, 1, 2), (0, 2, 0)] {
        let r = produce(c, "t", 0, idempotent_batch(pid, 3, seq, count)).await;
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        assert_eq!(r.base_offset, offset, "duplicate of seq {seq}");
    }
    assert_eq!(stored(c, "t").await.len(), 3, "no second copy");
    let r = produce(c, "t", 0, idempotent_batch(pid, 2, 3, 1)).await;
    assert_error(&r, ErrorCode::InvalidProducerEpoch);
    let r = produce(c, "t", 0, idempotent_batch(pid, 3, 4, 1)).await;
    assert_error(&r, ErrorCode::OutOfOrderSequenceNumber);
    assert_eq!(
        produce_ok(c, "t", 0, idempotent_batch(pid, 3, 3, 1)).await,
        4
    );
    assert!(new_producer(c).await > pid);
}

#[tokio::test]
async fn producer_state_survives_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let pid = populate(&mut c).await;
    broker.shutdown().await;

    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    check_after_restart(&mut c, pid).await;
    broker.shutdown().await;
}

/// A broker dropped without `shutdown` (its runtime torn down, as in a crash): the state is
/// rebuilt from the log all the same.
#[tokio::test]
async fn producer_state_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let pid = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let pid = rt.block_on(async {
                let broker = start_in(&path).await;
                let mut c = connect(&broker.bootstrap_servers()).await;
                let pid = populate(&mut c).await;
                drop(c);
                drop(broker); // no shutdown
                pid
            });
            drop(rt);
            pid
        })
        .join()
        .expect("crash thread")
    })
    .await
    .unwrap();
    assert!(!dir.path().join("t-0/.kafka_cleanshutdown").exists());

    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    check_after_restart(&mut c, pid).await;
    broker.shutdown().await;
}
