//! OffsetDelete (key 47), version 0.
//!
//! Deletes committed offsets of a group (tombstones in `__consumer_offsets`). As Kafka's
//! `validateOffsetDelete`: any offset of an Empty group; in a non-empty consumer group only
//! those of topics no member subscribes to (the others get GROUP_SUBSCRIBED_TO_TOPIC); a
//! non-empty group of another protocol type is NON_EMPTY_GROUP. Top-level errors:
//! GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, INVALID_GROUP_ID (empty id). Partitions of a topic
//! that does not exist get UNKNOWN_TOPIC_OR_PARTITION. Partitions without a committed offset
//! succeed.

use std::sync::Arc;

use kafka_wire::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_wire::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_wire::ErrorCode;

use crate::state::{now_ms, BrokerState};

fn topic_result(name: String, parts: Vec<(i32, ErrorCode)>) -> OffsetDeleteResponseTopic {
    OffsetDeleteResponseTopic {
        name,
        partitions: parts
            .into_iter()
            .map(|(partition_index, code)| OffsetDeleteResponsePartition {
                partition_index,
                error_code: code.code(),
            })
            .collect(),
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    if req.group_id.is_empty() {
        return OffsetDeleteResponse {
            error_code: ErrorCode::InvalidGroupId.code(),
            ..Default::default()
        };
    }
    let mut unknown = Vec::new();
    let mut known = Vec::new();
    for t in req.topics {
        let parts: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        if state.topic(&t.name).is_some() {
            known.push((t.name, parts));
        } else {
            unknown.push((t.name, parts));
        }
    }
    let s = state.clone();
    let group_id = req.group_id;
    let result =
        super::blocking(move || s.groups().delete_offsets(&s, &group_id, known, now_ms())).await;
    match result {
        Err(code) => OffsetDeleteResponse {
            error_code: code.code(),
            ..Default::default()
        },
        Ok(done) => OffsetDeleteResponse {
            error_code: 0,
            topics: done
                .into_iter()
                .map(|(t, parts)| topic_result(t, parts))
                .chain(unknown.into_iter().map(|(t, parts)| {
                    let parts = parts
                        .into_iter()
                        .map(|p| (p, ErrorCode::UnknownTopicOrPartition))
                        .collect();
                    topic_result(t, parts)
                }))
                .collect(),
            ..Default::default()
        },
    }
}
