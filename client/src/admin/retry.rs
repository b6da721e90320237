//! Retry decisions of the admin client, without I/O: which errors are retried, how long to
//! back off, and the per-item bookkeeping of a call (`Pending`).
//!
//! As Java's `KafkaAdminClient`, a call is retried with an exponential backoff
//! (`retry.backoff.ms` growing to `retry.backoff.max.ms`, ±20% jitter) until its deadline
//! (`default.api.timeout.ms` unless the call's options give a timeout). Items of a call that
//! got a final answer keep it; only the others are sent again. Time comes in as `now`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use kafka_wire::ErrorCode;

use crate::error::Error;
use crate::network::connection::saturating_add;
use crate::network::pool::ExponentialBackoff;

/// Whether the admin client retries a call (or an item of one) that failed with `error`:
/// routing errors that a new metadata or coordinator lookup can fix (NOT_CONTROLLER,
/// COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
/// LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER), REQUEST_TIMED_OUT, a request that timed
/// out and broken connections.
///
/// UNKNOWN_TOPIC_OR_PARTITION, retriable for the producer, is final here: an admin call on a
/// topic that does not exist reports it at once, as Java's topic calls do. The calls routed
/// to partition leaders (ListOffsets, DeleteRecords) retry every retriable error instead,
/// UNKNOWN_TOPIC_OR_PARTITION included ([`Error::is_retriable`]), as Java's
/// `PartitionLeaderStrategy` and its handlers.
pub fn is_retriable(error: &Error) -> bool {
    match error {
        Error::Kafka { code, .. } => matches!(
            code,
            ErrorCode::NotController
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::NotLeaderOrFollower
                | ErrorCode::RequestTimedOut
        ),
        Error::Timeout(_) | Error::Connection { .. } => true,
        _ => false,
    }
}

/// The deadline and backoff of one admin call.
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    deadline: Instant,
    backoff: ExponentialBackoff,
    attempts: u32,
}

impl Retrier {
    /// A call started at `now` that must complete within `timeout`, backing off from
    /// `retry_backoff` to `retry_backoff_max`.
    pub(crate) fn new(
        now: Instant,
        timeout: Duration,
        retry_backoff: Duration,
        retry_backoff_max: Duration,
    ) -> Self {
        Retrier {
            deadline: saturating_add(now, timeout),
            backoff: ExponentialBackoff::new(retry_backoff, 2.0, retry_backoff_max, 0.2),
            attempts: 0,
        }
    }

    /// The call's deadline.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The wait before the next attempt after a failed one, with the jitter drawn from
    /// `unit` (in `[0, 1)`); `None` when the attempt would start at or after the deadline.
    pub(crate) fn next_backoff(&mut self, now: Instant, unit: f64) -> Option<Duration> {
        let wait = self.backoff.backoff_with_jitter(self.attempts, unit);
        self.attempts = self.attempts.saturating_add(1);
        (saturating_add(now, wait) < self.deadline).then_some(wait)
    }
}

/// Per-item answers of an attempt.
pub(crate) type ItemResults<K, V> = Vec<(K, Result<V, Error>)>;

/// What to do after recording an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Every item has its answer.
    Done,
    /// Wait this long, then send the items still pending.
    RetryAfter(Duration),
}

/// The items of one call: those answered and those still to send, with their last
/// retriable error.
#[derive(Debug)]
pub(crate) struct Pending<K, V> {
    op: &'static str,
    pending: BTreeMap<K, Option<Error>>,
    done: BTreeMap<K, Result<V, Error>>,
    retrier: Retrier,
    retriable: fn(&Error) -> bool,
}

impl<K: Ord + Clone + Debug, V> Pending<K, V> {
    /// A call `op` (for error messages) on `keys` (duplicates merged), retrying the errors
    /// [`is_retriable`] accepts.
    pub(crate) fn new(
        op: &'static str,
        keys: impl IntoIterator<Item = K>,
        retrier: Retrier,
    ) -> Self {
        Pending {
            op,
            pending: keys.into_iter().map(|k| (k, None)).collect(),
            done: BTreeMap::new(),
            retrier,
            retriable: is_retriable,
        }
    }

    /// The same call, retrying the errors `retriable` accepts instead (the calls routed to
    /// partition leaders retry every retriable error, as Java's `PartitionLeaderStrategy`).
    pub(crate) fn retrying(mut self, retriable: fn(&Error) -> bool) -> Self {
        self.retriable = retriable;
        self
    }

    /// The items to send next, in order.
    pub(crate) fn keys(&self) -> Vec<K> {
        self.pending.keys().cloned().collect()
    }

    /// The call's deadline.
    pub(crate) fn deadline(&self) -> Instant {
        self.retrier.deadline()
    }

    /// Answers `key` without sending it (an argument checked locally).
    pub(crate) fn fail(&mut self, key: K, error: Error) {
        if self.pending.remove(&key).is_some() {
            self.done.insert(key, Err(error));
        }
    }

