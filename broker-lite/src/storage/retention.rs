//! Deleting old data: time and size retention, and `DeleteRecords`.
//!
//! Only whole segments are deleted, oldest first, and only while every segment before
//! them is deleted too (Kafka's `deletableSegments`). A segment is deletable only when all
//! its offsets are below the high watermark. The active segment may expire too (by time or
//! size, never when empty): as Kafka's `UnifiedLog.deleteSegments` does, a new empty active
//! segment is rolled first, since a log always keeps at least one segment.
//! Deleted segments (`.log`, `.index`, `.timeindex` and `.txnindex` if any) are renamed with
//! the `.deleted` suffix at once and removed
//! `file.delete.delay.ms` later (by the next [`PartitionLog::apply_retention`] or
//! [`PartitionLog::delete_pending_files`] call, or on close; leftovers are removed on open).

use tracing::{info, warn};

use super::checkpoint;
use super::error::{Result, StorageError};
use super::log::PartitionLog;
use super::segment::LogSegment;

/// What a retention pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes of the deleted segments.
    pub deleted_bytes: u64,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

/// `DeleteRecords` offset meaning "the high watermark".
pub const DELETE_UP_TO_HIGH_WATERMARK: i64 = -1;

impl PartitionLog {
    /// Runs one retention pass (Kafka's `deleteOldSegments`), as the broker's periodic log
    /// cleanup task would: segments wholly below the log start offset; then, with
    /// `cleanup.policy` including `delete`, segments whose largest timestamp is more than
    /// `retention.ms` before `now_ms`, and the oldest segments while the log is larger than
    /// `retention.bytes`. Also removes deleted files whose delay has passed.
    ///
    /// # Errors
    /// Storage failures (the log then goes offline) or [`StorageError::LogOffline`].
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome> {
        self.check_online()?;
        let mut outcome = RetentionOutcome::default();

        let start = self.log_start_offset;
        let n = self.deletable_prefix(|_, next| next.is_some_and(|n| n.base_offset() <= start));
        self.delete_segments(n, "log start offset", now_ms, &mut outcome)?;

        if self.config.cleanup_policy.delete {
            let retention_ms = self.config.retention_ms;
            if retention_ms >= 0 {
                let n = self.deletable_prefix(|segment, _| {
                    now_ms.saturating_sub(segment.largest_timestamp()) > retention_ms
                });
                self.delete_segments(n, "retention.ms", now_ms, &mut outcome)?;
            }
            let retention_bytes = self.config.retention_bytes;
            let size = i64::try_from(self.size_in_bytes()).unwrap_or(i64::MAX);
            if retention_bytes >= 0 && size > retention_bytes {
                let mut excess = size - retention_bytes;
                let n = self.deletable_prefix(|segment, _| {
                    let segment_size = i64::try_from(segment.size()).unwrap_or(i64::MAX);
                    if excess - segment_size >= 0 {
                        excess -= segment_size;
                        true
                    } else {
                        false
                    }
                });
                self.delete_segments(n, "retention.bytes", now_ms, &mut outcome)?;
            }
        }
        self.delete_pending_files(now_ms);
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }

