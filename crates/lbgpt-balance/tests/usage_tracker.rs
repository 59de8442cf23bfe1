//! InMemoryUsage through the UsageTracker trait: concurrent reservations, exact retry_at,
//! settling, cancellation, header tightening and the correction factor.

use futures::future::join_all;
use lbgpt_balance::tokens::TokenEstimate;
use lbgpt_balance::usage::{
    Accounting, InMemoryUsage, LimitKind, Limits, Outcome, PacingConfig, UsageTracker,
};
use lbgpt_core::{RateLimitInfo, Usage};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

fn usage(prompt: u64, completion: u64) -> Option<Usage> {
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        ..Usage::default()
    })
}

fn answered(prompt: u64, completion: u64) -> Outcome {
    Outcome::Answered {
        usage: usage(prompt, completion),
        rate_limit: None,
    }
}

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_reservations_admit_exactly_the_rpm() {
    let tracker = InMemoryUsage::new(PacingConfig::unpaced());
    tracker.register("key", Limits::none().rpm(100));
    let t0 = Instant::now();
    let results = join_all((0..200).map(|_| tracker.try_reserve("key", 50))).await;
    let (admitted, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(admitted.len(), 100);
    let window_end = t0 + Duration::from_secs(60) + Duration::from_millis(50);
    for refusal in refused {
        let unavailable = refusal.expect_err("refused");
        assert_eq!(unavailable.retry_at, Some(window_end));
        assert_eq!(unavailable.limit, LimitKind::Requests);
    }
    let snapshot = tracker.snapshot("key").expect("registered");
    assert_eq!(snapshot.in_flight, 100);
    assert_eq!(snapshot.requests_in_window, 100);
    assert_eq!(snapshot.headroom_requests, Some(0));

    // retry_at is exact: a millisecond early is still refused, on time is admitted.
    tokio::time::advance(window_end - Instant::now() - MS).await;
    assert!(tracker.try_reserve("key", 50).await.is_err());
    tokio::time::advance(MS).await;
    let more = join_all((0..150).map(|_| tracker.try_reserve("key", 50))).await;
    assert_eq!(more.iter().filter(|r| r.is_ok()).count(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_on_two_threads_never_overshoot() {
    let tracker = Arc::new(InMemoryUsage::new(PacingConfig::unpaced()));
    tracker.register("key", Limits::none().rpm(100).tpm(1_000_000));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let tracker = tracker.clone();
            tokio::spawn(async move {
                match tracker.try_reserve("key", 100).await {
                    Ok(reservation) => {
                        tokio::task::yield_now().await;
                        tracker.settle(reservation, answered(100, 0));
                        true
                    }
                    Err(_) => false,
                }
            })
        })
        .collect();
    let admitted = join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().expect("task ran"))
        .count();
    assert_eq!(admitted, 100);
    let snapshot = tracker.snapshot("key").expect("registered");
    assert_eq!(snapshot.requests_in_window, 100);
    assert_eq!(snapshot.tokens_in_window, 10_000);
    assert_eq!(snapshot.in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn paced_waiters_get_admitted_at_their_retry_at_and_never_overshoot() {
    // 200 requests wait on a 100 RPM member, each sleeping until its computed retry_at.
    let tracker = Arc::new(InMemoryUsage::new(PacingConfig::default()));
    tracker.register("key", Limits::none().rpm(100));
    let t0 = Instant::now();
    let waiters = (0..200).map(|_| {
        let tracker = tracker.clone();
        async move {
            let mut attempts = 0;
            loop {
                attempts += 1;
                match tracker.try_reserve("key", 1).await {
                    Ok(reservation) => {
                        let at = reservation.reserved_at();
                        tracker.settle(reservation, answered(1, 0));
                        return (at - t0, attempts);
                    }
                    Err(unavailable) => {
                        let at = unavailable.retry_at.expect("fits later");
                        tokio::time::sleep_until(at).await;
                    }
                }
            }
        }
    });
    let mut admitted: Vec<(Duration, u32)> = join_all(waiters).await;
    admitted.sort();
    // Never more than 100 in any 60 s, and 98 in the first minute.
    let times: Vec<f64> = admitted.iter().map(|(d, _)| d.as_secs_f64()).collect();
    let mut window = VecDeque::new();
    for &t in &times {
        window.push_back(t);
        while window.front().is_some_and(|&f| f + 60.0 <= t) {
            window.pop_front();
        }
        assert!(window.len() <= 100, "{} within 60 s", window.len());
    }
    let first_minute = times.iter().filter(|&&t| t < 60.0).count();
    assert!(first_minute >= 97, "{first_minute} in the first minute");
    // At most 100 / 6 (rounded up) in any 10 s.
    let per_ten = times
        .iter()
        .map(|&t| times.iter().filter(|&&u| u >= t && u < t + 10.0).count())
        .max()
        .unwrap_or(0);
    assert!(per_ten <= 17, "{per_ten} within 10 s");
}

#[tokio::test(start_paused = true)]
async fn tokens_over_the_tpm_never_fit_and_an_rpm_only_member_never_waits_on_tokens() {
    let tracker = InMemoryUsage::default();
    tracker.register("small", Limits::none().tpm(1_000));
    let never = tracker
        .try_reserve("small", 1_001)
        .await
        .expect_err("too large");
    assert_eq!(never.retry_at, None);
    assert_eq!(never.limit, LimitKind::Tokens);
    assert!(never.to_string().contains("never"));

    tracker.register("rpm-only", Limits::none().rpm(60));
    let first = tracker.try_reserve("rpm-only", 5_000_000).await;
    assert!(first.is_ok());
    let wait = tracker
        .try_reserve("rpm-only", 5_000_000)
        .await
        .expect_err("paced");
    let at = wait.retry_at.expect("an rpm-only member always fits later");
    assert!(at - Instant::now() <= Duration::from_secs(2));
    tokio::time::sleep_until(at).await;
    assert!(tracker.try_reserve("rpm-only", 5_000_000).await.is_ok());

    let unknown = tracker.try_reserve("nobody", 1).await.expect_err("unknown");
    assert_eq!(unknown.retry_at, None);
}

#[tokio::test(start_paused = true)]
async fn settling_replaces_the_estimate_with_the_providers_charge() {
    // Azure-style arrival charge: provider's prompt count + the reserved completion budget.
    let azure = InMemoryUsage::new(PacingConfig::unpaced());
    azure.register("azure", Limits::none().tpm(100_000));
    let up = azure
        .try_reserve_estimate("azure", TokenEstimate::new(1_000, 500))
        .await
        .expect("room");
    assert_eq!(up.tokens(), 1_500);
    assert_eq!(
        azure.snapshot("azure").expect("registered").reserved_tokens,
        1_500
    );
    azure.settle(up, answered(1_200, 40));
    let after_up = azure.snapshot("azure").expect("registered");
    assert_eq!(after_up.tokens_in_window, 1_700);
    assert_eq!(after_up.reserved_tokens, 0);
    let down = azure
        .try_reserve_estimate("azure", TokenEstimate::new(1_000, 500))
        .await
        .expect("room");
    azure.settle(down, answered(800, 500));
    assert_eq!(
        azure
            .snapshot("azure")
            .expect("registered")
            .tokens_in_window,
        1_700 + 1_300
    );

    // Actual accounting: the tokens used.
    let openai = InMemoryUsage::new(PacingConfig::unpaced()).accounting(Accounting::ActualUsage);
    openai.register("openai", Limits::none().tpm(100_000));
    let reservation = openai
        .try_reserve_estimate("openai", TokenEstimate::new(1_000, 4_000))
        .await
        .expect("room");
    openai.settle(reservation, answered(990, 25));
    assert_eq!(
        openai
            .snapshot("openai")
            .expect("registered")
            .tokens_in_window,
        1_015
    );
}

#[tokio::test(start_paused = true)]
async fn unsettled_reservations_release_in_flight_but_keep_their_charge() {
    let tracker = Arc::new(InMemoryUsage::new(PacingConfig::unpaced()));
    tracker.register("key", Limits::none().rpm(10).tpm(10_000));
    // Dropped without settling.
    let reservation = tracker.try_reserve("key", 300).await.expect("room");
    drop(reservation);
    let snapshot = tracker.snapshot("key").expect("registered");
    assert_eq!(snapshot.in_flight, 0);
    assert_eq!(snapshot.reserved_tokens, 0);
    assert_eq!(snapshot.requests_in_window, 1);
    assert_eq!(snapshot.tokens_in_window, 300);

    // A task holding a reservation is cancelled.
    let held = tracker.clone();
    let task = tokio::spawn(async move {
        let _reservation = held.try_reserve("key", 200).await.expect("room");
        std::future::pending::<()>().await;
    });
    tokio::task::yield_now().await;
    assert_eq!(tracker.snapshot("key").expect("registered").in_flight, 1);
    task.abort();
    let _ = task.await;
    let snapshot = tracker.snapshot("key").expect("registered");
    assert_eq!(snapshot.in_flight, 0);
    assert_eq!(snapshot.tokens_in_window, 500);

    // Settling twice is impossible (settle takes the reservation); settling after the
    // member is gone is harmless, and re-registering starts afresh.
    let late = tracker.try_reserve("key", 100).await.expect("room");
    tracker.unregister("key");
    tracker.settle(late, answered(100, 0));
    assert!(tracker.snapshot("key").is_none());
    tracker.register("key", Limits::none().rpm(10));
    assert_eq!(
        tracker
            .snapshot("key")
            .expect("registered")
            .requests_in_window,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn register_again_updates_limits_and_keeps_history() {
    let tracker = InMemoryUsage::new(PacingConfig::unpaced());
    tracker.register("key", Limits::none().rpm(2));
    let _a = tracker.try_reserve("key", 1).await.expect("room");
    let _b = tracker.try_reserve("key", 1).await.expect("room");
    assert!(tracker.try_reserve("key", 1).await.is_err());
    tracker.register("key", Limits::none().rpm(3));
    let snapshot = tracker.snapshot("key").expect("registered");
    assert_eq!(snapshot.requests_in_window, 2);
    assert_eq!(snapshot.limits, Limits::none().rpm(3));
    assert!(tracker.try_reserve("key", 1).await.is_ok());
    assert!(tracker.try_reserve("key", 1).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn remaining_headers_tighten_the_view_until_their_reset() {
    let tracker = InMemoryUsage::new(PacingConfig::unpaced());
    tracker.register("shared-key", Limits::none().rpm(100).tpm(100_000));
    let reservation = tracker
        .try_reserve("shared-key", 1_000)
        .await
        .expect("room");
    // Someone else uses the same key: the provider has far less left than we think.
    let mut info = RateLimitInfo::default();
    info.limit_requests = Some(100);
    info.remaining_requests = Some(50);
    info.reset_requests = Some(Duration::from_secs(20));
    info.limit_tokens = Some(100_000);
    info.remaining_tokens = Some(4_000);
    info.reset_tokens = Some(Duration::from_secs(30));
    tracker.settle(
        reservation,
        Outcome::Answered {
            usage: usage(990, 10),
            rate_limit: Some(info),
        },
    );
    let snapshot = tracker.snapshot("shared-key").expect("registered");
    assert_eq!(snapshot.headroom_requests, Some(50));
    assert_eq!(snapshot.headroom_tokens, Some(4_000));
    let t0 = Instant::now();
    for _ in 0..4 {
        assert!(tracker.try_reserve("shared-key", 1_000).await.is_ok());
    }
    let refused = tracker
        .try_reserve("shared-key", 1_000)
        .await
        .expect_err("the provider said 4000 tokens were left");
    assert_eq!(refused.limit, LimitKind::Tokens);
    assert_eq!(refused.retry_at, Some(t0 + Duration::from_secs(30)));
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(tracker.try_reserve("shared-key", 1_000).await.is_ok());
}

/// A provider holding a sliding 60 s TPM window that counts prompts 1.3x our tokenizer.
struct UnderCounted {
    limit: u64,
    charges: VecDeque<(Instant, u64)>,
}

impl UnderCounted {
    fn offer(&mut self, now: Instant, cost: u64) -> Option<u64> {
        while self
            .charges
            .front()
            .is_some_and(|&(at, _)| at + Duration::from_secs(60) <= now)
        {
            self.charges.pop_front();
        }
        let used: u64 = self.charges.iter().map(|&(_, c)| c).sum();
        if used + cost > self.limit {
            return None;
        }
        self.charges.push_back((now, cost));
        Some(self.limit - used - cost)
    }
}

/// Runs requests estimated at 400 prompt + 100 completion tokens against a provider that
/// counts their prompts as 520, answering `latency` after each request, for four minutes.
/// Returns when the provider refused (since start), the final correction factor and how
/// many were answered.
async fn run_under_counted(pacing: PacingConfig, latency: Duration) -> (Vec<Duration>, f64, u32) {
    let tracker = InMemoryUsage::new(pacing);
    tracker.register("azure", Limits::none().tpm(60_000));
    let mut provider = UnderCounted {
        limit: 60_000,
        charges: VecDeque::new(),
    };
    let estimate = TokenEstimate::new(400, 100);
    let start = Instant::now();
    let mut refused_at = Vec::new();
    let mut answered_count = 0u32;
    let mut in_flight: VecDeque<(Instant, lbgpt_balance::usage::Reservation, u64)> =
        VecDeque::new();
    while Instant::now() < start + Duration::from_secs(240) {
        let now = Instant::now();
        while in_flight.front().is_some_and(|(due, _, _)| *due <= now) {
            let Some((_, reservation, remaining)) = in_flight.pop_front() else {
                break;
            };
            let mut info = RateLimitInfo::default();
            info.limit_tokens = Some(60_000);
            info.remaining_tokens = Some(remaining);
            tracker.settle(
                reservation,
                Outcome::Answered {
                    usage: usage(520, 60),
                    rate_limit: Some(info),
                },
            );
            answered_count += 1;
        }
        match tracker.try_reserve_estimate("azure", estimate).await {
            Ok(reservation) => match provider.offer(now, 520 + 100) {
                Some(remaining) => in_flight.push_back((now + latency, reservation, remaining)),
                None => {
                    refused_at.push(now - start);
                    let mut info = RateLimitInfo::default();
                    info.remaining_tokens = Some(0);
                    tracker.settle(
                        reservation,
                        Outcome::RateLimited {
                            retry_after: Some(Duration::from_secs(1)),
                            rate_limit: Some(info),
                        },
                    );
                }
            },
            Err(unavailable) => {
                let at = unavailable.retry_at.expect("fits later");
                let next_answer = in_flight.front().map(|(due, _, _)| *due);
                let wake = next_answer.map_or(at, |due| due.min(at));
                tokio::time::sleep_until(wake.max(now + MS)).await;
            }
        }
    }
    let factor = tracker
        .snapshot("azure")
        .expect("registered")
        .token_correction;
    (refused_at, factor, answered_count)
}

#[tokio::test(start_paused = true)]
async fn a_systematic_under_estimate_stops_causing_429s() {
    // Unpaced, the first burst fills the window by our estimate and overshoots the
    // provider's count before any answer arrives; from the answers on, the factor is learnt
    // and no later burst overshoots.
    let latency = Duration::from_secs(20);
    let (refused_at, factor, answered) = run_under_counted(PacingConfig::unpaced(), latency).await;
    assert!(!refused_at.is_empty(), "the first burst should overshoot");
    let late: Vec<_> = refused_at.iter().filter(|&&at| at > latency).collect();
    assert!(late.is_empty(), "429s after the first answers: {late:?}");
    assert!((factor - 1.3).abs() < 0.05, "correction factor {factor}");
    assert!(answered > 300, "only {answered} answered");

    // Paced, the factor is learnt long before the window fills (and settling moves the
    // pacing schedule by each correction): no 429 at all, with 20 s of requests in flight.
    let (refused_at, factor, answered) = run_under_counted(PacingConfig::default(), latency).await;
    assert!(refused_at.is_empty(), "429s at {refused_at:?}");
    assert!((factor - 1.3).abs() < 0.05, "correction factor {factor}");
    // About 97 requests of 620 tokens per minute, minus the first 20 s of answers.
    assert!(answered > 340, "only {answered} answered");
}
