//! Per-key request and token limits.
//!
//! A key may have a request limit (RPM) and a token limit (TPM). Both are enforced by a
//! [`Meter`], whose kind follows the key's [`LimitMode`]: a sliding window (the default), a
//! refilling token bucket (as OpenAI enforces) or fixed short windows (as Azure enforces).
//!
//! Requests are charged at arrival, the way Azure counts: one request, and the approximate
//! prompt tokens plus the completion budget (`max_completion_tokens` or `max_tokens`, times
//! `n`). A refused request is not charged.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The period per-minute limits are per.
const MINUTE: Duration = Duration::from_secs(60);

/// Azure's short window: a per-minute limit is enforced as limit/6 per 10 s.
const AZURE_WINDOW: Duration = Duration::from_secs(10);

/// How a key's RPM and TPM limits are enforced.
///
/// Every mode refuses a request that does not fit with a `429` whose `retry-after` and
/// `retry-after-ms` say exactly when it would fit (absent other traffic), and reports
/// `x-ratelimit-limit-*`, `x-ratelimit-remaining-*` and `x-ratelimit-reset-*` consistently:
/// "`remaining` of `limit` left now, back to `limit` after `reset`".
///
/// ```
/// use lbgpt_sim::{KeyConfig, LimitMode};
/// use std::time::Duration;
///
/// // OpenAI-like: a burst of the whole minute's limit, then 10 requests per second.
/// let openai = KeyConfig::new("sk-sim-a").rpm(600).limit_mode(LimitMode::token_bucket());
/// // Azure-like: at most 100 requests in each fixed 10 s window.
/// let azure = KeyConfig::new("sk-sim-b").rpm(600).limit_mode(LimitMode::short_windows());
/// assert_eq!(LimitMode::short_windows().window(), Duration::from_secs(10));
/// assert_eq!(LimitMode::short_windows().allowance(600), 100);
/// assert_eq!(LimitMode::token_bucket().allowance(600), 600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitMode {
    /// Every request and token counts against the limit for `window` after its arrival. A
    /// request is refused when it would take the count over the limit; the 429 then says how
    /// long until enough of the window has expired. With the default window of 60 s the limits
    /// are per minute, as at OpenAI and Azure; a shorter window makes the same limits apply per
    /// that window (handy for fast tests).
    ///
    /// Headers: `remaining` is the limit minus what the window holds; `reset` is the time until
    /// the newest charge expires (the window is wholly free again).
    SlidingWindow {
        /// How long a charge counts.
        window: Duration,
    },
    /// A bucket holding up to the limit, full at start, refilled continuously at
    /// `limit / period` (with the default period of 60 s: a 600 RPM key gets a burst of 600,
    /// then 10 requests per second). A request takes one from the request bucket and its
    /// tokens from the token bucket; it is refused while a bucket holds less than that, and the
    /// 429 says how long the refill takes. This is how OpenAI describes its enforcement.
    ///
    /// Headers: `limit` is the bucket's capacity, `remaining` what it holds now (rounded
    /// down), `reset` the time until it is full again.
    TokenBucket {
        /// The time the bucket takes to refill from empty to full.
        period: Duration,
    },
    /// Fixed, back-to-back windows of length `window`, counted from the simulator's start,
    /// each allowing `limit x window / period` (rounded up) requests and tokens, whatever the
    /// previous window used. With the defaults (10 s windows of a 60 s period) a 600 RPM key
    /// accepts 100 requests per 10 s: this is how Azure OpenAI enforces per-minute quotas. A
    /// request is refused when it would take the window's count over its allowance; the 429
    /// says how long until the next window opens. A request with more tokens than one window's
    /// allowance never fits (429 without `retry-after`).
    ///
    /// Headers describe the current window: `limit` is the window's allowance, `remaining`
    /// what is left of it, `reset` the time until the next window opens (zero when the window
    /// is unused).
    ShortWindows {
        /// The length of each window.
        window: Duration,
        /// The period the configured limits are per; each window allows its share of it.
        period: Duration,
    },
}

