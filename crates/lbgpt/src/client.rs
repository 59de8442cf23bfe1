//! [`Lbgpt`]: the generic batch client over any tower service.

use crate::engine::{panic_error, Engine};
use crate::stream::{CompletionStream, OrderedCompletionStream};
use crate::Progress;
use futures::{FutureExt, Stream, StreamExt};
use lbgpt_core::{ChatRequest, ChatResponse, Error};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

/// How many requests a client runs at once unless told otherwise (the seed's default).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 5;

/// The smallest default reorder window of [`Lbgpt::chat_completion_ordered`].
const MIN_DEFAULT_REORDER_WINDOW: usize = 1024;

/// The default reorder window per allowed concurrent request.
const REORDER_WINDOW_PER_REQUEST: usize = 64;

/// The default reorder window of the embedding methods ([`Lbgpt::embedding_ordered`],
/// [`Lbgpt::embedding_list`], a chunked [`Lbgpt::embedding`]) per allowed concurrent request:
/// 4 chunks.
///
/// Their window counts calls (chunks of up to
/// [`MAX_EMBEDDING_INPUTS_PER_CALL`](crate::MAX_EMBEDDING_INPUTS_PER_CALL) = 2048 inputs), and
/// one chunk's answer is large (2048 vectors of 1536 dimensions are 12.6 MB as `f32`), so it is
/// not the chat window of at least 1024 answers: with `c` requests allowed at once, at most
/// `4 x c` chunks beyond the oldest unanswered one are pulled (running, or finished and
/// waiting), that is at most `8192 x c` vectors, about 50 MB per allowed concurrent request
/// at 1536 dimensions. The calls in flight alone already hold `c` chunks (and their JSON
/// bodies, larger still), so this keeps the waiting answers of the same order. Set
/// [`Lbgpt::reorder_window`] on the embeddings client for another bound.
pub const EMBEDDING_REORDER_WINDOW_PER_REQUEST: usize = 4;

/// A batch client over any `tower::Service<ChatRequest>`: single calls, lists in input order,
/// streams, progress, and a concurrency limit shared by every call.
///
/// [`ChatGpt`](crate::ChatGpt) and [`AzureGpt`](crate::AzureGpt) wrap an `Lbgpt` over a
/// ready-made stack; use `Lbgpt` directly for a stack of your own:
///
/// ```no_run
/// use lbgpt::balance::retry::{RetryLayer, RetryPolicy};
/// use lbgpt::openai::{OpenAiConfig, OpenAiService};
/// use lbgpt::{ChatMessage, ChatRequest, Lbgpt};
/// use tower::ServiceBuilder;
///
/// # async fn run() -> Result<(), lbgpt::Error> {
/// let openai = OpenAiService::new(OpenAiConfig::new().api_key("sk-..."))?;
/// let stack = ServiceBuilder::new()
///     .map_request(|request: ChatRequest| request.temperature(0.0)) // any layer of yours
///     .layer(RetryLayer::new(RetryPolicy::default().max_attempts(3)))
///     .service(openai);
/// let client = Lbgpt::new(stack).max_concurrent_requests(8);
/// let requests = (0..100).map(|i| {
///     ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user(format!("Say {i}"))])
/// });
/// for result in client.chat_completion_list(requests).await {
///     println!("{:?}", result.map(|answer| answer.first_text()));
/// }
/// # Ok(()) }
/// ```
///
/// # Concurrency
///
/// A client holds one semaphore with `max_concurrent_requests` permits (default
/// [`DEFAULT_MAX_CONCURRENT_REQUESTS`]). Every request takes a permit while it runs, so the
/// limit holds across all calls made at the same time on the client and on its clones. Set the
/// limit before cloning: [`Lbgpt::max_concurrent_requests`] gives the client a new semaphore.
///
/// # Laziness
///
/// The list and stream methods take any `IntoIterator<Item = ChatRequest>` and pull from it
/// only when a request can start (the ordered stream also stays within its reorder window), so
/// an iterator of a million requests is never materialised and the number of live futures is
/// bounded by the limit. The iterator is advanced inside the stream's `poll`, so it should be
/// cheap (reading a line of a file is fine; blocking on the network is not).
///
/// # Tasks, panics and cancellation
///
/// Batch requests run on Tokio tasks (the batch APIs must be polled inside a Tokio runtime),
/// so they make progress while the consumer is busy and spread over the runtime's threads:
/// each list or stream keeps up to `max_concurrent_requests` worker tasks, spawned when first
/// needed and reused from request to request. A worker holds a permit only while its request
/// runs, so a stream nobody polls holds up no other call on the client. A panic in the
/// service turns into [`Error::Internal`] for that request only. Dropping a stream or a list
/// future aborts its requests still in flight.
pub struct Lbgpt<S> {
    service: S,
    semaphore: Arc<Semaphore>,
    max_concurrent: usize,
    reorder_window: Option<usize>,
}

