//! The bounded log of requests the simulator received.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// The value that replaces credentials in [`SeenRequest::headers`].
pub const REDACTED: &str = "<redacted>";

/// Headers whose values are credentials and are logged as [`REDACTED`].
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "ocp-apim-subscription-key",
];

/// One request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SeenRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Every header (lower-case names, in arrival order); credentials are [`REDACTED`].
    pub headers: Vec<(String, String)>,
    /// The id of the key the request authenticated with, if it was a known key.
    pub key_id: Option<String>,
    /// The body as JSON; `Null` when it was empty or not JSON.
    pub body: serde_json::Value,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw value of query parameter `name` (not percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    pub(crate) fn new(
        parts: &http::request::Parts,
        key_id: Option<String>,
        body: serde_json::Value,
    ) -> Self {
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                let name = name.as_str().to_owned();
                let value = if SECRET_HEADERS.contains(&name.as_str()) {
                    REDACTED.to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name, value)
            })
            .collect();
        SeenRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
            key_id,
            body,
        }
    }
}

/// A ring of the most recent requests.
#[derive(Debug)]
pub(crate) struct SeenLog {
    capacity: usize,
    entries: Mutex<VecDeque<SeenRequest>>,
}

impl SeenLog {
    pub(crate) fn new(capacity: usize) -> Self {
        SeenLog {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
        }
    }

    /// Whether the log keeps anything (a capacity of 0 turns it off).
    pub(crate) fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    pub(crate) fn push(&self, request: SeenRequest) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back(request);
    }

    pub(crate) fn snapshot(&self) -> Vec<SeenRequest> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().cloned().collect()
    }
}