impl LimitMode {
    /// A sliding window of the given length.
    pub fn sliding_window(window: Duration) -> Self {
        LimitMode::SlidingWindow { window }
    }

    /// A token bucket refilled over 60 s (OpenAI-like): see [`LimitMode::TokenBucket`].
    pub fn token_bucket() -> Self {
        LimitMode::token_bucket_over(MINUTE)
    }

    /// A token bucket that refills from empty to full in `period`.
    pub fn token_bucket_over(period: Duration) -> Self {
        LimitMode::TokenBucket { period }
    }

    /// Fixed 10 s windows each allowing a sixth of the per-minute limits (Azure-like): see
    /// [`LimitMode::ShortWindows`].
    pub fn short_windows() -> Self {
        LimitMode::short_windows_of(AZURE_WINDOW, MINUTE)
    }

    /// Fixed windows of length `window`, each allowing `limit x window / period` (rounded up).
    pub fn short_windows_of(window: Duration, period: Duration) -> Self {
        LimitMode::ShortWindows { window, period }
    }

    /// The length that characterises this mode: the sliding window, the bucket's refill
    /// period, or the short window.
    pub fn window(&self) -> Duration {
        match self {
            LimitMode::SlidingWindow { window } | LimitMode::ShortWindows { window, .. } => *window,
            LimitMode::TokenBucket { period } => *period,
        }
    }

    /// The period the configured limits are per: the sliding window, the bucket's refill
    /// period, or the short windows' period.
    pub fn period(&self) -> Duration {
        match self {
            LimitMode::SlidingWindow { window } => *window,
            LimitMode::TokenBucket { period } | LimitMode::ShortWindows { period, .. } => *period,
        }
    }

    /// The most a configured `limit` lets through at once: the limit itself, except for
    /// short windows, where it is one window's allowance.
    pub fn allowance(&self, limit: u64) -> u64 {
        match self {
            LimitMode::SlidingWindow { .. } | LimitMode::TokenBucket { .. } => limit,
            LimitMode::ShortWindows { window, period } => {
                let period = period.as_nanos().max(1);
                let share = (u128::from(limit) * window.as_nanos()).div_ceil(period);
                u64::try_from(share).unwrap_or(u64::MAX).max(1)
            }
        }
    }

    /// Why this mode cannot be used, if it cannot: `(setting, message)`.
    pub(crate) fn problem(&self) -> Option<(&'static str, &'static str)> {
        match self {
            LimitMode::SlidingWindow { window } if window.is_zero() => {
                Some(("window", "must be longer than zero"))
            }
            LimitMode::TokenBucket { period } if period.is_zero() => {
                Some(("period", "must be longer than zero"))
            }
            LimitMode::ShortWindows { window, .. } if window.is_zero() => {
                Some(("window", "must be longer than zero"))
            }
            LimitMode::ShortWindows { period, .. } if period.is_zero() => {
                Some(("period", "must be longer than zero"))
            }
            _ => None,
        }
    }
}

impl Default for LimitMode {
    /// A sliding window of 60 s.
    fn default() -> Self {
        LimitMode::SlidingWindow { window: MINUTE }
    }
}

/// Whether a charge fits a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// It fits now.
    Now,
    /// It fits once this much time has passed (without other charges meanwhile).
    After(Duration),
    /// It is larger than the limit and never fits.
    Never,
}

/// One limit's state as reported in `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MeterState {
    /// The limit in force (for short windows, the current window's allowance).
    pub(crate) limit: u64,
    /// What is left now.
    pub(crate) remaining: u64,
    /// Time until the meter is back to its full limit.
    pub(crate) reset: Duration,
}

/// One enforced limit.
#[derive(Debug)]
pub(crate) enum Meter {
    /// See [`LimitMode::SlidingWindow`].
    Sliding(SlidingWindow),
    /// See [`LimitMode::TokenBucket`].
    Bucket(TokenBucket),
    /// See [`LimitMode::ShortWindows`].
    Short(ShortWindows),
}

