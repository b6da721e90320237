//! TxnOffsetCommit (key 28), versions 0-4 (KIP-98; KIP-447 group metadata from v3).
//!
//! Sent by a transactional producer to the group coordinator after AddOffsetsToTxn: the
//! offsets are written to the group's `__consumer_offsets` partition as one transactional
//! batch of the producer (no sequence, written as the coordinator) and stay pending,
//! invisible to OffsetFetch, until the transaction's commit marker (then they replace the
//! committed offsets, unless a newer plain commit exists) or abort marker (dropped). From v3
//! the member is checked as Kafka's `validateOffsetCommit` for transactional commits:
//! generation -1 with no member id is not checked (no group management), otherwise
//! UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID or ILLEGAL_GENERATION; an unknown group with a
//! generation is ILLEGAL_GENERATION (Kafka 4.0's coordinator), without one it is created,
//! holding offsets only. Per partition: UNKNOWN_TOPIC_OR_PARTITION for a topic that does not
//! exist, OFFSET_METADATA_TOO_LARGE beyond `offset.metadata.max.bytes`; INVALID_GROUP_ID for
//! an empty group id. The leader epoch is stored from v2.

use std::sync::Arc;

use kafka_wire::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_wire::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_wire::ErrorCode;

use crate::group::OffsetAndMetadata;
use crate::state::{now_ms, BrokerState};

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let now = now_ms();
    let (codes, offsets) = super::offset_commit::check_partitions(
        state,
        &req.group_id,
        &req.topics,
        |t| (&t.name, &t.partitions),
        |p| {
            let o = OffsetAndMetadata {
                offset: p.committed_offset,
                leader_epoch: if version >= 2 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.clone().unwrap_or_default(),
                commit_timestamp: now,
            };
            (p.partition_index, o)
        },
    );
    let result = if offsets.is_empty() {
        Ok(())
    } else {
        let s = state.clone();
        let group_id = req.group_id.clone();
        let (member_id, instance, generation) = if version >= 3 {
            (
                req.member_id.clone(),
                req.group_instance_id.clone(),
                req.generation_id,
            )
        } else {
            (String::new(), None, -1)
        };
        let (pid, epoch) = (req.producer_id, req.producer_epoch);
        super::blocking(move || {
            s.groups().txn_commit_offsets(
                &s,
                &group_id,
                pid,
                epoch,
                &member_id,
                instance.as_deref(),
                generation,
                offsets,
                now,
            )
        })
        .await
    };
    let committed = result.err().unwrap_or(ErrorCode::None);
    TxnOffsetCommitResponse {
        topics: req
            .topics
            .into_iter()
            .zip(codes)
            .map(|(t, topic_codes)| TxnOffsetCommitResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .iter()
                    .zip(topic_codes)
                    .map(|(p, code)| TxnOffsetCommitResponsePartition {
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
