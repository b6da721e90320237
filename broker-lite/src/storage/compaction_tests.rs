//! Compaction tests: latest record per key with original offsets, tombstones and their
//! delete horizon, the active segment and the high watermark, the triggers, producer state,
//! and crashes at every step of the swap.

use std::fs;

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{BatchOptions, Compression, RecordBatch, RecordBatchBuilder};

use super::*;
use crate::storage::test_util::TempDir;
use crate::storage::{CleanupPolicy, LogConfig, PartitionLog, StorageError};

const NOW: i64 = 1_700_000_000_000;

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        delete_retention_ms: 1000,
        ..LogConfig::default()
    }
}

/// One batch of `(key, value)` records (`None` value: a tombstone), timestamps `ts + i`.
fn kbatch_with(opts: BatchOptions, records: &[(&str, Option<&str>)], ts: i64) -> BytesMut {
    let mut b = RecordBatchBuilder::new(opts);
    for (i, (k, v)) in records.iter().enumerate() {
        b.append(
            ts + i as i64,
            Some(k.as_bytes()),
            v.map(str::as_bytes),
            &[("h", Some(b"x"))],
        )
        .unwrap();
    }
    BytesMut::from(&b.finish().unwrap()[..])
}

fn kbatch(records: &[(&str, Option<&str>)]) -> BytesMut {
    kbatch_with(BatchOptions::default(), records, NOW)
}

#[test]
fn batches_are_read_through_the_scanner_window_into_one_reused_buffer() {
    let dir = TempDir::new();
    let path = dir.path().join("batches");
    // Two batches of the same size (different keys and values).
    let (a, b) = (kbatch(&[("k", Some("v"))]), kbatch(&[("j", Some("w"))]));
    assert_eq!(a.len(), b.len());
    fs::write(&path, [&a[..], &b[..]].concat()).unwrap();
    let file = File::open(&path).unwrap();
    let mut scanner = BatchScanner::new(&file, &path, (a.len() + b.len()) as u64);
    let mut buf = BytesMut::new();
    let next = |scanner: &mut BatchScanner<'_>, position: u64, buf: &mut BytesMut| {
        let (header, size) = scanner.header_at(position).unwrap().unwrap();
        let at = BatchPosition {
            position,
            header,
            size,
        };
        (read_batch(scanner, &at, buf).unwrap(), size)
    };
    let (first, size) = next(&mut scanner, 0, &mut buf);
    assert_eq!(first, a);
    let memory = first.as_ptr();
    drop(first);
    // An allocation of the same size meanwhile would take the first batch's memory if it had
    // been freed.
    let other = vec![1u8; a.len()];
    let (second, _) = next(&mut scanner, size, &mut buf);
    assert_eq!(second, b);
    assert_eq!(
        second.as_ptr(),
        memory,
        "the first batch's memory is reused"
    );
    drop(other);
    // While a batch's bytes are held, the next one goes elsewhere.
    let (third, _) = next(&mut scanner, 0, &mut buf);
    assert_eq!((&third[..], &second[..]), (&a[..], &b[..]));
}

/// `(offset, key, value)` of every record readable from `from`, batch by batch.
fn contents(log: &PartitionLog, from: i64) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = from;
    let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    loop {
        let read = log.read(offset, 1 << 20, log.high_watermark()).unwrap();
        if read.records.is_empty() {
            return out;
        }
        let mut buf = read.records.clone();
        while !buf.is_empty() {
            let batch = RecordBatch::decode(&mut buf).unwrap();
            batch.verify_crc().unwrap();
            for r in batch.records(1 << 20).unwrap() {
                let r = r.unwrap();
                if r.offset >= offset {
                    assert_eq!(r.headers.len(), 1, "headers survive");
                    out.push((r.offset, text(r.key).unwrap(), text(r.value)));
                }
            }
        }
        offset = read.next_offset;
    }
}

fn entry(offset: i64, key: &str, value: Option<&str>) -> (i64, String, Option<String>) {
    (offset, key.to_string(), value.map(str::to_string))
}

/// Segments 0 (offsets 0-2), 3 (offsets 3-4) and the active segment 5 (offset 5).
fn sample_log(dir: &TempDir, config: LogConfig) -> PartitionLog {
    let mut log = PartitionLog::open(dir.path(), config, NOW).unwrap();
    log.append(&mut kbatch(&[("k1", Some("a1")), ("k2", Some("b1"))]), NOW)
        .unwrap();
    log.append(&mut kbatch(&[("k1", Some("a2"))]), NOW).unwrap();
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("k3", Some("c1")), ("k2", Some("b2"))]), NOW)
        .unwrap();
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("k1", Some("a3"))]), NOW).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 3, 5]);
    log
}

fn compacted_sample() -> Vec<(i64, String, Option<String>)> {
    vec![
        entry(2, "k1", Some("a2")),
        entry(3, "k3", Some("c1")),
        entry(4, "k2", Some("b2")),
        // The active segment is never cleaned, so k1@2 stays next to k1@5.
        entry(5, "k1", Some("a3")),
    ]
}

fn leftovers(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect();
    names.sort();
    names
}

