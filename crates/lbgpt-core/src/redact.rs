//! [`redact_url`]: URLs (base URLs, proxies) made safe to print in logs, errors and `Debug`.

/// A URL safe to print: the credentials of its authority (`user:password@`) replaced by
/// `***`, and its query and fragment (which may hold a key, `?key=...`) by `?***` or `#***`;
/// the scheme, host, port and path unchanged.
///
/// ```
/// assert_eq!(
///     lbgpt_core::redact_url("http://me:s3cret@proxy.internal:3128"),
///     "http://***@proxy.internal:3128"
/// );
/// assert_eq!(lbgpt_core::redact_url("socks5://proxy:1080"), "socks5://proxy:1080");
/// assert_eq!(
///     lbgpt_core::redact_url("https://gateway.internal/v1?key=s3cret#part"),
///     "https://gateway.internal/v1?***"
/// );
/// assert_eq!(lbgpt_core::redact_url("https://host/v1#s3cret"), "https://host/v1#***");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let mut shown = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        shown.push_str(scheme);
        shown.push_str("://");
    }
    match authority.rfind('@') {
        Some(at) => {
            shown.push_str("***");
            shown.push_str(&authority[at..]);
        }
        None => shown.push_str(authority),
    }
    match after.find(['?', '#']) {
        Some(cut) => {
            shown.push_str(&after[..cut]);
            shown.push_str(if after[cut..].starts_with('?') {
                "?***"
            } else {
                "#***"
            });
        }
        None => shown.push_str(after),
    }
    shown
}
