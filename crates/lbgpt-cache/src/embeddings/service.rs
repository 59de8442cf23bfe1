//! [`EmbeddingCache`]: the service the [`EmbeddingCacheLayer`](crate::EmbeddingCacheLayer)
//! wraps around an embeddings service.

use super::assemble::{assemble, Resolved, Source};
use super::batch::{start_batch, EmbeddingState, LedInput};
use super::plan::Plan;
use super::store_io::{look_up_all, store_all};
use super::tally::{Route, Tally};
use super::upstream::{fetch, Call};
use crate::flight::Role;
use crate::state::Lookup;
use crate::stats::Counters;
use crate::CacheStats;
use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use lbgpt_core::{CacheMode, EmbeddingRequest, EmbeddingResponse, Error, TextInput};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

/// A per-input cache in front of an embeddings service; built by
/// [`EmbeddingCacheLayer`](crate::EmbeddingCacheLayer).
///
/// A request is cut into its inputs, each with its own key (see "Embedding keys" in
/// [`crate::key`]). By the request's [`CacheMode`] (its
/// [`options.cache`](lbgpt_core::RequestOptions::cache), else the configured default):
///
/// - [`Use`](CacheMode::Use): every distinct input is looked up. The missing ones join an
///   identical input another request is already fetching, or go upstream in **one** request
///   holding only them, in their original order, each once (after a second look at the
///   store). Each fresh vector is stored; hits and fresh vectors are put back in the original
///   order with `index` = position. When every input hits, no upstream call is made.
/// - [`NoStore`](CacheMode::NoStore): the same, but fresh vectors are not stored (unless a
///   concurrent request sharing the call allows it).
/// - [`Refresh`](CacheMode::Refresh): no lookup and no sharing; every distinct input goes
///   upstream and its entry is replaced.
/// - [`Bypass`](CacheMode::Bypass): the request goes to the inner service as it is.
///
/// The answer's `usage` is what this request's own upstream call was charged (zero when it
/// made none), and `meta.cache` says how the inputs were answered:
/// [`Exact`](lbgpt_core::CacheStatus::Exact) (all from the store, `meta.attempts = 0`),
/// [`Miss`](lbgpt_core::CacheStatus::Miss) (none) or
/// [`Partial { hits, misses }`](lbgpt_core::CacheStatus::Partial); the rest of the metadata
/// is the upstream call's.
///
/// An upstream error is returned as it is and nothing of that call is stored. If the call of
/// a concurrent request this one waited for fails, this request sends those inputs itself, so
/// it only fails for its own inputs. A store that fails or exceeds the store timeout turns a
/// lookup into a miss and a write into a no-op, with a warning. An invalid request (no input,
/// an empty input, too many inputs, ...) is refused with [`Error::InvalidRequest`] before
/// anything is looked up.
///
/// Always ready: the inner service is cloned for each call that needs it and made ready then,
/// so hits never wait for upstream capacity.
pub struct EmbeddingCache<S> {
    inner: S,
    state: Arc<EmbeddingState>,
}

impl<S: Clone> Clone for EmbeddingCache<S> {
    fn clone(&self) -> Self {
        EmbeddingCache {
            inner: self.inner.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for EmbeddingCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingCache")
            .field("inner", &self.inner)
            .field("store", &self.state.store.name())
            .field("config", &self.state.config)
            .finish()
    }
}

impl<S> EmbeddingCache<S> {
    pub(crate) fn from_state(inner: S, state: Arc<EmbeddingState>) -> Self {
        EmbeddingCache { inner, state }
    }

    /// The counters (per input), shared with the layer that built this service.
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

impl<S> Service<EmbeddingRequest> for EmbeddingCache<S>
where
    S: Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = EmbeddingResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<EmbeddingResponse, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: EmbeddingRequest) -> Self::Future {
        respond(Arc::clone(&self.state), self.inner.clone(), request).boxed()
    }
}

async fn respond<S>(
    state: Arc<EmbeddingState>,
    inner: S,
    mut request: EmbeddingRequest,
) -> Result<EmbeddingResponse, Error>
where
    S: Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let started = Instant::now();
    let mode = state.config.embedding_mode_for(&request);
    if mode == CacheMode::Bypass {
        Counters::add_n(&state.counters.bypassed, request.input.len() as u64);
        return inner.oneshot(request).await;
    }
    request.validate()?;
    let plan = state
        .config
        .embedding_keys_for(&request)
        .and_then(|keys| Plan::new(&request.input, keys));
    let Some(plan) = plan else {
        Counters::add_n(&state.counters.bypassed, request.input.len() as u64);
        return inner.oneshot(request).await;
    };
    // From here on the request is the template of upstream requests: every field but input.
    request.input = TextInput::Texts(Vec::new());
    let mut progress = Progress {
        resolved: Vec::new(),
        routes: vec![Route::Upstream; plan.distinct.len()],
        own_calls: Vec::new(),
    };
    progress.resolved.resize_with(plan.distinct.len(), || None);
    let outcome = resolve(&state, inner, &request, &plan, mode, &mut progress).await;
    Tally::of(&plan, &progress.routes).record(&state.counters);
    outcome?;

    let resolved: Vec<Resolved> = progress.resolved.into_iter().flatten().collect();
    if resolved.len() != plan.distinct.len() {
        return Err(Error::Internal(
            "an embedding input was left without an answer".into(),
        ));
    }
    assemble(&plan, resolved, &progress.own_calls, started.elapsed())
}

/// What a request found out about its distinct inputs so far.
struct Progress {
    /// Each distinct input's answer, once known.
    resolved: Vec<Option<Resolved>>,
    /// The way each distinct input took (for the counters, also when the request fails).
    routes: Vec<Route>,
    /// The upstream calls this request made.
    own_calls: Vec<Arc<Call>>,
}

