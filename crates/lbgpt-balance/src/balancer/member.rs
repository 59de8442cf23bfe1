//! [`Member`]: a named provider service with its weight and limits, as given to the balancer.

use super::BalancedRequest;
use crate::usage::Limits;
use lbgpt_core::{ChatRequest, Error};
use std::fmt;
use std::sync::Arc;
use tower::util::BoxCloneService;
use tower::Service;

/// The boxed form in which the balancer keeps a member's service.
pub(crate) type BoxedService<R> = BoxCloneService<R, <R as BalancedRequest>::Response, Error>;

/// One member of a [`Balancer`](super::Balancer): a name, a provider service, a weight and
/// optional per-minute limits.
///
/// `R` is the request type the member serves (chat unless said otherwise; see
/// [`BalancedRequest`]); a provider service such as `lbgpt_openai::OpenAiService` serves
/// every endpoint, so the same service can be a member of a chat balancer and of an
/// embeddings balancer.
///
/// The name identifies the member in statistics, logs, errors, the usage tracker and
/// [`meta.member`](lbgpt_core::ResponseMeta::member) of its answers; it must be unique within
/// the balancer. The weight (default 1) steers the weighted strategies; a member of weight 0
/// is a standby that only gets requests when no member of positive weight can take them.
/// `rpm` / `tpm` are the limits the provider enforces on this key or deployment: the
/// balancer never sends more than that (see [`usage`](crate::usage)).
///
/// ```
/// use lbgpt_balance::Member;
/// use lbgpt_core::{ChatRequest, ChatResponse, Error};
/// use tower::service_fn;
///
/// let provider = service_fn(|_request: ChatRequest| async {
///     Err::<ChatResponse, Error>(Error::Cancelled) // stands in for an OpenAiService
/// });
/// let member = Member::new("openai-1", provider).weight(2.0).rpm(500).tpm(200_000);
/// assert_eq!(member.name(), "openai-1");
/// assert_eq!(member.limits().rpm, Some(500));
///
/// // An embeddings member: the request type follows from the service.
/// use lbgpt_core::{EmbeddingRequest, EmbeddingResponse};
/// let embedder = service_fn(|_request: EmbeddingRequest| async {
///     Err::<EmbeddingResponse, Error>(Error::Cancelled)
/// });
/// let member: Member<EmbeddingRequest> = Member::new("openai-1", embedder).rpm(3_000);
/// ```
pub struct Member<R: BalancedRequest = ChatRequest> {
    pub(crate) name: Arc<str>,
    pub(crate) service: BoxedService<R>,
    pub(crate) weight: f64,
    pub(crate) limits: Limits,
}

impl<R: BalancedRequest> Member<R> {
    /// A member named `name` that sends requests to `service`, weight 1, no limits.
    pub fn new<S>(name: impl Into<Arc<str>>, service: S) -> Self
    where
        S: Service<R, Response = R::Response, Error = Error> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        Member {
            name: name.into(),
            service: BoxCloneService::new(service),
            weight: 1.0,
            limits: Limits::none(),
        }
    }

    /// The weight for the weighted strategies (finite, >= 0; default 1).
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// The provider's requests-per-minute limit for this member.
    pub fn rpm(mut self, rpm: u64) -> Self {
        self.limits.rpm = Some(rpm);
        self
    }

    /// The provider's tokens-per-minute limit for this member.
    pub fn tpm(mut self, tpm: u64) -> Self {
        self.limits.tpm = Some(tpm);
        self
    }

    /// Both limits at once (replacing any set before).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The member's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Checks the name, weight and limits.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.name.trim().is_empty() {
            return Err(Error::Config("balancer: a member name is empty".to_owned()));
        }
        validate_weight(&self.name, self.weight)?;
        validate_limits(&self.name, &self.limits)
    }
}

/// Weights must be finite and not negative.
pub(crate) fn validate_weight(name: &str, weight: f64) -> Result<(), Error> {
    if weight.is_finite() && weight >= 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "balancer: member {name:?} has weight {weight}; a weight must be a finite number >= 0"
        )))
    }
}

/// A limit of zero would never admit anything: it is a mistake, not a setting.
pub(crate) fn validate_limits(name: &str, limits: &Limits) -> Result<(), Error> {
    for (label, value) in [("rpm", limits.rpm), ("tpm", limits.tpm)] {
        if value == Some(0) {
            return Err(Error::Config(format!(
                "balancer: member {name:?} has {label} = 0; leave the limit out for none"
            )));
        }
    }
    Ok(())
}

impl<R: BalancedRequest> fmt::Debug for Member<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}
