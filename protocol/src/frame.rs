//! Framing and headers: Kafka's 4-byte size prefix, request/response header versions, and
//! whole-request/response encode and decode.
//!
//! Header versions follow Kafka's `ApiKeys`: a request uses header v2 in flexible versions and
//! v1 otherwise (v0 only for ControlledShutdown v0); a response uses header v1 in flexible
//! versions and v0 otherwise, except ApiVersions responses, which always use v0 so that a
//! client can read them whatever version it asked for (KIP-511).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::{expect_end, Decodable, Encodable};
use crate::error::{DecodeError, EncodeError};
use crate::messages::{ApiKey, RequestBody, RequestHeader, ResponseBody, ResponseHeader};

/// Default maximum frame size, Kafka's `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

impl ApiKey {
    /// Whether `version` of this API uses the flexible encoding (KIP-482). Flexible ranges
    /// are open-ended, so this is also right for versions newer than we know.
    pub fn is_flexible(self, version: i16) -> bool {
        self.flexible_min_version().is_some_and(|v| version >= v)
    }

    /// The request header version for `version` of this API.
    pub fn request_header_version(self, version: i16) -> i16 {
        if self.is_flexible(version) {
            2
        } else if self == ApiKey::ControlledShutdown && version == 0 {
            0
        } else {
            1
        }
    }

    /// The response header version for `version` of this API.
    pub fn response_header_version(self, version: i16) -> i16 {
        if self == ApiKey::ApiVersions {
            0
        } else if self.is_flexible(version) {
            1
        } else {
            0
        }
    }
}

