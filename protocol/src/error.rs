//! Typed errors for encoding and decoding. Kafka's own error codes live in
//! [`crate::error_code`].

use thiserror::Error;

/// Why bytes could not be decoded. Every malformed input maps to one of these; decoding
/// never panics.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before `what` was complete.
    #[error("truncated input reading {what}: needed {needed} bytes, {remaining} remaining")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A length or count prefix is negative (other than -1 for null) or exceeds the input.
    #[error("invalid length {len} for {what}")]
    InvalidLength {
        /// What was being read.
        what: &'static str,
        /// The length found on the wire.
        len: i64,
    },
    /// A varint ran over its maximum width.
    #[error("varint too long reading {what}")]
    VarintOverflow {
        /// What was being read.
        what: &'static str,
    },
    /// A string was not valid UTF-8.
    #[error("invalid UTF-8 in {what}")]
    InvalidUtf8 {
        /// What was being read.
        what: &'static str,
    },
    /// A null was found where this version does not allow one.
    #[error("unexpected null for non-nullable {what}")]
    UnexpectedNull {
        /// What was being read.
        what: &'static str,
    },
    /// Bytes were left over after a complete message.
    #[error("{remaining} trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// Bytes left.
        remaining: usize,
    },
    /// The API key is not one Kafka defines.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// The version is outside what this code understands for the message.
    #[error("unsupported version {version} of {what}")]
    UnsupportedVersion {
        /// The message.
        what: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A frame's size prefix exceeds the configured maximum (or is negative).
    #[error("frame size {size} exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The size prefix found on the wire.
        size: i64,
        /// The configured maximum.
        max: usize,
    },
    /// A record batch's stored CRC-32C does not match its contents.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC found in the batch header.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// The record batch magic byte is not one we decode.
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// Structurally invalid data (inconsistent counts, bad attributes, ...).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Decompression failed or exceeded its size limit.
    #[error("decompression ({codec}) failed: {reason}")]
    Decompression {
        /// The codec name.
        codec: &'static str,
        /// Why it failed.
        reason: String,
    },
}

/// Why a value could not be encoded at the requested version.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A null value in a version where the field is not nullable.
    #[error("{field} is null, but version {version} does not allow null")]
    NullNotAllowed {
        /// The field.
        field: &'static str,
        /// The version being written.
        version: i16,
    },
    /// A field that `version` does not have was set to a non-default value and it is not
    /// ignorable; writing would silently lose meaning (Kafka raises
    /// `UnsupportedVersionException` in the same case).
    #[error("{field} has a non-default value, but version {version} cannot carry it")]
    FieldNotSupported {
        /// The field.
        field: &'static str,
        /// The version being written.
        version: i16,
    },
    /// A string, bytes or array longer than its length prefix can express.
    #[error("{what} is too long ({len}) for its length prefix")]
    TooLong {
        /// What was being written.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// The version is outside what this code understands for the message.
    #[error("unsupported version {version} of {what}")]
    UnsupportedVersion {
        /// The message.
        what: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// Compression failed.
    #[error("compression ({codec}) failed: {reason}")]
    Compression {
        /// The codec name.
        codec: &'static str,
        /// Why it failed.
        reason: String,
    },
}
