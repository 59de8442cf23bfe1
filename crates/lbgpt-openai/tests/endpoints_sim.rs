//! Embeddings and legacy completions through OpenAiService against the real simulator: answers,
//! metadata, split/merge in order, unknown fields on the wire, and errors mapped as for chat.

use lbgpt_core::{
    CompletionRequest, CompletionResponse, DecodeKind, EmbeddingRequest, EmbeddingResponse,
    EmbeddingVector, Error,
};
use lbgpt_openai::transport::Endpoint;
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_sim::{Fault, KeyConfig, SimConfig, Simulator};
use std::time::Duration;
use tower::ServiceExt;

const KEY: &str = "sk-sim-endpoints-key-0123456789";

async fn sim() -> Simulator {
    Simulator::start(SimConfig::new().key(KeyConfig::new(KEY).rpm(1_000).tpm(1_000_000)))
        .await
        .expect("simulator starts")
}

fn service(sim: &Simulator) -> OpenAiService {
    OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(sim.base_url())
            .no_proxy()
            .name("openai-1"),
    )
    .expect("valid config")
}

fn assert_no_key(err: &Error) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("0123456789"), "key leaked: {shown}");
}

fn api(err: &Error) -> &lbgpt_core::ApiError {
    match err {
        Error::Api(api) => api,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn embeddings_answer_each_input_in_order_with_meta() {
    let sim = sim().await;
    let service = service(&sim);
    assert_eq!(
        service.endpoint_url(Endpoint::Embeddings),
        format!("{}/embeddings", sim.base_url())
    );
    let inputs = ["first text", "second text", "third"];
    let request = EmbeddingRequest::new("text-embedding-3-small", inputs.to_vec());
    let answer: EmbeddingResponse = service.clone().oneshot(request).await.expect("answer");

    let vectors = answer.vectors().expect("floats");
    assert_eq!(vectors.len(), 3);
    for (vector, input) in vectors.iter().zip(inputs) {
        assert_eq!(*vector, lbgpt_sim::expected_embedding(input).as_slice());
    }
    assert_eq!(answer.model, "text-embedding-3-small");
    let usage = answer.usage.as_ref().expect("usage");
    let stats = sim.key_stats(KEY).expect("known key");
    assert_eq!(usage.prompt_tokens, stats.prompt_tokens);
    assert_eq!((stats.requests, stats.succeeded), (1, 1));
    assert_eq!(stats.completion_tokens, 0);
    assert_eq!(answer.meta.member.as_deref(), Some("openai-1"));
    assert_eq!(answer.meta.attempts, 1);
    assert!(answer.meta.request_id.is_some());
    assert!(answer.meta.rate_limit.is_some());

    let seen = sim.seen_requests();
    let last = seen.last().expect("seen");
    assert_eq!(last.path, "/v1/embeddings");
    assert_eq!(last.body["input"][1], "second text");
}

#[tokio::test]
async fn embeddings_dimensions_base64_and_unknown_fields_reach_the_server() {
    let sim = sim().await;
    let service = service(&sim);
    let request = EmbeddingRequest::new("m", "hello")
        .dimensions(8)
        .encoding_format("base64")
        .extra_field("vendor_truncate", serde_json::json!("END"));
    let answer = service.embeddings(request).await.expect("answer");
    assert!(matches!(answer.data[0].embedding, EmbeddingVector::Base64(ref b) if b.len() == 44));
    assert_eq!(
        answer.data[0].embedding.to_floats().expect("decodes"),
        lbgpt_sim::expected_embedding_with_dimensions("hello", 8)
    );
    let seen = sim.seen_requests();
    let body = &seen.last().expect("seen").body;
    assert_eq!(body["vendor_truncate"], "END");
    assert_eq!(body["dimensions"], 8);

    let floats = service
        .embeddings(EmbeddingRequest::new("m", "hello").dimensions(8))
        .await
        .expect("answer");
    assert_eq!(
        floats.vectors().expect("floats")[0],
        lbgpt_sim::expected_embedding_with_dimensions("hello", 8).as_slice()
    );
}

#[tokio::test]
async fn split_embedding_requests_merge_back_in_input_order() {
    let sim = sim().await;
    let service = service(&sim);
    let inputs: Vec<String> = (0..7).map(|i| format!("input number {i}")).collect();
    let whole = EmbeddingRequest::new("m", inputs.clone());
    let parts = whole.split();
    assert_eq!(parts.len(), 7);
    // Answer the parts in reverse, as a balancer might, then merge in part order.
    let mut answers = Vec::new();
    for part in parts.iter().rev() {
        answers.push(service.embeddings(part.clone()).await.expect("answer"));
    }
    answers.reverse();
    let merged = EmbeddingResponse::merge(answers).expect("merges");
    let direct = service.embeddings(whole).await.expect("answer");

    assert_eq!(merged.data.len(), 7);
    assert_eq!(
        merged.vectors().expect("floats"),
        direct.vectors().expect("floats")
    );
    for (i, embedding) in merged.data.iter().enumerate() {
        assert_eq!(embedding.index as usize, i);
    }
    assert_eq!(
        merged.usage.as_ref().expect("usage").prompt_tokens,
        direct.usage.as_ref().expect("usage").prompt_tokens
    );
    assert_eq!(merged.meta.attempts, 7);
    let stats = sim.key_stats(KEY).expect("known key");
    assert_eq!(stats.succeeded, 8);
}

#[tokio::test]
async fn completions_answer_n_choices_per_prompt_and_merge_in_order() {
    let sim = sim().await;
    let service = service(&sim);
    let prompts = ["Once upon a time", "The answer is", "Dear diary"];
    let whole = CompletionRequest::new("gpt-3.5-turbo-instruct", prompts.to_vec())
        .n(2)
        .max_tokens(200)
        .extra_field("presence_penalty", serde_json::json!(0.25));
    let direct: CompletionResponse = service
        .clone()
        .oneshot(whole.clone())
        .await
        .expect("answer");
    let expected: Vec<String> = prompts
        .iter()
        .flat_map(|p| {
            let text = lbgpt_sim::expected_completion(p);
            [text.clone(), text]
        })
        .collect();
    assert_eq!(direct.texts(), expected);
    assert_eq!(direct.object, "text_completion");
    assert!(direct.id.starts_with("cmpl-sim-"));
    assert_eq!(
        sim.seen_requests().last().expect("seen").body["presence_penalty"],
        0.25
    );

    let mut answers = Vec::new();
    for part in whole.split() {
        answers.push(service.completions(part).await.expect("answer"));
    }
    let merged = CompletionResponse::merge(answers).expect("merges");
    assert_eq!(merged.texts(), expected);
    let indices: Vec<u32> = merged.choices.iter().map(|c| c.index).collect();
    assert_eq!(indices, vec![0, 1, 2, 3, 4, 5]);
    let (merged_usage, direct_usage) = (merged.usage.expect("usage"), direct.usage.expect("usage"));
    assert_eq!(
        merged_usage.completion_tokens,
        direct_usage.completion_tokens
    );
    assert_eq!(merged_usage.prompt_tokens, direct_usage.prompt_tokens);
}

#[tokio::test]
async fn completions_cut_by_max_tokens_finish_with_length() {
    let sim = sim().await;
    let service = service(&sim);
    let answer = service
        .completions(CompletionRequest::new("m", "Tell me everything").max_tokens(3))
        .await
        .expect("answer");
    let (text, truncated) =
        lbgpt_sim::expected_completion_text("Tell me everything", Some(3), false);
    assert!(truncated);
    assert_eq!(answer.first_text(), Some(text.as_str()));
    assert_eq!(answer.choices[0].finish_reason.as_deref(), Some("length"));
}

#[tokio::test]
async fn invalid_requests_fail_before_any_network_call() {
    let sim = sim().await;
    let service = service(&sim);
    let err = service
        .embeddings(EmbeddingRequest::new("m", vec!["ok", ""]))
        .await
        .expect_err("empty input");
    assert!(matches!(err, Error::InvalidRequest { ref field, .. } if field == "input[1]"));
    let err = service
        .completions(CompletionRequest::new("m", Vec::<String>::new()))
        .await
        .expect_err("no prompt");
    assert!(matches!(err, Error::InvalidRequest { ref field, .. } if field == "prompt"));
    assert_eq!(sim.stats().requests, 0);
}

#[tokio::test]
async fn errors_map_as_for_chat() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(
        KEY,
        [
            Fault::RateLimited {
                retry_after: Duration::from_millis(300),
            },
            Fault::ServerError,
            Fault::MalformedJson,
            Fault::Unauthorized,
            Fault::NonJsonBody(502),
        ],
    );
    let embed = || service.embeddings(EmbeddingRequest::new("m", "x"));
    let complete = || service.completions(CompletionRequest::new("m", "x"));

    let err = embed().await.expect_err("429");
    assert_eq!(api(&err).status, 429);
    assert_eq!(api(&err).code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(err.retry_after(), Some(Duration::from_millis(300)));
    assert!(err.is_retryable());

    let err = complete().await.expect_err("500");
    assert_eq!(api(&err).status, 500);
    assert!(err.is_retryable());

    let err = embed().await.expect_err("malformed");
    assert!(matches!(
        err,
        Error::Decode {
            kind: DecodeKind::InvalidJson,
            status: 200,
            ..
        }
    ));

    let err = complete().await.expect_err("401");
    assert_eq!(api(&err).status, 401);
    assert!(!err.is_retryable());
    assert_no_key(&err);

    let err = embed().await.expect_err("502 html");
    assert_eq!(api(&err).status, 502);

    let stats = sim.key_stats(KEY).expect("known key");
    assert_eq!(stats.faults_injected, 5);
    assert!(embed().await.is_ok(), "normal service after the script");
}

#[tokio::test]
async fn wrong_key_is_a_401_without_the_key() {
    let sim = sim().await;
    let service = OpenAiService::new(
        OpenAiConfig::new()
            .api_key("sk-wrong-key-0123456789")
            .base_url(sim.base_url())
            .no_proxy(),
    )
    .expect("valid config");
    let err = service
        .embeddings(EmbeddingRequest::new("m", "x"))
        .await
        .expect_err("401");
    assert_eq!(api(&err).code.as_deref(), Some("invalid_api_key"));
    assert_no_key(&err);
}
