use super::ledger::{Estimate, Ledger};
use super::reservation::Ledgered;
use super::{
    Accounting, LimitKind, Limits, Outcome, PacingConfig, Reservation, Unavailable, UsageSnapshot,
    UsageTracker,
};
use crate::tokens::TokenEstimate;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use tokio::time::Instant;

/// The most time buckets one member's windows hold (two windows of
/// 600 buckets plus two each), however many requests it admits.
#[doc(hidden)]
pub const MAX_STORED_BUCKETS: usize = 2 * super::window::MAX_BUCKETS;

/// Tracks usage in this process: per member, sliding windows of requests and tokens,
/// in-flight reservations, an even pacing schedule and a learnt token correction factor.
/// See the [module docs](super) for the admission rule.
///
/// Uses `tokio::time::Instant`, so tests on paused time see exact instants. Each member has
/// its own `std::sync::Mutex`, held only for the bookkeeping of one call (O(1) amortised; a
/// binary search over its time buckets to settle) and never across an await.
///
/// Memory per member is bounded whatever the request rate: charges are summed per time
/// bucket (1/600 of each window: 100 ms of the 60 s window, about 17 ms of the 10 s one),
/// never kept per request, so a member holds at most 1204 buckets of under 64 bytes each
/// (under 80 KB); a member without limits keeps only the long window. A bucket leaves a
/// window with its last charge, so a charge may count up to one bucket longer than it would
/// alone, never shorter.
///
/// ```
/// use lbgpt_balance::usage::{InMemoryUsage, Limits, Outcome, PacingConfig, UsageTracker};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let usage = InMemoryUsage::new(PacingConfig::unpaced());
/// usage.register("azure-eu", Limits::none().rpm(2));
/// let first = usage.try_reserve("azure-eu", 100).await.expect("room for one");
/// let _second = usage.try_reserve("azure-eu", 100).await.expect("room for two");
/// let full = usage.try_reserve("azure-eu", 100).await.expect_err("at the limit");
/// assert!(full.retry_at.is_some());
/// usage.settle(first, Outcome::Failed { reached_provider: false }); // refunded
/// assert!(usage.try_reserve("azure-eu", 100).await.is_ok());
/// # }
/// ```
pub struct InMemoryUsage {
    pacing: PacingConfig,
    accounting: Accounting,
    members: RwLock<HashMap<Arc<str>, Arc<MemberCell>>>,
}

struct MemberCell {
    name: Arc<str>,
    ledger: Mutex<Ledger>,
}

impl MemberCell {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ledgered for MemberCell {
    fn settle(&self, reservation: &Reservation, outcome: &Outcome) {
        self.ledger().settle(Instant::now(), reservation, outcome);
    }
}

impl Default for InMemoryUsage {
    fn default() -> Self {
        InMemoryUsage::new(PacingConfig::default())
    }
}

impl InMemoryUsage {
    /// A tracker pacing by `pacing`, with [`Accounting::ArrivalCharge`].
    pub fn new(pacing: PacingConfig) -> Self {
        InMemoryUsage {
            pacing,
            accounting: Accounting::default(),
            members: RwLock::new(HashMap::new()),
        }
    }

    /// How answers turn into charges (default [`Accounting::ArrivalCharge`]).
    pub fn accounting(mut self, accounting: Accounting) -> Self {
        self.accounting = accounting;
        self
    }

    /// The pacing configuration.
    pub fn pacing(&self) -> &PacingConfig {
        &self.pacing
    }

    /// The registered members' names.
    pub fn members(&self) -> Vec<String> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        members.keys().map(|name| name.to_string()).collect()
    }

    /// How many time buckets `member`'s windows hold now (`None` if it is not tracked): the
    /// whole of its per-request memory, at most `MAX_STORED_BUCKETS` however many requests
    /// it admits. For tests and benchmarks.
    #[doc(hidden)]
    pub fn stored_buckets(&self, member: &str) -> Option<usize> {
        let cell = self.cell(member)?;
        let buckets = cell.ledger().stored_buckets();
        Some(buckets)
    }

    fn cell(&self, member: &str) -> Option<Arc<MemberCell>> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        members.get(member).cloned()
    }

    fn reserve(&self, member: &str, estimate: Estimate) -> Result<Reservation, Unavailable> {
        let Some(cell) = self.cell(member) else {
            return Err(Unavailable {
                retry_at: None,
                limit: LimitKind::Requests,
            });
        };
        let now = Instant::now();
        let admitted = cell.ledger().try_reserve(now, estimate)?;
        let mut reservation =
            Reservation::new(cell.name.clone(), admitted.id, admitted.tokens, now)
                .with_seen(admitted.seen);
        if let Estimate::Split { prompt, completion } = estimate {
            reservation = reservation.with_split(prompt, completion);
        }
        let ledger: Weak<dyn Ledgered> = Arc::downgrade(&cell) as Weak<dyn Ledgered>;
        Ok(reservation.with_ledger(ledger))
    }
}

impl fmt::Debug for InMemoryUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryUsage")
            .field("pacing", &self.pacing)
            .field("accounting", &self.accounting)
            .field("members", &self.members())
            .finish()
    }
}

#[async_trait::async_trait]
impl UsageTracker for InMemoryUsage {
    fn register(&self, member: &str, limits: Limits) {
        let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
        match members.get(member) {
            Some(cell) => cell.ledger().set_limits(limits),
            None => {
                let name: Arc<str> = Arc::from(member);
                let cell = MemberCell {
                    name: name.clone(),
                    ledger: Mutex::new(Ledger::new(limits, self.pacing, self.accounting)),
                };
                members.insert(name, Arc::new(cell));
            }
        }
    }

    fn unregister(&self, member: &str) {
        let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
        members.remove(member);
    }

    async fn try_reserve(&self, member: &str, tokens: u64) -> Result<Reservation, Unavailable> {
        self.reserve(member, Estimate::Total(tokens))
    }

    async fn try_reserve_estimate(
        &self,
        member: &str,
        estimate: TokenEstimate,
    ) -> Result<Reservation, Unavailable> {
        self.reserve(
            member,
            Estimate::Split {
                prompt: estimate.prompt,
                completion: estimate.completion_budget,
            },
        )
    }

    fn settle(&self, mut reservation: Reservation, outcome: Outcome) {
        reservation.settle_with(&outcome);
    }

    fn snapshot(&self, member: &str) -> Option<UsageSnapshot> {
        let cell = self.cell(member)?;
        let snapshot = cell.ledger().snapshot(Instant::now());
        Some(snapshot)
    }
}