#[test]
fn keeps_the_latest_record_per_key_at_its_original_offset() {
    let dir = TempDir::new();
    let mut log = sample_log(&dir, compacted());
    let size_before = log.size_in_bytes();
    let active_before = fs::read(dir.path().join(file_name(5, LOG_SUFFIX))).unwrap();

    let outcome = log.compact_now(NOW).unwrap().unwrap();
    assert_eq!(outcome.segments_replaced, 2, "{outcome:?}");
    assert_eq!(outcome.segments_written, 1, "both fit one segment");
    assert_eq!(outcome.records_removed, 2);
    assert_eq!(outcome.first_dirty_offset, 5);
    assert_eq!(log.cleaner_checkpoint(), Some(5));
    assert!(outcome.bytes_after < outcome.bytes_before);
    assert!(log.size_in_bytes() < size_before);

    assert_eq!(log.segment_base_offsets(), vec![0, 5]);
    assert_eq!(contents(&log, 0), compacted_sample());
    // Offsets inside removed ranges read the next batch; offsets are unchanged.
    assert_eq!(contents(&log, 1)[0].0, 2);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 6));
    assert_eq!(
        log.list_offsets(crate::storage::EARLIEST_TIMESTAMP)
            .unwrap()
            .unwrap()
            .offset,
        0
    );
    // The active segment is untouched, byte for byte.
    assert_eq!(
        fs::read(dir.path().join(file_name(5, LOG_SUFFIX))).unwrap(),
        active_before
    );
    assert!(leftovers(&dir).is_empty());

    // Idempotent: a second pass with nothing dirty changes nothing.
    let again = log.compact_now(NOW).unwrap().unwrap();
    assert_eq!((again.segments_written, again.records_removed), (0, 0));
    assert_eq!(contents(&log, 0), compacted_sample());

    // Appends go on; reopening (cleanly or after a crash) serves the same records with
    // valid indexes.
    log.append(&mut kbatch(&[("k2", Some("b3"))]), NOW).unwrap();
    let mut expected = compacted_sample();
    expected.push(entry(6, "k2", Some("b3")));
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    assert_eq!(contents(&log, 0), expected);
    drop(log);
    let log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    assert_eq!(contents(&log, 0), expected);
}

#[test]
fn compressed_batches_keep_their_codec_and_offsets() {
    let dir = TempDir::new();
    let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    let gzip = BatchOptions {
        compression: Compression::Gzip,
        ..BatchOptions::default()
    };
    let records: Vec<(String, Option<String>)> = (0..20)
        .map(|i| (format!("k{}", i % 4), Some(format!("v{i}"))))
        .collect();
    let refs: Vec<(&str, Option<&str>)> = records
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    log.append(&mut kbatch_with(gzip, &refs, NOW), NOW).unwrap();
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("other", Some("x"))]), NOW)
        .unwrap();
    log.compact_now(NOW).unwrap().unwrap();

    let read = log.read(0, 1 << 20, 21).unwrap();
    let batch = RecordBatch::from_bytes(read.records.clone()).unwrap();
    batch.verify_crc().unwrap();
    assert_eq!(batch.compression().unwrap(), Compression::Gzip);
    assert_eq!((batch.base_offset(), batch.last_offset_delta()), (0, 19));
    assert_eq!(batch.record_count(), 4);
    assert_eq!(batch.max_timestamp(), NOW + 19);
    let kept: Vec<(i64, i64)> = batch
        .records(1 << 20)
        .unwrap()
        .map(|r| r.unwrap())
        .map(|r| (r.offset, r.timestamp))
        .collect();
    assert_eq!(
        kept,
        vec![
            (16, NOW + 16),
            (17, NOW + 17),
            (18, NOW + 18),
            (19, NOW + 19)
        ]
    );
}

#[test]
fn tombstones_are_kept_until_their_delete_horizon() {
    let dir = TempDir::new();
    let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    log.append(&mut kbatch(&[("k1", Some("a")), ("k2", Some("b"))]), NOW)
        .unwrap();
    log.append(&mut kbatch(&[("k1", None)]), NOW).unwrap();
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("k3", Some("c"))]), NOW).unwrap();

    // First pass: k1's value goes, its tombstone stays and gets a delete horizon.
    let t0 = NOW + 5000;
    let outcome = log.compact_now(t0).unwrap().unwrap();
    assert_eq!(outcome.records_removed, 1);
    assert_eq!(
        contents(&log, 0),
        vec![
            entry(1, "k2", Some("b")),
            entry(2, "k1", None),
            entry(3, "k3", Some("c"))
        ]
    );
    let read = log.read(2, 1 << 20, 3).unwrap();
    let tombstone_batch = RecordBatch::from_bytes(read.records.clone()).unwrap();
    assert_eq!(tombstone_batch.delete_horizon_ms(), Some(t0 + 1000));
    assert_eq!(
        tombstone_batch
            .records(1 << 20)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .timestamp,
        NOW,
        "record timestamps survive the horizon in baseTimestamp"
    );
    // The batch of k1/k2 kept its base offset and last offset delta.
    let read = log.read(0, 1 << 20, 3).unwrap();
    let mut buf = read.records.clone();
    let first = RecordBatch::decode(&mut buf).unwrap();
    assert_eq!((first.base_offset(), first.last_offset()), (0, 1));
    assert_eq!(first.delete_horizon_ms(), None);

    // Nothing is dirty and the horizon has not passed: no pass.
    assert_eq!(log.maybe_compact(t0 + 999).unwrap(), None);
    assert_eq!(contents(&log, 0).len(), 3);
    // Once it has, the retention task's pass removes the tombstone.
    let outcome = log.maybe_compact(t0 + 1000).unwrap().unwrap();
    assert_eq!(outcome.records_removed, 1);
    assert_eq!(
        contents(&log, 0),
        vec![entry(1, "k2", Some("b")), entry(3, "k3", Some("c"))]
    );
    assert_eq!(log.maybe_compact(t0 + 100_000).unwrap(), None);
}

