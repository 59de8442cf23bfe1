//! [`SplitPrompts`]: a legacy-completions request with a list of prompts sent as one request
//! per prompt (each balanced, paced, retried and cached on its own, spread over the
//! providers), the answers put back together in prompt order.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use lbgpt_core::{CacheStatus, CompletionRequest, CompletionResponse, Error};
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceExt};

/// Makes [`SplitPrompts`] services: `SplitPromptsLayer::new(4).layer(completions_stack)`.
#[derive(Debug, Clone, Copy)]
pub struct SplitPromptsLayer {
    prompts_at_once: usize,
}

impl SplitPromptsLayer {
    /// The bound `lbgpt run`'s completions stack uses: how many prompts of one request are
    /// in flight at once.
    pub const DEFAULT_PROMPTS_AT_ONCE: usize = 4;

    /// A layer sending at most `prompts_at_once` prompts of one request at once (0 counts as
    /// 1).
    pub fn new(prompts_at_once: usize) -> Self {
        SplitPromptsLayer {
            prompts_at_once: prompts_at_once.max(1),
        }
    }
}

impl Default for SplitPromptsLayer {
    /// [`SplitPromptsLayer::DEFAULT_PROMPTS_AT_ONCE`] prompts at once.
    fn default() -> Self {
        SplitPromptsLayer::new(SplitPromptsLayer::DEFAULT_PROMPTS_AT_ONCE)
    }
}

impl<S> Layer<S> for SplitPromptsLayer {
    type Service = SplitPrompts<S>;

    fn layer(&self, inner: S) -> SplitPrompts<S> {
        SplitPrompts {
            inner,
            prompts_at_once: self.prompts_at_once,
        }
    }
}

/// A completions service that sends a request with several prompts as one request per
/// prompt, at most `prompts_at_once` at a time (in prompt order), and answers with the
/// answers merged in prompt order ([`CompletionResponse::merge`]: choice `k` of prompt `p`
/// at index `p * n + k`, usage summed). A request with one prompt (or none, for the inner
/// service to judge) passes through unchanged.
///
/// If a prompt fails, the request fails with the first failure in prompt order and the
/// prompts still in flight are cancelled. The merged answer's `meta.cache` is the prompts'
/// common status, or [`CacheStatus::Partial`] counting prompts when some came from a cache
/// and others did not; `meta.member` is the first prompt's provider that one has, attempts
/// are summed and the latency is the longest prompt's.
#[derive(Debug, Clone)]
pub struct SplitPrompts<S> {
    inner: S,
    prompts_at_once: usize,
}

impl<S> Service<CompletionRequest> for SplitPrompts<S>
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
        // Each call waits for the inner service's readiness on a clone of its own.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: CompletionRequest) -> Self::Future {
        let inner = self.inner.clone();
        if request.prompt_count() <= 1 {
            return inner.oneshot(request).boxed();
        }
        let prompts_at_once = self.prompts_at_once;
        async move {
            let parts = request.split();
            let count = parts.len();
            // The closure owns the service: a borrowed one would make the future not `Send`.
            let mut answers = futures::stream::iter(parts)
                .map(move |part| inner.clone().oneshot(part))
                .buffered(prompts_at_once);
            let mut merged = Vec::with_capacity(count);
            while let Some(answer) = answers.next().await {
                // Returning drops the stream, which cancels the prompts still in flight.
                merged.push(answer?);
            }
            merge_prompts(merged)
        }
        .boxed()
    }
}

/// The answers to one request's prompts, in prompt order, as one answer.
fn merge_prompts(parts: Vec<CompletionResponse>) -> Result<CompletionResponse, Error> {
    let cache = merged_cache_status(parts.iter().map(|part| part.meta.cache));
    let member = parts.iter().find_map(|part| part.meta.member.clone());
    let mut merged = CompletionResponse::merge(parts)?;
    merged.meta.cache = cache;
    merged.meta.member = member;
    Ok(merged)
}

