//! # kafka-wire
//!
//! The Apache Kafka wire protocol, with no I/O: every request and response type generated from
//! Kafka's JSON message specs (see [`messages`]), request/response headers, length-prefixed
//! framing, Kafka's error codes, record batch v2 with CRC-32C, and compression (gzip, snappy,
//! lz4, zstd). Shared by `kafka-client` and `broker-lite`.
//!
//! Decoding treats every byte as hostile: lengths are checked against what remains before any
//! allocation, and malformed input becomes a typed [`DecodeError`].

#![forbid(unsafe_code)]

pub mod codec;
pub mod consumer_protocol;
pub mod error;
pub mod error_code;
pub mod fetch_session;
pub mod frame;
pub mod message;
pub mod records;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

/// Every message generated from Kafka's specs (`@generated`; see `protocol/codegen`).
#[path = "generated/mod.rs"]
#[allow(clippy::all, clippy::pedantic, clippy::nursery)]
pub mod messages;

mod generated_api {
    pub use crate::messages::ApiKey;
}

pub use codec::{Decodable, Encodable, ParseUuidError, RawTaggedField, Uuid};
pub use error::{DecodeError, EncodeError};
pub use error_code::ErrorCode;
pub use message::{Message, Request, Response, VersionRange};
pub use messages::{ApiKey, RequestBody, ResponseBody};
