//! The cache layer in front of the real OpenAI service on the simulator: hits and misses,
//! errors never cached, per-request modes, coalescing, and the API key kept out of keys.

mod common;

use bytes::Bytes;
use common::{provider, request, sim, upstream_calls, KEY, OTHER_KEY};
use lbgpt_cache::{Cache, CacheConfig, CacheLayer, CacheMode, CacheStore, MemoryStore};
use lbgpt_core::{CacheStatus, ChatResponse, Error};
use lbgpt_openai::OpenAiService;
use lbgpt_sim::Fault;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};

fn cached(layer: &CacheLayer, service: OpenAiService) -> Cache<OpenAiService> {
    layer.layer(service)
}

async fn call(
    service: &Cache<OpenAiService>,
    request: lbgpt_core::ChatRequest,
) -> Result<ChatResponse, Error> {
    service.clone().oneshot(request).await
}

#[tokio::test]
async fn second_identical_request_is_a_hit_with_hit_metadata() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = cached(&layer, provider(&sim, KEY));

    let first = call(&service, request("hello"))
        .await
        .expect("first answer");
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    assert_eq!(first.meta.attempts, 1);
    assert_eq!(first.meta.member.as_deref(), Some("sim"));

    let second = call(&service, request("hello"))
        .await
        .expect("second answer");
    assert_eq!(second.meta.cache, CacheStatus::Exact);
    assert_eq!(second.meta.attempts, 0);
    assert_eq!(second.meta.member, None);
    assert!(second.meta.latency < Duration::from_secs(5));
    // The same wire answer (the metadata is not part of it).
    assert_eq!(
        serde_json::to_value(&first).expect("json"),
        serde_json::to_value(&second).expect("json")
    );
    assert_eq!(
        second.first_text(),
        Some(lbgpt_sim::expected_answer(&request("hello")))
    );
    assert_eq!(upstream_calls(&sim), 1);

    // A different request is a miss.
    let other = call(&service, request("goodbye")).await.expect("answer");
    assert_eq!(other.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 2);

    let stats = layer.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 2, 2));
    assert_eq!((stats.coalesced, stats.bypassed, stats.errors), (0, 0, 0));
}

#[tokio::test]
async fn errors_are_never_cached() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = cached(&layer, provider(&sim, KEY));
    sim.script(KEY, [Fault::ServerError, Fault::Status(400)]);

    let err = call(&service, request("q"))
        .await
        .expect_err("scripted 500");
    assert!(
        matches!(&err, Error::Api(api) if api.status == 500),
        "{err:?}"
    );
    let err = call(&service, request("q"))
        .await
        .expect_err("scripted 400");
    assert!(
        matches!(&err, Error::Api(api) if api.status == 400),
        "{err:?}"
    );

    // The error was not stored: the next call goes upstream and succeeds.
    let ok = call(&service, request("q")).await.expect("then an answer");
    assert_eq!(ok.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 3);
    // And that success is what is served from now on.
    let hit = call(&service, request("q")).await.expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 3);
    assert_eq!(layer.stats().stores, 1);
}

#[tokio::test]
async fn modes_bypass_refresh_and_no_store() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = cached(&layer, provider(&sim, KEY));
    let req = || request("modes");

    // NoStore on an empty cache: upstream, nothing stored.
    let a = call(&service, req().cache_mode(CacheMode::NoStore))
        .await
        .expect("answer");
    assert_eq!(a.meta.cache, CacheStatus::Miss);
    let b = call(&service, req().cache_mode(CacheMode::Bypass))
        .await
        .expect("answer");
    assert_eq!(b.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 2);
    assert_eq!(layer.stats().stores, 0);

    // Bypass does not store either: the next default request is a miss, and stores.
    call(&service, req()).await.expect("answer");
    assert_eq!(upstream_calls(&sim), 3);
    assert_eq!(layer.stats().stores, 1);

    // Now cached: default and NoStore read it; Bypass and Refresh go upstream.
    for mode in [CacheMode::Use, CacheMode::NoStore] {
        let hit = call(&service, req().cache_mode(mode)).await.expect("hit");
        assert_eq!(hit.meta.cache, CacheStatus::Exact, "{mode:?}");
    }
    assert_eq!(upstream_calls(&sim), 3);
    call(&service, req().cache_mode(CacheMode::Bypass))
        .await
        .expect("answer");
    let refreshed = call(&service, req().cache_mode(CacheMode::Refresh))
        .await
        .expect("answer");
    assert_eq!(refreshed.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 5);
    assert_eq!(layer.stats().stores, 2, "refresh rewrote the entry");

    // The options never reach the provider.
    for seen in sim.seen_requests() {
        assert!(seen.body.get("options").is_none(), "{:?}", seen.body);
        assert!(seen.body.get("cache").is_none(), "{:?}", seen.body);
    }
    let stats = layer.stats();
    assert_eq!(stats.bypassed, 2);
    assert_eq!(stats.hits, 2);
    assert_eq!(stats.misses, 3);

    // A layer whose default is Refresh renews entries unless a request says otherwise.
    let refreshing = CacheLayer::with_config(
        Arc::clone(layer.store()),
        CacheConfig::new().default_mode(CacheMode::Refresh),
    );
    let service = cached(&refreshing, provider(&sim, KEY));
    call(&service, req()).await.expect("answer");
    assert_eq!(upstream_calls(&sim), 6);
    let hit = call(&service, req().cache_mode(CacheMode::Use))
        .await
        .expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 6);
}

