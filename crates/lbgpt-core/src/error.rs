use crate::RateLimitInfo;
use std::fmt;
use std::time::Duration;

/// Everything that can go wrong between a request and its answer.
///
/// Errors never hold an API key: providers build them from status, headers and body only, and
/// redact the key if a server echoes it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an HTTP error status.
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The connection failed: refused, reset, closed early, DNS, TLS or proxy failure.
    #[error("transport error ({kind}): {message}")]
    Transport {
        /// What failed.
        kind: TransportKind,
        /// A description without URLs or credentials.
        message: String,
    },

    /// No answer in time.
    #[error("timed out while {phase}{}", fmt_after(.after))]
    Timeout {
        /// Which phase timed out.
        phase: TimeoutPhase,
        /// The configured limit, when known.
        after: Option<Duration>,
    },

    /// A success status with a body that is not a valid answer.
    #[error("could not decode the answer (HTTP {status}, {kind}): {message}; body starts with {excerpt:?}")]
    Decode {
        /// Not JSON at all, or JSON of the wrong shape.
        kind: DecodeKind,
        /// The HTTP status.
        status: u16,
        /// The parser's message.
        message: String,
        /// The first bytes of the body (at most 200 characters).
        excerpt: String,
    },

    /// The request was refused before any network call.
    #[error("invalid request: `{field}` {message}")]
    InvalidRequest {
        /// The offending field or setting.
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// No provider serves the request's model: an Azure resource has no deployment mapped to
    /// it, or no member of a balancer serves it. Decided before any network call, so nothing
    /// was sent and nothing was counted against any limit; trying again cannot help.
    ///
    /// A balancer treats this answer from one member as "ask another member": the member is
    /// not penalised (no failure, no breaker count, no failover), and the request fails with
    /// this error only when no member serves the model.
    #[error("model `{model}` is not served by {}: {detail}", .members.join(", "))]
    ModelNotServed {
        /// The model the request names.
        model: String,
        /// The providers (balancer members) that do not serve it.
        members: Vec<String>,
        /// Why, and what they serve instead (e.g. an Azure resource's mapped models).
        detail: String,
    },

    /// No provider or member could take the request.
    #[error("no member available: {reason}{}", fmt_retry(.retry_after))]
    NoMemberAvailable {
        /// Why (every member cooling down, dead, or at its limit).
        reason: String,
        /// When capacity is expected back, if known.
        retry_after: Option<Duration>,
    },

    /// Every allowed attempt failed.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<Error>,
    },

    /// The request's overall deadline passed.
    #[error("deadline of {deadline:?} exceeded after {attempts} attempt(s){}", fmt_last(.last))]
    DeadlineExceeded {
        /// The configured deadline.
        deadline: Duration,
        /// Attempts started before the deadline.
        attempts: u32,
        /// The last completed attempt's error, if any attempt completed.
        last: Option<Box<Error>>,
    },

    /// The caller dropped or cancelled the request.
    #[error("cancelled")]
    Cancelled,

    /// A service was configured wrongly (bad URL, header, proxy, ...).
    #[error("configuration error: {0}")]
    Config(String),

    /// A bug, not a failure of the provider: e.g. a service panicked while handling this
    /// request. The batch APIs turn such a panic into this error for that one request.
    #[error("internal error: {0}")]
    Internal(String),
}

fn fmt_after(after: &Option<Duration>) -> String {
    after.map_or_else(String::new, |d| format!(" (limit {d:?})"))
}

fn fmt_retry(retry: &Option<Duration>) -> String {
    retry.map_or_else(String::new, |d| {
        format!("; capacity expected back in {d:?}")
    })
}

fn fmt_last(last: &Option<Box<Error>>) -> String {
    last.as_ref()
        .map_or_else(String::new, |e| format!("; last error: {e}"))
}

/// An error answer from the API: the HTTP status and the `error` object of the body.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// `error.type`, e.g. `invalid_request_error`.
    pub kind: Option<String>,
    /// `error.code`, e.g. `rate_limit_exceeded`, `insufficient_quota`, `context_length_exceeded`.
    pub code: Option<String>,
    /// `error.param`: the request field at fault.
    pub param: Option<String>,
    /// `error.message`, or an excerpt of a body that was not an error object.
    pub message: String,
    /// How long the server asked us to wait (`retry-after-ms`, `x-ms-retry-after-ms`,
    /// `retry-after` in seconds or as an HTTP date).
    pub retry_after: Option<Duration>,
    /// `x-should-retry`: the server's own verdict on retrying, when sent.
    pub should_retry: Option<bool>,
    /// Rate-limit headers of the error answer.
    pub rate_limit: Option<RateLimitInfo>,
    /// The provider's request id.
    pub request_id: Option<String>,
}

