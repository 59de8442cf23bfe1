//! [`EmbeddingCacheLayer`]: puts a per-input cache in front of an embeddings service.

use super::batch::EmbeddingState;
use super::EmbeddingCache;
use crate::{CacheConfig, CacheKey, CacheStats, CacheStore, MemoryStore, StoreError};
use lbgpt_core::EmbeddingRequest;
use std::fmt;
use std::sync::Arc;
use tower::Layer;

/// A [`tower::Layer`] that wraps embeddings services in an [`EmbeddingCache`]: each input of
/// a request is cached on its own, and only the inputs not cached go upstream.
///
/// It takes the same stores and [`CacheConfig`] as the chat [`CacheLayer`](crate::CacheLayer)
/// (namespace, family, model aliases, TTL, default mode, store timeout, coalescing); its keys
/// never collide with chat keys, so both may share one store. Cloning is cheap, and every
/// clone and every service built from it share one store, one configuration, one set of
/// in-flight inputs and one set of counters ([`EmbeddingCacheLayer::stats`], counted per
/// input).
///
/// ```
/// use lbgpt_cache::{CacheConfig, EmbeddingCacheLayer, MemoryStore};
/// use lbgpt_core::EmbeddingRequest;
/// use std::sync::Arc;
///
/// let layer = EmbeddingCacheLayer::with_config(
///     Arc::new(MemoryStore::new()),
///     CacheConfig::new().namespace("my-project"),
/// );
/// let keys = layer.keys_for(&EmbeddingRequest::new("text-embedding-3-small", vec!["a", "b", "a"]));
/// assert_eq!(keys.len(), 3);
/// assert_eq!(keys[0], keys[2]); // one entry per distinct input
/// assert_ne!(keys[0], keys[1]);
/// ```
#[derive(Clone)]
pub struct EmbeddingCacheLayer {
    state: Arc<EmbeddingState>,
}

impl EmbeddingCacheLayer {
    /// A layer over `store` with the default [`CacheConfig`].
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        Self::with_config(store, CacheConfig::default())
    }

    /// A layer over `store` with `config`.
    pub fn with_config(store: Arc<dyn CacheStore>, config: CacheConfig) -> Self {
        EmbeddingCacheLayer {
            state: Arc::new(EmbeddingState::new(store, config)),
        }
    }

    /// A layer over a new [`MemoryStore`] with default bounds and configuration.
    pub fn in_memory() -> Self {
        Self::new(Arc::new(MemoryStore::new()))
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.state.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.state.store
    }

    /// The counters so far, per input: `hits` (inputs answered from the store), `misses`
    /// (inputs sent upstream, each distinct input of a request once), `coalesced` (inputs
    /// answered by an upstream call made for an equal input: a repeat within the request, or
    /// a concurrent request's), `bypassed` (inputs of requests passed through), `stores`
    /// (vectors written) and `errors` (failed store operations, unreadable entries).
    pub fn stats(&self) -> CacheStats {
        self.state.counters.snapshot()
    }

    /// How many inputs are being fetched upstream and may be shared by concurrent requests.
    pub fn in_flight(&self) -> usize {
        self.state.flights.len()
    }

    /// The key of every input of `request`, in input order (see "Embedding keys" in
    /// [`crate::key`]); empty only if the request cannot be serialised.
    pub fn keys_for(&self, request: &EmbeddingRequest) -> Vec<CacheKey> {
        self.state
            .config
            .embedding_keys_for(request)
            .unwrap_or_default()
    }

    /// Removes the cached vector of every input of `request`. Stops at the first store error.
    pub async fn invalidate(&self, request: &EmbeddingRequest) -> Result<(), StoreError> {
        for key in self.keys_for(request) {
            self.state.store.delete(&key).await?;
        }
        Ok(())
    }
}

impl fmt::Debug for EmbeddingCacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingCacheLayer")
            .field("store", &self.state.store.name())
            .field("config", &self.state.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S> Layer<S> for EmbeddingCacheLayer {
    type Service = EmbeddingCache<S>;

    fn layer(&self, inner: S) -> EmbeddingCache<S> {
        EmbeddingCache::from_state(inner, Arc::clone(&self.state))
    }
}
