//! Retry, failover and (later) load balancing for lbgpt, as tower layers and services.
//!
//! - [`retry`]: [`RetryLayer`](retry::RetryLayer) / [`Retry`](retry::Retry) retry what may
//!   succeed later (connection errors, timeouts, 408, 409, 429, 5xx; never other 4xx and
//!   never `insufficient_quota`), wait what the server asks (`retry-after-ms`, then
//!   `retry-after`) or back off exponentially with jitter, and stop at `max_attempts` or an
//!   overall deadline, with a final error that says how many attempts were made and what the
//!   last failure was.
//! - [`RoundRobin`]: sends each call to the next of several named members, so a retry lands
//!   on another member. The stepping stone before the full balancer (strategies, RPM/TPM
//!   limits, cooldowns), which a later release adds beside it in this crate.
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

pub mod retry;
mod round_robin;
pub mod tokens;
pub mod usage;

pub use round_robin::{MemberFuture, MemberService, RoundRobin};
