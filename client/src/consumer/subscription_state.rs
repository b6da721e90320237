//! [`SubscriptionState`]: what the consumer reads and where it is (Java's
//! `SubscriptionState`), for manual assignment.
//!
//! Pure and deterministic (no I/O; `now` is passed in): for every assigned partition, the
//! fetch position (offset and leader epoch), whether it is paused, whether an offset reset is
//! pending (earliest / latest, or "none", which is an error for the caller), and the high
//! watermark, last stable offset and log start offset the last fetch reported.
//!
//! A partition is *fetchable* when it is assigned, has a position, and is not paused. A
//! partition without a position waits for a reset (a ListOffsets lookup, see
//! [`fetcher`](super::fetcher)); with reset strategy "none" it has no valid position and
//! [`SubscriptionState::missing_position_error`] names it.
//!
//! With a consumer group, newly assigned partitions first wait for their committed offset
//! (Java's `INITIALIZING` state, [`SubscriptionState::assign_awaiting_committed`]): an
//! OffsetFetch gives the position ([`SubscriptionState::committed_fetched`]), and only a
//! partition without a committed offset falls back to the reset strategy.

use std::collections::BTreeMap;
use std::time::Instant;

use kafka_wire::ErrorCode;

use crate::error::Error;
use crate::producer::TopicPartition;

/// Where the consumer reads a partition next: Java's `FetchPosition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FetchPosition {
    /// The offset of the next record to return.
    pub offset: i64,
    /// The leader epoch of the last record read (or the epoch the offset was looked up in),
    /// when known; sent as `current_leader_epoch` with Fetch requests.
    pub leader_epoch: Option<i32>,
}

impl FetchPosition {
    /// A position at `offset`, epoch unknown.
    pub fn new(offset: i64) -> Self {
        FetchPosition {
            offset,
            leader_epoch: None,
        }
    }
}

/// Where an offset reset moves a partition (`auto.offset.reset` or an explicit
/// `seek_to_beginning` / `seek_to_end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetStrategy {
    /// The log start offset (ListOffsets timestamp -2).
    Earliest,
    /// The log end offset: the high watermark, or the last stable offset for read_committed
    /// (ListOffsets timestamp -1).
    Latest,
}

impl ResetStrategy {
    /// The ListOffsets timestamp that looks up this position (-2 earliest, -1 latest).
    pub fn timestamp(self) -> i64 {
        match self {
            ResetStrategy::Earliest => -2,
            ResetStrategy::Latest => -1,
        }
    }
}

/// The state of one assigned partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionState {
    /// The fetch position; `None` while the partition waits for a reset.
    pub position: Option<FetchPosition>,
    /// Paused by the application: not fetched, nothing returned.
    pub paused: bool,
    /// A pending offset reset; `None` with no position means the default strategy is
    /// "none" and the partition has no valid offset.
    pub reset: Option<ResetStrategy>,
    /// When the pending reset may be (re)tried; `None` means now. Set while a lookup is in
    /// flight (to its deadline) and after a failure (backoff).
    pub reset_next_attempt: Option<Instant>,
    /// The high watermark from the last fetch.
    pub high_watermark: Option<i64>,
    /// The last stable offset from the last fetch.
    pub last_stable_offset: Option<i64>,
    /// The log start offset from the last fetch.
    pub log_start_offset: Option<i64>,
    /// Bumped at every change of position made by the application or a reset, so a fetch
    /// issued before it can be recognised as stale.
    pub epoch: u64,
    /// Waiting for the group's committed offset (OffsetFetch) before any reset; the
    /// lookup's next attempt is `reset_next_attempt`.
    pub awaiting_committed: bool,
}

/// The assigned partitions and their positions (Java's `SubscriptionState`, manual
/// assignment only).
#[derive(Debug, Clone)]
pub struct SubscriptionState {
    assignment: BTreeMap<TopicPartition, PartitionState>,
    default_reset: Option<ResetStrategy>,
    next_epoch: u64,
}

impl SubscriptionState {
    /// An empty assignment; `default_reset` is `auto.offset.reset` (`None` for "none").
    pub fn new(default_reset: Option<ResetStrategy>) -> Self {
        SubscriptionState {
            assignment: BTreeMap::new(),
            default_reset,
            next_epoch: 0,
        }
    }

