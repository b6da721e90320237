//! Crash recovery tests: torn and corrupt tails, garbage, damaged or missing indexes,
//! corrupt middle segments and leftover files.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::storage::batch::BatchHeader;
use crate::storage::checkpoint::CLEAN_SHUTDOWN_FILE;
use crate::storage::segment::file_name;
use crate::storage::test_util::{batch, batch_of, offsets, TempDir};
use crate::storage::{LogConfig, PartitionLog, StorageError};

const NOW: i64 = 1_700_000_000_000;

/// One stored batch: position and size in its segment file, and its offsets.
#[derive(Clone, Copy, Debug)]
struct Stored {
    position: u64,
    size: u64,
    base_offset: i64,
    next_offset: i64,
}

/// Parses a segment file into its batches (the file must be valid).
fn layout(dir: &Path, base: i64) -> Vec<Stored> {
    let bytes = fs::read(dir.join(file_name(base, ".log"))).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]);
        let size = h.size().unwrap();
        out.push(Stored {
            position: pos as u64,
            size,
            base_offset: h.base_offset,
            next_offset: h.next_offset(),
        });
        pos += size as usize;
    }
    out
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 500,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

/// A log of 30 batches of 1 to 3 records over several segments; closed cleanly or not.
fn fixture(clean: bool) -> (TempDir, Vec<i64>, i64) {
    let dir = TempDir::new();
    let mut log = PartitionLog::open(dir.path(), config(), NOW).unwrap();
    for i in 0..30 {
        log.append(&mut batch_of(1 + i % 3, NOW + i as i64), NOW)
            .unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4, "{bases:?}");
    let leo = log.log_end_offset();
    if clean {
        log.close().unwrap();
    }
    (dir, bases, leo)
}

/// Reads everything the log serves, following `next_offset`.
fn read_all(log: &PartitionLog) -> Vec<i64> {
    let mut fetch = log.log_start_offset();
    let mut seen = Vec::new();
    while fetch < log.high_watermark() {
        let r = log.read(fetch, 1 << 20, log.high_watermark()).unwrap();
        seen.extend(offsets(&r.records));
        assert!(r.next_offset > fetch);
        fetch = r.next_offset;
    }
    seen
}

fn file_len(dir: &Path, base: i64, suffix: &str) -> u64 {
    fs::metadata(dir.join(file_name(base, suffix)))
        .unwrap()
        .len()
}

fn write_at(dir: &Path, base: i64, suffix: &str, pos: u64, bytes: &[u8]) {
    let file = OpenOptions::new()
        .write(true)
        .open(dir.join(file_name(base, suffix)))
        .unwrap();
    file.write_all_at(bytes, pos).unwrap();
}

/// Reopens and checks the log serves exactly offsets `0..expected_leo`, then that appends
/// continue from there.
fn reopen_and_check(dir: &Path, expected_leo: i64) -> PartitionLog {
    let mut log = PartitionLog::open(dir, config(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), expected_leo);
    assert_eq!(read_all(&log), (0..expected_leo).collect::<Vec<_>>());
    let info = log.append(&mut batch(&[(NOW, "after")]), NOW).unwrap();
    assert_eq!(info.base_offset, expected_leo);
    assert_eq!(
        offsets(
            &log.read(expected_leo, 1 << 20, expected_leo + 1)
                .unwrap()
                .records
        ),
        vec![expected_leo]
    );
    log
}

