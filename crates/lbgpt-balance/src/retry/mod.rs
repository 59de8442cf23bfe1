//! The retry layer: [`RetryLayer`] wraps a service in [`Retry`], which retries what may
//! succeed later, waits what the server asks or backs off with jitter, and stops at
//! `max_attempts` or an overall deadline.
//!
//! ```
//! use lbgpt_balance::retry::{RetryLayer, RetryPolicy};
//! use lbgpt_core::{ApiError, ChatMessage, ChatRequest, ChatResponse, Error};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Error> {
//! // A stand-in provider that answers 503 twice, then succeeds.
//! let calls = Arc::new(AtomicU32::new(0));
//! let provider = service_fn(move |_request: ChatRequest| {
//!     let call = calls.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         if call < 2 {
//!             Err(Error::from(ApiError::new(503, "busy")))
//!         } else {
//!             Ok(serde_json::from_str::<ChatResponse>(r#"{"choices": []}"#).expect("valid"))
//!         }
//!     }
//! });
//!
//! let policy = RetryPolicy::default()
//!     .max_attempts(5)
//!     .deadline(Duration::from_secs(60));
//! let service = ServiceBuilder::new()
//!     .layer(RetryLayer::new(policy))
//!     .service(provider);
//!
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.meta.attempts, 3);
//! # Ok(())
//! # }
//! ```
//!
//! See [`Retry`] for the exact rules of the final error and [`RetryPolicy`] for what is
//! retried and how long the layer waits.

mod decision;
mod future;
mod layer;
mod policy;
mod service;

pub use future::ResponseFuture;
pub use layer::RetryLayer;
pub use policy::RetryPolicy;
pub use service::Retry;
