//! [`CacheStats`]: what the cache layer did, counted since it was built.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a [`CacheLayer`](crate::CacheLayer) (shared by every service it wrapped),
/// from [`CacheLayer::stats`](crate::CacheLayer::stats).
///
/// Every request is counted once in exactly one of `hits`, `misses`, `coalesced` and
/// `bypassed` (a [`CacheLayer`](crate::CacheLayer) counts its chat and legacy completion
/// requests together). The [`EmbeddingCacheLayer`](crate::EmbeddingCacheLayer) counts inputs instead
/// of requests: every input once (`hits`: answered from the store; `misses`: sent upstream,
/// each distinct input of a request once; `coalesced`: a repeat of an input the request sent,
/// or an input a concurrent request sent), and `stores` counts vectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Answered from the store.
    pub hits: u64,
    /// Made their own upstream call: not found in the store, or not looked up
    /// ([`CacheMode::Refresh`](lbgpt_core::CacheMode::Refresh)).
    pub misses: u64,
    /// Shared the upstream call of an identical request already in flight.
    pub coalesced: u64,
    /// Passed through without touching the cache
    /// ([`CacheMode::Bypass`](lbgpt_core::CacheMode::Bypass), or streamed requests).
    pub bypassed: u64,
    /// Answers written to the store.
    pub stores: u64,
    /// Store operations that failed or timed out, and stored values that could not be
    /// decoded; each was treated as a miss (or a skipped write).
    pub errors: u64,
}

impl CacheStats {
    /// Requests counted: hits + misses + coalesced + bypassed.
    pub fn requests(&self) -> u64 {
        self.hits + self.misses + self.coalesced + self.bypassed
    }

    /// The share of requests answered without an upstream call of their own
    /// ((hits + coalesced) / requests), 0 when there were none.
    pub fn saved_ratio(&self) -> f64 {
        let requests = self.requests();
        if requests == 0 {
            0.0
        } else {
            (self.hits + self.coalesced) as f64 / requests as f64
        }
    }
}

/// The live counters behind [`CacheStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) bypassed: AtomicU64,
    pub(crate) stores: AtomicU64,
    pub(crate) errors: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_n(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: read(&self.hits),
            misses: read(&self.misses),
            coalesced: read(&self.coalesced),
            bypassed: read(&self.bypassed),
            stores: read(&self.stores),
            errors: read(&self.errors),
        }
    }
}
