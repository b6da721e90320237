//! The log cleaner's offset map, following Kafka's `SkimpyOffsetMap`: a fixed-capacity,
//! open-addressing hash table from the **MD5 hash of a record key** (16 bytes) to the offset
//! of the key's latest record (8 bytes), so that memory is 24 bytes per slot whatever the
//! keys' sizes.
//!
//! * **Capacity.** Kafka gives each cleaner thread `log.cleaner.dedupe.buffer.size /
//!   log.cleaner.threads` bytes (at most `i32::MAX`), i.e. `bytes / 24` slots, of which at most
//!   `slots × log.cleaner.io.buffer.load.factor` are filled (Kafka's `maxDesiredMapSize`).
//!   When the map reaches that size, the cleaner stops indexing and cleans only up to the last
//!   batch it indexed whole ([`OffsetMap::latest_offset`]); the next pass continues from
//!   there. broker-lite has one cleaner, so it uses the whole buffer; it allocates the table
//!   for each pass and never more slots than the pass can fill (one per offset of its dirty
//!   range, over the load factor), so a small log does not cost the whole buffer.
//! * **Keys are compared through their hashes**, as in Kafka: two keys with the same MD5 hash
//!   are taken for the same key (Kafka accepts this; an MD5 collision between two keys of one
//!   partition would make the cleaner drop the older one's record as superseded).
//! * Collisions between different hashes are resolved by linear probing from a slot chosen by
//!   the hash (Kafka probes a few hash-derived slots first; only membership matters). There
//!   are no deletions. A probe sequence ends at the hash, at an empty slot, or after visiting
//!   every slot once, so lookups are bounded even in a map filled completely (load factor 1).

use md5::{Digest, Md5};

/// Bytes per slot: a 16-byte MD5 hash and an 8-byte offset (Kafka's `bytesPerEntry`).
pub(crate) const BYTES_PER_ENTRY: u64 = 24;

/// Kafka's `SkimpyOffsetMap`: MD5 key hash → latest offset, with a fixed number of slots.
#[derive(Debug)]
pub(crate) struct OffsetMap {
    /// The key hash of each slot (meaningful only where `offsets` is non-zero).
    hashes: Vec<[u8; 16]>,
    /// `offset + 1` of each slot; 0 marks an empty slot (offsets are never negative).
    offsets: Vec<i64>,
    /// Distinct hashes stored.
    entries: usize,
    /// Kafka's `maxDesiredMapSize`: the map is full at this many entries.
    max_entries: usize,
    /// Kafka's `latestOffset`: the last offset indexed, -1 before any.
    latest_offset: i64,
}

/// The slots a dedupe buffer of `buffer_bytes` provides: `min(buffer, i32::MAX) / 24`, as
/// Kafka sizes a cleaner thread's `SkimpyOffsetMap`.
pub(crate) fn slots_for(buffer_bytes: u64) -> usize {
    let memory = buffer_bytes.min(i32::MAX as u64);
    usize::try_from(memory / BYTES_PER_ENTRY).unwrap_or(usize::MAX)
}

/// Kafka's `maxDesiredMapSize`: `floor(slots × load_factor)`, at most `slots`.
pub(crate) fn max_entries_for(slots: usize, load_factor: f64) -> usize {
    let max = (slots as f64 * load_factor).floor();
    if max.is_nan() || max <= 0.0 {
        0
    } else if max >= slots as f64 {
        slots
    } else {
        max as usize
    }
}

/// The MD5 hash of a record key (Kafka's default `log.cleaner` hash algorithm).
pub(crate) fn key_hash(key: &[u8]) -> [u8; 16] {
    Md5::digest(key).into()
}

impl OffsetMap {
    /// An empty map of `slots` slots (at least 1) that is full at `max_entries` entries (at
    /// most `slots`).
    pub fn new(slots: usize, max_entries: usize) -> OffsetMap {
        let slots = slots.max(1);
        OffsetMap {
            hashes: vec![[0u8; 16]; slots],
            offsets: vec![0i64; slots],
            entries: 0,
            max_entries: max_entries.min(slots),
            latest_offset: -1,
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.offsets.len()
    }

    /// Number of distinct key hashes stored.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// The entry count at which the map is full.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Whether no more entries may be put (Kafka's `map.size >= maxDesiredMapSize`: the
    /// cleaner stops indexing, even for a key already in the map).
    pub fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }

    /// The first slot to probe for `hash`.
    fn start_slot(&self, hash: &[u8; 16]) -> usize {
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        (u64::from_be_bytes(first) % self.slots() as u64) as usize
    }

    /// The slot holding `hash`, or else the empty slot where it would go; `None` when neither
    /// exists (every slot holds another hash).
    fn find_slot(&self, hash: &[u8; 16]) -> Option<usize> {
        let slots = self.slots();
        let mut slot = self.start_slot(hash);
        for _ in 0..slots {
            if self.offsets[slot] == 0 || &self.hashes[slot] == hash {
                return Some(slot);
            }
            slot = if slot + 1 == slots { 0 } else { slot + 1 };
        }
        None
    }

