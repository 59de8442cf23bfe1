//! The embedding cache in front of the real OpenAI service on the simulator: only missing
//! inputs go upstream (checked against what the simulator received), answers in order with
//! the right indices and vectors, duplicates sent once, base64 and token inputs, modes,
//! usage, errors never stored, and inputs shared by concurrent requests.

mod common;

use bytes::Bytes;
use common::embedding::{
    assert_answers, charged, embed, received_inputs, reported, strings, wait_until, Gate, MODEL,
};
use common::{provider, sim, upstream_calls, KEY, OTHER_KEY};
use lbgpt_cache::{
    CacheConfig, CacheMode, CacheStore, EmbeddingCache, EmbeddingCacheLayer, MemoryStore,
};
use lbgpt_core::{CacheStatus, EmbeddingRequest, EmbeddingResponse, EmbeddingVector, Error};
use lbgpt_openai::OpenAiService;
use lbgpt_sim::Fault;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};

async fn call(
    service: &EmbeddingCache<OpenAiService>,
    request: EmbeddingRequest,
) -> Result<EmbeddingResponse, Error> {
    service.clone().oneshot(request).await
}

#[tokio::test]
async fn a_second_run_sends_only_the_new_inputs() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));

    let first = call(&service, embed(&["alpha", "beta", "gamma"]))
        .await
        .expect("first answer");
    assert_answers(&first, &["alpha", "beta", "gamma"]);
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    assert_eq!(first.meta.attempts, 1);
    assert_eq!(first.meta.member.as_deref(), Some("sim"));
    assert_eq!(first.model, MODEL);
    assert_eq!(reported(&first), charged(&sim, KEY));
    assert_eq!(
        received_inputs(&sim),
        vec![strings(&["alpha", "beta", "gamma"])]
    );

    // Two known inputs, two new ones, mixed: only the new ones go, in their order.
    let charged_before = charged(&sim, KEY);
    let second = call(&service, embed(&["beta", "delta", "alpha", "epsilon"]))
        .await
        .expect("second answer");
    assert_answers(&second, &["beta", "delta", "alpha", "epsilon"]);
    assert_eq!(
        second.meta.cache,
        CacheStatus::Partial { hits: 2, misses: 2 }
    );
    assert_eq!(second.meta.attempts, 1);
    assert_eq!(
        received_inputs(&sim)[1..],
        [strings(&["delta", "epsilon"])],
        "only the inputs not cached were sent"
    );
    // Usage is what this request was charged: the two new inputs only.
    assert_eq!(reported(&second), charged(&sim, KEY) - charged_before);
    assert!(reported(&second) > 0);

    // Everything cached: no upstream call, no charge.
    let third = call(&service, embed(&["epsilon", "gamma"]))
        .await
        .expect("third answer");
    assert_answers(&third, &["epsilon", "gamma"]);
    assert_eq!(third.meta.cache, CacheStatus::Exact);
    assert_eq!(third.meta.attempts, 0);
    assert_eq!(third.meta.member, None);
    assert_eq!(reported(&third), 0);
    assert_eq!(third.model, MODEL, "the stored answer's model");
    assert_eq!(upstream_calls(&sim), 2);

    let stats = layer.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (4, 5, 5));
    assert_eq!((stats.coalesced, stats.bypassed, stats.errors), (0, 0, 0));
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn repeated_inputs_are_sent_once_and_answered_at_every_position() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));

    let inputs = ["a", "b", "a", "c", "b", "a"];
    let answer = call(&service, embed(&inputs)).await.expect("answer");
    assert_answers(&answer, &inputs);
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_eq!(received_inputs(&sim), vec![strings(&["a", "b", "c"])]);
    assert_eq!(reported(&answer), charged(&sim, KEY));
    let stats = layer.stats();
    assert_eq!((stats.misses, stats.coalesced, stats.stores), (3, 3, 3));

    // Hits and misses, each repeated, interleaved.
    let inputs = ["c", "x", "c", "a", "x", "y"];
    let answer = call(&service, embed(&inputs)).await.expect("answer");
    assert_answers(&answer, &inputs);
    assert_eq!(
        answer.meta.cache,
        CacheStatus::Partial { hits: 3, misses: 3 }
    );
    assert_eq!(received_inputs(&sim)[1..], [strings(&["x", "y"])]);
    let stats = layer.stats();
    assert_eq!(
        stats.hits, 3,
        "every position answered from the store counts"
    );
    assert_eq!((stats.misses, stats.coalesced, stats.stores), (5, 4, 5));
    assert_eq!(stats.requests(), 12, "each input counted once");
}

