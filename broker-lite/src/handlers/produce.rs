//! Produce (key 0), versions 3-11 (record format v2 only, as Kafka 4.0).
//!
//! Each partition's `records` (exactly one v2 batch, base offset 0, no zstd before v7, as
//! Kafka's `ProduceRequest.validateRecords` requires) is validated and appended by the
//! storage layer, which patches base offsets in place without re-encoding records or
//! recomputing CRCs (LogAppendTime topics excepted). Errors per partition are Kafka's:
//! UNKNOWN_TOPIC_OR_PARTITION (Produce never creates topics), CORRUPT_MESSAGE,
//! INVALID_RECORD, MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, KAFKA_STORAGE_ERROR. `acks` must
//! be 0, 1 or -1 (else INVALID_REQUIRED_ACKS); with acks=0 no response is sent. With one
//! broker, acks=1 and acks=-1 are answered once the append is in the log (the high watermark
//! moves with it). With acks=0 no response is sent, and, as Kafka's `KafkaApis` does, the
//! connection is closed when any partition failed, since that is the only way the client can
//! learn of it.
//!
//! Transactional producers (KIP-98): transactional batches (attribute bit 4) are appended
//! like idempotent ones; the storage layer opens the producer's transaction in the partition
//! at the first one (holding the last stable offset) and rejects a non-transactional batch
//! while it is open (INVALID_TXN_STATE). A request with transactional batches but no
//! `transactional_id` is refused whole with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as
//! Kafka's `KafkaApis.handleProduceRequest`. KIP-890's partition verification is not done:
//! the partition's membership in the transaction is the client's and coordinator's business.
//!
//! Idempotent producers (KIP-98, KIP-360): batches with a producer id are checked by the
//! storage layer against the partition's producer state under the partition lock, as Kafka's
//! `UnifiedLog.analyzeAndValidateProducerState`. A retry of a batch already in the log (same
//! epoch and sequence range as one of the producer's last 5) appends nothing and is answered
//! with NONE and the original base offset, as Kafka does; its `log_append_time_ms` is the one
//! of the original response (-1 on CreateTime topics, where Kafka returns the batch's max
//! timestamp). An old epoch is INVALID_PRODUCER_EPOCH, a sequence gap or a new epoch not
//! starting at 0 is OUT_OF_ORDER_SEQUENCE_NUMBER; like Kafka (these are not
//! `RecordValidationException`s) none of these, nor INVALID_TXN_STATE, carries an error
//! message. Faults injected for a
//! partition ([`crate::faults`]) answer it with their code and append nothing to it.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_wire::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_wire::messages::{ProduceRequest, ProduceResponse};
use kafka_wire::ErrorCode;

use crate::faults::PartitionFaults;
use crate::state::{now_ms, BrokerState, Partition};
use crate::storage::{PartitionLog, StorageError};

fn partition_error(
    index: i32,
    code: ErrorCode,
    message: Option<String>,
) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code.code(),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message: message,
        ..Default::default()
    }
}

/// What to do after a produce request.
pub(super) enum ProduceOutcome {
    /// Send this response.
    Respond(ProduceResponse),
    /// acks=0 and everything was appended: send nothing.
    Silent,
    /// acks=0 and some partition failed: close the connection.
    CloseConnection,
}

