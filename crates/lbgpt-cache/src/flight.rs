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
//!
//! Flights are generic over what they end with (`T`, cloned for every participant): the chat
//! cache shares one answer per key; the embedding cache starts one flight per missing input,
//! all driven by one upstream call ([`Flights::join_or_start_each`]).

use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};
use lbgpt_core::Error;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// A flight's future: what it ends with, or the upstream error.
pub(crate) type FlightFuture<T> = BoxFuture<'static, Result<T, Error>>;

/// A flight, as each participant awaits it.
pub(crate) type Flight<T> = Shared<FlightFuture<T>>;

/// The registrations by key digest, and how many flights have ended (see
/// [`Flights::landings`]).
struct Registry<T> {
    map: Mutex<HashMap<[u8; 32], Registration<T>>>,
    /// Incremented by each ending flight's guard while it holds `map`'s lock.
    landings: AtomicU64,
}

struct Registration<T> {
    id: u64,
    flight: WeakShared<FlightFuture<T>>,
    store_wanted: Arc<AtomicBool>,
}

/// The flights in progress, by key digest.
pub(crate) struct Flights<T> {
    next_id: AtomicU64,
    registry: Arc<Registry<T>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            next_id: AtomicU64::new(0),
            registry: Arc::new(Registry {
                map: Mutex::new(HashMap::new()),
                landings: AtomicU64::new(0),
            }),
        }
    }
}

/// Whether a participant started the flight or joined it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Leader,
    Follower,
}

/// Handed to a new flight's future: whether to store the answer (true when any participant
/// allows storing), the guard that unregisters the flight, and [`Flights::landings`] when it
/// started.
pub(crate) struct FlightStart<T> {
    pub(crate) store_wanted: Arc<AtomicBool>,
    pub(crate) guard: FlightGuard<T>,
    /// How many flights had ended when this one started (read under the registry's lock):
    /// a participant that read [`Flights::landings`] before its store lookup and finds the
    /// same number knows no identical flight ended (and stored its answer) in between.
    pub(crate) landings: u64,
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// Joins the flight of `digest` if one is in progress, else starts one with `start`.
    /// `writes`: whether this participant allows its answer to be stored.
    pub(crate) fn join_or_start(
        &self,
        digest: [u8; 32],
        writes: bool,
        start: impl FnOnce(FlightStart<T>) -> FlightFuture<T>,
    ) -> (Flight<T>, Role) {
        let mut registry = lock(&self.registry);
        if let Some(flight) = join(&registry, &digest, writes) {
            return (flight, Role::Follower);
        }
        let (begun, pending) = self.begin(digest, writes);
        let flight = start(begun).shared();
        register(&mut registry, digest, &flight, pending);
        (flight, Role::Leader)
    }

    /// [`join_or_start`](Self::join_or_start) for several distinct digests at once, under one
    /// lock: each digest with a flight in progress joins it; the others (the led ones) are
    /// started together by one call of `start`, which gets the positions (in `digests`) of
    /// the led digests and one [`FlightStart`] for each, in that order, and returns one
    /// future per led digest, in that order (typically each a view of one shared upstream
    /// call that owns its digest's guard).
    ///
    /// Returns one flight per digest, in the order of `digests`. Fails with
    /// [`Error::Internal`] if `start` returns another number of futures than it was given
    /// starts (nothing is registered then).
    pub(crate) fn join_or_start_each(
        &self,
        digests: &[[u8; 32]],
        writes: bool,
        start: impl FnOnce(&[usize], Vec<FlightStart<T>>) -> Vec<FlightFuture<T>>,
    ) -> Result<Vec<(Flight<T>, Role)>, Error> {
        let mut registry = lock(&self.registry);
        let mut flights: Vec<Option<(Flight<T>, Role)>> = Vec::with_capacity(digests.len());
        let mut led = Vec::new();
        for (position, digest) in digests.iter().enumerate() {
            match join(&registry, digest, writes) {
                Some(flight) => flights.push(Some((flight, Role::Follower))),
                None => {
                    flights.push(None);
                    led.push(position);
                }
            }
        }
        if !led.is_empty() {
            let (starts, pending): (Vec<_>, Vec<_>) = led
                .iter()
                .map(|&position| self.begin(digests[position], writes))
                .unzip();
            let futures = start(&led, starts);
            if futures.len() != led.len() {
                let message = format!(
                    "a batch of {} flights started {} futures",
                    led.len(),
                    futures.len()
                );
                // The futures own guards, which lock the registry when dropped.
                drop(registry);
                drop(futures);
                return Err(Error::Internal(message));
            }
            for ((position, future), pending) in led.into_iter().zip(futures).zip(pending) {
                let flight = future.shared();
                register(&mut registry, digests[position], &flight, pending);
                flights[position] = Some((flight, Role::Leader));
            }
        }
        flights
            .into_iter()
            .map(|flight| flight.ok_or_else(|| Error::Internal("a digest got no flight".into())))
            .collect()
    }

