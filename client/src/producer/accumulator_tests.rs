//! Unit tests of the RecordAccumulator: no sockets, time passed in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{Compression, RecordBatch};
use kafka_wire::{ErrorCode, Uuid};

use super::*;
use crate::metadata::{BrokerInfo, Cluster, PartitionInfo, TopicInfo};
use crate::network::pool::ExponentialBackoff;
use crate::producer::batch::ProducerIdAndEpoch;
use crate::producer::txn_manager::{TxnNext, TxnResponse};

fn config() -> AccumulatorConfig {
    AccumulatorConfig {
        batch_size: 1024,
        linger: Duration::from_millis(5),
        compression: Compression::None,
        compression_level: None,
        delivery_timeout: Duration::from_secs(120),
        retry_backoff: Duration::from_millis(100),
        retry_backoff_max: Duration::from_millis(1000),
        idempotent: false,
        transactional: false,
        adaptive_partitioning: true,
    }
}

/// A cluster with `partitions` partitions of topic "t"; partition p led by node p % nodes.
fn cluster(partitions: i32, nodes: i32) -> Cluster {
    let mut c = Cluster::default();
    for n in 0..nodes {
        c.brokers.insert(
            n,
            BrokerInfo {
                node_id: n,
                host: "localhost".into(),
                port: 9092 + n,
                rack: None,
            },
        );
    }
    let parts: Vec<PartitionInfo> = (0..partitions)
        .map(|p| PartitionInfo {
            partition: p,
            leader: Some(p % nodes),
            leader_epoch: 0,
            replicas: vec![p % nodes],
            isr: vec![p % nodes],
            error: ErrorCode::None,
        })
        .collect();
    c.topics.insert(
        "t".into(),
        Arc::new(TopicInfo {
            name: "t".into(),
            topic_id: Uuid::default(),
            is_internal: false,
            available_partitions: (0..partitions).collect(),
            partitions: parts,
        }),
    );
    c
}

fn record(value: &[u8]) -> PendingRecord {
    PendingRecord {
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::copy_from_slice(value)),
        headers: Vec::new(),
        thunk: None,
    }
}

/// Appends, supplying a buffer when one is asked for.
fn append(
    acc: &mut RecordAccumulator,
    c: &Cluster,
    partition: Option<i32>,
    value: &[u8],
    now: Instant,
) -> (DeliveryFuture, bool) {
    let info = c.topic("t").unwrap().clone();
    match acc
        .append("t", partition, &info, record(value), None, now)
        .unwrap()
    {
        Append::Done {
            future, new_batch, ..
        } => (future, new_batch),
        Append::NeedsBuffer { size, record } => {
            let buf = BytesMut::with_capacity(size);
            match acc
                .append("t", partition, &info, record, Some((buf, size)), now)
                .unwrap()
            {
                Append::Done {
                    future, new_batch, ..
                } => (future, new_batch),
                Append::NeedsBuffer { .. } => panic!("asked twice for a buffer"),
            }
        }
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic: Arc::from("t"),
        partition: p,
    }
}

#[test]
fn records_share_a_batch_until_it_is_full() {
    let c = cluster(1, 1);
    let mut acc = RecordAccumulator::new(config());
    let now = Instant::now();
    let (_, new1) = append(&mut acc, &c, Some(0), &[1; 100], now);
    let (_, new2) = append(&mut acc, &c, Some(0), &[2; 100], now);
    assert!(new1 && !new2, "the second record joins the first batch");
    let mut news = 0;
    for _ in 0..20 {
        if append(&mut acc, &c, Some(0), &[3; 100], now).1 {
            news += 1;
        }
    }
    assert!(
        news >= 1,
        "a 1 KiB batch cannot hold 22 records of 100 bytes"
    );
    let drained = acc.drain(&c, &[0], 1 << 20, now, None);
    let batches = &drained[&0];
    assert_eq!(batches.len(), 1, "one batch per partition per request");
    let b = batches[0].bytes().unwrap();
    assert!(
        b.len() <= 1024,
        "batch of {} bytes exceeds batch.size",
        b.len()
    );
}

