//! Metadata (key 3) against broker-lite across versions 0, 1, 4, 9, 10 and 12: all topics,
//! named topics, auto-creation (`num.partitions`, `allow_auto_topic_creation`,
//! `auto.create.topics.enable`), invalid names, topic-id lookups, and the broker/leader
//! fields.

use broker_lite::Broker;
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::messages::metadata_request::MetadataRequestTopic;
use kafka_wire::messages::metadata_response::MetadataResponseTopic;
use kafka_wire::messages::*;
use kafka_wire::{ErrorCode, Uuid};

fn named(names: &[&str], version: i16, allow_auto: bool) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic {
                    name: Some((*n).into()),
                    ..Default::default()
                })
                .collect(),
        ),
        // Must stay at its default (true) below v4, where the field does not exist.
        allow_auto_topic_creation: allow_auto || version < 4,
        ..Default::default()
    }
}

fn all_topics(version: i16) -> MetadataRequest {
    MetadataRequest {
        // v0 has no null array: an empty list means "all topics".
        topics: if version == 0 { Some(Vec::new()) } else { None },
        ..Default::default()
    }
}

fn find<'a>(r: &'a MetadataResponse, name: &str) -> Option<&'a MetadataResponseTopic> {
    r.topics.iter().find(|t| t.name.as_deref() == Some(name))
}

fn check_broker_fields(r: &MetadataResponse, bootstrap: &str, version: i16) {
    assert_eq!(r.brokers.len(), 1, "v{version}");
    let b = &r.brokers[0];
    assert_eq!(b.node_id, 1);
    assert_eq!(
        format!("{}:{}", b.host, b.port),
        bootstrap,
        "v{version}: advertised address"
    );
    if version >= 1 {
        assert_eq!(r.controller_id, 1, "v{version}");
    }
    if version >= 2 {
        assert!(
            r.cluster_id.as_deref().is_some_and(|c| !c.is_empty()),
            "v{version}: cluster id"
        );
    }
}

fn check_partitions(t: &MetadataResponseTopic, count: i32, version: i16) {
    assert_eq!(t.error_code, 0, "v{version} {:?}", t.name);
    let mut idx: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    idx.sort();
    assert_eq!(
        idx,
        (0..count).collect::<Vec<i32>>(),
        "v{version} {:?}",
        t.name
    );
    for p in &t.partitions {
        assert_eq!(p.error_code, 0);
        assert_eq!(p.leader_id, 1, "the single broker leads every partition");
        assert_eq!(p.replica_nodes, vec![1]);
        assert_eq!(p.isr_nodes, vec![1]);
        if version >= 7 {
            assert!(p.leader_epoch >= 0);
        }
    }
}

