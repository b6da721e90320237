//! The consumer group protocol's member metadata, framed as the Java client frames it
//! (`ConsumerProtocol`): an int16 version followed by a `ConsumerProtocolSubscription`
//! (JoinGroup member metadata) or `ConsumerProtocolAssignment` (SyncGroup member
//! assignment). Every client in a mixed group (Java, librdkafka, ours) must agree on these
//! bytes.
//!
//! Forward compatibility follows Java: data written with a version newer than we know is read
//! with the newest version we know, and bytes after the known fields are ignored (newer
//! versions only append fields).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::Decodable;
use crate::error::{DecodeError, EncodeError};
use crate::message::Message;
use crate::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};

fn read_version<M: Message>(buf: &mut Bytes) -> Result<i16, DecodeError> {
    if buf.remaining() < 2 {
        return Err(DecodeError::Truncated {
            what: "consumer protocol version",
            needed: 2,
            remaining: buf.remaining(),
        });
    }
    let version = buf.get_i16();
    if version < M::VERSIONS.min {
        return Err(DecodeError::UnsupportedVersion {
            what: M::NAME,
            version,
        });
    }
    Ok(version.min(M::VERSIONS.max))
}

fn encode<M: Message>(value: &M, version: i16) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    value.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Serializes a subscription (JoinGroup `metadata`) at `version`.
///
/// # Errors
/// [`EncodeError`] when `subscription` uses fields `version` lacks (e.g. owned partitions
/// before v1) or the version is unknown.
pub fn encode_subscription(
    subscription: &ConsumerProtocolSubscription,
    version: i16,
) -> Result<Bytes, EncodeError> {
    encode(subscription, version)
}

/// Parses a subscription; returns the version it was written with and its content.
///
/// # Errors
/// [`DecodeError`] on truncated or malformed metadata, or a version below 0.
pub fn decode_subscription(
    mut metadata: Bytes,
) -> Result<(i16, ConsumerProtocolSubscription), DecodeError> {
    let version = read_version::<ConsumerProtocolSubscription>(&mut metadata)?;
    Ok((
        version,
        ConsumerProtocolSubscription::decode(&mut metadata, version)?,
    ))
}

/// Serializes an assignment (SyncGroup `assignment`) at `version`.
///
/// # Errors
/// [`EncodeError`] when the version is unknown.
pub fn encode_assignment(
    assignment: &ConsumerProtocolAssignment,
    version: i16,
) -> Result<Bytes, EncodeError> {
    encode(assignment, version)
}

/// Parses an assignment; returns the version it was written with and its content. An empty
/// buffer is an empty assignment, as in Java (a member that got nothing).
///
/// # Errors
/// [`DecodeError`] on truncated or malformed data, or a version below 0.
pub fn decode_assignment(
    mut data: Bytes,
) -> Result<(i16, ConsumerProtocolAssignment), DecodeError> {
    if data.is_empty() {
        return Ok((0, ConsumerProtocolAssignment::default()));
    }
    let version = read_version::<ConsumerProtocolAssignment>(&mut data)?;
    Ok((
        version,
        ConsumerProtocolAssignment::decode(&mut data, version)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::consumer_protocol_subscription::TopicPartition;

    #[test]
    fn subscription_v0_bytes_match_java() {
        // Java: ConsumerProtocol.serializeSubscription(new Subscription(["t"]), 0)
        // = version 0, topics [ "t" ], user data null.
        let sub = ConsumerProtocolSubscription {
            topics: vec!["t".into()],
            user_data: None,
            ..Default::default()
        };
        let bytes = encode_subscription(&sub, 0).unwrap();
        assert_eq!(
            &bytes[..],
            &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(decode_subscription(bytes).unwrap(), (0, sub));
    }

    #[test]
    fn newer_versions_are_read_with_the_newest_known_and_extra_bytes_ignored() {
        let sub = ConsumerProtocolSubscription {
            topics: vec!["a".into(), "b".into()],
            owned_partitions: vec![TopicPartition {
                topic: "a".into(),
                partitions: vec![0, 2],
            }],
            generation_id: 7,
            rack_id: Some("r1".into()),
            ..Default::default()
        };
        let mut bytes = BytesMut::from(&encode_subscription(&sub, 3).unwrap()[..]);
        bytes[0..2].copy_from_slice(&9i16.to_be_bytes());
        bytes.put_slice(b"future fields");
        let (version, back) = decode_subscription(bytes.freeze()).unwrap();
        assert_eq!((version, back), (3, sub));
        assert!(decode_subscription(Bytes::from_static(&[0xff, 0xff])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0])).is_err());
    }

    #[test]
    fn empty_assignment_is_no_partitions() {
        assert_eq!(
            decode_assignment(Bytes::new()).unwrap().1,
            ConsumerProtocolAssignment::default()
        );
        let a = ConsumerProtocolAssignment::default();
        let bytes = encode_assignment(&a, 1).unwrap();
        assert_eq!(decode_assignment(bytes).unwrap(), (1, a));
    }
}
