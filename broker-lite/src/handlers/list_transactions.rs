//! ListTransactions (key 66), versions 0-1 (KIP-664; v1's duration filter is KIP-994).
//!
//! Every transactional id the coordinator knows (Kafka's
//! `TransactionStateManager.listTransactionStates`), filtered by state names, producer ids
//! and (v1) `DurationFilter`: with a filter >= 0 only transactions that started more than
//! that many milliseconds ago are listed. Empty filters match everything. State filter values
//! that are not state names are echoed in `UnknownStateFilters` and otherwise ignored (as
//! Kafka: if none is known, states do not filter). COORDINATOR_NOT_AVAILABLE while shutting
//! down.

use std::sync::Arc;

use kafka_wire::messages::list_transactions_response::TransactionState;
use kafka_wire::messages::{ListTransactionsRequest, ListTransactionsResponse};

use crate::state::{now_ms, BrokerState};

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    // The coordinator's lock may be held while markers are written: not on an async worker.
    let s = state.clone();
    super::blocking(move || list(&s, &req, version)).await
}

fn list(
    state: &BrokerState,
    req: &ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let duration = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    match state.txns().list(
        &req.state_filters,
        &req.producer_id_filters,
        duration,
        now_ms(),
    ) {
        Ok((unknown, listed)) => ListTransactionsResponse {
            unknown_state_filters: unknown,
            transaction_states: listed
                .into_iter()
                .map(|l| TransactionState {
                    transactional_id: l.transactional_id,
                    producer_id: l.producer_id,
                    transaction_state: l.state.name().to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
        Err(code) => ListTransactionsResponse {
            error_code: code.code(),
            ..Default::default()
        },
    }
}
