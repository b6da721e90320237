//! Transaction tests (KIP-98): the last stable offset, markers and their fencing, the
//! `.txnindex` format, aborted transactions for read_committed fetches, restart and recovery,
//! retention, compaction and ListOffsets isolation.

use std::fs::{self, OpenOptions};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{
    BatchOptions, ControlRecordType, EndTransactionMarker, RecordBatch, RecordBatchBuilder,
};

use super::segment::file_name;
use super::test_util::TempDir;
use super::txn_index::TXN_INDEX_SUFFIX;
use super::*;

const NOW: i64 = 1_700_000_000_000;

/// A batch of `(key, value)` records with timestamps `ts`, `ts + 1`...
fn keyed(opts: BatchOptions, records: &[(&str, &str)], ts: i64) -> BytesMut {
    let mut b = RecordBatchBuilder::new(opts);
    for (i, (k, v)) in records.iter().enumerate() {
        b.append(ts + i as i64, Some(k.as_bytes()), Some(v.as_bytes()), &[])
            .unwrap();
    }
    BytesMut::from(&b.finish().unwrap()[..])
}

/// A non-transactional batch without producer id.
fn plain(records: &[(&str, &str)]) -> BytesMut {
    keyed(BatchOptions::default(), records, NOW)
}

/// A transactional batch of producer `pid`.
fn txn(pid: i64, epoch: i16, seq: i32, records: &[(&str, &str)]) -> BytesMut {
    keyed(
        BatchOptions {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            is_transactional: true,
            ..BatchOptions::default()
        },
        records,
        NOW,
    )
}

fn marker(pid: i64, epoch: i16, coordinator_epoch: i32, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        coordinator_epoch,
        commit,
    }
}

fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, NOW).unwrap()
}

fn append(log: &mut PartitionLog, mut b: BytesMut) -> AppendInfo {
    log.append(&mut b, NOW).unwrap()
}

fn end(log: &mut PartitionLog, m: TxnMarker) -> i64 {
    log.append_txn_marker(m, NOW).unwrap().base_offset
}

fn aborted(pid: i64, first_offset: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset,
    }
}

/// The 34 bytes of a `.txnindex` entry, written out field by field.
fn entry_bytes(pid: i64, first: i64, last: i64, lso: i64) -> Vec<u8> {
    let mut b = 0i16.to_be_bytes().to_vec();
    for v in [pid, first, last, lso] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b
}

fn txn_index_path(dir: &Path, base: i64) -> std::path::PathBuf {
    dir.join(file_name(base, TXN_INDEX_SUFFIX))
}

/// The `.txnindex` bytes of every segment (`None` without file).
fn txn_index_files(log: &PartitionLog) -> Vec<(i64, Option<Vec<u8>>)> {
    log.segment_base_offsets()
        .into_iter()
        .map(|base| (base, fs::read(txn_index_path(log.dir(), base)).ok()))
        .collect()
}

/// Every batch readable below the log end offset: `(offset, control marker type, key,
/// value)` per record; an empty batch shows as `(base offset, None, "", "<empty>")`.
type Row = (i64, Option<ControlRecordType>, String, String);

fn rows(log: &PartitionLog) -> Vec<Row> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let text = |b: Option<Bytes>| b.map_or(String::new(), |b| String::from_utf8_lossy(&b).into());
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, log.log_end_offset()).unwrap();
        let mut buf = read.records.clone();
        while !buf.is_empty() {
            let batch = RecordBatch::decode(&mut buf).unwrap();
            batch.verify_crc().unwrap();
            if batch.record_count() == 0 {
                out.push((batch.base_offset(), None, String::new(), "<empty>".into()));
            }
            for r in batch.records(1 << 20).unwrap() {
                let r = r.unwrap();
                if batch.is_control() {
                    let m = EndTransactionMarker::decode(r.key.as_deref(), r.value.as_deref())
                        .unwrap()
                        .unwrap();
                    out.push((r.offset, Some(m.control_type), String::new(), String::new()));
                } else {
                    out.push((r.offset, None, text(r.key), text(r.value)));
                }
            }
        }
        offset = read.next_offset;
    }
    out
}

