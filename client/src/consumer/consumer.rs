//! [`Consumer`]: Java's `KafkaConsumer`, with manual partition assignment.
//!
//! The consumer owns a [`SubscriptionState`] (positions, pauses, pending resets), a
//! [`FetchBuffer`] of completed fetches, and a background I/O task (like the producer's
//! sender) that refreshes metadata, looks up reset offsets (ListOffsets) and keeps one Fetch
//! in flight per leader for the partitions with nothing buffered. [`Consumer::poll`] only
//! drains the buffer, so the next fetches are already on their way while the application
//! processes what a poll returned (pipelining), and buffered data stays bounded by the fetch
//! settings (about `fetch.max.bytes` per broker).
//!
//! Partitions come either from [`Consumer::assign`] (manual assignment) or from the consumer
//! group ([`Consumer::subscribe`], or [`Consumer::subscribe_pattern`] for every topic whose
//! name matches a regular expression, re-matched at each metadata refresh; with `group.id`):
//! then the same I/O task drives the
//! [`ConsumerCoordinator`] state machine (see [`group`](super::group)); the
//! [`ConsumerRebalanceListener`] callbacks run inside [`Consumer::poll`]. New partitions
//! start at the group's committed offset when there is one (with a `group.id`, for manual
//! assignment too), else at `auto.offset.reset`. Offsets are committed with
//! [`Consumer::commit_sync`] / [`Consumer::commit_async`], and automatically
//! (`enable.auto.commit`) every `auto.commit.interval.ms`, before partitions are revoked
//! and on [`Consumer::close`].
//!
//! # Examples
//! ```no_run
//! use std::time::Duration;
//!
//! use kafka_client::config::ConsumerConfig;
//! use kafka_client::consumer::Consumer;
//! use kafka_client::producer::TopicPartition;
//!
//! # async fn run() -> Result<(), kafka_client::Error> {
//! let consumer = Consumer::new(ConsumerConfig::new("localhost:9092")?)?;
//! consumer.assign(vec![TopicPartition { topic: "events".into(), partition: 0 }])?;
//! consumer.seek_to_beginning(&[])?;
//! loop {
//!     for record in consumer.poll(Duration::from_secs(1)).await? {
//!         println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
//!     }
//! }
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{Stream, StreamExt};
use kafka_wire::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_wire::messages::{
    FetchResponse, FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse,
    LeaveGroupResponse, MetadataResponse, SyncGroupResponse,
};
use kafka_wire::records::TimestampType;
use kafka_wire::{ApiKey, ErrorCode, Request, RequestBody};
use tokio::sync::{watch, Notify};

use super::assignor;
use super::coordinator::{
    build_offset_commit_request, build_offset_fetch_request, find_coordinator_answer,
    find_coordinator_request, parse_offset_fetch_response, Action, CommitError, CommittedOffset,
    ConsumerCoordinator, CoordinatorNode, Generation, OffsetAndMetadata, OffsetCommitSend,
    RequestId,
};
use super::fetcher::{
    self, needs_metadata_refresh, prepare_fetches, FetchBuffer, FetchConfig, FetchSessions,
    ListedOffset, PreparedFetch, SentFetch,
};
use super::group::{
    classify_manual_commit, commit_error, committed_to_offset, coordinator_config, from_group_tps,
    to_commit_map, to_group_tp, without, AsyncCommit, Callback, ConsumerGroupMetadata,
    ConsumerRebalanceListener, GroupState, Mode, NoOpRebalanceListener, TopicPattern,
};
use super::subscription_state::{FetchPosition, ResetStrategy, SubscriptionState};
use crate::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use crate::error::Error;
use crate::metadata::Cluster;
use crate::network::connection::{saturating_add, BrokerConnection, ConnectionConfig};
use crate::network::pool::ConnectionPool;
use crate::producer::TopicPartition;
use crate::record::Header;
use crate::serializer::{BytesSerializer, Deserializer};

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn to_i32(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A record read from Kafka: Java's `ConsumerRecord`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerRecord<K = Bytes, V = Bytes> {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The timestamp (milliseconds since the epoch): the create time, or the broker's append
    /// time, per `timestamp_type`.
    pub timestamp: i64,
    /// What `timestamp` is.
    pub timestamp_type: TimestampType,
    /// The key (`None` when null).
    pub key: Option<K>,
    /// The value (`None` when null: a tombstone).
    pub value: Option<V>,
    /// The headers, in order.
    pub headers: Vec<Header>,
    /// The leader epoch of the batch the record came in, when known.
    pub leader_epoch: Option<i32>,
    /// Size of the serialized key, -1 when null.
    pub serialized_key_size: i32,
    /// Size of the serialized value, -1 when null.
    pub serialized_value_size: i32,
}

impl<K, V> ConsumerRecord<K, V> {
    /// The record's topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }
}

/// An offset found by [`Consumer::offsets_for_times`]: Java's `OffsetAndTimestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The earliest offset whose timestamp is at or after the one asked for.
    pub offset: i64,
    /// That record's timestamp.
    pub timestamp: i64,
    /// The leader epoch of the offset, when the broker sent it.
    pub leader_epoch: Option<i32>,
}

/// The message of the error [`Consumer::poll`] returns after [`Consumer::wakeup`]:
/// `Error::Timeout("wakeup")` (see [`is_wakeup`]).
pub const WAKEUP: &str = "wakeup";

/// Whether `error` is the one a poll interrupted by [`Consumer::wakeup`] returns (Java's
/// `WakeupException`).
pub fn is_wakeup(error: &Error) -> bool {
    matches!(error, Error::Timeout(m) if m == WAKEUP)
}

/// The consumer's metadata: the cluster snapshot and the topics it is needed for.
struct ConsumerMetadata {
    cluster: watch::Sender<Arc<Cluster>>,
    update_requested: AtomicBool,
    /// Topics looked up by offset queries (besides the assigned ones), with their last use.
    extra_topics: Mutex<HashMap<String, Instant>>,
}

impl ConsumerMetadata {
    fn cluster(&self) -> Arc<Cluster> {
        self.cluster.borrow().clone()
    }

    fn request_update(&self) {
        self.update_requested.store(true, Ordering::Release);
    }
}

/// The state the application and the I/O task share.
struct State {
    subs: SubscriptionState,
    buffer: FetchBuffer,
    /// The vector polls collect records into, kept between polls (empty).
    scratch: Vec<ConsumerRecord>,
    /// An error the I/O task met, reported by the next poll.
    error: Option<Error>,
    /// Subscription mode, the group state machine and what waits for the poll path.
    group: GroupState,
}

struct Shared {
    config: ConsumerConfig,
    fetch_config: FetchConfig,
    state: Mutex<State>,
    metadata: ConsumerMetadata,
    connections: ConnectionPool,
    /// Connections to the group coordinator (Java uses a separate one too): a JoinGroup
    /// held for a whole rebalance must not hold fetches up, nor wait behind a long poll.
    group_connections: ConnectionPool,
    /// Wakes the I/O task (assignment, positions, drained data changed).
    task_wakeup: Notify,
    /// Bumped whenever pollers should look again (data arrived, positions reset, wakeup).
    changed: watch::Sender<u64>,
    wakeup: AtomicBool,
    /// A poll drained some partition: the I/O task has a fetch to send. The next poll yields
    /// to the scheduler first (see [`Consumer::poll`]).
    drained: AtomicBool,
    /// The deadline of [`Consumer::close_with_timeout`], set when it starts: from then on no
    /// fetch is sent, and once `closed` the I/O task closes the fetch sessions until then.
    close_deadline: OnceLock<Instant>,
    closed: AtomicBool,
    stopped: watch::Sender<bool>,
}

impl Shared {
    fn notify_pollers(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.task_wakeup.notify_one();
        self.notify_pollers();
    }
}

/// Stops the I/O task when the consumer is dropped.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Builds a [`Consumer`] with deserializers.
pub struct ConsumerBuilder<K, V> {
    config: ConsumerConfig,
    key_deserializer: Arc<dyn Deserializer<K>>,
    value_deserializer: Arc<dyn Deserializer<V>>,
    listener: Option<Arc<dyn ConsumerRebalanceListener<K, V>>>,
}

impl<K, V> std::fmt::Debug for ConsumerBuilder<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> ConsumerBuilder<K, V> {
    /// A builder with these deserializers.
    pub fn new(
        config: ConsumerConfig,
        key_deserializer: impl Deserializer<K> + 'static,
        value_deserializer: impl Deserializer<V> + 'static,
    ) -> Self {
        ConsumerBuilder {
            config,
            key_deserializer: Arc::new(key_deserializer),
            value_deserializer: Arc::new(value_deserializer),
            listener: None,
        }
    }

    /// The rebalance listener [`Consumer::subscribe`] uses (see
    /// [`Consumer::subscribe_with_listener`] to set one per subscription).
    pub fn rebalance_listener(
        mut self,
        listener: impl ConsumerRebalanceListener<K, V> + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Starts the consumer (its I/O task runs on the current tokio runtime).
    ///
    /// # Errors
    /// [`Error::Config`] when called outside a tokio runtime.
    pub fn build(self) -> Result<Consumer<K, V>, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::Config {
            key: "runtime".into(),
            reason: "a Consumer must be created inside a tokio runtime".into(),
        })?;
        let config = self.config;
        let fetch_config = FetchConfig {
            min_bytes: to_i32(config.fetch_min_bytes),
            max_bytes: to_i32(config.fetch_max_bytes),
            max_wait: config.fetch_max_wait,
            partition_max_bytes: to_i32(config.max_partition_fetch_bytes),
            read_committed: config.isolation_level == IsolationLevel::ReadCommitted,
            check_crcs: config.check_crcs,
            rack: config.client_rack.clone().filter(|r| !r.is_empty()),
            max_decompressed_batch: fetcher::DEFAULT_MAX_DECOMPRESSED_BATCH,
        };
        let default_reset = match config.auto_offset_reset {
            AutoOffsetReset::Earliest => Some(ResetStrategy::Earliest),
            AutoOffsetReset::Latest => Some(ResetStrategy::Latest),
            AutoOffsetReset::None => None,
        };
        let conn_config = ConnectionConfig {
            client_id: Some(config.client_id.clone()),
            // A long poll must not time out: the broker may hold a Fetch for max.wait.
            request_timeout: config.request_timeout + config.fetch_max_wait,
            connect_timeout: config.socket_connection_setup_timeout,
            send_buffer_bytes: config.send_buffer_bytes,
            receive_buffer_bytes: config.receive_buffer_bytes,
            ..ConnectionConfig::default()
        };
        let group_conn_config = ConnectionConfig {
            // A JoinGroup may wait for the whole rebalance (Java's JOIN_GROUP_TIMEOUT_LAPSE).
            request_timeout: config
                .request_timeout
                .max(config.max_poll_interval + Duration::from_secs(5)),
            ..conn_config.clone()
        };
        let connections = ConnectionPool::new(
            config.bootstrap_servers.clone(),
            conn_config,
            config.reconnect_backoff,
            config.reconnect_backoff_max,
            config.connections_max_idle,
        );
        let group_connections = ConnectionPool::new(
            config.bootstrap_servers.clone(),
            group_conn_config,
            config.reconnect_backoff,
            config.reconnect_backoff_max,
            config.connections_max_idle,
        );
        let shared = Arc::new(Shared {
            fetch_config,
            state: Mutex::new(State {
                subs: SubscriptionState::new(default_reset),
                buffer: FetchBuffer::new(),
                scratch: Vec::new(),
                error: None,
                group: GroupState::new(),
            }),
            metadata: ConsumerMetadata {
                cluster: watch::Sender::new(Arc::new(Cluster::default())),
                update_requested: AtomicBool::new(true),
                extra_topics: Mutex::new(HashMap::new()),
            },
            connections,
            group_connections,
            task_wakeup: Notify::new(),
            changed: watch::Sender::new(0),
            wakeup: AtomicBool::new(false),
            drained: AtomicBool::new(false),
            close_deadline: OnceLock::new(),
            closed: AtomicBool::new(false),
            stopped: watch::Sender::new(false),
            config,
        });
        handle.spawn(IoTask::new(shared.clone()).run());
        Ok(Consumer {
            close_on_drop: Arc::new(CloseOnDrop(shared.clone())),
            shared,
            key_deserializer: self.key_deserializer,
            value_deserializer: self.value_deserializer,
            default_listener: self.listener,
            listener: Mutex::new(None),
        })
    }
}

