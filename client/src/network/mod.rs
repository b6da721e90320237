//! Connections to brokers.

pub mod connection;
pub mod pool;
