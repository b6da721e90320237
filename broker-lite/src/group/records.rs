//! The records of `__consumer_offsets`, in Kafka's own formats (the `OffsetCommitKey`,
//! `OffsetCommitValue`, `GroupMetadataKey` and `GroupMetadataValue` data messages of Kafka's
//! group coordinator), and the partition of a group.
//!
//! A key starts with an int16 version that names the record type (0 and 1: offset commit, 2:
//! group metadata; others, such as KIP-848 consumer group records, are skipped on replay); a
//! value starts with its own int16 version. Written: keys as Kafka writes them, offset commits
//! as `OffsetCommitValue` v3 and group metadata as `GroupMetadataValue` v3 (what Kafka 4.0
//! writes). Read: every version, including the flexible v4 values. A null value is a
//! tombstone.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_wire::codec::{
    read_array_len, read_bytes, read_nullable_string, read_string, read_unknown_tagged_fields,
    write_bytes, write_nullable_string, write_string,
};
use kafka_wire::DecodeError;

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Java's `String.hashCode` (over UTF-16 code units).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of `group_id`: Kafka's
/// `Utils.abs(groupId.hashCode()) % partitionCount` (`Utils.abs(MIN_VALUE)` is 0).
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The offset.
    pub offset: i64,
    /// The leader epoch of the committed record (-1 unknown).
    pub leader_epoch: i32,
    /// Client metadata ("" when none).
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp: i64,
}

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// An offset commit (`OffsetCommitKey`).
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// Group metadata (`GroupMetadataKey`).
    Group {
        /// Group id.
        group: String,
    },
    /// A record type broker-lite does not use.
    Other(i16),
}

/// The part of `GroupMetadataValue` that broker-lite restores, plus the members for tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadata {
    /// Protocol type ("" for none).
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Selected protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the state last changed (v2+; -1 otherwise).
    pub current_state_timestamp: i64,
    /// Members.
    pub members: Vec<MemberMetadata>,
}

/// One member in `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` (v3+).
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout (v1+).
    pub rebalance_timeout: i32,
    /// Session timeout.
    pub session_timeout: i32,
    /// Metadata of the selected protocol.
    pub subscription: Bytes,
    /// Assignment.
    pub assignment: Bytes,
}

fn put_string(buf: &mut BytesMut, s: &str) {
    // Strings here come from requests, whose own length limits (int16) apply.
    let _ = write_string(buf, s, false, "string");
}

/// `OffsetCommitKey` (record version 1).
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    put_string(&mut b, group);
    put_string(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

/// `GroupMetadataKey` (record version 2).
pub fn group_key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(2);
    put_string(&mut b, group);
    b.freeze()
}

/// `OffsetCommitValue` v3.
pub fn offset_value(o: &OffsetAndMetadata) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    b.put_i64(o.offset);
    b.put_i32(o.leader_epoch);
    put_string(&mut b, &o.metadata);
    b.put_i64(o.commit_timestamp);
    b.freeze()
}

/// `GroupMetadataValue` v3.
pub fn group_value(g: &GroupMetadata) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    put_string(&mut b, &g.protocol_type);
    b.put_i32(g.generation);
    let _ = write_nullable_string(&mut b, g.protocol.as_deref(), false, "protocol");
    let _ = write_nullable_string(&mut b, g.leader.as_deref(), false, "leader");
    b.put_i64(g.current_state_timestamp);
    b.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_string(&mut b, &m.member_id);
        let _ = write_nullable_string(&mut b, m.group_instance_id.as_deref(), false, "instance");
        put_string(&mut b, &m.client_id);
        put_string(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout);
        b.put_i32(m.session_timeout);
        let _ = write_bytes(&mut b, &m.subscription, false, "subscription");
        let _ = write_bytes(&mut b, &m.assignment, false, "assignment");
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

fn get_i16(buf: &mut Bytes, what: &'static str) -> Result<i16, DecodeError> {
    need(buf, 2, what)?;
    Ok(buf.get_i16())
}

fn get_i32(buf: &mut Bytes, what: &'static str) -> Result<i32, DecodeError> {
    need(buf, 4, what)?;
    Ok(buf.get_i32())
}

fn get_i64(buf: &mut Bytes, what: &'static str) -> Result<i64, DecodeError> {
    need(buf, 8, what)?;
    Ok(buf.get_i64())
}

/// Decodes a record key.
///
/// # Errors
/// [`DecodeError`] for a truncated or malformed key.
pub fn decode_key(mut buf: Bytes) -> Result<RecordKey, DecodeError> {
    let version = get_i16(&mut buf, "key version")?;
    match version {
        0 | 1 => Ok(RecordKey::Offset {
            group: read_string(&mut buf, false, "group")?,
            topic: read_string(&mut buf, false, "topic")?,
            partition: get_i32(&mut buf, "partition")?,
        }),
        2 => Ok(RecordKey::Group {
            group: read_string(&mut buf, false, "group")?,
        }),
        other => Ok(RecordKey::Other(other)),
    }
}

