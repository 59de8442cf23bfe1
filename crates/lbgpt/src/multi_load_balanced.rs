//! [`MultiLoadBalancedGpt`]: a list of providers and an allocation function, as in the Python
//! lbgpt.

use crate::balanced::{
    forward_balanced_api, from_built_balanced, BalancedGptBuilder, BalancedService,
};
use crate::caching::{cache_builder_methods, forward_cache_api, CacheSetting};
use crate::endpoint_clients::{forward_endpoint_api, EndpointClients};
use crate::forward::forward_batch_api;
use crate::semantic_caching::{forward_semantic_api, semantic_builder_methods, SemanticSetting};
use crate::settings::{batch_settings_methods, BatchSettings};
use crate::{Lbgpt, Provider};
use lbgpt_balance::usage::UsageTracker;
use lbgpt_balance::Balancer;
use lbgpt_balance::BalancerHandle;
use lbgpt_balance::Strategy;
use lbgpt_cache::CacheLayer;
use lbgpt_core::{CompletionRequest, EmbeddingRequest, Error};
use lbgpt_semantic::SemanticCacheLayer;
use std::sync::Arc;
use std::time::Duration;

/// A client over several providers (OpenAI keys, Azure deployments, compatible servers) with
/// the Python lbgpt's `MultiLoadBalancedGPT` settings: the providers (`gpts`), an
/// `allocation_function` and optional `allocation_function_weights`.
///
/// The seed's "same split as `LoadBalancedGPT`":
///
/// ```no_run
/// # fn run() -> Result<(), lbgpt::Error> {
/// use lbgpt::{AzureGpt, ChatGpt, MultiLoadBalancedGpt, Strategy};
///
/// let openai = ChatGpt::new("sk-...")?;
/// let azure = AzureGpt::new("https://my-resource.openai.azure.com", "azure-key", [("gpt-4o-mini", "mini-prod")])?;
/// let gpt = MultiLoadBalancedGpt::builder()
///     .gpt(openai)
///     .gpt(azure)
///     .allocation_function(Strategy::WeightedRandom) // the seed's "random", the default
///     .allocation_function_weights([0.25, 0.75])
///     .build()?;
/// # let _ = gpt; Ok(()) }
/// ```
///
/// Max headroom over keys with different limits (`limit_tpm`, as in the seed; `rpm`/`tpm`
/// work too): each request goes to the provider with the most room left, requests in flight
/// included, and requests wait (computed, not polled) when every provider is at its limit, so
/// no provider ever answers 429 for the limits given.
///
/// ```no_run
/// # fn run() -> Result<(), lbgpt::Error> {
/// use lbgpt::azure::AzureConfig;
/// use lbgpt::openai::OpenAiConfig;
/// use lbgpt::{MultiLoadBalancedGpt, Provider};
///
/// let gpt = MultiLoadBalancedGpt::builder()
///     .gpt(Provider::openai(OpenAiConfig::new().api_key("sk-...")).limit_tpm(5_000))
///     .gpt(
///         Provider::azure(
///             AzureConfig::new("https://my-resource.openai.azure.com")
///                 .api_key("azure-key")
///                 .deployment("gpt-4o-mini", "mini-prod"),
///         )
///         .limit_tpm(10_000),
///     )
///     .allocation_function("max_headroom".parse()?)
///     .build()?;
/// # let _ = gpt; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MultiLoadBalancedGpt {
    client: Lbgpt<BalancedService>,
    endpoints: EndpointClients<Balancer<EmbeddingRequest>, Balancer<CompletionRequest>>,
    handle: BalancerHandle,
    embedding_handle: Option<BalancerHandle<EmbeddingRequest>>,
    completion_handle: Option<BalancerHandle<CompletionRequest>>,
    cache: Option<CacheLayer>,
    semantic: Option<SemanticCacheLayer>,
}

from_built_balanced!(MultiLoadBalancedGpt);

impl MultiLoadBalancedGpt {
    /// A client over `gpts` with `allocation_function`, the providers' own weights and the
    /// default settings (5 requests at once, 10 attempts).
    pub fn new<P: Into<Provider>>(
        gpts: impl IntoIterator<Item = P>,
        allocation_function: Strategy,
    ) -> Result<Self, Error> {
        MultiLoadBalancedGpt::builder()
            .gpts(gpts)
            .allocation_function(allocation_function)
            .build()
    }

