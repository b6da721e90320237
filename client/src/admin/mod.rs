//! The admin client: Kafka's `Admin` / `KafkaAdminClient` (KIP-117) for topics, configs
//! (KIP-133 DescribeConfigs, KIP-339 IncrementalAlterConfigs), partitions (KIP-195),
//! offsets (ListOffsets, KIP-734 max timestamp), records (KIP-107 DeleteRecords), the
//! cluster (KIP-700 DescribeCluster) and consumer groups (KIP-222 group admin, KIP-496
//! OffsetDelete).
//!
//! [`AdminClient`] runs each call over the client's network layer ([`ConnectionPool`], every
//! request at the highest version both sides support) and routes it as Java does:
//!
//! * CreateTopics, DeleteTopics and CreatePartitions go to the controller named by Metadata;
//! * ListOffsets and DeleteRecords go to each partition's leader, one request per leader;
//! * group requests go to the group's coordinator, found with FindCoordinator;
//! * DescribeConfigs and IncrementalAlterConfigs for a broker resource go to that broker,
//!   the rest to any broker; ListGroups goes to every broker.
//!
//! Calls are retried ([`retry`]) with an exponential backoff (`retry.backoff.ms` to
//! `retry.backoff.max.ms`) until the call's timeout (`default.api.timeout.ms` unless its
//! options give one) when they fail with a routing error (NOT_CONTROLLER, NOT_COORDINATOR,
//! COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, LEADER_NOT_AVAILABLE,
//! NOT_LEADER_OR_FOLLOWER), REQUEST_TIMED_OUT or a connection failure; ListOffsets and
//! DeleteRecords, as Java's `PartitionLeaderStrategy`, retry every retriable error
//! (UNKNOWN_TOPIC_OR_PARTITION included: a partition being created). A fresh Metadata or
//! FindCoordinator lookup precedes every attempt. Where Kafka answers per item (topic,
//! partition, resource, group), the result is a map of per-item [`Result`]s, and an item's
//! error keeps its Kafka code ([`Error::code`]); items with a final answer are not resent.
//!
//! ```no_run
//! use kafka_client::admin::{AdminClient, AdminConfig, CreateTopicsOptions, NewTopic};
//!
//! # async fn run() -> kafka_client::Result<()> {
//! let admin = AdminClient::new(AdminConfig::new("localhost:9092")?)?;
//! let created = admin
//!     .create_topics([NewTopic::new("orders", 3, 1)], &CreateTopicsOptions::default())
//!     .await?;
//! if let Err(e) = &created["orders"] {
//!     println!("orders: {e} (code {:?})", e.code());
//! }
//! admin.close();
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod configs;
pub mod groups;
pub mod offsets;
pub mod records;
pub mod retry;
pub mod topics;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use kafka_wire::messages::{MetadataRequest, MetadataResponse};
use kafka_wire::{ErrorCode, Request, RequestBody};
use tracing::debug;

use crate::consumer::coordinator::{find_coordinator_answer, find_coordinator_request};
use crate::error::Error;
use crate::metadata::Cluster;
use crate::network::connection::BrokerConnection;
use crate::network::pool::{random_unit, ConnectionPool};
use crate::producer::TopicPartition;

pub use self::config::{AdminConfig, AdminConfigBuilder};
pub use self::configs::{
    AlterConfigOp, AlterConfigOpType, AlterConfigsOptions, Config, ConfigEntry, ConfigResource,
    ConfigResourceType, ConfigSource, ConfigSynonym, ConfigType, DescribeConfigsOptions,
};
pub use self::groups::{
    AlterConsumerGroupOffsetsOptions, ConsumerGroupDescription, ConsumerGroupListing,
    ConsumerGroupListings, DeleteConsumerGroupOffsetsOptions, DeleteConsumerGroupsOptions,
    DescribeConsumerGroupsOptions, GroupState, GroupType, ListConsumerGroupOffsetsOptions,
    ListConsumerGroupsOptions, MemberDescription,
};
pub use self::offsets::{ListOffsetsOptions, ListOffsetsResultInfo, OffsetSpec};
pub use self::records::{DeleteRecordsOptions, DeletedRecords};
pub use self::topics::{
    ClusterDescription, CreatePartitionsOptions, CreateTopicsOptions, CreatedTopic,
    DeleteTopicsOptions, DescribeClusterOptions, DescribeTopicsOptions, ListTopicsOptions,
    NewPartitions, NewTopic, TopicDescription, TopicListing, TopicPartitionInfo,
};

