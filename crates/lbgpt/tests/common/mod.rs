//! Helpers shared by the simulator tests: requests, a counting layer, the fault mix.

#![allow(dead_code)]

use lbgpt::{ChatMessage, ChatRequest, ChatResponse, Error};
use lbgpt_sim::{Fault, FaultMix};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// A distinct request for input `i`.
pub fn request(i: usize) -> ChatRequest {
    ChatRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::system("You are a terse assistant."),
            ChatMessage::user(format!("Question number {i}?")),
        ],
    )
    .max_tokens(64)
}

/// 20 % of requests meet one of these, in equal measure: short rate limits, 500, 503, connection
/// resets and malformed JSON.
pub fn fault_mix() -> FaultMix {
    FaultMix::new()
        .with(
            Fault::RateLimited {
                retry_after: Duration::from_millis(5),
            },
            1,
        )
        .with(Fault::ServerError, 1)
        .with(
            Fault::Unavailable {
                retry_after: Some(Duration::from_millis(5)),
            },
            1,
        )
        .with(Fault::Reset, 1)
        .with(Fault::MalformedJson, 1)
}

/// Asserts that `answer` is the simulator's answer to `request`.
pub fn assert_answers(request: &ChatRequest, answer: &ChatResponse) {
    assert_eq!(
        answer.first_text().as_deref(),
        Some(lbgpt_sim::expected_answer(request).as_str()),
        "the answer belongs to its request"
    );
}

/// Counts calls running at once through the wrapped service, and the peak.
#[derive(Clone, Default)]
pub struct InFlight {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

impl InFlight {
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    pub fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl<S> Layer<S> for InFlight {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            gauge: self.clone(),
        }
    }
}

/// The service [`InFlight`] wraps around another.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    gauge: InFlight,
}

struct Leave(InFlight);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S> Service<ChatRequest> for Counted<S>
where
    S: Service<ChatRequest, Response = ChatResponse, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = ChatResponse;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<ChatResponse, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        let gauge = self.gauge.clone();
        let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.peak.fetch_max(now, Ordering::SeqCst);
        gauge.calls.fetch_add(1, Ordering::SeqCst);
        let leave = Leave(gauge);
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            drop(leave);
            result
        })
    }
}
