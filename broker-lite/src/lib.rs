//! # broker-lite
//!
//! A Kafka-compatible broker for development and tests: it speaks the real wire protocol
//! (through [`kafka_wire`]), stores data in Kafka's own on-disk layout, and serves unchanged
//! third-party clients. Start it in-process on an ephemeral port in one call:
//!
//! ```no_run
//! # async fn demo() -> Result<(), broker_lite::StartError> {
//! let broker = broker_lite::Broker::start_ephemeral().await?;
//! let bootstrap = broker.bootstrap_servers(); // e.g. "127.0.0.1:40123"
//! // ... point any Kafka client at `bootstrap` ...
//! broker.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layout: [`server`] (network), `handlers` (one module per API), [`state`] (topics and
//! partitions), [`storage`] (the partition log: segments, indexes, recovery, retention,
//! idempotent-producer state), [`group`] (the classic group coordinator and
//! `__consumer_offsets`), [`txn`] (the transaction coordinator and `__transaction_state`,
//! KIP-98), [`config`] and [`topic_config`] (Kafka's config names and
//! defaults), [`faults`] (errors, delays and dropped connections injected by tests through
//! [`Broker::faults`]).

pub mod config;
pub mod faults;
mod fetch_session;
pub mod group;
mod handlers;
mod producer_ids;
pub mod server;
pub mod state;
pub mod storage;
pub mod topic_config;
pub mod txn;

pub use config::{BrokerConfig, ConfigError};
pub use faults::FaultInjector;
pub use handlers::supported_versions;
pub use server::{Broker, BrokerBuilder, StartError};
