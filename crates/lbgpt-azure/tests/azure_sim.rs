//! AzureService against the real simulator on loopback: URL, credential headers, api-version,
//! the deployment map, and error mapping shared with lbgpt-openai.

use lbgpt_azure::{AzureAuth, AzureConfig, AzureService, DEFAULT_API_VERSION};
use lbgpt_core::{ChatMessage, ChatRequest, ChatResponse, Error};
use lbgpt_sim::{Fault, KeyConfig, SimConfig, Simulator};
use std::time::Duration;
use tower::ServiceExt;

const KEY: &str = "azure-sim-key-5f5f5f5f5f";

async fn sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(KEY).rpm(600).tpm(100_000))
            .azure_deployment("gpt4o-prod", "gpt-4o-2024-08-06")
            .azure_deployment("mini-eu", "gpt-4o-mini-2024-07-18"),
    )
    .await
    .expect("simulator starts")
}

fn config(sim: &Simulator) -> AzureConfig {
    AzureConfig::new(sim.endpoint())
        .api_key(KEY)
        .deployment("gpt-4o", "gpt4o-prod")
        .deployment("gpt-4o-mini", "mini-eu")
        .no_proxy()
        .name("azure-eu")
}

fn request(model: &str, text: &str) -> ChatRequest {
    ChatRequest::new(model, vec![ChatMessage::user(text)]).max_tokens(50)
}

async fn call(service: &AzureService, request: ChatRequest) -> Result<ChatResponse, Error> {
    service.clone().oneshot(request).await
}

fn assert_no_key(text: &str) {
    assert!(!text.contains(KEY), "key leaked: {text}");
    assert!(!text.contains("5f5f5f"), "part of the key leaked: {text}");
}

#[tokio::test]
async fn api_key_requests_reach_the_deployment_url_with_the_api_version() {
    let sim = sim().await;
    let service = AzureService::new(config(&sim)).expect("valid config");
    let req = request("gpt-4o", "Hello Azure");
    let answer = call(&service, req.clone()).await.expect("answer");

    assert_eq!(answer.first_text(), Some(lbgpt_sim::expected_answer(&req)));
    assert_eq!(
        answer.model, "gpt-4o-2024-08-06",
        "served by the mapped deployment"
    );
    assert_eq!(answer.meta.member.as_deref(), Some("azure-eu"));
    assert_eq!(answer.meta.attempts, 1);
    assert!(answer.meta.request_id.is_some());
    let limits = answer.meta.rate_limit.as_ref().expect("rate-limit headers");
    assert_eq!(limits.limit_requests, Some(600));
    assert_eq!(limits.remaining_requests, Some(599));

    let seen = sim.seen_requests();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/openai/deployments/gpt4o-prod/chat/completions");
    assert_eq!(seen.query_param("api-version"), Some(DEFAULT_API_VERSION));
    assert_eq!(DEFAULT_API_VERSION, "2024-10-21");
    assert_eq!(seen.header("api-key"), Some(lbgpt_sim::REDACTED));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.key_id.as_deref(), Some(KEY));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.body["model"], "gpt-4o");

    // The second model goes to its own deployment.
    let answer = call(&service, request("gpt-4o-mini", "small"))
        .await
        .expect("answer");
    assert_eq!(answer.model, "gpt-4o-mini-2024-07-18");
    let seen = sim.seen_requests();
    assert_eq!(seen[1].path, "/openai/deployments/mini-eu/chat/completions");
}

#[tokio::test]
async fn bearer_tokens_go_in_authorization_and_api_version_is_configurable() {
    let sim = sim().await;
    let service = AzureService::new(
        config(&sim)
            .auth(AzureAuth::bearer_token(KEY))
            .api_version("2025-01-01-preview")
            .header("x-ms-client-request-id", "client-1"),
    )
    .expect("valid config");
    call(&service, request("gpt-4o", "token"))
        .await
        .expect("answer");
    let seen = &sim.seen_requests()[0];
    assert_eq!(seen.header("authorization"), Some(lbgpt_sim::REDACTED));
    assert_eq!(seen.header("api-key"), None);
    assert_eq!(
        seen.key_id.as_deref(),
        Some(KEY),
        "the sim accepted the bearer token"
    );
    assert_eq!(seen.query_param("api-version"), Some("2025-01-01-preview"));
    assert_eq!(seen.header("x-ms-client-request-id"), Some("client-1"));
}

