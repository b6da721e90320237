//! The transactional producer (KIP-98, KIP-447) against broker-lite's transaction
//! coordinator, read back with our consumer: commits visible to `read_committed`, aborts
//! visible only to `read_uncommitted`, fencing by a second producer with the same
//! `transactional.id`, offsets sent to the transaction (committed only with it), a
//! consume-transform-produce loop, and the calls Java refuses (`IllegalStateException`).

mod producer_common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use broker_lite::Broker;
use bytes::Bytes;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel, ProducerConfig};
use kafka_client::consumer::{
    Consumer, ConsumerGroupMetadata, ConsumerRecord, OffsetAndMetadata, TopicPartition,
};
use kafka_client::producer::{DeliveryFuture, Producer};
use kafka_client::{Error, ProducerRecord};
use kafka_wire::ErrorCode;
use producer_common::{create_topic, promptly, PROMPTLY};

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

async fn start() -> Broker {
    Broker::builder()
        .config("transaction.state.log.num.partitions", "3")
        .expect("config")
        .config("offsets.topic.num.partitions", "3")
        .expect("config")
        .start()
        .await
        .expect("broker starts")
}

fn txn_producer(bootstrap: &str, transactional_id: &str) -> Producer {
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap)
        .transactional_id(transactional_id)
        .max_block(PROMPTLY)
        .build()
        .expect("valid config");
    Producer::new(config).expect("producer starts")
}

fn consumer(bootstrap: &str, isolation: IsolationLevel, group: Option<&str>) -> Consumer {
    let mut b = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .isolation_level(isolation)
        .enable_auto_commit(false)
        .default_api_timeout(Duration::from_secs(5))
        .fetch_max_wait(Duration::from_millis(100));
    if let Some(g) = group {
        b = b.group_id(g);
    }
    Consumer::new(b.build().expect("valid consumer config")).expect("consumer starts")
}

/// The group's committed offset of `in`-0, read without `require_stable`.
async fn committed(c: &Consumer) -> Option<i64> {
    promptly("committed", c.committed(&[tp("in", 0)]))
        .await
        .expect("committed")
        .remove(&tp("in", 0))
        .flatten()
        .map(|o| o.offset)
}

fn is_fenced(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch)
    )
}

fn record(topic: &str, partition: i32, value: String) -> ProducerRecord {
    ProducerRecord {
        topic: topic.into(),
        partition: Some(partition),
        key: None,
        value: Some(Bytes::from(value)),
        headers: Vec::new(),
        timestamp: None,
    }
}

async fn send(p: &Producer, r: ProducerRecord) -> DeliveryFuture {
    promptly("send", p.send(r)).await.expect("send")
}

fn value(r: &ConsumerRecord) -> String {
    r.value
        .as_ref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Reads `partitions` from the beginning until `count` records arrived, then polls a little
/// longer to make sure no more come.
async fn read_all(c: &Consumer, partitions: &[TopicPartition], count: usize) -> Vec<String> {
    c.assign(partitions.to_vec()).expect("assign");
    let deadline = Instant::now() + PROMPTLY;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records arrived: {out:?}",
            out.len()
        );
        let polled = c.poll(Duration::from_millis(200)).await.expect("poll");
        out.extend(polled.iter().map(value));
    }
    let quiet = Instant::now() + Duration::from_millis(600);
    while Instant::now() < quiet {
        let polled = c.poll(Duration::from_millis(200)).await.expect("poll");
        out.extend(polled.iter().map(value));
    }
    out
}

