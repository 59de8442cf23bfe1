//! [`RetryPolicy`]: how often to try, how long to wait between tries, and when to stop.

use lbgpt_core::Error;
use rand::Rng;
use std::time::Duration;

/// How the retry layer retries: attempts, backoff, the server's retry-after and the deadline.
///
/// Built with [`RetryPolicy::default`] and builder methods:
///
/// ```
/// use lbgpt_balance::retry::RetryPolicy;
/// use std::time::Duration;
///
/// let policy = RetryPolicy::default()
///     .max_attempts(5)
///     .initial_backoff(Duration::from_millis(500))
///     .max_backoff(Duration::from_secs(30))
///     .max_retry_after(Duration::from_secs(120))
///     .deadline(Duration::from_secs(60));
/// assert!(policy.validate().is_ok());
/// assert_eq!(policy.get_max_attempts(), 5);
/// ```
///
/// # Defaults
/// | setting | default |
/// |---|---|
/// | [`max_attempts`](Self::max_attempts) | 10 (the first attempt included) |
/// | [`initial_backoff`](Self::initial_backoff) | 0.5 s |
/// | [`backoff_multiplier`](Self::backoff_multiplier) | 2 |
/// | [`max_backoff`](Self::max_backoff) | 30 s |
/// | [`jitter`](Self::jitter) | 0.5: each backoff is random in \[50 %, 100 %\] of the computed delay |
/// | [`max_retry_after`](Self::max_retry_after) | 120 s |
/// | [`deadline`](Self::deadline) | none |
///
/// # What is retried
/// Exactly the errors whose [`Error::is_retryable`] is true: connection errors, timeouts,
/// truncated (non-JSON) success bodies, HTTP 408, 409, 429 and 5xx (the server's
/// `x-should-retry` header overrides the status), and "no member available" with a known wait.
/// Never other 4xx and never a 429 whose code is `insufficient_quota`.
///
/// # How long to wait
/// When the error carries a server-asked wait ([`Error::retry_after`], which the providers
/// fill from `retry-after-ms`, then `retry-after`), the layer waits exactly that long. A wait
/// longer than [`max_retry_after`](Self::max_retry_after) makes the layer give up at once
/// (returning the error) instead of sleeping for minutes: the caller, or a balancer with
/// other members, can do better. A server-asked wait of zero counts as no wait asked (as in
/// openai-python), so a server cannot make the client spin.
///
/// Without a server-asked wait, retry `n` (1 for the first retry) waits
/// `min(initial_backoff * backoff_multiplier^(n-1), max_backoff)`, scaled by a random factor
/// in `[1 - jitter, 1]` so that many clients failing together do not come back together.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    backoff_multiplier: f64,
    max_backoff: Duration,
    jitter: f64,
    max_retry_after: Duration,
    deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(500),
            backoff_multiplier: 2.0,
            max_backoff: Duration::from_secs(30),
            jitter: 0.5,
            max_retry_after: Duration::from_secs(120),
            deadline: None,
        }
    }
}

impl RetryPolicy {
    /// The default policy (see the table above); the same as [`RetryPolicy::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A policy that never retries: one attempt, errors returned as they are.
    pub fn no_retries() -> Self {
        Self::default().max_attempts(1)
    }

    /// The most attempts per request, the first one included (default 10). `1` disables
    /// retries; `0` is invalid ([`validate`](Self::validate) says so) and behaves as `1`.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The wait before the first retry when the server asked for none (default 0.5 s).
    pub fn initial_backoff(mut self, wait: Duration) -> Self {
        self.initial_backoff = wait;
        self
    }

    /// How much each further backoff grows (default 2; must be finite and at least 1).
    pub fn backoff_multiplier(mut self, factor: f64) -> Self {
        self.backoff_multiplier = factor;
        self
    }

    /// The longest backoff, before jitter (default 30 s).
    pub fn max_backoff(mut self, wait: Duration) -> Self {
        self.max_backoff = wait;
        self
    }

    /// How much of each backoff is random (default 0.5): the wait is uniform in
    /// `[(1 - jitter) * delay, delay]`. `0` makes backoffs exact; must be within `[0, 1]`.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The longest server-asked wait the layer honours (default 120 s). When a server asks
    /// for more, the layer gives up at once and returns the error (see the type docs).
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// An overall deadline per request, covering every attempt and every wait between them.
    ///
    /// When the next wait would end after the deadline, the layer stops at once; an attempt
    /// still running at the deadline is cancelled (its future dropped). Both return
    /// [`Error::DeadlineExceeded`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Removes the overall deadline (the default).
    pub fn no_deadline(mut self) -> Self {
        self.deadline = None;
        self
    }