impl Meter {
    /// A meter of `limit` in `mode`, started at `now`.
    pub(crate) fn new(mode: LimitMode, limit: u64, now: Instant) -> Self {
        match mode {
            LimitMode::SlidingWindow { window } => {
                Meter::Sliding(SlidingWindow::new(limit, window))
            }
            LimitMode::TokenBucket { period } => {
                Meter::Bucket(TokenBucket::new(limit, period, now))
            }
            LimitMode::ShortWindows { window, .. } => {
                Meter::Short(ShortWindows::new(mode.allowance(limit), window, now))
            }
        }
    }

    fn fit(&mut self, now: Instant, amount: u64) -> Fit {
        match self {
            Meter::Sliding(m) => m.fit(now, amount),
            Meter::Bucket(m) => m.fit(now, amount),
            Meter::Short(m) => m.fit(now, amount),
        }
    }

    fn charge(&mut self, now: Instant, amount: u64) {
        match self {
            Meter::Sliding(m) => m.charge(now, amount),
            Meter::Bucket(m) => m.charge(now, amount),
            Meter::Short(m) => m.charge(now, amount),
        }
    }

    fn state(&mut self, now: Instant) -> MeterState {
        match self {
            Meter::Sliding(m) => m.state(now),
            Meter::Bucket(m) => m.state(now),
            Meter::Short(m) => m.state(now),
        }
    }
}

/// Nanoseconds as a duration, saturating (at about 584 years).
fn nanos(value: u128) -> Duration {
    Duration::from_nanos(u64::try_from(value).unwrap_or(u64::MAX))
}

/// A sliding window: charges are remembered with their arrival time and forgotten `window`
/// later.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    limit: u64,
    window: Duration,
    /// Charges in arrival order; charges at the same instant are merged.
    charges: VecDeque<(Instant, u64)>,
    /// Sum of `charges`.
    used: u64,
}

impl SlidingWindow {
    pub(crate) fn new(limit: u64, window: Duration) -> Self {
        SlidingWindow {
            limit,
            window,
            charges: VecDeque::new(),
            used: 0,
        }
    }

    /// Forgets charges whose window has passed (a charge made at `t` stops counting at
    /// `t + window` exactly).
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, amount)) = self.charges.front() {
            if at + self.window > now {
                break;
            }
            self.used -= amount;
            self.charges.pop_front();
        }
    }

    pub(crate) fn fit(&mut self, now: Instant, amount: u64) -> Fit {
        self.expire(now);
        if amount > self.limit {
            return Fit::Never;
        }
        if self.used + amount <= self.limit {
            return Fit::Now;
        }
        // The oldest charges expire first; find the one whose expiry frees enough.
        let needed = self.used + amount - self.limit;
        let mut freed = 0;
        for &(at, charged) in &self.charges {
            freed += charged;
            if freed >= needed {
                return Fit::After((at + self.window).saturating_duration_since(now));
            }
        }
        // Unreachable while `amount <= limit`, but a full window is always a safe answer.
        Fit::After(self.window)
    }

    pub(crate) fn charge(&mut self, now: Instant, amount: u64) {
        if amount == 0 {
            return;
        }
        match self.charges.back_mut() {
            Some((at, charged)) if *at == now => *charged += amount,
            _ => self.charges.push_back((now, amount)),
        }
        self.used += amount;
    }

    pub(crate) fn state(&mut self, now: Instant) -> MeterState {
        self.expire(now);
        let reset = self.charges.back().map_or(Duration::ZERO, |&(at, _)| {
            (at + self.window).saturating_duration_since(now)
        });
        MeterState {
            limit: self.limit,
            remaining: self.limit.saturating_sub(self.used),
            reset,
        }
    }
}

