//! Helpers for the legacy completions cache tests: requests, what the simulator received,
//! and checks of answers against `lbgpt_sim::expected_completion_text`.

use lbgpt_core::{CompletionRequest, CompletionResponse, ResponseMeta, TextInput};
use lbgpt_sim::Simulator;

pub const MODEL: &str = "gpt-3.5-turbo-instruct";

/// The budget every test request sets (small, so some answers are cut: `finish_reason`).
pub const MAX_TOKENS: u32 = 12;

/// A request completing `prompt` (one text, a list, token ids) with [`MAX_TOKENS`].
pub fn complete(prompt: impl Into<TextInput>) -> CompletionRequest {
    CompletionRequest::new(MODEL, prompt).max_tokens(MAX_TOKENS)
}

/// The `prompt` of every legacy completions request the simulator received, in arrival
/// order, as sent.
pub fn received_prompts(sim: &Simulator) -> Vec<serde_json::Value> {
    sim.seen_requests()
        .iter()
        .filter(|seen| {
            seen.path.ends_with("/completions") && !seen.path.ends_with("/chat/completions")
        })
        .map(|seen| seen.body["prompt"].clone())
        .collect()
}

/// Checks `answer` holds `n` choices per prompt of `request`, prompt after prompt, each the
/// simulator's completion of that prompt under the request's `max_tokens` and `echo`.
pub fn assert_completes(answer: &CompletionResponse, request: &CompletionRequest) {
    let n = request.choices_per_prompt() as usize;
    let prompts = lbgpt_sim::input_texts(&request.prompt);
    let expected: Vec<String> = prompts
        .iter()
        .flat_map(|prompt| {
            let (text, _) = lbgpt_sim::expected_completion_text(
                prompt,
                request.max_tokens,
                request.echo == Some(true),
            );
            std::iter::repeat_n(text, n)
        })
        .collect();
    assert_eq!(answer.texts(), expected, "texts of {request:?}");
    let indices: Vec<u32> = answer.choices.iter().map(|c| c.index).collect();
    let in_order: Vec<u32> = (0..expected.len() as u32).collect();
    assert_eq!(indices, in_order, "choice indices of {request:?}");
}

/// `answer` without lbgpt's metadata: what the provider sent (to compare a hit with the
/// answer it was stored from).
pub fn wire(answer: &CompletionResponse) -> CompletionResponse {
    CompletionResponse {
        meta: ResponseMeta::default(),
        ..answer.clone()
    }
}
