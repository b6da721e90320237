//! The transaction index (`.txnindex`) of a segment: the aborted transactions whose abort
//! marker the segment holds (KIP-98), in Kafka's `TransactionIndex` format.
//!
//! An entry is 34 bytes, big-endian: `version: i16` (0), `producerId: i64`, `firstOffset:
//! i64`, `lastOffset: i64` (the abort marker's offset), `lastStableOffset: i64` (the last
//! stable offset once the transaction completed: the first offset of the earliest *other*
//! open transaction, else `lastOffset + 1`; Kafka's `ProducerStateManager.lastStableOffset`).
//! Entries are appended in marker order, so their last offsets strictly increase. The file is
//! created on the first entry: a segment without aborted transactions has none (as in Kafka).
//!
//! The entries are also kept in memory (a few per segment); the file is the durable copy,
//! checked and, if needed, rebuilt from the log when the log is opened (see `log.rs`,
//! `reconcile_txn_index`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::checkpoint;
use super::error::{Result, StorageError};
use super::log::AbortedTxn;

/// Suffix of a segment's transaction index.
pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Size of one entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub(crate) const ENTRY_SIZE: usize = 34;
/// The only entry version (Kafka's `AbortedTxn.CURRENT_VERSION`).
const VERSION: i16 = 0;

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxnIndexEntry {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl TxnIndexEntry {
    /// The entry's 34 bytes.
    pub fn to_bytes(self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    /// The Fetch response's view of the entry.
    pub fn aborted_txn(&self) -> AbortedTxn {
        AbortedTxn {
            producer_id: self.producer_id,
            first_offset: self.first_offset,
        }
    }
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// What was found on disk for a segment's transaction index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoredTxnIndex {
    /// No file (the normal state of a segment without aborted transactions).
    Missing,
    /// The whole entries of the file, and whether the file had to be cut or rejected
    /// (`Some(reason)`: a partial entry at the end, or an unusable file whose entries were
    /// all dropped).
    Read(Vec<TxnIndexEntry>, Option<String>),
}

/// Parses file contents: whole entries of version 0 with `firstOffset <= lastOffset` and
/// strictly increasing last offsets. A partial entry at the end is cut (entries are
/// append-only: a torn write); anything else wrong drops every entry (the log rebuilds them).
pub(crate) fn parse(bytes: &[u8]) -> StoredTxnIndex {
    let whole = bytes.len() / ENTRY_SIZE * ENTRY_SIZE;
    let mut problem = (whole != bytes.len()).then(|| {
        format!(
            "{} trailing bytes after the last whole entry",
            bytes.len() - whole
        )
    });
    let mut entries = Vec::with_capacity(whole / ENTRY_SIZE);
    for chunk in bytes[..whole].chunks_exact(ENTRY_SIZE) {
        let version = i16::from_be_bytes([chunk[0], chunk[1]]);
        let entry = TxnIndexEntry {
            producer_id: i64_at(chunk, 2),
            first_offset: i64_at(chunk, 10),
            last_offset: i64_at(chunk, 18),
            last_stable_offset: i64_at(chunk, 26),
        };
        let ordered = entries
            .last()
            .is_none_or(|last: &TxnIndexEntry| entry.last_offset > last.last_offset);
        if version != VERSION || entry.first_offset > entry.last_offset || !ordered {
            problem = Some(format!(
                "invalid entry {} (version {version}, offsets {}..={})",
                entries.len(),
                entry.first_offset,
                entry.last_offset
            ));
            entries.clear();
            break;
        }
        entries.push(entry);
    }
    StoredTxnIndex::Read(entries, problem)
}

/// Reads a segment's `.txnindex` file.
///
/// # Errors
/// [`StorageError::Io`] when the file exists but cannot be read.
pub(crate) fn read(path: &Path) -> Result<StoredTxnIndex> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoredTxnIndex::Missing),
        Err(e) => Err(StorageError::io("read", path)(e)),
    }
}

