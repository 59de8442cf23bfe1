//! [`BalancedGpt`]: any mix of providers behind the balancer, with retries and batching.

use crate::caching::{
    cache_builder_methods, cached_client, family_of, forward_cache_api, CacheSetting,
};
use crate::endpoint_clients::{forward_endpoint_api, EndpointClients};
use crate::forward::forward_batch_api;
use crate::semantic_caching::{forward_semantic_api, semantic_builder_methods, SemanticSetting};
use crate::settings::{batch_settings_methods, BatchSettings};
use crate::{Lbgpt, MaybeCached, MaybeSemantic, Provider};
use lbgpt_balance::retry::Retry;
use lbgpt_balance::tokens::TokenEstimator;
use lbgpt_balance::usage::UsageTracker;
use lbgpt_balance::{Balancer, BalancerHandle, BreakerConfig, Strategy};
use lbgpt_cache::CacheLayer;
use lbgpt_core::{ChatRequest, CompletionRequest, EmbeddingRequest, Error};
use lbgpt_semantic::SemanticCacheLayer;
use std::sync::Arc;
use std::time::Duration;

/// The stack inside every balanced client: the exact cache and the semantic cache (each when one
/// was configured) over the retry layer over the balancer, which spreads requests over the providers, paces them under
/// their limits and fails over at once.
pub type BalancedService = MaybeCached<MaybeSemantic<Retry<Balancer>>>;

/// A client over several providers (OpenAI keys, Azure deployments, compatible servers, your
/// own services) behind one balancer: `Lbgpt<Retry<Balancer>>` (with optional exact and
/// semantic caches in front) plus the balancer's [handle](BalancedGpt::handle) and
/// [statistics](BalancedGpt::stats).
///
/// ```no_run
/// # async fn run(requests: Vec<lbgpt::ChatRequest>) -> Result<(), lbgpt::Error> {
/// use lbgpt::azure::AzureConfig;
/// use lbgpt::openai::OpenAiConfig;
/// use lbgpt::{BalancedGpt, Provider, Strategy};
///
/// let gpt = BalancedGpt::builder()
///     .provider(Provider::openai(OpenAiConfig::new().api_key("sk-1").name("key-1")).rpm(500).tpm(200_000))
///     .provider(Provider::openai(OpenAiConfig::new().api_key("sk-2").name("key-2")).rpm(500).tpm(200_000))
///     .provider(
///         Provider::azure(
///             AzureConfig::new("https://my-resource.openai.azure.com")
///                 .api_key("...")
///                 .deployment("gpt-4o-mini", "mini-prod")
///                 .name("azure-eu"),
///         )
///         .rpm(1_000)
///         .tpm(1_000_000),
///     )
///     .strategy(Strategy::MaxHeadroom) // the default
///     .max_concurrent_requests(64)
///     .build()?;
/// let results = gpt.chat_completion_list(requests).await;
/// for member in gpt.stats() {
///     println!("{}: {} requests, {} rate-limited", member.name, member.requests, member.rate_limited_seen);
/// }
/// # Ok(()) }
/// ```
///
/// [`LoadBalancedGpt`](crate::LoadBalancedGpt) (one OpenAI key and one Azure deployment) and
/// [`MultiLoadBalancedGpt`](crate::MultiLoadBalancedGpt) (a list of providers and an
/// allocation function) build the same stack under the Python lbgpt's names.
///
/// [`Lbgpt::balanced`] is another name for [`BalancedGpt::builder`].
///
/// With an exact cache (`cache` / `cache_store` on the builder) in front of the retry layer,
/// a repeated request is answered without touching any provider. The cache's key family is
/// the kinds of the providers (`"openai"`, `"azure"`, `"openai+azure"`, ...; see the crate
/// docs, "Caching"): one family for the whole client, since the key is made before the
/// balancer picks a provider.
#[derive(Debug, Clone)]
pub struct BalancedGpt {
    client: Lbgpt<BalancedService>,
    endpoints: EndpointClients<Balancer<EmbeddingRequest>, Balancer<CompletionRequest>>,
    handle: BalancerHandle,
    embedding_handle: Option<BalancerHandle<EmbeddingRequest>>,
    completion_handle: Option<BalancerHandle<CompletionRequest>>,
    cache: Option<CacheLayer>,
    semantic: Option<SemanticCacheLayer>,
}

