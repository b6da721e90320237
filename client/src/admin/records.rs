//! DeleteRecords (key 21, KIP-107): moves partitions' log start offsets forward, routed to
//! each partition's leader with one request per leader.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_wire::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_wire::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{by_topic, check, timeout_ms, tp, AdminClient};
use crate::error::Error;
use crate::producer::TopicPartition;

/// Options of [`AdminClient::delete_records`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRecordsOptions {
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A partition after DeleteRecords (Java's `DeletedRecords`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedRecords {
    /// The partition's new log start offset.
    pub low_watermark: i64,
}

/// A DeleteRecords request deleting the records of `partitions` before their offset in
/// `before` (-1: the high watermark), pure.
pub(crate) fn delete_records_request(
    partitions: &[TopicPartition],
    before: &BTreeMap<TopicPartition, i64>,
    timeout_ms: i32,
) -> DeleteRecordsRequest {
    DeleteRecordsRequest {
        topics: by_topic(partitions)
            .into_iter()
            .map(|(name, ps)| DeleteRecordsTopic {
                partitions: ps
                    .into_iter()
                    .map(|p| DeleteRecordsPartition {
                        partition_index: p,
                        offset: before.get(&tp(&name, p)).copied().unwrap_or(-1),
                        ..Default::default()
                    })
                    .collect(),
                name,
                ..Default::default()
            })
            .collect(),
        timeout_ms,
        ..Default::default()
    }
}

/// The per-partition answers of a DeleteRecords response (pure).
pub(crate) fn delete_records_results(
    response: &DeleteRecordsResponse,
) -> Vec<(TopicPartition, Result<DeletedRecords, Error>)> {
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    tp(&t.name, p.partition_index),
                    check(p.error_code, None).map(|()| DeletedRecords {
                        low_watermark: p.low_watermark,
                    }),
                )
            })
        })
        .collect()
}

impl AdminClient {
    /// Deletes the records of each partition before an offset (DeleteRecords, to each
    /// partition's leader; -1 deletes up to the high watermark), one answer per partition
    /// (OFFSET_OUT_OF_RANGE beyond the high watermark, TOPIC_AUTHORIZATION_FAILED, ...).
    /// As Java's `deleteRecords`, retriable errors are retried until the timeout, which then
    /// names the last one: leader changes, and a topic or partition that does not exist
    /// (UNKNOWN_TOPIC_OR_PARTITION), which may be one just created. A broker without
    /// DeleteRecords answers every partition it leads with [`Error::UnsupportedVersion`].
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per partition.
    pub async fn delete_records(
        &self,
        before: BTreeMap<TopicPartition, i64>,
        options: &DeleteRecordsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<DeletedRecords, Error>>, Error> {
        let before = &before;
        let request_timeout = self.inner.config.request_timeout;
        self.drive_leaders(
            "deleteRecords",
            before.keys().cloned(),
            options.timeout,
            true,
            |conn, partitions, deadline| async move {
                let response = self
                    .send(&conn, deadline, |_| {
                        Ok(delete_records_request(
                            &partitions,
                            before,
                            timeout_ms(deadline, request_timeout),
                        ))
                    })
                    .await?;
                Ok(delete_records_results(&response))
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::delete_records_response::{
        DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
    };
    use kafka_wire::ErrorCode;

    use super::*;

    #[test]
    fn requests_and_answers() {
        let before: BTreeMap<TopicPartition, i64> =
            [(tp("t", 1), 5), (tp("t", 0), -1)].into_iter().collect();
        let all: Vec<TopicPartition> = before.keys().cloned().collect();
        let r = delete_records_request(&all, &before, 1500);
        assert_eq!(r.timeout_ms, 1500);
        assert_eq!(r.topics[0].name, "t");
        let ps: Vec<(i32, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.offset))
            .collect();
        assert_eq!(ps, [(0, -1), (1, 5)]);

        let response = DeleteRecordsResponse {
            topics: vec![DeleteRecordsTopicResult {
                name: "t".into(),
                partitions: vec![
                    DeleteRecordsPartitionResult {
                        partition_index: 0,
                        low_watermark: 9,
                        ..Default::default()
                    },
                    DeleteRecordsPartitionResult {
                        partition_index: 1,
                        low_watermark: -1,
                        error_code: ErrorCode::OffsetOutOfRange.code(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = delete_records_results(&response);
        assert_eq!(r[0], (tp("t", 0), Ok(DeletedRecords { low_watermark: 9 })));
        assert_eq!(
            r[1].1.as_ref().unwrap_err().code(),
            Some(ErrorCode::OffsetOutOfRange)
        );
    }
}
