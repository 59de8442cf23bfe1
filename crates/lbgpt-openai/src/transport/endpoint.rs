//! Which API endpoint a request type goes to, and what it answers.

use lbgpt_core::{
    ApiRequest, ApiResponse, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse,
    EmbeddingRequest, EmbeddingResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// An OpenAI-style API endpoint lbgpt can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST …/chat/completions`
    ChatCompletions,
    /// `POST …/embeddings`
    Embeddings,
    /// `POST …/completions` (legacy text completions)
    Completions,
}

impl Endpoint {
    /// Every endpoint, in a fixed order (the order of [`Endpoint::position`]).
    pub const ALL: [Endpoint; 3] = [
        Endpoint::ChatCompletions,
        Endpoint::Embeddings,
        Endpoint::Completions,
    ];

    /// The path segments appended to a base URL (or an Azure deployment URL).
    pub fn segments(self) -> &'static [&'static str] {
        match self {
            Endpoint::ChatCompletions => &["chat", "completions"],
            Endpoint::Embeddings => &["embeddings"],
            Endpoint::Completions => &["completions"],
        }
    }

    /// The path relative to a base URL, e.g. `chat/completions`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat/completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Completions => "completions",
        }
    }

    /// The endpoint's position in [`Endpoint::ALL`], for per-endpoint tables.
    pub fn position(self) -> usize {
        match self {
            Endpoint::ChatCompletions => 0,
            Endpoint::Embeddings => 1,
            Endpoint::Completions => 2,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// A request type the provider services can send: its JSON body goes to [`Self::ENDPOINT`]
/// and the answer decodes into [`Self::Response`].
///
/// Implemented for [`ChatRequest`], [`EmbeddingRequest`] and [`CompletionRequest`]; the
/// provider services implement `tower::Service<R>` for every such `R`.
pub trait EndpointRequest: ApiRequest + Serialize {
    /// The decoded answer.
    type Response: ApiResponse + DeserializeOwned;

    /// Where the request goes.
    const ENDPOINT: Endpoint;
}

impl EndpointRequest for ChatRequest {
    type Response = ChatResponse;
    const ENDPOINT: Endpoint = Endpoint::ChatCompletions;
}

impl EndpointRequest for EmbeddingRequest {
    type Response = EmbeddingResponse;
    const ENDPOINT: Endpoint = Endpoint::Embeddings;
}

impl EndpointRequest for CompletionRequest {
    type Response = CompletionResponse;
    const ENDPOINT: Endpoint = Endpoint::Completions;
}

/// A table holding one value per [`Endpoint`] (e.g. a prepared URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerEndpoint<T>([T; 3]);

impl<T> PerEndpoint<T> {
    /// Builds the table by calling `make` for each endpoint; the first error stops it.
    pub fn try_new<E>(mut make: impl FnMut(Endpoint) -> Result<T, E>) -> Result<Self, E> {
        let [a, b, c] = Endpoint::ALL;
        Ok(PerEndpoint([make(a)?, make(b)?, make(c)?]))
    }

    /// The value for `endpoint`.
    pub fn get(&self, endpoint: Endpoint) -> &T {
        &self.0[endpoint.position()]
    }
}
