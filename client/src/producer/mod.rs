//! The producer: [`Producer`] and its pipeline, named as in the Java client so Kafka users
//! find their way: interceptors ([`ProducerInterceptor`](crate::interceptor::ProducerInterceptor))
//! → serializers ([`Serializer`](crate::serializer::Serializer)) → partitioner
//! ([`Partitioner`](crate::partitioner::Partitioner), keyed murmur2, KIP-794 uniform sticky)
//! → `RecordAccumulator` with a bounded [`BufferPool`](buffer_pool::BufferPool) → the
//! background `Sender`. Idempotent by default (KIP-98, with KIP-360 epoch bumps).
//!
//! # Examples
//! ```no_run
//! use kafka_client::config::ProducerConfig;
//! use kafka_client::producer::Producer;
//! use kafka_client::ProducerRecord;
//!
//! # async fn run() -> Result<(), kafka_client::Error> {
//! let config = ProducerConfig::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .build()?;
//! let producer = Producer::new(config)?;
//! let delivery = producer
//!     .send(ProducerRecord::new("events", "hello").with_key("user-1"))
//!     .await?;
//! let metadata = delivery.await?;
//! println!("written at {}-{}@{}", metadata.topic, metadata.partition, metadata.offset);
//! producer.close(std::time::Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```
//!
//! # Transactions
//! With a `transactional.id` the producer is transactional (KIP-98, Java's semantics):
//! records sent between [`Producer::begin_transaction`] and
//! [`Producer::commit_transaction`] become visible to `read_committed` consumers together,
//! or not at all after [`Producer::abort_transaction`]. A consumer's offsets can join the
//! transaction ([`Producer::send_offsets_to_transaction`], KIP-447) for exactly-once
//! consume-transform-produce. Sending outside a transaction is an
//! [`Error::IllegalState`]; after an error the transaction can only be aborted; fencing
//! (another producer initialized the same `transactional.id`) is fatal.
//!
//! ```no_run
//! use std::collections::HashMap;
//! use kafka_client::config::ProducerConfig;
//! use kafka_client::consumer::{ConsumerGroupMetadata, OffsetAndMetadata, TopicPartition};
//! use kafka_client::producer::Producer;
//! use kafka_client::ProducerRecord;
//!
//! # async fn run(group: ConsumerGroupMetadata) -> Result<(), kafka_client::Error> {
//! let config = ProducerConfig::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .transactional_id("orders-processor-1")
//!     .build()?;
//! let producer = Producer::new(config)?;
//! producer.init_transactions().await?;
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("out", "processed")).await?;
//! let offsets = HashMap::from([(
//!     TopicPartition { topic: "in".into(), partition: 0 },
//!     OffsetAndMetadata::new(42),
//! )]);
//! producer.send_offsets_to_transaction(&offsets, &group).await?;
//! if let Err(e) = producer.commit_transaction().await {
//!     // Abortable errors: abort and retry the batch of work. Fatal ones (fenced): close.
//!     producer.abort_transaction().await?;
//!     return Err(e);
//! }
//! # Ok(()) }
//! ```

pub(crate) mod accumulator;
pub(crate) mod batch;
pub mod buffer_pool;
mod sender;
pub(crate) mod txn_manager;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{watch, Notify};

pub use batch::{DeliveryFuture, ProducerIdAndEpoch, TopicPartition};

use self::accumulator::{AccumulatorConfig, Append, PendingRecord, RecordAccumulator};
use self::buffer_pool::BufferPool;
use self::txn_manager::{TransactionManager, TxnResult};
use crate::config::ProducerConfig;
use crate::consumer::coordinator::OffsetAndMetadata;
use crate::consumer::group::ConsumerGroupMetadata;
use crate::error::Error;
use crate::interceptor::{ProducerInterceptor, ProducerInterceptors};
use crate::metadata::{Cluster, PartitionInfo, TopicInfo};
use crate::network::connection::ConnectionConfig;
use crate::network::pool::ConnectionPool;
use crate::partitioner::{partition_for_key, Partitioner};
use crate::record::{ProducerRecord, RecordMetadata};
use crate::serializer::{BytesSerializer, Serializer};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The producer's metadata: the current cluster snapshot, the topics in use, and whether
/// the sender should fetch metadata now (Java's `ProducerMetadata`).
pub(crate) struct ProducerMetadata {
    cluster: watch::Sender<Arc<Cluster>>,
    update_requested: AtomicBool,
    topics: Mutex<HashMap<String, Instant>>,
}

