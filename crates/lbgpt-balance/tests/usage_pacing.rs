//! Pacing against reference models of the three ways providers enforce a per-minute limit:
//! a sliding 60 s window, a token bucket of the minute's capacity (OpenAI) and fixed 10 s
//! windows of a sixth each (Azure). With the same limits configured, admissions replayed
//! into each model (with up to 50 ms of network delay each) must never be refused, and the
//! long-run rate must still reach 97 % of the limit. All on paused time.

use lbgpt_balance::tokens::TokenEstimate;
use lbgpt_balance::usage::{InMemoryUsage, Limits, Outcome, PacingConfig, UsageTracker};
use lbgpt_core::Usage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// A provider's way of enforcing one per-minute limit.
trait Enforcement {
    /// Whether a charge of `cost` arriving at `at` (seconds since start) is accepted.
    fn offer(&mut self, at: f64, cost: u64) -> bool;
}

/// At most `limit` in any `window` seconds.
struct Sliding {
    limit: u64,
    window: f64,
    charges: VecDeque<(f64, u64)>,
    sum: u64,
}

impl Sliding {
    fn new(limit: u64) -> Self {
        Sliding {
            limit,
            window: 60.0,
            charges: VecDeque::new(),
            sum: 0,
        }
    }
}

impl Enforcement for Sliding {
    fn offer(&mut self, at: f64, cost: u64) -> bool {
        while let Some(&(t, c)) = self.charges.front() {
            if t + self.window > at {
                break;
            }
            self.sum -= c;
            self.charges.pop_front();
        }
        if self.sum + cost > self.limit {
            return false;
        }
        self.sum += cost;
        self.charges.push_back((at, cost));
        true
    }
}

/// A bucket of `limit`, full at start, refilled at `limit / 60` per second.
struct Bucket {
    capacity: f64,
    level: f64,
    last: f64,
}

impl Bucket {
    fn new(limit: u64) -> Self {
        Bucket {
            capacity: limit as f64,
            level: limit as f64,
            last: 0.0,
        }
    }
}

impl Enforcement for Bucket {
    fn offer(&mut self, at: f64, cost: u64) -> bool {
        self.level = (self.level + (at - self.last) * self.capacity / 60.0).min(self.capacity);
        self.last = at;
        if self.level < cost as f64 {
            return false;
        }
        self.level -= cost as f64;
        true
    }
}

/// Back-to-back fixed windows of `length` seconds starting at `offset`, each allowing
/// `allowance`.
struct Fixed {
    allowance: u64,
    length: f64,
    offset: f64,
    window: i64,
    used: u64,
}

impl Fixed {
    /// Azure's: `limit / 6` per 10 s (rounded up, as the simulator does; Azure's RPM quotas
    /// are multiples of 6).
    fn azure(limit: u64, offset: f64) -> Self {
        Fixed {
            allowance: limit.div_ceil(6),
            length: 10.0,
            offset,
            window: i64::MIN,
            used: 0,
        }
    }
}

impl Enforcement for Fixed {
    fn offer(&mut self, at: f64, cost: u64) -> bool {
        let window = ((at - self.offset) / self.length).floor() as i64;
        if window != self.window {
            self.window = window;
            self.used = 0;
        }
        // A charge larger than a whole window fits an empty one (as the tracker assumes);
        // providers differ here, and the tests keep charges below that.
        if self.used + cost > self.allowance.max(cost) {
            return false;
        }
        self.used += cost;
        true
    }
}

/// One admitted request: seconds since start, tokens.
#[derive(Debug, Clone, Copy)]
struct Admission {
    at: f64,
    tokens: u64,
}

/// Requests `next()` back to back on `member` for `run`, waiting each refusal's `retry_at`,
/// settling each admission at once with the provider charging exactly the estimate.
async fn drive(
    usage: &InMemoryUsage,
    member: &str,
    run: Duration,
    mut next: impl FnMut() -> TokenEstimate,
) -> Vec<Admission> {
    let start = Instant::now();
    let mut admissions = Vec::new();
    let mut pending = next();
    while Instant::now() < start + run {
        match usage.try_reserve_estimate(member, pending).await {
            Ok(reservation) => {
                admissions.push(Admission {
                    at: (Instant::now() - start).as_secs_f64(),
                    tokens: reservation.tokens(),
                });
                let usage_report = Usage {
                    prompt_tokens: pending.prompt,
                    completion_tokens: pending.completion_budget,
                    total_tokens: pending.total(),
                    ..Usage::default()
                };
                usage.settle(
                    reservation,
                    Outcome::Answered {
                        usage: Some(usage_report),
                        rate_limit: None,
                    },
                );
                pending = next();
            }
            Err(unavailable) => {
                let at = unavailable
                    .retry_at
                    .expect("these requests always fit later");
                assert!(at > Instant::now(), "retry_at must lie in the future");
                tokio::time::sleep_until(at).await;
            }
        }
    }
    admissions
}

