use super::ledger::Seen;
use super::Outcome;
use std::fmt;
use std::sync::{Arc, Weak};
use tokio::time::Instant;

/// Hears about reservations: settles them, and releases those dropped unsettled.
pub(crate) trait Ledgered: Send + Sync {
    /// Settle `reservation` with `outcome`.
    fn settle(&self, reservation: &Reservation, outcome: &Outcome);
}

/// One request's claim on a member's capacity, from admission until
/// [`UsageTracker::settle`](super::UsageTracker::settle).
///
/// Dropping a reservation without settling it (e.g. the request's future was cancelled)
/// settles it as [`Outcome::Failed`] with `reached_provider: true` when it came from
/// [`InMemoryUsage`](super::InMemoryUsage): the in-flight count is released and the charge is
/// kept until it leaves the window, since the provider may have counted the request.
pub struct Reservation {
    member: Arc<str>,
    id: u64,
    tokens: u64,
    prompt_estimate: Option<u64>,
    completion_budget: u64,
    at: Instant,
    /// What the tracker's windows held right after admitting it, for comparing with the
    /// provider's rate-limit headers when it settles.
    seen: Option<Seen>,
    ledger: Option<Weak<dyn Ledgered>>,
}

impl Reservation {
    /// A reservation of `tokens` on `member`, for trackers other than
    /// [`InMemoryUsage`](super::InMemoryUsage); `id` is the tracker's own.
    pub fn new(member: impl Into<Arc<str>>, id: u64, tokens: u64, at: Instant) -> Self {
        Reservation {
            member: member.into(),
            id,
            tokens,
            prompt_estimate: None,
            completion_budget: 0,
            at,
            seen: None,
            ledger: None,
        }
    }

    /// Records how the reservation splits into our prompt estimate (before any correction)
    /// and the completion budget, so settling can compare prompt counts.
    pub fn with_split(mut self, prompt_estimate: u64, completion_budget: u64) -> Self {
        self.prompt_estimate = Some(prompt_estimate);
        self.completion_budget = completion_budget;
        self
    }

    pub(crate) fn with_seen(mut self, seen: Seen) -> Self {
        self.seen = Some(seen);
        self
    }

    pub(crate) fn seen(&self) -> Option<Seen> {
        self.seen
    }

    pub(crate) fn with_ledger(mut self, ledger: Weak<dyn Ledgered>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The member it was made on.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// The tracker's id for it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Tokens reserved (the estimate after the member's correction factor).
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Our prompt estimate before correction, when the reservation was made with the split.
    pub fn prompt_estimate(&self) -> Option<u64> {
        self.prompt_estimate
    }

    /// The completion budget reserved (all choices), when made with the split.
    pub fn completion_budget(&self) -> u64 {
        self.completion_budget
    }

    /// When it was admitted.
    pub fn reserved_at(&self) -> Instant {
        self.at
    }

    /// Settles through the ledger that made it (once: a second call does nothing).
    pub(crate) fn settle_with(&mut self, outcome: &Outcome) {
        if let Some(ledger) = self.ledger.take().and_then(|weak| weak.upgrade()) {
            ledger.settle(self, outcome);
        }
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("member", &self.member)
            .field("id", &self.id)
            .field("tokens", &self.tokens)
            .field("prompt_estimate", &self.prompt_estimate)
            .field("completion_budget", &self.completion_budget)
            .field("at", &self.at)
            .field("settled", &self.ledger.is_none())
            .finish()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.settle_with(&Outcome::Failed {
            reached_provider: true,
        });
    }
}
