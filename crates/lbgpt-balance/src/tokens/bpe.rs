//! [`RankTable`]: counts the tokens of one pre-split piece by byte-pair merging, as tiktoken
//! encodes it, from the ranks of a loaded tiktoken encoding.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use tiktoken_rs::{CoreBPE, Rank};

/// Above every ordinary rank of the encodings used here (`o200k_base` has about 200k).
const MAX_RANK: Rank = 1 << 18;

/// Pieces longer than this are left to tiktoken, whose merge stays fast on long input; the
/// simple merge here is quadratic in the piece's length.
pub(crate) const MAX_PIECE: usize = 256;

/// A fast hash for the table's byte strings (fixed keys, so no flooding concern).
#[derive(Default)]
pub(crate) struct WordHasher(u64);

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // Mix the high bits down: the table indexes buckets by the low ones.
        let x = self.0;
        (x ^ (x >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (x >> 29)
    }
}

/// Every ordinary token of an encoding, by its bytes.
pub(crate) struct RankTable {
    ranks: HashMap<Box<[u8]>, Rank, BuildHasherDefault<WordHasher>>,
}

impl RankTable {
    /// The ordinary tokens of `bpe` (special tokens left out: they never come out of
    /// ordinary text).
    pub(crate) fn of(bpe: &CoreBPE) -> RankTable {
        let special = bpe.special_tokens();
        let mut ranks = HashMap::with_capacity_and_hasher(1 << 17, BuildHasherDefault::default());
        for rank in 0..MAX_RANK {
            let Ok(bytes) = bpe.decode_bytes(&[rank]) else {
                continue;
            };
            let is_special = std::str::from_utf8(&bytes).is_ok_and(|text| special.contains(text));
            if !is_special {
                ranks.insert(bytes.into_boxed_slice(), rank);
            }
        }
        RankTable { ranks }
    }

    /// How many tokens the byte-pair encoding of `piece` has; `None` for a piece longer than
    /// [`MAX_PIECE`]. `scratch` is working space, reused from piece to piece.
    pub(crate) fn count(&self, piece: &[u8], scratch: &mut Scratch) -> Option<u64> {
        if piece.len() <= 1 || self.ranks.contains_key(piece) {
            return Some(u64::from(!piece.is_empty()));
        }
        if piece.len() > MAX_PIECE {
            return None;
        }
        // Parts start at `starts[i]`; `pair[i]` is the rank of parts i and i + 1 together.
        // Merge the lowest-ranked pair (the leftmost of equals) until no pair is a token.
        let rank_of = |from: usize, to: usize| {
            self.ranks
                .get(&piece[from..to])
                .copied()
                .unwrap_or(Rank::MAX)
        };
        let Scratch { starts, pair } = scratch;
        starts.clear();
        starts.extend(0..=piece.len());
        pair.clear();
        pair.extend((0..piece.len() - 1).map(|i| rank_of(i, i + 2)));
        loop {
            let mut best = Rank::MAX;
            let mut at = 0;
            for (i, &rank) in pair.iter().enumerate() {
                if rank < best {
                    best = rank;
                    at = i;
                }
            }
            if best == Rank::MAX {
                break;
            }
            // Parts `at` and `at + 1` become one.
            starts.remove(at + 1);
            pair.remove(at);
            let parts = starts.len() - 1;
            if at + 1 < parts {
                pair[at] = rank_of(starts[at], starts[at + 2]);
            }
            if at > 0 {
                pair[at - 1] = rank_of(starts[at - 1], starts[at + 1]);
            }
        }
        Some((starts.len() - 1) as u64)
    }
}

/// Working space of [`RankTable::count`], kept across the pieces of a text.
#[derive(Default)]
pub(crate) struct Scratch {
    starts: Vec<usize>,
    pair: Vec<Rank>,
}
