//! [`Balancer`]: the tower service that spreads requests over members.

use super::builder::BalancerBuilder;
use super::call;
use super::handle::BalancerHandle;
use super::shared::Shared;
use super::stats::MemberStats;
use super::strategy::Strategy;
use super::BalancedRequest;
use lbgpt_core::{ChatRequest, Error};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Service;

/// Spreads requests over named member services, within their rate limits, around their
/// failures.
///
/// Build one with [`Balancer::builder`]; change its members while it runs through a
/// [`BalancerHandle`]. Clones share everything (members, usage, health, the strategy's
/// state): clone it freely, e.g. once per concurrent task.
///
/// `R` is the request type, one balancer per endpoint: [`ChatRequest`] (the default),
/// [`EmbeddingRequest`](lbgpt_core::EmbeddingRequest) or
/// [`CompletionRequest`](lbgpt_core::CompletionRequest) (see [`BalancedRequest`]). Every rule
/// below holds for each; only the token estimate and the usage an answer reports differ
/// (see [`tokens`](crate::tokens)). Each balancer has its own usage tracker unless given a
/// shared one ([`BalancerBuilder::usage`]): OpenAI and Azure limit each model or deployment
/// on its own, so an embeddings model's limits are not a chat model's.
///
/// # What a call does
/// 1. **Candidates**: the members that are enabled, not dead, not cooling down, whose
///    breaker is not open (or which are half-open with no probe running), and which have not
///    already failed this request. Zero-weight members only when no positive-weight member
///    has room.
/// 2. **Pick and reserve**: the [`Strategy`] picks one; the usage tracker reserves one
///    request and the request's estimated tokens on it. If the member is at its limit, the
///    strategy picks again among the others.
/// 3. **Wait** when no candidate has room: until the earliest moment one will (computed from
///    the tracker's answers, never polled) if that is within
///    [`max_wait`](BalancerBuilder::max_wait) of the call's start, or until the members
///    change; otherwise [`Error::NoMemberAvailable`] naming each member's limit and when
///    capacity returns.
/// 4. **Call** the member. On success the reservation is settled with the real usage and
///    rate-limit headers, the latency recorded, and the answer gets
///    [`meta.member`](lbgpt_core::ResponseMeta::member) (the member's name) and
///    [`meta.attempts`](lbgpt_core::ResponseMeta::attempts) (upstream calls made by this
///    balancer call).
/// 5. **Failures**: 401, 403 and `insufficient_quota` retire the member (state `Dead`, a
///    `tracing` warning) and the request moves on to another member, waiting for capacity if
///    need be (the request was not at fault). A retryable failure (429, 5xx, timeouts,
///    connection errors) cools the member down for the server's `retry-after` (429 without
///    one: [`default_cooldown`](BalancerBuilder::default_cooldown)), counts against its
///    circuit breaker unless it was a 429, and moves the request at once to another member
///    with room, at most [`max_failovers`](BalancerBuilder::max_failovers) times; when no
///    other member has room the error is returned (a [`Retry`](crate::retry::Retry) layer
///    above decides about waiting). Any other error (400, 404, ...) is returned at once.
/// 6. When no member can be tried at all (all dead, disabled, cooling down, breaker open,
///    half-open with its probe running): the call waits, as in step 3, for the first one to
///    come back (the end of a cooldown or open breaker; a successful probe wakes waiting
///    calls at once) if that is within [`max_wait`](BalancerBuilder::max_wait) of the call's
///    start. Otherwise [`Error::NoMemberAvailable`] at once, with `retry_after` the time until
///    the first one returns (`None` when none will by itself, e.g. all dead: not retryable).
///    Waiting is not an attempt: `meta.attempts` counts upstream calls only.
///
/// Dropping the call's future (cancellation, a deadline) gives back its reservation, its
/// in-flight slot and a half-open probe it held. Each upstream call runs in a
/// `lbgpt_balance_attempt` `tracing` span with the member name and attempt number.
///
/// # Readiness
/// `poll_ready` is always ready: waiting for capacity depends on the request (its tokens)
/// and happens inside the call's future. Put a concurrency limit in front if you need
/// back-pressure (the `lbgpt` batch client already has one).
pub struct Balancer<R: BalancedRequest = ChatRequest> {
    pub(crate) shared: Arc<Shared<R>>,
}

impl<R: BalancedRequest> Clone for Balancer<R> {
    fn clone(&self) -> Self {
        Balancer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: BalancedRequest> Balancer<R> {
    /// A builder with the defaults: [`Strategy::MaxHeadroom`], an in-memory usage tracker,
    /// the tiktoken estimator, `max_wait` 60 s, breaker 5 failures / 30 s. The request type
    /// follows from the members' services (or name it: `Balancer::<EmbeddingRequest>::builder()`).
    pub fn builder() -> BalancerBuilder<R> {
        BalancerBuilder::new()
    }

    /// A handle to change members and read statistics while the balancer runs.
    pub fn handle(&self) -> BalancerHandle<R> {
        BalancerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Every member's statistics, in member order.
    pub fn stats(&self) -> Vec<MemberStats> {
        self.handle().stats()
    }

    /// The members' names, in member order.
    pub fn member_names(&self) -> Vec<String> {
        self.handle().member_names()
    }

    /// The strategy in use.
    pub fn strategy(&self) -> &Strategy<R> {
        &self.shared.strategy
    }
}

impl<R: BalancedRequest> fmt::Debug for Balancer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("strategy", &self.shared.strategy)
            .field("members", &self.member_names())
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl<R: BalancedRequest> Service<R> for Balancer<R> {
    type Response = R::Response;
    type Error = Error;
    type Future = BalancerFuture<R>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> BalancerFuture<R> {
        BalancerFuture {
            inner: Box::pin(call::run(Arc::clone(&self.shared), request)),
        }
    }
}

/// The future of a [`Balancer`] call: the member's answer.
pub struct BalancerFuture<R: BalancedRequest = ChatRequest> {
    inner: Pin<Box<dyn Future<Output = Result<R::Response, Error>> + Send>>,
}

impl<R: BalancedRequest> fmt::Debug for BalancerFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancerFuture").finish_non_exhaustive()
    }
}

impl<R: BalancedRequest> Future for BalancerFuture<R> {
    type Output = Result<R::Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
