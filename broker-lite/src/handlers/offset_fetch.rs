//! OffsetFetch (key 9), versions 0-9.
//!
//! v0-v7 ask for one group, v8+ for a batch of groups (KIP-709), each with a list of topic
//! partitions or null (v2+) for every committed offset of the group. A partition without a
//! committed offset (or of an unknown group) answers offset -1, leader epoch -1, metadata ""
//! and NONE, as Kafka. Group-level errors (INVALID_GROUP_ID for an empty id) are the
//! top-level code from v2, and each partition's code before. With `RequireStable` (v7+,
//! KIP-447) a partition for which a transaction has an uncommitted offset (TxnOffsetCommit
//! not yet followed by the transaction's marker) answers UNSTABLE_OFFSET_COMMIT with offset
//! -1, as Kafka; without it the last committed offset is answered. v9's member id and epoch
//! are not checked for classic groups (as Kafka). The leader epoch is answered from v5.

use std::sync::Arc;

use kafka_wire::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_wire::messages::{OffsetFetchRequest, OffsetFetchResponse};
use kafka_wire::ErrorCode;

use crate::group::{FetchedOffset, TopicFetched};
use crate::state::BrokerState;

/// One group's answer: its code and offsets (for the requested partitions on error).
fn fetch(
    state: &BrokerState,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> (ErrorCode, Vec<TopicFetched>) {
    let error = if group_id.is_empty() {
        Err(ErrorCode::InvalidGroupId)
    } else {
        state
            .groups()
            .fetch_offsets(group_id, topics.clone(), require_stable)
    };
    match error {
        Ok(offsets) => (ErrorCode::None, offsets),
        Err(code) => {
            let requested = topics
                .unwrap_or_default()
                .into_iter()
                .map(|(t, parts)| (t, parts.into_iter().map(|p| (p, Ok(None))).collect()))
                .collect();
            (code, requested)
        }
    }
}

/// A partition's offset, leader epoch, metadata and code.
fn answer_of(found: FetchedOffset) -> (i64, i32, String, ErrorCode) {
    match found {
        Ok(Some(o)) => (o.offset, o.leader_epoch, o.metadata, ErrorCode::None),
        Ok(None) => (-1, -1, String::new(), ErrorCode::None),
        Err(code) => (-1, -1, String::new(), code),
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
                let (code, offsets) = fetch(state, &g.group_id, topics, req.require_stable);
                OffsetFetchResponseGroup {
                    group_id: g.group_id,
                    error_code: code.code(),
                    topics: offsets
                        .into_iter()
                        .map(|(name, parts)| OffsetFetchResponseTopics {
                            name,
                            partitions: parts
                                .into_iter()
                                .map(|(p, found)| {
                                    let (offset, epoch, metadata, code) = answer_of(found);
                                    OffsetFetchResponsePartitions {
                                        partition_index: p,
                                        committed_offset: offset,
                                        committed_leader_epoch: epoch,
                                        metadata: Some(metadata),
                                        error_code: code.code(),
                                        ..Default::default()
                                    }
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
    let require_stable = version >= 7 && req.require_stable;
    let (code, offsets) = fetch(state, &req.group_id, topics, require_stable);
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
                    .map(|(p, found)| {
                        let (offset, epoch, metadata, code) = answer_of(found);
                        OffsetFetchResponsePartition {
                            partition_index: p,
                            committed_offset: offset,
                            committed_leader_epoch: if version >= 5 { epoch } else { -1 },
                            metadata: Some(metadata),
                            error_code: if code == ErrorCode::None {
                                partition_code.code()
                            } else {
                                code.code()
                            },
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
