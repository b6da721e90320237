//! Retention in broker-lite, driven by the broker's periodic check
//! (`log.retention.check.interval.ms` = 50): size-based (`retention.bytes`) and time-based
//! (`retention.ms`) deletion of whole segments, the log start offset that follows, and
//! OFFSET_OUT_OF_RANGE below it. Conditions are polled with a bounded hang guard.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use broker_lite::Broker;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::records::Compression;
use kafka_wire::ErrorCode;

/// Hang guard for conditions the retention task must reach; never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);
const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn start() -> Broker {
    Broker::builder()
        .config("log.retention.check.interval.ms", "50")
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// `.log` segment sizes of a partition directory, oldest first (deleted segments excluded).
fn segment_sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        // A segment being deleted may be renamed between the listing and the stat.
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().to_string(),
                e.metadata().ok()?.len(),
            ))
        })
        .collect();
    v.sort();
    v
}

/// Polls `ListOffsets(earliest)` until `done(earliest)`; panics after [`HANG_GUARD`].
async fn wait_for_log_start(
    c: &mut RawClient,
    topic: &str,
    mut done: impl FnMut(i64) -> bool,
) -> i64 {
    let started = Instant::now();
    loop {
        let earliest = offset_for(c, topic, 0, -2).await;
        if done(earliest) {
            return earliest;
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "retention did not happen; log start offset still {earliest}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kafka's size retention: the oldest segments are deleted while the partition minus the
/// segment stays at or above `retention.bytes`; the active segment remains.
#[tokio::test]
async fn retention_bytes_deletes_oldest_segments() {
    let broker = start().await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let configs = [
        ("segment.bytes", "1024"),
        ("retention.bytes", "2048"),
        ("retention.ms", "-1"),
    ];
    create_topic(&mut c, "sized", 1, &configs).await;
    let ts = now_ms();
    for i in 0..30 {
        let v = format!("{i:02}-{}", "s".repeat(200));
        produce_ok(
            &mut c,
            "sized",
            0,
            kafka_integration_tests::batch(
                &[(None, Some(v.as_bytes()))],
                Compression::None,
                ts + i,
            ),
        )
        .await;
    }
    let pdir = broker.state().data_dir.join("sized-0");
    let earliest = wait_for_log_start(&mut c, "sized", |e| {
        let segs = segment_sizes(&pdir);
        let total: u64 = segs.iter().map(|s| s.1).sum();
        e > 0
            && segs
                .first()
                .is_some_and(|s| total.saturating_sub(2048) < s.1)
    })
    .await;

    let segs = segment_sizes(&pdir);
    assert!(segs.len() >= 2, "{segs:?}");
    assert_eq!(
        segs[0].0,
        format!("{earliest:020}.log"),
        "the log starts at the oldest remaining segment"
    );
    assert_eq!(
        offset_for(&mut c, "sized", 0, -1).await,
        30,
        "latest unchanged"
    );
    // The active segment holds the last batch.
    let last = fetch(&mut c, "sized", 0, 29, 1 << 20).await;
    assert_eq!(last.error_code, 0);
    assert_eq!(last.log_start_offset, earliest);
    // Below the log start offset: OFFSET_OUT_OF_RANGE.
    for offset in [0, earliest - 1] {
        assert_eq!(
            fetch(&mut c, "sized", 0, offset, 1 << 20).await.error_code,
            ErrorCode::OffsetOutOfRange.code()
        );
    }
    let kept = fetch_all(&mut c, "sized", 0, earliest).await;
    let recs = records_of(&kept);
    assert_eq!(recs.first().unwrap().offset, earliest);
    assert_eq!(recs.last().unwrap().offset, 29);
    assert_eq!(
        offset_for(&mut c, "sized", 0, ts).await,
        earliest,
        "timestamp lookups skip deleted data"
    );
    // Producing continues at the end.
    assert_eq!(
        produce_ok(
            &mut c,
            "sized",
            0,
            value_batch("more", 1, Compression::None, ts + 100)
        )
        .await,
        30
    );
    broker.shutdown().await;
}

/// Time retention deletes the segments whose largest timestamp is older than `retention.ms`;
/// a segment holding a recent record stays.
#[tokio::test]
async fn retention_ms_deletes_expired_segments() {
    let broker = start().await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    let configs = [
        ("segment.bytes", "1024"),
        ("segment.ms", &DAY_MS.to_string()),
        ("retention.ms", "3600000"),
    ];
    create_topic(&mut c, "timed", 1, &configs).await;
    let old = now_ms() - 10 * DAY_MS;
    for i in 0..12 {
        let v = format!("{i:02}-{}", "t".repeat(200));
        produce_ok(
            &mut c,
            "timed",
            0,
            kafka_integration_tests::batch(
                &[(None, Some(v.as_bytes()))],
                Compression::None,
                old + i,
            ),
        )
        .await;
    }
    // A recent batch: more than segment.ms after the active segment's first timestamp, so it
    // starts a new segment, which is not expired.
    let recent = now_ms();
    assert_eq!(
        produce_ok(
            &mut c,
            "timed",
            0,
            value_batch("recent", 2, Compression::None, recent)
        )
        .await,
        12
    );

    // Passes run while the batches are produced, so wait for the final state.
    let earliest = wait_for_log_start(&mut c, "timed", |e| e >= 12).await;
    assert_eq!(
        earliest, 12,
        "every expired segment is gone, the recent one stays"
    );
    assert_eq!(offset_for(&mut c, "timed", 0, -1).await, 14);
    assert_eq!(
        fetch(&mut c, "timed", 0, 0, 1 << 20).await.error_code,
        ErrorCode::OffsetOutOfRange.code()
    );
    let kept = records_of(&fetch_all(&mut c, "timed", 0, earliest).await);
    assert_eq!(
        kept.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![12, 13]
    );
    assert_eq!(offset_for(&mut c, "timed", 0, old).await, 12);
    let segs = segment_sizes(&broker.state().data_dir.join("timed-0"));
    assert_eq!(segs[0].0, format!("{:020}.log", 12));
    broker.shutdown().await;
}

/// Kafka's `UnifiedLog.deleteSegments`: "we must always have at least one segment, so if we
/// are going to delete all the segments, create a new one first" — when every segment,
/// the active one included, is past `retention.ms`, Kafka rolls a new empty segment and
/// deletes them all, so the log start offset reaches the log end offset.
#[tokio::test]
async fn retention_ms_expires_the_active_segment_too() {
    let broker = start().await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        "expired",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "3600000")],
    )
    .await;
    let old = now_ms() - 10 * DAY_MS;
    for i in 0..6 {
        produce_ok(
            &mut c,
            "expired",
            0,
            value_batch(
                &format!("e{i}-{}", "x".repeat(200)),
                1,
                Compression::None,
                old + i,
            ),
        )
        .await;
    }
    let earliest = wait_for_log_start(&mut c, "expired", |e| e == 6).await;
    assert_eq!(earliest, offset_for(&mut c, "expired", 0, -1).await);
    assert!(fetch_all(&mut c, "expired", 0, earliest).await.is_empty());
    assert_eq!(
        produce_ok(
            &mut c,
            "expired",
            0,
            value_batch("new", 1, Compression::None, now_ms())
        )
        .await,
        6
    );
    broker.shutdown().await;
}

