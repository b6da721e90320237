//! `consumer-vs-rdkafka`: our consumer (`kafka-client`) vs rust-rdkafka's `BaseConsumer`
//! (librdkafka), both reading the same data from one in-process broker-lite.
//!
//! Data, produced once by the parent before any run: `--messages` (default 1,000,000)
//! keyless 100-byte values into a 32-partition topic, record `i` to partition `i % 32`, with
//! our producer (`linger.ms=5`, `batch.size=16384`, acks=all, no compression). The value's
//! first 8 bytes hold `i` (little endian), so the record at partition `p`, offset `o` must
//! hold `p + 32 × o`. The parent checks the high watermarks add up to `--messages`.
//!
//! Modes:
//! - `assign`: every partition assigned, read from the beginning. Ours: `assign` without a
//!   `group.id`, `auto.offset.reset=earliest`. librdkafka: `assign` with `Offset::Beginning`
//!   (it needs a `group.id` for that; `enable.auto.commit=false`, nothing is committed).
//! - `group`: `subscribe` to the topic as the only member of a fresh group (a new `group.id`
//!   per run), `auto.offset.reset=earliest`, auto-commit on (both clients' default).
//!   broker-lite runs with `group.initial.rebalance.delay.ms=0`.
//!
//! Clients (each in a child process: this binary re-invoked with `--child`):
//! - ours: `Consumer::<Bytes, Bytes>::new` with `max.poll.records=10000`, `poll(1 s)` in a
//!   loop on a tokio multi-thread runtime with 2 workers (the polling task is spawned onto it).
//! - rdkafka: `BaseConsumer` with `queued.min.messages=1000000` and
//!   `fetch.queue.backoff.ms=10` (librdkafka's defaults throttle the fetcher), `poll(1 s)` in a
//!   loop on the main thread, one message per call.
//!
//! Both: every other setting at its default (fetch sizes are the same: `fetch.max.bytes`
//! 50 MiB, `max.partition.fetch.bytes` 1 MiB; `check.crcs` is on for ours (Java's default)
//! and off for librdkafka (its default)). Before the timer starts each client connects and
//! fetches the topic's metadata. Timed from the first poll to the last record (the group
//! join is inside the window in group mode; the time to the first record is reported too).
//! For every record the loop checks that the offset is the next one of its partition and
//! that the value holds `p + 32 × o`, and adds the offset into a checksum; the parent checks
//! the count (exactly `--messages`) and the checksum.
//!
//! The child reports elapsed time, CPU time (user + system, whole process) in the window,
//! and peak RSS (`VmHWM`). The broker lives in the parent.
//!
//! Usage: `consumer-vs-rdkafka [--messages N] [--runs N] [--warmup N] [--modes assign,group]
//! [--clients rdkafka,ours]`
//!
//! Diagnostics (never used for the reported figures): `BENCH_OURS_EXTRA` /
//! `BENCH_RDKAFKA_EXTRA` = `key=value,...` add client settings; `BENCH_CHILD_WRAPPER` = a
//! command prefix for the child processes (e.g. `perf record -g -o /tmp/c.data --`);
//! `RUST_LOG` filters broker-lite's and our client's logs (default `warn`), `BENCH_CHILD_LOG`
//! the child's only.

#[path = "../bench_util.rs"]
mod bench_util;
use bench_util::{
    best_median, extra_settings, list, mb, median, proc_status_kib, process_cpu, run_child,
    VALUE_SIZE,
};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

