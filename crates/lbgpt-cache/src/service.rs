//! [`Cache`]: the service the [`CacheLayer`](crate::CacheLayer) wraps around a chat or legacy
//! completions service.

use crate::endpoint::{ExactEndpoint, ExactFlight, ExactState};
use crate::flight::{FlightFuture, FlightStart, Role};
use crate::state::{as_hit, Lookup};
use crate::stats::Counters;
use crate::{CacheKey, CacheStats};
use futures::future::BoxFuture;
use futures::FutureExt;
use lbgpt_core::{
    ApiResponse, CacheMode, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse, Error,
};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

/// An exact cache in front of a chat service or a legacy completions service; built by
/// [`CacheLayer`](crate::CacheLayer).
///
/// It is a `Service<ChatRequest>` over an inner `Service<ChatRequest, Response =
/// ChatResponse, Error = Error>`, and a `Service<CompletionRequest>` over an inner
/// `Service<CompletionRequest, Response = CompletionResponse, Error = Error>`, by the same
/// rules: the services one layer builds share its store, configuration, counters and the
/// design of its in-flight calls (a completion never joins a chat call: their keys differ,
/// see "Completion keys" in [`crate::key`]). A completion request with several prompts is
/// cached as a whole, under one key over the whole prompt list.
///
/// For each request, by its [`CacheMode`] (the request's
/// [`options.cache`](lbgpt_core::RequestOptions::cache), else the configured default):
///
/// - [`Use`](CacheMode::Use): look the key up; a hit is answered at once with
///   `meta.cache = Exact`, `meta.attempts = 0` and `meta.latency` = the lookup's time. On a
///   miss, join an identical request already in flight, or call the inner service (after a
///   second look at the store when some call ended since the first look: an identical
///   request may just have stored its answer); a successful
///   answer is stored, an error never is. Answers from the inner service keep its metadata
///   (`meta.cache = Miss`); only such provider answers are stored, never one a layer below
///   took from a cache.
/// - [`NoStore`](CacheMode::NoStore): the same, but this request's answer is not stored
///   (unless an identical request sharing the call allows it).
/// - [`Refresh`](CacheMode::Refresh): no lookup and no sharing; call the inner service and
///   store the answer.
/// - [`Bypass`](CacheMode::Bypass): straight to the inner service; streamed requests
///   (`stream: true`) always take this way.
///
/// A store that fails or exceeds the store timeout turns a lookup into a miss and a write
/// into a no-op, with a warning; the request itself never fails because of the cache.
///
/// Always ready: the inner service is cloned for each call that needs it and made ready then,
/// so hits never wait for upstream capacity.
pub struct Cache<S> {
    inner: S,
    state: Arc<ExactState>,
}

impl<S: Clone> Clone for Cache<S> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Cache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("inner", &self.inner)
            .field("store", &self.state.store.name())
            .field("config", &self.state.config)
            .finish()
    }
}

impl<S> Cache<S> {
    pub(crate) fn from_state(inner: S, state: Arc<ExactState>) -> Self {
        Cache { inner, state }
    }

    /// The counters, shared with the layer that built this service.
    pub fn stats(&self) -> CacheStats {
        self.state.counters.snapshot()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, consuming the cache.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<ChatRequest> for Cache<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = ChatResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<ChatResponse, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        respond(Arc::clone(&self.state), self.inner.clone(), request).boxed()
    }
}

impl<S> Service<CompletionRequest> for Cache<S>
where
    S: Service<CompletionRequest, Response = CompletionResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = CompletionResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<CompletionResponse, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: CompletionRequest) -> Self::Future {
        respond(Arc::clone(&self.state), self.inner.clone(), request).boxed()
    }
}

/// Answers one request of any endpoint the exact cache serves.
async fn respond<R, S>(state: Arc<ExactState>, inner: S, mut request: R) -> Result<R::Answer, Error>
where
    R: ExactEndpoint,
    S: Service<R, Response = R::Answer, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let started = Instant::now();
    let counters = &state.counters;
    let mode = request.mode(&state.config);
    let key = match mode {
        CacheMode::Bypass => None,
        _ => request.key(&state.config),
    };
    let Some(key) = key else {
        Counters::add(&counters.bypassed);
        return inner.oneshot(request).await;
    };

    // Read before the lookup: if no flight ends between it and our own flight's start, no
    // identical request can have stored an answer the lookup missed.
    let landings = R::flights(&state.flights).landings();
    let mut store_failed = false;
    if mode.reads() {
        match state.lookup::<R::Answer>(&key).await {
            Lookup::Found(response) => {
                Counters::add(&counters.hits);
                return Ok(as_hit(response, started.elapsed()));
            }
            Lookup::Absent => {}
            Lookup::Failed => store_failed = true,
        }
    }

    if !mode.reads() || !state.config.get_coalesce() {
        Counters::add(&counters.misses);
        if mode.writes() {
            request.keep_body();
        }
        let mut response = inner.oneshot(request).await?;
        let body = response.meta_mut().body.take();
        if mode.writes() {
            state.save(&key, &response, body).await;
        }
        return Ok(response);
    }

    let flight_state = Arc::clone(&state);
    let (flight, role) =
        R::flights(&state.flights).join_or_start(*key.digest(), mode.writes(), move |start| {
            let look_again = !store_failed && start.landings != landings;
            fly(flight_state, key, inner, request, start, look_again)
        });
    let outcome = flight.await;
    let counter = match (&outcome, role) {
        (Ok((_, true)), _) => &counters.hits,
        (_, Role::Leader) => &counters.misses,
        (_, Role::Follower) => &counters.coalesced,
    };
    Counters::add(counter);
    match outcome {
        Ok((response, true)) => Ok(as_hit(response, started.elapsed())),
        Ok((response, false)) => Ok(response),
        Err(err) => Err(err),
    }
}

/// The shared part of a miss: look once more (`look_again`: the store did not just fail, and a
/// flight ended since the first look), call upstream, store the answer if wanted.
fn fly<R, S>(
    state: Arc<ExactState>,
    key: CacheKey,
    inner: S,
    mut request: R,
    start: FlightStart<ExactFlight<R::Answer>>,
    look_again: bool,
) -> FlightFuture<ExactFlight<R::Answer>>
where
    R: ExactEndpoint,
    S: Service<R, Response = R::Answer, Error = Error> + Send + 'static,
    S::Future: Send + 'static,
{
    async move {
        // Unregisters the flight when this future ends or is dropped. Dropped after the
        // answer is stored, so a request arriving later finds it in the store.
        let _guard = start.guard;
        if look_again {
            if let Lookup::Found(response) = state.lookup::<R::Answer>(&key).await {
                return Ok((response, true));
            }
        }
        // Whether the answer is stored is known only when it arrives (a participant that
        // allows storing may join meanwhile): keep its body in any case (shared bytes, no copy)
        // and take it out before the answer is handed on.
        request.keep_body();
        let mut response = inner.oneshot(request).await?;
        let body = response.meta_mut().body.take();
        if start.store_wanted.load(Ordering::Acquire) {
            state.save(&key, &response, body).await;
        }
        Ok((response, false))
    }
    .boxed()
}
