//! Group consumption types of the [`Consumer`]: the rebalance listener, the group
//! metadata, and the group state the consumer shares with its I/O task.
//!
//! The [`ConsumerCoordinator`] state machine is driven by the consumer's background I/O task
//! (FindCoordinator to any broker, JoinGroup / SyncGroup / Heartbeat / LeaveGroup to the
//! coordinator over a connection of its own, so a JoinGroup waiting for a rebalance never
//! holds fetches up). The listener callbacks it asks for are queued here and run by the
//! application's next `poll` (on the caller's task, so a listener can commit); the machine's
//! later requests wait until they have run.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_wire::messages::OffsetCommitResponse;
use kafka_wire::ErrorCode;

use super::assignor::{
    self, ConsumerPartitionAssignor, CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor,
    StickyAssignor,
};
use super::coordinator::{
    CommitError, CommittedOffset, ConsumerCoordinator, CoordinatorConfig, CoordinatorNode,
    OffsetAndMetadata,
};
use super::Consumer;
use crate::config::ConsumerConfig;
use crate::error::Error;
use crate::producer::TopicPartition;

/// Java's `ConsumerRebalanceListener`: told about partitions that the group takes away or
/// gives. The callbacks run inside [`Consumer::poll`] (and [`Consumer::unsubscribe`] /
/// [`Consumer::close`]) on the caller's task, with the consumer, so they can commit
/// ([`Consumer::commit_sync`]), [`seek`](Consumer::seek) or look up positions. They must not
/// call `poll`. A callback interrupted by cancelling the poll that runs it runs again at the
/// next poll.
///
/// * `on_partitions_revoked`: before a rebalance takes partitions away (all of them with the
///   eager protocol, only the moved ones with the cooperative one) and on close/unsubscribe;
///   the partitions are still assigned, so their positions can be committed. With
///   `enable.auto.commit` the consumed offsets are committed just before.
/// * `on_partitions_assigned`: after a rebalance, with the newly added partitions (possibly
///   none); they are assigned, positions are looked up afterwards (committed offset, else
///   `auto.offset.reset`) unless the callback seeks.
/// * `on_partitions_lost`: the partitions may already belong to another member (the member
///   was fenced or timed out); committing for them would fail. Defaults to
///   `on_partitions_revoked`, as in Java.
///
/// # Errors
/// A callback that returns an error does not stop the rebalance (Java's behaviour when a
/// listener throws): the assignment changes all the same — revoked and lost partitions are
/// dropped, assigned ones added — and the error is returned, unchanged, by the `poll` that
/// ran the callback (Java rethrows it from `poll`); the callbacks still queued run at the
/// next poll. From [`Consumer::unsubscribe`] and [`Consumer::close`] the first callback error
/// is returned once the member has left the group. Use [`Error::Callback`] for errors of
/// your own, or pass on the consumer's (`consumer.commit_sync(None).await?`).
///
/// # Examples
/// ```no_run
/// use futures::future::BoxFuture;
/// use kafka_client::consumer::{Consumer, ConsumerRebalanceListener, TopicPartition};
/// use kafka_client::Error;
///
/// /// Commits what was processed before the partitions go to another member.
/// struct CommitOnRevoke;
///
/// impl ConsumerRebalanceListener for CommitOnRevoke {
///     fn on_partitions_revoked<'a>(
///         &'a self,
///         consumer: &'a Consumer,
///         _partitions: &'a [TopicPartition],
///     ) -> BoxFuture<'a, Result<(), Error>> {
///         // A failed commit is returned by the poll that ran the callback.
///         Box::pin(async move { consumer.commit_sync(None).await })
///     }
/// }
/// ```
pub trait ConsumerRebalanceListener<K = bytes::Bytes, V = bytes::Bytes>: Send + Sync {
    /// Partitions are about to be taken away (see the trait documentation).
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer<K, V>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<(), Error>> {
        let _ = (consumer, partitions);
        Box::pin(async { Ok(()) })
    }

    /// Partitions were added to the assignment (see the trait documentation).
    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer<K, V>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<(), Error>> {
        let _ = (consumer, partitions);
        Box::pin(async { Ok(()) })
    }

    /// Partitions were lost (see the trait documentation); defaults to
    /// [`on_partitions_revoked`](Self::on_partitions_revoked).
    fn on_partitions_lost<'a>(
        &'a self,
        consumer: &'a Consumer<K, V>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// The listener used when none is set: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOpRebalanceListener;

impl<K, V> ConsumerRebalanceListener<K, V> for NoOpRebalanceListener {}

/// Java's `ConsumerGroupMetadata`: who the consumer is in its group, for transactional
/// producers (`sendOffsetsToTransaction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The current generation, -1 when not in the group (or with manual assignment).
    pub generation_id: i32,
    /// The member id, empty when not in the group.
    pub member_id: String,
    /// `group.instance.id`, for a static member.
    pub group_instance_id: Option<String>,
}

