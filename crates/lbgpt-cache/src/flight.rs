//! Coalescing: identical requests in flight at the same time share one upstream call.
//!
//! The first request of a key (the leader) registers a *flight*: a boxed future made
//! shareable with [`futures::future::Shared`]. Identical requests arriving while it runs
//! (followers) await a clone of the same future. Whichever participant polls it drives the
//! call, so the leader being cancelled (its caller dropping the future) does not stop the
//! call while a follower still waits for it; every participant gets a clone of the answer or
//! of the error.
//!
//! The registry holds only a weak handle: when every participant is gone, the flight's future
//! is dropped (cancelling the upstream call) and its registration removed. A [`FlightGuard`]
//! owned by the flight's future removes the registration when the future completes or is
//! dropped, whichever comes first, and only if it is still its own (a later flight of the same
//! key may have replaced it).

use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};
use lbgpt_core::{ChatResponse, Error};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// What a flight ends with: the answer and whether it came from the store (found by the
/// leader's second look just before calling upstream), or the upstream error.
pub(crate) type FlightOutcome = Result<(ChatResponse, bool), Error>;

/// A flight, as each participant awaits it.
pub(crate) type Flight = Shared<BoxFuture<'static, FlightOutcome>>;

type Registry = Mutex<HashMap<[u8; 32], Registration>>;

struct Registration {
    id: u64,
    flight: WeakShared<BoxFuture<'static, FlightOutcome>>,
    store_wanted: Arc<AtomicBool>,
}

/// The flights in progress, by key digest.
#[derive(Default)]
pub(crate) struct Flights {
    next_id: AtomicU64,
    registry: Arc<Registry>,
}

/// Whether a participant started the flight or joined it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Leader,
    Follower,
}

/// Handed to a new flight's future: whether to store the answer (true when any participant
/// allows storing) and the guard that unregisters the flight.
pub(crate) struct FlightStart {
    pub(crate) store_wanted: Arc<AtomicBool>,
    pub(crate) guard: FlightGuard,
}

impl Flights {
    /// Joins the flight of `digest` if one is in progress, else starts one with `start`.
    /// `writes`: whether this participant allows its answer to be stored.
    pub(crate) fn join_or_start(
        &self,
        digest: [u8; 32],
        writes: bool,
        start: impl FnOnce(FlightStart) -> BoxFuture<'static, FlightOutcome>,
    ) -> (Flight, Role) {
        let mut registry = lock(&self.registry);
        if let Some(registration) = registry.get(&digest) {
            if let Some(flight) = registration.flight.upgrade() {
                if writes {
                    registration.store_wanted.store(true, Ordering::Release);
                }
                return (flight, Role::Follower);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let store_wanted = Arc::new(AtomicBool::new(writes));
        let guard = FlightGuard {
            registry: Arc::downgrade(&self.registry),
            digest,
            id,
        };
        let flight = start(FlightStart {
            store_wanted: Arc::clone(&store_wanted),
            guard,
        })
        .shared();
        // A fresh Shared has not completed, so it can be downgraded; if it could not, the
        // flight simply runs unregistered.
        if let Some(weak) = flight.downgrade() {
            registry.insert(
                digest,
                Registration {
                    id,
                    flight: weak,
                    store_wanted,
                },
            );
        }
        (flight, Role::Leader)
    }

    /// How many flights are registered (in progress).
    pub(crate) fn len(&self) -> usize {
        lock(&self.registry).len()
    }
}

/// Removes its flight's registration when dropped (the flight completed or was abandoned).
pub(crate) struct FlightGuard {
    registry: Weak<Registry>,
    digest: [u8; 32],
    id: u64,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let mut registry = lock(&registry);
        if registry
            .get(&self.digest)
            .is_some_and(|registration| registration.id == self.id)
        {
            registry.remove(&self.digest);
        }
    }
}

/// Locks the registry; a panic elsewhere while it was held leaves the map consistent (every
/// operation on it is a single insert or remove), so poisoning is ignored.
fn lock(registry: &Registry) -> MutexGuard<'_, HashMap<[u8; 32], Registration>> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}
