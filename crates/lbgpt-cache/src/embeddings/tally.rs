//! How one request's inputs were answered, counted per input into
//! [`CacheStats`](crate::CacheStats), whether the request succeeded or failed.

use super::plan::Plan;
use crate::stats::Counters;

/// The way a distinct input of a request took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Found in the store (by this request's lookup, or the second look of a batch it waited
    /// for).
    Store,
    /// Sent upstream by this request.
    Upstream,
    /// Answered by the upstream call of a concurrent request sending it.
    Shared,
}

/// Per-input counts of one request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Inputs answered from the store (every position holding them).
    pub(crate) hits: u64,
    /// Inputs this request sent upstream (each distinct input once).
    pub(crate) misses: u64,
    /// Inputs answered by an upstream call without being sent for them: repeats of an input
    /// this request sent, and inputs a concurrent request sent.
    pub(crate) coalesced: u64,
}

impl Tally {
    /// The counts of a request described by `plan` whose distinct inputs took `routes`.
    pub(crate) fn of(plan: &Plan, routes: &[Route]) -> Tally {
        let mut tally = Tally::default();
        for (input, route) in plan.distinct.iter().zip(routes) {
            let positions = input.positions as u64;
            match route {
                Route::Store => tally.hits += positions,
                Route::Upstream => {
                    tally.misses += 1;
                    tally.coalesced += positions.saturating_sub(1);
                }
                Route::Shared => tally.coalesced += positions,
            }
        }
        tally
    }

    /// Adds the counts to `counters`.
    pub(crate) fn record(self, counters: &Counters) {
        Counters::add_n(&counters.hits, self.hits);
        Counters::add_n(&counters.misses, self.misses);
        Counters::add_n(&counters.coalesced, self.coalesced);
    }
}
