//! Embeddings and legacy completions over two keys, with embeddings cached per input.
//!
//! Runs offline against the bundled simulator (two keys with their own limits):
//!
//! ```text
//! cargo run -p lbgpt --example embeddings
//! ```

use lbgpt::cache::{CacheConfig, MemoryStore};
use lbgpt::openai::OpenAiConfig;
use lbgpt::{BalancedGpt, CompletionRequest, EmbeddingRequest, Provider};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-one").rpm(600).tpm(100_000))
            .key(KeyConfig::new("sk-two").rpm(300).tpm(50_000)),
    )
    .await?;
    let key = |name: &str, secret: &str| {
        OpenAiConfig::new()
            .api_key(secret)
            .base_url(sim.base_url())
            .name(name)
    };
    let gpt = BalancedGpt::builder()
        .provider(Provider::openai(key("one", "sk-one")).rpm(600).tpm(100_000))
        .provider(Provider::openai(key("two", "sk-two")).rpm(300).tpm(50_000))
        .cache_store(Arc::new(MemoryStore::new()), CacheConfig::new())
        .max_concurrent_requests(16)
        .build()?;

    // Embeddings: one request of many inputs; a second request pays only for its new inputs.
    let words = ["apple", "pear", "plum", "fig"];
    let first = gpt
        .embedding(EmbeddingRequest::new(
            "text-embedding-3-small",
            words.to_vec(),
        ))
        .await?;
    println!(
        "{} vectors of {} dimensions",
        first.data.len(),
        first.data[0].embedding.to_floats()?.len()
    );
    let again = gpt
        .embedding(EmbeddingRequest::new(
            "text-embedding-3-small",
            vec!["fig", "kiwi", "apple"],
        ))
        .await?;
    println!(
        "second request: {:?} (only \"kiwi\" was sent)",
        again.meta.cache
    );

    // Legacy completions: a list of prompts, one call per prompt spread over both keys,
    // answers back in prompt order.
    let prompts: Vec<String> = (1..=10)
        .map(|i| format!("Write a haiku about {i}"))
        .collect();
    let answer = gpt
        .completion(CompletionRequest::new("gpt-3.5-turbo-instruct", prompts).max_tokens(32))
        .await?;
    for choice in answer.choices.iter().take(3) {
        println!("#{}: {}", choice.index, choice.text);
    }
    for member in gpt.completion_stats() {
        println!("{}: {} completion calls", member.name, member.requests);
    }
    Ok(())
}
