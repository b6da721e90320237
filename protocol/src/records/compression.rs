//! Record batch compression codecs (attribute bits 0-2 of a record batch).
//!
//! The wire formats are the ones the Java client produces and accepts:
//!
//! * **gzip**: a standard gzip stream (RFC 1952). Decoding accepts concatenated members, as
//!   Java's `GZIPInputStream` does.
//! * **snappy**: encoded with the *xerial* `snappy-java` stream framing the Java client uses
//!   (`\x82SNAPPY\0`, version 1, compatible version 1, then `[i32 BE length][raw snappy block]`
//!   per 32 KiB of input). Decoding accepts both that framing (including concatenated
//!   streams) and a single raw snappy block, which is what librdkafka writes.
//! * **lz4**: the LZ4 *frame* format (KIP-57), written with independent 64 KiB blocks and no
//!   checksums, like Kafka's `KafkaLZ4BlockOutputStream`. Any valid frame is decoded.
//! * **zstd**: standard zstd frames (KIP-110); concatenated frames are decoded.
//!
//! Decompression treats its input as hostile. The output is capped by a `max_output` limit:
//! exceeding it is a [`DecodeError::Decompression`] and the output buffer never grows beyond
//! the limit (plus one byte used to detect the overflow). Malformed input is an error, never a
//! panic.

use std::io::{Read, Write};

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError};

/// The compression codec of a record batch: bits 0-2 of the batch attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Compression {
    /// Records are stored as is.
    #[default]
    None = 0,
    /// gzip (deflate).
    Gzip = 1,
    /// Snappy.
    Snappy = 2,
    /// LZ4 (frame format).
    Lz4 = 3,
    /// Zstandard (KIP-110).
    Zstd = 4,
}

/// Mask of the compression codec in the batch attributes.
pub const COMPRESSION_CODEC_MASK: i16 = 0x07;

impl Compression {
    /// Every codec, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec with wire id `id`, or `None` if Kafka defines no such codec.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The codec's wire id (0-4).
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The codec stored in bits 0-2 of record batch `attributes`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for the unassigned ids 5-7.
    pub fn from_attributes(attributes: i16) -> Result<Self, DecodeError> {
        let id = (attributes & COMPRESSION_CODEC_MASK) as u8;
        Self::from_id(id).ok_or_else(|| DecodeError::Invalid {
            what: "record batch compression codec",
            reason: format!("unknown codec id {id}"),
        })
    }

    /// The codec's bits, ready to be OR-ed into record batch attributes.
    pub fn to_attributes(self) -> i16 {
        self as i16
    }

