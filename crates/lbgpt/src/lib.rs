//! lbgpt: fast, reliable chat completions at volume against OpenAI, Azure OpenAI and any
//! OpenAI-compatible server.
//!
//! This facade is the one dependency most users need: it re-exports the request and response
//! types, the provider services ([`openai`], [`azure`]) and the layers ([`balance`],
//! [`cache`], [`semantic`]), and offers batch clients that send one request or a million with
//! bounded concurrency, retries, optional exact and semantic caches and exactly one typed
//! result per input.
//!
//! # Three lines
//!
//! ```no_run
//! # async fn run() -> Result<(), lbgpt::Error> {
//! let gpt = lbgpt::ChatGpt::new("sk-...")?;
//! let request = lbgpt::ChatRequest::new("gpt-4o-mini", vec![lbgpt::ChatMessage::user("Hi!")]);
//! println!("{:?}", gpt.chat_completion(request).await?.first_text());
//! # Ok(()) }
//! ```
//!
//! # Many requests
//!
//! ```no_run
//! # async fn run(gpt: lbgpt::ChatGpt) {
//! use futures::StreamExt;
//! use lbgpt::{ChatMessage, ChatRequest};
//!
//! let requests = (0..1_000_000).map(|i| {
//!     ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user(format!("Summarise item {i}"))])
//! });
//! // Input order, pulled lazily, bounded memory:
//! let mut results = gpt.chat_completion_ordered(requests);
//! while let Some(result) = results.next().await {
//!     match result {
//!         Ok(answer) => println!("{:?}", answer.first_text()),
//!         Err(error) => eprintln!("failed: {error}"),
//!     }
//! }
//! # }
//! ```
//!
//! | method | returns |
//! |---|---|
//! | `chat_completion(request)` | one `Result<ChatResponse, Error>` |
//! | `chat_completion_list(requests)` | `Vec<Result<..>>`, one per input, in input order |
//! | `chat_completion_list_with_progress(requests, callback)` | the same, calling back with [`Progress`] after each result |
//! | `chat_completion_stream(requests)` | a [`CompletionStream`] of `(index, Result<..>)` in completion order |
//! | `chat_completion_ordered(requests)` | an [`OrderedCompletionStream`] of `Result<..>` in input order |
//!
//! The same methods exist for the other endpoints: `embedding`, `embedding_list`,
//! `embedding_ordered` (requests of more than [`MAX_EMBEDDING_INPUTS_PER_CALL`] inputs are sent
//! in chunks and merged; with an exact cache, embeddings are cached per input and only the
//! missing inputs are sent) and `completion`, `completion_list`, `completion_ordered` for legacy
//! `/v1/completions` (a list of prompts goes out as one call per prompt, spread over the
//! providers, and the answers are merged in prompt order). Every ready-made client has them; a
//! balanced client builds one balancer per endpoint from its providers (limits are per model),
//! whose counters are `embedding_stats()` / `completion_stats()`.
//!
//! At most `max_concurrent_requests` (default 5) requests run at once per client, shared by
//! its clones and by concurrent calls. `requests` is any `IntoIterator<Item = ChatRequest>`,
//! pulled only when a request can start.
//!
//! # Entry points
//!
//! - [`ChatGpt`]: OpenAI or any OpenAI-compatible server (`base_url`), with retries.
//! - [`AzureGpt`]: Azure OpenAI (endpoint, `api-key` or bearer token, api-version,
//!   model -> deployment map), with retries.
//! - [`LoadBalancedGpt`]: one OpenAI key and one Azure deployment, 25 % / 75 % by default
//!   (`ratio_openai_to_azure`), each the other's failover.
//! - [`MultiLoadBalancedGpt`]: a list of providers and an allocation function (`random` with
//!   `allocation_function_weights`, `max_headroom` with per-provider `limit_rpm`/`limit_tpm`,
//!   round robin, least latency, least busy).
//! - [`BalancedGpt`] (also [`Lbgpt::balanced`]): any mix of [`Provider`]s behind the balancer,
//!   every balancer setting available.
//! - [`Lbgpt`]: the same batch API over any `tower::Service<ChatRequest, Response =
//!   ChatResponse, Error = Error>`, for stacks built by hand.
//!
//! # Several keys and deployments
//!
//! The balanced clients put the balancer ([`balance::Balancer`]) under the retry layer: each
//! request goes to a provider picked by the strategy among those that are healthy and have
//! room under their `rpm`/`tpm` limits (requests in flight counted), waits for the computed
//! moment one has room when none has, and fails over at once when a provider fails. Providers
//! answering 429/503 cool down, repeated failures open a provider's circuit breaker, and a
//! revoked key (401/403, `insufficient_quota`) is retired. An Azure provider without a
//! deployment for a request's model (say, a chat deployment only, on the embeddings endpoint)
//! passes the request on to a provider that serves it, at no cost to itself; when none does,
//! the request fails with [`Error::ModelNotServed`] naming the model and the providers.
//! `stats()` reports each provider's
//! requests, tokens, 429s, failovers, headroom and state; `handle()` adds, removes, disables
//! and re-enables providers while requests run.
//!
//! ```no_run
//! # async fn run(requests: Vec<lbgpt::ChatRequest>) -> Result<(), lbgpt::Error> {
//! use lbgpt::openai::OpenAiConfig;
//! use lbgpt::{BalancedGpt, Provider};
//!
//! let key = |name: &str, key: &str| OpenAiConfig::new().api_key(key).name(name);
//! let gpt = BalancedGpt::builder()
//!     .provider(Provider::openai(key("key-1", "sk-1")).rpm(500).tpm(200_000))
//!     .provider(Provider::openai(key("key-2", "sk-2")).rpm(5_000).tpm(2_000_000))
//!     .max_concurrent_requests(32)
//!     .build()?;
//! let results = gpt.chat_completion_list(requests).await;
//! for member in gpt.stats() {
//!     println!("{}: {} requests, {}", member.name, member.requests, member.state);
//! }
//! # Ok(()) }
//! ```
//!
//! # Caching
//!
//! Every ready-made client takes an exact cache (the [`cache`] module, crate `lbgpt-cache`)
//! on its builder: `cache(layer)` with a [`CacheLayer`](cache::CacheLayer) of your own, or
//! `cache_store(store, config)` with a store (memory, disk, Redis or your own) and a
//! [`CacheConfig`](cache::CacheConfig). The cache goes in front of everything else:
//!
//! ```text
//! Lbgpt (concurrency, order) -> Cache -> Retry -> Balancer -> providers
//! ```
//!
//! so a repeated request is answered from the store with no upstream call, no attempt and no
//! share of any rate limit (`meta.cache == CacheStatus::Exact`, `meta.attempts == 0`),
//! identical requests in flight at once share one upstream call, and only successful final
//! answers (after retries and failover) are stored. `cache_stats()` on the client counts hits,
//! misses, shared calls and store errors; `cache()` returns the layer (e.g. to
//! [`invalidate`](cache::CacheLayer::invalidate) an entry). Per request,
//! [`ChatRequest::cache_mode`] bypasses or refreshes the cache.
//!
//! ```no_run
//! # async fn run(requests: Vec<lbgpt::ChatRequest>) -> Result<(), lbgpt::Error> {
//! use lbgpt::cache::{CacheConfig, DiskStore};
//! use lbgpt::ChatGpt;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let gpt = ChatGpt::builder()
//!     .api_key("sk-...")
//!     .cache_store(
//!         Arc::new(DiskStore::open(".lbgpt-cache")?),      // survives restarts
//!         CacheConfig::new()
//!             .namespace("my-project")
//!             .ttl(Duration::from_secs(30 * 24 * 3600)),
//!     )
//!     .build()?;
//! let results = gpt.chat_completion_list(requests).await; // run it twice: the second is free
//! let stats = gpt.cache_stats().unwrap_or_default();
//! println!("{} hits, {} misses", stats.hits, stats.misses);
//! # Ok(()) }
//! ```
//!
//! **Provider family.** Keys hold a provider family, so that answers are shared only between
//! clients that get them from the same kind of provider. With `cache_store`, a configuration
//! that names no family ([`CacheConfig::family`](cache::CacheConfig::family)) gets the
//! client's:
//!
//! | client | family |
//! |---|---|
//! | [`ChatGpt`] (OpenAI or any OpenAI-compatible server) | `"openai"` |
//! | [`AzureGpt`] | `"azure"` |
//! | [`LoadBalancedGpt`] | `"openai+azure"` |
//! | [`MultiLoadBalancedGpt`], [`BalancedGpt`] | the kinds of its providers ([`Provider::kind`]) in the order `openai`, `azure`, `custom`, joined by `+`: `"openai"`, `"azure"`, `"openai+azure"`, `"openai+custom"`, ... |
//!
//! OpenAI and Azure keep apart because an Azure deployment serves the model version its owner
//! picked under the model's name, which need not be the version OpenAI serves under that
//! name, and Azure answers carry content-filter annotations. A client balanced over both kinds
//! has one family for both (the key is made before the balancer picks a provider, and the user
//! has declared the providers interchangeable): its own, so its mix of answers is not served
//! to a single-kind client. Set the family yourself to share entries differently (e.g.
//! `.family("gpt")` on every client). A [`CacheLayer`](cache::CacheLayer) given to `cache(..)`
//! is used as it is, with the family of its own configuration (empty by default). The `lbgpt`
//! command line keys the same way, so it shares entries with library clients of the same
//! family and namespace.
//!
//! # Semantic caching
//!
//! Every ready-made client also takes a semantic cache (the [`semantic`] module, crate
//! `lbgpt-semantic`): a request that *means* the same as an answered one ("How do I reset my
//! password?" / "What are the steps to reset my password?") gets that answer without an
//! upstream call, and a request that only looks alike ("Is smoking allowed?" / "Is smoking not
//! allowed?") does not, thanks to a false-hit guard that compares negations, numbers, dates,
//! names and opposites after the similarity threshold (default
//! [`SemanticConfig::DEFAULT_THRESHOLD`](semantic::SemanticConfig::DEFAULT_THRESHOLD), 0.85,
//! chosen on the project's labelled evaluation set; see `docs/semantic-cache.md`). It sits
//! under the exact cache:
//!
//! ```text
//! Lbgpt -> exact cache -> semantic cache -> Retry -> Balancer -> providers
//! ```
//!
//! The embedding model (all-MiniLM-L6-v2, int8 ONNX) runs locally from files on disk, with no
//! download at run time: `cargo xtask fetch-assets` puts it and ONNX Runtime into
//! `.lbgpt-assets/` (or point `model_dir` / `runtime_library` elsewhere). A missing model is an
//! [`Error::Config`] from `build()`.
//!
//! ```no_run
//! # async fn run(requests: Vec<lbgpt::ChatRequest>) -> Result<(), Box<dyn std::error::Error>> {
//! use lbgpt::cache::{CacheConfig, DiskStore};
//! use lbgpt::semantic::SemanticCacheSettings;
//! use lbgpt::ChatGpt;
//! use std::sync::Arc;
//!
//! // The same fields as the CLI's `[semantic_cache]` table; every one optional.
//! let settings: SemanticCacheSettings = serde_json::from_str(
//!     r#"{"index_dir": ".lbgpt-semantic", "threshold": 0.85, "guard": true}"#,
//! )?;
//! let gpt = ChatGpt::builder()
//!     .api_key("sk-...")
//!     .cache_store(Arc::new(DiskStore::open(".lbgpt-cache")?), CacheConfig::new())
//!     .semantic_cache(settings)         // loads the model, opens the saved index
//!     .build()?;
//! for result in gpt.chat_completion_list(requests).await {
//!     if let Ok(answer) = result {
//!         if let lbgpt::CacheStatus::Semantic { score } = answer.meta.cache {
//!             println!("answered from a similar request (similarity {score:.2})");
//!         }
//!     }
//! }
//! gpt.save_semantic_index().await?;     // for the next run (also saved on drop)
//! let stats = gpt.semantic_cache_stats().unwrap_or_default();
//! println!("{} semantic hits, {} refused by the guard", stats.hits, stats.guard_rejections);
//! # Ok(()) }
//! ```
//!
//! The semantic cache's scope (what must be identical besides the embedded text: model,
//! parameters, tools, system prompt, ...) is made with the exact cache's configuration
//! (namespace, provider family, model aliases), so both caches agree on which requests may
//! share an answer, and a hit's `meta.cache_match` is the exact key of the request it was
//! served from. `semantic_cache_with(embedder, index, config)` takes parts of your own (one
//! model shared by several clients, another [`VectorIndex`](semantic::VectorIndex));
//! `semantic_cache_layer(layer)` takes a whole layer as it is. Answers are stored in both
//! caches; a semantic hit is never stored in the exact cache under the new request's key.
//!
//! # A stack of your own
//!
//! Every box of lbgpt is a tower service or layer, so you can assemble a stack with
//! [`tower::ServiceBuilder`], add your own layers, and hand it to [`Lbgpt::new`]:
//!
//! ```no_run
//! use lbgpt::azure::{AzureConfig, AzureService};
//! use lbgpt::balance::retry::{RetryLayer, RetryPolicy};
//! use lbgpt::{ChatRequest, ChatResponse, Lbgpt};
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//!
//! # fn run() -> Result<(), lbgpt::Error> {
//! let azure = AzureService::new(
//!     AzureConfig::new("https://my-resource.openai.azure.com")
//!         .api_key("...")
//!         .deployment("gpt-4o-mini", "mini-prod"),
//! )?;
//! let stack = ServiceBuilder::new()
//!     // Outermost first: your own layers see every request once...
//!     .map_response(|answer: ChatResponse| {
//!         tracing::info!(attempts = answer.meta.attempts, "answered");
//!         answer
//!     })
//!     // ...the retry layer repeats what is below it...
//!     .layer(RetryLayer::new(
//!         RetryPolicy::default().max_attempts(4).deadline(Duration::from_secs(60)),
//!     ))
//!     // ...and layers here see every attempt.
//!     .map_request(|request: ChatRequest| request)
//!     .service(azure);
//! let client = Lbgpt::new(stack).max_concurrent_requests(10);
//! # let _ = client; Ok(()) }
//! ```
//!
//! Layers from the wider tower ecosystem work too when their error type is
//! [`Error`]; map other error types with `ServiceBuilder::map_err`.
//!
//! The exact cache is a layer too: put `lbgpt::cache::CacheLayer` outermost (above the retry
//! layer) to get what the ready-made clients do.
//!
//! # Errors
//!
//! Each result is a typed [`Error`] on failure: the server's status, type, code and message,
//! transport failures, timeouts, undecodable bodies, invalid requests (refused before any
//! call), and the retry layer's [`Error::RetriesExhausted`] / [`Error::DeadlineExceeded`]
//! that say how many attempts were made and what the last failure was. API keys never appear
//! in any `Debug`, `Display` or error text.

