//! Topic administration against broker-lite with raw kafka-wire requests: CreateTopics,
//! DeleteTopics, CreatePartitions, DescribeConfigs and IncrementalAlterConfigs, including
//! their error paths.

use std::collections::BTreeMap;

use broker_lite::Broker;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_wire::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_wire::messages::create_topics_response::CreatableTopicResult;
use kafka_wire::messages::delete_topics_request::DeleteTopicState;
use kafka_wire::messages::describe_configs_request::DescribeConfigsResource;
use kafka_wire::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_wire::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_wire::messages::*;
use kafka_wire::records::Compression;
use kafka_wire::{ErrorCode, Uuid};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

fn topic(name: &str, partitions: i32, rf: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        configs: configs
            .iter()
            .map(|(k, v)| CreatableTopicConfig {
                name: (*k).into(),
                value: Some((*v).into()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

async fn create(
    c: &mut RawClient,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
    v: i16,
) -> Vec<CreatableTopicResult> {
    c.send(
        CreateTopicsRequest {
            topics,
            timeout_ms: 5000,
            validate_only,
            ..Default::default()
        },
        v,
    )
    .await
    .unwrap()
    .topics
}

async fn topic_names(c: &mut RawClient) -> Vec<String> {
    let mut v: Vec<String> = metadata(c, None)
        .await
        .topics
        .into_iter()
        .filter_map(|t| t.name)
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// CreateTopics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_topics_with_configs_reports_them_from_v5() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let r = create(
        &mut c,
        vec![topic(
            "cfg",
            3,
            1,
            &[("retention.ms", "3600000"), ("cleanup.policy", "compact")],
        )],
        false,
        7,
    )
    .await;
    let t = &r[0];
    assert_eq!(
        (t.name.as_str(), t.error_code),
        ("cfg", 0),
        "{:?}",
        t.error_message
    );
    assert_eq!((t.num_partitions, t.replication_factor), (3, 1));
    assert_ne!(t.topic_id, Uuid::ZERO, "v7 carries the topic id");
    let configs: BTreeMap<String, (Option<String>, i8)> = t
        .configs
        .as_ref()
        .expect("v5+ carries the configs")
        .iter()
        .map(|c| (c.name.clone(), (c.value.clone(), c.config_source)))
        .collect();
    assert_eq!(
        configs["retention.ms"],
        (Some("3600000".into()), SOURCE_TOPIC)
    );
    assert_eq!(
        configs["cleanup.policy"],
        (Some("compact".into()), SOURCE_TOPIC)
    );
    assert_eq!(
        configs["segment.bytes"],
        (Some("1073741824".into()), SOURCE_DEFAULT)
    );
    assert_eq!(
        configs["max.message.bytes"],
        (Some("1048588".into()), SOURCE_DEFAULT)
    );

    let m = topic_metadata(&mut c, "cfg").await;
    assert_eq!(m.partitions.len(), 3);
    assert_eq!(m.topic_id, t.topic_id);

    // v5 (first version with configs in the response) and the oldest served version, v2.
    let r = create(&mut c, vec![topic("v5", 2, 1, &[])], false, 5).await;
    assert_eq!(r[0].error_code, 0);
    assert_eq!(r[0].num_partitions, 2);
    assert!(r[0].configs.as_ref().is_some_and(|c| !c.is_empty()));
    let r = create(&mut c, vec![topic("v2", 1, 1, &[])], false, 2).await;
    assert_eq!(r[0].error_code, 0);
    assert_eq!(topic_names(&mut c).await, vec!["cfg", "v2", "v5"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn create_topics_error_codes() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "exists", 1, &[]).await;

    let cases: Vec<(CreatableTopic, ErrorCode)> = vec![
        (topic("exists", 1, 1, &[]), ErrorCode::TopicAlreadyExists),
        (topic("zero", 0, 1, &[]), ErrorCode::InvalidPartitions),
        (topic("negative", -5, 1, &[]), ErrorCode::InvalidPartitions),
        (topic("rf3", 1, 3, &[]), ErrorCode::InvalidReplicationFactor),
        (topic("rf0", 1, 0, &[]), ErrorCode::InvalidReplicationFactor),
        (
            topic("bad name!", 1, 1, &[]),
            ErrorCode::InvalidTopicException,
        ),
        (topic("", 1, 1, &[]), ErrorCode::InvalidTopicException),
        (
            topic(&"y".repeat(250), 1, 1, &[]),
            ErrorCode::InvalidTopicException,
        ),
        (
            topic("unknown-config", 1, 1, &[("no.such.config", "1")]),
            ErrorCode::InvalidConfig,
        ),
        (
            topic("bad-long", 1, 1, &[("retention.ms", "abc")]),
            ErrorCode::InvalidConfig,
        ),
        (
            topic("bad-policy", 1, 1, &[("cleanup.policy", "bogus")]),
            ErrorCode::InvalidConfig,
        ),
        (
            topic("bad-ts-type", 1, 1, &[("message.timestamp.type", "Now")]),
            ErrorCode::InvalidConfig,
        ),
    ];
    for (t, code) in cases {
        let name = t.name.clone();
        let r = create(&mut c, vec![t], false, 7).await;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].name, name);
        assert_eq!(
            r[0].error_code,
            code.code(),
            "{name:?}: {:?}",
            r[0].error_message
        );
        assert!(r[0].error_message.is_some(), "{name:?} has a message");
        assert_eq!(r[0].topic_id, Uuid::ZERO);
    }
    // A null config value is INVALID_CONFIG too.
    let mut t = topic("null-config", 1, 1, &[]);
    t.configs.push(CreatableTopicConfig {
        name: "retention.ms".into(),
        value: None,
        ..Default::default()
    });
    assert_eq!(
        create(&mut c, vec![t], false, 7).await[0].error_code,
        ErrorCode::InvalidConfig.code()
    );

    assert_eq!(
        topic_names(&mut c).await,
        vec!["exists"],
        "no failed creation left anything"
    );

    // Every served version answers errors and successes.
    for v in 2..=7 {
        let r = create(
            &mut c,
            vec![
                topic("exists", 1, 1, &[]),
                topic("zero", 0, 1, &[]),
                topic(&format!("ok-v{v}"), 1, 1, &[]),
            ],
            false,
            v,
        )
        .await;
        let codes: Vec<i16> = r.iter().map(|t| t.error_code).collect();
        assert_eq!(
            codes,
            vec![
                ErrorCode::TopicAlreadyExists.code(),
                ErrorCode::InvalidPartitions.code(),
                0
            ],
            "v{v}"
        );
    }
    assert_eq!(topic_names(&mut c).await.len(), 7);
    broker.shutdown().await;
}

/// Kafka: a topic named twice in one request fails with INVALID_REQUEST for each occurrence;
/// the other topics of the request are created.
#[tokio::test]
async fn create_topics_duplicate_name_in_one_request() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let r = create(
        &mut c,
        vec![
            topic("dup", 1, 1, &[]),
            topic("fine", 1, 1, &[]),
            topic("dup", 2, 1, &[]),
        ],
        false,
        7,
    )
    .await;
    let codes: Vec<(&str, i16)> = r.iter().map(|t| (t.name.as_str(), t.error_code)).collect();
    assert_eq!(codes.len(), 3);
    assert_eq!(
        codes
            .iter()
            .filter(|(n, e)| *n == "dup" && *e == ErrorCode::InvalidRequest.code())
            .count(),
        2
    );
    assert!(codes.contains(&("fine", 0)));
    assert_eq!(topic_names(&mut c).await, vec!["fine"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn create_topics_validate_only_creates_nothing() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let r = create(
        &mut c,
        vec![
            topic("dry", 4, 1, &[("retention.ms", "1000")]),
            topic("dry-bad", 0, 1, &[]),
        ],
        true,
        7,
    )
    .await;
    assert_eq!(r[0].error_code, 0, "{:?}", r[0].error_message);
    assert_eq!(r[0].num_partitions, 4);
    assert_eq!(r[1].error_code, ErrorCode::InvalidPartitions.code());
    assert!(topic_names(&mut c).await.is_empty());
    let m = metadata(&mut c, Some(&["dry"])).await;
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    // The real creation afterwards succeeds.
    let r = create(&mut c, vec![topic("dry", 4, 1, &[])], false, 7).await;
    assert_eq!(r[0].error_code, 0);
    broker.shutdown().await;
}

/// v4+: -1 partitions / replication factor take `num.partitions` / `default.replication.factor`.
#[tokio::test]
async fn create_topics_default_partitions_and_replication_factor() {
    let broker = Broker::builder()
        .config("num.partitions", "3")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let r = create(&mut c, vec![topic("defaults", -1, -1, &[])], false, 7).await;
    assert_eq!(r[0].error_code, 0, "{:?}", r[0].error_message);
    assert_eq!((r[0].num_partitions, r[0].replication_factor), (3, 1));
    assert_eq!(topic_metadata(&mut c, "defaults").await.partitions.len(), 3);
    let r = create(&mut c, vec![topic("defaults-v4", -1, 1, &[])], false, 4).await;
    assert_eq!(r[0].error_code, 0);
    assert_eq!(
        topic_metadata(&mut c, "defaults-v4").await.partitions.len(),
        3
    );
    broker.shutdown().await;
}

/// Kafka refuses a topic whose name differs from an existing one only by '.' versus '_'
/// (their metric names collide): ReplicationControlManager (KRaft) / AdminUtils (ZooKeeper):
/// "Topic 'a_b' collides with existing topic: a.b", INVALID_TOPIC_EXCEPTION.
#[tokio::test]
async fn create_topics_rejects_names_colliding_on_period_and_underscore() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "metrics.a", 1, &[]).await;
    let r = create(&mut c, vec![topic("metrics_a", 1, 1, &[])], false, 7).await;
    assert_eq!(r[0].error_code, ErrorCode::InvalidTopicException.code());
    assert_eq!(topic_names(&mut c).await, vec!["metrics.a"]);
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// DeleteTopics
// ---------------------------------------------------------------------------------------------

fn delete_by_names(names: &[&str], v: i16) -> DeleteTopicsRequest {
    if v >= 6 {
        DeleteTopicsRequest {
            topics: names
                .iter()
                .map(|n| DeleteTopicState {
                    name: Some((*n).into()),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: 5000,
            ..Default::default()
        }
    } else {
        DeleteTopicsRequest {
            topic_names: names.iter().map(|n| (*n).to_string()).collect(),
            timeout_ms: 5000,
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn delete_topics_every_version_removes_topic_and_files() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let data_dir = broker.state().data_dir.clone();
    let mut c = connect(&broker.bootstrap_servers()).await;
    for v in 1..=6i16 {
        let name = format!("del-v{v}");
        create_topic(&mut c, &name, 2, &[]).await;
        produce_ok(
            &mut c,
            &name,
            1,
            value_batch("x", 3, Compression::None, 1_000),
        )
        .await;
        assert!(data_dir.join(format!("{name}-0")).is_dir());
        assert!(data_dir.join(format!("{name}-1")).is_dir());

        let r = c
            .send(delete_by_names(&[&name, "never-existed"], v), v)
            .await
            .unwrap();
        assert_eq!(r.responses.len(), 2, "v{v}");
        let ok = r
            .responses
            .iter()
            .find(|t| t.name.as_deref() == Some(name.as_str()))
            .unwrap();
        assert_eq!(ok.error_code, 0, "v{v}: {:?}", ok.error_message);
        let missing = r
            .responses
            .iter()
            .find(|t| t.name.as_deref() == Some("never-existed"))
            .unwrap();
        assert_eq!(
            missing.error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "v{v}"
        );

        assert!(
            !topic_names(&mut c).await.contains(&name),
            "v{v}: still listed"
        );
        let m = metadata(&mut c, Some(&[name.as_str()])).await;
        assert_eq!(
            m.topics[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code()
        );
        for p in 0..2 {
            assert!(
                !data_dir.join(format!("{name}-{p}")).exists(),
                "v{v}: partition dir {p} left behind"
            );
        }
        let leftovers: Vec<String> = std::fs::read_dir(&data_dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
            .filter(|n| n.starts_with(&format!("{name}-")))
            .collect();
        assert!(leftovers.is_empty(), "v{v}: {leftovers:?}");
        // Produce and fetch now fail with UNKNOWN_TOPIC_OR_PARTITION.
        let p = produce(
            &mut c,
            &name,
            0,
            value_batch("x", 1, Compression::None, 1_000),
        )
        .await;
        assert_eq!(p.error_code, ErrorCode::UnknownTopicOrPartition.code());
        let f = fetch(&mut c, &name, 0, 0, 1 << 20).await;
        assert_eq!(f.error_code, ErrorCode::UnknownTopicOrPartition.code());
    }
    broker.shutdown().await;
}

/// v6 (KIP-516) deletes by topic id; an unknown id is UNKNOWN_TOPIC_ID.
#[tokio::test]
async fn delete_topics_by_id_v6() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let created = create_topic(&mut c, "by-id", 1, &[]).await;
    let unknown = Uuid::from_u64_pair(0x0102_0304_0506_4708, 0x8900_0000_0000_0001);
    let req = DeleteTopicsRequest {
        topics: vec![
            DeleteTopicState {
                name: None,
                topic_id: created.topic_id,
                ..Default::default()
            },
            DeleteTopicState {
                name: None,
                topic_id: unknown,
                ..Default::default()
            },
        ],
        timeout_ms: 5000,
        ..Default::default()
    };
    let r = c.send(req, 6).await.unwrap();
    assert_eq!(r.responses.len(), 2);
    let ok = r
        .responses
        .iter()
        .find(|t| t.topic_id == created.topic_id)
        .unwrap();
    assert_eq!(ok.error_code, 0);
    assert_eq!(ok.name.as_deref(), Some("by-id"));
    let bad = r.responses.iter().find(|t| t.topic_id == unknown).unwrap();
    assert_eq!(bad.error_code, ErrorCode::UnknownTopicId.code());
    assert!(topic_names(&mut c).await.is_empty());
    broker.shutdown().await;
}

#[tokio::test]
async fn deleted_topic_can_be_recreated_empty_with_a_new_id() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let first = create_topic(&mut c, "again", 1, &[("retention.ms", "12345")]).await;
    produce_ok(
        &mut c,
        "again",
        0,
        value_batch("old", 5, Compression::None, 1_000),
    )
    .await;
    let r = c.send(delete_by_names(&["again"], 6), 6).await.unwrap();
    assert_eq!(r.responses[0].error_code, 0);

    let second = create_topic(&mut c, "again", 2, &[]).await;
    assert_ne!(second.topic_id, first.topic_id);
    assert_eq!(topic_metadata(&mut c, "again").await.partitions.len(), 2);
    assert_eq!(
        offset_for(&mut c, "again", 0, -1).await,
        0,
        "no data survives the deletion"
    );
    assert!(fetch_all(&mut c, "again", 0, 0).await.is_empty());
    // The old overrides are gone too.
    assert!(topic_overrides(&broker, "again").is_empty());
    assert_eq!(
        produce_ok(
            &mut c,
            "again",
            0,
            value_batch("new", 1, Compression::None, 1_000)
        )
        .await,
        0
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn delete_topics_disabled_by_broker_config() {
    let broker = Broker::builder()
        .config("delete.topic.enable", "false")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "keep", 1, &[]).await;
    let r = c.send(delete_by_names(&["keep"], 6), 6).await.unwrap();
    assert_eq!(
        r.responses[0].error_code,
        ErrorCode::TopicDeletionDisabled.code()
    );
    assert_eq!(topic_names(&mut c).await, vec!["keep"]);
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------------------------

async fn create_partitions(
    c: &mut RawClient,
    name: &str,
    count: i32,
    validate_only: bool,
    v: i16,
) -> (i16, Option<String>) {
    let req = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: name.into(),
            count,
            assignments: None,
            ..Default::default()
        }],
        timeout_ms: 5000,
        validate_only,
        ..Default::default()
    };
    let r = c.send(req, v).await.unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].name, name);
    (r.results[0].error_code, r.results[0].error_message.clone())
}

#[tokio::test]
async fn create_partitions_grows_and_refuses_to_shrink() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "grow", 2, &[]).await;
    produce_ok(
        &mut c,
        "grow",
        1,
        value_batch("early", 2, Compression::None, 1_000),
    )
    .await;

    // validate_only changes nothing.
    assert_eq!(create_partitions(&mut c, "grow", 5, true, 3).await.0, 0);
    assert_eq!(topic_metadata(&mut c, "grow").await.partitions.len(), 2);

    let (code, msg) = create_partitions(&mut c, "grow", 5, false, 3).await;
    assert_eq!(code, 0, "{msg:?}");
    assert_eq!(topic_metadata(&mut c, "grow").await.partitions.len(), 5);
    assert_eq!(
        produce_ok(
            &mut c,
            "grow",
            4,
            value_batch("new", 2, Compression::None, 1_000)
        )
        .await,
        0
    );
    let batches = fetch_all(&mut c, "grow", 4, 0).await;
    assert_eq!(records_of(&batches).len(), 2);
    // Existing partitions keep their data.
    assert_eq!(offset_for(&mut c, "grow", 1, -1).await, 2);

    for (count, v) in [(3, 0), (5, 1), (4, 3)] {
        let (code, msg) = create_partitions(&mut c, "grow", count, false, v).await;
        assert_eq!(code, ErrorCode::InvalidPartitions.code(), "count {count}");
        assert!(msg.is_some());
    }
    assert_eq!(
        create_partitions(&mut c, "grow", 3, true, 3).await.0,
        ErrorCode::InvalidPartitions.code()
    );
    assert_eq!(
        create_partitions(&mut c, "nope", 3, false, 3).await.0,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    assert_eq!(topic_metadata(&mut c, "grow").await.partitions.len(), 5);
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// DescribeConfigs and IncrementalAlterConfigs
// ---------------------------------------------------------------------------------------------

fn entry<'a>(r: &'a DescribeConfigsResult, name: &str) -> &'a DescribeConfigsResourceResult {
    r.configs
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} not described"))
}

