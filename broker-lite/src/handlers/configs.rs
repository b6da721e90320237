//! DescribeConfigs (key 32), versions 1-4, and IncrementalAlterConfigs (key 44), versions 0-1.
//!
//! Topic resources (type 2) report every topic config with its effective value and source
//! (topic override, static broker config, default), synonyms on request, and (v3+) types and
//! documentation. Broker resources (type 4, named by node id or "" for the cluster default)
//! report the broker configs. IncrementalAlterConfigs applies SET, DELETE, APPEND and
//! SUBTRACT (the last two on list configs) to topic configs, all or nothing per resource;
//! dynamic broker configs are not supported (INVALID_REQUEST).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_wire::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_wire::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_wire::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_wire::ErrorCode;

use crate::config::{ConfigType, BROKER_CONFIGS};
use crate::state::BrokerState;
use crate::topic_config::{effective_topic_configs, topic_config_def, ConfigSource};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

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

/// Applies IncrementalAlterConfigs operations to a copy of `overrides`.
fn apply_ops(
    overrides: &BTreeMap<String, String>,
    ops: &[kafka_wire::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<BTreeMap<String, String>, (ErrorCode, String)> {
    let mut out = overrides.clone();
    for op in ops {
        let Some(def) = topic_config_def(&op.name) else {
            return Err((
                ErrorCode::InvalidConfig,
                format!("Unknown topic config name: {}", op.name),
            ));
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
            1 => {
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
            2 => {
                let mut items = list(&current);
                for v in list(op.value.as_deref().unwrap_or("")) {
                    if !items.contains(&v) {
                        items.push(v);
                    }
                }
                out.insert(op.name.clone(), items.join(","));
            }
            3 => {
                let remove = list(op.value.as_deref().unwrap_or(""));
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
    for (k, v) in &out {
        crate::topic_config::validate_topic_config(k, v)
            .map_err(|e| (ErrorCode::InvalidConfig, e.to_string()))?;
    }
    Ok(out)
}

pub(super) async fn incremental_alter(
    state: &Arc<BrokerState>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let respond = |code: ErrorCode, msg: Option<String>| AlterConfigsResourceResponse {
            error_code: code.code(),
            error_message: msg,
            resource_type: r.resource_type,
            resource_name: r.resource_name.clone(),
            ..Default::default()
        };
        if r.resource_type != TOPIC {
            responses.push(respond(
                ErrorCode::InvalidRequest,
                Some("broker-lite supports altering topic configs only".into()),
            ));
            continue;
        }
        let Some(topic) = state.topic(&r.resource_name) else {
            responses.push(respond(
                ErrorCode::UnknownTopicOrPartition,
                Some(format!("Topic '{}' does not exist.", r.resource_name)),
            ));
            continue;
        };
        let new = match apply_ops(&topic.overrides(), &r.configs) {
            Ok(n) => n,
            Err((code, msg)) => {
                responses.push(respond(code, Some(msg)));
                continue;
            }
        };
        if req.validate_only {
            responses.push(match state.log_config(&new) {
                Ok(_) => respond(ErrorCode::None, None),
                Err(e) => respond(e.code(), Some(e.to_string())),
            });
            continue;
        }
        let s = state.clone();
        let name = r.resource_name.clone();
        let result = super::blocking(move || s.set_topic_overrides(&name, new)).await;
        responses.push(match result {
            Ok(()) => respond(ErrorCode::None, None),
            Err(e) => respond(e.code(), Some(e.to_string())),
        });
    }
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic_config::TOPIC_CONFIGS;
    use kafka_wire::messages::incremental_alter_configs_request::AlterableConfig;

    fn op(name: &str, o: i8, v: Option<&str>) -> AlterableConfig {
        AlterableConfig {
            name: name.into(),
            config_operation: o,
            value: v.map(str::to_string),
            ..Default::default()
        }
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
        assert_eq!(
            apply_ops(&base, &[op("retention.ms", 0, Some("x"))])
                .unwrap_err()
                .0,
            ErrorCode::InvalidConfig
        );
    }

    #[test]
    fn every_topic_config_has_a_type_and_doc() {
        for d in TOPIC_CONFIGS {
            assert!(!d.doc.is_empty());
        }
    }
}
