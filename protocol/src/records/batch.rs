//! Record batch v2: the [`RecordBatchBuilder`] encoder, the zero-copy [`RecordBatch`]
//! decoder, control records and in-place header patching for brokers.
//!
//! See the [module documentation](super) for the wire layout.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{compress, decompress, Compression};
use crate::codec::{varint_len, varlong_len, write_varint, write_varlong};
use crate::error::{DecodeError, EncodeError};

/// The record batch format version (the `magic` byte) this module reads and writes.
pub const MAGIC: i8 = 2;
/// Size of the record batch header, before the records.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// Size of `baseOffset` + `batchLength`: the part of a batch not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// `producerId` of a batch from a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch from a non-idempotent producer.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch from a non-idempotent producer (and of control batches).
pub const NO_SEQUENCE: i32 = -1;
/// `partitionLeaderEpoch` before the broker has assigned one.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// The "no timestamp" value (`RecordBatch.NO_TIMESTAMP` in Java).
pub const NO_TIMESTAMP: i64 = -1;

const BASE_OFFSET_OFFSET: usize = 0;
const BATCH_LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;
/// Bytes needed to read a batch's `magic`.
const HEADER_SIZE_UP_TO_MAGIC: usize = MAGIC_OFFSET + 1;

const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
const DELETE_HORIZON_FLAG: i16 = 0x40;

/// Smallest possible encoded record: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
const MIN_RECORD_SIZE: usize = 7;

// ---------------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------------

#[inline]
fn get_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
fn get_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn get_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
#[inline]
fn put_at(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

fn invalid(what: &'static str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        what,
        reason: reason.into(),
    }
}

fn len_i32(what: &'static str, len: usize) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::TooLong { what, len })
}

// ---------------------------------------------------------------------------------------------
// Attributes.
// ---------------------------------------------------------------------------------------------

/// How record timestamps are to be interpreted (KIP-32): attribute bit 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Timestamps were set by the producer (bit 3 clear).
    #[default]
    CreateTime,
    /// The broker's append time is the timestamp of every record (bit 3 set); it is stored in
    /// the batch's `maxTimestamp`.
    LogAppendTime,
}

impl TimestampType {
    fn from_attributes(attributes: i16) -> Self {
        if attributes & TIMESTAMP_TYPE_FLAG != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    fn to_attributes(self) -> i16 {
        match self {
            TimestampType::CreateTime => 0,
            TimestampType::LogAppendTime => TIMESTAMP_TYPE_FLAG,
        }
    }
}

/// Everything about a batch except its records: what [`RecordBatchBuilder`] is created with.
///
/// The defaults describe a plain, non-idempotent, uncompressed batch at offset 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// `baseOffset`. Producers write 0; the broker assigns the real offset.
    pub base_offset: i64,
    /// Compression codec of the records section.
    pub compression: Compression,
    /// Codec-specific level (KIP-390); `None` for the codec's default. See
    /// [`compress`].
    pub compression_level: Option<i32>,
    /// `producerId` (KIP-98), [`NO_PRODUCER_ID`] for non-idempotent producers.
    pub producer_id: i64,
    /// `producerEpoch` (KIP-98), [`NO_PRODUCER_EPOCH`] for non-idempotent producers.
    pub producer_epoch: i16,
    /// `baseSequence` (KIP-98): the sequence number of the first record, [`NO_SEQUENCE`] for
    /// non-idempotent producers.
    pub base_sequence: i32,
    /// Attribute bit 4: the batch belongs to a transaction.
    pub is_transactional: bool,
    /// Attribute bit 5: the batch holds control records (transaction markers). Usually set
    /// through [`end_transaction_marker_batch`].
    pub is_control: bool,
    /// Attribute bit 3.
    pub timestamp_type: TimestampType,
    /// `partitionLeaderEpoch`; producers write [`NO_PARTITION_LEADER_EPOCH`].
    pub partition_leader_epoch: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            base_offset: 0,
            compression: Compression::None,
            compression_level: None,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            is_transactional: false,
            is_control: false,
            timestamp_type: TimestampType::CreateTime,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        }
    }
}

impl BatchOptions {
    fn attributes(&self) -> i16 {
        let mut a = self.compression.to_attributes() | self.timestamp_type.to_attributes();
        if self.is_transactional {
            a |= TRANSACTIONAL_FLAG;
        }
        if self.is_control {
            a |= CONTROL_FLAG;
        }
        a
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding.
// ---------------------------------------------------------------------------------------------

#[inline]
fn nullable_len(v: Option<&[u8]>) -> usize {
    match v {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

/// Size of a record body (everything after its length prefix).
#[inline]
fn record_body_size(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) -> usize {
    let mut size = 1 // attributes
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_len(key)
        + nullable_len(value)
        + varint_len(headers.len() as i32);
    for (k, v) in headers {
        size += varint_len(k.len() as i32) + k.len() + nullable_len(*v);
    }
    size
}

/// Encoded size, length prefix included, of one record with these contents.
///
/// `offset_delta` and `timestamp_delta` are relative to the batch's base offset and base
/// timestamp. Lengths beyond `i32::MAX` (which [`RecordBatchBuilder::append`] rejects) give
/// an unspecified result.
pub fn record_size(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) -> usize {
    let body = record_body_size(offset_delta, timestamp_delta, key, value, headers);
    varint_len(body as i32) + body
}

#[inline]
fn put_nullable(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => write_varint(buf, -1),
        Some(b) => {
            write_varint(buf, b.len() as i32);
            buf.put_slice(b);
        }
    }
}

/// Builds one record batch v2, appending each record straight into a single buffer.
///
/// Records are written as they are appended, after 61 reserved header bytes; nothing is kept
/// per record. [`finish`](Self::finish) fills in the header, compresses the records section
/// once if the batch is compressed, and computes the CRC once. Producer state and offsets can
/// still be changed before `finish` (the CRC covers them).
///
/// The buffer can be recycled: [`with_buffer`](Self::with_buffer) takes a `BytesMut` (its
/// contents are discarded, its capacity kept), and once the `Bytes` returned by `finish` is
/// the last handle to it, [`Bytes::try_into_mut`] gives the buffer back.
///
/// ```
/// use kafka_wire::records::{BatchOptions, Compression, RecordBatch, RecordBatchBuilder};
///
/// let mut builder = RecordBatchBuilder::new(BatchOptions {
///     compression: Compression::Lz4,
///     ..BatchOptions::default()
/// });
/// builder.append(1_700_000_000_000, Some(b"k"), Some(b"v"), &[("h", None)]).unwrap();
/// let mut bytes = builder.finish().unwrap();
///
/// let batch = RecordBatch::decode(&mut bytes).unwrap();
/// batch.verify_crc().unwrap();
/// let record = batch.records(1 << 20).unwrap().next().unwrap().unwrap();
/// assert_eq!(record.value.as_deref(), Some(&b"v"[..]));
/// ```
#[derive(Debug)]
pub struct RecordBatchBuilder {
    buf: BytesMut,
    opts: BatchOptions,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    compression_ratio: f32,
}

impl RecordBatchBuilder {
    /// A builder with a freshly allocated buffer.
    pub fn new(opts: BatchOptions) -> Self {
        Self::with_buffer(opts, BytesMut::with_capacity(1024))
    }

    /// A builder writing into `buf` (cleared first; its capacity is reused).
    pub fn with_buffer(opts: BatchOptions, mut buf: BytesMut) -> Self {
        buf.clear();
        buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
        RecordBatchBuilder {
            buf,
            opts,
            count: 0,
            base_timestamp: NO_TIMESTAMP,
            max_timestamp: NO_TIMESTAMP,
            compression_ratio: 1.0,
        }
    }

    /// The options the batch will be written with.
    pub fn options(&self) -> &BatchOptions {
        &self.opts
    }

    /// Sets the producer id, epoch and base sequence (KIP-98), e.g. when an idempotent
    /// producer drains the batch.
    pub fn set_producer_state(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) {
        self.opts.producer_id = producer_id;
        self.opts.producer_epoch = producer_epoch;
        self.opts.base_sequence = base_sequence;
    }

    /// Sets whether the batch is part of a transaction (attribute bit 4).
    pub fn set_transactional(&mut self, is_transactional: bool) {
        self.opts.is_transactional = is_transactional;
    }

    /// Sets the batch's base offset.
    pub fn set_base_offset(&mut self, base_offset: i64) {
        self.opts.base_offset = base_offset;
    }

    /// Sets the batch's partition leader epoch.
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.opts.partition_leader_epoch = epoch;
    }

    /// Sets the expected compressed/uncompressed size ratio used by
    /// [`estimated_size`](Self::estimated_size) for compressed batches (default 1.0, i.e.
    /// assume no gain, as the Java producer does until it has measured a ratio).
    pub fn set_estimated_compression_ratio(&mut self, ratio: f32) {
        if ratio.is_finite() && ratio > 0.0 {
            self.compression_ratio = ratio;
        }
    }

    /// Number of records appended so far.
    pub fn record_count(&self) -> usize {
        self.count as usize
    }

    /// Whether no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first record's timestamp (the batch's `baseTimestamp`), if any.
    pub fn base_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.base_timestamp)
    }

