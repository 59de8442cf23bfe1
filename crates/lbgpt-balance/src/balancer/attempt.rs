//! [`Attempt`]: one upstream call's claim on a member, released however the call ends.

use super::entry::MemberEntry;
use super::BalancedRequest;
use crate::usage::{Outcome, Reservation, UsageTracker};
use std::sync::Arc;

/// Holds what an upstream call took from its member: one in-flight slot, the usage
/// reservation and possibly the half-open probe. Dropping it (the call finished, failed, or
/// its future was dropped by a cancelled caller or a deadline) gives back whatever was not
/// settled explicitly: the reservation is settled as a failure (kept as charged if the
/// request may have reached the provider), the probe is freed for another request, and the
/// in-flight count goes down.
pub(crate) struct Attempt<R: BalancedRequest> {
    entry: Arc<MemberEntry<R>>,
    tracker: Arc<dyn UsageTracker>,
    reservation: Option<Reservation>,
    probe: bool,
    sent: bool,
}

impl<R: BalancedRequest> Attempt<R> {
    pub(crate) fn new(
        entry: Arc<MemberEntry<R>>,
        tracker: Arc<dyn UsageTracker>,
        reservation: Reservation,
        probe: bool,
    ) -> Self {
        entry.enter();
        Attempt {
            entry,
            tracker,
            reservation: Some(reservation),
            probe,
            sent: false,
        }
    }

    /// The request went to the member's service: the provider may count it from now on.
    pub(crate) fn mark_sent(&mut self) {
        self.sent = true;
    }

    /// Settles the reservation with what the provider answered.
    pub(crate) fn settle(&mut self, outcome: Outcome) {
        if let Some(reservation) = self.reservation.take() {
            self.tracker.settle(reservation, outcome);
        }
    }

    /// The member's health was updated from this call's result: the probe (if this call was
    /// it) has done its job.
    pub(crate) fn probe_done(&mut self) {
        self.probe = false;
    }
}

impl<R: BalancedRequest> Drop for Attempt<R> {
    fn drop(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            self.tracker.settle(
                reservation,
                Outcome::Failed {
                    reached_provider: self.sent,
                },
            );
        }
        if self.probe {
            self.entry.release_probe();
        }
        self.entry.leave();
    }
}

/// A half-open member's probe claimed while its reservation is being asked for: freed again
/// if the reservation is refused or the caller goes away meanwhile.
pub(crate) struct ProbeClaim<'a, R: BalancedRequest> {
    entry: &'a MemberEntry<R>,
    armed: bool,
}

impl<'a, R: BalancedRequest> ProbeClaim<'a, R> {
    /// `probe` says whether [`MemberEntry::begin`] granted the probe.
    pub(crate) fn new(entry: &'a MemberEntry<R>, probe: bool) -> Self {
        ProbeClaim {
            entry,
            armed: probe,
        }
    }

    /// Hands the claim on (to an [`Attempt`]); true when it was the probe.
    pub(crate) fn keep(mut self) -> bool {
        std::mem::replace(&mut self.armed, false)
    }
}

impl<R: BalancedRequest> Drop for ProbeClaim<'_, R> {
    fn drop(&mut self) {
        if self.armed {
            self.entry.release_probe();
        }
    }
}
