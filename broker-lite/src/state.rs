//! The broker's shared state: topics, their partitions (each a [`PartitionLog`]) and the
//! metadata that must survive a restart.
//!
//! On disk, next to the partition directories (`<topic>-<partition>`, Kafka's layout):
//! - `meta.properties`: `cluster.id`, `node.id` and `version`, as Kafka writes it;
//! - `broker-lite-topics/<topic>.properties`: the topic id, partition count and config
//!   overrides (the part Kafka keeps in its metadata log). The directory name cannot clash with
//!   a partition directory, which always ends in `-<number>`;
//! - `<topic>-<partition>/partition.metadata`: the topic id, in Kafka's format;
//! - `broker-lite-producer-ids`: the end of the last reserved block of producer ids
//!   (InitProducerId, KIP-98), so that ids are never reused across restarts;
//! - `cleaner-offset-checkpoint`: how far the log cleaner has compacted each compacted
//!   partition, in Kafka's format (written after each pass that moved a checkpoint).
//!
//! Committed offsets and group metadata live in the `__consumer_offsets` topic, replayed by
//! the group coordinator ([`crate::group`]) when the state is opened; transaction state lives
//! in `__transaction_state`, replayed next by the transaction coordinator ([`crate::txn`]),
//! which then completes the transactions that were mid-commit.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_wire::{ErrorCode, Uuid};
use thiserror::Error;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::BrokerConfig;
use crate::faults::FaultInjector;
use crate::group::GroupCoordinator;
use crate::producer_ids::{ProducerIdAllocator, ProducerIdError};
use crate::storage::{
    read_cleaner_checkpoints, write_cleaner_checkpoints, LogConfig, PartitionLog, StorageError,
};
use crate::topic_config::{effective_topic_config_map, validate_topic_configs};
use crate::txn::TransactionCoordinator;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A random UUID (v4 layout) from the standard library's randomly keyed hasher.
pub fn random_uuid() -> Uuid {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_i64(now_ms());
        h.finish()
    };
    let (mut hi, mut lo) = (word(), word());
    hi = (hi & !0xf000) | 0x4000; // version 4
    lo = (lo & !(0xc000u64 << 48)) | (0x8000u64 << 48); // IETF variant
    let id = Uuid::from_u64_pair(hi, lo);
    // Kafka reserves the zero UUID and the "metadata topic" UUID (0, 1).
    if id == Uuid::ZERO {
        random_uuid()
    } else {
        id
    }
}

/// Errors from topic administration, each mapping to a Kafka error code.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The topic already exists.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// The topic does not exist.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The name is not a legal topic name, or collides with an existing one.
    #[error("{reason}")]
    InvalidTopic {
        /// The name.
        name: String,
        /// Kafka's message (`InvalidTopicException`), which names the topic when Kafka's does.
        reason: String,
    },
    /// A partition count is invalid.
    #[error("{0}")]
    InvalidPartitions(String),
    /// A replication factor is invalid.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// A config is invalid.
    #[error("{0}")]
    InvalidConfig(String),
    /// Deleting topics is disabled.
    #[error("topic deletion is disabled (delete.topic.enable=false)")]
    DeletionDisabled,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Metadata files could not be written.
    #[error("metadata I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl AdminError {
    /// The Kafka error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            AdminError::TopicExists(_) => ErrorCode::TopicAlreadyExists,
            AdminError::UnknownTopic(_) => ErrorCode::UnknownTopicOrPartition,
            AdminError::InvalidTopic { .. } => ErrorCode::InvalidTopicException,
            AdminError::InvalidPartitions(_) => ErrorCode::InvalidPartitions,
            AdminError::InvalidReplicationFactor(_) => ErrorCode::InvalidReplicationFactor,
            AdminError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            AdminError::DeletionDisabled => ErrorCode::TopicDeletionDisabled,
            AdminError::Storage(_) | AdminError::Io(_) => ErrorCode::KafkaStorageError,
        }
    }
}

