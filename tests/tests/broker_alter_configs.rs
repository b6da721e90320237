//! The legacy, non-incremental AlterConfigs (key 33, KIP-133) against broker-lite with raw
//! kafka-wire requests, at every version it advertises: a topic's listed configs become its
//! whole set of overrides (every other override reverts to its default, as DescribeConfigs
//! then shows), the new set takes effect on the log at once and survives a restart, and
//! Kafka's error answers (validate_only, unknown topic or config, bad or null values,
//! repeated resources or keys, unsupported resource types).

use std::collections::BTreeMap;

use broker_lite::Broker;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_wire::messages::*;
use kafka_wire::{ApiKey, ErrorCode};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;
/// AlterConfigs versions: v0-1 classic, v2 flexible.
const VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

/// A resource of `resource_type` named `name` with `configs` (None: a null value).
fn resource(
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
) -> AlterConfigsResource {
    AlterConfigsResource {
        resource_type,
        resource_name: name.into(),
        configs: configs
            .iter()
            .map(|(k, v)| AlterableConfig {
                name: (*k).into(),
                value: v.map(str::to_string),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A topic resource with non-null `configs`.
fn topic_resource(name: &str, configs: &[(&str, &str)]) -> AlterConfigsResource {
    let configs: Vec<(&str, Option<&str>)> = configs.iter().map(|(k, v)| (*k, Some(*v))).collect();
    resource(TOPIC, name, &configs)
}

/// Sends AlterConfigs at `version`; returns (type, name, error code, message) per resource.
async fn alter_configs(
    c: &mut RawClient,
    resources: Vec<AlterConfigsResource>,
    validate_only: bool,
    version: i16,
) -> Vec<(i8, String, i16, Option<String>)> {
    let req = AlterConfigsRequest {
        resources,
        validate_only,
        ..Default::default()
    };
    c.send(req, version)
        .await
        .expect("AlterConfigs")
        .responses
        .into_iter()
        .map(|r| {
            (
                r.resource_type,
                r.resource_name,
                r.error_code,
                r.error_message,
            )
        })
        .collect()
}

/// AlterConfigs of one topic; returns its error code and message.
async fn alter_topic(
    c: &mut RawClient,
    name: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
    version: i16,
) -> (i16, Option<String>) {
    let mut r = alter_configs(
        c,
        vec![topic_resource(name, configs)],
        validate_only,
        version,
    )
    .await;
    assert_eq!(r.len(), 1);
    let (ty, n, code, msg) = r.remove(0);
    assert_eq!((ty, n.as_str()), (TOPIC, name));
    (code, msg)
}

/// Asserts success of [`alter_topic`].
async fn alter_topic_ok(c: &mut RawClient, name: &str, configs: &[(&str, &str)], version: i16) {
    let (code, msg) = alter_topic(c, name, configs, false, version).await;
    assert_eq!(code, 0, "AlterConfigs v{version} of {name}: {msg:?}");
}

/// (value, source) of each of `keys`, as DescribeConfigs (v4) reports them.
async fn described(c: &mut RawClient, name: &str, keys: &[&str]) -> BTreeMap<String, (String, i8)> {
    let r = describe_topic_configs(c, name, Some(keys), 4).await;
    assert_eq!(
        r.error_code, 0,
        "DescribeConfigs {name}: {:?}",
        r.error_message
    );
    let got: BTreeMap<String, (String, i8)> = r
        .configs
        .into_iter()
        .map(|e| (e.name, (e.value.unwrap_or_default(), e.config_source)))
        .collect();
    assert_eq!(got.len(), keys.len(), "every key described: {got:?}");
    got
}

fn entry(value: &str, source: i8) -> (String, i8) {
    (value.to_string(), source)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const KEYS: [&str; 3] = ["retention.ms", "cleanup.policy", "segment.bytes"];

#[tokio::test]
async fn api_versions_advertises_every_alter_configs_version() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(ApiKey::AlterConfigs.key(), 33);
    assert_eq!(
        advertised_versions(&mut c, ApiKey::AlterConfigs).await,
        VERSIONS
    );
    broker.shutdown().await;
}

/// At every version: the listed configs become the whole set; a second request that lists
/// only one of two overrides reverts the other to its default (DescribeConfigs shows the
/// default value and DEFAULT_CONFIG); overrides given at creation are replaced too; an empty
/// list removes them all.
#[tokio::test]
async fn alter_configs_replaces_the_whole_set_at_every_version() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    for v in VERSIONS {
        let t = format!("replace-v{v}");
        create_topic(&mut c, &t, 1, &[("segment.bytes", "4096")]).await;

        alter_topic_ok(
            &mut c,
            &t,
            &[("retention.ms", "60000"), ("cleanup.policy", "compact")],
            v,
        )
        .await;
        assert_eq!(
            topic_overrides(&broker, &t),
            map(&[("retention.ms", "60000"), ("cleanup.policy", "compact")]),
            "v{v}: the creation override segment.bytes is gone"
        );
        let d = described(&mut c, &t, &KEYS).await;
        assert_eq!(d["retention.ms"], entry("60000", SOURCE_TOPIC), "v{v}");
        assert_eq!(d["cleanup.policy"], entry("compact", SOURCE_TOPIC), "v{v}");
        assert_eq!(
            d["segment.bytes"],
            entry("1073741824", SOURCE_DEFAULT),
            "v{v}"
        );

        // Only retention.ms this time: cleanup.policy reverts to its default.
        alter_topic_ok(&mut c, &t, &[("retention.ms", "120000")], v).await;
        assert_eq!(
            topic_overrides(&broker, &t),
            map(&[("retention.ms", "120000")])
        );
        let d = described(&mut c, &t, &KEYS).await;
        assert_eq!(d["retention.ms"], entry("120000", SOURCE_TOPIC), "v{v}");
        assert_eq!(d["cleanup.policy"], entry("delete", SOURCE_DEFAULT), "v{v}");

        // Nothing listed: every override goes.
        alter_topic_ok(&mut c, &t, &[], v).await;
        assert!(topic_overrides(&broker, &t).is_empty(), "v{v}");
        let d = described(&mut c, &t, &KEYS).await;
        assert_eq!(
            d["retention.ms"],
            entry("604800000", SOURCE_DEFAULT),
            "v{v}"
        );
        assert_eq!(d["cleanup.policy"], entry("delete", SOURCE_DEFAULT), "v{v}");
        assert_eq!(
            d["segment.bytes"],
            entry("1073741824", SOURCE_DEFAULT),
            "v{v}"
        );
    }
    broker.shutdown().await;
}

/// Several topics in one request, each replaced independently.
#[tokio::test]
async fn alter_configs_of_several_topics_in_one_request() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "a", 1, &[("retention.ms", "1000")]).await;
    create_topic(&mut c, "b", 2, &[]).await;
    let r = alter_configs(
        &mut c,
        vec![
            topic_resource("a", &[("segment.bytes", "8192")]),
            topic_resource("b", &[("cleanup.policy", "compact,delete")]),
        ],
        false,
        2,
    )
    .await;
    let codes: Vec<(&str, i16)> = r.iter().map(|x| (x.1.as_str(), x.2)).collect();
    assert_eq!(codes, vec![("a", 0), ("b", 0)]);
    assert_eq!(
        topic_overrides(&broker, "a"),
        map(&[("segment.bytes", "8192")])
    );
    assert_eq!(
        topic_overrides(&broker, "b"),
        map(&[("cleanup.policy", "compact,delete")])
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn validate_only_changes_nothing() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "vo", 1, &[("retention.ms", "1000")]).await;
    for v in VERSIONS {
        // Would replace retention.ms by cleanup.policy: accepted, not applied.
        let (code, msg) =
            alter_topic(&mut c, "vo", &[("cleanup.policy", "compact")], true, v).await;
        assert_eq!(code, 0, "v{v}: {msg:?}");
        assert_eq!(
            topic_overrides(&broker, "vo"),
            map(&[("retention.ms", "1000")])
        );
        let d = described(&mut c, "vo", &["retention.ms", "cleanup.policy"]).await;
        assert_eq!(d["retention.ms"], entry("1000", SOURCE_TOPIC));
        assert_eq!(d["cleanup.policy"], entry("delete", SOURCE_DEFAULT));

        // Errors are still reported.
        let (code, _) = alter_topic(&mut c, "vo", &[("retention.ms", "soon")], true, v).await;
        assert_eq!(code, ErrorCode::InvalidConfig.code(), "v{v}");
        let (code, _) = alter_topic(&mut c, "ghost", &[("retention.ms", "1")], true, v).await;
        assert_eq!(code, ErrorCode::UnknownTopicOrPartition.code(), "v{v}");
    }
    broker.shutdown().await;
}

/// Kafka's errors, each leaving the topic's overrides as they were.
#[tokio::test]
async fn alter_configs_errors() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "err", 1, &[("retention.ms", "1000")]).await;
    let unchanged =
        |b: &Broker| assert_eq!(topic_overrides(b, "err"), map(&[("retention.ms", "1000")]));
    for v in VERSIONS {
        // Unknown topic.
        let (code, msg) = alter_topic(&mut c, "ghost", &[("retention.ms", "1")], false, v).await;
        assert_eq!(code, ErrorCode::UnknownTopicOrPartition.code(), "v{v}");
        assert_eq!(msg.as_deref(), Some("Topic 'ghost' does not exist."));

        // Unknown config name, alongside a valid one: nothing applied.
        let (code, msg) = alter_topic(
            &mut c,
            "err",
            &[("retention.ms", "5"), ("no.such.config", "1")],
            false,
            v,
        )
        .await;
        assert_eq!(code, ErrorCode::InvalidConfig.code(), "v{v}");
        assert_eq!(
            msg.as_deref(),
            Some("Unknown topic config name: no.such.config")
        );
        unchanged(&broker);

        // Invalid values, with a message naming the config.
        for (k, bad) in [
            ("retention.ms", "soon"),
            ("segment.bytes", "1"),
            ("cleanup.policy", "sometimes"),
            ("max.message.bytes", "-5"),
        ] {
            let (code, msg) = alter_topic(&mut c, "err", &[(k, bad)], false, v).await;
            assert_eq!(code, ErrorCode::InvalidConfig.code(), "v{v} {k}={bad}");
            let msg = msg.unwrap_or_default();
            assert!(msg.contains(k), "v{v}: {msg}");
        }
        unchanged(&broker);

        // Kafka validates the configs before the topic's existence.
        let (code, _) = alter_topic(&mut c, "ghost", &[("retention.ms", "soon")], false, v).await;
        assert_eq!(code, ErrorCode::InvalidConfig.code(), "v{v}");

        // A null value, a config named twice.
        let r = alter_configs(
            &mut c,
            vec![resource(
                TOPIC,
                "err",
                &[("retention.ms", None), ("segment.bytes", Some("8192"))],
            )],
            false,
            v,
        )
        .await;
        assert_eq!(r[0].2, ErrorCode::InvalidRequest.code(), "v{v}");
        assert_eq!(
            r[0].3.as_deref(),
            Some("Null value not supported for : retention.ms")
        );
        let r = alter_configs(
            &mut c,
            vec![topic_resource(
                "err",
                &[("retention.ms", "5"), ("retention.ms", "6")],
            )],
            false,
            v,
        )
        .await;
        assert_eq!(r[0].2, ErrorCode::InvalidRequest.code(), "v{v}");
        assert_eq!(
            r[0].3.as_deref(),
            Some("Error due to duplicate config keys")
        );
        unchanged(&broker);

        // Invalid topic names.
        let (code, _) = alter_topic(&mut c, "", &[], false, v).await;
        assert_eq!(code, ErrorCode::InvalidRequest.code(), "v{v}: empty name");
        let (code, _) = alter_topic(&mut c, "bad name!", &[], false, v).await;
        assert_eq!(code, ErrorCode::InvalidTopicException.code(), "v{v}");
    }
    broker.shutdown().await;
}

