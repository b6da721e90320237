//! Mixed-client consumer groups: kafka-client's `Consumer` and a third-party consumer
//! (confluent-kafka / librdkafka, kafka-python) in ONE group, against broker-lite, reading a
//! topic our producer wrote.
//!
//! Each scenario runs the same story:
//! 1. the first member joins alone and owns every partition;
//! 2. the second joins: both must agree on one assignment (disjoint, complete, the shape the
//!    strategy implies: for `range` contiguous halves and for `roundrobin` partitions dealt
//!    in turn, both in member-id order exactly as Kafka's assignors, whichever client led;
//!    3 + 3 for `cooperative-sticky`), which is also what the broker recorded for each
//!    member (DescribeGroups);
//! 3. together they read every record exactly once, each committing after processing a poll
//!    and on revocation (at-least-once without duplicates when nobody crashes);
//! 4. the Python member is told to stop while it still has records to read: it commits and
//!    leaves; our consumer takes its partitions over from exactly the offsets it committed;
//! 5. later records are read once more, and the committed offsets end at the log end.
//!
//! Then Python-only groups through restarts (`python_group_restarts`): a member process is
//! stopped mid-stream and restarted (resuming exactly at its commits), the broker restarts
//! on the same data directory before a new process resumes, and again under a running
//! process, which rejoins and reads what follows exactly once.
//!
//! kafka-python 3 refuses blocking calls (commit) inside a synchronous rebalance listener, so
//! its member commits before a rebalance through the consumer's own pre-rebalance commit
//! (`enable_auto_commit` with an hour-long interval) instead of a listener; it also waits for
//! the topic's metadata before subscribing, and subscribes with the pattern `^<topic>$` so
//! that it joins only after a metadata update (see the script for the races these avoid).
//!
//! The Python side is `tests/interop/group_member_confluent.py` /
//! `group_member_kafka_python.py`, driven over stdin ("stop") and reporting JSON lines on
//! stdout (`group_member_common.py`). The interpreter is `KAFKA_INTEROP_PYTHON` (default
//! `<workspace>/.venv/bin/python`, made by `scripts/setup-interop.sh`); when it is missing
//! or cannot import the clients the tests fail, never skip.

mod consumer_common;
mod producer_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_lite::Broker;
use consumer_common::*;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig};
use kafka_client::consumer::{Consumer, TopicPartition};
use kafka_integration_tests::broker_api;
use kafka_integration_tests::interop::{python, script_command, tail, SETUP_HINT};
use kafka_wire::consumer_protocol::decode_assignment;
use kafka_wire::messages::DescribeGroupsRequest;
use kafka_wire::ErrorCode;
use producer_common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::task::JoinHandle;

const PARTITIONS: i32 = 6;
const TOPIC: &str = "mixed";
/// Upper bound for a phase of a scenario.
const PHASE: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum PyClient {
    Confluent,
    KafkaPython,
}

impl PyClient {
    fn script(self) -> &'static str {
        match self {
            PyClient::Confluent => "group_member_confluent.py",
            PyClient::KafkaPython => "group_member_kafka_python.py",
        }
    }
}

#[derive(Debug, Default)]
struct PyState {
    assignment: BTreeSet<i32>,
    events: Vec<Value>,
    summary: Option<Value>,
}

/// A Python group member (a child process).
struct PyMember {
    script: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    state: Arc<Mutex<PyState>>,
    stderr: Arc<Mutex<String>>,
    stdout_task: JoinHandle<()>,
    stderr_task: JoinHandle<()>,
}

impl PyMember {
    fn start(
        client: PyClient,
        bootstrap: &str,
        group: &str,
        strategy: &str,
        delay_ms: u32,
        seen: &Seen,
    ) -> PyMember {
        PyMember::start_as("python", client, bootstrap, group, strategy, delay_ms, seen)
    }

