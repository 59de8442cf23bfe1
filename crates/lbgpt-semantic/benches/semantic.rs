//! Semantic cache benchmark: embedding throughput of the local model, and the HNSW index at
//! scale (lookup latency, insert rate, recall@1 against brute force, memory per entry).
//!
//! - **Embedding**: the evaluation set's sentences through the real all-MiniLM-L6-v2 int8
//!   model, one at a time (latency) and in batches (throughput), with one and two sessions.
//! - **Index**: `entries` clustered unit vectors of 384 dimensions (1,000 clusters, like
//!   questions on a thousand topics) in one scope, loaded with `insert_batch`; then lookups of
//!   fresh vectors from the same clusters (k = 4, as the layer asks), single inserts into the
//!   full index, recall@1 of the graph against an exhaustive search, and the process's
//!   resident memory growth per entry.
//!
//! - **Saving and loading**: the same index saved, then opened with its saved graph and
//!   without it (the graph rebuilt, as every open did before graphs were saved).
//! - **Concurrent callers**: callers that each embed one sentence at a time, as requests in
//!   flight through the layer do, through the model alone (every call its own model run) and
//!   through a [`BatchingEmbedder`] (calls that arrive while the model is busy share a run).
//!
//! `cargo bench -p lbgpt-semantic --bench semantic` runs it in full (100,000 entries; a few
//! minutes on two cores) and writes `docs/benchmarks-semantic.md` (or the file named by
//! `LBGPT_BENCH_SEMANTIC_REPORT`). Section names after `--` run only those sections and write
//! nothing (`cargo bench -p lbgpt-semantic --bench semantic -- concurrent`; sections:
//! `embedding`, `concurrent`, `index`, `persistence`, `evaluation`). Under `cargo test` it runs a
//! small smoke round and writes nothing. Each section notes the machine's load average before
//! and after it: the numbers are only comparable within one run on a quiet machine.

use lbgpt_semantic::evaluation::{load_pairs, measure, score_pairs};
use lbgpt_semantic::{
    dot, normalise, BatchConfig, BatchingEmbedder, Embedder, FalseHitGuard, FastembedConfig,
    FastembedEmbedder, HnswIndex, IndexConfig, Record, Scope, SemanticConfig,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECTIONS: [&str; 5] = [
    "embedding",
    "concurrent",
    "index",
    "persistence",
    "evaluation",
];

const DIMS: usize = 384;

struct Settings {
    entries: usize,
    clusters: usize,
    queries: usize,
    inserts: usize,
    sentences: usize,
    concurrent_sentences: usize,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for name in &chosen {
        assert!(
            SECTIONS.contains(&name.as_str()),
            "unknown section `{name}`; sections: {}",
            SECTIONS.join(", ")
        );
    }
    let runs = |section: &str| chosen.is_empty() || chosen.iter().any(|c| c == section);
    let settings = if full {
        Settings {
            entries: 100_000,
            clusters: 1_000,
            queries: 2_000,
            inserts: 1_000,
            sentences: 800,
            concurrent_sentences: 1_600,
        }
    } else {
        Settings {
            entries: 3_000,
            clusters: 50,
            queries: 100,
            inserts: 50,
            sentences: 40,
            concurrent_sentences: 64,
        }
    };
    let mut report = String::new();
    let _ = writeln!(report, "# Semantic cache benchmark\n");
    let _ = writeln!(
        report,
        "Written by `cargo bench -p lbgpt-semantic --bench semantic` on a {}-core machine \
         ({} CPU). Release build; ONNX Runtime 1.31 CPU, one intra-op thread per session.\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model()
    );
    if runs("embedding") {
        section(&mut report, |r| embedding(&settings, r));
    }
    if runs("concurrent") {
        section(&mut report, |r| concurrent(&settings, r));
    }
    if runs("index") {
        section(&mut report, |r| index(&settings, r));
    }
    if runs("persistence") {
        section(&mut report, |r| persistence(&settings, r));
    }
    if full && runs("evaluation") {
        section(&mut report, evaluation);
    }
    print!("{report}");
    if full && chosen.is_empty() {
        let path = std::env::var_os("LBGPT_BENCH_SEMANTIC_REPORT").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks-semantic.md"),
            PathBuf::from,
        );
        match std::fs::write(&path, &report) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}

/// Runs one section and notes the machine's load average before and after it.
fn section(report: &mut String, run: impl FnOnce(&mut String)) {
    let before = load_average();
    let started = Instant::now();
    run(report);
    let _ = writeln!(
        report,
        "_Load average (1 min) {before} before, {} after; {:.0} s._\n",
        load_average(),
        started.elapsed().as_secs_f64()
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn sentences(count: usize) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval-pairs.jsonl");
    let pairs = load_pairs(&path).expect("the evaluation set loads");
    let mut texts: Vec<String> = pairs.into_iter().flat_map(|p| [p.a, p.b]).collect();
    texts.sort();
    texts.dedup();
    texts.into_iter().cycle().take(count).collect()
}

fn embedding(settings: &Settings, report: &mut String) {
    let texts = sentences(settings.sentences);
    let _ = writeln!(
        report,
        "## Embedding (all-MiniLM-L6-v2 int8, 384 dimensions)\n"
    );
    let _ = writeln!(
        report,
        "The evaluation set's sentences ({} in all, repeated as needed), on as many threads as \
         sessions, each embedding batches of 32; then single sentences one at a time (what the \
         layer does per request).\n",
        texts.len()
    );
    let _ = writeln!(
        report,
        "| setup | sentences/s | single-sentence latency p50 / p99 |"
    );
    let _ = writeln!(report, "|---|---|---|");
    for sessions in [1usize, 2] {
        let embedder = FastembedEmbedder::new(FastembedConfig::default().sessions(sessions))
            .expect("the model loads (run `cargo xtask fetch-assets`)");
        // Throughput: batches of 32 from as many threads as sessions.
        let started = Instant::now();
        std::thread::scope(|scope| {
            for part in texts.chunks(texts.len().div_ceil(sessions)) {
                let embedder = &embedder;
                scope.spawn(move || {
                    for batch in part.chunks(32) {
                        embedder.embed_blocking(batch).expect("embeds");
                    }
                });
            }
        });
        let rate = texts.len() as f64 / started.elapsed().as_secs_f64();
        let mut latencies: Vec<Duration> = texts
            .iter()
            .take(settings.sentences.min(200))
            .map(|text| {
                let started = Instant::now();
                embedder
                    .embed_blocking(std::slice::from_ref(text))
                    .expect("embeds");
                started.elapsed()
            })
            .collect();
        latencies.sort();
        let _ = writeln!(
            report,
            "| {sessions} session(s), batches of 32 | {rate:.0} | {} / {} |",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99))
        );
    }
    let _ = writeln!(report);
}

