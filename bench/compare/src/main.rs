//! `broker-vs-mock`: produce/consume throughput of broker-lite vs librdkafka's in-process mock
//! cluster (`rdkafka::mocking::MockCluster`), both driven by rust-rdkafka (librdkafka) as the
//! client, in one process.
//!
//! Workload (per run, per target): a fresh target with a 32-partition topic; 1,000,000 ×
//! 100-byte keyless values produced with `BaseProducer` to explicit partitions `i % 32`
//! (`acks=1`, `linger.ms=5`, other producer settings at librdkafka's defaults), timed from the
//! first `send` to the last delivery report; then all of them consumed back with a
//! `BaseConsumer` that `assign`s the 32 partitions from the beginning
//! (`queued.min.messages=1000000`, `fetch.queue.backoff.ms=10`), timed from `assign` to the
//! last message. Every consumed message is checked: partition offsets must be contiguous from
//! 0, and the sequence number in the value must be `partition + 32 * offset` (so nothing is
//! lost, duplicated or reordered).
//!
//! Fairness: first `--warmup` unrecorded rounds (default 1: one full run of each target, so
//! both find the process warm: allocator arenas, page cache, CPU frequency), then the targets
//! alternate (mock, broker-lite, mock, broker-lite, ...) for `--runs` rounds (default 5),
//! each run on a fresh target; the table reports the best run of each and the median (every
//! run is printed too). Both clients connect and fetch metadata before the timers start.
//!
//! The consumer sets a `group.id` because librdkafka's `assign` needs a consumer-group handle;
//! nothing is committed and no group is joined (broker-lite serves no group APIs).
//!
//! Usage: `broker-vs-mock [--messages N] [--runs N] [--warmup N] [--only mock|broker-lite]`
//!
//! Diagnostics (never used for the reported figures): `BENCH_PRODUCER_EXTRA` /
//! `BENCH_CONSUMER_EXTRA` = `key=value,...` add client settings (e.g.
//! `max.partition.fetch.bytes=65536`); `BENCH_CONSUMER_DEBUG` sets the consumer's librdkafka
//! `debug` contexts (shown with `RUST_LOG=librdkafka=debug`);
//! `BENCH_MARKERS=1` prints CLOCK_MONOTONIC phase boundaries to stderr (with the process's
//! minor page faults and context switches so far, and a marker at the first consumed
//! message), to cut a `perf record -k mono` profile into produce and consume phases;
//! `BENCH_THREADS=1` (with `BENCH_MARKERS`) adds every thread's CPU ticks at each marker, to
//! see which thread (client application, `rdk:broker*`, `rdk:mock`, tokio workers) did the
//! work of a phase; `RUST_LOG` filters
//! broker-lite's own logs (default `warn`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 32;
const VALUE_SIZE: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Mock,
    BrokerLite,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Mock => "librdkafka mock",
            Target::BrokerLite => "broker-lite",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct RunResult {
    produce: Duration,
    consume: Duration,
    /// CPU time (user + system) of the whole process, clients and broker, per phase.
    produce_cpu: Duration,
    consume_cpu: Duration,
}

/// CPU time (user + system) used so far by the whole process (every thread).
/// This process's resource usage so far (`getrusage(RUSAGE_SELF)`).
fn rusage() -> libc::rusage {
    // SAFETY: getrusage only writes the struct we pass, which is zero-initialised POD.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage; RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    ru
}

fn process_cpu() -> Duration {
    let ru = rusage();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Counts delivery reports (successes and failures).
#[derive(Default)]
struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("delivery failed: {e}");
                }
                0
            }
        };
    }
}

struct Args {
    messages: u64,
    runs: usize,
    warmup: usize,
    only: Option<Target>,
}

