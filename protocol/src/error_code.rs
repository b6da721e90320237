//! Every error code Apache Kafka defines, as [`ErrorCode`].
//!
//! # Where the table comes from
//!
//! The rows below transcribe `org.apache.kafka.common.protocol.Errors` (the Java enum in
//! `clients/src/main/java/org/apache/kafka/common/protocol/Errors.java`). They cover
//! **Apache Kafka 4.4**, codes `-1..=135`, with no gaps.
//!
//! - **Names, codes and default messages.** Codes -1 to 135 and their message strings were
//!   copied from a trunk snapshot of that file (the `m1a2st/kafka` mirror at commit
//!   `a25502972272623125ba6f8730e83955c316e83c`). Codes -1 to 133 were checked against a second
//!   copy, `aiven/inkless` at `d5bbd62ae56f28f83d21c1c689b765f6b8f5b31d`, and the two match.
//!   The exception classes for 134 (`GroupDeletionFailedException`) and 135
//!   (`StreamsTopologyDescriptionUpdateFailedException`) appear in the Kafka 4.4 javadoc. Java
//!   builds multi-line messages with `+`; the strings here are those pieces joined.
//! - **Retriability.** Java's rule (`Errors.toHtml`) is `exception() instanceof
//!   RetriableException`. Which exception classes qualify comes from the class hierarchy in the
//!   Kafka 4.2 javadoc: the direct subclasses of `RetriableException`, plus those of
//!   `RefreshRetriableException` and `InvalidMetadataException`. The 4.4 javadoc shows that both
//!   134 and 135 extend `ApiException` directly, so they are not retriable.
//!
//! The snapshot also has codes 136 (`PARTITION_OPERATION_IN_PROGRESS`) and 137
//! (`INVALID_DELETE_PARTITION_COUNT`). No Kafka release documents them yet, so they are left
//! out and decode as [`ErrorCode::Unknown`]. Because `Unknown` keeps the number, no code is
//! ever lost.
//!
//! ```
//! use kafka_wire::ErrorCode;
//!
//! let e = ErrorCode::from_code(6);
//! assert_eq!(e, ErrorCode::NotLeaderOrFollower);
//! assert_eq!(e.name(), "NOT_LEADER_OR_FOLLOWER");
//! assert!(e.is_retriable());
//! assert_eq!(ErrorCode::from(9999), ErrorCode::Unknown(9999));
//! assert_eq!(i16::from(ErrorCode::Unknown(9999)), 9999);
//! assert!(ErrorCode::from_code(0).into_result().is_ok());
//! ```

use std::fmt;

/// Builds [`ErrorCode`] and its lookup tables. Each row is `Variant = code, "NAME", retriable,
/// "default message";`.
macro_rules! error_codes {
    ($($variant:ident = $code:literal, $name:literal, $retriable:literal, $message:literal;)+) => {
        /// A Kafka protocol error code, the `int16` `ErrorCode` field found in responses.
        ///
        /// Every code in Kafka's `Errors` enum has a variant. Any other code is kept as
        /// [`ErrorCode::Unknown`], so `ErrorCode::from_code(c).code() == c` for every `i16`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = concat!(
                    "`", $name, "` (code ", $code, ", retriable: ", $retriable, ").\n\n", $message
                )]
                $variant,
            )+
            /// An error code this library does not know, for example one added in a newer Kafka
            /// release. The raw code is kept. Java clients treat such codes as the
            /// non-retriable `UNKNOWN_SERVER_ERROR`; here [`ErrorCode::is_retriable`] is `false`
            /// for them too.
            ///
            /// Build values with [`ErrorCode::from_code`]. `Unknown` holding a known code (such
            /// as `Unknown(6)`) is never produced by it and is not equal to the named variant.
            Unknown(i16),
        }

        impl ErrorCode {
            /// Every known error code, in ascending numeric order (`Unknown` not included).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The numeric code sent on the wire.
            pub const fn code(self) -> i16 {
                match self {
                    $(ErrorCode::$variant => $code,)+
                    ErrorCode::Unknown(code) => code,
                }
            }

            /// Maps a wire code to its variant. Codes this library does not know become
            /// [`ErrorCode::Unknown`] with the number kept.
            pub const fn from_code(code: i16) -> ErrorCode {
                match code {
                    $($code => ErrorCode::$variant,)+
                    other => ErrorCode::Unknown(other),
                }
            }

            /// Kafka's name for the code (the Java `Errors` constant), such as
            /// `"NOT_LEADER_OR_FOLLOWER"`. [`ErrorCode::Unknown`] gives `"UNKNOWN"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                    ErrorCode::Unknown(_) => "UNKNOWN",
                }
            }

            /// Whether the Java client treats this error as retriable, meaning its exception
            /// extends `RetriableException`. `false` for `NONE` and for
            /// [`ErrorCode::Unknown`].
            pub const fn is_retriable(self) -> bool {
                match self {
                    $(ErrorCode::$variant => $retriable,)+
                    ErrorCode::Unknown(_) => false,
                }
            }

            /// Kafka's default message for the error, the text of the exception the Java
            /// client builds when the broker sends no message of its own. It is empty for
            /// `NONE`, which has no exception. [`ErrorCode::Unknown`] returns a message written
            /// by this library, because Kafka has none for it.
            pub const fn message(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $message,)+
                    ErrorCode::Unknown(_) => {
                        "The error code is not one this client knows; it may come from a newer \
                         Kafka version."
                    }
                }
            }
        }
    };
}

