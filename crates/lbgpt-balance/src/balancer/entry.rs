//! [`MemberEntry`]: a member as the running balancer holds it (service, health, counters).

use super::health::{Block, BreakerChange, BreakerConfig, Health};
use super::latency::PeakEwma;
use super::member::{BoxedService, Member};
use super::stats::{bump, read, Counters, MemberStats};
use super::BalancedRequest;
use crate::usage::{Limits, UsageTracker};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section here is a few plain assignments).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A live member. Shared (`Arc`) by the member list and by every request in flight on it,
/// so a removed member lives until its last request finishes.
pub(crate) struct MemberEntry<R: BalancedRequest> {
    pub(crate) id: u64,
    pub(crate) name: Arc<str>,
    // `BoxCloneService` is `Send` but not `Sync`: the lock is held only to clone it.
    service: Mutex<BoxedService<R>>,
    weight_bits: AtomicU64,
    limits: Mutex<Limits>,
    has_token_limit: AtomicBool,
    enabled: AtomicBool,
    health: Mutex<Health>,
    latency: Mutex<PeakEwma>,
    pub(crate) counters: Counters,
    in_flight: AtomicU64,
    _registration: Registration,
}

impl<R: BalancedRequest> MemberEntry<R> {
    pub(crate) fn new(
        id: u64,
        member: Member<R>,
        registry: &Arc<Registry>,
        latency_decay: Duration,
    ) -> Self {
        let Member {
            name,
            service,
            weight,
            limits,
        } = member;
        let registration = Registry::register(registry, &name, limits);
        MemberEntry {
            id,
            name,
            service: Mutex::new(service),
            weight_bits: AtomicU64::new(weight.to_bits()),
            has_token_limit: AtomicBool::new(limits.tpm.is_some()),
            limits: Mutex::new(limits),
            enabled: AtomicBool::new(true),
            health: Mutex::new(Health::new()),
            latency: Mutex::new(PeakEwma::new(latency_decay, Instant::now())),
            counters: Counters::default(),
            in_flight: AtomicU64::new(0),
            _registration: registration,
        }
    }

    /// A clone of the member's service for one call.
    pub(crate) fn service(&self) -> BoxedService<R> {
        lock(&self.service).clone()
    }

    pub(crate) fn weight(&self) -> f64 {
        f64::from_bits(self.weight_bits.load(Ordering::Relaxed))
    }

