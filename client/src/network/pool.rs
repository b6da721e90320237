//! [`ConnectionPool`]: one [`BrokerConnection`] per broker, made on demand, with reconnect
//! backoff and idle expiry.
//!
//! Like Kafka's Java `ClusterConnectionStates`: concurrent callers wanting the same broker
//! share one connection attempt; after a failed attempt, further attempts fail fast with the
//! last error until a backoff has passed. The backoff grows exponentially from
//! `reconnect.backoff.ms` to `reconnect.backoff.max.ms` with ±20% jitter
//! ([`ExponentialBackoff`]) and is reset by a successful connection.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use tracing::{debug, warn};

use super::connection::{saturating_add, BrokerConnection, ConnectionConfig};
use crate::error::Error;

/// Java's `ExponentialBackoff`: `initial * multiplier^attempts`, capped at `max`, times a
/// random factor in `[1 - jitter, 1 + jitter)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialBackoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
    exp_max: f64,
}

impl ExponentialBackoff {
    /// A backoff from `initial` growing by `multiplier` per attempt up to `max`, with
    /// `jitter` (a fraction, such as `0.2`) applied to every value. `initial` is capped at `max`,
    /// as in Java; when `max <= initial`
    /// the backoff is always `initial`, without jitter (as in Java).
    pub fn new(initial: Duration, multiplier: f64, max: Duration, jitter: f64) -> Self {
        // Java: `initialInterval = Math.min(maxInterval, initialInterval)`.
        let initial = initial.min(max);
        let initial_ms = initial.as_secs_f64() * 1000.0;
        let max_ms = max.as_secs_f64() * 1000.0;
        let exp_max = if max > initial && multiplier > 1.0 {
            (max_ms / initial_ms.max(1.0)).ln() / multiplier.ln()
        } else {
            0.0
        };
        ExponentialBackoff {
            initial,
            max,
            multiplier,
            jitter: jitter.clamp(0.0, 1.0),
            exp_max,
        }
    }

    /// Kafka's reconnect backoff: multiplier 2, jitter 20%.
    pub fn reconnect(initial: Duration, max: Duration) -> Self {
        Self::new(initial, 2.0, max, 0.2)
    }

    /// The backoff after `attempts` earlier failures (0 for the first failure).
    pub fn backoff(&self, attempts: u32) -> Duration {
        self.backoff_with_jitter(attempts, random_unit())
    }

    /// [`backoff`](Self::backoff) with the jitter drawn from `unit` (in `[0, 1)`) instead of
    /// at random, for callers that must get the same value every time they ask (the
    /// producer's accumulator recomputes a batch's backoff on every ready check).
    pub fn backoff_with_jitter(&self, attempts: u32, unit: f64) -> Duration {
        if self.exp_max <= 0.0 {
            return self.initial;
        }
        let exp = f64::from(attempts).min(self.exp_max);
        let term = self.initial.as_secs_f64() * self.multiplier.powf(exp);
        let factor = if self.jitter > f64::MIN_POSITIVE {
            1.0 - self.jitter + 2.0 * self.jitter * unit.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let value = term * factor;
        if !value.is_finite() || value >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(value.max(0.0))
        }
    }
}

/// A uniform random number in `[0, 1)`, from std's randomly keyed hasher.
pub(crate) fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Broker connections, one per node id (plus bootstrap connections), made on demand.
///
/// Cheap to clone: clones share the pool. `Send + Sync`.
#[derive(Clone)]
pub struct ConnectionPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    bootstrap: Vec<String>,
    config: ConnectionConfig,
    backoff: ExponentialBackoff,
    connections_max_idle: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
    next_attempt: AtomicU64,
}

/// What a pooled connection is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A broker known by node id.
    Node(i32),
    /// A bootstrap address (node id unknown).
    Bootstrap(String),
}

type ConnectAttempt = Shared<BoxFuture<'static, Result<BrokerConnection, Error>>>;

struct Entry {
    addr: String,
    conn: Option<BrokerConnection>,
    /// The attempt in progress, with its id.
    connecting: Option<(u64, ConnectAttempt)>,
    /// Failed attempts since the last success.
    failures: u32,
    backoff_until: Option<Instant>,
    last_error: Option<Error>,
}

impl Entry {
    fn new(addr: &str) -> Self {
        Entry {
            addr: addr.to_owned(),
            conn: None,
            connecting: None,
            failures: 0,
            backoff_until: None,
            last_error: None,
        }
    }

