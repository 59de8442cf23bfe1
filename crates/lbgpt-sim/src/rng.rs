//! A tiny deterministic random source for fault injection.
//!
//! Each draw is a pure function of the configured seed, the key and the key's arrival number,
//! so a given key's n-th request meets the same fate on every run, whatever the interleaving of
//! other keys' requests.

/// SplitMix64's finaliser: a well-mixed 64-bit value from any 64-bit input.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` for draw `stream` of arrival `n` of the key hashed `key_hash`.
pub(crate) fn unit(seed: u64, key_hash: u64, n: u64, stream: u64) -> f64 {
    let bits = mix64(seed ^ mix64(key_hash ^ mix64(n.wrapping_mul(4).wrapping_add(stream))));
    // 53 random bits make an exactly representable fraction.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a over `bytes`, continuing from `state` (start with [`FNV_OFFSET`]).
pub(crate) fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The FNV-1a 64-bit offset basis.
pub(crate) const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xAF63_DC4C_8601_EC8C);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_F739_67E8);
    }

    #[test]
    fn unit_draws_are_in_range_and_spread() {
        let draws: Vec<f64> = (0..10_000).map(|n| unit(42, 7, n, 0)).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let below = draws.iter().filter(|u| **u < 0.2).count();
        assert!(
            (1_700..2_300).contains(&below),
            "{below} of 10000 below 0.2"
        );
        assert_eq!(unit(42, 7, 3, 0), unit(42, 7, 3, 0));
        assert_ne!(unit(42, 7, 3, 0), unit(43, 7, 3, 0));
    }
}
