//! One member's usage: the pure state machine behind [`InMemoryUsage`](super::InMemoryUsage).
//! No locks, no clock: callers pass `now`.
//!
//! Charges are kept in [`Window`]s of coarse time buckets, never one per request, so a
//! member's memory stays bounded whatever its request rate: a member without limits keeps
//! only the long window (for its snapshot), a limited one the short window as well.

use super::window::{Sums, Window};
use super::{Accounting, LimitKind, Limits, Outcome, PacingConfig, Reservation, UsageSnapshot};
use lbgpt_core::RateLimitInfo;
use std::time::Duration;
use tokio::time::Instant;

/// Smallest and largest correction factor.
const CORRECTION_RANGE: (f64, f64) = (0.25, 8.0);
/// EWMA weight of a prompt-count sample above the current factor (rise fast: an
/// under-estimate risks 429s).
const ALPHA_UP: f64 = 0.5;
/// EWMA weight of a sample below the current factor (fall slowly).
const ALPHA_DOWN: f64 = 0.1;
/// Factor applied to the correction after a 429 on tokens.
const RATE_LIMITED_BUMP: f64 = 1.1;

/// What a reservation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Estimate {
    /// Prompt and completion budget known separately.
    Split { prompt: u64, completion: u64 },
    /// Only the total known.
    Total(u64),
}

/// The windows' sums right after a request was admitted: what the provider should have
/// seen when the request arrived (for comparing with its `x-ratelimit-remaining-*`). The
/// reservation carries it, so the ledger keeps nothing per request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    long: Sums,
    short: Sums,
    /// Everything the ledger had admitted up to and including the request: what was
    /// admitted after it may have reached the provider first.
    admitted: Sums,
}

/// An admitted reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admitted {
    pub(crate) id: u64,
    pub(crate) tokens: u64,
    pub(crate) seen: Seen,
}

/// A window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Long,
    Short,
}

/// Extra usage the provider reported beyond ours, counted until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Phantom {
    amount: u64,
    until: Instant,
    source: u64,
}

/// One member's windows, pacing schedule, in-flight reservations and correction factor.
#[derive(Debug)]
pub(crate) struct Ledger {
    limits: Limits,
    pacing: PacingConfig,
    accounting: Accounting,
    /// The charges of the last `window + slack`.
    long: Window,
    /// The charges of the last `short + slack`; only kept while the member has a limit and
    /// the pacing a short window.
    short: Option<Window>,
    /// The even schedule's next slot (GCRA's theoretical arrival time) per resource.
    schedule_requests: Option<Instant>,
    schedule_tokens: Option<Instant>,
    in_flight: u64,
    reserved_tokens: u64,
    /// Everything ever admitted (requests, reserved tokens), to tell how many admissions
    /// came after a given one; its request count is the id the next admission gets.
    admitted: Sums,
    correction: f64,
    /// Reservations with ids below this were admitted before the last 429 bump of the
    /// correction factor: their 429s do not bump it again.
    bumped_before: u64,
    /// Header tightening: [long requests, long tokens, short requests, short tokens].
    phantoms: [Option<Phantom>; 4],
}

fn phantom_index(span: Span, kind: LimitKind) -> usize {
    match (span, kind) {
        (Span::Long, LimitKind::Requests) => 0,
        (Span::Long, LimitKind::Tokens) => 1,
        (Span::Short, LimitKind::Requests) => 2,
        (Span::Short, LimitKind::Tokens) => 3,
    }
}

fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
}

impl Ledger {
    pub(crate) fn new(limits: Limits, pacing: PacingConfig, accounting: Accounting) -> Self {
        let long = Window::new(pacing.window_length() + pacing.slack_length());
        let mut ledger = Ledger {
            limits: Limits::none(),
            pacing,
            accounting,
            long,
            short: None,
            schedule_requests: None,
            schedule_tokens: None,
            in_flight: 0,
            reserved_tokens: 0,
            admitted: Sums::default(),
            correction: 1.0,
            bumped_before: 0,
            phantoms: [None; 4],
        };
        ledger.set_limits(limits);
        ledger
    }

    pub(crate) fn set_limits(&mut self, limits: Limits) {
        if limits.rpm.is_none() {
            self.schedule_requests = None;
        }
        if limits.tpm.is_none() {
            self.schedule_tokens = None;
        }
        let short_length = self
            .pacing
            .short_window_length()
            .map(|short| short + self.pacing.slack_length());
        match short_length {
            Some(length) if !limits.is_unlimited() => {
                if self.short.is_none() {
                    // Nothing was kept per short window while unlimited: start from the
                    // long window's charges (as recent or more than the short window's).
                    self.short = Some(Window::holding(length, &self.long));
                }
            }
            _ => self.short = None,
        }
        self.limits = limits;
    }

