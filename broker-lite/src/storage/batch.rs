//! Raw record batch v2 headers: parsing, validation of appended batches, and the in-place
//! patches the broker makes (base offset, leader epoch, `LogAppendTime`).
//!
//! The storage layer never decodes records; it only reads the fixed 61-byte header.

use super::config::{LogConfig, MessageTimestampType};
use super::error::{Result, StorageError};

/// Bytes before a batch's `batchLength`-counted part: `baseOffset` and `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header, up to and including `recordCount`.
pub const BATCH_HEADER_SIZE: usize = 61;
/// The only supported `magic`.
pub const MAGIC_V2: i8 = 2;
/// `NO_TIMESTAMP`: -1.
pub const NO_TIMESTAMP: i64 = -1;
/// `RecordBatch.NO_SEQUENCE`: -1, the base sequence of batches without one (non-idempotent
/// producers, coordinator writes, transaction markers).
pub const NO_SEQUENCE: i32 = -1;

const BATCH_LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORD_COUNT_OFFSET: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
/// Highest compression codec id Kafka defines (zstd).
const MAX_CODEC: i16 = 4;

/// Smallest legal `batchLength`: the header after the `batchLength` field.
pub(crate) const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32;

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// The fixed fields of a v2 record batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the first [`BATCH_HEADER_SIZE`] bytes of `b` (which must be that long).
    pub fn parse(b: &[u8]) -> BatchHeader {
        debug_assert!(b.len() >= BATCH_HEADER_SIZE);
        BatchHeader {
            base_offset: i64_at(b, 0),
            batch_length: i32_at(b, BATCH_LENGTH_OFFSET),
            partition_leader_epoch: i32_at(b, PARTITION_LEADER_EPOCH_OFFSET),
            magic: b[MAGIC_OFFSET] as i8,
            crc: u32::from_be_bytes([
                b[CRC_OFFSET],
                b[CRC_OFFSET + 1],
                b[CRC_OFFSET + 2],
                b[CRC_OFFSET + 3],
            ]),
            attributes: i16_at(b, ATTRIBUTES_OFFSET),
            last_offset_delta: i32_at(b, LAST_OFFSET_DELTA_OFFSET),
            max_timestamp: i64_at(b, MAX_TIMESTAMP_OFFSET),
            producer_id: i64_at(b, PRODUCER_ID_OFFSET),
            producer_epoch: i16_at(b, PRODUCER_EPOCH_OFFSET),
            base_sequence: i32_at(b, BASE_SEQUENCE_OFFSET),
            record_count: i32_at(b, RECORD_COUNT_OFFSET),
        }
    }

    /// Total size of the batch in bytes (`12 + batchLength`), or `None` for a `batchLength`
    /// below the header size.
    pub fn size(&self) -> Option<u64> {
        if self.batch_length < MIN_BATCH_LENGTH {
            return None;
        }
        Some(LOG_OVERHEAD as u64 + self.batch_length as u64)
    }

    /// `baseOffset + lastOffsetDelta`, saturating (callers validate the delta first).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset after the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Whether attribute bit 3 (`LogAppendTime`) is set.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_FLAG != 0
    }

    /// Whether attribute bit 4 (transactional, KIP-98) is set.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// Whether attribute bit 5 (control batch: transaction markers) is set.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// Whether the batch was written by an idempotent or transactional producer (KIP-98:
    /// `producerId >= 0`).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence number of the batch's last record: `baseSequence + lastOffsetDelta`,
    /// wrapping to 0 after `i32::MAX` as Kafka's `DefaultRecordBatch.incrementSequence` does,
    /// and -1 (`NO_SEQUENCE`) for a batch without sequence (Kafka's `lastSequence`). Never
    /// overflows, whatever the header holds.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        super::producer_state::increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// The leader epoch, `None` when the batch has none (-1).
    pub fn leader_epoch(&self) -> Option<i32> {
        (self.partition_leader_epoch >= 0).then_some(self.partition_leader_epoch)
    }
}

/// CRC-32C of a complete batch (bytes 21 to the end), as stored in its `crc` field.
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// One batch of an append, validated: where it sits in the caller's buffer and its header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ValidatedBatch {
    /// Byte position in the append buffer.
    pub start: usize,
    /// Total size.
    pub size: usize,
    /// The header as received.
    pub header: BatchHeader,
}

