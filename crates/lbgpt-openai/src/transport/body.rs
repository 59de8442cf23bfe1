//! Turning answer bodies into values or typed errors: error objects, non-JSON pages, empty
//! bodies and success bodies that do not decode.

use super::headers;
use http::{HeaderMap, StatusCode};
use lbgpt_core::{ApiError, DecodeKind, Error};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::borrow::Cow;

/// The most characters of a body quoted in an error.
pub const EXCERPT_CHARS: usize = 200;

/// What replaces a secret found in a body.
const REDACTED: &str = "[REDACTED]";

/// At most [`EXCERPT_CHARS`] characters of `text`, whitespace runs collapsed to one space; a
/// cut excerpt ends with `…` (counted in the limit).
pub fn excerpt(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(EXCERPT_CHARS * 2));
    let mut count = 0;
    let mut pending_space = false;
    for c in text.trim().chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        let needed = usize::from(pending_space) + 1;
        if count + needed > EXCERPT_CHARS - 1 {
            // Room is left only for the ellipsis.
            out.push('…');
            return out;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
        count += needed;
    }
    out
}

/// The body as text with every occurrence of `secret` replaced, so that no excerpt or message
/// can quote it (even cut in half).
fn body_text<'a>(body: &'a [u8], secret: Option<&str>) -> Cow<'a, str> {
    let text = String::from_utf8_lossy(body);
    match secret {
        Some(secret) if !secret.is_empty() && text.contains(secret) => {
            Cow::Owned(text.replace(secret, REDACTED))
        }
        _ => text,
    }
}

/// Builds the [`ApiError`] of a non-success answer from its status, headers and body.
///
/// Understands OpenAI's `{"error": {"message", "type", "code", "param"}}` (a numeric `code`
/// becomes its decimal text), `{"error": "text"}`, flat bodies of compatible servers
/// (`{"message", "type", "code", "param"}`) and FastAPI's `{"detail": ...}`. Anything else
/// (HTML pages, plain text, an empty body) still yields an error whose message holds the
/// status text and an excerpt of the body. Headers give `retry_after`, `should_retry`, the
/// rate-limit state and the request id. `secret` is scrubbed from everything quoted.
pub fn api_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&str>,
) -> ApiError {
    let reason = status.canonical_reason().unwrap_or("unknown status");
    let text = body_text(body, secret);
    let mut error = ApiError::new(status.as_u16(), String::new());
    if text.trim().is_empty() {
        error.message = format!("{reason} (empty body)");
    } else {
        match serde_json::from_str::<Value>(&text) {
            Ok(value) => fill_from_json(&mut error, &value, reason),
            Err(_) => error.message = format!("{reason} (non-JSON body: {})", excerpt(&text)),
        }
    }
    if status.is_redirection() {
        if let Some(location) = headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        {
            error.message = format!(
                "{}; redirected to {location:?} (set the base URL to the final address)",
                error.message
            );
        }
    }
    error.retry_after = headers::retry_after(headers);
    error.should_retry = headers::should_retry(headers);
    error.rate_limit = headers::rate_limit(headers);
    error.request_id = headers::request_id(headers);
    error
}

fn fill_from_json(error: &mut ApiError, value: &Value, reason: &str) {
    let object = match value.get("error") {
        Some(Value::Object(inner)) => Some(inner),
        Some(Value::String(message)) if !message.is_empty() => {
            error.message = message.clone();
            return;
        }
        _ => value.as_object().filter(|top| top.contains_key("message")),
    };
    if let Some(object) = object {
        error.kind = label(object.get("type"));
        error.code = label(object.get("code"));
        error.param = label(object.get("param"));
        error.message = match object.get("message") {
            Some(Value::String(message)) if message.trim().is_empty() => reason.to_owned(),
            Some(Value::String(message)) => message.clone(),
            Some(Value::Null) | None => reason.to_owned(),
            Some(other) => excerpt(&other.to_string()),
        };
        return;
    }
    error.message = match value.get("detail") {
        Some(Value::String(detail)) if !detail.is_empty() => detail.clone(),
        Some(detail) if !detail.is_null() => excerpt(&detail.to_string()),
        _ => format!(
            "{reason} (unrecognised error body: {})",
            excerpt(&value.to_string())
        ),
    };
}

