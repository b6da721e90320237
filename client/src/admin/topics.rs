//! Topic and cluster calls: CreateTopics, DeleteTopics, CreatePartitions (to the
//! controller), listing and describing topics (Metadata), and DescribeCluster (KIP-700,
//! Metadata when the broker does not offer it). KIP-117 (the admin client), KIP-195
//! (CreatePartitions), KIP-516 (topic ids).

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_wire::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_wire::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_wire::messages::delete_topics_request::DeleteTopicState;
use kafka_wire::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse,
};
use kafka_wire::{ErrorCode, Uuid};

use super::configs::{ConfigEntry, ConfigSource};
use super::{check, timeout_ms, AdminClient, Node};
use crate::error::Error;
use crate::metadata::Cluster;

/// A topic to create (Java's `NewTopic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic name.
    pub name: String,
    /// The partition count; `None` for the broker's `num.partitions` (CreateTopics v4+).
    pub num_partitions: Option<i32>,
    /// The replication factor; `None` for the broker's `default.replication.factor` (v4+).
    pub replication_factor: Option<i16>,
    /// Explicit replica assignments by partition (instead of a count and factor).
    pub replica_assignments: BTreeMap<i32, Vec<i32>>,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `num_partitions` partitions of `replication_factor` replicas.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            num_partitions: Some(num_partitions),
            replication_factor: Some(replication_factor),
            replica_assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        }
    }

    /// A topic with the broker's default partition count and replication factor.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        NewTopic {
            num_partitions: None,
            replication_factor: None,
            ..NewTopic::new(name, -1, -1)
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }

    fn to_request(&self) -> CreatableTopic {
        let explicit = !self.replica_assignments.is_empty();
        CreatableTopic {
            name: self.name.clone(),
            num_partitions: if explicit {
                -1
            } else {
                self.num_partitions.unwrap_or(-1)
            },
            replication_factor: if explicit {
                -1
            } else {
                self.replication_factor.unwrap_or(-1)
            },
            assignments: self
                .replica_assignments
                .iter()
                .map(|(p, brokers)| CreatableReplicaAssignment {
                    partition_index: *p,
                    broker_ids: brokers.clone(),
                    ..Default::default()
                })
                .collect(),
            configs: self
                .configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: k.clone(),
                    value: Some(v.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// Options of [`AdminClient::create_topics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTopicsOptions {
    /// Check everything but create nothing.
    pub validate_only: bool,
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// What the controller reports for a created (or validated) topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// The topic id (CreateTopics v7+; zero before).
    pub topic_id: Uuid,
    /// The partition count (v5+).
    pub num_partitions: Option<i32>,
    /// The replication factor (v5+).
    pub replication_factor: Option<i16>,
    /// The topic's effective configs (v5+; empty before or when not authorized).
    pub configs: Vec<ConfigEntry>,
}

/// Options of [`AdminClient::delete_topics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteTopicsOptions {
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A topic's new partition count (Java's `NewPartitions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    /// The total partition count after the increase.
    pub total_count: i32,
    /// Replica brokers of each new partition, or `None` to let the controller assign them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl NewPartitions {
    /// Grow to `total_count` partitions.
    pub fn increase_to(total_count: i32) -> Self {
        NewPartitions {
            total_count,
            assignments: None,
        }
    }
}

/// Options of [`AdminClient::create_partitions`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatePartitionsOptions {
    /// Check everything but change nothing.
    pub validate_only: bool,
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::list_topics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTopicsOptions {
    /// Include internal topics (`__consumer_offsets`, ...).
    pub list_internal: bool,
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A topic in [`AdminClient::list_topics`] (Java's `TopicListing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// The topic name.
    pub name: String,
    /// The topic id (zero when the broker does not send one).
    pub topic_id: Uuid,
    /// Whether the topic is internal.
    pub is_internal: bool,
}

/// Options of [`AdminClient::describe_topics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeTopicsOptions {
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A partition of a [`TopicDescription`] (Java's `TopicPartitionInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader, `None` while there is none.
    pub leader: Option<Node>,
    /// The replicas, preferred leader first.
    pub replicas: Vec<Node>,
    /// The in-sync replicas.
    pub isr: Vec<Node>,
}

/// A topic as [`AdminClient::describe_topics`] describes it (Java's `TopicDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic name.
    pub name: String,
    /// The topic id.
    pub topic_id: Uuid,
    /// Whether the topic is internal.
    pub is_internal: bool,
    /// The partitions, by index.
    pub partitions: Vec<TopicPartitionInfo>,
}

