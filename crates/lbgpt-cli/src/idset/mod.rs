//! A set of `custom_id`s with flat memory: a 128-bit fingerprint per id, the newest ones in
//! memory, the rest in sorted runs in temporary files.
//!
//! Duplicate detection (and, when resuming, the ids an earlier run answered) must remember
//! every id. Kept in memory that is some 35 MB per million ids; here at most
//! [`MEMORY_IDS`] fingerprints are in memory (about 2 MB). When they are full they are sorted
//! and written to an anonymous temporary file (in `TMPDIR`, removed by the system when the
//! run ends, even killed), and runs of similar size are merged so that there are at most
//! at most log2(ids / [`MEMORY_IDS`]) + 1 of them (4 for a million ids); of each run only every
//! 256th fingerprint stays in memory (16 bytes per 256 ids: 62 KB per million). A lookup
//! reads one 4 KiB block per run, from the page cache in practice.
//!
//! The fingerprint is two SipHash-1-3 values under random keys chosen per run, so two
//! different ids share one with a probability of about n² / 2¹²⁹ (below 10⁻²⁰ for a billion
//! ids), and no input can be crafted to collide.

mod sorted_run;

use sorted_run::SortedRun;
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io;

/// The most fingerprints kept in memory before they go to a sorted run on disk.
pub const MEMORY_IDS: usize = 1 << 16;

type Fingerprints = HashSet<u128, BuildHasherDefault<FingerprintHasher>>;

/// A set of ids, by fingerprint, in bounded memory.
#[derive(Debug)]
pub struct IdSet {
    keys: (RandomState, RandomState),
    /// The newest fingerprints (fewer than `memory_ids`).
    recent: Fingerprints,
    /// Older fingerprints, largest run first; no fingerprint is in two places.
    runs: Vec<SortedRun>,
    memory_ids: usize,
    len: usize,
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet::with_memory_ids(MEMORY_IDS)
    }
}

impl IdSet {
    /// A set keeping at most `memory_ids` fingerprints in memory (at least 1).
    pub fn with_memory_ids(memory_ids: usize) -> Self {
        let memory_ids = memory_ids.max(1);
        IdSet {
            keys: (RandomState::new(), RandomState::new()),
            recent: Fingerprints::with_capacity_and_hasher(memory_ids, Default::default()),
            runs: Vec::new(),
            memory_ids,
            len: 0,
        }
    }

    fn fingerprint(&self, id: &str) -> u128 {
        let high = self.keys.0.hash_one(id);
        let low = self.keys.1.hash_one(id);
        (u128::from(high) << 64) | u128::from(low)
    }

    /// Adds `id`; `false` when it was there already. Fails only when a temporary file cannot
    /// be written or read.
    pub fn insert(&mut self, id: &str) -> io::Result<bool> {
        let fingerprint = self.fingerprint(id);
        if self.holds(fingerprint).map_err(in_context)? {
            return Ok(false);
        }
        self.recent.insert(fingerprint);
        self.len += 1;
        if self.recent.len() >= self.memory_ids {
            self.spill().map_err(in_context)?;
        }
        Ok(true)
    }

    /// Whether `id` is in the set. Fails only when a temporary file cannot be read.
    pub fn contains(&self, id: &str) -> io::Result<bool> {
        self.holds(self.fingerprint(id)).map_err(in_context)
    }