#[test]
fn a_record_larger_than_batch_size_gets_its_own_batch() {
    let c = cluster(1, 1);
    let mut acc = RecordAccumulator::new(config());
    let now = Instant::now();
    let info = c.topic("t").unwrap().clone();
    match acc
        .append("t", Some(0), &info, record(&[0; 5000]), None, now)
        .unwrap()
    {
        Append::NeedsBuffer { size, .. } => assert!(size > 5000, "buffer sized for the record"),
        Append::Done { .. } => panic!("a new batch needs a buffer"),
    }
    let _ = append(&mut acc, &c, Some(0), &[0; 5000], now);
    let (_, new) = append(&mut acc, &c, Some(0), &[0; 10], now);
    assert!(new, "nothing joins an oversized batch");
}

#[test]
fn ready_after_linger_or_when_full() {
    let c = cluster(2, 2);
    let mut acc = RecordAccumulator::new(config());
    let t0 = Instant::now();
    let _ = append(&mut acc, &c, Some(0), &[0; 10], t0);
    let r = acc.ready(&c, t0, false);
    assert!(r.ready_nodes.is_empty());
    assert_eq!(r.next_ready_check, Some(Duration::from_millis(5)));
    let r = acc.ready(&c, t0 + Duration::from_millis(5), false);
    assert_eq!(r.ready_nodes, vec![0]);
    // Partition 1 (node 1) becomes ready at once when its first batch fills.
    for _ in 0..15 {
        let _ = append(&mut acc, &c, Some(1), &[0; 100], t0);
    }
    let r = acc.ready(&c, t0, false);
    assert_eq!(r.ready_nodes, vec![1]);
    // Memory exhaustion and flush make everything ready.
    assert_eq!(acc.ready(&c, t0, true).ready_nodes.len(), 2);
    acc.begin_flush();
    assert_eq!(acc.ready(&c, t0, false).ready_nodes.len(), 2);
    acc.end_flush();
}

#[test]
fn unknown_leaders_are_reported() {
    let mut c = cluster(2, 1);
    let mut acc = RecordAccumulator::new(config());
    let now = Instant::now();
    let _ = append(&mut acc, &c, Some(1), b"x", now);
    let mut info = (**c.topics.get("t").unwrap()).clone();
    info.partitions[1].leader = None;
    info.available_partitions = vec![0];
    c.topics.insert("t".into(), Arc::new(info));
    let r = acc.ready(&c, now + Duration::from_secs(1), false);
    assert!(r.ready_nodes.is_empty());
    assert_eq!(r.unknown_leader_topics, vec![Arc::<str>::from("t")]);
}

#[test]
fn drain_respects_max_request_size_and_rotates_partitions() {
    let c = cluster(4, 1);
    let mut acc = RecordAccumulator::new(config());
    let now = Instant::now();
    for p in 0..4 {
        for _ in 0..5 {
            let _ = append(&mut acc, &c, Some(p), &[0; 100], now);
        }
    }
    let size = acc.drain(&c, &[0], 1, now, None)[&0].len();
    assert_eq!(
        size, 1,
        "the first batch always goes, even over max.request.size"
    );
    let d = acc.drain(&c, &[0], 1, now, None);
    let second = d[&0][0].tp.partition;
    assert_eq!(second, 1, "the next request starts at the next partition");
    let d = acc.drain(&c, &[0], 1 << 20, now, None);
    let parts: Vec<i32> = d[&0].iter().map(|b| b.tp.partition).collect();
    assert_eq!(parts, vec![2, 3]);
}

#[test]
fn batches_expire_after_the_delivery_timeout() {
    let c = cluster(1, 1);
    let mut cfg = config();
    cfg.delivery_timeout = Duration::from_secs(2);
    let mut acc = RecordAccumulator::new(cfg);
    let t0 = Instant::now();
    let _ = append(&mut acc, &c, Some(0), b"a", t0);
    assert!(acc.expired_batches(t0 + Duration::from_secs(1)).is_empty());
    assert_eq!(
        acc.next_expiry(t0 + Duration::from_secs(1)),
        Some(Duration::from_secs(1))
    );
    let expired = acc.expired_batches(t0 + Duration::from_secs(2));
    assert_eq!(expired.len(), 1);
    assert!(!acc.has_undrained());
}

