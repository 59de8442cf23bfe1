//! Deterministic answers derived from the request.
//!
//! The answer to a request is a pure function of its `model` and `messages`, so a test can
//! check that each answer belongs to its request with [`expected_answer`].

use crate::rng::{fnv1a, FNV_OFFSET};
use lbgpt_core::tokens::approx_text_tokens;
use lbgpt_core::{ChatRequest, Role};

/// How many characters of the last user message the answer echoes.
const ECHO_CHARS: usize = 64;

/// The FNV-1a 64-bit hash of the request's `model` and `messages` that names an answer.
///
/// The messages are hashed in their canonical JSON form (`serde_json::Value` with sorted
/// object keys), so the hash is the same whether computed on the client's request or on the
/// request the simulator parsed from the wire.
pub fn request_hash(request: &ChatRequest) -> u64 {
    let messages = serde_json::to_value(&request.messages)
        .map(|value| value.to_string())
        .unwrap_or_default();
    let hash = fnv1a(FNV_OFFSET, request.model.as_bytes());
    let hash = fnv1a(hash, &[0xFF]);
    fnv1a(hash, messages.as_bytes())
}

/// The answer's text before any `max_tokens` cut:
/// `"Simulated answer {hash:016x} to: {echo}"`, where `echo` is the first 64 characters of the
/// last user message's text (followed by `...` when longer), or `(no user message)`.
pub fn full_answer(request: &ChatRequest) -> String {
    let hash = request_hash(request);
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == Role::User)
        .map(|message| message.text());
    let echo = match last_user {
        None => "(no user message)".to_owned(),
        Some(text) => {
            let mut chars = text.chars();
            let head: String = chars.by_ref().take(ECHO_CHARS).collect();
            if chars.next().is_some() {
                format!("{head}...")
            } else {
                head
            }
        }
    };
    format!("Simulated answer {hash:016x} to: {echo}")
}

/// The exact `content` of every choice the simulator answers `request` with.
///
/// That is [`full_answer`], cut when the request's completion budget
/// (`max_completion_tokens`, else `max_tokens`) is smaller than the full answer's approximate
/// tokens ([`approx_text_tokens`], one per four bytes): the cut answer is the longest prefix of
/// at most `budget x 4` bytes that ends on a character boundary, and its `finish_reason` is
/// `"length"` (else `"stop"`).
///
/// For an Azure request whose body has no `model`, the simulator uses the deployment name as
/// the model; compute the expectation on a request with that model.
///
/// ```
/// use lbgpt_core::{ChatMessage, ChatRequest};
///
/// let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")]);
/// let answer = lbgpt_sim::expected_answer(&request);
/// assert!(answer.starts_with("Simulated answer "));
/// assert!(answer.ends_with(" to: Hello!"));
///
/// let short = request.clone().max_tokens(2);
/// assert_eq!(lbgpt_sim::expected_answer(&short), "Simulate");
/// ```
pub fn expected_answer(request: &ChatRequest) -> String {
    answer_for(request).content
}

/// A computed answer: its content and whether the budget cut it.
pub(crate) struct Answer {
    pub(crate) content: String,
    pub(crate) truncated: bool,
}

pub(crate) fn answer_for(request: &ChatRequest) -> Answer {
    let full = full_answer(request);
    match request.completion_budget() {
        Some(budget) if approx_text_tokens(&full) > u64::from(budget) => {
            let max_bytes = usize::try_from(budget)
                .unwrap_or(usize::MAX)
                .saturating_mul(4);
            let mut end = max_bytes.min(full.len());
            while !full.is_char_boundary(end) {
                end -= 1;
            }
            Answer {
                content: full[..end].to_owned(),
                truncated: true,
            }
        }
        _ => Answer {
            content: full,
            truncated: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::ChatMessage;

    fn request(text: &str) -> ChatRequest {
        ChatRequest::new(
            "m",
            vec![ChatMessage::system("sys"), ChatMessage::user(text)],
        )
    }

    #[test]
    fn answers_differ_by_messages_and_model() {
        let a = expected_answer(&request("one"));
        let b = expected_answer(&request("two"));
        let mut other_model = request("one");
        other_model.model = "n".into();
        assert_ne!(a, b);
        assert_ne!(a, expected_answer(&other_model));
        assert_eq!(a, expected_answer(&request("one")));
    }

    #[test]
    fn long_messages_are_echoed_in_part() {
        let text = "x".repeat(100);
        let answer = expected_answer(&request(&text));
        assert!(answer.ends_with(&format!("{}...", "x".repeat(64))));
    }

    #[test]
    fn the_budget_cuts_on_a_character_boundary() {
        let long = request(&"é".repeat(40)).max_completion_tokens(9);
        let answer = answer_for(&long);
        assert!(answer.truncated);
        assert!(answer.content.len() <= 36);
        assert!(approx_text_tokens(&answer.content) <= 9);
        let roomy = request("hi").max_tokens(1_000);
        assert!(!answer_for(&roomy).truncated);
    }

    #[test]
    fn hash_survives_a_wire_round_trip() {
        let original = request("round trip");
        let wire = serde_json::to_string(&original).expect("serialises");
        let parsed: ChatRequest = serde_json::from_str(&wire).expect("parses");
        assert_eq!(request_hash(&original), request_hash(&parsed));
    }
}
