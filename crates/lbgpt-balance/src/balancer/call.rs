//! One request's way through the balancer: pick, reserve, call, settle, fail over or wait.

use super::attempt::{Attempt, ProbeClaim};
use super::entry::MemberEntry;
use super::health::{BreakerChange, DisplayWait};
use super::not_served::NotServed;
use super::report::Report;
use super::shared::{MemberList, Shared};
use super::stats::{add, bump};
use super::strategy::{Candidate, Strategy};
use super::verdict::{verdict, Verdict};
use super::BalancedRequest;
use crate::tokens::TokenEstimate;
use crate::usage::{Outcome, Reservation};
use lbgpt_core::{ApiResponse, Error};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tracing::Instrument;

/// What one request has been through so far.
struct Progress<R: BalancedRequest> {
    /// Upstream calls made (members that passed the request on before any network call
    /// excluded).
    attempts: u32,
    /// Failovers after retryable failures (bounded by `max_failovers`).
    failovers: usize,
    /// Members that failed this request; not tried again for it.
    tried: Vec<u64>,
    /// The last upstream failure.
    last_error: Option<Error>,
    /// Members that passed the request on because they do not serve its model; they are in
    /// `tried` too.
    not_served: NotServed,
    /// The last attempt failed with a retryable error: fail over only to a member with room
    /// now, else give the error back (the retry layer above decides about waiting).
    failing_over: bool,
    /// The request's estimated tokens, computed when a member with a token limit needs it.
    estimate: Option<TokenEstimate>,
    /// The member the last attempt failed on; its `failovers` counter is bumped only when the
    /// request really lands on another member.
    failed_on: Option<Arc<MemberEntry<R>>>,
}

/// The member picked for an attempt, with its reservation.
struct Pick<R: BalancedRequest> {
    entry: Arc<MemberEntry<R>>,
    reservation: Reservation,
    probe: bool,
}