/// One concurrent-callers setup: what embeds, and how many callers share it.
struct Callers {
    label: String,
    embedder: Arc<dyn Embedder>,
    batcher: Option<Arc<BatchingEmbedder<FastembedEmbedder>>>,
    callers: usize,
}

fn concurrent(settings: &Settings, report: &mut String) {
    let texts = Arc::new(sentences(settings.concurrent_sentences));
    let _ = writeln!(report, "## Concurrent callers (one sentence per call)\n");
    let _ = writeln!(
        report,
        "{} sentences of the evaluation set shared among concurrent callers that each embed one \
         sentence at a time (`embed_one`), as requests in flight through the layer do; tokio \
         runtime with 2 worker threads. *Model alone*: every call is its own model run (how the \
         layer embedded before batching); *batched*: a `BatchingEmbedder` (as \
         `SemanticCacheSettings::build` makes, concurrency = sessions) embeds the calls that \
         arrive while the model is busy in one run. Latency is per call, queueing included.\n",
        texts.len()
    );
    let _ = writeln!(
        report,
        "| setup | callers | sentences/s | model runs | texts per run | call latency p50 / p99 |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for sessions in [1usize, 2] {
        let model = FastembedEmbedder::new(FastembedConfig::default().sessions(sessions))
            .expect("the model loads (run `cargo xtask fetch-assets`)");
        let mut setups = Vec::new();
        for callers in [1usize, 16, 64] {
            setups.push(Callers {
                label: format!("model alone, {sessions} session(s)"),
                embedder: Arc::new(model.clone()),
                batcher: None,
                callers,
            });
            for max_batch in [8usize, 32] {
                let batcher = Arc::new(
                    BatchingEmbedder::new(
                        model.clone(),
                        BatchConfig::new()
                            .max_batch(max_batch)
                            .concurrency(sessions),
                    )
                    .expect("valid"),
                );
                setups.push(Callers {
                    label: format!("batched (max {max_batch}), {sessions} session(s)"),
                    embedder: batcher.clone(),
                    batcher: Some(batcher),
                    callers,
                });
            }
        }
        for setup in setups {
            let (rate, mut latencies) = runtime.block_on(run_callers(
                Arc::clone(&setup.embedder),
                Arc::clone(&texts),
                setup.callers,
            ));
            latencies.sort();
            let (runs, per_run) = match &setup.batcher {
                Some(batcher) => {
                    let stats = batcher.stats();
                    (
                        stats.batches,
                        format!(
                            "{:.1} (max {})",
                            stats.texts as f64 / stats.batches.max(1) as f64,
                            stats.largest_batch
                        ),
                    )
                }
                None => (texts.len() as u64, "1".to_owned()),
            };
            let _ = writeln!(
                report,
                "| {} | {} | {rate:.0} | {runs} | {per_run} | {} / {} |",
                setup.label,
                setup.callers,
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99))
            );
        }
    }
    let _ = writeln!(report);
}

