//! Producer configuration, with the Java client's (Kafka 4.0) key names, defaults and
//! validation.
//!
//! A [`ProducerConfig`] is made either with the typed setters of [`ProducerConfigBuilder`] or
//! from string properties ([`ProducerConfig::from_properties`], [`ProducerConfigBuilder::set`]).
//! Both go through one code path: a typed setter stores the string form of its value under the
//! Kafka key, and [`ProducerConfigBuilder::build`] parses and validates the resulting property
//! map. A key is *explicitly set* when it is in that map, however it got there; several rules
//! depend on it, as in Java (`AbstractConfig::originals`):
//!
//! * **Idempotence** (`enable.idempotence`, default `true`) needs `acks=all` and
//!   `retries > 0`. When `enable.idempotence` was set explicitly, a conflicting `acks` or
//!   `retries` is an error; otherwise idempotence is silently disabled (logged at info level).
//!   `max.in.flight.requests.per.connection` above 5 is an error whenever idempotence is
//!   enabled, explicitly or by default (Java does not silently disable it for this one).
//! * **`transactional.id`** implies idempotence: setting it while idempotence ends up
//!   disabled (explicitly, or because of a conflicting `acks`/`retries`) is an error.
//! * **`delivery.timeout.ms`** must be at least `linger.ms + request.timeout.ms`: an error when
//!   it was set explicitly, otherwise it is raised to that sum (logged as a warning), as
//!   Java's `KafkaProducer` does.
//! * **`reconnect.backoff.max.ms`** takes the value of `reconnect.backoff.ms` when only the
//!   latter is set explicitly (exponential reconnect backoff disabled).
//! * **`retry.backoff.ms` > `retry.backoff.max.ms`** (and likewise for
//!   `socket.connection.setup.timeout.ms` and its `.max`) is accepted with a warning; Java's
//!   `ExponentialBackoff` then applies a static backoff equal to the *max* value (it takes
//!   the smaller of the two). Both values are kept as configured.
//! * **`client.id`**, when not set, becomes `producer-<transactional.id>` or `producer-N` from
//!   a process-wide counter starting at 1. An explicitly set value (even empty) is kept.
//!
//! Values are trimmed, then parsed strictly: integers as Java `INT` (32-bit) or `LONG`
//! (64-bit) depending on the key, booleans as `true`/`false` (any case). Ranges are Java's.
//! Durations are in milliseconds; negative durations are rejected, including for the keys
//! Java leaves unchecked (`connections.max.idle.ms`, `socket.connection.setup.timeout.ms`,
//! `socket.connection.setup.timeout.max.ms`, `transaction.timeout.ms`). Unknown keys are an
//! error, so a typo does not go unnoticed. Only `security.protocol=PLAINTEXT` is supported.
//!
//! # Examples
//!
//! With the typed builder:
//!
//! ```
//! use std::time::Duration;
//!
//! use kafka_client::config::{Acks, ProducerConfig};
//! use kafka_wire::records::Compression;
//!
//! let config = ProducerConfig::builder()
//!     .bootstrap_servers("broker-1:9092,broker-2:9092")
//!     .client_id("orders")
//!     .acks(Acks::All)
//!     .linger(Duration::from_millis(20))
//!     .compression(Compression::Zstd)
//!     .build()?;
//! assert_eq!(config.bootstrap_servers, ["broker-1:9092", "broker-2:9092"]);
//! assert_eq!(config.linger, Duration::from_millis(20));
//! assert_eq!(config.compression_level(), Some(3));
//! assert!(config.enable_idempotence);
//! # Ok::<(), kafka_client::Error>(())
//! ```
//!
//! From properties, as in a Java `.properties` file:
//!
//! ```
//! use std::time::Duration;
//!
//! use kafka_client::config::{Acks, ProducerConfig};
//! use kafka_client::Error;
//!
//! let config = ProducerConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("acks", "1"),
//!     ("linger.ms", "20"),
//! ])?;
//! assert_eq!(config.acks, Acks::Leader);
//! // `enable.idempotence` was not set, so `acks=1` silently disables it.
//! assert!(!config.enable_idempotence);
//! assert_eq!(config.to_properties()["linger.ms"], "20");
//!
//! // Set explicitly, the same conflict is an error naming the key.
//! let err = ProducerConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("acks", "1"),
//!     ("enable.idempotence", "true"),
//! ])
//! .unwrap_err();
//! assert!(matches!(err, Error::Config { ref key, .. } if key == "acks"));
//! # Ok::<(), kafka_client::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kafka_wire::records::Compression;

use crate::error::Error;

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

const BOOTSTRAP_SERVERS: &str = "bootstrap.servers";
const CLIENT_ID: &str = "client.id";
const ACKS: &str = "acks";
const LINGER_MS: &str = "linger.ms";
const BATCH_SIZE: &str = "batch.size";
const BUFFER_MEMORY: &str = "buffer.memory";
const MAX_BLOCK_MS: &str = "max.block.ms";
const COMPRESSION_TYPE: &str = "compression.type";
const COMPRESSION_GZIP_LEVEL: &str = "compression.gzip.level";
const COMPRESSION_LZ4_LEVEL: &str = "compression.lz4.level";
const COMPRESSION_ZSTD_LEVEL: &str = "compression.zstd.level";
const MAX_REQUEST_SIZE: &str = "max.request.size";
const RETRIES: &str = "retries";
const RETRY_BACKOFF_MS: &str = "retry.backoff.ms";
const RETRY_BACKOFF_MAX_MS: &str = "retry.backoff.max.ms";
const REQUEST_TIMEOUT_MS: &str = "request.timeout.ms";
const DELIVERY_TIMEOUT_MS: &str = "delivery.timeout.ms";
const MAX_IN_FLIGHT: &str = "max.in.flight.requests.per.connection";
const ENABLE_IDEMPOTENCE: &str = "enable.idempotence";
const PARTITIONER_IGNORE_KEYS: &str = "partitioner.ignore.keys";
const PARTITIONER_ADAPTIVE: &str = "partitioner.adaptive.partitioning.enable";
const PARTITIONER_AVAILABILITY_TIMEOUT_MS: &str = "partitioner.availability.timeout.ms";
const METADATA_MAX_AGE_MS: &str = "metadata.max.age.ms";
const METADATA_MAX_IDLE_MS: &str = "metadata.max.idle.ms";
const RECONNECT_BACKOFF_MS: &str = "reconnect.backoff.ms";
const RECONNECT_BACKOFF_MAX_MS: &str = "reconnect.backoff.max.ms";
const CONNECTIONS_MAX_IDLE_MS: &str = "connections.max.idle.ms";
const SOCKET_SETUP_TIMEOUT_MS: &str = "socket.connection.setup.timeout.ms";
const SOCKET_SETUP_TIMEOUT_MAX_MS: &str = "socket.connection.setup.timeout.max.ms";
const SEND_BUFFER_BYTES: &str = "send.buffer.bytes";
const RECEIVE_BUFFER_BYTES: &str = "receive.buffer.bytes";
const TRANSACTIONAL_ID: &str = "transactional.id";
const TRANSACTION_TIMEOUT_MS: &str = "transaction.timeout.ms";
const ALLOW_AUTO_CREATE_TOPICS: &str = "allow.auto.create.topics";
const SECURITY_PROTOCOL: &str = "security.protocol";

/// Every key [`ProducerConfig`] accepts.
const PRODUCER_KEYS: &[&str] = &[
    BOOTSTRAP_SERVERS,
    CLIENT_ID,
    ACKS,
    LINGER_MS,
    BATCH_SIZE,
    BUFFER_MEMORY,
    MAX_BLOCK_MS,
    COMPRESSION_TYPE,
    COMPRESSION_GZIP_LEVEL,
    COMPRESSION_LZ4_LEVEL,
    COMPRESSION_ZSTD_LEVEL,
    MAX_REQUEST_SIZE,
    RETRIES,
    RETRY_BACKOFF_MS,
    RETRY_BACKOFF_MAX_MS,
    REQUEST_TIMEOUT_MS,
    DELIVERY_TIMEOUT_MS,
    MAX_IN_FLIGHT,
    ENABLE_IDEMPOTENCE,
    PARTITIONER_IGNORE_KEYS,
    PARTITIONER_ADAPTIVE,
    PARTITIONER_AVAILABILITY_TIMEOUT_MS,
    METADATA_MAX_AGE_MS,
    METADATA_MAX_IDLE_MS,
    RECONNECT_BACKOFF_MS,
    RECONNECT_BACKOFF_MAX_MS,
    CONNECTIONS_MAX_IDLE_MS,
    SOCKET_SETUP_TIMEOUT_MS,
    SOCKET_SETUP_TIMEOUT_MAX_MS,
    SEND_BUFFER_BYTES,
    RECEIVE_BUFFER_BYTES,
    TRANSACTIONAL_ID,
    TRANSACTION_TIMEOUT_MS,
    ALLOW_AUTO_CREATE_TOPICS,
    SECURITY_PROTOCOL,
];