#[tokio::test]
async fn committed_records_are_visible_to_read_committed_and_aborted_ones_are_not() {
    let broker = start().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", 2, &[]).await;
    let p = txn_producer(&bootstrap, "txn-visibility");
    promptly("init", p.init_transactions()).await.expect("init");

    // Transaction 1: written, then aborted.
    p.begin_transaction().expect("begin");
    let mut futs = Vec::new();
    for i in 0..10 {
        futs.push(send(&p, record("t", i % 2, format!("aborted-{i}"))).await);
    }
    promptly("flush", p.flush()).await.unwrap();
    for f in futs {
        promptly("delivery", f)
            .await
            .expect("written before the abort");
    }
    promptly("abort", p.abort_transaction())
        .await
        .expect("abort");

    // Transaction 2: committed.
    p.begin_transaction().expect("begin");
    let mut futs = Vec::new();
    for i in 0..10 {
        futs.push(send(&p, record("t", i % 2, format!("committed-{i}"))).await);
    }
    promptly("commit", p.commit_transaction())
        .await
        .expect("commit");
    for f in futs {
        assert!(f.is_done(), "commit returns after every record completed");
        f.await.expect("delivered");
    }

    let parts = [tp("t", 0), tp("t", 1)];
    let committed = read_all(
        &consumer(&bootstrap, IsolationLevel::ReadCommitted, None),
        &parts,
        10,
    )
    .await;
    assert_eq!(committed.len(), 10, "{committed:?}");
    assert!(
        committed.iter().all(|v| v.starts_with("committed-")),
        "{committed:?}"
    );
    let all = read_all(
        &consumer(&bootstrap, IsolationLevel::ReadUncommitted, None),
        &parts,
        20,
    )
    .await;
    assert_eq!(all.len(), 20, "{all:?}");
    assert_eq!(all.iter().filter(|v| v.starts_with("aborted-")).count(), 10);

    promptly("close", p.close(Duration::from_secs(10)))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_abort_fails_records_not_sent_yet() {
    let broker = start().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", 1, &[]).await;
    let config = ProducerConfig::builder()
        .bootstrap_servers(&bootstrap)
        .transactional_id("txn-undrained")
        .max_block(PROMPTLY)
        .linger(Duration::from_secs(60))
        .build()
        .unwrap();
    let p = Producer::new(config).unwrap();
    promptly("init", p.init_transactions()).await.expect("init");
    p.begin_transaction().unwrap();
    let f = send(&p, record("t", 0, "never".into())).await;
    promptly("abort", p.abort_transaction())
        .await
        .expect("abort");
    let outcome = promptly("delivery", f).await;
    assert!(
        matches!(outcome, Err(Error::TransactionAborted)) || outcome.is_ok(),
        "{outcome:?}"
    );
    // The producer is ready for the next transaction.
    p.begin_transaction().unwrap();
    let f = send(&p, record("t", 0, "next".into())).await;
    promptly("commit", p.commit_transaction())
        .await
        .expect("commit");
    f.await.expect("delivered");
    let got = read_all(
        &consumer(&bootstrap, IsolationLevel::ReadCommitted, None),
        &[tp("t", 0)],
        1,
    )
    .await;
    assert_eq!(got, vec!["next".to_string()]);
}

#[tokio::test]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let broker = start().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", 1, &[]).await;
    let first = txn_producer(&bootstrap, "txn-fence");
    promptly("init", first.init_transactions())
        .await
        .expect("init");
    first.begin_transaction().unwrap();
    let f = send(&first, record("t", 0, "zombie".into())).await;
    promptly("delivery", f).await.expect("written");

    // The new instance fences the first and aborts its open transaction.
    let second = txn_producer(&bootstrap, "txn-fence");
    promptly("init", second.init_transactions())
        .await
        .expect("init second");
    assert!(
        second.producer_id_and_epoch().unwrap().epoch
            > first.producer_id_and_epoch().unwrap().epoch
    );

    let e = promptly("commit", first.commit_transaction())
        .await
        .expect_err("the fenced producer cannot commit");
    assert!(is_fenced(&e), "{e:?}");
    // Fatal and sticky: every later call fails with a fencing error.
    let e = promptly("abort", first.abort_transaction())
        .await
        .unwrap_err();
    assert!(is_fenced(&e), "{e:?}");
    let e = first.begin_transaction().unwrap_err();
    assert!(is_fenced(&e), "{e:?}");
    let e = first.send(record("t", 0, "more".into())).await.unwrap_err();
    assert!(is_fenced(&e), "{e:?}");

    // The new instance works.
    second.begin_transaction().unwrap();
    let f = send(&second, record("t", 0, "fresh".into())).await;
    promptly("commit", second.commit_transaction())
        .await
        .expect("commit");
    f.await.expect("delivered");
    let got = read_all(
        &consumer(&bootstrap, IsolationLevel::ReadCommitted, None),
        &[tp("t", 0)],
        1,
    )
    .await;
    assert_eq!(got, vec!["fresh".to_string()]);
    let _ = first.close(Duration::from_secs(5)).await;
    promptly("close", second.close(Duration::from_secs(10)))
        .await
        .unwrap();
}