/// A resource named twice fails at every occurrence (Kafka: "Each resource must appear at
/// most once."); the other resources of the request are still applied. Broker and unknown
/// resource types are INVALID_REQUEST.
#[tokio::test]
async fn repeated_and_unsupported_resources() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "dup", 1, &[("retention.ms", "1000")]).await;
    create_topic(&mut c, "other", 1, &[]).await;
    for v in VERSIONS {
        let r = alter_configs(
            &mut c,
            vec![
                topic_resource("dup", &[("retention.ms", "5")]),
                topic_resource("other", &[("retention.ms", &format!("{}", 7 + v))]),
                topic_resource("dup", &[]),
                resource(BROKER, "0", &[("log.retention.ms", Some("5"))]),
                resource(BROKER, "", &[]),
                resource(99, "x", &[]),
            ],
            false,
            v,
        )
        .await;
        let got: Vec<(i8, &str, i16)> = r.iter().map(|x| (x.0, x.1.as_str(), x.2)).collect();
        let invalid = ErrorCode::InvalidRequest.code();
        assert_eq!(
            got,
            vec![
                (TOPIC, "dup", invalid),
                (TOPIC, "other", 0),
                (TOPIC, "dup", invalid),
                (BROKER, "0", invalid),
                (BROKER, "", invalid),
                (99, "x", invalid),
            ],
            "v{v}"
        );
        assert_eq!(
            r[0].3.as_deref(),
            Some("Each resource must appear at most once.")
        );
        assert_eq!(r[5].3.as_deref(), Some("Unknown resource type 99"));
        assert_eq!(
            topic_overrides(&broker, "dup"),
            map(&[("retention.ms", "1000")])
        );
        let expected = format!("{}", 7 + v);
        assert_eq!(
            topic_overrides(&broker, "other"),
            map(&[("retention.ms", expected.as_str())])
        );
    }
    broker.shutdown().await;
}

