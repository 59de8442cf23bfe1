//! What to do after a failed attempt: retry after a wait, or give up with which error.

use super::RetryPolicy;
use lbgpt_core::Error;
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

/// The verdict on a failed attempt.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Wait this long, then try again. Carries the error back for bookkeeping.
    Retry {
        wait: Duration,
        why: WaitReason,
        error: Error,
    },
    /// Stop and return this error to the caller.
    GiveUp(Error),
}

/// Where a wait came from (for the debug log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitReason {
    /// The server (or balancer) asked for it.
    RetryAfter,
    /// Exponential backoff with jitter.
    Backoff,
}

impl WaitReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WaitReason::RetryAfter => "retry-after",
            WaitReason::Backoff => "backoff",
        }
    }
}

/// Why the layer stopped retrying (for the debug log).
fn give_up_reason(policy: &RetryPolicy, error: &Error, attempts: u32) -> &'static str {
    if !error.is_retryable() {
        "not retryable"
    } else if attempts >= policy.attempts_allowed() {
        "max attempts reached"
    } else {
        "server asked to wait longer than max_retry_after"
    }
}

/// Decides what follows the failure `error` of attempt number `attempts`.
///
/// `now` and `deadline` are instants (tokio's, so paused test time works); `rng` draws jitter.
pub(crate) fn decide<R: Rng + ?Sized>(
    policy: &RetryPolicy,
    error: Error,
    attempts: u32,
    now: Instant,
    deadline: Option<Instant>,
    rng: &mut R,
) -> Decision {
    let asked = error.retry_after().filter(|wait| !wait.is_zero());
    let stop = !error.is_retryable()
        || attempts >= policy.attempts_allowed()
        || asked.is_some_and(|wait| wait > policy.get_max_retry_after());
    if stop {
        tracing::debug!(
            attempts,
            reason = give_up_reason(policy, &error, attempts),
            error.class = error.class(),
            error.status = error.status(),
            "lbgpt retry: giving up"
        );
        return Decision::GiveUp(final_error(attempts, error));
    }
    let (wait, why) = match asked {
        Some(wait) => (wait, WaitReason::RetryAfter),
        None => (policy.backoff(attempts, rng), WaitReason::Backoff),
    };
    if let (Some(deadline), Some(limit)) = (deadline, policy.get_deadline()) {
        if now.checked_add(wait).is_none_or(|wake| wake >= deadline) {
            tracing::debug!(
                attempts,
                wait_ms = wait.as_millis() as u64,
                error.class = error.class(),
                error.status = error.status(),
                "lbgpt retry: the next wait would cross the deadline; giving up"
            );
            return Decision::GiveUp(deadline_exceeded(limit, attempts, Some(error)));
        }
    }
    Decision::Retry { wait, why, error }
}

/// The error returned when the layer stops for any reason but the deadline: the error itself
/// after a single attempt, [`Error::RetriesExhausted`] after more.
pub(crate) fn final_error(attempts: u32, error: Error) -> Error {
    if attempts <= 1 {
        error
    } else {
        Error::RetriesExhausted {
            attempts,
            last: Box::new(error),
        }
    }
}

/// The error returned when the deadline stops the layer.
pub(crate) fn deadline_exceeded(deadline: Duration, attempts: u32, last: Option<Error>) -> Error {
    Error::DeadlineExceeded {
        deadline,
        attempts,
        last: last.map(Box::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::{ApiError, TransportKind};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn api(status: u16, retry_after: Option<Duration>) -> Error {
        let mut e = ApiError::new(status, "boom");
        e.retry_after = retry_after;
        e.into()
    }

    fn run(
        policy: &RetryPolicy,
        error: Error,
        attempts: u32,
        deadline: Option<Instant>,
    ) -> Decision {
        let mut rng = StdRng::seed_from_u64(0);
        decide(policy, error, attempts, Instant::now(), deadline, &mut rng)
    }

    #[test]
    fn non_retryable_first_attempt_is_returned_as_is() {
        let p = RetryPolicy::default();
        match run(&p, api(400, None), 1, None) {
            Decision::GiveUp(Error::Api(e)) => assert_eq!(e.status, 400),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_retryable_after_retries_is_wrapped() {
        let p = RetryPolicy::default();
        match run(&p, api(401, None), 3, None) {
            Decision::GiveUp(Error::RetriesExhausted { attempts, last }) => {
                assert_eq!(attempts, 3);
                assert_eq!(last.status(), Some(401));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_wait_is_used_exactly_and_zero_falls_back_to_backoff() {
        let p = RetryPolicy::default().jitter(0.0);
        match run(&p, api(429, Some(Duration::from_millis(300))), 1, None) {
            Decision::Retry { wait, why, .. } => {
                assert_eq!(wait, Duration::from_millis(300));
                assert_eq!(why, WaitReason::RetryAfter);
            }
            other => panic!("{other:?}"),
        }
        match run(&p, api(429, Some(Duration::ZERO)), 2, None) {
            Decision::Retry { wait, why, .. } => {
                assert_eq!(wait, Duration::from_secs(1));
                assert_eq!(why, WaitReason::Backoff);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_wait_beyond_the_cap_gives_up_at_once() {
        let p = RetryPolicy::default().max_retry_after(Duration::from_secs(5));
        match run(&p, api(429, Some(Duration::from_secs(6))), 1, None) {
            Decision::GiveUp(Error::Api(e)) => assert_eq!(e.status, 429),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn max_attempts_stops_with_retries_exhausted() {
        let p = RetryPolicy::default().max_attempts(4);
        let reset = Error::Transport {
            kind: TransportKind::Reset,
            message: "reset".into(),
        };
        match run(&p, reset.clone(), 3, None) {
            Decision::Retry { .. } => {}
            other => panic!("{other:?}"),
        }
        match run(&p, reset, 4, None) {
            Decision::GiveUp(Error::RetriesExhausted { attempts: 4, last }) => {
                assert_eq!(last.class(), "transport_error");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wait_crossing_the_deadline_stops_with_deadline_exceeded() {
        let p = RetryPolicy::default().deadline(Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(2);
        match run(
            &p,
            api(503, Some(Duration::from_secs(3))),
            1,
            Some(deadline),
        ) {
            Decision::GiveUp(Error::DeadlineExceeded {
                deadline,
                attempts,
                last,
            }) => {
                assert_eq!(deadline, Duration::from_secs(2));
                assert_eq!(attempts, 1);
                assert_eq!(last.and_then(|l| l.status()), Some(503));
            }
            other => panic!("{other:?}"),
        }
    }
}
