//! The config file exactly as written: serde types mirroring the TOML, with source spans.
//!
//! Every table denies unknown keys, so a typo is an error naming the key and its line. The
//! checks that serde cannot express (required-per-kind keys, ranges, duplicates) live in
//! [`super::validate`].

use super::secret::ConfigSecret;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Most requests in flight at once, over all providers.
    pub max_concurrent_requests: Option<Spanned<i64>>,
    /// The `[retry]` table.
    pub retry: Option<Spanned<RawRetry>>,
    /// The `[balance]` table.
    pub balance: Option<Spanned<RawBalance>>,
    /// The `[cache]` table.
    pub cache: Option<Spanned<RawCache>>,
    /// The `[semantic_cache]` table.
    pub semantic_cache: Option<Spanned<RawSemanticCache>>,
    /// The `[[providers]]` tables, in file order.
    #[serde(default)]
    pub providers: Vec<Spanned<RawProvider>>,
    /// The `[env.NAME]` tables: limits of keys taken from the environment, by key variable.
    pub env: Option<Spanned<BTreeMap<String, Spanned<RawEnvKey>>>>,
}

/// One `[env.NAME]` table: the weight and limits of the key in variable `NAME`, when keys come
/// from the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvKey {
    /// The key's share for the weighted strategies.
    pub weight: Option<Spanned<f64>>,
    /// The key's request limit per minute.
    #[serde(alias = "limit_rpm")]
    pub rpm: Option<Spanned<i64>>,
    /// The key's token limit per minute.
    #[serde(alias = "limit_tpm")]
    pub tpm: Option<Spanned<i64>>,
}

/// The `[retry]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts per request, the first one included.
    pub max_attempts: Option<Spanned<i64>>,
    /// The first backoff, in milliseconds.
    pub initial_backoff_ms: Option<Spanned<i64>>,
    /// The longest backoff, in milliseconds.
    pub max_backoff_ms: Option<Spanned<i64>>,
    /// The longest server-requested wait honoured, in milliseconds.
    pub max_retry_after_ms: Option<Spanned<i64>>,
    /// Overall time per request, all attempts and waits included, in milliseconds.
    pub deadline_ms: Option<Spanned<i64>>,
}

/// The `[balance]` table: how requests are spread over the providers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBalance {
    /// The strategy's name (`max_headroom`, `random`, `round_robin`, `least_latency`,
    /// `least_busy`).
    pub strategy: Option<Spanned<String>>,
    /// The longest wait for a provider with room before a request fails, in milliseconds.
    pub max_wait_ms: Option<Spanned<i64>>,
    /// How many other providers one call may fail over to.
    pub max_failovers: Option<Spanned<i64>>,
    /// Consecutive failures that open a provider's circuit breaker.
    pub breaker_failures: Option<Spanned<i64>>,
    /// How long an open breaker keeps a provider out, in milliseconds.
    pub breaker_open_ms: Option<Spanned<i64>>,
}

/// Where the exact cache keeps answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    /// In the process; gone when it ends.
    Memory,
    /// In a directory; survives restarts, shared by processes on one machine.
    Disk,
    /// In Redis; shared by processes on many machines.
    Redis,
}

impl CacheKind {
    /// The kind as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Memory => "memory",
            CacheKind::Disk => "disk",
            CacheKind::Redis => "redis",
        }
    }
}

/// The `[cache]` table. Keys of every kind are accepted by serde; the validator rejects the
/// ones that do not belong to the cache's `kind`, naming them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// `"memory"`, `"disk"` or `"redis"`.
    pub kind: Spanned<CacheKind>,
    /// How long an answer is served after it was stored, in milliseconds.
    pub ttl_ms: Option<Spanned<i64>>,
    /// Part of every key: separates projects sharing one store.
    pub namespace: Option<Spanned<String>>,
    /// Memory: the most entries kept.
    pub max_entries: Option<Spanned<i64>>,
    /// Disk: the cache's directory.
    pub path: Option<Spanned<String>>,
    /// Redis: the server's URL itself (it may hold a password).
    pub url: Option<Spanned<ConfigSecret>>,
    /// Redis: the environment variable holding the server's URL.
    pub url_env: Option<Spanned<String>>,
}

