//! Interop of our producer (`kafka-client`) with real third-party clients: what it writes must
//! be what confluent-kafka (librdkafka) and kafka-python read, and its keyed placement must be
//! librdkafka's Java-compatible `murmur2_random`.
//!
//! Each test starts broker-lite in-process (`Broker::start_ephemeral`, 127.0.0.1, ephemeral
//! port) and runs Python scripts from `tests/interop/` with the interpreter named by
//! `KAFKA_INTEROP_PYTHON` (default `<workspace>/.venv/bin/python`, made by
//! `scripts/setup-interop.sh`). The scripts dump the records they read (or the delivery
//! reports they got) to a JSON Lines file, bytes in base64 (`tests/interop/record_dump.py`),
//! and print one JSON summary line; the comparison is done here, field by field. A missing
//! interpreter, client module or compression codec fails the tests: they never pass silently.
//!
//! * [`our_records_read_back_identically_by_confluent_kafka_and_kafka_python`]: 2,000 varied
//!   records (binary, empty and null keys; tombstones and empty values; several, duplicate,
//!   empty-keyed, unicode-keyed and null-valued headers; explicit CreateTime timestamps;
//!   explicit and partitioner-chosen partitions) per compression codec; both clients read
//!   every record at the partition and offset our delivery report named, unchanged.
//! * [`keyed_placement_matches_librdkafka_murmur2_random`]: 1,000 keys on 7 and on 32
//!   partitions land on the same partition whether librdkafka (`partitioner=murmur2_random`)
//!   or our producer wrote them (delivery reports and the broker's logs agree).
//! * [`default_producer_100k_read_back_by_confluent_kafka`]: our producer with default
//!   settings writes 100,000 records that librdkafka reads back complete, in produce order per
//!   partition, without duplicates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_client::config::ProducerConfig;
use kafka_client::partitioner::partition_for_key;
use kafka_client::producer::Producer;
use kafka_client::{Header, ProducerRecord, RecordMetadata};
use kafka_integration_tests::broker_api;
use kafka_integration_tests::interop::{self, python};
use kafka_wire::records::Compression;
use serde_json::Value;

/// Records per compression codec in the content test.
const CONTENT_COUNT: usize = 2_000;
/// Partitions of the content-test topics.
const CONTENT_PARTITIONS: i32 = 5;
/// Keys in the placement test.
const KEY_COUNT: usize = 1_000;
/// Partition counts of the placement test.
const KEY_PARTITIONS: [i32; 2] = [7, 32];
/// Records in the bulk test.
const BULK_COUNT: usize = 100_000;
/// Partitions of the bulk-test topic.
const BULK_PARTITIONS: i32 = 6;
/// Upper bound for one script run (each has its own, shorter, internal timeout).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound for our producer to have every record of a run acknowledged.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs an interop script with [`SCRIPT_TIMEOUT`].
async fn run_script(bootstrap: &str, script: &str, args: &[String]) -> Value {
    interop::run_script(bootstrap, script, args, SCRIPT_TIMEOUT).await
}

// ---------------------------------------------------------------------------------------------
// base64 (the dump format), without a dependency
// ---------------------------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64
            .iter()
            .position(|&b| b == c)
            .unwrap_or_else(|| panic!("invalid base64 {text:?}")) as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Records: what we send, what a script dumped
// ---------------------------------------------------------------------------------------------

type Headers = Vec<(String, Option<Vec<u8>>)>;

/// One record as the test means it: produced by us, expected back from the other clients.
#[derive(Debug, Clone)]
struct Spec {
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Headers,
    timestamp: Option<i64>,
}

impl Spec {
    fn record(&self, topic: &str) -> ProducerRecord {
        ProducerRecord {
            topic: topic.to_string(),
            partition: self.partition,
            key: self.key.clone().map(Bytes::from),
            value: self.value.clone().map(Bytes::from),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k.clone(),
                    value: v.clone().map(Bytes::from),
                })
                .collect(),
            timestamp: self.timestamp,
        }
    }
}

