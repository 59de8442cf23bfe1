//! The legacy completions wire format (`POST /v1/completions`), typed where users need it.
//!
//! A request with a list of prompts can be [split](CompletionRequest::split) into one request
//! per prompt (to spread them over members) and the answers
//! [merged](CompletionResponse::merge) back: choices come out as the API orders them, `n` per
//! prompt, prompt after prompt.

mod request;
mod response;

pub use request::{CompletionRequest, Prompt};
pub use response::{CompletionChoice, CompletionResponse};
