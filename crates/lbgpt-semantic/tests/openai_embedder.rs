//! The OpenAI-compatible embedder against a real HTTP server on loopback that answers
//! `POST /v1/embeddings` with the real local model's vectors.

mod common;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use lbgpt_semantic::{dot, Embedder, OpenAiEmbedder, OpenAiEmbedderConfig, SemanticError};
use std::convert::Infallible;
use tokio::net::TcpListener;

const KEY: &str = "sk-embeddings-test-key-42";

async fn answer(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let authorised = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"));
    let path_ok = request.uri().path() == "/v1/embeddings";
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let respond = |status: u16, body: serde_json::Value| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        Ok(response)
    };
    if !authorised {
        return respond(
            401,
            serde_json::json!({"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}),
        );
    }
    if !path_ok {
        return respond(404, serde_json::json!({"error": {"message": "not found"}}));
    }
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let texts: Vec<String> = parsed["input"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let embedder = common::embedder();
    let vectors = tokio::task::spawn_blocking(move || embedder.embed_blocking(&texts))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    // Answer in reverse order with explicit indexes, as servers may.
    let data: Vec<serde_json::Value> = vectors
        .iter()
        .enumerate()
        .rev()
        .map(
            |(index, v)| serde_json::json!({"object": "embedding", "index": index, "embedding": v}),
        )
        .collect();
    respond(
        200,
        serde_json::json!({"object": "list", "data": data, "model": parsed["model"]}),
    )
}

async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn embeds_through_the_endpoint_and_measures_the_dimension() {
    let base = server().await;
    let embedder = OpenAiEmbedder::new(
        OpenAiEmbedderConfig::new("all-minilm")
            .api_key(KEY)
            .base_url(base),
    )
    .await
    .expect("probe succeeds");
    assert_eq!(embedder.dimensions(), 384);
    assert_eq!(embedder.id(), "openai:all-minilm:384");
    let texts = vec![
        "How do I reset my password?".to_owned(),
        "What are the steps to reset my password?".to_owned(),
        "What is the boiling point of water?".to_owned(),
    ];
    let vectors = embedder.embed(&texts).await.expect("embeds");
    assert!(
        dot(&vectors[0], &vectors[1]) > 0.8,
        "order restored from the indexes"
    );
    assert!(dot(&vectors[0], &vectors[2]) < 0.3);
    let local = common::embedder().embed(&texts[..1]).await.expect("embeds");
    assert!(dot(&local[0], &vectors[0]) > 0.999);
}

#[tokio::test]
async fn a_wrong_key_is_an_endpoint_error_that_never_shows_the_key() {
    let base = server().await;
    let error = OpenAiEmbedder::new(
        OpenAiEmbedderConfig::new("all-minilm")
            .api_key("sk-wrong-key-0000")
            .base_url(base),
    )
    .await
    .expect_err("401");
    match &error {
        SemanticError::Endpoint(inner) => assert_eq!(inner.status(), Some(401)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.to_string().contains("Incorrect API key"), "{error}");
    assert!(!format!("{error:?}").contains("sk-wrong-key-0000"));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let error = OpenAiEmbedder::new(
        OpenAiEmbedderConfig::new("m")
            .api_key(KEY)
            .base_url(format!("http://{addr}/v1"))
            .dimensions(8),
    )
    .await
    .expect("no probe with known dimensions")
    .embed(&["x".to_owned()])
    .await
    .expect_err("nothing listens");
    assert!(
        matches!(&error, SemanticError::Endpoint(inner) if inner.class() == "transport_error"),
        "{error:?}"
    );
    let error = OpenAiEmbedder::new(OpenAiEmbedderConfig::new("m").base_url("ftp://x"))
        .await
        .expect_err("bad url");
    assert!(matches!(
        error,
        SemanticError::Config {
            field: "base_url",
            ..
        }
    ));
}
