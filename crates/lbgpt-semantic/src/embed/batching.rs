//! [`BatchingEmbedder`]: embeds the texts of concurrent callers together.
//!
//! Each call puts its texts in a queue. When fewer than
//! [`concurrency`](BatchConfig::concurrency) model runs are going on, a worker task starts at
//! once and takes what is queued, so a call on an idle embedder waits for nothing; calls that
//! arrive while every worker is busy wait in the queue, and a worker that finishes one run
//! takes everything queued meanwhile (up to [`max_batch`](BatchConfig::max_batch) texts) into
//! its next run. There is no timer: a batch only ever holds what arrived while the model was
//! busy anyway.
//!
//! Workers are tasks of their own, not part of any caller's future: a caller that is
//! cancelled (its future dropped) takes nothing away from the callers batched with it, and a
//! cancelled caller still in the queue is skipped when the next batch is formed.

use super::{only_vector, Embedder};
use crate::SemanticError;
use futures::FutureExt;
use std::collections::VecDeque;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// Settings of a [`BatchingEmbedder`].
///
/// ```
/// use lbgpt_semantic::BatchConfig;
///
/// let config = BatchConfig::new().max_batch(16).concurrency(2);
/// assert_eq!(config.get_max_batch(), 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    max_batch: usize,
    concurrency: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: BatchConfig::DEFAULT_MAX_BATCH,
            concurrency: 1,
        }
    }
}

impl BatchConfig {
    /// The default bound on texts per model run (32: measured in `docs/benchmarks-semantic.md`;
    /// larger batches of short questions gain little and make every caller in them wait for
    /// the longest).
    pub const DEFAULT_MAX_BATCH: usize = 32;

    /// The defaults: at most [`DEFAULT_MAX_BATCH`](Self::DEFAULT_MAX_BATCH) texts per run,
    /// one run at a time.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most texts one model run embeds (1 to 4,096; 1 turns batching off). A single call
    /// with more texts than this runs alone, in one run of its own.
    pub fn max_batch(mut self, texts: usize) -> Self {
        self.max_batch = texts;
        self
    }

    /// How many model runs may go on at once (1 to 64; default 1). Give the number of model
    /// sessions of a [`FastembedEmbedder`](crate::FastembedEmbedder), so that every session
    /// is used before calls start waiting for each other.
    pub fn concurrency(mut self, runs: usize) -> Self {
        self.concurrency = runs;
        self
    }

    /// The bound on texts per run.
    pub fn get_max_batch(&self) -> usize {
        self.max_batch
    }

    /// The bound on concurrent runs.
    pub fn get_concurrency(&self) -> usize {
        self.concurrency
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), SemanticError> {
        if !(1..=4096).contains(&self.max_batch) {
            return Err(SemanticError::config(
                "max_batch",
                "must be between 1 and 4096",
            ));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(SemanticError::config(
                "concurrency",
                "must be between 1 and 64",
            ));
        }
        Ok(())
    }
}

/// What a [`BatchingEmbedder`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchStats {
    /// Calls of [`Embedder::embed`] (and `embed_one`) received.
    pub calls: u64,
    /// Texts those calls asked for.
    pub texts: u64,
    /// Runs of the inner embedder (each one batch).
    pub batches: u64,
    /// Texts of the largest batch.
    pub largest_batch: u64,
    /// Calls whose caller was gone before their batch was formed (not embedded).
    pub skipped: u64,
}

/// An [`Embedder`] that embeds the texts of concurrent calls together, in one call of the
/// inner embedder (a batch forms from the requests that arrive while the model is busy).
///
/// Each call puts its texts in a queue. When fewer than
/// [`concurrency`](BatchConfig::concurrency) runs are going on, a worker task starts at once
/// and takes what is queued, so a call on an idle embedder waits for nothing; calls that
/// arrive while every worker is busy wait in the queue, and a worker that finishes a run takes
/// everything queued meanwhile (whole calls in arrival order, up to
/// [`max_batch`](BatchConfig::max_batch) texts) into its next run. There is no timer.
///
/// Workers are tasks of their own, not part of any caller's future: a cancelled caller takes
/// nothing from the callers batched with it, and one cancelled while queued is skipped
/// ([`BatchStats::skipped`]). If the runtime of the last worker shuts down, the callers still
/// queued get an error instead of waiting forever.
///
/// Vectors are those of the inner embedder, and its [`id`](Embedder::id) and
/// [`dimensions`](Embedder::dimensions) are passed through, so an index built through the
/// batcher is the same as one built without it. Each caller gets exactly the vectors of its
/// own texts, in order; a failed run gives each of its callers the inner embedder's error (a
/// panic in the inner embedder becomes an [`SemanticError::Embedding`] error).
///
/// Needs a tokio runtime to start its workers; called outside one, it calls the inner
/// embedder directly.
///
/// ```no_run
/// use lbgpt_semantic::{BatchConfig, BatchingEmbedder, FastembedConfig, FastembedEmbedder};
///
/// let model = FastembedEmbedder::new(FastembedConfig::default().sessions(2))?;
/// let embedder = BatchingEmbedder::new(model, BatchConfig::new().concurrency(2))?;
/// # Ok::<(), lbgpt_semantic::SemanticError>(())
/// ```
pub struct BatchingEmbedder<E> {
    shared: Arc<Shared<E>>,
}

