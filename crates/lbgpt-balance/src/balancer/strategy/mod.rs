//! How the balancer picks a member: the [`Strategy`] choice, the [`PickStrategy`] trait and
//! the built-in strategies.
//!
//! The balancer hands a strategy the members that can take a request right now (enabled,
//! not dead, not cooling down, breaker not open, not already tried for this request) as
//! [`Candidate`]s; the strategy returns the index of the one to try. If that member's usage
//! tracker says it has no room, the balancer removes it from the list and asks again, so a
//! strategy only ranks; it never has to check limits itself.
//!
//! Strategies are generic over the request type `R` (chat unless said otherwise), so a
//! custom one can look at the request; the built-in ones ignore it and serve every endpoint.
//! A custom strategy, here "prefer members whose name starts with `azure-`, else the least
//! busy", for chat requests:
//!
//! ```
//! use lbgpt_balance::{Candidate, PickStrategy, Strategy};
//! use lbgpt_core::ChatRequest;
//! use std::sync::Arc;
//!
//! #[derive(Debug)]
//! struct AzureFirst;
//!
//! impl PickStrategy for AzureFirst {
//!     fn pick(&self, candidates: &[Candidate<'_>], _request: &ChatRequest) -> Option<usize> {
//!         candidates
//!             .iter()
//!             .position(|c| c.name().starts_with("azure-"))
//!             .or_else(|| {
//!                 (0..candidates.len()).min_by_key(|&i| candidates[i].in_flight())
//!             })
//!     }
//!
//!     fn needs_usage(&self) -> bool {
//!         false // this strategy never looks at usage snapshots
//!     }
//! }
//!
//! let strategy = Strategy::Custom(Arc::new(AzureFirst));
//! let request = ChatRequest::new("gpt-4o", vec![]);
//! let candidates = [
//!     Candidate::new(1, "openai-1").with_in_flight(0),
//!     Candidate::new(2, "azure-eu").with_in_flight(7),
//! ];
//! assert_eq!(AzureFirst.pick(&candidates, &request), Some(1));
//! # let _ = strategy;
//! ```
//!
//! A strategy that does not look at the request serves every endpoint with one impl:
//!
//! ```
//! use lbgpt_balance::{Candidate, PickStrategy, Strategy};
//! use lbgpt_core::EmbeddingRequest;
//! use std::sync::Arc;
//!
//! #[derive(Debug)]
//! struct FirstListed;
//!
//! impl<R> PickStrategy<R> for FirstListed {
//!     fn pick(&self, _candidates: &[Candidate<'_>], _request: &R) -> Option<usize> {
//!         Some(0)
//!     }
//! }
//!
//! let for_embeddings: Strategy<EmbeddingRequest> = Strategy::Custom(Arc::new(FirstListed));
//! # let _ = for_embeddings;
//! ```

mod least_busy;
mod least_latency;
mod max_headroom;
mod weighted_random;
mod weighted_round_robin;

pub use least_busy::LeastBusy;
pub use least_latency::LeastLatency;
pub use max_headroom::MaxHeadroom;
pub use weighted_random::WeightedRandom;
pub use weighted_round_robin::WeightedRoundRobin;

use crate::usage::UsageSnapshot;
use lbgpt_core::{ChatRequest, Error};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Picks the member a request of type `R` (chat unless said otherwise) goes to.
///
/// Implementations must be cheap (they run on every request, under no lock of the
/// balancer's) and may keep their own state behind interior mutability. Return `None` to
/// decline every candidate: the request then fails with
/// [`Error::NoMemberAvailable`] unless a member was only at its limit (then it waits).
pub trait PickStrategy<R = ChatRequest>: Send + Sync + fmt::Debug + 'static {
    /// The index in `candidates` of the member to try; `candidates` is never empty.
    fn pick(&self, candidates: &[Candidate<'_>], request: &R) -> Option<usize>;

    /// Whether [`Candidate::usage`] must be filled in (it costs a look-up in the usage
    /// tracker per candidate and pick). True unless overridden.
    fn needs_usage(&self) -> bool {
        true
    }
}

/// A member that can take the request now, as a [`PickStrategy`] sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    id: u64,
    name: &'a str,
    weight: f64,
    in_flight: u64,
    usage: Option<UsageSnapshot>,
    latency: Option<Duration>,
    /// Position of the member in the balancer's member list.
    pub(crate) slot: usize,
}

