//! The chat-completions wire format (`POST /v1/chat/completions`), typed where users need it.
//!
//! Every struct keeps the fields it does not know in an [`Extra`](crate::Extra) map, so bodies
//! round-trip without loss. Optional fields that are absent or `null` are both read as `None`
//! and written as absent; that is the only normalisation applied.

mod content;
mod logprobs;
mod message;
mod request;
mod response;
mod role;
mod tool;
mod usage;

pub use content::{ContentPart, ImageUrl, MessageContent};
pub use logprobs::{ChoiceLogprobs, TokenLogprob, TopLogprob};
pub use message::ChatMessage;
pub use request::{ChatRequest, JsonSchemaFormat, ResponseFormat, Stop, StreamOptions};
pub use response::{ChatChoice, ChatResponse};
pub use role::Role;
pub use tool::{FunctionCall, FunctionDefinition, NamedToolChoice, Tool, ToolCall, ToolChoice};
pub use usage::{CompletionTokensDetails, PromptTokensDetails, Usage};