fn parse_args() -> Args {
    let mut args = Args {
        messages: 1_000_000,
        runs: 5,
        warmup: 1,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--messages" => args.messages = val().parse().expect("--messages N"),
            "--runs" => args.runs = val().parse().expect("--runs N"),
            "--warmup" => args.warmup = val().parse().expect("--warmup N"),
            "--only" => {
                args.only = Some(match val().as_str() {
                    "mock" => Target::Mock,
                    "broker-lite" | "broker" => Target::BrokerLite,
                    other => panic!("--only mock|broker-lite, not {other}"),
                })
            }
            "-h" | "--help" => {
                println!(
                    "broker-vs-mock [--messages N] [--runs N] [--warmup N] [--only mock|broker-lite]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    // broker-lite logs through `tracing`: show warnings (e.g. closed connections) by default.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let targets: Vec<Target> = match args.only {
        Some(t) => vec![t],
        None => vec![Target::Mock, Target::BrokerLite],
    };
    println!(
        "workload: {} x {} B values, {} partitions (explicit i % {}), acks=1, linger.ms=5; \
         {} warm-up round(s), then {} alternating run(s) per target",
        args.messages, VALUE_SIZE, PARTITIONS, PARTITIONS, args.warmup, args.runs
    );
    for round in 1..=args.warmup {
        for &target in &targets {
            let r = run_once(&rt, target, args.messages);
            println!(
                "warm-up {round} {:<16} produce {:>8.3} s | consume {:>8.3} s (not recorded)",
                target.name(),
                r.produce.as_secs_f64(),
                r.consume.as_secs_f64()
            );
        }
    }
    let mut results: HashMap<&'static str, Vec<RunResult>> = HashMap::new();
    for round in 1..=args.runs {
        for &target in &targets {
            let r = run_once(&rt, target, args.messages);
            println!(
                "run {round} {:<16} produce {:>6.3} s {:>8.0} msg/s {:>6.1} MB/s cpu {:>5.2} s | consume {:>6.3} s {:>8.0} msg/s {:>6.1} MB/s cpu {:>5.2} s",
                target.name(),
                r.produce.as_secs_f64(),
                rate(args.messages, r.produce),
                mb_rate(args.messages, r.produce),
                r.produce_cpu.as_secs_f64(),
                r.consume.as_secs_f64(),
                rate(args.messages, r.consume),
                mb_rate(args.messages, r.consume),
                r.consume_cpu.as_secs_f64(),
            );
            results.entry(target.name()).or_default().push(r);
        }
    }

    println!();
    println!(
        "best of {} run(s) per target (median in parentheses); MB = 10^6 bytes of values \
         (100 B each; record and batch overhead not counted)",
        args.runs
    );
    println!("| target | produce msgs/s | produce MB/s | consume msgs/s | consume MB/s |");
    println!("|---|---:|---:|---:|---:|");
    let mut summary: HashMap<&'static str, [Duration; 4]> = HashMap::new();
    for &target in &targets {
        let rs = &results[target.name()];
        let (pb, pm) = best_and_median(rs.iter().map(|r| r.produce).collect());
        let (cb, cm) = best_and_median(rs.iter().map(|r| r.consume).collect());
        summary.insert(target.name(), [pb, pm, cb, cm]);
        let n = args.messages;
        println!(
            "| {} | {:.0} ({:.0}) | {:.1} ({:.1}) | {:.0} ({:.0}) | {:.1} ({:.1}) |",
            target.name(),
            rate(n, pb),
            rate(n, pm),
            mb_rate(n, pb),
            mb_rate(n, pm),
            rate(n, cb),
            rate(n, cm),
            mb_rate(n, cb),
            mb_rate(n, cm),
        );
    }
    println!();
    println!(
        "median CPU time of the whole process (client + broker threads) per phase, \
         user + system:"
    );
    println!("| target | produce CPU s | consume CPU s |");
    println!("|---|---:|---:|");
    for &target in &targets {
        let rs = &results[target.name()];
        let (_, p) = best_and_median(rs.iter().map(|r| r.produce_cpu).collect());
        let (_, c) = best_and_median(rs.iter().map(|r| r.consume_cpu).collect());
        println!(
            "| {} | {:.2} | {:.2} |",
            target.name(),
            p.as_secs_f64(),
            c.as_secs_f64()
        );
    }
    if let (Some(b), Some(m)) = (
        summary.get(Target::BrokerLite.name()),
        summary.get(Target::Mock.name()),
    ) {
        let ratio = |i: usize| m[i].as_secs_f64() / b[i].as_secs_f64();
        println!();
        println!(
            "ratio broker-lite / mock (throughput): produce {:.2}x (median {:.2}x), consume {:.2}x (median {:.2}x)",
            ratio(0),
            ratio(1),
            ratio(2),
            ratio(3),
        );
    }
}

/// The shortest duration and the median one (the lower middle for an even count).
fn best_and_median(mut d: Vec<Duration>) -> (Duration, Duration) {
    d.sort();
    (d[0], d[(d.len() - 1) / 2])
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn mb_rate(n: u64, d: Duration) -> f64 {
    (n as f64 * VALUE_SIZE as f64) / 1e6 / d.as_secs_f64()
}

fn run_once(rt: &tokio::runtime::Runtime, target: Target, messages: u64) -> RunResult {
    match target {
        Target::Mock => {
            let cluster = MockCluster::new(1).expect("mock cluster");
            cluster
                .create_topic(TOPIC, PARTITIONS, 1)
                .expect("mock create_topic");
            let bootstrap = cluster.bootstrap_servers();
            let r = run_workload(rt, &bootstrap, messages);
            drop(cluster);
            r
        }
        Target::BrokerLite => {
            let dir = tempfile::Builder::new()
                .prefix("broker-vs-mock-")
                .tempdir()
                .expect("temp dir");
            let broker = rt
                .block_on(broker_lite::Broker::builder().data_dir(dir.path()).start())
                .expect("start broker-lite");
            let bootstrap = broker.bootstrap_servers();
            create_topic_admin(rt, &bootstrap);
            let r = run_workload(rt, &bootstrap, messages);
            rt.block_on(broker.shutdown());
            drop(dir);
            r
        }
    }
}

fn create_topic_admin(rt: &tokio::runtime::Runtime, bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let res = rt
        .block_on(admin.create_topics([&topic], &opts))
        .expect("create_topics request");
    for r in res {
        if let Err((name, code)) = r {
            panic!("create topic {name}: {code}");
        }
    }
}

fn run_workload(rt: &tokio::runtime::Runtime, bootstrap: &str, messages: u64) -> RunResult {
    let _ = rt; // the broker (if any) runs on `rt`'s worker threads; the clients are synchronous
    let (produce, produce_cpu) = produce(bootstrap, messages);
    let (consume, consume_cpu) = consume(bootstrap, messages);
    RunResult {
        produce,
        consume,
        produce_cpu,
        consume_cpu,
    }
}

/// Waits until the client sees the topic with all its partitions (and is connected).
fn wait_metadata<C: ClientContext>(client: &rdkafka::client::Client<C>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(md) = client.fetch_metadata(Some(TOPIC), Duration::from_secs(5)) {
            if md.topics().iter().any(|t| {
                t.name() == TOPIC
                    && t.error().is_none()
                    && t.partitions().len() == PARTITIONS as usize
            }) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "topic metadata not available");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Diagnostics only (the reported figures use none): extra client settings from an
/// environment variable holding `key=value,key=value`.
fn extra_config(cfg: &mut ClientConfig, var: &str) {
    if let Ok(v) = std::env::var(var) {
        for kv in v.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("{var}: {kv} is not key=value"));
            cfg.set(k, v);
        }
    }
}

/// Diagnostics only: with `BENCH_MARKERS` set, prints the raw CLOCK_MONOTONIC time (the
/// `Debug` of an `Instant` on Linux) at phase boundaries, to cut a `perf record -k mono`
/// profile into phases.
fn marker(what: &str) {
    if std::env::var_os("BENCH_MARKERS").is_some() {
        let ru = rusage();
        eprintln!(
            "MARKER {what} {:?} minflt {} nvcsw {} nivcsw {}",
            Instant::now(),
            ru.ru_minflt,
            ru.ru_nvcsw,
            ru.ru_nivcsw
        );
        if std::env::var_os("BENCH_THREADS").is_some() {
            // Per-thread CPU ticks (utime + stime, clock ticks) to see which thread works.
            let mut rows = Vec::new();
            if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
                for e in dir.flatten() {
                    let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                        continue;
                    };
                    let (Some(l), Some(r)) = (stat.find('('), stat.rfind(')')) else {
                        continue;
                    };
                    let comm = &stat[l + 1..r];
                    let f: Vec<&str> = stat.get(r + 2..).unwrap_or("").split(' ').collect();
                    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
                    let t = ticks(11).unwrap_or(0) + ticks(12).unwrap_or(0);
                    rows.push(format!(
                        "{}:{}={}",
                        e.file_name().to_string_lossy(),
                        comm,
                        t
                    ));
                }
            }
            eprintln!("THREADS {what} {}", rows.join(" "));
        }
    }
}

