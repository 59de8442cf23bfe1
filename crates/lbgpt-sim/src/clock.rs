//! The simulator's notion of "now".

use tokio::time::Instant;

/// Reads tokio's clock, so that tests running with paused time (`tokio::time::pause`) move the
/// simulator's rate-limit windows along with the test's own sleeps.
///
/// Every time the limiter looks at goes through this type; a later mode (for example a manual
/// clock for unit tests) only needs to change it here.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock;

impl Clock {
    /// The current instant.
    pub(crate) fn now(&self) -> Instant {
        Instant::now()
    }
}
