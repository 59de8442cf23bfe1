//! Scripted and random faults, each as a client sees it.

mod common;

use common::{chat, client, header, json_body, post_openai};
use lbgpt_sim::{Fault, FaultMix, KeyConfig, SimConfig, Simulator};
use std::time::{Duration, Instant};

async fn sim() -> Simulator {
    Simulator::start(SimConfig::new().key(KeyConfig::new("sk-sim-a").rpm(1_000)))
        .await
        .expect("simulator starts")
}

#[tokio::test]
async fn http_faults_answer_in_order_then_normal_service_resumes() {
    let sim = sim().await;
    let client = client();
    sim.script(
        "sk-sim-a",
        [
            Fault::RateLimited {
                retry_after: Duration::from_millis(300),
            },
            Fault::InsufficientQuota,
            Fault::ServerError,
            Fault::Unavailable {
                retry_after: Some(Duration::from_secs(2)),
            },
            Fault::Unavailable { retry_after: None },
            Fault::Status(418),
            Fault::Unauthorized,
        ],
    );
    let request = chat("hello");
    let next = || post_openai(&client, &sim, "sk-sim-a", &request);

    let limited = next().await.expect("sent");
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "retry-after").as_deref(), Some("1"));
    assert_eq!(header(&limited, "retry-after-ms").as_deref(), Some("300"));
    assert_eq!(
        header(&limited, "x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    assert_eq!(
        header(&limited, "x-ratelimit-reset-requests").as_deref(),
        Some("300ms")
    );
    assert_eq!(
        header(&limited, "x-ratelimit-limit-requests").as_deref(),
        Some("1000")
    );
    assert_eq!(
        json_body(limited).await["error"]["code"],
        "rate_limit_exceeded"
    );

    let quota = next().await.expect("sent");
    assert_eq!(quota.status(), 429);
    assert_eq!(header(&quota, "retry-after"), None);
    assert_eq!(
        json_body(quota).await["error"]["code"],
        "insufficient_quota"
    );

    let server = next().await.expect("sent");
    assert_eq!(server.status(), 500);
    assert_eq!(json_body(server).await["error"]["type"], "server_error");

    let unavailable = next().await.expect("sent");
    assert_eq!(unavailable.status(), 503);
    assert_eq!(header(&unavailable, "retry-after").as_deref(), Some("2"));
    assert_eq!(
        header(&unavailable, "retry-after-ms").as_deref(),
        Some("2000")
    );
    let bare = next().await.expect("sent");
    assert_eq!(bare.status(), 503);
    assert_eq!(header(&bare, "retry-after"), None);

    let teapot = next().await.expect("sent");
    assert_eq!(teapot.status(), 418);
    assert!(json_body(teapot).await["error"]["message"].is_string());

    let unauthorized = next().await.expect("sent");
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(
        json_body(unauthorized).await["error"]["code"],
        "invalid_api_key"
    );

    let normal = next().await.expect("sent");
    assert_eq!(normal.status(), 200);
    // Faulted requests were not charged: only this one counts against the limit.
    assert_eq!(
        header(&normal, "x-ratelimit-remaining-requests").as_deref(),
        Some("999")
    );

    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!(stats.requests, 8);
    assert_eq!(stats.faults_injected, 7);
    assert_eq!(stats.succeeded, 1);
    assert_eq!(
        stats.rate_limited, 0,
        "scripted 429s are faults, not limits"
    );
}

#[tokio::test]
async fn broken_bodies_fail_to_parse() {
    let sim = sim().await;
    let client = client();
    sim.script(
        "sk-sim-a",
        [
            Fault::MalformedJson,
            Fault::EmptyBody(502),
            Fault::NonJsonBody(502),
        ],
    );
    let request = chat("hello");

    let malformed = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(malformed.status(), 200);
    assert_eq!(
        header(&malformed, "content-type").as_deref(),
        Some("application/json")
    );
    let text = malformed.text().await.expect("body");
    assert!(text.starts_with("{\""), "looks like JSON: {text}");
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());

    let empty = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(empty.status(), 502);
    assert!(empty.text().await.expect("body").is_empty());

    let html = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(html.status(), 502);
    assert_eq!(header(&html, "content-type").as_deref(), Some("text/html"));
    let page = html.text().await.expect("body");
    assert!(page.contains("502 Bad Gateway"));
    assert!(serde_json::from_str::<serde_json::Value>(&page).is_err());
}

