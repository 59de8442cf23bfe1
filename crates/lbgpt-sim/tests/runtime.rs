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
