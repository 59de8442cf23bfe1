//! The semantic cache on the ready-made clients, with the real local model (fetched by
//! `cargo xtask fetch-assets`; `LBGPT_ASSETS_DIR` points elsewhere) and the simulator on
//! loopback: a paraphrase is answered without an upstream call, a negation trap is not, the
//! scope follows the exact cache's configuration, and the index survives a restart.

mod common;

use common::assert_answers;
use lbgpt::cache::{CacheConfig, CacheStore, MemoryStore};
use lbgpt::openai::OpenAiConfig;
use lbgpt::semantic::{
    Embedder, FastembedEmbedder, HnswIndex, IndexConfig, SemanticCacheSettings, SemanticConfig,
    VectorIndex,
};
use lbgpt::{AzureGpt, BalancedGpt, CacheStatus, ChatGpt, ChatMessage, ChatRequest, Provider};
use lbgpt_sim::{KeyConfig, Latency, SimConfig, Simulator};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const OPENAI_KEY: &str = "sk-sim-semantic-facade";
const OPENAI_KEY_2: &str = "sk-sim-semantic-facade-2";
const AZURE_KEY: &str = "sim-semantic-facade-azure";
const DEPLOYMENT: &str = "mini-semantic";

const QUESTION: &str = "How do I reset my password?";
const PARAPHRASE: &str = "What are the steps to reset my password?";

/// The real all-MiniLM-L6-v2 model, loaded once for the whole test binary.
fn embedder() -> Arc<dyn Embedder> {
    static EMBEDDER: OnceLock<Arc<FastembedEmbedder>> = OnceLock::new();
    let embedder = EMBEDDER.get_or_init(|| match FastembedEmbedder::from_default_assets() {
        Ok(embedder) => Arc::new(embedder),
        Err(error) => panic!(
            "the semantic-cache tests need the local model and ONNX Runtime: {error}\n\
             (run `cargo xtask fetch-assets` once; `cargo xtask ci` does it)"
        ),
    });
    Arc::clone(embedder) as Arc<dyn Embedder>
}

/// An in-memory index for the shared model.
fn memory_index() -> Arc<dyn VectorIndex> {
    let embedder = embedder();
    Arc::new(
        HnswIndex::new(IndexConfig::new(), embedder.dimensions(), embedder.id()).expect("index"),
    )
}

async fn sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(OPENAI_KEY))
            .key(KeyConfig::new(OPENAI_KEY_2))
            .key(KeyConfig::new(AZURE_KEY))
            .azure_deployment(DEPLOYMENT, "gpt-4o-mini")
            .latency(Latency::fixed(Duration::from_millis(1))),
    )
    .await
    .expect("simulator starts")
}

/// HTTP requests the simulator received.
fn upstream(sim: &Simulator) -> u64 {
    sim.stats().requests
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::system("Answer briefly."),
            ChatMessage::user(text),
        ],
    )
    .max_tokens(64)
}

fn score(status: CacheStatus) -> f32 {
    match status {
        CacheStatus::Semantic { score } => score,
        other => panic!("expected a semantic hit, got {other:?}"),
    }
}

#[tokio::test]
async fn chatgpt_answers_a_paraphrase_from_the_semantic_cache_and_refuses_a_negation() {
    let sim = sim().await;
    let gpt = ChatGpt::builder()
        .api_key(OPENAI_KEY)
        .base_url(sim.base_url())
        .cache_store(
            Arc::new(MemoryStore::new()) as Arc<dyn CacheStore>,
            CacheConfig::new().namespace("facade-semantic"),
        )
        .semantic_cache_with(embedder(), memory_index(), SemanticConfig::new())
        .build()
        .expect("client builds");

    // Both caches key alike: the scope uses the exact cache's namespace and family.
    let exact = gpt.cache().expect("an exact cache");
    let scope = gpt
        .semantic_cache()
        .expect("a semantic cache")
        .config()
        .get_scope_config();
    assert_eq!(scope.get_namespace(), "facade-semantic");
    assert_eq!(scope.get_family(), "openai");
    assert_eq!(exact.config().get_family(), "openai");

    let question = ask(QUESTION);
    let first = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    assert_eq!(upstream(&sim), 1);

    let paraphrase = ask(PARAPHRASE);
    let hit = gpt
        .chat_completion(paraphrase.clone())
        .await
        .expect("answer");
    let similarity = score(hit.meta.cache);
    assert!(
        similarity >= SemanticConfig::DEFAULT_THRESHOLD,
        "{similarity}"
    );
    assert_eq!(upstream(&sim), 1, "zero extra upstream calls");
    assert_eq!(hit.meta.attempts, 0);
    assert_answers(&question, &hit);
    let matched = exact.key_for(&question).expect("a key").to_string();
    assert_eq!(
        hit.meta.cache_match.as_deref(),
        Some(matched.as_str()),
        "the hit names the exact key of the request it was served from"
    );

    // Exact before semantic: the question itself is an exact hit, which the semantic cache
    // never sees; the exact cache does not keep the semantic answer under the paraphrase's key.
    let again = gpt.chat_completion(question.clone()).await.expect("answer");
    assert_eq!(again.meta.cache, CacheStatus::Exact);
    let paraphrased_again = gpt.chat_completion(paraphrase).await.expect("answer");
    assert!(matches!(
        paraphrased_again.meta.cache,
        CacheStatus::Semantic { .. }
    ));
    assert_eq!(upstream(&sim), 1);

    // A negation scores above the threshold, but the guard refuses to serve it.
    let allowed = ask("Is smoking allowed in the hotel rooms?");
    let not_allowed = ask("Is smoking not allowed in the hotel rooms?");
    gpt.chat_completion(allowed).await.expect("answer");
    let trap = gpt
        .chat_completion(not_allowed.clone())
        .await
        .expect("answer");
    assert_eq!(trap.meta.cache, CacheStatus::Miss);
    assert_answers(&not_allowed, &trap);
    assert_eq!(upstream(&sim), 3, "the trap went upstream");

    let stats = gpt.semantic_cache_stats().expect("a semantic cache");
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.guard_rejections,
            stats.stores
        ),
        (2, 3, 1, 3),
        "{stats:?}"
    );
    let exact_stats = gpt.cache_stats().expect("an exact cache");
    assert_eq!((exact_stats.hits, exact_stats.misses), (1, 5));
}

