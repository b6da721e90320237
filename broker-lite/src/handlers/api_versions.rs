//! ApiVersions (key 18), versions 0-4.
//!
//! Lists exactly the APIs and versions broker-lite implements. A request for a version newer
//! than we know is answered in the v0 format with UNSUPPORTED_VERSION and our ranges
//! (KIP-511), so auto-negotiating clients (librdkafka, kafka-python, kcat) can retry. v3+
//! validates the client software name and version as Kafka does (INVALID_REQUEST).

use kafka_wire::messages::api_versions_response::ApiVersion;
use kafka_wire::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_wire::{ApiKey, ErrorCode};

use super::supported_versions;

fn api_keys() -> Vec<ApiVersion> {
    ApiKey::ALL
        .iter()
        .filter_map(|&k| {
            supported_versions(k).map(|r| ApiVersion {
                api_key: k.key(),
                min_version: r.min,
                max_version: r.max,
                ..Default::default()
            })
        })
        .collect()
}

/// Kafka's rule for client software names and versions: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

pub(super) fn handle(req: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let error = if version >= 3
        && !(valid_software_field(&req.client_software_name)
            && valid_software_field(&req.client_software_version))
    {
        ErrorCode::InvalidRequest
    } else {
        ErrorCode::None
    };
    ApiVersionsResponse {
        error_code: error.code(),
        api_keys: api_keys(),
        ..Default::default()
    }
}

pub(super) fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: api_keys(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_names() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.6.1"));
        assert!(valid_software_field("kafka-python"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("a b"));
    }

    #[test]
    fn advertises_only_served_apis() {
        let keys = api_keys();
        assert!(keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce.key() && k.min_version == 3));
        assert!(!keys.iter().any(|k| k.api_key == ApiKey::LeaderAndIsr.key()));
    }
}
