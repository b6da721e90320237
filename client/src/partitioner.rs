//! Partitioners.
//!
//! # Keyed records: Java-compatible murmur2
//!
//! A record with a key goes to the partition chosen by [`partition_for_key`]: the 32-bit
//! murmur2 hash of the serialized key bytes, made non-negative with [`to_positive`], modulo the
//! partition count. This is what the Java producer does
//! (`BuiltInPartitioner.partitionForKey`, which computes
//! `Utils.toPositive(Utils.murmur2(serializedKey)) % numPartitions`). librdkafka's `murmur2` and
//! `murmur2_random` partitioners compute the same thing
//! (`(rd_murmur2(key, keylen) & 0x7fffffff) % partition_cnt`; `murmur2_random` sends only
//! records without a key to a random partition). So a keyed record lands on the same partition
//! whether a Java client, a librdkafka client set to `partitioner=murmur2_random`, or this crate
//! produced it. Keeping this mapping is what preserves per-key ordering when producers in
//! different languages share a topic.
//!
//! librdkafka's *default* partitioner, `consistent_random`, uses CRC32 instead. It puts keys on
//! different partitions than the Java client and this crate do.
//!
//! # The hash function
//!
//! [`murmur2`] is MurmurHash2 (the endian-neutral variant) with Kafka's seed `0x9747b28c`, as
//! in `org.apache.kafka.common.utils.Utils.murmur2`. It comes from the `murmur2` crate, which
//! computes exactly what the Java code does:
//!
//! - it reads 4-byte blocks little-endian;
//! - it folds in the 1 to 3 tail bytes as unsigned values (Java masks each with `& 0xff`, so
//!   negative `byte`s do not sign-extend);
//! - it uses wrapping 32-bit multiplies and logical right shifts (Java's `>>>`).
//!
//! The tests check this. Besides Kafka's own vectors, they compare the crate with a line-by-line
//! port of the Java method over every input of length 0 to 2 and over pseudo-random inputs of
//! every length up to 64, tail bytes of 0x80 to 0xFF included.

use std::num::NonZeroU32;

/// The seed Kafka's Java client uses for murmur2 (`Utils.murmur2`).
const KAFKA_SEED: u32 = 0x9747_b28c;

/// The 32-bit murmur2 hash of `data`, bit for bit what Java's
/// `org.apache.kafka.common.utils.Utils.murmur2(byte[])` returns.
///
/// ```
/// use kafka_client::partitioner::murmur2;
/// assert_eq!(murmur2(b"foobar"), -790332482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    // Reinterpret the u32 as Java's signed int; `as` keeps the bit pattern.
    murmur2::murmur2(data, KAFKA_SEED) as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (`n & 0x7fffffff`). This is not `abs`:
