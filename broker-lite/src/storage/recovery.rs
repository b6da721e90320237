//! Opening a partition log: discovering segments, recovering them, cleaning up leftovers.
//!
//! Follows Kafka's `LogLoader`:
//! 1. A compaction interrupted by a crash is discarded (`.cleaned` files removed) or
//!    completed (a `.swap` segment replaces the segments it covers), as in Kafka; see
//!    `compaction.rs`. Files ending in `.deleted` are removed (a deletion interrupted by a
//!    crash). Index files (`.index`, `.timeindex`, `.txnindex`) without a `.log` file are
//!    removed.
//! 2. Segments are the `<20-digit base offset>.log` files, in offset order.
//! 3. If the clean-shutdown marker is present, only the last segment is recovered; other
//!    segments are loaded with their index files after sanity checks (and recovered anyway
//!    if an index file is missing or damaged). Without the marker every segment is
//!    recovered. The marker is removed on open, so a crash while open is detected.
//! 4. Recovering a segment validates each batch (size fields, magic, offsets, CRC),
//!    truncates the `.log` after the last valid batch and rebuilds both indexes. If a
//!    segment was truncated, every later segment is deleted: nothing after the first bad
//!    batch is ever served.
//! 5. The log start offset is the larger of the first segment's base offset and the
//!    checkpointed value; the high watermark starts at the log end offset (single replica).
//! 6. The producer state (KIP-98/KIP-360: idempotent producers, open transactions,
//!    coordinator epochs) is rebuilt from every remaining segment: batch headers, and the
//!    record of each transaction marker (Kafka reads its `.snapshot` files and replays the
//!    log after them; broker-lite keeps no snapshots and replays everything). Each segment's
//!    `.txnindex` is checked against the aborted transactions met on the way and repaired if
//!    missing, damaged, cut short or reaching past a truncated tail.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::checkpoint::{self, CLEAN_SHUTDOWN_FILE};
use super::compaction::{complete_interrupted_cleaning, CLEANED_SUFFIX, SWAP_SUFFIX};
use super::config::LogConfig;
use super::error::{Result, StorageError};
use super::log::PartitionLog;
use super::segment::{
    file_name, LogSegment, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};
use super::txn_index::TXN_INDEX_SUFFIX;