/// Options of [`AdminClient::describe_cluster`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeClusterOptions {
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// The cluster (Java's `DescribeClusterResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id, when the broker sends one.
    pub cluster_id: Option<String>,
    /// The controller (for KRaft clusters answering DescribeCluster: a random broker, as
    /// Kafka reports it), when known.
    pub controller: Option<Node>,
    /// The brokers, by id.
    pub nodes: Vec<Node>,
}

/// The per-topic answers of a CreateTopics response (pure).
pub(crate) fn create_topics_results(
    response: &CreateTopicsResponse,
) -> Vec<(String, Result<CreatedTopic, Error>)> {
    response
        .topics
        .iter()
        .map(|t| {
            let result = check(t.error_code, t.error_message.as_ref()).map(|()| CreatedTopic {
                topic_id: t.topic_id,
                num_partitions: (t.num_partitions >= 0).then_some(t.num_partitions),
                replication_factor: (t.replication_factor >= 0).then_some(t.replication_factor),
                configs: t
                    .configs
                    .iter()
                    .flatten()
                    .map(|c| ConfigEntry {
                        name: c.name.clone(),
                        value: c.value.clone(),
                        source: ConfigSource::from_i8(c.config_source),
                        is_read_only: c.read_only,
                        is_sensitive: c.is_sensitive,
                        is_default: ConfigSource::from_i8(c.config_source)
                            == ConfigSource::DefaultConfig,
                        synonyms: Vec::new(),
                        config_type: None,
                        documentation: None,
                    })
                    .collect(),
            });
            (t.name.clone(), result)
        })
        .collect()
}

/// The per-topic answers of a DeleteTopics response (pure; v6 may name topics by id only,
/// which this client never asks for).
pub(crate) fn delete_topics_results(
    response: &DeleteTopicsResponse,
) -> Vec<(String, Result<(), Error>)> {
    response
        .responses
        .iter()
        .filter_map(|t| {
            let name = t.name.clone()?;
            Some((name, check(t.error_code, t.error_message.as_ref())))
        })
        .collect()
}

/// The per-topic answers of a CreatePartitions response (pure).
pub(crate) fn create_partitions_results(
    response: &CreatePartitionsResponse,
) -> Vec<(String, Result<(), Error>)> {
    response
        .results
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                check(t.error_code, t.error_message.as_ref()),
            )
        })
        .collect()
}

/// A topic description from `cluster` (pure).
pub(crate) fn describe_topic(cluster: &Cluster, name: &str) -> Result<TopicDescription, Error> {
    let Some(info) = cluster.topic(name) else {
        let code = cluster
            .topic_errors
            .get(name)
            .copied()
            .unwrap_or(ErrorCode::UnknownTopicOrPartition);
        return Err(Error::kafka(code));
    };
    let nodes = |ids: &[i32]| ids.iter().map(|id| Node::of(cluster, *id)).collect();
    Ok(TopicDescription {
        name: info.name.clone(),
        topic_id: info.topic_id,
        is_internal: info.is_internal,
        partitions: info
            .partitions
            .iter()
            .map(|p| TopicPartitionInfo {
                partition: p.partition,
                leader: p.leader.map(|l| Node::of(cluster, l)),
                replicas: nodes(&p.replicas),
                isr: nodes(&p.isr),
            })
            .collect(),
    })
}

/// A cluster description from a DescribeCluster response (pure).
pub(crate) fn cluster_from_describe(
    response: &DescribeClusterResponse,
) -> Result<ClusterDescription, Error> {
    check(response.error_code, response.error_message.as_ref())?;
    let mut nodes: Vec<Node> = response
        .brokers
        .iter()
        .map(|b| Node {
            id: b.broker_id,
            host: b.host.clone(),
            port: b.port,
            rack: b.rack.clone(),
        })
        .collect();
    nodes.sort();
    let controller = (response.controller_id >= 0).then(|| {
        nodes
            .iter()
            .find(|n| n.id == response.controller_id)
            .cloned()
            .unwrap_or(Node {
                id: response.controller_id,
                host: String::new(),
                port: -1,
                rack: None,
            })
    });
    Ok(ClusterDescription {
        cluster_id: Some(response.cluster_id.clone()).filter(|c| !c.is_empty()),
        controller,
        nodes,
    })
}

