//! OpenAI chat completions, embeddings and legacy completions, and any OpenAI-compatible
//! server, as a [`tower::Service`] of [`ChatRequest`](lbgpt_core::ChatRequest),
//! [`EmbeddingRequest`](lbgpt_core::EmbeddingRequest) and
//! [`CompletionRequest`](lbgpt_core::CompletionRequest).
//!
//! [`OpenAiService`] sends each [`ChatRequest`](lbgpt_core::ChatRequest) over one pooled
//! `reqwest` client (rustls) and answers a [`ChatResponse`](lbgpt_core::ChatResponse) with its
//! [`ResponseMeta`](lbgpt_core::ResponseMeta) filled in, or a typed
//! [`Error`](lbgpt_core::Error): API errors keep status, type, code, param, message,
//! retry-after and rate-limit headers; connection failures and timeouts say which phase
//! failed. The API key never appears in `Debug`, `Display` or any error.
//!
//! The [`transport`] module holds the HTTP machinery (header parsing, error mapping, the
//! shared caller) that `lbgpt-azure` reuses.
//!
//! ```no_run
//! use lbgpt_core::{ChatMessage, ChatRequest};
//! use lbgpt_openai::{OpenAiConfig, OpenAiService};
//! use tower::ServiceExt;
//!
//! # async fn run() -> Result<(), lbgpt_core::Error> {
//! let service = OpenAiService::new(OpenAiConfig::new().organization("org-1"))?; // key from OPENAI_API_KEY
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Say hi")]).max_tokens(16);
//! let answer = service.oneshot(request).await?;
//! println!("{:?} ({:?})", answer.first_text(), answer.meta.latency);
//! # Ok(())
//! # }
//! ```
//!
//! The same service answers embeddings (`{base_url}/embeddings`) and legacy completions
//! (`{base_url}/completions`); as it serves several request types, name the one meant when
//! calling `ServiceExt::ready` (`ServiceExt::<ChatRequest>::ready(&mut service)`).
//!
//! ```no_run
//! use lbgpt_core::{CompletionRequest, EmbeddingRequest};
//! use lbgpt_openai::{OpenAiConfig, OpenAiService};
//!
//! # async fn run() -> Result<(), lbgpt_core::Error> {
//! let service = OpenAiService::new(OpenAiConfig::new())?;
//! let vectors = service
//!     .embeddings(EmbeddingRequest::new("text-embedding-3-small", vec!["a", "b"]))
//!     .await?;
//! assert_eq!(vectors.data.len(), 2);
//! let texts = service
//!     .completions(CompletionRequest::new("gpt-3.5-turbo-instruct", "Once upon").max_tokens(16))
//!     .await?;
//! println!("{:?}", texts.first_text());
//! # Ok(())
//! # }
//! ```

mod config;
mod service;
pub mod transport;

pub use config::{OpenAiConfig, DEFAULT_NAME, OPENAI_API_KEY_ENV, OPENAI_BASE_URL};
pub use service::{OpenAiService, OPENAI_ORGANIZATION, OPENAI_PROJECT};
