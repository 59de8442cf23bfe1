use super::{TokenEstimate, TokenEstimator};
use lbgpt_core::ArrivalCharge;

/// Estimates prompt tokens without a tokenizer, from the request's [`ArrivalCharge`]: one
/// token per four bytes of text (and one per token id), plus, for chat, four tokens of
/// framing per message and three for the reply's priming.
///
/// Costs next to nothing and is exactly what the simulator charges; against real providers
/// it is off by some percent either way, which the usage tracker's correction factor learns.
/// Works for every request type with an [`ArrivalCharge`]: chat, embeddings and legacy
/// completions.
///
/// ```
/// use lbgpt_balance::tokens::{ApproxEstimator, TokenEstimator};
/// use lbgpt_core::{ChatMessage, ChatRequest, CompletionRequest, EmbeddingRequest};
///
/// let request = ChatRequest::new("gpt-4o", vec![ChatMessage::user("hello")]).max_tokens(50);
/// let estimate = ApproxEstimator::new().estimate(&request);
/// assert_eq!(estimate.prompt, 4 + 2 + 3);
/// assert_eq!(estimate.completion_budget, 50);
///
/// let embed = EmbeddingRequest::new("text-embedding-3-small", vec!["hello", "abcdefgh"]);
/// assert_eq!(ApproxEstimator::new().estimate(&embed).total(), 2 + 2);
///
/// let complete = CompletionRequest::new("gpt-3.5-turbo-instruct", vec!["hello", "hi"]).n(2);
/// let estimator = ApproxEstimator::new().default_completion_budget(16);
/// assert_eq!(estimator.estimate(&complete).completion_budget, 16 * 2 * 2);
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

    /// The completion budget per choice assumed for chat and completions requests that set
    /// no budget of their own (default 0).
    pub fn default_completion_budget(mut self, tokens: u64) -> Self {
        self.default_completion_budget = tokens;
        self
    }
}

impl<R: ArrivalCharge> TokenEstimator<R> for ApproxEstimator {
    fn estimate(&self, request: &R) -> TokenEstimate {
        TokenEstimate {
            prompt: request.approx_prompt_charge(),
            completion_budget: request.completion_charge(self.default_completion_budget),
        }
    }
}
