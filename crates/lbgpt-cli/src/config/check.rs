//! `lbgpt config check [FILE]`: validates a config as `lbgpt run` does (the file, the keys of
//! the environment and the `.env` files, every key variable, every provider's HTTP client and
//! the balancer; the caches are not opened, but the semantic cache's model files and index
//! directory are looked at), sends nothing, and prints the providers it would build (keys
//! redacted) and the retry, balance and cache settings. Without FILE it checks what `lbgpt
//! run` would use without `--config`: ./lbgpt.toml, else the keys of the environment.

use super::settings::{
    AzureCredential, BalanceSettings, Config, ProviderApi, ProviderSettings, RetrySettings,
    SecretSource, TransportSettings, DEFAULT_OPENAI_BASE_URL, NO_PROXY,
};
use crate::cli::ConfigCheckArgs;
use crate::error::CliError;
use lbgpt::env::{redact_key, redact_url, VarOrigin};
use lbgpt_openai::transport::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
use secrecy::{ExposeSecret, SecretString};
use std::fmt::Write as _;
use std::time::Duration;

/// Checks `args.file`, else what `lbgpt run` would use without `--config` (./lbgpt.toml, else
/// the keys of the environment); returns the exit status (0 valid; a config error is
/// returned, and `main` exits with 2).
pub fn run(args: &ConfigCheckArgs) -> Result<u8, CliError> {
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(super::DEFAULT_CONFIG_FILE));
    let config = super::Config::load_for_run(&path, args.file.is_some())?;
    let keys = crate::stack::check_providers(&config, &|name| std::env::var(name).ok())?;
    if let Some(semantic) = &config.semantic_cache {
        semantic.check_files(&config.path)?;
    }
    print!("{}", render(&config, &keys));
    Ok(crate::EXIT_OK)
}

/// The report of a valid config: a first line saying it is valid, the settings, then one block
/// per provider in balancing order. `keys` are the providers' keys, in the same order; only
/// their redacted form is printed.
pub fn render(config: &Config, keys: &[SecretString]) -> String {
    let mut text = String::new();
    let count = config.providers.len();
    let source = if config.path.as_os_str().is_empty() {
        "no config file, the keys of the environment".to_owned()
    } else {
        config.path.display().to_string()
    };
    let _ = writeln!(
        text,
        "{source}: valid, {count} provider{}",
        if count == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        text,
        "max concurrent requests: {}",
        config.max_concurrent_requests
    );
    let _ = writeln!(text, "retry:    {}", describe_retry(&config.retry));
    let _ = writeln!(text, "balance:  {}", describe_balance(&config.balance));
    let cache = config.cache.as_ref().map_or_else(
        || "none".to_owned(),
        |cache| {
            let mut line = cache.describe();
            if !cache.namespace.is_empty() {
                let _ = write!(line, ", namespace \"{}\"", cache.namespace);
            }
            if let Some(ttl) = cache.ttl {
                let _ = write!(line, ", ttl {}", duration(ttl));
            }
            line
        },
    );
    let _ = writeln!(text, "cache:    {cache}");
    let semantic = config
        .semantic_cache
        .as_ref()
        .map_or_else(|| "none".to_owned(), |semantic| semantic.describe());
    let _ = writeln!(text, "semantic cache: {semantic}");
    let _ = writeln!(text, "providers, in balancing order:");
    for (index, provider) in config.providers.iter().enumerate() {
        describe_provider(&mut text, provider, keys.get(index));
    }
    text
}

