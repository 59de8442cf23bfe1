//! [`BalancerBuilder`]: members, strategy, usage tracking and health settings.

use super::shared::{Settings, Shared};
use super::strategy::Strategy;
use super::{BalancedRequest, Balancer, BreakerConfig, Member};
use crate::tokens::TokenEstimator;
use crate::usage::{InMemoryUsage, PacingConfig, UsageTracker};
use lbgpt_core::{ChatRequest, Error};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Builds a [`Balancer`] of requests `R` (chat unless said otherwise; the members' services
/// decide it). Every setting has a default; only members are required.
///
/// ```
/// use lbgpt_balance::{Balancer, BreakerConfig, Member, Strategy};
/// use lbgpt_core::{ChatRequest, ChatResponse, Error};
/// use std::time::Duration;
/// use tower::service_fn;
///
/// let provider = service_fn(|_request: ChatRequest| async {
///     Err::<ChatResponse, Error>(Error::Cancelled) // stands in for an OpenAiService
/// });
/// let balancer = Balancer::builder()
///     .strategy(Strategy::RoundRobin)
///     .member(Member::new("openai-1", provider.clone()).weight(1.0).rpm(500).tpm(200_000))
///     .member(Member::new("openai-2", provider).weight(3.0))
///     .max_wait(Duration::from_secs(30))
///     .breaker(BreakerConfig { failures: 3, open_for: Duration::from_secs(10) })
///     .build()?;
/// assert_eq!(balancer.member_names(), ["openai-1", "openai-2"]);
///
/// // Mistakes are reported, not ignored (with no member to tell the request type, name it):
/// let error = Balancer::<ChatRequest>::builder().build().expect_err("no members");
/// assert!(error.to_string().contains("at least one member"));
/// # Ok::<(), Error>(())
/// ```
///
/// An embeddings balancer is built the same way, from embeddings services (a provider
/// service such as `lbgpt_openai::OpenAiService` serves every endpoint; name the type when
/// nothing else does):
///
/// ```
/// use lbgpt_balance::{Balancer, Member};
/// use lbgpt_core::{EmbeddingRequest, EmbeddingResponse, Error};
/// use tower::service_fn;
///
/// let embedder = service_fn(|_request: EmbeddingRequest| async {
///     Err::<EmbeddingResponse, Error>(Error::Cancelled) // stands in for an OpenAiService
/// });
/// let embeddings: Balancer<EmbeddingRequest> = Balancer::builder()
///     .member(Member::new("openai-1", embedder.clone()).rpm(3_000).tpm(1_000_000))
///     .member(Member::new("openai-2", embedder).rpm(3_000).tpm(1_000_000))
///     .build()?;
/// assert_eq!(embeddings.member_names(), ["openai-1", "openai-2"]);
/// # Ok::<(), Error>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct BalancerBuilder<R: BalancedRequest = ChatRequest> {
    strategy: Strategy<R>,
    usage: Option<Arc<dyn UsageTracker>>,
    estimator: Option<Arc<dyn TokenEstimator<R>>>,
    members: Vec<Member<R>>,
    settings: Settings,
}

impl<R: BalancedRequest> BalancerBuilder<R> {
    pub(crate) fn new() -> Self {
        BalancerBuilder {
            strategy: Strategy::default(),
            usage: None,
            estimator: None,
            members: Vec::new(),
            settings: Settings {
                max_wait: Duration::from_secs(60),
                breaker: BreakerConfig::default(),
                max_failovers: None,
                default_cooldown: Duration::from_secs(1),
                max_cooldown: Duration::from_secs(300),
                latency_decay: Duration::from_secs(10),
            },
        }
    }

    /// How members are picked (default [`Strategy::MaxHeadroom`]).
    pub fn strategy(mut self, strategy: Strategy<R>) -> Self {
        self.strategy = strategy;
        self
    }

    /// The usage tracker (default: a new [`InMemoryUsage`] with [`PacingConfig::default`],
    /// so each balancer, e.g. one per endpoint, counts its members' limits on its own).
    /// Share one tracker between balancers (or processes, with a shared implementation) to
    /// share the limits of the members they both name (same name, same limits).
    pub fn usage(mut self, usage: Arc<dyn UsageTracker>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// How a request's tokens are estimated for TPM limits (default:
    /// [`BalancedRequest::default_estimator`], a
    /// [`TiktokenEstimator`](crate::tokens::TiktokenEstimator) for the built-in request
    /// types). Only used for members with a `tpm` limit.
    pub fn estimator(mut self, estimator: Arc<dyn TokenEstimator<R>>) -> Self {
        self.estimator = Some(estimator);
        self
    }

    /// Adds a member.
    pub fn member(mut self, member: Member<R>) -> Self {
        self.members.push(member);
        self
    }

    /// Adds several members.
    pub fn members(mut self, members: impl IntoIterator<Item = Member<R>>) -> Self {
        self.members.extend(members);
        self
    }

    /// The longest a request waits, from the start of its call, for a member at its rate
    /// limit to have room again, or for a member cooling down or with an open breaker to come
    /// back (default 60 s). Beyond it the call fails at once with
    /// [`Error::NoMemberAvailable`] saying when capacity returns. `Duration::ZERO` never
    /// waits.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.settings.max_wait = max_wait;
        self
    }

    /// The per-member circuit breaker (default: 5 consecutive failures open it for 30 s).
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.settings.breaker = breaker;
        self
    }

    /// How many times one call may move on to another member after retryable failures
    /// (default: members - 1, i.e. each member once). Failovers away from a dead member
    /// are not counted: the request was not at fault.
    pub fn max_failovers(mut self, max_failovers: usize) -> Self {
        self.settings.max_failovers = Some(max_failovers);
        self
    }

    /// How long a member answering 429 without a `retry-after` is left alone (default 1 s).
    pub fn default_cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.default_cooldown = cooldown;
        self
    }

    /// The longest cooldown a `retry-after` can impose (default 5 min).
    pub fn max_cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.max_cooldown = cooldown;
        self
    }

    /// How fast the least-latency strategy forgets old latencies (the peak-EWMA's time
    /// constant, default 10 s).
    pub fn latency_decay(mut self, decay: Duration) -> Self {
        self.settings.latency_decay = decay;
        self
    }

    /// The balancer. [`Error::Config`] when there is no member, two members share a name,
    /// or a name, weight or limit is invalid.
    pub fn build(self) -> Result<Balancer<R>, Error> {
        if self.members.is_empty() {
            return Err(Error::Config(
                "balancer: at least one member is required".to_owned(),
            ));
        }
        let mut names = HashSet::new();
        for member in &self.members {
            member.validate()?;
            if !names.insert(Arc::clone(&member.name)) {
                return Err(Error::Config(format!(
                    "balancer: two members are named {:?}",
                    member.name
                )));
            }
        }
        let usage = self
            .usage
            .unwrap_or_else(|| Arc::new(InMemoryUsage::new(PacingConfig::default())));
        let estimator = self.estimator.unwrap_or_else(R::default_estimator);
        let shared = Arc::new(Shared::new(self.strategy, usage, estimator, self.settings));
        for member in self.members {
            shared.add(member)?;
        }
        Ok(Balancer { shared })
    }
}

impl<R: BalancedRequest> fmt::Debug for BalancerBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancerBuilder")
            .field("strategy", &self.strategy)
            .field("members", &self.members)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
