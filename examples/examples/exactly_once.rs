//! Exactly-once consume-transform-produce (KIP-98, KIP-447): a processor reads `orders`,
//! writes one transformed record per input record to `invoices`, and commits its input
//! offsets *in the same transaction* as its output (`send_offsets_to_transaction`).
//!
//! Starts broker-lite in-process, produces 3,000 orders, then:
//!
//! 1. processor #1 (`transactional.id = invoicer`) processes a third of them, one
//!    transaction per poll, then starts one more transaction, sends its output and
//!    **crashes**: it stops as a killed process would, without committing (a forced
//!    `close(Duration::ZERO)` leaves the transaction open);
//! 2. processor #2 starts with the same `transactional.id`: `init_transactions` fences #1
//!    and makes the coordinator abort its open transaction; the group's committed offsets
//!    (written only by committed transactions) tell #2 where to resume, and it processes the
//!    rest;
//! 3. `invoices` is read with `isolation.level=read_committed`: every order appears exactly
//!    once. A `read_uncommitted` reader also sees the aborted output of the crashed
//!    transaction — the duplicates that transactions hide.
//!
//! With `--bootstrap host:port` it runs against that broker instead (any Kafka broker with
//! transactions), on topics, group and transactional id named for the run.
//!
//! ```sh
//! cargo run -p kafka-examples --example exactly_once
//! cargo run -p kafka-examples --example exactly_once -- --bootstrap localhost:9092
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use kafka_examples::bootstrap_arg;
use kafka_examples::exactly_once::{run, BoxError, Target};

const ORDERS: usize = 3_000;

const USAGE: &str = "usage: exactly_once [--bootstrap host:port]\n\
    Without --bootstrap, broker-lite is started in-process.";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (broker, target) = match bootstrap_arg(USAGE) {
        Some(bootstrap) => {
            let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
            let target = Target {
                bootstrap,
                input: format!("orders-{run}"),
                output: format!("invoices-{run}"),
                group: format!("invoicer-{run}"),
                transactional_id: format!("invoicer-{run}"),
            };
            (None, target)
        }
        None => {
            let broker = broker_lite::Broker::builder()
                .config("group.initial.rebalance.delay.ms", "0")?
                .start()
                .await?;
            let target = Target {
                bootstrap: broker.bootstrap_servers(),
                input: "orders".into(),
                output: "invoices".into(),
                group: "invoicer".into(),
                transactional_id: "invoicer".into(),
            };
            println!("broker-lite listening on {}", target.bootstrap);
            (Some(broker), target)
        }
    };
    let report = run(&target, ORDERS).await?;
    println!(
        "read_committed: {} distinct invoices, {} missing, {} duplicated",
        report.distinct_committed, report.missing, report.duplicated
    );
    println!(
        "read_uncommitted: {} invoices, {} of them from the aborted transaction",
        report.uncommitted_total,
        report
            .uncommitted_total
            .saturating_sub(report.distinct_committed)
    );
    if let Some(broker) = broker {
        broker.shutdown().await;
        println!("broker-lite shut down");
    }
    if !report.exactly_once() {
        return Err(format!("the output is not exactly once: {report:?}").into());
    }
    println!("every order was invoiced exactly once");
    Ok(())
}
