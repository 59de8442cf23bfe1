//! Where answers are kept: the [`CacheStore`] trait and its implementations.
//!
//! - [`MemoryStore`]: in the process (moka), bounded by entries or bytes; the default.
//! - [`DiskStore`]: one file per entry in a directory; survives restarts, crash-safe, shared
//!   by processes on one machine.
//! - `RedisStore` (feature `redis`, on by default): shared by processes on many machines.

mod disk;
mod entry_file;
mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use disk::{DiskStore, DiskStoreBuilder, PurgeReport};
pub use memory::{MemoryStore, MemoryStoreBuilder};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};

use crate::CacheKey;
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

/// How many `get`s the default [`CacheStore::get_many`] runs at the same time.
const GET_MANY_CONCURRENCY: usize = 32;

/// A place to keep cached answers: small and async, so any key-value store fits in a few lines.
///
/// Values are opaque bytes (the exact cache stores the answer's JSON, the embedding cache one
/// [embedding entry](crate::embedding_entry) per input). A store must never
/// return bytes other than those last `put` under the key (or nothing): when it cannot vouch
/// for an entry (torn, corrupt, expired), it answers `Ok(None)`. Errors are for a store that
/// cannot answer at all (I/O failure, server down, timeout); the layer treats them as a miss
/// and logs a warning, so a failing store never fails a request.
///
/// ```
/// use async_trait::async_trait;
/// use bytes::Bytes;
/// use lbgpt_cache::{CacheKey, CacheStore, StoreError};
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
///
/// /// A store without eviction or TTL, for illustration.
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<CacheKey, Bytes>>);
///
/// #[async_trait]
/// impl CacheStore for MapStore {
///     async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, StoreError> {
///         Ok(self.0.lock().map_err(|_| StoreError::backend("poisoned"))?.get(key).cloned())
///     }
///     async fn put(&self, key: &CacheKey, value: Bytes, _ttl: Option<Duration>) -> Result<(), StoreError> {
///         self.0.lock().map_err(|_| StoreError::backend("poisoned"))?.insert(*key, value);
///         Ok(())
///     }
///     async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
///         self.0.lock().map_err(|_| StoreError::backend("poisoned"))?.remove(key);
///         Ok(())
///     }
/// }
/// # let _ = lbgpt_cache::CacheLayer::new(std::sync::Arc::new(MapStore::default()));
/// ```
#[async_trait::async_trait]
pub trait CacheStore: Send + Sync + 'static {
    /// The value stored under `key`, or `None` when there is none (or it expired, or cannot be
    /// trusted).
    async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, StoreError>;

    /// Stores `value` under `key`, replacing any value there; `ttl` is how long it may be
    /// served (`None`: as long as the store keeps it).
    async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError>;

    /// Removes the value under `key`, if any.
    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError>;

    /// The values under `keys`: one result per key, in order, each as [`get`](Self::get)
    /// would give it. The embedding cache looks up a request's inputs with it (a few dozen
    /// keys at a time).
    ///
    /// The default runs [`get`](Self::get) for each key, up to 32 at a time. A store that can
    /// do better overrides it: [`MemoryStore`] reads all keys in one call, [`DiskStore`] in one
    /// blocking task, `RedisStore` with `MGET`. An override that fails as a whole (say a lost
    /// connection) answers the error for every key.
    async fn get_many(&self, keys: &[CacheKey]) -> Vec<Result<Option<Bytes>, StoreError>> {
        // Keys by value: a closure over borrowed keys would make the future not `Send`
        // (rustc cannot prove it for every lifetime).
        futures::stream::iter(keys.iter().copied())
            .map(|key| async move { self.get(&key).await })
            .buffered(GET_MANY_CONCURRENCY)
            .collect()
            .await
    }

    /// A short name for logs (`"memory"`, `"disk"`, `"redis"`).
    fn name(&self) -> &str {
        "custom"
    }
}

/// Why a store could not answer. Never holds credentials (Redis URLs are not quoted).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("cache store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The store did not answer in time.
    #[error("cache store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store's server or library reported an error.
    #[error("cache store error: {0}")]
    Backend(String),
    /// The store was configured wrongly (bad URL, unusable directory, ...).
    #[error("cache store configuration error: {0}")]
    Config(String),
}

impl StoreError {
    /// A [`StoreError::Backend`] with this message.
    pub fn backend(message: impl Into<String>) -> Self {
        StoreError::Backend(message.into())
    }

    /// The same error again (an I/O error keeps its kind and message), for a store that
    /// answers one failure for each key of a [`get_many`](CacheStore::get_many).
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Io(err) => StoreError::Io(std::io::Error::new(err.kind(), err.to_string())),
            StoreError::Timeout(limit) => StoreError::Timeout(*limit),
            StoreError::Backend(message) => StoreError::Backend(message.clone()),
            StoreError::Config(message) => StoreError::Config(message.clone()),
        }
    }

    /// `error` once for each of `count` keys (see [`duplicate`](Self::duplicate)).
    pub(crate) fn for_each_key<T>(error: StoreError, count: usize) -> Vec<Result<T, StoreError>> {
        let mut results = Vec::with_capacity(count);
        for _ in 1..count {
            results.push(Err(error.duplicate()));
        }
        if count > 0 {
            results.push(Err(error));
        }
        results
    }
}

impl From<StoreError> for lbgpt_core::Error {
    /// Store errors reach users only when a store is built (bad path or URL), so they become
    /// [`lbgpt_core::Error::Config`].
    fn from(error: StoreError) -> Self {
        lbgpt_core::Error::Config(error.to_string())
    }
}