#[test]
fn open_transactions_hold_the_last_stable_offset_and_markers_release_it() {
    let dir = TempDir::new();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, plain(&[("a", "1")]));
    assert_eq!(log.last_stable_offset(), 1);
    // Producer 1 opens a transaction at 1; plain data after it does not move the LSO.
    append(&mut log, txn(1, 0, 0, &[("b", "1"), ("c", "1")]));
    assert_eq!((log.last_stable_offset(), log.high_watermark()), (1, 3));
    append(&mut log, plain(&[("d", "1")]));
    // Producer 2 opens one at 4.
    append(&mut log, txn(2, 0, 0, &[("e", "2")]));
    append(&mut log, txn(1, 0, 2, &[("f", "1")]));
    assert_eq!(log.last_stable_offset(), 1);
    // A read_committed reader stops before offset 1.
    let read = log.read(0, 1 << 20, log.last_stable_offset()).unwrap();
    assert_eq!(read.next_offset, 1);

    // Producer 1 aborts while producer 2's transaction is open: its index entry's last
    // stable offset is producer 2's first offset.
    assert_eq!(end(&mut log, marker(1, 0, 0, false)), 6);
    assert_eq!(log.last_stable_offset(), 4);
    let path = txn_index_path(dir.path(), 0);
    assert_eq!(fs::read(&path).unwrap(), entry_bytes(1, 1, 6, 4));
    // Producer 2 commits: committed transactions get no index entry.
    assert_eq!(end(&mut log, marker(2, 0, 0, true)), 7);
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(fs::read(&path).unwrap(), entry_bytes(1, 1, 6, 4));
    // A lone abort: the entry's last stable offset is the one after its marker.
    append(&mut log, txn(3, 0, 0, &[("g", "3")]));
    assert_eq!(end(&mut log, marker(3, 0, 0, false)), 9);
    let mut expected = entry_bytes(1, 1, 6, 4);
    expected.extend(entry_bytes(3, 8, 9, 10));
    assert_eq!(fs::read(&path).unwrap(), expected);

    assert_eq!(
        log.aborted_transactions(0, 10).unwrap(),
        vec![aborted(1, 1), aborted(3, 8)]
    );
    // The markers are control batches as Kafka writes them.
    let types: Vec<(i64, Option<ControlRecordType>)> =
        rows(&log).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(types[6], (6, Some(ControlRecordType::Abort)));
    assert_eq!(types[7], (7, Some(ControlRecordType::Commit)));

    // The LSO never exceeds the high watermark.
    append(&mut log, txn(4, 0, 0, &[("h", "4")]));
    log.set_auto_high_watermark(false);
    append(&mut log, plain(&[("i", "1")]));
    log.set_high_watermark(5);
    assert_eq!(log.last_stable_offset(), 5);
    log.set_high_watermark(12);
    assert_eq!(log.last_stable_offset(), 10);
}

