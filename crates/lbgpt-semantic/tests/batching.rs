//! Micro-batching of embeddings with the real model: concurrent calls get the vectors one-by-one
//! calls get; calls that arrive while the model is busy are embedded together in one model run
//! (counted by a wrapper around the real model, whose runs can be held at a gate so batches
//! form deterministically, without timing); cancelled callers take nothing from the others;
//! a panicking run, one that returns the wrong number of vectors or a runtime that shuts down
//! fails only its own callers; and the layer
//! answers concurrent requests through the batcher, each from its own cached request.

mod common;

use common::{provider, request, sim, upstream_calls};
use lbgpt_cache::CacheConfig;
use lbgpt_core::CacheStatus;
use lbgpt_semantic::{
    dot, BatchConfig, BatchingEmbedder, Embedder, FastembedEmbedder, HnswIndex, IndexConfig,
    SemanticCacheLayer, SemanticConfig, SemanticError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tower::{Layer, ServiceExt};

/// The real model, counting its runs and the texts of each; with a gate, each run first waits
/// for a permit, so a test can hold the model "busy" while it queues more calls.
struct CountingModel {
    model: Arc<FastembedEmbedder>,
    runs: Mutex<Vec<usize>>,
    started: AtomicUsize,
    gate: Option<Arc<Semaphore>>,
}

impl CountingModel {
    fn new(gate: Option<Arc<Semaphore>>) -> Arc<Self> {
        Arc::new(CountingModel {
            model: common::embedder(),
            runs: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            gate,
        })
    }

    /// The texts of each model run so far, in order.
    fn runs(&self) -> Vec<usize> {
        self.runs.lock().expect("not poisoned").clone()
    }
}

#[async_trait::async_trait]
impl Embedder for CountingModel {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError> {
        self.runs.lock().expect("not poisoned").push(texts.len());
        self.started.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        if texts.iter().any(|t| t == "PANIC") {
            panic!("the model was asked to panic");
        }
        let mut vectors = self.model.embed(texts).await?;
        if texts.iter().any(|t| t == "ONE SHORT") {
            vectors.pop();
        }
        Ok(vectors)
    }

    fn dimensions(&self) -> usize {
        self.model.dimensions()
    }

    fn id(&self) -> &str {
        self.model.id()
    }
}

/// Embeds `text` with a clone of `embedder` on a task of its own.
fn spawn_embed(
    embedder: &BatchingEmbedder<Arc<CountingModel>>,
    text: &str,
) -> tokio::task::JoinHandle<Result<Vec<f32>, SemanticError>> {
    let embedder = embedder.clone();
    let text = text.to_owned();
    tokio::spawn(async move { embedder.embed_one(&text).await })
}

/// Waits (yielding) until `condition` holds; a hang guard, not a timed assertion.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Distinct questions from the evaluation set.
fn questions(count: usize) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval-pairs.jsonl");
    let pairs = lbgpt_semantic::evaluation::load_pairs(&path).expect("the evaluation set loads");
    let mut texts: Vec<String> = pairs.into_iter().map(|p| p.a).collect();
    texts.sort();
    texts.dedup();
    assert!(texts.len() >= count);
    texts.truncate(count);
    texts
}

/// Each text's vector embedded alone, straight from the model.
async fn one_by_one(texts: &[String]) -> Vec<Vec<f32>> {
    let model = common::embedder();
    let mut vectors = Vec::new();
    for text in texts {
        vectors.push(model.embed_one(text).await.expect("embeds"));
    }
    vectors
}

