//! Per-key RPM and TPM limits, their 429s and headers.

mod common;

use common::{chat, client, header, json_body, post_openai};
use lbgpt_sim::{KeyConfig, LimitMode, SimConfig, Simulator};
use std::time::Duration;

/// A real (not paused) window, short to keep the test fast, long enough for a loaded machine
/// to send three requests within it.
const WINDOW: Duration = Duration::from_secs(1);

/// A client without timers of its own, for tests on paused tokio time.
fn paused_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .expect("client builds")
}

#[tokio::test]
async fn rpm_limit_answers_429_with_an_honest_retry_after() {
    let sim = Simulator::start(
        SimConfig::new().key(
            KeyConfig::new("sk-sim-a")
                .rpm(2)
                .limit_mode(LimitMode::sliding_window(WINDOW)),
        ),
    )
    .await
    .expect("starts");
    let client = client();
    let first = post_openai(&client, &sim, "sk-sim-a", &chat("1"))
        .await
        .expect("sent");
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "x-ratelimit-limit-requests").as_deref(),
        Some("2")
    );
    assert_eq!(
        header(&first, "x-ratelimit-remaining-requests").as_deref(),
        Some("1")
    );
    assert_eq!(
        header(&first, "x-ratelimit-reset-requests").as_deref(),
        Some("1s")
    );
    assert_eq!(
        header(&first, "x-ratelimit-limit-tokens"),
        None,
        "no token limit set"
    );
    let second = post_openai(&client, &sim, "sk-sim-a", &chat("2"))
        .await
        .expect("sent");
    assert_eq!(
        header(&second, "x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );

    let refused = post_openai(&client, &sim, "sk-sim-a", &chat("3"))
        .await
        .expect("sent");
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after").as_deref(), Some("1"));
    let wait_ms: u64 = header(&refused, "retry-after-ms")
        .expect("retry-after-ms")
        .parse()
        .expect("a number");
    assert!(wait_ms > 0 && wait_ms <= 1000, "retry-after-ms {wait_ms}");
    assert_eq!(
        header(&refused, "x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    let error = json_body(refused).await;
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    assert_eq!(error["error"]["type"], "requests");

    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    let after = post_openai(&client, &sim, "sk-sim-a", &chat("3"))
        .await
        .expect("sent");
    assert_eq!(after.status(), 200, "retry-after was honest");
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!(
        (stats.requests, stats.succeeded, stats.rate_limited),
        (4, 3, 1)
    );
    assert_eq!(sim.stats().status(429), 1);
}

#[tokio::test(start_paused = true)]
async fn the_60_second_window_works_with_paused_time() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a").rpm(1)))
        .await
        .expect("starts");
    // No client timers, so paused time only moves when the test sleeps.
    let client = paused_client();
    assert_eq!(
        post_openai(&client, &sim, "sk-sim-a", &chat("1"))
            .await
            .expect("sent")
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    let refused = post_openai(&client, &sim, "sk-sim-a", &chat("2"))
        .await
        .expect("sent");
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after").as_deref(), Some("45"));
    assert_eq!(header(&refused, "retry-after-ms").as_deref(), Some("45000"));
    assert_eq!(
        header(&refused, "x-ratelimit-reset-requests").as_deref(),
        Some("45s")
    );

    tokio::time::sleep(Duration::from_millis(44_999)).await;
    let early = post_openai(&client, &sim, "sk-sim-a", &chat("2"))
        .await
        .expect("sent");
    assert_eq!(early.status(), 429, "a millisecond early is still refused");
    assert_eq!(header(&early, "retry-after-ms").as_deref(), Some("1"));
    tokio::time::sleep(Duration::from_millis(1)).await;
    let on_time = post_openai(&client, &sim, "sk-sim-a", &chat("2"))
        .await
        .expect("sent");
    assert_eq!(on_time.status(), 200);
    assert_eq!(
        header(&on_time, "x-ratelimit-reset-requests").as_deref(),
        Some("1m0s")
    );
}

#[tokio::test(start_paused = true)]
async fn tpm_limit_charges_prompt_and_budget_at_arrival() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a").tpm(100)))
        .await
        .expect("starts");
    let client = paused_client();
    // "hi" is 8 prompt tokens; with a budget of 20 x n = 2 the charge is 48.
    let request = chat("hi").max_tokens(20).n(2);
    assert_eq!(lbgpt_core::tokens::approx_prompt_tokens(&request), 8);
    let first = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "x-ratelimit-limit-tokens").as_deref(),
        Some("100")
    );
    assert_eq!(
        header(&first, "x-ratelimit-remaining-tokens").as_deref(),
        Some("52")
    );
    let second = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(
        header(&second, "x-ratelimit-remaining-tokens").as_deref(),
        Some("4")
    );

    let refused = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(refused.status(), 429);
    // A refused request is not charged.
    assert_eq!(
        header(&refused, "x-ratelimit-remaining-tokens").as_deref(),
        Some("4")
    );
    // The first charge (48) must expire to make room: 60 s after it, no time having passed.
    assert_eq!(header(&refused, "retry-after-ms").as_deref(), Some("60000"));
    assert_eq!(header(&refused, "retry-after").as_deref(), Some("60"));
    assert_eq!(
        header(&refused, "x-ratelimit-reset-tokens").as_deref(),
        Some("1m0s")
    );
    assert_eq!(json_body(refused).await["error"]["type"], "tokens");

    let too_large = chat("hi").max_tokens(200);
    let never = post_openai(&client, &sim, "sk-sim-a", &too_large)
        .await
        .expect("sent");
    assert_eq!(never.status(), 429);
    assert_eq!(header(&never, "retry-after"), None, "it can never fit");
    assert!(json_body(never).await["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("too large")));

    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(after.status(), 200);
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!((stats.succeeded, stats.rate_limited), (3, 2));
    assert_eq!(stats.prompt_tokens, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_counters_hold_under_concurrency() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a").rpm(50)))
        .await
        .expect("starts");
    let client = client();
    let url = format!("{}/chat/completions", sim.base_url());
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth("sk-sim-a")
                    .body(serde_json::to_vec(&chat(&format!("{i}"))).expect("serialises"))
                    .send()
                    .await
                    .expect("sent")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.expect("task") {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, limited), (50, 70));
    let stats = sim.stats();
    assert_eq!(stats.requests, 120);
    assert_eq!((stats.status(200), stats.status(429)), (50, 70));
    let key = stats.keys["sk-sim-a"];
    assert_eq!(
        (key.requests, key.succeeded, key.rate_limited),
        (120, 50, 70)
    );
}

#[tokio::test(start_paused = true)]
async fn token_factor_scales_prompt_tokens_in_limits_and_usage() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a").tpm(100).token_factor(1.5))
            .key(KeyConfig::new("sk-sim-b").tpm(100)),
    )
    .await
    .expect("starts");
    let client = paused_client();
    // "hi" is 8 prompt tokens by the approximation; this provider counts 12.
    let request = chat("hi").max_tokens(20);
    let scaled = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(scaled.status(), 200);
    assert_eq!(
        header(&scaled, "x-ratelimit-remaining-tokens").as_deref(),
        Some("68"),
        "charged 12 + 20"
    );
    let usage = json_body(scaled).await["usage"].clone();
    assert_eq!(usage["prompt_tokens"], 12);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        usage["completion_tokens"].as_u64().map(|c| c + 12)
    );
    let plain = post_openai(&client, &sim, "sk-sim-b", &request)
        .await
        .expect("sent");
    assert_eq!(
        header(&plain, "x-ratelimit-remaining-tokens").as_deref(),
        Some("72")
    );
    assert_eq!(json_body(plain).await["usage"]["prompt_tokens"], 8);
    // 68 left, then 36, then 4: the third request does not fit.
    for expected in [200, 200, 429] {
        let status = post_openai(&client, &sim, "sk-sim-a", &request)
            .await
            .expect("sent")
            .status();
        assert_eq!(status, expected);
    }
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!(stats.prompt_tokens, 36);
    assert_eq!(
        stats.tokens_charged, 96,
        "three requests of 12 + 20 let through"
    );
    assert_eq!(
        sim.key_stats("sk-sim-b").map(|s| s.tokens_charged),
        Some(28)
    );
}

#[tokio::test]
async fn a_token_factor_must_be_positive() {
    for factor in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error =
            Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a").token_factor(factor)))
                .await
                .expect_err("refused");
        assert!(
            error.to_string().contains("keys[0].token_factor"),
            "{error}"
        );
    }
}