impl ProducerMetadata {
    fn new() -> Self {
        ProducerMetadata {
            cluster: watch::Sender::new(Arc::new(Cluster::default())),
            update_requested: AtomicBool::new(true),
            topics: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn cluster(&self) -> Arc<Cluster> {
        self.cluster.borrow().clone()
    }

    pub(crate) fn update(&self, cluster: Cluster) {
        self.cluster.send_replace(Arc::new(cluster));
    }

    pub(crate) fn request_update(&self) {
        self.update_requested.store(true, Ordering::Release);
    }

    pub(crate) fn update_requested(&self) -> bool {
        self.update_requested.load(Ordering::Acquire)
    }

    pub(crate) fn clear_update_request(&self) {
        self.update_requested.store(false, Ordering::Release);
    }

    /// Marks `topic` as in use; returns whether it is new.
    fn touch(&self, topic: &str, now: Instant) -> bool {
        let mut topics = lock(&self.topics);
        match topics.get_mut(topic) {
            Some(t) => {
                *t = now;
                false
            }
            None => {
                topics.insert(topic.to_owned(), now);
                true
            }
        }
    }

    pub(crate) fn has_interest(&self) -> bool {
        !lock(&self.topics).is_empty()
    }

    /// Topics used within `max_idle` (`metadata.max.idle.ms`); older ones are forgotten.
    pub(crate) fn topics_of_interest(&self, now: Instant, max_idle: Duration) -> Vec<String> {
        let mut topics = lock(&self.topics);
        topics.retain(|_, used| now.saturating_duration_since(*used) < max_idle);
        topics.keys().cloned().collect()
    }
}

/// State shared by every handle of a producer and its sender task.
pub(crate) struct ProducerInner {
    pub(crate) config: ProducerConfig,
    pub(crate) acc: Mutex<RecordAccumulator>,
    pub(crate) pool: BufferPool,
    pub(crate) metadata: ProducerMetadata,
    pub(crate) connections: ConnectionPool,
    pub(crate) txn: Option<Mutex<TransactionManager>>,
    pub(crate) wakeup: Notify,
    pub(crate) closing: AtomicBool,
    pub(crate) force_close: AtomicBool,
    pub(crate) fatal: Mutex<Option<Error>>,
    /// Whether `fatal` is set (checked on every send without taking the lock).
    pub(crate) has_fatal: AtomicBool,
    pub(crate) stopped: watch::Sender<bool>,
}

impl ProducerInner {
    fn begin_close(&self) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            lock(&self.acc).close();
        }
        self.wakeup.notify_one();
    }

    /// Records an error after which the producer cannot continue.
    pub(crate) fn set_fatal(&self, error: Error) {
        *lock(&self.fatal) = Some(error);
        self.has_fatal.store(true, Ordering::Release);
    }

    pub(crate) fn closing_forced(&self) -> bool {
        self.force_close.load(Ordering::Acquire)
    }
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> batch::Acknowledge
    for ProducerInterceptors<K, V>
{
    fn on_acknowledgement(&self, metadata: &RecordMetadata, error: Option<&Error>) {
        ProducerInterceptors::on_acknowledgement(self, metadata, error);
    }
}

/// Starts a graceful close when the last producer handle is dropped: records already sent
/// are still delivered (or fail), none is dropped silently.
struct CloseOnDrop(Arc<ProducerInner>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.begin_close();
    }
}

/// Builds a [`Producer`] with serializers, interceptors and a custom partitioner.
pub struct ProducerBuilder<K: 'static, V: 'static> {
    config: ProducerConfig,
    key_serializer: Arc<dyn Serializer<K>>,
    value_serializer: Arc<dyn Serializer<V>>,
    interceptors: Vec<Arc<dyn ProducerInterceptor<K, V>>>,
    partitioner: Option<Arc<dyn Partitioner>>,
}

impl<K: 'static, V: 'static> std::fmt::Debug for ProducerBuilder<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("config", &self.config)
            .field("interceptors", &self.interceptors.len())
            .field("partitioner", &self.partitioner)
            .finish_non_exhaustive()
    }
}

