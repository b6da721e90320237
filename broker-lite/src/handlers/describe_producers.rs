//! DescribeProducers (key 61), version 0 (flexible), KIP-664.
//!
//! Lists the producers with state in each partition named, as Kafka's
//! `KafkaApis.handleDescribeProducersRequest`, `ReplicaManager.activeProducerState` and
//! `UnifiedLog.activeProducers`: every producer id the partition's producer state holds
//! (idempotent and transactional, until `producer.id.expiration.ms` expires it), by producer
//! id, with its epoch, `last_sequence` (of its last cached batch, -1 if none: after an epoch
//! bump by a marker), `last_timestamp` (the last batch's max timestamp, or the last marker's
//! timestamp), `coordinator_epoch` (of the last marker, -1 if none) and
//! `current_txn_start_offset` (the first offset of its open transaction here, -1 if none).
//!
//! Per topic, in request order, each partition answered in request order (duplicates
//! included, as Kafka iterates the request's lists): a name that fails Kafka's
//! `Topic.validate` is INVALID_TOPIC_EXCEPTION with `Topic.validate`'s message; a topic that
//! does not exist is UNKNOWN_TOPIC_OR_PARTITION with the error's default message (Kafka's
//! `new ApiError(error)`); a partition the topic lacks is UNKNOWN_TOPIC_OR_PARTITION without
//! a message (`getPartitionOrError`). NOT_LEADER_OR_FOLLOWER cannot happen: this broker
//! leads every partition. With no authorizer there is no TOPIC_AUTHORIZATION_FAILED.

use std::sync::Arc;

use kafka_wire::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_wire::messages::{DescribeProducersRequest, DescribeProducersResponse};
use kafka_wire::ErrorCode;

use crate::state::{validate_topic_name, BrokerState};

fn partition_error(index: i32, code: ErrorCode, message: Option<String>) -> PartitionResponse {
    PartitionResponse {
        partition_index: index,
        error_code: code.code(),
        error_message: message,
        active_producers: Vec::new(),
        ..Default::default()
    }
}

