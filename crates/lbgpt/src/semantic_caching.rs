//! The semantic cache of the ready-made clients: the [`MaybeSemantic`] service between the
//! exact cache and the retry layer, the builders' `semantic_cache` options and the scope that
//! follows the exact cache's configuration.

use lbgpt_cache::{CacheConfig, CacheLayer};
use lbgpt_core::Error;
use lbgpt_semantic::{
    Embedder, SemanticCache, SemanticCacheLayer, SemanticCacheSettings, SemanticConfig, VectorIndex,
};
use std::fmt;
use std::sync::Arc;
use tower::util::Either;
use tower::Layer;

/// The semantic cache's place in every ready-made client's stack: between the exact cache and
/// the retry layer when the builder was given one ([`SemanticCache`]`<S>`), or `S` itself.
///
/// ```text
/// Lbgpt -> exact cache -> semantic cache -> retry -> balancer | provider
/// ```
///
/// A request the exact cache cannot answer is embedded and compared with the cached requests
/// of the same scope; a close enough one that the false-hit guard accepts answers it
/// (`meta.cache == CacheStatus::Semantic { score }`, `meta.cache_match` = the matched request's
/// exact key, `meta.attempts == 0`). Otherwise the request goes through retries and balancing
/// as usual and its answer is stored in both caches.
///
/// `tower::util::Either`: `Left` holds the semantic cache, `Right` the bare stack.
pub type MaybeSemantic<S> = Either<SemanticCache<S>, S>;

/// `inner` behind `layer`'s semantic cache, or alone when there is no layer.
pub(crate) fn maybe_semantic<S>(inner: S, layer: Option<&SemanticCacheLayer>) -> MaybeSemantic<S> {
    match layer {
        Some(layer) => Either::Left(layer.layer(inner)),
        None => Either::Right(inner),
    }
}

/// The stack under the semantic cache, dropping the cache.
pub(crate) fn without_semantic<S>(stack: MaybeSemantic<S>) -> S {
    match stack {
        Either::Left(cache) => cache.into_inner(),
        Either::Right(inner) => inner,
    }
}

/// What a builder was told about semantic caching.
#[derive(Clone, Default)]
pub(crate) enum SemanticSetting {
    /// No semantic cache (the default).
    #[default]
    Off,
    /// A layer built by the user, used as it is.
    Layer(SemanticCacheLayer),
    /// Settings of a local cache (model from disk, HNSW index), built with the client.
    Settings(Box<SemanticCacheSettings>),
    /// An embedder, an index and a configuration; the builder sets the scope.
    Parts {
        embedder: Arc<dyn Embedder>,
        index: Arc<dyn VectorIndex>,
        config: Box<SemanticConfig>,
    },
}

impl SemanticSetting {
    /// The layer to put under `exact` (the client's exact cache, if any) in a stack whose
    /// answers come from providers of `family`. The scope uses the exact cache's configuration
    /// (namespace, family, model aliases), so a semantic hit names the exact key the exact
    /// cache uses; without an exact cache, the default configuration with `family`.
    ///
    /// Fails with [`Error::Config`] when the model or runtime is missing or a setting is out
    /// of range.
    pub(crate) fn into_layer(
        self,
        exact: Option<&CacheLayer>,
        family: &str,
    ) -> Result<Option<SemanticCacheLayer>, Error> {
        let scope = || match exact {
            Some(layer) => layer.config().clone(),
            None => CacheConfig::new().family(family),
        };
        let context = |error: lbgpt_semantic::SemanticError| {
            Error::Config(format!("semantic cache: {error}"))
        };
        match self {
            SemanticSetting::Off => Ok(None),
            SemanticSetting::Layer(layer) => Ok(Some(layer)),
            SemanticSetting::Settings(settings) => settings
                .build_with_scope(scope())
                .map(Some)
                .map_err(context),
            SemanticSetting::Parts {
                embedder,
                index,
                config,
            } => SemanticCacheLayer::new(embedder, index, config.scope_config(scope()))
                .map(Some)
                .map_err(context),
        }
    }
}

impl fmt::Debug for SemanticSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SemanticSetting::Off => f.write_str("Off"),
            SemanticSetting::Layer(layer) => f.debug_tuple("Layer").field(layer).finish(),
            SemanticSetting::Settings(settings) => {
                f.debug_tuple("Settings").field(settings).finish()
            }
            SemanticSetting::Parts {
                embedder, config, ..
            } => f
                .debug_struct("Parts")
                .field("embedder", &embedder.id())
                .field("config", config)
                .finish_non_exhaustive(),
        }
    }
}

