//! Builds the service stack a config describes, for the endpoint a run sends to: one provider
//! service per `[[providers]]` table, the [`Balancer`] of that endpoint over them (weights,
//! limits, strategy, failover, health), the retry layer around it, and the caches of the
//! endpoint in front:
//!
//! - chat: the exact cache of a `[cache]` table over the semantic cache of a
//!   `[semantic_cache]` table over retry over the balancer
//!   (`Cache<SemanticCache<Retry<Balancer>>>`);
//! - embeddings: the per-input embedding cache (the `[cache]` store and settings) over retry
//!   over the balancer (`EmbeddingCache<Retry<Balancer<EmbeddingRequest>>>`): only the inputs
//!   the cache lacks are sent;
//! - legacy completions: the exact cache over retry over the balancer
//!   (`Cache<Retry<Balancer<CompletionRequest>>>`); the facade's `completion_ordered` sends a
//!   prompt list one request per prompt, so each prompt is balanced, paced, retried and cached
//!   on its own.
//!
//! A run uses one endpoint, so only that endpoint's balancer is built ([`build_for`]).

use crate::config::{
    AzureCredential, BalanceSettings, Config, ConfigError, ProviderApi, ProviderSettings,
    RetrySettings, SecretSource, TransportSettings, NO_PROXY,
};
use crate::endpoint::{Answer, CliEndpoint};
use lbgpt::semantic::SemanticCacheLayer;
use lbgpt_azure::{AzureConfig, AzureService};
use lbgpt_balance::retry::{RetryLayer, RetryPolicy};
use lbgpt_balance::{
    BalancedRequest, Balancer, BalancerHandle, BreakerConfig, Member, MemberStats,
};
use lbgpt_cache::{CacheConfig, CacheLayer, CacheStats, EmbeddingCacheLayer};
use lbgpt_core::{ChatRequest, ChatResponse, CompletionRequest, EmbeddingRequest, Error};
use lbgpt_openai::transport::{EndpointRequest, HttpOptions};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tower::util::BoxCloneService;
use tower::Layer;

/// The chat stack as one cloneable service.
pub type Stack = BoxCloneService<ChatRequest, ChatResponse, Error>;

/// The stack of requests of type `R` as one cloneable service.
pub type EndpointService<R> = BoxCloneService<R, Answer<R>, Error>;

/// The built chat stack (what [`build`] returns).
pub type BuiltStack = EndpointStack<ChatRequest>;

/// A built stack of one endpoint, the handles to read its counters, and the secrets it holds
/// (to scrub from anything printed).
pub struct EndpointStack<R: BalancedRequest> {
    /// The caches (if any) over retry over the balancer over the providers.
    pub service: EndpointService<R>,
    /// The endpoint's balancer's handle, for the per-provider statistics.
    pub balancer: BalancerHandle<R>,
    /// The exact cache of a `[cache]` table: in front of chat and completions (its counters
    /// count their lookups); for embeddings it holds the store and settings the embedding
    /// cache uses (to check the store at start) and its counters stay at zero. Read the
    /// counters with [`EndpointStack::cache_stats`].
    pub cache: Option<CacheLayer>,
    /// Embeddings with a `[cache]` table: the per-input cache in front, counting inputs.
    pub embedding_cache: Option<EmbeddingCacheLayer>,
    /// Chat with a `[semantic_cache]` table: the semantic cache under the exact cache, for its
    /// counters and to save its index. Other endpoints have none.
    pub semantic: Option<SemanticCacheLayer>,
    /// Every API key and token in use (and a Redis URL, which may hold a password).
    pub secrets: Vec<SecretString>,
}

impl<R: BalancedRequest> EndpointStack<R> {
    /// Every provider's statistics on this endpoint's balancer, in config order.
    pub fn member_stats(&self) -> Vec<MemberStats> {
        self.balancer.stats()
    }

    /// The counters of the cache in front, when there is a `[cache]` table: per input for
    /// embeddings, per request (per prompt, for completions) otherwise.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        match (&self.embedding_cache, &self.cache) {
            (Some(embeddings), _) => Some(embeddings.stats()),
            (None, Some(exact)) => Some(exact.stats()),
            (None, None) => None,
        }
    }
}

