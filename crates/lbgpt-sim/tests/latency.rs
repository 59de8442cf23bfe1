//! Latency: fixed plus per output token, before successful answers only, per request.
//!
//! These tests run on paused tokio time: the simulator's sleeps complete as soon as nothing
//! else can run, and the elapsed tokio time is exactly what the simulator waited.

mod common;

use common::{chat, post_openai};
use lbgpt_sim::{KeyConfig, Latency, SimConfig, Simulator};
use std::time::Duration;
use tokio::time::Instant;

const FIXED: Duration = Duration::from_secs(10);
const PER_TOKEN: Duration = Duration::from_millis(100);

async fn sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a"))
            .latency(Latency::fixed(FIXED).per_output_token(PER_TOKEN)),
    )
    .await
    .expect("starts")
}

/// A client without timers of its own, so paused time moves only for the simulator.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .expect("client builds")
}

fn assert_close(elapsed: Duration, expected: Duration) {
    // Tokio timers tick in whole milliseconds.
    assert!(
        elapsed >= expected && elapsed <= expected + Duration::from_millis(5),
        "waited {elapsed:?}, expected {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn answers_wait_fixed_plus_per_token_latency() {
    let sim = sim().await;
    let client = client();
    let request = chat("How long?");
    let started = Instant::now();
    let response = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("json");
    let tokens = body["usage"]["completion_tokens"].as_u64().expect("usage");
    assert!(tokens > 0);
    let tokens = u32::try_from(tokens).expect("small");
    assert_close(elapsed, FIXED + PER_TOKEN * tokens);
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_wait_side_by_side() {
    let sim = sim().await;
    let client = client();
    let request = chat("same").max_tokens(5);
    let started = Instant::now();
    let responses = futures_join(&client, &sim, &request, 10).await;
    assert!(responses.iter().all(|status| *status == 200));
    // Five tokens each; ten requests in parallel take as long as one.
    assert_close(started.elapsed(), FIXED + PER_TOKEN * 5);
}

async fn futures_join(
    client: &reqwest::Client,
    sim: &Simulator,
    request: &lbgpt_core::ChatRequest,
    count: usize,
) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let client = client.clone();
        let url = format!("{}/chat/completions", sim.base_url());
        let body = serde_json::to_vec(request).expect("serialises");
        tasks.spawn(async move {
            client
                .post(url)
                .bearer_auth("sk-sim-a")
                .body(body)
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.expect("task"));
    }
    statuses
}

#[tokio::test(start_paused = true)]
async fn error_answers_are_immediate() {
    let sim = sim().await;
    let client = client();
    let started = Instant::now();
    let refused = post_openai(&client, &sim, "sk-unknown", &chat("x"))
        .await
        .expect("sent");
    assert_eq!(refused.status(), 401);
    let invalid = post_openai(
        &client,
        &sim,
        "sk-sim-a",
        &serde_json::json!({"model": "m"}),
    )
    .await
    .expect("sent");
    assert_eq!(invalid.status(), 400);
    assert_eq!(started.elapsed(), Duration::ZERO);
}
