//! `kafka_wire::records::decompress` on arbitrary bytes. The first byte selects the codec
//! (modulo 4: gzip, snappy, lz4, zstd); the rest is the compressed input. The output limit is
//! 1 MiB.
//!
//! Properties, beyond "never panics" (and never allocating without bound: run with
//! `-malloc_limit_mb`): the output is at most the limit and its buffer never grew past
//! limit + 1 bytes; whatever decompresses compresses again, and that decompresses back to the
//! same bytes.
#![no_main]

use bytes::BytesMut;
use kafka_wire::records::{compress, decompress, Compression};
use kafka_wire_fuzz::MAX_DECOMPRESSED;
use libfuzzer_sys::fuzz_target;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fuzz_target!(|data: &[u8]| {
    let [sel, input @ ..] = data else {
        return;
    };
    let codec = CODECS[*sel as usize % CODECS.len()];
    let Ok(out) = decompress(codec, input, MAX_DECOMPRESSED) else {
        return;
    };
    assert!(
        out.len() <= MAX_DECOMPRESSED,
        "{codec}: {} bytes out",
        out.len()
    );
    assert!(
        out.capacity() <= MAX_DECOMPRESSED + 1,
        "{codec}: output buffer grew to {}",
        out.capacity()
    );

    let mut again = BytesMut::new();
    compress(codec, &out, None, &mut again)
        .unwrap_or_else(|e| panic!("{codec}: cannot compress {} bytes: {e}", out.len()));
    match decompress(codec, &again, MAX_DECOMPRESSED) {
        Ok(back) => assert!(back == out, "{codec}: compress/decompress changed the data"),
        Err(e) => panic!(
            "{codec}: own output of {} bytes does not decompress: {e}",
            out.len()
        ),
    }
});
