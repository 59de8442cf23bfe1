use crate::input::{merge_error, merge_meta};
use crate::{Extra, ResponseMeta, Result, Usage};
use serde::{Deserialize, Serialize};

/// The body of a legacy completions answer, plus lbgpt's [`ResponseMeta`] (not serialised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionResponse {
    /// The completion's id.
    #[serde(default)]
    pub id: String,
    /// `"text_completion"`.
    #[serde(default = "text_completion_object")]
    pub object: String,
    /// Unix time of creation, in seconds.
    #[serde(default)]
    pub created: u64,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The generated choices, `n` per prompt, prompt after prompt. Required.
    pub choices: Vec<CompletionChoice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Unknown fields (for example `system_fingerprint`).
    #[serde(flatten)]
    pub extra: Extra,
    /// How lbgpt obtained this answer. Not serialised.
    #[serde(skip)]
    pub meta: ResponseMeta,
}

fn text_completion_object() -> String {
    "text_completion".to_owned()
}

/// One generated completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionChoice {
    /// The generated text.
    #[serde(default)]
    pub text: String,
    /// The choice's position: `prompt_index * n + choice_index`.
    #[serde(default)]
    pub index: u32,
    /// Log probabilities (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`), when
    /// asked for; kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<serde_json::Value>,
    /// Why generation stopped: `"stop"`, `"length"`, `"content_filter"`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CompletionResponse {
    /// The text of the first choice, if any.
    pub fn first_text(&self) -> Option<&str> {
        self.choices
            .iter()
            .min_by_key(|c| c.index)
            .map(|c| c.text.as_str())
    }

    /// The texts of the choices in index order.
    pub fn texts(&self) -> Vec<&str> {
        let mut choices: Vec<&CompletionChoice> = self.choices.iter().collect();
        choices.sort_by_key(|c| c.index);
        choices.into_iter().map(|c| c.text.as_str()).collect()
    }

    /// One answer per prompt, in prompt order, each holding that prompt's `choices_per_prompt`
    /// choices (the request's `n`) renumbered from 0 (for storing per prompt in a cache).
    /// `id`, `object`, `created`, `model`, unknown fields and metadata are copied; `usage` is
    /// `None`, as the provider reports it only for the whole request.
    ///
    /// Fails with [`Error::Decode`](crate::Error::Decode) when `choices_per_prompt` is 0 or
    /// does not divide the number of choices.
    pub fn split(self, choices_per_prompt: u32) -> Result<Vec<CompletionResponse>> {
        let per_prompt = choices_per_prompt as usize;
        if per_prompt == 0 || !self.choices.len().is_multiple_of(per_prompt) {
            return Err(merge_error(format!(
                "{} choices cannot be split into groups of {choices_per_prompt}",
                self.choices.len()
            )));
        }
        let mut choices = self.choices;
        choices.sort_by_key(|c| c.index);
        let mut parts = Vec::with_capacity(choices.len() / per_prompt);
        let mut choices = choices.into_iter().peekable();
        while choices.peek().is_some() {
            let group: Vec<CompletionChoice> = choices
                .by_ref()
                .take(per_prompt)
                .enumerate()
                .map(|(j, mut choice)| {
                    choice.index = u32::try_from(j).unwrap_or(u32::MAX);
                    choice
                })
                .collect();
            parts.push(CompletionResponse {
                id: self.id.clone(),
                object: self.object.clone(),
                created: self.created,
                model: self.model.clone(),
                choices: group,
                usage: None,
                extra: self.extra.clone(),
                meta: self.meta.clone(),
            });
        }
        Ok(parts)
    }

    /// Puts the answers to the parts of a [split](crate::CompletionRequest::split) request
    /// back together, in the order given (the prompts' order): each part's choices follow
    /// the previous parts' with indices renumbered from 0 (so `n` choices per prompt give
    /// `prompt_index * n + j`), usage is summed, and `id`, `object`, `created`, `model` and
    /// unknown fields come from the first part. The metadata sums attempts, takes the longest
    /// latency, the first part's cache status, and member, request id, rate-limit headers and
    /// cache match from the first part that has one (a cached part has none).
    ///
    /// Fails with [`Error::Decode`](crate::Error::Decode) when there is no part, a part has
    /// no choice, or the parts hold different numbers of choices (different `n`).
    pub fn merge(parts: Vec<CompletionResponse>) -> Result<CompletionResponse> {
        let meta = merge_meta(parts.iter().map(|p| &p.meta));
        let all_choices: usize = parts.iter().map(|p| p.choices.len()).sum();
        let mut parts = parts.into_iter();
        let Some(mut first) = parts.next() else {
            return Err(merge_error("no completion answers to merge"));
        };
        let per_prompt = first.choices.len();
        // The first part's choices and usage move into the loop below; the rest of it (id,
        // model, unknown fields) moves into the merged answer, nothing is copied.
        let first_part = (std::mem::take(&mut first.choices), first.usage.take());
        let mut merged = CompletionResponse {
            choices: Vec::with_capacity(all_choices),
            usage: None,
            meta,
            ..first
        };
        let rest = parts.map(|part| (part.choices, part.usage));
        let mut usage: Option<Usage> = None;
        for (at, (mut choices, part_usage)) in std::iter::once(first_part).chain(rest).enumerate() {
            if choices.is_empty() {
                return Err(merge_error(format!(
                    "completion answer {at} holds no choice"
                )));
            }
            if choices.len() != per_prompt {
                return Err(merge_error(format!(
                    "completion answer {at} holds {} choices where the first holds {per_prompt}",
                    choices.len()
                )));
            }
            if let Some(part_usage) = part_usage {
                let sum = usage.get_or_insert_with(Usage::default);
                sum.prompt_tokens += part_usage.prompt_tokens;
                sum.completion_tokens += part_usage.completion_tokens;
                sum.total_tokens += part_usage.total_tokens;
            }
            choices.sort_by_key(|c| c.index);
            for mut choice in choices {
                choice.index = u32::try_from(merged.choices.len()).unwrap_or(u32::MAX);
                merged.choices.push(choice);
            }
        }
        merged.usage = usage;
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: &str, texts: &[&str], usage: Option<u64>) -> CompletionResponse {
        let mut body = serde_json::json!({
            "id": id,
            "model": format!("model-{id}"),
            "system_fingerprint": format!("fp-{id}"),
            "choices": texts
                .iter()
                .enumerate()
                .rev()
                .map(|(i, t)| serde_json::json!({"index": i, "text": t}))
                .collect::<Vec<_>>(),
        });
        if let Some(tokens) = usage {
            body["usage"] = serde_json::json!({
                "prompt_tokens": tokens, "completion_tokens": 1, "total_tokens": tokens + 1
            });
        }
        serde_json::from_value(body).expect("a completions answer")
    }

    #[test]
    fn merge_keeps_the_first_parts_fields_and_moves_every_choice_once() {
        let merged = CompletionResponse::merge(vec![
            answer("a", &["a0", "a1"], Some(2)),
            answer("b", &["b0", "b1"], None),
            answer("c", &["c0", "c1"], Some(5)),
        ])
        .expect("merges");
        assert_eq!(merged.id, "a");
        assert_eq!(merged.model, "model-a");
        assert_eq!(merged.extra["system_fingerprint"], "fp-a");
        assert_eq!(merged.texts(), vec!["a0", "a1", "b0", "b1", "c0", "c1"]);
        let indices: Vec<u32> = merged.choices.iter().map(|c| c.index).collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4, 5]);
        let usage = merged.usage.expect("two parts reported usage");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (7, 2, 9)
        );
        assert!(CompletionResponse::merge(vec![
            answer("a", &["a0"], None),
            answer("b", &[], None)
        ])
        .is_err());
    }
}
