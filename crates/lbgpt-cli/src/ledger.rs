//! Keeps input lines and facade results in step for `lbgpt run`.
//!
//! Every request handed to the facade's ordered stream is one of three kinds: a good line's
//! request (of the run's endpoint: chat, embeddings or completions, [`CliEndpoint`]); a
//! *placeholder* for a bad line, which [`LineService`] answers at once without
//! any network call; or a *wait* for an input line that has not arrived yet (see
//! [`crate::pump`]), which [`LineService`] answers when the line arrives. The [`Ledger`]
//! remembers, per request still in the stream, its [`Slot`]; results come back in input
//! order, so the writer pairs each with the ledger's front slot and writes nothing for waits.
//! The ledger holds at most the facade's reorder window of slots, so memory stays bounded
//! whatever the input size.
//!
//! Each request carries its ledger index in a reserved body field that [`LineService`]
//! removes before anything else sees the request; it is used to find a wait's ticket in its
//! slot and to record how long a failed call took (a successful answer reports that itself).

use crate::endpoint::{Answer, CliEndpoint};
use crate::input::{InputLine, LineProblem};
use crate::pump::{Pulled, PumpHandle, PumpReceiver};
use futures::future::BoxFuture;
use futures::FutureExt;
use lbgpt_core::Error;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Service, ServiceExt};

/// The reserved body field carrying a request's ledger index. It starts with a NUL character,
/// so no real request has it; [`LineService`] always removes it.
const INDEX_FIELD: &str = "\u{0}lbgpt-cli-index";

/// What the writer needs to know about one input line still in the stream.
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

/// One request of the stream, as the writer sees it.
#[derive(Debug)]
pub enum Slot {
    /// An input line: its result gets an output line.
    Line(Entry),
    /// A wait for input that had not arrived, with the pump ticket it waits for: its result is
    /// dropped.
    Wait(u64),
}

#[derive(Debug, Default)]
struct State {
    /// Index of `slots[0]`.
    head: usize,
    slots: VecDeque<Slot>,
}

/// Requests in the stream, in input order; shared by the feed, the service and the writer.
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

    fn push(&self, slot: Slot) -> usize {
        let mut state = self.lock();
        state.slots.push_back(slot);
        state.head + state.slots.len() - 1
    }

    fn record_failure_latency(&self, index: usize, latency: Duration) {
        let mut state = self.lock();
        if let Some(offset) = index.checked_sub(state.head) {
            if let Some(Slot::Line(entry)) = state.slots.get_mut(offset) {
                entry.failed_after = Some(latency);
            }
        }
    }

    /// The pump ticket of the wait at `index`, if that slot is a wait still in the ledger.
    fn wait_ticket(&self, index: usize) -> Option<u64> {
        let state = self.lock();
        match state.slots.get(index.checked_sub(state.head)?) {
            Some(Slot::Wait(ticket)) => Some(*ticket),
            _ => None,
        }
    }

    /// Takes the oldest slot: the one the next result belongs to.
    pub fn pop(&self) -> Option<Slot> {
        let mut state = self.lock();
        let slot = state.slots.pop_front()?;
        state.head += 1;
        Some(slot)
    }

    /// Input lines in the stream now: sent and not yet written (waits not counted).
    pub fn pending_lines(&self) -> usize {
        self.lock()
            .slots
            .iter()
            .filter(|slot| matches!(slot, Slot::Line(_)))
            .count()
    }

    /// Slots held now (bounded by the facade's reorder window).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }
}

/// The iterator handed to the facade: takes parsed lines from the pump, records each in the
/// ledger and yields its request (or a placeholder for a bad line, or a wait when no line is
/// ready). Never blocks.
#[derive(Debug)]
pub struct Feed<R> {
    lines: PumpReceiver<R>,
    ledger: Ledger,
}

impl<R> Feed<R> {
    /// A feed over the pump's `lines`, recording into `ledger`.
    pub fn new(lines: PumpReceiver<R>, ledger: Ledger) -> Self {
        Feed { lines, ledger }
    }
}

impl<R: CliEndpoint> Iterator for Feed<R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        let (slot, mut request) = match self.lines.pull() {
            Pulled::Line(line) => line_request(line),
            Pulled::Wait(ticket) => (Slot::Wait(ticket), R::placeholder()),
            Pulled::Ended => return None,
        };
        let index = self.ledger.push(slot);
        request
            .extra_mut()
            .insert(INDEX_FIELD.to_owned(), index.into());
        Some(request)
    }
}

/// The slot and the request of an input line: its request, or a placeholder when the line is
/// bad.
fn line_request<R: CliEndpoint>(line: InputLine<R>) -> (Slot, R) {
    let InputLine {
        line,
        custom_id,
        request,
    } = line;
    let (request, problem) = match request {
        Ok(request) => (request, None),
        Err(problem) => (R::placeholder(), Some(problem)),
    };
    let entry = Entry {
        line,
        custom_id,
        problem,
        failed_after: None,
    };
    (Slot::Line(entry), request)
}

/// Wraps the provider stack: strips the ledger index, answers placeholders at once and waits
/// when their input arrives, and records how long failed calls took.
#[derive(Clone)]
pub struct LineService<S> {
    inner: S,
    ledger: Ledger,
    pump: PumpHandle,
}

impl<S> LineService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, ledger: Ledger, pump: PumpHandle) -> Self {
        LineService {
            inner,
            ledger,
            pump,
        }
    }
}

