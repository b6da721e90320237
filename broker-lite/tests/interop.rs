//! Interop tests: the real `broker-lite` binary against real third-party clients.
//!
//! Each test starts the binary (temporary data directory, `--listen 127.0.0.1:0`, address
//! parsed from its "broker-lite started" log line; killed on drop, also when the test panics)
//! and runs a Python script from `tests/interop/` with the interpreter named by
//! `KAFKA_INTEROP_PYTHON` (default `<workspace>/.venv/bin/python`): confluent-kafka
//! (librdkafka), kafka-python and kcat; or a Node.js script (`kafkajs_client.js`) with the
//! interpreter named by `KAFKA_INTEROP_NODE` (default `node` on PATH) and kafkajs from
//! `tests/interop/kafkajs/node_modules`. Scripts print one JSON summary line and exit non-zero
//! with a message on failure; the tests assert on the summary, on the record batches the broker
//! stored (compression codec) and on the broker log (no warnings, i.e. no connection was closed
//! for a malformed or unsupported request).
//!
//! The Python environment, kcat, Node.js and kafkajs come from `scripts/setup-interop.sh` (run
//! by `scripts/test.sh`). A missing interpreter, module, package or kcat fails the tests: they
//! never pass silently. `BROKER_LITE_INTEROP_LOG=debug` passes `--log-level debug` to the
//! broker and prints its log when a test fails.

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

/// The Node.js interpreter for `kafkajs_client.js`, checked once: it must run and load kafkajs
/// from `tests/interop/kafkajs/node_modules` (installed by the setup script). Panics (fails the
/// test) otherwise.
fn node() -> &'static Path {
    static NODE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let checked = NODE.get_or_init(|| {
        let node = match std::env::var_os("KAFKA_INTEROP_NODE") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from("node"),
        };
        let kafkajs = scripts_dir()
            .join("kafkajs")
            .join("node_modules")
            .join("kafkajs");
        let probe = Command::new(&node)
            .arg("-p")
            .arg("require(process.argv[1] + '/package.json').version + ' ' + process.version")
            .arg(&kafkajs)
            .stdin(Stdio::null())
            .output();
        match probe {
            Ok(out) if out.status.success() => Ok(node),
            Ok(out) => Err(format!(
                "{} cannot load kafkajs from {}: {}; {SETUP_HINT}",
                node.display(),
                kafkajs.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!(
                "cannot run the Node.js interpreter {} ({e}; KAFKA_INTEROP_NODE unset or wrong); {SETUP_HINT}",
                node.display()
            )),
        }
    });
    match checked {
        Ok(p) => p,
        Err(msg) => panic!("{msg}"),
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
        BrokerProcess::start_with(&[])
    }

    /// Starts the binary with extra `--config key=value` broker configs.
    fn start_with(configs: &[&str]) -> BrokerProcess {
        let data_dir = tempfile::Builder::new()
            .prefix("broker-lite-interop-")
            .tempdir()
            .expect("temporary data directory");
        let level = std::env::var("BROKER_LITE_INTEROP_LOG").unwrap_or_else(|_| "info".into());
        let child = Command::new(env!("CARGO_BIN_EXE_broker-lite"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(["--log-level", &level])
            .args(configs.iter().flat_map(|c| ["--config", c]))
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

    /// Runs the Python script `tests/interop/<script>` with `args` (plus `--bootstrap`),
    /// returns its JSON summary; panics with the script's stderr and the broker log when it
    /// fails.
    fn run_script(&self, script: &str, args: &[&str]) -> Value {
        self.run_with(python(), script, args)
    }

    /// As [`BrokerProcess::run_script`], for a Node.js script (kafkajs).
    fn run_node_script(&self, script: &str, args: &[&str]) -> Value {
        self.run_with(node(), script, args)
    }

    /// Runs `interpreter tests/interop/<script> --bootstrap <addr> <args>` (see `run_script`).
    fn run_with(&self, interpreter: &Path, script: &str, args: &[&str]) -> Value {
        let started = Instant::now();
        let child = Command::new(interpreter)
            .arg(scripts_dir().join(script))
            .args(["--bootstrap", &self.addr])
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", interpreter.display()));
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
            "kafkajs_client.js" => assert_kafkajs_clean(&summary),
            _ => {}
        }
        summary
    }

    /// The contents of `path` (relative to the data directory).
    fn data_file(&self, path: &str) -> String {
        let path = self.data_dir.path().join(path);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("data file {}: {e}", path.display()))
    }

    /// The config overrides persisted for `topic` (the `config.<name>=<value>` lines of
    /// `broker-lite-topics/<topic>.properties`).
    fn stored_overrides(&self, topic: &str) -> BTreeMap<String, String> {
        self.data_file(&format!("broker-lite-topics/{topic}.properties"))
            .lines()
            .filter_map(|l| l.strip_prefix("config."))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Counts the record batches stored for `topic` by compression codec (attributes & 7).
    fn stored_codecs(&self, topic: &str) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for batch in self.stored_batches(topic) {
            let codec = match batch.attributes & 7 {
                0 => "none",
                1 => "gzip",
                2 => "snappy",
                3 => "lz4",
                4 => "zstd",
                _ => "invalid",
            };
            *counts.entry(codec).or_insert(0) += 1;
        }
        counts
    }

    /// The header fields of every record batch stored for `topic` (partitions 0..PARTITIONS),
    /// reading the partitions' segment files (Kafka's on-disk layout).
    fn stored_batches(&self, topic: &str) -> Vec<StoredBatch> {
        let mut batches = Vec::new();
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
                // Batch header: base offset (8), length (4), leader epoch (4), magic (1),
                // crc (4), attributes (2) at 21, last offset delta (4), first and max
                // timestamps (8 + 8), producer id (8) at 43.
                while pos + 51 <= data.len() {
                    let len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
                    if len <= 0 {
                        break;
                    }
                    batches.push(StoredBatch {
                        attributes: i16::from_be_bytes([data[pos + 21], data[pos + 22]]),
                        producer_id: i64::from_be_bytes(
                            data[pos + 43..pos + 51].try_into().unwrap(),
                        ),
                    });
                    pos += 12 + len as usize;
                }
            }
        }
        batches
    }
}

