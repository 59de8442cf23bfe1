//! [`SemanticCacheSettings`]: the semantic cache as a configuration file describes it (the
//! CLI's `[semantic_cache]` section, the facade's builder option), built into a layer in one
//! call.

use crate::{
    BatchConfig, BatchingEmbedder, FalseHitGuard, FastembedConfig, FastembedEmbedder, HnswIndex,
    IndexConfig, SemanticCacheLayer, SemanticConfig, SemanticError,
};
use lbgpt_cache::CacheConfig;
use lbgpt_core::EmbedMethod;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The settings of a local semantic cache (fastembed model + HNSW index), as plain data that
/// deserialises from TOML or JSON; every field is optional.
///
/// ```toml
/// [semantic_cache]
/// model_dir = ".lbgpt-assets/all-minilm-l6-v2-int8"   # default: the fetched assets
/// runtime_library = ".lbgpt-assets/onnxruntime/libonnxruntime.so.1.31.0"
/// method = "last_user"          # last_user | user_only | all | system_only
/// threshold = 0.85              # default: SemanticConfig::DEFAULT_THRESHOLD
/// guard = true                  # the false-hit guard
/// index_dir = ".lbgpt-semantic" # saved there; in memory only when absent
/// max_entries = 100000
/// allow_unsafe = false          # serve requests with tools, images or n > 1
/// sessions = 1                  # model sessions embedding in parallel
/// max_batch = 32                # texts of concurrent requests embedded in one model run
/// ```
///
/// ```no_run
/// use lbgpt_semantic::SemanticCacheSettings;
///
/// let settings: SemanticCacheSettings =
///     serde_json::from_str(r#"{"threshold": 0.9, "index_dir": "cache"}"#).expect("valid");
/// let layer = settings.build()?; // loads the model, opens the index: a SemanticCacheLayer
/// # Ok::<(), lbgpt_semantic::SemanticError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SemanticCacheSettings {
    /// The model directory (default: [`crate::assets::default_model_dir`]).
    pub model_dir: Option<PathBuf>,
    /// The ONNX Runtime library (default: [`crate::assets::default_runtime_library`]).
    pub runtime_library: Option<PathBuf>,
    /// `last_user` (default), `user_only`, `all` or `system_only`.
    pub method: Option<String>,
    /// The similarity threshold (default [`SemanticConfig::DEFAULT_THRESHOLD`]).
    pub threshold: Option<f32>,
    /// Whether the false-hit guard is on (default true).
    pub guard: Option<bool>,
    /// Where the index is saved and loaded (default: memory only).
    pub index_dir: Option<PathBuf>,
    /// The most entries kept (default 100,000).
    pub max_entries: Option<usize>,
    /// Whether requests with tools, images or `n > 1` may be served (default false).
    pub allow_unsafe: Option<bool>,
    /// Model sessions embedding in parallel (default 1).
    pub sessions: Option<usize>,
    /// The most texts of concurrent requests embedded together in one model run (default
    /// [`BatchConfig::DEFAULT_MAX_BATCH`]; 1 embeds each request alone). See
    /// [`BatchingEmbedder`].
    pub max_batch: Option<usize>,
}

impl SemanticCacheSettings {
    /// The layer's configuration these settings describe (without the embedder and index).
    pub fn semantic_config(&self) -> Result<SemanticConfig, SemanticError> {
        let mut config = SemanticConfig::new();
        if let Some(name) = &self.method {
            let method = EmbedMethod::from_name(name).ok_or_else(|| {
                SemanticError::config(
                    "method",
                    format!("`{name}` is not one of last_user, user_only, all, system_only"),
                )
            })?;
            config = config.method(method);
        }
        if let Some(threshold) = self.threshold {
            config = config.threshold(threshold);
        }
        if self.guard == Some(false) {
            config = config.guard(FalseHitGuard::off());
        }
        if let Some(allow) = self.allow_unsafe {
            config = config.allow_unsafe(allow);
        }
        config.validate()?;
        Ok(config)
    }