impl<K, V> ProducerBuilder<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A builder with these serializers.
    pub fn new(
        config: ProducerConfig,
        key_serializer: impl Serializer<K> + 'static,
        value_serializer: impl Serializer<V> + 'static,
    ) -> Self {
        ProducerBuilder {
            config,
            key_serializer: Arc::new(key_serializer),
            value_serializer: Arc::new(value_serializer),
            interceptors: Vec::new(),
            partitioner: None,
        }
    }

    /// Adds an interceptor; interceptors run in the order they were added.
    pub fn interceptor(mut self, interceptor: impl ProducerInterceptor<K, V> + 'static) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Uses a custom partitioner for records without an explicit partition (Java's
    /// `partitioner.class`).
    pub fn partitioner(mut self, partitioner: impl Partitioner + 'static) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }

    /// Starts the producer (its sender task runs on the current tokio runtime).
    ///
    /// # Errors
    /// [`Error::Config`] when called outside a tokio runtime.
    pub fn build(self) -> Result<Producer<K, V>, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::Config {
            key: "runtime".into(),
            reason: "a Producer must be created inside a tokio runtime".into(),
        })?;
        let config = self.config;
        let idempotent = config.enable_idempotence;
        let acc = RecordAccumulator::new(AccumulatorConfig {
            batch_size: config.batch_size,
            linger: config.linger,
            compression: config.compression,
            compression_level: config.compression_level(),
            delivery_timeout: config.delivery_timeout,
            retry_backoff: config.retry_backoff,
            retry_backoff_max: config.retry_backoff_max,
            idempotent,
            transactional: config.transactional_id.is_some(),
            adaptive_partitioning: config.partitioner_adaptive_partitioning_enable,
        });
        let conn_config = ConnectionConfig {
            client_id: Some(config.client_id.clone()),
            request_timeout: config.request_timeout,
            connect_timeout: config.socket_connection_setup_timeout,
            send_buffer_bytes: config.send_buffer_bytes,
            receive_buffer_bytes: config.receive_buffer_bytes,
            ..ConnectionConfig::default()
        };
        let connections = ConnectionPool::new(
            config.bootstrap_servers.clone(),
            conn_config,
            config.reconnect_backoff,
            config.reconnect_backoff_max,
            config.connections_max_idle,
        );
        let inner = Arc::new(ProducerInner {
            pool: BufferPool::new(config.buffer_memory, config.batch_size),
            acc: Mutex::new(acc),
            metadata: ProducerMetadata::new(),
            connections,
            txn: match &config.transactional_id {
                Some(id) => Some(Mutex::new(TransactionManager::new_transactional(
                    id.clone(),
                    i32::try_from(config.transaction_timeout.as_millis()).unwrap_or(i32::MAX),
                    config.retry_backoff,
                ))),
                None => idempotent.then(|| Mutex::new(TransactionManager::new())),
            },
            wakeup: Notify::new(),
            closing: AtomicBool::new(false),
            force_close: AtomicBool::new(false),
            fatal: Mutex::new(None),
            has_fatal: AtomicBool::new(false),
            stopped: watch::Sender::new(false),
            config,
        });
        handle.spawn(sender::Sender::new(inner.clone()).run());
        Ok(Producer {
            close_on_drop: Arc::new(CloseOnDrop(inner.clone())),
            inner,
            key_serializer: self.key_serializer,
            value_serializer: self.value_serializer,
            ack_sink: (!self.interceptors.is_empty()).then(|| {
                Arc::new(ProducerInterceptors::new(self.interceptors.clone()))
                    as Arc<dyn batch::Acknowledge>
            }),
            interceptors: ProducerInterceptors::new(self.interceptors),
            partitioner: self.partitioner,
        })
    }
}

/// An asynchronous Kafka producer (Java's `KafkaProducer`). Cheap to clone and share across
/// tasks; every clone feeds the same pipeline.
///
/// [`send`](Self::send) returns once the record sits in the accumulator and yields a
/// [`DeliveryFuture`]; it never waits on the network (only for metadata of a new topic and
/// for buffer memory, both bounded by `max.block.ms`).
pub struct Producer<K: 'static = Bytes, V: 'static = Bytes> {
    inner: Arc<ProducerInner>,
    close_on_drop: Arc<CloseOnDrop>,
    key_serializer: Arc<dyn Serializer<K>>,
    value_serializer: Arc<dyn Serializer<V>>,
    interceptors: ProducerInterceptors<K, V>,
    /// The interceptors as the acknowledgement sink of every record (`None` without any).
    ack_sink: Option<Arc<dyn batch::Acknowledge>>,
    partitioner: Option<Arc<dyn Partitioner>>,
}

impl<K: 'static, V: 'static> Clone for Producer<K, V> {
    fn clone(&self) -> Self {
        Producer {
            inner: self.inner.clone(),
            close_on_drop: self.close_on_drop.clone(),
            key_serializer: self.key_serializer.clone(),
            value_serializer: self.value_serializer.clone(),
            interceptors: self.interceptors.clone(),
            ack_sink: self.ack_sink.clone(),
            partitioner: self.partitioner.clone(),
        }
    }
}

impl<K: 'static, V: 'static> std::fmt::Debug for Producer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("client_id", &self.inner.config.client_id)
            .finish_non_exhaustive()
    }
}

impl Producer<Bytes, Bytes> {
    /// A producer of raw bytes (keys and values as [`Bytes`]).
    ///
    /// # Errors
    /// [`Error::Config`] when called outside a tokio runtime.
    pub fn new(config: ProducerConfig) -> Result<Self, Error> {
        ProducerBuilder::new(config, BytesSerializer, BytesSerializer).build()
    }
}

use batch::Callback;

/// What `prepare` produced: a record ready for the accumulator.
struct Prepared {
    topic: String,
    partition: Option<i32>,
    info: Arc<TopicInfo>,
    record: PendingRecord,
}