impl BalancedGpt {
    /// A builder without providers, strategy max headroom, 5 requests at once and the default
    /// retry policy.
    pub fn builder() -> BalancedGptBuilder {
        BalancedGptBuilder::default()
    }

    forward_batch_api!(BalancedService);
    forward_endpoint_api!(Balancer<EmbeddingRequest>, Balancer<CompletionRequest>);
    forward_balanced_api!();
    forward_cache_api!();
    forward_semantic_api!();
}

impl Lbgpt<BalancedService> {
    /// A builder of a balanced client: the same as [`BalancedGpt::builder`].
    pub fn balanced() -> BalancedGptBuilder {
        BalancedGpt::builder()
    }
}

impl From<BalancedGpt> for Lbgpt<BalancedService> {
    fn from(gpt: BalancedGpt) -> Self {
        gpt.client
    }
}

/// Builds a [`BalancedGpt`]; every setter takes and returns the builder,
/// [`build`](Self::build) checks everything.
#[derive(Debug, Clone, Default)]
#[must_use = "call .build() to get a BalancedGpt"]
pub struct BalancedGptBuilder {
    providers: Vec<Provider>,
    strategy: Option<Strategy>,
    usage: Option<Arc<dyn UsageTracker>>,
    estimator: Option<Arc<dyn TokenEstimator>>,
    max_wait: Option<Duration>,
    max_failovers: Option<usize>,
    breaker: Option<BreakerConfig>,
    settings: BatchSettings,
    cache: CacheSetting,
    semantic: SemanticSetting,
}

/// What [`BalancedGptBuilder::finish`] builds: the client, the balancer's handle and the
/// cache in front, if any.
pub(crate) struct BuiltBalanced {
    pub(crate) client: Lbgpt<BalancedService>,
    pub(crate) endpoints: EndpointClients<Balancer<EmbeddingRequest>, Balancer<CompletionRequest>>,
    pub(crate) handle: BalancerHandle,
    pub(crate) embedding_handle: Option<BalancerHandle<EmbeddingRequest>>,
    pub(crate) completion_handle: Option<BalancerHandle<CompletionRequest>>,
    pub(crate) cache: Option<CacheLayer>,
    pub(crate) semantic: Option<SemanticCacheLayer>,
}

impl BalancedGptBuilder {
    /// A builder with these batch, retry and cache settings (for the other entry points).
    pub(crate) fn with_settings(
        settings: BatchSettings,
        cache: CacheSetting,
        semantic: SemanticSetting,
    ) -> Self {
        BalancedGptBuilder {
            settings,
            cache,
            semantic,
            ..BalancedGptBuilder::default()
        }
    }

    /// Adds a provider: a [`Provider`], an `OpenAiConfig`, an `AzureConfig`, a [`ChatGpt`](
    /// crate::ChatGpt) or an [`AzureGpt`](crate::AzureGpt).
    pub fn provider(mut self, provider: impl Into<Provider>) -> Self {
        self.providers.push(provider.into());
        self
    }

    /// Adds several providers, in order.
    pub fn providers<P: Into<Provider>>(mut self, providers: impl IntoIterator<Item = P>) -> Self {
        self.providers.extend(providers.into_iter().map(Into::into));
        self
    }

    /// How the provider of each request is picked (default [`Strategy::MaxHeadroom`]: the
    /// provider with the largest share of its limits free, requests in flight counted; without
    /// limits, the least busy relative to its weight). `"round_robin".parse()?` turns a name
    /// into a strategy; [`Strategy::Custom`] takes your own. The embeddings and legacy
    /// completions balancers use the same built-in strategy; a custom one is written for chat
    /// requests, so it picks chat providers only and the other endpoints use the default.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Where requests and tokens per provider are counted (default: in this process, see
    /// [`InMemoryUsage`](crate::balance::usage::InMemoryUsage)). Share one tracker between
    /// clients (or processes, with a shared implementation) that use the same keys.
    ///
    /// This is the chat balancer's tracker. The embeddings and legacy-completions balancers
    /// each count in a tracker of their own, in this process, because OpenAI and Azure limit
    /// each model (deployment) separately: sharing this tracker shares the chat limits only.
    pub fn usage(mut self, usage: Arc<dyn UsageTracker>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// How a chat request's tokens are estimated before it is sent (default: tiktoken, see
    /// [`TiktokenEstimator`](crate::balance::tokens::TiktokenEstimator)). Embeddings and
    /// legacy completions always use the default estimator of their endpoint.
    pub fn estimator(mut self, estimator: Arc<dyn TokenEstimator>) -> Self {
        self.estimator = Some(estimator);
        self
    }

    /// The longest a request waits, from the start of its call, for a provider with room
    /// under its limits before it fails with [`Error::NoMemberAvailable`] (default 60 s).
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = Some(wait);
        self
    }

