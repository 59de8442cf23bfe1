//! Embeddings and legacy completions through AzureService against the real simulator: the
//! deployment URLs per endpoint, api-version, answers, and errors mapped as for chat.

use lbgpt_azure::{AzureConfig, AzureService, DEFAULT_API_VERSION};
use lbgpt_core::{
    CompletionRequest, CompletionResponse, EmbeddingRequest, EmbeddingResponse, Error,
};
use lbgpt_openai::transport::Endpoint;
use lbgpt_sim::{Fault, KeyConfig, SimConfig, Simulator};
use std::time::Duration;
use tower::ServiceExt;

const KEY: &str = "azure-endpoints-key-5f5f5f5f5f";

async fn sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(KEY).rpm(600).tpm(100_000))
            .azure_deployment("emb-eu", "text-embedding-3-small")
            .azure_deployment("instruct-eu", "gpt-35-turbo-instruct"),
    )
    .await
    .expect("simulator starts")
}

fn service(sim: &Simulator) -> AzureService {
    AzureService::new(
        AzureConfig::new(sim.endpoint())
            .api_key(KEY)
            .deployment("text-embedding-3-small", "emb-eu")
            .deployment("gpt-3.5-turbo-instruct", "instruct-eu")
            .no_proxy()
            .name("azure-eu"),
    )
    .expect("valid config")
}

#[tokio::test]
async fn embeddings_go_to_the_deployment_embeddings_path() {
    let sim = sim().await;
    let service = service(&sim);
    assert_eq!(
        service.endpoint_url_for("text-embedding-3-small", Endpoint::Embeddings),
        Some(
            format!(
                "{}/openai/deployments/emb-eu/embeddings?api-version={DEFAULT_API_VERSION}",
                sim.endpoint()
            )
            .as_str()
        )
    );
    let request = EmbeddingRequest::new("text-embedding-3-small", vec!["alpha", "beta"]);
    let answer: EmbeddingResponse = service.clone().oneshot(request).await.expect("answer");
    let vectors = answer.vectors().expect("floats");
    assert_eq!(
        vectors[0],
        lbgpt_sim::expected_embedding("alpha").as_slice()
    );
    assert_eq!(vectors[1], lbgpt_sim::expected_embedding("beta").as_slice());
    assert_eq!(answer.model, "text-embedding-3-small");
    assert_eq!(answer.meta.member.as_deref(), Some("azure-eu"));
    assert!(answer.meta.request_id.is_some());

    let seen = sim.seen_requests();
    let last = seen.last().expect("seen");
    assert_eq!(last.path, "/openai/deployments/emb-eu/embeddings");
    assert_eq!(
        last.query.as_deref(),
        Some(format!("api-version={DEFAULT_API_VERSION}").as_str())
    );
    assert!(last
        .headers
        .iter()
        .any(|(name, value)| name == "api-key" && value == lbgpt_sim::REDACTED));
}

#[tokio::test]
async fn completions_go_to_the_deployment_completions_path_and_merge() {
    let sim = sim().await;
    let service = service(&sim);
    let whole = CompletionRequest::new("gpt-3.5-turbo-instruct", vec!["a prompt", "b prompt"]);
    let direct: CompletionResponse = service
        .clone()
        .oneshot(whole.clone())
        .await
        .expect("answer");
    assert_eq!(
        direct.texts(),
        vec![
            lbgpt_sim::expected_completion("a prompt"),
            lbgpt_sim::expected_completion("b prompt")
        ]
    );
    assert_eq!(direct.model, "gpt-35-turbo-instruct");
    assert_eq!(
        sim.seen_requests().last().expect("seen").path,
        "/openai/deployments/instruct-eu/completions"
    );
    let mut parts = Vec::new();
    for part in whole.split() {
        parts.push(service.completions(part).await.expect("answer"));
    }
    assert_eq!(
        CompletionResponse::merge(parts).expect("merges").texts(),
        direct.texts()
    );
}

#[tokio::test]
async fn unmapped_models_fail_before_any_call_and_faults_map_as_for_chat() {
    let sim = sim().await;
    let service = service(&sim);
    let err = service
        .embeddings(EmbeddingRequest::new("text-embedding-3-large", "x"))
        .await
        .expect_err("no deployment");
    assert!(
        matches!(err, Error::ModelNotServed { ref model, ref members, .. }
            if model == "text-embedding-3-large" && members == &["azure-eu"]),
        "{err:?}"
    );
    assert!(service.serves("text-embedding-3-small"));
    assert!(!service.serves("text-embedding-3-large"));
    let err = service
        .completions(CompletionRequest::new("gpt-4o", "x"))
        .await
        .expect_err("no deployment");
    assert_eq!(err.class(), "model_not_served");
    assert_eq!(sim.stats().requests, 0);

    sim.script(
        KEY,
        [
            Fault::RateLimited {
                retry_after: Duration::from_millis(250),
            },
            Fault::Unauthorized,
        ],
    );
    let err = service
        .embeddings(EmbeddingRequest::new("text-embedding-3-small", "x"))
        .await
        .expect_err("429");
    assert!(matches!(&err, Error::Api(api) if api.status == 429));
    assert_eq!(err.retry_after(), Some(Duration::from_millis(250)));
    let err = service
        .completions(CompletionRequest::new("gpt-3.5-turbo-instruct", "x"))
        .await
        .expect_err("401");
    assert!(matches!(&err, Error::Api(api) if api.status == 401));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("5f5f5f"), "key leaked: {shown}");
}