/// Interrupts a [`Consumer::poll`] from anywhere (Java's `wakeup`), without a reference to
/// the consumer. Cheap to clone.
#[derive(Clone)]
pub struct WakeupHandle(Arc<Shared>);

impl std::fmt::Debug for WakeupHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeupHandle").finish_non_exhaustive()
    }
}

impl WakeupHandle {
    /// As [`Consumer::wakeup`].
    pub fn wakeup(&self) {
        self.0.wakeup.store(true, Ordering::Release);
        self.0.notify_pollers();
    }
}

/// An asynchronous Kafka consumer (Java's `KafkaConsumer`): manual assignment
/// ([`assign`](Self::assign)) or group consumption ([`subscribe`](Self::subscribe)).
///
/// Every method takes `&self`; the consumer is `Send + Sync` and can be shared (in an `Arc`)
/// so that another task can [`wakeup`](Self::wakeup) a blocked poll, or use a
/// [`WakeupHandle`]. Dropping the consumer stops its I/O task.
pub struct Consumer<K = Bytes, V = Bytes> {
    shared: Arc<Shared>,
    close_on_drop: Arc<CloseOnDrop>,
    key_deserializer: Arc<dyn Deserializer<K>>,
    value_deserializer: Arc<dyn Deserializer<V>>,
    /// The builder's listener.
    default_listener: Option<Arc<dyn ConsumerRebalanceListener<K, V>>>,
    /// The listener of the current subscription.
    listener: Mutex<Option<Arc<dyn ConsumerRebalanceListener<K, V>>>>,
}

impl<K, V> std::fmt::Debug for Consumer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("client_id", &self.shared.config.client_id)
            .finish_non_exhaustive()
    }
}

impl Consumer<Bytes, Bytes> {
    /// A consumer of raw bytes (keys and values as [`Bytes`]).
    ///
    /// # Errors
    /// [`Error::Config`] when called outside a tokio runtime.
    pub fn new(config: ConsumerConfig) -> Result<Self, Error> {
        ConsumerBuilder::new(config, BytesSerializer, BytesSerializer).build()
    }
}

/// A stream of records from [`Consumer::stream`]; implements [`futures::Stream`].
pub struct RecordStream<'a, K, V> {
    inner: BoxStream<'a, Result<ConsumerRecord<K, V>, Error>>,
}

impl<K, V> std::fmt::Debug for RecordStream<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream").finish_non_exhaustive()
    }
}

impl<K, V> RecordStream<'_, K, V> {
    /// The next record, or error; `None` once the consumer is closed.
    pub async fn next(&mut self) -> Option<Result<ConsumerRecord<K, V>, Error>> {
        self.inner.next().await
    }
}

