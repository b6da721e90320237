//! ListOffsets (key 2), versions 1-10.
//!
//! Timestamps: -2 earliest (log start offset), -1 latest, -3 max timestamp (v7+, KIP-734), -4
//! earliest local (v8+, the log start offset without tiered storage), -5 earliest pending
//! upload (v9+: no tiered storage, so none: offset -1); any other value finds the earliest
//! offset whose timestamp is at or after it through the time index (offset -1 when none).
//! As Kafka's `Partition.fetchOffsetForTimestamp`, the *last fetchable offset* is the high
//! watermark, or the last stable offset for read_committed (`isolation_level` 1, v2+,
//! KIP-98): latest answers it, and max-timestamp and timestamp lookups only find offsets below
//! it (earliest is not bounded). A partition named twice in a
//! request is INVALID_REQUEST; `current_leader_epoch` (v4+) is checked. The leader epoch of the
//! found offset is answered from v4 only (v1-v3 cannot carry it, as KafkaApis). Faults injected
//! for a partition ([`crate::faults`]) answer it with their code.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_wire::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_wire::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_wire::ErrorCode;

use crate::faults::PartitionFaults;
use crate::state::BrokerState;

const EARLIEST_PENDING_UPLOAD: i64 = -5;
/// `isolation_level` of read_committed consumers.
const READ_COMMITTED: i8 = 1;

fn answer(
    state: &BrokerState,
    req: &ListOffsetsRequest,
    version: i16,
    faults: &PartitionFaults,
) -> ListOffsetsResponse {
    let read_committed = req.isolation_level == READ_COMMITTED;
    let mut seen: HashMap<(&str, i32), usize> = HashMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            *seen
                .entry((t.name.as_str(), p.partition_index))
                .or_default() += 1;
        }
    }
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = state.topic(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let fail = |code: ErrorCode| ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        timestamp: -1,
                        offset: -1,
                        leader_epoch: -1,
                        ..Default::default()
                    };
                    if let Some(code) = faults.get(&t.name, p.partition_index) {
                        return fail(code);
                    }
                    if seen
                        .get(&(t.name.as_str(), p.partition_index))
                        .copied()
                        .unwrap_or(0)
                        > 1
                    {
                        return fail(ErrorCode::InvalidRequest);
                    }
                    let Some(partition) =
                        topic.as_ref().and_then(|x| x.partition(p.partition_index))
                    else {
                        return fail(ErrorCode::UnknownTopicOrPartition);
                    };
                    let log = partition.log();
                    let epoch = log.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != epoch {
                        return fail(if p.current_leader_epoch > epoch {
                            ErrorCode::UnknownLeaderEpoch
                        } else {
                            ErrorCode::FencedLeaderEpoch
                        });
                    }
                    if p.timestamp == EARLIEST_PENDING_UPLOAD {
                        return ListOffsetsPartitionResponse {
                            error_code: 0,
                            ..fail(ErrorCode::None)
                        };
                    }
                    match log.list_offsets_isolated(p.timestamp, read_committed) {
                        Ok(Some(found)) => ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: 0,
                            timestamp: found.timestamp,
                            offset: found.offset,
                            // As KafkaApis: the epoch only from v4, which can carry it.
                            leader_epoch: if version >= 4 {
                                found.leader_epoch.unwrap_or(-1)
                            } else {
                                -1
                            },
                            ..Default::default()
                        },
                        Ok(None) => ListOffsetsPartitionResponse {
                            error_code: 0,
                            ..fail(ErrorCode::None)
                        },
                        Err(e) => fail(e.error_code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            }
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: ListOffsetsRequest,
    version: i16,
    faults: &PartitionFaults,
) -> ListOffsetsResponse {
    let (s, f) = (state.clone(), faults.clone());
    super::blocking(move || answer(&s, &req, version, &f)).await
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_wire::records::BatchOptions;

    use super::*;
    use crate::handlers::test_support::{append, create_topic, open_state};

    #[test]
    fn read_committed_latest_is_the_last_stable_offset() {
        let dir = tempfile::tempdir().unwrap();
        let state = open_state(dir.path());
        create_topic(&state, "t", 1, &[]);
        let now = crate::state::now_ms();
        for (transactional, ts) in [(false, 1_000), (true, 2_000)] {
            let opts = BatchOptions {
                producer_id: if transactional { 3 } else { -1 },
                producer_epoch: if transactional { 0 } else { -1 },
                base_sequence: if transactional { 0 } else { -1 },
                is_transactional: transactional,
                ..BatchOptions::default()
            };
            append(&state, "t", 0, opts, &[(ts, "v")], now);
        }
        let ask = |isolation_level: i8, timestamp: i64| {
            let req = ListOffsetsRequest {
                isolation_level,
                topics: vec![ListOffsetsTopic {
                    name: "t".into(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: 0,
                        current_leader_epoch: -1,
                        timestamp,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r = answer(&state, &req, 9, &PartitionFaults::default());
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0);
            p.offset
        };
        assert_eq!(ask(READ_COMMITTED, -1), 1);
        assert_eq!(ask(0, -1), 2);
        assert_eq!(ask(READ_COMMITTED, 1_500), -1);
        assert_eq!(ask(0, 1_500), 1);
        assert_eq!(ask(READ_COMMITTED, -2), 0);
    }
}
