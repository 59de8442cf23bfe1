//! The simulator's shared state: keys with their limiters, scripts and counters.

use crate::clock::Clock;
use crate::fault::RandomFaults;
use crate::limiter::KeyLimiter;
use crate::rng::{fnv1a, unit, FNV_OFFSET};
use crate::seen::SeenLog;
use crate::stats::{KeyCounters, ServerCounters};
use crate::{Fault, KeyStats, Latency, SimConfig, SimConfigError, SimStats};
use lbgpt_core::tokens::approx_prompt_tokens;
use lbgpt_core::ChatRequest;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Locks a mutex, ignoring poisoning (the guarded data stays consistent: no code path panics
/// while holding one of the simulator's locks).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One configured key at run time.
#[derive(Debug)]
pub(crate) struct KeyState {
    pub(crate) id: String,
    id_hash: u64,
    pub(crate) limiter: Mutex<KeyLimiter>,
    pub(crate) limited: bool,
    /// See [`KeyConfig::token_factor`](crate::KeyConfig::token_factor).
    token_factor: f64,
    /// Set by [`Simulator::revoke_key`](crate::Simulator::revoke_key): answer 401.
    revoked: AtomicBool,
    /// Set by [`Simulator::set_quota_exhausted`](crate::Simulator::set_quota_exhausted):
    /// answer 429 `insufficient_quota`.
    quota_exhausted: AtomicBool,
    script: Mutex<VecDeque<Fault>>,
    random: Option<RandomFaults>,
    pub(crate) counters: KeyCounters,
}

impl KeyState {
    /// The fault for the key's arrival number `n`: the next scripted one, else a random draw.
    pub(crate) fn next_fault(&self, n: u64, seed: u64) -> Option<Fault> {
        if let Some(fault) = lock(&self.script).pop_front() {
            return Some(fault);
        }
        let random = self.random.as_ref()?;
        if unit(seed, self.id_hash, n, 0) < random.probability {
            random.mix.pick(unit(seed, self.id_hash, n, 1)).cloned()
        } else {
            None
        }
    }

    pub(crate) fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.script).extend(faults);
    }

    /// The prompt tokens this key's provider counts for `request`: the approximate count
    /// times the key's token factor, rounded to the nearest token.
    pub(crate) fn prompt_tokens(&self, request: &ChatRequest) -> u64 {
        let approx = approx_prompt_tokens(request);
        if self.token_factor == 1.0 {
            return approx;
        }
        // Saturating float-to-int conversion; the factor is finite and positive.
        (approx as f64 * self.token_factor).round() as u64
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    pub(crate) fn set_revoked(&self, revoked: bool) {
        self.revoked.store(revoked, Ordering::Relaxed);
    }

    pub(crate) fn is_quota_exhausted(&self) -> bool {
        self.quota_exhausted.load(Ordering::Relaxed)
    }

    pub(crate) fn set_quota_exhausted(&self, exhausted: bool) {
        self.quota_exhausted.store(exhausted, Ordering::Relaxed);
    }
}

/// Everything the request handlers share.
#[derive(Debug)]
pub(crate) struct State {
    /// Keys by the key string clients send.
    pub(crate) by_key: HashMap<String, Arc<KeyState>>,
    /// Keys by id, in id order.
    pub(crate) by_id: BTreeMap<String, Arc<KeyState>>,
    pub(crate) seed: u64,
    pub(crate) latency: Latency,
    pub(crate) azure_deployments: BTreeMap<String, String>,
    pub(crate) azure_api_versions: Vec<String>,
    pub(crate) counters: ServerCounters,
    pub(crate) seen: SeenLog,
    pub(crate) clock: Clock,
}

impl State {
    /// Checks the configuration and builds the run-time state.
    pub(crate) fn new(config: SimConfig) -> Result<Self, SimConfigError> {
        let mut by_key = HashMap::new();
        let mut by_id = BTreeMap::new();
        for (index, key) in config.keys.into_iter().enumerate() {
            let field = |name: &str| format!("keys[{index}].{name}");
            if key.key.trim().is_empty() {
                return Err(SimConfigError::invalid(field("key"), "must not be empty"));
            }
            if key.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                return Err(SimConfigError::invalid(field("name"), "must not be empty"));
            }
            if key.rpm == Some(0) {
                return Err(SimConfigError::invalid(
                    field("rpm"),
                    "must be at least 1 (leave it out for no limit)",
                ));
            }
            if key.tpm == Some(0) {
                return Err(SimConfigError::invalid(
                    field("tpm"),
                    "must be at least 1 (leave it out for no limit)",
                ));
            }
            if !(key.token_factor.is_finite() && key.token_factor > 0.0) {
                return Err(SimConfigError::invalid(
                    field("token_factor"),
                    format!("must be a positive number, got {}", key.token_factor),
                ));
            }
            if let Some((setting, message)) = key.mode.problem() {
                return Err(SimConfigError::invalid(field(setting), message));
            }
            if let Some(random) = &key.random_faults {
                if !(0.0..=1.0).contains(&random.probability) {
                    return Err(SimConfigError::invalid(
                        field("fault_probability"),
                        format!("must be between 0 and 1, got {}", random.probability),
                    ));
                }
            }
            let id = key.id().to_owned();
            let limiter = KeyLimiter::new(key.mode, key.rpm, key.tpm, Clock.now());
            let state = Arc::new(KeyState {
                id_hash: fnv1a(FNV_OFFSET, id.as_bytes()),
                limited: limiter.is_limited(),
                limiter: Mutex::new(limiter),
                token_factor: key.token_factor,
                revoked: AtomicBool::new(false),
                quota_exhausted: AtomicBool::new(false),
                script: Mutex::new(VecDeque::new()),
                random: key.random_faults,
                counters: KeyCounters::default(),
                id: id.clone(),
            });
            if by_id.insert(id, state.clone()).is_some() {
                return Err(SimConfigError::invalid(
                    field("name"),
                    "the key's id is used by another key",
                ));
            }
            if by_key.insert(key.key, state).is_some() {
                return Err(SimConfigError::invalid(
                    field("key"),
                    "the same key is listed twice",
                ));
            }
        }
        if let Some(index) = config
            .azure_api_versions
            .iter()
            .position(|v| v.trim().is_empty())
        {
            return Err(SimConfigError::invalid(
                format!("azure.api_versions[{index}]"),
                "must not be empty",
            ));
        }
        Ok(State {
            by_key,
            by_id,
            seed: config.seed,
            latency: config.latency,
            azure_deployments: config.azure_deployments,
            azure_api_versions: config.azure_api_versions,
            counters: ServerCounters::default(),
            seen: SeenLog::new(config.seen_capacity),
            clock: Clock,
        })
    }

    /// A key by its key string or its id.
    pub(crate) fn find_key(&self, key_or_id: &str) -> Option<&Arc<KeyState>> {
        self.by_key
            .get(key_or_id)
            .or_else(|| self.by_id.get(key_or_id))
    }

    pub(crate) fn stats(&self) -> SimStats {
        let keys = self
            .by_id
            .iter()
            .map(|(id, key)| (id.clone(), key.counters.snapshot()))
            .collect();
        self.counters.snapshot(keys)
    }

    pub(crate) fn key_stats(&self, key_or_id: &str) -> Option<KeyStats> {
        self.find_key(key_or_id).map(|key| key.counters.snapshot())
    }
}
