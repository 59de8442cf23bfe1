//! The embeddings and legacy completions endpoints over raw HTTP: answers, charges against the
//! limits, validation, authentication, Azure paths and faults, as for chat.

mod common;

use common::{client, json_body};
use lbgpt_core::{
    tokens::approx_text_tokens, ArrivalCharge, ChatMessage, ChatRequest, CompletionRequest,
    EmbeddingRequest,
};
use lbgpt_sim::{Fault, KeyConfig, SimConfig, Simulator};
use serde_json::{json, Value};

async fn sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a").rpm(600).tpm(100_000))
            .key(KeyConfig::new("sk-sim-small").tpm(100)),
    )
    .await
    .expect("simulator starts")
}

async fn post(sim: &Simulator, path: &str, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/{path}", sim.base_url()))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn embeddings_answer_each_input_and_charge_prompt_tokens() {
    let sim = sim().await;
    let request = EmbeddingRequest::new("m", vec!["hello world", "bye"]);
    let response = post(&sim, "embeddings", "sk-sim-a", &json!(request)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ratelimit-limit-tokens"], "100000");
    assert!(response.headers().contains_key("x-request-id"));
    let body = json_body(response).await;
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][1]["index"], 1);
    let second: Vec<f32> =
        serde_json::from_value(body["data"][1]["embedding"].clone()).expect("floats");
    assert_eq!(second, lbgpt_sim::expected_embedding("bye"));
    let expected_tokens = approx_text_tokens("hello world") + approx_text_tokens("bye");
    assert_eq!(body["usage"]["prompt_tokens"], expected_tokens);
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!(stats.tokens_charged, expected_tokens);
    assert_eq!((stats.requests, stats.succeeded), (1, 1));
}

#[tokio::test]
async fn completions_charge_prompt_plus_max_tokens_times_n_per_prompt() {
    let sim = sim().await;
    let request = CompletionRequest::new("m", vec!["abcd", "efgh"])
        .n(3)
        .max_tokens(500);
    let response = post(&sim, "completions", "sk-sim-a", &json!(request)).await;
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    assert_eq!(body["choices"].as_array().expect("choices").len(), 6);
    assert_eq!(body["choices"][3]["index"], 3);
    assert_eq!(
        body["choices"][3]["text"],
        lbgpt_sim::expected_completion("efgh")
    );
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!(stats.tokens_charged, 2 + 500 * 3 * 2);
    assert_eq!(
        body["usage"]["completion_tokens"], stats.completion_tokens,
        "usage and counters agree"
    );

    // The same budget never fits a 100-token key: refused, not charged.
    let refused = post(&sim, "completions", "sk-sim-small", &json!(request)).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        json_body(refused).await["error"]["code"],
        "rate_limit_exceeded"
    );
    let small = sim.key_stats("sk-sim-small").expect("known");
    assert_eq!((small.rate_limited, small.tokens_charged), (1, 0));
}

#[tokio::test]
async fn token_id_inputs_and_echo_are_served() {
    let sim = sim().await;
    let body = json!({"model": "m", "input": [[1, 2, 3], [4]]});
    let answer = json_body(post(&sim, "embeddings", "sk-sim-a", &body).await).await;
    let first: Vec<f32> =
        serde_json::from_value(answer["data"][0]["embedding"].clone()).expect("floats");
    assert_eq!(first, lbgpt_sim::expected_embedding("1 2 3"));
    assert_eq!(answer["usage"]["prompt_tokens"], 4);

    let body = json!({"model": "m", "prompt": "Hi. ", "echo": true});
    let answer = json_body(post(&sim, "completions", "sk-sim-a", &body).await).await;
    assert_eq!(
        answer["choices"][0]["text"],
        format!("Hi. {}", lbgpt_sim::expected_completion("Hi. "))
    );
}

