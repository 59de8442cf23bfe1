//! [`SemanticStats`]: what the semantic cache layer did.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a [`SemanticCacheLayer`](crate::SemanticCacheLayer), shared by every service
/// it wrapped. Every request is counted once in exactly one of `hits`, `misses`,
/// `ineligible` and `bypassed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SemanticStats {
    /// Answered from a similar cached request.
    pub hits: u64,
    /// Went upstream after a lookup (or without one, in refresh mode, or after an error).
    pub misses: u64,
    /// Of the misses: a candidate passed the threshold but the guard rejected every one.
    pub guard_rejections: u64,
    /// Not served semantically: tools, non-text parts, `n > 1`, or no text to embed.
    pub ineligible: u64,
    /// Passed through in bypass mode (or streamed).
    pub bypassed: u64,
    /// Answers added to the index.
    pub stores: u64,
    /// Embedding or index failures (each was treated as a miss or a skipped store).
    pub errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) guard_rejections: AtomicU64,
    pub(crate) ineligible: AtomicU64,
    pub(crate) bypassed: AtomicU64,
    pub(crate) stores: AtomicU64,
    pub(crate) errors: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SemanticStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SemanticStats {
            hits: read(&self.hits),
            misses: read(&self.misses),
            guard_rejections: read(&self.guard_rejections),
            ineligible: read(&self.ineligible),
            bypassed: read(&self.bypassed),
            stores: read(&self.stores),
            errors: read(&self.errors),
        }
    }
}