#[test]
fn retries_back_off_exponentially() {
    let c = cluster(1, 1);
    let mut acc = RecordAccumulator::new(config());
    let t0 = Instant::now();
    let _ = append(&mut acc, &c, Some(0), b"a", t0);
    let mut b = acc.drain(&c, &[0], 1 << 20, t0, None).remove(&0).unwrap();
    acc.reenqueue(b.remove(0), t0);
    let r = acc.ready(&c, t0 + Duration::from_millis(50), false);
    assert!(
        r.ready_nodes.is_empty(),
        "backing off after the first failure"
    );
    assert!(acc
        .drain(&c, &[0], 1 << 20, t0 + Duration::from_millis(50), None)
        .is_empty());
    let r = acc.ready(&c, t0 + Duration::from_millis(130), false);
    assert_eq!(r.ready_nodes, vec![0]);
    let backoff = ExponentialBackoff::new(
        Duration::from_millis(100),
        2.0,
        Duration::from_millis(1000),
        0.2,
    );
    for attempts in 1..10 {
        let d = retry_backoff(&backoff, attempts, 3);
        assert_eq!(d, retry_backoff(&backoff, attempts, 3), "deterministic");
        let ideal = (100u64 << (attempts - 1)).min(1000) as f64;
        let ms = d.as_millis() as f64;
        assert!(
            ms >= ideal * 0.8 - 1.0 && ms <= (ideal * 1.2).min(1000.0) + 1.0,
            "{attempts}: {ms}"
        );
    }
}

#[test]
fn idempotent_drain_assigns_sequences_and_retries_go_in_order() {
    let c = cluster(1, 1);
    let mut cfg = config();
    cfg.idempotent = true;
    let mut acc = RecordAccumulator::new(cfg);
    let mut txn = TransactionManager::new();
    let t0 = Instant::now();
    let _ = append(&mut acc, &c, Some(0), b"a", t0);
    assert!(
        acc.drain(&c, &[0], 1 << 20, t0, Some(&mut txn)).is_empty(),
        "no producer id yet"
    );
    txn.set_producer_id_and_epoch(ProducerIdAndEpoch {
        producer_id: 42,
        epoch: 3,
    });
    let mut first = acc
        .drain(&c, &[0], 1 << 20, t0, Some(&mut txn))
        .remove(&0)
        .unwrap();
    let _ = append(&mut acc, &c, Some(0), b"b", t0);
    let _ = append(&mut acc, &c, Some(0), b"c", t0);
    let mut second = acc
        .drain(&c, &[0], 1 << 20, t0, Some(&mut txn))
        .remove(&0)
        .unwrap();
    let bytes = second[0].bytes().unwrap().clone();
    let batch = RecordBatch::from_bytes(bytes).unwrap();
    assert_eq!(
        (
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence()
        ),
        (42, 3, 1)
    );
    batch.verify_crc().unwrap();

    // Both come back for a retry, the second first: it must wait for the first.
    let later = t0 + Duration::from_secs(5);
    acc.reenqueue(second.remove(0), t0);
    acc.reenqueue(first.remove(0), t0);
    let d = acc
        .drain(&c, &[0], 1 << 20, later, Some(&mut txn))
        .remove(&0)
        .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].base_sequence, 0, "retries go in sequence order");
    assert!(
        acc.drain(&c, &[0], 1 << 20, later, Some(&mut txn))
            .is_empty(),
        "the next retry waits until the first in flight completes"
    );
    txn.handle_completed_batch(&tp(0), d[0].id, d[0].producer, 0);
    let d2 = acc
        .drain(&c, &[0], 1 << 20, later, Some(&mut txn))
        .remove(&0)
        .unwrap();
    assert_eq!(d2[0].base_sequence, 1);
}

