//! OpenAI and Azure paths, authentication, validation and deterministic answers.

mod common;

use common::{chat, client, header, json_body, post_azure, post_openai};
use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_sim::{expected_answer, KeyConfig, SimConfig, Simulator, REDACTED};
use serde_json::json;

async fn sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a"))
            .key(KeyConfig::new("sk-sim-b").name("b")),
    )
    .await
    .expect("simulator starts")
}

#[tokio::test]
async fn openai_path_answers_deterministically_with_usage() {
    let sim = sim().await;
    let client = client();
    let request = ChatRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user("What is 2+2?"),
        ],
    );
    let response = post_openai(&client, &sim, "sk-sim-a", &request)
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(header(&response, "x-request-id").is_some_and(|id| id.starts_with("req-sim-")));
    assert_eq!(
        header(&response, "x-ratelimit-limit-requests"),
        None,
        "no limits configured"
    );
    let body = json_body(response).await;
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert_eq!(content, expected_answer(&request));
    assert!(content.ends_with("to: What is 2+2?"));
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("chatcmpl-sim-")));
    let prompt = lbgpt_core::tokens::approx_prompt_tokens(&request);
    let completion = lbgpt_core::tokens::approx_text_tokens(content);
    assert_eq!(body["usage"]["prompt_tokens"], prompt);
    assert_eq!(body["usage"]["completion_tokens"], completion);
    assert_eq!(body["usage"]["total_tokens"], prompt + completion);

    // The same request gets the same answer; another one a different answer.
    let again = json_body(
        post_openai(&client, &sim, "sk-sim-a", &request)
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(again["choices"][0]["message"]["content"], content);
    assert_eq!(again["id"], body["id"]);
    let other = json_body(
        post_openai(&client, &sim, "sk-sim-a", &chat("What is 3+3?"))
            .await
            .expect("sent"),
    )
    .await;
    assert_ne!(other["choices"][0]["message"]["content"], content);

    let stats = sim.key_stats("sk-sim-a").expect("known key");
    assert_eq!((stats.requests, stats.succeeded), (3, 3));
    assert_eq!(
        stats.prompt_tokens,
        2 * prompt + lbgpt_core::tokens::approx_prompt_tokens(&chat("What is 3+3?"))
    );
    assert!(stats.completion_tokens >= 3 * completion - 2);
    assert_eq!(sim.stats().status(200), 3);
}

#[tokio::test]
async fn n_choices_and_a_small_budget_cut_the_answer() {
    let sim = sim().await;
    let client = client();
    let request = chat("Tell me a long story about a lighthouse keeper.")
        .max_tokens(5)
        .n(3);
    let body = json_body(
        post_openai(&client, &sim, "sk-sim-a", &request)
            .await
            .expect("sent"),
    )
    .await;
    let choices = body["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 3);
    let expected = expected_answer(&request);
    assert_eq!(expected.len(), 20, "5 tokens are 20 bytes of ASCII");
    for (index, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], index);
        assert_eq!(choice["message"]["content"], expected.as_str());
        assert_eq!(choice["finish_reason"], "length");
    }
    assert_eq!(body["usage"]["completion_tokens"], 15);
}

#[tokio::test]
async fn unknown_fields_are_accepted_and_logged() {
    let sim = sim().await;
    let client = client();
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}], "vendor": 1}],
        "reasoning_effort": "low",
        "some_future_field": {"nested": [1, 2, 3]},
    });
    let response = post_openai(&client, &sim, "sk-sim-a", &body)
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let seen = sim.seen_requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, body);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].key_id.as_deref(), Some("sk-sim-a"));
    assert_eq!(seen[0].header("authorization"), Some(REDACTED));
}

#[tokio::test]
async fn azure_path_checks_api_version_and_accepts_both_headers() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("azure-key-1").name("azure"))
            .azure_deployment("gpt4o-prod", "gpt-4o")
            .azure_api_versions(["2024-10-21"]),
    )
    .await
    .expect("simulator starts");
    let client = client();
    let request = chat("Bonjour");

    let ok = post_azure(
        &client,
        &sim,
        "gpt4o-prod",
        Some("2024-10-21"),
        "azure-key-1",
        &request,
    )
    .await
    .expect("sent");
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "apim-request-id"), header(&ok, "x-request-id"));
    let body = json_body(ok).await;
    assert_eq!(body["model"], "gpt-4o", "the deployment's model is echoed");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        expected_answer(&request)
    );

    let missing = post_azure(&client, &sim, "gpt4o-prod", None, "azure-key-1", &request)
        .await
        .expect("sent");
    assert_eq!(missing.status(), 400);
    let error = json_body(missing).await;
    assert_eq!(error["error"]["param"], "api-version");

    let wrong = post_azure(
        &client,
        &sim,
        "gpt4o-prod",
        Some("1999-01-01"),
        "azure-key-1",
        &request,
    )
    .await
    .expect("sent");
    assert_eq!(wrong.status(), 400);

    let unknown = post_azure(
        &client,
        &sim,
        "other",
        Some("2024-10-21"),
        "azure-key-1",
        &request,
    )
    .await
    .expect("sent");
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        json_body(unknown).await["error"]["code"],
        "DeploymentNotFound"
    );

    let bearer = client
        .post(format!(
            "{}/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
            sim.endpoint()
        ))
        .bearer_auth("azure-key-1")
        .body(serde_json::to_vec(&request).expect("serialises"))
        .send()
        .await
        .expect("sent");
    assert_eq!(bearer.status(), 200);

    let seen = sim.seen_requests();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].query_param("api-version"), Some("2024-10-21"));
    assert_eq!(seen[0].header("api-key"), Some(REDACTED));
    assert_eq!(seen[0].key_id.as_deref(), Some("azure"));
    assert_eq!(sim.key_stats("azure").expect("by id").succeeded, 2);
    assert_eq!(sim.key_stats("azure-key-1").expect("by key").succeeded, 2);
}

