//! The exact cache on `ChatGpt` and `AzureGpt`, against the simulator on loopback: repeats are
//! answered without an upstream call, the cache sits outside the retry layer, errors are not
//! cached, and the provider family keeps OpenAI and Azure entries apart.

mod common;

use common::{assert_answers, request};
use lbgpt::cache::{CacheConfig, CacheLayer, CacheStore, MemoryStore};
use lbgpt::{AzureGpt, CacheMode, CacheStatus, ChatGpt, ChatRequest, Error, Provider};
use lbgpt_sim::{Fault, KeyConfig, Latency, SimConfig, Simulator};
use std::sync::Arc;
use std::time::Duration;

const OPENAI_KEY: &str = "sk-sim-cache-facade";
const AZURE_KEY: &str = "sim-cache-facade-azure";
const DEPLOYMENT: &str = "mini-cache";

async fn sim(latency: Duration) -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(OPENAI_KEY))
            .key(KeyConfig::new(AZURE_KEY))
            .azure_deployment(DEPLOYMENT, "gpt-4o-mini")
            .latency(Latency::fixed(latency)),
    )
    .await
    .expect("simulator starts")
}

fn chatgpt(sim: &Simulator) -> lbgpt::ChatGptBuilder {
    ChatGpt::builder()
        .api_key(OPENAI_KEY)
        .base_url(sim.base_url())
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(5))
}

fn azuregpt(sim: &Simulator) -> lbgpt::AzureGptBuilder {
    AzureGpt::builder(sim.endpoint())
        .api_key(AZURE_KEY)
        .deployment("gpt-4o-mini", DEPLOYMENT)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(5))
}

/// HTTP requests the simulator received.
fn upstream(sim: &Simulator) -> u64 {
    sim.stats().requests
}

#[tokio::test]
async fn a_repeated_request_is_answered_from_the_memory_cache_without_an_upstream_call() {
    let sim = sim(Duration::ZERO).await;
    let gpt = chatgpt(&sim)
        .cache(CacheLayer::in_memory())
        .build()
        .expect("client builds");
    let question = request(1);

    let first = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    assert_eq!(first.meta.attempts, 1);
    assert_eq!(upstream(&sim), 1);

    let second = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(second.meta.cache, CacheStatus::Exact);
    assert_eq!(second.meta.attempts, 0, "a hit costs no attempt");
    assert_eq!(second.meta.member, None, "no provider answered");
    assert_answers(&question, &second);
    assert_eq!(second.id, first.id, "the stored answer itself");
    assert_eq!(upstream(&sim), 1, "zero extra upstream calls");

    let stats = gpt.cache_stats().expect("the client has a cache");
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 1, 1));

    // Per request: refresh goes upstream again and replaces the entry; bypass neither reads
    // nor writes.
    let fresh = gpt
        .chat_completion(question.clone().cache_mode(CacheMode::Refresh))
        .await
        .expect("answer");
    assert_eq!(fresh.meta.cache, CacheStatus::Miss);
    let bypassed = gpt
        .chat_completion(question.clone().cache_mode(CacheMode::Bypass))
        .await
        .expect("answer");
    assert_eq!(bypassed.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream(&sim), 3);
    let stats = gpt.cache_stats().expect("cache");
    assert_eq!((stats.hits, stats.misses, stats.bypassed), (1, 2, 1));

    // A different request is a different key.
    let other = gpt.chat_completion(request(2)).await.expect("answer");
    assert_eq!(other.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream(&sim), 4);
}

#[tokio::test]
async fn without_a_cache_every_request_goes_upstream_and_there_are_no_cache_stats() {
    let sim = sim(Duration::ZERO).await;
    let gpt = chatgpt(&sim).build().expect("client builds");
    for _ in 0..2 {
        let answer = gpt.chat_completion(request(1)).await.expect("answer");
        assert_eq!(answer.meta.cache, CacheStatus::Miss);
    }
    assert_eq!(upstream(&sim), 2);
    assert!(gpt.cache_stats().is_none());
    assert!(gpt.cache().is_none());
}

#[tokio::test]
async fn the_cache_is_outside_the_retry_layer_a_retried_answer_is_stored_once() {
    let sim = sim(Duration::ZERO).await;
    sim.script(OPENAI_KEY, [Fault::ServerError, Fault::ServerError]);
    let gpt = chatgpt(&sim)
        .cache(CacheLayer::in_memory())
        .max_attempts(5)
        .build()
        .expect("client builds");
    let question = request(7);

    let first = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(first.meta.attempts, 3, "two 500s, then the answer");
    assert_eq!(upstream(&sim), 3);

    let second = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(second.meta.cache, CacheStatus::Exact);
    assert_eq!(second.meta.attempts, 0);
    assert_answers(&question, &second);
    assert_eq!(upstream(&sim), 3);
    let stats = gpt.cache_stats().expect("cache");
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 1, 1));
}

