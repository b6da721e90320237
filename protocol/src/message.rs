//! Traits implemented by every generated message, and version ranges.

use crate::codec::{Decodable, Encodable};
use crate::generated_api::ApiKey;

/// An inclusive range of protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

impl VersionRange {
    /// Whether `version` lies in the range.
    pub fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    /// The highest version in both ranges, or `None` when they do not overlap. This is how a
    /// client picks the version to use from a broker's ApiVersions answer.
    pub fn highest_common(&self, other: &VersionRange) -> Option<i16> {
        let hi = self.max.min(other.max);
        (hi >= self.min.max(other.min)).then_some(hi)
    }
}

/// A message generated from one of Kafka's JSON specs (request, response, header or data).
pub trait Message: Encodable + Decodable + Default + Clone + std::fmt::Debug + PartialEq {
    /// The spec's name, e.g. `ProduceRequest`.
    const NAME: &'static str;
    /// Every version this code can encode and decode (the spec's `validVersions`).
    const VERSIONS: VersionRange;
    /// The first flexible version (KIP-482), if any.
    const FLEXIBLE_MIN_VERSION: Option<i16>;

    /// Whether `version` uses the flexible (compact, tagged-field) encoding.
    fn is_flexible(version: i16) -> bool {
        Self::FLEXIBLE_MIN_VERSION.is_some_and(|v| version >= v)
    }
}

/// A request message.
pub trait Request: Message {
    /// The API the request belongs to.
    const API_KEY: ApiKey;
    /// The matching response type.
    type Response: Response;
}

/// A response message.
pub trait Response: Message {
    /// The API the response belongs to.
    const API_KEY: ApiKey;
}