/// Parses the base offset out of a segment file name: digits only, before `suffix`.
pub(crate) fn parse_base_offset(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// What a directory scan found.
struct DirListing {
    log_bases: Vec<i64>,
    index_files: Vec<(i64, PathBuf)>,
}

fn list_dir(dir: &Path) -> Result<DirListing> {
    let mut listing = DirListing {
        log_bases: Vec::new(),
        index_files: Vec::new(),
    };
    let entries = fs::read_dir(dir).map_err(StorageError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(StorageError::io("list", dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(DELETED_SUFFIX) {
            info!(file = %path.display(), "removing file left over from an interrupted deletion");
            checkpoint::remove_if_exists(&path)?;
        } else if name.ends_with(CLEANED_SUFFIX) || name.ends_with(SWAP_SUFFIX) {
            // complete_interrupted_cleaning has handled these; anything left is unknown.
            warn!(file = %path.display(), "ignoring log cleaner leftover");
        } else if let Some(base) = parse_base_offset(&name, LOG_SUFFIX) {
            listing.log_bases.push(base);
        } else if let Some(base) = parse_base_offset(&name, INDEX_SUFFIX)
            .or_else(|| parse_base_offset(&name, TIME_INDEX_SUFFIX))
            .or_else(|| parse_base_offset(&name, TXN_INDEX_SUFFIX))
        {
            listing.index_files.push((base, path));
        }
    }
    listing.log_bases.sort_unstable();
    listing.log_bases.dedup();
    Ok(listing)
}

/// Removes the files of the segment with base offset `base`.
fn remove_segment_files(dir: &Path, base: i64) -> Result<()> {
    for suffix in [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
    ] {
        checkpoint::remove_if_exists(&dir.join(file_name(base, suffix)))?;
    }
    Ok(())
}

impl PartitionLog {
    /// Opens (creating if needed) the log in the partition directory `dir` and recovers it,
    /// as Kafka's `LogLoader` does:
    ///
    /// * An interrupted compaction is discarded (`.cleaned` files) or completed (`.swap`
    ///   files); `*.deleted` files are removed, index files without a `.log` removed;
    ///   segments are the `<20-digit base offset>.log` files.
    /// * With the clean-shutdown marker (written by [`close`](Self::close)) only the last
    ///   segment is recovered; other segments keep their indexes if these pass sanity checks
    ///   (they are rebuilt otherwise). Without the marker every segment is recovered. The
    ///   marker is removed, so a crash while open is detected.
    /// * Recovering a segment validates each batch (size fields, magic, offsets, CRC),
    ///   truncates the `.log` after the last valid batch and rebuilds both indexes; if a
    ///   segment was truncated, all later segments are deleted.
    /// * The log start offset is the larger of the first segment's base offset and the
    ///   checkpointed one; the high watermark starts at the log end offset.
    /// * The producer state (open transactions included, so the last stable offset) is
    ///   rebuilt from the log, and each `.txnindex` checked and repaired against it.
    ///
    /// After this, every byte of every segment is part of a whole, valid batch, and nothing
    /// after the first bad batch is served. `now_ms` is the creation time of new segments
    /// (for `segment.ms`).
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] for an invalid `config`; [`StorageError::Io`] when the
    /// directory or a file cannot be read, written or created. Corrupt data is never an
    /// error: it is truncated.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig, now_ms: i64) -> Result<PartitionLog> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(StorageError::io("create directory", &dir))?;

        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = checkpoint::exists(&marker)?;
        if clean {
            // From now on a crash must be detected as an unclean shutdown.
            checkpoint::remove_if_exists(&marker)?;
            checkpoint::sync_dir(&dir)?;
        }

        complete_interrupted_cleaning(&dir)?;
        let listing = list_dir(&dir)?;
        for (base, path) in &listing.index_files {
            if listing.log_bases.binary_search(base).is_err() {
                info!(file = %path.display(), "removing index file without a log file");
                checkpoint::remove_if_exists(path)?;
            }
        }
        let checkpointed_start = checkpoint::read_log_start_offset(&dir)?;

        let mut segments = Vec::with_capacity(listing.log_bases.len().max(1));
        let mut recovered = 0usize;
        let bases = &listing.log_bases;
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let (segment, outcome) = LogSegment::load(
                &dir,
                base,
                &config,
                now_ms,
                !clean || is_last,
                bases.get(i + 1).copied(),
            )?;
            segments.push(segment);
            recovered += usize::from(outcome.recovered);
            if outcome.truncated_bytes > 0 && !is_last {
                warn!(
                    dir = %dir.display(),
                    segment = base,
                    deleted = bases.len() - i - 1,
                    "deleting the segments after a corrupt one"
                );
                for &later in &bases[i + 1..] {
                    remove_segment_files(&dir, later)?;
                }
                checkpoint::sync_dir(&dir)?;
                break;
            }
        }
        if segments.is_empty() {
            let base = checkpointed_start.unwrap_or(0);
            segments.push(LogSegment::create(&dir, base, &config, now_ms)?);
            checkpoint::sync_dir(&dir)?;
        }

        let first_base = segments[0].base_offset();
        let log_end_offset = segments[segments.len() - 1].next_offset();
        let mut log_start_offset = checkpointed_start.map_or(first_base, |c| c.max(first_base));
        if log_start_offset > log_end_offset {
            warn!(
                dir = %dir.display(),
                log_start_offset,
                log_end_offset,
                "checkpointed log start offset is beyond the recovered log end; clamping"
            );
            log_start_offset = log_end_offset;
        }
        info!(
            dir = %dir.display(),
            clean_shutdown = clean,
            segments = segments.len(),
            recovered_segments = recovered,
            log_start_offset,
            log_end_offset,
            "opened log"
        );
        let mut log = PartitionLog {
            dir,
            config,
            segments,
            log_start_offset,
            high_watermark: log_end_offset,
            auto_high_watermark: true,
            leader_epoch: 0,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            pending_deletes: Vec::new(),
            offline: false,
            closed: false,
            producers: Default::default(),
            cleaner_checkpoint: None,
            tombstone_horizon: None,
        };
        log.rebuild_producer_state()?;
        if log.producer_count() > 0 {
            info!(
                dir = %log.dir.display(),
                producers = log.producer_count(),
                "rebuilt idempotent producer state from the log"
            );
        }
        Ok(log)
    }
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
