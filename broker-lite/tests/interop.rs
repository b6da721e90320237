//! Interop tests: the real `broker-lite` binary against real third-party clients.
//!
//! Each test starts the binary (temporary data directory, `--listen 127.0.0.1:0`, address
//! parsed from its "broker-lite started" log line; killed on drop, also when the test panics)
//! and runs a Python script from `tests/interop/` with the interpreter named by
//! `KAFKA_INTEROP_PYTHON` (default `<workspace>/.venv/bin/python`): confluent-kafka
//! (librdkafka), kafka-python and kcat. Scripts print one JSON summary line and exit non-zero
//! with a message on failure; the tests assert on the summary, on the record batches the broker
//! stored (compression codec) and on the broker log (no warnings, i.e. no connection was closed
//! for a malformed or unsupported request).
//!
//! The Python environment and kcat come from `scripts/setup-interop.sh` (run by
//! `scripts/test.sh`). A missing interpreter, module or kcat fails the tests: they never pass
//! silently. `BROKER_LITE_INTEROP_LOG=debug` passes `--log-level debug` to the broker and
//! prints its log when a test fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Messages in the main produce/consume runs (required: 100,000).
const MAIN_COUNT: u64 = 100_000;
/// Messages per compression codec run.
const CODEC_COUNT: u64 = 5_000;
/// Partitions of every topic created by these tests.
const PARTITIONS: u64 = 6;
/// Upper bound for one script run (it has its own, shorter, internal timeouts).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("broker-lite lives in the workspace")
        .to_path_buf()
}

fn scripts_dir() -> PathBuf {
    workspace_root().join("tests").join("interop")
}

const SETUP_HINT: &str =
    "run scripts/setup-interop.sh (or scripts/test.sh, the README's test command)";

/// The interop interpreter, checked once: it must exist and import every module the scripts
/// use. Panics (fails the test) otherwise.
fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let checked = PYTHON.get_or_init(|| {
        let python = match std::env::var_os("KAFKA_INTEROP_PYTHON") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => workspace_root().join(".venv").join("bin").join("python"),
        };
        if !python.exists() {
            return Err(format!(
                "interop Python interpreter {} does not exist (KAFKA_INTEROP_PYTHON unset or wrong); {SETUP_HINT}",
                python.display()
            ));
        }
        let probe = Command::new(&python)
            .args([
                "-c",
                "import confluent_kafka, kafka, lz4, zstandard, snappy; \
                 print(confluent_kafka.version()[0], confluent_kafka.libversion()[0], kafka.__version__)",
            ])
            .output();
        match probe {
            Ok(out) if out.status.success() => Ok(python),
            Ok(out) => Err(format!(
                "{} cannot import the interop modules (confluent_kafka, kafka, lz4, zstandard, snappy): {}; {SETUP_HINT}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run {}: {e}; {SETUP_HINT}", python.display())),
        }
    });
    match checked {
        Ok(p) => p,
        Err(msg) => panic!("{msg}"),
    }
}

fn require_kcat() {
    match Command::new("kcat").arg("-V").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "kcat -V failed: {}; {SETUP_HINT}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("kcat is not installed ({e}); {SETUP_HINT}"),
    }
}

/// A child process killed (and reaped) when dropped, so nothing outlives a panicking test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `broker-lite` binary, running. Killed on drop; its data directory is removed after.
struct BrokerProcess {
    // Field order matters: the process is killed before the directory is removed.
    child: KillOnDrop,
    addr: String,
    data_dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
}

