//! Legacy completion keys: the documented document, one key per request over the whole prompt
//! list (a list of one prompt keyed as that prompt), independent of settings that do not
//! change the answer (`user`, `stream: false`, the cache mode, the API key), changed by
//! everything that does, and never equal to a chat or embedding key.

use lbgpt_cache::{CacheConfig, CacheKey, CacheLayer, CacheMode, MemoryStore};
use lbgpt_core::{ChatRequest, CompletionRequest, EmbeddingRequest, Stop};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;

const MODEL: &str = "gpt-3.5-turbo-instruct";

fn key(request: &CompletionRequest) -> CacheKey {
    CacheConfig::new()
        .completion_key_for(request)
        .expect("a key")
}

fn digest_of(document: &str) -> [u8; 32] {
    Sha256::digest(document.as_bytes()).into()
}

#[test]
fn the_key_is_the_documented_sha256_of_the_request_document() {
    let request = CompletionRequest::new(MODEL, "Once upon")
        .max_tokens(16)
        .temperature(0.70)
        .extra_field("user", json!("end-user-7"))
        .extra_field("presence_penalty", json!(0.50))
        .extra_field("vendor", json!({"b": 1.0, "a": [2e0]}));
    let document = r#"{"endpoint":"completions","family":"","namespace":"","request":{"max_tokens":16,"model":"gpt-3.5-turbo-instruct","presence_penalty":0.5,"prompt":"Once upon","temperature":0.7,"vendor":{"a":[2],"b":1}},"v":1}"#;
    let key = key(&request);
    assert_eq!(key.digest(), &digest_of(document));
    assert_eq!(key.to_string(), format!("v1:{}", key.hex()));

    // The example of docs/cache.md.
    let example = CompletionRequest::new(MODEL, "Once upon")
        .max_tokens(16)
        .temperature(0.7);
    let document = r#"{"endpoint":"completions","family":"","namespace":"","request":{"max_tokens":16,"model":"gpt-3.5-turbo-instruct","prompt":"Once upon","temperature":0.7},"v":1}"#;
    assert_eq!(self::key(&example).digest(), &digest_of(document));

    // Namespace, family, alias, a prompt list and every typed field go where documented.
    let config = CacheConfig::new()
        .namespace("proj")
        .family("azure")
        .model_alias(MODEL, "instruct");
    let mut request = CompletionRequest::new(MODEL, vec!["a", "b"]).n(2).seed(-3);
    request.stream = Some(false);
    request.top_p = Some(0.25);
    request.stop = Some(Stop::Many(vec!["\n".into(), "END".into()]));
    request.echo = Some(true);
    request.logprobs = Some(2);
    request.suffix = Some("!".into());
    request.best_of = Some(3);
    let document = r#"{"endpoint":"completions","family":"azure","namespace":"proj","request":{"best_of":3,"echo":true,"logprobs":2,"model":"instruct","n":2,"prompt":["a","b"],"seed":-3,"stop":["\n","END"],"suffix":"!","top_p":0.25},"v":1}"#;
    let key = config.completion_key_for(&request).expect("a key");
    assert_eq!(key.digest(), &digest_of(document));

    // Token ids, one list and several.
    let tokens = CompletionRequest::new(MODEL, vec![vec![1u32, 2], vec![3]]);
    let document = r#"{"endpoint":"completions","family":"","namespace":"","request":{"model":"gpt-3.5-turbo-instruct","prompt":[[1,2],[3]]},"v":1}"#;
    assert_eq!(self::key(&tokens).digest(), &digest_of(document));
}

#[test]
fn a_list_of_one_prompt_is_keyed_as_that_prompt() {
    assert_eq!(
        key(&CompletionRequest::new(MODEL, vec!["only"])),
        key(&CompletionRequest::new(MODEL, "only"))
    );
    let document = r#"{"endpoint":"completions","family":"","namespace":"","request":{"model":"gpt-3.5-turbo-instruct","prompt":[4,5]},"v":1}"#;
    let one_list = CompletionRequest::new(MODEL, vec![vec![4u32, 5]]);
    assert_eq!(key(&one_list).digest(), &digest_of(document));
    assert_eq!(
        key(&one_list),
        key(&CompletionRequest::new(MODEL, vec![4u32, 5]))
    );
    // The facade's parts of a multi-prompt request are keyed as single prompts.
    let parts = CompletionRequest::new(MODEL, vec!["x", "y"]).split();
    assert_eq!(key(&parts[1]), key(&CompletionRequest::new(MODEL, "y")));
}

