//! Usage tracking: how much of each member's per-minute limits is in use, and when the next
//! request fits.
//!
//! The balancer asks a [`UsageTracker`] to [reserve](UsageTracker::try_reserve) one request
//! and its estimated tokens on a member before sending, and [settles](UsageTracker::settle)
//! the reservation with the [`Outcome`] afterwards. A reservation that does not fit comes
//! back as [`Unavailable`] with the exact instant it would ([`Unavailable::retry_at`]): the
//! balancer sleeps until then instead of polling. [`InMemoryUsage`] is the in-process
//! tracker; a shared one (e.g. Redis-backed) implements the same trait.
//!
//! # The admission rule
//!
//! Providers enforce a per-minute limit `L` (requests or tokens) in different ways:
//!
//! 1. a **sliding 60 s window**: at most `L` charged in any 60 s;
//! 2. a **token bucket** of capacity `L` refilled at `L / 60` per second (OpenAI);
//! 3. **fixed 10 s windows** of `L / 6` each (Azure: a 600 RPM deployment takes 100 per 10 s).
//!
//! A request is admitted on a member at time `t` only if, for requests (charge 1) and for
//! tokens (its corrected estimate `c`), each with a limit set:
//!
//! - **(W) long window**: the charges admitted in the last `window + slack` (60.05 s by
//!   default), in-flight reservations included, plus `c`, are at most `L`;
//! - **(S) short window**: the charges admitted in the last `short + slack` (10.05 s), plus
//!   `c`, are at most `ceil(L x short / window)` (`L / 6`); a single charge larger than that
//!   share needs an empty short window, so it is never refused for ever;
//! - **(P) pacing**: an even schedule at `(1 - margin) x L / window` per second (98 % by
//!   default) is at most `burst` (100 ms) ahead: admission `k` is due at `slot_k - burst`, and
//!   admitting a charge `c` moves the slot `c / rate` further (a virtual-scheduling GCRA that
//!   lets the request's own charge run into the next slots, so a large request still fits);
//! - plus header tightening (below).
//!
//! Why no enforcement mode answers 429 when `L` is the provider's real limit and our
//! charges match its counts. The provider counts a request when it arrives, between 0 and
//! `J` after we admitted it (network delay and its variation); `slack >= J` keeps every
//! charge in our windows at least as long as in the provider's:
//!
//! - Sliding 60 s: the provider's window at any instant holds a subset of what our (W)
//!   window held when we admitted the newest of them, and (W) kept that at most `L`.
//! - Fixed 10 s windows: each provider window sees requests we admitted within 10 s + `J`;
//!   (S) keeps any such span at most `L / 6`.
//! - Token bucket: by (S), any span of `T` seconds holds at most `(T / 10 + 1) x L / 6`, so
//!   the bucket never falls below `L - L / 6 - J x L / 60` before a charge; that is at least
//!   `L / 6`, the largest charge (S) lets through, for any `J` up to 40 s.
//!
//! (W) and (S) alone are safe; (P) makes the traffic smooth instead of a burst of `L / 6`
//! at the start of each 10 s (which a provider enforcing over 1 s windows would refuse), and
//! its margin keeps the schedule, not (S), the binding rule in steady state: with the
//! defaults, even spacing at 98 % puts `0.98 x 10.05 s x L / 60` = `0.985 x L / 6` (plus the
//! burst) in any 10.05 s span, so (S) rarely waits. The long-run rate is
//! the paced `0.98 x L` per minute (>= 97 % of the limit), and the burst (or a member that
//! was idle) only ever adds to it. The burst also absorbs timer lateness: a request woken a
//! little after its `retry_at` does not push the schedule back.
//!
//! `retry_at` is the maximum over the rules of the instant each is met, found by walking the
//! oldest charges until enough have left the window (usually one or two time buckets: see Memory), so
//! it is exact: admission at `retry_at` succeeds, a millisecond earlier fails. Each rule only
//! gets easier as time passes, which makes the maximum the earliest instant all hold.
//!
//! Requests with more tokens than the TPM limit can never fit:
//! `Unavailable { retry_at: None, .. }`. A member with only an RPM limit never waits on
//! tokens, and a member with no limits always admits.
//!
//! # Corrections
//!
//! - **Settling** replaces the reservation with the charge the provider made, per
//!   [`Accounting`]: by default the arrival charge with the provider's prompt count
//!   (`usage.prompt_tokens` + the reserved completion budget); or the actual usage; or the
//!   larger. A failure that never reached the provider is refunded; any other failure, a 429
//!   (OpenAI counts refused requests too) and a reservation dropped unsettled keep the
//!   reserved charge until it leaves the window.
//! - **Correction factor**: each answer's `prompt_tokens` over our prompt estimate feeds a
//!   per-member EWMA (rising fast, weight 0.5; falling slowly, 0.1) that scales later prompt
//!   estimates, and a 429 on tokens raises it by 10 % (once per burst: 429s of reservations
//!   sized before the last raise do not raise it again), so a provider that counts 1.3x our
//!   tokenizer stops causing 429s after a few answers. (It needs the split estimate of
//!   [`UsageTracker::try_reserve_estimate`]; a plain total is scaled by the factor only when
//!   it is above 1.)
//! - **Headers** tighten, never loosen: when `x-ratelimit-remaining-*` says the provider had
//!   less left than our window did when that request was admitted, less whatever was admitted
//!   after it (those may have reached the provider first), the difference counts as extra
//!   usage (in the long window, or the short one when the reported limit is the short
//!   window's share) until the header's `x-ratelimit-reset-*`; a newer report replaces it.
//!
//! # Cancellation
//!
//! A [`Reservation`] dropped without settling (its request's future was dropped) is settled
//! as `Failed { reached_provider: true }`: the in-flight count is released at once and the
//! charge stays until it leaves the window, because the provider may have counted it.
//!
//! # Memory
//!
//! The windows keep their charges in time buckets, not one entry per request: a bucket
//! takes the charges admitted within 1/600 of the window after its first (100 ms of the
//! 60.05 s window, 16.75 ms of the 10.05 s one) and leaves the window with its last. A
//! member's memory is therefore bounded whatever its request rate (at most 602 buckets per
//! window; a member without limits keeps only the long window, for its snapshot), and the
//! rules above stay safe: a charge counts up to one bucket longer than it would alone, never
//! shorter. A charge admitted at least a bucket after the one before it (a member paced at
//! under 600 RPM, say) leaves at its exact instant; at higher rates a window gives capacity
//! back up to one bucket (1/600 of its length, 0.17 %) late, which pacing's margin covers
//! (above: 0.985 x L / 6 in any 10.05 s, plus 0.17 % for the bucket). What settling and header
//! tightening need per request (its id, charge and the windows' sums when it was admitted)
//! travels with its [`Reservation`].

