//! Exact response caching for lbgpt: a [`tower::Layer`] that answers repeated chat and legacy
//! completions requests from a store, never serves an answer to a different request, and
//! makes identical requests in flight at the same time share one upstream call; and a layer
//! that caches embeddings per input.
//!
//! - [`CacheLayer`] / [`Cache`]: the layer and its service, in front of any
//!   `Service<ChatRequest, Response = ChatResponse, Error = lbgpt_core::Error>` (a provider,
//!   a retry layer, a balancer), and of any `Service<CompletionRequest, Response =
//!   CompletionResponse, Error = lbgpt_core::Error>` (legacy `/v1/completions`, by the same
//!   rules; a request with several prompts is cached as a whole). Hits carry
//!   `meta.cache = CacheStatus::Exact` and `meta.attempts = 0`.
//! - Keys ([`CacheKey`], [`key`]): a versioned SHA-256 of a canonical JSON form of everything
//!   that can change the answer (model or its alias, every message field, tools, sampling
//!   parameters, unknown fields, ...), plus a namespace and a provider family; JSON key order
//!   and number spelling do not matter. Never the API key, nor `user`. Completion keys
//!   (`"endpoint":"completions"`) and embedding keys never collide with chat keys.
//! - Stores ([`CacheStore`]: get / put with TTL / delete, and `get_many` for many keys at
//!   once): [`MemoryStore`] (bounded, the default), [`DiskStore`] (persistent, crash-safe,
//!   shared by processes) and `RedisStore` (feature `redis`, on by default: shared by
//!   machines; `MGET` for many keys). A failing store degrades to misses.
//! - Per-request control: [`CacheMode`] in [`ChatRequest::options`](lbgpt_core::ChatRequest::options)
//!   (and the `options` of the other requests: use, bypass, refresh, no-store), never sent to
//!   the provider.
//! - Counters: [`CacheStats`] (hits, misses, coalesced, bypassed, stores, errors).
//! - Embeddings: [`EmbeddingCacheLayer`] / [`EmbeddingCache`] cache each input of an
//!   `EmbeddingRequest` on its own (one key per input: model or alias, dimensions,
//!   encoding_format, the input, unknown fields; never `user` or credentials), send only the
//!   missing inputs upstream in one request (each once, in order) and put the answer back
//!   together in input order; `meta.cache` is `Exact`, `Miss` or `Partial { hits, misses }`.
//!   A request's inputs are looked up in one batch ([`CacheStore::get_many`]); each vector is
//!   stored as a compact binary [`embedding_entry`] (floats as their little-endian bytes, base64
//!   as the provider's text), so a hit costs about a microsecond per input and gives back the
//!   provider's exact bits. See the third example below.
//!
//! Only successful answers are stored; errors reach every waiting caller and are never
//! cached. `docs/cache.md` in the repository describes the key and file formats in full.
//!
//! ```
//! use lbgpt_cache::{CacheConfig, CacheLayer, DiskStore};
//! use lbgpt_core::{CacheMode, CacheStatus, ChatMessage, ChatRequest, ChatResponse, Error};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A stand-in provider that counts its calls.
//! let calls = Arc::new(AtomicU32::new(0));
//! let counter = Arc::clone(&calls);
//! let provider = service_fn(move |_request: ChatRequest| {
//!     counter.fetch_add(1, Ordering::SeqCst);
//!     async {
//!         serde_json::from_str::<ChatResponse>(
//!             r#"{"choices": [{"message": {"role": "assistant", "content": "Hi!"}}]}"#,
//!         )
//!         .map_err(|e| Error::Internal(e.to_string()))
//!     }
//! });
//!
//! let dir = tempfile::tempdir()?;
//! let layer = CacheLayer::with_config(
//!     Arc::new(DiskStore::open(dir.path())?),
//!     CacheConfig::new().namespace("docs"),
//! );
//! let service = ServiceBuilder::new().layer(layer.clone()).service(provider);
//!
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
//! let first = service.clone().oneshot(request.clone()).await?;
//! let second = service.clone().oneshot(request.clone()).await?;
//! assert_eq!(first.meta.cache, CacheStatus::Miss);
//! assert_eq!(second.meta.cache, CacheStatus::Exact);
//! assert_eq!(second.first_text().as_deref(), Some("Hi!"));
//!
//! // Refresh: ask upstream again and replace the entry.
//! let fresh = service.oneshot(request.cache_mode(CacheMode::Refresh)).await?;
//! assert_eq!(fresh.meta.cache, CacheStatus::Miss);
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! assert_eq!((layer.stats().hits, layer.stats().misses), (1, 2));
//! # Ok(())
//! # }
//! ```
//!
//! Legacy completions through the same layer (the facade sends a request with several
//! prompts as one request per prompt, so each prompt gets its own entry):
//!
//! ```
//! use lbgpt_cache::CacheLayer;
//! use lbgpt_core::{CacheStatus, CompletionRequest, CompletionResponse, Error};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = service_fn(|request: CompletionRequest| async move {
//!     let text = format!("{} ... and so on", request.prompt.texts().unwrap_or_default().join("|"));
//!     serde_json::from_value::<CompletionResponse>(serde_json::json!({
//!         "choices": [{"text": text, "index": 0}]
//!     }))
//!     .map_err(|e| Error::Internal(e.to_string()))
//! });
//! let layer = CacheLayer::in_memory();
//! let service = layer.layer(provider);
//!
//! let request = CompletionRequest::new("gpt-3.5-turbo-instruct", "Once upon").max_tokens(8);
//! let first = service.clone().oneshot(request.clone()).await?;
//! let again = service.clone().oneshot(request).await?;
//! assert_eq!(first.meta.cache, CacheStatus::Miss);
//! assert_eq!((again.meta.cache, again.meta.attempts), (CacheStatus::Exact, 0));
//! assert_eq!(again.first_text(), Some("Once upon ... and so on"));
//! assert_eq!((layer.stats().hits, layer.stats().misses), (1, 1));
//! # Ok(())
//! # }
//! ```
//!
//! The embedding cache in front of an embeddings service (here a stand-in that records the
//! inputs it is sent and answers each text with its length):
//!
//! ```
//! use lbgpt_cache::EmbeddingCacheLayer;
//! use lbgpt_core::{CacheStatus, EmbeddingRequest, EmbeddingResponse, Error};
//! use std::sync::{Arc, Mutex};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sent: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
//! let log = Arc::clone(&sent);
//! let provider = service_fn(move |request: EmbeddingRequest| {
//!     let texts: Vec<String> = request.input.texts().unwrap_or_default()
//!         .into_iter().map(str::to_owned).collect();
//!     log.lock().expect("log").push(texts.clone());
//!     async move {
//!         let data: Vec<_> = texts.iter().enumerate()
//!             .map(|(i, t)| serde_json::json!({"index": i, "embedding": [t.len() as f32]}))
//!             .collect();
//!         serde_json::from_value::<EmbeddingResponse>(serde_json::json!({
//!             "data": data, "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}
//!         }))
//!         .map_err(|e| Error::Internal(e.to_string()))
//!     }
//! });
//!
//! let layer = EmbeddingCacheLayer::in_memory();
//! let service = layer.layer(provider);
//! service.clone().oneshot(EmbeddingRequest::new("m", vec!["a", "bb"])).await?;
//! let answer = service.oneshot(EmbeddingRequest::new("m", vec!["bb", "ccc", "bb", "a"])).await?;
//!
//! // Only the new input went upstream; the answer holds every input, in order.
//! assert_eq!(sent.lock().expect("log")[1], vec!["ccc".to_owned()]);
//! let lengths: Vec<f32> = answer.data.iter().map(|e| e.embedding.as_floats().expect("floats")[0]).collect();
//! assert_eq!(lengths, vec![2.0, 3.0, 2.0, 1.0]);
//! assert_eq!(answer.data[3].index, 3);
//! assert_eq!(answer.meta.cache, CacheStatus::Partial { hits: 3, misses: 1 });
//! assert_eq!((layer.stats().hits, layer.stats().misses), (3, 3));
//! # Ok(())
//! # }
//! ```

mod canonical;
mod config;
mod embeddings;
mod endpoint;
mod flight;
pub mod key;
mod layer;
mod service;
mod state;
mod stats;
mod store;

pub use config::CacheConfig;
pub use embeddings::entry as embedding_entry;
pub use embeddings::{EmbeddingCache, EmbeddingCacheLayer};
pub use key::{CacheKey, KEY_VERSION};
pub use layer::CacheLayer;
pub use lbgpt_core::{CacheMode, RequestOptions};
pub use service::Cache;
pub use stats::CacheStats;
pub use store::{
    CacheStore, DiskStore, DiskStoreBuilder, MemoryStore, MemoryStoreBuilder, PurgeReport,
    StoreError,
};
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreBuilder};
