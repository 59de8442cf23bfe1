//! Helpers shared by the integration tests: the real local model (loaded once per test
//! binary), the simulator and a provider on it.

#![allow(dead_code)]

use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_semantic::{Embedder, FastembedEmbedder};
use lbgpt_sim::{KeyConfig, Latency, SimConfig, Simulator};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const KEY: &str = "sk-sim-semantic-test-key-0123456789";

/// The real all-MiniLM-L6-v2 int8 model from the fetched assets, shared by the binary's tests.
pub fn embedder() -> Arc<FastembedEmbedder> {
    static EMBEDDER: OnceLock<Arc<FastembedEmbedder>> = OnceLock::new();
    Arc::clone(
        EMBEDDER.get_or_init(|| match FastembedEmbedder::from_default_assets() {
            Ok(embedder) => Arc::new(embedder),
            Err(error) => panic!(
                "the real-model tests need the local model and ONNX Runtime: {error}\n\
                 (run `cargo xtask fetch-assets` once; `cargo xtask ci` does it)"
            ),
        }),
    )
}

/// The embedder as a trait object.
pub fn dyn_embedder() -> Arc<dyn Embedder> {
    embedder()
}

/// A simulator with one key.
pub async fn sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(KEY))
            .latency(Latency::fixed(Duration::from_millis(1))),
    )
    .await
    .expect("simulator starts")
}

/// The real OpenAI service on the simulator.
pub fn provider(sim: &Simulator) -> OpenAiService {
    OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(sim.base_url())
            .no_proxy()
            .name("sim"),
    )
    .expect("valid provider config")
}

/// Requests that reached the simulator.
pub fn upstream_calls(sim: &Simulator) -> u64 {
    sim.stats().requests
}

/// A request with a fixed system prompt and `text` as the user message.
pub fn request(text: &str) -> ChatRequest {
    ChatRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::system("Answer briefly."),
            ChatMessage::user(text),
        ],
    )
    .max_tokens(64)
}
