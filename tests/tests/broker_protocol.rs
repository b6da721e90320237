//! broker-lite at the protocol level, with raw kafka-wire frames: ApiVersions negotiation
//! (every version, KIP-511 for unknown versions, KIP-511 client software names), request
//! pipelining and per-connection ordering, DescribeCluster, and malformed input (oversized,
//! negative and truncated frames, unknown API keys and versions, trailing bytes), after which
//! the broker must keep serving other connections with its data intact.

use std::time::Duration;

use broker_lite::{supported_versions, Broker};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_integration_tests::broker_api::*;
use kafka_integration_tests::RawClient;
use kafka_wire::frame::decode_response;
use kafka_wire::messages::*;
use kafka_wire::records::Compression;
use kafka_wire::{ApiKey, Decodable, ErrorCode};

/// Generous hang guard for "the broker closes the connection" checks; closing is immediate.
const CLOSE_GUARD: Duration = Duration::from_secs(10);

fn api_versions_v3() -> ApiVersionsRequest {
    ApiVersionsRequest {
        client_software_name: "kafka-rs-tests".into(),
        client_software_version: "1.0.0".into(),
        ..Default::default()
    }
}

fn served() -> Vec<(i16, i16, i16)> {
    let mut v: Vec<(i16, i16, i16)> = ApiKey::ALL
        .iter()
        .filter_map(|k| supported_versions(*k).map(|r| (k.key(), r.min, r.max)))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn api_versions_every_version_advertises_exactly_the_supported_apis() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;

    let expected = served();
    // The eleven APIs broker-lite serves, with the minimum versions its handlers document.
    let mins: Vec<(ApiKey, i16)> = vec![
        (ApiKey::Produce, 3),
        (ApiKey::Fetch, 4),
        (ApiKey::ListOffsets, 1),
        (ApiKey::Metadata, 0),
        (ApiKey::ApiVersions, 0),
        (ApiKey::CreateTopics, 2),
        (ApiKey::DeleteTopics, 1),
        (ApiKey::DescribeConfigs, 1),
        (ApiKey::CreatePartitions, 0),
        (ApiKey::IncrementalAlterConfigs, 0),
        (ApiKey::DescribeCluster, 0),
    ];
    assert!(expected.len() >= mins.len(), "served APIs: {expected:?}");
    for (api, min) in &mins {
        let r = supported_versions(*api).unwrap_or_else(|| panic!("{} not served", api.name()));
        assert_eq!(r.min, *min, "{}", api.name());
        assert!(r.max >= r.min);
    }

    let max = supported_versions(ApiKey::ApiVersions).unwrap().max;
    assert!(max >= 3);
    for v in 0..=max {
        let req = if v >= 3 {
            api_versions_v3()
        } else {
            ApiVersionsRequest::default()
        };
        let r = c.send(req, v).await.unwrap();
        assert_eq!(r.error_code, 0, "v{v}");
        let mut got: Vec<(i16, i16, i16)> = r
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        got.sort();
        assert_eq!(got, expected, "ApiVersions v{v}");
    }
    broker.shutdown().await;
}

