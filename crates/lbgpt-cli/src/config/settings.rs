//! The validated configuration: what the rest of the CLI builds services from.

use super::error::{ConfigError, Location};
use super::file::{CacheKind, ProviderKind};
use super::secret::ConfigSecret;
use lbgpt::env::{EnvKeys, KeyPattern, VarOrigin};
use lbgpt_balance::Strategy;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default for `max_concurrent_requests`.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 5;
/// Default for `[retry] max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Default for `[retry] initial_backoff_ms`.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Default for `[retry] max_backoff_ms`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Default for `[retry] max_retry_after_ms`.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Default `base_url` of an `openai` provider.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The environment variable an `openai` provider reads its key from when none is configured.
pub const DEFAULT_OPENAI_KEY_ENV: &str = "OPENAI_API_KEY";
/// The environment variable an `azure` provider reads its key from when none is configured.
pub const DEFAULT_AZURE_KEY_ENV: &str = "AZURE_OPENAI_API_KEY";

/// Default for `[balance] max_wait_ms`.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);
/// Default for `[balance] breaker_failures`.
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// Default for `[balance] breaker_open_ms`.
pub const DEFAULT_BREAKER_OPEN: Duration = Duration::from_secs(30);
/// Default `weight` of a provider.
pub const DEFAULT_WEIGHT: f64 = 1.0;

/// Default for `[cache] max_entries` of a memory cache.
pub const DEFAULT_CACHE_MAX_ENTRIES: u64 = lbgpt_cache::MemoryStore::DEFAULT_MAX_ENTRIES;

/// The URL schemes `[cache] url` may use.
pub const REDIS_URL_SCHEMES: [&str; 3] = ["redis://", "unix://", "redis+unix://"];

/// The value of a provider's `proxy` key that turns off the system proxy settings.
pub const NO_PROXY: &str = "none";

/// A checked config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Most requests in flight at once, over all providers.
    pub max_concurrent_requests: usize,
    /// Retry settings, shared by all providers.
    pub retry: RetrySettings,
    /// How requests are spread over the providers.
    pub balance: BalanceSettings,
    /// The providers, in file order (the round-robin order).
    pub providers: Vec<ProviderSettings>,
    /// The exact cache in front of everything, if the file has a `[cache]` table.
    pub cache: Option<CacheSettings>,
    /// The semantic cache under the exact cache, if the file has a `[semantic_cache]` table.
    pub semantic_cache: Option<SemanticSettings>,
    /// Providers still to be taken from the environment (`from_env` tables, or every key when
    /// the file has no `[[providers]]`); empty once [`Config::resolve_env`] has added them to
    /// `providers`.
    pub env_groups: Vec<EnvGroup>,
    /// The `[env.NAME]` tables: weight and limits per key variable.
    pub env_keys: BTreeMap<String, EnvKeyLimits>,
    /// The variables keys are read from (the process environment and the `.env` files), once
    /// [`Config::resolve_env`] has run; `None` before (then only the process environment).
    pub variables: Option<EnvKeys>,
}

/// Providers to take from the environment: one per key variable that matches.
#[derive(Debug, Clone)]
pub struct EnvGroup {
    /// The `from_env` pattern; `None` for every key of both kinds (a file without
    /// `[[providers]]`, or no file at all).
    pub pattern: Option<KeyPattern>,
    /// How many `[[providers]]` tables with keys of their own come before it: its members take
    /// its place in the provider order.
    pub position: usize,
    /// The weight of its members (unless an `[env.NAME]` table sets one).
    pub weight: Option<f64>,
    /// The request limit per minute of each member (unless `[env.NAME]` sets one).
    pub rpm: Option<u64>,
    /// The token limit per minute of each member (unless `[env.NAME]` sets one).
    pub tpm: Option<u64>,
    /// Timeouts and extra headers of its members (their proxies come from the environment).
    pub transport: TransportSettings,
    /// Where its table is; `None` when it has none.
    pub site: Option<ErrorSite>,
}

impl EnvGroup {
    /// Every key of both kinds, with no table of its own: a file without `[[providers]]`, or
    /// no file at all (`lbgpt run` from the environment).
    pub fn every_key() -> Self {
        EnvGroup {
            pattern: None,
            position: 0,
            weight: None,
            rpm: None,
            tpm: None,
            transport: TransportSettings::default(),
            site: None,
        }
    }
}

