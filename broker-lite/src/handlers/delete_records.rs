//! DeleteRecords (key 21), versions 0-2 (v2 flexible), KIP-107.
//!
//! Moves a partition's log start offset forward, as Kafka's `ReplicaManager.deleteRecords`,
//! `Partition.deleteRecordsOnLeader` and `UnifiedLog.maybeIncrementLogStartOffset`: offset -1
//! means the high watermark; any other negative offset, or one above the high watermark, is
//! OFFSET_OUT_OF_RANGE. A request below the current log start offset changes nothing. The
//! answer's `low_watermark` is the log start offset afterwards (it never moves backwards), -1
//! on error. The new start is written to the partition's `log-start-offset-checkpoint` before
//! the answer, so a restart keeps it; Fetch below it is then OFFSET_OUT_OF_RANGE and
//! ListOffsets earliest answers it. Segments wholly below it are deleted at once (Kafka leaves
//! that to its next retention pass; the log start offset, which is all a client sees, is the
//! same). The storage call is `PartitionLog::delete_records_before`.
//!
//! Per partition, in Kafka's order: a topic or partition that does not exist is
//! UNKNOWN_TOPIC_OR_PARTITION; an internal topic (`__consumer_offsets`,
//! `__transaction_state`) is INVALID_TOPIC_EXCEPTION ("Cannot delete records of internal
//! topic"); a topic whose `cleanup.policy` lacks `delete` (compact only) is POLICY_VIOLATION;
//! an offline log is KAFKA_STORAGE_ERROR. A partition named twice is handled once with the
//! last offset given and answered once, as Kafka (which collects the request into a map).
//! Open transactions do not hold deletion back (Kafka bounds it by the high watermark only);
//! the last stable offset is raised to the new log start offset.
//!
//! `timeout_ms` is not waited on: Kafka delays the answer (`DelayedDeleteRecords`) only until
//! every replica's log start offset reaches the requested offset, and with one replica that
//! is true as soon as the local log moved, so Kafka answers at once too.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use kafka_wire::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_wire::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_wire::ErrorCode;
use tracing::debug;

use crate::state::{now_ms, BrokerState};

/// `low_watermark` of a partition that failed (Kafka's `INVALID_LOW_WATERMARK`).
const INVALID_LOW_WATERMARK: i64 = -1;

/// The partitions of a request, each once with the last offset given for it, grouped by
/// topic in the order the topics and partitions first appear.
fn requested(req: &DeleteRecordsRequest) -> Vec<(&str, Vec<(i32, i64)>)> {
    // Indexes by name and by (topic, partition): a request may name millions of partitions,
    // so no linear search per entry.
    let mut topic_index: HashMap<&str, usize> = HashMap::new();
    let mut partition_index: HashMap<(usize, i32), usize> = HashMap::new();
    let mut topics: Vec<(&str, Vec<(i32, i64)>)> = Vec::new();
    for t in &req.topics {
        let i = *topic_index.entry(t.name.as_str()).or_insert_with(|| {
            topics.push((t.name.as_str(), Vec::new()));
            topics.len() - 1
        });
        let partitions = &mut topics[i].1;
        for p in &t.partitions {
            match partition_index.entry((i, p.partition_index)) {
                Entry::Occupied(e) => partitions[*e.get()].1 = p.offset,
                Entry::Vacant(e) => {
                    e.insert(partitions.len());
                    partitions.push((p.partition_index, p.offset));
                }
            }
        }
    }
    topics
}

/// One partition: the new log start offset, or the error.
fn delete_partition(
    state: &BrokerState,
    topic: &str,
    partition: i32,
    offset: i64,
    now_ms: i64,
) -> Result<i64, ErrorCode> {
    let Some(p) = state.topic(topic).and_then(|t| t.partition(partition)) else {
        return Err(ErrorCode::UnknownTopicOrPartition);
    };
    if super::metadata::is_internal(topic) {
        return Err(ErrorCode::InvalidTopicException);
    }
    let mut log = p.log();
    log.delete_records_before(offset, now_ms).map_err(|e| {
        debug!(topic, partition, offset, error = %e, "DeleteRecords refused");
        e.error_code()
    })
}

