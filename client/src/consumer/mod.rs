//! The consumer side of the client.
//!
//! So far this holds the group coordinator state machine ([`coordinator`], Java's
//! `ConsumerCoordinator` without I/O) and the group partition assignors ([`assignor`]): the pure, deterministic
//! logic a group leader runs to split the subscribed topics' partitions among the members
//! (Kafka's `range`, `roundrobin`, `sticky` and `cooperative-sticky`).

pub mod assignor;
pub mod coordinator;
