//! Deterministic answers of the embeddings and legacy completions endpoints.
//!
//! An embedding is a pure function of the input text (and the dimension asked for); a
//! completion's text a pure function of the prompt, so tests can check each answer belongs to
//! its input with [`expected_embedding`] and [`expected_completion`].

use crate::rng::{fnv1a, FNV_OFFSET};
use lbgpt_core::tokens::approx_text_tokens;
use lbgpt_core::{CompletionRequest, EmbeddingRequest, TextInput};
use serde_json::{json, Value};

/// The dimension of the simulator's embeddings when the request names none.
pub const EMBEDDING_DIMENSIONS: usize = 16;

/// The largest `dimensions` the simulator accepts.
pub const MAX_EMBEDDING_DIMENSIONS: u32 = 4096;

/// How many characters of the prompt a completion echoes.
const ECHO_CHARS: usize = 64;

/// The embedding the simulator answers for `text`: [`EMBEDDING_DIMENSIONS`] numbers derived
/// from an FNV-1a hash of the text, L2-normalised (so the cosine similarity of two
/// embeddings is their dot product, and equal texts have similarity 1).
///
/// ```
/// let a = lbgpt_sim::expected_embedding("hello");
/// assert_eq!(a.len(), 16);
/// let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
/// assert!((norm - 1.0).abs() < 1e-5);
/// assert_eq!(a, lbgpt_sim::expected_embedding("hello"));
/// assert_ne!(a, lbgpt_sim::expected_embedding("hello!"));
/// ```
pub fn expected_embedding(text: &str) -> Vec<f32> {
    expected_embedding_with_dimensions(text, EMBEDDING_DIMENSIONS)
}