#[tokio::test]
async fn fencing_during_a_transaction_fails_the_next_send_or_commit() {
    let broker = start().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", 1, &[]).await;
    let first = txn_producer(&bootstrap, "txn-fence-2");
    promptly("init", first.init_transactions())
        .await
        .expect("init");
    let second = txn_producer(&bootstrap, "txn-fence-2");
    promptly("init", second.init_transactions())
        .await
        .expect("init second");
    // The first producer does not know yet: its transaction fails at the first request.
    first.begin_transaction().unwrap();
    let f = send(&first, record("t", 0, "zombie".into())).await;
    let delivery = promptly("delivery", f).await;
    let commit = promptly("commit", first.commit_transaction()).await;
    let e = commit.expect_err("fenced");
    assert!(is_fenced(&e), "commit: {e:?} (delivery: {delivery:?})");
    // Abort to learn the outcome; the producer ends fatal either way.
    let _ = promptly("abort", first.abort_transaction()).await;
    let e = first.begin_transaction().unwrap_err();
    assert!(is_fenced(&e), "{e:?}");
}

#[tokio::test]
async fn offsets_sent_to_a_transaction_are_committed_only_with_it() {
    let broker = start().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "in", 1, &[]).await;
    create_topic(&broker, "out", 1, &[]).await;
    let p = txn_producer(&bootstrap, "txn-offsets");
    promptly("init", p.init_transactions()).await.expect("init");
    let group = ConsumerGroupMetadata {
        group_id: "g-offsets".into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
    };
    let reader = consumer(
        &bootstrap,
        IsolationLevel::ReadUncommitted,
        Some("g-offsets"),
    );

    // Committed with the transaction.
    p.begin_transaction().unwrap();
    let f = send(&p, record("out", 0, "x".into())).await;
    let offsets = HashMap::from([(tp("in", 0), OffsetAndMetadata::new(42))]);
    promptly(
        "send offsets",
        p.send_offsets_to_transaction(&offsets, &group),
    )
    .await
    .expect("offsets added");
    assert_eq!(
        committed(&reader).await,
        None,
        "not visible before the commit"
    );
    promptly("commit", p.commit_transaction())
        .await
        .expect("commit");
    f.await.expect("delivered");
    assert_eq!(committed(&reader).await, Some(42));

    // Dropped with an aborted one (offsets alone start a transaction).
    p.begin_transaction().unwrap();
    let offsets = HashMap::from([(tp("in", 0), OffsetAndMetadata::new(50))]);
    promptly(
        "send offsets",
        p.send_offsets_to_transaction(&offsets, &group),
    )
    .await
    .expect("offsets added");
    promptly("abort", p.abort_transaction())
        .await
        .expect("abort");
    assert_eq!(committed(&reader).await, Some(42));

    // Offsets outside a transaction are refused, as Java.
    let e = p
        .send_offsets_to_transaction(&offsets, &group)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::IllegalState(_)), "{e:?}");
}

#[tokio::test]
async fn consume_transform_produce() {
    const N: usize = 300;
    let broker = start().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "in", 2, &[]).await;
    create_topic(&broker, "out", 2, &[]).await;

    // The input, written by a plain idempotent producer.
    let plain = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers(&bootstrap)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut futs = Vec::new();
    for i in 0..N {
        futs.push(send(&plain, record("in", (i % 2) as i32, format!("r-{i}"))).await);
    }
    for f in futs {
        promptly("input", f).await.expect("input written");
    }

    // The processor: read_committed, offsets sent to each transaction.
    let input = Consumer::new(
        ConsumerConfig::builder()
            .bootstrap_servers(&bootstrap)
            .group_id("ctp")
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .isolation_level(IsolationLevel::ReadCommitted)
            .enable_auto_commit(false)
            .max_poll_records(40)
            .fetch_max_wait(Duration::from_millis(100))
            .build()
            .unwrap(),
    )
    .unwrap();
    let parts = [tp("in", 0), tp("in", 1)];
    input.assign(parts.to_vec()).unwrap();
    let p = txn_producer(&bootstrap, "txn-ctp");
    promptly("init", p.init_transactions()).await.expect("init");
    let mut processed = 0;
    let mut transactions = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while processed < N {
        assert!(Instant::now() < deadline, "processed only {processed}");
        let records = input.poll(Duration::from_millis(200)).await.expect("poll");
        if records.is_empty() {
            continue;
        }
        p.begin_transaction().unwrap();
        let mut next: BTreeMap<TopicPartition, OffsetAndMetadata> = BTreeMap::new();
        let mut futs = Vec::new();
        for r in &records {
            let out = value(r).to_uppercase();
            futs.push(send(&p, record("out", r.partition, out)).await);
            next.insert(
                tp(&r.topic, r.partition),
                OffsetAndMetadata::new(r.offset + 1),
            );
        }
        let offsets: HashMap<_, _> = next.into_iter().collect();
        let group = input.group_metadata().unwrap();
        promptly(
            "send offsets",
            p.send_offsets_to_transaction(&offsets, &group),
        )
        .await
        .expect("offsets");
        // Every other transaction is aborted and its records reprocessed.
        if transactions % 3 == 1 {
            promptly("abort", p.abort_transaction())
                .await
                .expect("abort");
            for f in futs {
                let outcome = f.await;
                assert!(
                    outcome.is_ok() || matches!(outcome, Err(Error::TransactionAborted)),
                    "{outcome:?}"
                );
            }
            for (tp, o) in &offsets {
                let first = records
                    .iter()
                    .filter(|r| r.partition == tp.partition)
                    .map(|r| r.offset)
                    .min()
                    .unwrap_or(o.offset);
                input.seek(tp, first).unwrap();
            }
        } else {
            promptly("commit", p.commit_transaction())
                .await
                .expect("commit");
            for f in futs {
                f.await.expect("delivered with the commit");
            }
            processed += records.len();
        }
        transactions += 1;
    }
    assert!(transactions >= 8, "{transactions} transactions");

    let out = read_all(
        &consumer(&bootstrap, IsolationLevel::ReadCommitted, None),
        &[tp("out", 0), tp("out", 1)],
        N,
    )
    .await;
    let mut got: Vec<String> = out;
    got.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("R-{i}")).collect();
    want.sort();
    assert_eq!(got, want, "every input record exactly once");
    let offsets = promptly("committed", input.committed(&parts))
        .await
        .expect("committed");
    let total: i64 = offsets.values().flatten().map(|o| o.offset).sum();
    assert_eq!(total, N as i64);
    promptly("close", p.close(Duration::from_secs(10)))
        .await
        .unwrap();
}