/// Called once an asynchronous commit completed ([`Consumer::commit_async`]), with its
/// result and the offsets it carried. Runs on the consumer's I/O task: it must not block.
pub type OffsetCommitCallback =
    Box<dyn FnOnce(Result<(), Error>, &HashMap<TopicPartition, OffsetAndMetadata>) + Send>;

/// How the consumer gets its partitions (Java's `SubscriptionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Neither subscribed nor assigned.
    None,
    /// `assign`.
    Manual,
    /// `subscribe`.
    Subscribed,
}

/// A listener callback the coordinator asked for, to be run on the poll path.
#[derive(Debug, Clone)]
pub(super) enum Callback {
    Revoked(Vec<TopicPartition>),
    Assigned(Vec<TopicPartition>),
    Lost(Vec<TopicPartition>),
}

/// A queued [`Consumer::commit_async`] (or auto-commit, without callback).
pub(super) struct AsyncCommit {
    pub(super) offsets: BTreeMap<assignor::TopicPartition, OffsetAndMetadata>,
    pub(super) callback: Option<OffsetCommitCallback>,
}

impl std::fmt::Debug for AsyncCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncCommit")
            .field("offsets", &self.offsets)
            .finish_non_exhaustive()
    }
}

impl AsyncCommit {
    /// Runs the callback (if any) with `result`.
    pub(super) fn complete(self, result: Result<(), Error>) {
        match self.callback {
            Some(cb) => {
                let offsets = from_commit_map(&self.offsets);
                cb(result, &offsets);
            }
            None => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "asynchronous auto-commit of offsets failed");
                }
            }
        }
    }
}

/// The group side of the consumer's shared state.
#[derive(Debug)]
pub(super) struct GroupState {
    pub(super) mode: Mode,
    /// The state machine, while subscribed.
    pub(super) coordinator: Option<ConsumerCoordinator>,
    /// Bumped whenever `coordinator` is replaced: answers for an older machine are dropped.
    pub(super) machine: u64,
    /// Listener callbacks waiting for the poll path; the machine's other actions wait too.
    pub(super) callbacks: VecDeque<Callback>,
    /// A poll is running the callbacks.
    pub(super) in_callbacks: bool,
    /// `close` / `unsubscribe` drive the machine themselves: the I/O task leaves it alone.
    pub(super) leaving: bool,
    /// The pattern of a [`Consumer::subscribe_pattern`] subscription.
    pub(super) pattern: Option<TopicPattern>,
    /// The pattern was matched against a metadata update since it was set: the machine
    /// may join (before that its subscription is not known yet).
    pub(super) pattern_evaluated: bool,
    /// The machine's fatal error, returned by every poll.
    pub(super) fatal: Option<Error>,
    /// The coordinator found for commits and offset fetches outside a subscription.
    pub(super) manual_coordinator: Option<CoordinatorNode>,
    pub(super) async_commits: VecDeque<AsyncCommit>,
    /// Asynchronous commits queued or in flight.
    pub(super) async_pending: usize,
}

impl GroupState {
    pub(super) fn new() -> Self {
        GroupState {
            mode: Mode::None,
            coordinator: None,
            machine: 0,
            callbacks: VecDeque::new(),
            in_callbacks: false,
            leaving: false,
            pattern: None,
            pattern_evaluated: false,
            fatal: None,
            manual_coordinator: None,
            async_commits: VecDeque::new(),
            async_pending: 0,
        }
    }

    /// Whether the machine waits for the first match of its subscription pattern.
    pub(super) fn awaiting_pattern_match(&self) -> bool {
        self.pattern.is_some() && !self.pattern_evaluated
    }

    /// The machine when subscribed (and not leaving).
    pub(super) fn active(&mut self) -> Option<&mut ConsumerCoordinator> {
        if self.mode == Mode::Subscribed && !self.leaving {
            self.coordinator.as_mut()
        } else {
            None
        }
    }
}

/// A subscription pattern (Java's `subscribe(Pattern)`): a topic is subscribed to when the
/// whole name matches (Java's `Pattern.matcher(topic).matches()`), so `events` does not
/// match `events-1` while `events.*` does.
///
/// The syntax is the `regex` crate's, which agrees with `java.util.regex` on the constructs
/// topic patterns use (classes, alternation, repetition, anchors, `(?i)`); look-around and
/// back-references are not supported.
#[derive(Debug, Clone)]
pub(super) struct TopicPattern {
    source: String,
    regex: regex::Regex,
}