    /// A builder without providers, allocation function `random` (weighted random, as in the
    /// Python lbgpt), the providers' own weights, 5 requests at once and the default retry
    /// policy.
    pub fn builder() -> MultiLoadBalancedGptBuilder {
        MultiLoadBalancedGptBuilder {
            gpts: Vec::new(),
            allocation_function: Strategy::WeightedRandom,
            weights: None,
            max_wait: None,
            usage: None,
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

impl From<MultiLoadBalancedGpt> for Lbgpt<BalancedService> {
    fn from(gpt: MultiLoadBalancedGpt) -> Self {
        gpt.client
    }
}

/// Builds a [`MultiLoadBalancedGpt`]; every setter takes and returns the builder,
/// [`build`](Self::build) checks everything.
#[derive(Debug, Clone)]
#[must_use = "call .build() to get a MultiLoadBalancedGpt"]
pub struct MultiLoadBalancedGptBuilder {
    gpts: Vec<Provider>,
    allocation_function: Strategy,
    weights: Option<Vec<f64>>,
    max_wait: Option<Duration>,
    usage: Option<Arc<dyn UsageTracker>>,
    settings: BatchSettings,
    cache: CacheSetting,
    semantic: SemanticSetting,
}

impl MultiLoadBalancedGptBuilder {
    /// Adds a provider: a [`Provider`] (with its limits), an `OpenAiConfig`, an `AzureConfig`,
    /// a [`ChatGpt`](crate::ChatGpt) or an [`AzureGpt`](crate::AzureGpt).
    pub fn gpt(mut self, gpt: impl Into<Provider>) -> Self {
        self.gpts.push(gpt.into());
        self
    }

    /// Adds several providers, in order (the seed's `gpts`).
    pub fn gpts<P: Into<Provider>>(mut self, gpts: impl IntoIterator<Item = P>) -> Self {
        self.gpts.extend(gpts.into_iter().map(Into::into));
        self
    }

    /// How each request's provider is picked (default [`Strategy::WeightedRandom`], the
    /// seed's `random`). `"max_headroom".parse()?` turns the seed's strings (`"random"`,
    /// `"max_headroom"`) and the other strategies' names into one.
    pub fn allocation_function(mut self, function: Strategy) -> Self {
        self.allocation_function = function;
        self
    }

    /// One weight per provider, in the order they were added (the seed's
    /// `allocation_function_weights`): shares for `random`, turns for `round_robin`, scale
    /// factors for the others. They need not sum to 1; 0 makes a standby. Replaces the
    /// providers' own [`weight`](Provider::weight)s.
    pub fn allocation_function_weights(mut self, weights: impl IntoIterator<Item = f64>) -> Self {
        self.weights = Some(weights.into_iter().collect());
        self
    }

    /// The longest a request waits for a provider with room under its limits before it fails
    /// with [`Error::NoMemberAvailable`] (default 60 s).
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = Some(wait);
        self
    }

    /// Where requests and tokens per provider are counted (default: in this process, see
    /// [`InMemoryUsage`](crate::balance::usage::InMemoryUsage)). Share one tracker between
    /// clients that use the same keys.
    ///
    /// This is the chat balancer's tracker only. The embeddings and legacy-completions
    /// balancers each count in a tracker of their own, in this process, because OpenAI and
    /// Azure limit each model (deployment) separately: sharing this tracker shares the chat
    /// limits only (as [`BalancedGptBuilder::usage`](crate::BalancedGptBuilder::usage)).
    pub fn usage(mut self, usage: Arc<dyn UsageTracker>) -> Self {
        self.usage = Some(usage);
        self
    }

    batch_settings_methods!();
    cache_builder_methods!(
        "the kinds of its providers (`\"openai\"`, `\"azure\"`, `\"openai+azure\"`, ...)"
    );
    semantic_builder_methods!();

    /// Checks the settings and builds the client.
    ///
    /// Fails with [`Error::Config`] naming the problem: no provider, not as many weights as
    /// providers, a negative or non-finite weight, two providers with one name, an invalid
    /// provider setting, `max_concurrent_requests` of 0, an invalid retry setting.
    pub fn build(self) -> Result<MultiLoadBalancedGpt, Error> {
        let mut gpts = self.gpts;
        if let Some(weights) = self.weights {
            if weights.len() != gpts.len() {
                return Err(Error::Config(format!(
                    "allocation_function_weights has {} weights for {} providers; give one \
                     weight per provider",
                    weights.len(),
                    gpts.len()
                )));
            }
            gpts = gpts
                .into_iter()
                .zip(weights)
                .map(|(gpt, weight)| gpt.weight(weight))
                .collect();
        }
        let mut builder =
            BalancedGptBuilder::with_settings(self.settings, self.cache, self.semantic)
                .providers(gpts)
                .strategy(self.allocation_function);
        if let Some(wait) = self.max_wait {
            builder = builder.max_wait(wait);
        }
        if let Some(usage) = self.usage {
            builder = builder.usage(usage);
        }
        builder.finish().map(MultiLoadBalancedGpt::from_built)
    }
}
