//! A simulator of rate-limited OpenAI and Azure OpenAI endpoints (chat completions,
//! embeddings, legacy completions), for tests, benchmarks and demos.
//!
//! [`Simulator::start`] serves on a free loopback port in background tasks of the current
//! tokio runtime:
//!
//! - **Paths.** `POST /v1/chat/completions` with `Authorization: Bearer KEY` (OpenAI), and
//!   `POST /openai/deployments/{deployment}/chat/completions?api-version=...` with an
//!   `api-key: KEY` header or `Authorization: Bearer KEY` (Azure). A missing or unaccepted
//!   `api-version` is a 400; an undeclared deployment (when any are declared) a 404
//!   `DeploymentNotFound`. `GET /health` answers `ok`.
//! - **Embeddings and legacy completions.** `POST /v1/embeddings` and `POST /v1/completions`
//!   (Azure: `/openai/deployments/{deployment}/embeddings` and `/completions`) with the same
//!   authentication, validation (400 naming the field, via the core types' `validate`), faults,
//!   limits and counters as chat. Embeddings are [`expected_embedding`] of each input
//!   ([`EMBEDDING_DIMENSIONS`] numbers, or `dimensions`; base64 when asked), charged their
//!   prompt tokens; completions answer `n` choices per prompt with
//!   [`expected_completion_text`], charged prompt tokens plus `max_tokens x n` per prompt.
//!   Token-id inputs stand for their ids as text ([`tokens_text`]).
//! - **Keys.** Only configured (or added) keys are served; a missing, unknown, removed or
//!   revoked key gets a 401 with an OpenAI-shaped body (code `invalid_api_key`, or
//!   `missing_api_key` when none was sent) that never echoes the key.
//! - **Requests.** The body must be a chat request ([`lbgpt_core::ChatRequest`]); unknown
//!   fields are accepted. `stream: true` gets a 400 (streaming is not simulated yet), as do an
//!   empty `messages`, `n` of 0 or above 128, and out-of-range sampling parameters.
//! - **Answers** are deterministic: every choice's content is [`expected_answer`] of the
//!   request, the id is `chatcmpl-sim-<hash>`, `n` choices, `usage` with prompt tokens as below,
//!   `finish_reason` `"length"` when the
//!   completion budget cut the answer. Every answer carries an `x-request-id`
//!   (and, on Azure paths, the same `apim-request-id`).
//! - **Limits.** Per key RPM and TPM, charged at arrival as Azure does: approximate prompt
//!   tokens plus the completion budget (`max_completion_tokens`, else `max_tokens`, else 0)
//!   times `n`. How a per-minute limit is enforced is the key's [`LimitMode`]: a sliding
//!   60 s window (the default), a token bucket holding the limit and refilled at limit/60 per
//!   second (OpenAI-like), or fixed 10 s windows each allowing a sixth of it (Azure-like: a
//!   600 RPM key accepts 100 requests per 10 s). A request over a limit gets a 429 (code
//!   `rate_limit_exceeded`) with `retry-after` (whole seconds, rounded up) and
//!   `retry-after-ms` saying exactly when it would fit; refused requests are not charged. A
//!   request that can never fit (more tokens than the limit allows at once) gets a 429 without
//!   `retry-after`. Answers of limited keys carry `x-ratelimit-limit-*`,
//!   `x-ratelimit-remaining-*` and `x-ratelimit-reset-*` (OpenAI's duration format: `250ms`,
//!   `1.5s`, `6m0s`); `reset` is the time until the limit is wholly free again.
//! - **Faults** ([`Fault`]): scripted for the next requests of a key with
//!   [`Simulator::script`], or at random with [`KeyConfig::random_faults`] (seeded).
//! - **Prompt tokens** are [`lbgpt_core::tokens::approx_prompt_tokens`] times the key's
//!   [`KeyConfig::token_factor`] (default 1), in its limits and in the usage it reports: a
//!   factor above 1 simulates a provider that counts more than the client estimates.
//! - **Latency** ([`Latency`]): fixed plus per output token, before successful answers.
//! - **Run-time changes**, effective for the next request (requests in flight finish as they
//!   started): [`Simulator::revoke_key`] (401 `invalid_api_key` from then on),
//!   [`Simulator::set_quota_exhausted`] (429 `insufficient_quota`), [`Simulator::add_key`],
//!   [`Simulator::remove_key`] and [`Simulator::set_latency`].
//! - **Counters** ([`Simulator::stats`], [`Simulator::key_stats`]): per key, arrivals,
//!   successes, 429s of the limits apart from injected 429s, 401s of revoked keys, tokens used
//!   and charged, the most arrivals within any 10 s and 60 s; and a bounded log of the
//!   requests received with credentials redacted ([`Simulator::seen_requests`]).
//!
//! ```
//! use lbgpt_core::{ChatMessage, ChatRequest};
//! use lbgpt_sim::{Fault, KeyConfig, SimConfig, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a").rpm(600))).await?;
//! sim.script("sk-sim-a", [Fault::ServerError]);
//!
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
//! let client = reqwest::Client::new();
//! let send = || {
//!     client
//!         .post(format!("{}/chat/completions", sim.base_url()))
//!         .bearer_auth("sk-sim-a")
//!         .body(serde_json::to_string(&request).unwrap())
//!         .send()
//! };
//! assert_eq!(send().await?.status(), 500); // the scripted fault
//! let answer = send().await?;
//! assert_eq!(answer.status(), 200);
//! // The faulted request was not charged against the limit.
//! assert_eq!(answer.headers()["x-ratelimit-remaining-requests"], "599");
//! let body: serde_json::Value = serde_json::from_str(&answer.text().await?)?;
//! assert_eq!(body["choices"][0]["message"]["content"], lbgpt_sim::expected_answer(&request));
//!
//! let stats = sim.key_stats("sk-sim-a").unwrap();
//! assert_eq!((stats.requests, stats.succeeded, stats.faults_injected), (2, 1, 1));
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod answer;
mod clock;
mod config;
mod endpoints;
mod error;
mod fault;
mod handler;
mod limiter;
mod reply;
mod rng;
mod seen;
mod server;
mod simulator;
mod state;
mod stats;
mod tls;
mod toml_config;

pub use answer::{expected_answer, full_answer, request_hash};
pub use config::{KeyConfig, Latency, SimConfig, DEFAULT_SEEN_CAPACITY};
pub use endpoints::{
    expected_completion, expected_completion_text, expected_embedding,
    expected_embedding_with_dimensions, input_texts, tokens_text, EMBEDDING_DIMENSIONS,
    MAX_EMBEDDING_DIMENSIONS,
};
pub use error::{SimConfigError, SimError};
pub use fault::{Fault, FaultMix};
pub use limiter::LimitMode;
pub use seen::{SeenRequest, REDACTED};
pub use simulator::Simulator;
pub use stats::{KeyStats, SimStats};
