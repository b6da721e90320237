//! CreateTopics (key 19), versions 2-7.
//!
//! Kafka's rules: a name twice in one request is INVALID_REQUEST for each occurrence;
//! `-1` partitions or replication factor (v4+) take `num.partitions` /
//! `default.replication.factor`; explicit assignments may not be combined with counts and
//! may only name this broker (INVALID_REPLICA_ASSIGNMENT); a replication factor above 1 is
//! INVALID_REPLICATION_FACTOR (there is one broker); unknown or malformed configs are
//! INVALID_CONFIG; `validate_only` checks everything and creates nothing. v5+ responses carry
//! the partition count, replication factor and effective configs; v7+ the topic id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_wire::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_wire::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_wire::{ErrorCode, Uuid};

use crate::state::{AdminError, BrokerState};
use crate::topic_config::effective_topic_configs;

fn failed(name: String, code: ErrorCode, message: String) -> CreatableTopicResult {
    CreatableTopicResult {
        name,
        topic_id: Uuid::ZERO,
        error_code: code.code(),
        error_message: Some(message),
        num_partitions: -1,
        replication_factor: -1,
        configs: None,
        ..Default::default()
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: CreateTopicsRequest,
    _version: i16,
) -> CreateTopicsResponse {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.clone()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        if seen.get(&t.name).copied().unwrap_or(0) > 1 {
            results.push(failed(
                t.name.clone(),
                ErrorCode::InvalidRequest,
                format!(
                    "Create topics request from client contains duplicate topic name {}",
                    t.name
                ),
            ));
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut bad_config = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.clone(), v.clone());
                }
                None => {
                    bad_config = Some(format!(
                        "Null value not supported for topic configs: {}",
                        c.name
                    ))
                }
            }
        }
        if let Some(msg) = bad_config {
            results.push(failed(t.name, ErrorCode::InvalidConfig, msg));
            continue;
        }
        let (partitions, rf) = if t.assignments.is_empty() {
            let p = if t.num_partitions == -1 {
                state.config.num_partitions()
            } else {
                t.num_partitions
            };
            let rf = if t.replication_factor == -1 {
                state
                    .config
                    .get_i64("default.replication.factor")
                    .clamp(1, i16::MAX as i64) as i16
            } else {
                t.replication_factor
            };
            (p, rf)
        } else {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                results.push(failed(
                    t.name,
                    ErrorCode::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
                continue;
            }
            let node = state.config.node_id;
            let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
            indexes.sort_unstable();
            let contiguous = indexes.iter().enumerate().all(|(i, p)| *p == i as i32);
            let only_us = t
                .assignments
                .iter()
                .all(|a| !a.broker_ids.is_empty() && a.broker_ids.iter().all(|b| *b == node));
            if !contiguous || !only_us {
                results.push(failed(
                    t.name,
                    ErrorCode::InvalidReplicaAssignment,
                    format!("Replica assignments must name broker {node} only and partitions 0..n"),
                ));
                continue;
            }
            let rf = t
                .assignments
                .iter()
                .map(|a| a.broker_ids.len())
                .max()
                .unwrap_or(1) as i16;
            (t.assignments.len() as i32, rf)
        };
        let s = state.clone();
        let name = t.name.clone();
        let validate_only = req.validate_only;
        let outcome = super::blocking(move || {
            if validate_only {
                s.validate_new_topic(&name, partitions, rf, &configs)
                    .map(|()| (Uuid::ZERO, configs))
            } else {
                s.create_topic(&name, partitions, rf, configs.clone())
                    .map(|t| (t.id, configs))
            }
        })
        .await;
        match outcome {
            Ok((id, overrides)) => {
                let configs = effective_topic_configs(&state.config, &overrides)
                    .into_iter()
                    .map(|c| CreatableTopicConfigs {
                        name: c.name.to_string(),
                        value: Some(c.value),
                        read_only: false,
                        config_source: c.source.describe_id(),
                        is_sensitive: false,
                        ..Default::default()
                    })
                    .collect();
                results.push(CreatableTopicResult {
                    name: t.name,
                    topic_id: id,
                    error_code: 0,
                    error_message: None,
                    num_partitions: partitions,
                    replication_factor: rf,
                    configs: Some(configs),
                    ..Default::default()
                });
            }
            Err(e) => {
                let code = e.code();
                let msg = match &e {
                    AdminError::TopicExists(n) => format!("Topic '{n}' already exists."),
                    other => other.to_string(),
                };
                results.push(failed(t.name, code, msg));
            }
        }
    }
    CreateTopicsResponse {
        topics: results,
        ..Default::default()
    }
}
