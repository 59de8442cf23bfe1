//! [`ResponseFuture`]: one request's way through attempts and waits.

use super::decision::{deadline_exceeded, decide, final_error, Decision};
use super::RetryPolicy;
use lbgpt_core::{ApiRequest, ApiResponse, Error};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{sleep_until, Instant, Sleep};
use tower::Service;

pin_project! {
    /// The future returned by [`Retry`](super::Retry): runs attempts and the waits between
    /// them until one succeeds or the policy gives up.
    ///
    /// A state machine without boxing. The first attempt is cheap: it costs one clone of the
    /// request (kept for a possible retry; skipped when `max_attempts` is 1) and creates no
    /// timer unless an overall deadline is set. One timer is created at the first wait (or at
    /// the start when a deadline is set) and reused for every later wait and the deadline.
    ///
    /// Dropping the future cancels the running attempt.
    ///
    /// # Panics
    /// When polled again after it completed, like most futures.
    #[project = ResponseFutureProj]
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        service: S,
        request: Option<Req>,
        policy: Arc<RetryPolicy>,
        started: Instant,
        deadline: Option<Instant>,
        attempts: u32,
        last_error: Option<Error>,
        #[pin]
        state: State<S::Future>,
        // The deadline while an attempt runs or the service is getting ready; the wake-up
        // time while waiting between attempts.
        #[pin]
        timer: Option<Sleep>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // An attempt is running.
        Calling { #[pin] future: F },
        // Waiting (on the timer) before the next attempt.
        Waiting,
        // Waiting for the service to be ready for the next attempt.
        Readying,
        // The output was returned.
        Done,
    }
}

impl<S, Req> ResponseFuture<S, Req>
where
    Req: ApiRequest,
    S: Service<Req, Error = Error>,
{
    /// Starts the first attempt on `service`, which the caller has made ready.
    pub(crate) fn start(mut service: S, policy: Arc<RetryPolicy>, request: Req) -> Self {
        let started = Instant::now();
        let deadline = policy.get_deadline().map(|limit| started + limit);
        let retained = (policy.attempts_allowed() > 1).then(|| request.clone());
        let future = service.call(request);
        ResponseFuture {
            service,
            request: retained,
            policy,
            started,
            deadline,
            attempts: 1,
            last_error: None,
            state: State::Calling { future },
            timer: deadline.map(sleep_until),
        }
    }
}