#[tokio::test]
async fn a_trailing_slash_on_the_endpoint_is_tolerated() {
    let sim = sim().await;
    let endpoint = format!("{}/", sim.endpoint());
    let service = AzureService::new(
        AzureConfig::new(endpoint)
            .api_key(KEY)
            .deployment("gpt-4o", "gpt4o-prod")
            .no_proxy(),
    )
    .expect("valid config");
    let answer = call(&service, request("gpt-4o", "slash"))
        .await
        .expect("answer");
    assert_eq!(answer.meta.member.as_deref(), Some("azure"), "default name");
    assert_eq!(
        sim.seen_requests()[0].path,
        "/openai/deployments/gpt4o-prod/chat/completions"
    );
    assert_eq!(
        service.url_for("gpt-4o"),
        Some(
            format!(
                "{}/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
                sim.endpoint()
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn an_unmapped_model_fails_before_any_request() {
    let sim = sim().await;
    let service = AzureService::new(config(&sim)).expect("valid config");
    let err = call(&service, request("gpt-5", "unmapped"))
        .await
        .expect_err("unmapped");
    match &err {
        Error::ModelNotServed {
            model,
            members,
            detail,
        } => {
            assert_eq!(model, "gpt-5");
            assert_eq!(members, &["azure-eu"]);
            assert!(detail.contains("gpt-4o, gpt-4o-mini"), "{detail}");
        }
        other => panic!("expected a model nobody serves, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "model `gpt-5` is not served by azure-eu: no Azure deployment is mapped to it \
         (mapped models: gpt-4o, gpt-4o-mini)"
    );
    assert!(!err.is_retryable());
    assert_eq!(sim.stats().requests, 0, "nothing reached the server");
    assert_eq!(sim.key_stats(KEY).expect("stats").requests, 0);
    assert!(sim.seen_requests().is_empty());
}

#[tokio::test]
async fn errors_map_like_openai_and_never_show_the_key() {
    let sim = sim().await;
    let service = AzureService::new(config(&sim)).expect("valid config");
    sim.script(
        KEY,
        [
            Fault::RateLimited {
                retry_after: Duration::from_millis(700),
            },
            Fault::Unauthorized,
            Fault::NonJsonBody(502),
            Fault::MalformedJson,
        ],
    );
    let err = call(&service, request("gpt-4o", "429"))
        .await
        .expect_err("429");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_millis(700)));
    assert!(err.is_retryable());
    assert_no_key(&format!("{err} {err:?}"));

    let err = call(&service, request("gpt-4o", "401"))
        .await
        .expect_err("401");
    assert_eq!(err.status(), Some(401));
    assert_eq!(
        err.api_error().and_then(|e| e.code.as_deref()),
        Some("invalid_api_key")
    );
    assert!(!err.is_retryable());
    assert_no_key(&format!("{err} {err:?}"));

    let err = call(&service, request("gpt-4o", "502"))
        .await
        .expect_err("502");
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().contains("Bad Gateway"), "{err}");

    let err = call(&service, request("gpt-4o", "bad json"))
        .await
        .expect_err("decode");
    assert_eq!(err.class(), "decode_error");
    assert!(err.is_retryable());

    assert_no_key(&format!("{service:?} {:?}", config(&sim)));
}

#[tokio::test]
async fn a_deployment_the_server_does_not_have_is_a_404() {
    let sim = sim().await;
    let service = AzureService::new(config(&sim).deployment("gpt-4o", "no-such-deployment"))
        .expect("valid config");
    let err = call(&service, request("gpt-4o", "missing"))
        .await
        .expect_err("404");
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        err.api_error().and_then(|e| e.code.as_deref()),
        Some("DeploymentNotFound")
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_unknown_key_gets_a_401_that_does_not_echo_it() {
    let sim = sim().await;
    let stranger_key = "azure-unknown-key-0000-secret";
    let service = AzureService::new(config(&sim).api_key(stranger_key)).expect("valid config");
    let err = call(&service, request("gpt-4o", "who"))
        .await
        .expect_err("401");
    assert_eq!(err.status(), Some(401));
    let shown = format!("{err} {err:?} {service:?}");
    assert!(!shown.contains(stranger_key), "{shown}");
}