fn produce(bootstrap: &str, messages: u64) -> (Duration, Duration) {
    let mut cfg = ClientConfig::new();
    extra_config(&mut cfg, "BENCH_PRODUCER_EXTRA");
    let producer: BaseProducer<Counting> = cfg
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "5")
        .create_with_context(Counting::default())
        .expect("producer");
    wait_metadata(producer.client());

    let ctx: Arc<Counting> = producer.context().clone();
    let mut value = [0u8; VALUE_SIZE];
    for (j, b) in value.iter_mut().enumerate().skip(8) {
        *b = b'a' + (j % 26) as u8;
    }
    marker("produce-start");
    let cpu0 = process_cpu();
    let start = Instant::now();
    for i in 0..messages {
        value[..8].copy_from_slice(&i.to_le_bytes());
        let partition = (i % PARTITIONS as u64) as i32;
        let mut record = BaseRecord::<(), [u8]>::to(TOPIC)
            .partition(partition)
            .payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("send: {e}"),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while ctx.delivered.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed) < messages {
        producer.poll(Duration::from_millis(50));
        assert!(Instant::now() < deadline, "delivery reports missing");
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu() - cpu0;
    marker("produce-end");
    let failed = ctx.failed.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} messages failed delivery");
    (elapsed, cpu)
}

