//! OpenAiService against the real simulator on loopback: answers, metadata, headers sent, and
//! every error class mapped from what the server (or the network) does.

use lbgpt_core::{
    tokens::approx_prompt_tokens, ChatMessage, ChatRequest, ChatResponse, DecodeKind, Error,
    TimeoutPhase, TransportKind,
};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_sim::{Fault, KeyConfig, SimConfig, Simulator};
use std::time::Duration;
use tower::{Service, ServiceExt};

const KEY: &str = "sk-sim-openai-test-key-0123456789";

async fn sim() -> Simulator {
    Simulator::start(SimConfig::new().key(KeyConfig::new(KEY).rpm(1_000).tpm(1_000_000)))
        .await
        .expect("simulator starts")
}

fn config(sim: &Simulator) -> OpenAiConfig {
    OpenAiConfig::new()
        .api_key(KEY)
        .base_url(sim.base_url())
        .no_proxy()
        .name("openai-1")
}

fn service(sim: &Simulator) -> OpenAiService {
    OpenAiService::new(config(sim)).expect("valid config")
}

fn request(text: &str) -> ChatRequest {
    ChatRequest::new(
        "gpt-4o-mini",
        vec![ChatMessage::system("Be brief."), ChatMessage::user(text)],
    )
    .max_tokens(64)
}

async fn call(service: &OpenAiService, request: ChatRequest) -> Result<ChatResponse, Error> {
    service.clone().oneshot(request).await
}

/// The key must not appear anywhere in what an error shows.
fn assert_no_key(err: &Error) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(KEY), "key leaked: {shown}");
    assert!(
        !shown.contains("0123456789"),
        "part of the key leaked: {shown}"
    );
}

fn api(err: &Error) -> &lbgpt_core::ApiError {
    match err {
        Error::Api(api) => api,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn success_fills_answer_and_meta() {
    let sim = sim().await;
    let service = service(&sim);
    let req = request("What is 2 + 2?");
    let answer = call(&service, req.clone()).await.expect("answer");

    assert_eq!(answer.first_text(), Some(lbgpt_sim::expected_answer(&req)));
    assert!(answer.id.starts_with("chatcmpl-sim-"), "{}", answer.id);
    assert_eq!(answer.model, "gpt-4o-mini");
    let usage = answer.usage.as_ref().expect("usage");
    assert_eq!(usage.prompt_tokens, approx_prompt_tokens(&req));

    let meta = &answer.meta;
    assert_eq!(meta.member.as_deref(), Some("openai-1"));
    assert_eq!(meta.attempts, 1);
    assert!(meta.latency > Duration::ZERO);
    let request_id = meta.request_id.as_deref().expect("request id");
    assert!(request_id.starts_with("req-sim-"), "{request_id}");
    let limits = meta.rate_limit.as_ref().expect("rate-limit headers");
    assert_eq!(limits.limit_requests, Some(1_000));
    assert_eq!(limits.remaining_requests, Some(999));
    assert_eq!(limits.limit_tokens, Some(1_000_000));
    assert!(limits.remaining_tokens.is_some_and(|t| t < 1_000_000));
    assert!(limits.reset_requests.is_some());

    let stats = sim.key_stats(KEY).expect("key stats");
    assert_eq!((stats.requests, stats.succeeded), (1, 1));
}

#[tokio::test]
async fn default_member_name_is_openai_and_clones_share_the_service() {
    let sim = sim().await;
    let mut service = OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(sim.base_url())
            .no_proxy(),
    )
    .expect("valid config");
    let mut clone = service.clone();
    // OpenAiService serves several request types: name the one meant before `ready`.
    let a = ServiceExt::<ChatRequest>::ready(&mut service)
        .await
        .expect("ready")
        .call(request("a"))
        .await
        .expect("a");
    let b = ServiceExt::<ChatRequest>::ready(&mut clone)
        .await
        .expect("ready")
        .call(request("b"))
        .await
        .expect("b");
    assert_eq!(a.meta.member.as_deref(), Some("openai"));
    assert_eq!(b.meta.member.as_deref(), Some("openai"));
    assert_eq!(sim.stats().requests, 2);
}

#[tokio::test]
async fn organization_project_and_extra_headers_arrive() {
    let sim = sim().await;
    let service = OpenAiService::new(
        config(&sim)
            .organization("org-lbgpt")
            .project("proj-batch")
            .header("x-custom", "custom-value")
            .header("x-trace-id", "trace-7"),
    )
    .expect("valid config");
    call(&service, request("headers")).await.expect("answer");

    let seen = sim.seen_requests();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.header("openai-organization"), Some("org-lbgpt"));
    assert_eq!(seen.header("openai-project"), Some("proj-batch"));
    assert_eq!(seen.header("x-custom"), Some("custom-value"));
    assert_eq!(seen.header("x-trace-id"), Some("trace-7"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert!(seen
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("lbgpt/")));
    // The simulator redacts credentials in its log; the header was there and the key matched.
    assert_eq!(seen.header("authorization"), Some(lbgpt_sim::REDACTED));
    assert_eq!(seen.key_id.as_deref(), Some(KEY));
    // The body is the request, serialised once, fields intact.
    assert_eq!(seen.body["model"], "gpt-4o-mini");
    assert_eq!(seen.body["max_tokens"], 64);
    assert_eq!(seen.body["messages"][1]["content"], "headers");
}

#[tokio::test]
async fn without_a_key_no_authorization_header_is_sent() {
    let sim = sim().await;
    let service = OpenAiService::new(config(&sim).without_api_key()).expect("valid config");
    let err = call(&service, request("no key"))
        .await
        .expect_err("the sim wants a key");
    assert_eq!(api(&err).status, 401);
    let seen = sim.seen_requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), None);
}

