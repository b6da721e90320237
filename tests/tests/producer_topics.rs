//! Topics the producer has not seen: metadata is fetched on first use; a missing topic is
//! auto-created when both the broker (`auto.create.topics.enable`) and the producer
//! (`allow.auto.create.topics`) allow it, otherwise `send` times out after `max.block.ms`
//! naming the topic, and nothing is created.

mod producer_common;

use std::time::Duration;

use broker_lite::Broker;
use kafka_client::ProducerRecord;
use kafka_integration_tests::broker_api;
use producer_common::*;

/// Whether the broker has `topic`, and its partition count.
async fn partition_count(broker: &Broker, topic: &str) -> Option<usize> {
    let mut c = broker_api::connect(&broker.bootstrap_servers()).await;
    let m = broker_api::metadata(&mut c, Some(&[topic])).await;
    let t = &m.topics[0];
    (t.error_code == 0).then_some(t.partitions.len())
}

#[tokio::test]
async fn send_to_a_missing_topic_auto_creates_it() {
    let broker = Broker::builder()
        .config("auto.create.topics.enable", "true")
        .unwrap()
        .config("num.partitions", "3")
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(partition_count(&broker, "auto").await, None);
    let p = producer(config(&broker.bootstrap_servers()));
    let mut futs = Vec::new();
    for i in 0..30 {
        futs.push(
            send(
                &p,
                ProducerRecord::new("auto", format!("{i}")).with_key(format!("{i}")),
            )
            .await,
        );
    }
    let mds = delivered_all(futs).await;
    assert!(mds.iter().all(|m| (0..3).contains(&m.partition)));
    let partitions = promptly("partitions_for", p.partitions_for("auto"))
        .await
        .unwrap();
    assert_eq!(partitions.len(), 3);
    close(&p).await;

    assert_eq!(
        partition_count(&broker, "auto").await,
        Some(3),
        "created with num.partitions"
    );
    let stored: usize = all_records(&broker, "auto", 3)
        .await
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(stored, 30);
}

#[tokio::test]
async fn allow_auto_create_topics_false_makes_send_time_out() {
    let broker = start_broker().await; // auto.create.topics.enable defaults to true
    let p = producer(
        config(&broker.bootstrap_servers())
            .allow_auto_create_topics(false)
            .max_block(Duration::from_millis(500)),
    );
    let err = promptly("send", p.send(ProducerRecord::new("not-created", "v")))
        .await
        .unwrap_err();
    assert_timeout(&err, "not-created");
    close(&p).await;
    assert_eq!(partition_count(&broker, "not-created").await, None);
}

#[tokio::test]
async fn broker_auto_create_off_makes_send_time_out() {
    let broker = Broker::builder()
        .config("auto.create.topics.enable", "false")
        .unwrap()
        .start()
        .await
        .unwrap();
    let p = producer(config(&broker.bootstrap_servers()).max_block(Duration::from_millis(500)));
    let err = promptly("send", p.send(ProducerRecord::new("missing", "v")))
        .await
        .unwrap_err();
    assert_timeout(&err, "missing");
    assert_eq!(partition_count(&broker, "missing").await, None);

    // Once the topic exists, the same producer finds it (metadata is asked for again).
    create_topic(&broker, "missing", 2, &[]).await;
    let md = delivered(send(&p, ProducerRecord::new("missing", "v").with_partition(1)).await).await;
    assert_eq!((md.partition, md.offset), (1, 0));
    close(&p).await;
    let values: Vec<String> = records(&broker, "missing", 1)
        .await
        .iter()
        .map(value_str)
        .collect();
    assert_eq!(values, ["v"]);
}