/// One provider's block.
fn describe_provider(text: &mut String, provider: &ProviderSettings, key: Option<&SecretString>) {
    let env = provider.from_env.as_ref();
    let from = |variable: Option<&String>| {
        variable.map_or_else(String::new, |variable| format!(" (from {variable})"))
    };
    let _ = writeln!(text, "  {}", provider.name);
    let (kind, url_label, url, credential) = match &provider.api {
        ProviderApi::OpenAi {
            base_url, api_key, ..
        } => {
            let kind = if same_url(base_url, DEFAULT_OPENAI_BASE_URL) {
                "openai"
            } else {
                "compatible"
            };
            (kind, "base url", base_url, ("key", api_key))
        }
        ProviderApi::Azure { endpoint, auth, .. } => {
            let credential = match auth {
                AzureCredential::ApiKey(source) => ("key", source),
                AzureCredential::BearerToken(source) => ("token", source),
            };
            ("azure", "endpoint", endpoint, credential)
        }
    };
    field(text, "kind", kind);
    let url = format!(
        "{}{}",
        redact_url(url),
        from(env.and_then(|env| env.url_variable.as_ref()))
    );
    field(text, url_label, &url);
    if let ProviderApi::Azure {
        api_version,
        deployments,
        ..
    } = &provider.api
    {
        let version = api_version.as_deref().map_or_else(
            || format!("{} (default)", lbgpt::azure::DEFAULT_API_VERSION),
            str::to_owned,
        );
        let version = format!(
            "{version}{}",
            from(env.and_then(|env| env.api_version_variable.as_ref()))
        );
        field(text, "api-version", &version);
        let map: Vec<String> = deployments
            .iter()
            .map(|(model, deployment)| format!("{model} -> {deployment}"))
            .collect();
        let map = format!(
            "{}{}",
            map.join(", "),
            from(env.and_then(|env| env.deployments_variable.as_ref()))
        );
        field(text, "deployments", &map);
    }
    let proxy = match provider.transport.proxy.as_deref() {
        None => "system settings (HTTPS_PROXY, ...)".to_owned(),
        Some(NO_PROXY) => "none".to_owned(),
        Some(url) => redact_url(url),
    };
    let proxy = format!(
        "{proxy}{}",
        from(env.and_then(|env| env.proxy_variable.as_ref()))
    );
    field(text, "proxy", &proxy);
    field(text, "timeouts", &describe_timeouts(&provider.transport));
    if !provider.transport.headers.is_empty() {
        // Names only: values are often credentials.
        let names: Vec<&str> = provider
            .transport
            .headers
            .keys()
            .map(String::as_str)
            .collect();
        field(
            text,
            "headers",
            &format!("{} (values not shown)", names.join(", ")),
        );
    }
    let (what, source) = credential;
    let shown = key.map_or_else(|| "[set]".to_owned(), |key| redact_key(key.expose_secret()));
    let origin = match source {
        SecretSource::Inline(_) => "inline, in the config file".to_owned(),
        SecretSource::Env { var, .. } => format!("from {var}"),
        SecretSource::Discovered { var } => {
            let place = env.map_or(&VarOrigin::Environment, |env| &env.key_origin);
            format!("from {var}, {place}")
        }
    };
    field(text, what, &format!("{shown} ({origin})"));
    let limit = |value: Option<u64>| value.map_or_else(|| "none".to_owned(), |v| v.to_string());
    let limits = format!(
        "weight {}, rpm {}, tpm {}",
        provider.weight,
        limit(provider.rpm),
        limit(provider.tpm)
    );
    field(text, "limits", &limits);
}

/// A provider's connect and request timeouts, each marked `(default)` when not set.
fn describe_timeouts(transport: &TransportSettings) -> String {
    let show = |value: Option<Duration>, default: Duration| match value {
        Some(value) => duration(value),
        None => format!("{} (default)", duration(default)),
    };
    format!(
        "connect {}, request {}",
        show(transport.connect_timeout, DEFAULT_CONNECT_TIMEOUT),
        show(transport.request_timeout, DEFAULT_REQUEST_TIMEOUT),
    )
}

/// One `label: value` line of a provider's block, values aligned.
fn field(text: &mut String, label: &str, value: &str) {
    let _ = writeln!(text, "    {:<13}{value}", format!("{label}:"));
}

/// Whether two URLs are the same but for a trailing slash and ASCII case (of every part, the
/// path included: only used to tell the default OpenAI base URL from a compatible one).
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

