//! [`LogConfig`]: the per-topic log settings, under their Kafka names.
//!
//! Parsing follows Kafka's `LogConfig` definitions (types, validators, defaults), so a
//! `CreateTopics` or `AlterConfigs` request can be validated with [`LogConfig::from_props`] or
//! [`LogConfig::with_overrides`]. `DescribeConfigs` is answered from the broker's topic config
//! registry (`crate::topic_config`), whose defaults a test keeps equal to these.
//!
//! Differences from Kafka:
//! * `segment.bytes` accepts any value from 14 bytes up (Kafka 3.x's bound). Kafka 4 requires
//!   at least 1 MiB and uses an internal setting for smaller test segments; a development
//!   broker benefits from small segments.
//! * `min.cleanable.dirty.ratio` is a plain number in `[0, 1]` (Kafka's `Double`).
//! * Only the settings the storage layer acts on are known here; other topic configs
//!   (`compression.type`, `min.insync.replicas`, ...) are ignored by [`LogConfig::from_props`]
//!   and belong to the caller.

use std::collections::BTreeMap;
use std::fmt;

/// `message.timestamp.type`: which timestamp the log records for each batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MessageTimestampType {
    /// Keep the producer's timestamps (`CreateTime`, the default).
    #[default]
    CreateTime,
    /// Stamp every appended batch with the broker's append time (`LogAppendTime`).
    LogAppendTime,
}

impl MessageTimestampType {
    /// The Kafka spelling: `CreateTime` or `LogAppendTime`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageTimestampType::CreateTime => "CreateTime",
            MessageTimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// `cleanup.policy`: a non-empty subset of `{delete, compact}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CleanupPolicy {
    /// `delete`: old segments are removed by time and size retention.
    pub delete: bool,
    /// `compact`: the log cleaner keeps the latest record per key (see
    /// `storage/compaction.rs`); records must have keys.
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.delete, self.compact) {
            (true, true) => f.write_str("compact,delete"),
            (false, true) => f.write_str("compact"),
            (true, false) => f.write_str("delete"),
            (false, false) => Ok(()),
        }
    }
}

/// The per-topic log settings, with Kafka's names, types and defaults.
///
/// Construct with [`LogConfig::default`] (Kafka's defaults), [`LogConfig::from_props`], or
/// struct update syntax; [`LogConfig::validate`] checks the values against Kafka's validators
/// (the log does this on open).
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: a segment is rolled before an append would make it larger than
    /// this. Default 1 GiB.
    pub segment_bytes: i32,
    /// `segment.ms`: a segment is rolled once its first batch's timestamp is this old
    /// (compared with the timestamps being appended). Default 7 days.
    pub segment_ms: i64,
    /// `segment.index.bytes`: maximum size of a segment's offset index (and of its time
    /// index); a full index rolls the segment. Default 10 MiB.
    pub segment_index_bytes: i32,
    /// `index.interval.bytes`: log bytes between two offset index entries. Default 4096.
    pub index_interval_bytes: i32,
    /// `retention.ms`: segments whose newest timestamp is older than this are deleted; -1
    /// keeps them forever. Default 7 days.
    pub retention_ms: i64,
    /// `retention.bytes`: oldest segments are deleted while the log is larger than this;
    /// negative means no limit. Default -1.
    pub retention_bytes: i64,
    /// `flush.messages`: fsync after this many records. Default `i64::MAX` (never; rely on
    /// the page cache, as Kafka does).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the last fsync is this old. Default `i64::MAX` (never).
    pub flush_ms: i64,
    /// `max.message.bytes`: largest record batch accepted, log overhead included. Default
    /// 1048588.
    pub max_message_bytes: i32,
    /// `message.timestamp.type`. Default `CreateTime`.
    pub message_timestamp_type: MessageTimestampType,
    /// `cleanup.policy`. Default `delete`.
    pub cleanup_policy: CleanupPolicy,
    /// `file.delete.delay.ms`: how long deleted segment files stay around, renamed with a
    /// `.deleted` suffix, before being removed. Default 60000.
    pub file_delete_delay_ms: i64,
    /// `delete.retention.ms`: how long the log cleaner keeps a tombstone (a record with a
    /// null value) after the cleaning that first retained it (its batch's delete horizon).
    /// Default 1 day.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the cleaner compacts a log once the uncleaned part of its
    /// cleanable segments is more than this share of them. Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: segments whose newest record is younger than this are not
    /// compacted. Default 0.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest uncleaned record is older than this is
    /// compacted whatever its dirty ratio. Default `i64::MAX`.
    pub max_compaction_lag_ms: i64,
}