error_codes! {
    UnknownServerError = -1, "UNKNOWN_SERVER_ERROR", false,
        "The server experienced an unexpected error when processing the request.";
    None = 0, "NONE", false, "";
    OffsetOutOfRange = 1, "OFFSET_OUT_OF_RANGE", false,
        "The requested offset is not within the range of offsets maintained by the server.";
    CorruptMessage = 2, "CORRUPT_MESSAGE", true,
        "This message has failed its CRC checksum, exceeds the valid size, has a null key for a \
         compacted topic, or is otherwise corrupt.";
    UnknownTopicOrPartition = 3, "UNKNOWN_TOPIC_OR_PARTITION", true,
        "This server does not host this topic-partition.";
    InvalidFetchSize = 4, "INVALID_FETCH_SIZE", false, "The requested fetch size is invalid.";
    LeaderNotAvailable = 5, "LEADER_NOT_AVAILABLE", true,
        "There is no leader for this topic-partition as we are in the middle of a leadership \
         election.";
    NotLeaderOrFollower = 6, "NOT_LEADER_OR_FOLLOWER", true,
        "For requests intended only for the leader, this error indicates that the broker is not \
         the current leader. For requests intended for any replica, this error indicates that the \
         broker is not a replica of the topic partition.";
    RequestTimedOut = 7, "REQUEST_TIMED_OUT", true, "The request timed out.";
    BrokerNotAvailable = 8, "BROKER_NOT_AVAILABLE", false, "The broker is not available.";
    ReplicaNotAvailable = 9, "REPLICA_NOT_AVAILABLE", true,
        "The replica is not available for the requested topic-partition. Produce/Fetch requests \
         and other requests intended only for the leader or follower return \
         NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition.";
    MessageTooLarge = 10, "MESSAGE_TOO_LARGE", false,
        "The request included a message larger than the max message size the server will \
         accept.";
    StaleControllerEpoch = 11, "STALE_CONTROLLER_EPOCH", false,
        "The controller moved to another broker.";
    OffsetMetadataTooLarge = 12, "OFFSET_METADATA_TOO_LARGE", false,
        "The metadata field of the offset request was too large.";
    NetworkException = 13, "NETWORK_EXCEPTION", true,
        "The server disconnected before a response was received.";
    CoordinatorLoadInProgress = 14, "COORDINATOR_LOAD_IN_PROGRESS", true,
        "The coordinator is loading and hence can't process requests.";
    CoordinatorNotAvailable = 15, "COORDINATOR_NOT_AVAILABLE", true,
        "The coordinator is not available.";
    NotCoordinator = 16, "NOT_COORDINATOR", true, "This is not the correct coordinator.";
    InvalidTopicException = 17, "INVALID_TOPIC_EXCEPTION", false,
        "The request attempted to perform an operation on an invalid topic.";
    RecordListTooLarge = 18, "RECORD_LIST_TOO_LARGE", false,
        "The request included message batch larger than the configured segment size on the \
         server.";
    NotEnoughReplicas = 19, "NOT_ENOUGH_REPLICAS", true,
        "Messages are rejected since there are fewer in-sync replicas than required.";
    NotEnoughReplicasAfterAppend = 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true,
        "Messages are written to the log, but to fewer in-sync replicas than required.";
    InvalidRequiredAcks = 21, "INVALID_REQUIRED_ACKS", false,
        "Produce request specified an invalid value for required acks.";
    IllegalGeneration = 22, "ILLEGAL_GENERATION", false,
        "Specified group generation id is not valid.";
    InconsistentGroupProtocol = 23, "INCONSISTENT_GROUP_PROTOCOL", false,
        "The group member's supported protocols are incompatible with those of existing members \
         or first group member tried to join with empty protocol type or empty protocol list.";
    InvalidGroupId = 24, "INVALID_GROUP_ID", false, "The group id is invalid.";
    UnknownMemberId = 25, "UNKNOWN_MEMBER_ID", false,
        "The coordinator is not aware of this member.";
    InvalidSessionTimeout = 26, "INVALID_SESSION_TIMEOUT", false,
        "The session timeout is not within the range allowed by the broker (as configured by \
         group.min.session.timeout.ms and group.max.session.timeout.ms).";
    RebalanceInProgress = 27, "REBALANCE_IN_PROGRESS", false,
        "The group is rebalancing, so a rejoin is needed.";
    InvalidCommitOffsetSize = 28, "INVALID_COMMIT_OFFSET_SIZE", false,
        "The committing offset data size is not valid.";
    TopicAuthorizationFailed = 29, "TOPIC_AUTHORIZATION_FAILED", false,
        "Topic authorization failed.";
    GroupAuthorizationFailed = 30, "GROUP_AUTHORIZATION_FAILED", false,
        "Group authorization failed.";
    ClusterAuthorizationFailed = 31, "CLUSTER_AUTHORIZATION_FAILED", false,
        "Cluster authorization failed.";
    InvalidTimestamp = 32, "INVALID_TIMESTAMP", false,
        "The timestamp of the message is out of acceptable range.";
    UnsupportedSaslMechanism = 33, "UNSUPPORTED_SASL_MECHANISM", false,
        "The broker does not support the requested SASL mechanism.";
    IllegalSaslState = 34, "ILLEGAL_SASL_STATE", false,
        "Request is not valid given the current SASL state.";
    UnsupportedVersion = 35, "UNSUPPORTED_VERSION", false,
        "The version of API is not supported.";
    TopicAlreadyExists = 36, "TOPIC_ALREADY_EXISTS", false,
        "Topic with this name already exists.";
    InvalidPartitions = 37, "INVALID_PARTITIONS", false, "Number of partitions is below 1.";
    InvalidReplicationFactor = 38, "INVALID_REPLICATION_FACTOR", false,
        "Replication factor is below 1 or larger than the number of available brokers.";
    InvalidReplicaAssignment = 39, "INVALID_REPLICA_ASSIGNMENT", false,
        "Replica assignment is invalid.";
    InvalidConfig = 40, "INVALID_CONFIG", false, "Configuration is invalid.";
    NotController = 41, "NOT_CONTROLLER", true,
        "This is not the correct controller for this cluster.";
    InvalidRequest = 42, "INVALID_REQUEST", false,
        "This most likely occurs because of a request being malformed by the client library or \
         the message was sent to an incompatible broker. See the broker logs for more details.";
    UnsupportedForMessageFormat = 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false,
        "The message format version on the broker does not support the request.";
    PolicyViolation = 44, "POLICY_VIOLATION", false,
        "Request parameters do not satisfy the configured policy.";
    OutOfOrderSequenceNumber = 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false,
        "The broker received an out of order sequence number.";
    DuplicateSequenceNumber = 46, "DUPLICATE_SEQUENCE_NUMBER", false,
        "The broker received a duplicate sequence number.";
    InvalidProducerEpoch = 47, "INVALID_PRODUCER_EPOCH", false,
        "Producer attempted to produce with an old epoch.";
    InvalidTxnState = 48, "INVALID_TXN_STATE", false,
        "The producer attempted a transactional operation in an invalid state.";
    InvalidProducerIdMapping = 49, "INVALID_PRODUCER_ID_MAPPING", false,
        "The producer attempted to use a producer id which is not currently assigned to its \
         transactional id.";
    InvalidTransactionTimeout = 50, "INVALID_TRANSACTION_TIMEOUT", false,
        "The transaction timeout is larger than the maximum value allowed by the broker (as \
         configured by transaction.max.timeout.ms).";
    ConcurrentTransactions = 51, "CONCURRENT_TRANSACTIONS", true,
        "The producer attempted to update a transaction while another concurrent operation on \
         the same transaction was ongoing.";
    TransactionCoordinatorFenced = 52, "TRANSACTION_COORDINATOR_FENCED", false,
        "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the \
         current coordinator for a given producer.";
    TransactionalIdAuthorizationFailed = 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false,
        "Transactional Id authorization failed.";
    SecurityDisabled = 54, "SECURITY_DISABLED", false, "Security features are disabled.";
    OperationNotAttempted = 55, "OPERATION_NOT_ATTEMPTED", false,
        "The broker did not attempt to execute this operation. This may happen for batched RPCs \
         where some operations in the batch failed, causing the broker to respond without trying \
         the rest.";
    KafkaStorageError = 56, "KAFKA_STORAGE_ERROR", true,
        "Disk error when trying to access log file on the disk.";
    LogDirNotFound = 57, "LOG_DIR_NOT_FOUND", false,
        "The user-specified log directory is not found in the broker config.";
    SaslAuthenticationFailed = 58, "SASL_AUTHENTICATION_FAILED", false,
        "SASL Authentication failed.";
    UnknownProducerId = 59, "UNKNOWN_PRODUCER_ID", false,
        "This exception is raised by the broker if it could not locate the producer metadata \
         associated with the producerId in question. This could happen if, for instance, the \
         producer's records were deleted because their retention time had elapsed. Once the last \
         records of the producerId are removed, the producer's metadata is removed from the \
         broker, and future appends by the producer will return this exception.";
    ReassignmentInProgress = 60, "REASSIGNMENT_IN_PROGRESS", false,
        "A partition reassignment is in progress.";
    DelegationTokenAuthDisabled = 61, "DELEGATION_TOKEN_AUTH_DISABLED", false,
        "Delegation Token feature is not enabled.";
    DelegationTokenNotFound = 62, "DELEGATION_TOKEN_NOT_FOUND", false,
        "Delegation Token is not found on server.";
    DelegationTokenOwnerMismatch = 63, "DELEGATION_TOKEN_OWNER_MISMATCH", false,
        "Specified Principal is not valid Owner/Renewer.";
    DelegationTokenRequestNotAllowed = 64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false,
        "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on \
         delegation token authenticated channels.";
    DelegationTokenAuthorizationFailed = 65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false,
        "Delegation Token authorization failed.";
    DelegationTokenExpired = 66, "DELEGATION_TOKEN_EXPIRED", false,
        "Delegation Token is expired.";
    InvalidPrincipalType = 67, "INVALID_PRINCIPAL_TYPE", false,
        "Supplied principalType is not supported.";
    NonEmptyGroup = 68, "NON_EMPTY_GROUP", false, "The group is not empty.";
    GroupIdNotFound = 69, "GROUP_ID_NOT_FOUND", false, "The group id does not exist.";
    FetchSessionIdNotFound = 70, "FETCH_SESSION_ID_NOT_FOUND", true,
        "The fetch session ID was not found.";
    InvalidFetchSessionEpoch = 71, "INVALID_FETCH_SESSION_EPOCH", true,
        "The fetch session epoch is invalid.";
    ListenerNotFound = 72, "LISTENER_NOT_FOUND", true,
        "There is no listener on the leader broker that matches the listener on which metadata \
         request was processed.";
    TopicDeletionDisabled = 73, "TOPIC_DELETION_DISABLED", false,
        "Topic deletion is disabled.";
    FencedLeaderEpoch = 74, "FENCED_LEADER_EPOCH", true,
        "The leader epoch in the request is older than the epoch on the broker.";
    UnknownLeaderEpoch = 75, "UNKNOWN_LEADER_EPOCH", true,
        "The leader epoch in the request is newer than the epoch on the broker.";
    UnsupportedCompressionType = 76, "UNSUPPORTED_COMPRESSION_TYPE", false,
        "The requesting client does not support the compression type of given partition.";
    StaleBrokerEpoch = 77, "STALE_BROKER_EPOCH", false, "Broker epoch has changed.";
    OffsetNotAvailable = 78, "OFFSET_NOT_AVAILABLE", true,
        "The leader high watermark has not caught up from a recent leader election so the \
         offsets cannot be guaranteed to be monotonically increasing.";
    MemberIdRequired = 79, "MEMBER_ID_REQUIRED", false,
        "The group member needs to have a valid member id before actually entering a consumer \
         group.";
    PreferredLeaderNotAvailable = 80, "PREFERRED_LEADER_NOT_AVAILABLE", true,
        "The preferred leader was not available.";
    GroupMaxSizeReached = 81, "GROUP_MAX_SIZE_REACHED", false,
        "The group has reached its maximum size.";
    FencedInstanceId = 82, "FENCED_INSTANCE_ID", false,
        "The broker rejected this static consumer since another consumer with the same \
         group.instance.id has registered with a different member.id.";
    EligibleLeadersNotAvailable = 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true,
        "Eligible topic partition leaders are not available.";
    ElectionNotNeeded = 84, "ELECTION_NOT_NEEDED", true,
        "Leader election not needed for topic partition.";
    NoReassignmentInProgress = 85, "NO_REASSIGNMENT_IN_PROGRESS", false,
        "No partition reassignment is in progress.";
    GroupSubscribedToTopic = 86, "GROUP_SUBSCRIBED_TO_TOPIC", false,
        "Deleting offsets of a topic is forbidden while the consumer group is actively \
         subscribed to it.";
    InvalidRecord = 87, "INVALID_RECORD", false,
        "This record has failed the validation on broker and hence will be rejected.";
    UnstableOffsetCommit = 88, "UNSTABLE_OFFSET_COMMIT", true,
        "There are unstable offsets that need to be cleared.";
    ThrottlingQuotaExceeded = 89, "THROTTLING_QUOTA_EXCEEDED", true,
        "The throttling quota has been exceeded.";
    ProducerFenced = 90, "PRODUCER_FENCED", false,
        "There is a newer producer with the same transactionalId which fences the current one.";
    ResourceNotFound = 91, "RESOURCE_NOT_FOUND", false,
        "A request illegally referred to a resource that does not exist.";
    DuplicateResource = 92, "DUPLICATE_RESOURCE", false,
        "A request illegally referred to the same resource twice.";
    UnacceptableCredential = 93, "UNACCEPTABLE_CREDENTIAL", false,
        "Requested credential would not meet criteria for acceptability.";
    InconsistentVoterSet = 94, "INCONSISTENT_VOTER_SET", false,
        "Indicates that the either the sender or recipient of a voter-only request is not one of \
         the expected voters.";
    InvalidUpdateVersion = 95, "INVALID_UPDATE_VERSION", false,
        "The given update version was invalid.";
    FeatureUpdateFailed = 96, "FEATURE_UPDATE_FAILED", false,
        "Unable to update finalized features due to an unexpected server error.";
    PrincipalDeserializationFailure = 97, "PRINCIPAL_DESERIALIZATION_FAILURE", false,
        "Request principal deserialization failed during forwarding. This indicates an internal \
         error on the broker cluster security setup.";
    SnapshotNotFound = 98, "SNAPSHOT_NOT_FOUND", false, "Requested snapshot was not found.";
    PositionOutOfRange = 99, "POSITION_OUT_OF_RANGE", false,
        "Requested position is not greater than or equal to zero, and less than the size of the \
         snapshot.";
    UnknownTopicId = 100, "UNKNOWN_TOPIC_ID", true, "This server does not host this topic ID.";
    DuplicateBrokerRegistration = 101, "DUPLICATE_BROKER_REGISTRATION", false,
        "This broker ID is already in use.";
    BrokerIdNotRegistered = 102, "BROKER_ID_NOT_REGISTERED", false,
        "The given broker ID was not registered.";
    InconsistentTopicId = 103, "INCONSISTENT_TOPIC_ID", true,
        "The log's topic ID did not match the topic ID in the request.";
    InconsistentClusterId = 104, "INCONSISTENT_CLUSTER_ID", false,
        "The clusterId in the request does not match that found on the server.";
    TransactionalIdNotFound = 105, "TRANSACTIONAL_ID_NOT_FOUND", false,
        "The transactionalId could not be found.";
    FetchSessionTopicIdError = 106, "FETCH_SESSION_TOPIC_ID_ERROR", true,
        "The fetch session encountered inconsistent topic ID usage.";
    IneligibleReplica = 107, "INELIGIBLE_REPLICA", false,
        "The new ISR contains at least one ineligible replica.";
    NewLeaderElected = 108, "NEW_LEADER_ELECTED", false,
        "The AlterPartition request successfully updated the partition state but the leader has \
         changed.";
    OffsetMovedToTieredStorage = 109, "OFFSET_MOVED_TO_TIERED_STORAGE", false,
        "The requested offset is moved to tiered storage.";
    FencedMemberEpoch = 110, "FENCED_MEMBER_EPOCH", false,
        "The member epoch is fenced by the group coordinator. The member must abandon all its \
         partitions and rejoin.";
    UnreleasedInstanceId = 111, "UNRELEASED_INSTANCE_ID", false,
        "The instance ID is still used by another member in the consumer group. That member must \
         leave first.";
    UnsupportedAssignor = 112, "UNSUPPORTED_ASSIGNOR", false,
        "The assignor or its version range is not supported by the consumer group.";
    StaleMemberEpoch = 113, "STALE_MEMBER_EPOCH", false,
        "The member epoch is stale. The member must retry after receiving its updated member \
         epoch via the ConsumerGroupHeartbeat API.";
    MismatchedEndpointType = 114, "MISMATCHED_ENDPOINT_TYPE", false,
        "The request was sent to an endpoint of the wrong type.";
    UnsupportedEndpointType = 115, "UNSUPPORTED_ENDPOINT_TYPE", false,
        "This endpoint type is not supported yet.";
    UnknownControllerId = 116, "UNKNOWN_CONTROLLER_ID", false,
        "This controller ID is not known.";
    UnknownSubscriptionId = 117, "UNKNOWN_SUBSCRIPTION_ID", false,
        "Client sent a push telemetry request with an invalid or outdated subscription ID.";
    TelemetryTooLarge = 118, "TELEMETRY_TOO_LARGE", false,
        "Client sent a push telemetry request larger than the maximum size the broker will \
         accept.";
    InvalidRegistration = 119, "INVALID_REGISTRATION", false,
        "The controller has considered the broker registration to be invalid.";
    TransactionAbortable = 120, "TRANSACTION_ABORTABLE", false,
        "The server encountered an error with the transaction. The client can abort the \
         transaction to continue using this transactional ID.";
    InvalidRecordState = 121, "INVALID_RECORD_STATE", false,
        "The record state is invalid. The acknowledgement of delivery could not be completed.";
    ShareSessionNotFound = 122, "SHARE_SESSION_NOT_FOUND", true,
        "The share session was not found.";
    InvalidShareSessionEpoch = 123, "INVALID_SHARE_SESSION_EPOCH", true,
        "The share session epoch is invalid.";
    FencedStateEpoch = 124, "FENCED_STATE_EPOCH", false,
        "The share coordinator rejected the request because the share-group state epoch did not \
         match.";
    InvalidVoterKey = 125, "INVALID_VOTER_KEY", false,
        "The voter key doesn't match the receiving replica's key.";
    DuplicateVoter = 126, "DUPLICATE_VOTER", false,
        "The voter is already part of the set of voters.";
    VoterNotFound = 127, "VOTER_NOT_FOUND", false,
        "The voter is not part of the set of voters.";
    InvalidRegularExpression = 128, "INVALID_REGULAR_EXPRESSION", false,
        "The regular expression is not valid.";
    RebootstrapRequired = 129, "REBOOTSTRAP_REQUIRED", false,
        "Client metadata is stale. The client should rebootstrap to obtain new metadata.";
    StreamsInvalidTopology = 130, "STREAMS_INVALID_TOPOLOGY", false,
        "The supplied topology is invalid.";
    StreamsInvalidTopologyEpoch = 131, "STREAMS_INVALID_TOPOLOGY_EPOCH", false,
        "The supplied topology epoch is invalid.";
    StreamsTopologyFenced = 132, "STREAMS_TOPOLOGY_FENCED", false,
        "The supplied topology epoch is outdated.";
    ShareSessionLimitReached = 133, "SHARE_SESSION_LIMIT_REACHED", true,
        "The limit of share sessions has been reached.";
    GroupDeletionFailed = 134, "GROUP_DELETION_FAILED", false,
        "DeleteGroups could not complete; see the error message on the per-group result for \
         details.";
    StreamsTopologyDescriptionUpdateFailed = 135, "STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED",
        false,
        "The broker could not process the topology description update; see the error message for \
         details.";
}