#[test]
fn the_active_segment_and_offsets_at_or_above_the_high_watermark_are_never_cleaned() {
    let dir = TempDir::new();
    let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    for v in ["a", "b", "c"] {
        log.append(&mut kbatch(&[("k", Some(v))]), NOW).unwrap();
    }
    let active = fs::read(dir.path().join(file_name(0, LOG_SUFFIX))).unwrap();
    let outcome = log.compact_now(NOW).unwrap().unwrap();
    assert_eq!(outcome.segments_written, 0);
    assert_eq!(log.cleaner_checkpoint(), Some(0));
    assert_eq!(
        fs::read(dir.path().join(file_name(0, LOG_SUFFIX))).unwrap(),
        active
    );
    assert_eq!(contents(&log, 0).len(), 3);

    // A high watermark inside segment 0 keeps that segment out of the cleanable range.
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("k", Some("d"))]), NOW).unwrap();
    log.set_auto_high_watermark(false);
    log.set_high_watermark(2);
    let range = log.cleanable_range(NOW);
    assert_eq!(range.first_uncleanable_offset, 0);
    assert_eq!(range.dirty_bytes, 0);
    assert_eq!(log.compact_now(NOW).unwrap().unwrap().segments_written, 0);
    log.set_high_watermark(4);
    assert_eq!(log.compact_now(NOW).unwrap().unwrap().records_removed, 2);
    assert_eq!(
        contents(&log, 0),
        vec![entry(2, "k", Some("c")), entry(3, "k", Some("d"))]
    );
}

#[test]
fn dirty_ratio_and_lags_decide_when_to_clean() {
    let dir = TempDir::new();
    let mut log = sample_log(&dir, compacted());
    // Never cleaned: everything below the active segment is dirty.
    let range = log.cleanable_range(NOW);
    assert_eq!(
        (range.first_dirty_offset, range.first_uncleanable_offset),
        (0, 5)
    );
    assert_eq!(range.clean_bytes, 0);
    assert_eq!(range.dirty_ratio, 1.0);

    // min.compaction.lag.ms: segments with records younger than the lag are not cleanable.
    log.set_config(LogConfig {
        min_compaction_lag_ms: 10_000,
        ..compacted()
    });
    assert_eq!(log.cleanable_range(NOW + 5000).first_uncleanable_offset, 0);
    assert_eq!(log.maybe_compact(NOW + 5000).unwrap(), None);
    assert!(log.maybe_compact(NOW + 20_000).unwrap().is_some());
    let clean_size = log.size_in_bytes() - log.active().size();

    // A small dirty segment after a larger clean part: ratio below 0.5, no pass...
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("k9", Some("z"))]), NOW).unwrap();
    log.set_config(compacted());
    let range = log.cleanable_range(NOW);
    assert_eq!(range.first_dirty_offset, 5);
    assert_eq!(range.clean_bytes, clean_size);
    assert!(range.dirty_ratio < 0.5, "{range:?}");
    assert_eq!(log.maybe_compact(NOW).unwrap(), None);
    // ...unless max.compaction.lag.ms has passed for the oldest dirty batch...
    log.set_config(LogConfig {
        max_compaction_lag_ms: 1000,
        ..compacted()
    });
    assert_eq!(log.maybe_compact(NOW + 1000).unwrap(), None);
    assert!(log.cleanable_range(NOW + 1001).max_lag_exceeded);
    assert!(log.maybe_compact(NOW + 1001).unwrap().is_some());
    // ...or the ratio threshold is lower.
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("k9", Some("y"))]), NOW).unwrap();
    log.set_config(LogConfig {
        min_cleanable_dirty_ratio: 0.01,
        ..compacted()
    });
    assert!(log.maybe_compact(NOW).unwrap().is_some());
    assert_eq!(
        contents(&log, 0).last().unwrap(),
        &entry(7, "k9", Some("y"))
    );

    // A delete-only log is never compacted.
    log.set_config(LogConfig::default());
    assert_eq!(log.maybe_compact(NOW).unwrap(), None);
    assert_eq!(log.compact_now(NOW).unwrap(), None);
}

