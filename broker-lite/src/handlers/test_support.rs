//! Helpers of the handlers' unit tests: a broker state on a test's temporary directory, its
//! topics, and batches appended straight to a partition's log (as Produce would).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_wire::records::{BatchOptions, RecordBatchBuilder};

use crate::config::BrokerConfig;
use crate::state::{BrokerState, Topic};

/// A broker with the default configuration whose data directory is `dir`.
pub(super) fn open_state(dir: &Path) -> Arc<BrokerState> {
    BrokerState::open(
        BrokerConfig::default(),
        dir.to_path_buf(),
        "localhost".into(),
        9092,
    )
    .unwrap()
}

/// Creates topic `name` with `partitions` partitions and the config overrides `configs`.
pub(super) fn create_topic(
    state: &BrokerState,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Arc<Topic> {
    let overrides: BTreeMap<String, String> = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    state.create_topic(name, partitions, 1, overrides).unwrap()
}

/// Appends one batch built with `opts`, of `(timestamp, value)` records with key `k` (so that
/// compacted topics take them too), to partition `partition` of `topic`, at `now_ms`.
pub(super) fn append(
    state: &BrokerState,
    topic: &str,
    partition: i32,
    opts: BatchOptions,
    records: &[(i64, &str)],
    now_ms: i64,
) {
    let mut builder = RecordBatchBuilder::new(opts);
    for (timestamp, value) in records {
        builder
            .append(*timestamp, Some(b"k"), Some(value.as_bytes()), &[])
            .unwrap();
    }
    let mut bytes = BytesMut::from(&builder.finish().unwrap()[..]);
    let partition = state.topic(topic).unwrap().partition(partition).unwrap();
    partition.log().append(&mut bytes, now_ms).unwrap();
}
