//! A member's health: dead, cooling down after a 429/503, and its circuit breaker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// When a member's circuit breaker opens and for how long.
///
/// After `failures` consecutive failures that point at the member itself (5xx, timeouts,
/// connection errors, undecodable bodies) the breaker opens: the member gets no requests for
/// `open_for`. Then it is half-open: exactly one request (the probe) is let through; success
/// closes the breaker, another failure opens it again for `open_for`. Answers that show the
/// member is up (a success, a 429, a 400) reset the count. `failures: 0` disables the breaker.
///
/// ```
/// use lbgpt_balance::BreakerConfig;
/// use std::time::Duration;
///
/// let breaker = BreakerConfig { failures: 3, open_for: Duration::from_secs(10) };
/// assert_eq!(BreakerConfig::default(), BreakerConfig::new(5, Duration::from_secs(30)));
/// assert!(BreakerConfig::disabled().is_disabled());
/// assert!(!breaker.is_disabled());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (0: never).
    pub failures: u32,
    /// How long an open breaker keeps the member out before the half-open probe.
    pub open_for: Duration,
}

impl BreakerConfig {
    /// Opens after `failures` consecutive failures, for `open_for`.
    pub fn new(failures: u32, open_for: Duration) -> Self {
        BreakerConfig { failures, open_for }
    }

    /// A breaker that never opens.
    pub fn disabled() -> Self {
        BreakerConfig {
            failures: 0,
            open_for: Duration::ZERO,
        }
    }

    /// True when the breaker never opens.
    pub fn is_disabled(&self) -> bool {
        self.failures == 0
    }
}

impl Default for BreakerConfig {
    /// 5 consecutive failures open the breaker for 30 s.
    fn default() -> Self {
        BreakerConfig::new(5, Duration::from_secs(30))
    }
}

/// A member's state as [`MemberStats`](super::MemberStats) reports it.
///
/// When several apply, the most severe is reported: dead, then disabled, then breaker open,
/// then cooling down, then half-open.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberState {
    /// Takes requests.
    Active,
    /// Switched off with [`BalancerHandle::disable`](super::BalancerHandle::disable).
    Disabled,
    /// Answered 429 or 503 with a wait; takes no requests until `until`.
    CoolingDown {
        /// When the member takes requests again.
        until: Instant,
    },
    /// Its circuit breaker is open; takes no requests until `until`, then one probe.
    BreakerOpen {
        /// When the half-open probe may go.
        until: Instant,
    },
    /// The breaker's open time is over: the next request is the probe that decides.
    HalfOpen,
    /// Answered 401, 403 or `insufficient_quota`: retired until re-enabled.
    Dead {
        /// What the member answered.
        reason: String,
    },
}

impl MemberState {
    /// True when the member can be picked now (active or half-open).
    pub fn is_available(&self) -> bool {
        matches!(self, MemberState::Active | MemberState::HalfOpen)
    }

    /// A short, stable name: `active`, `disabled`, `cooling_down`, `breaker_open`,
    /// `half_open`, `dead`.
    pub fn name(&self) -> &'static str {
        match self {
            MemberState::Active => "active",
            MemberState::Disabled => "disabled",
            MemberState::CoolingDown { .. } => "cooling_down",
            MemberState::BreakerOpen { .. } => "breaker_open",
            MemberState::HalfOpen => "half_open",
            MemberState::Dead { .. } => "dead",
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        match self {
            MemberState::CoolingDown { until } => write!(
                f,
                "cooling down for {}",
                DisplayWait(until.saturating_duration_since(now))
            ),
            MemberState::BreakerOpen { until } => write!(
                f,
                "breaker open for {}",
                DisplayWait(until.saturating_duration_since(now))
            ),
            MemberState::HalfOpen => f.write_str("half-open"),
            MemberState::Dead { reason } => write!(f, "dead ({reason})"),
            MemberState::Active | MemberState::Disabled => f.write_str(self.name()),
        }
    }
}

/// A duration printed for people: `1.25s`, `300ms`.
pub(crate) struct DisplayWait(pub(crate) Duration);