#[test]
fn torn_tail_is_truncated_to_the_last_whole_batch() {
    for clean in [false, true] {
        let (dir, bases, _) = fixture(clean);
        let last_base = *bases.last().unwrap();
        let batches = layout(dir.path(), last_base);
        let last = *batches.last().unwrap();
        // Cut the last batch in the middle.
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(file_name(last_base, ".log")))
            .unwrap();
        file.set_len(last.position + last.size / 2).unwrap();
        drop(file);
        drop(reopen_and_check(dir.path(), last.base_offset));
        // The file now holds whole batches only, the torn one replaced by the new append
        // (unless that append rolled a new segment).
        let now_stored = layout(dir.path(), last_base);
        let ends: Vec<i64> = now_stored.iter().map(|b| b.next_offset).collect();
        let (cut, after) = (last.base_offset, last.base_offset + 1);
        assert!(ends.iter().all(|&e| e <= cut || e == after), "{ends:?}");

        // A cut inside the 12-byte log overhead of a batch.
        let (dir, bases, _) = fixture(clean);
        let last_base = *bases.last().unwrap();
        let last = *layout(dir.path(), last_base).last().unwrap();
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(file_name(last_base, ".log")))
            .unwrap();
        file.set_len(last.position + 5).unwrap();
        drop(file);
        reopen_and_check(dir.path(), last.base_offset);
    }
}

#[test]
fn corrupt_tail_batch_is_cut_with_everything_after_it() {
    for clean in [false, true] {
        let (dir, bases, _) = fixture(clean);
        let last_base = *bases.last().unwrap();
        let batches = layout(dir.path(), last_base);
        assert!(batches.len() >= 2);
        // Flip a byte in the records of the second-to-last batch: its CRC fails, and the
        // (valid) last batch after it must not be served either.
        let victim = batches[batches.len() - 2];
        let at = victim.position + victim.size - 1;
        let mut byte = [0u8; 1];
        fs::File::open(dir.path().join(file_name(last_base, ".log")))
            .unwrap()
            .read_exact_at(&mut byte, at)
            .unwrap();
        write_at(dir.path(), last_base, ".log", at, &[byte[0] ^ 0x40]);
        let log = reopen_and_check(dir.path(), victim.base_offset);
        assert!(matches!(
            log.read(victim.next_offset + 1, 100, i64::MAX),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
    }
}

#[test]
fn garbage_after_the_last_batch_is_removed() {
    let garbage: [&[u8]; 4] = [
        &[0xab; 100],
        &[0; 4096],
        // A header claiming a 2 GiB batch: never allocated, just cut.
        &{
            let mut b = vec![0u8; 64];
            b[7] = 99;
            b[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
            b[16] = 2;
            b
        },
        // A plausible header whose CRC does not match.
        &{
            let mut b = batch(&[(NOW, "x")]).to_vec();
            b[0..8].copy_from_slice(&1000i64.to_be_bytes());
            b[17] ^= 1;
            b
        },
    ];
    for (i, junk) in garbage.iter().enumerate() {
        for clean in [false, true] {
            let (dir, bases, leo) = fixture(clean);
            let last_base = *bases.last().unwrap();
            let size = file_len(dir.path(), last_base, ".log");
            write_at(dir.path(), last_base, ".log", size, junk);
            let log = PartitionLog::open(dir.path(), config(), NOW).unwrap();
            assert_eq!(log.log_end_offset(), leo, "garbage {i}");
            assert_eq!(file_len(dir.path(), last_base, ".log"), size, "garbage {i}");
            assert_eq!(read_all(&log), (0..leo).collect::<Vec<_>>());
        }
    }
}

#[test]
fn missing_or_damaged_indexes_are_rebuilt_identically() {
    let (dir, bases, leo) = fixture(true);
    let original: Vec<(Vec<u8>, Vec<u8>)> = bases
        .iter()
        .map(|b| {
            (
                fs::read(dir.path().join(file_name(*b, ".index"))).unwrap(),
                fs::read(dir.path().join(file_name(*b, ".timeindex"))).unwrap(),
            )
        })
        .collect();
    assert!(original.iter().any(|(i, _)| !i.is_empty()));

    // Missing files.
    for b in &bases {
        fs::remove_file(dir.path().join(file_name(*b, ".index"))).unwrap();
        fs::remove_file(dir.path().join(file_name(*b, ".timeindex"))).unwrap();
    }
    let mut log = PartitionLog::open(dir.path(), config(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log), (0..leo).collect::<Vec<_>>());
    assert_eq!(
        log.offset_for_timestamp(NOW + 20)
            .unwrap()
            .map(|t| t.timestamp),
        Some(NOW + 20)
    );
    log.close().unwrap();
    for (b, (index, time_index)) in bases.iter().zip(&original) {
        assert_eq!(
            &fs::read(dir.path().join(file_name(*b, ".index"))).unwrap(),
            index
        );
        assert_eq!(
            &fs::read(dir.path().join(file_name(*b, ".timeindex"))).unwrap(),
            time_index
        );
    }

    // Damaged files: a torn entry, an entry past the end of the log, a stale last entry.
    let first = bases[0];
    write_at(
        dir.path(),
        first,
        ".index",
        original[0].0.len() as u64,
        &[1, 2, 3],
    );
    let second = bases[1];
    write_at(dir.path(), second, ".timeindex", 0, &[0xff; 12]);
    let third = bases[2];
    let mut stale = original[2].0.clone();
    let n = stale.len();
    assert!(n >= 8, "segment {third} should have index entries");
    stale[n - 1] = stale[n - 1].wrapping_add(1); // shift the last position by one byte
    fs::write(dir.path().join(file_name(third, ".index")), &stale).unwrap();
    let log = PartitionLog::open(dir.path(), config(), NOW).unwrap();
    assert_eq!(read_all(&log), (0..leo).collect::<Vec<_>>());
    assert_eq!(
        fs::read(dir.path().join(file_name(first, ".index"))).unwrap(),
        original[0].0
    );
    assert_eq!(
        fs::read(dir.path().join(file_name(third, ".index"))).unwrap(),
        original[2].0
    );
    assert_eq!(
        fs::read(dir.path().join(file_name(second, ".timeindex"))).unwrap(),
        original[1].1
    );
}

#[test]
fn corrupt_middle_segment_after_a_crash_drops_all_later_segments() {
    let (dir, bases, _) = fixture(false);
    let victim_base = bases[1];
    let batches = layout(dir.path(), victim_base);
    let victim = batches[1];
    // Break the magic byte of the second batch of the second segment.
    write_at(dir.path(), victim_base, ".log", victim.position + 16, &[1]);
    let log = reopen_and_check(dir.path(), victim.base_offset);
    assert_eq!(log.segment_base_offsets(), vec![bases[0], victim_base]);
    for later in &bases[2..] {
        for suffix in [".log", ".index", ".timeindex"] {
            assert!(!dir.path().join(file_name(*later, suffix)).exists());
        }
    }
}

#[test]
fn batches_overlapping_the_next_segment_are_invalid() {
    let dir = TempDir::new();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), NOW).unwrap();
    for _ in 0..10 {
        log.append(&mut batch_of(1, NOW), NOW).unwrap();
    }
    drop(log);
    // A later segment claiming offsets from 5 on: batches 5..9 of segment 0 overlap it.
    fs::write(dir.path().join(file_name(5, ".log")), b"").unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.segment_base_offsets(), vec![0]);
    assert!(!dir.path().join(file_name(5, ".log")).exists());
}