/// DescribeConfigs v1+ of configs that are set on the topic or the broker (never at their
/// default): values, sources, synonyms, types and documentation.
#[tokio::test]
async fn describe_configs_of_overridden_configs() {
    let broker = Broker::builder()
        .config("log.retention.ms", "7200000")
        .unwrap()
        .config("num.partitions", "3")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        "dc",
        1,
        &[("max.message.bytes", "5000"), ("cleanup.policy", "compact")],
    )
    .await;
    let keys = ["max.message.bytes", "cleanup.policy", "retention.ms"];

    for v in 1..=4 {
        let r = describe_topic_configs(&mut c, "dc", Some(&keys), v).await;
        assert_eq!(r.error_code, 0, "v{v}: {:?}", r.error_message);
        assert_eq!((r.resource_type, r.resource_name.as_str()), (TOPIC, "dc"));
        let mut names: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            vec!["cleanup.policy", "max.message.bytes", "retention.ms"],
            "configuration_keys filter"
        );
        let mm = entry(&r, "max.message.bytes");
        assert_eq!(
            (mm.value.as_deref(), mm.config_source),
            (Some("5000"), SOURCE_TOPIC)
        );
        let cp = entry(&r, "cleanup.policy");
        assert_eq!(
            (cp.value.as_deref(), cp.config_source),
            (Some("compact"), SOURCE_TOPIC)
        );
        // The static broker config log.retention.ms supplies the topic's retention.ms.
        let ret = entry(&r, "retention.ms");
        assert_eq!(
            (ret.value.as_deref(), ret.config_source),
            (Some("7200000"), SOURCE_STATIC_BROKER),
            "v{v}"
        );
        for e in &r.configs {
            assert!(!e.read_only && !e.is_sensitive, "{}", e.name);
            assert!(e.synonyms.is_empty(), "synonyms only on request");
            assert!(
                v < 3 || e.documentation.is_none(),
                "documentation only on request"
            );
        }
    }

    // Synonyms, most specific first.
    let res = DescribeConfigsResource {
        resource_type: TOPIC,
        resource_name: "dc".into(),
        configuration_keys: Some(keys.iter().map(|k| k.to_string()).collect()),
        ..Default::default()
    };
    let r = describe_configs(&mut c, vec![res.clone()], true, false, 1)
        .await
        .remove(0);
    let mm = entry(&r, "max.message.bytes");
    assert_eq!(mm.synonyms[0].name, "max.message.bytes");
    assert_eq!(
        (mm.synonyms[0].value.as_deref(), mm.synonyms[0].source),
        (Some("5000"), SOURCE_TOPIC)
    );
    assert_eq!(mm.synonyms.last().unwrap().source, SOURCE_DEFAULT);
    let ret = entry(&r, "retention.ms");
    assert_eq!(ret.synonyms[0].name, "log.retention.ms");
    assert_eq!(
        (ret.synonyms[0].value.as_deref(), ret.synonyms[0].source),
        (Some("7200000"), SOURCE_STATIC_BROKER)
    );

    // Documentation and types (v3+).
    let r = describe_configs(&mut c, vec![res], false, true, 3)
        .await
        .remove(0);
    for e in &r.configs {
        assert!(
            e.documentation.as_deref().is_some_and(|d| !d.is_empty()),
            "{} documented",
            e.name
        );
    }
    assert_eq!(entry(&r, "retention.ms").config_type, 5, "LONG");
    assert_eq!(entry(&r, "max.message.bytes").config_type, 3, "INT");
    assert_eq!(entry(&r, "cleanup.policy").config_type, 7, "LIST");

    // An unknown topic, this broker (a set config) and another broker id.
    let resources = vec![
        DescribeConfigsResource {
            resource_type: TOPIC,
            resource_name: "missing".into(),
            configuration_keys: None,
            ..Default::default()
        },
        DescribeConfigsResource {
            resource_type: BROKER,
            resource_name: "1".into(),
            configuration_keys: Some(vec!["num.partitions".into(), "log.retention.ms".into()]),
            ..Default::default()
        },
        DescribeConfigsResource {
            resource_type: BROKER,
            resource_name: "7".into(),
            configuration_keys: None,
            ..Default::default()
        },
    ];
    let r = describe_configs(&mut c, resources, false, false, 4).await;
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].error_code, ErrorCode::UnknownTopicOrPartition.code());
    assert!(r[0].configs.is_empty());
    assert_eq!(r[1].error_code, 0);
    assert_eq!(
        (r[1].resource_type, r[1].resource_name.as_str()),
        (BROKER, "1")
    );
    let np = entry(&r[1], "num.partitions");
    assert_eq!(
        (np.value.as_deref(), np.config_source),
        (Some("3"), SOURCE_STATIC_BROKER)
    );
    assert_eq!(
        entry(&r[1], "log.retention.ms").value.as_deref(),
        Some("7200000")
    );
    // Another broker's id: Kafka's "Unexpected broker id" INVALID_REQUEST.
    assert_eq!(r[2].error_code, ErrorCode::InvalidRequest.code());
    broker.shutdown().await;
}

