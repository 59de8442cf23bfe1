//! Hit latency and throughput of the exact cache, per store, and of the embedding cache.
//!
//! A [`CacheLayer`] wraps the real OpenAI service on the in-process simulator. A set of
//! distinct requests is answered once (misses, stored), then the same requests are sent
//! again and every one is a hit; the benchmark measures:
//!
//! - **hit latency**: one request at a time on a current-thread runtime, from `call` to the
//!   answer (key derivation, store lookup, decoding the stored JSON, metadata), p50/p99/max;
//! - **throughput**: hits per second with 64 requests in flight on a two-worker runtime;
//! - the cost of deriving the key alone, for reference.
//!
//! Stores: memory (moka), disk (a temporary directory; reads come from the page cache),
//! Redis (a `redis-server` started on a free loopback port; skipped when not installed).
//!
//! The embedding case measures the same for an [`EmbeddingCacheLayer`] on the memory store:
//! requests of [`EMBEDDING_INPUTS`] inputs of [`EMBEDDING_DIMENSIONS`] dimensions, every input
//! already cached (16 keys, one batch lookup, 16 stored vectors decoded and put together),
//! and the cost of its parts alone: deriving the keys, the lookup, decoding one vector.
//!
//! Cases are named `chat/memory`, `chat/disk`, `chat/redis` and `embeddings/memory`;
//! `cargo bench -p lbgpt-cache --bench hits -- <filter>` runs those whose name contains the
//! filter and prints their figures. Without a filter, `cargo bench -p lbgpt-cache --bench
//! hits` runs every case and writes `docs/benchmarks-cache.md` (or the file named by
//! `LBGPT_BENCH_CACHE_REPORT`). Under `cargo test` it runs a small smoke round and writes
//! nothing.

use lbgpt_cache::{
    CacheConfig, CacheLayer, CacheStore, DiskStore, EmbeddingCacheLayer, MemoryStore,
};
use lbgpt_core::{CacheStatus, ChatMessage, ChatRequest, EmbeddingRequest};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{Layer, Service, ServiceExt};

const KEY: &str = "sk-bench-cache";

/// Inputs per embedding request.
const EMBEDDING_INPUTS: usize = 16;

/// Dimensions of every embedding (text-embedding-3-small's full size).
const EMBEDDING_DIMENSIONS: u32 = 1536;

struct Settings {
    /// Distinct requests (all cached before measuring).
    distinct: usize,
    /// Measured hits per store for the latency figures.
    latency_hits: usize,
    /// Hits per store for the throughput figure.
    throughput_hits: usize,
    concurrency: usize,
    /// Distinct embedding requests (of [`EMBEDDING_INPUTS`] distinct inputs each).
    embedding_requests: usize,
    /// Measured all-hit embedding requests for the latency figures.
    embedding_latency_hits: usize,
    /// All-hit embedding requests for the throughput figure.
    embedding_throughput_hits: usize,
}

struct Row {
    store: &'static str,
    p50: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
    per_second: f64,
    /// Size of one stored answer (its wire JSON).
    answer_bytes: usize,
}

fn requests(count: usize) -> Vec<ChatRequest> {
    (0..count)
        .map(|i| {
            ChatRequest::new(
                "gpt-4o-mini",
                vec![
                    ChatMessage::system("You are a terse assistant. Answer in one sentence."),
                    ChatMessage::user(format!(
                        "Summarise item number {i} of the catalogue in at most twelve words, \
                         naming its category and its price range."
                    )),
                ],
            )
            .max_tokens(64)
            .temperature(0.2)
        })
        .collect()
}