    /// The codec's name as Kafka's `compression.type` configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses a `compression.type` name (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default gzip level (Java's `Deflater.DEFAULT_COMPRESSION`, i.e. 6).
pub const GZIP_DEFAULT_LEVEL: i32 = 6;
/// Default zstd level (Kafka's `compression.zstd.level` default).
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// Magic header of the xerial `snappy-java` stream framing.
pub const XERIAL_SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Length of the full xerial header: magic, version (i32), compatible version (i32).
const XERIAL_HEADER_LEN: usize = 16;
/// Input block size of `snappy-java`'s `SnappyOutputStream` (used by the Java client).
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// Compresses `input` with `codec`, appending the result to `out`.
///
/// `level` follows KIP-390: gzip accepts 0-9 (or -1 for the default), zstd accepts its own
/// range (negative levels included); snappy and lz4 ignore it (the lz4 encoder has a single
/// speed). With [`Compression::None`] the input is copied as is.
///
/// # Errors
/// [`EncodeError::Compression`] for an out-of-range level or an encoder failure.
pub fn compress(
    codec: Compression,
    input: &[u8],
    level: Option<i32>,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let err = |reason: String| EncodeError::Compression {
        codec: codec.name(),
        reason,
    };
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => {
            let level = match level {
                None | Some(-1) => GZIP_DEFAULT_LEVEL,
                Some(l @ 0..=9) => l,
                Some(l) => return Err(err(format!("gzip level {l} is outside 0..=9"))),
            };
            let mut enc = flate2::write::GzEncoder::new(
                BufMut::writer(&mut *out),
                flate2::Compression::new(level as u32),
            );
            enc.write_all(input).map_err(|e| err(e.to_string()))?;
            enc.finish().map_err(|e| err(e.to_string()))?;
            Ok(())
        }
        Compression::Snappy => {
            out.reserve(XERIAL_HEADER_LEN + snap::raw::max_compress_len(input.len()));
            out.put_slice(&XERIAL_SNAPPY_MAGIC);
            out.put_i32(1); // version
            out.put_i32(1); // minimum compatible version
            let mut enc = snap::raw::Encoder::new();
            for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
                let len_at = out.len();
                out.put_i32(0);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
                let n = enc
                    .compress(chunk, &mut out[start..])
                    .map_err(|e| err(e.to_string()))?;
                out.truncate(start + n);
                let n = i32::try_from(n).map_err(|_| err("snappy block too large".into()))?;
                out[len_at..start].copy_from_slice(&n.to_be_bytes());
            }
            Ok(())
        }
        Compression::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false);
            let mut enc = FrameEncoder::with_frame_info(info, BufMut::writer(&mut *out));
            enc.write_all(input).map_err(|e| err(e.to_string()))?;
            enc.finish().map_err(|e| err(e.to_string()))?;
            Ok(())
        }
        Compression::Zstd => {
            let level = level.unwrap_or(ZSTD_DEFAULT_LEVEL);
            if !zstd::compression_level_range().contains(&level) {
                return Err(err(format!("zstd level {level} is out of range")));
            }
            let mut enc = zstd::stream::write::Encoder::new(BufMut::writer(&mut *out), level)
                .map_err(|e| err(e.to_string()))?;
            // Lets the decoder size its buffers from the frame header.
            enc.set_pledged_src_size(Some(input.len() as u64))
                .map_err(|e| err(e.to_string()))?;
            enc.include_contentsize(true)
                .map_err(|e| err(e.to_string()))?;
            enc.write_all(input).map_err(|e| err(e.to_string()))?;
            enc.finish().map_err(|e| err(e.to_string()))?;
            Ok(())
        }
    }
}

/// Decompresses `input` (the records section of a batch compressed with `codec`), returning
/// at most `max_output` bytes.
///
/// With [`Compression::None`] the input is copied (subject to the same limit).
///
/// # Errors
/// [`DecodeError::Decompression`] when the input is malformed or its decompressed size
/// exceeds `max_output`.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_output: usize,
) -> Result<Vec<u8>, DecodeError> {
    let name = codec.name();
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(too_large(name, max_output));
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_capped(
            flate2::read::MultiGzDecoder::new(input),
            name,
            input.len(),
            max_output,
        ),
        Compression::Snappy => decompress_snappy(input, max_output),
        Compression::Lz4 => read_capped(
            lz4_flex::frame::FrameDecoder::new(input),
            name,
            input.len(),
            max_output,
        ),
        Compression::Zstd => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| decompression_error(name, e.to_string()))?;
            // Bound zstd's internal window buffer: large enough for every non-"ultra" level
            // (window log <= 23) and for any frame whose content fits in `max_output`.
            let window_log = ceil_log2(max_output).clamp(23, 27);
            dec.window_log_max(window_log)
                .map_err(|e| decompression_error(name, e.to_string()))?;
            read_capped(dec, name, input.len(), max_output)
        }
    }
}

fn decompression_error(codec: &'static str, reason: String) -> DecodeError {
    DecodeError::Decompression { codec, reason }
}

fn too_large(codec: &'static str, max_output: usize) -> DecodeError {
    decompression_error(
        codec,
        format!("decompressed size exceeds the limit of {max_output} bytes"),
    )
}

