//! A set of `custom_id`s that keeps a 128-bit fingerprint per id instead of the id itself.
//!
//! Duplicate detection (and, when resuming, the ids an earlier run answered) must remember
//! every id, so this is the one part of a run whose memory grows with the input: about 16
//! bytes per distinct id plus the hash table's spare room, 20 to 40 bytes in all (some 35 MB
//! for a million ids), whatever the ids' length. The fingerprint is two SipHash-1-3 values
//! under random keys chosen per run, so two different ids share one with a probability of
//! about n² / 2¹²⁹ (below 10⁻²⁰ for a billion ids), and no input can be crafted to collide.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// A set of ids, by fingerprint.
#[derive(Debug)]
pub struct IdSet {
    keys: (RandomState, RandomState),
    fingerprints: HashSet<u128, BuildHasherDefault<FingerprintHasher>>,
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet {
            keys: (RandomState::new(), RandomState::new()),
            fingerprints: HashSet::default(),
        }
    }
}

impl IdSet {
    fn fingerprint(&self, id: &str) -> u128 {
        let high = self.keys.0.hash_one(id);
        let low = self.keys.1.hash_one(id);
        (u128::from(high) << 64) | u128::from(low)
    }

    /// Adds `id`; `false` when it was there already.
    pub fn insert(&mut self, id: &str) -> bool {
        let fingerprint = self.fingerprint(id);
        self.fingerprints.insert(fingerprint)
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &str) -> bool {
        self.fingerprints.contains(&self.fingerprint(id))
    }

    /// How many ids the set holds.
    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }
}

/// Fingerprints are random already: the table's hash is their low 64 bits.
#[derive(Debug, Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u128`s are hashed (through `write_u128`); anything else is folded in.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_and_duplicates_refused() {
        let mut set = IdSet::default();
        assert!(set.insert("a"));
        assert!(set.insert("b"));
        assert!(!set.insert("a"));
        assert!(set.contains("b"));
        assert!(!set.contains("c"));
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty());
    }

    #[test]
    fn many_similar_ids_stay_distinct() {
        let mut set = IdSet::default();
        for i in 0..200_000 {
            assert!(set.insert(&format!("request-{i}")), "{i}");
        }
        assert_eq!(set.len(), 200_000);
        assert!(set.contains("request-199999"));
        assert!(!set.contains("request-200000"));
    }
}