    /// As [`start`](Self::start), the records it reads marked as `name`'s in `seen`.
    fn start_as(
        name: &'static str,
        client: PyClient,
        bootstrap: &str,
        group: &str,
        strategy: &str,
        delay_ms: u32,
        seen: &Seen,
    ) -> PyMember {
        let script = client.script();
        let mut child = script_command(script, bootstrap)
            .args(["--topic", TOPIC, "--group", group])
            .args(["--strategy", strategy, "--client-id", "python-member"])
            .args(["--delay-ms", &delay_ms.to_string()])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", python().display()));
        let stdin = child.stdin.take();
        let state: Arc<Mutex<PyState>> = Arc::default();
        let stdout = child.stdout.take().expect("stdout piped");
        let stdout_task = tokio::spawn({
            let (state, seen) = (state.clone(), seen.clone());
            async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        eprintln!("[{script}] {line}");
                        continue;
                    };
                    let ints = |key: &str| -> BTreeSet<i32> {
                        v[key]
                            .as_array()
                            .map(|a| a.iter().filter_map(|p| p.as_i64()).map(|p| p as i32))
                            .into_iter()
                            .flatten()
                            .collect()
                    };
                    let mut st = state.lock().unwrap();
                    match v["event"].as_str() {
                        Some("records") => {
                            let mut seen = seen.lock().unwrap();
                            for r in v["records"].as_array().into_iter().flatten() {
                                seen.push((
                                    r[0].as_i64().expect("partition") as i32,
                                    r[1].as_i64().expect("offset"),
                                    name.to_owned(),
                                ));
                            }
                            continue;
                        }
                        Some("assigned") => st.assignment = ints("assignment"),
                        Some("revoked") | Some("lost") => {
                            for p in ints("partitions") {
                                st.assignment.remove(&p);
                            }
                        }
                        Some("summary") => st.summary = Some(v.clone()),
                        _ => {}
                    }
                    println!("[{script}] {line}");
                    st.events.push(v);
                }
            }
        });
        let stderr: Arc<Mutex<String>> = Arc::default();
        let err_pipe = child.stderr.take().expect("stderr piped");
        let stderr_task = tokio::spawn({
            let stderr = stderr.clone();
            async move {
                let mut lines = BufReader::new(err_pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        PyMember {
            script,
            child,
            stdin,
            state,
            stderr,
            stdout_task,
            stderr_task,
        }
    }

    fn assigned(&self) -> BTreeSet<i32> {
        self.state.lock().unwrap().assignment.clone()
    }

    fn events(&self) -> Vec<Value> {
        self.state.lock().unwrap().events.clone()
    }

    fn stderr_tail(&self) -> String {
        tail(&self.stderr.lock().unwrap(), 4000).to_owned()
    }

    /// Fails the test when the script already exited.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); stderr:\n{}",
                self.script,
                self.stderr_tail()
            );
        }
    }

    /// Tells the member to stop (commit, report, leave) and waits for it; returns its
    /// summary.
    async fn stop(mut self) -> Value {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n").await;
            let _ = stdin.flush().await;
        }
        let status = match tokio::time::timeout(PHASE, self.child.wait()).await {
            Ok(s) => s.expect("wait for the script"),
            Err(_) => panic!(
                "{} did not stop within {PHASE:?}; stderr:\n{}",
                self.script,
                self.stderr_tail()
            ),
        };
        let _ = (&mut self.stdout_task).await;
        let _ = (&mut self.stderr_task).await;
        assert!(
            status.success(),
            "{} failed ({status}); stderr:\n{}",
            self.script,
            self.stderr_tail()
        );
        let summary = self.state.lock().unwrap().summary.clone();
        summary.unwrap_or_else(|| {
            panic!(
                "{} printed no summary; stderr:\n{}",
                self.script,
                self.stderr_tail()
            )
        })
    }
}

