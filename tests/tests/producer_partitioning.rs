//! Where the producer puts records: keyed records by Java's murmur2, explicit partitions,
//! the uniform sticky partitioner for keyless records (KIP-794), `partitioner.ignore.keys`,
//! [`RoundRobinPartitioner`] and a custom [`Partitioner`]. Every test reads the log back.

mod producer_common;

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_client::metadata::TopicInfo;
use kafka_client::partitioner::{partition_for_key, Partitioner, RoundRobinPartitioner};
use kafka_client::producer::Producer;
use kafka_client::serializer::BytesSerializer;
use kafka_client::{Error, ProducerRecord};
use producer_common::*;

/// Java's `UtilsTest.testMurmur2` cases: key → `Utils.murmur2(key)`.
const JAVA_MURMUR2: [(&str, i32); 6] = [
    ("21", -973932308),
    ("foobar", -790332482),
    ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    (
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        -58897971,
    ),
    ("abc", 479470107),
];

/// `toPositive(murmur2(key)) % 12` for the keys of [`JAVA_MURMUR2`], worked out by hand from
/// Java's hashes (`(h & 0x7fffffff) % 12`).
const JAVA_PARTITIONS_OF_12: [i32; 6] = [0, 6, 8, 11, 5, 3];

#[tokio::test]
async fn keyed_records_land_on_the_murmur2_partition() {
    let topic = "keyed";
    let n = 12;
    let broker = broker_with_topic(topic, n, &[]).await;
    let p = producer(config(&broker.bootstrap_servers()));
    let count = NonZeroU32::new(n as u32).unwrap();

    // Java's own hashes, and the partitions they imply.
    let mut expected: BTreeMap<String, i32> = BTreeMap::new();
    for ((key, hash), want) in JAVA_MURMUR2.iter().zip(JAVA_PARTITIONS_OF_12) {
        assert_eq!(
            (hash & 0x7fff_ffff) % n,
            want,
            "hand-computed partition of {key}"
        );
        assert_eq!(
            partition_for_key(key.as_bytes(), count) as i32,
            want,
            "{key}"
        );
        expected.insert((*key).to_owned(), want);
    }
    // Plus many more keys, checked against the client's own function.
    for i in 0..300 {
        let key = format!("user-{i}");
        let want = partition_for_key(key.as_bytes(), count) as i32;
        expected.insert(key, want);
    }

    let mut futs = Vec::new();
    for round in 0..2 {
        for key in expected.keys() {
            let rec = ProducerRecord::new(topic, format!("{key}#{round}")).with_key(key.clone());
            futs.push((key.clone(), send(&p, rec).await));
        }
    }
    for (key, f) in futs {
        assert_eq!(
            f.partition(),
            expected[&key],
            "DeliveryFuture::partition of {key}"
        );
        let md = delivered(f).await;
        assert_eq!(
            md.partition, expected[&key],
            "RecordMetadata.partition of {key}"
        );
    }
    close(&p).await;

    let mut seen = 0;
    for (partition, recs) in all_records(&broker, topic, n).await {
        for r in &recs {
            let key = key_str(r);
            assert_eq!(
                expected[&key], partition,
                "{key} stored in partition {partition}"
            );
            seen += 1;
        }
        // Per key, round 0 was written before round 1.
        let values: Vec<String> = recs.iter().map(value_str).collect();
        for key in expected.keys().filter(|k| expected[*k] == partition) {
            let at = |round: i32| values.iter().position(|v| *v == format!("{key}#{round}"));
            assert!(at(0).unwrap() < at(1).unwrap(), "order of {key}");
        }
    }
    assert_eq!(seen, 2 * expected.len());
}

/// Chooses partition 1 for every record (to show that an explicit partition wins over it).
#[derive(Debug, Clone, Default)]
struct AlwaysOne {
    calls: Arc<AtomicUsize>,
}

impl Partitioner for AlwaysOne {
    fn partition(&self, _: &str, _: Option<&[u8]>, _: Option<&[u8]>, _: &TopicInfo) -> Option<i32> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Some(1)
    }
}