/// One record line of a script's `--out` file (see `tests/interop/record_dump.py`).
#[derive(Debug, Clone, PartialEq)]
struct Dumped {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Headers,
    timestamp: i64,
    timestamp_type: String,
}

fn opt_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(b64_decode(s)),
        other => panic!("expected base64 or null, got {other}"),
    }
}

fn read_dump(path: &Path) -> Vec<Dumped> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading dump {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("bad dump line ({e}): {line}"));
            let a = v.as_array().expect("dump line is an array");
            assert_eq!(a.len(), 8, "dump line: {line}");
            Dumped {
                topic: a[0].as_str().expect("topic").to_string(),
                partition: a[1].as_i64().expect("partition") as i32,
                offset: a[2].as_i64().expect("offset"),
                key: opt_bytes(&a[3]),
                value: opt_bytes(&a[4]),
                headers: a[5]
                    .as_array()
                    .expect("headers")
                    .iter()
                    .map(|h| {
                        let h = h.as_array().expect("header pair");
                        (
                            h[0].as_str().expect("header key").to_string(),
                            opt_bytes(&h[1]),
                        )
                    })
                    .collect(),
                timestamp: a[6].as_i64().expect("timestamp"),
                timestamp_type: a[7].as_str().expect("timestamp type").to_string(),
            }
        })
        .collect()
}