/// A segment's transaction index: its entries in memory and its file, created on the first
/// entry.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    file: Option<File>,
    entries: Vec<TxnIndexEntry>,
    /// Written since the last fsync.
    dirty: bool,
}

impl TxnIndex {
    /// An index at `path` holding `entries`, which must be what the file holds (or none
    /// when there is no file).
    pub fn new(path: PathBuf, entries: Vec<TxnIndexEntry>) -> TxnIndex {
        TxnIndex {
            path,
            file: None,
            entries,
            dirty: false,
        }
    }

    /// The entries, in marker order.
    pub fn entries(&self) -> &[TxnIndexEntry] {
        &self.entries
    }

    /// The file's path (it may not exist).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that the file (if any) was renamed to `path`.
    pub fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    fn file(&mut self) -> Result<&File> {
        match &mut self.file {
            Some(file) => Ok(file),
            slot @ None => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&self.path)
                    .map_err(StorageError::io("open", &self.path))?;
                Ok(slot.insert(file))
            }
        }
    }

    /// Appends an entry (Kafka's `TransactionIndex.append`), creating the file if needed.
    /// Its last offset must be above the previous entry's.
    ///
    /// # Errors
    /// [`StorageError::Io`]; [`StorageError::CorruptLog`] for an out-of-order entry.
    pub fn append(&mut self, entry: TxnIndexEntry) -> Result<()> {
        if let Some(last) = self.entries.last() {
            if entry.last_offset <= last.last_offset {
                return Err(StorageError::CorruptLog {
                    path: self.path.clone(),
                    position: (self.entries.len() * ENTRY_SIZE) as u64,
                    reason: format!(
                        "aborted transaction ending at {} is not after the last one ({})",
                        entry.last_offset, last.last_offset
                    ),
                });
            }
        }
        let at = (self.entries.len() * ENTRY_SIZE) as u64;
        let path = self.path.clone();
        self.file()?
            .write_all_at(&entry.to_bytes(), at)
            .map_err(StorageError::io("write", &path))?;
        self.entries.push(entry);
        self.dirty = true;
        Ok(())
    }

    /// Replaces the entries and the file's contents (after a recovery found them wrong);
    /// no entries removes the file.
    ///
    /// # Errors
    /// [`StorageError::Io`].
    pub fn rewrite(&mut self, entries: Vec<TxnIndexEntry>) -> Result<()> {
        if entries.is_empty() {
            self.file = None;
            checkpoint::remove_if_exists(&self.path)?;
            self.entries = entries;
            self.dirty = false;
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(entries.len() * ENTRY_SIZE);
        for e in &entries {
            bytes.extend_from_slice(&e.to_bytes());
        }
        let path = self.path.clone();
        let file = self.file()?;
        file.set_len(0)
            .and_then(|()| file.write_all_at(&bytes, 0))
            .map_err(StorageError::io("write", &path))?;
        self.entries = entries;
        self.dirty = true;
        Ok(())
    }

    /// fsyncs the file if it was written since the last fsync.
    ///
    /// # Errors
    /// [`StorageError::Io`].
    pub fn sync(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(file) = &self.file {
            file.sync_all()
                .map_err(StorageError::io("fsync", &self.path))?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Kafka's `TransactionIndex.collectAbortedTxns`: appends to `out` the entries with
    /// `lastOffset >= fetch_offset` and `firstOffset < upper_bound_offset`, and returns
    /// whether the search is complete: an entry whose last stable offset reaches
    /// `upper_bound_offset` proves that no later segment holds a transaction overlapping the
    /// range.
    pub fn collect(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
        out: &mut Vec<TxnIndexEntry>,
    ) -> bool {
        for e in &self.entries {
            if e.last_offset >= fetch_offset && e.first_offset < upper_bound_offset {
                out.push(*e);
            }
            if e.last_stable_offset >= upper_bound_offset {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::TempDir;

    fn e(pid: i64, first: i64, last: i64, lso: i64) -> TxnIndexEntry {
        TxnIndexEntry {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entry_bytes_are_kafkas() {
        let bytes = e(0x0102, 3, 0x0a0b, 0x0a0c).to_bytes();
        let mut expected = vec![0u8, 0];
        expected.extend_from_slice(&0x0102i64.to_be_bytes());
        expected.extend_from_slice(&3i64.to_be_bytes());
        expected.extend_from_slice(&0x0a0bi64.to_be_bytes());
        expected.extend_from_slice(&0x0a0ci64.to_be_bytes());
        assert_eq!(bytes.to_vec(), expected);
        assert_eq!(
            parse(&bytes),
            StoredTxnIndex::Read(vec![e(0x0102, 3, 0x0a0b, 0x0a0c)], None)
        );
    }

    #[test]
    fn parse_cuts_partial_entries_and_rejects_bad_ones() {
        let mut bytes = e(1, 0, 5, 6).to_bytes().to_vec();
        bytes.extend_from_slice(&e(2, 3, 9, 10).to_bytes());
        let StoredTxnIndex::Read(entries, None) = parse(&bytes) else {
            panic!("valid");
        };
        assert_eq!(entries.len(), 2);
        let StoredTxnIndex::Read(entries, Some(_)) = parse(&bytes[..50]) else {
            panic!("torn");
        };
        assert_eq!(entries, vec![e(1, 0, 5, 6)]);
        // Not increasing, wrong version, reversed offsets: nothing is trusted.
        let mut unordered = e(2, 3, 9, 10).to_bytes().to_vec();
        unordered.extend_from_slice(&e(1, 0, 5, 6).to_bytes());
        let mut version = e(1, 0, 5, 6).to_bytes();
        version[1] = 1;
        for bad in [
            unordered,
            version.to_vec(),
            e(1, 7, 5, 6).to_bytes().to_vec(),
        ] {
            let StoredTxnIndex::Read(entries, Some(_)) = parse(&bad) else {
                panic!("rejected");
            };
            assert!(entries.is_empty());
        }
    }

    #[test]
    fn file_is_created_lazily_and_rewritten() {
        let dir = TempDir::new();
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut index = TxnIndex::new(path.clone(), Vec::new());
        assert_eq!(read(&path).unwrap(), StoredTxnIndex::Missing);
        index.append(e(1, 0, 5, 6)).unwrap();
        index.append(e(2, 3, 9, 10)).unwrap();
        assert!(index.append(e(3, 3, 9, 10)).is_err());
        index.sync().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 68);
        assert_eq!(
            read(&path).unwrap(),
            StoredTxnIndex::Read(index.entries().to_vec(), None)
        );
        index.rewrite(vec![e(1, 0, 5, 6)]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);
        index.rewrite(Vec::new()).unwrap();
        assert_eq!(read(&path).unwrap(), StoredTxnIndex::Missing);
    }

    #[test]
    fn collect_follows_kafkas_rule() {
        let mut index = TxnIndex::new(PathBuf::from("/nonexistent"), Vec::new());
        // Producer 2's transaction (from 3) was open when producer 1 aborted at 5.
        index.entries = vec![e(1, 0, 5, 3), e(2, 3, 10, 11), e(3, 12, 15, 16)];
        let mut out = Vec::new();
        // Entry 2's last stable offset (11) reaches the bound: complete.
        assert!(index.collect(4, 8, &mut out));
        assert_eq!(out, vec![e(1, 0, 5, 3), e(2, 3, 10, 11)]);
        out.clear();
        assert!(index.collect(0, 2, &mut out));
        assert_eq!(out, vec![e(1, 0, 5, 3)]);
        out.clear();
        // Nothing here proves the range complete: later segments must be searched.
        assert!(!index.collect(11, 40, &mut out));
        assert_eq!(out, vec![e(3, 12, 15, 16)]);
    }
}