/// `count` embedding requests of [`EMBEDDING_INPUTS`] distinct inputs each (no input in two
/// requests).
fn embedding_requests(count: usize) -> Vec<EmbeddingRequest> {
    (0..count)
        .map(|i| {
            let inputs: Vec<String> = (0..EMBEDDING_INPUTS)
                .map(|j| {
                    format!(
                        "Catalogue item {i}-{j}: a sturdy everyday product, described in about \
                         twenty words for the search index."
                    )
                })
                .collect();
            EmbeddingRequest::new("text-embedding-3-small", inputs).dimensions(EMBEDDING_DIMENSIONS)
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Warms the store with every request, then measures hits.
fn measure_store(
    name: &'static str,
    store: Arc<dyn CacheStore>,
    sim_url: &str,
    settings: &Settings,
) -> Row {
    let provider = OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(sim_url)
            .no_proxy(),
    )
    .expect("provider");
    let layer = CacheLayer::with_config(store, CacheConfig::new().namespace("bench"));
    let service = layer.layer(provider);
    let requests = requests(settings.distinct);

    // Latency: one at a time on a current-thread runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut answer_bytes = 0;
    let latencies = runtime.block_on(async {
        let mut service = service.clone();
        for request in &requests {
            // `Cache` serves chat and completions: name the request type to get ready for.
            let response = ServiceExt::<ChatRequest>::ready(&mut service)
                .await
                .expect("ready")
                .call(request.clone())
                .await
                .expect("warm-up answer");
            answer_bytes = serde_json::to_vec(&response).expect("json").len();
        }
        let mut latencies = Vec::with_capacity(settings.latency_hits);
        for i in 0..settings.latency_hits {
            let request = requests[i % requests.len()].clone();
            let service = ServiceExt::<ChatRequest>::ready(&mut service)
                .await
                .expect("ready");
            let started = Instant::now();
            let response = service.call(request).await.expect("hit");
            latencies.push(started.elapsed());
            assert_eq!(response.meta.cache, CacheStatus::Exact, "{name}: a miss");
        }
        latencies
    });
    drop(runtime);

    // Throughput: `concurrency` tasks on two workers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let elapsed = runtime.block_on(async {
        let requests = Arc::new(requests);
        let per_task = settings.throughput_hits / settings.concurrency;
        let started = Instant::now();
        let tasks: Vec<_> = (0..settings.concurrency)
            .map(|task| {
                let service = service.clone();
                let requests = Arc::clone(&requests);
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let request = requests[(task * per_task + i) % requests.len()].clone();
                        let response = service.clone().oneshot(request).await.expect("hit");
                        assert_eq!(response.meta.cache, CacheStatus::Exact);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        started.elapsed()
    });
    let hits = (settings.throughput_hits / settings.concurrency) * settings.concurrency;
    let stats = layer.stats();
    assert_eq!(
        stats.misses as usize, settings.distinct,
        "{name}: {stats:?}"
    );
    assert_eq!(stats.errors, 0, "{name}: {stats:?}");

    let mut sorted = latencies;
    sorted.sort_unstable();
    let mean = sorted.iter().sum::<Duration>() / sorted.len() as u32;
    Row {
        store: name,
        p50: percentile(&sorted, 0.50),
        p99: percentile(&sorted, 0.99),
        max: sorted[sorted.len() - 1],
        mean,
        per_second: hits as f64 / elapsed.as_secs_f64(),
        answer_bytes,
    }
}

/// The embedding case's figures: the all-hit requests, and the p50 of their parts alone.
struct EmbeddingFigures {
    row: Row,
    /// Deriving the keys of one request (all its inputs).
    keys: Duration,
    /// One `get_many` of one request's keys on the memory store.
    lookup: Duration,
    /// Decoding one stored vector (`embedding_entry::decode`).
    decode: Duration,
}

/// Warms a memory store with every embedding request, then measures all-hit requests; also
/// the p50 of deriving one request's keys, of looking them up, and of decoding one stored
/// vector, each alone.
fn measure_embeddings(sim_url: &str, settings: &Settings) -> EmbeddingFigures {
    let provider = OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(sim_url)
            .no_proxy(),
    )
    .expect("provider");
    let layer = EmbeddingCacheLayer::with_config(
        Arc::new(MemoryStore::new()),
        CacheConfig::new().namespace("bench"),
    );
    let service = layer.layer(provider);
    let requests = embedding_requests(settings.embedding_requests);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (latencies, lookups, entry) = runtime.block_on(async {
        let mut service = service.clone();
        for request in &requests {
            let response = ServiceExt::<EmbeddingRequest>::ready(&mut service)
                .await
                .expect("ready")
                .call(request.clone())
                .await
                .expect("warm-up answer");
            assert_eq!(response.meta.cache, CacheStatus::Miss);
        }
        let first_key = layer.keys_for(&requests[0])[0];
        let entry = layer
            .store()
            .get(&first_key)
            .await
            .expect("store")
            .expect("stored vector");
        let mut latencies = Vec::with_capacity(settings.embedding_latency_hits);
        for i in 0..settings.embedding_latency_hits {
            let request = requests[i % requests.len()].clone();
            let service = ServiceExt::<EmbeddingRequest>::ready(&mut service)
                .await
                .expect("ready");
            let started = Instant::now();
            let response = service.call(request).await.expect("hit");
            latencies.push(started.elapsed());
            assert_eq!(
                response.meta.cache,
                CacheStatus::Exact,
                "embeddings: a miss"
            );
            assert_eq!(response.data.len(), EMBEDDING_INPUTS);
        }
        let all_keys: Vec<Vec<lbgpt_cache::CacheKey>> = requests
            .iter()
            .map(|request| layer.keys_for(request))
            .collect();
        let mut lookups = Vec::with_capacity(settings.embedding_latency_hits);
        for i in 0..settings.embedding_latency_hits {
            let keys = &all_keys[i % all_keys.len()];
            let started = Instant::now();
            let found = layer.store().get_many(keys).await;
            lookups.push(started.elapsed());
            assert!(found.iter().all(|value| matches!(value, Ok(Some(_)))));
        }
        (latencies, lookups, entry)
    });
    drop(runtime);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let per_task = settings.embedding_throughput_hits / settings.concurrency;
    let elapsed = runtime.block_on(async {
        let requests = Arc::new(requests.clone());
        let started = Instant::now();
        let tasks: Vec<_> = (0..settings.concurrency)
            .map(|task| {
                let service = service.clone();
                let requests = Arc::clone(&requests);
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let request = requests[(task * per_task + i) % requests.len()].clone();
                        let response = service.clone().oneshot(request).await.expect("hit");
                        assert_eq!(response.meta.cache, CacheStatus::Exact);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        started.elapsed()
    });
    let stats = layer.stats();
    assert_eq!(
        stats.misses as usize,
        settings.embedding_requests * EMBEDDING_INPUTS,
        "embeddings: {stats:?}"
    );
    assert_eq!(stats.errors, 0, "embeddings: {stats:?}");

    let mut decode_times: Vec<Duration> = (0..settings.embedding_latency_hits)
        .map(|_| {
            let started = Instant::now();
            let decoded = lbgpt_cache::embedding_entry::decode(&entry).expect("a stored vector");
            let elapsed = started.elapsed();
            assert_eq!(decoded.data.len(), 1);
            elapsed
        })
        .collect();
    decode_times.sort_unstable();
    let mut key_times: Vec<Duration> = (0..settings.embedding_latency_hits)
        .map(|i| {
            let request = &requests[i % requests.len()];
            let started = Instant::now();
            let keys = layer.keys_for(request);
            let elapsed = started.elapsed();
            assert_eq!(keys.len(), EMBEDDING_INPUTS);
            elapsed
        })
        .collect();
    key_times.sort_unstable();
    let mut lookups = lookups;
    lookups.sort_unstable();

    let mut sorted = latencies;
    sorted.sort_unstable();
    let mean = sorted.iter().sum::<Duration>() / sorted.len() as u32;
    let row = Row {
        store: "memory",
        p50: percentile(&sorted, 0.50),
        p99: percentile(&sorted, 0.99),
        max: sorted[sorted.len() - 1],
        mean,
        per_second: (per_task * settings.concurrency) as f64 / elapsed.as_secs_f64(),
        answer_bytes: entry.len(),
    };
    EmbeddingFigures {
        row,
        keys: percentile(&key_times, 0.5),
        lookup: percentile(&lookups, 0.5),
        decode: percentile(&decode_times, 0.5),
    }
}

/// The cost of deriving a key alone (p50 over the requests).
fn key_cost(settings: &Settings) -> Duration {
    let config = CacheConfig::new().namespace("bench");
    let requests = requests(settings.distinct);
    let mut times: Vec<Duration> = (0..settings.latency_hits.min(100_000))
        .map(|i| {
            let started = Instant::now();
            let key = config.key_for(&requests[i % requests.len()]);
            let elapsed = started.elapsed();
            assert!(key.is_some());
            elapsed
        })
        .collect();
    times.sort_unstable();
    percentile(&times, 0.5)
}

/// A `redis-server` on a free loopback port, killed on drop.
struct RedisChild {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisChild {
    fn start() -> Option<RedisChild> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let dir = tempfile::tempdir().ok()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisChild {
            child,
            port,
            _dir: dir,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }
}

impl Drop for RedisChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

/// The cases whose name contains the filter (every case without one).
struct Selection {
    filter: Option<String>,
}

impl Selection {
    fn runs(&self, case: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|filter| case.contains(filter))
    }
}

fn table_of(rows: &[Row], what: &str) -> String {
    let mut table = format!(
        "| store | hit p50 (us) | hit p99 (us) | hit max (us) | hit mean (us) | {what}/s (64 in flight, 2 workers) |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {:.0} |",
            row.store,
            us(row.p50),
            us(row.p99),
            us(row.max),
            us(row.mean),
            row.per_second
        );
    }
    table
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // `cargo bench -- <filter>` passes the filter after `--bench`.
    let selection = Selection {
        filter: std::env::args().skip(1).find(|a| !a.starts_with('-')),
    };
    let settings = if full {
        Settings {
            distinct: 1_000,
            latency_hits: 100_000,
            throughput_hits: 200_000,
            concurrency: 64,
            embedding_requests: 100,
            embedding_latency_hits: 10_000,
            embedding_throughput_hits: 20_032,
        }
    } else {
        Settings {
            distinct: 20,
            latency_hits: 200,
            throughput_hits: 640,
            concurrency: 64,
            embedding_requests: 4,
            embedding_latency_hits: 40,
            embedding_throughput_hits: 128,
        }
    };

    // The simulator runs on its own runtime and thread for the whole benchmark.
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("sim runtime");
    let sim = sim_runtime
        .block_on(Simulator::start(SimConfig::new().key(KeyConfig::new(KEY))))
        .expect("simulator");
    let sim_url = sim.base_url();

    let mut rows = Vec::new();
    if selection.runs("chat/memory") {
        rows.push(measure_store(
            "memory",
            Arc::new(MemoryStore::new()),
            &sim_url,
            &settings,
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    if selection.runs("chat/disk") {
        rows.push(measure_store(
            "disk",
            Arc::new(DiskStore::open(dir.path()).expect("disk store")),
            &sim_url,
            &settings,
        ));
    }
    let redis = if selection.runs("chat/redis") {
        RedisChild::start()
    } else {
        None
    };
    match &redis {
        Some(server) => {
            let store = sim_runtime
                .block_on(
                    lbgpt_cache::RedisStore::builder(format!("redis://127.0.0.1:{}/", server.port))
                        .connect(),
                )
                .expect("redis store");
            // The store's connection lives on the simulator's runtime; the benchmark's own
            // runtimes use it through the multiplexed connection.
            rows.push(measure_store("redis", Arc::new(store), &sim_url, &settings));
        }
        None if selection.runs("chat/redis") => {
            eprintln!("hits: redis-server not available; the Redis row is skipped")
        }
        None => {}
    }
    let measured = selection
        .runs("embeddings/memory")
        .then(|| measure_embeddings(&sim_url, &settings));
    let embeddings = measured.as_ref().map(|figures| &figures.row);
    let key = (!rows.is_empty()).then(|| key_cost(&settings));
    let upstream = sim.stats().requests;

    let table = table_of(&rows, "hits");
    if !rows.is_empty() {
        println!("chat:\n{table}");
    }
    if let Some(key) = key {
        println!("key derivation alone: p50 {} us", us(key));
    }
    let embedding_table = embeddings
        .as_ref()
        .map(|row| table_of(std::slice::from_ref(*row), "requests"));
    if let (Some(figures), Some(table)) = (&measured, &embedding_table) {
        println!(
            "embeddings ({EMBEDDING_INPUTS} inputs of {EMBEDDING_DIMENSIONS} dimensions per \
             request, every input a hit; one stored vector is {} bytes):\n{table}",
            figures.row.answer_bytes
        );
        println!(
            "per input: p50 {} us; alone (p50): {EMBEDDING_INPUTS} keys {} us, one get_many \
             of {EMBEDDING_INPUTS} keys {} us, decoding one stored vector {} us",
            us(figures.row.p50 / EMBEDDING_INPUTS as u32),
            us(figures.keys),
            us(figures.lookup),
            us(figures.decode)
        );
    }
    let embedding_calls = if embeddings.is_some() {
        settings.embedding_requests
    } else {
        0
    };
    println!(
        "upstream calls: {upstream} ({} distinct chat requests x {} stores + {embedding_calls} \
         embedding requests)",
        settings.distinct,
        rows.len()
    );
    assert_eq!(
        upstream as usize,
        settings.distinct * rows.len() + embedding_calls,
        "hits never reach the simulator"
    );

    match (full, &selection.filter, key, &measured, &embedding_table) {
        (true, None, Some(key), Some(figures), Some(embedding_table)) => {
            let path = std::env::var_os("LBGPT_BENCH_CACHE_REPORT")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks-cache.md")
                });
            let answer_bytes = rows.first().map_or(0, |row| row.answer_bytes);
            let mut report = report(&table, key, &settings, redis.is_some(), answer_bytes);
            report.push_str(&embedding_report(embedding_table, figures, &settings));
            // Hand-written history (before/after figures) below the generated part is kept.
            if let Ok(old) = std::fs::read_to_string(&path) {
                if let Some(at) = old.find(HISTORY_HEADING) {
                    report.push('\n');
                    report.push_str(&old[at..]);
                }
            }
            std::fs::write(&path, report).expect("write the report");
            println!("wrote {}", path.display());
        }
        (true, Some(filter), ..) => {
            println!("filtered run ({filter:?}): the report was not written");
        }
        _ => {}
    }
    drop(redis);
    sim_runtime.block_on(sim.shutdown());
}

/// The heading of the hand-written part of the report, kept when the report is rewritten.
const HISTORY_HEADING: &str = "## History";

fn embedding_report(table: &str, figures: &EmbeddingFigures, settings: &Settings) -> String {
    let row = &figures.row;
    format!(
        "\n## Embedding cache\n\n\
         An `EmbeddingCacheLayer` (namespace `bench`, memory store) wraps the same service. \
         {requests} requests of {inputs} distinct inputs each ({dimensions} dimensions, floats; \
         one stored vector is an entry of {entry_bytes} bytes: format version 2, the floats as \
         little-endian bytes) are answered once and each input stored; then every measured \
         request is an **all-hit request of {inputs} inputs**: {inputs} keys derived, one batch \
         lookup of them (`CacheStore::get_many`), {inputs} stored vectors decoded and put \
         together in input order, no upstream call. Latency: {latency} requests one at a time \
         on a current-thread runtime; throughput: {throughput} requests with {concurrency} in \
         flight on a two-worker runtime.\n\n\
         {table}\n\
         Per input, the p50 request costs {per_input} us. Alone (p50): deriving the {inputs} \
         keys of a request costs {keys} us, one `get_many` of them on the memory store \
         {lookup} us, decoding one stored vector (`embedding_entry::decode`) {decode} us \
         ({inputs} of them {decode_all} us).\n",
        requests = settings.embedding_requests,
        inputs = EMBEDDING_INPUTS,
        dimensions = EMBEDDING_DIMENSIONS,
        entry_bytes = row.answer_bytes,
        latency = settings.embedding_latency_hits,
        throughput =
            (settings.embedding_throughput_hits / settings.concurrency) * settings.concurrency,
        concurrency = settings.concurrency,
        per_input = us(row.p50 / EMBEDDING_INPUTS as u32),
        keys = us(figures.keys),
        lookup = us(figures.lookup),
        decode = us(figures.decode),
        decode_all = us(figures.decode * EMBEDDING_INPUTS as u32),
    )
}

fn report(
    table: &str,
    key: Duration,
    settings: &Settings,
    redis: bool,
    answer_bytes: usize,
) -> String {
    format!(
        "# Exact cache benchmark\n\n\
         Written by `cargo bench -p lbgpt-cache --bench hits` (the benchmark is \
         `crates/lbgpt-cache/benches/hits.rs`); re-run it to update this page.\n\n\
         A `CacheLayer` (namespace `bench`) wraps the real `OpenAiService` on the in-process \
         simulator. {distinct} distinct chat requests (system + user message, `max_tokens`, \
         `temperature`; each answer is {answer_bytes} bytes of JSON) are answered once and stored; then \
         every measured request is a hit. **Hit latency** is one request at a time on a \
         current-thread Tokio runtime, from `Service::call` to the answer: key derivation \
         (canonical JSON + SHA-256), the store lookup, decoding the stored JSON and setting the \
         metadata ({latency} hits per store). **Throughput** is {throughput} hits with \
         {concurrency} requests in flight on a two-worker runtime. The machine has 2 cores; the \
         simulator shares them.\n\n\
         {table}\n\
         Deriving the key alone costs {key} us (p50).\n\n\
         Targets: memory hit p50 <= 5 us, disk <= 100 us, Redis on loopback <= 500 us.\n\n\
         Notes:\n\
         - disk: every lookup reads one file (`open` + `read`, from the page cache here) and \
         checks its SHA-256 on tokio's blocking pool; a cold read from the device adds its \
         latency.\n\
         - redis: one `GET` round trip over loopback on a multiplexed connection{redis_note}.\n",
        distinct = settings.distinct,
        answer_bytes = answer_bytes,
        latency = settings.latency_hits,
        throughput = settings.throughput_hits,
        concurrency = settings.concurrency,
        key = us(key),
        redis_note = if redis {
            ""
        } else {
            " (not measured: redis-server was not installed)"
        },
    )
}
