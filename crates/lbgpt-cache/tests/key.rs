//! Cache keys: the documented format, stability (JSON member order, number spelling,
//! settings that do not change the answer) and sensitivity (every field that can change the
//! answer changes the key).

use lbgpt_cache::{CacheConfig, CacheKey, CacheMode};
use lbgpt_core::{
    ChatMessage, ChatRequest, ContentPart, FunctionCall, FunctionDefinition, ResponseFormat, Role,
    Stop, Tool, ToolCall, ToolChoice,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

fn key(request: &ChatRequest) -> CacheKey {
    CacheConfig::new().key_for(request).expect("key")
}

fn parse(text: &str) -> ChatRequest {
    serde_json::from_str(text).expect("request JSON parses")
}

#[test]
fn the_key_is_the_documented_sha256_of_the_canonical_document() {
    let request = ChatRequest::new(
        "gpt-4o-mini",
        vec![ChatMessage::system("Be brief."), ChatMessage::user("hi")],
    )
    .max_tokens(64)
    .temperature(0.7);
    let document = r#"{"family":"","namespace":"","request":{"max_tokens":64,"messages":[{"content":"Be brief.","role":"system"},{"content":"hi","role":"user"}],"model":"gpt-4o-mini","temperature":0.7},"v":1}"#;
    let digest: [u8; 32] = Sha256::digest(document.as_bytes()).into();
    let key = key(&request);
    assert_eq!(key.digest(), &digest);
    let text = key.to_string();
    assert!(text.starts_with("v1:"), "{text}");
    assert_eq!(text.len(), 3 + 64);
    assert!(text[3..]
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_eq!(text[3..], key.hex());

    // Namespace, family and alias go where the documentation says.
    let config = CacheConfig::new()
        .namespace("proj")
        .family("azure")
        .model_alias("gpt-4o-mini", "mini");
    let document = r#"{"family":"azure","namespace":"proj","request":{"max_tokens":64,"messages":[{"content":"Be brief.","role":"system"},{"content":"hi","role":"user"}],"model":"mini","temperature":0.7},"v":1}"#;
    let digest: [u8; 32] = Sha256::digest(document.as_bytes()).into();
    assert_eq!(config.key_for(&request).expect("key").digest(), &digest);
}

#[test]
fn member_order_and_number_spelling_do_not_change_the_key() {
    let a = parse(
        r#"{"model": "gpt-4o", "temperature": 0.7, "top_p": 1,
            "messages": [{"role": "user", "content": "hi", "name": "ann"}],
            "custom": {"b": [1, 2.5, {"y": 1, "x": 0.10}], "a": 1}}"#,
    );
    let b = parse(
        r#"{"custom": {"a": 1.0, "b": [1e0, 2.50, {"x": 1e-1, "y": 1}]},
            "messages": [{"name": "ann", "content": "hi", "role": "user"}],
            "top_p": 1.0, "temperature": 7e-1, "model": "gpt-4o"}"#,
    );
    assert_eq!(key(&a), key(&b));
    // Building the same request in code gives the same key as parsing it.
    let mut built = ChatRequest::new("gpt-4o", vec![ChatMessage::user("hi").with_name("ann")])
        .temperature(0.70)
        .extra_field("custom", json!({"a": 1, "b": [1, 2.5, {"x": 0.1, "y": 1}]}));
    built.top_p = Some(1.0);
    assert_eq!(key(&built), key(&a));
}

#[test]
fn settings_that_do_not_change_the_answer_do_not_change_the_key() {
    let base = ChatRequest::new("gpt-4o", vec![ChatMessage::user("hi")]);
    let mut with_user = base.clone();
    with_user.user = Some("end-user-42".into());
    let mut not_streamed = base.clone();
    not_streamed.stream = Some(false);
    let with_mode = base.clone().cache_mode(CacheMode::Refresh);
    for other in [with_user, not_streamed, with_mode] {
        assert_eq!(key(&other), key(&base), "{other:?}");
    }
}

