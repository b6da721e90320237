//! Metadata (key 3), versions 0-12.
//!
//! This broker is the only broker, the controller and the leader of every partition. A null
//! topic list (v1+; an empty list in v0) asks for every topic. Unknown topics are created when
//! `auto.create.topics.enable` is on and the request allows it (v4+ `AllowAutoTopicCreation`),
//! with `num.partitions` partitions (`__consumer_offsets` as the group coordinator creates
//! it); creation is synchronous, so the answer already carries the partitions. Lookups by
//! topic id (v12+) answer UNKNOWN_TOPIC_ID for unknown ids; v10 and v11 carry the field but
//! Kafka refuses ids there (INVALID_REQUEST), and so do we.
//! Authorized operations (v8+) report everything allowed: broker-lite has no ACLs.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_wire::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_wire::messages::{MetadataRequest, MetadataResponse};
use kafka_wire::{ErrorCode, Uuid};

use crate::state::{validate_topic_name, BrokerState, Topic};

/// Bitfield of every topic ACL operation (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS).
pub(crate) const ALL_TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Bitfield of every cluster ACL operation (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE).
pub(crate) const ALL_CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// Whether a topic is one of Kafka's internal topics.
pub(crate) fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

pub(crate) fn describe_topic(
    state: &BrokerState,
    topic: &Topic,
    with_ops: bool,
) -> MetadataResponseTopic {
    let node = state.config.node_id;
    MetadataResponseTopic {
        error_code: ErrorCode::None.code(),
        name: Some(topic.name.clone()),
        topic_id: topic.id,
        is_internal: is_internal(&topic.name),
        partitions: topic
            .all_partitions()
            .iter()
            .map(|p| MetadataResponsePartition {
                error_code: 0,
                partition_index: p.index,
                leader_id: node,
                leader_epoch: p.log().leader_epoch(),
                replica_nodes: vec![node],
                isr_nodes: vec![node],
                offline_replicas: Vec::new(),
                ..Default::default()
            })
            .collect(),
        topic_authorized_operations: if with_ops {
            ALL_TOPIC_OPERATIONS
        } else {
            i32::MIN
        },
        ..Default::default()
    }
}

fn error_topic(name: Option<String>, id: Uuid, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: code.code(),
        name,
        topic_id: id,
        topic_authorized_operations: i32::MIN,
        ..Default::default()
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let with_ops = req.include_topic_authorized_operations;
    let all = match &req.topics {
        None => true,
        Some(t) => version == 0 && t.is_empty(),
    };
    let mut topics = Vec::new();
    // KafkaApis: "Topic IDs are not supported for versions 10 and 11" -> INVALID_REQUEST for
    // every requested topic.
    let by_id = req
        .topics
        .iter()
        .flatten()
        .any(|t| t.name.is_none() || t.topic_id != Uuid::ZERO);
    if (10..12).contains(&version) && by_id {
        topics = req
            .topics
            .unwrap_or_default()
            .into_iter()
            // Response names are non-nullable before v12.
            .map(|t| {
                error_topic(
                    Some(t.name.unwrap_or_default()),
                    t.topic_id,
                    ErrorCode::InvalidRequest,
                )
            })
            .collect();
    } else if all {
        topics = state
            .all_topics()
            .iter()
            .map(|t| describe_topic(state, t, with_ops))
            .collect();
    } else {
        let auto_create = state.config.get_bool("auto.create.topics.enable")
            && (version < 4 || req.allow_auto_topic_creation);
        for wanted in req.topics.unwrap_or_default() {
            let Some(name) = wanted.name.clone() else {
                // Lookup by topic id (v10+).
                topics.push(match state.topic_by_id(&wanted.topic_id) {
                    Some(t) => describe_topic(state, &t, with_ops),
                    None => error_topic(None, wanted.topic_id, ErrorCode::UnknownTopicId),
                });
                continue;
            };
            if let Some(t) = state.topic(&name) {
                topics.push(describe_topic(state, &t, with_ops));
                continue;
            }
            if validate_topic_name(&name).is_err() {
                topics.push(error_topic(
                    Some(name),
                    Uuid::ZERO,
                    ErrorCode::InvalidTopicException,
                ));
                continue;
            }
            if !auto_create {
                topics.push(error_topic(
                    Some(name),
                    Uuid::ZERO,
                    ErrorCode::UnknownTopicOrPartition,
                ));
                continue;
            }
            let s = state.clone();
            let n = name.clone();
            let created = super::blocking(move || {
                if n == crate::group::OFFSETS_TOPIC {
                    // Created as the group coordinator creates it (compacted, its own count).
                    return s.groups().ensure_offsets_topic(&s);
                }
                s.create_topic(&n, s.config.num_partitions(), 1, BTreeMap::new())
            })
            .await;
            topics.push(match created {
                Ok(t) => describe_topic(state, &t, with_ops),
                // Lost a race with another creator: describe what exists.
                Err(_) => match state.topic(&name) {
                    Some(t) => describe_topic(state, &t, with_ops),
                    None => error_topic(Some(name), Uuid::ZERO, ErrorCode::LeaderNotAvailable),
                },
            });
        }
    }
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: state.config.node_id,
            host: state.advertised_host.clone(),
            port: state.advertised_port,
            rack: None,
            ..Default::default()
        }],
        cluster_id: Some(state.cluster_id.clone()),
        controller_id: state.config.node_id,
        topics,
        cluster_authorized_operations: if req.include_cluster_authorized_operations {
            ALL_CLUSTER_OPERATIONS
        } else {
            i32::MIN
        },
        ..Default::default()
    }
}
