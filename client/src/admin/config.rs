//! [`AdminConfig`]: the admin client's configuration, with the Java `AdminClientConfig`
//! (Kafka 4.0) key names and defaults.
//!
//! As for the producer and consumer ([`crate::config`]), a configuration is made either with
//! the typed setters of [`AdminConfigBuilder`] or from string properties
//! ([`AdminConfig::from_properties`], [`AdminConfigBuilder::set`]); both go through one code
//! path: typed setters store the string form of their value under the Kafka key and
//! [`AdminConfigBuilder::build`] parses and validates the property map. Unknown keys are an
//! error; values are trimmed and parsed strictly (`INT` keys as `i32`, `LONG` keys as `i64`),
//! durations are milliseconds and never negative. Only `security.protocol=PLAINTEXT` is
//! supported. `client.id`, when not set or empty, becomes `adminclient-N` from a process-wide
//! counter starting at 1, as Java's `KafkaAdminClient.generateClientId` builds it.
//!
//! ```
//! use std::time::Duration;
//!
//! use kafka_client::admin::AdminConfig;
//!
//! let typed = AdminConfig::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .client_id("ops")
//!     .default_api_timeout(Duration::from_secs(10))
//!     .build()?;
//! let props = AdminConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("client.id", "ops"),
//!     ("default.api.timeout.ms", "10000"),
//! ])?;
//! assert_eq!(typed, props);
//! assert_eq!(typed.request_timeout, Duration::from_secs(30));
//! # Ok::<(), kafka_client::Error>(())
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::{
    check_known_keys, effective_reconnect_backoff_max, millis as ms, parse_bootstrap_servers,
    Props, SecurityProtocol, BOOTSTRAP_SERVERS, CLIENT_ID, CONNECTIONS_MAX_IDLE_MS,
    DEFAULT_API_TIMEOUT_MS, RECEIVE_BUFFER_BYTES, RECONNECT_BACKOFF_MAX_MS, RECONNECT_BACKOFF_MS,
    REQUEST_TIMEOUT_MS, RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MS, SECURITY_PROTOCOL,
    SEND_BUFFER_BYTES, SOCKET_SETUP_TIMEOUT_MS,
};
use crate::error::Error;
use crate::network::connection::ConnectionConfig;

/// Every key [`AdminConfig`] accepts.
const ADMIN_KEYS: &[&str] = &[
    BOOTSTRAP_SERVERS,
    CLIENT_ID,
    REQUEST_TIMEOUT_MS,
    DEFAULT_API_TIMEOUT_MS,
    RETRY_BACKOFF_MS,
    RETRY_BACKOFF_MAX_MS,
    RECONNECT_BACKOFF_MS,
    RECONNECT_BACKOFF_MAX_MS,
    CONNECTIONS_MAX_IDLE_MS,
    SOCKET_SETUP_TIMEOUT_MS,
    SEND_BUFFER_BYTES,
    RECEIVE_BUFFER_BYTES,
    SECURITY_PROTOCOL,
];

/// `adminclient-N` numbers, as Java's `AdminClientIdSequence`.
static ADMIN_CLIENT_ID_SEQUENCE: AtomicUsize = AtomicUsize::new(1);

/// A validated admin client configuration (Java's `AdminClientConfig`).
///
/// Each field documents its Kafka key and default (the Java 4.0 client's).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminConfig {
    /// `bootstrap.servers`: the `host:port` addresses used for the first metadata request.
    /// Required and non-empty.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`: sent with every request. Default `adminclient-N` (process-wide counter).
    pub client_id: String,
    /// `request.timeout.ms`: how long one request may wait for its response. Default
    /// 30000 ms.
    pub request_timeout: Duration,
    /// `default.api.timeout.ms`: the deadline of an admin call, retries included, when the
    /// call's options give none. Default 60000 ms.
    pub default_api_timeout: Duration,
    /// `retry.backoff.ms`: the first backoff between retries of a call. Default 100 ms.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the cap of the exponential retry backoff. Default 1000 ms.
    pub retry_backoff_max: Duration,
    /// `reconnect.backoff.ms`: the first wait before reconnecting to a broker. Default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the cap of the exponential reconnect backoff. Default
    /// 1000 ms.
    pub reconnect_backoff_max: Duration,
    /// `connections.max.idle.ms`: idle connections are closed after this long. Default
    /// 300000 ms (the admin client's 5 minutes).
    pub connections_max_idle: Duration,
    /// `socket.connection.setup.timeout.ms`: bound on connecting to a broker (the TCP connect
    /// and the ApiVersions handshake). Default 10000 ms.
    pub socket_connection_setup_timeout: Duration,
    /// `send.buffer.bytes`: `SO_SNDBUF`, or -1 for the OS default. Default 131072.
    pub send_buffer_bytes: i32,
    /// `receive.buffer.bytes`: `SO_RCVBUF`, or -1 for the OS default. Default 65536.
    pub receive_buffer_bytes: i32,
    /// `security.protocol`: only [`SecurityProtocol::Plaintext`] (the default) is supported.
    pub security_protocol: SecurityProtocol,
}

