//! Splitting requests into parts for the batch engine and putting their answers back
//! together: a long embedding request in chunks, a legacy completion request per prompt.
//!
//! [`Parts`] pulls requests lazily and hands the engine their parts, noting how many parts each
//! request had; [`Regrouped`] reads the engine's results in input order and merges each
//! request's parts into one answer. Both share the queue of part counts, filled as the engine
//! pulls a request (always before any of its parts' results can arrive). What is held: the
//! unsent parts of the request being split (all its parts are made at once), the parts the
//! engine's reorder window lets run ahead, and the answered parts of the oldest unanswered
//! request until its last part answers and they are merged (so one request's answers are all
//! in memory together, whatever the window).

use futures::Stream;
use lbgpt_core::{CacheStatus, Error};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// The part counts of the requests pulled and not yet regrouped, oldest first.
type Counts = Arc<Mutex<VecDeque<usize>>>;

/// An iterator over the parts of the requests of `inner`, in order.
pub(crate) struct Parts<I, P, F> {
    inner: I,
    split: F,
    current: std::vec::IntoIter<P>,
    counts: Counts,
}

impl<I, P, F> Parts<I, P, F>
where
    I: Iterator,
    F: FnMut(I::Item) -> Vec<P>,
{
    /// Parts of the requests of `inner`, split by `split` (which must give at least one part
    /// per request; a request it cannot split is its own single part).
    pub(crate) fn new(inner: I, split: F) -> Self {
        Parts {
            inner,
            split,
            current: Vec::new().into_iter(),
            counts: Arc::default(),
        }
    }

    /// The queue of part counts, for the [`Regrouped`] stream over the answers.
    pub(crate) fn counts(&self) -> Counts {
        Arc::clone(&self.counts)
    }
}

impl<I, P, F> Iterator for Parts<I, P, F>
where
    I: Iterator,
    F: FnMut(I::Item) -> Vec<P>,
{
    type Item = P;

    fn next(&mut self) -> Option<P> {
        loop {
            if let Some(part) = self.current.next() {
                return Some(part);
            }
            let request = self.inner.next()?;
            let parts = (self.split)(request);
            if parts.is_empty() {
                // `split` promises at least one part; a request without any is skipped by
                // nobody: count it as one failed part so it still gets a result.
                self.counts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_back(0);
                continue;
            }
            self.counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back(parts.len());
            self.current = parts.into_iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // At least one part per request still to come.
        let (low, _) = self.inner.size_hint();
        (low.saturating_add(self.current.len()), None)
    }
}

/// The answers to the requests behind a [`Parts`] iterator, one per request, in input order:
/// each request's parts merged by `merge`, or the first error among them. `on_part` sees the
/// inner stream after each part's result (for progress reports per call).
pub(crate) struct Regrouped<St, T, M, O = fn(&St)> {
    inner: St,
    counts: Counts,
    merge: M,
    on_part: O,
    pending: Vec<T>,
    error: Option<Error>,
    seen: usize,
}

impl<St, T, M> Regrouped<St, T, M>
where
    St: Stream<Item = Result<T, Error>> + Unpin,
    M: FnMut(Vec<T>) -> Result<T, Error>,
{
    /// Regroups `inner`, the in-order answers to the parts counted in `counts`.
    pub(crate) fn new(inner: St, counts: Counts, merge: M) -> Self {
        Regrouped {
            inner,
            counts,
            merge,
            on_part: |_: &St| {},
            pending: Vec::new(),
            error: None,
            seen: 0,
        }
    }

    /// Calls `on_part` with the inner stream after each part's result arrives.
    pub(crate) fn on_part<O>(self, on_part: O) -> Regrouped<St, T, M, O>
    where
        O: FnMut(&St),
    {
        Regrouped {
            inner: self.inner,
            counts: self.counts,
            merge: self.merge,
            on_part,
            pending: self.pending,
            error: self.error,
            seen: self.seen,
        }
    }
}

impl<St, T, M, O> Regrouped<St, T, M, O>
where
    St: Stream<Item = Result<T, Error>> + Unpin,
    M: FnMut(Vec<T>) -> Result<T, Error>,
{
    /// The number of parts of the oldest request not yet answered.
    fn front(&self) -> Option<usize> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .front()
            .copied()
    }

    /// Ends the oldest request: its merged answer or its first error.
    fn finish(&mut self) -> Result<T, Error> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        self.seen = 0;
        let parts = std::mem::take(&mut self.pending);
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        match parts.len() {
            0 => Err(Error::invalid_request(
                "input",
                "the request holds nothing to send",
            )),
            1 => parts
                .into_iter()
                .next()
                .ok_or_else(|| Error::Internal("a one-part answer vanished".to_owned())),
            _ => (self.merge)(parts),
        }
    }
}

// Nothing is pinned in place: `inner` is polled through `Pin::new` (it is `Unpin`).
impl<St, T, M, O> Unpin for Regrouped<St, T, M, O> {}

