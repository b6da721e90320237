//! One connection to a broker: [`BrokerConnection`], pipelined and async.
//!
//! A connection owns two tokio tasks: a *writer*, which takes encoded request frames from a
//! queue and writes them (several at a time, coalesced into few `write_all` calls, with
//! `TCP_NODELAY` on), and a *reader*, which splits response frames off the socket and hands
//! each to the request it answers. Kafka answers the requests of one connection in the order
//! they were sent, so responses are matched first-in first-out to the queue of pending
//! requests, and the correlation id of every response is checked against the request it is
//! matched with.
//!
//! [`BrokerConnection::send`] is a plain function: the correlation id is assigned and the frame
//! is encoded and queued before it returns, so requests reach the wire in call order whatever
//! order their futures are polled in. Responses are decoded in the [`ResponseFuture`], not in
//! the reader task, so a large response never stalls the others.
//!
//! Failures follow Kafka's Java `NetworkClient`: when the oldest pending request has waited
//! longer than [`ConnectionConfig::request_timeout`], the connection is closed and every
//! pending request fails with [`Error::Timeout`]; an I/O error or end of stream fails every
//! pending request with [`Error::Connection`]; a protocol violation by the broker (correlation
//! id mismatch, a response nobody asked for, a frame larger than
//! [`ConnectionConfig::max_response_size`]) fails the request it concerns with
//! [`Error::Protocol`] and the others with [`Error::Connection`]. Once closed, a connection
//! stays closed: later requests fail at once.
//!
//! [`BrokerConnection::connect`] performs the ApiVersions handshake and keeps the broker's
//! version ranges, so [`BrokerConnection::send`] picks the highest version both sides support.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_wire::codec::expect_end;
use kafka_wire::frame::{encode_request, split_frame, DEFAULT_MAX_FRAME_SIZE};
use kafka_wire::messages::{
    ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_wire::{ApiKey, Decodable, ErrorCode, Request, RequestBody, Response, VersionRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::error::Error;

/// Frames smaller than this are copied into one buffer and written together; larger ones are
/// written as they are (no copy).
const COALESCE_LIMIT: usize = 16 * 1024;
/// At most this many bytes of queued frames are taken for one round of writes.
const MAX_WRITE_BATCH: usize = 1024 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// Settings of a [`BrokerConnection`].
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `client.id`, sent in every request header (default: none).
    pub client_id: Option<String>,
    /// `request.timeout.ms`: how long a request may wait for its response before the
    /// connection is closed and every pending request fails with [`Error::Timeout`]
    /// (default 30 s). Also bounds a single socket write.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: bound on [`BrokerConnection::connect`], the TCP
    /// connect and the ApiVersions handshake included (default 10 s).
    pub connect_timeout: Duration,
    /// The largest response frame accepted, checked from the size prefix before anything is
    /// allocated (default 100 MiB).
    pub max_response_size: usize,
    /// `send.buffer.bytes`: the socket send buffer (`SO_SNDBUF`); zero or negative keeps the
    /// OS default (default 128 KiB, as the Java producer).
    pub send_buffer_bytes: i32,
    /// `receive.buffer.bytes`: the socket receive buffer (`SO_RCVBUF`); zero or negative keeps
    /// the OS default (default 32 KiB, as the Java producer).
    pub receive_buffer_bytes: i32,
    /// The client software name sent in ApiVersions v3+ (KIP-511), default `kafka-rs`.
    /// Characters Kafka does not accept are replaced by `-`.
    pub client_software_name: String,
    /// The client software version sent in ApiVersions v3+ (KIP-511), default this crate's
    /// version. Characters Kafka does not accept are replaced by `-`.
    pub client_software_version: String,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_size: DEFAULT_MAX_FRAME_SIZE,
            send_buffer_bytes: 128 * 1024,
            receive_buffer_bytes: 32 * 1024,
            client_software_name: "kafka-rs".to_owned(),
            client_software_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// A pipelined, asynchronous connection to one broker.
///
/// Cheap to clone: clones share the connection. The connection is closed by
/// [`BrokerConnection::close`], by a failure, or when the last clone (and the last
/// [`ResponseFuture`]) is dropped.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), kafka_client::Error> {
/// use kafka_client::network::connection::{BrokerConnection, ConnectionConfig};
/// use kafka_wire::messages::MetadataRequest;
///
/// let conn = BrokerConnection::connect("localhost:9092", None, &ConnectionConfig::default())
///     .await?;
/// let metadata = conn.send(MetadataRequest { topics: None, ..Default::default() }).await?;
/// println!("{} brokers", metadata.brokers.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BrokerConnection {
    inner: Arc<Inner>,
}

/// The handle side of a connection; dropping the last one closes the connection.
struct Inner {
    shared: Arc<Shared>,
    node_id: Option<i32>,
    client_id: Option<String>,
    /// The broker's advertised ranges, sorted by API key; set once the handshake is done.
    versions: OnceLock<Vec<(ApiKey, VersionRange)>>,
}

/// What the handle and the two tasks share.
struct Shared {
    addr: String,
    state: Mutex<State>,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
    request_timeout: Duration,
    max_response_size: usize,
}

struct State {
    next_correlation_id: i32,
    /// Requests written or queued that expect a response, in wire order.
    pending: VecDeque<Pending>,
    /// The writer's queue; `None` once the connection is closed.
    queue: Option<mpsc::UnboundedSender<Outgoing>>,
    /// Why the connection was closed.
    closed: Option<String>,
    last_used: Instant,
}

struct Pending {
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    enqueued: Instant,
    tx: oneshot::Sender<Result<Bytes, Error>>,
}

struct Outgoing {
    frame: Bytes,
    /// Told once the frame has been written (requests without a response).
    written: Option<oneshot::Sender<()>>,
}

enum Submitted {
    Response(oneshot::Receiver<Result<Bytes, Error>>),
    Written(oneshot::Receiver<()>),
}

impl BrokerConnection {
    /// Connects to `addr` (`host:port`; every resolved address is tried in turn), sets
    /// `TCP_NODELAY` and the socket buffers, and performs the ApiVersions handshake: at the
    /// highest ApiVersions version this client knows, retried at the highest version the
    /// broker lists when it answers `UNSUPPORTED_VERSION` (KIP-511, as the Java client does).
    /// The whole is bounded by [`ConnectionConfig::connect_timeout`].
    ///
    /// `node_id` is the broker's id when known (not for bootstrap addresses); it is only
    /// reported back by [`BrokerConnection::node_id`] and in logs.
    ///
    /// # Errors
    /// [`Error::Connection`] when the address cannot be resolved or connected to, or the
    /// connection breaks during the handshake; [`Error::Timeout`] when `connect_timeout`
    /// passes; [`Error::Kafka`] when the broker answers ApiVersions with an error;
    /// [`Error::Protocol`] for an undecodable answer.
    pub async fn connect(
        addr: &str,
        node_id: Option<i32>,
        config: &ConnectionConfig,
    ) -> Result<BrokerConnection, Error> {
        let started = Instant::now();
        match tokio::time::timeout(
            config.connect_timeout,
            Self::connect_inner(addr, node_id, config),
        )
        .await
        {
            Ok(Ok(conn)) => {
                debug!(
                    broker = addr,
                    node_id,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "connected"
                );
                Ok(conn)
            }
            Ok(Err(e)) => {
                warn!(broker = addr, node_id, error = %e, "connection failed");
                Err(e)
            }
            Err(_) => {
                warn!(broker = addr, node_id, "connection setup timed out");
                Err(Error::Timeout(format!(
                    "connecting to {addr} (TCP connect and ApiVersions handshake) took longer \
                     than {:?}",
                    config.connect_timeout
                )))
            }
        }
    }

    async fn connect_inner(
        addr: &str,
        node_id: Option<i32>,
        config: &ConnectionConfig,
    ) -> Result<BrokerConnection, Error> {
        let stream = open_socket(addr, config).await?;
        let (rd, wr) = stream.into_split();
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            state: Mutex::new(State {
                next_correlation_id: 0,
                pending: VecDeque::new(),
                queue: Some(queue_tx),
                closed: None,
                last_used: Instant::now(),
            }),
            closed: AtomicBool::new(false),
            shutdown,
            request_timeout: config.request_timeout,
            max_response_size: config.max_response_size,
        });
        tokio::spawn(write_loop(
            shared.clone(),
            wr,
            queue_rx,
            shared.shutdown.subscribe(),
        ));
        tokio::spawn(read_loop(shared.clone(), rd, shared.shutdown.subscribe()));
        // From here on, dropping `conn` (an error, or the connect timeout dropping this
        // future) closes the connection and stops both tasks.
        let conn = BrokerConnection {
            inner: Arc::new(Inner {
                shared,
                node_id,
                client_id: config.client_id.clone(),
                versions: OnceLock::new(),
            }),
        };
        let versions = conn.handshake(config).await?;
        let _ = conn.inner.versions.set(versions);
        Ok(conn)
    }

    async fn handshake(
        &self,
        config: &ConnectionConfig,
    ) -> Result<Vec<(ApiKey, VersionRange)>, Error> {
        let ours = ApiKey::ApiVersions.valid_versions();
        let mut version = ours.max;
        loop {
            let request = ApiVersionsRequest {
                client_software_name: sanitize_software_field(&config.client_software_name),
                client_software_version: sanitize_software_field(&config.client_software_version),
                ..Default::default()
            };
            let response: ApiVersionsResponse = self.send_unchecked(request, version).await?;
            let code = ErrorCode::from_code(response.error_code);
            if code == ErrorCode::None {
                let versions = parse_versions(&response);
                debug!(
                    broker = %self.addr(),
                    api_versions_version = version,
                    apis = versions.len(),
                    "ApiVersions handshake done"
                );
                return Ok(versions);
            }
            if code == ErrorCode::UnsupportedVersion {
                // KIP-511: the broker lists its ApiVersions range in the error response; with
                // no entry, fall back to v0 (as the Java client does).
                let theirs = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions.key())
                    .map_or(0, |k| k.max_version);
                let next = theirs.min(ours.max);
                if next < version && next >= ours.min {
                    debug!(
                        broker = %self.addr(),
                        tried = version,
                        retry = next,
                        "broker does not support our ApiVersions version; retrying"
                    );
                    version = next;
                    continue;
                }
                return Err(Error::UnsupportedVersion(format!(
                    "broker {} supports ApiVersions up to v{theirs}, this client v{}-v{}",
                    self.addr(),
                    ours.min,
                    ours.max
                )));
            }
            return Err(Error::kafka_with_message(
                code,
                Some(format!("ApiVersions v{version} to {} failed", self.addr())),
            ));
        }
    }

    /// The address this connection was made to, as given to [`BrokerConnection::connect`].
    pub fn addr(&self) -> &str {
        &self.inner.shared.addr
    }

    /// The broker's node id, when it was given to [`BrokerConnection::connect`].
    pub fn node_id(&self) -> Option<i32> {
        self.inner.node_id
    }

    /// The version [`BrokerConnection::send`] uses for `api`: the highest version in both the
    /// broker's advertised range and [`ApiKey::valid_versions`]. `None` when the broker does
    /// not offer the API or the ranges do not overlap.
    pub fn version_for(&self, api: ApiKey) -> Option<i16> {
        self.broker_range(api)?
            .highest_common(&api.valid_versions())
    }

    /// The broker's ApiVersions answer: every API this client knows that the broker offers,
    /// with the broker's version range, sorted by API key.
    pub fn broker_versions(&self) -> &[(ApiKey, VersionRange)] {
        self.inner.versions.get().map_or(&[], Vec::as_slice)
    }

    fn broker_range(&self, api: ApiKey) -> Option<VersionRange> {
        let versions = self.broker_versions();
        versions
            .binary_search_by_key(&api, |(k, _)| *k)
            .ok()
            .and_then(|i| versions.get(i))
            .map(|(_, r)| *r)
    }

    /// Sends `request` at the negotiated version ([`BrokerConnection::version_for`]).
    ///
    /// The correlation id is assigned and the frame encoded and queued before this returns,
    /// so requests go on the wire in call order whenever their futures are polled. Dropping
    /// the future does not cancel the request; its response is read and discarded.
    ///
    /// The future fails with [`Error::UnsupportedVersion`] when no version is supported by
    /// both sides, [`Error::Protocol`] when the request cannot be encoded or the response not
    /// decoded, and see the [module documentation](self) for connection failures.
    pub fn send<R>(&self, request: R) -> ResponseFuture<R::Response>
    where
        R: Request + Into<RequestBody>,
    {
        match self.version_for(R::API_KEY) {
            Some(version) => self.send_unchecked(request, version),
            None => ResponseFuture::failed(self.unsupported(R::API_KEY, None)),
        }
    }

    /// Sends `request` at `version`, like [`BrokerConnection::send`].
    ///
    /// The future fails with [`Error::UnsupportedVersion`] when `version` is outside the
    /// broker's advertised range (sending it would make the broker close the connection) or
    /// unknown to this client.
    pub fn send_with_version<R>(&self, request: R, version: i16) -> ResponseFuture<R::Response>
    where
        R: Request + Into<RequestBody>,
    {
        match self.check_version(R::API_KEY, version) {
            Ok(()) => self.send_unchecked(request, version),
            Err(e) => ResponseFuture::failed(e),
        }
    }

    /// Sends a request the broker does not answer (Produce with `acks=0`) at `version`.
    ///
    /// Like [`BrokerConnection::send`], the frame is queued before this returns. The future
    /// resolves once the frame has been written to the socket.
    pub fn send_no_response<R>(&self, request: R, version: i16) -> WriteFuture
    where
        R: Request + Into<RequestBody>,
    {
        let submitted = self
            .check_version(R::API_KEY, version)
            .and_then(|()| self.submit(R::API_KEY, version, request.into(), false));
        match submitted {
            Ok(Submitted::Written(rx)) => WriteFuture {
                state: WriteState::Waiting {
                    rx,
                    conn: self.inner.clone(),
                },
            },
            Ok(Submitted::Response(_)) => WriteFuture {
                state: WriteState::Failed(Some(Error::Protocol(
                    "internal error: a no-response request was queued for a response".into(),
                ))),
            },
            Err(e) => WriteFuture {
                state: WriteState::Failed(Some(e)),
            },
        }
    }

    /// Queues `request` at `version` without checking the broker's ranges (the handshake).
    fn send_unchecked<R>(&self, request: R, version: i16) -> ResponseFuture<R::Response>
    where
        R: Request + Into<RequestBody>,
    {
        match self.submit(R::API_KEY, version, request.into(), true) {
            Ok(Submitted::Response(rx)) => ResponseFuture {
                state: ResponseState::Waiting {
                    rx,
                    api_key: R::API_KEY,
                    version,
                    conn: self.inner.clone(),
                },
                _marker: PhantomData,
            },
            Ok(Submitted::Written(_)) => ResponseFuture::failed(Error::Protocol(
                "internal error: a request was queued without a response".into(),
            )),
            Err(e) => ResponseFuture::failed(e),
        }
    }

    fn check_version(&self, api: ApiKey, version: i16) -> Result<(), Error> {
        if !api.codec_versions().contains(version) {
            return Err(Error::UnsupportedVersion(format!(
                "{} v{version} is not known to this client (v{}-v{})",
                api.name(),
                api.codec_versions().min,
                api.codec_versions().max
            )));
        }
        match self.broker_range(api) {
            Some(range) if range.contains(version) => Ok(()),
            _ => Err(self.unsupported(api, Some(version))),
        }
    }

    fn unsupported(&self, api: ApiKey, version: Option<i16>) -> Error {
        let ours = api.valid_versions();
        let asked = version.map(|v| format!(" v{v}")).unwrap_or_default();
        let theirs = match self.broker_range(api) {
            Some(r) => format!("v{}-v{}", r.min, r.max),
            None => "no version".to_owned(),
        };
        Error::UnsupportedVersion(format!(
            "{}{asked}: broker {} supports {theirs}, this client v{}-v{}",
            api.name(),
            self.addr(),
            ours.min,
            ours.max
        ))
    }

    /// Encodes the frame, assigns the correlation id and queues it, all before returning.
    fn submit(
        &self,
        api_key: ApiKey,
        version: i16,
        body: RequestBody,
        expect_response: bool,
    ) -> Result<Submitted, Error> {
        // Encode outside the lock with a placeholder correlation id, patched in below.
        let header = RequestHeader {
            request_api_key: api_key.key(),
            request_api_version: version,
            correlation_id: 0,
            client_id: self.inner.client_id.clone(),
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &header, &body)?;
        drop(body);

        let shared = &self.inner.shared;
        let mut state = shared.lock();
        if let Some(reason) = &state.closed {
            return Err(shared.closed_error(reason));
        }
        let correlation_id = state.next_correlation_id;
        state.next_correlation_id = correlation_id.checked_add(1).unwrap_or(0);
        // Size prefix (4), api key (2), api version (2), then the correlation id.
        let Some(slot) = buf.get_mut(8..12) else {
            return Err(Error::Protocol(format!(
                "encoded {} request is too short",
                api_key.name()
            )));
        };
        slot.copy_from_slice(&correlation_id.to_be_bytes());
        let now = Instant::now();
        let (written, submitted) = if expect_response {
            let (tx, rx) = oneshot::channel();
            state.pending.push_back(Pending {
                correlation_id,
                api_key,
                version,
                enqueued: now,
                tx,
            });
            (None, Submitted::Response(rx))
        } else {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Submitted::Written(rx))
        };
        let outgoing = Outgoing {
            frame: buf.freeze(),
            written,
        };
        let queued = state
            .queue
            .as_ref()
            .is_some_and(|q| q.send(outgoing).is_ok());
        if !queued {
            // The writer is gone: the connection is closing.
            if expect_response {
                state.pending.pop_back();
            }
            return Err(shared.closed_error("the writer task has stopped"));
        }
        state.last_used = now;
        Ok(submitted)
    }

    /// Requests sent (or queued) that are still waiting for their response.
    pub fn in_flight(&self) -> usize {
        self.inner.shared.lock().pending.len()
    }

    /// Whether the connection is closed (by [`BrokerConnection::close`] or a failure). A
    /// closed connection never reopens; make a new one.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed.load(Ordering::Acquire)
    }

    /// Closes the connection: pending requests fail with [`Error::Connection`] and later
    /// sends fail at once. Idempotent.
    pub fn close(&self) {
        let shared = &self.inner.shared;
        shared.fail(
            None,
            Error::Connection {
                broker: shared.addr.clone(),
                reason: "connection closed by the client".into(),
            },
        );
    }

    /// When a request was last sent or a response last received (or the connection made),
    /// for closing idle connections.
    pub fn last_used(&self) -> Instant {
        self.inner.shared.lock().last_used
    }

    /// Whether `self` and `other` are handles to the same connection.
    pub fn ptr_eq(&self, other: &BrokerConnection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConnection")
            .field("addr", &self.addr())
            .field("node_id", &self.inner.node_id)
            .field("closed", &self.is_closed())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.shared.closed.load(Ordering::Acquire) {
            debug!(broker = %self.shared.addr, "last connection handle dropped; closing");
        }
        self.shared.fail(
            None,
            Error::Connection {
                broker: self.shared.addr.clone(),
                reason: "connection handle dropped".into(),
            },
        );
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close_reason(&self) -> String {
        self.lock()
            .closed
            .clone()
            .unwrap_or_else(|| "the request was dropped".into())
    }

    fn closed_error(&self, reason: &str) -> Error {
        Error::Connection {
            broker: self.addr.clone(),
            reason: format!("connection is closed ({reason})"),
        }
    }

    /// Closes the connection (once): the oldest pending request gets `front` (or `rest`),
    /// every other pending request gets `rest`, and both tasks are told to stop.
    fn fail(&self, front: Option<Error>, rest: Error) {
        let pending = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            state.closed = Some(front.as_ref().unwrap_or(&rest).to_string());
            state.queue = None;
            std::mem::take(&mut state.pending)
        };
        self.closed.store(true, Ordering::Release);
        self.shutdown.send_replace(true);
        let mut front = front;
        for p in pending {
            let err = front.take().unwrap_or_else(|| rest.clone());
            let _ = p.tx.send(Err(err));
        }
    }

    /// Closes the connection after the broker broke the protocol.
    fn fail_protocol(&self, what: String) {
        warn!(broker = %self.addr, error = %what, "closing connection: protocol error");
        self.fail(
            Some(Error::Protocol(format!("{}: {what}", self.addr))),
            Error::Connection {
                broker: self.addr.clone(),
                reason: format!("connection closed after a protocol error: {what}"),
            },
        );
    }

    /// Hands a response frame to the request it answers.
    fn dispatch(&self, frame: Bytes) -> Result<(), ()> {
        let Some(head) = frame.get(..4) else {
            self.fail_protocol(format!(
                "response frame of {} bytes has no header",
                frame.len()
            ));
            return Err(());
        };
        let correlation_id = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let mut state = self.lock();
        state.last_used = Instant::now();
        match state.pending.pop_front() {
            None => {
                drop(state);
                self.fail_protocol(format!(
                    "response with correlation id {correlation_id} but no request is pending"
                ));
                Err(())
            }
            Some(p) if p.correlation_id != correlation_id => {
                let expected = p.correlation_id;
                state.pending.push_front(p);
                drop(state);
                self.fail_protocol(format!(
                    "response correlation id {correlation_id} does not match the oldest \
                     pending request's {expected}"
                ));
                Err(())
            }
            Some(p) => {
                drop(state);
                // The future may have been dropped: the response is then discarded.
                let _ = p.tx.send(Ok(frame));
                Ok(())
            }
        }
    }

    /// When the oldest pending request times out (or, with none pending, a full timeout from
    /// now: anything sent later times out later still).
    fn timeout_deadline(&self) -> Instant {
        let state = self.lock();
        let oldest = state
            .pending
            .front()
            .map_or_else(Instant::now, |p| p.enqueued);
        saturating_add(oldest, self.request_timeout)
    }

    /// Closes the connection when the oldest pending request has waited too long.
    fn check_timeout(&self) -> bool {
        let expired = {
            let state = self.lock();
            state
                .pending
                .front()
                .filter(|p| p.enqueued.elapsed() >= self.request_timeout)
                .map(|p| (p.correlation_id, p.api_key, p.version, state.pending.len()))
        };
        let Some((correlation_id, api_key, version, pending)) = expired else {
            return false;
        };
        warn!(
            broker = %self.addr,
            api = api_key.name(),
            correlation_id,
            pending,
            "request timed out; closing connection"
        );
        self.fail(
            None,
            Error::Timeout(format!(
                "{} v{version} request to {} (correlation id {correlation_id}) got no response \
                 within {:?}; the connection was closed",
                api_key.name(),
                self.addr,
                self.request_timeout
            )),
        );
        true
    }
}