/// A string or number field as text; `null`, empty strings and other shapes give `None`.
fn label(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Decodes a success body into `T`.
///
/// A body that is not JSON (truncated, HTML, empty) gives [`Error::Decode`] with
/// [`DecodeKind::InvalidJson`]; JSON of the wrong shape gives
/// [`DecodeKind::UnexpectedShape`]. The error quotes an excerpt of the body with `secret`
/// scrubbed.
pub fn decode_success<T: DeserializeOwned>(
    status: StatusCode,
    body: &[u8],
    secret: Option<&str>,
) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|err| {
        let kind = if err.is_data() {
            DecodeKind::UnexpectedShape
        } else {
            DecodeKind::InvalidJson
        };
        let text = body_text(body, secret);
        Error::Decode {
            kind,
            status: status.as_u16(),
            message: if body.is_empty() {
                "empty body".to_owned()
            } else {
                err.to_string()
            },
            excerpt: excerpt(&text),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use lbgpt_core::ChatResponse;
    use std::time::Duration;

    fn error(status: u16, body: &str) -> ApiError {
        let status = StatusCode::from_u16(status).expect("status");
        api_error(
            status,
            &HeaderMap::new(),
            body.as_bytes(),
            Some("sk-secret-1234"),
        )
    }

    #[test]
    fn openai_error_object() {
        let e = error(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(e.status, 429);
        assert_eq!(e.message, "Rate limit reached");
        assert_eq!(e.kind.as_deref(), Some("requests"));
        assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
        assert_eq!(e.param, None);
    }

    #[test]
    fn numeric_code_and_param() {
        let e = error(
            400,
            r#"{"error":{"message":"bad","type":"invalid_request_error","param":"temperature","code":400}}"#,
        );
        assert_eq!(e.code.as_deref(), Some("400"));
        assert_eq!(e.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn flat_and_string_and_detail_bodies() {
        let flat = error(
            400,
            r#"{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}"#,
        );
        assert_eq!(flat.message, "too long");
        assert_eq!(flat.kind.as_deref(), Some("BadRequestError"));
        assert_eq!(flat.code.as_deref(), Some("400"));
        assert_eq!(
            error(404, r#"{"error":"model not found"}"#).message,
            "model not found"
        );
        assert_eq!(error(404, r#"{"detail":"Not Found"}"#).message, "Not Found");
        let odd = error(500, r#"{"oops":[1,2]}"#);
        assert!(
            odd.message.contains("Internal Server Error"),
            "{}",
            odd.message
        );
        assert!(odd.message.contains("oops"), "{}", odd.message);
    }

    #[test]
    fn error_object_without_message_uses_status_text() {
        let e = error(503, r#"{"error":{"message":"","code":"overloaded"}}"#);
        assert_eq!(e.message, "Service Unavailable");
        assert_eq!(e.code.as_deref(), Some("overloaded"));
    }

    #[test]
    fn html_and_empty_bodies() {
        let page = format!(
            "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "x".repeat(500)
        );
        let e = error(502, &page);
        assert!(
            e.message.starts_with("Bad Gateway (non-JSON body: <html>"),
            "{}",
            e.message
        );
        assert!(
            e.message.chars().count() <= EXCERPT_CHARS + 40,
            "{}",
            e.message
        );
        let e = error(503, "");
        assert_eq!(e.message, "Service Unavailable (empty body)");
        let e = error(599, "  \n ");
        assert_eq!(e.message, "unknown status (empty body)");
    }

    #[test]
    fn secrets_are_scrubbed_from_messages_and_excerpts() {
        let e = error(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-secret-1234.","code":"invalid_api_key"}}"#,
        );
        assert!(!e.message.contains("sk-secret-1234"), "{}", e.message);
        assert!(e.message.contains("[REDACTED]"));
        // A key right at the excerpt's edge must not survive half cut.
        let body = format!("{}sk-secret-1234", "y".repeat(EXCERPT_CHARS - 8));
        let e = error(502, &body);
        assert!(!e.message.contains("sk-sec"), "{}", e.message);
    }

    #[test]
    fn headers_fill_the_error() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        h.insert("x-request-id", HeaderValue::from_static("req_9"));
        h.insert(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static("0"),
        );
        let e = api_error(StatusCode::TOO_MANY_REQUESTS, &h, b"{}", None);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(e.should_retry, Some(false));
        assert_eq!(e.request_id.as_deref(), Some("req_9"));
        assert_eq!(e.rate_limit.and_then(|r| r.remaining_requests), Some(0));
    }

    #[test]
    fn excerpt_limits_and_collapses() {
        assert_eq!(excerpt("  a \n\n b  "), "a b");
        let long = excerpt(&"é".repeat(1000));
        assert_eq!(long.chars().count(), EXCERPT_CHARS);
        assert!(long.ends_with('…'));
        assert_eq!(
            excerpt(&"z".repeat(EXCERPT_CHARS - 1)).chars().count(),
            EXCERPT_CHARS - 1
        );
    }

    #[test]
    fn decode_kinds() {
        let ok = StatusCode::OK;
        let invalid = decode_success::<ChatResponse>(ok, br#"{"id":"x","choices":[{"#, None);
        assert!(matches!(
            invalid,
            Err(Error::Decode {
                kind: DecodeKind::InvalidJson,
                status: 200,
                ..
            })
        ));
        let empty = decode_success::<ChatResponse>(ok, b"", None);
        assert!(matches!(
            empty,
            Err(Error::Decode {
                kind: DecodeKind::InvalidJson,
                ..
            })
        ));
        let shape = decode_success::<ChatResponse>(ok, br#"{"choices":"none"}"#, None);
        assert!(matches!(
            shape,
            Err(Error::Decode {
                kind: DecodeKind::UnexpectedShape,
                ..
            })
        ));
        let scrubbed =
            decode_success::<ChatResponse>(ok, b"oops sk-secret-1234", Some("sk-secret-1234"));
        let text = format!("{:?}", scrubbed.expect_err("not JSON"));
        assert!(!text.contains("sk-secret-1234"), "{text}");
    }
}
