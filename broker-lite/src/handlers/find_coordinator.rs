//! FindCoordinator (key 10), versions 0-6.
//!
//! broker-lite is its cluster's only broker, so it coordinates every group (key type 0) and
//! every transactional id (key type 1). v0-v3 ask for one key, v4+ for a batch
//! (`CoordinatorKeys`, KIP-699). An empty key or another key type (share groups, 2) gets
//! INVALID_REQUEST. librdkafka also reads this API's presence as "the broker supports LZ4"
//! (its feature table), so advertising it matters beyond groups.

use std::sync::Arc;

use kafka_wire::messages::find_coordinator_response::Coordinator;
use kafka_wire::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_wire::ErrorCode;

use crate::state::BrokerState;

/// The coordinator for one key: this broker, or an error.
fn lookup(state: &BrokerState, key: &str, key_type: i8) -> Coordinator {
    let error = if !matches!(key_type, 0 | 1) {
        Some(format!("Unsupported key type {key_type}"))
    } else if key.is_empty() {
        Some("The coordinator key must not be empty".to_string())
    } else {
        None
    };
    match error {
        Some(message) => Coordinator {
            key: key.to_string(),
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: ErrorCode::InvalidRequest.code(),
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

pub(super) fn handle(
    state: &Arc<BrokerState>,
    req: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if version >= 4 {
        return FindCoordinatorResponse {
            coordinators: req
                .coordinator_keys
                .iter()
                .map(|k| lookup(state, k, req.key_type))
                .collect(),
            ..Default::default()
        };
    }
    let c = lookup(state, &req.key, req.key_type);
    FindCoordinatorResponse {
        error_code: c.error_code,
        error_message: c.error_message,
        node_id: c.node_id,
        host: c.host,
        port: c.port,
        ..Default::default()
    }
}
