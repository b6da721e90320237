//! Kafka record batches, format v2 (magic 2), and their compression.
//!
//! Since Kafka 0.11 every produced and fetched `records` field is a sequence of *record
//! batches* (KIP-98). A batch is a 61-byte header followed by its records, compressed as a
//! whole when the batch's codec is not `none`:
//!
//! ```text
//! baseOffset: int64              | not covered by the CRC; the broker assigns it
//! batchLength: int32             | bytes after this field
//! partitionLeaderEpoch: int32    | not covered by the CRC; the broker assigns it
//! magic: int8 (= 2)
//! crc: uint32                    | CRC-32C of everything from `attributes` to the end
//! attributes: int16              | bits 0-2 codec, 3 timestamp type, 4 transactional,
//!                                | 5 control, 6 hasDeleteHorizonMs
//! lastOffsetDelta: int32
//! baseTimestamp: int64
//! maxTimestamp: int64
//! producerId: int64
//! producerEpoch: int16
//! baseSequence: int32
//! recordCount: int32
//! records: [Record]
//!
//! Record =>
//!   length: varint               | bytes after this field
//!   attributes: int8             | unused
//!   timestampDelta: varlong
//!   offsetDelta: varint
//!   key: varint length (-1 = null) + bytes
//!   value: varint length (-1 = null) + bytes
//!   headers: varint count, each: key (varint length + UTF-8), value (varint length, -1 = null)
//! ```
//!
//! * The producer id, producer epoch and base sequence, and the transactional and control
//!   attribute bits, come from KIP-98 (idempotent and transactional producers). Control
//!   batches carry transaction markers ([`ControlRecordType`], [`EndTransactionMarker`]).
//! * Timestamps and the timestamp type (`CreateTime` or `LogAppendTime`) come from KIP-32.
//!   Record timestamps are stored as deltas from `baseTimestamp`; for `LogAppendTime`
//!   batches every record's timestamp is the batch's `maxTimestamp`.
//! * The delete-horizon bit (KAFKA-8522) marks batches whose `baseTimestamp` holds the log
//!   cleaner's delete horizon.
//!
//! Writing is done by [`RecordBatchBuilder`], which appends records straight into one buffer
//! and compresses and checksums once in [`RecordBatchBuilder::finish`]. Reading is done by
//! [`RecordBatch`], a zero-copy view over the batch's bytes whose [`RecordBatch::records`]
//! iterator yields [`Record`]s whose keys and values are slices of that buffer (or of the
//! decompressed records) — or, through [`RecordIter::next_borrowed`], plain borrowed slices,
//! which avoids per-record reference counting — and by [`RecordBatches`] for a whole
//! `records` field, including the truncated trailing batch a Fetch response may end with.

pub mod batch;
pub mod compression;

pub use batch::{
    decode_all, end_transaction_marker_batch, record_size, set_base_offset, set_max_timestamp,
    set_partition_leader_epoch, set_producer_state, BatchOptions, ControlRecordType,
    EndTransactionMarker, Header, HeaderRef, HeaderRefIter, Record, RecordBatch,
    RecordBatchBuilder, RecordBatches, RecordIter, RecordRef, TimestampType, LOG_OVERHEAD, MAGIC,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP,
    RECORD_BATCH_OVERHEAD,
};
pub use compression::{compress, decompress, Compression};
