//! Counters a test can read: atomics updated on the request path (plus one short lock per
//! arrival for the peak windows), copied into plain snapshots on demand.

use crate::state::lock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What the simulator has seen, as a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// HTTP requests received (every path, every key, known or not).
    pub requests: u64,
    /// TCP connections accepted (clients that pool connections open few).
    pub connections: u64,
    /// Answers sent, by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Connections reset by [`Fault::Reset`](crate::Fault::Reset) (no HTTP answer).
    pub resets: u64,
    /// Per-key counters, by key id (see [`KeyConfig::id`](crate::KeyConfig::id)).
    pub keys: BTreeMap<String, KeyStats>,
}

impl SimStats {
    /// How many answers had `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// Counters of one key, as a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// Authenticated requests that arrived for this key, whatever their fate.
    pub requests: u64,
    /// Normal `200` answers (a [`Fault::MalformedJson`](crate::Fault::MalformedJson) answer is
    /// a fault, not a success).
    pub succeeded: u64,
    /// `429` answers of the key's own RPM/TPM limits (scripted or random `429`s count as
    /// faults).
    pub rate_limited: u64,
    /// Faults applied, scripted or random ([`Fault::Stall`](crate::Fault::Stall) included).
    pub faults_injected: u64,
    /// The faults among `faults_injected` answered with a `429`
    /// ([`Fault::RateLimited`](crate::Fault::RateLimited),
    /// [`Fault::InsufficientQuota`](crate::Fault::InsufficientQuota), or a 429 status).
    /// Every 429 the key got is `rate_limited + injected_429s + insufficient_quota`.
    pub injected_429s: u64,
    /// `401 invalid_api_key` answers because the key was revoked
    /// ([`Simulator::revoke_key`](crate::Simulator::revoke_key)).
    pub unauthorized: u64,
    /// `429 insufficient_quota` answers because the key's quota was set exhausted
    /// ([`Simulator::set_quota_exhausted`](crate::Simulator::set_quota_exhausted)).
    pub insufficient_quota: u64,
    /// Prompt tokens of the successful answers (as reported in their `usage`).
    pub prompt_tokens: u64,
    /// Completion tokens of the successful answers (as reported in their `usage`).
    pub completion_tokens: u64,
    /// Tokens charged at arrival by the requests the key's limits let through (prompt tokens
    /// times the [token factor](crate::KeyConfig::token_factor), plus the completion budget
    /// times `n`), counted whether or not the key has a TPM limit.
    pub tokens_charged: u64,
    /// The most arrivals (`requests`) within any 10 s: how hard clients pushed the key,
    /// whatever its answers. Compare with a short-window limit's allowance (RPM/6).
    pub peak_requests_10s: u64,
    /// The most arrivals (`requests`) within any 60 s. Compare with the RPM limit.
    pub peak_requests_60s: u64,
}

/// The live counters of one key.
#[derive(Debug)]
pub(crate) struct KeyCounters {
    requests: AtomicU64,
    succeeded: AtomicU64,
    rate_limited: AtomicU64,
    faults_injected: AtomicU64,
    injected_429s: AtomicU64,
    unauthorized: AtomicU64,
    insufficient_quota: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    tokens_charged: AtomicU64,
    peaks: Mutex<[ArrivalPeak; 2]>,
}

impl Default for KeyCounters {
    fn default() -> Self {
        KeyCounters {
            requests: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            injected_429s: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            insufficient_quota: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            tokens_charged: AtomicU64::new(0),
            peaks: Mutex::new([
                ArrivalPeak::new(Duration::from_secs(10)),
                ArrivalPeak::new(Duration::from_secs(60)),
            ]),
        }
    }
}

/// The most arrivals seen within any `window`: arrivals are kept for `window` (merged per
/// instant), and the count after each arrival is a candidate for the peak.
#[derive(Debug)]
struct ArrivalPeak {
    window: Duration,
    arrivals: VecDeque<(Instant, u64)>,
    count: u64,
    peak: u64,
}

impl ArrivalPeak {
    fn new(window: Duration) -> Self {
        ArrivalPeak {
            window,
            arrivals: VecDeque::new(),
            count: 0,
            peak: 0,
        }
    }