/// A token bucket of capacity `limit`, refilled at `limit / period`.
///
/// The level is kept exactly, in units of 1/`period_ns` of a token (a token refills in
/// `period_ns / limit` nanoseconds, so one nanosecond of refill adds `limit` units): no
/// rounding drift however many small refills happen.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    limit: u64,
    /// The refill period in nanoseconds (at least 1).
    period_ns: u128,
    /// The level in units of 1/`period_ns` token.
    level: u128,
    /// When `level` was last brought up to date.
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(limit: u64, period: Duration, now: Instant) -> Self {
        let period_ns = period.as_nanos().max(1);
        TokenBucket {
            limit,
            period_ns,
            level: u128::from(limit) * period_ns,
            updated: now,
        }
    }

    fn capacity(&self) -> u128 {
        u128::from(self.limit) * self.period_ns
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_nanos();
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(u128::from(self.limit)))
            .min(self.capacity());
        self.updated = self.updated.max(now);
    }

    /// The time the refill of `missing` units takes.
    fn refill_time(&self, missing: u128) -> Duration {
        nanos(missing.div_ceil(u128::from(self.limit.max(1))))
    }

    pub(crate) fn fit(&mut self, now: Instant, amount: u64) -> Fit {
        self.refill(now);
        if amount > self.limit {
            return Fit::Never;
        }
        let needed = u128::from(amount) * self.period_ns;
        if needed <= self.level {
            Fit::Now
        } else {
            Fit::After(self.refill_time(needed - self.level))
        }
    }

    pub(crate) fn charge(&mut self, now: Instant, amount: u64) {
        self.refill(now);
        self.level = self
            .level
            .saturating_sub(u128::from(amount) * self.period_ns);
    }

    pub(crate) fn state(&mut self, now: Instant) -> MeterState {
        self.refill(now);
        MeterState {
            limit: self.limit,
            remaining: u64::try_from(self.level / self.period_ns).unwrap_or(u64::MAX),
            reset: self.refill_time(self.capacity() - self.level),
        }
    }
}

/// Fixed back-to-back windows counted from `epoch`, each allowing `allowance`.
#[derive(Debug)]
pub(crate) struct ShortWindows {
    allowance: u64,
    /// The window length in nanoseconds (at least 1).
    window_ns: u128,
    epoch: Instant,
    /// The index of the window `used` belongs to.
    index: u128,
    /// What the window `index` has used.
    used: u64,
}

impl ShortWindows {
    pub(crate) fn new(allowance: u64, window: Duration, epoch: Instant) -> Self {
        ShortWindows {
            allowance,
            window_ns: window.as_nanos().max(1),
            epoch,
            index: 0,
            used: 0,
        }
    }

    /// Moves to the window holding `now`; returns the time until it ends.
    fn roll(&mut self, now: Instant) -> Duration {
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        // A `now` read just before another request rolled the window counts in the newer one.
        let index = (since / self.window_ns).max(self.index);
        if index != self.index {
            self.index = index;
            self.used = 0;
        }
        nanos((index + 1) * self.window_ns - since)
    }

    pub(crate) fn fit(&mut self, now: Instant, amount: u64) -> Fit {
        let until_next = self.roll(now);
        if amount > self.allowance {
            Fit::Never
        } else if self.used + amount <= self.allowance {
            Fit::Now
        } else {
            Fit::After(until_next)
        }
    }

    pub(crate) fn charge(&mut self, now: Instant, amount: u64) {
        self.roll(now);
        self.used = self.used.saturating_add(amount);
    }

    pub(crate) fn state(&mut self, now: Instant) -> MeterState {
        let until_next = self.roll(now);
        MeterState {
            limit: self.allowance,
            remaining: self.allowance.saturating_sub(self.used),
            reset: if self.used == 0 {
                Duration::ZERO
            } else {
                until_next
            },
        }
    }
}

/// The state of both limits of a key, for headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LimitSnapshot {
    pub(crate) requests: Option<MeterState>,
    pub(crate) tokens: Option<MeterState>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitKind {
    Requests,
    Tokens,
}

/// The limiter's verdict on one arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Charged; the snapshot is taken after the charge.
    Admitted(LimitSnapshot),
    /// Not charged.
    Refused {
        /// The limit that refused (the one with the longer wait when both did).
        limit: LimitKind,
        /// The time until the request would fit; `None` when it never can (more tokens than
        /// the TPM limit).
        retry_after: Option<Duration>,
        /// The state of both limits.
        snapshot: LimitSnapshot,
    },
}

