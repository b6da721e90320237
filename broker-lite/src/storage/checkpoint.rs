//! Small metadata files in a partition directory: the clean-shutdown marker and the log
//! start offset checkpoint.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use tracing::warn;

use super::error::{Result, StorageError};

/// Written by [`close`](super::PartitionLog::close) after everything was fsynced; its
/// presence on open means the previous shutdown was clean (Kafka's marker file name).
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// Holds the log start offset when it is not a segment's base offset (after
/// `DeleteRecords` or retention), as `0\n<offset>\n`.
pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";

/// fsyncs a directory, making file creations, renames and deletions in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io("fsync directory", dir))
}

/// Whether `path` exists (an error other than "not found" is reported).
pub(crate) fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io("stat", path)(e)),
    }
}

/// Removes a file; a missing file is not an error.
pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path)(e)),
    }
}

/// Writes `contents` to `dir/name` atomically: a temporary file, fsynced, renamed over the
/// target, then the directory fsynced.
pub(crate) fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(StorageError::io("create", &tmp))?;
        file.write_all(contents)
            .map_err(StorageError::io("write", &tmp))?;
        file.sync_all().map_err(StorageError::io("fsync", &tmp))?;
    }
    fs::rename(&tmp, &target).map_err(StorageError::io("rename", &tmp))?;
    sync_dir(dir)
}

/// Writes the clean-shutdown marker.
pub(crate) fn write_clean_shutdown(dir: &Path) -> Result<()> {
    write_atomically(dir, CLEAN_SHUTDOWN_FILE, b"")
}

/// Persists the log start offset.
pub(crate) fn write_log_start_offset(dir: &Path, offset: i64) -> Result<()> {
    write_atomically(
        dir,
        LOG_START_OFFSET_FILE,
        format!("0\n{offset}\n").as_bytes(),
    )
}

/// Reads the persisted log start offset; a missing or malformed file gives `None` (the
/// first segment's base offset is used then).
pub(crate) fn read_log_start_offset(dir: &Path) -> Result<Option<i64>> {
    let path = dir.join(LOG_START_OFFSET_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("open", &path)(e)),
    };
    let len = file
        .metadata()
        .map_err(StorageError::io("stat", &path))?
        .len();
    if len > 64 {
        warn!(path = %path.display(), "ignoring oversized log start offset checkpoint");
        return Ok(None);
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)
        .map_err(StorageError::io("read", &path))?;
    let parsed = std::str::from_utf8(&buf).ok().and_then(|text| {
        let mut lines = text.lines();
        match (lines.next(), lines.next(), lines.next()) {
            (Some("0"), Some(offset), None) => offset.trim().parse::<i64>().ok(),
            _ => None,
        }
    });
    match parsed {
        Some(offset) if offset >= 0 => Ok(Some(offset)),
        _ => {
            warn!(path = %path.display(), "ignoring malformed log start offset checkpoint");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::TempDir;

    #[test]
    fn log_start_offset_round_trip() {
        let dir = TempDir::new();
        assert_eq!(read_log_start_offset(dir.path()).unwrap(), None);
        write_log_start_offset(dir.path(), 1234).unwrap();
        assert_eq!(read_log_start_offset(dir.path()).unwrap(), Some(1234));
        assert_eq!(
            fs::read_to_string(dir.path().join(LOG_START_OFFSET_FILE)).unwrap(),
            "0\n1234\n"
        );
        fs::write(dir.path().join(LOG_START_OFFSET_FILE), "garbage").unwrap();
        assert_eq!(read_log_start_offset(dir.path()).unwrap(), None);
        fs::write(dir.path().join(LOG_START_OFFSET_FILE), vec![b'1'; 100]).unwrap();
        assert_eq!(read_log_start_offset(dir.path()).unwrap(), None);
    }
}