/// A request with every field set, and one variant per field that changes that field alone.
fn variants() -> Vec<(&'static str, ChatRequest)> {
    let tool_call = ToolCall {
        id: "call_1".into(),
        kind: "function".into(),
        function: Some(FunctionCall {
            name: "lookup".into(),
            arguments: r#"{"q":"x"}"#.into(),
            extra: Default::default(),
        }),
        extra: Default::default(),
    };
    let mut assistant = ChatMessage::assistant("calling");
    assistant.tool_calls = Some(vec![tool_call.clone()]);
    let base = ChatRequest::new(
        "gpt-4o",
        vec![
            ChatMessage::system("sys"),
            ChatMessage::user(vec![
                ContentPart::text("look at this"),
                ContentPart::image_url("https://example.invalid/a.png"),
            ])
            .with_name("ann"),
            assistant,
            ChatMessage::tool("call_1", "result"),
        ],
    )
    .temperature(0.5)
    .max_tokens(100)
    .max_completion_tokens(200)
    .seed(7)
    .n(1)
    .tools(vec![Tool::function(FunctionDefinition::new(
        "lookup",
        json!({"type": "object", "properties": {"q": {"type": "string"}}}),
    ))])
    .tool_choice(ToolChoice::auto())
    .response_format(ResponseFormat::JsonObject)
    .extra_field("reasoning_effort", json!("low"));
    let base = ChatRequest {
        top_p: Some(0.9),
        stop: Some(Stop::One("END".into())),
        presence_penalty: Some(0.1),
        frequency_penalty: Some(0.2),
        logit_bias: Some(BTreeMap::from([("50256".to_owned(), -100.0)])),
        logprobs: Some(true),
        top_logprobs: Some(3),
        parallel_tool_calls: Some(true),
        ..base
    };

    let mut out = vec![("base", base.clone())];
    let mut add = |name: &'static str, change: &dyn Fn(&mut ChatRequest)| {
        let mut request = base.clone();
        change(&mut request);
        out.push((name, request));
    };
    add("model", &|r| r.model = "gpt-4o-mini".into());
    add("temperature", &|r| r.temperature = Some(0.51));
    add("temperature absent", &|r| r.temperature = None);
    add("top_p", &|r| r.top_p = Some(0.8));
    add("n", &|r| r.n = Some(2));
    add("stop", &|r| r.stop = Some(Stop::Many(vec!["END".into()])));
    add("max_tokens", &|r| r.max_tokens = Some(101));
    add("max_completion_tokens", &|r| {
        r.max_completion_tokens = Some(201)
    });
    add("presence_penalty", &|r| r.presence_penalty = Some(0.0));
    add("frequency_penalty", &|r| r.frequency_penalty = None);
    add("logit_bias", &|r| {
        r.logit_bias = Some(BTreeMap::from([("50256".to_owned(), -99.0)]))
    });
    add("logprobs", &|r| r.logprobs = Some(false));
    add("top_logprobs", &|r| r.top_logprobs = Some(4));
    add("seed", &|r| r.seed = Some(8));
    add("tools", &|r| {
        r.tools = Some(vec![Tool::function(
            FunctionDefinition::new("lookup", json!({"type": "object"})).description("d"),
        )])
    });
    add("tool_choice", &|r| {
        r.tool_choice = Some(ToolChoice::function("lookup"))
    });
    add("parallel_tool_calls", &|r| {
        r.parallel_tool_calls = Some(false)
    });
    add("response_format", &|r| {
        r.response_format = Some(ResponseFormat::Text)
    });
    add("unknown field value", &|r| {
        r.extra.insert("reasoning_effort".into(), json!("high"));
    });
    add("unknown field added", &|r| {
        r.extra.insert("verbosity".into(), json!("low"));
    });
    add("message role", &|r| r.messages[0].role = Role::Developer);
    add("message text", &|r| {
        r.messages[0].content = Some("sys!".into())
    });
    add("message text part", &|r| {
        r.messages[1].content = Some(
            vec![
                ContentPart::text("look at that"),
                ContentPart::image_url("https://example.invalid/a.png"),
            ]
            .into(),
        )
    });
    add("message image part", &|r| {
        r.messages[1].content = Some(
            vec![
                ContentPart::text("look at this"),
                ContentPart::image_url("https://example.invalid/b.png"),
            ]
            .into(),
        )
    });
    add("text as parts", &|r| {
        r.messages[0].content = Some(vec![ContentPart::text("sys")].into())
    });
    add("message name", &|r| r.messages[1].name = Some("bob".into()));
    add("message name absent", &|r| r.messages[1].name = None);
    add("tool call arguments", &|r| {
        if let Some(calls) = r.messages[2].tool_calls.as_mut() {
            if let Some(function) = calls[0].function.as_mut() {
                function.arguments = r#"{"q":"y"}"#.into();
            }
        }
    });
    add("tool call id", &|r| {
        if let Some(calls) = r.messages[2].tool_calls.as_mut() {
            calls[0].id = "call_2".into();
        }
    });
    add("tool_call_id", &|r| {
        r.messages[3].tool_call_id = Some("call_2".into())
    });
    add("refusal", &|r| r.messages[2].refusal = Some("no".into()));
    add("unknown message field", &|r| {
        r.messages[0]
            .extra
            .insert("cache_control".into(), json!({"type": "ephemeral"}));
    });
    add("message order", &|r| r.messages.swap(0, 1));
    add("empty content", &|r| {
        r.messages[0].content = Some("".into())
    });
    add("no content", &|r| r.messages[0].content = None);
    out
}

#[test]
fn every_field_that_can_change_the_answer_changes_the_key() {
    let variants = variants();
    let keys: Vec<(&str, CacheKey)> = variants
        .iter()
        .map(|(name, request)| (*name, key(request)))
        .collect();
    for (i, (name_a, key_a)) in keys.iter().enumerate() {
        for (name_b, key_b) in &keys[i + 1..] {
            assert_ne!(key_a, key_b, "`{name_a}` and `{name_b}` share a key");
        }
    }
    // The variants really differ from the base on the wire (the test is not vacuous).
    let base = serde_json::to_value(&variants[0].1).expect("json");
    for (name, request) in &variants[1..] {
        assert_ne!(
            serde_json::to_value(request).expect("json"),
            base,
            "variant `{name}` equals the base"
        );
    }
}

#[test]
fn namespace_family_and_alias_change_the_key_only_as_configured() {
    let request = ChatRequest::new("gpt-4o-2024-08-06", vec![ChatMessage::user("hi")]);
    let plain = CacheConfig::new().key_for(&request);
    let keys = [
        plain,
        CacheConfig::new().namespace("a").key_for(&request),
        CacheConfig::new().namespace("b").key_for(&request),
        CacheConfig::new().family("azure").key_for(&request),
        CacheConfig::new()
            .model_alias("gpt-4o-2024-08-06", "gpt-4o")
            .key_for(&request),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Two deployments aliased to one name share a key; an unrelated alias changes nothing.
    let aliased = CacheConfig::new()
        .model_alias("gpt-4o-2024-08-06", "gpt-4o")
        .model_alias("gpt-4o-eu", "gpt-4o");
    let mut other = request.clone();
    other.model = "gpt-4o-eu".into();
    assert_eq!(aliased.key_for(&request), aliased.key_for(&other));
    assert_eq!(
        CacheConfig::new()
            .model_alias("other", "x")
            .key_for(&request),
        plain
    );
}