impl<K, V> Stream for RecordStream<'_, K, V> {
    type Item = Result<ConsumerRecord<K, V>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<K: Send + 'static, V: Send + 'static> Consumer<K, V> {
    /// A builder with these deserializers.
    pub fn builder(
        config: ConsumerConfig,
        key_deserializer: impl Deserializer<K> + 'static,
        value_deserializer: impl Deserializer<V> + 'static,
    ) -> ConsumerBuilder<K, V> {
        ConsumerBuilder::new(config, key_deserializer, value_deserializer)
    }

    /// The configuration the consumer runs with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Reads exactly these partitions from now on (Java's `assign`); an empty list
    /// unassigns everything. Partitions that stay assigned keep their position; new ones
    /// start at the group's committed offset (with a `group.id`) or else
    /// `auto.offset.reset`, unless [`seek`](Self::seek) is called. Buffered data of
    /// partitions no longer assigned is dropped.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty topic name or a negative partition, or while
    /// subscribed (Java's `IllegalStateException`: call [`unsubscribe`](Self::unsubscribe)
    /// first); [`Error::Closed`] after [`close`](Self::close).
    pub fn assign(&self, partitions: Vec<TopicPartition>) -> Result<(), Error> {
        self.check_open()?;
        if let Some(tp) = partitions
            .iter()
            .find(|tp| tp.topic.is_empty() || tp.partition < 0)
        {
            return Err(Error::InvalidArgument(format!(
                "invalid topic partition to assign: {tp}"
            )));
        }
        {
            let mut state = self.state();
            if state.group.mode == Mode::Subscribed {
                return Err(Error::InvalidArgument(MUTUALLY_EXCLUSIVE.into()));
            }
            state.group.mode = if partitions.is_empty() {
                Mode::None
            } else {
                Mode::Manual
            };
            if self.shared.config.group_id.is_some() {
                state.subs.assign_awaiting_committed(partitions);
            } else {
                state.subs.assign(partitions);
            }
            let State { subs, buffer, .. } = &mut *state;
            buffer.retain_assigned(subs);
        }
        self.shared.metadata.request_update();
        self.shared.task_wakeup.notify_one();
        Ok(())
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.state().subs.assigned()
    }

    /// Moves the position of `tp` to `offset`: the next poll returns records from there.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tp` is not assigned or `offset` is negative.
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<(), Error> {
        self.state().subs.seek(tp, offset)?;
        self.shared.task_wakeup.notify_one();
        Ok(())
    }

    /// Moves the positions of `partitions` (every assigned one when empty) to their first
    /// offset, looked up lazily (Java's `seekToBeginning`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned.
    pub fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.state().subs.seek_to_beginning(partitions)?;
        self.shared.task_wakeup.notify_one();
        Ok(())
    }

    /// Moves the positions of `partitions` (every assigned one when empty) to their end,
    /// looked up lazily (Java's `seekToEnd`): the high watermark, or the last stable offset
    /// with `read_committed`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned.
    pub fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.state().subs.seek_to_end(partitions)?;
        self.shared.task_wakeup.notify_one();
        Ok(())
    }

    /// The offset of the next record a poll returns for `tp`, waiting (up to
    /// `default.api.timeout.ms`) for a pending reset to be looked up.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tp` is not assigned, or has no position and
    /// `auto.offset.reset` is none; [`Error::Timeout`] when the lookup does not complete in
    /// time; the lookup's error.
    pub async fn position(&self, tp: &TopicPartition) -> Result<i64, Error> {
        self.check_open()?;
        let deadline = Instant::now() + self.shared.config.default_api_timeout;
        let mut rx = self.shared.changed.subscribe();
        loop {
            rx.borrow_and_update();
            {
                let mut state = self.state();
                let Some(s) = state.subs.state(tp) else {
                    return Err(Error::InvalidArgument(format!(
                        "You can only check the position for partitions assigned to this consumer: {tp}"
                    )));
                };
                if let Some(p) = s.position {
                    return Ok(p.offset);
                }
                if s.reset.is_none() && !s.awaiting_committed {
                    return Err(state.subs.missing_position_error().unwrap_or_else(|| {
                        Error::InvalidArgument(format!("no position for {tp}"))
                    }));
                }
                if let Some(e) = state.error.take() {
                    return Err(e);
                }
            }
            self.shared.task_wakeup.notify_one();
            match tokio::time::timeout_at(deadline.into(), rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => {
                    return Err(Error::Timeout(format!(
                        "Timeout of {}ms expired before the position for partition {tp} could be determined",
                        self.shared.config.default_api_timeout.as_millis()
                    )))
                }
            }
            self.check_open()?;
        }
    }

    /// Pauses `partitions`: polls return none of their records, and they are not fetched,
    /// until [`resume`](Self::resume). Already fetched data is kept.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned.
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.state().subs.pause(partitions)
    }

    /// Resumes paused partitions.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned.
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.state().subs.resume(partitions)?;
        self.shared.task_wakeup.notify_one();
        self.shared.notify_pollers();
        Ok(())
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.state().subs.paused()
    }

    /// Interrupts the current [`poll`](Self::poll) (or the next one, when none is in
    /// progress), which returns `Err(Error::Timeout("wakeup"))` ([`is_wakeup`]); Java's
    /// `wakeup`. Safe to call from any task.
    pub fn wakeup(&self) {
        self.wakeup_handle().wakeup();
    }

    /// A handle that can [`wakeup`](Self::wakeup) this consumer from another task.
    pub fn wakeup_handle(&self) -> WakeupHandle {
        WakeupHandle(self.shared.clone())
    }

    /// Returns the records fetched for the assigned, unpaused partitions: at most
    /// `max.poll.records`, in offset order per partition, waiting up to `timeout` for some
    /// to arrive (an empty vector when none did). The positions move past the returned
    /// records.
    ///
    /// # Errors
    /// * `Error::Timeout("wakeup")` after [`wakeup`](Self::wakeup) ([`is_wakeup`]);
    /// * [`Error::Kafka`] with OFFSET_OUT_OF_RANGE naming the partition when a position is
    ///   out of range and `auto.offset.reset` is none; [`Error::InvalidArgument`] when a
    ///   partition has no position then (seek first);
    /// * [`Error::Kafka`] with CORRUPT_MESSAGE for a corrupt batch (CRC) and other
    ///   non-retriable fetch errors; [`Error::Serialization`] when a deserializer fails.
    ///   Records read before the failure are returned first, the error at the next poll,
    ///   and the position stays at the failing record (seek past it to continue);
    /// * [`Error::Closed`] after [`close`](Self::close).
    ///
    /// While subscribed, each poll also tells the group the application is alive
    /// (`max.poll.interval.ms`) and first runs the [`ConsumerRebalanceListener`] callbacks of
    /// a rebalance (committing the consumed offsets before a revocation when
    /// `enable.auto.commit` is on); the group's fatal errors (fenced static member,
    /// authorization...) are returned by every poll.
    ///
    /// # Cancel safety
    /// Cancel safe: records are taken from the buffer only when the poll returns them (a
    /// listener callback interrupted by the cancellation runs again at the next poll).
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<ConsumerRecord<K, V>>, Error> {
        self.check_open()?;
        if self.shared.drained.swap(false, Ordering::AcqRel) {
            // The previous poll drained a partition and woke the I/O task to fetch it again.
            // A woken task sits in this worker's LIFO slot, which other workers cannot steal
            // from, and a poll loop that always finds buffered records never yields: without
            // this the next fetch would only go out once everything buffered was drained (no
            // pipelining; a current-thread runtime would not run the I/O task at all). Done
            // here rather than before the previous poll returned, so no records are lost when
            // a poll is cancelled.
            tokio::task::yield_now().await;
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut rx = self.shared.changed.subscribe();
        loop {
            rx.borrow_and_update();
            if self.shared.wakeup.swap(false, Ordering::AcqRel) {
                return Err(Error::Timeout(WAKEUP.into()));
            }
            self.check_open()?;
            self.poll_group().await?;
            let (mut collected, drained) = {
                let mut state = self.state();
                if let Some(e) = state.error.take() {
                    return Err(e);
                }
                if let Some(e) = state.subs.missing_position_error() {
                    return Err(e);
                }
                let State {
                    subs,
                    buffer,
                    scratch,
                    ..
                } = &mut *state;
                let before = buffer.len();
                let collected = buffer.collect_into(
                    subs,
                    &self.shared.fetch_config,
                    self.shared.config.max_poll_records.max(1),
                    std::mem::take(scratch),
                );
                let drained = buffer.len() < before;
                (collected, drained)
            };
            if collected.metadata_refresh {
                self.shared.metadata.request_update();
            }
            // Drained partitions can be fetched again.
            self.shared.task_wakeup.notify_one();
            if !collected.records.is_empty() {
                if drained {
                    self.shared.drained.store(true, Ordering::Release);
                }
                let out = self.deserialize(&mut collected.records);
                self.recycle(collected.records);
                return out;
            }
            self.recycle(collected.records);
            if let Some(e) = collected.error {
                return Err(e);
            }
            let changed = rx.changed();
            let waited = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), changed).await,
                None => Ok(changed.await),
            };
            match waited {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => return Ok(Vec::new()),
            }
        }
    }

    /// Gives the (drained) vector of collected records back for the next poll, so its
    /// memory is reused rather than allocated (and page-faulted in) for every poll.
    fn recycle(&self, mut records: Vec<ConsumerRecord>) {
        records.clear();
        let mut state = self.state();
        if state.scratch.capacity() < records.capacity() {
            state.scratch = records;
        }
    }

    /// Deserializes (draining `records`); on a failure, the records before it are returned
    /// and the positions of the partitions from the failing record on are moved back (the
    /// next poll fails).
    fn deserialize(
        &self,
        records: &mut Vec<ConsumerRecord>,
    ) -> Result<Vec<ConsumerRecord<K, V>>, Error> {
        let mut out = Vec::with_capacity(records.len());
        let mut iter = records.drain(..);
        while let Some(mut r) = iter.next() {
            match self.deserialize_one(&mut r) {
                Ok((key, value)) => out.push(ConsumerRecord {
                    topic: r.topic,
                    partition: r.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    timestamp_type: r.timestamp_type,
                    key,
                    value,
                    headers: r.headers,
                    leader_epoch: r.leader_epoch,
                    serialized_key_size: r.serialized_key_size,
                    serialized_value_size: r.serialized_value_size,
                }),
                Err(e) => {
                    // Rewind every partition to its first record not returned.
                    let mut rewound = HashSet::new();
                    let mut state = self.state();
                    for rest in std::iter::once(&r).chain(iter.as_slice()) {
                        let tp = rest.topic_partition();
                        if rewound.insert(tp.clone()) {
                            let _ = state.subs.seek_with_epoch(
                                &tp,
                                FetchPosition {
                                    offset: rest.offset,
                                    leader_epoch: rest.leader_epoch,
                                },
                            );
                        }
                    }
                    drop(state);
                    self.shared.task_wakeup.notify_one();
                    return if out.is_empty() { Err(e) } else { Ok(out) };
                }
            }
        }
        Ok(out)
    }

    /// Deserializes the key and value, taking them out of `r` (no copy for deserializers
    /// that share the fetched bytes); `r` keeps its position fields for the error path.
    #[allow(clippy::type_complexity)]
    fn deserialize_one(&self, r: &mut ConsumerRecord) -> Result<(Option<K>, Option<V>), Error> {
        let what = |r: &ConsumerRecord, part: &str, e: Error| {
            Error::Serialization(format!(
                "Error deserializing {part} for partition {}-{} at offset {}. If needed, please \
                 seek past the record to continue consumption. ({e})",
                r.topic, r.partition, r.offset
            ))
        };
        let key = match r.key.take() {
            Some(k) => match self
                .key_deserializer
                .deserialize_owned(&r.topic, &r.headers, k)
            {
                Ok(k) => Some(k),
                Err(e) => return Err(what(r, "key", e)),
            },
            None => None,
        };
        let value = match r.value.take() {
            Some(v) => match self
                .value_deserializer
                .deserialize_owned(&r.topic, &r.headers, v)
            {
                Ok(v) => Some(v),
                Err(e) => return Err(what(r, "value", e)),
            },
            None => None,
        };
        Ok((key, value))
    }

    /// The records as a [`Stream`]: polls repeatedly and yields them one by one; errors are
    /// yielded as items (the stream goes on after them); it ends when the consumer is
    /// closed. Records the stream took from the consumer but has not yielded yet are lost
    /// when it is dropped (the positions are already past them).
    pub fn stream(&self) -> RecordStream<'_, K, V> {
        let state = (self, VecDeque::new());
        let inner = futures::stream::unfold(state, |(consumer, mut pending)| async move {
            loop {
                if let Some(r) = pending.pop_front() {
                    return Some((Ok(r), (consumer, pending)));
                }
                match consumer.poll(Duration::from_secs(3600)).await {
                    Ok(records) => pending.extend(records),
                    Err(Error::Closed) => return None,
                    Err(e) => return Some((Err(e), (consumer, pending))),
                }
            }
        });
        RecordStream {
            inner: inner.boxed(),
        }
    }

    /// The first offset of each partition (the log start offset); Java's
    /// `beginningOffsets`. Waits up to `default.api.timeout.ms`.
    ///
    /// # Errors
    /// [`Error::Timeout`]; a non-retriable lookup error.
    pub async fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>, Error> {
        let query = partitions.iter().map(|tp| (tp.clone(), -2)).collect();
        let found = self.list_offsets(query).await?;
        Ok(found.into_iter().map(|(tp, o)| (tp, o.offset)).collect())
    }

    /// The end offset of each partition: the high watermark, or the last stable offset with
    /// `read_committed`; Java's `endOffsets`. Waits up to `default.api.timeout.ms`.
    ///
    /// # Errors
    /// [`Error::Timeout`]; a non-retriable lookup error.
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>, Error> {
        let query = partitions.iter().map(|tp| (tp.clone(), -1)).collect();
        let found = self.list_offsets(query).await?;
        Ok(found.into_iter().map(|(tp, o)| (tp, o.offset)).collect())
    }

    /// For each partition, the earliest offset whose timestamp is at or after the given one
    /// (milliseconds since the epoch); `None` when there is no such record. Java's
    /// `offsetsForTimes`. Waits up to `default.api.timeout.ms`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative timestamp; [`Error::Timeout`]; a
    /// non-retriable lookup error.
    pub async fn offsets_for_times(
        &self,
        timestamps: &HashMap<TopicPartition, i64>,
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndTimestamp>>, Error> {
        if let Some((tp, ts)) = timestamps.iter().find(|(_, ts)| **ts < 0) {
            return Err(Error::InvalidArgument(format!(
                "The target time for partition {tp} is {ts}. The target time cannot be negative."
            )));
        }
        let query = timestamps
            .iter()
            .map(|(tp, ts)| (tp.clone(), *ts))
            .collect();
        let found = self.list_offsets(query).await?;
        Ok(found
            .into_iter()
            .map(|(tp, o)| {
                let v = (o.offset >= 0).then_some(OffsetAndTimestamp {
                    offset: o.offset,
                    timestamp: o.timestamp,
                    leader_epoch: o.leader_epoch,
                });
                (tp, v)
            })
            .collect())
    }

    /// ListOffsets for `query`, through each partition's leader, retrying retriable errors
    /// until `default.api.timeout.ms`.
    async fn list_offsets(
        &self,
        query: Vec<(TopicPartition, i64)>,
    ) -> Result<HashMap<TopicPartition, ListedOffset>, Error> {
        self.check_open()?;
        let cfg = &self.shared.config;
        let deadline = Instant::now() + cfg.default_api_timeout;
        let read_committed = self.shared.fetch_config.read_committed;
        let mut remaining = query;
        let mut found = HashMap::new();
        let mut rx = self.shared.metadata.cluster.subscribe();
        {
            let now = Instant::now();
            let mut extra = lock(&self.shared.metadata.extra_topics);
            for (tp, _) in &remaining {
                extra.insert(tp.topic.to_string(), now);
            }
        }
        let mut last_error: Option<Error> = None;
        loop {
            rx.borrow_and_update();
            let cluster = self.shared.metadata.cluster();
            let mut by_node: HashMap<i32, Vec<(TopicPartition, i64)>> = HashMap::new();
            let mut waiting_metadata = false;
            for (tp, ts) in &remaining {
                if let Some(code) = cluster.topic_errors.get(&*tp.topic) {
                    if !code.is_retriable() && *code != ErrorCode::UnknownTopicOrPartition {
                        return Err(Error::kafka(*code));
                    }
                }
                match cluster
                    .topic(&tp.topic)
                    .and_then(|t| t.leader(tp.partition))
                    .filter(|n| cluster.broker(*n).is_some())
                {
                    Some(node) => by_node.entry(node).or_default().push((tp.clone(), *ts)),
                    None => waiting_metadata = true,
                }
            }
            let mut next = Vec::new();
            for (node, parts) in by_node {
                let Some(addr) = cluster.broker(node).map(|b| b.address()) else {
                    continue;
                };
                let timeout = deadline.saturating_duration_since(Instant::now());
                let result = match self.shared.connections.get(node, &addr).await {
                    Ok(conn) => tokio::time::timeout(
                        timeout,
                        fetcher::list_offsets(&conn, &parts, read_committed, cfg.request_timeout),
                    )
                    .await
                    .unwrap_or_else(|_| Err(Error::Timeout("ListOffsets".into()))),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(answers) => {
                        for ((tp, r), (_, ts)) in answers.into_iter().zip(parts) {
                            match r {
                                Ok(o) => {
                                    found.insert(tp, o);
                                }
                                Err(code) if code.is_retriable() => {
                                    if needs_metadata_refresh(code) {
                                        waiting_metadata = true;
                                    }
                                    last_error = Some(Error::kafka(code));
                                    next.push((tp, ts));
                                }
                                Err(code) => {
                                    return Err(Error::kafka_with_message(
                                        code,
                                        Some(format!("ListOffsets failed for {tp}")),
                                    ))
                                }
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        waiting_metadata = true;
                        last_error = Some(e);
                        next.extend(parts);
                    }
                    Err(e) => return Err(e),
                }
            }
            // Partitions without a leader stay in `remaining` too.
            remaining
                .retain(|(tp, _)| !found.contains_key(tp) && !next.iter().any(|(n, _)| n == tp));
            remaining.extend(next);
            if remaining.is_empty() {
                return Ok(found);
            }
            if waiting_metadata {
                self.shared.metadata.request_update();
                self.shared.task_wakeup.notify_one();
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout(format!(
                    "Failed to get offsets by times in {}ms{}",
                    cfg.default_api_timeout.as_millis(),
                    last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                )));
            }
            let backoff = deadline.min(now + cfg.retry_backoff.max(Duration::from_millis(10)));
            if waiting_metadata {
                let _ = tokio::time::timeout_at(deadline.into(), rx.changed()).await;
            } else {
                tokio::time::sleep_until(backoff.into()).await;
            }
            self.check_open()?;
        }
    }

    // ------------------------------------------------------------------ group consumption

    fn group_id(&self) -> Result<&str, Error> {
        self.shared
            .config
            .group_id
            .as_deref()
            .filter(|g| !g.is_empty())
            .ok_or_else(|| Error::Config {
                key: "group.id".into(),
                reason: "To use the group management or offset commit APIs, you must provide \
                         a valid group.id in the consumer configuration."
                    .into(),
            })
    }

    /// Joins the group (`group.id`) as a member interested in `topics` (Java's
    /// `subscribe`), with the builder's rebalance listener if any. The partitions come from
    /// the group's assignment, which the consumer learns while it polls; a new subscription
    /// replaces the previous one (and rebalances the group).
    ///
    /// # Errors
    /// [`Error::Config`] without a `group.id`, or for an unknown or incompatible
    /// `partition.assignment.strategy`; [`Error::InvalidArgument`] for an empty list or an
    /// empty topic name (use [`unsubscribe`](Self::unsubscribe) to leave the group), and
    /// while partitions are assigned manually (Java's `IllegalStateException`);
    /// [`Error::Closed`].
    pub fn subscribe<S: AsRef<str>>(&self, topics: &[S]) -> Result<(), Error> {
        self.subscribe_inner(Subscription::topics(topics)?, self.default_listener.clone())
    }

    /// As [`subscribe`](Self::subscribe), with `listener` for this subscription.
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe).
    pub fn subscribe_with_listener<S: AsRef<str>>(
        &self,
        topics: &[S],
        listener: impl ConsumerRebalanceListener<K, V> + 'static,
    ) -> Result<(), Error> {
        self.subscribe_inner(Subscription::topics(topics)?, Some(Arc::new(listener)))
    }

    /// Joins the group as a member interested in every topic whose whole name matches the
    /// regular expression `pattern` (Java's `subscribe(Pattern)`): `events-.*` matches
    /// `events-eu` but not `old-events-eu`. Internal topics (`__consumer_offsets`...) are left
    /// out unless `exclude.internal.topics` is false.
    ///
    /// The consumer then keeps metadata of all topics and matches the pattern again at every
    /// metadata refresh (at least every `metadata.max.age.ms`): a new matching topic (or a
    /// deleted one) changes the subscription and rebalances the group, so its partitions are
    /// consumed without a restart. The member joins once the first match is known;
    /// [`subscription`](Self::subscription) lists the matched topics.
    ///
    /// The syntax is the `regex` crate's, which agrees with `java.util.regex` on what topic
    /// patterns use (classes, alternation, repetition, `(?i)`), without look-around or
    /// back-references.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or invalid pattern, and as
    /// [`subscribe`](Self::subscribe).
    pub fn subscribe_pattern(&self, pattern: &str) -> Result<(), Error> {
        let pattern = TopicPattern::new(pattern)?;
        self.subscribe_inner(
            Subscription::Pattern(pattern),
            self.default_listener.clone(),
        )
    }

    /// As [`subscribe_pattern`](Self::subscribe_pattern), with `listener` for this
    /// subscription.
    ///
    /// # Errors
    /// As [`subscribe_pattern`](Self::subscribe_pattern).
    pub fn subscribe_pattern_with_listener(
        &self,
        pattern: &str,
        listener: impl ConsumerRebalanceListener<K, V> + 'static,
    ) -> Result<(), Error> {
        let pattern = TopicPattern::new(pattern)?;
        self.subscribe_inner(Subscription::Pattern(pattern), Some(Arc::new(listener)))
    }

    fn subscribe_inner(
        &self,
        subscription: Subscription,
        listener: Option<Arc<dyn ConsumerRebalanceListener<K, V>>>,
    ) -> Result<(), Error> {
        self.check_open()?;
        let group_id = self.group_id()?.to_owned();
        {
            let mut state = self.state();
            let g = &mut state.group;
            if g.mode == Mode::Manual {
                return Err(Error::InvalidArgument(MUTUALLY_EXCLUSIVE.into()));
            }
            if g.leaving {
                return Err(Error::InvalidArgument(
                    "the consumer is leaving the group (unsubscribe or close in progress)".into(),
                ));
            }
            if g.coordinator.is_none() {
                let c = ConsumerCoordinator::new(
                    coordinator_config(&self.shared.config, &group_id)?,
                    Instant::now(),
                )?;
                g.coordinator = Some(c);
                g.machine += 1;
                g.fatal = None;
            }
            match subscription {
                Subscription::Topics(topics) => {
                    g.pattern = None;
                    g.pattern_evaluated = false;
                    if let Some(c) = g.coordinator.as_mut() {
                        c.subscribe(topics);
                    }
                }
                Subscription::Pattern(pattern) => {
                    tracing::debug!(pattern = pattern.as_str(), "subscribing to a pattern");
                    // Matched (and the machine let go) at the next all-topics metadata.
                    g.pattern = Some(pattern);
                    g.pattern_evaluated = false;
                }
            }
            g.mode = Mode::Subscribed;
        }
        *lock(&self.listener) = listener;
        self.shared.metadata.request_update();
        self.shared.task_wakeup.notify_one();
        Ok(())
    }

    /// The subscribed topics, sorted (empty when not subscribed).
    pub fn subscription(&self) -> Vec<String> {
        let state = self.state();
        match (&state.group.mode, &state.group.coordinator) {
            (Mode::Subscribed, Some(c)) => c.subscription(),
            _ => Vec::new(),
        }
    }

    /// Leaves the group and drops every partition (Java's `unsubscribe`): the owned
    /// partitions are revoked (the listener runs; lost when the member is no longer in a
    /// valid generation) and a dynamic member sends LeaveGroup. Also clears a manual
    /// assignment. No offsets are committed (as in Java): commit first if needed.
    ///
    /// # Errors
    /// [`Error::Closed`]; the first error a [`ConsumerRebalanceListener`] callback returned
    /// (the consumer has left the group and dropped its partitions all the same).
    pub async fn unsubscribe(&self) -> Result<(), Error> {
        self.check_open()?;
        let deadline = Instant::now() + self.shared.config.default_api_timeout;
        self.leave_group("the consumer unsubscribed from all topics", deadline)
            .await
    }

    /// Revokes (or loses) the owned partitions on the caller's task, sends LeaveGroup for a
    /// dynamic member, and forgets the state machine and the assignment. Returns the first
    /// error of a listener callback (the member leaves all the same).
    async fn leave_group(&self, reason: &str, deadline: Instant) -> Result<(), Error> {
        {
            let mut state = self.state();
            if state.group.mode != Mode::Subscribed || state.group.leaving {
                if state.group.mode == Mode::Manual {
                    state.group.mode = Mode::None;
                    state.subs.assign(Vec::new());
                    let State { subs, buffer, .. } = &mut *state;
                    buffer.retain_assigned(subs);
                }
                return Ok(());
            }
            state.group.leaving = true;
        }
        let mut first_error: Option<Error> = None;
        let mut keep = |r: Result<(), Error>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        // Callbacks already handed out run first, so the listener sees a consistent story.
        let queued: Vec<Callback> = self.state().group.callbacks.drain(..).collect();
        for cb in queued {
            keep(self.run_callback(cb, false).await);
        }
        loop {
            let action = {
                let mut state = self.state();
                let now = Instant::now();
                match state.group.coordinator.as_mut() {
                    Some(c) => {
                        c.close(now);
                        c.next_action(now)
                    }
                    None => None,
                }
            };
            match action {
                None => break,
                Some(Action::PartitionsRevoked(ps)) => {
                    keep(
                        self.run_callback(Callback::Revoked(from_group_tps(&ps)), false)
                            .await,
                    );
                }
                Some(Action::PartitionsLost(ps)) => {
                    keep(
                        self.run_callback(Callback::Lost(from_group_tps(&ps)), false)
                            .await,
                    );
                }
                Some(Action::LeaveGroup(l)) => {
                    tracing::debug!(member_id = %l.member_id, reason, "leaving the group");
                    let timeout = deadline
                        .saturating_duration_since(Instant::now())
                        .min(self.shared.config.request_timeout);
                    let node = l.coordinator.clone();
                    let r: Result<LeaveGroupResponse, Error> =
                        coordinator_request(&self.shared, &node, timeout, |v| l.request(v)).await;
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "LeaveGroup failed");
                    }
                }
                Some(_) => {}
            }
        }
        let mut state = self.state();
        let g = &mut state.group;
        g.coordinator = None;
        g.machine += 1;
        g.callbacks.clear();
        g.leaving = false;
        g.pattern = None;
        g.pattern_evaluated = false;
        g.mode = Mode::None;
        state.subs.assign(Vec::new());
        let State { subs, buffer, .. } = &mut *state;
        buffer.retain_assigned(subs);
        drop(state);
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The poll path's group work: reports a fatal group error, tells the state machine
    /// the application polled (`max.poll.interval.ms`), and runs the listener callbacks it
    /// asked for.
    async fn poll_group(&self) -> Result<(), Error> {
        {
            let mut state = self.state();
            let g = &mut state.group;
            if g.mode != Mode::Subscribed {
                return Ok(());
            }
            if let Some(e) = &g.fatal {
                return Err(e.clone());
            }
            if let Some(c) = g.active() {
                c.poll_called(Instant::now());
            }
            if g.in_callbacks || g.callbacks.is_empty() {
                drop(state);
                self.shared.task_wakeup.notify_one();
                return Ok(());
            }
            g.in_callbacks = true;
        }
        let _guard = InCallbacks(&self.shared);
        let mut result = Ok(());
        loop {
            let Some(cb) = self.state().group.callbacks.front().cloned() else {
                break;
            };
            let auto_commit = self.shared.config.enable_auto_commit;
            let r = self.run_callback(cb, auto_commit).await;
            self.state().group.callbacks.pop_front();
            if r.is_err() {
                // Returned by this poll (Java rethrows); the next callbacks wait for the next.
                result = r;
                break;
            }
        }
        self.shared.task_wakeup.notify_one();
        result
    }

    fn current_listener(&self) -> Arc<dyn ConsumerRebalanceListener<K, V>> {
        lock(&self.listener)
            .clone()
            .unwrap_or_else(|| Arc::new(NoOpRebalanceListener))
    }

    /// Runs one listener callback and applies it to the assignment (Java's order: revoked
    /// partitions are dropped after the callback, added ones assigned before it). The
    /// assignment changes whatever the callback returns; its error is returned.
    async fn run_callback(&self, cb: Callback, auto_commit: bool) -> Result<(), Error> {
        let listener = self.current_listener();
        let (name, result) = match cb {
            Callback::Revoked(ps) => {
                tracing::debug!(partitions = ?ps, "partitions revoked");
                if auto_commit {
                    let deadline = Instant::now() + self.shared.config.default_api_timeout;
                    if let Err(e) = self.commit_sync_until(None, deadline).await {
                        tracing::warn!(error = %e, "auto-commit before revocation failed");
                    }
                }
                let r = listener.on_partitions_revoked(self, &ps).await;
                self.drop_partitions(&ps);
                ("on_partitions_revoked", r)
            }
            Callback::Lost(ps) => {
                tracing::debug!(partitions = ?ps, "partitions lost");
                let r = listener.on_partitions_lost(self, &ps).await;
                self.drop_partitions(&ps);
                ("on_partitions_lost", r)
            }
            Callback::Assigned(ps) => {
                tracing::debug!(partitions = ?ps, "partitions assigned");
                {
                    let mut state = self.state();
                    let mut all = state.subs.assigned();
                    all.extend(ps.iter().cloned());
                    state.subs.assign_awaiting_committed(all);
                }
                self.shared.metadata.request_update();
                self.shared.task_wakeup.notify_one();
                let r = listener.on_partitions_assigned(self, &ps).await;
                ("on_partitions_assigned", r)
            }
        };
        if let Err(e) = &result {
            tracing::warn!(error = %e, "the rebalance listener's {name} failed");
        }
        result
    }

    fn drop_partitions(&self, ps: &[TopicPartition]) {
        let mut state = self.state();
        let keep = without(state.subs.assigned(), ps);
        state.subs.assign(keep);
        let State { subs, buffer, .. } = &mut *state;
        buffer.retain_assigned(subs);
    }

    /// The offsets to commit: `offsets`, or every consumed position (Java's
    /// `allConsumed`).
    fn offsets_to_commit(
        &self,
        offsets: Option<HashMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<BTreeMap<assignor::TopicPartition, OffsetAndMetadata>, Error> {
        self.group_id()?;
        match offsets {
            Some(o) => to_commit_map(&o),
            None => Ok(consumed_offsets(&self.state().subs)),
        }
    }

    /// Commits `offsets` (`None`: the positions of every assigned partition, i.e. what the
    /// polls returned so far) to the group (Java's `commitSync`), retrying retriable errors
    /// (coordinator moving, loading...) until `default.api.timeout.ms`. Waits for earlier
    /// [`commit_async`](Self::commit_async) calls first. Committing nothing succeeds at once.
    ///
    /// # Errors
    /// * [`Error::Config`] without a `group.id`; [`Error::InvalidArgument`] for a negative
    ///   offset;
    /// * [`Error::Kafka`] with REBALANCE_IN_PROGRESS while the group rebalances (Java's
    ///   `RebalanceInProgressException`: poll to complete the rebalance, then retry), or
    ///   with ILLEGAL_GENERATION when the member is no longer in the group (Java's
    ///   `CommitFailedException`: its partitions went to other members);
    /// * [`Error::Timeout`]; other non-retriable errors (authorization, offset metadata too
    ///   large, fenced instance).
    pub async fn commit_sync(
        &self,
        offsets: Option<HashMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<(), Error> {
        self.check_open()?;
        let deadline = Instant::now() + self.shared.config.default_api_timeout;
        let offsets = self.offsets_to_commit(offsets)?;
        self.wait_async_commits(deadline).await;
        commit_until(&self.shared, &offsets, deadline).await
    }

    async fn commit_sync_until(
        &self,
        offsets: Option<HashMap<TopicPartition, OffsetAndMetadata>>,
        deadline: Instant,
    ) -> Result<(), Error> {
        let offsets = self.offsets_to_commit(offsets)?;
        self.wait_async_commits(deadline).await;
        commit_until(&self.shared, &offsets, deadline).await
    }

    /// Waits (up to `deadline`) until no asynchronous commit is queued or in flight.
    async fn wait_async_commits(&self, deadline: Instant) {
        let mut rx = self.shared.changed.subscribe();
        loop {
            rx.borrow_and_update();
            if self.state().group.async_pending == 0 {
                return;
            }
            self.shared.task_wakeup.notify_one();
            match tokio::time::timeout_at(deadline.into(), rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
    }

    /// Commits `offsets` (`None`: the consumed positions) in the background (Java's
    /// `commitAsync`): one attempt, no retry; `callback` gets the result on the consumer's
    /// I/O task (it must not block). Asynchronous commits are sent one after the other, in
    /// call order; [`commit_sync`](Self::commit_sync) and [`close`](Self::close) wait for
    /// them.
    ///
    /// # Errors
    /// [`Error::Config`] without a `group.id`; [`Error::InvalidArgument`] for a negative
    /// offset; [`Error::Closed`]. Commit failures go to `callback`.
    pub fn commit_async(
        &self,
        offsets: Option<HashMap<TopicPartition, OffsetAndMetadata>>,
        callback: impl FnOnce(Result<(), Error>, &HashMap<TopicPartition, OffsetAndMetadata>)
            + Send
            + 'static,
    ) -> Result<(), Error> {
        self.check_open()?;
        let offsets = self.offsets_to_commit(offsets)?;
        {
            let mut state = self.state();
            state.group.async_commits.push_back(AsyncCommit {
                offsets,
                callback: Some(Box::new(callback)),
            });
            state.group.async_pending += 1;
        }
        self.shared.task_wakeup.notify_one();
        Ok(())
    }

    /// The group's committed offsets of `partitions` (`None` for a partition without one);
    /// Java's `committed`. Retries retriable errors until `default.api.timeout.ms`.
    ///
    /// # Errors
    /// [`Error::Config`] without a `group.id`; [`Error::Timeout`]; non-retriable errors
    /// (authorization, unknown partition...).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>, Error> {
        self.check_open()?;
        self.group_id()?;
        let cfg = &self.shared.config;
        let deadline = Instant::now() + cfg.default_api_timeout;
        let tps: Vec<assignor::TopicPartition> = partitions.iter().map(to_group_tp).collect();
        let found = retry_until(
            &self.shared,
            deadline,
            "OffsetFetch",
            || fetch_committed_once(&self.shared, &tps),
            |e| {
                format!(
                    "Timeout of {}ms expired before the last committed offset for partitions \
                     could be determined (last error: {e})",
                    cfg.default_api_timeout.as_millis()
                )
            },
        )
        .await?;
        Ok(partitions
            .iter()
            .map(|tp| {
                let c = found.get(&to_group_tp(tp)).cloned().flatten();
                (tp.clone(), c.as_ref().map(committed_to_offset))
            })
            .collect())
    }

    /// Who the consumer is in its group (Java's `groupMetadata`): generation -1 and an
    /// empty member id while not in the group (or with manual assignment).
    ///
    /// # Errors
    /// [`Error::Config`] without a `group.id` (Java's `InvalidGroupIdException`).
    pub fn group_metadata(&self) -> Result<ConsumerGroupMetadata, Error> {
        let group_id = self.group_id()?.to_owned();
        let state = self.state();
        let generation = match (&state.group.mode, &state.group.coordinator) {
            (Mode::Subscribed, Some(c)) => c.generation().clone(),
            _ => Generation::none(),
        };
        Ok(ConsumerGroupMetadata {
            group_id,
            generation_id: generation.generation_id,
            member_id: generation.member_id,
            group_instance_id: self.shared.config.group_instance_id.clone(),
        })
    }

    /// Stops the consumer (Java's `close`), bounding the cleanup by 30 s (Java's default
    /// close timeout) or `default.api.timeout.ms` when shorter; see
    /// [`close_with_timeout`](Self::close_with_timeout).
    ///
    /// # Errors
    /// As [`close_with_timeout`](Self::close_with_timeout).
    pub async fn close(&self) -> Result<(), Error> {
        let timeout = DEFAULT_CLOSE_TIMEOUT.min(self.shared.config.default_api_timeout);
        self.close_with_timeout(timeout).await
    }

    /// Stops the consumer (Java's `close(Duration)`): with a `group.id` and
    /// `enable.auto.commit`, the consumed offsets are committed first; pending asynchronous
    /// commits are waited for; a subscribed member's partitions are revoked (listener) and a
    /// dynamic member leaves the group (LeaveGroup; a static member stays until its session
    /// times out). Then the incremental fetch sessions (KIP-227) are closed, as Java's
    /// fetcher does: one Fetch with epoch -1 per broker that granted a session and is still
    /// connected (no connection is opened for it), answered after any fetch in flight to it
    /// (so this can take up to `fetch.max.wait.ms`), waited for at most `request.timeout.ms`.
    /// No fetch is sent once closing starts. All of this must finish within `timeout`: what
    /// is still running then (a commit, a listener callback, the LeaveGroup, a session
    /// close) is abandoned, and failures of the commits, the LeaveGroup and the session
    /// closes are only logged (the broker evicts a session left open later).
    /// `Duration::ZERO` skips the cleanup and the session closes. Then the I/O task ends and
    /// later calls fail with [`Error::Closed`] (a blocked poll returns it). Closing twice is
    /// harmless.
    ///
    /// # Errors
    /// The first error a [`ConsumerRebalanceListener`] callback returned while the
    /// partitions were revoked (Java rethrows it from `close`); the consumer is closed all
    /// the same.
    pub async fn close_with_timeout(&self, timeout: Duration) -> Result<(), Error> {
        let mut result = Ok(());
        let deadline = saturating_add(Instant::now(), timeout);
        // Stops the fetches; once closed, the I/O task closes the sessions with what is left
        // (nothing with a zero timeout). A second close keeps the first deadline.
        let _ = self.shared.close_deadline.set(deadline);
        if !self.shared.closed.load(Ordering::Acquire) && !timeout.is_zero() {
            let cleanup = async {
                let cfg = &self.shared.config;
                let mode = self.state().group.mode;
                if cfg.group_id.is_some() && cfg.enable_auto_commit && mode != Mode::None {
                    if let Err(e) = self.commit_sync_until(None, deadline).await {
                        tracing::warn!(error = %e, "auto-commit of offsets on close failed");
                    }
                }
                self.wait_async_commits(deadline).await;
                self.leave_group("the consumer is being closed", deadline)
                    .await
            };
            match tokio::time::timeout_at(deadline.into(), cleanup).await {
                Ok(r) => result = r,
                Err(_) => tracing::warn!(
                    timeout_ms = timeout.as_millis() as u64,
                    "closing the consumer: cleanup did not finish in time, abandoned"
                ),
            }
        }
        self.shared.close();
        let mut stopped = self.shared.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
        let _ = &self.close_on_drop;
        result
    }
}

/// Java's `DEFAULT_CLOSE_TIMEOUT_MS`: how long [`Consumer::close`] may take at most.
const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Group requests shared by the application's calls and the I/O task.
// ---------------------------------------------------------------------------------------------

/// Java's message for mixing `assign` and `subscribe` (`IllegalStateException`).
const MUTUALLY_EXCLUSIVE: &str =
    "Subscription to topics, partitions and pattern are mutually exclusive";

/// What [`Consumer::subscribe`] / [`Consumer::subscribe_pattern`] subscribe to.
enum Subscription {
    Topics(Vec<String>),
    Pattern(TopicPattern),
}

impl Subscription {
    /// A list of topics, checked as Java does.
    fn topics<S: AsRef<str>>(topics: &[S]) -> Result<Self, Error> {
        let topics: Vec<String> = topics
            .iter()
            .map(|t| t.as_ref().trim().to_owned())
            .collect();
        if topics.is_empty() {
            return Err(Error::InvalidArgument(
                "Topic collection to subscribe to cannot be empty: use unsubscribe()".into(),
            ));
        }
        if topics.iter().any(String::is_empty) {
            return Err(Error::InvalidArgument(
                "Topic collection to subscribe to cannot contain null or empty topic".into(),
            ));
        }
        Ok(Subscription::Topics(topics))
    }
}

/// Clears `GroupState::in_callbacks` when the poll running the callbacks ends (or is
/// cancelled).
struct InCallbacks<'a>(&'a Shared);

impl Drop for InCallbacks<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).group.in_callbacks = false;
    }
}