    /// Records the outcome of an attempt made with the pending items at `now`, drawing the
    /// backoff's jitter from `unit`: a failure of the whole attempt applies to every item;
    /// per-item answers are final unless retriable (by [`is_retriable`], or the policy given
    /// to [`retrying`](Self::retrying)); a pending item the outcome does not mention is a
    /// protocol error (the broker must answer every item it was asked).
    pub(crate) fn record(
        &mut self,
        outcome: Result<ItemResults<K, V>, Error>,
        now: Instant,
        unit: f64,
    ) -> Step {
        match outcome {
            Err(e) => {
                let retriable = (self.retriable)(&e);
                let keys = self.keys();
                for k in keys {
                    if retriable {
                        self.pending.insert(k, Some(e.clone()));
                    } else {
                        self.pending.remove(&k);
                        self.done.insert(k, Err(e.clone()));
                    }
                }
            }
            Ok(results) => {
                let mut seen = BTreeSet::new();
                for (k, r) in results {
                    if !self.pending.contains_key(&k) {
                        continue;
                    }
                    seen.insert(k.clone());
                    match r {
                        Err(e) if (self.retriable)(&e) => {
                            self.pending.insert(k, Some(e));
                        }
                        r => {
                            self.pending.remove(&k);
                            self.done.insert(k, r);
                        }
                    }
                }
                let missing: Vec<K> = self
                    .pending
                    .keys()
                    .filter(|k| !seen.contains(k))
                    .cloned()
                    .collect();
                for k in missing {
                    let e = Error::Protocol(format!(
                        "{}: the response does not mention {k:?}",
                        self.op
                    ));
                    self.pending.remove(&k);
                    self.done.insert(k, Err(e));
                }
            }
        }
        if self.pending.is_empty() {
            return Step::Done;
        }
        match self.retrier.next_backoff(now, unit) {
            Some(wait) => Step::RetryAfter(wait),
            None => {
                self.expire();
                Step::Done
            }
        }
    }

    /// Fails every pending item with a timeout naming its last error.
    pub(crate) fn expire(&mut self) {
        let op = self.op;
        for (k, last) in std::mem::take(&mut self.pending) {
            let why = last.map_or_else(String::new, |e| format!("; last error: {e}"));
            self.done
                .insert(k, Err(Error::Timeout(format!("{op} timed out{why}"))));
        }
    }