/// The cache status of an answer merged from per-prompt answers: their common status, else
/// `Partial` counting the prompts from a cache and those from a provider.
fn merged_cache_status(statuses: impl IntoIterator<Item = CacheStatus>) -> CacheStatus {
    let mut statuses = statuses.into_iter();
    let Some(first) = statuses.next() else {
        return CacheStatus::Miss;
    };
    let (mut hits, mut misses, mut same) = (0u32, 0u32, true);
    for status in std::iter::once(first).chain(statuses) {
        same &= status == first;
        match status {
            CacheStatus::Miss => misses = misses.saturating_add(1),
            CacheStatus::Partial {
                hits: part_hits,
                misses: part_misses,
            } => {
                hits = hits.saturating_add(part_hits);
                misses = misses.saturating_add(part_misses);
            }
            // Exact and semantic hits (and any status added later) came from a cache.
            _ => hits = hits.saturating_add(1),
        }
    }
    match (same, hits, misses) {
        (true, _, _) if !matches!(first, CacheStatus::Partial { .. }) => first,
        (_, 0, _) => CacheStatus::Miss,
        (_, _, 0) => CacheStatus::Exact,
        _ => CacheStatus::Partial { hits, misses },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::TextInput;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tower::service_fn;

    /// What the stand-in provider saw: every prompt list it was sent, and the most calls
    /// in flight at once.
    #[derive(Default)]
    struct Seen {
        prompts: Mutex<Vec<TextInput>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    /// A provider answering each prompt with `"<prompt>!"` (n choices), failing the prompts
    /// named in `fail` with a 400, and yielding a few times inside each call so that calls
    /// overlap as much as the caller lets them.
    fn provider(
        seen: Arc<Seen>,
        fail: &'static [&'static str],
    ) -> impl Service<
        CompletionRequest,
        Response = CompletionResponse,
        Error = Error,
        Future = BoxFuture<'static, Result<CompletionResponse, Error>>,
    > + Clone {
        service_fn(move |request: CompletionRequest| {
            let seen = Arc::clone(&seen);
            async move {
                seen.prompts
                    .lock()
                    .expect("log")
                    .push(request.prompt.clone());
                let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
                seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                let texts = request.prompt.texts().unwrap_or_default();
                if let Some(bad) = texts.iter().find(|text| fail.contains(text)) {
                    return Err(Error::invalid_request("prompt", format!("{bad} refused")));
                }
                let choices: Vec<_> = texts
                    .iter()
                    .flat_map(|text| {
                        (0..request.choices_per_prompt()).map(
                            move |k| serde_json::json!({"text": format!("{text}!{k}"), "index": 0}),
                        )
                    })
                    .collect();
                let mut answer: CompletionResponse = serde_json::from_value(serde_json::json!({
                    "id": "cmpl-1", "model": "m", "choices": choices,
                    "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
                }))
                .map_err(|err| Error::Internal(err.to_string()))?;
                answer.meta.attempts = 1;
                answer.meta.member = Some(Arc::from("p"));
                Ok(answer)
            }
            .boxed()
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_prompt_list_becomes_one_call_per_prompt_merged_in_order() {
        let seen = Arc::new(Seen::default());
        let service = SplitPromptsLayer::new(2).layer(provider(Arc::clone(&seen), &[]));
        let request = CompletionRequest::new("m", vec!["a", "b", "c", "d", "e"]).n(2);
        let answer = service.oneshot(request).await.expect("answers");

        let sent = seen.prompts.lock().expect("log").clone();
        assert_eq!(sent.len(), 5, "one call per prompt");
        assert!(sent.iter().all(|prompt| prompt.len() == 1), "{sent:?}");
        let texts: Vec<&str> = answer.choices.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            ["a!0", "a!1", "b!0", "b!1", "c!0", "c!1", "d!0", "d!1", "e!0", "e!1"]
        );
        let indices: Vec<u32> = answer.choices.iter().map(|c| c.index).collect();
        assert_eq!(indices, (0..10).collect::<Vec<u32>>());
        let usage = answer.usage.expect("summed usage");
        assert_eq!((usage.prompt_tokens, usage.total_tokens), (10, 25));
        assert_eq!(answer.meta.attempts, 5);
        assert_eq!(answer.meta.cache, CacheStatus::Miss);
        assert_eq!(
            seen.most_in_flight.load(Ordering::SeqCst),
            2,
            "at most prompts_at_once in flight, and that many used"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_prompt_passes_through_unchanged() {
        let seen = Arc::new(Seen::default());
        let service = SplitPromptsLayer::default().layer(provider(Arc::clone(&seen), &[]));
        let single = CompletionRequest::new("m", vec!["only"]);
        let answer = service.clone().oneshot(single).await.expect("answers");
        assert_eq!(answer.first_text(), Some("only!0"));
        assert_eq!(
            seen.prompts.lock().expect("log")[0],
            TextInput::Texts(vec!["only".to_owned()]),
            "sent as it came"
        );
        // Nothing to send: the inner service judges it.
        let none = CompletionRequest::new("m", Vec::<String>::new());
        assert!(service.oneshot(none).await.is_ok());
        assert_eq!(seen.prompts.lock().expect("log").len(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_first_failure_in_prompt_order_wins() {
        let seen = Arc::new(Seen::default());
        let service = SplitPromptsLayer::new(8).layer(provider(Arc::clone(&seen), &["c", "e"]));
        let request = CompletionRequest::new("m", vec!["a", "b", "c", "d", "e"]);
        match service.oneshot(request).await {
            Err(Error::InvalidRequest { message, .. }) => assert_eq!(message, "c refused"),
            other => panic!("expected prompt c's failure, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failure_cancels_the_prompts_not_yet_sent() {
        let seen = Arc::new(Seen::default());
        let service = SplitPromptsLayer::new(1).layer(provider(Arc::clone(&seen), &["b"]));
        let request = CompletionRequest::new("m", vec!["a", "b", "c", "d"]);
        assert!(service.oneshot(request).await.is_err());
        assert_eq!(
            seen.prompts.lock().expect("log").len(),
            2,
            "c and d are never sent"
        );
    }

    #[test]
    fn the_merged_cache_status_counts_prompts() {
        use CacheStatus::{Exact, Miss, Partial};
        assert_eq!(merged_cache_status([Miss, Miss]), Miss);
        assert_eq!(merged_cache_status([Exact, Exact, Exact]), Exact);
        assert_eq!(
            merged_cache_status([Exact, Miss, Exact]),
            Partial { hits: 2, misses: 1 }
        );
        assert_eq!(merged_cache_status([]), Miss);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_member_is_the_first_provider_that_answered() {
        let cached_first = service_fn(|request: CompletionRequest| async move {
            let texts = request.prompt.texts().unwrap_or_default();
            let text = texts.first().copied().unwrap_or_default().to_owned();
            let mut answer: CompletionResponse =
                serde_json::from_value(serde_json::json!({"choices": [{"text": text}]}))
                    .map_err(|err| Error::Internal(err.to_string()))?;
            if text == "cached" {
                answer.meta.cache = CacheStatus::Exact;
            } else {
                answer.meta.member = Some(Arc::from("provider-b"));
            }
            Ok::<_, Error>(answer)
        });
        let service = SplitPromptsLayer::new(2).layer(cached_first);
        let answer = service
            .oneshot(CompletionRequest::new("m", vec!["cached", "fresh"]))
            .await
            .expect("answers");
        assert_eq!(answer.meta.member.as_deref(), Some("provider-b"));
        assert_eq!(
            answer.meta.cache,
            CacheStatus::Partial { hits: 1, misses: 1 }
        );
        assert_eq!(answer.texts(), ["cached", "fresh"]);
    }
}
