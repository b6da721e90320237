//! Producer and consumer configuration, with the Java client's (Kafka 4.0) key names, defaults
//! and validation.
//!
//! A [`ProducerConfig`] is made either with the typed setters of [`ProducerConfigBuilder`] or
//! from string properties ([`ProducerConfig::from_properties`], [`ProducerConfigBuilder::set`]).
//! Both go through one code path: a typed setter stores the string form of its value under the
//! Kafka key, and [`ProducerConfigBuilder::build`] parses and validates the resulting property
//! map. A key is *explicitly set* when it is in that map, however it got there; several rules
//! depend on it, as in Java (`AbstractConfig::originals`). [`ConsumerConfig`] and
//! [`ConsumerConfigBuilder`] work the same way.
//!
//! # Producer rules
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
//! # Consumer rules
//!
//! * **`enable.auto.commit`** (default `true`) needs a `group.id`: without one, it is
//!   silently disabled when not set, and an error when set explicitly to `true`
//!   (`ConsumerConfig.maybeOverrideEnableAutoCommit`).
//! * **`heartbeat.interval.ms`** must be lower than `session.timeout.ms` when a `group.id` is
//!   set (Java checks it when it creates the group coordinator, which it only does then).
//! * **`group.instance.id`** must be a valid static member id (non-empty, at most 249 ASCII
//!   alphanumerics, `.`, `_`, `-`, not `.` or `..`). As in Java it does not require a
//!   `group.id` (it is then unused, with a warning). An empty `group.id` is accepted with a
//!   warning (deprecated in Java).
//! * **`client.id`**, when not set *or empty*, becomes `consumer-<group.id>-<group.instance.id>`
//!   or `consumer-<group.id>-N` from a process-wide counter starting at 1, with `null` for a
//!   missing `group.id` (`consumer-null-1`), exactly as Java's
//!   `ConsumerConfig.maybeOverrideClientId` builds it.
//! * **`partition.assignment.strategy`** takes the protocol names `range`, `roundrobin`,
//!   `sticky`, `cooperative-sticky` or the Java class names of those assignors
//!   (`org.apache.kafka.clients.consumer.RangeAssignor`, ...), and stores protocol names.
//!   Other (custom) assignors and duplicates are errors; an empty list is accepted, as in Java.
//! * Only `group.protocol=classic` is supported (`consumer`, KIP-848, is an error), and
//!   `auto.offset.reset` takes `earliest`, `latest` or `none` (not `by_duration:...`).
//! * `reconnect.backoff.max.ms` and the backoffs greater than their max follow the producer
//!   rules above.
//!
//! # Parsing
//!
//! Values are trimmed, then parsed strictly: integers as Java `INT` (32-bit) or `LONG`
//! (64-bit) depending on the key, booleans as `true`/`false` (any case). Ranges are Java's.
//! Durations are in milliseconds; negative durations are rejected, including for the keys
//! Java leaves unchecked (`connections.max.idle.ms`, `socket.connection.setup.timeout.ms`,
//! `socket.connection.setup.timeout.max.ms`, `transaction.timeout.ms`, `session.timeout.ms`,
//! `heartbeat.interval.ms`). Unknown keys are an error, so a typo does not go unnoticed. Only
//! `security.protocol=PLAINTEXT` is supported.
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
//!
//! A consumer in a group:
//!
//! ```
//! use std::time::Duration;
//!
//! use kafka_client::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
//!
//! let config = ConsumerConfig::builder()
//!     .bootstrap_servers("localhost:9092")
//!     .group_id("billing")
//!     .auto_offset_reset(AutoOffsetReset::Earliest)
//!     .isolation_level(IsolationLevel::ReadCommitted)
//!     .set("max.poll.records", "100")
//!     .build()?;
//! assert!(config.enable_auto_commit);
//! assert_eq!(config.max_poll_records, 100);
//! assert_eq!(config.partition_assignment_strategy, ["range", "cooperative-sticky"]);
//! assert!(config.client_id.starts_with("consumer-billing-"));
//!
//! // Without a group there is nothing to commit to: auto commit is off by default...
//! let config = ConsumerConfig::new("localhost:9092")?;
//! assert!(!config.enable_auto_commit);
//! // ...and an error when asked for explicitly.
//! assert!(ConsumerConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("enable.auto.commit", "true"),
//! ])
//! .is_err());
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

pub(crate) const BOOTSTRAP_SERVERS: &str = "bootstrap.servers";
pub(crate) const CLIENT_ID: &str = "client.id";
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
pub(crate) const RETRY_BACKOFF_MS: &str = "retry.backoff.ms";
pub(crate) const RETRY_BACKOFF_MAX_MS: &str = "retry.backoff.max.ms";
pub(crate) const REQUEST_TIMEOUT_MS: &str = "request.timeout.ms";
const DELIVERY_TIMEOUT_MS: &str = "delivery.timeout.ms";
const MAX_IN_FLIGHT: &str = "max.in.flight.requests.per.connection";
const ENABLE_IDEMPOTENCE: &str = "enable.idempotence";
const PARTITIONER_IGNORE_KEYS: &str = "partitioner.ignore.keys";
const PARTITIONER_ADAPTIVE: &str = "partitioner.adaptive.partitioning.enable";
const PARTITIONER_AVAILABILITY_TIMEOUT_MS: &str = "partitioner.availability.timeout.ms";
const METADATA_MAX_AGE_MS: &str = "metadata.max.age.ms";
const METADATA_MAX_IDLE_MS: &str = "metadata.max.idle.ms";
pub(crate) const RECONNECT_BACKOFF_MS: &str = "reconnect.backoff.ms";
pub(crate) const RECONNECT_BACKOFF_MAX_MS: &str = "reconnect.backoff.max.ms";
pub(crate) const CONNECTIONS_MAX_IDLE_MS: &str = "connections.max.idle.ms";
pub(crate) const SOCKET_SETUP_TIMEOUT_MS: &str = "socket.connection.setup.timeout.ms";
const SOCKET_SETUP_TIMEOUT_MAX_MS: &str = "socket.connection.setup.timeout.max.ms";
pub(crate) const SEND_BUFFER_BYTES: &str = "send.buffer.bytes";
pub(crate) const RECEIVE_BUFFER_BYTES: &str = "receive.buffer.bytes";
const TRANSACTIONAL_ID: &str = "transactional.id";
const TRANSACTION_TIMEOUT_MS: &str = "transaction.timeout.ms";
const ALLOW_AUTO_CREATE_TOPICS: &str = "allow.auto.create.topics";
pub(crate) const SECURITY_PROTOCOL: &str = "security.protocol";

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

// Consumer keys (the common ones above are shared).
const GROUP_ID: &str = "group.id";
const GROUP_INSTANCE_ID: &str = "group.instance.id";
const GROUP_PROTOCOL: &str = "group.protocol";
const AUTO_OFFSET_RESET: &str = "auto.offset.reset";
const ENABLE_AUTO_COMMIT: &str = "enable.auto.commit";
const AUTO_COMMIT_INTERVAL_MS: &str = "auto.commit.interval.ms";
const SESSION_TIMEOUT_MS: &str = "session.timeout.ms";
const HEARTBEAT_INTERVAL_MS: &str = "heartbeat.interval.ms";
const MAX_POLL_INTERVAL_MS: &str = "max.poll.interval.ms";
const MAX_POLL_RECORDS: &str = "max.poll.records";
const FETCH_MIN_BYTES: &str = "fetch.min.bytes";
const FETCH_MAX_BYTES: &str = "fetch.max.bytes";
const FETCH_MAX_WAIT_MS: &str = "fetch.max.wait.ms";
const MAX_PARTITION_FETCH_BYTES: &str = "max.partition.fetch.bytes";
const ISOLATION_LEVEL: &str = "isolation.level";
const PARTITION_ASSIGNMENT_STRATEGY: &str = "partition.assignment.strategy";
const CLIENT_RACK: &str = "client.rack";
const CHECK_CRCS: &str = "check.crcs";
const EXCLUDE_INTERNAL_TOPICS: &str = "exclude.internal.topics";
pub(crate) const DEFAULT_API_TIMEOUT_MS: &str = "default.api.timeout.ms";

