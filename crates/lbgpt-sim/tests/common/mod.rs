//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)]

use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_sim::Simulator;
use serde_json::Value;

/// A one-message chat request.
pub fn chat(text: &str) -> ChatRequest {
    ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user(text)])
}

/// A client without connection pooling surprises: the defaults, plus a test-wide timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client builds")
}

/// `POST /v1/chat/completions` with a bearer key.
pub async fn post_openai(
    client: &reqwest::Client,
    sim: &Simulator,
    key: &str,
    body: &impl serde::Serialize,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("body serialises"))
        .send()
        .await
}

/// `POST` to an Azure deployment with an `api-key` header and an optional api-version.
pub async fn post_azure(
    client: &reqwest::Client,
    sim: &Simulator,
    deployment: &str,
    api_version: Option<&str>,
    key: &str,
    body: &impl serde::Serialize,
) -> reqwest::Result<reqwest::Response> {
    let mut url = format!(
        "{}/openai/deployments/{deployment}/chat/completions",
        sim.endpoint()
    );
    if let Some(version) = api_version {
        url.push_str(&format!("?api-version={version}"));
    }
    client
        .post(url)
        .header("api-key", key)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("body serialises"))
        .send()
        .await
}

/// The body of a response as JSON.
pub async fn json_body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body reads");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// A header's value as text.
pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("header is text").to_owned())
}
