//! `producer-vs-rdkafka`: our producer (`kafka-client`) vs rust-rdkafka's producer
//! (librdkafka), both producing to the same in-process broker-lite.
//!
//! Workload, per run: a fresh 32-partition topic (created through broker-lite's API);
//! `--messages` (default 1,000,000) keyless 100-byte values, no explicit partition (both
//! clients use their default partitioner: our KIP-794 uniform sticky partitioner, librdkafka's
//! `consistent_random` with `sticky.partitioning.linger.ms` at its default), timed from the
//! first send to the last delivery report. Scenarios: `acks` 1 and all × compression none and
//! lz4. Settings shared by both clients: `linger.ms=5`, `batch.size=16384`, 32 MiB of
//! buffering (`buffer.memory=33554432` / `queue.buffering.max.kbytes=32768`),
//! `max.in.flight.requests.per.connection=5`; `enable.idempotence` is on for `acks=all` when
//! broker-lite serves InitProducerId (`--idempotence auto`, the default) and off for `acks=1`
//! (idempotence requires `acks=all` in both clients). librdkafka additionally gets
//! `batch.num.messages=1000000` and `queue.buffering.max.messages=10000000` so that only the
//! byte limits bind, as in our client.
//!
//! Clients:
//! - ours: `Producer::<Bytes, Bytes>::new`, one task calling `send_with_callback(..).await` for
//!   every record without waiting for deliveries (the await returns once the record is in the
//!   accumulator), on a tokio multi-thread runtime with 2 workers (the sending task is spawned
//!   onto it, so everything runs on the 2 workers). Each value is a fresh
//!   `Bytes::copy_from_slice` of a 100-byte buffer holding the sequence number.
//! - ours-yield (diagnostic, in the default client list): the same loop plus
//!   `tokio::task::yield_now().await` every `BENCH_OURS_YIELD_EVERY` (default 256) sends. It
//!   shows what the producing task starving the producer's `Sender` task costs (see
//!   docs/PERFORMANCE.md).
//! - rdkafka: `ThreadedProducer` (a `BaseProducer` plus a thread that calls `poll`, which runs
//!   the `ProducerContext::delivery` callbacks); the main thread calls `send` for every record
//!   (librdkafka copies the payload) and sleeps 100 µs when the queue is full.
//!
//! Both record every delivery's latency (send call → delivery callback) in an HDR histogram,
//! behind an uncontended mutex in the callback.
//!
//! Isolation: each client runs in a child process (this binary re-invoked with `--child`), so
//! its peak RSS (`VmHWM` from `/proc/self/status`, read at the end) and CPU time are its own;
//! the broker runs in the parent. After every run the parent checks that the topic holds
//! exactly `--messages` records (sum of the partitions' high watermarks) and walks the batch
//! headers of the segment files to report records per batch (and whether the batches carry a
//! producer id, i.e. idempotence was in effect), then deletes the topic.
//!
//! Usage: `producer-vs-rdkafka [--messages N] [--runs N] [--warmup N] [--acks 1,all]
//! [--compression none,lz4] [--clients rdkafka,ours,ours-yield] [--idempotence auto|true|false]`
//!
//! Diagnostics (never used for the reported figures): `BENCH_OURS_EXTRA` /
//! `BENCH_RDKAFKA_EXTRA` = `key=value,...` add client settings; `BENCH_CHILD_WRAPPER` = a
//! command prefix for the child processes (e.g. `perf record -g -o /tmp/p.data --`);
//! `RUST_LOG` filters broker-lite's and our client's logs (default `warn`).

#[path = "../bench_util.rs"]
mod bench_util;
use bench_util::{
    best_median, extra_settings, list, mb, median, proc_status_kib, process_cpu, run_child,
    VALUE_SIZE,
};

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;

const PARTITIONS: i32 = 32;
const BUFFER_BYTES: usize = 32 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

// ---------------------------------------------------------------------------------------------
// Child: one client, one run
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Ours,
    /// Diagnostic variant: ours with `tokio::task::yield_now()` every `BENCH_OURS_YIELD_EVERY`
    /// (default 256) sends.
    OursYield,
    Rdkafka,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Ours => "ours",
            Client::OursYield => "ours-yield",
            Client::Rdkafka => "rdkafka",
        }
    }
    fn parse(s: &str) -> Client {
        match s {
            "ours" | "kafka-client" => Client::Ours,
            "ours-yield" => Client::OursYield,
            "rdkafka" | "librdkafka" => Client::Rdkafka,
            other => panic!("client ours|ours-yield|rdkafka, not {other}"),
        }
    }
}

