//! Per-key request and token limits.
//!
//! A key may have a request limit (RPM) and a token limit (TPM). Both are enforced by a
//! [`Meter`], whose kind follows the key's [`LimitMode`]. Only a sliding window exists today;
//! other enforcement modes (a refilling token bucket, Azure's RPM/6 per 10 s windows) become new
//! `LimitMode` variants and new `Meter` variants without touching the request path.
//!
//! Requests are charged at arrival, the way Azure counts: one request, and the approximate
//! prompt tokens plus the completion budget (`max_completion_tokens` or `max_tokens`, times
//! `n`). A refused request is not charged.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// How a key's RPM and TPM limits are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitMode {
    /// Every request and token counts against the limit for `window` after its arrival. A
    /// request is refused when it would take the count over the limit; the 429 then says how
    /// long until enough of the window has expired. With the default window of 60 s the limits
    /// are per minute, as at OpenAI and Azure; a shorter window makes the same limits apply per
    /// that window (handy for fast tests).
    SlidingWindow {
        /// How long a charge counts.
        window: Duration,
    },
}

impl LimitMode {
    /// A sliding window of the given length.
    pub fn sliding_window(window: Duration) -> Self {
        LimitMode::SlidingWindow { window }
    }

    /// The window length of this mode.
    pub fn window(&self) -> Duration {
        match self {
            LimitMode::SlidingWindow { window } => *window,
        }
    }
}

impl Default for LimitMode {
    /// A sliding window of 60 s.
    fn default() -> Self {
        LimitMode::SlidingWindow {
            window: Duration::from_secs(60),
        }
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
    /// The configured limit.
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
}

impl Meter {
    pub(crate) fn new(mode: LimitMode, limit: u64) -> Self {
        match mode {
            LimitMode::SlidingWindow { window } => {
                Meter::Sliding(SlidingWindow::new(limit, window))
            }
        }
    }

    fn fit(&mut self, now: Instant, amount: u64) -> Fit {
        match self {
            Meter::Sliding(w) => w.fit(now, amount),
        }
    }

    fn charge(&mut self, now: Instant, amount: u64) {
        match self {
            Meter::Sliding(w) => w.charge(now, amount),
        }
    }

    fn state(&mut self, now: Instant) -> MeterState {
        match self {
            Meter::Sliding(w) => w.state(now),
        }
    }
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
    pub(crate) fn new(mode: LimitMode, rpm: Option<u64>, tpm: Option<u64>) -> Self {
        KeyLimiter {
            requests: rpm.map(|limit| Meter::new(mode, limit)),
            tokens: tpm.map(|limit| Meter::new(mode, limit)),
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
        KeyLimiter::new(LimitMode::sliding_window(WINDOW), rpm, tpm)
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
}