fn show(b: &Option<Vec<u8>>) -> String {
    match b {
        None => "null".into(),
        Some(b) if b.len() > 48 => format!("{} bytes {}…", b.len(), hex(&b[..24])),
        Some(b) => format!("{:?} ({})", String::from_utf8_lossy(b), hex(b)),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn show_headers(h: &Headers) -> String {
    let parts: Vec<String> = h
        .iter()
        .map(|(k, v)| format!("{k:?}={}", show(v)))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Collects at most 30 problem descriptions (and counts the rest).
#[derive(Default)]
struct Problems {
    list: Vec<String>,
    more: usize,
}

impl Problems {
    fn add(&mut self, msg: String) {
        if self.list.len() < 30 {
            self.list.push(msg);
        } else {
            self.more += 1;
        }
    }

    fn into_result(self, what: &str) -> Result<(), String> {
        if self.list.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{what}: {} problem(s):\n  {}{}",
            self.list.len() + self.more,
            self.list.join("\n  "),
            if self.more > 0 {
                format!("\n  ... and {} more", self.more)
            } else {
                String::new()
            }
        ))
    }

    fn check(self, what: &str) {
        if let Err(e) = self.into_result(what) {
            panic!("{e}");
        }
    }
}

/// Compares what `client` read from `topic` (`dump`, in the order it delivered the records)
/// with what we sent (`specs`) and where our delivery reports said it went (`mds`):
///
/// * every record was read exactly once, at the partition and offset of its delivery report,
///   with the same key, value, headers (order, null values) and CreateTime timestamp;
/// * nothing else was read from the topic, and each partition's offsets run from 0 without
///   gaps;
/// * per partition, records came in produce order;
/// * our delivery reports carry the record's timestamp, its serialized key and value sizes
///   (-1 for null), its explicit partition if it had one, else `partition_for_key` for keyed
///   records.
fn compare(
    client: &str,
    topic: &str,
    partitions: i32,
    specs: &[Spec],
    mds: &[RecordMetadata],
    dump: &[Dumped],
) -> Result<(), String> {
    let mut problems = Problems::default();
    let mut by_position: HashMap<(i32, i64), usize> = HashMap::new();
    for (i, md) in mds.iter().enumerate() {
        let spec = &specs[i];
        if md.topic != topic {
            problems.add(format!(
                "record {i}: delivery report for topic {}",
                md.topic
            ));
        }
        if let Some(p) = spec.partition {
            if md.partition != p {
                problems.add(format!(
                    "record {i}: explicit partition {p}, delivered to {}",
                    md.partition
                ));
            }
        } else if let Some(k) = &spec.key {
            let n = NonZeroU32::new(partitions as u32).expect("partitions > 0");
            let want = partition_for_key(k, n) as i32;
            if md.partition != want {
                problems.add(format!(
                    "record {i}: key {} delivered to partition {}, murmur2 says {want}",
                    show(&spec.key),
                    md.partition
                ));
            }
        }
        if let Some(ts) = spec.timestamp {
            if md.timestamp != ts {
                problems.add(format!(
                    "record {i}: delivery report timestamp {} != {ts}",
                    md.timestamp
                ));
            }
        }
        let size = |b: &Option<Vec<u8>>| b.as_ref().map_or(-1, |b| b.len() as i32);
        if (md.serialized_key_size, md.serialized_value_size)
            != (size(&spec.key), size(&spec.value))
        {
            problems.add(format!(
                "record {i}: delivery report sizes key {} value {}, sent {} and {}",
                md.serialized_key_size,
                md.serialized_value_size,
                size(&spec.key),
                size(&spec.value)
            ));
        }
        if let Some(j) = by_position.insert((md.partition, md.offset), i) {
            problems.add(format!(
                "records {j} and {i}: same delivery report position {}@{}",
                md.partition, md.offset
            ));
        }
    }
    let mut seen: HashMap<(i32, i64), usize> = HashMap::new();
    let mut last_index: BTreeMap<i32, usize> = BTreeMap::new();
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for d in dump.iter().filter(|d| d.topic == topic) {
        let pos = (d.partition, d.offset);
        *seen.entry(pos).or_insert(0) += 1;
        if seen[&pos] > 1 {
            problems.add(format!(
                "{client} read {}@{} more than once",
                d.partition, d.offset
            ));
            continue;
        }
        offsets.entry(d.partition).or_default().push(d.offset);
        let Some(&i) = by_position.get(&pos) else {
            problems.add(format!(
                "{client} read {}@{} (key {}), which no delivery report names",
                d.partition,
                d.offset,
                show(&d.key)
            ));
            continue;
        };
        if let Some(prev) = last_index.insert(d.partition, i) {
            if i <= prev {
                problems.add(format!(
                    "partition {}: {client} read record {i} after record {prev} (not produce order)",
                    d.partition
                ));
            }
        }
        let spec = &specs[i];
        let at = format!("record {i} ({}@{}) read by {client}", d.partition, d.offset);
        if d.key != spec.key {
            problems.add(format!(
                "{at}: key {}, sent {}",
                show(&d.key),
                show(&spec.key)
            ));
        }
        if d.value != spec.value {
            problems.add(format!(
                "{at}: value {}, sent {}",
                show(&d.value),
                show(&spec.value)
            ));
        }
        if d.headers != spec.headers {
            problems.add(format!(
                "{at}: headers {}, sent {}",
                show_headers(&d.headers),
                show_headers(&spec.headers)
            ));
        }
        let want_ts = spec.timestamp.unwrap_or(mds[i].timestamp);
        if d.timestamp != want_ts || d.timestamp_type != "create" {
            problems.add(format!(
                "{at}: timestamp {} ({}), sent {want_ts} (CreateTime)",
                d.timestamp, d.timestamp_type
            ));
        }
    }
    for (pos, i) in &by_position {
        if !seen.contains_key(pos) {
            problems.add(format!(
                "record {i} (delivered to {}@{}) was never read by {client}",
                pos.0, pos.1
            ));
        }
    }
    for (p, mut offs) in offsets {
        offs.sort_unstable();
        let n = offs.len() as i64;
        if offs.first() != Some(&0) || offs.last() != Some(&(n - 1)) {
            problems.add(format!(
                "partition {p}: {client} read {n} records with offsets {:?}..={:?} (expected 0..{n})",
                offs.first(),
                offs.last()
            ));
        }
    }
    problems.into_result(&format!("{client} reading {topic}"))
}

// ---------------------------------------------------------------------------------------------
// Deterministic content
// ---------------------------------------------------------------------------------------------

/// splitmix64: deterministic, so a failure names the same record on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Random bytes, every value 0x00..=0xff possible (high-bit bytes included).
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// `count` varied records for a topic with `partitions` partitions.
fn varied_specs(count: usize, partitions: i32, seed: u64) -> Vec<Spec> {
    let mut rng = Rng(seed);
    // 2020-01-01T00:00:00Z; the topics keep records forever (retention.ms=-1).
    let base_ts: i64 = 1_577_836_800_000;
    (0..count)
        .map(|i| {
            let key = match i % 8 {
                0 | 7 => None,
                1 => Some(Vec::new()),
                2 | 6 => Some(format!("key-{}", i % 37).into_bytes()),
                3 => {
                    let len = 1 + rng.below(32);
                    Some(rng.bytes(len))
                }
                4 => Some(format!("ключ-🔑-{}", i % 23).into_bytes()),
                _ => {
                    let len = 200 + rng.below(400);
                    Some(rng.bytes(len))
                }
            };
            let value = match i % 10 {
                0 => None, // tombstone
                1 => Some(Vec::new()),
                2 => {
                    let len = rng.below(64);
                    Some(rng.bytes(len))
                }
                3 => {
                    let len = rng.below(4000);
                    Some(rng.bytes(len))
                }
                _ => {
                    // Compressible: a repeated text plus a random tail.
                    let mut v = format!("value-{i}-").repeat(1 + rng.below(60)).into_bytes();
                    let len = rng.below(16);
                    v.extend(rng.bytes(len));
                    Some(v)
                }
            };
            let headers: Headers = match i % 6 {
                0 => Vec::new(),
                1 => vec![("h".into(), Some(b"v".to_vec()))],
                2 => vec![
                    ("trace-id".into(), Some(rng.bytes(16))),
                    ("null-value".into(), None),
                    ("empty".into(), Some(Vec::new())),
                    (
                        "ヘッダー-ключ-🚀".into(),
                        Some("ünïcödé ✓".as_bytes().to_vec()),
                    ),
                    ("dup".into(), Some(b"first".to_vec())),
                    ("dup".into(), Some(b"second".to_vec())),
                    ("dup".into(), None),
                ],
                3 => vec![(String::new(), None)],
                4 => (0..20)
                    .map(|j| {
                        let len = rng.below(40);
                        (format!("h{j}"), Some(rng.bytes(len)))
                    })
                    .collect(),
                _ => vec![("only-null".into(), None)],
            };
            let timestamp = match i % 97 {
                0 => i as i64, // tiny, but valid, CreateTime
                _ => base_ts + i as i64 * 1_009 + rng.below(1_000) as i64,
            };
            let partition = (i % 17 == 3).then_some((i as i32 / 17) % partitions);
            Spec {
                partition,
                key,
                value,
                headers,
                timestamp: Some(timestamp),
            }
        })
        .collect()
}

/// Sends every record in order, then waits for all delivery reports (each must succeed).
async fn produce_all(producer: &Producer, topic: &str, specs: &[Spec]) -> Vec<RecordMetadata> {
    let started = Instant::now();
    let mut futures = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let f = producer
            .send(s.record(topic))
            .await
            .unwrap_or_else(|e| panic!("send of record {i} to {topic}: {e}"));
        futures.push(f);
    }
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    let mut out = Vec::with_capacity(futures.len());
    for (i, f) in futures.into_iter().enumerate() {
        let md = tokio::time::timeout_at(deadline, f)
            .await
            .unwrap_or_else(|_| {
                panic!("record {i} to {topic} not acknowledged within {DELIVERY_TIMEOUT:?}")
            })
            .unwrap_or_else(|e| panic!("delivery of record {i} to {topic} failed: {e}"));
        out.push(md);
    }
    println!(
        "[client-interop] produced {} records to {topic} in {:.1}s",
        specs.len(),
        started.elapsed().as_secs_f64()
    );
    out
}