    /// Counts an arrival at `now`; arrivals at `now - window` or earlier no longer count.
    fn arrive(&mut self, now: Instant) {
        while let Some(&(at, n)) = self.arrivals.front() {
            if at + self.window > now {
                break;
            }
            self.count -= n;
            self.arrivals.pop_front();
        }
        match self.arrivals.back_mut() {
            Some((at, n)) if *at >= now => *n += 1,
            _ => self.arrivals.push_back((now, 1)),
        }
        self.count += 1;
        self.peak = self.peak.max(self.count);
    }
}

impl KeyCounters {
    /// Counts an arrival at `now` and returns its number (0 for the first).
    pub(crate) fn arrive(&self, now: Instant) -> u64 {
        for peak in lock(&self.peaks).iter_mut() {
            peak.arrive(now);
        }
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts the tokens charged by a request the limits let through.
    pub(crate) fn charged(&self, tokens: u64) {
        self.tokens_charged.fetch_add(tokens, Ordering::Relaxed);
    }

    pub(crate) fn succeed(&self, prompt_tokens: u64, completion_tokens: u64) {
        self.prompt_tokens
            .fetch_add(prompt_tokens, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion_tokens, Ordering::Relaxed);
        self.succeeded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rate_limit(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fault(&self) {
        self.faults_injected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn injected_429(&self) {
        self.injected_429s.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn revoked_refusal(&self) {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn quota_refusal(&self) {
        self.insufficient_quota.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> KeyStats {
        let peaks = lock(&self.peaks);
        KeyStats {
            requests: self.requests.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            faults_injected: self.faults_injected.load(Ordering::Relaxed),
            injected_429s: self.injected_429s.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            insufficient_quota: self.insufficient_quota.load(Ordering::Relaxed),
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: self.completion_tokens.load(Ordering::Relaxed),
            tokens_charged: self.tokens_charged.load(Ordering::Relaxed),
            peak_requests_10s: peaks[0].peak,
            peak_requests_60s: peaks[1].peak,
        }
    }
}

/// Statuses 0..=599 get a counter each.
const STATUS_SLOTS: usize = 600;

/// The live server-wide counters.
#[derive(Debug)]
pub(crate) struct ServerCounters {
    requests: AtomicU64,
    connections: AtomicU64,
    resets: AtomicU64,
    by_status: Box<[AtomicU64]>,
    /// Statuses outside 0..=599 (never produced today, but `Fault::Status` takes any u16).
    other_status: AtomicU64,
}

impl Default for ServerCounters {
    fn default() -> Self {
        ServerCounters {
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            other_status: AtomicU64::new(0),
        }
    }
}

impl ServerCounters {
    /// Counts a request and returns its number (0 for the first).
    pub(crate) fn arrive(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn answered(&self, status: u16) {
        match self.by_status.get(usize::from(status)) {
            Some(slot) => slot.fetch_add(1, Ordering::Relaxed),
            None => self.other_status.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub(crate) fn reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, keys: BTreeMap<String, KeyStats>) -> SimStats {
        let by_status = self
            .by_status
            .iter()
            .enumerate()
            .filter_map(|(status, count)| {
                let count = count.load(Ordering::Relaxed);
                let status = u16::try_from(status).ok()?;
                (count > 0).then_some((status, count))
            })
            .collect();
        SimStats {
            requests: self.requests.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            by_status,
            resets: self.resets.load(Ordering::Relaxed),
            keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_count_arrivals_within_any_window() {
        let start = Instant::now();
        let counters = KeyCounters::default();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // 3 at 0 s, 4 spread over 5..9 s, 2 at 10 s (the 0 s ones have left the 10 s window).
        for t in [0, 0, 0, 5_000, 6_000, 7_000, 9_999, 10_000, 10_000] {
            counters.arrive(at(t));
        }
        let stats = counters.snapshot();
        assert_eq!(stats.requests, 9);
        assert_eq!(stats.peak_requests_10s, 7);
        assert_eq!(stats.peak_requests_60s, 9);
        // A minute later the window starts over; the peaks stay.
        counters.arrive(at(70_000));
        let stats = counters.snapshot();
        assert_eq!((stats.peak_requests_10s, stats.peak_requests_60s), (7, 9));
    }
}
