//! ListOffsets for partitions: earliest, latest, max timestamp (KIP-734, ListOffsets v7+)
//! or the first offset at or after a timestamp (KIP-79), routed to each partition's leader
//! with one request per leader.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_wire::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_wire::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::retry::ItemResults;
use super::{by_topic, check, tp, AdminClient};
use crate::config::IsolationLevel;
use crate::error::Error;
use crate::producer::TopicPartition;

/// Which offset to look up (Java's `OffsetSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetSpec {
    /// The log start offset (timestamp -2).
    Earliest,
    /// The end offset: the high watermark, or the last stable offset for read_committed
    /// (timestamp -1).
    Latest,
    /// The offset of the record with the largest timestamp (timestamp -3, ListOffsets v7+).
    MaxTimestamp,
    /// The first offset whose timestamp is at or after this one (ms since the epoch).
    ForTimestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets timestamp.
    pub fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::ForTimestamp(t) => t,
        }
    }

    /// The lowest ListOffsets version that can ask for it.
    fn min_version(self) -> i16 {
        match self {
            OffsetSpec::MaxTimestamp => 7,
            _ => 0,
        }
    }
}

/// Options of [`AdminClient::list_offsets`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsOptions {
    /// Read committed: latest is the last stable offset and lookups stay below it.
    pub isolation_level: IsolationLevel,
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A partition's offset (Java's `ListOffsetsResultInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOffsetsResultInfo {
    /// The offset (-1 when no record matches a timestamp).
    pub offset: i64,
    /// The record's timestamp (-1 for earliest and latest).
    pub timestamp: i64,
    /// The leader epoch of the offset, when the broker sends it (v4+).
    pub leader_epoch: Option<i32>,
}

/// A ListOffsets request for `partitions` at `version` (pure). Partitions whose spec needs a
/// newer version are answered with [`Error::UnsupportedVersion`] instead.
pub(crate) fn list_offsets_request(
    partitions: &[TopicPartition],
    specs: &BTreeMap<TopicPartition, OffsetSpec>,
    isolation_level: IsolationLevel,
    version: i16,
) -> (
    ListOffsetsRequest,
    ItemResults<TopicPartition, ListOffsetsResultInfo>,
) {
    let mut unsupported = Vec::new();
    let mut sendable = Vec::new();
    for p in partitions {
        let spec = specs.get(p).copied().unwrap_or(OffsetSpec::Latest);
        if version < spec.min_version() {
            unsupported.push((
                p.clone(),
                Err(Error::UnsupportedVersion(format!(
                    "{spec:?} needs ListOffsets v{}, the broker offers v{version}",
                    spec.min_version()
                ))),
            ));
        } else {
            sendable.push(p.clone());
        }
    }
    let request = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: if version >= 2 {
            isolation_level.as_i8()
        } else {
            0
        },
        topics: by_topic(&sendable)
            .into_iter()
            .map(|(name, ps)| ListOffsetsTopic {
                partitions: ps
                    .into_iter()
                    .map(|partition| ListOffsetsPartition {
                        partition_index: partition,
                        timestamp: specs
                            .get(&tp(&name, partition))
                            .copied()
                            .unwrap_or(OffsetSpec::Latest)
                            .timestamp(),
                        ..Default::default()
                    })
                    .collect(),
                name,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    (request, unsupported)
}

/// The per-partition answers of a ListOffsets response (pure).
pub(crate) fn list_offsets_results(
    response: &ListOffsetsResponse,
) -> Vec<(TopicPartition, Result<ListOffsetsResultInfo, Error>)> {
    let mut out = Vec::new();
    for t in &response.topics {
        for p in &t.partitions {
            let result = check(p.error_code, None).map(|()| ListOffsetsResultInfo {
                // v0 answered a list of offsets.
                offset: if p.old_style_offsets.is_empty() {
                    p.offset
                } else {
                    p.old_style_offsets[0]
                },
                timestamp: p.timestamp,
                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
            });
            out.push((tp(&t.name, p.partition_index), result));
        }
    }
    out
}

impl AdminClient {
    /// Looks up offsets of partitions (ListOffsets, to each partition's leader), one answer
    /// per partition: UNKNOWN_TOPIC_OR_PARTITION at once for a topic that does not exist,
    /// [`Error::UnsupportedVersion`] for [`OffsetSpec::MaxTimestamp`] on a broker before
    /// ListOffsets v7. As Java's `listOffsets`, retriable errors (leader changes, a partition
    /// the metadata or its leader does not know yet: UNKNOWN_TOPIC_OR_PARTITION,
    /// OFFSET_NOT_AVAILABLE, ...) are retried until the timeout, which then names the last
    /// one.
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per partition.
    pub async fn list_offsets(
        &self,
        specs: BTreeMap<TopicPartition, OffsetSpec>,
        options: &ListOffsetsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<ListOffsetsResultInfo, Error>>, Error> {
        let specs = &specs;
        self.drive_leaders(
            "listOffsets",
            specs.keys().cloned(),
            options.timeout,
            false,
            |conn, partitions, deadline| async move {
                let mut unsupported = Vec::new();
                let response = self
                    .send(&conn, deadline, |version| {
                        let (request, local) = list_offsets_request(
                            &partitions,
                            specs,
                            options.isolation_level,
                            version,
                        );
                        unsupported = local;
                        Ok(request)
                    })
                    .await?;
                unsupported.extend(list_offsets_results(&response));
                Ok(unsupported)
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_wire::ErrorCode;

    use super::*;

    #[test]
    fn requests_carry_each_partitions_timestamp() {
        let specs: BTreeMap<TopicPartition, OffsetSpec> = [
            (tp("a", 0), OffsetSpec::Earliest),
            (tp("a", 1), OffsetSpec::Latest),
            (tp("b", 0), OffsetSpec::MaxTimestamp),
            (tp("b", 1), OffsetSpec::ForTimestamp(1234)),
        ]
        .into_iter()
        .collect();
        let all: Vec<TopicPartition> = specs.keys().cloned().collect();
        let (r, unsupported) = list_offsets_request(&all, &specs, IsolationLevel::ReadCommitted, 7);
        assert!(unsupported.is_empty());
        assert_eq!(r.replica_id, -1);
        assert_eq!(r.isolation_level, 1);
        let ts: Vec<(String, i32, i64)> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.timestamp))
            })
            .collect();
        assert_eq!(
            ts,
            [
                ("a".to_owned(), 0, -2),
                ("a".to_owned(), 1, -1),
                ("b".to_owned(), 0, -3),
                ("b".to_owned(), 1, 1234)
            ]
        );
        // Before v7, max timestamp is answered locally.
        let (r, unsupported) = list_offsets_request(&all, &specs, IsolationLevel::ReadCommitted, 6);
        assert_eq!(
            r.topics.iter().map(|t| t.partitions.len()).sum::<usize>(),
            3
        );
        assert_eq!(unsupported.len(), 1);
        assert_eq!(unsupported[0].0, tp("b", 0));
        assert!(matches!(
            unsupported[0].1,
            Err(Error::UnsupportedVersion(_))
        ));
        // v1 has no isolation level.
        let (r, _) = list_offsets_request(&all, &specs, IsolationLevel::ReadCommitted, 1);
        assert_eq!(r.isolation_level, 0);
    }

    #[test]
    fn answers_keep_codes_and_epochs() {
        let response = ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                name: "a".into(),
                partitions: vec![
                    ListOffsetsPartitionResponse {
                        partition_index: 0,
                        offset: 42,
                        timestamp: 1000,
                        leader_epoch: 3,
                        ..Default::default()
                    },
                    ListOffsetsPartitionResponse {
                        partition_index: 1,
                        error_code: ErrorCode::NotLeaderOrFollower.code(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = list_offsets_results(&response);
        assert_eq!(
            r[0],
            (
                tp("a", 0),
                Ok(ListOffsetsResultInfo {
                    offset: 42,
                    timestamp: 1000,
                    leader_epoch: Some(3)
                })
            )
        );
        assert_eq!(
            r[1].1.as_ref().unwrap_err().code(),
            Some(ErrorCode::NotLeaderOrFollower)
        );
    }
}
