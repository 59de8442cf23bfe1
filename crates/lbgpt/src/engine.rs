//! The batch engine shared by every list and stream API: pulls inputs lazily, runs them on a
//! small pool of Tokio tasks, and hands results back with their input index.
//!
//! An engine has at most `local_limit` worker tasks, spawned when needed and reused. A worker
//! takes one request at a time from the engine, takes a permit of the client's semaphore,
//! calls a clone of the service, returns the permit as soon as the call ends and sends the
//! result back. So the limit holds for the whole client, and a stream its consumer is not
//! polling never sits on a permit: its workers finish their requests, leave the results in the
//! engine's queue and wait without a permit. Costs per request: one clone of the service, two
//! handoffs (a one-slot mailbox to the worker, a shared channel back) and a permit (an atomic
//! operation when one is free). Tasks are spawned only up to `local_limit`, not for each
//! request: with a task per request the whole `ChatGpt` client executed about 2.5% more
//! instructions per request (callgrind, `benches/overhead.rs`). No lock is held across an
//! await and nothing polls on a timer.
//!
//! Dropping the engine aborts its workers, which cancels their requests. A panic in the service
//! is caught around the call and becomes that request's error. A worker that ends some other
//! way (its runtime shutting down) fails the request it was running with `Cancelled`, so every
//! input still gets exactly one result.

use crate::Progress;
use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;
use futures::{FutureExt, StreamExt};
use lbgpt_core::Error;
use std::any::Any;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tower::{Service, ServiceExt};

/// A result with the index of its input.
pub(crate) type Indexed<T> = (usize, Result<T, Error>);

/// A request with the index of its input, on its way to a worker.
type Job<R> = (usize, R);

/// Pulls inputs from `I` and runs them through clones of `S` on worker tasks: at most
/// `local_limit` inputs of this engine are started and not yet handed back (running, waiting
/// for a permit, or finished and waiting for the consumer), and the shared semaphore bounds
/// the calls of the whole client.
pub(crate) struct Engine<S, I>
where
    I: Iterator,
    S: Service<I::Item>,
{
    service: S,
    semaphore: Arc<Semaphore>,
    local_limit: usize,
    inputs: I,
    exhausted: bool,
    next_index: usize,
    runtime: Option<Handle>,
    workers: Vec<WorkerSlot<I::Item>>,
    /// Live workers waiting for a request.
    idle: Vec<usize>,
    /// Every worker sends its results here, exactly one per request it took.
    results: UnboundedReceiver<Finished<S::Response>>,
    results_sender: UnboundedSender<Finished<S::Response>>,
    /// Completes when a worker task ends, which only happens when it is aborted or its runtime
    /// shuts down.
    exits: FuturesUnordered<WorkerExit>,
    /// Results ready to hand back that did not come through `results`.
    ready: VecDeque<Indexed<S::Response>>,
    /// Inputs started and not yet handed back.
    unreturned: usize,
    progress: Progress,
}

/// The engine's side of a worker.
struct WorkerSlot<R> {
    mailbox: Arc<Mailbox<Job<R>>>,
    /// The worker's task ended; it is never given a request again.
    ended: bool,
}

/// A worker's message: the result of the input `index`.
struct Finished<T> {
    worker: usize,
    index: usize,
    result: Result<T, Error>,
}