    /// The largest record timestamp so far, if any.
    pub fn max_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max_timestamp)
    }

    /// Exact size of the batch if it were written uncompressed now: header plus records.
    pub fn uncompressed_size(&self) -> usize {
        self.buf.len()
    }

    /// Estimated size of the finished batch: exact for uncompressed batches, the header plus
    /// the records scaled by the estimated compression ratio otherwise.
    pub fn estimated_size(&self) -> usize {
        self.estimate(self.buf.len() - RECORD_BATCH_OVERHEAD)
    }

    fn estimate(&self, records_len: usize) -> usize {
        if self.opts.compression == Compression::None {
            RECORD_BATCH_OVERHEAD + records_len
        } else {
            RECORD_BATCH_OVERHEAD
                + (records_len as f64 * self.compression_ratio as f64).ceil() as usize
        }
    }

    /// [`estimated_size`](Self::estimated_size) after appending this record, so a producer
    /// can check the record fits `batch.size` before appending it.
    pub fn size_in_bytes_if_appended(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let ts_delta = if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        };
        let rec = record_size(self.count, ts_delta, key, value, headers);
        self.estimate(self.buf.len() - RECORD_BATCH_OVERHEAD + rec)
    }

    /// Appends one record and returns its offset delta (0 for the first record).
    ///
    /// The first record's timestamp becomes the batch's base timestamp.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when a key, value, header or the record itself is longer than
    /// `i32::MAX` bytes, there are more than `i32::MAX` headers, or the batch already holds
    /// `i32::MAX` records. Nothing is written in that case.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<i32, EncodeError> {
        let offset_delta = self.count;
        if offset_delta == i32::MAX {
            return Err(EncodeError::TooLong {
                what: "record batch record count",
                len: offset_delta as usize,
            });
        }
        if let Some(k) = key {
            len_i32("record key", k.len())?;
        }
        if let Some(v) = value {
            len_i32("record value", v.len())?;
        }
        len_i32("record headers", headers.len())?;
        for (k, v) in headers {
            len_i32("record header key", k.len())?;
            if let Some(v) = v {
                len_i32("record header value", v.len())?;
            }
        }
        let base_timestamp = if offset_delta == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let ts_delta = timestamp.wrapping_sub(base_timestamp);
        let body = record_body_size(offset_delta, ts_delta, key, value, headers);
        let body_i32 = len_i32("record", body)?;

        let buf = &mut self.buf;
        buf.reserve(varint_len(body_i32) + body);
        write_varint(buf, body_i32);
        buf.put_u8(0); // attributes
        write_varlong(buf, ts_delta);
        write_varint(buf, offset_delta);
        put_nullable(buf, key);
        put_nullable(buf, value);
        write_varint(buf, headers.len() as i32);
        for (k, v) in headers {
            write_varint(buf, k.len() as i32);
            buf.put_slice(k.as_bytes());
            put_nullable(buf, *v);
        }

        if offset_delta == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else if timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
        }
        self.count += 1;
        Ok(offset_delta)
    }

    /// Writes the header, compresses the records if needed, computes the CRC and returns the
    /// complete batch.
    ///
    /// A builder with no records yields an empty `Bytes` (zero batches), as Java's
    /// `MemoryRecordsBuilder` does.
    ///
    /// # Errors
    /// [`EncodeError::Compression`] if the codec fails or the level is invalid, and
    /// [`EncodeError::TooLong`] if the batch exceeds `i32::MAX` bytes.
    pub fn finish(self) -> Result<Bytes, EncodeError> {
        self.finish_and_recycle().map(|(batch, _)| batch)
    }

    /// Like [`finish`](Self::finish), and also hands back the builder's buffer (cleared) when
    /// it is not the returned batch's storage (a compressed batch is written to a separate
    /// buffer; an empty builder returns no batch), so it can be pooled.
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn finish_and_recycle(self) -> Result<(Bytes, Option<BytesMut>), EncodeError> {
        let RecordBatchBuilder {
            mut buf,
            opts,
            count,
            base_timestamp,
            max_timestamp,
            ..
        } = self;
        if count == 0 {
            buf.clear();
            return Ok((Bytes::new(), Some(buf)));
        }
        let (mut out, spare) = if opts.compression == Compression::None {
            (buf, None)
        } else {
            let records = &buf[RECORD_BATCH_OVERHEAD..];
            let mut out = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + records.len() / 2 + 64);
            out.put_bytes(0, RECORD_BATCH_OVERHEAD);
            compress(opts.compression, records, opts.compression_level, &mut out)?;
            buf.clear();
            (out, Some(buf))
        };
        let batch_length = len_i32("record batch", out.len() - LOG_OVERHEAD)?;
        let h = &mut out[..RECORD_BATCH_OVERHEAD];
        put_at(h, BASE_OFFSET_OFFSET, &opts.base_offset.to_be_bytes());
        put_at(h, BATCH_LENGTH_OFFSET, &batch_length.to_be_bytes());
        put_at(
            h,
            PARTITION_LEADER_EPOCH_OFFSET,
            &opts.partition_leader_epoch.to_be_bytes(),
        );
        h[MAGIC_OFFSET] = MAGIC as u8;
        put_at(h, ATTRIBUTES_OFFSET, &opts.attributes().to_be_bytes());
        put_at(h, LAST_OFFSET_DELTA_OFFSET, &(count - 1).to_be_bytes());
        put_at(h, BASE_TIMESTAMP_OFFSET, &base_timestamp.to_be_bytes());
        put_at(h, MAX_TIMESTAMP_OFFSET, &max_timestamp.to_be_bytes());
        put_at(h, PRODUCER_ID_OFFSET, &opts.producer_id.to_be_bytes());
        put_at(h, PRODUCER_EPOCH_OFFSET, &opts.producer_epoch.to_be_bytes());
        put_at(h, BASE_SEQUENCE_OFFSET, &opts.base_sequence.to_be_bytes());
        put_at(h, RECORDS_COUNT_OFFSET, &count.to_be_bytes());
        let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
        put_at(&mut out, CRC_OFFSET, &crc.to_be_bytes());
        Ok((out.freeze(), spare))
    }
}

// ---------------------------------------------------------------------------------------------
// In-place patching of encoded batches (brokers, producer retries).
// ---------------------------------------------------------------------------------------------

/// Checks that `batch` starts with a complete v2 batch header and returns the batch's end.
fn check_patchable(batch: &[u8]) -> Result<usize, DecodeError> {
    if batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(DecodeError::Truncated {
            what: "record batch header",
            needed: RECORD_BATCH_OVERHEAD,
            remaining: batch.len(),
        });
    }
    let magic = batch[MAGIC_OFFSET] as i8;
    if magic != MAGIC {
        return Err(DecodeError::UnsupportedMagic(magic));
    }
    let len = get_i32(batch, BATCH_LENGTH_OFFSET);
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(LOG_OVERHEAD))
        .filter(|end| *end >= RECORD_BATCH_OVERHEAD)
        .ok_or(DecodeError::InvalidLength {
            what: "record batch length",
            len: len as i64,
        })?;
    if end > batch.len() {
        return Err(DecodeError::Truncated {
            what: "record batch",
            needed: end,
            remaining: batch.len(),
        });
    }
    Ok(end)
}

fn rewrite_crc(batch: &mut [u8], end: usize) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..end]);
    put_at(batch, CRC_OFFSET, &crc.to_be_bytes());
}

/// Overwrites the `baseOffset` of the batch at the start of `batch` (what a broker does when
/// it appends a batch). The base offset is not covered by the CRC, which stays valid.
///
/// # Errors
/// When `batch` does not start with a v2 batch header.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), DecodeError> {
    check_patchable(batch)?;
    put_at(batch, BASE_OFFSET_OFFSET, &base_offset.to_be_bytes());
    Ok(())
}

/// Overwrites the `partitionLeaderEpoch` of the batch at the start of `batch`. Not covered by
/// the CRC, which stays valid.
///
/// # Errors
/// When `batch` does not start with a v2 batch header.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), DecodeError> {
    check_patchable(batch)?;
    put_at(batch, PARTITION_LEADER_EPOCH_OFFSET, &epoch.to_be_bytes());
    Ok(())
}

/// Overwrites the producer id, epoch and base sequence of the complete batch at the start of
/// `batch` and recomputes its CRC (e.g. when an idempotent producer must resend a batch under
/// a new epoch).
///
/// # Errors
/// When `batch` does not start with a complete v2 batch.
pub fn set_producer_state(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<(), DecodeError> {
    let end = check_patchable(batch)?;
    put_at(batch, PRODUCER_ID_OFFSET, &producer_id.to_be_bytes());
    put_at(batch, PRODUCER_EPOCH_OFFSET, &producer_epoch.to_be_bytes());
    put_at(batch, BASE_SEQUENCE_OFFSET, &base_sequence.to_be_bytes());
    rewrite_crc(batch, end);
    Ok(())
}

/// Sets the timestamp type and `maxTimestamp` of the complete batch at the start of `batch`
/// and recomputes its CRC, as a broker does for `LogAppendTime` topics (Java's
/// `DefaultRecordBatch.setMaxTimestamp`).
///
/// # Errors
/// When `batch` does not start with a complete v2 batch.
pub fn set_max_timestamp(
    batch: &mut [u8],
    timestamp_type: TimestampType,
    max_timestamp: i64,
) -> Result<(), DecodeError> {
    let end = check_patchable(batch)?;
    let attributes =
        (get_i16(batch, ATTRIBUTES_OFFSET) & !TIMESTAMP_TYPE_FLAG) | timestamp_type.to_attributes();
    put_at(batch, ATTRIBUTES_OFFSET, &attributes.to_be_bytes());
    put_at(batch, MAX_TIMESTAMP_OFFSET, &max_timestamp.to_be_bytes());
    rewrite_crc(batch, end);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Control records (KIP-98).
// ---------------------------------------------------------------------------------------------

/// The type of a control record, from its key (`version: int16, type: int16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ControlRecordType {
    /// The transaction was aborted.
    Abort = 0,
    /// The transaction was committed.
    Commit = 1,
}

impl ControlRecordType {
    /// The type's id on the wire.
    pub fn id(self) -> i16 {
        self as i16
    }

    /// The type with id `id`, if it is a transaction marker type.
    pub fn from_id(id: i16) -> Option<Self> {
        match id {
            0 => Some(ControlRecordType::Abort),
            1 => Some(ControlRecordType::Commit),
            _ => None,
        }
    }

    /// The control record key for this type (version 0).
    pub fn key_bytes(self) -> [u8; 4] {
        let t = self.id().to_be_bytes();
        [0, 0, t[0], t[1]]
    }

    /// Reads the type id from a control record key. Like Java, newer key versions are
    /// accepted (they only append fields).
    ///
    /// # Errors
    /// When the key is shorter than 4 bytes or its version is negative.
    pub fn parse_key_id(key: &[u8]) -> Result<i16, DecodeError> {
        if key.len() < 4 {
            return Err(invalid(
                "control record key",
                format!("expected at least 4 bytes, found {}", key.len()),
            ));
        }
        let version = get_i16(key, 0);
        if version < 0 {
            return Err(invalid(
                "control record key",
                format!("negative version {version}"),
            ));
        }
        Ok(get_i16(key, 2))
    }

    /// Reads a control record key; `Ok(None)` for control types other than transaction
    /// markers (e.g. KRaft's leader-change and snapshot records).
    ///
    /// # Errors
    /// As [`parse_key_id`](Self::parse_key_id).
    pub fn parse_key(key: &[u8]) -> Result<Option<Self>, DecodeError> {
        Ok(Self::from_id(Self::parse_key_id(key)?))
    }
}

/// A transaction marker: the single record of a control batch ending a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndTransactionMarker {
    /// Commit or abort.
    pub control_type: ControlRecordType,
    /// Epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTransactionMarker {
    /// The marker's record value (version 0: `version: int16, coordinatorEpoch: int32`).
    pub fn value_bytes(&self) -> [u8; 6] {
        let e = self.coordinator_epoch.to_be_bytes();
        [0, 0, e[0], e[1], e[2], e[3]]
    }

    /// Reads a marker from a control record's key and value; `Ok(None)` when the key is a
    /// control type other than commit/abort.
    ///
    /// # Errors
    /// When the key or value is null, too short, or has a negative version.
    pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<Self>, DecodeError> {
        let key = key.ok_or(DecodeError::UnexpectedNull {
            what: "control record key",
        })?;
        let Some(control_type) = ControlRecordType::parse_key(key)? else {
            return Ok(None);
        };
        let value = value.ok_or(DecodeError::UnexpectedNull {
            what: "end transaction marker",
        })?;
        if value.len() < 6 {
            return Err(invalid(
                "end transaction marker",
                format!("expected at least 6 bytes, found {}", value.len()),
            ));
        }
        let version = get_i16(value, 0);
        if version < 0 {
            return Err(invalid(
                "end transaction marker",
                format!("negative version {version}"),
            ));
        }
        Ok(Some(EndTransactionMarker {
            control_type,
            coordinator_epoch: get_i32(value, 2),
        }))
    }
}

