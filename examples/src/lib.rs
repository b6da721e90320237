//! Runnable examples: see `examples/examples/`.

pub mod exactly_once;
