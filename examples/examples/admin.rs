//! The admin client against broker-lite in-process: create a topic (and see a per-topic
//! error keep its Kafka code), describe it and the cluster, change a config incrementally,
//! produce a few records and look up their offsets.
//!
//! ```sh
//! cargo run -p kafka-examples --example admin
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_client::admin::{
    AdminClient, AdminConfig, AlterConfigOp, AlterConfigsOptions, ConfigResource,
    CreateTopicsOptions, DescribeClusterOptions, DescribeConfigsOptions, DescribeTopicsOptions,
    ListOffsetsOptions, NewTopic, OffsetSpec,
};
use kafka_client::config::ProducerConfig;
use kafka_client::consumer::TopicPartition;
use kafka_client::producer::Producer;
use kafka_client::ProducerRecord;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let broker = broker_lite::Broker::start_ephemeral().await?;
    let bootstrap = broker.bootstrap_servers();
    let admin = AdminClient::new(AdminConfig::new(&bootstrap)?)?;

    let cluster = admin
        .describe_cluster(&DescribeClusterOptions::default())
        .await?;
    println!(
        "cluster {:?}: {} broker(s), controller {:?}",
        cluster.cluster_id,
        cluster.nodes.len(),
        cluster.controller.map(|n| n.id)
    );

    let topics = [
        NewTopic::new("events", 3, 1).config("retention.ms", "3600000"),
        NewTopic::new("too-many-replicas", 1, 3),
    ];
    for (name, result) in admin
        .create_topics(topics, &CreateTopicsOptions::default())
        .await?
    {
        match result {
            Ok(t) => println!("created {name}: {:?} partitions", t.num_partitions),
            Err(e) => println!("not created {name}: {e} (code {:?})", e.code()),
        }
    }

    let described = admin
        .describe_topics(["events"], &DescribeTopicsOptions::default())
        .await?;
    let events = described["events"].as_ref().map_err(Clone::clone)?;
    for p in &events.partitions {
        println!(
            "events-{}: leader {:?}, isr {:?}",
            p.partition,
            p.leader.as_ref().map(|n| n.id),
            p.isr.iter().map(|n| n.id).collect::<Vec<_>>()
        );
    }

    let topic = ConfigResource::topic("events");
    let changes = BTreeMap::from([(
        topic.clone(),
        vec![
            AlterConfigOp::set("retention.ms", "7200000"),
            AlterConfigOp::append("cleanup.policy", "compact"),
        ],
    )]);
    admin
        .incremental_alter_configs(changes, &AlterConfigsOptions::default())
        .await?[&topic]
        .clone()?;
    let configs = admin
        .describe_configs([topic.clone()], &DescribeConfigsOptions::default())
        .await?;
    let config = configs[&topic].as_ref().map_err(Clone::clone)?;
    for name in ["retention.ms", "cleanup.policy", "segment.bytes"] {
        if let Some(e) = config.get(name) {
            println!("{name} = {:?} ({:?})", e.value, e.source);
        }
    }

    let producer: Producer = Producer::new(ProducerConfig::new(&bootstrap)?)?;
    for i in 0..5 {
        let record = ProducerRecord {
            topic: "events".to_owned(),
            partition: Some(0),
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("event {i}"))),
            headers: Vec::new(),
            timestamp: None,
        };
        producer.send(record).await?.await?;
    }
    producer.close(std::time::Duration::from_secs(10)).await?;

    let p0 = TopicPartition {
        topic: "events".into(),
        partition: 0,
    };
    for spec in [
        OffsetSpec::Earliest,
        OffsetSpec::Latest,
        OffsetSpec::MaxTimestamp,
    ] {
        let r = admin
            .list_offsets(
                BTreeMap::from([(p0.clone(), spec)]),
                &ListOffsetsOptions::default(),
            )
            .await?;
        println!("events-0 {spec:?}: {:?}", r[&p0]);
    }

    admin.close();
    broker.shutdown().await;
    Ok(())
}
