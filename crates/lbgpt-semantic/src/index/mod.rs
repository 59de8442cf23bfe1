//! Nearest-neighbour search over cached requests: the [`VectorIndex`] trait and
//! [`HnswIndex`], an in-process HNSW index saved to a directory.

mod config;
mod graph;
mod hnsw;
mod persist;

pub use config::IndexConfig;
pub use hnsw::{HnswIndex, LoadSummary};

use crate::{Scope, SemanticError};
use std::sync::Arc;

/// The id of an entry in an index, unique within it (also across saves and loads).
pub type EntryId = u64;

/// What is kept with each vector: enough to verify a match and to answer from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The embedded text, for the false-hit guard.
    pub text: String,
    /// The exact-cache key of the request (`v1:<hex>`), reported as the matched request.
    pub key: String,
    /// The answer's wire JSON.
    pub answer: String,
    /// When it was stored, in seconds since the Unix epoch.
    pub created: u64,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id.
    pub id: EntryId,
    /// The scope it may answer in.
    pub scope: Scope,
    /// What was stored.
    pub record: Record,
}

/// A search result: an entry of the query's scope and its cosine similarity to the query.
#[derive(Debug, Clone)]
pub struct Neighbour {
    /// The entry.
    pub entry: Arc<Entry>,
    /// Cosine similarity (dot product of normalised vectors), at most 1.
    pub score: f32,
}

/// A vector index partitioned by [`Scope`]: a search only ever returns entries of the scope
/// it names.
///
/// Async so that shared backends (a vector database, Redis vector sets) fit the same trait;
/// the in-process [`HnswIndex`] answers at once.
#[async_trait::async_trait]
pub trait VectorIndex: Send + Sync + 'static {
    /// Adds `vector` (normalised, of the index's dimension) with its record to `scope`;
    /// may evict older entries to stay within the index's bound.
    async fn insert(
        &self,
        scope: Scope,
        vector: Vec<f32>,
        record: Record,
    ) -> Result<EntryId, SemanticError>;

    /// Up to `k` entries of `scope` nearest to `vector`, most similar first.
    async fn search(
        &self,
        scope: &Scope,
        vector: &[f32],
        k: usize,
    ) -> Result<Vec<Neighbour>, SemanticError>;

    /// Removes an entry; whether it was there.
    async fn remove(&self, id: EntryId) -> Result<bool, SemanticError>;

    /// Entries stored.
    fn len(&self) -> usize;

    /// Whether no entry is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes what was inserted durable, for indexes that persist (a no-op otherwise).
    async fn flush(&self) -> Result<(), SemanticError> {
        Ok(())
    }
}

/// A pseudo-random unit vector of `dimensions` for the index's unit tests: components drawn
/// by xorshift from `state` (advanced), then normalised.
#[cfg(test)]
pub(crate) fn test_unit_vector(state: &mut u64, dimensions: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dimensions)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    crate::embed::normalise(&mut v);
    v
}
