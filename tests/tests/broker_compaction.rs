//! Log compaction in broker-lite (`cleanup.policy=compact`): keyed records produced to a
//! compacted topic with small segments, compacted through the `compact_now` test hook or by
//! the periodic retention task; fetched back with their original offsets, the latest value
//! per key (the active segment is never cleaned), tombstones kept, a smaller log, Kafka's
//! `cleaner-offset-checkpoint`, and a restart on the compacted data. Keyless records are
//! refused with INVALID_RECORD.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use broker_lite::Broker;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::{batch, KeyValue, RawClient};
use kafka_wire::records::Compression;
use kafka_wire::ErrorCode;

const TOPIC: &str = "compacted";
const KEYS: usize = 8;
const ROUNDS: usize = 12;
/// Hang guard for the retention task; never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What a record holds: key and value (`None`: tombstone).
type Entry = (String, Option<String>);

/// `.log` files of the partition directory: (base offset, size).
fn segments(dir: &Path) -> Vec<(i64, u64)> {
    let mut v: Vec<(i64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let base = name.strip_suffix(".log")?.parse().ok()?;
            Some((base, e.metadata().ok()?.len()))
        })
        .collect();
    v.sort();
    v
}

/// Produces `ROUNDS` batches, each with one record per key (`r{round}-k{i}`); in round 5
/// key `k3` gets a tombstone instead. Key `gone` gets a value in round 0 and a tombstone in
/// round 1, its last record. Returns what was written at every offset.
async fn produce_rounds(c: &mut RawClient) -> BTreeMap<i64, Entry> {
    let mut written = BTreeMap::new();
    let ts = now_ms();
    for round in 0..ROUNDS {
        let mut entries: Vec<Entry> = (0..KEYS)
            .map(|k| {
                let value = (round != 5 || k != 3).then(|| format!("r{round}-k{k}"));
                (format!("k{k}"), value)
            })
            .collect();
        match round {
            0 => entries.push(("gone".into(), Some("x".into()))),
            1 => entries.push(("gone".into(), None)),
            _ => {}
        }
        let records: Vec<KeyValue<'_>> = entries
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.as_deref().map(str::as_bytes)))
            .collect();
        let base = produce_ok(c, TOPIC, 0, batch(&records, Compression::None, ts)).await;
        for (i, e) in entries.into_iter().enumerate() {
            written.insert(base + i as i64, e);
        }
    }
    written
}

/// What a compacted log must hold: below `active_base`, only the latest record of each key
/// (tombstones included, `delete.retention.ms` not having passed); everything from it.
fn expected_after_compaction(
    written: &BTreeMap<i64, Entry>,
    active_base: i64,
) -> BTreeMap<i64, Entry> {
    let mut latest: HashMap<&str, i64> = HashMap::new();
    for (offset, (key, _)) in written.range(..active_base) {
        latest.insert(key, *offset);
    }
    written
        .iter()
        .filter(|(offset, (key, _))| **offset >= active_base || latest[key.as_str()] == **offset)
        .map(|(o, e)| (*o, e.clone()))
        .collect()
}

/// Every record of the partition, by offset, fetched batch by batch from offset 0.
async fn fetch_records(c: &mut RawClient) -> BTreeMap<i64, Entry> {
    let text = |b: Option<bytes::Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    records_of(&fetch_all(c, TOPIC, 0, 0).await)
        .into_iter()
        .map(|r| (r.offset, (text(r.key).unwrap(), text(r.value))))
        .collect()
}

