//! DescribeLogDirs (key 35), versions 0-4 (v2+ flexible; v3 adds the top-level error code,
//! KIP-784; v4 the volume's total and usable bytes, KIP-827), KIP-113.
//!
//! As Kafka's `KafkaApis.handleDescribeLogDirsRequest` and `ReplicaManager.describeLogDirs`
//! with one log directory, the data directory: the answer holds one result whose `log_dir` is
//! the data directory's absolute path (Java's `getAbsolutePath`: made absolute, symlinks
//! kept), error NONE. `topics` null asks for every partition of every topic, internal topics
//! (`__consumer_offsets`, `__transaction_state`) included; otherwise for the partitions named.
//! A topic or partition that does not exist is simply absent, and a topic none of whose
//! partitions were asked for is left out (Kafka 3.7+ drops topics with no partition). Each
//! partition reports its `partition_size`, the bytes of its segments' `.log` files
//! (`UnifiedLog.size`), its `offset_lag` (high watermark minus log end offset, at least 0:
//! always 0 with one replica) and `is_future_key` false (no AlterReplicaLogDirs moves).
//! Topics are answered in name order, partitions by index (Kafka's order is a hash map's).
//!
//! `total_bytes` and `usable_bytes` (v4) are the data directory's volume size and the space
//! available to the broker, from `statvfs` (Java's `FileStore.getTotalSpace` /
//! `getUsableSpace`: `f_blocks` and `f_bavail` times `f_frsize`), or Kafka's
//! `UNKNOWN_VOLUME_BYTES` (-1) when the volume cannot be asked. The
//! top-level error is NONE (with no authorizer Kafka never answers CLUSTER_AUTHORIZATION_FAILED).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_wire::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_wire::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_wire::ErrorCode;

use crate::state::BrokerState;

/// Kafka's `DescribeLogDirsResponse.UNKNOWN_VOLUME_BYTES`.
const UNKNOWN_VOLUME_BYTES: i64 = -1;

/// `(total, usable)` bytes of the volume holding `dir`, as Java's `FileStore` reports them,
/// or [`UNKNOWN_VOLUME_BYTES`] for both when `statvfs` fails.
fn volume_bytes(dir: &std::path::Path) -> (i64, i64) {
    match rustix::fs::statvfs(dir) {
        Ok(st) => {
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(st.f_frsize)).unwrap_or(i64::MAX);
            (bytes(st.f_blocks), bytes(st.f_bavail))
        }
        Err(_) => (UNKNOWN_VOLUME_BYTES, UNKNOWN_VOLUME_BYTES),
    }
}

/// The partitions asked for: `None` for every partition, else by topic.
fn requested(req: &DescribeLogDirsRequest) -> Option<BTreeMap<&str, BTreeSet<i32>>> {
    let topics = req.topics.as_ref()?;
    let mut by_topic: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for t in topics {
        by_topic
            .entry(t.topic.as_str())
            .or_default()
            .extend(t.partitions.iter().copied());
    }
    Some(by_topic)
}

/// One partition's entry (locks its log briefly).
fn describe_partition(partition: &crate::state::Partition) -> DescribeLogDirsPartition {
    let log = partition.log();
    DescribeLogDirsPartition {
        partition_index: partition.index,
        partition_size: i64::try_from(log.size_in_bytes()).unwrap_or(i64::MAX),
        offset_lag: log
            .high_watermark()
            .saturating_sub(log.log_end_offset())
            .max(0),
        is_future_key: false,
        ..Default::default()
    }
}

