//! lbgpt: fast, reliable chat completions at volume against OpenAI, Azure OpenAI and any
//! OpenAI-compatible server.
//!
//! This facade is the one dependency most users need. It re-exports the request and response
//! types, and offers batch clients that send one request or a million with bounded concurrency,
//! retries and exactly one typed result per input.
//!
//! Generic batch engine only so far; the provider entry points follow.

mod client;
mod engine;
mod progress;
mod stream;

pub use client::{Lbgpt, DEFAULT_MAX_CONCURRENT_REQUESTS};
pub use progress::Progress;
pub use stream::{CompletionStream, OrderedCompletionStream};

pub use lbgpt_core::{
    ApiError, CacheStatus, ChatChoice, ChatMessage, ChatRequest, ChatResponse, ContentPart,
    DecodeKind, Error, MessageContent, RateLimitInfo, ResponseFormat, ResponseMeta, Result, Role,
    TimeoutPhase, Tool, ToolCall, ToolChoice, TransportKind, Usage,
};

/// Everything in `lbgpt-core`: all request and response types, errors and traits.
pub mod core {
    pub use lbgpt_core::*;
}

/// The retry layer (and, later, the balancer): `lbgpt-balance` re-exported.
pub mod balance {
    pub use lbgpt_balance::*;
}
