//! The embedding cache's store operations on many inputs at once: lookups in batches (one
//! [`get_many`](crate::CacheStore::get_many) per batch) and writes side by side, each within
//! the store timeout; a failure is a miss or a skipped write, never an error. Values are
//! embedding entries ([`entry`](super::entry)).

use super::entry;
use crate::state::{CacheState, Lookup};
use crate::CacheKey;
use bytes::Bytes;
use futures::StreamExt;
use lbgpt_core::EmbeddingResponse;

/// Most keys one lookup of a request asks the store for.
const LOOKUP_KEYS: usize = 64;

/// How many lookups of one request (of up to [`LOOKUP_KEYS`] keys) run at the same time.
const LOOKUP_CONCURRENCY: usize = 4;

/// How many writes of one request run at the same time.
const WRITE_CONCURRENCY: usize = 32;

/// Looks every key up; one result per key, in order.
pub(crate) async fn look_up_all<T>(
    state: &CacheState<T>,
    keys: Vec<CacheKey>,
) -> Vec<Lookup<EmbeddingResponse>> {
    if keys.len() <= LOOKUP_KEYS {
        return state.lookup_many_with(&keys, decode).await;
    }
    // Batches by value: a closure over borrowed batches would make the future not `Send`.
    let batches: Vec<Vec<CacheKey>> = keys.chunks(LOOKUP_KEYS).map(<[_]>::to_vec).collect();
    let batches: Vec<Vec<Lookup<EmbeddingResponse>>> = futures::stream::iter(batches)
        .map(|batch| async move { state.lookup_many_with(&batch, decode).await })
        .buffered(LOOKUP_CONCURRENCY)
        .collect()
        .await;
    batches.into_iter().flatten().collect()
}

/// Stores each answer (one embedding) under its key, as an embedding entry.
pub(crate) async fn store_all<T>(
    state: &CacheState<T>,
    entries: Vec<(CacheKey, &EmbeddingResponse)>,
) {
    futures::stream::iter(entries)
        .for_each_concurrent(WRITE_CONCURRENCY, |(key, answer)| async move {
            state.write_with(&key, answer, encode).await;
        })
        .await;
}

fn decode(value: &[u8]) -> Result<EmbeddingResponse, String> {
    entry::decode(value).map_err(|err| err.to_string())
}

fn encode(answer: &EmbeddingResponse) -> Result<Bytes, String> {
    entry::encode(answer).map_err(|err| err.to_string())
}