fn producer_config(bootstrap: &str, extra: &[(&str, &str)]) -> ProducerConfig {
    let mut b = ProducerConfig::builder().bootstrap_servers(bootstrap);
    for (k, v) in extra {
        b = b.set(*k, *v);
    }
    b.build().expect("producer config")
}

fn topic_arg(name: &str, partitions: i32, count: usize) -> [String; 2] {
    ["--topic".into(), format!("{name}:{partitions}:{count}")]
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Records produced by our client, with every codec, are read by confluent-kafka and by
/// kafka-python with the same partition, offset, key, value, headers and timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn our_records_read_back_identically_by_confluent_kafka_and_kafka_python() {
    python();
    let broker = broker_lite::Broker::start_ephemeral()
        .await
        .expect("start broker-lite");
    let bootstrap = broker.bootstrap_servers();
    let mut c = broker_api::connect(&bootstrap).await;
    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    let mut runs = Vec::new();
    for (n, (name, codec)) in codecs.iter().enumerate() {
        let topic = format!("ours-{name}");
        broker_api::create_topic(
            &mut c,
            &topic,
            CONTENT_PARTITIONS,
            &[("retention.ms", "-1")],
        )
        .await;
        // Defaults otherwise (idempotent: the consumers read batches with producer ids).
        let producer = Producer::new(producer_config(&bootstrap, &[("compression.type", name)]))
            .expect("producer");
        let specs = varied_specs(CONTENT_COUNT, CONTENT_PARTITIONS, 0xC0DE_0000 + n as u64);
        let mds = produce_all(&producer, &topic, &specs).await;
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
        // The broker stores batches as sent: every one must carry the codec we asked for.
        let mut stored: BTreeMap<String, usize> = BTreeMap::new();
        for p in 0..CONTENT_PARTITIONS {
            for b in broker_api::fetch_all(&mut c, &topic, p, 0).await {
                let codec = b.compression().expect("known codec");
                *stored.entry(format!("{codec:?}")).or_insert(0) += 1;
            }
        }
        println!("[client-interop] {topic}: stored batches by codec {stored:?}");
        assert_eq!(
            stored.keys().cloned().collect::<Vec<_>>(),
            [format!("{codec:?}")],
            "{topic}: batches stored with {stored:?}"
        );
        runs.push((topic, specs, mds));
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let mut topic_args: Vec<String> = Vec::new();
    for (topic, specs, _) in &runs {
        topic_args.extend(topic_arg(topic, CONTENT_PARTITIONS, specs.len()));
    }
    for (client, script) in [
        ("confluent-kafka", "read_topic_confluent.py"),
        ("kafka-python", "read_topic_kafka_python.py"),
    ] {
        let out = dir.path().join(format!("{client}.jsonl"));
        let mut args = topic_args.clone();
        args.extend(["--out".into(), out.display().to_string()]);
        let summary = run_script(&bootstrap, script, &args).await;
        let dump = read_dump(&out);
        assert_eq!(
            summary["lines"].as_u64(),
            Some(dump.len() as u64),
            "{summary}"
        );
        for (topic, specs, mds) in &runs {
            if let Err(e) = compare(client, topic, CONTENT_PARTITIONS, specs, mds, &dump) {
                panic!("{e}");
            }
        }
    }
    broker.shutdown().await;
}

/// 1,000 keys land on the same partition numbers whether librdkafka with
/// `partitioner=murmur2_random` or our producer (default partitioner) wrote them, on 7 and on
/// 32 partitions. Checked on the delivery reports of both and on the broker's logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyed_placement_matches_librdkafka_murmur2_random() {
    python();
    let broker = broker_lite::Broker::start_ephemeral()
        .await
        .expect("start broker-lite");
    let bootstrap = broker.bootstrap_servers();
    let mut c = broker_api::connect(&bootstrap).await;

    let mut rng = Rng(0x5EED_4B45);
    let keys: Vec<Vec<u8>> = (0..KEY_COUNT)
        .map(|i| match i % 6 {
            // An empty key is a key (Java hashes it; librdkafka too, unlike a null key).
            _ if i == 0 => Vec::new(),
            0 => format!("user-{i}").into_bytes(),
            1 => {
                let len = 1 + rng.below(64);
                rng.bytes(len)
            }
            2 => format!("клиент-{i}-🚀").into_bytes(),
            3 => {
                let len = 64 + rng.below(240);
                rng.bytes(len)
            }
            // 1 to 3 bytes: only murmur2's tail handling (high-bit tail bytes included).
            4 => {
                let len = 1 + rng.below(3);
                rng.bytes(len)
            }
            _ => (i as u64).to_be_bytes().to_vec(),
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let keys_file = dir.path().join("keys.json");
    let encoded: Vec<String> = keys.iter().map(|k| b64_encode(k)).collect();
    std::fs::write(&keys_file, Value::from(encoded).to_string()).expect("write keys");

    for p in KEY_PARTITIONS {
        broker_api::create_topic(&mut c, &format!("rdkafka-keys-{p}"), p, &[]).await;
        broker_api::create_topic(&mut c, &format!("ours-keys-{p}"), p, &[]).await;
    }

    // librdkafka.
    let out = dir.path().join("rdkafka.jsonl");
    let mut args: Vec<String> = vec![
        "--keys".into(),
        keys_file.display().to_string(),
        "--partitioner".into(),
        "murmur2_random".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    for p in KEY_PARTITIONS {
        args.extend(["--topic".into(), format!("rdkafka-keys-{p}")]);
    }
    let summary = run_script(&bootstrap, "produce_keys_confluent.py", &args).await;
    assert_eq!(
        summary["produced"].as_u64(),
        Some((KEY_COUNT * KEY_PARTITIONS.len()) as u64),
        "{summary}"
    );
    let reports = read_dump(&out);

    // Ours: default settings (default partitioner).
    let producer = Producer::new(producer_config(&bootstrap, &[])).expect("producer");
    let specs: Vec<Spec> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Spec {
            partition: None,
            key: Some(k.clone()),
            value: Some(i.to_string().into_bytes()),
            headers: Vec::new(),
            timestamp: None,
        })
        .collect();
    let mut ours: BTreeMap<i32, Vec<RecordMetadata>> = BTreeMap::new();
    for p in KEY_PARTITIONS {
        ours.insert(
            p,
            produce_all(&producer, &format!("ours-keys-{p}"), &specs).await,
        );
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");

    let index_of = |value: &Option<Vec<u8>>| -> usize {
        let v = value.as_deref().expect("value");
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected value {v:?}"))
    };
    let mut problems = Problems::default();
    for p in KEY_PARTITIONS {
        let rd_topic = format!("rdkafka-keys-{p}");
        let our_topic = format!("ours-keys-{p}");
        // librdkafka's delivery reports: key index -> partition.
        let mut rd: Vec<Option<i32>> = vec![None; KEY_COUNT];
        for r in reports.iter().filter(|r| r.topic == rd_topic) {
            let i = index_of(&r.value);
            assert_eq!(r.key.as_ref(), Some(&keys[i]), "librdkafka report {r:?}");
            assert!(
                rd[i].replace(r.partition).is_none(),
                "two reports for key {i}"
            );
        }
        let rd: Vec<i32> = rd
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.unwrap_or_else(|| panic!("no librdkafka report for key {i}")))
            .collect();
        let our: Vec<i32> = ours[&p].iter().map(|md| md.partition).collect();
        // The broker's logs agree with both sides' delivery reports.
        for (topic, reported) in [(&rd_topic, &rd), (&our_topic, &our)] {
            let mut logged: Vec<Option<i32>> = vec![None; KEY_COUNT];
            for part in 0..p {
                for b in broker_api::fetch_all(&mut c, topic, part, 0).await {
                    for r in broker_api::records_of(&[b]) {
                        let i = index_of(&r.value.map(|v| v.to_vec()));
                        assert_eq!(r.key.as_deref(), Some(&keys[i][..]), "{topic}: key of {i}");
                        assert!(
                            logged[i].replace(part).is_none(),
                            "{topic}: key {i} stored twice"
                        );
                    }
                }
            }
            for i in 0..KEY_COUNT {
                assert_eq!(
                    logged[i],
                    Some(reported[i]),
                    "{topic}: key {i} stored in partition {:?}, delivery report said {}",
                    logged[i],
                    reported[i]
                );
            }
        }
        let used: HashSet<i32> = our.iter().copied().collect();
        assert_eq!(
            used.len(),
            p as usize,
            "{p} partitions: keys used only {used:?}"
        );
        for i in 0..KEY_COUNT {
            if rd[i] != our[i] {
                problems.add(format!(
                    "{p} partitions: key {i} {} -> librdkafka partition {}, ours {}",
                    show(&Some(keys[i].clone())),
                    rd[i],
                    our[i]
                ));
            }
        }
    }
    problems.check("keyed placement, librdkafka murmur2_random vs ours");
    broker.shutdown().await;
}

/// Our producer with default settings (idempotent) writes 100,000 records that librdkafka
/// reads back complete, in produce order per partition, with no duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_producer_100k_read_back_by_confluent_kafka() {
    python();
    let broker = broker_lite::Broker::start_ephemeral()
        .await
        .expect("start broker-lite");
    let bootstrap = broker.bootstrap_servers();
    let mut c = broker_api::connect(&bootstrap).await;
    let topic = "ours-bulk";
    broker_api::create_topic(&mut c, topic, BULK_PARTITIONS, &[]).await;
    let producer = Producer::new(producer_config(&bootstrap, &[])).expect("producer");
    assert!(
        producer.config().enable_idempotence,
        "idempotence is on by default"
    );
    // Keyed (murmur2) and unkeyed (sticky) records, small headers now and then; the
    // producer stamps the timestamps.
    let specs: Vec<Spec> = (0..BULK_COUNT)
        .map(|i| Spec {
            partition: None,
            key: (i % 10 != 9).then(|| format!("k-{}", i % 1000).into_bytes()),
            value: Some(format!("v-{i}").into_bytes()),
            headers: if i % 7 == 0 {
                vec![("idx".into(), Some(i.to_string().into_bytes()))]
            } else {
                Vec::new()
            },
            timestamp: None,
        })
        .collect();
    let mds = produce_all(&producer, topic, &specs).await;
    let pid = producer.producer_id_and_epoch();
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
    // Idempotent: every stored batch carries the producer id, and per partition the
    // sequence numbers run from 0 without gaps.
    let pid = pid.expect("idempotent producer has a producer id");
    for p in 0..BULK_PARTITIONS {
        let mut next_seq = 0i64;
        for b in broker_api::fetch_all(&mut c, topic, p, 0).await {
            assert_eq!(
                (b.producer_id(), b.producer_epoch()),
                (pid.producer_id, pid.epoch),
                "partition {p} batch at {}",
                b.base_offset()
            );
            assert_eq!(
                i64::from(b.base_sequence()),
                next_seq,
                "partition {p} batch at {}: sequence",
                b.base_offset()
            );
            next_seq += i64::from(b.last_offset_delta()) + 1;
        }
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("bulk.jsonl");
    let mut args: Vec<String> = topic_arg(topic, BULK_PARTITIONS, BULK_COUNT).into();
    args.extend(["--out".into(), out.display().to_string()]);
    let summary = run_script(&bootstrap, "read_topic_confluent.py", &args).await;
    let dump = read_dump(&out);
    assert_eq!(dump.len(), BULK_COUNT, "{summary}");
    if let Err(e) = compare(
        "confluent-kafka",
        topic,
        BULK_PARTITIONS,
        &specs,
        &mds,
        &dump,
    ) {
        panic!("{e}");
    }
    broker.shutdown().await;
}

#[test]
fn base64_matches_python() {
    for (raw, enc) in [
        (&b""[..], ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
        (b"\xff\x00\xfe\x80", "/wD+gA=="),
    ] {
        assert_eq!(b64_encode(raw), enc);
        assert_eq!(b64_decode(enc), raw);
    }
}

/// `compare` itself: it accepts a faithful dump and reports each kind of difference the
/// interop tests are meant to catch.
#[test]
fn compare_reports_every_kind_of_difference() {
    let topic = "t";
    let partitions = 3;
    let specs = varied_specs(60, partitions, 7);
    // Delivery reports as our producer would give them: offsets in send order per partition.
    let mut next: HashMap<i32, i64> = HashMap::new();
    let mds: Vec<RecordMetadata> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = NonZeroU32::new(partitions as u32).unwrap();
            let partition = s
                .partition
                .or_else(|| s.key.as_ref().map(|k| partition_for_key(k, n) as i32))
                .unwrap_or(i as i32 % partitions);
            let offset = next.entry(partition).or_insert(0);
            *offset += 1;
            RecordMetadata {
                topic: topic.into(),
                partition,
                offset: *offset - 1,
                timestamp: s.timestamp.unwrap(),
                serialized_key_size: s.key.as_ref().map_or(-1, |k| k.len() as i32),
                serialized_value_size: s.value.as_ref().map_or(-1, |v| v.len() as i32),
            }
        })
        .collect();
    let faithful: Vec<Dumped> = specs
        .iter()
        .zip(&mds)
        .map(|(s, md)| Dumped {
            topic: topic.into(),
            partition: md.partition,
            offset: md.offset,
            key: s.key.clone(),
            value: s.value.clone(),
            headers: s.headers.clone(),
            timestamp: s.timestamp.unwrap(),
            timestamp_type: "create".into(),
        })
        .collect();
    compare("faithful", topic, partitions, &specs, &mds, &faithful).expect("faithful dump");
    // Index of the first record with a given property.
    let find = |f: &dyn Fn(&Spec) -> bool| specs.iter().position(f).expect("such a record");
    let null_header = find(&|s| s.headers.iter().any(|(_, v)| v.is_none()));
    let two_headers = find(&|s| s.headers.len() >= 2);
    let empty_key = find(&|s| s.key.as_deref() == Some(&[][..]));
    let tombstone = find(&|s| s.value.is_none());
    type Mutation = Box<dyn Fn(&mut Vec<Dumped>)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "null header value read as empty",
            Box::new(move |d| {
                for h in &mut d[null_header].headers {
                    if h.1.is_none() {
                        h.1 = Some(Vec::new());
                    }
                }
            }),
        ),
        (
            "header order",
            Box::new(move |d| d[two_headers].headers.swap(0, 1)),
        ),
        (
            "empty key read as null",
            Box::new(move |d| d[empty_key].key = None),
        ),
        (
            "tombstone read as empty",
            Box::new(move |d| d[tombstone].value = Some(Vec::new())),
        ),
        ("timestamp", Box::new(|d| d[5].timestamp += 1)),
        (
            "timestamp type",
            Box::new(|d| d[5].timestamp_type = "log_append".into()),
        ),
        (
            "missing record",
            Box::new(|d| {
                d.remove(10);
            }),
        ),
        (
            "duplicate record",
            Box::new(|d| {
                let r = d[10].clone();
                d.push(r);
            }),
        ),
        (
            "partition",
            Box::new(move |d| d[10].partition = (d[10].partition + 1) % 3),
        ),
        (
            "out of order",
            Box::new(|d| {
                let p = d[0].partition;
                let j = (1..d.len()).find(|&j| d[j].partition == p).unwrap();
                d.swap(0, j);
            }),
        ),
    ];
    for (what, mutate) in mutations {
        let mut dump = faithful.clone();
        mutate(&mut dump);
        assert!(
            compare("mutated", topic, partitions, &specs, &mds, &dump).is_err(),
            "compare missed: {what}"
        );
    }
}