#[tokio::test]
async fn single_inputs_share_entries_with_lists_and_keep_their_shape_on_the_wire() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));

    let one = call(&service, EmbeddingRequest::new(MODEL, "solo"))
        .await
        .expect("answer");
    assert_answers(&one, &["solo"]);
    let seen = sim.seen_requests();
    assert_eq!(
        seen[0].body["input"], "solo",
        "a single input is sent as given"
    );

    let listed = call(&service, embed(&["other", "solo"]))
        .await
        .expect("answer");
    assert_answers(&listed, &["other", "solo"]);
    assert_eq!(
        listed.meta.cache,
        CacheStatus::Partial { hits: 1, misses: 1 }
    );
    let seen = sim.seen_requests();
    assert_eq!(seen[1].body["input"], serde_json::json!(["other"]));

    let hit = call(&service, EmbeddingRequest::new(MODEL, "other"))
        .await
        .expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_answers(&hit, &["other"]);
    assert_eq!(upstream_calls(&sim), 2);
}

#[tokio::test]
async fn token_inputs_are_cached_per_token_list() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));

    let request = |lists: Vec<Vec<u32>>| EmbeddingRequest::new(MODEL, lists);
    let first = call(&service, request(vec![vec![1, 2, 3], vec![4]]))
        .await
        .expect("answer");
    assert_answers(&first, &["1 2 3", "4"]);
    let second = call(&service, request(vec![vec![4], vec![5, 6], vec![1, 2, 3]]))
        .await
        .expect("answer");
    assert_answers(&second, &["4", "5 6", "1 2 3"]);
    assert_eq!(
        second.meta.cache,
        CacheStatus::Partial { hits: 2, misses: 1 }
    );
    let seen = sim.seen_requests();
    assert_eq!(seen[1].body["input"], serde_json::json!([[5, 6]]));

    // The text "4" is not the token id 4: another entry.
    let text = call(&service, EmbeddingRequest::new(MODEL, "4"))
        .await
        .expect("answer");
    assert_eq!(text.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 3);
}

#[tokio::test]
async fn base64_and_dimensions_are_cached_as_asked() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    let base64 = |inputs: &[&str]| embed(inputs).encoding_format("base64");

    let fresh = call(&service, base64(&["one", "two"]))
        .await
        .expect("answer");
    assert_answers(&fresh, &["one", "two"]);
    assert!(fresh
        .data
        .iter()
        .all(|e| matches!(e.embedding, EmbeddingVector::Base64(_))));

    // Floats for a text cached as base64: another entry.
    let floats = call(&service, embed(&["one"])).await.expect("answer");
    assert_eq!(floats.meta.cache, CacheStatus::Miss);
    assert!(matches!(
        floats.data[0].embedding,
        EmbeddingVector::Float(_)
    ));

    let mixed = call(&service, base64(&["three", "two", "one"]))
        .await
        .expect("answer");
    assert_answers(&mixed, &["three", "two", "one"]);
    assert_eq!(
        mixed.meta.cache,
        CacheStatus::Partial { hits: 2, misses: 1 }
    );
    assert!(mixed
        .data
        .iter()
        .all(|e| matches!(e.embedding, EmbeddingVector::Base64(_))));
    // The cached base64 text is exactly what the provider sent.
    assert_eq!(mixed.data[1].embedding, fresh.data[1].embedding);
    assert_eq!(mixed.data[2].embedding, fresh.data[0].embedding);
    assert_eq!(received_inputs(&sim)[2..], [strings(&["three"])]);

    // Another dimension is another entry, with vectors of that dimension.
    let small = call(&service, embed(&["one", "two"]).dimensions(8))
        .await
        .expect("answer");
    assert_eq!(small.meta.cache, CacheStatus::Miss);
    for (embedding, text) in small.data.iter().zip(["one", "two"]) {
        assert_eq!(
            embedding.embedding.to_floats().expect("floats"),
            lbgpt_sim::expected_embedding_with_dimensions(text, 8)
        );
    }
    let again = call(&service, embed(&["two"]).dimensions(8))
        .await
        .expect("answer");
    assert_eq!(again.meta.cache, CacheStatus::Exact);
    assert_eq!(
        again.data[0].embedding.to_floats().expect("floats"),
        lbgpt_sim::expected_embedding_with_dimensions("two", 8)
    );
    assert_eq!(upstream_calls(&sim), 4);
}

