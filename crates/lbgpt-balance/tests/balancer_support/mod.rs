//! Shared set-up of the balancer's integration tests: simulators on loopback, real OpenAI
//! services as members, and helpers to run batches.

#![allow(dead_code)] // each test file uses part of this module

use futures::stream::{self, StreamExt};
use lbgpt_balance::usage::{InMemoryUsage, PacingConfig};
use lbgpt_balance::{Balancer, BalancerBuilder, Member, Strategy};
use lbgpt_core::{ChatMessage, ChatRequest, ChatResponse, Error};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_sim::{KeyConfig, Latency, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::{Service, ServiceExt};

/// A simulator with `keys` and a fixed latency.
pub async fn simulator_with(
    keys: impl IntoIterator<Item = KeyConfig>,
    latency: Duration,
) -> Simulator {
    let mut config = SimConfig::new().latency(Latency::fixed(latency)).seed(11);
    for key in keys {
        config = config.key(key);
    }
    Simulator::start(config)
        .await
        .expect("the simulator starts on loopback")
}

/// A simulator with unlimited keys and 1 ms latency.
pub async fn simulator(keys: &[&str]) -> Simulator {
    simulator_with(
        keys.iter().map(|key| KeyConfig::new(*key)),
        Duration::from_millis(1),
    )
    .await
}

/// A real OpenAI service talking to `sim` with `key`.
pub fn openai(sim: &Simulator, key: &str) -> OpenAiService {
    OpenAiService::new(
        OpenAiConfig::new()
            .api_key(key)
            .base_url(sim.base_url())
            .request_timeout(Duration::from_secs(30))
            .name(key),
    )
    .expect("a valid OpenAI configuration")
}

/// A member named `name` sending to `sim` with `key`.
pub fn member(sim: &Simulator, name: &str, key: &str) -> Member {
    Member::new(name, openai(sim, key))
}

/// An in-memory usage tracker without pacing (only the 60 s windows), for tests that check
/// window arithmetic or strategies without waiting for the paced schedule.
pub fn unpaced() -> Arc<InMemoryUsage> {
    Arc::new(InMemoryUsage::new(PacingConfig::unpaced()))
}

/// A builder with an unpaced tracker and the approximate estimator (what the simulator
/// charges), so limits in tests match the simulator's exactly.
pub fn builder() -> BalancerBuilder {
    Balancer::builder()
        .usage(unpaced())
        .estimator(Arc::new(lbgpt_balance::tokens::ApproxEstimator::new()))
}

/// A round-robin balancer of member `a` (key `sk-a`) and member `b` (key `sk-b`) on `sim`.
pub fn round_robin_a_b(sim: &Simulator) -> Balancer {
    builder()
        .strategy(Strategy::RoundRobin)
        .member(member(sim, "a", "sk-a"))
        .member(member(sim, "b", "sk-b"))
        .build()
        .expect("a valid balancer")
}

/// A small request whose answer the simulator derives from its text.
pub fn request(text: &str) -> ChatRequest {
    ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user(text)]).max_tokens(16)
}

/// `n` distinct requests tagged `tag`.
pub fn requests(tag: &str, n: usize) -> Vec<ChatRequest> {
    (0..n).map(|i| request(&format!("{tag} {i}"))).collect()
}

/// Sends every request through `service` with at most `concurrency` in flight (a new one
/// starts as soon as any finishes); the results in input order.
pub async fn run<R, S>(
    service: S,
    requests: Vec<R>,
    concurrency: usize,
) -> Vec<Result<S::Response, Error>>
where
    S: Service<R, Error = Error> + Clone,
{
    let count = requests.len();
    let mut results: Vec<Option<Result<S::Response, Error>>> = (0..count).map(|_| None).collect();
    let mut finished = stream::iter(requests.into_iter().enumerate())
        .map(|(index, request)| {
            let call = service.clone().oneshot(request);
            async move { (index, call.await) }
        })
        .buffer_unordered(concurrency);
    while let Some((index, result)) = finished.next().await {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .map(|result| result.expect("every request yields a result"))
        .collect()
}

/// Checks that every result is the simulator's answer to its request; panics otherwise.
pub fn assert_all_answered(requests: &[ChatRequest], results: &[Result<ChatResponse, Error>]) {
    assert_eq!(requests.len(), results.len());
    for (request, result) in requests.iter().zip(results) {
        match result {
            Ok(response) => assert_eq!(
                response.first_text(),
                Some(lbgpt_sim::expected_answer(request)),
                "an answer to another request"
            ),
            Err(error) => panic!("a request failed: {error}"),
        }
    }
}

/// How many answers each member served.
pub fn served_by(results: &[Result<ChatResponse, Error>]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for response in results.iter().flatten() {
        let member = response
            .meta
            .member
            .as_deref()
            .unwrap_or("<none>")
            .to_owned();
        *counts.entry(member).or_insert(0) += 1;
    }
    counts
}

/// Requests the simulator received for `key`.
pub fn arrivals(sim: &Simulator, key: &str) -> u64 {
    sim.key_stats(key).map_or(0, |stats| stats.requests)
}

/// 429s the simulator sent for `key` because of its limits.
pub fn limit_429s(sim: &Simulator, key: &str) -> u64 {
    sim.key_stats(key).map_or(0, |stats| stats.rate_limited)
}
