//! Counters a test can read: lock-free atomics updated on the request path, copied into plain
//! snapshots on demand.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

/// The live counters of one key.
#[derive(Debug, Default)]
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
}

impl KeyCounters {
    /// Counts an arrival and returns its number (0 for the first).
    pub(crate) fn arrive(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed)
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
