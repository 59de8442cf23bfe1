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
    /// How a semantic cache layer treats this request; `None` leaves it to the layer's
    /// configuration. The semantic layer also honours [`RequestOptions::cache`] (bypass,
    /// refresh, no-store).
    pub semantic: Option<SemanticOptions>,
    /// Whether the provider service keeps the answer's body, as it came off the wire, in
    /// [`ResponseMeta::body`](crate::ResponseMeta::body). Set by cache layers that store
    /// answers (storing the provider's bytes costs nothing, serialising the answer again
    /// does); they take the body out before the answer leaves them. Off by default: the body
    /// would double the memory each answer holds.
    pub keep_body: bool,
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

    /// Sets how a semantic cache layer treats the request.
    pub fn semantic(mut self, options: SemanticOptions) -> Self {
        self.semantic = Some(options);
        self
    }
}

/// Per-request settings of a semantic cache layer (`lbgpt-semantic`).
///
/// ```
/// use lbgpt_core::{ChatMessage, ChatRequest, EmbedMethod, SemanticOptions};
///
/// let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hi")])
///     .semantic(SemanticOptions::new().method(EmbedMethod::UserOnly));
/// assert_eq!(request.options.semantic.and_then(|s| s.method), Some(EmbedMethod::UserOnly));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SemanticOptions {
    /// Which text is embedded; `None`: the layer's configured method.
    pub method: Option<EmbedMethod>,
    /// Whether a request with tools or tool calls, images or other non-text parts, or `n > 1`
    /// may be answered semantically; `None`: the layer's configuration (by default no).
    pub allow_unsafe: Option<bool>,
}

impl SemanticOptions {
    /// No settings: the layer's configuration applies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which text is embedded.
    pub fn method(mut self, method: EmbedMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Sets whether requests with tools, images or `n > 1` may be answered semantically.
    pub fn allow_unsafe(mut self, allow: bool) -> Self {
        self.allow_unsafe = Some(allow);
        self
    }
}

/// Which text of a request a semantic cache embeds (and so compares); the rest of the request
/// must be identical for two requests to share an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmbedMethod {
    /// The last user message's text (the default): earlier turns and the system prompt must
    /// match exactly.
    #[default]
    LastUser,
    /// Every user message, role-prefixed and joined (the seed's `user_only`).
    UserOnly,
    /// Every message, role-prefixed and joined (the seed's `all`).
    All,
    /// The system and developer messages, role-prefixed and joined (the seed's
    /// `system_only`): the user messages must match exactly.
    SystemOnly,
}

impl EmbedMethod {
    /// The method's name in configuration files: `last_user`, `user_only`, `all`,
    /// `system_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedMethod::LastUser => "last_user",
            EmbedMethod::UserOnly => "user_only",
            EmbedMethod::All => "all",
            EmbedMethod::SystemOnly => "system_only",
        }
    }

    /// The method named `name` (see [`EmbedMethod::as_str`]).
    pub fn from_name(name: &str) -> Option<EmbedMethod> {
        match name {
            "last_user" => Some(EmbedMethod::LastUser),
            "user_only" => Some(EmbedMethod::UserOnly),
            "all" => Some(EmbedMethod::All),
            "system_only" => Some(EmbedMethod::SystemOnly),
            _ => None,
        }
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