/// `vector` is `texts[own]`'s vector: the same as embedded alone, and nearer to it than to any
/// other text's.
fn assert_is_own(vector: &[f32], own: usize, reference: &[Vec<f32>]) {
    let similarity = dot(vector, &reference[own]);
    assert!(similarity > 0.9999, "text {own}: similarity {similarity}");
    for (other, candidate) in reference.iter().enumerate() {
        if other != own {
            assert!(
                dot(vector, candidate) < similarity,
                "text {own}'s vector is as close to text {other}'s"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_get_the_vectors_of_one_by_one_calls_and_nothing_is_lost() {
    let texts = questions(48);
    let reference = one_by_one(&texts).await;
    let model = CountingModel::new(None);
    let embedder =
        BatchingEmbedder::new(Arc::clone(&model), BatchConfig::new().max_batch(16)).expect("valid");
    assert_eq!(embedder.id(), common::embedder().id(), "the model's id");
    assert_eq!(embedder.dimensions(), 384);

    // Single texts, and every fifth caller three texts at once.
    let mut calls = Vec::new();
    let mut start = 0;
    while start < texts.len() {
        let count = if calls.len() % 5 == 4 { 3 } else { 1 }.min(texts.len() - start);
        let embedder = embedder.clone();
        let part = texts[start..start + count].to_vec();
        calls.push((
            start,
            tokio::spawn(async move { embedder.embed(&part).await }),
        ));
        start += count;
    }
    let call_count = calls.len();
    for (first, call) in calls {
        let vectors = call.await.expect("task").expect("embeds");
        for (offset, vector) in vectors.iter().enumerate() {
            assert_is_own(vector, first + offset, &reference);
        }
    }
    let runs = model.runs();
    assert_eq!(runs.iter().sum::<usize>(), 48, "each text embedded once");
    assert!(runs.iter().all(|&n| n <= 16), "{runs:?}");
    let stats = embedder.stats();
    assert_eq!(stats.calls as usize, call_count);
    assert_eq!(stats.texts, 48);
    assert_eq!(stats.batches as usize, runs.len());
    assert_eq!(embedder.queued(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_arriving_while_the_model_is_busy_are_embedded_in_one_run() {
    let texts = questions(21);
    let reference = one_by_one(&texts).await;
    let gate = Arc::new(Semaphore::new(0));
    let model = CountingModel::new(Some(Arc::clone(&gate)));
    let embedder =
        BatchingEmbedder::new(Arc::clone(&model), BatchConfig::new().max_batch(16)).expect("valid");

    // The first call starts a run at once, alone: nothing waits for company.
    let spawn = |i: usize| spawn_embed(&embedder, &texts[i]);
    let mut calls = vec![spawn(0)];
    until("the first run starts", || {
        model.started.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(model.runs(), vec![1]);
    // Twenty more arrive while it runs: they wait in the queue.
    calls.extend((1..21).map(spawn));
    until("twenty texts queue", || embedder.queued() == 20).await;
    assert_eq!(model.started.load(Ordering::SeqCst), 1);
    gate.add_permits(3);
    for (i, call) in calls.into_iter().enumerate() {
        let vector = call.await.expect("task").expect("embeds");
        assert_is_own(&vector, i, &reference);
    }
    assert_eq!(
        model.runs(),
        vec![1, 16, 4],
        "one run alone, then batches of at most 16"
    );
    assert_eq!(embedder.stats().largest_batch, 16);

    // Once idle, a call runs alone again.
    gate.add_permits(1);
    let vector = embedder.embed_one(&texts[5]).await.expect("embeds");
    assert_is_own(&vector, 5, &reference);
    assert_eq!(model.runs(), vec![1, 16, 4, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_go_on_at_once_before_calls_wait_for_each_other() {
    let texts = questions(8);
    let reference = one_by_one(&texts).await;
    let gate = Arc::new(Semaphore::new(0));
    let model = CountingModel::new(Some(Arc::clone(&gate)));
    let embedder = BatchingEmbedder::new(Arc::clone(&model), BatchConfig::new().concurrency(2))
        .expect("valid");
    let spawn = |i: usize| spawn_embed(&embedder, &texts[i]);
    let mut calls = vec![spawn(0)];
    until("the first run starts", || {
        model.started.load(Ordering::SeqCst) == 1
    })
    .await;
    calls.push(spawn(1));
    until("a second run starts beside it", || {
        model.started.load(Ordering::SeqCst) == 2
    })
    .await;
    calls.extend((2..8).map(spawn));
    until("the rest queue", || embedder.queued() == 6).await;
    gate.add_permits(3);
    for (i, call) in calls.into_iter().enumerate() {
        assert_is_own(&call.await.expect("task").expect("embeds"), i, &reference);
    }
    let mut runs = model.runs();
    assert_eq!(runs.len(), 3, "{runs:?}");
    runs.sort_unstable();
    assert_eq!(runs, vec![1, 1, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_takes_nothing_from_the_callers_batched_with_it() {
    let texts = questions(13);
    let reference = one_by_one(&texts).await;
    let gate = Arc::new(Semaphore::new(0));
    let model = CountingModel::new(Some(Arc::clone(&gate)));
    let embedder = BatchingEmbedder::new(Arc::clone(&model), BatchConfig::new()).expect("valid");
    let spawn = |i: usize| spawn_embed(&embedder, &texts[i]);
    let mut calls: Vec<Option<tokio::task::JoinHandle<_>>> = vec![Some(spawn(0))];
    until("the first run starts", || {
        model.started.load(Ordering::SeqCst) == 1
    })
    .await;
    calls.extend((1..13).map(|i| Some(spawn(i))));
    until("twelve texts queue", || embedder.queued() == 12).await;

    let cancel = |calls: &mut Vec<Option<tokio::task::JoinHandle<_>>>, i: usize| {
        let call = calls[i].take().expect("not cancelled yet");
        call.abort();
        call
    };
    // Caller 0 is cancelled while its own run is going on, caller 3 while it waits in the
    // queue.
    for i in [0, 3] {
        let aborted = cancel(&mut calls, i).await;
        assert!(aborted.expect_err("cancelled").is_cancelled());
    }
    gate.add_permits(1);
    until("the second run starts", || {
        model.started.load(Ordering::SeqCst) == 2
    })
    .await;
    // Caller 5 is cancelled while the run holding its text is going on.
    let aborted = cancel(&mut calls, 5).await;
    assert!(aborted.expect_err("cancelled").is_cancelled());
    gate.add_permits(1);

    for (i, call) in calls.into_iter().enumerate() {
        if let Some(call) = call {
            let vector = call.await.expect("task").expect("embeds");
            assert_is_own(&vector, i, &reference);
        }
    }
    // Caller 3's text was never embedded; caller 5's run still served the ten others.
    assert_eq!(model.runs(), vec![1, 11]);
    assert_eq!(embedder.stats().skipped, 1);
}

/// A run that fails (the model is given `trigger` with another text) fails only the callers
/// in it, each with an error `expected` accepts; the run before and the run after work.
async fn a_failed_run_fails_only_its_callers(trigger: &str, expected: impl Fn(&str) -> bool) {
    let texts = questions(3);
    let reference = one_by_one(&texts).await;
    let gate = Arc::new(Semaphore::new(0));
    let model = CountingModel::new(Some(Arc::clone(&gate)));
    let embedder = BatchingEmbedder::new(Arc::clone(&model), BatchConfig::new()).expect("valid");
    let spawn = |text: String| spawn_embed(&embedder, &text);
    let first = spawn(texts[0].clone());
    until("the first run starts", || {
        model.started.load(Ordering::SeqCst) == 1
    })
    .await;
    let failing = spawn(trigger.to_owned());
    let batched_with_it = spawn(texts[1].clone());
    until("two texts queue", || embedder.queued() == 2).await;
    gate.add_permits(10);
    assert_is_own(&first.await.expect("task").expect("embeds"), 0, &reference);
    for call in [failing, batched_with_it] {
        let error = call.await.expect("task").expect_err("the run failed");
        assert!(
            matches!(&error, SemanticError::Embedding(m) if expected(m)),
            "{error:?}"
        );
    }
    let vector = embedder.embed_one(&texts[2]).await.expect("embeds");
    assert_is_own(&vector, 2, &reference);
    assert_eq!(model.runs(), vec![1, 2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_run_fails_only_its_callers_and_the_next_run_works() {
    a_failed_run_fails_only_its_callers("PANIC", |m| m.contains("asked to panic")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_short_of_vectors_fails_only_its_callers_and_says_how_short() {
    a_failed_run_fails_only_its_callers("ONE SHORT", |m| m == "1 vectors for 2 texts").await;
}

#[test]
fn a_worker_whose_runtime_shuts_down_fails_the_queued_callers_instead_of_stranding_them() {
    let texts = questions(3);
    let gate = Arc::new(Semaphore::new(0));
    let model = CountingModel::new(Some(Arc::clone(&gate)));
    let embedder = BatchingEmbedder::new(Arc::clone(&model), BatchConfig::new()).expect("valid");
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // The worker starts on the first runtime and holds its run at the gate.
    let running = {
        let embedder = embedder.clone();
        let text = texts[0].clone();
        first.spawn(async move { embedder.embed_one(&text).await })
    };
    second.block_on(until("the first run starts", || {
        model.started.load(Ordering::SeqCst) == 1
    }));
    // A caller on the second runtime waits in the queue for that worker.
    let queued = {
        let embedder = embedder.clone();
        let text = texts[1].clone();
        second.spawn(async move { embedder.embed_one(&text).await })
    };
    second.block_on(until("a text queues", || embedder.queued() == 1));
    first.shutdown_background();
    let error = second
        .block_on(async { tokio::time::timeout(Duration::from_secs(120), queued).await })
        .expect("the queued caller is answered, not stranded")
        .expect("task")
        .expect_err("its worker is gone");
    assert!(error.to_string().contains("runtime shut down"), "{error}");
    drop(running);
    // The next call starts a worker on its own runtime.
    gate.add_permits(1);
    let vector = second
        .block_on(embedder.embed_one(&texts[2]))
        .expect("embeds");
    let reference = second.block_on(one_by_one(&texts[2..3]));
    assert_is_own(&vector, 0, &reference);
}

#[test]
fn outside_a_runtime_the_model_is_called_directly() {
    let texts = questions(2);
    let model = CountingModel::new(None);
    let embedder = BatchingEmbedder::new(Arc::clone(&model), BatchConfig::new()).expect("valid");
    let vectors = futures::executor::block_on(embedder.embed(&texts)).expect("embeds");
    assert_eq!(vectors.len(), 2);
    assert_eq!(model.runs(), vec![2]);
    assert_eq!(embedder.stats().batches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_through_the_layer_are_each_answered_from_their_own_cached_request() {
    let pairs = [
        (
            "How do I reset my password?",
            "What are the steps to reset my password?",
        ),
        (
            "How do I undo the last commit in Git?",
            "How can I revert my most recent Git commit?",
        ),
        (
            "How do I install Node.js on Ubuntu?",
            "What are the steps to install Node.js on Ubuntu?",
        ),
        (
            "What does HTTP status code 404 mean?",
            "What is the meaning of the HTTP 404 status code?",
        ),
        (
            "How do I read a CSV file with pandas?",
            "How can I load a CSV file using pandas?",
        ),
        (
            "Who painted the Mona Lisa?",
            "Which artist painted the Mona Lisa?",
        ),
    ];
    let sim = sim().await;
    let gate = Arc::new(Semaphore::new(0));
    let model = CountingModel::new(Some(Arc::clone(&gate)));
    let embedder =
        Arc::new(BatchingEmbedder::new(Arc::clone(&model), BatchConfig::new()).expect("valid"));
    let index = Arc::new(
        HnswIndex::open(IndexConfig::new(), embedder.dimensions(), embedder.id()).expect("index"),
    );
    let layer =
        SemanticCacheLayer::new(embedder.clone(), index, SemanticConfig::new()).expect("layer");
    let service = layer.layer(provider(&sim));
    // Cache the six questions one after another: six runs of one text.
    gate.add_permits(pairs.len());
    for (cached, _) in pairs {
        let answer = service
            .clone()
            .oneshot(request(cached))
            .await
            .expect("answer");
        assert_eq!(answer.meta.cache, CacheStatus::Miss);
    }
    assert_eq!(model.runs(), vec![1; 6]);

    // Then the six paraphrases at once, the model held busy by the first.
    let ask = |text: &'static str| {
        let service = service.clone();
        tokio::spawn(async move { service.oneshot(request(text)).await })
    };
    let mut asked = vec![ask(pairs[0].1)];
    until("the first paraphrase's run starts", || {
        model.started.load(Ordering::SeqCst) == 7
    })
    .await;
    asked.extend(pairs[1..].iter().map(|(_, paraphrase)| ask(paraphrase)));
    until("five paraphrases queue", || embedder.queued() == 5).await;
    gate.add_permits(2);
    for ((cached, _), answer) in pairs.iter().zip(asked) {
        let answer = answer.await.expect("task").expect("answer");
        assert!(
            matches!(answer.meta.cache, CacheStatus::Semantic { .. }),
            "{cached}: {:?}",
            answer.meta.cache
        );
        let own_key = CacheConfig::new()
            .key_for(&request(cached))
            .expect("key")
            .to_string();
        assert_eq!(
            answer.meta.cache_match.as_deref(),
            Some(own_key.as_str()),
            "answered from its own cached request"
        );
    }
    assert_eq!(model.runs(), vec![1, 1, 1, 1, 1, 1, 1, 5]);
    assert_eq!(
        upstream_calls(&sim),
        6,
        "the paraphrases never went upstream"
    );
    assert_eq!(layer.stats().hits, 6);
}
