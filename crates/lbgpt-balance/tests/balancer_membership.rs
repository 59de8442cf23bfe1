//! Members added, removed, disabled and re-enabled while requests run: nothing is lost,
//! nothing misrouted, and statistics tell what happened.

mod balancer_support;

use balancer_support::{
    arrivals, assert_all_answered, builder, member, request, requests, round_robin_a_b, run,
    simulator, simulator_with, unpaced,
};
use lbgpt_balance::usage::UsageTracker;
use lbgpt_balance::{MemberState, Strategy};
use lbgpt_sim::{Fault, KeyConfig};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_and_removing_members_under_load_loses_nothing() {
    let keys = ["sk-1", "sk-2", "sk-3", "sk-4"];
    let sim = simulator_with(
        keys.iter().map(|key| KeyConfig::new(*key)),
        Duration::from_millis(5),
    )
    .await;
    let balancer = builder()
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "m1", "sk-1"))
        .member(member(&sim, "m2", "sk-2"))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    let batch = requests("churn", 1200);
    let running = tokio::spawn(run(balancer, batch.clone(), 16));

    // Rotate keys while the batch runs; at least one member is always enabled.
    let pause = || tokio::time::sleep(Duration::from_millis(15));
    pause().await;
    handle
        .add_member(member(&sim, "m3", "sk-3"))
        .expect("new name");
    pause().await;
    handle.remove_member("m1").expect("known member");
    pause().await;
    handle.disable("m2").expect("known member");
    pause().await;
    handle
        .add_member(member(&sim, "m4", "sk-4"))
        .expect("new name");
    pause().await;
    handle.enable("m2").expect("known member");
    handle.remove_member("m3").expect("known member");
    pause().await;
    assert!(
        !running.is_finished(),
        "the changes happen while the batch runs"
    );
    handle
        .add_member(member(&sim, "m1", "sk-1"))
        .expect("the name is free again");

    let results = running.await.expect("the batch task completes");
    assert_all_answered(&batch, &results);
    // Every request answered exactly once: as many successful calls as requests.
    let stats = sim.stats();
    assert_eq!(stats.requests, 1200);
    assert_eq!(stats.status(200), 1200);
    let served: BTreeSet<&str> = results
        .iter()
        .flatten()
        .filter_map(|r| r.meta.member.as_deref())
        .collect();
    assert_eq!(served, BTreeSet::from(["m1", "m2", "m3", "m4"]));
    assert_eq!(handle.member_names(), ["m2", "m4", "m1"]);
    assert!(handle.stats().iter().all(|s| s.in_flight == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_finishes_its_request_then_leaves_the_tracker() {
    let sim = simulator(&["sk-old", "sk-new"]).await;
    sim.script("sk-old", [Fault::Stall(Duration::from_millis(400))]);
    let usage = unpaced();
    let balancer = builder()
        .usage(usage.clone())
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "old", "sk-old").rpm(100))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    let slow = tokio::spawn(balancer.clone().oneshot(request("slow on old")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle
        .add_member(member(&sim, "new", "sk-new"))
        .expect("new name");
    handle.remove_member("old").expect("known member");
    assert!(handle.member_stats("old").is_none());
    assert!(
        usage.snapshot("old").is_some(),
        "still tracked while in flight"
    );

    // New requests go to the new member only.
    let batch = requests("after removal", 10);
    let results = run(balancer.clone(), batch.clone(), 2).await;
    assert_all_answered(&batch, &results);
    assert_eq!(arrivals(&sim, "sk-old"), 1);

    // The request in flight finishes where it started.
    let response = slow
        .await
        .expect("the task completes")
        .expect("answered by the removed member");
    assert_eq!(response.meta.member.as_deref(), Some("old"));
    assert!(
        usage.snapshot("old").is_none(),
        "unregistered after its last request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_member_gets_nothing_until_enabled() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    let balancer = round_robin_a_b(&sim);
    let handle = balancer.handle();

    handle.disable("a").expect("known member");
    assert_eq!(
        handle.member_stats("a").map(|s| s.state),
        Some(MemberState::Disabled)
    );
    let batch = requests("disabled", 10);
    let results = run(balancer.clone(), batch.clone(), 4).await;
    assert_all_answered(&batch, &results);
    assert_eq!(arrivals(&sim, "sk-a"), 0);

    handle.enable("a").expect("known member");
    let batch = requests("enabled", 10);
    let results = run(balancer, batch.clone(), 1).await;
    assert_all_answered(&batch, &results);
    assert_eq!(arrivals(&sim, "sk-a"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_takes_a_member_added_meanwhile_at_once() {
    let sim = simulator(&["sk-full", "sk-fresh"]).await;
    let balancer = builder()
        .member(member(&sim, "full", "sk-full").rpm(1))
        .max_wait(Duration::from_secs(120))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();
    balancer
        .clone()
        .oneshot(request("fills the minute"))
        .await
        .expect("within the limit");

    let started = Instant::now();
    let waiting = tokio::spawn(balancer.clone().oneshot(request("waits")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "waiting for the full member");
    handle
        .add_member(member(&sim, "fresh", "sk-fresh"))
        .expect("new name");
    let response = waiting
        .await
        .expect("the task completes")
        .expect("answered by the new member");
    assert_eq!(response.meta.member.as_deref(), Some("fresh"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_what_each_member_did() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    sim.script("sk-a", [Fault::ServerError]);
    let balancer = builder()
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "a", "sk-a").rpm(1_000).tpm(100_000))
        .member(member(&sim, "b", "sk-b").weight(2.0))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    let batch = requests("stats", 30);
    let results = run(balancer, batch.clone(), 1).await;
    assert_all_answered(&batch, &results);

    let a = handle.member_stats("a").expect("a member");
    let b = handle.member_stats("b").expect("a member");
    assert_eq!(a.requests, a.succeeded + a.failed);
    assert_eq!(a.failed, 1);
    assert_eq!(a.failovers, 1);
    assert_eq!(b.retries, 1);
    assert_eq!(a.succeeded + b.succeeded, 30);
    assert_eq!(arrivals(&sim, "sk-a"), a.requests);
    assert_eq!(
        a.prompt_tokens + b.prompt_tokens,
        sim.key_stats("sk-a").map_or(0, |s| s.prompt_tokens)
            + sim.key_stats("sk-b").map_or(0, |s| s.prompt_tokens)
    );
    assert!(a.completion_tokens > 0 && b.completion_tokens > 0);
    assert!(a.latency_ewma.is_some());
    assert_eq!(b.weight, 2.0);
    let headroom = a.headroom.expect("tracked");
    assert_eq!(headroom.limits.rpm, Some(1_000));
    assert_eq!(headroom.headroom_requests, Some(1_000 - a.requests));
    assert_eq!(a.state, MemberState::Active);
    assert_eq!(a.in_flight, 0);
}

#[tokio::test]
async fn mistakes_in_the_member_list_are_config_errors_naming_them() {
    let sim = simulator(&["sk-a"]).await;
    let config_error = |result: Result<lbgpt_balance::Balancer, lbgpt_core::Error>| match result {
        Err(lbgpt_core::Error::Config(message)) => message,
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error, got a balancer"),
    };

    let message = config_error(builder().build());
    assert!(message.contains("at least one member"), "{message}");
    let message = config_error(
        builder()
            .member(member(&sim, "same", "sk-a"))
            .member(member(&sim, "same", "sk-a"))
            .build(),
    );
    assert!(
        message.contains("two members are named \"same\""),
        "{message}"
    );
    let message = config_error(builder().member(member(&sim, " ", "sk-a")).build());
    assert!(message.contains("empty"), "{message}");
    let message = config_error(
        builder()
            .member(member(&sim, "w", "sk-a").weight(-1.0))
            .build(),
    );
    assert!(message.contains("\"w\" has weight -1"), "{message}");
    let message = config_error(builder().member(member(&sim, "z", "sk-a").rpm(0)).build());
    assert!(message.contains("\"z\" has rpm = 0"), "{message}");

    let balancer = builder()
        .member(member(&sim, "a", "sk-a"))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();
    assert!(handle.add_member(member(&sim, "a", "sk-a")).is_err());
    assert!(handle.remove_member("nobody").is_err());
    assert!(handle.set_weight("a", f64::NAN).is_err());
    assert_eq!(handle.member_names(), ["a"]);
}
