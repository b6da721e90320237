//! DescribeGroups (key 15), versions 0-5.
//!
//! Each group's state, protocol type, selected protocol and members (member id, instance id
//! (v4+), client id and host), as Kafka's `ClassicGroup.describe`: member metadata and
//! assignments and the selected protocol only for Stable groups. An unknown group is
//! described as Dead with no error (Kafka before v6); an empty id is INVALID_GROUP_ID.
//! Authorized operations (v3+, when asked) report every group operation (READ, DELETE,
//! DESCRIBE): broker-lite has no ACLs.

use std::sync::Arc;

use kafka_wire::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_wire::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_wire::ErrorCode;

use crate::group::GroupState;
use crate::state::BrokerState;

/// READ, DELETE and DESCRIBE (Kafka's ACL operation codes 3, 6 and 8).
const ALL_GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub(super) fn handle(
    state: &Arc<BrokerState>,
    req: &DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let ops = if version >= 3 && req.include_authorized_operations {
        ALL_GROUP_OPERATIONS
    } else {
        i32::MIN
    };
    let groups = req
        .groups
        .iter()
        .map(|id| {
            let mut described = DescribedGroup {
                group_id: id.clone(),
                group_state: GroupState::Dead.name().to_string(),
                authorized_operations: ops,
                ..Default::default()
            };
            if id.is_empty() {
                described.error_code = ErrorCode::InvalidGroupId.code();
                described.group_state = String::new();
                return described;
            }
            if let Some(d) = state.groups().describe(id) {
                described.group_state = d.state.name().to_string();
                described.protocol_type = d.protocol_type;
                described.protocol_data = d.protocol_data;
                described.members = d
                    .members
                    .into_iter()
                    .map(|m| DescribedGroupMember {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        member_metadata: m.metadata,
                        member_assignment: m.assignment,
                        ..Default::default()
                    })
                    .collect();
            }
            described
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}