/// Arrival times at the provider: each admission delayed by up to `jitter` (random), sorted.
fn arrivals(admissions: &[Admission], jitter: Duration, seed: u64) -> Vec<Admission> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut arrivals: Vec<Admission> = admissions
        .iter()
        .map(|a| Admission {
            at: a.at + rng.random_range(0.0..=jitter.as_secs_f64()),
            tokens: a.tokens,
        })
        .collect();
    arrivals.sort_by(|a, b| a.at.total_cmp(&b.at));
    arrivals
}

/// Refusals of `enforcement` for the arrivals, charging `cost` of each.
fn refusals(
    mut enforcement: impl Enforcement,
    arrivals: &[Admission],
    cost: impl Fn(&Admission) -> u64,
) -> usize {
    arrivals
        .iter()
        .filter(|a| !enforcement.offer(a.at, cost(a)))
        .count()
}

/// Every enforcement mode of `limit` accepts every arrival.
fn assert_never_refused(arrivals: &[Admission], limit: u64, cost: impl Fn(&Admission) -> u64) {
    assert_eq!(
        refusals(Sliding::new(limit), arrivals, &cost),
        0,
        "sliding window refused"
    );
    assert_eq!(
        refusals(Bucket::new(limit), arrivals, &cost),
        0,
        "token bucket refused"
    );
    for offset in [0.0, 0.001, 2.5, 5.0, 7.31, 9.999] {
        assert_eq!(
            refusals(Fixed::azure(limit, offset), arrivals, &cost),
            0,
            "10 s windows at offset {offset} refused"
        );
    }
}

/// The most charges (by `cost`) within any `span` seconds.
fn peak(admissions: &[Admission], span: f64, cost: impl Fn(&Admission) -> u64) -> u64 {
    let mut window = VecDeque::new();
    let mut sum = 0;
    let mut best = 0;
    for a in admissions {
        window.push_back(*a);
        sum += cost(a);
        while let Some(front) = window.front() {
            if front.at + span > a.at {
                break;
            }
            sum -= cost(front);
            window.pop_front();
        }
        best = best.max(sum);
    }
    best
}

fn requests(_: &Admission) -> u64 {
    1
}

fn tokens(a: &Admission) -> u64 {
    a.tokens
}

const TWO_MINUTES: Duration = Duration::from_secs(120);
const JITTER: Duration = Duration::from_millis(50);

#[tokio::test(start_paused = true)]
async fn requests_are_spread_evenly_and_use_97_percent_of_the_limit() {
    let usage = InMemoryUsage::new(PacingConfig::default());
    usage.register("azure", Limits::none().rpm(600));
    let admissions = drive(&usage, "azure", TWO_MINUTES, || TokenEstimate::new(10, 10)).await;

    let total = admissions.len() as f64;
    eprintln!("requests: {total}");
    assert!(
        total >= 0.97 * 1200.0,
        "only {total} of 1200 in two minutes"
    );
    assert!(total <= 1200.0, "{total} is over the limit");
    assert!(peak(&admissions, 60.0, requests) <= 600);
    assert!(
        peak(&admissions, 10.0, requests) <= 100,
        "more than 100 in 10 s"
    );
    // Evenly: about 10 per second, never a burst.
    let per_second = peak(&admissions, 1.0, requests);
    assert!(per_second <= 11, "{per_second} within one second");
    let busiest_half_second = peak(&admissions, 0.5, requests);
    assert!(
        busiest_half_second <= 6,
        "{busiest_half_second} within 0.5 s"
    );

    assert_never_refused(&arrivals(&admissions, JITTER, 1), 600, requests);
}

#[tokio::test(start_paused = true)]
async fn small_token_charges_use_97_percent_of_the_tpm_and_are_never_refused() {
    let usage = InMemoryUsage::new(PacingConfig::default());
    usage.register("openai", Limits::none().tpm(100_000));
    let mut rng = StdRng::seed_from_u64(7);
    let admissions = drive(&usage, "openai", TWO_MINUTES, || {
        TokenEstimate::new(rng.random_range(20..200), rng.random_range(0..100))
    })
    .await;

    let charged: u64 = admissions.iter().map(|a| a.tokens).sum();
    eprintln!("small tokens: {charged}");
    assert!(
        charged as f64 >= 0.97 * 200_000.0,
        "only {charged} of 200000 tokens in two minutes"
    );
    assert!(peak(&admissions, 10.0, tokens) <= 100_000_u64.div_ceil(6));
    assert_never_refused(&arrivals(&admissions, JITTER, 2), 100_000, tokens);
}

