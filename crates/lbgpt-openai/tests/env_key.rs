//! The API key defaults to `OPENAI_API_KEY`. Alone in its own test binary: it changes the
//! process environment, which no other test may read at the same time.

use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_openai::{OpenAiConfig, OpenAiService, OPENAI_API_KEY_ENV};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use tower::ServiceExt;

#[test]
fn the_key_comes_from_the_environment_unless_set_or_cleared() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    std::env::set_var(OPENAI_API_KEY_ENV, "  sk-from-env-secret\n");
    let from_env = OpenAiConfig::new();
    std::env::set_var(OPENAI_API_KEY_ENV, "   ");
    let blank_env = OpenAiConfig::new();
    std::env::remove_var(OPENAI_API_KEY_ENV);
    let no_env = OpenAiConfig::new();

    assert!(from_env.has_api_key());
    assert!(!format!("{from_env:?}").contains("sk-from-env-secret"));
    assert!(!blank_env.has_api_key(), "a blank variable means no key");
    assert!(!no_env.has_api_key());
    assert!(!from_env.clone().without_api_key().has_api_key());
    assert_eq!(from_env.get_base_url(), "https://api.openai.com/v1");
    assert_eq!(from_env.get_name(), "openai");

    runtime.block_on(async {
        let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-from-env-secret")))
            .await
            .expect("simulator starts");
        // The trimmed environment key authenticates.
        let service =
            OpenAiService::new(from_env.base_url(sim.base_url()).no_proxy()).expect("valid config");
        let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("env")]);
        service
            .oneshot(request)
            .await
            .expect("the env key is accepted");
        assert_eq!(
            sim.key_stats("sk-from-env-secret")
                .expect("stats")
                .succeeded,
            1
        );
    });
}