const PARTITIONS: i32 = 32;
const TOPIC: &str = "consume-bench";

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// `RUST_LOG` (default `warn`); in a child, `BENCH_CHILD_LOG` when set.
fn init_tracing(child: bool) {
    let filter = match std::env::var("BENCH_CHILD_LOG") {
        Ok(f) if child => tracing_subscriber::EnvFilter::new(f),
        _ => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The checksum term of one record.
fn checksum_term(partition: i32, offset: i64) -> u64 {
    (partition as u64)
        .wrapping_mul(1_000_003)
        .wrapping_add(offset as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The checksum of every record of a topic whose partitions hold `counts[p]` records.
fn expected_checksum(counts: &[i64]) -> u64 {
    let mut sum = 0u64;
    for (p, &n) in counts.iter().enumerate() {
        for o in 0..n {
            sum = sum.wrapping_add(checksum_term(p as i32, o));
        }
    }
    sum
}

/// Per-record verification done by both clients' loops.
struct Verifier {
    next: Vec<i64>,
    count: u64,
    checksum: u64,
}

impl Verifier {
    fn new() -> Self {
        Verifier {
            next: vec![0; PARTITIONS as usize],
            count: 0,
            checksum: 0,
        }
    }

    #[inline]
    fn record(&mut self, partition: i32, offset: i64, value: Option<&[u8]>) {
        let next = &mut self.next[partition as usize];
        assert_eq!(
            offset, *next,
            "partition {partition}: offset out of sequence"
        );
        *next += 1;
        let v = value.expect("null value");
        assert_eq!(v.len(), VALUE_SIZE, "value size");
        let seq = u64::from_le_bytes(v[..8].try_into().unwrap());
        assert_eq!(
            seq,
            partition as u64 + PARTITIONS as u64 * offset as u64,
            "value of {partition}@{offset}"
        );
        self.count += 1;
        self.checksum = self.checksum.wrapping_add(checksum_term(partition, offset));
    }
}

// ---------------------------------------------------------------------------------------------
// Child: one client, one run
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Ours,
    Rdkafka,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Ours => "ours",
            Client::Rdkafka => "rdkafka",
        }
    }
    fn parse(s: &str) -> Client {
        match s {
            "ours" | "kafka-client" => Client::Ours,
            "rdkafka" | "librdkafka" => Client::Rdkafka,
            other => panic!("client ours|rdkafka, not {other}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Assign,
    Group,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Assign => "assign",
            Mode::Group => "group",
        }
    }
    fn parse(s: &str) -> Mode {
        match s {
            "assign" | "assigned" => Mode::Assign,
            "group" | "subscribe" => Mode::Group,
            other => panic!("mode assign|group, not {other}"),
        }
    }
}

struct ChildArgs {
    client: Client,
    mode: Mode,
    broker: String,
    group: String,
    messages: u64,
}

struct ChildOutcome {
    /// First poll to last record.
    elapsed: Duration,
    /// First poll to first record.
    first: Duration,
    cpu: Duration,
    rss_before_kib: u64,
    verifier: Verifier,
}

fn child_main(a: ChildArgs) {
    init_tracing(true);
    let outcome = match a.client {
        Client::Ours => run_ours(&a),
        Client::Rdkafka => rd::run(&a),
    };
    let hwm = proc_status_kib("VmHWM:");
    println!(
        "RESULT client={} mode={} elapsed_s={:.6} first_s={:.6} cpu_s={:.4} rss_before_kib={} \
         hwm_kib={} count={} checksum={}",
        a.client.name(),
        a.mode.name(),
        outcome.elapsed.as_secs_f64(),
        outcome.first.as_secs_f64(),
        outcome.cpu.as_secs_f64(),
        outcome.rss_before_kib,
        hwm,
        outcome.verifier.count,
        outcome.verifier.checksum,
    );
}

fn all_partitions() -> Vec<kafka_client::producer::TopicPartition> {
    (0..PARTITIONS)
        .map(|p| kafka_client::producer::TopicPartition {
            topic: TOPIC.into(),
            partition: p,
        })
        .collect()
}

fn run_ours(a: &ChildArgs) -> ChildOutcome {
    use kafka_client::config::ConsumerConfig;
    use kafka_client::consumer::Consumer;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut builder = ConsumerConfig::builder()
        .bootstrap_servers(a.broker.clone())
        .set("auto.offset.reset", "earliest")
        .set("max.poll.records", "10000");
    if a.mode == Mode::Group {
        builder = builder.set("group.id", a.group.clone());
    }
    for (k, v) in extra_settings("BENCH_OURS_EXTRA") {
        builder = builder.set(k, v);
    }
    let config = builder.build().expect("consumer config");
    let mode = a.mode;
    let messages = a.messages;
    let task = rt.spawn(async move {
        let consumer = Consumer::<Bytes, Bytes>::new(config).expect("consumer");
        // Connection and metadata before the timer starts.
        let ends = consumer
            .end_offsets(&all_partitions())
            .await
            .expect("end offsets");
        assert_eq!(ends.len(), PARTITIONS as usize, "partitions");
        let rss_before_kib = proc_status_kib("VmRSS:");
        let mut v = Verifier::new();
        let cpu0 = process_cpu();
        let start = Instant::now();
        match mode {
            Mode::Assign => consumer.assign(all_partitions()).expect("assign"),
            Mode::Group => consumer.subscribe(&[TOPIC]).expect("subscribe"),
        }
        let mut first = None;
        let deadline = start + Duration::from_secs(300);
        while v.count < messages {
            assert!(
                Instant::now() < deadline,
                "timed out at {} records",
                v.count
            );
            let records = consumer.poll(Duration::from_secs(1)).await.expect("poll");
            if first.is_none() && !records.is_empty() {
                first = Some(start.elapsed());
            }
            for r in &records {
                v.record(r.partition, r.offset, r.value.as_deref());
            }
        }
        let elapsed = start.elapsed();
        let cpu = process_cpu() - cpu0;
        consumer
            .close_with_timeout(Duration::from_secs(10))
            .await
            .expect("close");
        ChildOutcome {
            elapsed,
            first: first.unwrap_or_default(),
            cpu,
            rss_before_kib,
            verifier: v,
        }
    });
    let outcome = rt.block_on(task).expect("consumer task");
    rt.shutdown_timeout(Duration::from_secs(5));
    outcome
}

mod rd {
    use super::*;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};

    pub fn run(a: &ChildArgs) -> ChildOutcome {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &a.broker)
            .set("group.id", &a.group)
            .set("auto.offset.reset", "earliest")
            .set("queued.min.messages", "1000000")
            .set("fetch.queue.backoff.ms", "10");
        if a.mode == Mode::Assign {
            cfg.set("enable.auto.commit", "false");
        }
        for (k, v) in extra_settings("BENCH_RDKAFKA_EXTRA") {
            cfg.set(k, v);
        }
        let consumer: BaseConsumer = cfg.create().expect("consumer");
        // Connection and metadata before the timer starts.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(md) = consumer.fetch_metadata(Some(TOPIC), Duration::from_secs(5)) {
                if md.topics().iter().any(|t| {
                    t.name() == TOPIC
                        && t.error().is_none()
                        && t.partitions().len() == PARTITIONS as usize
                }) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "topic metadata not available");
            std::thread::sleep(Duration::from_millis(50));
        }
        let rss_before_kib = proc_status_kib("VmRSS:");
        let mut v = Verifier::new();
        let cpu0 = process_cpu();
        let start = Instant::now();
        match a.mode {
            Mode::Assign => {
                let mut tpl = TopicPartitionList::new();
                for p in 0..PARTITIONS {
                    tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
                        .expect("tpl");
                }
                consumer.assign(&tpl).expect("assign");
            }
            Mode::Group => consumer.subscribe(&[TOPIC]).expect("subscribe"),
        }
        let mut first = None;
        let deadline = start + Duration::from_secs(300);
        while v.count < a.messages {
            assert!(
                Instant::now() < deadline,
                "timed out at {} records",
                v.count
            );
            match consumer.poll(Duration::from_secs(1)) {
                None => {}
                Some(Ok(m)) => {
                    if first.is_none() {
                        first = Some(start.elapsed());
                    }
                    v.record(m.partition(), m.offset(), m.payload());
                }
                Some(Err(e)) => panic!("poll: {e}"),
            }
        }
        let elapsed = start.elapsed();
        let cpu = process_cpu() - cpu0;
        if a.mode == Mode::Group {
            consumer.unsubscribe();
        }
        drop(consumer);
        ChildOutcome {
            elapsed,
            first: first.unwrap_or_default(),
            cpu,
            rss_before_kib,
            verifier: v,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parent: broker, data, runs, checks, table
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct RunResult {
    elapsed: f64,
    first: f64,
    client_cpu: f64,
    broker_cpu: f64,
    hwm_kib: u64,
    rss_before_kib: u64,
}

struct ParentArgs {
    messages: u64,
    runs: usize,
    warmup: usize,
    modes: Vec<Mode>,
    clients: Vec<Client>,
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("--child") {
        child_main(parse_child(&raw[1..]));
        return;
    }
    let mut args = ParentArgs {
        messages: 1_000_000,
        runs: 5,
        warmup: 1,
        modes: vec![Mode::Assign, Mode::Group],
        clients: vec![Client::Rdkafka, Client::Ours],
    };
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--messages" => args.messages = val().parse().expect("--messages N"),
            "--runs" => args.runs = val().parse().expect("--runs N"),
            "--warmup" => args.warmup = val().parse().expect("--warmup N"),
            "--modes" => args.modes = list(val()).iter().map(|m| Mode::parse(m)).collect(),
            "--clients" => args.clients = list(val()).iter().map(|c| Client::parse(c)).collect(),
            "-h" | "--help" => {
                println!(
                    "consumer-vs-rdkafka [--messages N] [--runs N] [--warmup N] \
                     [--modes assign,group] [--clients rdkafka,ours]"
                );
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(args.runs >= 1, "--runs must be at least 1");
    parent_main(args);
}

fn parse_child(raw: &[String]) -> ChildArgs {
    let mut a = ChildArgs {
        client: Client::parse(&raw[0]),
        mode: Mode::Assign,
        broker: String::new(),
        group: String::new(),
        messages: 1_000_000,
    };
    let mut it = raw[1..].iter();
    while let Some(k) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| panic!("{k} needs a value"))
            .clone();
        match k.as_str() {
            "--mode" => a.mode = Mode::parse(&v),
            "--broker" => a.broker = v,
            "--group" => a.group = v,
            "--messages" => a.messages = v.parse().expect("--messages N"),
            other => panic!("unknown child argument {other}"),
        }
    }
    a
}