impl<S, R> Service<R> for LineService<S>
where
    R: CliEndpoint + Send + 'static,
    S: Service<R, Response = Answer<R>, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Answer<R>;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Answer<R>, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Readiness of the inner stack is awaited in `call`, only for requests that use it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: R) -> Self::Future {
        let index = request
            .extra_mut()
            .remove(INDEX_FIELD)
            .and_then(|value| value.as_u64())
            .and_then(|value| usize::try_from(value).ok());
        if request.is_placeholder() {
            // A wait's slot is popped only after its result, so it is still there.
            if let Some(ticket) = index.and_then(|index| self.ledger.wait_ticket(index)) {
                let pump = self.pump.clone();
                // The writer drops a wait's result; the error is never shown.
                return async move {
                    pump.wait_for(ticket).await;
                    Err(Error::Cancelled)
                }
                .boxed();
            }
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
    use crate::input::DuplicateCheck;
    use crate::pump;
    use lbgpt_core::{ChatMessage, ChatRequest, ChatResponse};
    use std::io::{self, BufRead};
    use tower::service_fn;

    fn feed_over(
        input: Box<dyn BufRead + Send>,
        ledger: &Ledger,
    ) -> (Feed<ChatRequest>, PumpHandle) {
        let (lines, handle) =
            pump::start(input, DuplicateCheck::On, Box::new(|_| Ok(true))).expect("pump starts");
        (Feed::new(lines, ledger.clone()), handle)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn placeholders_never_reach_the_inner_service_and_the_index_is_stripped() {
        use futures::StreamExt;
        let input = concat!(
            r#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}"#,
            "\nnot json\n"
        );
        let ledger = Ledger::new();
        let (feed, handle) = feed_over(Box::new(io::Cursor::new(input.as_bytes())), &ledger);

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
        let client = lbgpt::Lbgpt::new(LineService::new(inner, ledger.clone(), handle));
        let mut results = client.chat_completion_ordered(feed);
        let mut lines = Vec::new();
        while results.next().await.is_some() {
            if let Some(Slot::Line(entry)) = ledger.pop() {
                lines.push(entry);
            }
        }
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1, "only the good line is sent");
        assert_eq!(seen[0]["model"], "m");
        assert!(
            seen[0].get(INDEX_FIELD).is_none(),
            "index field stripped: {}",
            seen[0]
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].custom_id.as_deref(), Some("a"));
        assert!(lines[0].problem.is_none());
        assert!(lines[0].failed_after.is_some(), "failure latency recorded");
        assert_eq!(lines[1].line, 2);
        assert_eq!(
            lines[1].problem.as_ref().map(|p| p.code),
            Some("invalid_json")
        );
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
        let input = GeneratedInput {
            next: 0,
            total,
            pending: std::io::Cursor::new(Vec::new()),
        };
        let (feed, handle) = feed_over(Box::new(std::io::BufReader::new(input)), &ledger);
        let client =
            lbgpt::Lbgpt::new(LineService::new(service_fn(answer), ledger.clone(), handle))
                .max_concurrent_requests(16)
                .reorder_window(window);
        let mut results = client.chat_completion_ordered(feed);
        let mut seen = 0;
        let mut most_held = 0;
        while let Some(result) = results.next().await {
            let slot = ledger.pop().expect("a slot per result");
            // Besides the one just taken: at most the window.
            most_held = most_held.max(ledger.len());
            let Slot::Line(entry) = slot else {
                continue;
            };
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
        assert!(most_held <= window, "ledger held {most_held} slots");
        assert!(ledger.pop().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_are_yielded_while_the_input_is_still_waiting() {
        use futures::StreamExt;
        // A pipe whose writer sends one line and then waits: the first result must come out
        // before any more input arrives.
        let (mut writer, reader) = std::os::unix::net::UnixStream::pair().expect("pair");
        let ledger = Ledger::new();
        let (feed, handle) = feed_over(Box::new(io::BufReader::new(reader)), &ledger);
        let answer = |_request: ChatRequest| async move {
            serde_json::from_value::<ChatResponse>(serde_json::json!({
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]
            }))
            .map_err(|e| Error::Config(e.to_string()))
        };
        let client =
            lbgpt::Lbgpt::new(LineService::new(service_fn(answer), ledger.clone(), handle))
                .max_concurrent_requests(4);
        let mut results = client.chat_completion_ordered(feed);
        let first = r#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}"#;
        std::io::Write::write_all(&mut writer, format!("{first}\n").as_bytes()).expect("write");
        let entry = loop {
            let result = results
                .next()
                .await
                .expect("a result before the input ends");
            match ledger.pop().expect("a slot") {
                Slot::Line(entry) => {
                    assert!(result.is_ok());
                    break entry;
                }
                Slot::Wait(_) => continue,
            }
        };
        assert_eq!(entry.custom_id.as_deref(), Some("a"));
        drop(writer);
        while results.next().await.is_some() {
            assert!(
                matches!(ledger.pop(), Some(Slot::Wait(_))),
                "only waits remain"
            );
        }
        assert!(ledger.pop().is_none());
    }

    #[test]
    fn good_requests_are_never_placeholders() {
        assert!(!ChatRequest::new("m", vec![ChatMessage::user("x")]).is_placeholder());
        assert!(<ChatRequest as CliEndpoint>::placeholder().is_placeholder());
    }
}