/// Every key [`ConsumerConfig`] accepts.
const CONSUMER_KEYS: &[&str] = &[
    BOOTSTRAP_SERVERS,
    CLIENT_ID,
    GROUP_ID,
    GROUP_INSTANCE_ID,
    GROUP_PROTOCOL,
    AUTO_OFFSET_RESET,
    ENABLE_AUTO_COMMIT,
    AUTO_COMMIT_INTERVAL_MS,
    SESSION_TIMEOUT_MS,
    HEARTBEAT_INTERVAL_MS,
    MAX_POLL_INTERVAL_MS,
    MAX_POLL_RECORDS,
    FETCH_MIN_BYTES,
    FETCH_MAX_BYTES,
    FETCH_MAX_WAIT_MS,
    MAX_PARTITION_FETCH_BYTES,
    ISOLATION_LEVEL,
    PARTITION_ASSIGNMENT_STRATEGY,
    CLIENT_RACK,
    CHECK_CRCS,
    ALLOW_AUTO_CREATE_TOPICS,
    EXCLUDE_INTERNAL_TOPICS,
    REQUEST_TIMEOUT_MS,
    DEFAULT_API_TIMEOUT_MS,
    RETRY_BACKOFF_MS,
    RETRY_BACKOFF_MAX_MS,
    RECONNECT_BACKOFF_MS,
    RECONNECT_BACKOFF_MAX_MS,
    METADATA_MAX_AGE_MS,
    CONNECTIONS_MAX_IDLE_MS,
    SOCKET_SETUP_TIMEOUT_MS,
    SOCKET_SETUP_TIMEOUT_MAX_MS,
    SEND_BUFFER_BYTES,
    RECEIVE_BUFFER_BYTES,
    SECURITY_PROTOCOL,
];

/// The built-in assignors: protocol name and Java class name. Java's default
/// `partition.assignment.strategy` is `[RangeAssignor, CooperativeStickyAssignor]`.
const ASSIGNORS: &[(&str, &str)] = &[
    ("range", "org.apache.kafka.clients.consumer.RangeAssignor"),
    (
        "roundrobin",
        "org.apache.kafka.clients.consumer.RoundRobinAssignor",
    ),
    ("sticky", "org.apache.kafka.clients.consumer.StickyAssignor"),
    (
        "cooperative-sticky",
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
    ),
];
const DEFAULT_ASSIGNORS: &[&str] = &["range", "cooperative-sticky"];

/// `JoinGroupRequest.MAX_GROUP_INSTANCE_ID_LENGTH`.
const MAX_GROUP_INSTANCE_ID_LENGTH: usize = 249;

/// Java's `CONSUMER_CLIENT_ID_SEQUENCE`: numbers the generated `consumer-<group>-N` client ids.
static CONSUMER_CLIENT_ID_SEQUENCE: AtomicUsize = AtomicUsize::new(1);

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
        let reconnect_backoff_max = p.ms::<i64>(RECONNECT_BACKOFF_MAX_MS, 1_000, 0)?;
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
        let security_protocol = p.security_protocol()?;

        warn_disabled_exponential_backoffs(
            retry_backoff,
            retry_backoff_max,
            socket_connection_setup_timeout,
            socket_connection_setup_timeout_max,
        );
        let reconnect_backoff_max =
            effective_reconnect_backoff_max(&p, reconnect_backoff, reconnect_backoff_max);

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
// Consumer
// ---------------------------------------------------------------------------------------------

/// What the consumer does when a partition has no committed offset, or the committed offset
/// is out of range (`auto.offset.reset`).
///
/// Java 4.0's `by_duration:<ISO-8601 duration>` is not supported yet and is rejected with a
/// configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AutoOffsetReset {
    /// `earliest`: start from the log start offset.
    Earliest,
    /// `latest`: start from the log end offset (the high watermark, or the last stable offset
    /// with [`IsolationLevel::ReadCommitted`]). The default.
    #[default]
    Latest,
    /// `none`: fail the fetch with an error.
    None,
}

impl AutoOffsetReset {
    /// The configuration value: `earliest`, `latest` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
            AutoOffsetReset::None => "none",
        }
    }

    /// Parses a trimmed `auto.offset.reset` value (case-sensitive, as in Java).
    fn parse(key: &str, value: &str) -> Result<Self, Error> {
        match value {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            "none" => Ok(AutoOffsetReset::None),
            _ if value.starts_with("by_duration:") => Err(config_error(
                key,
                format!(
                    "`{value}` is not supported by this client (only earliest, latest, none are)"
                ),
            )),
            _ => Err(invalid(
                key,
                value,
                "expected one of earliest, latest, none",
            )),
        }
    }
}

/// Which records of transactional producers the consumer returns (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// `read_uncommitted`: every record, including those of aborted and still open
    /// transactions, up to the high watermark. The default.
    #[default]
    ReadUncommitted,
    /// `read_committed`: committed records only, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// The configuration value: `read_uncommitted` or `read_committed`.
    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }

    /// The value of the `isolation_level` field of Fetch and ListOffsets requests: 0 or 1.
    pub fn as_i8(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }

    /// Parses a trimmed `isolation.level` value (case-sensitive, as in Java).
    fn parse(key: &str, value: &str) -> Result<Self, Error> {
        match value {
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            _ => Err(invalid(
                key,
                value,
                "expected one of read_uncommitted, read_committed",
            )),
        }
    }
}

/// The consumer group protocol (`group.protocol`).
///
/// Only `classic` (JoinGroup/SyncGroup/Heartbeat, the default) is supported; `consumer`
/// (KIP-848) is rejected with a configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum GroupProtocol {
    /// `classic`: the client-side assignment protocol. The default.
    #[default]
    Classic,
}

impl GroupProtocol {
    /// The configuration value (`classic`).
    pub fn name(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
        }
    }

    /// Parses a trimmed `group.protocol` value (case-insensitive, as in Java).
    fn parse(key: &str, value: &str) -> Result<Self, Error> {
        let lower = value.to_ascii_lowercase();
        match lower.as_str() {
            "classic" => Ok(GroupProtocol::Classic),
            "consumer" => Err(config_error(
                key,
                format!("`{value}` is not supported by this client (only classic is)"),
            )),
            _ => Err(invalid(key, value, "expected one of classic, consumer")),
        }
    }
}

