//! Heartbeat (key 12), versions 0-4.
//!
//! Keeps a member's session alive. As Kafka 4.0: NONE in Stable and CompletingRebalance,
//! REBALANCE_IN_PROGRESS while the group prepares a rebalance (the member must rejoin),
//! UNKNOWN_MEMBER_ID for an unknown member, group or an Empty group, FENCED_INSTANCE_ID for a
//! stale static member id, ILLEGAL_GENERATION for another generation, INVALID_GROUP_ID for an
//! empty group id.

use std::sync::Arc;

use kafka_wire::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_wire::ErrorCode;

use crate::state::{now_ms, BrokerState};

pub(super) async fn handle(state: &Arc<BrokerState>, req: HeartbeatRequest) -> HeartbeatResponse {
    let code = if req.group_id.is_empty() {
        ErrorCode::InvalidGroupId
    } else {
        let s = state.clone();
        super::blocking(move || {
            s.groups().heartbeat(
                &s,
                &req.group_id,
                &req.member_id,
                req.group_instance_id.as_deref(),
                req.generation_id,
                now_ms(),
            )
        })
        .await
    };
    HeartbeatResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
