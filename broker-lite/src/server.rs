//! The network layer: a tokio accept loop and one task per connection.
//!
//! Like Kafka's `SocketServer`, a connection's requests are handled one at a time, in order,
//! so responses come back in request order (Kafka's per-connection ordering guarantee).
//! Clients may pipeline: frames already read are processed back to back, and their responses
//! are written with one syscall when no further complete frame is buffered.
//!
//! The size prefix of every frame is checked against `socket.request.max.bytes` before the
//! frame is read; idle connections are closed after `connections.max.idle.ms`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_wire::frame::{split_frame, SplicedBuf};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{BrokerConfig, ConfigError};
use crate::faults::FaultInjector;
use crate::handlers::{self, Outcome};
use crate::state::{AdminError, BrokerState};

/// Why a broker could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Binding or setting up the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The data directory could not be opened or recovered.
    #[error("cannot open the data directory: {0}")]
    Storage(#[from] AdminError),
    /// A temporary data directory could not be created.
    #[error("cannot create a temporary data directory: {0}")]
    TempDir(std::io::Error),
    /// A config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Builds and starts a broker.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), broker_lite::StartError> {
/// let broker = broker_lite::Broker::builder()
///     .listen("127.0.0.1:0".parse().unwrap())
///     .config("num.partitions", "3")?
///     .start()
///     .await?;
/// println!("bootstrap.servers={}", broker.bootstrap_servers());
/// broker.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct BrokerBuilder {
    config: BrokerConfig,
}

impl BrokerBuilder {
    /// The address to listen on (port 0 picks an ephemeral port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// The host and port advertised to clients (default: the bound address).
    pub fn advertised_listener(mut self, host: impl Into<String>, port: u16) -> Self {
        self.config.advertised = Some((host.into(), port));
        self
    }

    /// The data directory (default: a temporary directory removed on shutdown).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// This broker's node id (default 1).
    pub fn node_id(mut self, id: i32) -> Self {
        self.config.node_id = id;
        self
    }

    /// Sets a Kafka broker config such as `num.partitions` or `log.segment.bytes`.
    ///
    /// # Errors
    /// [`StartError::Config`] for an unknown key or a bad value.
    pub fn config(mut self, key: &str, value: &str) -> Result<Self, StartError> {
        self.config.set(key, value)?;
        Ok(self)
    }

    /// Uses a complete [`BrokerConfig`].
    pub fn with_config(mut self, config: BrokerConfig) -> Self {
        self.config = config;
        self
    }

    /// Opens the data directory (recovering every log), binds the listener and starts
    /// serving.
    ///
    /// # Errors
    /// [`StartError`] when the address cannot be bound or the data cannot be opened.
    pub async fn start(self) -> Result<Broker, StartError> {
        let started = Instant::now();
        let config = self.config;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let (temp_dir, data_dir) = match &config.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("broker-lite-")
                    .tempdir()
                    .map_err(StartError::TempDir)?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let (host, port) = config
            .advertised
            .clone()
            .unwrap_or_else(|| (local.ip().to_string(), local.port()));
        let state =
            handlers::blocking(move || BrokerState::open(config, data_dir, host, port as i32))
                .await?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, state.clone(), shutdown_rx.clone()));
        let retention = tokio::spawn(retention_loop(state.clone(), shutdown_rx.clone()));
        let expiration = tokio::spawn(producer_expiration_loop(state.clone(), shutdown_rx.clone()));
        let group_timers = tokio::spawn(group_timer_loop(state.clone(), shutdown_rx.clone()));
        let txn_timers = tokio::spawn(txn_timer_loop(state.clone(), shutdown_rx));
        info!(
            address = %local,
            node_id = state.config.node_id,
            data_dir = %state.data_dir.display(),
            startup_ms = started.elapsed().as_millis() as u64,
            "broker-lite started"
        );
        Ok(Broker {
            state,
            local,
            shutdown_tx,
            accept,
            retention,
            expiration,
            group_timers,
            txn_timers,
            _temp_dir: temp_dir,
        })
    }
}