/// Splits one complete frame off the front of `buf`, for streaming readers.
///
/// Returns `Ok(None)` when `buf` does not hold a whole frame yet. The size prefix is checked
/// against `max_size` *before* anything is allocated or awaited, so a peer announcing a 2 GiB
/// frame is refused at once.
///
/// # Errors
/// [`DecodeError::FrameTooLarge`] for a negative size or one above `max_size`.
pub fn split_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<Bytes>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = check_frame_size(
        i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]),
        max_size,
    )?;
    if buf.len() < 4 + size {
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

/// Validates a frame's size prefix against `max_size`.
///
/// # Errors
/// [`DecodeError::FrameTooLarge`] for a negative size or one above `max_size`.
pub fn check_frame_size(size: i32, max_size: usize) -> Result<usize, DecodeError> {
    if size < 0 || size as usize > max_size {
        return Err(DecodeError::FrameTooLarge {
            size: size.into(),
            max: max_size,
        });
    }
    Ok(size as usize)
}

/// Appends a frame: a placeholder size prefix, whatever `write` appends, then the real size.
///
/// # Errors
/// Whatever `write` returns, or [`EncodeError::TooLong`] for a frame over `i32::MAX` bytes.
pub fn write_frame(
    buf: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    write(buf)?;
    let len = buf.len() - start - 4;
    let size = i32::try_from(len).map_err(|_| EncodeError::TooLong { what: "frame", len })?;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// The first fields of a request header, readable for any API key and version, so that a
/// broker can answer (or log) even a request it cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    /// The raw API key.
    pub api_key: i16,
    /// The requested version.
    pub api_version: i16,
    /// The correlation id to echo.
    pub correlation_id: i32,
}

/// Reads the API key, version and correlation id at the start of a request frame without
/// consuming it.
///
/// # Errors
/// [`DecodeError::Truncated`] when the frame is shorter than 8 bytes.
pub fn peek_request_prefix(frame: &[u8]) -> Result<RequestPrefix, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::Truncated {
            what: "request header",
            needed: 8,
            remaining: frame.len(),
        });
    }
    Ok(RequestPrefix {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

/// A decoded request: its header and body.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    /// The API.
    pub api_key: ApiKey,
    /// The request header (api key, version, correlation id, client id).
    pub header: RequestHeader,
    /// The request body.
    pub body: RequestBody,
}

/// Decodes a whole request frame (header and body; no size prefix). Trailing bytes are an
/// error; see [`decode_request_lenient`] for what a broker does.
///
/// # Errors
/// [`DecodeError::UnknownApiKey`], [`DecodeError::UnsupportedVersion`],
/// [`DecodeError::TrailingBytes`], or any malformed-input error.
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, DecodeError> {
    let (request, trailing) = decode_request_lenient(frame)?;
    if trailing > 0 {
        return Err(DecodeError::TrailingBytes {
            what: request.api_key.name(),
            remaining: trailing,
        });
    }
    Ok(request)
}

/// Decodes a whole request frame like [`decode_request`], but accepts bytes after the body
/// and returns how many there were. This is what Kafka's broker does
/// (`RequestContext.parseRequest` never checks what remains), and some clients rely on it:
/// librdkafka's all-topics Metadata v12 request carries 3 stray bytes (librdkafka#5049).
///
/// # Errors
/// [`DecodeError::UnknownApiKey`], [`DecodeError::UnsupportedVersion`], or any
/// malformed-input error.
pub fn decode_request_lenient(frame: Bytes) -> Result<(DecodedRequest, usize), DecodeError> {
    let prefix = peek_request_prefix(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key)?;
    if !api_key.codec_versions().contains(prefix.api_version) {
        return Err(DecodeError::UnsupportedVersion {
            what: api_key.name(),
            version: prefix.api_version,
        });
    }
    let mut buf = frame;
    let header =
        RequestHeader::decode(&mut buf, api_key.request_header_version(prefix.api_version))?;
    let body = RequestBody::decode(api_key, prefix.api_version, &mut buf)?;
    Ok((
        DecodedRequest {
            api_key,
            header,
            body,
        },
        buf.len(),
    ))
}

/// Appends a size-prefixed request frame. The header's api key and version must match
/// `body`; the header version is derived from them.
///
/// # Errors
/// [`EncodeError`] when the body or header cannot be expressed at the header's version.
pub fn encode_request(
    buf: &mut BytesMut,
    header: &RequestHeader,
    body: &RequestBody,
) -> Result<(), EncodeError> {
    let api_key = body.api_key();
    let version = header.request_api_version;
    if header.request_api_key != api_key.key() || !api_key.codec_versions().contains(version) {
        return Err(EncodeError::UnsupportedVersion {
            what: api_key.name(),
            version,
        });
    }
    write_frame(buf, |buf| {
        header.encode(buf, api_key.request_header_version(version))?;
        body.encode(buf, version)
    })
}

/// Decodes a whole response frame (no size prefix) to a request of `api_key` at `version`.
///
/// # Errors
/// Any malformed-input error, or trailing bytes.
pub fn decode_response(
    frame: Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, ResponseBody), DecodeError> {
    let mut buf = frame;
    let header = ResponseHeader::decode(&mut buf, api_key.response_header_version(version))?;
    let body = ResponseBody::decode(api_key, version, &mut buf)?;
    expect_end(&buf, api_key.name())?;
    Ok((header, body))
}

/// Appends a size-prefixed response frame for `correlation_id`.
///
/// # Errors
/// [`EncodeError`] when the body cannot be expressed at `version`.
pub fn encode_response(
    buf: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    body: &ResponseBody,
) -> Result<(), EncodeError> {
    let api_key = body.api_key();
    write_frame(buf, |buf| {
        let header = ResponseHeader {
            correlation_id,
            ..Default::default()
        };
        header.encode(buf, api_key.response_header_version(version))?;
        body.encode(buf, version)
    })
}

/// Outgoing frames whose large `records` fields are kept by reference rather than copied: the
/// encoded bytes plus splices (see [`codec::encode_with_splices`](crate::codec::encode_with_splices)).
/// A broker answering Fetch requests sends the stored batches straight from their read buffers
/// with vectored writes ([`SplicedBuf::io_slices`]) instead of copying every response into one
/// buffer first.
#[derive(Debug, Default)]
pub struct SplicedBuf {
    buf: BytesMut,
    splices: crate::codec::Splices,
    spliced_len: usize,
}

/// A position in a [`SplicedBuf`], for [`SplicedBuf::truncate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpliceMark {
    buf_len: usize,
    splices: usize,
    spliced_len: usize,
}

