//! [`EndpointStream`]: the in-order result stream of the embeddings and legacy completions
//! methods, with the progress of its calls.

use crate::Progress;
use futures::stream::{FusedStream, Stream};
use lbgpt_core::Error;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// One result per request, in input order, as returned by
/// [`Lbgpt::embedding_ordered`](crate::Lbgpt::embedding_ordered) and
/// [`Lbgpt::completion_ordered`](crate::Lbgpt::completion_ordered).
///
/// A request may be sent as several calls (an embedding request's chunks of at most
/// [`MAX_EMBEDDING_INPUTS_PER_CALL`](crate::MAX_EMBEDDING_INPUTS_PER_CALL) inputs, a completion
/// request's prompts); [`progress`](Self::progress) counts those calls, as the `_with_progress`
/// list methods do. Dropping the stream cancels the calls it has in flight.
#[must_use = "streams do nothing unless polled"]
pub struct EndpointStream<'a, T> {
    inner: Pin<Box<dyn Stream<Item = Result<T, Error>> + Send + 'a>>,
    progress: Arc<Mutex<Progress>>,
    done: bool,
}

/// Where the calls' progress is written as their answers arrive.
#[derive(Clone, Default)]
pub(crate) struct ProgressCell(Arc<Mutex<Progress>>);

impl ProgressCell {
    /// Records the latest progress of the calls.
    pub(crate) fn set(&self, progress: Progress) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = progress;
    }
}

impl<'a, T> EndpointStream<'a, T> {
    /// Wraps `inner`, whose calls' progress is written to `progress`.
    pub(crate) fn new(
        inner: impl Stream<Item = Result<T, Error>> + Send + 'a,
        progress: ProgressCell,
    ) -> Self {
        EndpointStream {
            inner: Box::pin(inner),
            progress: progress.0,
            done: false,
        }
    }

    /// Counts of the calls made so far: `completed`, `succeeded` and `failed` calls,
    /// `in_flight` calls, and `total` when the number of calls is known in advance (it is not
    /// for lazily split requests, so it is `None` here). Updated when a call's answer arrives.
    pub fn progress(&self) -> Progress {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Stream for EndpointStream<'_, T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = next {
            self.done = true;
        }
        next
    }
}

impl<T> FusedStream for EndpointStream<'_, T> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<T> fmt::Debug for EndpointStream<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointStream")
            .field("progress", &self.progress())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
