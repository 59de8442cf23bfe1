//! [`CacheLayer`]: puts an exact cache in front of a chat or legacy completions service.

use crate::endpoint::ExactState;
use crate::{Cache, CacheConfig, CacheKey, CacheStats, CacheStore, MemoryStore, StoreError};
use lbgpt_core::{ChatRequest, CompletionRequest};
use std::fmt;
use std::sync::Arc;
use tower::Layer;

/// A [`tower::Layer`] that wraps chat services and legacy completions services in a
/// [`Cache`].
///
/// Cloning is cheap, and every clone and every service built from it share one store, one
/// configuration, one set of in-flight calls and one set of counters ([`CacheLayer::stats`],
/// chat and completion requests counted together), so a facade can keep the layer to report
/// on the cache. Chat and completion entries may share the store: their keys never collide.
///
/// ```
/// use lbgpt_cache::{CacheConfig, CacheLayer, MemoryStore};
/// use std::sync::Arc;
///
/// let layer = CacheLayer::with_config(
///     Arc::new(MemoryStore::new()),
///     CacheConfig::new().namespace("my-project"),
/// );
/// assert_eq!(layer.stats().hits, 0);
/// ```
#[derive(Clone)]
pub struct CacheLayer {
    state: Arc<ExactState>,
}

impl CacheLayer {
    /// A layer over `store` with the default [`CacheConfig`].
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        Self::with_config(store, CacheConfig::default())
    }

    /// A layer over `store` with `config`.
    pub fn with_config(store: Arc<dyn CacheStore>, config: CacheConfig) -> Self {
        CacheLayer {
            state: Arc::new(ExactState::new(store, config)),
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

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        self.state.counters.snapshot()
    }

    /// How many upstream calls shared by identical requests are in progress (chat and
    /// completions together).
    pub fn in_flight(&self) -> usize {
        self.state.flights.len()
    }

    /// The key `request` is cached under (see [`crate::key`]).
    pub fn key_for(&self, request: &ChatRequest) -> Option<CacheKey> {
        self.state.config.key_for(request)
    }

    /// Removes the cached answer of `request`, if any.
    pub async fn invalidate(&self, request: &ChatRequest) -> Result<(), StoreError> {
        self.delete(self.key_for(request)).await
    }

    /// The key the legacy completions `request` is cached under (see "Completion keys" in
    /// [`crate::key`]).
    pub fn completion_key_for(&self, request: &CompletionRequest) -> Option<CacheKey> {
        self.state.config.completion_key_for(request)
    }

    /// Removes the cached answer of the legacy completions `request`, if any.
    pub async fn invalidate_completion(
        &self,
        request: &CompletionRequest,
    ) -> Result<(), StoreError> {
        self.delete(self.completion_key_for(request)).await
    }

    async fn delete(&self, key: Option<CacheKey>) -> Result<(), StoreError> {
        match key {
            Some(key) => self.state.store.delete(&key).await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("store", &self.state.store.name())
            .field("config", &self.state.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Cache<S> {
        Cache::from_state(inner, Arc::clone(&self.state))
    }
}
