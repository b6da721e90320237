//! DescribeConfigs (key 32), versions 1-4; IncrementalAlterConfigs (key 44), versions 0-1
//! (KIP-339); and the legacy AlterConfigs (key 33), versions 0-2 (KIP-133).
//!
//! Topic resources (type 2) report every topic config with its effective value and source
//! (topic override, static broker config, default), synonyms on request, and (v3+) types and
//! documentation. Broker resources (type 4, named by node id or "" for the cluster default)
//! report the broker configs. IncrementalAlterConfigs applies SET, DELETE, APPEND and
//! SUBTRACT (the last two on list configs) to topic configs; the legacy AlterConfigs replaces
//! a topic's whole set of overrides with the configs it lists (every override it does not list
//! reverts to its default). Both alter APIs share Kafka's checks (`ConfigAdminManager`,
//! `ControllerConfigurationValidator`): a resource named twice in one request, a config
//! named twice in a resource or a forbidden null value is INVALID_REQUEST; unknown config
//! names and invalid values are INVALID_CONFIG; a missing topic is UNKNOWN_TOPIC_OR_PARTITION
//! (checked after the configs, as Kafka does). Each resource is all or nothing, takes effect
//! on the topic's logs at once and is persisted with the topic's metadata; `validate_only`
//! checks without changing anything. Dynamic broker configs (and the other resource types)
//! are not supported: INVALID_REQUEST.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use kafka_wire::messages::alter_configs_request::AlterableConfig as LegacyAlterableConfig;
use kafka_wire::messages::alter_configs_response::AlterConfigsResourceResponse as LegacyResourceResponse;
use kafka_wire::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_wire::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_wire::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_wire::ErrorCode;

use crate::config::{ConfigError, ConfigType, BROKER_CONFIGS};
use crate::state::{validate_topic_name, BrokerState};
use crate::topic_config::{effective_topic_configs, topic_config_def, ConfigSource};

// ConfigResource.Type ids.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

fn wanted(keys: &Option<Vec<String>>, name: &str) -> bool {
    keys.as_ref()
        .is_none_or(|k| k.is_empty() || k.iter().any(|n| n == name))
}

fn describe_topic(
    state: &BrokerState,
    name: &str,
    keys: &Option<Vec<String>>,
    synonyms: bool,
    docs: bool,
    version: i16,
) -> DescribeConfigsResult {
    let Some(topic) = state.topic(name) else {
        return DescribeConfigsResult {
            error_code: ErrorCode::UnknownTopicOrPartition.code(),
            error_message: Some(format!("Topic '{name}' does not exist.")),
            resource_type: TOPIC,
            resource_name: name.to_string(),
            ..Default::default()
        };
    };
    let overrides = topic.overrides();
    let broker_defaults = state.config.topic_defaults();
    let configs = effective_topic_configs(&state.config, &overrides)
        .into_iter()
        .filter(|c| wanted(keys, c.name))
        .map(|c| {
            let def = topic_config_def(c.name);
            let mut syn = Vec::new();
            if synonyms {
                if let Some(v) = overrides.get(c.name) {
                    syn.push(DescribeConfigsSynonym {
                        name: c.name.to_string(),
                        value: Some(v.clone()),
                        source: ConfigSource::TopicOverride.describe_id(),
                        ..Default::default()
                    });
                }
                if let (Some(b), Some(v)) = (
                    def.and_then(|d| d.broker_synonym),
                    broker_defaults.get(c.name),
                ) {
                    syn.push(DescribeConfigsSynonym {
                        name: b.to_string(),
                        value: Some(v.clone()),
                        source: ConfigSource::StaticBroker.describe_id(),
                        ..Default::default()
                    });
                }
                if let Some(d) = def {
                    syn.push(DescribeConfigsSynonym {
                        name: d.broker_synonym.unwrap_or(d.name).to_string(),
                        value: Some(d.default.to_string()),
                        source: ConfigSource::Default.describe_id(),
                        ..Default::default()
                    });
                }
            }
            DescribeConfigsResourceResult {
                name: c.name.to_string(),
                value: Some(c.value),
                read_only: false,
                // IsDefault exists only in v0 (v1+ use ConfigSource) and is not ignorable.
                is_default: version == 0 && c.source == ConfigSource::Default,
                config_source: c.source.describe_id(),
                is_sensitive: false,
                synonyms: syn,
                config_type: def.map_or(ConfigType::String, |d| d.ty).describe_id(),
                documentation: if docs {
                    def.map(|d| d.doc.to_string())
                } else {
                    None
                },
                ..Default::default()
            }
        })
        .collect();
    DescribeConfigsResult {
        resource_type: TOPIC,
        resource_name: name.to_string(),
        configs,
        ..Default::default()
    }
}

