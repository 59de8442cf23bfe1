//! The three-line start, then a batch with a progress line.
//!
//! Talks to OpenAI when `OPENAI_API_KEY` is set; otherwise it starts the bundled simulator
//! in-process, so it runs offline without a key:
//!
//! ```text
//! cargo run -p lbgpt --example quickstart
//! ```

use lbgpt::{ChatGpt, ChatMessage, ChatRequest};
use lbgpt_sim::{KeyConfig, Latency, SimConfig, Simulator};
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real key, or the simulator (kept alive until the end of `main`).
    let (gpt, _simulator) = match std::env::var("OPENAI_API_KEY") {
        Ok(key) if !key.trim().is_empty() => (ChatGpt::new(key)?, None),
        _ => {
            let sim = Simulator::start(
                SimConfig::new()
                    .key(KeyConfig::new("sk-sim-quickstart"))
                    .latency(Latency::fixed(Duration::from_millis(20))),
            )
            .await?;
            println!(
                "OPENAI_API_KEY is not set: using the simulator at {}",
                sim.base_url()
            );
            let gpt = ChatGpt::builder()
                .api_key("sk-sim-quickstart")
                .base_url(sim.base_url())
                .build()?;
            (gpt, Some(sim))
        }
    };

    // One request.
    let request =
        ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Say hello!")]).max_tokens(32);
    let answer = gpt.chat_completion(request).await?;
    println!("answer: {}", answer.first_text().unwrap_or_default());
    println!(
        "(served by {} in {:?})",
        answer.meta.member.as_deref().unwrap_or("?"),
        answer.meta.latency
    );

    // Many requests: one result per input, in input order, 5 at a time.
    let terminal = std::io::stdout().is_terminal();
    let requests: Vec<ChatRequest> = (1..=40)
        .map(|i| {
            ChatRequest::new(
                "gpt-4o-mini",
                vec![ChatMessage::user(format!(
                    "Give one fact about the number {i}."
                ))],
            )
            .max_tokens(32)
        })
        .collect();
    let results = gpt
        .chat_completion_list_with_progress(requests, |p| {
            // On a terminal, one line rewritten in place; elsewhere a line every 10 results.
            if terminal {
                print!(
                    "\r{}/{} done, {} failed",
                    p.completed,
                    p.total.unwrap_or(0),
                    p.failed
                );
                let _ = std::io::stdout().flush();
            } else if p.completed % 10 == 0 {
                println!(
                    "{}/{} done, {} failed",
                    p.completed,
                    p.total.unwrap_or(0),
                    p.failed
                );
            }
        })
        .await;
    if terminal {
        println!();
    }
    for (i, result) in results.iter().enumerate().take(3) {
        match result {
            Ok(answer) => println!("#{}: {}", i + 1, answer.first_text().unwrap_or_default()),
            Err(error) => println!("#{}: failed: {error}", i + 1),
        }
    }
    let failed = results.iter().filter(|r| r.is_err()).count();
    println!("{} answers, {failed} failures", results.len() - failed);
    Ok(())
}
