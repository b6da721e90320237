//! The `exactly_once` example's scenario against broker-lite in-process: a
//! consume-transform-produce processor crashes in the middle of a transaction and is
//! restarted with the same `transactional.id`; read_committed sees every input record
//! exactly once in the output, read_uncommitted also sees the aborted transaction's copies.

use kafka_examples::exactly_once::{run, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_transaction_and_restart_is_exactly_once() {
    let broker = broker_lite::Broker::builder()
        .config("group.initial.rebalance.delay.ms", "0")
        .unwrap()
        .start()
        .await
        .unwrap();
    let target = Target {
        bootstrap: broker.bootstrap_servers(),
        input: "orders".into(),
        output: "invoices".into(),
        group: "invoicer".into(),
        transactional_id: "invoicer".into(),
    };
    let report = run(&target, 1_200).await.unwrap();
    assert!(report.committed_before_crash >= 400, "{report:?}");
    assert_eq!(
        report.committed_before_crash + report.committed_after_restart,
        1_200,
        "{report:?}"
    );
    assert_eq!(report.missing, 0, "{report:?}");
    assert_eq!(report.duplicated, 0, "{report:?}");
    assert_eq!(report.distinct_committed, 1_200, "{report:?}");
    assert!(
        report.uncommitted_total > 1_200,
        "aborted output is in the log: {report:?}"
    );
    broker.shutdown().await;
}