#[test]
fn leftover_files_are_cleaned_up() {
    let (dir, bases, leo) = fixture(true);
    let p = dir.path();
    fs::write(p.join("00000000000000000000.log.deleted"), b"old").unwrap();
    fs::write(p.join("00000000000000000000.index.deleted"), b"old").unwrap();
    fs::write(p.join(file_name(9999, ".index")), [0u8; 8]).unwrap();
    fs::write(p.join(file_name(9999, ".timeindex")), [0u8; 12]).unwrap();
    fs::write(p.join("00000000000000000000.log.swap"), b"cleaner").unwrap();
    fs::write(p.join("partition.metadata"), b"version: 0\n").unwrap();
    let log = PartitionLog::open(p, config(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.segment_base_offsets(), bases);
    assert!(!p.join("00000000000000000000.log.deleted").exists());
    assert!(!p.join("00000000000000000000.index.deleted").exists());
    assert!(!p.join(file_name(9999, ".index")).exists());
    assert!(!p.join(file_name(9999, ".timeindex")).exists());
    // Not a valid cleaner output, and segment 0 is still there: discarded.
    assert!(!p.join("00000000000000000000.log.swap").exists());
    assert!(p.join("partition.metadata").exists());
    assert!(!p.join(CLEAN_SHUTDOWN_FILE).exists());
}

#[test]
fn a_new_directory_starts_empty() {
    let dir = TempDir::new();
    let path = dir.path().join("orders-0");
    let log = PartitionLog::open(&path, LogConfig::default(), NOW).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (0, 0, 1)
    );
    assert_eq!(
        fs::metadata(path.join(file_name(0, ".log"))).unwrap().len(),
        0
    );
    let bad = LogConfig {
        segment_bytes: 1,
        ..LogConfig::default()
    };
    assert!(matches!(
        PartitionLog::open(dir.path().join("orders-1"), bad, NOW),
        Err(StorageError::InvalidConfig(_))
    ));
}

