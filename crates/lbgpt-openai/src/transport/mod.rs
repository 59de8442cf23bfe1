//! The HTTP machinery shared by the provider services (`lbgpt-openai`, `lbgpt-azure`).
//!
//! - [`HttpOptions`]: timeouts, proxy and extra headers, and the pooled `reqwest` client built
//!   from them.
//! - [`Endpoint`] and [`EndpointRequest`]: which path each request type is POSTed to and what
//!   it answers (chat, embeddings, legacy completions).
//! - [`HttpCaller`]: one POST of a JSON body, decoded into an answer with its
//!   [`ResponseMeta`](lbgpt_core::ResponseMeta) filled, or mapped to a typed
//!   [`Error`](lbgpt_core::Error) with the credential scrubbed.
//! - Header parsing ([`retry_after`], [`rate_limit`], [`should_retry`], [`request_id`],
//!   [`parse_reset_duration`]), error-body mapping ([`api_error`], [`decode_success`]) and
//!   `reqwest` failure mapping ([`from_reqwest`]), usable on their own.

mod body;
mod caller;
mod duration;
mod endpoint;
mod failure;
mod headers;
mod options;

pub use body::{api_error, decode_success, excerpt, EXCERPT_CHARS};
pub use caller::HttpCaller;
pub use duration::{parse_millis, parse_reset_duration, parse_seconds};
pub use endpoint::{Endpoint, EndpointRequest, PerEndpoint};
pub use failure::{from_reqwest, mask_urls, Timeouts};
pub use headers::{
    rate_limit, request_id, retry_after, retry_after_at, should_retry, APIM_REQUEST_ID,
    RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS, X_REQUEST_ID, X_SHOULD_RETRY,
};
pub use options::{HttpOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, USER_AGENT};
