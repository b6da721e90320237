//! [`StorageError`], the error type of the storage layer, and its Kafka error codes.

use std::io;
use std::path::{Path, PathBuf};

use kafka_wire::ErrorCode;

use super::config::ConfigError;

/// Result alias of the storage layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage layer.
///
/// The request-facing variants map one to one onto Kafka error codes through
/// [`StorageError::error_code`], so the network layer can answer with the code Kafka would
/// send.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O operation on a log file failed (Kafka: `KAFKA_STORAGE_ERROR`).
    #[error("I/O error while trying to {op} {path}: {source}")]
    Io {
        /// What was being done ("write", "open", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record batch to append is malformed: a truncated batch, a length field that does not
    /// match the buffer, or a CRC that does not match (Kafka: `CORRUPT_MESSAGE`).
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    /// A record batch is larger than `max.message.bytes` (Kafka: `MESSAGE_TOO_LARGE`).
    #[error("record batch of {size} bytes is larger than max.message.bytes ({max})")]
    MessageTooLarge {
        /// Size of the batch, its 12-byte log overhead included.
        size: usize,
        /// The configured `max.message.bytes`.
        max: i32,
    },
    /// The batches of one append are larger than `segment.bytes` (Kafka:
    /// `RECORD_LIST_TOO_LARGE`).
    #[error("append of {size} bytes is larger than segment.bytes ({segment_bytes})")]
    RecordListTooLarge {
        /// Total size of the append.
        size: usize,
        /// The configured `segment.bytes`.
        segment_bytes: i32,
    },
    /// A batch is well formed but not acceptable: wrong magic, inconsistent record count,
    /// control batch from a client, no batch at all... (Kafka: `INVALID_RECORD`).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A batch's timestamps are not acceptable, for example a producer batch claiming
    /// `LogAppendTime` (Kafka: `INVALID_TIMESTAMP`).
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// The requested offset is outside the log (Kafka: `OFFSET_OUT_OF_RANGE`).
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// The log start offset.
        log_start_offset: i64,
        /// The upper bound that applied: the log end offset for reads, the high watermark for
        /// `DeleteRecords`.
        log_end_offset: i64,
    },
    /// The operation is forbidden by the topic's configuration, e.g. `DeleteRecords` on a
    /// topic without `cleanup.policy=delete` (Kafka: `POLICY_VIOLATION`).
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    /// A configuration value is invalid (Kafka: `INVALID_CONFIG`).
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// Data that was already in the log turned out to be inconsistent while serving it (Kafka:
    /// `KAFKA_STORAGE_ERROR`). Recovery on the next open truncates such data.
    #[error("corrupt log file {path} at position {position}: {reason}")]
    CorruptLog {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the offending batch.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// An earlier write failed half-way; the log refuses further operations until it is
    /// reopened (which recovers it). Kafka takes the log directory offline in that case
    /// (`KAFKA_STORAGE_ERROR`).
    #[error("log {0} is offline after an earlier I/O failure; reopen it to recover")]
    LogOffline(PathBuf),
    /// An idempotent producer's batch does not follow its last sequence number, or a new epoch
    /// does not start at sequence 0 (KIP-98 / KIP-360; Kafka: `OUT_OF_ORDER_SEQUENCE_NUMBER`).
    /// Nothing of the append was written.
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    /// An idempotent producer's epoch is older than the partition's current epoch for that
    /// producer id (KIP-98 fencing; Kafka: `INVALID_PRODUCER_EPOCH`). Nothing of the append was
    /// written.
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    /// A producer's write does not fit its transaction state in this partition, e.g. a
    /// non-transactional batch while its transaction is open (KIP-98; Kafka:
    /// `INVALID_TXN_STATE`, "Expected transactional write from producer"). Nothing of the
    /// append was written.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// A transaction marker comes from a transaction coordinator older than the one that
    /// last wrote a marker for this producer (a zombie coordinator; KIP-98, Kafka:
    /// `TRANSACTION_COORDINATOR_FENCED`). Nothing was written.
    #[error("transaction coordinator fenced: {0}")]
    TransactionCoordinatorFenced(String),
    /// The log was closed (broker shutdown or topic deletion). Kafka answers
    /// `NOT_LEADER_OR_FOLLOWER` for a replica that is no longer hosted, so clients refresh
    /// their metadata.
    #[error("log {0} is closed")]
    LogClosed(PathBuf),
}

impl StorageError {
    /// The Kafka error code to put in a response for this error.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            StorageError::Io { .. } | StorageError::CorruptLog { .. } => {
                ErrorCode::KafkaStorageError
            }
            StorageError::LogOffline(_) => ErrorCode::KafkaStorageError,
            StorageError::LogClosed(_) => ErrorCode::NotLeaderOrFollower,
            StorageError::CorruptMessage(_) => ErrorCode::CorruptMessage,
            StorageError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            StorageError::RecordListTooLarge { .. } => ErrorCode::RecordListTooLarge,
            StorageError::InvalidRecord(_) => ErrorCode::InvalidRecord,
            StorageError::InvalidTimestamp(_) => ErrorCode::InvalidTimestamp,
            StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            StorageError::PolicyViolation(_) => ErrorCode::PolicyViolation,
            StorageError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            StorageError::OutOfOrderSequence(_) => ErrorCode::OutOfOrderSequenceNumber,
            StorageError::InvalidProducerEpoch(_) => ErrorCode::InvalidProducerEpoch,
            StorageError::InvalidTxnState(_) => ErrorCode::InvalidTxnState,
            StorageError::TransactionCoordinatorFenced(_) => {
                ErrorCode::TransactionCoordinatorFenced
            }
        }
    }

    /// Builds a `map_err` adapter that wraps an [`io::Error`] with what was done and where.
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.to_path_buf();
        move |source| StorageError::Io { op, path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_match_kafka() {
        let cases: Vec<(StorageError, i16)> = vec![
            (StorageError::CorruptMessage("x".into()), 2),
            (StorageError::MessageTooLarge { size: 1, max: 0 }, 10),
            (
                StorageError::RecordListTooLarge {
                    size: 1,
                    segment_bytes: 0,
                },
                18,
            ),
            (StorageError::InvalidRecord("x".into()), 87),
            (StorageError::InvalidTimestamp("x".into()), 32),
            (
                StorageError::OffsetOutOfRange {
                    offset: 5,
                    log_start_offset: 0,
                    log_end_offset: 1,
                },
                1,
            ),
            (StorageError::PolicyViolation("x".into()), 44),
            (
                StorageError::InvalidConfig(ConfigError::Invalid {
                    name: "segment.ms".into(),
                    value: "x".into(),
                    reason: "bad".into(),
                }),
                40,
            ),
            (StorageError::OutOfOrderSequence("x".into()), 45),
            (StorageError::InvalidProducerEpoch("x".into()), 47),
            (StorageError::InvalidTxnState("x".into()), 48),
            (StorageError::TransactionCoordinatorFenced("x".into()), 52),
            (StorageError::LogOffline(PathBuf::from("/x")), 56),
            (StorageError::LogClosed(PathBuf::from("/x")), 6),
            (
                StorageError::io("read", Path::new("/x"))(io::Error::other("boom")),
                56,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.error_code().code(), code, "{err}");
        }
    }
}