/// Retention never deletes data of a topic with `retention.ms=-1` and `retention.bytes=-1`.
#[tokio::test]
async fn unlimited_retention_keeps_everything() {
    let broker = start().await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        "forever",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "-1")],
    )
    .await;
    let old = now_ms() - 1000 * DAY_MS;
    for i in 0..12 {
        produce_ok(
            &mut c,
            "forever",
            0,
            value_batch(
                &format!("f{i}-{}", "x".repeat(200)),
                1,
                Compression::None,
                old + i,
            ),
        )
        .await;
    }
    // A topic whose retention does delete, as a witness that retention passes have run.
    create_topic(
        &mut c,
        "witness",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "1000")],
    )
    .await;
    for i in 0..6 {
        produce_ok(
            &mut c,
            "witness",
            0,
            value_batch(
                &format!("w{i}-{}", "x".repeat(200)),
                1,
                Compression::None,
                old + i,
            ),
        )
        .await;
    }
    produce_ok(
        &mut c,
        "witness",
        0,
        value_batch("recent", 1, Compression::None, now_ms()),
    )
    .await;
    wait_for_log_start(&mut c, "witness", |e| e > 0).await;
    assert_eq!(offset_for(&mut c, "forever", 0, -2).await, 0);
    assert_eq!(
        records_of(&fetch_all(&mut c, "forever", 0, 0).await).len(),
        12
    );
    broker.shutdown().await;
}
