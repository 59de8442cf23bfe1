use lbgpt_core::{ApiError, ApiResponse, Error, RateLimitInfo, TransportKind, Usage};
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// A member's per-minute limits. `None` means unlimited.
///
/// ```
/// use lbgpt_balance::usage::Limits;
///
/// let limits = Limits::none().rpm(600).tpm(100_000);
/// assert_eq!((limits.rpm, limits.tpm), (Some(600), Some(100_000)));
/// assert!(Limits::none().is_unlimited());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Requests per minute (per [`PacingConfig::window`](super::PacingConfig::window)).
    pub rpm: Option<u64>,
    /// Tokens per minute (per [`PacingConfig::window`](super::PacingConfig::window)).
    pub tpm: Option<u64>,
}

impl Limits {
    /// No limits.
    pub fn none() -> Self {
        Limits::default()
    }

    /// Sets the requests-per-minute limit.
    pub fn rpm(mut self, rpm: u64) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// Sets the tokens-per-minute limit.
    pub fn tpm(mut self, tpm: u64) -> Self {
        self.tpm = Some(tpm);
        self
    }

    /// True when neither limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }
}

/// Which limit kept a request out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The requests-per-minute limit (or its pacing).
    Requests,
    /// The tokens-per-minute limit (or its pacing).
    Tokens,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Requests => "requests per minute",
            LimitKind::Tokens => "tokens per minute",
        })
    }
}

/// A reservation that does not fit now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable {
    /// The earliest instant the same reservation would be admitted if nothing else happens
    /// meanwhile (computed, exact); `None` when it can never fit (more tokens than the
    /// member's TPM, a limit of 0, or an unknown member).
    pub retry_at: Option<Instant>,
    /// The limit that decided `retry_at`.
    pub limit: LimitKind,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_at {
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                write!(f, "at its {} limit for another {wait:?}", self.limit)
            }
            None => write!(f, "can never fit its {} limit", self.limit),
        }
    }
}

impl std::error::Error for Unavailable {}

/// What happened to a reserved request; [`UsageTracker::settle`](super::UsageTracker::settle)
/// corrects the reservation with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider answered with a success status.
    Answered {
        /// The answer's token usage, if it reported one.
        usage: Option<Usage>,
        /// The answer's `x-ratelimit-*` headers, if any.
        rate_limit: Option<RateLimitInfo>,
    },
    /// The provider answered 429 for a rate limit.
    RateLimited {
        /// How long the provider asked to wait.
        retry_after: Option<Duration>,
        /// The answer's `x-ratelimit-*` headers, if any.
        rate_limit: Option<RateLimitInfo>,
    },
    /// Any other failure. `reached_provider` says whether the provider may have counted the
    /// request: if so the charge is kept, otherwise it is refunded.
    Failed {
        /// Whether the request may have reached the provider.
        reached_provider: bool,
    },
}

impl Outcome {
    /// The outcome of a successful answer of any endpoint: its usage
    /// ([`ApiResponse::token_usage`]: an embeddings answer reports prompt tokens only) and
    /// rate-limit headers.
    pub fn answered<T: ApiResponse>(response: &T) -> Self {
        Outcome::Answered {
            usage: response.token_usage(),
            rate_limit: response.meta().rate_limit.clone(),
        }
    }

    /// The outcome of a failed call: a 429 (other than `insufficient_quota`) is
    /// [`Outcome::RateLimited`]; a connection that was never made, or a request refused before
    /// any network call, has not reached the provider; everything else may have.
    pub fn failed(error: &Error) -> Self {
        match error.last_attempt() {
            Error::Api(api) if is_rate_limit(api) => Outcome::RateLimited {
                retry_after: api.retry_after,
                rate_limit: api.rate_limit.clone(),
            },
            Error::Transport {
                kind: TransportKind::Connect,
                ..
            }
            | Error::Timeout {
                phase: lbgpt_core::TimeoutPhase::Connect,
                ..
            }
            | Error::InvalidRequest { .. }
            | Error::ModelNotServed { .. }
            | Error::Config(_)
            | Error::NoMemberAvailable { .. } => Outcome::Failed {
                reached_provider: false,
            },
            _ => Outcome::Failed {
                reached_provider: true,
            },
        }
    }

    /// [`Outcome::answered`] or [`Outcome::failed`].
    pub fn of<T: ApiResponse>(result: &Result<T, Error>) -> Self {
        match result {
            Ok(response) => Outcome::answered(response),
            Err(error) => Outcome::failed(error),
        }
    }
}

fn is_rate_limit(api: &ApiError) -> bool {
    api.status == 429 && !api.is_insufficient_quota()
}

