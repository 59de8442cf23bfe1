//! [`WeightedRoundRobin`]: smooth weighted round robin.

use super::{usable_weight, Candidate, PickStrategy};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Smooth weighted round robin (as in nginx): every pick, each candidate's credit grows by
/// its weight, the candidate with the most credit is picked and pays back the total weight.
/// Over any run of picks each member gets its weight's share, and picks of the heavy members
/// are interleaved with the light ones rather than bunched (weights 5:1:1 give
/// `a a b a c a a`, not `a a a a a b c`). With equal weights it is plain round robin.
///
/// Members with zero weight are picked (in turn) only when every candidate has zero weight.
/// The rotation is shared by all clones of the balancer.
///
/// ```
/// use lbgpt_balance::balancer::strategy::WeightedRoundRobin;
/// use lbgpt_balance::{Candidate, PickStrategy};
/// use lbgpt_core::ChatRequest;
///
/// let rr = WeightedRoundRobin::default();
/// let request = ChatRequest::new("gpt-4o", vec![]);
/// let candidates = [
///     Candidate::new(1, "a").with_weight(2.0),
///     Candidate::new(2, "b").with_weight(1.0),
/// ];
/// let picks: Vec<&str> = (0..6)
///     .map(|_| candidates[rr.pick(&candidates, &request).expect("a pick")].name())
///     .collect();
/// assert_eq!(picks, ["a", "b", "a", "a", "b", "a"]);
/// ```
#[derive(Debug, Default)]
pub struct WeightedRoundRobin {
    /// Each member's current credit, by [`Candidate::id`].
    credit: Mutex<HashMap<u64, f64>>,
}

impl<R> PickStrategy<R> for WeightedRoundRobin {
    fn pick(&self, candidates: &[Candidate<'_>], _request: &R) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let all_zero = candidates.iter().all(|c| usable_weight(c) <= 0.0);
        let weight_of = |candidate: &Candidate<'_>| {
            if all_zero {
                1.0
            } else {
                usable_weight(candidate)
            }
        };
        let total: f64 = candidates.iter().map(weight_of).sum();

        let mut credit = self.credit.lock().unwrap_or_else(PoisonError::into_inner);
        let mut best: Option<(usize, f64)> = None;
        for (index, candidate) in candidates.iter().enumerate() {
            let weight = weight_of(candidate);
            if weight <= 0.0 {
                continue;
            }
            let entry = credit.entry(candidate.id()).or_insert(0.0);
            *entry += weight;
            if best.is_none_or(|(_, most)| *entry > most) {
                best = Some((index, *entry));
            }
        }
        let (index, _) = best?;
        if let Some(entry) = credit.get_mut(&candidates[index].id()) {
            *entry -= total;
        }
        // Forget members that left (removed, dead) once they clearly dominate the map.
        if credit.len() > 2 * candidates.len() + 16 {
            credit.retain(|id, _| candidates.iter().any(|c| c.id() == *id));
        }
        Some(index)
    }

    fn needs_usage(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::ChatRequest;

    fn names(rr: &WeightedRoundRobin, candidates: &[Candidate<'_>], n: usize) -> String {
        let request = ChatRequest::new("m", vec![]);
        (0..n)
            .map(|_| candidates[rr.pick(candidates, &request).expect("a pick")].name())
            .collect()
    }

    #[test]
    fn heavy_members_are_interleaved() {
        let rr = WeightedRoundRobin::default();
        let candidates = [
            Candidate::new(1, "a").with_weight(5.0),
            Candidate::new(2, "b").with_weight(1.0),
            Candidate::new(3, "c").with_weight(1.0),
        ];
        assert_eq!(names(&rr, &candidates, 14), "aabacaaaabacaa");
    }

    #[test]
    fn equal_weights_rotate_and_zero_weights_wait() {
        let rr = WeightedRoundRobin::default();
        let candidates = [
            Candidate::new(1, "a"),
            Candidate::new(2, "b"),
            Candidate::new(3, "z").with_weight(0.0),
        ];
        assert_eq!(names(&rr, &candidates, 6), "ababab");
        let standby = [
            Candidate::new(3, "z").with_weight(0.0),
            Candidate::new(4, "y").with_weight(0.0),
        ];
        assert_eq!(names(&rr, &standby, 4), "zyzy");
    }

    #[test]
    fn departed_members_are_forgotten() {
        let rr = WeightedRoundRobin::default();
        let request = ChatRequest::new("m", vec![]);
        for id in 0..100 {
            let candidates = [Candidate::new(id, "a"), Candidate::new(1000, "b")];
            rr.pick(&candidates, &request);
        }
        let credit = rr.credit.lock().expect("not poisoned");
        assert!(credit.len() <= 2 * 2 + 16 + 1, "{}", credit.len());
    }
}
