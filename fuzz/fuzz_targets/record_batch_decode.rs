//! Record batch v2 decoding (`kafka_wire::records`) on arbitrary bytes: the input is a
//! `records` field (zero or more concatenated batches, possibly ending with a partial one).
//!
//! Every batch is framed, its CRC verified, and - whether the CRC matched or not, so that
//! corrupt record sections reach the parser - all its records are iterated, with a 1 MiB
//! decompression cap. Control records are parsed as transaction markers. The in-place
//! patching helpers run on the raw input and on every batch.
//!
//! Properties, beyond "never panics": strict and fetch-style framing agree; a framed batch
//! has the size its header claims; the iterator yields at most `recordCount` records, exactly
//! that many when it ends without error, with strictly increasing offsets within
//! `[baseOffset, lastOffset]`; patching keeps or restores a valid CRC as documented.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{
    self, ControlRecordType, EndTransactionMarker, RecordBatch, RecordBatches, TimestampType,
    LOG_OVERHEAD, MAGIC, RECORD_BATCH_OVERHEAD,
};
use kafka_wire_fuzz::MAX_DECOMPRESSED;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);

    // Patching helpers on raw bytes: errors are fine, panics are not.
    let mut raw = data.to_vec();
    let _ = records::set_base_offset(&mut raw, 42);
    let _ = records::set_partition_leader_epoch(&mut raw, 7);
    let _ = records::set_producer_state(&mut raw, 1, 2, 3);
    let _ = records::set_max_timestamp(&mut raw, TimestampType::LogAppendTime, 1_000);

    let strict = records::decode_all(input.clone());
    let mut fetch = RecordBatches::for_fetch(input.clone());
    let mut batches = Vec::new();
    let mut framing_error = false;
    for b in fetch.by_ref() {
        match b {
            Ok(b) => batches.push(b),
            Err(_) => {
                framing_error = true;
                break;
            }
        }
    }
    if let Ok(all) = &strict {
        assert!(!framing_error && !fetch.has_partial_tail() && *all == batches);
        assert!(fetch.remaining().is_empty());
    }
    let mut one = input;
    if let Ok(first) = RecordBatch::decode(&mut one) {
        assert_eq!(Some(&first), batches.first());
    }

    for batch in &batches {
        check_batch(batch);
    }
});

fn check_batch(batch: &RecordBatch) {
    assert_eq!(batch.magic(), MAGIC);
    assert!(batch.size_in_bytes() >= RECORD_BATCH_OVERHEAD);
    assert_eq!(
        batch.size_in_bytes(),
        batch.batch_length() as usize + LOG_OVERHEAD
    );
    assert_eq!(
        RecordBatch::from_bytes(batch.as_bytes().clone()).as_ref(),
        Ok(batch)
    );
    let crc_ok = batch.verify_crc().is_ok();
    let _ = format!("{batch:?}");
    let _ = (
        batch.base_offset(),
        batch.partition_leader_epoch(),
        batch.timestamp_type(),
        batch.is_transactional(),
        batch.delete_horizon_ms(),
        batch.last_offset(),
        batch.next_offset(),
        batch.max_timestamp(),
        batch.producer_id(),
        batch.producer_epoch(),
        batch.records_bytes(),
    );
    // Once overflowed for lastOffsetDelta < 0 (fuzz/repro/last_sequence_overflow.bin); now
    // wrapping as Java's DefaultRecordBatch.incrementSequence.
    let _ = batch.last_sequence();

    // Patching a decoded batch.
    let mut patched = BytesMut::from(&batch.as_bytes()[..]);
    records::set_base_offset(&mut patched, 1 << 40).expect("set_base_offset on a batch");
    records::set_partition_leader_epoch(&mut patched, 9).expect("set_partition_leader_epoch");
    let p = RecordBatch::from_bytes(patched.clone().freeze()).expect("patched batch decodes");
    assert_eq!(p.base_offset(), 1 << 40);
    assert_eq!(p.partition_leader_epoch(), 9);
    assert_eq!(
        p.verify_crc().is_ok(),
        crc_ok,
        "base offset / leader epoch are outside the CRC"
    );
    records::set_producer_state(&mut patched, 5, 6, 7).expect("set_producer_state");
    records::set_max_timestamp(&mut patched, TimestampType::LogAppendTime, 99)
        .expect("set_max_timestamp");
    let p = RecordBatch::from_bytes(patched.freeze()).expect("patched batch decodes");
    assert!(p.verify_crc().is_ok(), "patching must rewrite the CRC");
    assert_eq!(
        (p.producer_id(), p.producer_epoch(), p.base_sequence()),
        (5, 6, 7)
    );
    assert_eq!(
        (p.timestamp_type(), p.max_timestamp()),
        (TimestampType::LogAppendTime, 99)
    );

    // The records, whatever the CRC said.
    let Ok(iter) = batch.records(MAX_DECOMPRESSED) else {
        return;
    };
    let count = batch.record_count();
    assert!(count >= 0);
    assert_eq!(iter.remaining_records(), count as usize);
    let base = batch.base_offset();
    let last_delta = batch.last_offset_delta() as i64;
    let mut yielded = 0i64;
    let mut prev_delta = -1i64;
    let mut failed = false;
    for r in iter {
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                failed = true;
                continue; // the iterator must stop by itself after an error
            }
        };
        assert!(!failed, "record after an error");
        yielded += 1;
        let delta = r.offset.wrapping_sub(base);
        assert!(
            delta > prev_delta && delta <= last_delta,
            "offset delta {delta}"
        );
        prev_delta = delta;
        if batch.timestamp_type() == TimestampType::LogAppendTime {
            assert_eq!(r.timestamp, batch.max_timestamp());
        }
        for h in &r.headers {
            let _ = (h.key.len(), h.value.as_ref().map(Bytes::len));
        }
        if batch.is_control() {
            if let Some(k) = r.key.as_deref() {
                let _ = ControlRecordType::parse_key(k);
            }
            let _ = EndTransactionMarker::decode(r.key.as_deref(), r.value.as_deref());
        }
    }
    assert!(
        yielded <= count as i64,
        "{yielded} records yielded, recordCount {count}"
    );
    if !failed {
        assert_eq!(
            yielded, count as i64,
            "iteration ended early without an error"
        );
    }
}
