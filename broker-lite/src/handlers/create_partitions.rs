//! CreatePartitions (key 37), versions 0-3.
//!
//! Grows a topic's partition count. A topic named twice is INVALID_REQUEST; a count that
//! does not grow is INVALID_PARTITIONS; assignments must name this broker only
//! (INVALID_REPLICA_ASSIGNMENT) and have one entry per new partition; `validate_only`
//! changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_wire::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_wire::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_wire::ErrorCode;

use crate::state::BrokerState;

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.clone()).or_default() += 1;
    }
    let node = state.config.node_id;
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let fail = |code: ErrorCode, msg: String| CreatePartitionsTopicResult {
            name: t.name.clone(),
            error_code: code.code(),
            error_message: Some(msg),
            ..Default::default()
        };
        if seen.get(&t.name).copied().unwrap_or(0) > 1 {
            results.push(fail(
                ErrorCode::InvalidRequest,
                "Duplicate topic in request.".into(),
            ));
            continue;
        }
        if let Some(assignments) = &t.assignments {
            let current = state
                .topic(&t.name)
                .map(|x| x.partition_count())
                .unwrap_or(0);
            let new = (t.count - current).max(0) as usize;
            if assignments.len() != new
                || assignments
                    .iter()
                    .any(|a| a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| *b != node))
            {
                results.push(fail(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Assignments must list broker {node} for each of the {new} new partitions."
                    ),
                ));
                continue;
            }
        }
        let s = state.clone();
        let name = t.name.clone();
        let (count, validate_only) = (t.count, req.validate_only);
        let result =
            super::blocking(move || s.create_partitions(&name, count, validate_only)).await;
        results.push(match result {
            Ok(()) => CreatePartitionsTopicResult {
                name: t.name,
                ..Default::default()
            },
            Err(e) => fail(e.code(), e.to_string()),
        });
    }
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}