/// Every consumed position as offsets to commit.
fn consumed_offsets(
    subs: &SubscriptionState,
) -> BTreeMap<assignor::TopicPartition, OffsetAndMetadata> {
    subs.all_consumed()
        .into_iter()
        .map(|(tp, p)| {
            (
                to_group_tp(&tp),
                OffsetAndMetadata {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: String::new(),
                },
            )
        })
        .collect()
}

fn node_address(node: &CoordinatorNode) -> String {
    crate::metadata::format_address(&node.host, node.port)
}

/// Sends a request built for the negotiated version to the group coordinator, over the
/// group connections, waiting at most `timeout`.
async fn coordinator_request<R, F>(
    shared: &Shared,
    node: &CoordinatorNode,
    timeout: Duration,
    build: F,
) -> Result<R::Response, Error>
where
    R: Request + Into<RequestBody>,
    F: FnOnce(i16) -> R,
{
    let conn = shared
        .group_connections
        .get(node.node_id, &node_address(node))
        .await?;
    let version = conn
        .version_for(R::API_KEY)
        .ok_or_else(|| Error::UnsupportedVersion(format!("{:?}", R::API_KEY)))?;
    tokio::time::timeout(timeout, conn.send_with_version(build(version), version))
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout(format!(
                "{:?} to the group coordinator",
                R::API_KEY
            )))
        })
}

