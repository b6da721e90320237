//! Topic-level configs: Kafka's names, types and defaults, and how an effective value is
//! resolved (topic override, else the broker's synonym, else Kafka's default), as
//! DescribeConfigs reports it.

use std::collections::BTreeMap;

use crate::config::{BrokerConfig, ConfigError, ConfigType};

/// One topic config definition.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// Its type.
    pub ty: ConfigType,
    /// Kafka's default.
    pub default: &'static str,
    /// The broker config that supplies its default.
    pub broker_synonym: Option<&'static str>,
    /// One-line documentation.
    pub doc: &'static str,
}

macro_rules! topic_configs {
    ($( $name:literal, $ty:ident, $default:literal, $syn:expr, $doc:literal; )*) => {
        /// Every topic config broker-lite accepts, in name order, with Kafka 4.0's defaults.
        pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
            $( TopicConfigDef { name: $name, ty: ConfigType::$ty, default: $default, broker_synonym: $syn, doc: $doc }, )*
        ];
    };
}

topic_configs! {
    "cleanup.policy", List, "delete", Some("log.cleanup.policy"), "delete (by retention) and/or compact (the log cleaner keeps the latest record per key).";
    "compression.type", String, "producer", Some("compression.type"), "Compression of stored batches; broker-lite stores what the producer sent.";
    "delete.retention.ms", Long, "86400000", Some("log.cleaner.delete.retention.ms"), "How long delete tombstones are kept for compacted topics.";
    "file.delete.delay.ms", Long, "60000", Some("log.segment.delete.delay.ms"), "Delay before a deleted segment's files are removed.";
    "flush.messages", Long, "9223372036854775807", Some("log.flush.interval.messages"), "Messages between fsyncs.";
    "flush.ms", Long, "9223372036854775807", Some("log.flush.interval.ms"), "Milliseconds between fsyncs.";
    "index.interval.bytes", Int, "4096", Some("log.index.interval.bytes"), "Bytes of log between offset index entries.";
    "max.compaction.lag.ms", Long, "9223372036854775807", Some("log.cleaner.max.compaction.lag.ms"), "Maximum time a record stays uncompacted.";
    "max.message.bytes", Int, "1048588", Some("message.max.bytes"), "Largest record batch accepted.";
    "message.timestamp.after.max.ms", Long, "9223372036854775807", None, "How far in the future a CreateTime timestamp may be.";
    "message.timestamp.before.max.ms", Long, "9223372036854775807", None, "How far in the past a CreateTime timestamp may be.";
    "message.timestamp.type", String, "CreateTime", Some("log.message.timestamp.type"), "CreateTime or LogAppendTime.";
    "min.cleanable.dirty.ratio", String, "0.5", Some("log.cleaner.min.cleanable.ratio"), "Dirty ratio that triggers compaction.";
    "min.compaction.lag.ms", Long, "0", Some("log.cleaner.min.compaction.lag.ms"), "Minimum time a record stays uncompacted.";
    "min.insync.replicas", Int, "1", Some("min.insync.replicas"), "Minimum in-sync replicas for acks=all.";
    "preallocate", Boolean, "false", None, "Preallocate segment files.";
    "retention.bytes", Long, "-1", Some("log.retention.bytes"), "Maximum partition size before old segments are deleted; -1 is unlimited.";
    "retention.ms", Long, "604800000", Some("log.retention.ms"), "How long segments are kept; -1 keeps forever.";
    "segment.bytes", Int, "1073741824", Some("log.segment.bytes"), "Segment size at which the log rolls.";
    "segment.index.bytes", Int, "10485760", Some("log.index.size.max.bytes"), "Maximum offset index size per segment.";
    "segment.jitter.ms", Long, "0", None, "Random jitter subtracted from segment.ms.";
    "segment.ms", Long, "604800000", Some("log.roll.ms"), "Segment age at which the log rolls.";
    "unclean.leader.election.enable", Boolean, "false", None, "Allow out-of-sync replicas to become leader.";
}

/// Looks up a topic config definition.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Validates a topic's complete set of overrides (Kafka's `LogConfig.validate`), in name
/// order.
///
/// # Errors
/// [`ConfigError`] naming the first bad config (Kafka answers INVALID_CONFIG).
pub fn validate_topic_configs(overrides: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    overrides
        .iter()
        .try_for_each(|(name, value)| validate_topic_config(name, value))
}

