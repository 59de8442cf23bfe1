//! Credentials and queries in an Azure endpoint never reach `Debug` output or configuration
//! errors.

use lbgpt_azure::{AzureConfig, AzureService};

#[test]
fn debug_output_hides_the_endpoints_credentials() {
    let config = AzureConfig::new("https://user:pw-s3cret@my-resource.openai.azure.com")
        .api_key("azure-key")
        .deployment("gpt-4o-mini", "chat");
    let shown = format!("{config:?}");
    assert!(shown.contains("my-resource.openai.azure.com"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    let service = AzureService::new(config).expect("builds");
    let shown = format!("{service:?}");
    assert!(shown.contains("my-resource.openai.azure.com"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn an_endpoint_with_a_query_is_refused_without_quoting_it() {
    let error = AzureService::new(
        AzureConfig::new("https://my-resource.openai.azure.com/?sig=q-s3cret")
            .api_key("azure-key")
            .deployment("gpt-4o-mini", "chat"),
    )
    .expect_err("a query");
    let shown = error.to_string();
    assert!(shown.contains("query or fragment"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}