impl SplicedBuf {
    /// An empty buffer with room for `capacity` encoded bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        SplicedBuf {
            buf: BytesMut::with_capacity(capacity),
            ..Default::default()
        }
    }

    /// Total bytes to send: encoded bytes plus spliced bytes.
    pub fn len(&self) -> usize {
        self.buf.len() + self.spliced_len
    }

    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current end, to truncate back to.
    pub fn mark(&self) -> SpliceMark {
        SpliceMark {
            buf_len: self.buf.len(),
            splices: self.splices.len(),
            spliced_len: self.spliced_len,
        }
    }

    /// Drops everything appended after `mark`.
    pub fn truncate(&mut self, mark: SpliceMark) {
        self.buf.truncate(mark.buf_len);
        self.splices.truncate(mark.splices);
        self.spliced_len = mark.spliced_len;
    }

    /// Appends a size-prefixed response frame for `correlation_id`, splicing every `records`
    /// field of at least `min_splice` bytes instead of copying it. On error nothing is
    /// appended.
    ///
    /// # Errors
    /// [`EncodeError`] when the body cannot be expressed at `version`.
    pub fn encode_response(
        &mut self,
        correlation_id: i32,
        version: i16,
        body: &ResponseBody,
        min_splice: usize,
    ) -> Result<(), EncodeError> {
        let mark = self.mark();
        let start = self.buf.len();
        let (result, splices) =
            crate::codec::encode_with_splices(&mut self.buf, min_splice, |buf| {
                encode_response(buf, correlation_id, version, body)
            });
        // The size prefix written counts the encoded bytes only: add the spliced ones.
        let spliced: usize = splices.iter().map(|(_, b)| b.len()).sum();
        let size = result.and_then(|()| {
            let len = self.buf.len() - start - 4 + spliced;
            i32::try_from(len).map_err(|_| EncodeError::TooLong { what: "frame", len })
        });
        match size {
            Ok(size) => {
                self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
                self.splices.extend(splices);
                self.spliced_len += spliced;
                Ok(())
            }
            Err(e) => {
                self.truncate(mark);
                Err(e)
            }
        }
    }

    /// Appends bytes that are already encoded (such as a whole frame).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The bytes to send, in order, as slices for a vectored write (at most
    /// 2 × splices + 1 slices; empty slices are skipped).
    pub fn io_slices(&self) -> Vec<std::io::IoSlice<'_>> {
        let mut out = Vec::with_capacity(2 * self.splices.len() + 1);
        let mut at = 0;
        for (pos, bytes) in &self.splices {
            if *pos > at {
                out.push(std::io::IoSlice::new(&self.buf[at..*pos]));
            }
            at = *pos;
            if !bytes.is_empty() {
                out.push(std::io::IoSlice::new(bytes));
            }
        }
        if self.buf.len() > at {
            out.push(std::io::IoSlice::new(&self.buf[at..]));
        }
        out
    }

    /// Empties the buffer (keeping its capacity) and hands back the spliced bytes, for
    /// example to reuse their memory.
    pub fn clear(&mut self) -> impl Iterator<Item = Bytes> {
        self.buf.clear();
        self.spliced_len = 0;
        std::mem::take(&mut self.splices)
            .into_iter()
            .map(|(_, b)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ApiVersionsRequest, MetadataRequest};

    /// The bytes a [`SplicedBuf`] sends, concatenated.
    fn sent(out: &SplicedBuf) -> Vec<u8> {
        out.io_slices()
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }

    #[test]
    fn spliced_fetch_responses_are_byte_identical_to_copied_ones() {
        use crate::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use crate::messages::FetchResponse;
        let partition = |i: i32, len: usize| PartitionData {
            partition_index: i,
            high_watermark: 10,
            records: Some(Bytes::from(vec![i as u8; len])),
            ..Default::default()
        };
        let body: ResponseBody = FetchResponse {
            responses: vec![
                FetchableTopicResponse {
                    topic: "a".into(),
                    partitions: vec![partition(0, 5000), partition(1, 3), partition(2, 0)],
                    ..Default::default()
                },
                FetchableTopicResponse {
                    topic: "b".into(),
                    partitions: vec![partition(3, 70_000)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
        .into();
        for version in [4, 11, 12, 16, 17] {
            let mut plain = BytesMut::new();
            encode_response(&mut plain, 9, version, &body).unwrap();
            plain.extend_from_slice(b"next");
            let mut out = SplicedBuf::default();
            out.encode_response(9, version, &body, 1024).unwrap();
            out.extend_from_slice(b"next");
            assert_eq!(out.len(), plain.len(), "v{version}");
            assert_eq!(sent(&out), plain.to_vec(), "v{version}");
            // Only the two large records fields were spliced.
            assert_eq!(out.clear().count(), 2, "v{version}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn spliced_buf_truncates_back_to_a_mark_and_fails_atomically() {
        use crate::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use crate::messages::FetchResponse;
        let body: ResponseBody = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "a".into(),
                partitions: vec![PartitionData {
                    records: Some(Bytes::from(vec![7u8; 4096])),
                    // Not expressible before v11: the encoding fails after the records.
                    preferred_read_replica: 3,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
        .into();
        let mut out = SplicedBuf::default();
        out.extend_from_slice(b"earlier");
        let mark = out.mark();
        out.encode_response(1, 12, &body, 1).unwrap();
        assert!(out.len() > 4096);
        out.truncate(mark);
        assert_eq!(sent(&out), b"earlier".to_vec());
        assert!(out.encode_response(1, 10, &body, 1).is_err());
        assert_eq!(sent(&out), b"earlier".to_vec());
        assert_eq!(out.len(), 7);
        // The splicer is gone after the call: plain encoding copies again.
        let mut plain = BytesMut::new();
        encode_response(&mut plain, 1, 12, &body).unwrap();
        assert!(plain.len() > 4096);
    }

    #[test]
    fn header_versions_follow_kafka() {
        assert_eq!(ApiKey::Produce.request_header_version(8), 1);
        assert_eq!(ApiKey::Produce.request_header_version(9), 2);
        assert_eq!(ApiKey::Produce.response_header_version(9), 1);
        assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
        assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
        assert_eq!(ApiKey::ApiVersions.request_header_version(99), 2);
        assert_eq!(ApiKey::ControlledShutdown.request_header_version(0), 0);
    }

    #[test]
    fn oversized_and_negative_frames_are_refused_before_allocating() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff, 0, 0][..]);
        assert!(matches!(
            split_frame(&mut buf, 1024),
            Err(DecodeError::FrameTooLarge { .. })
        ));
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            split_frame(&mut buf, 1024),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn request_frame_round_trip_and_streaming_split() {
        let header = RequestHeader {
            request_api_key: ApiKey::Metadata.key(),
            request_api_version: 12,
            correlation_id: 7,
            client_id: Some("me".into()),
            ..Default::default()
        };
        let body = RequestBody::Metadata(MetadataRequest {
            topics: None,
            ..Default::default()
        });
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &body).unwrap();
        let h2 = RequestHeader {
            request_api_key: ApiKey::ApiVersions.key(),
            request_api_version: 3,
            correlation_id: 8,
            client_id: None,
            ..Default::default()
        };
        encode_request(&mut out, &h2, &ApiVersionsRequest::default().into()).unwrap();

        // Feed one byte at a time: frames come out whole, in order.
        let all = out.freeze();
        let mut stream = BytesMut::new();
        let mut frames = Vec::new();
        for b in all.iter() {
            stream.put_u8(*b);
            while let Some(f) = split_frame(&mut stream, DEFAULT_MAX_FRAME_SIZE).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        let d = decode_request(frames[0].clone()).unwrap();
        assert_eq!(d.header, header);
        assert_eq!(d.body, body);
        let d = decode_request(frames[1].clone()).unwrap();
        assert_eq!(d.header.correlation_id, 8);
        assert_eq!(d.api_key, ApiKey::ApiVersions);
    }

    #[test]
    fn trailing_bytes_unknown_keys_and_versions_are_errors() {
        let header = RequestHeader {
            request_api_key: ApiKey::ApiVersions.key(),
            request_api_version: 0,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &ApiVersionsRequest::default().into()).unwrap();
        let mut frame = out.split_off(4);
        frame.put_u8(0);
        assert!(matches!(
            decode_request(frame.freeze()),
            Err(DecodeError::TrailingBytes { .. })
        ));
        let bad_key = Bytes::from_static(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
        assert!(matches!(
            decode_request(bad_key),
            Err(DecodeError::UnknownApiKey(0x7f00))
        ));
        let bad_version = Bytes::from_static(&[0, 18, 0x7f, 0, 0, 0, 0, 1, 0xff, 0xff]);
        assert!(matches!(
            decode_request(bad_version),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
    }
}