fn describe_retry(retry: &RetrySettings) -> String {
    let deadline = retry.deadline.map_or_else(
        || "no deadline".to_owned(),
        |d| format!("deadline {}", duration(d)),
    );
    format!(
        "at most {} attempts, backoff {} doubling up to {}, retry-after honoured up to {}, {deadline}",
        retry.max_attempts,
        duration(retry.initial_backoff),
        duration(retry.max_backoff),
        duration(retry.max_retry_after),
    )
}

fn describe_balance(balance: &BalanceSettings) -> String {
    let failovers = balance.max_failovers.map_or_else(
        || "to every other provider".to_owned(),
        |n| format!("to at most {n} other providers"),
    );
    format!(
        "strategy {}, waits up to {} for room, fails over {failovers}, breaker opens after {} \
         failures for {}",
        balance.strategy.name(),
        duration(balance.max_wait),
        balance.breaker_failures,
        duration(balance.breaker_open),
    )
}

/// `500 ms`, `30 s`, `2.5 s`.
fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt::env::EnvKeys;
    use std::path::Path;

    #[test]
    fn names_sources_and_redacts_keys_and_proxy_credentials() {
        let config = Config::from_toml_str(
            Path::new("lbgpt.toml"),
            "[[providers]]\nkind = \"openai\"\nname = \"inline\"\napi_key = \"k\"\n\
             base_url = \"http://127.0.0.1:9/v1\"\n\
             [[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\n\
             [env.OPENAI_API_KEY_2]\nrpm = 500\n",
        )
        .expect("valid");
        let variables = EnvKeys::from_vars([
            ("OPENAI_API_KEY_1", "sk-first-SECRET-key-000000a1b2"),
            ("OPENAI_API_KEY_2", "sk-second-SECRET-key-00000c3d4"),
            (
                "OPENAI_API_PROXY",
                "http://me:pw-SECRET@proxy.internal:3128",
            ),
        ]);
        let config = config.resolve_env(variables).expect("resolves");
        let keys = [
            SecretString::from("k"),
            SecretString::from("sk-first-SECRET-key-000000a1b2"),
            SecretString::from("sk-second-SECRET-key-00000c3d4"),
        ];
        let text = render(&config, &keys);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.starts_with("lbgpt.toml: valid, 3 providers\n"),
            "{text}"
        );
        for needle in [
            "  inline\n    kind:        compatible",
            "[set] (inline, in the config file)",
            "  OPENAI_API_KEY_1\n    kind:        openai",
            "sk-…a1b2 (from OPENAI_API_KEY_1, environment)",
            "http://***@proxy.internal:3128 (from OPENAI_API_PROXY)",
            "limits:      weight 1, rpm 500, tpm none",
        ] {
            assert!(text.contains(needle), "{needle:?} in:\n{text}");
        }
    }

    #[test]
    fn shows_timeouts_and_header_names_never_header_values() {
        let config = Config::from_toml_str(
            Path::new("lbgpt.toml"),
            "[[providers]]\nkind = \"openai\"\napi_key = \"k\"\nrequest_timeout_ms = 120000\n\
             headers = { \"Authorization\" = \"Bearer SECRET\", \"x-team\" = \"research\" }\n\
             [[providers]]\nkind = \"openai\"\napi_key = \"k\"\nconnect_timeout_ms = 2500\n",
        )
        .expect("valid");
        let keys = [SecretString::from("k"), SecretString::from("k")];
        let text = render(&config, &keys);
        assert!(
            !text.contains("SECRET") && !text.contains("research"),
            "{text}"
        );
        for needle in [
            "timeouts:    connect 10 s (default), request 120 s\n\
             \x20   headers:     Authorization, x-team (values not shown)\n",
            "timeouts:    connect 2.5 s, request 600 s (default)\n    key:",
        ] {
            assert!(text.contains(needle), "{needle:?} in:\n{text}");
        }
    }
}
