//! The embedding cache's store operations on many inputs at once: lookups and writes run
//! side by side (a bounded number at a time), each within the store timeout, and a failure is
//! a miss or a skipped write, never an error.

use super::upstream::decode_stored;
use crate::state::{CacheState, Lookup};
use crate::CacheKey;
use futures::StreamExt;
use lbgpt_core::EmbeddingResponse;

/// How many store operations of one request run at the same time.
const STORE_CONCURRENCY: usize = 32;

/// Looks every key up; one result per key, in order.
pub(crate) async fn look_up_all<T>(
    state: &CacheState<T>,
    keys: Vec<CacheKey>,
) -> Vec<Lookup<EmbeddingResponse>> {
    futures::stream::iter(keys)
        .map(|key| async move { state.lookup_with(&key, decode_stored).await })
        .buffered(STORE_CONCURRENCY)
        .collect()
        .await
}

/// Stores each answer under its key.
pub(crate) async fn store_all<T>(
    state: &CacheState<T>,
    entries: Vec<(CacheKey, &EmbeddingResponse)>,
) {
    futures::stream::iter(entries)
        .for_each_concurrent(STORE_CONCURRENCY, |(key, answer)| async move {
            state.write(&key, answer).await;
        })
        .await;
}
