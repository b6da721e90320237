//! `kafka_wire::ResponseBody::decode` on arbitrary bytes. The first two bytes select the API
//! (index into `ApiKey::ALL`, modulo its length) and the version (within the API's
//! `codec_versions()`, modulo its span); the rest is the body. The same bytes are also fed to
//! `frame::decode_response` (header + body) for the response-header decoders.
//!
//! Properties, beyond "never panics": a decoded body re-encodes at the same version, the
//! re-encoding decodes completely (no trailing bytes) to an equal value, and encoding is a
//! fixed point.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_wire::codec::expect_end;
use kafka_wire::ResponseBody;
use kafka_wire_fuzz::{assert_round_trip_eq, select_api_version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, v, rest @ ..] = data else {
        return;
    };
    let Some((api, version)) = select_api_version(*a, *v) else {
        return;
    };
    let input = Bytes::copy_from_slice(rest);
    let _ = kafka_wire::frame::decode_response(input.clone(), api, version);

    let mut buf = input;
    let Ok(first) = ResponseBody::decode(api, version, &mut buf) else {
        return;
    };
    assert_eq!(first.api_key(), api);

    let mut enc1 = BytesMut::new();
    if let Err(e) = first.encode(&mut enc1, version) {
        panic!("{api:?} v{version}: decoded response does not re-encode: {e}\n{first:#?}");
    }
    let enc1 = enc1.freeze();
    let mut buf = enc1.clone();
    let second = match ResponseBody::decode(api, version, &mut buf) {
        Ok(d) => d,
        Err(e) => {
            panic!("{api:?} v{version}: re-encoded response does not decode: {e}\n{first:#?}")
        }
    };
    if let Err(e) = expect_end(&buf, api.name()) {
        panic!("{api:?} v{version}: re-encoded response: {e}\n{first:#?}");
    }
    assert_round_trip_eq(&first, &second, &format!("{api:?} response v{version}"));

    let mut enc2 = BytesMut::new();
    second
        .encode(&mut enc2, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: second re-encode failed: {e}"));
    assert!(
        enc1 == enc2,
        "{api:?} v{version}: encoding is not a fixed point\n{enc1:?}\n{enc2:?}"
    );
});