fn describe_broker(
    state: &BrokerState,
    name: &str,
    keys: &Option<Vec<String>>,
    docs: bool,
    version: i16,
) -> DescribeConfigsResult {
    if !name.is_empty() && name != state.config.node_id.to_string() {
        return DescribeConfigsResult {
            error_code: ErrorCode::InvalidRequest.code(),
            error_message: Some(format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                state.config.node_id
            )),
            resource_type: BROKER,
            resource_name: name.to_string(),
            ..Default::default()
        };
    }
    let configs = BROKER_CONFIGS
        .iter()
        .filter(|d| wanted(keys, d.name))
        .map(|d| {
            let set = state.config.props.get(d.name);
            DescribeConfigsResourceResult {
                name: d.name.to_string(),
                value: state.config.get(d.name).map(str::to_string),
                read_only: true,
                is_default: version == 0 && set.is_none(),
                config_source: if set.is_some() {
                    ConfigSource::StaticBroker
                } else {
                    ConfigSource::Default
                }
                .describe_id(),
                is_sensitive: false,
                synonyms: Vec::new(),
                config_type: d.ty.describe_id(),
                documentation: if docs { Some(d.doc.to_string()) } else { None },
                ..Default::default()
            }
        })
        .collect();
    DescribeConfigsResult {
        resource_type: BROKER,
        resource_name: name.to_string(),
        configs,
        ..Default::default()
    }
}