/// A request type the stacks are built for: the caches of its endpoint over the retried
/// balancer. Implemented for [`ChatRequest`], [`EmbeddingRequest`] and [`CompletionRequest`].
pub trait StackEndpoint:
    CliEndpoint + EndpointRequest<Response = <Self as BalancedRequest>::Response>
{
    /// This endpoint's caches over `retried` (retry over the balancer); `cache` is the exact
    /// cache of the `[cache]` table, if any.
    fn with_caches(
        config: &Config,
        cache: Option<&CacheLayer>,
        retried: EndpointService<Self>,
    ) -> Result<Cached<Self>, ConfigError>;
}

/// What [`StackEndpoint::with_caches`] builds.
pub struct Cached<R: BalancedRequest> {
    /// The whole stack.
    pub service: EndpointService<R>,
    /// The per-input embedding cache in it, if any.
    pub embedding_cache: Option<EmbeddingCacheLayer>,
    /// The semantic cache in it, if any.
    pub semantic: Option<SemanticCacheLayer>,
}

impl StackEndpoint for ChatRequest {
    /// The exact cache over the semantic cache over `retried`.
    fn with_caches(
        config: &Config,
        cache: Option<&CacheLayer>,
        retried: Stack,
    ) -> Result<Cached<Self>, ConfigError> {
        let semantic = match &config.semantic_cache {
            None => None,
            Some(section) => {
                // The scope keys like the exact cache (namespace, family), so both agree on
                // what may share an answer; without one, the providers' family.
                let scope = cache.map_or_else(
                    || CacheConfig::new().family(crate::cache::family(&config.providers)),
                    |layer| layer.config().clone(),
                );
                let layer = section.settings.build_with_scope(scope).map_err(|err| {
                    section
                        .site
                        .error(&config.path, format!("`[semantic_cache]`: {err}"))
                })?;
                Some(layer)
            }
        };
        let service = under(cache, under(semantic.as_ref(), retried));
        Ok(Cached {
            service,
            embedding_cache: None,
            semantic,
        })
    }
}

impl StackEndpoint for EmbeddingRequest {
    /// The per-input embedding cache (the exact cache's store and settings) over `retried`.
    fn with_caches(
        _config: &Config,
        cache: Option<&CacheLayer>,
        retried: EndpointService<Self>,
    ) -> Result<Cached<Self>, ConfigError> {
        let embedding_cache = cache.map(|layer| {
            EmbeddingCacheLayer::with_config(Arc::clone(layer.store()), layer.config().clone())
        });
        let service = under(embedding_cache.as_ref(), retried);
        Ok(Cached {
            service,
            embedding_cache,
            semantic: None,
        })
    }
}

impl StackEndpoint for CompletionRequest {
    /// The exact cache over `retried` (prompt lists are split by the facade before they get
    /// here).
    fn with_caches(
        _config: &Config,
        cache: Option<&CacheLayer>,
        retried: EndpointService<Self>,
    ) -> Result<Cached<Self>, ConfigError> {
        Ok(Cached {
            service: under(cache, retried),
            embedding_cache: None,
            semantic: None,
        })
    }
}

/// `inner` under `layer` when there is one (boxed again), else `inner` as it is.
fn under<R, L>(layer: Option<&L>, inner: EndpointService<R>) -> EndpointService<R>
where
    R: BalancedRequest,
    L: Layer<EndpointService<R>>,
    L::Service: tower::Service<R, Response = Answer<R>, Error = Error> + Clone + Send + 'static,
    <L::Service as tower::Service<R>>::Future: Send + 'static,
{
    match layer {
        Some(layer) => BoxCloneService::new(layer.layer(inner)),
        None => inner,
    }
}