#[test]
fn split_moves_records_and_futures_to_smaller_batches() {
    let c = cluster(1, 1);
    let mut cfg = config();
    cfg.batch_size = 256;
    let mut acc = RecordAccumulator::new(cfg);
    let t0 = Instant::now();
    // One big batch: first record sized over the batch size makes a big buffer, but the
    // split uses batch.size. Build it by appending to a batch with a large limit.
    let info = c.topic("t").unwrap().clone();
    let mut futures = Vec::new();
    let (f, _) = append(&mut acc, &c, Some(0), &[7; 200], t0);
    futures.push(f);
    // Force more records into the same batch by raising its limit (as if batch.size was
    // bigger when it was created).
    if let Some(dq) = acc
        .topics
        .get_mut("t")
        .and_then(|t| t.partitions.get_mut(&0))
    {
        dq.back_mut().unwrap().batch_size_limit = 1 << 20;
    }
    for i in 0..9u8 {
        match acc
            .append("t", Some(0), &info, record(&[i; 200]), None, t0)
            .unwrap()
        {
            Append::Done { future, .. } => futures.push(future),
            Append::NeedsBuffer { .. } => panic!("joins the big batch"),
        }
    }
    let mut d = acc.drain(&c, &[0], 1 << 20, t0, None).remove(&0).unwrap();
    let mut big = d.remove(0);
    assert_eq!(big.record_count, 10);
    let n = acc.split_and_reenqueue(&mut big, None).unwrap();
    assert!(n >= 5, "10 records of 200 bytes in 256-byte batches: {n}");
    let mut offset = 100;
    while let Some(mut batches) = acc.drain(&c, &[0], 1 << 20, t0, None).remove(&0) {
        for mut b in batches.drain(..) {
            let count = b.record_count as i64;
            b.complete(Outcome::Done {
                base_offset: offset,
                log_append_time: -1,
            });
            offset += count;
        }
    }
    let rt = tokio_test::block_on(async {
        let mut out = Vec::new();
        for f in futures {
            out.push(f.await.unwrap().offset);
        }
        out
    });
    assert_eq!(
        rt,
        (100..110).collect::<Vec<i64>>(),
        "records keep their order and get their offsets"
    );
}

#[test]
fn keyless_records_stick_to_a_partition_then_move() {
    let c = cluster(8, 1);
    let mut acc = RecordAccumulator::new(config());
    // A fixed seed: the partition picked after a switch is random.
    acc.partitioner_seed = Some(7);
    let now = Instant::now();
    // The bytes each sticky partition was given before the built-in partitioner moved on.
    let mut given: Vec<usize> = Vec::new();
    let mut last_produced = 0usize;
    let mut partitions = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let (f, _) = append(&mut acc, &c, None, &[0; 50], now);
        partitions.insert(f.partition());
        let info = acc.topics["t"]
            .built_in
            .current_partition_info()
            .expect("a sticky partition");
        if info.produced_bytes() < last_produced {
            given.push(last_produced);
        }
        last_produced = info.produced_bytes();
    }
    // KIP-794 as Java implements it: a partition keeps the records until it was given
    // batch.size (1024) bytes and its batches are full, or 2 x batch.size bytes whatever the
    // batches (plus the record that crossed the line, at most 61 + 58 bytes).
    assert!(given.len() >= 8, "too few switches: {given:?}");
    for bytes in &given {
        assert!(
            (1024..=2048 + 119).contains(bytes),
            "switched after {bytes} bytes: {given:?}"
        );
    }
    assert!(partitions.len() >= 6, "records spread over {partitions:?}");
}

#[test]
fn flush_results_cover_queued_batches() {
    let c = cluster(2, 1);
    let mut acc = RecordAccumulator::new(config());
    let now = Instant::now();
    let _ = append(&mut acc, &c, Some(0), b"a", now);
    let _ = append(&mut acc, &c, Some(1), b"b", now);
    let results = acc.begin_flush();
    assert_eq!(results.len(), 2);
    acc.end_flush();
    assert!(acc.has_incomplete());
    let d = acc.drain(&c, &[0], 1 << 20, now, None).remove(&0).unwrap();
    for mut b in d {
        acc.deallocate(b.id);
        b.complete(Outcome::Done {
            base_offset: 0,
            log_append_time: -1,
        });
    }
    assert!(!acc.has_incomplete());
    assert!(results.iter().all(|r| r.is_done()));
}

#[test]
fn dropping_an_incomplete_batch_fails_its_records() {
    let c = cluster(1, 1);
    let mut acc = RecordAccumulator::new(config());
    let (f, _) = append(&mut acc, &c, Some(0), b"a", Instant::now());
    drop(acc.drain_all());
    let r = tokio_test::block_on(f);
    assert!(matches!(r, Err(crate::Error::Closed)), "{r:?}");
}

#[test]
fn compression_ratio_estimate_moves_like_javas() {
    // Improving: down by 0.005 at most per batch; deteriorating: up by at least 0.05.
    assert!((update_compression_ratio(1.0, 0.3) - 0.995).abs() < 1e-6);
    assert!((update_compression_ratio(0.3, 0.31) - 0.35).abs() < 1e-6);
    assert!((update_compression_ratio(0.3, 0.9) - 0.9).abs() < 1e-6);
    assert!((update_compression_ratio(0.5, 0.5) - 0.5).abs() < 1e-6);
    assert!((update_compression_ratio(0.5, f32::NAN) - 0.5).abs() < 1e-6);
}