#[test]
fn markers_are_fenced_and_non_transactional_writes_rejected_during_a_transaction() {
    let dir = TempDir::new();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, txn(7, 1, 0, &[("a", "1")]));
    let leo = log.log_end_offset();
    // An idempotent (non-transactional) batch of the same producer: INVALID_TXN_STATE.
    let mut idempotent = keyed(
        BatchOptions {
            producer_id: 7,
            producer_epoch: 1,
            base_sequence: 1,
            ..BatchOptions::default()
        },
        &[("b", "1")],
        NOW,
    );
    let err = log.append(&mut idempotent, NOW).unwrap_err();
    assert!(matches!(err, StorageError::InvalidTxnState(_)), "{err}");
    assert_eq!(err.error_code().code(), 48);
    // A marker with an older producer epoch: INVALID_PRODUCER_EPOCH.
    let err = log
        .append_txn_marker(marker(7, 0, 3, true), NOW)
        .unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidProducerEpoch(_)),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), leo);
    // Coordinator epoch 3 commits; a zombie coordinator (epoch 2) is fenced afterwards.
    end(&mut log, marker(7, 1, 3, true));
    append(&mut log, txn(7, 1, 1, &[("c", "1")]));
    let leo = log.log_end_offset();
    let err = log
        .append_txn_marker(marker(7, 1, 2, false), NOW)
        .unwrap_err();
    assert!(
        matches!(err, StorageError::TransactionCoordinatorFenced(_)),
        "{err}"
    );
    assert_eq!(err.error_code().code(), 52);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.last_stable_offset(), leo - 1);
    // The coordinator bumped the epoch (timeout or fencing) and aborts with it.
    end(&mut log, marker(7, 2, 3, false));
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    // The producer's old epoch is fenced, the new one starts at sequence 0.
    let err = log
        .append(&mut txn(7, 1, 2, &[("d", "1")]), NOW)
        .unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidProducerEpoch(_)),
        "{err}"
    );
    let err = log
        .append(&mut txn(7, 2, 2, &[("d", "1")]), NOW)
        .unwrap_err();
    assert!(matches!(err, StorageError::OutOfOrderSequence(_)), "{err}");
    append(&mut log, txn(7, 2, 0, &[("d", "1")]));
    // A marker for a producer without open transaction is written and completes nothing.
    let dir2 = TempDir::new();
    let mut other = open(dir2.path(), LogConfig::default());
    assert_eq!(end(&mut other, marker(9, 0, 0, false)), 0);
    assert_eq!(other.last_stable_offset(), 1);
    assert!(!txn_index_path(dir2.path(), 0).exists());
}

#[test]
fn coordinator_appends_carry_no_sequence_and_open_transactions() {
    let dir = TempDir::new();
    let mut log = open(dir.path(), LogConfig::default());
    let commit = || {
        keyed(
            BatchOptions {
                producer_id: 11,
                producer_epoch: 4,
                base_sequence: -1,
                is_transactional: true,
                ..BatchOptions::default()
            },
            &[("group/topic/0", "offset 42")],
            NOW,
        )
    };
    // A client may not do this.
    let err = log.append(&mut commit(), NOW).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRecord(_)), "{err}");
    let info = log.append_as_coordinator(&mut commit(), NOW).unwrap();
    assert_eq!((info.base_offset, info.duplicate), (0, false));
    assert_eq!(log.last_stable_offset(), 0);
    // No duplicate detection: the same batch again is appended.
    let info = log.append_as_coordinator(&mut commit(), NOW).unwrap();
    assert_eq!((info.base_offset, info.duplicate), (1, false));
    // Epochs are checked.
    let mut old = keyed(
        BatchOptions {
            producer_id: 11,
            producer_epoch: 3,
            base_sequence: -1,
            is_transactional: true,
            ..BatchOptions::default()
        },
        &[("k", "v")],
        NOW,
    );
    assert!(matches!(
        log.append_as_coordinator(&mut old, NOW),
        Err(StorageError::InvalidProducerEpoch(_))
    ));
    // Control batches only go through append_txn_marker.
    let mut control = BytesMut::from(
        &kafka_wire::records::end_transaction_marker_batch(
            0,
            NOW,
            0,
            11,
            4,
            EndTransactionMarker {
                control_type: ControlRecordType::Commit,
                coordinator_epoch: 0,
            },
        )
        .unwrap()[..],
    );
    assert!(matches!(
        log.append_as_coordinator(&mut control, NOW),
        Err(StorageError::InvalidRecord(_))
    ));
    end(&mut log, marker(11, 4, 0, true));
    assert_eq!(log.last_stable_offset(), 3);
}

/// Segments 0 (offsets 0-1), 2 (2-3), 4 (4-6) and 7 (7-9), each holding markers of aborted
/// transactions except the first: see the comments.
fn several_segments(dir: &Path) -> PartitionLog {
    let mut log = open(dir, LogConfig::default());
    append(&mut log, txn(1, 0, 0, &[("a", "1")])); // 0
    append(&mut log, txn(2, 0, 0, &[("b", "2")])); // 1
    log.roll(NOW).unwrap();
    assert_eq!(end(&mut log, marker(1, 0, 0, false)), 2); // P1 0..2, LSO 1 (P2 open)
    append(&mut log, plain(&[("c", "1")])); // 3
    log.roll(NOW).unwrap();
    assert_eq!(end(&mut log, marker(2, 0, 0, false)), 4); // P2 1..4, LSO 5
    append(&mut log, txn(3, 0, 0, &[("d", "3")])); // 5
    assert_eq!(end(&mut log, marker(3, 0, 0, false)), 6); // P3 5..6, LSO 7
    log.roll(NOW).unwrap();
    append(&mut log, plain(&[("e", "1")])); // 7
    append(&mut log, txn(4, 0, 0, &[("f", "4")])); // 8
    assert_eq!(end(&mut log, marker(4, 0, 0, false)), 9); // P4 8..9, LSO 10
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4, 7]);
    log
}