#[test]
fn settings_that_do_not_change_the_answer_do_not_change_the_key() {
    let base = CompletionRequest::new(MODEL, "same prompt").max_tokens(8);
    let mut not_streamed = base.clone();
    not_streamed.stream = Some(false);
    for same in [
        base.clone().extra_field("user", json!("someone")),
        not_streamed,
        base.clone()
            .extra_field("stream_options", json!({"include_usage": true})),
        base.clone().cache_mode(CacheMode::Refresh),
    ] {
        assert_eq!(key(&same), key(&base), "{same:?}");
    }
    // JSON member order and number spelling do not matter.
    let a: CompletionRequest = serde_json::from_str(
        r#"{"model": "m", "prompt": "t", "temperature": 1.0, "vendor": {"x": 1.0, "y": 0.70}}"#,
    )
    .expect("parses");
    let b: CompletionRequest = serde_json::from_str(
        r#"{"vendor": {"y": 7e-1, "x": 1}, "temperature": 1, "prompt": "t", "model": "m"}"#,
    )
    .expect("parses");
    assert_eq!(key(&a), key(&b));
}

#[test]
fn everything_that_can_change_the_answer_changes_the_key() {
    let base = CompletionRequest::new(MODEL, "text");
    let with = |change: fn(&mut CompletionRequest)| {
        let mut request = base.clone();
        change(&mut request);
        request
    };
    let variants = [
        base.clone(),
        CompletionRequest::new("davinci-002", "text"),
        CompletionRequest::new(MODEL, "text "),
        CompletionRequest::new(MODEL, "Text"),
        CompletionRequest::new(MODEL, vec!["text", "text"]),
        CompletionRequest::new(MODEL, vec!["text", "other"]),
        CompletionRequest::new(MODEL, vec!["other", "text"]),
        CompletionRequest::new(MODEL, vec![1u32, 2]),
        CompletionRequest::new(MODEL, "1 2"),
        base.clone().max_tokens(16),
        base.clone().max_tokens(17),
        base.clone().temperature(0.0),
        base.clone().temperature(0.2),
        with(|r| r.top_p = Some(0.9)),
        base.clone().n(1),
        base.clone().n(2),
        base.clone().seed(1),
        with(|r| r.stop = Some(Stop::One("\n".into()))),
        with(|r| r.stop = Some(Stop::Many(vec!["\n".into()]))),
        with(|r| r.echo = Some(false)),
        with(|r| r.echo = Some(true)),
        with(|r| r.logprobs = Some(0)),
        with(|r| r.suffix = Some(String::new())),
        with(|r| r.best_of = Some(1)),
        base.clone().extra_field("presence_penalty", json!(0.5)),
        base.clone().extra_field("frequency_penalty", json!(0.5)),
        base.clone()
            .extra_field("logit_bias", json!({"50256": -100})),
        base.clone().extra_field("vendor", json!(null)),
    ];
    let keys: Vec<CacheKey> = variants.iter().map(key).collect();
    let distinct: HashSet<&CacheKey> = keys.iter().collect();
    assert_eq!(
        distinct.len(),
        variants.len(),
        "every variant has its own key"
    );

    let scoped = |config: CacheConfig| config.completion_key_for(&base).expect("a key");
    assert_ne!(scoped(CacheConfig::new().namespace("a")), key(&base));
    assert_ne!(scoped(CacheConfig::new().family("azure")), key(&base));
    // An alias makes two model names share entries.
    let aliased = CacheConfig::new().model_alias("instruct-deployment", MODEL);
    let mut renamed = base.clone();
    renamed.model = "instruct-deployment".into();
    assert_eq!(aliased.completion_key_for(&renamed), Some(key(&base)));
}

#[test]
fn completion_keys_never_collide_with_chat_or_embedding_keys() {
    // The same JSON members as a chat, an embedding and a completion request.
    let members = json!({"model": "m", "messages": [], "input": "x", "prompt": "x"});
    let chat: ChatRequest = serde_json::from_value(members.clone()).expect("chat request");
    let embedding: EmbeddingRequest =
        serde_json::from_value(members.clone()).expect("embedding request");
    let completion: CompletionRequest =
        serde_json::from_value(members).expect("completion request");
    let config = CacheConfig::new();
    let completion_key = config.completion_key_for(&completion).expect("a key");
    assert_ne!(completion_key, config.key_for(&chat).expect("chat key"));
    assert_ne!(
        completion_key,
        config.embedding_keys_for(&embedding).expect("keys")[0]
    );
    // Only the endpoint member sets it apart from a chat document of the same request.
    let document = r#"{"endpoint":"completions","family":"","namespace":"","request":{"input":"x","messages":[],"model":"m","prompt":"x"},"v":1}"#;
    assert_eq!(completion_key.digest(), &digest_of(document));
}

#[test]
fn the_layer_keys_requests_as_its_configuration_does_without_a_service() {
    // Keys come from the request and the configuration alone: the layer computes them without
    // a service, so the API key (held by the provider service) cannot reach them. The same
    // request through providers with different API keys shares an entry (completions_sim.rs).
    let layer = CacheLayer::with_config(
        Arc::new(MemoryStore::new()),
        CacheConfig::new().namespace("n"),
    );
    let request = CompletionRequest::new(MODEL, "p");
    assert_eq!(
        layer.completion_key_for(&request),
        CacheConfig::new()
            .namespace("n")
            .completion_key_for(&request)
    );
}
