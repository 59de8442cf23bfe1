//! The exact cache of the ready-made clients: the [`MaybeCached`] service at the top of their
//! stacks, the builders' `cache` options and the provider family that keys entries.

use crate::endpoint_clients::EndpointClients;
use crate::semantic_caching::{maybe_semantic, SemanticSetting};
use crate::settings::BatchSettings;
use crate::{Lbgpt, MaybeSemantic};
use lbgpt_balance::retry::Retry;
use lbgpt_cache::{Cache, CacheConfig, CacheLayer, CacheStore};
use lbgpt_core::Error;
use lbgpt_semantic::SemanticCacheLayer;
use std::fmt;
use std::sync::Arc;
use tower::util::Either;
use tower::Layer;

/// The family of OpenAI and OpenAI-compatible providers.
pub(crate) const KIND_OPENAI: &str = "openai";
/// The family of Azure OpenAI providers.
pub(crate) const KIND_AZURE: &str = "azure";
/// The family of services the facade knows nothing about ([`Provider::service`](
/// crate::Provider::service)).
pub(crate) const KIND_CUSTOM: &str = "custom";

/// The provider family a client whose answers come from providers of `kinds` puts into its
/// cache keys: the distinct kinds in the order `openai`, `azure`, `custom`, joined by `+`
/// (`"openai"`, `"azure"`, `"openai+azure"`, ...).
pub(crate) fn family_of<'a>(kinds: impl IntoIterator<Item = &'a str>) -> String {
    let kinds: Vec<&str> = kinds.into_iter().collect();
    [KIND_OPENAI, KIND_AZURE, KIND_CUSTOM]
        .into_iter()
        .filter(|known| kinds.contains(known))
        .collect::<Vec<_>>()
        .join("+")
}

/// The top of every ready-made client's stack: the exact cache in front of the retry layer
/// when the builder was given one ([`Cache`]`<S>`), or `S` itself.
///
/// The cache sits outside the semantic cache, the retry layer and the balancer
/// (`Cache<MaybeSemantic<Retry<Balancer | provider>>>`): a hit costs no attempt, no token and no share of any provider's limits, and
/// its answer says `meta.cache == CacheStatus::Exact` and `meta.attempts == 0`; a miss goes
/// through retries and balancing as usual and only its final, successful answer is stored.
///
/// `tower::util::Either`: `Left` holds the cache, `Right` the bare stack.
pub type MaybeCached<S> = Either<Cache<S>, S>;

/// `inner` behind `layer`'s cache, or alone when there is no layer.
pub(crate) fn maybe_cached<S>(inner: S, layer: Option<&CacheLayer>) -> MaybeCached<S> {
    match layer {
        Some(layer) => Either::Left(layer.layer(inner)),
        None => Either::Right(inner),
    }
}

/// The stack under the exact cache, dropping the cache.
pub(crate) fn without_cache<S>(stack: MaybeCached<S>) -> S {
    match stack {
        Either::Left(cache) => cache.into_inner(),
        Either::Right(inner) => inner,
    }
}

/// What a builder was told about caching.
#[derive(Clone, Default)]
pub(crate) enum CacheSetting {
    /// No cache (the default).
    #[default]
    Off,
    /// A layer built by the user, used as it is.
    Layer(CacheLayer),
    /// A store and a configuration; the builder fills in the provider family when the
    /// configuration names none.
    Store(Arc<dyn CacheStore>, CacheConfig),
}

impl CacheSetting {
    /// The layer to put in front of a stack whose answers come from providers of `family`.
    pub(crate) fn into_layer(self, family: &str) -> Option<CacheLayer> {
        match self {
            CacheSetting::Off => None,
            CacheSetting::Layer(layer) => Some(layer),
            CacheSetting::Store(store, config) => {
                let config = if config.get_family().is_empty() {
                    config.family(family)
                } else {
                    config
                };
                Some(CacheLayer::with_config(store, config))
            }
        }
    }
}

impl fmt::Debug for CacheSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheSetting::Off => f.write_str("Off"),
            CacheSetting::Layer(layer) => f.debug_tuple("Layer").field(layer).finish(),
            CacheSetting::Store(store, config) => f
                .debug_tuple("Store")
                .field(&store.name())
                .field(config)
                .finish(),
        }
    }
}

/// Checks `settings` and builds the batch client over
/// `MaybeCached<MaybeSemantic<Retry<service>>>`: exact cache, semantic cache, retry.
pub(crate) fn cached_client<S>(
    settings: BatchSettings,
    cache: Option<&CacheLayer>,
    semantic: Option<&SemanticCacheLayer>,
    service: S,
) -> Result<Lbgpt<MaybeCached<MaybeSemantic<Retry<S>>>>, Error> {
    let max_concurrent = settings.max_concurrent;
    let reorder_window = settings.reorder_window;
    let retry = settings.finish(service)?.into_service();
    let client = Lbgpt::new(maybe_cached(maybe_semantic(retry, semantic), cache))
        .max_concurrent_requests(max_concurrent);
    Ok(match reorder_window {
        Some(window) => client.reorder_window(window),
        None => client,
    })
}

