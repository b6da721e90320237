//! Incremental fetch sessions (KIP-227) served by broker-lite, over raw Fetch requests at v7
//! (the first with sessions), v12 (the last naming topics) and v13/v17 (topic ids): session
//! creation by a full fetch, incremental fetches that answer only the partitions with news,
//! partitions forgotten and added, session errors, closing with epoch -1, long polls on a
//! session, and a full cache declining sessions (session id 0, data still served).

use std::collections::HashMap;
use std::time::Duration;

use broker_lite::Broker;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_wire::messages::fetch_response::FetchableTopicResponse;
use kafka_wire::messages::*;
use kafka_wire::records::Compression;
use kafka_wire::{ErrorCode, Uuid};

/// Hang guard for long polls; never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// Topics × partitions every test fetches.
const TOPICS: [&str; 2] = ["a", "b"];
const PARTITIONS: i32 = 3;

/// A response partition: (topic, partition) and (error code, high watermark, record values).
type Part = ((String, i32), (i16, i64, Vec<String>));

/// A consumer's view of a fetch session, building requests the way a client does.
struct Session {
    version: i16,
    id: i32,
    epoch: i32,
    topic_ids: HashMap<String, Uuid>,
}

impl Session {
    async fn new(c: &mut RawClient, version: i16) -> Session {
        let mut topic_ids = HashMap::new();
        for t in TOPICS {
            topic_ids.insert(t.to_string(), topic_metadata(c, t).await.topic_id);
        }
        Session {
            version,
            id: 0,
            epoch: 0,
            topic_ids,
        }
    }

    /// A topic as this version names it.
    fn topic(&self, name: &str) -> (String, Uuid) {
        if self.version >= 13 {
            let id = self.topic_ids.get(name).copied().unwrap_or(Uuid::ZERO);
            (String::new(), id)
        } else {
            (name.to_string(), Uuid::ZERO)
        }
    }

    /// The name of a response topic.
    fn name_of(&self, t: &FetchableTopicResponse) -> String {
        if self.version >= 13 {
            self.topic_ids
                .iter()
                .find(|(_, id)| **id == t.topic_id)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| format!("{}", t.topic_id))
        } else {
            t.topic.clone()
        }
    }

    /// A request with this session's metadata listing `(topic, partition, offset)`.
    fn request(&self, parts: &[(&str, i32, i64)], max_wait_ms: i32) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for &(t, partition, offset) in parts {
            let (topic, topic_id) = self.topic(t);
            if topics
                .last()
                .is_none_or(|l| l.topic != topic || l.topic_id != topic_id)
            {
                topics.push(FetchTopic {
                    topic,
                    topic_id,
                    ..Default::default()
                });
            }
            topics.last_mut().unwrap().partitions.push(FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                current_leader_epoch: -1,
                ..Default::default()
            });
        }
        FetchRequest {
            replica_id: -1,
            max_wait_ms,
            min_bytes: 1,
            max_bytes: i32::MAX,
            session_id: self.id,
            session_epoch: self.epoch,
            topics,
            ..Default::default()
        }
    }

    fn forget(&self, req: &mut FetchRequest, topic: &str, partitions: &[i32]) {
        let (topic, topic_id) = self.topic(topic);
        req.forgotten_topics_data.push(ForgottenTopic {
            topic,
            topic_id,
            partitions: partitions.to_vec(),
            ..Default::default()
        });
    }

    /// Sends `req`; on success adopts the session id it answers and advances the epoch as a
    /// client does (a new session starts at epoch 1).
    async fn send(&mut self, c: &mut RawClient, req: FetchRequest) -> FetchResponse {
        let r = c.send(req, self.version).await.expect("Fetch");
        if r.error_code == 0 {
            if r.session_id == 0 {
                self.id = 0;
                self.epoch = 0;
            } else if r.session_id != self.id {
                self.id = r.session_id;
                self.epoch = 1;
            } else {
                self.epoch += 1;
            }
        }
        r
    }

    /// The partitions of a response: (topic, partition) → (error, high watermark, values).
    fn parts(&self, r: &FetchResponse) -> Vec<Part> {
        let mut out = Vec::new();
        for t in &r.responses {
            for p in &t.partitions {
                let values = records_of(&batches_of(p))
                    .into_iter()
                    .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
                    .collect();
                out.push((
                    (self.name_of(t), p.partition_index),
                    (p.error_code, p.high_watermark, values),
                ));
            }
        }
        out
    }

    /// (topic, partition) of the partitions of a response, in order.
    fn listed(&self, r: &FetchResponse) -> Vec<(String, i32)> {
        self.parts(r).into_iter().map(|(k, _)| k).collect()
    }
}