/// FindCoordinator for `group_id` through any broker.
async fn find_coordinator(
    shared: &Shared,
    group_id: &str,
) -> Result<FindCoordinatorResponse, Error> {
    let conn = shared.connections.any().await?;
    let version = conn
        .version_for(ApiKey::FindCoordinator)
        .ok_or_else(|| Error::UnsupportedVersion("FindCoordinator".into()))?;
    let request = find_coordinator_request(0, group_id, version);
    tokio::time::timeout(
        shared.config.request_timeout,
        conn.send_with_version(request, version),
    )
    .await
    .unwrap_or_else(|_| Err(Error::Timeout("FindCoordinator".into())))
}

/// The coordinator to send commits and offset fetches to: the state machine's while
/// subscribed (its `Option<u64>` is the machine), else one looked up for the purpose.
async fn coordinator_node(shared: &Shared) -> Result<(CoordinatorNode, Option<u64>), CommitError> {
    let Some(group_id) = shared.config.group_id.clone() else {
        return Err(CommitError::Fatal(Error::InvalidArgument(
            "no group.id".into(),
        )));
    };
    {
        let state = lock(&shared.state);
        let g = &state.group;
        if g.mode == Mode::Subscribed {
            if let Some(c) = &g.coordinator {
                if let Some(e) = c.fatal_error() {
                    return Err(CommitError::Fatal(e.clone()));
                }
                return c
                    .coordinator()
                    .cloned()
                    .map(|n| (n, Some(g.machine)))
                    .ok_or(CommitError::Retriable(Error::kafka(
                        ErrorCode::CoordinatorNotAvailable,
                    )));
            }
        }
        if let Some(n) = &g.manual_coordinator {
            return Ok((n.clone(), None));
        }
    }
    let response = find_coordinator(shared, &group_id).await.map_err(|e| {
        if e.is_retriable() {
            CommitError::Retriable(e)
        } else {
            CommitError::Fatal(e)
        }
    })?;
    let (code, message, node) = find_coordinator_answer(&response, &group_id);
    if code != ErrorCode::None {
        let e = Error::kafka_with_message(code, message);
        return Err(if code.is_retriable() {
            CommitError::Retriable(e)
        } else {
            CommitError::Fatal(e)
        });
    }
    lock(&shared.state).group.manual_coordinator = Some(node.clone());
    Ok((node, None))
}

/// Forgets the coordinator after a failure talking to it.
fn forget_coordinator(shared: &Shared, machine: Option<u64>, node: &CoordinatorNode) {
    let mut state = lock(&shared.state);
    let g = &mut state.group;
    match machine {
        Some(m) if m == g.machine => {
            if let Some(c) = g.coordinator.as_mut() {
                c.handle_coordinator_failure(node);
            }
        }
        Some(_) => {}
        None => {
            if g.manual_coordinator.as_ref() == Some(node) {
                g.manual_coordinator = None;
            }
        }
    }
    drop(state);
    shared.task_wakeup.notify_one();
}

fn transport_error(e: Error) -> CommitError {
    if e.is_retriable() {
        CommitError::Retriable(e)
    } else {
        CommitError::Fatal(e)
    }
}

