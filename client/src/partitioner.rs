//! Partitioners: which partition a record goes to.
//!
//! The producer picks a record's partition as Java's `KafkaProducer.partition` and
//! `RecordAccumulator.append` do (Kafka 3.3 and later):
//!
//! 1. A partition set on the [`ProducerRecord`](crate::ProducerRecord) wins. Nothing else is
//!    consulted for that record.
//! 2. Otherwise a configured [`Partitioner`] (Java's `partitioner.class`, for example
//!    [`RoundRobinPartitioner`]) decides. In this crate it may return `None` to hand the record
//!    to step 4.
//! 3. Otherwise a record with a key goes to [`partition_for_key`] (unless
//!    `partitioner.ignore.keys` is set).
//! 4. Otherwise the record goes to the topic's current sticky partition, kept by the topic's
//!    [`BuiltInPartitioner`].
//!
//! # Records without a key: uniform sticky partitioning (KIP-794)
//!
//! [`BuiltInPartitioner`] is the partitioner of
//! [KIP-794](https://cwiki.apache.org/confluence/display/KAFKA/KIP-794%3A+Strictly+Uniform+Sticky+Partitioner),
//! a port of Java's `org.apache.kafka.clients.producer.internals.BuiltInPartitioner`. It sends
//! every unkeyed record of a topic to one partition until `batch.size` bytes went there, then
//! switches to another partition chosen at random. So batches fill up (few large requests), and
//! over time every partition receives the same number of bytes. With adaptive partitioning
//! (`partitioner.adaptive.partitioning.enable`, the default), the random choice is weighted by
//! the partitions' queue lengths, so partitions whose brokers drain slower get less. Partitions
//! without a leader are never chosen, unless no partition of the topic has one.
//!
//! The struct holds no clock, socket or lock: the accumulator owns one per topic, feeds it the
//! appended sizes and queue lengths, and serializes access to it.
//!
//! # Keyed records: Java-compatible murmur2
//!
//! A record with a key goes to the partition chosen by [`partition_for_key`]: the 32-bit
//! murmur2 hash of the serialized key bytes, made non-negative with [`to_positive`], modulo the
//! partition count. This is what the Java producer does
//! (`BuiltInPartitioner.partitionForKey`, which computes
//! `Utils.toPositive(Utils.murmur2(serializedKey)) % numPartitions`). librdkafka's `murmur2` and
//! `murmur2_random` partitioners compute the same thing
//! (`(rd_murmur2(key, keylen) & 0x7fffffff) % partition_cnt`; `murmur2_random` sends only
//! records without a key to a random partition). So a keyed record lands on the same partition
//! whether a Java client, a librdkafka client set to `partitioner=murmur2_random`, or this crate
//! produced it. Keeping this mapping is what preserves per-key ordering when producers in
//! different languages share a topic.
//!
//! librdkafka's *default* partitioner, `consistent_random`, uses CRC32 instead. It puts keys on
//! different partitions than the Java client and this crate do.
//!
//! # The hash function
//!
//! [`murmur2`](fn@murmur2) is MurmurHash2 (the endian-neutral variant) with Kafka's seed
//! `0x9747b28c`, as in `org.apache.kafka.common.utils.Utils.murmur2`. It comes from the
//! `murmur2` crate, which computes exactly what the Java code does:
//!
//! - it reads 4-byte blocks little-endian;
//! - it folds in the 1 to 3 tail bytes as unsigned values (Java masks each with `& 0xff`, so
//!   negative `byte`s do not sign-extend);
//! - it uses wrapping 32-bit multiplies and logical right shifts (Java's `>>>`).
//!
//! The tests check this. Besides Kafka's own vectors, they compare the crate with a line-by-line
//! port of the Java method over every input of length 0 to 2 and over pseudo-random inputs of
//! every length up to 64, tail bytes of 0x80 to 0xFF included.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::metadata::TopicInfo;

/// The seed Kafka's Java client uses for murmur2 (`Utils.murmur2`).
const KAFKA_SEED: u32 = 0x9747_b28c;

/// The 32-bit murmur2 hash of `data`, bit for bit what Java's
/// `org.apache.kafka.common.utils.Utils.murmur2(byte[])` returns.
///
/// ```
/// use kafka_client::partitioner::murmur2;
/// assert_eq!(murmur2(b"foobar"), -790332482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    // Reinterpret the u32 as Java's signed int; `as` keeps the bit pattern.
    murmur2::murmur2(data, KAFKA_SEED) as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (`n & 0x7fffffff`). This is not `abs`:
/// `to_positive(-1)` is `i32::MAX` and `to_positive(i32::MIN)` is `0`.
pub const fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition the Java producer picks for a record with serialized key `key`:
/// `toPositive(murmur2(key)) % numPartitions`, as in `BuiltInPartitioner.partitionForKey`.
/// An empty key is still a key and is hashed like any other; records with no key are not
/// handled here.
///
/// The partition count is a `NonZeroU32` because it comes from broker metadata: a topic
/// reported with zero partitions must be handled by the caller, not divide by zero here.
///
/// ```
/// use std::num::NonZeroU32;
/// use kafka_client::partitioner::partition_for_key;
/// let n = NonZeroU32::new(12).unwrap();
/// assert!(partition_for_key(b"order-42", n) < 12);
/// ```
pub fn partition_for_key(key: &[u8], num_partitions: NonZeroU32) -> u32 {
    // `to_positive` leaves a value in 0..=i32::MAX, so the cast to u32 is exact.
    (to_positive(murmur2(key)) as u32) % num_partitions.get()
}

/// A custom partitioner: Java's `org.apache.kafka.clients.producer.Partitioner`
/// (`partitioner.class`).
///
/// The producer consults it only for records without an explicit partition. A partition set on
/// the [`ProducerRecord`](crate::ProducerRecord) always wins, and the partitioner is not called
/// for that record.
///
/// One instance serves every sending task and thread, hence `Send + Sync`: mutable state needs
/// synchronization, as in [`RoundRobinPartitioner`].
pub trait Partitioner: Send + Sync + fmt::Debug {
    /// Chooses the partition of a record of `topic`.
    ///
    /// `key` and `value` are the serialized key and value (`None` for a record without a key,
    /// and for a tombstone). `topic_info` is the topic's current metadata: all its partitions
    /// and, in `available_partitions`, those that have a leader.
    ///
    /// Return `Some(p)` with `0 <= p < topic_info.partition_count()`; the producer rejects a
    /// negative partition, as Java's does. Return `None` to let the built-in uniform sticky
    /// partitioning ([`BuiltInPartitioner`]) choose. The key is not hashed in that case; a
    /// partitioner that wants Java's default for keyed records calls [`partition_for_key`].
    ///
    /// `None` is this crate's addition. Java 3.3+ uses `-1` (`RecordMetadata.UNKNOWN_PARTITION`)
    /// internally for "the built-in partitioning decides", but a Java `Partitioner` cannot ask
    /// for it: `KafkaProducer` throws `IllegalArgumentException` when one returns a negative
    /// number.
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        topic_info: &TopicInfo,
    ) -> Option<i32>;

    /// Called once when the producer closes (Java's `Partitioner.close`). Does nothing by
    /// default.
    fn close(&self) {}
}