impl<E> Clone for BatchingEmbedder<E> {
    fn clone(&self) -> Self {
        BatchingEmbedder {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<E> {
    inner: E,
    config: BatchConfig,
    queue: Mutex<Queue>,
    calls: AtomicU64,
    texts: AtomicU64,
    batches: AtomicU64,
    largest_batch: AtomicU64,
    skipped: AtomicU64,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Worker tasks running.
    workers: usize,
}

/// One call's texts and where its vectors go.
struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, SemanticError>>,
}

impl<E: Embedder> fmt::Debug for BatchingEmbedder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchingEmbedder")
            .field("id", &self.shared.inner.id())
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<E: Embedder> BatchingEmbedder<E> {
    /// Batches the calls of `inner` with `config`; fails if the configuration is out of range.
    pub fn new(inner: E, config: BatchConfig) -> Result<Self, SemanticError> {
        config.validate()?;
        Ok(BatchingEmbedder {
            shared: Arc::new(Shared {
                inner,
                config,
                queue: Mutex::new(Queue::default()),
                calls: AtomicU64::new(0),
                texts: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                largest_batch: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
            }),
        })
    }

    /// The inner embedder.
    pub fn get_ref(&self) -> &E {
        &self.shared.inner
    }

    /// The configuration.
    pub fn config(&self) -> BatchConfig {
        self.shared.config
    }

    /// The counters so far.
    pub fn stats(&self) -> BatchStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let shared = &self.shared;
        BatchStats {
            calls: read(&shared.calls),
            texts: read(&shared.texts),
            batches: read(&shared.batches),
            largest_batch: read(&shared.largest_batch),
            skipped: read(&shared.skipped),
        }
    }

    /// Texts waiting for a worker right now (not those being embedded).
    pub fn queued(&self) -> usize {
        let queue = self.shared.lock();
        queue.jobs.iter().map(|job| job.texts.len()).sum()
    }
}

impl<E> Shared<E> {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<E: Embedder> BatchingEmbedder<E> {
    /// Queues one call's texts (at least one) for a worker, starting one if fewer than
    /// [`concurrency`](BatchConfig::concurrency) are running, and waits for their vectors;
    /// outside a tokio runtime, embeds them with the inner embedder directly. Takes the texts
    /// by value so that each call copies its texts once, into its job.
    async fn enqueue(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, SemanticError> {
        let shared = &self.shared;
        shared.calls.fetch_add(1, Ordering::Relaxed);
        shared
            .texts
            .fetch_add(texts.len() as u64, Ordering::Relaxed);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            shared.batches.fetch_add(1, Ordering::Relaxed);
            shared
                .largest_batch
                .fetch_max(texts.len() as u64, Ordering::Relaxed);
            return shared.inner.embed(&texts).await;
        };
        let (reply, answer) = oneshot::channel();
        let start_worker = {
            let mut queue = shared.lock();
            queue.jobs.push_back(Job { texts, reply });
            let start = queue.workers < shared.config.concurrency;
            if start {
                queue.workers += 1;
            }
            start
        };
        if start_worker {
            runtime.spawn(work(Arc::clone(shared)));
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(SemanticError::Embedding(
                "the embedding worker stopped before answering (its runtime shut down)".into(),
            )),
        }
    }
}

#[async_trait::async_trait]
impl<E: Embedder> Embedder for BatchingEmbedder<E> {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.enqueue(texts.to_vec()).await
    }

