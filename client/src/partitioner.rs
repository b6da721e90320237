//! Partitioners.