// `min_cleanable_dirty_ratio` is never NaN in a configuration that passed `validate` (NaN
// fails its range check), so equality is total.
impl Eq for LogConfig {}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: MessageTimestampType::CreateTime,
            cleanup_policy: CleanupPolicy::default(),
            file_delete_delay_ms: 60_000,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

/// An invalid configuration, as Kafka reports it (`INVALID_CONFIG`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The value cannot be parsed or is outside the allowed range.
    #[error("invalid value {value:?} for configuration {name}: {reason}")]
    Invalid {
        /// Configuration name, e.g. `segment.bytes`.
        name: String,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
}

impl LogConfig {
    /// Every configuration name this struct understands.
    pub const NAMES: [&'static str; 16] = [
        "segment.bytes",
        "segment.ms",
        "segment.index.bytes",
        "index.interval.bytes",
        "retention.ms",
        "retention.bytes",
        "flush.messages",
        "flush.ms",
        "max.message.bytes",
        "message.timestamp.type",
        "cleanup.policy",
        "file.delete.delay.ms",
        "delete.retention.ms",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "max.compaction.lag.ms",
    ];

    /// Kafka's defaults overridden by `props` (Kafka names and string values, as found in
    /// `CreateTopics` and `AlterConfigs`). Names not in [`LogConfig::NAMES`] are ignored.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a value that does not parse or fails Kafka's validator.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
        LogConfig::default().with_overrides(props)
    }

    /// This configuration (e.g. the broker-wide defaults) overridden by `props`. Names not in
    /// [`LogConfig::NAMES`] are ignored.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a value that does not parse or fails Kafka's validator.
    pub fn with_overrides(
        &self,
        props: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let mut c = self.clone();
        for (name, value) in props {
            c.set(name, value)?;
        }
        Ok(c)
    }

    /// Sets one configuration by its Kafka name. Returns `Ok(false)` for a name that is not
    /// a log configuration (nothing is changed then).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a value that does not parse or fails Kafka's validator.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, ConfigError> {
        let v = value.trim();
        match name {
            "segment.bytes" => self.segment_bytes = parse_int(name, v, 14)?,
            "segment.ms" => self.segment_ms = parse_long(name, v, Some(1))?,
            "segment.index.bytes" => self.segment_index_bytes = parse_int(name, v, 4)?,
            "index.interval.bytes" => self.index_interval_bytes = parse_int(name, v, 0)?,
            "retention.ms" => self.retention_ms = parse_long(name, v, Some(-1))?,
            "retention.bytes" => self.retention_bytes = parse_long(name, v, None)?,
            "flush.messages" => self.flush_messages = parse_long(name, v, Some(1))?,
            "flush.ms" => self.flush_ms = parse_long(name, v, Some(0))?,
            "max.message.bytes" => self.max_message_bytes = parse_int(name, v, 0)?,
            "message.timestamp.type" => {
                self.message_timestamp_type = match v {
                    "CreateTime" => MessageTimestampType::CreateTime,
                    "LogAppendTime" => MessageTimestampType::LogAppendTime,
                    _ => {
                        return Err(invalid(
                            name,
                            value,
                            "String must be one of: CreateTime, LogAppendTime",
                        ))
                    }
                }
            }
            "cleanup.policy" => {
                let mut policy = CleanupPolicy {
                    delete: false,
                    compact: false,
                };
                for item in v.split(',').map(str::trim) {
                    match item.to_ascii_lowercase().as_str() {
                        "delete" => policy.delete = true,
                        "compact" => policy.compact = true,
                        _ => {
                            return Err(invalid(
                                name,
                                value,
                                "every item must be one of: compact, delete",
                            ))
                        }
                    }
                }
                self.cleanup_policy = policy;
            }
            "file.delete.delay.ms" => self.file_delete_delay_ms = parse_long(name, v, Some(0))?,
            "delete.retention.ms" => self.delete_retention_ms = parse_long(name, v, Some(0))?,
            "min.cleanable.dirty.ratio" => {
                let ratio: f64 = v
                    .parse()
                    .map_err(|_| invalid(name, value, "Expected value to be a double"))?;
                if !(0.0..=1.0).contains(&ratio) {
                    return Err(invalid(name, value, "Value must be between 0 and 1"));
                }
                self.min_cleanable_dirty_ratio = ratio;
            }
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_long(name, v, Some(0))?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = parse_long(name, v, Some(1))?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks every value against Kafka's validators (useful after building the struct by
    /// hand).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first offending configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, name: &str, value: String, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(name, &value, reason))
            }
        };
        check(
            self.segment_bytes >= 14,
            "segment.bytes",
            self.segment_bytes.to_string(),
            "Value must be at least 14",
        )?;
        check(
            self.segment_ms >= 1,
            "segment.ms",
            self.segment_ms.to_string(),
            "Value must be at least 1",
        )?;
        check(
            self.segment_index_bytes >= 4,
            "segment.index.bytes",
            self.segment_index_bytes.to_string(),
            "Value must be at least 4",
        )?;
        check(
            self.index_interval_bytes >= 0,
            "index.interval.bytes",
            self.index_interval_bytes.to_string(),
            "Value must be at least 0",
        )?;
        check(
            self.retention_ms >= -1,
            "retention.ms",
            self.retention_ms.to_string(),
            "Value must be at least -1",
        )?;
        check(
            self.flush_messages >= 1,
            "flush.messages",
            self.flush_messages.to_string(),
            "Value must be at least 1",
        )?;
        check(
            self.flush_ms >= 0,
            "flush.ms",
            self.flush_ms.to_string(),
            "Value must be at least 0",
        )?;
        check(
            self.max_message_bytes >= 0,
            "max.message.bytes",
            self.max_message_bytes.to_string(),
            "Value must be at least 0",
        )?;
        check(
            self.cleanup_policy.delete || self.cleanup_policy.compact,
            "cleanup.policy",
            String::new(),
            "must list at least one of: compact, delete",
        )?;
        check(
            self.file_delete_delay_ms >= 0,
            "file.delete.delay.ms",
            self.file_delete_delay_ms.to_string(),
            "Value must be at least 0",
        )?;
        check(
            self.delete_retention_ms >= 0,
            "delete.retention.ms",
            self.delete_retention_ms.to_string(),
            "Value must be at least 0",
        )?;
        check(
            (0.0..=1.0).contains(&self.min_cleanable_dirty_ratio),
            "min.cleanable.dirty.ratio",
            self.min_cleanable_dirty_ratio.to_string(),
            "Value must be between 0 and 1",
        )?;
        check(
            self.min_compaction_lag_ms >= 0,
            "min.compaction.lag.ms",
            self.min_compaction_lag_ms.to_string(),
            "Value must be at least 0",
        )?;
        check(
            self.max_compaction_lag_ms >= 1,
            "max.compaction.lag.ms",
            self.max_compaction_lag_ms.to_string(),
            "Value must be at least 1",
        )
    }

    /// Maximum number of entries in a segment's offset index (8-byte entries).
    pub(crate) fn max_index_entries(&self) -> usize {
        usize::try_from(self.segment_index_bytes).unwrap_or(0) / super::index::ENTRY_SIZE
    }

    /// Maximum number of entries in a segment's time index (12-byte entries).
    pub(crate) fn max_time_index_entries(&self) -> usize {
        usize::try_from(self.segment_index_bytes).unwrap_or(0) / super::time_index::ENTRY_SIZE
    }

    /// `index.interval.bytes` as a byte count.
    pub(crate) fn index_interval(&self) -> u64 {
        u64::try_from(self.index_interval_bytes).unwrap_or(0)
    }
}