#[tokio::test(start_paused = true)]
async fn both_limits_together_are_never_refused() {
    let usage = InMemoryUsage::new(PacingConfig::default());
    usage.register("both", Limits::none().rpm(300).tpm(60_000));
    let mut rng = StdRng::seed_from_u64(11);
    let admissions = drive(&usage, "both", TWO_MINUTES, || {
        TokenEstimate::new(rng.random_range(50..250), 100)
    })
    .await;
    let arrivals = arrivals(&admissions, JITTER, 3);
    assert_never_refused(&arrivals, 300, requests);
    assert_never_refused(&arrivals, 60_000, tokens);
    // Whichever limit binds is used to 97 %.
    let charged: u64 = admissions.iter().map(|a| a.tokens).sum();
    let used = (admissions.len() as f64 / 600.0).max(charged as f64 / 120_000.0);
    eprintln!("both: {used}");
    assert!(used >= 0.97, "used {used:.3} of the binding limit");
}

#[tokio::test(start_paused = true)]
async fn large_token_charges_are_never_refused() {
    // Charges up to a third of a 10 s window: short windows cannot be filled to 97 % by
    // requests this large (a window holds whole requests only), but never refuse one.
    let usage = InMemoryUsage::new(PacingConfig::default());
    usage.register("big", Limits::none().tpm(60_000));
    let mut rng = StdRng::seed_from_u64(13);
    let admissions = drive(&usage, "big", TWO_MINUTES, || {
        TokenEstimate::new(rng.random_range(100..2_000), rng.random_range(0..1_300))
    })
    .await;
    let charged: u64 = admissions.iter().map(|a| a.tokens).sum();
    eprintln!("large: {} requests, {charged} tokens", admissions.len());
    assert!(charged as f64 >= 0.85 * 120_000.0, "only {charged} tokens");
    assert_never_refused(&arrivals(&admissions, JITTER, 4), 60_000, tokens);
}

#[tokio::test(start_paused = true)]
async fn a_larger_burst_lets_more_go_at_once_but_stays_safe() {
    let pacing = PacingConfig::default().burst(Duration::from_secs(2));
    let usage = InMemoryUsage::new(pacing);
    usage.register("bursty", Limits::none().rpm(600));
    let admissions = drive(&usage, "bursty", TWO_MINUTES, || TokenEstimate::new(1, 0)).await;
    // A 2 s burst at 9.8 per second: 20 at the start.
    let at_start = admissions.iter().filter(|a| a.at == 0.0).count();
    assert_eq!(at_start, 20);
    assert!(admissions.len() as f64 >= 0.97 * 1200.0);
    assert_never_refused(&arrivals(&admissions, JITTER, 5), 600, requests);
}

#[tokio::test(start_paused = true)]
async fn one_second_short_windows_are_never_refused_either() {
    // Azure may enforce over 1 s windows: configure the short window accordingly.
    let pacing = PacingConfig::default().short_window(Some(Duration::from_secs(1)));
    let usage = InMemoryUsage::new(pacing);
    usage.register("strict", Limits::none().rpm(600));
    let admissions = drive(&usage, "strict", TWO_MINUTES, || TokenEstimate::new(1, 0)).await;
    let arrivals = arrivals(&admissions, JITTER, 6);
    for offset in [0.0, 0.25, 0.5, 0.999] {
        let one_second = Fixed {
            allowance: 10,
            length: 1.0,
            offset,
            window: i64::MIN,
            used: 0,
        };
        assert_eq!(refusals(one_second, &arrivals, requests), 0);
    }
    assert!(admissions.len() as f64 >= 0.94 * 1200.0);
}

#[tokio::test(start_paused = true)]
async fn unpaced_takes_the_whole_minute_at_once_and_only_a_sliding_window_accepts_it() {
    let usage = InMemoryUsage::new(PacingConfig::unpaced());
    usage.register("raw", Limits::none().rpm(600));
    let admissions = drive(&usage, "raw", TWO_MINUTES, || TokenEstimate::new(1, 0)).await;
    assert_eq!(admissions.iter().filter(|a| a.at == 0.0).count(), 600);
    assert_eq!(admissions.len(), 1200);
    let arrivals = arrivals(&admissions, JITTER, 7);
    assert_eq!(refusals(Sliding::new(600), &arrivals, requests), 0);
    // The reason pacing is on by default:
    assert!(refusals(Fixed::azure(600, 0.0), &arrivals, requests) > 0);
}
