//! Fetch (key 1), versions 4-17.
//!
//! Returns whole stored batches (file ranges, never decoded) from each requested offset, up
//! to the high watermark (the last stable offset for read_committed), within
//! `partition_max_bytes` per partition and `max_bytes` per response, except that the first
//! batch of the first non-empty partition is returned even when larger (KIP-74). Long polls:
//! the answer waits up to `max_wait_ms` until `min_bytes` are available, and returns at once
//! when any partition has an error. Topic ids are used from v13 (UNKNOWN_TOPIC_ID).
//! `current_leader_epoch` (v9+) is checked (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
//!
//! Incremental fetch sessions (KIP-227) are declined, which the protocol allows: every
//! response carries session id 0, so clients keep sending full fetch requests. As in Kafka's
//! `FetchManager.newContext`, epoch 0 or -1 is a full fetch whatever the session id, and any
//! other epoch names a session we do not have: FETCH_SESSION_ID_NOT_FOUND. Faults injected for
//! a partition ([`crate::faults`]) answer it with their code and no records, like any
//! partition error (the long poll returns at once).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_wire::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_wire::messages::{FetchRequest, FetchResponse};
use kafka_wire::{ErrorCode, Uuid};
use tokio::time::Instant;

use crate::faults::PartitionFaults;
use crate::state::BrokerState;

const READ_COMMITTED: i8 = 1;

struct Gathered {
    response: FetchResponse,
    bytes: usize,
    any_error: bool,
}

fn empty_partition(index: i32, code: ErrorCode) -> PartitionData {
    PartitionData {
        partition_index: index,
        error_code: code.code(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Some(Bytes::new()),
        ..Default::default()
    }
}

fn gather(
    state: &BrokerState,
    req: &FetchRequest,
    version: i16,
    faults: &PartitionFaults,
) -> Gathered {
    let max_total = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    };
    let read_committed = req.isolation_level == READ_COMMITTED;
    let mut bytes = 0usize;
    let mut any_error = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    for ft in &req.topics {
        let topic = if version >= 13 {
            state.topic_by_id(&ft.topic_id)
        } else {
            state.topic(&ft.topic)
        };
        let missing = if version >= 13 {
            ErrorCode::UnknownTopicId
        } else {
            ErrorCode::UnknownTopicOrPartition
        };
        let mut partitions = Vec::with_capacity(ft.partitions.len());
        for fp in &ft.partitions {
            // Faults name topics; v13+ requests name them by id (resolved when known).
            let injected = if version >= 13 {
                topic
                    .as_ref()
                    .and_then(|t| faults.get(&t.name, fp.partition))
            } else {
                faults.get(&ft.topic, fp.partition)
            };
            if let Some(code) = injected {
                any_error = true;
                partitions.push(crate::faults::fetch_partition_error(fp.partition, code));
                continue;
            }
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(fp.partition)) else {
                any_error = true;
                partitions.push(empty_partition(fp.partition, missing));
                continue;
            };
            let log = partition.log();
            let epoch = log.leader_epoch();
            if fp.current_leader_epoch >= 0 && fp.current_leader_epoch != epoch {
                any_error = true;
                let code = if fp.current_leader_epoch > epoch {
                    ErrorCode::UnknownLeaderEpoch
                } else {
                    ErrorCode::FencedLeaderEpoch
                };
                partitions.push(empty_partition(fp.partition, code));
                continue;
            }
            let hw = log.high_watermark();
            let limit = hw; // last stable offset == high watermark until transactions land
            let room = max_total.saturating_sub(bytes);
            let max_bytes = (fp.partition_max_bytes.max(0) as usize).min(room);
            let result = log.read_with(fp.fetch_offset, max_bytes, limit, bytes == 0);
            partitions.push(match result {
                Ok(r) => {
                    bytes += r.records.len();
                    PartitionData {
                        partition_index: fp.partition,
                        error_code: 0,
                        high_watermark: r.high_watermark,
                        last_stable_offset: limit,
                        log_start_offset: r.log_start_offset,
                        aborted_transactions: if read_committed {
                            Some(Vec::new())
                        } else {
                            None
                        },
                        preferred_read_replica: -1,
                        records: Some(r.records),
                        ..Default::default()
                    }
                }
                Err(e) => {
                    any_error = true;
                    PartitionData {
                        high_watermark: hw,
                        last_stable_offset: limit,
                        log_start_offset: log.log_start_offset(),
                        ..empty_partition(fp.partition, e.error_code())
                    }
                }
            });
        }
        responses.push(FetchableTopicResponse {
            topic: ft.topic.clone(),
            topic_id: if version >= 13 {
                ft.topic_id
            } else {
                Uuid::ZERO
            },
            partitions,
            ..Default::default()
        });
    }
    Gathered {
        response: FetchResponse {
            responses,
            ..Default::default()
        },
        bytes,
        any_error,
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: FetchRequest,
    version: i16,
    faults: &PartitionFaults,
) -> FetchResponse {
    // FetchManager.newContext: epoch 0 (initial) or -1 (final) is a full fetch, whatever the
    // session id; any other epoch must name a live session, and we keep none.
    if version >= 7 && req.session_epoch != 0 && req.session_epoch != -1 {
        return FetchResponse {
            error_code: ErrorCode::FetchSessionIdNotFound.code(),
            session_id: 0,
            ..Default::default()
        };
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let req = Arc::new(req);
    loop {
        // Register for wake-ups before reading, so an append between the read and the wait
        // is not missed.
        let notified = state.data_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (s, r, f) = (state.clone(), req.clone(), faults.clone());
        let g = super::blocking(move || gather(&s, &r, version, &f)).await;
        if g.bytes >= min_bytes.max(1)
            || g.any_error
            || Instant::now() >= deadline
            || state
                .shutting_down
                .load(std::sync::atomic::Ordering::Acquire)
        {
            return g.response;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {
                let (s, r, f) = (state.clone(), req.clone(), faults.clone());
                return super::blocking(move || gather(&s, &r, version, &f)).await.response;
            }
        }
    }
}