impl ApiError {
    /// An API error with a status and message and nothing else.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            ..ApiError::default()
        }
    }

    /// True for a 429 whose code says the account has no quota left: waiting will not help.
    pub fn is_insufficient_quota(&self) -> bool {
        self.code.as_deref() == Some("insufficient_quota")
            || self.kind.as_deref() == Some("insufficient_quota")
    }

    /// Whether trying again may succeed: 408, 409, 429 and 5xx (a 429 for
    /// `insufficient_quota` never); the server's `x-should-retry` overrides otherwise.
    pub fn is_retryable(&self) -> bool {
        if self.is_insufficient_quota() {
            return false;
        }
        if let Some(verdict) = self.should_retry {
            return verdict;
        }
        matches!(self.status, 408 | 409 | 429) || self.status >= 500
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        let labels: Vec<&str> = [&self.kind, &self.code]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .collect();
        if !labels.is_empty() {
            write!(f, " ({})", labels.join(", "))?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(param) = &self.param {
            write!(f, " [param: {param}]")?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, " [retry after {wait:?}]")?;
        }
        Ok(())
    }
}

/// What failed in a transport error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// Could not connect (refused, DNS, TLS handshake, proxy).
    Connect,
    /// The connection was reset or closed before the answer was complete.
    Reset,
    /// Reading the body failed midway.
    Body,
    /// Anything else.
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "connect",
            TransportKind::Reset => "connection reset",
            TransportKind::Body => "body",
            TransportKind::Other => "other",
        })
    }
}

/// Which phase of a call timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Establishing the connection.
    Connect,
    /// Waiting for or reading the answer.
    Request,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::Request => "waiting for the answer",
        })
    }
}

/// Why a success body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeKind {
    /// The body is not JSON (often truncated): worth retrying.
    InvalidJson,
    /// The body is JSON but not a valid answer: retrying will not help.
    UnexpectedShape,
}

impl fmt::Display for DecodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeKind::InvalidJson => "invalid JSON",
            DecodeKind::UnexpectedShape => "unexpected shape",
        })
    }
}

impl From<ApiError> for Error {
    fn from(value: ApiError) -> Self {
        Error::Api(Box::new(value))
    }
}

