//! Consumer group calls (KIP-222): ListGroups (every broker), DescribeGroups and
//! DeleteGroups (to each group's coordinator, found with FindCoordinator), and the group's
//! offsets: OffsetFetch, OffsetCommit as Java's `AdminClient` sends it (generation -1, no
//! member: only accepted while the group is empty), and OffsetDelete (KIP-496).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use kafka_wire::consumer_protocol::decode_assignment;
use kafka_wire::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_wire::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_wire::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_wire::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_wire::ErrorCode;

use super::{by_topic, check, tp, AdminClient, Node};
use crate::consumer::OffsetAndMetadata;
use crate::error::Error;
use crate::producer::TopicPartition;

/// An enum of the names Kafka sends in a string field, with `parse` (case-insensitive, the
/// first variant for a name it does not know) and `name` (as Kafka spells it).
macro_rules! kafka_names {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident {
            $(#[doc = $udoc:literal])* $unknown:ident = $uname:literal,
            $($(#[doc = $doc:literal])* $variant:ident = $name:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $enum {
            $(#[doc = $udoc])* $unknown,
            $($(#[doc = $doc])* $variant,)+
        }

        impl $enum {
            /// The value named `name` as the broker spells it (case-insensitive).
            pub fn parse(name: &str) -> Self {
                [$($enum::$variant),+]
                    .into_iter()
                    .find(|v| v.name().eq_ignore_ascii_case(name))
                    .unwrap_or($enum::$unknown)
            }

            /// The name as Kafka spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $enum::$unknown => $uname,
                    $($enum::$variant => $name,)+
                }
            }
        }
    };
}

kafka_names! {
    /// A group's state (Java's `ConsumerGroupState` / `GroupState`).
    pub enum GroupState {
        /// A state this client does not know.
        Unknown = "Unknown",
        /// Members are (re)joining.
        PreparingRebalance = "PreparingRebalance",
        /// Waiting for the leader's assignment.
        CompletingRebalance = "CompletingRebalance",
        /// Members have their assignment.
        Stable = "Stable",
        /// The group is gone (or never existed).
        Dead = "Dead",
        /// No members; may hold offsets.
        Empty = "Empty",
        /// KIP-848: assigning.
        Assigning = "Assigning",
        /// KIP-848: reconciling.
        Reconciling = "Reconciling",
    }
}

kafka_names! {
    /// A group's type (Java's `GroupType`, KIP-848), as ListGroups v5+ reports it.
    pub enum GroupType {
        /// A type this client does not know.
        Unknown = "unknown",
        /// A KIP-848 consumer group (ConsumerGroupHeartbeat).
        Consumer = "consumer",
        /// A classic group (JoinGroup / SyncGroup).
        Classic = "classic",
        /// A KIP-932 share group.
        Share = "share",
        /// A KIP-1071 streams group.
        Streams = "streams",
    }
}

/// Options of [`AdminClient::list_consumer_groups`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListConsumerGroupsOptions {
    /// Only groups in these states (empty: all). Sent as ListGroups v4's states filter; a
    /// broker before v4 is asked for every group and the states are checked on its answer.
    pub states: Vec<GroupState>,
    /// Only groups of these types (empty: all). Sent as ListGroups v5's types filter; a
    /// broker before v5 cannot filter on types, and its answer is
    /// [`Error::UnsupportedVersion`] (in [`ConsumerGroupListings::errors`]), as Java's.
    pub types: Vec<GroupType>,
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A group in [`AdminClient::list_consumer_groups`] (Java's `ConsumerGroupListing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupListing {
    /// The group id.
    pub group_id: String,
    /// Whether the group only holds offsets (empty protocol type: never had members).
    pub is_simple_consumer_group: bool,
    /// The state (ListGroups v4+).
    pub state: Option<GroupState>,
    /// The group type (ListGroups v5+).
    pub group_type: Option<GroupType>,
}

/// What [`AdminClient::list_consumer_groups`] found: the groups of every broker that
/// answered, and the brokers that did not (Java's `valid()` and `errors()`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupListings {
    /// The groups, by id.
    pub groups: Vec<ConsumerGroupListing>,
    /// The brokers whose ListGroups failed, with their error.
    pub errors: BTreeMap<i32, Error>,
}

/// Options of [`AdminClient::describe_consumer_groups`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConsumerGroupsOptions {
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A member of a described group (Java's `MemberDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// The static member id (KIP-345), if any.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host, as the coordinator saw it.
    pub host: String,
    /// The member's partitions, decoded from its assignment (sorted; empty unless the group
    /// is Stable).
    pub assignment: Vec<TopicPartition>,
}

/// A described consumer group (Java's `ConsumerGroupDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// The group id.
    pub group_id: String,
    /// Whether the group only holds offsets (empty protocol type).
    pub is_simple_consumer_group: bool,
    /// The members.
    pub members: Vec<MemberDescription>,
    /// The selected assignor (`range`, `cooperative-sticky`, ...; empty unless Stable).
    pub partition_assignor: String,
    /// The state (Dead for a group that does not exist).
    pub state: GroupState,
    /// The group's coordinator.
    pub coordinator: Node,
}

/// Options of [`AdminClient::delete_consumer_groups`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteConsumerGroupsOptions {
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::list_consumer_group_offsets`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListConsumerGroupOffsetsOptions {
    /// Only these partitions (`None`: every partition with a committed offset).
    pub partitions: Option<Vec<TopicPartition>>,
    /// Wait for pending transactional offsets (OffsetFetch v7+).
    pub require_stable: bool,
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::alter_consumer_group_offsets`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterConsumerGroupOffsetsOptions {
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::delete_consumer_group_offsets`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteConsumerGroupOffsetsOptions {
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Whether `code` means the coordinator moved or is not ready (the group is retried).
fn coordinator_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
    )
}

/// A ListGroups request at `version` (pure), as Java's `listConsumerGroups` sends it: the
/// states filter (v4+; before, every group is asked for and [`list_groups_results`] checks
/// the states) and the types filter (v5+; before, [`Error::UnsupportedVersion`], as Java's
/// `ListGroupsRequest.Builder`).
pub(crate) fn list_groups_request(
    states: &[GroupState],
    types: &[GroupType],
    version: i16,
) -> Result<ListGroupsRequest, Error> {
    if !types.is_empty() && version < 5 {
        return Err(Error::UnsupportedVersion(format!(
            "the broker only supports ListGroups v{version}, but v5 or newer is needed to \
             request groups by type"
        )));
    }
    let states_filter = if version >= 4 {
        states.iter().map(|s| s.name().to_owned()).collect()
    } else {
        Vec::new()
    };
    Ok(ListGroupsRequest {
        states_filter,
        types_filter: types.iter().map(|t| t.name().to_owned()).collect(),
        ..Default::default()
    })
}

/// The consumer groups of a ListGroups response (pure): protocol type `consumer` or empty,
/// in the wanted `states` and of the wanted `types` (checked here too: brokers before v4
/// do not filter on states).
pub(crate) fn list_groups_results(
    response: &ListGroupsResponse,
    states: &[GroupState],
    types: &[GroupType],
) -> Result<Vec<ConsumerGroupListing>, Error> {
    check(response.error_code, None)?;
    Ok(response
        .groups
        .iter()
        .filter(|g| g.protocol_type == "consumer" || g.protocol_type.is_empty())
        .map(|g| ConsumerGroupListing {
            group_id: g.group_id.clone(),
            is_simple_consumer_group: g.protocol_type.is_empty(),
            state: (!g.group_state.is_empty()).then(|| GroupState::parse(&g.group_state)),
            group_type: (!g.group_type.is_empty()).then(|| GroupType::parse(&g.group_type)),
        })
        .filter(|g| states.is_empty() || g.state.is_some_and(|s| states.contains(&s)))
        .filter(|g| types.is_empty() || g.group_type.is_some_and(|t| types.contains(&t)))
        .collect())
}

/// The per-group answers of a DescribeGroups response (pure): members with their decoded
/// assignments; a group of another protocol type is [`Error::InvalidArgument`], as Java's
/// "is not a consumer group".
pub(crate) fn describe_groups_results(
    response: &DescribeGroupsResponse,
    coordinator: &Node,
) -> Vec<(String, Result<ConsumerGroupDescription, Error>)> {
    response
        .groups
        .iter()
        .map(|g| {
            let result = check(g.error_code, None).and_then(|()| {
                if g.protocol_type != "consumer" && !g.protocol_type.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "group {} is not a consumer group ({})",
                        g.group_id, g.protocol_type
                    )));
                }
                let members = g
                    .members
                    .iter()
                    .map(|m| {
                        let (_, assignment) = decode_assignment(m.member_assignment.clone())
                            .map_err(|e| {
                                Error::Protocol(format!(
                                    "assignment of member {} of group {}: {e}",
                                    m.member_id, g.group_id
                                ))
                            })?;
                        let mut partitions: Vec<TopicPartition> = assignment
                            .assigned_partitions
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| tp(&t.topic, *p)))
                            .collect();
                        partitions.sort();
                        Ok(MemberDescription {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            host: m.client_host.clone(),
                            assignment: partitions,
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                Ok(ConsumerGroupDescription {
                    group_id: g.group_id.clone(),
                    is_simple_consumer_group: g.protocol_type.is_empty(),
                    members,
                    partition_assignor: g.protocol_data.clone(),
                    state: GroupState::parse(&g.group_state),
                    coordinator: coordinator.clone(),
                })
            });
            (g.group_id.clone(), result)
        })
        .collect()
}

/// The per-group answers of a DeleteGroups response (pure).
pub(crate) fn delete_groups_results(
    response: &DeleteGroupsResponse,
) -> Vec<(String, Result<(), Error>)> {
    response
        .results
        .iter()
        .map(|r| (r.group_id.clone(), check(r.error_code, None)))
        .collect()
}

/// An OffsetFetch request for `group` at `version` (pure): `partitions` or (v2+) all.
pub(crate) fn offset_fetch_request(
    group: &str,
    partitions: Option<&[TopicPartition]>,
    require_stable: bool,
    version: i16,
) -> OffsetFetchRequest {
    let grouped = partitions.map(by_topic);
    let mut r = OffsetFetchRequest {
        require_stable: require_stable && version >= 7,
        ..Default::default()
    };
    if version >= 8 {
        r.groups = vec![OffsetFetchRequestGroup {
            group_id: group.to_owned(),
            topics: grouped.map(|g| {
                g.into_iter()
                    .map(|(name, partition_indexes)| OffsetFetchRequestTopics {
                        name,
                        partition_indexes,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }];
    } else {
        r.group_id = group.to_owned();
        r.topics = grouped.map(|g| {
            g.into_iter()
                .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
                    name,
                    partition_indexes,
                    ..Default::default()
                })
                .collect()
        });
    }
    r
}

/// Committed offsets per partition.
pub type GroupOffsets = BTreeMap<TopicPartition, Result<Option<OffsetAndMetadata>, Error>>;

/// One partition of an OffsetFetch response: (topic, partition, offset, leader epoch,
/// metadata, error code).
type OffsetRow<'a> = (&'a str, i32, i64, i32, Option<&'a String>, i16);

/// The answer of an OffsetFetch response for `group` (pure): the group's error, or each
/// partition's offset (`None` when nothing is committed) or error.
pub(crate) fn offset_fetch_results(
    group: &str,
    response: &OffsetFetchResponse,
) -> Result<GroupOffsets, Error> {
    let mut rows: Vec<OffsetRow<'_>> = Vec::new();
    let group_error = match response.groups.iter().find(|g| g.group_id == group) {
        Some(g) => {
            for t in &g.topics {
                for p in &t.partitions {
                    rows.push((
                        &t.name,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_ref(),
                        p.error_code,
                    ));
                }
            }
            g.error_code
        }
        None if !response.groups.is_empty() => {
            return Err(Error::Protocol(format!(
                "OffsetFetch: the response does not mention group {group}"
            )))
        }
        None => {
            for t in &response.topics {
                for p in &t.partitions {
                    rows.push((
                        &t.name,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_ref(),
                        p.error_code,
                    ));
                }
            }
            response.error_code
        }
    };
    check(group_error, None)?;
    Ok(rows
        .into_iter()
        .map(|(topic, partition, offset, epoch, metadata, code)| {
            let result = check(code, None).map(|()| {
                (offset >= 0).then(|| OffsetAndMetadata {
                    offset,
                    leader_epoch: (epoch >= 0).then_some(epoch),
                    metadata: metadata.cloned().unwrap_or_default(),
                })
            });
            (tp(topic, partition), result)
        })
        .collect())
}

/// An OffsetCommit request as Java's `AdminClient` sends it (pure): generation -1, no
/// member id, no instance id; leader epochs from v6.
pub(crate) fn offset_commit_request(
    group: &str,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    version: i16,
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<String, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, o) in offsets {
        topics
            .entry(tp.topic.to_string())
            .or_default()
            .push(OffsetCommitRequestPartition {
                partition_index: tp.partition,
                committed_offset: o.offset,
                committed_leader_epoch: if version >= 6 {
                    o.leader_epoch.unwrap_or(-1)
                } else {
                    -1
                },
                committed_metadata: Some(o.metadata.clone()),
                ..Default::default()
            });
    }
    OffsetCommitRequest {
        group_id: group.to_owned(),
        generation_id_or_member_epoch: -1,
        member_id: String::new(),
        group_instance_id: None,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| OffsetCommitRequestTopic {
                name,
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The per-partition answers of an OffsetCommit response (pure); a coordinator error on
/// any partition fails the whole attempt (retried).
pub(crate) fn offset_commit_results(
    response: &OffsetCommitResponse,
) -> Result<BTreeMap<TopicPartition, Result<(), Error>>, Error> {
    let mut out = BTreeMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            let code = ErrorCode::from_code(p.error_code);
            if coordinator_error(code) {
                return Err(Error::kafka(code));
            }
            out.insert(tp(&t.name, p.partition_index), check(p.error_code, None));
        }
    }
    Ok(out)
}

/// The answer of an OffsetDelete response (pure): the group's error, else each partition's.
pub(crate) fn offset_delete_results(
    response: &OffsetDeleteResponse,
) -> Result<BTreeMap<TopicPartition, Result<(), Error>>, Error> {
    check(response.error_code, None)?;
    let mut out = BTreeMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            let code = ErrorCode::from_code(p.error_code);
            if coordinator_error(code) {
                return Err(Error::kafka(code));
            }
            out.insert(tp(&t.name, p.partition_index), check(p.error_code, None));
        }
    }
    Ok(out)
}

impl AdminClient {
    /// Lists the consumer groups of every broker (ListGroups): groups with the `consumer`
    /// protocol type or none (offsets only), optionally only in some states or of some types
    /// (filtered by the broker where its ListGroups version allows).
    ///
    /// # Errors
    /// [`Error::Closed`], or the error of the Metadata lookup that finds the brokers. A
    /// broker's own failure is in [`ConsumerGroupListings::errors`].
    pub async fn list_consumer_groups(
        &self,
        options: &ListConsumerGroupsOptions,
    ) -> Result<ConsumerGroupListings, Error> {
        let cluster = self
            .drive_one("listConsumerGroups", options.timeout, |deadline| {
                self.cluster(Some(&[]), deadline)
            })
            .await?;
        let pending = self.pending(
            "listConsumerGroups",
            cluster.brokers.keys().copied(),
            options.timeout,
        );
        let results = self
            .drive(pending, |brokers, deadline| {
                let cluster = &cluster;
                async move {
                    let calls = brokers.iter().map(|id| async move {
                        let conn = self.broker(cluster, *id).await?;
                        let response = self
                            .send(&conn, deadline, |version| {
                                list_groups_request(&options.states, &options.types, version)
                            })
                            .await?;
                        list_groups_results(&response, &options.states, &options.types)
                    });
                    Ok(brokers.iter().copied().zip(join_all(calls).await).collect())
                }
            })
            .await;
        let mut groups: BTreeMap<String, ConsumerGroupListing> = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for (id, r) in results {
            match r {
                Ok(gs) => groups.extend(gs.into_iter().map(|g| (g.group_id.clone(), g))),
                Err(e) => {
                    errors.insert(id, e);
                }
            }
        }
        Ok(ConsumerGroupListings {
            groups: groups.into_values().collect(),
            errors,
        })
    }

    /// Describes consumer groups (DescribeGroups, to each group's coordinator): state,
    /// assignor, members with their decoded assignments. A group that does not exist is
    /// described as [`GroupState::Dead`] without members, as Kafka answers it.
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per group.
    pub async fn describe_consumer_groups(
        &self,
        groups: impl IntoIterator<Item = impl Into<String>>,
        options: &DescribeConsumerGroupsOptions,
    ) -> Result<BTreeMap<String, Result<ConsumerGroupDescription, Error>>, Error> {
        self.drive_coordinators(
            "describeConsumerGroups",
            groups.into_iter().map(Into::into),
            options.timeout,
            |c, deadline| async move {
                let response = self
                    .send(&c.conn, deadline, |_| {
                        Ok(DescribeGroupsRequest {
                            groups: c.groups.clone(),
                            ..Default::default()
                        })
                    })
                    .await?;
                Ok(describe_groups_results(&response, &c.node))
            },
        )
        .await
    }

    /// Deletes empty consumer groups and their offsets (DeleteGroups, to each group's
    /// coordinator), per group: NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND,
    /// ...
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per group.
    pub async fn delete_consumer_groups(
        &self,
        groups: impl IntoIterator<Item = impl Into<String>>,
        options: &DeleteConsumerGroupsOptions,
    ) -> Result<BTreeMap<String, Result<(), Error>>, Error> {
        self.drive_coordinators(
            "deleteConsumerGroups",
            groups.into_iter().map(Into::into),
            options.timeout,
            |c, deadline| async move {
                let response = self
                    .send(&c.conn, deadline, |_| {
                        Ok(DeleteGroupsRequest {
                            groups_names: c.groups.clone(),
                            ..Default::default()
                        })
                    })
                    .await?;
                Ok(delete_groups_results(&response))
            },
        )
        .await
    }

    /// A group's committed offsets (OffsetFetch, to its coordinator), per partition: `None`
    /// for a partition without a committed offset.
    ///
    /// # Errors
    /// [`Error::Closed`], the group's error in [`Error::Kafka`] (GROUP_AUTHORIZATION_FAILED,
    /// INVALID_GROUP_ID, ...), or [`Error::Timeout`] when the coordinator could not be
    /// reached in time.
    pub async fn list_consumer_group_offsets(
        &self,
        group: &str,
        options: &ListConsumerGroupOffsetsOptions,
    ) -> Result<GroupOffsets, Error> {
        self.drive_one(
            "listConsumerGroupOffsets",
            options.timeout,
            |deadline| async move {
                let (_, conn) = self.coordinator(group, deadline).await?;
                let response = self
                    .send(&conn, deadline, |version| {
                        Ok(offset_fetch_request(
                            group,
                            options.partitions.as_deref(),
                            options.require_stable,
                            version,
                        ))
                    })
                    .await?;
                offset_fetch_results(group, &response)
            },
        )
        .await
    }

    /// Sets a group's committed offsets (OffsetCommit, to its coordinator, with generation
    /// -1 and no member id, as Java's `alterConsumerGroupOffsets`): only accepted while the
    /// group is empty (members get UNKNOWN_MEMBER_ID per partition).
    ///
    /// # Errors
    /// [`Error::Closed`], or [`Error::Timeout`] when the coordinator could not be reached in
    /// time; the rest is per partition.
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        options: &AlterConsumerGroupOffsetsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<(), Error>>, Error> {
        let offsets = &offsets;
        self.drive_one(
            "alterConsumerGroupOffsets",
            options.timeout,
            |deadline| async move {
                let (_, conn) = self.coordinator(group, deadline).await?;
                let response = self
                    .send(&conn, deadline, |version| {
                        Ok(offset_commit_request(group, offsets, version))
                    })
                    .await?;
                offset_commit_results(&response)
            },
        )
        .await
    }

    /// Deletes a group's committed offsets of some partitions (OffsetDelete, to its
    /// coordinator): any partition of an empty group; in a group with members, only
    /// partitions of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC).
    ///
    /// # Errors
    /// [`Error::Closed`], the group's error in [`Error::Kafka`] (GROUP_ID_NOT_FOUND,
    /// NON_EMPTY_GROUP, ...), or [`Error::Timeout`]; the rest is per partition.
    pub async fn delete_consumer_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        options: &DeleteConsumerGroupOffsetsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<(), Error>>, Error> {
        self.drive_one(
            "deleteConsumerGroupOffsets",
            options.timeout,
            |deadline| async move {
                let (_, conn) = self.coordinator(group, deadline).await?;
                let response = self
                    .send(&conn, deadline, |_| {
                        Ok(OffsetDeleteRequest {
                            group_id: group.to_owned(),
                            topics: by_topic(partitions)
                                .into_iter()
                                .map(|(name, ps)| OffsetDeleteRequestTopic {
                                    name,
                                    partitions: ps
                                        .into_iter()
                                        .map(|p| OffsetDeleteRequestPartition {
                                            partition_index: p,
                                        })
                                        .collect(),
                                })
                                .collect(),
                        })
                    })
                    .await?;
                offset_delete_results(&response)
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_wire::consumer_protocol::encode_assignment;
    use kafka_wire::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
    use kafka_wire::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
    use kafka_wire::messages::list_groups_response::ListedGroup;
    use kafka_wire::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_wire::messages::offset_delete_response::{
        OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    };
    use kafka_wire::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };
    use kafka_wire::messages::ConsumerProtocolAssignment;

    use super::super::retry::is_retriable;
    use super::*;

    fn node() -> Node {
        Node {
            id: 1,
            host: "h".into(),
            port: 9,
            rack: None,
        }
    }

    #[test]
    fn states_parse_as_kafka_spells_them() {
        assert_eq!(GroupState::parse("Stable"), GroupState::Stable);
        assert_eq!(
            GroupState::parse("completingrebalance"),
            GroupState::CompletingRebalance
        );
        assert_eq!(GroupState::parse("Weird"), GroupState::Unknown);
        assert_eq!(GroupState::Empty.name(), "Empty");
    }

    #[test]
    fn list_groups_keeps_consumer_groups_in_the_wanted_states() {
        let group = |id: &str, ptype: &str, state: &str| ListedGroup {
            group_id: id.into(),
            protocol_type: ptype.into(),
            group_state: state.into(),
            group_type: "classic".into(),
            ..Default::default()
        };
        let response = ListGroupsResponse {
            groups: vec![
                group("a", "consumer", "Stable"),
                group("b", "", "Empty"),
                group("c", "connect", "Stable"),
                group("d", "consumer", "Empty"),
            ],
            ..Default::default()
        };
        let all = list_groups_results(&response, &[], &[]).unwrap();
        assert_eq!(
            all.iter().map(|g| g.group_id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "d"]
        );
        assert!(all[1].is_simple_consumer_group);
        assert_eq!(all[0].state, Some(GroupState::Stable));
        assert_eq!(all[0].group_type, Some(GroupType::Classic));
        let empty = list_groups_results(&response, &[GroupState::Empty], &[]).unwrap();
        assert_eq!(
            empty
                .iter()
                .map(|g| g.group_id.as_str())
                .collect::<Vec<_>>(),
            ["b", "d"]
        );
        let failed = ListGroupsResponse {
            error_code: ErrorCode::CoordinatorLoadInProgress.code(),
            ..Default::default()
        };
        // Types are checked on the answer too.
        assert_eq!(
            list_groups_results(&response, &[], &[GroupType::Classic])
                .unwrap()
                .len(),
            3
        );
        assert!(list_groups_results(&response, &[], &[GroupType::Consumer])
            .unwrap()
            .is_empty());
        assert_eq!(
            list_groups_results(&failed, &[], &[]).unwrap_err().code(),
            Some(ErrorCode::CoordinatorLoadInProgress)
        );
    }

    #[test]
    fn list_groups_requests_filter_where_the_version_allows() {
        let states = [GroupState::Stable, GroupState::Empty];
        let types = [GroupType::Consumer, GroupType::Classic];
        let r = list_groups_request(&states, &types, 5).unwrap();
        assert_eq!(r.states_filter, ["Stable", "Empty"]);
        assert_eq!(r.types_filter, ["consumer", "classic"]);
        // v4: states only; without a types filter, v4 is enough.
        let r = list_groups_request(&states, &[], 4).unwrap();
        assert_eq!(r.states_filter, ["Stable", "Empty"]);
        assert!(r.types_filter.is_empty());
        // Before v4 the states are checked on the answer.
        let r = list_groups_request(&states, &[], 3).unwrap();
        assert!(r.states_filter.is_empty());
        // A types filter needs v5, as Java's ListGroupsRequest.Builder.
        assert!(matches!(
            list_groups_request(&[], &types, 4),
            Err(Error::UnsupportedVersion(_))
        ));
        assert_eq!(GroupType::parse("CONSUMER"), GroupType::Consumer);
        assert_eq!(GroupType::parse("weird"), GroupType::Unknown);
        assert_eq!(GroupType::Streams.name(), "streams");
    }

    #[test]
    fn describe_decodes_assignments() {
        let assignment = encode_assignment(
            &ConsumerProtocolAssignment {
                assigned_partitions: vec![AssignedTopic {
                    topic: "t".into(),
                    partitions: vec![2, 0],
                }],
                ..Default::default()
            },
            3,
        )
        .unwrap();
        let response = DescribeGroupsResponse {
            groups: vec![
                DescribedGroup {
                    group_id: "g".into(),
                    group_state: "Stable".into(),
                    protocol_type: "consumer".into(),
                    protocol_data: "range".into(),
                    members: vec![
                        DescribedGroupMember {
                            member_id: "m1".into(),
                            client_id: "c1".into(),
                            client_host: "/127.0.0.1".into(),
                            member_assignment: assignment,
                            ..Default::default()
                        },
                        DescribedGroupMember {
                            member_id: "m2".into(),
                            group_instance_id: Some("i2".into()),
                            member_assignment: Bytes::new(),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                DescribedGroup {
                    group_id: "connect".into(),
                    protocol_type: "connect".into(),
                    ..Default::default()
                },
                DescribedGroup {
                    group_id: "bad".into(),
                    protocol_type: "consumer".into(),
                    members: vec![DescribedGroupMember {
                        member_assignment: Bytes::from_static(&[0]),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                DescribedGroup {
                    group_id: "".into(),
                    error_code: ErrorCode::InvalidGroupId.code(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let r = describe_groups_results(&response, &node());
        let g = r[0].1.as_ref().unwrap();
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(g.partition_assignor, "range");
        assert_eq!(g.coordinator, node());
        assert_eq!(g.members[0].assignment, [tp("t", 0), tp("t", 2)]);
        assert_eq!(g.members[0].host, "/127.0.0.1");
        assert!(g.members[1].assignment.is_empty());
        assert_eq!(g.members[1].group_instance_id.as_deref(), Some("i2"));
        assert!(matches!(r[1].1, Err(Error::InvalidArgument(_))));
        assert!(matches!(r[2].1, Err(Error::Protocol(_))));
        assert_eq!(
            r[3].1.as_ref().unwrap_err().code(),
            Some(ErrorCode::InvalidGroupId)
        );
    }

    #[test]
    fn offset_fetch_requests_and_answers_by_version() {
        let ps = [tp("t", 1), tp("t", 0)];
        let r = offset_fetch_request("g", Some(&ps), true, 8);
        assert_eq!(r.groups[0].group_id, "g");
        assert_eq!(
            r.groups[0].topics.as_ref().unwrap()[0].partition_indexes,
            [0, 1]
        );
        assert!(r.require_stable);
        let r = offset_fetch_request("g", None, true, 6);
        assert_eq!(r.group_id, "g");
        assert_eq!(r.topics, None);
        assert!(!r.require_stable);

        let v8 = OffsetFetchResponse {
            groups: vec![OffsetFetchResponseGroup {
                group_id: "g".into(),
                topics: vec![OffsetFetchResponseTopics {
                    name: "t".into(),
                    partitions: vec![
                        OffsetFetchResponsePartitions {
                            partition_index: 0,
                            committed_offset: 5,
                            committed_leader_epoch: 2,
                            metadata: Some("m".into()),
                            ..Default::default()
                        },
                        OffsetFetchResponsePartitions {
                            partition_index: 1,
                            committed_offset: -1,
                            committed_leader_epoch: -1,
                            ..Default::default()
                        },
                        OffsetFetchResponsePartitions {
                            partition_index: 2,
                            error_code: ErrorCode::UnstableOffsetCommit.code(),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = offset_fetch_results("g", &v8).unwrap();
        assert_eq!(
            r[&tp("t", 0)],
            Ok(Some(OffsetAndMetadata {
                offset: 5,
                leader_epoch: Some(2),
                metadata: "m".into()
            }))
        );
        assert_eq!(r[&tp("t", 1)], Ok(None));
        assert_eq!(
            r[&tp("t", 2)].as_ref().unwrap_err().code(),
            Some(ErrorCode::UnstableOffsetCommit)
        );
        assert!(matches!(
            offset_fetch_results("other", &v8),
            Err(Error::Protocol(_))
        ));

        let v7 = OffsetFetchResponse {
            error_code: ErrorCode::NotCoordinator.code(),
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetFetchResponsePartition::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            offset_fetch_results("g", &v7).unwrap_err().code(),
            Some(ErrorCode::NotCoordinator)
        );
    }

    #[test]
    fn offset_commits_are_sent_as_javas_admin_does() {
        let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = [
            (tp("t", 0), OffsetAndMetadata::new(3)),
            (
                tp("t", 1),
                OffsetAndMetadata {
                    offset: 4,
                    leader_epoch: Some(7),
                    metadata: "x".into(),
                },
            ),
        ]
        .into_iter()
        .collect();
        let r = offset_commit_request("g", &offsets, 9);
        assert_eq!(r.generation_id_or_member_epoch, -1);
        assert_eq!(r.member_id, "");
        assert_eq!(r.group_instance_id, None);
        let ps = &r.topics[0].partitions;
        assert_eq!(
            (ps[0].committed_offset, ps[0].committed_leader_epoch),
            (3, -1)
        );
        assert_eq!(
            (ps[1].committed_offset, ps[1].committed_leader_epoch),
            (4, 7)
        );
        assert_eq!(ps[1].committed_metadata.as_deref(), Some("x"));
        // Before v6 no epoch can be sent.
        assert_eq!(
            offset_commit_request("g", &offsets, 5).topics[0].partitions[1].committed_leader_epoch,
            -1
        );

        let answer = |codes: &[i16]| OffsetCommitResponse {
            topics: vec![OffsetCommitResponseTopic {
                name: "t".into(),
                partitions: codes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| OffsetCommitResponsePartition {
                        partition_index: i as i32,
                        error_code: *c,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = offset_commit_results(&answer(&[0, ErrorCode::UnknownMemberId.code()])).unwrap();
        assert_eq!(r[&tp("t", 0)], Ok(()));
        assert_eq!(
            r[&tp("t", 1)].as_ref().unwrap_err().code(),
            Some(ErrorCode::UnknownMemberId)
        );
        let e = offset_commit_results(&answer(&[0, ErrorCode::NotCoordinator.code()])).unwrap_err();
        assert!(is_retriable(&e));
    }

    #[test]
    fn offset_delete_answers() {
        let response = OffsetDeleteResponse {
            topics: vec![OffsetDeleteResponseTopic {
                name: "t".into(),
                partitions: vec![
                    OffsetDeleteResponsePartition {
                        partition_index: 0,
                        ..Default::default()
                    },
                    OffsetDeleteResponsePartition {
                        partition_index: 1,
                        error_code: ErrorCode::GroupSubscribedToTopic.code(),
                    },
                ],
            }],
            ..Default::default()
        };
        let r = offset_delete_results(&response).unwrap();
        assert_eq!(r[&tp("t", 0)], Ok(()));
        assert_eq!(
            r[&tp("t", 1)].as_ref().unwrap_err().code(),
            Some(ErrorCode::GroupSubscribedToTopic)
        );
        let group = OffsetDeleteResponse {
            error_code: ErrorCode::GroupIdNotFound.code(),
            ..Default::default()
        };
        assert_eq!(
            offset_delete_results(&group).unwrap_err().code(),
            Some(ErrorCode::GroupIdNotFound)
        );
    }
}