/// A validated consumer configuration.
///
/// Each field documents its Kafka key and default (the Java 4.0 client's). Build one with
/// [`ConsumerConfig::builder`], [`ConsumerConfig::from_properties`] or
/// [`ConsumerConfig::new`]; the values are the *effective* ones, after the adjustments
/// described in the [module documentation](self) (`enable.auto.commit` disabled without a
/// group, generated `client.id`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// `bootstrap.servers`: the `host:port` addresses used for the first metadata request.
    /// Required and non-empty; IPv6 addresses are written in brackets (`[::1]:9092`).
    pub bootstrap_servers: Vec<String>,
    /// `client.id`: sent with every request. When not set (or empty):
    /// `consumer-<group.id>-<group.instance.id>`, or `consumer-<group.id>-N` from a
    /// process-wide counter, with `null` for a missing group id, exactly as Java builds it.
    pub client_id: String,
    /// `group.id`: the consumer group. Default none: no group management and no offset
    /// commits (only manual assignment). An empty id is accepted with a warning (deprecated).
    pub group_id: Option<String>,
    /// `group.instance.id`: the static member id (KIP-345). Default none (dynamic member).
    /// Non-empty, at most 249 ASCII alphanumerics, `.`, `_` or `-`, and neither `.` nor `..`.
    pub group_instance_id: Option<String>,
    /// `group.protocol`: only [`GroupProtocol::Classic`] (the default) is supported.
    pub group_protocol: GroupProtocol,
    /// `auto.offset.reset`: default [`AutoOffsetReset::Latest`].
    pub auto_offset_reset: AutoOffsetReset,
    /// `enable.auto.commit`: commit the positions periodically in the background. Default
    /// `true`; effective value `false` without a `group.id` (see the module documentation).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`: how often offsets are auto-committed. Default 5000 ms.
    pub auto_commit_interval: Duration,
    /// `session.timeout.ms`: the group coordinator removes a member that sent no heartbeat
    /// for this long. Default 45000 ms.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`: the interval between heartbeats. Default 3000 ms; must be
    /// lower than `session.timeout.ms` when a `group.id` is set.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the longest time between two polls before the member leaves
    /// the group (also the rebalance timeout). Default 300000 ms, at least 1 ms.
    pub max_poll_interval: Duration,
    /// `max.poll.records`: the most records one poll returns. Default 500, at least 1.
    pub max_poll_records: usize,
    /// `fetch.min.bytes`: the least data the broker should wait for before answering a
    /// fetch. Default 1.
    pub fetch_min_bytes: usize,
    /// `fetch.max.bytes`: the most data the broker should return for a fetch (the first
    /// batch is always returned). Default 52428800 (50 MiB).
    pub fetch_max_bytes: usize,
    /// `fetch.max.wait.ms`: how long the broker may wait for `fetch.min.bytes`. Default
    /// 500 ms.
    pub fetch_max_wait: Duration,
    /// `max.partition.fetch.bytes`: the most data returned per partition (the first batch is
    /// always returned). Default 1048576 (1 MiB).
    pub max_partition_fetch_bytes: usize,
    /// `isolation.level`: default [`IsolationLevel::ReadUncommitted`].
    pub isolation_level: IsolationLevel,
    /// `partition.assignment.strategy`: the assignors, by preference, as protocol names
    /// (`range`, `roundrobin`, `sticky`, `cooperative-sticky`); Java class names are accepted
    /// and converted. Default `[range, cooperative-sticky]` (Java's `[RangeAssignor,
    /// CooperativeStickyAssignor]`). May be empty (fine for manual assignment).
    pub partition_assignment_strategy: Vec<String>,
    /// `client.rack`: the rack of the consumer, for fetching from the closest replica
    /// (KIP-392). Default none (Java's empty string).
    pub client_rack: Option<String>,
    /// `check.crcs`: verify the CRC32C of the fetched batches. Default `true`.
    pub check_crcs: bool,
    /// `allow.auto.create.topics`: whether metadata requests ask the broker to create
    /// subscribed or assigned topics that do not exist. Default `true`.
    pub allow_auto_create_topics: bool,
    /// `exclude.internal.topics`: leave internal topics (`__consumer_offsets`, ...) out of
    /// pattern subscriptions. Default `true`.
    pub exclude_internal_topics: bool,
    /// `request.timeout.ms`: how long to wait for a response. Default 30000 ms.
    pub request_timeout: Duration,
    /// `default.api.timeout.ms`: the timeout of the consumer calls that take no explicit
    /// timeout (commit, position, ...). Default 60000 ms.
    pub default_api_timeout: Duration,
    /// `retry.backoff.ms`: the initial backoff between retries. Default 100 ms.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the cap of the exponential retry backoff. Default 1000 ms.
    /// When smaller than `retry.backoff.ms`, Java applies a static backoff of this value.
    pub retry_backoff_max: Duration,
    /// `reconnect.backoff.ms`: the initial wait before reconnecting to a broker. Default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the cap of the exponential reconnect backoff. Default
    /// 1000 ms; equal to `reconnect.backoff.ms` when only that one is set.
    pub reconnect_backoff_max: Duration,
    /// `metadata.max.age.ms`: metadata is refreshed at least this often. Default 300000 ms.
    pub metadata_max_age: Duration,
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
    /// `receive.buffer.bytes`: `SO_RCVBUF`, or -1 for the OS default. Default 65536 (the
    /// consumer's; the producer's is 32768).
    pub receive_buffer_bytes: i32,
    /// `security.protocol`: only [`SecurityProtocol::Plaintext`] (the default) is supported.
    pub security_protocol: SecurityProtocol,
}

impl ConsumerConfig {
    /// A builder with every key unset.
    pub fn builder() -> ConsumerConfigBuilder {
        ConsumerConfigBuilder::default()
    }

    /// The default configuration for the given `bootstrap.servers` (a comma-separated
    /// `host:port` list): no group, so no auto commit.
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
    pub fn from_properties<I, K, V>(props: I) -> Result<ConsumerConfig, Error>
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