/// A cluster description from Metadata (pure).
pub(crate) fn cluster_from_metadata(cluster: &Cluster) -> ClusterDescription {
    let mut ids: Vec<i32> = cluster.brokers.keys().copied().collect();
    ids.sort_unstable();
    ClusterDescription {
        cluster_id: cluster.cluster_id.clone(),
        controller: cluster.controller.map(|c| Node::of(cluster, c)),
        nodes: ids.into_iter().map(|id| Node::of(cluster, id)).collect(),
    }
}

impl AdminClient {
    /// Creates topics (CreateTopics, sent to the controller). Each topic gets its own
    /// answer: for example TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS,
    /// INVALID_REPLICATION_FACTOR, INVALID_CONFIG or INVALID_TOPIC_EXCEPTION in
    /// [`Error::Kafka`]. A name given twice is created once.
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed. Everything else is per topic, including
    /// [`Error::Timeout`] when the controller could not be reached in time.
    pub async fn create_topics(
        &self,
        topics: impl IntoIterator<Item = NewTopic>,
        options: &CreateTopicsOptions,
    ) -> Result<BTreeMap<String, Result<CreatedTopic, Error>>, Error> {
        self.check_open()?;
        let mut specs: BTreeMap<String, NewTopic> = BTreeMap::new();
        for t in topics {
            specs.entry(t.name.clone()).or_insert(t);
        }
        let mut pending = self.pending("createTopics", specs.keys().cloned(), options.timeout);
        for name in specs.keys() {
            if name.is_empty() {
                pending.fail(
                    name.clone(),
                    Error::kafka_with_message(
                        ErrorCode::InvalidTopicException,
                        Some("the topic name is empty".into()),
                    ),
                );
            }
        }
        let request_timeout = self.inner.config.request_timeout;
        Ok(self
            .drive(pending, |names, deadline| {
                let specs = &specs;
                async move {
                    let conn = self.controller(deadline).await?;
                    let response = self
                        .send(&conn, deadline, |_| {
                            Ok(CreateTopicsRequest {
                                topics: names
                                    .iter()
                                    .filter_map(|n| specs.get(n))
                                    .map(NewTopic::to_request)
                                    .collect(),
                                timeout_ms: timeout_ms(deadline, request_timeout),
                                validate_only: options.validate_only,
                                ..Default::default()
                            })
                        })
                        .await?;
                    Ok(create_topics_results(&response))
                }
            })
            .await)
    }

    /// Deletes topics (DeleteTopics, sent to the controller), each with its own answer
    /// (UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist, ...).
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per topic.
    pub async fn delete_topics(
        &self,
        topics: impl IntoIterator<Item = impl Into<String>>,
        options: &DeleteTopicsOptions,
    ) -> Result<BTreeMap<String, Result<(), Error>>, Error> {
        self.check_open()?;
        let names: Vec<String> = topics.into_iter().map(Into::into).collect();
        let pending = self.pending("deleteTopics", names, options.timeout);
        let request_timeout = self.inner.config.request_timeout;
        Ok(self
            .drive(pending, |names, deadline| async move {
                let conn = self.controller(deadline).await?;
                let response = self
                    .send(&conn, deadline, |version| {
                        let mut r = DeleteTopicsRequest {
                            timeout_ms: timeout_ms(deadline, request_timeout),
                            ..Default::default()
                        };
                        if version >= 6 {
                            r.topics = names
                                .iter()
                                .map(|n| DeleteTopicState {
                                    name: Some(n.clone()),
                                    ..Default::default()
                                })
                                .collect();
                        } else {
                            r.topic_names = names.clone();
                        }
                        Ok(r)
                    })
                    .await?;
                Ok(delete_topics_results(&response))
            })
            .await)
    }

    /// Grows topics' partition counts (CreatePartitions, sent to the controller), each with
    /// its own answer (INVALID_PARTITIONS when the count does not grow, ...).
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per topic.
    pub async fn create_partitions(
        &self,
        partitions: BTreeMap<String, NewPartitions>,
        options: &CreatePartitionsOptions,
    ) -> Result<BTreeMap<String, Result<(), Error>>, Error> {
        self.check_open()?;
        let pending = self.pending(
            "createPartitions",
            partitions.keys().cloned(),
            options.timeout,
        );
        let request_timeout = self.inner.config.request_timeout;
        Ok(self
            .drive(pending, |names, deadline| {
                let partitions = &partitions;
                async move {
                    let conn = self.controller(deadline).await?;
                    let response = self
                        .send(&conn, deadline, |_| {
                            Ok(CreatePartitionsRequest {
                                topics: names
                                    .iter()
                                    .filter_map(|n| partitions.get(n).map(|p| (n, p)))
                                    .map(|(n, p)| CreatePartitionsTopic {
                                        name: n.clone(),
                                        count: p.total_count,
                                        assignments: p.assignments.as_ref().map(|a| {
                                            a.iter()
                                                .map(|ids| CreatePartitionsAssignment {
                                                    broker_ids: ids.clone(),
                                                    ..Default::default()
                                                })
                                                .collect()
                                        }),
                                        ..Default::default()
                                    })
                                    .collect(),
                                timeout_ms: timeout_ms(deadline, request_timeout),
                                validate_only: options.validate_only,
                                ..Default::default()
                            })
                        })
                        .await?;
                    Ok(create_partitions_results(&response))
                }
            })
            .await)
    }

