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

use bytes::BytesMut;
use kafka_wire::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_wire::messages::{ProduceRequest, ProduceResponse};
use kafka_wire::ErrorCode;

use crate::faults::PartitionFaults;
use crate::state::{now_ms, BrokerState};
use crate::storage::StorageError;

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
pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: ProduceRequest,
    version: i16,
    faults: &PartitionFaults,
) -> ProduceOutcome {
    let acks = req.acks;
    let response = if appends_in_page_cache(state, &req) {
        append_all(state, req, version, faults)
    } else {
        let s = state.clone();
        let faults = faults.clone();
        super::blocking(move || append_all(&s, req, version, &faults)).await
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
/// task (see [`appends_in_page_cache`]).
const INLINE_APPEND_MAX_BYTES: usize = 1024 * 1024;

/// Whether `req` can be appended right on the connection's task instead of the blocking pool:
/// at most [`INLINE_APPEND_MAX_BYTES`] of records, and no partition that would fsync or roll
/// ([`PartitionLog::append_may_block`](crate::storage::PartitionLog::append_may_block)), so
/// the append only copies into the page cache (as Kafka's request handler threads do). This
/// saves two thread hand-offs per request, which dominated broker-lite's CPU time under a
/// stream of small produce requests (see docs/PERFORMANCE.md).
fn appends_in_page_cache(state: &BrokerState, req: &ProduceRequest) -> bool {
    let bytes: usize = req
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    if bytes > INLINE_APPEND_MAX_BYTES {
        return false;
    }
    let now = now_ms();
    req.topic_data.iter().all(|t| {
        let Some(topic) = state.topic(&t.name) else {
            return true;
        };
        t.partition_data.iter().all(|p| {
            let size = p.records.as_ref().map_or(0, |r| r.len());
            topic
                .partition(p.index)
                .is_none_or(|part| !part.log().append_may_block(size, now))
        })
    })
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

fn append_all(
    state: &BrokerState,
    req: ProduceRequest,
    version: i16,
    faults: &PartitionFaults,
) -> ProduceResponse {
    let now = now_ms();
    // KafkaApis: transactional records need a transactional id (else the whole request is
    // TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    let transactional_without_id = req.transactional_id.is_none()
        && req
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .any(|p| p.records.as_deref().is_some_and(is_transactional));
    let mut responses = Vec::with_capacity(req.topic_data.len());
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
            // The request buffer is shared by every partition of the request; the storage layer
            // patches base offsets in place, so it gets its own copy of this partition's bytes.
            let mut bytes = BytesMut::from(&records[..]);
            let result = partition.log().append(&mut bytes, now);
            partition_responses.push(match result {
                Ok(info) => {
                    if info.duplicate {
                        tracing::debug!(topic = %topic_data.name, partition = pd.index, base_offset = info.base_offset, "duplicate batch answered with its original offset");
                    }
                    PartitionProduceResponse {
                        index: pd.index,
                        error_code: 0,
                        base_offset: info.base_offset,
                        // -1 for CreateTime; for a duplicate, the original append time.
                        log_append_time_ms: info.log_append_time,
                        log_start_offset: info.log_start_offset,
                        ..Default::default()
                    }
                }
                Err(e) => {
                    tracing::debug!(topic = %topic_data.name, partition = pd.index, error = %e, "produce rejected");
                    // Kafka gives no message for producer-state errors (only
                    // RecordValidationExceptions carry one).
                    let message = match e {
                        StorageError::OutOfOrderSequence(_)
                        | StorageError::InvalidProducerEpoch(_)
                        | StorageError::InvalidTxnState(_) => None,
                        ref other => Some(other.to_string()),
                    };
                    partition_error(pd.index, e.error_code(), message)
                }
            });
        }
        responses.push(TopicProduceResponse {
            name: topic_data.name,
            partition_responses,
            ..Default::default()
        });
    }
    ProduceResponse {
        responses,
        ..Default::default()
    }
}
