//! The client's view of the cluster: brokers, topics, partitions and their leaders, built
//! from Metadata responses.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_wire::messages::MetadataResponse;
use kafka_wire::{ErrorCode, Uuid};

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, an IPv6 host in brackets ([`format_address`]).
    pub fn address(&self) -> String {
        format_address(&self.host, self.port)
    }
}

/// `host:port`, with an IPv6 host in brackets (`[::1]:9092`), as Java's
/// `Utils.formatAddress`: the form every connection in this crate is opened with.
pub fn format_address(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader's node id, `None` while the partition has no leader.
    pub leader: Option<i32>,
    /// Leader epoch (-1 when unknown).
    pub leader_epoch: i32,
    /// Replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// The error the broker reported for this partition (for example LEADER_NOT_AVAILABLE).
    pub error: ErrorCode,
}

/// One topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id (zero when the broker does not send one).
    pub topic_id: Uuid,
    /// Whether the topic is internal (`__consumer_offsets`, ...).
    pub is_internal: bool,
    /// Partitions, sorted by index and dense (`partitions[i].partition == i`).
    pub partitions: Vec<PartitionInfo>,
    /// Indexes of the partitions that have a leader, ascending.
    pub available_partitions: Vec<i32>,
}

impl TopicInfo {
    /// Number of partitions.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// The partition's leader, if it has one.
    pub fn leader(&self, partition: i32) -> Option<i32> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))
            .and_then(|p| p.leader)
    }
}

/// A snapshot of cluster metadata. Cheap to clone (topics are shared).
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Cluster id, if the broker sent one.
    pub cluster_id: Option<String>,
    /// Controller node id, if known.
    pub controller: Option<i32>,
    /// Brokers by node id.
    pub brokers: HashMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: HashMap<String, Arc<TopicInfo>>,
    /// Topics the last Metadata response reported an error for (for example
    /// UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED, INVALID_TOPIC_EXCEPTION).
    pub topic_errors: HashMap<String, ErrorCode>,
}

impl Cluster {
    /// The topic, if metadata for it is known.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicInfo>> {
        self.topics.get(name)
    }

    /// The broker with this node id.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&node_id)
    }

    /// The leader of `topic`/`partition`, if known.
    pub fn leader_for(&self, topic: &str, partition: i32) -> Option<&BrokerInfo> {
        self.topic(topic)?
            .leader(partition)
            .and_then(|n| self.broker(n))
    }

    /// Builds a snapshot from a Metadata response. The brokers and controller are replaced;
    /// topics in the response replace those in `previous`, which keeps the topics the
    /// response does not mention (a request for some topics only).
    pub fn from_response(previous: &Cluster, response: &MetadataResponse) -> Cluster {
        let mut cluster = Cluster {
            cluster_id: response.cluster_id.clone(),
            controller: (response.controller_id >= 0).then_some(response.controller_id),
            brokers: HashMap::new(),
            topics: previous.topics.clone(),
            topic_errors: HashMap::new(),
        };
        for b in &response.brokers {
            cluster.brokers.insert(
                b.node_id,
                BrokerInfo {
                    node_id: b.node_id,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                },
            );
        }
        for t in &response.topics {
            let Some(name) = t.name.clone() else { continue };
            let code = ErrorCode::from(t.error_code);
            if !code.is_ok() {
                cluster.topics.remove(&name);
                cluster.topic_errors.insert(name, code);
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: (p.leader_id >= 0).then_some(p.leader_id),
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                    error: ErrorCode::from(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            // Kafka's partitions are dense; a response with holes is padded with leaderless
            // entries so indexing by partition stays valid.
            let dense = partitions
                .iter()
                .enumerate()
                .all(|(i, p)| p.partition == i as i32);
            if !dense {
                // Untrusted input: pad at most to twice the partitions actually received
                // (a broker naming partition i32::MAX must not make us allocate 2^31
                // entries); indices beyond that, or negative, are dropped.
                let limit =
                    i32::try_from(partitions.len().saturating_mul(2).max(16)).unwrap_or(i32::MAX);
                let before = partitions.len();
                partitions.retain(|p| (0..limit).contains(&p.partition));
                if partitions.len() != before {
                    tracing::warn!(topic = %name, dropped = before - partitions.len(),
                        "metadata names partitions far beyond the topic's partition count; ignored");
                }
                let max = partitions.last().map_or(-1, |p| p.partition);
                let mut filled: Vec<PartitionInfo> = (0..=max.max(-1))
                    .map(|i| PartitionInfo {
                        partition: i,
                        leader: None,
                        leader_epoch: -1,
                        replicas: Vec::new(),
                        isr: Vec::new(),
                        error: ErrorCode::LeaderNotAvailable,
                    })
                    .collect();
                for p in partitions {
                    if p.partition >= 0 {
                        let i = p.partition as usize;
                        filled[i] = p;
                    }
                }
                partitions = filled;
            }
            let available_partitions = partitions
                .iter()
                .filter(|p| p.leader.is_some_and(|l| cluster.brokers.contains_key(&l)))
                .map(|p| p.partition)
                .collect();
            cluster.topics.insert(
                name.clone(),
                Arc::new(TopicInfo {
                    name,
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                    available_partitions,
                }),
            );
        }
        cluster
    }
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    use super::*;

    fn response(partitions: &[i32]) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "h".into(),
                port: 9092,
                ..Default::default()
            }],
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                partitions: partitions
                    .iter()
                    .map(|&partition_index| MetadataResponsePartition {
                        partition_index,
                        leader_id: 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn holes_are_padded_with_leaderless_partitions() {
        let c = Cluster::from_response(&Cluster::default(), &response(&[2, 0]));
        let t = c.topic("t").unwrap();
        assert_eq!(t.partition_count(), 3);
        assert_eq!(t.leader(0), Some(1));
        assert_eq!(t.leader(1), None);
        assert_eq!(t.partitions[1].error, ErrorCode::LeaderNotAvailable);
        assert_eq!(t.available_partitions, [0, 2]);
    }

    #[test]
    fn absurd_partition_indexes_do_not_allocate_and_are_dropped() {
        let c = Cluster::from_response(&Cluster::default(), &response(&[0, i32::MAX, -5, 1]));
        let t = c.topic("t").unwrap();
        assert_eq!(t.partition_count(), 2);
        assert_eq!(t.available_partitions, [0, 1]);
    }
}