#[tokio::test]
async fn java_refuses_these_calls() {
    let broker = start().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", 1, &[]).await;

    // Transactional methods without a transactional.id.
    let plain = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers(&bootstrap)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(matches!(
        plain.begin_transaction(),
        Err(Error::IllegalState(_))
    ));
    assert!(matches!(
        plain.init_transactions().await,
        Err(Error::IllegalState(_))
    ));

    let p = txn_producer(&bootstrap, "txn-illegal");
    // Before init_transactions.
    let e = p.send(record("t", 0, "x".into())).await.unwrap_err();
    assert!(matches!(e, Error::IllegalState(_)), "{e:?}");
    assert!(matches!(p.begin_transaction(), Err(Error::IllegalState(_))));
    promptly("init", p.init_transactions()).await.expect("init");
    // Outside a transaction.
    let e = p.send(record("t", 0, "x".into())).await.unwrap_err();
    assert!(matches!(e, Error::IllegalState(_)), "{e:?}");
    assert!(matches!(
        p.commit_transaction().await,
        Err(Error::IllegalState(_))
    ));
    // Twice.
    p.begin_transaction().unwrap();
    assert!(matches!(p.begin_transaction(), Err(Error::IllegalState(_))));
    // An empty transaction commits without EndTxn.
    promptly("commit", p.commit_transaction())
        .await
        .expect("commit");
    promptly("close", p.close(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(matches!(p.begin_transaction(), Err(Error::Closed)));
}

#[tokio::test]
async fn close_aborts_an_open_transaction() {
    let broker = start().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", 1, &[]).await;
    let p = txn_producer(&bootstrap, "txn-close");
    promptly("init", p.init_transactions()).await.expect("init");
    p.begin_transaction().unwrap();
    let f = send(&p, record("t", 0, "open".into())).await;
    promptly("close", p.close(Duration::from_secs(10)))
        .await
        .unwrap();
    promptly("delivery", f).await.expect("sent before closing");
    // The abort marker makes the partition stable at once: a record written after it is
    // visible to read_committed without waiting for the transaction timeout (60 s), and the
    // transaction's own record is not.
    let plain = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers(&bootstrap)
            .build()
            .unwrap(),
    )
    .unwrap();
    let f = send(&plain, record("t", 0, "after".into())).await;
    promptly("delivery", f).await.expect("written");
    let got = read_all(
        &consumer(&bootstrap, IsolationLevel::ReadCommitted, None),
        &[tp("t", 0)],
        1,
    )
    .await;
    assert_eq!(got, vec!["after".to_string()]);
}

/// Waits until the coordinator ended every transaction on `tp`: the last stable offset
/// (read_committed end offset) reaches the log end offset (read_uncommitted end offset).
async fn wait_until_stable(bootstrap: &str, tp: &TopicPartition) -> (i64, i64) {
    let committed = consumer(bootstrap, IsolationLevel::ReadCommitted, None);
    let uncommitted = consumer(bootstrap, IsolationLevel::ReadUncommitted, None);
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let lso = committed
            .end_offsets(std::slice::from_ref(tp))
            .await
            .unwrap()[tp];
        let leo = uncommitted
            .end_offsets(std::slice::from_ref(tp))
            .await
            .unwrap()[tp];
        if lso == leo {
            return (lso, leo);
        }
        assert!(
            Instant::now() < deadline,
            "still unstable: LSO {lso}, LEO {leo}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_transaction_left_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let broker = Broker::builder()
        .config(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "100",
        )
        .unwrap()
        .config("transaction.state.log.num.partitions", "3")
        .unwrap()
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", 1, &[]).await;
    let producer = Producer::new(
        ProducerConfig::builder()
            .bootstrap_servers(bootstrap.as_str())
            .transactional_id("txn-timeout")
            .transaction_timeout(Duration::from_millis(500))
            .max_block(PROMPTLY)
            .build()
            .unwrap(),
    )
    .unwrap();
    promptly("init", producer.init_transactions())
        .await
        .unwrap();
    producer.begin_transaction().unwrap();
    let f = send(&producer, record("t", 0, "late".into())).await;
    promptly("delivery", f).await.expect("written, uncommitted");
    // The coordinator aborts it (writing the abort marker) once the timeout passed.
    let (lso, leo) = wait_until_stable(&bootstrap, &tp("t", 0)).await;
    assert_eq!((lso, leo), (2, 2), "the record and the abort marker");
    // The producer learns it was fenced (the abort bumped its epoch) at its next call.
    let e = promptly("commit", producer.commit_transaction())
        .await
        .expect_err("the timed-out transaction cannot commit");
    assert!(is_fenced(&e), "{e:?}");
    let got = read_all(
        &consumer(&bootstrap, IsolationLevel::ReadUncommitted, None),
        &[tp("t", 0)],
        1,
    )
    .await;
    assert_eq!(got, vec!["late".to_string()], "in the log, aborted");
    let visible = consumer(&bootstrap, IsolationLevel::ReadCommitted, None);
    visible.assign(vec![tp("t", 0)]).unwrap();
    let polled = visible.poll(Duration::from_millis(500)).await.unwrap();
    assert!(polled.is_empty(), "read_committed sees nothing: {polled:?}");
    let _ = producer.close(Duration::from_secs(5)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_broker_restart_in_the_middle_of_a_commit_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let start_on = |dir: std::path::PathBuf| async move {
        Broker::builder()
            .data_dir(dir)
            .config("transaction.state.log.num.partitions", "3")
            .unwrap()
            .start()
            .await
            .unwrap()
    };
    let broker = start_on(dir.path().to_path_buf()).await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "t", 2, &[]).await;
    let producer = txn_producer(&bootstrap, "txn-restart");
    promptly("init", producer.init_transactions())
        .await
        .unwrap();
    producer.begin_transaction().unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20 {
        deliveries.push(send(&producer, record("t", i % 2, format!("r{i}"))).await);
    }
    // The commit's prepare record is written and answered, its markers are not.
    broker.faults().hold_txn_markers(true);
    promptly("commit", producer.commit_transaction())
        .await
        .expect("commit answered once PrepareCommit is durable");
    for d in deliveries {
        d.await.expect("delivered");
    }
    let hidden = consumer(&bootstrap, IsolationLevel::ReadCommitted, None);
    let ends = hidden.end_offsets(&[tp("t", 0), tp("t", 1)]).await.unwrap();
    assert_eq!(
        (ends[&tp("t", 0)], ends[&tp("t", 1)]),
        (0, 0),
        "nothing is visible before the markers"
    );
    drop(hidden);
    let _ = producer.close(Duration::ZERO).await;
    broker.shutdown().await;

    // After the restart the coordinator completes the commit: all of it becomes visible.
    let broker = start_on(dir.path().to_path_buf()).await;
    let bootstrap = broker.bootstrap_servers();
    let (lso, _) = wait_until_stable(&bootstrap, &tp("t", 0)).await;
    assert_eq!(lso, 11, "10 records and the commit marker");
    let mut got = read_all(
        &consumer(&bootstrap, IsolationLevel::ReadCommitted, None),
        &[tp("t", 0), tp("t", 1)],
        20,
    )
    .await;
    got.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    broker.shutdown().await;
}
