//! The simulator's shared state: keys with their limiters, scripts and counters.

use crate::clock::Clock;
use crate::fault::RandomFaults;
use crate::limiter::KeyLimiter;
use crate::rng::{fnv1a, unit, FNV_OFFSET};
use crate::seen::SeenLog;
use crate::stats::{KeyCounters, ServerCounters};
use crate::{Fault, KeyConfig, KeyStats, Latency, SimConfig, SimConfigError, SimStats};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::time::Instant;

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
    pub(crate) counters: Arc<KeyCounters>,
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

    /// An approximate token count as this key's provider counts it: times the key's token
    /// factor, rounded to the nearest token.
    pub(crate) fn scale_tokens(&self, approx: u64) -> u64 {
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

/// Checks one key's settings; `field` names a setting in errors (`keys[2].rpm`).
fn check_key(key: &KeyConfig, field: &dyn Fn(&str) -> String) -> Result<(), SimConfigError> {
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
    Ok(())
}

impl KeyState {
    /// A key's run-time state, its limits starting at `now`, counting into `counters`.
    fn new(key: &KeyConfig, counters: Arc<KeyCounters>, now: Instant) -> Self {
        let id = key.id().to_owned();
        let limiter = KeyLimiter::new(key.mode, key.rpm, key.tpm, now);
        KeyState {
            id_hash: fnv1a(FNV_OFFSET, id.as_bytes()),
            limited: limiter.is_limited(),
            limiter: Mutex::new(limiter),
            token_factor: key.token_factor,
            revoked: AtomicBool::new(false),
            quota_exhausted: AtomicBool::new(false),
            script: Mutex::new(VecDeque::new()),
            random: key.random_faults.clone(),
            counters,
            id,
        }
    }
}

/// The keys, as changed at run time.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    /// Served keys by the key string clients send.
    by_key: HashMap<String, Arc<KeyState>>,
    /// Served keys by id, in id order.
    by_id: BTreeMap<String, Arc<KeyState>>,
    /// Removed keys by id, with their key string: no longer served, their counters still
    /// reported.
    removed: BTreeMap<String, (String, Arc<KeyState>)>,
}

impl Keys {
    /// Adds a checked key; `field` names settings in errors.
    fn add(
        &mut self,
        key: &KeyConfig,
        now: Instant,
        field: &dyn Fn(&str) -> String,
    ) -> Result<(), SimConfigError> {
        if self.by_key.contains_key(&key.key) {
            return Err(SimConfigError::invalid(
                field("key"),
                "the same key string is used by another key",
            ));
        }
        let id = key.id();
        if self.by_id.contains_key(id) {
            return Err(SimConfigError::invalid(
                field("name"),
                "the key's id is used by another key",
            ));
        }
        // A key added again under the id of a removed one counts on where it left off.
        let counters = self
            .removed
            .remove(id)
            .map(|(_, old)| old.counters.clone())
            .unwrap_or_default();
        let state = Arc::new(KeyState::new(key, counters, now));
        self.by_id.insert(id.to_owned(), state.clone());
        self.by_key.insert(key.key.clone(), state);
        Ok(())
    }

    /// A served key by its key string or its id.
    fn find(&self, key_or_id: &str) -> Option<&Arc<KeyState>> {
        self.by_key
            .get(key_or_id)
            .or_else(|| self.by_id.get(key_or_id))
    }

    /// Stops serving a key; returns whether it was served.
    fn remove(&mut self, key_or_id: &str) -> bool {
        let Some(id) = self.find(key_or_id).map(|k| k.id.clone()) else {
            return false;
        };
        let Some(state) = self.by_id.remove(&id) else {
            return false;
        };
        let key = self
            .by_key
            .iter()
            .find_map(|(key, s)| Arc::ptr_eq(s, &state).then(|| key.clone()))
            .unwrap_or_default();
        self.by_key.remove(&key);
        self.removed.insert(id, (key, state));
        true
    }
}

/// Everything the request handlers share.
#[derive(Debug)]
pub(crate) struct State {
    keys: RwLock<Keys>,
    pub(crate) seed: u64,
    latency: Mutex<Latency>,
    pub(crate) azure_deployments: BTreeMap<String, String>,
    pub(crate) azure_api_versions: Vec<String>,
    pub(crate) counters: ServerCounters,
    pub(crate) seen: SeenLog,
    pub(crate) clock: Clock,
}

impl State {
    /// Checks the configuration and builds the run-time state.
    pub(crate) fn new(config: SimConfig) -> Result<Self, SimConfigError> {
        let clock = Clock;
        let now = clock.now();
        let mut keys = Keys::default();
        for (index, key) in config.keys.iter().enumerate() {
            let field = |name: &str| format!("keys[{index}].{name}");
            check_key(key, &field)?;
            keys.add(key, now, &field)?;
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
            keys: RwLock::new(keys),
            seed: config.seed,
            latency: Mutex::new(config.latency),
            azure_deployments: config.azure_deployments,
            azure_api_versions: config.azure_api_versions,
            counters: ServerCounters::default(),
            seen: SeenLog::new(config.seen_capacity),
            clock,
        })
    }

    fn keys(&self) -> RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys_mut(&self) -> RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The served key a client presents, by its key string.
    pub(crate) fn key_for(&self, presented: &str) -> Option<Arc<KeyState>> {
        self.keys().by_key.get(presented).cloned()
    }

    /// A served key by its key string or its id.
    pub(crate) fn find_key(&self, key_or_id: &str) -> Option<Arc<KeyState>> {
        self.keys().find(key_or_id).cloned()
    }

    /// How many keys are served.
    pub(crate) fn key_count(&self) -> usize {
        self.keys().by_id.len()
    }

    /// Checks and serves a new key.
    pub(crate) fn add_key(&self, key: &KeyConfig) -> Result<(), SimConfigError> {
        let field = |name: &str| format!("key.{name}");
        check_key(key, &field)?;
        let now = self.clock.now();
        self.keys_mut().add(key, now, &field)
    }

    /// Stops serving a key; returns whether it was served.
    pub(crate) fn remove_key(&self, key_or_id: &str) -> bool {
        self.keys_mut().remove(key_or_id)
    }

    /// The latency of successful answers.
    pub(crate) fn latency(&self) -> Latency {
        *lock(&self.latency)
    }

    /// Changes the latency of answers from now on.
    pub(crate) fn set_latency(&self, latency: Latency) {
        *lock(&self.latency) = latency;
    }

    /// Every counter; removed keys included.
    pub(crate) fn stats(&self) -> SimStats {
        let keys = {
            let keys = self.keys();
            keys.by_id
                .iter()
                .chain(keys.removed.iter().map(|(id, (_, key))| (id, key)))
                .map(|(id, key)| (id.clone(), key.counters.snapshot()))
                .collect()
        };
        self.counters.snapshot(keys)
    }

    /// One key's counters, by key string or id; removed keys included.
    pub(crate) fn key_stats(&self, key_or_id: &str) -> Option<KeyStats> {
        let keys = self.keys();
        let key = keys.find(key_or_id).or_else(|| {
            keys.removed.get(key_or_id).map(|(_, key)| key).or_else(|| {
                keys.removed
                    .values()
                    .find_map(|(key, state)| (key == key_or_id).then_some(state))
            })
        })?;
        Some(key.counters.snapshot())
    }
}
