//! `RecordAccumulator`: per-partition queues of batches that records are appended to, and
//! from which the `Sender` drains requests. Java's `RecordAccumulator`.
//!
//! Deterministic: no sockets, no clock (every method takes `now`), no waiting — when a new
//! batch needs memory, [`RecordAccumulator::append`] says so and the caller allocates from
//! the `BufferPool` outside the lock, then appends again with the buffer.
//!
//! Keyless records without an explicit partition use the built-in uniform sticky
//! partitioner (KIP-794): one partition until `batch.size` bytes were produced to it, then
//! another, weighted towards partitions with shorter queues
//! (`partitioner.adaptive.partitioning.enable`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{
    record_size, BatchOptions, Compression, RecordBatchBuilder, NO_SEQUENCE, RECORD_BATCH_OVERHEAD,
};

use super::batch::{
    BatchResult, DeliveryFuture, Outcome, ProducerBatch, RecordInfo, Redirect, Thunk,
    TopicPartition,
};
use super::txn_manager::TransactionManager;
use crate::error::Error;
use crate::metadata::{Cluster, TopicInfo};
use crate::network::pool::ExponentialBackoff;
use crate::partitioner::BuiltInPartitioner;
use crate::record::Header;

/// A fast non-cryptographic hasher (the `FxHasher` of rustc) for the per-record map lookups
/// by topic name and partition; the keys are not attacker-controlled.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.hash = (self.hash.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.hash = (self.hash.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn write_i32(&mut self, n: i32) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        self.hash = (self.hash.rotate_left(5) ^ u64::from(n as u32)).wrapping_mul(K);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// What the accumulator needs from the producer configuration.
#[derive(Debug, Clone)]
pub(crate) struct AccumulatorConfig {
    pub(crate) batch_size: usize,
    pub(crate) linger: Duration,
    pub(crate) compression: Compression,
    pub(crate) compression_level: Option<i32>,
    pub(crate) delivery_timeout: Duration,
    pub(crate) retry_backoff: Duration,
    pub(crate) retry_backoff_max: Duration,
    /// Whether batches carry producer ids and sequences (`enable.idempotence`).
    #[allow(dead_code)]
    pub(crate) idempotent: bool,
    pub(crate) transactional: bool,
    pub(crate) adaptive_partitioning: bool,
}

/// A serialized record on its way into a batch.
pub(crate) struct PendingRecord {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<Header>,
    pub(crate) thunk: Option<Thunk>,
}

impl PendingRecord {
    /// Upper bound of the record's size in a batch of its own (Java's
    /// `estimateSizeInBytesUpperBound`).
    pub(crate) fn size_upper_bound(&self) -> usize {
        let headers = header_refs(&self.headers);
        RECORD_BATCH_OVERHEAD
            + record_size(0, 0, self.key.as_deref(), self.value.as_deref(), &headers)
    }
}

/// The outcome of [`RecordAccumulator::append`].
pub(crate) enum Append {
    /// Appended.
    Done {
        future: DeliveryFuture,
        /// Whether the partition's last batch is full (the sender should be woken).
        batch_full: bool,
        /// Whether a new batch was created.
        new_batch: bool,
        /// A buffer the caller passed but that was not needed.
        unused_buffer: Option<(BytesMut, usize)>,
    },
    /// A new batch is needed: allocate `size` bytes and call again with the buffer. The
    /// record is handed back.
    NeedsBuffer { size: usize, record: PendingRecord },
}

/// Partitions ready to send, grouped by leader.
#[derive(Debug, Default)]
pub(crate) struct ReadyCheck {
    /// Leaders with at least one sendable batch.
    pub(crate) ready_nodes: Vec<i32>,
    /// How long until the next batch becomes ready (linger or retry backoff).
    pub(crate) next_ready_check: Option<Duration>,
    /// Topics with queued batches for partitions whose leader is unknown.
    pub(crate) unknown_leader_topics: Vec<Arc<str>>,
}

struct TopicQueues {
    name: Arc<str>,
    /// When a record was last appended (for `metadata.max.idle.ms`).
    last_used: Option<Instant>,
    /// Estimated compressed/uncompressed ratio of this topic's batches (Java's
    /// `CompressionRatioEstimator`), so compressed batches fill up to `batch.size` on the wire.
    compression_ratio: f32,
    partitions: HashMap<i32, VecDeque<ProducerBatch>, FxBuild>,
    built_in: BuiltInPartitioner,
}

