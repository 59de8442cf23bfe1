//! The kinds failures are counted by in the end-of-run summary: what a user can act on
//! (a rate limit, a bad key, a server in trouble, a bad request), from the error of the last
//! attempt.

use lbgpt_core::Error;

/// The kind of a bad input line (never sent).
pub const INVALID_INPUT: &str = "invalid_input";

/// The kind of a failed call, from the last attempt's error: `rate_limited` (429),
/// `quota_exhausted` (429 `insufficient_quota`), `auth` (401, 403), `invalid_request` (other
/// 4xx, or refused before sending), `model_not_served` (no provider serves the request's model),
/// `server_error` (5xx), `timeout` (no answer in time, or
/// 408), `connection` (refused, reset, DNS, TLS, proxy), `bad_response` (an answer that could
/// not be decoded), `no_provider` (every provider retired or unavailable for too long),
/// `deadline_exceeded`, `cancelled`, `config`, `internal`.
pub fn kind_of(error: &Error) -> &'static str {
    match error.last_attempt() {
        Error::Api(api) if api.is_insufficient_quota() => "quota_exhausted",
        Error::Api(api) => match api.status {
            429 => "rate_limited",
            401 | 403 => "auth",
            408 => "timeout",
            400..=499 => "invalid_request",
            500..=599 => "server_error",
            _ => "api_error",
        },
        Error::Transport { .. } => "connection",
        Error::Timeout { .. } => "timeout",
        Error::Decode { .. } => "bad_response",
        Error::InvalidRequest { .. } => "invalid_request",
        Error::ModelNotServed { .. } => "model_not_served",
        Error::NoMemberAvailable { .. } => "no_provider",
        Error::DeadlineExceeded { .. } => "deadline_exceeded",
        Error::Cancelled => "cancelled",
        Error::Config(_) => "config",
        Error::Internal(_) => "internal",
        // `Error` may grow; a new kind is still counted.
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::{ApiError, TimeoutPhase, TransportKind};
    use std::time::Duration;

    fn api(status: u16, code: Option<&str>) -> Error {
        let mut api = ApiError::new(status, "m");
        api.code = code.map(str::to_owned);
        api.into()
    }

    #[test]
    fn kinds_come_from_the_last_attempt() {
        assert_eq!(kind_of(&api(429, None)), "rate_limited");
        assert_eq!(
            kind_of(&api(429, Some("insufficient_quota"))),
            "quota_exhausted"
        );
        assert_eq!(kind_of(&api(401, Some("invalid_api_key"))), "auth");
        assert_eq!(kind_of(&api(403, None)), "auth");
        assert_eq!(kind_of(&api(400, None)), "invalid_request");
        assert_eq!(kind_of(&api(404, None)), "invalid_request");
        assert_eq!(kind_of(&api(408, None)), "timeout");
        assert_eq!(kind_of(&api(503, None)), "server_error");
        let exhausted = Error::RetriesExhausted {
            attempts: 4,
            last: Box::new(api(500, None)),
        };
        assert_eq!(kind_of(&exhausted), "server_error");
        let deadline = Error::DeadlineExceeded {
            deadline: Duration::from_secs(1),
            attempts: 2,
            last: Some(Box::new(api(429, None))),
        };
        assert_eq!(kind_of(&deadline), "rate_limited");
        let bare_deadline = Error::DeadlineExceeded {
            deadline: Duration::from_secs(1),
            attempts: 0,
            last: None,
        };
        assert_eq!(kind_of(&bare_deadline), "deadline_exceeded");
        let reset = Error::Transport {
            kind: TransportKind::Reset,
            message: "reset".into(),
        };
        assert_eq!(kind_of(&reset), "connection");
        let timeout = Error::Timeout {
            phase: TimeoutPhase::Request,
            after: None,
        };
        assert_eq!(kind_of(&timeout), "timeout");
        let none = Error::NoMemberAvailable {
            reason: "all dead".into(),
            retry_after: None,
        };
        assert_eq!(kind_of(&none), "no_provider");
        assert_eq!(
            kind_of(&Error::invalid_request("model", "unknown")),
            "invalid_request"
        );
        let unserved = Error::ModelNotServed {
            model: "gpt-x".into(),
            members: vec!["azure-eu".into()],
            detail: "no deployment".into(),
        };
        assert_eq!(kind_of(&unserved), "model_not_served");
    }
}