/// A key's request and token meters.
#[derive(Debug, Default)]
pub(crate) struct KeyLimiter {
    requests: Option<Meter>,
    tokens: Option<Meter>,
}

impl KeyLimiter {
    /// The meters of a key's limits in `mode`, started at `now`.
    pub(crate) fn new(mode: LimitMode, rpm: Option<u64>, tpm: Option<u64>, now: Instant) -> Self {
        KeyLimiter {
            requests: rpm.map(|limit| Meter::new(mode, limit, now)),
            tokens: tpm.map(|limit| Meter::new(mode, limit, now)),
        }
    }

    /// Whether the key has any limit.
    pub(crate) fn is_limited(&self) -> bool {
        self.requests.is_some() || self.tokens.is_some()
    }

    /// Admits and charges one request of `tokens` tokens, or refuses it without charging.
    pub(crate) fn admit(&mut self, now: Instant, tokens: u64) -> Admission {
        let request_fit = self.requests.as_mut().map_or(Fit::Now, |m| m.fit(now, 1));
        let token_fit = self
            .tokens
            .as_mut()
            .map_or(Fit::Now, |m| m.fit(now, tokens));
        if request_fit == Fit::Now && token_fit == Fit::Now {
            if let Some(meter) = self.requests.as_mut() {
                meter.charge(now, 1);
            }
            if let Some(meter) = self.tokens.as_mut() {
                meter.charge(now, tokens);
            }
            return Admission::Admitted(self.snapshot(now));
        }
        let (limit, retry_after) = match (request_fit, token_fit) {
            (_, Fit::Never) => (LimitKind::Tokens, None),
            (Fit::Never, _) => (LimitKind::Requests, None),
            (Fit::After(r), Fit::After(t)) if t >= r => (LimitKind::Tokens, Some(t)),
            (Fit::After(r), _) => (LimitKind::Requests, Some(r)),
            (Fit::Now, Fit::After(t)) => (LimitKind::Tokens, Some(t)),
            (Fit::Now, Fit::Now) => (LimitKind::Requests, Some(Duration::ZERO)),
        };
        Admission::Refused {
            limit,
            retry_after,
            snapshot: self.snapshot(now),
        }
    }