fn invalid(name: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_int(name: &str, value: &str, at_least: i32) -> Result<i32, ConfigError> {
    let v: i32 = value
        .parse()
        .map_err(|_| invalid(name, value, "Expected value to be a 32-bit integer"))?;
    if v < at_least {
        return Err(invalid(
            name,
            value,
            &format!("Value must be at least {at_least}"),
        ));
    }
    Ok(v)
}

fn parse_long(name: &str, value: &str, at_least: Option<i64>) -> Result<i64, ConfigError> {
    let v: i64 = value
        .parse()
        .map_err(|_| invalid(name, value, "Expected value to be a 64-bit integer"))?;
    if let Some(min) = at_least {
        if v < min {
            return Err(invalid(
                name,
                value,
                &format!("Value must be at least {min}"),
            ));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1073741824);
        assert_eq!(c.segment_ms, 604800000);
        assert_eq!(c.segment_index_bytes, 10485760);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.retention_ms, 604800000);
        assert_eq!(c.retention_bytes, -1);
        assert_eq!(c.flush_messages, i64::MAX);
        assert_eq!(c.flush_ms, i64::MAX);
        assert_eq!(c.max_message_bytes, 1048588);
        assert_eq!(c.file_delete_delay_ms, 60000);
        assert_eq!(c.cleanup_policy.to_string(), "delete");
        assert_eq!(c.delete_retention_ms, 86400000);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.5);
        assert_eq!(c.min_compaction_lag_ms, 0);
        assert_eq!(c.max_compaction_lag_ms, i64::MAX);
        c.validate().unwrap();
        assert_eq!(c.max_index_entries(), 10485760 / 8);
        assert_eq!(c.max_time_index_entries(), 10485760 / 12);
    }

    #[test]
    fn parses_kafka_props() {
        let c = LogConfig::from_props(&props(&[
            ("segment.bytes", "1048576"),
            ("segment.ms", " 3600000 "),
            ("retention.ms", "-1"),
            ("retention.bytes", "-5"),
            ("message.timestamp.type", "LogAppendTime"),
            ("cleanup.policy", "compact, Delete"),
            ("min.insync.replicas", "2"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("delete.retention.ms", "100"),
            ("min.compaction.lag.ms", "5"),
            ("max.compaction.lag.ms", "60000"),
        ]))
        .unwrap();
        assert_eq!(c.min_cleanable_dirty_ratio, 0.25);
        assert_eq!(
            (
                c.delete_retention_ms,
                c.min_compaction_lag_ms,
                c.max_compaction_lag_ms
            ),
            (100, 5, 60000)
        );
        assert_eq!(c.segment_bytes, 1048576);
        assert_eq!(c.segment_ms, 3600000);
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.retention_bytes, -5);
        assert_eq!(
            c.message_timestamp_type,
            MessageTimestampType::LogAppendTime
        );
        assert_eq!(
            c.cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: true
            }
        );
    }

    #[test]
    fn rejects_bad_values() {
        for (k, v) in [
            ("segment.bytes", "13"),
            ("segment.bytes", "abc"),
            ("segment.bytes", "3000000000"),
            ("segment.ms", "0"),
            ("segment.index.bytes", "3"),
            ("index.interval.bytes", "-1"),
            ("retention.ms", "-2"),
            ("retention.bytes", "1.5"),
            ("flush.messages", "0"),
            ("flush.ms", "-1"),
            ("max.message.bytes", "-1"),
            ("message.timestamp.type", "createtime"),
            ("cleanup.policy", "delete,forever"),
            ("cleanup.policy", ""),
            ("file.delete.delay.ms", "-1"),
            ("delete.retention.ms", "-1"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.cleanable.dirty.ratio", "-0.1"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("min.cleanable.dirty.ratio", "half"),
            ("min.compaction.lag.ms", "-1"),
            ("max.compaction.lag.ms", "0"),
        ] {
            let err = LogConfig::from_props(&props(&[(k, v)])).unwrap_err();
            let ConfigError::Invalid { name, value, .. } = &err;
            assert_eq!((name.as_str(), value.as_str()), (k, v), "{err}");
        }
    }

    #[test]
    fn overrides_layer_on_broker_defaults() {
        let broker = LogConfig::from_props(&props(&[("retention.ms", "1000")])).unwrap();
        let topic = broker
            .with_overrides(&props(&[("segment.ms", "50")]))
            .unwrap();
        assert_eq!((topic.retention_ms, topic.segment_ms), (1000, 50));
        let mut c = LogConfig::default();
        assert!(!c.set("compression.type", "lz4").unwrap());
        c.segment_index_bytes = 2;
        assert!(c.validate().is_err());
    }
}
