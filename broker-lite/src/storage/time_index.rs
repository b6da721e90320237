//! The time index (`.timeindex`): 12-byte entries mapping timestamps to offsets.
//!
//! Each entry is `timestamp: i64 BE, relativeOffset: i32 BE`. Following Kafka's `LogSegment`,
//! the segment tracks the largest batch `maxTimestamp` seen so far and the last offset of the
//! first batch that reached it; whenever an offset index entry is made, the time index gets
//! `(maxTimestampSoFar, offsetOfMaxTimestampSoFar)` if that timestamp is larger than the last
//! entry's. When a segment is rolled, closed or recovered, that pair is appended once more
//! (if larger), so the last entry of an inactive segment is its largest timestamp.
//!
//! Timestamps are therefore strictly increasing and offsets non-decreasing, and every batch
//! before the one holding an entry's offset has a smaller `maxTimestamp` than the entry. A
//! lookup for `t` takes the last entry with timestamp `<= t` and scans forward from that
//! entry's batch for the first batch whose `maxTimestamp >= t`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::batch::NO_TIMESTAMP;
use super::error::{Result, StorageError};
use super::index::open_rw;

/// Size of one time index entry.
pub(crate) const ENTRY_SIZE: usize = 12;

/// One time index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeIndexEntry {
    /// The largest batch `maxTimestamp` in the segment up to `relative_offset`.
    pub timestamp: i64,
    /// Last offset of the batch holding that timestamp, relative to the segment's base.
    pub relative_offset: i32,
}

/// The time index of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    path: PathBuf,
    file: File,
    base_offset: i64,
    entries: Vec<TimeIndexEntry>,
    max_entries: usize,
}

impl TimeIndex {
    /// Opens the time index at `path` with the given entries, rewriting the file if
    /// `rewrite`.
    pub fn open(
        path: PathBuf,
        base_offset: i64,
        entries: Vec<TimeIndexEntry>,
        max_entries: usize,
        rewrite: bool,
    ) -> Result<TimeIndex> {
        let file = open_rw(&path)?;
        let mut index = TimeIndex {
            path,
            file,
            base_offset,
            entries,
            max_entries,
        };
        if rewrite {
            index.write_all()?;
        }
        Ok(index)
    }

