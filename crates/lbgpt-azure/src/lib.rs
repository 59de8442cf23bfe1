//! Azure OpenAI chat completions, embeddings and legacy completions as a [`tower::Service`]
//! of [`ChatRequest`](lbgpt_core::ChatRequest),
//! [`EmbeddingRequest`](lbgpt_core::EmbeddingRequest) and
//! [`CompletionRequest`](lbgpt_core::CompletionRequest).
//!
//! [`AzureService`] maps each request's model to a deployment
//! ([`AzureConfig::deployment`]) and sends it to
//! `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...` (or
//! `.../embeddings`, `.../completions` for the other request types) with the
//! `api-key` header or a bearer token ([`AzureAuth`]). The api-version defaults to
//! [`DEFAULT_API_VERSION`] (`2024-10-21`, the latest dated GA version; see its docs for why).
//! A model without a deployment is an
//! [`Error::ModelNotServed`](lbgpt_core::Error::ModelNotServed) before any network call (the
//! model's name is never used as a deployment name); a balancer moves such a request on to a
//! member that serves the model.
//!
//! HTTP handling, error mapping and response metadata are shared with `lbgpt-openai` (its
//! [`transport`](lbgpt_openai::transport) module), so errors and metadata look the same for
//! both providers.
//!
//! ```no_run
//! use lbgpt_azure::{AzureConfig, AzureService};
//! use lbgpt_core::{ChatMessage, ChatRequest};
//! use tower::ServiceExt;
//!
//! # async fn run() -> Result<(), lbgpt_core::Error> {
//! let service = AzureService::new(
//!     AzureConfig::new("https://my-resource.openai.azure.com")
//!         .api_key(std::env::var("AZURE_OPENAI_API_KEY").unwrap_or_default())
//!         .deployment("gpt-4o-mini", "mini-eu")
//!         .name("azure-eu"),
//! )?;
//! let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Say hi")]);
//! let answer = service.oneshot(request).await?;
//! println!("{:?} from {:?}", answer.first_text(), answer.meta.member);
//! # Ok(())
//! # }
//! ```

mod auth;
mod config;
mod service;

pub use auth::{AzureAuth, API_KEY_HEADER};
pub use config::{AzureConfig, AZURE_OPENAI_API_KEY_ENV, DEFAULT_API_VERSION, DEFAULT_NAME};
pub use service::AzureService;