/// Random damage (bit flips in logs and indexes, torn files): opening never fails or
/// panics, and everything served is whole, CRC-valid batches in offset order. After a
/// crash everything is recovered, so reads always succeed; after a clean shutdown the
/// inactive segments are trusted as Kafka trusts them, so damage there may surface as a
/// `CorruptLog` error, never as bad data or a panic.
#[test]
fn random_damage_never_breaks_the_log() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..100 {
        let clean = round % 2 == 1;
        let (dir, bases, _) = fixture(clean);
        for _ in 0..1 + next() % 4 {
            let base = bases[(next() % bases.len() as u64) as usize];
            let suffix = [".log", ".log", ".index", ".timeindex"][(next() % 4) as usize];
            let len = file_len(dir.path(), base, suffix);
            if len == 0 {
                continue;
            }
            let at = next() % len;
            if next() % 5 == 0 {
                let file = OpenOptions::new()
                    .write(true)
                    .open(dir.path().join(file_name(base, suffix)))
                    .unwrap();
                file.set_len(at).unwrap();
            } else {
                write_at(dir.path(), base, suffix, at, &[(next() % 255 + 1) as u8]);
            }
        }
        let log = PartitionLog::open(dir.path(), config(), NOW).unwrap();
        let tolerate = |e: StorageError| {
            assert!(
                clean && matches!(e, StorageError::CorruptLog { .. }),
                "round {round}: {e}"
            );
        };
        let mut fetch = log.log_start_offset();
        let mut last = -1;
        while fetch < log.high_watermark() {
            let r = match log.read(fetch, 1 << 20, log.high_watermark()) {
                Ok(r) => r,
                Err(e) => {
                    tolerate(e);
                    break;
                }
            };
            // Like a client, skip records below the fetch offset (the first batch may
            // start before it). After a crash every served batch was CRC-checked on open;
            // after a clean shutdown only framing and offsets are (Kafka does not check
            // CRCs when serving either; consumers do).
            let served: Vec<i64> = if clean {
                let mut offsets = Vec::new();
                let mut pos = 0;
                while pos < r.records.len() {
                    let h = BatchHeader::parse(&r.records[pos..]);
                    offsets.extend(h.base_offset..h.next_offset());
                    pos += h.size().unwrap() as usize;
                }
                assert_eq!(pos, r.records.len());
                offsets
            } else {
                offsets(&r.records)
            };
            for offset in served {
                if offset >= fetch {
                    assert!(offset > last, "round {round}: offsets out of order");
                    last = offset;
                }
            }
            assert!(r.next_offset > fetch, "round {round}: no progress");
            fetch = r.next_offset;
        }
        if let Err(e) = log.offset_for_timestamp(NOW + 5) {
            tolerate(e);
        }
        if let Err(e) = log.max_timestamp_offset() {
            tolerate(e);
        }
    }
}
