//! Each strategy against the simulator: the traffic goes where the strategy says.

mod balancer_support;

use balancer_support::{
    arrivals, assert_all_answered, builder, limit_429s, member, requests, run, served_by,
    simulator, simulator_with,
};
use lbgpt_balance::{Candidate, PickStrategy, Strategy};
use lbgpt_core::ChatRequest;
use lbgpt_sim::KeyConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_random_splits_by_weight() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    let balancer = builder()
        .strategy(Strategy::WeightedRandom)
        .member(member(&sim, "a", "sk-a").weight(1.0))
        .member(member(&sim, "b", "sk-b").weight(3.0))
        .build()
        .expect("a valid balancer");

    let batch = requests("weighted random", 800);
    let results = run(balancer, batch.clone(), 16).await;
    assert_all_answered(&batch, &results);

    let counts = served_by(&results);
    // Expected 200 / 600; the standard deviation of a's count is about 12.
    let a = counts.get("a").copied().unwrap_or_default();
    assert!((150..=250).contains(&a), "{counts:?}");
    assert_eq!(arrivals(&sim, "sk-a"), a as u64);
    assert_eq!(arrivals(&sim, "sk-b"), 800 - a as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_splits_exactly_by_weight() {
    let sim = simulator(&["sk-a", "sk-b", "sk-c"]).await;
    let balancer = builder()
        .strategy(Strategy::RoundRobin)
        .member(member(&sim, "a", "sk-a"))
        .member(member(&sim, "b", "sk-b").weight(2.0))
        .member(member(&sim, "c", "sk-c"))
        .build()
        .expect("a valid balancer");

    // One at a time, the smooth rotation is visible in order.
    let batch = requests("round robin", 8);
    let results = run(balancer.clone(), batch.clone(), 1).await;
    assert_all_answered(&batch, &results);
    let order: Vec<&str> = results
        .iter()
        .flatten()
        .filter_map(|r| r.meta.member.as_deref())
        .collect();
    assert_eq!(order, ["b", "a", "c", "b", "b", "a", "c", "b"]);

    // Concurrently, the counts are still exact.
    let batch = requests("round robin concurrent", 400);
    let results = run(balancer, batch.clone(), 16).await;
    assert_all_answered(&batch, &results);
    let counts = served_by(&results);
    assert_eq!(counts.get("a"), Some(&100), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&200), "{counts:?}");
    assert_eq!(counts.get("c"), Some(&100), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_headroom_keeps_keys_busy_in_proportion_to_their_limits() {
    let tpm = [
        ("sk-small", 3_000),
        ("sk-medium", 6_000),
        ("sk-large", 12_000),
    ];
    let sim = simulator_with(
        tpm.iter().map(|(key, tpm)| KeyConfig::new(*key).tpm(*tpm)),
        Duration::from_millis(1),
    )
    .await;
    let mut balancer = builder().strategy(Strategy::MaxHeadroom);
    for (key, tpm) in tpm {
        balancer = balancer.member(member(&sim, key, key).tpm(tpm));
    }
    let balancer = balancer.build().expect("a valid balancer");
    let handle = balancer.handle();

    // Each request is charged about 26 tokens: 300 of them take about 40 % of the
    // combined 21,000 tokens.
    let batch = requests("headroom", 300);
    let results = run(balancer, batch.clone(), 8).await;
    assert_all_answered(&batch, &results);

    let charged: Vec<f64> = tpm
        .iter()
        .map(|(key, _)| sim.key_stats(key).map_or(0, |s| s.tokens_charged) as f64)
        .collect();
    let total: f64 = charged.iter().sum();
    for ((key, limit), charged) in tpm.iter().zip(&charged) {
        let share = charged / total;
        let expected = *limit as f64 / 21_000.0;
        assert!(
            (share - expected).abs() < 0.02,
            "{key} took {share:.3} of the tokens, expected {expected:.3}: {charged:?}"
        );
        assert_eq!(limit_429s(&sim, key), 0);
    }
    // Every member reports the same fraction of headroom left, within one request.
    let fractions: Vec<f64> = handle
        .stats()
        .iter()
        .map(|s| s.headroom.as_ref().expect("tracked").headroom_fraction())
        .collect();
    let spread = fractions.iter().cloned().fold(f64::MIN, f64::max)
        - fractions.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 0.02, "{fractions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_latency_prefers_the_fast_member() {
    let fast = simulator_with([KeyConfig::new("sk-fast")], Duration::from_millis(2)).await;
    let slow = simulator_with([KeyConfig::new("sk-slow")], Duration::from_millis(60)).await;
    let balancer = builder()
        .strategy(Strategy::LeastLatency)
        .member(member(&fast, "fast", "sk-fast"))
        .member(member(&slow, "slow", "sk-slow"))
        .build()
        .expect("a valid balancer");
    let handle = balancer.handle();

    let batch = requests("latency", 120);
    let results = run(balancer, batch.clone(), 4).await;
    assert_all_answered(&batch, &results);

    let counts = served_by(&results);
    let fast_count = counts.get("fast").copied().unwrap_or_default();
    assert!(fast_count >= 100, "{counts:?}");
    let latency = |name: &str| {
        handle
            .member_stats(name)
            .and_then(|s| s.latency_ewma)
            .expect("observed")
    };
    assert!(latency("fast") < latency("slow"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_sends_more_to_the_member_that_frees_up_sooner() {
    let fast = simulator_with([KeyConfig::new("sk-fast")], Duration::from_millis(2)).await;
    let slow = simulator_with([KeyConfig::new("sk-slow")], Duration::from_millis(40)).await;
    let balancer = builder()
        .strategy(Strategy::LeastBusy)
        .member(member(&fast, "fast", "sk-fast"))
        .member(member(&slow, "slow", "sk-slow"))
        .build()
        .expect("a valid balancer");

    let batch = requests("least busy", 120);
    let results = run(balancer, batch.clone(), 8).await;
    assert_all_answered(&batch, &results);
    let counts = served_by(&results);
    let fast_count = counts.get("fast").copied().unwrap_or_default();
    let slow_count = counts.get("slow").copied().unwrap_or_default();
    assert!(fast_count > 2 * slow_count, "{counts:?}");
    assert!(
        slow_count > 0,
        "the slow member still takes a share: {counts:?}"
    );
}

/// Sends everything to members whose name ends in "-eu", counting its calls.
#[derive(Debug, Default)]
struct EuOnly {
    picks: AtomicUsize,
}

impl PickStrategy for EuOnly {
    fn pick(&self, candidates: &[Candidate<'_>], _request: &ChatRequest) -> Option<usize> {
        self.picks.fetch_add(1, Ordering::Relaxed);
        candidates.iter().position(|c| c.name().ends_with("-eu"))
    }

    fn needs_usage(&self) -> bool {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_strategy_decides() {
    let sim = simulator(&["sk-us", "sk-eu"]).await;
    let strategy = Arc::new(EuOnly::default());
    let balancer = builder()
        .strategy(Strategy::Custom(strategy.clone()))
        .member(member(&sim, "azure-us", "sk-us"))
        .member(member(&sim, "azure-eu", "sk-eu"))
        .build()
        .expect("a valid balancer");

    let batch = requests("custom", 30);
    let results = run(balancer.clone(), batch.clone(), 4).await;
    assert_all_answered(&batch, &results);
    assert_eq!(served_by(&results).get("azure-eu"), Some(&30));
    assert_eq!(arrivals(&sim, "sk-us"), 0);
    assert_eq!(strategy.picks.load(Ordering::Relaxed), 30);

    // Without an "-eu" member the strategy declines, and the error says so.
    balancer
        .handle()
        .disable("azure-eu")
        .expect("a known member");
    let error = run(balancer, requests("declined", 1), 1)
        .await
        .remove(0)
        .expect_err("the strategy declines");
    assert!(
        error.to_string().contains("custom strategy picked none"),
        "{error}"
    );
}
