//! broker-lite persistence: restarts on the same data directory (clean and after a crash),
//! recovery of a torn log tail and of missing index files, and Kafka's on-disk layout
//! (`<topic>-<partition>/` with `.log`, `.index` and `.timeindex` segment files whose `.log`
//! holds the produced batches byte for byte, with the broker-assigned base offset and leader
//! epoch).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use broker_lite::Broker;
use bytes::{Bytes, BytesMut};
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::describe_configs_request::DescribeConfigsResource;
use kafka_wire::messages::*;
use kafka_wire::records::{set_base_offset, set_partition_leader_epoch, Compression};
use kafka_wire::Uuid;

const CONFIGS: &[(&str, &str)] = &[
    ("segment.bytes", "4096"),
    ("retention.ms", "-1"),
    ("cleanup.policy", "delete"),
    ("max.message.bytes", "3000"),
];

/// Everything a client can observe about the topics, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct Snapshot {
    topics: BTreeMap<String, (Uuid, i32)>,
    configs: BTreeMap<String, Option<String>>,
    /// Per (topic, partition): earliest, latest and every stored batch's bytes.
    partitions: BTreeMap<(String, i32), (i64, i64, Vec<Bytes>)>,
}

async fn snapshot(c: &mut RawClient) -> Snapshot {
    let m = metadata(c, None).await;
    let mut topics = BTreeMap::new();
    let mut partitions = BTreeMap::new();
    for t in &m.topics {
        let name = t.name.clone().unwrap();
        topics.insert(name.clone(), (t.topic_id, t.partitions.len() as i32));
        for p in 0..t.partitions.len() as i32 {
            let earliest = offset_for(c, &name, p, -2).await;
            let latest = offset_for(c, &name, p, -1).await;
            let batches = fetch_all(c, &name, p, earliest).await;
            partitions.insert(
                (name.clone(), p),
                (
                    earliest,
                    latest,
                    batches.iter().map(|b| b.as_bytes().clone()).collect(),
                ),
            );
        }
    }
    // The overrides of "persist", through DescribeConfigs (filtered to the overridden keys).
    let mut configs = BTreeMap::new();
    if topics.contains_key("persist") {
        let req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 2,
                resource_name: "persist".into(),
                configuration_keys: Some(CONFIGS.iter().map(|(k, _)| k.to_string()).collect()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = c.send(req, 4).await.unwrap();
        for e in &r.results[0].configs {
            assert_eq!(e.config_source, 1, "{} is a topic override", e.name);
            configs.insert(e.name.clone(), e.value.clone());
        }
    }
    Snapshot {
        topics,
        configs,
        partitions,
    }
}

/// Compares two snapshots, reporting the first difference briefly.
///
/// Topic ids are compared separately ([`topic_ids_survive_a_restart`]): broker-lite changes
/// them on restart (see that test).
fn assert_same(before: &Snapshot, after: &Snapshot) {
    let counts = |s: &Snapshot| {
        s.topics
            .iter()
            .map(|(k, v)| (k.clone(), v.1))
            .collect::<BTreeMap<String, i32>>()
    };
    assert_eq!(counts(after), counts(before), "topics and partition counts");
    assert_eq!(after.configs, before.configs, "topic configs");
    assert_eq!(
        after.partitions.keys().collect::<Vec<_>>(),
        before.partitions.keys().collect::<Vec<_>>()
    );
    for (k, (e0, l0, b0)) in &before.partitions {
        let (e1, l1, b1) = &after.partitions[k];
        assert_eq!((e1, l1), (e0, l0), "{k:?}: earliest and latest offsets");
        assert_eq!(b1.len(), b0.len(), "{k:?}: batch count");
        for (i, (x, y)) in b0.iter().zip(b1).enumerate() {
            assert!(
                x == y,
                "{k:?}: batch {i} differs: {} vs {} bytes",
                x.len(),
                y.len()
            );
        }
    }
}

/// Creates "persist" (3 partitions, small segments) and "other", and produces: many batches
/// to persist-0 (several segments), every codec to persist-1, nothing to persist-2.
async fn populate(c: &mut RawClient) {
    create_topic(c, "persist", 3, CONFIGS).await;
    create_topic(c, "other", 1, &[]).await;
    for i in 0..40 {
        let v = format!("{i:03}-{}", "p".repeat(200 + i * 3));
        produce_ok(
            c,
            "persist",
            0,
            kafka_integration_tests::batch(
                &[(None, Some(v.as_bytes()))],
                Compression::None,
                1_000 + i as i64,
            ),
        )
        .await;
    }
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (i, codec) in codecs.iter().enumerate() {
        produce_ok(
            c,
            "persist",
            1,
            value_batch(&format!("c{i}"), 4, *codec, 2_000 + i as i64),
        )
        .await;
    }
    produce_ok(c, "other", 0, value_batch("o", 3, Compression::None, 3_000)).await;
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn clean_restart_keeps_topics_configs_offsets_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    populate(&mut c).await;
    let before = snapshot(&mut c).await;
    assert_eq!(before.topics.len(), 2);
    assert_eq!(before.topics["persist"].1, 3);
    assert_eq!(before.configs.len(), CONFIGS.len());
    assert_eq!(before.partitions[&("persist".to_string(), 0)].1, 40);
    assert!(
        log_files(&dir.path().join("persist-0")).len() >= 3,
        "segment.bytes=4096 rolled segments"
    );
    broker.shutdown().await;

    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let after = snapshot(&mut c).await;
    assert_same(&before, &after);

    // Appends continue where the log ended, and the topic config still applies.
    assert_eq!(
        produce_ok(
            &mut c,
            "persist",
            0,
            value_batch("more", 2, Compression::None, 5_000)
        )
        .await,
        40
    );
    assert_eq!(
        produce_ok(
            &mut c,
            "persist",
            2,
            value_batch("first", 1, Compression::None, 5_000)
        )
        .await,
        0
    );
    let p = produce(&mut c, "persist", 0, big_batch(4000, 5_000)).await;
    assert_eq!(
        p.error_code,
        kafka_wire::ErrorCode::MessageTooLarge.code(),
        "max.message.bytes=3000 survived"
    );
    broker.shutdown().await;

    // A second restart sees the appends too.
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(offset_for(&mut c, "persist", 0, -1).await, 42);
    assert_eq!(offset_for(&mut c, "persist", 2, -1).await, 1);
    broker.shutdown().await;
}

/// KIP-516: a topic keeps its id for life; Kafka stores it in the metadata log and in each
/// partition's `partition.metadata`, and a mismatch after restart is an
/// InconsistentTopicIdException. broker-lite's `state::parse_uuid` drops the top 4 bits
/// when reading `broker-lite-topics/<topic>.properties` back (its own unit test
/// `state::tests::uuid_text_round_trip` fails), so Metadata reports a different id after a
/// restart, which no longer matches `partition.metadata`.
#[tokio::test]
async fn topic_ids_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            create_topic(&mut c, &format!("id{i}"), 1, &[])
                .await
                .topic_id,
        );
    }
    broker.shutdown().await;
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    for (i, id) in ids.iter().enumerate() {
        let name = format!("id{i}");
        assert_eq!(topic_metadata(&mut c, &name).await.topic_id, *id, "{name}");
        let pm = std::fs::read_to_string(dir.path().join(format!("{name}-0/partition.metadata")))
            .unwrap();
        assert_eq!(pm, format!("version: 0\ntopic_id: {id}\n"));
        // Fetch v13+ by the original id still works.
        let mut req = fetch_request("", 0, 0, 1 << 20, 0);
        req.topics[0].topic_id = *id;
        let r = c.send(req, 13).await.unwrap();
        assert_eq!(r.responses[0].partitions[0].error_code, 0, "{name}");
    }
    broker.shutdown().await;
}

