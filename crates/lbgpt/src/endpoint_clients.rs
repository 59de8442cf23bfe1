//! The embeddings and legacy-completions clients that every ready-made client carries beside
//! its chat client: the same providers (or balancer members), the same retry policy, the same
//! exact-cache store, and one concurrency limit shared with chat.

use crate::endpoint_stream::{EndpointStream, ProgressCell};
use crate::Lbgpt;
use lbgpt_balance::retry::{Retry, RetryPolicy};
use lbgpt_cache::{Cache, CacheLayer, EmbeddingCache, EmbeddingCacheLayer};
use lbgpt_core::Error;
use tower::util::Either;
use tower::Layer;

/// The embeddings stack of a ready-made client over `S` (a provider service or an embeddings
/// balancer): the per-input embedding cache, when the client has an exact cache, over the
/// retry layer.
pub type EmbeddingStack<S> = Either<EmbeddingCache<Retry<S>>, Retry<S>>;

/// The legacy-completions stack of a ready-made client over `S`: the exact cache, when the
/// client has one (the same layer, store and counters as chat; keys apart), over the retry
/// layer.
pub type CompletionStack<S> = Either<Cache<Retry<S>>, Retry<S>>;

/// A ready-made client's embeddings and completions clients.
#[derive(Debug, Clone)]
pub(crate) struct EndpointClients<E, C> {
    /// `None` when no provider of the client serves embeddings.
    pub(crate) embeddings: Option<Lbgpt<EmbeddingStack<E>>>,
    /// `None` when no provider of the client serves legacy completions.
    pub(crate) completions: Option<Lbgpt<CompletionStack<C>>>,
    pub(crate) embedding_cache: Option<EmbeddingCacheLayer>,
}

/// The error of a call to an endpoint that no provider of the client serves.
pub(crate) fn unserved(endpoint: &str) -> Error {
    Error::Config(format!(
        "no provider of this client serves {endpoint}: providers given as `Provider::service` \
         serve chat only; add an OpenAI or Azure provider"
    ))
}

/// One [`unserved`] error per request, as an ordered stream (its progress counts no call: none
/// is made).
pub(crate) fn unserved_stream<T, I>(
    requests: I,
    endpoint: &'static str,
) -> EndpointStream<'static, T>
where
    I: Iterator + Send + 'static,
    T: Send + 'static,
{
    EndpointStream::new(
        futures::stream::iter(requests.map(move |_| Err(unserved(endpoint)))),
        ProgressCell::default(),
    )
}

impl<E, C> EndpointClients<E, C> {
    /// Clients over `embeddings` and `completions` sharing `chat`'s concurrency limit (and,
    /// for completions, its reorder window setting), retried by `retry`; embeddings cached per input in `cache`'s store
    /// (with its configuration) when there is one.
    pub(crate) fn new<T>(
        chat: &Lbgpt<T>,
        retry: &RetryPolicy,
        cache: Option<&CacheLayer>,
        embeddings: Option<E>,
        completions: Option<C>,
    ) -> Self {
        let embedding_cache = cache.map(|layer| {
            EmbeddingCacheLayer::with_config(
                std::sync::Arc::clone(layer.store()),
                layer.config().clone(),
            )
        });
        let embeddings = embeddings.map(|service| {
            let retried = Retry::new(service, retry.clone());
            let stack = match &embedding_cache {
                Some(layer) => Either::Left(layer.layer(retried)),
                None => Either::Right(retried),
            };
            // A chat window counts answers of chat size; the embeddings client keeps its own
            // default, counted in chunks of up to 2048 vectors.
            Lbgpt::sharing_limit_with(stack, chat).with_default_reorder_window()
        });
        let completions = completions.map(|service| {
            let retried = Retry::new(service, retry.clone());
            let stack = match cache {
                Some(layer) => Either::Left(layer.layer(retried)),
                None => Either::Right(retried),
            };
            Lbgpt::sharing_limit_with(stack, chat)
        });
        EndpointClients {
            embeddings,
            completions,
            embedding_cache,
        }
    }
}