#[tokio::test]
async fn errors_are_never_cached() {
    let sim = sim(Duration::ZERO).await;
    sim.script(OPENAI_KEY, [Fault::Status(400)]);
    let gpt = chatgpt(&sim)
        .cache(CacheLayer::in_memory())
        .build()
        .expect("client builds");
    let question = request(3);

    let failed = gpt.chat_completion(question.clone()).await;
    assert!(
        matches!(&failed, Err(Error::Api(api)) if api.status == 400),
        "{failed:?}"
    );
    let answered = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(
        answered.meta.cache,
        CacheStatus::Miss,
        "the error was not stored"
    );
    let hit = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream(&sim), 2);
    let stats = gpt.cache_stats().expect("cache");
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_of_one_list_make_one_upstream_call() {
    let sim = sim(Duration::from_millis(50)).await;
    let gpt = chatgpt(&sim)
        .cache(CacheLayer::in_memory())
        .max_concurrent_requests(20)
        .build()
        .expect("client builds");
    let question = request(5);

    let results = gpt.chat_completion_list(vec![question.clone(); 20]).await;

    for result in &results {
        assert_answers(&question, result.as_ref().expect("answer"));
    }
    assert_eq!(
        upstream(&sim),
        1,
        "one upstream call for 20 identical requests"
    );
    let stats = gpt.cache_stats().expect("cache");
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.hits + stats.coalesced, 19, "{stats:?}");
}

#[tokio::test]
async fn azure_gpt_caches_and_keys_with_the_azure_family() {
    let sim = sim(Duration::ZERO).await;
    let gpt = azuregpt(&sim)
        .cache_store(
            Arc::new(MemoryStore::new()),
            CacheConfig::new().namespace("t"),
        )
        .build()
        .expect("client builds");
    let layer = gpt.cache().expect("a cache");
    assert_eq!(layer.config().get_family(), "azure");
    assert_eq!(layer.config().get_namespace(), "t");
    let question = request(4);

    let first = gpt.chat_completion(question.clone()).await.expect("answer");
    let second = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    assert_eq!(second.meta.cache, CacheStatus::Exact);
    assert_answers(&question, &second);
    assert_eq!(upstream(&sim), 1);
    assert_eq!(gpt.cache_stats().map(|s| s.hits), Some(1));
}

#[tokio::test]
async fn openai_and_azure_clients_sharing_a_store_keep_apart_unless_given_one_family() {
    let sim = sim(Duration::ZERO).await;
    let store: Arc<dyn CacheStore> = Arc::new(MemoryStore::new());
    let openai = chatgpt(&sim)
        .cache_store(Arc::clone(&store), CacheConfig::new())
        .build()
        .expect("client builds");
    let azure = azuregpt(&sim)
        .cache_store(Arc::clone(&store), CacheConfig::new())
        .build()
        .expect("client builds");
    assert_eq!(
        openai.cache().map(|c| c.config().get_family()),
        Some("openai")
    );
    let question: ChatRequest = request(9);

    openai
        .chat_completion(question.clone())
        .await
        .expect("answer");
    let from_azure = azure
        .chat_completion(question.clone())
        .await
        .expect("answer");
    assert_eq!(
        from_azure.meta.cache,
        CacheStatus::Miss,
        "an OpenAI answer is not served to an Azure client"
    );
    assert_eq!(upstream(&sim), 2);

    // One family chosen by the user: the two clients share entries.
    let shared = CacheConfig::new().family("gpt-4o-mini-anywhere");
    let openai = chatgpt(&sim)
        .cache_store(Arc::clone(&store), shared.clone())
        .build()
        .expect("client builds");
    let azure = azuregpt(&sim)
        .cache_store(Arc::clone(&store), shared)
        .build()
        .expect("client builds");
    openai
        .chat_completion(question.clone())
        .await
        .expect("answer");
    let from_azure = azure
        .chat_completion(question.clone())
        .await
        .expect("answer");
    assert_eq!(from_azure.meta.cache, CacheStatus::Exact);
    assert_answers(&question, &from_azure);
    assert_eq!(upstream(&sim), 3);
}

#[tokio::test]
async fn clients_given_one_layer_share_its_entries_and_counters() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let a = chatgpt(&sim).cache(layer.clone()).build().expect("builds");
    let b = chatgpt(&sim)
        .name("second-client")
        .cache(layer.clone())
        .build()
        .expect("builds");

    a.chat_completion(request(11)).await.expect("answer");
    let hit = b.chat_completion(request(11)).await.expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream(&sim), 1);
    assert_eq!(layer.stats().hits, 1);
    assert_eq!(a.cache_stats(), b.cache_stats());
    assert_eq!(
        layer.config().get_family(),
        "",
        "a layer of your own is used as it is"
    );
}

#[tokio::test]
async fn a_cached_client_still_converts_into_a_provider_of_its_kind() {
    let sim = sim(Duration::ZERO).await;
    let openai = chatgpt(&sim)
        .cache(CacheLayer::in_memory())
        .build()
        .expect("builds");
    let azure = azuregpt(&sim)
        .cache(CacheLayer::in_memory())
        .build()
        .expect("builds");
    assert_eq!(Provider::from(openai).kind(), "openai");
    assert_eq!(Provider::from(azure).kind(), "azure");
}
