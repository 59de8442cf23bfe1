//! Embeddings on any [`Lbgpt`] whose service takes [`EmbeddingRequest`]s: one request, lists
//! and an ordered stream, with requests too long for one call sent in chunks.

use crate::endpoint_stream::{EndpointStream, ProgressCell};
use crate::regroup::{merged_cache_status, Parts, Regrouped};
use crate::{Lbgpt, OrderedCompletionStream, Progress};
use futures::StreamExt;
use lbgpt_core::{EmbeddingInput, EmbeddingRequest, EmbeddingResponse, Error};
use std::future::Future;
use tower::Service;

/// The most inputs sent in one embeddings call (OpenAI's limit per request). A request with
/// more is split into chunks of at most this many inputs, sent concurrently (each chunk is
/// balanced, paced, retried and cached like any request) and merged back in input order.
pub const MAX_EMBEDDING_INPUTS_PER_CALL: usize = 2048;

/// The chunks a request is sent in: itself when it fits in one call, else its inputs moved
/// (not copied) into lists of at most [`MAX_EMBEDDING_INPUTS_PER_CALL`], each with the
/// request's other fields.
fn chunks(mut request: EmbeddingRequest) -> Vec<EmbeddingRequest> {
    if request.input_count() <= MAX_EMBEDDING_INPUTS_PER_CALL {
        return vec![request];
    }
    let inputs: Vec<EmbeddingInput> =
        match std::mem::replace(&mut request.input, EmbeddingInput::Texts(Vec::new())) {
            EmbeddingInput::Texts(texts) => in_chunks(texts)
                .into_iter()
                .map(EmbeddingInput::Texts)
                .collect(),
            EmbeddingInput::TokenLists(lists) => in_chunks(lists)
                .into_iter()
                .map(EmbeddingInput::TokenLists)
                .collect(),
            // One text or token list is one input: it fits in one call.
            single => vec![single],
        };
    inputs
        .into_iter()
        .map(|input| EmbeddingRequest {
            input,
            ..request.clone()
        })
        .collect()
}

/// `items` in order, in lists of at most [`MAX_EMBEDDING_INPUTS_PER_CALL`].
fn in_chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut items = items.into_iter().peekable();
    let mut chunks = Vec::with_capacity(items.len().div_ceil(MAX_EMBEDDING_INPUTS_PER_CALL));
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(MAX_EMBEDDING_INPUTS_PER_CALL).collect());
    }
    chunks
}

/// The chunks' answers merged in order; `meta.cache` says how many inputs of the whole
/// request came from the cache (not only the first chunk's status).
fn merge_chunks(parts: Vec<EmbeddingResponse>) -> Result<EmbeddingResponse, Error> {
    let cache = merged_cache_status(parts.iter().map(|part| (part.meta.cache, part.data.len())));
    let mut merged = EmbeddingResponse::merge(parts)?;
    merged.meta.cache = cache;
    Ok(merged)
}

/// The stream returned by [`Lbgpt::embedding_ordered`]: one result per request, in input order.
pub type EmbeddingStream<'a> = EndpointStream<'a, EmbeddingResponse>;