/// A broker dropped without `shutdown` (its runtime torn down mid-flight, as in a crash)
/// leaves no clean-shutdown marker; the next start recovers every segment and serves the
/// same data.
#[tokio::test]
async fn crash_without_shutdown_then_restart_serves_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let before = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let snap = rt.block_on(async {
                let broker = start_in(&path).await;
                let mut c = connect(&broker.bootstrap_servers()).await;
                populate(&mut c).await;
                let snap = snapshot(&mut c).await;
                drop(c);
                drop(broker); // no shutdown
                snap
            });
            drop(rt); // every broker task is dropped here, logs unclosed
            snap
        })
        .join()
        .expect("crash thread")
    })
    .await
    .unwrap();

    for p in 0..3 {
        assert!(
            !dir.path()
                .join(format!("persist-{p}/.kafka_cleanshutdown"))
                .exists(),
            "no clean shutdown"
        );
    }
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let after = snapshot(&mut c).await;
    assert_same(&before, &after);
    assert_eq!(
        produce_ok(
            &mut c,
            "persist",
            0,
            value_batch("post-crash", 1, Compression::None, 9_000)
        )
        .await,
        40
    );
    broker.shutdown().await;
}

/// A crash in the middle of writing a batch leaves a torn tail: recovery truncates the log to
/// the end of the last whole batch (Kafka's `LogSegment.recover`), so the log end offset is
/// that batch's end and fetches return only whole, valid batches.
#[tokio::test]
async fn torn_last_batch_is_truncated_on_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        "rec",
        1,
        &[("segment.bytes", "4096"), ("retention.ms", "-1")],
    )
    .await;
    let mut sent: Vec<(i64, Bytes)> = Vec::new();
    for i in 0..30 {
        let b = value_batch(
            &format!("r{i}-{}", "x".repeat(100 + i)),
            1 + i % 3,
            Compression::None,
            1_000 + i as i64,
        );
        let base = produce_ok(&mut c, "rec", 0, b.clone()).await;
        sent.push((base, b));
    }
    let leo = offset_for(&mut c, "rec", 0, -1).await;
    broker.shutdown().await;

    // Tear the last batch of the last segment in half, as an interrupted write would.
    let pdir = dir.path().join("rec-0");
    let last_log = log_files(&pdir).pop().unwrap();
    let len = std::fs::metadata(&last_log).unwrap().len();
    let (last_base, last_batch) = sent.last().unwrap().clone();
    let cut = len - last_batch.len() as u64 / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last_log)
        .unwrap()
        .set_len(cut)
        .unwrap();
    // Only a crash can leave a torn tail: the clean-shutdown marker would not be there.
    let _ = std::fs::remove_file(pdir.join(".kafka_cleanshutdown"));

    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert!(leo > last_base);
    assert_eq!(
        offset_for(&mut c, "rec", 0, -1).await,
        last_base,
        "log end = end of the last whole batch"
    );
    let batches = fetch_all(&mut c, "rec", 0, 0).await;
    assert_eq!(batches.len(), sent.len() - 1);
    for (b, (base, bytes)) in batches.iter().zip(&sent) {
        assert_eq!(b.base_offset(), *base);
        assert_eq!(&b.as_bytes()[61..], &bytes[61..], "records byte for byte");
    }
    // The file was truncated to whole batches; appends continue at the recovered end.
    assert!(std::fs::metadata(&last_log).unwrap().len() < cut);
    assert_eq!(
        produce_ok(
            &mut c,
            "rec",
            0,
            value_batch("again", 2, Compression::None, 9_000)
        )
        .await,
        last_base
    );
    let batches = fetch_all(&mut c, "rec", 0, 0).await;
    assert_eq!(batches.last().unwrap().base_offset(), last_base);
    assert_eq!(offset_for(&mut c, "rec", 0, -1).await, last_base + 2);
    broker.shutdown().await;
}

