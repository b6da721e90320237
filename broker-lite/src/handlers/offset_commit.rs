//! OffsetCommit (key 8), versions 0-9.
//!
//! Commits are validated as Kafka's `ClassicGroup.validateOffsetCommit`: a commit with
//! generation -1 and no member id (v0, or simple/standalone consumers) is accepted for an
//! Empty or unknown group (which is created, holding offsets only); otherwise the member must
//! belong to the group (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID), the generation must be the
//! group's (ILLEGAL_GENERATION; for an unknown group GROUP_ID_NOT_FOUND from v9,
//! ILLEGAL_GENERATION before) and the group must not be waiting for its assignment
//! (REBALANCE_IN_PROGRESS). Every accepted offset of the request is appended as one batch to
//! `__consumer_offsets` (`OffsetCommitKey`/`OffsetCommitValue`) before the answer. Per
//! partition: UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist,
//! OFFSET_METADATA_TOO_LARGE beyond `offset.metadata.max.bytes`. INVALID_GROUP_ID for an empty
//! group id. v1's per-partition commit timestamp is kept when set; v2-v4's retention time is
//! ignored (offsets do not expire in broker-lite); v6+ stores the leader epoch.

use std::sync::Arc;

use kafka_wire::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_wire::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_wire::ErrorCode;

use crate::group::OffsetAndMetadata;
use crate::state::{now_ms, BrokerState};

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let now = now_ms();
    let max_metadata = state.config.get_i64("offset.metadata.max.bytes");
    // Per (topic index, partition index): the code decided before the coordinator, if any.
    let mut codes: Vec<Vec<Option<ErrorCode>>> = Vec::with_capacity(req.topics.len());
    let mut offsets = Vec::new();
    for t in &req.topics {
        let exists = state.topic(&t.name).is_some();
        let mut topic_codes = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let metadata = p.committed_metadata.clone().unwrap_or_default();
            let code = if req.group_id.is_empty() {
                Some(ErrorCode::InvalidGroupId)
            } else if !exists {
                Some(ErrorCode::UnknownTopicOrPartition)
            } else if metadata.len() as i64 > max_metadata {
                Some(ErrorCode::OffsetMetadataTooLarge)
            } else {
                offsets.push((
                    t.name.clone(),
                    p.partition_index,
                    OffsetAndMetadata {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata,
                        commit_timestamp: if version == 1 && p.commit_timestamp != -1 {
                            p.commit_timestamp
                        } else {
                            now
                        },
                    },
                ));
                None
            };
            topic_codes.push(code);
        }
        codes.push(topic_codes);
    }
    let result = if offsets.is_empty() {
        Ok(())
    } else {
        let s = state.clone();
        let group_id = req.group_id.clone();
        let member_id = if version >= 1 {
            req.member_id.clone()
        } else {
            String::new()
        };
        let generation = if version >= 1 {
            req.generation_id_or_member_epoch
        } else {
            -1
        };
        let instance = req.group_instance_id.clone();
        super::blocking(move || {
            s.groups().commit_offsets(
                &s,
                &group_id,
                &member_id,
                instance.as_deref(),
                generation,
                version,
                offsets,
                now,
            )
        })
        .await
    };
    let committed = result.err().unwrap_or(ErrorCode::None);
    OffsetCommitResponse {
        topics: req
            .topics
            .into_iter()
            .zip(codes)
            .map(|(t, topic_codes)| OffsetCommitResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .iter()
                    .zip(topic_codes)
                    .map(|(p, code)| OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.unwrap_or(committed).code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
