//! Writes seed corpora for the fuzz targets under `<dir>` (default: `fuzz/corpus`):
//!
//! * `request_decode/`: for every API and every codec version, random requests
//!   (`RequestBody::random`) framed by `frame::encode_request`, size prefix stripped;
//! * `response_decode/`: random responses (`ResponseBody::random`) behind the 2-byte
//!   API/version selector the target reads;
//! * `record_batch_decode/`: valid record batches for every codec (alone, concatenated,
//!   with a truncated tail, transactional, control markers, LogAppendTime);
//! * `decompress/`: compressed samples behind the 1-byte codec selector (and raw snappy).
//!
//! Deterministic: the same seeds give the same files. Run with
//! `cargo run --release --manifest-path fuzz/Cargo.toml --example seed_corpus -- [dir]`.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_wire::frame::encode_request;
use kafka_wire::messages::RequestHeader;
use kafka_wire::records::{
    compress, end_transaction_marker_batch, BatchOptions, Compression, ControlRecordType,
    EndTransactionMarker, RecordBatchBuilder, TimestampType,
};
use kafka_wire::test_support::{Random, Rng};
use kafka_wire::{ApiKey, RequestBody, ResponseBody};
use kafka_wire_fuzz::selector_for;

/// Random messages per API and version.
const PER_VERSION: u64 = 3;

fn write(dir: &Path, name: &str, data: &[u8]) {
    fs::write(dir.join(name), data).unwrap_or_else(|e| panic!("writing {name}: {e}"));
}

fn requests(dir: &Path) -> usize {
    let mut n = 0;
    for &api in ApiKey::ALL {
        let r = api.codec_versions();
        for version in r.min..=r.max {
            for seed in 0..PER_VERSION {
                let mut rng =
                    Rng::new(seed << 32 | (api.key() as u16 as u64) << 16 | version as u64);
                let body = RequestBody::random(api, &mut rng, version);
                let mut header =
                    RequestHeader::random(&mut rng, api.request_header_version(version));
                header.request_api_key = api.key();
                header.request_api_version = version;
                let mut buf = BytesMut::new();
                match encode_request(&mut buf, &header, &body) {
                    Ok(()) => {
                        write(dir, &format!("{}-v{version}-{seed}", api.name()), &buf[4..]);
                        n += 1;
                    }
                    Err(e) => eprintln!("warning: {} v{version} seed {seed}: {e}", api.name()),
                }
            }
        }
    }
    n
}

fn responses(dir: &Path) -> usize {
    let mut n = 0;
    for &api in ApiKey::ALL {
        let r = api.codec_versions();
        for version in r.min..=r.max {
            for seed in 0..PER_VERSION {
                let mut rng =
                    Rng::new(!(seed << 32 | (api.key() as u16 as u64) << 16 | version as u64));
                let body = ResponseBody::random(api, &mut rng, version);
                let mut buf = BytesMut::from(&selector_for(api, version)[..]);
                match body.encode(&mut buf, version) {
                    Ok(()) => {
                        write(dir, &format!("{}-v{version}-{seed}", api.name()), &buf);
                        n += 1;
                    }
                    Err(e) => eprintln!("warning: {} v{version} seed {seed}: {e}", api.name()),
                }
            }
        }
    }
    n
}

fn batch(opts: BatchOptions, records: usize, rng: &mut Rng) -> Bytes {
    let mut b = RecordBatchBuilder::new(opts);
    let t0 = 1_700_000_000_000i64;
    for i in 0..records {
        let key = (!rng.one_in(4)).then(|| rng.bytes());
        let value = (!rng.one_in(8)).then(|| {
            // Repetitive values, so that compression has something to do.
            let v = rng.bytes();
            v.iter()
                .cycle()
                .take(v.len() * (1 + i % 5))
                .copied()
                .collect::<Vec<u8>>()
        });
        let hv = rng.bytes();
        let headers: Vec<(&str, Option<&[u8]>)> = match i % 3 {
            0 => vec![],
            1 => vec![("h", Some(&hv[..]))],
            _ => vec![("trace-id", Some(&hv[..])), ("null", None)],
        };
        b.append(
            t0 + (i as i64) * 7,
            key.as_deref(),
            value.as_deref(),
            &headers,
        )
        .expect("append");
    }
    b.finish().expect("finish")
}

fn record_batches(dir: &Path) -> usize {
    let mut n = 0;
    let mut rng = Rng::new(2026_11_21);
    let mut all = BytesMut::new();
    for codec in Compression::ALL {
        for (i, records) in [1usize, 3, 20].into_iter().enumerate() {
            let opts = BatchOptions {
                base_offset: 1000 * i as i64,
                compression: codec,
                producer_id: if i == 1 { 4242 } else { -1 },
                producer_epoch: if i == 1 { 3 } else { -1 },
                base_sequence: if i == 1 { 17 } else { -1 },
                is_transactional: i == 1,
                timestamp_type: if i == 2 {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                },
                partition_leader_epoch: i as i32,
                ..BatchOptions::default()
            };
            let b = batch(opts, records, &mut rng);
            write(dir, &format!("{codec}-{records}"), &b);
            all.extend_from_slice(&b);
            n += 1;
        }
    }
    for (i, control_type) in [ControlRecordType::Commit, ControlRecordType::Abort]
        .into_iter()
        .enumerate()
    {
        let marker = EndTransactionMarker {
            control_type,
            coordinator_epoch: 5,
        };
        let b = end_transaction_marker_batch(77, 1_700_000_000_000, 2, 4242, 3, marker)
            .expect("marker batch");
        write(dir, &format!("control-{i}"), &b);
        all.extend_from_slice(&b);
        n += 1;
    }
    // Several batches in one `records` field, and a fetch-style truncated tail.
    write(dir, "concatenated", &all);
    let two = batch(BatchOptions::default(), 5, &mut rng);
    let mut tail = BytesMut::from(&two[..]);
    tail.extend_from_slice(&two[..two.len() / 2]);
    write(dir, "partial-tail", &tail);
    n + 2
}

fn decompress_seeds(dir: &Path) -> usize {
    let mut n = 0;
    let samples: [Vec<u8>; 4] = [
        Vec::new(),
        b"hello kafka".to_vec(),
        (0..5000u32)
            .map(|i| (i % 251) as u8 ^ (i / 700) as u8)
            .collect(),
        (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x0f)
            .collect(),
    ];
    // The target's selector: 0 gzip, 1 snappy, 2 lz4, 3 zstd.
    let codecs = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (sel, codec) in codecs.into_iter().enumerate() {
        for (i, s) in samples.iter().enumerate() {
            let mut out = BytesMut::from(&[sel as u8][..]);
            compress(codec, s, None, &mut out).expect("compress");
            write(dir, &format!("{codec}-{i}"), &out);
            n += 1;
            if codec == Compression::Snappy && out.len() > 1 + 16 + 4 {
                // librdkafka-style raw snappy: the first xerial block, unframed.
                let len = i32::from_be_bytes([out[17], out[18], out[19], out[20]]) as usize;
                let mut raw = vec![sel as u8];
                raw.extend_from_slice(&out[21..21 + len]);
                write(dir, &format!("{codec}-raw-{i}"), &raw);
                n += 1;
            }
        }
    }
    n
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    type Gen = fn(&Path) -> usize;
    let gens: [(&str, Gen); 4] = [
        ("request_decode", requests),
        ("response_decode", responses),
        ("record_batch_decode", record_batches),
        ("decompress", decompress_seeds),
    ];
    for (target, gen) in gens {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let n = gen(&dir);
        println!("{}: {n} seeds", dir.display());
    }
}
