//! [`RetryLayer`]: wraps a service in [`Retry`].

use super::{Retry, RetryPolicy};
use std::sync::Arc;
use tower::Layer;

/// A [`tower::Layer`] that wraps a service in [`Retry`] with one [`RetryPolicy`].
///
/// ```
/// use lbgpt_balance::retry::{RetryLayer, RetryPolicy};
/// use tower::ServiceBuilder;
/// # use lbgpt_core::{ChatRequest, ChatResponse, Error};
/// # let inner = tower::service_fn(|_req: ChatRequest| async {
/// #     Err::<ChatResponse, Error>(Error::Cancelled)
/// # });
///
/// let service = ServiceBuilder::new()
///     .layer(RetryLayer::new(RetryPolicy::default().max_attempts(3)))
///     .service(inner);
/// # let _ = service;
/// ```
#[derive(Debug, Clone, Default)]
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
}

impl RetryLayer {
    /// A layer retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            policy: Arc::new(policy),
        }
    }

    /// The policy this layer applies.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::from_shared(inner, Arc::clone(&self.policy))
    }
}
