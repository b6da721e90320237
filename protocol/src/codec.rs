//! Wire primitives: fixed-width integers, varints, (compact, nullable) strings, bytes and
//! arrays, UUIDs and tagged-field sections (KIP-482).
//!
//! Everything here reads from a [`bytes::Bytes`] cursor and writes into a [`bytes::BytesMut`].
//! Decoding is defensive: every length is checked against what remains *before* anything is
//! allocated, so hostile input yields a [`DecodeError`], never a panic or an oversized
//! allocation. `bytes` and `records` fields are split off the input without copying.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};

/// Upper bound, in bytes, of what an array decoder reserves up front. Arrays longer than this
/// grow as their elements are actually decoded (each of which consumes input), so a forged
/// element count can never cause a large allocation.
const MAX_PREALLOC_BYTES: usize = 64 * 1024;

/// A Kafka UUID (used for topic ids, directory ids, ...): 16 bytes, big-endian halves.
///
/// Kafka prints UUIDs as URL-safe base64 without padding; [`std::fmt::Display`] does the same.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID, Kafka's `Uuid.ZERO_UUID` (no topic id).
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// Builds a UUID from its most and least significant 64-bit halves, as Java does.
    pub fn from_u64_pair(msb: u64, lsb: u64) -> Self {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&msb.to_be_bytes());
        b[8..].copy_from_slice(&lsb.to_be_bytes());
        Uuid(b)
    }

    /// The raw 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// The URL-safe base64 alphabet Kafka's `Uuid.toString` uses.
const UUID_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::with_capacity(22);
        for chunk in self.0.chunks(3) {
            let b0 = chunk[0] as u32;
            let b1 = chunk.get(1).copied().unwrap_or(0) as u32;
            let b2 = chunk.get(2).copied().unwrap_or(0) as u32;
            let n = (b0 << 16) | (b1 << 8) | b2;
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(UUID_ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        f.write_str(&out)
    }
}

/// The text is not a Kafka UUID (22 characters of URL-safe base64, no padding).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Kafka UUID: {0:?}")]
pub struct ParseUuidError(pub String);

impl std::str::FromStr for Uuid {
    type Err = ParseUuidError;

    /// Parses Kafka's text form (`Uuid.fromString`), the inverse of `Display`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseUuidError(s.to_string());
        if s.len() != 22 {
            return Err(err());
        }
        let sextets: Vec<u32> = s
            .bytes()
            .map(|c| UUID_ALPHABET.iter().position(|&a| a == c).map(|v| v as u32))
            .collect::<Option<_>>()
            .ok_or_else(err)?;
        // 22 * 6 = 132 bits: 128 bits of UUID and 4 zero padding bits at the end.
        if sextets[21] & 0xf != 0 {
            return Err(err());
        }
        let mut out = [0u8; 16];
        let mut written = 0;
        for chunk in sextets.chunks(4) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, v)| n | (v << (18 - 6 * i)));
            for &b in &n.to_be_bytes()[1..chunk.len()] {
                out[written] = b;
                written += 1;
            }
        }
        Ok(Uuid(out))
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// A tagged field this version of the code does not know, kept verbatim so that a message can
/// be decoded and re-encoded byte for byte (KIP-482).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawTaggedField {
    /// The field's tag.
    pub tag: u32,
    /// The field's serialized value.
    pub data: Bytes,
}

/// Every message struct (request, response, header, nested struct) encodes and decodes itself
/// for a given version with these two traits.
pub trait Encodable {
    /// Appends the encoding of `self` at `version` to `buf`.
    ///
    /// # Errors
    /// [`EncodeError`] when `self` cannot be expressed at `version` (a null in a non-nullable
    /// version, a non-default value in a field that `version` lacks and that is not ignorable,
    /// a string longer than the wire allows, ...).
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;
}

/// See [`Encodable`].
pub trait Decodable: Sized {
    /// Decodes one value of `version` from the front of `buf`, advancing it.
    ///
    /// # Errors
    /// [`DecodeError`] on truncated or malformed input.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
}