impl<K, V> Producer<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A builder with these serializers.
    pub fn builder(
        config: ProducerConfig,
        key_serializer: impl Serializer<K> + 'static,
        value_serializer: impl Serializer<V> + 'static,
    ) -> ProducerBuilder<K, V> {
        ProducerBuilder::new(config, key_serializer, value_serializer)
    }

    /// The configuration the producer runs with.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// Sends a record: runs the interceptors, waits for the topic's metadata if it is new,
    /// serializes, partitions and appends to the accumulator, waiting for buffer memory when
    /// `buffer.memory` is exhausted. Returns as soon as the record is queued; the returned
    /// future resolves when the broker acknowledged it.
    ///
    /// # Errors
    /// [`Error::Timeout`] when metadata or memory is not available within `max.block.ms`,
    /// [`Error::RecordTooLarge`] for a record over `max.request.size` or `buffer.memory`,
    /// [`Error::Serialization`], [`Error::InvalidArgument`] for a partition that does not
    /// exist, [`Error::Closed`] after [`close`](Self::close).
    ///
    /// # Cancel safety
    /// Cancelling before it returns may or may not have queued the record; once it returned
    /// `Ok`, the record is delivered (or fails) whether or not the future is awaited.
    pub async fn send(&self, record: ProducerRecord<K, V>) -> Result<DeliveryFuture, Error>
    where
        K: Sized,
        V: Sized,
    {
        self.send_inner(record, None).await
    }

    /// Like [`send`](Self::send), and calls `callback` with the outcome when the delivery
    /// completes (on the producer's I/O task: keep it short).
    ///
    /// # Errors
    /// As [`send`](Self::send); the callback is not called then.
    pub async fn send_with_callback(
        &self,
        record: ProducerRecord<K, V>,
        callback: impl FnOnce(Result<RecordMetadata, Error>) + Send + 'static,
    ) -> Result<(), Error>
    where
        K: Sized,
        V: Sized,
    {
        self.send_inner(record, Some(Box::new(callback)))
            .await
            .map(|_| ())
    }

    /// Like [`send`](Self::send) but never waits: fails with [`Error::BufferFull`] when a
    /// new batch would have to wait for memory, and with [`Error::Timeout`] when the topic's
    /// metadata is not known yet (a metadata request is started; try again later).
    ///
    /// # Errors
    /// As [`send`](Self::send), plus [`Error::BufferFull`].
    pub fn try_send(&self, record: ProducerRecord<K, V>) -> Result<DeliveryFuture, Error>
    where
        K: Sized,
        V: Sized,
    {
        let now = Instant::now();
        let (topic, partition) = (record.topic.clone(), record.partition);
        let result = (|| {
            let mut record = record;
            self.check_open()?;
            self.fail_if_not_ready_for_send()?;
            self.interceptors.on_send(&mut record);
            let info = match self.topic_info_now(&record.topic, record.partition, now)? {
                Some(info) => info,
                None => {
                    self.inner.metadata.request_update();
                    self.inner.wakeup.notify_one();
                    return Err(Error::Timeout(format!(
                        "topic {} not present in metadata yet",
                        record.topic
                    )));
                }
            };
            let prepared = self.prepare(record, info, None)?;
            match self.try_append(prepared, now)? {
                Ok(future) => Ok(future),
                Err(_) => Err(Error::BufferFull),
            }
        })();
        if let Err(e) = &result {
            self.interceptors.on_send_error(&topic, partition, e);
        }
        result
    }

    async fn send_inner(
        &self,
        record: ProducerRecord<K, V>,
        callback: Option<Callback>,
    ) -> Result<DeliveryFuture, Error> {
        let (topic, partition) = (record.topic.clone(), record.partition);
        let result = self.send_prepared(record, callback).await;
        if let Err(e) = &result {
            self.interceptors.on_send_error(&topic, partition, e);
        }
        result
    }

    async fn send_prepared(
        &self,
        mut record: ProducerRecord<K, V>,
        callback: Option<Callback>,
    ) -> Result<DeliveryFuture, Error> {
        // Let the sender (and anything else on this worker) run now and then: a loop of
        // sends that never waits would otherwise starve it until the buffer is full.
        tokio::task::coop::consume_budget().await;
        let start = Instant::now();
        let deadline = start + self.inner.config.max_block;
        self.check_open()?;
        self.fail_if_not_ready_for_send()?;
        self.interceptors.on_send(&mut record);
        let info = match self.topic_info_now(&record.topic, record.partition, start)? {
            Some(info) => info,
            None => {
                self.wait_on_metadata(&record.topic, record.partition, deadline)
                    .await?
            }
        };
        let prepared = self.prepare(record, info, callback)?;
        let now = start;
        // Fast path: no new batch needed, or memory available at once.
        let mut pending = match self.try_append(prepared, now)? {
            Ok(fut) => return Ok(fut),
            Err(p) => p,
        };
        loop {
            let (
                size,
                Prepared {
                    topic,
                    partition,
                    info,
                    record,
                },
            ) = pending;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let buf = self.inner.pool.allocate(size, remaining).await?;
            let mut acc = lock(&self.inner.acc);
            match self.append_locked(
                &mut acc,
                &topic,
                partition,
                &info,
                record,
                Some((buf, size)),
                Instant::now(),
            )? {
                Append::Done {
                    future,
                    batch_full,
                    new_batch,
                    unused_buffer,
                } => {
                    drop(acc);
                    if let Some((buf, size)) = unused_buffer {
                        self.inner.pool.deallocate(buf, size);
                    }
                    if batch_full || new_batch {
                        self.inner.wakeup.notify_one();
                    }
                    return Ok(future);
                }
                Append::NeedsBuffer { size, record } => {
                    pending = (
                        size,
                        Prepared {
                            topic,
                            partition,
                            info,
                            record,
                        },
                    );
                }
            }
        }
    }

    /// Appends without waiting; `Err(Ok((size, prepared)))`-style: returns the record back
    /// when a buffer of `size` bytes is needed and not available at once.
    #[allow(clippy::type_complexity)]
    fn try_append(
        &self,
        prepared: Prepared,
        now: Instant,
    ) -> Result<Result<DeliveryFuture, (usize, Prepared)>, Error> {
        let Prepared {
            topic,
            partition,
            info,
            record,
        } = prepared;
        let mut acc = lock(&self.inner.acc);
        match self.append_locked(&mut acc, &topic, partition, &info, record, None, now)? {
            Append::Done {
                future,
                batch_full,
                new_batch,
                ..
            } => {
                drop(acc);
                if batch_full || new_batch {
                    self.inner.wakeup.notify_one();
                }
                Ok(Ok(future))
            }
            Append::NeedsBuffer { size, record } => {
                // Memory available without waiting (and nobody queued ahead)?
                match self.inner.pool.try_allocate(size) {
                    Ok(buf) => {
                        match self.append_locked(
                            &mut acc,
                            &topic,
                            partition,
                            &info,
                            record,
                            Some((buf, size)),
                            now,
                        )? {
                            Append::Done {
                                future,
                                batch_full,
                                new_batch,
                                unused_buffer,
                            } => {
                                drop(acc);
                                if let Some((buf, size)) = unused_buffer {
                                    self.inner.pool.deallocate(buf, size);
                                }
                                if batch_full || new_batch {
                                    self.inner.wakeup.notify_one();
                                }
                                Ok(Ok(future))
                            }
                            Append::NeedsBuffer { .. } => Err(Error::Protocol(
                                "accumulator refused a buffer (internal error)".into(),
                            )),
                        }
                    }
                    Err(Error::BufferFull) => Ok(Err((
                        size,
                        Prepared {
                            topic,
                            partition,
                            info,
                            record,
                        },
                    ))),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Appends under the accumulator lock. With a `transactional.id`, the transaction state
    /// is checked (Java's `failIfNotReadyForSend`) and the record's partition queued for
    /// AddPartitionsToTxn atomically with the append, so a record is either in the
    /// transaction that `commit_transaction` flushes or refused.
    #[allow(clippy::too_many_arguments)]
    fn append_locked(
        &self,
        acc: &mut RecordAccumulator,
        topic: &str,
        partition: Option<i32>,
        info: &TopicInfo,
        record: PendingRecord,
        buffer: Option<(bytes::BytesMut, usize)>,
        now: Instant,
    ) -> Result<Append, Error> {
        let txn = match &self.inner.txn {
            Some(txn) if self.inner.config.transactional_id.is_some() => txn,
            _ => return acc.append(topic, partition, info, record, buffer, now),
        };
        let mut t = lock(txn);
        if let Err(e) = t.fail_if_not_ready_for_send() {
            if let Some((buf, size)) = buffer {
                self.inner.pool.deallocate(buf, size);
            }
            return Err(e);
        }
        let appended = acc.append(topic, partition, info, record, buffer, now)?;
        if let Append::Done { future, .. } = &appended {
            t.maybe_add_partition(&TopicPartition {
                topic: Arc::from(topic),
                partition: future.partition(),
            });
        }
        Ok(appended)
    }

    /// Java's `failIfNotReadyForSend`, checked before waiting for metadata (and again when
    /// appending).
    fn fail_if_not_ready_for_send(&self) -> Result<(), Error> {
        match &self.inner.txn {
            Some(txn) if self.inner.config.transactional_id.is_some() => {
                lock(txn).fail_if_not_ready_for_send()
            }
            _ => Ok(()),
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.inner.has_fatal.load(Ordering::Acquire) {
            if let Some(e) = lock(&self.inner.fatal).clone() {
                return Err(e);
            }
        }
        Ok(())
    }

    /// The topic's metadata if it is known and has the partition.
    fn topic_info_now(
        &self,
        topic: &str,
        partition: Option<i32>,
        now: Instant,
    ) -> Result<Option<Arc<TopicInfo>>, Error> {
        if topic.is_empty() {
            return Err(Error::InvalidArgument("topic name is empty".into()));
        }
        let cluster = self.inner.metadata.cluster();
        let known = cluster.topic(topic);
        // A topic with metadata stays of interest through the accumulator, which records
        // when it was last appended to; only unknown topics go through the interest map (a
        // mutex and a hash per send otherwise).
        if known.is_none() && self.inner.metadata.touch(topic, now) {
            self.inner.metadata.request_update();
            self.inner.wakeup.notify_one();
        }
        match known {
            Some(info) => match partition {
                Some(p) if p < 0 => Err(Error::InvalidArgument(format!(
                    "invalid partition {p} given with record"
                ))),
                Some(p) if p as usize >= info.partition_count() => Ok(None),
                _ if info.partition_count() == 0 => Ok(None),
                _ => Ok(Some(info.clone())),
            },
            None => match cluster.topic_errors.get(topic) {
                Some(code)
                    if !code.is_retriable()
                        && *code != kafka_wire::ErrorCode::UnknownTopicOrPartition =>
                {
                    Err(Error::kafka(*code))
                }
                _ => Ok(None),
            },
        }
    }

    /// Java's `waitOnMetadata`: waits until the topic (and partition) is in the metadata.
    async fn wait_on_metadata(
        &self,
        topic: &str,
        partition: Option<i32>,
        deadline: Instant,
    ) -> Result<Arc<TopicInfo>, Error> {
        let mut rx = self.inner.metadata.cluster.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(info) = self.topic_info_now(topic, partition, Instant::now())? {
                return Ok(info);
            }
            self.inner.metadata.request_update();
            self.inner.wakeup.notify_one();
            let wait = tokio::time::timeout_at(deadline.into(), rx.changed()).await;
            match wait {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => {
                    let ms = self.inner.config.max_block.as_millis();
                    let cluster = self.inner.metadata.cluster();
                    return Err(match (partition, cluster.topic(topic)) {
                        (Some(p), Some(info)) => Error::Timeout(format!(
                            "Partition {p} of topic {topic} with partition count {} is not present in metadata after {ms} ms.",
                            info.partition_count()
                        )),
                        _ => Error::Timeout(format!(
                            "Topic {topic} not present in metadata after {ms} ms."
                        )),
                    });
                }
            }
        }
    }

    /// Serializes and partitions a record.
    fn prepare(
        &self,
        record: ProducerRecord<K, V>,
        info: Arc<TopicInfo>,
        callback: Option<Callback>,
    ) -> Result<Prepared, Error>
    where
        K: Sized,
        V: Sized,
    {
        let ProducerRecord {
            topic,
            partition,
            key,
            value,
            mut headers,
            timestamp,
        } = record;
        let key = match key {
            Some(k) => Some(
                self.key_serializer
                    .serialize_owned(&topic, &mut headers, k)?,
            ),
            None => None,
        };
        let value = match value {
            Some(v) => Some(
                self.value_serializer
                    .serialize_owned(&topic, &mut headers, v)?,
            ),
            None => None,
        };
        let count = info.partition_count();
        let partition = match partition {
            Some(p) => Some(p),
            None => {
                let custom = self
                    .partitioner
                    .as_ref()
                    .and_then(|p| p.partition(&topic, key.as_deref(), value.as_deref(), &info));
                match custom {
                    Some(p) if p < 0 || p as usize >= count => {
                        return Err(Error::InvalidArgument(format!(
                            "partitioner returned partition {p}, but {topic} has {count} partitions"
                        )))
                    }
                    Some(p) => Some(p),
                    None => match (
                        &key,
                        self.inner.config.partitioner_ignore_keys,
                        self.partitioner.is_some(),
                    ) {
                        (Some(k), false, false) => {
                            NonZeroU32::new(count as u32).map(|n| partition_for_key(k, n) as i32)
                        }
                        _ => None,
                    },
                }
            }
        };
        let timestamp = timestamp.unwrap_or_else(now_ms);
        let interceptors = self.ack_sink.clone();
        let thunk = (interceptors.is_some() || callback.is_some()).then(|| batch::Thunk {
            // The accumulator fills in the record's topic, partition and sizes.
            info: None,
            interceptors,
            callback,
        });
        let pending = PendingRecord {
            timestamp,
            key,
            value,
            headers,
            thunk,
        };
        let size = pending.size_upper_bound();
        let cfg = &self.inner.config;
        if size > cfg.max_request_size {
            return Err(Error::RecordTooLarge {
                size,
                limit: cfg.max_request_size,
                config: "max.request.size",
            });
        }
        if size > cfg.buffer_memory {
            return Err(Error::RecordTooLarge {
                size,
                limit: cfg.buffer_memory,
                config: "buffer.memory",
            });
        }
        Ok(Prepared {
            topic,
            partition,
            info,
            record: pending,
        })
    }
}

impl<K: 'static, V: 'static> Producer<K, V> {
    /// Makes every queued record sendable at once and waits until all records sent before
    /// the call have completed (delivered or failed). Java's `flush`.
    ///
    /// # Errors
    /// Never fails today; records report their own outcome through their futures.
    ///
    /// # Cancel safety
    /// Cancel safe: cancelling stops waiting; the records are still delivered.
    pub async fn flush(&self) -> Result<(), Error> {
        struct EndFlush<'a>(&'a ProducerInner);
        impl Drop for EndFlush<'_> {
            fn drop(&mut self) {
                lock(&self.0.acc).end_flush();
            }
        }
        let results = lock(&self.inner.acc).begin_flush();
        let _end = EndFlush(&self.inner);
        self.inner.wakeup.notify_one();
        for r in results {
            r.wait().await;
        }
        Ok(())
    }

    /// The partitions of `topic`, waiting up to `max.block.ms` for its metadata.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the topic does not appear in time.
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>, Error> {
        let deadline = Instant::now() + self.inner.config.max_block;
        let mut rx = self.inner.metadata.cluster.subscribe();
        loop {
            rx.borrow_and_update();
            if self.inner.metadata.touch(topic, Instant::now()) {
                self.inner.metadata.request_update();
            }
            let cluster = self.inner.metadata.cluster();
            if let Some(t) = cluster.topic(topic) {
                return Ok(t.partitions.clone());
            }
            if let Some(code) = cluster.topic_errors.get(topic) {
                if !code.is_retriable() && *code != kafka_wire::ErrorCode::UnknownTopicOrPartition {
                    return Err(Error::kafka(*code));
                }
            }
            self.inner.metadata.request_update();
            self.inner.wakeup.notify_one();
            match tokio::time::timeout_at(deadline.into(), rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => {
                    return Err(Error::Timeout(format!(
                        "Topic {topic} not present in metadata after {} ms.",
                        self.inner.config.max_block.as_millis()
                    )))
                }
            }
        }
    }

    /// Closes the producer: no new records are accepted, every pending record is sent, and
    /// the call waits up to `timeout` for them. Records still pending after `timeout` fail
    /// with [`Error::Closed`] — none is dropped silently. Closing twice is harmless.
    ///
    /// With a `transactional.id`, as Java's `KafkaProducer.close`: a close never commits. A
    /// graceful close (within `timeout`) sends the pending records and then **aborts** a
    /// transaction still open (begun, or failed with an abortable error), unless a commit or
    /// abort is already in progress, which it lets finish. A close whose `timeout` expires
    /// (or `close(Duration::ZERO)`) is forced: nothing more is sent, pending transactional
    /// calls fail with [`Error::Closed`], and an open transaction is left to the
    /// coordinator, which aborts it after `transaction.timeout.ms` or when the next producer
    /// with the same `transactional.id` calls [`init_transactions`](Self::init_transactions).
    /// Dropping the last handle starts a graceful close.
    ///
    /// # Errors
    /// Never fails today.
    pub async fn close(&self, timeout: Duration) -> Result<(), Error> {
        if timeout.is_zero() {
            // Java's `close(Duration.ZERO)` forces the close without starting a graceful
            // one: the sender must not begin anything (such as aborting an open
            // transaction) before it sees the force flag.
            self.inner.force_close.store(true, Ordering::Release);
        }
        self.inner.begin_close();
        let mut stopped = self.inner.stopped.subscribe();
        let graceful = tokio::time::timeout(timeout, stopped.wait_for(|s| *s))
            .await
            .is_ok();
        if !graceful {
            tracing::info!("producer close timed out; failing pending records");
            self.inner.force_close.store(true, Ordering::Release);
            self.inner.wakeup.notify_one();
            let _ = stopped.wait_for(|s| *s).await;
        }
        self.interceptors.close();
        Ok(())
    }

    /// Initializes transactions (Java's `initTransactions`): finds the transaction
    /// coordinator of `transactional.id` (FindCoordinator, key type 1) and sends it
    /// InitProducerId with the transactional id and `transaction.timeout.ms`. The
    /// coordinator fences earlier producers with the same `transactional.id` (bumping the
    /// epoch) and completes or aborts their open transaction first. Must be called once,
    /// before any other transactional method and before any `send`.
    ///
    /// # Errors
    /// [`Error::IllegalState`] without a `transactional.id`, or when called again after it
    /// succeeded; [`Error::Closed`] after [`close`](Self::close); [`Error::Timeout`] when it
    /// did not complete within `max.block.ms` (it goes on in the background: call it again
    /// to wait for the same initialization); [`Error::Kafka`] with
    /// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`, `PRODUCER_FENCED` or another fatal code —
    /// the producer can then only be closed.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future stops waiting; the initialization goes on and a
    /// later call waits for the same one.
    pub async fn init_transactions(&self) -> Result<(), Error> {
        let txn = self.transaction_manager()?;
        let result = lock(txn).initialize_transactions()?;
        self.await_transactional(result, "InitProducerId").await
    }

    /// Begins a transaction (Java's `beginTransaction`); local, nothing is sent. Records
    /// sent from now on belong to it until it is committed or aborted.
    ///
    /// # Errors
    /// [`Error::IllegalState`] without a `transactional.id`, before
    /// [`init_transactions`](Self::init_transactions) or while a transaction is open;
    /// [`Error::Closed`] after [`close`](Self::close); after a failure, the error that made
    /// the transaction abortable (call [`abort_transaction`](Self::abort_transaction)) or
    /// the producer fatal (`PRODUCER_FENCED`, ...).
    ///
    /// # Cancel safety
    /// Not async.
    pub fn begin_transaction(&self) -> Result<(), Error> {
        let txn = self.transaction_manager()?;
        lock(txn).begin_transaction()
    }

    /// Adds the consumer's offsets to the transaction (Java's `sendOffsetsToTransaction`,
    /// KIP-447): AddOffsetsToTxn(group) to the transaction coordinator, then TxnOffsetCommit
    /// with the group's generation, member id and instance id to the group coordinator. The
    /// offsets become the group's committed offsets only when the transaction commits;
    /// aborting drops them. `group_metadata` is the consumer's
    /// [`group_metadata`](crate::consumer::Consumer::group_metadata), so a zombie member of an
    /// older generation is refused. Does nothing for an empty `offsets`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `group_metadata` has a generation but no member id;
    /// [`Error::IllegalState`] without a `transactional.id` or outside a transaction;
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::Timeout`] after
    /// `max.block.ms` (the request goes on; a new call sends the offsets again);
    /// [`Error::Kafka`] with `UNKNOWN_MEMBER_ID`, `ILLEGAL_GENERATION`, `FENCED_INSTANCE_ID`
    /// or `GROUP_AUTHORIZATION_FAILED` (the transaction must be aborted), or a fatal code
    /// (`PRODUCER_FENCED`, `INVALID_PRODUCER_EPOCH`, ...).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future stops waiting; the offsets are still added.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
        group_metadata: &ConsumerGroupMetadata,
    ) -> Result<(), Error> {
        if group_metadata.generation_id > 0 && group_metadata.member_id.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "Passed in group metadata {group_metadata:?} has generationId > 0 but member.id is empty"
            )));
        }
        let txn = self.transaction_manager()?;
        if offsets.is_empty() {
            return Ok(());
        }
        let mut list: Vec<(TopicPartition, OffsetAndMetadata)> = offsets
            .iter()
            .map(|(tp, o)| (tp.clone(), o.clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let result = lock(txn).send_offsets_to_transaction(list, group_metadata.clone())?;
        self.await_transactional(result, "AddOffsetsToTxn").await
    }

    /// Commits the transaction (Java's `commitTransaction`): sends every pending record of
    /// the transaction and waits for them (like [`flush`](Self::flush)), then EndTxn(commit).
    /// When a record of the transaction failed, the commit fails with that error and the
    /// transaction must be aborted.
    ///
    /// # Errors
    /// [`Error::IllegalState`] without a `transactional.id` or when no transaction is open;
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::Timeout`] after
    /// `max.block.ms` (the commit goes on: call it again to wait for the same commit); the
    /// error of a failed record or request, leaving the transaction abortable (call
    /// [`abort_transaction`](Self::abort_transaction)); a fatal error such as
    /// `PRODUCER_FENCED` (another producer with the same `transactional.id` took over).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future stops waiting; the commit goes on and a later call
    /// waits for the same one.
    pub async fn commit_transaction(&self) -> Result<(), Error> {
        let txn = self.transaction_manager()?;
        let result = lock(txn).begin_commit()?;
        self.await_transactional(result, "EndTxn(commit)").await
    }

    /// Aborts the transaction (Java's `abortTransaction`): records not sent yet fail with
    /// [`Error::TransactionAborted`] (or the error that made the transaction abortable),
    /// records in flight are waited for, then EndTxn(abort) — skipped when nothing was added
    /// to the transaction. After an error that needs it, the producer epoch is then bumped
    /// (InitProducerId with the current producer id and epoch, KIP-360). Also the way out of
    /// an abortable error.
    ///
    /// # Errors
    /// [`Error::IllegalState`] without a `transactional.id` or when no transaction is open;
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::Timeout`] after
    /// `max.block.ms` (the abort goes on: call it again to wait for the same abort); a fatal
    /// error such as `PRODUCER_FENCED`.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future stops waiting; the abort goes on and a later call
    /// waits for the same one.
    pub async fn abort_transaction(&self) -> Result<(), Error> {
        let txn = self.transaction_manager()?;
        tracing::info!("aborting incomplete transaction");
        let result = lock(txn).begin_abort()?;
        self.await_transactional(result, "EndTxn(abort)").await
    }

    /// The transaction manager of a transactional producer (Java's
    /// `throwIfNoTransactionManager` and `throwIfProducerClosed`).
    fn transaction_manager(&self) -> Result<&Mutex<TransactionManager>, Error> {
        let txn = match &self.inner.txn {
            Some(txn) if self.inner.config.transactional_id.is_some() => txn,
            _ => {
                return Err(Error::IllegalState(
                    "Cannot use transactional methods without enabling transactions by setting the transactional.id configuration property".into(),
                ))
            }
        };
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(txn)
    }

    /// Wakes the sender and waits up to `max.block.ms` for a transactional operation.
    async fn await_transactional(&self, result: TxnResult, operation: &str) -> Result<(), Error> {
        self.inner.wakeup.notify_one();
        let max_block = self.inner.config.max_block;
        match tokio::time::timeout(max_block, result.wait()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout(format!(
                "Timeout expired after {}ms while awaiting {operation}",
                max_block.as_millis()
            ))),
        }
    }

    /// The producer id and epoch in use, once the idempotent producer has one.
    pub fn producer_id_and_epoch(&self) -> Option<ProducerIdAndEpoch> {
        self.inner
            .txn
            .as_ref()
            .map(|t| lock(t).producer_id_and_epoch())
            .filter(|p| p.is_valid())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