    /// The open connection, forgetting a closed one.
    fn open(&mut self) -> Option<BrokerConnection> {
        if self.conn.as_ref().is_some_and(BrokerConnection::is_closed) {
            self.conn = None;
        }
        self.conn.clone()
    }

    fn backing_off(&self, now: Instant) -> bool {
        self.backoff_until.is_some_and(|until| now < until)
    }
}

impl ConnectionPool {
    /// A pool connecting with `config`. `bootstrap` (`host:port` each) is what
    /// [`ConnectionPool::any`] falls back to; `reconnect_backoff` and `reconnect_backoff_max`
    /// are `reconnect.backoff.ms` and `reconnect.backoff.max.ms`; `connections_max_idle` is
    /// `connections.max.idle.ms`, applied by [`ConnectionPool::close_idle`].
    pub fn new(
        bootstrap: Vec<String>,
        config: ConnectionConfig,
        reconnect_backoff: Duration,
        reconnect_backoff_max: Duration,
        connections_max_idle: Duration,
    ) -> Self {
        ConnectionPool {
            inner: Arc::new(PoolInner {
                bootstrap,
                config,
                backoff: ExponentialBackoff::reconnect(reconnect_backoff, reconnect_backoff_max),
                connections_max_idle,
                entries: Mutex::new(HashMap::new()),
                next_attempt: AtomicU64::new(0),
            }),
        }
    }

    /// The connection settings.
    pub fn config(&self) -> &ConnectionConfig {
        &self.inner.config
    }

    /// The open connection to broker `node_id` at `addr`, connecting when there is none (or
    /// the one there is has closed, or the broker's address changed).
    ///
    /// Concurrent callers share one connection attempt. The attempt runs in its own task, so
    /// it completes (and its outcome is recorded) even when every caller gives up waiting.
    ///
    /// # Errors
    /// The connection error ([`BrokerConnection::connect`]). Within the backoff after a
    /// failed attempt, the last error is returned at once without connecting.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future abandons only the wait.
    pub async fn get(&self, node_id: i32, addr: &str) -> Result<BrokerConnection, Error> {
        self.get_key(Key::Node(node_id), addr, Some(node_id)).await
    }

    async fn get_key(
        &self,
        key: Key,
        addr: &str,
        node_id: Option<i32>,
    ) -> Result<BrokerConnection, Error> {
        let attempt = {
            let mut entries = self.inner.lock();
            let entry = entries
                .entry(key.clone())
                .or_insert_with(|| Entry::new(addr));
            if entry.addr != addr {
                debug!(
                    ?key,
                    old = %entry.addr,
                    new = addr,
                    "broker address changed; reconnecting"
                );
                if let Some(old) = entry.conn.take() {
                    old.close();
                }
                *entry = Entry::new(addr);
            }
            if let Some(conn) = entry.open() {
                return Ok(conn);
            }
            match &entry.connecting {
                Some((_, attempt)) if attempt.peek().is_none() => attempt.clone(),
                _ => {
                    // A finished attempt has already recorded its outcome.
                    entry.connecting = None;
                    if entry.backing_off(Instant::now()) {
                        return Err(entry.last_error.clone().unwrap_or_else(|| {
                            Error::Connection {
                                broker: addr.to_owned(),
                                reason: "backing off after a failed connection attempt".into(),
                            }
                        }));
                    }
                    let id = self.inner.next_attempt.fetch_add(1, Ordering::Relaxed);
                    let attempt = self.spawn_connect(key, addr.to_owned(), node_id, id);
                    entry.connecting = Some((id, attempt.clone()));
                    attempt
                }
            }
        };
        attempt.await
    }

    /// Starts a connection attempt in its own task, which records its outcome in the pool.
    fn spawn_connect(
        &self,
        key: Key,
        addr: String,
        node_id: Option<i32>,
        id: u64,
    ) -> ConnectAttempt {
        let pool = Arc::downgrade(&self.inner);
        let config = self.inner.config.clone();
        let broker = addr.clone();
        let task = tokio::spawn(async move {
            let result = BrokerConnection::connect(&addr, node_id, &config).await;
            if let Some(pool) = Weak::upgrade(&pool) {
                pool.record(&key, id, &result);
            }
            result
        });
        async move {
            task.await.unwrap_or_else(|e| {
                Err(Error::Connection {
                    broker,
                    reason: format!("connection task failed: {e}"),
                })
            })
        }
        .boxed()
        .shared()
    }