    pub(crate) fn set_weight(&self, weight: f64) {
        self.weight_bits.store(weight.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn limits(&self) -> Limits {
        *lock(&self.limits)
    }

    /// Records new limits (the caller tells the usage tracker).
    pub(crate) fn set_limits(&self, limits: Limits) {
        self.has_token_limit
            .store(limits.tpm.is_some(), Ordering::Relaxed);
        *lock(&self.limits) = limits;
    }

    /// Whether admission on this member depends on the request's token count.
    pub(crate) fn has_token_limit(&self) -> bool {
        self.has_token_limit.load(Ordering::Relaxed)
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
        if enabled {
            lock(&self.health).reset();
        }
    }

    /// Whether the member can be picked at `now`, and if not, why.
    pub(crate) fn check(&self, now: Instant) -> Result<(), Block> {
        if !self.is_enabled() {
            // Dead outranks disabled in reports.
            return match lock(&self.health).check(now) {
                Err(Block::Dead(reason)) => Err(Block::Dead(reason)),
                _ => Err(Block::Disabled),
            };
        }
        lock(&self.health).check(now)
    }

    /// Claims the right to send one request now (the probe, when half-open).
    pub(crate) fn begin(&self, now: Instant) -> Result<bool, Block> {
        if !self.is_enabled() {
            return Err(Block::Disabled);
        }
        lock(&self.health).begin(now)
    }

    pub(crate) fn release_probe(&self) {
        lock(&self.health).release_probe();
    }

    pub(crate) fn record_alive(&self) {
        lock(&self.health).record_alive();
    }

    pub(crate) fn record_failure(&self, now: Instant, config: &BreakerConfig) -> BreakerChange {
        lock(&self.health).record_failure(now, config)
    }

    pub(crate) fn cool_down(&self, until: Instant) {
        lock(&self.health).cool_down(until);
    }

    pub(crate) fn kill(&self, reason: Arc<str>) {
        lock(&self.health).kill(reason);
    }

    pub(crate) fn observe_latency(&self, sample: Duration, now: Instant) {
        lock(&self.latency).observe(sample, now);
    }

    pub(crate) fn latency(&self, now: Instant) -> Option<Duration> {
        lock(&self.latency).estimate(now)
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        bump(&self.counters.requests);
    }

    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The call [`enter`](Self::enter) counted turned out to be no upstream call: the
    /// member's service refused the request's model before any network call. Counted as
    /// passed on instead of as a request.
    pub(crate) fn passed_on_model(&self) {
        self.counters.requests.fetch_sub(1, Ordering::Relaxed);
        bump(&self.counters.model_not_served);
    }

    pub(crate) fn stats(&self, tracker: &dyn UsageTracker, now: Instant) -> MemberStats {
        let (state, consecutive_failures) = {
            let health = lock(&self.health);
            (
                health.state(now, self.is_enabled()),
                health.consecutive_failures(),
            )
        };
        let counters = &self.counters;
        MemberStats {
            name: self.name.to_string(),
            state,
            weight: self.weight(),
            limits: self.limits(),
            requests: read(&counters.requests),
            succeeded: read(&counters.succeeded),
            failed: read(&counters.failed),
            prompt_tokens: read(&counters.prompt_tokens),
            completion_tokens: read(&counters.completion_tokens),
            rate_limited_seen: read(&counters.rate_limited_seen),
            retries: read(&counters.retries),
            failovers: read(&counters.failovers),
            model_not_served: read(&counters.model_not_served),
            in_flight: self.in_flight(),
            headroom: tracker.snapshot(&self.name),
            latency_ewma: self.latency(now),
            consecutive_failures,
        }
    }
}

/// Keeps the usage tracker's registrations in step with the live members: a name is
/// registered while at least one member of that name is alive (a member removed and added
/// again under the same name overlaps with its old self until the old one's last request
/// finishes), and unregistered when the last one goes.
///
/// There is one registry per tracker, shared by every balancer given that tracker (e.g. a
/// chat and a completions balancer sharing limits), so one balancer removing a member never
/// unregisters a name another balancer still uses.
pub(crate) struct Registry {
    tracker: Arc<dyn UsageTracker>,
    live: Mutex<HashMap<Arc<str>, usize>>,
}

/// The registries in use, one per tracker, held weakly: a registry goes with the last
/// balancer (or member) holding it.
static REGISTRIES: Mutex<Vec<Weak<Registry>>> = Mutex::new(Vec::new());

impl Registry {
    /// The registry of `tracker`: the one the balancers already using it share, else a new
    /// one.
    pub(crate) fn for_tracker(tracker: Arc<dyn UsageTracker>) -> Arc<Self> {
        let mut registries = lock(&REGISTRIES);
        let mut found = None;
        registries.retain(|weak| match weak.upgrade() {
            Some(registry) => {
                if std::ptr::addr_eq(Arc::as_ptr(&registry.tracker), Arc::as_ptr(&tracker)) {
                    found = Some(registry);
                }
                true
            }
            None => false,
        });
        if let Some(registry) = found {
            return registry;
        }
        let registry = Arc::new(Registry {
            tracker,
            live: Mutex::new(HashMap::new()),
        });
        registries.push(Arc::downgrade(&registry));
        registry
    }

    pub(crate) fn tracker(&self) -> &Arc<dyn UsageTracker> {
        &self.tracker
    }

    fn register(registry: &Arc<Registry>, name: &Arc<str>, limits: Limits) -> Registration {
        let mut live = lock(&registry.live);
        *live.entry(Arc::clone(name)).or_insert(0) += 1;
        registry.tracker.register(name, limits);
        Registration {
            registry: Arc::clone(registry),
            name: Arc::clone(name),
        }
    }

    fn release(&self, name: &Arc<str>) {
        let mut live = lock(&self.live);
        if let Some(count) = live.get_mut(name) {
            *count -= 1;
            if *count == 0 {
                live.remove(name);
                self.tracker.unregister(name);
            }
        }
    }
}

/// Unregisters the member from the usage tracker when dropped (see [`Registry`]).
struct Registration {
    registry: Arc<Registry>,
    name: Arc<str>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.release(&self.name);
    }
}