/// [`expected_embedding`] with `dimensions` numbers (what a request with `dimensions` set
/// gets).
pub fn expected_embedding_with_dimensions(text: &str, dimensions: usize) -> Vec<f32> {
    let seed = fnv1a(FNV_OFFSET, text.as_bytes());
    let raw: Vec<f64> = (0..dimensions)
        .map(|i| {
            let hash = fnv1a(fnv1a(seed, &(i as u64).to_le_bytes()), &[0xA5]);
            // The top 53 bits as a fraction in [0, 1), mapped to [-1, 1).
            (hash >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    let norm = if norm > 0.0 { norm } else { 1.0 };
    raw.iter().map(|x| (x / norm) as f32).collect()
}

/// The text a token-id input or prompt stands for in the simulator: the ids in decimal,
/// separated by spaces (the simulator has no tokenizer).
pub fn tokens_text(tokens: &[u32]) -> String {
    tokens
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each input of a [`TextInput`] as text, in order (token ids via [`tokens_text`]).
pub fn input_texts(input: &TextInput) -> Vec<String> {
    input
        .split()
        .into_iter()
        .map(|one| match one {
            TextInput::Text(text) => text,
            TextInput::Tokens(tokens) => tokens_text(&tokens),
            TextInput::Texts(mut texts) => texts.pop().unwrap_or_default(),
            TextInput::TokenLists(mut lists) => tokens_text(&lists.pop().unwrap_or_default()),
        })
        .collect()
}

/// The completion text the simulator answers for `prompt` before any `max_tokens` cut:
/// `"Simulated completion {hash:016x} of: {echo}"`, where `hash` is the FNV-1a hash of the
/// prompt and `echo` its first 64 characters (followed by `...` when longer).
///
/// Every one of the `n` choices for that prompt has this text, cut to `max_tokens x 4` bytes
/// (on a character boundary, `finish_reason` `"length"`) when `max_tokens` is smaller than
/// its approximate tokens; with `echo: true` the prompt comes first. See
/// [`expected_completion_text`].
///
/// ```
/// let text = lbgpt_sim::expected_completion("Once upon a time");
/// assert!(text.starts_with("Simulated completion "));
/// assert!(text.ends_with(" of: Once upon a time"));
/// ```
pub fn expected_completion(prompt: &str) -> String {
    let hash = fnv1a(fnv1a(FNV_OFFSET, b"completion"), prompt.as_bytes());
    let mut chars = prompt.chars();
    let head: String = chars.by_ref().take(ECHO_CHARS).collect();
    let echo = if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    };
    format!("Simulated completion {hash:016x} of: {echo}")
}

/// The exact text of every choice the simulator answers for `prompt` in a request with
/// these `max_tokens` and `echo` settings, and whether `max_tokens` cut it.
pub fn expected_completion_text(
    prompt: &str,
    max_tokens: Option<u32>,
    echo: bool,
) -> (String, bool) {
    let full = expected_completion(prompt);
    let (text, truncated) = match max_tokens {
        Some(budget) if approx_text_tokens(&full) > u64::from(budget) => {
            let mut end = usize::try_from(budget)
                .unwrap_or(usize::MAX)
                .saturating_mul(4)
                .min(full.len());
            while !full.is_char_boundary(end) {
                end -= 1;
            }
            (full[..end].to_owned(), true)
        }
        _ => (full, false),
    };
    if echo {
        (format!("{prompt}{text}"), truncated)
    } else {
        (text, truncated)
    }
}

/// Little-endian `f32` bytes in standard base64 with padding (the API's `"base64"` format).
pub(crate) fn base64_f32(values: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The JSON answer to an embeddings request, with `prompt_tokens` as charged.
pub(crate) fn embeddings_body(
    request: &EmbeddingRequest,
    model: &str,
    prompt_tokens: u64,
) -> Value {
    let dimensions = request
        .dimensions
        .map_or(EMBEDDING_DIMENSIONS, |d| d as usize);
    let base64 = request.encoding_format.as_deref() == Some("base64");
    let data: Vec<Value> = input_texts(&request.input)
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = expected_embedding_with_dimensions(text, dimensions);
            let embedding = if base64 {
                Value::String(base64_f32(&vector))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
}

/// The JSON answer to a completions request and its completion tokens.
pub(crate) fn completions_body(
    request: &CompletionRequest,
    model: &str,
    prompt_tokens: u64,
    created: u64,
) -> (Value, u64) {
    let n = request.n.unwrap_or(1);
    let echo = request.echo == Some(true);
    let mut choices = Vec::new();
    let mut completion_tokens = 0;
    for (prompt_index, prompt) in input_texts(&request.prompt).iter().enumerate() {
        let (text, truncated) = expected_completion_text(prompt, request.max_tokens, echo);
        let tokens = approx_text_tokens(&text);
        for j in 0..n {
            completion_tokens += tokens;
            choices.push(json!({
                "text": text,
                "index": prompt_index as u64 * u64::from(n) + u64::from(j),
                "logprobs": null,
                "finish_reason": if truncated { "length" } else { "stop" },
            }));
        }
    }
    let prompt_json = serde_json::to_string(&request.prompt).unwrap_or_default();
    let hash = fnv1a(
        fnv1a(FNV_OFFSET, request.model.as_bytes()),
        prompt_json.as_bytes(),
    );
    let body = json!({
        "id": format!("cmpl-sim-{hash:016x}"),
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_lbgpt_sim",
    });
    (body, completion_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        // 0.5f32 = 00 00 00 3f, -0.25f32 = 00 00 80 be
        assert_eq!(base64_f32(&[0.5, -0.25]), "AAAAPwAAgL4=");
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
    }

    #[test]
    fn embeddings_differ_and_are_normalised() {
        let a = expected_embedding_with_dimensions("a", 64);
        let b = expected_embedding_with_dimensions("b", 64);
        let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!(dot.abs() < 0.9, "{dot}");
        let norm: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn completion_cut_and_echo() {
        let (cut, truncated) = expected_completion_text("hi", Some(2), false);
        assert_eq!((cut.as_str(), truncated), ("Simulate", true));
        let (echoed, truncated) = expected_completion_text("hi ", None, true);
        assert!(!truncated);
        assert_eq!(echoed, format!("hi {}", expected_completion("hi ")));
        assert_eq!(
            input_texts(&TextInput::TokenLists(vec![vec![1, 2], vec![3]])),
            vec!["1 2".to_owned(), "3".to_owned()]
        );
    }
}