/// Adds `semantic_cache`, `semantic_cache_with` and `semantic_cache_layer` to a builder with a
/// `semantic: SemanticSetting` field.
macro_rules! semantic_builder_methods {
    () => {
        /// Answers requests that mean the same as an earlier one from a local semantic cache
        /// (see the crate docs, "Semantic caching"): the model is loaded from disk and the
        /// index opened (or loaded from `index_dir`) when the client is built.
        ///
        /// The cache goes between the exact cache and the retry layer (exact -> semantic ->
        /// retry -> provider): a hit makes no upstream call (`meta.cache ==
        /// CacheStatus::Semantic { score }`, `meta.attempts == 0`). Its scope uses the exact
        /// cache's configuration (namespace, provider family, model aliases), or this
        /// client's family without an exact cache, so both caches agree on what may share an
        /// answer. [`build`](Self::build) fails with [`Error::Config`](crate::Error::Config)
        /// when the model or ONNX Runtime is missing (`cargo xtask fetch-assets`) or a
        /// setting is out of range.
        pub fn semantic_cache(mut self, settings: $crate::semantic::SemanticCacheSettings) -> Self {
            self.semantic = $crate::semantic_caching::SemanticSetting::Settings(Box::new(settings));
            self
        }

        /// Like [`semantic_cache`](Self::semantic_cache), from an embedder and an index of
        /// your own (e.g. one [`FastembedEmbedder`](crate::semantic::FastembedEmbedder)
        /// shared by several clients). The scope configuration of `config` is replaced by the
        /// exact cache's (or this client's family).
        pub fn semantic_cache_with(
            mut self,
            embedder: std::sync::Arc<dyn $crate::semantic::Embedder>,
            index: std::sync::Arc<dyn $crate::semantic::VectorIndex>,
            config: $crate::semantic::SemanticConfig,
        ) -> Self {
            self.semantic = $crate::semantic_caching::SemanticSetting::Parts {
                embedder,
                index,
                config: Box::new(config),
            };
            self
        }

        /// A [`SemanticCacheLayer`](crate::semantic::SemanticCacheLayer) built by you, used
        /// as it is (its counters shared with its clones). Give it the exact cache's
        /// configuration ([`SemanticConfig::scope_config`](
        /// crate::semantic::SemanticConfig::scope_config)) so both caches key alike.
        pub fn semantic_cache_layer(mut self, layer: $crate::semantic::SemanticCacheLayer) -> Self {
            self.semantic = $crate::semantic_caching::SemanticSetting::Layer(layer);
            self
        }
    };
}

pub(crate) use semantic_builder_methods;

/// Adds `semantic_cache`, `semantic_cache_stats` and `save_semantic_index` to a client struct
/// with a `semantic: Option<SemanticCacheLayer>` field.
macro_rules! forward_semantic_api {
    () => {
        /// The semantic cache between the exact cache and the retry layer, if the client was
        /// built with one (its configuration, embedder and index).
        pub fn semantic_cache(&self) -> Option<&$crate::semantic::SemanticCacheLayer> {
            self.semantic.as_ref()
        }

        /// The semantic cache's counters so far: hits, misses, guard rejections, ineligible
        /// requests, bypassed, stores and errors. `None` without a semantic cache.
        pub fn semantic_cache_stats(&self) -> Option<$crate::semantic::SemanticStats> {
            self.semantic
                .as_ref()
                .map($crate::semantic::SemanticCacheLayer::stats)
        }

        /// Saves the semantic cache's index to its directory (`index_dir`), so the next
        /// process starts with it. Nothing to do without a semantic cache or for an index
        /// kept in memory only. The index is also saved when its last handle is dropped
        /// (every clone of the client and of its layer), but errors are then only logged:
        /// call this at the end of a run to see them.
        pub async fn save_semantic_index(&self) -> Result<(), $crate::semantic::SemanticError> {
            match &self.semantic {
                Some(layer) => layer.save().await,
                None => Ok(()),
            }
        }
    };
}

pub(crate) use forward_semantic_api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_builds_nothing_and_bad_settings_name_the_setting() {
        assert!(SemanticSetting::Off
            .into_layer(None, "openai")
            .expect("nothing to build")
            .is_none());
        let settings: SemanticCacheSettings =
            serde_json::from_str(r#"{"threshold": 1.5}"#).expect("parses");
        let error = SemanticSetting::Settings(Box::new(settings))
            .into_layer(None, "openai")
            .expect_err("out of range");
        assert!(
            matches!(&error, Error::Config(text) if text.contains("threshold")),
            "{error}"
        );
    }
}
