//! Fault injection for tests: make the running broker answer errors, answer late, or drop
//! connections, to exercise a client's retry and idempotence paths (KIP-98 / KIP-360: a
//! Produce that was appended but whose response was lost is the classic duplicate).
//!
//! Get a [`FaultInjector`] from [`Broker::faults`](crate::Broker::faults); it is a cheap
//! clone of a shared handle, safe to use from any thread. Faults are consumed by requests as
//! they are handled, one request at a time per connection, in each connection's order:
//!
//! 1. [`push_error`](FaultInjector::push_error): the next request of that API (on any
//!    connection) is answered with the error without being processed. FIFO: each request
//!    consumes the oldest queued error.
//! 2. Otherwise [`push_partition_error`](FaultInjector::push_partition_error): in the next
//!    Produce, Fetch or ListOffsets request naming that partition, only that partition is
//!    answered with the error (a Produce appends nothing to it; the other partitions are
//!    handled normally). For each partition of a request the oldest matching fault is taken.
//! 3. The request is handled (or answered with the injected error).
//! 4. [`set_delay`](FaultInjector::set_delay): the response is held back for the delay
//!    (other requests of the same connection wait too: per-connection order is kept).
//! 5. [`drop_connection_after`](FaultInjector::drop_connection_after): if the API's counter is
//!    positive it is decremented and the connection is closed without writing the response,
//!    after the request was fully handled (records appended, ids allocated...).
//!
//! Whole-request errors have a response builder for every API broker-lite serves (Produce,
//! Fetch, ListOffsets, Metadata, ApiVersions, CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, IncrementalAlterConfigs, AlterConfigs, DescribeLogDirs, DescribeProducers,
//! DescribeAcls, CreateAcls, DeleteAcls, DescribeCluster, FindCoordinator,
//! InitProducerId, and the group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete, and the
//! transaction APIs: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
//! DescribeTransactions, ListTransactions), shaped like Kafka's `AbstractRequest.getErrorResponse`: every topic,
//! partition, resource or key of the request carries the code. An API added later without a
//! builder falls back to closing the connection without processing the request. An injected
//! error on an `acks=0` Produce also closes the connection (it has no response, and closing is
//! how Kafka reports a failed `acks=0` produce).
//!
//! When nothing is injected the cost per request is one atomic load.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kafka_wire::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_wire::messages::create_acls_response::AclCreationResult;
use kafka_wire::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_wire::messages::create_topics_response::CreatableTopicResult;
use kafka_wire::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_wire::messages::delete_groups_response::DeletableGroupResult;
use kafka_wire::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_wire::messages::delete_topics_response::DeletableTopicResult;
use kafka_wire::messages::describe_configs_response::DescribeConfigsResult;
use kafka_wire::messages::describe_groups_response::DescribedGroup;
use kafka_wire::messages::describe_producers_response::{
    PartitionResponse as ProducersPartitionResponse, TopicResponse as ProducersTopicResponse,
};
use kafka_wire::messages::describe_transactions_response::TransactionState;
use kafka_wire::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_wire::messages::find_coordinator_response::Coordinator;
use kafka_wire::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_wire::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_wire::messages::metadata_response::MetadataResponseTopic;
use kafka_wire::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_wire::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_wire::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_wire::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_wire::messages::*;
use kafka_wire::{ApiKey, ErrorCode, RequestBody, ResponseBody, Uuid};
use tracing::{debug, warn};

/// Injects faults into a running broker (see the [module documentation](self)). Cloning is
/// cheap; every clone controls the same broker.
#[derive(Clone, Debug, Default)]
pub struct FaultInjector {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Whether anything is injected: the only thing a request checks when nothing is.
    armed: AtomicBool,
    faults: Mutex<Faults>,
    /// The transaction coordinator writes no transaction markers while set.
    hold_txn_markers: AtomicBool,
}

/// One queued partition fault.
#[derive(Debug)]
struct PartitionFault {
    topic: String,
    partition: i32,
    code: ErrorCode,
}

#[derive(Debug, Default)]
struct Faults {
    errors: HashMap<ApiKey, VecDeque<ErrorCode>>,
    partition_errors: HashMap<ApiKey, VecDeque<PartitionFault>>,
    delays: HashMap<ApiKey, Duration>,
    drops: HashMap<ApiKey, usize>,
}

