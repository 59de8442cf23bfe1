//! What the balancer itself costs per request: the same chat requests through a balancer of
//! one unlimited member and of three members with RPM/TPM limits (generous: nothing waits),
//! with members that answer at once in process, so nothing but the balancer's work (token
//! estimate, usage reservation and settlement, the pick, statistics) differs.
//!
//! `cargo bench -p lbgpt-balance --bench balancer_cost` prints the time per request of each
//! setup (one thread, no I/O: time is CPU time); results and analysis are in
//! `docs/benchmarks-balancer.md`. To see where instructions go:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*send_batch*' \
//!     target/release/deps/balancer_cost-<hash> --only three --requests 20000 --rounds 1
//! ```

use futures::stream::{self, StreamExt};
use lbgpt_balance::{Balancer, Member, Strategy};
use lbgpt_core::{ChatMessage, ChatRequest, ChatResponse, Error};
use std::time::{Duration, Instant};
use tower::{service_fn, ServiceExt};

/// In flight at once, as in the facade's benchmarks.
const CONCURRENCY: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Setup {
    /// One member, no limits: no estimate, no token accounting.
    One,
    /// Three members with RPM/TPM limits, max headroom.
    Three,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::One => "one",
            Setup::Three => "three",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Setup::One => "one member, no limits",
            Setup::Three => "three members with RPM/TPM limits, max headroom",
        }
    }
}

/// A request like the facade benchmarks' ones.
fn request(i: usize) -> ChatRequest {
    ChatRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::system("You are a terse assistant."),
            ChatMessage::user(format!(
                "Summarise item number {i:06} of the quarterly report in five words."
            )),
        ],
    )
    .max_tokens(16)
}

/// The answer every member gives (with usage, as a provider's).
fn answer() -> ChatResponse {
    serde_json::from_str(
        r#"{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Five words of summary here."},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 35, "completion_tokens": 7, "total_tokens": 42}}"#,
    )
    .expect("a valid answer")
}

fn balancer(setup: Setup) -> Balancer {
    let answer = answer();
    let member = |name: &str| {
        let answer = answer.clone();
        Member::new(
            name,
            service_fn(move |_request: ChatRequest| {
                let answer = answer.clone();
                async move { Ok::<_, Error>(answer) }
            }),
        )
    };
    let builder = Balancer::builder().strategy(Strategy::MaxHeadroom);
    match setup {
        Setup::One => builder.member(member("only")),
        Setup::Three => builder.members(
            ["a", "b", "c"].map(|name| member(name).rpm(100_000_000).tpm(100_000_000_000)),
        ),
    }
    .build()
    .expect("a valid balancer")
}

/// Sends `requests` through `balancer` on `runtime`; the number answered. Not inlined, so
/// callgrind can count this alone (`--toggle-collect='*send_batch*'`).
#[inline(never)]
fn send_batch(
    runtime: &tokio::runtime::Runtime,
    balancer: &Balancer,
    requests: Vec<ChatRequest>,
) -> usize {
    runtime.block_on(
        stream::iter(requests)
            .map(|request| balancer.clone().oneshot(request))
            .buffer_unordered(CONCURRENCY)
            .filter(|result| std::future::ready(result.is_ok()))
            .count(),
    )
}

/// Time per request of one round of `count` requests.
fn round(setup: Setup, count: usize) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let balancer = runtime.block_on(async {
        let balancer = balancer(setup);
        // Warm-up (not in `send_batch`, so callgrind leaves it out): the tokenizer's tables,
        // the allocator.
        for i in 0..64 {
            let warm = balancer.clone().oneshot(request(i)).await;
            assert!(warm.is_ok(), "the warm-up request is answered");
        }
        balancer
    });
    let requests: Vec<ChatRequest> = (0..count).map(request).collect();
    let started = Instant::now();
    let answered = send_batch(&runtime, &balancer, requests);
    let elapsed = started.elapsed();
    assert_eq!(answered, count, "every request is answered");
    elapsed / u32::try_from(count).unwrap_or(u32::MAX)
}

fn main() {
    // `cargo bench` passes `--bench`: the full run. Without it (`cargo test --all-targets`)
    // a small smoke round checks that the benchmark still works.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|arg| arg == "--bench");
    let (mut requests, mut rounds) = if full { (20_000, 5) } else { (200, 1) };
    let mut only = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => only = args.next(),
            "--requests" => requests = args.next().and_then(|v| v.parse().ok()).unwrap_or(requests),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            _ => {}
        }
    }
    let setups: Vec<Setup> = [Setup::One, Setup::Three]
        .into_iter()
        .filter(|setup| only.as_deref().is_none_or(|name| name == setup.name()))
        .collect();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); setups.len()];
    for _ in 0..rounds {
        for (at, setup) in setups.iter().enumerate() {
            samples[at].push(round(*setup, requests));
        }
    }
    println!("| balancer | time per request (us) |");
    println!("|---|---:|");
    for (setup, mut times) in setups.iter().zip(samples) {
        times.sort();
        let median = times[times.len() / 2];
        println!("| {} | {:.2} |", setup.label(), median.as_secs_f64() * 1e6);
    }
    println!("\nMedian of {rounds} rounds of {requests} requests at concurrency {CONCURRENCY}.");
}
