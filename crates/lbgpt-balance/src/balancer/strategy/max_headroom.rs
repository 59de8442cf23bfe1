//! [`MaxHeadroom`]: the member with the most capacity left.

use super::{random_among, usable_weight, Candidate, PickStrategy};

/// Picks the member with the largest fraction of its per-minute capacity still free
/// ([`Candidate::headroom_fraction`]: requests and tokens, in-flight reservations counted),
/// scaled by its weight. A member without limits counts as fully free. Ties go to the member
/// with fewer requests in flight, then to a random one.
///
/// Using fractions rather than absolute headroom keeps members of different sizes busy in
/// proportion to their limits: a 40k TPM key takes twice the traffic of a 20k TPM key.
/// The seed's `max_headroom`, without its defects: in-flight requests count, and when no
/// member has room the balancer waits for the computed moment one will instead of polling.
///
/// ```
/// use lbgpt_balance::balancer::strategy::MaxHeadroom;
/// use lbgpt_balance::{Candidate, PickStrategy};
/// use lbgpt_core::ChatRequest;
///
/// let request = ChatRequest::new("gpt-4o", vec![]);
/// // Without usage data every member counts as fully free: the least busy wins.
/// let candidates = [
///     Candidate::new(1, "a").with_in_flight(3),
///     Candidate::new(2, "b").with_in_flight(1),
/// ];
/// assert_eq!(MaxHeadroom.pick(&candidates, &request), Some(1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MaxHeadroom;

impl MaxHeadroom {
    fn score(candidate: &Candidate<'_>) -> f64 {
        candidate.headroom_fraction().unwrap_or(1.0) * usable_weight(candidate)
    }
}

impl<R> PickStrategy<R> for MaxHeadroom {
    fn pick(&self, candidates: &[Candidate<'_>], _request: &R) -> Option<usize> {
        let best = candidates
            .iter()
            .map(Self::score)
            .fold(f64::NEG_INFINITY, f64::max);
        let tolerance = 1e-9;
        let is_top = |i: usize| Self::score(&candidates[i]) >= best - tolerance;
        let least_busy = (0..candidates.len())
            .filter(|&i| is_top(i))
            .map(|i| candidates[i].in_flight())
            .min()?;
        random_among(candidates.len(), |i| {
            is_top(i) && candidates[i].in_flight() == least_busy
        })
    }
}