    /// How many other providers one call fails over to after a retryable failure (default:
    /// all the others). Beyond that, the retry layer takes over.
    pub fn max_failovers(mut self, failovers: usize) -> Self {
        self.max_failovers = Some(failovers);
        self
    }

    /// The per-provider circuit breaker (default 5 consecutive failures open it for 30 s,
    /// then one probe request decides).
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = Some(breaker);
        self
    }

    batch_settings_methods!();
    cache_builder_methods!(
        "the kinds of its providers (`\"openai\"`, `\"azure\"`, `\"openai+azure\"`, ...)"
    );
    semantic_builder_methods!();

    /// Checks the settings, builds every provider's service and the client.
    ///
    /// Fails with [`Error::Config`] naming what is wrong: no provider, two providers with one
    /// name, a provider whose configuration, weight or limits are invalid,
    /// `max_concurrent_requests` of 0, or an invalid retry setting.
    pub fn build(self) -> Result<BalancedGpt, Error> {
        self.finish().map(BalancedGpt::from_built)
    }

    /// Builds the stack: the balancer, the retry layer, the cache, the batch client.
    pub(crate) fn finish(self) -> Result<BuiltBalanced, Error> {
        if self.providers.is_empty() {
            return Err(Error::Config(
                "a balanced client needs at least one provider".to_owned(),
            ));
        }
        let settings = EndpointBalancing {
            max_wait: self.max_wait,
            max_failovers: self.max_failovers,
            breaker: self.breaker,
        };
        let mut chat = settings.apply(Balancer::<ChatRequest>::builder());
        let mut embeddings = settings.apply(Balancer::<EmbeddingRequest>::builder());
        let mut completions = settings.apply(Balancer::<CompletionRequest>::builder());
        if let Some(strategy) = self.strategy {
            // Embeddings and completions take the same built-in strategy; a custom one
            // picks chat members only (it is written for chat requests), the others use the
            // default.
            if let Some(same) = strategy.built_in_for() {
                embeddings = embeddings.strategy(same);
            }
            if let Some(same) = strategy.built_in_for() {
                completions = completions.strategy(same);
            }
            chat = chat.strategy(strategy);
        }
        if let Some(usage) = self.usage {
            chat = chat.usage(usage);
        }
        if let Some(estimator) = self.estimator {
            chat = chat.estimator(estimator);
        }
        let family = family_of(self.providers.iter().map(Provider::kind));
        let (mut any_embeddings, mut any_completions) = (false, false);
        for provider in self.providers {
            let members = provider.into_members()?;
            chat = chat.member(members.chat);
            if let Some(member) = members.embeddings {
                embeddings = embeddings.member(member);
                any_embeddings = true;
            }
            if let Some(member) = members.completions {
                completions = completions.member(member);
                any_completions = true;
            }
        }
        let balancer = chat.build()?;
        let embeddings = any_embeddings.then(|| embeddings.build()).transpose()?;
        let completions = any_completions.then(|| completions.build()).transpose()?;
        let handle = balancer.handle();
        let embedding_handle = embeddings.as_ref().map(Balancer::handle);
        let completion_handle = completions.as_ref().map(Balancer::handle);
        let cache = self.cache.into_layer(&family);
        let semantic = self.semantic.into_layer(cache.as_ref(), &family)?;
        let retry = self.settings.retry.clone();
        let client = cached_client(self.settings, cache.as_ref(), semantic.as_ref(), balancer)?;
        let endpoints =
            EndpointClients::new(&client, &retry, cache.as_ref(), embeddings, completions);
        Ok(BuiltBalanced {
            client,
            endpoints,
            handle,
            embedding_handle,
            completion_handle,
            cache,
            semantic,
        })
    }
}

