//! OffsetFetch (key 9), versions 0-9.
//!
//! v0-v7 ask for one group, v8+ for a batch of groups (KIP-709), each with a list of topic
//! partitions or null (v2+) for every committed offset of the group. A partition without a
//! committed offset (or of an unknown group) answers offset -1, leader epoch -1, metadata ""
//! and NONE, as Kafka. Group-level errors (INVALID_GROUP_ID for an empty id) are the
//! top-level code from v2, and each partition's code before. `RequireStable` (v7+) has nothing
//! to wait for (no transactional offset commits), and v9's member id and epoch are not checked
//! for classic groups (as Kafka). The leader epoch is answered from v5.

use std::sync::Arc;

use kafka_wire::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_wire::messages::{OffsetFetchRequest, OffsetFetchResponse};
use kafka_wire::ErrorCode;

use crate::group::TopicOffsets;
use crate::state::BrokerState;

/// One group's answer: its code and offsets (for the requested partitions on error).
fn fetch(
    state: &BrokerState,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> (ErrorCode, Vec<TopicOffsets>) {
    let error = if group_id.is_empty() {
        Err(ErrorCode::InvalidGroupId)
    } else {
        state.groups().fetch_offsets(group_id, topics.clone())
    };
    match error {
        Ok(offsets) => (ErrorCode::None, offsets),
        Err(code) => {
            let requested = topics
                .unwrap_or_default()
                .into_iter()
                .map(|(t, parts)| (t, parts.into_iter().map(|p| (p, None)).collect()))
                .collect();
            (code, requested)
        }
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let (code, offsets) = fetch(state, &g.group_id, topics);
                OffsetFetchResponseGroup {
                    group_id: g.group_id,
                    error_code: code.code(),
                    topics: offsets
                        .into_iter()
                        .map(|(name, parts)| OffsetFetchResponseTopics {
                            name,
                            partitions: parts
                                .into_iter()
                                .map(|(p, o)| OffsetFetchResponsePartitions {
                                    partition_index: p,
                                    committed_offset: o.as_ref().map_or(-1, |o| o.offset),
                                    committed_leader_epoch: o
                                        .as_ref()
                                        .map_or(-1, |o| o.leader_epoch),
                                    metadata: Some(o.map(|o| o.metadata).unwrap_or_default()),
                                    error_code: 0,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect();
        return OffsetFetchResponse {
            groups,
            ..Default::default()
        };
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect::<Vec<_>>()
    });
    let (code, offsets) = fetch(state, &req.group_id, topics);
    // Before v2 there is no top-level code: each partition carries it.
    let partition_code = if version < 2 { code } else { ErrorCode::None };
    OffsetFetchResponse {
        error_code: if version >= 2 { code.code() } else { 0 },
        topics: offsets
            .into_iter()
            .map(|(name, parts)| OffsetFetchResponseTopic {
                name,
                partitions: parts
                    .into_iter()
                    .map(|(p, o)| OffsetFetchResponsePartition {
                        partition_index: p,
                        committed_offset: o.as_ref().map_or(-1, |o| o.offset),
                        committed_leader_epoch: if version >= 5 {
                            o.as_ref().map_or(-1, |o| o.leader_epoch)
                        } else {
                            -1
                        },
                        metadata: Some(o.map(|o| o.metadata).unwrap_or_default()),
                        error_code: partition_code.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
