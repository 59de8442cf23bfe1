//! The exact cache in front of the real OpenAI service on the simulator, for legacy
//! completions: a repeated request is answered from the store without reaching the simulator
//! (checked against its request log and counters), anything that changes the answer misses,
//! a request with several prompts is cached as a whole, modes, errors never stored (also when
//! shared by concurrent callers), only provider answers stored, and chat and completions
//! sharing one layer without sharing entries.

mod common;

use common::completion::{assert_completes, complete, received_prompts, wire, MAX_TOKENS, MODEL};
use common::{provider, request, sim, upstream_calls, KEY, OTHER_KEY};
use lbgpt_cache::{Cache, CacheLayer, CacheMode, MemoryStore};
use lbgpt_core::{CacheStatus, CompletionRequest, CompletionResponse, Error, Stop};
use lbgpt_openai::OpenAiService;
use lbgpt_sim::Fault;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};

async fn call(
    service: &Cache<OpenAiService>,
    request: CompletionRequest,
) -> Result<CompletionResponse, Error> {
    service.clone().oneshot(request).await
}

#[tokio::test]
async fn a_repeated_request_is_answered_from_the_store_without_reaching_the_simulator() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    let request = complete("Once upon a time, in a land far away");

    let first = call(&service, request.clone()).await.expect("first answer");
    assert_completes(&first, &request);
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    assert_eq!(first.meta.attempts, 1);
    assert_eq!(first.meta.member.as_deref(), Some("sim"));
    assert_eq!(received_prompts(&sim), vec![json!(request.prompt)]);
    assert_eq!(upstream_calls(&sim), 1);

    let second = call(&service, request.clone()).await.expect("hit");
    assert_eq!(second.meta.cache, CacheStatus::Exact);
    assert_eq!(second.meta.attempts, 0);
    assert_eq!(second.meta.member, None);
    assert_eq!(
        wire(&second),
        wire(&first),
        "the stored answer: id, created, choices, usage, unknown fields"
    );
    assert!(second.extra.contains_key("system_fingerprint"));
    assert_eq!(
        upstream_calls(&sim),
        1,
        "the simulator was not called again"
    );
    assert_eq!(received_prompts(&sim).len(), 1);
    assert_eq!(sim.key_stats(KEY).expect("key").succeeded, 1);

    let stats = layer.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 1, 1));
    assert_eq!((stats.coalesced, stats.bypassed, stats.errors), (0, 0, 0));
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn anything_that_changes_the_answer_misses_and_user_does_not() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    let base = complete("The quick brown fox");

    let mut with_stop = base.clone();
    with_stop.stop = Some(Stop::One("\n".into()));
    let mut with_echo = base.clone();
    with_echo.echo = Some(true);
    let mut with_suffix = base.clone();
    with_suffix.suffix = Some(" and that was that.".into());
    let mut with_logprobs = base.clone();
    with_logprobs.logprobs = Some(1);
    let mut with_best_of = base.clone();
    with_best_of.best_of = Some(2);
    let mut with_top_p = base.clone();
    with_top_p.top_p = Some(0.5);
    let variants = [
        base.clone(),
        complete("The quick brown fox "),
        complete("the quick brown fox"),
        CompletionRequest::new("davinci-002", "The quick brown fox").max_tokens(MAX_TOKENS),
        CompletionRequest::new(MODEL, "The quick brown fox"),
        base.clone().max_tokens(MAX_TOKENS + 1),
        base.clone().temperature(0.0),
        base.clone().temperature(0.5),
        with_top_p,
        base.clone().n(2),
        base.clone().seed(7),
        with_stop,
        with_echo,
        with_suffix,
        with_logprobs,
        with_best_of,
        base.clone().extra_field("presence_penalty", json!(0.5)),
        base.clone()
            .extra_field("logit_bias", json!({"50256": -100})),
    ];
    for (i, variant) in variants.iter().enumerate() {
        let answer = call(&service, variant.clone()).await.expect("answer");
        assert_eq!(
            answer.meta.cache,
            CacheStatus::Miss,
            "variant {i}: {variant:?}"
        );
        assert_completes(&answer, variant);
        assert_eq!(
            upstream_calls(&sim),
            i as u64 + 1,
            "variant {i} went upstream"
        );
    }
    let calls = upstream_calls(&sim);
    assert_eq!(layer.stats().stores, calls);

    // Every variant has its own entry, holding its own answer.
    for variant in &variants {
        let answer = call(&service, variant.clone()).await.expect("hit");
        assert_eq!(answer.meta.cache, CacheStatus::Exact, "{variant:?}");
        assert_completes(&answer, variant);
    }
    // `user`, an explicit `stream: false` and the cache mode do not change the answer.
    let mut not_streamed = base.clone();
    not_streamed.stream = Some(false);
    for same in [
        base.clone().extra_field("user", json!("end-user-42")),
        not_streamed,
        base.clone().cache_mode(CacheMode::Use),
    ] {
        let answer = call(&service, same.clone()).await.expect("hit");
        assert_eq!(answer.meta.cache, CacheStatus::Exact, "{same:?}");
    }
    assert_eq!(upstream_calls(&sim), calls, "no variant was asked twice");
}

