//! `kafka_wire::frame::decode_request` on arbitrary bytes (a whole request frame without its
//! size prefix: header + body).
//!
//! Properties, beyond "never panics":
//! * anything that decodes re-encodes (`encode_request` cannot fail on a decoded value: every
//!   field absent from the version keeps its default, nulls only decode where the version
//!   allows them, and lengths fit the prefixes they were read from);
//! * the re-encoded frame's size prefix is right, and it decodes to the same value
//!   (`decode ∘ encode` is the identity on decoded values; see
//!   `kafka_wire_fuzz::assert_round_trip_eq`: only NaN float64 fields are compared by `Debug`);
//! * encoding is a fixed point: re-encoding the second decode gives the same bytes.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_wire::frame::{decode_request, encode_request};
use kafka_wire_fuzz::assert_round_trip_eq;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(first) = decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    let api = first.api_key;
    let version = first.header.request_api_version;
    assert_eq!(first.body.api_key(), api);
    assert_eq!(first.header.request_api_key, api.key());

    let mut enc1 = BytesMut::new();
    if let Err(e) = encode_request(&mut enc1, &first.header, &first.body) {
        panic!("{api:?} v{version}: decoded request does not re-encode: {e}\n{first:#?}");
    }
    let size = i32::from_be_bytes([enc1[0], enc1[1], enc1[2], enc1[3]]);
    assert_eq!(
        size as usize,
        enc1.len() - 4,
        "{api:?} v{version}: size prefix"
    );
    let enc1 = enc1.freeze();

    let second = match decode_request(enc1.slice(4..)) {
        Ok(d) => d,
        Err(e) => panic!("{api:?} v{version}: re-encoded request does not decode: {e}\n{first:#?}"),
    };
    assert_round_trip_eq(&first, &second, &format!("{api:?} request v{version}"));

    let mut enc2 = BytesMut::new();
    encode_request(&mut enc2, &second.header, &second.body)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: second re-encode failed: {e}"));
    assert!(
        enc1 == enc2,
        "{api:?} v{version}: encoding is not a fixed point\n{enc1:?}\n{enc2:?}"
    );
});