#[tokio::test]
async fn metadata_all_topics_across_versions() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let bootstrap = broker.bootstrap_servers();
    let mut c = connect(&bootstrap).await;
    let a = create_topic(&mut c, "alpha", 2, &[]).await;
    create_topic(&mut c, "beta", 1, &[]).await;

    for v in [0, 1, 4, 9, 12] {
        let r = c.send(all_topics(v), v).await.unwrap();
        check_broker_fields(&r, &bootstrap, v);
        assert_eq!(r.topics.len(), 2, "v{v}");
        check_partitions(find(&r, "alpha").unwrap(), 2, v);
        check_partitions(find(&r, "beta").unwrap(), 1, v);
        assert!(!find(&r, "alpha").unwrap().is_internal);
        if v >= 10 {
            assert_eq!(find(&r, "alpha").unwrap().topic_id, a.topic_id, "v{v}");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn metadata_named_topics_and_auto_creation_with_num_partitions() {
    let broker = Broker::builder()
        .config("num.partitions", "3")
        .unwrap()
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let mut c = connect(&bootstrap).await;
    create_topic(&mut c, "existing", 2, &[]).await;

    // Named existing topic, every version.
    for v in [0, 1, 4, 9, 12] {
        let r = c.send(named(&["existing"], v, false), v).await.unwrap();
        check_broker_fields(&r, &bootstrap, v);
        assert_eq!(r.topics.len(), 1);
        check_partitions(&r.topics[0], 2, v);
    }

    // Below v4 a named unknown topic is always auto-created (auto.create.topics.enable is on).
    for (v, name) in [(0, "auto-v0"), (1, "auto-v1")] {
        let r = c.send(named(&[name], v, true), v).await.unwrap();
        assert_eq!(r.topics.len(), 1);
        check_partitions(&r.topics[0], 3, v);
    }
    // v4+: only when the request allows it.
    for (v, name) in [(4, "auto-v4"), (9, "auto-v9"), (12, "auto-v12")] {
        let r = c.send(named(&[name], v, true), v).await.unwrap();
        check_partitions(&r.topics[0], 3, v);
        let r = c
            .send(named(&[&format!("{name}-no")], v, false), v)
            .await
            .unwrap();
        assert_eq!(
            r.topics[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "v{v}"
        );
        assert!(r.topics[0].partitions.is_empty());
    }

    // The auto-created topics exist with num.partitions partitions; the refused ones do not.
    let r = metadata(&mut c, None).await;
    let mut names: Vec<String> = r.topics.iter().filter_map(|t| t.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["auto-v0", "auto-v1", "auto-v12", "auto-v4", "auto-v9", "existing"]
    );
    for t in &r.topics {
        if t.name.as_deref() != Some("existing") {
            check_partitions(t, 3, 12);
        }
    }
    // Auto-created topics are usable at once.
    produce_ok(
        &mut c,
        "auto-v12",
        2,
        value_batch("x", 1, Default::default(), 1_000),
    )
    .await;

    // A mix of known, unknown and invalid names in one request: one answer each, in order.
    let r = c
        .send(named(&["existing", "nope", "bad name!"], 12, false), 12)
        .await
        .unwrap();
    let codes: Vec<(Option<String>, i16)> = r
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.error_code))
        .collect();
    assert_eq!(codes.len(), 3);
    assert!(codes.contains(&(Some("existing".into()), 0)));
    assert!(codes.contains(&(
        Some("nope".into()),
        ErrorCode::UnknownTopicOrPartition.code()
    )));
    assert!(codes.contains(&(
        Some("bad name!".into()),
        ErrorCode::InvalidTopicException.code()
    )));
    broker.shutdown().await;
}

#[tokio::test]
async fn metadata_invalid_topic_names_are_invalid_topic_exception() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let long = "x".repeat(250);
    for name in ["bad name!", "..", ".", "ünicode", long.as_str()] {
        for (v, allow) in [(1, true), (4, true), (12, true), (12, false)] {
            let r = c.send(named(&[name], v, allow), v).await.unwrap();
            assert_eq!(r.topics.len(), 1);
            assert_eq!(
                r.topics[0].error_code,
                ErrorCode::InvalidTopicException.code(),
                "{name:?} v{v} allow={allow}"
            );
        }
    }
    assert!(
        metadata(&mut c, None).await.topics.is_empty(),
        "nothing was created"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn metadata_auto_creation_disabled_by_broker_config() {
    let broker = Broker::builder()
        .config("auto.create.topics.enable", "false")
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    for v in [0, 1, 4, 9, 12] {
        let r = c.send(named(&["ghost"], v, true), v).await.unwrap();
        assert_eq!(r.topics.len(), 1);
        assert_eq!(
            r.topics[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code(),
            "v{v}"
        );
    }
    assert!(metadata(&mut c, None).await.topics.is_empty());
    // Produce never creates topics either.
    let p = produce(
        &mut c,
        "ghost",
        0,
        value_batch("x", 1, Default::default(), 1_000),
    )
    .await;
    assert_eq!(p.error_code, ErrorCode::UnknownTopicOrPartition.code());
    assert!(metadata(&mut c, None).await.topics.is_empty());
    broker.shutdown().await;
}

fn by_id(ids: &[Uuid]) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            ids.iter()
                .map(|id| MetadataRequestTopic {
                    topic_id: *id,
                    name: None,
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

/// KIP-516: Metadata v12+ may name topics by id; an unknown id is UNKNOWN_TOPIC_ID.
#[tokio::test]
async fn metadata_topic_id_lookup_v12() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    let created = create_topic(&mut c, "by-id", 4, &[]).await;
    assert_ne!(created.topic_id, Uuid::ZERO);

    let r = c.send(by_id(&[created.topic_id]), 12).await.unwrap();
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].name.as_deref(), Some("by-id"));
    assert_eq!(r.topics[0].topic_id, created.topic_id);
    check_partitions(&r.topics[0], 4, 12);

    let unknown = Uuid::from_u64_pair(0x1234_5678_9abc_4def, 0x8123_4567_89ab_cdef);
    let r = c.send(by_id(&[unknown]), 12).await.unwrap();
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, ErrorCode::UnknownTopicId.code());
    assert_eq!(r.topics[0].topic_id, unknown);
    assert!(r.topics[0].partitions.is_empty());
    broker.shutdown().await;
}

/// Kafka's `KafkaApis.handleTopicMetadataRequest`: "Topic IDs are not supported for versions
/// 10 and 11. Topic names can not be null in these versions." A null name or a non-zero id
/// below v12 is an InvalidRequestException, answered by `MetadataRequest.getErrorResponse`
/// with INVALID_REQUEST on every requested topic.
#[tokio::test]
async fn metadata_topic_ids_below_v12_are_invalid_request() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c: RawClient = connect(&broker.bootstrap_servers()).await;
    let created = create_topic(&mut c, "by-id", 1, &[]).await;
    for v in [10, 11] {
        let r = c.send(by_id(&[created.topic_id]), v).await.unwrap();
        assert_eq!(r.topics.len(), 1);
        assert_eq!(
            r.topics[0].error_code,
            ErrorCode::InvalidRequest.code(),
            "v{v}"
        );
        assert!(r.topics[0].partitions.is_empty());
    }
    broker.shutdown().await;
}

/// The advertised listener replaces the bound address in Metadata.
#[tokio::test]
async fn metadata_reports_the_advertised_listener() {
    let broker = Broker::builder()
        .advertised_listener("kafka.example", 19092)
        .start()
        .await
        .unwrap();
    let mut c = connect(&broker.local_addr().to_string()).await;
    assert_eq!(broker.bootstrap_servers(), "kafka.example:19092");
    let r = metadata(&mut c, None).await;
    assert_eq!(
        (r.brokers[0].host.as_str(), r.brokers[0].port),
        ("kafka.example", 19092)
    );
    broker.shutdown().await;
}
