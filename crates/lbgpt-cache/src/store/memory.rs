//! [`MemoryStore`]: a bounded in-process store on moka.

use super::{CacheStore, StoreError};
use crate::CacheKey;
use bytes::Bytes;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use moka::Expiry;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// Bytes counted per entry on top of its value in a byte-bounded store: the key, the entry's
/// bookkeeping and moka's own per-entry overhead (an estimate).
const ENTRY_OVERHEAD_BYTES: usize = 160;

/// An in-process store: a concurrent cache (moka) bounded by a number of entries or by bytes,
/// with optional TTLs. The default store.
///
/// When full, the least recently used entry makes room (plain LRU: a fresh answer, just paid
/// for, is always admitted, unlike with a frequency-based admission policy).
///
/// Expiry is checked against [`tokio::time::Instant`] when an entry is read, so paused test
/// time moves it too; moka also drops expired entries in the background to free their memory.
///
/// ```
/// use lbgpt_cache::MemoryStore;
/// use std::time::Duration;
///
/// let by_entries = MemoryStore::new(); // at most 100,000 entries
/// let by_bytes = MemoryStore::builder()
///     .max_bytes(256 * 1024 * 1024)
///     .ttl(Duration::from_secs(3600))
///     .build();
/// # let _ = (by_entries, by_bytes);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<[u8; 32], MemoryEntry>,
    ttl: Option<Duration>,
    bound: Bound,
}

#[derive(Clone, Copy, Debug)]
enum Bound {
    Entries(u64),
    Bytes(u64),
}

#[derive(Clone)]
struct MemoryEntry {
    value: Bytes,
    ttl: Option<Duration>,
    expires_at: Option<Instant>,
}

impl MemoryEntry {
    fn weight(&self) -> u32 {
        u32::try_from(self.value.len().saturating_add(ENTRY_OVERHEAD_BYTES)).unwrap_or(u32::MAX)
    }
}

struct EntryExpiry;

impl Expiry<[u8; 32], MemoryEntry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &MemoryEntry,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        value.ttl
    }

    fn expire_after_update(
        &self,
        _key: &[u8; 32],
        value: &MemoryEntry,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        value.ttl
    }
}

impl MemoryStore {
    /// The default bound: 100,000 entries (the seed's LRU size).
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

    /// A store of at most [`DEFAULT_MAX_ENTRIES`](Self::DEFAULT_MAX_ENTRIES) entries, no TTL.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to choose the bound and TTL.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            bound: Bound::Entries(Self::DEFAULT_MAX_ENTRIES),
            ttl: None,
        }
    }

    /// How many entries the store holds (approximate until pending maintenance has run; see
    /// [`run_pending_tasks`](Self::run_pending_tasks)).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// The store's weighted size: entries for an entry-bounded store, estimated bytes (values
    /// plus a fixed per-entry overhead) for a byte-bounded one.
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// The bound: the most entries, or the most estimated bytes, the store keeps.
    pub fn capacity(&self) -> u64 {
        match self.bound {
            Bound::Entries(n) | Bound::Bytes(n) => n,
        }
    }

    /// Runs moka's pending maintenance (evictions, expirations) now instead of on later
    /// operations, so that [`entry_count`](Self::entry_count) is exact.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("bound", &self.bound)
            .field("ttl", &self.ttl)
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

/// Builds a [`MemoryStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStoreBuilder {
    bound: Bound,
    ttl: Option<Duration>,
}

impl MemoryStoreBuilder {
    /// Keeps at most `entries` entries (the default bound, with
    /// [`MemoryStore::DEFAULT_MAX_ENTRIES`]).
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.bound = Bound::Entries(entries);
        self
    }

    /// Keeps at most about `bytes` bytes: each entry weighs its value's length plus a fixed
    /// overhead of 160 bytes for key and bookkeeping. Replaces an entry bound.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.bound = Bound::Bytes(bytes);
        self
    }

    /// The longest time an entry is served after it was stored, whatever TTL `put` asks for
    /// (the shorter of the two applies).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let builder = Cache::builder()
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(EntryExpiry);
        let cache = match self.bound {
            Bound::Entries(n) => builder.max_capacity(n).build(),
            Bound::Bytes(n) => builder
                .max_capacity(n)
                .weigher(|_key, entry: &MemoryEntry| entry.weight())
                .build(),
        };
        MemoryStore {
            cache,
            ttl: self.ttl,
            bound: self.bound,
        }
    }
}

/// The shorter of two optional TTLs.
pub(crate) fn shorter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl MemoryStore {
    /// The unexpired value under `key`.
    async fn value_of(&self, key: &CacheKey) -> Option<Bytes> {
        let entry = self.cache.get(key.digest()).await?;
        if entry.expires_at.is_some_and(|at| Instant::now() >= at) {
            // Left for moka's own expiry (or the next put) to remove: invalidating here could
            // remove a fresh entry another task just stored.
            return None;
        }
        Some(entry.value)
    }
}

#[async_trait::async_trait]
impl CacheStore for MemoryStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, StoreError> {
        Ok(self.value_of(key).await)
    }

    /// Every key in one call, one after the other (each lookup is a hash-map read).
    async fn get_many(&self, keys: &[CacheKey]) -> Vec<Result<Option<Bytes>, StoreError>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(Ok(self.value_of(key).await));
        }
        values
    }

    async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let ttl = shorter(ttl, self.ttl);
        let entry = MemoryEntry {
            value,
            ttl,
            expires_at: ttl.and_then(|ttl| Instant::now().checked_add(ttl)),
        };
        self.cache.insert(*key.digest(), entry).await;
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.cache.invalidate(key.digest()).await;
        Ok(())
    }

    fn name(&self) -> &str {
        "memory"
    }
}
