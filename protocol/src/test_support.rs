//! Test support (feature `test-support`): a small deterministic RNG and version-aware random
//! message generation, used by round-trip property tests and fuzz seed corpora.
//!
//! Generated messages implement [`Random`]: only fields present in the requested version get
//! random values (others keep their defaults), and nulls appear only where the version allows
//! them, so `decode(encode(x)) == x` must hold for every generated `x`.

use bytes::Bytes;

use crate::codec::{RawTaggedField, Uuid};

/// A value that can be generated at random for a given protocol version.
pub trait Random {
    /// A random value valid at `version`.
    fn random(rng: &mut Rng, version: i16) -> Self;
}

/// A deterministic xorshift64* generator: the same seed gives the same messages.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64() % n == 0
    }

    /// A random bool.
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A random integer biased towards edge values (0, -1, min, max) a quarter of the time.
    fn edgy(&mut self, min: i64, max: i64) -> i64 {
        match self.next_u64() % 8 {
            0 => 0,
            1 => min,
            2 => max,
            3 if min < 0 => -1,
            _ => {
                let span = (max as i128 - min as i128 + 1) as u128;
                (min as i128 + (self.next_u64() as u128 % span) as i128) as i64
            }
        }
    }

    /// A random `i8`.
    pub fn i8(&mut self) -> i8 {
        self.edgy(i8::MIN.into(), i8::MAX.into()) as i8
    }
    /// A random `i16`.
    pub fn i16(&mut self) -> i16 {
        self.edgy(i16::MIN.into(), i16::MAX.into()) as i16
    }
    /// A random `u16`.
    pub fn u16(&mut self) -> u16 {
        self.edgy(0, u16::MAX.into()) as u16
    }
    /// A random `i32`.
    pub fn i32(&mut self) -> i32 {
        self.edgy(i32::MIN.into(), i32::MAX.into()) as i32
    }
    /// A random `u32`.
    pub fn u32(&mut self) -> u32 {
        self.edgy(0, u32::MAX.into()) as u32
    }
    /// A random `i64`.
    pub fn i64(&mut self) -> i64 {
        self.edgy(i64::MIN, i64::MAX)
    }
    /// A random finite `f64`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() as i64 as f64) / 1024.0
    }
    /// A short random length for strings, bytes and arrays.
    pub fn small_len(&mut self) -> usize {
        (self.next_u64() % 4) as usize
    }
    /// A random string, sometimes with multi-byte UTF-8.
    pub fn string(&mut self) -> String {
        const PIECES: &[&str] = &["a", "topic", "-", "_", ".", "é", "日本", "0", "Z", "💡"];
        let n = (self.next_u64() % 6) as usize;
        (0..n)
            .map(|_| PIECES[(self.next_u64() % PIECES.len() as u64) as usize])
            .collect()
    }
    /// Random bytes.
    pub fn bytes(&mut self) -> Bytes {
        let n = (self.next_u64() % 24) as usize;
        (0..n)
            .map(|_| self.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }
    /// A random UUID.
    pub fn uuid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.next_u64(), self.next_u64())
    }
    /// Random unknown tagged fields, with tags above any Kafka uses, in ascending order.
    pub fn unknown_tagged_fields(&mut self) -> Vec<RawTaggedField> {
        if !self.one_in(4) {
            return Vec::new();
        }
        let n = 1 + (self.next_u64() % 2) as u32;
        (0..n)
            .map(|i| RawTaggedField {
                tag: 10_000 + i * 7,
                data: self.bytes(),
            })
            .collect()
    }
}
