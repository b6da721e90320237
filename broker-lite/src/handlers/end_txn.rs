//! EndTxn (key 26), versions 0-4 (KIP-98; transaction version 1 semantics).
//!
//! Commits or aborts the open transaction (Kafka's `TransactionCoordinator.handleEndTransaction`):
//! PrepareCommit/PrepareAbort is written to `__transaction_state`, then a commit or abort
//! marker to every partition of the transaction (including `__consumer_offsets` partitions,
//! whose pending transactional offsets are then materialized or dropped), then
//! CompleteCommit/CompleteAbort; the answer comes after the markers (earlier than Kafka,
//! which answers once Prepare is written, never later). A retry of a completed end
//! (CompleteCommit with commit, CompleteAbort with abort) answers NONE; the other outcome, or
//! no open transaction (Empty), INVALID_TXN_STATE; while markers are still being written,
//! CONCURRENT_TRANSACTIONS for the same outcome. Another producer id is
//! INVALID_PRODUCER_ID_MAPPING, another epoch PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before
//! v2, as `KafkaApis`), an empty transactional id INVALID_REQUEST. v5 (KIP-890's epoch bump
//! per transaction) is not served.

use std::sync::Arc;

use kafka_wire::messages::{EndTxnRequest, EndTxnResponse};
use kafka_wire::ErrorCode;

use crate::state::{now_ms, BrokerState};

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let s = state.clone();
    let result = super::blocking(move || {
        s.txns().end_txn(
            &s,
            &req.transactional_id,
            req.producer_id,
            req.producer_epoch,
            req.committed,
            now_ms(),
        )
    })
    .await;
    let code = super::add_partitions_to_txn::fenced_for(
        result.err().unwrap_or(ErrorCode::None),
        version,
        2,
    );
    EndTxnResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