    /// The index configuration these settings describe.
    pub fn index_config(&self) -> IndexConfig {
        let mut config = IndexConfig::new();
        if let Some(max) = self.max_entries {
            config = config.max_entries(max);
        }
        if let Some(dir) = &self.index_dir {
            config = config.directory(dir.clone());
        }
        config
    }

    /// The embedder configuration these settings describe.
    pub fn embedder_config(&self) -> FastembedConfig {
        let mut config = match &self.model_dir {
            Some(dir) => FastembedConfig::new(dir.clone()),
            None => FastembedConfig::default(),
        };
        if let Some(library) = &self.runtime_library {
            config = config.runtime_library(library.clone());
        }
        if let Some(sessions) = self.sessions {
            config = config.sessions(sessions);
        }
        config
    }

    /// How concurrent requests' texts are batched: up to `max_batch` texts per run, as many
    /// runs at once as there are sessions.
    pub fn batch_config(&self) -> BatchConfig {
        // Out-of-range session counts are reported by the model's own settings.
        let mut config = BatchConfig::new().concurrency(self.sessions.unwrap_or(1).clamp(1, 64));
        if let Some(max) = self.max_batch {
            config = config.max_batch(max);
        }
        config
    }

    /// Loads the model, opens (or creates) the index and builds the layer (the model behind a
    /// [`BatchingEmbedder`]). The scope uses the
    /// default exact-cache configuration; see [`build_with_scope`](Self::build_with_scope).
    pub fn build(&self) -> Result<SemanticCacheLayer, SemanticError> {
        self.build_with_scope(CacheConfig::new())
    }

    /// Like [`build`](Self::build), with the exact cache's configuration (namespace, family,
    /// model aliases) for the scope.
    pub fn build_with_scope(
        &self,
        scope: CacheConfig,
    ) -> Result<SemanticCacheLayer, SemanticError> {
        let config = self.semantic_config()?.scope_config(scope);
        let index_config = self.index_config();
        index_config.validate()?;
        let batch_config = self.batch_config();
        batch_config.validate()?;
        let model = FastembedEmbedder::new(self.embedder_config())?;
        let embedder = BatchingEmbedder::new(model, batch_config)?;
        let index = HnswIndex::open(
            index_config,
            crate::Embedder::dimensions(&embedder),
            crate::Embedder::id(&embedder),
        )?;
        SemanticCacheLayer::new(Arc::new(embedder), Arc::new(index), config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_validate() {
        let settings: SemanticCacheSettings = serde_json::from_str(
            r#"{"method": "user_only", "threshold": 0.9, "guard": false, "max_entries": 10}"#,
        )
        .expect("valid settings");
        let config = settings.semantic_config().expect("valid config");
        assert_eq!(config.get_method(), EmbedMethod::UserOnly);
        assert!(config.get_guard().is_off());
        assert_eq!(settings.index_config().get_max_entries(), 10);
        let bad: SemanticCacheSettings =
            serde_json::from_str(r#"{"method": "everything"}"#).expect("parses");
        let error = bad.semantic_config().expect_err("unknown method");
        assert!(error.to_string().contains("method"), "{error}");
        let bad: SemanticCacheSettings =
            serde_json::from_str(r#"{"threshold": 1.5}"#).expect("parses");
        assert!(bad.semantic_config().is_err());
        assert!(serde_json::from_str::<SemanticCacheSettings>(r#"{"treshold": 0.9}"#).is_err());
        let batched: SemanticCacheSettings =
            serde_json::from_str(r#"{"sessions": 2, "max_batch": 8}"#).expect("parses");
        assert_eq!(
            batched.batch_config(),
            BatchConfig::new().concurrency(2).max_batch(8)
        );
        let bad: SemanticCacheSettings =
            serde_json::from_str(r#"{"max_batch": 0}"#).expect("parses");
        let error = bad.build().expect_err("max_batch 0");
        assert!(
            matches!(
                error,
                SemanticError::Config {
                    field: "max_batch",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