/// Every topic config, with Kafka's defaults (source DEFAULT_CONFIG) where nothing is set.
/// `IsDefault` exists in DescribeConfigs v0 only; broker-lite sets it in v1+ responses, which
/// cannot be encoded, so the broker closes the connection instead of answering.
#[tokio::test]
async fn describe_configs_topic_defaults_and_sources() {
    let broker = Broker::builder()
        .config("log.retention.ms", "7200000")
        .unwrap()
        .config("log.segment.bytes", "2097152")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(
        &mut c,
        "dc",
        1,
        &[("max.message.bytes", "5000"), ("segment.bytes", "3000000")],
    )
    .await;

    for v in 1..=4 {
        let r = describe_topic_configs(&mut c, "dc", None, v).await;
        assert_eq!(r.error_code, 0, "v{v}");
        assert!(r.configs.len() >= 20, "every topic config is described");
        // A topic override beats the broker's static config.
        let seg = entry(&r, "segment.bytes");
        assert_eq!(
            (seg.value.as_deref(), seg.config_source),
            (Some("3000000"), SOURCE_TOPIC)
        );
        let ret = entry(&r, "retention.ms");
        assert_eq!(
            (ret.value.as_deref(), ret.config_source),
            (Some("7200000"), SOURCE_STATIC_BROKER),
            "v{v}"
        );
        // Kafka's defaults.
        let cp = entry(&r, "cleanup.policy");
        assert_eq!(
            (cp.value.as_deref(), cp.config_source),
            (Some("delete"), SOURCE_DEFAULT)
        );
        assert_eq!(entry(&r, "retention.bytes").value.as_deref(), Some("-1"));
        assert_eq!(
            entry(&r, "message.timestamp.type").value.as_deref(),
            Some("CreateTime")
        );
        assert_eq!(
            entry(&r, "min.insync.replicas").config_source,
            SOURCE_DEFAULT
        );
    }
    // With synonyms, a default-valued config lists its default.
    let res = DescribeConfigsResource {
        resource_type: TOPIC,
        resource_name: "dc".into(),
        configuration_keys: None,
        ..Default::default()
    };
    let r = describe_configs(&mut c, vec![res], true, true, 4)
        .await
        .remove(0);
    let cp = entry(&r, "cleanup.policy");
    assert!(!cp.synonyms.is_empty() && cp.synonyms.iter().all(|s| s.source == SOURCE_DEFAULT));
    assert!(cp.documentation.is_some());
    // The broker resource: configs set at startup and Kafka's defaults.
    let res = DescribeConfigsResource {
        resource_type: BROKER,
        resource_name: "1".into(),
        configuration_keys: None,
        ..Default::default()
    };
    let r = describe_configs(&mut c, vec![res], false, false, 4)
        .await
        .remove(0);
    assert_eq!(r.error_code, 0);
    let ac = entry(&r, "auto.create.topics.enable");
    assert_eq!(
        (ac.value.as_deref(), ac.config_source),
        (Some("true"), SOURCE_DEFAULT)
    );
    let seg = entry(&r, "log.segment.bytes");
    assert_eq!(
        (seg.value.as_deref(), seg.config_source),
        (Some("2097152"), SOURCE_STATIC_BROKER)
    );
    broker.shutdown().await;
}

