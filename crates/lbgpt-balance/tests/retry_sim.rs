//! The retry layer around a real OpenAI service, against the simulator on loopback.

mod common;

use common::{fast_policy, request, requests_seen, retrying, simulator, KEY};
use lbgpt_balance::retry::RetryPolicy;
use lbgpt_core::Error;
use lbgpt_sim::{expected_answer, Fault};
use std::time::{Duration, Instant};
use tower::ServiceExt;

#[tokio::test]
async fn rate_limit_is_retried_after_the_wait_the_server_asked_for() {
    let sim = simulator(&[KEY]).await;
    let asked = Duration::from_millis(300);
    sim.script(KEY, [Fault::RateLimited { retry_after: asked }]);
    // Backoff would be far shorter than the asked wait: the wait must come from the server.
    let service = retrying(&sim, KEY, fast_policy());

    let req = request("rate limited once");
    let started = Instant::now();
    let response = service
        .oneshot(req.clone())
        .await
        .expect("the retry succeeds");
    let elapsed = started.elapsed();

    assert!(
        elapsed >= asked,
        "waited only {elapsed:?}, the server asked {asked:?}"
    );
    assert_eq!(response.first_text(), Some(expected_answer(&req)));
    assert_eq!(response.meta.attempts, 2);
    assert!(
        response.meta.latency >= asked,
        "{:?}",
        response.meta.latency
    );
    assert!(response.meta.latency <= elapsed);
    assert_eq!(requests_seen(&sim, KEY), 2);
}

#[tokio::test]
async fn server_errors_unavailable_and_resets_are_retried_until_success() {
    let sim = simulator(&[KEY]).await;
    sim.script(
        KEY,
        [
            Fault::ServerError,
            Fault::Unavailable { retry_after: None },
            Fault::Reset,
            Fault::Unavailable {
                retry_after: Some(Duration::from_millis(50)),
            },
        ],
    );
    let service = retrying(&sim, KEY, fast_policy());

    let req = request("flaky server");
    let response = service
        .oneshot(req.clone())
        .await
        .expect("the fifth attempt succeeds");

    assert_eq!(response.first_text(), Some(expected_answer(&req)));
    assert_eq!(response.meta.attempts, 5);
    assert_eq!(requests_seen(&sim, KEY), 5);
}

#[tokio::test]
async fn a_bad_request_is_sent_exactly_once_and_returned_as_is() {
    let sim = simulator(&[KEY]).await;
    sim.script(KEY, [Fault::Status(400)]);
    let service = retrying(&sim, KEY, fast_policy());

    let error = service
        .oneshot(request("bad request"))
        .await
        .expect_err("400 is not retried");

    match &error {
        Error::Api(api) => assert_eq!(api.status, 400),
        other => panic!("expected the API error itself, got {other:?}"),
    }
    assert_eq!(requests_seen(&sim, KEY), 1);
}

#[tokio::test]
async fn an_unauthorized_key_is_sent_exactly_once() {
    let sim = simulator(&[KEY]).await;
    sim.script(KEY, [Fault::Unauthorized]);
    let service = retrying(&sim, KEY, fast_policy());

    let error = service
        .oneshot(request("revoked key"))
        .await
        .expect_err("401 is not retried");

    assert_eq!(error.status(), Some(401));
    assert_eq!(
        error.attempts(),
        None,
        "a first-attempt error is returned as is"
    );
    assert_eq!(requests_seen(&sim, KEY), 1);
    assert!(!error.to_string().contains(KEY), "the key leaked: {error}");
}

#[tokio::test]
async fn an_unknown_key_is_not_retried() {
    let sim = simulator(&[KEY]).await;
    let service = retrying(&sim, "sk-sim-unknown", fast_policy());

    let error = service
        .oneshot(request("who am I"))
        .await
        .expect_err("an unknown key gets 401");

    assert_eq!(error.status(), Some(401));
    assert_eq!(sim.stats().requests, 1);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let sim = simulator(&[KEY]).await;
    sim.script(KEY, [Fault::InsufficientQuota]);
    let service = retrying(&sim, KEY, fast_policy());

    let error = service
        .oneshot(request("no money"))
        .await
        .expect_err("insufficient_quota is final");

    let api = error.api_error().expect("an API error");
    assert_eq!(api.status, 429);
    assert!(api.is_insufficient_quota(), "{api:?}");
    assert_eq!(requests_seen(&sim, KEY), 1);
}

