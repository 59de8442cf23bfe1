//! The usage tracker in front of the real simulator (over loopback, with the real
//! `OpenAiService`), on paused time: with the key's limits configured, no enforcement mode
//! answers 429, and the limit is used to 97 % over two minutes.

use futures::future::join_all;
use lbgpt_balance::tokens::{TiktokenEstimator, TokenEstimator};
use lbgpt_balance::usage::{InMemoryUsage, Limits, Outcome, PacingConfig, UsageTracker};
use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_sim::{KeyConfig, LimitMode, SimConfig, Simulator};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tower::ServiceExt;

const RUN: Duration = Duration::from_secs(120);
const WORKERS: usize = 8;

fn service(sim: &Simulator, key: &str) -> OpenAiService {
    OpenAiService::new(
        OpenAiConfig::new()
            .api_key(key)
            .base_url(sim.base_url())
            .name(key),
    )
    .expect("a valid OpenAI configuration")
}

fn request(worker: usize, i: usize) -> ChatRequest {
    let text = format!(
        "Worker {worker} asks question number {i}: {}",
        "how many tokens does this take? ".repeat(1 + i % 7)
    );
    ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user(text)]).max_tokens(40)
}

/// `WORKERS` request loops on `key` for `RUN`, each reserving before sending and waiting the
/// computed `retry_at` when the key is full. Returns the answers that were not 200.
async fn drive(sim: &Simulator, key: &str, tracker: Arc<InMemoryUsage>) -> usize {
    let estimator = TiktokenEstimator::default();
    let service = service(sim, key);
    let start = Instant::now();
    let workers = (0..WORKERS).map(|worker| {
        let tracker = tracker.clone();
        let estimator = estimator.clone();
        let service = service.clone();
        async move {
            let mut failures = 0;
            let mut i = 0;
            while Instant::now() < start + RUN {
                let request = request(worker, i);
                let estimate = estimator.estimate(&request);
                match tracker.try_reserve_estimate(key, estimate).await {
                    Ok(reservation) => {
                        let result = service.clone().oneshot(request).await;
                        if result.is_err() {
                            failures += 1;
                        }
                        tracker.settle(reservation, Outcome::of(&result));
                        i += 1;
                    }
                    Err(unavailable) => {
                        let at = unavailable.retry_at.expect("these requests fit later");
                        tokio::time::sleep_until(at).await;
                    }
                }
            }
            failures
        }
    });
    join_all(workers).await.into_iter().sum()
}

async fn simulator(key: KeyConfig) -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(key)
            .latency(lbgpt_sim::Latency::fixed(Duration::from_millis(5)))
            .seed(3),
    )
    .await
    .expect("the simulator starts on loopback")
}

async fn assert_rpm_mode_never_refuses(mode: LimitMode) {
    let key = "sk-sim-rpm";
    let sim = simulator(KeyConfig::new(key).rpm(600).limit_mode(mode)).await;
    let tracker = Arc::new(InMemoryUsage::new(PacingConfig::default()));
    tracker.register(key, Limits::none().rpm(600));
    let failures = drive(&sim, key, tracker).await;
    let stats = sim.key_stats(key).expect("known key");
    eprintln!("{mode:?}: {stats:?}");
    assert_eq!(failures, 0, "{mode:?}: failed requests");
    assert_eq!(stats.rate_limited, 0, "{mode:?}: the simulator sent 429s");
    assert!(
        stats.succeeded as f64 >= 0.97 * 1200.0,
        "{mode:?}: only {} of 1200 in two minutes",
        stats.succeeded
    );
    assert!(stats.peak_requests_10s <= 100, "{mode:?}: {stats:?}");
    assert!(stats.peak_requests_60s <= 600, "{mode:?}: {stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_sliding_window_key_is_never_refused() {
    assert_rpm_mode_never_refuses(LimitMode::default()).await;
}

#[tokio::test(start_paused = true)]
async fn a_token_bucket_key_is_never_refused() {
    assert_rpm_mode_never_refuses(LimitMode::token_bucket()).await;
}

#[tokio::test(start_paused = true)]
async fn a_short_windows_key_is_never_refused() {
    assert_rpm_mode_never_refuses(LimitMode::short_windows()).await;
}

#[tokio::test(start_paused = true)]
async fn a_key_counting_more_tokens_than_our_tokenizer_is_learnt_and_used_to_97_percent() {
    // Azure-like short windows on tokens, and a provider counting 1.3x the simulator's
    // approximate prompt tokens, which themselves differ from tiktoken's count.
    let key = "sk-sim-tpm";
    let sim = simulator(
        KeyConfig::new(key)
            .tpm(30_000)
            .limit_mode(LimitMode::short_windows())
            .token_factor(1.3),
    )
    .await;
    let tracker = Arc::new(InMemoryUsage::new(PacingConfig::default()));
    tracker.register(key, Limits::none().tpm(30_000));
    let failures = drive(&sim, key, tracker.clone()).await;
    let stats = sim.key_stats(key).expect("known key");
    let snapshot = tracker.snapshot(key).expect("registered");
    eprintln!("{stats:?}; correction {}", snapshot.token_correction);
    assert_eq!(failures, 0, "failed requests; {stats:?}");
    assert_eq!(stats.rate_limited, 0, "the simulator sent 429s: {stats:?}");
    assert!(
        snapshot.token_correction > 1.3,
        "correction {}",
        snapshot.token_correction
    );
    assert!(
        stats.tokens_charged as f64 >= 0.97 * 60_000.0,
        "only {} of 60000 tokens in two minutes",
        stats.tokens_charged
    );
}