/// `instant + duration`, capped far in the future instead of overflowing.
pub(crate) fn saturating_add(instant: Instant, duration: Duration) -> Instant {
    instant
        .checked_add(duration)
        .or_else(|| instant.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(instant)
}

/// Resolves `addr` and connects to the first resolved address that accepts.
async fn open_socket(addr: &str, config: &ConnectionConfig) -> Result<TcpStream, Error> {
    let conn_err = |reason: String| Error::Connection {
        broker: addr.to_owned(),
        reason,
    };
    let addrs = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| conn_err(format!("cannot resolve address: {e}")))?;
    let mut last = None;
    for sa in addrs {
        match connect_one(sa, config).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                debug!(broker = addr, ip = %sa, error = %e, "TCP connect failed");
                last = Some(format!("{sa}: {e}"));
            }
        }
    }
    Err(conn_err(last.unwrap_or_else(|| {
        "the address resolved to nothing".into()
    })))
}

async fn connect_one(sa: SocketAddr, config: &ConnectionConfig) -> std::io::Result<TcpStream> {
    let socket = if sa.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Ok(size @ 1..) = u32::try_from(config.send_buffer_bytes) {
        socket.set_send_buffer_size(size)?;
    }
    if let Ok(size @ 1..) = u32::try_from(config.receive_buffer_bytes) {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(sa).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The writer task: takes queued frames and writes them, coalescing small ones.
async fn write_loop(
    shared: Arc<Shared>,
    mut wr: OwnedWriteHalf,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch: Vec<Outgoing> = Vec::new();
    let mut scratch = BytesMut::new();
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        let first = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            next = queue.recv() => match next {
                Some(m) => m,
                None => break,
            },
        };
        let mut bytes = first.frame.len();
        batch.push(first);
        while bytes < MAX_WRITE_BATCH {
            match queue.try_recv() {
                Ok(m) => {
                    bytes += m.frame.len();
                    batch.push(m);
                }
                Err(_) => break,
            }
        }
        let result = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            r = tokio::time::timeout(
                shared.request_timeout,
                write_batch(&mut wr, &batch, &mut scratch),
            ) => r,
        };
        match result {
            Ok(Ok(())) => {
                for m in batch.drain(..) {
                    if let Some(tx) = m.written {
                        let _ = tx.send(());
                    }
                }
                if scratch.capacity() > MAX_WRITE_BATCH * 2 {
                    scratch = BytesMut::new();
                }
            }
            Ok(Err(e)) => {
                debug!(broker = %shared.addr, error = %e, "write failed");
                shared.fail(
                    None,
                    Error::Connection {
                        broker: shared.addr.clone(),
                        reason: format!("write failed: {e}"),
                    },
                );
                break;
            }
            Err(_) => {
                warn!(broker = %shared.addr, "socket write timed out; closing connection");
                shared.fail(
                    None,
                    Error::Timeout(format!(
                        "writing to {} took longer than {:?}; the connection was closed",
                        shared.addr, shared.request_timeout
                    )),
                );
                break;
            }
        }
    }
    // Frames still queued are dropped; their `written` senders tell the waiting futures.
}