#[test]
fn the_last_batch_of_a_known_producer_survives_empty() {
    let dir = TempDir::new();
    let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    let idempotent = |producer_id: i64, base_sequence: i32| BatchOptions {
        producer_id,
        producer_epoch: 0,
        base_sequence,
        ..BatchOptions::default()
    };
    // Producer 7's only batch and producer 8's first batch are superseded by later records.
    log.append(
        &mut kbatch_with(idempotent(7, 0), &[("k", Some("a")), ("j", Some("a"))], NOW),
        NOW,
    )
    .unwrap();
    log.append(
        &mut kbatch_with(idempotent(8, 0), &[("k", Some("b"))], NOW),
        NOW,
    )
    .unwrap();
    log.append(
        &mut kbatch_with(idempotent(8, 1), &[("j", Some("b"))], NOW),
        NOW,
    )
    .unwrap();
    log.append(&mut kbatch(&[("k", Some("c")), ("j", Some("c"))]), NOW)
        .unwrap();
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("z", Some("z"))]), NOW).unwrap();

    log.compact_now(NOW).unwrap().unwrap();
    assert_eq!(
        contents(&log, 0),
        vec![
            entry(4, "k", Some("c")),
            entry(5, "j", Some("c")),
            entry(6, "z", Some("z"))
        ]
    );
    // Producer 7's batch is kept as an empty header with its offsets and sequence;
    // producer 8's first batch is gone, its last (emptied) batch kept.
    let read = log.read(0, 1 << 20, 7).unwrap();
    let batches = kafka_wire::records::decode_all(read.records.clone()).unwrap();
    let headers: Vec<(i64, i64, i32, i64, i32)> = batches
        .iter()
        .map(|b| {
            b.verify_crc().unwrap();
            (
                b.base_offset(),
                b.last_offset(),
                b.record_count(),
                b.producer_id(),
                b.base_sequence(),
            )
        })
        .collect();
    assert_eq!(
        headers,
        vec![(0, 1, 0, 7, 0), (3, 3, 0, 8, 1), (4, 5, 2, -1, -1)]
    );

    // Producer state rebuilt from the compacted log still has both producers' sequences.
    drop(log);
    let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    assert_eq!(log.producers.entry(7).unwrap().last_seq(), 1);
    assert_eq!(log.producers.entry(8).unwrap().last_seq(), 1);
    let next = log
        .append(
            &mut kbatch_with(idempotent(8, 2), &[("k", Some("d"))], NOW),
            NOW,
        )
        .unwrap();
    assert_eq!(next.base_offset, 7);
    let gap = log.append(
        &mut kbatch_with(idempotent(7, 5), &[("k", Some("e"))], NOW),
        NOW,
    );
    assert!(matches!(gap, Err(StorageError::OutOfOrderSequence { .. })));
}

/// A crash at each step of the swap: reopening serves either the original or the compacted
/// records, never a mix, and leaves no cleaner files behind.
#[test]
fn crashes_during_the_swap_recover() {
    let original: Vec<_> = {
        let dir = TempDir::new();
        contents(&sample_log(&dir, compacted()), 0)
    };
    for (crash, expect_compacted) in [
        (CrashPoint::Cleaned, false),
        (CrashPoint::Swapped, true),
        (CrashPoint::OldDeleted, true),
    ] {
        let dir = TempDir::new();
        let mut log = sample_log(&dir, compacted());
        log.compact_until_crash(NOW, crash).unwrap();
        assert!(!leftovers(&dir).is_empty(), "{crash:?}");
        drop(log); // the crash

        let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
        assert!(
            leftovers(&dir).is_empty(),
            "{crash:?}: {:?}",
            leftovers(&dir)
        );
        let expected = if expect_compacted {
            compacted_sample()
        } else {
            original.clone()
        };
        assert_eq!(contents(&log, 0), expected, "{crash:?}");
        let bases = if expect_compacted {
            vec![0, 5]
        } else {
            vec![0, 3, 5]
        };
        assert_eq!(log.segment_base_offsets(), bases, "{crash:?}");
        // The recovered log compacts to the same result and keeps working.
        log.compact_now(NOW).unwrap();
        assert_eq!(contents(&log, 0), compacted_sample(), "{crash:?}");
        log.append(&mut kbatch(&[("k4", Some("d"))]), NOW).unwrap();
        assert_eq!(log.log_end_offset(), 7);
    }
}

#[test]
fn stray_cleaner_files_are_discarded_on_open() {
    let dir = TempDir::new();
    let log = sample_log(&dir, compacted());
    let expected = contents(&log, 0);
    drop(log);
    // A torn cleaner output and an index swap without its log.
    fs::write(
        dir.path()
            .join(format!("{}{CLEANED_SUFFIX}", file_name(0, LOG_SUFFIX))),
        b"torn",
    )
    .unwrap();
    fs::write(
        dir.path()
            .join(format!("{}{SWAP_SUFFIX}", file_name(3, INDEX_SUFFIX))),
        b"",
    )
    .unwrap();
    // A damaged swap whose originals are all still there: the originals win.
    let mut torn = fs::read(dir.path().join(file_name(0, LOG_SUFFIX))).unwrap();
    let last = torn.len() - 1;
    torn[last] ^= 0xff;
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX] {
        let name = format!("{}{SWAP_SUFFIX}", file_name(0, suffix));
        fs::write(dir.path().join(name), &torn).unwrap();
    }
    let log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    assert!(leftovers(&dir).is_empty());
    assert_eq!(contents(&log, 0), expected);
}

#[test]
fn cleaner_checkpoint_file_round_trip() {
    let dir = TempDir::new();
    assert!(read_cleaner_checkpoints(dir.path()).unwrap().is_empty());
    let mut map = BTreeMap::new();
    map.insert(("__consumer_offsets".to_string(), 12), 345);
    map.insert(("orders".to_string(), 0), 7);
    write_cleaner_checkpoints(dir.path(), &map).unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join(CLEANER_CHECKPOINT_FILE)).unwrap(),
        "0\n2\n__consumer_offsets 12 345\norders 0 7\n"
    );
    assert_eq!(read_cleaner_checkpoints(dir.path()).unwrap(), map);
    for bad in [
        "1\n0\n",
        "0\n2\norders 0 7\n",
        "0\n1\norders x 7\n",
        "garbage",
    ] {
        fs::write(dir.path().join(CLEANER_CHECKPOINT_FILE), bad).unwrap();
        assert!(
            read_cleaner_checkpoints(dir.path()).unwrap().is_empty(),
            "{bad:?}"
        );
    }
}