    fn limit(&self, kind: LimitKind) -> Option<u64> {
        match kind {
            LimitKind::Requests => self.limits.rpm,
            LimitKind::Tokens => self.limits.tpm,
        }
    }

    fn window(&self, span: Span) -> Option<&Window> {
        match span {
            Span::Long => Some(&self.long),
            Span::Short => self.short.as_ref(),
        }
    }

    /// How many time buckets the windows keep (bounded, whatever the request rate).
    pub(crate) fn stored_buckets(&self) -> usize {
        self.long.buckets() + self.short.as_ref().map_or(0, Window::buckets)
    }

    /// Drops charges that left the windows and header tightening that expired.
    fn prune(&mut self, now: Instant) {
        self.long.prune(now);
        if let Some(short) = &mut self.short {
            short.prune(now);
        }
        for phantom in &mut self.phantoms {
            if phantom.is_some_and(|p| p.until <= now) {
                *phantom = None;
            }
        }
    }

    fn corrected(&self, estimate: Estimate) -> u64 {
        let scale = |tokens: u64, factor: f64| -> u64 {
            let scaled = (tokens as f64 * factor).ceil();
            if scaled >= u64::MAX as f64 {
                u64::MAX
            } else {
                scaled as u64
            }
        };
        match estimate {
            Estimate::Split { prompt, completion } => {
                scale(prompt, self.correction).saturating_add(completion)
            }
            Estimate::Total(total) => scale(total, self.correction.max(1.0)),
        }
    }