/// `callers` tasks share `texts`, each embedding one at a time; sentences per second and each
/// call's latency.
async fn run_callers(
    embedder: Arc<dyn Embedder>,
    texts: Arc<Vec<String>>,
    callers: usize,
) -> (f64, Vec<Duration>) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let embedder = Arc::clone(&embedder);
            let texts = Arc::clone(&texts);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(text) = texts.get(i) else {
                        break;
                    };
                    let started = Instant::now();
                    embedder.embed_one(text).await.expect("embeds");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(texts.len());
    for task in tasks {
        latencies.extend(task.await.expect("caller"));
    }
    (
        texts.len() as f64 / started.elapsed().as_secs_f64(),
        latencies,
    )
}

/// The record of the bench's entry `i`: a short question and a one-line answer.
fn record(i: usize) -> Record {
    let answer = r#"{"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"A short cached answer of about one line."},"finish_reason":"stop"}]}"#;
    Record {
        text: format!("question number {i} about some topic"),
        key: format!("v1:{i:064x}"),
        answer: answer.to_owned(),
        created: 0,
    }
}

fn persistence(settings: &Settings, report: &mut String) {
    let scope = Scope::from_digest([1; 32]);
    let mut generator = Clustered::new(settings.clusters);
    let points: Vec<Vec<f32>> = (0..settings.entries).map(|_| generator.point()).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = IndexConfig::new()
        .max_entries(settings.entries * 2)
        .background_builds(false)
        .directory(dir.path());
    let open = |config: IndexConfig| {
        let started = Instant::now();
        let index = HnswIndex::open(config, DIMS, "bench").expect("opens");
        (index, started.elapsed())
    };
    let (index, _) = open(config.clone());
    index
        .insert_batch(
            points
                .iter()
                .enumerate()
                .map(|(i, v)| (scope, v.clone(), record(i)))
                .collect(),
        )
        .expect("batch");
    // Inserts into another scope go on during the save: the longest one shows how long the
    // graph's write holds them up.
    let saving = std::sync::atomic::AtomicBool::new(true);
    let (save, longest_insert) = std::thread::scope(|threads| {
        let inserter = threads.spawn(|| {
            let mut generator = Clustered::new(10);
            let mut longest = Duration::ZERO;
            let mut i = 0;
            // Fewer than the graph threshold: that scope stays without a graph.
            while saving.load(std::sync::atomic::Ordering::Relaxed) && i < 1000 {
                let started = Instant::now();
                index
                    .insert_now(Scope::from_digest([2; 32]), generator.point(), record(i))
                    .expect("insert");
                longest = longest.max(started.elapsed());
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            longest
        });
        let started = Instant::now();
        index.save().expect("saved");
        let save = started.elapsed();
        saving.store(false, std::sync::atomic::Ordering::Relaxed);
        (save, inserter.join().expect("inserter"))
    });
    drop(index);
    let snapshot = dir.path().join("current");
    let size =
        |name: &str| std::fs::metadata(snapshot.join(name)).map_or(0.0, |m| m.len() as f64 / 1e6);
    let sizes = [
        ("entries.jsonl", size("entries.jsonl")),
        ("vectors.f32", size("vectors.f32")),
        ("graph-0.hnsw.graph", size("graph-0.hnsw.graph")),
        ("graph-0.hnsw.data", size("graph-0.hnsw.data")),
    ];

    let queries: Vec<Vec<f32>> = (0..settings.queries.min(500))
        .map(|_| generator.point())
        .collect();
    let recall = |index: &HnswIndex| {
        let agree = queries
            .iter()
            .filter(|query| {
                let exact = points
                    .iter()
                    .enumerate()
                    .max_by(|a, b| dot(query, a.1).total_cmp(&dot(query, b.1)))
                    .map(|(i, _)| record(i).key);
                index
                    .search_now(&scope, query, 4)
                    .first()
                    .map(|n| &n.entry.record.key)
                    == exact.as_ref()
            })
            .count();
        agree as f64 / queries.len() as f64
    };
    let (loaded, load_with_graph) = open(config.clone());
    let summary = loaded.load_summary().expect("loaded").clone();
    assert_eq!(summary.graphs_loaded, 1, "{summary:?}");
    let loaded_recall = recall(&loaded);
    drop(loaded);

    // The same save without its graph files: what every open did before graphs were saved.
    for name in ["graph-0.hnsw.graph", "graph-0.hnsw.data"] {
        std::fs::remove_file(snapshot.join(name)).expect("removed");
    }
    let (entries_only, load_entries) = open(config.clone().background_builds(true));
    // Let its background build finish before the next measurement.
    assert!(entries_only.wait_for_builds(Duration::from_secs(3600)));
    drop(entries_only);
    let (rebuilt, load_with_rebuild) = open(config);
    let summary = rebuilt.load_summary().expect("loaded").clone();
    assert_eq!(summary.graphs_rebuilt, 1, "{summary:?}");
    let rebuilt_recall = recall(&rebuilt);
    // Not saved again when dropped: nothing changed since the load.
    drop(rebuilt);

    let _ = writeln!(report, "## Saving and loading the index\n");
    let _ = writeln!(
        report,
        "The same {} clustered 384-dimensional entries in one scope, saved to a directory; then \
         opened three ways: with the saved graph, without it (its files deleted) returning at \
         once with the graph built in the background (searches exhaustive meanwhile), and \
         without it waiting for the rebuild (what every open cost before graphs were saved).\n",
        settings.entries
    );
    let _ = writeln!(report, "| measure | value |");
    let _ = writeln!(report, "|---|---|");
    let _ = writeln!(
        report,
        "| save (entries, vectors, graph, checksums, fsync) | {:.1} s |",
        save.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "| longest insert during the save (inserts wait only while entries and vectors are copied) | {} |",
        ms(longest_insert)
    );
    for (name, megabytes) in sizes {
        let _ = writeln!(report, "| `{name}` | {megabytes:.1} MB |");
    }
    let _ = writeln!(
        report,
        "| open, graph loaded (checksum and hnsw_rs reload included) | {:.1} s |",
        load_with_graph.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "| open without the graph, rebuilt in the background | {:.1} s (graph ready later) |",
        load_entries.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "| open without the graph, waiting for the rebuild | {:.1} s ({:.0} entries/s) |",
        load_with_rebuild.as_secs_f64(),
        settings.entries as f64 / load_with_rebuild.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "| recall@1 after loading / after rebuilding ({} queries) | {loaded_recall:.3} / {rebuilt_recall:.3} |",
        queries.len()
    );
    let _ = writeln!(report);
}

/// Clustered unit vectors: each a cluster centre plus noise, normalised.
struct Clustered {
    centres: Vec<Vec<f32>>,
    state: u64,
}

impl Clustered {
    fn new(clusters: usize) -> Self {
        let mut generator = Clustered {
            centres: Vec::new(),
            state: 0x9e37_79b9_7f4a_7c15,
        };
        generator.centres = (0..clusters).map(|_| generator.unit(1.0, None)).collect();
        generator
    }

    fn uniform(&mut self) -> f32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    }

    fn unit(&mut self, noise: f32, centre: Option<usize>) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIMS)
            .map(|i| centre.map_or(0.0, |c| self.centres[c][i]) + noise * self.uniform() * 0.1)
            .collect();
        normalise(&mut v);
        v
    }

    fn point(&mut self) -> Vec<f32> {
        let centre =
            (self.uniform().abs() * self.centres.len() as f32) as usize % self.centres.len();
        self.unit(0.45, Some(centre))
    }
}