#[tokio::test]
async fn compact_now_keeps_the_latest_value_per_key_at_its_offset() {
    let data = tempfile::tempdir().unwrap();
    let broker = Broker::builder()
        .data_dir(data.path())
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        TOPIC,
        1,
        &[("cleanup.policy", "compact"), ("segment.bytes", "512")],
    )
    .await;

    // Keyless records are refused on a compacted topic (Kafka's validateKey).
    let keyless = produce(&mut c, TOPIC, 0, value_batch("v", 1, Compression::None, 0)).await;
    assert_eq!(keyless.error_code, ErrorCode::InvalidRecord.code());

    let written = produce_rounds(&mut c).await;
    let end = (KEYS * ROUNDS + 2) as i64;
    let dir = data.path().join(format!("{TOPIC}-0"));
    let before = segments(&dir);
    assert!(before.len() >= 3, "small segments: {before:?}");
    let active_base = before.last().unwrap().0;
    assert_eq!(fetch_records(&mut c).await, written);

    let state = broker.state().clone();
    let compacted = tokio::task::spawn_blocking(move || state.compact_now(now_ms()))
        .await
        .unwrap();
    assert_eq!(compacted, 1, "one partition compacted");

    let expected = expected_after_compaction(&written, active_base);
    assert!(expected.len() < written.len());
    assert_eq!(fetch_records(&mut c).await, expected);
    // The tombstone of k3 was superseded by later rounds; that of `gone` is kept
    // (`delete.retention.ms` has not passed), its value is not.
    let gone: Vec<&Entry> = expected.values().filter(|(k, _)| k == "gone").collect();
    assert_eq!(gone, vec![&("gone".to_string(), None)]);
    assert!(expected.values().all(|(k, v)| k == "gone" || v.is_some()));

    let after = segments(&dir);
    let size = |s: &[(i64, u64)]| s.iter().map(|(_, n)| n).sum::<u64>();
    assert!(size(&after) < size(&before), "{before:?} -> {after:?}");
    assert_eq!(
        after.last(),
        before.last(),
        "the active segment is untouched"
    );
    assert_eq!(after[0].0, 0);

    // Offsets are unchanged: earliest/latest, and a fetch inside a removed range answers
    // with the batch holding the next retained offset.
    assert_eq!(offset_for(&mut c, TOPIC, 0, -2).await, 0);
    assert_eq!(offset_for(&mut c, TOPIC, 0, -1).await, end);
    let first_kept = *expected.keys().next().unwrap();
    assert!(first_kept > 0);
    let p = fetch(&mut c, TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(p.error_code, 0);
    let first = records_of(&batches_of(&p)[..1]);
    assert_eq!(first[0].offset, first_kept);

    // Kafka's checkpoint file records how far the partition was cleaned.
    let checkpoint =
        std::fs::read_to_string(data.path().join("cleaner-offset-checkpoint")).unwrap();
    assert_eq!(checkpoint, format!("0\n1\n{TOPIC} 0 {active_base}\n"));

    // New records append after the compacted ones; a restart serves the same log.
    let more = batch(
        &[(Some(b"k0".as_slice()), Some(b"after".as_slice()))],
        Compression::None,
        now_ms(),
    );
    assert_eq!(produce_ok(&mut c, TOPIC, 0, more).await, end);
    let mut expected = expected;
    expected.insert(end, ("k0".into(), Some("after".into())));
    drop(c);
    broker.shutdown().await;
    let broker = Broker::builder()
        .data_dir(data.path())
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(fetch_records(&mut c).await, expected);
    broker.shutdown().await;
}

/// The periodic retention task compacts a topic once its dirty ratio is above
/// `min.cleanable.dirty.ratio`.
#[tokio::test]
async fn the_retention_task_compacts_when_the_dirty_ratio_is_reached() {
    let broker = Broker::builder()
        .config("log.retention.check.interval.ms", "50")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact,delete"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.1"),
        ],
    )
    .await;
    let written = produce_rounds(&mut c).await;
    let started = Instant::now();
    loop {
        let records = fetch_records(&mut c).await;
        if records.len() < written.len() {
            // Every record left is what was written at its offset, and the newest record of
            // every key is still there.
            for (offset, entry) in &records {
                assert_eq!(&written[offset], entry, "offset {offset}");
            }
            let last = written.keys().last().unwrap();
            assert!(records.contains_key(last));
            break;
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "the log was never compacted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.shutdown().await;
}
