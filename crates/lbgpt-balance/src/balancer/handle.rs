//! [`BalancerHandle`]: change members and read statistics while the balancer runs.

use super::shared::Shared;
use super::stats::MemberStats;
use super::{BalancedRequest, Balancer, Member};
use crate::usage::{Limits, UsageSnapshot};
use lbgpt_core::{ChatRequest, Error};
use std::fmt;
use std::sync::Arc;
use tokio::time::Instant;

/// Changes a running [`Balancer`](super::Balancer)'s members and reads their statistics.
///
/// Changes take effect for the next pick of every request, including requests waiting for
/// capacity (they wake up and look again). Requests already in flight on a member finish
/// there: removing or disabling a member never drops or re-routes them, and a removed
/// member (with its usage-tracker registration) goes away after its last request.
///
/// ```
/// use lbgpt_balance::{Balancer, Member, MemberState};
/// use lbgpt_core::{ChatRequest, ChatResponse, Error};
/// use tower::service_fn;
/// use tower::util::BoxCloneService;
///
/// fn stand_in() -> BoxCloneService<ChatRequest, ChatResponse, Error> {
///     BoxCloneService::new(service_fn(|_request: ChatRequest| async {
///         Err::<ChatResponse, Error>(Error::Cancelled)
///     }))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let balancer = Balancer::builder().member(Member::new("old-key", stand_in())).build()?;
/// let handle = balancer.handle();
///
/// // Key rotation: bring in the new key, then retire the old one.
/// handle.add_member(Member::new("new-key", stand_in()).rpm(500))?;
/// handle.remove_member("old-key")?;
/// assert_eq!(handle.member_names(), ["new-key"]);
///
/// handle.disable("new-key")?;
/// assert_eq!(handle.member_stats("new-key").map(|s| s.state), Some(MemberState::Disabled));
/// handle.enable("new-key")?;
/// assert!(handle.disable("no-such-key").is_err());
/// # Ok(())
/// # }
/// ```
pub struct BalancerHandle<R: BalancedRequest = ChatRequest> {
    pub(crate) shared: Arc<Shared<R>>,
}

impl<R: BalancedRequest> Clone for BalancerHandle<R> {
    fn clone(&self) -> Self {
        BalancerHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: BalancedRequest> BalancerHandle<R> {
    /// The balancer this handle belongs to (a clone sharing everything with it).
    pub fn balancer(&self) -> Balancer<R> {
        Balancer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Adds a member; [`Error::Config`] if its name is taken or its weight or limits are
    /// invalid.
    pub fn add_member(&self, member: Member<R>) -> Result<(), Error> {
        self.shared.add(member)
    }

    /// Removes the member named `name`: no new request goes to it; requests in flight on it
    /// finish there. [`Error::Config`] if there is no such member.
    pub fn remove_member(&self, name: &str) -> Result<(), Error> {
        self.shared.remove(name)
    }

    /// Stops sending new requests to the member (requests in flight finish).
    pub fn disable(&self, name: &str) -> Result<(), Error> {
        self.shared.set_enabled(name, false)
    }

    /// Sends requests to the member again, clearing its dead state, cooldown and breaker
    /// (use it after fixing a key that was retired).
    pub fn enable(&self, name: &str) -> Result<(), Error> {
        self.shared.set_enabled(name, true)
    }

    /// Changes the member's weight (finite, >= 0).
    pub fn set_weight(&self, name: &str, weight: f64) -> Result<(), Error> {
        self.shared.set_weight(name, weight)
    }

    /// Changes the member's rate limits (the usage tracker keeps its window).
    pub fn set_limits(&self, name: &str, limits: Limits) -> Result<(), Error> {
        self.shared.set_limits(name, limits)
    }

    /// The members' names, in member order.
    pub fn member_names(&self) -> Vec<String> {
        self.shared
            .members()
            .iter()
            .map(|entry| entry.name.to_string())
            .collect()
    }

    /// Every member's statistics, in member order.
    pub fn stats(&self) -> Vec<MemberStats> {
        let now = Instant::now();
        let tracker = self.shared.tracker();
        self.shared
            .members()
            .iter()
            .map(|entry| entry.stats(tracker.as_ref(), now))
            .collect()
    }

    /// The statistics of the member named `name`.
    pub fn member_stats(&self, name: &str) -> Option<MemberStats> {
        let entry = self.shared.find(name)?;
        Some(entry.stats(self.shared.tracker().as_ref(), Instant::now()))
    }

    /// The usage tracker's view of the member named `name` (window usage, reservations,
    /// headroom).
    pub fn headroom(&self, name: &str) -> Option<UsageSnapshot> {
        self.shared.find(name)?;
        self.shared.tracker().snapshot(name)
    }
}

impl<R: BalancedRequest> fmt::Debug for BalancerHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancerHandle")
            .field("members", &self.member_names())
            .finish()
    }
}
