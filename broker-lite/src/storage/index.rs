//! The offset index (`.index`): sparse 8-byte entries mapping offsets to file positions.
//!
//! Each entry is `relativeOffset: i32 BE, position: i32 BE`: the last offset of a batch,
//! relative to the segment's base offset, and the byte position where that batch starts in
//! the `.log` file. Entries are strictly increasing in both fields. An entry is added
//! whenever more than `index.interval.bytes` of batches were appended since the previous one
//! (Kafka's `LogSegment.append` / `recover` rule), so the first batch of a segment is never
//! indexed: a lookup that finds no entry starts at position 0.
//!
//! Entries are kept in memory and appended to the file as they are made; the file always
//! holds exactly the in-memory entries (no preallocation).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};

/// Size of one offset index entry.
pub(crate) const ENTRY_SIZE: usize = 8;

/// One offset index entry, relative to the segment's base offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Last offset of the indexed batch minus the segment's base offset.
    pub relative_offset: i32,
    /// Byte position of the batch in the `.log` file.
    pub position: u32,
}

/// Opens (creating if needed) an index file for reading and writing.
pub(crate) fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(StorageError::io("open", path))
}

/// Reads a whole index file if it exists and is at most `max_len` bytes; `Ok(None)` when it
/// is missing or too large to be valid.
pub(crate) fn read_index_file(path: &Path, max_len: u64) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("open", path)(e)),
    };
    let len = file
        .metadata()
        .map_err(StorageError::io("stat", path))?
        .len();
    if len > max_len {
        return Ok(None);
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)
        .map_err(StorageError::io("read", path))?;
    Ok(Some(buf))
}

/// The offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    path: PathBuf,
    file: File,
    base_offset: i64,
    entries: Vec<IndexEntry>,
    max_entries: usize,
}