/// `to_positive(-1)` is `i32::MAX` and `to_positive(i32::MIN)` is `0`.
pub const fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition the Java producer picks for a record with serialized key `key`:
/// `toPositive(murmur2(key)) % numPartitions`, as in `BuiltInPartitioner.partitionForKey`.
/// An empty key is still a key and is hashed like any other; records with no key are not
/// handled here.
///
/// The partition count is a `NonZeroU32` because it comes from broker metadata: a topic
/// reported with zero partitions must be handled by the caller, not divide by zero here.
///
/// ```
/// use std::num::NonZeroU32;
/// use kafka_client::partitioner::partition_for_key;
/// let n = NonZeroU32::new(12).unwrap();
/// assert!(partition_for_key(b"order-42", n) < 12);
/// ```
pub fn partition_for_key(key: &[u8], num_partitions: NonZeroU32) -> u32 {
    // `to_positive` leaves a value in 0..=i32::MAX, so the cast to u32 is exact.
    (to_positive(murmur2(key)) as u32) % num_partitions.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line-by-line port of Java's `Utils.murmur2`, used only to cross-check the `murmur2`
    /// crate. Java's `byte` is signed; `b as i8 as i32 & 0xff` copies its `data[i] & 0xff`.
    fn java_murmur2(data: &[u8]) -> i32 {
        let byte = |i: usize| (data[i] as i8 as i32) & 0xff;
        let length = data.len() as i32;
        let seed = 0x9747b28c_u32 as i32;
        let m: i32 = 0x5bd1e995;
        let r = 24;
        let mut h = seed ^ length;
        let length4 = length / 4;
        for i in 0..length4 as usize {
            let i4 = i * 4;
            let mut k = byte(i4)
                .wrapping_add(byte(i4 + 1) << 8)
                .wrapping_add(byte(i4 + 2) << 16)
                .wrapping_add(byte(i4 + 3) << 24);
            k = k.wrapping_mul(m);
            k ^= ((k as u32) >> r) as i32;
            k = k.wrapping_mul(m);
            h = h.wrapping_mul(m);
            h ^= k;
        }
        let base = (length & !3) as usize;
        // Java's switch falls through from case 3 to case 1.
        let tail = length % 4;
        if tail >= 3 {
            h ^= byte(base + 2) << 16;
        }
        if tail >= 2 {
            h ^= byte(base + 1) << 8;
        }
        if tail >= 1 {
            h ^= byte(base);
            h = h.wrapping_mul(m);
        }
        h ^= ((h as u32) >> 13) as i32;
        h = h.wrapping_mul(m);
        h ^= ((h as u32) >> 15) as i32;
        h
    }

    /// Kafka's own test vectors, verbatim from `UtilsTest.testMurmur2` in apache/kafka
    /// (`clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java`, commit
    /// f55581dc73953c3509a4702433aeeeddc2970779):
    ///
    /// ```java
    /// cases.put("21".getBytes(), -973932308);
    /// cases.put("foobar".getBytes(), -790332482);
    /// cases.put("a-little-bit-long-string".getBytes(), -985981536);
    /// cases.put("a-little-bit-longer-string".getBytes(), -1486304829);
    /// cases.put("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8".getBytes(), -58897971);
    /// cases.put(new byte[] {'a', 'b', 'c'}, 479470107);
    /// ```
    const KAFKA_UTILS_TEST_VECTORS: &[(&[u8], i32)] = &[
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
        ),
        // Java: `new byte[] {'a', 'b', 'c'}`.
        (b"abc", 479470107),
    ];

    #[test]
    fn kafka_utils_test_murmur2_vectors() {
        for &(input, expected) in KAFKA_UTILS_TEST_VECTORS {
            assert_eq!(
                murmur2(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                java_murmur2(input),
                expected,
                "reference port disagrees with Kafka"
            );
        }
    }

    #[test]
    fn seed_matches_the_crate_constant() {
        assert_eq!(KAFKA_SEED, murmur2::KAFKA_SEED);
    }

    #[test]
    fn crate_matches_java_port_for_every_input_up_to_two_bytes() {
        assert_eq!(murmur2(&[]), java_murmur2(&[]));
        for a in 0..=255u8 {
            assert_eq!(murmur2(&[a]), java_murmur2(&[a]), "[{a}]");
            for b in 0..=255u8 {
                assert_eq!(murmur2(&[a, b]), java_murmur2(&[a, b]), "[{a}, {b}]");
            }
        }
    }

    #[test]
    fn crate_matches_java_port_for_all_lengths_and_high_bytes() {
        // xorshift32: deterministic bytes across the whole 0..=255 range, "negative" ones
        // (0x80..=0xFF as a Java byte) included.
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for len in 0..=64 {
            for _ in 0..64 {
                let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                assert_eq!(murmur2(&data), java_murmur2(&data), "{data:?}");
            }
            let all_ff = vec![0xff_u8; len];
            assert_eq!(murmur2(&all_ff), java_murmur2(&all_ff), "0xff x {len}");
            let all_80 = vec![0x80_u8; len];
            assert_eq!(murmur2(&all_80), java_murmur2(&all_80), "0x80 x {len}");
        }
    }

    #[test]
    fn to_positive_masks_the_sign_bit() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(10), 10);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(i32::MAX), i32::MAX);
        assert_eq!(to_positive(-973932308), -973932308 & 0x7fffffff);
    }

    #[test]
    fn partition_for_key_is_java_formula() {
        for &(input, hash) in KAFKA_UTILS_TEST_VECTORS {
            for n in [1u32, 2, 3, 6, 12, 100, 1000] {
                let expected = ((hash & 0x7fffffff) % n as i32) as u32;
                assert_eq!(partition_for_key(input, nz(n)), expected);
            }
        }
        // Worked example: murmur2("foobar") = -790332482, masked 1357151166, mod 12 = 6.
        assert_eq!(partition_for_key(b"foobar", nz(12)), 6);
        assert_eq!(partition_for_key(b"anything", nz(1)), 0);
    }

    #[test]
    fn partition_for_key_handles_partition_counts_above_i32_max() {
        // toPositive(...) < 2^31, so with more partitions than that the result is the hash.
        assert_eq!(
            partition_for_key(b"21", nz(u32::MAX)),
            to_positive(-973932308) as u32
        );
    }

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("test partition counts are non-zero")
    }
}
