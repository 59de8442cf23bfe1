//! The exact cache of `lbgpt run`: the store a `[cache]` table describes, the layer that goes
//! in front of the retry layer, the key family, and a check at start that the store answers.

use crate::config::{CacheSettings, CacheStoreSettings, Config, ConfigError, ProviderSettings};
use lbgpt_cache::{
    CacheConfig, CacheLayer, CacheStats, CacheStore, DiskStore, MemoryStore, RedisStore,
};
use lbgpt_core::{ChatMessage, ChatRequest};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// The cache layer of a checked `[cache]` table and the secret it holds (a Redis URL may
/// carry a password), for a stack over `config.providers`.
///
/// Fails with a config error at the `[cache]` table when the store cannot be opened (a disk
/// path that is not a usable directory, a Redis URL the client refuses); an unreachable Redis
/// server is not an error here (see [`check`]).
pub fn layer(
    config: &Config,
    settings: &CacheSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(CacheLayer, Option<SecretString>), ConfigError> {
    let open_error = |what: String| settings.site.error(&config.path, what);
    let (store, secret): (Arc<dyn CacheStore>, _) = match &settings.store {
        CacheStoreSettings::Memory { max_entries } => (
            Arc::new(MemoryStore::builder().max_entries(*max_entries).build()),
            None,
        ),
        CacheStoreSettings::Disk { path } => {
            let store = DiskStore::open(path).map_err(|err| {
                open_error(format!(
                    "`[cache]`: cannot use {} as the disk cache's directory: {err}",
                    path.display()
                ))
            })?;
            (Arc::new(store), None)
        }
        CacheStoreSettings::Redis { .. } => {
            let url = settings
                .redis_url(&config.path, env)?
                .ok_or_else(|| open_error("`[cache]`: no Redis URL".to_owned()))?;
            let store = RedisStore::builder(url.expose_secret())
                .connect_lazy()
                .map_err(|err| {
                    let mut text = err.to_string();
                    if !url.expose_secret().is_empty() {
                        text = text.replace(url.expose_secret(), "<redis url>");
                    }
                    open_error(format!("`[cache]`: the Redis URL is not usable: {text}"))
                })?;
            (Arc::new(store), Some(url))
        }
    };
    let mut cache = CacheConfig::new()
        .namespace(settings.namespace.as_str())
        .family(family(&config.providers));
    if let Some(ttl) = settings.ttl {
        cache = cache.ttl(ttl);
    }
    Ok((CacheLayer::with_config(store, cache), secret))
}

/// The provider family in every key: the kinds of the providers, in the order `openai`,
/// `azure`, joined by `+` (`"openai"`, `"azure"`, `"openai+azure"`). The same rule as the
/// `lbgpt` facade's balanced clients, so a run shares entries with library clients over the
/// same kinds of provider (and the same namespace).
pub fn family(providers: &[ProviderSettings]) -> String {
    let kinds: Vec<&str> = providers.iter().map(|p| p.kind().as_str()).collect();
    ["openai", "azure"]
        .into_iter()
        .filter(|kind| kinds.contains(kind))
        .collect::<Vec<_>>()
        .join("+")
}

/// Looks up one key nobody stores, to learn at start whether the store answers. `Err` says
/// why not; the run goes on either way (every lookup then is a miss, with a warning).
pub async fn check(layer: &CacheLayer) -> Result<(), String> {
    let probe = ChatRequest::new(
        "lbgpt-cli-cache-check",
        vec![ChatMessage::user("is the store there?")],
    );
    let Some(key) = layer.key_for(&probe) else {
        return Ok(());
    };
    let lookup = layer.store().get(&key);
    let timeout = layer
        .config()
        .get_store_timeout()
        .unwrap_or(CacheConfig::DEFAULT_STORE_TIMEOUT);
    match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// The summary line of the cache's counters, e.g. `disk, 40 hits, 0 misses (100.0 % of
/// requests answered without a call of their own)`.
pub fn describe_stats(kind: &str, stats: &CacheStats) -> String {
    let mut text = format!("{kind}, {} hits, {} misses", stats.hits, stats.misses);
    if stats.coalesced > 0 {
        text.push_str(&format!(
            ", {} shared an identical request's call",
            stats.coalesced
        ));
    }
    if stats.errors > 0 {
        text.push_str(&format!(
            ", {} store errors (treated as misses)",
            stats.errors
        ));
    }
    text.push_str(&format!(
        " ({:.1} % of requests answered without a call of their own)",
        stats.saved_ratio() * 100.0
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::from_toml_str(Path::new("lbgpt.toml"), text).expect("valid config")
    }

    const OPENAI: &str = "[[providers]]\nkind = \"openai\"\napi_key = \"k\"\n";
    const AZURE: &str = "[[providers]]\nkind = \"azure\"\nendpoint = \"https://x.example\"\n\
                         deployments = { m = \"d\" }\napi_key = \"k\"\n";

    #[test]
    fn the_family_names_the_kinds_of_the_providers() {
        assert_eq!(family(&config(OPENAI).providers), "openai");
        assert_eq!(family(&config(AZURE).providers), "azure");
        assert_eq!(
            family(&config(&format!("{AZURE}{OPENAI}{AZURE}")).providers),
            "openai+azure"
        );
    }

    #[tokio::test]
    async fn the_family_is_the_facades_for_the_same_kinds_of_provider() {
        use lbgpt::azure::AzureConfig;
        use lbgpt::openai::OpenAiConfig;
        let gpt = lbgpt::BalancedGpt::builder()
            .provider(OpenAiConfig::new().api_key("k").name("a"))
            .provider(
                AzureConfig::new("https://x.example")
                    .api_key("k")
                    .deployment("m", "d")
                    .name("b"),
            )
            .cache_store(Arc::new(MemoryStore::new()), CacheConfig::new())
            .build()
            .expect("builds");
        let facade = gpt.cache().expect("cache").config().get_family().to_owned();
        assert_eq!(
            family(&config(&format!("{OPENAI}{AZURE}")).providers),
            facade
        );
    }

    #[tokio::test]
    async fn a_memory_cache_gets_its_bound_namespace_ttl_and_family() {
        let config = config(&format!(
            "[cache]\nkind = \"memory\"\nmax_entries = 10\nnamespace = \"p\"\nttl_ms = 5000\n{OPENAI}"
        ));
        let settings = config.cache.as_ref().expect("a cache");
        let (layer, secret) = layer(&config, settings, &|_| None).expect("opens");
        assert!(secret.is_none());
        assert_eq!(layer.store().name(), "memory");
        assert_eq!(layer.config().get_namespace(), "p");
        assert_eq!(layer.config().get_family(), "openai");
        assert_eq!(
            layer.config().get_ttl(),
            Some(std::time::Duration::from_secs(5))
        );
        assert!(check(&layer).await.is_ok());
    }

    #[tokio::test]
    async fn a_disk_path_that_is_a_file_is_an_error_at_the_cache_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").expect("file");
        let text = format!(
            "{OPENAI}\n[cache]\nkind = \"disk\"\npath = \"{}\"\n",
            file.display()
        );
        let config = config(&text);
        let settings = config.cache.as_ref().expect("a cache");
        let err = match layer(&config, settings, &|_| None) {
            Ok(_) => panic!("a file is not a directory"),
            Err(err) => err,
        };
        assert_eq!(err.line(), Some(5), "{err}");
        assert!(err.message.contains("not-a-dir"), "{err}");
    }

    #[tokio::test]
    async fn a_redis_url_from_the_environment_is_checked_and_never_shown() {
        let text = format!("{OPENAI}[cache]\nkind = \"redis\"\nurl_env = \"CACHE_URL\"\n");
        let config = config(&text);
        let settings = config.cache.as_ref().expect("a cache");

        let err = match layer(&config, settings, &|_| None) {
            Ok(_) => panic!("the variable is not set"),
            Err(err) => err,
        };
        assert!(err.message.contains("CACHE_URL"), "{err}");
        assert_eq!(err.line(), Some(6), "{err}");

        let secret_url = "http://user:hunter2@host:1/";
        let err = match layer(&config, settings, &|_| Some(secret_url.to_owned())) {
            Ok(_) => panic!("not a Redis URL"),
            Err(err) => err,
        };
        assert!(err.message.contains("does not hold a Redis URL"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let url = "redis://:hunter2@127.0.0.1:1/0";
        let (layer, secret) = layer(&config, settings, &|_| Some(url.to_owned())).expect("opens");
        assert_eq!(
            secret.map(|s| s.expose_secret().to_owned()).as_deref(),
            Some(url)
        );
        assert_eq!(layer.store().name(), "redis");
        assert!(!format!("{layer:?}").contains("hunter2"));
    }

    #[test]
    fn stats_read_as_a_sentence() {
        let mut stats = CacheStats::default();
        stats.hits = 3;
        stats.misses = 1;
        let text = describe_stats("disk", &stats);
        assert!(text.starts_with("disk, 3 hits, 1 misses"), "{text}");
        assert!(text.contains("75.0 %"), "{text}");
    }
}