async fn write_batch(
    wr: &mut OwnedWriteHalf,
    batch: &[Outgoing],
    scratch: &mut BytesMut,
) -> std::io::Result<()> {
    scratch.clear();
    for m in batch {
        if m.frame.len() >= COALESCE_LIMIT {
            if !scratch.is_empty() {
                wr.write_all(scratch).await?;
                scratch.clear();
            }
            wr.write_all(&m.frame).await?;
        } else {
            scratch.extend_from_slice(&m.frame);
        }
    }
    if !scratch.is_empty() {
        wr.write_all(scratch).await?;
        scratch.clear();
    }
    Ok(())
}

/// The reader task: splits response frames off the socket, matches them to pending requests
/// and enforces the request timeout.
async fn read_loop(
    shared: Arc<Shared>,
    mut rd: OwnedReadHalf,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        loop {
            match split_frame(&mut buf, shared.max_response_size) {
                Ok(Some(frame)) => {
                    if shared.dispatch(frame).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.fail_protocol(format!("response frame rejected: {e}"));
                    return;
                }
            }
        }
        if *shutdown.borrow_and_update() {
            return;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 8 {
            buf.reserve(READ_CHUNK);
        }
        let deadline = shared.timeout_deadline();
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep_until(deadline.into()) => {
                if shared.check_timeout() {
                    return;
                }
            }
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) => {
                    debug!(broker = %shared.addr, "connection closed by the broker");
                    shared.fail(None, Error::Connection {
                        broker: shared.addr.clone(),
                        reason: "connection closed by the broker".into(),
                    });
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    debug!(broker = %shared.addr, error = %e, "read failed");
                    shared.fail(None, Error::Connection {
                        broker: shared.addr.clone(),
                        reason: format!("read failed: {e}"),
                    });
                    return;
                }
            },
        }
    }
}

