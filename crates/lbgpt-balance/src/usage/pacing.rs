use std::time::Duration;

/// How admissions are spread over time; see the [module docs](super) for why these rules
/// keep every common enforcement mode from answering 429.
///
/// ```
/// use lbgpt_balance::usage::PacingConfig;
/// use std::time::Duration;
///
/// let pacing = PacingConfig::default()
///     .margin(0.02)                                   // pace at 98 % of the limit
///     .burst(Duration::from_millis(100))              // up to 0.1 s of the rate at once
///     .short_window(Some(Duration::from_secs(10)))    // Azure: limit/6 per 10 s
///     .slack(Duration::from_millis(50));              // network jitter allowance
/// assert_eq!(pacing.window_length(), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacingConfig {
    window: Duration,
    short_window: Option<Duration>,
    spread: bool,
    margin: f64,
    burst: Duration,
    slack: Duration,
}

/// Default fraction of the rate pacing holds back.
const DEFAULT_MARGIN: f64 = 0.02;
/// The largest margin accepted.
const MAX_MARGIN: f64 = 0.5;

impl Default for PacingConfig {
    /// 60 s windows, 10 s short windows, pacing at 98 % of the limit with a burst of 100 ms
    /// of the rate, 50 ms of slack for network jitter.
    fn default() -> Self {
        PacingConfig {
            window: Duration::from_secs(60),
            short_window: Some(Duration::from_secs(10)),
            spread: true,
            margin: DEFAULT_MARGIN,
            burst: Duration::from_millis(100),
            slack: Duration::from_millis(50),
        }
    }
}

impl PacingConfig {
    /// No spreading: only the hard per-minute window applies, so a member may take its whole
    /// minute's limit at once. Safe only against providers that enforce a plain sliding 60 s
    /// window; use it in tests that want the raw window arithmetic.
    pub fn unpaced() -> Self {
        PacingConfig {
            short_window: None,
            spread: false,
            ..PacingConfig::default()
        }
    }

    /// The window the limits are per (default 60 s: requests and tokens per minute). Tests
    /// against a simulator with a shorter window set the same here. Zero is taken as 1 ms.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self.short_window = self.short_window.map(|short| short.min(self.window));
        self
    }

    /// A second, shorter sliding window holding at most its share of each limit
    /// (`limit x short / window`, rounded up), so providers enforcing fixed short windows
    /// (Azure: limit/6 per 10 s) never see more than their allowance in any of them. `None`
    /// turns it off. Default 10 s. Longer than [`window`](Self::window) is taken as `window`.
    ///
    /// Rounding up matches Azure, whose RPM quotas are multiples of 6 (6 RPM per 1000 TPM),
    /// and the simulator; rounding down would cost a 100 RPM member 4 % (16 x 6 = 96 per
    /// minute).
    pub fn short_window(mut self, short: Option<Duration>) -> Self {
        self.short_window = short.map(|s| s.clamp(Duration::from_millis(1), self.window));
        self
    }

    /// Whether admissions are spread evenly at the paced rate (default true).
    pub fn spread(mut self, spread: bool) -> Self {
        self.spread = spread;
        self
    }

    /// The fraction of each limit's rate that spreading holds back (default 0.02: admissions
    /// are spaced at 98 % of `limit / window`). Clamped to `0.0..=0.5`; NaN keeps the default.
    pub fn margin(mut self, margin: f64) -> Self {
        self.margin = if margin.is_nan() {
            DEFAULT_MARGIN
        } else {
            margin.clamp(0.0, MAX_MARGIN)
        };
        self
    }

    /// How far admissions may run ahead of the even schedule: a member idle for a while may
    /// take up to this much time's worth of its paced rate at once (default 100 ms). It also
    /// absorbs timer lateness, so waiting requests lose no throughput to it.
    pub fn burst(mut self, burst: Duration) -> Self {
        self.burst = burst;
        self
    }

    /// Extra time each charge stays in the windows beyond their length (default 50 ms): the
    /// provider counts a request when it arrives, a little after it was admitted here, and
    /// variations of that delay up to this much must not let its window see more than the
    /// limit. Each 10 ms costs 0.1 % of throughput where the short window binds.
    pub fn slack(mut self, slack: Duration) -> Self {
        self.slack = slack;
        self
    }

    /// The window length the limits are per.
    pub fn window_length(&self) -> Duration {
        self.window
    }

    /// The short window, if on.
    pub fn short_window_length(&self) -> Option<Duration> {
        self.short_window
    }

    /// Whether spreading is on.
    pub fn is_spread(&self) -> bool {
        self.spread
    }

    /// The margin spreading holds back.
    pub fn margin_fraction(&self) -> f64 {
        self.margin
    }

    /// The burst allowance.
    pub fn burst_length(&self) -> Duration {
        self.burst
    }

    /// The slack added to windows.
    pub fn slack_length(&self) -> Duration {
        self.slack
    }

    /// The short window's share of `limit`, rounded up.
    pub(crate) fn short_quota(&self, limit: u64) -> Option<u64> {
        let short = self.short_window?;
        let quota = (u128::from(limit) * short.as_nanos()).div_ceil(self.window.as_nanos().max(1));
        Some(u64::try_from(quota).unwrap_or(u64::MAX))
    }

    /// Time the even schedule spends per unit of `limit` (requests or tokens).
    pub(crate) fn interval(&self, limit: u64) -> Option<f64> {
        if !self.spread || limit == 0 {
            return None;
        }
        let rate = (1.0 - self.margin) * limit as f64 / self.window.as_secs_f64();
        Some(1.0 / rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_quota_is_the_share_rounded_up() {
        let pacing = PacingConfig::default();
        assert_eq!(pacing.short_quota(600), Some(100));
        assert_eq!(pacing.short_quota(100), Some(17));
        assert_eq!(pacing.short_quota(5), Some(1));
        assert_eq!(PacingConfig::unpaced().short_quota(600), None);
    }

    #[test]
    fn interval_is_the_paced_spacing() {
        let pacing = PacingConfig::default().margin(0.0);
        let interval = pacing.interval(600).expect("spread");
        assert!((interval - 0.1).abs() < 1e-12);
        let paced = PacingConfig::default().interval(600).expect("spread");
        assert!((paced - 0.1 / 0.98).abs() < 1e-12);
        assert_eq!(PacingConfig::unpaced().interval(600), None);
    }

    #[test]
    fn bad_values_are_clamped() {
        let pacing = PacingConfig::default()
            .margin(f64::NAN)
            .window(Duration::from_secs(6))
            .short_window(Some(Duration::from_secs(100)));
        assert_eq!(pacing.margin_fraction(), DEFAULT_MARGIN);
        assert_eq!(pacing.short_window_length(), Some(Duration::from_secs(6)));
        assert_eq!(PacingConfig::default().margin(3.0).margin_fraction(), 0.5);
    }
}
