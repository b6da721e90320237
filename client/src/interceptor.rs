//! Producer interceptors.