    /// Parses and sanity-checks time index file contents: whole entries, strictly
    /// increasing timestamps, non-decreasing non-negative offsets. `Err` gives the reason the
    /// file cannot be used.
    pub fn parse(bytes: &[u8]) -> Result<Vec<TimeIndexEntry>, String> {
        if bytes.len() % ENTRY_SIZE != 0 {
            return Err(format!(
                "size {} is not a multiple of {ENTRY_SIZE}",
                bytes.len()
            ));
        }
        let mut entries: Vec<TimeIndexEntry> = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let entry = TimeIndexEntry {
                timestamp: i64::from_be_bytes(ts),
                relative_offset: i32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
            };
            if entry.relative_offset < 0 {
                return Err(format!(
                    "negative relative offset {}",
                    entry.relative_offset
                ));
            }
            if let Some(last) = entries.last() {
                if entry.timestamp <= last.timestamp || entry.relative_offset < last.relative_offset
                {
                    return Err(format!(
                        "entry ({}, {}) does not follow ({}, {})",
                        entry.timestamp,
                        entry.relative_offset,
                        last.timestamp,
                        last.relative_offset
                    ));
                }
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    fn write_all(&mut self) -> Result<()> {
        let mut bytes = Vec::with_capacity(self.entries.len() * ENTRY_SIZE);
        for e in &self.entries {
            bytes.extend_from_slice(&e.timestamp.to_be_bytes());
            bytes.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        self.file
            .set_len(0)
            .map_err(StorageError::io("truncate", &self.path))?;
        self.file
            .write_all_at(&bytes, 0)
            .map_err(StorageError::io("write", &self.path))
    }

    /// Whether the index holds `segment.index.bytes / 12` entries.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Changes the capacity (after a configuration change).
    pub fn set_max_entries(&mut self, max_entries: usize) {
        self.max_entries = max_entries;
    }

    /// The last entry as `(timestamp, absolute offset)`.
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries.last().map(|e| {
            (
                e.timestamp,
                self.base_offset
                    .saturating_add(i64::from(e.relative_offset)),
            )
        })
    }

    /// Appends `(timestamp, offset)` if `timestamp` is larger than the last entry's (Kafka's
    /// `TimeIndex.maybeAppend`). When the index is full the entry is dropped unless
    /// `skip_full_check` (the final entry written on roll, close and recovery).
    pub fn maybe_append(
        &mut self,
        timestamp: i64,
        offset: i64,
        skip_full_check: bool,
    ) -> Result<()> {
        if !skip_full_check && self.is_full() {
            return Ok(());
        }
        let Some(relative_offset) = offset
            .checked_sub(self.base_offset)
            .and_then(|r| i32::try_from(r).ok())
            .filter(|r| *r >= 0)
        else {
            return Ok(());
        };
        // An empty index behaves as if its last entry were (NO_TIMESTAMP, base offset), as
        // in Kafka: batches without timestamps never make entries.
        let (last_timestamp, last_offset) = self
            .entries
            .last()
            .map_or((NO_TIMESTAMP, 0), |e| (e.timestamp, e.relative_offset));
        if timestamp <= last_timestamp || relative_offset < last_offset {
            return Ok(());
        }
        let mut bytes = [0u8; ENTRY_SIZE];
        bytes[..8].copy_from_slice(&timestamp.to_be_bytes());
        bytes[8..].copy_from_slice(&relative_offset.to_be_bytes());
        let at = (self.entries.len() * ENTRY_SIZE) as u64;
        self.file
            .write_all_at(&bytes, at)
            .map_err(StorageError::io("write", &self.path))?;
        self.entries.push(TimeIndexEntry {
            timestamp,
            relative_offset,
        });
        Ok(())
    }

    /// The last entry with timestamp `<= target` as `(timestamp, absolute offset)`, or
    /// `None` when every entry is later (then the search starts at the segment's start).
    pub fn lookup(&self, target: i64) -> Option<(i64, i64)> {
        let n = self.entries.partition_point(|e| e.timestamp <= target);
        n.checked_sub(1).map(|i| {
            let e = self.entries[i];
            (
                e.timestamp,
                self.base_offset
                    .saturating_add(i64::from(e.relative_offset)),
            )
        })
    }

    /// All entries, in order.
    #[cfg(test)]
    pub fn entries(&self) -> &[TimeIndexEntry] {
        &self.entries
    }

    /// fsyncs the file.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(StorageError::io("fsync", &self.path))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that the file was renamed to `path`.
    pub fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::TempDir;

    #[test]
    fn maybe_append_lookup_and_file_format() {
        let dir = TempDir::new();
        let path = dir.path().join("00000000000000000050.timeindex");
        let mut index = TimeIndex::open(path.clone(), 50, Vec::new(), 2, true).unwrap();
        assert_eq!(index.lookup(i64::MAX), None);
        index.maybe_append(-1, 50, true).unwrap(); // no timestamp: no entry
        assert!(index.entries().is_empty());
        index.maybe_append(1000, 55, false).unwrap();
        index.maybe_append(1000, 56, false).unwrap(); // not larger: ignored
        index.maybe_append(900, 57, false).unwrap(); // smaller: ignored
        index.maybe_append(2000, 60, false).unwrap();
        assert!(index.is_full());
        index.maybe_append(3000, 61, false).unwrap(); // full: dropped
        assert_eq!(index.entries().len(), 2);
        index.maybe_append(3000, 62, true).unwrap(); // final entry: allowed
        assert_eq!(index.last_entry(), Some((3000, 62)));

        assert_eq!(index.lookup(999), None);
        assert_eq!(index.lookup(1000), Some((1000, 55)));
        assert_eq!(index.lookup(2999), Some((2000, 60)));
        assert_eq!(index.lookup(5000), Some((3000, 62)));

        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 36);
        assert_eq!(&bytes[..12], &[0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 5]);
        assert_eq!(TimeIndex::parse(&bytes).unwrap(), index.entries().to_vec());
    }

    #[test]
    fn parse_rejects_damage() {
        let entry = |t: i64, o: i32| {
            let mut v = t.to_be_bytes().to_vec();
            v.extend_from_slice(&o.to_be_bytes());
            v
        };
        assert!(TimeIndex::parse(&[0; 13]).is_err());
        assert!(TimeIndex::parse(&entry(5, -1)).is_err());
        let mut two = entry(5, 1);
        two.extend(entry(5, 2));
        assert!(TimeIndex::parse(&two).is_err());
        let mut two = entry(5, 2);
        two.extend(entry(6, 1));
        assert!(TimeIndex::parse(&two).is_err());
        let mut two = entry(5, 2);
        two.extend(entry(6, 2));
        assert_eq!(TimeIndex::parse(&two).unwrap().len(), 2);
    }
}
