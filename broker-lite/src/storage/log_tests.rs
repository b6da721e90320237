//! Tests of appends, reads, rolls, lookups and the on-disk format.

use std::fs;

use bytes::BytesMut;
use kafka_wire::records::{RecordBatch, TimestampType};

use super::*;
use crate::storage::batch::BatchHeader;
use crate::storage::checkpoint::CLEAN_SHUTDOWN_FILE;
use crate::storage::segment::file_name;
use crate::storage::test_util::{batch, batch_of, decode, offsets, TempDir};

const NOW: i64 = 1_700_000_000_000;

fn open(dir: &TempDir, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir.path(), config, NOW).unwrap()
}

/// Appends `batch`, returning the stored (patched) bytes.
fn append(log: &mut PartitionLog, mut b: BytesMut) -> (AppendInfo, BytesMut) {
    let info = log.append(&mut b, NOW).unwrap();
    (info, b)
}

#[test]
fn append_read_round_trip() {
    let dir = TempDir::new();
    let mut log = open(&dir, LogConfig::default());
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.high_watermark()
        ),
        (0, 0, 0)
    );

    let (info, _) = append(
        &mut log,
        batch(&[(NOW, "a"), (NOW + 1, "b"), (NOW + 2, "c")]),
    );
    assert_eq!(
        info,
        AppendInfo {
            base_offset: 0,
            last_offset: 2,
            record_count: 3,
            batch_count: 1,
            size_in_bytes: info.size_in_bytes,
            max_timestamp: NOW + 2,
            offset_of_max_timestamp: 2,
            log_append_time: -1,
            log_start_offset: 0,
            duplicate: false,
        }
    );
    // Two batches in one append.
    let mut two = batch(&[(NOW + 10, "d")]);
    two.extend_from_slice(&batch(&[(NOW + 11, "e"), (NOW + 12, "f")]));
    let (info, _) = append(&mut log, two);
    assert_eq!(
        (info.base_offset, info.last_offset, info.batch_count),
        (3, 5, 2)
    );
    assert_eq!((log.log_end_offset(), log.high_watermark()), (6, 6));

    let read = log.read(0, 1 << 20, log.high_watermark()).unwrap();
    assert_eq!(
        decode(&read.records),
        vec![
            (0, NOW, "a".to_string()),
            (1, NOW + 1, "b".to_string()),
            (2, NOW + 2, "c".to_string()),
            (3, NOW + 10, "d".to_string()),
            (4, NOW + 11, "e".to_string()),
            (5, NOW + 12, "f".to_string()),
        ]
    );
    assert_eq!(
        (
            read.next_offset,
            read.high_watermark,
            read.log_start_offset,
            read.log_end_offset
        ),
        (6, 6, 0, 6)
    );
    // Every stored batch carries the leader epoch.
    let mut buf = read.records.clone();
    while !buf.is_empty() {
        assert_eq!(
            RecordBatch::decode(&mut buf)
                .unwrap()
                .partition_leader_epoch(),
            0
        );
    }
}

