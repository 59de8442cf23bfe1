//! [`Report`]: why no member could take a request, turned into a clear error.

use super::health::{Block, DisplayWait};
use crate::usage::{LimitKind, Unavailable};
use lbgpt_core::Error;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// At most this many members are named in an error; the rest are counted.
const NAMED: usize = 8;

/// The members a request could not use in one round, and why.
#[derive(Default)]
pub(crate) struct Report {
    /// Members out of the running (dead, disabled, cooling down, breaker open, probing).
    pub(crate) blocked: Vec<(Arc<str>, Block)>,
    /// Members the usage tracker turned down.
    pub(crate) at_limit: Vec<(Arc<str>, Unavailable)>,
}

impl Report {
    /// The earliest moment a member is expected to take the request: the end of a cooldown
    /// or open breaker, or the moment a member at its limit has room.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        let blocked = self
            .blocked
            .iter()
            .filter_map(|(_, block)| block.returns_at());
        let at_limit = self.at_limit.iter().filter_map(|(_, why)| why.retry_at);
        blocked.chain(at_limit).min()
    }

    /// [`earliest`](Self::earliest), when it is no later than `limit` (no limit: any moment).
    pub(crate) fn earliest_within(&self, limit: Option<Instant>) -> Option<Instant> {
        self.earliest()
            .filter(|at| limit.is_none_or(|limit| *at <= limit))
    }

    /// No member can be tried at all (every one is dead, disabled, cooling down, ...).
    pub(crate) fn nobody_available(&self, members: usize, now: Instant) -> Error {
        if members == 0 {
            return Error::NoMemberAvailable {
                reason: "the balancer has no members".to_owned(),
                retry_after: None,
            };
        }
        let all_dead = self
            .blocked
            .iter()
            .all(|(_, block)| matches!(block, Block::Dead(_)));
        let mut reason = if all_dead {
            format!("all {members} members are dead: ")
        } else {
            format!("none of the {members} members can take requests now: ")
        };
        self.describe_blocked(&mut reason, now);
        Error::NoMemberAvailable {
            reason,
            retry_after: self.wait_from(now),
        }
    }

    /// Every member that could be tried is at its limit until after the balancer's longest
    /// wait (or, `earliest` being `None`, can never take a request this large).
    pub(crate) fn at_capacity(&self, now: Instant, max_wait: Duration, tokens: u64) -> Error {
        let never = self.earliest().is_none();
        let mut reason = if never {
            format!(
                "the request needs about {tokens} tokens, more than the tokens-per-minute \
                 limit of any member allows: "
            )
        } else {
            format!(
                "every member is at its rate limit for longer than the balancer's max_wait \
                 of {}: ",
                DisplayWait(max_wait)
            )
        };
        for (index, (name, why)) in self.at_limit.iter().enumerate() {
            if index == NAMED {
                let _ = write!(reason, ", and {} more", self.at_limit.len() - NAMED);
                break;
            }
            if index > 0 {
                reason.push_str(", ");
            }
            let limit = match why.limit {
                LimitKind::Requests => "requests per minute",
                LimitKind::Tokens => "tokens per minute",
            };
            match why.retry_at {
                Some(at) => {
                    let wait = DisplayWait(at.saturating_duration_since(now));
                    let _ = write!(reason, "{name} ({limit}, room in {wait})");
                }
                None => {
                    let _ = write!(reason, "{name} ({limit}, never)");
                }
            }
        }
        if !self.blocked.is_empty() {
            reason.push_str("; ");
            self.describe_blocked(&mut reason, now);
        }
        Error::NoMemberAvailable {
            reason,
            retry_after: self.wait_from(now),
        }
    }

    fn wait_from(&self, now: Instant) -> Option<Duration> {
        self.earliest().map(|at| {
            at.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        })
    }

    fn describe_blocked(&self, out: &mut String, now: Instant) {
        for (index, (name, block)) in self.blocked.iter().enumerate() {
            if index == NAMED {
                let _ = write!(out, ", and {} more", self.blocked.len() - NAMED);
                break;
            }
            if index > 0 {
                out.push_str(", ");
            }
            let _ = match block {
                Block::Dead(reason) => write!(out, "{name} is dead ({reason})"),
                Block::Disabled => write!(out, "{name} is disabled"),
                Block::Cooling(until) => write!(
                    out,
                    "{name} is cooling down for {}",
                    DisplayWait(until.saturating_duration_since(now))
                ),
                Block::BreakerOpen(until) => write!(
                    out,
                    "{name} has its circuit breaker open for {}",
                    DisplayWait(until.saturating_duration_since(now))
                ),
                Block::Probing(_) => {
                    write!(out, "{name} is half-open with its probe in flight")
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn all_dead_says_so_without_a_wait() {
        let now = Instant::now();
        let report = Report {
            blocked: vec![
                ("a".into(), Block::Dead("HTTP 401 invalid_api_key".into())),
                (
                    "b".into(),
                    Block::Dead("HTTP 429 insufficient_quota".into()),
                ),
            ],
            at_limit: Vec::new(),
        };
        let error = report.nobody_available(2, now);
        assert_eq!(
            error.to_string(),
            "no member available: all 2 members are dead: a is dead (HTTP 401 \
             invalid_api_key), b is dead (HTTP 429 insufficient_quota)"
        );
        assert_eq!(error.retry_after(), None);
        assert!(!error.is_retryable());
    }

    #[tokio::test(start_paused = true)]
    async fn cooling_members_say_when_they_return() {
        let now = Instant::now();
        let report = Report {
            blocked: vec![
                (
                    "a".into(),
                    Block::Cooling(now + Duration::from_millis(1500)),
                ),
                ("b".into(), Block::Disabled),
                (
                    "c".into(),
                    Block::BreakerOpen(now + Duration::from_secs(20)),
                ),
            ],
            at_limit: Vec::new(),
        };
        let error = report.nobody_available(3, now);
        assert_eq!(error.retry_after(), Some(Duration::from_millis(1500)));
        let text = error.to_string();
        assert!(text.contains("a is cooling down for 1.50s"), "{text}");
        assert!(text.contains("b is disabled"), "{text}");
        assert!(
            text.contains("c has its circuit breaker open for 20.00s"),
            "{text}"
        );
        assert!(text.ends_with("capacity expected back in 1.5s"), "{text}");
    }
}