impl<S> Lbgpt<S>
where
    S: Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    /// Embeds every input of `request` and returns the vectors in input order.
    ///
    /// A request of more than [`MAX_EMBEDDING_INPUTS_PER_CALL`] inputs is sent in chunks,
    /// concurrently within the client's limit, and merged (indices renumbered from 0, usage
    /// summed, `meta.cache` [`Partial`](lbgpt_core::CacheStatus::Partial) when some chunks'
    /// inputs came from the cache and others' did not); if any chunk fails, the first failure (in input order) is returned. Must be
    /// awaited inside a Tokio runtime.
    pub fn embedding(
        &self,
        request: EmbeddingRequest,
    ) -> impl Future<Output = Result<EmbeddingResponse, Error>> + Send + 'static {
        let client = self.clone();
        async move {
            if request.input_count() <= MAX_EMBEDDING_INPUTS_PER_CALL {
                return client.send_one(request).await;
            }
            let mut stream = client.embedding_ordered(std::iter::once(request));
            stream.next().await.unwrap_or(Err(Error::Cancelled))
        }
    }

    /// Embeds every request and returns one result per request, in input order. Requests are
    /// pulled lazily, their chunks share the client's concurrency limit.
    pub fn embedding_list<R>(
        &self,
        requests: R,
    ) -> impl Future<Output = Vec<Result<EmbeddingResponse, Error>>> + Send
    where
        R: IntoIterator<Item = EmbeddingRequest>,
        R::IntoIter: Send + 'static,
    {
        self.embedding_list_with_progress(requests, |_| {})
    }

    /// Like [`Lbgpt::embedding_list`], calling `on_progress` after each call's result (a
    /// chunked request counts once per chunk; reported in input order).
    pub fn embedding_list_with_progress<R, F>(
        &self,
        requests: R,
        mut on_progress: F,
    ) -> impl Future<Output = Vec<Result<EmbeddingResponse, Error>>> + Send
    where
        R: IntoIterator<Item = EmbeddingRequest>,
        R::IntoIter: Send + 'static,
        F: FnMut(&Progress) + Send,
    {
        let parts = Parts::new(requests.into_iter(), chunks);
        let counts = parts.counts();
        let window = self.current_embedding_reorder_window();
        Regrouped::new(
            self.send_ordered_within(parts, window),
            counts,
            merge_chunks,
        )
        .on_part(move |calls: &OrderedCompletionStream<S, _>| on_progress(&calls.progress()))
        .collect()
    }

    /// Embeds every request, yielding one result per request in input order, pulling
    /// requests lazily.
    ///
    /// # Memory
    /// The window ([`current_embedding_reorder_window`](Lbgpt::current_embedding_reorder_window),
    /// default [`EMBEDDING_REORDER_WINDOW_PER_REQUEST`](crate::EMBEDDING_REORDER_WINDOW_PER_REQUEST)
    /// chunks per allowed concurrent request) counts chunks: at most that many chunks beyond
    /// the oldest unanswered one are pulled, running or finished and waiting, so at most
    /// `window x 2048` vectors wait behind a slow call. One request is not bounded by it: when
    /// the stream reaches a request, the request is split into all its chunks at once (its
    /// inputs are copied into them), and its chunks' answers are held until the last one has
    /// answered and they are merged, so a request of a million inputs holds a million vectors
    /// however small the window. To embed a huge input in bounded memory, give it as many
    /// requests (an iterator of them), not as one.
    pub fn embedding_ordered<R>(&self, requests: R) -> EmbeddingStream<'static>
    where
        R: IntoIterator<Item = EmbeddingRequest>,
        R::IntoIter: Send + 'static,
    {
        let parts = Parts::new(requests.into_iter(), chunks);
        let counts = parts.counts();
        let window = self.current_embedding_reorder_window();
        let progress = ProgressCell::default();
        let cell = progress.clone();
        EndpointStream::new(
            Regrouped::new(
                self.send_ordered_within(parts, window),
                counts,
                merge_chunks,
            )
            .on_part(move |calls: &OrderedCompletionStream<S, _>| cell.set(calls.progress())),
            progress,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_requests_are_chunked_in_order() {
        let inputs: Vec<String> = (0..5000).map(|i| format!("text {i}")).collect();
        let parts = chunks(EmbeddingRequest::new("m", inputs.clone()));
        assert_eq!(
            parts
                .iter()
                .map(EmbeddingRequest::input_count)
                .collect::<Vec<_>>(),
            vec![2048, 2048, 904]
        );
        let rejoined = EmbeddingRequest::join(parts).expect("joins");
        assert_eq!(rejoined, EmbeddingRequest::new("m", inputs));
        let short = EmbeddingRequest::new("m", vec!["a", "b"]);
        assert_eq!(chunks(short.clone()), vec![short]);
    }
}