/// The `[semantic_cache]` table: the local semantic cache under the exact cache. Every key is
/// optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSemanticCache {
    /// The embedding model's directory (default: the assets `cargo xtask fetch-assets` put
    /// into the workspace, or `$LBGPT_ASSETS_DIR`).
    pub model_dir: Option<Spanned<String>>,
    /// The ONNX Runtime shared library (default: next to the model's assets, or
    /// `$ORT_DYLIB_PATH`).
    pub runtime_library: Option<Spanned<String>>,
    /// What is embedded: `last_user`, `user_only`, `all` or `system_only`.
    pub method: Option<Spanned<String>>,
    /// The similarity from which a cached answer is served, 0 to 1.
    pub threshold: Option<Spanned<f64>>,
    /// Whether the false-hit guard checks candidates.
    pub guard: Option<Spanned<bool>>,
    /// Where the index is saved (in memory only when absent).
    pub index_dir: Option<Spanned<String>>,
    /// The most entries the index keeps.
    pub max_entries: Option<Spanned<i64>>,
    /// Whether requests with tools, images or `n > 1` may be served.
    pub allow_unsafe: Option<Spanned<bool>>,
    /// Model sessions embedding in parallel.
    pub sessions: Option<Spanned<i64>>,
    /// The most texts of concurrent requests embedded together in one model run.
    pub max_batch: Option<Spanned<i64>>,
}

/// Which API a provider speaks: `kind = "openai"` (also `"open_ai"`) or `"azure"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ProviderKind {
    /// OpenAI or any OpenAI-compatible server.
    Openai,
    /// Azure OpenAI.
    Azure,
}

impl TryFrom<String> for ProviderKind {
    type Error = String;

    /// The kind named by `text`; an error listing the kinds (not serde's variant names).
    fn try_from(text: String) -> Result<Self, Self::Error> {
        match text.as_str() {
            "openai" | "open_ai" => Ok(ProviderKind::Openai),
            "azure" => Ok(ProviderKind::Azure),
            other => Err(format!(
                "unknown provider kind {other:?}; expected \"openai\" (OpenAI or any \
                 OpenAI-compatible server) or \"azure\" (Azure OpenAI)"
            )),
        }
    }
}

impl ProviderKind {
    /// The kind as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Azure => "azure",
        }
    }
}

/// One `[[providers]]` table. Keys of both kinds are accepted by serde; the validator rejects
/// the ones that do not belong to the provider's `kind` (or to a `from_env` table), naming
/// them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// `"openai"` or `"azure"`; required unless `from_env` is set.
    pub kind: Option<Spanned<ProviderKind>>,
    /// A pattern of key variables (`OPENAI_API_KEY*`): one provider per matching variable.
    pub from_env: Option<Spanned<String>>,
    /// The provider's name in output and logs.
    pub name: Option<Spanned<String>>,
    /// The API key itself (discouraged: prefer `api_key_env`).
    pub api_key: Option<Spanned<ConfigSecret>>,
    /// The environment variable holding the API key.
    pub api_key_env: Option<Spanned<String>>,
    /// An HTTP(S) or SOCKS5 proxy URL.
    pub proxy: Option<Spanned<String>>,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: Option<Spanned<i64>>,
    /// Whole-request timeout in milliseconds.
    pub request_timeout_ms: Option<Spanned<i64>>,
    /// Extra headers sent with every request.
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// The provider's share for the weighted strategies.
    pub weight: Option<Spanned<f64>>,
    /// The provider's request limit per minute (`limit_rpm` as in the Python lbgpt).
    #[serde(alias = "limit_rpm")]
    pub rpm: Option<Spanned<i64>>,
    /// The provider's token limit per minute (`limit_tpm` as in the Python lbgpt).
    #[serde(alias = "limit_tpm")]
    pub tpm: Option<Spanned<i64>>,

    /// OpenAI: the API base URL.
    pub base_url: Option<Spanned<String>>,
    /// OpenAI: the `OpenAI-Organization` header.
    pub organization: Option<Spanned<String>>,
    /// OpenAI: the `OpenAI-Project` header.
    pub project: Option<Spanned<String>>,

    /// Azure: the resource endpoint.
    pub endpoint: Option<Spanned<String>>,
    /// Azure: the `api-version` query parameter.
    pub api_version: Option<Spanned<String>>,
    /// Azure: OpenAI model name -> deployment name.
    pub deployments: Option<Spanned<BTreeMap<String, String>>>,
    /// Azure: a Microsoft Entra bearer token itself (discouraged).
    pub bearer_token: Option<Spanned<ConfigSecret>>,
    /// Azure: the environment variable holding a Microsoft Entra bearer token.
    pub bearer_token_env: Option<Spanned<String>>,
}