#[tokio::test]
async fn rate_limited_429_carries_retry_after_and_limits() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(
        KEY,
        [
            Fault::RateLimited {
                retry_after: Duration::from_millis(300),
            },
            Fault::RateLimited {
                retry_after: Duration::from_millis(2_500),
            },
        ],
    );
    let err = call(&service, request("limited")).await.expect_err("429");
    let e = api(&err);
    assert_eq!(e.status, 429);
    assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(e.kind.as_deref(), Some("requests"));
    assert!(e.message.contains("Rate limit reached"), "{}", e.message);
    // retry-after-ms wins over the whole-second retry-after (which says 1).
    assert_eq!(e.retry_after, Some(Duration::from_millis(300)));
    assert_eq!(err.retry_after(), Some(Duration::from_millis(300)));
    let limits = e
        .rate_limit
        .as_ref()
        .expect("rate-limit headers on the 429");
    assert_eq!(limits.remaining_requests, Some(0));
    assert_eq!(limits.reset_requests, Some(Duration::from_millis(300)));
    assert!(e.request_id.is_some());
    assert!(err.is_retryable());
    assert_eq!(err.class(), "api_error");
    assert_no_key(&err);

    let err = call(&service, request("limited again"))
        .await
        .expect_err("429");
    assert_eq!(api(&err).retry_after, Some(Duration::from_millis(2_500)));
    assert_eq!(
        api(&err).rate_limit.as_ref().and_then(|l| l.reset_requests),
        Some(Duration::from_millis(2_500))
    );

    // After the script, normal service resumes.
    call(&service, request("fine"))
        .await
        .expect("served after the faults");
}

#[tokio::test]
async fn insufficient_quota_is_a_non_retryable_429() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(KEY, [Fault::InsufficientQuota]);
    let err = call(&service, request("quota")).await.expect_err("429");
    let e = api(&err);
    assert_eq!(e.status, 429);
    assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
    assert!(e.is_insufficient_quota());
    assert!(!err.is_retryable());
    assert_no_key(&err);
}

#[tokio::test]
async fn server_errors_500_and_503() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(
        KEY,
        [
            Fault::ServerError,
            Fault::Unavailable {
                retry_after: Some(Duration::from_secs(2)),
            },
            Fault::Unavailable { retry_after: None },
        ],
    );
    let err = call(&service, request("500")).await.expect_err("500");
    assert_eq!(api(&err).status, 500);
    assert_eq!(api(&err).kind.as_deref(), Some("server_error"));
    assert!(!api(&err).message.is_empty());
    assert!(err.is_retryable());
    assert_no_key(&err);

    let err = call(&service, request("503")).await.expect_err("503");
    assert_eq!(api(&err).status, 503);
    assert_eq!(api(&err).retry_after, Some(Duration::from_secs(2)));
    assert!(err.is_retryable());

    let err = call(&service, request("503 bare")).await.expect_err("503");
    assert_eq!(api(&err).status, 503);
    assert_eq!(api(&err).retry_after, None);
}