#[test]
fn aborted_transactions_span_segments_and_stop_at_a_covering_last_stable_offset() {
    let dir = TempDir::new();
    let log = several_segments(dir.path());
    let files = txn_index_files(&log);
    assert_eq!(files[0], (0, None), "no aborted transaction, no file");
    assert_eq!(files[1], (2, Some(entry_bytes(1, 0, 2, 1))));
    let mut seg4 = entry_bytes(2, 1, 4, 5);
    seg4.extend(entry_bytes(3, 5, 6, 7));
    assert_eq!(files[2], (4, Some(seg4)));
    assert_eq!(files[3], (7, Some(entry_bytes(4, 8, 9, 10))));

    let at = |from, to| log.aborted_transactions(from, to).unwrap();
    // From segment 0 (no entries) on to segment 2, whose entry's LSO (1) covers the range.
    assert_eq!(at(0, 1), vec![aborted(1, 0)]);
    // P1's LSO (1) does not cover [0, 2): segment 4 is searched too; P2's entry stops it.
    assert_eq!(at(0, 2), vec![aborted(1, 0), aborted(2, 1)]);
    // P1 ended before 3; P2's spans it.
    assert_eq!(at(3, 4), vec![aborted(2, 1)]);
    assert_eq!(at(5, 6), vec![aborted(3, 5)]);
    assert_eq!(at(7, 10), vec![aborted(4, 8)]);
    assert_eq!(
        at(0, 10),
        vec![aborted(1, 0), aborted(2, 1), aborted(3, 5), aborted(4, 8)]
    );
    assert!(at(10, 10).is_empty());
}

/// A log whose producer 1 has an open transaction from offset 0 and whose producer 2
/// aborted one, coordinator epoch 5.
fn open_txn_fixture(dir: &Path) -> PartitionLog {
    let mut log = open(dir, LogConfig::default());
    append(&mut log, txn(1, 0, 0, &[("a", "1"), ("b", "1")])); // 0-1
    append(&mut log, txn(2, 0, 0, &[("c", "2")])); // 2
    end(&mut log, marker(2, 0, 5, false)); // 3: P2 2..3, LSO 0
    log.roll(NOW).unwrap();
    append(&mut log, plain(&[("d", "1")])); // 4
    assert_eq!(log.last_stable_offset(), 0);
    log
}

#[test]
fn restart_restores_open_transactions_coordinator_epochs_and_the_index() {
    for clean in [true, false] {
        let dir = TempDir::new();
        let mut log = open_txn_fixture(dir.path());
        let files = txn_index_files(&log);
        if clean {
            log.close().unwrap();
        }
        drop(log);
        let mut log = open(dir.path(), LogConfig::default());
        assert_eq!(txn_index_files(&log), files, "clean: {clean}");
        assert_eq!(log.last_stable_offset(), 0, "clean: {clean}");
        assert_eq!(log.aborted_transactions(0, 5).unwrap(), vec![aborted(2, 2)]);
        // The coordinator epoch of producer 2's marker was restored.
        assert!(matches!(
            log.append_txn_marker(marker(2, 0, 4, true), NOW),
            Err(StorageError::TransactionCoordinatorFenced(_))
        ));
        // Producer 1's open transaction is known: its idempotent write is refused, its
        // next transactional batch continues the sequence, and its commit frees the LSO.
        let mut idempotent = keyed(
            BatchOptions {
                producer_id: 1,
                producer_epoch: 0,
                base_sequence: 2,
                ..BatchOptions::default()
            },
            &[("x", "1")],
            NOW,
        );
        assert!(matches!(
            log.append(&mut idempotent, NOW),
            Err(StorageError::InvalidTxnState(_))
        ));
        append(&mut log, txn(1, 0, 2, &[("e", "1")]));
        end(&mut log, marker(1, 0, 5, true));
        assert_eq!(log.last_stable_offset(), log.high_watermark());
    }
}

