//! Broker configuration, with Kafka's broker config names and defaults.
//!
//! Broker-level `log.*` settings are the defaults of the topic-level configs (Kafka's
//! "synonyms": `log.segment.bytes` → `segment.bytes`, `log.retention.hours` → `retention.ms`,
//! ...); [`BrokerConfig::topic_defaults`] resolves them. Unknown keys are rejected so that a
//! typo in `--config` is an error rather than a silently ignored setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The key is not a broker config broker-lite knows.
    #[error("unknown broker config '{0}'")]
    UnknownKey(String),
    /// The name is not a topic config (Kafka's message, from `LogConfig.validateNames`).
    #[error("Unknown topic config name: {0}")]
    UnknownTopicConfig(String),
    /// The value does not parse or is out of range.
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue {
        /// The config key.
        key: String,
        /// The offending value.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// How a broker config value is typed (as reported by DescribeConfigs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Boolean,
    /// Free-form string.
    String,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// 64-bit floating point number.
    Double,
    /// Comma-separated list.
    List,
}

impl ConfigType {
    /// The numeric id DescribeConfigs v3+ uses.
    pub fn describe_id(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }

    /// Checks that `value` parses as this type.
    pub fn validate(self, key: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |reason: &str| ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        match self {
            ConfigType::Boolean => match value {
                "true" | "false" => Ok(()),
                _ => Err(bad("Expected value to be either true or false")),
            },
            ConfigType::Int => value
                .trim()
                .parse::<i32>()
                .map(|_| ())
                .map_err(|_| bad("Not a number of type INT")),
            ConfigType::Long => value
                .trim()
                .parse::<i64>()
                .map(|_| ())
                .map_err(|_| bad("Not a number of type LONG")),
            ConfigType::Double => value
                .trim()
                .parse::<f64>()
                .map(|_| ())
                .map_err(|_| bad("Not a number of type DOUBLE")),
            ConfigType::String | ConfigType::List => Ok(()),
        }
    }
}

/// One known broker config: name, type, default and what it means.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// Its type.
    pub ty: ConfigType,
    /// Kafka's default, as a string.
    pub default: &'static str,
    /// The topic-level config it supplies the default for, if any.
    pub topic_synonym: Option<&'static str>,
    /// One-line documentation.
    pub doc: &'static str,
}

macro_rules! broker_configs {
    ($( $name:literal, $ty:ident, $default:literal, $syn:expr, $doc:literal; )*) => {
        /// Every broker config broker-lite understands, with Kafka's defaults.
        pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
            $( BrokerConfigDef { name: $name, ty: ConfigType::$ty, default: $default, topic_synonym: $syn, doc: $doc }, )*
        ];
    };
}

