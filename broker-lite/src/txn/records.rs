//! The records of `__transaction_state`, in Kafka's own formats (KIP-98): the
//! `TransactionLogKey` and `TransactionLogValue` coordinator records.
//!
//! Key: int16 record type 0 (`CoordinatorRecordType.TRANSACTION_LOG`), then the transactional
//! id as a classic string (`TransactionLogKey` v0). Value: int16 version, then
//! `TransactionLogValue` at that version. Kafka 4.0 writes version 1 (flexible) once
//! `transaction.version` 1+ is finalized, which is the default of a new 4.0 cluster; version 0
//! before. broker-lite writes version 1 and reads both. A null value is a tombstone (the id
//! expired). The partitions are null in Empty and grouped by topic otherwise, as Kafka writes
//! them. Version 1's tagged fields (`PreviousProducerId` 0, `NextProducerId` 1,
//! `ClientTransactionVersion` 2) are written only when they differ from their defaults (-1,
//! -1, 0): under transaction version 1 semantics broker-lite never sets them.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_wire::codec::{
    read_array_len, read_string, read_tagged_field, read_unsigned_varint, write_array_len,
    write_string, write_unsigned_varint,
};
use kafka_wire::DecodeError;

use super::metadata::TxnPartition;

/// The internal topic's name.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// `CoordinatorRecordType.TRANSACTION_LOG`: the key's record type.
const KEY_TYPE: i16 = 0;

/// A decoded `TransactionLogValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    /// Producer id.
    pub producer_id: i64,
    /// `PreviousProducerId` (v1 tag 0; -1 default).
    pub previous_producer_id: i64,
    /// `NextProducerId` (v1 tag 1; -1 default).
    pub next_producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// `TransactionStatus`: the state id.
    pub state: i8,
    /// Partitions (`None`: null, as written for Empty).
    pub partitions: Option<BTreeSet<TxnPartition>>,
    /// `TransactionLastUpdateTimestampMs`.
    pub last_update_timestamp: i64,
    /// `TransactionStartTimestampMs`.
    pub start_timestamp: i64,
    /// `ClientTransactionVersion` (v1 tag 2; 0 default).
    pub client_transaction_version: i16,
}

/// The key of `transactional_id`.
pub fn key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(KEY_TYPE);
    // Transactional ids come from requests, whose own int16 string limit applies.
    let _ = write_string(&mut b, transactional_id, false, "transactional id");
    b.freeze()
}

/// Decodes a key: `Ok(Some(id))` for a transaction log key, `Ok(None)` for another record
/// type (skipped, as Kafka does).
///
/// # Errors
/// [`DecodeError`] for a truncated key.
pub fn decode_key(mut buf: Bytes) -> Result<Option<String>, DecodeError> {
    if buf.remaining() < 2 {
        return Err(DecodeError::Truncated {
            what: "transaction log key type",
            needed: 2,
            remaining: buf.remaining(),
        });
    }
    if buf.get_i16() != KEY_TYPE {
        return Ok(None);
    }
    read_string(&mut buf, false, "transactional id").map(Some)
}

/// Encodes `v` as `TransactionLogValue` `version` (0 or 1; 1 is what broker-lite writes).
pub fn encode_value(v: &TxnLogValue, version: i16) -> Bytes {
    let flexible = version >= 1;
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(version);
    b.put_i64(v.producer_id);
    b.put_i16(v.producer_epoch);
    b.put_i32(v.timeout_ms);
    b.put_i8(v.state);
    match &v.partitions {
        None => {
            let _ = write_array_len(&mut b, None, flexible, "partitions");
        }
        Some(parts) => {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in parts {
                by_topic.entry(t.as_str()).or_default().push(*p);
            }
            let _ = write_array_len(&mut b, Some(by_topic.len()), flexible, "partitions");
            for (topic, ids) in by_topic {
                let _ = write_string(&mut b, topic, flexible, "topic");
                let _ = write_array_len(&mut b, Some(ids.len()), flexible, "partition ids");
                for id in ids {
                    b.put_i32(id);
                }
                if flexible {
                    write_unsigned_varint(&mut b, 0);
                }
            }
        }
    }
    b.put_i64(v.last_update_timestamp);
    b.put_i64(v.start_timestamp);
    if flexible {
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if v.previous_producer_id != -1 {
            tags.push((0, v.previous_producer_id.to_be_bytes().to_vec()));
        }
        if v.next_producer_id != -1 {
            tags.push((1, v.next_producer_id.to_be_bytes().to_vec()));
        }
        if v.client_transaction_version != 0 {
            tags.push((2, v.client_transaction_version.to_be_bytes().to_vec()));
        }
        write_unsigned_varint(&mut b, tags.len() as u32);
        for (tag, data) in tags {
            write_unsigned_varint(&mut b, tag);
            write_unsigned_varint(&mut b, data.len() as u32);
            b.put_slice(&data);
        }
    }
    b.freeze()
}

fn need(buf: &Bytes, n: usize, what: &'static str) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        return Err(DecodeError::Truncated {
            what,
            needed: n,
            remaining: buf.remaining(),
        });
    }
    Ok(())
}

fn skip_tagged_fields(buf: &mut Bytes) -> Result<(), DecodeError> {
    let n = read_unsigned_varint(buf, "tagged field count")?;
    for _ in 0..n {
        read_tagged_field(buf)?;
    }
    Ok(())
}

