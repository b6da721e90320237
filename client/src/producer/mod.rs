//! The producer.

pub mod buffer_pool;