/// Decodes an `OffsetCommitValue` of any version (0-4).
///
/// # Errors
/// [`DecodeError`] for a truncated or malformed value.
pub fn decode_offset_value(mut buf: Bytes) -> Result<OffsetAndMetadata, DecodeError> {
    let version = get_i16(&mut buf, "offset value version")?;
    let flexible = version >= 4;
    let offset = get_i64(&mut buf, "offset")?;
    let leader_epoch = if version >= 3 {
        get_i32(&mut buf, "leader epoch")?
    } else {
        -1
    };
    let metadata = read_string(&mut buf, flexible, "metadata")?;
    let commit_timestamp = get_i64(&mut buf, "commit timestamp")?;
    if version == 1 {
        get_i64(&mut buf, "expire timestamp")?;
    }
    if flexible {
        read_unknown_tagged_fields(&mut buf)?;
    }
    Ok(OffsetAndMetadata {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

/// Decodes a `GroupMetadataValue` of any version (0-4).
///
/// # Errors
/// [`DecodeError`] for a truncated or malformed value.
pub fn decode_group_value(mut buf: Bytes) -> Result<GroupMetadata, DecodeError> {
    let version = get_i16(&mut buf, "group value version")?;
    let flexible = version >= 4;
    let protocol_type = read_string(&mut buf, flexible, "protocol type")?;
    let generation = get_i32(&mut buf, "generation")?;
    let protocol = read_nullable_string(&mut buf, flexible, "protocol")?;
    let leader = read_nullable_string(&mut buf, flexible, "leader")?;
    let current_state_timestamp = if version >= 2 {
        get_i64(&mut buf, "current state timestamp")?
    } else {
        -1
    };
    let count = read_array_len(&mut buf, flexible, "members")?.unwrap_or(0);
    let mut members = Vec::new();
    for _ in 0..count {
        let member_id = read_string(&mut buf, flexible, "member id")?;
        let group_instance_id = if version >= 3 {
            read_nullable_string(&mut buf, flexible, "group instance id")?
        } else {
            None
        };
        let client_id = read_string(&mut buf, flexible, "client id")?;
        let client_host = read_string(&mut buf, flexible, "client host")?;
        let rebalance_timeout = if version >= 1 {
            get_i32(&mut buf, "rebalance timeout")?
        } else {
            -1
        };
        let session_timeout = get_i32(&mut buf, "session timeout")?;
        let subscription = read_bytes(&mut buf, flexible, "subscription")?;
        let assignment = read_bytes(&mut buf, flexible, "assignment")?;
        if flexible {
            read_unknown_tagged_fields(&mut buf)?;
        }
        members.push(MemberMetadata {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout,
            session_timeout,
            subscription,
            assignment,
        });
    }
    if flexible {
        read_unknown_tagged_fields(&mut buf)?;
    }
    Ok(GroupMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_and_partitions_match_kafka() {
        // Values printed by Java 21: s.hashCode() and Utils.abs(s.hashCode()) % 50.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(partition_for("hello", 50), 22);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(java_string_hash("test-consumer-group"), -1_793_216_381);
        assert_eq!(partition_for("test-consumer-group", 50), 31);
        // Integer.MIN_VALUE: Utils.abs gives 0.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Non-BMP characters hash as UTF-16 surrogate pairs.
        assert_eq!(java_string_hash("\u{1F600}"), 1_772_899);
        assert_eq!(partition_for("\u{1F600}", 50), 49);
    }

    #[test]
    fn keys_and_values_round_trip() {
        let k = offset_key("g", "t", 3);
        assert_eq!(&k[..], b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x03");
        assert_eq!(
            decode_key(k).unwrap(),
            RecordKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3
            }
        );
        assert_eq!(
            decode_key(group_key("g")).unwrap(),
            RecordKey::Group { group: "g".into() }
        );
        let o = OffsetAndMetadata {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp: 1234,
        };
        assert_eq!(decode_offset_value(offset_value(&o)).unwrap(), o);
        let g = GroupMetadata {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 99,
            members: vec![MemberMetadata {
                member_id: "m1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300_000,
                session_timeout: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group_value(group_value(&g)).unwrap(), g);
        assert!(decode_group_value(Bytes::from_static(b"\x00\x03\x00")).is_err());
    }

    #[test]
    fn old_and_flexible_offset_values_decode() {
        // v1: offset, metadata, commit timestamp, expire timestamp.
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i64(10);
        b.put_i16(0);
        b.put_i64(5);
        b.put_i64(6);
        let o = decode_offset_value(b.freeze()).unwrap();
        assert_eq!((o.offset, o.leader_epoch, o.commit_timestamp), (10, -1, 5));
        // v4: flexible (compact string "x", empty tagged fields).
        let mut b = BytesMut::new();
        b.put_i16(4);
        b.put_i64(11);
        b.put_i32(2);
        b.put_u8(2);
        b.put_u8(b'x');
        b.put_i64(7);
        b.put_u8(0);
        let o = decode_offset_value(b.freeze()).unwrap();
        assert_eq!(
            (o.offset, o.leader_epoch, o.metadata.as_str()),
            (11, 2, "x")
        );
    }
}