/// An `[env.NAME]` table: the weight and limits of one key taken from the environment.
#[derive(Debug, Clone)]
pub struct EnvKeyLimits {
    /// Its share for the weighted strategies.
    pub weight: Option<f64>,
    /// Its request limit per minute.
    pub rpm: Option<u64>,
    /// Its token limit per minute.
    pub tpm: Option<u64>,
    /// Where the table is.
    pub site: ErrorSite,
}

/// Which variables a provider taken from the environment was built from (its key variable is
/// its name), for `lbgpt config check`.
#[derive(Debug, Clone)]
pub struct EnvProvenance {
    /// Where the key variable was set.
    pub key_origin: VarOrigin,
    /// The proxy's variable, if one was set.
    pub proxy_variable: Option<String>,
    /// The base URL's (openai) or endpoint's (azure) variable, if one was set.
    pub url_variable: Option<String>,
    /// The api-version's variable (azure), if one was set.
    pub api_version_variable: Option<String>,
    /// The deployment map's variable (azure).
    pub deployments_variable: Option<String>,
}

/// The `[semantic_cache]` table, checked: the semantic cache's settings (relative paths taken
/// from the config file's directory) and where the table is, for errors found when the model
/// is loaded or the index opened.
#[derive(Debug, Clone)]
pub struct SemanticSettings {
    /// What `lbgpt-semantic` builds the layer from.
    pub settings: lbgpt::semantic::SemanticCacheSettings,
    /// Where the table starts.
    pub site: ErrorSite,
    /// Where the `model_dir`, `runtime_library` and `index_dir` keys are, when they are set.
    pub path_sites: SemanticPathSites,
}

/// Where the path keys of a `[semantic_cache]` table are, for errors about their files.
#[derive(Debug, Clone, Default)]
pub struct SemanticPathSites {
    /// The `model_dir` line.
    pub model_dir: Option<ErrorSite>,
    /// The `runtime_library` line.
    pub runtime_library: Option<ErrorSite>,
    /// The `index_dir` line.
    pub index_dir: Option<ErrorSite>,
}

impl SemanticSettings {
    /// For the start line of a run: `threshold 0.85, guard on, index /dir` (or `index in
    /// memory`).
    pub fn describe(&self) -> String {
        let settings = &self.settings;
        let threshold = settings
            .threshold
            .unwrap_or(lbgpt::semantic::SemanticConfig::DEFAULT_THRESHOLD);
        let guard = if settings.guard == Some(false) {
            "off"
        } else {
            "on"
        };
        let index = settings
            .index_dir
            .as_ref()
            .map_or_else(|| "in memory".to_owned(), |dir| dir.display().to_string());
        format!("threshold {threshold}, guard {guard}, index {index}")
    }
}

/// The `[cache]` table, checked.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Where answers are kept.
    pub store: CacheStoreSettings,
    /// How long a stored answer is served; `None`: as long as the store keeps it.
    pub ttl: Option<Duration>,
    /// Part of every key (default empty).
    pub namespace: String,
    /// Where the table starts, for errors found when the store is opened.
    pub site: ErrorSite,
}

/// The store of a `[cache]` table.
#[derive(Debug, Clone)]
pub enum CacheStoreSettings {
    /// In the process, bounded by entries.
    Memory {
        /// The most entries kept (the least recently used make room).
        max_entries: u64,
    },
    /// One file per entry in a directory.
    Disk {
        /// The directory; a relative `path` is taken from the config file's directory.
        path: PathBuf,
    },
    /// A Redis server.
    Redis {
        /// Where the URL comes from (it may hold a password, so it is kept secret).
        url: SecretSource,
    },
}

impl CacheStoreSettings {
    /// The kind, as written in the file.
    pub fn kind(&self) -> CacheKind {
        match self {
            CacheStoreSettings::Memory { .. } => CacheKind::Memory,
            CacheStoreSettings::Disk { .. } => CacheKind::Disk,
            CacheStoreSettings::Redis { .. } => CacheKind::Redis,
        }
    }
}

impl CacheSettings {
    /// The kind and where, for the start line of a run: `memory (at most 100000 entries)`,
    /// `disk (/path)`, `redis` (the URL is never shown).
    pub fn describe(&self) -> String {
        match &self.store {
            CacheStoreSettings::Memory { max_entries } => {
                format!("memory (at most {max_entries} entries)")
            }
            CacheStoreSettings::Disk { path } => format!("disk ({})", path.display()),
            CacheStoreSettings::Redis { .. } => "redis".to_owned(),
        }
    }