/// Java's `MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION_FOR_IDEMPOTENCE`: the broker keeps the
/// sequence state of the last 5 batches per producer and partition.
const MAX_IN_FLIGHT_FOR_IDEMPOTENCE: usize = 5;

/// gzip levels: `Deflater.BEST_SPEED..=BEST_COMPRESSION`, or `DEFAULT_COMPRESSION` (-1).
const GZIP_LEVELS: RangeInclusive<i32> = 1..=9;
const GZIP_DEFAULT_LEVEL: i32 = -1;
/// lz4 levels (`net.jpountz.lz4.LZ4Constants`), default 9.
const LZ4_LEVELS: RangeInclusive<i32> = 1..=17;
const LZ4_DEFAULT_LEVEL: i32 = 9;
/// zstd levels (`ZSTD_minCLevel()` = -(1 << 17) to `ZSTD_MAX_CLEVEL`), default 3.
const ZSTD_LEVELS: RangeInclusive<i32> = -131_072..=22;
const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// Java's `PRODUCER_CLIENT_ID_SEQUENCE`: numbers the generated `producer-N` client ids.
static PRODUCER_CLIENT_ID_SEQUENCE: AtomicUsize = AtomicUsize::new(1);

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// The acknowledgements the producer waits for (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=0`: do not wait for the broker at all; offsets are unknown (-1).
    None,
    /// `acks=1`: wait for the partition leader to write the records.
    Leader,
    /// `acks=all` (or `-1`): wait for every in-sync replica. The default, and required for
    /// idempotence.
    #[default]
    All,
}

impl Acks {
    /// The value of the `acks` field of a Produce request: 0, 1 or -1.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// The configuration value: `0`, `1` or `all`.
    fn config_value(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }

    /// Parses a trimmed `acks` value (`all`, `-1`, `0`, `1`; case-sensitive, as in Java).
    fn parse(key: &str, value: &str) -> Result<Self, Error> {
        match value {
            "all" | "-1" => Ok(Acks::All),
            "1" => Ok(Acks::Leader),
            "0" => Ok(Acks::None),
            _ => Err(invalid(key, value, "expected one of all, -1, 0, 1")),
        }
    }
}

/// The protocol used to talk to brokers (`security.protocol`).
///
/// Only `PLAINTEXT` is supported for now; `SSL`, `SASL_PLAINTEXT` and `SASL_SSL` are rejected
/// with a configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// Unauthenticated, unencrypted TCP. The default.
    #[default]
    Plaintext,
}

impl SecurityProtocol {
    /// The name as Kafka spells it (`PLAINTEXT`).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
        }
    }

    /// Parses a trimmed `security.protocol` value (case-insensitive, as in Java).
    fn parse(key: &str, value: &str) -> Result<Self, Error> {
        let upper = value.to_ascii_uppercase();
        match upper.as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" | "SASL_PLAINTEXT" | "SASL_SSL" => Err(config_error(
                key,
                format!("`{value}` is not supported by this client (only PLAINTEXT is)"),
            )),
            _ => Err(invalid(
                key,
                value,
                "expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
            )),
        }
    }
}

/// A validated producer configuration.
///
/// Each field documents its Kafka key and default (the Java 4.0 client's). Build one with
/// [`ProducerConfig::builder`], [`ProducerConfig::from_properties`] or
/// [`ProducerConfig::new`]; the values are the *effective* ones, after the adjustments
/// described in the [module documentation](self) (idempotence silently disabled,
/// `delivery.timeout.ms` raised, generated `client.id`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// `bootstrap.servers`: the `host:port` addresses used for the first metadata request.
    /// Required and non-empty; IPv6 addresses are written in brackets (`[::1]:9092`).
    pub bootstrap_servers: Vec<String>,
    /// `client.id`: sent with every request. When not set: `producer-<transactional.id>`, or
    /// `producer-N` from a process-wide counter.
    pub client_id: String,
    /// `acks`: default [`Acks::All`].
    pub acks: Acks,
    /// `linger.ms`: how long to wait for more records before sending a batch that is not full.
    /// Default 5 ms (Kafka 4.0; it was 0 before).
    pub linger: Duration,
    /// `batch.size`: the target size of a batch in bytes; 0 disables batching. Default 16384.
    pub batch_size: usize,
    /// `buffer.memory`: bytes available to buffer records waiting to be sent. Default
    /// 33554432 (32 MiB).
    pub buffer_memory: usize,
    /// `max.block.ms`: how long `send` (and the transactional calls) may block waiting for
    /// metadata or buffer space. Default 60000 ms.
    pub max_block: Duration,
    /// `compression.type`: the batch codec. Default [`Compression::None`].
    pub compression: Compression,
    /// `compression.gzip.level`: 1-9, or -1 for the codec's default (the default).
    pub compression_gzip_level: i32,
    /// `compression.lz4.level`: 1-17, default 9.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level`: -131072 to 22, default 3.
    pub compression_zstd_level: i32,
    /// `max.request.size`: the largest request (and uncompressed batch) in bytes. Default
    /// 1048576 (1 MiB).
    pub max_request_size: usize,
    /// `retries`: how many times a failed send is retried (bounded by `delivery.timeout.ms`).
    /// Default 2147483647.
    pub retries: u32,
    /// `retry.backoff.ms`: the initial backoff between retries. Default 100 ms.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the cap of the exponential retry backoff. Default 1000 ms.
    /// When smaller than `retry.backoff.ms`, Java applies a static backoff of this value.
    pub retry_backoff_max: Duration,
    /// `request.timeout.ms`: how long to wait for a response. Default 30000 ms.
    pub request_timeout: Duration,
    /// `delivery.timeout.ms`: the upper bound on reporting the outcome of a `send`. Default
    /// 120000 ms; at least `linger.ms + request.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `max.in.flight.requests.per.connection`: unacknowledged requests per connection.
    /// Default 5, at least 1, at most 5 with idempotence.
    pub max_in_flight_requests_per_connection: usize,
    /// `enable.idempotence`: effective value (see the module documentation). Default `true`.
    pub enable_idempotence: bool,
    /// `partitioner.ignore.keys`: when `true`, keyed records are spread like keyless ones.
    /// Default `false`.
    pub partitioner_ignore_keys: bool,
    /// `partitioner.adaptive.partitioning.enable`: favour partitions on faster brokers.
    /// Default `true`.
    pub partitioner_adaptive_partitioning_enable: bool,
    /// `partitioner.availability.timeout.ms`: a partition whose broker has not taken produce
    /// requests for this long is skipped; 0 (the default) disables this.
    pub partitioner_availability_timeout: Duration,
    /// `metadata.max.age.ms`: metadata is refreshed at least this often. Default 300000 ms.
    pub metadata_max_age: Duration,
    /// `metadata.max.idle.ms`: metadata of a topic not produced to for this long is dropped.
    /// Default 300000 ms, at least 5000 ms.
    pub metadata_max_idle: Duration,
    /// `reconnect.backoff.ms`: the initial wait before reconnecting to a broker. Default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the cap of the exponential reconnect backoff. Default
    /// 1000 ms; equal to `reconnect.backoff.ms` when only that one is set.
    pub reconnect_backoff_max: Duration,
    /// `connections.max.idle.ms`: idle connections are closed after this long. Default
    /// 540000 ms (9 minutes).
    pub connections_max_idle: Duration,
    /// `socket.connection.setup.timeout.ms`: the initial connection setup timeout. Default
    /// 10000 ms.
    pub socket_connection_setup_timeout: Duration,
    /// `socket.connection.setup.timeout.max.ms`: the cap of the exponentially growing setup
    /// timeout. Default 30000 ms.
    pub socket_connection_setup_timeout_max: Duration,
    /// `send.buffer.bytes`: `SO_SNDBUF`, or -1 for the OS default. Default 131072.
    pub send_buffer_bytes: i32,
    /// `receive.buffer.bytes`: `SO_RCVBUF`, or -1 for the OS default. Default 32768.
    pub receive_buffer_bytes: i32,
    /// `transactional.id`: enables transactions (and requires idempotence). Default none.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long a transaction may stay open before the coordinator
    /// aborts it. Default 60000 ms.
    pub transaction_timeout: Duration,
    /// `allow.auto.create.topics`: whether metadata requests ask the broker to create missing
    /// topics. Default `true` (what the Java producer always asks for; the key itself is a
    /// Java *consumer* setting).
    pub allow_auto_create_topics: bool,
    /// `security.protocol`: only [`SecurityProtocol::Plaintext`] (the default) is supported.
    pub security_protocol: SecurityProtocol,
}