/// Answers a DeleteRecords request (blocking: segment files may be renamed and the
/// checkpoint is written and fsynced).
fn answer(state: &BrokerState, req: &DeleteRecordsRequest, now_ms: i64) -> DeleteRecordsResponse {
    let topics = requested(req)
        .into_iter()
        .map(|(name, partitions)| DeleteRecordsTopicResult {
            name: name.to_string(),
            partitions: partitions
                .into_iter()
                .map(|(partition_index, offset)| {
                    let (low_watermark, error_code) =
                        match delete_partition(state, name, partition_index, offset, now_ms) {
                            Ok(start) => (start, ErrorCode::None),
                            Err(code) => (INVALID_LOW_WATERMARK, code),
                        };
                    DeleteRecordsPartitionResult {
                        partition_index,
                        low_watermark,
                        error_code: error_code.code(),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    DeleteRecordsResponse {
        throttle_time_ms: 0,
        topics,
        ..Default::default()
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let s = state.clone();
    let now = now_ms();
    super::blocking(move || answer(&s, &req, now)).await
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_wire::records::BatchOptions;

    use super::*;
    use crate::handlers::test_support::{append, create_topic, open_state};

    const NOW: i64 = 1_700_000_000_000;

    fn request(entries: &[(&str, &[(i32, i64)])]) -> DeleteRecordsRequest {
        DeleteRecordsRequest {
            topics: entries
                .iter()
                .map(|(name, partitions)| DeleteRecordsTopic {
                    name: (*name).into(),
                    partitions: partitions
                        .iter()
                        .map(|&(partition_index, offset)| DeleteRecordsPartition {
                            partition_index,
                            offset,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: 1000,
            ..Default::default()
        }
    }

    /// `(topic, partition, low_watermark, error_code)` of every answer, in order.
    fn flat(r: &DeleteRecordsResponse) -> Vec<(String, i32, i64, i16)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.clone(),
                        p.partition_index,
                        p.low_watermark,
                        p.error_code,
                    )
                })
            })
            .collect()
    }

    fn state_with(dir: &std::path::Path, topics: &[(&str, &[(&str, &str)])]) -> Arc<BrokerState> {
        let state = open_state(dir);
        for (name, configs) in topics {
            create_topic(&state, name, 2, configs);
            // Five one-record batches in partition 0: offsets 0-4.
            for i in 0..5 {
                append(
                    &state,
                    name,
                    0,
                    BatchOptions::default(),
                    &[(NOW + i, "v")],
                    NOW,
                );
            }
        }
        state
    }

    fn start_of(state: &BrokerState, topic: &str) -> i64 {
        state
            .topic(topic)
            .unwrap()
            .partition(0)
            .unwrap()
            .log()
            .log_start_offset()
    }

    #[test]
    fn duplicates_are_merged_last_offset_wins_in_first_appearance_order() {
        let req = request(&[("a", &[(1, 5), (0, 2)]), ("b", &[(0, 1)]), ("a", &[(1, 3)])]);
        assert_eq!(
            requested(&req),
            vec![("a", vec![(1, 3), (0, 2)]), ("b", vec![(0, 1)])]
        );
    }

    #[test]
    fn answers_each_partition_with_kafkas_codes() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(
            dir.path(),
            &[
                ("t", &[]),
                ("compacted", &[("cleanup.policy", "compact")]),
                ("both", &[("cleanup.policy", "compact,delete")]),
            ],
        );
        let r = answer(
            &state,
            &request(&[
                ("t", &[(0, 3), (1, 0), (2, 0)]),
                ("missing", &[(0, 0)]),
                ("compacted", &[(0, 1)]),
                ("both", &[(0, -1)]),
            ]),
            NOW,
        );
        assert_eq!(r.throttle_time_ms, 0);
        assert_eq!(
            flat(&r),
            vec![
                ("t".into(), 0, 3, 0),
                // An empty partition: deleting before 0 is a no-op at start 0.
                ("t".into(), 1, 0, 0),
                ("t".into(), 2, -1, ErrorCode::UnknownTopicOrPartition.code()),
                (
                    "missing".into(),
                    0,
                    -1,
                    ErrorCode::UnknownTopicOrPartition.code()
                ),
                ("compacted".into(), 0, -1, ErrorCode::PolicyViolation.code()),
                // -1: the high watermark, allowed with compact,delete.
                ("both".into(), 0, 5, 0),
            ]
        );
        assert_eq!(start_of(&state, "t"), 3);
        assert_eq!(start_of(&state, "compacted"), 0);
        assert_eq!(start_of(&state, "both"), 5);

        // Out of range (below -1, above the high watermark) leaves the start alone; going
        // backwards answers the current start.
        for bad in [-2, 6] {
            let r = answer(&state, &request(&[("t", &[(0, bad)])]), NOW);
            assert_eq!(
                flat(&r),
                vec![("t".into(), 0, -1, ErrorCode::OffsetOutOfRange.code())],
                "{bad}"
            );
            assert_eq!(start_of(&state, "t"), 3);
        }
        let r = answer(&state, &request(&[("t", &[(0, 1)])]), NOW);
        assert_eq!(flat(&r), vec![("t".into(), 0, 3, 0)]);
        // Up to the high watermark exactly.
        let r = answer(&state, &request(&[("t", &[(0, 5)])]), NOW);
        assert_eq!(flat(&r), vec![("t".into(), 0, 5, 0)]);
    }

    #[test]
    fn internal_topics_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(dir.path(), &[("__consumer_offsets", &[])]);
        let r = answer(
            &state,
            &request(&[("__consumer_offsets", &[(0, 2), (7, 0)])]),
            NOW,
        );
        assert_eq!(
            flat(&r),
            vec![
                (
                    "__consumer_offsets".into(),
                    0,
                    -1,
                    ErrorCode::InvalidTopicException.code()
                ),
                // Kafka checks existence first (KafkaApis), then internal (ReplicaManager).
                (
                    "__consumer_offsets".into(),
                    7,
                    -1,
                    ErrorCode::UnknownTopicOrPartition.code()
                ),
            ]
        );
        assert_eq!(start_of(&state, "__consumer_offsets"), 0);
    }
}