impl TopicPattern {
    /// Compiles `pattern`, anchored at both ends.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or invalid pattern.
    pub(super) fn new(pattern: &str) -> Result<Self, Error> {
        if pattern.is_empty() {
            return Err(Error::InvalidArgument(
                "Topic pattern to subscribe to cannot be empty".into(),
            ));
        }
        let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            Error::InvalidArgument(format!("invalid topic pattern {pattern:?}: {e}"))
        })?;
        Ok(TopicPattern {
            source: pattern.to_owned(),
            regex,
        })
    }

    /// The pattern as given.
    pub(super) fn as_str(&self) -> &str {
        &self.source
    }

    /// The topics among `(name, is_internal)` the pattern matches, internal topics
    /// excluded when `exclude_internal` (`exclude.internal.topics`); Java's
    /// `ConsumerMetadata` + `subscribeFromPattern`.
    pub(super) fn matching<'a>(
        &self,
        topics: impl IntoIterator<Item = (&'a str, bool)>,
        exclude_internal: bool,
    ) -> BTreeSet<String> {
        topics
            .into_iter()
            .filter(|(_, internal)| !(exclude_internal && *internal))
            .filter(|(name, _)| self.regex.is_match(name))
            .map(|(name, _)| name.to_owned())
            .collect()
    }
}

/// The assignor of a `partition.assignment.strategy` name.
///
/// # Errors
/// [`Error::Config`] for an unknown name.
pub(super) fn assignor_by_name(name: &str) -> Result<Arc<dyn ConsumerPartitionAssignor>, Error> {
    Ok(match name {
        "range" => Arc::new(RangeAssignor),
        "roundrobin" => Arc::new(RoundRobinAssignor),
        "sticky" => Arc::new(StickyAssignor),
        "cooperative-sticky" => Arc::new(CooperativeStickyAssignor),
        other => {
            return Err(Error::Config {
                key: "partition.assignment.strategy".into(),
                reason: format!("unknown assignor {other}"),
            })
        }
    })
}

/// The coordinator settings of a consumer in group `group_id`.
///
/// # Errors
/// [`Error::Config`] for an unknown assignor.
pub(super) fn coordinator_config(
    config: &ConsumerConfig,
    group_id: &str,
) -> Result<CoordinatorConfig, Error> {
    let mut c = CoordinatorConfig::new(group_id);
    c.group_instance_id = config.group_instance_id.clone();
    c.session_timeout = config.session_timeout;
    c.rebalance_timeout = config.max_poll_interval;
    c.heartbeat_interval = config.heartbeat_interval;
    c.retry_backoff = config.retry_backoff;
    c.request_timeout = config.request_timeout;
    c.auto_commit_interval = config
        .enable_auto_commit
        .then_some(config.auto_commit_interval);
    c.client_rack = config.client_rack.clone().filter(|r| !r.is_empty());
    c.assignors = config
        .partition_assignment_strategy
        .iter()
        .map(|n| assignor_by_name(n))
        .collect::<Result<_, _>>()?;
    Ok(c)
}

/// The consumer's partition type to the assignors'.
pub(super) fn to_group_tp(tp: &TopicPartition) -> assignor::TopicPartition {
    assignor::TopicPartition::new(tp.topic.to_string(), tp.partition)
}

/// The assignors' partition type to the consumer's.
pub(super) fn from_group_tp(tp: &assignor::TopicPartition) -> TopicPartition {
    TopicPartition {
        topic: Arc::from(tp.topic.as_str()),
        partition: tp.partition,
    }
}

pub(super) fn from_group_tps(tps: &[assignor::TopicPartition]) -> Vec<TopicPartition> {
    tps.iter().map(from_group_tp).collect()
}

/// Offsets to commit keyed the coordinator's way.
///
/// # Errors
/// [`Error::InvalidArgument`] for a negative offset, an empty topic or a negative partition.
pub(super) fn to_commit_map(
    offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
) -> Result<BTreeMap<assignor::TopicPartition, OffsetAndMetadata>, Error> {
    let mut out = BTreeMap::new();
    for (tp, o) in offsets {
        if tp.topic.is_empty() || tp.partition < 0 {
            return Err(Error::InvalidArgument(format!(
                "invalid partition to commit: {tp}"
            )));
        }
        if o.offset < 0 {
            return Err(Error::InvalidArgument(format!(
                "Invalid negative offset {} for {tp}",
                o.offset
            )));
        }
        out.insert(to_group_tp(tp), o.clone());
    }
    Ok(out)
}

