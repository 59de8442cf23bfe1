//! [`SemanticCache`]: the service a [`SemanticCacheLayer`](crate::SemanticCacheLayer) wraps
//! around a chat service.

use crate::layer::SemanticState;
use crate::method::{eligibility, embedded_text};
use crate::stats::Counters;
use crate::{Record, Scope, SemanticStats};
use futures::future::BoxFuture;
use futures::FutureExt;
use lbgpt_core::{CacheStatus, ChatRequest, ChatResponse, Error, ResponseMeta};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

/// A semantic cache in front of a chat service; built by
/// [`SemanticCacheLayer`](crate::SemanticCacheLayer).
///
/// For each request, by its [`CacheMode`](lbgpt_core::CacheMode) (its `options.cache`, else
/// the configured default; streamed requests bypass):
///
/// 1. Requests with tools, non-text parts or `n > 1` go upstream untouched unless allowed
///    (configuration or the request's [`SemanticOptions`](lbgpt_core::SemanticOptions)).
/// 2. The request's text (by its [`EmbedMethod`](lbgpt_core::EmbedMethod)) is embedded and
///    its [`Scope`] computed.
/// 3. Unless in refresh mode, the nearest cached requests of the same scope are looked up;
///    the most similar one at or above the threshold that the [`FalseHitGuard`](crate::FalseHitGuard)
///    accepts answers: `meta.cache = Semantic { score }`, `meta.cache_match` = its key,
///    `meta.attempts = 0`.
/// 4. Otherwise the inner service answers, and (unless in no-store mode or storing is off)
///    the answer is added to the index.
///
/// Embedding or index failures never fail the request: they count as errors, are logged, and
/// the request goes upstream.
pub struct SemanticCache<S> {
    inner: S,
    state: Arc<SemanticState>,
}

impl<S: Clone> Clone for SemanticCache<S> {
    fn clone(&self) -> Self {
        SemanticCache {
            inner: self.inner.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for SemanticCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemanticCache")
            .field("inner", &self.inner)
            .field("embedder", &self.state.embedder.id())
            .field("config", &self.state.config)
            .finish()
    }
}

impl<S> SemanticCache<S> {
    pub(crate) fn from_state(inner: S, state: Arc<SemanticState>) -> Self {
        SemanticCache { inner, state }
    }

    /// The counters, shared with the layer.
    pub fn stats(&self) -> SemanticStats {
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

impl<S> Service<ChatRequest> for SemanticCache<S>
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

async fn respond<S>(
    state: Arc<SemanticState>,
    inner: S,
    request: ChatRequest,
) -> Result<ChatResponse, Error>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let started = Instant::now();
    let config = &state.config;
    let counters = &state.counters;
    let mode = config.mode_for(&request);
    if !mode.reads() && !mode.writes() {
        Counters::add(&counters.bypassed);
        return inner.oneshot(request).await;
    }
    let method = config.method_for(&request);
    let prepared = eligibility(&request, config.allow_unsafe_for(&request))
        .ok()
        .and_then(|()| embedded_text(&request, method))
        .and_then(|text| {
            let scope = Scope::of(
                &request,
                method,
                state.embedder.id(),
                config.get_scope_config(),
            )?;
            Some((text, scope))
        });
    let Some((text, scope)) = prepared else {
        Counters::add(&counters.ineligible);
        return inner.oneshot(request).await;
    };
    let vector = match state.embedder.embed_one(&text).await {
        Ok(vector) => vector,
        Err(error) => {
            Counters::add(&counters.errors);
            Counters::add(&counters.misses);
            tracing::warn!(%error, "semantic cache: embedding failed; asking upstream");
            return inner.oneshot(request).await;
        }
    };

    if mode.reads() {
        match state
            .index
            .search(&scope, &vector, config.get_candidates())
            .await
        {
            Ok(neighbours) => {
                let mut rejected = false;
                for neighbour in neighbours {
                    if neighbour.score < config.get_threshold() {
                        break;
                    }
                    if config
                        .get_guard()
                        .check(&text, &neighbour.entry.record.text)
                        .is_err()
                    {
                        rejected = true;
                        continue;
                    }
                    match serde_json::from_str::<ChatResponse>(&neighbour.entry.record.answer) {
                        Ok(mut response) => {
                            Counters::add(&counters.hits);
                            let mut meta = ResponseMeta::default();
                            meta.cache = CacheStatus::Semantic {
                                score: neighbour.score,
                            };
                            meta.cache_match = Some(Arc::from(neighbour.entry.record.key.as_str()));
                            meta.attempts = 0;
                            meta.latency = started.elapsed();
                            response.meta = meta;
                            return Ok(response);
                        }
                        Err(error) => {
                            Counters::add(&counters.errors);
                            tracing::warn!(%error, "semantic cache: a stored answer does not decode; skipping it");
                        }
                    }
                }
                if rejected {
                    Counters::add(&counters.guard_rejections);
                }
            }
            Err(error) => {
                Counters::add(&counters.errors);
                tracing::warn!(%error, "semantic cache: index search failed; asking upstream");
            }
        }
    }

    Counters::add(&counters.misses);
    let key = (mode.writes() && config.get_store()).then(|| {
        config
            .get_scope_config()
            .key_for(&request)
            .map(|key| key.to_string())
            .unwrap_or_default()
    });
    let response = inner.oneshot(request).await?;
    if let Some(key) = key {
        store(&state, scope, vector, text, key, &response).await;
    }
    Ok(response)
}

async fn store(
    state: &SemanticState,
    scope: Scope,
    vector: Vec<f32>,
    text: String,
    key: String,
    response: &ChatResponse,
) {
    let answer = match serde_json::to_string(response) {
        Ok(answer) => answer,
        Err(error) => {
            Counters::add(&state.counters.errors);
            tracing::warn!(%error, "semantic cache: could not encode the answer");
            return;
        }
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let record = Record {
        text,
        key,
        answer,
        created,
    };
    match state.index.insert(scope, vector, record).await {
        Ok(_) => Counters::add(&state.counters.stores),
        Err(error) => {
            Counters::add(&state.counters.errors);
            tracing::warn!(%error, "semantic cache: could not store the answer");
        }
    }
}
