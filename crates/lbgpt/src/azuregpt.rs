//! [`AzureGpt`]: Azure OpenAI with retries and batching.

use crate::caching::{
    cache_builder_methods, forward_cache_api, single_provider, CacheSetting, SingleProvider,
    KIND_AZURE,
};
use crate::endpoint_clients::{forward_endpoint_api, EndpointClients};
use crate::forward::forward_batch_api;
use crate::semantic_caching::{forward_semantic_api, semantic_builder_methods, SemanticSetting};
use crate::settings::{batch_settings_methods, BatchSettings};
use crate::{Lbgpt, MaybeCached, MaybeSemantic};
use lbgpt_azure::{AzureAuth, AzureConfig, AzureService};
use lbgpt_balance::retry::Retry;
use lbgpt_cache::CacheLayer;
use lbgpt_core::Error;
use lbgpt_semantic::SemanticCacheLayer;
use std::time::Duration;

/// The stack inside an [`AzureGpt`]: the exact cache and the semantic cache (each when one was
/// configured) over the retry layer over the Azure service.
pub type AzureGptService = MaybeCached<MaybeSemantic<Retry<AzureService>>>;

/// A client for Azure OpenAI: `Lbgpt<Retry<AzureService>>` (with optional exact and semantic
/// caches in front) under a seed-style name.
///
/// Requests name OpenAI models (`gpt-4o-mini`); the model -> deployment map turns them into
/// `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`, so the same
/// requests work against OpenAI and Azure. A model missing from the map fails with
/// [`Error::ModelNotServed`] (naming the model and the mapped ones) before any network call.
///
/// ```no_run
/// # async fn run() -> Result<(), lbgpt::Error> {
/// use lbgpt::{AzureGpt, ChatMessage, ChatRequest};
///
/// let gpt = AzureGpt::new(
///     "https://my-resource.openai.azure.com",
///     "azure-key",
///     [("gpt-4o-mini", "mini-prod")],
/// )?;
/// let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
/// println!("{:?}", gpt.chat_completion(request).await?.first_text());
/// # Ok(()) }
/// ```
///
/// With more settings ([`AzureGpt::builder`]):
///
/// ```no_run
/// # fn run() -> Result<(), lbgpt::Error> {
/// let gpt = lbgpt::AzureGpt::builder("https://my-resource.openai.azure.com")
///     .bearer_token("entra-id-token")   // or .api_key("...")
///     .api_version("2024-10-21")
///     .deployment("gpt-4o", "gpt4o-prod")
///     .deployment("gpt-4o-mini", "mini-prod")
///     .name("azure-eu")
///     .max_concurrent_requests(20)
///     .cache(lbgpt::cache::CacheLayer::in_memory()) // repeated requests answered in-process
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AzureGpt {
    client: Lbgpt<AzureGptService>,
    endpoints: EndpointClients<AzureService, AzureService>,
    cache: Option<CacheLayer>,
    semantic: Option<SemanticCacheLayer>,
}

impl AzureGpt {
    /// A client for the resource at `endpoint` with a resource key (sent as the `api-key`
    /// header) and a map from OpenAI model names to deployment names; default settings
    /// otherwise (api-version [`DEFAULT_API_VERSION`](crate::azure::DEFAULT_API_VERSION),
    /// 5 requests at once, 10 attempts).
    pub fn new<M, D>(
        endpoint: impl Into<String>,
        api_key: impl Into<String>,
        deployments: impl IntoIterator<Item = (M, D)>,
    ) -> Result<Self, Error>
    where
        M: Into<String>,
        D: Into<String>,
    {
        AzureGpt::builder(endpoint)
            .api_key(api_key)
            .deployments(deployments)
            .build()
    }

    /// A builder for the resource at `endpoint` (e.g. `https://my-resource.openai.azure.com`),
    /// with the key from `AZURE_OPENAI_API_KEY` when set, the default api-version, no
    /// deployments yet, 5 requests at once and the default retry policy.
    pub fn builder(endpoint: impl Into<String>) -> AzureGptBuilder {
        AzureGptBuilder {
            config: AzureConfig::new(endpoint),
            settings: BatchSettings::default(),
            cache: CacheSetting::Off,
            semantic: SemanticSetting::Off,
        }
    }

    forward_batch_api!(AzureGptService);
    forward_endpoint_api!(AzureService, AzureService);
    forward_cache_api!();
    forward_semantic_api!();
}

impl From<AzureGpt> for Lbgpt<AzureGptService> {
    fn from(gpt: AzureGpt) -> Self {
        gpt.client
    }
}

/// Builds an [`AzureGpt`]; every setter takes and returns the builder,
/// [`build`](Self::build) checks everything.
#[derive(Debug, Clone)]
#[must_use = "call .build() to get an AzureGpt"]
pub struct AzureGptBuilder {
    config: AzureConfig,
    settings: BatchSettings,
    cache: CacheSetting,
    semantic: SemanticSetting,
}

impl AzureGptBuilder {
    /// A resource key, sent as the `api-key` header; kept secret, never shown.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.config = self.config.api_key(key);
        self
    }

    /// A Microsoft Entra ID token, sent as `Authorization: Bearer TOKEN`; kept secret.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.config = self.config.bearer_token(token);
        self
    }

    /// Sets the credential.
    pub fn auth(mut self, auth: AzureAuth) -> Self {
        self.config = self.config.auth(auth);
        self
    }

    /// The `api-version` query parameter (default
    /// [`DEFAULT_API_VERSION`](crate::azure::DEFAULT_API_VERSION)).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.config = self.config.api_version(version);
        self
    }

    /// Maps the OpenAI model name `model` to the Azure deployment serving it.
    pub fn deployment(mut self, model: impl Into<String>, deployment: impl Into<String>) -> Self {
        self.config = self.config.deployment(model, deployment);
        self
    }

    /// Adds several model -> deployment mappings (the seed's `azure_model_map`).
    pub fn deployments<M, D>(mut self, map: impl IntoIterator<Item = (M, D)>) -> Self
    where
        M: Into<String>,
        D: Into<String>,
    {
        self.config = self.config.deployments(map);
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
    /// (default `"azure"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config = self.config.name(name);
        self
    }

    /// Replaces the whole provider configuration with `config`.
    pub fn azure_config(mut self, config: AzureConfig) -> Self {
        self.config = config;
        self
    }

    batch_settings_methods!();
    cache_builder_methods!("`\"azure\"`");
    semantic_builder_methods!();

    /// Checks the settings and builds the client.
    ///
    /// Fails with [`Error::Config`] naming the bad setting: an endpoint, header or proxy that
    /// does not parse, `max_concurrent_requests` of 0, or an invalid retry setting.
    pub fn build(self) -> Result<AzureGpt, Error> {
        let service = AzureService::new(self.config)?;
        let SingleProvider {
            client,
            endpoints,
            cache,
            semantic,
        } = single_provider(
            self.settings,
            self.cache,
            self.semantic,
            KIND_AZURE,
            service,
        )?;
        Ok(AzureGpt {
            client,
            endpoints,
            cache,
            semantic,
        })
    }
}