impl Error {
    /// An [`Error::InvalidRequest`] about `field`.
    pub fn invalid_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether trying the same request again may succeed.
    ///
    /// True for transport errors, timeouts, non-JSON success bodies, retryable API errors
    /// (see [`ApiError::is_retryable`]) and "no member available" with a known wait.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => api.is_retryable(),
            Error::Transport { .. } | Error::Timeout { .. } => true,
            Error::Decode { kind, .. } => *kind == DecodeKind::InvalidJson,
            Error::NoMemberAvailable { retry_after, .. } => retry_after.is_some(),
            Error::InvalidRequest { .. }
            | Error::ModelNotServed { .. }
            | Error::RetriesExhausted { .. }
            | Error::DeadlineExceeded { .. }
            | Error::Cancelled
            | Error::Config(_)
            | Error::Internal(_) => false,
        }
    }

    /// How long the server (or balancer) asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api(api) => api.retry_after,
            Error::NoMemberAvailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The error of the last attempt: looks through [`Error::RetriesExhausted`] and
    /// [`Error::DeadlineExceeded`]; any other error is its own last attempt.
    pub fn last_attempt(&self) -> &Error {
        match self {
            Error::RetriesExhausted { last, .. } => last.last_attempt(),
            Error::DeadlineExceeded {
                last: Some(last), ..
            } => last.last_attempt(),
            other => other,
        }
    }

    /// The API error of the last attempt, if it was one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self.last_attempt() {
            Error::Api(api) => Some(api),
            _ => None,
        }
    }

    /// The HTTP status of the last attempt, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self.last_attempt() {
            Error::Api(api) => Some(api.status),
            Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How many attempts were made, when a retry layer recorded it.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::RetriesExhausted { attempts, .. } | Error::DeadlineExceeded { attempts, .. } => {
                Some(*attempts)
            }
            _ => None,
        }
    }

    /// A short, stable, machine-readable name of the error class, e.g. for JSONL output:
    /// `api_error`, `transport_error`, `timeout`, `decode_error`, `invalid_request`,
    /// `model_not_served`, `no_member_available`, `retries_exhausted`, `deadline_exceeded`,
    /// `cancelled`, `config_error`, `internal_error`.
    pub fn class(&self) -> &'static str {
        match self {
            Error::Api(_) => "api_error",
            Error::Transport { .. } => "transport_error",
            Error::Timeout { .. } => "timeout",
            Error::Decode { .. } => "decode_error",
            Error::InvalidRequest { .. } => "invalid_request",
            Error::ModelNotServed { .. } => "model_not_served",
            Error::NoMemberAvailable { .. } => "no_member_available",
            Error::RetriesExhausted { .. } => "retries_exhausted",
            Error::DeadlineExceeded { .. } => "deadline_exceeded",
            Error::Cancelled => "cancelled",
            Error::Config(_) => "config_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// Replaces every occurrence of `secret` in the error's texts with `[REDACTED]`.
    ///
    /// Providers call this with their key so that a server echoing the key in an error body
    /// cannot leak it into logs.
    pub fn redact(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let scrub = |text: &mut String| {
            if text.contains(secret) {
                *text = text.replace(secret, "[REDACTED]");
            }
        };
        match self {
            Error::Api(api) => scrub(&mut api.message),
            Error::Transport { message, .. }
            | Error::Config(message)
            | Error::Internal(message) => scrub(message),
            Error::Decode {
                message, excerpt, ..
            } => {
                scrub(message);
                scrub(excerpt);
            }
            Error::InvalidRequest { message, .. } => scrub(message),
            Error::ModelNotServed { detail, .. } => scrub(detail),
            Error::NoMemberAvailable { reason, .. } => scrub(reason),
            Error::RetriesExhausted { last, .. } => last.redact(secret),
            Error::DeadlineExceeded { last, .. } => {
                if let Some(last) = last {
                    last.redact(secret);
                }
            }
            Error::Timeout { .. } | Error::Cancelled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>) -> Error {
        let mut e = ApiError::new(status, "m");
        e.code = code.map(str::to_owned);
        e.into()
    }

    #[test]
    fn retryable_statuses() {
        for status in [408, 409, 429, 500, 502, 503, 504] {
            assert!(api(status, None).is_retryable(), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!api(status, None).is_retryable(), "{status}");
        }
        assert!(!api(429, Some("insufficient_quota")).is_retryable());
    }

    #[test]
    fn should_retry_header_overrides_but_not_for_quota() {
        let mut e = ApiError::new(400, "m");
        e.should_retry = Some(true);
        assert!(Error::from(e).is_retryable());
        let mut e = ApiError::new(503, "m");
        e.should_retry = Some(false);
        assert!(!Error::from(e).is_retryable());
        let mut e = ApiError::new(429, "m");
        e.code = Some("insufficient_quota".into());
        e.should_retry = Some(true);
        assert!(!Error::from(e).is_retryable());
    }

    #[test]
    fn last_attempt_looks_through_wrappers() {
        let wrapped = Error::RetriesExhausted {
            attempts: 3,
            last: Box::new(api(503, None)),
        };
        assert_eq!(wrapped.status(), Some(503));
        assert_eq!(wrapped.attempts(), Some(3));
        assert!(!wrapped.is_retryable());
        assert!(wrapped.to_string().contains("gave up after 3 attempts"));
        assert!(wrapped.to_string().contains("HTTP 503"));
    }

    #[test]
    fn a_model_nobody_serves_names_the_model_and_the_members_and_is_final() {
        let mut error = Error::ModelNotServed {
            model: "text-embedding-3-small".into(),
            members: vec!["azure-eu".into(), "azure-us".into()],
            detail: "no deployment is mapped to it (key sk-secret-1)".into(),
        };
        assert!(!error.is_retryable());
        assert_eq!(error.class(), "model_not_served");
        assert_eq!(error.retry_after(), None);
        error.redact("sk-secret-1");
        assert_eq!(
            error.to_string(),
            "model `text-embedding-3-small` is not served by azure-eu, azure-us: no deployment \
             is mapped to it (key [REDACTED])"
        );
    }

    #[test]
    fn redact_scrubs_nested_messages() {
        let mut e = Error::RetriesExhausted {
            attempts: 2,
            last: Box::new(Error::from(ApiError::new(401, "bad key sk-secret-123"))),
        };
        e.redact("sk-secret-123");
        assert!(!e.to_string().contains("sk-secret-123"));
        assert!(!format!("{e:?}").contains("sk-secret-123"));
    }
}
