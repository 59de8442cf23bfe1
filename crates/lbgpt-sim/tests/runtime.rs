//! Changes made while the simulator runs: revoked keys, exhausted quotas, added and removed
//! keys, latency.

mod common;

use common::{chat, client, json_body, post_azure, post_openai};
use lbgpt_sim::{Fault, KeyConfig, SimConfig, Simulator};

async fn status(client: &reqwest::Client, sim: &Simulator, key: &str) -> u16 {
    post_openai(client, sim, key, &chat("hello"))
        .await
        .expect("sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_revoked_key_gets_401_from_then_on_and_can_be_restored() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a").name("a").rpm(100))
            .key(KeyConfig::new("sk-sim-b")),
    )
    .await
    .expect("starts");
    let client = client();
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    sim.script("a", [Fault::ServerError]);

    assert!(sim.revoke_key("a"), "revoked by id");
    let refused = post_openai(&client, &sim, "sk-sim-a", &chat("hello"))
        .await
        .expect("sent");
    assert_eq!(refused.status(), 401);
    let body = json_body(refused).await;
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(
        !body.to_string().contains("sk-sim-a"),
        "never echoes the key"
    );
    let refused_azure = post_azure(
        &client,
        &sim,
        "gpt4o",
        Some("2024-10-21"),
        "sk-sim-a",
        &chat("hello"),
    )
    .await
    .expect("sent");
    assert_eq!(refused_azure.status(), 401);
    assert_eq!(
        status(&client, &sim, "sk-sim-b").await,
        200,
        "others unaffected"
    );

    let stats = sim.key_stats("a").expect("known");
    assert_eq!(
        (stats.requests, stats.succeeded, stats.unauthorized),
        (3, 1, 2)
    );
    assert_eq!(stats.faults_injected, 0, "the scripted fault waits");
    assert_eq!(sim.stats().status(401), 2);

    assert!(sim.restore_key("sk-sim-a"), "restored by key string");
    assert_eq!(
        status(&client, &sim, "sk-sim-a").await,
        500,
        "the script resumes"
    );
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    assert!(!sim.revoke_key("sk-unknown"));
}

#[tokio::test]
async fn an_exhausted_quota_answers_insufficient_quota_until_cleared() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a").rpm(2)))
        .await
        .expect("starts");
    let client = client();
    assert!(sim.set_quota_exhausted("sk-sim-a", true));
    for _ in 0..3 {
        let refused = post_openai(&client, &sim, "sk-sim-a", &chat("hello"))
            .await
            .expect("sent");
        assert_eq!(refused.status(), 429);
        assert!(refused.headers().get("retry-after").is_none());
        let body = json_body(refused).await;
        assert_eq!(body["error"]["code"], "insufficient_quota");
        assert_eq!(body["error"]["type"], "insufficient_quota");
    }
    assert!(sim.set_quota_exhausted("sk-sim-a", false));
    // The refused requests were not charged against the 2 RPM limit.
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 429);
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!(
        (
            stats.insufficient_quota,
            stats.rate_limited,
            stats.injected_429s
        ),
        (3, 1, 0)
    );
    assert_eq!(sim.stats().status(429), 4);
}

#[tokio::test]
async fn a_revoked_key_answers_401_before_its_quota() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a")))
        .await
        .expect("starts");
    let client = client();
    sim.set_quota_exhausted("sk-sim-a", true);
    sim.revoke_key("sk-sim-a");
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 401);
}

#[tokio::test]
async fn injected_429s_are_told_apart_from_limit_429s() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a").rpm(1)))
        .await
        .expect("starts");
    let client = client();
    sim.script(
        "sk-sim-a",
        [
            Fault::RateLimited {
                retry_after: std::time::Duration::from_millis(10),
            },
            Fault::InsufficientQuota,
            Fault::Status(429),
            Fault::ServerError,
        ],
    );
    for expected in [429, 429, 429, 500, 200, 429] {
        assert_eq!(status(&client, &sim, "sk-sim-a").await, expected);
    }
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!(
        (
            stats.faults_injected,
            stats.injected_429s,
            stats.rate_limited
        ),
        (4, 3, 1)
    );
}

