//! [`BalancedRequest`]: what the balancer needs to know of a request type.

use crate::tokens::{TiktokenEstimator, TokenEstimator};
use lbgpt_core::{
    ApiRequest, ApiResponse, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse,
    EmbeddingRequest, EmbeddingResponse,
};
use std::sync::Arc;

/// A request type a [`Balancer`](super::Balancer) can spread over members: chat
/// ([`ChatRequest`]), embeddings ([`EmbeddingRequest`]) and legacy completions
/// ([`CompletionRequest`]).
///
/// The balancer itself is the same for every endpoint; what differs is carried by small
/// traits: the answer's type and its token count ([`ApiResponse::token_usage`], which
/// settles the usage tracker's reservation), and the request's token estimate
/// ([`TokenEstimator<Self>`], by default [`TiktokenEstimator`]). Implement it for a request
/// type of your own to balance it too.
///
/// ```
/// use lbgpt_balance::BalancedRequest;
/// use lbgpt_core::{EmbeddingRequest, EmbeddingResponse};
///
/// fn answer_type<R: BalancedRequest<Response = EmbeddingResponse>>() {}
/// answer_type::<EmbeddingRequest>();
/// ```
pub trait BalancedRequest: ApiRequest {
    /// What a member answers.
    type Response: ApiResponse;

    /// The estimator a balancer uses unless
    /// [`BalancerBuilder::estimator`](super::BalancerBuilder::estimator) sets another.
    fn default_estimator() -> Arc<dyn TokenEstimator<Self>>;
}

impl BalancedRequest for ChatRequest {
    type Response = ChatResponse;

    /// [`TiktokenEstimator::default`].
    fn default_estimator() -> Arc<dyn TokenEstimator<Self>> {
        Arc::new(TiktokenEstimator::default())
    }
}

impl BalancedRequest for EmbeddingRequest {
    type Response = EmbeddingResponse;

    /// [`TiktokenEstimator::default`].
    fn default_estimator() -> Arc<dyn TokenEstimator<Self>> {
        Arc::new(TiktokenEstimator::default())
    }
}

impl BalancedRequest for CompletionRequest {
    type Response = CompletionResponse;

    /// [`TiktokenEstimator::default`].
    fn default_estimator() -> Arc<dyn TokenEstimator<Self>> {
        Arc::new(TiktokenEstimator::default())
    }
}