/// Room for 100 keys: 112 slots of 24 bytes at a load factor of 0.9.
fn small_map() -> CleanerConfig {
    CleanerConfig {
        dedupe_buffer_size: 112 * 24,
        load_factor: 0.9,
        ..CleanerConfig::default()
    }
}

/// 1,000 distinct keys written three times (the last round deletes every seventh key),
/// 10 records per batch, a segment every 100 records, then one record in the active
/// segment. Returns the log and every record written, `(offset, key, value)`.
fn many_keys_log(dir: &TempDir) -> (PartitionLog, Vec<(i64, String, Option<String>)>) {
    let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    let mut written = Vec::new();
    let mut offset = 0;
    for round in 0..3 {
        for chunk in 0..100 {
            let records: Vec<(String, Option<String>)> = (0..10)
                .map(|i| {
                    let k = chunk * 10 + i;
                    let value = (round < 2 || k % 7 != 0).then(|| format!("v{round}-{k}"));
                    (format!("key-{k}"), value)
                })
                .collect();
            let refs: Vec<(&str, Option<&str>)> = records
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            log.append(&mut kbatch(&refs), NOW).unwrap();
            for (k, v) in records {
                written.push((offset, k, v));
                offset += 1;
            }
            if offset % 100 == 0 {
                log.roll(NOW).unwrap();
            }
        }
    }
    log.append(&mut kbatch(&[("key-1", Some("active"))]), NOW)
        .unwrap();
    written.push(entry(offset, "key-1", Some("active")));
    assert_eq!(log.segment_count(), 31);
    (log, written)
}

/// What compaction must leave: below `uncleanable`, the latest record of each key (and no
/// tombstone when `tombstones_expired`); everything from `uncleanable` on.
fn latest_per_key(
    written: &[(i64, String, Option<String>)],
    uncleanable: i64,
    tombstones_expired: bool,
) -> Vec<(i64, String, Option<String>)> {
    let mut latest = std::collections::HashMap::new();
    for (offset, key, _) in written.iter().filter(|r| r.0 < uncleanable) {
        latest.insert(key.clone(), *offset);
    }
    written
        .iter()
        .filter(|(offset, key, value)| {
            *offset >= uncleanable
                || (latest[key] == *offset && (value.is_some() || !tombstones_expired))
        })
        .cloned()
        .collect()
}

#[test]
fn a_small_offset_map_cleans_in_several_passes_to_the_same_result() {
    let (small_dir, large_dir) = (TempDir::new(), TempDir::new());
    let (mut small, written) = many_keys_log(&small_dir);
    let (mut large, _) = many_keys_log(&large_dir);
    let active = 3000;

    // A map with room for every key: one pass.
    let outcome = large.compact_now(NOW).unwrap().unwrap();
    assert_eq!(outcome.first_dirty_offset, active);
    let expected = latest_per_key(&written, active, false);
    assert_eq!(expected.len(), 1001);
    assert_eq!(contents(&large, 0), expected);

    // Room for 100 keys: each pass indexes ten batches and cleans up to them.
    let mut checkpoints = Vec::new();
    while small.cleaner_checkpoint() != Some(active) {
        let before = contents(&small, 0);
        let outcome = small.compact_now_with(NOW, &small_map()).unwrap().unwrap();
        let checkpoint = small.cleaner_checkpoint().unwrap();
        assert_eq!(outcome.first_dirty_offset, checkpoint);
        assert!(
            checkpoints.last().is_none_or(|c| *c < checkpoint),
            "the checkpoint advances: {checkpoints:?} then {checkpoint}"
        );
        checkpoints.push(checkpoint);
        // Every pass keeps the latest record of each key it indexed and everything after.
        assert_eq!(
            contents(&small, 0),
            latest_per_key(&before, checkpoint, false)
        );
        assert!(checkpoints.len() <= 30, "{checkpoints:?}");
    }
    assert_eq!(checkpoints.len(), 30, "{checkpoints:?}");
    assert_eq!(checkpoints[0], 100, "ten batches of ten keys");
    assert_eq!(contents(&small, 0), expected);
    assert!(leftovers(&small_dir).is_empty());

    assert_eq!(
        small.maybe_compact(NOW).unwrap(),
        None,
        "nothing left dirty"
    );

    // Tombstones expire the same way in both: a pass with nothing dirty only re-reads the
    // clean part.
    let later = NOW + 1000;
    large.compact_now(later).unwrap().unwrap();
    let expected = latest_per_key(&written, active, true);
    assert_eq!(contents(&large, 0), expected);
    small
        .compact_now_with(later, &small_map())
        .unwrap()
        .unwrap();
    assert_eq!(contents(&small, 0), expected);

    // Reopened after a crash, the compacted log is the same.
    drop(small);
    let small = PartitionLog::open(small_dir.path(), compacted(), later).unwrap();
    assert_eq!(contents(&small, 0), expected);
}