    /// The earliest instant (>= now) at which `need` more fits `budget` in `span`'s window,
    /// if nothing else is admitted meanwhile; `None` if it never does.
    fn earliest_in_window(
        &self,
        now: Instant,
        span: Span,
        kind: LimitKind,
        budget: u64,
        need: u64,
    ) -> Option<Instant> {
        let Some(window) = self.window(span) else {
            return Some(now);
        };
        let sum = window.sum().get(kind);
        let fit = |budget: u64| -> Option<Instant> {
            if need > budget {
                return None;
            }
            let over = sum.saturating_add(need).saturating_sub(budget);
            Some(window.freed(now, kind, over))
        };
        match self.phantoms[phantom_index(span, kind)] {
            None => fit(budget),
            Some(phantom) => {
                let with_phantom = budget.checked_sub(phantom.amount).and_then(fit);
                let after_phantom = fit(budget).map(|at| at.max(phantom.until));
                match (with_phantom, after_phantom) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// The earliest instant `need` of `kind` fits every rule; `None` if never.
    fn earliest(&self, now: Instant, kind: LimitKind, need: u64) -> Option<Instant> {
        let Some(limit) = self.limit(kind) else {
            return Some(now);
        };
        let mut at = self.earliest_in_window(now, Span::Long, kind, limit, need)?;
        if let Some(quota) = self.pacing.short_quota(limit) {
            // A single charge larger than the short window's share fits an empty one.
            let short = self.earliest_in_window(now, Span::Short, kind, quota.max(need), need)?;
            at = at.max(short);
        }
        let schedule = match kind {
            LimitKind::Requests => self.schedule_requests,
            LimitKind::Tokens => self.schedule_tokens,
        };
        if let Some(slot) = schedule {
            let ready = slot.checked_sub(self.pacing.burst_length()).unwrap_or(now);
            at = at.max(ready);
        }
        Some(at)
    }

    /// Admits one request of `estimate` now, or says when it would fit.
    pub(crate) fn try_reserve(
        &mut self,
        now: Instant,
        estimate: Estimate,
    ) -> Result<Admitted, super::Unavailable> {
        self.prune(now);
        let tokens = self.corrected(estimate);
        let never = |limit| super::Unavailable {
            retry_at: None,
            limit,
        };
        if self.limits.tpm.is_some_and(|tpm| tokens > tpm) {
            return Err(never(LimitKind::Tokens));
        }
        if self.limits.rpm == Some(0) {
            return Err(never(LimitKind::Requests));
        }
        let requests_at = self
            .earliest(now, LimitKind::Requests, 1)
            .ok_or(never(LimitKind::Requests))?;
        let tokens_at = self
            .earliest(now, LimitKind::Tokens, tokens)
            .ok_or(never(LimitKind::Tokens))?;
        let (at, limit) = if tokens_at > requests_at {
            (tokens_at, LimitKind::Tokens)
        } else {
            (requests_at, LimitKind::Requests)
        };
        if at > now {
            return Err(super::Unavailable {
                retry_at: Some(at),
                limit,
            });
        }
        Ok(self.admit(now, tokens))
    }

    fn admit(&mut self, now: Instant, tokens: u64) -> Admitted {
        let id = self.admitted.requests;
        let charge = Sums::request(tokens);
        self.long.add(now, id, charge);
        self.admitted.add(charge);
        let mut seen = Seen {
            long: self.long.sum(),
            short: Sums::default(),
            admitted: self.admitted,
        };
        if let Some(short) = &mut self.short {
            short.add(now, id, charge);
            seen.short = short.sum();
        }
        if let Some(interval) = self.limits.rpm.and_then(|l| self.pacing.interval(l)) {
            let slot = self.schedule_requests.map_or(now, |slot| slot.max(now));
            self.schedule_requests = Some(slot + secs(interval));
        }
        if let Some(interval) = self.limits.tpm.and_then(|l| self.pacing.interval(l)) {
            let slot = self.schedule_tokens.map_or(now, |slot| slot.max(now));
            self.schedule_tokens = Some(slot + secs(interval * tokens as f64));
        }
        self.in_flight += 1;
        self.reserved_tokens = self.reserved_tokens.saturating_add(tokens);
        Admitted { id, tokens, seen }
    }

    /// Settles `reservation` (made by this ledger) with `outcome`.
    pub(crate) fn settle(&mut self, now: Instant, reservation: &Reservation, outcome: &Outcome) {
        self.prune(now);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.reserved_tokens = self.reserved_tokens.saturating_sub(reservation.tokens());
        let reserved = Sums::request(reservation.tokens());
        let charge = match outcome {
            Outcome::Answered {
                usage: Some(usage), ..
            } if usage.total_tokens > 0 || usage.prompt_tokens > 0 => {
                if let Some(estimate) = reservation.prompt_estimate() {
                    if estimate > 0 && usage.prompt_tokens > 0 {
                        self.learn(usage.prompt_tokens as f64 / estimate as f64);
                    }
                }
                let total = usage
                    .total_tokens
                    .max(usage.prompt_tokens.saturating_add(usage.completion_tokens));
                let arrival = match reservation.prompt_estimate() {
                    Some(_) => usage
                        .prompt_tokens
                        .saturating_add(reservation.completion_budget()),
                    None => reservation.tokens().max(total),
                };
                let tokens = match self.accounting {
                    Accounting::ArrivalCharge => arrival,
                    Accounting::ActualUsage => total,
                    Accounting::Larger => arrival.max(total),
                };
                Sums::request(tokens)
            }
            Outcome::Answered { .. } => reserved,
            Outcome::RateLimited { rate_limit, .. } => {
                if reservation.id() >= self.bumped_before
                    && self.rate_limited_on_tokens(reservation, rate_limit.as_ref())
                {
                    // Once per burst: reservations admitted before this bump were sized
                    // with the old factor, and their 429s say nothing new.
                    self.correction = (self.correction * RATE_LIMITED_BUMP)
                        .clamp(CORRECTION_RANGE.0, CORRECTION_RANGE.1);
                    self.bumped_before = self.admitted.requests;
                }
                reserved
            }
            Outcome::Failed {
                reached_provider: false,
            } => Sums::default(),
            Outcome::Failed {
                reached_provider: true,
            } => reserved,
        };
        self.recharge(reservation.id(), reserved, charge);
        let rate_limit = match outcome {
            Outcome::Answered { rate_limit, .. } | Outcome::RateLimited { rate_limit, .. } => {
                rate_limit.as_ref()
            }
            Outcome::Failed { .. } => None,
        };
        if let (Some(info), Some(seen)) = (rate_limit, reservation.seen()) {
            self.tighten(now, reservation.id(), seen, info);
        }
    }

    /// Replaces admission `id`'s charge `old` with `new` in the windows and the schedule.
    fn recharge(&mut self, id: u64, old: Sums, new: Sums) {
        if old == new {
            return;
        }
        if !self.long.recharge(id, old, new) {
            return; // already out of the windows
        }
        if let Some(short) = &mut self.short {
            short.recharge(id, old, new);
        }
        let shift = |slot: &mut Option<Instant>, interval: Option<f64>, old: u64, new: u64| {
            if let (Some(at), Some(interval)) = (slot.as_mut(), interval) {
                if new >= old {
                    *at += secs(interval * (new - old) as f64);
                } else if let Some(earlier) = at.checked_sub(secs(interval * (old - new) as f64)) {
                    *at = earlier;
                }
            }
        };
        let requests_interval = self.limits.rpm.and_then(|l| self.pacing.interval(l));
        let tokens_interval = self.limits.tpm.and_then(|l| self.pacing.interval(l));
        shift(
            &mut self.schedule_requests,
            requests_interval,
            old.requests,
            new.requests,
        );
        shift(
            &mut self.schedule_tokens,
            tokens_interval,
            old.tokens,
            new.tokens,
        );
    }

    /// One prompt-count sample (provider / our estimate) into the correction factor.
    fn learn(&mut self, sample: f64) {
        if !sample.is_finite() {
            return;
        }
        let sample = sample.clamp(CORRECTION_RANGE.0, CORRECTION_RANGE.1);
        let alpha = if sample > self.correction {
            ALPHA_UP
        } else {
            ALPHA_DOWN
        };
        self.correction += alpha * (sample - self.correction);
    }

    /// Whether a 429 was about tokens: the headers say the token budget could not hold the
    /// request, or say nothing and only a token limit could have been hit.
    fn rate_limited_on_tokens(
        &self,
        reservation: &Reservation,
        info: Option<&RateLimitInfo>,
    ) -> bool {
        if self.limits.tpm.is_none() {
            return false;
        }
        match info {
            Some(info) => match (info.remaining_tokens, info.remaining_requests) {
                (Some(tokens), _) if tokens < reservation.tokens() => true,
                (Some(_), _) => false,
                (None, Some(requests)) => requests > 0,
                (None, None) => true,
            },
            None => true,
        }
    }

    /// Provider headers tighten the windows: when the provider had less left than we
    /// thought when request `id` arrived, the difference counts as extra usage until the
    /// provider's reset. The newest report replaces older ones.
    ///
    /// Requests admitted after `id` may reach the provider before it (concurrent callers),
    /// so what we thought it had counted is the windows' sum at `id`'s admission plus
    /// everything admitted since; only a shortfall beyond that is usage we did not see.
    fn tighten(&mut self, now: Instant, id: u64, seen: Seen, info: &RateLimitInfo) {
        if !self.long.holds(id) {
            return; // the request has left the windows: its report is stale
        }
        let mut admitted_since = self.admitted;
        admitted_since.sub(seen.admitted);
        let reports = [
            (
                LimitKind::Requests,
                info.remaining_requests,
                info.limit_requests,
                info.reset_requests,
            ),
            (
                LimitKind::Tokens,
                info.remaining_tokens,
                info.limit_tokens,
                info.reset_tokens,
            ),
        ];
        for (kind, remaining, reported_limit, reset) in reports {
            let (Some(limit), Some(remaining)) = (self.limit(kind), remaining) else {
                continue;
            };
            // A provider enforcing short windows reports the short window's allowance.
            let short = self.pacing.short_quota(limit).filter(|&quota| {
                reported_limit.is_some_and(|reported| {
                    reported < limit && reported.abs_diff(quota) <= (quota / 100).max(1)
                })
            });
            let (span, budget, seen, length) = match (short, &self.short) {
                (Some(quota), Some(window)) => (Span::Short, quota, seen.short, window.length()),
                _ => (Span::Long, limit, seen.long, self.long.length()),
            };
            let ours_left = budget
                .saturating_sub(seen.get(kind))
                .saturating_sub(admitted_since.get(kind));
            let amount = ours_left.saturating_sub(remaining);
            let slot = &mut self.phantoms[phantom_index(span, kind)];
            if slot.is_some_and(|p| p.source > id) {
                continue; // a newer report already holds
            }
            *slot = (amount > 0).then(|| Phantom {
                amount,
                until: now + reset.unwrap_or(length),
                source: id,
            });
        }
    }

    pub(crate) fn snapshot(&mut self, now: Instant) -> UsageSnapshot {
        self.prune(now);
        let long = self.long.sum();
        let phantom =
            |kind| self.phantoms[phantom_index(Span::Long, kind)].map_or(0, |p: Phantom| p.amount);
        let headroom = |kind: LimitKind| {
            self.limit(kind)
                .map(|limit| limit.saturating_sub(long.get(kind).saturating_add(phantom(kind))))
        };
        UsageSnapshot {
            requests_in_window: long.requests,
            tokens_in_window: long.tokens,
            in_flight: self.in_flight,
            reserved_tokens: self.reserved_tokens,
            headroom_requests: headroom(LimitKind::Requests),
            headroom_tokens: headroom(LimitKind::Tokens),
            token_correction: self.correction,
            limits: self.limits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::Usage;

    const MS: Duration = Duration::from_millis(1);

    fn ledger(limits: Limits, pacing: PacingConfig) -> Ledger {
        Ledger::new(limits, pacing, Accounting::ArrivalCharge)
    }

    fn reservation(admitted: Admitted, at: Instant, split: Option<(u64, u64)>) -> Reservation {
        let reservation =
            Reservation::new("m", admitted.id, admitted.tokens, at).with_seen(admitted.seen);
        match split {
            Some((prompt, completion)) => reservation.with_split(prompt, completion),
            None => reservation,
        }
    }

    fn answered(prompt: u64, completion: u64) -> Outcome {
        Outcome::Answered {
            usage: Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: prompt + completion,
                ..Usage::default()
            }),
            rate_limit: None,
        }
    }

    #[test]
    fn the_long_window_admits_the_limit_then_says_exactly_when() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().rpm(3), PacingConfig::unpaced());
        for i in 0..3 {
            let at = t0 + Duration::from_secs(i);
            assert!(ledger.try_reserve(at, Estimate::Total(10)).is_ok());
        }
        let now = t0 + Duration::from_secs(5);
        let refused = ledger
            .try_reserve(now, Estimate::Total(10))
            .expect_err("full");
        let expected = t0 + Duration::from_millis(60_050);
        assert_eq!(refused.retry_at, Some(expected));
        assert_eq!(refused.limit, LimitKind::Requests);
        assert!(ledger
            .try_reserve(expected - MS, Estimate::Total(10))
            .is_err());
        assert!(ledger.try_reserve(expected, Estimate::Total(10)).is_ok());
        // The next one waits for the second charge to leave.
        let refused = ledger
            .try_reserve(expected, Estimate::Total(10))
            .expect_err("full again");
        assert_eq!(refused.retry_at, Some(expected + Duration::from_secs(1)));
    }

    #[test]
    fn charges_sharing_a_time_bucket_leave_with_its_last() {
        // 100 ms buckets in a 60.05 s window: three admissions within 60 ms share one, and
        // the window frees them together, 60.05 s after the last (never earlier than each).
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().rpm(3), PacingConfig::unpaced());
        for at in [0, 50, 60] {
            let now = t0 + Duration::from_millis(at);
            assert!(ledger.try_reserve(now, Estimate::Total(1)).is_ok());
        }
        assert_eq!(ledger.stored_buckets(), 1);
        let refused = ledger
            .try_reserve(t0 + Duration::from_secs(1), Estimate::Total(1))
            .expect_err("full");
        let expected = t0 + Duration::from_millis(60_110);
        assert_eq!(refused.retry_at, Some(expected));
        assert!(ledger
            .try_reserve(expected - MS, Estimate::Total(1))
            .is_err());
        assert!(ledger.try_reserve(expected, Estimate::Total(1)).is_ok());
        assert_eq!(ledger.snapshot(expected).requests_in_window, 1);
    }

