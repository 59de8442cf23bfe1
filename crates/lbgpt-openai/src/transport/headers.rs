//! Reading the provider headers that matter: waits, rate limits, retry verdicts, request ids.

use super::duration::{parse_millis, parse_reset_duration, parse_seconds};
use http::{HeaderMap, HeaderName};
use lbgpt_core::RateLimitInfo;
use std::time::{Duration, SystemTime};

/// `retry-after-ms`: OpenAI's wait in milliseconds.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";
/// `x-ms-retry-after-ms`: Azure's wait in milliseconds.
pub const X_MS_RETRY_AFTER_MS: &str = "x-ms-retry-after-ms";
/// `x-should-retry`: the server's own verdict on retrying.
pub const X_SHOULD_RETRY: &str = "x-should-retry";
/// `x-request-id`: OpenAI's request id.
pub const X_REQUEST_ID: &str = "x-request-id";
/// `apim-request-id`: Azure's request id.
pub const APIM_REQUEST_ID: &str = "apim-request-id";

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// How long the server asks to wait: `retry-after-ms`, then `x-ms-retry-after-ms` (both in
/// milliseconds, fractions allowed), then `retry-after` (seconds, fractions allowed, or an
/// HTTP date; a date in the past means no wait). Unparseable values are skipped.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] with an explicit "now" for HTTP dates.
pub fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    for name in [RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS] {
        if let Some(wait) = header_str(headers, name).and_then(parse_millis) {
            return Some(wait);
        }
    }
    let value = header_str(headers, http::header::RETRY_AFTER.as_str())?;
    if let Some(wait) = parse_seconds(value) {
        return Some(wait);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `x-should-retry: true|false`, when present and readable.
pub fn should_retry(headers: &HeaderMap) -> Option<bool> {
    let value = header_str(headers, X_SHOULD_RETRY)?;
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The provider's request id: `x-request-id`, else `apim-request-id`.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    [&REQUEST_ID_NAME, &APIM_REQUEST_ID_NAME]
        .into_iter()
        .find_map(|name| headers.get(name)?.to_str().ok().map(str::trim))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

const REQUEST_ID_NAME: HeaderName = HeaderName::from_static(X_REQUEST_ID);
const APIM_REQUEST_ID_NAME: HeaderName = HeaderName::from_static(APIM_REQUEST_ID);

/// The common prefix of the rate-limit headers.
const RATE_LIMIT_PREFIX: &str = "x-ratelimit-";

/// The `x-ratelimit-*` headers (limit, remaining and reset, for requests and tokens), or
/// `None` when none of them is present and readable.
///
/// One pass over the headers (no lookup per header name), so an answer without these headers
/// costs next to nothing. When a header appears more than once, its first value counts.
pub fn rate_limit(headers: &HeaderMap) -> Option<RateLimitInfo> {
    let mut info = RateLimitInfo::default();
    // Bit i set: field i was seen already (only its first value counts).
    let mut seen = 0u8;
    for (name, value) in headers {
        let Some(field) = name.as_str().strip_prefix(RATE_LIMIT_PREFIX) else {
            continue;
        };
        let bit = match field {
            "limit-requests" => 0,
            "limit-tokens" => 1,
            "remaining-requests" => 2,
            "remaining-tokens" => 3,
            "reset-requests" => 4,
            "reset-tokens" => 5,
            _ => continue,
        };
        if seen & (1 << bit) != 0 {
            continue;
        }
        seen |= 1 << bit;
        let Some(value) = value.to_str().ok().map(str::trim) else {
            continue;
        };
        let count = || value.parse::<u64>().ok();
        match bit {
            0 => info.limit_requests = count(),
            1 => info.limit_tokens = count(),
            2 => info.remaining_requests = count(),
            3 => info.remaining_tokens = count(),
            4 => info.reset_requests = parse_reset_duration(value),
            _ => info.reset_tokens = parse_reset_duration(value),
        }
    }
    (!info.is_empty()).then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                *name,
                HeaderValue::from_str(value).expect("test header value"),
            );
        }
        map
    }

    #[test]
    fn retry_after_prefers_milliseconds() {
        let h = headers(&[("retry-after", "2"), ("retry-after-ms", "1500")]);
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let h = headers(&[("retry-after", "2"), ("x-ms-retry-after-ms", "750")]);
        assert_eq!(retry_after(&h), Some(Duration::from_millis(750)));
        let h = headers(&[
            ("retry-after-ms", "100"),
            ("x-ms-retry-after-ms", "750"),
            ("retry-after", "2"),
        ]);
        assert_eq!(retry_after(&h), Some(Duration::from_millis(100)));
    }

    #[test]
    fn retry_after_seconds_fractional_and_garbage() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0.5")])),
            Some(Duration::from_millis(500))
        );
        // A broken millisecond header falls through to the next one.
        let h = headers(&[("retry-after-ms", "soon"), ("retry-after", "4")]);
        assert_eq!(retry_after(&h), Some(Duration::from_secs(4)));
        assert_eq!(retry_after(&headers(&[("retry-after", "later")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("date");
        let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")]);
        assert_eq!(retry_after_at(&h, now), Some(Duration::from_secs(30)));
        let past = headers(&[("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT")]);
        assert_eq!(retry_after_at(&past, now), Some(Duration::ZERO));
    }

    #[test]
    fn should_retry_values() {
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "true")])),
            Some(true)
        );
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "FALSE")])),
            Some(false)
        );
        assert_eq!(should_retry(&headers(&[("x-should-retry", "maybe")])), None);
        assert_eq!(should_retry(&HeaderMap::new()), None);
    }

    #[test]
    fn request_id_openai_then_azure() {
        assert_eq!(
            request_id(&headers(&[
                ("x-request-id", "req_1"),
                ("apim-request-id", "a")
            ])),
            Some("req_1".to_owned())
        );
        assert_eq!(
            request_id(&headers(&[("apim-request-id", "abc-123")])),
            Some("abc-123".to_owned())
        );
        assert_eq!(request_id(&HeaderMap::new()), None);
    }

    #[test]
    fn rate_limit_headers() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-remaining-requests", "499"),
            ("x-ratelimit-remaining-tokens", "29000"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        let info = rate_limit(&h).expect("rate limit info");
        assert_eq!(info.limit_requests, Some(500));
        assert_eq!(info.limit_tokens, Some(30_000));
        assert_eq!(info.remaining_requests, Some(499));
        assert_eq!(info.remaining_tokens, Some(29_000));
        assert_eq!(info.reset_requests, Some(Duration::from_millis(120)));
        assert_eq!(info.reset_tokens, Some(Duration::from_secs(360)));
    }

    #[test]
    fn rate_limit_takes_the_first_of_repeated_headers_and_ignores_others() {
        let mut h = headers(&[
            ("x-ratelimit-remaining-requests", "7"),
            ("x-ratelimit-something-else", "1"),
            ("x-ratelimit-", "2"),
            ("content-type", "application/json"),
        ]);
        h.append(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static("8"),
        );
        let info = rate_limit(&h).expect("rate limit info");
        assert_eq!(info.remaining_requests, Some(7));
        assert_eq!(info, {
            let mut only = RateLimitInfo::default();
            only.remaining_requests = Some(7);
            only
        });
        // Header names are case-insensitive on the wire; the map stores them in lower case.
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_bytes(b"X-RateLimit-Limit-Tokens").expect("valid name"),
            HeaderValue::from_static(" 900 "),
        );
        assert_eq!(rate_limit(&h).and_then(|i| i.limit_tokens), Some(900));
    }

    #[test]
    fn rate_limit_partial_and_absent() {
        let h = headers(&[("x-ratelimit-remaining-tokens", "42")]);
        let info = rate_limit(&h).expect("partial info");
        assert_eq!(info.remaining_tokens, Some(42));
        assert_eq!(info.limit_tokens, None);
        assert_eq!(rate_limit(&HeaderMap::new()), None);
        assert_eq!(
            rate_limit(&headers(&[("x-ratelimit-limit-requests", "lots")])),
            None
        );
    }
}