broker_configs! {
    "num.partitions", Int, "1", None, "Default number of partitions for auto-created topics and CreateTopics without a count.";
    "default.replication.factor", Int, "1", None, "Default replication factor for new topics.";
    "auto.create.topics.enable", Boolean, "true", None, "Create a topic when Metadata or Produce names one that does not exist.";
    "delete.topic.enable", Boolean, "true", None, "Allow DeleteTopics.";
    "message.max.bytes", Int, "1048588", Some("max.message.bytes"), "Largest record batch the broker accepts.";
    "socket.request.max.bytes", Int, "104857600", None, "Largest request frame, checked from the size prefix before reading.";
    "connections.max.idle.ms", Long, "600000", None, "Idle connections are closed after this many milliseconds.";
    "log.segment.bytes", Int, "1073741824", Some("segment.bytes"), "Segment size at which the log rolls.";
    "log.roll.ms", Long, "", Some("segment.ms"), "Segment age at which the log rolls (overrides log.roll.hours).";
    "log.roll.hours", Int, "168", Some("segment.ms"), "Segment age in hours at which the log rolls.";
    "log.index.size.max.bytes", Int, "10485760", Some("segment.index.bytes"), "Maximum offset index size per segment.";
    "log.index.interval.bytes", Int, "4096", Some("index.interval.bytes"), "Bytes of log between offset index entries.";
    "log.retention.ms", Long, "", Some("retention.ms"), "Retention time (overrides minutes and hours); -1 keeps forever.";
    "log.retention.minutes", Int, "", Some("retention.ms"), "Retention time in minutes (overrides hours).";
    "log.retention.hours", Int, "168", Some("retention.ms"), "Retention time in hours.";
    "log.retention.bytes", Long, "-1", Some("retention.bytes"), "Maximum partition size before old segments are deleted; -1 is unlimited.";
    "log.retention.check.interval.ms", Long, "300000", None, "How often retention is checked.";
    "log.segment.delete.delay.ms", Long, "60000", Some("file.delete.delay.ms"), "Delay before a deleted segment's files are removed.";
    "log.flush.interval.messages", Long, "9223372036854775807", Some("flush.messages"), "Messages between fsyncs (default: rely on the page cache).";
    "log.flush.interval.ms", Long, "", Some("flush.ms"), "Milliseconds between fsyncs (default: rely on the page cache).";
    "log.message.timestamp.type", String, "CreateTime", Some("message.timestamp.type"), "CreateTime or LogAppendTime.";
    "log.cleanup.policy", List, "delete", Some("cleanup.policy"), "delete or compact.";
    "log.cleaner.enable", Boolean, "true", None, "Run the log cleaner (compaction of cleanup.policy=compact topics) with each retention check.";
    "log.cleaner.dedupe.buffer.size", Long, "134217728", None, "Memory of the cleaner's offset map (24 bytes per key; more than 1 MiB); a pass cleans only as far as its keys fit.";
    "log.cleaner.io.buffer.load.factor", String, "0.9", None, "Share of the offset map's slots a cleaning pass may fill (above 0, at most 1).";
    "log.cleaner.io.max.bytes.per.second", Double, "1.7976931348623157E308", None, "The log cleaner is throttled so that the sum of its read and write I/O is below this many bytes per second on average (above 0; the default is unthrottled).";
    "log.cleaner.delete.retention.ms", Long, "86400000", Some("delete.retention.ms"), "How long tombstones are kept after the cleaning that first retained them.";
    "log.cleaner.min.cleanable.ratio", String, "0.5", Some("min.cleanable.dirty.ratio"), "Dirty ratio above which a compacted log is cleaned.";
    "log.cleaner.min.compaction.lag.ms", Long, "0", Some("min.compaction.lag.ms"), "Minimum time a record stays uncompacted.";
    "log.cleaner.max.compaction.lag.ms", Long, "9223372036854775807", Some("max.compaction.lag.ms"), "Maximum time a record stays uncompacted.";
    "min.insync.replicas", Int, "1", Some("min.insync.replicas"), "Minimum in-sync replicas for acks=all.";
    "compression.type", String, "producer", Some("compression.type"), "Compression of stored batches; producer keeps what the producer sent.";
    "producer.id.expiration.ms", Int, "86400000", None, "Idempotent producer state of a partition is forgotten this long after the producer's last batch timestamp.";
    "producer.id.expiration.check.interval.ms", Int, "600000", None, "How often expired producer state is removed.";
    "group.initial.rebalance.delay.ms", Int, "3000", None, "How long the first rebalance of an empty group waits for more members to join (extended while they keep joining).";
    "group.min.session.timeout.ms", Int, "6000", None, "Smallest session timeout a group member may ask for.";
    "group.max.session.timeout.ms", Int, "1800000", None, "Largest session timeout a group member may ask for.";
    "group.max.size", Int, "2147483647", None, "Most members a classic group may have.";
    "offsets.topic.num.partitions", Int, "50", None, "Partitions of __consumer_offsets (when it is created).";
    "offsets.topic.segment.bytes", Int, "104857600", None, "segment.bytes of __consumer_offsets (when it is created).";
    "offset.metadata.max.bytes", Int, "4096", None, "Largest metadata string of a committed offset.";
    "transaction.state.log.num.partitions", Int, "50", None, "Partitions of __transaction_state (when it is created).";
    "transaction.state.log.segment.bytes", Int, "104857600", None, "segment.bytes of __transaction_state (when it is created).";
    "transaction.max.timeout.ms", Int, "900000", None, "Largest transaction timeout a transactional producer may ask for (InitProducerId).";
    "transaction.abort.timed.out.transaction.cleanup.interval.ms", Int, "10000", None, "How often transactions open longer than their timeout are aborted.";
    "transactional.id.expiration.ms", Int, "604800000", None, "A transactional id idle this long (no transaction in progress) is removed.";
    "transaction.remove.expired.transaction.cleanup.interval.ms", Int, "3600000", None, "How often expired transactional ids are removed.";
    "fetch.max.bytes", Int, "57671680", None, "Most bytes of records returned for a consumer Fetch, whatever its max_bytes asks (KIP-541); at least 1024.";
    "max.incremental.fetch.session.cache.slots", Int, "1000", None, "Most incremental fetch sessions (KIP-227) the broker keeps; 0 declines every session.";
    "log.dirs", String, "", None, "Data directory (use --data-dir).";
    "node.id", Int, "1", None, "This broker's id (use --node-id).";
}