/// Answers a DescribeLogDirs request (blocking: every asked partition's log is locked).
fn answer(state: &BrokerState, req: &DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted = requested(req);
    let topics: Vec<DescribeLogDirsTopic> = match &wanted {
        None => state
            .all_topics()
            .iter()
            .map(|topic| DescribeLogDirsTopic {
                name: topic.name.clone(),
                partitions: topic
                    .all_partitions()
                    .iter()
                    .map(|p| describe_partition(p))
                    .collect(),
                ..Default::default()
            })
            .collect(),
        Some(by_topic) => by_topic
            .iter()
            .filter_map(|(name, indexes)| {
                let topic = state.topic(name)?;
                Some(DescribeLogDirsTopic {
                    name: topic.name.clone(),
                    partitions: indexes
                        .iter()
                        .filter_map(|&i| topic.partition(i))
                        .map(|p| describe_partition(&p))
                        .collect(),
                    ..Default::default()
                })
            })
            .collect(),
    };
    let log_dir = std::path::absolute(&state.data_dir).unwrap_or_else(|_| state.data_dir.clone());
    let (total_bytes, usable_bytes) = volume_bytes(&log_dir);
    DescribeLogDirsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        results: vec![DescribeLogDirsResult {
            error_code: ErrorCode::None.code(),
            log_dir: log_dir.to_string_lossy().into_owned(),
            topics: topics
                .into_iter()
                .filter(|t| !t.partitions.is_empty())
                .collect(),
            total_bytes,
            usable_bytes,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) async fn handle(
    state: &Arc<BrokerState>,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let s = state.clone();
    super::blocking(move || answer(&s, &req)).await
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_wire::records::BatchOptions;

    use super::*;
    use crate::handlers::test_support::{self, create_topic, open_state};

    const NOW: i64 = 1_700_000_000_000;

    fn state_with(dir: &std::path::Path, topics: &[(&str, i32)]) -> Arc<BrokerState> {
        let state = open_state(dir);
        for (name, partitions) in topics {
            create_topic(&state, name, *partitions, &[]);
        }
        state
    }

    /// Appends `n` one-record batches.
    fn append(state: &BrokerState, topic: &str, partition: i32, n: usize) {
        for i in 0..n {
            let record = (NOW + i as i64, "value");
            test_support::append(
                state,
                topic,
                partition,
                BatchOptions::default(),
                &[record],
                NOW,
            );
        }
    }

    /// Bytes of the `.log` files of `<dir>/<topic>-<partition>`.
    fn log_bytes(dir: &std::path::Path, topic: &str, partition: i32) -> i64 {
        std::fs::read_dir(dir.join(format!("{topic}-{partition}")))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len() as i64)
            .sum()
    }

    /// `(topic, partition, size, lag, future)` of the single result.
    fn flat(r: &DescribeLogDirsResponse) -> Vec<(String, i32, i64, i64, bool)> {
        assert_eq!(r.results.len(), 1);
        r.results[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.clone(),
                        p.partition_index,
                        p.partition_size,
                        p.offset_lag,
                        p.is_future_key,
                    )
                })
            })
            .collect()
    }

    fn request(entries: Option<&[(&str, &[i32])]>) -> DescribeLogDirsRequest {
        DescribeLogDirsRequest {
            topics: entries.map(|e| {
                e.iter()
                    .map(|(topic, partitions)| DescribableLogDirTopic {
                        topic: (*topic).into(),
                        partitions: partitions.to_vec(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_partition_with_its_size_on_disk_when_topics_is_null() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(dir.path(), &[("b", 2), ("a", 1)]);
        append(&state, "b", 1, 3);
        append(&state, "a", 0, 1);
        let r = answer(&state, &request(None));
        assert_eq!((r.throttle_time_ms, r.error_code), (0, 0));
        let result = &r.results[0];
        assert_eq!(result.error_code, 0);
        assert_eq!(
            result.log_dir,
            std::path::absolute(dir.path()).unwrap().to_string_lossy()
        );
        assert!(result.total_bytes > 0, "{}", result.total_bytes);
        assert!(
            (0..=result.total_bytes).contains(&result.usable_bytes),
            "{} of {}",
            result.usable_bytes,
            result.total_bytes
        );
        let sizes = (
            log_bytes(dir.path(), "a", 0),
            log_bytes(dir.path(), "b", 0),
            log_bytes(dir.path(), "b", 1),
        );
        assert!(
            sizes.0 > 0 && sizes.1 == 0 && sizes.2 > sizes.0,
            "{sizes:?}"
        );
        assert_eq!(
            flat(&r),
            vec![
                ("a".into(), 0, sizes.0, 0, false),
                ("b".into(), 0, 0, 0, false),
                ("b".into(), 1, sizes.2, 0, false),
            ]
        );
    }

    #[test]
    fn only_the_named_partitions_unknown_ones_absent() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(dir.path(), &[("a", 3), ("b", 1)]);
        append(&state, "a", 2, 2);
        let r = answer(
            &state,
            &request(Some(&[
                ("a", &[2, 7]),
                ("missing", &[0]),
                ("b", &[5]),
                ("a", &[0]),
            ])),
        );
        assert_eq!(
            flat(&r),
            vec![
                ("a".into(), 0, 0, 0, false),
                ("a".into(), 2, log_bytes(dir.path(), "a", 2), 0, false),
            ]
        );
        // Nothing that exists: one log dir, no topics.
        let r = answer(&state, &request(Some(&[("missing", &[0])])));
        assert_eq!(r.results.len(), 1);
        assert!(r.results[0].topics.is_empty());
        let r = answer(&state, &request(Some(&[])));
        assert!(r.results[0].topics.is_empty());
    }
}