struct ChildArgs {
    client: Client,
    broker: String,
    topic: String,
    acks: String,
    compression: String,
    idempotence: bool,
    messages: u64,
}

/// Delivery bookkeeping shared by the sending code and the delivery callbacks.
struct Shared {
    base: Instant,
    target: u64,
    completed: AtomicU64,
    failed: AtomicU64,
    hist: Mutex<Histogram<u64>>,
    last: OnceLock<Instant>,
    done: (Mutex<bool>, Condvar),
    notify: tokio::sync::Notify,
}

impl Shared {
    fn new(target: u64) -> Shared {
        Shared {
            base: Instant::now(),
            target,
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            // 1 µs .. 10 min, 3 significant digits.
            hist: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram")),
            last: OnceLock::new(),
            done: (Mutex::new(false), Condvar::new()),
            notify: tokio::sync::Notify::new(),
        }
    }

    /// A delivery report for a record sent at `sent`.
    fn report(&self, sent: Instant, error: Option<&dyn Display>) {
        let now = Instant::now();
        match error {
            None => {
                let us = now.saturating_duration_since(sent).as_micros() as u64;
                self.hist
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .saturating_record(us.max(1));
            }
            Some(e) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("delivery failed: {e}");
                }
            }
        }
        if self.completed.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            let _ = self.last.set(now);
            *self.done.0.lock().unwrap() = true;
            self.done.1.notify_all();
            self.notify.notify_one();
        }
    }

    fn wait_blocking(&self, timeout: Duration) {
        let guard = self.done.0.lock().unwrap();
        let (guard, res) = self
            .done
            .1
            .wait_timeout_while(guard, timeout, |done| !*done)
            .unwrap();
        assert!(
            *guard && !res.timed_out(),
            "timed out: {} of {} delivery reports",
            self.completed.load(Ordering::Relaxed),
            self.target
        );
    }
}

/// The value of record `i`: its sequence number, then letters.
fn value_template() -> [u8; VALUE_SIZE] {
    let mut value = [0u8; VALUE_SIZE];
    for (j, b) in value.iter_mut().enumerate().skip(8) {
        *b = b'a' + (j % 26) as u8;
    }
    value
}

struct ChildOutcome {
    elapsed: Duration,
    cpu: Duration,
    rss_before_kib: u64,
}

