//! # kafka-client
//!
//! An async Apache Kafka client built on [`kafka_wire`].

pub mod partitioner;