#[tokio::test]
async fn a_request_with_several_prompts_is_cached_as_a_whole() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));

    let both = complete(vec!["first prompt", "second prompt"]).n(2);
    let answer = call(&service, both.clone()).await.expect("answer");
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_completes(&answer, &both);
    assert_eq!(answer.choices.len(), 4);
    let hit = call(&service, both.clone()).await.expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(wire(&hit), wire(&answer));
    assert_eq!(upstream_calls(&sim), 1);

    // Another order, or one of the prompts alone, is another request.
    let reversed = complete(vec!["second prompt", "first prompt"]).n(2);
    let answer = call(&service, reversed.clone()).await.expect("answer");
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_completes(&answer, &reversed);
    let alone = complete("first prompt").n(2);
    let answer = call(&service, alone.clone()).await.expect("answer");
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_completes(&answer, &alone);
    assert_eq!(
        received_prompts(&sim),
        vec![
            json!(["first prompt", "second prompt"]),
            json!(["second prompt", "first prompt"]),
            json!("first prompt"),
        ]
    );

    // A list of one prompt is that prompt: answered by its entry, whichever way it is written.
    let listed = complete(vec!["first prompt"]).n(2);
    let answer = call(&service, listed.clone()).await.expect("hit");
    assert_eq!(answer.meta.cache, CacheStatus::Exact);
    assert_completes(&answer, &listed);
    let tokens = complete(vec![vec![11u32, 12, 13]]);
    let answer = call(&service, tokens.clone()).await.expect("answer");
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_completes(&answer, &tokens);
    let answer = call(&service, complete(vec![11u32, 12, 13]))
        .await
        .expect("hit");
    assert_eq!(answer.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 4);
}

#[tokio::test]
async fn modes_bypass_refresh_no_store_and_streaming() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    let request = complete("mode test");

    // Bypass: upstream, nothing stored.
    let answer = call(&service, request.clone().cache_mode(CacheMode::Bypass))
        .await
        .expect("answer");
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_eq!(layer.stats().bypassed, 1);
    assert_eq!(layer.stats().stores, 0);
    // NoStore: looked up (a miss), answered upstream, not stored.
    call(&service, request.clone().cache_mode(CacheMode::NoStore))
        .await
        .expect("answer");
    assert_eq!(layer.stats().misses, 1);
    assert_eq!(layer.stats().stores, 0);
    assert_eq!(upstream_calls(&sim), 2);

    // Use stores; then Refresh asks upstream again and replaces the entry; Use hits it.
    call(&service, request.clone()).await.expect("answer");
    let refreshed = call(&service, request.clone().cache_mode(CacheMode::Refresh))
        .await
        .expect("answer");
    assert_eq!(refreshed.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 4);
    assert_eq!(layer.stats().stores, 2);
    let hit = call(&service, request.clone()).await.expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(wire(&hit), wire(&refreshed));
    // Bypass skips the entry that now exists.
    let bypassed = call(&service, request.clone().cache_mode(CacheMode::Bypass))
        .await
        .expect("answer");
    assert_eq!(bypassed.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 5);

    // A streamed request always bypasses the cache (the non-streaming provider refuses it
    // before any network call).
    let mut streamed = request.clone();
    streamed.stream = Some(true);
    let err = call(&service, streamed)
        .await
        .expect_err("not streamed here");
    assert!(
        matches!(&err, Error::InvalidRequest { field, .. } if field == "stream"),
        "{err:?}"
    );
    assert_eq!(layer.stats().bypassed, 3);
    assert_eq!(layer.stats().hits, 1);
    assert_eq!(upstream_calls(&sim), 5);
}

#[tokio::test]
async fn errors_are_never_stored() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    sim.script(KEY, [Fault::ServerError, Fault::Status(400)]);
    let request = complete("fails at first");

    let err = call(&service, request.clone())
        .await
        .expect_err("scripted 500");
    assert!(
        matches!(&err, Error::Api(api) if api.status == 500),
        "{err:?}"
    );
    let err = call(&service, request.clone())
        .await
        .expect_err("scripted 400");
    assert!(
        matches!(&err, Error::Api(api) if api.status == 400),
        "{err:?}"
    );
    assert_eq!(layer.stats().stores, 0);

    let ok = call(&service, request.clone())
        .await
        .expect("then an answer");
    assert_eq!(ok.meta.cache, CacheStatus::Miss);
    assert_completes(&ok, &request);
    assert_eq!(upstream_calls(&sim), 3);
    let hit = call(&service, request).await.expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 3);
    let stats = layer.stats();
    assert_eq!((stats.misses, stats.hits, stats.stores), (3, 1, 1));
}

// The tests below poll every caller's future in one pass of `join_all` on a current-thread
// runtime: the first starts the upstream call, the others join it before any I/O can
// complete, so exactly one call is shared (no timing involved).

