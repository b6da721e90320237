//! AddOffsetsToTxn (key 25), versions 0-4 (KIP-98).
//!
//! Adds the group's `__consumer_offsets` partition (`abs(javaHashCode(groupId)) %
//! partitions`, creating the topic if needed) to the transaction, with the checks of
//! AddPartitionsToTxn (Kafka's `KafkaApis.handleAddOffsetsToTxnRequest`): NONE once written,
//! INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2),
//! CONCURRENT_TRANSACTIONS, INVALID_REQUEST for an empty transactional id. An empty group id
//! is INVALID_GROUP_ID. The offsets themselves come with TxnOffsetCommit, sent to the group
//! coordinator.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_wire::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_wire::ErrorCode;

use crate::group::records::partition_for;
use crate::group::OFFSETS_TOPIC;
use crate::state::{now_ms, BrokerState};

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let code = if req.group_id.is_empty() {
        ErrorCode::InvalidGroupId
    } else {
        let s = state.clone();
        let result = super::blocking(move || {
            let topic = s.groups().ensure_offsets_topic(&s).map_err(|e| {
                tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
                ErrorCode::CoordinatorNotAvailable
            })?;
            let partition = partition_for(&req.group_id, topic.partition_count());
            s.txns().add_partitions(
                &s,
                &req.transactional_id,
                req.producer_id,
                req.producer_epoch,
                BTreeSet::from([(OFFSETS_TOPIC.to_string(), partition)]),
                now_ms(),
            )
        })
        .await;
        super::add_partitions_to_txn::fenced_for(
            result.err().unwrap_or(ErrorCode::None),
            version,
            2,
        )
    };
    AddOffsetsToTxnResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
