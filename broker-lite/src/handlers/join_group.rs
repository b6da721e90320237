//! JoinGroup (key 11), versions 0-9.
//!
//! Classic group membership through the group coordinator ([`crate::group`]): the answer
//! waits until the join phase of the rebalance completes (every member rejoined, the
//! rebalance timeout expired, or the initial rebalance delay
//! `group.initial.rebalance.delay.ms` ran out for a group starting from Empty). The leader gets
//! every member's metadata for the selected protocol (the one supported by all members with
//! the most votes). v4+ requires a known member id (KIP-394): a new dynamic member first gets
//! MEMBER_ID_REQUIRED with its generated id and must join again with it. v5+ carries
//! `group.instance.id` (KIP-345 static membership: a known instance rejoining without a
//! member id replaces its old member id, without a rebalance when the group is Stable and the
//! selected protocol is unchanged; a stale member id is FENCED_INSTANCE_ID). v0 has no
//! rebalance timeout (the session timeout is used). `SkipAssignment` (v9) is always false.
//! Errors as Kafka: INVALID_GROUP_ID (empty id), INVALID_SESSION_TIMEOUT (outside
//! `group.min.session.timeout.ms`..`group.max.session.timeout.ms`), UNKNOWN_MEMBER_ID,
//! INCONSISTENT_GROUP_PROTOCOL, GROUP_MAX_SIZE_REACHED (`group.max.size`),
//! FENCED_INSTANCE_ID, and NOT_COORDINATOR while the broker shuts down.

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_wire::messages::join_group_response::JoinGroupResponseMember;
use kafka_wire::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_wire::ErrorCode;

use crate::group::{JoinRequest, JoinResult, Reply};
use crate::state::{now_ms, BrokerState};

fn response(r: JoinResult, version: i16) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: r.error.code(),
        generation_id: r.generation_id,
        protocol_type: r.protocol_type,
        // Nullable from v7 only.
        protocol_name: if version >= 7 {
            r.protocol_name
        } else {
            Some(r.protocol_name.unwrap_or_default())
        },
        leader: r.leader,
        skip_assignment: false,
        member_id: r.member_id,
        members: r
            .members
            .into_iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                metadata: m.metadata,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    peer: SocketAddr,
) -> JoinGroupResponse {
    if req.group_id.is_empty() {
        return response(
            JoinResult::error(&req.member_id, ErrorCode::InvalidGroupId),
            version,
        );
    }
    let member_id = req.member_id.clone();
    let join = JoinRequest {
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        require_known_member_id: version >= 4,
        client_id,
        client_host: format!("/{}", peer.ip()),
        rebalance_timeout_ms: if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        session_timeout_ms: req.session_timeout_ms,
        protocol_type: req.protocol_type,
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name, p.metadata))
            .collect(),
    };
    let s = state.clone();
    let group_id = req.group_id;
    let rx = super::blocking(move || s.groups().join(&s, &group_id, join, now_ms())).await;
    let result = match rx.await {
        Ok(Reply::Join(r)) => r,
        _ => JoinResult::error(&member_id, ErrorCode::CoordinatorNotAvailable),
    };
    response(result, version)
}