/// Answers a DescribeProducers request (blocking: each partition's log is locked briefly).
fn answer(state: &BrokerState, req: &DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic_error = validate_topic_name(&t.name)
                .err()
                .map(|e| (e.code(), Some(e.to_string())));
            let topic = if topic_error.is_none() {
                state.topic(&t.name)
            } else {
                None
            };
            let topic_error = topic_error.or_else(|| {
                topic.is_none().then(|| {
                    let code = ErrorCode::UnknownTopicOrPartition;
                    (code, Some(code.message().to_string()))
                })
            });
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    if let Some((code, message)) = &topic_error {
                        return partition_error(index, *code, message.clone());
                    }
                    let Some(partition) = topic.as_ref().and_then(|topic| topic.partition(index))
                    else {
                        return partition_error(index, ErrorCode::UnknownTopicOrPartition, None);
                    };
                    let producers = partition.log().active_producers();
                    PartitionResponse {
                        partition_index: index,
                        error_code: ErrorCode::None.code(),
                        error_message: None,
                        active_producers: producers
                            .into_iter()
                            .map(|p| ProducerState {
                                producer_id: p.producer_id,
                                producer_epoch: i32::from(p.producer_epoch),
                                last_sequence: p.last_sequence,
                                last_timestamp: p.last_timestamp,
                                coordinator_epoch: p.coordinator_epoch,
                                current_txn_start_offset: p.current_txn_start_offset.unwrap_or(-1),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }
                })
                .collect();
            TopicResponse {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            }
        })
        .collect();
    DescribeProducersResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let s = state.clone();
    super::blocking(move || answer(&s, &req)).await
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::describe_producers_request::TopicRequest;
    use kafka_wire::records::BatchOptions;

    use super::*;
    use crate::handlers::test_support::{self, create_topic, open_state};
    use crate::storage::TxnMarker;

    const NOW: i64 = 1_700_000_000_000;

    fn state_with(dir: &std::path::Path) -> Arc<BrokerState> {
        let state = open_state(dir);
        create_topic(&state, "t", 2, &[]);
        state
    }

    /// Appends a batch of two records (timestamps `ts` and `ts + 1`) of producer `pid`.
    fn append(
        state: &BrokerState,
        partition: i32,
        (pid, epoch, seq): (i64, i16, i32),
        txn: bool,
        ts: i64,
    ) {
        let opts = BatchOptions {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            is_transactional: txn,
            ..Default::default()
        };
        test_support::append(
            state,
            "t",
            partition,
            opts,
            &[(ts, "v"), (ts + 1, "v")],
            NOW,
        );
    }

    fn request(entries: &[(&str, &[i32])]) -> DescribeProducersRequest {
        DescribeProducersRequest {
            topics: entries
                .iter()
                .map(|(name, partitions)| TopicRequest {
                    name: (*name).into(),
                    partition_indexes: partitions.to_vec(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// `(producer_id, epoch, last_sequence, last_timestamp, coordinator_epoch, txn_start)`.
    fn producers(p: &PartitionResponse) -> Vec<(i64, i32, i32, i64, i32, i64)> {
        p.active_producers
            .iter()
            .map(|s| {
                (
                    s.producer_id,
                    s.producer_epoch,
                    s.last_sequence,
                    s.last_timestamp,
                    s.coordinator_epoch,
                    s.current_txn_start_offset,
                )
            })
            .collect()
    }

    #[test]
    fn idempotent_and_transactional_producers_with_their_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(dir.path());
        // Producer 9: idempotent, two batches (sequences 0-1, 2-3). Producer 4: a
        // transaction opened at offset 4 in partition 0.
        append(&state, 0, (9, 2, 0), false, NOW);
        append(&state, 0, (9, 2, 2), false, NOW + 10);
        append(&state, 0, (4, 0, 0), true, NOW + 20);
        let r = answer(&state, &request(&[("t", &[0, 1])]));
        assert_eq!(r.throttle_time_ms, 0);
        assert_eq!(r.topics.len(), 1);
        let t = &r.topics[0];
        assert_eq!((t.name.as_str(), t.partitions.len()), ("t", 2));
        let p0 = &t.partitions[0];
        assert_eq!((p0.partition_index, p0.error_code), (0, 0));
        assert_eq!(p0.error_message, None);
        assert_eq!(
            producers(p0),
            vec![(4, 0, 1, NOW + 21, -1, 4), (9, 2, 3, NOW + 11, -1, -1)]
        );
        let p1 = &t.partitions[1];
        assert_eq!((p1.partition_index, p1.error_code), (1, 0));
        assert!(p1.active_producers.is_empty());

        // The commit marker closes the transaction and records the coordinator epoch and the
        // marker's timestamp (the append time).
        let p = state.topic("t").unwrap().partition(0).unwrap();
        p.log()
            .append_txn_marker(
                TxnMarker {
                    producer_id: 4,
                    producer_epoch: 0,
                    coordinator_epoch: 6,
                    commit: true,
                },
                NOW + 50,
            )
            .unwrap();
        let r = answer(&state, &request(&[("t", &[0])]));
        assert_eq!(
            producers(&r.topics[0].partitions[0]),
            vec![(4, 0, 1, NOW + 50, 6, -1), (9, 2, 3, NOW + 11, -1, -1)]
        );
    }

    #[test]
    fn errors_per_topic_and_partition_in_request_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(dir.path());
        let r = answer(
            &state,
            &request(&[
                ("missing", &[0, 1]),
                ("t", &[5, 0, 0]),
                ("bad name", &[0]),
                ("", &[3]),
            ]),
        );
        let flat: Vec<(String, i32, i16, Option<String>)> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.clone(),
                        p.partition_index,
                        p.error_code,
                        p.error_message.clone(),
                    )
                })
            })
            .collect();
        let unknown = ErrorCode::UnknownTopicOrPartition.code();
        let invalid = ErrorCode::InvalidTopicException.code();
        let not_hosted = Some("This server does not host this topic-partition.".to_string());
        assert_eq!(
            flat,
            vec![
                ("missing".into(), 0, unknown, not_hosted.clone()),
                ("missing".into(), 1, unknown, not_hosted),
                ("t".into(), 5, unknown, None),
                ("t".into(), 0, 0, None),
                ("t".into(), 0, 0, None),
                (
                    "bad name".into(),
                    0,
                    invalid,
                    Some(
                        "Topic name \"bad name\" is illegal, it contains a character other \
                         than ASCII alphanumerics, '.', '_' and '-'"
                            .into()
                    )
                ),
                (
                    "".into(),
                    3,
                    invalid,
                    Some("Topic name is illegal, it can't be empty".into())
                ),
            ]
        );
    }
}