/// Answers every distinct input of `plan`: lookups, then shared flights or one upstream call
/// of this request for the rest. `template`: the request without inputs.
async fn resolve<S>(
    state: &Arc<EmbeddingState>,
    inner: S,
    template: &EmbeddingRequest,
    plan: &Plan,
    mode: CacheMode,
    progress: &mut Progress,
) -> Result<(), Error>
where
    S: Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut look_again = vec![true; plan.distinct.len()];
    if mode.reads() {
        let keys = plan.distinct.iter().map(|input| input.key).collect();
        let lookups = look_up_all(state, keys).await;
        for (slot, lookup) in lookups.into_iter().enumerate() {
            match lookup {
                Lookup::Found(answer) => progress.found(slot, answer),
                Lookup::Absent => {}
                Lookup::Failed => look_again[slot] = false,
            }
        }
    }

    let mut missing: Vec<usize> = (0..plan.distinct.len())
        .filter(|&slot| progress.resolved[slot].is_none())
        .collect();
    if !missing.is_empty() && mode.reads() && state.config.get_coalesce() {
        missing = share(
            state,
            inner.clone(),
            template,
            plan,
            &look_again,
            &missing,
            mode.writes(),
            progress,
        )
        .await?;
    }
    if missing.is_empty() {
        return Ok(());
    }
    // Not shared: Refresh, coalescing off, or inputs whose shared call failed.
    for &slot in &missing {
        progress.routes[slot] = Route::Upstream;
    }
    let mut request = template.clone();
    request.input = plan
        .input_for(&missing)
        .ok_or_else(|| Error::Internal("one request mixed text and token inputs".into()))?;
    let fetched = fetch(inner, request).await?;
    if mode.writes() && fetched.call.storable {
        let keys = missing.iter().map(|&slot| plan.distinct[slot].key);
        store_all(state, keys.zip(&fetched.answers).collect()).await;
    }
    for (&slot, answer) in missing.iter().zip(fetched.answers) {
        progress.resolved[slot] = Some(Resolved {
            answer,
            source: Source::OwnCall,
        });
    }
    progress.own_calls.push(fetched.call);
    Ok(())
}

impl Progress {
    /// `slot`'s answer was found in the store.
    fn found(&mut self, slot: usize, answer: EmbeddingResponse) {
        self.routes[slot] = Route::Store;
        self.resolved[slot] = Some(Resolved {
            answer,
            source: Source::Store,
        });
    }
}

/// Resolves the `missing` inputs (slots) through flights: each joins the flight of a
/// concurrent request fetching the same input, or is led, together with the other led
/// inputs, in one batch of this request. Returns the slots still missing because the call of
/// another request failed (to be sent by this request itself); fails with the error of this
/// request's own batch.
#[allow(clippy::too_many_arguments)]
async fn share<S>(
    state: &Arc<EmbeddingState>,
    inner: S,
    template: &EmbeddingRequest,
    plan: &Plan,
    look_again: &[bool],
    missing: &[usize],
    writes: bool,
    progress: &mut Progress,
) -> Result<Vec<usize>, Error>
where
    S: Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let digests: Vec<[u8; 32]> = missing
        .iter()
        .map(|&slot| *plan.distinct[slot].key.digest())
        .collect();
    let flights = state
        .flights
        .join_or_start_each(&digests, writes, |led, starts| {
            let led = led
                .iter()
                .map(|&at| {
                    let slot = missing[at];
                    LedInput {
                        key: plan.distinct[slot].key,
                        input: plan.distinct[slot].input.clone(),
                        look_again: look_again[slot],
                    }
                })
                .collect();
            start_batch(
                Arc::clone(state),
                inner.clone(),
                template.clone(),
                plan.single,
                led,
                starts,
            )
        })?;
    let roles: Vec<Role> = flights.iter().map(|(_, role)| *role).collect();
    for (&slot, role) in missing.iter().zip(&roles) {
        progress.routes[slot] = match role {
            Role::Leader => Route::Upstream,
            Role::Follower => Route::Shared,
        };
    }
    let outcomes = join_all(flights.into_iter().map(|(flight, _)| flight)).await;

    let mut failed = Vec::new();
    let mut own_error = None;
    for (((&slot, digest), role), outcome) in missing.iter().zip(&digests).zip(roles).zip(outcomes)
    {
        let batch = match (outcome, role) {
            (Ok(batch), _) => batch,
            (Err(err), Role::Leader) => {
                own_error.get_or_insert(err);
                continue;
            }
            (Err(_), Role::Follower) => {
                failed.push(slot);
                continue;
            }
        };
        let Some((answer, from_store)) = batch.answers.get(digest) else {
            return Err(Error::Internal(
                "a shared embedding call ended without the input's answer".into(),
            ));
        };
        if *from_store {
            progress.found(slot, answer.clone());
            continue;
        }
        let Some(call) = &batch.call else {
            return Err(Error::Internal(
                "a shared embedding answer came neither from the store nor upstream".into(),
            ));
        };
        let source = match role {
            Role::Leader => {
                if !progress.own_calls.iter().any(|own| Arc::ptr_eq(own, call)) {
                    progress.own_calls.push(Arc::clone(call));
                }
                Source::OwnCall
            }
            Role::Follower => Source::SharedCall(Arc::clone(call)),
        };
        progress.resolved[slot] = Some(Resolved {
            answer: answer.clone(),
            source,
        });
    }
    match own_error {
        Some(err) => Err(err),
        None => Ok(failed),
    }
}
