//! Checks a parsed [`RawConfig`] and turns it into a [`Config`]: defaults, ranges, keys that
//! belong to the other provider (or cache) kind, duplicate names. Every error names the key
//! and its line.

use super::error::ConfigError;
use super::file::{
    CacheKind, ProviderKind, RawBalance, RawCache, RawConfig, RawEnvKey, RawProvider, RawRetry,
    RawSemanticCache,
};
use super::secret::ConfigSecret;
use super::settings::{
    is_redis_url, redis_url_hint, AzureCredential, BalanceSettings, CacheSettings,
    CacheStoreSettings, Config, EnvGroup, EnvKeyLimits, ErrorSite, ProviderApi, ProviderSettings,
    RetrySettings, SecretSource, SemanticPathSites, SemanticSettings, TransportSettings,
    DEFAULT_AZURE_KEY_ENV, DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_OPENAI_BASE_URL, DEFAULT_OPENAI_KEY_ENV, DEFAULT_WEIGHT, NO_PROXY,
};
use lbgpt::env::KeyPattern;
use lbgpt_balance::Strategy;
use secrecy::ExposeSecret;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// Validates `raw`, parsed from `source` read from `path`.
pub fn validate(path: &Path, source: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let checker = Checker { path, source };

    let max_concurrent_requests = match &raw.max_concurrent_requests {
        None => DEFAULT_MAX_CONCURRENT_REQUESTS,
        Some(value) => checker.positive(value, "max_concurrent_requests")? as usize,
    };

    let retry = match raw.retry {
        None => RetrySettings::default(),
        Some(retry) => checker.retry(retry.into_inner())?,
    };

    let no_provider_tables = raw.providers.is_empty();
    let mut providers = Vec::with_capacity(raw.providers.len());
    let mut env_groups = Vec::new();
    let mut names = HashSet::new();
    let mut per_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
    for provider in raw.providers {
        let span = provider.span();
        let provider = provider.into_inner();
        if provider.from_env.is_some() {
            env_groups.push(checker.env_group(span, provider, providers.len())?);
            continue;
        }
        let Some(kind) = provider.kind.as_ref().map(|kind| *kind.get_ref()) else {
            return Err(checker.error(
                span,
                "a `[[providers]]` table needs the key `kind` (\"openai\" or \"azure\"), or \
                 `from_env` to take its keys from the environment (e.g. \
                 from_env = \"OPENAI_API_KEY*\")",
            ));
        };
        let count = per_kind.entry(kind.as_str()).or_default();
        *count += 1;
        let default_name = format!("{}-{count}", kind.as_str());
        let name_span = provider.name.as_ref().map_or(span.clone(), Spanned::span);
        let settings = checker.provider(span, kind, provider, default_name)?;
        if !names.insert(settings.name.clone()) {
            return Err(checker.error(
                name_span,
                format!(
                    "key `name`: provider name \"{}\" is used twice; names must be unique",
                    settings.name
                ),
            ));
        }
        providers.push(settings);
    }
    if no_provider_tables {
        // Every key of the environment, as `lbgpt run` does without a config file.
        env_groups.push(EnvGroup::every_key());
    }
    let env_keys = match raw.env {
        None => BTreeMap::new(),
        Some(tables) => checker.env_keys(tables.into_inner())?,
    };
    if env_groups.is_empty() {
        if let Some((name, limits)) = env_keys.iter().next() {
            return Err(limits.site.error(
                path,
                format!(
                    "`[env.{name}]` sets the limits of a key taken from the environment, but \
                     no `[[providers]]` table has `from_env` (a file with providers of its own \
                     takes keys from the environment only through `from_env`)"
                ),
            ));
        }
    }

    let balance = match raw.balance {
        None => BalanceSettings::default(),
        Some(balance) => checker.balance(balance.into_inner())?,
    };

    let cache = match raw.cache {
        None => None,
        Some(cache) => {
            let span = cache.span();
            Some(checker.cache(span, cache.into_inner())?)
        }
    };

    let semantic_cache = match raw.semantic_cache {
        None => None,
        Some(table) => {
            let span = table.span();
            Some(checker.semantic_cache(span, table.into_inner())?)
        }
    };

    Ok(Config {
        path: path.to_owned(),
        max_concurrent_requests,
        retry,
        balance,
        providers,
        cache,
        semantic_cache,
        env_groups,
        env_keys,
        variables: None,
    })
}

