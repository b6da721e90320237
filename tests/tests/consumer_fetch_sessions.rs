//! Our consumer's incremental fetch sessions (KIP-227) against broker-lite, checked on the
//! wire: a tap (a TCP proxy the broker advertises as its address) decodes every Fetch request
//! and answer between the consumer and the broker.
//!
//! Every test checks what the consumer delivers (every record once, in offset order per
//! partition, except the re-delivery a `seek` back asks for) and the session protocol the
//! consumer speaks: at most one Fetch in flight at a time, and each request's session id and
//! epoch follow from the previous answer (a new session id → epoch 1, then +1; session id 0
//! → full requests; a request that got no answer → a full request closing the session). They
//! also check that the sessions broker-lite grants are used: incremental requests, partitions
//! forgotten on pause and unassignment. Against a broker that declines sessions (no cache
//! slots: session id 0 in every answer) the consumer stays sessionless.
//!
//! Closing the consumer closes its session as Java's fetcher does (`maybeCloseFetchSessions`):
//! one last Fetch naming the session with epoch -1 (FINAL_EPOCH) and no partitions, after
//! every regular fetch, answered before `close` returns; the broker forgets the session (a
//! raw incremental fetch naming it then gets FETCH_SESSION_ID_NOT_FOUND). No close is sent
//! without a session, nor by a close with a zero timeout, which returns at once.