/// Java's `RecordAccumulator`.
pub(crate) struct RecordAccumulator {
    config: AccumulatorConfig,
    /// `retry.backoff.ms` growing to `retry.backoff.max.ms`.
    retry: ExponentialBackoff,
    /// Seeds the built-in partitioners of new topics (deterministic tests).
    #[cfg(test)]
    partitioner_seed: Option<u64>,
    topics: HashMap<Arc<str>, TopicQueues, FxBuild>,
    next_batch_id: u64,
    incomplete: HashMap<u64, Arc<BatchResult>>,
    flushes_in_progress: usize,
    closed: bool,
    /// Per node, the partition the next drain starts from (Java's `nodesDrainIndex`).
    drain_index: HashMap<i32, TopicPartition>,
}

impl std::fmt::Debug for RecordAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordAccumulator")
            .field("topics", &self.topics.len())
            .field("incomplete", &self.incomplete.len())
            .finish_non_exhaustive()
    }
}

impl RecordAccumulator {
    pub(crate) fn new(config: AccumulatorConfig) -> Self {
        RecordAccumulator {
            retry: ExponentialBackoff::new(
                config.retry_backoff,
                2.0,
                config.retry_backoff_max,
                0.2,
            ),
            config,
            #[cfg(test)]
            partitioner_seed: None,
            topics: HashMap::default(),
            next_batch_id: 1,
            incomplete: HashMap::new(),
            flushes_in_progress: 0,
            closed: false,
            drain_index: HashMap::new(),
        }
    }

    fn topic_queues(&mut self, topic: &str) -> &mut TopicQueues {
        if !self.topics.contains_key(topic) {
            let name: Arc<str> = Arc::from(topic);
            let sticky_size = self.config.batch_size.max(1);
            #[cfg(test)]
            let built_in = match self.partitioner_seed {
                Some(seed) => BuiltInPartitioner::with_seed(topic, sticky_size, seed),
                None => BuiltInPartitioner::new(topic, sticky_size),
            };
            #[cfg(not(test))]
            let built_in = BuiltInPartitioner::new(topic, sticky_size);
            self.topics.insert(
                name.clone(),
                TopicQueues {
                    name,
                    last_used: None,
                    compression_ratio: 1.0,
                    partitions: HashMap::default(),
                    built_in,
                },
            );
        }
        match self.topics.get_mut(topic) {
            Some(t) => t,
            None => unreachable!("inserted above"),
        }
    }

    /// The sticky partition for `record`, completing a switch the built-in partitioner
    /// postponed while the partition's last batch had room (Java's `partitionChanged`): when
    /// the record would not fit the last batch (or there is none), every batch is full, and
    /// a partition that received `batch.size` bytes hands over to the next one.
    fn sticky_partition_for(
        &mut self,
        topic: &str,
        info: &TopicInfo,
        record: &PendingRecord,
        headers: &[(&str, Option<&[u8]>)],
    ) -> i32 {
        let tq = self.topic_queues(topic);
        let mut p = tq.built_in.peek_current_partition(info);
        for _ in 0..2 {
            let all_full = match tq.partitions.get(&p).and_then(|dq| dq.back()) {
                None => true,
                Some(last) => {
                    !last.is_open()
                        || last.is_full()
                        || last.record_count > 0
                            && last.size_if_appended(
                                record.timestamp,
                                record.key.as_deref(),
                                record.value.as_deref(),
                                headers,
                            ) > last.batch_size_limit
                }
            };
            if !all_full {
                break;
            }
            tq.built_in.update_partition_info(p, 0, info, true);
            let next = tq.built_in.peek_current_partition(info);
            if next == p {
                break;
            }
            p = next;
        }
        p
    }

