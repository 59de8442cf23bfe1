//! `BalancedGpt` / `Lbgpt::balanced()`: any mix of providers, against the simulator.

mod common;

use common::{assert_answers, request};
use lbgpt::azure::AzureConfig;
use lbgpt::balance::BreakerConfig;
use lbgpt::openai::{OpenAiConfig, OpenAiService};
use lbgpt::{BalancedGpt, ChatRequest, Lbgpt, MemberState, Provider, Strategy};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::time::Duration;
use tower::ServiceBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mix_of_openai_azure_and_a_custom_stack_survives_a_revoked_key() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-openai"))
            .key(KeyConfig::new("azure-key"))
            .key(KeyConfig::new("sk-custom")),
    )
    .await
    .expect("simulator starts");
    // A stack of the user's own: a layer that pins the temperature, over an OpenAI service.
    let custom = ServiceBuilder::new()
        .map_request(|request: ChatRequest| request.temperature(0.0))
        .service(
            OpenAiService::new(
                OpenAiConfig::new()
                    .api_key("sk-custom")
                    .base_url(sim.base_url())
                    .name("custom")
                    .no_proxy(),
            )
            .expect("service"),
        );
    let gpt = Lbgpt::balanced()
        .provider(
            Provider::openai(
                OpenAiConfig::new()
                    .api_key("sk-openai")
                    .base_url(sim.base_url())
                    .name("openai")
                    .no_proxy(),
            )
            .weight(2.0),
        )
        .provider(
            AzureConfig::new(sim.endpoint())
                .api_key("azure-key")
                .deployment("gpt-4o-mini", "mini")
                .name("azure")
                .no_proxy(),
        )
        .provider(Provider::service("custom", custom))
        .strategy(Strategy::RoundRobin)
        .breaker(BreakerConfig::new(3, Duration::from_secs(30)))
        .max_failovers(2)
        .max_wait(Duration::from_secs(5))
        .max_concurrent_requests(16)
        .max_attempts(3)
        .build()
        .expect("client builds");

    let requests: Vec<ChatRequest> = (0..200).map(request).collect();
    let results = gpt.chat_completion_list(requests[..100].to_vec()).await;
    // The OpenAI key is revoked halfway: it is retired after its first 401 and the rest of the
    // batch goes to the other two, without a single failed request.
    assert!(sim.revoke_key("sk-openai"));
    let more = gpt.chat_completion_list(requests[100..].to_vec()).await;

    let mut per_member = BTreeMap::new();
    for (request, result) in requests.iter().zip(results.into_iter().chain(more)) {
        let answer = result.expect("no request fails");
        assert_answers(request, &answer);
        *per_member
            .entry(answer.meta.member.as_deref().expect("member").to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(per_member.values().sum::<usize>(), 200);
    assert_eq!(per_member.len(), 3, "{per_member:?}");
    // Requests already on their way when the first 401 came back get one too (at most one
    // per request in flight); after that the key gets nothing.
    let unauthorized = sim.key_stats("sk-openai").expect("key").unauthorized;
    assert!((1..=16).contains(&unauthorized), "{unauthorized} 401s");
    let again = gpt.chat_completion_list((200..250).map(request)).await;
    assert!(again.iter().all(Result::is_ok));
    assert_eq!(
        sim.key_stats("sk-openai").expect("key").unauthorized,
        unauthorized,
        "a retired key is not called again"
    );
    let openai = gpt.member_stats("openai").expect("stats");
    assert!(
        matches!(openai.state, MemberState::Dead { .. }),
        "{:?}",
        openai.state
    );
    assert_eq!(openai.succeeded, per_member["openai"] as u64);
    // Round robin with weights 2 : 1 : 1 over the first 100 requests.
    assert!(per_member["openai"] >= 40, "{per_member:?}");
    // The custom stack's layer ran on its requests, and on no other's.
    for seen in sim.seen_requests() {
        let pinned = seen.body.get("temperature") == Some(&serde_json::json!(0.0));
        assert_eq!(
            pinned,
            seen.key_id.as_deref() == Some("sk-custom"),
            "{seen:?}"
        );
    }
}

#[test]
fn the_general_builder_checks_its_providers() {
    let err = BalancedGpt::builder().build().expect_err("no provider");
    assert!(err.to_string().contains("at least one provider"), "{err}");
    let err = BalancedGpt::builder()
        .provider(Provider::openai(OpenAiConfig::new().api_key("k").base_url("nope")).rpm(10))
        .build()
        .expect_err("bad base URL");
    assert!(err.to_string().contains("provider \"openai\""), "{err}");
}