struct Checker<'a> {
    path: &'a Path,
    source: &'a str,
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.path, self.source, span, message)
    }

    /// An error at `span` that does not quote its line (the line holds a secret).
    fn error_without_quote(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            source_line: None,
            ..self.error(span, message)
        }
    }

    fn site(&self, span: Range<usize>) -> ErrorSite {
        let error = self.error(span, "");
        ErrorSite {
            location: error.location,
            source_line: error.source_line,
        }
    }

    fn positive(&self, value: &Spanned<i64>, key: &str) -> Result<u64, ConfigError> {
        let number = *value.get_ref();
        if number < 1 {
            return Err(self.error(
                value.span(),
                format!("key `{key}`: must be at least 1, got {number}"),
            ));
        }
        Ok(number as u64)
    }

    fn non_negative(&self, value: &Spanned<i64>, key: &str) -> Result<u64, ConfigError> {
        let number = *value.get_ref();
        u64::try_from(number).map_err(|_| {
            self.error(
                value.span(),
                format!("key `{key}`: must be 0 or more, got {number}"),
            )
        })
    }

    /// The key as written on the line of `span` (`limit_rpm` for an alias of `rpm`), or
    /// `fallback` when the line does not show it.
    fn written_key<'k>(&self, span: &Range<usize>, fallback: &'k str) -> std::borrow::Cow<'k, str> {
        let start = self
            .source
            .get(..span.start)
            .map_or(0, |before| before.rfind('\n').map_or(0, |i| i + 1));
        self.source
            .get(start..span.start)
            .and_then(|line| line.split('=').next())
            .map(str::trim)
            .filter(|key| {
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .map_or(std::borrow::Cow::Borrowed(fallback), |key| {
                std::borrow::Cow::Owned(key.to_owned())
            })
    }

    fn limit(&self, value: &Option<Spanned<i64>>, key: &str) -> Result<Option<u64>, ConfigError> {
        value
            .as_ref()
            .map(|v| self.positive(v, &self.written_key(&v.span(), key)))
            .transpose()
    }

    fn balance(&self, raw: RawBalance) -> Result<BalanceSettings, ConfigError> {
        let defaults = BalanceSettings::default();
        let strategy = match &raw.strategy {
            None => defaults.strategy,
            Some(name) => name.get_ref().parse::<Strategy>().map_err(|_| {
                let known: Vec<String> = Strategy::NAMES
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect();
                self.error(
                    name.span(),
                    format!(
                        "key `strategy`: unknown strategy \"{}\"; expected one of {}",
                        name.get_ref(),
                        known.join(", ")
                    ),
                )
            })?,
        };
        let max_wait = match &raw.max_wait_ms {
            None => defaults.max_wait,
            Some(value) => Duration::from_millis(self.non_negative(value, "max_wait_ms")?),
        };
        let max_failovers = raw
            .max_failovers
            .as_ref()
            .map(|value| {
                self.non_negative(value, "max_failovers")
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            })
            .transpose()?;
        let breaker_failures = match &raw.breaker_failures {
            None => defaults.breaker_failures,
            Some(value) => {
                let n = self.positive(value, "breaker_failures")?;
                u32::try_from(n).map_err(|_| {
                    self.error(
                        value.span(),
                        format!("key `breaker_failures`: {n} is too large"),
                    )
                })?
            }
        };
        let breaker_open = self
            .millis(&raw.breaker_open_ms, "breaker_open_ms")?
            .unwrap_or(defaults.breaker_open);
        Ok(BalanceSettings {
            strategy,
            max_wait,
            max_failovers,
            breaker_failures,
            breaker_open,
        })
    }

    fn cache(&self, span: Range<usize>, raw: RawCache) -> Result<CacheSettings, ConfigError> {
        let kind = *raw.kind.get_ref();
        self.reject_foreign_cache_keys(kind, &raw)?;
        let store = match kind {
            CacheKind::Memory => CacheStoreSettings::Memory {
                max_entries: match &raw.max_entries {
                    None => DEFAULT_CACHE_MAX_ENTRIES,
                    Some(value) => self.positive(value, "max_entries")?,
                },
            },
            CacheKind::Disk => {
                let Some(path) = &raw.path else {
                    return Err(self.error(
                        span,
                        "`[cache]` with kind = \"disk\" needs the key `path`: the cache's \
                         directory, e.g. path = \".lbgpt-cache\"",
                    ));
                };
                let text = path.get_ref().trim();
                if text.is_empty() {
                    return Err(self.error(path.span(), "key `path`: must not be empty"));
                }
                let dir = Path::new(text);
                let dir = match self.path.parent() {
                    Some(base) if dir.is_relative() => base.join(dir),
                    _ => dir.to_owned(),
                };
                CacheStoreSettings::Disk { path: dir }
            }
            CacheKind::Redis => CacheStoreSettings::Redis {
                url: self.redis_url(&span, raw.url, raw.url_env)?,
            },
        };
        Ok(CacheSettings {
            store,
            ttl: self.millis(&raw.ttl_ms, "ttl_ms")?,
            namespace: raw.namespace.map(Spanned::into_inner).unwrap_or_default(),
            site: self.site(span),
        })
    }

    /// The Redis URL of a `[cache]` table: `url` (checked here) or `url_env` (read and checked
    /// when the cache is opened). The URL may hold a password, so no message quotes it.
    fn redis_url(
        &self,
        span: &Range<usize>,
        url: Option<Spanned<ConfigSecret>>,
        url_env: Option<Spanned<String>>,
    ) -> Result<SecretSource, ConfigError> {
        match (url, url_env) {
            (Some(_), Some(env)) => Err(self.error(
                env.span(),
                "keys `url` and `url_env` are both set; use one of them",
            )),
            (Some(url), None) => {
                let is_url = is_redis_url(url.get_ref().clone().into_secret().expose_secret());
                if !is_url {
                    let message = format!("key `url`: not a Redis URL; {}", redis_url_hint());
                    return Err(self.error_without_quote(url.span(), message));
                }
                Ok(SecretSource::Inline(url.into_inner()))
            }
            (None, Some(env)) => {
                let var = env.get_ref().trim();
                if var.is_empty() {
                    return Err(self.error(env.span(), "key `url_env`: must not be empty"));
                }
                Ok(SecretSource::Env {
                    var: var.to_owned(),
                    key: Some("url_env"),
                    site: self.site(env.span()),
                })
            }
            (None, None) => Err(self.error(
                span.clone(),
                "`[cache]` with kind = \"redis\" needs the key `url` (e.g. \
                 url = \"redis://127.0.0.1:6379/0\") or `url_env` (an environment variable \
                 holding the URL)",
            )),
        }
    }

    /// Keys of a `[cache]` table that belong to another kind are errors naming the key.
    fn reject_foreign_cache_keys(
        &self,
        kind: CacheKind,
        raw: &RawCache,
    ) -> Result<(), ConfigError> {
        let owners = [
            (
                "max_entries",
                raw.max_entries.as_ref().map(Spanned::span),
                CacheKind::Memory,
            ),
            (
                "path",
                raw.path.as_ref().map(Spanned::span),
                CacheKind::Disk,
            ),
            ("url", raw.url.as_ref().map(Spanned::span), CacheKind::Redis),
            (
                "url_env",
                raw.url_env.as_ref().map(Spanned::span),
                CacheKind::Redis,
            ),
        ];
        let first = owners
            .into_iter()
            .filter(|(_, _, owner)| *owner != kind)
            .filter_map(|(key, span, owner)| span.map(|span| (key, span, owner)))
            .min_by_key(|(_, span, _)| span.start);
        match first {
            None => Ok(()),
            Some((key, span, owner)) => {
                let message = format!(
                    "key `{key}` belongs to kind = \"{}\" caches, but this cache has \
                     kind = \"{}\"",
                    owner.as_str(),
                    kind.as_str()
                );
                Err(if key == "url" {
                    self.error_without_quote(span, message)
                } else {
                    self.error(span, message)
                })
            }
        }
    }

    fn semantic_cache(
        &self,
        span: Range<usize>,
        raw: RawSemanticCache,
    ) -> Result<SemanticSettings, ConfigError> {
        let key_error = |value_span: Range<usize>, key: &str, problem: String| {
            self.error(
                value_span,
                format!("`[semantic_cache]` key `{key}`: {problem}"),
            )
        };
        let mut settings = lbgpt::semantic::SemanticCacheSettings::default();
        settings.model_dir = self.semantic_path(&raw.model_dir, "model_dir")?;
        settings.runtime_library = self.semantic_path(&raw.runtime_library, "runtime_library")?;
        settings.index_dir = self.semantic_path(&raw.index_dir, "index_dir")?;
        if let Some(method) = &raw.method {
            let name = method.get_ref().trim();
            if lbgpt_core::EmbedMethod::from_name(name).is_none() {
                return Err(key_error(
                    method.span(),
                    "method",
                    format!(
                        "unknown method \"{name}\"; expected one of `last_user`, `user_only`, \
                         `all`, `system_only`"
                    ),
                ));
            }
            settings.method = Some(name.to_owned());
        }
        if let Some(threshold) = &raw.threshold {
            let value = *threshold.get_ref();
            if !(0.0..=1.0).contains(&value) {
                return Err(key_error(
                    threshold.span(),
                    "threshold",
                    format!("must be between 0 and 1 (a cosine similarity), got {value}"),
                ));
            }
            settings.threshold = Some(value as f32);
        }
        settings.guard = raw.guard.map(Spanned::into_inner);
        settings.allow_unsafe = raw.allow_unsafe.map(Spanned::into_inner);
        if let Some(value) = &raw.max_entries {
            let max = *value.get_ref();
            if max < 1 {
                return Err(key_error(
                    value.span(),
                    "max_entries",
                    format!("must be at least 1, got {max}"),
                ));
            }
            settings.max_entries = Some(usize::try_from(max).unwrap_or(usize::MAX));
        }
        if let Some(value) = &raw.sessions {
            let sessions = *value.get_ref();
            if !(1..=64).contains(&sessions) {
                return Err(key_error(
                    value.span(),
                    "sessions",
                    format!("must be between 1 and 64, got {sessions}"),
                ));
            }
            settings.sessions = usize::try_from(sessions).ok();
        }
        if let Some(value) = &raw.max_batch {
            let max_batch = *value.get_ref();
            if !(1..=4096).contains(&max_batch) {
                return Err(key_error(
                    value.span(),
                    "max_batch",
                    format!("must be between 1 and 4096, got {max_batch}"),
                ));
            }
            settings.max_batch = usize::try_from(max_batch).ok();
        }
        // Whatever the crate itself checks beyond the ranges above.
        settings
            .semantic_config()
            .map(drop)
            .and_then(|()| settings.index_config().validate())
            .map_err(|err| self.error(span.clone(), format!("`[semantic_cache]`: {err}")))?;
        let key_site =
            |value: &Option<Spanned<String>>| value.as_ref().map(|value| self.site(value.span()));
        Ok(SemanticSettings {
            settings,
            site: self.site(span),
            path_sites: SemanticPathSites {
                model_dir: key_site(&raw.model_dir),
                runtime_library: key_site(&raw.runtime_library),
                index_dir: key_site(&raw.index_dir),
            },
        })
    }

    /// A path key of `[semantic_cache]`: not empty; relative to the config file's directory.
    fn semantic_path(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
    ) -> Result<Option<std::path::PathBuf>, ConfigError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = value.get_ref().trim();
        if text.is_empty() {
            return Err(self.error(
                value.span(),
                format!("`[semantic_cache]` key `{key}`: must not be empty"),
            ));
        }
        let path = Path::new(text);
        Ok(Some(match self.path.parent() {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_owned(),
        }))
    }

    fn millis(
        &self,
        value: &Option<Spanned<i64>>,
        key: &str,
    ) -> Result<Option<Duration>, ConfigError> {
        value
            .as_ref()
            .map(|v| self.positive(v, key).map(Duration::from_millis))
            .transpose()
    }

    fn retry(&self, raw: RawRetry) -> Result<RetrySettings, ConfigError> {
        let defaults = RetrySettings::default();
        let max_attempts = match &raw.max_attempts {
            None => defaults.max_attempts,
            Some(value) => {
                let n = self.positive(value, "max_attempts")?;
                u32::try_from(n).map_err(|_| {
                    self.error(
                        value.span(),
                        format!("key `max_attempts`: {n} is too large"),
                    )
                })?
            }
        };
        let initial_backoff = self
            .millis(&raw.initial_backoff_ms, "initial_backoff_ms")?
            .unwrap_or(defaults.initial_backoff);
        let max_backoff = self
            .millis(&raw.max_backoff_ms, "max_backoff_ms")?
            .unwrap_or(defaults.max_backoff);
        if initial_backoff > max_backoff {
            let span = raw
                .initial_backoff_ms
                .as_ref()
                .or(raw.max_backoff_ms.as_ref())
                .map_or(0..0, Spanned::span);
            return Err(self.error(
                span,
                format!(
                    "key `initial_backoff_ms` ({} ms) must not exceed `max_backoff_ms` ({} ms)",
                    initial_backoff.as_millis(),
                    max_backoff.as_millis()
                ),
            ));
        }
        let max_retry_after = self
            .millis(&raw.max_retry_after_ms, "max_retry_after_ms")?
            .unwrap_or(defaults.max_retry_after);
        let deadline = self.millis(&raw.deadline_ms, "deadline_ms")?;
        Ok(RetrySettings {
            max_attempts,
            initial_backoff,
            max_backoff,
            max_retry_after,
            deadline,
        })
    }

    fn provider(
        &self,
        span: Range<usize>,
        kind: ProviderKind,
        raw: RawProvider,
        default_name: String,
    ) -> Result<ProviderSettings, ConfigError> {
        self.reject_foreign_keys(kind, &raw)?;

        let name = match &raw.name {
            None => default_name,
            Some(name) => {
                let text = name.get_ref().trim();
                if text.is_empty() {
                    return Err(self.error(name.span(), "key `name`: must not be empty"));
                }
                text.to_owned()
            }
        };

        let transport = TransportSettings {
            proxy: match &raw.proxy {
                None => None,
                Some(proxy) if proxy.get_ref().trim() == NO_PROXY => Some(NO_PROXY.to_owned()),
                Some(proxy) => {
                    Some(self.url(proxy, "proxy", &["http", "https", "socks5", "socks5h"])?)
                }
            },
            connect_timeout: self.millis(&raw.connect_timeout_ms, "connect_timeout_ms")?,
            request_timeout: self.millis(&raw.request_timeout_ms, "request_timeout_ms")?,
            headers: self.headers(&raw.headers)?,
        };

        let api = match kind {
            ProviderKind::Openai => ProviderApi::OpenAi {
                base_url: match &raw.base_url {
                    None => DEFAULT_OPENAI_BASE_URL.to_owned(),
                    Some(url) => self.api_url(url, "base_url")?,
                },
                organization: non_empty(&raw.organization),
                project: non_empty(&raw.project),
                api_key: self.secret(
                    &span,
                    (raw.api_key, "api_key"),
                    (raw.api_key_env, "api_key_env"),
                    DEFAULT_OPENAI_KEY_ENV,
                )?,
            },
            ProviderKind::Azure => {
                let endpoint = match &raw.endpoint {
                    None => {
                        return Err(self.error(
                            span,
                            format!(
                                "provider \"{name}\": key `endpoint` is required for \
                                 kind = \"azure\" (e.g. \"https://my-resource.openai.azure.com\")"
                            ),
                        ))
                    }
                    Some(url) => self.api_url(url, "endpoint")?,
                };
                let deployments = match &raw.deployments {
                    Some(map) if !map.get_ref().is_empty() => map.get_ref().clone(),
                    Some(map) => {
                        return Err(self.error(
                            map.span(),
                            "key `deployments`: must map at least one model to a deployment, \
                             e.g. { \"gpt-4o\" = \"my-gpt4o-deployment\" }",
                        ))
                    }
                    None => {
                        return Err(self.error(
                            span,
                            format!(
                                "provider \"{name}\": key `deployments` is required for \
                                 kind = \"azure\": a table of model name -> deployment name, \
                                 e.g. deployments = {{ \"gpt-4o\" = \"my-gpt4o-deployment\" }}"
                            ),
                        ))
                    }
                };
                let has_bearer = raw.bearer_token.is_some() || raw.bearer_token_env.is_some();
                let has_key = raw.api_key.is_some() || raw.api_key_env.is_some();
                let auth = if has_bearer {
                    if has_key {
                        let key_span = raw
                            .api_key
                            .as_ref()
                            .map(Spanned::span)
                            .or_else(|| raw.api_key_env.as_ref().map(Spanned::span))
                            .unwrap_or(span.clone());
                        return Err(self.error(
                            key_span,
                            format!(
                                "provider \"{name}\": set either an API key (`api_key` / \
                                 `api_key_env`) or a bearer token (`bearer_token` / \
                                 `bearer_token_env`), not both"
                            ),
                        ));
                    }
                    AzureCredential::BearerToken(self.secret(
                        &span,
                        (raw.bearer_token, "bearer_token"),
                        (raw.bearer_token_env, "bearer_token_env"),
                        DEFAULT_AZURE_KEY_ENV,
                    )?)
                } else {
                    AzureCredential::ApiKey(self.secret(
                        &span,
                        (raw.api_key, "api_key"),
                        (raw.api_key_env, "api_key_env"),
                        DEFAULT_AZURE_KEY_ENV,
                    )?)
                };
                ProviderApi::Azure {
                    endpoint,
                    api_version: non_empty(&raw.api_version),
                    deployments,
                    auth,
                }
            }
        };

        let weight = self.weight(&raw.weight)?.unwrap_or(DEFAULT_WEIGHT);
        let rpm = self.limit(&raw.rpm, "rpm")?;
        let tpm = self.limit(&raw.tpm, "tpm")?;

        Ok(ProviderSettings {
            name,
            transport,
            api,
            weight,
            rpm,
            tpm,
            site: self.site(span),
            from_env: None,
        })
    }

    /// A provider's `weight`: a number >= 0.
    fn weight(&self, value: &Option<Spanned<f64>>) -> Result<Option<f64>, ConfigError> {
        let Some(weight) = value else {
            return Ok(None);
        };
        let number = *weight.get_ref();
        if !(number.is_finite() && number >= 0.0) {
            return Err(self.error(
                weight.span(),
                format!("key `weight`: must be a number >= 0, got {number}"),
            ));
        }
        Ok(Some(number))
    }

    /// A provider's `headers`: valid header names.
    fn headers(
        &self,
        value: &Option<Spanned<BTreeMap<String, String>>>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let Some(headers) = value else {
            return Ok(BTreeMap::new());
        };
        if let Some(bad) = headers.get_ref().keys().find(|k| !is_header_name(k)) {
            // Header values are often credentials (`Authorization`): the line is not quoted.
            return Err(self.error_without_quote(
                headers.span(),
                format!("key `headers`: \"{bad}\" is not a valid HTTP header name"),
            ));
        }
        Ok(headers.get_ref().clone())
    }

    /// A `[[providers]]` table with `from_env`: its members come from the environment later.
    fn env_group(
        &self,
        span: Range<usize>,
        raw: RawProvider,
        position: usize,
    ) -> Result<EnvGroup, ConfigError> {
        let Some(from_env) = &raw.from_env else {
            return Err(self.error(span, "internal error: not a `from_env` table"));
        };
        let pattern = KeyPattern::parse(from_env.get_ref())
            .map_err(|err| self.error(from_env.span(), format!("key `from_env`: {err}")))?;
        const PER_KEY: &str = "each key's own variables set it (see docs/config.md, \
                               \"Keys from the environment\")";
        let not_here = [
            (
                "kind",
                raw.kind.as_ref().map(Spanned::span),
                "the pattern decides (OPENAI_API_KEY* are openai, AZURE_OPENAI_API_KEY* azure)",
            ),
            (
                "name",
                raw.name.as_ref().map(Spanned::span),
                "each provider is named by its key variable",
            ),
            (
                "api_key",
                raw.api_key.as_ref().map(Spanned::span),
                "the keys are the variables the pattern matches",
            ),
            (
                "api_key_env",
                raw.api_key_env.as_ref().map(Spanned::span),
                "the keys are the variables the pattern matches",
            ),
            (
                "bearer_token",
                raw.bearer_token.as_ref().map(Spanned::span),
                "the keys are the variables the pattern matches",
            ),
            (
                "bearer_token_env",
                raw.bearer_token_env.as_ref().map(Spanned::span),
                "the keys are the variables the pattern matches",
            ),
            ("proxy", raw.proxy.as_ref().map(Spanned::span), PER_KEY),
            (
                "base_url",
                raw.base_url.as_ref().map(Spanned::span),
                PER_KEY,
            ),
            (
                "endpoint",
                raw.endpoint.as_ref().map(Spanned::span),
                PER_KEY,
            ),
            (
                "api_version",
                raw.api_version.as_ref().map(Spanned::span),
                PER_KEY,
            ),
            (
                "deployments",
                raw.deployments.as_ref().map(Spanned::span),
                PER_KEY,
            ),
            (
                "organization",
                raw.organization.as_ref().map(Spanned::span),
                "use a `[[providers]]` table of its own for a key that needs it",
            ),
            (
                "project",
                raw.project.as_ref().map(Spanned::span),
                "use a `[[providers]]` table of its own for a key that needs it",
            ),
        ];
        let first = not_here
            .into_iter()
            .filter_map(|(key, span, hint)| span.map(|span| (key, span, hint)))
            .min_by_key(|(_, span, _)| span.start);
        if let Some((key, span, hint)) = first {
            return Err(self.error(
                span,
                format!("key `{key}` is not used with `from_env`: {hint}"),
            ));
        }
        Ok(EnvGroup {
            pattern: Some(pattern),
            position,
            weight: self.weight(&raw.weight)?,
            rpm: self.limit(&raw.rpm, "rpm")?,
            tpm: self.limit(&raw.tpm, "tpm")?,
            transport: TransportSettings {
                proxy: None,
                connect_timeout: self.millis(&raw.connect_timeout_ms, "connect_timeout_ms")?,
                request_timeout: self.millis(&raw.request_timeout_ms, "request_timeout_ms")?,
                headers: self.headers(&raw.headers)?,
            },
            site: Some(self.site(from_env.span())),
        })
    }

    /// The `[env.NAME]` tables: each names a key variable and sets its weight and limits.
    fn env_keys(
        &self,
        tables: BTreeMap<String, Spanned<RawEnvKey>>,
    ) -> Result<BTreeMap<String, EnvKeyLimits>, ConfigError> {
        let mut keys = BTreeMap::new();
        for (name, table) in tables {
            let span = table.span();
            let is_key_name = !name.contains('*') && KeyPattern::parse(&name).is_ok();
            if !is_key_name {
                return Err(self.error(
                    span,
                    format!(
                        "`[env.{name}]`: not the name of a key variable; expected \
                         OPENAI_API_KEY or AZURE_OPENAI_API_KEY, possibly followed by `_` and \
                         a suffix or by digits (e.g. [env.OPENAI_API_KEY_2])"
                    ),
                ));
            }
            let table = table.into_inner();
            let limits = EnvKeyLimits {
                weight: self.weight(&table.weight)?,
                rpm: self.limit(&table.rpm, "rpm")?,
                tpm: self.limit(&table.tpm, "tpm")?,
                site: self.site(span),
            };
            keys.insert(name, limits);
        }
        Ok(keys)
    }

    /// Keys that exist only for the other kind are errors naming the key.
    fn reject_foreign_keys(
        &self,
        kind: ProviderKind,
        raw: &RawProvider,
    ) -> Result<(), ConfigError> {
        fn span_of<T>(
            key: &'static str,
            value: &Option<Spanned<T>>,
        ) -> Option<(&'static str, Range<usize>)> {
            value.as_ref().map(|v| (key, v.span()))
        }
        let (present, other, hint) = match kind {
            ProviderKind::Openai => (
                vec![
                    span_of("endpoint", &raw.endpoint),
                    span_of("api_version", &raw.api_version),
                    span_of("deployments", &raw.deployments),
                    span_of("bearer_token", &raw.bearer_token),
                    span_of("bearer_token_env", &raw.bearer_token_env),
                ],
                "azure",
                "an openai provider takes `base_url`",
            ),
            ProviderKind::Azure => (
                vec![
                    span_of("base_url", &raw.base_url),
                    span_of("organization", &raw.organization),
                    span_of("project", &raw.project),
                ],
                "openai",
                "an azure provider takes `endpoint`",
            ),
        };
        let first = present
            .into_iter()
            .flatten()
            .min_by_key(|(_, span)| span.start);
        match first {
            None => Ok(()),
            Some((key, span)) => Err(self.error(
                span,
                format!(
                    "key `{key}` belongs to kind = \"{other}\" providers, but this provider \
                     has kind = \"{}\" ({hint})",
                    kind.as_str()
                ),
            )),
        }
    }

    /// An inline secret, an environment variable naming it, or the kind's default variable.
    fn secret(
        &self,
        provider_span: &Range<usize>,
        (inline, inline_key): (Option<Spanned<ConfigSecret>>, &'static str),
        (env, env_key): (Option<Spanned<String>>, &'static str),
        default_env: &str,
    ) -> Result<SecretSource, ConfigError> {
        match (inline, env) {
            (Some(_), Some(env)) => Err(self.error(
                env.span(),
                format!("keys `{inline_key}` and `{env_key}` are both set; use one of them"),
            )),
            (Some(secret), None) => Ok(SecretSource::Inline(secret.into_inner())),
            (None, Some(env)) => {
                let var = env.get_ref().trim();
                if var.is_empty() {
                    return Err(
                        self.error(env.span(), format!("key `{env_key}`: must not be empty"))
                    );
                }
                Ok(SecretSource::Env {
                    var: var.to_owned(),
                    key: Some(env_key),
                    site: self.site(env.span()),
                })
            }
            (None, None) => Ok(SecretSource::Env {
                var: default_env.to_owned(),
                key: None,
                site: self.site(provider_span.clone()),
            }),
        }
    }

    fn url(
        &self,
        value: &Spanned<String>,
        key: &str,
        schemes: &[&str],
    ) -> Result<String, ConfigError> {
        let text = value.get_ref().trim();
        let Some(problem) = lbgpt::env::url_problem(text, schemes) else {
            return Ok(text.to_owned());
        };
        let expected: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        let message = format!(
            "key `{key}`: not a usable URL ({problem}); expected a URL starting with {}",
            expected.join(" or ")
        );
        Err(self.url_error(value, message))
    }

    /// The URL of key `key`, the base of API requests (`base_url`, `endpoint`): an `http(s)`
    /// URL without query or fragment ([`lbgpt::env::api_url_problem`]).
    fn api_url(&self, value: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        let text = self.url(value, key, &["http", "https"])?;
        match lbgpt::env::api_url_problem(&text) {
            None => Ok(text),
            Some(problem) => {
                Err(self.url_error(value, format!("key `{key}`: not a usable URL ({problem})")))
            }
        }
    }

    /// An error at the URL `value`. The URL is never repeated, and its line is quoted only when
    /// it can hold no secret: not with credentials (`user:password@`) nor a query or fragment
    /// (`?key=...`), which must not end up in a terminal or a log.
    fn url_error(&self, value: &Spanned<String>, message: String) -> ConfigError {
        if value.get_ref().contains(['@', '?', '#']) {
            self.error_without_quote(value.span(), message)
        } else {
            self.error(value.span(), message)
        }
    }
}

fn non_empty(value: &Option<Spanned<String>>) -> Option<String> {
    value
        .as_ref()
        .map(|v| v.get_ref().trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
