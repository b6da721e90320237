//! Config calls: DescribeConfigs (KIP-133; synonyms KIP-226, types and documentation
//! KIP-569) and IncrementalAlterConfigs (KIP-339: SET, DELETE, APPEND, SUBTRACT).
//!
//! As Java's `KafkaAdminClient`, a broker resource named by a node id goes to that broker;
//! topic resources and the cluster-wide broker default (`""`) go to any broker.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use kafka_wire::messages::describe_configs_request::DescribeConfigsResource;
use kafka_wire::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_wire::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use super::retry::ItemResults;
use super::{check, fan_out, AdminClient};
use crate::error::Error;
use crate::network::connection::BrokerConnection;

/// The kind of a [`ConfigResource`] (Java's `ConfigResource.Type`), with its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConfigResourceType {
    /// A topic (2).
    Topic,
    /// A broker (4), named by node id, or `""` for the cluster-wide default.
    Broker,
    /// A broker's loggers (8).
    BrokerLogger,
    /// Client metrics subscriptions (16).
    ClientMetrics,
    /// A group (32).
    Group,
    /// A code this client does not know.
    Unknown(i8),
}

impl ConfigResourceType {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
            ConfigResourceType::ClientMetrics => 16,
            ConfigResourceType::Group => 32,
            ConfigResourceType::Unknown(c) => c,
        }
    }

    /// The type of a wire code.
    pub fn from_code(code: i8) -> Self {
        match code {
            2 => ConfigResourceType::Topic,
            4 => ConfigResourceType::Broker,
            8 => ConfigResourceType::BrokerLogger,
            16 => ConfigResourceType::ClientMetrics,
            32 => ConfigResourceType::Group,
            c => ConfigResourceType::Unknown(c),
        }
    }
}

/// A resource with configs (Java's `ConfigResource`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// The kind of resource.
    pub resource_type: ConfigResourceType,
    /// Its name: a topic name, a broker id, ...
    pub name: String,
}

impl ConfigResource {
    /// A topic.
    pub fn topic(name: impl Into<String>) -> Self {
        ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// A broker, by node id.
    pub fn broker(node_id: i32) -> Self {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: node_id.to_string(),
        }
    }

    /// The broker that must answer for this resource (a broker or broker-logger resource
    /// named by a node id), else `None`: any broker.
    pub(crate) fn target_broker(&self) -> Option<i32> {
        match self.resource_type {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => self.name.parse().ok(),
            _ => None,
        }
    }
}

/// Where a config value comes from (Java's `ConfigEntry.ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Unknown (0, or a code this client does not know).
    Unknown,
    /// A topic override (1).
    DynamicTopicConfig,
    /// A dynamic config of this broker (2).
    DynamicBrokerConfig,
    /// A dynamic cluster-wide broker default (3).
    DynamicDefaultBrokerConfig,
    /// The broker's static configuration (4).
    StaticBrokerConfig,
    /// Kafka's default (5).
    DefaultConfig,
    /// A dynamic broker logger level (6).
    DynamicBrokerLoggerConfig,
    /// A client metrics config (7).
    ClientMetricsConfig,
    /// A group config (8).
    GroupConfig,
}

impl ConfigSource {
    /// The source of a wire code.
    pub fn from_i8(code: i8) -> Self {
        match code {
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            7 => ConfigSource::ClientMetricsConfig,
            8 => ConfigSource::GroupConfig,
            _ => ConfigSource::Unknown,
        }
    }
}

/// A config's value type (Java's `ConfigEntry.ConfigType`, DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigType {
    /// Unknown (0).
    Unknown,
    /// Boolean (1).
    Boolean,
    /// String (2).
    String,
    /// Int (3).
    Int,
    /// Short (4).
    Short,
    /// Long (5).
    Long,
    /// Double (6).
    Double,
    /// List (7).
    List,
    /// Class (8).
    Class,
    /// Password (9).
    Password,
}

impl ConfigType {
    /// The type of a wire code.
    pub fn from_i8(code: i8) -> Self {
        match code {
            1 => ConfigType::Boolean,
            2 => ConfigType::String,
            3 => ConfigType::Int,
            4 => ConfigType::Short,
            5 => ConfigType::Long,
            6 => ConfigType::Double,
            7 => ConfigType::List,
            8 => ConfigType::Class,
            9 => ConfigType::Password,
            _ => ConfigType::Unknown,
        }
    }
}