impl ProducerConfig {
    /// A builder with every key unset.
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfigBuilder::default()
    }

    /// The default configuration for the given `bootstrap.servers` (a comma-separated
    /// `host:port` list).
    ///
    /// # Errors
    /// [`Error::Config`] when `bootstrap` is not a valid list of addresses.
    pub fn new(bootstrap: impl Into<String>) -> Result<Self, Error> {
        Self::builder().bootstrap_servers(bootstrap).build()
    }

    /// A configuration from string properties with Kafka's key names.
    ///
    /// When a key appears more than once, the last value wins.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key for an unknown key, a bad value, or conflicting keys.
    pub fn from_properties<I, K, V>(props: I) -> Result<ProducerConfig, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        props
            .into_iter()
            .fold(Self::builder(), |builder, (k, v)| builder.set(k, v))
            .build()
    }

    /// Every key with its effective value, in the form [`ProducerConfig::from_properties`]
    /// accepts (`transactional.id` is left out when it is not set).
    ///
    /// Feeding the result back to [`ProducerConfig::from_properties`] gives an equal
    /// configuration.
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        let mut props = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            props.insert(key.to_owned(), value);
        };
        put(BOOTSTRAP_SERVERS, self.bootstrap_servers.join(","));
        put(CLIENT_ID, self.client_id.clone());
        put(ACKS, self.acks.config_value().to_owned());
        put(LINGER_MS, millis(self.linger));
        put(BATCH_SIZE, self.batch_size.to_string());
        put(BUFFER_MEMORY, self.buffer_memory.to_string());
        put(MAX_BLOCK_MS, millis(self.max_block));
        put(COMPRESSION_TYPE, self.compression.name().to_owned());
        put(
            COMPRESSION_GZIP_LEVEL,
            self.compression_gzip_level.to_string(),
        );
        put(
            COMPRESSION_LZ4_LEVEL,
            self.compression_lz4_level.to_string(),
        );
        put(
            COMPRESSION_ZSTD_LEVEL,
            self.compression_zstd_level.to_string(),
        );
        put(MAX_REQUEST_SIZE, self.max_request_size.to_string());
        put(RETRIES, self.retries.to_string());
        put(RETRY_BACKOFF_MS, millis(self.retry_backoff));
        put(RETRY_BACKOFF_MAX_MS, millis(self.retry_backoff_max));
        put(REQUEST_TIMEOUT_MS, millis(self.request_timeout));
        put(DELIVERY_TIMEOUT_MS, millis(self.delivery_timeout));
        put(
            MAX_IN_FLIGHT,
            self.max_in_flight_requests_per_connection.to_string(),
        );
        put(ENABLE_IDEMPOTENCE, self.enable_idempotence.to_string());
        put(
            PARTITIONER_IGNORE_KEYS,
            self.partitioner_ignore_keys.to_string(),
        );
        put(
            PARTITIONER_ADAPTIVE,
            self.partitioner_adaptive_partitioning_enable.to_string(),
        );
        put(
            PARTITIONER_AVAILABILITY_TIMEOUT_MS,
            millis(self.partitioner_availability_timeout),
        );
        put(METADATA_MAX_AGE_MS, millis(self.metadata_max_age));
        put(METADATA_MAX_IDLE_MS, millis(self.metadata_max_idle));
        put(RECONNECT_BACKOFF_MS, millis(self.reconnect_backoff));
        put(RECONNECT_BACKOFF_MAX_MS, millis(self.reconnect_backoff_max));
        put(CONNECTIONS_MAX_IDLE_MS, millis(self.connections_max_idle));
        put(
            SOCKET_SETUP_TIMEOUT_MS,
            millis(self.socket_connection_setup_timeout),
        );
        put(
            SOCKET_SETUP_TIMEOUT_MAX_MS,
            millis(self.socket_connection_setup_timeout_max),
        );
        put(SEND_BUFFER_BYTES, self.send_buffer_bytes.to_string());
        put(RECEIVE_BUFFER_BYTES, self.receive_buffer_bytes.to_string());
        if let Some(id) = &self.transactional_id {
            put(TRANSACTIONAL_ID, id.clone());
        }
        put(TRANSACTION_TIMEOUT_MS, millis(self.transaction_timeout));
        put(
            ALLOW_AUTO_CREATE_TOPICS,
            self.allow_auto_create_topics.to_string(),
        );
        put(SECURITY_PROTOCOL, self.security_protocol.name().to_owned());
        props
    }

    /// The compression level to use for [`ProducerConfig::compression`]: the
    /// `compression.<codec>.level` of gzip, lz4 or zstd, or `None` for `none`, `snappy` and
    /// gzip's `-1` (the codec's default level).
    pub fn compression_level(&self) -> Option<i32> {
        match self.compression {
            Compression::Gzip if self.compression_gzip_level != GZIP_DEFAULT_LEVEL => {
                Some(self.compression_gzip_level)
            }
            Compression::Lz4 => Some(self.compression_lz4_level),
            Compression::Zstd => Some(self.compression_zstd_level),
            _ => None,
        }
    }

    /// Parses and validates a property map: the one code path behind the builder and
    /// [`ProducerConfig::from_properties`].
    fn from_map(map: &BTreeMap<String, String>) -> Result<Self, Error> {
        check_known_keys(map, PRODUCER_KEYS)?;
        let p = Props(map);

        let bootstrap_servers =
            parse_bootstrap_servers(BOOTSTRAP_SERVERS, p.value(BOOTSTRAP_SERVERS))?;
        let acks = p
            .value(ACKS)
            .map_or(Ok(Acks::All), |v| Acks::parse(ACKS, v))?;
        let linger = p.ms::<i64>(LINGER_MS, 5, 0)?;
        let batch_size = to_usize(BATCH_SIZE, p.int::<i32>(BATCH_SIZE, 16_384, 0..=i32::MAX)?)?;
        let buffer_memory = to_usize(
            BUFFER_MEMORY,
            p.int::<i64>(BUFFER_MEMORY, 32 * 1024 * 1024, 0..=i64::MAX)?,
        )?;
        let max_block = p.ms::<i64>(MAX_BLOCK_MS, 60_000, 0)?;
        let compression = match p.value(COMPRESSION_TYPE) {
            None => Compression::None,
            Some(v) => Compression::from_name(v).ok_or_else(|| {
                invalid(
                    COMPRESSION_TYPE,
                    v,
                    "expected one of none, gzip, snappy, lz4, zstd",
                )
            })?,
        };
        let compression_gzip_level = p.int::<i32>(
            COMPRESSION_GZIP_LEVEL,
            GZIP_DEFAULT_LEVEL,
            i32::MIN..=i32::MAX,
        )?;
        if compression_gzip_level != GZIP_DEFAULT_LEVEL
            && !GZIP_LEVELS.contains(&compression_gzip_level)
        {
            return Err(invalid(
                COMPRESSION_GZIP_LEVEL,
                &compression_gzip_level.to_string(),
                &format!(
                    "must be between {} and {} or equal to {GZIP_DEFAULT_LEVEL}",
                    GZIP_LEVELS.start(),
                    GZIP_LEVELS.end()
                ),
            ));
        }
        let compression_lz4_level =
            p.int::<i32>(COMPRESSION_LZ4_LEVEL, LZ4_DEFAULT_LEVEL, LZ4_LEVELS)?;
        let compression_zstd_level =
            p.int::<i32>(COMPRESSION_ZSTD_LEVEL, ZSTD_DEFAULT_LEVEL, ZSTD_LEVELS)?;
        let max_request_size = to_usize(
            MAX_REQUEST_SIZE,
            p.int::<i32>(MAX_REQUEST_SIZE, 1024 * 1024, 0..=i32::MAX)?,
        )?;
        let retries = p
            .int::<i32>(RETRIES, i32::MAX, 0..=i32::MAX)?
            .unsigned_abs();
        let retry_backoff = p.ms::<i64>(RETRY_BACKOFF_MS, 100, 0)?;
        let retry_backoff_max = p.ms::<i64>(RETRY_BACKOFF_MAX_MS, 1_000, 0)?;
        let request_timeout = p.ms::<i32>(REQUEST_TIMEOUT_MS, 30_000, 0)?;
        let mut delivery_timeout = p.ms::<i32>(DELIVERY_TIMEOUT_MS, 120_000, 0)?;
        let max_in_flight_requests_per_connection =
            to_usize(MAX_IN_FLIGHT, p.int::<i32>(MAX_IN_FLIGHT, 5, 1..=i32::MAX)?)?;
        let mut enable_idempotence = p.bool(ENABLE_IDEMPOTENCE, true)?;
        let partitioner_ignore_keys = p.bool(PARTITIONER_IGNORE_KEYS, false)?;
        let partitioner_adaptive_partitioning_enable = p.bool(PARTITIONER_ADAPTIVE, true)?;
        let partitioner_availability_timeout =
            p.ms::<i64>(PARTITIONER_AVAILABILITY_TIMEOUT_MS, 0, 0)?;
        let metadata_max_age = p.ms::<i64>(METADATA_MAX_AGE_MS, 300_000, 0)?;
        let metadata_max_idle = p.ms::<i64>(METADATA_MAX_IDLE_MS, 300_000, 5_000)?;
        let reconnect_backoff = p.ms::<i64>(RECONNECT_BACKOFF_MS, 50, 0)?;
        let mut reconnect_backoff_max = p.ms::<i64>(RECONNECT_BACKOFF_MAX_MS, 1_000, 0)?;
        let connections_max_idle = p.ms::<i64>(CONNECTIONS_MAX_IDLE_MS, 540_000, 0)?;
        let socket_connection_setup_timeout = p.ms::<i64>(SOCKET_SETUP_TIMEOUT_MS, 10_000, 0)?;
        let socket_connection_setup_timeout_max =
            p.ms::<i64>(SOCKET_SETUP_TIMEOUT_MAX_MS, 30_000, 0)?;
        let send_buffer_bytes = p.int::<i32>(SEND_BUFFER_BYTES, 128 * 1024, -1..=i32::MAX)?;
        let receive_buffer_bytes = p.int::<i32>(RECEIVE_BUFFER_BYTES, 32 * 1024, -1..=i32::MAX)?;
        let transactional_id = match p.value(TRANSACTIONAL_ID) {
            None => None,
            Some("") => return Err(config_error(TRANSACTIONAL_ID, "must be non-empty")),
            Some(v) => Some(v.to_owned()),
        };
        let transaction_timeout = p.ms::<i32>(TRANSACTION_TIMEOUT_MS, 60_000, 0)?;
        let allow_auto_create_topics = p.bool(ALLOW_AUTO_CREATE_TOPICS, true)?;
        let security_protocol = p
            .value(SECURITY_PROTOCOL)
            .map_or(Ok(SecurityProtocol::Plaintext), |v| {
                SecurityProtocol::parse(SECURITY_PROTOCOL, v)
            })?;

        // CommonClientConfigs.warnDisablingExponentialBackoff: accepted, with a warning.
        if retry_backoff > retry_backoff_max {
            tracing::warn!(
                "configuration `{RETRY_BACKOFF_MS}` ({} ms) is greater than `{RETRY_BACKOFF_MAX_MS}` \
                 ({} ms); a static backoff of {} ms will be applied",
                retry_backoff.as_millis(),
                retry_backoff_max.as_millis(),
                retry_backoff_max.as_millis(),
            );
        }
        if socket_connection_setup_timeout > socket_connection_setup_timeout_max {
            tracing::warn!(
                "configuration `{SOCKET_SETUP_TIMEOUT_MS}` ({} ms) is greater than \
                 `{SOCKET_SETUP_TIMEOUT_MAX_MS}` ({} ms); a static connection setup timeout of \
                 {} ms will be applied",
                socket_connection_setup_timeout.as_millis(),
                socket_connection_setup_timeout_max.as_millis(),
                socket_connection_setup_timeout_max.as_millis(),
            );
        }

        // CommonClientConfigs.postProcessReconnectBackoffConfigs.
        if p.explicit(RECONNECT_BACKOFF_MS) && !p.explicit(RECONNECT_BACKOFF_MAX_MS) {
            tracing::warn!(
                "disabling exponential reconnect backoff because `{RECONNECT_BACKOFF_MS}` is set, \
                 but `{RECONNECT_BACKOFF_MAX_MS}` is not"
            );
            reconnect_backoff_max = reconnect_backoff;
        }

        // ProducerConfig.postProcessAndValidateIdempotenceConfigs.
        let idempotence_explicit = p.explicit(ENABLE_IDEMPOTENCE);
        if enable_idempotence {
            let mut disable = false;
            if retries == 0 {
                if idempotence_explicit {
                    return Err(config_error(
                        RETRIES,
                        "must be non-zero when using the idempotent producer",
                    ));
                }
                tracing::info!("idempotence will be disabled because `{RETRIES}` is set to 0");
                disable = true;
            }
            if acks != Acks::All {
                if idempotence_explicit {
                    return Err(config_error(
                        ACKS,
                        "must be `all` in order to use the idempotent producer, otherwise \
                         idempotence cannot be guaranteed",
                    ));
                }
                tracing::info!(
                    "idempotence will be disabled because `{ACKS}` is set to {}, not to `all`",
                    acks.as_i16()
                );
                disable = true;
            }
            if max_in_flight_requests_per_connection > MAX_IN_FLIGHT_FOR_IDEMPOTENCE {
                return Err(config_error(
                    MAX_IN_FLIGHT,
                    format!(
                        "must be at most {MAX_IN_FLIGHT_FOR_IDEMPOTENCE} to use the idempotent \
                         producer (current value is {max_in_flight_requests_per_connection}); \
                         set `{ENABLE_IDEMPOTENCE}=false` to allow more"
                    ),
                ));
            }
            if disable {
                enable_idempotence = false;
            }
        }
        if transactional_id.is_some() && !enable_idempotence {
            return Err(config_error(
                TRANSACTIONAL_ID,
                "cannot set a transactional.id without also enabling idempotence",
            ));
        }

        // KafkaProducer.configureDeliveryTimeout.
        let linger_and_request_timeout = millis_i64(linger)
            .min(i64::from(i32::MAX))
            .saturating_add(millis_i64(request_timeout))
            .min(i64::from(i32::MAX));
        if millis_i64(delivery_timeout) < linger_and_request_timeout {
            if p.explicit(DELIVERY_TIMEOUT_MS) {
                return Err(config_error(
                    DELIVERY_TIMEOUT_MS,
                    format!(
                        "should be equal to or larger than {LINGER_MS} + {REQUEST_TIMEOUT_MS} \
                         ({linger_and_request_timeout} ms), got {} ms",
                        delivery_timeout.as_millis()
                    ),
                ));
            }
            tracing::warn!(
                "`{DELIVERY_TIMEOUT_MS}` should be equal to or larger than `{LINGER_MS}` + \
                 `{REQUEST_TIMEOUT_MS}`; setting it to {linger_and_request_timeout} ms"
            );
            delivery_timeout = ms_duration(linger_and_request_timeout);
        }

        // ProducerConfig.maybeOverrideClientId, last so that a failed build uses no number.
        let client_id = match p.value(CLIENT_ID) {
            Some(id) => id.to_owned(),
            None => match &transactional_id {
                Some(txn) => format!("producer-{txn}"),
                None => format!(
                    "producer-{}",
                    PRODUCER_CLIENT_ID_SEQUENCE.fetch_add(1, Ordering::Relaxed)
                ),
            },
        };

        Ok(ProducerConfig {
            bootstrap_servers,
            client_id,
            acks,
            linger,
            batch_size,
            buffer_memory,
            max_block,
            compression,
            compression_gzip_level,
            compression_lz4_level,
            compression_zstd_level,
            max_request_size,
            retries,
            retry_backoff,
            retry_backoff_max,
            request_timeout,
            delivery_timeout,
            max_in_flight_requests_per_connection,
            enable_idempotence,
            partitioner_ignore_keys,
            partitioner_adaptive_partitioning_enable,
            partitioner_availability_timeout,
            metadata_max_age,
            metadata_max_idle,
            reconnect_backoff,
            reconnect_backoff_max,
            connections_max_idle,
            socket_connection_setup_timeout,
            socket_connection_setup_timeout_max,
            send_buffer_bytes,
            receive_buffer_bytes,
            transactional_id,
            transaction_timeout,
            allow_auto_create_topics,
            security_protocol,
        })
    }
}

