//! AddPartitionsToTxn (key 24), versions 0-3 (the client form; KIP-98).
//!
//! Adds partitions to the open transaction of a transactional id (Kafka's
//! `TransactionCoordinator.handleAddPartitionsToTransaction`): a partition of a topic that
//! does not exist (or beyond its partition count) answers UNKNOWN_TOPIC_OR_PARTITION and every
//! other partition OPERATION_NOT_ATTEMPTED, without touching the transaction (as
//! `KafkaApis`); otherwise every partition gets the coordinator's answer: NONE once the
//! transaction (Ongoing, with the partitions; a transaction starts here, with its start time)
//! is written to `__transaction_state`, INVALID_PRODUCER_ID_MAPPING for another producer id,
//! PRODUCER_FENCED for another epoch (INVALID_PRODUCER_EPOCH before v2, as `KafkaApis`),
//! CONCURRENT_TRANSACTIONS while the previous transaction's markers are written,
//! INVALID_REQUEST for an empty transactional id. Adding partitions already in the
//! transaction is a no-op. v4-5 (the brokers' batched and verify-only form, KIP-890) are not
//! served.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_wire::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_wire::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_wire::ErrorCode;

use crate::state::{now_ms, BrokerState};

/// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH for clients older than `since` (KIP-588), as
/// `KafkaApis` maps it.
pub(super) fn fenced_for(code: ErrorCode, version: i16, since: i16) -> ErrorCode {
    if code == ErrorCode::ProducerFenced && version < since {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let exists = |topic: &str, p: i32| {
        state
            .topic(topic)
            .is_some_and(|t| p >= 0 && p < t.partition_count())
    };
    let unknown: BTreeSet<(String, i32)> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| !exists(&t.name, **p))
                .map(|p| (t.name.clone(), *p))
        })
        .collect();
    let decided = if unknown.is_empty() {
        let partitions: BTreeSet<(String, i32)> = req
            .v3_and_below_topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), *p)))
            .collect();
        let s = state.clone();
        let id = req.v3_and_below_transactional_id.clone();
        let (pid, epoch) = (
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
        );
        let result = super::blocking(move || {
            s.txns()
                .add_partitions(&s, &id, pid, epoch, partitions, now_ms())
        })
        .await;
        Some(fenced_for(
            result.err().unwrap_or(ErrorCode::None),
            version,
            2,
        ))
    } else {
        None
    };
    AddPartitionsToTxnResponse {
        results_by_topic_v3_and_below: req
            .v3_and_below_topics
            .into_iter()
            .map(|t| AddPartitionsToTxnTopicResult {
                results_by_partition: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let code = decided.unwrap_or_else(|| {
                            if unknown.contains(&(t.name.clone(), *p)) {
                                ErrorCode::UnknownTopicOrPartition
                            } else {
                                ErrorCode::OperationNotAttempted
                            }
                        });
                        AddPartitionsToTxnPartitionResult {
                            partition_index: *p,
                            partition_error_code: code.code(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                name: t.name,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_fenced_maps_for_old_versions() {
        assert_eq!(
            fenced_for(ErrorCode::ProducerFenced, 1, 2),
            ErrorCode::InvalidProducerEpoch
        );
        assert_eq!(
            fenced_for(ErrorCode::ProducerFenced, 2, 2),
            ErrorCode::ProducerFenced
        );
        assert_eq!(
            fenced_for(ErrorCode::ConcurrentTransactions, 0, 2),
            ErrorCode::ConcurrentTransactions
        );
    }
}
