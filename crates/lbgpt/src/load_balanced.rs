//! [`LoadBalancedGpt`]: one OpenAI key and one Azure OpenAI resource, shared by a ratio.

use crate::balanced::{
    forward_balanced_api, from_built_balanced, BalancedGptBuilder, BalancedService,
};
use crate::caching::{cache_builder_methods, forward_cache_api, CacheSetting};
use crate::endpoint_clients::{forward_endpoint_api, EndpointClients};
use crate::forward::forward_batch_api;
use crate::semantic_caching::{forward_semantic_api, semantic_builder_methods, SemanticSetting};
use crate::settings::{batch_settings_methods, BatchSettings};
use crate::{Lbgpt, Provider};
use lbgpt_azure::AzureConfig;
use lbgpt_balance::Balancer;
use lbgpt_balance::BalancerHandle;
use lbgpt_balance::Strategy;
use lbgpt_cache::CacheLayer;
use lbgpt_core::{CompletionRequest, EmbeddingRequest, Error};
use lbgpt_openai::OpenAiConfig;
use lbgpt_semantic::SemanticCacheLayer;

/// The share of requests sent to OpenAI unless told otherwise: 25 %, so 75 % go to Azure (the
/// Python lbgpt's default).
pub const DEFAULT_RATIO_OPENAI_TO_AZURE: f64 = 0.25;

/// A client that spreads requests at random between one OpenAI key and one Azure OpenAI
/// resource: by default 25 % to OpenAI and 75 % to Azure (`ratio_openai_to_azure`), as in the
/// Python lbgpt. A request that fails on one side is retried on the other at once.
///
/// ```no_run
/// # async fn run(requests: Vec<lbgpt::ChatRequest>) -> Result<(), lbgpt::Error> {
/// use lbgpt::LoadBalancedGpt;
///
/// let gpt = LoadBalancedGpt::new(
///     "sk-...",                                  // OpenAI key
///     "azure-key",                               // Azure key
///     "https://my-resource.openai.azure.com",    // Azure endpoint (the seed's azure_api_base)
///     [("gpt-4o-mini", "mini-prod")],            // model -> deployment (azure_model_map)
/// )?;
/// let results = gpt.chat_completion_list(requests).await;
/// # Ok(()) }
/// ```
///
/// With other settings ([`LoadBalancedGpt::builder`]):
///
/// ```no_run
/// # fn run() -> Result<(), lbgpt::Error> {
/// let gpt = lbgpt::LoadBalancedGpt::builder()
///     .openai_api_key("sk-...")
///     .azure_api_key("azure-key")
///     .azure_api_base("https://my-resource.openai.azure.com")
///     .azure_model_map([("gpt-4o-mini", "mini-prod")])
///     .ratio_openai_to_azure(0.5)
///     .max_concurrent_requests(20)
///     .build()?;
/// # let _ = gpt; Ok(()) }
/// ```
///
/// The members are named after the configurations' `name` (default `"openai"` and
/// `"azure"`); their statistics are in [`stats`](Self::stats). For limits per provider, more
/// providers or other strategies use [`MultiLoadBalancedGpt`](crate::MultiLoadBalancedGpt) or
/// [`BalancedGpt`](crate::BalancedGpt).
#[derive(Debug, Clone)]
pub struct LoadBalancedGpt {
    client: Lbgpt<BalancedService>,
    endpoints: EndpointClients<Balancer<EmbeddingRequest>, Balancer<CompletionRequest>>,
    handle: BalancerHandle,
    embedding_handle: Option<BalancerHandle<EmbeddingRequest>>,
    completion_handle: Option<BalancerHandle<CompletionRequest>>,
    cache: Option<CacheLayer>,
    semantic: Option<SemanticCacheLayer>,
}

from_built_balanced!(LoadBalancedGpt);

impl LoadBalancedGpt {
    /// A client for OpenAI with `openai_api_key` and the Azure resource at `azure_api_base`
    /// with `azure_api_key` and a model -> deployment map, 25 % of requests to OpenAI, 5 at
    /// once, 10 attempts.
    pub fn new<M, D>(
        openai_api_key: impl Into<String>,
        azure_api_key: impl Into<String>,
        azure_api_base: impl Into<String>,
        azure_model_map: impl IntoIterator<Item = (M, D)>,
    ) -> Result<Self, Error>
    where
        M: Into<String>,
        D: Into<String>,
    {
        LoadBalancedGpt::builder()
            .openai_api_key(openai_api_key)
            .azure_api_key(azure_api_key)
            .azure_api_base(azure_api_base)
            .azure_model_map(azure_model_map)
            .build()
    }

    /// A builder with the defaults: the OpenAI key from `OPENAI_API_KEY` and the Azure key
    /// from `AZURE_OPENAI_API_KEY` when set, no Azure endpoint yet (required), 25 % to OpenAI.
    pub fn builder() -> LoadBalancedGptBuilder {
        LoadBalancedGptBuilder {
            openai: OpenAiConfig::new(),
            azure: AzureSettings::default(),
            ratio: DEFAULT_RATIO_OPENAI_TO_AZURE,
            settings: BatchSettings::default(),
            cache: CacheSetting::Off,
            semantic: SemanticSetting::Off,
        }
    }

    forward_batch_api!(BalancedService);
    forward_endpoint_api!(Balancer<EmbeddingRequest>, Balancer<CompletionRequest>);
    forward_balanced_api!();
    forward_cache_api!();
    forward_semantic_api!();
}

impl From<LoadBalancedGpt> for Lbgpt<BalancedService> {
    fn from(gpt: LoadBalancedGpt) -> Self {
        gpt.client
    }
}