fn index(settings: &Settings, report: &mut String) {
    let scope = Scope::from_digest([1; 32]);
    let mut generator = Clustered::new(settings.clusters);
    let points: Vec<Vec<f32>> = (0..settings.entries).map(|_| generator.point()).collect();
    let rss_before = resident_bytes();
    let index = HnswIndex::new(
        IndexConfig::new()
            .max_entries(settings.entries * 2)
            .background_builds(false),
        DIMS,
        "bench",
    )
    .expect("index");
    let started = Instant::now();
    index
        .insert_batch(
            points
                .iter()
                .enumerate()
                .map(|(i, v)| (scope, v.clone(), record(i)))
                .collect(),
        )
        .expect("batch");
    let load = started.elapsed();
    let rss_after = resident_bytes();
    let queries: Vec<Vec<f32>> = (0..settings.queries).map(|_| generator.point()).collect();
    let mut latencies = Vec::with_capacity(queries.len());
    let mut agree = 0;
    for query in &queries {
        let started = Instant::now();
        let found = index.search_now(&scope, query, 4);
        latencies.push(started.elapsed());
        let exact = points
            .iter()
            .enumerate()
            .max_by(|a, b| dot(query, a.1).total_cmp(&dot(query, b.1)))
            .map(|(i, _)| record(i).key);
        if found.first().map(|n| &n.entry.record.key) == exact.as_ref() {
            agree += 1;
        }
    }
    latencies.sort();
    let brute_started = Instant::now();
    for query in queries.iter().take(20) {
        let best = points
            .iter()
            .map(|p| dot(query, p))
            .fold(f32::MIN, f32::max);
        std::hint::black_box(best);
    }
    let brute = brute_started.elapsed() / 20;
    let started = Instant::now();
    for i in 0..settings.inserts {
        index
            .insert_now(scope, generator.point(), record(settings.entries + i))
            .expect("insert");
    }
    let insert_rate = settings.inserts as f64 / started.elapsed().as_secs_f64();
    let per_entry = rss_after.saturating_sub(rss_before) as f64 / settings.entries as f64;

    let _ = writeln!(
        report,
        "## Index (hnsw_rs, m 16, ef_construction 64, ef_search 128)\n"
    );
    let _ = writeln!(
        report,
        "{} clustered 384-dimensional entries in one scope; {} lookups of fresh vectors (k = 4, \
         embedding excluded); {} single inserts into the full index.\n",
        settings.entries, settings.queries, settings.inserts
    );
    let _ = writeln!(
        report,
        "Targets: lookup p99 <= 2 ms at 100,000 entries (embedding excluded), recall@1 >= 0.97.\n"
    );
    let _ = writeln!(report, "| measure | value |");
    let _ = writeln!(report, "|---|---|");
    let _ = writeln!(
        report,
        "| lookup p50 | {} |",
        ms(percentile(&latencies, 0.5))
    );
    let _ = writeln!(
        report,
        "| lookup p99 | {} |",
        ms(percentile(&latencies, 0.99))
    );
    let _ = writeln!(
        report,
        "| lookup max | {} |",
        ms(percentile(&latencies, 1.0))
    );
    let _ = writeln!(
        report,
        "| exhaustive search of the same scope, for comparison | {} |",
        ms(brute)
    );
    let _ = writeln!(
        report,
        "| recall@1 against exhaustive search | {:.3} ({agree}/{}) |",
        agree as f64 / settings.queries as f64,
        settings.queries
    );
    let _ = writeln!(
        report,
        "| single inserts into the full index | {insert_rate:.0}/s |"
    );
    let _ = writeln!(
        report,
        "| bulk load (`insert_batch`, graph built on every core) | {:.1} s ({:.0} entries/s) |",
        load.as_secs_f64(),
        settings.entries as f64 / load.as_secs_f64()
    );
    let _ = writeln!(
        report,
        "| resident memory per entry (vector twice: ours and hnsw_rs's; graph links; record) | {:.0} bytes |",
        per_entry
    );
    let _ = writeln!(report);
}