impl<St, T, M, O> Stream for Regrouped<St, T, M, O>
where
    St: Stream<Item = Result<T, Error>> + Unpin,
    M: FnMut(Vec<T>) -> Result<T, Error>,
    O: FnMut(&St),
{
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            // A request that had no part at all is answered at once.
            if this.front() == Some(0) {
                return Poll::Ready(Some(this.finish()));
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    return Poll::Ready(match this.front() {
                        // Results were cut short (never expected: one result per part).
                        Some(_) => {
                            this.error.get_or_insert(Error::Internal(
                                "a request's parts ended without all their answers".to_owned(),
                            ));
                            Some(this.finish())
                        }
                        None => None,
                    });
                }
                Poll::Ready(Some(result)) => {
                    (this.on_part)(&this.inner);
                    match result {
                        Ok(part) => this.pending.push(part),
                        Err(error) => {
                            this.error.get_or_insert(error);
                        }
                    }
                    this.seen += 1;
                    if Some(this.seen) >= this.front() {
                        return Poll::Ready(Some(this.finish()));
                    }
                }
            }
        }
    }
}

/// The cache status of an answer merged from parts, given each part's status and how many
/// inputs (embeddings) or prompts (completions) it answers: the parts' status when they all
/// agree, else [`CacheStatus::Partial`] counting the inputs that came from a cache and those
/// a provider answered (a merged answer is an exact hit only when every part was).
pub(crate) fn merged_cache_status(
    parts: impl IntoIterator<Item = (CacheStatus, usize)>,
) -> CacheStatus {
    let mut parts = parts.into_iter().peekable();
    let Some(&(first, _)) = parts.peek() else {
        return CacheStatus::Miss;
    };
    let (mut hits, mut misses, mut same) = (0u64, 0u64, true);
    for (status, inputs) in parts {
        same &= status == first;
        let inputs = inputs as u64;
        match status {
            CacheStatus::Miss => misses += inputs,
            CacheStatus::Partial {
                hits: part_hits,
                misses: part_misses,
            } => {
                hits += u64::from(part_hits);
                misses += u64::from(part_misses);
            }
            // Exact and semantic hits (and any status added later) came from a cache.
            _ => hits += inputs,
        }
    }
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    match (same, hits, misses) {
        (true, _, _) if !matches!(first, CacheStatus::Partial { .. }) => first,
        (_, 0, _) => CacheStatus::Miss,
        (_, _, 0) => CacheStatus::Exact,
        _ => CacheStatus::Partial {
            hits: count(hits),
            misses: count(misses),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn parts_go_back_to_their_requests_in_order() {
        let requests = vec![vec![1, 2, 3], vec![4], vec![], vec![5, 6]];
        let mut parts = Parts::new(requests.into_iter(), |r: Vec<i32>| r);
        let counts = parts.counts();
        let answers: Vec<Result<Vec<i32>, Error>> = parts.by_ref().map(|p| Ok(vec![p])).collect();
        let merged: Vec<_> = Regrouped::new(
            futures::stream::iter(answers),
            counts,
            |parts: Vec<Vec<i32>>| Ok(parts.concat()),
        )
        .collect()
        .await;
        assert_eq!(merged.len(), 4);
        assert_eq!(merged[0].as_ref().ok(), Some(&vec![1, 2, 3]));
        assert_eq!(merged[1].as_ref().ok(), Some(&vec![4]));
        assert!(matches!(merged[2], Err(Error::InvalidRequest { .. })));
        assert_eq!(merged[3].as_ref().ok(), Some(&vec![5, 6]));
    }

    #[tokio::test]
    async fn one_failed_part_fails_its_request_only() {
        let requests = vec![vec![1, 2], vec![3, 4]];
        let mut parts = Parts::new(requests.into_iter(), |r: Vec<i32>| r);
        let counts = parts.counts();
        let answers: Vec<Result<Vec<i32>, Error>> = parts
            .by_ref()
            .map(|p| {
                if p == 2 {
                    Err(Error::Cancelled)
                } else {
                    Ok(vec![p])
                }
            })
            .collect();
        let merged: Vec<_> = Regrouped::new(
            futures::stream::iter(answers),
            counts,
            |parts: Vec<Vec<i32>>| Ok(parts.concat()),
        )
        .collect()
        .await;
        assert!(matches!(merged[0], Err(Error::Cancelled)));
        assert_eq!(merged[1].as_ref().ok(), Some(&vec![3, 4]));
    }

    #[test]
    fn a_merged_cache_status_counts_every_part() {
        use CacheStatus::{Exact, Miss, Partial};
        assert_eq!(merged_cache_status([(Exact, 3), (Exact, 2)]), Exact);
        assert_eq!(merged_cache_status([(Miss, 3), (Miss, 2)]), Miss);
        assert_eq!(
            merged_cache_status([(Exact, 3), (Miss, 2)]),
            Partial { hits: 3, misses: 2 }
        );
        assert_eq!(
            merged_cache_status([(Partial { hits: 1, misses: 2 }, 3), (Exact, 4)]),
            Partial { hits: 5, misses: 2 }
        );
        assert_eq!(
            merged_cache_status([
                (Partial { hits: 1, misses: 2 }, 3),
                (Partial { hits: 2, misses: 1 }, 3)
            ]),
            Partial { hits: 3, misses: 3 }
        );
    }
}
