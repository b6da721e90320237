//! Helpers shared by the fuzz targets and the seed-corpus generator.

use std::fmt::Debug;
use std::sync::OnceLock;

use kafka_wire::ApiKey;

/// Output cap for every decompression done by the targets (1 MiB).
pub const MAX_DECOMPRESSED: usize = 1 << 20;

/// Maps the two selector bytes at the front of a `response_decode` input to an API and a
/// version within its `codec_versions()`. `None` when the API has no codec version.
pub fn select_api_version(api_byte: u8, version_byte: u8) -> Option<(ApiKey, i16)> {
    let all = ApiKey::ALL;
    let api = all[api_byte as usize % all.len()];
    let r = api.codec_versions();
    if r.max < r.min {
        return None;
    }
    let span = (r.max as i32 - r.min as i32 + 1) as usize;
    Some((api, (r.min as i32 + (version_byte as usize % span) as i32) as i16))
}

/// The selector bytes that [`select_api_version`] maps to `(api, version)`.
pub fn selector_for(api: ApiKey, version: i16) -> [u8; 2] {
    let idx = ApiKey::ALL
        .iter()
        .position(|a| *a == api)
        .expect("api in ApiKey::ALL");
    let min = api.codec_versions().min;
    [idx as u8, (version - min) as u8]
}

/// With `KAFKA_WIRE_FUZZ_STRICT=1`, values must be *exactly* equal after a round trip; by
/// default the order of unknown tagged fields is ignored (see [`assert_round_trip_eq`]).
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| {
        std::env::var_os("KAFKA_WIRE_FUZZ_STRICT").is_some_and(|v| v != "0" && !v.is_empty())
    })
}

/// Asserts that `second` (decoded from the re-encoding of `first`) equals `first`.
///
/// `PartialEq` is tried first. Two differences are tolerated, by comparing `Debug` renderings
/// instead:
/// * float64 fields holding NaN (`NaN != NaN`, but the bits survive the round trip, and
///   `Debug` prints both as `NaN`);
/// * unless [`strict`], the *order* of unknown tagged fields: the decoder keeps them in wire
///   order, the encoder sorts them by tag (as KIP-482 requires), so an input with unknown
///   tags out of order comes back sorted.
pub fn assert_round_trip_eq<T: Debug + PartialEq>(first: &T, second: &T, what: &str) {
    if first == second {
        return;
    }
    let (a, b) = (format!("{first:?}"), format!("{second:?}"));
    if a == b {
        return; // NaN
    }
    if !strict() && sort_unknown_tagged_fields(&a) == sort_unknown_tagged_fields(&b) {
        return;
    }
    panic!(
        "{what}: decode(encode(x)) != x\n--- first decode:\n{first:#?}\n--- after re-encode:\n{second:#?}"
    );
}

/// Sorts (stably, by tag) every `unknown_tagged_fields: [...]` list in a `{:?}` `Debug`
/// rendering. Items are `RawTaggedField { tag: N, data: b"..." }`; the byte strings
/// are escaped by `Bytes`' `Debug`, so `"` and `\` inside them are always backslash-escaped.
pub fn sort_unknown_tagged_fields(s: &str) -> String {
    const KEY: &str = "unknown_tagged_fields: [";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        rest = &rest[at + KEY.len()..];
        // Split the list's items at top-level `RawTaggedField {` ... `}` boundaries.
        let bytes = rest.as_bytes();
        let (mut i, mut depth, mut in_str) = (0usize, 0i32, false);
        let mut items: Vec<(u64, &str)> = Vec::new();
        let mut item_start = None;
        while i < bytes.len() {
            let c = bytes[i];
            if in_str {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    in_str = false;
                }
            } else if c == b'"' {
                in_str = true;
            } else if c == b'{' {
                if depth == 0 {
                    item_start = Some(rest[..i].rfind("RawTaggedField").unwrap_or(i));
                }
                depth += 1;
            } else if c == b'}' {
                depth -= 1;
                if depth == 0 {
                    let item = &rest[item_start.take().unwrap_or(0)..=i];
                    let tag = item
                        .split("tag: ")
                        .nth(1)
                        .and_then(|t| {
                            t.split(|c: char| !c.is_ascii_digit())
                                .next()
                                .and_then(|d| d.parse().ok())
                        })
                        .unwrap_or(u64::MAX);
                    items.push((tag, item));
                }
            } else if c == b']' && depth == 0 {
                break;
            }
            i += 1;
        }
        items.sort_by_key(|(tag, _)| *tag);
        for (_, item) in items {
            out.push_str(item);
            out.push(';');
        }
        rest = &rest[i.min(rest.len())..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_field_lists_are_sorted() {
        let a = "X { a: 1, unknown_tagged_fields: [RawTaggedField { tag: 20, data: b\"]}\\\"\" }, \
                 RawTaggedField { tag: 3, data: b\"\" }], y: Y { unknown_tagged_fields: [] } }";
        let b = "X { a: 1, unknown_tagged_fields: [RawTaggedField { tag: 3, data: b\"\" }, \
                 RawTaggedField { tag: 20, data: b\"]}\\\"\" }], y: Y { unknown_tagged_fields: [] } }";
        assert_ne!(a, b);
        assert_eq!(sort_unknown_tagged_fields(a), sort_unknown_tagged_fields(b));
        let c = b.replace("tag: 3", "tag: 4");
        assert_ne!(sort_unknown_tagged_fields(a), sort_unknown_tagged_fields(&c));
    }

    #[test]
    fn selectors_round_trip() {
        for &api in ApiKey::ALL {
            let r = api.codec_versions();
            for v in r.min..=r.max {
                let [a, b] = selector_for(api, v);
                assert_eq!(select_api_version(a, b), Some((api, v)));
            }
        }
    }
}
