//! LeaveGroup (key 13), versions 0-5.
//!
//! v0-v2 remove one member (`MemberId`) and answer with its error at the top level; v3+
//! remove a batch of members (KIP-345), each by member id and/or `group.instance.id`, with one
//! result per member. A member leaving a Stable or CompletingRebalance group starts a
//! rebalance; the last member leaving empties the group (a new generation, written to
//! `__consumer_offsets`). Per member: UNKNOWN_MEMBER_ID (also for an unknown group),
//! FENCED_INSTANCE_ID (instance id of another member id). INVALID_GROUP_ID for an empty
//! group id.

use std::sync::Arc;

use kafka_wire::messages::leave_group_response::MemberResponse;
use kafka_wire::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_wire::ErrorCode;

use crate::state::{now_ms, BrokerState};

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect()
    } else {
        vec![(req.member_id.clone(), None)]
    };
    let result = if req.group_id.is_empty() {
        Err(ErrorCode::InvalidGroupId)
    } else {
        let s = state.clone();
        let group_id = req.group_id;
        let m = members.clone();
        super::blocking(move || s.groups().leave(&s, &group_id, &m, now_ms())).await
    };
    match result {
        Err(code) => LeaveGroupResponse {
            error_code: code.code(),
            ..Default::default()
        },
        Ok(codes) if version < 3 => LeaveGroupResponse {
            error_code: codes.first().copied().unwrap_or(ErrorCode::None).code(),
            ..Default::default()
        },
        Ok(codes) => LeaveGroupResponse {
            error_code: 0,
            members: members
                .into_iter()
                .zip(codes)
                .map(|((member_id, group_instance_id), code)| MemberResponse {
                    member_id,
                    group_instance_id,
                    error_code: code.code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
    }
}
