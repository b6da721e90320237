//! ListOffsets (key 2), versions 1-10.
//!
//! Timestamps: -2 earliest (log start offset), -1 latest (high watermark; the last stable
//! offset for read_committed), -3 max timestamp (v7+, KIP-734), -4 earliest local (v8+, the
//! log start offset without tiered storage), -5 earliest pending upload (v9+: no tiered
//! storage, so none: offset -1); any other value finds the earliest offset whose timestamp is
//! at or after it through the time index (offset -1 when none). A partition named twice in a
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

fn answer(
    state: &BrokerState,
    req: &ListOffsetsRequest,
    version: i16,
    faults: &PartitionFaults,
) -> ListOffsetsResponse {
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
                    match log.list_offsets(p.timestamp) {
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