impl OffsetIndex {
    /// Opens the index at `path` with the given entries, rewriting the file if
    /// `rewrite` (after a rebuild, or for a new segment).
    pub fn open(
        path: PathBuf,
        base_offset: i64,
        entries: Vec<IndexEntry>,
        max_entries: usize,
        rewrite: bool,
    ) -> Result<OffsetIndex> {
        let file = open_rw(&path)?;
        let mut index = OffsetIndex {
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

    /// Parses and sanity-checks index file contents: whole entries, strictly increasing
    /// offsets and positions, every position inside a log of `log_size` bytes. `Err` gives
    /// the reason the file cannot be used.
    pub fn parse(bytes: &[u8], log_size: u64) -> Result<Vec<IndexEntry>, String> {
        if bytes.len() % ENTRY_SIZE != 0 {
            return Err(format!(
                "size {} is not a multiple of {ENTRY_SIZE}",
                bytes.len()
            ));
        }
        let mut entries: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let relative_offset = i32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let position = i32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if relative_offset < 0 || position < 0 || position as u64 >= log_size {
                return Err(format!(
                    "entry ({relative_offset}, {position}) is out of range"
                ));
            }
            let entry = IndexEntry {
                relative_offset,
                position: position as u32,
            };
            if let Some(last) = entries.last() {
                if entry.relative_offset <= last.relative_offset || entry.position <= last.position
                {
                    return Err(format!(
                        "entry ({relative_offset}, {position}) does not follow ({}, {})",
                        last.relative_offset, last.position
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
            bytes.extend_from_slice(&e.relative_offset.to_be_bytes());
            bytes.extend_from_slice(&(e.position as i32).to_be_bytes());
        }
        self.file
            .set_len(0)
            .map_err(StorageError::io("truncate", &self.path))?;
        self.file
            .write_all_at(&bytes, 0)
            .map_err(StorageError::io("write", &self.path))
    }

    /// Whether the index holds `segment.index.bytes / 8` entries.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Changes the capacity (after a configuration change).
    pub fn set_max_entries(&mut self, max_entries: usize) {
        self.max_entries = max_entries;
    }

    /// Adds an entry for the batch whose last offset is `offset`, starting at `position`.
    /// Does nothing when the index is full or the entry would not be strictly after the last
    /// one.
    pub fn append(&mut self, offset: i64, position: u64) -> Result<()> {
        let Some(entry) = self.entry_for(offset, position) else {
            return Ok(());
        };
        if self.is_full() {
            return Ok(());
        }
        if let Some(last) = self.entries.last() {
            if entry.relative_offset <= last.relative_offset || entry.position <= last.position {
                return Ok(());
            }
        }
        let mut bytes = [0u8; ENTRY_SIZE];
        bytes[..4].copy_from_slice(&entry.relative_offset.to_be_bytes());
        bytes[4..].copy_from_slice(&(entry.position as i32).to_be_bytes());
        let at = (self.entries.len() * ENTRY_SIZE) as u64;
        self.file
            .write_all_at(&bytes, at)
            .map_err(StorageError::io("write", &self.path))?;
        self.entries.push(entry);
        Ok(())
    }

    fn entry_for(&self, offset: i64, position: u64) -> Option<IndexEntry> {
        let relative_offset = i32::try_from(offset.checked_sub(self.base_offset)?).ok()?;
        let position = u32::try_from(position)
            .ok()
            .filter(|p| *p <= i32::MAX as u32)?;
        (relative_offset >= 0).then_some(IndexEntry {
            relative_offset,
            position,
        })
    }

    /// The entry with the largest offset `<= target`, as `(absolute offset, position)`;
    /// `(base_offset, 0)` when there is none.
    pub fn lookup(&self, target: i64) -> (i64, u64) {
        let relative = target.saturating_sub(self.base_offset);
        let n = self
            .entries
            .partition_point(|e| i64::from(e.relative_offset) <= relative);
        match n.checked_sub(1).map(|i| self.entries[i]) {
            Some(e) => (
                self.base_offset
                    .saturating_add(i64::from(e.relative_offset)),
                u64::from(e.position),
            ),
            None => (self.base_offset, 0),
        }
    }

    /// All entries, in order.
    pub fn entries(&self) -> &[IndexEntry] {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::TempDir;

    #[test]
    fn append_lookup_and_file_format() {
        let dir = TempDir::new();
        let path = dir.path().join("00000000000000000100.index");
        let mut index = OffsetIndex::open(path.clone(), 100, Vec::new(), 3, true).unwrap();
        assert_eq!(index.lookup(150), (100, 0));
        index.append(110, 500).unwrap();
        index.append(120, 1000).unwrap();
        // Not strictly after the last entry: ignored.
        index.append(120, 1200).unwrap();
        index.append(119, 1300).unwrap();
        index.append(130, 1500).unwrap();
        assert!(index.is_full());
        index.append(140, 2000).unwrap();
        assert_eq!(index.entries().len(), 3);

        assert_eq!(index.lookup(99), (100, 0));
        assert_eq!(index.lookup(109), (100, 0));
        assert_eq!(index.lookup(110), (110, 500));
        assert_eq!(index.lookup(125), (120, 1000));
        assert_eq!(index.lookup(i64::MAX), (130, 1500));

        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            bytes,
            [
                0, 0, 0, 10, 0, 0, 0x01, 0xf4, 0, 0, 0, 20, 0, 0, 0x03, 0xe8, 0, 0, 0, 30, 0, 0,
                0x05, 0xdc
            ]
        );
        assert_eq!(
            OffsetIndex::parse(&bytes, 2000).unwrap(),
            index.entries().to_vec()
        );
    }

    #[test]
    fn parse_rejects_damage() {
        let entry = |o: i32, p: i32| {
            let mut v = o.to_be_bytes().to_vec();
            v.extend_from_slice(&p.to_be_bytes());
            v
        };
        assert!(OffsetIndex::parse(&[0; 7], 100).is_err());
        assert!(OffsetIndex::parse(&entry(1, 100), 100).is_err());
        assert!(OffsetIndex::parse(&entry(-1, 10), 100).is_err());
        let mut two = entry(5, 10);
        two.extend(entry(5, 20));
        assert!(OffsetIndex::parse(&two, 100).is_err());
        let mut two = entry(5, 10);
        two.extend(entry(6, 10));
        assert!(OffsetIndex::parse(&two, 100).is_err());
        let mut two = entry(5, 10);
        two.extend(entry(6, 20));
        assert_eq!(OffsetIndex::parse(&two, 100).unwrap().len(), 2);
    }
}
