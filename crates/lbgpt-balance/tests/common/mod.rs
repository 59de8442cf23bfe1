//! Shared set-up of the integration tests: a simulator on loopback and real OpenAI services.

#![allow(dead_code)] // each test file uses part of this module

use lbgpt_balance::retry::{Retry, RetryLayer, RetryPolicy};
use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::time::Duration;
use tower::ServiceBuilder;

/// The key most tests use.
pub const KEY: &str = "sk-sim-retry";

/// A simulator with the given keys and a short fixed latency.
pub async fn simulator(keys: &[&str]) -> Simulator {
    let mut config = SimConfig::new()
        .latency(lbgpt_sim::Latency::fixed(Duration::from_millis(1)))
        .seed(7);
    for key in keys {
        config = config.key(KeyConfig::new(*key));
    }
    Simulator::start(config)
        .await
        .expect("the simulator starts on loopback")
}

/// A real OpenAI service talking to the simulator with `key`.
pub fn openai(sim: &Simulator, key: &str, name: &str) -> OpenAiService {
    OpenAiService::new(
        OpenAiConfig::new()
            .api_key(key)
            .base_url(sim.base_url())
            .request_timeout(Duration::from_secs(30))
            .name(name),
    )
    .expect("a valid OpenAI configuration")
}

/// A policy with tiny backoffs so that tests retrying without retry-after run fast.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy::default()
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(20))
}

/// The OpenAI service for `key` behind the retry layer.
pub fn retrying(sim: &Simulator, key: &str, policy: RetryPolicy) -> Retry<OpenAiService> {
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(openai(sim, key, "sim"))
}

/// A small request whose answer the simulator derives from its text.
pub fn request(text: &str) -> ChatRequest {
    ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user(text)]).max_tokens(16)
}

/// How many requests the simulator received for `key`.
pub fn requests_seen(sim: &Simulator, key: &str) -> u64 {
    sim.key_stats(key)
        .map(|stats| stats.requests)
        .unwrap_or_default()
}