/// How a member's answer turns into its charge against the token limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Accounting {
    /// The charge made at arrival, as Azure and OpenAI count their TPM limits: the provider's
    /// prompt count (from the answer's usage) plus the reserved completion budget. The
    /// default: never less than what such a provider charged.
    #[default]
    ArrivalCharge,
    /// The tokens actually used (`usage.total_tokens`), for servers that count real usage.
    ActualUsage,
    /// The larger of the two: safe whichever way the provider counts.
    Larger,
}

/// A member's usage as the tracker sees it now.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UsageSnapshot {
    /// Requests charged in the current window (in-flight ones included).
    pub requests_in_window: u64,
    /// Tokens charged in the current window (in-flight reservations included).
    pub tokens_in_window: u64,
    /// Reservations not settled yet.
    pub in_flight: u64,
    /// Tokens those in-flight reservations hold.
    pub reserved_tokens: u64,
    /// Requests left in the window (after what provider headers said), if limited.
    pub headroom_requests: Option<u64>,
    /// Tokens left in the window (after what provider headers said), if limited.
    pub headroom_tokens: Option<u64>,
    /// The factor applied to prompt estimates (provider count / our estimate, learnt).
    pub token_correction: f64,
    /// The member's limits.
    pub limits: Limits,
}

impl UsageSnapshot {
    /// The snapshot of an idle, unlimited member.
    pub fn idle(limits: Limits) -> Self {
        UsageSnapshot {
            requests_in_window: 0,
            tokens_in_window: 0,
            in_flight: 0,
            reserved_tokens: 0,
            headroom_requests: limits.rpm,
            headroom_tokens: limits.tpm,
            token_correction: 1.0,
            limits,
        }
    }

    /// The smaller fraction of the requests and tokens headroom left (1.0 when unlimited),
    /// a limit-independent measure to compare members by.
    pub fn headroom_fraction(&self) -> f64 {
        let fraction = |headroom: Option<u64>, limit: Option<u64>| match (headroom, limit) {
            (Some(h), Some(l)) if l > 0 => h as f64 / l as f64,
            (_, Some(0)) => 0.0,
            _ => 1.0,
        };
        fraction(self.headroom_requests, self.limits.rpm)
            .min(fraction(self.headroom_tokens, self.limits.tpm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_of_errors_says_whether_the_provider_was_reached() {
        let mut limited = ApiError::new(429, "slow down");
        limited.retry_after = Some(Duration::from_millis(300));
        assert_eq!(
            Outcome::failed(&limited.into()),
            Outcome::RateLimited {
                retry_after: Some(Duration::from_millis(300)),
                rate_limit: None
            }
        );
        let mut quota = ApiError::new(429, "no quota");
        quota.code = Some("insufficient_quota".into());
        assert_eq!(
            Outcome::failed(&quota.into()),
            Outcome::Failed {
                reached_provider: true
            }
        );
        let refused = Error::Transport {
            kind: TransportKind::Connect,
            message: "refused".into(),
        };
        assert_eq!(
            Outcome::failed(&refused),
            Outcome::Failed {
                reached_provider: false
            }
        );
        let reset = Error::Transport {
            kind: TransportKind::Reset,
            message: "reset".into(),
        };
        assert_eq!(
            Outcome::failed(&reset),
            Outcome::Failed {
                reached_provider: true
            }
        );
    }

    #[test]
    fn answers_of_every_endpoint_settle_with_their_usage() {
        let embeddings: lbgpt_core::EmbeddingResponse = serde_json::from_str(
            r#"{"data": [{"embedding": [0.5]}], "usage": {"prompt_tokens": 9, "total_tokens": 9}}"#,
        )
        .expect("an embeddings answer");
        match Outcome::of(&Ok(embeddings)) {
            Outcome::Answered {
                usage: Some(usage), ..
            } => assert_eq!(
                (
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.total_tokens
                ),
                (9, 0, 9)
            ),
            other => panic!("expected an answer with usage, got {other:?}"),
        }
        let completions: lbgpt_core::CompletionResponse = serde_json::from_str(
            r#"{"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 6, "total_tokens": 8}}"#,
        )
        .expect("a completions answer");
        match Outcome::answered(&completions) {
            Outcome::Answered {
                usage: Some(usage), ..
            } => assert_eq!((usage.prompt_tokens, usage.completion_tokens), (2, 6)),
            other => panic!("expected an answer with usage, got {other:?}"),
        }
    }

    #[test]
    fn headroom_fraction_is_the_tighter_limit() {
        let mut snapshot = UsageSnapshot::idle(Limits::none().rpm(100).tpm(1000));
        assert_eq!(snapshot.headroom_fraction(), 1.0);
        snapshot.headroom_requests = Some(50);
        snapshot.headroom_tokens = Some(100);
        assert!((snapshot.headroom_fraction() - 0.1).abs() < 1e-9);
        assert_eq!(UsageSnapshot::idle(Limits::none()).headroom_fraction(), 1.0);
    }
}