#[test]
fn log_file_is_the_concatenation_of_patched_batches_and_indexes_follow_kafka() {
    let dir = TempDir::new();
    let config = LogConfig {
        index_interval_bytes: 150,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    log.set_leader_epoch(7);
    // Timestamps go up and down so the time index only takes new maxima.
    let timestamps = [100, 300, 200, 300, 500, 400, 600, 100, 700, 650];
    let mut stored = Vec::new();
    for (i, ts) in timestamps.iter().enumerate() {
        let (info, bytes) = append(&mut log, batch_of(1 + i % 3, *ts));
        stored.push((info, bytes));
    }

    let log_bytes = fs::read(dir.path().join(file_name(0, ".log"))).unwrap();
    let concatenated: Vec<u8> = stored.iter().flat_map(|(_, b)| b.to_vec()).collect();
    assert_eq!(log_bytes, concatenated);
    let mut next = 0;
    let mut position = 0usize;
    for (info, bytes) in &stored {
        let h = BatchHeader::parse(bytes);
        assert_eq!((h.base_offset, info.base_offset), (next, next));
        assert_eq!(h.partition_leader_epoch, 7);
        assert_eq!(&log_bytes[position..position + 8], &next.to_be_bytes());
        RecordBatch::from_bytes(bytes.clone().freeze())
            .unwrap()
            .verify_crc()
            .unwrap();
        next = h.next_offset();
        position += bytes.len();
    }

    // Expected entries by Kafka's rule: before appending a batch, if more than
    // index.interval.bytes were appended since the last entry, index it.
    let mut expected_index = Vec::new();
    let mut expected_time = Vec::new();
    let (mut since, mut pos) = (0usize, 0usize);
    let (mut max_ts, mut max_ts_offset) = (-1i64, 0i64);
    for (info, bytes) in &stored {
        if info.max_timestamp > max_ts {
            max_ts = info.max_timestamp;
            max_ts_offset = info.last_offset;
        }
        if since > 150 {
            expected_index.extend_from_slice(&(info.last_offset as i32).to_be_bytes());
            expected_index.extend_from_slice(&(pos as i32).to_be_bytes());
            let last_ts = expected_time
                .chunks(12)
                .last()
                .map(|c: &[u8]| i64::from_be_bytes(c[..8].try_into().unwrap()));
            if last_ts.is_none_or(|t| max_ts > t) {
                expected_time.extend_from_slice(&max_ts.to_be_bytes());
                expected_time.extend_from_slice(&(max_ts_offset as i32).to_be_bytes());
            }
            since = 0;
        }
        since += bytes.len();
        pos += bytes.len();
    }
    assert!(
        expected_index.len() >= 3 * 8,
        "the test should index several batches"
    );
    let index = fs::read(dir.path().join(file_name(0, ".index"))).unwrap();
    assert_eq!(index, expected_index);
    let time_index = fs::read(dir.path().join(file_name(0, ".timeindex"))).unwrap();
    assert_eq!(time_index, expected_time);

    // Closing appends the segment's largest timestamp (700, last offset of batch 8).
    let max_entry_offset = stored[8].0.last_offset;
    log.close().unwrap();
    let time_index = fs::read(dir.path().join(file_name(0, ".timeindex"))).unwrap();
    assert_eq!(&time_index[..expected_time.len()], &expected_time[..]);
    let last: &[u8] = &time_index[time_index.len() - 12..];
    assert_eq!(i64::from_be_bytes(last[..8].try_into().unwrap()), 700);
    assert_eq!(
        i32::from_be_bytes(last[8..].try_into().unwrap()),
        max_entry_offset as i32
    );
    assert!(dir.path().join(CLEAN_SHUTDOWN_FILE).exists());

    // A rebuild from the log produces the same indexes.
    fs::remove_file(dir.path().join(file_name(0, ".index"))).unwrap();
    fs::remove_file(dir.path().join(file_name(0, ".timeindex"))).unwrap();
    let log = open(&dir, log_config_with_interval(150));
    assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
    assert_eq!(
        fs::read(dir.path().join(file_name(0, ".index"))).unwrap(),
        expected_index
    );
    assert_eq!(
        fs::read(dir.path().join(file_name(0, ".timeindex"))).unwrap(),
        time_index
    );
    assert_eq!(log.log_end_offset(), next);
}

fn log_config_with_interval(bytes: i32) -> LogConfig {
    LogConfig {
        index_interval_bytes: bytes,
        ..LogConfig::default()
    }
}

#[test]
fn log_append_time_stamps_batches() {
    let dir = TempDir::new();
    let config = LogConfig {
        message_timestamp_type: MessageTimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    let mut b = batch(&[(5, "a"), (6, "b")]);
    let info = log.append(&mut b, NOW + 42).unwrap();
    assert_eq!(info.log_append_time, NOW + 42);
    assert_eq!(info.max_timestamp, NOW + 42);
    let read = log.read(0, 1 << 20, log.high_watermark()).unwrap();
    let stored = RecordBatch::from_bytes(read.records.clone()).unwrap();
    stored.verify_crc().unwrap();
    assert_eq!(stored.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(stored.max_timestamp(), NOW + 42);
    assert_eq!(
        decode(&read.records),
        vec![(0, NOW + 42, "a".into()), (1, NOW + 42, "b".into())]
    );
    assert_eq!(
        log.offset_for_timestamp(NOW)
            .unwrap()
            .map(|t| (t.offset, t.timestamp)),
        Some((0, NOW + 42))
    );
}

#[test]
fn rejected_appends_change_nothing() {
    let dir = TempDir::new();
    let mut log = open(&dir, LogConfig::default());
    append(&mut log, batch(&[(1, "a")]));
    let size = log.size_in_bytes();

    let mut corrupt = batch(&[(1, "b")]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let err = log.append(&mut corrupt, NOW).unwrap_err();
    assert!(matches!(err, StorageError::CorruptMessage(_)), "{err}");
    assert_eq!(err.error_code().code(), 2);

    // A good batch followed by a bad one: nothing is written.
    let mut mixed = batch(&[(1, "c")]);
    mixed.extend_from_slice(&corrupt);
    assert!(log.append(&mut mixed, NOW).is_err());

    let mut empty = BytesMut::new();
    assert!(matches!(
        log.append(&mut empty, NOW),
        Err(StorageError::InvalidRecord(_))
    ));

    let mut small = log.config().clone();
    small.max_message_bytes = 70;
    log.set_config(small);
    let err = log
        .append(&mut batch(&[(1, "a long value")]), NOW)
        .unwrap_err();
    assert!(matches!(err, StorageError::MessageTooLarge { .. }));
    assert_eq!(err.error_code().code(), 10);

    let tiny_segments = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    log.set_config(tiny_segments);
    let mut big = batch(&[(1, "a")]);
    big.extend_from_slice(&batch(&[(1, "b")]));
    let err = log.append(&mut big, NOW).unwrap_err();
    assert!(matches!(err, StorageError::RecordListTooLarge { .. }));
    assert_eq!(err.error_code().code(), 18);

    assert_eq!((log.log_end_offset(), log.size_in_bytes()), (1, size));
    assert_eq!(offsets(&log.read(0, 1 << 20, 10).unwrap().records), vec![0]);
}

#[test]
fn read_semantics() {
    let dir = TempDir::new();
    let mut log = open(&dir, LogConfig::default());
    // Batches: [0..=4], [5..=9], [10..=14].
    let mut sizes = Vec::new();
    for i in 0..3 {
        let (_, b) = append(&mut log, batch_of(5, NOW + i));
        sizes.push(b.len());
    }
    let hw = log.high_watermark();
    assert_eq!(hw, 15);

    // The batch containing the offset is returned whole, even though it starts earlier.
    let r = log.read(7, 1 << 20, hw).unwrap();
    assert_eq!(offsets(&r.records), (5..15).collect::<Vec<_>>());
    assert_eq!(r.next_offset, 15);

    // max_bytes smaller than the first batch: still one whole batch (KIP-74).
    let r = log.read(0, 1, hw).unwrap();
    assert_eq!(r.records.len(), sizes[0]);
    assert_eq!(r.next_offset, 5);
    // ... unless min_one_batch is off.
    let r = log.read_with(0, 1, hw, false).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.next_offset, 0);
    // A limit between one and two batches returns one.
    let r = log.read(0, sizes[0] + sizes[1] - 1, hw).unwrap();
    assert_eq!(offsets(&r.records), (0..5).collect::<Vec<_>>());
    let r = log.read(0, sizes[0] + sizes[1], hw).unwrap();
    assert_eq!(offsets(&r.records), (0..10).collect::<Vec<_>>());

    // Never past max_offset: a batch reaching it is not returned.
    let r = log.read(0, 1 << 20, 10).unwrap();
    assert_eq!(offsets(&r.records), (0..10).collect::<Vec<_>>());
    let r = log.read(0, 1 << 20, 9).unwrap();
    assert_eq!(offsets(&r.records), (0..5).collect::<Vec<_>>());
    let r = log.read(5, 1 << 20, 9).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.next_offset, 5);

    // The high watermark as a separate concept: appends no longer move it.
    log.set_auto_high_watermark(false);
    assert_eq!(log.set_high_watermark(10), 10);
    append(&mut log, batch_of(1, NOW));
    assert_eq!((log.high_watermark(), log.log_end_offset()), (10, 16));
    let r = log.read(0, 1 << 20, log.high_watermark()).unwrap();
    assert_eq!(r.next_offset, 10);
    assert_eq!(log.set_high_watermark(100), 16);

    // At the end: empty; out of range: errors.
    let r = log.read(16, 1 << 20, 16).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.next_offset, 16);
    let err = log.read(17, 1 << 20, 16).unwrap_err();
    assert!(matches!(
        err,
        StorageError::OffsetOutOfRange {
            offset: 17,
            log_start_offset: 0,
            log_end_offset: 16
        }
    ));
    assert_eq!(err.error_code().code(), 1);
    assert!(log.read(-1, 1 << 20, 16).is_err());
}

#[test]
fn segments_roll_by_size_and_reads_continue_across_them() {
    let dir = TempDir::new();
    let one = batch_of(2, NOW).len();
    let config = LogConfig {
        segment_bytes: (one * 3) as i32,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    for _ in 0..10 {
        append(&mut log, batch_of(2, NOW));
    }
    // Three batches (six offsets) per segment.
    assert_eq!(log.segment_base_offsets(), vec![0, 6, 12, 18]);
    for base in [0, 6, 12, 18] {
        for suffix in [".log", ".index", ".timeindex"] {
            assert!(dir.path().join(file_name(base, suffix)).exists());
        }
    }
    assert_eq!(
        fs::metadata(dir.path().join(file_name(6, ".log")))
            .unwrap()
            .len(),
        (one * 3) as u64
    );
    // A read stays within one segment; the next fetch continues.
    let mut fetch = 0;
    let mut seen = Vec::new();
    while fetch < log.high_watermark() {
        let r = log.read(fetch, 1 << 20, log.high_watermark()).unwrap();
        assert!(r.records.len() <= one * 3);
        seen.extend(offsets(&r.records));
        fetch = r.next_offset;
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    // Reading from the middle of a later segment.
    assert_eq!(
        offsets(&log.read(13, 1 << 20, 20).unwrap().records),
        (12..18).collect::<Vec<_>>()
    );
}

/// `append_may_block` (whether Produce appends off the connection's task): only a configured
/// fsync or an append that would roll the active segment may wait on the disk.
#[test]
fn appends_that_may_wait_on_the_disk_are_predicted() {
    let dir = TempDir::new();
    let one = batch_of(2, NOW).len();
    let config = LogConfig {
        segment_bytes: (one * 3) as i32,
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config.clone());
    // An empty active segment never rolls.
    assert!(!log.append_may_block(one * 10, NOW));
    append(&mut log, batch_of(2, NOW));
    assert!(!log.append_may_block(one, NOW));
    assert!(!log.append_may_block(one * 2, NOW));
    // Past segment.bytes, or past segment.ms, the append rolls (and fsyncs the old segment).
    assert!(log.append_may_block(one * 2 + 1, NOW));
    assert!(log.append_may_block(one, NOW + 1001));
    // Any configured fsync.
    for flushing in [
        LogConfig {
            flush_messages: 1,
            ..config.clone()
        },
        LogConfig {
            flush_ms: 60_000,
            ..config.clone()
        },
    ] {
        log.set_config(flushing);
        assert!(log.append_may_block(1, NOW));
    }
}

#[test]
fn segments_roll_by_time() {
    let dir = TempDir::new();
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    let append_at = |log: &mut PartitionLog, ts: i64| {
        let mut b = batch(&[(ts, "x")]);
        log.append(&mut b, NOW).unwrap()
    };
    append_at(&mut log, NOW);
    append_at(&mut log, NOW + 1000); // waited exactly segment.ms: no roll yet
    assert_eq!(log.segment_count(), 1);
    append_at(&mut log, NOW + 1001);
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    append_at(&mut log, NOW + 1500);
    assert_eq!(log.segment_count(), 2);

    // Without timestamps the segment's creation time counts.
    let dir = TempDir::new();
    let mut log = PartitionLog::open(
        dir.path(),
        LogConfig {
            segment_ms: 1000,
            ..LogConfig::default()
        },
        NOW,
    )
    .unwrap();
    log.append(&mut batch(&[(-1, "x")]), NOW).unwrap();
    log.append(&mut batch(&[(-1, "x")]), NOW + 1000).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&mut batch(&[(-1, "x")]), NOW + 1001).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn segments_roll_when_the_index_is_full() {
    let dir = TempDir::new();
    let config = LogConfig {
        index_interval_bytes: 0,
        segment_index_bytes: 24, // 3 offset entries, 2 time entries
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    for i in 0..8 {
        append(&mut log, batch_of(1, NOW + i));
    }
    // Batch 0 is never indexed; batches 1 and 2 fill the time index (2 entries).
    assert_eq!(log.segment_base_offsets(), vec![0, 3, 6]);
    let first = &log.segments[0];
    assert_eq!(first.index().entries().len(), 2);
    // The entry added on roll is not larger than the last one, so it is not added.
    assert_eq!(first.time_index().entries().len(), 2);
    assert_eq!(
        offsets(&log.read(0, 1 << 20, 8).unwrap().records),
        vec![0, 1, 2]
    );
}

#[test]
fn restart_serves_the_same_data() {
    let dir = TempDir::new();
    let config = LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config.clone());
    for i in 0..30 {
        append(&mut log, batch_of(1 + (i % 4) as usize, NOW + i));
    }
    let leo = log.log_end_offset();
    let bases = log.segment_base_offsets();
    let before: Vec<_> = (0..leo)
        .map(|o| log.read(o, 1 << 20, leo).unwrap())
        .collect();
    let by_time = log.offset_for_timestamp(NOW + 17).unwrap();
    log.close().unwrap();
    assert!(matches!(
        log.read(0, 1, leo),
        Err(StorageError::LogClosed(_))
    ));
    assert!(log.close().is_ok());

    let mut log = open(&dir, config.clone());
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.high_watermark(), leo);
    assert_eq!(log.segment_base_offsets(), bases);
    for (o, read) in before.iter().enumerate() {
        assert_eq!(&log.read(o as i64, 1 << 20, leo).unwrap(), read);
    }
    assert_eq!(log.offset_for_timestamp(NOW + 17).unwrap(), by_time);
    // Appends continue at the log end offset.
    let (info, _) = append(&mut log, batch_of(1, NOW + 100));
    assert_eq!(info.base_offset, leo);
    drop(log); // crash: no marker, every segment is recovered
    let log = open(&dir, config);
    assert_eq!(log.log_end_offset(), leo + 1);
    assert!(log.segment_base_offsets().starts_with(&bases));
    assert_eq!(
        log.read(leo, 1 << 20, leo + 1).unwrap().next_offset,
        leo + 1
    );
}

#[test]
fn offset_for_timestamp_finds_the_earliest_record_at_or_after() {
    let dir = TempDir::new();
    let config = LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    // (offset: timestamp) 0:100 1:150 | 2:120 3:300 | 4:200 | 5:250 6:400 7:350 | 8:390 ...
    let batches: [&[(i64, &str)]; 5] = [
        &[(100, "a"), (150, "b")],
        &[(120, "c"), (300, "d")],
        &[(200, "e")],
        &[(250, "f"), (400, "g"), (350, "h")],
        &[(390, "i")],
    ];
    for records in batches {
        append(&mut log, batch(records));
    }
    for _ in 0..8 {
        append(&mut log, batch(&[(390, "pad")]));
    }
    assert!(log.segment_count() > 1);
    let at = |log: &PartitionLog, ts: i64| {
        log.offset_for_timestamp(ts)
            .unwrap()
            .map(|t| (t.offset, t.timestamp))
    };
    assert_eq!(at(&log, 0), Some((0, 100)));
    assert_eq!(at(&log, 100), Some((0, 100)));
    assert_eq!(at(&log, 101), Some((1, 150)));
    assert_eq!(at(&log, 151), Some((3, 300)));
    assert_eq!(at(&log, 300), Some((3, 300)));
    assert_eq!(at(&log, 301), Some((6, 400)));
    assert_eq!(at(&log, 400), Some((6, 400)));
    assert_eq!(at(&log, 401), None);
    assert_eq!(
        log.offset_for_timestamp(100).unwrap().unwrap().leader_epoch,
        Some(0)
    );

    // Records below the log start offset are skipped.
    log.delete_records_before(1, NOW).unwrap();
    assert_eq!(at(&log, 0), Some((1, 150)));

    // Special ListOffsets timestamps.
    let latest = log.list_offsets(LATEST_TIMESTAMP).unwrap().unwrap();
    assert_eq!(
        (latest.offset, latest.timestamp),
        (log.high_watermark(), -1)
    );
    let earliest = log.list_offsets(EARLIEST_TIMESTAMP).unwrap().unwrap();
    assert_eq!(
        (earliest.offset, earliest.timestamp, earliest.leader_epoch),
        (1, -1, Some(0))
    );
    assert_eq!(
        log.list_offsets(EARLIEST_LOCAL_TIMESTAMP).unwrap(),
        Some(earliest)
    );
    let max = log.list_offsets(MAX_TIMESTAMP).unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (6, 400));
    assert_eq!(log.list_offsets(250).unwrap().map(|t| t.offset), Some(3));

    // Nothing at or above the high watermark is reported.
    log.set_auto_high_watermark(false);
    log.set_high_watermark(6);
    assert_eq!(at(&log, 301), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), None);
}

