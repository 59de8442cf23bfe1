//! Building HTTP answers: OpenAI-shaped error bodies and rate-limit headers.

use crate::limiter::{LimitSnapshot, MeterState};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::Full;
use std::time::Duration;

/// The body type of every answer.
pub(crate) type Body = Full<Bytes>;

/// An answer with `status`, a body and its content type.
pub(crate) fn with_body(
    status: u16,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON answer.
pub(crate) fn json(status: u16, body: &serde_json::Value) -> Response<Body> {
    with_body(status, "application/json", body.to_string())
}

/// The fields of an OpenAI error object.
pub(crate) struct ApiErrorBody<'a> {
    pub(crate) message: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
}

/// An answer with an OpenAI-shaped error body:
/// `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error(status: u16, body: ApiErrorBody<'_>) -> Response<Body> {
    json(
        status,
        &serde_json::json!({
            "error": {
                "message": body.message,
                "type": body.kind,
                "param": body.param,
                "code": body.code,
            }
        }),
    )
}

/// `400 invalid_request_error` about `param`.
pub(crate) fn invalid_request(param: Option<&str>, message: &str) -> Response<Body> {
    error(
        400,
        ApiErrorBody {
            message,
            kind: "invalid_request_error",
            param,
            code: None,
        },
    )
}

/// Sets a header from a string, skipping values that are not valid header text.
pub(crate) fn set_header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

/// Sets `retry-after` (whole seconds, rounded up) and `retry-after-ms` (rounded up).
pub(crate) fn set_retry_after(response: &mut Response<Body>, wait: Duration) {
    let millis = ceil_millis(wait);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(millis.div_ceil(1000)));
    response.headers_mut().insert(
        HeaderName::from_static("retry-after-ms"),
        HeaderValue::from(millis),
    );
}

/// Sets the `x-ratelimit-*` headers of the limits present in `snapshot`.
pub(crate) fn set_rate_limit_headers(response: &mut Response<Body>, snapshot: &LimitSnapshot) {
    if let Some(requests) = &snapshot.requests {
        set_meter_headers(
            response,
            requests,
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
        );
    }
    if let Some(tokens) = &snapshot.tokens {
        set_meter_headers(
            response,
            tokens,
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
        );
    }
}

fn set_meter_headers(response: &mut Response<Body>, state: &MeterState, names: [&'static str; 3]) {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static(names[0]),
        HeaderValue::from(state.limit),
    );
    headers.insert(
        HeaderName::from_static(names[1]),
        HeaderValue::from(state.remaining),
    );
    set_header(response, names[2], &openai_duration(state.reset));
}

/// A duration rounded up to whole milliseconds.
pub(crate) fn ceil_millis(wait: Duration) -> u64 {
    let millis = wait.as_millis() + u128::from(!wait.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(millis).unwrap_or(u64::MAX)
}

/// A duration in the Go-style format OpenAI uses in `x-ratelimit-reset-*`, rounded up to
/// milliseconds: `250ms` below a second, else `1s`, `1.5s`, `6m0s`, `1h2m3.004s`.
pub(crate) fn openai_duration(duration: Duration) -> String {
    let millis = ceil_millis(duration);
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let hours = millis / 3_600_000;
    let minutes = (millis / 60_000) % 60;
    let seconds = (millis / 1000) % 60;
    let fraction = millis % 1000;
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    text.push_str(&seconds.to_string());
    if fraction > 0 {
        let digits = format!("{fraction:03}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push('s');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_openai_format() {
        assert_eq!(openai_duration(Duration::ZERO), "0ms");
        assert_eq!(openai_duration(Duration::from_micros(249_001)), "250ms");
        assert_eq!(openai_duration(Duration::from_secs(1)), "1s");
        assert_eq!(openai_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(openai_duration(Duration::from_secs(360)), "6m0s");
        assert_eq!(
            openai_duration(Duration::from_millis(3_723_004)),
            "1h2m3.004s"
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        let mut response = with_body(429, "application/json", "");
        set_retry_after(&mut response, Duration::from_micros(300_500));
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["retry-after-ms"], "301");
        set_retry_after(&mut response, Duration::from_secs(2));
        assert_eq!(response.headers()["retry-after"], "2");
        assert_eq!(response.headers()["retry-after-ms"], "2000");
    }
}