#[tokio::test]
async fn identical_concurrent_requests_share_one_upstream_call() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let service = layer.layer(provider(&sim, KEY));
    let request = complete("asked by twenty callers at once");

    let answers = futures::future::join_all((0..20).map(|_| call(&service, request.clone()))).await;
    let first = answers[0].as_ref().expect("answer");
    assert_completes(first, &request);
    for answer in &answers {
        assert_eq!(wire(answer.as_ref().expect("answer")), wire(first));
    }
    assert_eq!(upstream_calls(&sim), 1);
    let stats = layer.stats();
    assert_eq!((stats.misses, stats.coalesced, stats.stores), (1, 19, 1));
    assert_eq!(layer.in_flight(), 0);

    // A failed shared call reaches every caller and is not stored.
    sim.script(KEY, [Fault::ServerError]);
    let request = complete("failed for twenty callers");
    let answers = futures::future::join_all((0..20).map(|_| call(&service, request.clone()))).await;
    for answer in answers {
        let err = answer.expect_err("the shared 500");
        assert!(
            matches!(&err, Error::Api(api) if api.status == 500),
            "{err:?}"
        );
    }
    assert_eq!(upstream_calls(&sim), 2);
    assert_eq!(layer.stats().stores, 1);
    let ok = call(&service, request.clone()).await.expect("next answer");
    assert_eq!(ok.meta.cache, CacheStatus::Miss);
    assert_completes(&ok, &request);
}

#[tokio::test]
async fn an_answer_a_cache_below_served_is_not_stored_again() {
    let sim = sim(Duration::ZERO).await;
    let below = CacheLayer::in_memory();
    let above = CacheLayer::in_memory();
    let service = above.layer(below.layer(provider(&sim, KEY)));
    let request = complete("served by the cache below");

    // Fill the cache below directly.
    below
        .layer(provider(&sim, KEY))
        .oneshot(request.clone())
        .await
        .expect("answer");
    assert_eq!(upstream_calls(&sim), 1);

    for _ in 0..2 {
        let answer = service
            .clone()
            .oneshot(request.clone())
            .await
            .expect("answer");
        assert_eq!(
            answer.meta.cache,
            CacheStatus::Exact,
            "the cache below answered"
        );
        assert_completes(&answer, &request);
    }
    assert_eq!(above.stats().stores, 0, "not a provider answer");
    assert_eq!(above.stats().misses, 2);
    assert_eq!(below.stats().hits, 2);
    assert_eq!(upstream_calls(&sim), 1);
}

#[tokio::test]
async fn chat_and_completions_share_one_layer_but_never_an_entry() {
    let sim = sim(Duration::ZERO).await;
    let store = Arc::new(MemoryStore::new());
    let layer = CacheLayer::new(store.clone());
    let service = layer.layer(provider(&sim, KEY));
    let completion = complete("hello");
    let chat = request("hello");
    assert_ne!(
        layer.completion_key_for(&completion),
        layer.key_for(&chat),
        "one text, two endpoints, two keys"
    );

    let completed = call(&service, completion.clone())
        .await
        .expect("completion");
    let chatted = service.clone().oneshot(chat.clone()).await.expect("chat");
    assert_eq!(completed.meta.cache, CacheStatus::Miss);
    assert_eq!(chatted.meta.cache, CacheStatus::Miss);
    let completed = call(&service, completion.clone())
        .await
        .expect("completion hit");
    let chatted = service
        .clone()
        .oneshot(chat.clone())
        .await
        .expect("chat hit");
    assert_eq!(completed.meta.cache, CacheStatus::Exact);
    assert_completes(&completed, &completion);
    assert_eq!(chatted.meta.cache, CacheStatus::Exact);
    assert_eq!(
        chatted.first_text(),
        Some(lbgpt_sim::expected_answer(&chat))
    );
    assert_eq!(upstream_calls(&sim), 2);
    store.run_pending_tasks().await;
    assert_eq!(store.entry_count(), 2);
    let stats = layer.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (2, 2, 2));

    // Removing the completion's entry leaves the chat entry.
    layer
        .invalidate_completion(&completion)
        .await
        .expect("invalidated");
    let completed = call(&service, completion).await.expect("completion");
    assert_eq!(completed.meta.cache, CacheStatus::Miss);
    let chatted = service.oneshot(chat).await.expect("chat hit");
    assert_eq!(chatted.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 3);
}

#[tokio::test]
async fn the_api_key_is_neither_in_the_key_nor_in_the_stored_answer() {
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::in_memory();
    let request = complete("asked with two keys");

    let first = call(&layer.layer(provider(&sim, KEY)), request.clone())
        .await
        .expect("answer");
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    // The same request through a provider holding another key is the same entry.
    let other = call(&layer.layer(provider(&sim, OTHER_KEY)), request.clone())
        .await
        .expect("hit");
    assert_eq!(other.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 1);

    let key = layer.completion_key_for(&request).expect("a key");
    let stored = layer
        .store()
        .get(&key)
        .await
        .expect("store works")
        .expect("stored");
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("text_completion"), "{stored}");
    assert!(
        !stored.contains(KEY) && !stored.contains("sk-sim"),
        "{stored}"
    );
    assert!(!format!("{layer:?}").contains(KEY));
}