mod azuregpt;
mod balanced;
mod caching;
mod chatgpt;
mod client;
mod completion_methods;
mod embedding_methods;
mod endpoint_clients;
mod endpoint_stream;
mod engine;
pub mod env;
mod forward;
mod load_balanced;
mod multi_load_balanced;
mod progress;
mod provider;
mod regroup;
mod semantic_caching;
mod settings;
mod stream;

pub use azuregpt::{AzureGpt, AzureGptBuilder, AzureGptService};
pub use balanced::{BalancedGpt, BalancedGptBuilder, BalancedService};
pub use caching::MaybeCached;
pub use chatgpt::{ChatGpt, ChatGptBuilder, ChatGptService};
pub use client::{Lbgpt, DEFAULT_MAX_CONCURRENT_REQUESTS, EMBEDDING_REORDER_WINDOW_PER_REQUEST};
pub use completion_methods::CompletionAnswerStream;
pub use embedding_methods::{EmbeddingStream, MAX_EMBEDDING_INPUTS_PER_CALL};
pub use endpoint_clients::{CompletionStack, EmbeddingStack};
pub use endpoint_stream::EndpointStream;
pub use env::{EnvError, EnvKeys, EnvMember};
pub use lbgpt_balance::{BalancerHandle, MemberState, MemberStats, Strategy};
pub use load_balanced::{LoadBalancedGpt, LoadBalancedGptBuilder, DEFAULT_RATIO_OPENAI_TO_AZURE};
pub use multi_load_balanced::{MultiLoadBalancedGpt, MultiLoadBalancedGptBuilder};
pub use progress::Progress;
pub use provider::Provider;
pub use semantic_caching::MaybeSemantic;
pub use stream::{CompletionStream, OrderedCompletionStream};

/// Every type of `lbgpt-core`: requests, responses, messages, tools, usage, [`Error`],
/// response metadata, the [`ApiRequest`]/[`ApiResponse`] traits and token estimation.
pub use lbgpt_core::*;

/// The OpenAI provider service and its configuration: `lbgpt-openai` re-exported.
pub mod openai {
    pub use lbgpt_openai::*;
}

/// The Azure OpenAI provider service and its configuration: `lbgpt-azure` re-exported.
pub mod azure {
    pub use lbgpt_azure::*;
}

/// The retry layer, the balancer, usage tracking and token estimation: `lbgpt-balance`
/// re-exported.
pub mod balance {
    pub use lbgpt_balance::*;
}

/// The exact cache: the layer, its configuration, keys, stores (memory, disk, Redis) and
/// counters: `lbgpt-cache` re-exported.
pub mod cache {
    pub use lbgpt_cache::*;
}

/// The semantic cache: the layer, its configuration and settings, the local embedder
/// (fastembed), the HNSW index, the false-hit guard and counters: `lbgpt-semantic`
/// re-exported.
pub mod semantic {
    pub use lbgpt_semantic::*;
}

/// The README's Rust examples, compiled by `cargo test --doc` so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
