//! The endpoints the exact cache ([`Cache`](crate::Cache)) serves, and what it needs to know
//! of each: the request's mode and key, the answer type, and the registry of its in-flight
//! calls. Chat and legacy completions share one store, configuration and set of counters;
//! their keys never collide (completion key documents carry `"endpoint":"completions"`, chat
//! documents no `endpoint` member), and each has its own flight registry.

use crate::flight::Flights;
use crate::state::CacheState;
use crate::{CacheConfig, CacheKey};
use lbgpt_core::{
    ApiResponse, CacheMode, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// What an exact-cache flight ends with: the answer, and whether it came from the store
/// (found by the leader's second look just before calling upstream).
pub(crate) type ExactFlight<A> = (A, bool);

/// The in-flight calls of an exact cache layer, one registry per endpoint.
#[derive(Default)]
pub(crate) struct ExactFlights {
    chat: Flights<ExactFlight<ChatResponse>>,
    completions: Flights<ExactFlight<CompletionResponse>>,
}

impl ExactFlights {
    /// How many flights are in progress, every endpoint together.
    pub(crate) fn len(&self) -> usize {
        self.chat.len() + self.completions.len()
    }
}

/// The state of a [`CacheLayer`](crate::CacheLayer).
pub(crate) type ExactState = CacheState<ExactFlights>;

/// A request type the exact cache serves.
pub(crate) trait ExactEndpoint: Send + 'static {
    /// The answer, stored as its wire JSON.
    type Answer: ApiResponse + Serialize + DeserializeOwned + Clone + Send + Sync + 'static;

    /// How the cache treats the request: a streamed request bypasses it; otherwise its own
    /// mode, else the configured default.
    fn mode(&self, config: &CacheConfig) -> CacheMode;

    /// The request's key (`None` if it cannot be serialised: it then passes through).
    fn key(&self, config: &CacheConfig) -> Option<CacheKey>;

    /// Asks the provider service to keep the answer's body
    /// ([`RequestOptions::keep_body`](lbgpt_core::RequestOptions::keep_body)), so that
    /// storing the answer needs no serialisation.
    fn keep_body(&mut self);

    /// This endpoint's flight registry.
    fn flights(flights: &ExactFlights) -> &Flights<ExactFlight<Self::Answer>>;
}

impl ExactEndpoint for ChatRequest {
    type Answer = ChatResponse;

    fn mode(&self, config: &CacheConfig) -> CacheMode {
        config.mode_for(self)
    }

    fn key(&self, config: &CacheConfig) -> Option<CacheKey> {
        config.key_for(self)
    }

    fn keep_body(&mut self) {
        self.options.keep_body = true;
    }

    fn flights(flights: &ExactFlights) -> &Flights<ExactFlight<ChatResponse>> {
        &flights.chat
    }
}

impl ExactEndpoint for CompletionRequest {
    type Answer = CompletionResponse;

    fn mode(&self, config: &CacheConfig) -> CacheMode {
        config.completion_mode_for(self)
    }

    fn key(&self, config: &CacheConfig) -> Option<CacheKey> {
        config.completion_key_for(self)
    }

    fn keep_body(&mut self) {
        self.options.keep_body = true;
    }

    fn flights(flights: &ExactFlights) -> &Flights<ExactFlight<CompletionResponse>> {
        &flights.completions
    }
}