    /// Every topic (Metadata for all topics), internal ones only when asked, by name.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Timeout`] when no broker answered in time, or the error
    /// that ended the retries.
    pub async fn list_topics(
        &self,
        options: &ListTopicsOptions,
    ) -> Result<BTreeMap<String, TopicListing>, Error> {
        let cluster = self
            .drive_one("listTopics", options.timeout, |deadline| {
                self.cluster(None, deadline)
            })
            .await?;
        Ok(cluster
            .topics
            .values()
            .filter(|t| options.list_internal || !t.is_internal)
            .map(|t| {
                (
                    t.name.clone(),
                    TopicListing {
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        is_internal: t.is_internal,
                    },
                )
            })
            .collect())
    }

    /// Describes topics (Metadata, without creating them): partitions, leaders (`None`
    /// while a partition has none, as Java's `null`), replicas, ISR, topic id. A topic that
    /// does not exist gets UNKNOWN_TOPIC_OR_PARTITION.
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per topic.
    pub async fn describe_topics(
        &self,
        topics: impl IntoIterator<Item = impl Into<String>>,
        options: &DescribeTopicsOptions,
    ) -> Result<BTreeMap<String, Result<TopicDescription, Error>>, Error> {
        self.check_open()?;
        let names: Vec<String> = topics.into_iter().map(Into::into).collect();
        let pending = self.pending("describeTopics", names, options.timeout);
        Ok(self
            .drive(pending, |names, deadline| async move {
                let cluster = self.cluster(Some(&names), deadline).await?;
                Ok(names
                    .iter()
                    .map(|n| (n.clone(), describe_topic(&cluster, n)))
                    .collect())
            })
            .await)
    }

