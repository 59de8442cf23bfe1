//! [`Retry`]: the service that retries failed attempts of its inner service.

use super::{ResponseFuture, RetryPolicy};
use lbgpt_core::{ApiRequest, ApiResponse, Error};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Service;

/// Retries failed requests of the inner service according to a [`RetryPolicy`].
///
/// Built by [`RetryLayer`](super::RetryLayer) or [`Retry::new`]. Works for any request that
/// implements [`ApiRequest`] (it must be cloned to be sent again) and any response that
/// implements [`ApiResponse`].
///
/// # Readiness
/// `poll_ready` asks the inner service. `call` follows tower's clone-and-swap idiom: the
/// service that was just made ready goes into the returned future (for the first attempt),
/// and a fresh clone stays behind, so the readiness the caller waited for is the readiness
/// that is used. Later attempts wait for the future's own service to be ready again.
///
/// # The result
/// - Success: the response, with [`meta.attempts`](lbgpt_core::ResponseMeta::attempts) set
///   to the number of upstream calls made across layers: this layer's failed attempts before
///   the successful one, plus the successful attempt's own `meta.attempts` as the service
///   below reported it, counted as at least 1. A balancer below that tried three members in
///   the successful attempt, after two failed attempts, gives `2 + 3 = 5`; a provider service
///   (which reports 1) gives the number of attempts. [`meta.latency`](
///   lbgpt_core::ResponseMeta::latency) is set to the time since the first attempt started,
///   waits included.
/// - The attempt counts in the errors below ([`Error::RetriesExhausted`],
///   [`Error::DeadlineExceeded`]) are this layer's own attempts.
/// - Exactly one attempt was made and it failed (the error was not retryable, the server
///   asked to wait longer than [`RetryPolicy::max_retry_after`], or `max_attempts` is 1):
///   that attempt's error **as is**, so callers can match on it.
/// - More than one attempt was made and the last one failed (for whatever reason: attempts
///   used up, a non-retryable error, or a too-long server wait):
///   [`Error::RetriesExhausted`] `{ attempts, last }`.
/// - An overall [`deadline`](RetryPolicy::deadline) is set and either the next wait would
///   end after it (the layer stops at once instead of sleeping pointlessly) or an attempt is
///   still running when it passes (that attempt is cancelled): [`Error::DeadlineExceeded`]
///   `{ deadline, attempts, last }`, where `attempts` counts the attempts started and `last`
///   is the error of the last attempt that completed, if any.
///
/// Each retry logs a `tracing` debug event (attempt, wait, error class and status; never
/// request bodies or keys).
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    policy: Arc<RetryPolicy>,
}

impl<S> Retry<S> {
    /// Wraps `inner`, retrying with `policy`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self::from_shared(inner, Arc::new(policy))
    }

    pub(crate) fn from_shared(inner: S, policy: Arc<RetryPolicy>) -> Self {
        Retry { inner, policy }
    }

    /// The policy this service applies.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for Retry<S>
where
    Req: ApiRequest,
    S: Service<Req, Error = Error> + Clone + Send + 'static,
    S::Response: ApiResponse,
    S::Future: Send,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        ResponseFuture::start(ready, Arc::clone(&self.policy), request)
    }
}
