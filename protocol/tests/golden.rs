//! Golden bytes from real third-party clients (see `tests/golden/README.md`): every frame
//! librdkafka and kafka-python sent, and every spec-conformant frame they received, decodes
//! and re-encodes byte for byte; the frames the librdkafka mock cluster got wrong are
//! rejected with the error that names the problem; and the record batches those clients
//! wrote decode to exactly the records they produced, with valid CRCs.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_wire::frame::{decode_request, decode_response, encode_request, encode_response};
use kafka_wire::records::decode_all;
use kafka_wire::{ApiKey, DecodeError};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join("MANIFEST.json")).expect("MANIFEST.json");
    serde_json::from_str::<Value>(&text)
        .expect("valid JSON")
        .as_array()
        .expect("a list")
        .clone()
}

fn frame(file: &str) -> Bytes {
    Bytes::from(std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}")))
}

#[test]
fn requests_decode_and_reencode_byte_for_byte() {
    let mut checked = 0;
    let mut clients = std::collections::BTreeSet::new();
    let mut apis = std::collections::BTreeSet::new();
    for e in manifest().iter().filter(|e| e["direction"] == "request") {
        let file = e["file"].as_str().unwrap();
        let bytes = frame(file);
        let decoded = decode_request(bytes.clone()).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(
            decoded.api_key.key() as i64,
            e["api_key"].as_i64().unwrap(),
            "{file}"
        );
        assert_eq!(
            decoded.header.request_api_version as i64,
            e["api_version"].as_i64().unwrap()
        );
        let mut out = BytesMut::new();
        encode_request(&mut out, &decoded.header, &decoded.body)
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(&out[4..], &bytes[..], "{file}: re-encoding differs");
        checked += 1;
        clients.insert(
            e["client"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string(),
        );
        apis.insert((
            decoded.api_key,
            decoded.header.request_api_version,
            decoded
                .api_key
                .is_flexible(decoded.header.request_api_version),
        ));
    }
    assert!(checked >= 100, "only {checked} request vectors");
    assert!(clients.contains("librdkafka") && clients.contains("kafka-python"));
    assert!(
        apis.iter().any(|a| a.2) && apis.iter().any(|a| !a.2),
        "flexible and non-flexible versions"
    );
}

#[test]
fn responses_decode_and_reencode_byte_for_byte() {
    let mut checked = 0;
    for e in manifest().iter().filter(|e| e["direction"] == "response") {
        let file = e["file"].as_str().unwrap();
        let api = ApiKey::from_i16(e["api_key"].as_i64().unwrap() as i16).unwrap();
        let version = e["api_version"].as_i64().unwrap() as i16;
        let bytes = frame(file);
        let result = decode_response(bytes.clone(), api, version);
        if e["spec_conformant"] != true {
            // The mock cluster's known protocol bugs (documented per entry): we must not
            // accept them silently.
            let err = result.expect_err(file);
            let trailing = e["trailing_bytes"].as_i64().unwrap_or(0);
            if trailing > 0 && e["decodes_per_spec"] == false && api != ApiKey::ApiVersions {
                assert!(
                    matches!(err, DecodeError::TrailingBytes { .. }),
                    "{file}: {err}"
                );
            }
            continue;
        }
        let (header, body) = result.unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(
            header.correlation_id as i64,
            e["correlation_id"].as_i64().unwrap()
        );
        let mut out = BytesMut::new();
        encode_response(&mut out, header.correlation_id, version, &body).unwrap();
        assert_eq!(&out[4..], &bytes[..], "{file}: re-encoding differs");
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} response vectors");
}

fn expected_bytes(v: &Value) -> Option<Vec<u8>> {
    if v.is_null() {
        return None;
    }
    if let Some(s) = v.get("utf8").and_then(Value::as_str) {
        return Some(s.as_bytes().to_vec());
    }
    let hex = v.get("hex").and_then(Value::as_str).expect("utf8 or hex");
    Some(
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
    )
}

#[test]
fn client_record_batches_decode_to_the_produced_records() {
    let text = std::fs::read_to_string(dir().join("batches/EXPECTED.json")).unwrap();
    let expected: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let mut codecs = std::collections::BTreeSet::new();
    for (file, exp) in &expected {
        let bytes = Bytes::from(std::fs::read(dir().join("batches").join(file)).unwrap());
        let batches = decode_all(bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = exp["batches"].as_array().unwrap();
        assert_eq!(batches.len(), want.len(), "{file}");
        for (b, w) in batches.iter().zip(want) {
            b.verify_crc().unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(b.crc() as u64, w["crc"].as_u64().unwrap());
            assert_eq!(b.producer_id(), w["producer_id"].as_i64().unwrap());
            assert_eq!(
                b.is_transactional(),
                w["is_transactional"].as_bool().unwrap()
            );
            assert_eq!(
                b.last_offset_delta() as i64,
                w["last_offset_delta"].as_i64().unwrap()
            );
            codecs.insert(format!("{:?}", b.compression().unwrap()));
            let base_ts = w["base_timestamp"].as_i64().unwrap();
            let records: Vec<_> = b.records(1 << 20).unwrap().map(|r| r.unwrap()).collect();
            let want_records = w["records"].as_array().unwrap();
            assert_eq!(records.len(), want_records.len(), "{file}");
            for (r, wr) in records.iter().zip(want_records) {
                assert_eq!(
                    r.offset - b.base_offset(),
                    wr["offset_delta"].as_i64().unwrap()
                );
                assert_eq!(
                    r.timestamp - base_ts,
                    wr["timestamp_delta"].as_i64().unwrap()
                );
                assert_eq!(
                    r.key.as_deref().map(<[u8]>::to_vec),
                    expected_bytes(&wr["key"]),
                    "{file} key"
                );
                assert_eq!(
                    r.value.as_deref().map(<[u8]>::to_vec),
                    expected_bytes(&wr["value"]),
                    "{file} value"
                );
                let wh = wr["headers"].as_array().unwrap();
                assert_eq!(r.headers.len(), wh.len());
                for (h, w) in r.headers.iter().zip(wh) {
                    assert_eq!(h.key, w["key"].as_str().unwrap());
                    assert_eq!(
                        h.value.as_deref().map(<[u8]>::to_vec),
                        expected_bytes(&w["value"])
                    );
                }
            }
        }
    }
    for c in ["None", "Gzip", "Snappy", "Lz4", "Zstd"] {
        assert!(codecs.contains(c), "no {c} batch among the golden vectors");
    }
}
