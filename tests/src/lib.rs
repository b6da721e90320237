//! Shared helpers for the cross-crate integration and interop tests in `tests/tests/`.
//!
//! [`RawClient`] speaks the Kafka protocol with nothing but `kafka-wire`: it sends one typed
//! request at a chosen version and decodes the typed response, so tests can drive every API
//! and version of broker-lite, including malformed frames.

pub mod interop;

use bytes::{Buf, Bytes, BytesMut};
use kafka_wire::frame::{encode_request, split_frame, DEFAULT_MAX_FRAME_SIZE};
use kafka_wire::messages::{RequestHeader, ResponseHeader};
use kafka_wire::records::{BatchOptions, Compression, RecordBatchBuilder};
use kafka_wire::{Decodable, Request, RequestBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Any error in a test helper.
pub type TestError = Box<dyn std::error::Error + Send + Sync>;

/// A minimal Kafka connection for tests.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    correlation_id: i32,
    rbuf: BytesMut,
}

impl RawClient {
    /// Connects to `addr` (`host:port`).
    pub async fn connect(addr: &str) -> Result<RawClient, TestError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            correlation_id: 0,
            rbuf: BytesMut::new(),
        })
    }

    /// Sends `req` at `version` and returns the decoded response.
    pub async fn send<R>(&mut self, req: R, version: i16) -> Result<R::Response, TestError>
    where
        R: Request + Into<RequestBody>,
    {
        self.correlation_id += 1;
        let correlation_id = self.correlation_id;
        let header = RequestHeader {
            request_api_key: R::API_KEY.key(),
            request_api_version: version,
            correlation_id,
            client_id: Some("kafka-rs-tests".into()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &req.into())?;
        self.stream.write_all(&out).await?;
        let mut frame = self.read_frame().await?;
        let h = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
        if h.correlation_id != correlation_id {
            return Err(format!("correlation id {} != {correlation_id}", h.correlation_id).into());
        }
        let resp = R::Response::decode(&mut frame, version)?;
        if frame.has_remaining() {
            return Err(format!("{} trailing bytes in response", frame.remaining()).into());
        }
        Ok(resp)
    }

    /// Sends `req` at `version` without waiting for a response (acks=0 produce).
    pub async fn send_no_response<R>(&mut self, req: R, version: i16) -> Result<(), TestError>
    where
        R: Request + Into<RequestBody>,
    {
        self.correlation_id += 1;
        let header = RequestHeader {
            request_api_key: R::API_KEY.key(),
            request_api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("kafka-rs-tests".into()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &req.into())?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Writes raw bytes (for malformed-input tests).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), TestError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads one response frame (without its size prefix).
    pub async fn read_frame(&mut self) -> Result<Bytes, TestError> {
        loop {
            if let Some(f) = split_frame(&mut self.rbuf, DEFAULT_MAX_FRAME_SIZE)? {
                return Ok(f);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err("connection closed".into());
            }
        }
    }

    /// Whether the broker closed the connection (reads until EOF or `timeout`).
    pub async fn is_closed_by_peer(&mut self, timeout: std::time::Duration) -> bool {
        let mut scratch = [0u8; 1024];
        loop {
            match tokio::time::timeout(timeout, self.stream.read_exact(&mut scratch[..1])).await {
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// An optional key and an optional value: one record's payload in test helpers.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// One uncompressed-or-compressed v2 batch of `(key, value)` records with timestamps
/// starting at `ts`.
pub fn batch(records: &[KeyValue<'_>], compression: Compression, ts: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions {
        compression,
        ..Default::default()
    });
    for (i, (k, v)) in records.iter().enumerate() {
        b.append(ts + i as i64, *k, *v, &[])
            .expect("test records fit in a batch");
    }
    b.finish().expect("test batches encode")
}

/// Typed one-call wrappers around [`RawClient`] for the broker-lite integration tests
/// (`tests/tests/broker_*.rs`): each sends one request at a fixed, modern version and returns
/// the part of the response a test usually looks at.
pub mod broker_api {
    use std::collections::BTreeMap;
    use std::ops::RangeInclusive;
    use std::path::Path;

    use broker_lite::Broker;
    use bytes::{Bytes, BytesMut};
    use kafka_wire::frame::encode_request;
    use kafka_wire::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_wire::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_wire::messages::create_topics_response::CreatableTopicResult;
    use kafka_wire::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_wire::messages::describe_configs_response::DescribeConfigsResult;
    use kafka_wire::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_wire::messages::fetch_response::PartitionData;
    use kafka_wire::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_wire::messages::list_offsets_response::ListOffsetsPartitionResponse;
    use kafka_wire::messages::metadata_request::MetadataRequestTopic;
    use kafka_wire::messages::metadata_response::MetadataResponseTopic;
    use kafka_wire::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_wire::messages::produce_response::PartitionProduceResponse;
    use kafka_wire::messages::*;
    use kafka_wire::records::{
        decode_all, BatchOptions, Compression, Record, RecordBatch, RecordBatchBuilder,
    };
    use kafka_wire::{ApiKey, ErrorCode, Request, RequestBody};

    use super::{RawClient, TestError};

    /// Produce version used by [`produce`].
    pub const PRODUCE_VERSION: i16 = 9;
    /// Fetch version used by [`fetch`] (the last one that names topics).
    pub const FETCH_VERSION: i16 = 12;
    /// ListOffsets version used by [`list_offset`].
    pub const LIST_OFFSETS_VERSION: i16 = 7;
    /// CreateTopics version used by [`create_topic`].
    pub const CREATE_TOPICS_VERSION: i16 = 7;
    /// Metadata version used by [`metadata`].
    pub const METADATA_VERSION: i16 = 12;

    /// InitProducerId version used by [`init_producer`].
    pub const INIT_PRODUCER_ID_VERSION: i16 = 4;
    /// ConfigResource type of a topic (DescribeConfigs, AlterConfigs).
    pub const RESOURCE_TOPIC: i8 = 2;

    /// Starts a broker on the data directory `dir` (another start on the same `dir` is a
    /// restart), panicking on failure.
    pub async fn start_in(dir: &Path) -> Broker {
        Broker::builder()
            .data_dir(dir)
            .start()
            .await
            .expect("broker starts on the data dir")
    }

    /// The versions ApiVersions (v3) advertises for `api`, asserted to be the spec's whole
    /// range.
    pub async fn advertised_versions(c: &mut RawClient, api: ApiKey) -> RangeInclusive<i16> {
        let req = ApiVersionsRequest {
            client_software_name: "kafka-rs-tests".into(),
            client_software_version: "1.0.0".into(),
            ..Default::default()
        };
        let r = c.send(req, 3).await.expect("ApiVersions");
        assert_eq!(r.error_code, 0, "ApiVersions");
        let k = r
            .api_keys
            .iter()
            .find(|k| k.api_key == api.key())
            .unwrap_or_else(|| panic!("{} advertised", api.name()));
        let spec = api.valid_versions();
        assert_eq!(
            (k.min_version, k.max_version),
            (spec.min, spec.max),
            "{} advertises the spec's versions",
            api.name()
        );
        k.min_version..=k.max_version
    }

    /// InitProducerId (v4) of an idempotent producer (`txn` None) or a transactional one,
    /// asserting success; returns `(producer id, epoch)`.
    pub async fn init_producer(c: &mut RawClient, txn: Option<&str>) -> (i64, i16) {
        let req = InitProducerIdRequest {
            transactional_id: txn.map(Into::into),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let r = c
            .send(req, INIT_PRODUCER_ID_VERSION)
            .await
            .expect("InitProducerId");
        assert_eq!(r.error_code, 0, "InitProducerId {txn:?}");
        (r.producer_id, r.producer_epoch)
    }

    /// AddPartitionsToTxn (v0-3 layout) of `parts` for producer `(pid, epoch)` of `txn`: the
    /// code of every partition, in response order.
    pub async fn add_partitions_to_txn(
        c: &mut RawClient,
        txn: &str,
        (pid, epoch): (i64, i16),
        parts: &[(&str, i32)],
        version: i16,
    ) -> Vec<ErrorCode> {
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for (t, p) in parts {
            match topics.iter_mut().find(|x| x.name == *t) {
                Some(x) => x.partitions.push(*p),
                None => topics.push(AddPartitionsToTxnTopic {
                    name: t.to_string(),
                    partitions: vec![*p],
                    ..Default::default()
                }),
            }
        }
        let r = c
            .send(
                AddPartitionsToTxnRequest {
                    v3_and_below_transactional_id: txn.into(),
                    v3_and_below_producer_id: pid,
                    v3_and_below_producer_epoch: epoch,
                    v3_and_below_topics: topics,
                    ..Default::default()
                },
                version,
            )
            .await
            .expect("AddPartitionsToTxn");
        r.results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| ErrorCode::from_code(p.partition_error_code))
            })
            .collect()
    }

    /// [`add_partitions_to_txn`] (v3), asserting every partition was added.
    pub async fn add_partitions_to_txn_ok(
        c: &mut RawClient,
        txn: &str,
        pe: (i64, i16),
        parts: &[(&str, i32)],
    ) {
        let codes = add_partitions_to_txn(c, txn, pe, parts, 3).await;
        assert_eq!(codes.len(), parts.len(), "{codes:?}");
        assert!(codes.iter().all(|c| *c == ErrorCode::None), "{codes:?}");
    }

    /// A transactional batch of producer `(pid, epoch)`: `n` records ("<prefix>-<i>") from
    /// `base_sequence`, timestamped now (an old timestamp would roll the segment at the
    /// marker, `segment.ms`, or let time retention delete it).
    pub fn txn_batch(
        (pid, epoch): (i64, i16),
        base_sequence: i32,
        prefix: &str,
        n: usize,
    ) -> Bytes {
        let mut b = RecordBatchBuilder::new(BatchOptions {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence,
            is_transactional: true,
            ..BatchOptions::default()
        });
        for i in 0..n {
            let v = format!("{prefix}-{i}");
            b.append(broker_lite::state::now_ms(), None, Some(v.as_bytes()), &[])
                .expect("record fits");
        }
        b.finish().expect("batch encodes")
    }

    /// DescribeConfigs of `resources` at `version`; returns the results (errors unchecked).
    pub async fn describe_configs(
        c: &mut RawClient,
        resources: Vec<DescribeConfigsResource>,
        synonyms: bool,
        docs: bool,
        version: i16,
    ) -> Vec<DescribeConfigsResult> {
        let req = DescribeConfigsRequest {
            resources,
            include_synonyms: synonyms,
            include_documentation: docs,
            ..Default::default()
        };
        c.send(req, version).await.expect("DescribeConfigs").results
    }

    /// DescribeConfigs of one topic's `keys` (`None`: every config), no synonyms or
    /// documentation; returns its result (errors unchecked).
    pub async fn describe_topic_configs(
        c: &mut RawClient,
        name: &str,
        keys: Option<&[&str]>,
        version: i16,
    ) -> DescribeConfigsResult {
        let res = DescribeConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: name.into(),
            configuration_keys: keys.map(|k| k.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let mut r = describe_configs(c, vec![res], false, false, version).await;
        assert_eq!(r.len(), 1, "one result per resource");
        r.remove(0)
    }

    /// A topic's config overrides as the broker holds them (`Broker::state`), to check the
    /// alter APIs independently of DescribeConfigs.
    pub fn topic_overrides(broker: &Broker, topic: &str) -> BTreeMap<String, String> {
        broker
            .state()
            .topic(topic)
            .expect("topic exists")
            .overrides()
    }

    /// Connects to a broker at `addr`, panicking on failure (tests only).
    pub async fn connect(addr: &str) -> RawClient {
        RawClient::connect(addr)
            .await
            .expect("connect to the broker")
    }

    /// A size-prefixed request frame for `req` at `version` with `correlation_id`, for tests
    /// that write raw bytes (pipelining, malformed frames).
    pub fn request_frame<R>(req: R, version: i16, correlation_id: i32) -> BytesMut
    where
        R: Request + Into<RequestBody>,
    {
        let header = RequestHeader {
            request_api_key: R::API_KEY.key(),
            request_api_version: version,
            correlation_id,
            client_id: Some("kafka-rs-tests".into()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &req.into()).expect("test request encodes");
        out
    }

    /// CreateTopics (v7) of one topic with `partitions` partitions, replication factor 1
    /// and `configs`; returns the topic's result (the caller checks the error code).
    pub async fn create_topic_result(
        c: &mut RawClient,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<CreatableTopicResult, TestError> {
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: 1,
                configs: configs
                    .iter()
                    .map(|(k, v)| CreatableTopicConfig {
                        name: (*k).into(),
                        value: Some((*v).into()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            timeout_ms: 5000,
            ..Default::default()
        };
        let mut r = c.send(req, CREATE_TOPICS_VERSION).await?;
        Ok(r.topics.remove(0))
    }

    /// Creates a topic and asserts that it succeeded; returns its result (with the topic id).
    pub async fn create_topic(
        c: &mut RawClient,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> CreatableTopicResult {
        let r = create_topic_result(c, name, partitions, configs)
            .await
            .expect("CreateTopics");
        assert_eq!(r.error_code, 0, "creating {name}: {:?}", r.error_message);
        r
    }

    /// A ProduceRequest of `records` to one partition.
    pub fn produce_request(
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> ProduceRequest {
        ProduceRequest {
            acks,
            timeout_ms: 5000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Produces `records` to one partition (v9, acks=-1); returns the partition's response.
    pub async fn produce(
        c: &mut RawClient,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> PartitionProduceResponse {
        produce_with(c, topic, partition, records, -1, PRODUCE_VERSION).await
    }

    /// Produces with explicit `acks` and version (not 0: acks=0 gets no response).
    pub async fn produce_with(
        c: &mut RawClient,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
        version: i16,
    ) -> PartitionProduceResponse {
        let mut r = c
            .send(produce_request(topic, partition, records, acks), version)
            .await
            .expect("Produce");
        assert_eq!(r.responses.len(), 1);
        let mut t = r.responses.remove(0);
        assert_eq!(t.name, topic);
        assert_eq!(t.partition_responses.len(), 1);
        t.partition_responses.remove(0)
    }

    /// Produces and asserts success; returns the base offset.
    pub async fn produce_ok(c: &mut RawClient, topic: &str, partition: i32, records: Bytes) -> i64 {
        let r = produce(c, topic, partition, records).await;
        assert_eq!(
            r.error_code, 0,
            "produce to {topic}-{partition}: {:?}",
            r.error_message
        );
        r.base_offset
    }

    /// A one-partition FetchRequest by topic name (v4-12 layout).
    pub fn fetch_request(
        topic: &str,
        partition: i32,
        offset: i64,
        partition_max_bytes: i32,
        max_wait_ms: i32,
    ) -> FetchRequest {
        FetchRequest {
            replica_id: -1,
            max_wait_ms,
            min_bytes: 1,
            max_bytes: i32::MAX,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes,
                    current_leader_epoch: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Fetches one partition from `offset` (v12, no wait); returns its data.
    pub async fn fetch(
        c: &mut RawClient,
        topic: &str,
        partition: i32,
        offset: i64,
        partition_max_bytes: i32,
    ) -> PartitionData {
        let mut r = c
            .send(
                fetch_request(topic, partition, offset, partition_max_bytes, 0),
                FETCH_VERSION,
            )
            .await
            .expect("Fetch");
        assert_eq!(r.error_code, 0, "fetch top-level error");
        assert_eq!(r.responses.len(), 1);
        let mut t = r.responses.remove(0);
        assert_eq!(t.partitions.len(), 1);
        t.partitions.remove(0)
    }

    /// The batches of a fetched partition (strict: no partial trailing batch), CRCs checked.
    pub fn batches_of(p: &PartitionData) -> Vec<RecordBatch> {
        let batches = decode_all(p.records.clone().unwrap_or_default()).expect("whole batches");
        for b in &batches {
            b.verify_crc().expect("valid CRC");
        }
        batches
    }

    /// Every record of `batches`, in order.
    pub fn records_of(batches: &[RecordBatch]) -> Vec<Record> {
        let mut out = Vec::new();
        for b in batches {
            for r in b.records(64 << 20).expect("records decode") {
                out.push(r.expect("record decodes"));
            }
        }
        out
    }

    /// Fetches a whole partition from `from` up to its high watermark, batch by batch;
    /// returns every stored batch (whole, CRC-checked) in order.
    pub async fn fetch_all(
        c: &mut RawClient,
        topic: &str,
        partition: i32,
        from: i64,
    ) -> Vec<RecordBatch> {
        let mut out: Vec<RecordBatch> = Vec::new();
        let mut offset = from;
        loop {
            let p = fetch(c, topic, partition, offset, 1 << 20).await;
            assert_eq!(p.error_code, 0, "fetch {topic}-{partition} at {offset}");
            let batches = batches_of(&p);
            if batches.is_empty() {
                assert!(
                    offset >= p.high_watermark,
                    "no data below the high watermark at {offset}"
                );
                return out;
            }
            let before = offset;
            for b in batches {
                if b.last_offset() >= offset {
                    offset = b.next_offset();
                    out.push(b);
                }
            }
            assert!(offset > before, "fetch at {before} made no progress");
        }
    }

    /// ListOffsets (v7) for one partition and `timestamp` (-1 latest, -2 earliest, -3 max).
    pub async fn list_offset(
        c: &mut RawClient,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> ListOffsetsPartitionResponse {
        let req = ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp,
                    current_leader_epoch: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut r = c
            .send(req, LIST_OFFSETS_VERSION)
            .await
            .expect("ListOffsets");
        let mut t = r.topics.remove(0);
        t.partitions.remove(0)
    }

    /// The offset ListOffsets answers for `timestamp`, asserting no error.
    pub async fn offset_for(c: &mut RawClient, topic: &str, partition: i32, timestamp: i64) -> i64 {
        let p = list_offset(c, topic, partition, timestamp).await;
        assert_eq!(
            p.error_code, 0,
            "ListOffsets {topic}-{partition} ts {timestamp}"
        );
        p.offset
    }

    /// Metadata (v12) for `topics` (`None`: all topics), auto-creation off.
    pub async fn metadata(c: &mut RawClient, topics: Option<&[&str]>) -> MetadataResponse {
        let req = MetadataRequest {
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic {
                        name: Some((*t).into()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        c.send(req, METADATA_VERSION).await.expect("Metadata")
    }

    /// Metadata (v12) for one existing topic, asserting no error.
    pub async fn topic_metadata(c: &mut RawClient, topic: &str) -> MetadataResponseTopic {
        let mut m = metadata(c, Some(&[topic])).await;
        assert_eq!(m.topics.len(), 1);
        let t = m.topics.remove(0);
        assert_eq!(t.error_code, 0, "metadata for {topic}");
        t
    }

    /// One v2 batch of `n` records with values `"{prefix}-{i}"` and timestamps `ts + i`.
    pub fn value_batch(prefix: &str, n: usize, compression: Compression, ts: i64) -> Bytes {
        let values: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
        let recs: Vec<crate::KeyValue<'_>> =
            values.iter().map(|v| (None, Some(v.as_bytes()))).collect();
        super::batch(&recs, compression, ts)
    }

    /// One uncompressed batch of records with the given timestamps (values `"v{ts}"`).
    pub fn timestamped_batch(timestamps: &[i64]) -> Bytes {
        let mut b = kafka_wire::records::RecordBatchBuilder::new(Default::default());
        for ts in timestamps {
            let v = format!("v{ts}");
            b.append(*ts, None, Some(v.as_bytes()), &[])
                .expect("record fits");
        }
        b.finish().expect("batch encodes")
    }

    /// One uncompressed batch holding a single record with a `size`-byte value.
    pub fn big_batch(size: usize, ts: i64) -> Bytes {
        let v = vec![b'x'; size];
        super::batch(&[(None, Some(&v))], Compression::None, ts)
    }
}