/// Another place a config is set, by precedence (Java's `ConfigEntry.ConfigSynonym`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The key (for example `log.retention.ms` for a topic's `retention.ms`).
    pub name: String,
    /// Its value (`None` when sensitive).
    pub value: Option<String>,
    /// Where it is set.
    pub source: ConfigSource,
}

/// One config of a resource (Java's `ConfigEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key.
    pub name: String,
    /// The effective value (`None` when sensitive or unset).
    pub value: Option<String>,
    /// Where the effective value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed.
    pub is_read_only: bool,
    /// Whether the value is hidden (passwords).
    pub is_sensitive: bool,
    /// Whether the value is Kafka's default.
    pub is_default: bool,
    /// The synonyms, when asked for.
    pub synonyms: Vec<ConfigSynonym>,
    /// The value type (v3+).
    pub config_type: Option<ConfigType>,
    /// The documentation, when asked for (v3+).
    pub documentation: Option<String>,
}

/// A resource's configs (Java's `Config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The entries, in the broker's order.
    pub entries: Vec<ConfigEntry>,
}

impl Config {
    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&ConfigEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Options of [`AdminClient::describe_configs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsOptions {
    /// Return each entry's synonyms.
    pub include_synonyms: bool,
    /// Return each entry's documentation.
    pub include_documentation: bool,
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// An incremental change's operation (Java's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlterConfigOpType {
    /// Set the value (0).
    Set,
    /// Remove the override: back to the default (1).
    Delete,
    /// Add values to a list config (2).
    Append,
    /// Remove values from a list config (3).
    Subtract,
}

impl AlterConfigOpType {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            AlterConfigOpType::Set => 0,
            AlterConfigOpType::Delete => 1,
            AlterConfigOpType::Append => 2,
            AlterConfigOpType::Subtract => 3,
        }
    }
}

/// One incremental config change (Java's `AlterConfigOp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    /// The key.
    pub name: String,
    /// The value (ignored by DELETE).
    pub value: Option<String>,
    /// What to do.
    pub op: AlterConfigOpType,
}

impl AlterConfigOp {
    /// SET `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            value: Some(value.into()),
            op: AlterConfigOpType::Set,
        }
    }

    /// DELETE `name` (back to its default).
    pub fn delete(name: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            value: None,
            op: AlterConfigOpType::Delete,
        }
    }

    /// APPEND `value` (comma-separated) to the list config `name`.
    pub fn append(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            value: Some(value.into()),
            op: AlterConfigOpType::Append,
        }
    }

    /// SUBTRACT `value` (comma-separated) from the list config `name`.
    pub fn subtract(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            value: Some(value.into()),
            op: AlterConfigOpType::Subtract,
        }
    }
}

/// Options of [`AdminClient::incremental_alter_configs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterConfigsOptions {
    /// Check everything but change nothing.
    pub validate_only: bool,
    /// The call's timeout (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Resources split by the broker that must answer them (`None`: any broker), pure.
pub(crate) fn route_resources(
    resources: &[ConfigResource],
) -> BTreeMap<Option<i32>, Vec<ConfigResource>> {
    let mut m: BTreeMap<Option<i32>, Vec<ConfigResource>> = BTreeMap::new();
    for r in resources {
        m.entry(r.target_broker()).or_default().push(r.clone());
    }
    m
}

/// The per-resource answers of a DescribeConfigs response (pure).
pub(crate) fn describe_configs_results(
    response: &DescribeConfigsResponse,
) -> Vec<(ConfigResource, Result<Config, Error>)> {
    response
        .results
        .iter()
        .map(|r| {
            let resource = ConfigResource {
                resource_type: ConfigResourceType::from_code(r.resource_type),
                name: r.resource_name.clone(),
            };
            let result = check(r.error_code, r.error_message.as_ref()).map(|()| Config {
                entries: r
                    .configs
                    .iter()
                    .map(|c| {
                        let source = ConfigSource::from_i8(c.config_source);
                        ConfigEntry {
                            name: c.name.clone(),
                            value: c.value.clone(),
                            source,
                            is_read_only: c.read_only,
                            is_sensitive: c.is_sensitive,
                            // v0 carried is_default; v1+ the source.
                            is_default: c.is_default || source == ConfigSource::DefaultConfig,
                            synonyms: c
                                .synonyms
                                .iter()
                                .map(|s| ConfigSynonym {
                                    name: s.name.clone(),
                                    value: s.value.clone(),
                                    source: ConfigSource::from_i8(s.source),
                                })
                                .collect(),
                            config_type: (c.config_type != 0)
                                .then(|| ConfigType::from_i8(c.config_type)),
                            documentation: c.documentation.clone(),
                        }
                    })
                    .collect(),
            });
            (resource, result)
        })
        .collect()
}

