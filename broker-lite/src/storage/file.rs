//! Positional file reads: [`BatchScanner`] walks the batch headers of a segment through a
//! small window, checking every length against the segment's size before trusting it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

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
static POOL: BufferPool = BufferPool(Mutex::new(Vec::new()));
/// At most this many buffers are kept (so at most 64 MiB stays pooled)...
const POOL_BUFFERS: usize = 32;
/// ...each of at most this capacity.
const POOL_BUFFER_MAX: usize = 2 * 1024 * 1024;

/// Buffers kept for reuse: at most [`POOL_BUFFERS`], each of at most [`POOL_BUFFER_MAX`]
/// capacity.
struct BufferPool(Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    /// The smallest kept buffer with room for `len` bytes, so that small reads leave the
    /// large buffers to large ones.
    fn take(&self, len: usize) -> Option<Vec<u8>> {
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (i, _) = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())?;
        Some(pool.swap_remove(i))
    }

    /// Keeps `buf` unless it is too large or the pool is full.
    fn put(&self, buf: Vec<u8>) {
        if buf.capacity() > POOL_BUFFER_MAX {
            return;
        }
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_BUFFERS {
            pool.push(buf);
        }
    }
}

/// Reads `len` bytes at `pos` into a buffer taken from the pool when one is large enough
/// (only the part not initialised by its previous use is zero-filled).
pub(crate) fn read_at_pooled(file: &File, path: &Path, pos: u64, len: usize) -> Result<Vec<u8>> {
    let Some(mut buf) = POOL.take(len) else {
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
    if let Ok(bytes) = bytes.try_into_mut() {
        POOL.put(bytes.into());
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

    /// Appends the `len` bytes at `pos` (`pos + len <= end`, such as a batch that
    /// [`header_at`](Self::header_at) returned) to `out`: copied from the window when they
    /// fit in it (refilling it from `pos` if needed, so that the batches after it are read
    /// with it), else read directly.
    pub fn read_into(&mut self, pos: u64, len: usize, out: &mut BytesMut) -> Result<()> {
        let path = self.path;
        if len <= WINDOW {
            let bytes = self
                .slice(pos, len)
                .map_err(StorageError::io("read", path))?;
            out.extend_from_slice(bytes);
            return Ok(());
        }
        let start = out.len();
        out.resize(start + len, 0);
        self.file
            .read_exact_at(&mut out[start..], pos)
            .map_err(StorageError::io("read", path))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::TempDir;

    #[test]
    fn the_pool_hands_out_the_smallest_fitting_buffer_and_stays_bounded() {
        let pool = BufferPool(Mutex::new(Vec::new()));
        for capacity in [POOL_BUFFER_MAX, 1024, 64 * 1024] {
            pool.put(Vec::with_capacity(capacity));
        }
        // Too large to keep.
        pool.put(Vec::with_capacity(POOL_BUFFER_MAX + 1));
        assert_eq!(pool.take(100).map(|b| b.capacity()), Some(1024));
        assert_eq!(pool.take(100).map(|b| b.capacity()), Some(64 * 1024));
        assert!(pool.take(POOL_BUFFER_MAX + 1).is_none());
        assert_eq!(pool.take(100).map(|b| b.capacity()), Some(POOL_BUFFER_MAX));
        assert!(pool.take(0).is_none());
        for _ in 0..POOL_BUFFERS + 5 {
            pool.put(Vec::with_capacity(16));
        }
        assert_eq!(pool.0.lock().unwrap().len(), POOL_BUFFERS);
    }

    #[test]
    fn read_into_serves_the_window_and_reads_large_ranges_directly() {
        let dir = TempDir::new();
        let path = dir.path().join("data");
        let data: Vec<u8> = (0..3 * WINDOW as u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let end = data.len() as u64;
        let mut scanner = BatchScanner::new(&file, &path, end);
        let mut out = BytesMut::from(&b"kept"[..]);
        // Small ranges (within and across window refills) and a range larger than the
        // window are appended after what `out` holds.
        let ranges = [
            (10, 100),
            (WINDOW - 50, 100),
            (200, 2 * WINDOW + 1),
            (0, WINDOW),
        ];
        let mut expected = b"kept".to_vec();
        for (pos, len) in ranges {
            scanner.read_into(pos as u64, len, &mut out).unwrap();
            expected.extend_from_slice(&data[pos..pos + len]);
        }
        assert_eq!(&out[..], &expected[..]);
        // A range past the end is an error, not a short read.
        let mut short = BatchScanner::new(&file, &path, end - 10);
        assert!(short.read_into(end - 20, 20, &mut out).is_err());
    }
}