#[tokio::test]
async fn max_attempts_is_respected_and_the_error_says_so() {
    let sim = simulator(&[KEY]).await;
    sim.script(KEY, vec![Fault::ServerError; 10]);
    let service = retrying(&sim, KEY, fast_policy().max_attempts(3));

    let error = service
        .oneshot(request("always failing"))
        .await
        .expect_err("three 500s exhaust three attempts");

    match &error {
        Error::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert_eq!(last.status(), Some(500));
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert!(error.to_string().contains("3 attempts"), "{error}");
    assert_eq!(requests_seen(&sim, KEY), 3);
}

#[tokio::test]
async fn a_non_retryable_error_after_retries_reports_all_attempts() {
    let sim = simulator(&[KEY]).await;
    sim.script(KEY, [Fault::ServerError, Fault::Status(400)]);
    let service = retrying(&sim, KEY, fast_policy());

    let error = service
        .oneshot(request("fails differently"))
        .await
        .expect_err("the 400 ends it");

    assert_eq!(error.attempts(), Some(2), "{error:?}");
    assert_eq!(error.status(), Some(400));
    assert_eq!(requests_seen(&sim, KEY), 2);
}

#[tokio::test]
async fn a_server_wait_beyond_max_retry_after_gives_up_at_once() {
    let sim = simulator(&[KEY]).await;
    sim.script(
        KEY,
        [Fault::RateLimited {
            retry_after: Duration::from_secs(300),
        }],
    );
    let service = retrying(&sim, KEY, fast_policy());

    let started = Instant::now();
    let error = service
        .oneshot(request("come back in five minutes"))
        .await
        .expect_err("300 s is more than the 120 s cap");

    assert!(started.elapsed() < Duration::from_secs(60), "it slept");
    let api = error.api_error().expect("the 429 itself");
    assert_eq!(api.status, 429);
    assert_eq!(api.retry_after, Some(Duration::from_secs(300)));
    assert_eq!(requests_seen(&sim, KEY), 1);
}

#[tokio::test]
async fn the_deadline_cancels_a_stalled_attempt() {
    let sim = simulator(&[KEY]).await;
    sim.script(KEY, [Fault::Stall(Duration::from_secs(20))]);
    let deadline = Duration::from_millis(400);
    let service = retrying(&sim, KEY, fast_policy().deadline(deadline));

    let started = Instant::now();
    let error = service
        .oneshot(request("stalled"))
        .await
        .expect_err("the stall outlasts the deadline");
    let elapsed = started.elapsed();

    assert!(
        elapsed >= deadline,
        "returned before the deadline: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "the deadline did not cut the 20 s stall short: {elapsed:?}"
    );
    match error {
        Error::DeadlineExceeded {
            deadline: reported,
            attempts,
            last,
        } => {
            assert_eq!(reported, deadline);
            assert_eq!(attempts, 1);
            assert!(last.is_none(), "no attempt completed: {last:?}");
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn the_deadline_counts_earlier_attempts_and_keeps_their_error() {
    let sim = simulator(&[KEY]).await;
    sim.script(
        KEY,
        [Fault::ServerError, Fault::Stall(Duration::from_secs(20))],
    );
    let deadline = Duration::from_millis(500);
    let service = retrying(&sim, KEY, fast_policy().deadline(deadline));

    let error = service
        .oneshot(request("fails then stalls"))
        .await
        .expect_err("the second attempt outlasts the deadline");

    match error {
        Error::DeadlineExceeded { attempts, last, .. } => {
            assert_eq!(attempts, 2);
            assert_eq!(last.and_then(|e| e.status()), Some(500));
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert_eq!(requests_seen(&sim, KEY), 2);
}

#[tokio::test]
async fn a_server_wait_beyond_the_deadline_returns_at_once() {
    let sim = simulator(&[KEY]).await;
    sim.script(
        KEY,
        [Fault::RateLimited {
            retry_after: Duration::from_secs(30),
        }],
    );
    let deadline = Duration::from_secs(5);
    let service = retrying(&sim, KEY, RetryPolicy::default().deadline(deadline));

    let started = Instant::now();
    let error = service
        .oneshot(request("wait longer than allowed"))
        .await
        .expect_err("waiting 30 s would cross the 5 s deadline");
    let elapsed = started.elapsed();

    assert!(
        elapsed < deadline,
        "it slept until the deadline: {elapsed:?}"
    );
    match error {
        Error::DeadlineExceeded {
            deadline: reported,
            attempts,
            last,
        } => {
            assert_eq!(reported, deadline);
            assert_eq!(attempts, 1);
            let last = last.expect("the 429 is kept");
            assert_eq!(last.status(), Some(429));
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert_eq!(requests_seen(&sim, KEY), 1);
}

#[tokio::test]
async fn a_first_success_records_one_attempt() {
    let sim = simulator(&[KEY]).await;
    let service = retrying(&sim, KEY, RetryPolicy::default());

    let req = request("plain");
    let response = service
        .oneshot(req.clone())
        .await
        .expect("no fault, no retry");

    assert_eq!(response.meta.attempts, 1);
    assert_eq!(response.first_text(), Some(expected_answer(&req)));
    assert_eq!(response.meta.member.as_deref(), Some("sim"));
    assert_eq!(requests_seen(&sim, KEY), 1);
}

#[tokio::test]
async fn concurrent_requests_through_one_layer_each_get_their_answer() {
    let sim = simulator(&[KEY]).await;
    let faults: Vec<Fault> = (0..20)
        .map(|i| match i % 4 {
            0 => Fault::ServerError,
            1 => Fault::Reset,
            2 => Fault::RateLimited {
                retry_after: Duration::from_millis(20),
            },
            _ => Fault::MalformedJson,
        })
        .collect();
    sim.script(KEY, faults);
    let service = retrying(&sim, KEY, fast_policy());

    let requests: Vec<_> = (0..40).map(|i| request(&format!("question {i}"))).collect();
    let answers = futures::future::join_all(
        requests
            .iter()
            .map(|req| service.clone().oneshot(req.clone())),
    )
    .await;

    for (req, answer) in requests.iter().zip(answers) {
        let answer = answer.expect("every request recovers");
        assert_eq!(answer.first_text(), Some(expected_answer(req)));
    }
    assert_eq!(requests_seen(&sim, KEY), 60, "40 answers + 20 faults");
}
