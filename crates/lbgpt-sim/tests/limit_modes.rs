//! The token-bucket (OpenAI-like) and short-window (Azure-like) limit modes, over HTTP on
//! paused tokio time: the simulator's clock moves only when the test sleeps.

mod common;

use common::{chat, header, json_body, post_openai};
use lbgpt_sim::{KeyConfig, LimitMode, SimConfig, Simulator};
use std::time::Duration;

/// A client without timers of its own, so paused time moves only when the test sleeps.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .expect("client builds")
}

async fn sim(key: KeyConfig) -> Simulator {
    Simulator::start(SimConfig::new().key(key))
        .await
        .expect("starts")
}

/// Sends `count` requests and returns how many got each of 200 and 429.
async fn send(client: &reqwest::Client, sim: &Simulator, count: usize) -> (usize, usize) {
    let (mut ok, mut limited) = (0, 0);
    for i in 0..count {
        let status = post_openai(client, sim, "sk-sim-a", &chat(&format!("{i}")))
            .await
            .expect("sent")
            .status();
        match status.as_u16() {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    (ok, limited)
}

fn millis(response: &reqwest::Response, name: &str) -> u64 {
    header(response, name)
        .unwrap_or_else(|| panic!("{name} is present"))
        .parse()
        .expect("a number")
}

#[tokio::test(start_paused = true)]
async fn short_windows_accept_a_sixth_of_the_rpm_per_10_seconds() {
    let sim = sim(KeyConfig::new("sk-sim-a")
        .rpm(600)
        .limit_mode(LimitMode::short_windows()))
    .await;
    let client = client();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(send(&client, &sim, 100).await, (100, 0));

    let refused = post_openai(&client, &sim, "sk-sim-a", &chat("101"))
        .await
        .expect("sent");
    assert_eq!(refused.status(), 429);
    // The window opened at the simulator's start; the next one opens 6 s from now.
    assert_eq!(millis(&refused, "retry-after-ms"), 6_000);
    assert_eq!(millis(&refused, "retry-after"), 6);
    assert_eq!(millis(&refused, "x-ratelimit-limit-requests"), 100);
    assert_eq!(millis(&refused, "x-ratelimit-remaining-requests"), 0);
    assert_eq!(
        header(&refused, "x-ratelimit-reset-requests").as_deref(),
        Some("6s")
    );
    let body = json_body(refused).await;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");

    // A millisecond early is still the full window.
    tokio::time::sleep(Duration::from_millis(5_999)).await;
    assert_eq!(send(&client, &sim, 1).await, (0, 1));
    tokio::time::sleep(Duration::from_millis(1)).await;
    let honoured = post_openai(&client, &sim, "sk-sim-a", &chat("101"))
        .await
        .expect("sent");
    assert_eq!(honoured.status(), 200, "the retry-after was honest");
    assert_eq!(millis(&honoured, "x-ratelimit-remaining-requests"), 99);
    assert_eq!(
        header(&honoured, "x-ratelimit-reset-requests").as_deref(),
        Some("10s")
    );
    // The new window holds exactly 100 again.
    assert_eq!(send(&client, &sim, 100).await, (99, 1));
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!((stats.succeeded, stats.rate_limited), (200, 3));
    // Every arrival from 4 s to 10 s lies within one 10 s span.
    assert_eq!(
        (stats.peak_requests_10s, stats.peak_requests_60s),
        (203, 203)
    );
}

#[tokio::test(start_paused = true)]
async fn short_windows_limit_tokens_per_window_too() {
    // 6000 TPM: 1000 tokens per 10 s. "hi" costs 8 prompt tokens, plus a budget of 92.
    let sim = sim(KeyConfig::new("sk-sim-a")
        .tpm(6_000)
        .limit_mode(LimitMode::short_windows()))
    .await;
    let client = client();
    let request = chat("hi").max_tokens(92);
    for _ in 0..10 {
        let ok = post_openai(&client, &sim, "sk-sim-a", &request)
            .await
            .expect("sent");
        assert_eq!(ok.status(), 200);
    }
    let refused = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(refused.status(), 429);
    assert_eq!(millis(&refused, "retry-after-ms"), 10_000);
    assert_eq!(millis(&refused, "x-ratelimit-limit-tokens"), 1_000);
    assert_eq!(millis(&refused, "x-ratelimit-remaining-tokens"), 0);
    assert_eq!(json_body(refused).await["error"]["type"], "tokens");
    // Larger than a window's share: it can never fit.
    let too_large = post_openai(&client, &sim, "sk-sim-a", &chat("hi").max_tokens(993))
        .await
        .expect("sent");
    assert_eq!(too_large.status(), 429);
    assert_eq!(header(&too_large, "retry-after"), None);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(after.status(), 200);
    assert_eq!(millis(&after, "x-ratelimit-remaining-tokens"), 900);
}

#[tokio::test(start_paused = true)]
async fn token_bucket_bursts_the_limit_then_refills_at_limit_per_60_seconds() {
    // 120 RPM: a burst of 120, then 2 per second (one per 500 ms).
    let sim = sim(KeyConfig::new("sk-sim-a")
        .rpm(120)
        .limit_mode(LimitMode::token_bucket()))
    .await;
    let client = client();
    assert_eq!(send(&client, &sim, 121).await, (120, 1));

    let refused = post_openai(&client, &sim, "sk-sim-a", &chat("x"))
        .await
        .expect("sent");
    assert_eq!(refused.status(), 429);
    assert_eq!(millis(&refused, "retry-after-ms"), 500);
    assert_eq!(millis(&refused, "retry-after"), 1);
    assert_eq!(millis(&refused, "x-ratelimit-limit-requests"), 120);
    assert_eq!(millis(&refused, "x-ratelimit-remaining-requests"), 0);
    assert_eq!(
        header(&refused, "x-ratelimit-reset-requests").as_deref(),
        Some("1m0s"),
        "an empty bucket is full again in 60 s"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    let honoured = post_openai(&client, &sim, "sk-sim-a", &chat("x"))
        .await
        .expect("sent");
    assert_eq!(honoured.status(), 200, "the retry-after was honest");
    assert_eq!(
        send(&client, &sim, 1).await,
        (0, 1),
        "one refill, one request"
    );

    // Ten seconds refill twenty requests, no more.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(send(&client, &sim, 21).await, (20, 1));
    // After a full minute idle the bucket is full, and no fuller.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let full = post_openai(&client, &sim, "sk-sim-a", &chat("x"))
        .await
        .expect("sent");
    assert_eq!(millis(&full, "x-ratelimit-remaining-requests"), 119);
    assert_eq!(
        header(&full, "x-ratelimit-reset-requests").as_deref(),
        Some("500ms")
    );
    assert_eq!(send(&client, &sim, 120).await, (119, 1));
}

#[tokio::test(start_paused = true)]
async fn token_bucket_refills_tokens_continuously() {
    // 6000 TPM: 100 tokens per second. Each request costs 8 + 92 = 100.
    let sim = sim(KeyConfig::new("sk-sim-a")
        .tpm(6_000)
        .limit_mode(LimitMode::token_bucket()))
    .await;
    let client = client();
    let request = chat("hi").max_tokens(92);
    for _ in 0..60 {
        let ok = post_openai(&client, &sim, "sk-sim-a", &request)
            .await
            .expect("sent");
        assert_eq!(ok.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let refused = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(refused.status(), 429);
    assert_eq!(millis(&refused, "x-ratelimit-remaining-tokens"), 25);
    assert_eq!(millis(&refused, "retry-after-ms"), 750);
    tokio::time::sleep(Duration::from_millis(750)).await;
    let honoured = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(honoured.status(), 200);
    assert_eq!(millis(&honoured, "x-ratelimit-remaining-tokens"), 0);
}