    /// The Redis URL of a redis cache, read from the file or the environment (`env`); `None`
    /// for the other kinds. An unset variable, or one that does not hold a Redis URL, is an
    /// error naming the variable, the key and the line (never the URL).
    pub fn redis_url(
        &self,
        config_path: &std::path::Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<SecretString>, ConfigError> {
        let CacheStoreSettings::Redis { url } = &self.store else {
            return Ok(None);
        };
        match url {
            SecretSource::Inline(secret) => Ok(Some(secret.clone().into_secret())),
            // Only provider keys are discovered; a Redis URL never is.
            SecretSource::Discovered { var } => Err(ConfigError::whole_file(
                config_path,
                format!("`[cache]`: the key variable `{var}` does not hold a Redis URL"),
            )),
            SecretSource::Env { var, site, .. } => match env(var) {
                Some(value) if !value.trim().is_empty() => {
                    let value = SecretString::from(value.trim().to_owned());
                    if !is_redis_url(value.expose_secret()) {
                        return Err(site.error(
                            config_path,
                            format!(
                                "`[cache]` key `url_env`: the environment variable `{var}` does \
                                 not hold a Redis URL; {}",
                                redis_url_hint()
                            ),
                        ));
                    }
                    Ok(Some(value))
                }
                _ => Err(site.error(
                    config_path,
                    format!(
                        "`[cache]` key `url_env` names the environment variable `{var}`, which \
                         is not set (or empty)"
                    ),
                )),
            },
        }
    }
}

/// Whether `url` starts with one of [`REDIS_URL_SCHEMES`] and has something after it.
pub fn is_redis_url(url: &str) -> bool {
    REDIS_URL_SCHEMES.iter().any(|scheme| {
        url.len() > scheme.len()
            && url
                .get(..scheme.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
    })
}

/// What a Redis URL looks like, for error messages.
pub fn redis_url_hint() -> String {
    "expected redis://[user:password@]host:port/db or unix:///path/to/redis.sock (TLS, \
     rediss://, is not supported)"
        .to_owned()
}

/// The `[balance]` table, with defaults filled in.
#[derive(Debug, Clone)]
pub struct BalanceSettings {
    /// How the next provider is picked (default max headroom).
    pub strategy: Strategy,
    /// The longest a request waits for a provider with room before it fails.
    pub max_wait: Duration,
    /// How many other providers one call may fail over to; `None`: all the others.
    pub max_failovers: Option<usize>,
    /// Consecutive failures that open a provider's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker keeps a provider out before a probe request.
    pub breaker_open: Duration,
}

impl Default for BalanceSettings {
    fn default() -> Self {
        BalanceSettings {
            strategy: Strategy::MaxHeadroom,
            max_wait: DEFAULT_MAX_WAIT,
            max_failovers: None,
            breaker_failures: DEFAULT_BREAKER_FAILURES,
            breaker_open: DEFAULT_BREAKER_OPEN,
        }
    }
}

/// The `[retry]` table, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySettings {
    /// Attempts per request, the first one included.
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt (with jitter).
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The longest server-requested wait (`retry-after`) that is honoured.
    pub max_retry_after: Duration,
    /// Overall time per request, all attempts and waits included.
    pub deadline: Option<Duration>,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            deadline: None,
        }
    }
}

/// One provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Its unique name (given, or `<kind>-<n>`).
    pub name: String,
    /// Connection settings common to all kinds.
    pub transport: TransportSettings,
    /// The kind-specific settings.
    pub api: ProviderApi,
    /// Its share for the weighted strategies (>= 0; 0 is a standby).
    pub weight: f64,
    /// Its request limit per minute.
    pub rpm: Option<u64>,
    /// Its token limit per minute.
    pub tpm: Option<u64>,
    /// Where its table starts, for errors found later (e.g. by the HTTP client).
    pub site: ErrorSite,
    /// For a provider taken from the environment: the variables it was built from.
    pub from_env: Option<EnvProvenance>,
}

impl ProviderSettings {
    /// The provider's kind.
    pub fn kind(&self) -> ProviderKind {
        match self.api {
            ProviderApi::OpenAi { .. } => ProviderKind::Openai,
            ProviderApi::Azure { .. } => ProviderKind::Azure,
        }
    }