    fn holds(&self, fingerprint: u128) -> io::Result<bool> {
        if self.recent.contains(&fingerprint) {
            return Ok(true);
        }
        for run in &self.runs {
            if run.contains(fingerprint)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes the in-memory fingerprints out as a sorted run, merged with the runs not larger
    /// than it (so run sizes at least double from the newest to the oldest).
    fn spill(&mut self) -> io::Result<()> {
        let mut fresh: Vec<u128> = self.recent.drain().collect();
        fresh.sort_unstable();
        let mut size = fresh.len() as u64;
        let mut merged = Vec::new();
        while let Some(last) = self.runs.last() {
            if last.len() > size {
                break;
            }
            size += last.len();
            merged.extend(self.runs.pop());
        }
        let run = {
            let mut sources: Vec<Box<dyn Iterator<Item = io::Result<u128>> + '_>> =
                vec![Box::new(fresh.into_iter().map(Ok))];
            for old in &merged {
                sources.push(Box::new(old.iter()?));
            }
            SortedRun::merge(sources)?
        };
        self.runs.push(run);
        Ok(())
    }

    /// How many ids the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many sorted runs are on disk.
    #[cfg(test)]
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Bytes of memory the runs' indexes take (the in-memory fingerprints not counted).
    #[cfg(test)]
    pub fn index_memory(&self) -> usize {
        self.runs.iter().map(SortedRun::memory).sum()
    }
}

/// Says which files failed: the error is otherwise a bare "No space left on device".
fn in_context(err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!(
            "keeping the custom_ids seen in a temporary file in {} failed (set TMPDIR to \
             another directory, or pass --no-duplicate-check): {err}",
            std::env::temp_dir().display()
        ),
    )
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
        assert!(set.insert("a").expect("temporary files work"));
        assert!(set.insert("b").expect("temporary files work"));
        assert!(!set.insert("a").expect("temporary files work"));
        assert!(set.contains("b").expect("temporary files work"));
        assert!(!set.contains("c").expect("temporary files work"));
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty());
        assert_eq!(set.runs(), 0);
    }

    #[test]
    fn many_similar_ids_stay_distinct() {
        let mut set = IdSet::default();
        for i in 0..200_000 {
            assert!(
                set.insert(&format!("request-{i}"))
                    .expect("temporary files work"),
                "{i}"
            );
        }
        assert_eq!(set.len(), 200_000);
        assert!(set
            .contains("request-199999")
            .expect("temporary files work"));
        assert!(!set
            .contains("request-200000")
            .expect("temporary files work"));
        assert!(set.runs() >= 1, "200,000 ids do not fit in memory");
    }

    #[test]
    fn spilled_ids_are_found_and_repeats_refused_wherever_they_are() {
        let memory = 64;
        let mut set = IdSet::with_memory_ids(memory);
        let total = 20_000;
        for i in 0..total {
            assert!(
                set.insert(&format!("id-{i}"))
                    .expect("temporary files work"),
                "{i}"
            );
            // A repeat of an id in memory, in the newest run and in the oldest.
            if i % 997 == 0 {
                for earlier in [i, i / 2, 0] {
                    assert!(
                        !set.insert(&format!("id-{earlier}"))
                            .expect("temporary files work"),
                        "{earlier}"
                    );
                }
            }
        }
        assert_eq!(set.len(), total);
        for i in 0..total {
            assert!(
                set.contains(&format!("id-{i}"))
                    .expect("temporary files work"),
                "{i}"
            );
        }
        for i in total..total + 2_000 {
            assert!(
                !set.contains(&format!("id-{i}"))
                    .expect("temporary files work"),
                "{i}"
            );
        }
        // Runs double in size from the newest to the oldest: about log2(total / memory).
        let most = (total / memory).ilog2() as usize + 1;
        assert!(set.runs() >= 2 && set.runs() <= most, "{} runs", set.runs());
        // The index keeps one fingerprint per 256 (16 bytes each), plus spare capacity.
        assert!(set.index_memory() <= 2 * (total / 256 + set.runs()) * 16);
    }

    #[test]
    fn sizes_of_runs_at_least_double_from_newest_to_oldest() {
        let mut set = IdSet::with_memory_ids(10);
        for i in 0..5_000 {
            set.insert(&i.to_string()).expect("temporary files work");
            let sizes: Vec<u64> = set.runs.iter().map(SortedRun::len).collect();
            assert!(
                sizes.windows(2).all(|pair| pair[0] > pair[1]),
                "after {i}: {sizes:?}"
            );
            let on_disk: u64 = sizes.iter().sum();
            assert_eq!(on_disk as usize + set.recent.len(), set.len());
        }
    }
}