impl<S> Lbgpt<S> {
    /// A client over `service` with at most [`DEFAULT_MAX_CONCURRENT_REQUESTS`] requests in
    /// flight.
    pub fn new(service: S) -> Self {
        Lbgpt {
            service,
            semaphore: Arc::new(Semaphore::new(DEFAULT_MAX_CONCURRENT_REQUESTS)),
            max_concurrent: DEFAULT_MAX_CONCURRENT_REQUESTS,
            reorder_window: None,
        }
    }

    /// Sets how many requests may run at once on this client and its future clones (at least
    /// 1; 0 is taken as 1). Replaces the client's semaphore, so clones made before this call
    /// keep their own limit.
    pub fn max_concurrent_requests(mut self, limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        self.semaphore = Arc::new(Semaphore::new(limit));
        self.max_concurrent = limit;
        self
    }

    /// Sets the reorder window of the ordered lists and streams: how many calls, counted from
    /// the oldest one not yet handed on, may be pulled (running or finished and waiting for
    /// their turn). At least 1.
    ///
    /// For chat a call is one input. For legacy completions a call is one prompt (a request
    /// with several prompts is several calls), and for embeddings a chunk of up to 2048
    /// inputs. Default for chat and completions: `max(1024, 64 x max_concurrent_requests)`
    /// ([`current_reorder_window`](Self::current_reorder_window)); for embeddings:
    /// [`EMBEDDING_REORDER_WINDOW_PER_REQUEST`]` x max_concurrent_requests`
    /// ([`current_embedding_reorder_window`](Self::current_embedding_reorder_window)). A
    /// window set here applies to both.
    pub fn reorder_window(mut self, window: usize) -> Self {
        self.reorder_window = Some(window.max(1));
        self
    }

    /// The concurrency limit.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// The reorder window the chat and legacy-completions methods use (in calls).
    pub fn current_reorder_window(&self) -> usize {
        self.reorder_window.unwrap_or_else(|| {
            MIN_DEFAULT_REORDER_WINDOW
                .max(REORDER_WINDOW_PER_REQUEST.saturating_mul(self.max_concurrent))
        })
    }

    /// The reorder window the embedding methods use, in chunks: the one set with
    /// [`Lbgpt::reorder_window`], else [`EMBEDDING_REORDER_WINDOW_PER_REQUEST`]` x
    /// max_concurrent_requests`.
    pub fn current_embedding_reorder_window(&self) -> usize {
        self.reorder_window.unwrap_or_else(|| {
            EMBEDDING_REORDER_WINDOW_PER_REQUEST.saturating_mul(self.max_concurrent)
        })
    }

    /// Requests running right now on this client and its clones.
    pub fn in_flight(&self) -> usize {
        self.max_concurrent
            .saturating_sub(self.semaphore.available_permits())
    }

    /// The wrapped service.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// The wrapped service, giving up the client.
    pub fn into_service(self) -> S {
        self.service
    }
}

impl<S> Lbgpt<S> {
    /// A client over `service` sharing `other`'s concurrency limit (the ready-made clients'
    /// endpoint clients: chat, embeddings and completions draw on one set of permits) and its
    /// reorder window setting.
    pub(crate) fn sharing_limit_with<T>(service: S, other: &Lbgpt<T>) -> Self {
        Lbgpt {
            service,
            semaphore: Arc::clone(&other.semaphore),
            max_concurrent: other.max_concurrent,
            reorder_window: other.reorder_window,
        }
    }

    /// The client with its default reorder windows, whatever was set before (the embeddings
    /// client of a ready-made client: a chat window counts answers of chat size, not chunks of
    /// 2048 vectors).
    pub(crate) fn with_default_reorder_window(mut self) -> Self {
        self.reorder_window = None;
        self
    }

    /// Sends one request of any type the service takes, waiting for a permit first.
    pub(crate) fn send_one<Req>(
        &self,
        request: Req,
    ) -> impl Future<Output = Result<S::Response, Error>> + Send + 'static
    where
        S: Service<Req, Error = Error> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
        Req: Send + 'static,
    {
        let semaphore = Arc::clone(&self.semaphore);
        let service = self.service.clone();
        async move {
            // The semaphore is never closed; were it closed, the request runs unlimited.
            let _permit = semaphore.acquire().await.ok();
            match AssertUnwindSafe(service.oneshot(request))
                .catch_unwind()
                .await
            {
                Ok(result) => result,
                Err(payload) => Err(panic_error(payload.as_ref())),
            }
        }
    }

    /// Sends every request; one result per input, in input order, reporting progress.
    pub(crate) fn send_list<I, F>(
        &self,
        requests: I,
        mut on_progress: F,
    ) -> impl Future<Output = Vec<Result<S::Response, Error>>>
    where
        I: Iterator,
        I::Item: Send + 'static,
        S: Service<I::Item, Error = Error> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
        F: FnMut(&Progress),
    {
        let mut stream = self.send_stream(requests);
        async move {
            let mut slots: Vec<Option<Result<S::Response, Error>>> =
                Vec::with_capacity(stream.size_hint().0);
            while let Some((index, result)) = stream.next().await {
                if slots.len() <= index {
                    slots.resize_with(index + 1, || None);
                }
                slots[index] = Some(result);
                on_progress(&stream.progress());
            }
            // The stream yields exactly one result per index; the fallback is never taken.
            slots
                .into_iter()
                .map(|slot| slot.unwrap_or(Err(Error::Cancelled)))
                .collect()
        }
    }