    /// The default reset strategy (`auto.offset.reset`; `None` for "none").
    pub fn default_reset(&self) -> Option<ResetStrategy> {
        self.default_reset
    }

    fn bump(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    /// Replaces the assignment. Partitions that stay assigned keep their state (position,
    /// paused flag); new ones have no position and await a reset with the default strategy.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let mut next = BTreeMap::new();
        for tp in partitions {
            if next.contains_key(&tp) {
                continue;
            }
            let state = match self.assignment.remove(&tp) {
                Some(s) => s,
                None => PartitionState {
                    reset: self.default_reset,
                    epoch: self.bump(),
                    ..PartitionState::default()
                },
            };
            next.insert(tp, state);
        }
        self.assignment = next;
    }

    /// Replaces the assignment like [`assign`](Self::assign), but newly assigned partitions
    /// first wait for their committed offset ([`committed_due`](Self::committed_due)).
    pub fn assign_awaiting_committed(
        &mut self,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) {
        let before: Vec<TopicPartition> = self.assigned();
        self.assign(partitions);
        for (tp, s) in self.assignment.iter_mut() {
            if before.binary_search(tp).is_err() {
                s.awaiting_committed = true;
            }
        }
    }

    /// Partitions waiting for their committed offset whose lookup can be (re)tried now, with
    /// their state epochs (for [`committed_fetched`](Self::committed_fetched)). Mark them
    /// with [`reset_attempted`](Self::reset_attempted) while the lookup is in flight.
    pub fn committed_due(&self, now: Instant) -> Vec<(TopicPartition, u64)> {
        self.assignment
            .iter()
            .filter(|(_, s)| s.awaiting_committed && s.position.is_none())
            .filter(|(_, s)| s.reset_next_attempt.is_none_or(|t| now >= t))
            .map(|(tp, s)| (tp.clone(), s.epoch))
            .collect()
    }

    /// Applies a committed-offset lookup for `tp` (`None`: nothing committed, so the reset
    /// strategy applies), unless the partition changed meanwhile (`epoch` differs: a seek,
    /// reassignment). Returns whether it was applied.
    pub fn committed_fetched(
        &mut self,
        tp: &TopicPartition,
        epoch: u64,
        committed: Option<FetchPosition>,
    ) -> bool {
        let next = self.bump();
        match self.assignment.get_mut(tp) {
            Some(s) if s.epoch == epoch && s.awaiting_committed && s.position.is_none() => {
                s.awaiting_committed = false;
                s.reset_next_attempt = None;
                s.epoch = next;
                if let Some(p) = committed {
                    s.position = Some(p);
                    s.reset = None;
                }
                true
            }
            _ => false,
        }
    }

    /// Every assigned partition with a position: what a commit of the consumed offsets
    /// commits (Java's `allConsumed`).
    pub fn all_consumed(&self) -> Vec<(TopicPartition, FetchPosition)> {
        self.assignment
            .iter()
            .filter_map(|(tp, s)| s.position.map(|p| (tp.clone(), p)))
            .collect()
    }

    /// The assigned partitions, sorted.
    pub fn assigned(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    /// Whether `tp` is assigned.
    pub fn is_assigned(&self, tp: &TopicPartition) -> bool {
        self.assignment.contains_key(tp)
    }

    /// The topics of the assigned partitions, sorted and deduplicated.
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .assignment
            .keys()
            .map(|tp| tp.topic.to_string())
            .collect();
        t.dedup();
        t
    }

    /// The state of `tp`, if it is assigned.
    pub fn state(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        self.assignment.get(tp)
    }

    fn state_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState, Error> {
        self.assignment.get_mut(tp).ok_or_else(|| not_assigned(tp))
    }

