//! Token estimates: how many tokens a provider will charge a request at arrival.
//!
//! Providers count a request against their tokens-per-minute limit when it arrives, before
//! the answer is generated: the prompt's tokens plus the completion budget the request asks
//! for, once per choice. Azure documents this; OpenAI counts `max_tokens` the same way. The
//! balancer reserves such an estimate on a member before sending, and the usage tracker
//! corrects it with the provider's own count when the answer arrives.
//!
//! What counts, per endpoint:
//!
//! | endpoint | prompt | completion budget |
//! | --- | --- | --- |
//! | chat ([`ChatRequest`]) | every message, with framing | `max_completion_tokens`, else `max_tokens`, else the default, times `n` |
//! | embeddings ([`EmbeddingRequest`]) | every input | none: embeddings generate nothing |
//! | legacy completions ([`CompletionRequest`]) | every prompt | `max_tokens`, else the default, times `n`, times the number of prompts |
//!
//! A text input or prompt costs its tokens; one given as token ids costs one per id.
//!
//! - [`TiktokenEstimator`] counts text with OpenAI's tokenizer (`o200k_base` for the
//!   gpt-4o / gpt-4.1 / gpt-5 / o-series families, `cl100k_base` for everything else,
//!   embedding models included) and chat messages with the framing of OpenAI's cookbook.
//!   Works offline: the BPE tables are embedded.
//! - [`ApproxEstimator`] uses the request's [`ArrivalCharge`] (four bytes per token): free to
//!   compute, and exactly what the simulator charges.
//!
//! Both take the completion budget from [`ArrivalCharge::completion_charge`], with a
//! configurable default per choice (0 unless set: a request without a budget is charged its
//! prompt at arrival, as the simulator and Azure do).
//!
//! [`TokenEstimator`] is generic over the request type (chat by default) and object-safe: a
//! balancer of `R` keeps an `Arc<dyn TokenEstimator<R>>`.

mod approx;
mod bpe;
mod pretokenize;
mod tiktoken;

pub use approx::ApproxEstimator;
pub use tiktoken::{Encoding, TiktokenEstimator};

use lbgpt_core::{ArrivalCharge, ChatRequest};
#[cfg(doc)]
use lbgpt_core::{CompletionRequest, EmbeddingRequest};

/// What a provider will charge a request at arrival, split into the prompt and the
/// completion budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenEstimate {
    /// Prompt tokens: a chat request's messages with their framing, an embeddings request's
    /// inputs, a completions request's prompts.
    pub prompt: u64,
    /// The completion budget for all choices: the request's budget times `n` (and, for
    /// legacy completions, times the number of prompts); 0 for embeddings.
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

/// Estimates the tokens a provider charges a request of type `R` (chat unless said
/// otherwise) at arrival.
///
/// Object-safe: the balancer keeps one as `Arc<dyn TokenEstimator<R>>`. The built-in
/// estimators implement it for [`ChatRequest`], [`EmbeddingRequest`] and
/// [`CompletionRequest`]; an estimator of your own implements it for the request types it
/// knows.
///
/// ```
/// use lbgpt_balance::tokens::{TiktokenEstimator, TokenEstimator};
/// use lbgpt_core::{CompletionRequest, EmbeddingRequest};
/// use std::sync::Arc;
///
/// let estimator: Arc<dyn TokenEstimator<EmbeddingRequest>> = Arc::new(TiktokenEstimator::new());
/// let embed = EmbeddingRequest::new("text-embedding-3-small", vec!["hello world", "hi"]);
/// assert_eq!(estimator.estimate(&embed).prompt, 2 + 1);
/// assert_eq!(estimator.estimate(&embed).completion_budget, 0);
///
/// let complete = CompletionRequest::new("gpt-3.5-turbo-instruct", vec!["a", "b"]).max_tokens(10).n(2);
/// let estimate = TiktokenEstimator::new().estimate(&complete);
/// assert_eq!(estimate.completion_budget, 10 * 2 * 2);
/// ```
pub trait TokenEstimator<R = ChatRequest>: Send + Sync + std::fmt::Debug + 'static {
    /// Tokens the provider will charge `request` at arrival: its prompt and its completion
    /// budget (see the [module docs](self) for what each endpoint counts).
    fn estimate(&self, request: &R) -> TokenEstimate;
}

impl<R, E: TokenEstimator<R> + ?Sized> TokenEstimator<R> for std::sync::Arc<E> {
    fn estimate(&self, request: &R) -> TokenEstimate {
        (**self).estimate(request)
    }
}

impl<R, E: TokenEstimator<R> + ?Sized> TokenEstimator<R> for Box<E> {
    fn estimate(&self, request: &R) -> TokenEstimate {
        (**self).estimate(request)
    }
}

/// The completion budget of `request` for all its choices: `max_completion_tokens`, else
/// `max_tokens`, else `default`, times `n` (at least 1).
pub fn completion_budget(request: &ChatRequest, default: u64) -> u64 {
    request.completion_charge(default)
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
    fn the_approximate_estimate_is_the_arrival_charge_of_every_endpoint() {
        use lbgpt_core::{CompletionRequest, EmbeddingRequest};
        let estimator = ApproxEstimator::new().default_completion_budget(16);
        let chat = ChatRequest::new("gpt-4o", vec![ChatMessage::user("abcdefgh")]).n(2);
        assert_eq!(
            estimator.estimate(&chat).total(),
            chat.approx_arrival_charge(16)
        );
        assert_eq!(estimator.estimate(&chat).completion_budget, 32);
        let embed = EmbeddingRequest::new("text-embedding-3-small", vec!["abcd", "abcdefgh"]);
        assert_eq!(estimator.estimate(&embed), TokenEstimate::new(1 + 2, 0));
        let ids = EmbeddingRequest::new("text-embedding-3-small", vec![vec![1u32, 2, 3]]);
        assert_eq!(estimator.estimate(&ids), TokenEstimate::new(3, 0));
        let complete = CompletionRequest::new("davinci-002", vec!["abcd", "ab", "a"]).n(2);
        assert_eq!(
            estimator.estimate(&complete),
            TokenEstimate::new(3, 16 * 2 * 3)
        );
        assert_eq!(
            estimator
                .estimate(&complete.clone().max_tokens(5))
                .completion_budget,
            5 * 2 * 3
        );
    }

    #[test]
    fn total_adds_prompt_and_budget() {
        assert_eq!(TokenEstimate::new(10, 90).total(), 100);
        assert_eq!(TokenEstimate::new(u64::MAX, 1).total(), u64::MAX);
    }
}