/// Header fields of one stored record batch.
#[derive(Debug)]
struct StoredBatch {
    /// Codec (bits 0-2), transactional (bit 4), control (bit 5).
    attributes: i16,
    /// -1 unless the producer was idempotent or transactional.
    producer_id: i64,
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

/// kafkajs logged no warning or error (every request it sent was answered without an
/// unexpected error code: kafkajs logs those at error level) and the broker closed none of its
/// connections. kafkajs picks each request version from the broker's ApiVersions ranges itself.
fn assert_kafkajs_clean(summary: &Value) {
    assert_eq!(
        summary["client_warnings"],
        serde_json::json!([]),
        "{summary}"
    );
    assert_eq!(summary["disconnects"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["version"], "2.2.4", "{summary}");
    assert!(
        summary["request_versions"].get("ApiVersions").is_some(),
        "{summary}"
    );
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
    assert_stored_codec(&broker, "ck-main", "none");
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
    assert_stored_codec(&broker, "kp-main", "none");
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

/// confluent-kafka `AdminClient.delete_records` (DeleteRecords, KIP-107): the script checks
/// the low watermarks librdkafka reports (delete before 10 of 20, backwards, OFFSET_END), the
/// consumer's watermarks and read from the beginning, and the per-partition errors of a mixed
/// request (OFFSET_OUT_OF_RANGE, _UNKNOWN_PARTITION, POLICY_VIOLATION on a compacted topic).
/// The new log start offset is checkpointed in the partition directory, as Kafka does.
#[test]
fn confluent_kafka_delete_records() {
    let mut broker = BrokerProcess::start();
    let s = broker.run_script("delete_records_confluent.py", &["--topic", "ck-delrec"]);
    assert_eq!(s["client"], "confluent-kafka", "{s}");
    assert_eq!(s["topic"], "ck-delrec", "{s}");
    assert_eq!(s["count"], 20, "{s}");
    // OFFSET_END (-1) moved the low watermark to the high watermark, --count.
    assert_eq!(s["low_watermark"], 20, "{s}");
    // broker-lite's per-partition checkpoint: version 0, then the log start offset.
    assert_eq!(
        broker.data_file("ck-delrec-0/log-start-offset-checkpoint"),
        "0\n20\n"
    );
    // Partition 1 got a delete before offset 0 (its start already): nothing moved.
    assert!(
        !broker
            .data_dir
            .path()
            .join("ck-delrec-1/log-start-offset-checkpoint")
            .exists()
            || broker.data_file("ck-delrec-1/log-start-offset-checkpoint") == "0\n0\n",
        "partition 1's log start offset moved"
    );
    broker.assert_clean();
}

/// The legacy, non-incremental AlterConfigs (key 33, KIP-133) from two clients: kafka-python's
/// `alter_configs(incremental=False)` (its read-modify-write, then its bare request replacing
/// every override) and confluent-kafka's deprecated `alter_configs` (sent as given). Both
/// scripts check DescribeConfigs' values and sources after each step, max.message.bytes
/// enforced on produce, validate_only and the error codes; here the summaries' errors and the
/// overrides persisted in the data directory.
#[test]
fn legacy_alter_configs_kafka_python_and_confluent_kafka() {
    let mut broker = BrokerProcess::start();
    let s = broker.run_script("alter_configs_kafka_python.py", &["--topic", "kp-altcfg"]);
    assert_eq!(s["client"], "kafka-python", "{s}");
    assert_eq!(s["topic"], "kp-altcfg", "{s}");
    let errors = &s["errors"];
    assert_eq!(errors.as_object().map(|e| e.len()), Some(3), "{s}");
    let unknown_topic = errors["unknown topic"].as_str().expect("unknown topic");
    assert!(
        unknown_topic.starts_with("[Error 3] UnknownTopicOrPartitionError: ")
            && unknown_topic.contains("'kp-altcfg-ghost'"),
        "{s}"
    );
    // Kafka's message (LogConfig.validateNames).
    assert_eq!(
        errors["unknown config"],
        "[Error 40] InvalidConfigurationError: Unknown topic config name: no.such.config",
        "{s}"
    );
    // Kafka's text (ConfigDef's ConfigException).
    assert_eq!(
        errors["invalid value"],
        "[Error 40] InvalidConfigurationError: Invalid value soon for configuration retention.ms: Not a number of type LONG",
        "{s}"
    );
    // The bare request listed retention.ms only: the creation's cleanup.policy and the
    // max.message.bytes set by the first alter are gone; validate_only and the failed
    // requests changed nothing.
    assert_eq!(
        broker.stored_overrides("kp-altcfg"),
        BTreeMap::from([("retention.ms".to_string(), "120000".to_string())])
    );

    let s = broker.run_script("alter_configs_confluent.py", &["--topic", "ck-altcfg"]);
    assert_eq!(s["client"], "confluent-kafka", "{s}");
    assert_eq!(s["topic"], "ck-altcfg", "{s}");
    assert_eq!(
        s["errors"],
        serde_json::json!({
            "unknown topic": "UNKNOWN_TOPIC_OR_PART",
            "unknown config": "INVALID_CONFIG",
            "invalid value": "INVALID_CONFIG",
        }),
        "{s}"
    );
    // segment.bytes and max.message.bytes replaced the creation's cleanup.policy and
    // retention.ms.
    assert_eq!(
        broker.stored_overrides("ck-altcfg"),
        BTreeMap::from([
            ("max.message.bytes".to_string(), "5000".to_string()),
            ("segment.bytes".to_string(), "8192".to_string()),
        ])
    );
    broker.assert_clean();
}

/// DescribeLogDirs from kafka-python (the data directory, partition sizes equal to the `.log`
/// files' bytes, the volume's total and usable bytes) and the ACL APIs without an authorizer:
/// kafka-python's describe_acls gets SECURITY_DISABLED with Kafka's message, confluent-kafka's
/// create_acls / delete_acls fail every binding / filter with it.
#[test]
fn describe_log_dirs_and_acls_kafka_python_and_confluent_kafka() {
    let mut broker = BrokerProcess::start();
    let data_dir = broker
        .data_dir
        .path()
        .to_str()
        .expect("UTF-8 path")
        .to_string();
    let s = broker.run_script(
        "describe_admin.py",
        &[
            "--topic",
            "logdirs",
            "--count",
            "50",
            "--data-dir",
            &data_dir,
        ],
    );
    assert_eq!(s["client"], "kafka-python+confluent-kafka", "{s}");
    assert_eq!(s["topic"], "logdirs", "{s}");
    // Partition 0's size as DescribeLogDirs reported it (the script compared it with the
    // segment files): 50 records were stored.
    let on_disk: u64 = std::fs::read_dir(broker.data_dir.path().join("logdirs-0"))
        .expect("partition directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("log"))
        .map(|p| std::fs::metadata(p).expect("segment metadata").len())
        .sum();
    assert!(on_disk > 50 * 3, "{on_disk} bytes for 50 records");
    assert_eq!(s["partition0_bytes"], on_disk, "{s}");
    let total = s["total_bytes"].as_u64().expect("total_bytes");
    let usable = s["usable_bytes"].as_u64().expect("usable_bytes");
    assert!(total > 0 && usable <= total, "{s}");
    assert_eq!(
        s["kafka_python_describe_acls"],
        "[Error 54] SecurityDisabledError: No Authorizer is configured on the broker",
        "{s}"
    );
    for api in ["create_acls", "delete_acls"] {
        assert_eq!(
            s[api],
            "KafkaError{code=SECURITY_DISABLED,val=54,str=\"No Authorizer is configured.\"}",
            "{s}"
        );
    }
    broker.assert_clean();
}

/// kafkajs: admin.createTopics, 100,000 keyed messages with acks=-1 in sends of 1,000, read back
/// by a consumer group from the beginning (kafkajs has no assign) and verified as the Python
/// clients' runs (common.verify), plus: every message at the partition and offset the producer
/// was told.
#[test]
fn kafkajs_create_produce_consume_100k() {
    let mut broker = BrokerProcess::start();
    let n = count_arg(MAIN_COUNT);
    let s = broker.run_node_script("kafkajs_client.js", &["--topic", "kjs-main", "--count", &n]);
    assert_created(&s);
    assert_eq!(s["create"]["controller_id"], 1, "{s}");
    assert_eq!(
        s["create"]["brokers"]["1"].as_str(),
        Some(broker.addr.as_str()),
        "{s}"
    );
    assert_produced(&s, MAIN_COUNT);
    assert_eq!(s["produce"]["sends"], MAIN_COUNT / 1000, "{s}");
    assert_consumed(&s, MAIN_COUNT);
    for api in [
        "CreateTopics",
        "Produce",
        "Fetch",
        "JoinGroup",
        "SyncGroup",
        "OffsetCommit",
    ] {
        assert!(
            s["request_versions"].get(api).is_some(),
            "kafkajs sent no {api}: {s}"
        );
    }
    assert!(
        broker
            .stored_batches("kjs-main")
            .iter()
            .all(|b| b.producer_id == -1 && b.attributes == 0),
        "kafkajs' plain producer: no producer id, no compression"
    );
    assert_stored_codec(&broker, "kjs-main", "none");
    broker.assert_clean();
}

/// kafkajs: an idempotent producer with GZIP (kafkajs' only built-in codec), then a
/// transactional producer committing, aborting and committing a transaction; read_committed
/// sees exactly the committed records, read_uncommitted all of them; the control batches are
/// stored; librdkafka's read_committed reader agrees.
#[test]
fn kafkajs_gzip_idempotent_and_transactions() {
    let mut broker = BrokerProcess::start();
    let n = count_arg(CODEC_COUNT);
    let s = broker.run_node_script(
        "kafkajs_client.js",
        &[
            "--topic",
            "kjs-gzip",
            "--count",
            &n,
            "--compression",
            "gzip",
            "--idempotent",
        ],
    );
    assert_created(&s);
    assert_produced(&s, CODEC_COUNT);
    assert_eq!(s["produce"]["idempotent"], true, "{s}");
    assert!(s["request_versions"].get("InitProducerId").is_some(), "{s}");
    assert_consumed(&s, CODEC_COUNT);
    assert_stored_codec(&broker, "kjs-gzip", "gzip");
    // Idempotent: every batch carries the one producer id the broker gave kafkajs, and none is
    // transactional.
    let batches = broker.stored_batches("kjs-gzip");
    let ids: std::collections::BTreeSet<i64> = batches.iter().map(|b| b.producer_id).collect();
    assert_eq!(ids.len(), 1, "{batches:?}");
    assert!(ids.iter().all(|id| *id >= 0), "{batches:?}");
    assert!(
        batches.iter().all(|b| b.attributes & 0x30 == 0),
        "{batches:?}"
    );

    let per_txn: u64 = 100;
    let s = broker.run_node_script(
        "kafkajs_client.js",
        &[
            "--topic",
            "kjs-txn",
            "--steps",
            "create,txn",
            "--per-txn",
            &per_txn.to_string(),
        ],
    );
    assert_created(&s);
    let t = &s["txn"];
    assert_eq!(t["committed"], 2 * per_txn, "{t}");
    assert_eq!(t["aborted"], per_txn, "{t}");
    for api in ["InitProducerId", "AddPartitionsToTxn", "EndTxn"] {
        assert!(s["request_versions"].get(api).is_some(), "{s}");
    }
    let rc = &t["read_committed"];
    assert_eq!(rc["records"], 2 * per_txn, "{t}");
    assert_eq!(rc["distinct"], 2 * per_txn, "{t}");
    assert_eq!(rc["committed_seen"], 2 * per_txn, "{t}");
    assert_eq!(
        rc["aborted_seen"], 0,
        "aborted records read as committed: {t}"
    );
    let ru = &t["read_uncommitted"];
    assert_eq!(ru["records"], 3 * per_txn, "{t}");
    assert_eq!(
        ru["aborted_seen"], per_txn,
        "aborted records not in the log: {t}"
    );
    // Every partition holds records of all three transactions and one marker per transaction.
    let high: u64 = t["high_watermarks"]
        .as_object()
        .expect("high_watermarks")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(high, 3 * per_txn + 3 * PARTITIONS, "{t}");
    let attrs: Vec<i16> = broker
        .stored_batches("kjs-txn")
        .iter()
        .map(|b| b.attributes)
        .collect();
    let control = attrs.iter().filter(|a| *a & 0x20 != 0).count() as u64;
    let transactional_data = attrs
        .iter()
        .filter(|a| *a & 0x10 != 0 && *a & 0x20 == 0)
        .count() as u64;
    assert_eq!(
        control,
        3 * PARTITIONS,
        "one marker per partition and transaction: {attrs:?}"
    );
    assert!(
        attrs.iter().all(|a| *a & 0x10 != 0),
        "every batch is transactional: {attrs:?}"
    );
    assert_eq!(transactional_data, 3 * PARTITIONS, "{attrs:?}");
    // librdkafka reads the same committed records.
    let r = broker.run_script(
        "txn_confluent.py",
        &["read", "--topic", "kjs-txn", "--partitions", "6"],
    );
    let values: Vec<&str> = r["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(values.len() as u64, 2 * per_txn, "{r}");
    assert!(
        values
            .iter()
            .all(|v| v.starts_with("t0-") || v.starts_with("t2-")),
        "{r}"
    );
    broker.assert_clean();
}

/// kafkajs' admin client and group tooling: describeCluster, describeConfigs,
/// fetchTopicOffsets(ByTimestamp), listGroups / describeGroups with one and two members,
/// deleteGroups on a running group (NON_EMPTY_GROUP) and on an empty one, fetchOffsets,
/// setOffsets and resetOffsets on the stopped group with members resuming from them,
/// createPartitions, deleteTopics; on side topics deleteTopicRecords (DeleteRecords) with a
/// new group reading from the new start, and alterConfigs (the legacy AlterConfigs, replace
/// semantics). `group.initial.rebalance.delay.ms=0` (Kafka's test setting): kafkajs joins
/// groups eight times here.
#[test]
fn kafkajs_admin_and_groups() {
    let mut broker = BrokerProcess::start_with(&["group.initial.rebalance.delay.ms=0"]);
    let s = broker.run_node_script(
        "kafkajs_client.js",
        &[
            "--topic",
            "kjs-admin",
            "--partitions",
            "3",
            "--group",
            "kjs-admin-group",
            "--steps",
            "admin",
            "--timeout",
            "60",
        ],
    );
    let a = &s["admin"];
    assert_eq!(a["created"], true, "{a}");
    // TOPIC_ALREADY_EXISTS: kafkajs answers `false` and logs the error response.
    assert_eq!(a["created_again"], false, "{a}");
    let again_log = a["created_again_log"].as_array().expect("log");
    assert_eq!(again_log.len(), 1, "{a}");
    assert!(
        again_log[0].as_str().unwrap().contains("CreateTopics"),
        "{a}"
    );
    // describeCluster
    assert_eq!(
        a["cluster"]["brokers"],
        serde_json::json!([{"node_id": 1, "address": broker.addr}]),
        "{a}"
    );
    assert_eq!(a["cluster"]["controller"], 1, "{a}");
    assert!(
        a["cluster"]["cluster_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{a}"
    );
    // describeConfigs: the two set at creation, one default (Kafka's 1048588).
    let c = &a["configs"];
    assert_eq!(c["error_code"], 0, "{c}");
    assert_eq!(c["resource_name"], "kjs-admin", "{c}");
    let entries = &c["entries"];
    assert_eq!(entries["retention.ms"]["value"], "3600000", "{c}");
    assert_eq!(entries["retention.ms"]["is_default"], false, "{c}");
    assert_eq!(entries["cleanup.policy"]["value"], "delete", "{c}");
    assert_eq!(entries["max.message.bytes"]["value"], "1048588", "{c}");
    assert_eq!(entries["max.message.bytes"]["is_default"], true, "{c}");
    assert_eq!(entries.as_object().map(|e| e.len()), Some(3), "{c}");
    // deleteTopicRecords (DeleteRecords) on kjs-admin-records: 100 records in partition 0,
    // 50 in partition 1.
    let d = &a["delete_records"];
    let low_high = |p0: [u64; 2], p1: [u64; 2]| {
        serde_json::json!({
            "0": {"low": p0[0], "high": p0[1]},
            "1": {"low": p1[0], "high": p1[1]},
        })
    };
    assert_eq!(d["before"], low_high([0, 100], [0, 50]), "{d}");
    // Before offset 40 of partition 0: the low watermark moves, partition 1 is untouched.
    assert_eq!(d["after_delete"], low_high([40, 100], [0, 50]), "{d}");
    // A new group subscribed from the beginning starts partition 0 at offset 40.
    assert_eq!(
        d["read"],
        serde_json::json!({
            "records": 110,
            "first_offset": {"0": 40, "1": 0},
            "per_partition": {"0": 60, "1": 50},
            "contiguous": true,
        }),
        "{d}"
    );
    assert_eq!(
        d["read_first_values"],
        serde_json::json!({"0": "v-40", "1": "w-0"}),
        "{d}"
    );
    // Before the low watermark: kafkajs warns and sends it anyway; nothing moves back.
    let backwards = d["backwards_log"].as_array().expect("backwards_log");
    assert_eq!(backwards.len(), 1, "{d}");
    assert!(
        backwards[0]
            .as_str()
            .unwrap()
            .contains("The requested offset is before the earliest offset"),
        "{d}"
    );
    assert_eq!(d["after_backwards"], low_high([40, 100], [0, 50]), "{d}");
    // Offset -1: up to the high watermark.
    assert_eq!(d["after_all"], low_high([40, 100], [50, 50]), "{d}");
    // Beyond the high watermark: OFFSET_OUT_OF_RANGE for the partition (kafkajs' retrier wraps
    // the non-retriable error), logged once by kafkajs, nothing changed.
    let oor = &d["out_of_range"];
    assert_eq!(oor["error"], "KafkaJSNonRetriableError", "{oor}");
    assert_eq!(
        oor["cause"],
        serde_json::json!({
            "error": "KafkaJSDeleteTopicRecordsError",
            "partitions": [{"partition": 0, "offset": "500", "error": "OFFSET_OUT_OF_RANGE"}],
        }),
        "{oor}"
    );
    let oor_log = oor["log"].as_array().expect("log");
    assert_eq!(oor_log.len(), 1, "{oor}");
    assert!(
        oor_log[0].as_str().unwrap().contains("DeleteRecords"),
        "{oor}"
    );
    assert_eq!(
        d["after_out_of_range"],
        low_high([40, 100], [50, 50]),
        "{d}"
    );
    // alterConfigs (the legacy AlterConfigs) on kjs-admin-configs, created with three
    // overrides; source 1 is DYNAMIC_TOPIC_CONFIG, 5 DEFAULT_CONFIG.
    let ac = &a["alter_configs"];
    let entry = |value: &str, is_default: bool| {
        serde_json::json!({
            "value": value,
            "is_default": is_default,
            "source": if is_default { 5 } else { 1 },
        })
    };
    assert_eq!(
        ac["created"],
        serde_json::json!({
            "retention.ms": entry("3600000", false),
            "max.message.bytes": entry("5000", false),
            "cleanup.policy": entry("compact", false),
        }),
        "{ac}"
    );
    assert_eq!(
        ac["altered"],
        serde_json::json!([{"error_code": 0, "resource_type": 2, "resource_name": "kjs-admin-configs"}]),
        "{ac}"
    );
    // Replace semantics: retention.ms as listed, the two overrides not listed back at their
    // defaults (Kafka's 1048588 and delete).
    let replaced = serde_json::json!({
        "retention.ms": entry("7200000", false),
        "max.message.bytes": entry("1048588", true),
        "cleanup.policy": entry("delete", true),
    });
    assert_eq!(ac["after_alter"], replaced, "{ac}");
    assert_eq!(ac["after_validate_only"], replaced, "{ac}");
    let invalid = &ac["invalid"];
    assert_eq!(invalid["error"], "KafkaJSProtocolError", "{invalid}");
    assert_eq!(invalid["type"], "INVALID_CONFIG", "{invalid}");
    let invalid_log = invalid["log"].as_array().expect("log");
    assert_eq!(invalid_log.len(), 1, "{invalid}");
    assert!(
        invalid_log[0].as_str().unwrap().contains("AlterConfigs"),
        "{invalid}"
    );
    assert_eq!(ac["after_invalid"], replaced, "{ac}");
    // fetchTopicOffsets / fetchTopicOffsetsByTimestamp: per partition 100 records at t0 and
    // 100 at t1 = t0 + 60 s.
    for p in ["0", "1", "2"] {
        assert_eq!(
            a["topic_offsets"][p],
            serde_json::json!({"offset": 200, "high": 200, "low": 0}),
            "{a}"
        );
    }
    let all = |v: u64| serde_json::json!({"0": v, "1": v, "2": v});
    let by_ts = &a["offsets_by_timestamp"];
    assert_eq!(by_ts["before_t0"], all(0), "{by_ts}");
    assert_eq!(by_ts["at_t0"], all(0), "{by_ts}");
    assert_eq!(by_ts["between"], all(100), "{by_ts}");
    assert_eq!(by_ts["at_t1"], all(100), "{by_ts}");
    // Later than every record: the broker answers -1, kafkajs substitutes the high watermark.
    assert_eq!(by_ts["after_t1"], all(200), "{by_ts}");
    // The group while one member runs.
    assert_eq!(a["first_read"]["records"], 600, "{a}");
    assert_eq!(a["first_read"]["distinct"], 600, "{a}");
    let running = &a["running"];
    assert_eq!(running["error_code"], 0, "{running}");
    assert_eq!(running["state"], "Stable", "{running}");
    assert_eq!(running["protocol_type"], "consumer", "{running}");
    assert_eq!(running["protocol"], "RoundRobinAssigner", "{running}");
    assert_eq!(
        running["members"],
        serde_json::json!([{
            "client_id": "kafkajs-interop",
            "has_member_id": true,
            "assignment": {"kjs-admin": [0, 1, 2]}
        }]),
        "{running}"
    );
    assert_eq!(
        a["listed_running"],
        serde_json::json!([{"groupId": "kjs-admin-group", "protocolType": "consumer"}]),
        "{a}"
    );
    // Two members: Stable again, the partitions split between them.
    let two = &a["running_two"];
    assert_eq!(two["state"], "Stable", "{two}");
    let members = two["members"].as_array().expect("members");
    assert_eq!(members.len(), 2, "{two}");
    let mut assigned: Vec<u64> = members
        .iter()
        .flat_map(|m| {
            let parts = m["assignment"]["kjs-admin"].as_array().expect("assignment");
            assert!(!parts.is_empty(), "a member without partitions: {two}");
            parts.iter().map(|p| p.as_u64().unwrap())
        })
        .collect();
    assigned.sort();
    assert_eq!(assigned, [0, 1, 2], "{two}");
    // The rebalance reached the first member as REBALANCE_IN_PROGRESS on its heartbeat.
    let rebalance_log = a["rebalance_log"].as_array().expect("rebalance_log");
    assert!(!rebalance_log.is_empty(), "{a}");
    for line in rebalance_log {
        assert!(
            line.as_str().unwrap().contains("The group is rebalancing"),
            "unexpected kafkajs log during the rebalance: {line}"
        );
    }
    // DeleteGroups on a group with members: NON_EMPTY_GROUP (68).
    assert_eq!(
        a["delete_running"],
        serde_json::json!({
            "error": "KafkaJSDeleteGroupsError",
            "groups": [{"group_id": "kjs-admin-group", "error_code": 68}]
        }),
        "{a}"
    );
    // Stopped: Empty, no members, offsets committed at the end of every partition.
    let stopped = &a["stopped"];
    assert_eq!(stopped["state"], "Empty", "{stopped}");
    assert_eq!(stopped["members"], serde_json::json!([]), "{stopped}");
    assert_eq!(a["committed"], all(200), "{a}");
    // setOffsets, then a member resumes exactly there.
    let seek = serde_json::json!({"0": 50, "1": 120, "2": 199});
    assert_eq!(a["after_set"], seek, "{a}");
    let resumed = &a["resumed"];
    assert_eq!(resumed["first_offset"], seek, "{resumed}");
    assert_eq!(
        resumed["per_partition"],
        serde_json::json!({"0": 150, "1": 80, "2": 1}),
        "{resumed}"
    );
    assert_eq!(resumed["records"], 231, "{resumed}");
    assert_eq!(resumed["contiguous"], true, "{resumed}");
    assert_eq!(a["committed_after_resume"], all(200), "{a}");
    // resetOffsets(earliest): the logical offset -2 is stored and fetched back as is; a member
    // then reads everything again from offset 0.
    assert_eq!(
        a["after_reset"],
        serde_json::json!({"0": -2, "1": -2, "2": -2}),
        "{a}"
    );
    let again = &a["after_reset_read"];
    assert_eq!(again["records"], 600, "{again}");
    assert_eq!(again["first_offset"], all(0), "{again}");
    assert_eq!(again["contiguous"], true, "{again}");
    // createPartitions 3 -> 5: the new partitions are empty.
    assert_eq!(a["partitions_after"], 5, "{a}");
    for p in ["3", "4"] {
        assert_eq!(
            a["topic_offsets_after"][p],
            serde_json::json!({"high": 0, "low": 0}),
            "{a}"
        );
    }
    assert_eq!(
        a["topic_offsets_after"]["0"],
        serde_json::json!({"high": 200, "low": 0}),
        "{a}"
    );
    // deleteGroups on the empty group: gone from listGroups, its offsets with it.
    assert_eq!(
        a["delete_group"],
        serde_json::json!([{"group_id": "kjs-admin-group", "error_code": 0}]),
        "{a}"
    );
    assert_eq!(a["listed_after_delete"], serde_json::json!([]), "{a}");
    assert_eq!(
        a["offsets_after_delete"],
        serde_json::json!({"0": -1, "1": -1, "2": -1, "3": -1, "4": -1}),
        "{a}"
    );
    assert_eq!(a["listed_topic_after_delete"], false, "{a}");
    for api in [
        "DescribeConfigs",
        "AlterConfigs",
        "DeleteRecords",
        "DescribeGroups",
        "ListGroups",
        "DeleteGroups",
        "CreatePartitions",
        "DeleteTopics",
        "OffsetFetch",
    ] {
        assert!(
            s["request_versions"].get(api).is_some(),
            "kafkajs sent no {api}: {s}"
        );
    }
    broker.assert_clean();
}

/// kafkajs reads what librdkafka produced (gzip-compressed batches), and librdkafka reads what
/// kafkajs produced; both with the scripts' deterministic messages and full verification.
#[test]
fn cross_client_kafkajs_and_confluent_kafka() {
    let mut broker = BrokerProcess::start();
    let n = count_arg(CODEC_COUNT);
    let s = broker.run_script(
        "confluent_client.py",
        &[
            "--topic",
            "x-ck-to-kjs",
            "--count",
            &n,
            "--compression",
            "gzip",
            "--steps",
            "create,produce",
        ],
    );
    assert_created(&s);
    assert_produced(&s, CODEC_COUNT);
    let s = broker.run_node_script(
        "kafkajs_client.js",
        &[
            "--topic",
            "x-ck-to-kjs",
            "--count",
            &n,
            "--steps",
            "consume",
        ],
    );
    assert_consumed(&s, CODEC_COUNT);
    assert_stored_codec(&broker, "x-ck-to-kjs", "gzip");
    let s = broker.run_node_script(
        "kafkajs_client.js",
        &[
            "--topic",
            "x-kjs-to-ck",
            "--count",
            &n,
            "--steps",
            "create,produce",
        ],
    );
    assert_created(&s);
    assert_produced(&s, CODEC_COUNT);
    let s = broker.run_script(
        "confluent_client.py",
        &[
            "--topic",
            "x-kjs-to-ck",
            "--count",
            &n,
            "--steps",
            "consume",
        ],
    );
    assert_consumed(&s, CODEC_COUNT);
    broker.assert_clean();
}
