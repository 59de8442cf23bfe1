//! Keeps input lines and facade results in step for `lbgpt run`.
//!
//! Every non-blank input line becomes exactly one request to the facade's ordered stream: a
//! good line its chat request, a bad line a *placeholder* that [`LineService`] answers at once
//! without any network call. The [`Ledger`] remembers, per line still in the stream, its line
//! number, `custom_id` and problem; results come back in input order, so the writer pairs each
//! with the ledger's front entry. The ledger holds at most the facade's reorder window of
//! entries, so memory stays bounded whatever the input size.
//!
//! Each request carries its ledger index in a reserved body field that [`LineService`]
//! removes before anything else sees the request; it is used to record how long a failed call
//! took (a successful answer reports that itself).

use crate::input::{InputLine, InputReader, LineProblem};
use futures::future::BoxFuture;
use futures::FutureExt;
use lbgpt_core::{ChatRequest, ChatResponse, Error};
use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Service, ServiceExt};

/// The reserved body field carrying a request's ledger index. It starts with a NUL character,
/// so no real request has it; [`LineService`] always removes it.
const INDEX_FIELD: &str = "\u{0}lbgpt-cli-index";

/// What the writer needs to know about one line still in the stream.
#[derive(Debug)]
pub struct Entry {
    /// The line number, from 1.
    pub line: usize,
    /// The line's `custom_id`, if it had a usable one.
    pub custom_id: Option<String>,
    /// Why the line was not sent, for a bad line.
    pub problem: Option<LineProblem>,
    /// How long the call took, recorded when it failed.
    pub failed_after: Option<Duration>,
}

#[derive(Debug, Default)]
struct State {
    /// Index of `entries[0]`.
    head: usize,
    entries: VecDeque<Entry>,
    io_error: Option<io::Error>,
}

/// Lines in the stream, in input order; shared by the feed, the service and the writer.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    state: Arc<Mutex<State>>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, entry: Entry) -> usize {
        let mut state = self.lock();
        state.entries.push_back(entry);
        state.head + state.entries.len() - 1
    }

    fn record_failure_latency(&self, index: usize, latency: Duration) {
        let mut state = self.lock();
        if let Some(offset) = index.checked_sub(state.head) {
            if let Some(entry) = state.entries.get_mut(offset) {
                entry.failed_after = Some(latency);
            }
        }
    }

    /// Takes the oldest entry: the one the next result belongs to.
    pub fn pop(&self) -> Option<Entry> {
        let mut state = self.lock();
        let entry = state.entries.pop_front()?;
        state.head += 1;
        Some(entry)
    }

    /// Entries held now (bounded by the facade's reorder window).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// The read error that ended the input early, if any.
    pub fn take_io_error(&self) -> Option<io::Error> {
        self.lock().io_error.take()
    }
}

/// The iterator handed to the facade: reads lines lazily, records each in the ledger and
/// yields its request (or a placeholder for a bad line).
#[derive(Debug)]
pub struct Feed<R> {
    reader: InputReader<R>,
    ledger: Ledger,
}

impl<R: BufRead> Feed<R> {
    /// A feed over `reader`, recording into `ledger`.
    pub fn new(reader: InputReader<R>, ledger: Ledger) -> Self {
        Feed { reader, ledger }
    }
}

impl<R: BufRead> Iterator for Feed<R> {
    type Item = ChatRequest;

    fn next(&mut self) -> Option<ChatRequest> {
        let Some(InputLine {
            line,
            custom_id,
            request,
        }) = self.reader.next()
        else {
            if let Some(err) = self.reader.take_io_error() {
                self.ledger.lock().io_error = Some(err);
            }
            return None;
        };
        let (mut request, problem) = match request {
            Ok(request) => (request, None),
            Err(problem) => (placeholder(), Some(problem)),
        };
        let index = self.ledger.push(Entry {
            line,
            custom_id,
            problem,
            failed_after: None,
        });
        request.extra.insert(INDEX_FIELD.to_owned(), index.into());
        Some(request)
    }
}

/// The stand-in for a bad line: no model and no messages, which no good line has (they are
/// checked by [`ChatRequest::validate`]).
fn placeholder() -> ChatRequest {
    ChatRequest::new("", Vec::new())
}

fn is_placeholder(request: &ChatRequest) -> bool {
    request.model.is_empty() && request.messages.is_empty()
}

/// Wraps the provider stack: strips the ledger index, answers placeholders at once, and
/// records how long failed calls took.
#[derive(Clone)]
pub struct LineService<S> {
    inner: S,
    ledger: Ledger,
}

impl<S> LineService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, ledger: Ledger) -> Self {
        LineService { inner, ledger }
    }
}