/// The broker configs [`BrokerConfig::cleaner_config`] reads.
const CLEANER_KEYS: [&str; 3] = [
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.max.bytes.per.second",
];

/// Looks up a broker config definition by name.
pub fn broker_config_def(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// Everything needed to start a broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's node id (`node.id`).
    pub node_id: i32,
    /// Address to listen on; port 0 picks an ephemeral port.
    pub listen: SocketAddr,
    /// Host and port advertised to clients in Metadata; defaults to the bound address.
    pub advertised: Option<(String, u16)>,
    /// Data directory; `None` uses a fresh temporary directory removed on shutdown.
    pub data_dir: Option<PathBuf>,
    /// Kafka broker configs set explicitly (validated).
    pub props: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertised: None,
            data_dir: None,
            props: BTreeMap::new(),
        }
    }
}

impl BrokerConfig {
    /// Sets a Kafka broker config after validating its name and value.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let def = broker_config_def(key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
        def.ty.validate(key, value)?;
        // Kafka: "log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread"
        // (strictly more; broker-lite has one cleaner). Kafka leaves the load factor
        // unchecked; above 1 its offset map would overflow, so it must be in (0, 1] here. The
        // cleaner's settings must also hold together: see `CLEANER_KEYS` below.
        let problem = match key {
            "log.cleaner.min.cleanable.ratio" => (!value
                .trim()
                .parse::<f64>()
                .is_ok_and(|r| (0.0..=1.0).contains(&r)))
            .then_some("expected a number between 0 and 1"),
            "log.cleaner.dedupe.buffer.size" => value
                .trim()
                .parse::<i64>()
                .is_ok_and(|v| v <= 1024 * 1024)
                .then_some("must be more than 1 MiB (1048576)"),
            "log.cleaner.io.buffer.load.factor" => (!value
                .trim()
                .parse::<f64>()
                .is_ok_and(|f| f > 0.0 && f <= 1.0))
            .then_some("expected a number above 0 and at most 1"),
            // Kafka: atLeast(1024).
            "fetch.max.bytes" => value
                .trim()
                .parse::<i64>()
                .is_ok_and(|v| v < 1024)
                .then_some("Value must be at least 1024"),
            // Kafka: atLeast(0).
            "max.incremental.fetch.session.cache.slots" => value
                .trim()
                .parse::<i64>()
                .is_ok_and(|v| v < 0)
                .then_some("Value must be at least 0"),
            _ => None,
        };
        let invalid = |reason: &str| ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if let Some(reason) = problem {
            return Err(invalid(reason));
        }
        let previous = self.props.insert(key.to_string(), value.trim().to_string());
        // The cleaner's settings together, as every cleaning pass checks them
        // (`CleanerConfig::validate`: an I/O rate above 0 — Kafka accepts any double, but 0
        // makes its cleaner sleep forever and a negative rate or NaN never throttles — and an
        // offset map that fits at least one key), so that a broker never starts with settings
        // on which every pass fails.
        if CLEANER_KEYS.contains(&key) {
            if let Err(e) = self.cleaner_config().validate() {
                match previous {
                    Some(v) => self.props.insert(key.to_string(), v),
                    None => self.props.remove(key),
                };
                let crate::storage::ConfigError::Invalid { reason, .. } = e;
                return Err(invalid(&reason));
            }
        }
        match key {
            "node.id" => self.node_id = value.trim().parse().unwrap_or(self.node_id),
            "log.dirs" => self.data_dir = Some(PathBuf::from(value)),
            _ => {}
        }
        Ok(())
    }

    /// The value of a broker config: explicitly set, else Kafka's default.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str).or_else(|| {
            broker_config_def(key)
                .map(|d| d.default)
                .filter(|d| !d.is_empty())
        })
    }

    /// A config as an `i64` (defaults are always valid).
    pub fn get_i64(&self, key: &str) -> i64 {
        self.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// A config as a bool.
    pub fn get_bool(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }

    /// `num.partitions`.
    pub fn num_partitions(&self) -> i32 {
        self.get_i64("num.partitions").clamp(1, i32::MAX as i64) as i32
    }

    /// `socket.request.max.bytes`.
    pub fn max_request_size(&self) -> usize {
        self.get_i64("socket.request.max.bytes").max(1024) as usize
    }

    /// The log cleaner's settings: `log.cleaner.dedupe.buffer.size`,
    /// `log.cleaner.io.buffer.load.factor` and `log.cleaner.io.max.bytes.per.second`
    /// (validated by [`set`](Self::set)).
    pub fn cleaner_config(&self) -> crate::storage::CleanerConfig {
        let defaults = crate::storage::CleanerConfig::default();
        crate::storage::CleanerConfig {
            dedupe_buffer_size: u64::try_from(self.get_i64("log.cleaner.dedupe.buffer.size"))
                .unwrap_or(defaults.dedupe_buffer_size),
            load_factor: self
                .get("log.cleaner.io.buffer.load.factor")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.load_factor),
            io_max_bytes_per_second: self
                .get("log.cleaner.io.max.bytes.per.second")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.io_max_bytes_per_second),
        }
    }

    /// The broker-level defaults of topic configs, by topic config name, as Kafka resolves
    /// its synonyms (`log.retention.ms` over `log.retention.minutes` over
    /// `log.retention.hours`, `log.roll.ms` over `log.roll.hours`). Only explicitly set broker
    /// configs appear (with whether the value came from the broker config or a default).
    pub fn topic_defaults(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let set = |k: &str| self.props.get(k).cloned();
        let mult = |v: String, m: i64| v.parse::<i64>().map(|n| (n * m).to_string()).unwrap_or(v);
        if let Some(v) = set("log.retention.ms")
            .or_else(|| set("log.retention.minutes").map(|v| mult(v, 60_000)))
            .or_else(|| set("log.retention.hours").map(|v| mult(v, 3_600_000)))
        {
            out.insert("retention.ms".to_string(), v);
        }
        if let Some(v) =
            set("log.roll.ms").or_else(|| set("log.roll.hours").map(|v| mult(v, 3_600_000)))
        {
            out.insert("segment.ms".to_string(), v);
        }
        for def in BROKER_CONFIGS {
            if let (Some(syn), Some(v)) = (def.topic_synonym, self.props.get(def.name)) {
                if !matches!(syn, "retention.ms" | "segment.ms") {
                    out.insert(syn.to_string(), v.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let mut c = BrokerConfig::default();
        assert_eq!(
            c.set("num.partitons", "3"),
            Err(ConfigError::UnknownKey("num.partitons".into()))
        );
        assert!(matches!(
            c.set("num.partitions", "x"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set("auto.create.topics.enable", "yes"),
            Err(ConfigError::InvalidValue { .. })
        ));
        c.set("num.partitions", "3").unwrap();
        assert_eq!(c.num_partitions(), 3);
        assert!(c.set("log.cleaner.min.cleanable.ratio", "1.5").is_err());
        c.set("log.cleaner.min.cleanable.ratio", "0.2").unwrap();
        assert_eq!(c.topic_defaults()["min.cleanable.dirty.ratio"], "0.2");
        assert!(c.get_bool("log.cleaner.enable"));
    }

    #[test]
    fn cleaner_and_fetch_session_settings_are_validated_like_kafka() {
        let mut c = BrokerConfig::default();
        let defaults = c.cleaner_config();
        assert_eq!(
            (defaults.dedupe_buffer_size, defaults.load_factor),
            (134_217_728, 0.9)
        );
        // Kafka: more than 1 MiB per cleaner thread.
        assert!(c.set("log.cleaner.dedupe.buffer.size", "1048576").is_err());
        assert!(c.set("log.cleaner.dedupe.buffer.size", "x").is_err());
        c.set("log.cleaner.dedupe.buffer.size", "1048577").unwrap();
        for bad in ["0", "-0.5", "1.5", "NaN", "x"] {
            assert!(
                c.set("log.cleaner.io.buffer.load.factor", bad).is_err(),
                "{bad}"
            );
        }
        c.set("log.cleaner.io.buffer.load.factor", "0.75").unwrap();
        assert!(c
            .set("max.incremental.fetch.session.cache.slots", "-1")
            .is_err());
        c.set("max.incremental.fetch.session.cache.slots", "0")
            .unwrap();
        let cleaner = c.cleaner_config();
        assert_eq!(
            (cleaner.dedupe_buffer_size, cleaner.load_factor),
            (1_048_577, 0.75)
        );
        assert!(cleaner.validate().is_ok());
        // Each value in range, but together an offset map without room for one key (43,690
        // slots): refused, whichever is set last, and the previous value is kept.
        let err = c
            .set("log.cleaner.io.buffer.load.factor", "0.00002")
            .unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidValue { key, value, reason }
                if key == "log.cleaner.io.buffer.load.factor" && value == "0.00002"
                    && reason.contains("too small to fit even a single key")),
            "{err}"
        );
        assert_eq!(c.cleaner_config().load_factor, 0.75);
        c.set("log.cleaner.dedupe.buffer.size", "134217728")
            .unwrap();
        c.set("log.cleaner.io.buffer.load.factor", "0.00002")
            .unwrap();
        assert!(c.set("log.cleaner.dedupe.buffer.size", "1048577").is_err());
        let cleaner = c.cleaner_config();
        assert_eq!(
            (cleaner.dedupe_buffer_size, cleaner.load_factor),
            (134_217_728, 0.00002)
        );
        assert!(cleaner.validate().is_ok());
    }

    #[test]
    fn the_cleaner_io_rate_is_a_positive_double_unthrottled_by_default() {
        let mut c = BrokerConfig::default();
        let def = broker_config_def("log.cleaner.io.max.bytes.per.second").unwrap();
        // Kafka: DOUBLE, default Double.MaxValue.
        assert_eq!((def.ty, def.ty.describe_id()), (ConfigType::Double, 6));
        assert_eq!(c.cleaner_config().io_max_bytes_per_second, f64::MAX);
        let now = std::time::Instant::now();
        assert!(c.cleaner_config().io_throttler(now).is_none());
        for bad in ["x", "", "1,5", "0", "-1", "-0.0", "NaN"] {
            let err = c
                .set("log.cleaner.io.max.bytes.per.second", bad)
                .unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidValue { key, .. } if key == "log.cleaner.io.max.bytes.per.second"),
                "{bad}: {err}"
            );
        }
        assert_eq!(c.cleaner_config().io_max_bytes_per_second, f64::MAX);
        c.set("log.cleaner.io.max.bytes.per.second", " 1048576.5 ")
            .unwrap();
        let cleaner = c.cleaner_config();
        assert_eq!(cleaner.io_max_bytes_per_second, 1_048_576.5);
        assert!(cleaner.validate().is_ok());
        let throttler = cleaner.io_throttler(now).unwrap();
        assert_eq!(
            throttler.lock().unwrap().desired_rate_per_sec(),
            1_048_576.5
        );
        c.set("log.cleaner.io.max.bytes.per.second", "1e3").unwrap();
        assert_eq!(c.cleaner_config().io_max_bytes_per_second, 1000.0);
        // Infinity, like the default, is unthrottled.
        c.set("log.cleaner.io.max.bytes.per.second", "Infinity")
            .unwrap();
        assert!(c.cleaner_config().io_throttler(now).is_none());
    }

    #[test]
    fn synonyms_resolve_like_kafka() {
        let mut c = BrokerConfig::default();
        assert!(c.topic_defaults().is_empty());
        c.set("log.retention.hours", "1").unwrap();
        assert_eq!(c.topic_defaults()["retention.ms"], "3600000");
        c.set("log.retention.minutes", "2").unwrap();
        assert_eq!(c.topic_defaults()["retention.ms"], "120000");
        c.set("log.retention.ms", "5").unwrap();
        assert_eq!(c.topic_defaults()["retention.ms"], "5");
        c.set("log.segment.bytes", "1024").unwrap();
        c.set("message.max.bytes", "2048").unwrap();
        let d = c.topic_defaults();
        assert_eq!(d["segment.bytes"], "1024");
        assert_eq!(d["max.message.bytes"], "2048");
    }
}
