//! [`SemanticCacheLayer`]: puts a semantic cache in front of a chat service.

use crate::stats::Counters;
use crate::{Embedder, SemanticCache, SemanticConfig, SemanticError, SemanticStats, VectorIndex};
use std::fmt;
use std::sync::Arc;
use tower::Layer;

/// What the layer and every service it built share.
pub(crate) struct SemanticState {
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) index: Arc<dyn VectorIndex>,
    pub(crate) config: SemanticConfig,
    pub(crate) counters: Counters,
}

/// A [`tower::Layer`] that wraps chat services in a [`SemanticCache`].
///
/// Put it after (inside) the exact cache, so a request is answered by the exact cache, else
/// by a similar cached request, else upstream; with both layers storing, a new answer is
/// written to both:
///
/// ```no_run
/// use lbgpt_cache::CacheLayer;
/// use lbgpt_semantic::{
///     BatchConfig, BatchingEmbedder, FastembedEmbedder, HnswIndex, IndexConfig, SemanticCacheLayer,
///     SemanticConfig,
/// };
/// use std::sync::Arc;
/// use tower::ServiceBuilder;
///
/// # fn stack<S>(provider: S) -> Result<(), Box<dyn std::error::Error>>
/// # where S: tower::Service<lbgpt_core::ChatRequest, Response = lbgpt_core::ChatResponse, Error = lbgpt_core::Error> + Clone + Send + 'static, S::Future: Send + 'static {
/// // Concurrent requests' texts are embedded together while the model is busy.
/// let embedder = BatchingEmbedder::new(FastembedEmbedder::from_default_assets()?, BatchConfig::new())?;
/// let index = HnswIndex::open(
///     IndexConfig::new().directory(".lbgpt-semantic").max_entries(100_000),
///     lbgpt_semantic::Embedder::dimensions(&embedder),
///     lbgpt_semantic::Embedder::id(&embedder),
/// )?;
/// let semantic = SemanticCacheLayer::new(Arc::new(embedder), Arc::new(index), SemanticConfig::new())?;
/// let service = ServiceBuilder::new()
///     .layer(CacheLayer::in_memory())   // exact
///     .layer(semantic.clone())          // semantic
///     .service(provider);               // upstream
/// # Ok(()) }
/// ```
///
/// Cloning is cheap; clones share the embedder, the index, the configuration and the
/// counters ([`SemanticCacheLayer::stats`]).
#[derive(Clone)]
pub struct SemanticCacheLayer {
    state: Arc<SemanticState>,
}

impl SemanticCacheLayer {
    /// A layer over `embedder` and `index` with `config`. Fails if the configuration is out of
    /// range.
    pub fn new(
        embedder: Arc<dyn Embedder>,
        index: Arc<dyn VectorIndex>,
        config: SemanticConfig,
    ) -> Result<Self, SemanticError> {
        config.validate()?;
        Ok(SemanticCacheLayer {
            state: Arc::new(SemanticState {
                embedder,
                index,
                config,
                counters: Counters::default(),
            }),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> SemanticStats {
        self.state.counters.snapshot()
    }

    /// The configuration.
    pub fn config(&self) -> &SemanticConfig {
        &self.state.config
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.state.embedder
    }

    /// The index.
    pub fn index(&self) -> &Arc<dyn VectorIndex> {
        &self.state.index
    }

    /// Makes the index durable (saves an [`HnswIndex`](crate::HnswIndex) with a directory).
    pub async fn save(&self) -> Result<(), SemanticError> {
        self.state.index.flush().await
    }
}

impl fmt::Debug for SemanticCacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemanticCacheLayer")
            .field("embedder", &self.state.embedder.id())
            .field("entries", &self.state.index.len())
            .field("config", &self.state.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S> Layer<S> for SemanticCacheLayer {
    type Service = SemanticCache<S>;

    fn layer(&self, inner: S) -> SemanticCache<S> {
        SemanticCache::from_state(inner, Arc::clone(&self.state))
    }
}
