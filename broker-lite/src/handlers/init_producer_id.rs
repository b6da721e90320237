//! InitProducerId (key 22), versions 0-5 (every version of the spec; KIP-98, KIP-360).
//!
//! Idempotent producers (`transactional_id` null) always get a fresh producer id with epoch
//! 0, as Kafka's `TransactionCoordinator.handleInitProducerId` does for a null transactional
//! id; the `producer_id` / `producer_epoch` of v3+ (KIP-360) are then ignored (an idempotent
//! producer bumps its epoch itself). As in `KafkaApis`, giving only one of `producer_id` and
//! `producer_epoch` is INVALID_REQUEST. Ids come from blocks of 1000 reserved in
//! `<data dir>/broker-lite-producer-ids` before any id of the block is handed out, so no id is
//! ever handed out twice, across restarts too. If a block cannot be persisted the answer is
//! COORDINATOR_LOAD_IN_PROGRESS (retriable: what Kafka answers while it has no block of ids).
//!
//! A transactional id goes to the transaction coordinator (`crate::txn`, Kafka's
//! `TransactionCoordinator.handleInitProducerId`): an empty id is INVALID_REQUEST, a timeout
//! above `transaction.max.timeout.ms` (or <= 0) INVALID_TRANSACTION_TIMEOUT; a new id gets a
//! fresh producer id with epoch 0; an existing one gets its epoch bumped (a new producer id
//! with epoch 0 once the epoch is exhausted), which fences the previous instance. If that
//! instance left a transaction open, the coordinator aborts it first (with the bumped epoch)
//! and answers CONCURRENT_TRANSACTIONS: the client retries and gets the next epoch. While
//! markers are being written the answer is CONCURRENT_TRANSACTIONS too. With v3+'s
//! `producer_id`/`producer_epoch` (KIP-360) a retry of the same bump gets the same answer and
//! a stale producer PRODUCER_FENCED, which is INVALID_PRODUCER_EPOCH before v4 (as
//! `KafkaApis`). Error responses carry producer id -1 and epoch -1, as Kafka's.

use std::sync::Arc;

use kafka_wire::messages::{InitProducerIdRequest, InitProducerIdResponse};
use kafka_wire::ErrorCode;
use tracing::{debug, error};

use crate::producer_ids::ProducerIdError;
use crate::state::{now_ms, BrokerState};

/// `RecordBatch.NO_PRODUCER_ID`.
const NO_PRODUCER_ID: i64 = -1;
/// `RecordBatch.NO_PRODUCER_EPOCH`.
const NO_PRODUCER_EPOCH: i16 = -1;

fn failed(code: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: code.code(),
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        ..Default::default()
    }
}

/// The answer that needs no producer id, if the request does not get one.
fn refusal(req: &InitProducerIdRequest) -> Option<ErrorCode> {
    if req.transactional_id.as_deref() == Some("") {
        return Some(ErrorCode::InvalidRequest);
    }
    let given_id = req.producer_id != NO_PRODUCER_ID;
    let given_epoch = req.producer_epoch != NO_PRODUCER_EPOCH;
    if given_id != given_epoch {
        return Some(ErrorCode::InvalidRequest);
    }
    None
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: &InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    if let Some(code) = refusal(req) {
        debug!(
            transactional_id = ?req.transactional_id,
            error = code.name(),
            "InitProducerId refused"
        );
        return failed(code);
    }
    if let Some(transactional_id) = req.transactional_id.clone() {
        let expected =
            (req.producer_id != NO_PRODUCER_ID).then_some((req.producer_id, req.producer_epoch));
        let timeout = req.transaction_timeout_ms;
        let s = state.clone();
        let result = super::blocking(move || {
            s.txns()
                .init_producer_id(&s, &transactional_id, timeout, expected, now_ms())
        })
        .await;
        return match result {
            Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
                error_code: 0,
                producer_id,
                producer_epoch,
                ..Default::default()
            },
            Err(ErrorCode::ProducerFenced) if version < 4 => {
                failed(ErrorCode::InvalidProducerEpoch)
            }
            Err(code) => failed(code),
        };
    }
    let s = state.clone();
    match super::blocking(move || s.allocate_producer_id()).await {
        Ok(producer_id) => {
            debug!(producer_id, "allocated a producer id");
            InitProducerIdResponse {
                error_code: 0,
                producer_id,
                producer_epoch: 0,
                ..Default::default()
            }
        }
        Err(e @ ProducerIdError::Exhausted) => {
            error!(error = %e, "InitProducerId failed");
            failed(ErrorCode::UnknownServerError)
        }
        Err(e) => {
            error!(error = %e, "InitProducerId failed");
            failed(ErrorCode::CoordinatorLoadInProgress)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        let idempotent = InitProducerIdRequest {
            transactional_id: None,
            ..Default::default()
        };
        assert_eq!(refusal(&idempotent), None);
        // KIP-360 fields given together are fine (and ignored for a null transactional id).
        let bump = InitProducerIdRequest {
            producer_id: 5,
            producer_epoch: 2,
            ..idempotent.clone()
        };
        assert_eq!(refusal(&bump), None);
        for (id, epoch) in [(5, -1), (-1, 2)] {
            let half = InitProducerIdRequest {
                producer_id: id,
                producer_epoch: epoch,
                ..idempotent.clone()
            };
            assert_eq!(refusal(&half), Some(ErrorCode::InvalidRequest));
        }
        let txn = InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            ..Default::default()
        };
        assert_eq!(refusal(&txn), None);
        let empty = InitProducerIdRequest {
            transactional_id: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(refusal(&empty), Some(ErrorCode::InvalidRequest));
    }
}