#[tokio::test]
async fn reset_closes_the_connection_without_an_answer() {
    let sim = sim().await;
    let client = client();
    sim.script("sk-sim-a", [Fault::Reset]);
    let error = post_openai(&client, &sim, "sk-sim-a", &chat("hello"))
        .await
        .expect_err("the connection is reset");
    assert!(!error.is_timeout(), "a reset is not a timeout: {error:?}");
    assert!(error.status().is_none());
    let chain = format!("{error:?}").to_lowercase();
    assert!(
        chain.contains("reset"),
        "error names a connection reset: {chain}"
    );
    // The next request gets a fresh connection and a normal answer.
    let after = post_openai(&client, &sim, "sk-sim-a", &chat("hello"))
        .await
        .expect("sent");
    assert_eq!(after.status(), 200);
    let stats = sim.stats();
    assert_eq!(stats.resets, 1);
    assert_eq!(stats.keys["sk-sim-a"].faults_injected, 1);
    assert_eq!(stats.keys["sk-sim-a"].succeeded, 1);
}

#[tokio::test]
async fn a_stall_trips_the_client_timeout_without_blocking_others() {
    let sim = sim().await;
    sim.script("sk-sim-a", [Fault::Stall(Duration::from_secs(30))]);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client builds");
    let started = Instant::now();
    let stalled = {
        let impatient = impatient.clone();
        let url = format!("{}/chat/completions", sim.base_url());
        tokio::spawn(async move {
            impatient
                .post(url)
                .bearer_auth("sk-sim-a")
                .body(serde_json::to_vec(&chat("slow")).expect("serialises"))
                .send()
                .await
        })
    };
    // Meanwhile another connection is served at once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let other = post_openai(&client(), &sim, "sk-sim-a", &chat("fast"))
        .await
        .expect("sent");
    assert_eq!(other.status(), 200);
    let error = stalled
        .await
        .expect("task")
        .expect_err("the stall outlasts the timeout");
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.key_stats("sk-sim-a").expect("known").faults_injected, 1);
}

#[tokio::test]
async fn a_short_stall_answers_normally_afterwards() {
    let sim = sim().await;
    sim.script("sk-sim-a", [Fault::Stall(Duration::from_millis(200))]);
    let started = Instant::now();
    let response = post_openai(&client(), &sim, "sk-sim-a", &chat("slow"))
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

/// Statuses (or 0 for a transport error) of `count` sequential requests.
async fn outcomes(sim: &Simulator, key: &str, count: usize) -> Vec<u16> {
    let client = client();
    let mut statuses = Vec::with_capacity(count);
    for i in 0..count {
        let status = match post_openai(&client, sim, key, &chat(&format!("request {i}"))).await {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the body so that the connection is reused.
                let _ = response.bytes().await;
                status
            }
            Err(_) => 0,
        };
        statuses.push(status);
    }
    statuses
}

#[tokio::test]
async fn random_faults_hit_the_configured_share_reproducibly() {
    let config = || {
        SimConfig::new()
            .seed(42)
            .key(
                KeyConfig::new("sk-500")
                    .random_faults(0.2, FaultMix::new().with(Fault::ServerError, 1)),
            )
            .key(KeyConfig::new("sk-mix").random_faults(0.2, FaultMix::default()))
    };
    let sim = Simulator::start(config()).await.expect("starts");
    let first = outcomes(&sim, "sk-500", 400).await;
    let errors = first.iter().filter(|s| **s == 500).count();
    assert!(
        (50..=110).contains(&errors),
        "{errors} of 400 failed at 20 %"
    );
    assert_eq!(first.iter().filter(|s| **s == 200).count(), 400 - errors);
    let stats = sim.key_stats("sk-500").expect("known");
    assert_eq!(stats.faults_injected as usize, errors);

    let mixed = outcomes(&sim, "sk-mix", 400).await;
    let failed = mixed.iter().filter(|s| **s != 200).count();
    // MalformedJson answers 200: count it through the simulator instead.
    let injected = sim.key_stats("sk-mix").expect("known").faults_injected as usize;
    assert!(
        (50..=110).contains(&injected),
        "{injected} of 400 faulted at 20 %"
    );
    assert!(failed <= injected && failed + 40 >= injected);

    // The same seed replays the same fates.
    let again = Simulator::start(config()).await.expect("starts");
    assert_eq!(outcomes(&again, "sk-500", 400).await, first);
    let other_seed = Simulator::start(config().seed(7)).await.expect("starts");
    assert_ne!(outcomes(&other_seed, "sk-500", 400).await, first);
}