/// Serves `request` (see [`Balancer`](super::Balancer) for the rules).
pub(crate) async fn run<R: BalancedRequest>(
    shared: Arc<Shared<R>>,
    request: R,
) -> Result<R::Response, Error> {
    let settings = &shared.settings;
    let started = Instant::now();
    let wait_limit = started.checked_add(settings.max_wait);
    let mut progress = Progress {
        attempts: 0,
        failovers: 0,
        tried: Vec::new(),
        last_error: None,
        not_served: NotServed::default(),
        failing_over: false,
        estimate: None,
        failed_on: None,
    };
    // Moved into the last possible attempt instead of cloned (a single member).
    let mut request = Some(request);

    loop {
        let version = shared.version();
        let members = shared.members();
        let Some(pending) = request.as_ref() else {
            return Err(give_up(&mut progress));
        };
        let now = Instant::now();
        let mut report = Report::default();
        let (primary, standby) = candidates(&members, &progress.tried, now, &mut report);
        if primary.is_empty() && standby.is_empty() {
            if let Some(error) = progress.last_error.take() {
                return Err(error);
            }
            // Every member was asked and none serves the model.
            if report.blocked.is_empty() {
                if let Some(error) = progress.not_served.error() {
                    return Err(error);
                }
            }
            // Every member is out for now (cooling down, breaker open, probing): wait for
            // the first to come back if that is within `max_wait`, as for a member at its
            // limit. Dead or disabled members never come back by themselves.
            if let Some(at) = report.earliest_within(wait_limit) {
                wait_for_room(&shared, version, at, "no member can take requests now").await;
                continue;
            }
            return Err(nobody_available(&progress, members.len(), &report, now));
        }

        let mut declined = false;
        let mut picked = None;
        for group in [primary, standby] {
            match pick(
                &shared,
                &members,
                group,
                pending,
                &mut progress,
                &mut report,
                now,
            )
            .await
            {
                Choice::Picked(pick) => {
                    picked = Some(pick);
                    break;
                }
                Choice::Declined => declined = true,
                Choice::NoRoom => {}
            }
        }

        let Some(Pick {
            entry,
            reservation,
            probe,
        }) = picked
        else {
            if progress.failing_over {
                return Err(give_up(&mut progress));
            }
            if declined && report.at_limit.is_empty() {
                return Err(progress.not_served.annotate(Error::NoMemberAvailable {
                    reason: format!(
                        "the {} strategy picked none of the members that could take the request",
                        shared.strategy
                    ),
                    retry_after: None,
                }));
            }
            let now = Instant::now();
            let tokens = progress.estimate.map_or(0, |estimate| estimate.total());
            let at = match report.earliest_within(wait_limit) {
                Some(at) => at,
                // Every candidate turned unavailable between the check and the pick (a
                // half-open probe taken meanwhile): nothing to wait for by the clock.
                None if report.earliest().is_none() && report.at_limit.is_empty() => {
                    return Err(nobody_available(&progress, members.len(), &report, now));
                }
                None => {
                    return Err(progress.not_served.annotate(report.at_capacity(
                        now,
                        settings.max_wait,
                        tokens,
                    )))
                }
            };
            wait_for_room(&shared, version, at, "no member has room").await;
            continue;
        };

        // The attempt.
        let attempt_number = progress.attempts + 1;
        let mut attempt = Attempt::new(
            Arc::clone(&entry),
            Arc::clone(shared.tracker()),
            reservation,
            probe,
        );
        let outgoing = if members.len() > 1 {
            pending.clone()
        } else {
            match request.take() {
                Some(request) => request,
                None => return Err(give_up(&mut progress)),
            }
        };
        drop(members);
        let span = tracing::debug_span!(
            "lbgpt_balance_attempt",
            member = %entry.name,
            attempt = attempt_number
        );
        let mut service = entry.service();
        let sent_at = Instant::now();
        let result = async {
            let ready = service.ready().await?;
            attempt.mark_sent();
            ready.call(outgoing).await
        }
        .instrument(span.clone())
        .await;
        let now = Instant::now();

        // The member does not serve the model: it decided so before any network call. Not a
        // failure, not an attempt: refund the reservation and ask another member.
        let result = match result {
            Err(error @ Error::ModelNotServed { .. }) => {
                attempt.settle(Outcome::Failed {
                    reached_provider: false,
                });
                drop(attempt);
                entry.passed_on_model();
                tracing::debug!(
                    parent: &span,
                    member = %entry.name,
                    %error,
                    "the member does not serve the model; asking another member"
                );
                progress.tried.push(entry.id);
                progress.not_served.record(&entry.name, error);
                continue;
            }
            other => other,
        };
        progress.attempts = attempt_number;
        if attempt_number > 1 {
            bump(&entry.counters.retries);
        }
        if let Some(previous) = progress.failed_on.take() {
            bump(&previous.counters.failovers);
        }

        match result {
            Ok(mut response) => {
                entry.record_alive();
                attempt.probe_done();
                if probe {
                    // The breaker closed: requests waiting for this member look again now
                    // rather than at the probe's hint.
                    shared.announce();
                }
                bump(&entry.counters.succeeded);
                let usage = response.token_usage();
                let elapsed = now.saturating_duration_since(sent_at);
                let sample = match &usage {
                    Some(usage) if usage.completion_tokens > 0 => {
                        elapsed.div_f64(usage.completion_tokens as f64)
                    }
                    _ => elapsed,
                };
                entry.observe_latency(sample, now);
                if let Some(usage) = &usage {
                    add(&entry.counters.prompt_tokens, usage.prompt_tokens);
                    add(&entry.counters.completion_tokens, usage.completion_tokens);
                }
                let meta = response.meta_mut();
                attempt.settle(Outcome::Answered {
                    usage,
                    rate_limit: meta.rate_limit.clone(),
                });
                drop(attempt);
                meta.member = Some(Arc::clone(&entry.name));
                meta.attempts = attempt_number;
                return Ok(response);
            }
            Err(error) => {
                bump(&entry.counters.failed);
                attempt.settle(Outcome::failed(&error));
                let _entered = span.enter();
                match verdict(&error, settings.default_cooldown) {
                    Verdict::Final => {
                        entry.record_alive();
                        attempt.probe_done();
                        return Err(error);
                    }
                    Verdict::Dead(reason) => {
                        tracing::warn!(
                            member = %entry.name,
                            %reason,
                            "retiring the member: it cannot serve requests any more"
                        );
                        entry.kill(reason);
                        attempt.probe_done();
                        progress.failing_over = false;
                    }
                    Verdict::Retryable {
                        cooldown,
                        breaker,
                        rate_limited,
                    } => {
                        if rate_limited {
                            bump(&entry.counters.rate_limited_seen);
                        }
                        if let Some(wait) = cooldown {
                            let wait = wait.min(settings.max_cooldown);
                            entry.cool_down(now.checked_add(wait).unwrap_or(now));
                            tracing::debug!(
                                member = %entry.name,
                                wait = %DisplayWait(wait),
                                "member cooling down"
                            );
                        }
                        if breaker {
                            if let BreakerChange::Opened { until } =
                                entry.record_failure(now, &settings.breaker)
                            {
                                tracing::warn!(
                                    member = %entry.name,
                                    open_for = %DisplayWait(until.saturating_duration_since(now)),
                                    "circuit breaker opened after repeated failures"
                                );
                            }
                        } else {
                            entry.record_alive();
                        }
                        attempt.probe_done();
                        let allowed = settings
                            .max_failovers
                            .unwrap_or_else(|| shared.members().len().saturating_sub(1));
                        if progress.failovers >= allowed {
                            return Err(error);
                        }
                        progress.failovers += 1;
                        progress.failing_over = true;
                    }
                }
                tracing::debug!(error = %error, "failing over to another member");
                progress.tried.push(entry.id);
                progress.failed_on = Some(Arc::clone(&entry));
                progress.last_error = Some(error);
            }
        }
    }
}

