//! `LoadBalancedGpt` (one OpenAI key + one Azure deployment) against the simulator on loopback.

mod common;

use common::{assert_answers, request};
use lbgpt::azure::AzureConfig;
use lbgpt::openai::OpenAiConfig;
use lbgpt::{ChatRequest, Error, LoadBalancedGpt, LoadBalancedGptBuilder, MemberState};
use lbgpt_sim::{Fault, KeyConfig, SimConfig, Simulator};
use std::collections::BTreeMap;

const OPENAI_KEY: &str = "sk-sim-lb-openai";
const AZURE_KEY: &str = "sim-lb-azure-key";
const DEPLOYMENT: &str = "mini-deployment";

async fn sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(OPENAI_KEY))
            .key(KeyConfig::new(AZURE_KEY))
            .azure_deployment(DEPLOYMENT, "gpt-4o-mini"),
    )
    .await
    .expect("simulator starts")
}

/// Both sides on the simulator, the rest at the defaults.
fn builder(sim: &Simulator) -> LoadBalancedGptBuilder {
    LoadBalancedGpt::builder()
        .openai_config(
            OpenAiConfig::new()
                .api_key(OPENAI_KEY)
                .base_url(sim.base_url())
                .no_proxy(),
        )
        .azure_config(AzureConfig::new(sim.endpoint()).no_proxy())
        .azure_api_key(AZURE_KEY)
        .azure_model_map([("gpt-4o-mini", DEPLOYMENT)])
        .max_concurrent_requests(32)
}

/// Runs `count` requests, checks every answer, and counts them per serving member.
async fn split(gpt: &LoadBalancedGpt, count: usize) -> BTreeMap<String, usize> {
    let requests: Vec<ChatRequest> = (0..count).map(request).collect();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_ratio_sends_a_quarter_to_openai_and_three_quarters_to_azure() {
    let sim = sim().await;
    let gpt = builder(&sim).build().expect("client builds");
    let count = 1200;

    let per_member = split(&gpt, count).await;

    let openai = per_member.get("openai").copied().unwrap_or(0);
    let azure = per_member.get("azure").copied().unwrap_or(0);
    assert_eq!(openai + azure, count, "{per_member:?}");
    // Binomial(1200, 0.25): mean 300, standard deviation 15; 5 deviations of tolerance.
    assert!(
        (225..=375).contains(&openai),
        "OpenAI got {openai} of {count}, expected about 300"
    );
    // The simulator saw the same split, per key, with no request sent twice.
    let sim_openai = sim.key_stats(OPENAI_KEY).expect("openai key").requests;
    let sim_azure = sim.key_stats(AZURE_KEY).expect("azure key").requests;
    assert_eq!(
        (sim_openai, sim_azure),
        (openai as u64, azure as u64),
        "requests per key at the simulator"
    );
    // And so do the balancer's statistics.
    let stats = gpt.stats();
    let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["openai", "azure"]);
    assert_eq!(stats[0].succeeded, openai as u64);
    assert_eq!(stats[1].succeeded, azure as u64);
    assert!(stats.iter().all(|s| s.state == MemberState::Active));
    assert!(stats[1].prompt_tokens > stats[0].prompt_tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_ratio_moves_the_split() {
    let sim = sim().await;
    let gpt = builder(&sim)
        .ratio_openai_to_azure(0.8)
        .build()
        .expect("client builds");
    let per_member = split(&gpt, 800).await;
    let openai = per_member.get("openai").copied().unwrap_or(0);
    // Binomial(800, 0.8): mean 640, standard deviation 11.3.
    assert!((583..=697).contains(&openai), "{per_member:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratio_zero_keeps_openai_as_a_standby_for_azure_failures() {
    let sim = sim().await;
    let gpt = builder(&sim)
        .ratio_openai_to_azure(0.0)
        .build()
        .expect("client builds");
    let per_member = split(&gpt, 100).await;
    assert_eq!(per_member.get("azure"), Some(&100), "{per_member:?}");
    assert_eq!(sim.key_stats(OPENAI_KEY).expect("key").requests, 0);

    // Azure fails twice with a server error: those requests move to OpenAI at once.
    sim.script(AZURE_KEY, [Fault::ServerError, Fault::ServerError]);
    let per_member = split(&gpt, 20).await;
    assert_eq!(per_member.values().sum::<usize>(), 20);
    let failovers = gpt.member_stats("azure").expect("azure stats").failovers;
    assert_eq!(failovers, 2, "{:?}", gpt.stats());
    assert_eq!(
        per_member.get("openai"),
        Some(&2),
        "the failed requests were served by the standby: {per_member:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_style_constructor_and_headroom_accessors() {
    let sim = sim().await;
    // The seed's four arguments. Its OpenAI side points at the real API, so it is only built
    // here, never called.
    let gpt = LoadBalancedGpt::new(
        OPENAI_KEY,
        AZURE_KEY,
        sim.endpoint(),
        [("gpt-4o-mini", DEPLOYMENT)],
    )
    .expect("builds without any network call");
    assert_eq!(gpt.max_concurrent(), 5);
    assert_eq!(gpt.handle().member_names(), ["openai", "azure"]);
    assert!(gpt.member_stats("nobody").is_none());
    assert!(gpt.headroom("nobody").is_none());
}

#[test]
fn bad_settings_are_config_errors_naming_the_setting() {
    let err = LoadBalancedGpt::builder()
        .openai_api_key("sk-x")
        .azure_api_key("k")
        .build()
        .expect_err("no endpoint");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("azure_api_base")),
        "{err}"
    );
    for ratio in [-0.1, 1.5, f64::NAN] {
        let err = LoadBalancedGpt::builder()
            .openai_api_key("sk-x")
            .azure_api_base("https://x.example")
            .azure_api_key("k")
            .ratio_openai_to_azure(ratio)
            .build()
            .expect_err("ratio out of range");
        assert!(
            matches!(&err, Error::Config(text) if text.contains("ratio_openai_to_azure")),
            "{err}"
        );
    }
    let err = LoadBalancedGpt::builder()
        .azure_config(AzureConfig::new("https://x.example"))
        .azure_api_base("https://y.example")
        .build()
        .expect_err("endpoint set twice");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("twice")),
        "{err}"
    );
    let err = LoadBalancedGpt::builder()
        .openai_api_key("sk-x")
        .azure_api_base("https://x.example")
        .azure_api_key("k")
        .azure_model_map([("gpt-4o-mini", "d")])
        .max_concurrent_requests(0)
        .build()
        .expect_err("zero concurrency");
    assert!(
        matches!(&err, Error::Config(text) if text.contains("max_concurrent_requests")),
        "{err}"
    );
}