/// Produces the data set with our producer: record `i` to partition `i % 32`.
async fn produce_data(bootstrap: &str, messages: u64) {
    use kafka_client::config::ProducerConfig;
    use kafka_client::producer::Producer;
    use kafka_client::ProducerRecord;

    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap.to_string())
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "16384")
        .set("compression.type", "none")
        .build()
        .expect("producer config");
    let producer = Producer::<Bytes, Bytes>::new(config).expect("producer");
    let mut value = [0u8; VALUE_SIZE];
    for (j, b) in value.iter_mut().enumerate().skip(8) {
        *b = b'a' + (j % 26) as u8;
    }
    let mut pending = Vec::new();
    for i in 0..messages {
        value[..8].copy_from_slice(&i.to_le_bytes());
        let record = ProducerRecord::<Bytes, Bytes>::new(TOPIC, Bytes::copy_from_slice(&value))
            .with_partition((i % PARTITIONS as u64) as i32);
        pending.push(producer.send(record).await.expect("send"));
        if pending.len() >= 100_000 {
            for f in pending.drain(..) {
                f.await.expect("delivery");
            }
        }
    }
    for f in pending.drain(..) {
        f.await.expect("delivery");
    }
    producer
        .close(Duration::from_secs(30))
        .await
        .expect("close producer");
}

