//! Hit latency and throughput of the exact cache, per store.
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
//! `cargo bench -p lbgpt-cache --bench hits` runs it in full and writes
//! `docs/benchmarks-cache.md` (or the file named by `LBGPT_BENCH_CACHE_REPORT`). Under
//! `cargo test` it runs a small smoke round and writes nothing.

use lbgpt_cache::{CacheConfig, CacheLayer, CacheStore, DiskStore, MemoryStore};
use lbgpt_core::{CacheStatus, ChatMessage, ChatRequest};
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

struct Settings {
    /// Distinct requests (all cached before measuring).
    distinct: usize,
    /// Measured hits per store for the latency figures.
    latency_hits: usize,
    /// Hits per store for the throughput figure.
    throughput_hits: usize,
    concurrency: usize,
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

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let settings = if full {
        Settings {
            distinct: 1_000,
            latency_hits: 100_000,
            throughput_hits: 200_000,
            concurrency: 64,
        }
    } else {
        Settings {
            distinct: 20,
            latency_hits: 200,
            throughput_hits: 640,
            concurrency: 64,
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
    rows.push(measure_store(
        "memory",
        Arc::new(MemoryStore::new()),
        &sim_url,
        &settings,
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    rows.push(measure_store(
        "disk",
        Arc::new(DiskStore::open(dir.path()).expect("disk store")),
        &sim_url,
        &settings,
    ));
    let redis = RedisChild::start();
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
        None => eprintln!("hits: redis-server not available; the Redis row is skipped"),
    }
    let key = key_cost(&settings);
    let upstream = sim.stats().requests;

    let mut table = String::from(
        "| store | hit p50 (us) | hit p99 (us) | hit max (us) | hit mean (us) | hits/s (64 in flight, 2 workers) |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for row in &rows {
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
    println!("{table}");
    println!("key derivation alone: p50 {} us", us(key));
    println!(
        "upstream calls: {upstream} ({} distinct requests x {} stores)",
        settings.distinct,
        rows.len()
    );
    assert_eq!(
        upstream as usize,
        settings.distinct * rows.len(),
        "hits never reach the simulator"
    );

    if full {
        let path = std::env::var_os("LBGPT_BENCH_CACHE_REPORT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks-cache.md")
            });
        let answer_bytes = rows.first().map_or(0, |row| row.answer_bytes);
        let report = report(&table, key, &settings, redis.is_some(), answer_bytes);
        std::fs::write(&path, report).expect("write the report");
        println!("wrote {}", path.display());
    }
    drop(redis);
    sim_runtime.block_on(sim.shutdown());
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