#[tokio::test]
async fn an_upstream_error_is_returned_as_it_is_and_nothing_is_stored() {
    let sim = sim(Duration::ZERO).await;
    let store = Arc::new(MemoryStore::new());
    let layer = EmbeddingCacheLayer::new(store.clone());
    let service = layer.layer(provider(&sim, KEY));
    call(&service, embed(&["known"])).await.expect("answer");

    sim.script(KEY, [Fault::ServerError, Fault::Status(400)]);
    let request = || embed(&["known", "new one", "new two"]);
    let err = call(&service, request()).await.expect_err("scripted 500");
    assert!(
        matches!(&err, Error::Api(api) if api.status == 500),
        "{err:?}"
    );
    let err = call(&service, request()).await.expect_err("scripted 400");
    assert!(
        matches!(&err, Error::Api(api) if api.status == 400),
        "{err:?}"
    );
    // The same error as the provider gives without the cache.
    sim.script(KEY, [Fault::Status(400)]);
    let direct = provider(&sim, KEY)
        .oneshot(embed(&["new one", "new two"]))
        .await
        .expect_err("scripted 400");
    assert_eq!(err.to_string(), direct.to_string());

    assert_eq!(layer.stats().stores, 1, "only the first answer was stored");
    for key in &layer.keys_for(&request())[1..] {
        assert_eq!(store.get(key).await.expect("get"), None, "{key}");
    }
    // Both failed calls sent only the missing inputs.
    assert_eq!(
        received_inputs(&sim)[1..3],
        [
            strings(&["new one", "new two"]),
            strings(&["new one", "new two"])
        ]
    );

    let ok = call(&service, request()).await.expect("then an answer");
    assert_answers(&ok, &["known", "new one", "new two"]);
    assert_eq!(ok.meta.cache, CacheStatus::Partial { hits: 1, misses: 2 });
    assert_eq!(layer.stats().stores, 3);
}