mod ledger;
mod memory;
mod pacing;
mod reservation;
mod types;
mod window;

pub use memory::InMemoryUsage;
#[doc(hidden)]
pub use memory::MAX_STORED_BUCKETS;
pub use pacing::PacingConfig;
pub use reservation::Reservation;
pub use types::{Accounting, LimitKind, Limits, Outcome, Unavailable, UsageSnapshot};

use crate::tokens::TokenEstimate;

/// Tracks members' usage against their limits; shared by all clones of a balancer.
#[async_trait::async_trait]
pub trait UsageTracker: Send + Sync + std::fmt::Debug + 'static {
    /// Starts tracking `member` with `limits`; for a tracked member, updates its limits and
    /// keeps its history. Idempotent.
    fn register(&self, member: &str, limits: Limits);

    /// Stops tracking `member`. Its outstanding reservations settle harmlessly.
    fn unregister(&self, member: &str);

    /// Reserve one request and `tokens` on `member` now, or say when it would fit. An
    /// unknown member can never fit.
    async fn try_reserve(&self, member: &str, tokens: u64) -> Result<Reservation, Unavailable>;

    /// Like [`try_reserve`](Self::try_reserve) with the estimate's split into prompt and
    /// completion budget, which lets settling learn the provider's prompt count (the
    /// correction factor) and charge its prompt count plus the completion budget. Prefer
    /// this one. The default forwards the total to `try_reserve`.
    async fn try_reserve_estimate(
        &self,
        member: &str,
        estimate: TokenEstimate,
    ) -> Result<Reservation, Unavailable> {
        self.try_reserve(member, estimate.total()).await
    }

    /// Settle exactly once: the answer's real usage / provider headers correct the
    /// reservation.
    fn settle(&self, reservation: Reservation, outcome: Outcome);

    /// `member`'s usage now; `None` if it is not tracked.
    fn snapshot(&self, member: &str) -> Option<UsageSnapshot>;
}
