//! Retention and DeleteRecords tests.

use std::fs;

use crate::storage::segment::file_name;
use crate::storage::test_util::{batch, offsets, TempDir};
use crate::storage::{
    CleanupPolicy, LogConfig, PartitionLog, RetentionOutcome, StorageError,
    DELETE_UP_TO_HIGH_WATERMARK,
};

const NOW: i64 = 1_700_000_000_000;

/// Size of one test batch.
fn one() -> u64 {
    batch(&[(NOW, "x")]).len() as u64
}

/// Ten one-record batches with timestamps `NOW + i * 1000`, two per segment: segments
/// 0, 2, 4, 6 and the active segment 8 (offsets 8 and 9).
fn log_with(config: LogConfig) -> (TempDir, PartitionLog) {
    let dir = TempDir::new();
    let config = LogConfig {
        segment_bytes: (2 * one()) as i32,
        ..config
    };
    let mut log = PartitionLog::open(dir.path(), config, NOW).unwrap();
    for i in 0..10 {
        log.append(&mut batch(&[(NOW + i * 1000, "x")]), NOW)
            .unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4, 6, 8]);
    (dir, log)
}

#[test]
fn time_retention_deletes_expired_segments_rolling_an_expired_active_one() {
    let (dir, mut log) = log_with(LogConfig {
        retention_ms: 5000,
        file_delete_delay_ms: 1000,
        ..LogConfig::default()
    });
    // Largest timestamps: NOW+1000, +3000, +5000, +7000, +9000.
    let t = NOW + 9000;
    let outcome = log.apply_retention(t).unwrap();
    assert_eq!(
        outcome,
        RetentionOutcome {
            deleted_segments: 2,
            deleted_bytes: 4 * one(),
            log_start_offset: 4,
        }
    );
    assert_eq!(log.segment_base_offsets(), vec![4, 6, 8]);
    assert_eq!(log.log_start_offset(), 4);
    assert!(matches!(
        log.read(3, 100, 10),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        offsets(&log.read(4, 1 << 20, 10).unwrap().records),
        vec![4, 5]
    );

    // Renamed, then removed once file.delete.delay.ms has passed.
    for base in [0, 2] {
        for suffix in [".log", ".index", ".timeindex"] {
            let name = file_name(base, suffix);
            assert!(!dir.path().join(&name).exists());
            assert!(dir.path().join(format!("{name}.deleted")).exists());
        }
    }
    assert_eq!(log.delete_pending_files(t + 999), 0);
    assert_eq!(log.delete_pending_files(t + 1000), 6);
    assert!(!dir
        .path()
        .join(format!("{}.deleted", file_name(0, ".log")))
        .exists());

    // Far in the future everything has expired, the active segment included: as Kafka's
    // UnifiedLog.deleteSegments, a new empty active segment is rolled at the log end offset
    // first, and the log start offset moves to it.
    let outcome = log.apply_retention(t + 1_000_000).unwrap();
    assert_eq!(outcome.deleted_segments, 3);
    assert_eq!(log.segment_base_offsets(), vec![10]);
    assert_eq!(log.log_start_offset(), 10);
    assert_eq!(log.log_end_offset(), 10);
    assert!(log.read(10, 1 << 20, 10).unwrap().records.is_empty());
    assert!(matches!(
        log.read(8, 1 << 20, 10),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // An empty active segment is never deleted.
    assert_eq!(
        log.apply_retention(t + 2_000_000).unwrap().deleted_segments,
        0
    );
    assert_eq!(log.segment_base_offsets(), vec![10]);

    // The log start offset survives a restart.
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), t).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".deleted")));
}