#[test]
fn missing_or_damaged_txn_indexes_are_rebuilt_identically() {
    let damage = |path: &Path, how: &str| match how {
        "deleted" => fs::remove_file(path).unwrap(),
        "torn entry" | "whole entry cut" | "emptied" => {
            let len = match how {
                "torn entry" => 50,
                "whole entry cut" => 34,
                _ => 0,
            };
            OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(len)
                .unwrap();
        }
        _ => {
            let mut b = fs::read(path).unwrap();
            b[1] = 9; // entry version 9
            fs::write(path, b).unwrap();
        }
    };
    for what in [
        "deleted",
        "torn entry",
        "whole entry cut",
        "emptied",
        "bad version",
    ] {
        for clean in [true, false] {
            let dir = TempDir::new();
            let mut log = several_segments(dir.path());
            let files = txn_index_files(&log);
            let everything = log.aborted_transactions(0, 10).unwrap();
            if clean {
                log.close().unwrap();
            }
            drop(log);
            damage(&txn_index_path(dir.path(), 4), what);
            let log = open(dir.path(), LogConfig::default());
            assert_eq!(txn_index_files(&log), files, "{what}, clean: {clean}");
            assert_eq!(log.aborted_transactions(0, 10).unwrap(), everything);
        }
    }
}

#[test]
fn a_truncated_tail_drops_the_index_entries_after_it() {
    let dir = TempDir::new();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, txn(1, 0, 0, &[("a", "1")])); // 0
    end(&mut log, marker(1, 0, 0, false)); // 1: P1 0..1
    append(&mut log, txn(2, 0, 0, &[("b", "2")])); // 2
    end(&mut log, marker(2, 0, 0, false)); // 3: P2 2..3
    let path = txn_index_path(dir.path(), 0);
    assert_eq!(fs::metadata(&path).unwrap().len(), 68);
    let log_path = dir.path().join(file_name(0, ".log"));
    let size = fs::metadata(&log_path).unwrap().len();
    drop(log); // a crash
               // The last marker was torn.
    OpenOptions::new()
        .write(true)
        .open(&log_path)
        .unwrap()
        .set_len(size - 10)
        .unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(fs::read(&path).unwrap(), entry_bytes(1, 0, 1, 2));
    // Producer 2's transaction is open again: its marker is gone.
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(log.aborted_transactions(0, 3).unwrap(), vec![aborted(1, 0)]);
}

#[test]
fn retention_deletes_the_txn_index_with_its_segment() {
    let config = LogConfig {
        retention_ms: 1000,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    };
    let dir = TempDir::new();
    let mut log = open(dir.path(), config);
    append(&mut log, txn(1, 0, 0, &[("a", "1")]));
    end(&mut log, marker(1, 0, 0, false));
    log.roll(NOW).unwrap();
    append(&mut log, plain(&[("b", "1")]));
    let path = txn_index_path(dir.path(), 0);
    assert!(path.exists());
    let outcome = log.apply_retention(NOW + 10_000).unwrap();
    assert_eq!(outcome.deleted_segments, 2);
    assert!(!path.exists());
    let mut deleted = path.clone().into_os_string();
    deleted.push(".deleted");
    assert!(!Path::new(&deleted).exists(), "removed after the delay");
    assert!(log.aborted_transactions(0, 10).unwrap().is_empty());
}

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    }
}

fn row(offset: i64, key: &str, value: &str) -> Row {
    (offset, None, key.into(), value.into())
}

fn control(offset: i64, t: ControlRecordType) -> Row {
    (offset, Some(t), String::new(), String::new())
}

