//! kafka-client's `AdminClient` against an in-process broker-lite: topics (create with
//! validate_only and per-topic errors, describe, create partitions, list, delete), the
//! cluster, configs (describe with sources and synonyms, incremental SET / APPEND /
//! SUBTRACT / DELETE, validate_only), offsets after producing with our producer (earliest,
//! latest, max timestamp, by timestamp), DeleteRecords, and a consumer group's life (list
//! and describe while a member runs, offsets, altering them on the empty group and consuming
//! from them, deleting offsets and the group). Every per-item error keeps its Kafka code.

mod consumer_common;
mod producer_common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_client::admin::*;
use kafka_client::config::{AutoOffsetReset, ConsumerConfig};
use kafka_client::consumer::{OffsetAndMetadata, TopicPartition};
use kafka_client::{Error, ProducerRecord};
use kafka_wire::{ApiKey, ErrorCode, Uuid};

use consumer_common::*;
use producer_common::*;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn admin(bootstrap: &str) -> AdminClient {
    let config = AdminConfig::builder()
        .bootstrap_servers(bootstrap)
        .default_api_timeout(Duration::from_secs(15))
        .build()
        .expect("valid admin config");
    AdminClient::new(config).expect("admin client")
}

/// The Kafka code of a per-item error.
fn code<T: std::fmt::Debug>(r: &Result<T, Error>) -> Option<ErrorCode> {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn topics_are_created_described_grown_and_deleted() {
    let broker = start_broker().await;
    let admin = admin(&broker.bootstrap_servers());
    let opts = CreateTopicsOptions::default();

    let created = promptly(
        "create",
        admin.create_topics(
            [
                NewTopic::new("a", 3, 1),
                NewTopic::new("b", 1, 1).config("retention.ms", "1000"),
            ],
            &opts,
        ),
    )
    .await
    .unwrap();
    let a = created["a"].as_ref().unwrap();
    assert_eq!(a.num_partitions, Some(3));
    assert_eq!(a.replication_factor, Some(1));
    assert_ne!(a.topic_id, Uuid::default());
    let b = created["b"].as_ref().unwrap();
    let retention = b.configs.iter().find(|c| c.name == "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopicConfig);

    // validate_only creates nothing; bad topics fail one by one with their codes.
    let validated = admin
        .create_topics(
            [NewTopic::new("c", 2, 1)],
            &CreateTopicsOptions {
                validate_only: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(validated["c"].as_ref().unwrap().num_partitions, Some(2));
    let bad = admin
        .create_topics(
            [
                NewTopic::new("a", 3, 1),
                NewTopic::new("zero", 0, 1),
                NewTopic::new("rf", 1, 3),
                NewTopic::new("cfg", 1, 1).config("retention.ms", "soon"),
                NewTopic::new("", 1, 1),
                NewTopic::new("fine", 1, 1),
            ],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(code(&bad["a"]), Some(ErrorCode::TopicAlreadyExists));
    assert_eq!(code(&bad["zero"]), Some(ErrorCode::InvalidPartitions));
    assert_eq!(code(&bad["rf"]), Some(ErrorCode::InvalidReplicationFactor));
    assert_eq!(code(&bad["cfg"]), Some(ErrorCode::InvalidConfig));
    assert_eq!(code(&bad[""]), Some(ErrorCode::InvalidTopicException));
    assert!(bad["fine"].is_ok());

    let listed = admin
        .list_topics(&ListTopicsOptions::default())
        .await
        .unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["a", "b", "fine"]);
    assert_eq!(listed["a"].topic_id, a.topic_id);
    assert!(!listed["a"].is_internal);

    let cluster = admin
        .describe_cluster(&DescribeClusterOptions::default())
        .await
        .unwrap();
    assert_eq!(cluster.nodes.len(), 1);
    let node = cluster.nodes[0].clone();
    assert_eq!(node.address(), broker.bootstrap_servers());
    assert_eq!(cluster.controller.as_ref(), Some(&node));
    assert!(cluster.cluster_id.as_deref().is_some_and(|c| !c.is_empty()));

    let described = admin
        .describe_topics(["a", "missing"], &DescribeTopicsOptions::default())
        .await
        .unwrap();
    let d = described["a"].as_ref().unwrap();
    assert_eq!(d.topic_id, a.topic_id);
    assert_eq!(
        d.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for p in &d.partitions {
        assert_eq!(p.leader.as_ref(), Some(&node));
        assert_eq!(p.replicas, std::slice::from_ref(&node));
        assert_eq!(p.isr, std::slice::from_ref(&node));
    }
    assert_eq!(
        code(&described["missing"]),
        Some(ErrorCode::UnknownTopicOrPartition)
    );

    // CreatePartitions: validate_only changes nothing, growing works, shrinking fails.
    let grow = |n| -> BTreeMap<String, NewPartitions> {
        [
            ("a".to_owned(), NewPartitions::increase_to(n)),
            ("b".to_owned(), NewPartitions::increase_to(1)),
            ("nope".to_owned(), NewPartitions::increase_to(2)),
        ]
        .into_iter()
        .collect()
    };
    let validated = admin
        .create_partitions(
            grow(5),
            &CreatePartitionsOptions {
                validate_only: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(validated["a"].is_ok());
    let grown = admin
        .create_partitions(grow(5), &CreatePartitionsOptions::default())
        .await
        .unwrap();
    assert!(grown["a"].is_ok());
    assert_eq!(code(&grown["b"]), Some(ErrorCode::InvalidPartitions));
    assert_eq!(
        code(&grown["nope"]),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
    let d = admin
        .describe_topics(["a"], &DescribeTopicsOptions::default())
        .await
        .unwrap();
    assert_eq!(d["a"].as_ref().unwrap().partitions.len(), 5);

    let deleted = admin
        .delete_topics(["b", "missing"], &DeleteTopicsOptions::default())
        .await
        .unwrap();
    assert!(deleted["b"].is_ok());
    assert_eq!(
        code(&deleted["missing"]),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
    let listed = admin
        .list_topics(&ListTopicsOptions::default())
        .await
        .unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["a", "fine"]);

    admin.close();
    assert_eq!(
        admin.list_topics(&ListTopicsOptions::default()).await,
        Err(Error::Closed)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn configs_round_trip_with_sources() {
    let broker = broker_with_topic("t", 1, &[("retention.ms", "1000")]).await;
    let admin = admin(&broker.bootstrap_servers());
    let node = admin
        .describe_cluster(&DescribeClusterOptions::default())
        .await
        .unwrap()
        .nodes[0]
        .id;
    let topic = ConfigResource::topic("t");
    let describe = |synonyms: bool| {
        let admin = admin.clone();
        let topic = topic.clone();
        async move {
            let mut r = admin
                .describe_configs(
                    [topic.clone()],
                    &DescribeConfigsOptions {
                        include_synonyms: synonyms,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            r.remove(&topic).unwrap().unwrap()
        }
    };

    let all = admin
        .describe_configs(
            [
                topic.clone(),
                ConfigResource::broker(node),
                ConfigResource::topic("missing"),
            ],
            &DescribeConfigsOptions {
                include_synonyms: true,
                include_documentation: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let t = all[&topic].as_ref().unwrap();
    let retention = t.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopicConfig);
    assert!(!retention.is_default && !retention.is_read_only && !retention.is_sensitive);
    assert_eq!(retention.config_type, Some(ConfigType::Long));
    assert!(retention
        .documentation
        .as_deref()
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(retention.synonyms[0].name, "retention.ms");
    assert_eq!(
        retention.synonyms[0].source,
        ConfigSource::DynamicTopicConfig
    );
    assert!(retention
        .synonyms
        .iter()
        .any(|s| s.name == "log.retention.ms" && s.source == ConfigSource::DefaultConfig));
    let policy = t.get("cleanup.policy").unwrap();
    assert_eq!(policy.value.as_deref(), Some("delete"));
    assert_eq!(policy.source, ConfigSource::DefaultConfig);
    assert!(policy.is_default);
    let b = all[&ConfigResource::broker(node)].as_ref().unwrap();
    assert!(!b.entries.is_empty());
    assert!(b.entries.iter().all(|e| e.is_read_only));
    assert_eq!(
        code(&all[&ConfigResource::topic("missing")]),
        Some(ErrorCode::UnknownTopicOrPartition)
    );

    let alter = |ops: Vec<AlterConfigOp>, validate_only: bool| {
        let admin = admin.clone();
        let topic = topic.clone();
        async move {
            let mut r = admin
                .incremental_alter_configs(
                    [(topic.clone(), ops)].into_iter().collect(),
                    &AlterConfigsOptions {
                        validate_only,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            r.remove(&topic).unwrap()
        }
    };
    let changes = vec![
        AlterConfigOp::set("retention.ms", "2000"),
        AlterConfigOp::append("cleanup.policy", "compact"),
    ];
    alter(changes.clone(), true).await.unwrap();
    assert_eq!(
        describe(false)
            .await
            .get("retention.ms")
            .unwrap()
            .value
            .as_deref(),
        Some("1000")
    );
    alter(changes, false).await.unwrap();
    let c = describe(false).await;
    assert_eq!(
        c.get("retention.ms").unwrap().value.as_deref(),
        Some("2000")
    );
    let policy = c.get("cleanup.policy").unwrap();
    assert_eq!(policy.value.as_deref(), Some("delete,compact"));
    assert_eq!(policy.source, ConfigSource::DynamicTopicConfig);
    alter(
        vec![AlterConfigOp::subtract("cleanup.policy", "delete")],
        false,
    )
    .await
    .unwrap();
    alter(vec![AlterConfigOp::delete("retention.ms")], false)
        .await
        .unwrap();
    let c = describe(true).await;
    assert_eq!(
        c.get("cleanup.policy").unwrap().value.as_deref(),
        Some("compact")
    );
    let retention = c.get("retention.ms").unwrap();
    assert_eq!(retention.source, ConfigSource::DefaultConfig);
    assert_eq!(retention.value.as_deref(), Some("604800000"));

    // Per-resource errors keep their codes; a bad change leaves the resource unchanged.
    let err = alter(vec![AlterConfigOp::set("retention.ms", "soon")], false).await;
    assert_eq!(code(&err), Some(ErrorCode::InvalidConfig));
    let missing = admin
        .incremental_alter_configs(
            [(
                ConfigResource::topic("missing"),
                vec![AlterConfigOp::set("retention.ms", "1")],
            )]
            .into_iter()
            .collect(),
            &AlterConfigsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        code(&missing[&ConfigResource::topic("missing")]),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(
        describe(false).await.get("retention.ms").unwrap().source,
        ConfigSource::DefaultConfig
    );
    broker.shutdown().await;
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Produces `values` to partition 0 of `topic` with the given timestamps.
async fn produce_at(bootstrap: &str, topic: &str, timestamps: &[i64]) {
    let p = producer(config(bootstrap));
    let mut futs = Vec::new();
    for (i, ts) in timestamps.iter().enumerate() {
        futs.push(
            send(
                &p,
                ProducerRecord {
                    topic: topic.to_owned(),
                    partition: Some(0),
                    key: None,
                    value: Some(Bytes::from(format!("v{i}"))),
                    headers: Vec::new(),
                    timestamp: Some(*ts),
                },
            )
            .await,
        );
    }
    delivered_all(futs).await;
    close(&p).await;
}

#[tokio::test]
async fn list_offsets_after_producing() {
    let broker = broker_with_topic("o", 2, &[]).await;
    let bootstrap = broker.bootstrap_servers();
    let base = now_ms() - 60_000;
    // Offsets 0..4 with timestamps base, base+30, base+10, base+20: the largest is offset 1.
    produce_at(&bootstrap, "o", &[base, base + 30, base + 10, base + 20]).await;
    let admin = admin(&bootstrap);
    let specs: BTreeMap<TopicPartition, OffsetSpec> = [
        (tp("o", 0), OffsetSpec::Latest),
        (tp("o", 1), OffsetSpec::Latest),
        (tp("o", 5), OffsetSpec::Latest),
        (tp("missing", 0), OffsetSpec::Earliest),
    ]
    .into_iter()
    .collect();
    // As Java: a topic that does not exist is answered at once; a partition the metadata
    // does not list is retried (it may be one being created) until the call's timeout.
    let short = ListOffsetsOptions {
        timeout: Some(Duration::from_millis(800)),
        ..Default::default()
    };
    let r = promptly("listOffsets", admin.list_offsets(specs, &short))
        .await
        .unwrap();
    assert_eq!(r[&tp("o", 0)].as_ref().unwrap().offset, 4);
    assert_eq!(r[&tp("o", 1)].as_ref().unwrap().offset, 0);
    match &r[&tp("o", 5)] {
        Err(Error::Timeout(m)) => assert!(m.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{m}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        code(&r[&tp("missing", 0)]),
        Some(ErrorCode::UnknownTopicOrPartition)
    );

    let one = |spec: OffsetSpec| {
        let admin = admin.clone();
        async move {
            let mut r = admin
                .list_offsets(
                    [(tp("o", 0), spec)].into_iter().collect(),
                    &ListOffsetsOptions::default(),
                )
                .await
                .unwrap();
            r.remove(&tp("o", 0)).unwrap().unwrap()
        }
    };
    assert_eq!(one(OffsetSpec::Earliest).await.offset, 0);
    let max = one(OffsetSpec::MaxTimestamp).await;
    assert_eq!((max.offset, max.timestamp), (1, base + 30));
    assert_eq!(max.leader_epoch, Some(0));
    let at = one(OffsetSpec::ForTimestamp(base + 15)).await;
    assert_eq!((at.offset, at.timestamp), (1, base + 30));
    let at = one(OffsetSpec::ForTimestamp(base)).await;
    assert_eq!((at.offset, at.timestamp), (0, base));
    assert_eq!(one(OffsetSpec::ForTimestamp(base + 31)).await.offset, -1);
    broker.shutdown().await;
}

#[tokio::test]
async fn delete_records_moves_the_log_start() {
    let broker = broker_with_topic("r", 1, &[]).await;
    let bootstrap = broker.bootstrap_servers();
    let base = now_ms();
    produce_at(&bootstrap, "r", &[base, base, base, base, base]).await;
    let admin = admin(&bootstrap);
    let before: BTreeMap<TopicPartition, i64> = [(tp("r", 0), 2), (tp("missing", 0), 1)]
        .into_iter()
        .collect();
    // As Java's deleteRecords, a topic that does not exist is retried until the timeout.
    let short = DeleteRecordsOptions {
        timeout: Some(Duration::from_millis(800)),
    };
    let r = promptly("deleteRecords", admin.delete_records(before, &short))
        .await
        .unwrap();
    match &r[&tp("missing", 0)] {
        Err(Error::Timeout(m)) => assert!(m.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{m}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(r[&tp("r", 0)], Ok(DeletedRecords { low_watermark: 2 }));
    let earliest = admin
        .list_offsets(
            [(tp("r", 0), OffsetSpec::Earliest)].into_iter().collect(),
            &ListOffsetsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(earliest[&tp("r", 0)].as_ref().unwrap().offset, 2);
    let beyond = admin
        .delete_records(
            [(tp("r", 0), 99)].into_iter().collect(),
            &DeleteRecordsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        code(&beyond[&tp("r", 0)]),
        Some(ErrorCode::OffsetOutOfRange)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn consumer_group_life_through_the_admin_client() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    create_topic(&broker, "g", 2, &[]).await;
    let p = producer(config(&bootstrap));
    produce_all(&p, "g", 2, 5).await;
    close(&p).await;
    let admin = admin(&bootstrap);
    let group_config = || {
        ConsumerConfig::builder()
            .bootstrap_servers(&bootstrap)
            .group_id("grp")
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "200")
    };

    // A member reads everything and commits.
    let c = consumer(group_config().client_id("member-1"));
    c.subscribe(&["g"]).unwrap();
    let mut read = 0;
    promptly("read all", async {
        while read < 10 {
            read += c.poll(Duration::from_millis(200)).await.unwrap().len();
        }
    })
    .await;
    c.commit_sync(None).await.unwrap();

    let listed = admin
        .list_consumer_groups(&ListConsumerGroupsOptions::default())
        .await
        .unwrap();
    assert!(listed.errors.is_empty());
    let g = listed.groups.iter().find(|g| g.group_id == "grp").unwrap();
    assert_eq!(g.state, Some(GroupState::Stable));
    assert!(!g.is_simple_consumer_group);
    let empty_only = admin
        .list_consumer_groups(&ListConsumerGroupsOptions {
            states: vec![GroupState::Empty],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(empty_only.groups.iter().all(|g| g.group_id != "grp"));
    // broker-lite's groups are classic ones (ListGroups v5 types filter).
    let by_type = |types: Vec<GroupType>| {
        let admin = admin.clone();
        async move {
            admin
                .list_consumer_groups(&ListConsumerGroupsOptions {
                    types,
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };
    let classic = by_type(vec![GroupType::Classic]).await;
    assert!(classic.errors.is_empty(), "{:?}", classic.errors);
    let g = classic.groups.iter().find(|g| g.group_id == "grp").unwrap();
    assert_eq!(g.group_type, Some(GroupType::Classic));
    let kip848 = by_type(vec![GroupType::Consumer]).await;
    assert!(kip848.errors.is_empty(), "{:?}", kip848.errors);
    assert!(kip848.groups.is_empty(), "{:?}", kip848.groups);

    let described = admin
        .describe_consumer_groups(["grp", "nobody"], &DescribeConsumerGroupsOptions::default())
        .await
        .unwrap();
    let d = described["grp"].as_ref().unwrap();
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.partition_assignor, "range");
    assert_eq!(d.coordinator.address(), bootstrap);
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].client_id, "member-1");
    assert_eq!(d.members[0].assignment, [tp("g", 0), tp("g", 1)]);
    let nobody = described["nobody"].as_ref().unwrap();
    assert_eq!(nobody.state, GroupState::Dead);
    assert!(nobody.members.is_empty());

    let offsets = admin
        .list_consumer_group_offsets("grp", &ListConsumerGroupOffsetsOptions::default())
        .await
        .unwrap();
    assert_eq!(offsets.len(), 2);
    for p in 0..2 {
        assert_eq!(
            offsets[&tp("g", p)]
                .as_ref()
                .unwrap()
                .as_ref()
                .unwrap()
                .offset,
            5
        );
    }

    // While the member runs: no admin commit, no deletion.
    let new_offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = [
        (tp("g", 0), OffsetAndMetadata::new(1)),
        (tp("g", 1), OffsetAndMetadata::new(2)),
    ]
    .into_iter()
    .collect();
    let refused = admin
        .alter_consumer_group_offsets(
            "grp",
            new_offsets.clone(),
            &AlterConsumerGroupOffsetsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        code(&refused[&tp("g", 0)]),
        Some(ErrorCode::UnknownMemberId)
    );
    let refused = admin
        .delete_consumer_groups(["grp"], &DeleteConsumerGroupsOptions::default())
        .await
        .unwrap();
    assert_eq!(code(&refused["grp"]), Some(ErrorCode::NonEmptyGroup));
    let subscribed = admin
        .delete_consumer_group_offsets("grp", &[tp("g", 0)], &Default::default())
        .await
        .unwrap();
    assert_eq!(
        code(&subscribed[&tp("g", 0)]),
        Some(ErrorCode::GroupSubscribedToTopic)
    );

    promptly("close", c.close()).await.unwrap();
    let d = admin
        .describe_consumer_groups(["grp"], &DescribeConsumerGroupsOptions::default())
        .await
        .unwrap();
    let d = d["grp"].as_ref().unwrap();
    assert_eq!(d.state, GroupState::Empty);
    assert!(d.members.is_empty());

    // The group is empty: rewind it, and a new member starts from there.
    let altered = admin
        .alter_consumer_group_offsets("grp", new_offsets, &Default::default())
        .await
        .unwrap();
    assert!(altered.values().all(Result::is_ok), "{altered:?}");
    let c = consumer(group_config().client_id("member-2"));
    c.subscribe(&["g"]).unwrap();
    let mut firsts: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    promptly("read from the altered offsets", async {
        while count < 7 {
            for r in c.poll(Duration::from_millis(200)).await.unwrap() {
                firsts.entry(r.partition).or_insert(r.offset);
                count += 1;
            }
        }
    })
    .await;
    assert_eq!(firsts, [(0, 1), (1, 2)].into_iter().collect());
    assert_eq!(count, 7);
    // Nothing committed by member-2 (no auto commit): the offsets stay as altered.
    promptly("close", c.close()).await.unwrap();

    let deleted = admin
        .delete_consumer_group_offsets("grp", &[tp("g", 0)], &Default::default())
        .await
        .unwrap();
    assert_eq!(deleted[&tp("g", 0)], Ok(()));
    let offsets = admin
        .list_consumer_group_offsets(
            "grp",
            &ListConsumerGroupOffsetsOptions {
                partitions: Some(vec![tp("g", 0), tp("g", 1)]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(offsets[&tp("g", 0)], Ok(None));
    assert_eq!(
        offsets[&tp("g", 1)]
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .offset,
        2
    );
    let unknown = admin
        .delete_consumer_group_offsets("nobody", &[tp("g", 0)], &Default::default())
        .await;
    assert_eq!(
        unknown.unwrap_err().code(),
        Some(ErrorCode::GroupIdNotFound)
    );

    let deleted = admin
        .delete_consumer_groups(["grp", "nobody"], &DeleteConsumerGroupsOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted["grp"], Ok(()));
    assert_eq!(code(&deleted["nobody"]), Some(ErrorCode::GroupIdNotFound));
    let listed = admin
        .list_consumer_groups(&ListConsumerGroupsOptions::default())
        .await
        .unwrap();
    assert!(listed.groups.iter().all(|g| g.group_id != "grp"));
    broker.shutdown().await;
}

#[tokio::test]
async fn routing_errors_and_dropped_connections_are_retried() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let faults = broker.faults();
    let admin = admin(&bootstrap);

    // The controller moved twice, then the topic is created; later a genuine per-topic
    // error is not retried.
    faults.push_error(ApiKey::CreateTopics, ErrorCode::NotController);
    faults.push_error(ApiKey::CreateTopics, ErrorCode::NotController);
    let created = promptly(
        "create through NOT_CONTROLLER",
        admin.create_topics([NewTopic::new("x", 2, 1)], &CreateTopicsOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(created["x"].as_ref().unwrap().num_partitions, Some(2));
    faults.push_error(ApiKey::CreateTopics, ErrorCode::TopicAlreadyExists);
    let again = admin
        .create_topics([NewTopic::new("y", 1, 1)], &CreateTopicsOptions::default())
        .await
        .unwrap();
    assert_eq!(code(&again["y"]), Some(ErrorCode::TopicAlreadyExists));

    // A leader change on one partition is retried for that partition only.
    produce_at(&bootstrap, "x", &[now_ms()]).await;
    faults.push_partition_error(ApiKey::ListOffsets, "x", 0, ErrorCode::NotLeaderOrFollower);
    let offsets = admin
        .list_offsets(
            [
                (tp("x", 0), OffsetSpec::Latest),
                (tp("x", 1), OffsetSpec::Latest),
            ]
            .into_iter()
            .collect(),
            &ListOffsetsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(offsets[&tp("x", 0)].as_ref().unwrap().offset, 1);
    assert_eq!(offsets[&tp("x", 1)].as_ref().unwrap().offset, 0);

    // The coordinator is loading, then the connection breaks: the group is still described.
    faults.push_error(ApiKey::DescribeGroups, ErrorCode::CoordinatorLoadInProgress);
    faults.drop_connection_after(ApiKey::DescribeGroups, 1);
    let d = promptly(
        "describe through retries",
        admin.describe_consumer_groups(["nobody"], &DescribeConsumerGroupsOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(d["nobody"].as_ref().unwrap().state, GroupState::Dead);

    // A retriable error that never clears ends at the call's timeout, naming it.
    let short = CreateTopicsOptions {
        timeout: Some(Duration::from_millis(600)),
        ..Default::default()
    };
    for _ in 0..50 {
        faults.push_error(ApiKey::CreateTopics, ErrorCode::NotController);
    }
    let timed_out = admin
        .create_topics([NewTopic::new("z", 1, 1)], &short)
        .await
        .unwrap();
    match &timed_out["z"] {
        Err(Error::Timeout(m)) => assert!(m.contains("NOT_CONTROLLER"), "{m}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    faults.clear();
    broker.shutdown().await;
}

#[tokio::test]
async fn leader_calls_retry_unknown_topic_or_partition_as_java() {
    let broker = group_broker().await;
    let bootstrap = broker.bootstrap_servers();
    let faults = broker.faults();
    let admin = admin(&bootstrap);
    let created = admin
        .create_topics([NewTopic::new("u", 1, 1)], &CreateTopicsOptions::default())
        .await
        .unwrap();
    assert!(created["u"].is_ok(), "{:?}", created["u"]);
    produce_at(&bootstrap, "u", &[now_ms(), now_ms()]).await;

    // The leader does not know the partition yet, twice: ListOffsets asks again.
    for _ in 0..2 {
        faults.push_partition_error(
            ApiKey::ListOffsets,
            "u",
            0,
            ErrorCode::UnknownTopicOrPartition,
        );
    }
    let offsets = promptly(
        "listOffsets through UNKNOWN_TOPIC_OR_PARTITION",
        admin.list_offsets(
            [(tp("u", 0), OffsetSpec::Latest)].into_iter().collect(),
            &ListOffsetsOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(offsets[&tp("u", 0)].as_ref().unwrap().offset, 2);

    // The same for DeleteRecords...
    faults.push_error(ApiKey::DeleteRecords, ErrorCode::UnknownTopicOrPartition);
    let deleted = promptly(
        "deleteRecords through UNKNOWN_TOPIC_OR_PARTITION",
        admin.delete_records(
            [(tp("u", 0), 1)].into_iter().collect(),
            &DeleteRecordsOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        deleted[&tp("u", 0)],
        Ok(DeletedRecords { low_watermark: 1 })
    );
    faults.clear();

    // ...which also waits for a topic that is being created: once it has looked the topic up
    // (its Metadata request takes the injected UNKNOWN_TOPIC_OR_PARTITION, the answer for a
    // missing topic), the topic is created.
    faults.push_error(ApiKey::Metadata, ErrorCode::UnknownTopicOrPartition);
    let waiting = tokio::spawn({
        let admin = admin.clone();
        async move {
            admin
                .delete_records(
                    [(tp("late", 0), -1)].into_iter().collect(),
                    &DeleteRecordsOptions::default(),
                )
                .await
        }
    });
    promptly("deleteRecords looks the topic up", async {
        while faults.is_armed() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    let created = admin
        .create_topics(
            [NewTopic::new("late", 1, 1)],
            &CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    assert!(created["late"].is_ok(), "{:?}", created["late"]);
    let deleted = promptly("deleteRecords on a new topic", waiting)
        .await
        .expect("task")
        .unwrap();
    assert_eq!(
        deleted[&tp("late", 0)],
        Ok(DeletedRecords { low_watermark: 0 })
    );
    broker.shutdown().await;
}