    /// How many flights are registered (in progress).
    pub(crate) fn len(&self) -> usize {
        lock(&self.registry).len()
    }

    /// How many flights have ended so far (completed or abandoned; an ended flight has stored
    /// its answer, if it stores one, before it counts). Read before a store lookup and
    /// compared with [`FlightStart::landings`], it tells whether an identical request can
    /// have stored its answer after the lookup missed, so that looking again is worth it.
    pub(crate) fn landings(&self) -> u64 {
        self.registry.landings.load(Ordering::Acquire)
    }

    /// A new flight's start (its store flag and guard), and what its registration needs.
    fn begin(&self, digest: [u8; 32], writes: bool) -> (FlightStart<T>, Pending) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let store_wanted = Arc::new(AtomicBool::new(writes));
        let guard = FlightGuard {
            registry: Arc::downgrade(&self.registry),
            digest,
            id,
        };
        let start = FlightStart {
            store_wanted: Arc::clone(&store_wanted),
            guard,
            // Called with the registry locked: every ended flight's count is in.
            landings: self.registry.landings.load(Ordering::Acquire),
        };
        (start, Pending { id, store_wanted })
    }
}

/// A flight begun but not registered yet: its guard's id and its store flag.
struct Pending {
    id: u64,
    store_wanted: Arc<AtomicBool>,
}

/// The flight of `digest` still in progress, if any; a participant that `writes` makes its
/// answer stored.
fn join<T: Clone>(
    registry: &HashMap<[u8; 32], Registration<T>>,
    digest: &[u8; 32],
    writes: bool,
) -> Option<Flight<T>> {
    let registration = registry.get(digest)?;
    let flight = registration.flight.upgrade()?;
    if writes {
        registration.store_wanted.store(true, Ordering::Release);
    }
    Some(flight)
}

/// Registers a new flight under `digest` (replacing an abandoned registration).
fn register<T: Clone>(
    registry: &mut HashMap<[u8; 32], Registration<T>>,
    digest: [u8; 32],
    flight: &Flight<T>,
    pending: Pending,
) {
    // A fresh Shared has not completed, so it can be downgraded; if it could not, the
    // flight simply runs unregistered.
    if let Some(weak) = flight.downgrade() {
        registry.insert(
            digest,
            Registration {
                id: pending.id,
                flight: weak,
                store_wanted: pending.store_wanted,
            },
        );
    }
}

/// Removes its flight's registration when dropped (the flight completed or was abandoned).
pub(crate) struct FlightGuard<T> {
    registry: Weak<Registry<T>>,
    digest: [u8; 32],
    id: u64,
}

impl<T> Drop for FlightGuard<T> {
    fn drop(&mut self) {
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let mut map = lock(&registry);
        if map
            .get(&self.digest)
            .is_some_and(|registration| registration.id == self.id)
        {
            map.remove(&self.digest);
        }
        registry.landings.fetch_add(1, Ordering::AcqRel);
    }
}

/// Locks the registry; a panic elsewhere while it was held leaves the map consistent (every
/// operation on it is a single insert or remove), so poisoning is ignored.
fn lock<T>(registry: &Registry<T>) -> MutexGuard<'_, HashMap<[u8; 32], Registration<T>>> {
    registry.map.lock().unwrap_or_else(PoisonError::into_inner)
}