fn op(name: &str, operation: i8, value: Option<&str>) -> AlterableConfig {
    AlterableConfig {
        name: name.into(),
        config_operation: operation,
        value: value.map(str::to_string),
        ..Default::default()
    }
}

async fn alter(
    c: &mut RawClient,
    topic: &str,
    ops: Vec<AlterableConfig>,
    validate_only: bool,
    v: i16,
) -> (i16, Option<String>) {
    let req = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: TOPIC,
            resource_name: topic.into(),
            configs: ops,
            ..Default::default()
        }],
        validate_only,
        ..Default::default()
    };
    let mut r = c.send(req, v).await.unwrap();
    let x = r.responses.remove(0);
    assert_eq!((x.resource_type, x.resource_name.as_str()), (TOPIC, topic));
    (x.error_code, x.error_message)
}

/// cleanup.policy as DescribeConfigs reports it when it is set on the topic.
async fn described_policy(c: &mut RawClient) -> (Option<String>, i8) {
    let r = describe_topic_configs(c, "alt", Some(&["cleanup.policy"]), 4).await;
    (r.configs[0].value.clone(), r.configs[0].config_source)
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

#[tokio::test]
async fn incremental_alter_configs_set_append_subtract_delete() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "alt", 1, &[]).await;
    let policy = |b: &Broker| topic_overrides(b, "alt").get("cleanup.policy").cloned();
    assert_eq!(policy(&broker), None);

    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("cleanup.policy", SET, Some("compact"))],
            false,
            1
        )
        .await
        .0,
        0
    );
    assert_eq!(policy(&broker).as_deref(), Some("compact"));
    assert_eq!(
        described_policy(&mut c).await,
        (Some("compact".into()), SOURCE_TOPIC)
    );

    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("cleanup.policy", APPEND, Some("delete"))],
            false,
            0
        )
        .await
        .0,
        0
    );
    assert_eq!(policy(&broker).as_deref(), Some("compact,delete"));
    assert_eq!(
        described_policy(&mut c).await,
        (Some("compact,delete".into()), SOURCE_TOPIC)
    );

    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("cleanup.policy", SUBTRACT, Some("compact"))],
            false,
            1
        )
        .await
        .0,
        0
    );
    assert_eq!(policy(&broker).as_deref(), Some("delete"));
    assert_eq!(
        described_policy(&mut c).await,
        (Some("delete".into()), SOURCE_TOPIC)
    );

    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("cleanup.policy", DELETE, None)],
            false,
            1
        )
        .await
        .0,
        0
    );
    assert_eq!(policy(&broker), None, "DELETE removes the override");

    // APPEND to a config at its default starts from the default value ("delete").
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("cleanup.policy", APPEND, Some("compact"))],
            false,
            1
        )
        .await
        .0,
        0
    );
    assert_eq!(policy(&broker).as_deref(), Some("delete,compact"));
    assert_eq!(
        described_policy(&mut c).await,
        (Some("delete,compact".into()), SOURCE_TOPIC)
    );

    // Several operations on several configs in one resource.
    let ops = vec![
        op("retention.ms", SET, Some("60000")),
        op("cleanup.policy", DELETE, None),
    ];
    assert_eq!(alter(&mut c, "alt", ops, false, 1).await.0, 0);
    let o = topic_overrides(&broker, "alt");
    assert_eq!(o.get("retention.ms").map(String::as_str), Some("60000"));
    assert!(!o.contains_key("cleanup.policy"));
    let r = describe_topic_configs(&mut c, "alt", Some(&["retention.ms"]), 4).await;
    assert_eq!(
        (
            entry(&r, "retention.ms").value.as_deref(),
            entry(&r, "retention.ms").config_source
        ),
        (Some("60000"), SOURCE_TOPIC)
    );
    broker.shutdown().await;
}

