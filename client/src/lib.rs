//! # kafka-client
//!
//! An async Apache Kafka client built on [`kafka_wire`]: a producer with Kafka's pipeline
//! (interceptors, serializers, partitioner, `RecordAccumulator`, `BufferPool`, `Sender`),
//! idempotent by default; a consumer with groups; and an admin client ([`admin`]: topics,
//! configs, offsets, records, consumer groups).

pub mod admin;
pub mod config;
pub mod consumer;
pub mod error;
pub mod interceptor;
pub mod metadata;
pub mod network;
pub mod partitioner;
pub mod producer;
pub mod record;
pub mod serializer;

pub use error::{Error, Result};
pub use record::{Header, ProducerRecord, RecordMetadata};