/// Removes ANSI colour sequences (`ESC [ ... m`) from a log line.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl BrokerProcess {
    fn start() -> BrokerProcess {
        let data_dir = tempfile::Builder::new()
            .prefix("broker-lite-interop-")
            .tempdir()
            .expect("temporary data directory");
        let level = std::env::var("BROKER_LITE_INTEROP_LOG").unwrap_or_else(|_| "info".into());
        let child = Command::new(env!("CARGO_BIN_EXE_broker-lite"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(["--log-level", &level])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn broker-lite");
        let mut child = KillOnDrop(child);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        // Drain stdout for the broker's whole life (a full pipe would block it), keeping the
        // lines and reporting the bound address from the startup line.
        let stdout = child.0.stdout.take().expect("piped stdout");
        let lines = log.clone();
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                if line.contains("broker-lite started") {
                    let addr = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("address="))
                        .map(str::to_string);
                    if let (Some(tx), Some(addr)) = (tx.take(), addr) {
                        let _ = tx.send(addr);
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = child.0.stderr.take().expect("piped stderr");
        let lines = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines
                    .lock()
                    .unwrap()
                    .push(format!("stderr: {}", strip_ansi(&line)));
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let status = child.0.try_wait().ok().flatten();
                panic!(
                    "broker-lite did not log its address within 60s (exit status {status:?}); log:\n{}",
                    log.lock().unwrap().join("\n")
                )
            }
        };
        BrokerProcess {
            child,
            addr,
            data_dir,
            log,
        }
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Panics when the broker logged a warning or an error (a closed connection, a response
    /// that could not be encoded, ...) or exited.
    fn assert_clean(&mut self) {
        if let Ok(Some(status)) = self.child.0.try_wait() {
            panic!(
                "broker-lite exited ({status}) during the test; log:\n{}",
                self.log_text()
            );
        }
        let log = self.log.lock().unwrap();
        let bad: Vec<&String> = log
            .iter()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.starts_with("stderr:"))
            .collect();
        assert!(
            bad.is_empty(),
            "broker-lite logged problems:\n{}",
            bad.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Runs `tests/interop/<script>` with `args` (plus `--bootstrap`), returns its JSON
    /// summary; panics with the script's stderr and the broker log when it fails.
    fn run_script(&self, script: &str, args: &[&str]) -> Value {
        let started = Instant::now();
        let child = Command::new(python())
            .arg(scripts_dir().join(script))
            .args(["--bootstrap", &self.addr])
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", python().display()));
        let mut child = KillOnDrop(child);
        let out = drain(child.0.stdout.take().expect("piped stdout"));
        let err = drain(child.0.stderr.take().expect("piped stderr"));
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait for script") {
                break status;
            }
            if started.elapsed() > SCRIPT_TIMEOUT {
                let _ = child.0.kill();
                let _ = child.0.wait();
                panic!(
                    "{script} {args:?} timed out after {SCRIPT_TIMEOUT:?}; stderr:\n{}\nbroker log:\n{}",
                    tail(&err.join().unwrap_or_default(), 4000),
                    tail(&self.log_text(), 4000)
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if !status.success() {
            panic!(
                "{script} {args:?} failed ({status}):\n{}\nbroker log:\n{}",
                tail(&stderr, 6000),
                tail(&self.log_text(), 4000)
            );
        }
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or_else(|| {
                panic!("{script} {args:?} printed no JSON summary; stdout:\n{stdout}\nstderr:\n{stderr}")
            });
        let summary: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{script}: bad JSON summary ({e}): {line}"));
        println!(
            "[interop] {script} {} ({:.1}s): {}",
            args.join(" "),
            started.elapsed().as_secs_f64(),
            brief(&summary)
        );
        match script {
            "confluent_client.py" => assert_librdkafka_clean(&summary),
            "kafka_python_client.py" => assert_kafka_python_clean(&summary),
            _ => {}
        }
        summary
    }

    /// Counts the record batches stored for `topic` by compression codec (attributes & 7),
    /// reading the partitions' segment files (Kafka's on-disk layout).
    fn stored_codecs(&self, topic: &str) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for p in 0..PARTITIONS {
            let dir = self.data_dir.path().join(format!("{topic}-{p}"));
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("partition directory {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.expect("dir entry").path();
                if path.extension().and_then(|e| e.to_str()) != Some("log") {
                    continue;
                }
                let data = std::fs::read(&path).expect("read segment");
                let mut pos = 0usize;
                while pos + 23 <= data.len() {
                    let len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
                    if len <= 0 {
                        break;
                    }
                    let attributes = i16::from_be_bytes([data[pos + 21], data[pos + 22]]);
                    let codec = match attributes & 7 {
                        0 => "none",
                        1 => "gzip",
                        2 => "snappy",
                        3 => "lz4",
                        4 => "zstd",
                        _ => "invalid",
                    };
                    *counts.entry(codec).or_insert(0) += 1;
                    pos += 12 + len as usize;
                }
            }
        }
        counts
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The interesting part of a summary, for the test output.
fn brief(summary: &Value) -> String {
    let mut parts = Vec::new();
    for step in ["produce", "consume"] {
        if let Some(s) = summary.get(step) {
            parts.push(format!(
                "{step}: {} msgs in {}s",
                s.get("count").or(s.get("consumed")).unwrap_or(&Value::Null),
                s["seconds"]
            ));
        }
    }
    if let Some(v) = summary.get("request_versions") {
        parts.push(format!("request versions {v}"));
    }
    if let Some(v) = summary.get("inferred_broker_version") {
        parts.push(format!("inferred broker version {v}"));
    }
    parts.join("; ")
}

fn assert_created(summary: &Value) {
    let c = &summary["create"];
    assert_eq!(c["partitions"], PARTITIONS, "partitions: {c}");
    assert_eq!(c["leaders"], serde_json::json!([1]), "leaders: {c}");
    assert_eq!(c["brokers"].as_object().map(|b| b.len()), Some(1), "{c}");
}

fn assert_produced(summary: &Value, count: u64) {
    let p = &summary["produce"];
    assert_eq!(p["count"], count, "{p}");
    assert_eq!(p["errors"], 0, "{p}");
}

fn assert_consumed(summary: &Value, count: u64) {
    let c = &summary["consume"];
    assert_eq!(c["consumed"], count, "{c}");
    assert_eq!(c["distinct_keys"], 1000.min(count), "{c}");
    let per_partition: u64 = c["per_partition"]
        .as_object()
        .expect("per_partition")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(per_partition, count, "{c}");
    let high: u64 = c["high_watermarks"]
        .as_object()
        .expect("high_watermarks")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(high, count, "{c}");
}

/// kafka-python logged no warning or error of its own.
fn assert_kafka_python_clean(summary: &Value) {
    assert_eq!(
        summary["client_warnings"],
        serde_json::json!([]),
        "{summary}"
    );
}

/// librdkafka: no connection was dropped, no error callback fired, nothing logged at warning
/// level or worse, and every request it sent is within the range the broker advertised.
fn assert_librdkafka_clean(summary: &Value) {
    assert_eq!(summary["disconnects"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["client_errors"], serde_json::json!([]), "{summary}");
    assert_eq!(
        summary["client_warnings"],
        serde_json::json!([]),
        "{summary}"
    );
    let advertised = summary["broker_advertised"]
        .as_object()
        .expect("advertised");
    for (api, versions) in summary["request_versions"].as_object().expect("versions") {
        let range = advertised
            .get(api)
            .and_then(Value::as_str)
            .unwrap_or_else(|| {
                panic!("librdkafka sent {api}, which broker-lite does not advertise")
            });
        let (lo, hi) = range.split_once("..").expect("a..b");
        let (lo, hi): (i64, i64) = (lo.parse().unwrap(), hi.parse().unwrap());
        for v in versions.as_array().unwrap() {
            let v = v.as_i64().unwrap();
            assert!(
                (lo..=hi).contains(&v),
                "{api} v{v} outside advertised {range}"
            );
        }
    }
}

/// Every stored batch of `topic` uses `codec` or none (clients send a batch uncompressed when
/// compression does not make it smaller), and at least one uses `codec`.
fn assert_stored_codec(broker: &BrokerProcess, topic: &str, codec: &str) {
    let stored = broker.stored_codecs(topic);
    println!("[interop] {topic}: stored batches by codec {stored:?}");
    assert!(
        stored.keys().all(|c| *c == codec || *c == "none"),
        "{topic}: batches stored with unexpected codecs {stored:?} (expected {codec})"
    );
    assert!(
        stored.get(codec).copied().unwrap_or(0) > 0,
        "{topic}: no batch stored with {codec}: {stored:?}"
    );
}

fn count_arg(n: u64) -> String {
    n.to_string()
}

#[test]
fn confluent_kafka_create_produce_consume_100k() {
    let mut broker = BrokerProcess::start();
    let n = count_arg(MAIN_COUNT);
    let s = broker.run_script(
        "confluent_client.py",
        &["--topic", "ck-main", "--count", &n],
    );
    assert_created(&s);
    assert_produced(&s, MAIN_COUNT);
    assert_consumed(&s, MAIN_COUNT);
    // Explicit linger.ms=5 (librdkafka's default linger is already 5 ms).
    let s = broker.run_script(
        "confluent_client.py",
        &["--topic", "ck-linger", "--count", &n, "--linger-ms", "5"],
    );
    assert_created(&s);
    assert_produced(&s, MAIN_COUNT);
    assert_eq!(s["produce"]["linger_ms"], 5);
    assert_consumed(&s, MAIN_COUNT);
    assert_eq!(
        broker
            .stored_codecs("ck-main")
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        ["none"]
    );
    broker.assert_clean();
}

#[test]
fn confluent_kafka_compression_codecs() {
    let mut broker = BrokerProcess::start();
    let n = count_arg(CODEC_COUNT);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("ck-{codec}");
        let s = broker.run_script(
            "confluent_client.py",
            &["--topic", &topic, "--count", &n, "--compression", codec],
        );
        assert_created(&s);
        assert_produced(&s, CODEC_COUNT);
        assert_consumed(&s, CODEC_COUNT);
        // librdkafka compresses with LZ4 only when it sees FindCoordinator advertised (its
        // "LZ4" feature, rdkafka_feature.c); broker-lite advertises it, so every codec must
        // be stored as sent.
        assert!(s["broker_advertised"].get("FindCoordinator").is_some());
        assert_stored_codec(&broker, &topic, codec);
    }
    broker.assert_clean();
}

#[test]
fn kafka_python_create_produce_consume_100k() {
    let mut broker = BrokerProcess::start();
    let n = count_arg(MAIN_COUNT);
    let s = broker.run_script(
        "kafka_python_client.py",
        &["--topic", "kp-main", "--count", &n],
    );
    assert_created(&s);
    assert_produced(&s, MAIN_COUNT);
    assert_consumed(&s, MAIN_COUNT);
    assert_eq!(
        broker
            .stored_codecs("kp-main")
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        ["none"]
    );
    broker.assert_clean();
}

#[test]
fn kafka_python_compression_codecs() {
    let mut broker = BrokerProcess::start();
    let n = count_arg(CODEC_COUNT);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kp-{codec}");
        let s = broker.run_script(
            "kafka_python_client.py",
            &["--topic", &topic, "--count", &n, "--compression", codec],
        );
        assert_created(&s);
        assert_produced(&s, CODEC_COUNT);
        assert_consumed(&s, CODEC_COUNT);
        assert_stored_codec(&broker, &topic, codec);
    }
    broker.assert_clean();
}

#[test]
fn cross_client_confluent_kafka_to_kafka_python_and_back() {
    let mut broker = BrokerProcess::start();
    let n = count_arg(MAIN_COUNT);
    // librdkafka produces, kafka-python consumes.
    let s = broker.run_script(
        "confluent_client.py",
        &[
            "--topic",
            "x-ck-to-kp",
            "--count",
            &n,
            "--steps",
            "create,produce",
        ],
    );
    assert_created(&s);
    assert_produced(&s, MAIN_COUNT);
    let s = broker.run_script(
        "kafka_python_client.py",
        &["--topic", "x-ck-to-kp", "--count", &n, "--steps", "consume"],
    );
    assert_consumed(&s, MAIN_COUNT);
    // kafka-python produces, librdkafka consumes.
    let s = broker.run_script(
        "kafka_python_client.py",
        &[
            "--topic",
            "x-kp-to-ck",
            "--count",
            &n,
            "--steps",
            "create,produce",
        ],
    );
    assert_created(&s);
    assert_produced(&s, MAIN_COUNT);
    let s = broker.run_script(
        "confluent_client.py",
        &["--topic", "x-kp-to-ck", "--count", &n, "--steps", "consume"],
    );
    assert_consumed(&s, MAIN_COUNT);
    // A compressed topic across clients too (zstd: both clients compress with it).
    let m = count_arg(CODEC_COUNT);
    let s = broker.run_script(
        "kafka_python_client.py",
        &[
            "--topic",
            "x-zstd",
            "--count",
            &m,
            "--compression",
            "zstd",
            "--steps",
            "create,produce",
        ],
    );
    assert_produced(&s, CODEC_COUNT);
    let s = broker.run_script(
        "confluent_client.py",
        &["--topic", "x-zstd", "--count", &m, "--steps", "consume"],
    );
    assert_consumed(&s, CODEC_COUNT);
    assert_stored_codec(&broker, "x-zstd", "zstd");
    broker.assert_clean();
}

#[test]
fn kcat_metadata_produce_consume() {
    require_kcat();
    let mut broker = BrokerProcess::start();
    let s = broker.run_script(
        "kcat_client.py",
        &[
            "--topic",
            "kcat-lines",
            "--partitions",
            "6",
            "--count",
            "200",
        ],
    );
    assert_eq!(s["metadata"]["topics"]["kcat-lines"], PARTITIONS, "{s}");
    assert_eq!(
        s["metadata"]["brokers"]["1"].as_str(),
        Some(broker.addr.as_str()),
        "{s}"
    );
    assert_eq!(s["produced"], 200);
    assert_eq!(s["consumed"], 200);
    broker.assert_clean();
}

#[test]
fn confluent_kafka_consumer_group_splits_a_topic_and_commits() {
    let mut broker = BrokerProcess::start();
    let s = broker.run_script(
        "group_consume_confluent.py",
        &[
            "--topic",
            "ck-group",
            "--group",
            "ck-group-1",
            "--partitions",
            "4",
            "--count",
            "2000",
        ],
    );
    assert_eq!(s["errors"], serde_json::json!([]), "{s}");
    assert_eq!(s["distinct"], 2000, "{s}");
    let counts: Vec<u64> = s["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(
        counts.iter().sum::<u64>(),
        2000,
        "each record read once: {s}"
    );
    assert!(counts.iter().all(|c| *c > 0), "both members consumed: {s}");
    // The final assignment splits the partitions between the two members.
    let mut partitions: Vec<u64> = s["assigned"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a.as_array().unwrap().iter().map(|p| p.as_u64().unwrap()))
        .collect();
    partitions.sort();
    assert_eq!(partitions, [0, 1, 2, 3], "{s}");
    let committed: i64 = s["committed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_i64().unwrap())
        .sum();
    assert_eq!(committed, 2000, "committed offsets cover every record: {s}");
    broker.assert_clean();
}
