//! OpenAiService against a minimal OpenAI-compatible HTTP server on loopback that answers
//! canned bytes, for what the simulator does not produce: provider extras in answers (a local
//! server's `timings`), Azure-style and date-style wait headers, `x-should-retry`, success
//! bodies of the wrong shape, a server echoing the key, and an answer cut mid-body.

use lbgpt_core::{ChatMessage, ChatRequest, DecodeKind, Error, TransportKind};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::ServiceExt;

const KEY: &str = "sk-compat-secret-key-424242";

/// Serves each connection the next canned raw response (then closes it), and records the
/// raw request heads it received.
struct CannedServer {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl CannedServer {
    async fn start(responses: Vec<Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        tokio::spawn(async move {
            for response in responses {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let head = read_request(&mut stream).await;
                seen.lock().expect("lock").push(head);
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            }
        });
        CannedServer { addr, heads }
    }

    fn service(&self) -> OpenAiService {
        OpenAiService::new(
            OpenAiConfig::new()
                .api_key(KEY)
                .base_url(format!("http://{}/v1/", self.addr))
                .no_proxy()
                .name("local"),
        )
        .expect("valid config")
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }
}

/// Reads one request (head and `content-length` body) and returns its head.
async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&data, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return head;
            }
        }
    }
    String::from_utf8_lossy(&data).to_string()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    text.into_bytes()
}

fn request() -> ChatRequest {
    ChatRequest::new("local-model", vec![ChatMessage::user("hi")])
}

fn api(err: &Error) -> &lbgpt_core::ApiError {
    match err {
        Error::Api(api) => api,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_answer_fields_survive_into_extra() {
    let body = r#"{
        "id": "chatcmpl-local-1", "object": "chat.completion", "created": 1700000000,
        "model": "local-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hello",
                                 "reasoning_content": "thought"},
                     "stop_reason": 128001}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "timings": {"prompt_ms": 1.5, "predicted_per_second": 42.0},
        "prompt_filter_results": [{"prompt_index": 0}]
    }"#;
    let server = CannedServer::start(vec![response(
        "200 OK",
        &[
            ("content-type", "application/json"),
            ("apim-request-id", "apim-77"),
        ],
        body,
    )])
    .await;
    let answer = server.service().oneshot(request()).await.expect("answer");
    assert_eq!(answer.first_text().as_deref(), Some("hello"));
    assert_eq!(answer.extra["timings"]["predicted_per_second"], 42.0);
    assert_eq!(answer.extra["prompt_filter_results"][0]["prompt_index"], 0);
    assert_eq!(answer.choices[0].extra["stop_reason"], 128001);
    assert_eq!(
        answer.choices[0].message.extra["reasoning_content"],
        "thought"
    );
    assert_eq!(answer.meta.request_id.as_deref(), Some("apim-77"));
    assert_eq!(answer.meta.member.as_deref(), Some("local"));
    assert_eq!(
        answer.meta.rate_limit, None,
        "no headers, no rate-limit info"
    );
    // The base URL's trailing slash did not produce a double slash.
    let heads = server.heads();
    assert!(
        heads[0].starts_with("POST /v1/chat/completions HTTP/1.1"),
        "{}",
        heads[0]
    );
    assert!(heads[0]
        .to_ascii_lowercase()
        .contains(&format!("authorization: bearer {KEY}").to_ascii_lowercase()));
}

#[tokio::test]
async fn azure_and_date_wait_headers_and_should_retry() {
    let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
    let server = CannedServer::start(vec![
        response(
            "429 Too Many Requests",
            &[("x-ms-retry-after-ms", "1250"), ("retry-after", "9")],
            r#"{"error":{"code":"429","message":"Requests to the deployment have exceeded the rate limit."}}"#,
        ),
        response("503 Service Unavailable", &[("retry-after", &in_a_minute)], "{}"),
        response(
            "400 Bad Request",
            &[("x-should-retry", "true"), ("retry-after", "0.5")],
            r#"{"error":{"message":"try again","type":"invalid_request_error","param":"messages","code":null}}"#,
        ),
    ])
    .await;
    let service = server.service();

    let err = service.clone().oneshot(request()).await.expect_err("429");
    assert_eq!(api(&err).retry_after, Some(Duration::from_millis(1250)));
    assert_eq!(api(&err).code.as_deref(), Some("429"));

    let err = service.clone().oneshot(request()).await.expect_err("503");
    let wait = api(&err).retry_after.expect("HTTP-date retry-after");
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );

    let err = service.clone().oneshot(request()).await.expect_err("400");
    let e = api(&err);
    assert_eq!(e.should_retry, Some(true));
    assert_eq!(e.param.as_deref(), Some("messages"));
    assert_eq!(e.kind.as_deref(), Some("invalid_request_error"));
    assert_eq!(e.code, None);
    assert_eq!(e.retry_after, Some(Duration::from_millis(500)));
    assert!(err.is_retryable(), "the server's verdict wins for a 400");
}

#[tokio::test]
async fn a_success_of_the_wrong_shape_is_an_unexpected_shape_error() {
    let server = CannedServer::start(vec![
        response("200 OK", &[], r#"{"choices": {"not": "a list"}}"#),
        response("200 OK", &[], r#"[1, 2, 3]"#),
    ])
    .await;
    let service = server.service();
    for _ in 0..2 {
        let err = service
            .clone()
            .oneshot(request())
            .await
            .expect_err("wrong shape");
        assert!(
            matches!(
                err,
                Error::Decode {
                    kind: DecodeKind::UnexpectedShape,
                    status: 200,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn a_server_echoing_the_key_cannot_leak_it() {
    let echo = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {KEY}. You can find your API key at ...","type":"invalid_request_error","param":"{KEY}","code":"invalid_api_key"}}}}"#
    );
    let server = CannedServer::start(vec![
        response("401 Unauthorized", &[], &echo),
        response(
            "500 Internal Server Error",
            &[],
            &format!("<html>key was {KEY}</html>"),
        ),
        response("200 OK", &[], &format!("{{\"id\": \"{KEY}")),
    ])
    .await;
    let service = server.service();
    for expected in ["401", "500", "decode"] {
        let err = service
            .clone()
            .oneshot(request())
            .await
            .expect_err(expected);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(KEY), "{expected}: {shown}");
        assert!(shown.contains("[REDACTED]"), "{expected}: {shown}");
    }
}

#[tokio::test]
async fn an_answer_cut_mid_body_is_a_body_transport_error() {
    let mut cut =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n"
            .to_vec();
    cut.extend_from_slice(br#"{"id": "chatcmpl-1", "choi"#);
    let server = CannedServer::start(vec![cut]).await;
    let err = server.service().oneshot(request()).await.expect_err("cut");
    match &err {
        Error::Transport { kind, message } => {
            assert_eq!(*kind, TransportKind::Body, "{message}");
            assert!(!message.contains("127.0.0.1"), "{message}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = CannedServer::start(vec![response(
        "301 Moved Permanently",
        &[("location", "https://elsewhere.example/v1/chat/completions")],
        "",
    )])
    .await;
    let err = server
        .service()
        .oneshot(request())
        .await
        .expect_err("redirect");
    let e = api(&err);
    assert_eq!(e.status, 301);
    assert!(e.message.contains("elsewhere.example"), "{}", e.message);
    assert_eq!(server.heads().len(), 1, "exactly one request was made");
}
