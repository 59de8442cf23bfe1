//! Token estimates: how many tokens a provider will charge a request at arrival.
//!
//! Providers count a request against their tokens-per-minute limit when it arrives, before
//! the answer is generated: the prompt's tokens plus the completion budget the request asks
//! for (`max_completion_tokens`, else `max_tokens`), once per choice (`n`). Azure documents
//! this; OpenAI counts `max_tokens` the same way. The balancer reserves such an estimate on a
//! member before sending, and the usage tracker corrects it with the provider's own count
//! when the answer arrives.
//!
//! - [`TiktokenEstimator`] counts the prompt with OpenAI's tokenizer (`o200k_base` for the
//!   gpt-4o / gpt-4.1 / gpt-5 / o-series families, `cl100k_base` for everything else) and the
//!   message framing of OpenAI's cookbook. Works offline: the BPE tables are embedded.
//! - [`ApproxEstimator`] uses [`lbgpt_core::tokens::approx_prompt_tokens`] (four bytes per
//!   token): free to compute, and exactly what the simulator charges.
//!
//! Both use the same completion budget: `max_completion_tokens`, else `max_tokens`, else a
//! configurable default (0 unless set: a request without a budget is charged its prompt at
//! arrival, as the simulator and Azure do), times `n`.

mod approx;
mod tiktoken;

pub use approx::ApproxEstimator;
pub use tiktoken::{Encoding, TiktokenEstimator};

use lbgpt_core::ChatRequest;

/// What a provider will charge a request at arrival, split into the prompt and the
/// completion budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenEstimate {
    /// Prompt tokens, with message framing.
    pub prompt: u64,
    /// The completion budget for all choices: the request's budget times `n`.
    pub completion_budget: u64,
}

impl TokenEstimate {
    /// An estimate of `prompt` tokens and a completion budget of `completion_budget` tokens.
    pub fn new(prompt: u64, completion_budget: u64) -> Self {
        TokenEstimate {
            prompt,
            completion_budget,
        }
    }

    /// Prompt plus completion budget: what the provider charges at arrival.
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion_budget)
    }
}

/// Estimates the tokens a provider charges a request at arrival.
pub trait TokenEstimator: Send + Sync + std::fmt::Debug + 'static {
    /// Tokens the provider will charge at arrival: prompt + completion budget x n.
    fn estimate(&self, request: &ChatRequest) -> TokenEstimate;
}

impl<E: TokenEstimator + ?Sized> TokenEstimator for std::sync::Arc<E> {
    fn estimate(&self, request: &ChatRequest) -> TokenEstimate {
        (**self).estimate(request)
    }
}

impl<E: TokenEstimator + ?Sized> TokenEstimator for Box<E> {
    fn estimate(&self, request: &ChatRequest) -> TokenEstimate {
        (**self).estimate(request)
    }
}

/// The completion budget of `request` for all its choices: `max_completion_tokens`, else
/// `max_tokens`, else `default`, times `n` (at least 1).
pub fn completion_budget(request: &ChatRequest, default: u64) -> u64 {
    let per_choice = request.completion_budget().map_or(default, u64::from);
    let choices = u64::from(request.n.unwrap_or(1).max(1));
    per_choice.saturating_mul(choices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::ChatMessage;

    #[test]
    fn completion_budget_prefers_max_completion_tokens_and_multiplies_by_n() {
        let request = ChatRequest::new("gpt-4o", vec![ChatMessage::user("hi")]);
        assert_eq!(completion_budget(&request, 0), 0);
        assert_eq!(completion_budget(&request, 64), 64);
        let request = request.max_tokens(100);
        assert_eq!(completion_budget(&request, 64), 100);
        let request = request.max_completion_tokens(30).n(3);
        assert_eq!(completion_budget(&request, 64), 90);
    }

    #[test]
    fn total_adds_prompt_and_budget() {
        assert_eq!(TokenEstimate::new(10, 90).total(), 100);
        assert_eq!(TokenEstimate::new(u64::MAX, 1).total(), u64::MAX);
    }
}
