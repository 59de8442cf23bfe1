//! [`WeightedRandom`]: random picks in proportion to weight.

use super::{usable_weight, Candidate, PickStrategy};
use rand::Rng;

/// Picks a member at random, each with probability weight / sum of weights (uniformly when
/// every weight is zero). The seed's `random` allocation with `allocation_function_weights`.
///
/// ```
/// use lbgpt_balance::balancer::strategy::WeightedRandom;
/// use lbgpt_balance::{Candidate, PickStrategy};
/// use lbgpt_core::ChatRequest;
///
/// let request = ChatRequest::new("gpt-4o", vec![]);
/// let candidates = [
///     Candidate::new(1, "never").with_weight(0.0),
///     Candidate::new(2, "always").with_weight(2.5),
/// ];
/// assert_eq!(WeightedRandom.pick(&candidates, &request), Some(1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightedRandom;

impl<R> PickStrategy<R> for WeightedRandom {
    fn pick(&self, candidates: &[Candidate<'_>], _request: &R) -> Option<usize> {
        match candidates.len() {
            0 => return None,
            1 => return Some(0),
            _ => {}
        }
        let total: f64 = candidates.iter().map(usable_weight).sum();
        let mut rng = rand::rng();
        if total <= 0.0 || !total.is_finite() {
            return Some(rng.random_range(0..candidates.len()));
        }
        let mut point = rng.random::<f64>() * total;
        let mut last_positive = 0;
        for (index, candidate) in candidates.iter().enumerate() {
            let weight = usable_weight(candidate);
            if weight > 0.0 {
                if point < weight {
                    return Some(index);
                }
                point -= weight;
                last_positive = index;
            }
        }
        // Rounding left `point` a hair above the last weight.
        Some(last_positive)
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
    fn picks_follow_the_weights() {
        let request = ChatRequest::new("m", vec![]);
        let candidates = [
            Candidate::new(1, "a").with_weight(1.0),
            Candidate::new(2, "b").with_weight(3.0),
        ];
        let mut counts = [0u32; 2];
        for _ in 0..8000 {
            let index = WeightedRandom.pick(&candidates, &request).expect("a pick");
            counts[index] += 1;
        }
        // Expected 2000 / 6000, standard deviation about 39.
        assert!((1800..=2200).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn all_zero_weights_pick_uniformly() {
        let request = ChatRequest::new("m", vec![]);
        let candidates = [
            Candidate::new(1, "a").with_weight(0.0),
            Candidate::new(2, "b").with_weight(0.0),
        ];
        let picks: Vec<usize> = (0..200)
            .filter_map(|_| WeightedRandom.pick(&candidates, &request))
            .collect();
        assert!(picks.contains(&0) && picks.contains(&1));
    }
}
