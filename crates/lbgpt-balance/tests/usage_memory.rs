//! InMemoryUsage keeps a bounded amount of memory per member whatever the request rate: a
//! million requests through a member without limits and through a limited one leave at most
//! `MAX_STORED_BUCKETS` time buckets, and the windows still count what they should.

use lbgpt_balance::usage::{
    InMemoryUsage, Limits, Outcome, PacingConfig, UsageTracker, MAX_STORED_BUCKETS,
};
use lbgpt_core::Usage;
use std::time::Duration;

const REQUESTS: u64 = 1_000_000;
/// Requests admitted at each instant; time moves 100 ms between batches (10 000 a second,
/// 100 s in all: both windows fill and turn over).
const BATCH: u64 = 1_000;
const STEP: Duration = Duration::from_millis(100);

fn answered(prompt: u64, completion: u64) -> Outcome {
    Outcome::Answered {
        usage: Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            ..Usage::default()
        }),
        rate_limit: None,
    }
}

/// Sends a million requests reserving 10 tokens through `member`, settling each with 15, and returns the
/// most time buckets its windows held.
async fn a_million_through(tracker: &InMemoryUsage, member: &str) -> usize {
    let mut most = 0;
    for i in 0..REQUESTS {
        if i > 0 && i % BATCH == 0 {
            tokio::time::advance(STEP).await;
        }
        let reservation = tracker
            .try_reserve(member, 10)
            .await
            .unwrap_or_else(|unavailable| panic!("request {i} refused: {unavailable}"));
        // Real usage (15 tokens) exceeds the reservation (10): the window's sum shows whether
        // settling recharged each request with it (usage below a reservation made without a
        // prompt estimate keeps the reservation, the arrival charge).
        tracker.settle(reservation, answered(10, 5));
        if i % 100 == 0 {
            most = most.max(tracker.stored_buckets(member).expect("registered"));
        }
    }
    most.max(tracker.stored_buckets(member).expect("registered"))
}

#[tokio::test(start_paused = true)]
async fn a_million_requests_leave_a_bounded_number_of_buckets_per_member() {
    let tracker = InMemoryUsage::new(PacingConfig::default());
    tracker.register("unlimited", Limits::none());
    // 10 000 a second is 600 000 a minute: well under these limits, so nothing waits.
    tracker.register("limited", Limits::none().rpm(1_000_000).tpm(10_000_000));

    // Each window keeps at most 602 buckets (600 per window length, plus two); a member
    // without limits keeps only the long window.
    assert_eq!(MAX_STORED_BUCKETS, 1_204);
    for (member, bound) in [("unlimited", 602), ("limited", 1_204)] {
        let most = a_million_through(&tracker, member).await;
        assert!(
            most <= bound,
            "{member}: {most} buckets for a million requests (bound {bound})"
        );
        // The window still counts its last 60.05 s: batches every 100 ms, so the 601 most
        // recent batches, and a bucket may hold one batch up to a bucket width longer.
        let snapshot = tracker.snapshot(member).expect("registered");
        let exact = 601 * BATCH;
        assert!(
            (exact..=exact + 2 * BATCH).contains(&snapshot.requests_in_window),
            "{member}: {} requests in the window",
            snapshot.requests_in_window
        );
        assert_eq!(snapshot.tokens_in_window, 15 * snapshot.requests_in_window);
        assert_eq!(snapshot.in_flight, 0);
        // Time passes the next member's run.
        tokio::time::advance(Duration::from_secs(120)).await;
        let idle = tracker.snapshot(member).expect("registered");
        assert_eq!(idle.requests_in_window, 0);
        assert_eq!(tracker.stored_buckets(member), Some(0));
    }
}
