//! The state a cache layer shares with every service it wraps: store, configuration,
//! counters, in-flight calls; and the store operations the layers make.

use crate::stats::Counters;
use crate::{CacheConfig, CacheKey, CacheStore, StoreError};
use bytes::Bytes;
use lbgpt_core::{ApiResponse, CacheStatus, RawBody, ResponseMeta};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Store failures are logged at most once per this interval (with the number left unlogged).
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The state of a cache layer whose in-flight calls are registered in `F` (the exact cache's
/// [`ExactFlights`](crate::endpoint::ExactFlights), one registry per endpoint; the embedding
/// cache's `Flights` of batches).
pub(crate) struct CacheState<F> {
    pub(crate) store: Arc<dyn CacheStore>,
    pub(crate) config: CacheConfig,
    pub(crate) counters: Counters,
    pub(crate) flights: F,
    warner: OutageWarner,
}

impl<F: Default> CacheState<F> {
    pub(crate) fn new(store: Arc<dyn CacheStore>, config: CacheConfig) -> Self {
        CacheState {
            store,
            config,
            counters: Counters::default(),
            flights: F::default(),
            warner: OutageWarner::new(),
        }
    }
}

impl<F> CacheState<F> {
    /// Looks `key` up and reads the value as an answer of type `V` (its wire JSON).
    pub(crate) async fn lookup<V: DeserializeOwned>(&self, key: &CacheKey) -> Lookup<V> {
        self.lookup_with(key, |bytes| {
            serde_json::from_slice::<V>(bytes).map_err(|err| err.to_string())
        })
        .await
    }

    /// Looks `key` up and reads the value with `decode`. A store failure or an undecodable
    /// value is a miss too (counted and logged; an undecodable value is deleted).
    pub(crate) async fn lookup_with<V>(
        &self,
        key: &CacheKey,
        decode: impl FnOnce(&[u8]) -> Result<V, String>,
    ) -> Lookup<V> {
        let found = self.bounded(self.store.get(key)).await;
        self.settle(key, found, decode).await
    }

    /// Looks every key up with one [`CacheStore::get_many`] within the store timeout, and
    /// reads each value with `decode`; one result per key, in order, each as
    /// [`lookup_with`](Self::lookup_with) would give it.
    pub(crate) async fn lookup_many_with<V>(
        &self,
        keys: &[CacheKey],
        decode: impl Fn(&[u8]) -> Result<V, String>,
    ) -> Vec<Lookup<V>> {
        let found = match self.config.get_store_timeout() {
            None => self.store.get_many(keys).await,
            Some(limit) => tokio::time::timeout(limit, self.store.get_many(keys))
                .await
                .unwrap_or_else(|_| {
                    StoreError::for_each_key(StoreError::Timeout(limit), keys.len())
                }),
        };
        let mut lookups = Vec::with_capacity(keys.len());
        let mut found = found.into_iter();
        for key in keys {
            let result = found.next().unwrap_or_else(|| {
                Err(StoreError::backend(
                    "get_many answered fewer values than keys",
                ))
            });
            lookups.push(self.settle(key, result, &decode).await);
        }
        lookups
    }

    /// What the store's answer for `key` means: a decoded value, nothing, or a failure. A
    /// failure or an undecodable value is counted and logged; an undecodable value deleted.
    async fn settle<V>(
        &self,
        key: &CacheKey,
        found: Result<Option<Bytes>, StoreError>,
        decode: impl FnOnce(&[u8]) -> Result<V, String>,
    ) -> Lookup<V> {
        let bytes = match found {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Lookup::Absent,
            Err(err) => {
                self.failed("get", key, &err);
                return Lookup::Failed;
            }
        };
        match decode(&bytes) {
            Ok(value) => Lookup::Found(value),
            Err(err) => {
                self.failed("decode", key, &err);
                // A value this version cannot read is useless; make room for a fresh answer.
                if let Err(err) = self.bounded(self.store.delete(key)).await {
                    self.failed("delete", key, &err);
                }
                Lookup::Absent
            }
        }
    }

    /// Stores `response` under `key` (its wire JSON; the metadata is not kept): `body`, the
    /// provider's own bytes of it when it kept them (see
    /// [`RequestOptions::keep_body`](lbgpt_core::RequestOptions::keep_body)), else the answer
    /// serialised again. A failure is counted and logged, never returned.
    ///
    /// Only answers a provider gave for exactly this request are stored: an answer a layer
    /// below took from a cache (a semantic hit for a similar request) is not, so an identical
    /// request later never becomes an exact hit of an answer chosen by similarity.
    pub(crate) async fn save<V: ApiResponse + Serialize>(
        &self,
        key: &CacheKey,
        response: &V,
        body: Option<RawBody>,
    ) {
        if response.meta().cache != CacheStatus::Miss {
            return;
        }
        match body {
            Some(body) => self.put(key, body.into_bytes()).await,
            None => self.write(key, response).await,
        }
    }

    /// Stores `value`'s JSON under `key`, with the configured TTL. A failure is counted and
    /// logged, never returned.
    pub(crate) async fn write<V: Serialize + ?Sized>(&self, key: &CacheKey, value: &V) {
        self.write_with(key, value, |value| {
            serde_json::to_vec(value)
                .map(Bytes::from)
                .map_err(|err| err.to_string())
        })
        .await;
    }

    /// Stores `value` under `key` as `encode` writes it, with the configured TTL. A failure
    /// is counted and logged, never returned.
    pub(crate) async fn write_with<V: ?Sized>(
        &self,
        key: &CacheKey,
        value: &V,
        encode: impl FnOnce(&V) -> Result<Bytes, String>,
    ) {
        match encode(value) {
            Ok(bytes) => self.put(key, bytes).await,
            Err(err) => self.failed("encode", key, &err),
        }
    }

    /// Stores `bytes` under `key`, with the configured TTL. A failure is counted and logged,
    /// never returned.
    async fn put(&self, key: &CacheKey, bytes: Bytes) {
        let ttl = self.config.get_ttl();
        match self.bounded(self.store.put(key, bytes, ttl)).await {
            Ok(()) => Counters::add(&self.counters.stores),
            Err(err) => self.failed("put", key, &err),
        }
    }

    /// Runs a store operation within the configured store timeout.
    async fn bounded<R>(
        &self,
        operation: impl Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        match self.config.get_store_timeout() {
            None => operation.await,
            Some(limit) => tokio::time::timeout(limit, operation)
                .await
                .unwrap_or(Err(StoreError::Timeout(limit))),
        }
    }

    fn failed(&self, operation: &str, key: &CacheKey, error: &dyn fmt::Display) {
        Counters::add(&self.counters.errors);
        self.warner.warn(self.store.name(), operation, key, error);
    }
}

/// What a lookup found.
// Returned once per lookup and matched at once: boxing the answer would cost an allocation
// per hit for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Lookup<V> {
    /// A stored answer.
    Found(V),
    /// Nothing usable under the key.
    Absent,
    /// The store failed or timed out (a miss; looking again right away is likely futile).
    Failed,
}

/// Turns a stored answer into a hit: metadata says `Exact`, no attempts, the lookup's time.
pub(crate) fn as_hit<V: ApiResponse>(mut response: V, lookup: Duration) -> V {
    let mut meta = ResponseMeta::default();
    meta.cache = CacheStatus::Exact;
    meta.attempts = 0;
    meta.latency = lookup;
    *response.meta_mut() = meta;
    response
}

/// Logs store failures as warnings, at most one per [`WARN_INTERVAL`], so that an outage under
/// load does not flood the log.
struct OutageWarner {
    started: std::time::Instant,
    /// Milliseconds after `started` of the last warning, or `u64::MAX` before the first.
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl OutageWarner {
    fn new() -> Self {
        OutageWarner {
            started: std::time::Instant::now(),
            last_ms: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    fn warn(&self, store: &str, operation: &str, key: &CacheKey, error: &dyn fmt::Display) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= WARN_INTERVAL.as_millis() as u64;
        if due
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            tracing::warn!(
                store,
                operation,
                %key,
                error = %error,
                suppressed_since_last_warning = suppressed,
                "cache store failed; the request is treated as a cache miss"
            );
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