    /// Every key with its effective value, in the form [`ConsumerConfig::from_properties`]
    /// accepts (`group.id`, `group.instance.id` and `client.rack` are left out when not set).
    ///
    /// Feeding the result back to [`ConsumerConfig::from_properties`] gives an equal
    /// configuration.
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        let mut props = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            props.insert(key.to_owned(), value);
        };
        put(BOOTSTRAP_SERVERS, self.bootstrap_servers.join(","));
        put(CLIENT_ID, self.client_id.clone());
        if let Some(id) = &self.group_id {
            put(GROUP_ID, id.clone());
        }
        if let Some(id) = &self.group_instance_id {
            put(GROUP_INSTANCE_ID, id.clone());
        }
        put(GROUP_PROTOCOL, self.group_protocol.name().to_owned());
        put(AUTO_OFFSET_RESET, self.auto_offset_reset.name().to_owned());
        put(ENABLE_AUTO_COMMIT, self.enable_auto_commit.to_string());
        put(AUTO_COMMIT_INTERVAL_MS, millis(self.auto_commit_interval));
        put(SESSION_TIMEOUT_MS, millis(self.session_timeout));
        put(HEARTBEAT_INTERVAL_MS, millis(self.heartbeat_interval));
        put(MAX_POLL_INTERVAL_MS, millis(self.max_poll_interval));
        put(MAX_POLL_RECORDS, self.max_poll_records.to_string());
        put(FETCH_MIN_BYTES, self.fetch_min_bytes.to_string());
        put(FETCH_MAX_BYTES, self.fetch_max_bytes.to_string());
        put(FETCH_MAX_WAIT_MS, millis(self.fetch_max_wait));
        put(
            MAX_PARTITION_FETCH_BYTES,
            self.max_partition_fetch_bytes.to_string(),
        );
        put(ISOLATION_LEVEL, self.isolation_level.name().to_owned());
        put(
            PARTITION_ASSIGNMENT_STRATEGY,
            self.partition_assignment_strategy.join(","),
        );
        if let Some(rack) = &self.client_rack {
            put(CLIENT_RACK, rack.clone());
        }
        put(CHECK_CRCS, self.check_crcs.to_string());
        put(
            ALLOW_AUTO_CREATE_TOPICS,
            self.allow_auto_create_topics.to_string(),
        );
        put(
            EXCLUDE_INTERNAL_TOPICS,
            self.exclude_internal_topics.to_string(),
        );
        put(REQUEST_TIMEOUT_MS, millis(self.request_timeout));
        put(DEFAULT_API_TIMEOUT_MS, millis(self.default_api_timeout));
        put(RETRY_BACKOFF_MS, millis(self.retry_backoff));
        put(RETRY_BACKOFF_MAX_MS, millis(self.retry_backoff_max));
        put(RECONNECT_BACKOFF_MS, millis(self.reconnect_backoff));
        put(RECONNECT_BACKOFF_MAX_MS, millis(self.reconnect_backoff_max));
        put(METADATA_MAX_AGE_MS, millis(self.metadata_max_age));
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
        put(SECURITY_PROTOCOL, self.security_protocol.name().to_owned());
        props
    }

    /// Parses and validates a property map: the one code path behind the builder and
    /// [`ConsumerConfig::from_properties`].
    fn from_map(map: &BTreeMap<String, String>) -> Result<Self, Error> {
        check_known_keys(map, CONSUMER_KEYS)?;
        let p = Props(map);

        let bootstrap_servers =
            parse_bootstrap_servers(BOOTSTRAP_SERVERS, p.value(BOOTSTRAP_SERVERS))?;
        let group_id = p.value(GROUP_ID).map(str::to_owned);
        let group_instance_id = p
            .value(GROUP_INSTANCE_ID)
            .map(|id| check_group_instance_id(GROUP_INSTANCE_ID, id).map(|()| id.to_owned()))
            .transpose()?;
        let group_protocol = p
            .value(GROUP_PROTOCOL)
            .map_or(Ok(GroupProtocol::Classic), |v| {
                GroupProtocol::parse(GROUP_PROTOCOL, v)
            })?;
        let auto_offset_reset = p
            .value(AUTO_OFFSET_RESET)
            .map_or(Ok(AutoOffsetReset::Latest), |v| {
                AutoOffsetReset::parse(AUTO_OFFSET_RESET, v)
            })?;
        let mut enable_auto_commit = p.bool(ENABLE_AUTO_COMMIT, true)?;
        let auto_commit_interval = p.ms::<i32>(AUTO_COMMIT_INTERVAL_MS, 5_000, 0)?;
        let session_timeout = p.ms::<i32>(SESSION_TIMEOUT_MS, 45_000, 0)?;
        let heartbeat_interval = p.ms::<i32>(HEARTBEAT_INTERVAL_MS, 3_000, 0)?;
        let max_poll_interval = p.ms::<i32>(MAX_POLL_INTERVAL_MS, 300_000, 1)?;
        let max_poll_records = to_usize(
            MAX_POLL_RECORDS,
            p.int::<i32>(MAX_POLL_RECORDS, 500, 1..=i32::MAX)?,
        )?;
        let fetch_min_bytes = to_usize(
            FETCH_MIN_BYTES,
            p.int::<i32>(FETCH_MIN_BYTES, 1, 0..=i32::MAX)?,
        )?;
        let fetch_max_bytes = to_usize(
            FETCH_MAX_BYTES,
            p.int::<i32>(FETCH_MAX_BYTES, 50 * 1024 * 1024, 0..=i32::MAX)?,
        )?;
        let fetch_max_wait = p.ms::<i32>(FETCH_MAX_WAIT_MS, 500, 0)?;
        let max_partition_fetch_bytes = to_usize(
            MAX_PARTITION_FETCH_BYTES,
            p.int::<i32>(MAX_PARTITION_FETCH_BYTES, 1024 * 1024, 0..=i32::MAX)?,
        )?;
        let isolation_level = p
            .value(ISOLATION_LEVEL)
            .map_or(Ok(IsolationLevel::ReadUncommitted), |v| {
                IsolationLevel::parse(ISOLATION_LEVEL, v)
            })?;
        let partition_assignment_strategy = match p.value(PARTITION_ASSIGNMENT_STRATEGY) {
            None => DEFAULT_ASSIGNORS.iter().map(|&s| s.to_owned()).collect(),
            Some(v) => parse_assignors(PARTITION_ASSIGNMENT_STRATEGY, v)?,
        };
        let client_rack = p
            .value(CLIENT_RACK)
            .filter(|rack| !rack.is_empty())
            .map(str::to_owned);
        let check_crcs = p.bool(CHECK_CRCS, true)?;
        let allow_auto_create_topics = p.bool(ALLOW_AUTO_CREATE_TOPICS, true)?;
        let exclude_internal_topics = p.bool(EXCLUDE_INTERNAL_TOPICS, true)?;
        let request_timeout = p.ms::<i32>(REQUEST_TIMEOUT_MS, 30_000, 0)?;
        let default_api_timeout = p.ms::<i32>(DEFAULT_API_TIMEOUT_MS, 60_000, 0)?;
        let retry_backoff = p.ms::<i64>(RETRY_BACKOFF_MS, 100, 0)?;
        let retry_backoff_max = p.ms::<i64>(RETRY_BACKOFF_MAX_MS, 1_000, 0)?;
        let reconnect_backoff = p.ms::<i64>(RECONNECT_BACKOFF_MS, 50, 0)?;
        let reconnect_backoff_max = p.ms::<i64>(RECONNECT_BACKOFF_MAX_MS, 1_000, 0)?;
        let metadata_max_age = p.ms::<i64>(METADATA_MAX_AGE_MS, 300_000, 0)?;
        let connections_max_idle = p.ms::<i64>(CONNECTIONS_MAX_IDLE_MS, 540_000, 0)?;
        let socket_connection_setup_timeout = p.ms::<i64>(SOCKET_SETUP_TIMEOUT_MS, 10_000, 0)?;
        let socket_connection_setup_timeout_max =
            p.ms::<i64>(SOCKET_SETUP_TIMEOUT_MAX_MS, 30_000, 0)?;
        let send_buffer_bytes = p.int::<i32>(SEND_BUFFER_BYTES, 128 * 1024, -1..=i32::MAX)?;
        let receive_buffer_bytes = p.int::<i32>(RECEIVE_BUFFER_BYTES, 64 * 1024, -1..=i32::MAX)?;
        let security_protocol = p.security_protocol()?;

        warn_disabled_exponential_backoffs(
            retry_backoff,
            retry_backoff_max,
            socket_connection_setup_timeout,
            socket_connection_setup_timeout_max,
        );
        let reconnect_backoff_max =
            effective_reconnect_backoff_max(&p, reconnect_backoff, reconnect_backoff_max);

        match &group_id {
            // ConsumerConfig.maybeOverrideEnableAutoCommit: without a group there is nothing
            // to commit to.
            None => {
                if !p.explicit(ENABLE_AUTO_COMMIT) {
                    enable_auto_commit = false;
                } else if enable_auto_commit {
                    return Err(config_error(
                        ENABLE_AUTO_COMMIT,
                        format!("cannot be set to true when no `{GROUP_ID}` is set"),
                    ));
                }
                if group_instance_id.is_some() {
                    tracing::warn!(
                        "`{GROUP_INSTANCE_ID}` is set without `{GROUP_ID}`; it is unused"
                    );
                }
            }
            Some(group) => {
                if group.is_empty() {
                    tracing::warn!(
                        "support for the empty `{GROUP_ID}` is deprecated (as in the Java client)"
                    );
                }
                // Heartbeat's constructor, when the consumer has a group coordinator.
                if heartbeat_interval >= session_timeout {
                    return Err(config_error(
                        HEARTBEAT_INTERVAL_MS,
                        format!(
                            "must be lower than `{SESSION_TIMEOUT_MS}` ({} ms), got {} ms",
                            session_timeout.as_millis(),
                            heartbeat_interval.as_millis()
                        ),
                    ));
                }
            }
        }

        // ConsumerConfig.maybeOverrideClientId, last so that a failed build uses no number.
        let client_id = match p.value(CLIENT_ID) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => {
                let group = group_id.as_deref().unwrap_or("null");
                match &group_instance_id {
                    Some(instance) => format!("consumer-{group}-{instance}"),
                    None => format!(
                        "consumer-{group}-{}",
                        CONSUMER_CLIENT_ID_SEQUENCE.fetch_add(1, Ordering::Relaxed)
                    ),
                }
            }
        };

        Ok(ConsumerConfig {
            bootstrap_servers,
            client_id,
            group_id,
            group_instance_id,
            group_protocol,
            auto_offset_reset,
            enable_auto_commit,
            auto_commit_interval,
            session_timeout,
            heartbeat_interval,
            max_poll_interval,
            max_poll_records,
            fetch_min_bytes,
            fetch_max_bytes,
            fetch_max_wait,
            max_partition_fetch_bytes,
            isolation_level,
            partition_assignment_strategy,
            client_rack,
            check_crcs,
            allow_auto_create_topics,
            exclude_internal_topics,
            request_timeout,
            default_api_timeout,
            retry_backoff,
            retry_backoff_max,
            reconnect_backoff,
            reconnect_backoff_max,
            metadata_max_age,
            connections_max_idle,
            socket_connection_setup_timeout,
            socket_connection_setup_timeout_max,
            send_buffer_bytes,
            receive_buffer_bytes,
            security_protocol,
        })
    }
}

/// Builds a [`ConsumerConfig`] from typed setters and string properties.
///
/// Every setter stores a string under the Kafka key (the typed ones store their value's
/// string form), so nothing is checked until [`ConsumerConfigBuilder::build`], which parses
/// and validates everything at once. Setting a key again replaces its value.
#[derive(Debug, Clone, Default)]
pub struct ConsumerConfigBuilder {
    props: BTreeMap<String, String>,
}

impl ConsumerConfigBuilder {
    /// Sets `key` (a Kafka key such as `fetch.max.wait.ms`) to `value`, as in a properties
    /// file.
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

    /// Sets `group.id`.
    pub fn group_id(self, id: impl Into<String>) -> Self {
        self.set(GROUP_ID, id)
    }

    /// Sets `group.instance.id` (static membership).
    pub fn group_instance_id(self, id: impl Into<String>) -> Self {
        self.set(GROUP_INSTANCE_ID, id)
    }

    /// Sets `group.protocol`.
    pub fn group_protocol(self, protocol: GroupProtocol) -> Self {
        self.set(GROUP_PROTOCOL, protocol.name())
    }

    /// Sets `auto.offset.reset`.
    pub fn auto_offset_reset(self, reset: AutoOffsetReset) -> Self {
        self.set(AUTO_OFFSET_RESET, reset.name())
    }

    /// Sets `enable.auto.commit` (which makes it explicitly set: `true` without a `group.id`
    /// becomes an error).
    pub fn enable_auto_commit(self, enable: bool) -> Self {
        self.set(ENABLE_AUTO_COMMIT, enable.to_string())
    }

    /// Sets `auto.commit.interval.ms`.
    pub fn auto_commit_interval(self, d: Duration) -> Self {
        self.set_ms(AUTO_COMMIT_INTERVAL_MS, d)
    }

    /// Sets `session.timeout.ms`.
    pub fn session_timeout(self, d: Duration) -> Self {
        self.set_ms(SESSION_TIMEOUT_MS, d)
    }

    /// Sets `heartbeat.interval.ms`.
    pub fn heartbeat_interval(self, d: Duration) -> Self {
        self.set_ms(HEARTBEAT_INTERVAL_MS, d)
    }

