//! Helpers for the embedding cache tests: requests, what the simulator received, checks of
//! answers against `lbgpt_sim::expected_embedding`, and a gate that holds upstream calls
//! until the test lets them through.

use futures::future::BoxFuture;
use lbgpt_core::{EmbeddingRequest, EmbeddingResponse, Error, TextInput};
use lbgpt_openai::OpenAiService;
use lbgpt_sim::Simulator;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower::ServiceExt;

pub const MODEL: &str = "text-embedding-3-small";

/// A request embedding `inputs` (as a list).
pub fn embed(inputs: &[&str]) -> EmbeddingRequest {
    EmbeddingRequest::new(MODEL, inputs.to_vec())
}

/// The inputs of every embeddings request the simulator received, in arrival order, each as
/// the texts the simulator embedded (token ids as `lbgpt_sim::tokens_text`).
pub fn received_inputs(sim: &Simulator) -> Vec<Vec<String>> {
    sim.seen_requests()
        .iter()
        .filter(|seen| seen.path.ends_with("/embeddings"))
        .map(|seen| {
            let input: TextInput =
                serde_json::from_value(seen.body["input"].clone()).expect("input as sent");
            lbgpt_sim::input_texts(&input)
        })
        .collect()
}

/// `texts` as owned strings (to compare with [`received_inputs`]).
pub fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

/// Checks `answer` holds one float vector per input of `texts`, in order, with `index` =
/// position, each the simulator's embedding of that text.
pub fn assert_answers(answer: &EmbeddingResponse, texts: &[&str]) {
    assert_eq!(answer.data.len(), texts.len(), "one vector per input");
    for (position, (embedding, text)) in answer.data.iter().zip(texts).enumerate() {
        assert_eq!(embedding.index as usize, position, "index of {text:?}");
        let floats = embedding.embedding.to_floats().expect("a vector");
        assert_eq!(
            floats,
            lbgpt_sim::expected_embedding(text),
            "vector at {position} is the embedding of {text:?}"
        );
    }
}

/// The prompt tokens the simulator charged so far on `key`.
pub fn charged(sim: &Simulator, key: &str) -> u64 {
    sim.key_stats(key).expect("known key").prompt_tokens
}

/// The prompt tokens an answer reports.
pub fn reported(answer: &EmbeddingResponse) -> u64 {
    answer.usage.as_ref().expect("usage").prompt_tokens
}

/// Holds every upstream call until the test lets it through: calls pass one permit each, in
/// the order they arrived (tokio's semaphore is fair), then go to the real provider.
#[derive(Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
}

impl Gate {
    pub fn closed() -> Gate {
        Gate {
            permits: Arc::new(Semaphore::new(0)),
        }
    }

    /// Lets `calls` more calls through.
    pub fn open(&self, calls: usize) {
        self.permits.add_permits(calls);
    }

    /// `provider` behind this gate, as a service.
    pub fn guard(
        &self,
        provider: OpenAiService,
    ) -> impl tower::Service<
        EmbeddingRequest,
        Response = EmbeddingResponse,
        Error = Error,
        Future = BoxFuture<'static, Result<EmbeddingResponse, Error>>,
    > + Clone
           + Send
           + 'static {
        let permits = Arc::clone(&self.permits);
        tower::service_fn(move |request: EmbeddingRequest| {
            let permits = Arc::clone(&permits);
            let provider = provider.clone();
            let call: BoxFuture<'static, Result<EmbeddingResponse, Error>> = Box::pin(async move {
                permits
                    .acquire()
                    .await
                    .map_err(|_| Error::Internal("gate closed for good".into()))?
                    .forget();
                provider.oneshot(request).await
            });
            call
        })
    }
}

/// Waits (up to 30 s, then fails) until `condition` holds.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "gave up waiting until {what}");
}