#[test]
fn infinite_retention_and_compaction_keep_everything() {
    let (_dir, mut log) = log_with(LogConfig {
        retention_ms: -1,
        ..LogConfig::default()
    });
    assert_eq!(log.apply_retention(i64::MAX).unwrap().deleted_segments, 0);

    // Written as a `delete` topic (compacted topics refuse keyless records), then switched.
    let (_dir, mut log) = log_with(LogConfig {
        retention_ms: 1,
        retention_bytes: 0,
        ..LogConfig::default()
    });
    log.set_config(LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..log.config().clone()
    });
    assert_eq!(log.apply_retention(i64::MAX).unwrap().deleted_segments, 0);
    let err = log.delete_records_before(3, NOW).unwrap_err();
    assert!(matches!(err, StorageError::PolicyViolation(_)));
    assert_eq!(err.error_code().code(), 44);
}

#[test]
fn size_retention_deletes_oldest_segments_while_the_excess_covers_them() {
    let (dir, mut log) = log_with(LogConfig {
        retention_bytes: (3 * one()) as i64,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    });
    assert_eq!(log.size_in_bytes(), 10 * one());
    // Excess 7 batches: segments 0, 2, 4 (6 batches) go; segment 6 would overshoot.
    let outcome = log.apply_retention(NOW).unwrap();
    assert_eq!(outcome.deleted_segments, 3);
    assert_eq!(log.segment_base_offsets(), vec![6, 8]);
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(log.size_in_bytes(), 4 * one());
    // With no delay the files are gone at once.
    assert!(!dir.path().join(file_name(0, ".log")).exists());
    assert!(!dir
        .path()
        .join(format!("{}.deleted", file_name(0, ".log")))
        .exists());
    // Stable: nothing more to delete.
    assert_eq!(log.apply_retention(NOW).unwrap().deleted_segments, 0);
}

#[test]
fn retention_never_deletes_data_at_or_above_the_high_watermark() {
    let (_dir, mut log) = log_with(LogConfig {
        retention_ms: 0,
        ..LogConfig::default()
    });
    log.set_auto_high_watermark(false);
    log.set_high_watermark(3);
    // Segment 0 ends at 2 <= 3: deletable. Segment 2 ends at 4 > 3: kept.
    assert_eq!(log.apply_retention(i64::MAX).unwrap().deleted_segments, 1);
    assert_eq!(log.segment_base_offsets(), vec![2, 4, 6, 8]);
}

#[test]
fn delete_records_moves_the_log_start_offset_and_drops_covered_segments() {
    let (dir, mut log) = log_with(LogConfig::default());
    assert_eq!(log.delete_records_before(3, NOW).unwrap(), 3);
    assert_eq!(log.segment_base_offsets(), vec![2, 4, 6, 8]);
    assert!(matches!(
        log.read(2, 100, 10),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // The batch holding offset 3 is served; nothing below the start is found by time.
    assert_eq!(offsets(&log.read(3, 1 << 20, 10).unwrap().records), vec![3]);
    assert_eq!(log.earliest().unwrap().offset, 3);
    assert_eq!(
        log.offset_for_timestamp(0).unwrap().map(|t| t.offset),
        Some(3)
    );
    // Moving backwards changes nothing.
    assert_eq!(log.delete_records_before(1, NOW).unwrap(), 3);
    // Out of range.
    for bad in [-2, 11] {
        let err = log.delete_records_before(bad, NOW).unwrap_err();
        assert!(
            matches!(err, StorageError::OffsetOutOfRange { .. }),
            "{bad}"
        );
    }
    // Persisted across a restart (even mid-segment).
    log.close().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), NOW).unwrap();
    assert_eq!(log.log_start_offset(), 3);

    // Up to the high watermark: everything but the active segment is deleted.
    assert_eq!(
        log.delete_records_before(DELETE_UP_TO_HIGH_WATERMARK, NOW)
            .unwrap(),
        10
    );
    assert_eq!(log.segment_base_offsets(), vec![8]);
    assert!(log.read(10, 100, 10).unwrap().records.is_empty());
    assert!(log.read(9, 100, 10).is_err());
    let info = log.append(&mut batch(&[(NOW, "y")]), NOW).unwrap();
    assert_eq!((info.base_offset, info.log_start_offset), (10, 10));
}