/// Java's `org.apache.kafka.clients.producer.RoundRobinPartitioner`: ignores keys and values
/// and spreads records over the partitions in turn.
///
/// Each topic has its own counter, starting at 0 and incremented on every call. The record goes
/// to `available[counter % available.len()]`, where `available` are the partitions with a
/// leader, or, when no partition has one, to partition `counter % partition_count`. The counter
/// wraps like a Java `int` and is made non-negative with [`to_positive`], as in Java.
///
/// Thread-safe: concurrent calls each take a distinct counter value.
///
/// ```
/// use kafka_client::partitioner::{Partitioner, RoundRobinPartitioner};
/// # use kafka_client::metadata::{PartitionInfo, TopicInfo};
/// # let partition = |i| PartitionInfo {
/// #     partition: i, leader: Some(1), leader_epoch: 0, replicas: vec![1], isr: vec![1],
/// #     error: kafka_wire::ErrorCode::None,
/// # };
/// # let topic_info = TopicInfo {
/// #     name: "events".into(), topic_id: kafka_wire::Uuid::ZERO, is_internal: false,
/// #     partitions: vec![partition(0), partition(1), partition(2)],
/// #     available_partitions: vec![0, 1, 2],
/// # };
/// let partitioner = RoundRobinPartitioner::new();
/// let picks: Vec<_> = (0..4)
///     .map(|_| partitioner.partition("events", None, None, &topic_info))
///     .collect();
/// assert_eq!(picks, [Some(0), Some(1), Some(2), Some(0)]);
/// ```
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    /// Next counter value per topic (Java's `topicCounterMap`).
    counters: Mutex<HashMap<String, i32>>,
}

impl RoundRobinPartitioner {
    /// A partitioner with every topic's counter at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Java's `nextValue`: the topic's counter, then increments it (wrapping).
    fn next_value(&self, topic: &str) -> i32 {
        // A panic while holding the lock cannot leave a counter half-updated, so a poisoned
        // lock is still usable.
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = counters.get_mut(topic) {
            let value = *counter;
            *counter = value.wrapping_add(1);
            return value;
        }
        // First record of the topic: hand out 0, the next call gets 1.
        counters.insert(topic.to_owned(), 1);
        0
    }
}

impl Partitioner for RoundRobinPartitioner {
    /// The next partition in turn; `None` only when the topic has no partitions at all.
    fn partition(
        &self,
        topic: &str,
        _key: Option<&[u8]>,
        _value: Option<&[u8]>,
        topic_info: &TopicInfo,
    ) -> Option<i32> {
        // `to_positive` leaves a value in 0..=i32::MAX, so the cast is exact.
        let next = to_positive(self.next_value(topic)) as usize;
        let available = &topic_info.available_partitions;
        if !available.is_empty() {
            available.get(next % available.len()).copied()
        } else {
            // No partition has a leader: pick among all of them, as Java does.
            let count = topic_info.partition_count();
            // `next % count <= next <= i32::MAX`.
            (count > 0).then(|| (next % count) as i32)
        }
    }
}

/// The partition currently receiving a topic's unkeyed records, and how many bytes were
/// appended to it since it was chosen (Java's `BuiltInPartitioner.StickyPartitionInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StickyPartitionInfo {
    partition: i32,
    produced_bytes: usize,
}

impl StickyPartitionInfo {
    /// The sticky partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Bytes appended to the partition since it became the sticky one.
    pub fn produced_bytes(&self) -> usize {
        self.produced_bytes
    }
}

/// Adaptive partitioning weights (Java's `BuiltInPartitioner.PartitionLoadStats`).
///
/// Invariants: both vectors have the same, non-zero length; the table is strictly increasing
/// and starts at 1 or more.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionLoadStats {
    /// Running sum of the inverted queue sizes (`max + 1 - size`). `i64` where Java has `int`:
    /// the same values, without overflow on absurd queue sizes.
    cumulative_frequency_table: Vec<i64>,
    /// The partition of each table entry.
    partition_ids: Vec<i32>,
}

/// The random numbers of a [`BuiltInPartitioner`]: splitmix64, which is small, fast and good
/// enough to spread partitions (Java uses `ThreadLocalRandom`). Not for cryptography.
#[derive(Debug)]
enum Rng {
    SplitMix64(u64),
    /// 0, 1, 2, ...: Java's tests replace the random numbers with this sequence
    /// (`BuiltInPartitioner.mockRandom`), which makes frequencies exact.
    #[cfg(test)]
    Sequence(i32),
}

impl Rng {
    /// A seed that differs between processes (the standard library's randomly keyed hasher),
    /// between instances (a counter and an address) and over time.
    fn default_seed() -> u64 {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let local = 0u8;
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(INSTANCES.fetch_add(1, Ordering::Relaxed));
        hasher.write_usize(std::ptr::addr_of!(local) as usize);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        hasher.finish()
    }

    /// 32 random bits, as a Java `int`.
    fn next_i32(&mut self) -> i32 {
        match self {
            Rng::SplitMix64(state) => {
                *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                // The high half: the better-mixed bits. Truncation is intended.
                (z >> 32) as u32 as i32
            }
            #[cfg(test)]
            Rng::Sequence(next) => {
                let value = *next;
                *next = next.wrapping_add(1);
                value
            }
        }
    }
}

