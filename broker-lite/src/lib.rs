//! # broker-lite
//!
//! A Kafka-compatible broker that runs in-process (for tests) or as a binary.