#[tokio::test]
async fn other_statuses_keep_their_class() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(
        KEY,
        [Fault::Status(400), Fault::Status(408), Fault::Status(404)],
    );
    let err = call(&service, request("400")).await.expect_err("400");
    assert_eq!(api(&err).status, 400);
    assert!(!err.is_retryable());
    let err = call(&service, request("408")).await.expect_err("408");
    assert_eq!(api(&err).status, 408);
    assert!(err.is_retryable());
    let err = call(&service, request("404")).await.expect_err("404");
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn unauthorized_401_never_shows_the_key() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(KEY, [Fault::Unauthorized]);
    let err = call(&service, request("revoked")).await.expect_err("401");
    assert_eq!(api(&err).status, 401);
    assert_eq!(api(&err).code.as_deref(), Some("invalid_api_key"));
    assert!(!err.is_retryable());
    assert_no_key(&err);

    // A key the server does not know at all.
    let unknown_key = "sk-unknown-key-that-must-stay-hidden";
    let stranger = OpenAiService::new(config(&sim).api_key(unknown_key)).expect("valid config");
    let err = call(&stranger, request("who")).await.expect_err("401");
    assert_eq!(api(&err).status, 401);
    let shown = format!("{err} {err:?} {stranger:?}");
    assert!(!shown.contains(unknown_key), "{shown}");
}