impl ErrorCode {
    /// `true` only for [`ErrorCode::None`] (code 0), which means success.
    pub const fn is_ok(self) -> bool {
        matches!(self, ErrorCode::None)
    }

    /// `Ok(())` for [`ErrorCode::None`], and `Err(self)` for anything else, so that `?` can be
    /// used on a response's error code.
    pub const fn into_result(self) -> Result<(), ErrorCode> {
        if self.is_ok() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// `true` when the code is one of [`ErrorCode::ALL`] rather than [`ErrorCode::Unknown`].
    pub const fn is_known(self) -> bool {
        !matches!(self, ErrorCode::Unknown(_))
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode::from_code(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(error: ErrorCode) -> Self {
        error.code()
    }
}

/// Prints `NAME (code): message`, for example
/// `UNSUPPORTED_VERSION (35): The version of API is not supported.`. `NONE` has no message and
/// prints `NONE (0)`.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message();
        if message.is_empty() {
            write!(f, "{} ({})", self.name(), self.code())
        } else {
            write!(f, "{} ({}): {}", self.name(), self.code(), message)
        }
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use std::collections::HashSet;

    /// The highest code in the table (Kafka 4.4).
    const MAX_KNOWN: i16 = 135;

    #[test]
    fn every_known_code_round_trips() {
        for &e in ErrorCode::ALL {
            assert!(e.is_known(), "{e:?}");
            assert_eq!(ErrorCode::from_code(e.code()), e);
            assert_eq!(ErrorCode::from(i16::from(e)), e);
        }
    }

    #[test]
    fn every_i16_round_trips() {
        for code in i16::MIN..=i16::MAX {
            let e = ErrorCode::from_code(code);
            assert_eq!(e.code(), code);
            assert_eq!(e.is_known(), (-1..=MAX_KNOWN).contains(&code), "{code}");
        }
    }

    #[test]
    fn codes_are_unique_and_contiguous_from_minus_one() {
        let codes: Vec<i16> = ErrorCode::ALL.iter().map(|e| e.code()).collect();
        let expected: Vec<i16> = (-1..=MAX_KNOWN).collect();
        assert_eq!(codes, expected);
        assert_eq!(ErrorCode::ALL.len(), 137);
    }

    #[test]
    fn names_are_unique_and_screaming_snake() {
        let mut seen = HashSet::new();
        for &e in ErrorCode::ALL {
            let name = e.name();
            assert!(seen.insert(name), "duplicate name {name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
        assert!(!seen.contains("UNKNOWN"), "Unknown's name must not collide");
    }

    #[test]
    fn messages_are_present() {
        for &e in ErrorCode::ALL {
            if e == ErrorCode::None {
                assert_eq!(e.message(), "");
            } else {
                assert!(!e.message().is_empty(), "{e:?}");
                assert!(!e.message().contains("  "), "{e:?} has a doubled space");
            }
        }
    }

    #[test]
    fn spot_checks() {
        #[rustfmt::skip]
        let cases: &[(ErrorCode, i16, &str, bool)] = &[
            (ErrorCode::UnknownServerError, -1, "UNKNOWN_SERVER_ERROR", false),
            (ErrorCode::None, 0, "NONE", false),
            (ErrorCode::CorruptMessage, 2, "CORRUPT_MESSAGE", true),
            (ErrorCode::UnknownTopicOrPartition, 3, "UNKNOWN_TOPIC_OR_PARTITION", true),
            (ErrorCode::NotLeaderOrFollower, 6, "NOT_LEADER_OR_FOLLOWER", true),
            (ErrorCode::RequestTimedOut, 7, "REQUEST_TIMED_OUT", true),
            (ErrorCode::BrokerNotAvailable, 8, "BROKER_NOT_AVAILABLE", false),
            (ErrorCode::ReplicaNotAvailable, 9, "REPLICA_NOT_AVAILABLE", true),
            (ErrorCode::TopicAuthorizationFailed, 29, "TOPIC_AUTHORIZATION_FAILED", false),
            (ErrorCode::UnsupportedVersion, 35, "UNSUPPORTED_VERSION", false),
            (ErrorCode::NotController, 41, "NOT_CONTROLLER", true),
            (ErrorCode::OutOfOrderSequenceNumber, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false),
            (ErrorCode::DuplicateSequenceNumber, 46, "DUPLICATE_SEQUENCE_NUMBER", false),
            (ErrorCode::ConcurrentTransactions, 51, "CONCURRENT_TRANSACTIONS", true),
            (ErrorCode::KafkaStorageError, 56, "KAFKA_STORAGE_ERROR", true),
            (ErrorCode::FencedLeaderEpoch, 74, "FENCED_LEADER_EPOCH", true),
            (ErrorCode::UnknownLeaderEpoch, 75, "UNKNOWN_LEADER_EPOCH", true),
            (ErrorCode::OffsetNotAvailable, 78, "OFFSET_NOT_AVAILABLE", true),
            (ErrorCode::UnstableOffsetCommit, 88, "UNSTABLE_OFFSET_COMMIT", true),
            (ErrorCode::ProducerFenced, 90, "PRODUCER_FENCED", false),
            (ErrorCode::TransactionAbortable, 120, "TRANSACTION_ABORTABLE", false),
            (ErrorCode::InvalidRecordState, 121, "INVALID_RECORD_STATE", false),
            (ErrorCode::ShareSessionNotFound, 122, "SHARE_SESSION_NOT_FOUND", true),
            (ErrorCode::InvalidShareSessionEpoch, 123, "INVALID_SHARE_SESSION_EPOCH", true),
            (ErrorCode::FencedStateEpoch, 124, "FENCED_STATE_EPOCH", false),
            (ErrorCode::InvalidVoterKey, 125, "INVALID_VOTER_KEY", false),
            (ErrorCode::DuplicateVoter, 126, "DUPLICATE_VOTER", false),
            (ErrorCode::VoterNotFound, 127, "VOTER_NOT_FOUND", false),
            (ErrorCode::InvalidRegularExpression, 128, "INVALID_REGULAR_EXPRESSION", false),
            (ErrorCode::RebootstrapRequired, 129, "REBOOTSTRAP_REQUIRED", false),
            (ErrorCode::StreamsInvalidTopology, 130, "STREAMS_INVALID_TOPOLOGY", false),
            (ErrorCode::ShareSessionLimitReached, 133, "SHARE_SESSION_LIMIT_REACHED", true),
        ];
        for &(e, code, name, retriable) in cases {
            assert_eq!(e.code(), code, "{name}");
            assert_eq!(e.name(), name);
            assert_eq!(e.is_retriable(), retriable, "{name}");
            assert_eq!(ErrorCode::from_code(code), e);
        }
    }

    #[test]
    fn retriable_set_matches_java_hierarchy() {
        // The codes whose Java exception extends RetriableException (directly, or through
        // RefreshRetriableException / InvalidMetadataException), per the 4.2 and 4.4 javadoc.
        let expected: Vec<i16> = vec![
            2, 3, 5, 6, 7, 9, 13, 14, 15, 16, 19, 20, 41, 51, 56, 70, 71, 72, 74, 75, 78, 80, 83,
            84, 88, 89, 100, 103, 106, 122, 123, 133,
        ];
        let actual: Vec<i16> = ErrorCode::ALL
            .iter()
            .filter(|e| e.is_retriable())
            .map(|e| e.code())
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn unknown_is_preserved() {
        let e = ErrorCode::from_code(9999);
        assert_eq!(e, ErrorCode::Unknown(9999));
        assert_eq!(e.code(), 9999);
        assert_eq!(i16::from(e), 9999);
        assert_eq!(e.name(), "UNKNOWN");
        assert!(!e.is_retriable());
        assert!(!e.is_ok());
        assert!(!e.is_known());
        assert_eq!(e.into_result(), Err(ErrorCode::Unknown(9999)));
        assert!(e.to_string().starts_with("UNKNOWN (9999): "));
        assert_eq!(ErrorCode::from(-2), ErrorCode::Unknown(-2));
        assert_eq!(
            ErrorCode::from(MAX_KNOWN + 1),
            ErrorCode::Unknown(MAX_KNOWN + 1)
        );
    }

    #[test]
    fn ok_and_result() {
        assert!(ErrorCode::None.is_ok());
        assert_eq!(ErrorCode::None.into_result(), Ok(()));
        assert!(!ErrorCode::UnknownServerError.is_ok());
        assert_eq!(
            ErrorCode::NotCoordinator.into_result(),
            Err(ErrorCode::NotCoordinator)
        );
    }

    #[test]
    fn display_and_error() {
        assert_eq!(
            ErrorCode::UnsupportedVersion.to_string(),
            "UNSUPPORTED_VERSION (35): The version of API is not supported."
        );
        assert_eq!(
            ErrorCode::UnknownServerError.to_string(),
            "UNKNOWN_SERVER_ERROR (-1): The server experienced an unexpected error when \
             processing the request."
        );
        assert_eq!(ErrorCode::None.to_string(), "NONE (0)");
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(ErrorCode::ProducerFenced);
        assert!(boxed
            .to_string()
            .starts_with("PRODUCER_FENCED (90): There is a newer producer"));
    }

    #[test]
    fn long_messages_join_java_concatenation() {
        // Java builds these from several `+`-joined literals; check the seams.
        assert_eq!(
            ErrorCode::InvalidSessionTimeout.message(),
            "The session timeout is not within the range allowed by the broker (as configured by \
             group.min.session.timeout.ms and group.max.session.timeout.ms)."
        );
        assert!(ErrorCode::UnknownProducerId
            .message()
            .contains("elapsed. Once the last records of the producerId are removed, the"));
        assert!(ErrorCode::NotLeaderOrFollower
            .message()
            .contains("not the current leader. For requests intended for any replica"));
    }
}