/// The built-in uniform sticky partitioner of one topic (KIP-794), a port of Java's
/// `org.apache.kafka.clients.producer.internals.BuiltInPartitioner`. See the
/// [module documentation](self) for what it does.
///
/// It is deterministic given its random numbers, and does no I/O and reads no clock; the
/// record accumulator drives it:
///
/// 1. [`peek_current_partition`](Self::peek_current_partition) tells which partition an
///    unkeyed record goes to;
/// 2. the accumulator locks that partition's batch queue, and checks with
///    [`is_partition_changed`](Self::is_partition_changed) that no concurrent append switched
///    the partition meanwhile (if it did, it starts over);
/// 3. it appends the record, and reports the appended size with
///    [`update_partition_info`](Self::update_partition_info), which switches to a new partition
///    once `sticky_batch_size` bytes went to the current one;
/// 4. independently, when it computes which partitions are ready to send, it reports the
///    queue sizes with [`update_partition_load_stats`](Self::update_partition_load_stats).
///
/// Methods that may change state take `&mut self`; a producer shared between threads wraps each
/// topic's partitioner in a lock.
///
/// ```
/// use kafka_client::partitioner::BuiltInPartitioner;
/// # use kafka_client::metadata::{PartitionInfo, TopicInfo};
/// # let partition = |i| PartitionInfo {
/// #     partition: i, leader: Some(1), leader_epoch: 0, replicas: vec![1], isr: vec![1],
/// #     error: kafka_wire::ErrorCode::None,
/// # };
/// # let topic_info = TopicInfo {
/// #     name: "events".into(), topic_id: kafka_wire::Uuid::ZERO, is_internal: false,
/// #     partitions: (0..6).map(partition).collect(),
/// #     available_partitions: (0..6).collect(),
/// # };
/// // Switch after 16 KiB (`batch.size`).
/// let mut partitioner = BuiltInPartitioner::new("events", 16 * 1024);
/// let first = partitioner.peek_current_partition(&topic_info);
/// partitioner.update_partition_info(first, 10_000, &topic_info, true);
/// assert_eq!(partitioner.peek_current_partition(&topic_info), first);
/// // 20,000 bytes >= 16 KiB: a new partition is drawn (possibly the same one again).
/// partitioner.update_partition_info(first, 10_000, &topic_info, true);
/// let next = partitioner.peek_current_partition(&topic_info);
/// assert!((0..6).contains(&next));
/// ```
#[derive(Debug)]
pub struct BuiltInPartitioner {
    topic: String,
    sticky_batch_size: usize,
    current: Option<StickyPartitionInfo>,
    load_stats: Option<PartitionLoadStats>,
    rng: Rng,
}

impl BuiltInPartitioner {
    /// The partitioner of `topic`, switching partitions after `sticky_batch_size` bytes (the
    /// producer passes `batch.size`). Its random numbers are seeded differently for every
    /// instance.
    ///
    /// A `sticky_batch_size` of 0 is taken as 1. Java's constructor rejects values below 1,
    /// and Java's producer passes `max(1, batch.size)`, since `batch.size=0` is valid.
    pub fn new(topic: impl Into<String>, sticky_batch_size: usize) -> Self {
        Self::with_rng(
            topic.into(),
            sticky_batch_size,
            Rng::SplitMix64(Rng::default_seed()),
        )
    }

    /// Like [`new`](Self::new), with random numbers from a fixed `seed`: the same seed and the
    /// same calls give the same partitions (for tests and reproductions).
    pub fn with_seed(topic: impl Into<String>, sticky_batch_size: usize, seed: u64) -> Self {
        Self::with_rng(topic.into(), sticky_batch_size, Rng::SplitMix64(seed))
    }