#[test]
fn a_map_too_small_for_one_key_is_a_config_error() {
    let dir = TempDir::new();
    let mut log = sample_log(&dir, compacted());
    let tiny = CleanerConfig {
        dedupe_buffer_size: 24,
        load_factor: 0.9,
        ..CleanerConfig::default()
    };
    assert!(tiny.validate().is_err());
    assert!(matches!(
        log.compact_now_with(NOW, &tiny),
        Err(StorageError::InvalidConfig(_))
    ));
    assert!(leftovers(&dir).is_empty());
    assert_eq!(CleanerConfig::default().max_keys(), 5_033_164);
    assert_eq!(small_map().max_keys(), 100);
    // The log is unchanged and cleans with a usable map.
    log.compact_now_with(NOW, &small_map()).unwrap().unwrap();
    assert_eq!(contents(&log, 0), compacted_sample());
}

/// A map that fills inside a batch stops there: the pass cleans up to the last key it
/// indexed (Kafka's `latestOffset + 1`, inside the batch) and the next pass goes on from it.
#[test]
fn a_batch_with_more_keys_than_the_map_holds_is_cleaned_in_two_passes() {
    let dir = TempDir::new();
    let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    // 200 records over 150 keys: offsets 150..199 rewrite k0..k49.
    let keys: Vec<String> = (0..200).map(|i| format!("k{}", i % 150)).collect();
    let refs: Vec<(&str, Option<&str>)> = keys.iter().map(|k| (k.as_str(), Some("v"))).collect();
    log.append(&mut kbatch(&refs), NOW).unwrap();
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("k0", Some("w"))]), NOW).unwrap();
    let before = contents(&log, 0);

    let first = log.compact_now_with(NOW, &small_map()).unwrap().unwrap();
    assert_eq!((first.segments_written, first.first_dirty_offset), (0, 100));
    assert_eq!(log.cleaner_checkpoint(), Some(100));
    assert_eq!(
        contents(&log, 0),
        before,
        "nothing indexed is superseded yet"
    );

    let second = log.compact_now_with(NOW, &small_map()).unwrap().unwrap();
    assert_eq!(
        (second.segments_written, second.first_dirty_offset),
        (1, 200)
    );
    assert_eq!(second.records_removed, 50);
    assert_eq!(contents(&log, 0), before[50..].to_vec());
    assert!(leftovers(&dir).is_empty());
}

/// Appends between the phases of a pass are kept; the pass swaps in what it cleaned.
#[test]
fn appends_during_a_pass_are_kept() {
    let dir = TempDir::new();
    let mut log = sample_log(&dir, compacted());
    let pass = log.prepare_cleaning(NOW, true).unwrap().unwrap();
    // One pass per log at a time.
    assert!(log.prepare_cleaning(NOW, true).unwrap().is_none());

    // Between (a) and (b): an append, a roll, another append.
    log.append(&mut kbatch(&[("k2", Some("b3"))]), NOW).unwrap();
    log.roll(NOW).unwrap();
    log.append(&mut kbatch(&[("k1", Some("a4"))]), NOW).unwrap();
    let cleaned = pass.clean(&CleanerConfig::default(), None).unwrap();
    assert_eq!(cleaned.end_offset(), 5);
    assert_eq!(
        leftovers(&dir),
        vec![
            format!("{}{CLEANED_SUFFIX}", file_name(0, INDEX_SUFFIX)),
            format!("{}{CLEANED_SUFFIX}", file_name(0, LOG_SUFFIX)),
            format!("{}{CLEANED_SUFFIX}", file_name(0, TIME_INDEX_SUFFIX))
        ]
    );
    // Reads go on from the original segments meanwhile.
    assert_eq!(contents(&log, 0).len(), 8);
    // Between (b) and (c): another append.
    log.append(&mut kbatch(&[("k3", Some("c2"))]), NOW).unwrap();

    let outcome = log.complete_cleaning(cleaned).unwrap().unwrap();
    assert_eq!(
        (outcome.segments_replaced, outcome.segments_written),
        (2, 1)
    );
    assert_eq!(log.cleaner_checkpoint(), Some(5));
    assert_eq!(log.segment_base_offsets(), vec![0, 5, 7]);
    let mut expected = compacted_sample();
    expected.extend([
        entry(6, "k2", Some("b3")),
        entry(7, "k1", Some("a4")),
        entry(8, "k3", Some("c2")),
    ]);
    assert_eq!(contents(&log, 0), expected);
    assert!(leftovers(&dir).is_empty());
    // The pass is over: the next one may start; a pass discarded changes nothing.
    let pass = log.prepare_cleaning(NOW, true).unwrap().unwrap();
    pass.clean(&CleanerConfig::default(), None)
        .unwrap()
        .discard();
    assert!(leftovers(&dir).is_empty());
    assert_eq!(log.cleaner_checkpoint(), Some(5));
    assert_eq!(contents(&log, 0), expected);
    log.compact_now(NOW).unwrap().unwrap();
    assert_eq!(
        contents(&log, 0),
        vec![
            entry(3, "k3", Some("c1")),
            entry(5, "k1", Some("a3")),
            entry(6, "k2", Some("b3")),
            entry(7, "k1", Some("a4")),
            entry(8, "k3", Some("c2")),
        ]
    );
}