/// Missing offset and time indexes are rebuilt from the log (Kafka's LogLoader recovers a
/// segment whose index files are missing): reads and timestamp lookups still work.
#[tokio::test]
async fn deleted_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        "idx",
        1,
        &[
            ("segment.bytes", "1024"),
            ("index.interval.bytes", "100"),
            ("retention.ms", "-1"),
        ],
    )
    .await;
    for i in 0..40i64 {
        let ts = 10_000 + i * 100;
        produce_ok(&mut c, "idx", 0, timestamped_batch(&[ts, ts + 1, ts + 2])).await;
    }
    let before = snapshot(&mut c).await;
    broker.shutdown().await;

    let pdir = dir.path().join("idx-0");
    let mut removed = 0;
    for e in std::fs::read_dir(&pdir).unwrap() {
        let p = e.unwrap().path();
        if p.extension()
            .is_some_and(|x| x == "index" || x == "timeindex")
        {
            std::fs::remove_file(&p).unwrap();
            removed += 1;
        }
    }
    assert!(removed >= 4, "several segments' indexes removed");

    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_same(&before, &snapshot(&mut c).await);
    for i in [0i64, 1, 17, 25, 39] {
        let ts = 10_000 + i * 100;
        assert_eq!(offset_for(&mut c, "idx", 0, ts).await, i * 3, "ts {ts}");
        assert_eq!(
            offset_for(&mut c, "idx", 0, ts + 2).await,
            i * 3 + 2,
            "ts {}",
            ts + 2
        );
        assert_eq!(
            offset_for(&mut c, "idx", 0, ts + 50).await,
            if i == 39 { -1 } else { (i + 1) * 3 }
        );
        let p = fetch(&mut c, "idx", 0, i * 3 + 1, 1 << 20).await;
        assert_eq!(batches_of(&p)[0].base_offset(), i * 3);
    }
    assert_eq!(offset_for(&mut c, "idx", 0, -3).await, 119);
    broker.shutdown().await;

    for log in log_files(&pdir) {
        assert!(
            log.with_extension("index").exists(),
            "{} index rebuilt",
            log.display()
        );
        assert!(
            log.with_extension("timeindex").exists(),
            "{} time index rebuilt",
            log.display()
        );
    }
}

