//! Fetch (key 1), versions 4-17.
//!
//! Returns whole stored batches (file ranges, never decoded) from each requested offset, up
//! to the high watermark, or for read_committed (`isolation_level` 1, KIP-98) up to the last
//! stable offset, within `partition_max_bytes` per partition and `max_bytes` per response
//! (itself capped by the broker's `fetch.max.bytes`, KIP-541),
//! except that the first batch of the first non-empty partition is returned even when larger
//! (KIP-74). Every partition answers `last_stable_offset` = the partition's LSO, whatever the
//! isolation level (as Kafka). read_committed partitions also get `aborted_transactions`: the
//! aborted transactions (producer id, first offset) overlapping `[fetch offset, offset after
//! the returned batches)`, from the `.txnindex` files (Kafka's `collectAbortedTransactions`),
//! so the consumer can drop their records; read_uncommitted gets null, as Kafka. Long polls:
//! the answer waits up to `max_wait_ms` until `min_bytes` are available (counted below the
//! bound that applies, so a read_committed poll waits for the LSO to advance: transaction
//! markers wake it through `data_arrived`), and returns at once when any partition has an
//! error. Topic ids are used from v13 (UNKNOWN_TOPIC_ID).
//! `current_leader_epoch` (v9+) is checked (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
//!
//! Incremental fetch sessions (KIP-227) are served from v7 ([`crate::fetch_session`], Kafka's
//! `FetchManager`; v4-6 have no session fields and are always sessionless): epoch 0 is a full
//! fetch that creates a session of every requested partition (session id 0 when the
//! `max.incremental.fetch.session.cache.slots` cache is full and nothing can be evicted), epoch
//! -1 a full fetch without a session; both close the session they name. Any other epoch is
//! incremental: the request's partitions are added to / updated in the session, its forgotten
//! topics removed, the whole session fetched (long poll included), and the response carries
//! only the partitions with records, an error, or a high watermark or log start offset that
//! changed since the session last reported them; the session records only what that final
//! response reports. Session errors (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH,
//! FETCH_SESSION_TOPIC_ID_ERROR) are top-level, with session id 0 and no partitions. Faults
//! injected for a partition ([`crate::faults`]) answer it with their code and no records, like
//! any partition error (the long poll returns at once).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_wire::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_wire::messages::{FetchRequest, FetchResponse};
use kafka_wire::{ErrorCode, Uuid};
use tokio::time::Instant;

