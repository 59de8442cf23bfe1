//! [`ChatGpt`]: OpenAI, or any OpenAI-compatible server, with retries and batching.

use crate::caching::{
    cache_builder_methods, forward_cache_api, single_provider, CacheSetting, SingleProvider,
    KIND_OPENAI,
};
use crate::endpoint_clients::{forward_endpoint_api, EndpointClients};
use crate::forward::forward_batch_api;
use crate::semantic_caching::{forward_semantic_api, semantic_builder_methods, SemanticSetting};
use crate::settings::{batch_settings_methods, BatchSettings};
use crate::{Lbgpt, MaybeCached, MaybeSemantic};
use lbgpt_balance::retry::Retry;
use lbgpt_cache::CacheLayer;
use lbgpt_core::Error;
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_semantic::SemanticCacheLayer;
use std::time::Duration;

/// The stack inside a [`ChatGpt`]: the exact cache and the semantic cache (each when one was
/// configured) over the retry layer over the OpenAI service.
pub type ChatGptService = MaybeCached<MaybeSemantic<Retry<OpenAiService>>>;

/// A client for OpenAI's chat completions or any OpenAI-compatible server (vLLM, llama.cpp,
/// Ollama, LiteLLM, ...): `Lbgpt<Retry<OpenAiService>>` (with optional exact and semantic
/// caches in front) under a seed-style name.
///
/// ```no_run
/// # async fn run() -> Result<(), lbgpt::Error> {
/// use lbgpt::{ChatGpt, ChatMessage, ChatRequest};
///
/// let gpt = ChatGpt::new("sk-...")?;
/// let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
/// println!("{:?}", gpt.chat_completion(request).await?.first_text());
/// # Ok(()) }
/// ```
///
/// With every setting ([`ChatGpt::builder`]):
///
/// ```no_run
/// # fn run() -> Result<(), lbgpt::Error> {
/// use std::time::Duration;
///
/// let gpt = lbgpt::ChatGpt::builder()
///     .api_key("sk-...")
///     .base_url("http://localhost:8000/v1")    // any OpenAI-compatible server
///     .organization("org-1")
///     .project("proj-1")
///     .request_timeout(Duration::from_secs(120))
///     .header("x-team", "research")
///     .name("local-vllm")                      // shown in ResponseMeta::member
///     .max_concurrent_requests(16)
///     .max_attempts(5)
///     .deadline(Duration::from_secs(300))
///     .build()?;
/// # Ok(()) }
/// ```
///
/// With an exact cache on disk, so a re-run pays only for what changed:
///
/// ```no_run
/// # async fn run(requests: Vec<lbgpt::ChatRequest>) -> Result<(), lbgpt::Error> {
/// use lbgpt::cache::{CacheConfig, DiskStore};
/// use std::sync::Arc;
///
/// let gpt = lbgpt::ChatGpt::builder()
///     .api_key("sk-...")
///     .cache_store(
///         Arc::new(DiskStore::open(".lbgpt-cache")?),
///         CacheConfig::new().namespace("my-project"),
///     )
///     .build()?;
/// let results = gpt.chat_completion_list(requests).await;
/// if let Some(stats) = gpt.cache_stats() {
///     println!("{} answered from the cache, {} from OpenAI", stats.hits, stats.misses);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ChatGpt {
    client: Lbgpt<ChatGptService>,
    endpoints: EndpointClients<OpenAiService, OpenAiService>,
    cache: Option<CacheLayer>,
    semantic: Option<SemanticCacheLayer>,
}

impl ChatGpt {
    /// A client for `https://api.openai.com/v1` with this API key and the default settings
    /// (5 requests at once, 10 attempts).
    ///
    /// Fails with [`Error::Config`] if the key cannot be sent in a header or the HTTP client
    /// cannot be built.
    pub fn new(api_key: impl Into<String>) -> Result<Self, Error> {
        ChatGpt::builder().api_key(api_key).build()
    }

    /// A builder with the defaults: the API key from `OPENAI_API_KEY` when set, base URL
    /// `https://api.openai.com/v1`, 5 requests at once, the default retry policy.
    pub fn builder() -> ChatGptBuilder {
        ChatGptBuilder {
            config: OpenAiConfig::new(),
            settings: BatchSettings::default(),
            cache: CacheSetting::Off,
            semantic: SemanticSetting::Off,
        }
    }

    forward_batch_api!(ChatGptService);
    forward_endpoint_api!(OpenAiService, OpenAiService);
    forward_cache_api!();
    forward_semantic_api!();
}

impl From<ChatGpt> for Lbgpt<ChatGptService> {
    fn from(gpt: ChatGpt) -> Self {
        gpt.client
    }
}

/// Builds a [`ChatGpt`]; every setter takes and returns the builder, [`build`](Self::build)
/// checks everything.
#[derive(Debug, Clone)]
#[must_use = "call .build() to get a ChatGpt"]
pub struct ChatGptBuilder {
    config: OpenAiConfig,
    settings: BatchSettings,
    cache: CacheSetting,
    semantic: SemanticSetting,
}

impl ChatGptBuilder {
    /// The API key, sent as `Authorization: Bearer KEY`; kept secret, never shown.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.config = self.config.api_key(key);
        self
    }

    /// Sends no API key, even when `OPENAI_API_KEY` is set (for servers that need none).
    pub fn without_api_key(mut self) -> Self {
        self.config = self.config.without_api_key();
        self
    }

    /// The API base URL (default `https://api.openai.com/v1`), e.g.
    /// `http://localhost:8000/v1` for a compatible server.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.config = self.config.base_url(url);
        self
    }

    /// The `OpenAI-Organization` header.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.config = self.config.organization(organization);
        self
    }

    /// The `OpenAI-Project` header.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.config = self.config.project(project);
        self
    }

    /// An HTTP, HTTPS or SOCKS5 proxy URL for this client's requests.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.config = self.config.proxy(url);
        self
    }

    /// The time allowed to establish a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.connect_timeout(timeout);
        self
    }

    /// The time allowed for one attempt, from sending to the whole answer (default 600 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.request_timeout(timeout);
        self
    }

    /// An extra header sent with every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config = self.config.header(name, value);
        self
    }

    /// The name put into every answer's [`ResponseMeta::member`](crate::ResponseMeta::member)
    /// (default `"openai"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config = self.config.name(name);
        self
    }

    /// Replaces the whole provider configuration with `config`.
    pub fn openai_config(mut self, config: OpenAiConfig) -> Self {
        self.config = config;
        self
    }

    batch_settings_methods!();
    cache_builder_methods!("`\"openai\"`");
    semantic_builder_methods!();

    /// Checks the settings and builds the client.
    ///
    /// Fails with [`Error::Config`] naming the bad setting: a base URL, header or proxy that
    /// does not parse, `max_concurrent_requests` of 0, or an invalid retry setting.
    pub fn build(self) -> Result<ChatGpt, Error> {
        let service = OpenAiService::new(self.config)?;
        let SingleProvider {
            client,
            endpoints,
            cache,
            semantic,
        } = single_provider(
            self.settings,
            self.cache,
            self.semantic,
            KIND_OPENAI,
            service,
        )?;
        Ok(ChatGpt {
            client,
            endpoints,
            cache,
            semantic,
        })
    }
}