/// The parts of a single-provider client (`ChatGpt`, `AzureGpt`): the chat client over
/// `MaybeCached<MaybeSemantic<Retry<service>>>`, the embeddings and completions clients over
/// the same service, and the caches (keyed with `family`).
pub(crate) struct SingleProvider<S> {
    pub(crate) client: Lbgpt<MaybeCached<MaybeSemantic<Retry<S>>>>,
    pub(crate) endpoints: EndpointClients<S, S>,
    pub(crate) cache: Option<CacheLayer>,
    pub(crate) semantic: Option<SemanticCacheLayer>,
}

/// Checks the settings and builds a single-provider client's parts over `service`.
pub(crate) fn single_provider<S: Clone>(
    settings: BatchSettings,
    cache: CacheSetting,
    semantic: SemanticSetting,
    family: &str,
    service: S,
) -> Result<SingleProvider<S>, Error> {
    let cache = cache.into_layer(family);
    let semantic = semantic.into_layer(cache.as_ref(), family)?;
    let retry = settings.retry.clone();
    let client = cached_client(settings, cache.as_ref(), semantic.as_ref(), service.clone())?;
    let endpoints = EndpointClients::new(
        &client,
        &retry,
        cache.as_ref(),
        Some(service.clone()),
        Some(service),
    );
    Ok(SingleProvider {
        client,
        endpoints,
        cache,
        semantic,
    })
}

/// Adds `cache` and `cache_store` to a builder with a `cache: CacheSetting` field. `$family`
/// describes the provider family the builder keys with, for the docs.
macro_rules! cache_builder_methods {
    ($family:literal) => {
        /// Answers repeated requests from this exact cache: `layer` goes in front of the
        /// semantic cache and the retry layer (`Cache<MaybeSemantic<Retry<..>>>`), so a hit makes no upstream call at all and its answer
        /// says `meta.cache == CacheStatus::Exact` and `meta.attempts == 0`. Clients given
        /// clones of one layer share its store, its in-flight calls and its counters.
        ///
        /// The layer is used as it is: its keys hold the family of its own configuration
        /// ([`CacheConfig::family`](crate::cache::CacheConfig::family), empty by default).
        /// [`cache_store`](Self::cache_store) instead keys with this client's family,
        #[doc = concat!($family, ".")]
        pub fn cache(mut self, layer: $crate::cache::CacheLayer) -> Self {
            self.cache = $crate::caching::CacheSetting::Layer(layer);
            self
        }

        /// Answers repeated requests from an exact cache over `store` ([`MemoryStore`](
        /// crate::cache::MemoryStore), [`DiskStore`](crate::cache::DiskStore), `RedisStore`
        /// or your own [`CacheStore`](crate::cache::CacheStore)) with `config` (namespace,
        /// TTL, model aliases, ...). When `config` names no family, this client's provider
        /// family,
        #[doc = concat!($family, ",")]
        /// becomes part of every key (see the crate docs, "Caching"). The cache goes in front
        /// of the retry layer, as with [`cache`](Self::cache).
        pub fn cache_store(
            mut self,
            store: std::sync::Arc<dyn $crate::cache::CacheStore>,
            config: $crate::cache::CacheConfig,
        ) -> Self {
            self.cache = $crate::caching::CacheSetting::Store(store, config);
            self
        }
    };
}

pub(crate) use cache_builder_methods;

/// Adds `cache` and `cache_stats` to a client struct with a `cache: Option<CacheLayer>` field.
macro_rules! forward_cache_api {
    () => {
        /// The exact cache in front of this client's stack, if it was built with one (for its
        /// configuration, its store, or [`invalidate`](crate::cache::CacheLayer::invalidate)).
        pub fn cache(&self) -> Option<&$crate::cache::CacheLayer> {
            self.cache.as_ref()
        }

        /// The exact cache's counters so far: hits, misses, coalesced (identical requests that
        /// shared one upstream call), bypassed, stores and store errors. `None` without a
        /// cache.
        pub fn cache_stats(&self) -> Option<$crate::cache::CacheStats> {
            self.cache.as_ref().map($crate::cache::CacheLayer::stats)
        }
    };
}

pub(crate) use forward_cache_api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_names_the_kinds_in_a_fixed_order() {
        assert_eq!(family_of(["openai", "openai"]), "openai");
        assert_eq!(family_of(["azure"]), "azure");
        assert_eq!(family_of(["azure", "openai"]), "openai+azure");
        assert_eq!(
            family_of(["custom", "openai", "azure"]),
            "openai+azure+custom"
        );
        assert_eq!(family_of([]), "");
    }

    #[test]
    fn a_configured_family_is_kept_and_an_empty_one_filled_in() {
        let store: Arc<dyn CacheStore> = Arc::new(lbgpt_cache::MemoryStore::new());
        let filled = CacheSetting::Store(Arc::clone(&store), CacheConfig::new())
            .into_layer("azure")
            .expect("a layer");
        assert_eq!(filled.config().get_family(), "azure");
        let kept = CacheSetting::Store(store, CacheConfig::new().family("shared"))
            .into_layer("azure")
            .expect("a layer");
        assert_eq!(kept.config().get_family(), "shared");
        assert!(CacheSetting::Off.into_layer("openai").is_none());
    }
}