/// KIP-511: an ApiVersions request at a version the broker does not know is answered in the
/// v0 format (response header v0, v0 body) with UNSUPPORTED_VERSION and the broker's ranges,
/// and the connection stays usable.
#[tokio::test]
async fn api_versions_unknown_version_gets_v0_unsupported_version_response() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;

    let client_id = b"raw-client";
    let mut body = BytesMut::new();
    body.put_i16(18); // ApiVersions
    body.put_i16(99); // version
    body.put_i32(7); // correlation id
    body.put_i16(client_id.len() as i16);
    body.put_slice(client_id);
    body.put_u8(0); // header v2: empty tagged fields
    body.put_slice(&[
        0x0b, b'f', b'u', b't', b'u', b'r', b'e', b'-', b'c', b'l', b'i', 0x02, b'9', 0x00, 0xff,
    ]);
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    c.write_raw(&frame).await.unwrap();

    let mut resp = c.read_frame().await.unwrap();
    assert_eq!(
        resp.get_i32(),
        7,
        "response header v0: the correlation id only"
    );
    let r = ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert!(
        !resp.has_remaining(),
        "{} bytes after the v0 body",
        resp.remaining()
    );
    assert_eq!(r.error_code, ErrorCode::UnsupportedVersion.code());
    assert!(!r.api_keys.is_empty());
    let own = r
        .api_keys
        .iter()
        .find(|k| k.api_key == 18)
        .expect("ApiVersions' own range");
    assert_eq!(
        own.max_version,
        supported_versions(ApiKey::ApiVersions).unwrap().max
    );

    // The connection is still open and in sync.
    let r = c.send(api_versions_v3(), 3).await.unwrap();
    assert_eq!(r.error_code, 0);
    broker.shutdown().await;
}

