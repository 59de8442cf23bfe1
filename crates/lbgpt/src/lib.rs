//! lbgpt: fast, reliable chat completions at volume against OpenAI, Azure OpenAI and any
//! OpenAI-compatible server.
//!
//! This facade is the one dependency most users need: it re-exports the request and response
//! types, the provider services ([`openai`], [`azure`]) and the layers ([`balance`]), and
//! offers batch clients that send one request or a million with bounded concurrency, retries
//! and exactly one typed result per input.
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
//! At most `max_concurrent_requests` (default 5) requests run at once per client, shared by
//! its clones and by concurrent calls. `requests` is any `IntoIterator<Item = ChatRequest>`,
//! pulled only when a request can start.
//!
//! # Entry points
//!
//! - [`ChatGpt`]: OpenAI or any OpenAI-compatible server (`base_url`), with retries.
//! - [`AzureGpt`]: Azure OpenAI (endpoint, `api-key` or bearer token, api-version,
//!   model -> deployment map), with retries.
//! - [`Lbgpt`]: the same batch API over any `tower::Service<ChatRequest, Response =
//!   ChatResponse, Error = Error>`, for stacks built by hand.
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
//! # Errors
//!
//! Each result is a typed [`Error`] on failure: the server's status, type, code and message,
//! transport failures, timeouts, undecodable bodies, invalid requests (refused before any
//! call), and the retry layer's [`Error::RetriesExhausted`] / [`Error::DeadlineExceeded`]
//! that say how many attempts were made and what the last failure was. API keys never appear
//! in any `Debug`, `Display` or error text.

mod azuregpt;
mod chatgpt;
mod client;
mod engine;
mod forward;
mod progress;
mod settings;
mod stream;

pub use azuregpt::{AzureGpt, AzureGptBuilder, AzureGptService};
pub use chatgpt::{ChatGpt, ChatGptBuilder, ChatGptService};
pub use client::{Lbgpt, DEFAULT_MAX_CONCURRENT_REQUESTS};
pub use progress::Progress;
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

/// The retry layer (and, later, the balancer): `lbgpt-balance` re-exported.
pub mod balance {
    pub use lbgpt_balance::*;
}

/// The README's Rust examples, compiled by `cargo test --doc` so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