/// Whether the overall deadline has passed (registering the waker when not).
fn deadline_passed(
    timer: Pin<&mut Option<Sleep>>,
    deadline: Option<Instant>,
    cx: &mut Context<'_>,
) -> bool {
    match (deadline, timer.as_pin_mut()) {
        (Some(_), Some(timer)) => timer.poll(cx).is_ready(),
        _ => false,
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    Req: ApiRequest,
    S: Service<Req, Error = Error>,
    S::Response: ApiResponse,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let error = match this.state.as_mut().project() {
                StateProj::Calling { future } => match future.poll(cx) {
                    Poll::Ready(Ok(mut response)) => {
                        let meta = response.meta_mut();
                        // Upstream calls across layers: this layer's failed attempts, plus the
                        // calls the layer below made for the successful one (a balancer may
                        // have tried several members; a plain provider says 1, others 0).
                        meta.attempts = (*this.attempts - 1).saturating_add(meta.attempts.max(1));
                        meta.latency = this.started.elapsed();
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    }
                    Poll::Ready(Err(error)) => error,
                    Poll::Pending => {
                        if !deadline_passed(this.timer.as_mut(), *this.deadline, cx) {
                            return Poll::Pending;
                        }
                        // Dropping the running attempt cancels it.
                        this.state.set(State::Done);
                        tracing::debug!(
                            attempts = *this.attempts,
                            "lbgpt retry: deadline passed during an attempt; cancelling it"
                        );
                        return Poll::Ready(Err(this.deadline_error()));
                    }
                },
                StateProj::Waiting => {
                    if let Some(timer) = this.timer.as_mut().as_pin_mut() {
                        ready!(timer.poll(cx));
                    }
                    if let (Some(deadline), Some(timer)) =
                        (*this.deadline, this.timer.as_mut().as_pin_mut())
                    {
                        timer.reset(deadline);
                    }
                    this.state.set(State::Readying);
                    continue;
                }
                StateProj::Readying => match this.service.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let request = if *this.attempts + 1 < this.policy.attempts_allowed() {
                            this.request.clone()
                        } else {
                            this.request.take()
                        };
                        let Some(request) = request else {
                            // Unreachable: a retry is only planned while attempts remain,
                            // and the request is kept until the last one.
                            this.state.set(State::Done);
                            let last = this.last_error.take().unwrap_or(Error::Cancelled);
                            return Poll::Ready(Err(final_error(*this.attempts, last)));
                        };
                        *this.attempts += 1;
                        let future = this.service.call(request);
                        this.state.set(State::Calling { future });
                        continue;
                    }
                    // A service that fails to get ready counts as a failed attempt.
                    Poll::Ready(Err(error)) => {
                        *this.attempts += 1;
                        error
                    }
                    Poll::Pending => {
                        if !deadline_passed(this.timer.as_mut(), *this.deadline, cx) {
                            return Poll::Pending;
                        }
                        this.state.set(State::Done);
                        return Poll::Ready(Err(this.deadline_error()));
                    }
                },
                StateProj::Done => panic!("lbgpt retry ResponseFuture polled after completion"),
            };

            let decision = decide(
                this.policy,
                error,
                *this.attempts,
                Instant::now(),
                *this.deadline,
                &mut rand::rng(),
            );
            match decision {
                Decision::GiveUp(error) => {
                    this.state.set(State::Done);
                    return Poll::Ready(Err(error));
                }
                Decision::Retry { wait, why, error } => {
                    tracing::debug!(
                        attempt = *this.attempts,
                        max_attempts = this.policy.attempts_allowed(),
                        wait_ms = wait.as_millis() as u64,
                        wait_reason = why.as_str(),
                        error.class = error.class(),
                        error.status = error.status(),
                        error = %error,
                        "lbgpt retry: attempt failed; retrying"
                    );
                    *this.last_error = Some(error);
                    let now = Instant::now();
                    // A wait too long to represent is capped at roughly a century.
                    let wake = now
                        .checked_add(wait)
                        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
                    match this.timer.as_mut().as_pin_mut() {
                        Some(timer) => timer.reset(wake),
                        None => this.timer.set(Some(sleep_until(wake))),
                    }
                    this.state.set(State::Waiting);
                }
            }
        }
    }
}

impl<S, Req> ResponseFutureProj<'_, S, Req>
where
    S: Service<Req>,
{
    fn deadline_error(&mut self) -> Error {
        let limit = self.policy.get_deadline().unwrap_or_default();
        deadline_exceeded(limit, *self.attempts, self.last_error.take())
    }
}

#[cfg(test)]
mod tests {
    //! Exact timing of the state machine under paused tokio time. The behaviour against real
    //! HTTP lives in `tests/` (simulator on loopback); these pin down the clock arithmetic.

    use super::super::{Retry, RetryPolicy};
    use lbgpt_core::{ApiError, ChatMessage, ChatRequest, ChatResponse, Error};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::time::Instant;
    use tower::{service_fn, ServiceExt};

    type Outcome = (Duration, Result<(), Error>);

    /// A provider that plays `script` (a delay, then an outcome) and records call times.
    #[allow(clippy::type_complexity)]
    fn scripted(
        script: Vec<Outcome>,
        started: Instant,
    ) -> (
        impl tower::Service<
                ChatRequest,
                Response = ChatResponse,
                Error = Error,
                Future = Pin<Box<dyn Future<Output = Result<ChatResponse, Error>> + Send>>,
            > + Clone
            + Send
            + 'static,
        Arc<Mutex<Vec<Duration>>>,
    ) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let seen = Arc::clone(&calls);
        let service = service_fn(move |_request: ChatRequest| {
            seen.lock().expect("lock").push(started.elapsed());
            let step = script.lock().expect("lock").next();
            Box::pin(async move {
                let (delay, outcome) = step.expect("the script covers every call");
                tokio::time::sleep(delay).await;
                outcome.map(|()| {
                    serde_json::from_str::<ChatResponse>(r#"{"choices": []}"#).expect("valid")
                })
            }) as Pin<Box<dyn Future<Output = Result<ChatResponse, Error>> + Send>>
        });
        (service, calls)
    }

    fn api(status: u16, retry_after: Option<Duration>) -> Result<(), Error> {
        let mut error = ApiError::new(status, "scripted");
        error.retry_after = retry_after;
        Err(error.into())
    }

