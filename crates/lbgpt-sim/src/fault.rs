//! Faults the simulator can inject, scripted or at random.

use std::time::Duration;

/// A failure the simulator answers a request with instead of (or before) a normal answer.
///
/// Faults are either scripted for the next requests of a key with
/// [`Simulator::script`](crate::Simulator::script), or drawn at random with
/// [`KeyConfig::random_faults`](crate::KeyConfig::random_faults). Faults are applied after the
/// request passed authentication and validation and before the rate limits, and a faulted
/// request is not charged against the limits (except [`Fault::Stall`], which answers normally
/// afterwards). While a key is revoked or its quota exhausted
/// ([`Simulator::revoke_key`](crate::Simulator::revoke_key),
/// [`Simulator::set_quota_exhausted`](crate::Simulator::set_quota_exhausted)), its scripted
/// faults wait.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `429` with code `rate_limit_exceeded`, `retry-after` (whole seconds, rounded up),
    /// `retry-after-ms`, and `x-ratelimit-*` headers saying the requests are used up until
    /// `retry_after` (plus the key's real limits when it has any).
    RateLimited {
        /// The wait the answer asks for.
        retry_after: Duration,
    },
    /// `429` with type and code `insufficient_quota` (not worth retrying).
    InsufficientQuota,
    /// `500` with type `server_error`.
    ServerError,
    /// `503`, with `retry-after` and `retry-after-ms` when `retry_after` is given.
    Unavailable {
        /// The wait the answer asks for, if any.
        retry_after: Option<Duration>,
    },
    /// Any status with an OpenAI-shaped error body (an invalid status code answers `500`).
    Status(u16),
    /// Waits this long, then answers normally (limits included), to trip client timeouts.
    /// Other requests are served meanwhile.
    Stall(Duration),
    /// Resets the TCP connection (`SO_LINGER` 0, then close) without any HTTP answer.
    Reset,
    /// `200` with `content-type: application/json` and a truncated, invalid JSON body.
    MalformedJson,
    /// `401` with code `invalid_api_key`, as if the key had been revoked.
    Unauthorized,
    /// This status with an empty body.
    EmptyBody(u16),
    /// This status with an HTML page as body, as a proxy or gateway would send.
    NonJsonBody(u16),
}

impl Fault {
    /// A short snake_case name of the fault's kind (as used in the TOML configuration).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::RateLimited { .. } => "rate_limited",
            Fault::InsufficientQuota => "insufficient_quota",
            Fault::ServerError => "server_error",
            Fault::Unavailable { .. } => "unavailable",
            Fault::Status(_) => "status",
            Fault::Stall(_) => "stall",
            Fault::Reset => "reset",
            Fault::MalformedJson => "malformed_json",
            Fault::Unauthorized => "unauthorized",
            Fault::EmptyBody(_) => "empty_body",
            Fault::NonJsonBody(_) => "non_json_body",
        }
    }
}

/// The weighted set of faults random injection draws from.
///
/// The [`Default`] mix holds only faults a well-behaved client recovers from by retrying, so
/// that a batch run against a faulty key still completes:
///
/// | fault | weight |
/// | --- | --- |
/// | `RateLimited { retry_after: 100 ms }` | 4 |
/// | `ServerError` | 2 |
/// | `Unavailable { retry_after: Some(100 ms) }` | 1 |
/// | `Reset` | 1 |
/// | `MalformedJson` | 1 |
/// | `NonJsonBody(502)` | 1 |
///
/// ```
/// use lbgpt_sim::{Fault, FaultMix};
/// use std::time::Duration;
///
/// let mix = FaultMix::new()
///     .with(Fault::ServerError, 3)
///     .with(Fault::Stall(Duration::from_secs(5)), 1);
/// assert_eq!(mix.total_weight(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultMix {
    entries: Vec<(Fault, u32)>,
}

impl FaultMix {
    /// An empty mix (random injection with it does nothing).
    pub fn new() -> Self {
        FaultMix {
            entries: Vec::new(),
        }
    }

    /// Adds `fault` with `weight` (relative to the other entries' weights; 0 never draws it).
    pub fn with(mut self, fault: Fault, weight: u32) -> Self {
        self.entries.push((fault, weight));
        self
    }

    /// The faults and their weights.
    pub fn entries(&self) -> &[(Fault, u32)] {
        &self.entries
    }

    /// The sum of the weights.
    pub fn total_weight(&self) -> u64 {
        self.entries.iter().map(|(_, w)| u64::from(*w)).sum()
    }

    /// The fault at `u` (in `[0, 1)`) of the cumulative weights.
    pub(crate) fn pick(&self, u: f64) -> Option<&Fault> {
        let total = self.total_weight();
        if total == 0 {
            return None;
        }
        // Truncation is the intent: a point in 0..total.
        let point = ((u * total as f64) as u64).min(total - 1);
        let mut upto = 0;
        for (fault, weight) in &self.entries {
            upto += u64::from(*weight);
            if point < upto {
                return Some(fault);
            }
        }
        None
    }
}

impl Default for FaultMix {
    fn default() -> Self {
        let short = Duration::from_millis(100);
        FaultMix::new()
            .with(Fault::RateLimited { retry_after: short }, 4)
            .with(Fault::ServerError, 2)
            .with(
                Fault::Unavailable {
                    retry_after: Some(short),
                },
                1,
            )
            .with(Fault::Reset, 1)
            .with(Fault::MalformedJson, 1)
            .with(Fault::NonJsonBody(502), 1)
    }
}

/// Random fault injection of one key: a probability and the mix to draw from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RandomFaults {
    pub(crate) probability: f64,
    pub(crate) mix: FaultMix,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_follows_the_weights() {
        let mix = FaultMix::new()
            .with(Fault::ServerError, 1)
            .with(Fault::Reset, 0)
            .with(Fault::Unauthorized, 3);
        assert_eq!(mix.pick(0.0), Some(&Fault::ServerError));
        assert_eq!(mix.pick(0.2499), Some(&Fault::ServerError));
        assert_eq!(mix.pick(0.25), Some(&Fault::Unauthorized));
        assert_eq!(mix.pick(0.9999), Some(&Fault::Unauthorized));
        assert_eq!(FaultMix::new().pick(0.5), None);
    }

    #[test]
    fn default_mix_holds_only_retryable_faults() {
        for (fault, _) in FaultMix::default().entries() {
            assert!(
                !matches!(
                    fault,
                    Fault::InsufficientQuota | Fault::Unauthorized | Fault::Stall(_)
                ),
                "{fault:?} in the default mix"
            );
        }
    }
}
