//! [`SemanticConfig`]: how the semantic cache layer decides.

use crate::FalseHitGuard;
use lbgpt_cache::CacheConfig;
use lbgpt_core::{CacheMode, ChatRequest, EmbedMethod};

/// Settings of a [`SemanticCacheLayer`](crate::SemanticCacheLayer).
///
/// ```
/// use lbgpt_cache::CacheConfig;
/// use lbgpt_core::EmbedMethod;
/// use lbgpt_semantic::{FalseHitGuard, SemanticConfig};
///
/// let config = SemanticConfig::new()
///     .threshold(0.9)
///     .method(EmbedMethod::UserOnly)
///     .guard(FalseHitGuard::off())
///     .scope_config(CacheConfig::new().namespace("project-a"));
/// assert_eq!(config.get_threshold(), 0.9);
/// ```
#[derive(Debug, Clone)]
pub struct SemanticConfig {
    threshold: f32,
    method: EmbedMethod,
    guard: FalseHitGuard,
    allow_unsafe: bool,
    candidates: usize,
    store: bool,
    default_mode: CacheMode,
    scope: CacheConfig,
}

impl Default for SemanticConfig {
    fn default() -> Self {
        SemanticConfig {
            threshold: SemanticConfig::DEFAULT_THRESHOLD,
            method: EmbedMethod::LastUser,
            guard: FalseHitGuard::default(),
            allow_unsafe: false,
            candidates: 4,
            store: true,
            default_mode: CacheMode::Use,
            scope: CacheConfig::default(),
        }
    }
}

impl SemanticConfig {
    /// The default similarity threshold, chosen on the project's evaluation set with the
    /// default guard and the bundled all-MiniLM-L6-v2 model (see `docs/semantic-cache.md`).
    pub const DEFAULT_THRESHOLD: f32 = 0.85;

    /// The defaults: threshold [`DEFAULT_THRESHOLD`](Self::DEFAULT_THRESHOLD), method
    /// [`EmbedMethod::LastUser`], every guard check on, requests with tools, images or `n > 1`
    /// not served, 4 candidates checked, new answers stored, mode [`CacheMode::Use`], default
    /// scope configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cosine similarity from which a cached request may answer (0 to 1).
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// Which text is embedded, for requests that do not choose.
    pub fn method(mut self, method: EmbedMethod) -> Self {
        self.method = method;
        self
    }

    /// The false-hit guard's checks ([`FalseHitGuard::off`] to disable it).
    pub fn guard(mut self, guard: FalseHitGuard) -> Self {
        self.guard = guard;
        self
    }

    /// Whether requests with tools or tool calls, non-text parts or `n > 1` may be answered
    /// semantically (default false).
    pub fn allow_unsafe(mut self, allow: bool) -> Self {
        self.allow_unsafe = allow;
        self
    }

    /// How many nearest neighbours above the threshold are checked by the guard before
    /// giving up (default 4).
    pub fn candidates(mut self, k: usize) -> Self {
        self.candidates = k;
        self
    }

    /// Whether answers from upstream are added to the index (default true). With an exact
    /// cache in front, they are then written to both.
    pub fn store(mut self, store: bool) -> Self {
        self.store = store;
        self
    }

    /// The mode of requests whose [`options.cache`](lbgpt_core::RequestOptions::cache) is
    /// unset (default [`CacheMode::Use`]).
    pub fn default_mode(mut self, mode: CacheMode) -> Self {
        self.default_mode = mode;
        self
    }

    /// The exact cache's configuration whose key form, namespace, family and model aliases
    /// the scope uses (give the same one as the exact cache layer).
    pub fn scope_config(mut self, config: CacheConfig) -> Self {
        self.scope = config;
        self
    }

    /// The threshold.
    pub fn get_threshold(&self) -> f32 {
        self.threshold
    }

    /// The configured method.
    pub fn get_method(&self) -> EmbedMethod {
        self.method
    }

    /// The guard.
    pub fn get_guard(&self) -> FalseHitGuard {
        self.guard
    }

    /// The scope configuration.
    pub fn get_scope_config(&self) -> &CacheConfig {
        &self.scope
    }

    /// Whether new answers are stored.
    pub fn get_store(&self) -> bool {
        self.store
    }

    /// Candidates checked per lookup.
    pub fn get_candidates(&self) -> usize {
        self.candidates
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), crate::SemanticError> {
        if !(0.0..=1.0).contains(&self.threshold) || self.threshold.is_nan() {
            return Err(crate::SemanticError::config(
                "threshold",
                "must be between 0 and 1",
            ));
        }
        if self.candidates == 0 || self.candidates > 1024 {
            return Err(crate::SemanticError::config(
                "candidates",
                "must be between 1 and 1024",
            ));
        }
        Ok(())
    }

    /// The mode that applies to `request`: its own, else the default; streamed requests
    /// bypass.
    pub fn mode_for(&self, request: &ChatRequest) -> CacheMode {
        if request.stream == Some(true) {
            return CacheMode::Bypass;
        }
        request.options.cache.unwrap_or(self.default_mode)
    }

    /// The method that applies to `request`: its own, else the configured one.
    pub fn method_for(&self, request: &ChatRequest) -> EmbedMethod {
        request
            .options
            .semantic
            .and_then(|s| s.method)
            .unwrap_or(self.method)
    }

    /// Whether `request` may be served despite tools, images or `n > 1`.
    pub fn allow_unsafe_for(&self, request: &ChatRequest) -> bool {
        request
            .options
            .semantic
            .and_then(|s| s.allow_unsafe)
            .unwrap_or(self.allow_unsafe)
    }
}