/// Validates a topic config override (name and value).
///
/// # Errors
/// [`ConfigError`] naming the key (Kafka answers INVALID_CONFIG):
/// [`ConfigError::UnknownTopicConfig`] for a name that is not a topic config.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    let def =
        topic_config_def(name).ok_or_else(|| ConfigError::UnknownTopicConfig(name.to_string()))?;
    def.ty.validate(name, value)?;
    let bad = |reason: &str| ConfigError::InvalidValue {
        key: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match name {
        "message.timestamp.type" if !matches!(value, "CreateTime" | "LogAppendTime") => {
            Err(bad("String must be one of: CreateTime, LogAppendTime"))
        }
        "cleanup.policy"
            if !value
                .split(',')
                .all(|p| matches!(p.trim(), "delete" | "compact")) =>
        {
            Err(bad("String must be one of: compact, delete"))
        }
        "compression.type"
            if !matches!(
                value,
                "producer" | "uncompressed" | "none" | "gzip" | "snappy" | "lz4" | "zstd"
            ) =>
        {
            Err(bad(
                "String must be one of (case insensitive): uncompressed, zstd, lz4, snappy, gzip, producer",
            ))
        }
        "segment.bytes" if value.parse::<i64>().is_ok_and(|v| v < 14) => {
            Err(bad("Value must be at least 14"))
        }
        "max.message.bytes" | "index.interval.bytes" | "segment.index.bytes"
            if value.parse::<i64>().is_ok_and(|v| v < 0) =>
        {
            Err(bad("Value must be at least 0"))
        }
        "min.insync.replicas" if value.parse::<i64>().is_ok_and(|v| v < 1) => {
            Err(bad("Value must be at least 1"))
        }
        "min.cleanable.dirty.ratio"
            if !value
                .trim()
                .parse::<f64>()
                .is_ok_and(|r| (0.0..=1.0).contains(&r)) =>
        {
            Err(bad("expected a number between 0 and 1"))
        }
        _ => Ok(()),
    }
}

/// Where an effective topic config value comes from (DescribeConfigs `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    TopicOverride,
    /// Set on the broker at startup (a `log.*` synonym).
    StaticBroker,
    /// Kafka's default.
    Default,
}

impl ConfigSource {
    /// The numeric id DescribeConfigs v1+ uses.
    pub fn describe_id(self) -> i8 {
        match self {
            ConfigSource::TopicOverride => 1,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// One resolved topic config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveConfig {
    /// The config definition.
    pub name: &'static str,
    /// The value in force.
    pub value: String,
    /// Where it came from.
    pub source: ConfigSource,
}

/// Resolves every topic config for a topic with `overrides`, in name order.
pub fn effective_topic_configs(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<EffectiveConfig> {
    let broker_defaults = broker.topic_defaults();
    TOPIC_CONFIGS
        .iter()
        .map(|d| {
            let (value, source) = if let Some(v) = overrides.get(d.name) {
                (v.clone(), ConfigSource::TopicOverride)
            } else if let Some(v) = broker_defaults.get(d.name) {
                (v.clone(), ConfigSource::StaticBroker)
            } else {
                (d.default.to_string(), ConfigSource::Default)
            };
            EffectiveConfig {
                name: d.name,
                value,
                source,
            }
        })
        .collect()
}

/// The effective configs as a plain map (what the storage layer's `LogConfig` parses).
pub fn effective_topic_config_map(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    effective_topic_configs(broker, overrides)
        .into_iter()
        .map(|c| (c.name.to_string(), c.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_order_is_override_then_broker_then_default() {
        let mut b = BrokerConfig::default();
        b.set("log.retention.hours", "1").unwrap();
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_string(), "1000".to_string());
        let eff = effective_topic_configs(&b, &o);
        let get = |n: &str| eff.iter().find(|c| c.name == n).unwrap().clone();
        assert_eq!(get("segment.bytes").source, ConfigSource::TopicOverride);
        assert_eq!(get("retention.ms").value, "3600000");
        assert_eq!(get("retention.ms").source, ConfigSource::StaticBroker);
        assert_eq!(get("retention.bytes").source, ConfigSource::Default);
    }

    #[test]
    fn validation() {
        assert!(validate_topic_config("retention.ms", "100").is_ok());
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert_eq!(
            validate_topic_config("no.such", "1"),
            Err(ConfigError::UnknownTopicConfig("no.such".into()))
        );
        assert!(validate_topic_config("message.timestamp.type", "Now").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "0.1").is_ok());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "2").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "x").is_err());
    }

    /// Two places know Kafka's topic-config defaults: this table (for DescribeConfigs) and
    /// the storage layer's `LogConfig::default()`. They must agree.
    #[test]
    fn defaults_agree_with_the_storage_layer() {
        let defaults = effective_topic_config_map(&BrokerConfig::default(), &BTreeMap::new());
        let parsed = crate::storage::LogConfig::from_props(&defaults).unwrap();
        assert_eq!(parsed, crate::storage::LogConfig::default());
        for name in crate::storage::LogConfig::NAMES {
            assert!(
                topic_config_def(name).is_some(),
                "{name} missing from TOPIC_CONFIGS"
            );
        }
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for w in TOPIC_CONFIGS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
    }
}
