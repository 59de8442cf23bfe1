//! Per-request settings for lbgpt's own layers. They travel with the request but are never
//! sent to a provider and never part of a cache key.

/// Settings a request carries for lbgpt's layers, not for the provider.
///
/// [`ChatRequest::options`](crate::ChatRequest::options) holds one; it is skipped by serde, so
/// it never reaches the wire body, and it is not part of any cache key. Layers that do not
/// know a setting ignore it.
///
/// ```
/// use lbgpt_core::{CacheMode, ChatMessage, ChatRequest};
///
/// let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hi")])
///     .cache_mode(CacheMode::Refresh);
/// assert_eq!(request.options.cache, Some(CacheMode::Refresh));
/// // Not part of the body sent to the provider:
/// let body = serde_json::to_value(&request).unwrap();
/// assert!(body.get("options").is_none());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RequestOptions {
    /// How the exact cache treats this request; `None` leaves it to the cache's configuration
    /// (by default [`CacheMode::Use`]).
    pub cache: Option<CacheMode>,
}

impl RequestOptions {
    /// No settings: every layer uses its configured defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how the exact cache treats the request.
    pub fn cache(mut self, mode: CacheMode) -> Self {
        self.cache = Some(mode);
        self
    }
}

/// How a cache layer treats one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheMode {
    /// Read the cache; on a miss call the provider and store a successful answer.
    #[default]
    Use,
    /// Skip the cache entirely: neither read nor write (and no sharing of in-flight calls).
    Bypass,
    /// Don't read, but store the fresh answer, replacing what was cached.
    Refresh,
    /// Read the cache, but don't store a fresh answer made for this request.
    NoStore,
}

impl CacheMode {
    /// Whether the cache is read for such a request.
    pub fn reads(self) -> bool {
        matches!(self, CacheMode::Use | CacheMode::NoStore)
    }

    /// Whether a fresh answer to such a request is stored.
    pub fn writes(self) -> bool {
        matches!(self, CacheMode::Use | CacheMode::Refresh)
    }
}