/// A running broker. Dropping it without [`Broker::shutdown`] stops serving abruptly (like a
/// crash, which the next start recovers from).
#[derive(Debug)]
pub struct Broker {
    state: Arc<BrokerState>,
    local: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    retention: tokio::task::JoinHandle<()>,
    expiration: tokio::task::JoinHandle<()>,
    group_timers: tokio::task::JoinHandle<()>,
    txn_timers: tokio::task::JoinHandle<()>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl Broker {
    /// A builder with Kafka's defaults, listening on an ephemeral loopback port with a
    /// temporary data directory.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// Starts a broker on an ephemeral loopback port with a temporary data directory.
    ///
    /// # Errors
    /// See [`BrokerBuilder::start`].
    pub async fn start_ephemeral() -> Result<Broker, StartError> {
        Broker::builder().start().await
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// `host:port` to use as `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!(
            "{}:{}",
            self.state.advertised_host, self.state.advertised_port
        )
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// The fault injector of this broker, for tests: queue errors for the next requests of an
    /// API or partition, delay responses, or drop connections after handling a request. See
    /// [`crate::faults`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), broker_lite::StartError> {
    /// use kafka_wire::{ApiKey, ErrorCode};
    /// let broker = broker_lite::Broker::start_ephemeral().await?;
    /// // The next Produce is appended, but its response is lost: the client retries.
    /// broker.faults().drop_connection_after(ApiKey::Produce, 1);
    /// broker.faults().push_error(ApiKey::Metadata, ErrorCode::RequestTimedOut);
    /// # Ok(()) }
    /// ```
    pub fn faults(&self) -> FaultInjector {
        self.state.faults().clone()
    }

    /// Stops accepting connections, lets every connection finish the request it is handling
    /// (its response is written), then flushes and closes every log.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        // Long-polling fetches answer with what they have instead of holding the connection
        // until max_wait_ms.
        self.state
            .shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
        self.state.data_arrived.notify_waiters();
        // JoinGroup/SyncGroup requests waiting for a rebalance are answered (NOT_COORDINATOR)
        // so that their connections can finish.
        self.state.groups().shutdown();
        // Later transaction requests get NOT_COORDINATOR; the timer stops writing.
        self.state.txns().shutdown();
        if let Err(e) = self.accept.await {
            warn!(error = %e, "accept loop ended abnormally");
        }
        self.retention.abort();
        self.expiration.abort();
        self.group_timers.abort();
        self.txn_timers.abort();
        let state = self.state.clone();
        handlers::blocking(move || state.close_all()).await;
        info!("broker-lite stopped");
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<BrokerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, peer, state.clone(), shutdown.clone()));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn retention_loop(state: Arc<BrokerState>, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_millis(
        state
            .config
            .get_i64("log.retention.check.interval.ms")
            .max(10) as u64,
    );
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                let s = state.clone();
                handlers::blocking(move || s.apply_retention(crate::state::now_ms())).await;
            }
        }
    }
}

/// Kafka's periodic producer expiration check (`producer.id.expiration.check.interval.ms`):
/// forgets idempotent producers idle for `producer.id.expiration.ms`.
async fn producer_expiration_loop(state: Arc<BrokerState>, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_millis(
        state
            .config
            .get_i64("producer.id.expiration.check.interval.ms")
            .max(10) as u64,
    );
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                let s = state.clone();
                handlers::blocking(move || s.remove_expired_producers(crate::state::now_ms())).await;
            }
        }
    }
}

/// The group coordinator's timers (rebalance delays and timeouts, sessions), checked every
/// 50 ms; due ones fire off the async workers (they may append to `__consumer_offsets`).
async fn group_timer_loop(state: Arc<BrokerState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                let now = crate::state::now_ms();
                if state.groups().has_due_timers(now) {
                    let s = state.clone();
                    handlers::blocking(move || s.groups().tick(&s, crate::state::now_ms())).await;
                }
            }
        }
    }
}

/// The transaction coordinator's timer (pending markers, timed-out transactions, expired
/// transactional ids), checked every 100 ms; due work runs off the async workers (it appends
/// to logs).
async fn txn_timer_loop(state: Arc<BrokerState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                let now = crate::state::now_ms();
                if state.txns().has_due_work(&state, now) {
                    let s = state.clone();
                    handlers::blocking(move || s.txns().tick(&s, crate::state::now_ms())).await;
                }
            }
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: Arc<BrokerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    debug!(%peer, "connection opened");
    let max_frame = state.config.max_request_size();
    let idle = Duration::from_millis(state.config.get_i64("connections.max.idle.ms").max(1) as u64);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = SplicedBuf::with_capacity(64 * 1024);
    loop {
        // Handle every complete frame already buffered, in order.
        loop {
            let frame = match split_frame(&mut rbuf, max_frame) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    // Kafka closes the connection on an oversized or negative size.
                    warn!(%peer, error = %e, "closing connection: bad frame size");
                    return;
                }
            };
            match handlers::handle(&state, frame, peer, &mut wbuf).await {
                Outcome::Continue => {}
                Outcome::Close => {
                    let _ = write_out(&mut stream, &mut wbuf).await;
                    return;
                }
            }
            if wbuf.len() >= 1024 * 1024 {
                if let Err(e) = write_out(&mut stream, &mut wbuf).await {
                    debug!(%peer, error = %e, "write failed");
                    return;
                }
            }
        }
        if !wbuf.is_empty() {
            if let Err(e) = write_out(&mut stream, &mut wbuf).await {
                debug!(%peer, error = %e, "write failed");
                return;
            }
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            read = tokio::time::timeout(idle, stream.read_buf(&mut rbuf)) => match read {
                Err(_) => {
                    debug!(%peer, "closing idle connection");
                    return;
                }
                Ok(Ok(0)) => {
                    debug!(%peer, "connection closed by peer");
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "read failed");
                    return;
                }
            },
        }
    }
}

/// Linux's `IOV_MAX`: a vectored write takes at most this many slices.
const MAX_IO_SLICES: usize = 1024;

/// Writes everything in `out` (encoded bytes and spliced records, in order) with vectored
/// writes, then empties it and gives the spliced read buffers back to the storage's pool.
///
/// # Cancel safety
/// Not cancel safe: cancelled midway, part of `out` may have been written.
async fn write_out(stream: &mut TcpStream, out: &mut SplicedBuf) -> std::io::Result<()> {
    {
        let mut slices = out.io_slices();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = rest.len().min(MAX_IO_SLICES);
            let written = stream.write_vectored(&rest[..n]).await?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            std::io::IoSlice::advance_slices(&mut rest, written);
        }
    }
    for records in out.clear() {
        crate::storage::recycle_read_buffer(records);
    }
    Ok(())
}
