//! One connection to a broker.