/// Splits `records` into batches and validates each as Kafka's `analyzeAndValidateRecords`
/// and `LogValidator.validateBatch` do for a client append.
#[cfg(test)]
pub(crate) fn validate_client_batches(
    records: &[u8],
    config: &LogConfig,
) -> Result<Vec<ValidatedBatch>> {
    validate_batches(records, config, false)
}

/// Splits `records` into batches and validates each as Kafka's `analyzeAndValidateRecords`
/// and `LogValidator.validateBatch` do for a client append, or with `from_coordinator` for a
/// coordinator's append (origin `COORDINATOR`: a batch with a producer id may have no
/// sequence, as the group coordinator's transactional offset commits).
pub(crate) fn validate_batches(
    records: &[u8],
    config: &LogConfig,
    from_coordinator: bool,
) -> Result<Vec<ValidatedBatch>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < records.len() {
        let rest = &records[pos..];
        if rest.len() < LOG_OVERHEAD {
            return Err(StorageError::CorruptMessage(format!(
                "{} trailing bytes after the last complete batch",
                rest.len()
            )));
        }
        let batch_length = i32_at(rest, BATCH_LENGTH_OFFSET);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(StorageError::CorruptMessage(format!(
                "batch length {batch_length} is smaller than the batch header"
            )));
        }
        let size = LOG_OVERHEAD + batch_length as usize;
        if rest.len() < size {
            return Err(StorageError::CorruptMessage(format!(
                "batch of {size} bytes is truncated to {} bytes",
                rest.len()
            )));
        }
        let batch = &rest[..size];
        let header = BatchHeader::parse(batch);
        if header.magic != MAGIC_V2 {
            return Err(StorageError::InvalidRecord(format!(
                "unsupported record batch magic {} (only 2 is accepted)",
                header.magic
            )));
        }
        let max = config.max_message_bytes;
        if size > usize::try_from(max).unwrap_or(0) {
            return Err(StorageError::MessageTooLarge { size, max });
        }
        let crc = compute_crc(batch);
        if crc != header.crc {
            return Err(StorageError::CorruptMessage(format!(
                "record batch CRC {:#010x} does not match the computed {crc:#010x}",
                header.crc
            )));
        }
        validate_batch_fields(&header, from_coordinator)?;
        if config.cleanup_policy.compact {
            validate_keys(batch)?;
        }
        out.push(ValidatedBatch {
            start: pos,
            size,
            header,
        });
        pos += size;
    }
    if out.is_empty() {
        return Err(StorageError::InvalidRecord(
            "an append must contain at least one record batch".into(),
        ));
    }
    Ok(out)
}

/// Kafka's `LogValidator.validateBatch` for `AppendOrigin.CLIENT` (or `COORDINATOR`, which
/// only differs in allowing a producer id without a sequence here), plus the checks on the
/// header fields the storage layer relies on.
fn validate_batch_fields(h: &BatchHeader, from_coordinator: bool) -> Result<()> {
    if h.last_offset_delta < 0 {
        return Err(StorageError::InvalidRecord(format!(
            "batch has an invalid offset range: lastOffsetDelta {}",
            h.last_offset_delta
        )));
    }
    if h.record_count <= 0 {
        return Err(StorageError::InvalidRecord(format!(
            "invalid reported count for record batch: {}",
            h.record_count
        )));
    }
    if i64::from(h.last_offset_delta) + 1 != i64::from(h.record_count) {
        return Err(StorageError::InvalidRecord(format!(
            "inconsistent batch offset range (lastOffsetDelta {}) and count of records {}",
            h.last_offset_delta, h.record_count
        )));
    }
    if h.attributes & CONTROL_FLAG != 0 {
        return Err(StorageError::InvalidRecord(
            "clients are not allowed to write control records".into(),
        ));
    }
    if h.attributes & COMPRESSION_MASK > MAX_CODEC {
        return Err(StorageError::InvalidRecord(format!(
            "unknown compression codec {}",
            h.attributes & COMPRESSION_MASK
        )));
    }
    if h.producer_id >= 0 && h.base_sequence < 0 && !from_coordinator {
        return Err(StorageError::InvalidRecord(format!(
            "invalid sequence number {} in record batch with producerId {}",
            h.base_sequence, h.producer_id
        )));
    }
    if h.is_log_append_time() {
        return Err(StorageError::InvalidTimestamp(
            "producer should not set timestamp type to LogAppendTime".into(),
        ));
    }
    Ok(())
}

