//! The exact cache on the balanced clients: a disk cache answers a second run (a new client on
//! the same directory, as after a restart) with zero upstream calls, and the key family
//! follows the kinds of the providers.

mod common;

use common::{assert_answers, request};
use lbgpt::azure::AzureConfig;
use lbgpt::cache::{CacheConfig, CacheLayer, DiskStore, MemoryStore};
use lbgpt::openai::OpenAiConfig;
use lbgpt::{
    BalancedGpt, CacheStatus, ChatGpt, ChatRequest, ChatResponse, Error, LoadBalancedGpt,
    MultiLoadBalancedGpt, Provider,
};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::path::Path;
use std::sync::Arc;

const OPENAI_KEY: &str = "sk-sim-cache-balanced";
const AZURE_KEY: &str = "sim-cache-balanced-azure";
const DEPLOYMENT: &str = "mini-balanced";

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

/// A `LoadBalancedGpt` on the simulator with a disk cache in `dir`.
fn load_balanced(sim: &Simulator, dir: &Path) -> LoadBalancedGpt {
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
        .ratio_openai_to_azure(0.5)
        .max_concurrent_requests(8)
        .cache_store(
            Arc::new(DiskStore::open(dir).expect("disk store opens")),
            CacheConfig::new().namespace("balanced-test"),
        )
        .build()
        .expect("client builds")
}

fn answers(
    results: Vec<Result<ChatResponse, Error>>,
    requests: &[ChatRequest],
) -> Vec<ChatResponse> {
    requests
        .iter()
        .zip(results)
        .map(|(request, result)| {
            let answer = result.expect("every request succeeds");
            assert_answers(request, &answer);
            answer
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_disk_cache_makes_zero_upstream_calls() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let requests: Vec<ChatRequest> = (0..30).map(request).collect();

    let first = load_balanced(&sim, dir.path());
    assert_eq!(
        first.cache().map(|c| c.config().get_family()),
        Some("openai+azure"),
        "one family for both sides"
    );
    let run = answers(
        first.chat_completion_list(requests.clone()).await,
        &requests,
    );
    assert!(run.iter().all(|a| a.meta.cache == CacheStatus::Miss));
    assert_eq!(sim.stats().requests, 30);
    let members: u64 = first.stats().iter().map(|m| m.requests).sum();
    assert_eq!(members, 30);
    drop(first);

    // A new client on the same directory, as a new process would be.
    let second = load_balanced(&sim, dir.path());
    let rerun = answers(
        second.chat_completion_list(requests.clone()).await,
        &requests,
    );
    assert!(rerun.iter().all(|a| a.meta.cache == CacheStatus::Exact));
    assert!(rerun.iter().all(|a| a.meta.attempts == 0));
    assert_eq!(
        sim.stats().requests,
        30,
        "zero upstream calls on the second run"
    );
    let members: u64 = second.stats().iter().map(|m| m.requests).sum();
    assert_eq!(members, 0, "no provider saw a request");
    let stats = second.cache_stats().expect("cache");
    assert_eq!((stats.hits, stats.misses), (30, 0));
    for (before, after) in run.iter().zip(&rerun) {
        assert_eq!(before.id, after.id, "the stored answers themselves");
    }
}

#[tokio::test]
async fn the_family_of_a_balanced_client_follows_the_kinds_of_its_providers() {
    let openai = |name: &str| {
        OpenAiConfig::new()
            .api_key("sk-unused")
            .base_url("http://127.0.0.1:9/v1")
            .name(name)
    };
    let azure = |name: &str| {
        AzureConfig::new("http://127.0.0.1:9")
            .api_key("unused")
            .deployment("gpt-4o-mini", "d")
            .name(name)
    };
    let memory = || Arc::new(MemoryStore::new());
    let family = |gpt: &BalancedGpt| {
        gpt.cache()
            .map(|c| c.config().get_family().to_owned())
            .expect("a cache")
    };

    let two_keys = BalancedGpt::builder()
        .provider(openai("a"))
        .provider(openai("b"))
        .cache_store(memory(), CacheConfig::new())
        .build()
        .expect("builds");
    assert_eq!(family(&two_keys), "openai");

    let converted = ChatGpt::builder()
        .openai_config(openai("from-chatgpt"))
        .build()
        .expect("builds");
    let azure_only = BalancedGpt::builder()
        .provider(azure("eu"))
        .provider(azure("us"))
        .cache_store(memory(), CacheConfig::new())
        .build()
        .expect("builds");
    assert_eq!(family(&azure_only), "azure");

    let mixed = BalancedGpt::builder()
        .provider(azure("eu"))
        .provider(converted)
        .cache_store(memory(), CacheConfig::new())
        .build()
        .expect("builds");
    assert_eq!(family(&mixed), "openai+azure", "a ChatGpt keeps its kind");

    let custom = tower::service_fn(|_request: ChatRequest| async {
        Err::<ChatResponse, Error>(Error::Cancelled)
    });
    let with_custom = BalancedGpt::builder()
        .provider(openai("a"))
        .provider(Provider::service("mine", custom))
        .cache_store(memory(), CacheConfig::new())
        .build()
        .expect("builds");
    assert_eq!(family(&with_custom), "openai+custom");

    let explicit = BalancedGpt::builder()
        .provider(openai("a"))
        .cache_store(memory(), CacheConfig::new().family("mine"))
        .build()
        .expect("builds");
    assert_eq!(family(&explicit), "mine", "a configured family is kept");

    let multi = MultiLoadBalancedGpt::builder()
        .gpt(openai("a"))
        .gpt(azure("eu"))
        .allocation_function_weights([1.0, 3.0])
        .cache(CacheLayer::in_memory())
        .build()
        .expect("builds");
    assert_eq!(multi.cache().map(|c| c.config().get_family()), Some(""));
    assert_eq!(multi.cache_stats().map(|s| s.requests()), Some(0));
    assert!(BalancedGpt::builder()
        .provider(openai("a"))
        .build()
        .expect("builds")
        .cache_stats()
        .is_none());
}
