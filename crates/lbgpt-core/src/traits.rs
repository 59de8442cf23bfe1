use crate::{ChatRequest, ChatResponse, ResponseMeta, Result};

/// A request that lbgpt's generic layers (retry, balancing, batching) can carry.
///
/// Implemented by [`ChatRequest`]; embeddings and other endpoints will implement it too, so
/// the layers work for them unchanged.
pub trait ApiRequest: Clone + Send + Sync + 'static {
    /// The model the request names.
    fn model(&self) -> &str;

    /// Checks what can be checked before any network call.
    fn validate(&self) -> Result<()>;
}

/// A response that carries [`ResponseMeta`].
pub trait ApiResponse: Send + 'static {
    /// The metadata.
    fn meta(&self) -> &ResponseMeta;

    /// The metadata, to update.
    fn meta_mut(&mut self) -> &mut ResponseMeta;
}

impl ApiRequest for ChatRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn validate(&self) -> Result<()> {
        ChatRequest::validate(self)
    }
}

impl ApiResponse for ChatResponse {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
}