fn all_partitions(offset: i64) -> Vec<(&'static str, i32, i64)> {
    TOPICS
        .iter()
        .flat_map(|t| (0..PARTITIONS).map(move |p| (*t, p, offset)))
        .collect()
}

async fn setup(broker: &Broker) -> RawClient {
    let mut c = connect(&broker.bootstrap_servers()).await;
    for t in TOPICS {
        create_topic(&mut c, t, PARTITIONS, &[]).await;
    }
    c
}

async fn produce(c: &mut RawClient, topic: &str, partition: i32, value: &str) {
    produce_ok(
        c,
        topic,
        partition,
        value_batch(value, 1, Compression::None, 1_000),
    )
    .await;
}

fn key(t: &str, p: i32) -> (String, i32) {
    (t.to_string(), p)
}

/// A full fetch (epoch 0) creates a session of every partition and answers them all; the
/// incremental fetches after it answer only partitions with records or a new high watermark,
/// at every version with sessions, by name and by topic id.
#[tokio::test]
async fn incremental_fetches_answer_only_what_changed() {
    for version in [7, 12, 13, 17] {
        let broker = Broker::start_ephemeral().await.unwrap();
        let mut c = setup(&broker).await;
        produce(&mut c, "a", 0, "a0").await;
        produce(&mut c, "b", 2, "b2").await;
        let mut s = Session::new(&mut c, version).await;

        let r = s.send(&mut c, s.request(&all_partitions(0), 0)).await;
        assert_eq!(r.error_code, 0, "v{version}");
        assert_ne!(r.session_id, 0, "v{version}: a session is created");
        let parts = s.parts(&r);
        assert_eq!(
            parts.len(),
            6,
            "v{version}: a full response lists every partition"
        );
        for ((t, p), (err, hw, values)) in &parts {
            assert_eq!(*err, 0);
            let expected: Vec<String> = match (t.as_str(), p) {
                ("a", 0) => vec!["a0-0".into()],
                ("b", 2) => vec!["b2-0".into()],
                _ => vec![],
            };
            assert_eq!((*hw, values), (expected.len() as i64, &expected), "{t}-{p}");
        }

        // The client moves a-0 and b-2 to offset 1: nothing new anywhere.
        let req = s.request(&[("a", 0, 1), ("b", 2, 1)], 0);
        let r = s.send(&mut c, req).await;
        assert_eq!((r.error_code, r.session_id), (0, s.id), "v{version}");
        assert!(r.responses.is_empty(), "v{version}: {:?}", s.listed(&r));

        // New records on a-1: only a-1 is answered, with them.
        produce(&mut c, "a", 1, "a1").await;
        let r = s.send(&mut c, s.request(&[], 0)).await;
        assert_eq!(
            s.parts(&r),
            vec![(key("a", 1), (0, 1, vec!["a1-0".to_string()]))],
            "v{version}"
        );
        // Once the client fetches a-1 from offset 1, it is quiet again.
        let r = s.send(&mut c, s.request(&[("a", 1, 1)], 0)).await;
        assert!(r.responses.is_empty(), "v{version}: {:?}", s.listed(&r));
        broker.shutdown().await;
    }
}

/// Forgotten partitions are no longer fetched nor answered; a partition added incrementally
/// is answered (its first answer always is) and then only on news.
#[tokio::test]
async fn forgotten_partitions_disappear_and_added_ones_appear() {
    for version in [12, 13] {
        let broker = Broker::start_ephemeral().await.unwrap();
        let mut c = setup(&broker).await;
        let mut s = Session::new(&mut c, version).await;
        let r = s
            .send(&mut c, s.request(&[("a", 0, 0), ("a", 1, 0)], 0))
            .await;
        assert_eq!(s.listed(&r), vec![key("a", 0), key("a", 1)]);

        // Forget a-0, add b-1.
        let mut req = s.request(&[("b", 1, 0)], 0);
        s.forget(&mut req, "a", &[0]);
        let r = s.send(&mut c, req).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(
            s.listed(&r),
            vec![key("b", 1)],
            "v{version}: the new partition"
        );

        produce(&mut c, "a", 0, "a0").await;
        produce(&mut c, "b", 1, "b1").await;
        produce(&mut c, "a", 1, "a1").await;
        let r = s.send(&mut c, s.request(&[], 0)).await;
        let mut listed = s.listed(&r);
        listed.sort();
        assert_eq!(
            listed,
            vec![key("a", 1), key("b", 1)],
            "v{version}: a-0 forgotten"
        );
        broker.shutdown().await;
    }
}

