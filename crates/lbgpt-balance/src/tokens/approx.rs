use super::{completion_budget, TokenEstimate, TokenEstimator};
use lbgpt_core::tokens::approx_prompt_tokens;
use lbgpt_core::ChatRequest;

/// Estimates prompt tokens without a tokenizer: [`approx_prompt_tokens`] (one token per four
/// bytes of text, four per message of framing, three for the reply's priming).
///
/// Costs next to nothing and is exactly what the simulator charges; against real providers
/// it is off by some percent either way, which the usage tracker's correction factor learns.
///
/// ```
/// use lbgpt_balance::tokens::{ApproxEstimator, TokenEstimator};
/// use lbgpt_core::{ChatMessage, ChatRequest};
///
/// let request = ChatRequest::new("gpt-4o", vec![ChatMessage::user("hello")]).max_tokens(50);
/// let estimate = ApproxEstimator::new().estimate(&request);
/// assert_eq!(estimate.prompt, 4 + 2 + 3);
/// assert_eq!(estimate.completion_budget, 50);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ApproxEstimator {
    default_completion_budget: u64,
}

impl ApproxEstimator {
    /// An estimator whose default completion budget (for requests without one) is 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The completion budget per choice assumed for requests that set neither
    /// `max_completion_tokens` nor `max_tokens` (default 0).
    pub fn default_completion_budget(mut self, tokens: u64) -> Self {
        self.default_completion_budget = tokens;
        self
    }
}

impl TokenEstimator for ApproxEstimator {
    fn estimate(&self, request: &ChatRequest) -> TokenEstimate {
        TokenEstimate {
            prompt: approx_prompt_tokens(request),
            completion_budget: completion_budget(request, self.default_completion_budget),
        }
    }
}
