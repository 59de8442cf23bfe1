//! Requests and responses keep every field they do not know, and typed fields read right.

use lbgpt_core::{
    ChatRequest, ChatResponse, ContentPart, MessageContent, ResponseFormat, Role, Stop, ToolChoice,
};
use serde_json::{json, Value};

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(body: &Value) -> Value {
    let typed: T = serde_json::from_value(body.clone()).expect("parses");
    serde_json::to_value(&typed).expect("serialises")
}

#[test]
fn request_with_every_typed_field_and_unknown_ones_round_trips() {
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use JSON."},
            {"role": "user", "name": "ana", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "future_part", "payload": {"x": 1}}
            ]},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "critic", "content": "an unknown role", "vendor_flag": true}
        ],
        "temperature": 0.5,
        "top_p": 0.25,
        "n": 2,
        "stop": ["\n\n", "END"],
        "max_tokens": 100,
        "max_completion_tokens": 120,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "logit_bias": {"50256": -100.0},
        "logprobs": true,
        "top_logprobs": 3,
        "seed": 7,
        "tools": [{"type": "function", "function": {
            "name": "f", "description": "adds", "parameters": {"type": "object"}, "strict": true}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": {"type": "object"}, "strict": true}},
        "user": "u-1",
        "reasoning_effort": "low",
        "metadata": {"team": "eval"},
        "min_p": 0.05
    });
    assert_eq!(roundtrip::<ChatRequest>(&body), body);

    let typed: ChatRequest = serde_json::from_value(body).expect("parses");
    assert_eq!(typed.messages[1].role, Role::Developer);
    assert_eq!(typed.messages[5].role, Role::Other("critic".into()));
    assert_eq!(
        typed.stop,
        Some(Stop::Many(vec!["\n\n".into(), "END".into()]))
    );
    assert!(matches!(typed.tool_choice, Some(ToolChoice::Named(_))));
    assert!(matches!(
        typed.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
    match &typed.messages[2].content {
        Some(MessageContent::Parts(parts)) => {
            assert_eq!(parts[0].as_text(), Some("What is in this picture?"));
            assert!(matches!(parts[1], ContentPart::ImageUrl { .. }));
            assert!(matches!(parts[3], ContentPart::Other(_)));
        }
        other => panic!("expected parts, got {other:?}"),
    }
    assert_eq!(typed.extra["min_p"], json!(0.05));
}

#[test]
fn response_with_provider_extras_round_trips() {
    let body = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000u64,
        "model": "llama-3",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "reasoning_content": "thinking"},
            "finish_reason": "stop",
            "logprobs": {"content": [{"token": "hi", "logprob": -0.1, "bytes": [104, 105],
                "top_logprobs": [{"token": "hi", "logprob": -0.1, "bytes": [104, 105]}]}]},
            "content_filter_results": {"hate": {"filtered": false}}
        }],
        "usage": {
            "prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 1, "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0, "audio_tokens": 0}
        },
        "system_fingerprint": "fp_1",
        "service_tier": "default",
        "timings": {"prompt_n": 10, "predicted_ms": 12.5},
        "prompt_filter_results": [{"prompt_index": 0}]
    });
    assert_eq!(roundtrip::<ChatResponse>(&body), body);
    let typed: ChatResponse = serde_json::from_value(body).expect("parses");
    assert_eq!(typed.first_text().as_deref(), Some("hi"));
    let usage = typed.usage.expect("usage");
    assert_eq!(
        usage
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens),
        Some(1)
    );
}

#[test]
fn nulls_on_known_optional_fields_read_as_absent() {
    let body = json!({
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            "finish_reason": "tool_calls", "logprobs": null}],
        "usage": null, "system_fingerprint": null
    });
    let typed: ChatResponse = serde_json::from_value(body).expect("parses");
    assert!(typed.choices[0].message.content.is_none());
    assert!(typed.usage.is_none());
    assert_eq!(
        typed.choices[0].message.tool_calls.as_ref().map(Vec::len),
        Some(1)
    );
}

#[test]
fn validate_names_the_bad_field() {
    let ok = ChatRequest::new("m", vec![lbgpt_core::ChatMessage::user("hi")]);
    assert!(ok.validate().is_ok());
    let empty = ChatRequest::new("m", vec![]);
    let err = empty.validate().expect_err("no messages");
    assert!(err.to_string().contains("messages"), "{err}");
    let mut streaming = ok.clone();
    streaming.stream = Some(true);
    assert!(streaming
        .validate()
        .expect_err("stream")
        .to_string()
        .contains("stream"));
    let hot = ok.clone().temperature(3.0);
    assert!(hot
        .validate()
        .expect_err("temp")
        .to_string()
        .contains("temperature"));
    let no_model = ChatRequest::new(" ", vec![lbgpt_core::ChatMessage::user("hi")]);
    assert!(no_model
        .validate()
        .expect_err("model")
        .to_string()
        .contains("model"));
}

#[test]
fn a_body_without_choices_is_not_an_answer() {
    let body = json!({"error": {"message": "overloaded", "type": "server_error"}});
    let err = serde_json::from_value::<ChatResponse>(body).expect_err("no choices");
    assert!(err.to_string().contains("choices"), "{err}");
}