pub(super) fn describe(
    state: &Arc<BrokerState>,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .iter()
        .map(|r| match r.resource_type {
            TOPIC => describe_topic(
                state,
                &r.resource_name,
                &r.configuration_keys,
                req.include_synonyms,
                req.include_documentation,
                version,
            ),
            BROKER => describe_broker(
                state,
                &r.resource_name,
                &r.configuration_keys,
                req.include_documentation,
                version,
            ),
            other => DescribeConfigsResult {
                error_code: ErrorCode::InvalidRequest.code(),
                error_message: Some(format!("Unsupported resource type {other}")),
                resource_type: other,
                resource_name: r.resource_name.clone(),
                ..Default::default()
            },
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

/// Why a resource of an alter request was refused: the error code and Kafka's message.
type Rejection = (ErrorCode, String);

/// IncrementalAlterConfigs' DELETE operation, the only one whose value may be null.
const OP_DELETE: i8 = 1;

/// Applies IncrementalAlterConfigs operations to a copy of `overrides` (the result is
/// validated as a whole by [`alter_topic`]).
fn apply_ops(
    overrides: &BTreeMap<String, String>,
    ops: &[kafka_wire::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<BTreeMap<String, String>, Rejection> {
    let mut out = overrides.clone();
    for op in ops {
        let Some(def) = topic_config_def(&op.name) else {
            return Err(unknown_config(&op.name));
        };
        let current = out
            .get(&op.name)
            .cloned()
            .unwrap_or_else(|| def.default.to_string());
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        match op.config_operation {
            0 => {
                let v = op.value.clone().ok_or((
                    ErrorCode::InvalidRequest,
                    format!("Null value for SET of {}", op.name),
                ))?;
                out.insert(op.name.clone(), v);
            }
            OP_DELETE => {
                out.remove(&op.name);
            }
            2 | 3 if def.ty != ConfigType::List => {
                return Err((
                    ErrorCode::InvalidConfig,
                    format!(
                        "Config value append/subtract is not allowed for config key {}",
                        op.name
                    ),
                ));
            }
            // Sets, not `Vec::contains`: the value is the client's, and may list many items.
            2 => {
                let mut items = list(&current);
                let mut present: HashSet<String> = items.iter().cloned().collect();
                for v in list(op.value.as_deref().unwrap_or("")) {
                    if present.insert(v.clone()) {
                        items.push(v);
                    }
                }
                out.insert(op.name.clone(), items.join(","));
            }
            3 => {
                let remove: HashSet<String> = list(op.value.as_deref().unwrap_or(""))
                    .into_iter()
                    .collect();
                let items: Vec<String> = list(&current)
                    .into_iter()
                    .filter(|x| !remove.contains(x))
                    .collect();
                out.insert(op.name.clone(), items.join(","));
            }
            other => {
                return Err((
                    ErrorCode::InvalidRequest,
                    format!("Unknown config operation {other}"),
                ))
            }
        }
    }
    Ok(out)
}

/// The new overrides of a legacy AlterConfigs resource: exactly the configs it lists, since
/// the legacy API replaces the whole set (every override it does not list reverts to its
/// default). Null values were already refused by [`preprocess`].
fn replacement(configs: &[LegacyAlterableConfig]) -> BTreeMap<String, String> {
    configs
        .iter()
        .filter_map(|c| c.value.clone().map(|v| (c.name.clone(), v)))
        .collect()
}

/// Kafka's answer to a config name it does not know (`LogConfig.validateNames`).
fn unknown_config(name: &str) -> Rejection {
    (
        ErrorCode::InvalidConfig,
        ConfigError::UnknownTopicConfig(name.to_string()).to_string(),
    )
}

/// Marks the resources named more than once in one request: Kafka refuses every occurrence
/// (`ConfigAdminManager.preprocess`, both alter APIs).
fn repeated_resources(keys: &[(i8, &str)]) -> Vec<bool> {
    let mut seen: BTreeMap<(i8, &str), usize> = BTreeMap::new();
    for k in keys {
        *seen.entry(*k).or_default() += 1;
    }
    keys.iter()
        .map(|k| seen.get(k).is_some_and(|n| *n > 1))
        .collect()
}

/// Kafka's per-resource checks before anything else (`ConfigAdminManager.preprocess`): a
/// config named twice, or a null value where none is allowed, is INVALID_REQUEST. `entries`
/// are (config name, whether its value is a forbidden null).
fn preprocess<'a>(entries: impl Iterator<Item = (&'a str, bool)>) -> Result<(), Rejection> {
    let mut names = BTreeSet::new();
    let mut nulls = Vec::new();
    let mut repeated = false;
    for (name, null) in entries {
        repeated |= !names.insert(name);
        if null {
            nulls.push(name);
        }
    }
    if repeated {
        return Err((
            ErrorCode::InvalidRequest,
            "Error due to duplicate config keys".into(),
        ));
    }
    if !nulls.is_empty() {
        return Err((
            ErrorCode::InvalidRequest,
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    Ok(())
}

/// The answer to a resource whose configs broker-lite does not alter (Kafka's BROKER,
/// BROKER_LOGGER, CLIENT_METRICS and GROUP resources, and unknown types).
fn unsupported_resource(resource_type: i8) -> Rejection {
    match resource_type {
        BROKER | BROKER_LOGGER | CLIENT_METRICS | GROUP => (
            ErrorCode::InvalidRequest,
            format!("broker-lite supports altering topic configs only, not resource type {resource_type}"),
        ),
        other => (
            ErrorCode::InvalidRequest,
            format!("Unknown resource type {other}"),
        ),
    }
}

/// One resource of either alter request, as [`alter_resources`] handles it.
struct AlterResource<'a, F> {
    resource_type: i8,
    name: &'a str,
    /// The outcome of [`preprocess`].
    preprocessed: Result<(), Rejection>,
    /// Computes the topic's new overrides from its current ones.
    compute: F,
}

/// Both alter APIs once decoded: every occurrence of a repeated resource is refused, then each
/// resource is preprocessed, its type checked and its topic altered in turn. Each resource is
/// all or nothing; `respond(type, name, error code, message)` makes its response entry, one
/// per resource in request order.
async fn alter_resources<F, T>(
    state: &Arc<BrokerState>,
    resources: Vec<AlterResource<'_, F>>,
    validate_only: bool,
    respond: impl Fn(i8, String, i16, Option<String>) -> T,
) -> Vec<T>
where
    F: FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Rejection>,
{
    let keys: Vec<(i8, &str)> = resources
        .iter()
        .map(|r| (r.resource_type, r.name))
        .collect();
    let repeated = repeated_resources(&keys);
    let mut results = Vec::with_capacity(resources.len());
    for (r, repeated) in resources.into_iter().zip(repeated) {
        let (resource_type, name) = (r.resource_type, r.name.to_string());
        let result = if repeated {
            Err((
                ErrorCode::InvalidRequest,
                "Each resource must appear at most once.".into(),
            ))
        } else if let Err(e) = r.preprocessed {
            Err(e)
        } else if r.resource_type != TOPIC {
            Err(unsupported_resource(r.resource_type))
        } else {
            alter_topic(state, r.name, validate_only, r.compute).await
        };
        results.push(match result {
            Ok(()) => respond(resource_type, name, ErrorCode::None.code(), None),
            Err((code, msg)) => respond(resource_type, name, code.code(), Some(msg)),
        });
    }
    results
}

/// Alters one topic's overrides in Kafka's order (`ControllerConfigurationValidator`, then the
/// existence check): the topic name, the names and values of the complete new set
/// (INVALID_CONFIG), the topic's existence; then, unless `validate_only`, installs and
/// persists the new set (every partition's log takes the new config at once).
async fn alter_topic<F>(
    state: &Arc<BrokerState>,
    name: &str,
    validate_only: bool,
    compute: F,
) -> Result<(), Rejection>
where
    F: FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Rejection>,
{
    if name.is_empty() {
        return Err((
            ErrorCode::InvalidRequest,
            "Default topic resources are not allowed.".into(),
        ));
    }
    validate_topic_name(name).map_err(|e| (e.code(), e.to_string()))?;
    let topic = state.topic(name);
    let current = topic.as_ref().map(|t| t.overrides()).unwrap_or_default();
    let new = compute(&current)?;
    state
        .checked_log_config(&new)
        .map_err(|e| (e.code(), e.to_string()))?;
    if topic.is_none() {
        return Err((
            ErrorCode::UnknownTopicOrPartition,
            format!("Topic '{name}' does not exist."),
        ));
    }
    if validate_only {
        return Ok(());
    }
    let s = state.clone();
    let name = name.to_string();
    super::blocking(move || s.set_topic_overrides(&name, new))
        .await
        .map_err(|e| (e.code(), e.to_string()))
}

pub(super) async fn incremental_alter(
    state: &Arc<BrokerState>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources = req
        .resources
        .iter()
        .map(|r| AlterResource {
            resource_type: r.resource_type,
            name: r.resource_name.as_str(),
            preprocessed: preprocess(r.configs.iter().map(|c| {
                (
                    c.name.as_str(),
                    c.value.is_none() && c.config_operation != OP_DELETE,
                )
            })),
            compute: |current: &BTreeMap<String, String>| apply_ops(current, &r.configs),
        })
        .collect();
    let responses = alter_resources(
        state,
        resources,
        req.validate_only,
        |resource_type, resource_name, error_code, error_message| AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type,
            resource_name,
            ..Default::default()
        },
    )
    .await;
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

/// The legacy AlterConfigs (key 33): each resource's listed configs become its complete set
/// of overrides.
pub(super) async fn alter(
    state: &Arc<BrokerState>,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let resources = req
        .resources
        .iter()
        .map(|r| AlterResource {
            resource_type: r.resource_type,
            name: r.resource_name.as_str(),
            preprocessed: preprocess(
                r.configs
                    .iter()
                    .map(|c| (c.name.as_str(), c.value.is_none())),
            ),
            compute: |_: &BTreeMap<String, String>| Ok(replacement(&r.configs)),
        })
        .collect();
    let responses = alter_resources(
        state,
        resources,
        req.validate_only,
        |resource_type, resource_name, error_code, error_message| LegacyResourceResponse {
            error_code,
            error_message,
            resource_type,
            resource_name,
            ..Default::default()
        },
    )
    .await;
    AlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::test_support::{create_topic, open_state};
    use crate::topic_config::TOPIC_CONFIGS;
    use kafka_wire::messages::alter_configs_request::AlterConfigsResource as LegacyResource;
    use kafka_wire::messages::incremental_alter_configs_request::AlterableConfig;

    fn op(name: &str, o: i8, v: Option<&str>) -> AlterableConfig {
        AlterableConfig {
            name: name.into(),
            config_operation: o,
            value: v.map(str::to_string),
            ..Default::default()
        }
    }

    fn legacy(name: &str, v: Option<&str>) -> LegacyAlterableConfig {
        LegacyAlterableConfig {
            name: name.into(),
            value: v.map(str::to_string),
            ..Default::default()
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ops_apply_like_kafka() {
        let base = BTreeMap::new();
        let out = apply_ops(
            &base,
            &[
                op("retention.ms", 0, Some("100")),
                op("cleanup.policy", 2, Some("compact")),
            ],
        )
        .unwrap();
        assert_eq!(out["retention.ms"], "100");
        assert_eq!(out["cleanup.policy"], "delete,compact");
        let out = apply_ops(
            &out,
            &[
                op("cleanup.policy", 3, Some("delete")),
                op("retention.ms", 1, None),
            ],
        )
        .unwrap();
        assert_eq!(out["cleanup.policy"], "compact");
        assert!(!out.contains_key("retention.ms"));
        assert_eq!(
            apply_ops(&base, &[op("retention.ms", 2, Some("1"))])
                .unwrap_err()
                .0,
            ErrorCode::InvalidConfig
        );
        assert_eq!(
            apply_ops(&base, &[op("nope", 0, Some("1"))]).unwrap_err().0,
            ErrorCode::InvalidConfig
        );
        // Values are checked on the whole result (checked_log_config), not per operation.
        let out = apply_ops(&base, &[op("retention.ms", 0, Some("x"))]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            validate(&open_state(dir.path()), &out).unwrap_err().0,
            ErrorCode::InvalidConfig
        );
    }

    /// How [`alter_topic`] validates a new set of overrides.
    fn validate(
        state: &BrokerState,
        overrides: &BTreeMap<String, String>,
    ) -> Result<(), Rejection> {
        state
            .checked_log_config(overrides)
            .map(|_| ())
            .map_err(|e| (e.code(), e.to_string()))
    }

    /// APPEND and SUBTRACT of long client-given lists: duplicates dropped in first-seen order,
    /// in time linear in the list (a quadratic scan of 100k items would take minutes).
    #[test]
    fn append_and_subtract_of_long_lists() {
        let items: Vec<String> = (0..100_000).map(|i| format!("x{i}")).collect();
        let twice = format!("{},{}", items.join(","), items.join(","));
        let out = apply_ops(
            &BTreeMap::new(),
            &[op("cleanup.policy", 2, Some(&format!("compact,{twice}")))],
        )
        .unwrap();
        let expected = format!("delete,compact,{}", items.join(","));
        assert_eq!(out["cleanup.policy"], expected);
        let out = apply_ops(&out, &[op("cleanup.policy", 3, Some(&twice))]).unwrap();
        assert_eq!(out["cleanup.policy"], "delete,compact");
    }

    #[test]
    fn validation_names_the_bad_config() {
        let dir = tempfile::tempdir().unwrap();
        let state = open_state(dir.path());
        assert_eq!(
            validate(
                &state,
                &map(&[("retention.ms", "5"), ("segment.bytes", "4096")])
            ),
            Ok(())
        );
        assert_eq!(
            validate(&state, &map(&[("no.such.config", "1")])),
            Err((
                ErrorCode::InvalidConfig,
                "Unknown topic config name: no.such.config".into()
            ))
        );
        assert_eq!(unknown_config("x.y").1, "Unknown topic config name: x.y");
        let (code, msg) = validate(&state, &map(&[("segment.bytes", "1")])).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidConfig);
        assert!(msg.contains("segment.bytes"), "{msg}");
        // Values only the storage layer checks (segment.index.bytes: at least 4).
        let (code, msg) = validate(&state, &map(&[("segment.index.bytes", "2")])).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidConfig);
        assert!(msg.contains("segment.index.bytes"), "{msg}");
    }

    #[test]
    fn legacy_replacement_is_exactly_the_listed_configs() {
        let configs = [
            legacy("retention.ms", Some("5")),
            legacy("cleanup.policy", Some("compact")),
        ];
        assert_eq!(
            replacement(&configs),
            map(&[("retention.ms", "5"), ("cleanup.policy", "compact")])
        );
        assert!(replacement(&[]).is_empty());
    }

    #[test]
    fn repeated_resources_are_all_marked() {
        let keys = [(TOPIC, "a"), (TOPIC, "b"), (TOPIC, "a"), (BROKER, "a")];
        assert_eq!(repeated_resources(&keys), vec![true, false, true, false]);
        assert!(repeated_resources(&[]).is_empty());
    }

    #[test]
    fn preprocess_refuses_repeated_names_and_nulls() {
        assert_eq!(preprocess([("a", false), ("b", false)].into_iter()), Ok(()));
        assert_eq!(
            preprocess([("a", false), ("a", false)].into_iter()),
            Err((
                ErrorCode::InvalidRequest,
                "Error due to duplicate config keys".into()
            ))
        );
        assert_eq!(
            preprocess([("a", true), ("b", false), ("c", true)].into_iter()),
            Err((
                ErrorCode::InvalidRequest,
                "Null value not supported for : a, c".into()
            ))
        );
    }

    #[test]
    fn unsupported_resources_are_invalid_requests() {
        for ty in [BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP, 0, 99] {
            assert_eq!(unsupported_resource(ty).0, ErrorCode::InvalidRequest);
        }
        assert_eq!(unsupported_resource(99).1, "Unknown resource type 99");
    }

    /// The legacy handler against a real state: replace, revert, validate_only, and the error
    /// answers in request order.
    #[tokio::test]
    async fn legacy_alter_replaces_the_whole_set() {
        let dir = tempfile::tempdir().unwrap();
        let state = open_state(dir.path());
        create_topic(&state, "t", 1, &[("retention.ms", "1000")]);
        let resource = |name: &str, configs: Vec<LegacyAlterableConfig>| LegacyResource {
            resource_type: TOPIC,
            resource_name: name.into(),
            configs,
            ..Default::default()
        };
        let send = |resources: Vec<LegacyResource>, validate_only: bool| {
            let state = state.clone();
            async move {
                alter(
                    &state,
                    AlterConfigsRequest {
                        resources,
                        validate_only,
                        ..Default::default()
                    },
                )
                .await
                .responses
                .into_iter()
                .map(|r| (r.resource_name, r.error_code))
                .collect::<Vec<_>>()
            }
        };
        let overrides = || state.topic("t").unwrap().overrides();

        let r = send(
            vec![resource("t", vec![legacy("segment.bytes", Some("4096"))])],
            false,
        )
        .await;
        assert_eq!(r, vec![("t".to_string(), 0)]);
        assert_eq!(overrides(), map(&[("segment.bytes", "4096")]));
        assert_eq!(
            state
                .topic("t")
                .unwrap()
                .partition(0)
                .unwrap()
                .log()
                .config()
                .segment_bytes,
            4096
        );

        let r = send(vec![resource("t", vec![])], true).await;
        assert_eq!(r, vec![("t".to_string(), 0)]);
        assert_eq!(
            overrides(),
            map(&[("segment.bytes", "4096")]),
            "validate_only"
        );

        let r = send(
            vec![
                resource("t", vec![]),
                resource("ghost", vec![legacy("retention.ms", Some("1"))]),
                resource("t", vec![]),
            ],
            false,
        )
        .await;
        let codes: Vec<i16> = r.iter().map(|x| x.1).collect();
        assert_eq!(
            codes,
            vec![
                ErrorCode::InvalidRequest.code(),
                ErrorCode::UnknownTopicOrPartition.code(),
                ErrorCode::InvalidRequest.code()
            ]
        );
        assert_eq!(overrides(), map(&[("segment.bytes", "4096")]));

        let r = send(vec![resource("t", vec![])], false).await;
        assert_eq!(r, vec![("t".to_string(), 0)]);
        assert!(
            overrides().is_empty(),
            "an empty set removes every override"
        );
    }

    #[test]
    fn every_topic_config_has_a_type_and_doc() {
        for d in TOPIC_CONFIGS {
            assert!(!d.doc.is_empty());
        }
    }
}