/// The same sequence, checked through DescribeConfigs only (including the config going back
/// to its default), as a client sees it.
#[tokio::test]
async fn incremental_alter_configs_delete_shows_the_default_again() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "alt", 1, &[]).await;
    assert_eq!(
        described_policy(&mut c).await,
        (Some("delete".into()), SOURCE_DEFAULT)
    );
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("cleanup.policy", SET, Some("compact"))],
            false,
            1
        )
        .await
        .0,
        0
    );
    assert_eq!(
        described_policy(&mut c).await,
        (Some("compact".into()), SOURCE_TOPIC)
    );
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("cleanup.policy", DELETE, None)],
            false,
            1
        )
        .await
        .0,
        0
    );
    assert_eq!(
        described_policy(&mut c).await,
        (Some("delete".into()), SOURCE_DEFAULT)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn incremental_alter_configs_errors_and_validate_only() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "alt", 1, &[("retention.ms", "1000")]).await;
    let retention = |b: &Broker| topic_overrides(b, "alt").get("retention.ms").cloned();

    // Unknown config: INVALID_CONFIG, and the whole resource is left unchanged.
    let ops = vec![
        op("retention.ms", SET, Some("5")),
        op("no.such.config", SET, Some("1")),
    ];
    let (code, msg) = alter(&mut c, "alt", ops, false, 1).await;
    assert_eq!(code, ErrorCode::InvalidConfig.code());
    assert!(msg.is_some());
    assert_eq!(retention(&broker).as_deref(), Some("1000"));

    // A bad value, APPEND on a non-list config, an invalid list element.
    let bad = ErrorCode::InvalidConfig.code();
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("retention.ms", SET, Some("soon"))],
            false,
            1
        )
        .await
        .0,
        bad
    );
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("retention.ms", APPEND, Some("1"))],
            false,
            1
        )
        .await
        .0,
        bad
    );
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("cleanup.policy", SET, Some("sometimes"))],
            false,
            1
        )
        .await
        .0,
        bad
    );
    assert_eq!(retention(&broker).as_deref(), Some("1000"));

    // validate_only: accepted, nothing changes; errors are still reported.
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("retention.ms", SET, Some("99"))],
            true,
            1
        )
        .await
        .0,
        0
    );
    assert_eq!(retention(&broker).as_deref(), Some("1000"));
    let r = describe_topic_configs(&mut c, "alt", Some(&["retention.ms"]), 4).await;
    assert_eq!(entry(&r, "retention.ms").value.as_deref(), Some("1000"));
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("no.such.config", SET, Some("1"))],
            true,
            1
        )
        .await
        .0,
        bad
    );

    // Unknown topic.
    let code = alter(
        &mut c,
        "ghost",
        vec![op("retention.ms", SET, Some("1"))],
        false,
        1,
    )
    .await
    .0;
    assert_eq!(code, ErrorCode::UnknownTopicOrPartition.code());

    // A real change is visible at once.
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("retention.ms", SET, Some("99"))],
            false,
            1
        )
        .await
        .0,
        0
    );
    assert_eq!(retention(&broker).as_deref(), Some("99"));
    let r = describe_topic_configs(&mut c, "alt", Some(&["retention.ms"]), 4).await;
    assert_eq!(entry(&r, "retention.ms").value.as_deref(), Some("99"));
    broker.shutdown().await;
}

/// A topic config changed at runtime applies to the log at once: lowering max.message.bytes
/// makes the next large batch MESSAGE_TOO_LARGE.
#[tokio::test]
async fn altered_max_message_bytes_applies_to_the_next_produce() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "alt", 1, &[]).await;
    produce_ok(&mut c, "alt", 0, big_batch(4000, 1_000)).await;
    assert_eq!(
        alter(
            &mut c,
            "alt",
            vec![op("max.message.bytes", SET, Some("2000"))],
            false,
            1
        )
        .await
        .0,
        0
    );
    let p = produce(&mut c, "alt", 0, big_batch(4000, 1_000)).await;
    assert_eq!(p.error_code, ErrorCode::MessageTooLarge.code());
    assert_eq!(offset_for(&mut c, "alt", 0, -1).await, 1);
    broker.shutdown().await;
}
