//! `AzureGpt` against the simulator's Azure OpenAI paths.

mod common;

use common::{assert_answers, fault_mix, request};
use futures::StreamExt;
use lbgpt::{AzureGpt, ChatMessage, ChatRequest, Error};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::time::Duration;

const KEY: &str = "azure-sim-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_gpt_runs_a_faulty_batch_through_the_deployment_path() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(KEY).random_faults(0.2, fault_mix()))
            .azure_deployment("mini-prod", "gpt-4o-mini")
            .seed(5),
    )
    .await
    .expect("simulator starts");
    let gpt = AzureGpt::builder(sim.endpoint())
        .api_key(KEY)
        .api_version("2024-10-21")
        .deployment("gpt-4o-mini", "mini-prod")
        .name("azure-sim")
        .max_concurrent_requests(8)
        .max_attempts(30)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(10))
        .build()
        .expect("client builds");
    let requests: Vec<ChatRequest> = (0..300).map(request).collect();

    let results: Vec<_> = gpt
        .chat_completion_ordered(requests.clone())
        .collect()
        .await;

    assert_eq!(results.len(), 300);
    for (request, result) in requests.iter().zip(&results) {
        let answer = result.as_ref().expect("succeeds");
        assert_answers(request, answer);
        assert_eq!(answer.meta.member.as_deref(), Some("azure-sim"));
    }
    let stats = sim.key_stats(KEY).expect("key");
    assert_eq!(stats.succeeded, 300);
    assert!(stats.faults_injected > 0);

    let seen = sim.seen_requests();
    let last = seen.last().expect("requests were seen");
    assert_eq!(last.path, "/openai/deployments/mini-prod/chat/completions");
    assert_eq!(last.query_param("api-version"), Some("2024-10-21"));
    assert_eq!(last.header("api-key"), Some(lbgpt_sim::REDACTED));
}

#[tokio::test]
async fn an_unmapped_model_fails_alone_without_a_call() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new(KEY)))
        .await
        .expect("simulator starts");
    let gpt =
        AzureGpt::new(sim.endpoint(), KEY, [("gpt-4o-mini", "mini-prod")]).expect("client builds");
    let mut requests: Vec<ChatRequest> = (0..10).map(request).collect();
    requests[4] = ChatRequest::new("gpt-5-unmapped", vec![ChatMessage::user("hi")]);

    let results = gpt.chat_completion_list(requests.clone()).await;

    for (i, (request, result)) in requests.iter().zip(&results).enumerate() {
        if i == 4 {
            match result {
                Err(Error::ModelNotServed { model, .. }) => assert_eq!(model, "gpt-5-unmapped"),
                other => panic!("the unmapped model should be refused, got {other:?}"),
            }
        } else {
            assert_answers(request, result.as_ref().expect("succeeds"));
        }
    }
    assert_eq!(
        sim.key_stats(KEY).expect("key").requests,
        9,
        "no call for it"
    );
}