/// Kafka's `Topic.MAX_NAME_LENGTH`.
const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Kafka's topic name rules (`org.apache.kafka.common.internals.Topic.validate`), with the
/// messages of the `InvalidTopicException` it throws. The length is counted in UTF-16 units,
/// as Java's `String.length`.
///
/// # Errors
/// [`AdminError::InvalidTopic`] with Kafka's message.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let bad = |reason: String| AdminError::InvalidTopic {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("Topic name is illegal, it can't be empty".into()));
    }
    if name == "." || name == ".." {
        return Err(bad("Topic name cannot be \".\" or \"..\"".into()));
    }
    if name.encode_utf16().count() > MAX_TOPIC_NAME_LENGTH {
        return Err(bad(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, \
             topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// One partition of a topic, led by this broker.
#[derive(Debug)]
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub index: i32,
    log: Mutex<PartitionLog>,
}

impl Partition {
    /// Locks the partition's log. A poisoned lock (a panic while holding it) is recovered:
    /// the log's own invariants are maintained by the storage layer on every call.
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls `f` with every record from the log start offset to the high watermark, in
    /// order, and the batch holding it (control batches included): how the coordinators
    /// replay their internal topics on startup. A read error ends the replay (with a
    /// warning); undecodable batches and records are skipped. Holds the log's lock
    /// throughout.
    pub(crate) fn replay_records(
        &self,
        mut f: impl FnMut(&kafka_wire::records::RecordBatch, kafka_wire::records::Record),
    ) {
        let log = self.log();
        let end = log.high_watermark();
        let mut position = log.log_start_offset();
        while position < end {
            let read = match log.read(position, 1 << 20, end) {
                Ok(r) => r,
                Err(e) => {
                    warn!(topic = %self.topic, partition = self.index, error = %e,
                        "cannot replay the partition");
                    return;
                }
            };
            if read.records.is_empty() || read.next_offset <= position {
                return;
            }
            for batch in kafka_wire::records::RecordBatches::new(read.records) {
                let Ok(batch) = batch else { break };
                let Ok(iter) = batch.records(64 << 20) else {
                    continue;
                };
                for record in iter.flatten() {
                    if record.offset >= position {
                        f(&batch, record);
                    }
                }
            }
            position = read.next_offset;
        }
    }
}

/// A topic: id, partitions and config overrides.
#[derive(Debug)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Partitions, by index.
    pub partitions: RwLock<Vec<Arc<Partition>>>,
    /// Config overrides set on the topic.
    pub overrides: RwLock<BTreeMap<String, String>>,
}

impl Topic {
    /// The partition with `index`, if it exists.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let parts = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        usize::try_from(index)
            .ok()
            .and_then(|i| parts.get(i).cloned())
    }

    /// The number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len() as i32
    }

    /// All partitions.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The topic's config overrides.
    pub fn overrides(&self) -> BTreeMap<String, String> {
        self.overrides
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[derive(Default)]
struct Topics {
    by_name: BTreeMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

/// Everything the request handlers share.
pub struct BrokerState {
    /// The configuration the broker started with.
    pub config: BrokerConfig,
    /// Cluster id (persisted in `meta.properties`).
    pub cluster_id: String,
    /// Advertised host.
    pub advertised_host: String,
    /// Advertised port.
    pub advertised_port: i32,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Woken whenever records are appended, so that long-polling fetches re-check.
    pub data_arrived: Notify,
    /// Set when the broker shuts down: long-polling fetches answer at once.
    pub shutting_down: std::sync::atomic::AtomicBool,
    topics: RwLock<Topics>,
    /// Serializes topic creation and deletion.
    admin_lock: Mutex<()>,
    /// Producer ids for InitProducerId.
    producer_ids: Mutex<ProducerIdAllocator>,
    /// Faults injected by tests.
    faults: FaultInjector,
    /// The classic group coordinator.
    groups: GroupCoordinator,
    /// The transaction coordinator.
    txns: TransactionCoordinator,
    /// The cleaner checkpoints as last read from or written to `cleaner-offset-checkpoint`.
    cleaner_checkpoints: Mutex<BTreeMap<(String, i32), i64>>,
    /// Incremental fetch sessions (KIP-227). Locked briefly, never across an await or I/O.
    pub(crate) fetch_sessions: Mutex<crate::fetch_session::FetchSessionCache>,
    /// `fetch.max.bytes` (KIP-541): the most record bytes one Fetch response carries.
    pub(crate) fetch_max_bytes: usize,
}

impl std::fmt::Debug for BrokerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerState")
            .field("node_id", &self.config.node_id)
            .field("cluster_id", &self.cluster_id)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

fn topics_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("broker-lite-topics")
}

fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Writes `content` to `path` atomically (temp file, fsync, rename).
fn write_atomically(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

impl BrokerState {
    /// Opens (or initializes) the data directory: reads `meta.properties`, then every topic
    /// and partition, recovering each log.
    ///
    /// # Errors
    /// I/O and storage errors, or a data directory that belongs to another node id.
    pub fn open(
        config: BrokerConfig,
        data_dir: PathBuf,
        advertised_host: String,
        advertised_port: i32,
    ) -> Result<Arc<BrokerState>, AdminError> {
        std::fs::create_dir_all(&data_dir)?;
        std::fs::create_dir_all(topics_dir(&data_dir))?;
        let meta_path = data_dir.join("meta.properties");
        let cluster_id = match std::fs::read_to_string(&meta_path) {
            Ok(text) => {
                let props = parse_properties(&text);
                if let Some(node) = props.get("node.id") {
                    if node != &config.node_id.to_string() {
                        return Err(AdminError::InvalidConfig(format!(
                            "data directory {} belongs to node.id {node}, not {}",
                            data_dir.display(),
                            config.node_id
                        )));
                    }
                }
                props
                    .get("cluster.id")
                    .cloned()
                    .unwrap_or_else(|| random_uuid().to_string())
            }
            Err(_) => {
                let id = random_uuid().to_string();
                write_atomically(
                    &meta_path,
                    &format!(
                        "#\n#broker-lite\nversion=1\ncluster.id={id}\nnode.id={}\ndirectory.id={}\n",
                        config.node_id,
                        random_uuid()
                    ),
                )?;
                id
            }
        };
        let producer_ids = ProducerIdAllocator::open(&data_dir).map_err(|e| match e {
            ProducerIdError::Io { source, .. } => AdminError::Io(source),
            other => AdminError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                other.to_string(),
            )),
        })?;
        let groups = GroupCoordinator::new(&config);
        let txns = TransactionCoordinator::new(&config, now_ms());
        let cleaner_checkpoints = read_cleaner_checkpoints(&data_dir)?;
        let config_fetch_session_slots = config
            .get_i64("max.incremental.fetch.session.cache.slots")
            .max(0) as usize;
        let fetch_max_bytes = config.get_i64("fetch.max.bytes").max(0) as usize;
        let state = Arc::new(BrokerState {
            config,
            cluster_id,
            advertised_host,
            advertised_port,
            data_dir,
            data_arrived: Notify::new(),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            topics: RwLock::new(Topics::default()),
            admin_lock: Mutex::new(()),
            producer_ids: Mutex::new(producer_ids),
            faults: FaultInjector::new(),
            groups,
            txns,
            cleaner_checkpoints: Mutex::new(cleaner_checkpoints),
            fetch_sessions: Mutex::new(crate::fetch_session::FetchSessionCache::new(
                config_fetch_session_slots,
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            )),
            fetch_max_bytes,
        });
        state.load_topics()?;
        state.groups.load(&state, now_ms());
        state.txns.load(&state, now_ms());
        Ok(state)
    }

    fn load_topics(&self) -> Result<(), AdminError> {
        let now = now_ms();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(topics_dir(&self.data_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "properties"))
            .collect();
        entries.sort();
        for path in entries {
            let Some(name) = path.file_stem().map(|s| s.to_string_lossy().to_string()) else {
                continue;
            };
            let props = parse_properties(&std::fs::read_to_string(&path)?);
            let Some(id) = props.get("topic.id").and_then(|s| s.parse::<Uuid>().ok()) else {
                warn!(file = %path.display(), "topic metadata without a valid topic.id; skipped");
                continue;
            };
            let count: i32 = props
                .get("partitions")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let overrides: BTreeMap<String, String> = props
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("config.")
                        .map(|k| (k.to_string(), v.clone()))
                })
                .collect();
            let topic = Arc::new(Topic {
                name: name.clone(),
                id,
                partitions: RwLock::new(Vec::new()),
                overrides: RwLock::new(overrides),
            });
            self.open_partitions(&topic, 0..count, now)?;
            info!(topic = %name, partitions = count, "loaded topic");
            let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
            topics.by_id.insert(id, topic.clone());
            topics.by_name.insert(name, topic);
        }
        Ok(())
    }

    /// The storage config of a topic with the new set of `overrides`, after Kafka's checks of
    /// their names and values (`LogConfig.validate`): how CreateTopics and the alter APIs
    /// validate.
    ///
    /// # Errors
    /// [`AdminError::InvalidConfig`] naming the first bad config.
    pub fn checked_log_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, AdminError> {
        validate_topic_configs(overrides).map_err(|e| AdminError::InvalidConfig(e.to_string()))?;
        self.log_config(overrides)
    }

    /// The storage config of a topic with `overrides`, given the broker's defaults.
    pub fn log_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, AdminError> {
        let map = effective_topic_config_map(&self.config, overrides);
        LogConfig::from_props(&map).map_err(|e| AdminError::InvalidConfig(e.to_string()))
    }

    fn open_partition(
        &self,
        topic: &Topic,
        index: i32,
        now: i64,
    ) -> Result<Arc<Partition>, AdminError> {
        let dir = self.data_dir.join(format!("{}-{}", topic.name, index));
        std::fs::create_dir_all(&dir)?;
        let meta = dir.join("partition.metadata");
        if !meta.exists() {
            write_atomically(&meta, &format!("version: 0\ntopic_id: {}\n", topic.id))?;
        }
        let config = self.log_config(&topic.overrides())?;
        let mut log = PartitionLog::open(&dir, config, now)?;
        let checkpoint = self
            .cleaner_checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(topic.name.clone(), index))
            .copied();
        log.set_cleaner_checkpoint(checkpoint);
        // As Kafka does when it loads producer state: expired producers are not kept.
        log.remove_expired_producers(now, self.producer_id_expiration_ms());
        Ok(Arc::new(Partition {
            topic: topic.name.clone(),
            index,
            log: Mutex::new(log),
        }))
    }

    /// Opens partitions `indexes` of `topic` (recovering their logs) and adds them to it.
    fn open_partitions(
        &self,
        topic: &Topic,
        indexes: std::ops::Range<i32>,
        now: i64,
    ) -> Result<(), AdminError> {
        for index in indexes {
            let p = self.open_partition(topic, index, now)?;
            topic
                .partitions
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(p);
        }
        Ok(())
    }

    fn persist_topic(&self, topic: &Topic) -> Result<(), AdminError> {
        let mut text = format!(
            "# broker-lite topic metadata\ntopic.id={}\npartitions={}\n",
            topic.id,
            topic.partition_count()
        );
        for (k, v) in topic.overrides() {
            text.push_str(&format!("config.{k}={v}\n"));
        }
        write_atomically(
            &topics_dir(&self.data_dir).join(format!("{}.properties", topic.name)),
            &text,
        )?;
        Ok(())
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .get(name)
            .cloned()
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(id)
            .cloned()
    }

    /// Every topic, in name order.
    pub fn all_topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .values()
            .cloned()
            .collect()
    }

    /// Checks a topic creation without performing it (CreateTopics `validate_only`).
    ///
    /// # Errors
    /// The [`AdminError`] that creation would fail with.
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        validate_topic_name(name)?;
        if self.topic(name).is_some() {
            return Err(AdminError::TopicExists(name.to_string()));
        }
        // Kafka: '.' and '_' map to the same metric name, so names differing only there collide.
        let unified = |n: &str| n.replace('.', "_");
        if let Some(other) = self
            .all_topics()
            .iter()
            .find(|t| unified(&t.name) == unified(name))
        {
            return Err(AdminError::InvalidTopic {
                name: name.to_string(),
                reason: format!(
                    "Topic '{name}' collides with existing topic: {}",
                    other.name
                ),
            });
        }
        if partitions < 1 {
            return Err(AdminError::InvalidPartitions(format!(
                "Number of partitions must be larger than 0 (got {partitions})"
            )));
        }
        if replication_factor < 1 {
            return Err(AdminError::InvalidReplicationFactor(format!(
                "Replication factor must be larger than 0 (got {replication_factor})"
            )));
        }
        if replication_factor > 1 {
            return Err(AdminError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only 1 broker(s) are registered."
            )));
        }
        self.checked_log_config(configs)?;
        Ok(())
    }

    /// Creates a topic with `partitions` partitions and config overrides.
    ///
    /// # Errors
    /// See [`BrokerState::validate_new_topic`], plus storage errors.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, AdminError> {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.validate_new_topic(name, partitions, replication_factor, &configs)?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: random_uuid(),
            partitions: RwLock::new(Vec::new()),
            overrides: RwLock::new(configs),
        });
        self.open_partitions(&topic, 0..partitions, now_ms())?;
        self.persist_topic(&topic)?;
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        topics.by_id.insert(topic.id, topic.clone());
        topics.by_name.insert(name.to_string(), topic.clone());
        info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its data.
    ///
    /// # Errors
    /// [`AdminError::UnknownTopic`], [`AdminError::DeletionDisabled`] or I/O errors.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, AdminError> {
        if !self.config.get_bool("delete.topic.enable") {
            return Err(AdminError::DeletionDisabled);
        }
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let topic = {
            let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
            let topic = topics
                .by_name
                .remove(name)
                .ok_or_else(|| AdminError::UnknownTopic(name.to_string()))?;
            topics.by_id.remove(&topic.id);
            topic
        };
        std::fs::remove_file(topics_dir(&self.data_dir).join(format!("{name}.properties")))?;
        for p in topic.all_partitions() {
            let dir = self.data_dir.join(format!("{}-{}", name, p.index));
            // Kafka renames to `<topic>-<p>.<id>-delete` and removes it later; we remove at
            // once, after closing the files (readers holding the Arc see a closed log).
            if let Err(e) = p.log().close() {
                warn!(topic = name, partition = p.index, error = %e, "closing a deleted partition");
            }
            // A cleaning pass reads and writes the directory without the log's lock: stop it
            // (it removes its `.cleaned` files) before the directory goes.
            let log_dir = p.log().dir().to_path_buf();
            crate::storage::abort_cleaning(&log_dir);
            let doomed = self.data_dir.join(format!(
                "{}-{}.{}-delete",
                name,
                p.index,
                topic.id.to_string().replace('-', "")
            ));
            std::fs::rename(&dir, &doomed)?;
            std::fs::remove_dir_all(&doomed)?;
        }
        self.forget_cleaner_checkpoints(name);
        info!(topic = name, "deleted topic");
        self.data_arrived.notify_waiters();
        Ok(topic.id)
    }

    /// Grows a topic to `new_count` partitions (CreatePartitions).
    ///
    /// # Errors
    /// [`AdminError::UnknownTopic`], or [`AdminError::InvalidPartitions`] when the count does
    /// not grow.
    pub fn create_partitions(
        &self,
        name: &str,
        new_count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self
            .topic(name)
            .ok_or_else(|| AdminError::UnknownTopic(name.to_string()))?;
        let current = topic.partition_count();
        if new_count < current {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {new_count}."
            )));
        }
        if new_count == current {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        if validate_only {
            return Ok(());
        }
        self.open_partitions(&topic, current..new_count, now_ms())?;
        self.persist_topic(&topic)?;
        info!(
            topic = name,
            from = current,
            to = new_count,
            "added partitions"
        );
        Ok(())
    }

    /// Replaces a topic's config overrides (IncrementalAlterConfigs applies its operations
    /// first), re-opening nothing: the storage layer picks the new config up.
    ///
    /// # Errors
    /// [`AdminError::InvalidConfig`] or I/O errors.
    pub fn set_topic_overrides(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let _guard = self.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self
            .topic(name)
            .ok_or_else(|| AdminError::UnknownTopic(name.to_string()))?;
        let config = self.checked_log_config(&overrides)?;
        *topic.overrides.write().unwrap_or_else(|p| p.into_inner()) = overrides;
        for p in topic.all_partitions() {
            p.log().set_config(config.clone());
        }
        self.persist_topic(&topic)?;
        Ok(())
    }

    /// The classic group coordinator (see [`crate::group`]).
    pub fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    /// The transaction coordinator (see [`crate::txn`]).
    pub fn txns(&self) -> &TransactionCoordinator {
        &self.txns
    }

    /// The faults injected into this broker (see [`crate::faults`]).
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// A producer id never handed out before (InitProducerId), reserving a new block of ids
    /// on disk when needed. Blocking (it may write and fsync a file).
    pub(crate) fn allocate_producer_id(&self) -> Result<i64, ProducerIdError> {
        self.producer_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allocate()
    }

    /// `producer.id.expiration.ms`.
    fn producer_id_expiration_ms(&self) -> i64 {
        self.config.get_i64("producer.id.expiration.ms")
    }

    /// Forgets, in every partition, the idempotent producers whose last batch is older than
    /// `producer.id.expiration.ms` (Kafka's periodic producer expiration check).
    pub fn remove_expired_producers(&self, now: i64) {
        let expiration_ms = self.producer_id_expiration_ms();
        for topic in self.all_topics() {
            for p in topic.all_partitions() {
                p.log().remove_expired_producers(now, expiration_ms);
            }
        }
    }

    /// Applies retention to every partition, then (with `log.cleaner.enable`) compacts the
    /// compacted partitions whose cleaning is due, as Kafka's log cleaner would, and saves
    /// the cleaner checkpoints.
    pub fn apply_retention(&self, now: i64) {
        let clean = self.config.get_bool("log.cleaner.enable");
        let cleaner = self.config.cleaner_config();
        // `log.cleaner.io.max.bytes.per.second`: one throttle for the round's passes.
        let throttle = cleaner.io_throttler(std::time::Instant::now());
        for topic in self.all_topics() {
            for p in topic.all_partitions() {
                if let Err(e) = p.log().apply_retention(now) {
                    warn!(topic = %topic.name, partition = p.index, error = %e, "retention failed");
                }
                // The partition's lock is held only to snapshot the pass and to swap in.
                if clean {
                    if let Err(e) = crate::storage::compact_unlocked(
                        || p.log(),
                        now,
                        false,
                        &cleaner,
                        throttle.as_ref(),
                    ) {
                        warn!(topic = %topic.name, partition = p.index, error = %e, "compaction failed");
                    }
                }
            }
        }
        if clean {
            self.save_cleaner_checkpoints();
        }
    }

    /// Compacts every compacted partition now, whatever its dirty ratio (a test hook: the
    /// retention task cleans only when due). Returns how many partitions had segments
    /// rewritten. Blocking.
    pub fn compact_now(&self, now: i64) -> usize {
        let mut compacted = 0;
        let cleaner = self.config.cleaner_config();
        let throttle = cleaner.io_throttler(std::time::Instant::now());
        for topic in self.all_topics() {
            for p in topic.all_partitions() {
                let compacted_now = crate::storage::compact_unlocked(
                    || p.log(),
                    now,
                    true,
                    &cleaner,
                    throttle.as_ref(),
                );
                match compacted_now {
                    Ok(Some(outcome)) if outcome.segments_written > 0 => compacted += 1,
                    Ok(_) => {}
                    Err(e) => {
                        warn!(topic = %topic.name, partition = p.index, error = %e, "compaction failed");
                    }
                }
            }
        }
        self.save_cleaner_checkpoints();
        compacted
    }

    /// Drops a deleted topic's cleaner checkpoints (and saves the file), so that a topic
    /// created later with the same name starts uncleaned.
    fn forget_cleaner_checkpoints(&self, topic: &str) {
        let mut saved = self
            .cleaner_checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let before = saved.len();
        saved.retain(|(t, _), _| t != topic);
        if saved.len() != before {
            if let Err(e) = write_cleaner_checkpoints(&self.data_dir, &saved) {
                warn!(error = %e, "cannot write the cleaner offset checkpoint");
            }
        }
    }

    /// Writes `cleaner-offset-checkpoint` if a partition's checkpoint changed (entries of
    /// deleted partitions are dropped).
    fn save_cleaner_checkpoints(&self) {
        let mut current = BTreeMap::new();
        for topic in self.all_topics() {
            for p in topic.all_partitions() {
                if let Some(offset) = p.log().cleaner_checkpoint() {
                    current.insert((topic.name.clone(), p.index), offset);
                }
            }
        }
        let mut saved = self
            .cleaner_checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *saved == current {
            return;
        }
        match write_cleaner_checkpoints(&self.data_dir, &current) {
            Ok(()) => *saved = current,
            Err(e) => warn!(error = %e, "cannot write the cleaner offset checkpoint"),
        }
    }

    /// Flushes and closes every log (clean shutdown).
    pub fn close_all(&self) {
        for topic in self.all_topics() {
            for p in topic.all_partitions() {
                let dir = {
                    let mut log = p.log();
                    if let Err(e) = log.close() {
                        warn!(topic = %topic.name, partition = p.index, error = %e, "close failed");
                    }
                    log.dir().to_path_buf()
                };
                // A cleaning pass (maybe sleeping in its I/O throttle) stops at its next
                // batch instead of holding up shutdown.
                crate::storage::abort_cleaning(&dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name("ü").is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    /// The messages are Kafka's `InvalidTopicException`s (DescribeProducers and CreateTopics
    /// answer them).
    #[test]
    fn topic_name_messages_are_kafkas() {
        let message = |name: &str| validate_topic_name(name).unwrap_err().to_string();
        assert_eq!(message(""), "Topic name is illegal, it can't be empty");
        assert_eq!(message(".."), "Topic name cannot be \".\" or \"..\"");
        let long = "x".repeat(250);
        assert_eq!(
            message(&long),
            format!(
                "Topic name is illegal, it can't be longer than 249 characters, topic name: {long}"
            )
        );
        assert_eq!(
            message("a b"),
            "Topic name \"a b\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        );
        // 200 two-byte characters: 200 UTF-16 units (not too long), but illegal characters.
        let accented = "é".repeat(200);
        assert!(message(&accented).contains("is illegal, it contains a character"));
    }

    #[test]
    fn uuid_text_round_trip() {
        for _ in 0..100 {
            let id = random_uuid();
            assert_ne!(id, Uuid::ZERO);
            assert_eq!(id.to_string().parse::<Uuid>(), Ok(id));
        }
    }
}
