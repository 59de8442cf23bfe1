//! The semantic cache layer with the real model and the real index, in front of the real
//! OpenAI service on the simulator.

mod common;

use common::{provider, request, sim, upstream_calls};
use lbgpt_cache::{CacheConfig, CacheLayer, CacheStore, MemoryStore};
use lbgpt_core::{
    CacheMode, CacheStatus, ChatMessage, ChatRequest, ChatResponse, EmbedMethod,
    FunctionDefinition, SemanticOptions, Tool,
};
use lbgpt_semantic::{
    Embedder, FalseHitGuard, HnswIndex, IndexConfig, SemanticCacheLayer, SemanticConfig,
};
use std::sync::Arc;
use tower::{Layer, Service, ServiceExt};

fn index(config: IndexConfig) -> Arc<HnswIndex> {
    let embedder = common::embedder();
    Arc::new(HnswIndex::open(config, embedder.dimensions(), embedder.id()).expect("index"))
}

fn layer(config: SemanticConfig) -> (SemanticCacheLayer, Arc<HnswIndex>) {
    let index = index(IndexConfig::new());
    let layer =
        SemanticCacheLayer::new(common::dyn_embedder(), index.clone(), config).expect("layer");
    (layer, index)
}

/// Sends `request` through a clone of `service` and expects an answer.
async fn ask<S>(service: &S, request: ChatRequest) -> ChatResponse
where
    S: Service<ChatRequest, Response = ChatResponse> + Clone,
    S::Error: std::fmt::Debug,
{
    service.clone().oneshot(request).await.expect("answer")
}

fn score(status: CacheStatus) -> f32 {
    match status {
        CacheStatus::Semantic { score } => score,
        other => panic!("expected a semantic hit, got {other:?}"),
    }
}

#[tokio::test]
async fn a_paraphrase_is_answered_from_the_cache_and_an_unrelated_question_is_not() {
    let sim = sim().await;
    let (layer, index) = layer(SemanticConfig::new());
    let service = layer.layer(provider(&sim));

    let first = ask(&service, request("How do I reset my password?")).await;
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    assert_eq!(index.len(), 1);

    let paraphrase = request("What are the steps to reset my password?");
    let hit = ask(&service, paraphrase).await;
    let similarity = score(hit.meta.cache);
    assert!(
        similarity >= SemanticConfig::DEFAULT_THRESHOLD,
        "{similarity}"
    );
    assert_eq!(
        hit.first_text(),
        first.first_text(),
        "the cached answer is served"
    );
    assert_eq!(hit.meta.attempts, 0);
    let expected_key = CacheConfig::new()
        .key_for(&request("How do I reset my password?"))
        .expect("key")
        .to_string();
    assert_eq!(hit.meta.cache_match.as_deref(), Some(expected_key.as_str()));
    assert_eq!(upstream_calls(&sim), 1);

    let unrelated = ask(&service, request("What is the boiling point of water?")).await;
    assert_eq!(unrelated.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream_calls(&sim), 2);
    let stats = layer.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 2, 2));
}

#[tokio::test]
async fn a_different_model_temperature_or_system_prompt_never_shares_an_answer() {
    let sim = sim().await;
    let (layer, _index) = layer(SemanticConfig::new());
    let service = layer.layer(provider(&sim));
    let text = "How do I reverse a list in Python?";
    ask(&service, request(text)).await;

    let mut other_model = request(text);
    other_model.model = "gpt-4o".into();
    let warmer = request(text).temperature(0.9);
    let other_system = ChatRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::system("Answer in French."),
            ChatMessage::user(text),
        ],
    )
    .max_tokens(64);
    for variant in [other_model, warmer, other_system] {
        let answer = ask(&service, variant).await;
        assert_eq!(answer.meta.cache, CacheStatus::Miss);
    }
    assert_eq!(upstream_calls(&sim), 4);
    // The identical request in the original scope is still served.
    let again = ask(&service, request(text)).await;
    assert!(score(again.meta.cache) > 0.99);
}