#[tokio::test]
async fn modes_no_store_bypass_and_refresh() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    call(&service, embed(&["cached"])).await.expect("answer");

    // NoStore reads, sends only what is missing, and stores nothing.
    let no_store = call(
        &service,
        embed(&["cached", "fresh"]).cache_mode(CacheMode::NoStore),
    )
    .await
    .expect("answer");
    assert_eq!(
        no_store.meta.cache,
        CacheStatus::Partial { hits: 1, misses: 1 }
    );
    assert_eq!(received_inputs(&sim)[1..], [strings(&["fresh"])]);
    assert_eq!(layer.stats().stores, 1);

    // Bypass sends the request as it is (repeats included) and touches nothing.
    let bypass = call(
        &service,
        embed(&["cached", "fresh", "cached"]).cache_mode(CacheMode::Bypass),
    )
    .await
    .expect("answer");
    assert_answers(&bypass, &["cached", "fresh", "cached"]);
    assert_eq!(bypass.meta.cache, CacheStatus::Miss);
    assert_eq!(
        received_inputs(&sim)[2..],
        [strings(&["cached", "fresh", "cached"])]
    );
    assert_eq!(layer.stats().bypassed, 3, "counted per input");

    // Refresh reads nothing, sends each distinct input once and rewrites the entries.
    let refresh = call(
        &service,
        embed(&["cached", "fresh", "cached"]).cache_mode(CacheMode::Refresh),
    )
    .await
    .expect("answer");
    assert_answers(&refresh, &["cached", "fresh", "cached"]);
    assert_eq!(refresh.meta.cache, CacheStatus::Miss);
    assert_eq!(received_inputs(&sim)[3..], [strings(&["cached", "fresh"])]);
    assert_eq!(layer.stats().stores, 3);

    let hit = call(&service, embed(&["fresh", "cached"]))
        .await
        .expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 4);

    // The options never reach the provider.
    for seen in sim.seen_requests() {
        assert!(seen.body.get("options").is_none(), "{:?}", seen.body);
    }

    // A layer whose default is Refresh renews entries unless a request says otherwise.
    let refreshing = EmbeddingCacheLayer::with_config(
        Arc::clone(layer.store()),
        CacheConfig::new().default_mode(CacheMode::Refresh),
    );
    let renewing = refreshing.layer(provider(&sim, KEY));
    call(&renewing, embed(&["cached"])).await.expect("answer");
    assert_eq!(upstream_calls(&sim), 5);
    let hit = call(&renewing, embed(&["cached"]).cache_mode(CacheMode::Use))
        .await
        .expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 5);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_any_lookup() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    for (request, field) in [
        (embed(&[]), "input"),
        (embed(&["fine", ""]), "input[1]"),
        (embed(&["fine"]).encoding_format("int8"), "encoding_format"),
        (embed(&["fine"]).dimensions(0), "dimensions"),
    ] {
        match call(&service, request).await {
            Err(Error::InvalidRequest { field: named, .. }) => assert_eq!(named, field),
            other => panic!("expected an invalid request naming {field}, got {other:?}"),
        }
    }
    assert_eq!(upstream_calls(&sim), 0);
    assert_eq!(layer.stats().requests(), 0);
}

#[tokio::test]
async fn the_api_key_and_user_do_not_split_entries_nor_reach_the_store() {
    let sim = sim(Duration::ZERO).await;
    let store = Arc::new(MemoryStore::new());
    let layer = EmbeddingCacheLayer::new(store.clone());
    let with_key_a = layer.layer(provider(&sim, KEY));
    let with_key_b = layer.layer(provider(&sim, OTHER_KEY));

    call(&with_key_a, embed(&["shared"]).user("end-user-1"))
        .await
        .expect("answer");
    let hit = call(&with_key_b, embed(&["shared"]).user("end-user-2"))
        .await
        .expect("answer");
    assert_eq!(
        hit.meta.cache,
        CacheStatus::Exact,
        "another key and user share it"
    );
    // `user` is still sent upstream with the inputs that go.
    call(&with_key_b, embed(&["shared", "more"]).user("end-user-3"))
        .await
        .expect("answer");
    let seen = sim.seen_requests();
    assert_eq!(seen[1].body["user"], "end-user-3");
    assert_eq!(upstream_calls(&sim), 2);

    for key in layer.keys_for(&embed(&["shared", "more"])) {
        let stored: Bytes = store.get(&key).await.expect("get").expect("stored");
        let text = String::from_utf8_lossy(&stored);
        assert!(
            !text.contains(KEY) && !text.contains(OTHER_KEY) && !text.contains("0123456789"),
            "{text}"
        );
        assert!(!text.contains("end-user"), "{text}");
        assert!(!key.to_string().contains("0123456789"));
    }
}

#[tokio::test]
async fn invalidate_removes_every_input_of_a_request() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    call(&service, embed(&["p", "q", "r"]))
        .await
        .expect("answer");
    layer
        .invalidate(&embed(&["q", "r"]))
        .await
        .expect("invalidate");
    let again = call(&service, embed(&["p", "q", "r"]))
        .await
        .expect("answer");
    assert_eq!(
        again.meta.cache,
        CacheStatus::Partial { hits: 1, misses: 2 }
    );
    assert_eq!(received_inputs(&sim)[1..], [strings(&["q", "r"])]);
}