/// The partition directory holds Kafka's segment files, and the `.log` is exactly the
/// produced batches with the broker's base offsets and partition leader epoch patched in.
#[tokio::test]
async fn log_file_holds_the_produced_batches_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let created = create_topic(&mut c, "disk", 2, &[]).await;
    let epoch = topic_metadata(&mut c, "disk").await.partitions[0].leader_epoch;
    let m = metadata(&mut c, None).await;

    let mut expected = BytesMut::new();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
        Compression::None,
    ];
    for (i, codec) in codecs.iter().enumerate() {
        let sent = value_batch(
            &format!("d{i}"),
            1 + i,
            *codec,
            1_700_000_000_000 + i as i64,
        );
        let base = produce_ok(&mut c, "disk", 0, sent.clone()).await;
        let mut stored = BytesMut::from(&sent[..]);
        set_base_offset(&mut stored, base).unwrap();
        set_partition_leader_epoch(&mut stored, epoch).unwrap();
        expected.extend_from_slice(&stored);
    }
    broker.shutdown().await;

    let p0 = dir.path().join("disk-0");
    for f in [
        "00000000000000000000.log",
        "00000000000000000000.index",
        "00000000000000000000.timeindex",
    ] {
        assert!(p0.join(f).is_file(), "{f}");
    }
    let log = std::fs::read(p0.join("00000000000000000000.log")).unwrap();
    assert_eq!(log.len(), expected.len());
    assert!(
        log == expected[..],
        "the .log is the patched batches, concatenated"
    );
    assert_eq!(
        std::fs::metadata(p0.join("00000000000000000000.index"))
            .unwrap()
            .len()
            % 8,
        0
    );
    assert_eq!(
        std::fs::metadata(p0.join("00000000000000000000.timeindex"))
            .unwrap()
            .len()
            % 12,
        0
    );

    // The empty partition has an empty first segment.
    let p1 = dir.path().join("disk-1");
    assert_eq!(
        std::fs::metadata(p1.join("00000000000000000000.log"))
            .unwrap()
            .len(),
        0
    );

    // Kafka's partition.metadata and meta.properties.
    let pm = std::fs::read_to_string(p0.join("partition.metadata")).unwrap();
    assert_eq!(pm, format!("version: 0\ntopic_id: {}\n", created.topic_id));
    let meta = std::fs::read_to_string(dir.path().join("meta.properties")).unwrap();
    let props: BTreeMap<&str, &str> = meta.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(props.get("node.id"), Some(&"1"));
    assert_eq!(props.get("cluster.id").copied(), m.cluster_id.as_deref());
}

/// The data directory belongs to one node id: starting another node on it fails.
#[tokio::test]
async fn data_dir_of_another_node_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir.path()).await.shutdown().await;
    let other = Broker::builder()
        .data_dir(dir.path())
        .node_id(2)
        .start()
        .await;
    assert!(other.is_err());
    // The right node id still starts, with the same cluster id.
    let b1 = start_in(dir.path()).await;
    let id1 = metadata(&mut connect(&b1.bootstrap_servers()).await, None)
        .await
        .cluster_id;
    b1.shutdown().await;
    let b2 = start_in(dir.path()).await;
    let id2 = metadata(&mut connect(&b2.bootstrap_servers()).await, None)
        .await
        .cluster_id;
    assert_eq!(id1, id2);
    b2.shutdown().await;
}