use crate::faults::PartitionFaults;
use crate::fetch_session::{FetchContext, FetchSessionCache};
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
    // Kafka (KafkaApis.handleFetchRequest): min(request max_bytes, broker fetch.max.bytes).
    // 0 still returns the first batch of the first non-empty partition (KIP-74).
    let max_total = (req.max_bytes.max(0) as usize).min(state.fetch_max_bytes);
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
            let lso = log.last_stable_offset();
            let limit = if read_committed { lso } else { hw };
            let room = max_total.saturating_sub(bytes);
            let max_bytes = (fp.partition_max_bytes.max(0) as usize).min(room);
            let result = log.read_with(fp.fetch_offset, max_bytes, limit, bytes == 0);
            // Kafka: the aborted transactions overlapping the returned data, for
            // read_committed only (null otherwise).
            let result = result.and_then(|r| {
                let aborted = if read_committed {
                    let found = log.aborted_transactions(fp.fetch_offset, r.next_offset)?;
                    Some(
                        found
                            .into_iter()
                            .map(|a| AbortedTransaction {
                                producer_id: a.producer_id,
                                first_offset: a.first_offset,
                                ..Default::default()
                            })
                            .collect(),
                    )
                } else {
                    None
                };
                Ok((r, aborted))
            });
            partitions.push(match result {
                Ok((r, aborted_transactions)) => {
                    bytes += r.records.len();
                    PartitionData {
                        partition_index: fp.partition,
                        error_code: 0,
                        high_watermark: r.high_watermark,
                        last_stable_offset: lso,
                        log_start_offset: r.log_start_offset,
                        aborted_transactions,
                        preferred_read_replica: -1,
                        records: Some(r.records),
                        ..Default::default()
                    }
                }
                Err(e) => {
                    any_error = true;
                    PartitionData {
                        high_watermark: hw,
                        last_stable_offset: lso,
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

fn sessions(state: &BrokerState) -> std::sync::MutexGuard<'_, FetchSessionCache> {
    state
        .fetch_sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    mut req: FetchRequest,
    version: i16,
    faults: &PartitionFaults,
) -> FetchResponse {
    // FetchManager.newContext: decided (and the session updated, its epoch advanced) once,
    // before the long poll.
    let context = sessions(state).new_context(version, &req, crate::state::now_ms());
    let context = match context {
        FetchContext::Error(code) => {
            return FetchResponse {
                error_code: code.code(),
                session_id: 0,
                ..Default::default()
            }
        }
        FetchContext::Incremental(mut ctx) => {
            // Fetch the whole session, with its cached per-partition parameters.
            req.topics = std::mem::take(&mut ctx.topics);
            FetchContext::Incremental(ctx)
        }
        other => other,
    };
    let req = Arc::new(req);
    let mut response = long_poll(state, &req, version, faults).await;
    // Only the response actually sent updates the session.
    match context {
        FetchContext::Full => {
            response.session_id =
                sessions(state).create_session(version, &req, &response, crate::state::now_ms());
        }
        FetchContext::Incremental(ctx) => {
            let dropped = sessions(state).finish_incremental(ctx, version, &mut response);
            recycle(dropped);
        }
        FetchContext::Sessionless | FetchContext::Error(_) => {}
    }
    response
}

/// Gives the read buffers of `partitions`' records back to the storage's pool (a buffer
/// still shared, e.g. spliced into a connection's write buffer, is only dropped).
pub(super) fn recycle(partitions: impl IntoIterator<Item = PartitionData>) {
    for records in partitions.into_iter().filter_map(|p| p.records) {
        crate::storage::recycle_read_buffer(records);
    }
}

/// Gathers `req` until `min_bytes` are available, an error, `max_wait_ms` or shutdown; the
/// last gather is the answer.
async fn long_poll(
    state: &Arc<BrokerState>,
    req: &Arc<FetchRequest>,
    version: i16,
    faults: &PartitionFaults,
) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    // Kafka's ReplicaManager.fetchMessages answers at once when there is nothing to fetch
    // (`fetchInfos.isEmpty`), e.g. a session close (epoch -1, no partitions).
    let nothing_to_fetch = req.topics.iter().all(|t| t.partitions.is_empty());
    loop {
        // Register for wake-ups before reading, so an append between the read and the wait
        // is not missed.
        let notified = state.data_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (s, r, f) = (state.clone(), req.clone(), faults.clone());
        let g = super::blocking(move || gather(&s, &r, version, &f)).await;
        if g.bytes >= min_bytes.max(1)
            || nothing_to_fetch
            || g.any_error
            || Instant::now() >= deadline
            || state
                .shutting_down
                .load(std::sync::atomic::Ordering::Acquire)
        {
            return g.response;
        }
        // Not enough yet: this gather is read again later, its buffers can be reused.
        recycle(g.response.responses.into_iter().flat_map(|t| t.partitions));
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {
                let (s, r, f) = (state.clone(), req.clone(), faults.clone());
                return super::blocking(move || gather(&s, &r, version, &f)).await.response;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_wire::records::BatchOptions;

    use super::*;
    use crate::handlers::test_support::{append, create_topic, open_state};
    use crate::storage::TxnMarker;

    fn request(isolation_level: i8) -> FetchRequest {
        FetchRequest {
            isolation_level,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                topic: "t".into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// What a fetch of partition 0 answered: records bytes, high watermark, last stable
    /// offset, aborted transactions as (producer id, first offset).
    type Answer = (usize, i64, i64, Option<Vec<(i64, i64)>>);

    fn fetch(state: &BrokerState, isolation_level: i8) -> Answer {
        let g = gather(
            state,
            &request(isolation_level),
            12,
            &PartitionFaults::default(),
        );
        let p = &g.response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        (
            p.records.as_ref().map_or(0, |r| r.len()),
            p.high_watermark,
            p.last_stable_offset,
            p.aborted_transactions
                .as_ref()
                .map(|a| a.iter().map(|t| (t.producer_id, t.first_offset)).collect()),
        )
    }

    #[test]
    fn read_committed_stops_at_the_lso_and_lists_aborted_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let state = open_state(dir.path());
        let topic = create_topic(&state, "t", 1, &[]);
        let partition = topic.partition(0).unwrap();
        let txn = BatchOptions {
            producer_id: 5,
            producer_epoch: 0,
            base_sequence: 0,
            is_transactional: true,
            ..BatchOptions::default()
        };
        let now = crate::state::now_ms();
        append(&state, "t", 0, txn, &[(1_000, "t1"), (1_000, "t2")], now);
        append(
            &state,
            "t",
            0,
            BatchOptions::default(),
            &[(1_000, "plain")],
            now,
        );

        // read_committed: nothing before the open transaction's first offset.
        let (bytes, hw, lso, aborted) = fetch(&state, READ_COMMITTED);
        assert_eq!((bytes, hw, lso, aborted), (0, 3, 0, Some(vec![])));
        // read_uncommitted sees everything; it gets the LSO too, and null aborted txns.
        let (bytes, hw, lso, aborted) = fetch(&state, 0);
        assert!(bytes > 0);
        assert_eq!((hw, lso, aborted), (3, 0, None));

        partition
            .log()
            .append_txn_marker(
                TxnMarker {
                    producer_id: 5,
                    producer_epoch: 0,
                    coordinator_epoch: 0,
                    commit: false,
                },
                now,
            )
            .unwrap();
        let (bytes, hw, lso, aborted) = fetch(&state, READ_COMMITTED);
        assert!(bytes > 0);
        assert_eq!((hw, lso, aborted), (4, 4, Some(vec![(5, 0)])));
    }
}