#[tokio::test]
async fn azure_without_declared_deployments_echoes_the_deployment_and_fills_the_model() {
    let sim = sim().await;
    let client = client();
    let body = json!({"messages": [{"role": "user", "content": "no model field"}]});
    let response = post_azure(
        &client,
        &sim,
        "my-deployment",
        Some("2024-10-21"),
        "sk-sim-a",
        &body,
    )
    .await
    .expect("sent");
    assert_eq!(response.status(), 200);
    let answer = json_body(response).await;
    assert_eq!(answer["model"], "my-deployment");
    let as_if = ChatRequest::new("my-deployment", vec![ChatMessage::user("no model field")]);
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        expected_answer(&as_if)
    );
}

#[tokio::test]
async fn unknown_or_missing_keys_get_401_without_echo() {
    let sim = sim().await;
    let client = client();
    let secret = "sk-not-a-real-key-0123456789";
    let response = post_openai(&client, &sim, secret, &chat("hi"))
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
    let text = response.text().await.expect("body");
    assert!(!text.contains(secret), "401 body echoes the key: {text}");
    let error: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(error["error"]["code"], "invalid_api_key");

    let missing = client
        .post(format!("{}/chat/completions", sim.base_url()))
        .body(serde_json::to_vec(&chat("hi")).expect("serialises"))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 401);

    // An OpenAI path does not take Azure's header.
    let azure_header = client
        .post(format!("{}/chat/completions", sim.base_url()))
        .header("api-key", "sk-sim-a")
        .body(serde_json::to_vec(&chat("hi")).expect("serialises"))
        .send()
        .await
        .expect("sent");
    assert_eq!(azure_header.status(), 401);

    let seen = sim.seen_requests();
    assert!(seen.iter().all(|r| r.key_id.is_none()));
    assert!(
        !format!("{seen:?}").contains(secret),
        "the log holds the key"
    );
    let stats = sim.stats();
    assert_eq!(stats.status(401), 3);
    assert_eq!(stats.keys["sk-sim-a"].requests, 0);
}

#[tokio::test]
async fn invalid_requests_get_400_naming_the_field() {
    let sim = sim().await;
    let client = client();
    let cases = [
        (json!({"model": "m", "messages": [], }), Some("messages")),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": true}),
            Some("stream"),
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}),
            Some("n"),
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 7}),
            Some("temperature"),
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            None,
        ),
        (json!(["not", "an", "object"]), None),
    ];
    for (body, param) in cases {
        let response = post_openai(&client, &sim, "sk-sim-a", &body)
            .await
            .expect("sent");
        assert_eq!(response.status(), 400, "for {body}");
        let error = json_body(response).await;
        assert_eq!(error["error"]["type"], "invalid_request_error");
        if let Some(param) = param {
            assert_eq!(error["error"]["param"], param, "for {body}");
        }
    }
    let stats = sim.key_stats("sk-sim-a").expect("known");
    assert_eq!((stats.requests, stats.succeeded), (6, 0));
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused_and_health_answers() {
    let sim = sim().await;
    let client = client();
    let not_found = client
        .post(format!("{}/v1/moderations", sim.endpoint()))
        .bearer_auth("sk-sim-a")
        .send()
        .await
        .expect("sent");
    assert_eq!(not_found.status(), 404);
    let wrong_method = client
        .get(format!("{}/chat/completions", sim.base_url()))
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong_method.status(), 405);
    let health = client
        .get(format!("{}/health", sim.endpoint()))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn keep_alive_connections_are_reused_and_shutdown_closes_the_port() {
    let sim = sim().await;
    let client = client();
    for i in 0..20 {
        let response = post_openai(&client, &sim, "sk-sim-a", &chat(&format!("{i}")))
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
    }
    let stats = sim.stats();
    assert_eq!(stats.keys["sk-sim-a"].succeeded, 20);
    assert_eq!(stats.connections, 1, "keep-alive reuses one connection");
    let addr = sim.addr();
    sim.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "port still open"
    );
}

#[tokio::test]
async fn the_request_log_keeps_the_most_recent_and_can_be_off() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a"))
            .seen_capacity(2),
    )
    .await
    .expect("starts");
    let client = client();
    for text in ["one", "two", "three"] {
        post_openai(&client, &sim, "sk-sim-a", &chat(text))
            .await
            .expect("sent");
    }
    let seen = sim.seen_requests();
    let texts: Vec<&str> = seen
        .iter()
        .map(|r| r.body["messages"][0]["content"].as_str().expect("text"))
        .collect();
    assert_eq!(texts, ["two", "three"], "oldest dropped, most recent last");

    let off = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-sim-a"))
            .seen_capacity(0),
    )
    .await
    .expect("starts");
    post_openai(&client, &off, "sk-sim-a", &chat("x"))
        .await
        .expect("sent");
    assert!(off.seen_requests().is_empty());
    assert_eq!(off.stats().requests, 1);
}
