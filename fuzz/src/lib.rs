//! Helpers shared by the fuzz targets and the seed-corpus generator.

use std::fmt::Debug;

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
    Some((
        api,
        (r.min as i32 + (version_byte as usize % span) as i32) as i16,
    ))
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

/// Asserts that `second` (decoded from the re-encoding of `first`) equals `first`.
///
/// `PartialEq` is tried first, then `Debug` renderings, which tolerates exactly one
/// difference: float64 fields holding NaN (`NaN != NaN`, but the bits survive the round trip
/// and `Debug` prints both as `NaN`). Everything else, including the order of unknown tagged
/// fields (sorted on decode since 3ff60b0), must be identical.
pub fn assert_round_trip_eq<T: Debug + PartialEq>(first: &T, second: &T, what: &str) {
    if first == second || format!("{first:?}") == format!("{second:?}") {
        return;
    }
    panic!(
        "{what}: decode(encode(x)) != x\n--- first decode:\n{first:#?}\n--- after re-encode:\n{second:#?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