#[inline]
fn need(buf: &Bytes, n: usize, what: &'static str) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        Err(DecodeError::Truncated {
            what,
            needed: n,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed-width integers.
// ---------------------------------------------------------------------------------------------

macro_rules! fixed {
    ($read:ident, $write:ident, $t:ty, $get:ident, $put:ident) => {
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`.")]
        #[inline]
        pub fn $read(buf: &mut Bytes, what: &'static str) -> Result<$t, DecodeError> {
            need(buf, std::mem::size_of::<$t>(), what)?;
            Ok(buf.$get())
        }
        #[doc = concat!("Writes a big-endian `", stringify!($t), "`.")]
        #[inline]
        pub fn $write(buf: &mut BytesMut, v: $t) {
            buf.$put(v);
        }
    };
}

fixed!(read_i8, write_i8, i8, get_i8, put_i8);
fixed!(read_i16, write_i16, i16, get_i16, put_i16);
fixed!(read_u16, write_u16, u16, get_u16, put_u16);
fixed!(read_i32, write_i32, i32, get_i32, put_i32);
fixed!(read_u32, write_u32, u32, get_u32, put_u32);
fixed!(read_i64, write_i64, i64, get_i64, put_i64);
fixed!(read_f64, write_f64, f64, get_f64, put_f64);

/// Reads a boolean (one byte; any non-zero value is `true`, as in Kafka).
#[inline]
pub fn read_bool(buf: &mut Bytes, what: &'static str) -> Result<bool, DecodeError> {
    Ok(read_i8(buf, what)? != 0)
}

/// Writes a boolean as one byte, 0 or 1.
#[inline]
pub fn write_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(v as u8);
}

/// Reads a UUID (16 bytes).
#[inline]
pub fn read_uuid(buf: &mut Bytes, what: &'static str) -> Result<Uuid, DecodeError> {
    need(buf, 16, what)?;
    let mut b = [0u8; 16];
    buf.copy_to_slice(&mut b);
    Ok(Uuid(b))
}

/// Writes a UUID (16 bytes).
#[inline]
pub fn write_uuid(buf: &mut BytesMut, v: &Uuid) {
    buf.put_slice(&v.0);
}

// ---------------------------------------------------------------------------------------------
// Variable-length integers.
// ---------------------------------------------------------------------------------------------

/// Reads an unsigned varint (at most 5 bytes, 32 bits), as used for compact lengths and tags.
#[inline]
pub fn read_unsigned_varint(buf: &mut Bytes, what: &'static str) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        need(buf, 1, what)?;
        let b = buf.get_u8();
        if i == 4 && b & 0xf0 != 0 {
            return Err(DecodeError::VarintOverflow { what });
        }
        value |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow { what })
}

/// Writes an unsigned varint.
#[inline]
pub fn write_unsigned_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Number of bytes [`write_unsigned_varint`] produces for `v`.
#[inline]
pub fn unsigned_varint_len(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0xfff_ffff => 4,
        _ => 5,
    }
}

/// Reads an unsigned 64-bit varint (at most 10 bytes).
#[inline]
pub fn read_unsigned_varlong(buf: &mut Bytes, what: &'static str) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        need(buf, 1, what)?;
        let b = buf.get_u8();
        if i == 9 && b & 0xfe != 0 {
            return Err(DecodeError::VarintOverflow { what });
        }
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow { what })
}

/// Writes an unsigned 64-bit varint.
#[inline]
pub fn write_unsigned_varlong(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Reads a zig-zag encoded signed varint (record fields: lengths, deltas).
#[inline]
pub fn read_varint(buf: &mut Bytes, what: &'static str) -> Result<i32, DecodeError> {
    let raw = read_unsigned_varint(buf, what)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Writes a zig-zag encoded signed varint.
#[inline]
pub fn write_varint(buf: &mut BytesMut, v: i32) {
    write_unsigned_varint(buf, ((v << 1) ^ (v >> 31)) as u32);
}

/// Number of bytes [`write_varint`] produces for `v`.
#[inline]
pub fn varint_len(v: i32) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 31)) as u32)
}

/// Reads a zig-zag encoded signed varlong (record timestamp and offset deltas).
#[inline]
pub fn read_varlong(buf: &mut Bytes, what: &'static str) -> Result<i64, DecodeError> {
    let raw = read_unsigned_varlong(buf, what)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Writes a zig-zag encoded signed varlong.
#[inline]
pub fn write_varlong(buf: &mut BytesMut, v: i64) {
    write_unsigned_varlong(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Number of bytes [`write_varlong`] produces for `v`.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Lengths: classic (int16/int32, -1 = null) and compact (unsigned varint N+1, 0 = null).
// ---------------------------------------------------------------------------------------------

/// Reads the length prefix of a string (`compact` selects KIP-482's form). `None` is null.
#[inline]
fn read_string_len(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        read_unsigned_varint(buf, what)? as i64 - 1
    } else {
        read_i16(buf, what)? as i64
    };
    length_to_option(buf, len, what)
}

#[inline]
fn read_bytes_len(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        read_unsigned_varint(buf, what)? as i64 - 1
    } else {
        read_i32(buf, what)? as i64
    };
    length_to_option(buf, len, what)
}

#[inline]
fn length_to_option(
    buf: &Bytes,
    len: i64,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    if len == -1 {
        return Ok(None);
    }
    if len < -1 {
        return Err(DecodeError::InvalidLength { what, len });
    }
    let len = len as usize;
    need(buf, len, what)?;
    Ok(Some(len))
}

#[inline]
fn write_string_len(
    buf: &mut BytesMut,
    len: Option<usize>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    match (len, compact) {
        (None, true) => write_unsigned_varint(buf, 0),
        (None, false) => write_i16(buf, -1),
        (Some(n), true) => {
            let n = u32::try_from(n)
                .ok()
                .filter(|n| *n < u32::MAX && *n <= i16::MAX as u32)
                .ok_or(EncodeError::TooLong { what, len: n })?;
            write_unsigned_varint(buf, n + 1)
        }
        (Some(n), false) => {
            let n = i16::try_from(n).map_err(|_| EncodeError::TooLong { what, len: n })?;
            write_i16(buf, n)
        }
    }
    Ok(())
}

#[inline]
fn write_bytes_len(
    buf: &mut BytesMut,
    len: Option<usize>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    match (len, compact) {
        (None, true) => write_unsigned_varint(buf, 0),
        (None, false) => write_i32(buf, -1),
        (Some(n), true) => {
            let n = u32::try_from(n)
                .ok()
                .filter(|n| *n < i32::MAX as u32)
                .ok_or(EncodeError::TooLong { what, len: n })?;
            write_unsigned_varint(buf, n + 1)
        }
        (Some(n), false) => {
            let n = i32::try_from(n).map_err(|_| EncodeError::TooLong { what, len: n })?;
            write_i32(buf, n)
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strings and bytes.
// ---------------------------------------------------------------------------------------------

/// Reads a nullable string (classic int16 length or compact).
pub fn read_nullable_string(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<String>, DecodeError> {
    match read_string_len(buf, compact, what)? {
        None => Ok(None),
        Some(len) => {
            let raw = buf.split_to(len);
            match std::str::from_utf8(&raw) {
                Ok(s) => Ok(Some(s.to_owned())),
                Err(_) => Err(DecodeError::InvalidUtf8 { what }),
            }
        }
    }
}

/// Reads a non-nullable string; a null on the wire is an error.
pub fn read_string(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<String, DecodeError> {
    read_nullable_string(buf, compact, what)?.ok_or(DecodeError::UnexpectedNull { what })
}

/// Writes a nullable string.
pub fn write_nullable_string(
    buf: &mut BytesMut,
    v: Option<&str>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_string_len(buf, v.map(str::len), compact, what)?;
    if let Some(s) = v {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes a non-nullable string.
pub fn write_string(
    buf: &mut BytesMut,
    v: &str,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_string(buf, Some(v), compact, what)
}

/// Reads nullable bytes (classic int32 length or compact) without copying.
pub fn read_nullable_bytes(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<Bytes>, DecodeError> {
    Ok(read_bytes_len(buf, compact, what)?.map(|len| buf.split_to(len)))
}

/// Reads non-nullable bytes; a null on the wire is an error.
pub fn read_bytes(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Bytes, DecodeError> {
    read_nullable_bytes(buf, compact, what)?.ok_or(DecodeError::UnexpectedNull { what })
}

/// Writes nullable bytes.
pub fn write_nullable_bytes(
    buf: &mut BytesMut,
    v: Option<&[u8]>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_bytes_len(buf, v.map(<[u8]>::len), compact, what)?;
    if let Some(b) = v {
        buf.put_slice(b);
    }
    Ok(())
}

/// Writes non-nullable bytes.
pub fn write_bytes(
    buf: &mut BytesMut,
    v: &[u8],
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_bytes(buf, Some(v), compact, what)
}

/// Writes a `records` field (non-null).
///
/// The bytes are copied into `buf`, unless `buf` is the root buffer of an enclosing
/// [`encode_with_splices`] call and the records are at least its `min_len` long: the length
/// prefix is then written and the records are recorded as a splice at the current end of
/// `buf` instead of being copied (the caller sends `buf` and the splices interleaved, e.g.
/// with vectored writes).
pub fn write_records(
    buf: &mut BytesMut,
    v: &Bytes,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_bytes_len(buf, Some(v.len()), compact, what)?;
    let spliced = SPLICER.with(|s| match s.borrow_mut().as_mut() {
        Some(sp) if sp.root == buf_id(buf) && v.len() >= sp.min_len => {
            sp.splices.push((buf.len(), v.clone()));
            true
        }
        _ => false,
    });
    if !spliced {
        buf.put_slice(v);
    }
    Ok(())
}

/// Byte ranges spliced into an encoded buffer: `(position in the buffer, bytes)`, in order of
/// position. The bytes belong right after `buffer[..position]`.
pub type Splices = Vec<(usize, Bytes)>;

/// The state of an active [`encode_with_splices`] call on this thread.
struct Splicer {
    /// The identity (address) of the root buffer: records written into other buffers (such as
    /// the temporary buffers of tagged fields) are copied as usual, since their positions
    /// would not be positions in the root buffer.
    root: usize,
    min_len: usize,
    splices: Splices,
}

thread_local! {
    static SPLICER: std::cell::RefCell<Option<Splicer>> = const { std::cell::RefCell::new(None) };
}

fn buf_id(buf: &BytesMut) -> usize {
    buf as *const BytesMut as usize
}

/// Restores the enclosing splicer (if any) when an [`encode_with_splices`] call ends, even by
/// unwinding.
struct SplicerGuard(Option<Splicer>);

impl Drop for SplicerGuard {
    fn drop(&mut self) {
        let outer = self.0.take();
        SPLICER.with(|s| *s.borrow_mut() = outer);
    }
}

/// Runs `encode` with `buf` as the root buffer of a splicing encoder: every `records` field
/// of at least `min_len` bytes that `encode` writes directly into `buf` (through
/// [`write_records`]) is not copied but returned as a splice, at the position of `buf` where
/// its bytes belong. Everything else is written into `buf` as usual. Encoding is synchronous,
/// so the splicer is a thread-local active for the duration of the call only.
///
/// The encoded message is `buf` with each splice's bytes inserted at its position; its length
/// is `buf.len()` plus the splices' lengths (frame size prefixes must count them).
pub fn encode_with_splices<R>(
    buf: &mut BytesMut,
    min_len: usize,
    encode: impl FnOnce(&mut BytesMut) -> R,
) -> (R, Splices) {
    let outer = SPLICER.with(|s| {
        s.borrow_mut().replace(Splicer {
            root: buf_id(buf),
            min_len: min_len.max(1),
            splices: Vec::new(),
        })
    });
    let guard = SplicerGuard(outer);
    let result = encode(buf);
    let splices = SPLICER.with(|s| s.borrow_mut().take().map(|sp| sp.splices));
    drop(guard);
    (result, splices.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Arrays.
// ---------------------------------------------------------------------------------------------

/// Reads an array length (classic int32 or compact). `None` is null.
///
/// As in Kafka's generated code, a count larger than the remaining bytes is rejected (every
/// element takes at least one byte), which bounds the work any element count can cause.
pub fn read_array_len(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        read_unsigned_varint(buf, what)? as i64 - 1
    } else {
        read_i32(buf, what)? as i64
    };
    if len == -1 {
        return Ok(None);
    }
    if len < -1 || len as u64 > buf.remaining() as u64 {
        return Err(DecodeError::InvalidLength { what, len });
    }
    Ok(Some(len as usize))
}

/// Writes an array length.
pub fn write_array_len(
    buf: &mut BytesMut,
    len: Option<usize>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    write_bytes_len(buf, len, compact, what)
}

/// An empty `Vec` with room for up to `n` elements, capped so that the reservation stays
/// within [`MAX_PREALLOC_BYTES`] whatever `n` a peer claims.
#[inline]
pub fn vec_with_bounded_capacity<T>(n: usize) -> Vec<T> {
    let per = std::mem::size_of::<T>().max(1);
    Vec::with_capacity(n.min(MAX_PREALLOC_BYTES / per))
}

/// Reads a nullable array whose elements are decoded by `elem`.
pub fn read_nullable_array<T>(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
    mut elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    match read_array_len(buf, compact, what)? {
        None => Ok(None),
        Some(n) => {
            let mut v = vec_with_bounded_capacity(n);
            for _ in 0..n {
                v.push(elem(buf)?);
            }
            Ok(Some(v))
        }
    }
}

/// Reads a non-nullable array; a null on the wire is an error.
pub fn read_array<T>(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
    elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    read_nullable_array(buf, compact, what, elem)?.ok_or(DecodeError::UnexpectedNull { what })
}

/// Writes a nullable array whose elements are encoded by `elem`.
pub fn write_nullable_array<T>(
    buf: &mut BytesMut,
    v: Option<&[T]>,
    compact: bool,
    what: &'static str,
    mut elem: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    write_array_len(buf, v.map(<[T]>::len), compact, what)?;
    if let Some(items) = v {
        for item in items {
            elem(buf, item)?;
        }
    }
    Ok(())
}

/// Writes a non-nullable array.
pub fn write_array<T>(
    buf: &mut BytesMut,
    v: &[T],
    compact: bool,
    what: &'static str,
    elem: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    write_nullable_array(buf, Some(v), compact, what, elem)
}

// ---------------------------------------------------------------------------------------------
// Tagged fields (KIP-482).
// ---------------------------------------------------------------------------------------------

/// Reads the header of one tagged field: `(tag, value bytes)`. The value is split off `buf`
/// without copying, and its length is checked against what remains.
pub fn read_tagged_field(buf: &mut Bytes) -> Result<(u32, Bytes), DecodeError> {
    let tag = read_unsigned_varint(buf, "tagged field tag")?;
    let size = read_unsigned_varint(buf, "tagged field size")? as usize;
    need(buf, size, "tagged field value")?;
    Ok((tag, buf.split_to(size)))
}

/// Writes one tagged field whose value has already been serialized.
pub fn write_tagged_field(buf: &mut BytesMut, tag: u32, data: &[u8]) -> Result<(), EncodeError> {
    let len = u32::try_from(data.len()).map_err(|_| EncodeError::TooLong {
        what: "tagged field",
        len: data.len(),
    })?;
    write_unsigned_varint(buf, tag);
    write_unsigned_varint(buf, len);
    buf.put_slice(data);
    Ok(())
}

/// Skips a tagged-field section entirely, keeping every field as a [`RawTaggedField`].
pub fn read_unknown_tagged_fields(buf: &mut Bytes) -> Result<Vec<RawTaggedField>, DecodeError> {
    let n = read_unsigned_varint(buf, "tagged field count")? as usize;
    if n > buf.remaining() {
        return Err(DecodeError::InvalidLength {
            what: "tagged field count",
            len: n as i64,
        });
    }
    let mut out = vec_with_bounded_capacity(n);
    for _ in 0..n {
        let (tag, data) = read_tagged_field(buf)?;
        out.push(RawTaggedField { tag, data });
    }
    Ok(out)
}

/// Writes a tagged-field section made only of raw fields (sorted by tag, as Kafka requires).
pub fn write_unknown_tagged_fields(
    buf: &mut BytesMut,
    fields: &[RawTaggedField],
) -> Result<(), EncodeError> {
    write_unsigned_varint(buf, fields.len() as u32);
    let mut sorted: Vec<&RawTaggedField> = fields.iter().collect();
    sorted.sort_by_key(|f| f.tag);
    for f in sorted {
        write_tagged_field(buf, f.tag, &f.data)?;
    }
    Ok(())
}

/// Writes a tagged-field section: known fields already serialized (`(tag, bytes)`), merged
/// with the unknown ones in ascending tag order.
pub fn write_tagged_fields(
    buf: &mut BytesMut,
    mut known: Vec<(u32, BytesMut)>,
    unknown: &[RawTaggedField],
) -> Result<(), EncodeError> {
    if known.is_empty() {
        return write_unknown_tagged_fields(buf, unknown);
    }
    let total = known.len() + unknown.len();
    write_unsigned_varint(buf, total as u32);
    for u in unknown {
        known.push((u.tag, BytesMut::from(&u.data[..])));
    }
    known.sort_by_key(|(t, _)| *t);
    for (tag, data) in known {
        write_tagged_field(buf, tag, &data)?;
    }
    Ok(())
}

/// Fails when `buf` still holds bytes after a complete message was decoded.
pub fn expect_end(buf: &Bytes, what: &'static str) -> Result<(), DecodeError> {
    if buf.has_remaining() {
        Err(DecodeError::TrailingBytes {
            what,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_lengths() {
        for v in [0i32, 1, -1, 63, -64, 64, 300, -300, i32::MAX, i32::MIN] {
            let mut b = BytesMut::new();
            write_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "len of {v}");
            let mut r = b.freeze();
            assert_eq!(read_varint(&mut r, "v").unwrap(), v);
            assert!(r.is_empty());
        }
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = BytesMut::new();
            write_varlong(&mut b, v);
            assert_eq!(b.len(), varlong_len(v));
            let mut r = b.freeze();
            assert_eq!(read_varlong(&mut r, "v").unwrap(), v);
        }
    }

    #[test]
    fn zigzag_matches_protobuf_examples() {
        // 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, 2147483647 -> 4294967294
        let cases = [
            (0, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-2, vec![3]),
            (150, vec![0xac, 0x02]),
        ];
        for (v, bytes) in cases {
            let mut b = BytesMut::new();
            write_varint(&mut b, v);
            assert_eq!(&b[..], &bytes[..], "encoding of {v}");
        }
    }

    #[test]
    fn varint_overflow_is_an_error() {
        let mut r = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(
            read_unsigned_varint(&mut r, "x"),
            Err(DecodeError::VarintOverflow { .. })
        ));
        let mut r = Bytes::from_static(&[0x80, 0x80]);
        assert!(matches!(
            read_unsigned_varint(&mut r, "x"),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn huge_array_count_in_small_input_is_rejected_without_allocating() {
        // int32 count 2^31-1 followed by a few bytes.
        let mut r = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let res = read_array(&mut r, false, "arr", |b| read_i32(b, "e"));
        assert!(matches!(res, Err(DecodeError::InvalidLength { .. })));
        let mut r = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x07]);
        let res = read_array(&mut r, true, "arr", |b| read_i32(b, "e"));
        assert!(matches!(res, Err(DecodeError::InvalidLength { .. })));
    }

    #[test]
    fn strings_check_length_utf8_and_null() {
        let mut r = Bytes::from_static(&[0, 5, b'a']);
        assert!(matches!(
            read_string(&mut r, false, "s"),
            Err(DecodeError::Truncated { .. })
        ));
        let mut r = Bytes::from_static(&[0, 2, 0xff, 0xfe]);
        assert!(matches!(
            read_string(&mut r, false, "s"),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
        let mut r = Bytes::from_static(&[0xff, 0xff]);
        assert!(matches!(
            read_string(&mut r, false, "s"),
            Err(DecodeError::UnexpectedNull { .. })
        ));
        let mut r = Bytes::from_static(&[0xff, 0xfe]);
        assert!(matches!(
            read_nullable_string(&mut r, false, "s"),
            Err(DecodeError::InvalidLength { .. })
        ));
        let mut r = Bytes::from_static(&[0]);
        assert_eq!(read_nullable_string(&mut r, true, "s").unwrap(), None);
        let mut r = Bytes::from_static(&[3, b'h', b'i']);
        assert_eq!(read_string(&mut r, true, "s").unwrap(), "hi");
    }

    #[test]
    fn tagged_fields_sorted_on_write() {
        let mut b = BytesMut::new();
        let unknown = vec![RawTaggedField {
            tag: 9,
            data: Bytes::from_static(b"z"),
        }];
        write_tagged_fields(&mut b, vec![(1, BytesMut::from(&b"a"[..]))], &unknown).unwrap();
        assert_eq!(&b[..], &[2, 1, 1, b'a', 9, 1, b'z']);
        let mut r = b.freeze();
        let f = read_unknown_tagged_fields(&mut r).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].tag, 9);
    }

    #[test]
    fn uuid_display_is_kafka_base64() {
        // Kafka: new Uuid(0, 1).toString() == "AAAAAAAAAAAAAAAAAAAAAQ"
        assert_eq!(
            Uuid::from_u64_pair(0, 1).to_string(),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
    }
}
