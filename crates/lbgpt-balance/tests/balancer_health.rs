//! Failover and health against the simulator: dead keys, cooldowns, the circuit breaker,
//! and the errors when nothing is left.

mod balancer_support;

use balancer_support::{
    arrivals, assert_all_answered, builder, member, request, requests, round_robin_a_b, run,
    served_by, simulator,
};
use lbgpt_balance::retry::{RetryLayer, RetryPolicy};
use lbgpt_balance::{BreakerConfig, MemberState, Strategy};
use lbgpt_core::Error;
use lbgpt_sim::{Fault, Simulator};
use std::time::Duration;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};

fn sim_stat(sim: &Simulator, key: &str, pick: fn(&lbgpt_sim::KeyStats) -> u64) -> u64 {
    sim.key_stats(key).as_ref().map_or(0, pick)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_mid_run_is_retired_after_its_first_401() {
    let sim = simulator(&["sk-a", "sk-b", "sk-c"]).await;
    let balancer = builder()
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "a", "sk-a"))
        .member(member(&sim, "b", "sk-b"))
        .member(member(&sim, "c", "sk-c"))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    let first = requests("before revocation", 20);
    let results = run(balancer.clone(), first.clone(), 1).await;
    assert_all_answered(&first, &results);
    assert!(sim.revoke_key("sk-b"));

    let second = requests("after revocation", 40);
    let results = run(balancer, second.clone(), 1).await;
    assert_all_answered(&second, &results);

    assert_eq!(
        sim_stat(&sim, "sk-b", |s| s.unauthorized),
        1,
        "one 401, then retired"
    );
    let b = handle.member_stats("b").expect("still listed");
    assert!(
        matches!(&b.state, MemberState::Dead { reason } if reason.contains("401")),
        "{:?}",
        b.state
    );
    assert_eq!(b.failovers, 1);
    let counts = served_by(&results);
    assert_eq!(
        counts.get("a").copied().unwrap_or(0) + counts.get("c").copied().unwrap_or(0),
        40
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_out_of_quota_is_retired_under_concurrency_and_the_batch_completes() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    let balancer = builder()
        .strategy(Strategy::LeastBusy)
        .member(member(&sim, "a", "sk-a"))
        .member(member(&sim, "b", "sk-b"))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();
    assert!(sim.set_quota_exhausted("sk-a", true));

    let batch = requests("quota", 200);
    let results = run(balancer, batch.clone(), 8).await;
    assert_all_answered(&batch, &results);
    // At most the requests already in flight when the first answer came back saw it.
    let refused = sim_stat(&sim, "sk-a", |s| s.insufficient_quota);
    assert!((1..=8).contains(&refused), "{refused}");
    assert!(matches!(
        handle.member_stats("a").map(|s| s.state),
        Some(MemberState::Dead { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_answering_503_with_retry_after_is_avoided_for_that_long() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    sim.script(
        "sk-a",
        [Fault::Unavailable {
            retry_after: Some(Duration::from_millis(600)),
        }],
    );
    let balancer = round_robin_a_b(&sim);
    let handle = balancer.handle();

    // The first request goes to a, gets the 503 and moves on to b at once.
    let failed_at = Instant::now();
    let response = balancer
        .clone()
        .oneshot(request("first"))
        .await
        .expect("answered by b");
    assert_eq!(response.meta.member.as_deref(), Some("b"));
    assert_eq!(response.meta.attempts, 2);
    match handle.member_stats("a").map(|s| s.state) {
        Some(MemberState::CoolingDown { until }) => {
            let cooldown = until - failed_at;
            assert!(
                cooldown > Duration::from_millis(500) && cooldown <= Duration::from_millis(700),
                "{cooldown:?}"
            );
        }
        other => panic!("a should be cooling down: {other:?}"),
    }

    // While a cools down, everything goes to b.
    let during = requests("during cooldown", 10);
    let results = run(balancer.clone(), during.clone(), 1).await;
    assert_all_answered(&during, &results);
    assert_eq!(served_by(&results).get("b"), Some(&10));
    assert_eq!(arrivals(&sim, "sk-a"), 1);

    // Afterwards a is back in the rotation.
    tokio::time::sleep_until(failed_at + Duration::from_millis(650)).await;
    let after = requests("after cooldown", 4);
    let results = run(balancer, after.clone(), 1).await;
    assert_all_answered(&after, &results);
    assert_eq!(served_by(&results).get("a"), Some(&2));
    assert_eq!(
        handle.member_stats("a").map(|s| s.state),
        Some(MemberState::Active)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_members_dead_gives_the_clear_error_at_once() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    sim.revoke_key("sk-a");
    sim.revoke_key("sk-b");
    let balancer = builder()
        .member(member(&sim, "a", "sk-a"))
        .member(member(&sim, "b", "sk-b"))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::default()
                .max_attempts(10)
                .deadline(Duration::from_secs(20)),
        ))
        .service(balancer);

    // The first request finds both keys revoked: each is tried once and retired.
    let started = Instant::now();
    let error = service
        .clone()
        .oneshot(request("first"))
        .await
        .expect_err("no key works");
    assert_eq!(error.status(), Some(401), "{error}");
    assert_eq!(sim.stats().status(401), 2);

    // Later requests fail at once, without a call, saying every member is dead.
    let error = service
        .oneshot(request("second"))
        .await
        .expect_err("no key works");
    match &error {
        Error::NoMemberAvailable {
            reason,
            retry_after: None,
        } => {
            assert!(reason.starts_with("all 2 members are dead"), "{reason}");
            assert!(
                reason.contains("a is dead (HTTP 401 invalid_api_key)"),
                "{reason}"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(sim.stats().status(401), 2, "no further calls");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "well within the deadline"
    );
    assert!(handle
        .stats()
        .iter()
        .all(|s| matches!(s.state, MemberState::Dead { .. })));

    // A fixed key comes back with enable().
    sim.restore_key("sk-a");
    handle.enable("a").expect("a known member");
    let retry = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::default().max_attempts(2)))
        .service(handle_balancer(&handle));
    let response = retry
        .oneshot(request("third"))
        .await
        .expect("a works again");
    assert_eq!(response.meta.member.as_deref(), Some("a"));
}

/// The balancer behind a handle, as a service (handles and balancers share their state).
fn handle_balancer(handle: &lbgpt_balance::BalancerHandle) -> lbgpt_balance::Balancer {
    handle.balancer()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_after_repeated_failures_and_a_probe_closes_it() {
    let sim = simulator(&["sk-flaky"]).await;
    sim.script(
        "sk-flaky",
        [Fault::ServerError, Fault::ServerError, Fault::ServerError],
    );
    let balancer = builder()
        .member(member(&sim, "flaky", "sk-flaky"))
        .breaker(BreakerConfig::new(3, Duration::from_millis(400)))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    for i in 0..3 {
        let error = balancer
            .clone()
            .oneshot(request(&format!("fail {i}")))
            .await
            .expect_err("scripted 500");
        assert_eq!(error.status(), Some(500));
    }
    let opened_at = Instant::now();
    assert!(matches!(
        handle.member_stats("flaky").map(|s| s.state),
        Some(MemberState::BreakerOpen { .. })
    ));

    // While open: no call; told never to wait, a clear error with the wait.
    let error = balancer
        .clone()
        .oneshot(request("while open"))
        .await
        .expect_err("breaker open");
    assert!(
        error.to_string().contains("circuit breaker open"),
        "{error}"
    );
    let wait = error.retry_after().expect("says when");
    assert!(wait <= Duration::from_millis(400), "{wait:?}");
    assert_eq!(arrivals(&sim, "sk-flaky"), 3);

    // After open_for, one probe goes through; its success closes the breaker.
    tokio::time::sleep_until(opened_at + Duration::from_millis(450)).await;
    assert_eq!(
        handle.member_stats("flaky").map(|s| s.state),
        Some(MemberState::HalfOpen)
    );
    balancer
        .clone()
        .oneshot(request("probe"))
        .await
        .expect("the probe succeeds");
    assert_eq!(
        handle.member_stats("flaky").map(|s| s.state),
        Some(MemberState::Active)
    );

    // A failed probe opens it again.
    sim.script("sk-flaky", std::iter::repeat_n(Fault::ServerError, 4));
    for i in 0..3 {
        let _ = balancer
            .clone()
            .oneshot(request(&format!("again {i}")))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(450)).await;
    let error = balancer
        .clone()
        .oneshot(request("failed probe"))
        .await
        .expect_err("scripted 500");
    assert_eq!(error.status(), Some(500));
    assert!(matches!(
        handle.member_stats("flaky").map(|s| s.state),
        Some(MemberState::BreakerOpen { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_sends_the_traffic_elsewhere_without_failures() {
    let sim = simulator(&["sk-bad", "sk-good"]).await;
    sim.script("sk-bad", std::iter::repeat_n(Fault::ServerError, 3));
    let balancer = builder()
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "bad", "sk-bad"))
        .member(member(&sim, "good", "sk-good"))
        .breaker(BreakerConfig::new(3, Duration::from_secs(30)))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    let batch = requests("breaker failover", 40);
    let results = run(balancer, batch.clone(), 1).await;
    assert_all_answered(&batch, &results);
    assert_eq!(arrivals(&sim, "sk-bad"), 3);
    let bad = handle.member_stats("bad").expect("a member");
    assert!(matches!(bad.state, MemberState::BreakerOpen { .. }));
    assert_eq!((bad.failed, bad.failovers), (3, 3));
    let good = handle.member_stats("good").expect("a member");
    assert_eq!(good.succeeded, 40);
    assert_eq!(good.retries, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_returned_at_once_not_failed_over() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    sim.script("sk-a", [Fault::Status(400)]);
    let balancer = round_robin_a_b(&sim);

    let error = balancer
        .clone()
        .oneshot(request("bad"))
        .await
        .expect_err("scripted 400");
    assert_eq!(error.status(), Some(400));
    assert_eq!(arrivals(&sim, "sk-b"), 0);
    assert_eq!(
        balancer.handle().member_stats("a").map(|s| s.state),
        Some(MemberState::Active)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_no_other_member_goes_to_the_retry_layer_which_waits_it_out() {
    let sim = simulator(&["sk-only"]).await;
    sim.script(
        "sk-only",
        [Fault::RateLimited {
            retry_after: Duration::from_millis(300),
        }],
    );
    let balancer = builder()
        .member(member(&sim, "only", "sk-only"))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    // Alone and told never to wait, the balancer gives back the 429, then says the member
    // is cooling down.
    let error = balancer
        .clone()
        .oneshot(request("limited"))
        .await
        .expect_err("scripted 429");
    assert_eq!(error.status(), Some(429));
    let error = balancer
        .clone()
        .oneshot(request("cooling"))
        .await
        .expect_err("cooling down");
    assert!(
        error.to_string().contains("only is cooling down"),
        "{error}"
    );
    assert!(error
        .retry_after()
        .is_some_and(|w| w <= Duration::from_millis(300)));
    assert_eq!(
        handle.member_stats("only").map(|s| s.rate_limited_seen),
        Some(1)
    );

    // Under a retry layer the caller just gets the answer.
    sim.script(
        "sk-only",
        [Fault::RateLimited {
            retry_after: Duration::from_millis(300),
        }],
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::default().max_attempts(5)))
        .service(balancer);
    let started = Instant::now();
    service
        .oneshot(request("retried"))
        .await
        .expect("answered after the wait");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_a_cooling_member_within_max_wait_instead_of_failing() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    let cooldown = Duration::from_millis(300);
    for key in ["sk-a", "sk-b"] {
        sim.script(
            key,
            [Fault::RateLimited {
                retry_after: cooldown,
            }],
        );
    }
    let balancer = round_robin_a_b(&sim);
    let handle = balancer.handle();

    // The first request meets both 429s: the error of its last attempt comes back.
    let error = balancer
        .clone()
        .oneshot(request("both limited"))
        .await
        .expect_err("both members answer 429");
    assert_eq!(error.status(), Some(429));
    let cooled_at = Instant::now();

    // Both members are cooling down: the next requests wait for them (no retry layer
    // above), none fails, and none reaches a member before its cooldown ends.
    let answers = futures::future::join_all(
        (0..4).map(|i| balancer.clone().oneshot(request(&format!("after {i}")))),
    )
    .await;
    for answer in &answers {
        let response = answer.as_ref().expect("answered once a member is back");
        assert_eq!(response.meta.attempts, 1, "waiting is no attempt");
    }
    assert!(
        cooled_at.elapsed() >= cooldown - Duration::from_millis(50),
        "answered after {:?}",
        cooled_at.elapsed()
    );
    assert_eq!(arrivals(&sim, "sk-a") + arrivals(&sim, "sk-b"), 6);
    for name in ["a", "b"] {
        assert_eq!(
            handle.member_stats(name).map(|s| s.rate_limited_seen),
            Some(1),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_member_lets_exactly_one_probe_through() {
    let sim = simulator(&["sk-probe"]).await;
    sim.script(
        "sk-probe",
        [Fault::ServerError, Fault::Stall(Duration::from_millis(300))],
    );
    let balancer = builder()
        .member(member(&sim, "probe", "sk-probe"))
        .breaker(BreakerConfig::new(1, Duration::from_millis(200)))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");
    balancer
        .clone()
        .oneshot(request("opens"))
        .await
        .expect_err("scripted 500");
    tokio::time::sleep(Duration::from_millis(250)).await;

    let probe = tokio::spawn(balancer.clone().oneshot(request("probe")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let others = futures::future::join_all(
        (0..4).map(|i| balancer.clone().oneshot(request(&format!("meanwhile {i}")))),
    )
    .await;
    for error in others
        .iter()
        .map(|r| r.as_ref().expect_err("the probe is running"))
    {
        assert!(error.to_string().contains("probe in flight"), "{error}");
        assert!(error.is_retryable(), "told to look again: {error}");
    }
    probe
        .await
        .expect("the task completes")
        .expect("the probe succeeds after its stall");
    assert_eq!(arrivals(&sim, "sk-probe"), 2);
    assert_eq!(
        balancer.handle().member_stats("probe").map(|s| s.state),
        Some(MemberState::Active)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_out_an_open_breaker_and_its_probe_then_all_succeed() {
    let sim = simulator(&["sk-probe"]).await;
    let stall = Duration::from_millis(100);
    sim.script("sk-probe", [Fault::ServerError, Fault::Stall(stall)]);
    let open_for = Duration::from_millis(200);
    let balancer = builder()
        .member(member(&sim, "probe", "sk-probe"))
        .breaker(BreakerConfig::new(1, open_for))
        .build()
        .expect("a valid balancer");
    balancer
        .clone()
        .oneshot(request("opens"))
        .await
        .expect_err("scripted 500");
    let opened_at = Instant::now();

    // Sent while the breaker is open: the first to find it half-open is the probe (stalled
    // for 100 ms); the others wait for its success and are then served.
    let answers = futures::future::join_all(
        (0..5).map(|i| balancer.clone().oneshot(request(&format!("waiting {i}")))),
    )
    .await;
    for answer in &answers {
        answer.as_ref().expect("served after the breaker closed");
    }
    let elapsed = opened_at.elapsed();
    assert!(elapsed >= open_for + stall, "{elapsed:?}");
    // The probe's success wakes the others at once, not at their next look (500 ms after
    // the probe started, so 400 ms after it ended).
    assert!(
        elapsed < open_for + stall + Duration::from_millis(250),
        "{elapsed:?}"
    );
    assert_eq!(arrivals(&sim, "sk-probe"), 6);
    assert_eq!(
        balancer.handle().member_stats("probe").map(|s| s.state),
        Some(MemberState::Active)
    );
}

/// Records the fields of every `lbgpt_balance_attempt` span.
#[derive(Clone, Default)]
struct AttemptSpans(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AttemptSpans {
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        if attributes.metadata().name() == "lbgpt_balance_attempt" {
            let mut fields = Fields(String::new());
            attributes.record(&mut fields);
            self.0
                .lock()
                .expect("not poisoned")
                .push(fields.0.trim_end().to_owned());
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_upstream_attempt_has_its_own_span() {
    use tracing_subscriber::layer::SubscriberExt;

    let spans = AttemptSpans::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let sim = simulator(&["sk-a", "sk-b"]).await;
    sim.script("sk-a", [Fault::ServerError]);
    let balancer = round_robin_a_b(&sim);

    balancer
        .oneshot(request("traced"))
        .await
        .expect("b answers after a fails");
    let recorded = spans.0.lock().expect("not poisoned").clone();
    assert_eq!(recorded, ["member=a attempt=1", "member=b attempt=2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_counted_only_when_another_member_takes_the_request() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    sim.script("sk-a", [Fault::ServerError]);
    let balancer = round_robin_a_b(&sim);
    let handle = balancer.handle();
    handle.disable("b").expect("b is a member");

    let batch = requests("no room to fail over", 1);
    let results = run(balancer, batch, 1).await;
    let error = results[0]
        .as_ref()
        .expect_err("the only usable member failed");
    assert_eq!(error.status(), Some(500));
    let a = handle.member_stats("a").expect("a member");
    assert_eq!((a.failed, a.failovers), (1, 0));
    assert_eq!(handle.member_stats("b").expect("a member").retries, 0);
}