#[test]
fn compaction_drops_aborted_records_keeps_committed_and_markers_and_stops_at_the_lso() {
    use ControlRecordType::{Abort, Commit};
    let dir = TempDir::new();
    let mut log = open(dir.path(), compacted());
    append(&mut log, plain(&[("k1", "a1"), ("k3", "c1")])); // 0-1
    append(&mut log, txn(1, 0, 0, &[("k1", "a2"), ("k2", "b1")])); // 2-3
    end(&mut log, marker(1, 0, 0, true)); // 4
    log.roll(NOW).unwrap();
    append(&mut log, txn(2, 0, 0, &[("k1", "x"), ("k3", "x")])); // 5-6
    end(&mut log, marker(2, 0, 0, false)); // 7
    append(&mut log, plain(&[("k2", "b2")])); // 8
    log.roll(NOW).unwrap();
    append(&mut log, txn(3, 0, 0, &[("k3", "open"), ("k2", "open")])); // 9-10
    log.roll(NOW).unwrap();
    append(&mut log, plain(&[("k9", "z")])); // 11
    assert_eq!(log.segment_base_offsets(), vec![0, 5, 9, 11]);
    assert_eq!(log.last_stable_offset(), 9);
    let range = log.cleanable_range(NOW);
    assert_eq!(
        range.first_uncleanable_offset, 9,
        "stops at the LSO's segment"
    );

    let outcome = log.compact_now(NOW).unwrap().unwrap();
    assert_eq!(outcome.first_dirty_offset, 9);
    assert_eq!(
        rows(&log),
        vec![
            // k1@0 is superseded by the committed k1@2, not by the aborted k1@5; k3@1
            // stays (the aborted k3@6 never entered the key map).
            row(1, "k3", "c1"),
            row(2, "k1", "a2"),
            // k2@3 is superseded by k2@8 (the open k2@10 is beyond the LSO).
            control(4, Commit),
            // Producer 2's aborted batch: its last batch, kept as an empty header.
            (5, None, String::new(), "<empty>".into()),
            control(7, Abort),
            row(8, "k2", "b2"),
            // The open transaction is untouched.
            row(9, "k3", "open"),
            row(10, "k2", "open"),
            row(11, "k9", "z"),
        ]
    );
    assert_eq!(outcome.records_removed, 4);
    // The cleaned segment keeps the index entries of the segments it replaced.
    assert_eq!(log.segment_base_offsets(), vec![0, 9, 11]);
    assert_eq!(
        fs::read(txn_index_path(dir.path(), 0)).unwrap(),
        entry_bytes(2, 5, 7, 8)
    );
    assert!(!txn_index_path(dir.path(), 5).exists());
    assert_eq!(
        log.aborted_transactions(0, 12).unwrap(),
        vec![aborted(2, 5)]
    );

    // Producer 3 aborts: its records go at the next cleaning, the committed k2@8 stays.
    end(&mut log, marker(3, 0, 0, false)); // 12
    append(&mut log, plain(&[("k8", "y")])); // 13
    log.roll(NOW).unwrap();
    append(&mut log, plain(&[("k7", "w")])); // 14
    log.compact_now(NOW).unwrap().unwrap();
    let after: Vec<Row> = rows(&log);
    assert!(after.contains(&row(8, "k2", "b2")), "{after:?}");
    assert!(after.contains(&row(1, "k3", "c1")), "{after:?}");
    assert!(!after.iter().any(|r| r.3 == "open"), "{after:?}");
    assert!(after.contains(&control(12, Abort)));
    // Restart: the index survives (the log alone no longer tells the first offsets).
    let files = txn_index_files(&log);
    let everything = log.aborted_transactions(0, 15).unwrap();
    assert_eq!(everything, vec![aborted(2, 5), aborted(3, 9)]);
    log.close().unwrap();
    let log = open(dir.path(), compacted());
    assert_eq!(txn_index_files(&log), files);
    assert_eq!(log.aborted_transactions(0, 15).unwrap(), everything);
}

