//! Positional file reads: [`BatchScanner`] walks the batch headers of a segment through a
//! small window, checking every length against the segment's size before trusting it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;

use super::batch::{BatchHeader, BATCH_HEADER_SIZE};
use super::error::{Result, StorageError};

/// Size of the read window: headers of small batches come from one `pread`.
const WINDOW: usize = 64 * 1024;

/// Reads `len` bytes at `pos` into a fresh buffer.
pub(crate) fn read_at(file: &File, path: &Path, pos: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, pos)
        .map_err(StorageError::io("read", path))?;
    Ok(buf)
}

/// Read buffers returned by [`recycle`], kept so that fetches reuse memory that is already
/// mapped and initialised instead of zero-filling (and page-faulting in) a fresh buffer of
/// up to `partition_max_bytes` per partition per Fetch.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// At most this many buffers are kept (so at most 64 MiB stays pooled)...
const POOL_BUFFERS: usize = 32;
/// ...each of at most this capacity.
const POOL_BUFFER_MAX: usize = 2 * 1024 * 1024;

/// Reads `len` bytes at `pos` into a buffer taken from the pool when one is large enough
/// (only the part not initialised by its previous use is zero-filled).
pub(crate) fn read_at_pooled(file: &File, path: &Path, pos: u64, len: usize) -> Result<Vec<u8>> {
    let reused = {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        pool.iter()
            .position(|b| b.capacity() >= len)
            .map(|i| pool.swap_remove(i))
    };
    let Some(mut buf) = reused else {
        return read_at(file, path, pos, len);
    };
    if buf.len() >= len {
        buf.truncate(len);
    } else {
        buf.resize(len, 0);
    }
    file.read_exact_at(&mut buf, pos)
        .map_err(StorageError::io("read", path))?;
    Ok(buf)
}

/// Gives the buffer behind `bytes` back to the pool of [`read_at_pooled`] when nothing else
/// references it; otherwise (or when the pool is full) just drops it.
pub(crate) fn recycle(bytes: Bytes) {
    if bytes.is_empty() || bytes.len() > POOL_BUFFER_MAX {
        return;
    }
    let Ok(bytes) = bytes.try_into_mut() else {
        return;
    };
    let buf: Vec<u8> = bytes.into();
    if buf.capacity() > POOL_BUFFER_MAX {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if pool.len() < POOL_BUFFERS {
        pool.push(buf);
    }
}

/// Reads the batch headers of one segment file, in order or at chosen positions.
///
/// `end` is the number of valid bytes in the file; a header whose batch would extend past
/// `end` is reported as [`StorageError::CorruptLog`], never trusted.
pub(crate) struct BatchScanner<'a> {
    file: &'a File,
    path: &'a Path,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> BatchScanner<'a> {
    pub fn new(file: &'a File, path: &'a Path, end: u64) -> Self {
        BatchScanner {
            file,
            path,
            end,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// `len` bytes at `pos` (`len <= WINDOW`, `pos + len <= end`), from the window when
    /// possible.
    fn slice(&mut self, pos: u64, len: usize) -> io::Result<&[u8]> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || pos + len as u64 > buf_end {
            let want = (self.end - pos).min(WINDOW as u64) as usize;
            if want < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the segment",
                ));
            }
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.buf_start = pos;
        }
        let at = (pos - self.buf_start) as usize;
        Ok(&self.buf[at..at + len])
    }

    fn corrupt(&self, position: u64, reason: String) -> StorageError {
        StorageError::CorruptLog {
            path: self.path.to_path_buf(),
            position,
            reason,
        }
    }

    /// The header of the batch at `pos` and the batch's size, or `None` when `pos` is the
    /// end. The batch is checked to be whole within `end`.
    pub fn header_at(&mut self, pos: u64) -> Result<Option<(BatchHeader, u64)>> {
        if pos >= self.end {
            return Ok(None);
        }
        if self.end - pos < BATCH_HEADER_SIZE as u64 {
            return Err(self.corrupt(pos, "partial batch header".into()));
        }
        let path = self.path;
        let bytes = self
            .slice(pos, BATCH_HEADER_SIZE)
            .map_err(StorageError::io("read", path))?;
        let header = BatchHeader::parse(bytes);
        let Some(size) = header.size() else {
            return Err(self.corrupt(
                pos,
                format!("batch length {} is too small", header.batch_length),
            ));
        };
        if size > self.end - pos {
            return Err(self.corrupt(
                pos,
                format!("batch of {size} bytes extends past the end of the segment"),
            ));
        }
        Ok(Some((header, size)))
    }

    /// Streams the CRC-covered bytes of the batch at `pos` (of `size` bytes) through
    /// CRC-32C without allocating more than the window.
    pub fn crc_of(&mut self, pos: u64, size: u64) -> Result<u32> {
        const CRC_START: u64 = 21;
        let mut crc = 0u32;
        let path = self.path;
        let mut at = pos + CRC_START;
        let stop = pos + size;
        while at < stop {
            let n = (stop - at).min(WINDOW as u64) as usize;
            let chunk = self.slice(at, n).map_err(StorageError::io("read", path))?;
            crc = crc32c::crc32c_append(crc, chunk);
            at += n as u64;
        }
        Ok(crc)
    }
}
