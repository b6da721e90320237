//! DeleteGroups (key 42), versions 0-2.
//!
//! Deletes Empty groups: their committed offsets and metadata get tombstones in
//! `__consumer_offsets` and the group is gone (also after a restart). Per group:
//! GROUP_ID_NOT_FOUND (unknown), NON_EMPTY_GROUP (members), INVALID_GROUP_ID (empty id).

use std::sync::Arc;

use kafka_wire::messages::delete_groups_response::DeletableGroupResult;
use kafka_wire::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_wire::ErrorCode;

use crate::state::{now_ms, BrokerState};

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let s = state.clone();
    let names = req.groups_names.clone();
    let codes = super::blocking(move || {
        let valid: Vec<String> = names.iter().filter(|n| !n.is_empty()).cloned().collect();
        let mut done = s.groups().delete_groups(&s, &valid, now_ms()).into_iter();
        names
            .iter()
            .map(|n| {
                if n.is_empty() {
                    ErrorCode::InvalidGroupId
                } else {
                    done.next().unwrap_or(ErrorCode::UnknownServerError)
                }
            })
            .collect::<Vec<_>>()
    })
    .await;
    DeleteGroupsResponse {
        results: req
            .groups_names
            .into_iter()
            .zip(codes)
            .map(|(group_id, code)| DeletableGroupResult {
                group_id,
                error_code: code.code(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
