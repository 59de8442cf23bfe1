//! The balancer: one tower service over many provider keys and deployments, used as if
//! they were one big quota.
//!
//! A [`Balancer`] holds named [`Member`]s (provider services with a weight and optional
//! RPM/TPM limits). Each request goes to a member picked by a [`Strategy`] among those that
//! are healthy and have room under their limits; the [usage tracker](crate::usage) reserves
//! the request's estimated tokens while it is in flight, so bursts never overshoot a limit,
//! and when no member has room the request waits for the computed moment one will. Failures
//! move the request on to another member at once; 429/503 with `retry-after` cool a member
//! down, repeated failures open its circuit breaker, 401/403/`insufficient_quota` retire it.
//! A [`BalancerHandle`] adds, removes, disables and re-enables members while requests run
//! and reports [`MemberStats`].
//!
//! A member that does not serve the request's model (it answers
//! [`Error::ModelNotServed`](lbgpt_core::Error::ModelNotServed) before any network call, as an
//! Azure resource without a deployment for the model does) passes the request on: the next
//! member is asked at once, and the first one is not penalised (no failure, no breaker
//! count, no failover; its reservation is refunded and the call is not counted as an
//! attempt). When no member serves the model the request fails with `ModelNotServed` naming
//! the model and every member with its reason; when the members that might serve it are
//! unavailable, with `NoMemberAvailable` whose reason also names those that do not serve it.
//!
//! Put a [`Retry`](crate::retry::Retry) layer above the balancer: it only sees what the
//! balancer could not absorb (every member failing, or all of them at their limits, cooling
//! down or with an open breaker for longer than the balancer's `max_wait`).
//!
//! # One balancer per endpoint
//! The balancer is generic over the request type ([`BalancedRequest`]): chat
//! ([`ChatRequest`](lbgpt_core::ChatRequest), the default), embeddings
//! ([`EmbeddingRequest`](lbgpt_core::EmbeddingRequest)) and legacy completions
//! ([`CompletionRequest`](lbgpt_core::CompletionRequest)). Every rule is the same; the token
//! estimate ([`tokens`](crate::tokens)) and the usage that settles it
//! ([`ApiResponse::token_usage`](lbgpt_core::ApiResponse::token_usage)) follow the endpoint.
//! Providers limit each model (OpenAI) or deployment (Azure) on its own, so each balancer
//! has its own usage tracker by default; give two balancers the same tracker
//! ([`BalancerBuilder::usage`]) only when their members of the same name share one limit.
//!
//! # Example
//! Two simulated keys with different limits, the larger one preferred by max headroom:
//!
//! ```
//! use lbgpt_balance::retry::{RetryLayer, RetryPolicy};
//! use lbgpt_balance::{Balancer, Member, Strategy};
//! use lbgpt_core::{ChatMessage, ChatRequest, Error};
//! use lbgpt_openai::{OpenAiConfig, OpenAiService};
//! use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start(
//!     SimConfig::new()
//!         .key(KeyConfig::new("sk-sim-small").rpm(60))
//!         .key(KeyConfig::new("sk-sim-large").rpm(600)),
//! )
//! .await?;
//! let member = |name: &str, key: &str| -> Result<OpenAiService, Error> {
//!     OpenAiService::new(OpenAiConfig::new().api_key(key).base_url(sim.base_url()).name(name))
//! };
//!
//! let balancer = Balancer::builder()
//!     .strategy(Strategy::MaxHeadroom)
//!     .member(Member::new("small", member("small", "sk-sim-small")?).rpm(60))
//!     .member(Member::new("large", member("large", "sk-sim-large")?).rpm(600))
//!     .build()?;
//! let handle = balancer.handle();
//! let service = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default().max_attempts(3)))
//!     .service(balancer);
//!
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
//! let answer = service.oneshot(request).await?;
//! assert!(answer.meta.member.is_some());
//!
//! for stats in handle.stats() {
//!     println!("{}: {} requests, {}", stats.name, stats.requests, stats.state);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Embeddings over the same keys, in a balancer of their own (the provider services serve
//! every endpoint):
//!
//! ```
//! use lbgpt_balance::{Balancer, Member};
//! use lbgpt_core::{EmbeddingRequest, Error};
//! use lbgpt_openai::{OpenAiConfig, OpenAiService};
//! use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start(
//!     SimConfig::new()
//!         .key(KeyConfig::new("sk-sim-1").rpm(3_000).tpm(1_000_000))
//!         .key(KeyConfig::new("sk-sim-2").rpm(3_000).tpm(1_000_000)),
//! )
//! .await?;
//! let member = |name: &str, key: &str| -> Result<OpenAiService, Error> {
//!     OpenAiService::new(OpenAiConfig::new().api_key(key).base_url(sim.base_url()).name(name))
//! };
//! let embeddings: Balancer<EmbeddingRequest> = Balancer::builder()
//!     .member(Member::new("key-1", member("key-1", "sk-sim-1")?).rpm(3_000).tpm(1_000_000))
//!     .member(Member::new("key-2", member("key-2", "sk-sim-2")?).rpm(3_000).tpm(1_000_000))
//!     .build()?;
//!
//! let request = EmbeddingRequest::new("text-embedding-3-small", vec!["first", "second"]);
//! let answer = embeddings.oneshot(request).await?;
//! assert_eq!(answer.data.len(), 2);
//! assert!(answer.meta.member.is_some());
//! assert_eq!(answer.meta.attempts, 1);
//! # Ok(())
//! # }
//! ```

mod attempt;
mod builder;
mod call;
mod entry;
mod handle;
mod health;
mod latency;
mod member;
mod not_served;
mod report;
mod request;
mod service;
mod shared;
mod stats;
pub mod strategy;
mod verdict;

pub use builder::BalancerBuilder;
pub use handle::BalancerHandle;
pub use health::{BreakerConfig, MemberState};
pub use member::Member;
pub use request::BalancedRequest;
pub use service::{Balancer, BalancerFuture};
pub use stats::MemberStats;
pub use strategy::{Candidate, PickStrategy, Strategy};
