//! Legacy completions (`/v1/completions`) on any [`Lbgpt`] whose service takes
//! [`CompletionRequest`]s: a request with a list of prompts is sent as one request per prompt,
//! spread over the client's members, and the answers are put back together in prompt order
//! (openai-manager's core use).

use crate::endpoint_stream::{EndpointStream, ProgressCell};
use crate::regroup::{merged_cache_status, Parts, Regrouped};
use crate::{Lbgpt, OrderedCompletionStream, Progress};
use futures::StreamExt;
use lbgpt_core::{CompletionRequest, CompletionResponse, Error};
use std::future::Future;
use tower::Service;

/// The stream returned by [`Lbgpt::completion_ordered`]: one result per request, in input
/// order.
pub type CompletionAnswerStream<'a> = EndpointStream<'a, CompletionResponse>;

/// One request per prompt; a request with one prompt (or none, for the provider to refuse)
/// is sent as it is.
fn per_prompt(request: CompletionRequest) -> Vec<CompletionRequest> {
    if request.prompt_count() <= 1 {
        return vec![request];
    }
    request.into_split()
}

/// The prompts' answers merged in prompt order; `meta.cache` says how many prompts came from
/// the cache (not only the first prompt's status).
fn merge_prompts(parts: Vec<CompletionResponse>) -> Result<CompletionResponse, Error> {
    // Each part answers one prompt.
    let cache = merged_cache_status(parts.iter().map(|part| (part.meta.cache, 1)));
    let mut merged = CompletionResponse::merge(parts)?;
    merged.meta.cache = cache;
    Ok(merged)
}

impl<S> Lbgpt<S>
where
    S: Service<CompletionRequest, Response = CompletionResponse, Error = Error>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    /// Completes every prompt of `request`: one call per prompt, concurrently within the
    /// client's limit (each balanced, paced and retried on its own), answers merged in prompt
    /// order (choice `k` of prompt `p` at index `p * n + k`, as OpenAI numbers them; usage
    /// summed; `meta.cache` [`Partial`](lbgpt_core::CacheStatus::Partial), counting prompts,
    /// when some prompts came from the cache and others did not). If any prompt fails, the first failure (in prompt order) is returned; to keep
    /// every prompt's own result, send `request.split()` with [`Lbgpt::completion_list`].
    /// Must be awaited inside a Tokio runtime.
    pub fn completion(
        &self,
        request: CompletionRequest,
    ) -> impl Future<Output = Result<CompletionResponse, Error>> + Send + 'static {
        let client = self.clone();
        async move {
            if request.prompt_count() <= 1 {
                return client.send_one(request).await;
            }
            let mut stream = client.completion_ordered(std::iter::once(request));
            stream.next().await.unwrap_or(Err(Error::Cancelled))
        }
    }

    /// Completes every request (each split per prompt and merged as in
    /// [`Lbgpt::completion`]) and returns one result per request, in input order. All prompts
    /// of all requests share the client's concurrency limit; requests are pulled lazily.
    pub fn completion_list<R>(
        &self,
        requests: R,
    ) -> impl Future<Output = Vec<Result<CompletionResponse, Error>>> + Send
    where
        R: IntoIterator<Item = CompletionRequest>,
        R::IntoIter: Send + 'static,
    {
        self.completion_list_with_progress(requests, |_| {})
    }

    /// Like [`Lbgpt::completion_list`], calling `on_progress` after each prompt's result (one
    /// call per prompt; reported in input order, while the answer it belongs to may still wait
    /// for its other prompts).
    pub fn completion_list_with_progress<R, F>(
        &self,
        requests: R,
        mut on_progress: F,
    ) -> impl Future<Output = Vec<Result<CompletionResponse, Error>>> + Send
    where
        R: IntoIterator<Item = CompletionRequest>,
        R::IntoIter: Send + 'static,
        F: FnMut(&Progress) + Send,
    {
        let parts = Parts::new(requests.into_iter(), per_prompt);
        let counts = parts.counts();
        Regrouped::new(self.send_ordered(parts), counts, merge_prompts)
            .on_part(move |calls: &OrderedCompletionStream<S, _>| on_progress(&calls.progress()))
            .collect()
    }

    /// Completes every request, yielding one result per request in input order, pulling
    /// requests lazily within the client's reorder window, which counts calls (one per
    /// prompt). A request's prompts are split into calls all at once when the stream reaches
    /// it, and their answers are held until the last one arrives and they are merged.
    pub fn completion_ordered<R>(&self, requests: R) -> CompletionAnswerStream<'static>
    where
        R: IntoIterator<Item = CompletionRequest>,
        R::IntoIter: Send + 'static,
    {
        let parts = Parts::new(requests.into_iter(), per_prompt);
        let counts = parts.counts();
        let progress = ProgressCell::default();
        let cell = progress.clone();
        EndpointStream::new(
            Regrouped::new(self.send_ordered(parts), counts, merge_prompts)
                .on_part(move |calls: &OrderedCompletionStream<S, _>| cell.set(calls.progress())),
            progress,
        )
    }
}