    /// The configured maximum number of attempts.
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The configured longest server-asked wait.
    pub fn get_max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The configured overall deadline, if any.
    pub fn get_deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Checks the settings; the error names the offending one.
    ///
    /// The layer itself never fails on a bad policy (it clamps), but configuration code
    /// should call this to reject nonsense early.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_attempts == 0 {
            return Err(Error::Config(
                "retry.max_attempts must be at least 1 (1 disables retries)".to_owned(),
            ));
        }
        if !self.backoff_multiplier.is_finite() || self.backoff_multiplier < 1.0 {
            return Err(Error::Config(format!(
                "retry.backoff_multiplier must be a finite number >= 1, got {}",
                self.backoff_multiplier
            )));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::Config(format!(
                "retry.jitter must be within [0, 1], got {}",
                self.jitter
            )));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(Error::Config(format!(
                "retry.initial_backoff ({:?}) must not exceed retry.max_backoff ({:?})",
                self.initial_backoff, self.max_backoff
            )));
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(Error::Config(
                "retry.deadline must be longer than zero".to_owned(),
            ));
        }
        Ok(())
    }

    /// The attempts actually allowed: [`max_attempts`](Self::max_attempts), at least 1.
    pub(crate) fn attempts_allowed(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The backoff before retry number `retry` (1 for the first retry) when the server asked
    /// for no wait, with jitter drawn from `rng`.
    ///
    /// Never longer than [`max_backoff`](Self::max_backoff). Pass a seeded RNG for
    /// reproducible delays.
    pub fn backoff<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let delay = self.backoff_before_jitter(retry);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if jitter == 0.0 || delay.is_zero() {
            return delay;
        }
        let unit: f64 = rng.random(); // uniform in [0, 1)
        let scale = 1.0 - jitter * unit;
        Duration::try_from_secs_f64(delay.as_secs_f64() * scale)
            .unwrap_or(delay)
            .min(delay)
    }

    /// `min(initial_backoff * backoff_multiplier^(retry-1), max_backoff)`, without jitter.
    pub fn backoff_before_jitter(&self, retry: u32) -> Duration {
        let factor = if self.backoff_multiplier.is_finite() {
            self.backoff_multiplier.max(1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * factor.powi(exponent);
        let cap = self.max_backoff;
        if !secs.is_finite() || secs >= cap.as_secs_f64() {
            return cap;
        }
        Duration::try_from_secs_f64(secs).map_or(cap, |d| d.min(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn exact() -> RetryPolicy {
        RetryPolicy::default().jitter(0.0)
    }

    #[test]
    fn defaults_match_the_documentation() {
        let p = RetryPolicy::default();
        assert_eq!(p.get_max_attempts(), 10);
        assert_eq!(p.get_max_retry_after(), Duration::from_secs(120));
        assert_eq!(p.get_deadline(), None);
        assert_eq!(p.backoff_before_jitter(1), Duration::from_millis(500));
        assert!(p.validate().is_ok());
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = exact();
        let mut rng = StdRng::seed_from_u64(1);
        let waits: Vec<u64> = (1..=10)
            .map(|n| p.backoff(n, &mut rng).as_millis() as u64)
            .collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn huge_retry_numbers_stay_at_the_cap() {
        let p = exact().backoff_multiplier(10.0);
        assert_eq!(p.backoff_before_jitter(u32::MAX), Duration::from_secs(30));
        assert_eq!(p.backoff_before_jitter(400), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay_and_varies() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(42);
        for retry in 1..=12 {
            let full = p.backoff_before_jitter(retry);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let wait = p.backoff(retry, &mut rng);
                assert!(wait <= full, "retry {retry}: {wait:?} > {full:?}");
                assert!(
                    wait >= full / 2,
                    "retry {retry}: {wait:?} < half of {full:?}"
                );
                seen.insert(wait);
            }
            assert!(seen.len() > 100, "jitter should spread the waits");
        }
    }

    #[test]
    fn seeded_rng_gives_reproducible_waits() {
        let p = RetryPolicy::default();
        let a: Vec<Duration> = {
            let mut rng = StdRng::seed_from_u64(7);
            (1..=8).map(|n| p.backoff(n, &mut rng)).collect()
        };
        let b: Vec<Duration> = {
            let mut rng = StdRng::seed_from_u64(7);
            (1..=8).map(|n| p.backoff(n, &mut rng)).collect()
        };
        assert_eq!(a, b);
        // Averaged over many draws, jittered backoff still grows until the cap.
        let mut rng = StdRng::seed_from_u64(9);
        let mean = |n| {
            (0..500)
                .map(|_| p.backoff(n, &mut rng).as_secs_f64())
                .sum::<f64>()
                / 500.0
        };
        let means: Vec<f64> = (1..=8).map(mean).collect();
        for pair in means.windows(2).take(6) {
            assert!(pair[1] > pair[0] * 1.6, "{means:?}");
        }
        assert!(means[7] <= 30.0 && means[7] >= 15.0, "{means:?}");
    }

    #[test]
    fn validate_names_the_bad_setting() {
        let cases = [
            (RetryPolicy::default().max_attempts(0), "max_attempts"),
            (RetryPolicy::default().jitter(1.5), "jitter"),
            (RetryPolicy::default().jitter(f64::NAN), "jitter"),
            (
                RetryPolicy::default().backoff_multiplier(0.5),
                "backoff_multiplier",
            ),
            (
                RetryPolicy::default().backoff_multiplier(f64::INFINITY),
                "backoff_multiplier",
            ),
            (
                RetryPolicy::default().initial_backoff(Duration::from_secs(60)),
                "initial_backoff",
            ),
            (RetryPolicy::default().deadline(Duration::ZERO), "deadline"),
        ];
        for (policy, field) in cases {
            match policy.validate() {
                Err(Error::Config(message)) => assert!(message.contains(field), "{message}"),
                other => panic!("{field}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn bad_settings_are_clamped_not_panicking() {
        let p = RetryPolicy::default()
            .max_attempts(0)
            .jitter(f64::NAN)
            .backoff_multiplier(f64::NAN);
        assert_eq!(p.attempts_allowed(), 1);
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(p.backoff(3, &mut rng), Duration::from_millis(500));
    }
}