#[tokio::test]
async fn the_guard_rejects_negation_number_and_entity_traps_that_pass_the_threshold() {
    let traps = [
        (
            "Is smoking allowed in the hotel rooms?",
            "Is smoking not allowed in the hotel rooms?",
        ),
        (
            "Write a 500-word essay on climate change.",
            "Write a 1000-word essay on climate change.",
        ),
        (
            "Did Alice send the invoice to Bob?",
            "Did Bob send the invoice to Alice?",
        ),
        (
            "How do I increase the font size in VS Code?",
            "How do I decrease the font size in VS Code?",
        ),
    ];
    let embedder = common::embedder();
    for (cached, asked) in traps {
        // The trap is real: without the guard it would be served.
        let vectors = embedder
            .embed(&[cached.to_owned(), asked.to_owned()])
            .await
            .expect("embeds");
        let similarity = lbgpt_semantic::dot(&vectors[0], &vectors[1]);
        assert!(
            similarity >= SemanticConfig::DEFAULT_THRESHOLD,
            "{cached} / {asked}: {similarity}"
        );

        let sim = sim().await;
        let (guarded, _) = layer(SemanticConfig::new());
        let service = guarded.layer(provider(&sim));
        ask(&service, request(cached)).await;
        let answer = ask(&service, request(asked)).await;
        assert_eq!(answer.meta.cache, CacheStatus::Miss, "{cached} / {asked}");
        assert_eq!(guarded.stats().guard_rejections, 1);
        assert_eq!(upstream_calls(&sim), 2);

        let (unguarded, _) = layer(SemanticConfig::new().guard(FalseHitGuard::off()));
        let service = unguarded.layer(provider(&sim));
        ask(&service, request(cached)).await;
        let answer = ask(&service, request(asked)).await;
        assert!(
            matches!(answer.meta.cache, CacheStatus::Semantic { .. }),
            "{cached} / {asked}"
        );
    }
}

#[tokio::test]
async fn the_index_survives_a_restart() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = IndexConfig::new().directory(dir.path());
    {
        let index = index(config.clone());
        let layer = SemanticCacheLayer::new(common::dyn_embedder(), index, SemanticConfig::new())
            .expect("layer");
        let service = layer.layer(provider(&sim));
        service
            .oneshot(request("Who painted the Mona Lisa?"))
            .await
            .expect("answer");
        layer.save().await.expect("saved");
    }
    assert!(dir.path().join("current/index.json").is_file());
    let index = index(config);
    assert_eq!(index.len(), 1);
    let layer = SemanticCacheLayer::new(common::dyn_embedder(), index, SemanticConfig::new())
        .expect("layer");
    let hit = layer
        .layer(provider(&sim))
        .oneshot(request("Which artist painted the Mona Lisa?"))
        .await
        .expect("answer");
    assert!(score(hit.meta.cache) > 0.9);
    assert_eq!(upstream_calls(&sim), 1);
}

#[tokio::test]
async fn exact_cache_first_then_semantic_then_upstream_and_new_answers_go_to_both() {
    let sim = sim().await;
    let store = Arc::new(MemoryStore::new());
    let exact = CacheLayer::new(store.clone());
    let (semantic, index) = layer(SemanticConfig::new());
    let service = tower::ServiceBuilder::new()
        .layer(exact.clone())
        .layer(semantic.clone())
        .service(provider(&sim));

    let original = request("How do I undo the last commit in Git?");
    let first = ask(&service, original.clone()).await;
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    // Written to both: the exact store has the key, the index has the entry.
    let key = exact.key_for(&original).expect("key");
    assert!(store.get(&key).await.expect("store answers").is_some());
    assert_eq!(index.len(), 1);

    // The identical request: the exact cache answers; the semantic layer is not asked.
    let again = ask(&service, original).await;
    assert_eq!(again.meta.cache, CacheStatus::Exact);
    assert_eq!(semantic.stats().hits + semantic.stats().misses, 1);

    // A paraphrase: the exact cache misses, the semantic layer answers.
    let paraphrase = request("How can I revert my most recent Git commit?");
    let hit = ask(&service, paraphrase.clone()).await;
    assert!(
        matches!(hit.meta.cache, CacheStatus::Semantic { .. }),
        "{:?}",
        hit.meta.cache
    );
    assert_eq!(hit.first_text(), first.first_text());
    assert_eq!(upstream_calls(&sim), 1);
    assert_eq!(semantic.stats().hits, 1);
    // The exact cache keeps only answers a provider gave for exactly that request: the
    // semantic hit is not stored under the paraphrase's key.
    let paraphrase_key = exact.key_for(&paraphrase).expect("key");
    assert!(store
        .get(&paraphrase_key)
        .await
        .expect("store answers")
        .is_none());
}