    /// Moves the position of `tp` to `offset` (clearing any pending reset).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tp` is not assigned or `offset` is negative.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), Error> {
        self.seek_with_epoch(tp, FetchPosition::new(offset))
    }

    /// Moves the position of `tp` to `position` (clearing any pending reset).
    ///
    /// # Errors
    /// As [`seek`](Self::seek).
    pub fn seek_with_epoch(
        &mut self,
        tp: &TopicPartition,
        position: FetchPosition,
    ) -> Result<(), Error> {
        if position.offset < 0 {
            return Err(Error::InvalidArgument(format!(
                "seek offset must not be negative: {}",
                position.offset
            )));
        }
        let epoch = self.bump();
        let s = self.state_mut(tp)?;
        s.position = Some(position);
        s.reset = None;
        s.reset_next_attempt = None;
        s.awaiting_committed = false;
        s.epoch = epoch;
        Ok(())
    }

    /// Marks `tp` for a reset with `strategy` (Java's `requestOffsetReset`): the position is
    /// cleared and looked up again.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tp` is not assigned.
    pub fn request_reset(
        &mut self,
        tp: &TopicPartition,
        strategy: ResetStrategy,
    ) -> Result<(), Error> {
        let epoch = self.bump();
        let s = self.state_mut(tp)?;
        s.position = None;
        s.reset = Some(strategy);
        s.reset_next_attempt = None;
        s.awaiting_committed = false;
        s.epoch = epoch;
        Ok(())
    }

    /// Marks every partition in `tps` for a reset to the earliest offset (all assigned ones
    /// when `tps` is empty).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned (then none is changed).
    pub fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<(), Error> {
        self.reset_many(tps, ResetStrategy::Earliest)
    }

    /// Marks every partition in `tps` for a reset to the latest offset (all assigned ones
    /// when `tps` is empty).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned (then none is changed).
    pub fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<(), Error> {
        self.reset_many(tps, ResetStrategy::Latest)
    }

    fn reset_many(&mut self, tps: &[TopicPartition], strategy: ResetStrategy) -> Result<(), Error> {
        let tps = if tps.is_empty() {
            self.assigned()
        } else {
            if let Some(tp) = tps.iter().find(|tp| !self.is_assigned(tp)) {
                return Err(not_assigned(tp));
            }
            tps.to_vec()
        };
        for tp in &tps {
            self.request_reset(tp, strategy)?;
        }
        Ok(())
    }

    /// Pauses `tps`: they are not fetched and [`fetchable`](Self::fetchable) skips them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned (then none is changed).
    pub fn pause(&mut self, tps: &[TopicPartition]) -> Result<(), Error> {
        self.set_paused(tps, true)
    }

    /// Resumes paused partitions.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned (then none is changed).
    pub fn resume(&mut self, tps: &[TopicPartition]) -> Result<(), Error> {
        self.set_paused(tps, false)
    }

    fn set_paused(&mut self, tps: &[TopicPartition], paused: bool) -> Result<(), Error> {
        if let Some(tp) = tps.iter().find(|tp| !self.is_assigned(tp)) {
            return Err(not_assigned(tp));
        }
        for tp in tps {
            if let Some(s) = self.assignment.get_mut(tp) {
                s.paused = paused;
            }
        }
        Ok(())
    }

    /// Whether `tp` is paused (false when not assigned).
    pub fn is_paused(&self, tp: &TopicPartition) -> bool {
        self.assignment.get(tp).is_some_and(|s| s.paused)
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assignment
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The position of `tp`, when it has one.
    pub fn position(&self, tp: &TopicPartition) -> Option<FetchPosition> {
        self.assignment.get(tp).and_then(|s| s.position)
    }

    /// Advances the position of `tp` after records were returned (Java updates the
    /// position only forwards); ignored when the partition is no longer assigned or has no
    /// position.
    pub fn advance(&mut self, tp: &TopicPartition, position: FetchPosition) {
        if let Some(s) = self.assignment.get_mut(tp) {
            if s.position.is_some_and(|p| position.offset > p.offset) {
                s.position = Some(position);
            }
        }
    }

    /// Whether every assigned partition has a position.
    pub fn has_all_positions(&self) -> bool {
        self.assignment.values().all(|s| s.position.is_some())
    }

    /// Partitions that can be fetched: assigned, with a position, not paused; in assignment
    /// order.
    pub fn fetchable(&self) -> Vec<(TopicPartition, FetchPosition)> {
        self.assignment
            .iter()
            .filter(|(_, s)| !s.paused)
            .filter_map(|(tp, s)| s.position.map(|p| (tp.clone(), p)))
            .collect()
    }

    /// Whether `tp` is fetchable at `offset` now: assigned, not paused, and its position is
    /// `offset` (fetched data for any other offset is stale).
    pub fn is_fetchable_at(&self, tp: &TopicPartition, offset: i64) -> bool {
        self.assignment
            .get(tp)
            .is_some_and(|s| !s.paused && s.position.is_some_and(|p| p.offset == offset))
    }

    /// Partitions whose reset can be looked up now, with the strategy and the state epoch
    /// (to pass back to [`reset_done`](Self::reset_done)).
    pub fn resets_due(&self, now: Instant) -> Vec<(TopicPartition, ResetStrategy, u64)> {
        self.assignment
            .iter()
            .filter(|(_, s)| s.position.is_none() && !s.awaiting_committed)
            .filter(|(_, s)| s.reset_next_attempt.is_none_or(|t| now >= t))
            .filter_map(|(tp, s)| s.reset.map(|r| (tp.clone(), r, s.epoch)))
            .collect()
    }

    /// The earliest time a pending reset (or committed-offset lookup) can be retried, if one
    /// is waiting.
    pub fn next_reset_attempt(&self) -> Option<Instant> {
        self.assignment
            .values()
            .filter(|s| s.position.is_none() && (s.reset.is_some() || s.awaiting_committed))
            .filter_map(|s| s.reset_next_attempt)
            .min()
    }

    /// Records that a reset lookup for `tp` is in flight or failed: it is not retried
    /// before `until`.
    pub fn reset_attempted(&mut self, tp: &TopicPartition, until: Instant) {
        if let Some(s) = self.assignment.get_mut(tp) {
            s.reset_next_attempt = Some(until);
        }
    }

    /// Applies a reset lookup's answer, unless the partition changed meanwhile (`epoch`
    /// differs: a seek, a new reset, reassignment). Returns whether it was applied.
    pub fn reset_done(&mut self, tp: &TopicPartition, epoch: u64, position: FetchPosition) -> bool {
        let next = self.bump();
        match self.assignment.get_mut(tp) {
            Some(s) if s.epoch == epoch && s.position.is_none() && !s.awaiting_committed => {
                s.position = Some(position);
                s.reset = None;
                s.reset_next_attempt = None;
                s.epoch = next;
                true
            }
            _ => false,
        }
    }

    /// A fetch at `fetch_offset` found the offset out of range (OFFSET_OUT_OF_RANGE). With a
    /// default reset strategy, the partition is marked for reset (returns `Ok`); with "none",
    /// the error for the caller names the partition. Ignored when the position has moved
    /// since the fetch.
    ///
    /// # Errors
    /// [`Error::Kafka`] with [`ErrorCode::OffsetOutOfRange`] when `auto.offset.reset` is
    /// "none".
    pub fn offset_out_of_range(
        &mut self,
        tp: &TopicPartition,
        fetch_offset: i64,
    ) -> Result<(), Error> {
        if self.position(tp).is_none_or(|p| p.offset != fetch_offset) {
            return Ok(());
        }
        match self.default_reset {
            Some(strategy) => self.request_reset(tp, strategy),
            None => Err(Error::kafka_with_message(
                ErrorCode::OffsetOutOfRange,
                Some(format!(
                    "Fetch position offset {fetch_offset} is out of range for partition {tp}, \
                     and auto.offset.reset is none"
                )),
            )),
        }
    }

    /// The error for partitions that have no position and no reset strategy
    /// (`auto.offset.reset=none` without a committed offset): Java's
    /// `NoOffsetForPartitionException`. `None` when there is none.
    pub fn missing_position_error(&self) -> Option<Error> {
        let missing: Vec<String> = self
            .assignment
            .iter()
            .filter(|(_, s)| s.position.is_none() && s.reset.is_none() && !s.awaiting_committed)
            .map(|(tp, _)| tp.to_string())
            .collect();
        (!missing.is_empty()).then(|| {
            Error::InvalidArgument(format!(
                "Undefined offset with no reset policy for partitions: [{}] \
                 (auto.offset.reset is none: seek first)",
                missing.join(", ")
            ))
        })
    }

    /// Records the offsets a fetch reported for `tp` (negative values are unknown).
    pub fn update_offsets(
        &mut self,
        tp: &TopicPartition,
        high_watermark: i64,
        last_stable_offset: i64,
        log_start_offset: i64,
    ) {
        if let Some(s) = self.assignment.get_mut(tp) {
            if high_watermark >= 0 {
                s.high_watermark = Some(high_watermark);
            }
            if last_stable_offset >= 0 {
                s.last_stable_offset = Some(last_stable_offset);
            }
            if log_start_offset >= 0 {
                s.log_start_offset = Some(log_start_offset);
            }
        }
    }
}