fn child_main(a: ChildArgs) {
    init_tracing();
    let shared: &'static Shared = Box::leak(Box::new(Shared::new(a.messages)));
    let outcome = match a.client {
        Client::Ours | Client::OursYield => run_ours(&a, shared),
        Client::Rdkafka => run_rdkafka(&a, shared),
    };
    let hwm = proc_status_kib("VmHWM:");
    let failed = shared.failed.load(Ordering::Relaxed);
    let h = shared.hist.lock().unwrap();
    println!(
        "RESULT client={} elapsed_s={:.6} cpu_s={:.4} p50_us={} p99_us={} p999_us={} max_us={} \
         rss_before_kib={} hwm_kib={} delivered={} failed={}",
        a.client.name(),
        outcome.elapsed.as_secs_f64(),
        outcome.cpu.as_secs_f64(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        outcome.rss_before_kib,
        hwm,
        h.len(),
        failed,
    );
}

fn run_ours(a: &ChildArgs, shared: &'static Shared) -> ChildOutcome {
    use kafka_client::config::ProducerConfig;
    use kafka_client::producer::Producer;
    use kafka_client::ProducerRecord;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut builder = ProducerConfig::builder()
        .bootstrap_servers(a.broker.clone())
        .set("acks", a.acks.clone())
        .set("linger.ms", "5")
        .set("batch.size", "16384")
        .set("buffer.memory", BUFFER_BYTES.to_string())
        .set("compression.type", a.compression.clone())
        .set("enable.idempotence", a.idempotence.to_string())
        .set("max.in.flight.requests.per.connection", "5");
    for (k, v) in extra_settings("BENCH_OURS_EXTRA") {
        builder = builder.set(k, v);
    }
    let config = builder.build().expect("producer config");
    let topic = a.topic.clone();
    let messages = a.messages;
    let idempotence = a.idempotence;
    // The diagnostic variant yields to the scheduler every N sends.
    let yield_every: u64 = match a.client {
        Client::OursYield => std::env::var("BENCH_OURS_YIELD_EVERY")
            .ok()
            .map(|v| v.parse().expect("BENCH_OURS_YIELD_EVERY=N"))
            .unwrap_or(256),
        _ => 0,
    };
    let task = rt.spawn(async move {
        let producer = Producer::new(config).expect("producer");
        // Metadata (and connection) before the timer starts.
        let parts = producer.partitions_for(&topic).await.expect("metadata");
        assert_eq!(parts.len(), PARTITIONS as usize, "partitions");
        if idempotence {
            let deadline = Instant::now() + Duration::from_secs(10);
            while producer.producer_id_and_epoch().is_none() {
                assert!(Instant::now() < deadline, "no producer id");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let rss_before_kib = proc_status_kib("VmRSS:");
        let mut value = value_template();
        let cpu0 = process_cpu();
        let start = Instant::now();
        for i in 0..messages {
            if yield_every > 0 && i % yield_every == 0 {
                tokio::task::yield_now().await;
            }
            value[..8].copy_from_slice(&i.to_le_bytes());
            let record =
                ProducerRecord::<Bytes, Bytes>::new(topic.clone(), Bytes::copy_from_slice(&value));
            let sent = Instant::now();
            producer
                .send_with_callback(record, move |r| match r {
                    Ok(_) => shared.report(sent, None),
                    Err(e) => shared.report(sent, Some(&e)),
                })
                .await
                .expect("send");
        }
        tokio::time::timeout(Duration::from_secs(300), async {
            while shared.completed.load(Ordering::Acquire) < messages {
                shared.notify.notified().await;
            }
        })
        .await
        .expect("timed out waiting for delivery reports");
        let elapsed = *shared.last.get().expect("last delivery") - start;
        let cpu = process_cpu() - cpu0;
        producer
            .close(Duration::from_secs(30))
            .await
            .expect("close");
        ChildOutcome {
            elapsed,
            cpu,
            rss_before_kib,
        }
    });
    let outcome = rt.block_on(task).expect("producer task");
    rt.shutdown_timeout(Duration::from_secs(5));
    outcome
}

mod rd {
    use super::*;
    use rdkafka::client::ClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{
        BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
    };

    pub struct Ctx(pub &'static Shared);

    impl ClientContext for Ctx {}

    impl ProducerContext for Ctx {
        /// Nanoseconds since `Shared::base` at the send call.
        type DeliveryOpaque = usize;
        fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
            let sent = self.0.base + Duration::from_nanos(sent_ns as u64);
            match result {
                Ok(_) => self.0.report(sent, None),
                Err((e, _)) => self.0.report(sent, Some(e)),
            }
        }
    }

    pub fn run(a: &ChildArgs, shared: &'static Shared) -> ChildOutcome {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &a.broker)
            .set("acks", &a.acks)
            .set("linger.ms", "5")
            .set("batch.size", "16384")
            .set("batch.num.messages", "1000000")
            .set(
                "queue.buffering.max.kbytes",
                (BUFFER_BYTES / 1024).to_string(),
            )
            .set("queue.buffering.max.messages", "10000000")
            .set("compression.codec", &a.compression)
            .set("enable.idempotence", a.idempotence.to_string())
            .set("max.in.flight.requests.per.connection", "5");
        for (k, v) in extra_settings("BENCH_RDKAFKA_EXTRA") {
            cfg.set(k, v);
        }
        let producer: ThreadedProducer<Ctx> =
            cfg.create_with_context(Ctx(shared)).expect("producer");
        // Metadata (and connection) before the timer starts.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(md) = producer
                .client()
                .fetch_metadata(Some(&a.topic), Duration::from_secs(5))
            {
                if md.topics().iter().any(|t| {
                    t.name() == a.topic
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
        let mut value = value_template();
        let cpu0 = process_cpu();
        let start = Instant::now();
        for i in 0..a.messages {
            value[..8].copy_from_slice(&i.to_le_bytes());
            let sent_ns = shared.base.elapsed().as_nanos() as usize;
            let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(&a.topic, sent_ns)
                .payload(&value[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    Err((e, _)) => panic!("send: {e}"),
                }
            }
        }
        shared.wait_blocking(Duration::from_secs(300));
        let elapsed = *shared.last.get().expect("last delivery") - start;
        let cpu = process_cpu() - cpu0;
        producer.flush(Duration::from_secs(30)).expect("flush");
        drop(producer);
        ChildOutcome {
            elapsed,
            cpu,
            rss_before_kib,
        }
    }
}

fn run_rdkafka(a: &ChildArgs, shared: &'static Shared) -> ChildOutcome {
    rd::run(a, shared)
}

// ---------------------------------------------------------------------------------------------
// Parent: broker, runs, checks, table
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct RunResult {
    elapsed: f64,
    client_cpu: f64,
    broker_cpu: f64,
    p50_us: u64,
    p99_us: u64,
    hwm_kib: u64,
    rss_before_kib: u64,
    records_per_batch: f64,
    pid_batches: bool,
}

struct ParentArgs {
    messages: u64,
    runs: usize,
    warmup: usize,
    acks: Vec<String>,
    compression: Vec<String>,
    clients: Vec<Client>,
    idempotence: Option<bool>,
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("--child") {
        child_main(parse_child(&raw[1..]));
        return;
    }
    let mut args = ParentArgs {
        messages: 1_000_000,
        runs: 3,
        warmup: 1,
        acks: vec!["1".into(), "all".into()],
        compression: vec!["none".into(), "lz4".into()],
        clients: vec![Client::Rdkafka, Client::Ours, Client::OursYield],
        idempotence: None,
    };
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--messages" => args.messages = val().parse().expect("--messages N"),
            "--runs" => args.runs = val().parse().expect("--runs N"),
            "--warmup" => args.warmup = val().parse().expect("--warmup N"),
            "--acks" => args.acks = list(val()),
            "--compression" => args.compression = list(val()),
            "--clients" => args.clients = list(val()).iter().map(|c| Client::parse(c)).collect(),
            "--idempotence" => {
                args.idempotence = match val().as_str() {
                    "auto" => None,
                    "true" => Some(true),
                    "false" => Some(false),
                    other => panic!("--idempotence auto|true|false, not {other}"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "producer-vs-rdkafka [--messages N] [--runs N] [--warmup N] [--acks 1,all] \
                     [--compression none,lz4] [--clients rdkafka,ours,ours-yield] [--idempotence auto|true|false]"
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
        broker: String::new(),
        topic: String::new(),
        acks: "1".into(),
        compression: "none".into(),
        idempotence: false,
        messages: 1_000_000,
    };
    let mut it = raw[1..].iter();
    while let Some(k) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| panic!("{k} needs a value"))
            .clone();
        match k.as_str() {
            "--broker" => a.broker = v,
            "--topic" => a.topic = v,
            "--acks" => a.acks = v,
            "--compression" => a.compression = v,
            "--idempotence" => a.idempotence = v.parse().expect("--idempotence true|false"),
            "--messages" => a.messages = v.parse().expect("--messages N"),
            other => panic!("unknown child argument {other}"),
        }
    }
    a
}

/// Whether broker-lite serves InitProducerId (needed for idempotence).
fn broker_supports_idempotence() -> bool {
    broker_lite::supported_versions(kafka_wire::ApiKey::InitProducerId).is_some()
}

fn parent_main(args: ParentArgs) {
    init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::Builder::new()
        .prefix("producer-vs-rdkafka-")
        .tempdir()
        .expect("temp dir");
    let broker = rt
        .block_on(broker_lite::Broker::builder().data_dir(dir.path()).start())
        .expect("start broker-lite");
    let bootstrap = broker.bootstrap_servers();
    let idem_supported = broker_supports_idempotence();
    let idem_all = args.idempotence.unwrap_or(idem_supported);
    println!(
        "broker-lite at {bootstrap} (data dir {}); InitProducerId served: {idem_supported}",
        dir.path().display()
    );
    println!(
        "workload: {} x {} B keyless values, {} partitions (default partitioners), linger.ms=5, \
         batch.size=16384, 32 MiB buffer, max.in.flight=5; idempotence: acks=1 off, acks=all {}; \
         {} warm-up run(s) per client, then {} run(s) per client and scenario",
        args.messages,
        VALUE_SIZE,
        PARTITIONS,
        if idem_all { "on" } else { "off" },
        args.warmup,
        args.runs
    );

    let mut seq = 0u32;
    let mut run = |client: Client, acks: &str, compression: &str| -> RunResult {
        seq += 1;
        let topic = format!("bench-{seq}");
        let idem = acks == "all" && idem_all;
        one_run(
            &broker,
            dir.path(),
            &bootstrap,
            client,
            &topic,
            acks,
            compression,
            idem,
            args.messages,
        )
    };

    for w in 1..=args.warmup {
        for &c in &args.clients {
            let r = run(c, &args.acks[0], &args.compression[0]);
            println!(
                "warm-up {w} {:<8} {:>9.0} msg/s (not recorded)",
                c.name(),
                args.messages as f64 / r.elapsed
            );
        }
    }

    let mut results: BTreeMap<(String, String, &'static str), Vec<RunResult>> = BTreeMap::new();
    for acks in &args.acks {
        for compression in &args.compression {
            for rep in 0..args.runs {
                // Alternate which client goes first.
                let mut order = args.clients.clone();
                if rep % 2 == 1 {
                    order.reverse();
                }
                for c in order {
                    let r = run(c, acks, compression);
                    println!(
                        "acks={acks:<3} {compression:<4} run {} {:<8} {:>6.3} s {:>9.0} msg/s {:>6.1} MB/s \
                         p50 {:>7.1} ms p99 {:>7.1} ms rss {:>6.1} MiB (before send {:>5.1}) \
                         cpu {:>5.2} s broker cpu {:>5.2} s {:>6.1} rec/batch{}",
                        rep + 1,
                        c.name(),
                        r.elapsed,
                        args.messages as f64 / r.elapsed,
                        mb(args.messages, r.elapsed),
                        r.p50_us as f64 / 1e3,
                        r.p99_us as f64 / 1e3,
                        r.hwm_kib as f64 / 1024.0,
                        r.rss_before_kib as f64 / 1024.0,
                        r.client_cpu,
                        r.broker_cpu,
                        r.records_per_batch,
                        if r.pid_batches { " (idempotent batches)" } else { "" },
                    );
                    results
                        .entry((acks.clone(), compression.clone(), c.name()))
                        .or_default()
                        .push(r);
                }
            }
        }
    }
    rt.block_on(broker.shutdown());

    let n = args.messages;
    println!();
    println!(
        "best of {} run(s) (median in parentheses); MB = 10^6 bytes of values; latency = send \
         call to delivery callback, median over runs of each run's percentile; RSS = child's \
         VmHWM, median; CPU = median user+sys seconds during the timed window",
        args.runs
    );
    println!(
        "| acks | compression | client | msgs/s | MB/s | p50 ms | p99 ms | peak RSS MiB | client CPU s | broker CPU s | records/batch |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for acks in &args.acks {
        for compression in &args.compression {
            for &c in &args.clients {
                let rs = &results[&(acks.clone(), compression.clone(), c.name())];
                let (best, med) = best_median(rs.iter().map(|r| r.elapsed).collect());
                let med_of = |f: &dyn Fn(&RunResult) -> f64| median(rs.iter().map(f).collect());
                println!(
                    "| {acks} | {compression} | {} | {:.0} ({:.0}) | {:.1} ({:.1}) | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} |",
                    c.name(),
                    n as f64 / best,
                    n as f64 / med,
                    mb(n, best),
                    mb(n, med),
                    med_of(&|r| r.p50_us as f64) / 1e3,
                    med_of(&|r| r.p99_us as f64) / 1e3,
                    med_of(&|r| r.hwm_kib as f64) / 1024.0,
                    med_of(&|r| r.client_cpu),
                    med_of(&|r| r.broker_cpu),
                    med_of(&|r| r.records_per_batch),
                );
            }
        }
    }
    let ours_like: Vec<Client> = args
        .clients
        .iter()
        .copied()
        .filter(|c| *c != Client::Rdkafka)
        .collect();
    if args.clients.contains(&Client::Rdkafka) && !ours_like.is_empty() {
        println!();
        println!("ratio client / rdkafka (msgs/s: higher is better; RSS and CPU: lower is better)");
        println!("| acks | compression | client | msgs/s best | msgs/s median | peak RSS (median) | client CPU (median) |");
        println!("|---|---|---|---:|---:|---:|---:|");
        for acks in &args.acks {
            for compression in &args.compression {
                let get = |c: Client| &results[&(acks.clone(), compression.clone(), c.name())];
                let r = get(Client::Rdkafka);
                let (rb, rm) = best_median(r.iter().map(|x| x.elapsed).collect());
                let rrss = median(r.iter().map(|x| x.hwm_kib as f64).collect());
                let rcpu = median(r.iter().map(|x| x.client_cpu).collect());
                for &c in &ours_like {
                    let o = get(c);
                    let (ob, om) = best_median(o.iter().map(|x| x.elapsed).collect());
                    let orss = median(o.iter().map(|x| x.hwm_kib as f64).collect());
                    let ocpu = median(o.iter().map(|x| x.client_cpu).collect());
                    println!(
                        "| {acks} | {compression} | {} | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
                        c.name(),
                        rb / ob,
                        rm / om,
                        orss / rrss,
                        ocpu / rcpu
                    );
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn one_run(
    broker: &broker_lite::Broker,
    data_dir: &Path,
    bootstrap: &str,
    client: Client,
    topic: &str,
    acks: &str,
    compression: &str,
    idempotence: bool,
    messages: u64,
) -> RunResult {
    let state = broker.state();
    state
        .create_topic(topic, PARTITIONS, 1, BTreeMap::new())
        .expect("create topic");

    let child_args: Vec<String> = vec![
        "--child".into(),
        client.name().into(),
        "--broker".into(),
        bootstrap.into(),
        "--topic".into(),
        topic.into(),
        "--acks".into(),
        acks.into(),
        "--compression".into(),
        compression.into(),
        "--idempotence".into(),
        idempotence.to_string(),
        "--messages".into(),
        messages.to_string(),
    ];
    let run = run_child(client.name(), &child_args);
    let f = |k: &str| run.f(k);
    assert_eq!(f("failed"), 0.0, "{} delivery failures", run.get("failed"));
    assert_eq!(f("delivered") as u64, messages, "delivery reports");

    // Nobody cheats: the broker holds exactly `messages` records.
    let t = state.topic(topic).expect("topic");
    let total: i64 = t
        .all_partitions()
        .iter()
        .map(|p| {
            let log = p.log();
            assert_eq!(log.log_start_offset(), 0);
            log.high_watermark()
        })
        .sum();
    assert_eq!(
        total as u64, messages,
        "records in the topic (sum of high watermarks)"
    );
    let (batches, records, pid_batches) = walk_batches(data_dir, topic);
    assert_eq!(records, messages, "records in the segment files");
    state.delete_topic(topic).expect("delete topic");

    RunResult {
        elapsed: f("elapsed_s"),
        client_cpu: f("cpu_s"),
        broker_cpu: run.broker_cpu.as_secs_f64(),
        p50_us: f("p50_us") as u64,
        p99_us: f("p99_us") as u64,
        hwm_kib: f("hwm_kib") as u64,
        rss_before_kib: f("rss_before_kib") as u64,
        records_per_batch: records as f64 / batches as f64,
        pid_batches: pid_batches == batches,
    }
}

/// Walks the record-batch headers of every segment of `topic`: (batches, records, batches
/// with a producer id).
fn walk_batches(data_dir: &Path, topic: &str) -> (u64, u64, u64) {
    let (mut batches, mut records, mut with_pid) = (0u64, 0u64, 0u64);
    for p in 0..PARTITIONS {
        let pdir = data_dir.join(format!("{topic}-{p}"));
        let mut logs: Vec<_> = std::fs::read_dir(&pdir)
            .unwrap_or_else(|e| panic!("{}: {e}", pdir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        for log in logs {
            let data = std::fs::read(&log).expect("read segment");
            let mut pos = 0usize;
            while pos + 61 <= data.len() {
                let len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
                if len <= 0 {
                    break; // preallocated tail
                }
                let producer_id = i64::from_be_bytes(data[pos + 43..pos + 51].try_into().unwrap());
                let count = i32::from_be_bytes(data[pos + 57..pos + 61].try_into().unwrap());
                batches += 1;
                records += count as u64;
                with_pid += u64::from(producer_id >= 0);
                pos += 12 + len as usize;
            }
        }
    }
    (batches, records, with_pid)
}