#[tokio::test]
async fn azuregpt_without_an_exact_cache_scopes_with_its_family() {
    let sim = sim().await;
    let gpt = AzureGpt::builder(sim.endpoint())
        .api_key(AZURE_KEY)
        .deployment("gpt-4o-mini", DEPLOYMENT)
        .semantic_cache_with(embedder(), memory_index(), SemanticConfig::new())
        .build()
        .expect("client builds");
    assert!(gpt.cache().is_none());
    let layer = gpt.semantic_cache().expect("a semantic cache");
    assert_eq!(layer.config().get_scope_config().get_family(), "azure");

    let question = ask(QUESTION);
    gpt.chat_completion(question.clone()).await.expect("answer");
    let hit = gpt.chat_completion(ask(PARAPHRASE)).await.expect("answer");
    assert!(score(hit.meta.cache) >= SemanticConfig::DEFAULT_THRESHOLD);
    assert_answers(&question, &hit);
    assert_eq!(upstream(&sim), 1, "zero extra upstream calls");
    let key = CacheConfig::new()
        .family("azure")
        .key_for(&question)
        .expect("a key")
        .to_string();
    assert_eq!(hit.meta.cache_match.as_deref(), Some(key.as_str()));
    assert!(gpt.save_semantic_index().await.is_ok(), "nothing to save");
}

#[tokio::test]
async fn a_balanced_client_built_from_settings_saves_its_index_for_the_next_process() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let index_dir = dir.path().join("semantic");
    let settings: SemanticCacheSettings =
        serde_json::from_value(serde_json::json!({ "index_dir": index_dir, "max_entries": 100 }))
            .expect("valid settings");
    let balanced = |settings: SemanticCacheSettings| {
        BalancedGpt::builder()
            .provider(
                OpenAiConfig::new()
                    .api_key(OPENAI_KEY)
                    .base_url(sim.base_url())
                    .name("a"),
            )
            .provider(Provider::openai(
                OpenAiConfig::new()
                    .api_key(OPENAI_KEY_2)
                    .base_url(sim.base_url())
                    .name("b"),
            ))
            .semantic_cache(settings)
            .build()
            .expect("client builds (the model loads)")
    };

    let question = ask(QUESTION);
    let first_run = balanced(settings.clone());
    first_run
        .chat_completion(question.clone())
        .await
        .expect("answer");
    first_run
        .save_semantic_index()
        .await
        .expect("the index is saved");
    assert!(index_dir.join("current").is_dir(), "saved under index_dir");
    drop(first_run);
    assert_eq!(upstream(&sim), 1);

    let second_run = balanced(settings);
    let hit = second_run
        .chat_completion(ask(PARAPHRASE))
        .await
        .expect("answer");
    assert!(score(hit.meta.cache) >= SemanticConfig::DEFAULT_THRESHOLD);
    assert_answers(&question, &hit);
    assert_eq!(upstream(&sim), 1, "answered from the saved index");
    let stats = second_run.semantic_cache_stats().expect("a semantic cache");
    assert_eq!((stats.hits, stats.misses), (1, 0));
}

#[test]
fn a_missing_model_is_a_config_error_at_build() {
    let settings: SemanticCacheSettings =
        serde_json::from_value(serde_json::json!({ "model_dir": "/nonexistent/lbgpt-model" }))
            .expect("valid settings");
    let error = ChatGpt::builder()
        .api_key("sk-unused")
        .semantic_cache(settings)
        .build()
        .expect_err("no model there");
    let text = error.to_string();
    assert!(
        matches!(error, lbgpt::Error::Config(_))
            && text.contains("semantic cache")
            && text.contains("/nonexistent/lbgpt-model"),
        "{text}"
    );
}