/// Retention removing a segment the pass read makes the pass give up: its `.cleaned` files
/// go, the checkpoint stays, the log is as retention left it; the next pass cleans.
#[test]
fn a_pass_gives_up_when_retention_changed_its_segments() {
    let config = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: true,
            compact: true,
        },
        file_delete_delay_ms: 0,
        ..compacted()
    };
    let dir = TempDir::new();
    let mut log = sample_log(&dir, config.clone());
    let pass = log.prepare_cleaning(NOW, true).unwrap().unwrap();
    // DeleteRecords removes segment 0 (its files at once: no delete delay)...
    assert_eq!(log.delete_records_before(3, NOW).unwrap(), 3);
    assert!(!dir.path().join(file_name(0, LOG_SUFFIX)).exists());
    assert_eq!(log.segment_base_offsets(), vec![3, 5]);
    // ...yet the pass still reads it through its handle.
    let cleaned = pass.clean(&CleanerConfig::default(), None).unwrap();
    assert!(!leftovers(&dir).is_empty());
    log.append(&mut kbatch(&[("k2", Some("b3"))]), NOW).unwrap();
    assert_eq!(log.complete_cleaning(cleaned).unwrap(), None);
    assert!(leftovers(&dir).is_empty());
    assert_eq!(log.cleaner_checkpoint(), None);
    let after_retention = vec![
        entry(3, "k3", Some("c1")),
        entry(4, "k2", Some("b2")),
        entry(5, "k1", Some("a3")),
        entry(6, "k2", Some("b3")),
    ];
    assert_eq!(contents(&log, 3), after_retention);

    // A pass prepared afterwards sees the new segments and completes (k2@6 is in the
    // active segment, so segment 3 has nothing to drop yet).
    let outcome = log.compact_now(NOW).unwrap().unwrap();
    assert_eq!(
        (outcome.segments_written, outcome.first_dirty_offset),
        (0, 5)
    );
    assert_eq!(contents(&log, 3), after_retention);
    assert_eq!(log.cleaner_checkpoint(), Some(5));

    // A log closed meanwhile (a deleted topic) gives the pass up too.
    log.roll(NOW).unwrap();
    let pass = log.prepare_cleaning(NOW, true).unwrap().unwrap();
    let cleaned = pass.clean(&CleanerConfig::default(), None).unwrap();
    assert!(!leftovers(&dir).is_empty());
    log.close().unwrap();
    assert_eq!(log.complete_cleaning(cleaned).unwrap(), None);
    assert!(leftovers(&dir).is_empty());
    let log = PartitionLog::open(dir.path(), config, NOW).unwrap();
    assert_eq!(contents(&log, 3).len(), 4);
}

/// The broker's entry point takes the partition's lock twice (snapshot, swap) and not while
/// it cleans.
#[test]
fn compact_unlocked_takes_the_lock_only_around_the_pass() {
    let dir = TempDir::new();
    let log = std::sync::Mutex::new(sample_log(&dir, compacted()));
    let locks = std::cell::Cell::new(0);
    let lock = || {
        locks.set(locks.get() + 1);
        log.try_lock()
            .expect("the lock is free whenever the pass takes it")
    };
    let outcome = compact_unlocked(lock, NOW, false, &CleanerConfig::default(), None)
        .unwrap()
        .unwrap();
    assert_eq!(locks.get(), 2);
    assert_eq!(outcome.first_dirty_offset, 5);
    assert_eq!(contents(&log.lock().unwrap(), 0), compacted_sample());
    // Not due any more: one lock, nothing done.
    let outcome = compact_unlocked(lock, NOW, false, &CleanerConfig::default(), None).unwrap();
    assert_eq!((outcome, locks.get()), (None, 3));
}

/// Deleting a topic stops its log's pass (Kafka's `abortCleaning`): `abort_cleaning` flags
/// the pass, which stops at its next segment and writes nothing, and waits until it has
/// ended; with no pass under way it returns at once.
#[test]
fn abort_cleaning_stops_a_pass_and_waits_for_it() {
    let dir = TempDir::new();
    let mut log = sample_log(&dir, compacted());
    abort_cleaning(log.dir());
    let pass = log.prepare_cleaning(NOW, true).unwrap().unwrap();
    let log_dir = log.dir().to_path_buf();
    let aborter = std::thread::spawn(move || abort_cleaning(&log_dir));
    // Wait until the request has been recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !pass._in_progress.aborted() {
        assert!(
            std::time::Instant::now() < deadline,
            "abort_cleaning never flagged the pass"
        );
        std::thread::yield_now();
    }
    assert!(!aborter.is_finished());
    assert!(matches!(
        pass.clean(&CleanerConfig::default(), None),
        Err(StorageError::LogClosed(_))
    ));
    aborter.join().unwrap();
    assert!(leftovers(&dir).is_empty());
    // Only that pass was stopped: the next one cleans.
    log.close().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(), NOW).unwrap();
    let outcome = log.compact_now(NOW).unwrap().unwrap();
    assert!(outcome.segments_written > 0);
}

/// A cleaner config with `log.cleaner.io.max.bytes.per.second` at `rate`.
fn throttled(rate: f64) -> CleanerConfig {
    CleanerConfig {
        io_max_bytes_per_second: rate,
        ..CleanerConfig::default()
    }
}

/// `log.cleaner.io.max.bytes.per.second`: unthrottled by default (no throttler at all, so
/// passes pay nothing for it); a rate must be above 0.
#[test]
fn the_io_rate_must_be_positive_and_the_default_is_unthrottled() {
    let now = Instant::now();
    assert_eq!(CleanerConfig::default().io_max_bytes_per_second, f64::MAX);
    assert!(CleanerConfig::default().io_throttler(now).is_none());
    assert!(throttled(f64::INFINITY).io_throttler(now).is_none());
    let throttler = throttled(1e6).io_throttler(now).unwrap();
    assert_eq!(throttler.lock().unwrap().desired_rate_per_sec(), 1e6);

    let dir = TempDir::new();
    let mut log = sample_log(&dir, compacted());
    for bad in [0.0, -1.0, f64::NAN] {
        let err = throttled(bad).validate().unwrap_err();
        assert!(
            err.to_string()
                .contains("log.cleaner.io.max.bytes.per.second"),
            "{err}"
        );
        assert!(matches!(
            log.compact_now_with(NOW, &throttled(bad)),
            Err(StorageError::InvalidConfig(_))
        ));
    }
    assert!(leftovers(&dir).is_empty());
    assert_eq!(log.cleaner_checkpoint(), None);
}