/// One OffsetCommit of `offsets` (not retried).
async fn commit_once(
    shared: &Shared,
    offsets: &BTreeMap<assignor::TopicPartition, OffsetAndMetadata>,
) -> Result<(), CommitError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let subscribed = {
        let state = lock(&shared.state);
        let g = &state.group;
        match (&g.mode, &g.coordinator) {
            (Mode::Subscribed, Some(c)) => Some((g.machine, c.offset_commit_request(offsets)?)),
            _ => None,
        }
    };
    let (machine, send) = match subscribed {
        Some((m, send)) => (Some(m), send),
        None => {
            let (node, _) = coordinator_node(shared).await?;
            let group_id = shared.config.group_id.clone().unwrap_or_default();
            let generation = Generation::none();
            let request = build_offset_commit_request(&group_id, &generation, None, offsets);
            (
                None,
                OffsetCommitSend {
                    coordinator: node,
                    generation,
                    request,
                },
            )
        }
    };
    let request = send.request.clone();
    let response = coordinator_request(
        shared,
        &send.coordinator,
        shared.config.request_timeout,
        move |_| request,
    )
    .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            forget_coordinator(shared, machine, &send.coordinator);
            return Err(transport_error(e));
        }
    };
    match machine {
        Some(m) => {
            let mut state = lock(&shared.state);
            let g = &mut state.group;
            match g.coordinator.as_mut().filter(|_| g.machine == m) {
                Some(c) => c.handle_offset_commit(&send, &response),
                None => classify_manual_commit(&response).0,
            }
        }
        None => {
            let (result, forget) = classify_manual_commit(&response);
            if forget {
                forget_coordinator(shared, None, &send.coordinator);
            }
            result
        }
    }
}

/// Commits `offsets`, retrying retriable failures until `deadline`.
async fn commit_until(
    shared: &Shared,
    offsets: &BTreeMap<assignor::TopicPartition, OffsetAndMetadata>,
    deadline: Instant,
) -> Result<(), Error> {
    if offsets.is_empty() {
        return Ok(());
    }
    retry_until(
        shared,
        deadline,
        "OffsetCommit",
        || commit_once(shared, offsets),
        |e| format!("Timeout expired before successfully committing offsets (last error: {e})"),
    )
    .await
}

/// Runs `attempt` (an `api` call to the coordinator) until it succeeds or fails for good,
/// retrying retriable failures `retry.backoff.ms` apart (the I/O task is woken meanwhile, to
/// find the coordinator again) until `deadline`; then [`Error::Timeout`] with
/// `expired(last error)`. [`Error::Closed`] once the consumer is closed.
async fn retry_until<T, F, Fut>(
    shared: &Shared,
    deadline: Instant,
    api: &str,
    mut attempt: F,
    expired: impl FnOnce(&Error) -> String,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CommitError>>,
{
    loop {
        let outcome = tokio::time::timeout_at(deadline.into(), attempt())
            .await
            .unwrap_or_else(|_| Err(CommitError::Retriable(Error::Timeout(api.into()))));
        match outcome {
            Ok(t) => return Ok(t),
            Err(CommitError::Retriable(e)) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::Timeout(expired(&e)));
                }
                tracing::debug!(api, error = %e, "retrying after a retriable failure");
                shared.task_wakeup.notify_one();
                let backoff = now + shared.config.retry_backoff;
                tokio::time::sleep_until(deadline.min(backoff).into()).await;
                if shared.closed.load(Ordering::Acquire) {
                    return Err(Error::Closed);
                }
            }
            Err(e) => return Err(commit_error(e)),
        }
    }
}

type CommittedOffsets = BTreeMap<assignor::TopicPartition, Option<CommittedOffset>>;

/// One OffsetFetch of `partitions` (not retried).
async fn fetch_committed_once(
    shared: &Shared,
    partitions: &[assignor::TopicPartition],
) -> Result<CommittedOffsets, CommitError> {
    let (node, machine) = coordinator_node(shared).await?;
    let group_id = shared.config.group_id.clone().unwrap_or_default();
    let require_stable = shared.fetch_config.read_committed;
    let response = coordinator_request(shared, &node, shared.config.request_timeout, |v| {
        build_offset_fetch_request(&group_id, partitions, require_stable, v)
    })
    .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            forget_coordinator(shared, machine, &node);
            return Err(transport_error(e));
        }
    };
    let parsed = parse_offset_fetch_response(&group_id, &response);
    if let Err(CommitError::Retriable(Error::Kafka {
        code: ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable,
        ..
    })) = &parsed
    {
        forget_coordinator(shared, machine, &node);
    }
    parsed
}

// ---------------------------------------------------------------------------------------------
// The I/O task.
// ---------------------------------------------------------------------------------------------

/// A group request's outcome, for the state machine `machine`.
enum GroupDone {
    Find {
        machine: u64,
        id: RequestId,
        result: Result<FindCoordinatorResponse, Error>,
    },
    Join {
        machine: u64,
        id: RequestId,
        result: Result<JoinGroupResponse, Error>,
    },
    Sync {
        machine: u64,
        id: RequestId,
        result: Result<SyncGroupResponse, Error>,
    },
    Heartbeat {
        machine: u64,
        id: RequestId,
        result: Result<HeartbeatResponse, Error>,
    },
    Leave,
    Commit {
        commit: AsyncCommit,
        result: Result<(), CommitError>,
    },
    Committed {
        partitions: Vec<(TopicPartition, u64)>,
        result: Result<CommittedOffsets, CommitError>,
    },
}

struct FetchDone {
    node: i32,
    prepared: PreparedFetch,
    /// The request sent (`None`: none could be written, `result` says why).
    sent: Option<SentFetch>,
    result: Result<FetchResponse, Error>,
}

type ResetAnswer = Result<Vec<(TopicPartition, Result<ListedOffset, ErrorCode>)>, Error>;

struct ResetDone {
    /// The partitions asked for, with their state epochs.
    partitions: Vec<(TopicPartition, u64)>,
    result: ResetAnswer,
}

/// The consumer's background task: metadata, reset lookups, fetches.
struct IoTask {
    shared: Arc<Shared>,
    fetches: FuturesUnordered<BoxFut<FetchDone>>,
    fetching: HashSet<i32>,
    /// The fetch session with each broker (KIP-227); `fetching` keeps one request in flight
    /// per session.
    sessions: FetchSessions,
    /// Brokers whose last fetch failed, not fetched from again before the instant.
    node_backoff: HashMap<i32, Instant>,
    resets: FuturesUnordered<BoxFut<ResetDone>>,
    connecting: FuturesUnordered<BoxFut<(i32, Result<BrokerConnection, Error>)>>,
    connecting_nodes: HashSet<i32>,
    /// The Metadata request in flight; its `bool` is whether it asked for all topics.
    metadata_fetch: Option<BoxFut<(bool, Result<MetadataResponse, Error>)>>,
    last_metadata_attempt: Option<Instant>,
    last_metadata_success: Option<Instant>,
    metadata_failures: u32,
    last_idle_check: Instant,
    /// Group requests (coordinator protocol, async commits, committed-offset lookups).
    group_requests: FuturesUnordered<BoxFut<GroupDone>>,
    /// An asynchronous commit is in flight (they go one at a time, in order).
    commit_running: bool,
    /// A committed-offset lookup is in flight.
    committed_fetching: bool,
    /// When auto-commit is next due for manually assigned partitions.
    next_manual_auto_commit: Option<Instant>,
}

/// Polls an optional future; pending forever when `None`.
async fn poll_opt<T>(f: &mut Option<BoxFut<T>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(max.max(base))
}

impl IoTask {
    fn new(shared: Arc<Shared>) -> Self {
        IoTask {
            shared,
            fetches: FuturesUnordered::new(),
            fetching: HashSet::new(),
            sessions: FetchSessions::new(),
            node_backoff: HashMap::new(),
            resets: FuturesUnordered::new(),
            connecting: FuturesUnordered::new(),
            connecting_nodes: HashSet::new(),
            metadata_fetch: None,
            last_metadata_attempt: None,
            last_metadata_success: None,
            metadata_failures: 0,
            last_idle_check: Instant::now(),
            group_requests: FuturesUnordered::new(),
            commit_running: false,
            committed_fetching: false,
            next_manual_auto_commit: None,
        }
    }

    async fn run(mut self) {
        tracing::debug!(client_id = %self.shared.config.client_id, "consumer I/O task started");
        while !self.shared.closed.load(Ordering::Acquire) {
            let timeout = self.run_once(Instant::now());
            let sleep = tokio::time::sleep(timeout);
            tokio::pin!(sleep);
            let has_fetches = !self.fetches.is_empty();
            let has_resets = !self.resets.is_empty();
            let has_connecting = !self.connecting.is_empty();
            let has_group = !self.group_requests.is_empty();
            tokio::select! {
                Some(done) = self.group_requests.next(), if has_group => {
                    self.handle_group_done(done);
                }
                Some(done) = self.fetches.next(), if has_fetches => self.handle_fetch(done),
                Some(done) = self.resets.next(), if has_resets => self.handle_reset(done),
                Some((node, res)) = self.connecting.next(), if has_connecting => {
                    self.connecting_nodes.remove(&node);
                    if let Err(e) = res {
                        tracing::debug!(node, error = %e, "connecting to broker failed");
                        self.shared.metadata.request_update();
                    }
                }
                (all_topics, res) = poll_opt(&mut self.metadata_fetch) => {
                    self.metadata_fetch = None;
                    self.handle_metadata(all_topics, res);
                }
                _ = self.shared.task_wakeup.notified() => {}
                _ = &mut sleep => {}
            }
        }
        if let Some(&deadline) = self.shared.close_deadline.get() {
            self.close_fetch_sessions(deadline).await;
        }
        self.shared.connections.close_all();
        self.shared.group_connections.close_all();
        // Asynchronous commits that never ran.
        let left: Vec<AsyncCommit> = {
            let mut state = lock(&self.shared.state);
            state.group.async_pending = 0;
            state.group.async_commits.drain(..).collect()
        };
        for commit in left {
            commit.complete(Err(Error::Closed));
        }
        self.shared.stopped.send_replace(true);
        self.shared.notify_pollers();
        tracing::debug!(client_id = %self.shared.config.client_id, "consumer I/O task stopped");
    }

