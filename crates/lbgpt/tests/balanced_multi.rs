//! `MultiLoadBalancedGpt` against the simulator on loopback: allocation functions, weights and
//! per-provider limits.

mod common;

use common::{assert_answers, request};
use lbgpt::azure::AzureConfig;
use lbgpt::balance::usage::{InMemoryUsage, PacingConfig};
use lbgpt::openai::OpenAiConfig;
use lbgpt::{ChatGpt, ChatRequest, Error, MultiLoadBalancedGpt, Provider, Strategy};
use lbgpt_sim::{KeyConfig, LimitMode, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn openai(sim: &Simulator, name: &str, key: &str) -> OpenAiConfig {
    OpenAiConfig::new()
        .api_key(key)
        .base_url(sim.base_url())
        .name(name)
        .no_proxy()
}

/// Runs `requests`, checks every answer, and counts them per serving member.
async fn run(gpt: &MultiLoadBalancedGpt, requests: Vec<ChatRequest>) -> BTreeMap<String, usize> {
    let results = gpt.chat_completion_list(requests.clone()).await;
    let mut per_member = BTreeMap::new();
    for (request, result) in requests.iter().zip(results) {
        let answer = result.expect("every request succeeds");
        assert_answers(request, &answer);
        let member = answer
            .meta
            .member
            .as_deref()
            .expect("member set")
            .to_owned();
        *per_member.entry(member).or_insert(0) += 1;
    }
    per_member
}

/// The limits below are per 2 s window instead of per minute (the simulator and the usage
/// tracker agree on that), so that a batch needing several windows' quota takes seconds.
const WINDOW: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_headroom_with_limits_completes_a_batch_beyond_the_quota_without_a_single_429() {
    // Three keys with different limits, each enforced its own way.
    let sim = Simulator::start(
        SimConfig::new()
            .key(
                KeyConfig::new("sk-sliding")
                    .rpm(20)
                    .tpm(3_000)
                    .limit_mode(LimitMode::sliding_window(WINDOW)),
            )
            .key(
                KeyConfig::new("sk-bucket")
                    .rpm(10)
                    .tpm(4_000)
                    .limit_mode(LimitMode::token_bucket_over(WINDOW)),
            )
            .key(
                KeyConfig::new("sk-short")
                    .rpm(24)
                    .tpm(1_500)
                    .limit_mode(LimitMode::short_windows_of(WINDOW / 4, WINDOW)),
            ),
    )
    .await
    .expect("simulator starts");
    let usage = InMemoryUsage::new(
        PacingConfig::default()
            .window(WINDOW)
            .short_window(Some(WINDOW / 4)),
    );
    let gpt = MultiLoadBalancedGpt::builder()
        .gpt(
            Provider::openai(openai(&sim, "sliding", "sk-sliding"))
                .limit_rpm(20)
                .limit_tpm(3_000),
        )
        .gpt(
            Provider::openai(openai(&sim, "bucket", "sk-bucket"))
                .rpm(10)
                .tpm(4_000),
        )
        .gpt(
            Provider::openai(openai(&sim, "short", "sk-short"))
                .rpm(24)
                .tpm(1_500),
        )
        .allocation_function("max_headroom".parse().expect("a known strategy"))
        .usage(Arc::new(usage))
        .max_concurrent_requests(60)
        .max_wait(Duration::from_secs(30))
        .build()
        .expect("client builds");

    // About 50 requests fit in one window over all keys; 120 need more than two windows, and
    // 60 start at once: only pacing and reservations keep them under the limits.
    let per_member = run(&gpt, (0..120).map(request).collect()).await;

    let stats = sim.stats();
    assert_eq!(stats.status(429), 0, "no 429 at all: {stats:?}");
    assert_eq!(
        stats.status(200),
        120,
        "each request answered once: {stats:?}"
    );
    assert_eq!(per_member.values().sum::<usize>(), 120);
    for name in ["sliding", "bucket", "short"] {
        let served = per_member.get(name).copied().unwrap_or(0);
        assert!(served >= 10, "{name} served {served}: {per_member:?}");
        let member = gpt.member_stats(name).expect("stats");
        assert_eq!(member.rate_limited_seen, 0);
        assert_eq!(member.succeeded, served as u64);
        let headroom = gpt.headroom(name).expect("tracked");
        assert!(headroom.limits.rpm.is_some() && headroom.limits.tpm.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_with_weights_splits_as_the_seed_does() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-a"))
            .key(KeyConfig::new("sk-b"))
            .azure_deployment("mini", "gpt-4o-mini"),
    )
    .await
    .expect("simulator starts");
    // The seed's recipe: a ChatGpt and an AzureGpt, weights 0.25 / 0.75, `random`.
    let chatgpt = ChatGpt::builder()
        .api_key("sk-a")
        .base_url(sim.base_url())
        .name("openai")
        .build()
        .expect("ChatGpt builds");
    let azuregpt = lbgpt::AzureGpt::builder(sim.endpoint())
        .api_key("sk-b")
        .deployment("gpt-4o-mini", "mini")
        .name("azure")
        .build()
        .expect("AzureGpt builds");
    let gpt = MultiLoadBalancedGpt::builder()
        .gpt(chatgpt)
        .gpt(azuregpt)
        .allocation_function_weights([0.25, 0.75])
        .allocation_function("random".parse().expect("the seed's name"))
        .max_concurrent_requests(32)
        .build()
        .expect("client builds");

    let per_member = run(&gpt, (0..1200).map(request).collect()).await;
    let openai = per_member.get("openai").copied().unwrap_or(0);
    assert_eq!(per_member.values().sum::<usize>(), 1200);
    // Binomial(1200, 0.25): mean 300, standard deviation 15; 5 deviations of tolerance.
    assert!((225..=375).contains(&openai), "{per_member:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_allocation_function_serves_a_batch_across_all_providers() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-1"))
            .key(KeyConfig::new("sk-2"))
            .key(KeyConfig::new("sk-3")),
    )
    .await
    .expect("simulator starts");
    for name in Strategy::NAMES {
        let strategy: Strategy = name.parse().expect("a known strategy");
        let gpt = MultiLoadBalancedGpt::new(
            [
                openai(&sim, "p1", "sk-1"),
                openai(&sim, "p2", "sk-2"),
                openai(&sim, "p3", "sk-3"),
            ],
            strategy,
        )
        .expect("client builds");
        let per_member = run(&gpt, (0..150).map(request).collect()).await;
        assert_eq!(per_member.values().sum::<usize>(), 150, "{name}");
        if *name != "least_latency" && *name != "least_busy" && *name != "max_headroom" {
            // The load-blind strategies use every provider; the load-aware ones may keep to
            // the idle ones when five requests at a time leave several idle.
            assert_eq!(per_member.len(), 3, "{name}: {per_member:?}");
        }
        let stats = gpt.stats();
        let total: u64 = stats.iter().map(|s| s.succeeded).sum();
        assert_eq!(total, 150, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_rotates_keys_while_the_client_runs() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-old"))
            .key(KeyConfig::new("sk-new")),
    )
    .await
    .expect("simulator starts");
    let gpt = MultiLoadBalancedGpt::builder()
        .gpt(openai(&sim, "old", "sk-old"))
        .allocation_function(Strategy::RoundRobin)
        .build()
        .expect("client builds");
    run(&gpt, (0..20).map(request).collect()).await;

    // Rotate: add the new key, retire the old one; the same client keeps working.
    let new = lbgpt::openai::OpenAiService::new(openai(&sim, "new", "sk-new")).expect("service");
    gpt.handle()
        .add_member(lbgpt::balance::Member::new("new", new))
        .expect("added");
    gpt.handle().remove_member("old").expect("removed");
    let per_member = run(&gpt, (20..60).map(request).collect()).await;
    assert_eq!(per_member.get("new"), Some(&40), "{per_member:?}");
    assert_eq!(sim.key_stats("sk-old").expect("old").requests, 20);
    assert_eq!(sim.key_stats("sk-new").expect("new").requests, 40);
}

#[test]
fn bad_settings_are_config_errors() {
    let err = MultiLoadBalancedGpt::builder()
        .build()
        .expect_err("no provider");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("at least one provider")),
        "{err}"
    );

    let two = || {
        MultiLoadBalancedGpt::builder()
            .gpt(OpenAiConfig::new().api_key("k").name("a"))
            .gpt(OpenAiConfig::new().api_key("k").name("b"))
    };
    let err = two()
        .allocation_function_weights([1.0])
        .build()
        .expect_err("one weight for two providers");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("allocation_function_weights")),
        "{err}"
    );
    let err = two()
        .allocation_function_weights([1.0, -1.0])
        .build()
        .expect_err("negative weight");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("\"b\"")),
        "{err}"
    );
    let err = MultiLoadBalancedGpt::builder()
        .gpt(OpenAiConfig::new().api_key("k").name("same"))
        .gpt(OpenAiConfig::new().api_key("k").name("same"))
        .build()
        .expect_err("duplicate names");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("same")),
        "{err}"
    );
    let err = MultiLoadBalancedGpt::builder()
        .gpt(Provider::openai(OpenAiConfig::new().api_key("k")).limit_tpm(0))
        .build()
        .expect_err("zero limit");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("tpm")),
        "{err}"
    );
    let err = MultiLoadBalancedGpt::builder()
        .gpt(
            AzureConfig::new("not a url")
                .api_key("k")
                .deployment("m", "d")
                .name("az"),
        )
        .build()
        .expect_err("bad endpoint");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("az")),
        "{err}"
    );
    assert!("fastest".parse::<Strategy>().is_err());
}
