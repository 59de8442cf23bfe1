//! Azure OpenAI: an endpoint, a key, a model -> deployment map; results as they finish.
//!
//! Talks to Azure when `AZURE_OPENAI_ENDPOINT`, `AZURE_OPENAI_API_KEY` and
//! `AZURE_OPENAI_DEPLOYMENT` (the deployment serving `gpt-4o-mini`) are set; otherwise it
//! starts the bundled simulator, which serves the same Azure paths, so it runs offline:
//!
//! ```text
//! cargo run -p lbgpt --example azure
//! ```

use futures::StreamExt;
use lbgpt::{AzureGpt, ChatMessage, ChatRequest};
use lbgpt_sim::{Fault, FaultMix, KeyConfig, Latency, SimConfig, Simulator};
use std::time::Duration;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let real = match (
        env("AZURE_OPENAI_ENDPOINT"),
        env("AZURE_OPENAI_API_KEY"),
        env("AZURE_OPENAI_DEPLOYMENT"),
    ) {
        (Some(endpoint), Some(key), Some(deployment)) => Some((endpoint, key, deployment)),
        _ => None,
    };
    let (gpt, _simulator) = match real {
        Some((endpoint, key, deployment)) => (
            AzureGpt::new(endpoint, key, [("gpt-4o-mini", deployment)])?,
            None,
        ),
        None => {
            // A simulated resource whose key fails 10 % of requests with 429s and 503s, to
            // show the retries at work.
            let sim = Simulator::start(
                SimConfig::new()
                    .key(
                        KeyConfig::new("azure-sim-key").random_faults(
                            0.1,
                            FaultMix::new()
                                .with(
                                    Fault::RateLimited {
                                        retry_after: Duration::from_millis(50),
                                    },
                                    1,
                                )
                                .with(Fault::Unavailable { retry_after: None }, 1),
                        ),
                    )
                    .azure_deployment("mini-prod", "gpt-4o-mini")
                    .latency(Latency::fixed(Duration::from_millis(15))),
            )
            .await?;
            println!(
                "Azure settings not found: using the simulator at {}",
                sim.endpoint()
            );
            let gpt = AzureGpt::builder(sim.endpoint())
                .api_key("azure-sim-key")
                .api_version("2024-10-21")
                .deployment("gpt-4o-mini", "mini-prod")
                .name("azure-sim")
                .max_concurrent_requests(8)
                .initial_backoff(Duration::from_millis(20))
                .build()?;
            (gpt, Some(sim))
        }
    };

    let requests = (1..=30).map(|i| {
        ChatRequest::new(
            "gpt-4o-mini",
            vec![ChatMessage::user(format!(
                "Translate 'good morning' into language number {i}."
            ))],
        )
        .max_tokens(24)
    });
    // Completion order: whatever finishes first comes first, tagged with its input index.
    let mut stream = gpt.chat_completion_stream(requests);
    while let Some((index, result)) = stream.next().await {
        match result {
            Ok(answer) => println!(
                "#{:>2} after {} attempt(s): {}",
                index + 1,
                answer.meta.attempts,
                answer.first_text().unwrap_or_default()
            ),
            Err(error) => println!("#{:>2} failed: {error}", index + 1),
        }
    }
    let progress = stream.progress();
    println!(
        "{} succeeded, {} failed",
        progress.succeeded, progress.failed
    );
    Ok(())
}
