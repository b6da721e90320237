//! FindCoordinator (key 10), versions 0-6.
//!
//! broker-lite is its cluster's only broker, so it coordinates every group (key type 0) and
//! every transactional id (key type 1). v0-v3 ask for one key, v4+ for a batch
//! (`CoordinatorKeys`, KIP-699). An empty key or another key type (share groups, 2) gets
//! INVALID_REQUEST. For a transactional id the coordinator's `__transaction_state` topic is
//! created first if it does not exist yet (Kafka's `getOrCreateInternalTopic`); if that fails
//! the key gets COORDINATOR_NOT_AVAILABLE. librdkafka also reads this API's presence as "the broker supports LZ4"
//! (its feature table), so advertising it matters beyond groups.

use std::sync::Arc;

use kafka_wire::messages::find_coordinator_response::Coordinator;
use kafka_wire::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_wire::ErrorCode;

use crate::state::BrokerState;

/// The coordinator for one key: this broker, or an error. `txn_topic` is whether
/// `__transaction_state` exists (or could be created).
fn lookup(state: &BrokerState, key: &str, key_type: i8, txn_topic: bool) -> Coordinator {
    let error = if !matches!(key_type, 0 | 1) {
        Some((
            ErrorCode::InvalidRequest,
            format!("Unsupported key type {key_type}"),
        ))
    } else if key.is_empty() {
        Some((
            ErrorCode::InvalidRequest,
            "The coordinator key must not be empty".to_string(),
        ))
    } else if key_type == 1 && !txn_topic {
        Some((
            ErrorCode::CoordinatorNotAvailable,
            "The transaction state topic cannot be created".to_string(),
        ))
    } else {
        None
    };
    match error {
        Some((code, message)) => Coordinator {
            key: key.to_string(),
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: code.code(),
            error_message: Some(message),
            ..Default::default()
        },
        None => Coordinator {
            key: key.to_string(),
            node_id: state.config.node_id,
            host: state.advertised_host.clone(),
            port: state.advertised_port,
            error_code: 0,
            error_message: None,
            ..Default::default()
        },
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys_given = if version >= 4 {
        !req.coordinator_keys.is_empty()
    } else {
        !req.key.is_empty()
    };
    let txn_topic = if req.key_type == 1 && keys_given {
        match state.topic(crate::txn::TRANSACTION_STATE_TOPIC) {
            Some(_) => true,
            None => {
                let s = state.clone();
                super::blocking(move || s.txns().ensure_topic(&s))
                    .await
                    .inspect_err(
                        |e| tracing::warn!(error = %e, "cannot create the transaction state topic"),
                    )
                    .is_ok()
            }
        }
    } else {
        false
    };
    if version >= 4 {
        return FindCoordinatorResponse {
            coordinators: req
                .coordinator_keys
                .iter()
                .map(|k| lookup(state, k, req.key_type, txn_topic))
                .collect(),
            ..Default::default()
        };
    }
    let c = lookup(state, &req.key, req.key_type, txn_topic);
    FindCoordinatorResponse {
        error_code: c.error_code,
        error_message: c.error_message,
        node_id: c.node_id,
        host: c.host,
        port: c.port,
        ..Default::default()
    }
}