impl<S, I> Engine<S, I>
where
    I: Iterator,
    I::Item: Send + 'static,
    S: Service<I::Item, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    pub(crate) fn new(
        service: S,
        semaphore: Arc<Semaphore>,
        local_limit: usize,
        inputs: I,
    ) -> Self {
        let total = match inputs.size_hint() {
            (lower, Some(upper)) if lower == upper => Some(lower),
            _ => None,
        };
        let (results_sender, results) = unbounded_channel();
        Engine {
            service,
            semaphore,
            local_limit: local_limit.max(1),
            inputs,
            exhausted: false,
            next_index: 0,
            runtime: None,
            workers: Vec::new(),
            idle: Vec::new(),
            results,
            results_sender,
            exits: FuturesUnordered::new(),
            ready: VecDeque::new(),
            unreturned: 0,
            progress: Progress {
                total,
                ..Progress::default()
            },
        }
    }

    /// Starts inputs while this engine has room, inputs remain and their index is below
    /// `pull_limit`.
    pub(crate) fn fill(&mut self, pull_limit: usize) {
        while self.unreturned < self.local_limit {
            if self.exhausted || self.next_index >= pull_limit {
                return;
            }
            match self.inputs.next() {
                Some(request) => {
                    let index = self.next_index;
                    self.next_index += 1;
                    self.unreturned += 1;
                    self.start(index, request);
                }
                None => {
                    self.exhausted = true;
                    return;
                }
            }
        }
    }

    /// The next finished request, in completion order. `Ready(None)` means nothing is started.
    pub(crate) fn poll_result(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Indexed<S::Response>>> {
        let polled = self.poll_next_result(cx);
        if let Poll::Ready(Some((_, result))) = &polled {
            self.unreturned -= 1;
            self.progress.completed += 1;
            if result.is_ok() {
                self.progress.succeeded += 1;
            } else {
                self.progress.failed += 1;
            }
        }
        polled
    }

    fn poll_next_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Indexed<S::Response>>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Poll::Ready(Some(item));
            }
            if self.unreturned == 0 {
                return Poll::Ready(None);
            }
            // The engine holds a sender, so the channel never reports its end.
            if let Poll::Ready(Some(finished)) = self.results.poll_recv(cx) {
                let Finished {
                    worker,
                    index,
                    result,
                } = finished;
                if !self.workers[worker].ended {
                    self.idle.push(worker);
                }
                return Poll::Ready(Some((index, result)));
            }
            match self.exits.poll_next_unpin(cx) {
                Poll::Ready(Some(worker)) => self.bury(worker),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// A worker task ended. A request it had taken has its result in `results` already (the
    /// worker's guard sends one however the request ends); a request still in its mailbox
    /// never started, and fails here.
    fn bury(&mut self, worker: usize) {
        let slot = &mut self.workers[worker];
        slot.ended = true;
        self.idle.retain(|&idle| idle != worker);
        if let Some((index, _request)) = slot.mailbox.take() {
            self.ready.push_back((index, Err(Error::Cancelled)));
        }
    }

    /// True when every input has been pulled and every started request handed back.
    pub(crate) fn is_finished(&self) -> bool {
        self.exhausted && self.unreturned == 0
    }

    /// How many inputs were pulled (and given an index) so far.
    pub(crate) fn pulled(&self) -> usize {
        self.next_index
    }

    /// Requests started and not yet handed back.
    pub(crate) fn unreturned(&self) -> usize {
        self.unreturned
    }

    /// The input iterator's own size hint for what it has not yielded yet.
    pub(crate) fn remaining_inputs_hint(&self) -> (usize, Option<usize>) {
        if self.exhausted {
            (0, Some(0))
        } else {
            self.inputs.size_hint()
        }
    }

    pub(crate) fn progress(&self) -> Progress {
        Progress {
            in_flight: self.unreturned,
            ..self.progress
        }
    }

    /// Hands input `index` to an idle worker, spawning one when none is idle.
    fn start(&mut self, index: usize, request: I::Item) {
        let worker = match self.idle.pop() {
            Some(worker) => worker,
            None => match self.spawn_worker() {
                Ok(worker) => worker,
                Err(error) => {
                    self.ready.push_back((index, Err(error)));
                    return;
                }
            },
        };
        // Should the worker's task have ended unnoticed (its runtime shutting down), `bury`
        // takes the request back out of the mailbox and fails it.
        self.workers[worker].mailbox.put((index, request));
    }

    fn spawn_worker(&mut self) -> Result<usize, Error> {
        let runtime = match &self.runtime {
            Some(runtime) => runtime,
            None => match Handle::try_current() {
                Ok(handle) => self.runtime.insert(handle),
                Err(_) => {
                    return Err(Error::Config(
                        "lbgpt's batch APIs must be polled inside a Tokio runtime".to_owned(),
                    ))
                }
            },
        };
        let worker = self.workers.len();
        let mailbox = Arc::new(Mailbox::default());
        let handle = runtime.spawn(work(Worker {
            number: worker,
            service: self.service.clone(),
            semaphore: Arc::clone(&self.semaphore),
            mailbox: Arc::clone(&mailbox),
            results: self.results_sender.clone(),
        }));
        self.workers.push(WorkerSlot {
            mailbox,
            ended: false,
        });
        self.exits.push(WorkerExit { worker, handle });
        Ok(worker)
    }
}