/// The balancer settings every endpoint's balancer shares.
#[derive(Clone, Copy)]
struct EndpointBalancing {
    max_wait: Option<Duration>,
    max_failovers: Option<usize>,
    breaker: Option<BreakerConfig>,
}

impl EndpointBalancing {
    fn apply<R: lbgpt_balance::BalancedRequest>(
        self,
        mut builder: lbgpt_balance::BalancerBuilder<R>,
    ) -> lbgpt_balance::BalancerBuilder<R> {
        if let Some(wait) = self.max_wait {
            builder = builder.max_wait(wait);
        }
        if let Some(failovers) = self.max_failovers {
            builder = builder.max_failovers(failovers);
        }
        if let Some(breaker) = self.breaker {
            builder = builder.breaker(breaker);
        }
        builder
    }
}

/// Adds `from_built`, which moves a [`BuiltBalanced`] into a balanced client whose fields are
/// exactly its fields (the three balanced entry points share one build). An inherent
/// crate-private function, not `From`, so the crate-private type stays out of the public docs.
macro_rules! from_built_balanced {
    ($client:ident) => {
        impl $client {
            pub(crate) fn from_built(built: $crate::balanced::BuiltBalanced) -> Self {
                let $crate::balanced::BuiltBalanced {
                    client,
                    endpoints,
                    handle,
                    embedding_handle,
                    completion_handle,
                    cache,
                    semantic,
                } = built;
                $client {
                    client,
                    endpoints,
                    handle,
                    embedding_handle,
                    completion_handle,
                    cache,
                    semantic,
                }
            }
        }
    };
}

pub(crate) use from_built_balanced;

from_built_balanced!(BalancedGpt);

/// Adds the balancer accessors to a wrapper struct with a `handle: BalancerHandle` field.
macro_rules! forward_balanced_api {
    () => {
        /// The chat balancer's handle: add, remove, disable and re-enable providers while
        /// requests run (key rotation), and read their statistics. Clones share the balancer.
        /// Each endpoint has a balancer of its own: to take a provider out of every endpoint,
        /// also use [`embedding_handle`](Self::embedding_handle) and
        /// [`completion_handle`](Self::completion_handle).
        pub fn handle(&self) -> &$crate::balance::BalancerHandle {
            &self.handle
        }

        /// The embeddings balancer's handle (the same providers as chat, its own usage
        /// tracker); `None` when no provider serves embeddings.
        pub fn embedding_handle(
            &self,
        ) -> Option<&$crate::balance::BalancerHandle<$crate::EmbeddingRequest>> {
            self.embedding_handle.as_ref()
        }

        /// The legacy-completions balancer's handle; `None` when no provider serves legacy
        /// completions.
        pub fn completion_handle(
            &self,
        ) -> Option<&$crate::balance::BalancerHandle<$crate::CompletionRequest>> {
            self.completion_handle.as_ref()
        }

        /// Statistics of every provider, in the order they were added: requests, tokens, 429s
        /// seen, retries, failovers, requests in flight, headroom, state.
        pub fn stats(&self) -> Vec<$crate::balance::MemberStats> {
            self.handle.stats()
        }

        /// Statistics of every provider on the embeddings endpoint (its own balancer and usage
        /// tracker: providers' limits are per model), in the order they were added; empty
        /// when no provider serves embeddings.
        pub fn embedding_stats(&self) -> Vec<$crate::balance::MemberStats> {
            self.embedding_handle
                .as_ref()
                .map(|handle| handle.stats())
                .unwrap_or_default()
        }

        /// Statistics of every provider on the legacy completions endpoint, in the order they
        /// were added; empty when no provider serves legacy completions.
        pub fn completion_stats(&self) -> Vec<$crate::balance::MemberStats> {
            self.completion_handle
                .as_ref()
                .map(|handle| handle.stats())
                .unwrap_or_default()
        }

        /// Statistics of the provider named `name`, if there is one.
        pub fn member_stats(&self, name: &str) -> Option<$crate::balance::MemberStats> {
            self.handle.member_stats(name)
        }

        /// The provider's current usage and room under its limits (requests and tokens in the
        /// current window, reservations in flight, headroom), if there is a provider named
        /// `name` that the usage tracker knows.
        pub fn headroom(&self, name: &str) -> Option<$crate::balance::usage::UsageSnapshot> {
            self.handle.headroom(name)
        }
    };
}

pub(crate) use forward_balanced_api;