    /// The state of both limits now.
    pub(crate) fn snapshot(&mut self, now: Instant) -> LimitSnapshot {
        LimitSnapshot {
            requests: self.requests.as_mut().map(|m| m.state(now)),
            tokens: self.tokens.as_mut().map(|m| m.state(now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    fn limiter(rpm: Option<u64>, tpm: Option<u64>) -> KeyLimiter {
        KeyLimiter::new(LimitMode::sliding_window(WINDOW), rpm, tpm, Instant::now())
    }

    #[test]
    fn requests_over_the_limit_wait_for_the_oldest_to_expire() {
        let start = Instant::now();
        let mut l = limiter(Some(2), None);
        assert!(matches!(l.admit(start, 0), Admission::Admitted(_)));
        let later = start + Duration::from_secs(10);
        assert!(matches!(l.admit(later, 0), Admission::Admitted(_)));
        let now = start + Duration::from_secs(15);
        match l.admit(now, 0) {
            Admission::Refused {
                limit, retry_after, ..
            } => {
                assert_eq!(limit, LimitKind::Requests);
                assert_eq!(retry_after, Some(Duration::from_secs(45)));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Exactly at expiry the oldest charge no longer counts.
        assert!(matches!(l.admit(start + WINDOW, 0), Admission::Admitted(_)));
    }

    #[test]
    fn tokens_wait_until_enough_has_expired_and_refusals_are_not_charged() {
        let start = Instant::now();
        let mut l = limiter(None, Some(100));
        assert!(matches!(l.admit(start, 40), Admission::Admitted(_)));
        assert!(matches!(
            l.admit(start + Duration::from_secs(20), 40),
            Admission::Admitted(_)
        ));
        // 80 used; 50 more needs 30 freed: the first charge (40) must expire, at 60 s.
        let now = start + Duration::from_secs(30);
        for _ in 0..3 {
            match l.admit(now, 50) {
                Admission::Refused {
                    limit,
                    retry_after,
                    snapshot,
                } => {
                    assert_eq!(limit, LimitKind::Tokens);
                    assert_eq!(retry_after, Some(Duration::from_secs(30)));
                    let tokens = snapshot.tokens.expect("token state");
                    assert_eq!(tokens.remaining, 20);
                    assert_eq!(tokens.reset, Duration::from_secs(50));
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        assert!(matches!(l.admit(now, 20), Admission::Admitted(_)));
    }

    #[test]
    fn a_request_larger_than_the_limit_never_fits() {
        let mut l = limiter(Some(10), Some(100));
        match l.admit(Instant::now(), 101) {
            Admission::Refused {
                limit, retry_after, ..
            } => {
                assert_eq!(limit, LimitKind::Tokens);
                assert_eq!(retry_after, None);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_longer_wait_of_both_limits_is_reported() {
        let start = Instant::now();
        let mut l = limiter(Some(1), Some(100));
        assert!(matches!(l.admit(start, 100), Admission::Admitted(_)));
        match l.admit(start + Duration::from_secs(1), 1) {
            Admission::Refused { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(59)));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn snapshot_reports_remaining_and_time_to_full() {
        let start = Instant::now();
        let mut l = limiter(Some(5), Some(1000));
        let Admission::Admitted(snapshot) = l.admit(start, 300) else {
            panic!("first request must pass");
        };
        let requests = snapshot.requests.expect("request state");
        assert_eq!((requests.limit, requests.remaining), (5, 4));
        assert_eq!(requests.reset, WINDOW);
        let tokens = snapshot.tokens.expect("token state");
        assert_eq!((tokens.limit, tokens.remaining), (1000, 700));
        let later = l.snapshot(start + WINDOW);
        assert_eq!(later.requests.map(|r| r.remaining), Some(5));
        assert_eq!(later.tokens.map(|t| t.reset), Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn paused_tokio_time_moves_the_window() {
        let mut l = limiter(Some(1), None);
        assert!(matches!(l.admit(Instant::now(), 0), Admission::Admitted(_)));
        let Admission::Refused {
            retry_after: Some(wait),
            ..
        } = l.admit(Instant::now(), 0)
        else {
            panic!("second request must wait");
        };
        tokio::time::sleep(wait).await;
        assert!(matches!(l.admit(Instant::now(), 0), Admission::Admitted(_)));
    }

    fn refused_after(admission: Admission) -> Option<Duration> {
        match admission {
            Admission::Refused { retry_after, .. } => retry_after,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn token_bucket_bursts_the_limit_then_refills_at_limit_per_period() {
        let start = Instant::now();
        let mut l = KeyLimiter::new(LimitMode::token_bucket(), Some(600), None, start);
        for _ in 0..600 {
            assert!(matches!(l.admit(start, 0), Admission::Admitted(_)));
        }
        // Empty: one request refills in 60 s / 600 = 100 ms.
        assert_eq!(
            refused_after(l.admit(start, 0)),
            Some(Duration::from_millis(100))
        );
        let early = start + Duration::from_millis(99);
        assert_eq!(
            refused_after(l.admit(early, 0)),
            Some(Duration::from_millis(1))
        );
        let on_time = start + Duration::from_millis(100);
        let Admission::Admitted(snapshot) = l.admit(on_time, 0) else {
            panic!("the refill is exact");
        };
        let requests = snapshot.requests.expect("request state");
        assert_eq!((requests.limit, requests.remaining), (600, 0));
        assert_eq!(requests.reset, Duration::from_secs(60));
        // Ten seconds later, 100 more have refilled.
        let later = on_time + Duration::from_secs(10);
        for _ in 0..100 {
            assert!(matches!(l.admit(later, 0), Admission::Admitted(_)));
        }
        assert!(matches!(l.admit(later, 0), Admission::Refused { .. }));
        // It never holds more than its capacity.
        let full = l.snapshot(later + Duration::from_secs(3600));
        assert_eq!(
            full.requests.map(|r| (r.remaining, r.reset)),
            Some((600, Duration::ZERO))
        );
    }

    #[test]
    fn token_bucket_tokens_wait_for_their_refill_and_oversize_never_fits() {
        let start = Instant::now();
        let mut l = KeyLimiter::new(LimitMode::token_bucket(), None, Some(6_000), start);
        assert!(matches!(l.admit(start, 5_000), Admission::Admitted(_)));
        // 1000 left; 1500 needs 500 more at 100 per second: 5 s.
        assert_eq!(
            refused_after(l.admit(start, 1_500)),
            Some(Duration::from_secs(5))
        );
        assert!(matches!(
            l.admit(start + Duration::from_secs(5), 1_500),
            Admission::Admitted(_)
        ));
        assert_eq!(refused_after(l.admit(start, 6_001)), None);
    }

    #[test]
    fn short_windows_allow_a_share_per_fixed_window() {
        let start = Instant::now();
        let mut l = KeyLimiter::new(LimitMode::short_windows(), Some(600), Some(60_000), start);
        let third = start + Duration::from_secs(3);
        for _ in 0..100 {
            assert!(matches!(l.admit(third, 10), Admission::Admitted(_)));
        }
        // The window opened at start; the next opens 7 s after `third`.
        assert_eq!(
            refused_after(l.admit(third, 10)),
            Some(Duration::from_secs(7))
        );
        let snapshot = l.snapshot(third);
        let requests = snapshot.requests.expect("request state");
        assert_eq!(
            (requests.limit, requests.remaining, requests.reset),
            (100, 0, Duration::from_secs(7))
        );
        let tokens = snapshot.tokens.expect("token state");
        assert_eq!((tokens.limit, tokens.remaining), (10_000, 9_000));
        // The next window starts afresh, whatever the previous one used.
        let next = start + Duration::from_secs(10);
        assert_eq!(
            l.snapshot(next).requests.map(|r| (r.remaining, r.reset)),
            Some((100, Duration::ZERO))
        );
        assert!(matches!(l.admit(next, 10_000), Admission::Admitted(_)));
        assert_eq!(
            refused_after(l.admit(next, 1)),
            Some(Duration::from_secs(10))
        );
        // More tokens than one window allows never fit.
        assert_eq!(refused_after(l.admit(next, 10_001)), None);
    }

    #[test]
    fn short_window_allowances_round_up() {
        assert_eq!(LimitMode::short_windows().allowance(600), 100);
        assert_eq!(LimitMode::short_windows().allowance(50), 9);
        assert_eq!(LimitMode::short_windows().allowance(1), 1);
        assert_eq!(
            LimitMode::short_windows_of(Duration::from_secs(1), Duration::from_secs(60))
                .allowance(600),
            10
        );
    }

    #[test]
    fn a_stale_now_does_not_reopen_a_short_window() {
        let start = Instant::now();
        let mut l = KeyLimiter::new(LimitMode::short_windows(), Some(6), None, start);
        let next = start + Duration::from_secs(10);
        assert!(matches!(l.admit(next, 0), Admission::Admitted(_)));
        // A request whose clock read came just before the roll counts in the new window.
        let stale = next - Duration::from_millis(1);
        assert!(matches!(l.admit(stale, 0), Admission::Refused { .. }));
    }

    #[test]
    fn zero_lengths_are_problems() {
        assert!(LimitMode::token_bucket_over(Duration::ZERO)
            .problem()
            .is_some());
        assert!(
            LimitMode::short_windows_of(Duration::ZERO, Duration::from_secs(60))
                .problem()
                .is_some()
        );
        assert!(
            LimitMode::short_windows_of(Duration::from_secs(10), Duration::ZERO)
                .problem()
                .is_some()
        );
        assert!(LimitMode::sliding_window(Duration::ZERO)
            .problem()
            .is_some());
        assert!(LimitMode::default().problem().is_none());
    }
}
