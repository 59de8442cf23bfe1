//! Helpers shared by the integration tests: the real local model (loaded once per test
//! binary), the simulator and a provider on it, seeded random vectors for the index tests.

#![allow(dead_code)]

use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_semantic::{normalise, Embedder, FastembedEmbedder, Scope};
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

/// Dimensions of the vectors [`Vectors`] makes.
pub const DIMS: usize = 32;

/// A seeded xorshift generator of unit vectors.
pub struct Vectors(pub u64);

impl Vectors {
    /// The next unit vector of [`DIMS`] dimensions.
    pub fn next(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIMS)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        normalise(&mut v);
        v
    }
}

/// A scope made from the digest `[n; 32]`.
pub fn scope(n: u8) -> Scope {
    Scope::from_digest([n; 32])
}