/// The throttle is told what Kafka's `Cleaner` tells it: every batch read while building
/// the offset map (the dirty segments), then every batch read and the bytes written while
/// copying (every segment below the pass's end), across the passes sharing it.
#[test]
fn the_throttle_is_told_every_byte_read_and_written() {
    let dir = TempDir::new();
    let log = Mutex::new(sample_log(&dir, compacted()));
    // A rate no pass can reach: the throttler counts but never sleeps.
    let cleaner = throttled(1e18);
    let throttle = cleaner.io_throttler(Instant::now()).unwrap();
    let observed = || throttle.lock().unwrap().observed_total();

    let range = log.lock().unwrap().cleanable_range(NOW);
    assert_eq!((range.first_dirty_offset, range.clean_bytes), (0, 0));
    let lock = || log.try_lock().unwrap();
    let first = compact_unlocked(lock, NOW, true, &cleaner, Some(&throttle))
        .unwrap()
        .unwrap();
    // Segments 0 and 3, one group: the map read them, the copy read and rewrote them.
    assert_eq!((first.segments_replaced, first.segments_written), (2, 1));
    assert_eq!(first.bytes_before, range.dirty_bytes);
    assert!(first.bytes_after > 0 && first.bytes_after < first.bytes_before);
    assert_eq!(
        observed(),
        range.dirty_bytes + first.bytes_before + first.bytes_after
    );
    assert_eq!(contents(&log.lock().unwrap(), 0), compacted_sample());

    // Second pass, same throttle: only segment 5 is dirty (the map reads it alone), while
    // the copy reads the clean segment too.
    log.lock().unwrap().roll(NOW).unwrap();
    let range = log.lock().unwrap().cleanable_range(NOW);
    assert_eq!(range.first_dirty_offset, 5);
    assert!(range.clean_bytes > 0 && range.dirty_bytes > 0);
    let before = observed();
    let second = compact_unlocked(lock, NOW, true, &cleaner, Some(&throttle))
        .unwrap()
        .unwrap();
    assert_eq!((second.segments_replaced, second.segments_written), (2, 1));
    assert_eq!(second.bytes_before, range.clean_bytes + range.dirty_bytes);
    assert_eq!(
        observed() - before,
        range.dirty_bytes + second.bytes_before + second.bytes_after
    );
    assert_eq!(throttle.lock().unwrap().slept_total(), Duration::ZERO);
    assert_eq!(
        contents(&log.lock().unwrap(), 0),
        vec![
            entry(3, "k3", Some("c1")),
            entry(4, "k2", Some("b2")),
            entry(5, "k1", Some("a3")),
        ]
    );
}

/// A throttled pass sleeps without the partition's lock or the throttler's, and deleting
/// the topic (`abort_cleaning`) does not wait for its sleep: the sleep is taken in slices
/// between which the pass notices the abort. (The deadlines only guard against a hang.)
#[test]
fn abort_cleaning_stops_a_throttled_pass_during_its_sleep() {
    let dir = TempDir::new();
    let log = Arc::new(Mutex::new(sample_log(&dir, compacted())));
    // 1 byte per second, checked at every batch: the first batch read asks for minutes.
    let throttle = Arc::new(Mutex::new(Throttler::with_check_interval(
        1.0,
        Duration::ZERO,
        Instant::now(),
    )));
    let pass = {
        let (log, throttle) = (log.clone(), throttle.clone());
        std::thread::spawn(move || {
            compact_unlocked(
                || log.lock().unwrap(),
                NOW,
                true,
                &throttled(1.0),
                Some(&throttle),
            )
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while throttle.lock().unwrap().slept_total() < Duration::from_secs(60) {
        assert!(Instant::now() < deadline, "the pass never asked to sleep");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The pass is in phase (b), sleeping: nothing is locked, appends go on.
    assert!(throttle.try_lock().is_ok());
    log.try_lock()
        .expect("the partition's lock is free while the pass sleeps")
        .append(&mut kbatch(&[("k4", Some("d1"))]), NOW)
        .unwrap();
    assert!(!pass.is_finished());

    let (done, aborted) = std::sync::mpsc::channel();
    let log_dir = log.lock().unwrap().dir().to_path_buf();
    std::thread::spawn(move || {
        abort_cleaning(&log_dir);
        let _ = done.send(());
    });
    aborted
        .recv_timeout(Duration::from_secs(30))
        .expect("abort_cleaning waited for the throttled sleep");
    // Stopped: nothing swapped, no `.cleaned` files, the checkpoint unchanged.
    assert_eq!(pass.join().unwrap().unwrap(), None);
    assert!(leftovers(&dir).is_empty());
    let log = log.lock().unwrap();
    assert_eq!(log.cleaner_checkpoint(), None);
    assert_eq!(contents(&log, 0).len(), 7);
}
