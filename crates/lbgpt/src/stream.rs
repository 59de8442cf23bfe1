//! The two result streams: completion order and input order.

use crate::engine::Engine;
use crate::Progress;
use futures::stream::{FusedStream, Stream};
use lbgpt_core::Error;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::Service;

/// Results in completion order, each with the index of its input (0-based), as returned by
/// [`Lbgpt::chat_completion_stream`](crate::Lbgpt::chat_completion_stream).
///
/// Inputs are pulled from the iterator only when a request can start, so at most
/// `max_concurrent_requests` requests run and at most as many finished results wait for the
/// consumer. Every input yields exactly one item. Dropping the stream cancels the requests it
/// has in flight.
#[must_use = "streams do nothing unless polled"]
pub struct CompletionStream<S, I>
where
    I: Iterator,
    S: Service<I::Item>,
{
    engine: Engine<S, I>,
    done: bool,
}

impl<S, I> CompletionStream<S, I>
where
    I: Iterator,
    I::Item: Send + 'static,
    S: Service<I::Item, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    pub(crate) fn new(engine: Engine<S, I>) -> Self {
        CompletionStream {
            engine,
            done: false,
        }
    }

    /// Counts of what this stream has done so far.
    pub fn progress(&self) -> Progress {
        self.engine.progress()
    }

    /// How many inputs have been taken from the iterator so far.
    pub fn pulled(&self) -> usize {
        self.engine.pulled()
    }
}

impl<S, I> Stream for CompletionStream<S, I>
where
    I: Iterator,
    I::Item: Send + 'static,
    S: Service<I::Item, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    type Item = (usize, Result<S::Response, Error>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        this.engine.fill(usize::MAX);
        match this.engine.poll_result(cx) {
            Poll::Ready(Some(item)) => {
                // Start the next request now rather than when the consumer comes back.
                this.engine.fill(usize::MAX);
                Poll::Ready(Some(item))
            }
            // Nothing started after `fill`: the inputs are exhausted.
            Poll::Ready(None) => {
                debug_assert!(this.engine.is_finished());
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        let held = self.engine.unreturned();
        let (lower, upper) = self.engine.remaining_inputs_hint();
        (
            lower.saturating_add(held),
            upper.and_then(|u| u.checked_add(held)),
        )
    }
}

impl<S, I> FusedStream for CompletionStream<S, I>
where
    I: Iterator,
    I::Item: Send + 'static,
    S: Service<I::Item, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

// No field is ever pinned in place (the engine holds its worker tasks' handles and channels,
// nothing self-referential), so the stream may move freely whatever `S` and `I` are.
impl<S, I> Unpin for CompletionStream<S, I>
where
    I: Iterator,
    S: Service<I::Item>,
{
}

impl<S, I> fmt::Debug for CompletionStream<S, I>
where
    I: Iterator,
    S: Service<I::Item>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Results in input order, as returned by
/// [`Lbgpt::chat_completion_ordered`](crate::Lbgpt::chat_completion_ordered).
///
/// # Ordering without head-of-line blocking
///
/// A slow early request does not stall the others: up to `max_concurrent_requests` requests keep
/// running, and results that finish ahead of the oldest unfinished input wait in a reorder
/// window. The window holds at most [`Lbgpt::reorder_window`](crate::Lbgpt::reorder_window)
/// inputs (default `max(1024, 64 x max_concurrent_requests)`) counted from the oldest input not
/// yet yielded; when it is full, no new input is pulled until that oldest one finishes. Memory
/// is therefore bounded by the window, whatever the number of inputs.
///
/// Every input yields exactly one item. Dropping the stream cancels the requests it has in
/// flight.
#[must_use = "streams do nothing unless polled"]
pub struct OrderedCompletionStream<S, I>
where
    I: Iterator,
    S: Service<I::Item>,
{
    engine: Engine<S, I>,
    /// Index of the oldest input not yet yielded.
    head: usize,
    window: usize,
    /// Slot `k` holds the result of input `head + k` once it has finished.
    reorder: VecDeque<Option<Result<S::Response, Error>>>,
    done: bool,
}

impl<S, I> OrderedCompletionStream<S, I>
where
    I: Iterator,
    I::Item: Send + 'static,
    S: Service<I::Item, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    pub(crate) fn new(engine: Engine<S, I>, window: usize) -> Self {
        OrderedCompletionStream {
            engine,
            head: 0,
            window: window.max(1),
            reorder: VecDeque::new(),
            done: false,
        }
    }

    /// Counts of what this stream has done so far (`completed` counts results that arrived,
    /// including those still waiting in the reorder window).
    pub fn progress(&self) -> Progress {
        self.engine.progress()
    }

    /// How many inputs have been taken from the iterator so far. Never more than the reorder
    /// window ahead of the next result to be yielded.
    pub fn pulled(&self) -> usize {
        self.engine.pulled()
    }

    /// The reorder window: how far ahead of the oldest unfinished input this stream may pull.
    pub fn window(&self) -> usize {
        self.window
    }

    fn store(&mut self, index: usize, result: Result<S::Response, Error>) {
        // Results of inputs before `head` were all yielded already, so `index >= head`.
        let Some(slot) = index.checked_sub(self.head) else {
            return;
        };
        if self.reorder.len() <= slot {
            self.reorder.resize_with(slot + 1, || None);
        }
        self.reorder[slot] = Some(result);
    }
}

impl<S, I> Stream for OrderedCompletionStream<S, I>
where
    I: Iterator,
    I::Item: Send + 'static,
    S: Service<I::Item, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    type Item = Result<S::Response, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            if matches!(this.reorder.front(), Some(Some(_))) {
                if let Some(Some(result)) = this.reorder.pop_front() {
                    this.head += 1;
                    this.engine.fill(this.head.saturating_add(this.window));
                    return Poll::Ready(Some(result));
                }
            }
            this.engine.fill(this.head.saturating_add(this.window));
            match this.engine.poll_result(cx) {
                Poll::Ready(Some((index, result))) => this.store(index, result),
                // Nothing started after `fill`: the window cannot be full (its head would be
                // ready), so the inputs are exhausted and every result was yielded.
                Poll::Ready(None) => {
                    debug_assert!(this.engine.is_finished() && this.reorder.is_empty());
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        let held = self.engine.pulled() - self.head;
        let (lower, upper) = self.engine.remaining_inputs_hint();
        (
            lower.saturating_add(held),
            upper.and_then(|u| u.checked_add(held)),
        )
    }
}

impl<S, I> FusedStream for OrderedCompletionStream<S, I>
where
    I: Iterator,
    I::Item: Send + 'static,
    S: Service<I::Item, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

// As for `CompletionStream`: nothing is pinned in place.
impl<S, I> Unpin for OrderedCompletionStream<S, I>
where
    I: Iterator,
    S: Service<I::Item>,
{
}

impl<S, I> fmt::Debug for OrderedCompletionStream<S, I>
where
    I: Iterator,
    S: Service<I::Item>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderedCompletionStream")
            .field("head", &self.head)
            .field("window", &self.window)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