/// Builds a [`ProducerConfig`] from typed setters and string properties.
///
/// Every setter stores a string under the Kafka key (the typed ones store their value's
/// string form), so nothing is checked until [`ProducerConfigBuilder::build`], which parses
/// and validates everything at once. Setting a key again replaces its value.
#[derive(Debug, Clone, Default)]
pub struct ProducerConfigBuilder {
    props: BTreeMap<String, String>,
}

impl ProducerConfigBuilder {
    /// Sets `key` (a Kafka key such as `linger.ms`) to `value`, as in a properties file.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.props.insert(key.into(), value.into());
        self
    }

    /// Sets a duration key from `d`, in whole milliseconds (sub-millisecond parts are dropped).
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

    /// Sets `acks`.
    pub fn acks(self, acks: Acks) -> Self {
        self.set(ACKS, acks.config_value())
    }

    /// Sets `linger.ms`.
    pub fn linger(self, d: Duration) -> Self {
        self.set_ms(LINGER_MS, d)
    }

    /// Sets `batch.size`, in bytes.
    pub fn batch_size(self, bytes: usize) -> Self {
        self.set(BATCH_SIZE, bytes.to_string())
    }

    /// Sets `buffer.memory`, in bytes.
    pub fn buffer_memory(self, bytes: usize) -> Self {
        self.set(BUFFER_MEMORY, bytes.to_string())
    }

    /// Sets `max.block.ms`.
    pub fn max_block(self, d: Duration) -> Self {
        self.set_ms(MAX_BLOCK_MS, d)
    }

    /// Sets `compression.type`.
    pub fn compression(self, compression: Compression) -> Self {
        self.set(COMPRESSION_TYPE, compression.name())
    }

    /// Sets `compression.gzip.level` (1-9, or -1 for the default).
    pub fn compression_gzip_level(self, level: i32) -> Self {
        self.set(COMPRESSION_GZIP_LEVEL, level.to_string())
    }

    /// Sets `compression.lz4.level` (1-17).
    pub fn compression_lz4_level(self, level: i32) -> Self {
        self.set(COMPRESSION_LZ4_LEVEL, level.to_string())
    }

    /// Sets `compression.zstd.level` (-131072 to 22).
    pub fn compression_zstd_level(self, level: i32) -> Self {
        self.set(COMPRESSION_ZSTD_LEVEL, level.to_string())
    }

    /// Sets `max.request.size`, in bytes.
    pub fn max_request_size(self, bytes: usize) -> Self {
        self.set(MAX_REQUEST_SIZE, bytes.to_string())
    }

    /// Sets `retries`.
    pub fn retries(self, retries: u32) -> Self {
        self.set(RETRIES, retries.to_string())
    }

    /// Sets `retry.backoff.ms`.
    pub fn retry_backoff(self, d: Duration) -> Self {
        self.set_ms(RETRY_BACKOFF_MS, d)
    }

    /// Sets `retry.backoff.max.ms`.
    pub fn retry_backoff_max(self, d: Duration) -> Self {
        self.set_ms(RETRY_BACKOFF_MAX_MS, d)
    }

    /// Sets `request.timeout.ms`.
    pub fn request_timeout(self, d: Duration) -> Self {
        self.set_ms(REQUEST_TIMEOUT_MS, d)
    }

    /// Sets `delivery.timeout.ms`.
    pub fn delivery_timeout(self, d: Duration) -> Self {
        self.set_ms(DELIVERY_TIMEOUT_MS, d)
    }

    /// Sets `max.in.flight.requests.per.connection`.
    pub fn max_in_flight_requests_per_connection(self, n: usize) -> Self {
        self.set(MAX_IN_FLIGHT, n.to_string())
    }

    /// Sets `enable.idempotence` (which makes it explicitly set: conflicts become errors).
    pub fn enable_idempotence(self, enable: bool) -> Self {
        self.set(ENABLE_IDEMPOTENCE, enable.to_string())
    }

    /// Sets `partitioner.ignore.keys`.
    pub fn partitioner_ignore_keys(self, ignore: bool) -> Self {
        self.set(PARTITIONER_IGNORE_KEYS, ignore.to_string())
    }

    /// Sets `partitioner.adaptive.partitioning.enable`.
    pub fn partitioner_adaptive_partitioning_enable(self, enable: bool) -> Self {
        self.set(PARTITIONER_ADAPTIVE, enable.to_string())
    }

    /// Sets `partitioner.availability.timeout.ms`.
    pub fn partitioner_availability_timeout(self, d: Duration) -> Self {
        self.set_ms(PARTITIONER_AVAILABILITY_TIMEOUT_MS, d)
    }

    /// Sets `metadata.max.age.ms`.
    pub fn metadata_max_age(self, d: Duration) -> Self {
        self.set_ms(METADATA_MAX_AGE_MS, d)
    }

    /// Sets `metadata.max.idle.ms`.
    pub fn metadata_max_idle(self, d: Duration) -> Self {
        self.set_ms(METADATA_MAX_IDLE_MS, d)
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

    /// Sets `socket.connection.setup.timeout.max.ms`.
    pub fn socket_connection_setup_timeout_max(self, d: Duration) -> Self {
        self.set_ms(SOCKET_SETUP_TIMEOUT_MAX_MS, d)
    }

    /// Sets `send.buffer.bytes` (-1 for the OS default).
    pub fn send_buffer_bytes(self, bytes: i32) -> Self {
        self.set(SEND_BUFFER_BYTES, bytes.to_string())
    }

    /// Sets `receive.buffer.bytes` (-1 for the OS default).
    pub fn receive_buffer_bytes(self, bytes: i32) -> Self {
        self.set(RECEIVE_BUFFER_BYTES, bytes.to_string())
    }

    /// Sets `transactional.id`.
    pub fn transactional_id(self, id: impl Into<String>) -> Self {
        self.set(TRANSACTIONAL_ID, id)
    }

    /// Sets `transaction.timeout.ms`.
    pub fn transaction_timeout(self, d: Duration) -> Self {
        self.set_ms(TRANSACTION_TIMEOUT_MS, d)
    }

    /// Sets `allow.auto.create.topics`.
    pub fn allow_auto_create_topics(self, allow: bool) -> Self {
        self.set(ALLOW_AUTO_CREATE_TOPICS, allow.to_string())
    }

    /// Sets `security.protocol`.
    pub fn security_protocol(self, protocol: SecurityProtocol) -> Self {
        self.set(SECURITY_PROTOCOL, protocol.name())
    }

    /// Parses and validates every key set so far.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key for an unknown key, a value that does not parse or
    /// is out of range, a missing `bootstrap.servers`, or conflicting keys (see the
    /// [module documentation](self)).
    pub fn build(self) -> Result<ProducerConfig, Error> {
        ProducerConfig::from_map(&self.props)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing helpers, shared by every client configuration of this module
// ---------------------------------------------------------------------------------------------

/// An [`Error::Config`] for `key`.
fn config_error(key: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// An [`Error::Config`] for a bad `value` of `key`.
fn invalid(key: &str, value: &str, why: &str) -> Error {
    config_error(key, format!("invalid value `{value}`: {why}"))
}

/// Rejects the first key of `map` that is not in `known`.
fn check_known_keys(map: &BTreeMap<String, String>, known: &[&str]) -> Result<(), Error> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(config_error(key, "unknown configuration")),
        None => Ok(()),
    }
}

/// A Java config integer type: `INT` (`i32`) or `LONG` (`i64`).
trait JavaInt: FromStr + PartialOrd + Display + Copy + Into<i64> {
    /// The Java type name, for error messages.
    const NAME: &'static str;
    /// The largest value.
    const MAX: Self;
}

impl JavaInt for i32 {
    const NAME: &'static str = "INT";
    const MAX: Self = i32::MAX;
}

impl JavaInt for i64 {
    const NAME: &'static str = "LONG";
    const MAX: Self = i64::MAX;
}

/// Parses a trimmed boolean as Java does: `true` or `false`, in any case.
fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, value, "expected true or false"))
    }
}