/// An override set by AlterConfigs changes what the log accepts at once, and removing it by
/// omission restores the default.
#[tokio::test]
async fn max_message_bytes_takes_effect_and_reverts() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "mmb", 1, &[]).await;
    produce_ok(&mut c, "mmb", 0, big_batch(8000, 1_000)).await;

    alter_topic_ok(&mut c, "mmb", &[("max.message.bytes", "5000")], 1).await;
    let p = produce(&mut c, "mmb", 0, big_batch(8000, 2_000)).await;
    assert_eq!(p.error_code, ErrorCode::MessageTooLarge.code());
    produce_ok(&mut c, "mmb", 0, big_batch(1000, 3_000)).await;

    // A later AlterConfigs that does not list max.message.bytes reverts it.
    alter_topic_ok(&mut c, "mmb", &[("retention.ms", "-1")], 2).await;
    assert_eq!(
        produce_ok(&mut c, "mmb", 0, big_batch(8000, 4_000)).await,
        2
    );
    broker.shutdown().await;
}

/// The replaced set is persisted: after a restart the removed overrides are still gone and
/// the new one still applies.
#[tokio::test]
async fn replaced_configs_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        "persist",
        2,
        &[("segment.bytes", "4096"), ("cleanup.policy", "compact")],
    )
    .await;
    alter_topic_ok(
        &mut c,
        "persist",
        &[("max.message.bytes", "3000"), ("retention.ms", "-1")],
        0,
    )
    .await;
    broker.shutdown().await;

    let broker = start_in(dir.path()).await;
    let mut c = connect(&broker.bootstrap_servers()).await;
    assert_eq!(
        topic_overrides(&broker, "persist"),
        map(&[("max.message.bytes", "3000"), ("retention.ms", "-1")])
    );
    let d = described(
        &mut c,
        "persist",
        &[
            "max.message.bytes",
            "retention.ms",
            "segment.bytes",
            "cleanup.policy",
        ],
    )
    .await;
    assert_eq!(d["max.message.bytes"], entry("3000", SOURCE_TOPIC));
    assert_eq!(d["retention.ms"], entry("-1", SOURCE_TOPIC));
    assert_eq!(d["segment.bytes"], entry("1073741824", SOURCE_DEFAULT));
    assert_eq!(d["cleanup.policy"], entry("delete", SOURCE_DEFAULT));
    let p = produce(&mut c, "persist", 1, big_batch(4000, 1_000)).await;
    assert_eq!(
        p.error_code,
        ErrorCode::MessageTooLarge.code(),
        "max.message.bytes=3000 survived the restart"
    );
    broker.shutdown().await;
}
