//! Credentials and queries in a base URL never reach `Debug` output or configuration errors.

use lbgpt_openai::{OpenAiConfig, OpenAiService};

const SECRET_URL: &str = "https://user:pw-s3cret@gateway.example/v1?key=q-s3cret";

#[test]
fn debug_output_hides_the_base_urls_credentials_and_query() {
    let config = OpenAiConfig::new().api_key("sk-x").base_url(SECRET_URL);
    let shown = format!("{config:?}");
    assert!(shown.contains("gateway.example"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    let service = OpenAiService::new(config).expect("builds");
    let shown = format!("{service:?}");
    assert!(shown.contains("gateway.example"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn an_invalid_base_url_is_named_without_its_secrets() {
    let error = OpenAiService::new(
        OpenAiConfig::new()
            .api_key("sk-x")
            .base_url("ftp://user:pw-s3cret@gateway.example/v1"),
    )
    .expect_err("not http");
    let shown = error.to_string();
    assert!(shown.contains("gateway.example"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}