impl<'a> Candidate<'a> {
    /// A candidate with weight 1, nothing in flight, no usage and no latency known; the
    /// balancer builds candidates itself, this is for testing strategies.
    pub fn new(id: u64, name: &'a str) -> Self {
        Candidate {
            id,
            name,
            weight: 1.0,
            in_flight: 0,
            usage: None,
            latency: None,
            slot: 0,
        }
    }

    /// With this weight.
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// With this many requests in flight.
    pub fn with_in_flight(mut self, in_flight: u64) -> Self {
        self.in_flight = in_flight;
        self
    }

    /// With this usage snapshot.
    pub fn with_usage(mut self, usage: UsageSnapshot) -> Self {
        self.usage = Some(usage);
        self
    }

    /// With this latency estimate.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// A number that identifies the member for the balancer's lifetime (a member removed and
    /// added again gets a new one); use it to keep per-member state in a strategy.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The member's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The member's weight (finite, >= 0; zero-weight members are only offered when no
    /// member with a positive weight can take the request).
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// Requests this balancer has in flight on the member.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// The usage tracker's view of the member, when the strategy
    /// [needs it](PickStrategy::needs_usage) and the tracker knows the member.
    pub fn usage(&self) -> Option<&UsageSnapshot> {
        self.usage.as_ref()
    }

    /// The member's peak-EWMA latency, per output token when its answers report usage, per
    /// request otherwise; `None` before its first answer.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// The fraction (0 to 1) of the member's per-minute capacity still free, in-flight
    /// reservations counted: the smaller of the request and token fractions
    /// ([`UsageSnapshot::headroom_fraction`]; 1 for a member without limits). `None` without
    /// a usage snapshot.
    pub fn headroom_fraction(&self) -> Option<f64> {
        self.usage
            .as_ref()
            .map(|usage| usage.headroom_fraction().clamp(0.0, 1.0))
    }
}

/// The strategy a [`Balancer`](super::Balancer) of requests `R` (chat unless said otherwise)
/// picks members with. Only [`Strategy::Custom`] depends on `R`.
///
/// Parses from the names the CLI and the Python seed use:
///
/// ```
/// use lbgpt_balance::Strategy;
///
/// let strategy: Strategy = "max_headroom".parse().expect("a known strategy");
/// assert_eq!(strategy.name(), "max_headroom");
/// assert_eq!("random".parse::<Strategy>().expect("seed name").name(), "weighted_random");
/// assert!("fastest".parse::<Strategy>().is_err());
/// ```
#[non_exhaustive]
pub enum Strategy<R = ChatRequest> {
    /// Random, in proportion to the members' weights ([`WeightedRandom`]).
    WeightedRandom,
    /// In turn, each member as often as its weight says, interleaved ([`WeightedRoundRobin`],
    /// smooth weighted round robin as in nginx).
    RoundRobin,
    /// The member with the largest fraction of its RPM/TPM capacity still free, in-flight
    /// reservations counted ([`MaxHeadroom`]). The default.
    MaxHeadroom,
    /// Power of two choices over peak-EWMA latency x requests in flight ([`LeastLatency`]).
    LeastLatency,
    /// The fewest requests in flight relative to weight ([`LeastBusy`]).
    LeastBusy,
    /// Your own [`PickStrategy`].
    Custom(Arc<dyn PickStrategy<R>>),
}

impl<R> Default for Strategy<R> {
    /// [`Strategy::MaxHeadroom`].
    fn default() -> Self {
        Strategy::MaxHeadroom
    }
}

impl<R> Clone for Strategy<R> {
    fn clone(&self) -> Self {
        match self {
            Strategy::WeightedRandom => Strategy::WeightedRandom,
            Strategy::RoundRobin => Strategy::RoundRobin,
            Strategy::MaxHeadroom => Strategy::MaxHeadroom,
            Strategy::LeastLatency => Strategy::LeastLatency,
            Strategy::LeastBusy => Strategy::LeastBusy,
            Strategy::Custom(custom) => Strategy::Custom(Arc::clone(custom)),
        }
    }
}

impl<R> fmt::Debug for Strategy<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::WeightedRandom => f.write_str("WeightedRandom"),
            Strategy::RoundRobin => f.write_str("RoundRobin"),
            Strategy::MaxHeadroom => f.write_str("MaxHeadroom"),
            Strategy::LeastLatency => f.write_str("LeastLatency"),
            Strategy::LeastBusy => f.write_str("LeastBusy"),
            Strategy::Custom(custom) => f.debug_tuple("Custom").field(custom).finish(),
        }
    }
}

