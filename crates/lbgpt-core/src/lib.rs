//! Core types of lbgpt: OpenAI-compatible chat requests and responses, the typed [`Error`],
//! response metadata and the small traits the service layers are generic over.
//!
//! This crate performs no I/O. Provider crates (`lbgpt-openai`, `lbgpt-azure`) turn a
//! [`ChatRequest`] into an HTTP call; layers (`lbgpt-balance`, caches) wrap those services.
//!
//! ```
//! use lbgpt_core::{ChatMessage, ChatRequest};
//!
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Hello!")])
//!     .max_tokens(32)
//!     .temperature(0.0);
//! let json = serde_json::to_value(&request).unwrap();
//! assert_eq!(json["messages"][0]["role"], "user");
//! ```

mod charge;
pub mod chat;
mod checks;
pub mod completions;
pub mod embeddings;
mod error;
mod extra;
mod input;
mod meta;
mod options;
mod redact;
pub mod tokens;
mod traits;

pub use charge::ArrivalCharge;
pub use chat::*;
pub use completions::{CompletionChoice, CompletionRequest, CompletionResponse, Prompt};
pub use embeddings::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage,
    EmbeddingVector, MAX_EMBEDDING_INPUTS,
};
pub use error::{ApiError, DecodeKind, Error, TimeoutPhase, TransportKind};
pub use extra::Extra;
pub use input::TextInput;
pub use meta::{CacheStatus, RateLimitInfo, RawBody, ResponseMeta};
pub use options::{CacheMode, EmbedMethod, RequestOptions, SemanticOptions};
pub use redact::redact_url;
pub use traits::{ApiRequest, ApiResponse};

/// Shorthand for `Result<T, lbgpt_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