#[tokio::test]
async fn concurrent_requests_share_the_inputs_in_flight() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let gate = Gate::closed();
    let service = layer.layer(gate.guard(provider(&sim, KEY)));

    // The first request leads a and b; held at the gate.
    let first = tokio::spawn(service.clone().oneshot(embed(&["a", "b"])));
    wait_until("the first request's inputs are in flight", || {
        layer.in_flight() == 2
    })
    .await;
    // The second shares b and leads c.
    let second = tokio::spawn(service.clone().oneshot(embed(&["b", "c", "b"])));
    wait_until("the second request's new input is in flight", || {
        layer.in_flight() == 3
    })
    .await;
    gate.open(10);
    let first = first.await.expect("task").expect("answer");
    let second = second.await.expect("task").expect("answer");

    assert_answers(&first, &["a", "b"]);
    assert_answers(&second, &["b", "c", "b"]);
    let mut received = received_inputs(&sim);
    received.sort();
    assert_eq!(received, vec![strings(&["a", "b"]), strings(&["c"])]);
    // Each request reports only what its own call was charged; together, all of it.
    assert_eq!(reported(&first) + reported(&second), charged(&sim, KEY));
    assert_eq!(second.meta.cache, CacheStatus::Miss);

    let stats = layer.stats();
    assert_eq!((stats.misses, stats.coalesced, stats.hits), (3, 2, 0));
    assert_eq!(stats.stores, 3);
    assert_eq!(layer.in_flight(), 0, "every flight unregistered");

    let hit = call_gated(&service, embed(&["c", "b", "a"])).await;
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_answers(&hit, &["c", "b", "a"]);
}

async fn call_gated<S>(service: &EmbeddingCache<S>, request: EmbeddingRequest) -> EmbeddingResponse
where
    EmbeddingCache<S>:
        tower::Service<EmbeddingRequest, Response = EmbeddingResponse, Error = Error> + Clone,
{
    service.clone().oneshot(request).await.expect("answer")
}

#[tokio::test]
async fn a_request_whose_shared_call_failed_sends_those_inputs_itself() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let gate = Gate::closed();
    let service = layer.layer(gate.guard(provider(&sim, KEY)));
    sim.script(KEY, [Fault::ServerError]);

    // The first request leads x and y; its call will fail.
    let first = tokio::spawn(service.clone().oneshot(embed(&["x", "y"])));
    wait_until("the first request's inputs are in flight", || {
        layer.in_flight() == 2
    })
    .await;
    // The second waits for y and leads z.
    let second = tokio::spawn(service.clone().oneshot(embed(&["y", "z"])));
    wait_until("the second request's new input is in flight", || {
        layer.in_flight() == 3
    })
    .await;
    // The first call through the gate is the first request's: it gets the 500.
    gate.open(1);
    let err = first.await.expect("task").expect_err("scripted 500");
    assert!(
        matches!(&err, Error::Api(api) if api.status == 500),
        "{err:?}"
    );
    gate.open(10);
    let second = second
        .await
        .expect("task")
        .expect("the second request is answered");
    assert_answers(&second, &["y", "z"]);
    assert_eq!(
        received_inputs(&sim),
        vec![strings(&["x", "y"]), strings(&["z"]), strings(&["y"])]
    );
    assert_eq!(
        reported(&second),
        charged(&sim, KEY),
        "z and y, charged to it"
    );
    let stats = layer.stats();
    assert_eq!((stats.misses, stats.coalesced, stats.stores), (4, 0, 2));
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn a_failing_store_is_a_miss_not_an_error() {
    let sim = sim(Duration::ZERO).await;
    // A disk store whose directory is replaced by a file: every operation fails.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = lbgpt_cache::DiskStore::open(dir.path()).expect("opens");
    std::fs::remove_dir_all(dir.path()).expect("remove the store directory");
    std::fs::write(dir.path(), b"not a directory").expect("a file in its place");
    let layer = EmbeddingCacheLayer::new(Arc::new(store));
    let service = layer.layer(provider(&sim, KEY));

    for _ in 0..2 {
        let answer = call(&service, embed(&["m", "n", "m"]))
            .await
            .expect("answered despite the store");
        assert_answers(&answer, &["m", "n", "m"]);
        assert_eq!(answer.meta.cache, CacheStatus::Miss);
    }
    assert_eq!(
        received_inputs(&sim),
        vec![strings(&["m", "n"]), strings(&["m", "n"])]
    );
    let stats = layer.stats();
    assert_eq!(stats.stores, 0);
    assert!(stats.errors >= 4, "lookups and writes failed: {stats:?}");
    assert_eq!(stats.misses, 4);
}

