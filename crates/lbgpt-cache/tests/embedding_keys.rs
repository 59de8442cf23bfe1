//! Embedding keys: one per input, the documented document, independent of the other inputs
//! and of settings that do not change a vector (`user`, the cache mode, the API key), and
//! changed by everything that does.

use lbgpt_cache::{CacheConfig, CacheKey, CacheMode, EmbeddingCacheLayer};
use lbgpt_core::{ChatRequest, EmbeddingRequest, TextInput};
use serde_json::json;
use sha2::{Digest, Sha256};

const MODEL: &str = "text-embedding-3-small";

fn keys(request: &EmbeddingRequest) -> Vec<CacheKey> {
    CacheConfig::new()
        .embedding_keys_for(request)
        .expect("keys")
}

fn key(request: &EmbeddingRequest) -> CacheKey {
    let keys = keys(request);
    assert_eq!(keys.len(), 1, "one input");
    keys[0]
}

fn digest_of(document: &str) -> [u8; 32] {
    Sha256::digest(document.as_bytes()).into()
}

#[test]
fn each_key_is_the_documented_sha256_of_its_input_document() {
    let request = EmbeddingRequest::new(MODEL, vec!["hello", "wörld"])
        .dimensions(256)
        .user("end-user-7")
        .extra_field("vendor", json!({"b": 1.0, "a": [0.50]}));
    let keys = keys(&request);
    assert_eq!(keys.len(), 2);
    let document = r#"{"endpoint":"embeddings","family":"","namespace":"","request":{"dimensions":256,"input":"hello","model":"text-embedding-3-small","vendor":{"a":[0.5],"b":1}},"v":1}"#;
    assert_eq!(keys[0].digest(), &digest_of(document));
    let document = r#"{"endpoint":"embeddings","family":"","namespace":"","request":{"dimensions":256,"input":"wörld","model":"text-embedding-3-small","vendor":{"a":[0.5],"b":1}},"v":1}"#;
    assert_eq!(keys[1].digest(), &digest_of(document));
    assert!(keys[0].to_string().starts_with("v1:"));

    // Namespace, family, alias, encoding_format and token ids go where documented.
    let config = CacheConfig::new()
        .namespace("proj")
        .family("azure")
        .model_alias(MODEL, "small");
    let tokens = EmbeddingRequest::new(MODEL, vec![vec![1u32, 2, 3]]).encoding_format("base64");
    let document = r#"{"endpoint":"embeddings","family":"azure","namespace":"proj","request":{"encoding_format":"base64","input":[1,2,3],"model":"small"},"v":1}"#;
    let keys = config.embedding_keys_for(&tokens).expect("keys");
    assert_eq!(keys[0].digest(), &digest_of(document));
}