    /// Any open connection (the one with the fewest requests in flight), else a new one to
    /// the first bootstrap address, then known broker, that accepts (skipping those in
    /// backoff). For requests any broker can answer, such as Metadata.
    ///
    /// # Errors
    /// The last connection error when no broker could be reached.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future abandons only the wait.
    pub async fn any(&self) -> Result<BrokerConnection, Error> {
        let now = Instant::now();
        let mut candidates: Vec<(Key, String, Option<i32>)> = Vec::new();
        let mut backing_off_error = None;
        {
            let mut entries = self.inner.lock();
            let least_loaded = entries
                .values_mut()
                .filter_map(Entry::open)
                .min_by_key(BrokerConnection::in_flight);
            if let Some(conn) = least_loaded {
                return Ok(conn);
            }
            let mut nodes: Vec<(i32, String)> = entries
                .iter()
                .filter_map(|(k, e)| match k {
                    Key::Node(id) => Some((*id, e.addr.clone())),
                    Key::Bootstrap(_) => None,
                })
                .collect();
            nodes.sort_unstable();
            let all = self
                .inner
                .bootstrap
                .iter()
                .map(|a| (Key::Bootstrap(a.clone()), a.clone(), None))
                .chain(
                    nodes
                        .into_iter()
                        .map(|(id, a)| (Key::Node(id), a, Some(id))),
                );
            for (key, addr, node_id) in all {
                match entries.get(&key) {
                    Some(e) if e.backing_off(now) && e.addr == addr => {
                        if backing_off_error.is_none() {
                            backing_off_error = e.last_error.clone();
                        }
                    }
                    _ => candidates.push((key, addr, node_id)),
                }
            }
        }
        let mut last_error = None;
        for (key, addr, node_id) in candidates {
            match self.get_key(key, &addr, node_id).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error
            .or(backing_off_error)
            .unwrap_or_else(|| Error::Connection {
                broker: self.inner.bootstrap.join(","),
                reason: if self.inner.bootstrap.is_empty() {
                    "no bootstrap servers configured".into()
                } else {
                    "no broker could be reached".into()
                },
            }))
    }

    /// The open connection to broker `node_id`, without connecting.
    pub fn connected(&self, node_id: i32) -> Option<BrokerConnection> {
        self.inner
            .lock()
            .get_mut(&Key::Node(node_id))
            .and_then(Entry::open)
    }

    /// Whether broker `node_id` has no open connection and its last connection attempt
    /// failed less than a backoff before `now`: [`ConnectionPool::get`] would fail at once.
    pub fn is_backing_off(&self, node_id: i32, now: Instant) -> bool {
        self.inner
            .lock()
            .get_mut(&Key::Node(node_id))
            .is_some_and(|e| e.open().is_none() && e.backing_off(now))
    }

    /// Closes connections with no request in flight that have not been used for
    /// `connections_max_idle` before `now`, and forgets closed ones.
    pub fn close_idle(&self, now: Instant) {
        let max_idle = self.inner.connections_max_idle;
        let mut entries = self.inner.lock();
        for (key, entry) in entries.iter_mut() {
            let Some(conn) = entry.open() else { continue };
            if conn.in_flight() == 0 && now.saturating_duration_since(conn.last_used()) >= max_idle
            {
                debug!(?key, broker = %entry.addr, "closing idle connection");
                conn.close();
                entry.conn = None;
            }
        }
    }

    /// Closes every connection and forgets every broker (and backoff). The pool stays usable:
    /// later calls connect again. Attempts in progress complete, but their connections are
    /// not pooled.
    pub fn close_all(&self) {
        let entries = std::mem::take(&mut *self.inner.lock());
        for (_, entry) in entries {
            if let Some(conn) = entry.conn {
                conn.close();
            }
        }
    }
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the outcome of attempt `id`, unless it was superseded.
    fn record(&self, key: &Key, id: u64, result: &Result<BrokerConnection, Error>) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(key) else {
            return;
        };
        if !matches!(entry.connecting, Some((current, _)) if current == id) {
            return;
        }
        entry.connecting = None;
        match result {
            Ok(conn) => {
                entry.conn = Some(conn.clone());
                entry.failures = 0;
                entry.backoff_until = None;
                entry.last_error = None;
            }
            Err(e) => {
                let backoff = self.backoff.backoff(entry.failures);
                entry.failures = entry.failures.saturating_add(1);
                entry.backoff_until = Some(saturating_add(Instant::now(), backoff));
                entry.last_error = Some(e.clone());
                warn!(
                    ?key,
                    broker = %entry.addr,
                    error = %e,
                    failures = entry.failures,
                    backoff_ms = backoff.as_millis() as u64,
                    "connection attempt failed; backing off"
                );
            }
        }
    }
}

