//! [`Shared`]: the state every clone of a balancer (and its handles) shares.

use super::entry::{lock, MemberEntry, Registry};
use super::member::{validate_limits, validate_weight, Member};
use super::strategy::{PickStrategy, Strategy};
use super::{BalancedRequest, BreakerConfig};
use crate::tokens::TokenEstimator;
use crate::usage::{Limits, UsageTracker};
use lbgpt_core::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// An immutable list of members; a change builds a new list and swaps it in.
pub(crate) type MemberList<R> = Arc<[Arc<MemberEntry<R>>]>;

/// The balancer's settings, fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_wait: Duration,
    pub(crate) breaker: BreakerConfig,
    pub(crate) max_failovers: Option<usize>,
    pub(crate) default_cooldown: Duration,
    pub(crate) max_cooldown: Duration,
    pub(crate) latency_decay: Duration,
}

pub(crate) struct Shared<R: BalancedRequest> {
    /// Read on every request (a clone of the `Arc` under a read lock held for nanoseconds);
    /// replaced whole by membership changes, so a pick never waits for a writer's work.
    members: RwLock<MemberList<R>>,
    /// Serialises membership changes (read, modify, swap).
    writer: Mutex<()>,
    /// Bumped on every change that may let a waiting request through.
    version: AtomicU64,
    /// Wakes requests waiting for capacity when members change.
    pub(crate) changed: Notify,
    next_id: AtomicU64,
    pub(crate) strategy: Strategy<R>,
    pub(crate) picker: Arc<dyn PickStrategy<R>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) estimator: Arc<dyn TokenEstimator<R>>,
    pub(crate) settings: Settings,
}

impl<R: BalancedRequest> Shared<R> {
    pub(crate) fn new(
        strategy: Strategy<R>,
        tracker: Arc<dyn UsageTracker>,
        estimator: Arc<dyn TokenEstimator<R>>,
        settings: Settings,
    ) -> Self {
        Shared {
            members: RwLock::new(Arc::from(Vec::new())),
            writer: Mutex::new(()),
            version: AtomicU64::new(0),
            changed: Notify::new(),
            next_id: AtomicU64::new(1),
            picker: strategy.picker(),
            strategy,
            registry: Registry::for_tracker(tracker),
            estimator,
            settings,
        }
    }

    pub(crate) fn tracker(&self) -> &Arc<dyn UsageTracker> {
        self.registry.tracker()
    }

    /// The current member list.
    pub(crate) fn members(&self) -> MemberList<R> {
        Arc::clone(&self.members.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Tells waiting requests that the members changed.
    pub(crate) fn announce(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    pub(crate) fn find(&self, name: &str) -> Option<Arc<MemberEntry<R>>> {
        self.members()
            .iter()
            .find(|entry| &*entry.name == name)
            .cloned()
    }

    /// Like [`find`](Self::find), with an error naming the unknown member.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<MemberEntry<R>>, Error> {
        self.find(name)
            .ok_or_else(|| Error::Config(format!("balancer: there is no member named {name:?}")))
    }

    pub(crate) fn add(&self, member: Member<R>) -> Result<(), Error> {
        member.validate()?;
        let _writer = lock(&self.writer);
        let current = self.members();
        if current.iter().any(|entry| entry.name == member.name) {
            return Err(Error::Config(format!(
                "balancer: there is already a member named {:?}",
                member.name
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(MemberEntry::new(
            id,
            member,
            &self.registry,
            self.settings.latency_decay,
        ));
        let next: MemberList<R> = current.iter().cloned().chain([entry]).collect();
        self.swap(next);
        self.announce();
        Ok(())
    }

    pub(crate) fn remove(&self, name: &str) -> Result<(), Error> {
        let _writer = lock(&self.writer);
        let current = self.members();
        if !current.iter().any(|entry| &*entry.name == name) {
            return Err(Error::Config(format!(
                "balancer: there is no member named {name:?}"
            )));
        }
        let next: MemberList<R> = current
            .iter()
            .filter(|entry| &*entry.name != name)
            .cloned()
            .collect();
        self.swap(next);
        // Requests in flight on the member keep their `Arc` and finish there; the member
        // (and its usage registration) goes when the last of them does.
        Ok(())
    }

    pub(crate) fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), Error> {
        self.get(name)?.set_enabled(enabled);
        if enabled {
            self.announce();
        }
        Ok(())
    }

    pub(crate) fn set_weight(&self, name: &str, weight: f64) -> Result<(), Error> {
        validate_weight(name, weight)?;
        self.get(name)?.set_weight(weight);
        self.announce();
        Ok(())
    }

    pub(crate) fn set_limits(&self, name: &str, limits: Limits) -> Result<(), Error> {
        validate_limits(name, &limits)?;
        let entry = self.get(name)?;
        self.tracker().register(name, limits);
        entry.set_limits(limits);
        self.announce();
        Ok(())
    }

    fn swap(&self, next: MemberList<R>) {
        let old = std::mem::replace(
            &mut *self.members.write().unwrap_or_else(PoisonError::into_inner),
            next,
        );
        // The old list (and any member only it held) is dropped outside the lock.
        drop(old);
    }
}