    #[test]
    fn a_million_requests_keep_a_bounded_number_of_buckets_with_or_without_limits() {
        let t0 = Instant::now();
        let limited = Limits::none().rpm(1_000_000).tpm(100_000_000);
        for limits in [Limits::none(), limited] {
            let mut ledger = ledger(limits, PacingConfig::default());
            let mut most = 0;
            for i in 0..1_000_000u64 {
                // 10 000 a second for 100 s: the windows fill and turn over.
                let now = t0 + Duration::from_micros(100 * i);
                let estimate = Estimate::Split {
                    prompt: 40,
                    completion: 10,
                };
                let admitted = ledger.try_reserve(now, estimate).expect("under the limits");
                ledger.settle(
                    now,
                    &reservation(admitted, now, Some((40, 10))),
                    &answered(42, 3),
                );
                most = most.max(ledger.stored_buckets());
            }
            assert!(
                most <= 2 * super::super::window::MAX_BUCKETS,
                "{limits:?}: {most} buckets"
            );
            let end = t0 + Duration::from_micros(100 * 999_999);
            let snapshot = ledger.snapshot(end);
            // Exactly 600 500 were admitted in the last 60.05 s; a bucket may hold its
            // charges up to 100 ms (1 000 requests) longer.
            assert!(
                (600_500..=601_500).contains(&snapshot.requests_in_window),
                "{limits:?}: {} in the window",
                snapshot.requests_in_window
            );
            assert_eq!(snapshot.tokens_in_window, 52 * snapshot.requests_in_window);
            assert_eq!(snapshot.in_flight, 0);
        }
    }