    fn with_rng(topic: String, sticky_batch_size: usize, rng: Rng) -> Self {
        BuiltInPartitioner {
            topic,
            sticky_batch_size: sticky_batch_size.max(1),
            current: None,
            load_stats: None,
            rng,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Bytes to append to a partition before switching to another (at least 1).
    pub fn sticky_batch_size(&self) -> usize {
        self.sticky_batch_size
    }

    /// The current sticky partition and the bytes appended to it, or `None` before the first
    /// [`peek_current_partition`](Self::peek_current_partition).
    pub fn current_partition_info(&self) -> Option<StickyPartitionInfo> {
        self.current
    }

    /// Whether adaptive weights from [`update_partition_load_stats`] are in use; `false` means
    /// partitions are drawn uniformly.
    ///
    /// [`update_partition_load_stats`]: Self::update_partition_load_stats
    pub fn has_load_stats(&self) -> bool {
        self.load_stats.is_some()
    }

    /// The partition unkeyed records go to now (Java's `peekCurrentPartitionInfo`). The first
    /// call chooses one with [`next_partition`](Self::next_partition); later calls return the
    /// same partition until [`update_partition_info`](Self::update_partition_info) switches.
    ///
    /// Returns -1 (Java's `RecordMetadata.UNKNOWN_PARTITION`) when `topic_info` has no
    /// partitions, and then keeps no sticky partition, so the next call chooses again. (Java
    /// divides by zero there; the producer waits for metadata with partitions before getting
    /// here.)
    pub fn peek_current_partition(&mut self, topic_info: &TopicInfo) -> i32 {
        if let Some(current) = self.current {
            return current.partition;
        }
        let partition = self.next_partition(topic_info);
        self.current = (partition >= 0).then_some(StickyPartitionInfo {
            partition,
            produced_bytes: 0,
        });
        partition
    }

    /// Whether `partition`, a value [`peek_current_partition`](Self::peek_current_partition)
    /// returned, is no longer the sticky partition: another append switched it in between
    /// (Java's `isPartitionChanged`). The accumulator checks this under the partition's queue
    /// lock, and peeks again when it returns `true`.
    ///
    /// Java compares the `StickyPartitionInfo` objects by identity, so it also reports a switch
    /// that drew the same partition again. Comparing indexes does not; appending to the partition
    /// that is current either way is harmless.
    pub fn is_partition_changed(&self, partition: i32) -> bool {
        self.current.map(|c| c.partition) != Some(partition)
    }

    /// Records that `appended_bytes` were appended to `partition`, and maybe switches to a new
    /// partition (Java's `updatePartitionInfo`).
    ///
    /// Does nothing unless `partition` is the current sticky partition (a keyed record, an
    /// explicit partition, or a stale peek). Otherwise the produced bytes grow by
    /// `appended_bytes`, and the partitioner switches, with
    /// [`next_partition`](Self::next_partition), when
    /// `produced >= sticky_batch_size && enable_switch` or `produced >= 2 * sticky_batch_size`.
    /// The caller passes `enable_switch = false` while the partition's last batch is not ready
    /// to send, so that a switch does not leave a small batch behind (with a long `linger.ms`);
    /// the 2x cap bounds how long that can delay a switch.
    pub fn update_partition_info(
        &mut self,
        partition: i32,
        appended_bytes: usize,
        topic_info: &TopicInfo,
        enable_switch: bool,
    ) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        if current.partition != partition {
            return;
        }
        current.produced_bytes = current.produced_bytes.saturating_add(appended_bytes);
        let produced = current.produced_bytes;
        let twice = self.sticky_batch_size.saturating_mul(2);
        if produced >= twice {
            tracing::trace!(
                topic = %self.topic,
                produced,
                sticky_batch_size = self.sticky_batch_size,
                enable_switch,
                "produced at least twice the sticky batch size"
            );
        }
        if (produced >= self.sticky_batch_size && enable_switch) || produced >= twice {
            let next = self.next_partition(topic_info);
            self.current = (next >= 0).then_some(StickyPartitionInfo {
                partition: next,
                produced_bytes: 0,
            });
        }
    }

    /// Sets the adaptive partitioning weights from the partitions' queue sizes (Java's
    /// `updatePartitionLoadStats` with `length == queue_sizes.len()`).
    ///
    /// `queue_sizes[i]` is the number of batches queued for partition `partition_ids[i]`;
    /// partitions without a leader are left out. `None` (adaptive partitioning disabled, or
    /// the accumulator did not see every partition) removes the weights: switches then draw
    /// uniformly among the available partitions. So do fewer than two partitions, and queue
    /// sizes that are all equal.
    ///
    /// Otherwise each partition's weight is `max + 1 - size`, where `max` is the largest queue
    /// size: a partition with an empty queue is drawn `max + 1` times as often as the one with
    /// the longest queue. Only these partitions are drawn from until the next update.
    pub fn update_partition_load_stats(
        &mut self,
        queue_sizes: Option<&[i32]>,
        partition_ids: &[i32],
    ) {
        let length = queue_sizes.map_or(0, <[i32]>::len);
        self.update_partition_load_stats_with_length(queue_sizes, partition_ids, length);
    }

    /// Java's `updatePartitionLoadStats(queueSizes, partitionIds, length)`: like
    /// [`update_partition_load_stats`](Self::update_partition_load_stats), but only the first
    /// `length` partitions are candidates. The accumulator moves the partitions it excludes
    /// (their latency exceeded `partitioner.availability.timeout.ms`) past `length`.
    ///
    /// With exclusions, the weights are used even when the remaining queue sizes are equal or
    /// a single partition remains, so the excluded partitions are not drawn. Without a
    /// leader-having partition left (`length == 0`), the weights are removed. If the slices
    /// differ in length, the extra entries of the longer one are ignored; `length` is capped
    /// to the shorter one.
    pub fn update_partition_load_stats_with_length(
        &mut self,
        queue_sizes: Option<&[i32]>,
        partition_ids: &[i32],
        length: usize,
    ) {
        let Some(queue_sizes) = queue_sizes else {
            tracing::trace!(topic = %self.topic, "no load stats, not using adaptive partitioning");
            self.load_stats = None;
            return;
        };
        let all = queue_sizes.len().min(partition_ids.len());
        let length = length.min(all);
        // With fewer than 2 partitions there is nothing to choose, unless some were excluded.
        if length < 1 || all < 2 {
            tracing::trace!(
                topic = %self.topic,
                available = length,
                all,
                "too few partitions, not using adaptive partitioning"
            );
            self.load_stats = None;
            return;
        }
        let sizes = &queue_sizes[..length];
        let max = sizes.iter().copied().max().unwrap_or(0);
        let all_equal = sizes.iter().all(|&s| s == sizes[0]);
        if all_equal && length == all {
            tracing::trace!(
                topic = %self.topic,
                "all queue sizes are equal, not using adaptive partitioning"
            );
            self.load_stats = None;
            return;
        }
        // Invert the sizes into frequencies and fold them into a running sum: sizes 0 3 1
        // (max + 1 = 4) become frequencies 4 1 3 and the table 4 5 8. A uniform draw in 0..8
        // then maps to the first entry strictly greater: 0..=3 to the first partition, 4 to the
        // second, 5..=7 to the third.
        let max_plus_1 = i64::from(max) + 1;
        let mut sum = 0i64;
        let cumulative_frequency_table: Vec<i64> = sizes
            .iter()
            .map(|&size| {
                sum += max_plus_1 - i64::from(size);
                sum
            })
            .collect();
        tracing::trace!(
            topic = %self.topic,
            cft = ?cumulative_frequency_table,
            ids = ?&partition_ids[..length],
            "partition load stats"
        );
        self.load_stats = Some(PartitionLoadStats {
            cumulative_frequency_table,
            partition_ids: partition_ids[..length].to_vec(),
        });
    }

    /// Draws a new partition (Java's `nextPartition`) without changing the sticky partition.
    ///
    /// With load stats, a weighted draw among their partitions; otherwise a uniform draw among
    /// the partitions that have a leader, or among all partitions when none has one. Returns
    /// -1 when the topic has no partitions and there are no load stats.
    pub fn next_partition(&mut self, topic_info: &TopicInfo) -> i32 {
        // As in Java, one non-negative random `int` per draw, taken modulo the range.
        // `to_positive` leaves 0..=i32::MAX, so the cast is exact.
        let random = to_positive(self.rng.next_i32()) as usize;
        let partition = match &self.load_stats {
            Some(stats) => {
                let end = stats
                    .cumulative_frequency_table
                    .last()
                    .copied()
                    .unwrap_or(1);
                // `end >= 1`: every frequency is at least 1.
                let weighted = random as i64 % end;
                // The first entry strictly greater than `weighted`; it exists since
                // `weighted < end`. (Java uses `Arrays.binarySearch` to the same effect.)
                let index = stats
                    .cumulative_frequency_table
                    .partition_point(|&c| c <= weighted);
                stats.partition_ids.get(index).copied().unwrap_or(-1)
            }
            None => {
                let available = &topic_info.available_partitions;
                let count = topic_info.partition_count();
                if !available.is_empty() {
                    available
                        .get(random % available.len())
                        .copied()
                        .unwrap_or(-1)
                } else if count > 0 {
                    // `random % count <= random <= i32::MAX`.
                    (random % count) as i32
                } else {
                    -1
                }
            }
        };
        tracing::trace!(topic = %self.topic, partition, "switching partition");
        partition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line-by-line port of Java's `Utils.murmur2`, used only to cross-check the `murmur2`
    /// crate. Java's `byte` is signed; `b as i8 as i32 & 0xff` copies its `data[i] & 0xff`.
    fn java_murmur2(data: &[u8]) -> i32 {
        let byte = |i: usize| (data[i] as i8 as i32) & 0xff;
        let length = data.len() as i32;
        let seed = 0x9747b28c_u32 as i32;
        let m: i32 = 0x5bd1e995;
        let r = 24;
        let mut h = seed ^ length;
        let length4 = length / 4;
        for i in 0..length4 as usize {
            let i4 = i * 4;
            let mut k = byte(i4)
                .wrapping_add(byte(i4 + 1) << 8)
                .wrapping_add(byte(i4 + 2) << 16)
                .wrapping_add(byte(i4 + 3) << 24);
            k = k.wrapping_mul(m);
            k ^= ((k as u32) >> r) as i32;
            k = k.wrapping_mul(m);
            h = h.wrapping_mul(m);
            h ^= k;
        }
        let base = (length & !3) as usize;
        // Java's switch falls through from case 3 to case 1.
        let tail = length % 4;
        if tail >= 3 {
            h ^= byte(base + 2) << 16;
        }
        if tail >= 2 {
            h ^= byte(base + 1) << 8;
        }
        if tail >= 1 {
            h ^= byte(base);
            h = h.wrapping_mul(m);
        }
        h ^= ((h as u32) >> 13) as i32;
        h = h.wrapping_mul(m);
        h ^= ((h as u32) >> 15) as i32;
        h
    }

    /// Kafka's own test vectors, verbatim from `UtilsTest.testMurmur2` in apache/kafka
    /// (`clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java`, commit
    /// f55581dc73953c3509a4702433aeeeddc2970779):
    ///
    /// ```java
    /// cases.put("21".getBytes(), -973932308);
    /// cases.put("foobar".getBytes(), -790332482);
    /// cases.put("a-little-bit-long-string".getBytes(), -985981536);
    /// cases.put("a-little-bit-longer-string".getBytes(), -1486304829);
    /// cases.put("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8".getBytes(), -58897971);
    /// cases.put(new byte[] {'a', 'b', 'c'}, 479470107);
    /// ```
    const KAFKA_UTILS_TEST_VECTORS: &[(&[u8], i32)] = &[
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
        ),
        // Java: `new byte[] {'a', 'b', 'c'}`.
        (b"abc", 479470107),
    ];

    #[test]
    fn kafka_utils_test_murmur2_vectors() {
        for &(input, expected) in KAFKA_UTILS_TEST_VECTORS {
            assert_eq!(
                murmur2(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                java_murmur2(input),
                expected,
                "reference port disagrees with Kafka"
            );
        }
    }

    #[test]
    fn seed_matches_the_crate_constant() {
        assert_eq!(KAFKA_SEED, murmur2::KAFKA_SEED);
    }

    #[test]
    fn crate_matches_java_port_for_every_input_up_to_two_bytes() {
        assert_eq!(murmur2(&[]), java_murmur2(&[]));
        for a in 0..=255u8 {
            assert_eq!(murmur2(&[a]), java_murmur2(&[a]), "[{a}]");
            for b in 0..=255u8 {
                assert_eq!(murmur2(&[a, b]), java_murmur2(&[a, b]), "[{a}, {b}]");
            }
        }
    }

    #[test]
    fn crate_matches_java_port_for_all_lengths_and_high_bytes() {
        // xorshift32: deterministic bytes across the whole 0..=255 range, "negative" ones
        // (0x80..=0xFF as a Java byte) included.
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for len in 0..=64 {
            for _ in 0..64 {
                let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                assert_eq!(murmur2(&data), java_murmur2(&data), "{data:?}");
            }
            let all_ff = vec![0xff_u8; len];
            assert_eq!(murmur2(&all_ff), java_murmur2(&all_ff), "0xff x {len}");
            let all_80 = vec![0x80_u8; len];
            assert_eq!(murmur2(&all_80), java_murmur2(&all_80), "0x80 x {len}");
        }
    }

    #[test]
    fn to_positive_masks_the_sign_bit() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(10), 10);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(i32::MAX), i32::MAX);
        assert_eq!(to_positive(-973932308), -973932308 & 0x7fffffff);
    }

    #[test]
    fn partition_for_key_is_java_formula() {
        for &(input, hash) in KAFKA_UTILS_TEST_VECTORS {
            for n in [1u32, 2, 3, 6, 12, 100, 1000] {
                let expected = ((hash & 0x7fffffff) % n as i32) as u32;
                assert_eq!(partition_for_key(input, nz(n)), expected);
            }
        }
        // Worked example: murmur2("foobar") = -790332482, masked 1357151166, mod 12 = 6.
        assert_eq!(partition_for_key(b"foobar", nz(12)), 6);
        assert_eq!(partition_for_key(b"anything", nz(1)), 0);
    }

    #[test]
    fn partition_for_key_handles_partition_counts_above_i32_max() {
        // toPositive(...) < 2^31, so with more partitions than that the result is the hash.
        assert_eq!(
            partition_for_key(b"21", nz(u32::MAX)),
            to_positive(-973932308) as u32
        );
    }

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("test partition counts are non-zero")
    }

    /// librdkafka's `unittest_murmur2` vectors (`src/rdmurmur2.c` in confluentinc/librdkafka),
    /// labelled there `java_murmur2_results`: the Java hash as an `int32_t`. librdkafka hashes
    /// suffixes of "1234" and "PreAmbleWillBeRemoved,ThePrePartThatIs" to test unaligned reads;
    /// they are spelled out here. Its last case, a NULL key hashed as zero bytes, is the same as
    /// the empty key.
    const LIBRDKAFKA_VECTORS: &[(&[u8], u32)] = &[
        (b"kafka", 0xd067cf64),
        (b"giberish123456789", 0x8f552b0c),
        (b"1234", 0x9fc97b14),
        (b"234", 0xe7c009ca),
        (b"34", 0x873930da),
        (b"4", 0x5a4b5ca1),
        (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c),
        (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62b377),
        (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4e09e),
        (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8b43f),
        (b"", 0x106e08d9),
    ];

    #[test]
    fn librdkafka_java_murmur2_vectors() {
        for &(input, expected) in LIBRDKAFKA_VECTORS {
            let expected = expected as i32;
            assert_eq!(
                murmur2(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(java_murmur2(input), expected, "reference port disagrees");
        }
    }

    /// 10,000 distinct keys: the hash and the partition are what Java computes, that is what
    /// the line-by-line port of `Utils.murmur2` and `toPositive(h) % n` compute.
    #[test]
    fn ten_thousand_keys_hash_and_partition_as_java() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            // Mix of lengths (tails of 0 to 3 bytes) and byte values, high bytes included.
            let mut key = format!("key-{i}").into_bytes();
            key.extend(std::iter::repeat_n(
                (i % 251) as u8 | 0x80,
                (i % 7) as usize,
            ));
            assert!(seen.insert(key.clone()), "keys are distinct");
            let java = java_murmur2(&key);
            assert_eq!(murmur2(&key), java, "{key:?}");
            for n in [1i32, 3, 12, 50, 1000] {
                let java_partition = (java & 0x7fffffff) % n;
                assert_eq!(
                    partition_for_key(&key, nz(n as u32)) as i32,
                    java_partition,
                    "{key:?} over {n} partitions"
                );
            }
        }
    }

    // ---- RoundRobinPartitioner and BuiltInPartitioner ----

    use kafka_wire::{ErrorCode, Uuid};

    use crate::metadata::PartitionInfo;

    /// A topic whose partition `i` has leader `leaders[i]`; those with a leader are available.
    fn topic_info(name: &str, leaders: &[Option<i32>]) -> TopicInfo {
        let partitions: Vec<PartitionInfo> = leaders
            .iter()
            .enumerate()
            .map(|(i, &leader)| PartitionInfo {
                partition: i as i32,
                leader,
                leader_epoch: 0,
                replicas: vec![0, 1, 2],
                isr: vec![0, 1, 2],
                error: if leader.is_some() {
                    ErrorCode::None
                } else {
                    ErrorCode::LeaderNotAvailable
                },
            })
            .collect();
        let available_partitions = partitions
            .iter()
            .filter(|p| p.leader.is_some())
            .map(|p| p.partition)
            .collect();
        TopicInfo {
            name: name.to_owned(),
            topic_id: Uuid::ZERO,
            is_internal: false,
            partitions,
            available_partitions,
        }
    }

    fn all_led(name: &str, count: usize) -> TopicInfo {
        let leaders: Vec<Option<i32>> = (0..count).map(|i| Some(i as i32 % 3)).collect();
        topic_info(name, &leaders)
    }

    /// Java's tests use `mockRandom = () -> counter.getAndAdd(1)`.
    fn sequential(topic: &str, sticky_batch_size: usize) -> BuiltInPartitioner {
        BuiltInPartitioner::with_rng(topic.to_owned(), sticky_batch_size, Rng::Sequence(0))
    }

    #[test]
    fn round_robin_cycles_through_all_partitions() {
        let p = RoundRobinPartitioner::new();
        let topic = all_led("t", 3);
        let picks: Vec<_> = (0..7)
            .map(|_| p.partition("t", Some(b"key"), Some(b"v"), &topic))
            .collect();
        let expected = [0, 1, 2, 0, 1, 2, 0].map(Some);
        assert_eq!(picks, expected, "keys are ignored");
    }

    #[test]
    fn round_robin_uses_only_available_partitions() {
        // The setup of Java's RoundRobinPartitionerTest.testRoundRobinWithUnavailablePartitions:
        // partition 1 of 3 has no leader. Java checks that it is never chosen and that 0 and 2
        // get as many records; here the exact sequence.
        let p = RoundRobinPartitioner::new();
        let topic = topic_info("t", &[Some(0), None, Some(1)]);
        let picks: Vec<_> = (0..6)
            .map(|_| p.partition("t", None, None, &topic).unwrap())
            .collect();
        assert_eq!(picks, [0, 2, 0, 2, 0, 2]);
        // The counter continues (at 6) when every partition has a leader again.
        let healed = all_led("t", 3);
        assert_eq!(p.partition("t", None, None, &healed), Some(0));
        assert_eq!(p.partition("t", None, None, &healed), Some(1));
    }

    #[test]
    fn round_robin_without_available_partitions_uses_all() {
        let p = RoundRobinPartitioner::new();
        let topic = topic_info("t", &[None, None, None]);
        let picks: Vec<_> = (0..4)
            .map(|_| p.partition("t", None, None, &topic).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0]);
        assert_eq!(p.partition("t", None, None, &topic_info("t", &[])), None);
    }

    #[test]
    fn round_robin_counts_per_topic() {
        let p = RoundRobinPartitioner::new();
        let a = all_led("a", 4);
        let b = all_led("b", 4);
        assert_eq!(p.partition("a", None, None, &a), Some(0));
        assert_eq!(p.partition("a", None, None, &a), Some(1));
        assert_eq!(p.partition("b", None, None, &b), Some(0));
        assert_eq!(p.partition("a", None, None, &a), Some(2));
        assert_eq!(p.partition("b", None, None, &b), Some(1));
    }

    #[test]
    fn round_robin_counter_wraps_like_a_java_int() {
        let p = RoundRobinPartitioner::new();
        p.counters.lock().unwrap().insert("t".to_owned(), i32::MAX);
        let topic = all_led("t", 3);
        // toPositive(i32::MAX) % 3 = 1, then the counter wraps: toPositive(i32::MIN) = 0,
        // toPositive(i32::MIN + 1) = 1.
        assert_eq!(p.partition("t", None, None, &topic), Some(1));
        assert_eq!(p.partition("t", None, None, &topic), Some(0));
        assert_eq!(p.partition("t", None, None, &topic), Some(1));
    }

    #[test]
    fn round_robin_is_thread_safe() {
        let p = std::sync::Arc::new(RoundRobinPartitioner::new());
        let topic = std::sync::Arc::new(all_led("t", 4));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (p, topic) = (p.clone(), topic.clone());
                std::thread::spawn(move || {
                    let mut counts = [0usize; 4];
                    for _ in 0..1000 {
                        let partition = p.partition("t", None, None, &topic).unwrap();
                        counts[partition as usize] += 1;
                    }
                    counts
                })
            })
            .collect();
        let mut total = [0usize; 4];
        for h in handles {
            for (t, c) in total.iter_mut().zip(h.join().unwrap()) {
                *t += c;
            }
        }
        // 8000 distinct counter values over 4 partitions: exactly 2000 each.
        assert_eq!(total, [2000; 4]);
    }

    #[test]
    fn sticky_until_batch_size_then_switch() {
        // Java's testStickyPartitioning: a sticky batch size of 3 one-byte records, and the
        // sequence 0, 1, 2, ... as random numbers.
        let topic = all_led("topicA", 3);
        let mut p = sequential("topicA", 3);
        let first = p.peek_current_partition(&topic);
        assert_eq!(first, 0, "random 0 % 3");
        for appended in 1..=3 {
            assert_eq!(p.peek_current_partition(&topic), first);
            assert!(!p.is_partition_changed(first));
            p.update_partition_info(first, 1, &topic, true);
            if appended < 3 {
                let info = p.current_partition_info().unwrap();
                assert_eq!((info.partition(), info.produced_bytes()), (first, appended));
            }
        }
        // After 3 bytes the partition switched (random 1 % 3).
        assert_eq!(p.peek_current_partition(&topic), 1);
        assert!(p.is_partition_changed(first));
        assert_eq!(p.current_partition_info().unwrap().produced_bytes(), 0);
    }

    #[test]
    fn sticky_with_random_seed_stays_for_a_whole_batch() {
        let topic = all_led("t", 8);
        let mut p = BuiltInPartitioner::with_seed("t", 1000, 42);
        let mut switches = 0;
        let mut current = p.peek_current_partition(&topic);
        for i in 0..10_000 {
            let partition = p.peek_current_partition(&topic);
            if partition != current {
                // 100 records of 10 bytes each per partition: a switch every 100 records.
                assert_eq!(i % 100, 0, "switched after record {i}");
                switches += 1;
                current = partition;
            }
            p.update_partition_info(partition, 10, &topic, true);
        }
        // 100 draws among 8 partitions; a draw may repeat the current partition.
        assert!(switches > 50, "{switches}");
    }

    #[test]
    fn switch_disabled_waits_for_twice_the_batch_size() {
        let topic = all_led("t", 2);
        let mut p = sequential("t", 10);
        let first = p.peek_current_partition(&topic);
        assert_eq!(first, 0);
        p.update_partition_info(first, 10, &topic, false);
        assert_eq!(p.current_partition_info().unwrap().produced_bytes(), 10);
        assert!(
            !p.is_partition_changed(first),
            "batch size reached, switch disabled"
        );
        p.update_partition_info(first, 9, &topic, false);
        assert!(!p.is_partition_changed(first), "19 < 2 x 10");
        p.update_partition_info(first, 1, &topic, false);
        assert_eq!(
            p.peek_current_partition(&topic),
            1,
            "20 >= 2 x 10 switches anyway"
        );

        // With switching enabled again, the batch size suffices.
        p.update_partition_info(1, 10, &topic, true);
        assert_eq!(p.peek_current_partition(&topic), 0);
    }

    #[test]
    fn switch_enabled_later_switches_at_once() {
        let topic = all_led("t", 2);
        let mut p = sequential("t", 10);
        let first = p.peek_current_partition(&topic);
        p.update_partition_info(first, 15, &topic, false);
        assert!(!p.is_partition_changed(first));
        p.update_partition_info(first, 0, &topic, true);
        assert!(
            p.is_partition_changed(first),
            "15 >= 10 once switching is enabled"
        );
    }

    #[test]
    fn updates_for_other_partitions_are_ignored() {
        let topic = all_led("t", 3);
        let mut p = sequential("t", 10);
        // Before any peek there is no sticky partition to update.
        p.update_partition_info(0, 100, &topic, true);
        assert_eq!(p.current_partition_info(), None);
        assert!(p.is_partition_changed(0));

        let current = p.peek_current_partition(&topic);
        p.update_partition_info(current + 1, 100, &topic, true);
        let info = p.current_partition_info().unwrap();
        assert_eq!((info.partition(), info.produced_bytes()), (current, 0));
    }

    #[test]
    fn one_partition_switches_to_itself() {
        // Java's testStickyPartitioning, topic B.
        let topic = all_led("topicB", 1);
        let mut p = BuiltInPartitioner::with_seed("topicB", 1, 7);
        for _ in 0..10 {
            let partition = p.peek_current_partition(&topic);
            assert_eq!(partition, 0);
            p.update_partition_info(partition, 1, &topic, true);
        }
    }

    #[test]
    fn switches_only_among_available_partitions() {
        // Java's unavailablePartitionsTest, topic A: partition 1 of 3 has no leader.
        let topic = topic_info("topicA", &[Some(0), None, Some(2)]);
        let mut p = BuiltInPartitioner::with_seed("topicA", 1, 1234);
        let mut counts = [0usize; 3];
        for _ in 0..1000 {
            let partition = p.peek_current_partition(&topic);
            counts[partition as usize] += 1;
            p.update_partition_info(partition, 1, &topic, true);
        }
        assert_eq!(counts[1], 0, "leaderless partition chosen: {counts:?}");
        assert!(counts[0] > 400 && counts[2] > 400, "{counts:?}");

        // Topic B: only partition 1 has a leader, so it is always chosen.
        let topic = topic_info("topicB", &[None, Some(0)]);
        let mut p = BuiltInPartitioner::with_seed("topicB", 1, 99);
        for _ in 0..100 {
            let partition = p.peek_current_partition(&topic);
            assert_eq!(partition, 1);
            p.update_partition_info(partition, 1, &topic, true);
        }
    }

    #[test]
    fn all_partitions_when_none_is_available() {
        // Java's unavailablePartitionsTest, topic C: its only partition has no leader.
        let topic = topic_info("topicC", &[None]);
        let mut p = BuiltInPartitioner::with_seed("topicC", 1, 5);
        assert_eq!(p.peek_current_partition(&topic), 0);
        p.update_partition_info(0, 1, &topic, true);
        assert_eq!(p.peek_current_partition(&topic), 0);

        // Three leaderless partitions: all of them are used.
        let topic = topic_info("t", &[None, None, None]);
        let mut p = BuiltInPartitioner::with_seed("t", 1, 5);
        let mut counts = [0usize; 3];
        for _ in 0..300 {
            let partition = p.peek_current_partition(&topic);
            counts[partition as usize] += 1;
            p.update_partition_info(partition, 1, &topic, true);
        }
        assert!(counts.iter().all(|&c| c > 50), "{counts:?}");
    }

    #[test]
    fn no_partitions_gives_unknown_partition() {
        let empty = topic_info("t", &[]);
        let mut p = BuiltInPartitioner::with_seed("t", 1, 5);
        assert_eq!(p.peek_current_partition(&empty), -1);
        assert_eq!(p.current_partition_info(), None);
        // Once metadata has partitions, a sticky partition is chosen.
        let topic = all_led("t", 2);
        assert!((0..2).contains(&p.peek_current_partition(&topic)));
        assert!(p.current_partition_info().is_some());
    }

    #[test]
    fn zero_sticky_batch_size_is_one() {
        let p = BuiltInPartitioner::new("t", 0);
        assert_eq!(p.sticky_batch_size(), 1);
        assert_eq!(p.topic(), "t");
    }

    #[test]
    fn adaptive_frequencies_are_inverted_queue_sizes() {
        // Java's adaptivePartitionsTest: queue sizes 5 0 3 0 1, random numbers 0, 1, 2, ...
        // Over two cycles of the table's range, partition i is chosen exactly
        // 2 * (max + 1 - size[i]) = 2 * (6 - size[i]) times.
        let queue_sizes = [5, 0, 3, 0, 1];
        let ids = [0, 1, 2, 3, 4];
        let topic = all_led("topicA", 5);
        let mut p = sequential("topicA", 1);
        p.update_partition_load_stats(Some(&queue_sizes), &ids);
        let stats = p.load_stats.as_ref().unwrap();
        assert_eq!(stats.cumulative_frequency_table, [1, 7, 10, 16, 21]);
        let cycles = 2;
        let iterations = 21 * cycles;
        let mut frequencies = [0usize; 5];
        for _ in 0..iterations {
            let partition = p.peek_current_partition(&topic);
            frequencies[partition as usize] += 1;
            p.update_partition_info(partition, 1, &topic, true);
        }
        let expected = queue_sizes.map(|s| (6 - s) as usize * cycles);
        assert_eq!(frequencies, expected);
    }

    #[test]
    fn adaptive_prefers_short_queues_with_random_draws() {
        // Partitions 3, 5, 7 and 9 (ids need not be dense or sorted), queue sizes 9, 0, 4, 8:
        // weights 1, 10, 6, 2 of 19.
        let topic = all_led("t", 10);
        let mut p = BuiltInPartitioner::with_seed("t", 1, 2024);
        p.update_partition_load_stats(Some(&[9, 0, 4, 8]), &[9, 3, 5, 7]);
        assert!(p.has_load_stats());
        let draws = 19_000;
        let mut counts = HashMap::new();
        for _ in 0..draws {
            *counts.entry(p.next_partition(&topic)).or_insert(0usize) += 1;
        }
        let share = |partition: i32| counts.get(&partition).copied().unwrap_or(0);
        assert_eq!(
            counts
                .keys()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            [3, 5, 7, 9].into()
        );
        // Expected 10000, 6000, 2000, 1000; allow 10 %.
        for (partition, expected) in [(3, 10_000), (5, 6_000), (7, 2_000), (9, 1_000)] {
            let got = share(partition);
            assert!(
                got.abs_diff(expected) * 10 < expected,
                "partition {partition}: {got}, expected about {expected}"
            );
        }
        assert!(share(3) > share(5) && share(5) > share(7) && share(7) > share(9));
    }

    #[test]
    fn load_stats_fall_back_to_uniform() {
        let mut p = BuiltInPartitioner::with_seed("t", 1, 1);
        p.update_partition_load_stats(Some(&[3, 0]), &[0, 1]);
        assert!(p.has_load_stats());
        // Disabled.
        p.update_partition_load_stats(None, &[]);
        assert!(!p.has_load_stats());
        // All equal.
        p.update_partition_load_stats(Some(&[3, 0]), &[0, 1]);
        p.update_partition_load_stats(Some(&[2, 2, 2]), &[0, 1, 2]);
        assert!(!p.has_load_stats());
        // A single partition.
        p.update_partition_load_stats(Some(&[5]), &[0]);
        assert!(!p.has_load_stats());
        // Empty.
        p.update_partition_load_stats(Some(&[]), &[]);
        assert!(!p.has_load_stats());
    }

    #[test]
    fn excluded_partitions_keep_adaptive_on() {
        // Partitions 0..4 with leaders; the accumulator excluded partitions 2 and 3 (moved past
        // `length`). Equal sizes among the rest still use the table, so 2 and 3 are not drawn.
        let topic = all_led("t", 4);
        let mut p = BuiltInPartitioner::with_seed("t", 1, 3);
        p.update_partition_load_stats_with_length(Some(&[1, 1, 0, 0]), &[0, 1, 2, 3], 2);
        assert!(p.has_load_stats());
        for _ in 0..200 {
            let partition = p.next_partition(&topic);
            assert!(partition == 0 || partition == 1, "{partition}");
        }
        // Even one remaining partition is used alone.
        p.update_partition_load_stats_with_length(Some(&[7, 0, 0, 0]), &[2, 0, 1, 3], 1);
        for _ in 0..50 {
            assert_eq!(p.next_partition(&topic), 2);
        }
        // Nothing left: uniform over the available partitions again.
        p.update_partition_load_stats_with_length(Some(&[7, 0]), &[2, 0], 0);
        assert!(!p.has_load_stats());
    }

    #[test]
    fn same_seed_same_partitions() {
        let topic = all_led("t", 16);
        let mut a = BuiltInPartitioner::with_seed("t", 1, 77);
        let mut b = BuiltInPartitioner::with_seed("t", 1, 77);
        let draws_a: Vec<_> = (0..100).map(|_| a.next_partition(&topic)).collect();
        let draws_b: Vec<_> = (0..100).map(|_| b.next_partition(&topic)).collect();
        assert_eq!(draws_a, draws_b);
        // Uniform: with 100 draws over 16 partitions, most partitions appear.
        let distinct: std::collections::HashSet<_> = draws_a.iter().collect();
        assert!(distinct.len() > 10, "{distinct:?}");
    }

    #[test]
    fn default_seeds_differ_between_instances() {
        let topic = all_led("t", 1000);
        let mut a = BuiltInPartitioner::new("t", 1);
        let mut b = BuiltInPartitioner::new("t", 1);
        let draws_a: Vec<_> = (0..16).map(|_| a.next_partition(&topic)).collect();
        let draws_b: Vec<_> = (0..16).map(|_| b.next_partition(&topic)).collect();
        assert_ne!(draws_a, draws_b);
    }
}