#[tokio::test]
async fn streamed_requests_bypass_the_cache() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = cached(&layer, provider(&sim, KEY));
    let mut streamed = request("stream me");
    streamed.stream = Some(true);
    // The provider refuses streaming; the cache neither answers nor stores.
    call(&service, streamed.clone())
        .await
        .expect_err("no streaming");
    call(&service, streamed).await.expect_err("no streaming");
    assert_eq!(layer.stats().bypassed, 2);
    assert_eq!(layer.stats().stores, 0);
}

#[tokio::test]
async fn the_api_key_is_not_part_of_the_key_nor_of_the_stored_value() {
    let sim = sim(Duration::ZERO).await;
    let store = Arc::new(MemoryStore::new());
    let layer = CacheLayer::new(store.clone());
    let with_key_a = cached(&layer, provider(&sim, KEY));
    let with_key_b = cached(&layer, provider(&sim, OTHER_KEY));

    call(&with_key_a, request("shared")).await.expect("answer");
    let hit = call(&with_key_b, request("shared")).await.expect("answer");
    assert_eq!(
        hit.meta.cache,
        CacheStatus::Exact,
        "another API key shares the entry"
    );
    assert_eq!(upstream_calls(&sim), 1);

    let key = layer.key_for(&request("shared")).expect("key");
    let stored: Bytes = store.get(&key).await.expect("get").expect("stored");
    let text = String::from_utf8_lossy(&stored);
    assert!(
        !text.contains(KEY) && !text.contains("0123456789"),
        "{text}"
    );
    assert!(!key.to_string().contains(KEY));
}

#[tokio::test]
async fn namespaces_and_aliases_scope_entries() {
    let sim = sim(Duration::ZERO).await;
    let store: Arc<dyn CacheStore> = Arc::new(MemoryStore::new());
    let project_a = CacheLayer::with_config(
        Arc::clone(&store),
        CacheConfig::new()
            .namespace("a")
            .model_alias("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    );
    let project_b = CacheLayer::with_config(Arc::clone(&store), CacheConfig::new().namespace("b"));
    let a = cached(&project_a, provider(&sim, KEY));
    let b = cached(&project_b, provider(&sim, KEY));

    call(&a, request("scoped")).await.expect("answer");
    let other_project = call(&b, request("scoped")).await.expect("answer");
    assert_eq!(other_project.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 2);

    // The dated model name shares the entry of its alias in project a.
    let mut dated = request("scoped");
    dated.model = "gpt-4o-mini-2024-07-18".into();
    let hit = call(&a, dated.clone()).await.expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    // ... but not in project b, which has no alias.
    let miss = call(&b, dated).await.expect("answer");
    assert_eq!(miss.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 3);
}

#[tokio::test]
async fn invalidate_removes_an_entry() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = cached(&layer, provider(&sim, KEY));
    call(&service, request("stale")).await.expect("answer");
    layer
        .invalidate(&request("stale"))
        .await
        .expect("invalidate");
    let again = call(&service, request("stale")).await.expect("answer");
    assert_eq!(again.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_identical_concurrent_requests_make_one_upstream_call() {
    let sim = sim(Duration::from_millis(300)).await;
    let layer = CacheLayer::in_memory();
    let service = cached(&layer, provider(&sim, KEY));

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move { service.oneshot(request("together")).await })
        })
        .collect();
    let mut texts = Vec::new();
    for task in tasks {
        let response = task.await.expect("task").expect("answer");
        texts.push(response.first_text());
    }
    assert_eq!(
        upstream_calls(&sim),
        1,
        "one upstream call for 100 requests"
    );
    let expected = Some(lbgpt_sim::expected_answer(&request("together")));
    assert!(texts.iter().all(|text| *text == expected));
    let stats = layer.stats();
    assert_eq!(stats.requests(), 100);
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.hits + stats.coalesced, 99, "{stats:?}");
    assert_eq!(stats.stores, 1);
    assert_eq!(layer.in_flight(), 0, "the flight was unregistered");

    // Different requests in flight together are not coalesced.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move { service.oneshot(request(&format!("apart {i}"))).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("answer");
    }
    assert_eq!(upstream_calls(&sim), 11);
}