    /// One pass: metadata, resets, fetches. Returns how long to sleep at most.
    fn run_once(&mut self, now: Instant) -> Duration {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        let mut timeout = cfg.metadata_max_age.min(Duration::from_secs(1));
        if now.saturating_duration_since(self.last_idle_check) >= Duration::from_secs(1) {
            self.last_idle_check = now;
            self.shared.connections.close_idle(now);
            self.shared.group_connections.close_idle(now);
        }
        self.maybe_update_metadata(now, &mut timeout);
        self.drive_group(now, &mut timeout);
        let cluster = self.shared.metadata.cluster();

        // Offset resets.
        let due = {
            let mut state = lock(&self.shared.state);
            let due = state.subs.resets_due(now);
            for (tp, _, _) in &due {
                // Not asked again while the lookup is in flight.
                state.subs.reset_attempted(tp, now + cfg.request_timeout);
            }
            if let Some(t) = state.subs.next_reset_attempt() {
                timeout = timeout.min(
                    t.saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                );
            }
            due
        };
        let mut by_node: HashMap<i32, Vec<(TopicPartition, ResetStrategy, u64)>> = HashMap::new();
        let mut leaderless = Vec::new();
        for (tp, strategy, epoch) in due {
            match cluster
                .topic(&tp.topic)
                .and_then(|t| t.leader(tp.partition))
                .filter(|n| cluster.broker(*n).is_some())
            {
                Some(node) => by_node.entry(node).or_default().push((tp, strategy, epoch)),
                None => leaderless.push(tp),
            }
        }
        if !leaderless.is_empty() {
            self.shared.metadata.request_update();
            let mut state = lock(&self.shared.state);
            for tp in leaderless {
                state.subs.reset_attempted(&tp, now + cfg.retry_backoff);
            }
            timeout = timeout.min(cfg.retry_backoff.max(Duration::from_millis(1)));
        }
        for (node, parts) in by_node {
            let Some(addr) = cluster.broker(node).map(|b| b.address()) else {
                continue;
            };
            let pool = self.shared.connections.clone();
            let read_committed = self.shared.fetch_config.read_committed;
            let request_timeout = cfg.request_timeout;
            let query: Vec<(TopicPartition, i64)> = parts
                .iter()
                .map(|(tp, s, _)| (tp.clone(), s.timestamp()))
                .collect();
            let partitions = parts.into_iter().map(|(tp, _, e)| (tp, e)).collect();
            self.resets.push(Box::pin(async move {
                let result = match pool.get(node, &addr).await {
                    Ok(conn) => {
                        fetcher::list_offsets(&conn, &query, read_committed, request_timeout).await
                    }
                    Err(e) => Err(e),
                };
                ResetDone { partitions, result }
            }));
        }

        // Fetches (none once the consumer is closing: Java's close sends none either).
        if self.shared.close_deadline.get().is_some() {
            return timeout;
        }
        let (plan, draining) = {
            let state = lock(&self.shared.state);
            let buffered = state.buffer.buffered_partitions();
            let plan = prepare_fetches(&state.subs, &cluster, &buffered, |n| {
                self.fetching.contains(&n) || self.node_backoff.get(&n).is_some_and(|t| now < *t)
            });
            // Brokers some of whose partitions still have records for the application.
            let draining: HashSet<i32> = state
                .buffer
                .partitions_with_records()
                .filter(|tp| !state.subs.is_paused(tp))
                .filter_map(|tp| {
                    cluster
                        .topic(&tp.topic)
                        .and_then(|t| t.leader(tp.partition))
                })
                .collect();
            (plan, draining)
        };
        if plan.missing_leader {
            self.shared.metadata.request_update();
        }
        if let Some(t) = self.node_backoff.values().filter(|t| **t > now).min() {
            timeout = timeout.min(*t - now);
        }
        for prepared in plan.fetches {
            let node = prepared.node;
            match self.shared.connections.connected(node) {
                Some(conn) => {
                    let no_wait = draining.contains(&node);
                    self.send_fetch(conn, prepared, cluster.clone(), no_wait)
                }
                None => {
                    if self.connecting_nodes.contains(&node) {
                        continue;
                    }
                    if self.shared.connections.is_backing_off(node, now) {
                        timeout = timeout.min(cfg.reconnect_backoff.max(Duration::from_millis(5)));
                        continue;
                    }
                    let Some(broker) = cluster.broker(node).cloned() else {
                        continue;
                    };
                    let pool = self.shared.connections.clone();
                    self.connecting_nodes.insert(node);
                    self.connecting.push(Box::pin(async move {
                        let r = pool.get(node, &broker.address()).await;
                        (node, r)
                    }));
                }
            }
        }
        timeout
    }

    /// Sends a fetch to `prepared.node`. With `no_wait` (the application still has records
    /// of this broker's partitions to drain) the broker is asked not to wait for data
    /// (`max_wait_ms` 0): one fetch is in flight per broker, so a fetch held for
    /// `fetch.max.wait.ms` because its partitions are caught up would hold back the fetch of
    /// the partitions being drained. The answer is buffered until the next poll, so this
    /// costs at most one extra (empty) round trip per poll.
    fn send_fetch(
        &mut self,
        conn: BrokerConnection,
        prepared: PreparedFetch,
        cluster: Arc<Cluster>,
        no_wait: bool,
    ) {
        let node = prepared.node;
        self.fetching.insert(node);
        let mut config = self.shared.fetch_config.clone();
        if no_wait {
            config.max_wait = Duration::ZERO;
        }
        tracing::trace!(
            node,
            partitions = prepared.partitions.len(),
            no_wait,
            "sending fetch"
        );
        let built = self.sessions.build(
            &prepared,
            &config,
            &cluster,
            conn.version_for(ApiKey::Fetch),
        );
        // Queued on the connection now, so that nothing written later (a session close)
        // overtakes it.
        let sending = built.map(|(request, sent)| {
            let answer = fetcher::send_fetch(&conn, request, &sent);
            (answer, sent)
        });
        self.fetches.push(Box::pin(async move {
            let (sent, result) = match sending {
                Ok((answer, sent)) => (Some(sent), answer.await),
                Err(e) => (None, Err(e)),
            };
            FetchDone {
                node,
                prepared,
                sent,
                result,
            }
        }));
    }

    /// Closes the fetch sessions while the consumer closes (Java's `maybeCloseFetchSessions`,
    /// after the group cleanup): one close request per broker that granted a session and is
    /// still connected, behind any fetch in flight there, then waits for the answers until
    /// [`fetcher::close_sessions_deadline`]. Failures and timeouts are only logged: the
    /// broker evicts a session left open later.
    async fn close_fetch_sessions(&mut self, close_deadline: Instant) {
        let now = Instant::now();
        let Some(deadline) = fetcher::close_sessions_deadline(
            close_deadline,
            now,
            self.shared.config.request_timeout,
        ) else {
            tracing::debug!("no time left to close the fetch sessions");
            return;
        };
        let pool = &self.shared.connections;
        let mut conns: HashMap<i32, BrokerConnection> = HashMap::new();
        let requests = self
            .sessions
            .close_requests(&self.shared.fetch_config, |node| {
                let conn = pool.connected(node)?;
                let version = conn.version_for(ApiKey::Fetch);
                conns.insert(node, conn);
                version
            });
        if requests.is_empty() {
            return;
        }
        let answers: Vec<_> = requests
            .into_iter()
            .filter_map(|(request, sent)| {
                let conn = conns.get(&sent.node)?;
                let answer = fetcher::send_fetch(conn, request, &sent);
                let session_id = sent.data.metadata.session_id;
                Some(async move { (sent.node, session_id, answer.await) })
            })
            .collect();
        let count = answers.len();
        match tokio::time::timeout_at(deadline.into(), futures::future::join_all(answers)).await {
            Ok(results) => {
                for (node, session_id, result) in results {
                    match result.map(|r| ErrorCode::from(r.error_code)) {
                        Ok(ErrorCode::None) => {
                            tracing::debug!(node, session_id, "closed the fetch session")
                        }
                        Ok(code) => tracing::debug!(
                            node,
                            session_id,
                            error = %code,
                            "the broker answered the fetch session close with an error"
                        ),
                        Err(e) => tracing::debug!(
                            node,
                            session_id,
                            error = %e,
                            "could not close the fetch session; the broker evicts it later"
                        ),
                    }
                }
            }
            Err(_) => tracing::debug!(
                sessions = count,
                "the fetch session closes were not all answered before the close timeout; the \
                 broker evicts the sessions left later"
            ),
        }
    }

    fn handle_fetch(&mut self, done: FetchDone) {
        self.fetching.remove(&done.node);
        let result = match (&done.sent, done.result) {
            (Some(sent), Ok(response)) => self.sessions.handle_response(sent, response),
            (Some(sent), Err(e)) => {
                self.sessions.handle_error(sent, &e);
                Err(e)
            }
            (None, Err(e)) => Err(e),
            (None, Ok(_)) => Err(Error::IllegalState(
                "a fetch answer without a request".into(),
            )),
        };
        match result {
            Ok(completed) => {
                self.node_backoff.remove(&done.node);
                // Empty answers are buffered too: collecting them updates the offsets (high
                // watermark...) and then lets the partitions be fetched again.
                lock(&self.shared.state).buffer.extend(completed);
                self.shared.notify_pollers();
            }
            Err(e) => {
                tracing::debug!(node = done.node, error = %e, "fetch failed");
                self.node_backoff
                    .insert(done.node, Instant::now() + self.shared.config.retry_backoff);
                if matches!(e, Error::UnsupportedVersion(_)) {
                    lock(&self.shared.state).error = Some(e);
                    self.shared.notify_pollers();
                } else {
                    self.shared.metadata.request_update();
                }
                tracing::trace!(
                    partitions = done.prepared.partitions.len(),
                    "fetch to retry"
                );
            }
        }
    }