/// Largest decompressed records section decoded to check keys on a compacted topic.
const MAX_KEY_CHECK_DECOMPRESSED: usize = 128 * 1024 * 1024;

/// Kafka's `LogValidator.validateKey`: every record appended to a compacted topic must have
/// a key (`INVALID_RECORD` otherwise). The only place an append decodes records.
fn validate_keys(batch: &[u8]) -> Result<()> {
    let bad = |reason: String| StorageError::InvalidRecord(reason);
    let decoded =
        kafka_wire::records::RecordBatch::from_bytes(bytes::Bytes::copy_from_slice(batch))
            .map_err(|e| bad(format!("cannot decode record batch: {e}")))?;
    let mut records = decoded
        .records(MAX_KEY_CHECK_DECOMPRESSED)
        .map_err(|e| bad(format!("cannot decode records: {e}")))?;
    while let Some(record) = records.next_borrowed() {
        let record = record.map_err(|e| bad(format!("cannot decode record: {e}")))?;
        if record.key.is_none() {
            return Err(bad(format!(
                "Compacted topic cannot accept message without key (offset delta {})",
                record.offset - decoded.base_offset()
            )));
        }
    }
    Ok(())
}

/// Writes the broker-assigned fields into a validated batch: `baseOffset` and
/// `partitionLeaderEpoch` (neither covered by the CRC), and for `LogAppendTime` the
/// timestamp-type bit and `maxTimestamp` (covered, so the CRC is recomputed). Returns the
/// batch's header as stored.
pub(crate) fn patch_for_append(
    batch: &mut [u8],
    base_offset: i64,
    leader_epoch: i32,
    timestamp_type: MessageTimestampType,
    now_ms: i64,
) -> BatchHeader {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
    if timestamp_type == MessageTimestampType::LogAppendTime {
        let attributes = i16_at(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_FLAG;
        batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&now_ms.to_be_bytes());
        let crc = compute_crc(batch);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
    BatchHeader::parse(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::{batch, batch_with};
    use kafka_wire::records::{BatchOptions, RecordBatch, RecordBatchBuilder, TimestampType};

    #[test]
    fn header_matches_kafka_wire() {
        let b = batch(&[(1000, "a"), (1500, "b"), (1200, "c")]);
        let h = BatchHeader::parse(&b);
        let decoded = RecordBatch::from_bytes(b.clone().freeze()).unwrap();
        assert_eq!(h.base_offset, decoded.base_offset());
        assert_eq!(h.batch_length, decoded.batch_length());
        assert_eq!(h.size(), Some(b.len() as u64));
        assert_eq!(h.magic, 2);
        assert_eq!(h.crc, decoded.crc());
        assert_eq!(h.crc, compute_crc(&b));
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.record_count, 3);
        assert_eq!(h.max_timestamp, 1500);
        assert_eq!(decoded.base_timestamp(), 1000);
        assert_eq!(h.leader_epoch(), None);
    }

    #[test]
    fn patch_keeps_crc_valid() {
        let cfg = LogConfig::default();
        let mut b = batch(&[(1000, "a"), (1001, "b")]);
        let h = patch_for_append(&mut b, 42, 7, MessageTimestampType::CreateTime, 5000);
        assert_eq!(
            (h.base_offset, h.last_offset(), h.partition_leader_epoch),
            (42, 43, 7)
        );
        assert_eq!(h.max_timestamp, 1001);
        validate_client_batches(&b, &cfg).unwrap();

        let mut b = batch(&[(1000, "a"), (1001, "b")]);
        let h = patch_for_append(&mut b, 0, 0, MessageTimestampType::LogAppendTime, 5000);
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 5000);
        let decoded = RecordBatch::from_bytes(b.freeze()).unwrap();
        decoded.verify_crc().unwrap();
        assert_eq!(decoded.timestamp_type(), TimestampType::LogAppendTime);
        let ts: Vec<i64> = decoded
            .records(1 << 20)
            .unwrap()
            .map(|r| r.unwrap().timestamp)
            .collect();
        assert_eq!(ts, vec![5000, 5000]);
    }

    #[test]
    fn validation_errors_are_typed() {
        let cfg = LogConfig::default();
        let good = batch(&[(1, "x")]);

        // Empty and truncated input.
        assert!(matches!(
            validate_client_batches(&[], &cfg),
            Err(StorageError::InvalidRecord(_))
        ));
        assert!(matches!(
            validate_client_batches(&good[..good.len() - 1], &cfg),
            Err(StorageError::CorruptMessage(_))
        ));
        let mut two = good.to_vec();
        two.extend_from_slice(&good[..5]);
        assert!(matches!(
            validate_client_batches(&two, &cfg),
            Err(StorageError::CorruptMessage(_))
        ));
        // Length smaller than a header.
        let mut b = good.to_vec();
        b[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            validate_client_batches(&b, &cfg),
            Err(StorageError::CorruptMessage(_))
        ));
        // CRC.
        let mut b = good.to_vec();
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(
            validate_client_batches(&b, &cfg),
            Err(StorageError::CorruptMessage(_))
        ));
        // Magic.
        let mut b = good.to_vec();
        b[16] = 1;
        assert!(matches!(
            validate_client_batches(&b, &cfg),
            Err(StorageError::InvalidRecord(_))
        ));
        // Size.
        let small = LogConfig {
            max_message_bytes: good.len() as i32 - 1,
            ..LogConfig::default()
        };
        assert!(matches!(
            validate_client_batches(&good, &small),
            Err(StorageError::MessageTooLarge { .. })
        ));
        // Count / delta consistency (CRC recomputed so only that field is wrong).
        for (at, value) in [(57usize, 0i32), (57, 2), (23, -1)] {
            let mut b = good.to_vec();
            b[at..at + 4].copy_from_slice(&value.to_be_bytes());
            let crc = compute_crc(&b);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
            assert!(
                matches!(
                    validate_client_batches(&b, &cfg),
                    Err(StorageError::InvalidRecord(_))
                ),
                "field at {at} = {value}"
            );
        }
        // LogAppendTime from a producer.
        let lat = batch_with(
            BatchOptions {
                timestamp_type: TimestampType::LogAppendTime,
                ..BatchOptions::default()
            },
            &[(1, "x")],
        );
        assert!(matches!(
            validate_client_batches(&lat, &cfg),
            Err(StorageError::InvalidTimestamp(_))
        ));
        // Control batch.
        let control = batch_with(
            BatchOptions {
                is_control: true,
                ..BatchOptions::default()
            },
            &[(1, "x")],
        );
        assert!(matches!(
            validate_client_batches(&control, &cfg),
            Err(StorageError::InvalidRecord(_))
        ));
        // Idempotent batch without a sequence.
        let no_seq = batch_with(
            BatchOptions {
                producer_id: 5,
                producer_epoch: 0,
                ..BatchOptions::default()
            },
            &[(1, "x")],
        );
        assert!(matches!(
            validate_client_batches(&no_seq, &cfg),
            Err(StorageError::InvalidRecord(_))
        ));

        // Keyless records on a compacted topic (Kafka's validateKey).
        let compacted = LogConfig {
            cleanup_policy: crate::storage::CleanupPolicy {
                delete: false,
                compact: true,
            },
            ..LogConfig::default()
        };
        assert!(matches!(
            validate_client_batches(&good, &compacted),
            Err(StorageError::InvalidRecord(m)) if m.contains("without key")
        ));
        let mut keyed = RecordBatchBuilder::new(BatchOptions {
            compression: kafka_wire::records::Compression::Gzip,
            ..BatchOptions::default()
        });
        keyed.append(1, Some(b"k"), None, &[]).unwrap();
        keyed.append(2, Some(b"k2"), Some(b"v"), &[]).unwrap();
        let keyed = keyed.finish().unwrap();
        validate_client_batches(&keyed, &compacted).unwrap();

        // Several good batches.
        let mut many = good.to_vec();
        many.extend_from_slice(&batch(&[(2, "y"), (3, "z")]));
        let v = validate_client_batches(&many, &cfg).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[1].start, v[1].header.record_count), (good.len(), 2));
    }
}