    /// Every item's answer (pending ones time out).
    pub(crate) fn finish(mut self) -> BTreeMap<K, Result<V, Error>> {
        self.expire();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(now: Instant, timeout_ms: u64) -> Retrier {
        Retrier::new(
            now,
            Duration::from_millis(timeout_ms),
            Duration::from_millis(100),
            Duration::from_millis(1000),
        )
    }

    fn kafka(code: ErrorCode) -> Error {
        Error::kafka(code)
    }

    #[test]
    fn retriable_errors_are_the_routing_ones() {
        for code in [
            ErrorCode::NotController,
            ErrorCode::CoordinatorNotAvailable,
            ErrorCode::NotCoordinator,
            ErrorCode::CoordinatorLoadInProgress,
            ErrorCode::LeaderNotAvailable,
            ErrorCode::NotLeaderOrFollower,
            ErrorCode::RequestTimedOut,
        ] {
            assert!(is_retriable(&kafka(code)), "{code}");
        }
        for code in [
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::TopicAlreadyExists,
            ErrorCode::InvalidPartitions,
            ErrorCode::GroupIdNotFound,
        ] {
            assert!(!is_retriable(&kafka(code)), "{code}");
        }
        assert!(is_retriable(&Error::Timeout("x".into())));
        assert!(is_retriable(&Error::Connection {
            broker: "b".into(),
            reason: "r".into()
        }));
        assert!(!is_retriable(&Error::UnsupportedVersion("x".into())));
        assert!(!is_retriable(&Error::Protocol("x".into())));
    }

    #[test]
    fn backoff_grows_and_stops_at_the_deadline() {
        let now = Instant::now();
        let mut r = retrier(now, 1_000);
        // unit 0.5: no jitter.
        assert_eq!(r.next_backoff(now, 0.5), Some(Duration::from_millis(100)));
        assert_eq!(r.next_backoff(now, 0.5), Some(Duration::from_millis(200)));
        assert_eq!(r.next_backoff(now, 0.5), Some(Duration::from_millis(400)));
        assert_eq!(r.next_backoff(now, 0.5), Some(Duration::from_millis(800)));
        // Capped at the max, and refused once it would end past the deadline.
        assert_eq!(r.next_backoff(now, 0.5), None);
        let mut r = retrier(now, 1_000);
        assert_eq!(r.next_backoff(now + Duration::from_millis(950), 0.5), None);
        // Jitter is ±20%.
        let mut r = retrier(now, 10_000);
        assert_eq!(r.next_backoff(now, 0.0), Some(Duration::from_millis(80)));
    }

    #[test]
    fn final_answers_are_kept_and_retriable_ones_resent() {
        let now = Instant::now();
        let mut p: Pending<&str, u32> =
            Pending::new("createTopics", ["a", "b", "c"], retrier(now, 5_000));
        let step = p.record(
            Ok(vec![
                ("a", Ok(1)),
                ("b", Err(kafka(ErrorCode::NotController))),
                ("c", Err(kafka(ErrorCode::TopicAlreadyExists))),
                ("zzz", Ok(9)), // not asked: ignored
            ]),
            now,
            0.5,
        );
        assert_eq!(step, Step::RetryAfter(Duration::from_millis(100)));
        assert_eq!(p.keys(), ["b"]);
        let step = p.record(
            Ok(vec![("b", Ok(2))]),
            now + Duration::from_millis(100),
            0.5,
        );
        assert_eq!(step, Step::Done);
        let done = p.finish();
        assert_eq!(done["a"], Ok(1));
        assert_eq!(done["b"], Ok(2));
        assert_eq!(
            done["c"].as_ref().unwrap_err().code(),
            Some(ErrorCode::TopicAlreadyExists)
        );
    }

    #[test]
    fn whole_attempt_failures_apply_to_every_pending_item() {
        let now = Instant::now();
        let mut p: Pending<i32, ()> = Pending::new("op", [1, 2], retrier(now, 5_000));
        let conn = Error::Connection {
            broker: "b".into(),
            reason: "reset".into(),
        };
        assert!(matches!(p.record(Err(conn), now, 0.5), Step::RetryAfter(_)));
        assert_eq!(p.keys(), [1, 2]);
        assert_eq!(
            p.record(
                Err(Error::UnsupportedVersion("DeleteRecords".into())),
                now,
                0.5
            ),
            Step::Done
        );
        let done = p.finish();
        assert!(matches!(done[&1], Err(Error::UnsupportedVersion(_))));
        assert!(matches!(done[&2], Err(Error::UnsupportedVersion(_))));
    }

    #[test]
    fn out_of_time_items_time_out_naming_their_last_error() {
        let now = Instant::now();
        let mut p: Pending<i32, ()> = Pending::new("describeGroups", [1], retrier(now, 150));
        assert!(matches!(
            p.record(
                Ok(vec![(1, Err(kafka(ErrorCode::CoordinatorLoadInProgress)))]),
                now,
                0.5
            ),
            Step::RetryAfter(_)
        ));
        let later = now + Duration::from_millis(100);
        assert_eq!(
            p.record(
                Ok(vec![(1, Err(kafka(ErrorCode::CoordinatorLoadInProgress)))]),
                later,
                0.5
            ),
            Step::Done
        );
        match &p.finish()[&1] {
            Err(Error::Timeout(m)) => {
                assert!(
                    m.contains("describeGroups") && m.contains("COORDINATOR_LOAD_IN_PROGRESS"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_call_can_retry_other_errors() {
        let now = Instant::now();
        let mut p: Pending<i32, ()> = Pending::new("listOffsets", [1, 2, 3], retrier(now, 5_000))
            .retrying(Error::is_retriable);
        let step = p.record(
            Ok(vec![
                (1, Err(kafka(ErrorCode::UnknownTopicOrPartition))),
                (2, Err(kafka(ErrorCode::OffsetNotAvailable))),
                (3, Err(kafka(ErrorCode::TopicAuthorizationFailed))),
            ]),
            now,
            0.5,
        );
        assert!(matches!(step, Step::RetryAfter(_)));
        assert_eq!(p.keys(), [1, 2]);
        // The policy also decides for a failure of the whole attempt.
        assert!(matches!(
            p.record(Err(kafka(ErrorCode::UnknownTopicOrPartition)), now, 0.5),
            Step::RetryAfter(_)
        ));
        assert_eq!(p.record(Err(Error::Closed), now, 0.5), Step::Done);
        let done = p.finish();
        assert_eq!(done[&1], Err(Error::Closed));
        assert_eq!(
            done[&3].as_ref().unwrap_err().code(),
            Some(ErrorCode::TopicAuthorizationFailed)
        );
    }

    #[test]
    fn unanswered_items_are_protocol_errors_and_local_failures_are_kept() {
        let now = Instant::now();
        let mut p: Pending<i32, ()> = Pending::new("op", [1, 2, 3], retrier(now, 5_000));
        p.fail(3, Error::InvalidArgument("bad".into()));
        assert_eq!(p.keys(), [1, 2]);
        assert_eq!(p.record(Ok(vec![(1, Ok(()))]), now, 0.5), Step::Done);
        let done = p.finish();
        assert_eq!(done[&1], Ok(()));
        assert!(matches!(done[&2], Err(Error::Protocol(_))));
        assert!(matches!(done[&3], Err(Error::InvalidArgument(_))));
    }
}