impl<S, I> Drop for Engine<S, I>
where
    I: Iterator,
    S: Service<I::Item>,
{
    /// Aborts the workers, cancelling the requests they run.
    fn drop(&mut self) {
        for exit in self.exits.iter() {
            exit.handle.abort();
        }
    }
}

/// What a worker task owns.
struct Worker<S, R, T> {
    number: usize,
    service: S,
    semaphore: Arc<Semaphore>,
    mailbox: Arc<Mailbox<Job<R>>>,
    results: UnboundedSender<Finished<T>>,
}

/// A worker task: runs the requests put in its mailbox, one at a time, until it is aborted.
async fn work<S, R>(worker: Worker<S, R, S::Response>)
where
    S: Service<R, Error = Error> + Clone,
{
    loop {
        let (index, request) = poll_fn(|cx| worker.mailbox.poll_take(cx)).await;
        // From here on the request gets exactly one result, even if this task is dropped
        // half-way (aborted, or its runtime shutting down).
        let mut guard = ResultGuard {
            worker: worker.number,
            index,
            results: &worker.results,
            armed: true,
        };
        let result = {
            // lbgpt never closes the semaphore; were it closed, the request runs unlimited.
            let _permit = worker.semaphore.acquire().await.ok();
            // A panic in the service fails this request only and the worker carries on. (A
            // panicking clone ends the worker; its guard fails the request.)
            let call = worker.service.clone().oneshot(request);
            match AssertUnwindSafe(call).catch_unwind().await {
                Ok(result) => result,
                Err(payload) => Err(panic_error(&*payload)),
            }
        };
        guard.armed = false;
        let finished = Finished {
            worker: worker.number,
            index,
            result,
        };
        if worker.results.send(finished).is_err() {
            // The engine is gone.
            return;
        }
    }
}

/// Sends an error result for a request its worker dropped before finishing it: `Cancelled`
/// when the task is aborted or its runtime shuts down, `Internal` when the worker panicked.
struct ResultGuard<'a, T> {
    worker: usize,
    index: usize,
    results: &'a UnboundedSender<Finished<T>>,
    armed: bool,
}

impl<T> Drop for ResultGuard<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            let error = if std::thread::panicking() {
                Error::Internal("the service panicked outside a call".to_owned())
            } else {
                Error::Cancelled
            };
            // Fails only when the engine is gone, and then no one is waiting.
            let _ = self.results.send(Finished {
                worker: self.worker,
                index: self.index,
                result: Err(error),
            });
        }
    }
}

/// Hands one message at a time from the engine to a worker: the engine sends a worker a new
/// request only after its last result came back, so a channel's buffer would only cost memory.
struct Mailbox<T> {
    slot: Mutex<Option<T>>,
    waker: AtomicWaker,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            slot: Mutex::new(None),
            waker: AtomicWaker::new(),
        }
    }
}

impl<T> Mailbox<T> {
    fn put(&self, message: T) {
        *lock(&self.slot) = Some(message);
        self.waker.wake();
    }

