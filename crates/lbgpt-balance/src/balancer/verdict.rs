//! What a member's failure means for the member and for the request.
//!
//! [`Error::ModelNotServed`] is not a failure and is never classified here: the balancer
//! passes such a request on before looking at the verdict (`call.rs`).

use lbgpt_core::{DecodeKind, Error};
use std::sync::Arc;
use std::time::Duration;

/// The balancer's reading of one failed upstream call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// The member will not serve anything any more (401, 403, `insufficient_quota`): retire
    /// it and send the request elsewhere; the request is not at fault.
    Dead(Arc<str>),
    /// Trying again elsewhere may succeed.
    Retryable {
        /// Keep the member out this long (the server asked to wait).
        cooldown: Option<Duration>,
        /// Whether the failure counts against the member's circuit breaker.
        breaker: bool,
        /// A 429.
        rate_limited: bool,
    },
    /// The request itself is at fault, or retrying cannot help: return the error as is.
    Final,
}

/// Classifies `error`; `default_cooldown` applies to a 429 without a retry-after.
pub(crate) fn verdict(error: &Error, default_cooldown: Duration) -> Verdict {
    match error {
        Error::Api(api) => {
            if api.status == 401 || api.status == 403 {
                let code = api.code.as_deref().or(api.kind.as_deref());
                return Verdict::Dead(match code {
                    Some(code) => format!("HTTP {} {code}", api.status).into(),
                    None => format!("HTTP {}", api.status).into(),
                });
            }
            if api.is_insufficient_quota() {
                return Verdict::Dead(format!("HTTP {} insufficient_quota", api.status).into());
            }
            if api.status == 429 {
                return Verdict::Retryable {
                    cooldown: Some(api.retry_after.unwrap_or(default_cooldown)),
                    breaker: false,
                    rate_limited: true,
                };
            }
            if api.is_retryable() {
                Verdict::Retryable {
                    cooldown: api.retry_after,
                    breaker: api.status >= 500 || api.status == 408,
                    rate_limited: false,
                }
            } else {
                Verdict::Final
            }
        }
        Error::Transport { .. } | Error::Timeout { .. } => Verdict::Retryable {
            cooldown: None,
            breaker: true,
            rate_limited: false,
        },
        Error::Decode {
            kind: DecodeKind::InvalidJson,
            ..
        } => Verdict::Retryable {
            cooldown: None,
            breaker: true,
            rate_limited: false,
        },
        // A member that is itself a balancer.
        Error::NoMemberAvailable {
            reason,
            retry_after: None,
        } => Verdict::Dead(format!("no member available inside: {reason}").into()),
        Error::NoMemberAvailable {
            retry_after: Some(wait),
            ..
        } => Verdict::Retryable {
            cooldown: Some(*wait),
            breaker: false,
            rate_limited: false,
        },
        _ => Verdict::Final,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::{ApiError, TransportKind};

    const COOL: Duration = Duration::from_secs(1);

    fn api(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> Error {
        let mut error = ApiError::new(status, "m");
        error.code = code.map(str::to_owned);
        error.retry_after = retry_after;
        error.into()
    }

    #[test]
    fn keys_that_cannot_work_are_dead() {
        for error in [
            api(401, Some("invalid_api_key"), None),
            api(403, None, None),
            api(429, Some("insufficient_quota"), None),
        ] {
            assert!(matches!(verdict(&error, COOL), Verdict::Dead(_)), "{error}");
        }
        assert_eq!(
            verdict(&api(401, Some("invalid_api_key"), None), COOL),
            Verdict::Dead("HTTP 401 invalid_api_key".into())
        );
    }

    #[test]
    fn rate_limits_and_unavailability_cool_down() {
        let wait = Duration::from_millis(300);
        assert_eq!(
            verdict(&api(429, None, Some(wait)), COOL),
            Verdict::Retryable {
                cooldown: Some(wait),
                breaker: false,
                rate_limited: true
            }
        );
        assert_eq!(
            verdict(&api(429, None, None), COOL),
            Verdict::Retryable {
                cooldown: Some(COOL),
                breaker: false,
                rate_limited: true
            }
        );
        assert_eq!(
            verdict(&api(503, None, Some(wait)), COOL),
            Verdict::Retryable {
                cooldown: Some(wait),
                breaker: true,
                rate_limited: false
            }
        );
    }

    #[test]
    fn bad_requests_are_final() {
        assert_eq!(verdict(&api(400, None, None), COOL), Verdict::Final);
        assert_eq!(
            verdict(&Error::invalid_request("model", "unknown"), COOL),
            Verdict::Final
        );
    }

    #[test]
    fn connection_failures_count_for_the_breaker() {
        let error = Error::Transport {
            kind: TransportKind::Connect,
            message: "refused".into(),
        };
        assert!(matches!(
            verdict(&error, COOL),
            Verdict::Retryable { breaker: true, .. }
        ));
    }
}