    /// Batched like [`embed`](Embedder::embed) with the one text, which is copied once (the
    /// trait's default would copy it into a slice and `embed` copy that again).
    async fn embed_one(&self, text: &str) -> Result<Vec<f32>, SemanticError> {
        only_vector(self.enqueue(vec![text.to_owned()]).await?)
    }

    fn dimensions(&self) -> usize {
        self.shared.inner.dimensions()
    }

    fn id(&self) -> &str {
        self.shared.inner.id()
    }
}

/// Counts a worker out when its task ends in any way, including being dropped by a runtime
/// that shuts down mid-run: then, if it was the last worker, the queued callers get an error
/// (their senders are dropped) rather than waiting for a worker that never comes.
struct WorkerSlot<'a, E> {
    shared: &'a Shared<E>,
    released: bool,
}

impl<E> WorkerSlot<'_, E> {
    /// The next batch, or `None` (and the slot given back, under the same lock that saw the
    /// queue empty, so no call can be left queued without a worker).
    fn next_batch(&mut self) -> Option<Vec<Job>> {
        let max_batch = self.shared.config.max_batch;
        let mut queue = self.shared.lock();
        let mut batch = Vec::new();
        let mut texts = 0;
        while let Some(job) = queue.jobs.front() {
            if job.reply.is_closed() {
                // The caller is gone: nobody wants these vectors.
                if queue.jobs.pop_front().is_some() {
                    self.shared.skipped.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            if !batch.is_empty() && texts + job.texts.len() > max_batch {
                break;
            }
            let Some(job) = queue.jobs.pop_front() else {
                break;
            };
            texts += job.texts.len();
            batch.push(job);
        }
        if batch.is_empty() {
            queue.workers -= 1;
            self.released = true;
            return None;
        }
        Some(batch)
    }
}

impl<E> Drop for WorkerSlot<'_, E> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let abandoned = {
            let mut queue = self.shared.lock();
            queue.workers -= 1;
            if queue.workers == 0 {
                std::mem::take(&mut queue.jobs)
            } else {
                VecDeque::new()
            }
        };
        drop(abandoned);
    }
}

/// A worker: runs batches until the queue is empty.
async fn work<E: Embedder>(shared: Arc<Shared<E>>) {
    let mut slot = WorkerSlot {
        shared: &shared,
        released: false,
    };
    while let Some(batch) = slot.next_batch() {
        run_batch(&shared, batch).await;
    }
}

async fn run_batch<E: Embedder>(shared: &Shared<E>, batch: Vec<Job>) {
    let mut texts = Vec::with_capacity(batch.iter().map(|job| job.texts.len()).sum());
    let mut jobs = Vec::with_capacity(batch.len());
    for Job {
        texts: job_texts,
        reply,
    } in batch
    {
        jobs.push((job_texts.len(), reply));
        texts.extend(job_texts);
    }
    shared.batches.fetch_add(1, Ordering::Relaxed);
    shared
        .largest_batch
        .fetch_max(texts.len() as u64, Ordering::Relaxed);
    let result = AssertUnwindSafe(shared.inner.embed(&texts))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(SemanticError::Embedding(format!(
                "the embedder panicked: {message}"
            )))
        });
    // Vectors that cannot be shared out by count fail the whole batch, like a failed run.
    let result = result.and_then(|vectors| {
        if vectors.len() == texts.len() {
            Ok(vectors)
        } else {
            Err(SemanticError::Embedding(format!(
                "{} vectors for {} texts",
                vectors.len(),
                texts.len()
            )))
        }
    });
    // A caller that went away meanwhile just does not get its answer.
    match result {
        Ok(vectors) => {
            let mut vectors = vectors.into_iter();
            for (count, reply) in jobs {
                let _ = reply.send(Ok(vectors.by_ref().take(count).collect()));
            }
        }
        Err(error) => {
            for (_, reply) in jobs {
                let _ = reply.send(Err(error.duplicate()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_rejected() {
        assert!(BatchConfig::new().validate().is_ok());
        for (config, field) in [
            (BatchConfig::new().max_batch(0), "max_batch"),
            (BatchConfig::new().max_batch(5000), "max_batch"),
            (BatchConfig::new().concurrency(0), "concurrency"),
            (BatchConfig::new().concurrency(65), "concurrency"),
        ] {
            let error = config.validate().expect_err("out of range");
            assert!(
                matches!(error, SemanticError::Config { field: f, .. } if f == field),
                "{error:?}"
            );
        }
    }
}