/// Builds the control batch a transaction coordinator writes to end a transaction: one
/// uncompressed record whose key is the control type and whose value is the marker, with the
/// control and transactional bits set and no base sequence (Java's
/// `MemoryRecords.withEndTransactionMarker`).
///
/// # Errors
/// Never in practice; the signature mirrors [`RecordBatchBuilder::finish`].
pub fn end_transaction_marker_batch(
    base_offset: i64,
    timestamp: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTransactionMarker,
) -> Result<Bytes, EncodeError> {
    let mut b = RecordBatchBuilder::with_buffer(
        BatchOptions {
            base_offset,
            producer_id,
            producer_epoch,
            base_sequence: NO_SEQUENCE,
            is_transactional: true,
            is_control: true,
            partition_leader_epoch,
            ..BatchOptions::default()
        },
        BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + 16),
    );
    b.append(
        timestamp,
        Some(&marker.control_type.key_bytes()),
        Some(&marker.value_bytes()),
        &[],
    )?;
    b.finish()
}

// ---------------------------------------------------------------------------------------------
// Decoding.
// ---------------------------------------------------------------------------------------------

/// One record batch v2: a validated, zero-copy view over its bytes.
///
/// [`decode`](Self::decode) checks the framing (length, magic). The CRC is checked only by
/// [`verify_crc`](Self::verify_crc), as Java consumers do when `check.crcs` is on; the
/// records are parsed lazily by [`records`](Self::records).
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// The whole batch, at least [`RECORD_BATCH_OVERHEAD`] bytes.
    bytes: Bytes,
}

/// Result of trying to split one batch off the front of a buffer.
enum Split {
    Batch(RecordBatch),
    /// The buffer holds only the beginning of a batch (`needed` bytes would complete it).
    Partial {
        needed: usize,
    },
}

fn split_batch(buf: &mut Bytes) -> Result<Split, DecodeError> {
    let remaining = buf.len();
    if remaining < HEADER_SIZE_UP_TO_MAGIC {
        return Ok(Split::Partial {
            needed: HEADER_SIZE_UP_TO_MAGIC,
        });
    }
    let len = get_i32(buf, BATCH_LENGTH_OFFSET);
    if len < 0 {
        return Err(DecodeError::InvalidLength {
            what: "record batch length",
            len: len as i64,
        });
    }
    let size = len as usize + LOG_OVERHEAD;
    if remaining < size {
        return Ok(Split::Partial { needed: size });
    }
    let magic = buf[MAGIC_OFFSET] as i8;
    if magic != MAGIC {
        return Err(DecodeError::UnsupportedMagic(magic));
    }
    if size < RECORD_BATCH_OVERHEAD {
        return Err(DecodeError::InvalidLength {
            what: "record batch length",
            len: len as i64,
        });
    }
    Ok(Split::Batch(RecordBatch {
        bytes: buf.split_to(size),
    }))
}

impl RecordBatch {
    /// Splits exactly one batch off the front of `buf`, without copying.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] if `buf` holds less than a whole batch (then `buf` is left
    /// untouched), [`DecodeError::InvalidLength`] for a batch length below the header size,
    /// [`DecodeError::UnsupportedMagic`] for a magic other than 2.
    pub fn decode(buf: &mut Bytes) -> Result<RecordBatch, DecodeError> {
        match split_batch(buf)? {
            Split::Batch(b) => Ok(b),
            Split::Partial { needed } => Err(DecodeError::Truncated {
                what: "record batch",
                needed,
                remaining: buf.len(),
            }),
        }
    }

    /// Wraps `bytes`, which must hold exactly one batch.
    ///
    /// # Errors
    /// As [`decode`](Self::decode), plus [`DecodeError::TrailingBytes`] if bytes follow the
    /// batch.
    pub fn from_bytes(mut bytes: Bytes) -> Result<RecordBatch, DecodeError> {
        let batch = Self::decode(&mut bytes)?;
        crate::codec::expect_end(&bytes, "record batch")?;
        Ok(batch)
    }

    /// The batch's bytes, header included.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The batch's bytes, header included.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Total size of the batch in bytes (`batchLength` + 12).
    pub fn size_in_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// `baseOffset`: the offset of the first record.
    pub fn base_offset(&self) -> i64 {
        get_i64(&self.bytes, BASE_OFFSET_OFFSET)
    }

    /// `batchLength`: size of the batch after this field.
    pub fn batch_length(&self) -> i32 {
        get_i32(&self.bytes, BATCH_LENGTH_OFFSET)
    }

    /// `partitionLeaderEpoch`.
    pub fn partition_leader_epoch(&self) -> i32 {
        get_i32(&self.bytes, PARTITION_LEADER_EPOCH_OFFSET)
    }