/// The error to return when no other member can take a failed request: the last failure,
/// else (every member asked passed it on) that nobody serves its model.
fn give_up<R: BalancedRequest>(progress: &mut Progress<R>) -> Error {
    progress
        .last_error
        .take()
        .or_else(|| progress.not_served.error())
        .unwrap_or_else(|| {
            Error::Internal("balancer: a request was lost between attempts".to_owned())
        })
}

/// The members that can be tried now, split into those of positive weight and the
/// zero-weight standbys; the others go into `report`.
/// No member can take the request now: the report's error, also naming the members that do
/// not serve the request's model.
fn nobody_available<R: BalancedRequest>(
    progress: &Progress<R>,
    members: usize,
    report: &Report,
    now: Instant,
) -> Error {
    let others = members.saturating_sub(progress.not_served.len());
    progress
        .not_served
        .annotate(report.nobody_available(others, now))
}

/// Sleeps until `at`, computed from the members' state and never polled (at least 1 ms, so
/// a moment already past is no busy loop), or until the members change after `version`.
async fn wait_for_room<R: BalancedRequest>(
    shared: &Shared<R>,
    version: u64,
    at: Instant,
    why: &'static str,
) {
    let now = Instant::now();
    let at = at.max(now + Duration::from_millis(1));
    let changed = shared.changed.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();
    if shared.version() == version {
        tracing::debug!(wait = %DisplayWait(at - now), "{why}; waiting for capacity");
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = changed => {}
        }
    }
}

fn candidates<'m, R: BalancedRequest>(
    members: &'m MemberList<R>,
    tried: &[u64],
    now: Instant,
    report: &mut Report,
) -> (Vec<Candidate<'m>>, Vec<Candidate<'m>>) {
    let mut primary = Vec::with_capacity(members.len());
    let mut standby = Vec::new();
    for (slot, entry) in members.iter().enumerate() {
        if tried.contains(&entry.id) {
            continue;
        }
        if let Err(block) = entry.check(now) {
            report.blocked.push((Arc::clone(&entry.name), block));
            continue;
        }
        let weight = entry.weight();
        let mut candidate = Candidate::new(entry.id, &entry.name)
            .with_weight(weight)
            .with_in_flight(entry.in_flight());
        if let Some(latency) = entry.latency(now) {
            candidate = candidate.with_latency(latency);
        }
        candidate.slot = slot;
        if weight > 0.0 {
            primary.push(candidate);
        } else {
            standby.push(candidate);
        }
    }
    (primary, standby)
}

enum Choice<R: BalancedRequest> {
    Picked(Pick<R>),
    /// The strategy declined the remaining candidates.
    Declined,
    /// Every candidate was at its limit (or became unavailable meanwhile).
    NoRoom,
}

/// Lets the strategy pick among `group` until a member grants a reservation.
async fn pick<R: BalancedRequest>(
    shared: &Shared<R>,
    members: &MemberList<R>,
    mut group: Vec<Candidate<'_>>,
    request: &R,
    progress: &mut Progress<R>,
    report: &mut Report,
    now: Instant,
) -> Choice<R> {
    if group.is_empty() {
        return Choice::NoRoom;
    }
    // A built-in strategy has nothing to choose between one candidate; a custom one is
    // always asked (it may decline).
    let ask = group.len() > 1 || matches!(shared.strategy, Strategy::Custom(_));
    if ask && shared.picker.needs_usage() {
        let tracker = shared.tracker();
        for candidate in &mut group {
            if let Some(usage) = tracker.snapshot(candidate.name()) {
                *candidate = candidate.clone().with_usage(usage);
            }
        }
    }
    while !group.is_empty() {
        let index = if group.len() == 1 && !ask {
            0
        } else {
            match shared.picker.pick(&group, request) {
                Some(index) if index < group.len() => index,
                _ => return Choice::Declined,
            }
        };
        let candidate = group.remove(index);
        let entry = &members[candidate.slot];
        let claim = match entry.begin(now) {
            Ok(probe) => ProbeClaim::new(entry, probe),
            Err(block) => {
                report.blocked.push((Arc::clone(&entry.name), block));
                continue;
            }
        };
        // Only a member with a token limit needs the estimate (tokenizing costs time); the
        // others reserve the request alone.
        let reserved = if entry.has_token_limit() {
            let estimate = *progress
                .estimate
                .get_or_insert_with(|| shared.estimator.estimate(request));
            shared
                .tracker()
                .try_reserve_estimate(&entry.name, estimate)
                .await
        } else {
            shared.tracker().try_reserve(&entry.name, 0).await
        };
        match reserved {
            Ok(reservation) => {
                return Choice::Picked(Pick {
                    entry: Arc::clone(entry),
                    reservation,
                    probe: claim.keep(),
                })
            }
            Err(unavailable) => {
                drop(claim);
                report.at_limit.push((Arc::clone(&entry.name), unavailable));
            }
        }
    }
    Choice::NoRoom
}