/// Session errors: an unknown session id is FETCH_SESSION_ID_NOT_FOUND, a wrong epoch
/// INVALID_FETCH_SESSION_EPOCH, a name-based session used at v13 FETCH_SESSION_TOPIC_ID_ERROR;
/// all top-level with session id 0 and no partitions, and the session survives them.
#[tokio::test]
async fn session_errors_are_top_level_and_keep_the_session() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = setup(&broker).await;
    let mut s = Session::new(&mut c, 12).await;
    let r = s.send(&mut c, s.request(&all_partitions(0), 0)).await;
    assert_ne!(r.session_id, 0);

    let mut wrong_epoch = s.request(&[], 0);
    wrong_epoch.session_epoch = s.epoch + 5;
    let mut unknown = s.request(&[], 0);
    unknown.session_id = s.id.wrapping_add(1).max(1);
    for (req, version, code) in [
        (wrong_epoch, 12, ErrorCode::InvalidFetchSessionEpoch),
        (unknown, 12, ErrorCode::FetchSessionIdNotFound),
        (s.request(&[], 0), 13, ErrorCode::FetchSessionTopicIdError),
    ] {
        let r = c.send(req, version).await.unwrap();
        assert_eq!(r.error_code, code.code());
        assert_eq!(r.session_id, 0, "{code:?}");
        assert!(r.responses.is_empty(), "{code:?}");
    }
    // The session's epoch did not move.
    produce(&mut c, "b", 0, "b0").await;
    let r = s.send(&mut c, s.request(&[], 0)).await;
    assert_eq!((r.error_code, r.session_id), (0, s.id));
    assert_eq!(s.listed(&r), vec![key("b", 0)]);
    broker.shutdown().await;
}

/// Epoch -1 closes the session it names and is served without a session (id 0); an
/// incremental fetch on the closed session is FETCH_SESSION_ID_NOT_FOUND. Epoch 0 with a
/// session id closes that session and opens a new one.
#[tokio::test]
async fn final_and_initial_epochs_close_the_named_session() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = setup(&broker).await;
    produce(&mut c, "a", 2, "a2").await;
    let mut s = Session::new(&mut c, 17).await;
    s.send(&mut c, s.request(&all_partitions(0), 0)).await;
    let first = s.id;
    assert_ne!(first, 0);

    // Epoch 0 naming the session: a new session, the old one gone.
    let mut req = s.request(&all_partitions(0), 0);
    req.session_epoch = 0;
    let r = c.send(req, 17).await.unwrap();
    assert_eq!(r.error_code, 0);
    assert!(r.session_id != 0 && r.session_id != first);
    assert_eq!(s.parts(&r).len(), 6);
    let mut stale = s.request(&[], 0);
    stale.session_epoch = s.epoch;
    let r = c.send(stale, 17).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::FetchSessionIdNotFound.code());
    let second = {
        s.id = 0;
        s.epoch = 0;
        let r = s.send(&mut c, s.request(&all_partitions(0), 0)).await;
        r.session_id
    };

    // Epoch -1 naming it: a full, sessionless answer.
    let mut req = s.request(&all_partitions(0), 0);
    req.session_epoch = -1;
    let r = c.send(req, 17).await.unwrap();
    assert_eq!((r.error_code, r.session_id), (0, 0));
    let parts = s.parts(&r);
    assert_eq!(parts.len(), 6);
    assert!(parts.contains(&(key("a", 2), (0, 1, vec!["a2-0".to_string()]))));
    let mut closed = s.request(&[], 0);
    closed.session_id = second;
    closed.session_epoch = 1;
    let r = c.send(closed, 17).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::FetchSessionIdNotFound.code());
    broker.shutdown().await;
}