/// Parses a trimmed integer of Java type `T` and checks it is in `range`.
fn parse_int<T: JavaInt>(key: &str, value: &str, range: RangeInclusive<T>) -> Result<T, Error> {
    let n: T = value
        .parse()
        .map_err(|_| invalid(key, value, &format!("not a number of type {}", T::NAME)))?;
    if range.contains(&n) {
        return Ok(n);
    }
    let why = if *range.end() == T::MAX {
        format!("must be at least {}", range.start())
    } else {
        format!("must be between {} and {}", range.start(), range.end())
    };
    Err(invalid(key, value, &why))
}

/// Parses a trimmed duration in milliseconds, of Java type `T`, that must be at least
/// `min_ms` (itself at least 0: negative durations are never accepted).
fn parse_ms<T: JavaInt>(key: &str, value: &str, min_ms: T) -> Result<Duration, Error> {
    debug_assert!(min_ms.into() >= 0, "durations cannot be negative");
    parse_int(key, value, min_ms..=T::MAX).map(|n| ms_duration(n.into()))
}

/// A non-negative number of milliseconds as a [`Duration`] (negative values become zero).
fn ms_duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A duration in whole milliseconds, saturated to `i64::MAX`.
fn millis_i64(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A duration as a config value: whole milliseconds.
fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// A validated non-negative size as `usize` (fails only where `usize` is narrower).
fn to_usize(key: &str, n: impl Into<i64>) -> Result<usize, Error> {
    let n = n.into();
    usize::try_from(n).map_err(|_| invalid(key, &n.to_string(), "too large for this platform"))
}

/// Parses a `bootstrap.servers` value: comma-separated `host:port` entries, empty entries
/// skipped (as Java does), at least one required.
fn parse_bootstrap_servers(key: &str, value: Option<&str>) -> Result<Vec<String>, Error> {
    let value = value.ok_or_else(|| {
        config_error(
            key,
            "missing required configuration (a comma-separated list of host:port)",
        )
    })?;
    let servers = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| check_host_port(key, s).map(|()| s.to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(config_error(key, "must list at least one host:port"));
    }
    Ok(servers)
}

/// Checks one `host:port` (or `[ipv6]:port`) address.
fn check_host_port(key: &str, address: &str) -> Result<(), Error> {
    let bad = |why: &str| config_error(key, format!("invalid address `{address}`: {why}"));
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| bad("missing `]` after the IPv6 address"))?,
        None if host.contains(':') => {
            return Err(bad(
                "an IPv6 address must be written in brackets: [addr]:port",
            ))
        }
        None => host,
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '%' | ':'))
    {
        return Err(bad("the host contains invalid characters"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(bad("the port must be a number from 1 to 65535")),
    }
}

/// Typed, defaulted access to a property map. Values are trimmed; a key is *explicitly set*
/// when it is in the map.
struct Props<'a>(&'a BTreeMap<String, String>);