use self::retry::{ItemResults, Pending, Retrier, Step};

/// A broker, as the admin results name it (Java's `Node`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// Node id.
    pub id: i32,
    /// Advertised host (empty when the broker is not in the metadata).
    pub host: String,
    /// Advertised port (-1 when the broker is not in the metadata).
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

impl Node {
    /// `host:port` (`[host]:port` for an IPv6 host).
    pub fn address(&self) -> String {
        address(&self.host, self.port)
    }

    /// The broker `id` of `cluster`, or a node with only the id when the metadata does not
    /// list it (as Java's `Node.noNode`-like placeholders).
    pub(crate) fn of(cluster: &Cluster, id: i32) -> Node {
        match cluster.broker(id) {
            Some(b) => Node {
                id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
            },
            None => Node {
                id,
                host: String::new(),
                port: -1,
                rack: None,
            },
        }
    }
}

/// Kafka's admin client. Cheap to clone (clones share connections); `Send + Sync`.
///
/// Every call is `async`, retried as the [module documentation](self) describes, and bounded
/// by its options' timeout or `default.api.timeout.ms`.
#[derive(Clone)]
pub struct AdminClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: AdminConfig,
    pool: ConnectionPool,
    closed: AtomicBool,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("client_id", &self.inner.config.client_id)
            .field("pool", &self.inner.pool)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl AdminClient {
    /// An admin client for `config`. Connects lazily, on the first call.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for checks that need the configuration.
    pub fn new(config: AdminConfig) -> Result<Self, Error> {
        let pool = ConnectionPool::new(
            config.bootstrap_servers.clone(),
            config.connection_config(),
            config.reconnect_backoff,
            config.reconnect_backoff_max,
            config.connections_max_idle,
        );
        Ok(AdminClient {
            inner: Arc::new(Inner {
                config,
                pool,
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AdminConfig {
        &self.inner.config
    }

    /// Closes every connection. Later calls fail with [`Error::Closed`]; calls in progress
    /// fail with a connection error.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.pool.close_all();
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The retry bookkeeping of a call on `keys` starting now.
    fn pending<K: Ord + Clone + Debug, V>(
        &self,
        op: &'static str,
        keys: impl IntoIterator<Item = K>,
        timeout: Option<Duration>,
    ) -> Pending<K, V> {
        let c = &self.inner.config;
        Pending::new(
            op,
            keys,
            Retrier::new(
                Instant::now(),
                timeout.unwrap_or(c.default_api_timeout),
                c.retry_backoff,
                c.retry_backoff_max,
            ),
        )
    }

    /// Runs `attempt` on the pending items of `pending` until each has a final answer or
    /// the deadline passes.
    async fn drive<K, V, F, Fut>(
        &self,
        mut pending: Pending<K, V>,
        mut attempt: F,
    ) -> BTreeMap<K, Result<V, Error>>
    where
        K: Ord + Clone + Debug,
        F: FnMut(Vec<K>, Instant) -> Fut,
        Fut: Future<Output = Result<Vec<(K, Result<V, Error>)>, Error>>,
    {
        loop {
            let keys = pending.keys();
            if keys.is_empty() {
                break;
            }
            let deadline = pending.deadline();
            let outcome =
                match tokio::time::timeout_at(deadline.into(), attempt(keys, deadline)).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        pending.expire();
                        break;
                    }
                };
            match pending.record(outcome, Instant::now(), random_unit()) {
                Step::Done => break,
                Step::RetryAfter(wait) => {
                    debug!(wait_ms = wait.as_millis() as u64, "admin call: retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        pending.finish()
    }

    /// [`drive`](Self::drive) for a call with one answer.
    async fn drive_one<V, F, Fut>(
        &self,
        op: &'static str,
        timeout: Option<Duration>,
        mut attempt: F,
    ) -> Result<V, Error>
    where
        F: FnMut(Instant) -> Fut,
        Fut: Future<Output = Result<V, Error>>,
    {
        self.check_open()?;
        let pending = self.pending(op, [()], timeout);
        let mut results = self
            .drive(pending, |_, deadline| {
                let fut = attempt(deadline);
                async move { fut.await.map(|v| vec![((), Ok(v))]) }
            })
            .await;
        results
            .remove(&())
            .unwrap_or_else(|| Err(Error::Protocol(format!("{op}: no answer"))))
    }

    /// Sends a request built for the negotiated version to `conn`, waiting at most until
    /// `deadline` (and `request.timeout.ms`, which the connection enforces).
    async fn send<R, B>(
        &self,
        conn: &BrokerConnection,
        deadline: Instant,
        build: B,
    ) -> Result<R::Response, Error>
    where
        R: Request + Into<RequestBody>,
        B: FnOnce(i16) -> Result<R, Error>,
    {
        let version = conn.version_for(R::API_KEY).ok_or_else(|| {
            Error::UnsupportedVersion(format!(
                "{:?} is not supported by broker {}",
                R::API_KEY,
                conn.addr()
            ))
        })?;
        let request = build(version)?;
        match tokio::time::timeout_at(deadline.into(), conn.send_with_version(request, version))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(format!(
                "{:?} to {}",
                R::API_KEY,
                conn.addr()
            ))),
        }
    }

    /// Any broker's connection.
    async fn any_broker(&self) -> Result<BrokerConnection, Error> {
        self.check_open()?;
        self.inner.pool.any().await
    }

    /// The connection to broker `id` of `cluster`.
    async fn broker(&self, cluster: &Cluster, id: i32) -> Result<BrokerConnection, Error> {
        self.check_open()?;
        let b = cluster.broker(id).ok_or_else(|| {
            Error::kafka_with_message(
                ErrorCode::LeaderNotAvailable,
                Some(format!("broker {id} is not in the metadata")),
            )
        })?;
        self.inner.pool.get(id, &address(&b.host, b.port)).await
    }

    /// A Metadata request for `topics` (`None`: every topic), without creating topics.
    async fn metadata_response(
        &self,
        topics: Option<&[String]>,
        deadline: Instant,
    ) -> Result<MetadataResponse, Error> {
        let conn = self.any_broker().await?;
        self.send(&conn, deadline, |_| {
            Ok(MetadataRequest {
                topics: topics.map(|ts| {
                    ts.iter()
                        .map(
                            |t| kafka_wire::messages::metadata_request::MetadataRequestTopic {
                                name: Some(t.clone()),
                                ..Default::default()
                            },
                        )
                        .collect()
                }),
                allow_auto_topic_creation: false,
                ..Default::default()
            })
        })
        .await
    }

    /// The cluster as a fresh Metadata response describes it.
    async fn cluster(
        &self,
        topics: Option<&[String]>,
        deadline: Instant,
    ) -> Result<Cluster, Error> {
        let response = self.metadata_response(topics, deadline).await?;
        Ok(Cluster::from_response(&Cluster::default(), &response))
    }

    /// The controller's connection (the controller from Metadata; NOT_CONTROLLER-retriable
    /// when the metadata names none).
    async fn controller(&self, deadline: Instant) -> Result<BrokerConnection, Error> {
        let cluster = self.cluster(Some(&[]), deadline).await?;
        let id = cluster.controller.ok_or_else(|| {
            Error::kafka_with_message(
                ErrorCode::NotController,
                Some("the metadata names no controller".into()),
            )
        })?;
        self.broker(&cluster, id).await
    }

    /// The coordinator of `group` (FindCoordinator key type 0) and its connection.
    async fn coordinator(
        &self,
        group: &str,
        deadline: Instant,
    ) -> Result<(Node, BrokerConnection), Error> {
        let conn = self.any_broker().await?;
        let response = self
            .send(&conn, deadline, |v| {
                Ok(find_coordinator_request(0, group, v))
            })
            .await?;
        let (code, message, node) = find_coordinator_answer(&response, group);
        if !code.is_ok() {
            return Err(Error::kafka_with_message(code, message));
        }
        self.check_open()?;
        let node = Node {
            id: node.node_id,
            host: node.host,
            port: node.port,
            rack: None,
        };
        let conn = self.inner.pool.get(node.id, &node.address()).await?;
        Ok((node, conn))
    }

    /// The coordinators of `groups`, looked up concurrently: groups by coordinator, and the
    /// groups whose lookup failed.
    async fn coordinators(
        &self,
        groups: &[String],
        deadline: Instant,
    ) -> (Vec<Coordinated>, Vec<(String, Error)>) {
        let lookups = join_all(groups.iter().map(|g| self.coordinator(g, deadline))).await;
        let mut by_node: BTreeMap<i32, Coordinated> = BTreeMap::new();
        let mut failed = Vec::new();
        for (g, r) in groups.iter().zip(lookups) {
            match r {
                Ok((node, conn)) => by_node
                    .entry(node.id)
                    .or_insert_with(|| Coordinated {
                        node,
                        conn,
                        groups: Vec::new(),
                    })
                    .groups
                    .push(g.clone()),
                Err(e) => failed.push((g.clone(), e)),
            }
        }
        (by_node.into_values().collect(), failed)
    }

    /// Runs a call on `groups` sent to their coordinators (DescribeGroups, DeleteGroups):
    /// every attempt looks up the pending groups' coordinators and sends one request per
    /// coordinator with `call(coordinated, deadline)`, which answers each of its groups; a
    /// failed lookup or request answers its groups with its error (retried when
    /// [`retry::is_retriable`]).
    async fn drive_coordinators<V, F, Fut>(
        &self,
        op: &'static str,
        groups: impl IntoIterator<Item = String>,
        timeout: Option<Duration>,
        call: F,
    ) -> Result<BTreeMap<String, Result<V, Error>>, Error>
    where
        F: Fn(Coordinated, Instant) -> Fut,
        Fut: Future<Output = Result<ItemResults<String, V>, Error>>,
    {
        self.check_open()?;
        let pending = self.pending(op, groups, timeout);
        let call = &call;
        Ok(self
            .drive(pending, |groups, deadline| async move {
                let (coordinated, failed) = self.coordinators(&groups, deadline).await;
                let mut out: ItemResults<String, V> =
                    failed.into_iter().map(|(g, e)| (g, Err(e))).collect();
                out.extend(
                    fan_out(
                        coordinated
                            .into_iter()
                            .map(|c| (c.groups.clone(), call(c, deadline))),
                    )
                    .await,
                );
                Ok(out)
            })
            .await)
    }

    /// Runs a call on `partitions` routed to their leaders (ListOffsets, DeleteRecords), as
    /// Java's `PartitionLeaderStrategy` with the call's handler: every attempt looks up the
    /// pending partitions' metadata, splits them with [`group_by_leader`] and sends one
    /// request per leader with `call(connection, partitions, deadline)`, which answers each
    /// partition. A partition that failed with any retriable error (Java's
    /// `RetriableException`: NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
    /// OFFSET_NOT_AVAILABLE, a broken connection, ...) is sent again until the deadline.
    async fn drive_leaders<V, F, Fut>(
        &self,
        op: &'static str,
        partitions: impl IntoIterator<Item = TopicPartition>,
        timeout: Option<Duration>,
        tolerate_unknown_topics: bool,
        call: F,
    ) -> Result<BTreeMap<TopicPartition, Result<V, Error>>, Error>
    where
        F: Fn(BrokerConnection, Vec<TopicPartition>, Instant) -> Fut,
        Fut: Future<Output = Result<ItemResults<TopicPartition, V>, Error>>,
    {
        self.check_open()?;
        // An item's answer is `Ok(Ok(v))`, `Ok(Err(e))` for a final error whatever its code
        // (an unknown topic for ListOffsets), or `Err(e)`, retried when retriable.
        let pending: Pending<TopicPartition, Result<V, Error>> = self
            .pending(op, partitions, timeout)
            .retrying(Error::is_retriable);
        let call = &call;
        let results = self
            .drive(pending, |partitions, deadline| async move {
                let topics: Vec<String> = by_topic(&partitions).into_keys().collect();
                let cluster = self.cluster(Some(&topics), deadline).await?;
                let routed = group_by_leader(&cluster, &partitions, tolerate_unknown_topics);
                let cluster = &cluster;
                let answers = fan_out(routed.by_leader.into_iter().map(|(leader, ps)| {
                    let sent = ps.clone();
                    (ps, async move {
                        let conn = self.broker(cluster, leader).await?;
                        call(conn, sent, deadline).await
                    })
                }))
                .await;
                let mut out: ItemResults<TopicPartition, Result<V, Error>> = routed
                    .failed
                    .into_iter()
                    .map(|(k, e)| (k, Ok(Err(e))))
                    .collect();
                out.extend(routed.retry.into_iter().map(|(k, e)| (k, Err(e))));
                out.extend(answers.into_iter().map(|(k, r)| (k, r.map(Ok))));
                Ok(out)
            })
            .await;
        Ok(results
            .into_iter()
            .map(|(k, r)| (k, r.and_then(|r| r)))
            .collect())
    }
}

/// Groups that share a coordinator.
struct Coordinated {
    node: Node,
    conn: BrokerConnection,
    groups: Vec<String>,
}

/// Awaits one request per broker, each for its `keys`, and merges their per-item answers;
/// a failed request answers each of its keys with its error.
async fn fan_out<K: Clone, V, Fut>(
    calls: impl IntoIterator<Item = (Vec<K>, Fut)>,
) -> ItemResults<K, V>
where
    Fut: Future<Output = Result<ItemResults<K, V>, Error>>,
{
    let (keys, futures): (Vec<Vec<K>>, Vec<Fut>) = calls.into_iter().unzip();
    let mut out = Vec::new();
    for (keys, answer) in keys.iter().zip(join_all(futures).await) {
        match answer {
            Ok(rs) => out.extend(rs),
            Err(e) => out.extend(fail_all(keys, &e)),
        }
    }
    out
}

/// Partitions split by leader ([`group_by_leader`]).
#[derive(Debug, Default)]
pub(crate) struct Routed {
    /// The partitions of each leader.
    pub(crate) by_leader: BTreeMap<i32, Vec<TopicPartition>>,
    /// Partitions a later Metadata lookup may route, with the reason (retried).
    pub(crate) retry: Vec<(TopicPartition, Error)>,
    /// Partitions answered with a final error.
    pub(crate) failed: Vec<(TopicPartition, Error)>,
}

/// Splits `partitions` by the leader `cluster` names (pure), as Java's
/// `PartitionLeaderStrategy`: a topic that does not exist is retried when
/// `tolerate_unknown_topics` (DeleteRecords) and final otherwise (ListOffsets); a topic
/// LEADER_NOT_AVAILABLE, a partition the metadata does not list yet
/// (UNKNOWN_TOPIC_OR_PARTITION), a partition error Java retries (NOT_LEADER_OR_FOLLOWER,
/// REPLICA_NOT_AVAILABLE, LEADER_NOT_AVAILABLE, BROKER_NOT_AVAILABLE, KAFKA_STORAGE_ERROR,
/// UNKNOWN_TOPIC_OR_PARTITION) and a partition without a known leader (LEADER_NOT_AVAILABLE)
/// are retried; any other topic or partition error is final.
pub(crate) fn group_by_leader(
    cluster: &Cluster,
    partitions: &[TopicPartition],
    tolerate_unknown_topics: bool,
) -> Routed {
    let mut routed = Routed::default();
    for tp in partitions {
        let topic = &*tp.topic;
        let Some(info) = cluster.topic(topic) else {
            let code = cluster
                .topic_errors
                .get(topic)
                .copied()
                .unwrap_or(ErrorCode::UnknownTopicOrPartition);
            let retry = match code {
                ErrorCode::UnknownTopicOrPartition => tolerate_unknown_topics,
                ErrorCode::LeaderNotAvailable | ErrorCode::BrokerNotAvailable => true,
                _ => false,
            };
            if retry {
                routed
                    .retry
                    .push((tp.clone(), retriable_metadata_error(code)));
            } else {
                routed.failed.push((tp.clone(), Error::kafka(code)));
            }
            continue;
        };
        let Some(p) = usize::try_from(tp.partition)
            .ok()
            .and_then(|i| info.partitions.get(i))
        else {
            routed
                .retry
                .push((tp.clone(), Error::kafka(ErrorCode::UnknownTopicOrPartition)));
            continue;
        };
        match p.error {
            ErrorCode::None => {}
            ErrorCode::NotLeaderOrFollower
            | ErrorCode::ReplicaNotAvailable
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::BrokerNotAvailable
            | ErrorCode::KafkaStorageError
            | ErrorCode::UnknownTopicOrPartition => {
                routed
                    .retry
                    .push((tp.clone(), retriable_metadata_error(p.error)));
                continue;
            }
            code => {
                routed.failed.push((tp.clone(), Error::kafka(code)));
                continue;
            }
        }
        match p.leader.filter(|l| cluster.broker(*l).is_some()) {
            Some(leader) => routed.by_leader.entry(leader).or_default().push(tp.clone()),
            None => routed
                .retry
                .push((tp.clone(), Error::kafka(ErrorCode::LeaderNotAvailable))),
        }
    }
    routed
}

/// The error a retried metadata answer leaves as the last one: its own code when the client
/// counts it retriable, else (BROKER_NOT_AVAILABLE, which Java's lookup also retries)
/// LEADER_NOT_AVAILABLE naming it.
fn retriable_metadata_error(code: ErrorCode) -> Error {
    if code.is_retriable() {
        Error::kafka(code)
    } else {
        Error::kafka_with_message(ErrorCode::LeaderNotAvailable, Some(code.name().to_owned()))
    }
}

/// The partitions of `tps` grouped by topic, topics and partitions in order.
pub(crate) fn by_topic<'a>(
    tps: impl IntoIterator<Item = &'a TopicPartition>,
) -> BTreeMap<String, Vec<i32>> {
    let mut m: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        m.entry(tp.topic.to_string())
            .or_default()
            .push(tp.partition);
    }
    for ps in m.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    m
}

/// The timeout field of a request the broker may wait on (CreateTopics, DeleteRecords,
/// ...): what is left before `deadline`, at most `request_timeout`, within `i32`
/// milliseconds.
pub(crate) fn timeout_ms(deadline: Instant, request_timeout: Duration) -> i32 {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .min(request_timeout);
    i32::try_from(left.as_millis()).unwrap_or(i32::MAX)
}

pub(crate) use crate::metadata::format_address as address;

/// A topic partition.
pub(crate) fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: Arc::from(topic),
        partition,
    }
}

/// A Kafka error from a response's code and message, `Ok` for NONE.
pub(crate) fn check(code: i16, message: Option<&String>) -> Result<(), Error> {
    let code = ErrorCode::from_code(code);
    if code.is_ok() {
        Ok(())
    } else {
        Err(Error::kafka_with_message(code, message.cloned()))
    }
}

/// Answers every key of `keys` with `error` (a request to their broker failed).
pub(crate) fn fail_all<K: Clone, V>(keys: &[K], error: &Error) -> Vec<(K, Result<V, Error>)> {
    keys.iter()
        .map(|k| (k.clone(), Err(error.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    use super::*;

    fn cluster() -> Cluster {
        let partition = |i: i32, leader: i32| MetadataResponsePartition {
            partition_index: i,
            leader_id: leader,
            ..Default::default()
        };
        let response = MetadataResponse {
            brokers: vec![
                MetadataResponseBroker {
                    node_id: 1,
                    host: "a".into(),
                    port: 1,
                    ..Default::default()
                },
                MetadataResponseBroker {
                    node_id: 2,
                    host: "b".into(),
                    port: 2,
                    rack: Some("r".into()),
                    ..Default::default()
                },
            ],
            controller_id: 2,
            topics: vec![
                MetadataResponseTopic {
                    name: Some("t".into()),
                    partitions: vec![
                        partition(0, 1),
                        partition(1, 2),
                        partition(2, -1),
                        partition(3, 9),
                    ],
                    ..Default::default()
                },
                MetadataResponseTopic {
                    name: Some("u".into()),
                    partitions: vec![
                        MetadataResponsePartition {
                            error_code: ErrorCode::KafkaStorageError.code(),
                            ..partition(0, 1)
                        },
                        MetadataResponsePartition {
                            error_code: ErrorCode::BrokerNotAvailable.code(),
                            ..partition(1, 1)
                        },
                        MetadataResponsePartition {
                            error_code: ErrorCode::InvalidRequest.code(),
                            ..partition(2, 1)
                        },
                    ],
                    ..Default::default()
                },
                MetadataResponseTopic {
                    name: Some("denied".into()),
                    error_code: ErrorCode::TopicAuthorizationFailed.code(),
                    ..Default::default()
                },
                MetadataResponseTopic {
                    name: Some("moving".into()),
                    error_code: ErrorCode::LeaderNotAvailable.code(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        Cluster::from_response(&Cluster::default(), &response)
    }

    fn codes(errors: &[(TopicPartition, Error)]) -> Vec<(TopicPartition, Option<ErrorCode>)> {
        errors
            .iter()
            .map(|(tp, e)| (tp.clone(), e.code()))
            .collect()
    }

    #[test]
    fn partitions_are_routed_to_their_leaders() {
        let c = cluster();
        let asked = [
            tp("t", 0),
            tp("t", 1),
            tp("t", 2),
            tp("t", 3),
            tp("t", 4),
            tp("t", -1),
            tp("t", 1),
            tp("u", 0),
            tp("u", 1),
            tp("u", 2),
            tp("missing", 0),
            tp("denied", 0),
            tp("moving", 0),
        ];
        for tolerate_unknown_topics in [false, true] {
            let r = group_by_leader(&c, &asked, tolerate_unknown_topics);
            assert_eq!(r.by_leader.len(), 2);
            assert_eq!(r.by_leader[&1], [tp("t", 0)]);
            assert_eq!(r.by_leader[&2], [tp("t", 1), tp("t", 1)]);
            let mut retry = vec![
                (tp("t", 2), Some(ErrorCode::LeaderNotAvailable)),
                // Leader 9 is not a known broker.
                (tp("t", 3), Some(ErrorCode::LeaderNotAvailable)),
                // Partitions the metadata does not list (yet): retried, as Java.
                (tp("t", 4), Some(ErrorCode::UnknownTopicOrPartition)),
                (tp("t", -1), Some(ErrorCode::UnknownTopicOrPartition)),
                // Partition errors Java's lookup retries; BROKER_NOT_AVAILABLE, not
                // retriable by its code, is kept as LEADER_NOT_AVAILABLE naming it.
                (tp("u", 0), Some(ErrorCode::KafkaStorageError)),
                (tp("u", 1), Some(ErrorCode::LeaderNotAvailable)),
            ];
            let missing = (tp("missing", 0), Some(ErrorCode::UnknownTopicOrPartition));
            // Any other partition or topic error is final.
            let mut failed = vec![(tp("u", 2), Some(ErrorCode::InvalidRequest))];
            if tolerate_unknown_topics {
                // DeleteRecords: a topic that does not exist (yet) is retried...
                retry.push(missing);
            } else {
                // ...ListOffsets reports it at once.
                failed.push(missing);
            }
            failed.push((tp("denied", 0), Some(ErrorCode::TopicAuthorizationFailed)));
            retry.push((tp("moving", 0), Some(ErrorCode::LeaderNotAvailable)));
            assert_eq!(codes(&r.retry), retry, "tolerate {tolerate_unknown_topics}");
            assert_eq!(
                codes(&r.failed),
                failed,
                "tolerate {tolerate_unknown_topics}"
            );
        }
        let r = group_by_leader(&c, &[tp("u", 1)], false);
        assert!(
            r.retry[0].1.to_string().contains("BROKER_NOT_AVAILABLE"),
            "{}",
            r.retry[0].1
        );
    }

    #[test]
    fn nodes_resolve_from_the_metadata() {
        let c = cluster();
        assert_eq!(
            Node::of(&c, 2),
            Node {
                id: 2,
                host: "b".into(),
                port: 2,
                rack: Some("r".into())
            }
        );
        assert_eq!(Node::of(&c, 2).address(), "b:2");
        assert_eq!(address("::1", 9092), "[::1]:9092");
        assert_eq!(address("[::1]", 9092), "[::1]:9092");
        assert_eq!(Node::of(&c, 7).port, -1);
    }

    #[test]
    fn helpers() {
        let m = by_topic(&[tp("b", 2), tp("a", 1), tp("b", 0), tp("b", 2)]);
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [("a".to_owned(), vec![1]), ("b".to_owned(), vec![0, 2])]
        );
        assert_eq!(check(0, None), Ok(()));
        let e = check(36, Some(&"exists".to_owned())).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TopicAlreadyExists));
        assert!(e.to_string().contains("exists"));
        let all: Vec<(i32, Result<(), Error>)> = fail_all(&[1, 2], &Error::Closed);
        assert_eq!(all.len(), 2);
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn request_timeout_field_is_bounded() {
        let now = Instant::now();
        assert_eq!(timeout_ms(now, Duration::from_secs(30)), 0);
        let t = timeout_ms(now + Duration::from_secs(60), Duration::from_secs(30));
        assert_eq!(t, 30_000);
        let t = timeout_ms(now + Duration::from_secs(5), Duration::from_secs(30));
        assert!((4_000..=5_000).contains(&t), "{t}");
    }

    #[test]
    fn admin_client_is_send_sync_and_close_refuses_calls() {
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        send_sync::<AdminClient>();
        let admin = AdminClient::new(AdminConfig::new("localhost:1").unwrap()).unwrap();
        admin.close();
        assert_eq!(admin.check_open(), Err(Error::Closed));
        assert!(format!("{admin:?}").contains("AdminClient"));
    }
}