#[tokio::test]
async fn a_waiting_request_gets_its_answer_when_the_leader_is_cancelled() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let gate = Gate::closed();
    let service = layer.layer(gate.guard(provider(&sim, KEY)));

    let leader = tokio::spawn(service.clone().oneshot(embed(&["l1", "l2"])));
    wait_until("the leader's inputs are in flight", || {
        layer.in_flight() == 2
    })
    .await;
    let follower = tokio::spawn(service.clone().oneshot(embed(&["l2", "f1"])));
    wait_until("the follower's new input is in flight", || {
        layer.in_flight() == 3
    })
    .await;
    leader.abort();
    assert!(leader.await.expect_err("aborted").is_cancelled());
    // l1 had no one else waiting: its flight is gone, but the call goes on for l2.
    wait_until("l1's flight is unregistered", || layer.in_flight() == 2).await;
    gate.open(10);

    let answer = follower.await.expect("task").expect("answer");
    assert_answers(&answer, &["l2", "f1"]);
    let mut received = received_inputs(&sim);
    received.sort();
    assert_eq!(received, vec![strings(&["f1"]), strings(&["l1", "l2"])]);
    assert_eq!(layer.in_flight(), 0);
    // Every answer of the leader's call was stored, l1 included.
    let hit = call_gated(&service, embed(&["l1", "l2", "f1"])).await;
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_answers(&hit, &["l1", "l2", "f1"]);
}

#[tokio::test]
async fn inputs_abandoned_by_every_request_are_unregistered() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::in_memory();
    let gate = Gate::closed();
    let service = layer.layer(gate.guard(provider(&sim, KEY)));
    let only = tokio::spawn(service.clone().oneshot(embed(&["gone", "too"])));
    wait_until("the inputs are in flight", || layer.in_flight() == 2).await;
    only.abort();
    let _ = only.await;
    assert_eq!(layer.in_flight(), 0, "dropping the last caller unregisters");
    gate.open(10);
    let answer = call_gated(&service, embed(&["too", "gone"])).await;
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_answers(&answer, &["too", "gone"]);
    assert_eq!(received_inputs(&sim), vec![strings(&["too", "gone"])]);
}

#[tokio::test]
async fn without_coalescing_each_request_sends_its_own_missing_inputs() {
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::with_config(
        Arc::new(MemoryStore::new()),
        CacheConfig::new().coalesce(false),
    );
    let gate = Gate::closed();
    let service = layer.layer(gate.guard(provider(&sim, KEY)));
    let first = tokio::spawn(service.clone().oneshot(embed(&["s", "t"])));
    let second = tokio::spawn(service.clone().oneshot(embed(&["t", "s", "t"])));
    gate.open(10);
    assert_answers(&first.await.expect("task").expect("answer"), &["s", "t"]);
    assert_answers(
        &second.await.expect("task").expect("answer"),
        &["t", "s", "t"],
    );
    assert_eq!(layer.in_flight(), 0);
    let stats = layer.stats();
    assert_eq!(stats.hits + stats.misses + stats.coalesced, 5);
    // Each request either found the inputs stored by the other or sent them itself.
    let sent: usize = received_inputs(&sim).iter().map(Vec::len).sum();
    assert_eq!(sent as u64, stats.misses);
}
