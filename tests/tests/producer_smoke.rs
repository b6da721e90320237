//! Quick end-to-end check of the producer against broker-lite.

use std::time::Duration;

use kafka_client::config::ProducerConfig;
use kafka_client::producer::Producer;
use kafka_client::ProducerRecord;
use kafka_integration_tests::broker_api;

#[tokio::test]
async fn produce_non_idempotent_and_read_back() {
    let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
    let mut c = broker_api::connect(&broker.bootstrap_servers()).await;
    broker_api::create_topic(&mut c, "t", 3, &[]).await;
    let config = ProducerConfig::builder()
        .bootstrap_servers(broker.bootstrap_servers())
        .set("enable.idempotence", "false")
        .build()
        .unwrap();
    let producer = Producer::new(config).unwrap();
    let mut futs = Vec::new();
    for i in 0..1000 {
        let rec =
            ProducerRecord::new("t", format!("value-{i}")).with_key(format!("key-{}", i % 10));
        futs.push(producer.send(rec).await.unwrap());
    }
    let mut n = 0;
    for f in futs {
        let md = tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .unwrap()
            .unwrap();
        assert!(md.offset >= 0);
        n += 1;
    }
    assert_eq!(n, 1000);
    producer.close(Duration::from_secs(5)).await.unwrap();
}
