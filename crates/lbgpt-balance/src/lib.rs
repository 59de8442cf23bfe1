//! Retry, failover and load balancing for lbgpt, as tower services and layers.
//!
//! - [`balancer`]: the [`Balancer`] spreads requests over named members (provider keys,
//!   deployments, compatible servers) with a [`Strategy`] (weighted random, weighted round
//!   robin, max headroom, least latency, least busy, or your own [`PickStrategy`]), keeps
//!   each member under its RPM/TPM limits (waiting for the computed moment capacity returns
//!   instead of drawing 429s), fails over at once, cools members down on `retry-after`,
//!   opens per-member circuit breakers and retires dead keys; members change at run time
//!   through a [`BalancerHandle`].
//! - [`usage`]: the [`UsageTracker`](usage::UsageTracker) trait the balancer counts requests
//!   and tokens with (sliding windows, in-flight reservations, pacing) and its in-memory
//!   implementation; [`tokens`]: request token estimates (tiktoken or approximate).
//! - [`retry`]: [`RetryLayer`](retry::RetryLayer) / [`Retry`](retry::Retry) retry what may
//!   succeed later (connection errors, timeouts, 408, 409, 429, 5xx; never other 4xx and
//!   never `insufficient_quota`), wait what the server asks (`retry-after-ms`, then
//!   `retry-after`) or back off exponentially with jitter, and stop at `max_attempts` or an
//!   overall deadline, with a final error that says how many attempts were made and what the
//!   last failure was. Put it above the balancer.
//! - [`RoundRobin`]: the minimal rotation over members that preceded the balancer (no
//!   limits, no health); kept for existing users, the balancer with
//!   [`Strategy::RoundRobin`] supersedes it.
//!
//! # Example
//! Two members in turn, with retries around them:
//!
//! ```
//! use lbgpt_balance::retry::{RetryLayer, RetryPolicy};
//! use lbgpt_balance::RoundRobin;
//! use lbgpt_core::{ApiError, ChatMessage, ChatRequest, ChatResponse, Error};
//! use std::time::Duration;
//! use tower::util::BoxCloneService;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Error> {
//! // Stand-ins for real providers (`lbgpt_openai::OpenAiService`, `lbgpt_azure::AzureService`):
//! // "flaky" always answers 503, "steady" always succeeds.
//! let flaky = BoxCloneService::new(service_fn(|_request: ChatRequest| async {
//!     Err::<ChatResponse, Error>(ApiError::new(503, "overloaded").into())
//! }));
//! let steady = BoxCloneService::new(service_fn(|_request: ChatRequest| async {
//!     Ok::<_, Error>(serde_json::from_str::<ChatResponse>(r#"{"choices": []}"#).expect("valid"))
//! }));
//!
//! let members = RoundRobin::new(vec![("flaky", flaky), ("steady", steady)])?;
//! let service = ServiceBuilder::new()
//!     .layer(RetryLayer::new(
//!         RetryPolicy::default().max_attempts(3).deadline(Duration::from_secs(30)),
//!     ))
//!     .service(members);
//!
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.meta.member.as_deref(), Some("steady"));
//! assert_eq!(response.meta.attempts, 2);
//! # Ok(())
//! # }
//! ```

pub mod balancer;
pub mod retry;
mod round_robin;
pub mod tokens;
pub mod usage;

pub use balancer::{
    Balancer, BalancerBuilder, BalancerFuture, BalancerHandle, BreakerConfig, Candidate, Member,
    MemberState, MemberStats, PickStrategy, Strategy,
};
pub use round_robin::{MemberFuture, MemberService, RoundRobin};
