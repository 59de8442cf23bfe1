use super::{ChatMessage, ChoiceLogprobs, Usage};
use crate::{Extra, ResponseMeta};
use serde::{Deserialize, Serialize};

/// The body of a chat-completions answer, plus lbgpt's [`ResponseMeta`].
///
/// `meta` is not part of the wire format: it is skipped when serialising and empty after
/// deserialising; the services fill it in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The completion's id.
    #[serde(default)]
    pub id: String,
    /// `"chat.completion"`.
    #[serde(default = "chat_completion_object")]
    pub object: String,
    /// Unix time of creation, in seconds.
    #[serde(default)]
    pub created: u64,
    /// The model that answered (may be more specific than the one asked for).
    #[serde(default)]
    pub model: String,
    /// The generated choices. Required: a body without `choices` (for example a 200 carrying
    /// only an `error` object) is not an answer and fails to decode.
    pub choices: Vec<ChatChoice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The backend configuration fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// The service tier used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Unknown fields (for example Azure's `prompt_filter_results` or a server's `timings`).
    #[serde(flatten)]
    pub extra: Extra,
    /// How lbgpt obtained this answer. Not serialised.
    #[serde(skip)]
    pub meta: ResponseMeta,
}

fn chat_completion_object() -> String {
    "chat.completion".to_owned()
}

impl ChatResponse {
    /// The text of the first choice's message, if any.
    pub fn first_text(&self) -> Option<String> {
        let message = &self.choices.first()?.message;
        message.content.as_ref().map(|content| content.text())
    }
}

/// One generated choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    /// The choice's position.
    #[serde(default)]
    pub index: u32,
    /// The generated message.
    pub message: ChatMessage,
    /// Why generation stopped: `"stop"`, `"length"`, `"tool_calls"`, `"content_filter"`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Log probabilities, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<ChoiceLogprobs>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}