/// A long poll on an incremental session with nothing new waits, wakes on a produce, and
/// answers only the partition produced to.
#[tokio::test]
async fn long_poll_on_a_session_wakes_on_produce_with_only_that_partition() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = setup(&broker).await;
    let mut poller = connect(&broker.bootstrap_servers()).await;
    let mut s = Session::new(&mut c, 13).await;
    s.send(&mut poller, s.request(&all_partitions(0), 0)).await;
    assert_ne!(s.id, 0);

    // A max wait past the hang guard: a long poll not woken by the produce fails the guard.
    let waiting = tokio::spawn(async move {
        let req = s.request(&[], 60_000);
        let r = s.send(&mut poller, req).await;
        (r.error_code, r.session_id == s.id, s.parts(&r))
    });
    // Nothing is new: once the request had time to reach the broker, it is still waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "the long poll answered with nothing new"
    );
    produce(&mut c, "b", 1, "b1").await;
    let (err, same_session, parts) = tokio::time::timeout(HANG_GUARD, waiting)
        .await
        .expect("the long poll is woken by the produce (max wait 60 s)")
        .unwrap();
    assert_eq!((err, same_session), (0, true));
    assert_eq!(parts, vec![(key("b", 1), (0, 1, vec!["b1-0".to_string()]))]);
    broker.shutdown().await;
}

/// Partitions of an unknown topic id stay in the session and answer UNKNOWN_TOPIC_ID every
/// time; a deleted topic's partitions answer UNKNOWN_TOPIC_OR_PARTITION (by name), as Kafka.
#[tokio::test]
async fn unknown_and_deleted_topics_answer_errors_in_the_session() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = setup(&broker).await;
    let mut s = Session::new(&mut c, 13).await;
    s.topic_ids
        .insert("ghost".into(), Uuid::from_u64_pair(0xdead, 0xbeef));
    s.send(&mut c, s.request(&[("a", 0, 0), ("ghost", 0, 0)], 0))
        .await;
    assert_ne!(s.id, 0);
    for _ in 0..2 {
        let r = s.send(&mut c, s.request(&[], 0)).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(
            s.parts(&r),
            vec![(
                key("ghost", 0),
                (ErrorCode::UnknownTopicId.code(), -1, vec![])
            )]
        );
    }

    let mut s = Session::new(&mut c, 12).await;
    s.send(&mut c, s.request(&[("a", 0, 0), ("b", 0, 0)], 0))
        .await;
    let r = c
        .send(
            DeleteTopicsRequest {
                topic_names: vec!["b".into()],
                timeout_ms: 5000,
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    assert_eq!(r.responses[0].error_code, 0);
    let r = s.send(&mut c, s.request(&[], 0)).await;
    assert_eq!(
        s.parts(&r),
        vec![(
            key("b", 0),
            (ErrorCode::UnknownTopicOrPartition.code(), -1, vec![])
        )]
    );
    broker.shutdown().await;
}

/// With `max.incremental.fetch.session.cache.slots=1`, a second client's full fetch gets no
/// session (id 0) while the first client's session is in use, and still gets its data.
#[tokio::test]
async fn a_full_cache_declines_the_session_but_serves_the_data() {
    let broker = Broker::builder()
        .config("max.incremental.fetch.session.cache.slots", "1")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = setup(&broker).await;
    produce(&mut c, "a", 0, "a0").await;
    let mut first = Session::new(&mut c, 12).await;
    first
        .send(&mut c, first.request(&all_partitions(0), 0))
        .await;
    assert_ne!(first.id, 0);

    let mut other = connect(&broker.bootstrap_servers()).await;
    let mut second = Session::new(&mut other, 12).await;
    let r = second
        .send(&mut other, second.request(&all_partitions(0), 0))
        .await;
    assert_eq!((r.error_code, r.session_id), (0, 0), "declined");
    let parts = second.parts(&r);
    assert_eq!(parts.len(), 6);
    assert!(parts.contains(&(key("a", 0), (0, 1, vec!["a0-0".to_string()]))));

    // The first session still works.
    let r = first.send(&mut c, first.request(&[("a", 0, 1)], 0)).await;
    assert_eq!((r.error_code, r.session_id), (0, first.id));
    broker.shutdown().await;
}