#[test]
fn list_offsets_bounds_read_committed_lookups_by_the_lso() {
    let dir = TempDir::new();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, plain(&[("a", "1")])); // 0, ts NOW
    let mut late = keyed(BatchOptions::default(), &[("b", "1")], NOW + 100);
    let opened = keyed(
        BatchOptions {
            producer_id: 1,
            producer_epoch: 0,
            base_sequence: 0,
            is_transactional: true,
            ..BatchOptions::default()
        },
        &[("t", "1")],
        NOW + 50,
    );
    append(&mut log, opened); // 1, ts NOW + 50
    log.append(&mut late, NOW).unwrap(); // 2, ts NOW + 100
    let committed = |t| {
        log.list_offsets_isolated(t, true)
            .unwrap()
            .map(|f| f.offset)
    };
    let uncommitted = |t| {
        log.list_offsets_isolated(t, false)
            .unwrap()
            .map(|f| f.offset)
    };
    assert_eq!(committed(LATEST_TIMESTAMP), Some(1));
    assert_eq!(uncommitted(LATEST_TIMESTAMP), Some(3));
    assert_eq!(committed(EARLIEST_TIMESTAMP), Some(0));
    assert_eq!(committed(NOW), Some(0));
    assert_eq!(committed(NOW + 10), None);
    assert_eq!(uncommitted(NOW + 10), Some(1));
    assert_eq!(committed(MAX_TIMESTAMP), None);
    assert_eq!(uncommitted(MAX_TIMESTAMP), Some(2));
    assert_eq!(
        log.list_offsets(LATEST_TIMESTAMP).unwrap().unwrap().offset,
        3
    );
    end(&mut log, marker(1, 0, 0, true));
    let committed = |t| {
        log.list_offsets_isolated(t, true)
            .unwrap()
            .map(|f| f.offset)
    };
    assert_eq!(committed(LATEST_TIMESTAMP), Some(4));
    assert_eq!(committed(NOW + 10), Some(1));
    assert_eq!(committed(MAX_TIMESTAMP), Some(2));
}

/// A crash at each step of a compaction swap keeps the aborted transactions known, also when
/// the cleaning removed their data (so only the swapped-in `.txnindex` remembers them).
#[test]
fn compaction_crashes_keep_the_txn_index() {
    use super::compaction::CrashPoint;
    for crash in [
        CrashPoint::Cleaned,
        CrashPoint::Swapped,
        CrashPoint::OldDeleted,
    ] {
        let dir = TempDir::new();
        let mut log = open(dir.path(), compacted());
        append(&mut log, txn(1, 0, 0, &[("k1", "x")])); // 0
        append(&mut log, plain(&[("k2", "a")])); // 1
        log.roll(NOW).unwrap();
        end(&mut log, marker(1, 0, 0, false)); // 2: P1 0..2, LSO 3
        append(&mut log, plain(&[("k3", "b")])); // 3
        log.roll(NOW).unwrap();
        // Producer 1's last batch is now this one: the aborted batch will be dropped whole.
        append(&mut log, txn(1, 0, 1, &[("k4", "c")])); // 4
        end(&mut log, marker(1, 0, 0, true)); // 5
        assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
        let expected = vec![aborted(1, 0)];
        assert_eq!(log.aborted_transactions(0, 6).unwrap(), expected);
        log.compact_until_crash(NOW, crash).unwrap();
        drop(log); // the crash

        let mut log = open(dir.path(), compacted());
        let leftovers: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
            .collect();
        assert!(leftovers.is_empty(), "{crash:?}: {leftovers:?}");
        assert_eq!(
            log.aborted_transactions(0, 6).unwrap(),
            expected,
            "{crash:?}"
        );
        if crash != CrashPoint::Cleaned {
            assert_eq!(log.segment_base_offsets(), vec![0, 4], "{crash:?}");
            assert_eq!(
                fs::read(txn_index_path(dir.path(), 0)).unwrap(),
                entry_bytes(1, 0, 2, 3)
            );
            assert!(!txn_index_path(dir.path(), 2).exists());
        }
        // Cleaning (again) gives the same, and the index survives another restart.
        log.compact_now(NOW).unwrap();
        assert_eq!(log.segment_base_offsets(), vec![0, 4], "{crash:?}");
        assert!(!rows(&log).iter().any(|r| r.3 == "x"), "{crash:?}");
        log.close().unwrap();
        let log = open(dir.path(), compacted());
        assert_eq!(log.aborted_transactions(0, 6).unwrap(), expected);
    }
}