    fn request() -> ChatRequest {
        ChatRequest::new("m", vec![ChatMessage::user("hi")])
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn waits_exactly_the_asked_time_then_the_backoff() {
        let started = Instant::now();
        let (service, calls) = scripted(
            vec![
                (ms(10), api(429, Some(ms(300)))),
                (ms(10), api(500, None)),
                (ms(10), Ok(())),
            ],
            started,
        );
        let policy = RetryPolicy::default().initial_backoff(ms(100)).jitter(0.0);
        let response = Retry::new(service, policy)
            .oneshot(request())
            .await
            .expect("the third attempt succeeds");

        // 10 ms call, 300 ms asked wait, 10 ms call, 200 ms backoff (second retry), 10 ms call.
        assert_eq!(*calls.lock().expect("lock"), [ms(0), ms(310), ms(520)]);
        assert_eq!(response.meta.attempts, 3);
        assert_eq!(response.meta.latency, ms(530));
    }

    /// A stand-in for a balancer below the retry layer: each call reports how many upstream
    /// calls it made (`meta.attempts`), or fails.
    fn layer_below(
        outcomes: Vec<Result<u32, Error>>,
    ) -> impl tower::Service<
        ChatRequest,
        Response = ChatResponse,
        Error = Error,
        Future = std::future::Ready<Result<ChatResponse, Error>>,
    > + Clone
           + Send
           + 'static {
        let outcomes = Arc::new(Mutex::new(outcomes.into_iter()));
        service_fn(move |_request: ChatRequest| {
            let outcome = outcomes
                .lock()
                .expect("lock")
                .next()
                .expect("the script covers every call");
            std::future::ready(outcome.map(|calls| {
                let mut response =
                    serde_json::from_str::<ChatResponse>(r#"{"choices": []}"#).expect("valid");
                response.meta.attempts = calls;
                response
            }))
        })
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_count_the_upstream_calls_of_the_layers_below() {
        let policy = || RetryPolicy::default().initial_backoff(ms(100)).jitter(0.0);
        let busy = || api(503, None).map(|()| 0);

        // Two failed attempts, then one whose balancer tried three members: 2 + 3 calls.
        let service = layer_below(vec![busy(), busy(), Ok(3)]);
        let response = Retry::new(service, policy())
            .oneshot(request())
            .await
            .expect("the third attempt succeeds");
        assert_eq!(response.meta.attempts, 5);

        // A first attempt that took two members is reported as two calls, not one.
        let service = layer_below(vec![Ok(2)]);
        let response = Retry::new(service, policy())
            .oneshot(request())
            .await
            .expect("succeeds");
        assert_eq!(response.meta.attempts, 2);

        // A layer below that says nothing (0) still counts as the one call it was.
        let service = layer_below(vec![busy(), Ok(0)]);
        let response = Retry::new(service, policy())
            .oneshot(request())
            .await
            .expect("the second attempt succeeds");
        assert_eq!(response.meta.attempts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_cancels_a_running_attempt_exactly_on_time() {
        let started = Instant::now();
        let (service, calls) = scripted(
            vec![(ms(50), api(503, None)), (Duration::from_secs(60), Ok(()))],
            started,
        );
        let policy = RetryPolicy::default()
            .initial_backoff(ms(100))
            .jitter(0.0)
            .deadline(ms(1000));
        let error = Retry::new(service, policy)
            .oneshot(request())
            .await
            .expect_err("the second attempt outlasts the deadline");

        assert_eq!(started.elapsed(), ms(1000));
        assert_eq!(*calls.lock().expect("lock"), [ms(0), ms(150)]);
        match error {
            Error::DeadlineExceeded {
                deadline,
                attempts,
                last,
            } => {
                assert_eq!(deadline, ms(1000));
                assert_eq!(attempts, 2);
                assert_eq!(last.and_then(|e| e.status()), Some(503));
            }
            other => panic!("expected DeadlineExceeded, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_would_cross_the_deadline_is_not_slept() {
        let started = Instant::now();
        let (service, calls) = scripted(vec![(ms(10), api(429, Some(ms(2000))))], started);
        let policy = RetryPolicy::default().deadline(ms(1000));
        let error = Retry::new(service, policy)
            .oneshot(request())
            .await
            .expect_err("2 s wait > 1 s deadline");

        assert_eq!(started.elapsed(), ms(10));
        assert_eq!(calls.lock().expect("lock").len(), 1);
        assert_eq!(error.class(), "deadline_exceeded");
        assert_eq!(error.status(), Some(429));
    }
}