fn ceil_log2(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

/// Reads `reader` to its end into a `Vec` that never grows beyond `max_output + 1` bytes.
///
/// Growth is done here (doubling, capped at the limit) and every read is bounded by the
/// spare capacity through `Read::take`, so `read_to_end` never reallocates on its own.
fn read_capped<R: Read>(
    mut reader: R,
    codec: &'static str,
    input_len: usize,
    max_output: usize,
) -> Result<Vec<u8>, DecodeError> {
    let limit = max_output.saturating_add(1);
    let initial = input_len.saturating_mul(4).clamp(4096, 1 << 20).min(limit);
    let mut out: Vec<u8> = Vec::with_capacity(initial);
    loop {
        let room = out.capacity() - out.len();
        if room == 0 {
            if out.len() >= limit {
                break;
            }
            let grow = out.capacity().max(4096).min(limit - out.len());
            out.reserve_exact(grow);
            continue;
        }
        let n = (&mut reader)
            .take(room as u64)
            .read_to_end(&mut out)
            .map_err(|e| decompression_error(codec, e.to_string()))?;
        if n < room {
            break; // end of stream
        }
    }
    if out.len() > max_output {
        return Err(too_large(codec, max_output));
    }
    Ok(out)
}

fn read_be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Splits xerial-framed snappy into its raw blocks.
fn xerial_blocks(input: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let err = |reason: &str| decompression_error("snappy", reason.to_owned());
    let mut blocks = Vec::new();
    let mut rest = input;
    loop {
        // A (possibly concatenated) stream header.
        if rest.len() < XERIAL_HEADER_LEN {
            return Err(err("truncated xerial snappy header"));
        }
        let compatible = read_be_i32(&rest[12..16]);
        if compatible > 1 {
            return Err(decompression_error(
                "snappy",
                format!("unsupported xerial snappy compatible version {compatible}"),
            ));
        }
        rest = &rest[XERIAL_HEADER_LEN..];
        loop {
            if rest.is_empty() {
                return Ok(blocks);
            }
            if rest.len() < 4 {
                return Err(err("truncated xerial snappy block length"));
            }
            if rest.starts_with(&XERIAL_SNAPPY_MAGIC) {
                break; // another stream follows
            }
            let len = read_be_i32(&rest[..4]);
            let len =
                usize::try_from(len).map_err(|_| err("negative xerial snappy block length"))?;
            rest = &rest[4..];
            if len > rest.len() {
                return Err(err("truncated xerial snappy block"));
            }
            blocks.push(&rest[..len]);
            rest = &rest[len..];
        }
    }
}

fn decompress_snappy(input: &[u8], max_output: usize) -> Result<Vec<u8>, DecodeError> {
    let err = |e: snap::Error| decompression_error("snappy", e.to_string());
    let blocks = if input.starts_with(&XERIAL_SNAPPY_MAGIC) {
        xerial_blocks(input)?
    } else {
        vec![input]
    };
    // Sum the declared sizes first so the output is allocated exactly once.
    let mut total: usize = 0;
    for b in &blocks {
        total = total.saturating_add(snap::raw::decompress_len(b).map_err(err)?);
        if total > max_output {
            return Err(too_large("snappy", max_output));
        }
    }
    let mut out = vec![0u8; total];
    let mut dec = snap::raw::Decoder::new();
    let mut at = 0;
    for b in &blocks {
        let n = dec.decompress(b, &mut out[at..]).map_err(err)?;
        at += n;
    }
    if at != total {
        return Err(decompression_error(
            "snappy",
            "decompressed size differs from the declared size".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 7) % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn codec_ids_and_names() {
        for c in Compression::ALL {
            assert_eq!(Compression::from_id(c.id()), Some(c));
            assert_eq!(
                Compression::from_attributes(c.to_attributes() | 0x30).unwrap(),
                c
            );
            assert_eq!(Compression::from_name(c.name()), Some(c));
        }
        assert!(Compression::from_attributes(5).is_err());
        assert!(Compression::from_attributes(7).is_err());
        assert_eq!(Compression::from_id(8), None);
    }

    #[test]
    fn round_trip_every_codec() {
        for n in [0usize, 1, 100, 32 * 1024, 32 * 1024 + 1, 200_000] {
            let data = sample(n);
            for c in Compression::ALL {
                let mut out = BytesMut::new();
                compress(c, &data, None, &mut out).unwrap();
                let back = decompress(c, &out, n).unwrap();
                assert_eq!(back, data, "{c} at {n}");
            }
        }
    }

    #[test]
    fn levels() {
        let data = sample(10_000);
        for l in [0, 1, 9, -1] {
            let mut out = BytesMut::new();
            compress(Compression::Gzip, &data, Some(l), &mut out).unwrap();
            assert_eq!(
                decompress(Compression::Gzip, &out, data.len()).unwrap(),
                data
            );
        }
        for l in [-5, 1, 19] {
            let mut out = BytesMut::new();
            compress(Compression::Zstd, &data, Some(l), &mut out).unwrap();
            assert_eq!(
                decompress(Compression::Zstd, &out, data.len()).unwrap(),
                data
            );
        }
        let mut out = BytesMut::new();
        assert!(compress(Compression::Gzip, &data, Some(10), &mut out).is_err());
        assert!(compress(Compression::Zstd, &data, Some(1000), &mut out).is_err());
    }

    #[test]
    fn snappy_uses_xerial_framing_with_32k_blocks() {
        let data = sample(70_000);
        let mut out = BytesMut::new();
        compress(Compression::Snappy, &data, None, &mut out).unwrap();
        assert_eq!(&out[..8], &XERIAL_SNAPPY_MAGIC);
        assert_eq!(&out[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        let blocks = xerial_blocks(&out).unwrap();
        assert_eq!(blocks.len(), 3);
        let sizes: Vec<usize> = blocks
            .iter()
            .map(|b| snap::raw::decompress_len(b).unwrap())
            .collect();
        assert_eq!(sizes, vec![32768, 32768, 70_000 - 65536]);
    }

    #[test]
    fn snappy_raw_block_and_concatenated_xerial_decode() {
        let data = sample(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 5000).unwrap(), data);

        let mut two = BytesMut::new();
        compress(Compression::Snappy, &data[..2000], None, &mut two).unwrap();
        compress(Compression::Snappy, &data[2000..], None, &mut two).unwrap();
        assert_eq!(decompress(Compression::Snappy, &two, 5000).unwrap(), data);
    }

    #[test]
    fn output_limit_is_enforced() {
        let data = vec![0u8; 1 << 20]; // compresses extremely well
        for c in Compression::ALL {
            let mut out = BytesMut::new();
            compress(c, &data, None, &mut out).unwrap();
            assert_eq!(decompress(c, &out, data.len()).unwrap().len(), data.len());
            let e = decompress(c, &out, data.len() - 1).unwrap_err();
            assert!(matches!(e, DecodeError::Decompression { .. }), "{c}: {e:?}");
            let e = decompress(c, &out, 1000).unwrap_err();
            assert!(matches!(e, DecodeError::Decompression { .. }), "{c}: {e:?}");
        }
    }

    #[test]
    fn capped_reader_never_exceeds_limit_capacity() {
        let data = vec![7u8; 300_000];
        let mut gz = BytesMut::new();
        compress(Compression::Gzip, &data, None, &mut gz).unwrap();
        let v = read_capped(
            flate2::read::MultiGzDecoder::new(&gz[..]),
            "gzip",
            gz.len(),
            300_000,
        )
        .unwrap();
        assert_eq!(v.len(), 300_000);
        assert!(v.capacity() <= 300_001, "capacity {}", v.capacity());
        let e = read_capped(
            flate2::read::MultiGzDecoder::new(&gz[..]),
            "gzip",
            gz.len(),
            100_000,
        );
        assert!(e.is_err());
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let data = sample(3000);
        for c in Compression::ALL {
            let mut out = BytesMut::new();
            compress(c, &data, None, &mut out).unwrap();
            for cut in 0..out.len() {
                let _ = decompress(c, &out[..cut], 1 << 20);
            }
            let mut flipped = out.to_vec();
            for i in 0..flipped.len() {
                flipped[i] ^= 0x5a;
                let _ = decompress(c, &flipped, 1 << 20);
                flipped[i] ^= 0x5a;
            }
        }
        for c in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            assert!(
                decompress(c, b"definitely not compressed", 1 << 20).is_err(),
                "{c}"
            );
        }
        // Xerial header with a negative block length.
        let mut bad = XERIAL_SNAPPY_MAGIC.to_vec();
        bad.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf0, 1]);
        assert!(decompress(Compression::Snappy, &bad, 1 << 20).is_err());
    }
}