fn evaluation(report: &mut String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval-pairs.jsonl");
    let pairs = load_pairs(&path).expect("pairs");
    let embedder = FastembedEmbedder::from_default_assets().expect("model");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let scored = runtime
        .block_on(score_pairs(&embedder, &pairs, &FalseHitGuard::new()))
        .expect("scored");
    let _ = writeln!(report, "## Precision and recall on the evaluation set\n");
    let _ = writeln!(
        report,
        "{} labelled pairs (`crates/lbgpt-semantic/data/eval-pairs.jsonl`); the full table per \
         threshold is in [semantic-cache.md](semantic-cache.md) (`cargo xtask semantic-eval`).\n",
        pairs.len()
    );
    let _ = writeln!(
        report,
        "| threshold | guard | precision | recall | wrong answers served |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|");
    for threshold in [0.80, SemanticConfig::DEFAULT_THRESHOLD, 0.90] {
        for guard in [false, true] {
            let m = measure(&scored, threshold, guard);
            let _ = writeln!(
                report,
                "| {threshold:.2}{} | {} | {:.3} | {:.3} | {} |",
                if threshold == SemanticConfig::DEFAULT_THRESHOLD {
                    " (default)"
                } else {
                    ""
                },
                if guard { "on" } else { "off" },
                m.precision,
                m.recall,
                m.wrong
            );
        }
    }
    let _ = writeln!(report);
    let _ = Embedder::dimensions(&embedder);
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