impl<'a> Props<'a> {
    /// Whether `key` was set (by a typed setter or as a property).
    fn explicit(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The trimmed value of `key`, if set.
    fn value(&self, key: &str) -> Option<&'a str> {
        self.0.get(key).map(|v| v.trim())
    }

    /// A boolean, `default` when unset.
    fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        self.value(key).map_or(Ok(default), |v| parse_bool(key, v))
    }

    /// An integer of Java type `T` in `range`, `default` when unset.
    fn int<T: JavaInt>(&self, key: &str, default: T, range: RangeInclusive<T>) -> Result<T, Error> {
        self.value(key)
            .map_or(Ok(default), |v| parse_int(key, v, range))
    }

    /// A duration in milliseconds of Java type `T`, at least `min_ms`; `default_ms` when unset.
    fn ms<T: JavaInt>(&self, key: &str, default_ms: T, min_ms: T) -> Result<Duration, Error> {
        match self.value(key) {
            None => Ok(ms_duration(default_ms.into())),
            Some(v) => parse_ms(key, v, min_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Result<ProducerConfig, Error> {
        let mut all = vec![("bootstrap.servers", "localhost:9092")];
        all.extend_from_slice(pairs);
        ProducerConfig::from_properties(all.iter().copied())
    }

    /// The key of a configuration error; panics on success or another error.
    fn err_key(result: Result<ProducerConfig, Error>) -> String {
        match result {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn err_reason(result: Result<ProducerConfig, Error>) -> String {
        match result {
            Err(Error::Config { reason, .. }) => reason,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn defaults_are_the_java_4_0_defaults() {
        let c = ProducerConfig::new("localhost:9092").unwrap();
        assert_eq!(c.bootstrap_servers, ["localhost:9092"]);
        assert!(c.client_id.starts_with("producer-"), "{}", c.client_id);
        assert_eq!(c.acks, Acks::All);
        assert_eq!(c.linger, ms(5));
        assert_eq!(c.batch_size, 16_384);
        assert_eq!(c.buffer_memory, 33_554_432);
        assert_eq!(c.max_block, ms(60_000));
        assert_eq!(c.compression, Compression::None);
        assert_eq!(c.compression_gzip_level, -1);
        assert_eq!(c.compression_lz4_level, 9);
        assert_eq!(c.compression_zstd_level, 3);
        assert_eq!(c.max_request_size, 1_048_576);
        assert_eq!(c.retries, 2_147_483_647);
        assert_eq!(c.retry_backoff, ms(100));
        assert_eq!(c.retry_backoff_max, ms(1_000));
        assert_eq!(c.request_timeout, ms(30_000));
        assert_eq!(c.delivery_timeout, ms(120_000));
        assert_eq!(c.max_in_flight_requests_per_connection, 5);
        assert!(c.enable_idempotence);
        assert!(!c.partitioner_ignore_keys);
        assert!(c.partitioner_adaptive_partitioning_enable);
        assert_eq!(c.partitioner_availability_timeout, Duration::ZERO);
        assert_eq!(c.metadata_max_age, ms(300_000));
        assert_eq!(c.metadata_max_idle, ms(300_000));
        assert_eq!(c.reconnect_backoff, ms(50));
        assert_eq!(c.reconnect_backoff_max, ms(1_000));
        assert_eq!(c.connections_max_idle, ms(540_000));
        assert_eq!(c.socket_connection_setup_timeout, ms(10_000));
        assert_eq!(c.socket_connection_setup_timeout_max, ms(30_000));
        assert_eq!(c.send_buffer_bytes, 131_072);
        assert_eq!(c.receive_buffer_bytes, 32_768);
        assert_eq!(c.transactional_id, None);
        assert_eq!(c.transaction_timeout, ms(60_000));
        assert!(c.allow_auto_create_topics);
        assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(c.compression_level(), None);
    }

    #[test]
    fn default_properties_list_every_key() {
        let c = ProducerConfig::new("localhost:9092").unwrap();
        let p = c.to_properties();
        let expected = [
            ("acks", "all"),
            ("allow.auto.create.topics", "true"),
            ("batch.size", "16384"),
            ("bootstrap.servers", "localhost:9092"),
            ("buffer.memory", "33554432"),
            ("compression.gzip.level", "-1"),
            ("compression.lz4.level", "9"),
            ("compression.type", "none"),
            ("compression.zstd.level", "3"),
            ("connections.max.idle.ms", "540000"),
            ("delivery.timeout.ms", "120000"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("max.block.ms", "60000"),
            ("max.in.flight.requests.per.connection", "5"),
            ("max.request.size", "1048576"),
            ("metadata.max.age.ms", "300000"),
            ("metadata.max.idle.ms", "300000"),
            ("partitioner.adaptive.partitioning.enable", "true"),
            ("partitioner.availability.timeout.ms", "0"),
            ("partitioner.ignore.keys", "false"),
            ("receive.buffer.bytes", "32768"),
            ("reconnect.backoff.max.ms", "1000"),
            ("reconnect.backoff.ms", "50"),
            ("request.timeout.ms", "30000"),
            ("retries", "2147483647"),
            ("retry.backoff.max.ms", "1000"),
            ("retry.backoff.ms", "100"),
            ("security.protocol", "PLAINTEXT"),
            ("send.buffer.bytes", "131072"),
            ("socket.connection.setup.timeout.max.ms", "30000"),
            ("socket.connection.setup.timeout.ms", "10000"),
            ("transaction.timeout.ms", "60000"),
        ];
        for (key, value) in expected {
            assert_eq!(p.get(key).map(String::as_str), Some(value), "{key}");
        }
        assert_eq!(p[CLIENT_ID], c.client_id);
        assert!(!p.contains_key(TRANSACTIONAL_ID));
        // Every known key but transactional.id (unset) and client.id (checked above).
        assert_eq!(p.len(), expected.len() + 1);
        assert_eq!(PRODUCER_KEYS.len(), p.len() + 1);
    }

    #[test]
    fn unknown_key_is_an_error() {
        let result = props(&[("linger.msx", "5")]);
        assert_eq!(
            err_reason(props(&[("linger.msx", "5")])),
            "unknown configuration"
        );
        assert_eq!(err_key(result), "linger.msx");
        // Java-only keys are unknown here too.
        assert_eq!(err_key(props(&[("key.serializer", "x")])), "key.serializer");
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        let cases: &[(&str, &str)] = &[
            ("enable.idempotence", "yes"),
            ("enable.idempotence", "1"),
            ("linger.ms", "abc"),
            ("linger.ms", "-1"),
            ("linger.ms", "1.5"),
            ("batch.size", "-1"),
            ("batch.size", "2147483648"),
            ("buffer.memory", "-1"),
            ("max.block.ms", "-1"),
            ("request.timeout.ms", "2147483648"),
            ("retries", "-1"),
            ("max.in.flight.requests.per.connection", "0"),
            ("metadata.max.idle.ms", "4999"),
            ("metadata.max.age.ms", "-5"),
            ("send.buffer.bytes", "-2"),
            ("receive.buffer.bytes", "small"),
            ("compression.type", "brotli"),
            ("compression.type", "GZIP"),
            ("compression.gzip.level", "0"),
            ("compression.gzip.level", "10"),
            ("compression.gzip.level", "-2"),
            ("compression.lz4.level", "0"),
            ("compression.lz4.level", "18"),
            ("compression.zstd.level", "-131073"),
            ("compression.zstd.level", "23"),
            ("acks", "2"),
            ("acks", "All"),
            ("security.protocol", "TLS"),
            ("transaction.timeout.ms", "-1"),
            ("connections.max.idle.ms", "-1"),
            ("partitioner.availability.timeout.ms", "-1"),
            ("reconnect.backoff.ms", "-1"),
        ];
        for &(key, value) in cases {
            let result = props(&[(key, value)]);
            match result {
                Err(Error::Config { key: k, reason }) => {
                    assert_eq!(k, key, "{key}={value}: {reason}");
                    assert!(
                        reason.contains(&format!("`{value}`")),
                        "{key}={value}: {reason}"
                    );
                }
                other => panic!("{key}={value}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn values_are_trimmed_and_booleans_are_case_insensitive() {
        let c = props(&[
            ("linger.ms", " 10 "),
            ("enable.idempotence", " TRUE "),
            ("partitioner.ignore.keys", "True"),
            ("acks", " all "),
            ("compression.type", " lz4 "),
            ("security.protocol", "plaintext"),
        ])
        .unwrap();
        assert_eq!(c.linger, ms(10));
        assert!(c.enable_idempotence);
        assert!(c.partitioner_ignore_keys);
        assert_eq!(c.compression, Compression::Lz4);
    }

    #[test]
    fn ranges_accept_their_bounds() {
        let c = props(&[
            ("compression.gzip.level", "9"),
            ("compression.lz4.level", "17"),
            ("compression.zstd.level", "-131072"),
            ("metadata.max.idle.ms", "5000"),
            ("send.buffer.bytes", "-1"),
            ("receive.buffer.bytes", "-1"),
            ("batch.size", "0"),
            ("max.request.size", "0"),
            ("max.in.flight.requests.per.connection", "1"),
            ("linger.ms", "0"),
        ])
        .unwrap();
        assert_eq!(c.compression_gzip_level, 9);
        assert_eq!(c.compression_lz4_level, 17);
        assert_eq!(c.compression_zstd_level, -131_072);
        assert_eq!(c.metadata_max_idle, ms(5_000));
        assert_eq!(c.send_buffer_bytes, -1);
        assert_eq!(c.receive_buffer_bytes, -1);
        assert_eq!(c.batch_size, 0);
    }

    #[test]
    fn security_protocols_other_than_plaintext_are_not_supported() {
        for protocol in ["SSL", "SASL_PLAINTEXT", "sasl_ssl"] {
            let reason = err_reason(props(&[("security.protocol", protocol)]));
            assert!(reason.contains("not supported"), "{reason}");
        }
    }

    #[test]
    fn bootstrap_servers_are_required_and_checked() {
        assert_eq!(
            err_key(ProducerConfig::builder().build()),
            BOOTSTRAP_SERVERS
        );
        for bad in [
            "",
            " , ",
            "localhost",
            "localhost:",
            ":9092",
            "localhost:abc",
            "localhost:0",
            "localhost:65536",
            "localhost:+1",
            "::1:9092",
            "[::1:9092",
            "local host:9092",
            "a:1,b",
        ] {
            assert_eq!(
                err_key(ProducerConfig::new(bad)),
                BOOTSTRAP_SERVERS,
                "{bad:?}"
            );
        }
        let c = ProducerConfig::new(" a:1 ,, b.example.com:9092,[::1]:9093,").unwrap();
        assert_eq!(
            c.bootstrap_servers,
            ["a:1", "b.example.com:9092", "[::1]:9093"]
        );
        assert_eq!(
            c.to_properties()[BOOTSTRAP_SERVERS],
            "a:1,b.example.com:9092,[::1]:9093"
        );
    }

    #[test]
    fn explicit_idempotence_with_conflicts_is_an_error() {
        let on = ("enable.idempotence", "true");
        assert_eq!(err_key(props(&[on, ("acks", "1")])), ACKS);
        assert_eq!(err_key(props(&[on, ("acks", "0")])), ACKS);
        assert_eq!(err_key(props(&[on, ("retries", "0")])), RETRIES);
        assert_eq!(
            err_key(props(&[on, ("max.in.flight.requests.per.connection", "6")])),
            MAX_IN_FLIGHT
        );
        let c = props(&[
            on,
            ("acks", "-1"),
            ("max.in.flight.requests.per.connection", "5"),
        ])
        .unwrap();
        assert!(c.enable_idempotence);
    }

    #[test]
    fn default_idempotence_is_silently_disabled_by_acks_or_retries() {
        let c = props(&[("acks", "1")]).unwrap();
        assert!(!c.enable_idempotence);
        assert_eq!(c.acks, Acks::Leader);
        let c = props(&[("acks", "0")]).unwrap();
        assert!(!c.enable_idempotence);
        let c = props(&[("retries", "0")]).unwrap();
        assert!(!c.enable_idempotence);
        assert_eq!(c.retries, 0);
    }

    #[test]
    fn more_than_five_in_flight_needs_idempotence_disabled_explicitly() {
        // As in Java (testUpperboundCheckOfEnableIdempotence): an error even when idempotence
        // is only enabled by default, and even when acks would disable it.
        let six = ("max.in.flight.requests.per.connection", "6");
        assert_eq!(err_key(props(&[six])), MAX_IN_FLIGHT);
        assert_eq!(err_key(props(&[six, ("acks", "1")])), MAX_IN_FLIGHT);
        let c = props(&[six, ("enable.idempotence", "false")]).unwrap();
        assert!(!c.enable_idempotence);
        assert_eq!(c.max_in_flight_requests_per_connection, 6);
    }

    #[test]
    fn transactional_id_requires_idempotence() {
        let txn = ("transactional.id", "tx-1");
        assert_eq!(
            err_key(props(&[txn, ("enable.idempotence", "false")])),
            TRANSACTIONAL_ID
        );
        // Idempotence silently disabled by acks=1, then the transactional.id is refused.
        assert_eq!(err_key(props(&[txn, ("acks", "1")])), TRANSACTIONAL_ID);
        assert_eq!(
            err_key(props(&[("transactional.id", "  ")])),
            TRANSACTIONAL_ID
        );

        let c = props(&[txn]).unwrap();
        assert!(c.enable_idempotence);
        assert_eq!(c.transactional_id.as_deref(), Some("tx-1"));
        assert_eq!(c.client_id, "producer-tx-1");
        let c = props(&[txn, ("client.id", "app")]).unwrap();
        assert_eq!(c.client_id, "app");
    }

    #[test]
    fn delivery_timeout_is_raised_unless_set_explicitly() {
        // Not set: raised to linger.ms + request.timeout.ms.
        let c = props(&[("linger.ms", "100000")]).unwrap();
        assert_eq!(c.delivery_timeout, ms(130_000));
        let c = props(&[("request.timeout.ms", "200000")]).unwrap();
        assert_eq!(c.delivery_timeout, ms(200_005));
        // linger.ms is capped at i32::MAX and the sum saturates, as in Java.
        let c = props(&[("linger.ms", "9223372036854775807")]).unwrap();
        assert_eq!(c.delivery_timeout, ms(i32::MAX as u64));

        // Set explicitly: an error.
        let result = props(&[("delivery.timeout.ms", "30004")]);
        assert_eq!(err_key(result), DELIVERY_TIMEOUT_MS);
        let c = props(&[("delivery.timeout.ms", "30005")]).unwrap();
        assert_eq!(c.delivery_timeout, ms(30_005));
    }

    #[test]
    fn reconnect_backoff_max_follows_reconnect_backoff_when_only_that_is_set() {
        let c = props(&[("reconnect.backoff.ms", "200")]).unwrap();
        assert_eq!(c.reconnect_backoff, ms(200));
        assert_eq!(c.reconnect_backoff_max, ms(200));
        let c = props(&[
            ("reconnect.backoff.ms", "200"),
            ("reconnect.backoff.max.ms", "5000"),
        ])
        .unwrap();
        assert_eq!(c.reconnect_backoff_max, ms(5_000));
        let c = props(&[("reconnect.backoff.max.ms", "10")]).unwrap();
        assert_eq!(c.reconnect_backoff, ms(50));
        assert_eq!(c.reconnect_backoff_max, ms(10));
    }

    #[test]
    fn backoff_greater_than_its_max_is_accepted_as_configured() {
        let c = props(&[
            ("retry.backoff.ms", "2000"),
            ("retry.backoff.max.ms", "500"),
            ("socket.connection.setup.timeout.ms", "40000"),
        ])
        .unwrap();
        assert_eq!(c.retry_backoff, ms(2_000));
        assert_eq!(c.retry_backoff_max, ms(500));
        assert_eq!(c.socket_connection_setup_timeout, ms(40_000));
        assert_eq!(c.socket_connection_setup_timeout_max, ms(30_000));
    }

    #[test]
    fn client_id_is_generated_only_when_unset() {
        let a = ProducerConfig::new("localhost:9092").unwrap();
        let b = ProducerConfig::new("localhost:9092").unwrap();
        let number = |c: &ProducerConfig| -> usize {
            c.client_id
                .strip_prefix("producer-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{}", c.client_id))
        };
        assert!(number(&a) >= 1);
        assert_ne!(number(&a), number(&b));
        assert_eq!(props(&[("client.id", " app ")]).unwrap().client_id, "app");
        assert_eq!(props(&[("client.id", "")]).unwrap().client_id, "");
    }

    #[test]
    fn compression_level_follows_the_codec() {
        let level = |pairs: &[(&str, &str)]| props(pairs).unwrap().compression_level();
        assert_eq!(level(&[("compression.type", "none")]), None);
        assert_eq!(level(&[("compression.type", "snappy")]), None);
        assert_eq!(level(&[("compression.type", "gzip")]), None);
        assert_eq!(
            level(&[
                ("compression.type", "gzip"),
                ("compression.gzip.level", "4")
            ]),
            Some(4)
        );
        assert_eq!(level(&[("compression.type", "lz4")]), Some(9));
        assert_eq!(level(&[("compression.type", "zstd")]), Some(3));
        assert_eq!(
            level(&[
                ("compression.type", "zstd"),
                ("compression.zstd.level", "-5")
            ]),
            Some(-5)
        );
        // Levels of other codecs do not matter.
        assert_eq!(
            level(&[
                ("compression.type", "lz4"),
                ("compression.zstd.level", "19")
            ]),
            Some(9)
        );
    }

    #[test]
    fn acks_wire_values() {
        assert_eq!(Acks::None.as_i16(), 0);
        assert_eq!(Acks::Leader.as_i16(), 1);
        assert_eq!(Acks::All.as_i16(), -1);
        assert_eq!(props(&[("acks", "-1")]).unwrap().acks, Acks::All);
        assert_eq!(Acks::default(), Acks::All);
    }

    fn typed() -> ProducerConfigBuilder {
        ProducerConfig::builder()
            .bootstrap_servers("a:9092,b:9093")
            .client_id("typed")
            .acks(Acks::All)
            .linger(ms(25))
            .batch_size(65_536)
            .buffer_memory(1 << 26)
            .max_block(ms(1_000))
            .compression(Compression::Gzip)
            .compression_gzip_level(6)
            .compression_lz4_level(3)
            .compression_zstd_level(10)
            .max_request_size(2 << 20)
            .retries(10)
            .retry_backoff(ms(250))
            .retry_backoff_max(ms(4_000))
            .request_timeout(ms(20_000))
            .delivery_timeout(ms(60_000))
            .max_in_flight_requests_per_connection(3)
            .enable_idempotence(true)
            .partitioner_ignore_keys(true)
            .partitioner_adaptive_partitioning_enable(false)
            .partitioner_availability_timeout(ms(700))
            .metadata_max_age(ms(60_000))
            .metadata_max_idle(ms(90_000))
            .reconnect_backoff(ms(75))
            .reconnect_backoff_max(ms(2_000))
            .connections_max_idle(ms(100_000))
            .socket_connection_setup_timeout(ms(5_000))
            .socket_connection_setup_timeout_max(ms(20_000))
            .send_buffer_bytes(-1)
            .receive_buffer_bytes(65_536)
            .transactional_id("tx")
            .transaction_timeout(ms(30_000))
            .allow_auto_create_topics(false)
            .security_protocol(SecurityProtocol::Plaintext)
    }

    #[test]
    fn typed_and_string_forms_give_the_same_config() {
        let from_typed = typed().build().unwrap();
        let from_strings = ProducerConfig::from_properties([
            ("bootstrap.servers", "a:9092,b:9093"),
            ("client.id", "typed"),
            ("acks", "all"),
            ("linger.ms", "25"),
            ("batch.size", "65536"),
            ("buffer.memory", "67108864"),
            ("max.block.ms", "1000"),
            ("compression.type", "gzip"),
            ("compression.gzip.level", "6"),
            ("compression.lz4.level", "3"),
            ("compression.zstd.level", "10"),
            ("max.request.size", "2097152"),
            ("retries", "10"),
            ("retry.backoff.ms", "250"),
            ("retry.backoff.max.ms", "4000"),
            ("request.timeout.ms", "20000"),
            ("delivery.timeout.ms", "60000"),
            ("max.in.flight.requests.per.connection", "3"),
            ("enable.idempotence", "true"),
            ("partitioner.ignore.keys", "true"),
            ("partitioner.adaptive.partitioning.enable", "false"),
            ("partitioner.availability.timeout.ms", "700"),
            ("metadata.max.age.ms", "60000"),
            ("metadata.max.idle.ms", "90000"),
            ("reconnect.backoff.ms", "75"),
            ("reconnect.backoff.max.ms", "2000"),
            ("connections.max.idle.ms", "100000"),
            ("socket.connection.setup.timeout.ms", "5000"),
            ("socket.connection.setup.timeout.max.ms", "20000"),
            ("send.buffer.bytes", "-1"),
            ("receive.buffer.bytes", "65536"),
            ("transactional.id", "tx"),
            ("transaction.timeout.ms", "30000"),
            ("allow.auto.create.topics", "false"),
            ("security.protocol", "PLAINTEXT"),
        ])
        .unwrap();
        assert_eq!(from_typed, from_strings);
        assert_eq!(from_typed.linger, ms(25));
        assert_eq!(from_typed.compression_level(), Some(6));
        // The typed setters cover every key.
        assert_eq!(from_typed.to_properties().len(), PRODUCER_KEYS.len());
    }

    #[test]
    fn typed_setters_count_as_explicit() {
        // Explicit through the typed setter: conflicts are errors, as with `set`.
        let result = ProducerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .enable_idempotence(true)
            .acks(Acks::Leader)
            .build();
        assert_eq!(err_key(result), ACKS);
        let result = ProducerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .delivery_timeout(ms(1_000))
            .build();
        assert_eq!(err_key(result), DELIVERY_TIMEOUT_MS);
        // A duration too long for a Java LONG of milliseconds is refused at build time.
        let result = ProducerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .linger(Duration::MAX)
            .build();
        assert_eq!(err_key(result), LINGER_MS);
    }

    #[test]
    fn the_last_value_of_a_key_wins() {
        let c = ProducerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .linger(ms(7))
            .set("linger.ms", "8")
            .build()
            .unwrap();
        assert_eq!(c.linger, ms(8));
        let c = ProducerConfig::from_properties([
            ("bootstrap.servers", "localhost:9092"),
            ("acks", "0"),
            ("acks", "all"),
        ])
        .unwrap();
        assert_eq!(c.acks, Acks::All);
    }

    #[test]
    fn round_trip_through_properties() {
        let configs = [
            ProducerConfig::new("localhost:9092").unwrap(),
            typed().build().unwrap(),
            // Effective values after adjustments survive the round trip.
            props(&[
                ("acks", "1"),
                ("linger.ms", "100000"),
                ("reconnect.backoff.ms", "300"),
                ("retry.backoff.ms", "5000"),
                ("compression.type", "zstd"),
                ("compression.zstd.level", "-7"),
            ])
            .unwrap(),
        ];
        for config in configs {
            let props = config.to_properties();
            let again = ProducerConfig::from_properties(props.clone()).unwrap();
            assert_eq!(again, config);
            assert_eq!(again.to_properties(), props);
        }
    }
}
