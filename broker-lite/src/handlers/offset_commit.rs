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

/// Per (topic index, partition index): the code decided before the coordinator, if any.
pub(super) type PartitionCodes = Vec<Vec<Option<ErrorCode>>>;

/// The offsets the coordinator is asked to commit: `(topic, partition, offset)`.
pub(super) type Accepted = Vec<(String, i32, OffsetAndMetadata)>;

/// The per-partition checks of OffsetCommit and TxnOffsetCommit made before the coordinator:
/// INVALID_GROUP_ID for an empty group id, UNKNOWN_TOPIC_OR_PARTITION for a topic that does
/// not exist, OFFSET_METADATA_TOO_LARGE beyond `offset.metadata.max.bytes`. `topic` gives a
/// request topic's name and partitions, `offset` a partition's index and offset.
pub(super) fn check_partitions<T, P>(
    state: &BrokerState,
    group_id: &str,
    topics: &[T],
    topic: impl Fn(&T) -> (&str, &[P]),
    offset: impl Fn(&P) -> (i32, OffsetAndMetadata),
) -> (PartitionCodes, Accepted) {
    let max_metadata = state.config.get_i64("offset.metadata.max.bytes");
    let mut codes = Vec::with_capacity(topics.len());
    let mut accepted = Vec::new();
    for t in topics {
        let (name, partitions) = topic(t);
        let exists = state.topic(name).is_some();
        let mut topic_codes = Vec::with_capacity(partitions.len());
        for p in partitions {
            let (index, o) = offset(p);
            let code = if group_id.is_empty() {
                Some(ErrorCode::InvalidGroupId)
            } else if !exists {
                Some(ErrorCode::UnknownTopicOrPartition)
            } else if o.metadata.len() as i64 > max_metadata {
                Some(ErrorCode::OffsetMetadataTooLarge)
            } else {
                accepted.push((name.to_string(), index, o));
                None
            };
            topic_codes.push(code);
        }
        codes.push(topic_codes);
    }
    (codes, accepted)
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let now = now_ms();
    let (codes, offsets) = check_partitions(
        state,
        &req.group_id,
        &req.topics,
        |t| (&t.name, &t.partitions),
        |p| {
            let o = OffsetAndMetadata {
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.clone().unwrap_or_default(),
                commit_timestamp: if version == 1 && p.commit_timestamp != -1 {
                    p.commit_timestamp
                } else {
                    now
                },
            };
            (p.partition_index, o)
        },
    );
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
