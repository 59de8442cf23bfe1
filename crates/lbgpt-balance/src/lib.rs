//! Retry, failover and load balancing for lbgpt, as tower services and layers.
//!
//! - [`balancer`]: the [`Balancer`] spreads requests over named members (provider keys,
//!   deployments, compatible servers) with a [`Strategy`] (weighted random, weighted round
//!   robin, max headroom, least latency, least busy, or your own [`PickStrategy`]), keeps
//!   each member under its RPM/TPM limits (waiting for the computed moment capacity returns
//!   instead of drawing 429s), fails over at once, cools members down on `retry-after`,
//!   opens per-member circuit breakers, retires dead keys, and passes a request a member
//!   does not serve (its model: `Error::ModelNotServed`) on to another member at no cost to
//!   the first; members change at run time
//!   through a [`BalancerHandle`]. It serves every endpoint, one balancer per endpoint:
//!   `Balancer` (chat, the default), `Balancer<EmbeddingRequest>` and
//!   `Balancer<CompletionRequest>` (legacy completions); see [`BalancedRequest`].
//! - [`usage`]: the [`UsageTracker`](usage::UsageTracker) trait the balancer counts requests
//!   and tokens with (sliding windows, in-flight reservations, pacing) and its in-memory
//!   implementation, whose memory per member is bounded whatever the request rate (charges
//!   summed in time buckets, not kept per request); [`tokens`]: request token estimates per endpoint (tiktoken or
//!   approximate).
//! - [`retry`]: [`RetryLayer`](retry::RetryLayer) / [`Retry`](retry::Retry) retry what may
//!   succeed later (connection errors, timeouts, 408, 409, 429, 5xx; never other 4xx and
//!   never `insufficient_quota`), wait what the server asks (`retry-after-ms`, then
//!   `retry-after`) or back off exponentially with jitter, and stop at `max_attempts` or an
//!   overall deadline, with a final error that says how many attempts were made and what the
//!   last failure was. Put it above the balancer.
//!
//! # Example
//! Two members in turn, with retries around them. The balancer moves a failed request on to
//! the other member at once; the retry layer only sees what the balancer could not absorb.
//!
//! ```
//! use lbgpt_balance::retry::{RetryLayer, RetryPolicy};
//! use lbgpt_balance::{Balancer, Member, MemberState, Strategy};
//! use lbgpt_core::{ApiError, ChatMessage, ChatRequest, ChatResponse, Error};
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Error> {
//! // Stand-ins for real providers (`lbgpt_openai::OpenAiService`, `lbgpt_azure::AzureService`):
//! // "flaky" always answers 503, "steady" always succeeds.
//! let flaky = service_fn(|_request: ChatRequest| async {
//!     Err::<ChatResponse, Error>(ApiError::new(503, "overloaded").into())
//! });
//! let steady = service_fn(|_request: ChatRequest| async {
//!     Ok::<_, Error>(serde_json::from_str::<ChatResponse>(r#"{"choices": []}"#).expect("valid"))
//! });
//!
//! let balancer = Balancer::builder()
//!     .strategy(Strategy::RoundRobin)
//!     .member(Member::new("flaky", flaky))
//!     .member(Member::new("steady", steady).rpm(500))
//!     .build()?;
//! let handle = balancer.handle();
//! let service = ServiceBuilder::new()
//!     .layer(RetryLayer::new(
//!         RetryPolicy::default().max_attempts(3).deadline(Duration::from_secs(30)),
//!     ))
//!     .service(balancer);
//!
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.meta.member.as_deref(), Some("steady"));
//! assert_eq!(response.meta.attempts, 2);
//!
//! let flaky = handle.member_stats("flaky").expect("a member");
//! assert_eq!((flaky.failed, flaky.failovers), (1, 1));
//! assert_eq!(flaky.state, MemberState::Active); // one failure does not open its breaker
//! # Ok(())
//! # }
//! ```

pub mod balancer;
pub mod retry;
pub mod tokens;
pub mod usage;

pub use balancer::{
    BalancedRequest, Balancer, BalancerBuilder, BalancerFuture, BalancerHandle, BreakerConfig,
    Candidate, Member, MemberState, MemberStats, PickStrategy, Strategy,
};
