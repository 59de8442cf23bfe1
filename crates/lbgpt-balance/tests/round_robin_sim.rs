//! RoundRobin over real OpenAI services, alone and under the retry layer, against the simulator.

mod common;

use common::{fast_policy, openai, request, requests_seen, simulator};
use lbgpt_balance::retry::RetryLayer;
use lbgpt_balance::{MemberService, RoundRobin};
use lbgpt_core::Error;
use lbgpt_sim::{expected_answer, Fault, Simulator};
use tower::{Service, ServiceBuilder, ServiceExt};

const KEY_A: &str = "sk-sim-member-a";
const KEY_B: &str = "sk-sim-member-b";

fn members(sim: &Simulator) -> RoundRobin {
    let a: MemberService = MemberService::new(openai(sim, KEY_A, "openai-a"));
    let b: MemberService = MemberService::new(openai(sim, KEY_B, "openai-b"));
    RoundRobin::new(vec![("a", a), ("b", b)]).expect("two distinct members")
}

#[tokio::test]
async fn calls_alternate_between_members() {
    let sim = simulator(&[KEY_A, KEY_B]).await;
    let mut balancer = members(&sim);

    let mut served_by = Vec::new();
    for i in 0..6 {
        let req = request(&format!("turn {i}"));
        let response = balancer
            .ready()
            .await
            .expect("members are ready")
            .call(req.clone())
            .await
            .expect("the simulator answers");
        assert_eq!(response.first_text(), Some(expected_answer(&req)));
        served_by.push(response.meta.member.as_deref().map(str::to_owned));
    }

    let expected: Vec<Option<String>> = ["a", "b", "a", "b", "a", "b"]
        .iter()
        .map(|name| Some((*name).to_owned()))
        .collect();
    assert_eq!(served_by, expected);
    assert_eq!(requests_seen(&sim, KEY_A), 3);
    assert_eq!(requests_seen(&sim, KEY_B), 3);
    let keys: Vec<String> = sim
        .seen_requests()
        .into_iter()
        .filter_map(|seen| seen.key_id)
        .collect();
    assert_eq!(keys.len(), 6);
    assert!(keys.iter().any(|key| key == KEY_A), "{keys:?}");
    assert!(keys.iter().any(|key| key == KEY_B), "{keys:?}");
}

#[tokio::test]
async fn clones_share_the_rotation() {
    let sim = simulator(&[KEY_A, KEY_B]).await;
    let balancer = members(&sim);

    let answers = futures::future::join_all(
        (0..10).map(|i| balancer.clone().oneshot(request(&format!("shared {i}")))),
    )
    .await;

    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(requests_seen(&sim, KEY_A), 5);
    assert_eq!(requests_seen(&sim, KEY_B), 5);
}

#[tokio::test]
async fn a_retry_lands_on_the_other_member() {
    let sim = simulator(&[KEY_A, KEY_B]).await;
    sim.script(KEY_A, [Fault::ServerError]);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(fast_policy()))
        .service(members(&sim));

    let req = request("fail over");
    let response = service
        .oneshot(req.clone())
        .await
        .expect("b answers the retry");

    assert_eq!(response.meta.member.as_deref(), Some("b"));
    assert_eq!(response.meta.attempts, 2);
    assert_eq!(response.first_text(), Some(expected_answer(&req)));
    assert_eq!(requests_seen(&sim, KEY_A), 1);
    assert_eq!(requests_seen(&sim, KEY_B), 1);
}

#[test]
fn an_empty_member_list_is_a_config_error() {
    let result = RoundRobin::new(Vec::<(&str, MemberService)>::new());
    match result {
        Err(Error::Config(message)) => assert!(message.contains("at least one member")),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn duplicate_or_empty_member_names_are_config_errors() {
    let sim = simulator(&[KEY_A]).await;
    let one = || MemberService::new(openai(&sim, KEY_A, "openai-a"));

    let duplicate = RoundRobin::new(vec![("same", one()), ("same", one())]);
    assert!(matches!(duplicate, Err(Error::Config(ref m)) if m.contains("\"same\"")));

    let empty = RoundRobin::new(vec![(" ", one())]);
    assert!(matches!(empty, Err(Error::Config(ref m)) if m.contains("empty")));
}