fn parent_main(args: ParentArgs) {
    init_tracing(false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::Builder::new()
        .prefix("consumer-vs-rdkafka-")
        .tempdir()
        .expect("temp dir");
    let broker = rt
        .block_on(
            broker_lite::Broker::builder()
                .data_dir(dir.path())
                .config("group.initial.rebalance.delay.ms", "0")
                .expect("broker config")
                .start(),
        )
        .expect("start broker-lite");
    let bootstrap = broker.bootstrap_servers();
    println!(
        "broker-lite at {bootstrap} (data dir {})",
        dir.path().display()
    );

    let state = broker.state();
    state
        .create_topic(TOPIC, PARTITIONS, 1, BTreeMap::new())
        .expect("create topic");
    let t0 = Instant::now();
    rt.block_on(produce_data(&bootstrap, args.messages));
    let t = state.topic(TOPIC).expect("topic");
    let counts: Vec<i64> = t
        .all_partitions()
        .iter()
        .map(|p| {
            let log = p.log();
            assert_eq!(log.log_start_offset(), 0);
            log.high_watermark()
        })
        .collect();
    let total: i64 = counts.iter().sum();
    assert_eq!(total as u64, args.messages, "records in the topic");
    let checksum = expected_checksum(&counts);
    // broker-lite creates `__consumer_offsets` (50 partitions, a few hundred ms) on the first
    // group request: done here, untimed, not in whichever client's run comes first.
    rt.block_on(async {
        use kafka_client::config::ConsumerConfig;
        use kafka_client::consumer::Consumer;
        let config = ConsumerConfig::builder()
            .bootstrap_servers(bootstrap.clone())
            .set("group.id", "bench-setup")
            .build()
            .expect("consumer config");
        let consumer = Consumer::<Bytes, Bytes>::new(config).expect("consumer");
        consumer
            .committed(&all_partitions()[..1])
            .await
            .expect("committed (creates __consumer_offsets)");
        consumer.close().await.expect("close");
    });
    println!(
        "produced {} x {} B values into {} partitions in {:.2} s (expected checksum {checksum})",
        args.messages,
        VALUE_SIZE,
        PARTITIONS,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "{} warm-up run(s) per client and mode, then {} run(s) per client and mode",
        args.warmup, args.runs
    );

    let mut seq = 0u32;
    let mut run = |client: Client, mode: Mode| -> RunResult {
        seq += 1;
        let group = format!("bench-{}-{}-{seq}", std::process::id(), client.name());
        one_run(&bootstrap, client, mode, &group, args.messages, checksum)
    };

    for w in 1..=args.warmup {
        for &mode in &args.modes {
            for &c in &args.clients {
                let r = run(c, mode);
                println!(
                    "warm-up {w} {:<6} {:<8} {:>9.0} msg/s (not recorded)",
                    mode.name(),
                    c.name(),
                    args.messages as f64 / r.elapsed
                );
            }
        }
    }

    let mut results: BTreeMap<(Mode, &'static str), Vec<RunResult>> = BTreeMap::new();
    for &mode in &args.modes {
        for rep in 0..args.runs {
            // Alternate which client goes first.
            let mut order = args.clients.clone();
            if rep % 2 == 1 {
                order.reverse();
            }
            for c in order {
                let r = run(c, mode);
                println!(
                    "{:<6} run {} {:<8} {:>6.3} s {:>9.0} msg/s {:>6.1} MB/s first record {:>6.1} ms \
                     rss {:>6.1} MiB (before {:>5.1}) cpu {:>5.2} s broker cpu {:>5.2} s",
                    mode.name(),
                    rep + 1,
                    c.name(),
                    r.elapsed,
                    args.messages as f64 / r.elapsed,
                    mb(args.messages, r.elapsed),
                    r.first * 1e3,
                    r.hwm_kib as f64 / 1024.0,
                    r.rss_before_kib as f64 / 1024.0,
                    r.client_cpu,
                    r.broker_cpu,
                );
                results.entry((mode, c.name())).or_default().push(r);
            }
        }
    }
    rt.block_on(broker.shutdown());

    let n = args.messages;
    println!();
    println!(
        "best of {} run(s) (median in parentheses); timed from the first poll to the last \
         record; MB = 10^6 bytes of values; RSS = child's VmHWM, median; CPU = median user+sys \
         seconds in the timed window",
        args.runs
    );
    println!(
        "| mode | client | msgs/s | MB/s | first record ms | peak RSS MiB | client CPU s | broker CPU s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for &mode in &args.modes {
        for &c in &args.clients {
            let rs = &results[&(mode, c.name())];
            let (best, med) = best_median(rs.iter().map(|r| r.elapsed).collect());
            let med_of = |f: &dyn Fn(&RunResult) -> f64| median(rs.iter().map(f).collect());
            println!(
                "| {} | {} | {:.0} ({:.0}) | {:.1} ({:.1}) | {:.1} | {:.1} | {:.2} | {:.2} |",
                mode.name(),
                c.name(),
                n as f64 / best,
                n as f64 / med,
                mb(n, best),
                mb(n, med),
                med_of(&|r| r.first) * 1e3,
                med_of(&|r| r.hwm_kib as f64) / 1024.0,
                med_of(&|r| r.client_cpu),
                med_of(&|r| r.broker_cpu),
            );
        }
    }
    if args.clients.contains(&Client::Rdkafka) && args.clients.contains(&Client::Ours) {
        println!();
        println!("ratio ours / rdkafka (msgs/s: higher is better; RSS and CPU: lower is better)");
        println!(
            "| mode | msgs/s best | msgs/s median | peak RSS (median) | client CPU (median) |"
        );
        println!("|---|---:|---:|---:|---:|");
        for &mode in &args.modes {
            let r = &results[&(mode, Client::Rdkafka.name())];
            let o = &results[&(mode, Client::Ours.name())];
            let (rb, rm) = best_median(r.iter().map(|x| x.elapsed).collect());
            let (ob, om) = best_median(o.iter().map(|x| x.elapsed).collect());
            let rss = |v: &[RunResult]| median(v.iter().map(|x| x.hwm_kib as f64).collect());
            let cpu = |v: &[RunResult]| median(v.iter().map(|x| x.client_cpu).collect());
            println!(
                "| {} | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
                mode.name(),
                rb / ob,
                rm / om,
                rss(o) / rss(r),
                cpu(o) / cpu(r)
            );
        }
    }
}

fn one_run(
    bootstrap: &str,
    client: Client,
    mode: Mode,
    group: &str,
    messages: u64,
    checksum: u64,
) -> RunResult {
    let child_args: Vec<String> = vec![
        "--child".into(),
        client.name().into(),
        "--mode".into(),
        mode.name().into(),
        "--broker".into(),
        bootstrap.into(),
        "--group".into(),
        group.into(),
        "--messages".into(),
        messages.to_string(),
    ];
    let run = run_child(client.name(), &child_args);
    let f = |k: &str| run.f(k);
    // Nobody cheats: exactly the records of the topic, each once.
    assert_eq!(
        run.get("count").parse::<u64>().unwrap(),
        messages,
        "records read"
    );
    assert_eq!(
        run.get("checksum").parse::<u64>().unwrap(),
        checksum,
        "checksum of the offsets read"
    );
    RunResult {
        elapsed: f("elapsed_s"),
        first: f("first_s"),
        client_cpu: f("cpu_s"),
        broker_cpu: run.broker_cpu.as_secs_f64(),
        hwm_kib: f("hwm_kib") as u64,
        rss_before_kib: f("rss_before_kib") as u64,
    }
}