impl AdminConfig {
    /// A builder with every key unset.
    pub fn builder() -> AdminConfigBuilder {
        AdminConfigBuilder::default()
    }

    /// The default configuration for the given `bootstrap.servers` (a comma-separated
    /// `host:port` list).
    ///
    /// # Errors
    /// [`Error::Config`] when `bootstrap` is not a valid list of addresses.
    pub fn new(bootstrap: impl Into<String>) -> Result<Self, Error> {
        Self::builder().bootstrap_servers(bootstrap).build()
    }

    /// A configuration from string properties with Kafka's key names; the last value of a
    /// repeated key wins.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key for an unknown key or a bad value.
    pub fn from_properties<I, K, V>(props: I) -> Result<AdminConfig, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        props
            .into_iter()
            .fold(Self::builder(), |b, (k, v)| b.set(k, v))
            .build()
    }

    /// Every key with its effective value, in the form [`AdminConfig::from_properties`]
    /// accepts; feeding it back gives an equal configuration.
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        [
            (BOOTSTRAP_SERVERS, self.bootstrap_servers.join(",")),
            (CLIENT_ID, self.client_id.clone()),
            (REQUEST_TIMEOUT_MS, ms(self.request_timeout)),
            (DEFAULT_API_TIMEOUT_MS, ms(self.default_api_timeout)),
            (RETRY_BACKOFF_MS, ms(self.retry_backoff)),
            (RETRY_BACKOFF_MAX_MS, ms(self.retry_backoff_max)),
            (RECONNECT_BACKOFF_MS, ms(self.reconnect_backoff)),
            (RECONNECT_BACKOFF_MAX_MS, ms(self.reconnect_backoff_max)),
            (CONNECTIONS_MAX_IDLE_MS, ms(self.connections_max_idle)),
            (
                SOCKET_SETUP_TIMEOUT_MS,
                ms(self.socket_connection_setup_timeout),
            ),
            (SEND_BUFFER_BYTES, self.send_buffer_bytes.to_string()),
            (RECEIVE_BUFFER_BYTES, self.receive_buffer_bytes.to_string()),
            (SECURITY_PROTOCOL, self.security_protocol.name().to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The connection settings of the network layer.
    pub(crate) fn connection_config(&self) -> ConnectionConfig {
        ConnectionConfig {
            client_id: Some(self.client_id.clone()),
            request_timeout: self.request_timeout,
            connect_timeout: self.socket_connection_setup_timeout,
            send_buffer_bytes: self.send_buffer_bytes,
            receive_buffer_bytes: self.receive_buffer_bytes,
            ..ConnectionConfig::default()
        }
    }

    /// Parses and validates a property map: the one path behind the builder and
    /// [`AdminConfig::from_properties`].
    fn from_map(map: &BTreeMap<String, String>) -> Result<Self, Error> {
        check_known_keys(map, ADMIN_KEYS)?;
        let p = Props(map);
        let bootstrap_servers =
            parse_bootstrap_servers(BOOTSTRAP_SERVERS, p.value(BOOTSTRAP_SERVERS))?;
        let request_timeout = p.ms::<i32>(REQUEST_TIMEOUT_MS, 30_000, 0)?;
        let default_api_timeout = p.ms::<i32>(DEFAULT_API_TIMEOUT_MS, 60_000, 0)?;
        let retry_backoff = p.ms::<i64>(RETRY_BACKOFF_MS, 100, 0)?;
        let retry_backoff_max = p.ms::<i64>(RETRY_BACKOFF_MAX_MS, 1_000, 0)?;
        let reconnect_backoff = p.ms::<i64>(RECONNECT_BACKOFF_MS, 50, 0)?;
        let reconnect_backoff_max = effective_reconnect_backoff_max(
            &p,
            reconnect_backoff,
            p.ms::<i64>(RECONNECT_BACKOFF_MAX_MS, 1_000, 0)?,
        );
        let connections_max_idle = p.ms::<i64>(CONNECTIONS_MAX_IDLE_MS, 300_000, 0)?;
        let socket_connection_setup_timeout = p.ms::<i64>(SOCKET_SETUP_TIMEOUT_MS, 10_000, 0)?;
        let send_buffer_bytes = p.int::<i32>(SEND_BUFFER_BYTES, 128 * 1024, -1..=i32::MAX)?;
        let receive_buffer_bytes = p.int::<i32>(RECEIVE_BUFFER_BYTES, 64 * 1024, -1..=i32::MAX)?;
        let security_protocol = p.security_protocol()?;
        // KafkaAdminClient.generateClientId, last so that a failed build uses no number.
        let client_id = match p.value(CLIENT_ID) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => format!(
                "adminclient-{}",
                ADMIN_CLIENT_ID_SEQUENCE.fetch_add(1, Ordering::Relaxed)
            ),
        };
        Ok(AdminConfig {
            bootstrap_servers,
            client_id,
            request_timeout,
            default_api_timeout,
            retry_backoff,
            retry_backoff_max,
            reconnect_backoff,
            reconnect_backoff_max,
            connections_max_idle,
            socket_connection_setup_timeout,
            send_buffer_bytes,
            receive_buffer_bytes,
            security_protocol,
        })
    }
}