#[tokio::test]
async fn storing_can_be_switched_off_and_request_modes_are_honoured() {
    let sim = sim().await;
    let (layer, index) = layer(SemanticConfig::new().store(false));
    let service = layer.layer(provider(&sim));
    ask(&service, request("Why is the sky blue?")).await;
    assert_eq!(index.len(), 0);

    let (layer, index) = self::layer(SemanticConfig::new());
    let service = layer.layer(provider(&sim));
    let no_store = request("Why is the sky blue?").cache_mode(CacheMode::NoStore);
    ask(&service, no_store).await;
    assert_eq!(index.len(), 0);
    ask(&service, request("Why is the sky blue?")).await;
    assert_eq!(index.len(), 1);
    let bypass = request("What makes the sky look blue?").cache_mode(CacheMode::Bypass);
    let answer = ask(&service, bypass).await;
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    let refresh = request("What makes the sky look blue?").cache_mode(CacheMode::Refresh);
    let answer = ask(&service, refresh).await;
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_eq!(index.len(), 2, "refresh stores its fresh answer");
    assert_eq!(layer.stats().bypassed, 1);
}

#[tokio::test]
async fn tools_and_several_choices_are_not_served_unless_allowed() {
    let sim = sim().await;
    let (layer, index) = layer(SemanticConfig::new());
    let service = layer.layer(provider(&sim));
    let text = "What is the capital of Australia?";
    ask(&service, request(text).n(2)).await;
    assert_eq!(index.len(), 0, "n > 1 is neither served nor stored");
    let mut with_tools = request(text);
    with_tools.tools = Some(vec![Tool::function(FunctionDefinition::new(
        "lookup",
        serde_json::json!({"type": "object"}),
    ))]);
    ask(&service, with_tools.clone()).await;
    assert_eq!(layer.stats().ineligible, 2);

    // Opted in per request: stored, then served to the same tool-using request reworded.
    let opt_in = SemanticOptions::new().allow_unsafe(true);
    ask(&service, with_tools.clone().semantic(opt_in)).await;
    assert_eq!(index.len(), 1);
    let mut reworded = request("Which city is Australia's capital?").semantic(opt_in);
    reworded.tools = with_tools.tools.clone();
    let hit = ask(&service, reworded).await;
    assert!(
        matches!(hit.meta.cache, CacheStatus::Semantic { .. }),
        "{:?}",
        hit.meta.cache
    );
}

#[tokio::test]
async fn methods_choose_what_is_compared() {
    let sim = sim().await;
    // user_only: the system prompt is part of the scope; every user message is compared.
    let (layer, _) = layer(SemanticConfig::new().method(EmbedMethod::UserOnly));
    let service = layer.layer(provider(&sim));
    ask(&service, request("How do I center a div in CSS?")).await;
    let hit = ask(
        &service,
        request("What's the way to center a div with CSS?"),
    )
    .await;
    assert!(matches!(hit.meta.cache, CacheStatus::Semantic { .. }));

    // system_only: the user message must match exactly; the system prompts are compared.
    let (layer, _) = self::layer(SemanticConfig::new());
    let service = layer.layer(provider(&sim));
    let with_system = |system: &str| {
        ChatRequest::new(
            "gpt-4o-mini",
            vec![
                ChatMessage::system(system),
                ChatMessage::user("Summarise: the cat sat on the mat."),
            ],
        )
        .semantic(SemanticOptions::new().method(EmbedMethod::SystemOnly))
    };
    ask(&service, with_system("You are a concise assistant.")).await;
    let hit = ask(
        &service,
        with_system("You are an assistant who is concise."),
    )
    .await;
    assert!(
        matches!(hit.meta.cache, CacheStatus::Semantic { .. }),
        "{:?}",
        hit.meta.cache
    );
}
