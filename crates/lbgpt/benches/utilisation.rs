//! How much of several providers' combined quota the balancer uses, and what it costs per
//! request.
//!
//! **Utilisation.** Three simulated providers with different RPM/TPM limits, each enforcing
//! them its own way (a token bucket like OpenAI, 10 s windows like Azure, a sliding 60 s
//! window), one of them counting prompt tokens 20 % above our tokenizer. A batch sized for
//! about two minutes of their combined capacity goes through a [`BalancedGpt`] with the max
//! headroom strategy and the limits configured. Reported: requests/min and tokens/min as a
//! fraction of what the limits allow, the 429s the simulator sent, failed requests.
//!
//! **CPU overhead.** The same requests through `ChatGpt` (retry layer over one provider) and
//! through `BalancedGpt` (retry layer over the balancer), on an in-process simulator without
//! latency or limits. The client runs alone on a current-thread runtime in its own thread, whose
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`) is the client's work, as in `benches/overhead.rs`.
//!
//! `cargo xtask bench` runs it (`cargo bench -p lbgpt --bench utilisation`) and writes
//! `docs/benchmarks-utilisation.md`. Under `cargo test` it runs a smoke round of a second or two.

#[path = "support/cpu.rs"]
mod cpu;

use cpu::{measure, Sample};
use lbgpt::openai::OpenAiConfig;
use lbgpt::{BalancedGpt, ChatGpt, ChatMessage, ChatRequest, Provider, Strategy};
use lbgpt_sim::{KeyConfig, Latency, LimitMode, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// One simulated provider.
struct MemberSpec {
    name: &'static str,
    key: &'static str,
    rpm: u64,
    tpm: u64,
    mode: LimitMode,
    enforcement: &'static str,
    /// How many prompt tokens the simulator counts per token of our estimate.
    token_factor: f64,
}

/// The three providers; the smoke round scales the limits up so that nothing waits.
fn member_specs(scale: u64) -> Vec<MemberSpec> {
    vec![
        MemberSpec {
            name: "openai-bucket",
            key: "sk-bench-bucket",
            rpm: 600 * scale,
            tpm: 60_000 * scale,
            mode: LimitMode::token_bucket(),
            enforcement: "token bucket (OpenAI-like)",
            token_factor: 1.0,
        },
        MemberSpec {
            name: "azure-windows",
            key: "sk-bench-windows",
            rpm: 300 * scale,
            tpm: 90_000 * scale,
            mode: LimitMode::short_windows(),
            enforcement: "10 s windows, limit/6 each (Azure-like)",
            token_factor: 1.0,
        },
        MemberSpec {
            name: "compat-sliding",
            key: "sk-bench-sliding",
            rpm: 1_200 * scale,
            tpm: 30_000 * scale,
            mode: LimitMode::sliding_window(Duration::from_secs(60)),
            enforcement: "sliding 60 s window, prompt counted x1.2",
            token_factor: 1.2,
        },
    ]
}

const MODEL: &str = "gpt-4o-mini";
const MAX_TOKENS: u32 = 100;

fn request(i: usize) -> ChatRequest {
    ChatRequest::new(
        MODEL,
        vec![
            ChatMessage::system("You are a terse assistant."),
            ChatMessage::user(format!(
                "Summarise item number {i:06} of the quarterly report in five words."
            )),
        ],
    )
    .max_tokens(MAX_TOKENS)
}

/// What the simulator charges `spec` for `request` at arrival: prompt tokens (scaled by the
/// key's factor) plus the completion budget.
fn charged_tokens(spec: &MemberSpec, request: &ChatRequest) -> u64 {
    let approx = lbgpt::tokens::approx_prompt_tokens(request);
    let prompt = if spec.token_factor == 1.0 {
        approx
    } else {
        (approx as f64 * spec.token_factor).round() as u64
    };
    prompt + u64::from(MAX_TOKENS)
}

/// A member's capacity in requests per minute: the tighter of its RPM and its TPM divided by
/// the tokens one request is charged.
fn capacity_per_minute(spec: &MemberSpec) -> f64 {
    let tokens = charged_tokens(spec, &request(0)) as f64;
    (spec.rpm as f64).min(spec.tpm as f64 / tokens)
}

struct Options {
    full: bool,
    minutes: f64,
    concurrency: usize,
    overhead_requests: usize,
    overhead_rounds: usize,
    skip_utilisation: bool,
    skip_overhead: bool,
}

fn parse_options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let mut options = Options {
        full,
        minutes: 2.0,
        concurrency: 64,
        overhead_requests: if full { 10_000 } else { 100 },
        overhead_rounds: if full { 5 } else { 1 },
        skip_utilisation: args.iter().any(|a| a == "--skip-utilisation"),
        skip_overhead: args.iter().any(|a| a == "--skip-overhead"),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = iter.clone().next();
        match arg.as_str() {
            "--minutes" => {
                if let Some(v) = value.and_then(|v| v.parse().ok()) {
                    options.minutes = v;
                }
            }
            "--concurrency" => {
                if let Some(v) = value.and_then(|v| v.parse().ok()) {
                    options.concurrency = v;
                }
            }
            "--overhead-requests" => {
                if let Some(v) = value.and_then(|v| v.parse().ok()) {
                    options.overhead_requests = v;
                }
            }
            "--overhead-rounds" => {
                if let Some(v) = value.and_then(|v| v.parse().ok()) {
                    options.overhead_rounds = v;
                }
            }
            _ => {}
        }
    }
    options
}

/// What one utilisation run measured.
struct Utilisation {
    requests: usize,
    failed: usize,
    first_error: Option<String>,
    elapsed: Duration,
    per_member: BTreeMap<String, MemberOutcome>,
    upstream_calls: u64,
    sim_429s: u64,
    capacity_per_minute: f64,
    combined_rpm: u64,
    combined_tpm: u64,
    charged_tokens: u64,
    stats_table: String,
}

#[derive(Default)]
struct MemberOutcome {
    answered: u64,
    charged_tokens: u64,
}

fn utilisation(options: &Options) -> Utilisation {
    let scale = if options.full { 1 } else { 100 };
    let specs = member_specs(scale);
    let capacity: f64 = specs.iter().map(capacity_per_minute).sum();
    let count = if options.full {
        (capacity * options.minutes).round() as usize
    } else {
        60
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut config = SimConfig::new()
            .latency(Latency::fixed(Duration::from_millis(20)))
            .seen_capacity(0);
        for spec in &specs {
            config = config.key(
                KeyConfig::new(spec.key)
                    .name(spec.name)
                    .rpm(spec.rpm)
                    .tpm(spec.tpm)
                    .limit_mode(spec.mode)
                    .token_factor(spec.token_factor),
            );
        }
        let sim = Simulator::start(config).await.expect("simulator starts");
        let mut builder = BalancedGpt::builder()
            .strategy(Strategy::MaxHeadroom)
            .max_concurrent_requests(options.concurrency)
            .max_wait(Duration::from_secs(120));
        for spec in &specs {
            builder = builder.provider(
                Provider::openai(
                    OpenAiConfig::new()
                        .api_key(spec.key)
                        .base_url(sim.base_url())
                        .name(spec.name)
                        .no_proxy(),
                )
                .rpm(spec.rpm)
                .tpm(spec.tpm),
            );
        }
        let gpt = builder.build().expect("balanced client");

        let started = Instant::now();
        let results = gpt.chat_completion_list((0..count).map(request)).await;
        let elapsed = started.elapsed();

        let mut outcome = Utilisation {
            requests: count,
            failed: 0,
            first_error: None,
            elapsed,
            per_member: BTreeMap::new(),
            upstream_calls: 0,
            sim_429s: 0,
            capacity_per_minute: capacity,
            combined_rpm: specs.iter().map(|s| s.rpm).sum(),
            combined_tpm: specs.iter().map(|s| s.tpm).sum(),
            charged_tokens: 0,
            stats_table: String::new(),
        };
        for (i, result) in results.iter().enumerate() {
            match result {
                Ok(answer) => {
                    let member = answer.meta.member.as_deref().unwrap_or("").to_owned();
                    let spec = specs.iter().find(|s| s.name == member);
                    let tokens = spec.map_or(0, |spec| charged_tokens(spec, &request(i)));
                    let entry = outcome.per_member.entry(member).or_default();
                    entry.answered += 1;
                    entry.charged_tokens += tokens;
                    outcome.charged_tokens += tokens;
                }
                Err(err) => {
                    outcome.failed += 1;
                    if outcome.first_error.is_none() {
                        outcome.first_error = Some(err.to_string());
                    }
                }
            }
        }
        let stats = sim.stats();
        outcome.upstream_calls = stats.requests;
        outcome.sim_429s = stats.status(429);
        outcome.stats_table = member_stats_table(&gpt);
        sim.shutdown().await;
        outcome
    })
}

fn member_stats_table(gpt: &BalancedGpt) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| member | requests | prompt tokens | completion tokens | 429s seen | retries | failovers | state |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|---|");
    for member in gpt.stats() {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            member.name,
            member.requests,
            member.prompt_tokens,
            member.completion_tokens,
            member.rate_limited_seen,
            member.retries,
            member.failovers,
            member.state,
        );
    }
    table
}

fn utilisation_report(u: &Utilisation, specs: &[MemberSpec]) -> String {
    let minutes = u.elapsed.as_secs_f64() / 60.0;
    let answered = (u.requests - u.failed) as f64;
    let rpm = answered / minutes;
    let tpm = u.charged_tokens as f64 / minutes;
    let fraction = rpm / u.capacity_per_minute;
    let rate_429 = if u.upstream_calls == 0 {
        0.0
    } else {
        u.sim_429s as f64 / u.upstream_calls as f64
    };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "| member | enforcement | RPM limit | TPM limit | capacity (requests/min) | achieved requests/min | achieved tokens/min | use of capacity |"
    );
    let _ = writeln!(report, "|---|---|---:|---:|---:|---:|---:|---:|");
    for spec in specs {
        let outcome = u.per_member.get(spec.name);
        let answered = outcome.map_or(0, |o| o.answered) as f64;
        let tokens = outcome.map_or(0, |o| o.charged_tokens) as f64;
        let capacity = capacity_per_minute(spec);
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.0} | {:.1} % |",
            spec.name,
            spec.enforcement,
            spec.rpm,
            spec.tpm,
            capacity,
            answered / minutes,
            tokens / minutes,
            100.0 * answered / minutes / capacity,
        );
    }
    let _ = writeln!(
        report,
        "| **all** | | {} | {} | {:.0} | {rpm:.1} | {tpm:.0} | **{:.1} %** |",
        u.combined_rpm,
        u.combined_tpm,
        u.capacity_per_minute,
        100.0 * fraction,
    );
    let _ = writeln!(report);
    let _ = writeln!(
        report,
        "- {} requests in {:.1} s; **{} failed**{}",
        u.requests,
        u.elapsed.as_secs_f64(),
        u.failed,
        u.first_error
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        report,
        "- requests/min: {rpm:.1} = **{:.1} %** of the combined capacity ({:.0}/min; the raw RPM limits add up to {})",
        100.0 * fraction,
        u.capacity_per_minute,
        u.combined_rpm
    );
    let _ = writeln!(
        report,
        "- tokens/min as charged by the providers at arrival: {tpm:.0} = {:.1} % of the combined TPM ({})",
        100.0 * tpm / u.combined_tpm as f64,
        u.combined_tpm
    );
    let _ = writeln!(
        report,
        "- the simulator answered **{} of {} upstream calls with 429 ({:.2} %)**",
        u.sim_429s,
        u.upstream_calls,
        100.0 * rate_429
    );
    let _ = writeln!(report);
    let _ = writeln!(report, "The balancer's own statistics at the end:\n");
    report.push_str(&u.stats_table);
    report
}

// ---- CPU overhead -------------------------------------------------------------------------

const OVERHEAD_KEYS: [&str; 3] = ["sk-overhead-1", "sk-overhead-2", "sk-overhead-3"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    /// `ChatGpt`: the retry layer over one provider.
    Single,
    /// `BalancedGpt` with that one provider, no limits.
    BalancedOne,
    /// `BalancedGpt` with three providers with (generous) limits, max headroom.
    BalancedThree,
}

impl Client {
    fn label(self) -> &'static str {
        match self {
            Client::Single => "`ChatGpt`: retry layer over one provider",
            Client::BalancedOne => "`BalancedGpt`, one provider, no limits",
            Client::BalancedThree => {
                "`BalancedGpt`, three providers with RPM/TPM limits, max headroom"
            }
        }
    }
}

const CONCURRENCY: usize = 16;

fn run_client(client: Client, base_url: String, count: usize) -> Sample {
    measure(count, move || async move {
        let requests = (0..count).map(request);
        let results = match client {
            Client::Single => {
                let gpt = ChatGpt::builder()
                    .api_key(OVERHEAD_KEYS[0])
                    .base_url(base_url)
                    .max_concurrent_requests(CONCURRENCY)
                    .build()
                    .expect("single client");
                gpt.chat_completion_list(requests).await
            }
            Client::BalancedOne | Client::BalancedThree => {
                let members = if client == Client::BalancedOne { 1 } else { 3 };
                let mut builder = BalancedGpt::builder().max_concurrent_requests(CONCURRENCY);
                for key in &OVERHEAD_KEYS[..members] {
                    let provider = Provider::openai(
                        OpenAiConfig::new()
                            .api_key(*key)
                            .base_url(base_url.clone())
                            .name(*key),
                    );
                    builder = builder.provider(if members > 1 {
                        provider.rpm(100_000_000).tpm(100_000_000_000)
                    } else {
                        provider
                    });
                }
                let gpt = builder.build().expect("balanced client");
                gpt.chat_completion_list(requests).await
            }
        };
        results.iter().filter(|r| r.is_ok()).count()
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn overhead(options: &Options) -> String {
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("simulator runtime");
    let mut config = SimConfig::new().seen_capacity(0);
    for key in OVERHEAD_KEYS {
        config = config.key(KeyConfig::new(key));
    }
    let sim = sim_runtime
        .block_on(Simulator::start(config))
        .expect("simulator starts");
    let clients = [Client::Single, Client::BalancedOne, Client::BalancedThree];
    // Warm-up: connections, allocator, tokenizer tables.
    for client in clients {
        run_client(client, sim.base_url(), options.overhead_requests.min(500));
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); clients.len()];
    for _ in 0..options.overhead_rounds {
        for (i, client) in clients.iter().enumerate() {
            samples[i].push(run_client(
                *client,
                sim.base_url(),
                options.overhead_requests,
            ));
        }
    }
    drop(sim);
    sim_runtime.shutdown_timeout(Duration::from_secs(1));

    let cpu: Vec<f64> = samples
        .iter()
        .map(|s| median(s.iter().map(|x| x.cpu_us_per_request).collect()))
        .collect();
    let wall: Vec<f64> = samples
        .iter()
        .map(|s| median(s.iter().map(|x| x.wall_us_per_request).collect()))
        .collect();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "| client | CPU per request (us) | over `ChatGpt` (us) | wall per request (us) |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|");
    for (i, client) in clients.iter().enumerate() {
        let _ = writeln!(
            report,
            "| {} | {:.1} | {:+.1} | {:.1} |",
            client.label(),
            cpu[i],
            cpu[i] - cpu[0],
            wall[i]
        );
    }
    let _ = writeln!(
        report,
        "\nMedian of {} rounds of {} requests at concurrency {CONCURRENCY}.",
        options.overhead_rounds, options.overhead_requests
    );
    report
}

fn main() {
    let options = parse_options();
    let specs = member_specs(if options.full { 1 } else { 100 });

    let utilisation_section = if options.skip_utilisation {
        None
    } else {
        let outcome = utilisation(&options);
        let report = utilisation_report(&outcome, &specs);
        println!("{report}");
        if !options.full {
            assert_eq!(
                outcome.failed, 0,
                "smoke round: every request succeeds ({:?})",
                outcome.first_error
            );
        }
        Some((outcome, report))
    };
    let overhead_section = if options.skip_overhead {
        None
    } else {
        let report = overhead(&options);
        println!("{report}");
        Some(report)
    };

    if options.full {
        if let Ok(path) = std::env::var("LBGPT_UTILISATION_REPORT") {
            write_report(&path, &options, utilisation_section, overhead_section);
        }
    }
}

fn write_report(
    path: &str,
    options: &Options,
    utilisation: Option<(Utilisation, String)>,
    overhead: Option<String>,
) {
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Balancer benchmarks\n\n\
         Written by `cargo xtask bench` (the benchmark is `crates/lbgpt/benches/utilisation.rs`;\n\
         alone: `cargo bench -p lbgpt --bench utilisation`). Machine: {machine}, {cores} cores,\n\
         release build.\n"
    );
    if let Some((u, report)) = utilisation {
        let _ = writeln!(
            text,
            "## Utilisation of three providers' combined quota\n\n\
             Three simulated providers with different limits, each enforcing them its own way;\n\
             one counts prompt tokens 20 % above what our tokenizer estimates, as providers do.\n\
             {} requests (about {} minutes of the combined capacity; each request is charged\n\
             its prompt plus `max_tokens` = {MAX_TOKENS} at arrival) go through one `BalancedGpt` with\n\
             `Strategy::MaxHeadroom`, the limits configured, at most {} in flight, and a\n\
             simulated latency of 20 ms. A provider's capacity is the tighter of its RPM and its\n\
             TPM / tokens per request.\n\n\
             Targets: >= 97 % of the combined capacity, 0 failed requests, < 0.5 % of upstream\n\
             calls answered 429.\n\n{report}",
            u.requests, options.minutes, options.concurrency
        );
    }
    if let Some(report) = overhead {
        let _ = writeln!(
            text,
            "## CPU cost of the balancer per request\n\n\
             The same requests through the single-provider client and through the balancer, on an\n\
             in-process simulator without latency or limits. Each client runs alone on a\n\
             current-thread Tokio runtime in its own thread; the figure is that thread's CPU time\n\
             divided by the number of requests (HTTP, JSON, retry layer, batch engine, and for the\n\
             balancer: token estimate, usage reservation and settlement, the pick, statistics).\n\
             The machine is shared and noisy: compare the differences, not the absolute figures.\n\n\
             {report}"
        );
    }
    match std::fs::write(path, text) {
        Ok(()) => eprintln!("wrote {path}"),
        Err(e) => eprintln!("could not write {path}: {e}"),
    }
}