#[test]
fn empty_log_lookups() {
    let dir = TempDir::new();
    let log = open(&dir, LogConfig::default());
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), None);
    let earliest = log.earliest().unwrap();
    assert_eq!((earliest.offset, earliest.leader_epoch), (0, None));
    assert!(log.read(0, 100, 0).unwrap().records.is_empty());
}

#[test]
fn flush_policy_by_messages_and_time() {
    let dir = TempDir::new();
    let config = LogConfig {
        flush_messages: 3,
        flush_ms: 10_000,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    append(&mut log, batch_of(2, NOW));
    assert_eq!(log.unflushed_messages, 2);
    append(&mut log, batch_of(1, NOW));
    assert_eq!(log.unflushed_messages, 0);
    append(&mut log, batch_of(1, NOW));
    assert!(!log.maybe_flush(NOW + 9_999).unwrap());
    assert!(log.maybe_flush(NOW + 10_000).unwrap());
    assert_eq!(log.unflushed_messages, 0);
    assert!(!log.maybe_flush(NOW + 30_000).unwrap());
    log.flush().unwrap();
}

#[test]
fn timestamp_lookups_look_inside_compressed_batches() {
    use crate::storage::test_util::batch_with;
    use kafka_wire::records::{BatchOptions, Compression};

    let dir = TempDir::new();
    let mut log = open(&dir, LogConfig::default());
    append(&mut log, batch(&[(50, "first")]));
    let lz4 = BatchOptions {
        compression: Compression::Lz4,
        ..BatchOptions::default()
    };
    append(
        &mut log,
        batch_with(lz4, &[(100, "a"), (300, "b"), (200, "c"), (300, "d")]),
    );
    let at = |ts| {
        log.offset_for_timestamp(ts)
            .unwrap()
            .map(|t| (t.offset, t.timestamp))
    };
    assert_eq!(at(60), Some((1, 100)));
    assert_eq!(at(150), Some((2, 300)));
    assert_eq!(at(300), Some((2, 300)));
    assert_eq!(at(301), None);
    // MAX_TIMESTAMP: the first record holding the largest timestamp.
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (2, 300));
    assert_eq!(
        offsets(&log.read(3, 1 << 20, 5).unwrap().records),
        vec![1, 2, 3, 4]
    );
}

