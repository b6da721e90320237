//! Quickstart: start broker-lite in-process, create a topic, produce 10,000 keyed records with
//! `kafka-client`'s idempotent [`Producer`] and read them all back.
//!
//! The producer places records with the Java client's keyed partitioner (murmur2), batches
//! them per partition (lz4) and reports each record's offset; the consumer, assigned every
//! partition, reads them back in order.
//!
//! ```sh
//! cargo run --release -p kafka-examples --example quickstart
//! ```

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use kafka_client::config::{AutoOffsetReset, ConsumerConfig, ProducerConfig};
use kafka_client::consumer::{Consumer, TopicPartition};
use kafka_client::partitioner::partition_for_key;
use kafka_client::producer::Producer;
use kafka_client::serializer::StringSerializer;
use kafka_client::ProducerRecord;
use kafka_wire::frame::{encode_request, split_frame, DEFAULT_MAX_FRAME_SIZE};
use kafka_wire::messages::create_topics_request::CreatableTopic;
use kafka_wire::messages::*;
use kafka_wire::records::Compression;
use kafka_wire::{Decodable, ErrorCode, Request, RequestBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

const TOPIC: &str = "quickstart";
const PARTITIONS: u32 = 6;
const RECORDS: usize = 10_000;

/// One connection, one request at a time.
struct Connection {
    stream: TcpStream,
    buf: BytesMut,
    correlation_id: i32,
}

impl Connection {
    async fn open(addr: &str) -> Result<Self, Error> {
        Ok(Connection {
            stream: TcpStream::connect(addr).await?,
            buf: BytesMut::new(),
            correlation_id: 0,
        })
    }

    async fn call<R: Request + Into<RequestBody>>(
        &mut self,
        req: R,
        version: i16,
    ) -> Result<R::Response, Error> {
        self.correlation_id += 1;
        let header = RequestHeader {
            request_api_key: R::API_KEY.key(),
            request_api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("quickstart".into()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &req.into())?;
        self.stream.write_all(&out).await?;
        let mut frame = loop {
            if let Some(f) = split_frame(&mut self.buf, DEFAULT_MAX_FRAME_SIZE)? {
                break f;
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err("broker closed the connection".into());
            }
        };
        let h = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
        assert_eq!(h.correlation_id, self.correlation_id);
        let resp = R::Response::decode(&mut frame, version)?;
        if frame.has_remaining() {
            return Err("trailing bytes in response".into());
        }
        Ok(resp)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    let broker = broker_lite::Broker::start_ephemeral().await?;
    let bootstrap = broker.bootstrap_servers();
    println!(
        "broker-lite listening on {bootstrap} (started in {:?})",
        started.elapsed()
    );
    let mut conn = Connection::open(&bootstrap).await?;

    let created = conn
        .call(
            CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: TOPIC.into(),
                    num_partitions: PARTITIONS as i32,
                    replication_factor: 1,
                    ..Default::default()
                }],
                timeout_ms: 5_000,
                ..Default::default()
            },
            7,
        )
        .await?;
    ErrorCode::from_code(created.topics[0].error_code).into_result()?;
    println!("created topic '{TOPIC}' with {PARTITIONS} partitions");

    // Produce: keyed records with the idempotent producer (the default), lz4-compressed.
    let produce_start = Instant::now();
    let config = ProducerConfig::builder()
        .bootstrap_servers(bootstrap.as_str())
        .client_id("quickstart")
        .compression(Compression::Lz4)
        .build()?;
    let producer: Producer<String, String> =
        Producer::builder(config, StringSerializer, StringSerializer).build()?;
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("user-{}", i % 97);
        let value = format!("event {i} for {key}");
        let record = ProducerRecord::new(TOPIC, value.clone())
            .with_key(key.clone())
            .with_header("source", "quickstart")
            .with_timestamp(1_700_000_000_000 + i as i64);
        // `send` returns once the record is queued; the future reports its offset.
        deliveries.push((key, value, producer.send(record).await?));
    }
    let partitions = NonZeroU32::new(PARTITIONS).ok_or("no partitions")?;
    let mut expected: BTreeMap<i32, Vec<(i64, String, String)>> = BTreeMap::new();
    for (key, value, delivery) in deliveries {
        let metadata = delivery.await?;
        assert_eq!(
            metadata.partition as u32,
            partition_for_key(key.as_bytes(), partitions),
            "keyed records land where the Java client puts them"
        );
        expected
            .entry(metadata.partition)
            .or_default()
            .push((metadata.offset, key, value));
    }
    producer.close(Duration::from_secs(10)).await?;
    let expected: BTreeMap<i32, Vec<(String, String)>> = expected
        .into_iter()
        .map(|(p, mut records)| {
            records.sort_by_key(|r| r.0);
            (p, records.into_iter().map(|(_, k, v)| (k, v)).collect())
        })
        .collect();
    println!(
        "produced {RECORDS} records in {:?} (idempotent, lz4)",
        produce_start.elapsed()
    );

    // Consume every partition from the beginning with kafka-client's Consumer (manual
    // assignment; records come back in offset order per partition).
    let fetch_start = Instant::now();
    let consumer_config = ConsumerConfig::builder()
        .bootstrap_servers(bootstrap.as_str())
        .client_id("quickstart")
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .build()?;
    let consumer: Consumer<String, String> =
        Consumer::builder(consumer_config, StringSerializer, StringSerializer).build()?;
    consumer.assign(
        (0..PARTITIONS as i32)
            .map(|p| TopicPartition {
                topic: TOPIC.into(),
                partition: p,
            })
            .collect(),
    )?;
    let mut got: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    let mut total = 0;
    while total < RECORDS {
        for record in consumer.poll(Duration::from_secs(5)).await? {
            got.entry(record.partition).or_default().push((
                record.key.unwrap_or_default(),
                record.value.unwrap_or_default(),
            ));
            total += 1;
        }
    }
    consumer.close().await?;
    for (p, want) in &expected {
        let records = got.get(p).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            records,
            want.as_slice(),
            "partition {p} holds exactly what was produced, in order"
        );
        println!(
            "  partition {p}: {} records, offsets 0..{}",
            records.len(),
            records.len()
        );
    }
    println!(
        "consumed {total} records in {:?}; every record arrived once, in order per partition",
        fetch_start.elapsed()
    );

    broker.shutdown().await;
    println!("broker-lite shut down cleanly");
    Ok(())
}