mod consumer_common;
mod producer_common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_lite::Broker;
use bytes::{Bytes, BytesMut};
use consumer_common::consumer;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig, ConsumerConfigBuilder};
use kafka_client::consumer::{Consumer, ConsumerRecord, TopicPartition};
use kafka_client::producer::Producer;
use kafka_client::ProducerRecord;
use kafka_integration_tests::broker_api;
use kafka_wire::frame::{decode_request, decode_response};
use kafka_wire::messages::FetchRequest;
use kafka_wire::{ApiKey, ErrorCode, RequestBody, ResponseBody};
use producer_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const TOPICS: [&str; 2] = ["fs-a", "fs-b"];
const PARTITIONS: i32 = 3;
/// A long poll (`fetch.max.wait.ms`) longer than the [`PROMPTLY`] hang guard: what waits it
/// out fails the guard.
const LONG_POLL: Duration = Duration::from_secs(60);

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn all_partitions() -> Vec<TopicPartition> {
    TOPICS
        .iter()
        .flat_map(|t| (0..PARTITIONS).map(move |p| tp(t, p)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tap.
// ---------------------------------------------------------------------------------------

/// The answer to a Fetch request.
#[derive(Debug, Clone)]
struct FetchAnswer {
    error_code: i16,
    session_id: i32,
    partitions: usize,
}

/// A Fetch request the consumer sent.
#[derive(Debug, Clone)]
struct FetchSeen {
    conn: usize,
    version: i16,
    session_id: i32,
    epoch: i32,
    /// Partitions listed, topics by name (ids resolved through [`Tap::names`]).
    partitions: Vec<TopicPartition>,
    /// Partitions in `forgotten_topics_data`.
    forgotten: Vec<TopicPartition>,
    answer: Option<FetchAnswer>,
}

impl FetchSeen {
    fn is_full(&self) -> bool {
        self.epoch == 0 || self.epoch == -1
    }

    /// A request closing a session (KIP-227's FINAL_EPOCH naming a session id).
    fn is_session_close(&self) -> bool {
        self.epoch == -1 && self.session_id != 0
    }
}

#[derive(Debug, Default)]
struct TapLog {
    fetches: Vec<FetchSeen>,
    /// Regular fetches (not session closes, which go behind one) in flight per connection.
    in_flight: HashMap<usize, usize>,
    max_in_flight: usize,
    /// Proxied connections whose client side is still open.
    open: usize,
}

/// A proxy in front of the broker recording every Fetch request and answer.
struct Tap {
    addr: SocketAddr,
    log: Arc<Mutex<TapLog>>,
    /// Topic names by id (v13+ requests name topics by id).
    names: Arc<Mutex<HashMap<kafka_wire::Uuid, String>>>,
    /// Bumped to cut every proxied connection.
    cut: watch::Sender<u64>,
}

async fn read_frame(r: &mut OwnedReadHalf) -> Option<Bytes> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.ok()?;
    let n = usize::try_from(i32::from_be_bytes(len)).ok()?;
    if n > 200 << 20 {
        return None;
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

async fn write_frame(w: &mut OwnedWriteHalf, frame: &[u8]) -> Option<()> {
    let mut out = BytesMut::with_capacity(frame.len() + 4);
    out.extend_from_slice(&(frame.len() as i32).to_be_bytes());
    out.extend_from_slice(frame);
    w.write_all(&out).await.ok()
}

impl Tap {
    fn start(listener: TcpListener, upstream: SocketAddr) -> Tap {
        let addr = listener.local_addr().expect("tap address");
        let log = Arc::new(Mutex::new(TapLog::default()));
        let names = Arc::new(Mutex::new(HashMap::new()));
        let (cut, _) = watch::channel(0u64);
        let tap = Tap {
            addr,
            log: log.clone(),
            names: names.clone(),
            cut: cut.clone(),
        };
        tokio::spawn(async move {
            let mut next_conn = 0usize;
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                next_conn += 1;
                let conn = next_conn;
                log.lock().unwrap().open += 1;
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                // Fetch requests waiting for their answer: correlation id → (index, version).
                let pending: Arc<Mutex<HashMap<i32, (usize, i16)>>> = Arc::default();
                // Counted in `in_flight`: regular fetches, not session closes.
                let regular = |f: &FetchSeen| !f.is_session_close();
                let (done_tx, _) = watch::channel(false);
                let (log1, names1, pending1) = (log.clone(), names.clone(), pending.clone());
                let (mut cut1, done1) = (cut.subscribe(), done_tx.clone());
                let mut done_rx1 = done_tx.subscribe();
                tokio::spawn(async move {
                    loop {
                        let frame = tokio::select! {
                            f = read_frame(&mut cr) => f,
                            _ = cut1.changed() => None,
                            _ = done_rx1.changed() => None,
                        };
                        let Some(frame) = frame else { break };
                        if let Ok(req) = decode_request(frame.clone()) {
                            if let RequestBody::Fetch(f) = req.body {
                                let names = names1.lock().unwrap();
                                let name = |topic: &str, id: &kafka_wire::Uuid| -> String {
                                    if topic.is_empty() {
                                        names.get(id).cloned().unwrap_or_else(|| id.to_string())
                                    } else {
                                        topic.to_owned()
                                    }
                                };
                                let seen = FetchSeen {
                                    conn,
                                    version: req.header.request_api_version,
                                    session_id: f.session_id,
                                    epoch: f.session_epoch,
                                    partitions: f
                                        .topics
                                        .iter()
                                        .flat_map(|t| {
                                            let n = name(&t.topic, &t.topic_id);
                                            t.partitions.iter().map(move |p| tp(&n, p.partition))
                                        })
                                        .collect(),
                                    forgotten: f
                                        .forgotten_topics_data
                                        .iter()
                                        .flat_map(|t| {
                                            let n = name(&t.topic, &t.topic_id);
                                            t.partitions.iter().map(move |p| tp(&n, *p))
                                        })
                                        .collect(),
                                    answer: None,
                                };
                                let mut log = log1.lock().unwrap();
                                let counted = regular(&seen);
                                log.fetches.push(seen);
                                let index = log.fetches.len() - 1;
                                if counted {
                                    let n = log.in_flight.entry(conn).or_default();
                                    *n += 1;
                                    let n = *n;
                                    log.max_in_flight = log.max_in_flight.max(n);
                                }
                                pending1.lock().unwrap().insert(
                                    req.header.correlation_id,
                                    (index, req.header.request_api_version),
                                );
                            }
                        }
                        if write_frame(&mut sw, &frame).await.is_none() {
                            break;
                        }
                    }
                    log1.lock().unwrap().open -= 1;
                    let _ = done1.send(true);
                });
                let (mut cut2, done2) = (cut.subscribe(), done_tx.clone());
                let mut done_rx2 = done_tx.subscribe();
                let log2 = log.clone();
                tokio::spawn(async move {
                    loop {
                        let frame = tokio::select! {
                            f = read_frame(&mut sr) => f,
                            _ = cut2.changed() => None,
                            _ = done_rx2.changed() => None,
                        };
                        let Some(frame) = frame else { break };
                        if frame.len() >= 4 {
                            let correlation =
                                i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                            let fetch = pending.lock().unwrap().remove(&correlation);
                            if let Some((index, version)) = fetch {
                                let decoded =
                                    decode_response(frame.clone(), ApiKey::Fetch, version);
                                let mut log = log2.lock().unwrap();
                                if regular(&log.fetches[index]) {
                                    if let Some(n) = log.in_flight.get_mut(&conn) {
                                        *n = n.saturating_sub(1);
                                    }
                                }
                                if let Ok((_, ResponseBody::Fetch(r))) = decoded {
                                    log.fetches[index].answer = Some(FetchAnswer {
                                        error_code: r.error_code,
                                        session_id: r.session_id,
                                        partitions: r
                                            .responses
                                            .iter()
                                            .map(|t| t.partitions.len())
                                            .sum(),
                                    });
                                }
                            }
                        }
                        if write_frame(&mut cw, &frame).await.is_none() {
                            break;
                        }
                    }
                    let _ = done2.send(true);
                });
            }
        });
        tap
    }

    fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Closes every proxied connection (as a network failure would).
    fn cut_connections(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    fn fetches(&self) -> Vec<FetchSeen> {
        self.log.lock().unwrap().fetches.clone()
    }

    /// The most regular fetches in flight at once on a connection.
    fn max_in_flight(&self) -> usize {
        self.log.lock().unwrap().max_in_flight
    }

    /// Waits (up to [`PROMPTLY`]) until `done` holds of the log.
    async fn wait_until(&self, what: &str, done: impl Fn(&TapLog) -> bool) {
        let deadline = Instant::now() + PROMPTLY;
        while !done(&self.log.lock().unwrap()) {
            assert!(Instant::now() < deadline, "{what}: timed out");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until the consumer has a fetch in flight (caught up, it long-polls).
    async fn wait_for_long_poll(&self) {
        self.wait_until("a fetch in flight", |log| {
            log.in_flight.values().any(|n| *n > 0)
        })
        .await;
    }

    /// Waits until every proxied connection is closed: nothing more can go out.
    async fn wait_all_closed(&self) {
        self.wait_until("every connection closed", |log| log.open == 0)
            .await;
    }

    /// Whether the broker created any session.
    fn sessions_served(&self) -> bool {
        self.fetches()
            .iter()
            .any(|f| f.answer.as_ref().is_some_and(|a| a.session_id != 0))
    }
}

/// Checks the consumer's session protocol over the fetches seen (one broker): the first
/// request is full (epoch 0); then each request's metadata follows from the previous
/// request and its answer as KIP-227 (and Java's `FetchSessionHandler`) say. A session close
/// (epoch -1, no partitions) can only come last, naming the session of the request before it
/// (when that one was still in flight) or the one its answer set up.
fn check_session_protocol(fetches: &[FetchSeen]) {
    let mut expected: (i32, i32) = (0, 0);
    for (i, f) in fetches.iter().enumerate() {
        if f.is_session_close() {
            assert_eq!(
                i,
                fetches.len() - 1,
                "fetch #{i}: a fetch after the session close"
            );
            assert!(
                f.partitions.is_empty() && f.forgotten.is_empty(),
                "fetch #{i}: a session close lists partitions: {f:?}"
            );
            let previous = i.checked_sub(1).map(|p| fetches[p].session_id);
            assert!(
                f.session_id == expected.0 || Some(f.session_id) == previous,
                "fetch #{i} closes session {}, not the consumer's ({expected:?}, previous \
                 request's {previous:?})",
                f.session_id
            );
            continue;
        }
        assert_eq!(
            (f.session_id, f.epoch),
            expected,
            "fetch #{i} (conn {}, v{}) has the wrong session id / epoch; previous: {:?}",
            f.conn,
            f.version,
            i.checked_sub(1).map(|p| &fetches[p])
        );
        if f.is_full() {
            assert!(
                f.forgotten.is_empty(),
                "fetch #{i}: a full request forgets nothing"
            );
        }
        expected = match &f.answer {
            // No answer (connection cut): close the session, ask for a new one.
            None => (f.session_id, 0),
            Some(a) if a.error_code == ErrorCode::FetchSessionIdNotFound.code() => (0, 0),
            Some(a) if a.error_code != 0 => (f.session_id, 0),
            Some(a) if a.session_id == 0 => (0, 0),
            Some(a) if f.is_full() => (a.session_id, 1),
            Some(a) => {
                assert_eq!(
                    a.session_id, f.session_id,
                    "fetch #{i}: the session changed"
                );
                (
                    f.session_id,
                    if f.epoch == i32::MAX { 1 } else { f.epoch + 1 },
                )
            }
        };
    }
}

// ---------------------------------------------------------------------------------------
// Broker, producing, consuming.
// ---------------------------------------------------------------------------------------

/// A broker with `configs` behind a tap, with the test topics.
async fn setup(configs: &[(&str, &str)]) -> (Broker, Tap) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("tap listens");
    let port = listener.local_addr().expect("tap address").port();
    let mut builder = Broker::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .advertised_listener("127.0.0.1", port);
    for (k, v) in configs {
        builder = builder.config(k, v).expect("broker config");
    }
    let broker = builder.start().await.expect("broker starts");
    let tap = Tap::start(listener, broker.local_addr());
    let mut c = broker_api::connect(&broker.local_addr().to_string()).await;
    for t in TOPICS {
        broker_api::create_topic(&mut c, t, PARTITIONS, &[]).await;
        let m = broker_api::topic_metadata(&mut c, t).await;
        tap.names.lock().unwrap().insert(m.topic_id, t.to_owned());
    }
    (broker, tap)
}

fn value(tp: &TopicPartition, i: i64) -> String {
    format!("{}-{}-{i}", tp.topic, tp.partition)
}

/// Produces records `range` to every partition (value `<topic>-<partition>-<i>`, offset
/// `i`: each partition is written by one producer, in order), interleaving partitions.
async fn produce(p: &Producer, range: std::ops::Range<i64>) {
    let mut futs = Vec::new();
    for i in range {
        for t in all_partitions() {
            let rec = ProducerRecord {
                topic: t.topic.to_string(),
                partition: Some(t.partition),
                key: None,
                value: Some(Bytes::from(value(&t, i))),
                headers: Vec::new(),
                timestamp: None,
            };
            futs.push(send(p, rec).await);
        }
    }
    promptly("flush", p.flush()).await.expect("flush");
    delivered_all(futs).await;
}

/// A producer writing small batches (about 512 bytes), so that the consumer needs many fetches.
fn small_batch_producer(tap: &Tap) -> Producer {
    producer(config(&tap.bootstrap()).batch_size(512))
}

fn consumer_config(bootstrap: &str) -> ConsumerConfigBuilder {
    ConsumerConfig::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .fetch_max_wait(Duration::from_millis(100))
        // Small fetches: many rounds, so sessions live through many epochs.
        .max_partition_fetch_bytes(1024)
        .max_poll_records(100)
}

/// What the consumer delivered: the next offset expected per partition, checked record by
/// record (no gap, no duplicate, the expected value).
#[derive(Debug, Default)]
struct Tracker {
    next: BTreeMap<TopicPartition, i64>,
    /// Partitions that must deliver nothing now (paused or unassigned).
    silent: BTreeSet<TopicPartition>,
    delivered: usize,
}

impl Tracker {
    fn take(&mut self, records: Vec<ConsumerRecord>) {
        for r in records {
            let t = tp(&r.topic, r.partition);
            assert!(
                !self.silent.contains(&t),
                "{t} delivered offset {} while paused / unassigned",
                r.offset
            );
            let next = self.next.entry(t.clone()).or_insert(0);
            assert_eq!(
                r.offset, *next,
                "{t}: offset out of order, duplicated or missing"
            );
            let v = r
                .value
                .as_deref()
                .map(|v| String::from_utf8_lossy(v).into_owned());
            assert_eq!(
                v.as_deref(),
                Some(value(&t, r.offset).as_str()),
                "{t} at {}",
                r.offset
            );
            *next += 1;
            self.delivered += 1;
        }
    }

    fn next(&self, t: &TopicPartition) -> i64 {
        self.next.get(t).copied().unwrap_or(0)
    }

    /// Polls until `done` holds.
    async fn poll_until(&mut self, c: &Consumer, what: &str, done: impl Fn(&Tracker) -> bool) {
        let deadline = Instant::now() + PROMPTLY;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: timed out at {:?}",
                self.next
            );
            let records = c.poll(Duration::from_millis(200)).await.expect("poll");
            self.take(records);
        }
    }
}

/// The last session the broker granted the consumer (0: none).
fn granted_session(fetches: &[FetchSeen]) -> i32 {
    fetches
        .iter()
        .rev()
        .filter_map(|f| f.answer.as_ref())
        .map(|a| a.session_id)
        .find(|id| *id != 0)
        .unwrap_or(0)
}

/// Checks that the consumer closed its session with the broker when it closed: exactly one
/// session close, the last Fetch, naming the last session the broker granted, answered
/// without error. Returns the session closed.
fn check_session_closed(fetches: &[FetchSeen]) -> i32 {
    let closes: Vec<&FetchSeen> = fetches.iter().filter(|f| f.is_session_close()).collect();
    assert_eq!(closes.len(), 1, "session closes: {closes:?}");
    let close = closes[0];
    assert!(
        fetches.last().is_some_and(|f| f.is_session_close()),
        "the session close is not the last fetch"
    );
    assert_eq!(close.session_id, granted_session(fetches));
    assert!(close.partitions.is_empty() && close.forgotten.is_empty());
    let answer = close
        .answer
        .as_ref()
        .expect("the session close was answered");
    assert_eq!(answer.error_code, 0, "{close:?}");
    close.session_id
}

/// What the broker says of session `id` to a raw incremental fetch at an epoch the consumer
/// never reached: INVALID_FETCH_SESSION_EPOCH while the session exists (left unchanged),
/// FETCH_SESSION_ID_NOT_FOUND once it is gone.
async fn probe_session(broker: &Broker, id: i32) -> ErrorCode {
    let mut c = broker_api::connect(&broker.local_addr().to_string()).await;
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: i32::MAX,
        session_id: id,
        session_epoch: 1_000_000,
        ..Default::default()
    };
    let r = c
        .send(req, broker_api::FETCH_VERSION)
        .await
        .expect("raw Fetch");
    ErrorCode::from(r.error_code)
}

/// A consumer of every test partition holding a session with the broker, caught up on
/// `records` records per partition, with a long poll of `max_wait` in flight.
async fn caught_up_consumer(tap: &Tap, records: i64, max_wait: Duration) -> Consumer {
    let p = small_batch_producer(tap);
    produce(&p, 0..records).await;
    close(&p).await;
    let c = consumer(consumer_config(&tap.bootstrap()).fetch_max_wait(max_wait));
    c.assign(all_partitions()).expect("assign");
    let mut t = Tracker::default();
    t.poll_until(&c, "every record", |t| {
        all_partitions().iter().all(|x| t.next(x) == records)
    })
    .await;
    tap.wait_for_long_poll().await;
    assert!(
        tap.sessions_served(),
        "broker-lite did not grant a fetch session"
    );
    c
}

// ---------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_through_seek_pause_and_reassignment() {
    const FIRST: i64 = 400;
    const TOTAL: i64 = 800;
    let (_broker, tap) = setup(&[]).await;
    let p = small_batch_producer(&tap);
    produce(&p, 0..FIRST).await;

    let c = consumer(consumer_config(&tap.bootstrap()));
    c.assign(all_partitions()).expect("assign");
    // More records arrive while the consumer reads.
    let more = tokio::spawn(async move {
        produce(&p, FIRST..TOTAL).await;
        p
    });
    let mut t = Tracker::default();

    // Seek one partition back mid-way: its records come again from exactly there.
    t.poll_until(&c, "first records", |t| t.delivered >= 1200)
        .await;
    let a0 = tp("fs-a", 0);
    let target = (t.next(&a0) - 150).max(0);
    c.seek(&a0, target).expect("seek");
    let before_seek = t.next(&a0);
    t.next.insert(a0.clone(), target);
    t.poll_until(&c, "re-delivery after seek", |t| t.next(&a0) >= before_seek)
        .await;

    // Pause one partition: nothing from it until resumed, then from where it was.
    let b1 = tp("fs-b", 1);
    c.pause(std::slice::from_ref(&b1)).expect("pause");
    t.silent.insert(b1.clone());
    let paused_at = t.next(&b1);
    let seen = t.delivered;
    t.poll_until(&c, "records while paused", |t| t.delivered >= seen + 600)
        .await;
    assert_eq!(t.next(&b1), paused_at);
    c.resume(std::slice::from_ref(&b1)).expect("resume");
    t.silent.remove(&b1);

    // Unassign one partition: nothing from it afterwards.
    let a2 = tp("fs-a", 2);
    let kept: Vec<TopicPartition> = all_partitions().into_iter().filter(|x| *x != a2).collect();
    let seen = t.delivered;
    t.poll_until(&c, "records after resume", |t| t.delivered >= seen + 300)
        .await;
    c.assign(kept.clone()).expect("assign fewer");
    t.silent.insert(a2.clone());

    let p = more.await.expect("producer task");
    t.poll_until(&c, "every record", |t| {
        kept.iter().all(|x| t.next(x) == TOTAL)
    })
    .await;
    // Nothing more arrives.
    let extra = c.poll(Duration::from_millis(300)).await.expect("poll");
    assert!(extra.is_empty(), "unexpected records: {}", extra.len());
    c.close().await.expect("close");
    close(&p).await;

    let fetches = tap.fetches();
    assert_eq!(
        tap.max_in_flight(),
        1,
        "more than one fetch in flight on a connection"
    );
    check_session_protocol(&fetches);
    assert!(
        tap.sessions_served(),
        "broker-lite granted no fetch session"
    );
    let incremental: Vec<&FetchSeen> = fetches.iter().filter(|f| !f.is_full()).collect();
    assert!(
        incremental.len() >= 10,
        "only {} incremental fetches of {}",
        incremental.len(),
        fetches.len()
    );
    // Incremental requests list only some partitions, and the answers name only the
    // partitions with news.
    assert!(incremental.iter().any(|f| f.partitions.len() < kept.len()));
    assert!(incremental
        .iter()
        .any(|f| f.answer.as_ref().is_some_and(|a| a.partitions < kept.len())));
    // The paused and the unassigned partitions were forgotten.
    for gone in [&b1, &a2] {
        assert!(
            incremental.iter().any(|f| f.forgotten.contains(gone)),
            "{gone} was never forgotten"
        );
    }
    // After the unassignment, it is never fetched again.
    let last_a2 = fetches
        .iter()
        .rposition(|f| f.forgotten.contains(&a2))
        .unwrap();
    assert!(fetches[last_a2 + 1..]
        .iter()
        .all(|f| !f.partitions.contains(&a2)));
    check_session_closed(&fetches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connection_restarts_the_session_without_loss() {
    const HALF: i64 = 150;
    let (_broker, tap) = setup(&[]).await;
    let p = small_batch_producer(&tap);
    produce(&p, 0..HALF).await;
    // Long polls of 1 s: the cut below lands while one is in flight even on a loaded
    // machine (with 100 ms polls it could come just after the answer).
    let c = consumer(consumer_config(&tap.bootstrap()).fetch_max_wait(Duration::from_secs(1)));
    c.assign(all_partitions()).expect("assign");
    let mut t = Tracker::default();
    t.poll_until(&c, "first half", |t| {
        all_partitions().iter().all(|x| t.next(x) == HALF)
    })
    .await;
    // Caught up, the consumer long-polls: cut the connection under a fetch in flight.
    tap.wait_for_long_poll().await;
    tap.cut_connections();
    produce(&p, HALF..2 * HALF).await;
    t.poll_until(&c, "second half", |t| {
        all_partitions().iter().all(|x| t.next(x) == 2 * HALF)
    })
    .await;
    // A few more rounds on the new connection (no records left).
    let deadline = Instant::now() + PROMPTLY;
    let count = tap.fetches().len();
    while tap.fetches().len() < count + 5 {
        assert!(Instant::now() < deadline, "the consumer stopped fetching");
        let extra = c.poll(Duration::from_millis(100)).await.expect("poll");
        assert!(extra.is_empty(), "records after the end: {}", extra.len());
    }
    c.close().await.expect("close");
    close(&p).await;

    let fetches = tap.fetches();
    assert_eq!(tap.max_in_flight(), 1);
    check_session_protocol(&fetches);
    let conns: HashSet<usize> = fetches.iter().map(|f| f.conn).collect();
    assert!(conns.len() >= 2, "the consumer did not reconnect");
    assert!(
        tap.sessions_served(),
        "broker-lite granted no fetch session"
    );
    // The fetch cut off got no answer; the next one is full and names the old session
    // (closing it, asking for a new one: checked above); then the new session is used.
    let cut = fetches
        .iter()
        .position(|f| f.answer.is_none())
        .expect("a fetch without answer");
    assert!(cut + 1 < fetches.len());
    let after = &fetches[cut + 1];
    assert!(after.is_full() && after.session_id != 0, "{after:?}");
    assert!(fetches[cut + 1..].iter().any(|f| !f.is_full()));
    // The session closed is the one on the new connection.
    check_session_closed(&fetches);
    assert_eq!(fetches.last().unwrap().conn, fetches[cut + 1].conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_sessions_gets_full_requests() {
    const TOTAL: i64 = 200;
    let (_broker, tap) = setup(&[("max.incremental.fetch.session.cache.slots", "0")]).await;
    let p = small_batch_producer(&tap);
    produce(&p, 0..TOTAL).await;
    let c = consumer(consumer_config(&tap.bootstrap()));
    c.assign(all_partitions()).expect("assign");
    let mut t = Tracker::default();
    t.poll_until(&c, "every record", |t| {
        all_partitions().iter().all(|x| t.next(x) == TOTAL)
    })
    .await;
    c.close().await.expect("close");
    close(&p).await;

    let fetches = tap.fetches();
    assert!(
        !tap.sessions_served(),
        "the broker created a session with no cache slots"
    );
    check_session_protocol(&fetches);
    assert!(fetches.len() >= 2);
    // Full requests only, and no session close at close: there was no session.
    assert!(fetches.iter().all(|f| (f.session_id, f.epoch) == (0, 0)));
    // Every request lists every fetchable partition without buffered data (never more).
    assert!(fetches
        .iter()
        .all(|f| f.partitions.len() <= 6 && !f.partitions.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_the_session_on_the_broker() {
    let (broker, tap) = setup(&[]).await;
    let c = caught_up_consumer(&tap, 50, Duration::from_millis(100)).await;
    let session = granted_session(&tap.fetches());
    assert_eq!(
        probe_session(&broker, session).await,
        ErrorCode::InvalidFetchSessionEpoch,
        "the consumer's session {session} is not in the broker's cache"
    );
    // The close goes behind the long poll in flight: answered after it.
    promptly("close", c.close()).await.expect("close");
    let fetches = tap.fetches();
    assert_eq!(tap.max_in_flight(), 1);
    check_session_protocol(&fetches);
    assert_eq!(check_session_closed(&fetches), session);
    assert_eq!(
        probe_session(&broker, session).await,
        ErrorCode::FetchSessionIdNotFound,
        "session {session} outlived the consumer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_zero_timeout_leaves_the_session_at_once() {
    let (broker, tap) = setup(&[]).await;
    let c = caught_up_consumer(&tap, 20, LONG_POLL).await;
    let session = granted_session(&tap.fetches());
    // Nothing is waited for: a close that waited out the long poll in flight would miss
    // the hang guard.
    promptly("close", c.close_with_timeout(Duration::ZERO))
        .await
        .expect("close");
    // Nothing more goes out once the consumer's connections are closed.
    drop(c);
    tap.wait_all_closed().await;
    let fetches = tap.fetches();
    check_session_protocol(&fetches);
    assert!(
        !fetches.iter().any(|f| f.is_session_close()),
        "a session close was sent: {:?}",
        fetches.last()
    );
    assert_eq!(
        probe_session(&broker, session).await,
        ErrorCode::InvalidFetchSessionEpoch,
        "session {session} should be left to the broker's eviction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_the_session_close_only_until_its_timeout() {
    let (_broker, tap) = setup(&[]).await;
    // The session close waits behind the long poll in flight; the close timeout is 300 ms.
    let c = caught_up_consumer(&tap, 20, LONG_POLL).await;
    // When a long poll is in flight the close waits for its own timeout (300 ms), and when
    // none is the broker answers the session close at once; a close that waited out the long
    // poll would miss the hang guard.
    promptly("close", c.close_with_timeout(Duration::from_millis(300)))
        .await
        .expect("close");
    let fetches = tap.fetches();
    check_session_protocol(&fetches);
    let close = fetches.last().expect("fetches");
    assert!(close.is_session_close(), "no session close sent: {close:?}");
    assert_eq!(close.session_id, granted_session(&fetches));
    assert_eq!(fetches.iter().filter(|f| f.is_session_close()).count(), 1);
}
