//! Producer configuration.
