//! Review of the embeddings and legacy-completions paths of the ready-made clients, against
//! the simulator on loopback: taking a provider out of every endpoint's balancer.

use lbgpt::openai::OpenAiConfig;
use lbgpt::{BalancedGpt, CompletionRequest, EmbeddingRequest, Provider};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};

fn texts(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix} {i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_can_be_taken_out_of_every_endpoint_while_the_client_runs() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-a"))
            .key(KeyConfig::new("sk-b")),
    )
    .await
    .expect("simulator starts");
    let provider = |name: &str, key: &str| {
        Provider::openai(
            OpenAiConfig::new()
                .api_key(key)
                .base_url(sim.base_url())
                .name(name)
                .no_proxy(),
        )
    };
    let gpt = BalancedGpt::builder()
        .provider(provider("a", "sk-a"))
        .provider(provider("b", "sk-b"))
        .strategy("round_robin".parse().expect("a strategy"))
        .build()
        .expect("builds");
    // Key rotation: "a" goes out of service on every endpoint, not only chat.
    gpt.handle().disable("a").expect("chat member");
    gpt.embedding_handle()
        .expect("OpenAI serves embeddings")
        .disable("a")
        .expect("embeddings member");
    gpt.completion_handle()
        .expect("OpenAI serves completions")
        .disable("a")
        .expect("completions member");

    let embeddings = gpt
        .embedding_list(
            (0..4).map(|i| {
                EmbeddingRequest::new("text-embedding-3-small", vec![format!("text {i}")])
            }),
        )
        .await;
    let completion = gpt
        .completion(CompletionRequest::new(
            "gpt-3.5-turbo-instruct",
            texts("prompt", 4),
        ))
        .await
        .expect("completes");
    for answer in embeddings {
        assert_eq!(answer.expect("embeds").meta.member.as_deref(), Some("b"));
    }
    assert_eq!(completion.choices.len(), 4);
    assert_eq!(sim.stats().keys["sk-b"].requests, 8);
    assert_eq!(
        sim.stats().keys.get("sk-a").map_or(0, |key| key.requests),
        0,
        "the disabled provider got nothing"
    );
}
