//! Records as the application sees them: [`ProducerRecord`], [`RecordMetadata`], [`Header`].

use bytes::Bytes;

/// A record header: a string key and an optional byte value, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value; `None` is a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// A record to send: the topic, an optional partition, key, value, headers and timestamp
/// (Java's `ProducerRecord`).
///
/// A record without a value is a tombstone (a delete marker on compacted topics). Without a
/// timestamp the producer stamps the record with the current time when it is sent.
///
/// # Examples
/// ```
/// use kafka_client::ProducerRecord;
///
/// let record: ProducerRecord = ProducerRecord::new("events", "hello")
///     .with_key("user-1")
///     .with_header("source", "docs");
/// assert_eq!(record.topic, "events");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRecord<K = Bytes, V = Bytes> {
    /// The topic.
    pub topic: String,
    /// An explicit partition, which wins over the partitioner.
    pub partition: Option<i32>,
    /// The key (used by the default partitioner to pick a partition).
    pub key: Option<K>,
    /// The value; `None` is a tombstone.
    pub value: Option<V>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Timestamp in milliseconds since the epoch; `None` means "now".
    pub timestamp: Option<i64>,
}

impl<K, V> ProducerRecord<K, V> {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<String>, value: impl Into<V>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// A record with no value (a tombstone) and nothing else.
    pub fn tombstone(topic: impl Into<String>, key: impl Into<K>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: Some(key.into()),
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<K>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets an explicit partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp (milliseconds since the epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }
}

/// Where a record was written: Java's `RecordMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset, or -1 when it is unknown (`acks=0`).
    pub offset: i64,
    /// The record's timestamp: its create time, or the broker's append time on topics with
    /// `message.timestamp.type=LogAppendTime`.
    pub timestamp: i64,
    /// Size of the serialized key, or -1 without a key.
    pub serialized_key_size: i32,
    /// Size of the serialized value, or -1 without a value.
    pub serialized_value_size: i32,
}