    /// Results as they finish, with their input index.
    pub(crate) fn send_stream<I>(&self, requests: I) -> CompletionStream<S, I>
    where
        I: Iterator,
        I::Item: Send + 'static,
        S: Service<I::Item, Error = Error> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
    {
        CompletionStream::new(self.engine(requests))
    }

    /// Results in input order, within the (chat) reorder window.
    pub(crate) fn send_ordered<I>(&self, requests: I) -> OrderedCompletionStream<S, I>
    where
        I: Iterator,
        I::Item: Send + 'static,
        S: Service<I::Item, Error = Error> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
    {
        self.send_ordered_within(requests, self.current_reorder_window())
    }

    /// Results in input order, within a reorder window of `window` calls.
    pub(crate) fn send_ordered_within<I>(
        &self,
        requests: I,
        window: usize,
    ) -> OrderedCompletionStream<S, I>
    where
        I: Iterator,
        I::Item: Send + 'static,
        S: Service<I::Item, Error = Error> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
    {
        OrderedCompletionStream::new(self.engine(requests), window)
    }

    fn engine<I>(&self, inputs: I) -> Engine<S, I>
    where
        I: Iterator,
        I::Item: Send + 'static,
        S: Service<I::Item, Error = Error> + Clone + Send + 'static,
        S::Future: Send,
        S::Response: Send + 'static,
    {
        Engine::new(
            self.service.clone(),
            Arc::clone(&self.semaphore),
            self.max_concurrent,
            inputs,
        )
    }
}

impl<S> Lbgpt<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    /// Sends one request, waiting for a permit first.
    ///
    /// The returned future owns what it needs (it is `'static`, and `Send`), so it can be
    /// spawned.
    pub fn chat_completion(
        &self,
        request: ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, Error>> + Send + 'static {
        self.send_one(request)
    }

    /// Sends every request and returns one result per input, in input order.
    ///
    /// Inputs are pulled lazily and at most `max_concurrent_requests` run at once. One item's
    /// error never affects the others. The results themselves are all held in the returned
    /// `Vec`; to process a huge input in bounded memory use
    /// [`Lbgpt::chat_completion_ordered`] or [`Lbgpt::chat_completion_stream`].
    pub fn chat_completion_list<R>(
        &self,
        requests: R,
    ) -> impl Future<Output = Vec<Result<ChatResponse, Error>>>
    where
        R: IntoIterator<Item = ChatRequest>,
    {
        self.chat_completion_list_with_progress(requests, |_: &Progress| {})
    }

    /// Like [`Lbgpt::chat_completion_list`], calling `on_progress` after each result arrives
    /// (in completion order) with the batch's [`Progress`].
    ///
    /// ```no_run
    /// # async fn run(gpt: lbgpt::ChatGpt, requests: Vec<lbgpt::ChatRequest>) {
    /// let results = gpt
    ///     .chat_completion_list_with_progress(requests, |p| {
    ///         eprint!("\r{}/{} done, {} failed", p.completed, p.total.unwrap_or(0), p.failed);
    ///     })
    ///     .await;
    /// # }
    /// ```
    pub fn chat_completion_list_with_progress<R, F>(
        &self,
        requests: R,
        on_progress: F,
    ) -> impl Future<Output = Vec<Result<ChatResponse, Error>>>
    where
        R: IntoIterator<Item = ChatRequest>,
        F: FnMut(&Progress),
    {
        self.send_list(requests.into_iter(), on_progress)
    }

    /// Sends every request and yields `(input index, result)` pairs as they finish, in
    /// completion order. See [`CompletionStream`].
    pub fn chat_completion_stream<R>(&self, requests: R) -> CompletionStream<S, R::IntoIter>
    where
        R: IntoIterator<Item = ChatRequest>,
    {
        self.send_stream(requests.into_iter())
    }

    /// Sends every request and yields the results in input order, pulling inputs lazily within
    /// a bounded reorder window. See [`OrderedCompletionStream`] for how a slow early request
    /// is kept from stalling the rest.
    pub fn chat_completion_ordered<R>(&self, requests: R) -> OrderedCompletionStream<S, R::IntoIter>
    where
        R: IntoIterator<Item = ChatRequest>,
    {
        self.send_ordered(requests.into_iter())
    }
}

impl<S: Clone> Clone for Lbgpt<S> {
    /// A client sharing this one's concurrency limit.
    fn clone(&self) -> Self {
        Lbgpt {
            service: self.service.clone(),
            semaphore: Arc::clone(&self.semaphore),
            max_concurrent: self.max_concurrent,
            reorder_window: self.reorder_window,
        }
    }
}

impl<S> fmt::Debug for Lbgpt<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lbgpt")
            .field("service", &std::any::type_name::<S>())
            .field("max_concurrent_requests", &self.max_concurrent)
            .field("in_flight", &self.in_flight())
            .field("reorder_window", &self.current_reorder_window())
            .finish()
    }
}