    fn handle_reset(&mut self, done: ResetDone) {
        let cfg = &self.shared.config;
        let retry_at = Instant::now() + cfg.retry_backoff;
        let mut state = lock(&self.shared.state);
        match done.result {
            Ok(answers) => {
                for ((tp, result), (_, epoch)) in answers.into_iter().zip(&done.partitions) {
                    match result {
                        Ok(o) if o.offset >= 0 => {
                            tracing::debug!(%tp, offset = o.offset, "offset reset");
                            state.subs.reset_done(
                                &tp,
                                *epoch,
                                FetchPosition {
                                    offset: o.offset,
                                    leader_epoch: o.leader_epoch,
                                },
                            );
                        }
                        Ok(_) => state.subs.reset_attempted(&tp, retry_at),
                        Err(code) => {
                            tracing::debug!(%tp, error = %code, "offset reset lookup failed");
                            if needs_metadata_refresh(code) {
                                self.shared.metadata.request_update();
                            }
                            state.subs.reset_attempted(&tp, retry_at);
                            if !code.is_retriable() {
                                state.error = Some(Error::kafka_with_message(
                                    code,
                                    Some(format!("offset reset failed for {tp}")),
                                ));
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "offset reset lookup failed");
                self.shared.metadata.request_update();
                for (tp, _) in &done.partitions {
                    state.subs.reset_attempted(tp, retry_at);
                }
                if matches!(e, Error::UnsupportedVersion(_)) {
                    state.error = Some(e);
                }
            }
        }
        drop(state);
        self.shared.notify_pollers();
    }

    /// The group's share of a pass: drives the state machine (only heartbeats while
    /// listener callbacks wait for the application), starts the next asynchronous commit,
    /// looks up committed offsets of new partitions, and auto-commits manual assignments.
    fn drive_group(&mut self, now: Instant, timeout: &mut Duration) {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        if cfg.group_id.is_none() {
            return;
        }
        loop {
            let next = {
                let mut state = lock(&shared.state);
                let g = &mut state.group;
                let machine = g.machine;
                let waiting = !g.callbacks.is_empty();
                if g.awaiting_pattern_match() {
                    break;
                }
                let Some(c) = g.active() else {
                    break;
                };
                let action = if waiting {
                    c.next_heartbeat(now)
                } else {
                    c.next_action(now)
                };
                action.map(|a| (machine, a))
            };
            let Some((machine, action)) = next else {
                break;
            };
            self.dispatch_group_action(machine, action, now);
        }
        {
            let mut state = lock(&shared.state);
            let g = &mut state.group;
            let waiting = !g.callbacks.is_empty();
            let wake = g.active().and_then(|c| {
                if waiting {
                    c.heartbeat_due_at()
                } else {
                    c.poll_timeout()
                }
            });
            if let Some(t) = wake {
                *timeout = (*timeout).min(
                    t.saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                );
            }
        }

        // Manual assignment auto-commit (the state machine does it while subscribed).
        let manual = lock(&shared.state).group.mode == Mode::Manual;
        if manual && cfg.enable_auto_commit {
            let due = *self
                .next_manual_auto_commit
                .get_or_insert(now + cfg.auto_commit_interval);
            if now >= due {
                self.next_manual_auto_commit = Some(now + cfg.auto_commit_interval);
                self.queue_auto_commit();
            }
            if let Some(t) = self.next_manual_auto_commit {
                *timeout = (*timeout).min(t.saturating_duration_since(now));
            }
        } else {
            self.next_manual_auto_commit = None;
        }

        // The next asynchronous commit.
        if !self.commit_running {
            let next = {
                let mut state = lock(&shared.state);
                state.group.async_commits.pop_front()
            };
            if let Some(commit) = next {
                self.commit_running = true;
                let shared = shared.clone();
                self.group_requests.push(Box::pin(async move {
                    let result = commit_once(&shared, &commit.offsets).await;
                    GroupDone::Commit { commit, result }
                }));
            }
        }

        // Committed offsets of newly assigned partitions.
        if !self.committed_fetching {
            let due = {
                let mut state = lock(&shared.state);
                let ready = match state.group.mode {
                    Mode::Manual => true,
                    // While subscribed, once the state machine knows the coordinator.
                    Mode::Subscribed => state
                        .group
                        .coordinator
                        .as_ref()
                        .is_some_and(|c| c.coordinator().is_some()),
                    Mode::None => false,
                };
                let due = if ready {
                    state.subs.committed_due(now)
                } else {
                    Vec::new()
                };
                for (tp, _) in &due {
                    state.subs.reset_attempted(tp, now + cfg.request_timeout);
                }
                due
            };
            if !due.is_empty() {
                self.committed_fetching = true;
                let shared = shared.clone();
                self.group_requests.push(Box::pin(async move {
                    let tps: Vec<assignor::TopicPartition> =
                        due.iter().map(|(tp, _)| to_group_tp(tp)).collect();
                    let result = fetch_committed_once(&shared, &tps).await;
                    GroupDone::Committed {
                        partitions: due,
                        result,
                    }
                }));
            }
        }
    }

    /// Queues a commit of the consumed positions (auto-commit), unless there are none.
    fn queue_auto_commit(&mut self) {
        let mut state = lock(&self.shared.state);
        let offsets = consumed_offsets(&state.subs);
        if offsets.is_empty() {
            return;
        }
        tracing::trace!(partitions = offsets.len(), "auto-commit");
        state.group.async_commits.push_back(AsyncCommit {
            offsets,
            callback: None,
        });
        state.group.async_pending += 1;
    }

    fn dispatch_group_action(&mut self, machine: u64, action: Action, now: Instant) {
        let shared = self.shared.clone();
        match action {
            Action::FindCoordinator(f) => {
                self.group_requests.push(Box::pin(async move {
                    let result = find_coordinator(&shared, &f.group_id).await;
                    GroupDone::Find {
                        machine,
                        id: f.id,
                        result,
                    }
                }));
            }
            Action::JoinGroup(j) => {
                self.group_requests.push(Box::pin(async move {
                    let result =
                        coordinator_request(&shared, &j.coordinator, j.timeout, |_| j.request)
                            .await;
                    GroupDone::Join {
                        machine,
                        id: j.id,
                        result,
                    }
                }));
            }
            Action::SyncGroup(sg) => {
                self.group_requests.push(Box::pin(async move {
                    let result =
                        coordinator_request(&shared, &sg.coordinator, sg.timeout, |_| sg.request)
                            .await;
                    GroupDone::Sync {
                        machine,
                        id: sg.id,
                        result,
                    }
                }));
            }
            Action::Heartbeat(h) => {
                self.group_requests.push(Box::pin(async move {
                    let result =
                        coordinator_request(&shared, &h.coordinator, h.timeout, |_| h.request)
                            .await;
                    GroupDone::Heartbeat {
                        machine,
                        id: h.id,
                        result,
                    }
                }));
            }
            Action::LeaveGroup(l) => {
                self.group_requests.push(Box::pin(async move {
                    let timeout = shared.config.request_timeout;
                    let r: Result<LeaveGroupResponse, Error> =
                        coordinator_request(&shared, &l.coordinator, timeout, |v| l.request(v))
                            .await;
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "LeaveGroup failed");
                    }
                    GroupDone::Leave
                }));
            }
            Action::PartitionsRevoked(ps) => {
                self.queue_callback(Callback::Revoked(from_group_tps(&ps)))
            }
            Action::PartitionsAssigned(ps) => {
                self.queue_callback(Callback::Assigned(from_group_tps(&ps)));
            }
            Action::PartitionsLost(ps) => self.queue_callback(Callback::Lost(from_group_tps(&ps))),
            Action::UpdateMetadata(topics) => {
                tracing::debug!(?topics, "the group leader needs metadata");
                self.shared.metadata.request_update();
                self.last_metadata_attempt = None;
                let mut t = Duration::ZERO;
                self.maybe_update_metadata(now, &mut t);
            }
            Action::AutoCommitDue => self.queue_auto_commit(),
            Action::Fatal(e) => {
                tracing::warn!(error = %e, "consumer group failure");
                lock(&self.shared.state).group.fatal = Some(e);
                self.shared.notify_pollers();
            }
        }
    }

    fn queue_callback(&mut self, cb: Callback) {
        lock(&self.shared.state).group.callbacks.push_back(cb);
        self.shared.notify_pollers();
    }

    fn handle_group_done(&mut self, done: GroupDone) {
        let now = Instant::now();
        let shared = self.shared.clone();
        let with_machine = |machine: u64, f: &mut dyn FnMut(&mut ConsumerCoordinator)| {
            let mut state = lock(&shared.state);
            let g = &mut state.group;
            if g.machine == machine && !g.leaving {
                if let Some(c) = g.coordinator.as_mut() {
                    f(c);
                }
            }
        };
        match done {
            GroupDone::Find {
                machine,
                id,
                result,
            } => with_machine(machine, &mut |c| match &result {
                Ok(r) => c.handle_find_coordinator(id, now, r),
                Err(e) => {
                    tracing::debug!(error = %e, "FindCoordinator failed");
                    c.handle_request_failed(id, now, e);
                }
            }),
            GroupDone::Join {
                machine,
                id,
                result,
            } => with_machine(machine, &mut |c| match &result {
                Ok(r) => c.handle_join_group(id, now, r),
                Err(e) => {
                    tracing::debug!(error = %e, "JoinGroup failed");
                    c.handle_request_failed(id, now, e);
                }
            }),
            GroupDone::Sync {
                machine,
                id,
                result,
            } => with_machine(machine, &mut |c| match &result {
                Ok(r) => c.handle_sync_group(id, now, r),
                Err(e) => {
                    tracing::debug!(error = %e, "SyncGroup failed");
                    c.handle_request_failed(id, now, e);
                }
            }),
            GroupDone::Heartbeat {
                machine,
                id,
                result,
            } => with_machine(machine, &mut |c| match &result {
                Ok(r) => c.handle_heartbeat(id, now, r),
                Err(e) => {
                    tracing::debug!(error = %e, "Heartbeat failed");
                    c.handle_request_failed(id, now, e);
                }
            }),
            GroupDone::Leave => {}
            GroupDone::Commit { commit, result } => {
                self.commit_running = false;
                commit.complete(result.map_err(commit_error));
                let mut state = lock(&self.shared.state);
                state.group.async_pending = state.group.async_pending.saturating_sub(1);
                drop(state);
                self.shared.notify_pollers();
            }
            GroupDone::Committed { partitions, result } => {
                self.committed_fetching = false;
                self.handle_committed(partitions, result, now);
            }
        }
    }

    fn handle_committed(
        &mut self,
        partitions: Vec<(TopicPartition, u64)>,
        result: Result<CommittedOffsets, CommitError>,
        now: Instant,
    ) {
        let retry_at = now + self.shared.config.retry_backoff;
        let mut state = lock(&self.shared.state);
        match result {
            Ok(found) => {
                for (tp, epoch) in partitions {
                    let committed = found.get(&to_group_tp(&tp)).cloned().flatten();
                    let position = committed.map(|c| FetchPosition {
                        offset: c.offset,
                        leader_epoch: c.leader_epoch,
                    });
                    tracing::debug!(%tp, ?position, "committed offset");
                    state.subs.committed_fetched(&tp, epoch, position);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "committed offset lookup failed");
                for (tp, _) in &partitions {
                    state.subs.reset_attempted(tp, retry_at);
                }
                if let CommitError::Fatal(e) = e {
                    state.error = Some(e);
                }
            }
        }
        drop(state);
        self.shared.notify_pollers();
    }

    fn maybe_update_metadata(&mut self, now: Instant, timeout: &mut Duration) {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        if self.metadata_fetch.is_some() {
            return;
        }
        let (mut topics, all_topics) = {
            let mut state = lock(&self.shared.state);
            // A pattern subscription is matched against every topic (Java's
            // `needMetadataForAllTopics`).
            let g = &state.group;
            let all_topics = g.mode == Mode::Subscribed && !g.leaving && g.pattern.is_some();
            let mut topics = state.subs.topics();
            if let Some(c) = state.group.active() {
                for t in c.metadata_topics() {
                    if !topics.contains(&t) {
                        topics.push(t);
                    }
                }
            }
            (topics, all_topics)
        };
        {
            let mut extra = lock(&self.shared.metadata.extra_topics);
            extra.retain(|_, used| now.saturating_duration_since(*used) < cfg.metadata_max_age);
            for t in extra.keys() {
                if !topics.contains(t) {
                    topics.push(t.clone());
                }
            }
        }
        if topics.is_empty() && !all_topics {
            return;
        }
        let stale = self
            .last_metadata_success
            .is_none_or(|t| now.saturating_duration_since(t) >= cfg.metadata_max_age);
        let wanted = self
            .shared
            .metadata
            .update_requested
            .load(Ordering::Acquire)
            || stale;
        if !wanted {
            if let Some(t) = self.last_metadata_success {
                *timeout = (*timeout).min(cfg.metadata_max_age.saturating_sub(now - t));
            }
            return;
        }
        if let Some(last) = self.last_metadata_attempt {
            let gap = if self.metadata_failures > 0 {
                backoff(
                    cfg.retry_backoff,
                    cfg.retry_backoff_max,
                    self.metadata_failures,
                )
            } else {
                cfg.retry_backoff
            };
            if now < last + gap {
                *timeout = (*timeout).min(last + gap - now);
                return;
            }
        }
        self.last_metadata_attempt = Some(now);
        self.shared
            .metadata
            .update_requested
            .store(false, Ordering::Release);
        let pool = self.shared.connections.clone();
        let allow_auto_create = cfg.allow_auto_create_topics;
        self.metadata_fetch = Some(Box::pin(async move {
            let result = async {
                let conn = pool.any().await?;
                let version = conn
                    .version_for(ApiKey::Metadata)
                    .ok_or_else(|| Error::UnsupportedVersion("Metadata".into()))?;
                let request = MetadataRequest {
                    // None: every topic.
                    topics: (!all_topics).then(|| {
                        topics
                            .into_iter()
                            .map(|name| MetadataRequestTopic {
                                name: Some(name),
                                ..Default::default()
                            })
                            .collect()
                    }),
                    allow_auto_topic_creation: allow_auto_create && !all_topics,
                    ..Default::default()
                };
                conn.send_with_version(request, version).await
            }
            .await;
            (all_topics, result)
        }));
    }

    /// Matches the subscription pattern against an all-topics Metadata response (Java's
    /// `ConsumerCoordinator.updatePatternSubscription`): new matches (or topics gone) change
    /// the subscription, which rebalances; the first match lets the machine join.
    fn match_pattern(&self, g: &mut GroupState, resp: &MetadataResponse) {
        if g.mode != Mode::Subscribed || g.leaving {
            return;
        }
        let (Some(pattern), Some(c)) = (&g.pattern, g.coordinator.as_mut()) else {
            return;
        };
        let topics = resp.topics.iter().filter_map(|t| {
            let ok = ErrorCode::from_code(t.error_code) == ErrorCode::None;
            let name = t.name.as_deref().filter(|_| ok)?;
            Some((name, t.is_internal))
        });
        let matched = pattern.matching(topics, self.shared.config.exclude_internal_topics);
        if !g.pattern_evaluated || c.subscription().into_iter().ne(matched.iter().cloned()) {
            tracing::debug!(pattern = pattern.as_str(), topics = ?matched, "pattern matched");
        }
        c.subscribe_pattern_matches(matched);
        g.pattern_evaluated = true;
        self.shared.task_wakeup.notify_one();
    }

    fn handle_metadata(&mut self, all_topics: bool, res: Result<MetadataResponse, Error>) {
        match res {
            Ok(resp) => {
                self.metadata_failures = 0;
                self.last_metadata_success = Some(Instant::now());
                let previous = self.shared.metadata.cluster();
                let cluster = Cluster::from_response(&previous, &resp);
                let incomplete = cluster
                    .topics
                    .values()
                    .any(|t| t.available_partitions.len() < t.partitions.len())
                    || cluster.topic_errors.values().any(|c| c.is_retriable());
                {
                    let mut state = lock(&self.shared.state);
                    if all_topics {
                        self.match_pattern(&mut state.group, &resp);
                    }
                    if let Some(c) = state.group.active() {
                        let counts: BTreeMap<String, i32> = c
                            .metadata_topics()
                            .into_iter()
                            .filter_map(|t| {
                                let n = cluster.topic(&t)?.partition_count();
                                Some((t, to_i32(n)))
                            })
                            .collect();
                        c.handle_metadata(&counts);
                    }
                }
                self.shared.metadata.cluster.send_replace(Arc::new(cluster));
                if incomplete {
                    self.shared.metadata.request_update();
                }
            }
            Err(e) => {
                self.metadata_failures += 1;
                tracing::debug!(error = %e, "metadata request failed");
                self.shared.metadata.request_update();
            }
        }
    }
}