/// Kafka's rule for ApiVersions client software fields:
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`. Other characters become `-`, and leading
/// or trailing non-alphanumerics are trimmed.
fn sanitize_software_field(s: &str) -> String {
    let replaced: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = replaced.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "unknown".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn parse_versions(response: &ApiVersionsResponse) -> Vec<(ApiKey, VersionRange)> {
    let mut versions: Vec<(ApiKey, VersionRange)> = response
        .api_keys
        .iter()
        .filter(|k| k.min_version <= k.max_version)
        .filter_map(|k| {
            ApiKey::from_i16(k.api_key).map(|api| {
                (
                    api,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
        })
        .collect();
    versions.sort_by_key(|(k, _)| *k);
    versions.dedup_by_key(|(k, _)| *k);
    versions
}

/// Decodes a response frame (header and body, no size prefix). Trailing bytes are an error.
fn decode_frame<T: Response>(frame: Bytes, api_key: ApiKey, version: i16) -> Result<T, Error> {
    let mut buf = frame;
    ResponseHeader::decode(&mut buf, api_key.response_header_version(version))?;
    if api_key == ApiKey::ApiVersions && version > 0 {
        // KIP-511: a broker that does not know our version answers UNSUPPORTED_VERSION in the
        // v0 format. Like the Java client, also fall back to v0 when the body does not parse.
        let code = buf.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        if code == Some(ErrorCode::UnsupportedVersion.code()) {
            return decode_body(buf, api_key, 0);
        }
        return decode_body(buf.clone(), api_key, version)
            .or_else(|e| decode_body(buf, api_key, 0).map_err(|_| e));
    }
    decode_body(buf, api_key, version)
}

fn decode_body<T: Response>(mut buf: Bytes, api_key: ApiKey, version: i16) -> Result<T, Error> {
    let body = T::decode(&mut buf, version)?;
    expect_end(&buf, api_key.name())?;
    Ok(body)
}

/// The response to one request: a future of the decoded response body.
///
/// Returned by [`BrokerConnection::send`] and [`BrokerConnection::send_with_version`]. The
/// request is already queued when this exists; the future only waits for the answer and
/// decodes it. It keeps the connection open while it lives.
///
/// # Cancel safety
/// Dropping the future does not cancel the request: it has been (or will be) sent, and its
/// response is read and discarded. Polling after completion yields an error rather than a
/// panic.
#[must_use = "the request is sent anyway, but its response is lost"]
pub struct ResponseFuture<T> {
    state: ResponseState,
    _marker: PhantomData<fn() -> T>,
}

enum ResponseState {
    Failed(Option<Error>),
    Waiting {
        rx: oneshot::Receiver<Result<Bytes, Error>>,
        api_key: ApiKey,
        version: i16,
        conn: Arc<Inner>,
    },
    Done,
}

impl<T> ResponseFuture<T> {
    fn failed(error: Error) -> Self {
        ResponseFuture {
            state: ResponseState::Failed(Some(error)),
            _marker: PhantomData,
        }
    }

    /// The version the request was sent at, or `None` when it could not be sent (the future
    /// then resolves to the error).
    pub fn version(&self) -> Option<i16> {
        match &self.state {
            ResponseState::Waiting { version, .. } => Some(*version),
            _ => None,
        }
    }
}

impl<T> fmt::Debug for ResponseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ResponseFuture");
        match &self.state {
            ResponseState::Failed(e) => d.field("error", e),
            ResponseState::Waiting {
                api_key, version, ..
            } => d.field("api", &api_key.name()).field("version", version),
            ResponseState::Done => d.field("done", &true),
        };
        d.finish()
    }
}

impl<T: Response> Future for ResponseFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.state {
            ResponseState::Failed(e) => e.take().map_or_else(polled_after_completion, Err),
            ResponseState::Done => polled_after_completion(),
            ResponseState::Waiting {
                rx,
                api_key,
                version,
                conn,
            } => match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Ok(frame))) => decode_frame::<T>(frame, *api_key, *version),
                Poll::Ready(Ok(Err(e))) => Err(e),
                Poll::Ready(Err(_)) => Err(conn.shared.closed_error(&conn.shared.close_reason())),
            },
        };
        this.state = ResponseState::Done;
        Poll::Ready(result)
    }
}

fn polled_after_completion<T>() -> Result<T, Error> {
    Err(Error::Protocol(
        "future polled after it completed".to_owned(),
    ))
}

/// Completion of a request sent without expecting a response
/// ([`BrokerConnection::send_no_response`]): resolves to `Ok(())` once the frame has been
/// written to the socket.
///
/// # Cancel safety
/// Dropping the future does not cancel the write; the request is sent anyway.
#[must_use = "the request is sent anyway, but write failures are lost"]
pub struct WriteFuture {
    state: WriteState,
}

enum WriteState {
    Failed(Option<Error>),
    Waiting {
        rx: oneshot::Receiver<()>,
        conn: Arc<Inner>,
    },
    Done,
}

impl fmt::Debug for WriteFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            WriteState::Failed(_) => "failed",
            WriteState::Waiting { .. } => "waiting",
            WriteState::Done => "done",
        };
        f.debug_struct("WriteFuture")
            .field("state", &state)
            .finish()
    }
}

impl Future for WriteFuture {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.state {
            WriteState::Failed(e) => e.take().map_or_else(polled_after_completion, Err),
            WriteState::Done => polled_after_completion(),
            WriteState::Waiting { rx, conn } => match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => Ok(()),
                Poll::Ready(Err(_)) => Err(conn.shared.closed_error(&conn.shared.close_reason())),
            },
        };
        this.state = WriteState::Done;
        Poll::Ready(result)
    }
}

/// A scriptable fake broker for tests: decodes every request, records it and answers what a
/// handler says.
#[cfg(test)]
pub(crate) mod fake {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::BytesMut;
    use kafka_wire::frame::{decode_request, encode_response, split_frame, DecodedRequest};
    use kafka_wire::messages::api_versions_response::ApiVersion;
    use kafka_wire::messages::ApiVersionsResponse;
    use kafka_wire::{ApiKey, ResponseBody};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// What the fake does with a request.
    pub(crate) enum Reply {
        /// Answer with this body at the request's version.
        Body(ResponseBody),
        /// Answer with this body at this version.
        BodyAt(ResponseBody, i16),
        /// Write these bytes (a size prefix included, or not).
        Raw(Vec<u8>),
        /// Do not answer.
        Silent,
        /// Close the connection.
        Close,
    }

    type Handler = dyn Fn(&DecodedRequest) -> Reply + Send + Sync;

    pub(crate) struct FakeBroker {
        pub(crate) addr: String,
        pub(crate) accepted: Arc<AtomicUsize>,
        pub(crate) ended: Arc<AtomicUsize>,
        pub(crate) requests: Arc<Mutex<Vec<DecodedRequest>>>,
    }

    impl FakeBroker {
        pub(crate) fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        /// Connections that have ended (closed by either side).
        pub(crate) fn ended(&self) -> usize {
            self.ended.load(Ordering::SeqCst)
        }

        pub(crate) fn requests(&self) -> Vec<DecodedRequest> {
            self.requests.lock().unwrap().clone()
        }
    }

    /// An ApiVersions answer listing every API at this client's valid versions.
    pub(crate) fn api_versions_ok() -> Reply {
        Reply::Body(
            ApiVersionsResponse {
                api_keys: ApiKey::ALL
                    .iter()
                    .map(|k| ApiVersion {
                        api_key: k.key(),
                        min_version: k.valid_versions().min,
                        max_version: k.valid_versions().max,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .into(),
        )
    }

    /// Answers ApiVersions like a broker knowing everything; everything else per `handler`.
    pub(crate) async fn start(
        handler: impl Fn(&DecodedRequest) -> Reply + Send + Sync + 'static,
    ) -> FakeBroker {
        start_raw(move |req| {
            if req.api_key == ApiKey::ApiVersions {
                api_versions_ok()
            } else {
                handler(req)
            }
        })
        .await
    }

    /// Answers every request per `handler`.
    pub(crate) async fn start_raw(
        handler: impl Fn(&DecodedRequest) -> Reply + Send + Sync + 'static,
    ) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let ended = Arc::new(AtomicUsize::new(0));
        let (acc, end, reqs) = (accepted.clone(), ended.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                let (handler, reqs, end) = (handler.clone(), reqs.clone(), end.clone());
                tokio::spawn(async move {
                    serve(stream, handler, reqs).await;
                    end.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        FakeBroker {
            addr,
            accepted,
            ended,
            requests,
        }
    }

    async fn serve(
        mut stream: TcpStream,
        handler: Arc<Handler>,
        requests: Arc<Mutex<Vec<DecodedRequest>>>,
    ) {
        let mut buf = BytesMut::new();
        loop {
            while let Ok(Some(frame)) = split_frame(&mut buf, 1 << 30) {
                let Ok(req) = decode_request(frame) else {
                    return;
                };
                requests.lock().unwrap().push(req.clone());
                let correlation_id = req.header.correlation_id;
                let version = req.header.request_api_version;
                let mut out = BytesMut::new();
                match handler(&req) {
                    Reply::Body(body) => {
                        encode_response(&mut out, correlation_id, version, &body).unwrap()
                    }
                    Reply::BodyAt(body, v) => {
                        encode_response(&mut out, correlation_id, v, &body).unwrap()
                    }
                    Reply::Raw(bytes) => out.extend_from_slice(&bytes),
                    Reply::Silent => {}
                    Reply::Close => return,
                }
                if !out.is_empty() && stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::BytesMut;
    use futures::future::join_all;
    use kafka_wire::frame::encode_response;
    use kafka_wire::messages::api_versions_response::ApiVersion;
    use kafka_wire::messages::metadata_request::MetadataRequestTopic;
    use kafka_wire::messages::metadata_response::MetadataResponseTopic;
    use kafka_wire::messages::{
        ApiVersionsRequest, ApiVersionsResponse, LeaderAndIsrRequest, MetadataRequest,
        MetadataResponse, ProduceRequest,
    };
    use kafka_wire::{ApiKey, ErrorCode, RequestBody, ResponseBody};

    use super::fake::{self, Reply};
    use super::*;

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            client_id: Some("connection-tests".into()),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            ..Default::default()
        }
    }

    fn metadata_all() -> MetadataRequest {
        MetadataRequest {
            topics: None,
            ..Default::default()
        }
    }

    fn metadata_for(topic: &str) -> MetadataRequest {
        MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    /// Answers a Metadata request with one topic per requested name (error code 3).
    fn echo_metadata(req: &kafka_wire::frame::DecodedRequest) -> Reply {
        let RequestBody::Metadata(m) = &req.body else {
            return Reply::Close;
        };
        let topics = m
            .topics
            .iter()
            .flatten()
            .map(|t| MetadataResponseTopic {
                error_code: ErrorCode::UnknownTopicOrPartition.code(),
                name: t.name.clone(),
                ..Default::default()
            })
            .collect();
        Reply::Body(
            MetadataResponse {
                topics,
                ..Default::default()
            }
            .into(),
        )
    }

    #[test]
    fn handles_and_futures_are_send_sync_static() {
        fn send_static<T: Send + 'static>() {}
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<BrokerConnection>();
        send_static::<ResponseFuture<MetadataResponse>>();
        send_static::<WriteFuture>();
        let far = saturating_add(Instant::now(), Duration::MAX);
        assert!(far > Instant::now());
    }

    #[tokio::test]
    async fn handshake_negotiates_versions_with_broker_lite() {
        let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
        let addr = broker.bootstrap_servers();
        let conn = BrokerConnection::connect(&addr, Some(1), &config())
            .await
            .unwrap();
        assert_eq!(conn.addr(), addr);
        assert_eq!(conn.node_id(), Some(1));
        assert!(!conn.is_closed());
        assert_eq!(
            conn.version_for(ApiKey::ApiVersions),
            Some(ApiKey::ApiVersions.valid_versions().max)
        );
        assert_eq!(
            conn.version_for(ApiKey::Metadata),
            Some(ApiKey::Metadata.valid_versions().max)
        );
        assert_eq!(
            conn.version_for(ApiKey::Produce),
            Some(ApiKey::Produce.valid_versions().max)
        );
        // broker-lite does not serve LeaderAndIsr.
        assert_eq!(conn.version_for(ApiKey::LeaderAndIsr), None);
        let versions = conn.broker_versions();
        assert!(versions.windows(2).all(|w| w[0].0 < w[1].0));
        let produce = versions
            .iter()
            .find(|(k, _)| *k == ApiKey::Produce)
            .unwrap();
        assert_eq!(produce.1.min, 3);

        let err = conn.send(LeaderAndIsrRequest::default()).await.unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion(_)), "{err}");
        let err = conn
            .send_with_version(metadata_all(), 99)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion(_)), "{err}");
        let err = conn
            .send_with_version(ProduceRequest::default(), 2)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion(_)), "{err}");
        // The connection is still usable.
        let fut = conn.send(metadata_all());
        assert_eq!(fut.version(), Some(ApiKey::Metadata.valid_versions().max));
        let md = fut.await.unwrap();
        assert_eq!(md.brokers.len(), 1);
        conn.close();
        assert!(conn.is_closed());
        let err = conn.send(metadata_all()).await.unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err}");
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn software_name_is_sanitized_for_kafkas_regex() {
        assert_eq!(sanitize_software_field("kafka-rs"), "kafka-rs");
        assert_eq!(sanitize_software_field("0.1.0-beta.1"), "0.1.0-beta.1");
        assert_eq!(sanitize_software_field("my app!"), "my-app");
        assert_eq!(sanitize_software_field("-x_y-"), "x-y");
        assert_eq!(sanitize_software_field("..."), "unknown");
        let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
        let cfg = ConnectionConfig {
            client_software_name: " my client ".into(),
            client_software_version: "1.0+build".into(),
            ..config()
        };
        // broker-lite answers INVALID_REQUEST to names Kafka would refuse.
        let conn = BrokerConnection::connect(&broker.bootstrap_servers(), None, &cfg)
            .await
            .unwrap();
        assert_eq!(conn.version_for(ApiKey::ApiVersions), Some(4));
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn pipelines_many_concurrent_requests_on_one_connection() {
        let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
        let conn = BrokerConnection::connect(&broker.bootstrap_servers(), Some(1), &config())
            .await
            .unwrap();
        // All queued before any is polled; two response types interleaved.
        let mut metadata = Vec::new();
        let mut versions = Vec::new();
        for _ in 0..100 {
            metadata.push(conn.send(metadata_all()));
            versions.push(conn.send(ApiVersionsRequest {
                client_software_name: "t".into(),
                client_software_version: "1".into(),
                ..Default::default()
            }));
        }
        assert!(conn.in_flight() <= 200);
        let (metadata, versions) = tokio::join!(join_all(metadata), join_all(versions));
        for m in metadata {
            assert_eq!(m.unwrap().brokers.len(), 1);
        }
        for v in versions {
            let v = v.unwrap();
            assert_eq!(v.error_code, 0);
            assert!(!v.api_keys.is_empty());
        }
        assert_eq!(conn.in_flight(), 0);
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn requests_go_on_the_wire_in_call_order_and_responses_match() {
        let broker = fake::start(echo_metadata).await;
        let conn = BrokerConnection::connect(&broker.addr, Some(1), &config())
            .await
            .unwrap();
        let futures: Vec<_> = (0..50)
            .map(|i| conn.send(metadata_for(&format!("topic-{i}"))))
            .collect();
        // Poll in reverse order: the wire order must still be the call order.
        let mut results = Vec::new();
        for (i, f) in futures.into_iter().enumerate().rev() {
            results.push((i, tokio::spawn(f)));
        }
        for (i, handle) in results {
            let resp = handle.await.unwrap().unwrap();
            assert_eq!(resp.topics.len(), 1);
            assert_eq!(resp.topics[0].name.as_deref(), Some(&*format!("topic-{i}")));
        }
        let requests = broker.requests();
        assert_eq!(requests[0].api_key, ApiKey::ApiVersions);
        assert_eq!(
            requests[0].header.client_id.as_deref(),
            Some("connection-tests")
        );
        let metadata: Vec<_> = requests[1..].iter().collect();
        assert_eq!(metadata.len(), 50);
        for (i, req) in metadata.iter().enumerate() {
            let RequestBody::Metadata(m) = &req.body else {
                panic!("not metadata")
            };
            let topics = m.topics.as_ref().unwrap();
            assert_eq!(topics[0].name.as_deref(), Some(&*format!("topic-{i}")));
        }
        assert!(metadata
            .windows(2)
            .all(|w| w[0].header.correlation_id < w[1].header.correlation_id));
    }

    #[tokio::test]
    async fn dropped_future_does_not_cancel_the_request() {
        let broker = fake::start(echo_metadata).await;
        let conn = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap();
        drop(conn.send(metadata_for("dropped")));
        let resp = conn.send(metadata_for("kept")).await.unwrap();
        assert_eq!(resp.topics[0].name.as_deref(), Some("kept"));
        assert_eq!(broker.requests().len(), 3);
        assert!(!conn.is_closed());
    }

    #[tokio::test]
    async fn request_timeout_closes_the_connection_and_fails_pending() {
        let broker = fake::start(|_| Reply::Silent).await;
        let cfg = ConnectionConfig {
            request_timeout: Duration::from_millis(300),
            ..config()
        };
        let conn = BrokerConnection::connect(&broker.addr, None, &cfg)
            .await
            .unwrap();
        let started = Instant::now();
        let first = conn.send(metadata_all());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = conn.send(metadata_all());
        assert_eq!(conn.in_flight(), 2);
        let (a, b) = tokio::join!(first, second);
        let elapsed = started.elapsed();
        assert!(matches!(a, Err(Error::Timeout(_))), "{a:?}");
        // Java's NetworkClient fails every in-flight request of the connection.
        assert!(matches!(b, Err(Error::Timeout(_))), "{b:?}");
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert!(conn.is_closed());
        assert_eq!(conn.in_flight(), 0);
        let later = Instant::now();
        let err = conn.send(metadata_all()).await.unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err}");
        assert!(later.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn connect_timeout_bounds_the_handshake() {
        // Accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let cfg = ConnectionConfig {
            connect_timeout: Duration::from_millis(200),
            ..config()
        };
        let started = Instant::now();
        let err = BrokerConnection::connect(&addr, None, &cfg)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        holder.abort();
    }

    #[tokio::test]
    async fn eof_fails_pending_requests_with_connection_error() {
        let broker = fake::start(|_| Reply::Close).await;
        let conn = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap();
        let a = conn.send(metadata_all());
        let b = conn.send(metadata_all());
        let (a, b) = tokio::join!(a, b);
        assert!(matches!(a, Err(Error::Connection { .. })), "{a:?}");
        assert!(matches!(b, Err(Error::Connection { .. })), "{b:?}");
        assert!(conn.is_closed());
        assert!(a.unwrap_err().is_retriable());
    }

    #[tokio::test]
    async fn connection_refused_is_a_connection_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = BrokerConnection::connect(&addr, None, &config())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err}");
        let err = BrokerConnection::connect("no-such-host.invalid:9092", None, &config())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err}");
    }

    #[tokio::test]
    async fn unsupported_api_versions_version_is_retried_at_the_brokers_highest() {
        // A broker knowing ApiVersions v0-v2 only: newer versions are answered in the v0
        // format with UNSUPPORTED_VERSION and its range (KIP-511).
        let broker = fake::start_raw(|req| {
            let v = req.header.request_api_version;
            if req.api_key == ApiKey::ApiVersions && v > 2 {
                Reply::BodyAt(
                    ApiVersionsResponse {
                        error_code: ErrorCode::UnsupportedVersion.code(),
                        api_keys: vec![ApiVersion {
                            api_key: ApiKey::ApiVersions.key(),
                            min_version: 0,
                            max_version: 2,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }
                    .into(),
                    0,
                )
            } else if req.api_key == ApiKey::ApiVersions {
                Reply::Body(
                    ApiVersionsResponse {
                        api_keys: vec![
                            ApiVersion {
                                api_key: ApiKey::ApiVersions.key(),
                                min_version: 0,
                                max_version: 2,
                                ..Default::default()
                            },
                            ApiVersion {
                                api_key: ApiKey::Metadata.key(),
                                min_version: 0,
                                max_version: 8,
                                ..Default::default()
                            },
                            // Unknown to us: ignored.
                            ApiVersion {
                                api_key: 32000,
                                min_version: 0,
                                max_version: 1,
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }
                    .into(),
                )
            } else {
                echo_metadata(req)
            }
        })
        .await;
        let conn = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap();
        let tried: Vec<i16> = broker
            .requests()
            .iter()
            .map(|r| r.header.request_api_version)
            .collect();
        assert_eq!(tried, vec![ApiKey::ApiVersions.valid_versions().max, 2]);
        assert_eq!(conn.version_for(ApiKey::ApiVersions), Some(2));
        assert_eq!(conn.version_for(ApiKey::Metadata), Some(8));
        assert_eq!(conn.version_for(ApiKey::Produce), None);
        assert_eq!(conn.broker_versions().len(), 2);
        let resp = conn.send(metadata_for("t")).await.unwrap();
        assert_eq!(resp.topics[0].name.as_deref(), Some("t"));
        assert_eq!(broker.requests()[2].header.request_api_version, 8);
    }

    #[tokio::test]
    async fn api_versions_error_fails_the_handshake() {
        let broker = fake::start_raw(|_| {
            Reply::Body(
                ApiVersionsResponse {
                    error_code: ErrorCode::InvalidRequest.code(),
                    ..Default::default()
                }
                .into(),
            )
        })
        .await;
        let err = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidRequest), "{err}");
    }

    #[tokio::test]
    async fn oversized_response_is_rejected_from_its_size_prefix() {
        // Only the 4-byte size prefix of a 1 GiB frame is ever sent: a client waiting for
        // the body would hang until the request timeout.
        let broker = fake::start(|_| Reply::Raw(vec![0x40, 0, 0, 0])).await;
        let cfg = ConnectionConfig {
            max_response_size: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            ..config()
        };
        let conn = BrokerConnection::connect(&broker.addr, None, &cfg)
            .await
            .unwrap();
        let started = Instant::now();
        let a = conn.send(metadata_all());
        let b = conn.send(metadata_all());
        let (a, b) = tokio::join!(a, b);
        assert!(started.elapsed() < Duration::from_secs(5));
        let a = a.unwrap_err();
        assert!(
            matches!(&a, Error::Protocol(m) if m.contains("1073741824")),
            "{a}"
        );
        assert!(matches!(b, Err(Error::Connection { .. })), "{b:?}");
        assert!(conn.is_closed());
    }

    #[tokio::test]
    async fn correlation_id_mismatch_closes_the_connection() {
        let broker = fake::start(|req| {
            let mut out = BytesMut::new();
            let body: ResponseBody = MetadataResponse::default().into();
            encode_response(
                &mut out,
                req.header.correlation_id + 1000,
                req.header.request_api_version,
                &body,
            )
            .unwrap();
            Reply::Raw(out.to_vec())
        })
        .await;
        let conn = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap();
        let err = conn.send(metadata_all()).await.unwrap_err();
        assert!(
            matches!(&err, Error::Protocol(m) if m.contains("correlation")),
            "{err}"
        );
        assert!(conn.is_closed());
    }

    #[tokio::test]
    async fn trailing_bytes_fail_only_that_response() {
        let broker = fake::start(|req| {
            let RequestBody::Metadata(m) = &req.body else {
                return Reply::Close;
            };
            let mut out = BytesMut::new();
            let body: ResponseBody = MetadataResponse::default().into();
            encode_response(
                &mut out,
                req.header.correlation_id,
                req.header.request_api_version,
                &body,
            )
            .unwrap();
            if m.topics.is_none() {
                // One extra byte, counted in the size prefix.
                out.extend_from_slice(&[0]);
                let size = i32::try_from(out.len() - 4).unwrap();
                out[..4].copy_from_slice(&size.to_be_bytes());
            }
            Reply::Raw(out.to_vec())
        })
        .await;
        let conn = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap();
        let err = conn.send(metadata_all()).await.unwrap_err();
        assert!(
            matches!(&err, Error::Protocol(m) if m.contains("trailing")),
            "{err}"
        );
        assert!(!conn.is_closed());
        conn.send(metadata_for("x")).await.unwrap();
    }

    #[tokio::test]
    async fn no_response_requests_resolve_once_written() {
        let broker = fake::start(|req| match req.api_key {
            ApiKey::Produce => Reply::Silent,
            _ => echo_metadata(req),
        })
        .await;
        let conn = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap();
        let produce = ProduceRequest {
            acks: 0,
            timeout_ms: 1000,
            ..Default::default()
        };
        conn.send_no_response(produce.clone(), 9).await.unwrap();
        assert_eq!(conn.in_flight(), 0);
        // The next response is matched to the next request, not to the produce.
        let resp = conn.send(metadata_for("after")).await.unwrap();
        assert_eq!(resp.topics[0].name.as_deref(), Some("after"));
        let requests = broker.requests();
        assert_eq!(requests[1].api_key, ApiKey::Produce);
        assert_eq!(requests[1].header.request_api_version, 9);
        assert_eq!(requests[2].api_key, ApiKey::Metadata);
        let err = conn
            .send_no_response(produce.clone(), 99)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion(_)), "{err}");
        conn.close();
        let err = conn.send_no_response(produce, 9).await.unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err}");
    }

    #[tokio::test]
    async fn dropping_every_handle_closes_the_connection() {
        let broker = fake::start(echo_metadata).await;
        let conn = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap();
        // A future keeps the connection alive.
        let fut = conn.send(metadata_for("alive"));
        drop(conn);
        let resp = fut.await.unwrap();
        assert_eq!(resp.topics[0].name.as_deref(), Some("alive"));
        // The last handle is gone: the broker sees the connection end.
        let deadline = Instant::now() + Duration::from_secs(5);
        while broker.ended() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(broker.ended(), 1);
    }

    #[tokio::test]
    async fn last_used_advances_with_requests() {
        let broker = fake::start(echo_metadata).await;
        let conn = BrokerConnection::connect(&broker.addr, None, &config())
            .await
            .unwrap();
        let before = conn.last_used();
        tokio::time::sleep(Duration::from_millis(20)).await;
        conn.send(metadata_all()).await.unwrap();
        assert!(conn.last_used() > before);
        assert!(format!("{conn:?}").contains("BrokerConnection"));
    }
}