fn not_assigned(tp: &TopicPartition) -> Error {
    Error::InvalidArgument(format!("No current assignment for partition {tp}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition {
            topic: t.into(),
            partition: p,
        }
    }

    #[test]
    fn new_partitions_await_reset_and_kept_ones_keep_state() {
        let mut s = SubscriptionState::new(Some(ResetStrategy::Earliest));
        s.assign([tp("a", 0), tp("a", 1)]);
        assert_eq!(s.assigned(), vec![tp("a", 0), tp("a", 1)]);
        assert!(s.fetchable().is_empty());
        let now = Instant::now();
        let due = s.resets_due(now);
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].1, ResetStrategy::Earliest);
        s.seek(&tp("a", 0), 5).unwrap();
        s.pause(&[tp("a", 0)]).unwrap();
        s.assign([tp("a", 0), tp("b", 0)]);
        assert_eq!(s.position(&tp("a", 0)), Some(FetchPosition::new(5)));
        assert!(s.is_paused(&tp("a", 0)));
        assert!(s.position(&tp("b", 0)).is_none());
        assert!(!s.is_assigned(&tp("a", 1)));
        assert_eq!(s.topics(), vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn fetchable_excludes_paused_and_unpositioned() {
        let mut s = SubscriptionState::new(Some(ResetStrategy::Latest));
        s.assign([tp("a", 0), tp("a", 1), tp("a", 2)]);
        s.seek(&tp("a", 0), 1).unwrap();
        s.seek(&tp("a", 1), 2).unwrap();
        s.pause(&[tp("a", 1)]).unwrap();
        assert_eq!(s.fetchable(), vec![(tp("a", 0), FetchPosition::new(1))]);
        assert!(s.is_fetchable_at(&tp("a", 0), 1));
        assert!(!s.is_fetchable_at(&tp("a", 0), 2));
        assert!(!s.is_fetchable_at(&tp("a", 1), 2));
        s.resume(&[tp("a", 1)]).unwrap();
        assert_eq!(s.fetchable().len(), 2);
        assert_eq!(s.paused(), vec![]);
        assert!(s.pause(&[tp("x", 0)]).is_err());
        assert!(s.seek(&tp("x", 0), 0).is_err());
        assert!(s.seek(&tp("a", 0), -1).is_err());
    }

    #[test]
    fn reset_answers_apply_only_when_nothing_changed() {
        let mut s = SubscriptionState::new(Some(ResetStrategy::Earliest));
        s.assign([tp("a", 0)]);
        let now = Instant::now();
        let (_, strategy, epoch) = s.resets_due(now).remove(0);
        assert_eq!(strategy, ResetStrategy::Earliest);
        s.reset_attempted(&tp("a", 0), now + Duration::from_secs(1));
        assert!(s.resets_due(now).is_empty());
        assert_eq!(s.next_reset_attempt(), Some(now + Duration::from_secs(1)));
        // The application seeks to the end meanwhile: the earliest answer is stale.
        s.seek_to_end(&[]).unwrap();
        assert!(!s.reset_done(&tp("a", 0), epoch, FetchPosition::new(0)));
        let (_, strategy, epoch) = s.resets_due(now).remove(0);
        assert_eq!(strategy, ResetStrategy::Latest);
        assert!(s.reset_done(&tp("a", 0), epoch, FetchPosition::new(42)));
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 42);
        assert!(s.resets_due(now).is_empty());
        assert!(s.has_all_positions());
    }

    #[test]
    fn out_of_range_resets_or_errors() {
        let mut s = SubscriptionState::new(Some(ResetStrategy::Latest));
        s.assign([tp("a", 0)]);
        s.seek(&tp("a", 0), 100).unwrap();
        // Stale: the position moved.
        s.offset_out_of_range(&tp("a", 0), 7).unwrap();
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 100);
        s.offset_out_of_range(&tp("a", 0), 100).unwrap();
        assert!(s.position(&tp("a", 0)).is_none());
        assert_eq!(s.resets_due(Instant::now())[0].1, ResetStrategy::Latest);

        let mut s = SubscriptionState::new(None);
        s.assign([tp("a", 0)]);
        let e = s.missing_position_error().unwrap();
        assert!(e.to_string().contains("a-0"), "{e}");
        assert!(s.resets_due(Instant::now()).is_empty());
        s.seek(&tp("a", 0), 100).unwrap();
        assert!(s.missing_position_error().is_none());
        let e = s.offset_out_of_range(&tp("a", 0), 100).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::OffsetOutOfRange));
        assert!(e.to_string().contains("a-0"), "{e}");
        // An explicit seek_to_beginning works even with "none".
        s.seek_to_beginning(&[tp("a", 0)]).unwrap();
        assert_eq!(s.resets_due(Instant::now()).len(), 1);
    }

    #[test]
    fn advance_only_moves_forward_and_offsets_are_recorded() {
        let mut s = SubscriptionState::new(None);
        s.assign([tp("a", 0)]);
        s.advance(&tp("a", 0), FetchPosition::new(3)); // no position yet: ignored
        assert!(s.position(&tp("a", 0)).is_none());
        s.seek(&tp("a", 0), 5).unwrap();
        s.advance(&tp("a", 0), FetchPosition::new(3));
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 5);
        s.advance(
            &tp("a", 0),
            FetchPosition {
                offset: 9,
                leader_epoch: Some(2),
            },
        );
        assert_eq!(s.position(&tp("a", 0)).unwrap().leader_epoch, Some(2));
        s.update_offsets(&tp("a", 0), 10, -1, 0);
        let st = s.state(&tp("a", 0)).unwrap();
        assert_eq!(st.high_watermark, Some(10));
        assert_eq!(st.last_stable_offset, None);
        assert_eq!(st.log_start_offset, Some(0));
    }

    #[test]
    fn new_group_partitions_wait_for_their_committed_offset() {
        let now = Instant::now();
        let mut s = SubscriptionState::new(Some(ResetStrategy::Earliest));
        s.assign([tp("a", 0)]);
        s.seek(&tp("a", 0), 7).unwrap();
        s.assign_awaiting_committed([tp("a", 0), tp("a", 1), tp("a", 2)]);
        // a-0 stays as it was; the new ones neither reset nor fetch yet.
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 7);
        assert!(s.resets_due(now).is_empty());
        assert!(s.missing_position_error().is_none());
        let due = s.committed_due(now);
        assert_eq!(
            due.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
            [tp("a", 1), tp("a", 2)]
        );
        for (t, _) in &due {
            s.reset_attempted(t, now + Duration::from_secs(1));
        }
        assert!(s.committed_due(now).is_empty());
        assert_eq!(s.next_reset_attempt(), Some(now + Duration::from_secs(1)));
        // a-1 has a committed offset; a-2 has none and falls back to earliest.
        assert!(s.committed_fetched(&tp("a", 1), due[0].1, Some(FetchPosition::new(42))));
        assert!(s.committed_fetched(&tp("a", 2), due[1].1, None));
        assert_eq!(s.position(&tp("a", 1)).unwrap().offset, 42);
        assert_eq!(
            s.resets_due(now)
                .into_iter()
                .map(|(t, r, _)| (t, r))
                .collect::<Vec<_>>(),
            [(tp("a", 2), ResetStrategy::Earliest)]
        );
        // A stale answer (the partition was reassigned since) is ignored.
        assert!(!s.committed_fetched(&tp("a", 1), due[0].1, Some(FetchPosition::new(1))));
        assert_eq!(
            s.all_consumed()
                .into_iter()
                .map(|(t, p)| (t, p.offset))
                .collect::<Vec<_>>(),
            [(tp("a", 0), 7), (tp("a", 1), 42)]
        );
    }

    #[test]
    fn a_seek_overrides_the_committed_offset_lookup() {
        let now = Instant::now();
        let mut s = SubscriptionState::new(None);
        s.assign_awaiting_committed([tp("a", 0)]);
        let (_, epoch) = s.committed_due(now)[0].clone();
        s.seek(&tp("a", 0), 3).unwrap();
        assert!(s.committed_due(now).is_empty());
        assert!(!s.committed_fetched(&tp("a", 0), epoch, Some(FetchPosition::new(9))));
        assert_eq!(s.position(&tp("a", 0)).unwrap().offset, 3);
        // With reset "none" and nothing committed, the partition has no position.
        s.assign_awaiting_committed([tp("a", 1)]);
        let (_, epoch) = s.committed_due(now)[0].clone();
        assert!(s.missing_position_error().is_none());
        s.committed_fetched(&tp("a", 1), epoch, None);
        assert!(s.missing_position_error().is_some());
    }
}
