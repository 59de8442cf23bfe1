//! [`CacheConfig`]: what the cache layer keys on and how it treats requests.

use crate::CacheKey;
use lbgpt_core::{CacheMode, ChatRequest, CompletionRequest, EmbeddingRequest};
use std::collections::HashMap;
use std::time::Duration;

/// Settings of a [`CacheLayer`](crate::CacheLayer) or an
/// [`EmbeddingCacheLayer`](crate::EmbeddingCacheLayer): key scope, lifetime of entries,
/// defaults.
///
/// ```
/// use lbgpt_cache::CacheConfig;
/// use std::time::Duration;
///
/// let config = CacheConfig::new()
///     .namespace("project-a")
///     .family("azure")
///     .model_alias("gpt-4o-2024-08-06", "gpt-4o")
///     .ttl(Duration::from_secs(7 * 24 * 3600));
/// assert_eq!(config.get_namespace(), "project-a");
/// ```
#[derive(Debug, Clone)]
pub struct CacheConfig {
    namespace: String,
    family: String,
    aliases: HashMap<String, String>,
    ttl: Option<Duration>,
    mode: CacheMode,
    store_timeout: Option<Duration>,
    coalesce: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            namespace: String::new(),
            family: String::new(),
            aliases: HashMap::new(),
            ttl: None,
            mode: CacheMode::Use,
            store_timeout: Some(CacheConfig::DEFAULT_STORE_TIMEOUT),
            coalesce: true,
        }
    }
}

impl CacheConfig {
    /// How long the layer waits for one store operation by default before treating it as
    /// failed (a miss for a lookup, a skipped write for a store).
    pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

    /// The defaults: empty namespace and family, no aliases, no TTL (entries live as long as
    /// the store keeps them), mode [`CacheMode::Use`], store timeout
    /// [`DEFAULT_STORE_TIMEOUT`](Self::DEFAULT_STORE_TIMEOUT), coalescing on.
    pub fn new() -> Self {
        Self::default()
    }

    /// A namespace that is part of every key, so projects sharing one store never share
    /// answers.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The provider family that is part of every key (e.g. `"openai"`, `"azure"`), for stacks
    /// whose providers may answer one request differently. Empty by default.
    pub fn family(mut self, family: impl Into<String>) -> Self {
        self.family = family.into();
        self
    }

    /// Keys requests for `model` as if they named `alias`, so that two names of one model
    /// (two deployments, a dated and an undated name) share entries. Like the seed's
    /// `model_name_cache_alias`.
    pub fn model_alias(mut self, model: impl Into<String>, alias: impl Into<String>) -> Self {
        self.aliases.insert(model.into(), alias.into());
        self
    }

    /// How long a stored answer is served; `None` (the default) leaves it to the store.
    pub fn ttl(mut self, ttl: impl Into<Option<Duration>>) -> Self {
        self.ttl = ttl.into();
        self
    }

    /// The mode of requests that do not set one in their `options`
    /// ([`ChatRequest::options`](lbgpt_core::ChatRequest::options), ...) (default [`CacheMode::Use`];
    /// e.g. [`CacheMode::Refresh`] to renew a whole run's entries).
    pub fn default_mode(mut self, mode: CacheMode) -> Self {
        self.mode = mode;
        self
    }

    /// How long one store operation may take before the layer gives up on it (a miss, or a
    /// skipped write); `None` waits as long as the store takes.
    pub fn store_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.store_timeout = timeout.into();
        self
    }

    /// Whether identical requests in flight at the same time share one upstream call (default
    /// true).
    pub fn coalesce(mut self, coalesce: bool) -> Self {
        self.coalesce = coalesce;
        self
    }

    /// The namespace.
    pub fn get_namespace(&self) -> &str {
        &self.namespace
    }

    /// The provider family.
    pub fn get_family(&self) -> &str {
        &self.family
    }

    /// The alias keys use for `model`: the configured alias, or `model` itself.
    pub fn alias_of<'a>(&'a self, model: &'a str) -> &'a str {
        self.aliases.get(model).map_or(model, String::as_str)
    }

    /// The TTL given to stored answers.
    pub fn get_ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// The mode of requests that set none.
    pub fn get_default_mode(&self) -> CacheMode {
        self.mode
    }

    /// The timeout of one store operation.
    pub fn get_store_timeout(&self) -> Option<Duration> {
        self.store_timeout
    }

    /// Whether identical in-flight requests are coalesced.
    pub fn get_coalesce(&self) -> bool {
        self.coalesce
    }

    /// The mode that applies to `request`: its own, else the default; a streamed request
    /// (`stream: true`) always bypasses the cache.
    pub fn mode_for(&self, request: &ChatRequest) -> CacheMode {
        if request.stream == Some(true) {
            return CacheMode::Bypass;
        }
        request.options.cache.unwrap_or(self.mode)
    }

    /// The key of `request` under this configuration (see [`crate::key`] for the format).
    ///
    /// `None` only if the request cannot be serialised to JSON, which its types make
    /// impossible in practice; the layer then passes the request through uncached.
    pub fn key_for(&self, request: &ChatRequest) -> Option<CacheKey> {
        let model = self.alias_of(&request.model);
        CacheKey::derive(request, &self.namespace, &self.family, model).ok()
    }

    /// The mode that applies to an embedding request: its own
    /// ([`EmbeddingRequest::options`]), else the default.
    pub fn embedding_mode_for(&self, request: &EmbeddingRequest) -> CacheMode {
        request.options.cache.unwrap_or(self.mode)
    }

    /// The keys of every input of an embedding request under this configuration, in input
    /// order (see "Embedding keys" in [`crate::key`]): inputs that are equal, in this request
    /// or any other with the same other fields, have equal keys.
    ///
    /// `None` only if the request cannot be serialised to JSON (impossible in practice); the
    /// embedding cache then passes the request through uncached.
    pub fn embedding_keys_for(&self, request: &EmbeddingRequest) -> Option<Vec<CacheKey>> {
        let model = self.alias_of(&request.model);
        CacheKey::derive_embeddings(request, &self.namespace, &self.family, model).ok()
    }

    /// The mode that applies to a legacy completions request: its own
    /// ([`CompletionRequest::options`]), else the default; a streamed request
    /// (`stream: true`) always bypasses the cache.
    pub fn completion_mode_for(&self, request: &CompletionRequest) -> CacheMode {
        if request.stream == Some(true) {
            return CacheMode::Bypass;
        }
        request.options.cache.unwrap_or(self.mode)
    }

    /// The key of a legacy completions request under this configuration (see "Completion
    /// keys" in [`crate::key`]): one key for the whole request, whatever number of prompts
    /// it holds.
    ///
    /// `None` only if the request cannot be serialised to JSON (impossible in practice); the
    /// layer then passes the request through uncached.
    pub fn completion_key_for(&self, request: &CompletionRequest) -> Option<CacheKey> {
        let model = self.alias_of(&request.model);
        CacheKey::derive_completion(request, &self.namespace, &self.family, model).ok()
    }
}