/// Builds the chat stack for `config`: [`build_for`] of [`ChatRequest`].
pub fn build(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BuiltStack, ConfigError> {
    build_for::<ChatRequest>(config, env)
}

/// Builds the stack of requests of type `R` for `config`, reading keys through `env` (then
/// from the variables the config kept from `./.env`, [`Config::lookup`]): the providers, the
/// balancer of `R`'s endpoint only, retry, and the endpoint's caches. Errors name the provider
/// and, for missing keys, the config line.
pub fn build_for<R: StackEndpoint>(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<EndpointStack<R>, ConfigError> {
    let env = &|name: &str| config.lookup(name, env);
    let (balancer, mut secrets) = balancer::<R>(config, env)?;
    let handle = balancer.handle();
    let cache = match &config.cache {
        None => None,
        Some(settings) => {
            let (layer, secret) = crate::cache::layer(config, settings, env)?;
            secrets.extend(secret);
            Some(layer)
        }
    };
    let retried =
        BoxCloneService::new(RetryLayer::new(retry_policy(&config.retry)).layer(balancer));
    let Cached {
        service,
        embedding_cache,
        semantic,
    } = R::with_caches(config, cache.as_ref(), retried)?;
    Ok(EndpointStack {
        service,
        balancer: handle,
        cache,
        embedding_cache,
        semantic,
        secrets,
    })
}

/// Everything [`build`] checks about the providers, without building the caches: every key
/// is read and every provider's HTTP client and the balancer are built (nothing is sent).
/// Returns the keys, in provider order.
pub fn check_providers(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<SecretString>, ConfigError> {
    let env = &|name: &str| config.lookup(name, env);
    balancer::<ChatRequest>(config, env).map(|(_, secrets)| secrets)
}

/// The balancer of `R`'s endpoint over one service per provider, and the providers' keys (in
/// provider order). Every endpoint's balancer has the same members, weights, limits and
/// settings; each counts its own usage (providers limit each model separately).
fn balancer<R>(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Balancer<R>, Vec<SecretString>), ConfigError>
where
    R: BalancedRequest + EndpointRequest<Response = <R as BalancedRequest>::Response>,
{
    let mut balancer = balancer_builder::<R>(&config.balance);
    let mut secrets = Vec::new();
    for provider in &config.providers {
        let (client, secret) = provider_client(config, provider, env)?;
        secrets.push(secret);
        let mut member = client.member::<R>(&provider.name).weight(provider.weight);
        if let Some(rpm) = provider.rpm {
            member = member.rpm(rpm);
        }
        if let Some(tpm) = provider.tpm {
            member = member.tpm(tpm);
        }
        balancer = balancer.member(member);
    }
    let balancer = balancer
        .build()
        .map_err(|err| config_error(config, None, &err))?;
    Ok((balancer, secrets))
}

/// The balancer settings of a `[balance]` table (members are added by the caller). The
/// strategy is the table's built-in strategy for requests of type `R`.
fn balancer_builder<R: BalancedRequest>(
    balance: &BalanceSettings,
) -> lbgpt_balance::BalancerBuilder<R> {
    let builder = Balancer::<R>::builder()
        .strategy(balance.strategy.built_in_for::<R>().unwrap_or_default())
        .max_wait(balance.max_wait)
        .breaker(BreakerConfig::new(
            balance.breaker_failures,
            balance.breaker_open,
        ));
    match balance.max_failovers {
        Some(failovers) => builder.max_failovers(failovers),
        None => builder,
    }
}

/// The retry policy of a `[retry]` table.
pub fn retry_policy(retry: &RetrySettings) -> RetryPolicy {
    let policy = RetryPolicy::default()
        .max_attempts(retry.max_attempts)
        .initial_backoff(retry.initial_backoff)
        .max_backoff(retry.max_backoff)
        .max_retry_after(retry.max_retry_after);
    match retry.deadline {
        Some(deadline) => policy.deadline(deadline),
        None => policy,
    }
}

/// One provider's HTTP client, before it joins a balancer: it serves every endpoint.
enum ProviderClient {
    OpenAi(OpenAiService),
    Azure(AzureService),
}

impl ProviderClient {
    /// The client as a member named `name` of a balancer of `R` (weight 1, no limits).
    fn member<R>(self, name: &str) -> Member<R>
    where
        R: BalancedRequest + EndpointRequest<Response = <R as BalancedRequest>::Response>,
    {
        match self {
            ProviderClient::OpenAi(service) => Member::new(name, service),
            ProviderClient::Azure(service) => Member::new(name, service),
        }
    }
}

/// The client of one `[[providers]]` table and its key (or token).
fn provider_client(
    config: &Config,
    provider: &ProviderSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(ProviderClient, SecretString), ConfigError> {
    let resolve = |source: &SecretSource| source.resolve(&config.path, &provider.name, env);
    let http = http_options(&provider.transport);
    let (built, secret) = match &provider.api {
        ProviderApi::OpenAi {
            base_url,
            organization,
            project,
            api_key,
        } => {
            let key = resolve(api_key)?;
            let mut openai = OpenAiConfig::new()
                .api_key(key.expose_secret())
                .base_url(base_url)
                .name(&provider.name)
                .http_options(http);
            if let Some(organization) = organization {
                openai = openai.organization(organization);
            }
            if let Some(project) = project {
                openai = openai.project(project);
            }
            let built = OpenAiService::new(openai).map(ProviderClient::OpenAi);
            (built, key)
        }
        ProviderApi::Azure {
            endpoint,
            api_version,
            deployments,
            auth,
        } => {
            let (azure, secret) = match auth {
                AzureCredential::ApiKey(source) => {
                    let key = resolve(source)?;
                    (AzureConfig::new(endpoint).api_key(key.expose_secret()), key)
                }
                AzureCredential::BearerToken(source) => {
                    let token = resolve(source)?;
                    let azure = AzureConfig::new(endpoint).bearer_token(token.expose_secret());
                    (azure, token)
                }
            };
            let mut azure = azure
                .deployments(deployments.clone())
                .name(&provider.name)
                .http_options(http);
            if let Some(version) = api_version {
                azure = azure.api_version(version);
            }
            let built = AzureService::new(azure).map(ProviderClient::Azure);
            (built, secret)
        }
    };
    match built {
        Ok(service) => Ok((service, secret)),
        Err(mut err) => {
            // Constructors never echo keys; scrub anyway, since this text is printed.
            err.redact(secret.expose_secret());
            Err(config_error(config, Some(provider), &err))
        }
    }
}

fn config_error(config: &Config, provider: Option<&ProviderSettings>, err: &Error) -> ConfigError {
    let text = match err {
        Error::Config(text) => text.clone(),
        other => other.to_string(),
    };
    match provider {
        Some(provider) => provider.site.error(
            &config.path,
            format!("provider \"{}\": {text}", provider.name),
        ),
        None => ConfigError::whole_file(&config.path, text),
    }
}

/// The HTTP settings of a provider: proxy (`"none"` for no proxy at all, unset for the
/// system settings), timeouts and extra headers.
fn http_options(transport: &TransportSettings) -> HttpOptions {
    let mut http = HttpOptions::new();
    match transport.proxy.as_deref() {
        Some(NO_PROXY) => http = http.no_proxy(),
        Some(url) => http = http.proxy(url),
        None => {}
    }
    if let Some(timeout) = transport.connect_timeout {
        http = http.connect_timeout(timeout);
    }
    if let Some(timeout) = transport.request_timeout {
        http = http.request_timeout(timeout);
    }
    for (name, value) in &transport.headers {
        http = http.header(name, value);
    }
    http
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::from_toml_str(Path::new("lbgpt.toml"), text).expect("valid config")
    }

    fn build_err(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> ConfigError {
        match build(config, env) {
            Ok(_) => panic!("expected an error"),
            Err(err) => err,
        }
    }

    #[tokio::test]
    async fn builds_both_kinds_and_keeps_their_secrets() {
        let config = config(
            "[[providers]]\nkind = \"openai\"\napi_key_env = \"K1\"\n\
             [[providers]]\nkind = \"azure\"\nendpoint = \"https://x.example\"\n\
             deployments = { m = \"d\" }\nbearer_token = \"inline-token\"\n",
        );
        let env = |name: &str| (name == "K1").then(|| "sk-one".to_owned());
        let built = build(&config, &env).expect("builds");
        let secrets: Vec<&str> = built.secrets.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(secrets, ["sk-one", "inline-token"]);
    }

    #[tokio::test]
    async fn client_errors_name_the_provider_and_its_line() {
        let config = config(
            "max_concurrent_requests = 2\n\n[[providers]]\nkind = \"openai\"\nname = \"p\"\n\
             api_key = \"sk-secret-in-file\"\nheaders = { \"x-a\" = \"bad\\nvalue\" }\n",
        );
        let err = build_err(&config, &|_| None);
        assert_eq!(err.line(), Some(3), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("provider \"p\"") && text.contains("x-a"),
            "{text}"
        );
        assert!(!text.contains("sk-secret-in-file"), "{text}");
    }

    #[tokio::test]
    async fn a_missing_default_variable_is_named() {
        let config = config("[[providers]]\nkind = \"openai\"\n");
        let err = build_err(&config, &|_| None);
        assert!(err.message.contains("OPENAI_API_KEY"), "{err}");
        assert_eq!(err.line(), Some(1));
    }

    #[tokio::test]
    async fn keys_found_in_the_environment_or_dotenv_are_read_through_the_config() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dotenv = dir.path().join(".env");
        std::fs::write(
            &dotenv,
            "OPENAI_API_KEY_2=sk-from-dotenv\nLISTED_KEY=sk-listed\n",
        )
        .expect("written");
        let variables = lbgpt::env::EnvKeys::from_vars([("OPENAI_API_KEY_1", "sk-one")])
            .with_dotenv_file(&dotenv)
            .expect("parses");
        let config = config(
            "[[providers]]\nkind = \"openai\"\nname = \"named\"\napi_key_env = \"LISTED_KEY\"\n\
             [[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\n",
        )
        .resolve_env(variables)
        .expect("resolves");
        // The process environment (here: nothing) first, then the variables the config kept.
        let built = build(&config, &|_| None).expect("builds");
        let secrets: Vec<&str> = built.secrets.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(secrets, ["sk-listed", "sk-one", "sk-from-dotenv"]);
        let names: Vec<String> = built
            .balancer
            .stats()
            .into_iter()
            .map(|member| member.name.to_string())
            .collect();
        assert_eq!(names, ["named", "OPENAI_API_KEY_1", "OPENAI_API_KEY_2"]);
        let checked = check_providers(&config, &|name| {
            (name == "OPENAI_API_KEY_1").then(|| "sk-process".to_owned())
        })
        .expect("checks");
        assert_eq!(checked[1].expose_secret(), "sk-process", "the process wins");
    }

    #[tokio::test]
    async fn every_endpoint_gets_the_same_members_and_its_own_caches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config(&format!(
            "[balance]\nstrategy = \"round_robin\"\n\
             [cache]\nkind = \"disk\"\npath = \"{}\"\nnamespace = \"ns\"\n\
             [[providers]]\nkind = \"openai\"\nname = \"a\"\napi_key = \"sk-a\"\nrpm = 60\n\
             [[providers]]\nkind = \"azure\"\nname = \"b\"\nendpoint = \"https://x.example\"\n\
             deployments = {{ m = \"d\" }}\napi_key = \"k-b\"\nweight = 2\n",
            dir.path().display()
        ));
        let names = |stats: Vec<MemberStats>| -> Vec<String> {
            stats.into_iter().map(|m| m.name.to_string()).collect()
        };

        let chat = build_for::<ChatRequest>(&config, &|_| None).expect("chat");
        assert_eq!(names(chat.member_stats()), ["a", "b"]);
        assert!(chat.cache.is_some() && chat.embedding_cache.is_none());

        let embeddings = build_for::<EmbeddingRequest>(&config, &|_| None).expect("embeddings");
        assert_eq!(names(embeddings.member_stats()), ["a", "b"]);
        let per_input = embeddings
            .embedding_cache
            .as_ref()
            .expect("a per-input cache");
        let exact = embeddings.cache.as_ref().expect("the [cache] store");
        assert!(Arc::ptr_eq(per_input.store(), exact.store()), "one store");
        assert_eq!(per_input.config().get_namespace(), "ns");
        assert_eq!(per_input.config().get_family(), "openai+azure");
        assert!(embeddings.semantic.is_none());

        let completions = build_for::<CompletionRequest>(&config, &|_| None).expect("completions");
        assert_eq!(names(completions.member_stats()), ["a", "b"]);
        assert!(completions.cache.is_some() && completions.embedding_cache.is_none());
        let secrets: Vec<&str> = completions
            .secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["sk-a", "k-b"]);
    }

    #[tokio::test]
    async fn only_chat_loads_the_semantic_cache() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config(&format!(
            "[semantic_cache]\nmodel_dir = \"{}\"\n\
             [[providers]]\nkind = \"openai\"\napi_key = \"sk-a\"\n",
            dir.path().join("no-model-here").display()
        ));
        let err = match build_for::<ChatRequest>(&config, &|_| None) {
            Ok(_) => panic!("the model is missing"),
            Err(err) => err,
        };
        assert!(err.message.contains("[semantic_cache]"), "{err}");
        let embeddings = build_for::<EmbeddingRequest>(&config, &|_| None).expect("builds");
        assert!(embeddings.semantic.is_none() && embeddings.cache_stats().is_none());
        assert!(build_for::<CompletionRequest>(&config, &|_| None).is_ok());
    }

    #[test]
    fn retry_settings_become_the_policy() {
        let config = config(
            "[retry]\nmax_attempts = 3\ndeadline_ms = 5000\n[[providers]]\nkind = \"openai\"\n",
        );
        let policy = retry_policy(&config.retry);
        assert_eq!(policy.get_max_attempts(), 3);
        assert!(policy.validate().is_ok());
    }
}