pub(super) fn from_commit_map(
    offsets: &BTreeMap<assignor::TopicPartition, OffsetAndMetadata>,
) -> HashMap<TopicPartition, OffsetAndMetadata> {
    offsets
        .iter()
        .map(|(tp, o)| (from_group_tp(tp), o.clone()))
        .collect()
}

/// A committed offset as Java's `OffsetAndMetadata`.
pub(super) fn committed_to_offset(c: &CommittedOffset) -> OffsetAndMetadata {
    OffsetAndMetadata {
        offset: c.offset,
        leader_epoch: c.leader_epoch,
        metadata: c.metadata.clone(),
    }
}

/// The error a caller sees for a failed commit or offset fetch.
pub(super) fn commit_error(e: CommitError) -> Error {
    match e {
        CommitError::Retriable(e) | CommitError::Fatal(e) => e,
        CommitError::RebalanceInProgress => Error::kafka_with_message(
            ErrorCode::RebalanceInProgress,
            Some(
                "Offset commit cannot be completed since the consumer is undergoing a \
                 rebalance for auto partition assignment. You can try completing the \
                 rebalance by calling poll() and then retry the operation."
                    .into(),
            ),
        ),
        CommitError::CommitFailed => Error::kafka_with_message(
            ErrorCode::IllegalGeneration,
            Some(
                "Commit cannot be completed since the group has already rebalanced and \
                 assigned the partitions to another member (CommitFailedException)"
                    .into(),
            ),
        ),
    }
}

/// Reads an OffsetCommit response for a commit outside a subscription (generation -1):
/// Java's `OffsetCommitResponseHandler` without the generation handling. The `bool` is
/// whether the coordinator must be looked up again.
pub(super) fn classify_manual_commit(
    response: &OffsetCommitResponse,
) -> (Result<(), CommitError>, bool) {
    for topic in &response.topics {
        for p in &topic.partitions {
            let code = ErrorCode::from_code(p.error_code);
            let err = Error::kafka(code);
            return match code {
                ErrorCode::None => continue,
                ErrorCode::CoordinatorNotAvailable
                | ErrorCode::NotCoordinator
                | ErrorCode::RequestTimedOut => (Err(CommitError::Retriable(err)), true),
                ErrorCode::RebalanceInProgress => (Err(CommitError::RebalanceInProgress), false),
                ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                    (Err(CommitError::CommitFailed), false)
                }
                c if c.is_retriable() => (Err(CommitError::Retriable(err)), false),
                _ => (Err(CommitError::Fatal(err)), false),
            };
        }
    }
    (Ok(()), false)
}

/// The partitions of `current` without `removed`.
pub(super) fn without(
    current: Vec<TopicPartition>,
    removed: &[TopicPartition],
) -> Vec<TopicPartition> {
    let removed: BTreeSet<&TopicPartition> = removed.iter().collect();
    current
        .into_iter()
        .filter(|tp| !removed.contains(tp))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPICS: [(&str, bool); 6] = [
        ("events", false),
        ("events-1", false),
        ("events-22", false),
        ("EVENTS-3", false),
        ("audit", false),
        ("__consumer_offsets", true),
    ];

    fn matching(pattern: &str, exclude_internal: bool) -> Vec<String> {
        TopicPattern::new(pattern)
            .unwrap()
            .matching(TOPICS, exclude_internal)
            .into_iter()
            .collect()
    }

    #[test]
    fn patterns_match_whole_topic_names_as_java_does() {
        assert_eq!(matching("events", true), ["events"]);
        assert_eq!(matching("events-.*", true), ["events-1", "events-22"]);
        assert_eq!(matching("events-\\d", true), ["events-1"]);
        assert_eq!(
            matching("(?i)events-\\d+", true),
            ["EVENTS-3", "events-1", "events-22"]
        );
        assert_eq!(matching("audit|events", true), ["audit", "events"]);
        assert_eq!(matching("vent", true), Vec::<String>::new());
    }

    #[test]
    fn internal_topics_only_when_not_excluded() {
        assert_eq!(matching("__.*", true), Vec::<String>::new());
        assert_eq!(matching("__.*", false), ["__consumer_offsets"]);
        assert_eq!(matching(".*", true).len(), 5);
        assert_eq!(matching(".*", false).len(), 6);
    }

    #[test]
    fn bad_patterns_are_invalid_arguments() {
        for bad in ["", "events-(", "[z-a]", "(?<=x)y"] {
            assert!(
                matches!(TopicPattern::new(bad), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
        assert_eq!(TopicPattern::new("a|b").unwrap().as_str(), "a|b");
    }
}