impl Faults {
    fn is_empty(&self) -> bool {
        self.errors.is_empty()
            && self.partition_errors.is_empty()
            && self.delays.is_empty()
            && self.drops.is_empty()
    }
}

/// The APIs whose requests [`FaultInjector::push_partition_error`] applies to.
const PARTITION_APIS: [ApiKey; 3] = [ApiKey::Produce, ApiKey::Fetch, ApiKey::ListOffsets];

impl FaultInjector {
    /// A new injector with nothing injected (a broker makes its own; see
    /// [`Broker::faults`](crate::Broker::faults)).
    pub fn new() -> FaultInjector {
        FaultInjector::default()
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        self.inner.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the faults, then re-arms (or disarms) the fast-path flag.
    fn update<T>(&self, f: impl FnOnce(&mut Faults) -> T) -> T {
        let mut faults = self.lock();
        let out = f(&mut faults);
        self.inner
            .armed
            .store(!faults.is_empty(), Ordering::Release);
        out
    }

    /// Queues `code` for the next request of `api`: it is answered with that error (every
    /// topic, partition or key of it carries the code) without being processed; a Produce
    /// appends nothing. Errors queued for one API are used in FIFO order.
    pub fn push_error(&self, api: ApiKey, code: ErrorCode) {
        debug!(
            api = api.name(),
            error = code.name(),
            "fault injected: error"
        );
        self.update(|f| f.errors.entry(api).or_default().push_back(code));
    }

    /// Queues `code` for partition `partition` of `topic` in the next request of `api` naming
    /// it: only that partition gets the error (a Produce does not append its batch; the other
    /// partitions of the request are handled normally). Applies to Produce, Fetch and
    /// ListOffsets; for any other API the fault is ignored (with a warning).
    pub fn push_partition_error(&self, api: ApiKey, topic: &str, partition: i32, code: ErrorCode) {
        if !PARTITION_APIS.contains(&api) {
            warn!(
                api = api.name(),
                "partition faults apply to Produce, Fetch and ListOffsets only; ignored"
            );
            return;
        }
        debug!(
            api = api.name(),
            topic,
            partition,
            error = code.name(),
            "fault injected: partition error"
        );
        self.update(|f| {
            f.partition_errors
                .entry(api)
                .or_default()
                .push_back(PartitionFault {
                    topic: topic.to_string(),
                    partition,
                    code,
                })
        });
    }

    /// Holds back every response of `api` for `delay` (until [`clear_delay`](Self::clear_delay)
    /// or [`clear`](Self::clear)). The request is handled first; later requests of the same
    /// connection wait for the delayed response, as responses stay in order.
    pub fn set_delay(&self, api: ApiKey, delay: Duration) {
        self.update(|f| f.delays.insert(api, delay));
    }

    /// Stops delaying responses of `api`.
    pub fn clear_delay(&self, api: ApiKey) {
        self.update(|f| f.delays.remove(&api));
    }

    /// The next `count` requests of `api` are fully handled (records appended, producer ids
    /// allocated, ...) and then their connection is closed without writing the response: the
    /// client sees a disconnect and typically retries. Replaces any previous count for `api`;
    /// 0 cancels.
    pub fn drop_connection_after(&self, api: ApiKey, count: usize) {
        self.update(|f| {
            if count == 0 {
                f.drops.remove(&api);
            } else {
                f.drops.insert(api, count);
            }
        });
    }

    /// Holds (`true`) or releases (`false`) transaction markers: while held, EndTxn (and the
    /// coordinator's timeout aborts and fences) persist PrepareCommit/PrepareAbort and answer,
    /// but write no marker, so a test can stop the broker mid-commit and restart it on the
    /// same data directory (the restart completes the transaction). Once released, the
    /// coordinator's timer writes the pending markers. Not affected by [`clear`](Self::clear).
    pub fn hold_txn_markers(&self, hold: bool) {
        debug!(hold, "fault injected: hold transaction markers");
        self.inner.hold_txn_markers.store(hold, Ordering::Release);
    }

    /// Whether transaction markers are held ([`hold_txn_markers`](Self::hold_txn_markers)).
    pub fn txn_markers_held(&self) -> bool {
        self.inner.hold_txn_markers.load(Ordering::Acquire)
    }

    /// Removes every injected fault.
    pub fn clear(&self) {
        self.update(|f| *f = Faults::default());
    }

    /// Whether any fault is injected.
    pub fn is_armed(&self) -> bool {
        self.inner.armed.load(Ordering::Acquire)
    }

    /// Takes the faults that apply to one request of `api`. `partitions` lists the request's
    /// `(topic, partition)` pairs; it is called only if partition faults are queued for `api`.
    pub(crate) fn take(
        &self,
        api: ApiKey,
        partitions: impl FnOnce() -> Vec<(String, i32)>,
    ) -> RequestFaults {
        if !self.is_armed() {
            return RequestFaults::default();
        }
        self.update(|f| {
            let mut out = RequestFaults::default();
            if let Some(queue) = f.errors.get_mut(&api) {
                out.error = queue.pop_front();
                if queue.is_empty() {
                    f.errors.remove(&api);
                }
            }
            if out.error.is_none() {
                if let Some(queue) = f.partition_errors.get_mut(&api) {
                    let in_request: HashSet<(String, i32)> = partitions().into_iter().collect();
                    queue.retain(|pf| {
                        let key = (pf.topic.clone(), pf.partition);
                        if in_request.contains(&key)
                            && out.partitions.get(&pf.topic, pf.partition).is_none()
                        {
                            out.partitions.0.push((key.0, key.1, pf.code));
                            false
                        } else {
                            true
                        }
                    });
                    if queue.is_empty() {
                        f.partition_errors.remove(&api);
                    }
                }
            }
            out.delay = f.delays.get(&api).copied();
            if let Some(count) = f.drops.get_mut(&api) {
                *count = count.saturating_sub(1);
                out.drop_connection = true;
                if *count == 0 {
                    f.drops.remove(&api);
                }
            }
            out
        })
    }
}

/// The faults one request takes.
#[derive(Debug, Default)]
pub(crate) struct RequestFaults {
    /// Answer the whole request with this error, without processing it.
    pub error: Option<ErrorCode>,
    /// Answer these partitions with an error, without processing them.
    pub partitions: PartitionFaults,
    /// Hold the response back this long.
    pub delay: Option<Duration>,
    /// Close the connection instead of writing the response.
    pub drop_connection: bool,
}

/// Injected errors for some partitions of one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct PartitionFaults(Vec<(String, i32, ErrorCode)>);

impl PartitionFaults {
    /// The error injected for `partition` of `topic`, if any.
    pub fn get(&self, topic: &str, partition: i32) -> Option<ErrorCode> {
        self.0
            .iter()
            .find(|(t, p, _)| t == topic && *p == partition)
            .map(|(_, _, code)| *code)
    }

