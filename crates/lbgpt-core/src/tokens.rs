//! Cheap token estimates that need no tokenizer.
//!
//! These follow OpenAI's rule of thumb (about four characters of English per token, plus a few
//! tokens of framing per message). They are what the simulator charges against its limits; the
//! balancer uses a real tokenizer where it matters.

use crate::ChatRequest;

/// Estimated tokens of `text`: one per four bytes, rounded up.
pub fn approx_text_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Estimated prompt tokens of a request: each message's text and name plus four tokens of
/// framing per message, plus three for the reply's priming.
pub fn approx_prompt_tokens(request: &ChatRequest) -> u64 {
    let per_message: u64 = request
        .messages
        .iter()
        .map(|message| {
            let text = match &message.content {
                Some(content) => approx_text_tokens(&content.text()),
                None => 0,
            };
            let name = message.name.as_deref().map_or(0, approx_text_tokens);
            4 + text + name
        })
        .sum();
    per_message + 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatMessage;

    #[test]
    fn longer_prompts_cost_more() {
        let short = ChatRequest::new("m", vec![ChatMessage::user("hi")]);
        let long = ChatRequest::new("m", vec![ChatMessage::user("hi ".repeat(100))]);
        assert_eq!(approx_prompt_tokens(&short), 4 + 1 + 3);
        assert_eq!(approx_prompt_tokens(&long), 4 + 75 + 3);
    }
}