    fn take(&self) -> Option<T> {
        lock(&self.slot).take()
    }

    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(message) = self.take() {
            return Poll::Ready(message);
        }
        self.waker.register(cx.waker());
        // A message put between the first look and the registration would wake no one.
        match self.take() {
            Some(message) => Poll::Ready(message),
            None => Poll::Pending,
        }
    }
}

/// Locks a mutex; nothing panics while holding these locks, but a poisoned one is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Completes with its worker's number when the worker task ends.
struct WorkerExit {
    worker: usize,
    handle: JoinHandle<()>,
}

impl Future for WorkerExit {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let worker = self.worker;
        Pin::new(&mut self.handle).poll(cx).map(|_| worker)
    }
}

/// The error a request gets when its service panicked: the panic stays with that one request.
pub(crate) fn panic_error(payload: &(dyn Any + Send)) -> Error {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string panic payload");
    tracing::error!(
        panic = message,
        "a request's service panicked; the request fails alone"
    );
    Error::Internal(format!("the service panicked: {message}"))
}

#[cfg(test)]
mod tests {
    //! The worker pool's own guarantees; the batch behaviour as a whole is tested in
    //! `tests/engine.rs` and against the simulator.

    use crate::Lbgpt;
    use futures::StreamExt;
    use lbgpt_core::{ChatMessage, ChatRequest, ChatResponse, Error};
    use std::time::Duration;
    use tokio::runtime::Handle;
    use tower::service_fn;

    fn request(i: usize) -> ChatRequest {
        ChatRequest::new("m", vec![ChatMessage::user(i.to_string())])
    }

    fn answer() -> ChatResponse {
        serde_json::from_str(r#"{"choices": []}"#).expect("a valid answer")
    }

    fn alive_tasks() -> usize {
        Handle::current().metrics().num_alive_tasks()
    }

    #[tokio::test(start_paused = true)]
    async fn workers_are_reused_bounded_by_the_limit_and_aborted_on_drop() {
        let service = service_fn(|_request: ChatRequest| async {
            tokio::time::sleep(Duration::from_millis(3)).await;
            Ok::<_, Error>(answer())
        });
        let client = Lbgpt::new(service).max_concurrent_requests(4);
        let mut stream = client.chat_completion_stream((0..100).map(request));
        let mut most = 0;
        let mut results = 0;
        while let Some((_, result)) = stream.next().await {
            result.expect("ok");
            results += 1;
            most = most.max(alive_tasks());
        }
        assert_eq!(results, 100);
        // One task per request running at once, not one per request: the four workers ran
        // all hundred requests and now wait for more, holding no permit.
        assert_eq!(most, 4);
        assert_eq!(alive_tasks(), 4);
        assert_eq!(client.in_flight(), 0);
        drop(stream);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(alive_tasks(), 0, "dropping the stream ends its workers");
        assert_eq!(client.in_flight(), 0, "and returns their permits");
    }

    #[test]
    fn requests_whose_runtime_shut_down_fail_once_each() {
        let service = service_fn(|_request: ChatRequest| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, Error>(answer())
        });
        let client = Lbgpt::new(service).max_concurrent_requests(2);
        let mut stream = client.chat_completion_stream((0..5).map(request));
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        first.block_on(async {
            assert!(futures::poll!(stream.next()).is_pending());
        });
        // Its workers (and the requests they run) go down with the runtime.
        drop(first);

        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut results: Vec<(usize, Result<ChatResponse, Error>)> =
            second.block_on(stream.collect());
        results.sort_by_key(|(index, _)| *index);
        let indices: Vec<usize> = results.iter().map(|(index, _)| *index).collect();
        assert_eq!(indices, [0, 1, 2, 3, 4]);
        for (index, result) in results {
            assert!(
                matches!(result, Err(Error::Cancelled)),
                "input {index}: {result:?}"
            );
        }
    }
}