    /// Appends a record to the last batch of `topic`/`partition` (`None`: the sticky
    /// partition), creating a batch with `buffer` when needed.
    pub(crate) fn append(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        info: &TopicInfo,
        record: PendingRecord,
        buffer: Option<(BytesMut, usize)>,
        now: Instant,
    ) -> Result<Append, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let mut record = record;
        let thunk = record.thunk.take();
        // Built once per record: used by the sticky partition check and the append.
        let headers = header_refs(&record.headers);
        let sticky = partition.is_none();
        let partition = match partition {
            Some(p) => p,
            None => self.sticky_partition_for(topic, info, &record, &headers),
        };
        let opts = BatchOptions {
            compression: self.config.compression,
            compression_level: self.config.compression_level,
            ..BatchOptions::default()
        };
        let key_size = record.key.as_ref().map_or(-1, |k| k.len() as i32);
        let value_size = record.value.as_ref().map_or(-1, |v| v.len() as i32);
        let tq = self.topic_queues(topic);
        tq.last_used = Some(now);
        let info_rec = RecordInfo {
            topic: tq.name.clone(),
            partition,
            timestamp: record.timestamp,
            key_size,
            value_size,
        };
        let dq = tq.partitions.entry(partition).or_default();

        let thunk = thunk.map(|mut t| {
            t.info = Some(info_rec.clone());
            t
        });
        // Try the partition's last batch first.
        if let Some(last) = dq.back_mut() {
            let fits = last.is_open()
                && (last.record_count == 0
                    || last.size_if_appended(
                        record.timestamp,
                        record.key.as_deref(),
                        record.value.as_deref(),
                        &headers,
                    ) <= last.batch_size_limit);
            if fits {
                let before = last.estimated_size();
                let index = last
                    .try_append(
                        record.timestamp,
                        record.key.as_deref(),
                        record.value.as_deref(),
                        &headers,
                        thunk,
                    )?
                    .unwrap_or(0);
                let appended = last.estimated_size().saturating_sub(before);
                let future = DeliveryFuture::new(last.result.clone(), index, info_rec);
                let batch_full = dq.len() > 1 || dq.back().is_some_and(|b| b.is_full());
                let all_full = dq.back().is_none_or(|b| b.is_full());
                if sticky {
                    tq.built_in
                        .update_partition_info(partition, appended, info, all_full);
                }
                return Ok(Append::Done {
                    future,
                    batch_full,
                    new_batch: false,
                    unused_buffer: buffer,
                });
            }
        }
        drop(headers);
        record.thunk = thunk;
        self.append_new(topic, partition, sticky, info, record, buffer, now, opts)
    }

    #[allow(clippy::too_many_arguments)]
    fn append_new(
        &mut self,
        topic: &str,
        partition: i32,
        sticky: bool,
        info: &TopicInfo,
        mut record: PendingRecord,
        buffer: Option<(BytesMut, usize)>,
        now: Instant,
        opts: BatchOptions,
    ) -> Result<Append, Error> {
        let needed = self.config.batch_size.max(record.size_upper_bound());
        // The buffer was allocated for `needed` bytes by the caller (a BytesMut grows if an
        // estimate was short; the pool accounts the allocated size).
        let (buf, pool_size) = match buffer {
            Some(b) => b,
            None => {
                return Ok(Append::NeedsBuffer {
                    size: needed,
                    record,
                })
            }
        };
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let (name, ratio) = {
            let tq = self.topic_queues(topic);
            (tq.name.clone(), tq.compression_ratio)
        };
        let tp = TopicPartition {
            topic: name.clone(),
            partition,
        };
        let mut builder = RecordBatchBuilder::with_buffer(opts, buf);
        if opts.compression != Compression::None {
            builder.set_estimated_compression_ratio(ratio);
        }
        let mut batch = ProducerBatch::new(id, tp, builder, pool_size, self.config.batch_size, now);
        let headers = header_refs(&record.headers);
        let info_rec = RecordInfo {
            topic: name,
            partition,
            timestamp: record.timestamp,
            key_size: record.key.as_ref().map_or(-1, |k| k.len() as i32),
            value_size: record.value.as_ref().map_or(-1, |v| v.len() as i32),
        };
        let thunk = record.thunk.take().map(|mut t| {
            t.info = Some(info_rec.clone());
            t
        });
        let index = batch
            .try_append(
                record.timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                &headers,
                thunk,
            )?
            .unwrap_or(0);
        let appended = batch.estimated_size();
        let future = DeliveryFuture::new(batch.result.clone(), index, info_rec);
        self.incomplete.insert(id, batch.result.clone());
        let tq = self.topic_queues(topic);
        let dq = tq.partitions.entry(partition).or_default();
        dq.push_back(batch);
        let batch_full = dq.len() > 1 || dq.back().is_some_and(|b| b.is_full());
        let all_full = dq.back().is_none_or(|b| b.is_full());
        if sticky {
            tq.built_in
                .update_partition_info(partition, appended, info, all_full);
        }
        Ok(Append::Done {
            future,
            batch_full,
            new_batch: true,
            unused_buffer: None,
        })
    }

    /// Java's `ready`: which leaders have sendable data, when to check again, and which
    /// topics need metadata. `exhausted` is true while appenders wait for buffer memory.
    pub(crate) fn ready(&mut self, cluster: &Cluster, now: Instant, exhausted: bool) -> ReadyCheck {
        let mut out = ReadyCheck::default();
        let flushing = self.flushes_in_progress > 0 || self.closed;
        let linger = self.config.linger;
        let adaptive = self.config.adaptive_partitioning;
        for (topic, tq) in &mut self.topics {
            let info = cluster.topic(topic);
            let mut queue_sizes: Vec<i32> = Vec::new();
            let mut queue_ids: Vec<i32> = Vec::new();
            if adaptive {
                if let Some(info) = info {
                    for &p in &info.available_partitions {
                        queue_ids.push(p);
                        queue_sizes.push(tq.partitions.get(&p).map_or(0, |d| d.len() as i32));
                    }
                }
            }
            for (&p, dq) in &tq.partitions {
                let Some(first) = dq.front() else { continue };
                let leader = info.and_then(|i| i.leader(p));
                let Some(leader) = leader else {
                    if !out.unknown_leader_topics.contains(topic) {
                        out.unknown_leader_topics.push(topic.clone());
                    }
                    continue;
                };
                let backoff = retry_backoff(&self.retry, first.attempts, first.id);
                let backing_off = first.attempts > 0 && now < first.last_attempt + backoff;
                let since = if first.attempts > 0 {
                    first.last_attempt
                } else {
                    first.created
                };
                let waited = now.saturating_duration_since(since);
                let time_to_wait = if backing_off { backoff } else { linger };
                let full = dq.len() > 1 || first.is_full();
                let expired = waited >= time_to_wait;
                let sendable = full || expired || exhausted || flushing;
                if sendable && !backing_off {
                    if !out.ready_nodes.contains(&leader) {
                        out.ready_nodes.push(leader);
                    }
                } else {
                    let left = time_to_wait.saturating_sub(waited);
                    out.next_ready_check = Some(out.next_ready_check.map_or(left, |c| c.min(left)));
                }
            }
            if adaptive && !queue_ids.is_empty() {
                tq.built_in
                    .update_partition_load_stats(Some(&queue_sizes), &queue_ids);
            }
        }
        out
    }

    /// Java's `drain`: for each node, at most one batch per partition it leads, starting at
    /// a rotating partition, until `max_size` bytes. Batches are closed (compressed) and,
    /// when idempotent, given their sequence numbers.
    pub(crate) fn drain(
        &mut self,
        cluster: &Cluster,
        nodes: &[i32],
        max_size: usize,
        now: Instant,
        mut txn: Option<&mut TransactionManager>,
    ) -> HashMap<i32, Vec<ProducerBatch>> {
        let mut by_node: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        for (topic, tq) in &self.topics {
            let Some(info) = cluster.topic(topic) else {
                continue;
            };
            for (&p, dq) in &tq.partitions {
                if dq.is_empty() {
                    continue;
                }
                if let Some(leader) = info.leader(p) {
                    if nodes.contains(&leader) {
                        by_node.entry(leader).or_default().push(TopicPartition {
                            topic: topic.clone(),
                            partition: p,
                        });
                    }
                }
            }
        }
        let transactional = self.config.transactional;
        let mut out = HashMap::new();
        for (node, mut tps) in by_node {
            tps.sort();
            let start = self
                .drain_index
                .get(&node)
                .and_then(|from| tps.iter().position(|tp| tp >= from))
                .unwrap_or(0);
            let mut size = 0usize;
            let mut batches = Vec::new();
            let mut next_start = start;
            for i in 0..tps.len() {
                let idx = (start + i) % tps.len();
                let tp = &tps[idx];
                let Some(tq) = self.topics.get_mut(&tp.topic) else {
                    continue;
                };
                let Some(dq) = tq.partitions.get_mut(&tp.partition) else {
                    continue;
                };
                let Some(first) = dq.front() else { continue };
                let backoff = retry_backoff(&self.retry, first.attempts, first.id);
                if first.attempts > 0 && now < first.last_attempt + backoff {
                    continue;
                }
                if !batches.is_empty() && size + first.estimated_size() > max_size {
                    break;
                }
                if let Some(t) = txn.as_deref() {
                    let has_seq = first.base_sequence != NO_SEQUENCE;
                    if t.should_stop_drain(tp, first.id, has_seq) {
                        continue;
                    }
                }
                let Some(mut batch) = dq.pop_front() else {
                    continue;
                };
                if let Some(t) = txn.as_deref_mut() {
                    let a = t.assign(tp, batch.id, batch.record_count as i32);
                    if batch.producer != a.producer || batch.base_sequence != a.base_sequence {
                        batch.set_producer_state(a.producer, a.base_sequence, transactional);
                    }
                    batch.sequence_reset = a.reset;
                }
                let uncompressed = batch.uncompressed_size();
                if let Err(e) = batch.close() {
                    // Our own records failed to encode (compression error): fail the batch.
                    tracing::error!(error = %e, tp = %tp, "closing a batch failed");
                    if let Some(t) = txn.as_deref_mut() {
                        t.handle_failed_batch(tp, batch.id, &e, None, false, true);
                    }
                    self.incomplete.remove(&batch.id);
                    batch.complete(Outcome::Failed(e));
                    continue;
                }
                if self.config.compression != Compression::None
                    && uncompressed > RECORD_BATCH_OVERHEAD
                {
                    let compressed = batch.estimated_size().saturating_sub(RECORD_BATCH_OVERHEAD);
                    let observed =
                        compressed as f32 / (uncompressed - RECORD_BATCH_OVERHEAD) as f32;
                    tq.compression_ratio = update_compression_ratio(tq.compression_ratio, observed);
                }
                size += batch.estimated_size();
                batch.last_attempt = now;
                batches.push(batch);
                next_start = idx + 1;
            }
            if let Some(next) = tps.get(next_start % tps.len()) {
                self.drain_index.insert(node, next.clone());
            }
            if !batches.is_empty() {
                out.insert(node, batches);
            }
        }
        out
    }

    /// Removes queued batches that reached `delivery.timeout.ms` (Java's `expiredBatches`).
    pub(crate) fn expired_batches(&mut self, now: Instant) -> Vec<ProducerBatch> {
        let timeout = self.config.delivery_timeout;
        let mut out = Vec::new();
        for tq in self.topics.values_mut() {
            for dq in tq.partitions.values_mut() {
                while let Some(first) = dq.front() {
                    if now.saturating_duration_since(first.created) >= timeout {
                        if let Some(b) = dq.pop_front() {
                            out.push(b);
                        }
                    } else {
                        break;
                    }
                }
            }
        }
        out
    }

    /// When the first queued batch expires (for the sender's timer).
    pub(crate) fn next_expiry(&self, now: Instant) -> Option<Duration> {
        let timeout = self.config.delivery_timeout;
        self.topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter_map(|dq| dq.front())
            .map(|b| (b.created + timeout).saturating_duration_since(now))
            .min()
    }

    /// Puts a batch back for a retry (Java's `reenqueue`), in sequence order when it has a
    /// sequence.
    pub(crate) fn reenqueue(&mut self, mut batch: ProducerBatch, now: Instant) {
        batch.attempts += 1;
        batch.last_attempt = now;
        let topic = batch.tp.topic.clone();
        let p = batch.tp.partition;
        let dq = self.topic_queues(&topic).partitions.entry(p).or_default();
        insert_in_sequence_order(dq, batch);
    }

    /// Splits a batch the broker found too large into batches of `batch.size` and queues
    /// them in its place (Java's `splitAndReenqueue`). The big batch's futures follow its
    /// records to the new batches. With idempotence the new batches take over the big
    /// batch's sequence range.
    pub(crate) fn split_and_reenqueue(
        &mut self,
        big: &mut ProducerBatch,
        txn: Option<&mut TransactionManager>,
    ) -> Result<usize, Error> {
        let records = big.records_for_split(usize::MAX >> 1)?;
        let mut thunks: HashMap<u32, Thunk> = big.take_thunks().into_iter().collect();
        let opts = BatchOptions {
            compression: self.config.compression,
            compression_level: self.config.compression_level,
            ..BatchOptions::default()
        };
        // Batches of `batch.size`, as Java. But when all the records fit in one such batch
        // (the topic's `max.message.bytes` is below `batch.size`), that would rebuild the
        // refused batch, refused again forever (KAFKA-8350): split at half its size instead,
        // so every split makes progress, down to single records (which then fail).
        let first_ts = records.first().map_or(0, |r| r.timestamp);
        let whole = RECORD_BATCH_OVERHEAD
            + records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let headers: Vec<(&str, Option<&[u8]>)> = r
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_deref()))
                        .collect();
                    let delta = r.timestamp.wrapping_sub(first_ts);
                    record_size(
                        i as i32,
                        delta,
                        r.key.as_deref(),
                        r.value.as_deref(),
                        &headers,
                    )
                })
                .sum::<usize>();
        let limit = if records.len() > 1 && whole <= self.config.batch_size {
            whole / 2
        } else {
            self.config.batch_size
        };
        let mut new_batches: Vec<ProducerBatch> = Vec::new();
        let mut redirects = Vec::with_capacity(records.len());
        for (i, r) in records.into_iter().enumerate() {
            let headers: Vec<(&str, Option<&[u8]>)> = r
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            let thunk = thunks.remove(&(i as u32));
            let mut placed = None;
            let mut thunk = thunk;
            if let Some(last) = new_batches.last_mut() {
                let est = last_size_if_appended_raw(
                    last,
                    r.timestamp,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    &headers,
                );
                if est <= limit {
                    placed = last.try_append(
                        r.timestamp,
                        r.key.as_deref(),
                        r.value.as_deref(),
                        &headers,
                        thunk.take(),
                    )?;
                }
            }
            if placed.is_none() {
                let id = self.next_batch_id;
                self.next_batch_id += 1;
                let mut b = ProducerBatch::new(
                    id,
                    big.tp.clone(),
                    RecordBatchBuilder::with_buffer(opts, BytesMut::with_capacity(limit.max(64))),
                    0,
                    limit,
                    big.created,
                );
                b.attempts = big.attempts;
                b.last_attempt = big.last_attempt;
                placed = b.try_append(
                    r.timestamp,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    &headers,
                    thunk.take(),
                )?;
                new_batches.push(b);
            }
            let Some(last) = new_batches.last() else {
                continue;
            };
            redirects.push(Redirect {
                result: last.result.clone(),
                index: placed.unwrap_or(0),
            });
        }
        let n = new_batches.len();
        if let Some(t) = txn {
            let ids: Vec<(u64, i32)> = new_batches
                .iter()
                .map(|b| (b.id, b.record_count as i32))
                .collect();
            let assigned = t.replace_in_flight(&big.tp, big.id, &ids);
            for (b, a) in new_batches.iter_mut().zip(assigned) {
                if let Some(a) = a {
                    b.set_producer_state(a.producer, a.base_sequence, self.config.transactional);
                }
            }
        }
        self.incomplete.remove(&big.id);
        big.complete(Outcome::Split(Arc::new(redirects)));
        let topic = big.tp.topic.clone();
        let p = big.tp.partition;
        for b in &new_batches {
            self.incomplete.insert(b.id, b.result.clone());
        }
        let dq = self.topic_queues(&topic).partitions.entry(p).or_default();
        for b in new_batches.into_iter().rev() {
            if b.base_sequence != NO_SEQUENCE {
                insert_in_sequence_order(dq, b);
            } else {
                dq.push_front(b);
            }
        }
        Ok(n)
    }

    /// Topics appended to within `max_idle` of `now`, which keep their metadata fresh
    /// (`metadata.max.idle.ms`).
    pub(crate) fn topics_used_within(&self, now: Instant, max_idle: Duration) -> Vec<String> {
        self.topics
            .values()
            .filter(|t| {
                t.last_used
                    .is_some_and(|u| now.saturating_duration_since(u) < max_idle)
            })
            .map(|t| t.name.to_string())
            .collect()
    }

    /// Forgets a completed batch.
    pub(crate) fn deallocate(&mut self, batch_id: u64) {
        self.incomplete.remove(&batch_id);
    }

    /// Starts a flush: every queued batch becomes ready at once. Returns the results to
    /// wait for.
    pub(crate) fn begin_flush(&mut self) -> Vec<Arc<BatchResult>> {
        self.flushes_in_progress += 1;
        self.incomplete.values().cloned().collect()
    }

    pub(crate) fn end_flush(&mut self) {
        self.flushes_in_progress = self.flushes_in_progress.saturating_sub(1);
    }

    /// Marks the accumulator closed: no more appends; everything queued is ready.
    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Whether any batch is queued (not in flight).
    #[cfg(test)]
    pub(crate) fn has_undrained(&self) -> bool {
        self.topics
            .values()
            .any(|t| t.partitions.values().any(|d| !d.is_empty()))
    }

    /// Whether any batch is incomplete (queued or in flight).
    pub(crate) fn has_incomplete(&self) -> bool {
        !self.incomplete.is_empty()
    }

    /// Java's `abortUndrainedBatches` for a transactional producer: removes the queued
    /// batches that were never drained (no sequence yet), to fail them when the transaction
    /// is aborted or abortable. Batches already sent (queued for a retry) stay: they complete
    /// before EndTxn is sent.
    pub(crate) fn abort_undrained_batches(&mut self) -> Vec<ProducerBatch> {
        let mut out = Vec::new();
        for tq in self.topics.values_mut() {
            for dq in tq.partitions.values_mut() {
                if dq.iter().all(|b| b.base_sequence != NO_SEQUENCE) {
                    continue;
                }
                let (undrained, keep): (VecDeque<ProducerBatch>, VecDeque<ProducerBatch>) =
                    std::mem::take(dq)
                        .into_iter()
                        .partition(|b| b.base_sequence == NO_SEQUENCE);
                *dq = keep;
                out.extend(undrained);
            }
        }
        for b in &out {
            self.incomplete.remove(&b.id);
        }
        out
    }

    /// Removes every queued batch (to fail them on a forced close or a fatal error).
    pub(crate) fn drain_all(&mut self) -> Vec<ProducerBatch> {
        let mut out = Vec::new();
        for tq in self.topics.values_mut() {
            for dq in tq.partitions.values_mut() {
                out.extend(dq.drain(..));
            }
        }
        out
    }
}