#[tokio::test]
async fn explicit_partition_wins_over_key_and_partitioner() {
    let topic = "explicit";
    let broker = broker_with_topic(topic, 4, &[]).await;
    let count = NonZeroU32::new(4).unwrap();
    // A key whose hash partition is not 3.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| partition_for_key(k.as_bytes(), count) != 3)
        .unwrap();

    // Default partitioner: the explicit partition beats the key's hash.
    let p = producer(config(&broker.bootstrap_servers()));
    let md = delivered(
        send(
            &p,
            ProducerRecord::new(topic, "explicit-keyed")
                .with_key(key.clone())
                .with_partition(3),
        )
        .await,
    )
    .await;
    assert_eq!(md.partition, 3);
    close(&p).await;

    // Custom partitioner: not even consulted for a record with an explicit partition.
    let partitioner = AlwaysOne::default();
    let p = Producer::builder(
        config(&broker.bootstrap_servers()).build().unwrap(),
        BytesSerializer,
        BytesSerializer,
    )
    .partitioner(partitioner.clone())
    .build()
    .unwrap();
    let explicit = send(
        &p,
        ProducerRecord::new(topic, "explicit-custom").with_partition(2),
    )
    .await;
    let chosen = send(
        &p,
        ProducerRecord::new(topic, "chosen-custom").with_key(key.clone()),
    )
    .await;
    assert_eq!(delivered(explicit).await.partition, 2);
    assert_eq!(delivered(chosen).await.partition, 1);
    assert_eq!(partitioner.calls.load(Ordering::SeqCst), 1);

    // A partition the topic does not have: waits for metadata, then times out.
    let p2 = producer(config(&broker.bootstrap_servers()).max_block(Duration::from_millis(300)));
    let err = p2
        .send(ProducerRecord::new(topic, "nowhere").with_partition(4))
        .await
        .unwrap_err();
    assert_timeout(&err, "Partition 4 of topic explicit");
    let err = p2
        .send(ProducerRecord::new(topic, "negative").with_partition(-1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    close(&p).await;
    close(&p2).await;

    let logs = all_records(&broker, topic, 4).await;
    let values = |p: i32| logs[&p].iter().map(value_str).collect::<Vec<_>>();
    assert_eq!(values(0), Vec::<String>::new());
    assert_eq!(values(1), ["chosen-custom"]);
    assert_eq!(values(2), ["explicit-custom"]);
    assert_eq!(values(3), ["explicit-keyed"]);
}

/// Sends `count` records (keyed with `key` if given) of `value_len` bytes to `topic` and
/// returns the partition of each, in send order.
async fn send_many(
    p: &Producer,
    topic: &str,
    count: usize,
    value_len: usize,
    key: Option<&str>,
) -> Vec<i32> {
    let mut futs = Vec::with_capacity(count);
    for i in 0..count {
        let mut value = format!("{i:06}-").into_bytes();
        value.resize(value_len, b'.');
        let mut rec = ProducerRecord::new(topic, Bytes::from(value));
        if let Some(k) = key {
            rec = rec.with_key(k.to_owned());
        }
        futs.push(send(p, rec).await);
    }
    promptly("flush", p.flush()).await.unwrap();
    let mut partitions = Vec::with_capacity(count);
    for f in futs {
        let announced = f.partition();
        let md = delivered(f).await;
        assert_eq!(md.partition, announced);
        partitions.push(md.partition);
    }
    partitions
}

/// Checks the sticky pattern of keyless records: the partition changes only after at least
/// `batch_size` bytes went to the current one, and every partition gets data.
fn assert_sticky(partitions: &[i32], n: i32, batch_size: usize, value_len: usize) {
    // Upper bound of the bytes one record adds to the produced count: its value, its
    // framing (offset/timestamp deltas, lengths, attributes: < 40 bytes here), and at worst a
    // whole batch header (61 bytes) when it starts a new batch.
    let per_record_max = value_len + 40 + 61;
    let min_run = batch_size.div_ceil(per_record_max);
    let mut runs: Vec<(i32, usize)> = Vec::new();
    for &p in partitions {
        match runs.last_mut() {
            Some((q, len)) if *q == p => *len += 1,
            _ => runs.push((p, 1)),
        }
    }
    assert!(runs.len() > 1, "keyless records never moved: {runs:?}");
    for (p, len) in &runs[..runs.len() - 1] {
        assert!(
            *len >= min_run,
            "partition {p} got only {len} records (< {min_run}) before the switch: {runs:?}"
        );
    }
    let used: BTreeSet<i32> = partitions.iter().copied().collect();
    assert_eq!(
        used,
        (0..n).collect::<BTreeSet<_>>(),
        "every partition gets data: {runs:?}"
    );
}

#[tokio::test]
async fn keyless_records_are_sticky_then_move_to_every_partition() {
    let topic = "sticky";
    let n = 4;
    let batch_size = 2048;
    let value_len = 100;
    let broker = broker_with_topic(topic, n, &[]).await;
    // Adaptive partitioning off: switches draw uniformly (the queue-size weighting is
    // timing-dependent).
    let p = producer(
        config(&broker.bootstrap_servers())
            .batch_size(batch_size)
            .linger(Duration::from_millis(0))
            .partitioner_adaptive_partitioning_enable(false),
    );
    let count = 1500; // ~ 60 sticky periods of at most 2 * batch.size bytes each
    let partitions = send_many(&p, topic, count, value_len, None).await;
    close(&p).await;
    assert_sticky(&partitions, n, batch_size, value_len);

    // The log matches the metadata, in send order within each partition, and no stored batch
    // is larger than batch.size.
    let mut total = 0;
    for part in 0..n {
        let stored = batches(&broker, topic, part).await;
        for b in &stored {
            assert!(
                b.size_in_bytes() <= batch_size,
                "batch of {} bytes",
                b.size_in_bytes()
            );
        }
        let recs = kafka_integration_tests::broker_api::records_of(&stored);
        let expected: Vec<usize> = (0..count).filter(|&i| partitions[i] == part).collect();
        let stored_ids: Vec<usize> = recs
            .iter()
            .map(|r| value_str(r)[..6].parse().unwrap())
            .collect();
        assert_eq!(stored_ids, expected, "partition {part}");
        assert!(recs.iter().all(|r| r.key.is_none()));
        total += recs.len();
    }
    assert_eq!(total, count);
}

#[tokio::test]
async fn partitioner_ignore_keys_spreads_keyed_records_like_keyless_ones() {
    let topic = "ignore-keys";
    let n = 4;
    let batch_size = 2048;
    let value_len = 100;
    let broker = broker_with_topic(topic, n, &[]).await;
    let p = producer(
        config(&broker.bootstrap_servers())
            .batch_size(batch_size)
            .linger(Duration::from_millis(0))
            .partitioner_ignore_keys(true)
            .partitioner_adaptive_partitioning_enable(false),
    );
    let partitions = send_many(&p, topic, 1500, value_len + 4, Some("same")).await;
    close(&p).await;
    // One key, yet every partition: the key is not hashed (it only adds bytes).
    assert_sticky(&partitions, n, batch_size, value_len + 4 + 4);
    for (part, recs) in all_records(&broker, topic, n).await {
        assert!(!recs.is_empty(), "partition {part} empty");
        assert!(recs.iter().all(|r| key_str(r) == "same"));
    }

    // Control: with the default (keys hashed) every record goes to the key's partition.
    let hashed = partition_for_key(b"same", NonZeroU32::new(n as u32).unwrap()) as i32;
    let p = producer(config(&broker.bootstrap_servers()).batch_size(batch_size));
    let partitions = send_many(&p, topic, 200, value_len, Some("same")).await;
    close(&p).await;
    assert!(partitions.iter().all(|&q| q == hashed), "{partitions:?}");
}

#[tokio::test]
async fn round_robin_partitioner_takes_partitions_in_turn() {
    let topic = "round-robin";
    let n = 5;
    let broker = broker_with_topic(topic, n, &[]).await;
    let cfg = config(&broker.bootstrap_servers()).build().unwrap();
    let p = Producer::builder(cfg, BytesSerializer, BytesSerializer)
        .partitioner(RoundRobinPartitioner::new())
        .build()
        .unwrap();
    let mut futs = Vec::new();
    for i in 0..53 {
        // Keys are ignored by the round-robin partitioner.
        let rec = ProducerRecord::new(topic, format!("{i}")).with_key("k".to_owned());
        futs.push(send(&p, rec).await);
    }
    // An explicit partition does not consume a turn.
    let explicit = send(&p, ProducerRecord::new(topic, "explicit").with_partition(0)).await;
    let next = send(&p, ProducerRecord::new(topic, "53")).await;
    futs.push(next);
    for (i, md) in delivered_all(futs).await.iter().enumerate() {
        assert_eq!(md.partition, i as i32 % n, "record {i}");
    }
    assert_eq!(delivered(explicit).await.partition, 0);
    close(&p).await;

    for (part, recs) in all_records(&broker, topic, n).await {
        let mut values: Vec<String> = recs.iter().map(value_str).collect();
        if part == 0 {
            values.retain(|v| v != "explicit");
        }
        let expected: Vec<String> = (0..54)
            .filter(|i| i % n == part)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(values, expected, "partition {part}");
    }
}

/// Routes by the value's first byte: `'0'..='9'` to that partition modulo the count; any
/// other value is left to the built-in partitioner (`None`). Sees the serialized key/value.
#[derive(Debug, Clone, Default)]
struct ByFirstDigit {
    calls: Arc<AtomicUsize>,
    saw_keys: Arc<AtomicUsize>,
}

impl Partitioner for ByFirstDigit {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        info: &TopicInfo,
    ) -> Option<i32> {
        assert_eq!(topic, "custom");
        assert_eq!(info.partition_count(), 3);
        self.calls.fetch_add(1, Ordering::SeqCst);
        if key.is_some() {
            self.saw_keys.fetch_add(1, Ordering::SeqCst);
        }
        match value?.first()? {
            d @ b'0'..=b'9' => Some(i32::from(d - b'0') % 3),
            _ => None,
        }
    }
}

/// Returns a partition the topic does not have.
#[derive(Debug)]
struct OutOfRange;

impl Partitioner for OutOfRange {
    fn partition(
        &self,
        _: &str,
        _: Option<&[u8]>,
        _: Option<&[u8]>,
        info: &TopicInfo,
    ) -> Option<i32> {
        Some(info.partition_count() as i32)
    }
}

#[tokio::test]
async fn custom_partitioner_decides_and_can_defer_to_the_built_in_one() {
    let topic = "custom";
    let broker = broker_with_topic(topic, 3, &[]).await;
    let partitioner = ByFirstDigit::default();
    let cfg = config(&broker.bootstrap_servers()).build().unwrap();
    let p = Producer::builder(cfg, BytesSerializer, BytesSerializer)
        .partitioner(partitioner.clone())
        .build()
        .unwrap();
    let mut futs = Vec::new();
    for i in 0..30 {
        let rec = ProducerRecord::new(topic, format!("{}-value-{i}", i % 10))
            .with_key(format!("key-{i}"));
        futs.push((Some((i % 10) % 3), send(&p, rec).await));
    }
    // Deferred to the built-in partitioner: with a custom partitioner the key is not hashed,
    // records go to the (one) sticky partition.
    for i in 0..5 {
        let rec =
            ProducerRecord::new(topic, format!("x-deferred-{i}")).with_key(format!("key-{i}"));
        futs.push((None, send(&p, rec).await));
    }
    let mut deferred = BTreeSet::new();
    for (want, f) in futs {
        let md = delivered(f).await;
        match want {
            Some(w) => assert_eq!(md.partition, w),
            None => {
                deferred.insert(md.partition);
            }
        }
    }
    assert_eq!(
        deferred.len(),
        1,
        "five small keyless-routed records stick to one partition"
    );
    assert_eq!(partitioner.calls.load(Ordering::SeqCst), 35);
    assert_eq!(partitioner.saw_keys.load(Ordering::SeqCst), 35);
    close(&p).await;

    for (part, recs) in all_records(&broker, topic, 3).await {
        for r in &recs {
            let v = value_str(r);
            match v.as_bytes()[0] {
                d @ b'0'..=b'9' => assert_eq!(i32::from(d - b'0') % 3, part, "{v}"),
                _ => assert!(deferred.contains(&part), "{v}"),
            }
        }
    }

    // A partition out of range is refused at send time, before anything is queued.
    let cfg = config(&broker.bootstrap_servers()).build().unwrap();
    let p = Producer::builder(cfg, BytesSerializer, BytesSerializer)
        .partitioner(OutOfRange)
        .build()
        .unwrap();
    let err = p.send(ProducerRecord::new(topic, "bad")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    close(&p).await;
}
