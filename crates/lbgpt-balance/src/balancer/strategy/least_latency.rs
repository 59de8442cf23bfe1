//! [`LeastLatency`]: power of two choices over peak-EWMA latency.

use super::{usable_weight, Candidate, PickStrategy};
use rand::Rng;

/// Power of two choices: draws two distinct members at random and takes the one with the
/// lower load, load being its peak-EWMA latency ([`Candidate::latency`], per output token
/// where answers report usage) x (requests in flight + 1) / weight.
///
/// Peak EWMA reacts to a slow answer at once and forgets it gradually; comparing two random
/// members instead of scanning for the global minimum avoids sending every request to the
/// one member that looked best a moment ago (tower's `p2c` + `PeakEwma`, linkerd, Helicone).
/// A member with no answer yet counts as fast as the fastest member known (zero when none is
/// known), so a new member gets tried without being flooded: its requests in flight still
/// raise its load.
///
/// ```
/// use lbgpt_balance::balancer::strategy::LeastLatency;
/// use lbgpt_balance::{Candidate, PickStrategy};
/// use lbgpt_core::ChatRequest;
/// use std::time::Duration;
///
/// let request = ChatRequest::new("gpt-4o", vec![]);
/// let candidates = [
///     Candidate::new(1, "slow").with_latency(Duration::from_millis(80)),
///     Candidate::new(2, "fast").with_latency(Duration::from_millis(10)).with_in_flight(2),
/// ];
/// // slow: 80 ms x 1; fast: 10 ms x 3
/// assert_eq!(LeastLatency.pick(&candidates, &request), Some(1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastLatency;

impl LeastLatency {
    fn load(candidate: &Candidate<'_>, unknown: f64) -> f64 {
        let latency = candidate.latency().map_or(unknown, |l| l.as_secs_f64());
        let busy = candidate.in_flight() as f64 + 1.0;
        let weight = usable_weight(candidate);
        let load = latency * busy;
        if weight > 0.0 {
            load / weight
        } else {
            load
        }
    }
}

impl<R> PickStrategy<R> for LeastLatency {
    fn pick(&self, candidates: &[Candidate<'_>], _request: &R) -> Option<usize> {
        let len = candidates.len();
        match len {
            0 => return None,
            1 => return Some(0),
            _ => {}
        }
        let unknown = candidates
            .iter()
            .filter_map(|c| c.latency())
            .min()
            .map_or(0.0, |l| l.as_secs_f64());
        let mut rng = rand::rng();
        let first = rng.random_range(0..len);
        let mut second = rng.random_range(0..len - 1);
        if second >= first {
            second += 1;
        }
        let a = Self::load(&candidates[first], unknown);
        let b = Self::load(&candidates[second], unknown);
        Some(if b < a { second } else { first })
    }

    fn needs_usage(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::ChatRequest;
    use std::time::Duration;

    #[test]
    fn the_faster_of_the_two_wins() {
        let request = ChatRequest::new("m", vec![]);
        let candidates = [
            Candidate::new(1, "slow").with_latency(Duration::from_millis(50)),
            Candidate::new(2, "fast").with_latency(Duration::from_millis(5)),
        ];
        for _ in 0..50 {
            assert_eq!(LeastLatency.pick(&candidates, &request), Some(1));
        }
    }

    #[test]
    fn a_new_member_counts_as_fast_as_the_fastest_known() {
        let request = ChatRequest::new("m", vec![]);
        let candidates = [
            Candidate::new(1, "busy").with_latency(Duration::from_millis(10)),
            Candidate::new(2, "new").with_in_flight(3),
        ];
        // new: 10 ms x 4 > busy: 10 ms x 1
        for _ in 0..20 {
            assert_eq!(LeastLatency.pick(&candidates, &request), Some(0));
        }
    }

    #[test]
    fn both_draws_are_distinct_and_cover_all_members() {
        let request = ChatRequest::new("m", vec![]);
        let candidates = [
            Candidate::new(1, "a"),
            Candidate::new(2, "b"),
            Candidate::new(3, "c"),
        ];
        let mut seen = [false; 3];
        for _ in 0..300 {
            seen[LeastLatency.pick(&candidates, &request).expect("a pick")] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