    #[test]
    fn a_member_given_limits_later_counts_its_recent_charges_in_the_short_window() {
        let t0 = Instant::now();
        let pacing = PacingConfig::default().spread(false);
        let mut ledger = ledger(Limits::none(), pacing);
        for _ in 0..100 {
            assert!(ledger.try_reserve(t0, Estimate::Total(1)).is_ok());
        }
        assert_eq!(
            ledger.stored_buckets(),
            1,
            "only the long window while unlimited"
        );
        ledger.set_limits(Limits::none().rpm(600));
        assert_eq!(ledger.stored_buckets(), 2);
        let refused = ledger
            .try_reserve(t0 + Duration::from_secs(1), Estimate::Total(1))
            .expect_err("the short window already holds its share of 100");
        assert_eq!(refused.retry_at, Some(t0 + Duration::from_millis(10_050)));
        ledger.set_limits(Limits::none());
        assert_eq!(ledger.stored_buckets(), 1);
    }

    #[test]
    fn tokens_wait_until_enough_old_charges_have_left() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().tpm(1000), PacingConfig::unpaced());
        for (i, tokens) in [300u64, 300, 300].into_iter().enumerate() {
            let at = t0 + Duration::from_secs(i as u64);
            assert!(ledger.try_reserve(at, Estimate::Total(tokens)).is_ok());
        }
        // 900 used; 700 more needs 600 to leave: the first two charges.
        let refused = ledger
            .try_reserve(t0 + Duration::from_secs(3), Estimate::Total(700))
            .expect_err("too big for now");
        assert_eq!(refused.limit, LimitKind::Tokens);
        let expected = t0 + Duration::from_millis(61_050);
        assert_eq!(refused.retry_at, Some(expected));
        assert!(ledger
            .try_reserve(expected - MS, Estimate::Total(700))
            .is_err());
        assert!(ledger.try_reserve(expected, Estimate::Total(700)).is_ok());
        // Never: more than the whole limit.
        let never = ledger
            .try_reserve(expected, Estimate::Total(1001))
            .expect_err("never fits");
        assert_eq!(never.retry_at, None);
        assert_eq!(never.limit, LimitKind::Tokens);
    }

    #[test]
    fn an_rpm_only_member_ignores_tokens_and_an_unlimited_one_always_admits() {
        let t0 = Instant::now();
        let mut rpm_only = ledger(Limits::none().rpm(2), PacingConfig::default());
        assert!(rpm_only
            .try_reserve(t0, Estimate::Total(10_000_000))
            .is_ok());
        let refused = rpm_only
            .try_reserve(t0, Estimate::Total(10_000_000))
            .expect_err("paced");
        let at = refused
            .retry_at
            .expect("an rpm-only member always fits later");
        assert!(rpm_only
            .try_reserve(at, Estimate::Total(10_000_000))
            .is_ok());

        let mut free = ledger(Limits::none(), PacingConfig::default());
        for _ in 0..10_000 {
            assert!(free.try_reserve(t0, Estimate::Total(1_000_000)).is_ok());
        }
        let mut zero = ledger(Limits::none().rpm(0), PacingConfig::default());
        assert_eq!(
            zero.try_reserve(t0, Estimate::Total(1)),
            Err(super::super::Unavailable {
                retry_at: None,
                limit: LimitKind::Requests
            })
        );
    }

    #[test]
    fn the_short_window_holds_its_share_and_lets_a_large_charge_into_an_empty_one() {
        let t0 = Instant::now();
        let pacing = PacingConfig::default().spread(false);
        let mut ledger = ledger(Limits::none().rpm(600).tpm(6000), pacing);
        for _ in 0..100 {
            assert!(ledger.try_reserve(t0, Estimate::Total(1)).is_ok());
        }
        let refused = ledger
            .try_reserve(t0, Estimate::Total(1))
            .expect_err("short window full");
        assert_eq!(refused.retry_at, Some(t0 + Duration::from_millis(10_050)));
        // 1500 tokens are more than a short window's 1000, but fit the empty one.
        let later = t0 + Duration::from_secs(20);
        assert!(ledger.try_reserve(later, Estimate::Total(1500)).is_ok());
        let refused = ledger
            .try_reserve(later, Estimate::Total(1))
            .expect_err("short window over its share");
        assert_eq!(refused.limit, LimitKind::Tokens);
        assert_eq!(
            refused.retry_at,
            Some(later + Duration::from_millis(10_050))
        );
    }

    #[test]
    fn pacing_spaces_admissions_evenly_with_the_burst_ahead() {
        let t0 = Instant::now();
        let pacing = PacingConfig::default()
            .margin(0.0)
            .burst(Duration::from_millis(250))
            .short_window(None);
        let mut ledger = ledger(Limits::none().rpm(600), pacing);
        // 100 ms per request; a burst of 250 ms lets 3 go at once.
        for _ in 0..3 {
            assert!(ledger.try_reserve(t0, Estimate::Total(1)).is_ok());
        }
        let refused = ledger
            .try_reserve(t0, Estimate::Total(1))
            .expect_err("paced");
        assert_eq!(refused.retry_at, Some(t0 + Duration::from_millis(50)));
        let at = t0 + Duration::from_millis(50);
        assert!(ledger.try_reserve(at - MS, Estimate::Total(1)).is_err());
        assert!(ledger.try_reserve(at, Estimate::Total(1)).is_ok());
        let refused = ledger
            .try_reserve(at, Estimate::Total(1))
            .expect_err("paced");
        assert_eq!(refused.retry_at, Some(t0 + Duration::from_millis(150)));
        // Late by less than the burst: the schedule does not slip.
        let late = t0 + Duration::from_millis(170);
        assert!(ledger.try_reserve(late, Estimate::Total(1)).is_ok());
        let refused = ledger
            .try_reserve(late, Estimate::Total(1))
            .expect_err("paced");
        assert_eq!(refused.retry_at, Some(t0 + Duration::from_millis(250)));
    }

    #[test]
    fn settling_corrects_the_charge_both_ways() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().tpm(10_000), PacingConfig::unpaced());
        let estimate = Estimate::Split {
            prompt: 100,
            completion: 50,
        };
        let admitted = ledger.try_reserve(t0, estimate).expect("room");
        assert_eq!(admitted.tokens, 150);
        let r = reservation(admitted, t0, Some((100, 50)));
        // The provider counted 130 prompt tokens; arrival charge = 130 + 50.
        ledger.settle(t0, &r, &answered(130, 10));
        let snapshot = ledger.snapshot(t0);
        assert_eq!(snapshot.tokens_in_window, 180);
        assert_eq!(snapshot.in_flight, 0);
        assert_eq!(snapshot.reserved_tokens, 0);

        let admitted = ledger.try_reserve(t0, estimate).expect("room");
        let r = reservation(admitted, t0, Some((100, 50)));
        ledger.settle(t0, &r, &answered(80, 50));
        assert_eq!(ledger.snapshot(t0).tokens_in_window, 180 + 130);
    }

    #[test]
    fn actual_accounting_charges_total_usage() {
        let t0 = Instant::now();
        let mut ledger = Ledger::new(
            Limits::none().tpm(10_000),
            PacingConfig::unpaced(),
            Accounting::ActualUsage,
        );
        let admitted = ledger
            .try_reserve(
                t0,
                Estimate::Split {
                    prompt: 100,
                    completion: 500,
                },
            )
            .expect("room");
        let r = reservation(admitted, t0, Some((100, 500)));
        ledger.settle(t0, &r, &answered(100, 20));
        assert_eq!(ledger.snapshot(t0).tokens_in_window, 120);
    }

    #[test]
    fn failures_refund_only_what_never_reached_the_provider() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().rpm(10).tpm(1000), PacingConfig::unpaced());
        let a = ledger.try_reserve(t0, Estimate::Total(100)).expect("room");
        let b = ledger.try_reserve(t0, Estimate::Total(100)).expect("room");
        ledger.settle(
            t0,
            &reservation(a, t0, None),
            &Outcome::Failed {
                reached_provider: false,
            },
        );
        ledger.settle(
            t0,
            &reservation(b, t0, None),
            &Outcome::Failed {
                reached_provider: true,
            },
        );
        let snapshot = ledger.snapshot(t0);
        assert_eq!(snapshot.requests_in_window, 1);
        assert_eq!(snapshot.tokens_in_window, 100);
        assert_eq!(snapshot.in_flight, 0);
    }

    #[test]
    fn prompt_counts_above_the_estimate_raise_the_correction_factor() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().tpm(1_000_000), PacingConfig::unpaced());
        for _ in 0..20 {
            let admitted = ledger
                .try_reserve(
                    t0,
                    Estimate::Split {
                        prompt: 1000,
                        completion: 100,
                    },
                )
                .expect("room");
            let r = reservation(admitted, t0, Some((1000, 100)));
            ledger.settle(t0, &r, &answered(1300, 100));
        }
        let factor = ledger.snapshot(t0).token_correction;
        assert!((factor - 1.3).abs() < 0.001, "factor {factor}");
        let admitted = ledger
            .try_reserve(
                t0,
                Estimate::Split {
                    prompt: 1000,
                    completion: 100,
                },
            )
            .expect("room");
        assert_eq!(admitted.tokens, 1300 + 100);
    }

    #[test]
    fn a_token_429_raises_the_factor() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().tpm(10_000), PacingConfig::unpaced());
        let admitted = ledger.try_reserve(t0, Estimate::Total(100)).expect("room");
        let mut info = RateLimitInfo::default();
        info.remaining_tokens = Some(20);
        ledger.settle(
            t0,
            &reservation(admitted, t0, None),
            &Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(1)),
                rate_limit: Some(info),
            },
        );
        assert!((ledger.snapshot(t0).token_correction - 1.1).abs() < 1e-9);
    }

    #[test]
    fn a_burst_of_token_429s_raises_the_factor_once() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().tpm(10_000), PacingConfig::unpaced());
        let burst: Vec<_> = (0..5)
            .map(|_| ledger.try_reserve(t0, Estimate::Total(100)).expect("room"))
            .collect();
        let limited = Outcome::RateLimited {
            retry_after: None,
            rate_limit: None,
        };
        for admitted in burst {
            ledger.settle(t0, &reservation(admitted, t0, None), &limited);
        }
        assert!((ledger.snapshot(t0).token_correction - 1.1).abs() < 1e-9);
        // A reservation sized after the bump that still gets a 429 bumps again.
        let next = ledger.try_reserve(t0, Estimate::Total(100)).expect("room");
        ledger.settle(t0, &reservation(next, t0, None), &limited);
        assert!((ledger.snapshot(t0).token_correction - 1.21).abs() < 1e-9);
    }

    #[test]
    fn remaining_headers_tighten_until_their_reset_and_never_loosen() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().rpm(100), PacingConfig::unpaced());
        let admitted = ledger.try_reserve(t0, Estimate::Total(1)).expect("room");
        let mut info = RateLimitInfo::default();
        info.limit_requests = Some(100);
        info.remaining_requests = Some(9); // we thought 99
        info.reset_requests = Some(Duration::from_secs(30));
        let settled_at = t0 + Duration::from_secs(1);
        ledger.settle(
            settled_at,
            &reservation(admitted, t0, None),
            &Outcome::Answered {
                usage: None,
                rate_limit: Some(info.clone()),
            },
        );
        assert_eq!(ledger.snapshot(settled_at).headroom_requests, Some(9));
        for _ in 0..9 {
            assert!(ledger.try_reserve(settled_at, Estimate::Total(1)).is_ok());
        }
        let refused = ledger
            .try_reserve(settled_at, Estimate::Total(1))
            .expect_err("the provider said 9 were left");
        let reset = settled_at + Duration::from_secs(30);
        assert_eq!(refused.retry_at, Some(reset));
        assert!(ledger.try_reserve(reset, Estimate::Total(1)).is_ok());

        // A report of more room than we think we have changes nothing.
        let mut ledger = super::Ledger::new(
            Limits::none().rpm(100),
            PacingConfig::unpaced(),
            Accounting::ArrivalCharge,
        );
        let mut ids = Vec::new();
        for _ in 0..50 {
            ids.push(ledger.try_reserve(t0, Estimate::Total(1)).expect("room"));
        }
        info.remaining_requests = Some(100);
        let first = ids.remove(0);
        ledger.settle(
            t0,
            &reservation(first, t0, None),
            &Outcome::Answered {
                usage: None,
                rate_limit: Some(info),
            },
        );
        assert_eq!(ledger.snapshot(t0).headroom_requests, Some(50));
    }

    #[test]
    fn a_later_admission_arriving_first_is_no_usage_beyond_ours() {
        let t0 = Instant::now();
        let rpm = |remaining| {
            let mut info = RateLimitInfo::default();
            info.limit_requests = Some(20);
            info.remaining_requests = Some(remaining);
            info.reset_requests = Some(Duration::from_secs(30));
            Outcome::Answered {
                usage: None,
                rate_limit: Some(info),
            }
        };
        let mut ledger = ledger(Limits::none().rpm(20), PacingConfig::unpaced());
        let first = ledger.try_reserve(t0, Estimate::Total(1)).expect("room");
        let second = ledger.try_reserve(t0, Estimate::Total(1)).expect("room");
        // The second reached the provider first: 18 left when the first arrived, not 19.
        ledger.settle(t0, &reservation(first, t0, None), &rpm(18));
        assert_eq!(ledger.snapshot(t0).headroom_requests, Some(18));
        // Less left than both admissions explain is still usage we did not see.
        ledger.settle(t0, &reservation(second, t0, None), &rpm(15));
        assert_eq!(ledger.snapshot(t0).headroom_requests, Some(15));
    }

    #[test]
    fn charges_leave_the_windows_and_expired_settles_are_harmless() {
        let t0 = Instant::now();
        let mut ledger = ledger(Limits::none().rpm(10).tpm(1000), PacingConfig::default());
        let admitted = ledger.try_reserve(t0, Estimate::Total(100)).expect("room");
        let later = t0 + Duration::from_secs(120);
        ledger.settle(later, &reservation(admitted, t0, None), &answered(500, 500));
        let snapshot = ledger.snapshot(later);
        assert_eq!(snapshot.requests_in_window, 0);
        assert_eq!(snapshot.tokens_in_window, 0);
        assert_eq!(snapshot.in_flight, 0);
        assert_eq!(snapshot.headroom_tokens, Some(1000));
    }
}
