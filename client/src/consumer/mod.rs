//! The consumer side of the client.
//!
//! * [`Consumer`] (module [`consumer`](mod@consumer)): Java's `KafkaConsumer`: manual
//!   assignment (`assign`, `seek`, `poll`, `pause`/`resume`, offset lookups, `wakeup`) and
//!   group consumption (`subscribe`, `subscribe_pattern`, rebalance listener whose errors
//!   `poll` returns, commits, `committed`, `close_with_timeout`).
//! * [`group`]: the rebalance listener, group metadata, and how the consumer drives the
//!   coordinator state machine.
//! * [`subscription_state`]: the assigned partitions and their positions (pure).
//! * [`fetcher`]: Fetch requests per leader and turning responses into records (pure core,
//!   thin async layer).
//! * [`fetch_session`]: incremental fetch sessions (KIP-227), one handler per broker (pure).
//! * [`coordinator`]: the group coordinator state machine (Java's `ConsumerCoordinator`
//!   without I/O).
//! * [`assignor`]: the group partition assignors: the pure, deterministic logic a group
//!   leader runs to split the subscribed topics' partitions among the members (Kafka's
//!   `range`, `roundrobin`, `sticky` and `cooperative-sticky`).

pub mod assignor;
#[allow(clippy::module_inception)]
pub mod consumer;
pub mod coordinator;
pub mod fetch_session;
pub mod fetcher;
pub mod group;
pub mod subscription_state;

pub use self::consumer::{
    is_wakeup, Consumer, ConsumerBuilder, ConsumerRecord, OffsetAndTimestamp, RecordStream,
    WakeupHandle,
};
pub use self::coordinator::OffsetAndMetadata;
pub use self::group::{
    ConsumerGroupMetadata, ConsumerRebalanceListener, NoOpRebalanceListener, OffsetCommitCallback,
};
pub use crate::producer::TopicPartition;