#[tokio::test]
async fn coalesced_callers_all_get_the_error_and_it_is_not_cached() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    // The provider gives up after 300 ms; the simulator stalls the first request for 3 s, so
    // the shared call ends in a timeout error while all callers wait for it.
    let impatient = OpenAiService::new(
        lbgpt_openai::OpenAiConfig::new()
            .api_key(KEY)
            .base_url(sim.base_url())
            .no_proxy()
            .request_timeout(Duration::from_millis(300)),
    )
    .expect("valid config");
    let service = cached(&layer, impatient);
    sim.script(KEY, [Fault::Stall(Duration::from_secs(3))]);

    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(service.clone().oneshot(request("fails together"))))
        .collect();
    for task in tasks {
        let err = task.await.expect("task").expect_err("the shared timeout");
        assert!(matches!(&err, Error::Timeout { .. }), "{err:?}");
    }
    assert_eq!(upstream_calls(&sim), 1);
    let stats = layer.stats();
    assert_eq!((stats.misses, stats.coalesced, stats.stores), (1, 19, 0));
    assert_eq!(layer.in_flight(), 0);

    let ok = call(&service, request("fails together"))
        .await
        .expect("the next call succeeds");
    assert_eq!(ok.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 2);
}

// Current-thread runtime: the followers spawned before the sleep have all run (and joined the
// flight) before the sleep ends, however loaded the machine is.
#[tokio::test]
async fn followers_get_the_answer_when_the_leader_is_cancelled() {
    let sim = sim(Duration::from_millis(400)).await;
    let layer = CacheLayer::in_memory();
    let service = cached(&layer, provider(&sim, KEY));

    let leader = tokio::spawn(service.clone().oneshot(request("leader leaves")));
    // Let the leader start its flight before the followers arrive.
    while layer.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let followers: Vec<_> = (0..5)
        .map(|_| tokio::spawn(service.clone().oneshot(request("leader leaves"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    leader.abort();
    assert!(leader.await.expect_err("aborted").is_cancelled());

    for follower in followers {
        let response = follower.await.expect("task").expect("answer");
        assert_eq!(
            response.first_text(),
            Some(lbgpt_sim::expected_answer(&request("leader leaves")))
        );
    }
    assert_eq!(upstream_calls(&sim), 1);
    assert_eq!(layer.in_flight(), 0);
    // The answer was stored although its leader was gone.
    let hit = call(&service, request("leader leaves")).await.expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
}

#[tokio::test]
async fn a_flight_abandoned_by_everyone_is_unregistered() {
    let sim = sim(Duration::from_millis(300)).await;
    let layer = CacheLayer::in_memory();
    let service = cached(&layer, provider(&sim, KEY));
    let only = tokio::spawn(service.clone().oneshot(request("abandoned")));
    while layer.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    only.abort();
    let _ = only.await;
    assert_eq!(layer.in_flight(), 0, "dropping the last caller unregisters");
    // A new identical request starts a new call and gets an answer.
    let response = call(&service, request("abandoned")).await.expect("answer");
    assert_eq!(response.meta.cache, CacheStatus::Miss);
    assert_eq!(layer.stats().stores, 1);
}

#[tokio::test]
async fn without_coalescing_identical_requests_each_go_upstream() {
    let sim = sim(Duration::from_millis(100)).await;
    let layer = CacheLayer::with_config(
        Arc::new(MemoryStore::new()),
        CacheConfig::new().coalesce(false),
    );
    let service = cached(&layer, provider(&sim, KEY));
    let tasks: Vec<_> = (0..5)
        .map(|_| tokio::spawn(service.clone().oneshot(request("alone"))))
        .collect();
    for task in tasks {
        task.await.expect("task").expect("answer");
    }
    assert_eq!(upstream_calls(&sim), 5);
    assert_eq!(layer.stats().coalesced, 0);
}

#[tokio::test]
async fn the_providers_body_is_stored_and_never_handed_on() {
    for coalesce in [true, false] {
        let sim = sim(Duration::ZERO).await;
        let store = Arc::new(MemoryStore::new());
        let config = CacheConfig::new().coalesce(coalesce);
        let layer = CacheLayer::with_config(store.clone(), config.clone());
        // The real provider, with a tap on the bodies it hands to the cache.
        let bodies = Arc::new(std::sync::Mutex::new(Vec::<Bytes>::new()));
        let tapped = {
            let (provider, bodies) = (provider(&sim, KEY), Arc::clone(&bodies));
            tower::service_fn(move |request: lbgpt_core::ChatRequest| {
                let (provider, bodies) = (provider.clone(), Arc::clone(&bodies));
                async move {
                    let answer = provider.oneshot(request).await?;
                    if let Some(body) = &answer.meta.body {
                        bodies.lock().expect("tap").push(body.bytes().clone());
                    }
                    Ok::<_, Error>(answer)
                }
            })
        };
        let service = layer.layer(tapped);

        let first = service
            .clone()
            .oneshot(request("body"))
            .await
            .expect("an answer");
        assert_eq!(first.meta.cache, CacheStatus::Miss);
        // The cache asked the provider for its body, stored exactly those bytes (not the
        // answer serialised again), and took the body out of the answer it handed on.
        assert_eq!(first.meta.body, None, "coalesce {coalesce}");
        let kept = bodies.lock().expect("tap").clone();
        assert_eq!(kept.len(), 1, "coalesce {coalesce}");
        let key = config.key_for(&request("body")).expect("a key");
        let stored = store.get(&key).await.expect("store").expect("an entry");
        assert_eq!(stored, kept[0]);
        assert_ne!(
            stored,
            Bytes::from(serde_json::to_vec(&first).expect("json")),
            "the provider's bytes differ from a re-serialisation, so the check above tells them apart"
        );

        // A request that asks for no storing stores nothing and hands on no body.
        let not_stored = service
            .clone()
            .oneshot(request("no store").cache_mode(CacheMode::NoStore))
            .await
            .expect("an answer");
        assert_eq!(not_stored.meta.body, None);
        let key = config.key_for(&request("no store")).expect("a key");
        assert!(store.get(&key).await.expect("store").is_none());

        let hit = service
            .clone()
            .oneshot(request("body"))
            .await
            .expect("a hit");
        assert_eq!(hit.meta.cache, CacheStatus::Exact);
        assert_eq!(hit.meta.body, None);
    }
}

/// A memory store whose first lookup answers what the store held when it was asked, but only
/// once the test opens the gate (a slow store, such as Redis under load).
struct GatedFirstLookup {
    inner: MemoryStore,
    gate: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    asked: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl CacheStore for GatedFirstLookup {
    async fn get(
        &self,
        key: &lbgpt_cache::CacheKey,
    ) -> Result<Option<Bytes>, lbgpt_cache::StoreError> {
        let found = self.inner.get(key).await;
        let gate = self.gate.lock().await.take();
        if let Some(gate) = gate {
            self.asked.notify_one();
            let _ = gate.await;
        }
        found
    }

    async fn put(
        &self,
        key: &lbgpt_cache::CacheKey,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), lbgpt_cache::StoreError> {
        self.inner.put(key, value, ttl).await
    }

    async fn delete(&self, key: &lbgpt_cache::CacheKey) -> Result<(), lbgpt_cache::StoreError> {
        self.inner.delete(key).await
    }
}

#[tokio::test]
async fn a_miss_whose_identical_call_ended_meanwhile_looks_again_and_hits() {
    let sim = sim(Duration::ZERO).await;
    let (open, gate) = tokio::sync::oneshot::channel();
    let store = Arc::new(GatedFirstLookup {
        inner: MemoryStore::new(),
        gate: tokio::sync::Mutex::new(Some(gate)),
        asked: tokio::sync::Notify::new(),
    });
    let layer = CacheLayer::new(store.clone());
    let service = cached(&layer, provider(&sim, KEY));

    // The first request misses, but its lookup's answer is held back...
    let slow = tokio::spawn({
        let service = service.clone();
        async move { call(&service, request("race")).await }
    });
    store.asked.notified().await;
    // ...while an identical request misses, calls upstream, stores its answer and ends.
    let fast = call(&service, request("race")).await.expect("an answer");
    assert_eq!(fast.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 1);

    // The first request's miss is stale: it must look again, not call upstream a second time.
    open.send(()).expect("the lookup waits");
    let slow = slow.await.expect("no panic").expect("an answer");
    assert_eq!(slow.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 1);
    assert_eq!(layer.stats().hits, 1);
}