impl Strategy {
    /// The names [`FromStr`] accepts (the same for every request type).
    pub const NAMES: &'static [&'static str] = &[
        "weighted_random",
        "random",
        "round_robin",
        "max_headroom",
        "least_latency",
        "least_busy",
    ];
}

impl<R> Strategy<R> {
    /// The strategy's name as [`FromStr`] accepts it (`custom` for [`Strategy::Custom`]).
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::WeightedRandom => "weighted_random",
            Strategy::RoundRobin => "round_robin",
            Strategy::MaxHeadroom => "max_headroom",
            Strategy::LeastLatency => "least_latency",
            Strategy::LeastBusy => "least_busy",
            Strategy::Custom(_) => "custom",
        }
    }

    /// The same built-in strategy for requests of type `T` (e.g. the strategy a
    /// configuration names, for an embeddings balancer); `None` for [`Strategy::Custom`],
    /// which is written for `R`.
    ///
    /// ```
    /// use lbgpt_balance::Strategy;
    /// use lbgpt_core::EmbeddingRequest;
    ///
    /// let configured: Strategy = "round_robin".parse().expect("a known strategy");
    /// let embeddings: Strategy<EmbeddingRequest> = configured.built_in_for().expect("built in");
    /// assert_eq!(embeddings.name(), "round_robin");
    /// ```
    pub fn built_in_for<T>(&self) -> Option<Strategy<T>> {
        Some(match self {
            Strategy::WeightedRandom => Strategy::WeightedRandom,
            Strategy::RoundRobin => Strategy::RoundRobin,
            Strategy::MaxHeadroom => Strategy::MaxHeadroom,
            Strategy::LeastLatency => Strategy::LeastLatency,
            Strategy::LeastBusy => Strategy::LeastBusy,
            Strategy::Custom(_) => return None,
        })
    }

    /// A fresh picker for this strategy (round robin keeps its rotation inside).
    pub(crate) fn picker(&self) -> Arc<dyn PickStrategy<R>> {
        match self {
            Strategy::WeightedRandom => Arc::new(WeightedRandom),
            Strategy::RoundRobin => Arc::new(WeightedRoundRobin::default()),
            Strategy::MaxHeadroom => Arc::new(MaxHeadroom),
            Strategy::LeastLatency => Arc::new(LeastLatency),
            Strategy::LeastBusy => Arc::new(LeastBusy),
            Strategy::Custom(custom) => Arc::clone(custom),
        }
    }
}

impl<R> fmt::Display for Strategy<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<R> FromStr for Strategy<R> {
    type Err = Error;

    /// `weighted_random` (or the seed's `random`), `round_robin`, `max_headroom`,
    /// `least_latency`, `least_busy`; `-` may stand for `_`, case is ignored.
    fn from_str(text: &str) -> Result<Self, Error> {
        let name = text.trim().to_ascii_lowercase().replace('-', "_");
        Ok(match name.as_str() {
            "weighted_random" | "random" => Strategy::WeightedRandom,
            "round_robin" => Strategy::RoundRobin,
            "max_headroom" => Strategy::MaxHeadroom,
            "least_latency" => Strategy::LeastLatency,
            "least_busy" => Strategy::LeastBusy,
            _ => {
                return Err(Error::Config(format!(
                    "unknown balancing strategy {text:?}; expected one of {}",
                    Strategy::NAMES.join(", ")
                )))
            }
        })
    }
}

/// Picks uniformly among the indices in `0..len` for which `is_best` holds, without
/// allocating; `None` when there is none.
pub(crate) fn random_among(len: usize, is_best: impl Fn(usize) -> bool) -> Option<usize> {
    use rand::Rng;
    let count = (0..len).filter(|&i| is_best(i)).count();
    if count == 0 {
        return None;
    }
    let mut nth = if count == 1 {
        0
    } else {
        rand::rng().random_range(0..count)
    };
    for i in 0..len {
        if is_best(i) {
            if nth == 0 {
                return Some(i);
            }
            nth -= 1;
        }
    }
    None
}

/// The weight a strategy should use: non-finite or negative weights count as zero.
pub(crate) fn usable_weight(candidate: &Candidate<'_>) -> f64 {
    let weight = candidate.weight();
    if weight.is_finite() && weight > 0.0 {
        weight
    } else {
        0.0
    }
}
