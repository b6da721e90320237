//! Connections to brokers.

pub mod connection;