/// Builds an [`AdminConfig`] from typed setters and string properties; nothing is checked
/// until [`AdminConfigBuilder::build`].
#[derive(Debug, Clone, Default)]
pub struct AdminConfigBuilder {
    props: BTreeMap<String, String>,
}

impl AdminConfigBuilder {
    /// Sets `key` (a Kafka key such as `request.timeout.ms`) to `value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.props.insert(key.into(), value.into());
        self
    }

    fn set_ms(self, key: &str, d: Duration) -> Self {
        self.set(key, d.as_millis().to_string())
    }

    /// Sets `bootstrap.servers`: a comma-separated `host:port` list.
    pub fn bootstrap_servers(self, servers: impl Into<String>) -> Self {
        self.set(BOOTSTRAP_SERVERS, servers)
    }

    /// Sets `client.id`.
    pub fn client_id(self, id: impl Into<String>) -> Self {
        self.set(CLIENT_ID, id)
    }

    /// Sets `request.timeout.ms`.
    pub fn request_timeout(self, d: Duration) -> Self {
        self.set_ms(REQUEST_TIMEOUT_MS, d)
    }

    /// Sets `default.api.timeout.ms`.
    pub fn default_api_timeout(self, d: Duration) -> Self {
        self.set_ms(DEFAULT_API_TIMEOUT_MS, d)
    }

    /// Sets `retry.backoff.ms`.
    pub fn retry_backoff(self, d: Duration) -> Self {
        self.set_ms(RETRY_BACKOFF_MS, d)
    }

    /// Sets `retry.backoff.max.ms`.
    pub fn retry_backoff_max(self, d: Duration) -> Self {
        self.set_ms(RETRY_BACKOFF_MAX_MS, d)
    }

    /// Sets `reconnect.backoff.ms`.
    pub fn reconnect_backoff(self, d: Duration) -> Self {
        self.set_ms(RECONNECT_BACKOFF_MS, d)
    }

    /// Sets `reconnect.backoff.max.ms`.
    pub fn reconnect_backoff_max(self, d: Duration) -> Self {
        self.set_ms(RECONNECT_BACKOFF_MAX_MS, d)
    }

    /// Sets `connections.max.idle.ms`.
    pub fn connections_max_idle(self, d: Duration) -> Self {
        self.set_ms(CONNECTIONS_MAX_IDLE_MS, d)
    }

    /// Sets `socket.connection.setup.timeout.ms`.
    pub fn socket_connection_setup_timeout(self, d: Duration) -> Self {
        self.set_ms(SOCKET_SETUP_TIMEOUT_MS, d)
    }

    /// Sets `send.buffer.bytes` (-1: the OS default).
    pub fn send_buffer_bytes(self, bytes: i32) -> Self {
        self.set(SEND_BUFFER_BYTES, bytes.to_string())
    }

    /// Sets `receive.buffer.bytes` (-1: the OS default).
    pub fn receive_buffer_bytes(self, bytes: i32) -> Self {
        self.set(RECEIVE_BUFFER_BYTES, bytes.to_string())
    }

    /// Sets `security.protocol`.
    pub fn security_protocol(self, protocol: SecurityProtocol) -> Self {
        self.set(SECURITY_PROTOCOL, protocol.name())
    }

    /// Parses and validates every key.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key for an unknown key or a bad value.
    pub fn build(self) -> Result<AdminConfig, Error> {
        AdminConfig::from_map(&self.props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(r: Result<AdminConfig, Error>) -> String {
        match r {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_java_admin_defaults() {
        let c = AdminConfig::new("a:9092,b:9093").unwrap();
        assert_eq!(c.bootstrap_servers, ["a:9092", "b:9093"]);
        assert!(c.client_id.starts_with("adminclient-"), "{}", c.client_id);
        assert_eq!(c.request_timeout, Duration::from_millis(30_000));
        assert_eq!(c.default_api_timeout, Duration::from_millis(60_000));
        assert_eq!(c.retry_backoff, Duration::from_millis(100));
        assert_eq!(c.retry_backoff_max, Duration::from_millis(1_000));
        assert_eq!(c.reconnect_backoff, Duration::from_millis(50));
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(1_000));
        assert_eq!(c.connections_max_idle, Duration::from_millis(300_000));
        assert_eq!(c.socket_connection_setup_timeout, Duration::from_secs(10));
        assert_eq!(
            (c.send_buffer_bytes, c.receive_buffer_bytes),
            (131_072, 65_536)
        );
        assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
        let conn = c.connection_config();
        assert_eq!(conn.client_id.as_deref(), Some(c.client_id.as_str()));
        assert_eq!(conn.request_timeout, c.request_timeout);
    }

    #[test]
    fn typed_and_string_forms_agree_and_round_trip() {
        let typed = AdminConfig::builder()
            .bootstrap_servers("h:1")
            .client_id("x")
            .request_timeout(Duration::from_millis(1500))
            .default_api_timeout(Duration::from_millis(2500))
            .retry_backoff(Duration::from_millis(7))
            .retry_backoff_max(Duration::from_millis(70))
            .reconnect_backoff(Duration::from_millis(8))
            .reconnect_backoff_max(Duration::from_millis(80))
            .connections_max_idle(Duration::from_millis(9))
            .socket_connection_setup_timeout(Duration::from_millis(10))
            .send_buffer_bytes(-1)
            .receive_buffer_bytes(1024)
            .security_protocol(SecurityProtocol::Plaintext)
            .build()
            .unwrap();
        let again = AdminConfig::from_properties(typed.to_properties()).unwrap();
        assert_eq!(typed, again);
        assert_eq!(typed.to_properties()["request.timeout.ms"], "1500");
        assert_eq!(typed.to_properties().len(), ADMIN_KEYS.len());
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        let base = |k: &'static str, v: &'static str| {
            AdminConfig::from_properties([("bootstrap.servers", "h:1"), (k, v)])
        };
        assert_eq!(key_of(base("linger.ms", "1")), "linger.ms");
        assert_eq!(
            key_of(base("request.timeout.ms", "-1")),
            "request.timeout.ms"
        );
        assert_eq!(
            key_of(base("request.timeout.ms", "3000000000")),
            "request.timeout.ms"
        );
        assert_eq!(key_of(base("retry.backoff.ms", "x")), "retry.backoff.ms");
        assert_eq!(key_of(base("send.buffer.bytes", "-2")), "send.buffer.bytes");
        assert_eq!(
            key_of(base("security.protocol", "SSL")),
            "security.protocol"
        );
        assert_eq!(
            key_of(AdminConfig::from_properties([("client.id", "x")])),
            "bootstrap.servers"
        );
        assert_eq!(key_of(AdminConfig::new("nohost")), "bootstrap.servers");
        assert_eq!(key_of(AdminConfig::new(" , ")), "bootstrap.servers");
        // Trimmed; last value wins; reconnect max follows reconnect when only that is set.
        let c = AdminConfig::from_properties([
            ("bootstrap.servers", " h:1 "),
            ("retry.backoff.ms", " 5 "),
            ("retry.backoff.ms", "6"),
            ("reconnect.backoff.ms", "20"),
            ("security.protocol", "plaintext"),
        ])
        .unwrap();
        assert_eq!(c.bootstrap_servers, ["h:1"]);
        assert_eq!(c.retry_backoff, Duration::from_millis(6));
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(20));
        // An empty client id is generated.
        let c = AdminConfig::from_properties([("bootstrap.servers", "h:1"), ("client.id", "")])
            .unwrap();
        assert!(c.client_id.starts_with("adminclient-"));
    }
}