    /// `DeleteRecords`: moves the log start offset up to `offset`
    /// ([`DELETE_UP_TO_HIGH_WATERMARK`] for the high watermark) and deletes the segments
    /// wholly below it. Returns the new log start offset (the response's low watermark).
    /// An offset at or below the current log start offset changes nothing.
    ///
    /// # Errors
    /// [`StorageError::PolicyViolation`] unless `cleanup.policy` includes `delete` (as
    /// Kafka); [`StorageError::OffsetOutOfRange`] for an offset below -1 or above the high
    /// watermark; storage failures.
    pub fn delete_records_before(&mut self, offset: i64, now_ms: i64) -> Result<i64> {
        self.check_online()?;
        if !self.config.cleanup_policy.delete {
            return Err(StorageError::PolicyViolation(format!(
                "records of {} cannot be deleted: cleanup.policy does not include delete",
                self.dir.display()
            )));
        }
        let target = if offset == DELETE_UP_TO_HIGH_WATERMARK {
            self.high_watermark
        } else {
            offset
        };
        if target < 0 || target > self.high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        if target > self.log_start_offset {
            self.log_start_offset = target;
            let written = checkpoint::write_log_start_offset(&self.dir, target);
            self.offline_on_io(written)?;
            info!(dir = %self.dir.display(), log_start_offset = target, "log start offset advanced");
        }
        let start = self.log_start_offset;
        let n = self.deletable_prefix(|_, next| next.is_some_and(|n| n.base_offset() <= start));
        let mut outcome = RetentionOutcome::default();
        self.delete_segments(n, "DeleteRecords", now_ms, &mut outcome)?;
        self.delete_pending_files(now_ms);
        Ok(self.log_start_offset)
    }

    /// Removes the `.deleted` files whose `file.delete.delay.ms` has passed; returns how
    /// many. A file that cannot be removed is kept for the next call (and logged).
    pub fn delete_pending_files(&mut self, now_ms: i64) -> usize {
        let mut removed = 0;
        self.pending_deletes.retain(|(path, due)| {
            if *due > now_ms {
                return true;
            }
            match checkpoint::remove_if_exists(path) {
                Ok(()) => {
                    removed += 1;
                    false
                }
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "cannot remove deleted segment file");
                    true
                }
            }
        });
        removed
    }

    /// How many segments from the oldest satisfy `predicate(segment, next_segment)`
    /// consecutively (`next_segment` is `None` for the active segment), stopping at a segment
    /// whose offsets reach past the high watermark and at an empty active segment (Kafka's
    /// `deletableSegments`).
    fn deletable_prefix(
        &self,
        mut predicate: impl FnMut(&LogSegment, Option<&LogSegment>) -> bool,
    ) -> usize {
        let log_end_offset = self.log_end_offset();
        let mut n = 0;
        for (i, segment) in self.segments.iter().enumerate() {
            let next = self.segments.get(i + 1);
            let upper_bound = next.map_or(log_end_offset, LogSegment::base_offset);
            let last_and_empty = next.is_none() && segment.size() == 0;
            if self.high_watermark < upper_bound || last_and_empty || !predicate(segment, next) {
                break;
            }
            n += 1;
        }
        n
    }

    /// Deletes the `n` oldest segments (rolling a new active segment first when all would
    /// go) and advances the log start offset to the new first segment.
    fn delete_segments(
        &mut self,
        n: usize,
        reason: &str,
        now_ms: i64,
        outcome: &mut RetentionOutcome,
    ) -> Result<()> {
        let n = n.min(self.segments.len());
        if n == 0 {
            return Ok(());
        }
        if n == self.segments.len() {
            // "We must always have at least one segment, so if we are going to delete all the
            // segments, create a new one first" (UnifiedLog.deleteSegments).
            self.roll(now_ms)?;
        }
        let removed: Vec<LogSegment> = self.segments.drain(..n).collect();
        let new_start = self.segments[0].base_offset();
        if new_start > self.log_start_offset {
            self.log_start_offset = new_start;
        }
        let due = now_ms.saturating_add(self.config.file_delete_delay_ms);
        let mut result = checkpoint::write_log_start_offset(&self.dir, self.log_start_offset);
        for segment in removed {
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += segment.size();
            info!(
                segment = %segment.log_path().display(),
                size = segment.size(),
                reason,
                "deleting log segment"
            );
            match segment.rename_to_deleted() {
                Ok(paths) => self
                    .pending_deletes
                    .extend(paths.into_iter().map(|p| (p, due))),
                Err(e) => result = result.and(Err(e)),
            }
        }
        outcome.log_start_offset = self.log_start_offset;
        self.offline_on_io(result)
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