/// Our member ([`Member`], named "rust"): polls in its own task, processes (records) then
/// commits each poll, and commits on revocation.
fn rust_member(bootstrap: &str, group: &str, strategy: &str, seen: &Seen) -> Member {
    let config = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .group_id(group)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .partition_assignment_strategy([strategy])
        .heartbeat_interval(Duration::from_millis(200))
        .session_timeout(Duration::from_secs(6))
        .max_poll_interval(Duration::from_secs(30))
        .fetch_max_wait(Duration::from_millis(100));
    Member::start("rust", config, TOPIC, seen)
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// Waits until `check` holds and keeps holding for a second.
async fn until_stable(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + PHASE;
    let mut since: Option<Instant> = None;
    loop {
        match check() {
            Ok(()) => {
                if since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(1) {
                    return;
                }
            }
            Err(e) => {
                since = None;
                assert!(Instant::now() < deadline, "{what}: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Both members' views: disjoint, complete, both non-empty.
fn agreed(ours: &BTreeSet<i32>, theirs: &BTreeSet<i32>) -> Result<(), String> {
    let union: BTreeSet<i32> = ours.union(theirs).copied().collect();
    if ours.is_empty() || theirs.is_empty() || !ours.is_disjoint(theirs) || union.len() != 6 {
        return Err(format!("rust {ours:?}, python {theirs:?}"));
    }
    Ok(())
}

/// Waits until the first `per_partition` records of every partition were read, each exactly
/// once (and nothing else), calling `alive` meanwhile (this file's phase bound, instead of
/// [`consumer_common::read_exactly_once`]'s).
async fn read_exactly_once(seen: &Seen, per_partition: i64, alive: &mut dyn FnMut()) {
    let dups = read_all_within(seen, &first_n(PARTITIONS, per_partition), PHASE, alive).await;
    assert!(dups.is_empty(), "read more than once: {dups:?}");
}

/// The assignment the broker recorded for each member (by client id), from DescribeGroups,
/// and the client ids in member-id order (the order of Kafka's range and round-robin
/// assignors for dynamic members).
async fn broker_view(
    bootstrap: &str,
    group: &str,
) -> (String, BTreeMap<String, BTreeSet<i32>>, Vec<String>) {
    let mut c = broker_api::connect(bootstrap).await;
    let mut r = c
        .send(
            DescribeGroupsRequest {
                groups: vec![group.into()],
                ..Default::default()
            },
            5,
        )
        .await
        .expect("DescribeGroups");
    let g = r.groups.remove(0);
    assert_eq!(ErrorCode::from_code(g.error_code), ErrorCode::None);
    assert_eq!(g.group_state, "Stable");
    let mut ids: Vec<(String, String)> = g
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.client_id.clone()))
        .collect();
    ids.sort();
    let members = g
        .members
        .into_iter()
        .map(|m| {
            let (_, a) = decode_assignment(m.member_assignment).expect("assignment decodes");
            let ps = a
                .assigned_partitions
                .into_iter()
                .filter(|t| t.topic == TOPIC)
                .flat_map(|t| t.partitions)
                .collect();
            (m.client_id, ps)
        })
        .collect();
    (
        g.protocol_data,
        members,
        ids.into_iter().map(|(_, c)| c).collect(),
    )
}

/// What Kafka's `range` / `roundrobin` assignor gives the `i`-th of `n` members (in
/// member-id order) of a single topic with [`PARTITIONS`] partitions.
fn kafka_assignment(strategy: &str, i: usize, n: usize) -> BTreeSet<i32> {
    let parts = PARTITIONS as usize;
    match strategy {
        "range" => {
            let (per, extra) = (parts / n, parts % n);
            let start = i * per + i.min(extra);
            (start..start + per + usize::from(i < extra))
                .map(|p| p as i32)
                .collect()
        }
        "roundrobin" => (0..PARTITIONS).filter(|p| *p as usize % n == i).collect(),
        _ => unreachable!("{strategy}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum First {
    Rust,
    Python,
}

/// The scenario of the module documentation.
async fn mixed_group(client: PyClient, strategy: &str, first: First) {
    python();
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let group = format!("mixed-{strategy}-{client:?}-{first:?}");
    create_topic(&broker, TOPIC, PARTITIONS, &[]).await;
    let producer = producer(config(&bootstrap));
    produce_all(&producer, TOPIC, PARTITIONS, 50).await;
    let seen: Seen = Arc::default();
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();

    // 1. The first member alone owns everything.
    let (rust, mut py) = match first {
        First::Rust => {
            let rust = rust_member(&bootstrap, &group, strategy, &seen);
            until_stable("rust alone", || {
                (rust.assigned() == all)
                    .then_some(())
                    .ok_or(format!("{:?}", rust.assigned()))
            })
            .await;
            let py = PyMember::start(client, &bootstrap, &group, strategy, 5, &seen);
            (rust, py)
        }
        First::Python => {
            let mut py = PyMember::start(client, &bootstrap, &group, strategy, 5, &seen);
            let deadline = Instant::now() + PHASE;
            while py.assigned() != all {
                py.check_alive();
                assert!(
                    Instant::now() < deadline,
                    "python alone: {:?}; stderr:\n{}",
                    py.assigned(),
                    py.stderr_tail()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let rust = rust_member(&bootstrap, &group, strategy, &seen);
            (rust, py)
        }
    };

    // 2. One assignment, agreed by both members and recorded by the broker.
    py.check_alive();
    until_stable("assignment agreed", || {
        agreed(&rust.assigned(), &py.assigned()).map_err(|e| format!("{e}; {}", py.stderr_tail()))
    })
    .await;
    let (ours, theirs) = (rust.assigned(), py.assigned());
    assert_eq!((ours.len(), theirs.len()), (3, 3), "balanced");
    if strategy == "range" {
        let halves = [BTreeSet::from([0, 1, 2]), BTreeSet::from([3, 4, 5])];
        assert!(
            halves.contains(&ours) && halves.contains(&theirs),
            "range gives contiguous halves: rust {ours:?}, python {theirs:?}"
        );
    }
    let (protocol, members, order) = broker_view(&bootstrap, &group).await;
    assert_eq!(protocol, strategy, "the group's protocol");
    if strategy == "range" || strategy == "roundrobin" {
        // Exactly Kafka's algorithm, whichever client led (and so computed) the assignment.
        for (i, client) in order.iter().enumerate() {
            assert_eq!(
                members[client],
                kafka_assignment(strategy, i, 2),
                "{strategy}: {client} is member {i} in member-id order: {members:?}"
            );
        }
    }
    assert_eq!(
        members,
        BTreeMap::from([
            ("python-member".to_owned(), theirs.clone()),
            ("rust".to_owned(), ours.clone()),
        ]),
        "the broker's record of the assignment"
    );
    if strategy == "cooperative-sticky" {
        // Incremental: whoever was first gave up exactly what the other got, and lost nothing.
        match first {
            First::Rust => {
                let revoked: Vec<Event> = rust
                    .events()
                    .into_iter()
                    .filter(|e| !matches!(e, Event::Assigned(_)))
                    .collect();
                assert_eq!(revoked, vec![Event::Revoked(theirs.clone())]);
            }
            First::Python => {
                let revoked: Vec<Value> = py
                    .events()
                    .into_iter()
                    .filter(|e| matches!(e["event"].as_str(), Some("revoked" | "lost")))
                    .collect();
                assert_eq!(revoked.len(), 1, "{revoked:?}");
                assert_eq!(revoked[0]["event"], "revoked");
                let moved: BTreeSet<i32> = revoked[0]["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_i64().unwrap() as i32)
                    .collect();
                assert_eq!(moved, ours);
            }
        }
    }

    // 3. Together they read everything exactly once, and go on doing so.
    read_exactly_once(&seen, 50, &mut || rust.check_alive()).await;
    let mark = seen.lock().unwrap().len();
    produce_all(&producer, TOPIC, PARTITIONS, 50).await;
    read_exactly_once(&seen, 100, &mut || rust.check_alive()).await;
    let readers: BTreeSet<String> = seen.lock().unwrap()[mark..]
        .iter()
        .map(|r| r.2.clone())
        .collect();
    assert_eq!(
        readers,
        BTreeSet::from(["python".into(), "rust".into()]),
        "both read"
    );

    // 4. The Python member stops mid-stream (it processes slowly): it commits what it
    //    processed and leaves; we take over from there.
    produce_all(&producer, TOPIC, PARTITIONS, 200).await;
    let deadline = Instant::now() + PHASE;
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|(_, o, m)| *m == "python" && *o >= 100)
    {
        py.check_alive();
        assert!(Instant::now() < deadline, "python reads nothing new");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let py_events_before = py.events();
    let summary = promptly("python member stops", py.stop()).await;
    assert_eq!(summary["errors"], Value::Array(vec![]), "{summary}");
    let committed: BTreeMap<i32, i64> = summary["committed"]
        .as_object()
        .expect("committed offsets")
        .iter()
        .map(|(p, o)| (p.parse().unwrap(), o.as_i64().unwrap()))
        .collect();
    assert_eq!(
        committed.keys().copied().collect::<BTreeSet<_>>(),
        theirs,
        "python committed its partitions: {summary}"
    );
    until_stable("rust takes over", || {
        (rust.assigned() == all)
            .then_some(())
            .ok_or(format!("{:?}", rust.assigned()))
    })
    .await;
    read_exactly_once(&seen, 300, &mut || rust.check_alive()).await;
    let mut mid_stream = 0;
    {
        let seen = seen.lock().unwrap();
        for (&p, &c) in &committed {
            let py_last = seen
                .iter()
                .filter(|r| r.0 == p && r.2 == "python")
                .map(|r| r.1)
                .max();
            assert_eq!(
                py_last.map_or(0, |o| o + 1),
                c,
                "partition {p}: python committed exactly what it processed"
            );
            let ours_after: Vec<i64> = seen
                .iter()
                .filter(|r| r.0 == p && r.2 == "rust" && r.1 >= 100)
                .map(|r| r.1)
                .collect();
            if c < 300 {
                mid_stream += 1;
                assert_eq!(
                    ours_after.iter().min(),
                    Some(&c),
                    "partition {p}: we resume at python's committed offset"
                );
            }
        }
    }
    println!(
        "[{client:?}/{strategy}/{first:?} first] python committed {committed:?} \
         ({mid_stream} partitions taken over mid-stream); python events before stop: {}",
        py_events_before.len()
    );
    assert!(mid_stream > 0, "python finished before it was stopped");

    // 5. Later records: ours alone, committed to the end.
    produce_all(&producer, TOPIC, PARTITIONS, 10).await;
    read_exactly_once(&seen, 310, &mut || rust.check_alive()).await;
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition {
            topic: TOPIC.into(),
            partition: p,
        })
        .collect();
    let deadline = Instant::now() + PHASE;
    loop {
        let c = rust.consumer.committed(&tps).await.expect("committed");
        if c.values()
            .all(|o| o.as_ref().map(|o| o.offset) == Some(310))
        {
            break;
        }
        assert!(Instant::now() < deadline, "committed {c:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !rust.events().iter().any(|e| matches!(e, Event::Lost(_))),
        "{:?}",
        rust.events()
    );
    rust.stop().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_range_member_led_by_librdkafka() {
    mixed_group(PyClient::Confluent, "range", First::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_range_member_led_by_us() {
    mixed_group(PyClient::Confluent, "range", First::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_cooperative_sticky_member_led_by_us() {
    mixed_group(PyClient::Confluent, "cooperative-sticky", First::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_cooperative_sticky_member_led_by_librdkafka() {
    mixed_group(PyClient::Confluent, "cooperative-sticky", First::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_python_range_member_led_by_kafka_python() {
    mixed_group(PyClient::KafkaPython, "range", First::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_python_range_member_led_by_us() {
    mixed_group(PyClient::KafkaPython, "range", First::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_roundrobin_member_led_by_us() {
    mixed_group(PyClient::Confluent, "roundrobin", First::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_roundrobin_member_led_by_librdkafka() {
    mixed_group(PyClient::Confluent, "roundrobin", First::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_python_roundrobin_member_led_by_us() {
    mixed_group(PyClient::KafkaPython, "roundrobin", First::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_python_roundrobin_member_led_by_kafka_python() {
    mixed_group(PyClient::KafkaPython, "roundrobin", First::Python).await;
}

// ---------------------------------------------------------------------------------------------
// Python consumer groups through process and broker restarts
// ---------------------------------------------------------------------------------------------

/// A group broker on `dir`, listening on `listen` (so that it can restart on the same data
/// and port).
async fn durable_broker(dir: &Path, listen: std::net::SocketAddr) -> Broker {
    group_broker_builder()
        .data_dir(dir)
        .listen(listen)
        .start()
        .await
        .expect("broker starts")
}

/// The committed offsets of a member's summary; librdkafka reports a partition without a
/// commit as a negative offset (OFFSET_INVALID), kafka-python leaves it out.
fn committed_of(summary: &Value) -> BTreeMap<i32, i64> {
    summary["committed"]
        .as_object()
        .unwrap_or_else(|| panic!("committed offsets: {summary}"))
        .iter()
        .map(|(p, o)| (p.parse().unwrap(), o.as_i64().unwrap()))
        .filter(|(_, o)| *o >= 0)
        .collect()
}

/// The (first, last) offset `name` read of each partition.
fn span(seen: &Seen, name: &str) -> BTreeMap<i32, (i64, i64)> {
    let mut out: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for (p, o, m) in seen.lock().unwrap().iter() {
        if *m == name {
            let e = out.entry(*p).or_insert((*o, *o));
            *e = (e.0.min(*o), e.1.max(*o));
        }
    }
    out
}

/// How many records `name` read.
fn read_by(seen: &Seen, name: &str) -> usize {
    seen.lock().unwrap().iter().filter(|r| r.2 == name).count()
}

/// Waits until `py` (marked `name`) read at least `count` records.
async fn wait_reads(seen: &Seen, name: &str, count: usize, py: &mut PyMember) {
    let deadline = Instant::now() + PHASE;
    while read_by(seen, name) < count {
        py.check_alive();
        assert!(
            Instant::now() < deadline,
            "{name} read {} of {count}; stderr:\n{}",
            read_by(seen, name),
            py.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `name` committed exactly what it processed: one past its last record of each partition
/// it read, nothing for the others.
fn committed_what_it_processed(seen: &Seen, name: &str, committed: &BTreeMap<i32, i64>) {
    let processed: BTreeMap<i32, i64> = span(seen, name)
        .into_iter()
        .map(|(p, (_, last))| (p, last + 1))
        .collect();
    for (p, next) in &processed {
        assert_eq!(committed.get(p), Some(next), "{name}: partition {p}");
    }
}

/// `name` started each partition it read at the offset committed before it (0 without one).
fn resumed_at(seen: &Seen, name: &str, committed: &BTreeMap<i32, i64>) {
    let spans = span(seen, name);
    assert!(!spans.is_empty(), "{name} read nothing");
    for (p, (first, _)) in spans {
        assert_eq!(
            first,
            committed.get(&p).copied().unwrap_or(0),
            "{name}: partition {p} resumed at the committed offset"
        );
    }
}

/// Waits until the group committed `offset` for every partition.
async fn group_committed(bootstrap: &str, group: &str, offset: i64) {
    let c = Consumer::new(
        ConsumerConfig::builder()
            .bootstrap_servers(bootstrap)
            .group_id(group)
            .build()
            .unwrap(),
    )
    .unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition {
            topic: TOPIC.into(),
            partition: p,
        })
        .collect();
    let deadline = Instant::now() + PHASE;
    loop {
        let committed = c.committed(&tps).await.expect("committed");
        if committed
            .values()
            .all(|o| o.as_ref().map(|o| o.offset) == Some(offset))
        {
            break;
        }
        assert!(Instant::now() < deadline, "committed {committed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.close().await.unwrap();
}

/// A Python consumer group through restarts, against broker-lite with a data directory:
/// 1. a process reads part of the topic (processing slowly), is stopped: it commits what it
///    processed and leaves;
/// 2. the process restarts (a new one in the group): it resumes exactly at those commits,
///    and is stopped mid-stream again;
/// 3. the broker restarts (clean shutdown, same data and port), then a third process resumes
///    at the second one's commits and reads the rest: every record once over the three;
/// 4. the broker restarts again under the running process (everything it read committed):
///    it reconnects, rejoins (broker-lite brings groups back empty, so it loses its
///    partitions first) and reads the records produced after, each once, committing them.
async fn python_group_restarts(client: PyClient) {
    python();
    let dir = tempfile::tempdir().expect("data dir");
    let broker = durable_broker(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let addr = broker.local_addr();
    let bootstrap = broker.bootstrap_servers();
    let group = format!("restarts-{client:?}");
    create_topic(&broker, TOPIC, PARTITIONS, &[]).await;
    let p = producer(config(&bootstrap));
    produce_all(&p, TOPIC, PARTITIONS, 50).await;
    close(&p).await;
    let seen: Seen = Arc::default();
    let start = |name: &'static str, delay_ms: u32| {
        PyMember::start_as(name, client, &bootstrap, &group, "range", delay_ms, &seen)
    };

    // 1.
    let mut py1 = start("py1", 10);
    wait_reads(&seen, "py1", 60, &mut py1).await;
    let s1 = promptly("py1 stops", py1.stop()).await;
    assert_eq!(s1["errors"], Value::Array(vec![]), "{s1}");
    let c1 = committed_of(&s1);
    committed_what_it_processed(&seen, "py1", &c1);
    assert!(read_by(&seen, "py1") < 300, "py1 stopped mid-stream");

    // 2.
    let mut py2 = start("py2", 10);
    wait_reads(&seen, "py2", 60, &mut py2).await;
    let s2 = promptly("py2 stops", py2.stop()).await;
    assert_eq!(s2["errors"], Value::Array(vec![]), "{s2}");
    let c2 = committed_of(&s2);
    resumed_at(&seen, "py2", &c1);
    committed_what_it_processed(&seen, "py2", &c2);
    let mut c2_all = c1.clone();
    c2_all.extend(c2.iter().map(|(p, o)| (*p, *o)));
    assert!(
        read_by(&seen, "py1") + read_by(&seen, "py2") < 300,
        "py2 stopped mid-stream"
    );

    // 3.
    broker.shutdown().await;
    let broker = durable_broker(dir.path(), addr).await;
    let mut py3 = start("py3", 0);
    read_exactly_once(&seen, 50, &mut || py3.check_alive()).await;
    resumed_at(&seen, "py3", &c2_all);
    group_committed(&bootstrap, &group, 50).await;

    // 4. The member learns that the restarted broker does not know it (its heartbeat gets
    //    UNKNOWN_MEMBER_ID) and rejoins before anything is produced: a record fetched before
    //    that would be processed, its commit refused, and read again after the rejoin.
    let assigned = |py: &PyMember| {
        py.events()
            .iter()
            .filter(|e| e["event"] == "assigned")
            .count()
    };
    let before = assigned(&py3);
    broker.shutdown().await;
    let broker = durable_broker(dir.path(), addr).await;
    let deadline = Instant::now() + PHASE;
    while assigned(&py3) == before {
        py3.check_alive();
        assert!(
            Instant::now() < deadline,
            "py3 did not rejoin: {:?}",
            py3.events()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let p = producer(config(&bootstrap));
    produce_all(&p, TOPIC, PARTITIONS, 20).await;
    close(&p).await;
    read_exactly_once(&seen, 70, &mut || py3.check_alive()).await;
    let events = py3.events();
    let s3 = promptly("py3 stops", py3.stop()).await;
    // Only connection errors while the broker was away (librdkafka reports them).
    let errors: Vec<&str> = s3["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.as_str().unwrap_or_default())
        .filter(|e| !e.contains("Disconnected") && !e.contains("Connection refused"))
        .collect();
    assert!(errors.is_empty(), "{s3}");
    let c3 = committed_of(&s3);
    assert_eq!(
        c3,
        (0..PARTITIONS).map(|p| (p, 70)).collect::<BTreeMap<_, _>>(),
        "{s3}"
    );
    println!(
        "[{client:?}] py1 committed {c1:?}, py2 committed {c2:?}; py3 across the broker \
         restart: {:?}",
        events
            .iter()
            .filter(|e| e["event"] != "records")
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_group_resumes_after_process_and_broker_restarts() {
    python_group_restarts(PyClient::Confluent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_python_group_resumes_after_process_and_broker_restarts() {
    python_group_restarts(PyClient::KafkaPython).await;
}
