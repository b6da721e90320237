//! DeleteTopics (key 20), versions 1-6.
//!
//! v1-5 name topics in `TopicNames`; v6 in `Topics`, by name or by id (KIP-516). Unknown names
//! get UNKNOWN_TOPIC_OR_PARTITION, unknown ids UNKNOWN_TOPIC_ID; `delete.topic.enable=false`
//! gives TOPIC_DELETION_DISABLED. The topic's partition directories are removed.

use std::sync::Arc;

use kafka_wire::messages::delete_topics_response::DeletableTopicResult;
use kafka_wire::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_wire::{ErrorCode, Uuid};

use crate::state::BrokerState;

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::ZERO))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let resolved = match (&name, id) {
            (Some(n), _) => Some(n.clone()),
            (None, id) => state.topic_by_id(&id).map(|t| t.name.clone()),
        };
        let Some(topic_name) = resolved else {
            responses.push(DeletableTopicResult {
                name: None,
                topic_id: id,
                error_code: ErrorCode::UnknownTopicId.code(),
                error_message: Some(format!("Topic id {id} does not exist")),
                ..Default::default()
            });
            continue;
        };
        let s = state.clone();
        let n = topic_name.clone();
        let result = super::blocking(move || s.delete_topic(&n)).await;
        responses.push(match result {
            Ok(deleted_id) => DeletableTopicResult {
                name: Some(topic_name),
                topic_id: deleted_id,
                error_code: 0,
                error_message: None,
                ..Default::default()
            },
            Err(e) => DeletableTopicResult {
                name: Some(topic_name),
                topic_id: id,
                error_code: e.code().code(),
                error_message: Some(e.to_string()),
                ..Default::default()
            },
        });
    }
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}