    /// `magic`: always 2.
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_OFFSET] as i8
    }

    /// The CRC-32C stored in the header.
    pub fn crc(&self) -> u32 {
        get_i32(&self.bytes, CRC_OFFSET) as u32
    }

    /// The CRC-32C of the batch's contents (from `attributes` to the end).
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES_OFFSET..])
    }

    /// Checks the stored CRC against the contents.
    ///
    /// # Errors
    /// [`DecodeError::CrcMismatch`] when they differ.
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        let stored = self.crc();
        let computed = self.compute_crc();
        if stored == computed {
            Ok(())
        } else {
            Err(DecodeError::CrcMismatch { stored, computed })
        }
    }

    /// The raw `attributes` field.
    pub fn attributes(&self) -> i16 {
        get_i16(&self.bytes, ATTRIBUTES_OFFSET)
    }

    /// The compression codec (attribute bits 0-2).
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for an unassigned codec id.
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        Compression::from_attributes(self.attributes())
    }

    /// The timestamp type (attribute bit 3).
    pub fn timestamp_type(&self) -> TimestampType {
        TimestampType::from_attributes(self.attributes())
    }

    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_FLAG != 0
    }

    /// Whether the batch holds control records (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_FLAG != 0
    }

    /// Whether `baseTimestamp` holds the log cleaner's delete horizon (attribute bit 6).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & DELETE_HORIZON_FLAG != 0
    }

    /// The delete horizon (the `baseTimestamp`) when attribute bit 6 is set.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        self.has_delete_horizon().then(|| self.base_timestamp())
    }

    /// `lastOffsetDelta`.
    pub fn last_offset_delta(&self) -> i32 {
        get_i32(&self.bytes, LAST_OFFSET_DELTA_OFFSET)
    }

    /// Offset of the last record: `baseOffset + lastOffsetDelta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(self.last_offset_delta() as i64)
    }

    /// Offset following the batch: `lastOffset + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// `baseTimestamp`: the first record's timestamp (or the delete horizon).
    pub fn base_timestamp(&self) -> i64 {
        get_i64(&self.bytes, BASE_TIMESTAMP_OFFSET)
    }

    /// `maxTimestamp`: the largest record timestamp, or the append time for `LogAppendTime`.
    pub fn max_timestamp(&self) -> i64 {
        get_i64(&self.bytes, MAX_TIMESTAMP_OFFSET)
    }

    /// `producerId` (KIP-98).
    pub fn producer_id(&self) -> i64 {
        get_i64(&self.bytes, PRODUCER_ID_OFFSET)
    }

    /// `producerEpoch` (KIP-98).
    pub fn producer_epoch(&self) -> i16 {
        get_i16(&self.bytes, PRODUCER_EPOCH_OFFSET)
    }

    /// `baseSequence` (KIP-98).
    pub fn base_sequence(&self) -> i32 {
        get_i32(&self.bytes, BASE_SEQUENCE_OFFSET)
    }

    /// Sequence number of the last record: `baseSequence + lastOffsetDelta`, wrapping past
    /// `i32::MAX` to 0 as Java does; [`NO_SEQUENCE`] if the batch has none.
    ///
    /// Computed exactly like Java's `DefaultRecordBatch.incrementSequence`, in wrapping
    /// `int` arithmetic, so a corrupt (e.g. negative) `lastOffsetDelta` cannot overflow.
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence();
        if base == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        let delta = self.last_offset_delta();
        if base > i32::MAX.wrapping_sub(delta) {
            delta
                .wrapping_sub(i32::MAX.wrapping_sub(base))
                .wrapping_sub(1)
        } else {
            base.wrapping_add(delta)
        }
    }

    /// `recordCount` as stored in the header (may be negative in a corrupt batch).
    pub fn record_count(&self) -> i32 {
        get_i32(&self.bytes, RECORDS_COUNT_OFFSET)
    }

    /// The records section as stored (compressed if the batch is), without copying.
    pub fn records_bytes(&self) -> Bytes {
        self.bytes.slice(RECORD_BATCH_OVERHEAD..)
    }

    /// Iterates over the batch's records, decompressing the records section first if needed
    /// (at most `max_decompressed` bytes of output; larger is an error).
    ///
    /// Keys, values and header values are slices of the batch (or of the decompressed
    /// buffer), not copies. Records are parsed lazily; every length is checked, and the
    /// iterator yields an error (then stops) if a record is malformed, if the records end
    /// before `recordCount`, or if bytes remain after the last one.
    ///
    /// # Errors
    /// An unknown codec, a failed or oversized decompression, a negative `recordCount`, or a
    /// `recordCount` inconsistent with `lastOffsetDelta` or too large for the records section.
    pub fn records(&self, max_decompressed: usize) -> Result<RecordIter, DecodeError> {
        let count = self.record_count();
        let last_offset_delta = self.last_offset_delta();
        if count < 0 {
            return Err(invalid(
                "record batch record count",
                format!("negative count {count}"),
            ));
        }
        if count > 0 && count - 1 > last_offset_delta {
            return Err(invalid(
                "record batch record count",
                format!("{count} records but lastOffsetDelta is {last_offset_delta}"),
            ));
        }
        let codec = self.compression()?;
        let data = if codec == Compression::None || count == 0 {
            self.records_bytes()
        } else {
            Bytes::from(decompress(
                codec,
                &self.bytes[RECORD_BATCH_OVERHEAD..],
                max_decompressed,
            )?)
        };
        if count as usize > data.len() / MIN_RECORD_SIZE {
            return Err(invalid(
                "record batch record count",
                format!(
                    "{count} records cannot fit in {} bytes of records",
                    data.len()
                ),
            ));
        }
        let log_append_time =
            (self.timestamp_type() == TimestampType::LogAppendTime).then(|| self.max_timestamp());
        Ok(RecordIter {
            data,
            pos: 0,
            remaining: count as u32,
            base_offset: self.base_offset(),
            base_timestamp: self.base_timestamp(),
            log_append_time,
            last_offset_delta,
            prev_offset_delta: -1,
            done: false,
        })
    }
}

impl std::fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("batch_length", &self.batch_length())
            .field("partition_leader_epoch", &self.partition_leader_epoch())
            .field("crc", &format_args!("{:#010x}", self.crc()))
            .field("attributes", &format_args!("{:#06x}", self.attributes()))
            .field("last_offset_delta", &self.last_offset_delta())
            .field("base_timestamp", &self.base_timestamp())
            .field("max_timestamp", &self.max_timestamp())
            .field("producer_id", &self.producer_id())
            .field("producer_epoch", &self.producer_epoch())
            .field("base_sequence", &self.base_sequence())
            .field("record_count", &self.record_count())
            .finish()
    }
}

/// A record header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header key. Invalid UTF-8 is replaced by U+FFFD, as Java's `Utils.utf8` does.
    pub key: String,
    /// The header value (`None` when null), a slice of the batch.
    pub value: Option<Bytes>,
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Absolute offset: `baseOffset + offsetDelta`.
    pub offset: i64,
    /// `baseTimestamp + timestampDelta`, or the batch's `maxTimestamp` for `LogAppendTime`
    /// batches.
    pub timestamp: i64,
    /// The key (`None` when null), a slice of the batch.
    pub key: Option<Bytes>,
    /// The value (`None` when null, a tombstone), a slice of the batch.
    pub value: Option<Bytes>,
    /// The headers, in wire order.
    pub headers: Vec<Header>,
}

/// Lazy iterator over the records of a [`RecordBatch`]; see [`RecordBatch::records`].
///
/// Yields `Err` at most once, then stops. [`next_borrowed`](Self::next_borrowed) is the
/// faster alternative to `next` when keys and values need not outlive the iterator.
#[derive(Debug, Clone)]
pub struct RecordIter {
    data: Bytes,
    pos: usize,
    remaining: u32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    last_offset_delta: i32,
    prev_offset_delta: i64,
    done: bool,
}

#[inline]
fn truncated(what: &'static str, needed: usize, remaining: usize) -> DecodeError {
    DecodeError::Truncated {
        what,
        needed,
        remaining,
    }
}

