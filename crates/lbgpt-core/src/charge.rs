//! [`ArrivalCharge`]: the tokens a provider counts against its limits when a request arrives,
//! estimated the same way for every endpoint.

use crate::tokens::approx_prompt_tokens;
use crate::{ChatRequest, CompletionRequest, EmbeddingRequest};

/// What a provider charges a request at arrival (Azure documents it; OpenAI counts
/// `max_tokens` the same way): the prompt's tokens plus the completion budget of every
/// choice. Estimated without a tokenizer ([`crate::tokens`]), exactly as `lbgpt-sim` charges.
pub trait ArrivalCharge {
    /// Estimated prompt tokens (every input or prompt together).
    fn approx_prompt_charge(&self) -> u64;

    /// The completion budget of every choice together; `default` stands in for an unset
    /// per-choice budget (0 charges none, as the simulator and Azure do).
    fn completion_charge(&self, default: u64) -> u64;

    /// Prompt plus completion budget.
    fn approx_arrival_charge(&self, default_budget: u64) -> u64 {
        self.approx_prompt_charge()
            .saturating_add(self.completion_charge(default_budget))
    }
}

impl ArrivalCharge for ChatRequest {
    fn approx_prompt_charge(&self) -> u64 {
        approx_prompt_tokens(self)
    }

    /// `max_completion_tokens`, else `max_tokens`, else `default`, times `n`.
    fn completion_charge(&self, default: u64) -> u64 {
        let per_choice = self.completion_budget().map_or(default, u64::from);
        per_choice.saturating_mul(u64::from(self.n.unwrap_or(1).max(1)))
    }
}

impl ArrivalCharge for EmbeddingRequest {
    fn approx_prompt_charge(&self) -> u64 {
        self.approx_prompt_tokens()
    }

    /// Embeddings generate no tokens: always 0.
    fn completion_charge(&self, _default: u64) -> u64 {
        0
    }
}

impl ArrivalCharge for CompletionRequest {
    fn approx_prompt_charge(&self) -> u64 {
        self.approx_prompt_tokens()
    }

    /// `max_tokens` (else `default`) times `n`, for every prompt.
    fn completion_charge(&self, default: u64) -> u64 {
        let per_choice = self.max_tokens.map_or(default, u64::from);
        per_choice
            .saturating_mul(u64::from(self.choices_per_prompt().max(1)))
            .saturating_mul(self.prompt_count() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatMessage;

    #[test]
    fn charges_follow_each_endpoint() {
        let chat = ChatRequest::new("m", vec![ChatMessage::user("abcd")])
            .max_tokens(10)
            .n(2);
        assert_eq!(chat.approx_arrival_charge(0), 4 + 1 + 3 + 20);
        let embed = EmbeddingRequest::new("m", vec!["abcd", "abcdefgh"]);
        assert_eq!(embed.approx_arrival_charge(100), 3);
        let complete = CompletionRequest::new("m", vec!["abcd", "ab"]).n(3);
        assert_eq!(complete.approx_arrival_charge(0), 2);
        assert_eq!(complete.approx_arrival_charge(16), 2 + 16 * 3 * 2);
        assert_eq!(
            complete.max_tokens(5).approx_arrival_charge(16),
            2 + 5 * 3 * 2
        );
    }
}