/// A batch of idempotent producer `pid` (epoch, base sequence) of `count` records at `NOW`.
fn idempotent(pid: i64, epoch: i16, seq: i32, count: usize) -> BytesMut {
    use crate::storage::test_util::batch_with;
    use kafka_wire::records::BatchOptions;
    let values: Vec<String> = (0..count)
        .map(|i| format!("s{}", seq as usize + i))
        .collect();
    let records: Vec<(i64, &str)> = values.iter().map(|v| (NOW, v.as_str())).collect();
    batch_with(
        BatchOptions {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            ..BatchOptions::default()
        },
        &records,
    )
}

#[test]
fn idempotent_appends_dedupe_and_validate_sequences() {
    let dir = TempDir::new();
    let mut log = open(&dir, LogConfig::default());
    append(&mut log, batch_of(1, NOW)); // offset 0, no producer id
    let (first, stored) = append(&mut log, idempotent(7, 0, 0, 3));
    assert_eq!(
        (first.base_offset, first.last_offset, first.duplicate),
        (1, 3, false)
    );
    // The producer's fields are stored as sent.
    let h = BatchHeader::parse(&stored);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (7, 0, 0)
    );

    // A retry of the same batch: nothing written, the original offsets.
    let leo = log.log_end_offset();
    let size = log.size_in_bytes();
    let (dup, _) = append(&mut log, idempotent(7, 0, 0, 3));
    assert!(dup.duplicate);
    assert_eq!(
        (
            dup.base_offset,
            dup.last_offset,
            dup.record_count,
            dup.log_append_time
        ),
        (1, 3, 0, -1)
    );
    assert_eq!((log.log_end_offset(), log.size_in_bytes()), (leo, size));

    // A gap and an old epoch are rejected, nothing written.
    let mut gap = idempotent(7, 0, 4, 1);
    assert!(matches!(
        log.append(&mut gap, NOW),
        Err(StorageError::OutOfOrderSequence(_))
    ));
    append(&mut log, idempotent(7, 1, 0, 1)); // epoch bump, sequence 0: offset 4
    let mut stale = idempotent(7, 0, 3, 1);
    let err = log.append(&mut stale, NOW).unwrap_err();
    assert!(matches!(err, StorageError::InvalidProducerEpoch(_)));
    assert_eq!(
        err.error_code(),
        kafka_wire::ErrorCode::InvalidProducerEpoch
    );
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(
        offsets(&log.read(0, 1 << 20, 100).unwrap().records),
        vec![0, 1, 2, 3, 4]
    );
}