fn last_size_if_appended_raw(
    batch: &ProducerBatch,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) -> usize {
    batch.size_if_appended(timestamp, key, value, headers)
}

/// The record's headers in the form the batch builder takes (no allocation without
/// headers).
fn header_refs(headers: &[Header]) -> Vec<(&str, Option<&[u8]>)> {
    headers
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_deref()))
        .collect()
}

/// Java's `CompressionRatioEstimator.updateEstimation`: the estimate falls slowly towards a
/// better observed ratio (0.005 per batch) and jumps up to a worse one (at least +0.05), so
/// batches rarely exceed `batch.size` on the wire.
fn update_compression_ratio(current: f32, observed: f32) -> f32 {
    const IMPROVING_STEP: f32 = 0.005;
    const DETERIORATING_STEP: f32 = 0.05;
    if !observed.is_finite() {
        return current;
    }
    if observed > current {
        (current + DETERIORATING_STEP).max(observed)
    } else if observed < current {
        (current - IMPROVING_STEP).max(observed)
    } else {
        current
    }
}

/// Java's `insertInSequenceOrder`: before the first queued batch with a higher sequence or
/// without one.
fn insert_in_sequence_order(dq: &mut VecDeque<ProducerBatch>, batch: ProducerBatch) {
    if batch.base_sequence == NO_SEQUENCE {
        dq.push_front(batch);
        return;
    }
    let pos = dq
        .iter()
        .position(|b| b.base_sequence == NO_SEQUENCE || b.base_sequence > batch.base_sequence)
        .unwrap_or(dq.len());
    dq.insert(pos, batch);
}

/// A batch's retry backoff (KIP-580): Java's `ExponentialBackoff(retry.backoff.ms, 2,
/// retry.backoff.max.ms, 0.2)` after `attempts - 1` earlier failures, with the jitter derived
/// from the batch id so that every ready check and drain sees the same value.
pub(crate) fn retry_backoff(backoff: &ExponentialBackoff, attempts: u32, salt: u64) -> Duration {
    if attempts == 0 {
        return Duration::ZERO;
    }
    let h = salt
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(attempts))
        .rotate_left(17);
    let unit = (h >> 11) as f64 / (1u64 << 53) as f64;
    backoff.backoff_with_jitter(attempts - 1, unit)
}

#[cfg(test)]
#[path = "accumulator_tests.rs"]
mod tests;