#[test]
fn compressed_batches_fill_beyond_batch_size_once_the_ratio_is_known() {
    let c = cluster(1, 1);
    let mut cfg = config();
    cfg.compression = Compression::Lz4;
    let mut acc = RecordAccumulator::new(cfg);
    let now = Instant::now();
    // Highly compressible records: after many batches the estimate drops and a batch holds
    // more than batch.size uncompressed bytes.
    let mut counts = Vec::new();
    for _ in 0..300 {
        for _ in 0..40 {
            let _ = append(&mut acc, &c, Some(0), &[b'a'; 100], now);
        }
        if let Some(batches) = acc.drain(&c, &[0], 1 << 20, now, None).remove(&0) {
            counts.extend(batches.iter().map(|b| b.record_count));
        }
    }
    let first = counts[0];
    let last = *counts.last().unwrap();
    assert!(
        last > first,
        "batches grow as the ratio improves: {first} -> {last}"
    );
}

/// A transactional accumulator: batches carry the transactional bit; only partitions added
/// to the transaction are drained; an abort fails the batches that were never drained.
#[test]
fn transactional_batches_are_gated_and_undrained_ones_aborted() {
    let c = cluster(2, 1);
    let mut acc = RecordAccumulator::new(AccumulatorConfig {
        idempotent: true,
        transactional: true,
        ..config()
    });
    let t0 = Instant::now();
    let mut txn =
        TransactionManager::new_transactional("tx".into(), 60_000, Duration::from_millis(100));
    let r = txn.initialize_transactions().unwrap();
    // Coordinator, then producer id.
    let TxnNext::Send(find) = txn.next_request(t0, false) else {
        panic!("FindCoordinator expected");
    };
    txn.handle_response(
        find.id,
        TxnResponse::FindCoordinator {
            error: ErrorCode::None,
            message: None,
            coordinator: crate::consumer::coordinator::CoordinatorNode {
                node_id: 0,
                host: "localhost".into(),
                port: 9092,
            },
        },
        t0,
    );
    let TxnNext::Send(init) = txn.next_request(t0, false) else {
        panic!("InitProducerId expected");
    };
    txn.handle_response(
        init.id,
        TxnResponse::InitProducerId {
            error: ErrorCode::None,
            producer: ProducerIdAndEpoch {
                producer_id: 3,
                epoch: 0,
            },
        },
        t0,
    );
    assert!(r.is_completed());
    txn.begin_transaction().unwrap();
    let (f0, _) = append(&mut acc, &c, Some(0), &[1; 10], t0);
    let (f1, _) = append(&mut acc, &c, Some(1), &[2; 10], t0);
    txn.maybe_add_partition(&tp(0));
    let later = t0 + Duration::from_secs(1);
    assert!(
        acc.drain(&c, &[0], 1 << 20, later, Some(&mut txn))
            .is_empty(),
        "nothing is drained before AddPartitionsToTxn"
    );
    let TxnNext::Send(add) = txn.next_request(later, true) else {
        panic!("AddPartitionsToTxn expected");
    };
    txn.maybe_add_partition(&tp(1)); // not added yet
    txn.handle_response(
        add.id,
        TxnResponse::AddPartitionsToTxn {
            errors: vec![(tp(0), ErrorCode::None)],
        },
        later,
    );
    let mut drained = acc.drain(&c, &[0], 1 << 20, later, Some(&mut txn));
    let batches = drained.remove(&0).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].tp, tp(0));
    let decoded = RecordBatch::from_bytes(batches[0].bytes().unwrap().clone()).unwrap();
    assert!(decoded.is_transactional());
    assert_eq!(decoded.producer_id(), 3);
    // The transaction is aborted: the batch of partition 1 never drained is failed; the
    // one of partition 0 is in flight and stays.
    txn.begin_abort().unwrap();
    let aborted = acc.abort_undrained_batches();
    assert_eq!(aborted.len(), 1);
    assert_eq!(aborted[0].tp, tp(1));
    assert!(!acc.has_undrained());
    drop(aborted); // dropped batches fail their records
    assert!(f1.is_done());
    assert!(!f0.is_done());
    drop(batches);
}
