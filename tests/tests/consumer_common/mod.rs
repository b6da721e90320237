//! Helpers shared by the consumer integration tests (`consumer_*.rs`,
//! `client_group_interop.rs`): building a consumer, filling every partition of a topic, and
//! the rebalance-listener event log. Needs `mod producer_common;` beside it.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_client::config::ConsumerConfigBuilder;
use kafka_client::consumer::{Consumer, TopicPartition};
use kafka_client::producer::Producer;
use kafka_client::ProducerRecord;

use crate::producer_common::{delivered_all, promptly, send};

/// A consumer from `builder` (bytes keys and values).
pub fn consumer(builder: ConsumerConfigBuilder) -> Consumer {
    Consumer::new(builder.build().expect("valid consumer config")).expect("consumer starts")
}

/// Produces `count` records to each of the `partitions` partitions of `topic` (value
/// `<partition>-<i>`), and waits until all are delivered.
pub async fn produce_all(p: &Producer, topic: &str, partitions: i32, count: usize) {
    let mut futs = Vec::new();
    for partition in 0..partitions {
        for i in 0..count {
            let rec = ProducerRecord {
                topic: topic.to_owned(),
                partition: Some(partition),
                key: None,
                value: Some(Bytes::from(format!("{partition}-{i}"))),
                headers: Vec::new(),
                timestamp: None,
            };
            futs.push(send(p, rec).await);
        }
    }
    promptly("flush", p.flush()).await.unwrap();
    delivered_all(futs).await;
}

/// What a rebalance listener saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `on_partitions_assigned`.
    Assigned(BTreeSet<i32>),
    /// `on_partitions_revoked`.
    Revoked(BTreeSet<i32>),
    /// `on_partitions_lost`.
    Lost(BTreeSet<i32>),
}

/// A listener's events, in order.
pub type Log = Arc<Mutex<Vec<Event>>>;

/// The partition numbers of `ps`.
pub fn partitions(ps: &[TopicPartition]) -> BTreeSet<i32> {
    ps.iter().map(|tp| tp.partition).collect()
}