    /// Sets `max.poll.interval.ms`.
    pub fn max_poll_interval(self, d: Duration) -> Self {
        self.set_ms(MAX_POLL_INTERVAL_MS, d)
    }

    /// Sets `max.poll.records`.
    pub fn max_poll_records(self, n: usize) -> Self {
        self.set(MAX_POLL_RECORDS, n.to_string())
    }

    /// Sets `fetch.min.bytes`.
    pub fn fetch_min_bytes(self, bytes: usize) -> Self {
        self.set(FETCH_MIN_BYTES, bytes.to_string())
    }

    /// Sets `fetch.max.bytes`.
    pub fn fetch_max_bytes(self, bytes: usize) -> Self {
        self.set(FETCH_MAX_BYTES, bytes.to_string())
    }

    /// Sets `fetch.max.wait.ms`.
    pub fn fetch_max_wait(self, d: Duration) -> Self {
        self.set_ms(FETCH_MAX_WAIT_MS, d)
    }

    /// Sets `max.partition.fetch.bytes`.
    pub fn max_partition_fetch_bytes(self, bytes: usize) -> Self {
        self.set(MAX_PARTITION_FETCH_BYTES, bytes.to_string())
    }

    /// Sets `isolation.level`.
    pub fn isolation_level(self, level: IsolationLevel) -> Self {
        self.set(ISOLATION_LEVEL, level.name())
    }

    /// Sets `partition.assignment.strategy`: assignor protocol names (`range`, `roundrobin`,
    /// `sticky`, `cooperative-sticky`) or Java class names, by preference.
    pub fn partition_assignment_strategy<I, S>(self, assignors: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = assignors
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(",");
        self.set(PARTITION_ASSIGNMENT_STRATEGY, list)
    }

    /// Sets `client.rack`.
    pub fn client_rack(self, rack: impl Into<String>) -> Self {
        self.set(CLIENT_RACK, rack)
    }

    /// Sets `check.crcs`.
    pub fn check_crcs(self, check: bool) -> Self {
        self.set(CHECK_CRCS, check.to_string())
    }

    /// Sets `allow.auto.create.topics`.
    pub fn allow_auto_create_topics(self, allow: bool) -> Self {
        self.set(ALLOW_AUTO_CREATE_TOPICS, allow.to_string())
    }

