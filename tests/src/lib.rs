//! Shared helpers for the cross-crate integration and interop tests in `tests/tests/`.
//!
//! [`RawClient`] speaks the Kafka protocol with nothing but `kafka-wire`: it sends one typed
//! request at a chosen version and decodes the typed response, so tests can drive every API
//! and version of broker-lite, including malformed frames.

use bytes::{Buf, Bytes, BytesMut};
use kafka_wire::frame::{encode_request, split_frame, DEFAULT_MAX_FRAME_SIZE};
use kafka_wire::messages::{RequestHeader, ResponseHeader};
use kafka_wire::records::{BatchOptions, Compression, RecordBatchBuilder};
use kafka_wire::{Decodable, Request, RequestBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Any error in a test helper.
pub type TestError = Box<dyn std::error::Error + Send + Sync>;

/// A minimal Kafka connection for tests.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    correlation_id: i32,
    rbuf: BytesMut,
}

impl RawClient {
    /// Connects to `addr` (`host:port`).
    pub async fn connect(addr: &str) -> Result<RawClient, TestError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawClient { stream, correlation_id: 0, rbuf: BytesMut::new() })
    }

    /// Sends `req` at `version` and returns the decoded response.
    pub async fn send<R>(&mut self, req: R, version: i16) -> Result<R::Response, TestError>
    where
        R: Request + Into<RequestBody>,
    {
        self.correlation_id += 1;
        let correlation_id = self.correlation_id;
        let header = RequestHeader {
            request_api_key: R::API_KEY.key(),
            request_api_version: version,
            correlation_id,
            client_id: Some("kafka-rs-tests".into()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &req.into())?;
        self.stream.write_all(&out).await?;
        let mut frame = self.read_frame().await?;
        let h = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
        if h.correlation_id != correlation_id {
            return Err(format!("correlation id {} != {correlation_id}", h.correlation_id).into());
        }
        let resp = R::Response::decode(&mut frame, version)?;
        if frame.has_remaining() {
            return Err(format!("{} trailing bytes in response", frame.remaining()).into());
        }
        Ok(resp)
    }

    /// Sends `req` at `version` without waiting for a response (acks=0 produce).
    pub async fn send_no_response<R>(&mut self, req: R, version: i16) -> Result<(), TestError>
    where
        R: Request + Into<RequestBody>,
    {
        self.correlation_id += 1;
        let header = RequestHeader {
            request_api_key: R::API_KEY.key(),
            request_api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("kafka-rs-tests".into()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &req.into())?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Writes raw bytes (for malformed-input tests).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), TestError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads one response frame (without its size prefix).
    pub async fn read_frame(&mut self) -> Result<Bytes, TestError> {
        loop {
            if let Some(f) = split_frame(&mut self.rbuf, DEFAULT_MAX_FRAME_SIZE)? {
                return Ok(f);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err("connection closed".into());
            }
        }
    }

    /// Whether the broker closed the connection (reads until EOF or `timeout`).
    pub async fn is_closed_by_peer(&mut self, timeout: std::time::Duration) -> bool {
        let mut scratch = [0u8; 1024];
        loop {
            match tokio::time::timeout(timeout, self.stream.read_exact(&mut scratch[..1])).await {
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// One uncompressed-or-compressed v2 batch of `(key, value)` records with timestamps
/// starting at `ts`.
pub fn batch(records: &[(Option<&[u8]>, Option<&[u8]>)], compression: Compression, ts: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions { compression, ..Default::default() });
    for (i, (k, v)) in records.iter().enumerate() {
        b.append(ts + i as i64, *k, *v, &[]).expect("test records fit in a batch");
    }
    b.finish().expect("test batches encode")
}
