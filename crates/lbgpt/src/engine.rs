//! The batch engine shared by every list and stream API: pulls inputs lazily, starts each one as
//! a Tokio task, and hands results back with their input index.
//!
//! Each task takes a permit of the client's semaphore before calling the service and returns it
//! as soon as the call ends, so the limit holds for the whole client, and a stream its consumer
//! is not polling never sits on a permit. Costs per request: one clone of the service, one
//! spawned task, one node in a `FuturesUnordered`, and a permit (an atomic operation when one
//! is free). No lock is held across an await and nothing polls on a timer.

use crate::Progress;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use lbgpt_core::Error;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinHandle};
use tower::{Service, ServiceExt};

/// A result with the index of its input.
pub(crate) type Indexed<T> = (usize, Result<T, Error>);

/// Pulls inputs from `I` and runs them through clones of `S`: at most `local_limit` tasks of
/// this engine exist at a time (running, waiting for a permit, or finished and not yet handed
/// back), and the shared semaphore bounds the calls of the whole client.
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
    tasks: FuturesUnordered<Call<S::Response>>,
    progress: Progress,
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
        Engine {
            service,
            semaphore,
            local_limit: local_limit.max(1),
            inputs,
            exhausted: false,
            next_index: 0,
            runtime: None,
            tasks: FuturesUnordered::new(),
            progress: Progress {
                total,
                ..Progress::default()
            },
        }
    }

    /// Starts inputs while this engine has room, inputs remain and their index is below
    /// `pull_limit`.
    pub(crate) fn fill(&mut self, pull_limit: usize) {
        while self.tasks.len() < self.local_limit {
            if self.exhausted || self.next_index >= pull_limit {
                return;
            }
            match self.inputs.next() {
                Some(request) => {
                    let index = self.next_index;
                    self.next_index += 1;
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
        let polled = self.tasks.poll_next_unpin(cx);
        if let Poll::Ready(Some((_, result))) = &polled {
            self.progress.completed += 1;
            if result.is_ok() {
                self.progress.succeeded += 1;
            } else {
                self.progress.failed += 1;
            }
        }
        polled
    }

    /// True when every input has been pulled and every started request handed back.
    pub(crate) fn is_finished(&self) -> bool {
        self.exhausted && self.tasks.is_empty()
    }

    /// How many inputs were pulled (and given an index) so far.
    pub(crate) fn pulled(&self) -> usize {
        self.next_index
    }

    /// Requests started and not yet handed back.
    pub(crate) fn unreturned(&self) -> usize {
        self.tasks.len()
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
            in_flight: self.tasks.len(),
            ..self.progress
        }
    }

    fn start(&mut self, index: usize, request: I::Item) {
        let runtime = match &self.runtime {
            Some(runtime) => runtime,
            None => match Handle::try_current() {
                Ok(handle) => self.runtime.insert(handle),
                Err(_) => {
                    self.tasks.push(Call::failed(
                        index,
                        Error::Config(
                            "lbgpt's batch APIs must be polled inside a Tokio runtime".to_owned(),
                        ),
                    ));
                    return;
                }
            },
        };
        let service = self.service.clone();
        let semaphore = Arc::clone(&self.semaphore);
        let handle = runtime.spawn(async move {
            // lbgpt never closes the semaphore; were it closed, the request runs unlimited.
            let permit = semaphore.acquire_owned().await.ok();
            let result = service.oneshot(request).await;
            drop(permit);
            result
        });
        self.tasks.push(Call::running(index, handle));
    }
}

/// One started request: a spawned task, aborted when dropped so that dropping a stream
/// cancels its in-flight requests.
pub(crate) struct Call<T> {
    index: usize,
    state: CallState<T>,
}

enum CallState<T> {
    Running(JoinHandle<Result<T, Error>>),
    Failed(Option<Error>),
}

impl<T> Call<T> {
    fn running(index: usize, handle: JoinHandle<Result<T, Error>>) -> Self {
        Call {
            index,
            state: CallState::Running(handle),
        }
    }

    fn failed(index: usize, error: Error) -> Self {
        Call {
            index,
            state: CallState::Failed(Some(error)),
        }
    }
}

impl<T> Future for Call<T> {
    type Output = Indexed<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.state {
            CallState::Running(handle) => match Pin::new(handle).poll(cx) {
                Poll::Ready(Ok(result)) => result,
                Poll::Ready(Err(join_error)) => Err(join_error_to_error(join_error)),
                Poll::Pending => return Poll::Pending,
            },
            CallState::Failed(error) => Err(error.take().unwrap_or(Error::Cancelled)),
        };
        // The task is done: nothing left to abort on drop.
        this.state = CallState::Failed(None);
        Poll::Ready((this.index, result))
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        if let CallState::Running(handle) = &self.state {
            handle.abort();
        }
    }
}

fn join_error_to_error(error: JoinError) -> Error {
    if error.is_panic() {
        panic_error(error.into_panic().as_ref())
    } else {
        Error::Cancelled
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