/// The per-resource answers of an IncrementalAlterConfigs response (pure).
pub(crate) fn alter_configs_results(
    response: &IncrementalAlterConfigsResponse,
) -> Vec<(ConfigResource, Result<(), Error>)> {
    response
        .responses
        .iter()
        .map(|r| {
            (
                ConfigResource {
                    resource_type: ConfigResourceType::from_code(r.resource_type),
                    name: r.resource_name.clone(),
                },
                check(r.error_code, r.error_message.as_ref()),
            )
        })
        .collect()
}

impl AdminClient {
    /// Describes the configs of topics and brokers (DescribeConfigs): every entry with its
    /// value, source, read-only and sensitive flags (and synonyms and documentation when
    /// asked), per resource.
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per resource
    /// (UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist, ...).
    pub async fn describe_configs(
        &self,
        resources: impl IntoIterator<Item = ConfigResource>,
        options: &DescribeConfigsOptions,
    ) -> Result<BTreeMap<ConfigResource, Result<Config, Error>>, Error> {
        self.drive_resources(
            "describeConfigs",
            resources,
            options.timeout,
            |conn, group, deadline| async move {
                let response = self
                    .send(&conn, deadline, |_| {
                        Ok(DescribeConfigsRequest {
                            resources: group
                                .iter()
                                .map(|r| DescribeConfigsResource {
                                    resource_type: r.resource_type.code(),
                                    resource_name: r.name.clone(),
                                    configuration_keys: None,
                                    ..Default::default()
                                })
                                .collect(),
                            include_synonyms: options.include_synonyms,
                            include_documentation: options.include_documentation,
                            ..Default::default()
                        })
                    })
                    .await?;
                Ok(describe_configs_results(&response))
            },
        )
        .await
    }

    /// Changes configs incrementally (IncrementalAlterConfigs): each resource's changes
    /// apply all or nothing, with one answer per resource (INVALID_CONFIG,
    /// UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST, ...).
    ///
    /// # Errors
    /// [`Error::Closed`] when the client is closed; everything else is per resource.
    pub async fn incremental_alter_configs(
        &self,
        changes: BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        options: &AlterConfigsOptions,
    ) -> Result<BTreeMap<ConfigResource, Result<(), Error>>, Error> {
        let changes = &changes;
        self.drive_resources(
            "incrementalAlterConfigs",
            changes.keys().cloned(),
            options.timeout,
            |conn, group, deadline| async move {
                let response = self
                    .send(&conn, deadline, |_| {
                        Ok(IncrementalAlterConfigsRequest {
                            resources: group
                                .iter()
                                .map(|r| AlterConfigsResource {
                                    resource_type: r.resource_type.code(),
                                    resource_name: r.name.clone(),
                                    configs: changes
                                        .get(r)
                                        .into_iter()
                                        .flatten()
                                        .map(|op| AlterableConfig {
                                            name: op.name.clone(),
                                            config_operation: op.op.code(),
                                            value: op.value.clone(),
                                            ..Default::default()
                                        })
                                        .collect(),
                                    ..Default::default()
                                })
                                .collect(),
                            validate_only: options.validate_only,
                            ..Default::default()
                        })
                    })
                    .await?;
                Ok(alter_configs_results(&response))
            },
        )
        .await
    }

    /// Runs a call on config `resources` routed with [`route_resources`]: every attempt
    /// sends one request per target (a broker resource to its broker, found in a fresh
    /// Metadata; the rest to any broker) with `call(connection, resources, deadline)`,
    /// which answers each of its resources.
    async fn drive_resources<V, F, Fut>(
        &self,
        op: &'static str,
        resources: impl IntoIterator<Item = ConfigResource>,
        timeout: Option<Duration>,
        call: F,
    ) -> Result<BTreeMap<ConfigResource, Result<V, Error>>, Error>
    where
        F: Fn(BrokerConnection, Vec<ConfigResource>, Instant) -> Fut,
        Fut: Future<Output = Result<ItemResults<ConfigResource, V>, Error>>,
    {
        self.check_open()?;
        let pending = self.pending(op, resources, timeout);
        let call = &call;
        Ok(self
            .drive(pending, |resources, deadline| async move {
                Ok(fan_out(
                    route_resources(&resources)
                        .into_iter()
                        .map(|(target, group)| {
                            let sent = group.clone();
                            (group, async move {
                                let conn = match target {
                                    Some(id) => {
                                        let cluster = self.cluster(Some(&[]), deadline).await?;
                                        self.broker(&cluster, id).await?
                                    }
                                    None => self.any_broker().await?,
                                };
                                call(conn, sent, deadline).await
                            })
                        }),
                )
                .await)
            })
            .await)
    }
}