    /// Its name, kind, weight (when not 1) and limits, e.g. `a (openai, weight 3, rpm 500)`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} ({}", self.name, self.kind().as_str());
        if self.weight != DEFAULT_WEIGHT {
            text.push_str(&format!(", weight {}", self.weight));
        }
        if let Some(rpm) = self.rpm {
            text.push_str(&format!(", rpm {rpm}"));
        }
        if let Some(tpm) = self.tpm {
            text.push_str(&format!(", tpm {tpm}"));
        }
        text.push(')');
        text
    }
}

/// Proxy, timeouts and extra headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportSettings {
    /// Proxy URL; [`NO_PROXY`] for none at all; `None` for the system settings.
    pub proxy: Option<String>,
    /// Connect timeout.
    pub connect_timeout: Option<Duration>,
    /// Whole-request timeout.
    pub request_timeout: Option<Duration>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
}

/// The settings that depend on the provider's kind.
#[derive(Debug, Clone)]
pub enum ProviderApi {
    /// OpenAI or an OpenAI-compatible server.
    OpenAi {
        /// The base URL, e.g. `https://api.openai.com/v1`.
        base_url: String,
        /// `OpenAI-Organization` header.
        organization: Option<String>,
        /// `OpenAI-Project` header.
        project: Option<String>,
        /// Where the API key comes from.
        api_key: SecretSource,
    },
    /// Azure OpenAI.
    Azure {
        /// The resource endpoint, e.g. `https://my-resource.openai.azure.com`.
        endpoint: String,
        /// The `api-version`; `None` means the Azure service's default.
        api_version: Option<String>,
        /// OpenAI model name -> deployment name.
        deployments: BTreeMap<String, String>,
        /// The credential.
        auth: AzureCredential,
    },
}

/// How an Azure provider authenticates.
#[derive(Debug, Clone)]
pub enum AzureCredential {
    /// An `api-key` header.
    ApiKey(SecretSource),
    /// An `Authorization: Bearer` token (Microsoft Entra ID).
    BearerToken(SecretSource),
}

/// Where a secret comes from. Resolving it (reading the environment) is a separate step, so a
/// config can be checked without any key present.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// Written in the file.
    Inline(ConfigSecret),
    /// A key variable found in the environment (or a `.env` file) by a `from_env` pattern.
    Discovered {
        /// The variable's name (also the provider's name).
        var: String,
    },
    /// Read from an environment variable.
    Env {
        /// The variable's name.
        var: String,
        /// The config key that named the variable (`None` when it is the default).
        key: Option<&'static str>,
        /// The place to blame when the variable is missing.
        site: ErrorSite,
    },
}

/// A remembered place in the config file, for errors found after parsing.
#[derive(Debug, Clone, Default)]
pub struct ErrorSite {
    /// Where.
    pub location: Option<Location>,
    /// The text of that line.
    pub source_line: Option<String>,
}

impl ErrorSite {
    /// An error about `path` at this place.
    pub fn error(&self, path: &std::path::Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.to_owned(),
            location: self.location,
            source_line: self.source_line.clone(),
            message: message.into(),
        }
    }
}

impl SecretSource {
    /// Reads the secret; `env` looks up environment variables (`std::env::var` in the binary,
    /// a map in tests). An unset or empty variable is an error naming the variable, the key and
    /// the line.
    pub fn resolve(
        &self,
        config_path: &std::path::Path,
        provider: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SecretString, ConfigError> {
        match self {
            SecretSource::Inline(secret) => Ok(secret.clone().into_secret()),
            SecretSource::Discovered { var } => match env(var) {
                Some(value) if !value.trim().is_empty() => {
                    Ok(SecretString::from(value.trim().to_owned()))
                }
                _ => Err(ConfigError::whole_file(
                    config_path,
                    format!(
                        "provider \"{provider}\": its key variable `{var}` is no longer set \
                         (or empty)"
                    ),
                )),
            },
            SecretSource::Env { var, key, site } => match env(var) {
                Some(value) if !value.trim().is_empty() => Ok(SecretString::from(value)),
                _ => {
                    let message = match key {
                        Some(key) => format!(
                            "provider \"{provider}\": key `{key}` names the environment variable \
                             `{var}`, which is not set (or empty)"
                        ),
                        None => format!(
                            "provider \"{provider}\" sets no `api_key_env` (nor `api_key`), and \
                             the default environment variable `{var}` is not set (or empty)"
                        ),
                    };
                    Err(site.error(config_path, message))
                }
            },
        }
    }
}
