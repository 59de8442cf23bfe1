//! The traits lbgpt's generic layers (retry, balancing, batching) are written against, and
//! their implementations for every endpoint's request and response.

use crate::{
    ChatRequest, ChatResponse, CompletionResponse, EmbeddingResponse, EmbeddingUsage,
    RequestOptions, ResponseMeta, Result, Usage,
};

/// A request that lbgpt's generic layers (retry, balancing, batching) can carry.
///
/// Implemented by [`ChatRequest`], [`EmbeddingRequest`](crate::EmbeddingRequest) and
/// [`CompletionRequest`](crate::CompletionRequest); the layers work for each of them
/// unchanged. What a layer charges a request against a provider's limits is
/// [`ArrivalCharge`](crate::ArrivalCharge).
pub trait ApiRequest: Clone + Send + Sync + 'static {
    /// The model the request names.
    fn model(&self) -> &str;

    /// Checks what can be checked before any network call.
    fn validate(&self) -> Result<()>;

    /// The request's settings for lbgpt's layers (never sent); the default has none set.
    fn options(&self) -> RequestOptions {
        RequestOptions::default()
    }
}

/// A response that carries [`ResponseMeta`] and the provider's token count.
///
/// Implemented by [`ChatResponse`], [`EmbeddingResponse`] and [`CompletionResponse`].
pub trait ApiResponse: Send + 'static {
    /// The metadata.
    fn meta(&self) -> &ResponseMeta;

    /// The metadata, to update.
    fn meta_mut(&mut self) -> &mut ResponseMeta;

    /// The tokens the provider says the request used, in the chat endpoint's shape (an
    /// embeddings answer reports no completion tokens: `completion_tokens` is 0), or `None`
    /// when the answer reported none. Layers that count tokens against a limit (the
    /// balancer's usage tracker) settle their estimate with it and keep the estimate when
    /// it is `None`, which the default returns.
    fn token_usage(&self) -> Option<Usage> {
        None
    }
}

impl ApiRequest for ChatRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn validate(&self) -> Result<()> {
        ChatRequest::validate(self)
    }

    fn options(&self) -> RequestOptions {
        self.options
    }
}

impl ApiResponse for ChatResponse {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }

    fn token_usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

impl ApiResponse for EmbeddingResponse {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }

    /// `prompt_tokens` and `total_tokens` as reported; no completion tokens.
    fn token_usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(EmbeddingUsage::as_usage)
    }
}

impl ApiResponse for CompletionResponse {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }

    fn token_usage(&self) -> Option<Usage> {
        self.usage.clone()
    }
}

impl EmbeddingUsage {
    /// This usage in the chat endpoint's shape: the same prompt and total tokens, no
    /// completion tokens (unknown fields are not carried over).
    pub fn as_usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: 0,
            total_tokens: self.total_tokens,
            ..Usage::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatMessage;

    #[test]
    fn every_endpoint_reports_its_usage_in_one_shape() {
        let embeddings: EmbeddingResponse = serde_json::from_str(
            r#"{"data": [{"embedding": [0.5]}], "usage": {"prompt_tokens": 7, "total_tokens": 7}}"#,
        )
        .expect("an embeddings answer");
        let usage = embeddings.token_usage().expect("usage");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (7, 0, 7)
        );

        let completions: CompletionResponse = serde_json::from_str(
            r#"{"choices": [{"text": "x"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}"#,
        )
        .expect("a completions answer");
        let usage = completions.token_usage().expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 5));

        let chat: ChatResponse = serde_json::from_str(r#"{"choices": []}"#).expect("an answer");
        assert_eq!(chat.token_usage(), None);
        let request = ChatRequest::new("m", vec![ChatMessage::user("hi")]);
        assert_eq!(ApiRequest::model(&request), "m");
    }
}
