//! Round-trip property tests: for every message in Kafka's specs and every version this code
//! supports, `decode(encode(x)) == x` for random `x` valid at that version, and re-encoding
//! the decoded value reproduces the same bytes.

use bytes::{Bytes, BytesMut};
use kafka_wire::messages::*;
use kafka_wire::test_support::{Random, Rng};
use kafka_wire::{ApiKey, Decodable, Encodable, Message, RequestBody, ResponseBody};
use proptest::prelude::*;

fn check<T: Message + Random>(seed: u64) {
    let mut rng = Rng::new(seed);
    for version in T::VERSIONS.min..=T::VERSIONS.max {
        let x = T::random(&mut rng, version);
        let mut buf = BytesMut::new();
        x.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("{} v{version}: encode failed: {e}\n{x:?}", T::NAME));
        let bytes = buf.freeze();
        let mut rd = bytes.clone();
        let y = T::decode(&mut rd, version)
            .unwrap_or_else(|e| panic!("{} v{version}: decode failed: {e}\n{x:?}", T::NAME));
        assert!(
            rd.is_empty(),
            "{} v{version}: {} bytes left over",
            T::NAME,
            rd.len()
        );
        assert_eq!(x, y, "{} v{version}", T::NAME);
        let mut again = BytesMut::new();
        y.encode(&mut again, version).unwrap();
        assert_eq!(
            bytes,
            again.freeze(),
            "{} v{version}: re-encoding differs",
            T::NAME
        );
    }
}

fn check_bodies(seed: u64) {
    let mut rng = Rng::new(seed);
    for &api in ApiKey::ALL {
        let range = api.codec_versions();
        for version in range.min..=range.max {
            let req = RequestBody::random(api, &mut rng, version);
            assert_eq!(req.api_key(), api);
            let mut buf = BytesMut::new();
            req.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("{api:?} v{version} request: {e}"));
            let mut rd = buf.freeze();
            let back = RequestBody::decode(api, version, &mut rd)
                .unwrap_or_else(|e| panic!("{api:?} v{version} request: {e}"));
            assert!(rd.is_empty());
            assert_eq!(req, back, "{api:?} v{version} request");

            let resp = ResponseBody::random(api, &mut rng, version);
            let mut buf = BytesMut::new();
            resp.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("{api:?} v{version} response: {e}"));
            let mut rd = buf.freeze();
            let back = ResponseBody::decode(api, version, &mut rd)
                .unwrap_or_else(|e| panic!("{api:?} v{version} response: {e}"));
            assert!(rd.is_empty());
            assert_eq!(resp, back, "{api:?} v{version} response");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_request_and_response_round_trips(seed in any::<u64>()) {
        check_bodies(seed);
    }

    #[test]
    fn headers_and_data_messages_round_trip(seed in any::<u64>()) {
        check::<RequestHeader>(seed);
        check::<ResponseHeader>(seed);
        check::<ConsumerProtocolSubscription>(seed);
        check::<ConsumerProtocolAssignment>(seed);
        check::<DefaultPrincipalData>(seed);
        check::<LeaderChangeMessage>(seed);
        check::<KRaftVersionRecord>(seed);
        check::<VotersRecord>(seed);
        check::<SnapshotHeaderRecord>(seed);
        check::<SnapshotFooterRecord>(seed);
    }

    /// Every prefix of a valid encoding fails cleanly (never panics), and so does random junk.
    #[test]
    fn truncated_and_junk_input_never_panics(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        for &api in ApiKey::ALL {
            let range = api.codec_versions();
            let version = range.min + (rng.next_u64() % (range.max - range.min + 1) as u64) as i16;
            let body = RequestBody::random(api, &mut rng, version);
            let mut buf = BytesMut::new();
            body.encode(&mut buf, version).unwrap();
            let full = buf.freeze();
            for cut in 0..full.len() {
                let mut rd = full.slice(..cut);
                // A shorter input may still decode when trailing fields happen to be absent,
                // but it must never panic.
                let _ = RequestBody::decode(api, version, &mut rd);
            }
            let junk: Bytes = (0..(rng.next_u64() % 64)).map(|_| rng.next_u64() as u8).collect::<Vec<_>>().into();
            let _ = RequestBody::decode(api, version, &mut junk.clone());
            let _ = ResponseBody::decode(api, version, &mut junk.clone());
        }
    }
}

#[test]
fn unsupported_versions_are_errors() {
    let mut buf = BytesMut::new();
    let err = ProduceRequest::default().encode(&mut buf, 99).unwrap_err();
    assert!(matches!(
        err,
        kafka_wire::EncodeError::UnsupportedVersion { .. }
    ));
    let err = ProduceRequest::decode(&mut Bytes::new(), -1).unwrap_err();
    assert!(matches!(
        err,
        kafka_wire::DecodeError::UnsupportedVersion { .. }
    ));
}

#[test]
fn non_ignorable_field_in_old_version_is_refused() {
    // CreateTopics validateOnly (v1+) would change the meaning of the request if dropped.
    let req = CreateTopicsRequest {
        validate_only: true,
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    assert!(matches!(
        req.encode(&mut buf, 0),
        Err(kafka_wire::EncodeError::FieldNotSupported { .. })
    ));
    assert!(req.encode(&mut buf, 1).is_ok());
}

#[test]
fn null_in_non_nullable_version_is_refused() {
    // MetadataRequest.Topics is nullable only from v1: null ("all topics") cannot be written
    // at v0, where an empty array means all topics instead.
    let req = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    assert!(matches!(
        req.encode(&mut buf, 0),
        Err(kafka_wire::EncodeError::NullNotAllowed { .. })
    ));
    let mut buf = BytesMut::new();
    req.encode(&mut buf, 1).unwrap();
    // v1: a null array (-1), then nothing else (AllowAutoTopicCreation starts at v4).
    assert_eq!(&buf[..], &[0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn known_bytes_metadata_request_v1() {
    // MetadataRequest v1 for topics ["a"]: int32 count 1, int16 len 1, 'a'.
    let req = MetadataRequest {
        topics: Some(vec![
            kafka_wire::messages::metadata_request::MetadataRequestTopic {
                name: Some("a".into()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    req.encode(&mut buf, 1).unwrap();
    assert_eq!(&buf[..], &[0, 0, 0, 1, 0, 1, b'a']);
    // v9 (flexible): compact array (2), topic id (16 zero bytes) in v10+ only, compact
    // nullable string (2, 'a'), tagged fields (0), then allow_auto_topic_creation (1) and
    // include_topic_authorized_operations (0) and the top-level tagged fields.
    let mut buf = BytesMut::new();
    req.encode(&mut buf, 9).unwrap();
    assert_eq!(&buf[..], &[2, 2, b'a', 0, 1, 0, 0, 0]);
}

#[test]
fn unknown_tagged_fields_in_any_order_round_trip() {
    // Found by fuzzing: tags 9 then 3 on the wire. Decoding keeps them sorted, so that the
    // re-encoding (which Kafka requires to be in ascending tag order) decodes to the same value.
    let wire: &[u8] = &[0, 0, 0, 7, 2, 9, 1, b'x', 3, 1, b'y'];
    let h = ResponseHeader::decode(&mut Bytes::from_static(wire), 1).unwrap();
    assert_eq!(
        h.unknown_tagged_fields
            .iter()
            .map(|f| f.tag)
            .collect::<Vec<_>>(),
        vec![3, 9]
    );
    let mut buf = BytesMut::new();
    h.encode(&mut buf, 1).unwrap();
    assert_eq!(ResponseHeader::decode(&mut buf.freeze(), 1).unwrap(), h);
}