impl fmt::Display for DisplayWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis < 1000 {
            write!(f, "{millis}ms")
        } else {
            write!(f, "{:.2}s", self.0.as_secs_f64())
        }
    }
}

/// How long after a half-open member's probe started other requests are told to look again.
const PROBE_RESULT_HINT: Duration = Duration::from_millis(500);

/// Why a member cannot be picked right now.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    Disabled,
    Dead(Arc<str>),
    Cooling(Instant),
    BreakerOpen(Instant),
    /// Half-open with its probe already running; the instant is a hint of when to look
    /// again (the probe's result is not known in advance).
    Probing(Instant),
}

impl Block {
    /// When the member may take requests again without anyone's intervention.
    pub(crate) fn returns_at(&self) -> Option<Instant> {
        match self {
            Block::Cooling(until) | Block::BreakerOpen(until) | Block::Probing(until) => {
                Some(*until)
            }
            Block::Disabled | Block::Dead(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Breaker {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The mutable health of one member; kept under a short lock, never across an await.
#[derive(Debug)]
pub(crate) struct Health {
    dead: Option<Arc<str>>,
    cooling_until: Option<Instant>,
    breaker: Breaker,
}

/// What happened to a breaker when a failure was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerChange {
    Unchanged,
    Opened { until: Instant },
}

impl Health {
    pub(crate) fn new() -> Self {
        Health {
            dead: None,
            cooling_until: None,
            breaker: Breaker::Closed { failures: 0 },
        }
    }

    /// Whether the member can be picked at `now` (moving an expired open breaker to
    /// half-open), and if not, why.
    pub(crate) fn check(&mut self, now: Instant) -> Result<(), Block> {
        if let Some(reason) = &self.dead {
            return Err(Block::Dead(Arc::clone(reason)));
        }
        if let Breaker::Open { until } = self.breaker {
            if until > now {
                return Err(Block::BreakerOpen(until));
            }
            self.breaker = Breaker::HalfOpen { probing: false };
        }
        if let Some(until) = self.cooling_until {
            if until > now {
                return Err(Block::Cooling(until));
            }
            self.cooling_until = None;
        }
        if let Breaker::HalfOpen { probing: true } = self.breaker {
            return Err(Block::Probing(now + PROBE_RESULT_HINT));
        }
        Ok(())
    }

    /// Claims the right to send a request at `now`: always granted when the breaker is
    /// closed; when half-open, granted to one caller (the probe). `Ok(true)` means the caller
    /// holds the probe and must settle it.
    pub(crate) fn begin(&mut self, now: Instant) -> Result<bool, Block> {
        self.check(now)?;
        match &mut self.breaker {
            Breaker::HalfOpen { probing } => {
                *probing = true;
                Ok(true)
            }
            Breaker::Closed { .. } | Breaker::Open { .. } => Ok(false),
        }
    }

    /// Gives back an unused probe (the request went elsewhere or was cancelled).
    pub(crate) fn release_probe(&mut self) {
        if let Breaker::HalfOpen { probing } = &mut self.breaker {
            *probing = false;
        }
    }

    /// The member answered in a way that shows it is up: the breaker closes.
    pub(crate) fn record_alive(&mut self) {
        self.breaker = Breaker::Closed { failures: 0 };
    }

    /// A failure that counts against the member.
    pub(crate) fn record_failure(&mut self, now: Instant, config: &BreakerConfig) -> BreakerChange {
        if config.is_disabled() {
            return BreakerChange::Unchanged;
        }
        let failures = match self.breaker {
            Breaker::Closed { failures } => failures.saturating_add(1),
            // A failed probe (or a late failure of a request sent before the breaker
            // opened) opens it (again) at once.
            Breaker::HalfOpen { .. } => config.failures,
            Breaker::Open { .. } => return BreakerChange::Unchanged,
        };
        if failures >= config.failures {
            let until = now.checked_add(config.open_for).unwrap_or(now);
            self.breaker = Breaker::Open { until };
            BreakerChange::Opened { until }
        } else {
            self.breaker = Breaker::Closed { failures };
            BreakerChange::Unchanged
        }
    }

    /// Keeps the member out until `until` (a later cooldown never shortens an earlier one).
    pub(crate) fn cool_down(&mut self, until: Instant) {
        self.cooling_until = Some(self.cooling_until.map_or(until, |old| old.max(until)));
    }

    /// Retires the member.
    pub(crate) fn kill(&mut self, reason: Arc<str>) {
        if self.dead.is_none() {
            self.dead = Some(reason);
        }
    }

    /// Clears everything: dead, cooldown, breaker. Used when the member is re-enabled.
    pub(crate) fn reset(&mut self) {
        *self = Health::new();
    }

    /// Consecutive failures counted by a closed breaker.
    pub(crate) fn consecutive_failures(&self) -> u32 {
        match self.breaker {
            Breaker::Closed { failures } => failures,
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => 0,
        }
    }

    /// The state to report at `now`, `enabled` being the member's switch.
    pub(crate) fn state(&self, now: Instant, enabled: bool) -> MemberState {
        if let Some(reason) = &self.dead {
            return MemberState::Dead {
                reason: reason.to_string(),
            };
        }
        if !enabled {
            return MemberState::Disabled;
        }
        if let Breaker::Open { until } = self.breaker {
            if until > now {
                return MemberState::BreakerOpen { until };
            }
        }
        if let Some(until) = self.cooling_until {
            if until > now {
                return MemberState::CoolingDown { until };
            }
        }
        match self.breaker {
            Breaker::HalfOpen { .. } | Breaker::Open { .. } => MemberState::HalfOpen,
            Breaker::Closed { .. } => MemberState::Active,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig::new(2, Duration::from_secs(10))
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_then_lets_one_probe_through() {
        let mut health = Health::new();
        let now = Instant::now();
        assert_eq!(
            health.record_failure(now, &config()),
            BreakerChange::Unchanged
        );
        assert_eq!(health.consecutive_failures(), 1);
        let until = now + Duration::from_secs(10);
        assert_eq!(
            health.record_failure(now, &config()),
            BreakerChange::Opened { until }
        );
        assert!(matches!(health.check(now), Err(Block::BreakerOpen(t)) if t == until));
        assert_eq!(health.state(now, true), MemberState::BreakerOpen { until });

        assert_eq!(health.begin(until).ok(), Some(true));
        assert!(matches!(health.begin(until), Err(Block::Probing(_))));
        health.release_probe();
        assert_eq!(health.begin(until).ok(), Some(true));
        // The probe fails: open again at once.
        assert!(matches!(
            health.record_failure(until, &config()),
            BreakerChange::Opened { .. }
        ));
        let later = until + Duration::from_secs(10);
        assert_eq!(health.begin(later).ok(), Some(true));
        health.record_alive();
        assert_eq!(health.begin(later).ok(), Some(false));
        assert_eq!(health.state(later, true), MemberState::Active);
    }

    #[tokio::test(start_paused = true)]
    async fn dead_and_disabled_outrank_cooling() {
        let mut health = Health::new();
        let now = Instant::now();
        health.cool_down(now + Duration::from_secs(5));
        health.cool_down(now + Duration::from_secs(1));
        assert_eq!(
            health.state(now, true),
            MemberState::CoolingDown {
                until: now + Duration::from_secs(5)
            }
        );
        assert_eq!(health.state(now, false), MemberState::Disabled);
        health.kill("HTTP 401".into());
        assert!(matches!(health.state(now, false), MemberState::Dead { .. }));
        assert!(matches!(health.check(now), Err(Block::Dead(_))));
        health.reset();
        assert!(health.check(now).is_ok());
    }

    #[test]
    fn a_disabled_breaker_never_opens() {
        let mut health = Health::new();
        let now = Instant::now();
        for _ in 0..100 {
            health.record_failure(now, &BreakerConfig::disabled());
        }
        assert!(health.check(now).is_ok());
    }

    #[test]
    fn waits_print_for_people() {
        assert_eq!(DisplayWait(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(
            DisplayWait(Duration::from_millis(1250)).to_string(),
            "1.25s"
        );
    }
}