    /// Describes the cluster: brokers, controller and cluster id, from DescribeCluster when
    /// the broker offers it, else from Metadata.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Timeout`], or the broker's error in [`Error::Kafka`].
    pub async fn describe_cluster(
        &self,
        options: &DescribeClusterOptions,
    ) -> Result<ClusterDescription, Error> {
        self.drive_one("describeCluster", options.timeout, |deadline| async move {
            let conn = self.any_broker().await?;
            if conn
                .version_for(kafka_wire::ApiKey::DescribeCluster)
                .is_some()
            {
                let response = self
                    .send(&conn, deadline, |_| Ok(DescribeClusterRequest::default()))
                    .await?;
                cluster_from_describe(&response)
            } else {
                Ok(cluster_from_metadata(
                    &self.cluster(Some(&[]), deadline).await?,
                ))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::create_topics_response::{
        CreatableTopicConfigs, CreatableTopicResult,
    };
    use kafka_wire::messages::delete_topics_response::DeletableTopicResult;
    use kafka_wire::messages::describe_cluster_response::DescribeClusterBroker;

    use super::*;

    #[test]
    fn new_topic_requests() {
        let t = NewTopic::new("t", 3, 1).config("cleanup.policy", "compact");
        let r = t.to_request();
        assert_eq!((r.num_partitions, r.replication_factor), (3, 1));
        assert_eq!(r.configs[0].name, "cleanup.policy");
        assert_eq!(r.configs[0].value.as_deref(), Some("compact"));
        let d = NewTopic::with_defaults("d").to_request();
        assert_eq!((d.num_partitions, d.replication_factor), (-1, -1));
        let mut a = NewTopic::new("a", 9, 9);
        a.replica_assignments.insert(0, vec![1]);
        let r = a.to_request();
        // Assignments exclude counts, as Java sends them.
        assert_eq!((r.num_partitions, r.replication_factor), (-1, -1));
        assert_eq!(r.assignments[0].broker_ids, [1]);
    }

    #[test]
    fn create_topics_answers_keep_codes_and_details() {
        let response = CreateTopicsResponse {
            topics: vec![
                CreatableTopicResult {
                    name: "ok".into(),
                    topic_id: Uuid::from_u64_pair(0, 7),
                    num_partitions: 3,
                    replication_factor: 1,
                    configs: Some(vec![CreatableTopicConfigs {
                        name: "retention.ms".into(),
                        value: Some("1000".into()),
                        config_source: 1,
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                CreatableTopicResult {
                    name: "dup".into(),
                    error_code: ErrorCode::TopicAlreadyExists.code(),
                    error_message: Some("Topic 'dup' already exists.".into()),
                    num_partitions: -1,
                    replication_factor: -1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let r = create_topics_results(&response);
        let ok = r[0].1.as_ref().unwrap();
        assert_eq!(ok.topic_id, Uuid::from_u64_pair(0, 7));
        assert_eq!(
            (ok.num_partitions, ok.replication_factor),
            (Some(3), Some(1))
        );
        assert_eq!(ok.configs[0].source, ConfigSource::DynamicTopicConfig);
        let e = r[1].1.as_ref().unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TopicAlreadyExists));
        assert!(e.to_string().contains("already exists"));
    }

    #[test]
    fn delete_answers_skip_id_only_entries() {
        let response = DeleteTopicsResponse {
            responses: vec![
                DeletableTopicResult {
                    name: Some("a".into()),
                    ..Default::default()
                },
                DeletableTopicResult {
                    name: None,
                    error_code: 3,
                    ..Default::default()
                },
                DeletableTopicResult {
                    name: Some("b".into()),
                    error_code: ErrorCode::UnknownTopicOrPartition.code(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let r = delete_topics_results(&response);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], ("a".to_owned(), Ok(())));
        assert_eq!(
            r[1].1.as_ref().unwrap_err().code(),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn describe_cluster_answers() {
        let mut response = DescribeClusterResponse {
            cluster_id: "c1".into(),
            controller_id: 2,
            brokers: vec![
                DescribeClusterBroker {
                    broker_id: 2,
                    host: "h2".into(),
                    port: 92,
                    ..Default::default()
                },
                DescribeClusterBroker {
                    broker_id: 1,
                    host: "h1".into(),
                    port: 91,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let d = cluster_from_describe(&response).unwrap();
        assert_eq!(d.cluster_id.as_deref(), Some("c1"));
        assert_eq!(d.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(d.controller.unwrap().host, "h2");
        response.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        assert_eq!(
            cluster_from_describe(&response).unwrap_err().code(),
            Some(ErrorCode::ClusterAuthorizationFailed)
        );
    }

    #[test]
    fn topics_and_clusters_are_described_from_metadata() {
        use kafka_wire::messages::metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        };
        use kafka_wire::messages::MetadataResponse;
        let response = MetadataResponse {
            cluster_id: Some("c".into()),
            controller_id: 1,
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "h".into(),
                port: 9,
                ..Default::default()
            }],
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                topic_id: Uuid::from_u64_pair(1, 2),
                partitions: vec![
                    MetadataResponsePartition {
                        partition_index: 0,
                        leader_id: 1,
                        replica_nodes: vec![1, 4],
                        isr_nodes: vec![1],
                        ..Default::default()
                    },
                    MetadataResponsePartition {
                        partition_index: 1,
                        leader_id: -1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let cluster = Cluster::from_response(&Cluster::default(), &response);
        let d = describe_topic(&cluster, "t").unwrap();
        assert_eq!(d.topic_id, Uuid::from_u64_pair(1, 2));
        let p0 = &d.partitions[0];
        assert_eq!(
            p0.leader.as_ref().map(|n| n.address()),
            Some("h:9".to_owned())
        );
        // Replica 4 is not in the metadata: a node with only its id.
        assert_eq!(
            p0.replicas
                .iter()
                .map(|n| (n.id, n.port))
                .collect::<Vec<_>>(),
            [(1, 9), (4, -1)]
        );
        assert_eq!(p0.isr.len(), 1);
        assert_eq!(d.partitions[1].leader, None);
        assert_eq!(
            describe_topic(&cluster, "nope").unwrap_err().code(),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        let c = cluster_from_metadata(&cluster);
        assert_eq!(c.cluster_id.as_deref(), Some("c"));
        assert_eq!(c.controller.map(|n| n.id), Some(1));
        assert_eq!(c.nodes.len(), 1);
    }
}