/// Builds a [`LoadBalancedGpt`]; every setter takes and returns the builder,
/// [`build`](Self::build) checks everything.
#[derive(Debug, Clone)]
#[must_use = "call .build() to get a LoadBalancedGpt"]
pub struct LoadBalancedGptBuilder {
    openai: OpenAiConfig,
    azure: AzureSettings,
    ratio: f64,
    settings: BatchSettings,
    cache: CacheSetting,
    semantic: SemanticSetting,
}

/// The Azure side, set piece by piece and/or as a whole configuration.
#[derive(Debug, Clone, Default)]
struct AzureSettings {
    config: Option<AzureConfig>,
    endpoint: Option<String>,
    api_key: Option<String>,
    deployments: Vec<(String, String)>,
    api_version: Option<String>,
}

impl AzureSettings {
    /// The configuration: the whole one given (or one on the endpoint given), with the pieces
    /// set on top of it.
    fn into_config(self) -> Result<AzureConfig, Error> {
        let base =
            match (self.config, self.endpoint) {
                (Some(_), Some(_)) => return Err(Error::Config(
                    "LoadBalancedGpt: the Azure endpoint is set twice, by azure_config(..) and \
                     by azure_api_base(..); use one of them"
                        .to_owned(),
                )),
                (Some(config), None) => config,
                (None, Some(endpoint)) => AzureConfig::new(endpoint),
                (None, None) => {
                    return Err(Error::Config(
                        "LoadBalancedGpt needs the Azure endpoint: call azure_api_base(..) or \
                     azure_config(..)"
                            .to_owned(),
                    ))
                }
            };
        let mut config = base.deployments(self.deployments);
        if let Some(key) = self.api_key {
            config = config.api_key(key);
        }
        if let Some(version) = self.api_version {
            config = config.api_version(version);
        }
        Ok(config)
    }
}

impl LoadBalancedGptBuilder {
    /// The OpenAI API key (the seed's `openai_api_key`).
    pub fn openai_api_key(mut self, key: impl Into<String>) -> Self {
        self.openai = self.openai.api_key(key);
        self
    }

    /// The whole OpenAI configuration (base URL, organization, proxy, timeouts, name, ...);
    /// replaces the OpenAI settings made so far.
    pub fn openai_config(mut self, config: OpenAiConfig) -> Self {
        self.openai = config;
        self
    }

    /// The Azure resource key (the seed's `azure_api_key`), sent as the `api-key` header.
    pub fn azure_api_key(mut self, key: impl Into<String>) -> Self {
        self.azure.api_key = Some(key.into());
        self
    }

    /// The Azure resource endpoint (the seed's `azure_api_base`), e.g.
    /// `https://my-resource.openai.azure.com`.
    pub fn azure_api_base(mut self, endpoint: impl Into<String>) -> Self {
        self.azure.endpoint = Some(endpoint.into());
        self
    }

    /// OpenAI model name -> Azure deployment name (the seed's `azure_model_map`); adds to the
    /// mappings already set.
    pub fn azure_model_map<M, D>(mut self, map: impl IntoIterator<Item = (M, D)>) -> Self
    where
        M: Into<String>,
        D: Into<String>,
    {
        self.azure.deployments.extend(
            map.into_iter()
                .map(|(model, deployment)| (model.into(), deployment.into())),
        );
        self
    }

    /// The api-version of the Azure requests (default
    /// [`DEFAULT_API_VERSION`](crate::azure::DEFAULT_API_VERSION)).
    pub fn azure_api_version(mut self, version: impl Into<String>) -> Self {
        self.azure.api_version = Some(version.into());
        self
    }

    /// The whole Azure configuration (endpoint, auth, deployments, proxy, timeouts, name, ...).
    /// The key, model map and api-version setters still apply on top of it; the endpoint is
    /// the configuration's (do not also call [`azure_api_base`](Self::azure_api_base)).
    pub fn azure_config(mut self, config: AzureConfig) -> Self {
        self.azure.config = Some(config);
        self
    }

    /// The share of requests sent to OpenAI, from 0 to 1 (default 0.25: 25 % to OpenAI, 75 %
    /// to Azure). Each request is drawn at random, so a batch's split is close to the ratio,
    /// not exact. Whatever the ratio, each side is the other's failover (at 0 or 1 one side is
    /// a standby that only takes what the other cannot).
    pub fn ratio_openai_to_azure(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    batch_settings_methods!();
    cache_builder_methods!("`\"openai+azure\"` (both sides share its entries)");
    semantic_builder_methods!();

    /// Checks the settings and builds the client.
    ///
    /// Fails with [`Error::Config`] naming the problem: no Azure endpoint, a ratio outside
    /// [0, 1], an invalid OpenAI or Azure setting, `max_concurrent_requests` of 0, an invalid
    /// retry setting.
    pub fn build(self) -> Result<LoadBalancedGpt, Error> {
        if !(0.0..=1.0).contains(&self.ratio) {
            return Err(Error::Config(format!(
                "ratio_openai_to_azure must be between 0 and 1, got {}",
                self.ratio
            )));
        }
        let azure = self.azure.into_config()?;
        // A side of weight 0 is a standby: it only takes requests the other cannot.
        let openai = Provider::openai(self.openai).weight(self.ratio);
        let azure = Provider::azure(azure).weight(1.0 - self.ratio);
        BalancedGptBuilder::with_settings(self.settings, self.cache, self.semantic)
            .provider(openai)
            .provider(azure)
            .strategy(Strategy::WeightedRandom)
            .finish()
            .map(LoadBalancedGpt::from_built)
    }
}