    /// Sets `exclude.internal.topics`.
    pub fn exclude_internal_topics(self, exclude: bool) -> Self {
        self.set(EXCLUDE_INTERNAL_TOPICS, exclude.to_string())
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

    /// Sets `metadata.max.age.ms`.
    pub fn metadata_max_age(self, d: Duration) -> Self {
        self.set_ms(METADATA_MAX_AGE_MS, d)
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
    pub fn build(self) -> Result<ConsumerConfig, Error> {
        ConsumerConfig::from_map(&self.props)
    }
}

/// Parses a trimmed `partition.assignment.strategy` list: comma-separated assignor protocol
/// or Java class names, stored as protocol names. An empty value is an empty list; empty
/// entries, unknown assignors and duplicates are errors.
fn parse_assignors(key: &str, value: &str) -> Result<Vec<String>, Error> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = Vec::new();
    for entry in value.split(',').map(str::trim) {
        let name = ASSIGNORS
            .iter()
            .find(|&&(name, class)| entry == name || entry == class)
            .map(|&(name, _)| name)
            .ok_or_else(|| {
                invalid(
                    key,
                    entry,
                    "expected one of range, roundrobin, sticky, cooperative-sticky or their \
                     Java class names (org.apache.kafka.clients.consumer.RangeAssignor, ...)",
                )
            })?;
        if names.iter().any(|n| n == name) {
            return Err(config_error(
                key,
                format!("the assignor `{name}` is listed more than once"),
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// `JoinGroupRequest.validateGroupInstanceId`: non-empty, not `.` or `..`, at most 249
/// characters among ASCII alphanumerics, `.`, `_` and `-`.
fn check_group_instance_id(key: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(config_error(key, "must be a non-empty string"));
    }
    if id == "." || id == ".." {
        return Err(invalid(key, id, "cannot be `.` or `..`"));
    }
    if id.len() > MAX_GROUP_INSTANCE_ID_LENGTH {
        return Err(invalid(
            key,
            id,
            &format!("cannot be longer than {MAX_GROUP_INSTANCE_ID_LENGTH} characters"),
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            key,
            id,
            "contains a character other than ASCII alphanumerics, `.`, `_` and `-`",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Parsing helpers, shared by every client configuration of this module
// ---------------------------------------------------------------------------------------------

/// An [`Error::Config`] for `key`.
pub(crate) fn config_error(key: &str, reason: impl Into<String>) -> Error {
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
pub(crate) fn check_known_keys(
    map: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<(), Error> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(config_error(key, "unknown configuration")),
        None => Ok(()),
    }
}

/// A Java config integer type: `INT` (`i32`) or `LONG` (`i64`).
pub(crate) trait JavaInt: FromStr + PartialOrd + Display + Copy + Into<i64> {
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
pub(crate) fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// A validated non-negative size as `usize` (fails only where `usize` is narrower).
fn to_usize(key: &str, n: impl Into<i64>) -> Result<usize, Error> {
    let n = n.into();
    usize::try_from(n).map_err(|_| invalid(key, &n.to_string(), "too large for this platform"))
}

/// Parses a `bootstrap.servers` value: comma-separated `host:port` entries, empty entries
/// skipped (as Java does), at least one required.
pub(crate) fn parse_bootstrap_servers(
    key: &str,
    value: Option<&str>,
) -> Result<Vec<String>, Error> {
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

/// `CommonClientConfigs.warnDisablingExponentialBackoff`: a backoff (or connection setup
/// timeout) greater than its max is accepted, with a warning.
fn warn_disabled_exponential_backoffs(
    retry_backoff: Duration,
    retry_backoff_max: Duration,
    socket_connection_setup_timeout: Duration,
    socket_connection_setup_timeout_max: Duration,
) {
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
}

/// `CommonClientConfigs.postProcessReconnectBackoffConfigs`: `reconnect.backoff.max.ms` takes
/// the value of `reconnect.backoff.ms` when only the latter is set explicitly.
pub(crate) fn effective_reconnect_backoff_max(
    p: &Props<'_>,
    reconnect_backoff: Duration,
    reconnect_backoff_max: Duration,
) -> Duration {
    if p.explicit(RECONNECT_BACKOFF_MS) && !p.explicit(RECONNECT_BACKOFF_MAX_MS) {
        tracing::warn!(
            "disabling exponential reconnect backoff because `{RECONNECT_BACKOFF_MS}` is set, \
             but `{RECONNECT_BACKOFF_MAX_MS}` is not"
        );
        reconnect_backoff
    } else {
        reconnect_backoff_max
    }
}

/// Typed, defaulted access to a property map. Values are trimmed; a key is *explicitly set*
/// when it is in the map.
pub(crate) struct Props<'a>(pub(crate) &'a BTreeMap<String, String>);

impl<'a> Props<'a> {
    /// `security.protocol`, [`SecurityProtocol::Plaintext`] when unset.
    pub(crate) fn security_protocol(&self) -> Result<SecurityProtocol, Error> {
        self.value(SECURITY_PROTOCOL)
            .map_or(Ok(SecurityProtocol::Plaintext), |v| {
                SecurityProtocol::parse(SECURITY_PROTOCOL, v)
            })
    }

    /// Whether `key` was set (by a typed setter or as a property).
    pub(crate) fn explicit(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The trimmed value of `key`, if set.
    pub(crate) fn value(&self, key: &str) -> Option<&'a str> {
        self.0.get(key).map(|v| v.trim())
    }

    /// A boolean, `default` when unset.
    fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        self.value(key).map_or(Ok(default), |v| parse_bool(key, v))
    }

    /// An integer of Java type `T` in `range`, `default` when unset.
    pub(crate) fn int<T: JavaInt>(
        &self,
        key: &str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, Error> {
        self.value(key)
            .map_or(Ok(default), |v| parse_int(key, v, range))
    }

    /// A duration in milliseconds of Java type `T`, at least `min_ms`; `default_ms` when unset.
    pub(crate) fn ms<T: JavaInt>(
        &self,
        key: &str,
        default_ms: T,
        min_ms: T,
    ) -> Result<Duration, Error> {
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

#[cfg(test)]
mod consumer_tests {
    use super::*;

    /// A consumer config from `pairs` plus `bootstrap.servers`.
    fn props(pairs: &[(&str, &str)]) -> Result<ConsumerConfig, Error> {
        let mut all = vec![("bootstrap.servers", "localhost:9092")];
        all.extend_from_slice(pairs);
        ConsumerConfig::from_properties(all.iter().copied())
    }

    /// Like [`props`], with `group.id=g`.
    fn grouped(pairs: &[(&str, &str)]) -> Result<ConsumerConfig, Error> {
        let mut all = vec![("group.id", "g")];
        all.extend_from_slice(pairs);
        props(&all)
    }

    /// The key and reason of a configuration error; panics on success or another error.
    fn err(result: Result<ConsumerConfig, Error>) -> (String, String) {
        match result {
            Err(Error::Config { key, reason }) => (key, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn err_key(result: Result<ConsumerConfig, Error>) -> String {
        err(result).0
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The N of a generated `<prefix>N` client id.
    fn client_number(config: &ConsumerConfig, prefix: &str) -> usize {
        config
            .client_id
            .strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", config.client_id))
    }

    #[test]
    fn defaults_are_the_java_4_0_defaults() {
        let c = ConsumerConfig::new("localhost:9092").unwrap();
        assert_eq!(c.bootstrap_servers, ["localhost:9092"]);
        assert!(client_number(&c, "consumer-null-") >= 1);
        assert_eq!(c.group_id, None);
        assert_eq!(c.group_instance_id, None);
        assert_eq!(c.group_protocol, GroupProtocol::Classic);
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Latest);
        // Default `true`, disabled because there is no group.
        assert!(!c.enable_auto_commit);
        assert_eq!(c.auto_commit_interval, ms(5_000));
        assert_eq!(c.session_timeout, ms(45_000));
        assert_eq!(c.heartbeat_interval, ms(3_000));
        assert_eq!(c.max_poll_interval, ms(300_000));
        assert_eq!(c.max_poll_records, 500);
        assert_eq!(c.fetch_min_bytes, 1);
        assert_eq!(c.fetch_max_bytes, 52_428_800);
        assert_eq!(c.fetch_max_wait, ms(500));
        assert_eq!(c.max_partition_fetch_bytes, 1_048_576);
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        assert_eq!(
            c.partition_assignment_strategy,
            ["range", "cooperative-sticky"]
        );
        assert_eq!(c.client_rack, None);
        assert!(c.check_crcs);
        assert!(c.allow_auto_create_topics);
        assert!(c.exclude_internal_topics);
        assert_eq!(c.request_timeout, ms(30_000));
        assert_eq!(c.default_api_timeout, ms(60_000));
        assert_eq!(c.retry_backoff, ms(100));
        assert_eq!(c.retry_backoff_max, ms(1_000));
        assert_eq!(c.reconnect_backoff, ms(50));
        assert_eq!(c.reconnect_backoff_max, ms(1_000));
        assert_eq!(c.metadata_max_age, ms(300_000));
        assert_eq!(c.connections_max_idle, ms(540_000));
        assert_eq!(c.socket_connection_setup_timeout, ms(10_000));
        assert_eq!(c.socket_connection_setup_timeout_max, ms(30_000));
        assert_eq!(c.send_buffer_bytes, 131_072);
        assert_eq!(c.receive_buffer_bytes, 65_536);
        assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);

        // With a group, auto commit keeps its default.
        let c = grouped(&[]).unwrap();
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert!(c.enable_auto_commit);
    }

    #[test]
    fn default_properties_list_every_key() {
        let c = grouped(&[]).unwrap();
        let p = c.to_properties();
        let expected = [
            ("allow.auto.create.topics", "true"),
            ("auto.commit.interval.ms", "5000"),
            ("auto.offset.reset", "latest"),
            ("bootstrap.servers", "localhost:9092"),
            ("check.crcs", "true"),
            ("connections.max.idle.ms", "540000"),
            ("default.api.timeout.ms", "60000"),
            ("enable.auto.commit", "true"),
            ("exclude.internal.topics", "true"),
            ("fetch.max.bytes", "52428800"),
            ("fetch.max.wait.ms", "500"),
            ("fetch.min.bytes", "1"),
            ("group.id", "g"),
            ("group.protocol", "classic"),
            ("heartbeat.interval.ms", "3000"),
            ("isolation.level", "read_uncommitted"),
            ("max.partition.fetch.bytes", "1048576"),
            ("max.poll.interval.ms", "300000"),
            ("max.poll.records", "500"),
            ("metadata.max.age.ms", "300000"),
            ("partition.assignment.strategy", "range,cooperative-sticky"),
            ("receive.buffer.bytes", "65536"),
            ("reconnect.backoff.max.ms", "1000"),
            ("reconnect.backoff.ms", "50"),
            ("request.timeout.ms", "30000"),
            ("retry.backoff.max.ms", "1000"),
            ("retry.backoff.ms", "100"),
            ("security.protocol", "PLAINTEXT"),
            ("send.buffer.bytes", "131072"),
            ("session.timeout.ms", "45000"),
            ("socket.connection.setup.timeout.max.ms", "30000"),
            ("socket.connection.setup.timeout.ms", "10000"),
        ];
        for (key, value) in expected {
            assert_eq!(p.get(key).map(String::as_str), Some(value), "{key}");
        }
        assert_eq!(p[CLIENT_ID], c.client_id);
        assert!(!p.contains_key(GROUP_INSTANCE_ID));
        assert!(!p.contains_key(CLIENT_RACK));
        // Every known key but group.instance.id and client.rack (unset); client.id above.
        assert_eq!(p.len(), expected.len() + 1);
        assert_eq!(CONSUMER_KEYS.len(), p.len() + 2);
    }

    #[test]
    fn unknown_key_is_an_error() {
        let (key, reason) = err(props(&[("fetch.max.wait", "5")]));
        assert_eq!(key, "fetch.max.wait");
        assert_eq!(reason, "unknown configuration");
        // Producer-only and Java-only keys are unknown to the consumer.
        assert_eq!(err_key(props(&[("linger.ms", "5")])), "linger.ms");
        assert_eq!(
            err_key(props(&[("key.deserializer", "x")])),
            "key.deserializer"
        );
        assert_eq!(
            err_key(props(&[("group.remote.assignor", "uniform")])),
            "group.remote.assignor"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        let cases: &[(&str, &str)] = &[
            ("enable.auto.commit", "yes"),
            ("check.crcs", "1"),
            ("exclude.internal.topics", "no"),
            ("allow.auto.create.topics", "maybe"),
            ("auto.commit.interval.ms", "-1"),
            ("session.timeout.ms", "-1"),
            ("session.timeout.ms", "2147483648"),
            ("heartbeat.interval.ms", "-1"),
            ("max.poll.interval.ms", "0"),
            ("max.poll.records", "0"),
            ("max.poll.records", "many"),
            ("fetch.min.bytes", "-1"),
            ("fetch.max.bytes", "2147483648"),
            ("fetch.max.wait.ms", "-1"),
            ("max.partition.fetch.bytes", "-1"),
            ("request.timeout.ms", "-1"),
            ("default.api.timeout.ms", "-1"),
            ("retry.backoff.ms", "-1"),
            ("reconnect.backoff.max.ms", "1.5"),
            ("metadata.max.age.ms", "-5"),
            ("connections.max.idle.ms", "-1"),
            ("socket.connection.setup.timeout.ms", "-1"),
            ("send.buffer.bytes", "-2"),
            ("receive.buffer.bytes", "big"),
            ("auto.offset.reset", "smallest"),
            ("auto.offset.reset", "Earliest"),
            ("isolation.level", "READ_COMMITTED"),
            ("isolation.level", "committed"),
            ("group.protocol", "eager"),
            ("partition.assignment.strategy", "uniform"),
            ("partition.assignment.strategy", "com.example.MyAssignor"),
            ("group.instance.id", "."),
            ("group.instance.id", ".."),
            ("group.instance.id", "a b"),
            ("group.instance.id", "é"),
            ("security.protocol", "TLS"),
        ];
        for &(key, value) in cases {
            let (k, reason) = err(grouped(&[(key, value)]));
            assert_eq!(k, key, "{key}={value}: {reason}");
            assert!(
                reason.contains(&format!("`{value}`")),
                "{key}={value}: {reason}"
            );
        }
    }

    #[test]
    fn values_are_trimmed_and_booleans_are_case_insensitive() {
        let c = props(&[
            ("group.id", " g "),
            ("group.instance.id", " i-1 "),
            ("enable.auto.commit", " FALSE "),
            ("check.crcs", "False"),
            ("auto.offset.reset", " earliest "),
            ("isolation.level", " read_committed "),
            ("group.protocol", "CLASSIC"),
            ("fetch.max.wait.ms", " 10 "),
            ("partition.assignment.strategy", " sticky , range "),
            ("client.rack", " rack-1 "),
            ("security.protocol", "plaintext"),
        ])
        .unwrap();
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert_eq!(c.group_instance_id.as_deref(), Some("i-1"));
        assert!(!c.enable_auto_commit);
        assert!(!c.check_crcs);
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(c.fetch_max_wait, ms(10));
        assert_eq!(c.partition_assignment_strategy, ["sticky", "range"]);
        assert_eq!(c.client_rack.as_deref(), Some("rack-1"));
    }

    #[test]
    fn ranges_accept_their_bounds() {
        let c = grouped(&[
            ("max.poll.records", "1"),
            ("max.poll.interval.ms", "1"),
            ("fetch.min.bytes", "0"),
            ("fetch.max.bytes", "2147483647"),
            ("fetch.max.wait.ms", "0"),
            ("max.partition.fetch.bytes", "0"),
            ("auto.commit.interval.ms", "0"),
            ("heartbeat.interval.ms", "0"),
            ("session.timeout.ms", "1"),
            ("send.buffer.bytes", "-1"),
            ("receive.buffer.bytes", "-1"),
            ("default.api.timeout.ms", "0"),
        ])
        .unwrap();
        assert_eq!(c.max_poll_records, 1);
        assert_eq!(c.max_poll_interval, ms(1));
        assert_eq!(c.fetch_min_bytes, 0);
        assert_eq!(c.fetch_max_bytes, i32::MAX as usize);
        assert_eq!(c.heartbeat_interval, Duration::ZERO);
        assert_eq!(c.session_timeout, ms(1));
        assert_eq!(c.receive_buffer_bytes, -1);
    }

    #[test]
    fn bootstrap_servers_are_required_and_checked() {
        assert_eq!(
            err_key(ConsumerConfig::builder().group_id("g").build()),
            BOOTSTRAP_SERVERS
        );
        for bad in ["", "localhost", "localhost:0", "::1:9092"] {
            assert_eq!(
                err_key(ConsumerConfig::new(bad)),
                BOOTSTRAP_SERVERS,
                "{bad:?}"
            );
        }
        let c = ConsumerConfig::new(" a:1 ,, [::1]:9093,").unwrap();
        assert_eq!(c.bootstrap_servers, ["a:1", "[::1]:9093"]);
    }

    #[test]
    fn auto_commit_needs_a_group_only_when_set_explicitly() {
        // Not set: silently disabled without a group.
        assert!(!props(&[]).unwrap().enable_auto_commit);
        // Explicitly true without a group: an error naming enable.auto.commit.
        let (key, reason) = err(props(&[("enable.auto.commit", "true")]));
        assert_eq!(key, ENABLE_AUTO_COMMIT);
        assert!(reason.contains("group.id"), "{reason}");
        let result = ConsumerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .enable_auto_commit(true)
            .build();
        assert_eq!(err_key(result), ENABLE_AUTO_COMMIT);
        // Explicitly false without a group: fine.
        assert!(
            !props(&[("enable.auto.commit", "false")])
                .unwrap()
                .enable_auto_commit
        );
        // With a group, both values are kept.
        assert!(
            grouped(&[("enable.auto.commit", "true")])
                .unwrap()
                .enable_auto_commit
        );
        assert!(
            !grouped(&[("enable.auto.commit", "false")])
                .unwrap()
                .enable_auto_commit
        );
        // An empty group id is a group id (deprecated in Java, but accepted).
        let c = props(&[("group.id", "")]).unwrap();
        assert_eq!(c.group_id.as_deref(), Some(""));
        assert!(c.enable_auto_commit);
    }

    #[test]
    fn heartbeat_must_be_lower_than_the_session_timeout_in_a_group() {
        let (key, reason) = err(grouped(&[("heartbeat.interval.ms", "45000")]));
        assert_eq!(key, HEARTBEAT_INTERVAL_MS);
        assert!(reason.contains("session.timeout.ms"), "{reason}");
        assert_eq!(
            err_key(grouped(&[
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "7000"),
            ])),
            HEARTBEAT_INTERVAL_MS
        );
        let c = grouped(&[
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "5999"),
        ])
        .unwrap();
        assert_eq!(c.session_timeout, ms(6_000));
        assert_eq!(c.heartbeat_interval, ms(5_999));
        // Without a group there is no coordinator, so Java does not check it.
        let c = props(&[("heartbeat.interval.ms", "60000")]).unwrap();
        assert_eq!(c.heartbeat_interval, ms(60_000));
    }

    #[test]
    fn group_instance_id_is_a_valid_static_member_id() {
        assert_eq!(
            err_key(grouped(&[("group.instance.id", "")])),
            GROUP_INSTANCE_ID
        );
        assert_eq!(
            err_key(grouped(&[("group.instance.id", "  ")])),
            GROUP_INSTANCE_ID
        );
        let long = "a".repeat(MAX_GROUP_INSTANCE_ID_LENGTH + 1);
        assert_eq!(
            err_key(grouped(&[("group.instance.id", &long)])),
            GROUP_INSTANCE_ID
        );
        let longest = "a".repeat(MAX_GROUP_INSTANCE_ID_LENGTH);
        let c = grouped(&[("group.instance.id", &longest)]).unwrap();
        assert_eq!(c.group_instance_id.as_deref(), Some(longest.as_str()));
        let c = grouped(&[("group.instance.id", "Host_1.example-2")]).unwrap();
        assert_eq!(c.group_instance_id.as_deref(), Some("Host_1.example-2"));
        // As in Java, it does not require a group.id (it is then unused).
        let c = props(&[("group.instance.id", "i")]).unwrap();
        assert_eq!(c.group_instance_id.as_deref(), Some("i"));
        assert_eq!(c.client_id, "consumer-null-i");
    }

    #[test]
    fn client_id_is_generated_as_java_does_when_unset_or_empty() {
        let a = grouped(&[]).unwrap();
        let b = grouped(&[]).unwrap();
        assert_ne!(
            client_number(&a, "consumer-g-"),
            client_number(&b, "consumer-g-")
        );
        assert!(client_number(&props(&[]).unwrap(), "consumer-null-") >= 1);
        // An empty client.id is generated too (unlike the producer's).
        let c = grouped(&[("client.id", " ")]).unwrap();
        assert!(client_number(&c, "consumer-g-") >= 1);
        // The static member id replaces the counter.
        let c = grouped(&[("group.instance.id", "i-1")]).unwrap();
        assert_eq!(c.client_id, "consumer-g-i-1");
        // An explicit value is kept.
        let c = grouped(&[("client.id", " app "), ("group.instance.id", "i-1")]).unwrap();
        assert_eq!(c.client_id, "app");
    }

    #[test]
    fn assignors_accept_protocol_and_java_class_names() {
        let strategy = |value: &str| {
            props(&[("partition.assignment.strategy", value)])
                .unwrap()
                .partition_assignment_strategy
        };
        assert_eq!(
            strategy(
                "org.apache.kafka.clients.consumer.RangeAssignor,\
                 org.apache.kafka.clients.consumer.RoundRobinAssignor,\
                 org.apache.kafka.clients.consumer.StickyAssignor,\
                 org.apache.kafka.clients.consumer.CooperativeStickyAssignor"
            ),
            ["range", "roundrobin", "sticky", "cooperative-sticky"]
        );
        assert_eq!(
            strategy("cooperative-sticky, org.apache.kafka.clients.consumer.RangeAssignor"),
            ["cooperative-sticky", "range"]
        );
        assert_eq!(strategy("roundrobin"), ["roundrobin"]);
        // An empty list is accepted, as in Java (manual assignment needs no assignor).
        assert!(strategy("").is_empty());
        assert!(strategy("  ").is_empty());

        // Duplicates, also through different spellings, and empty entries are errors.
        for bad in [
            "range,range",
            "range,org.apache.kafka.clients.consumer.RangeAssignor",
            "range,,sticky",
            "range,",
            "RANGE",
        ] {
            assert_eq!(
                err_key(props(&[("partition.assignment.strategy", bad)])),
                PARTITION_ASSIGNMENT_STRATEGY,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unsupported_protocols_and_strategies_are_errors() {
        let (key, reason) = err(grouped(&[("group.protocol", "consumer")]));
        assert_eq!(key, GROUP_PROTOCOL);
        assert!(reason.contains("not supported"), "{reason}");
        let (key, reason) = err(grouped(&[("group.protocol", "CONSUMER")]));
        assert_eq!(key, GROUP_PROTOCOL);
        assert!(reason.contains("not supported"), "{reason}");
        let (key, reason) = err(grouped(&[("auto.offset.reset", "by_duration:PT1H")]));
        assert_eq!(key, AUTO_OFFSET_RESET);
        assert!(reason.contains("not supported"), "{reason}");
        for protocol in ["SSL", "SASL_PLAINTEXT", "sasl_ssl"] {
            let (key, reason) = err(grouped(&[("security.protocol", protocol)]));
            assert_eq!(key, SECURITY_PROTOCOL);
            assert!(reason.contains("not supported"), "{reason}");
        }
    }

    #[test]
    fn client_rack_empty_means_none() {
        assert_eq!(props(&[("client.rack", "")]).unwrap().client_rack, None);
        assert_eq!(
            props(&[("client.rack", "use1-az1")]).unwrap().client_rack,
            Some("use1-az1".to_owned())
        );
    }

    #[test]
    fn common_backoff_rules_apply() {
        let c = props(&[("reconnect.backoff.ms", "200")]).unwrap();
        assert_eq!(c.reconnect_backoff_max, ms(200));
        let c = props(&[
            ("reconnect.backoff.ms", "200"),
            ("reconnect.backoff.max.ms", "5000"),
        ])
        .unwrap();
        assert_eq!(c.reconnect_backoff_max, ms(5_000));
        let c = props(&[
            ("retry.backoff.ms", "2000"),
            ("retry.backoff.max.ms", "500"),
        ])
        .unwrap();
        assert_eq!(c.retry_backoff, ms(2_000));
        assert_eq!(c.retry_backoff_max, ms(500));
    }

    #[test]
    fn enum_values() {
        assert_eq!(AutoOffsetReset::default(), AutoOffsetReset::Latest);
        assert_eq!(AutoOffsetReset::Earliest.name(), "earliest");
        assert_eq!(AutoOffsetReset::None.name(), "none");
        assert_eq!(IsolationLevel::default(), IsolationLevel::ReadUncommitted);
        assert_eq!(IsolationLevel::ReadUncommitted.as_i8(), 0);
        assert_eq!(IsolationLevel::ReadCommitted.as_i8(), 1);
        assert_eq!(IsolationLevel::ReadCommitted.name(), "read_committed");
        assert_eq!(GroupProtocol::default().name(), "classic");
        assert_eq!(
            props(&[("auto.offset.reset", "none")])
                .unwrap()
                .auto_offset_reset,
            AutoOffsetReset::None
        );
    }

    fn typed() -> ConsumerConfigBuilder {
        ConsumerConfig::builder()
            .bootstrap_servers("a:9092,b:9093")
            .client_id("typed")
            .group_id("orders")
            .group_instance_id("host-1")
            .group_protocol(GroupProtocol::Classic)
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .enable_auto_commit(false)
            .auto_commit_interval(ms(1_000))
            .session_timeout(ms(10_000))
            .heartbeat_interval(ms(2_000))
            .max_poll_interval(ms(60_000))
            .max_poll_records(100)
            .fetch_min_bytes(1_024)
            .fetch_max_bytes(10 << 20)
            .fetch_max_wait(ms(250))
            .max_partition_fetch_bytes(2 << 20)
            .isolation_level(IsolationLevel::ReadCommitted)
            .partition_assignment_strategy([
                "cooperative-sticky",
                "org.apache.kafka.clients.consumer.RangeAssignor",
            ])
            .client_rack("rack-a")
            .check_crcs(false)
            .allow_auto_create_topics(false)
            .exclude_internal_topics(false)
            .request_timeout(ms(20_000))
            .default_api_timeout(ms(40_000))
            .retry_backoff(ms(250))
            .retry_backoff_max(ms(4_000))
            .reconnect_backoff(ms(75))
            .reconnect_backoff_max(ms(2_000))
            .metadata_max_age(ms(60_000))
            .connections_max_idle(ms(100_000))
            .socket_connection_setup_timeout(ms(5_000))
            .socket_connection_setup_timeout_max(ms(20_000))
            .send_buffer_bytes(-1)
            .receive_buffer_bytes(131_072)
            .security_protocol(SecurityProtocol::Plaintext)
    }

    #[test]
    fn typed_and_string_forms_give_the_same_config() {
        let from_typed = typed().build().unwrap();
        let from_strings = ConsumerConfig::from_properties([
            ("bootstrap.servers", "a:9092,b:9093"),
            ("client.id", "typed"),
            ("group.id", "orders"),
            ("group.instance.id", "host-1"),
            ("group.protocol", "classic"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("auto.commit.interval.ms", "1000"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "2000"),
            ("max.poll.interval.ms", "60000"),
            ("max.poll.records", "100"),
            ("fetch.min.bytes", "1024"),
            ("fetch.max.bytes", "10485760"),
            ("fetch.max.wait.ms", "250"),
            ("max.partition.fetch.bytes", "2097152"),
            ("isolation.level", "read_committed"),
            ("partition.assignment.strategy", "cooperative-sticky,range"),
            ("client.rack", "rack-a"),
            ("check.crcs", "false"),
            ("allow.auto.create.topics", "false"),
            ("exclude.internal.topics", "false"),
            ("request.timeout.ms", "20000"),
            ("default.api.timeout.ms", "40000"),
            ("retry.backoff.ms", "250"),
            ("retry.backoff.max.ms", "4000"),
            ("reconnect.backoff.ms", "75"),
            ("reconnect.backoff.max.ms", "2000"),
            ("metadata.max.age.ms", "60000"),
            ("connections.max.idle.ms", "100000"),
            ("socket.connection.setup.timeout.ms", "5000"),
            ("socket.connection.setup.timeout.max.ms", "20000"),
            ("send.buffer.bytes", "-1"),
            ("receive.buffer.bytes", "131072"),
            ("security.protocol", "PLAINTEXT"),
        ])
        .unwrap();
        assert_eq!(from_typed, from_strings);
        assert_eq!(
            from_typed.partition_assignment_strategy,
            ["cooperative-sticky", "range"]
        );
        assert_eq!(from_typed.fetch_max_wait, ms(250));
        // The typed setters cover every key.
        assert_eq!(from_typed.to_properties().len(), CONSUMER_KEYS.len());
    }

    #[test]
    fn typed_setters_count_as_explicit_and_are_checked_at_build() {
        let result = ConsumerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .group_id("g")
            .session_timeout(ms(3_000))
            .build();
        assert_eq!(err_key(result), HEARTBEAT_INTERVAL_MS);
        let result = ConsumerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .max_poll_records(0)
            .build();
        assert_eq!(err_key(result), MAX_POLL_RECORDS);
        // A duration too long for a Java INT of milliseconds is refused at build time.
        let result = ConsumerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .fetch_max_wait(Duration::MAX)
            .build();
        assert_eq!(err_key(result), FETCH_MAX_WAIT_MS);
        let result = ConsumerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .partition_assignment_strategy(["range", "my-assignor"])
            .build();
        assert_eq!(err_key(result), PARTITION_ASSIGNMENT_STRATEGY);
        // An empty typed list is an empty strategy.
        let c = ConsumerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .partition_assignment_strategy(Vec::<String>::new())
            .build()
            .unwrap();
        assert!(c.partition_assignment_strategy.is_empty());
    }

    #[test]
    fn the_last_value_of_a_key_wins() {
        let c = ConsumerConfig::builder()
            .bootstrap_servers("localhost:9092")
            .max_poll_records(7)
            .set("max.poll.records", "8")
            .build()
            .unwrap();
        assert_eq!(c.max_poll_records, 8);
        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "localhost:9092"),
            ("isolation.level", "read_committed"),
            ("isolation.level", "read_uncommitted"),
        ])
        .unwrap();
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
    }

    #[test]
    fn round_trip_through_properties() {
        let configs = [
            ConsumerConfig::new("localhost:9092").unwrap(),
            grouped(&[]).unwrap(),
            typed().build().unwrap(),
            // Effective values after adjustments survive the round trip.
            props(&[
                ("reconnect.backoff.ms", "300"),
                ("partition.assignment.strategy", ""),
                ("client.rack", ""),
                ("heartbeat.interval.ms", "50000"),
            ])
            .unwrap(),
            props(&[("group.id", ""), ("group.instance.id", "i")]).unwrap(),
        ];
        for config in configs {
            let props = config.to_properties();
            let again = ConsumerConfig::from_properties(props.clone()).unwrap();
            assert_eq!(again, config);
            assert_eq!(again.to_properties(), props);
        }
    }
}
