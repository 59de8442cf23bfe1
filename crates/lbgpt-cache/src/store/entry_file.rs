//! The format of one disk-cache entry file, and its checks.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "LBGPTCE1" (format version 1)
//!      8    32  the key's SHA-256 digest
//!     40     8  expiry: Unix time in milliseconds, little-endian; 0 = never
//!     48     8  payload length in bytes, little-endian
//!     56    32  SHA-256 over bytes 0..56 followed by the payload
//!     88     n  payload (the cached value)
//! ```
//!
//! A file is served only when all of these hold: the magic matches, the digest is the one of
//! the key looked up (a misplaced file is never served), the length matches the file's size
//! exactly (a truncated or extended file is not), the checksum matches, and the expiry is
//! in the future.

use bytes::Bytes;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"LBGPTCE1";
const CHECKED_HEADER_LEN: usize = 56;
/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = CHECKED_HEADER_LEN + 32;

/// What a read file turned out to be.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A whole, unexpired entry for the key: its payload.
    Valid(Bytes),
    /// A whole entry whose TTL has passed.
    Expired,
    /// Not a whole entry of this key: why.
    Corrupt(&'static str),
}

/// The bytes of an entry file.
pub(crate) fn encode(digest: &[u8; 32], expires_at_ms: u64, payload: &[u8]) -> Vec<u8> {
    let mut file = Vec::with_capacity(HEADER_LEN + payload.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(digest);
    file.extend_from_slice(&expires_at_ms.to_le_bytes());
    file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let checksum = checksum(&file[..CHECKED_HEADER_LEN], payload);
    file.extend_from_slice(&checksum);
    file.extend_from_slice(payload);
    file
}

/// Checks a file read for `digest` at time `now_ms`.
pub(crate) fn decode(file: Vec<u8>, digest: &[u8; 32], now_ms: u64) -> Decoded {
    if file.len() < HEADER_LEN {
        return Decoded::Corrupt("shorter than the header");
    }
    if &file[..8] != MAGIC {
        return Decoded::Corrupt("unknown format (magic)");
    }
    if &file[8..40] != digest {
        return Decoded::Corrupt("written for another key");
    }
    let expires_at_ms = read_u64(&file[40..48]);
    let length = read_u64(&file[48..56]);
    if u64::try_from(file.len() - HEADER_LEN).ok() != Some(length) {
        return Decoded::Corrupt("length does not match the file size (torn write)");
    }
    let expected = checksum(&file[..CHECKED_HEADER_LEN], &file[HEADER_LEN..]);
    if file[CHECKED_HEADER_LEN..HEADER_LEN] != expected[..] {
        return Decoded::Corrupt("checksum mismatch");
    }
    if expires_at_ms != 0 && now_ms >= expires_at_ms {
        return Decoded::Expired;
    }
    Decoded::Valid(Bytes::from(file).slice(HEADER_LEN..))
}

fn checksum(header: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize().into()
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn valid(decoded: Decoded) -> Vec<u8> {
        match decoded {
            Decoded::Valid(bytes) => bytes.to_vec(),
            other => panic!("expected a valid entry, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let file = encode(&KEY, 0, b"hello");
        assert_eq!(valid(decode(file, &KEY, u64::MAX)), b"hello");
        let file = encode(&KEY, 1_000, b"hello");
        assert_eq!(valid(decode(file.clone(), &KEY, 999)), b"hello");
        assert!(matches!(decode(file, &KEY, 1_000), Decoded::Expired));
    }

    #[test]
    fn every_truncation_and_any_flipped_byte_is_corrupt() {
        let file = encode(&KEY, 0, b"{\"choices\":[]}");
        for len in 0..file.len() {
            assert!(
                matches!(decode(file[..len].to_vec(), &KEY, 0), Decoded::Corrupt(_)),
                "truncated to {len}"
            );
        }
        for index in 0..file.len() {
            let mut bad = file.clone();
            bad[index] ^= 0x01;
            assert!(
                matches!(decode(bad, &KEY, 0), Decoded::Corrupt(_)),
                "byte {index} flipped"
            );
        }
        let mut longer = file.clone();
        longer.push(b' ');
        assert!(matches!(decode(longer, &KEY, 0), Decoded::Corrupt(_)));
        assert!(matches!(decode(file, &[8; 32], 0), Decoded::Corrupt(_)));
    }
}