impl fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.inner.lock();
        let open = entries
            .values()
            .filter(|e| e.conn.as_ref().is_some_and(|c| !c.is_closed()))
            .count();
        f.debug_struct("ConnectionPool")
            .field("bootstrap", &self.inner.bootstrap)
            .field("brokers", &entries.len())
            .field("open", &open)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use futures::future::join_all;
    use kafka_wire::messages::MetadataRequest;

    use super::*;
    use crate::network::connection::fake::{self, Reply};

    fn pool(bootstrap: Vec<String>, backoff: Duration, backoff_max: Duration) -> ConnectionPool {
        ConnectionPool::new(
            bootstrap,
            ConnectionConfig {
                connect_timeout: Duration::from_secs(5),
                ..Default::default()
            },
            backoff,
            backoff_max,
            Duration::from_secs(540),
        )
    }

    async fn refused_addr() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        addr
    }

    fn metadata_all() -> MetadataRequest {
        MetadataRequest {
            topics: None,
            ..Default::default()
        }
    }

    #[test]
    fn pool_is_send_sync() {
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        send_sync::<ConnectionPool>();
    }

    #[test]
    fn exponential_backoff_follows_java() {
        let b = ExponentialBackoff::reconnect(Duration::from_millis(50), Duration::from_secs(1));
        for attempt in 0..20u32 {
            // Java: the exponent stops at log2(max / initial).
            let expected = 50.0 * 2f64.powf(f64::from(attempt).min(20f64.log2()));
            for _ in 0..50 {
                let ms = b.backoff(attempt).as_secs_f64() * 1000.0;
                assert!(ms <= 1000.0 + 1e-9, "attempt {attempt}: {ms}");
                assert!(
                    ms >= (expected * 0.8).min(1000.0) - 1e-9,
                    "attempt {attempt}: {ms}"
                );
                assert!(ms <= expected * 1.2 + 1e-9, "attempt {attempt}: {ms}");
            }
        }
        // The jitter is random: not every value is the same.
        let values: std::collections::HashSet<_> = (0..50).map(|_| b.backoff(0)).collect();
        assert!(values.len() > 1);
        // No growth possible: always the initial value.
        let flat =
            ExponentialBackoff::reconnect(Duration::from_millis(50), Duration::from_millis(50));
        assert_eq!(flat.backoff(7), Duration::from_millis(50));
    }

    #[tokio::test]
    async fn concurrent_gets_share_one_connection() {
        let broker = fake::start(|_| Reply::Silent).await;
        let pool = pool(vec![], Duration::from_millis(50), Duration::from_secs(1));
        let gets = (0..20).map(|_| {
            let pool = pool.clone();
            let addr = broker.addr.clone();
            tokio::spawn(async move { pool.get(1, &addr).await })
        });
        let conns: Vec<BrokerConnection> = join_all(gets)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        assert!(conns.iter().all(|c| c.ptr_eq(&conns[0])));
        assert_eq!(broker.accepted(), 1);
        assert_eq!(conns[0].node_id(), Some(1));
        let again = pool.get(1, &broker.addr).await.unwrap();
        assert!(again.ptr_eq(&conns[0]));
        assert!(pool.connected(1).unwrap().ptr_eq(&conns[0]));
        assert!(pool.connected(2).is_none());
        assert_eq!(broker.accepted(), 1);
    }

    #[tokio::test]
    async fn failed_connect_backs_off_and_fails_fast() {
        let addr = refused_addr().await;
        let pool = pool(vec![], Duration::from_millis(200), Duration::from_secs(10));
        assert!(!pool.is_backing_off(1, Instant::now()));
        let first = pool.get(1, &addr).await.unwrap_err();
        assert!(matches!(first, Error::Connection { .. }), "{first}");
        assert!(pool.is_backing_off(1, Instant::now()));
        assert!(!pool.is_backing_off(1, Instant::now() + Duration::from_millis(241)));
        // Within the backoff: the same error, without trying.
        let started = Instant::now();
        let second = pool.get(1, &addr).await.unwrap_err();
        assert_eq!(second, first);
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(pool.connected(1).is_none());

        // After the backoff, a new attempt; its failure doubles the backoff (±20%).
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!pool.is_backing_off(1, Instant::now()));
        pool.get(1, &addr).await.unwrap_err();
        let now = Instant::now();
        assert!(pool.is_backing_off(1, now + Duration::from_millis(250)));
        assert!(!pool.is_backing_off(1, now + Duration::from_millis(481)));
    }

    #[tokio::test]
    async fn success_resets_the_backoff() {
        let broker = fake::start(|_| Reply::Silent).await;
        let dead = refused_addr().await;
        let pool = pool(vec![], Duration::from_millis(30), Duration::from_secs(10));
        pool.get(1, &dead).await.unwrap_err();
        tokio::time::sleep(Duration::from_millis(40)).await;
        pool.get(1, &dead).await.unwrap_err();
        // The broker moved: a new address starts afresh, with no backoff.
        let conn = pool.get(1, &broker.addr).await.unwrap();
        assert!(!pool.is_backing_off(1, Instant::now()));
        conn.close();
        let again = pool.get(1, &broker.addr).await.unwrap();
        assert!(!again.ptr_eq(&conn));
        assert_eq!(broker.accepted(), 2);
    }

    #[tokio::test]
    async fn reconnects_when_closed_or_when_the_address_changes() {
        let a = fake::start(|_| Reply::Silent).await;
        let b = fake::start(|_| Reply::Silent).await;
        let pool = pool(vec![], Duration::from_millis(50), Duration::from_secs(1));
        let first = pool.get(1, &a.addr).await.unwrap();
        first.close();
        assert!(pool.connected(1).is_none());
        let second = pool.get(1, &a.addr).await.unwrap();
        assert!(!second.ptr_eq(&first));
        let moved = pool.get(1, &b.addr).await.unwrap();
        assert_eq!(moved.addr(), b.addr);
        assert!(second.is_closed(), "the old address's connection is closed");
        assert_eq!((a.accepted(), b.accepted()), (2, 1));
    }

    #[tokio::test]
    async fn any_uses_bootstrap_then_open_connections() {
        let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
        let dead = refused_addr().await;
        let pool = pool(
            vec![dead.clone(), broker.bootstrap_servers()],
            Duration::from_millis(50),
            Duration::from_secs(1),
        );
        let conn = pool.any().await.unwrap();
        assert_eq!(conn.addr(), broker.bootstrap_servers());
        assert_eq!(conn.node_id(), None);
        let md = conn.send(metadata_all()).await.unwrap();
        assert_eq!(md.brokers.len(), 1);
        // Reused.
        assert!(pool.any().await.unwrap().ptr_eq(&conn));
        // A node connection: `any` picks the least loaded of the two.
        let node = pool.get(1, &broker.bootstrap_servers()).await.unwrap();
        let _busy = conn.send(metadata_all());
        let picked = pool.any().await.unwrap();
        assert!(picked.ptr_eq(&node) || conn.in_flight() == 0);
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn any_fails_when_nothing_is_reachable() {
        let dead = refused_addr().await;
        let pool = pool(vec![dead], Duration::from_secs(5), Duration::from_secs(10));
        let first = pool.any().await.unwrap_err();
        assert!(matches!(first, Error::Connection { .. }), "{first}");
        // Every candidate is backing off: the last error, at once.
        let started = Instant::now();
        assert_eq!(pool.any().await.unwrap_err(), first);
        assert!(started.elapsed() < Duration::from_millis(50));
        let empty = ConnectionPool::new(
            vec![],
            ConnectionConfig::default(),
            Duration::from_millis(50),
            Duration::from_secs(1),
            Duration::from_secs(540),
        );
        assert!(matches!(empty.any().await, Err(Error::Connection { .. })));
    }

    #[tokio::test]
    async fn idle_connections_are_closed() {
        let broker = fake::start(|_| Reply::Silent).await;
        let pool = ConnectionPool::new(
            vec![],
            ConnectionConfig::default(),
            Duration::from_millis(50),
            Duration::from_secs(1),
            Duration::from_millis(100),
        );
        let conn = pool.get(1, &broker.addr).await.unwrap();
        pool.close_idle(Instant::now());
        assert!(pool.connected(1).is_some());
        // A connection with a request in flight is kept whatever its age.
        let pending = conn.send(metadata_all());
        pool.close_idle(Instant::now() + Duration::from_secs(1));
        assert!(pool.connected(1).is_some());
        drop(pending);
        let idle = fake::start(|_| Reply::Silent).await;
        let other = pool.get(2, &idle.addr).await.unwrap();
        pool.close_idle(other.last_used() + Duration::from_millis(150));
        assert!(pool.connected(2).is_none());
        assert!(other.is_closed());
        assert!(pool.connected(1).is_some());

        pool.close_all();
        assert!(conn.is_closed());
        assert!(pool.connected(1).is_none());
        assert!(format!("{pool:?}").contains("ConnectionPool"));
    }
}
