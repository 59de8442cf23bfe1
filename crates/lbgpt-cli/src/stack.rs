//! Builds the service stack a config describes: one provider service per `[[providers]]`
//! table, the [`Balancer`] over them (weights, limits, strategy, failover, health), the retry
//! layer around it, the semantic cache of a `[semantic_cache]` table around that, and the
//! exact cache of a `[cache]` table in front of it all
//! (`Cache<SemanticCache<Retry<Balancer>>>`).

use crate::config::{
    AzureCredential, BalanceSettings, Config, ConfigError, ProviderApi, ProviderSettings,
    RetrySettings, SecretSource, TransportSettings, NO_PROXY,
};
use lbgpt::semantic::SemanticCacheLayer;
use lbgpt_azure::{AzureConfig, AzureService};
use lbgpt_balance::retry::{RetryLayer, RetryPolicy};
use lbgpt_balance::{Balancer, BalancerHandle, BreakerConfig, Member};
use lbgpt_cache::{CacheConfig, CacheLayer};
use lbgpt_core::{ChatRequest, ChatResponse, Error};
use lbgpt_openai::transport::HttpOptions;
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use secrecy::{ExposeSecret, SecretString};
use tower::util::BoxCloneService;
use tower::{Layer, ServiceBuilder};

/// The whole stack as one cloneable service.
pub type Stack = BoxCloneService<ChatRequest, ChatResponse, Error>;

/// One provider's service, before it joins the balancer.
type ProviderService = BoxCloneService<ChatRequest, ChatResponse, Error>;

/// A built stack and the secrets it holds (to scrub from anything printed).
pub struct BuiltStack {
    /// The exact cache (if any) around the semantic cache (if any) around retry around the
    /// balancer around the providers.
    pub service: Stack,
    /// The balancer's handle, for the per-provider statistics.
    pub balancer: BalancerHandle,
    /// The exact cache in front, for its counters.
    pub cache: Option<CacheLayer>,
    /// The semantic cache under it, for its counters and to save its index.
    pub semantic: Option<SemanticCacheLayer>,
    /// Every API key and token in use (and a Redis URL, which may hold a password).
    pub secrets: Vec<SecretString>,
}

/// Builds the stack for `config`, reading keys through `env` (then from the variables the
/// config kept from `./.env`, [`Config::lookup`]). Errors name the provider and, for missing
/// keys, the config line.
pub fn build(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BuiltStack, ConfigError> {
    let env = &|name: &str| config.lookup(name, env);
    let (balancer, mut secrets) = balancer(config, env)?;
    let handle = balancer.handle();
    let cache = match &config.cache {
        None => None,
        Some(settings) => {
            let (layer, secret) = crate::cache::layer(config, settings, env)?;
            secrets.extend(secret);
            Some(layer)
        }
    };
    let semantic = match &config.semantic_cache {
        None => None,
        Some(section) => {
            // The scope keys like the exact cache (namespace, family), so both agree on what
            // may share an answer; without one, the providers' family.
            let scope = cache.as_ref().map_or_else(
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
    let retry = ServiceBuilder::new()
        .layer(RetryLayer::new(retry_policy(&config.retry)))
        .service(balancer);
    let below_exact = match &semantic {
        Some(layer) => BoxCloneService::new(layer.layer(retry)),
        None => BoxCloneService::new(retry),
    };
    let service = match &cache {
        Some(layer) => BoxCloneService::new(layer.layer(below_exact)),
        None => below_exact,
    };
    Ok(BuiltStack {
        service,
        balancer: handle,
        cache,
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
    balancer(config, env).map(|(_, secrets)| secrets)
}

/// The balancer over one service per provider, and the providers' keys (in provider order).
fn balancer(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Balancer, Vec<SecretString>), ConfigError> {
    let mut balancer = balancer_builder(&config.balance);
    let mut secrets = Vec::new();
    for provider in &config.providers {
        let (service, secret) = provider_service(config, provider, env)?;
        secrets.push(secret);
        let mut member = Member::new(provider.name.as_str(), service).weight(provider.weight);
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

/// The balancer settings of a `[balance]` table (members are added by the caller).
fn balancer_builder(balance: &BalanceSettings) -> lbgpt_balance::BalancerBuilder {
    let builder = Balancer::builder()
        .strategy(balance.strategy.clone())
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

fn provider_service(
    config: &Config,
    provider: &ProviderSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(ProviderService, SecretString), ConfigError> {
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
            let built = OpenAiService::new(openai).map(BoxCloneService::new);
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
            let built = AzureService::new(azure).map(BoxCloneService::new);
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
