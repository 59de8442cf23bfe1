//! A sorted run of fingerprints in an anonymous temporary file, with a sparse index in memory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

/// Fingerprints per block: one block (4 KiB) is read per lookup.
const BLOCK: usize = 256;
/// Bytes per fingerprint on disk (little-endian `u128`).
const WIDTH: usize = 16;

/// Fingerprints in ascending order, on disk; only every [`BLOCK`]-th is kept in memory
/// (1/256 of the run, so 16 bytes per 256 ids).
#[derive(Debug)]
pub struct SortedRun {
    file: File,
    len: u64,
    /// The first fingerprint of each block.
    index: Vec<u128>,
}

impl SortedRun {
    /// Merges `sources` into a new run in a new anonymous temporary file. Each source must be
    /// ascending, and no fingerprint may be in two sources.
    pub fn merge(
        sources: Vec<Box<dyn Iterator<Item = io::Result<u128>> + '_>>,
    ) -> io::Result<Self> {
        let file = tempfile::tempfile()?;
        let mut writer = BufWriter::with_capacity(64 * 1024, &file);
        let mut index = Vec::new();
        let mut len = 0u64;
        let mut sources: Vec<_> = sources.into_iter().map(Iterator::peekable).collect();
        loop {
            // Few sources (a handful of runs): a linear look for the smallest head.
            let mut smallest: Option<(usize, u128)> = None;
            for (at, source) in sources.iter_mut().enumerate() {
                match source.peek() {
                    Some(Ok(value)) if smallest.is_none_or(|(_, best)| *value < best) => {
                        smallest = Some((at, *value));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) => {
                        return Err(match source.next() {
                            Some(Err(err)) => err,
                            _ => io::Error::other("a sorted run ended while being read"),
                        });
                    }
                    None => {}
                }
            }
            let Some((at, value)) = smallest else { break };
            sources[at].next();
            if len.is_multiple_of(BLOCK as u64) {
                index.push(value);
            }
            writer.write_all(&value.to_le_bytes())?;
            len += 1;
        }
        writer.flush()?;
        drop(writer);
        Ok(SortedRun { file, len, index })
    }

    /// How many fingerprints the run holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether `fingerprint` is in the run: one block read from the file.
    pub fn contains(&self, fingerprint: u128) -> io::Result<bool> {
        let block = self.index.partition_point(|first| *first <= fingerprint);
        let Some(block) = block.checked_sub(1) else {
            return Ok(false);
        };
        let start = block as u64 * BLOCK as u64;
        let count = (self.len - start).min(BLOCK as u64) as usize;
        let mut bytes = [0u8; BLOCK * WIDTH];
        let bytes = &mut bytes[..count * WIDTH];
        read_exact_at(&self.file, bytes, start * WIDTH as u64)?;
        let (mut low, mut high) = (0, count);
        while low < high {
            let middle = (low + high) / 2;
            let value = fingerprint_at(bytes, middle);
            match value.cmp(&fingerprint) {
                std::cmp::Ordering::Equal => return Ok(true),
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
            }
        }
        Ok(false)
    }

    /// The run's fingerprints in order, read sequentially from the start.
    pub fn iter(&self) -> io::Result<impl Iterator<Item = io::Result<u128>> + '_> {
        let mut reader = BufReader::with_capacity(64 * 1024, &self.file);
        io::Seek::seek(&mut reader, io::SeekFrom::Start(0))?;
        let mut remaining = self.len;
        Ok(std::iter::from_fn(move || {
            if remaining == 0 {
                return None;
            }
            remaining -= 1;
            let mut bytes = [0u8; WIDTH];
            Some(
                reader
                    .read_exact(&mut bytes)
                    .map(|()| u128::from_le_bytes(bytes)),
            )
        }))
    }

    /// Bytes of memory the run keeps (its sparse index).
    #[cfg(test)]
    pub fn memory(&self) -> usize {
        self.index.capacity() * WIDTH
    }
}

fn fingerprint_at(bytes: &[u8], at: usize) -> u128 {
    let mut value = [0u8; WIDTH];
    value.copy_from_slice(&bytes[at * WIDTH..(at + 1) * WIDTH]);
    u128::from_le_bytes(value)
}

#[cfg(unix)]
fn read_exact_at(file: &File, bytes: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, bytes: &mut [u8], offset: u64) -> io::Result<()> {
    io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
    file.read_exact(bytes)
}