/// Decodes a `TransactionLogValue` of version 0 or 1.
///
/// # Errors
/// [`DecodeError`] for a truncated or malformed value, or an unknown version.
pub fn decode_value(mut buf: Bytes) -> Result<TxnLogValue, DecodeError> {
    need(&buf, 2, "transaction log value version")?;
    let version = buf.get_i16();
    if !(0..=1).contains(&version) {
        return Err(DecodeError::Invalid {
            what: "transaction log value version",
            reason: format!("unknown version {version}"),
        });
    }
    let flexible = version >= 1;
    need(&buf, 8 + 2 + 4 + 1, "transaction log value")?;
    let producer_id = buf.get_i64();
    let producer_epoch = buf.get_i16();
    let timeout_ms = buf.get_i32();
    let state = buf.get_i8();
    let partitions = match read_array_len(&mut buf, flexible, "partitions")? {
        None => None,
        Some(n) => {
            let mut set = BTreeSet::new();
            for _ in 0..n {
                let topic = read_string(&mut buf, flexible, "topic")?;
                let count = read_array_len(&mut buf, flexible, "partition ids")?.unwrap_or(0);
                need(&buf, count * 4, "partition ids")?;
                for _ in 0..count {
                    set.insert((topic.clone(), buf.get_i32()));
                }
                if flexible {
                    skip_tagged_fields(&mut buf)?;
                }
            }
            Some(set)
        }
    };
    need(&buf, 16, "transaction timestamps")?;
    let last_update_timestamp = buf.get_i64();
    let start_timestamp = buf.get_i64();
    let mut value = TxnLogValue {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_timestamp,
        start_timestamp,
        client_transaction_version: 0,
    };
    if flexible {
        let n = read_unsigned_varint(&mut buf, "tagged field count")?;
        for _ in 0..n {
            let (tag, mut data) = read_tagged_field(&mut buf)?;
            match tag {
                0 if data.len() == 8 => value.previous_producer_id = data.get_i64(),
                1 if data.len() == 8 => value.next_producer_id = data.get_i64(),
                2 if data.len() == 2 => value.client_transaction_version = data.get_i16(),
                _ => {}
            }
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(partitions: Option<BTreeSet<TxnPartition>>, state: i8) -> TxnLogValue {
        TxnLogValue {
            producer_id: 1000,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state,
            partitions,
            last_update_timestamp: 0x0102_0304_0506,
            start_timestamp: 0x0a0b,
            client_transaction_version: 0,
        }
    }

    #[test]
    fn key_bytes_are_kafkas() {
        // Type 0, then "tx" as an int16-length string.
        let k = key("tx");
        assert_eq!(&k[..], b"\x00\x00\x00\x02tx");
        assert_eq!(decode_key(k).unwrap(), Some("tx".to_string()));
        // A record of another coordinator type is skipped.
        assert_eq!(
            decode_key(Bytes::from_static(b"\x00\x01\x00\x00")).unwrap(),
            None
        );
        assert!(decode_key(Bytes::from_static(b"\x00")).is_err());
        assert!(decode_key(Bytes::from_static(b"\x00\x00\x00\x05ab")).is_err());
    }

    #[test]
    fn value_v1_bytes_follow_the_json_spec() {
        let parts: BTreeSet<TxnPartition> = [
            ("a".to_string(), 0),
            ("a".to_string(), 2),
            ("b".to_string(), 1),
        ]
        .into();
        let v = sample(Some(parts), 1);
        let bytes = encode_value(&v, 1);
        // Derived by hand from TransactionLogValue.json at version 1 (flexible): compact
        // arrays and strings (length + 1), a tagged-field count after each struct and at the
        // end, no tags since every tagged field has its default.
        let mut expected: Vec<u8> = vec![0, 1];
        expected.extend(1000i64.to_be_bytes());
        expected.extend(3i16.to_be_bytes());
        expected.extend(60_000i32.to_be_bytes());
        expected.push(1);
        expected.push(3); // two topics
        expected.extend([2, b'a', 3]); // "a", two ids
        expected.extend(0i32.to_be_bytes());
        expected.extend(2i32.to_be_bytes());
        expected.push(0);
        expected.extend([2, b'b', 2]);
        expected.extend(1i32.to_be_bytes());
        expected.push(0);
        expected.extend(0x0102_0304_0506i64.to_be_bytes());
        expected.extend(0x0a0bi64.to_be_bytes());
        expected.push(0);
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(decode_value(bytes).unwrap(), v);
    }

    #[test]
    fn value_v0_bytes_and_null_partitions() {
        let v = sample(None, 0);
        let bytes = encode_value(&v, 0);
        let mut expected: Vec<u8> = vec![0, 0];
        expected.extend(1000i64.to_be_bytes());
        expected.extend(3i16.to_be_bytes());
        expected.extend(60_000i32.to_be_bytes());
        expected.push(0);
        expected.extend((-1i32).to_be_bytes()); // null array
        expected.extend(0x0102_0304_0506i64.to_be_bytes());
        expected.extend(0x0a0bi64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(decode_value(bytes).unwrap(), v);
        // v1 null array: varint 0.
        let b1 = encode_value(&v, 1);
        assert_eq!(b1[17], 0);
        assert_eq!(decode_value(b1).unwrap(), v);
        let parts: BTreeSet<TxnPartition> = [("t".to_string(), 4)].into();
        let v = sample(Some(parts), 2);
        assert_eq!(decode_value(encode_value(&v, 0)).unwrap(), v);
    }

    #[test]
    fn tagged_fields_round_trip_and_bad_values_fail() {
        let mut v = sample(Some(BTreeSet::new()), 4);
        v.previous_producer_id = 5;
        v.next_producer_id = 6;
        v.client_transaction_version = 2;
        let b = encode_value(&v, 1);
        assert_eq!(decode_value(b.clone()).unwrap(), v);
        for cut in 0..b.len() {
            assert!(decode_value(b.slice(..cut)).is_err(), "cut at {cut}");
        }
        assert!(decode_value(Bytes::from_static(b"\x00\x02")).is_err());
    }
}