#[test]
fn fields_sorting_next_to_input_and_every_input_shape_follow_the_document() {
    // `inp` sorts before `input`, `input_type` after it; nothing sorts before `inp`.
    let request = EmbeddingRequest::new(MODEL, vec!["a \"quoted\"\ntext", "x"])
        .extra_field("input_type", json!("query"))
        .extra_field("inp", json!([1, 2.0]));
    let keys = keys(&request);
    let document = |input: &str| {
        format!(
            r#"{{"endpoint":"embeddings","family":"","namespace":"","request":{{"inp":[1,2],"input":{input},"input_type":"query","model":"text-embedding-3-small"}},"v":1}}"#
        )
    };
    assert_eq!(
        keys[0].digest(),
        &digest_of(&document(r#""a \"quoted\"\ntext""#))
    );
    assert_eq!(keys[1].digest(), &digest_of(&document(r#""x""#)));

    // Only `model` besides the input: one text, several token lists.
    let only_model = |input: &str| {
        format!(
            r#"{{"endpoint":"embeddings","family":"","namespace":"","request":{{"input":{input},"model":"text-embedding-3-small"}},"v":1}}"#
        )
    };
    let one = EmbeddingRequest::new(MODEL, "just one");
    assert_eq!(key(&one).digest(), &digest_of(&only_model(r#""just one""#)));
    let lists = EmbeddingRequest::new(MODEL, vec![vec![7u32], vec![4_294_967_295, 0]]);
    let digests: Vec<[u8; 32]> = CacheConfig::new()
        .embedding_keys_for(&lists)
        .expect("keys")
        .iter()
        .map(|key| *key.digest())
        .collect();
    assert_eq!(
        digests,
        vec![
            digest_of(&only_model("[7]")),
            digest_of(&only_model("[4294967295,0]")),
        ]
    );
}

#[test]
fn an_input_has_one_key_whatever_request_and_position_it_comes_in() {
    let listed = keys(&EmbeddingRequest::new(MODEL, vec!["a", "b", "c", "b"]));
    assert_eq!(listed[1], listed[3]);
    assert_eq!(listed[1], key(&EmbeddingRequest::new(MODEL, "b")));
    assert_eq!(
        listed[2],
        keys(&EmbeddingRequest::new(MODEL, vec!["c", "z"]))[0]
    );
    let distinct: std::collections::HashSet<_> = listed.iter().collect();
    assert_eq!(distinct.len(), 3);

    let lists = keys(&EmbeddingRequest::new(MODEL, vec![vec![7u32, 8], vec![9]]));
    assert_eq!(lists[0], key(&EmbeddingRequest::new(MODEL, vec![7u32, 8])));
    assert_ne!(lists[0], lists[1]);
}

#[test]
fn settings_that_do_not_change_a_vector_do_not_change_its_key() {
    let base = EmbeddingRequest::new(MODEL, "same text");
    assert_eq!(key(&base), key(&base.clone().user("someone")));
    assert_eq!(
        key(&base),
        key(&base.clone().cache_mode(CacheMode::Refresh))
    );
    // JSON member order and number spelling do not matter.
    let a: EmbeddingRequest = serde_json::from_str(
        r#"{"model": "m", "input": "t", "dimensions": 8, "vendor": {"x": 1.0, "y": 0.70}}"#,
    )
    .expect("parses");
    let b: EmbeddingRequest = serde_json::from_str(
        r#"{"vendor": {"y": 7e-1, "x": 1}, "dimensions": 8, "input": "t", "model": "m"}"#,
    )
    .expect("parses");
    assert_eq!(key(&a), key(&b));
}

#[test]
fn everything_that_can_change_a_vector_changes_its_key() {
    let base = EmbeddingRequest::new(MODEL, "text");
    let variants = [
        EmbeddingRequest::new("text-embedding-3-large", "text"),
        EmbeddingRequest::new(MODEL, "text "),
        EmbeddingRequest::new(MODEL, "Text"),
        base.clone().dimensions(64),
        base.clone().dimensions(65),
        base.clone().encoding_format("float"),
        base.clone().encoding_format("base64"),
        base.clone().extra_field("vendor_truncate", json!("END")),
        base.clone().extra_field("vendor_truncate", json!("START")),
        base.clone().extra_field("vendor_truncate", json!(null)),
        EmbeddingRequest::new(MODEL, vec![1u32, 2]),
        EmbeddingRequest::new(MODEL, "1 2"),
    ];
    let mut seen = vec![key(&base)];
    for variant in &variants {
        let variant_key = key(variant);
        assert!(
            !seen.contains(&variant_key),
            "{variant:?} shares a key with an earlier variant"
        );
        seen.push(variant_key);
    }

    let scoped = |config: CacheConfig| config.embedding_keys_for(&base).expect("keys")[0];
    assert_ne!(scoped(CacheConfig::new().namespace("a")), key(&base));
    assert_ne!(scoped(CacheConfig::new().family("azure")), key(&base));
    // An alias makes two model names share entries.
    let aliased = CacheConfig::new().model_alias("text-embedding-3-small-v2", MODEL);
    let mut renamed = base.clone();
    renamed.model = "text-embedding-3-small-v2".into();
    assert_eq!(
        aliased.embedding_keys_for(&renamed).expect("keys")[0],
        key(&base)
    );
}

#[test]
fn embedding_keys_never_collide_with_chat_keys() {
    // The same JSON members, once as a chat request and once as an embedding request.
    let chat: ChatRequest = serde_json::from_value(json!({
        "model": "m", "messages": [], "input": "x"
    }))
    .expect("chat request");
    let embedding: EmbeddingRequest = serde_json::from_value(json!({
        "model": "m", "input": "x", "messages": []
    }))
    .expect("embedding request");
    let config = CacheConfig::new();
    assert_eq!(embedding.input, TextInput::from("x"));
    assert_ne!(
        config.key_for(&chat).expect("chat key"),
        config.embedding_keys_for(&embedding).expect("keys")[0]
    );
}

#[test]
fn the_layer_keys_requests_as_its_configuration_does_without_a_service() {
    // Keys come from the request and the configuration alone: the layer computes them without
    // a service, so the API key (held by the provider service) cannot reach them. The same
    // request through providers with different API keys shares entries (embeddings_sim.rs).
    let layer = EmbeddingCacheLayer::with_config(
        std::sync::Arc::new(lbgpt_cache::MemoryStore::new()),
        CacheConfig::new().namespace("n"),
    );
    let request = EmbeddingRequest::new(MODEL, vec!["a", "b"]);
    assert_eq!(
        layer.keys_for(&request),
        CacheConfig::new()
            .namespace("n")
            .embedding_keys_for(&request)
            .expect("keys")
    );
}