/// Appends everything and decides what to answer.
///
/// Requests of at most [`INLINE_APPEND_MAX_BYTES`] of records are appended right on the
/// connection's task, partition by partition, when the append only copies into the page cache
/// (as Kafka's request handler threads do): the partition's lock is taken once, and under it
/// [`PartitionLog::append_may_block`] says whether the append would fsync or roll; those
/// partitions are appended afterwards on the blocking pool. This saves two thread hand-offs
/// per request, which dominated broker-lite's CPU time under a stream of small produce
/// requests (see docs/PERFORMANCE.md). Larger requests go to the blocking pool whole.
pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: ProduceRequest,
    version: i16,
    faults: &PartitionFaults,
) -> ProduceOutcome {
    let acks = req.acks;
    let now = now_ms();
    let response = if records_bytes(&req) <= INLINE_APPEND_MAX_BYTES {
        let (mut response, deferred) = append_all(state, req, version, faults, now, true);
        if !deferred.is_empty() {
            let answers = super::blocking(move || {
                deferred
                    .into_iter()
                    .map(|d| {
                        let mut log = d.partition.log();
                        let answer = append_partition(&mut log, &d.topic, d.index, &d.records, now);
                        (d.at, answer)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            for ((t, p), answer) in answers {
                response.responses[t].partition_responses[p] = answer;
            }
        }
        response
    } else {
        let s = state.clone();
        let faults = faults.clone();
        super::blocking(move || append_all(&s, req, version, &faults, now, false).0).await
    };
    state.data_arrived.notify_waiters();
    if acks != 0 {
        return ProduceOutcome::Respond(response);
    }
    let failed = response
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .any(|p| p.error_code != 0);
    if failed {
        ProduceOutcome::CloseConnection
    } else {
        ProduceOutcome::Silent
    }
}

/// Requests with at most this many bytes of records may be appended on the connection's own
/// task (see [`handle`]).
const INLINE_APPEND_MAX_BYTES: usize = 1024 * 1024;

/// The bytes of records in `req`.
fn records_bytes(req: &ProduceRequest) -> usize {
    req.topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum()
}

/// A validated partition whose append may wait on the disk, left for the blocking pool.
struct Deferred {
    /// Its place in the response: (topic, partition) positions.
    at: (usize, usize),
    topic: String,
    index: i32,
    partition: Arc<Partition>,
    records: Bytes,
}

/// Kafka's `ProduceRequest.validateRecords` (v3+: exactly one magic-2 batch per partition, no
/// zstd before v7) and `UnifiedLog.analyzeAndValidateRecords`'s rule that a client batch
/// starts at base offset 0. Deeper validation (CRC, counts) is the storage layer's.
fn validate_records(version: i16, records: &[u8]) -> Result<(), (ErrorCode, String)> {
    // The order of checks is ByteBufferLogInputStream.nextBatchSize's, then validateRecords'.
    let no_batch = || {
        Err((
            ErrorCode::InvalidRecord,
            format!("Produce requests with version {version} must have at least one record batch per partition"),
        ))
    };
    if records.len() < 12 {
        return no_batch();
    }
    let batch_length = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
    if batch_length < 14 {
        return Err((
            ErrorCode::CorruptMessage,
            format!("Record size {batch_length} is less than the minimum record overhead (14)"),
        ));
    }
    if records.len() < 17 {
        return no_batch();
    }
    let magic = records[16] as i8;
    if !(0..=2).contains(&magic) {
        return Err((
            ErrorCode::CorruptMessage,
            format!("Invalid magic found in record: {magic}"),
        ));
    }
    let size = 12 + batch_length as usize;
    if size > records.len() {
        return no_batch();
    }
    if magic != 2 {
        return Err((
            ErrorCode::InvalidRecord,
            format!("Produce requests with version {version} are only allowed to contain record batches with magic version 2"),
        ));
    }
    let attributes = i16::from_be_bytes([records[21], records[22]]);
    if version < 7 && attributes & 0x07 == 4 {
        return Err((
            ErrorCode::UnsupportedCompressionType,
            format!("Produce requests with version {version} are not allowed to use ZStandard compression"),
        ));
    }
    if size < records.len() {
        return Err((
            ErrorCode::InvalidRecord,
            format!("Produce requests with version {version} are only allowed to contain exactly one record batch per partition"),
        ));
    }
    let mut base = [0u8; 8];
    base.copy_from_slice(&records[..8]);
    let base_offset = i64::from_be_bytes(base);
    if base_offset != 0 {
        return Err((
            ErrorCode::InvalidRecord,
            format!("The baseOffset of the record batch in the append should be 0, but it is {base_offset}"),
        ));
    }
    Ok(())
}

/// Whether the first batch of `records` has the transactional attribute (bit 4).
fn is_transactional(records: &[u8]) -> bool {
    records.len() >= 23 && i16::from_be_bytes([records[21], records[22]]) & 0x10 != 0
}

/// Checks and appends every partition of `req` at `now`. With `inline` (on the connection's
/// task), a partition whose append may block ([`PartitionLog::append_may_block`], checked
/// under the same lock as the append) is not appended: it is returned, and its place in the
/// response is to be filled with [`append_partition`]'s answer.
fn append_all(
    state: &BrokerState,
    req: ProduceRequest,
    version: i16,
    faults: &PartitionFaults,
    now: i64,
    inline: bool,
) -> (ProduceResponse, Vec<Deferred>) {
    // KafkaApis: transactional records need a transactional id (else the whole request is
    // TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    let transactional_without_id = req.transactional_id.is_none()
        && req
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .any(|p| p.records.as_deref().is_some_and(is_transactional));
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut deferred = Vec::new();
    for topic_data in req.topic_data {
        let topic = state.topic(&topic_data.name);
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for pd in topic_data.partition_data {
            if let Some(code) = faults.get(&topic_data.name, pd.index) {
                partition_responses.push(partition_error(pd.index, code, None));
                continue;
            }
            if !(-1..=1).contains(&req.acks) {
                partition_responses.push(partition_error(
                    pd.index,
                    ErrorCode::InvalidRequiredAcks,
                    None,
                ));
                continue;
            }
            if transactional_without_id {
                partition_responses.push(partition_error(
                    pd.index,
                    ErrorCode::TransactionalIdAuthorizationFailed,
                    None,
                ));
                continue;
            }
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(pd.index)) else {
                partition_responses.push(partition_error(
                    pd.index,
                    ErrorCode::UnknownTopicOrPartition,
                    None,
                ));
                continue;
            };
            let Some(records) = pd.records else {
                partition_responses.push(partition_error(
                    pd.index,
                    ErrorCode::CorruptMessage,
                    Some("null records".into()),
                ));
                continue;
            };
            if let Err((code, message)) = validate_records(version, &records) {
                partition_responses.push(partition_error(pd.index, code, Some(message)));
                continue;
            }
            let mut log = partition.log();
            if inline && log.append_may_block(records.len(), now) {
                drop(log);
                deferred.push(Deferred {
                    at: (responses.len(), partition_responses.len()),
                    topic: topic_data.name.clone(),
                    index: pd.index,
                    partition,
                    records,
                });
                // Replaced by the deferred append's answer.
                partition_responses.push(PartitionProduceResponse::default());
                continue;
            }
            partition_responses.push(append_partition(
                &mut log,
                &topic_data.name,
                pd.index,
                &records,
                now,
            ));
        }
        responses.push(TopicProduceResponse {
            name: topic_data.name,
            partition_responses,
            ..Default::default()
        });
    }
    let response = ProduceResponse {
        responses,
        ..Default::default()
    };
    (response, deferred)
}

/// Appends one partition's validated batch and answers for it.
fn append_partition(
    log: &mut PartitionLog,
    topic: &str,
    index: i32,
    records: &[u8],
    now: i64,
) -> PartitionProduceResponse {
    // The request buffer is shared by every partition of the request; the storage layer
    // patches base offsets in place, so it gets its own copy of this partition's bytes.
    let mut bytes = BytesMut::from(records);
    match log.append(&mut bytes, now) {
        Ok(info) => {
            if info.duplicate {
                tracing::debug!(
                    topic,
                    partition = index,
                    base_offset = info.base_offset,
                    "duplicate batch answered with its original offset"
                );
            }
            PartitionProduceResponse {
                index,
                error_code: 0,
                base_offset: info.base_offset,
                // -1 for CreateTime; for a duplicate, the original append time.
                log_append_time_ms: info.log_append_time,
                log_start_offset: info.log_start_offset,
                ..Default::default()
            }
        }
        Err(e) => {
            tracing::debug!(topic, partition = index, error = %e, "produce rejected");
            // Kafka gives no message for producer-state errors (only RecordValidationExceptions
            // carry one).
            let message = match e {
                StorageError::OutOfOrderSequence(_)
                | StorageError::InvalidProducerEpoch(_)
                | StorageError::InvalidTxnState(_) => None,
                ref other => Some(other.to_string()),
            };
            partition_error(index, e.error_code(), message)
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_wire::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_wire::records::{BatchOptions, RecordBatchBuilder};

    use super::*;
    use crate::handlers::test_support::{create_topic, open_state};

    fn batch(value: &str) -> Bytes {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        b.append(now_ms(), Some(b"k"), Some(value.as_bytes()), &[])
            .unwrap();
        b.finish().unwrap()
    }

    fn topic(name: &str, partitions: &[(i32, &str)]) -> TopicProduceData {
        TopicProduceData {
            name: name.into(),
            partition_data: partitions
                .iter()
                .map(|&(index, value)| PartitionProduceData {
                    index,
                    records: Some(batch(value)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn log_end(state: &BrokerState, topic: &str, partition: i32) -> i64 {
        let p = state.topic(topic).unwrap().partition(partition).unwrap();
        let end = p.log().log_end_offset();
        end
    }

    /// One request over a topic whose appends fsync (`flush.messages=1`: appended on the
    /// blocking pool) and one whose appends only copy into the page cache (appended on the
    /// connection's task): every partition is appended and answered in its place.
    #[tokio::test]
    async fn appends_that_may_block_are_finished_on_the_blocking_pool_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let state = open_state(dir.path());
        create_topic(&state, "synced", 2, &[("flush.messages", "1")]);
        create_topic(&state, "cached", 1, &[]);
        let may_block = |topic: &str| {
            let p = state.topic(topic).unwrap().partition(0).unwrap();
            let may = p.log().append_may_block(100, now_ms());
            may
        };
        assert!(may_block("synced"));
        assert!(!may_block("cached"));

        let req = ProduceRequest {
            acks: -1,
            topic_data: vec![
                topic("cached", &[(0, "a")]),
                topic("synced", &[(1, "b"), (0, "c"), (7, "d")]),
                topic("cached", &[(0, "e")]),
            ],
            ..Default::default()
        };
        let ProduceOutcome::Respond(r) = handle(&state, req, 9, &PartitionFaults::default()).await
        else {
            panic!("acks=-1 is answered");
        };
        let answers: Vec<(&str, i32, i16, i64)> = r
            .responses
            .iter()
            .flat_map(|t| {
                t.partition_responses
                    .iter()
                    .map(|p| (t.name.as_str(), p.index, p.error_code, p.base_offset))
            })
            .collect();
        let unknown = ErrorCode::UnknownTopicOrPartition.code();
        assert_eq!(
            answers,
            vec![
                ("cached", 0, 0, 0),
                ("synced", 1, 0, 0),
                ("synced", 0, 0, 0),
                ("synced", 7, unknown, -1),
                ("cached", 0, 0, 1),
            ]
        );
        assert_eq!(
            (
                log_end(&state, "cached", 0),
                log_end(&state, "synced", 0),
                log_end(&state, "synced", 1)
            ),
            (2, 1, 1)
        );
    }
}
