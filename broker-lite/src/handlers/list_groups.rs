//! ListGroups (key 16), versions 0-5.
//!
//! Every group this broker coordinates (all of them), with its protocol type ("" for groups
//! that only hold offsets), its state (v4+) and its type (v5+: always "classic"). The v4+
//! states filter and v5+ types filter match case-insensitively (Kafka 4.0); empty filters
//! match everything.

use std::sync::Arc;

use kafka_wire::messages::list_groups_response::ListedGroup;
use kafka_wire::messages::{ListGroupsRequest, ListGroupsResponse};

use crate::state::BrokerState;

pub(super) fn handle(state: &Arc<BrokerState>, req: &ListGroupsRequest) -> ListGroupsResponse {
    let matches = |filter: &[String], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let groups = state
        .groups()
        .list_groups()
        .into_iter()
        .filter(|g| matches(&req.states_filter, g.state.name()))
        .filter(|_| matches(&req.types_filter, "classic"))
        .map(|g| ListedGroup {
            group_id: g.group_id,
            protocol_type: g.protocol_type,
            group_state: g.state.name().to_string(),
            group_type: "classic".to_string(),
            ..Default::default()
        })
        .collect();
    ListGroupsResponse {
        error_code: 0,
        groups,
        ..Default::default()
    }
}
