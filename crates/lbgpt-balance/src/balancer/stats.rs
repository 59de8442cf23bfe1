//! Per-member counters and the [`MemberStats`] snapshot built from them.

use super::MemberState;
use crate::usage::{Limits, UsageSnapshot};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a member has done since it joined the balancer, and its state now.
///
/// Obtained from [`BalancerHandle::stats`](super::BalancerHandle::stats) or
/// [`member_stats`](super::BalancerHandle::member_stats); a snapshot, not a live view.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemberStats {
    /// The member's name.
    pub name: String,
    /// Active, disabled, cooling down, breaker open, half-open or dead.
    pub state: MemberState,
    /// Its weight.
    pub weight: f64,
    /// Its configured limits.
    pub limits: Limits,
    /// Upstream calls started on it.
    pub requests: u64,
    /// Calls it answered successfully.
    pub succeeded: u64,
    /// Calls that failed (any error, cancellations excluded).
    pub failed: u64,
    /// Prompt tokens of its answers (as the provider reported them).
    pub prompt_tokens: u64,
    /// Completion tokens of its answers.
    pub completion_tokens: u64,
    /// 429 answers it gave (`insufficient_quota` excluded: that one makes it dead).
    pub rate_limited_seen: u64,
    /// Calls it received as a failover from another member within the same request.
    pub retries: u64,
    /// Requests that failed on it and were moved on to another member.
    pub failovers: u64,
    /// Requests it passed on, before any network call, because it does not serve their
    /// model ([`Error::ModelNotServed`](lbgpt_core::Error::ModelNotServed), e.g. an Azure
    /// resource without a deployment for it). They count nowhere else: not in `requests`,
    /// `failed` or `failovers`, and not against its circuit breaker.
    pub model_not_served: u64,
    /// Requests in flight on it now.
    pub in_flight: u64,
    /// The usage tracker's view: window usage, reservations, headroom.
    pub headroom: Option<UsageSnapshot>,
    /// Its peak-EWMA latency (per output token when answers report usage).
    pub latency_ewma: Option<Duration>,
    /// Consecutive failures counted by its (closed) circuit breaker.
    pub consecutive_failures: u32,
}

/// Lock-free counters of one member.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) prompt_tokens: AtomicU64,
    pub(crate) completion_tokens: AtomicU64,
    pub(crate) rate_limited_seen: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) failovers: AtomicU64,
    pub(crate) model_not_served: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Reads a counter.
pub(crate) fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
