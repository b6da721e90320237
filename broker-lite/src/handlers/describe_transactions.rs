//! DescribeTransactions (key 65), version 0 (KIP-664).
//!
//! One answer per requested transactional id (Kafka's
//! `TransactionCoordinator.handleDescribeTransactions`): its state name ("Empty", "Ongoing",
//! "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "PrepareEpochFence"),
//! producer id and epoch, timeout, start time (-1 without an open transaction) and the
//! partitions of the transaction grouped by topic; TRANSACTIONAL_ID_NOT_FOUND for an unknown
//! (or expiring) id, INVALID_REQUEST for an empty one, COORDINATOR_NOT_AVAILABLE while
//! shutting down.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_wire::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_wire::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse};

use crate::state::BrokerState;

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    // The coordinator's lock may be held while markers are written: not on an async worker.
    let s = state.clone();
    let ids = req.transactional_ids;
    super::blocking(move || describe(&s, &ids)).await
}

fn describe(state: &BrokerState, ids: &[String]) -> DescribeTransactionsResponse {
    DescribeTransactionsResponse {
        transaction_states: ids
            .iter()
            .map(|id| match state.txns().describe(id) {
                Ok(m) => {
                    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for (t, p) in &m.partitions {
                        topics.entry(t.clone()).or_default().push(*p);
                    }
                    TransactionState {
                        error_code: 0,
                        transactional_id: id.clone(),
                        transaction_state: m.state.name().to_string(),
                        transaction_timeout_ms: m.timeout_ms,
                        transaction_start_time_ms: m.start_timestamp,
                        producer_id: m.producer_id,
                        producer_epoch: m.producer_epoch,
                        topics: topics
                            .into_iter()
                            .map(|(topic, partitions)| TopicData {
                                topic,
                                partitions,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }
                }
                Err(code) => TransactionState {
                    error_code: code.code(),
                    transactional_id: id.clone(),
                    ..Default::default()
                },
            })
            .collect(),
        ..Default::default()
    }
}
