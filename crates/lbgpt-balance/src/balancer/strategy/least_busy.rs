//! [`LeastBusy`]: the fewest requests in flight.

use super::{random_among, usable_weight, Candidate, PickStrategy};

/// Picks the member with the lowest (requests in flight + 1) / weight, ties at random: with
/// equal weights, the member with the fewest requests in flight (LiteLLM's `least-busy`).
///
/// ```
/// use lbgpt_balance::balancer::strategy::LeastBusy;
/// use lbgpt_balance::{Candidate, PickStrategy};
/// use lbgpt_core::ChatRequest;
///
/// let request = ChatRequest::new("gpt-4o", vec![]);
/// let candidates = [
///     Candidate::new(1, "small").with_in_flight(2),
///     Candidate::new(2, "big").with_in_flight(4).with_weight(4.0),
/// ];
/// // small: 3 / 1 = 3; big: 5 / 4 = 1.25
/// assert_eq!(LeastBusy.pick(&candidates, &request), Some(1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastBusy;

impl LeastBusy {
    fn load(candidate: &Candidate<'_>) -> f64 {
        let weight = usable_weight(candidate);
        let busy = candidate.in_flight() as f64 + 1.0;
        if weight > 0.0 {
            busy / weight
        } else {
            busy
        }
    }
}

impl<R> PickStrategy<R> for LeastBusy {
    fn pick(&self, candidates: &[Candidate<'_>], _request: &R) -> Option<usize> {
        let lowest = candidates
            .iter()
            .map(Self::load)
            .fold(f64::INFINITY, f64::min);
        random_among(candidates.len(), |i| {
            Self::load(&candidates[i]) <= lowest + 1e-12
        })
    }

    fn needs_usage(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::ChatRequest;

    #[test]
    fn ties_are_spread() {
        let request = ChatRequest::new("m", vec![]);
        let candidates = [Candidate::new(1, "a"), Candidate::new(2, "b")];
        let picks: Vec<usize> = (0..100)
            .filter_map(|_| LeastBusy.pick(&candidates, &request))
            .collect();
        assert!(picks.contains(&0) && picks.contains(&1));
    }
}
