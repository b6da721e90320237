//! Fetch session metadata (KIP-227) shared by clients and brokers: Kafka's `FetchMetadata`
//! constants and epoch rule.
//!
//! A Fetch request's `session_id` / `session_epoch` say what it is: epoch
//! [`INITIAL_EPOCH`] asks for a new session (a full request), epoch [`FINAL_EPOCH`] is a full
//! request without a session (closing the one named, if any), and any other epoch is an
//! incremental request on the named session.

/// The session id meaning "no session" (Kafka's `FetchMetadata.INVALID_SESSION_ID`).
pub const INVALID_SESSION_ID: i32 = 0;
/// The epoch of a full request that creates a session (`FetchMetadata.INITIAL_EPOCH`).
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full request without a session (`FetchMetadata.FINAL_EPOCH`).
pub const FINAL_EPOCH: i32 = -1;

/// The epoch after `prev`, as Kafka's `FetchMetadata.nextEpoch`: a negative epoch stays
/// [`FINAL_EPOCH`], and `i32::MAX` wraps to 1 ([`INITIAL_EPOCH`] is only for creating a
/// session).
pub fn next_epoch(prev: i32) -> i32 {
    if prev < 0 {
        FINAL_EPOCH
    } else if prev == i32::MAX {
        1
    } else {
        prev + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_epoch_wraps_like_kafka() {
        assert_eq!(next_epoch(INITIAL_EPOCH), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
        assert_eq!(next_epoch(-7), FINAL_EPOCH);
    }
}
