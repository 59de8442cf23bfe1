//! Limits are promises: in-flight reservations, pacing waits and the errors when waiting
//! would take too long, against the simulator (and, where exact time matters, on paused time).

mod balancer_support;

use balancer_support::{
    arrivals, assert_all_answered, builder, limit_429s, member, request, requests, run,
    simulator_with,
};
use futures::future::join_all;
use lbgpt_balance::usage::{InMemoryUsage, PacingConfig, UsageTracker};
use lbgpt_balance::{Balancer, Member, Strategy};
use lbgpt_core::{ChatRequest, ChatResponse, Error};
use lbgpt_sim::{Fault, KeyConfig, LimitMode};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, ServiceExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_never_overshoots_a_100_rpm_key() {
    let sim = simulator_with(
        [KeyConfig::new("sk-100").rpm(100)],
        Duration::from_millis(5),
    )
    .await;
    let balancer = builder()
        .member(member(&sim, "key", "sk-100").rpm(100))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");

    // All 200 at once: in-flight reservations count, so only 100 are sent.
    let results = join_all(
        requests("burst", 200)
            .into_iter()
            .map(|req| balancer.clone().oneshot(req)),
    )
    .await;

    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(succeeded, 100);
    assert_eq!(arrivals(&sim, "sk-100"), 100);
    assert_eq!(
        limit_429s(&sim, "sk-100"),
        0,
        "the simulator never had to say 429"
    );
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        match error {
            Error::NoMemberAvailable {
                reason,
                retry_after: Some(wait),
            } => {
                assert!(reason.contains("key (requests per minute"), "{reason}");
                assert!(*wait > Duration::from_secs(55), "{wait:?}");
            }
            other => panic!("unexpected error: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keys_absorb_a_burst_neither_could_alone() {
    let sim = simulator_with(
        [
            KeyConfig::new("sk-a").rpm(100),
            KeyConfig::new("sk-b").rpm(100),
        ],
        Duration::from_millis(5),
    )
    .await;
    let balancer = builder()
        .member(member(&sim, "a", "sk-a").rpm(100))
        .member(member(&sim, "b", "sk-b").rpm(100))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");

    let batch = requests("absorb", 200);
    let results = join_all(
        batch
            .iter()
            .cloned()
            .map(|req| balancer.clone().oneshot(req)),
    )
    .await;
    assert_all_answered(&batch, &results);
    assert_eq!(arrivals(&sim, "sk-a"), 100);
    assert_eq!(arrivals(&sim, "sk-b"), 100);
    assert_eq!(limit_429s(&sim, "sk-a") + limit_429s(&sim, "sk-b"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_spreads_a_burst_so_short_windows_never_refuse() {
    // Azure-like enforcement, scaled down: 600 RPM as at most 10 requests per 1 s window.
    let sim = simulator_with(
        [KeyConfig::new("sk-azure")
            .rpm(600)
            .limit_mode(LimitMode::short_windows_of(
                Duration::from_secs(1),
                Duration::from_secs(60),
            ))],
        Duration::from_millis(1),
    )
    .await;
    let balancer = Balancer::builder()
        .usage(Arc::new(InMemoryUsage::new(PacingConfig::default())))
        .member(member(&sim, "azure", "sk-azure").rpm(600))
        .build()
        .expect("a valid balancer");

    let started = Instant::now();
    let batch = requests("paced", 25);
    let results = join_all(
        batch
            .iter()
            .cloned()
            .map(|req| balancer.clone().oneshot(req)),
    )
    .await;
    let elapsed = started.elapsed();

    assert_all_answered(&batch, &results);
    assert_eq!(limit_429s(&sim, "sk-azure"), 0);
    // Paced at 98 % of 10 per second with a 100 ms burst: the 25th request cannot go before
    // 24 / 9.8 s - 0.1 s = 2.35 s.
    assert!(elapsed >= Duration::from_millis(2_300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
}

/// A provider stand-in that answers at once, for tests on paused time (the simulator's
/// sockets and a paused clock do not mix).
fn instant_provider() -> impl tower::Service<
    ChatRequest,
    Response = ChatResponse,
    Error = Error,
    Future = impl Send + 'static,
> + Clone
       + Send
       + 'static {
    service_fn(|_request: ChatRequest| async {
        Ok::<_, Error>(
            serde_json::from_str::<ChatResponse>(
                r#"{"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}"#,
            )
            .expect("a valid answer"),
        )
    })
}

#[tokio::test(start_paused = true)]
async fn a_request_at_the_limit_waits_exactly_the_computed_time() {
    let usage = Arc::new(InMemoryUsage::new(PacingConfig::unpaced()));
    let balancer = Balancer::builder()
        .usage(usage.clone())
        .member(Member::new("key", instant_provider()).rpm(2))
        .max_wait(Duration::from_secs(120))
        .build()
        .expect("a valid balancer");

    let started = Instant::now();
    for i in 0..2 {
        balancer
            .clone()
            .oneshot(request(&format!("now {i}")))
            .await
            .expect("within the limit");
    }
    assert_eq!(started.elapsed(), Duration::ZERO);

    // The third fits when the first leaves the window (60 s plus the tracker's slack).
    balancer
        .clone()
        .oneshot(request("later"))
        .await
        .expect("after the wait");
    let waited = started.elapsed();
    let window = PacingConfig::unpaced().window_length() + PacingConfig::unpaced().slack_length();
    assert!(waited >= window, "{waited:?}");
    assert!(waited <= window + Duration::from_millis(5), "{waited:?}");
    // The first two have left the window; the third is in it.
    let snapshot = usage.snapshot("key").expect("registered");
    assert_eq!(snapshot.requests_in_window, 1);
    assert_eq!(snapshot.in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_wait_beyond_max_wait_fails_at_once_saying_when() {
    let balancer = Balancer::builder()
        .usage(Arc::new(InMemoryUsage::new(PacingConfig::unpaced())))
        .member(Member::new("key", instant_provider()).rpm(1))
        .max_wait(Duration::from_secs(10))
        .build()
        .expect("a valid balancer");
    balancer
        .clone()
        .oneshot(request("first"))
        .await
        .expect("within the limit");

    let started = Instant::now();
    let error = balancer
        .oneshot(request("second"))
        .await
        .expect_err("the key is full for a minute");
    assert_eq!(started.elapsed(), Duration::ZERO, "no pointless waiting");
    let wait = error.retry_after().expect("says when");
    assert!(
        wait > Duration::from_secs(59) && wait <= Duration::from_secs(61),
        "{wait:?}"
    );
    assert!(error.is_retryable());
    let text = error.to_string();
    assert!(text.contains("max_wait of 10.00s"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_larger_than_every_token_limit_fails_without_a_call() {
    let sim = simulator_with(
        [KeyConfig::new("sk-small").tpm(100)],
        Duration::from_millis(1),
    )
    .await;
    let balancer = builder()
        .member(member(&sim, "small", "sk-small").tpm(100))
        .build()
        .expect("a valid balancer");

    let started = Instant::now();
    let error = balancer
        .oneshot(request("too big").max_tokens(500))
        .await
        .expect_err("cannot fit");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.retry_after(), None);
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("tokens-per-minute"), "{error}");
    assert_eq!(arrivals(&sim, "sk-small"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_call_releases_its_reservation_and_slot() {
    let sim = simulator_with([KeyConfig::new("sk-stall")], Duration::from_millis(1)).await;
    sim.script("sk-stall", [Fault::Stall(Duration::from_secs(5))]);
    let usage = Arc::new(InMemoryUsage::new(PacingConfig::unpaced()));
    let balancer = builder()
        .usage(usage.clone())
        .member(member(&sim, "stall", "sk-stall").rpm(10))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    let call = balancer.clone().oneshot(request("stalled"));
    let outcome = tokio::time::timeout(Duration::from_millis(300), call).await;
    assert!(outcome.is_err(), "the call was cut off");

    let stats = handle.member_stats("stall").expect("a member");
    assert_eq!(stats.in_flight, 0);
    let snapshot = usage.snapshot("stall").expect("registered");
    assert_eq!(snapshot.in_flight, 0);
    // It reached the provider, so its charge stays in the window.
    assert_eq!(snapshot.requests_in_window, 1);
    assert_eq!(snapshot.headroom_requests, Some(9));

    // The member is still fine for the next request.
    balancer
        .oneshot(request("after"))
        .await
        .expect("the next request is answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_without_limits_never_wait() {
    let sim = simulator_with([KeyConfig::new("sk-free")], Duration::from_millis(1)).await;
    let balancer = builder()
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "free", "sk-free"))
        .max_wait(Duration::ZERO)
        .build()
        .expect("a valid balancer");
    let batch = requests("free", 300);
    let results = run(balancer, batch.clone(), 64).await;
    assert_all_answered(&batch, &results);
}
