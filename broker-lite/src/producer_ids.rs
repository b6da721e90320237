//! Producer id allocation for InitProducerId (KIP-98): an id is never handed out twice, not
//! even across restarts.
//!
//! Kafka's controller reserves blocks of ids in its metadata log (`ProducerIdControlManager`,
//! KIP-730) and brokers hand ids out of their current block. broker-lite does the same with
//! one small file, `<data dir>/broker-lite-producer-ids`, holding the end (exclusive) of the
//! last reserved block: `block.end=<n>`. A new block of [`BLOCK_SIZE`] ids is written (temp
//! file, fsync, rename, directory fsync) *before* any id of it is handed out, so after a crash
//! or restart allocation resumes at the persisted end and the unused rest of the last block is
//! skipped, never reused. The file name cannot clash with a partition directory (those end in
//! `-<number>`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;
use tracing::info;

/// How many producer ids are reserved at a time (Kafka's controller also hands out 1000).
pub(crate) const BLOCK_SIZE: i64 = 1000;
/// The file holding the end of the last reserved block.
pub(crate) const FILE_NAME: &str = "broker-lite-producer-ids";
/// The file is a single short line: anything longer is not ours.
const MAX_FILE_LEN: u64 = 4096;

/// Why a producer id could not be allocated, or the allocator not opened.
#[derive(Debug, Error)]
pub(crate) enum ProducerIdError {
    /// The block file could not be read or written.
    #[error("producer id block file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The block file exists but does not hold a valid block end: starting would risk reusing
    /// ids, so the broker refuses to.
    #[error("corrupt producer id block file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Every producer id up to `i64::MAX` has been reserved.
    #[error("producer ids are exhausted")]
    Exhausted,
}

/// Hands out producer ids from blocks reserved on disk.
#[derive(Debug)]
pub(crate) struct ProducerIdAllocator {
    path: PathBuf,
    /// The next id to hand out.
    next: i64,
    /// End (exclusive) of the reserved block, as persisted.
    block_end: i64,
}

impl ProducerIdAllocator {
    /// Reads the last reserved block end from `data_dir` (none yet: ids start at 0).
    ///
    /// # Errors
    /// [`ProducerIdError::Io`] or [`ProducerIdError::Corrupt`].
    pub fn open(data_dir: &Path) -> Result<ProducerIdAllocator, ProducerIdError> {
        let path = data_dir.join(FILE_NAME);
        let io_err = |source| ProducerIdError::Io {
            path: path.clone(),
            source,
        };
        let corrupt = |reason: &str| ProducerIdError::Corrupt {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let block_end = match fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(e)),
            Ok(m) if m.len() > MAX_FILE_LEN => return Err(corrupt("file too large")),
            Ok(_) => {
                let text = fs::read_to_string(&path).map_err(io_err)?;
                parse_block_end(&text).ok_or_else(|| corrupt("no valid block.end line"))?
            }
        };
        Ok(ProducerIdAllocator {
            path,
            next: block_end,
            block_end,
        })
    }

    /// The next producer id, reserving (and persisting) a new block first when the current
    /// one is used up.
    ///
    /// # Errors
    /// [`ProducerIdError::Io`] when the new block cannot be persisted (no id is handed out
    /// then), [`ProducerIdError::Exhausted`] past `i64::MAX`.
    pub fn allocate(&mut self) -> Result<i64, ProducerIdError> {
        if self.next >= self.block_end {
            let end = self
                .block_end
                .checked_add(BLOCK_SIZE)
                .ok_or(ProducerIdError::Exhausted)?;
            self.persist(end).map_err(|source| ProducerIdError::Io {
                path: self.path.clone(),
                source,
            })?;
            info!(
                start = self.block_end,
                end, "reserved a block of producer ids"
            );
            self.next = self.block_end;
            self.block_end = end;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }

    /// Writes `block.end=<end>` atomically and durably.
    fn persist(&self, end: i64) -> io::Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(
                format!(
                    "# broker-lite: producer ids below block.end may have been handed out\n\
                     block.end={end}\n"
                )
                .as_bytes(),
            )?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// The `block.end` value of the file's text: a non-negative integer.
fn parse_block_end(text: &str) -> Option<i64> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|l| l.strip_prefix("block.end="))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = ProducerIdAllocator::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        assert_eq!(
            parse_block_end(&fs::read_to_string(dir.path().join(FILE_NAME)).unwrap()),
            Some(BLOCK_SIZE)
        );
        drop(a);
        // A restart skips the rest of the block.
        let mut b = ProducerIdAllocator::open(dir.path()).unwrap();
        assert_eq!(b.allocate().unwrap(), BLOCK_SIZE);
        for _ in 1..BLOCK_SIZE {
            b.allocate().unwrap();
        }
        // The next block is reserved on demand.
        assert_eq!(b.allocate().unwrap(), 2 * BLOCK_SIZE);
        assert_eq!(
            parse_block_end(&fs::read_to_string(dir.path().join(FILE_NAME)).unwrap()),
            Some(3 * BLOCK_SIZE)
        );
    }

    #[test]
    fn corrupt_or_exhausted() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "block.end=x", "block.end=-5", "other=1"] {
            fs::write(dir.path().join(FILE_NAME), bad).unwrap();
            assert!(matches!(
                ProducerIdAllocator::open(dir.path()),
                Err(ProducerIdError::Corrupt { .. })
            ));
        }
        fs::write(dir.path().join(FILE_NAME), vec![b'#'; 5000]).unwrap();
        assert!(ProducerIdAllocator::open(dir.path()).is_err());
        fs::write(
            dir.path().join(FILE_NAME),
            format!("# c\nblock.end={}\n", i64::MAX - 10),
        )
        .unwrap();
        let mut a = ProducerIdAllocator::open(dir.path()).unwrap();
        assert!(matches!(a.allocate(), Err(ProducerIdError::Exhausted)));
    }
}