/// Reads a zig-zag varint from `b` at `*pos` (bounded by `b.len()`).
#[inline]
fn get_varint(b: &[u8], pos: &mut usize, what: &'static str) -> Result<i32, DecodeError> {
    let raw = get_unsigned_varint(b, pos, what)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

#[inline]
fn get_unsigned_varint(b: &[u8], pos: &mut usize, what: &'static str) -> Result<u32, DecodeError> {
    let mut p = *pos;
    let first = *b.get(p).ok_or_else(|| truncated(what, 1, 0))?;
    p += 1;
    if first < 0x80 {
        *pos = p;
        return Ok(first as u32);
    }
    let mut value = (first & 0x7f) as u32;
    for i in 1..5 {
        let byte = *b.get(p).ok_or_else(|| truncated(what, 1, 0))?;
        p += 1;
        if i == 4 && byte & 0xf0 != 0 {
            return Err(DecodeError::VarintOverflow { what });
        }
        value |= ((byte & 0x7f) as u32) << (7 * i);
        if byte & 0x80 == 0 {
            *pos = p;
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow { what })
}

#[inline]
fn get_varlong(b: &[u8], pos: &mut usize, what: &'static str) -> Result<i64, DecodeError> {
    let mut p = *pos;
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(p).ok_or_else(|| truncated(what, 1, 0))?;
        p += 1;
        if i == 9 && byte & 0xfe != 0 {
            return Err(DecodeError::VarintOverflow { what });
        }
        value |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            *pos = p;
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(DecodeError::VarintOverflow { what })
}

/// Reads a varint length (`-1` = null) and returns the payload's range in `b`.
#[inline]
fn get_nullable_range(
    b: &[u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<Option<(usize, usize)>, DecodeError> {
    let len = get_varint(b, pos, what)?;
    if len < 0 {
        if len == -1 {
            return Ok(None);
        }
        return Err(DecodeError::InvalidLength {
            what,
            len: len as i64,
        });
    }
    let start = *pos;
    let len = len as usize;
    let avail = b.len() - start;
    if len > avail {
        return Err(truncated(what, len, avail));
    }
    *pos = start + len;
    Ok(Some((start, start + len)))
}

/// A record's fields as ranges into the records buffer, after validation.
struct RawRecord {
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
    /// Start of the first header.
    headers_start: usize,
    header_count: usize,
    /// End of the record.
    end: usize,
}

/// A byte range `(start, end)` in the records buffer.
type Range = (usize, usize);

/// Reads one header starting at `*pos` in bytes already validated by
/// [`RecordIter::parse_record`]: `(key range, value range)`.
#[inline]
fn next_header(b: &[u8], pos: &mut usize) -> Option<(Range, Option<Range>)> {
    let key_len = usize::try_from(get_varint(b, pos, "record header key").ok()?).ok()?;
    let key_start = *pos;
    let key_end = key_start.checked_add(key_len).filter(|e| *e <= b.len())?;
    *pos = key_end;
    let value = get_nullable_range(b, pos, "record header value").ok()?;
    Some(((key_start, key_end), value))
}

impl RecordIter {
    /// Records not yet yielded, according to the batch's `recordCount`.
    pub fn remaining_records(&self) -> usize {
        self.remaining as usize
    }

    /// The records section being iterated (decompressed if the batch is compressed).
    pub fn records_data(&self) -> &Bytes {
        &self.data
    }

    fn slice(&self, range: Option<(usize, usize)>) -> Option<Bytes> {
        range.map(|(s, e)| self.data.slice(s..e))
    }

    /// Parses and validates the record at `self.pos` without consuming it.
    #[inline]
    fn parse_record(&self) -> Result<RawRecord, DecodeError> {
        let all: &[u8] = &self.data;
        let mut p = self.pos;
        let len = get_varint(all, &mut p, "record length")?;
        if len < 0 {
            return Err(DecodeError::InvalidLength {
                what: "record length",
                len: len as i64,
            });
        }
        let end = p + len as usize;
        if end > all.len() {
            return Err(truncated("record", len as usize, all.len() - p));
        }
        // Everything below reads within the record's own bytes.
        let b = &all[..end];
        if p >= end {
            return Err(truncated("record attributes", 1, 0));
        }
        p += 1; // attributes: unused
        let timestamp_delta = get_varlong(b, &mut p, "record timestamp delta")?;
        let offset_delta = get_varint(b, &mut p, "record offset delta")?;
        if (offset_delta as i64) <= self.prev_offset_delta || offset_delta > self.last_offset_delta
        {
            return Err(invalid(
                "record offset delta",
                format!(
                    "{offset_delta} after {} with lastOffsetDelta {}",
                    self.prev_offset_delta, self.last_offset_delta
                ),
            ));
        }
        let key = get_nullable_range(b, &mut p, "record key")?;
        let value = get_nullable_range(b, &mut p, "record value")?;
        let header_count = get_varint(b, &mut p, "record header count")?;
        if header_count < 0 || header_count as usize > (end - p) / 2 {
            return Err(DecodeError::InvalidLength {
                what: "record header count",
                len: header_count as i64,
            });
        }
        let headers_start = p;
        for _ in 0..header_count {
            let key_len = get_varint(b, &mut p, "record header key")?;
            if key_len < 0 {
                return Err(DecodeError::InvalidLength {
                    what: "record header key",
                    len: key_len as i64,
                });
            }
            let key_len = key_len as usize;
            if key_len > end - p {
                return Err(truncated("record header key", key_len, end - p));
            }
            p += key_len;
            get_nullable_range(b, &mut p, "record header value")?;
        }
        if p != end {
            return Err(invalid(
                "record",
                format!(
                    "length prefix says {len} bytes but the record has {}",
                    len as usize - (end - p)
                ),
            ));
        }
        Ok(RawRecord {
            offset_delta,
            timestamp_delta,
            key,
            value,
            headers_start,
            header_count: header_count as usize,
            end,
        })
    }

    /// Parses the next record, handling the end of the batch and fusing on errors.
    #[inline]
    fn step(&mut self) -> Option<Result<RawRecord, DecodeError>> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            let left = self.data.len() - self.pos;
            if left != 0 {
                return Some(Err(DecodeError::TrailingBytes {
                    what: "record batch records",
                    remaining: left,
                }));
            }
            return None;
        }
        match self.parse_record() {
            Ok(raw) => {
                self.pos = raw.end;
                self.prev_offset_delta = raw.offset_delta as i64;
                self.remaining -= 1;
                Some(Ok(raw))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    #[inline]
    fn offset_and_timestamp(&self, raw: &RawRecord) -> (i64, i64) {
        (
            self.base_offset.wrapping_add(raw.offset_delta as i64),
            self.log_append_time
                .unwrap_or_else(|| self.base_timestamp.wrapping_add(raw.timestamp_delta)),
        )
    }

    /// Like [`Iterator::next`], but borrows the key, value and headers from the iterator's
    /// buffer instead of handing out reference-counted [`Bytes`]: no atomic operations and no
    /// allocation per record. The same validation applies.
    ///
    /// ```
    /// # use kafka_wire::records::{BatchOptions, RecordBatch, RecordBatchBuilder};
    /// # let mut b = RecordBatchBuilder::new(BatchOptions::default());
    /// # b.append(0, Some(b"k"), Some(b"v"), &[]).unwrap();
    /// # let batch = RecordBatch::from_bytes(b.finish().unwrap()).unwrap();
    /// let mut records = batch.records(1 << 20)?;
    /// while let Some(record) = records.next_borrowed() {
    ///     let record = record?;
    ///     assert_eq!(record.value, Some(&b"v"[..]));
    /// }
    /// # Ok::<(), kafka_wire::DecodeError>(())
    /// ```
    pub fn next_borrowed(&mut self) -> Option<Result<RecordRef<'_>, DecodeError>> {
        let raw = match self.step()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        let (offset, timestamp) = self.offset_and_timestamp(&raw);
        let data: &[u8] = &self.data;
        let range = |r: Option<(usize, usize)>| r.map(|(s, e)| &data[s..e]);
        Some(Ok(RecordRef {
            offset,
            timestamp,
            key: range(raw.key),
            value: range(raw.value),
            headers: HeaderRefIter {
                data: &data[..raw.end],
                pos: raw.headers_start,
                remaining: raw.header_count,
            },
        }))
    }

    fn to_record(&self, raw: &RawRecord) -> Record {
        let (offset, timestamp) = self.offset_and_timestamp(raw);
        let mut headers = Vec::with_capacity(raw.header_count);
        let b = &self.data[..raw.end];
        let mut p = raw.headers_start;
        for _ in 0..raw.header_count {
            let Some(((ks, ke), value)) = next_header(b, &mut p) else {
                break; // unreachable: validated by parse_record
            };
            headers.push(Header {
                key: String::from_utf8_lossy(&b[ks..ke]).into_owned(),
                value: self.slice(value),
            });
        }
        Record {
            offset,
            timestamp,
            key: self.slice(raw.key),
            value: self.slice(raw.value),
            headers,
        }
    }
}

/// A record borrowed from a [`RecordIter`]'s buffer; see [`RecordIter::next_borrowed`].
#[derive(Clone, Debug)]
pub struct RecordRef<'a> {
    /// Absolute offset: `baseOffset + offsetDelta`.
    pub offset: i64,
    /// `baseTimestamp + timestampDelta`, or the batch's `maxTimestamp` for `LogAppendTime`
    /// batches.
    pub timestamp: i64,
    /// The key (`None` when null).
    pub key: Option<&'a [u8]>,
    /// The value (`None` when null).
    pub value: Option<&'a [u8]>,
    /// The headers, in wire order (already validated).
    pub headers: HeaderRefIter<'a>,
}

/// A record header borrowed from the records buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The key's bytes (UTF-8 by Kafka's contract, not checked here).
    pub key: &'a [u8],
    /// The value (`None` when null).
    pub value: Option<&'a [u8]>,
}

impl<'a> HeaderRef<'a> {
    /// The key as a string, with invalid UTF-8 replaced by U+FFFD.
    pub fn key_str(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.key)
    }
}

/// Iterator over the headers of a [`RecordRef`].
#[derive(Clone, Debug)]
pub struct HeaderRefIter<'a> {
    data: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for HeaderRefIter<'a> {
    type Item = HeaderRef<'a>;

    fn next(&mut self) -> Option<HeaderRef<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let ((ks, ke), value) = next_header(self.data, &mut self.pos)?;
        Some(HeaderRef {
            key: &self.data[ks..ke],
            value: value.map(|(s, e)| &self.data[s..e]),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for HeaderRefIter<'_> {}

impl Iterator for RecordIter {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.step()?.map(|raw| self.to_record(&raw)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some(self.remaining as usize + 1))
        }
    }
}

impl std::iter::FusedIterator for RecordIter {}

/// Iterator over the record batches of a `records` field (a Produce request's or a Fetch
/// response's).
///
/// Created with [`new`](Self::new), a batch cut short at the end is an error; created with
/// [`for_fetch`](Self::for_fetch), iteration stops cleanly before it, because a broker may
/// end a Fetch response with a partial batch when it hits the fetch size limit. Any other
/// malformed batch framing yields an error, then iteration stops.
#[derive(Debug, Clone)]
pub struct RecordBatches {
    buf: Bytes,
    allow_partial_tail: bool,
    done: bool,
}

impl RecordBatches {
    /// Strict iteration: a truncated trailing batch is a [`DecodeError::Truncated`].
    pub fn new(records: Bytes) -> Self {
        RecordBatches {
            buf: records,
            allow_partial_tail: false,
            done: false,
        }
    }

    /// Fetch-response iteration: stops without error at a truncated trailing batch, whose
    /// bytes are then left in [`remaining`](Self::remaining).
    pub fn for_fetch(records: Bytes) -> Self {
        RecordBatches {
            allow_partial_tail: true,
            ..Self::new(records)
        }
    }

    /// The bytes not yet consumed: after iteration ends cleanly, the partial trailing batch
    /// (empty if there was none).
    pub fn remaining(&self) -> &Bytes {
        &self.buf
    }

    /// Whether iteration stopped at a partial trailing batch.
    pub fn has_partial_tail(&self) -> bool {
        self.done && !self.buf.is_empty()
    }
}

impl Iterator for RecordBatches {
    type Item = Result<RecordBatch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.buf.is_empty() {
            self.done = true;
            return None;
        }
        match split_batch(&mut self.buf) {
            Ok(Split::Batch(b)) => Some(Ok(b)),
            Ok(Split::Partial { needed }) => {
                self.done = true;
                if self.allow_partial_tail {
                    None
                } else {
                    Some(Err(DecodeError::Truncated {
                        what: "record batch",
                        needed,
                        remaining: self.buf.len(),
                    }))
                }
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for RecordBatches {}

/// Splits a whole `records` field into its batches (strictly: a truncated trailing batch is
/// an error; use [`RecordBatches::for_fetch`] for Fetch responses).
///
/// # Errors
/// The first framing error, as [`RecordBatch::decode`].
pub fn decode_all(records: Bytes) -> Result<Vec<RecordBatch>, DecodeError> {
    RecordBatches::new(records).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: i64 = 1_700_000_000_000;

    fn opts(compression: Compression) -> BatchOptions {
        BatchOptions {
            compression,
            ..BatchOptions::default()
        }
    }

    fn collect(batch: &RecordBatch) -> Vec<Record> {
        batch
            .records(16 << 20)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn sample_batch(compression: Compression, n: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new(BatchOptions {
            base_offset: 1000,
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 7,
            partition_leader_epoch: 5,
            ..opts(compression)
        });
        for i in 0..n {
            let key = format!("key-{i}");
            let value = vec![(i % 256) as u8; i % 300];
            let h = i.to_string();
            let headers: &[(&str, Option<&[u8]>)] = if i % 3 == 0 {
                &[("a", Some(h.as_bytes())), ("nil", None)]
            } else {
                &[]
            };
            let key = if i % 5 == 4 {
                None
            } else {
                Some(key.as_bytes())
            };
            let value = if i % 7 == 6 { None } else { Some(&value[..]) };
            let ts = TS + (i as i64 * 37) % 100 - 50;
            assert_eq!(b.append(ts, key, value, headers).unwrap(), i as i32);
        }
        b.finish().unwrap()
    }

    fn check_sample(batch: &RecordBatch, n: usize) {
        batch.verify_crc().unwrap();
        assert_eq!(batch.base_offset(), 1000);
        assert_eq!(batch.producer_id(), 42);
        assert_eq!(batch.producer_epoch(), 3);
        assert_eq!(batch.base_sequence(), 7);
        assert_eq!(batch.last_sequence(), 7 + n as i32 - 1);
        assert_eq!(batch.partition_leader_epoch(), 5);
        assert_eq!(batch.record_count(), n as i32);
        assert_eq!(batch.last_offset_delta(), n as i32 - 1);
        assert_eq!(batch.last_offset(), 1000 + n as i64 - 1);
        let records = collect(batch);
        assert_eq!(records.len(), n);
        let mut max_ts = i64::MIN;
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, 1000 + i as i64);
            let ts = TS + (i as i64 * 37) % 100 - 50;
            max_ts = max_ts.max(ts);
            assert_eq!(r.timestamp, ts);
            if i % 5 == 4 {
                assert_eq!(r.key, None);
            } else {
                assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
            }
            if i % 7 == 6 {
                assert_eq!(r.value, None);
            } else {
                assert_eq!(
                    r.value.as_deref(),
                    Some(&vec![(i % 256) as u8; i % 300][..])
                );
            }
            if i % 3 == 0 {
                assert_eq!(r.headers.len(), 2);
                assert_eq!(r.headers[0].key, "a");
                assert_eq!(
                    r.headers[0].value.as_deref(),
                    Some(i.to_string().as_bytes())
                );
                assert_eq!(r.headers[1].key, "nil");
                assert_eq!(r.headers[1].value, None);
            } else {
                assert!(r.headers.is_empty());
            }
        }
        assert_eq!(batch.base_timestamp(), TS - 50);
        assert_eq!(batch.max_timestamp(), max_ts);
    }

    #[test]
    fn round_trip_every_codec() {
        for c in Compression::ALL {
            for n in [1usize, 2, 50, 1500] {
                let mut bytes = sample_batch(c, n);
                let total = bytes.len();
                let batch = RecordBatch::decode(&mut bytes).unwrap();
                assert!(bytes.is_empty());
                assert_eq!(batch.size_in_bytes(), total);
                assert_eq!(batch.compression().unwrap(), c);
                assert_eq!(batch.batch_length() as usize, total - LOG_OVERHEAD);
                assert!(!batch.is_control() && !batch.is_transactional());
                assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
                check_sample(&batch, n);
            }
        }
    }

    #[test]
    fn borrowed_iteration_matches_owned() {
        for c in Compression::ALL {
            let batch = RecordBatch::from_bytes(sample_batch(c, 40)).unwrap();
            let owned = collect(&batch);
            let mut it = batch.records(1 << 20).unwrap();
            let mut i = 0;
            while let Some(r) = it.next_borrowed() {
                let r = r.unwrap();
                let o = &owned[i];
                assert_eq!((r.offset, r.timestamp), (o.offset, o.timestamp));
                assert_eq!(r.key, o.key.as_deref());
                assert_eq!(r.value, o.value.as_deref());
                assert_eq!(r.headers.len(), o.headers.len());
                for (h, oh) in r.headers.zip(&o.headers) {
                    assert_eq!(h.key_str(), oh.key);
                    assert_eq!(h.value, oh.value.as_deref());
                }
                i += 1;
            }
            assert_eq!(i, 40);
            assert!(it.next().is_none());
        }
        // Errors surface the same way.
        let r0 = encode_record(0, Some(b"aaaaaaaaaa"));
        let mut it = with_records(1, 1, &[r0.clone(), r0].concat())
            .records(1 << 20)
            .unwrap();
        assert!(it.next_borrowed().unwrap().is_ok());
        assert!(matches!(
            it.next_borrowed(),
            Some(Err(DecodeError::TrailingBytes { .. }))
        ));
        assert!(it.next_borrowed().is_none());
    }

    #[test]
    fn compressed_batches_are_smaller_and_uncompressed_size_is_exact() {
        let mut b = RecordBatchBuilder::new(opts(Compression::None));
        for _ in 0..100 {
            b.append(TS, Some(b"key"), Some(&[b'x'; 100]), &[]).unwrap();
        }
        let predicted = b.size_in_bytes_if_appended(TS + 5, Some(b"key"), Some(&[b'x'; 100]), &[]);
        let est = b.estimated_size();
        assert_eq!(est, b.uncompressed_size());
        let mut b2 = RecordBatchBuilder::new(opts(Compression::None));
        for _ in 0..100 {
            b2.append(TS, Some(b"key"), Some(&[b'x'; 100]), &[])
                .unwrap();
        }
        b2.append(TS + 5, Some(b"key"), Some(&[b'x'; 100]), &[])
            .unwrap();
        assert_eq!(b2.estimated_size(), predicted);
        assert_eq!(b.finish().unwrap().len(), est);
        assert_eq!(b2.finish().unwrap().len(), predicted);

        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = RecordBatchBuilder::new(opts(c));
            for _ in 0..100 {
                b.append(TS, Some(b"key"), Some(&[b'x'; 100]), &[]).unwrap();
            }
            let est = b.estimated_size();
            b.set_estimated_compression_ratio(0.5);
            assert!(b.estimated_size() < est);
            let out = b.finish().unwrap();
            assert!(out.len() < est / 4, "{c}: {} vs {est}", out.len());
        }
    }

    #[test]
    fn empty_builder_yields_no_batch() {
        let b = RecordBatchBuilder::new(BatchOptions::default());
        assert!(b.is_empty());
        assert_eq!(b.base_timestamp(), None);
        let out = b.finish().unwrap();
        assert!(out.is_empty());
        assert!(decode_all(out).unwrap().is_empty());
    }

    #[test]
    fn null_key_value_and_empty_values() {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        b.append(TS, None, None, &[]).unwrap();
        b.append(TS, Some(b""), Some(b""), &[("", Some(b""))])
            .unwrap();
        let batch = RecordBatch::from_bytes(b.finish().unwrap()).unwrap();
        let r = collect(&batch);
        assert_eq!(r[0].key, None);
        assert_eq!(r[0].value, None);
        assert_eq!(r[1].key.as_deref(), Some(&b""[..]));
        assert_eq!(r[1].value.as_deref(), Some(&b""[..]));
        assert_eq!(r[1].headers[0].key, "");
        assert_eq!(r[1].headers[0].value.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn decoded_slices_share_the_batch_buffer() {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        b.append(TS, Some(b"kk"), Some(b"value"), &[]).unwrap();
        let bytes = b.finish().unwrap();
        let batch = RecordBatch::from_bytes(bytes.clone()).unwrap();
        let r = collect(&batch).remove(0);
        let v = r.value.unwrap();
        let range = bytes.as_ptr_range();
        assert!(
            range.contains(&v.as_ptr()),
            "value must point into the batch"
        );
    }

    #[test]
    fn builder_setters_and_flags() {
        let mut b = RecordBatchBuilder::with_buffer(
            BatchOptions {
                timestamp_type: TimestampType::LogAppendTime,
                ..BatchOptions::default()
            },
            BytesMut::from(&b"garbage that must be discarded"[..]),
        );
        b.append(TS, Some(b"k"), Some(b"v"), &[]).unwrap();
        b.append(TS + 10, Some(b"k"), Some(b"v"), &[]).unwrap();
        b.set_producer_state(9, 8, 7);
        b.set_transactional(true);
        b.set_base_offset(55);
        b.set_partition_leader_epoch(4);
        assert_eq!(b.max_timestamp(), Some(TS + 10));
        let batch = RecordBatch::from_bytes(b.finish().unwrap()).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (9, 8, 7)
        );
        assert!(batch.is_transactional());
        assert_eq!(batch.base_offset(), 55);
        assert_eq!(batch.partition_leader_epoch(), 4);
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
        // LogAppendTime: every record gets maxTimestamp.
        for r in collect(&batch) {
            assert_eq!(r.timestamp, TS + 10);
        }
    }

    #[test]
    fn finish_and_recycle_returns_buffers() {
        let mut b = RecordBatchBuilder::new(opts(Compression::Lz4));
        b.append(TS, Some(b"k"), Some(&[1u8; 1000]), &[]).unwrap();
        let (out, spare) = b.finish_and_recycle().unwrap();
        let spare = spare.unwrap();
        assert!(spare.is_empty() && spare.capacity() >= 1000);
        let mut b = RecordBatchBuilder::with_buffer(opts(Compression::None), spare);
        b.append(TS, Some(b"k"), Some(b"v"), &[]).unwrap();
        let (out2, spare2) = b.finish_and_recycle().unwrap();
        assert!(spare2.is_none());
        // The finished batch's buffer can be reclaimed once it is the only handle.
        assert!(out2.try_into_mut().is_ok());
        RecordBatch::from_bytes(out).unwrap().verify_crc().unwrap();
    }

    #[test]
    fn control_batches() {
        for (t, epoch) in [
            (ControlRecordType::Commit, 17),
            (ControlRecordType::Abort, 0),
        ] {
            let marker = EndTransactionMarker {
                control_type: t,
                coordinator_epoch: epoch,
            };
            let bytes = end_transaction_marker_batch(77, TS, 3, 1234, 5, marker).unwrap();
            let batch = RecordBatch::from_bytes(bytes).unwrap();
            batch.verify_crc().unwrap();
            assert!(batch.is_control());
            assert!(batch.is_transactional());
            assert_eq!(batch.base_sequence(), NO_SEQUENCE);
            assert_eq!(batch.producer_id(), 1234);
            assert_eq!(batch.producer_epoch(), 5);
            assert_eq!(batch.partition_leader_epoch(), 3);
            assert_eq!(batch.compression().unwrap(), Compression::None);
            let recs = collect(&batch);
            assert_eq!(recs.len(), 1);
            let r = &recs[0];
            assert_eq!(r.offset, 77);
            assert_eq!(r.key.as_deref(), Some(&[0, 0, 0, t.id() as u8][..]));
            assert_eq!(
                EndTransactionMarker::decode(r.key.as_deref(), r.value.as_deref()).unwrap(),
                Some(marker)
            );
        }
        assert_eq!(ControlRecordType::parse_key(&[0, 1, 0, 2]).unwrap(), None);
        assert_eq!(
            ControlRecordType::parse_key(&[0, 1, 0, 1, 9, 9]).unwrap(),
            Some(ControlRecordType::Commit)
        );
        assert!(ControlRecordType::parse_key(&[0, 0, 1]).is_err());
        assert!(ControlRecordType::parse_key(&[0xff, 0xff, 0, 1]).is_err());
        assert!(EndTransactionMarker::decode(Some(&[0, 0, 0, 0]), Some(&[0, 0, 1])).is_err());
        assert!(EndTransactionMarker::decode(None, Some(&[0; 6])).is_err());
    }

    #[test]
    fn crc_mismatch_is_detected_for_every_covered_byte() {
        let bytes = sample_batch(Compression::None, 3);
        let mut v = bytes.to_vec();
        for i in 0..v.len() {
            v[i] ^= 0x01;
            let batch = RecordBatch::from_bytes(Bytes::copy_from_slice(&v));
            let covered = i >= ATTRIBUTES_OFFSET;
            match batch {
                Ok(b) => {
                    let res = b.verify_crc();
                    if covered || (CRC_OFFSET..ATTRIBUTES_OFFSET).contains(&i) {
                        assert!(
                            matches!(res, Err(DecodeError::CrcMismatch { .. })),
                            "byte {i} flip not detected"
                        );
                    } else {
                        assert!(res.is_ok(), "byte {i} is not covered by the CRC");
                    }
                }
                // Flipping the length or magic breaks the framing instead.
                Err(_) => assert!((BATCH_LENGTH_OFFSET..CRC_OFFSET).contains(&i)),
            }
            v[i] ^= 0x01;
        }
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        for c in Compression::ALL {
            let bytes = sample_batch(c, 20);
            for cut in 0..bytes.len() {
                let mut prefix = bytes.slice(..cut);
                assert!(
                    RecordBatch::decode(&mut prefix).is_err(),
                    "{c} prefix {cut}"
                );
                assert_eq!(prefix.len(), cut, "input must be left untouched");
                // A fetch-style iterator stops cleanly at the partial batch.
                let mut it = RecordBatches::for_fetch(bytes.slice(..cut));
                assert!(it.next().is_none());
                assert_eq!(it.remaining().len(), cut);
                assert_eq!(it.has_partial_tail(), cut > 0);
                let mut it = RecordBatches::new(bytes.slice(..cut));
                if cut > 0 {
                    assert!(it.next().unwrap().is_err());
                }
                assert!(it.next().is_none());
            }
        }
    }

    /// Rewrites a batch's records section (uncompressed) and header count fields, keeping
    /// the framing valid, so the record-level checks can be exercised.
    fn with_records(count: i32, last_offset_delta: i32, records: &[u8]) -> RecordBatch {
        let mut v = sample_batch(Compression::None, 1)[..RECORD_BATCH_OVERHEAD].to_vec();
        v.extend_from_slice(records);
        let len = (v.len() - LOG_OVERHEAD) as i32;
        put_at(&mut v, BATCH_LENGTH_OFFSET, &len.to_be_bytes());
        put_at(&mut v, RECORDS_COUNT_OFFSET, &count.to_be_bytes());
        put_at(
            &mut v,
            LAST_OFFSET_DELTA_OFFSET,
            &last_offset_delta.to_be_bytes(),
        );
        rewrite_crc(&mut v, len as usize + LOG_OVERHEAD);
        RecordBatch::from_bytes(Bytes::from(v)).unwrap()
    }

    fn encode_record(offset_delta: i32, key: Option<&[u8]>) -> Vec<u8> {
        let mut b = BytesMut::new();
        let body = record_body_size(offset_delta, 0, key, None, &[]);
        write_varint(&mut b, body as i32);
        b.put_u8(0);
        write_varlong(&mut b, 0);
        write_varint(&mut b, offset_delta);
        put_nullable(&mut b, key);
        put_nullable(&mut b, None);
        write_varint(&mut b, 0);
        b.to_vec()
    }

    fn first_error(batch: &RecordBatch) -> DecodeError {
        match batch.records(1 << 20) {
            Err(e) => e,
            Ok(it) => it
                .filter_map(Result::err)
                .next()
                .expect("expected an error"),
        }
    }

    #[test]
    fn record_count_inconsistencies_are_errors() {
        // Keys large enough that a count of 3 is plausible for two records' bytes.
        let r0 = encode_record(0, Some(b"aaaaaaaaaa"));
        let r1 = encode_record(1, Some(b"bbbbbbbbbb"));
        let two = [r0.clone(), r1.clone()].concat();
        // Consistent.
        assert_eq!(collect(&with_records(2, 1, &two)).len(), 2);
        // Count says 3 but only two records: records end early.
        assert!(matches!(
            first_error(&with_records(3, 2, &two)),
            DecodeError::Truncated { .. }
        ));
        // Count says 1 but two records: bytes remain.
        assert!(matches!(
            first_error(&with_records(1, 1, &two)),
            DecodeError::TrailingBytes { .. }
        ));
        // More records than lastOffsetDelta allows.
        assert!(matches!(
            first_error(&with_records(2, 0, &two)),
            DecodeError::Invalid { .. }
        ));
        // Negative count.
        assert!(matches!(
            first_error(&with_records(-1, 0, &two)),
            DecodeError::Invalid { .. }
        ));
        // Huge count in a small batch is rejected before iterating.
        assert!(batch_count_err(&with_records(1_000_000, 2_000_000, &two)));
        // Offset deltas must increase and stay within lastOffsetDelta.
        let dup = [r0.clone(), r0.clone()].concat();
        assert!(matches!(
            first_error(&with_records(2, 1, &dup)),
            DecodeError::Invalid { .. }
        ));
        let r5 = encode_record(5, None);
        assert!(matches!(
            first_error(&with_records(2, 3, &[r0.clone(), r5].concat())),
            DecodeError::Invalid { .. }
        ));
        // Compacted batches may have gaps: 2 records, lastOffsetDelta 9.
        let r9 = encode_record(9, None);
        let recs = collect(&with_records(2, 9, &[r0, r9].concat()));
        assert_eq!(recs[1].offset, 1000 + 9);
    }

    fn batch_count_err(batch: &RecordBatch) -> bool {
        batch.records(1 << 20).is_err()
    }

    #[test]
    fn malformed_records_are_errors() {
        let good = encode_record(0, Some(b"abc"));
        // Negative key length other than -1.
        let mut bad = good.clone();
        let key_len_at = 4; // length, attributes, ts delta, offset delta
        bad[key_len_at] = 5; // zig-zag 5 = -3
        assert!(matches!(
            first_error(&with_records(1, 0, &bad)),
            DecodeError::InvalidLength { .. }
        ));
        // Key longer than the record.
        let mut bad = good.clone();
        bad[key_len_at] = 40; // 20
        assert!(matches!(
            first_error(&with_records(1, 0, &bad)),
            DecodeError::Truncated { .. }
        ));
        // Record length shorter than its contents.
        let mut bad = good.clone();
        bad[0] -= 2; // one less
        bad.push(0);
        assert!(first_error(&with_records(1, 0, &bad))
            .to_string()
            .contains("truncated"));
        // Record length longer than its contents.
        let mut bad = good.clone();
        bad[0] += 2;
        bad.push(0);
        assert!(matches!(
            first_error(&with_records(1, 0, &bad)),
            DecodeError::Invalid { .. }
        ));
        // Negative record length.
        let mut bad = good.clone();
        bad[0] = 3;
        bad.extend_from_slice(&[0; 8]);
        assert!(matches!(
            first_error(&with_records(1, 0, &bad)),
            DecodeError::InvalidLength { .. }
        ));
        // Negative header count.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() = 1;
        assert!(matches!(
            first_error(&with_records(1, 0, &bad)),
            DecodeError::InvalidLength { .. }
        ));
        // Unknown codec.
        let mut v = sample_batch(Compression::None, 1).to_vec();
        v[ATTRIBUTES_OFFSET + 1] |= 0x07;
        let b = RecordBatch::from_bytes(Bytes::from(v)).unwrap();
        assert!(b.records(1 << 20).is_err());
    }

    #[test]
    fn corrupted_record_bytes_never_panic() {
        for c in Compression::ALL {
            let bytes = sample_batch(c, 10);
            let mut v = bytes.to_vec();
            for i in RECORD_BATCH_OVERHEAD..v.len() {
                for x in [0x01u8, 0x80, 0xff] {
                    v[i] ^= x;
                    if let Ok(b) = RecordBatch::from_bytes(Bytes::copy_from_slice(&v)) {
                        if let Ok(it) = b.records(1 << 20) {
                            for r in it {
                                let _ = r;
                            }
                        }
                    }
                    v[i] ^= x;
                }
            }
        }
    }

    #[test]
    fn framing_errors() {
        let bytes = sample_batch(Compression::None, 2);
        let mut v = bytes.to_vec();
        v[MAGIC_OFFSET] = 1;
        assert_eq!(
            RecordBatch::decode(&mut Bytes::from(v.clone())).unwrap_err(),
            DecodeError::UnsupportedMagic(1)
        );
        v[MAGIC_OFFSET] = 2;
        put_at(&mut v, BATCH_LENGTH_OFFSET, &(-5i32).to_be_bytes());
        assert!(matches!(
            RecordBatch::decode(&mut Bytes::from(v.clone())),
            Err(DecodeError::InvalidLength { .. })
        ));
        put_at(&mut v, BATCH_LENGTH_OFFSET, &20i32.to_be_bytes());
        assert!(matches!(
            RecordBatch::decode(&mut Bytes::from(v.clone())),
            Err(DecodeError::InvalidLength { .. })
        ));
        let mut two = bytes.to_vec();
        two.push(0);
        assert!(matches!(
            RecordBatch::from_bytes(Bytes::from(two)),
            Err(DecodeError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn many_batches_and_fetch_partial_tail() {
        let a = sample_batch(Compression::None, 3);
        let b = sample_batch(Compression::Zstd, 4);
        let c = sample_batch(Compression::Gzip, 5);
        let all = Bytes::from([&a[..], &b[..], &c[..]].concat());
        let batches = decode_all(all.clone()).unwrap();
        assert_eq!(batches.len(), 3);
        assert_eq!(
            batches.iter().map(|b| collect(b).len()).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        // Fetch response cut in the middle of the third batch.
        let cut = all.slice(..all.len() - 10);
        assert!(decode_all(cut.clone()).is_err());
        let mut it = RecordBatches::for_fetch(cut);
        assert_eq!(it.by_ref().map(Result::unwrap).count(), 2);
        assert!(it.has_partial_tail());
        assert_eq!(it.remaining().len(), c.len() - 10);
        // A bad magic in the middle is an error even for fetch.
        let mut v = all.to_vec();
        v[a.len() + MAGIC_OFFSET] = 0;
        let res: Result<Vec<_>, _> = RecordBatches::for_fetch(Bytes::from(v)).collect();
        assert_eq!(res.unwrap_err(), DecodeError::UnsupportedMagic(0));
    }

    #[test]
    fn decompression_limit_is_enforced() {
        let mut b = RecordBatchBuilder::new(opts(Compression::Zstd));
        for _ in 0..100 {
            b.append(TS, None, Some(&[0u8; 1000]), &[]).unwrap();
        }
        let batch = RecordBatch::from_bytes(b.finish().unwrap()).unwrap();
        assert!(batch.size_in_bytes() < 2000);
        assert!(matches!(
            batch.records(50_000),
            Err(DecodeError::Decompression { .. })
        ));
        assert_eq!(batch.records(200_000).unwrap().count(), 100);
    }

    #[test]
    fn snappy_raw_block_batch_as_librdkafka_writes() {
        // Re-encode the records section of a batch as one raw snappy block.
        let plain = sample_batch(Compression::None, 30);
        let raw = snap::raw::Encoder::new()
            .compress_vec(&plain[RECORD_BATCH_OVERHEAD..])
            .unwrap();
        let mut v = plain[..RECORD_BATCH_OVERHEAD].to_vec();
        v.extend_from_slice(&raw);
        let len = (v.len() - LOG_OVERHEAD) as i32;
        put_at(&mut v, BATCH_LENGTH_OFFSET, &len.to_be_bytes());
        let attrs = get_i16(&v, ATTRIBUTES_OFFSET) | Compression::Snappy.to_attributes();
        put_at(&mut v, ATTRIBUTES_OFFSET, &attrs.to_be_bytes());
        let end = v.len();
        rewrite_crc(&mut v, end);
        let batch = RecordBatch::from_bytes(Bytes::from(v)).unwrap();
        assert_eq!(batch.compression().unwrap(), Compression::Snappy);
        check_sample(&batch, 30);
    }

    #[test]
    fn header_patching() {
        let mut v = sample_batch(Compression::Lz4, 3).to_vec();
        set_base_offset(&mut v, 9_000).unwrap();
        set_partition_leader_epoch(&mut v, 12).unwrap();
        let b = RecordBatch::from_bytes(Bytes::from(v.clone())).unwrap();
        b.verify_crc().unwrap(); // neither field is covered by the CRC
        assert_eq!(b.base_offset(), 9_000);
        assert_eq!(collect(&b)[2].offset, 9_002);
        assert_eq!(b.partition_leader_epoch(), 12);

        set_producer_state(&mut v, 5, 6, i32::MAX - 1).unwrap();
        set_max_timestamp(&mut v, TimestampType::LogAppendTime, TS + 999).unwrap();
        let b = RecordBatch::from_bytes(Bytes::from(v.clone())).unwrap();
        b.verify_crc().unwrap();
        assert_eq!((b.producer_id(), b.producer_epoch()), (5, 6));
        assert_eq!(b.last_sequence(), 0); // MAX-1, MAX, 0
        assert_eq!(b.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(b.compression().unwrap(), Compression::Lz4);
        assert!(collect(&b).iter().all(|r| r.timestamp == TS + 999));

        assert!(set_base_offset(&mut v[..60], 1).is_err());
        assert!(set_producer_state(&mut v[..100], 1, 1, 1).is_err());
        v[MAGIC_OFFSET] = 1;
        assert!(set_base_offset(&mut v, 1).is_err());
    }

    /// Fuzz finding (`fuzz/repro/last_sequence_overflow.bin`): an empty batch with
    /// `lastOffsetDelta = -1` and `baseSequence = 5` made `last_sequence` overflow.
    #[test]
    fn last_sequence_never_overflows() {
        let hex = "0000000000000000000000310000000002000000000000ffffffff0000000000000000\
                   0000000000000000000000000000000000000000000500000000";
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let mut v = RecordBatch::from_bytes(Bytes::from(bytes))
            .unwrap()
            .into_bytes()
            .to_vec();
        // What Java's `incrementSequence(5, -1)` returns, in wrapping `int` arithmetic.
        assert_eq!(
            RecordBatch::from_bytes(Bytes::from(v.clone()))
                .unwrap()
                .last_sequence(),
            -2_147_483_644
        );
        for (base, delta, expected) in [
            (5, -1, -2_147_483_644),
            (i32::MAX, 0, i32::MAX),
            (i32::MAX, 1, 0),
            (i32::MAX - 1, 3, 1),
            (0, i32::MAX, i32::MAX),
            (i32::MIN, -1, i32::MAX), // Java wraps
            (i32::MAX, i32::MIN, i32::MAX),
            (NO_SEQUENCE, 10, NO_SEQUENCE),
        ] {
            put_at(&mut v, BASE_SEQUENCE_OFFSET, &base.to_be_bytes());
            put_at(&mut v, LAST_OFFSET_DELTA_OFFSET, &delta.to_be_bytes());
            let b = RecordBatch::from_bytes(Bytes::from(v.clone())).unwrap();
            assert_eq!(b.last_sequence(), expected, "base {base} delta {delta}");
        }
    }

    #[test]
    fn invalid_utf8_header_key_is_replaced_like_java() {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        b.append(TS, None, None, &[("ab", None)]).unwrap();
        let mut v = b.finish().unwrap().to_vec();
        let at = v.len() - 3; // "ab" then the null value length
        v[at] = 0xff;
        let end = v.len();
        rewrite_crc(&mut v, end);
        let batch = RecordBatch::from_bytes(Bytes::from(v)).unwrap();
        assert_eq!(collect(&batch)[0].headers[0].key, "\u{fffd}b");
    }

    /// A tiny uncompressed batch built by hand from the documented layout.
    #[test]
    fn known_bytes_vector() {
        let mut rec = vec![
            0x00, // attributes
            0x00, // timestampDelta 0
            0x00, // offsetDelta 0
            0x02, b'k', // key length 1, "k"
            0x04, b'v', b'1', // value length 2, "v1"
            0x02, // 1 header
            0x02, b'h', // header key length 1, "h"
            0x01, // header value null (-1)
        ];
        rec.insert(0, (rec.len() as u8) << 1); // length varint (12 -> 24)
        let mut rec2 = vec![
            0x00, // attributes
            0x14, // timestampDelta +10
            0x02, // offsetDelta 1
            0x01, // key null
            0x00, // value length 0
            0x00, // no headers
        ];
        rec2.insert(0, (rec2.len() as u8) << 1);

        let mut after_crc: Vec<u8> = Vec::new();
        after_crc.extend_from_slice(&0x0010i16.to_be_bytes()); // attributes: transactional
        after_crc.extend_from_slice(&1i32.to_be_bytes()); // lastOffsetDelta
        after_crc.extend_from_slice(&1000i64.to_be_bytes()); // baseTimestamp
        after_crc.extend_from_slice(&1010i64.to_be_bytes()); // maxTimestamp
        after_crc.extend_from_slice(&77i64.to_be_bytes()); // producerId
        after_crc.extend_from_slice(&2i16.to_be_bytes()); // producerEpoch
        after_crc.extend_from_slice(&10i32.to_be_bytes()); // baseSequence
        after_crc.extend_from_slice(&2i32.to_be_bytes()); // recordCount
        after_crc.extend_from_slice(&rec);
        after_crc.extend_from_slice(&rec2);
        let crc = crc32c::crc32c(&after_crc);

        let mut expected: Vec<u8> = Vec::new();
        expected.extend_from_slice(&5i64.to_be_bytes()); // baseOffset
        let batch_length = (4 + 1 + 4 + after_crc.len()) as i32;
        expected.extend_from_slice(&batch_length.to_be_bytes());
        expected.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
        expected.push(2); // magic
        expected.extend_from_slice(&crc.to_be_bytes());
        expected.extend_from_slice(&after_crc);
        assert_eq!(
            expected.len(),
            RECORD_BATCH_OVERHEAD + rec.len() + rec2.len()
        );

        let mut b = RecordBatchBuilder::new(BatchOptions {
            base_offset: 5,
            producer_id: 77,
            producer_epoch: 2,
            base_sequence: 10,
            is_transactional: true,
            ..BatchOptions::default()
        });
        assert_eq!(
            b.append(1000, Some(b"k"), Some(b"v1"), &[("h", None)])
                .unwrap(),
            0
        );
        assert_eq!(b.append(1010, None, Some(b""), &[]).unwrap(), 1);
        let built = b.finish().unwrap();
        assert_eq!(&built[..], &expected[..]);

        let batch = RecordBatch::from_bytes(Bytes::from(expected)).unwrap();
        batch.verify_crc().unwrap();
        let r = collect(&batch);
        assert_eq!(r[0].offset, 5);
        assert_eq!(r[1].offset, 6);
        assert_eq!(r[1].timestamp, 1010);
        assert_eq!(
            r[0].headers,
            vec![Header {
                key: "h".into(),
                value: None
            }]
        );
    }
}
