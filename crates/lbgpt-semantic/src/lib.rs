//! Semantic response caching for lbgpt: a [`tower::Layer`] that answers a chat request with
//! the cached answer of a request that means the same thing, and refuses when it does not.
//!
//! ```text
//! caller -> exact cache (lbgpt-cache) -> SemanticCacheLayer -> retry -> balancer -> providers
//! ```
//!
//! - [`SemanticCacheLayer`] / [`SemanticCache`]: embed the request's text, look up the nearest
//!   cached requests of the same [`Scope`], serve the best one at or above the threshold that
//!   the [`FalseHitGuard`] accepts (`meta.cache = CacheStatus::Semantic { score }`,
//!   `meta.cache_match` = the matched request's key); else call upstream and store the answer.
//! - What is embedded: [`EmbedMethod`] `last_user` (default),
//!   `user_only`, `all`, `system_only`, per cache or per request
//!   ([`SemanticOptions`]). Requests with tools, images or
//!   `n > 1` are not served unless allowed.
//! - [`Scope`]: the exact cache's key of the request with the embedded text blanked, so
//!   different models, parameters, tools, formats or system prompts never share answers.
//! - [`Embedder`]: [`FastembedEmbedder`] (local ONNX model from disk, no network) and
//!   [`OpenAiEmbedder`] (an OpenAI-compatible embeddings endpoint); [`BatchingEmbedder`]
//!   wraps either so that the texts of requests arriving while the model is busy are
//!   embedded together in one run (no timer: an idle model starts at once).
//! - [`VectorIndex`]: [`HnswIndex`] (hnsw_rs in process; bounded with LRU eviction,
//!   tombstones and rebuilds; entries and HNSW graphs saved to and loaded from a directory,
//!   a damaged or foreign graph rebuilt instead ([`LoadSummary`]); concurrent readers).
//! - [`FalseHitGuard`]: rejects candidates whose numbers, dates, negations, named entities or
//!   opposite words differ from the query.
//! - [`SemanticCacheSettings`]: the whole local cache from a config section in one call
//!   (model behind a [`BatchingEmbedder`], index opened from its directory).
//!
//! The default threshold and what the guard buys are measured on the project's labelled
//! evaluation set (`cargo xtask semantic-eval`; `docs/semantic-cache.md`). The model and ONNX
//! Runtime come from `cargo xtask fetch-assets` (see [`assets`]).

pub mod assets;
mod config;
mod embed;
mod error;
pub mod evaluation;
mod guard;
mod index;
mod layer;
mod method;
mod scope;
mod service;
mod settings;
mod stats;

pub use config::SemanticConfig;
pub use embed::{
    dot, normalise, BatchConfig, BatchStats, BatchingEmbedder, Embedder, FastembedConfig,
    FastembedEmbedder, OpenAiEmbedder, OpenAiEmbedderConfig,
};
pub use error::SemanticError;
pub use guard::{FalseHitGuard, Rejection};
pub use index::{
    Entry, EntryId, HnswIndex, IndexConfig, LoadSummary, Neighbour, Record, VectorIndex,
};
pub use layer::SemanticCacheLayer;
pub use lbgpt_core::{EmbedMethod, SemanticOptions};
pub use method::{eligibility, embedded_text, without_embedded_text, Ineligible};
pub use scope::Scope;
pub use service::SemanticCache;
pub use settings::SemanticCacheSettings;
pub use stats::SemanticStats;