#[tokio::test]
async fn non_json_and_empty_error_bodies_still_give_api_errors() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(
        KEY,
        [
            Fault::NonJsonBody(502),
            Fault::EmptyBody(503),
            Fault::EmptyBody(429),
        ],
    );

    let err = call(&service, request("html")).await.expect_err("502");
    let e = api(&err);
    assert_eq!(e.status, 502);
    assert!(
        e.message.starts_with("Bad Gateway (non-JSON body: "),
        "{}",
        e.message
    );
    assert!(
        e.message.contains('<'),
        "the excerpt quotes the page: {}",
        e.message
    );
    assert!(
        e.message.chars().count() <= 260,
        "excerpt is bounded: {}",
        e.message
    );
    assert!(err.is_retryable());

    let err = call(&service, request("empty")).await.expect_err("503");
    assert_eq!(api(&err).status, 503);
    assert_eq!(api(&err).message, "Service Unavailable (empty body)");

    let err = call(&service, request("empty 429")).await.expect_err("429");
    assert_eq!(api(&err).status, 429);
    assert_eq!(api(&err).message, "Too Many Requests (empty body)");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_json_200_is_a_retryable_decode_error() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(KEY, [Fault::MalformedJson]);
    let err = call(&service, request("truncated"))
        .await
        .expect_err("bad JSON");
    match &err {
        Error::Decode {
            kind,
            status,
            excerpt,
            ..
        } => {
            assert_eq!(*kind, DecodeKind::InvalidJson);
            assert_eq!(*status, 200);
            assert!(!excerpt.is_empty());
            assert!(excerpt.chars().count() <= 200);
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_no_key(&err);
}

#[tokio::test]
async fn connection_reset_is_a_transport_reset() {
    let sim = sim().await;
    let service = service(&sim);
    sim.script(KEY, [Fault::Reset]);
    let err = call(&service, request("reset")).await.expect_err("reset");
    match &err {
        Error::Transport { kind, message } => {
            assert_eq!(*kind, TransportKind::Reset, "{message}");
            assert!(!message.contains("127.0.0.1"), "no URL in {message}");
            assert!(!message.contains("http://"), "no URL in {message}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_no_key(&err);
    // The pool recovers: the next call gets a fresh connection.
    call(&service, request("after reset"))
        .await
        .expect("served after the reset");
}

#[tokio::test]
async fn stall_past_the_request_timeout_is_a_request_timeout() {
    let sim = sim().await;
    let limit = Duration::from_millis(300);
    let service = OpenAiService::new(config(&sim).request_timeout(limit)).expect("valid config");
    sim.script(KEY, [Fault::Stall(Duration::from_secs(3))]);
    let started = std::time::Instant::now();
    let err = call(&service, request("slow")).await.expect_err("timeout");
    assert!(started.elapsed() >= limit, "waited at least the limit");
    match &err {
        Error::Timeout { phase, after } => {
            assert_eq!(*phase, TimeoutPhase::Request);
            assert_eq!(*after, Some(limit));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test]
async fn connection_refused_is_a_transport_connect_error() {
    // A port that was free a moment ago and has no listener now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let service = OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(format!("http://{addr}/v1"))
            .no_proxy(),
    )
    .expect("valid config");
    let err = call(&service, request("anyone?"))
        .await
        .expect_err("refused");
    match &err {
        Error::Transport { kind, message } => {
            assert_eq!(*kind, TransportKind::Connect, "{message}");
            assert!(!message.contains(&addr.to_string()), "no URL in {message}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_no_key(&err);
}

#[tokio::test]
async fn invalid_requests_fail_before_any_network_call() {
    let sim = sim().await;
    let service = service(&sim);
    let too_hot = request("hot").temperature(3.5);
    let err = call(&service, too_hot).await.expect_err("invalid");
    assert!(
        matches!(&err, Error::InvalidRequest { field, .. } if field == "temperature"),
        "{err:?}"
    );
    let mut streaming = request("stream");
    streaming.stream = Some(true);
    let err = call(&service, streaming).await.expect_err("invalid");
    assert!(matches!(&err, Error::InvalidRequest { field, .. } if field == "stream"));
    let empty = ChatRequest::new("gpt-4o-mini", vec![]);
    let err = call(&service, empty).await.expect_err("invalid");
    assert!(matches!(&err, Error::InvalidRequest { field, .. } if field == "messages"));
    assert_eq!(sim.stats().requests, 0, "nothing reached the server");
    assert!(sim.seen_requests().is_empty());
}

#[tokio::test]
async fn request_extras_reach_the_server() {
    let sim = sim().await;
    let service = service(&sim);
    let req = request("extras")
        .seed(7)
        .extra_field("reasoning_effort", serde_json::json!("low"))
        .extra_field("metadata", serde_json::json!({"batch": "b1"}));
    let answer = call(&service, req.clone()).await.expect("answer");
    assert_eq!(answer.first_text(), Some(lbgpt_sim::expected_answer(&req)));
    let seen = sim.seen_requests();
    assert_eq!(seen[0].body["reasoning_effort"], "low");
    assert_eq!(seen[0].body["metadata"]["batch"], "b1");
    assert_eq!(seen[0].body["seed"], 7);
}

#[tokio::test]
async fn many_concurrent_calls_each_get_their_own_answer() {
    let sim = sim().await;
    let service = service(&sim);
    let calls = (0..50).map(|i| {
        let service = service.clone();
        async move {
            let req = request(&format!("question {i}"));
            let answer = call(&service, req.clone()).await.expect("answer");
            assert_eq!(answer.first_text(), Some(lbgpt_sim::expected_answer(&req)));
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(sim.key_stats(KEY).expect("stats").succeeded, 50);
}

#[tokio::test]
async fn the_answers_body_is_kept_only_when_the_request_asks() {
    let sim = sim().await;
    let service = service(&sim);

    let plain = service
        .clone()
        .oneshot(request("keep nothing"))
        .await
        .expect("an answer");
    assert_eq!(plain.meta.body, None);

    let mut asking = request("keep the body");
    asking.options.keep_body = true;
    let kept = service.clone().oneshot(asking).await.expect("an answer");
    let body = kept.meta.body.clone().expect("the body is kept");
    // Debug shows the length only, never the answer.
    assert_eq!(
        format!("{body:?}"),
        format!("RawBody({} bytes)", body.bytes().len())
    );
    // The body is the answer as the provider sent it: it decodes to the same answer.
    let decoded: ChatResponse = serde_json::from_slice(body.bytes()).expect("JSON");
    assert_eq!(
        serde_json::to_value(&decoded).expect("json"),
        serde_json::to_value(&kept).expect("json")
    );
    assert_eq!(
        decoded.first_text(),
        Some(lbgpt_sim::expected_answer(&request("keep the body")))
    );

    // Embeddings and completions take the same path.
    let mut embedding = lbgpt_core::EmbeddingRequest::new("text-embedding-3-small", "hi");
    embedding.options.keep_body = true;
    let answer = service.clone().oneshot(embedding).await.expect("vectors");
    assert!(answer.meta.body.is_some());
}