#[test]
fn duplicates_report_the_original_append_time() {
    let dir = TempDir::new();
    let config = LogConfig {
        message_timestamp_type: MessageTimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    let info = log.append(&mut idempotent(3, 0, 0, 2), NOW + 5).unwrap();
    assert_eq!(info.log_append_time, NOW + 5);
    let dup = log.append(&mut idempotent(3, 0, 0, 2), NOW + 99).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.base_offset, dup.log_append_time), (0, NOW + 5));
}

#[test]
fn producer_state_is_rebuilt_on_open_clean_or_not() {
    for clean in [true, false] {
        let dir = TempDir::new();
        let config = LogConfig {
            segment_bytes: 160,
            ..LogConfig::default()
        };
        let mut log = open(&dir, config.clone());
        // Several segments; producer 1 ends with epoch 2, producer 2 with epoch 0.
        append(&mut log, idempotent(1, 0, 0, 2));
        append(&mut log, idempotent(2, 0, 0, 1));
        append(&mut log, idempotent(1, 0, 2, 2));
        append(&mut log, batch_of(2, NOW));
        append(&mut log, idempotent(1, 2, 0, 1));
        append(&mut log, idempotent(2, 0, 1, 1));
        assert!(log.segment_count() > 2, "the test wants several segments");
        let leo = log.log_end_offset();
        if clean {
            log.close().unwrap();
        }
        drop(log);

        let mut log = open(&dir, config);
        assert_eq!(log.producer_count(), 2);
        // Duplicates of the last batches are recognized, with their original offsets.
        let dup = log.append(&mut idempotent(2, 0, 1, 1), NOW).unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, leo - 1);
        let dup = log.append(&mut idempotent(1, 2, 0, 1), NOW).unwrap();
        assert!(dup.duplicate);
        // The epoch and sequences carry on.
        assert!(matches!(
            log.append(&mut idempotent(1, 1, 0, 1), NOW),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        assert!(matches!(
            log.append(&mut idempotent(1, 2, 2, 1), NOW),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        let next = log.append(&mut idempotent(1, 2, 1, 1), NOW).unwrap();
        assert_eq!((next.base_offset, next.duplicate), (leo, false));
    }
}

#[test]
fn expired_producers_are_forgotten() {
    let dir = TempDir::new();
    let mut log = open(&dir, LogConfig::default());
    append(&mut log, idempotent(9, 0, 0, 1));
    assert_eq!(log.remove_expired_producers(NOW + 10, 100), 0);
    assert_eq!(log.remove_expired_producers(NOW + 100, 100), 1);
    assert_eq!(log.producer_count(), 0);
    // Unknown again: the retry is appended a second time, as Kafka would.
    let again = log.append(&mut idempotent(9, 0, 0, 1), NOW).unwrap();
    assert_eq!((again.base_offset, again.duplicate), (1, false));
}

#[test]
fn retention_keeps_producer_state_while_running() {
    let dir = TempDir::new();
    let config = LogConfig {
        segment_bytes: 160,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config.clone());
    append(&mut log, idempotent(4, 0, 0, 1)); // offset 0
    append(&mut log, batch_of(1, NOW)); // offset 1
    append(&mut log, batch_of(1, NOW)); // offset 2
    assert!(log.segment_count() >= 2);
    // Everything below offset 3 goes: producer 4's only batch is deleted.
    log.delete_records_before(crate::storage::DELETE_UP_TO_HIGH_WATERMARK, NOW)
        .unwrap();
    assert_eq!(log.log_start_offset(), 3);
    // The state survives the deletion while the log is open (as Kafka keeps it).
    let dup = log.append(&mut idempotent(4, 0, 0, 1), NOW).unwrap();
    assert!(dup.duplicate);
    assert!(matches!(
        log.append(&mut idempotent(4, 0, 5, 1), NOW),
        Err(StorageError::OutOfOrderSequence(_))
    ));
    log.close().unwrap();
    drop(log);
    // After a restart only the remaining log is replayed: producer 4 is unknown and any
    // sequence is accepted (KIP-360).
    let mut log = open(&dir, config);
    assert_eq!(log.producer_count(), 0);
    let next = log.append(&mut idempotent(4, 0, 5, 1), NOW).unwrap();
    assert!(!next.duplicate);
}
