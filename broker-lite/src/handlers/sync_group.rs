//! SyncGroup (key 14), versions 0-5.
//!
//! Members of a group in CompletingRebalance wait until the leader sends the assignment; the
//! group metadata (with every assignment) is then written to `__consumer_offsets` and every
//! waiting member gets its own assignment (members the leader left out get an empty one), and
//! the group is Stable. In Stable a member gets its current assignment at once. v5+ must carry
//! the protocol type and name (else INCONSISTENT_GROUP_PROTOCOL, as Kafka's `KafkaApis`), and
//! they must match the group's. Errors as Kafka: INVALID_GROUP_ID, UNKNOWN_MEMBER_ID (also for
//! an unknown or Empty group), FENCED_INSTANCE_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS
//! (while preparing a rebalance, or when one starts while waiting), COORDINATOR_NOT_AVAILABLE
//! or NOT_COORDINATOR when the metadata cannot be written or the broker shuts down.

use std::sync::Arc;

use kafka_wire::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_wire::ErrorCode;

use crate::group::{Reply, SyncResult};
use crate::state::{now_ms, BrokerState};

fn response(r: SyncResult) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: r.error.code(),
        protocol_type: r.protocol_type,
        protocol_name: r.protocol_name,
        assignment: r.assignment,
        ..Default::default()
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    if req.group_id.is_empty() {
        return response(SyncResult::error(ErrorCode::InvalidGroupId));
    }
    if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        return response(SyncResult::error(ErrorCode::InconsistentGroupProtocol));
    }
    let s = state.clone();
    let rx = super::blocking(move || {
        s.groups().sync(
            &s,
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            req.protocol_type.as_deref(),
            req.protocol_name.as_deref(),
            req.assignments
                .into_iter()
                .map(|a| (a.member_id, a.assignment))
                .collect(),
            now_ms(),
        )
    })
    .await;
    match rx.await {
        Ok(Reply::Sync(r)) => response(r),
        _ => response(SyncResult::error(ErrorCode::CoordinatorNotAvailable)),
    }
}
