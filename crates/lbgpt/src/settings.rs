//! The batch and retry settings every ready-made client builder shares.

use crate::{Lbgpt, DEFAULT_MAX_CONCURRENT_REQUESTS};
use lbgpt_balance::retry::{Retry, RetryPolicy};
use lbgpt_core::Error;

/// Concurrency, reorder window and retry policy of a ready-made client.
#[derive(Debug, Clone)]
pub(crate) struct BatchSettings {
    pub(crate) max_concurrent: usize,
    pub(crate) reorder_window: Option<usize>,
    pub(crate) retry: RetryPolicy,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_concurrent: DEFAULT_MAX_CONCURRENT_REQUESTS,
            reorder_window: None,
            retry: RetryPolicy::default(),
        }
    }
}

impl BatchSettings {
    /// Checks the settings and wraps `service` in the retry layer and a batch client.
    pub(crate) fn finish<S>(self, service: S) -> Result<Lbgpt<Retry<S>>, Error> {
        if self.max_concurrent == 0 {
            return Err(Error::Config(
                "max_concurrent_requests must be at least 1".to_owned(),
            ));
        }
        if self.reorder_window == Some(0) {
            return Err(Error::Config(
                "reorder_window must be at least 1".to_owned(),
            ));
        }
        self.retry.validate()?;
        let client = Lbgpt::new(Retry::new(service, self.retry))
            .max_concurrent_requests(self.max_concurrent);
        Ok(match self.reorder_window {
            Some(window) => client.reorder_window(window),
            None => client,
        })
    }
}

/// Adds the shared builder methods (concurrency and retry settings) to a builder with a
/// `settings: BatchSettings` field.
macro_rules! batch_settings_methods {
    () => {
        /// How many requests may run at once (default 5, like the Python seed). Must be at
        /// least 1.
        pub fn max_concurrent_requests(mut self, limit: usize) -> Self {
            self.settings.max_concurrent = limit;
            self
        }

        /// The reorder window of the ordered chat and legacy-completions lists and streams, in
        /// calls (default `max(1024, 64 x max_concurrent_requests)`); see
        /// [`OrderedCompletionStream`](crate::OrderedCompletionStream). The embeddings client
        /// keeps its own default, counted in chunks of up to 2048 vectors
        /// ([`EMBEDDING_REORDER_WINDOW_PER_REQUEST`](crate::EMBEDDING_REORDER_WINDOW_PER_REQUEST));
        /// set [`Lbgpt::reorder_window`](crate::Lbgpt::reorder_window) on a clone of
        /// `embeddings()` to change it.
        pub fn reorder_window(mut self, window: usize) -> Self {
            self.settings.reorder_window = Some(window);
            self
        }

        /// Replaces the whole retry policy (default [`RetryPolicy::default`](
        /// crate::balance::retry::RetryPolicy::default): 10 attempts, backoff 0.5 s doubling up
        /// to 30 s with jitter, server waits up to 120 s honoured, no deadline). The other retry
        /// setters adjust the current policy.
        pub fn retry_policy(mut self, policy: crate::balance::retry::RetryPolicy) -> Self {
            self.settings.retry = policy;
            self
        }

        /// Attempts per request, the first included (1 disables retries).
        pub fn max_attempts(mut self, attempts: u32) -> Self {
            self.settings.retry = self.settings.retry.max_attempts(attempts);
            self
        }

        /// The wait before the first retry when the server names none; it doubles for each
        /// further retry up to [`max_backoff`](Self::max_backoff).
        pub fn initial_backoff(mut self, wait: std::time::Duration) -> Self {
            self.settings.retry = self.settings.retry.initial_backoff(wait);
            self
        }

        /// The longest wait between attempts when the server names none.
        pub fn max_backoff(mut self, wait: std::time::Duration) -> Self {
            self.settings.retry = self.settings.retry.max_backoff(wait);
            self
        }

        /// The longest server-asked wait (`retry-after`) honoured; a longer one ends the
        /// request with the server's error at once.
        pub fn max_retry_after(mut self, wait: std::time::Duration) -> Self {
            self.settings.retry = self.settings.retry.max_retry_after(wait);
            self
        }

        /// An overall deadline per request, retries and waits included.
        pub fn deadline(mut self, deadline: std::time::Duration) -> Self {
            self.settings.retry = self.settings.retry.deadline(deadline);
            self
        }
    };
}

pub(crate) use batch_settings_methods;
