//! Embeddings and legacy completions bodies keep unknown fields, typed fields read right, and
//! split answers merge back in order.

use lbgpt_core::{
    CompletionRequest, CompletionResponse, EmbeddingRequest, EmbeddingResponse, EmbeddingVector,
    Error, Prompt, ResponseMeta, TextInput,
};
use serde_json::{json, Value};
use std::time::Duration;

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(body: &Value) -> Value {
    let typed: T = serde_json::from_value(body.clone()).expect("parses");
    serde_json::to_value(&typed).expect("serialises")
}

#[test]
fn embedding_bodies_round_trip_with_unknown_fields() {
    for input in [
        json!("one text"),
        json!(["a", "b"]),
        json!([1, 2, 3]),
        json!([[1, 2], [3]]),
    ] {
        let body = json!({
            "model": "text-embedding-3-small",
            "input": input,
            "encoding_format": "float",
            "dimensions": 16,
            "user": "u-1",
            "vendor_option": {"truncate": "END"}
        });
        assert_eq!(roundtrip::<EmbeddingRequest>(&body), body);
    }
    let answer = json!({
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -0.25], "vendor": 1},
            {"object": "embedding", "index": 1, "embedding": "AAAAPwAAgL4="}
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 4, "total_tokens": 4, "extra_usage": 2},
        "system_fingerprint": "fp"
    });
    assert_eq!(roundtrip::<EmbeddingResponse>(&answer), answer);
    let typed: EmbeddingResponse = serde_json::from_value(answer).expect("parses");
    assert_eq!(
        typed.data[0].embedding,
        EmbeddingVector::Float(vec![0.5, -0.25])
    );
    assert!(matches!(
        typed.data[1].embedding,
        EmbeddingVector::Base64(_)
    ));
    assert_eq!(typed.extra["system_fingerprint"], "fp");
}

#[test]
fn completion_bodies_round_trip_with_unknown_fields() {
    let body = json!({
        "model": "gpt-3.5-turbo-instruct",
        "prompt": ["Say a", "Say b"],
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 1.0,
        "n": 2,
        "stop": ["\n"],
        "echo": false,
        "logprobs": 2,
        "suffix": "!",
        "seed": 3,
        "best_of": 2,
        "presence_penalty": 0.1,
        "logit_bias": {"50256": -100}
    });
    assert_eq!(roundtrip::<CompletionRequest>(&body), body);
    let typed: CompletionRequest = serde_json::from_value(body).expect("parses");
    assert_eq!(typed.prompt, Prompt::from(vec!["Say a", "Say b"]));
    assert_eq!(typed.extra.len(), 2);

    let answer = json!({
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1700000000,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [
            {"text": "a", "index": 0, "logprobs": {"tokens": ["a"], "token_logprobs": [-0.1]},
             "finish_reason": "stop", "content_filter_results": {}}
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
        "system_fingerprint": "fp"
    });
    assert_eq!(roundtrip::<CompletionResponse>(&answer), answer);
}

fn embedding_answer(values: &[f32], tokens: u64, attempts: u32) -> EmbeddingResponse {
    let mut answer: EmbeddingResponse = serde_json::from_value(json!({
        "object": "list",
        "data": values.iter().enumerate().rev().map(|(i, v)| json!({
            "object": "embedding", "index": i, "embedding": [v]
        })).collect::<Vec<_>>(),
        "model": "m",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .expect("parses");
    answer.meta = ResponseMeta::default();
    answer.meta.attempts = attempts;
    answer.meta.latency = Duration::from_millis(u64::from(attempts) * 10);
    answer
}

#[test]
fn embedding_merge_renumbers_in_part_order_and_sums_usage() {
    let request = EmbeddingRequest::new("m", vec!["a", "b", "c"]);
    let parts = request.split();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2].input, TextInput::from("c"));

    let merged = EmbeddingResponse::merge(vec![
        embedding_answer(&[1.0], 2, 1),
        embedding_answer(&[2.0, 3.0], 3, 2),
        embedding_answer(&[4.0], 5, 1),
    ])
    .expect("merges");
    let indices: Vec<u32> = merged.data.iter().map(|e| e.index).collect();
    assert_eq!(indices, vec![0, 1, 2, 3]);
    let firsts: Vec<f32> = merged
        .vectors()
        .expect("floats")
        .iter()
        .map(|v| v[0])
        .collect();
    assert_eq!(firsts, vec![1.0, 2.0, 3.0, 4.0]);
    let usage = merged.usage.expect("usage");
    assert_eq!((usage.prompt_tokens, usage.total_tokens), (10, 10));
    assert_eq!(merged.meta.attempts, 4);
    assert_eq!(merged.meta.latency, Duration::from_millis(20));

    assert!(matches!(
        EmbeddingResponse::merge(Vec::new()),
        Err(Error::Decode { .. })
    ));
    assert!(matches!(
        EmbeddingResponse::merge(vec![embedding_answer(&[], 0, 1)]),
        Err(Error::Decode { .. })
    ));
}

fn completion_answer(prompt: &str, n: u32) -> CompletionResponse {
    serde_json::from_value(json!({
        "id": format!("cmpl-{prompt}"),
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": (0..n).rev().map(|j| json!({
            "text": format!("{prompt}-{j}"), "index": j, "finish_reason": "stop"
        })).collect::<Vec<_>>(),
        "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": 1 + n}
    }))
    .expect("parses")
}

#[test]
fn completion_merge_orders_n_choices_per_prompt() {
    let request = CompletionRequest::new("m", vec!["p", "q", "r"]).n(2);
    assert_eq!(request.split().len(), 3);
    let merged = CompletionResponse::merge(vec![
        completion_answer("p", 2),
        completion_answer("q", 2),
        completion_answer("r", 2),
    ])
    .expect("merges");
    assert_eq!(
        merged.texts(),
        vec!["p-0", "p-1", "q-0", "q-1", "r-0", "r-1"]
    );
    let indices: Vec<u32> = merged.choices.iter().map(|c| c.index).collect();
    assert_eq!(indices, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(merged.id, "cmpl-p");
    let usage = merged.usage.expect("usage");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (3, 6, 9)
    );
    assert!(matches!(
        CompletionResponse::merge(vec![completion_answer("p", 2), completion_answer("q", 1)]),
        Err(Error::Decode { .. })
    ));
}

#[test]
fn answers_split_per_input_and_merge_back() {
    let whole = embedding_answer(&[1.0, 2.0, 3.0], 9, 1);
    let parts = whole.clone().split();
    assert_eq!(parts.len(), 3);
    assert!(parts
        .iter()
        .all(|p| p.data.len() == 1 && p.data[0].index == 0));
    assert!(parts.iter().all(|p| p.usage.is_none()));
    let merged = EmbeddingResponse::merge(parts).expect("merges");
    assert_eq!(merged.vectors(), whole.vectors());

    let merged =
        CompletionResponse::merge(vec![completion_answer("p", 2), completion_answer("q", 2)])
            .expect("merges");
    let per_prompt = merged.clone().split(2).expect("splits");
    assert_eq!(per_prompt.len(), 2);
    assert_eq!(per_prompt[1].texts(), vec!["q-0", "q-1"]);
    assert_eq!(per_prompt[1].choices[1].index, 1);
    assert!(merged.clone().split(3).is_err());
    assert!(merged.split(0).is_err());
}