/// KIP-511: v3+ client software name and version must match
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`, else INVALID_REQUEST.
#[tokio::test]
async fn api_versions_v3_rejects_invalid_client_software_fields() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    for (name, version) in [
        ("-bad", "1.0"),
        ("good", "1.0-"),
        ("a b", "1"),
        ("", "1"),
        ("ok", ""),
    ] {
        let req = ApiVersionsRequest {
            client_software_name: name.into(),
            client_software_version: version.into(),
            ..Default::default()
        };
        let r = c.send(req, 3).await.unwrap();
        assert_eq!(
            r.error_code,
            ErrorCode::InvalidRequest.code(),
            "{name:?} {version:?}"
        );
    }
    // Below v3 the fields do not exist, so nothing is validated.
    assert_eq!(
        c.send(ApiVersionsRequest::default(), 2)
            .await
            .unwrap()
            .error_code,
        0
    );
    assert_eq!(c.send(api_versions_v3(), 4).await.unwrap().error_code, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn describe_cluster_lists_this_broker_as_controller() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let bootstrap = broker.bootstrap_servers();
    let mut c = connect(&bootstrap).await;
    let m = metadata(&mut c, None).await;
    for v in [0, 1] {
        let r = c
            .send(
                DescribeClusterRequest {
                    include_cluster_authorized_operations: true,
                    ..Default::default()
                },
                v,
            )
            .await
            .unwrap();
        assert_eq!(r.error_code, 0);
        assert_eq!(Some(r.cluster_id.clone()), m.cluster_id);
        assert_eq!(r.controller_id, 1);
        assert_eq!(r.brokers.len(), 1);
        let b = &r.brokers[0];
        assert_eq!(
            (b.broker_id, format!("{}:{}", b.host, b.port)),
            (1, bootstrap.clone())
        );
        assert_ne!(r.cluster_authorized_operations, i32::MIN);
    }
    // A broker does not list controller endpoints (KIP-919).
    let r = c
        .send(
            DescribeClusterRequest {
                endpoint_type: 2,
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
    assert_eq!(r.error_code, ErrorCode::UnsupportedEndpointType.code());
    broker.shutdown().await;
}

/// Kafka answers the requests of one connection in order. 50 requests of several APIs are
/// written back to back before anything is read, acks=0 produces among them (which get no
/// response); every other request gets its response, in request order.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "pipe", 1, &[]).await;

    let mut out = BytesMut::new();
    let mut expected: Vec<(i32, ApiKey, i16)> = Vec::new();
    let mut acks0 = 0;
    for i in 0..50i32 {
        let corr = 1000 + i;
        match i % 5 {
            0 => {
                out.extend_from_slice(&request_frame(
                    MetadataRequest {
                        topics: None,
                        allow_auto_topic_creation: false,
                        ..Default::default()
                    },
                    12,
                    corr,
                ));
                expected.push((corr, ApiKey::Metadata, 12));
            }
            1 => {
                out.extend_from_slice(&request_frame(api_versions_v3(), 3, corr));
                expected.push((corr, ApiKey::ApiVersions, 3));
            }
            2 => {
                let acks = if i % 10 == 2 { 0 } else { 1 };
                let req = produce_request(
                    "pipe",
                    0,
                    value_batch(&format!("p{i}"), 2, Compression::None, 1_000),
                    acks,
                );
                out.extend_from_slice(&request_frame(req, 9, corr));
                if acks == 0 {
                    acks0 += 1;
                } else {
                    expected.push((corr, ApiKey::Produce, 9));
                }
            }
            3 => {
                out.extend_from_slice(&request_frame(
                    fetch_request("pipe", 0, 0, 1 << 20, 0),
                    12,
                    corr,
                ));
                expected.push((corr, ApiKey::Fetch, 12));
            }
            _ => {
                let req = ListOffsetsRequest {
                    replica_id: -1,
                    topics: vec![
                        kafka_wire::messages::list_offsets_request::ListOffsetsTopic {
                            name: "pipe".into(),
                            partitions: vec![
                                kafka_wire::messages::list_offsets_request::ListOffsetsPartition {
                                    partition_index: 0,
                                    timestamp: -1,
                                    ..Default::default()
                                },
                            ],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                };
                out.extend_from_slice(&request_frame(req, 7, corr));
                expected.push((corr, ApiKey::ListOffsets, 7));
            }
        }
    }
    assert_eq!(acks0, 5);
    c.write_raw(&out).await.unwrap();

    let mut last = i32::MIN;
    for (corr, api, version) in &expected {
        let frame = c.read_frame().await.unwrap();
        let got = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(got, *corr, "responses out of order");
        assert!(got > last);
        last = got;
        let (h, _) = decode_response(frame, *api, *version).expect("response decodes");
        assert_eq!(h.correlation_id, *corr);
    }
    // Nothing else is pending: the next request gets the next response.
    let r = c.send(api_versions_v3(), 3).await.unwrap();
    assert_eq!(r.error_code, 0);
    // Every produce (acks 0 and 1) was applied, in order.
    assert_eq!(offset_for(&mut c, "pipe", 0, -1).await, 20);
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Malformed input: Kafka's SocketServer closes the connection; nothing else is affected.
// ---------------------------------------------------------------------------------------------

/// Starts a broker with `socket.request.max.bytes` = 1 MiB and a topic with data, runs
/// `bad` on a fresh connection and checks that the broker closed it, that a new connection
/// works, and that the data is intact.
async fn closes_connection_and_keeps_serving(bad: Bytes) {
    let broker = Broker::builder()
        .config("socket.request.max.bytes", "1048576")
        .unwrap()
        .start()
        .await
        .unwrap();
    let addr = broker.bootstrap_servers();
    let mut c = connect(&addr).await;
    create_topic(&mut c, "keep", 1, &[]).await;
    produce_ok(
        &mut c,
        "keep",
        0,
        value_batch("before", 3, Compression::None, 1_000),
    )
    .await;

    let mut victim = connect(&addr).await;
    // The victim connection works before the bad frame.
    assert_eq!(
        victim.send(api_versions_v3(), 3).await.unwrap().error_code,
        0
    );
    victim.write_raw(&bad).await.unwrap();
    assert!(
        victim.is_closed_by_peer(CLOSE_GUARD).await,
        "the broker must close the connection"
    );

    // The existing connection and a fresh one both still work; the data is intact.
    assert_eq!(c.send(api_versions_v3(), 3).await.unwrap().error_code, 0);
    let mut fresh = connect(&addr).await;
    let batches = fetch_all(&mut fresh, "keep", 0, 0).await;
    let values: Vec<Bytes> = records_of(&batches)
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    assert_eq!(
        values,
        vec![
            Bytes::from("before-0"),
            Bytes::from("before-1"),
            Bytes::from("before-2")
        ]
    );
    produce_ok(
        &mut fresh,
        "keep",
        0,
        value_batch("after", 1, Compression::None, 2_000),
    )
    .await;
    assert_eq!(offset_for(&mut fresh, "keep", 0, -1).await, 4);
    broker.shutdown().await;
}

fn with_size_prefix(body: &[u8]) -> Bytes {
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.put_slice(body);
    f.freeze()
}

#[tokio::test]
async fn oversized_size_prefix_closes_the_connection() {
    // 2^30 > socket.request.max.bytes: refused from the prefix alone, before any body.
    let mut f = BytesMut::new();
    f.put_i32(1 << 30);
    f.put_slice(&[0u8; 16]);
    closes_connection_and_keeps_serving(f.freeze()).await;
}

#[tokio::test]
async fn negative_size_prefix_closes_the_connection() {
    let mut f = BytesMut::new();
    f.put_i32(-5);
    f.put_slice(&[0u8; 16]);
    closes_connection_and_keeps_serving(f.freeze()).await;
}

#[tokio::test]
async fn unknown_api_key_closes_the_connection() {
    let mut body = BytesMut::new();
    body.put_i16(32000);
    body.put_i16(0);
    body.put_i32(1);
    body.put_i16(3);
    body.put_slice(b"bad");
    body.put_slice(&[0, 0, 0, 0]);
    closes_connection_and_keeps_serving(with_size_prefix(&body)).await;
}

/// Produce v0-2 were removed in Kafka 4.0 (and broker-lite serves record format v2 only): an
/// unsupported version of any API but ApiVersions closes the connection.
#[tokio::test]
async fn unsupported_version_closes_the_connection() {
    let req = produce_request(
        "keep",
        0,
        value_batch("old", 1, Compression::None, 1_000),
        1,
    );
    assert!(supported_versions(ApiKey::Produce).unwrap().min > 2);
    closes_connection_and_keeps_serving(request_frame(req, 2, 9).freeze()).await;
}

#[tokio::test]
async fn api_not_served_closes_the_connection() {
    // A real API that broker-lite does not serve (not advertised), at a version it exists in;
    // the connection is closed before the body is looked at.
    let api = *ApiKey::ALL
        .iter()
        .find(|k| supported_versions(**k).is_none())
        .expect("some API is not served");
    let mut body = BytesMut::new();
    body.put_i16(api.key());
    body.put_i16(api.valid_versions().max);
    body.put_i32(9);
    body.put_i16(3);
    body.put_slice(b"raw");
    body.put_slice(&[0, 0, 0, 0, 0, 0]);
    closes_connection_and_keeps_serving(with_size_prefix(&body)).await;
}

#[tokio::test]
async fn truncated_body_closes_the_connection() {
    let req = CreateTopicsRequest {
        topics: vec![
            kafka_wire::messages::create_topics_request::CreatableTopic {
                name: "never-created".into(),
                num_partitions: 1,
                replication_factor: 1,
                ..Default::default()
            },
        ],
        timeout_ms: 1000,
        ..Default::default()
    };
    let full = request_frame(req, 7, 9);
    // A complete frame (consistent size prefix) whose body stops half-way.
    let body = &full[4..];
    let cut = &body[..body.len() - 12];
    closes_connection_and_keeps_serving(with_size_prefix(cut)).await;
}

/// A frame holding a valid request followed by garbage. Kafka never checks that a request
/// body used the whole frame (`RequestContext.parseRequest` -> `AbstractRequest.parseRequest`
/// reads the body and ignores `buffer.remaining()`; librdkafka's flexible all-topics Metadata
/// request relies on it), so the request is answered and the connection stays open.
#[tokio::test]
async fn trailing_bytes_after_a_request_are_ignored() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let mut c = connect(&broker.bootstrap_servers()).await;
    create_topic(&mut c, "listed", 2, &[]).await;
    for (i, extra) in [&b"garbage!"[..], &[0, 0, 0][..], &[0xff][..]]
        .iter()
        .enumerate()
    {
        let corr = 900 + i as i32;
        let full = request_frame(
            MetadataRequest {
                topics: None,
                allow_auto_topic_creation: false,
                ..Default::default()
            },
            12,
            corr,
        );
        let mut body = full[4..].to_vec();
        body.extend_from_slice(extra);
        c.write_raw(&with_size_prefix(&body)).await.unwrap();
        let frame = c.read_frame().await.expect("answered, not closed");
        let (h, r) = decode_response(frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!(h.correlation_id, corr);
        let kafka_wire::ResponseBody::Metadata(m) = r else {
            panic!("not a Metadata response")
        };
        assert_eq!(m.topics.len(), 1);
        assert_eq!(m.topics[0].partitions.len(), 2);
    }
    // The connection is still in sync.
    assert_eq!(c.send(api_versions_v3(), 3).await.unwrap().error_code, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn frame_shorter_than_a_request_header_closes_the_connection() {
    closes_connection_and_keeps_serving(with_size_prefix(&[0, 3, 0])).await;
}

/// A client that connects and sends nothing, or half a frame, does not disturb others.
#[tokio::test]
async fn half_written_frame_does_not_block_other_connections() {
    let broker = Broker::start_ephemeral().await.unwrap();
    let addr = broker.bootstrap_servers();
    let mut slow = RawClient::connect(&addr).await.unwrap();
    let full = request_frame(api_versions_v3(), 3, 1);
    slow.write_raw(&full[..full.len() / 2]).await.unwrap();

    let mut c = connect(&addr).await;
    assert_eq!(c.send(api_versions_v3(), 3).await.unwrap().error_code, 0);
    create_topic(&mut c, "t", 1, &[]).await;

    // The rest of the slow frame completes it; its response arrives.
    slow.write_raw(&full[full.len() / 2..]).await.unwrap();
    let mut resp = slow.read_frame().await.unwrap();
    assert_eq!(resp.get_i32(), 1);
    broker.shutdown().await;
}

/// FindCoordinator v0-v6: this broker coordinates every group and transactional id; v4+
/// answer a batch of keys; an unknown key type or an empty key is INVALID_REQUEST.
#[tokio::test]
async fn find_coordinator_names_this_broker() {
    use kafka_wire::messages::FindCoordinatorRequest;
    let broker = broker_lite::Broker::start_ephemeral().await.unwrap();
    let addr = broker.local_addr();
    let mut c = kafka_integration_tests::RawClient::connect(&broker.bootstrap_servers())
        .await
        .unwrap();
    for v in 0..=3 {
        let r = c
            .send(
                FindCoordinatorRequest {
                    key: "g".into(),
                    key_type: if v == 0 { 0 } else { 1 },
                    ..Default::default()
                },
                v,
            )
            .await
            .unwrap();
        assert_eq!(
            (r.error_code, r.node_id, r.port),
            (0, 1, addr.port() as i32),
            "v{v}"
        );
        assert_eq!(r.host, addr.ip().to_string());
    }
    for v in 4..=6 {
        let r = c
            .send(
                FindCoordinatorRequest {
                    key_type: 0,
                    coordinator_keys: vec!["a".into(), "".into()],
                    ..Default::default()
                },
                v,
            )
            .await
            .unwrap();
        assert_eq!(r.coordinators.len(), 2);
        assert_eq!(
            (
                r.coordinators[0].key.as_str(),
                r.coordinators[0].error_code,
                r.coordinators[0].node_id
            ),
            ("a", 0, 1)
        );
        assert_eq!(
            r.coordinators[1].error_code,
            kafka_wire::ErrorCode::InvalidRequest.code()
        );
    }
    let r = c
        .send(
            FindCoordinatorRequest {
                key: "g".into(),
                key_type: 2,
                ..Default::default()
            },
            3,
        )
        .await
        .unwrap();
    assert_eq!(r.error_code, kafka_wire::ErrorCode::InvalidRequest.code());
    broker.shutdown().await;
}
