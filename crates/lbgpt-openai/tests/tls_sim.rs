//! OpenAiService over HTTPS: the simulator with TLS serves a self-signed certificate, which a
//! client trusts only when given it with `root_certificate_pem`.

use lbgpt_core::{ChatMessage, ChatRequest, Error};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_sim::{expected_answer, KeyConfig, SimConfig, Simulator};
use tower::ServiceExt;

const KEY: &str = "sk-tls";

fn request() -> ChatRequest {
    ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("over TLS")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_certificate_serves_https_and_an_unknown_one_is_refused() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new(KEY)).tls(true))
        .await
        .expect("simulator starts");
    assert!(
        sim.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        sim.base_url()
    );
    let pem = sim.ca_certificate_pem().expect("a certificate").to_owned();

    let trusting = OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(sim.base_url())
            .no_proxy()
            .root_certificate_pem(pem),
    )
    .expect("builds");
    let answer = trusting
        .oneshot(request())
        .await
        .expect("answered over TLS");
    assert_eq!(answer.first_text(), Some(expected_answer(&request())));

    // The web roots alone do not know the simulator's certificate: no request gets through.
    let default = OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(sim.base_url())
            .no_proxy(),
    )
    .expect("builds");
    let error = default.oneshot(request()).await.expect_err("untrusted");
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(
        sim.stats().requests,
        1,
        "only the trusting client's request arrived"
    );
}

#[test]
fn text_that_is_not_a_pem_certificate_is_a_config_error() {
    let error = OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .root_certificate_pem("not a certificate"),
    )
    .expect_err("refused");
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    assert!(
        error.to_string().contains("root certificate 1 of 1"),
        "{error}"
    );
}