#[tokio::test]
async fn invalid_bodies_get_400_naming_the_field() {
    let sim = sim().await;
    for (path, body, param) in [
        ("embeddings", json!({"model": "m", "input": ""}), "input"),
        (
            "embeddings",
            json!({"model": "m", "input": ["a", ""]}),
            "input[1]",
        ),
        (
            "embeddings",
            json!({"model": "m", "input": "a", "dimensions": 5000}),
            "dimensions",
        ),
        ("completions", json!({"model": "m", "prompt": []}), "prompt"),
        (
            "completions",
            json!({"model": "m", "prompt": "a", "n": 0}),
            "n",
        ),
        (
            "completions",
            json!({"model": "m", "prompt": "a", "stream": true}),
            "stream",
        ),
    ] {
        let response = post(&sim, path, "sk-sim-a", &body).await;
        assert_eq!(response.status(), 400, "for {body}");
        let error = json_body(response).await;
        assert_eq!(error["error"]["param"], param, "for {body}");
    }
    let missing_input = post(&sim, "embeddings", "sk-sim-a", &json!({"model": "m"})).await;
    assert_eq!(missing_input.status(), 400);
}

#[tokio::test]
async fn authentication_azure_paths_and_faults_work_as_for_chat() {
    let sim = sim().await;
    let body = json!({"model": "m", "input": "x"});
    let unknown = post(&sim, "embeddings", "sk-unknown-key", &body).await;
    assert_eq!(unknown.status(), 401);
    let text = unknown.text().await.expect("body");
    assert!(text.contains("invalid_api_key") && !text.contains("sk-unknown-key"));

    let azure = |path: &str, version: Option<&str>, body: &Value| {
        let mut url = format!("{}/openai/deployments/dep/{path}", sim.endpoint());
        if let Some(version) = version {
            url.push_str(&format!("?api-version={version}"));
        }
        client()
            .post(url)
            .header("api-key", "sk-sim-a")
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let no_version = azure("embeddings", None, &body).send().await.expect("sent");
    assert_eq!(no_version.status(), 400);
    let answer = azure("embeddings", Some("2024-10-21"), &body)
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("apim-request-id"));
    assert_eq!(
        json_body(answer).await["model"],
        "dep",
        "model from the deployment"
    );
    let completion = azure("completions", Some("2024-10-21"), &json!({"prompt": "p"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(completion.status(), 200);
    assert_eq!(
        json_body(completion).await["choices"][0]["text"],
        lbgpt_sim::expected_completion("p")
    );

    sim.script("sk-sim-a", [Fault::ServerError, Fault::InsufficientQuota]);
    let failed = post(
        &sim,
        "completions",
        "sk-sim-a",
        &json!({"model": "m", "prompt": "p"}),
    )
    .await;
    assert_eq!(failed.status(), 500);
    let quota = post(&sim, "embeddings", "sk-sim-a", &body).await;
    assert_eq!(quota.status(), 429);
    assert_eq!(
        json_body(quota).await["error"]["code"],
        "insufficient_quota"
    );
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!(stats.faults_injected, 2);
}

#[tokio::test]
async fn the_sim_charges_what_arrival_charge_estimates() {
    let sim = sim().await;
    let chat = ChatRequest::new("m", vec![ChatMessage::user("How many tokens?")])
        .max_tokens(40)
        .n(2);
    let embed = EmbeddingRequest::new("m", vec!["one input", "another input here"]);
    let complete = CompletionRequest::new("m", vec!["p one", "p two", "p three"])
        .n(2)
        .max_tokens(7);
    let mut expected = 0;
    for (path, body, charge) in [
        (
            "chat/completions",
            json!(chat),
            chat.approx_arrival_charge(0),
        ),
        ("embeddings", json!(embed), embed.approx_arrival_charge(0)),
        (
            "completions",
            json!(complete),
            complete.approx_arrival_charge(0),
        ),
    ] {
        let response = post(&sim, path, "sk-sim-a", &body).await;
        assert_eq!(response.status(), 200, "{path}");
        expected += charge;
        let stats = sim.key_stats("sk-sim-a").expect("known");
        assert_eq!(stats.tokens_charged, expected, "{path}");
    }
}
