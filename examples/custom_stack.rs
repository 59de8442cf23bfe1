//! A stack built by hand with `tower::ServiceBuilder`, handed to the generic `Lbgpt` client,
//! and a large lazily generated input consumed in order with bounded memory.
//!
//! The stack: a layer of our own that counts attempts, the retry layer, and the OpenAI
//! service. Runs against OpenAI when `OPENAI_API_KEY` is set (then only 20 requests), else
//! against the bundled simulator with 15 % injected faults:
//!
//! ```text
//! cargo run -p lbgpt --example custom_stack
//! ```

use futures::StreamExt;
use lbgpt::balance::retry::{RetryLayer, RetryPolicy};
use lbgpt::openai::{OpenAiConfig, OpenAiService};
use lbgpt::{ChatMessage, ChatRequest, ChatResponse, Lbgpt};
use lbgpt_sim::{Fault, FaultMix, KeyConfig, SimConfig, Simulator};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, count, _simulator) = match std::env::var("OPENAI_API_KEY") {
        Ok(key) if !key.trim().is_empty() => (OpenAiConfig::new().api_key(key), 20, None),
        _ => {
            let faults = FaultMix::new()
                .with(
                    Fault::RateLimited {
                        retry_after: Duration::from_millis(10),
                    },
                    2,
                )
                .with(Fault::ServerError, 1)
                .with(Fault::Reset, 1)
                .with(Fault::MalformedJson, 1);
            let sim = Simulator::start(
                SimConfig::new().key(KeyConfig::new("sk-sim-custom").random_faults(0.15, faults)),
            )
            .await?;
            println!(
                "OPENAI_API_KEY is not set: using the simulator at {}",
                sim.base_url()
            );
            let config = OpenAiConfig::new()
                .api_key("sk-sim-custom")
                .base_url(sim.base_url())
                .name("simulator");
            (config, 5_000, Some(sim))
        }
    };

    // Layers listed outermost first. Anything between the retry layer and the service sees
    // every attempt; here a counter of our own.
    let attempts = Arc::new(AtomicU64::new(0));
    let counter = attempts.clone();
    let stack = ServiceBuilder::new()
        .map_request(|request: ChatRequest| request.temperature(0.0))
        .layer(RetryLayer::new(
            RetryPolicy::default()
                .max_attempts(8)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(200))
                .deadline(Duration::from_secs(60)),
        ))
        .map_request(move |request: ChatRequest| {
            counter.fetch_add(1, Ordering::Relaxed);
            request
        })
        .service(OpenAiService::new(config)?);
    let client = Lbgpt::new(stack).max_concurrent_requests(16);

    // A lazy input: requests are built only when the client is ready to send them.
    let requests = (0..count).map(|i| {
        ChatRequest::new(
            "gpt-4o-mini",
            vec![ChatMessage::user(format!(
                "Classify ticket #{i} as bug or feature."
            ))],
        )
        .max_tokens(8)
    });
    let started = Instant::now();
    let mut results = client.chat_completion_ordered(requests);
    let (mut ok, mut failed, mut retried) = (0u64, 0u64, 0u64);
    let mut first: Option<ChatResponse> = None;
    while let Some(result) = results.next().await {
        match result {
            Ok(answer) => {
                ok += 1;
                if answer.meta.attempts > 1 {
                    retried += 1;
                }
                first.get_or_insert(answer);
            }
            Err(error) => {
                failed += 1;
                eprintln!("failed: {error}");
            }
        }
    }
    let elapsed = started.elapsed();
    if let Some(answer) = first {
        println!("first answer: {}", answer.first_text().unwrap_or_default());
    }
    println!(
        "{ok} answers ({retried} needed retries), {failed} failures, {} HTTP attempts, in {elapsed:.2?} ({:.0} requests/s)",
        attempts.load(Ordering::Relaxed),
        (ok + failed) as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