    /// Records `offset` as the latest offset of `key` (overwriting the key's earlier one) and
    /// as the map's latest offset. Returns `false`, changing nothing, when the map
    /// [`is_full`](Self::is_full) or `offset` is negative or `i64::MAX` (stored as
    /// `offset + 1`).
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        if self.is_full() || offset < 0 || offset == i64::MAX {
            return false;
        }
        let hash = key_hash(key);
        // Not full, so at least one slot is empty and a slot is always found.
        let Some(slot) = self.find_slot(&hash) else {
            return false;
        };
        if self.offsets[slot] == 0 {
            self.hashes[slot] = hash;
            self.entries += 1;
        }
        self.offsets[slot] = offset + 1;
        self.latest_offset = offset;
        true
    }

    /// The latest offset recorded for `key` (or for a key with the same MD5 hash).
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let hash = key_hash(key);
        let slot = self.find_slot(&hash)?;
        match self.offsets[slot] {
            0 => None,
            stored => Some(stored - 1),
        }
    }

    /// The last offset indexed (Kafka's `latestOffset`), -1 before any.
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Moves the latest offset to `offset` (Kafka's `updateLatestOffset`: after each whole
    /// batch, and at the end of each wholly indexed segment).
    pub fn update_latest_offset(&mut self, offset: i64) {
        self.latest_offset = offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_keys_is_the_standard_digest() {
        // RFC 1321 test vectors.
        let hex = |h: [u8; 16]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(key_hash(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(key_hash(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn capacity_follows_the_buffer_and_the_load_factor() {
        assert_eq!(slots_for(134_217_728), 5_592_405);
        assert_eq!(max_entries_for(5_592_405, 0.9), 5_033_164);
        assert_eq!(slots_for(2400), 100);
        assert_eq!(max_entries_for(100, 0.9), 90);
        assert_eq!(max_entries_for(100, 1.0), 100);
        assert_eq!(max_entries_for(100, 2.0), 100);
        assert_eq!(max_entries_for(1, 0.9), 0);
        assert_eq!(max_entries_for(100, f64::NAN), 0);
        // Kafka caps a cleaner thread's memory at Int.MaxValue.
        assert_eq!(slots_for(u64::MAX), (i32::MAX as u64 / 24) as usize);
    }

    #[test]
    fn put_get_overwrite_and_latest_offset() {
        let mut map = OffsetMap::new(16, 14);
        assert_eq!(map.latest_offset(), -1);
        assert_eq!(map.get(b"a"), None);
        assert!(map.put(b"a", 0));
        assert!(map.put(b"b", 1));
        assert!(map.put(b"", 2), "an empty key is a key");
        assert_eq!(
            (map.get(b"a"), map.get(b"b"), map.get(b"")),
            (Some(0), Some(1), Some(2))
        );
        assert_eq!(map.latest_offset(), 2);
        // Overwriting keeps the size and moves the offset.
        assert!(map.put(b"a", 7));
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(b"a"), Some(7));
        assert_eq!(map.latest_offset(), 7);
        map.update_latest_offset(9);
        assert_eq!(map.latest_offset(), 9);
        assert_eq!(map.get(b"c"), None);
        assert!(!map.put(b"c", -1), "negative offsets are refused");
        assert!(!map.put(b"c", i64::MAX), "i64::MAX cannot be stored");
        assert_eq!(map.get(b"c"), None);
    }

    #[test]
    fn a_full_map_refuses_every_put() {
        let mut map = OffsetMap::new(10, 9);
        for i in 0..9 {
            assert!(map.put(format!("k{i}").as_bytes(), i));
        }
        assert!(map.is_full());
        // Kafka stops at `size >= maxDesiredMapSize`, even for a key already present.
        assert!(!map.put(b"k0", 100));
        assert!(!map.put(b"new", 100));
        assert_eq!(map.get(b"k0"), Some(0));
        assert_eq!(map.get(b"new"), None);
        assert_eq!(map.latest_offset(), 8);
        for i in 0..9 {
            assert_eq!(map.get(format!("k{i}").as_bytes()), Some(i));
        }
    }

    #[test]
    fn collisions_probe_and_every_slot_can_be_used() {
        // A load factor of 1: all slots fill, and lookups of absent keys still end.
        let mut map = OffsetMap::new(64, 64);
        for i in 0..64 {
            assert!(map.put(format!("key-{i}").as_bytes(), i * 2));
        }
        assert!(map.is_full());
        for i in 0..64 {
            assert_eq!(map.get(format!("key-{i}").as_bytes()), Some(i * 2));
        }
        assert_eq!(map.get(b"absent"), None);
        // Repeated keys: the last put wins while the map is not full.
        let mut map = OffsetMap::new(1000, 900);
        for round in 0..3 {
            for i in 0..300 {
                assert!(map.put(format!("{i}").as_bytes(), round * 1000 + i));
            }
        }
        assert_eq!(map.len(), 300);
        for i in 0..300 {
            assert_eq!(map.get(format!("{i}").as_bytes()), Some(2000 + i));
        }
        assert_eq!(map.latest_offset(), 2299);
    }
}
