//! Shutting broker-lite down while a Fetch long-polls: the fetch is answered at once (with
//! what it has) instead of holding the connection, and therefore the shutdown, until
//! `max_wait_ms`.

use std::time::{Duration, Instant};

use kafka_integration_tests::broker_api;

#[tokio::test]
async fn shutdown_answers_long_polling_fetches_at_once() {
    let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
    let mut c = broker_api::connect(&broker.bootstrap_servers()).await;
    broker_api::create_topic(&mut c, "idle", 1, &[]).await;
    // A fetch at the end of an empty log, allowed to wait 60 s.
    let fetch = tokio::spawn(async move {
        let req = broker_api::fetch_request("idle", 0, 0, 1 << 20, 60_000);
        c.send(req, broker_api::FETCH_VERSION).await
    });
    // Give the request time to reach the broker; it must then be parked in its long poll
    // (nothing can answer it for 60 s), which is what the shutdown has to cut short.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !fetch.is_finished(),
        "the fetch is long-polling before the shutdown"
    );
    let started = Instant::now();
    broker.shutdown().await;
    let waited = started.elapsed();
    let resp = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .expect("the fetch is answered")
        .unwrap()
        .expect("a response, not a dropped connection");
    assert_eq!(resp.error_code, 0);
    assert!(
        waited < Duration::from_secs(30),
        "shutdown waited {waited:?} for a long poll"
    );
}