impl<S> Service<ChatRequest> for LineService<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = ChatResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<ChatResponse, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Readiness of the inner stack is awaited in `call`, only for requests that use it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: ChatRequest) -> Self::Future {
        let index = request
            .extra
            .remove(INDEX_FIELD)
            .and_then(|value| value.as_u64())
            .and_then(|value| usize::try_from(value).ok());
        if is_placeholder(&request) {
            // The writer reports the line's own problem; this error is never shown.
            return futures::future::ready(Err(Error::invalid_request(
                "line",
                "not sent: the input line is invalid",
            )))
            .boxed();
        }
        let inner = self.inner.clone();
        let ledger = self.ledger.clone();
        async move {
            let started = Instant::now();
            let result = inner.oneshot(request).await;
            if let (Err(_), Some(index)) = (&result, index) {
                ledger.record_failure_latency(index, started.elapsed());
            }
            result
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::InputReader;
    use lbgpt_core::ChatMessage;
    use tower::service_fn;

    #[tokio::test]
    async fn placeholders_never_reach_the_inner_service_and_the_index_is_stripped() {
        let input = concat!(
            r#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}"#,
            "\nnot json\n"
        );
        let ledger = Ledger::new();
        let feed = Feed::new(InputReader::new(input.as_bytes()), ledger.clone());
        let requests: Vec<ChatRequest> = feed.collect();
        assert_eq!(requests.len(), 2);
        assert_eq!(ledger.len(), 2);

        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let inner = service_fn(move |request: ChatRequest| {
            let recorder = Arc::clone(&recorder);
            async move {
                let json = serde_json::to_value(&request).expect("serialises");
                recorder.lock().expect("lock").push(json);
                Err::<ChatResponse, Error>(Error::Cancelled)
            }
        });
        let service = LineService::new(inner, ledger.clone());
        for request in requests {
            let _ = service.clone().oneshot(request).await;
        }
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1, "only the good line is sent");
        assert_eq!(seen[0]["model"], "m");
        assert!(
            seen[0].get(INDEX_FIELD).is_none(),
            "index field stripped: {}",
            seen[0]
        );

        let first = ledger.pop().expect("entry");
        assert_eq!(first.custom_id.as_deref(), Some("a"));
        assert!(first.problem.is_none());
        assert!(first.failed_after.is_some(), "failure latency recorded");
        let second = ledger.pop().expect("entry");
        assert_eq!(second.line, 2);
        assert_eq!(second.problem.map(|p| p.code), Some("invalid_json"));
        assert!(ledger.pop().is_none());
    }

    /// A reader that makes `total` Batch-API lines on the fly (every tenth one invalid), so
    /// the input itself takes no memory.
    struct GeneratedInput {
        next: usize,
        total: usize,
        pending: std::io::Cursor<Vec<u8>>,
    }

    impl std::io::Read for GeneratedInput {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pending.position() as usize == self.pending.get_ref().len() {
                if self.next == self.total {
                    return Ok(0);
                }
                let i = self.next;
                self.next += 1;
                let line = if i % 10 == 3 {
                    "{broken\n".to_owned()
                } else {
                    format!(
                        "{{\"custom_id\": \"{i}\", \"method\": \"POST\", \"url\": \"/v1/chat/completions\", \"body\": {{\"model\": \"m\", \"messages\": [{{\"role\": \"user\", \"content\": \"{i}\"}}]}}}}\n"
                    )
                };
                self.pending = std::io::Cursor::new(line.into_bytes());
            }
            self.pending.read(buf)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_ledger_stays_within_the_reorder_window_over_a_long_input() {
        use futures::StreamExt;
        let total = 50_000;
        let window = 256;
        let ledger = Ledger::new();
        let answer = |request: ChatRequest| async move {
            let content = request.messages[0]
                .content
                .as_ref()
                .map(|c| c.text())
                .unwrap_or_default();
            serde_json::from_value::<ChatResponse>(serde_json::json!({
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]
            }))
            .map_err(|e| Error::Config(e.to_string()))
        };
        let client = lbgpt::Lbgpt::new(LineService::new(service_fn(answer), ledger.clone()))
            .max_concurrent_requests(16)
            .reorder_window(window);
        let input = GeneratedInput {
            next: 0,
            total,
            pending: std::io::Cursor::new(Vec::new()),
        };
        let feed = Feed::new(
            InputReader::new(std::io::BufReader::new(input)),
            ledger.clone(),
        );
        let mut results = client.chat_completion_ordered(feed);
        let mut seen = 0;
        let mut most_held = 0;
        while let Some(result) = results.next().await {
            most_held = most_held.max(ledger.len());
            let entry = ledger.pop().expect("an entry per result");
            assert_eq!(entry.line, seen + 1);
            match entry.problem {
                Some(problem) => assert_eq!(problem.code, "invalid_json"),
                None => {
                    let answer = result.expect("answered");
                    assert_eq!(answer.first_text(), Some(seen.to_string()));
                }
            }
            seen += 1;
        }
        assert_eq!(seen, total);
        assert!(most_held <= window, "ledger held {most_held} entries");
        assert!(ledger.pop().is_none());
    }

    #[test]
    fn good_requests_are_never_placeholders() {
        assert!(!is_placeholder(&ChatRequest::new(
            "m",
            vec![ChatMessage::user("x")]
        )));
        assert!(is_placeholder(&placeholder()));
    }
}