/// Adds the embeddings and completions methods to a client struct with an
/// `endpoints: EndpointClients<$embed, $complete>` field.
macro_rules! forward_endpoint_api {
    ($embed:ty, $complete:ty) => {
        /// Embeds every input of `request` (balanced, paced, retried and, with an exact cache,
        /// cached per input). See [`Lbgpt::embedding`](crate::Lbgpt::embedding).
        pub fn embedding(
            &self,
            request: $crate::EmbeddingRequest,
        ) -> impl std::future::Future<Output = Result<$crate::EmbeddingResponse, $crate::Error>>
               + Send
               + 'static {
            let client = self.endpoints.embeddings.clone();
            async move {
                match client {
                    Some(client) => client.embedding(request).await,
                    None => Err($crate::endpoint_clients::unserved("embeddings")),
                }
            }
        }

        /// Embeds every request; one result per request, in input order. See
        /// [`Lbgpt::embedding_list`](crate::Lbgpt::embedding_list).
        pub fn embedding_list<R>(
            &self,
            requests: R,
        ) -> impl std::future::Future<
            Output = Vec<Result<$crate::EmbeddingResponse, $crate::Error>>,
        > + Send
        where
            R: IntoIterator<Item = $crate::EmbeddingRequest>,
            R::IntoIter: Send + 'static,
        {
            let requests = requests.into_iter();
            let client = self.endpoints.embeddings.clone();
            async move {
                match client {
                    Some(client) => client.embedding_list(requests).await,
                    None => requests
                        .map(|_| Err($crate::endpoint_clients::unserved("embeddings")))
                        .collect(),
                }
            }
        }

        /// Embeds every request, in input order, lazily. See
        /// [`Lbgpt::embedding_ordered`](crate::Lbgpt::embedding_ordered).
        pub fn embedding_ordered<R>(&self, requests: R) -> $crate::EmbeddingStream<'static>
        where
            R: IntoIterator<Item = $crate::EmbeddingRequest>,
            R::IntoIter: Send + 'static,
        {
            match &self.endpoints.embeddings {
                Some(client) => client.embedding_ordered(requests),
                None => {
                    $crate::endpoint_clients::unserved_stream(requests.into_iter(), "embeddings")
                }
            }
        }

        /// Completes every prompt of a legacy completions request, one call per prompt spread
        /// over the providers, answers merged in prompt order. See
        /// [`Lbgpt::completion`](crate::Lbgpt::completion).
        pub fn completion(
            &self,
            request: $crate::CompletionRequest,
        ) -> impl std::future::Future<Output = Result<$crate::CompletionResponse, $crate::Error>>
               + Send
               + 'static {
            let client = self.endpoints.completions.clone();
            async move {
                match client {
                    Some(client) => client.completion(request).await,
                    None => Err($crate::endpoint_clients::unserved("legacy completions")),
                }
            }
        }

        /// Completes every request; one result per request, in input order. See
        /// [`Lbgpt::completion_list`](crate::Lbgpt::completion_list).
        pub fn completion_list<R>(
            &self,
            requests: R,
        ) -> impl std::future::Future<
            Output = Vec<Result<$crate::CompletionResponse, $crate::Error>>,
        > + Send
        where
            R: IntoIterator<Item = $crate::CompletionRequest>,
            R::IntoIter: Send + 'static,
        {
            let requests = requests.into_iter();
            let client = self.endpoints.completions.clone();
            async move {
                match client {
                    Some(client) => client.completion_list(requests).await,
                    None => requests
                        .map(|_| Err($crate::endpoint_clients::unserved("legacy completions")))
                        .collect(),
                }
            }
        }

        /// Completes every request, in input order, lazily. See
        /// [`Lbgpt::completion_ordered`](crate::Lbgpt::completion_ordered).
        pub fn completion_ordered<R>(
            &self,
            requests: R,
        ) -> $crate::CompletionAnswerStream<'static>
        where
            R: IntoIterator<Item = $crate::CompletionRequest>,
            R::IntoIter: Send + 'static,
        {
            match &self.endpoints.completions {
                Some(client) => client.completion_ordered(requests),
                None => $crate::endpoint_clients::unserved_stream(
                    requests.into_iter(),
                    "legacy completions",
                ),
            }
        }

        /// The embeddings client inside (the same concurrency limit as chat), for its streams
        /// and progress methods; `None` when no provider serves embeddings.
        pub fn embeddings(&self) -> Option<&$crate::Lbgpt<$crate::EmbeddingStack<$embed>>> {
            self.endpoints.embeddings.as_ref()
        }

        /// The legacy-completions client inside (the same concurrency limit as chat); `None`
        /// when no provider serves legacy completions.
        pub fn completions(&self) -> Option<&$crate::Lbgpt<$crate::CompletionStack<$complete>>> {
            self.endpoints.completions.as_ref()
        }

        /// The per-input embedding cache's counters (inputs, not requests), when the client
        /// has an exact cache.
        pub fn embedding_cache_stats(&self) -> Option<$crate::cache::CacheStats> {
            self.endpoints
                .embedding_cache
                .as_ref()
                .map($crate::cache::EmbeddingCacheLayer::stats)
        }
    };
}

pub(crate) use forward_endpoint_api;