    /// Whether no partition has an injected error.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The response to `body` (a request at `version`) when the whole request fails with `code`,
/// shaped like Kafka's `getErrorResponse` for that API. `None` for an API without a builder.
pub(crate) fn error_response(
    body: &RequestBody,
    version: i16,
    code: ErrorCode,
) -> Option<ResponseBody> {
    let error_code = code.code();
    let response: ResponseBody = match body {
        RequestBody::Produce(r) => ProduceResponse {
            responses: r
                .topic_data
                .iter()
                .map(|t| TopicProduceResponse {
                    name: t.name.clone(),
                    partition_responses: t
                        .partition_data
                        .iter()
                        .map(|p| produce_partition_error(p.index, code))
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::Fetch(r) => FetchResponse {
            // The top-level code exists from v7; v13+ carries only it (as Kafka).
            error_code: if version >= 7 { error_code } else { 0 },
            session_id: 0,
            responses: if version >= 13 {
                Vec::new()
            } else {
                r.topics
                    .iter()
                    .map(|t| FetchableTopicResponse {
                        topic: t.topic.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| fetch_partition_error(p.partition, code))
                            .collect(),
                        ..Default::default()
                    })
                    .collect()
            },
            ..Default::default()
        }
        .into(),
        RequestBody::ListOffsets(r) => ListOffsetsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| list_offsets_partition_error(p.partition_index, code))
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::Metadata(r) => MetadataResponse {
            topics: r
                .topics
                .iter()
                .flatten()
                .map(|t| MetadataResponseTopic {
                    error_code,
                    name: t.name.clone(),
                    topic_id: if version >= 10 {
                        t.topic_id
                    } else {
                        Uuid::ZERO
                    },
                    is_internal: false,
                    partitions: Vec::new(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::ApiVersions(_) => ApiVersionsResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::CreateTopics(r) => CreateTopicsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| CreatableTopicResult {
                    name: t.name.clone(),
                    error_code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::DeleteTopics(r) => DeleteTopicsResponse {
            responses: if version >= 6 {
                r.topics
                    .iter()
                    .map(|t| DeletableTopicResult {
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        error_code,
                        ..Default::default()
                    })
                    .collect()
            } else {
                r.topic_names
                    .iter()
                    .map(|n| DeletableTopicResult {
                        name: Some(n.clone()),
                        error_code,
                        ..Default::default()
                    })
                    .collect()
            },
            ..Default::default()
        }
        .into(),
        // As Kafka's `DeleteRecordsRequest.getErrorResponse`: every partition, low watermark -1.
        RequestBody::DeleteRecords(r) => DeleteRecordsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| DeleteRecordsTopicResult {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark: -1,
                            error_code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::CreatePartitions(r) => CreatePartitionsResponse {
            results: r
                .topics
                .iter()
                .map(|t| CreatePartitionsTopicResult {
                    name: t.name.clone(),
                    error_code,
                    error_message: None,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::DescribeConfigs(r) => DescribeConfigsResponse {
            results: r
                .resources
                .iter()
                .map(|res| DescribeConfigsResult {
                    error_code,
                    error_message: None,
                    resource_type: res.resource_type,
                    resource_name: res.resource_name.clone(),
                    configs: Vec::new(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::IncrementalAlterConfigs(r) => IncrementalAlterConfigsResponse {
            responses: r
                .resources
                .iter()
                .map(|res| AlterConfigsResourceResponse {
                    error_code,
                    error_message: None,
                    resource_type: res.resource_type,
                    resource_name: res.resource_name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::AlterConfigs(r) => AlterConfigsResponse {
            responses: r
                .resources
                .iter()
                .map(|res| {
                    kafka_wire::messages::alter_configs_response::AlterConfigsResourceResponse {
                        error_code,
                        error_message: None,
                        resource_type: res.resource_type,
                        resource_name: res.resource_name.clone(),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        // As Kafka's `DescribeLogDirsRequest.getErrorResponse`: the top-level code (v3+), no
        // log directories.
        RequestBody::DescribeLogDirs(_) => DescribeLogDirsResponse {
            error_code,
            results: Vec::new(),
            ..Default::default()
        }
        .into(),
        // As Kafka's `DescribeProducersRequest.getErrorResponse`: every partition.
        RequestBody::DescribeProducers(r) => DescribeProducersResponse {
            topics: r
                .topics
                .iter()
                .map(|t| ProducersTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&partition_index| ProducersPartitionResponse {
                            partition_index,
                            error_code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        // As Kafka's `getErrorResponse` of the ACL requests: the top-level code for
        // DescribeAcls, one result per creation or filter for CreateAcls and DeleteAcls.
        RequestBody::DescribeAcls(_) => DescribeAclsResponse {
            error_code,
            error_message: None,
            resources: Vec::new(),
            ..Default::default()
        }
        .into(),
        RequestBody::CreateAcls(r) => CreateAclsResponse {
            results: r
                .creations
                .iter()
                .map(|_| AclCreationResult {
                    error_code,
                    error_message: None,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::DeleteAcls(r) => DeleteAclsResponse {
            filter_results: r
                .filters
                .iter()
                .map(|_| DeleteAclsFilterResult {
                    error_code,
                    error_message: None,
                    matching_acls: Vec::new(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::DescribeCluster(_) => DescribeClusterResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::FindCoordinator(r) => {
            let failed = |key: &str| Coordinator {
                key: key.to_string(),
                node_id: -1,
                host: String::new(),
                port: -1,
                error_code,
                error_message: None,
                ..Default::default()
            };
            if version >= 4 {
                FindCoordinatorResponse {
                    coordinators: r.coordinator_keys.iter().map(|k| failed(k)).collect(),
                    ..Default::default()
                }
                .into()
            } else {
                FindCoordinatorResponse {
                    error_code,
                    error_message: None,
                    node_id: -1,
                    host: String::new(),
                    port: -1,
                    ..Default::default()
                }
                .into()
            }
        }
        RequestBody::InitProducerId(_) => InitProducerIdResponse {
            error_code,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }
        .into(),
        RequestBody::JoinGroup(_) => JoinGroupResponse {
            error_code,
            generation_id: -1,
            protocol_name: if version >= 7 {
                None
            } else {
                Some(String::new())
            },
            ..Default::default()
        }
        .into(),
        RequestBody::SyncGroup(_) => SyncGroupResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::Heartbeat(_) => HeartbeatResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::LeaveGroup(_) => LeaveGroupResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::OffsetCommit(r) => OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| OffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::OffsetFetch(r) => {
            if version >= 8 {
                OffsetFetchResponse {
                    groups: r
                        .groups
                        .iter()
                        .map(|g| OffsetFetchResponseGroup {
                            group_id: g.group_id.clone(),
                            error_code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .into()
            } else if version >= 2 {
                OffsetFetchResponse {
                    error_code,
                    ..Default::default()
                }
                .into()
            } else {
                // No top-level code before v2: every requested partition carries it.
                OffsetFetchResponse {
                    topics: r
                        .topics
                        .iter()
                        .flatten()
                        .map(|t| OffsetFetchResponseTopic {
                            name: t.name.clone(),
                            partitions: t
                                .partition_indexes
                                .iter()
                                .map(|p| OffsetFetchResponsePartition {
                                    partition_index: *p,
                                    committed_offset: -1,
                                    committed_leader_epoch: -1,
                                    metadata: Some(String::new()),
                                    error_code,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .into()
            }
        }
        RequestBody::ListGroups(_) => ListGroupsResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::DescribeGroups(r) => DescribeGroupsResponse {
            groups: r
                .groups
                .iter()
                .map(|g| DescribedGroup {
                    group_id: g.clone(),
                    error_code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::DeleteGroups(r) => DeleteGroupsResponse {
            results: r
                .groups_names
                .iter()
                .map(|g| DeletableGroupResult {
                    group_id: g.clone(),
                    error_code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::OffsetDelete(_) => OffsetDeleteResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::AddPartitionsToTxn(r) => AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: r
                .v3_and_below_topics
                .iter()
                .map(|t| AddPartitionsToTxnTopicResult {
                    name: t.name.clone(),
                    results_by_partition: t
                        .partitions
                        .iter()
                        .map(|p| AddPartitionsToTxnPartitionResult {
                            partition_index: *p,
                            partition_error_code: error_code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::AddOffsetsToTxn(_) => AddOffsetsToTxnResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::EndTxn(_) => EndTxnResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        RequestBody::TxnOffsetCommit(r) => TxnOffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| TxnOffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| TxnOffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::DescribeTransactions(r) => DescribeTransactionsResponse {
            transaction_states: r
                .transactional_ids
                .iter()
                .map(|id| TransactionState {
                    transactional_id: id.clone(),
                    error_code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .into(),
        RequestBody::ListTransactions(_) => ListTransactionsResponse {
            error_code,
            ..Default::default()
        }
        .into(),
        _ => return None,
    };
    Some(response)
}

/// A Produce partition answered with `code`, nothing appended.
pub(crate) fn produce_partition_error(index: i32, code: ErrorCode) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code.code(),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        ..Default::default()
    }
}

/// A Fetch partition answered with `code` and no records (Kafka's
/// `FetchResponse.partitionResponse(partition, error)`).
pub(crate) fn fetch_partition_error(index: i32, code: ErrorCode) -> PartitionData {
    PartitionData {
        partition_index: index,
        error_code: code.code(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Some(Bytes::new()),
        ..Default::default()
    }
}

/// A ListOffsets partition answered with `code`.
pub(crate) fn list_offsets_partition_error(
    index: i32,
    code: ErrorCode,
) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        partition_index: index,
        error_code: code.code(),
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::supported_versions;
    use bytes::BytesMut;
    use kafka_wire::frame::encode_response;
    use kafka_wire::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_wire::messages::create_topics_request::CreatableTopic;
    use kafka_wire::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_wire::messages::delete_topics_request::DeleteTopicState;
    use kafka_wire::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_wire::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_wire::messages::incremental_alter_configs_request::AlterConfigsResource;
    use kafka_wire::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_wire::messages::metadata_request::MetadataRequestTopic;
    use kafka_wire::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_wire::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic,
    };
    use kafka_wire::messages::produce_request::{PartitionProduceData, TopicProduceData};

    fn parts(list: &[(&str, i32)]) -> impl FnOnce() -> Vec<(String, i32)> {
        let v: Vec<(String, i32)> = list.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        move || v
    }

    #[test]
    fn injector_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<FaultInjector>();
    }

    #[test]
    fn nothing_injected_takes_nothing() {
        let f = FaultInjector::new();
        assert!(!f.is_armed());
        let t = f.take(ApiKey::Produce, || {
            panic!("partitions are not listed when disarmed")
        });
        assert!(t.error.is_none() && t.partitions.is_empty() && t.delay.is_none());
        assert!(!t.drop_connection);
    }

    #[test]
    fn errors_are_fifo_per_api() {
        let f = FaultInjector::new();
        f.push_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower);
        f.push_error(ApiKey::Produce, ErrorCode::RequestTimedOut);
        f.push_error(ApiKey::Fetch, ErrorCode::UnknownServerError);
        assert!(f.is_armed());
        assert_eq!(
            f.take(ApiKey::Produce, parts(&[])).error,
            Some(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(f.take(ApiKey::Metadata, parts(&[])).error, None);
        assert_eq!(
            f.take(ApiKey::Produce, parts(&[])).error,
            Some(ErrorCode::RequestTimedOut)
        );
        assert_eq!(f.take(ApiKey::Produce, parts(&[])).error, None);
        assert!(f.is_armed());
        assert_eq!(
            f.take(ApiKey::Fetch, parts(&[])).error,
            Some(ErrorCode::UnknownServerError)
        );
        assert!(!f.is_armed(), "disarmed once everything is consumed");
    }

    #[test]
    fn partition_errors_wait_for_a_request_naming_the_partition() {
        let f = FaultInjector::new();
        f.push_partition_error(ApiKey::Produce, "t", 1, ErrorCode::NotLeaderOrFollower);
        f.push_partition_error(ApiKey::Produce, "t", 1, ErrorCode::RequestTimedOut);
        f.push_partition_error(ApiKey::Produce, "u", 0, ErrorCode::KafkaStorageError);
        // Ignored for APIs without partition handling.
        f.push_partition_error(ApiKey::Metadata, "t", 1, ErrorCode::KafkaStorageError);
        let t = f.take(ApiKey::Produce, parts(&[("t", 0)]));
        assert!(t.partitions.is_empty());
        let t = f.take(ApiKey::Produce, parts(&[("t", 0), ("t", 1), ("u", 0)]));
        assert_eq!(
            t.partitions.get("t", 1),
            Some(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(t.partitions.get("u", 0), Some(ErrorCode::KafkaStorageError));
        assert_eq!(t.partitions.get("t", 0), None);
        let t = f.take(ApiKey::Produce, parts(&[("t", 1)]));
        assert_eq!(t.partitions.get("t", 1), Some(ErrorCode::RequestTimedOut));
        assert!(!f.is_armed());
        // A whole-request error takes precedence and leaves partition faults queued.
        f.push_partition_error(ApiKey::Fetch, "t", 0, ErrorCode::NotLeaderOrFollower);
        f.push_error(ApiKey::Fetch, ErrorCode::UnknownServerError);
        let t = f.take(ApiKey::Fetch, parts(&[("t", 0)]));
        assert!(t.error.is_some() && t.partitions.is_empty());
        assert!(!f
            .take(ApiKey::Fetch, parts(&[("t", 0)]))
            .partitions
            .is_empty());
    }

    #[test]
    fn delays_drops_and_clear() {
        let f = FaultInjector::new();
        f.set_delay(ApiKey::Metadata, Duration::from_millis(5));
        f.drop_connection_after(ApiKey::Produce, 2);
        let g = f.clone();
        assert_eq!(
            g.take(ApiKey::Metadata, parts(&[])).delay,
            Some(Duration::from_millis(5))
        );
        assert_eq!(
            g.take(ApiKey::Metadata, parts(&[])).delay,
            Some(Duration::from_millis(5))
        );
        assert!(f.take(ApiKey::Produce, parts(&[])).drop_connection);
        assert!(f.take(ApiKey::Produce, parts(&[])).drop_connection);
        assert!(!f.take(ApiKey::Produce, parts(&[])).drop_connection);
        f.clear_delay(ApiKey::Metadata);
        assert!(!f.is_armed());
        f.push_error(ApiKey::Produce, ErrorCode::RequestTimedOut);
        f.drop_connection_after(ApiKey::Fetch, 1);
        f.drop_connection_after(ApiKey::Fetch, 0);
        f.clear();
        assert!(!f.is_armed());
        assert!(f.take(ApiKey::Produce, parts(&[])).error.is_none());
    }

    /// A request of every served API, naming a topic, partition, resource or key.
    fn sample_requests() -> Vec<RequestBody> {
        vec![
            ProduceRequest {
                acks: -1,
                topic_data: vec![TopicProduceData {
                    name: "t".into(),
                    partition_data: vec![PartitionProduceData {
                        index: 0,
                        records: Some(Bytes::new()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            FetchRequest {
                topics: vec![FetchTopic {
                    topic: "t".into(),
                    partitions: vec![FetchPartition {
                        partition: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            ListOffsetsRequest {
                topics: vec![ListOffsetsTopic {
                    name: "t".into(),
                    partitions: vec![ListOffsetsPartition::default()],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: Some("t".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }
            .into(),
            ApiVersionsRequest::default().into(),
            CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: "t".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            DeleteTopicsRequest {
                topics: vec![DeleteTopicState {
                    name: Some("t".into()),
                    ..Default::default()
                }],
                topic_names: vec!["t".into()],
                ..Default::default()
            }
            .into(),
            DeleteRecordsRequest {
                topics: vec![DeleteRecordsTopic {
                    name: "t".into(),
                    partitions: vec![DeleteRecordsPartition {
                        partition_index: 0,
                        offset: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: "t".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            DescribeConfigsRequest {
                resources: vec![DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: "t".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            IncrementalAlterConfigsRequest {
                resources: vec![AlterConfigsResource {
                    resource_type: 2,
                    resource_name: "t".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            AlterConfigsRequest {
                resources: vec![
                    kafka_wire::messages::alter_configs_request::AlterConfigsResource {
                        resource_type: 2,
                        resource_name: "t".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }
            .into(),
            DescribeLogDirsRequest {
                topics: Some(vec![
                    kafka_wire::messages::describe_log_dirs_request::DescribableLogDirTopic {
                        topic: "t".into(),
                        partitions: vec![0],
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }
            .into(),
            DescribeProducersRequest {
                topics: vec![
                    kafka_wire::messages::describe_producers_request::TopicRequest {
                        name: "t".into(),
                        partition_indexes: vec![0, 1],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }
            .into(),
            DescribeAclsRequest::default().into(),
            CreateAclsRequest {
                creations: vec![Default::default()],
                ..Default::default()
            }
            .into(),
            DeleteAclsRequest {
                filters: vec![Default::default()],
                ..Default::default()
            }
            .into(),
            DescribeClusterRequest::default().into(),
            FindCoordinatorRequest {
                key: "g".into(),
                coordinator_keys: vec!["g".into()],
                ..Default::default()
            }
            .into(),
            InitProducerIdRequest::default().into(),
            JoinGroupRequest {
                group_id: "g".into(),
                ..Default::default()
            }
            .into(),
            SyncGroupRequest::default().into(),
            HeartbeatRequest::default().into(),
            LeaveGroupRequest::default().into(),
            OffsetCommitRequest {
                topics: vec![OffsetCommitRequestTopic {
                    name: "t".into(),
                    partitions: vec![OffsetCommitRequestPartition::default()],
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            OffsetFetchRequest {
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: "t".into(),
                    partition_indexes: vec![0],
                    ..Default::default()
                }]),
                groups: vec![OffsetFetchRequestGroup {
                    group_id: "g".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .into(),
            ListGroupsRequest::default().into(),
            DescribeGroupsRequest {
                groups: vec!["g".into()],
                ..Default::default()
            }
            .into(),
            DeleteGroupsRequest {
                groups_names: vec!["g".into()],
                ..Default::default()
            }
            .into(),
            OffsetDeleteRequest::default().into(),
            AddPartitionsToTxnRequest {
                v3_and_below_topics: vec![
                    kafka_wire::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic {
                        name: "t".into(),
                        partitions: vec![0],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }
            .into(),
            AddOffsetsToTxnRequest::default().into(),
            EndTxnRequest::default().into(),
            TxnOffsetCommitRequest {
                topics: vec![
                    kafka_wire::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic {
                        name: "t".into(),
                        partitions: vec![Default::default()],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }
            .into(),
            DescribeTransactionsRequest {
                transactional_ids: vec!["tx".into()],
                ..Default::default()
            }
            .into(),
            ListTransactionsRequest::default().into(),
        ]
    }

    /// The error responses of DeleteRecords, AlterConfigs, DescribeLogDirs, DescribeProducers
    /// and the ACL APIs answer every entry of the request as their `getErrorResponse` does.
    #[test]
    fn admin_error_responses_answer_every_entry() {
        let code = ErrorCode::NotController;
        let c = code.code();
        let answer = |api: ApiKey| {
            let request = sample_requests()
                .into_iter()
                .find(|r| r.api_key() == api)
                .unwrap();
            error_response(&request, 0, code).unwrap()
        };
        let ResponseBody::DeleteRecords(r) = answer(ApiKey::DeleteRecords) else {
            panic!("not DeleteRecords");
        };
        let got: Vec<(&str, i32, i64, i16)> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.as_str(),
                        p.partition_index,
                        p.low_watermark,
                        p.error_code,
                    )
                })
            })
            .collect();
        assert_eq!(got, vec![("t", 0, -1, c)]);

        let ResponseBody::AlterConfigs(r) = answer(ApiKey::AlterConfigs) else {
            panic!("not AlterConfigs");
        };
        let got: Vec<(i8, &str, i16, Option<&str>)> = r
            .responses
            .iter()
            .map(|x| {
                let message = x.error_message.as_deref();
                (
                    x.resource_type,
                    x.resource_name.as_str(),
                    x.error_code,
                    message,
                )
            })
            .collect();
        assert_eq!(got, vec![(2, "t", c, None)]);

        let ResponseBody::DescribeLogDirs(r) = answer(ApiKey::DescribeLogDirs) else {
            panic!("not DescribeLogDirs");
        };
        assert_eq!((r.error_code, r.results.len()), (c, 0));

        let ResponseBody::DescribeProducers(r) = answer(ApiKey::DescribeProducers) else {
            panic!("not DescribeProducers");
        };
        let got: Vec<(&str, i32, i16, usize)> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let producers = p.active_producers.len();
                    (t.name.as_str(), p.partition_index, p.error_code, producers)
                })
            })
            .collect();
        assert_eq!(got, vec![("t", 0, c, 0), ("t", 1, c, 0)]);

        let ResponseBody::DescribeAcls(r) = answer(ApiKey::DescribeAcls) else {
            panic!("not DescribeAcls");
        };
        assert_eq!((r.error_code, r.resources.len()), (c, 0));
        let ResponseBody::CreateAcls(r) = answer(ApiKey::CreateAcls) else {
            panic!("not CreateAcls");
        };
        let got: Vec<i16> = r.results.iter().map(|x| x.error_code).collect();
        assert_eq!(got, vec![c]);
        let ResponseBody::DeleteAcls(r) = answer(ApiKey::DeleteAcls) else {
            panic!("not DeleteAcls");
        };
        let got: Vec<(i16, usize)> = r
            .filter_results
            .iter()
            .map(|x| (x.error_code, x.matching_acls.len()))
            .collect();
        assert_eq!(got, vec![(c, 0)]);
    }

    #[test]
    fn every_served_api_has_an_encodable_error_response_at_every_version() {
        let requests = sample_requests();
        for api in ApiKey::ALL.iter().copied() {
            let Some(range) = supported_versions(api) else {
                continue;
            };
            let request = requests
                .iter()
                .find(|r| r.api_key() == api)
                .unwrap_or_else(|| panic!("no sample request for {}", api.name()));
            for version in range.min..=range.max {
                let response = error_response(request, version, ErrorCode::NotLeaderOrFollower)
                    .unwrap_or_else(|| panic!("no error response for {}", api.name()));
                assert_eq!(response.api_key(), api);
                let mut out = BytesMut::new();
                encode_response(&mut out, 1, version, &response).unwrap_or_else(|e| {
                    panic!(
                        "{} v{version} error response does not encode: {e}",
                        api.name()
                    )
                });
            }
        }
    }
}