fn consume(bootstrap: &str, messages: u64) -> (Duration, Duration) {
    // librdkafka's `assign` needs a group.id (the consumer-group handle), though nothing is
    // committed: offsets come from `assign` and ListOffsets, not from a coordinator.
    let mut cfg = ClientConfig::new();
    if let Ok(d) = std::env::var("BENCH_CONSUMER_DEBUG") {
        cfg.set("debug", d);
    }
    extra_config(&mut cfg, "BENCH_CONSUMER_EXTRA");
    let consumer: BaseConsumer = cfg
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "broker-vs-mock")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "10")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    wait_metadata(consumer.client());

    // The mock cluster silently drops the oldest batches beyond 5 MiB per partition: check
    // that every partition still starts at 0 and holds all its messages (not timed).
    let expected_per_partition: Vec<u64> = (0..PARTITIONS as u64)
        .map(|p| messages / PARTITIONS as u64 + u64::from(p < messages % PARTITIONS as u64))
        .collect();
    for p in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!(
            (low, high as u64),
            (0, expected_per_partition[p as usize]),
            "partition {p}: watermarks"
        );
    }

    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("tpl");
    }
    let mut next = vec![0i64; PARTITIONS as usize];
    let mut received = 0u64;
    marker("consume-start");
    let cpu0 = process_cpu();
    let start = Instant::now();
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(180);
    while received < messages {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => panic!("consume error: {e}"),
            Some(Ok(m)) => {
                if received == 0 {
                    marker("consume-first-message");
                }
                let p = m.partition() as usize;
                let off = m.offset();
                assert_eq!(
                    off, next[p],
                    "partition {p}: offset {off}, expected {} (loss or duplicate)",
                    next[p]
                );
                let v = m.payload().expect("payload");
                assert_eq!(v.len(), VALUE_SIZE, "value size");
                let seq = u64::from_le_bytes(v[..8].try_into().unwrap());
                assert_eq!(
                    seq,
                    p as u64 + PARTITIONS as u64 * off as u64,
                    "partition {p} offset {off}: wrong message"
                );
                next[p] += 1;
                received += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {received} of {messages} messages"
        );
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu() - cpu0;
    marker("consume-end");
    for (p, want) in expected_per_partition.iter().enumerate() {
        assert_eq!(next[p] as u64, *want, "partition {p} count");
    }
    // Nothing beyond what was produced.
    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
        panic!(
            "unexpected extra message: partition {} offset {}",
            m.partition(),
            m.offset()
        );
    }
    (elapsed, cpu)
}