#[tokio::test]
async fn keys_added_at_run_time_are_served_with_their_limits() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a")))
        .await
        .expect("starts");
    let client = client();
    assert_eq!(status(&client, &sim, "sk-sim-new").await, 401);
    sim.add_key(KeyConfig::new("sk-sim-new").name("new").rpm(1))
        .expect("added");
    assert_eq!(status(&client, &sim, "sk-sim-new").await, 200);
    assert_eq!(
        status(&client, &sim, "sk-sim-new").await,
        429,
        "its limit applies"
    );
    let stats = sim.stats();
    assert_eq!(
        (stats.keys["new"].succeeded, stats.keys["new"].rate_limited),
        (1, 1)
    );
    assert!(sim
        .seen_requests()
        .last()
        .is_some_and(|r| r.key_id.as_deref() == Some("new")));

    for (bad, field) in [
        (KeyConfig::new("sk-sim-a"), "key.key"),
        (KeyConfig::new("sk-other").name("new"), "key.name"),
        (KeyConfig::new("sk-other").rpm(0), "key.rpm"),
        (KeyConfig::new(" "), "key.key"),
    ] {
        let error = sim.add_key(bad).expect_err("refused");
        assert!(error.to_string().contains(field), "{field}: {error}");
    }
}

#[tokio::test]
async fn removed_keys_get_401_and_keep_their_counters() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a").name("a").rpm(2))
            .key(KeyConfig::new("sk-sim-b")),
    )
    .await
    .expect("starts");
    let client = client();
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    assert!(sim.remove_key("sk-sim-a"));
    assert!(!sim.remove_key("a"), "already removed");
    let refused = post_openai(&client, &sim, "sk-sim-a", &chat("hello"))
        .await
        .expect("sent");
    assert_eq!(refused.status(), 401);
    assert_eq!(json_body(refused).await["error"]["code"], "invalid_api_key");
    assert_eq!(status(&client, &sim, "sk-sim-b").await, 200);

    let stats = sim.stats();
    assert_eq!(
        stats.keys["a"].succeeded, 2,
        "removed keys are still reported"
    );
    assert_eq!(stats.keys["a"].requests, 2, "the 401 counts for no key");
    assert_eq!(sim.key_stats("sk-sim-a").map(|s| s.succeeded), Some(2));
    assert!(!sim.revoke_key("a"), "switches apply to served keys only");

    // Added again: counting resumes, with fresh limits.
    sim.add_key(KeyConfig::new("sk-sim-a").name("a").rpm(2))
        .expect("added again");
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    assert_eq!(sim.key_stats("a").map(|s| s.succeeded), Some(3));
}

#[tokio::test(start_paused = true)]
async fn latency_can_change_at_run_time() {
    use std::time::Duration;
    use tokio::time::Instant;
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a")))
        .await
        .expect("starts");
    let client = reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .expect("client builds");
    let started = Instant::now();
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    assert!(started.elapsed() < Duration::from_millis(5));
    sim.set_latency(lbgpt_sim::Latency::fixed(Duration::from_secs(7)));
    let started = Instant::now();
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(7) && waited < Duration::from_millis(7_005),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn requests_in_flight_on_a_removed_or_revoked_key_finish() {
    use std::time::Duration;
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a"))
            .key(KeyConfig::new("sk-sim-b"))
            .latency(lbgpt_sim::Latency::fixed(Duration::from_secs(5))),
    )
    .await
    .expect("starts");
    let client = reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .expect("client builds");
    let (a, b, ()) = tokio::join!(
        status(&client, &sim, "sk-sim-a"),
        status(&client, &sim, "sk-sim-b"),
        async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(sim.remove_key("sk-sim-a"));
            assert!(sim.revoke_key("sk-sim-b"));
        }
    );
    assert_eq!((a, b), (200, 200));
    assert_eq!(status(&client, &sim, "sk-sim-a").await, 401);
    assert_eq!(status(&client, &sim, "sk-sim-b").await, 401);
}