#[cfg(test)]
mod tests {
    use kafka_wire::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
    };
    use kafka_wire::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    use kafka_wire::ErrorCode;

    use super::*;

    #[test]
    fn codes_round_trip() {
        for t in [
            ConfigResourceType::Topic,
            ConfigResourceType::Broker,
            ConfigResourceType::BrokerLogger,
            ConfigResourceType::ClientMetrics,
            ConfigResourceType::Group,
            ConfigResourceType::Unknown(99),
        ] {
            assert_eq!(ConfigResourceType::from_code(t.code()), t);
        }
        assert_eq!(ConfigSource::from_i8(1), ConfigSource::DynamicTopicConfig);
        assert_eq!(ConfigSource::from_i8(5), ConfigSource::DefaultConfig);
        assert_eq!(ConfigSource::from_i8(42), ConfigSource::Unknown);
        assert_eq!(ConfigType::from_i8(7), ConfigType::List);
        let ops = [
            AlterConfigOp::set("a", "1"),
            AlterConfigOp::delete("a"),
            AlterConfigOp::append("a", "x"),
            AlterConfigOp::subtract("a", "x"),
        ];
        assert_eq!(ops.clone().map(|o| o.op.code()), [0, 1, 2, 3]);
        assert_eq!(ops[1].value, None);
    }

    #[test]
    fn broker_resources_go_to_their_broker() {
        let rs = [
            ConfigResource::topic("t"),
            ConfigResource::broker(3),
            ConfigResource {
                resource_type: ConfigResourceType::Broker,
                name: String::new(),
            },
            ConfigResource::topic("u"),
        ];
        let routed = route_resources(&rs);
        assert_eq!(routed[&Some(3)], [ConfigResource::broker(3)]);
        assert_eq!(routed[&None].len(), 3);
    }

    #[test]
    fn describe_answers_carry_sources_synonyms_and_codes() {
        let response = DescribeConfigsResponse {
            results: vec![
                DescribeConfigsResult {
                    resource_type: 2,
                    resource_name: "t".into(),
                    configs: vec![
                        DescribeConfigsResourceResult {
                            name: "retention.ms".into(),
                            value: Some("1000".into()),
                            config_source: 1,
                            config_type: 5,
                            synonyms: vec![DescribeConfigsSynonym {
                                name: "log.retention.ms".into(),
                                value: None,
                                source: 4,
                                ..Default::default()
                            }],
                            ..Default::default()
                        },
                        DescribeConfigsResourceResult {
                            name: "cleanup.policy".into(),
                            value: Some("delete".into()),
                            config_source: 5,
                            read_only: false,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                DescribeConfigsResult {
                    resource_type: 2,
                    resource_name: "gone".into(),
                    error_code: ErrorCode::UnknownTopicOrPartition.code(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let r = describe_configs_results(&response);
        assert_eq!(r[0].0, ConfigResource::topic("t"));
        let config = r[0].1.as_ref().unwrap();
        let retention = config.get("retention.ms").unwrap();
        assert_eq!(retention.source, ConfigSource::DynamicTopicConfig);
        assert!(!retention.is_default);
        assert_eq!(retention.config_type, Some(ConfigType::Long));
        assert_eq!(
            retention.synonyms[0].source,
            ConfigSource::StaticBrokerConfig
        );
        assert!(config.get("cleanup.policy").unwrap().is_default);
        assert_eq!(
            r[1].1.as_ref().unwrap_err().code(),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        let alter = IncrementalAlterConfigsResponse {
            responses: vec![AlterConfigsResourceResponse {
                resource_type: 2,
                resource_name: "t".into(),
                error_code: ErrorCode::InvalidConfig.code(),
                error_message: Some("bad".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = alter_configs_results(&alter);
        assert_eq!(
            r[0].1.as_ref().unwrap_err().code(),
            Some(ErrorCode::InvalidConfig)
        );
    }
}
