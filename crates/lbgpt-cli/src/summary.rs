//! Counting outcomes and printing the end-of-run summary.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests (non-blank lines) seen.
    pub total: u64,
    /// Lines answered successfully.
    pub succeeded: u64,
    /// Lines that could not be sent (bad input).
    pub rejected: u64,
    /// Lines whose call failed.
    pub failed_calls: u64,
    /// Attempts beyond the first, over all lines.
    pub retries: u64,
    /// Lines answered from a cache (no provider call), exact or semantic.
    pub from_cache: u64,
    /// Of those, lines answered from the semantic cache (a similar earlier request's answer).
    pub from_semantic: u64,
    /// Successful answers per provider (answers from the cache not included).
    pub per_member: BTreeMap<String, u64>,
}

impl Tally {
    /// Lines that did not succeed.
    pub fn failed(&self) -> u64 {
        self.rejected + self.failed_calls
    }

    /// Counts a success served by `member` after `attempts` attempts.
    pub fn success(&mut self, member: Option<&str>, attempts: u32) {
        self.total += 1;
        self.succeeded += 1;
        self.retries += u64::from(attempts.saturating_sub(1));
        *self
            .per_member
            .entry(member.unwrap_or("unknown").to_owned())
            .or_default() += 1;
    }

    /// Counts a success answered from a cache (`semantic`: from the semantic cache).
    pub fn cached(&mut self, semantic: bool) {
        self.total += 1;
        self.succeeded += 1;
        self.from_cache += 1;
        if semantic {
            self.from_semantic += 1;
        }
    }

    /// Counts a failed call after `attempts` attempts.
    pub fn failure(&mut self, attempts: u32) {
        self.total += 1;
        self.failed_calls += 1;
        self.retries += u64::from(attempts.saturating_sub(1));
    }

    /// Counts a bad input line.
    pub fn rejection(&mut self) {
        self.total += 1;
        self.rejected += 1;
    }

    /// The summary of a batch that took `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary<'_> {
        Summary {
            tally: self,
            elapsed,
        }
    }
}

/// A readable multi-line summary (for stderr).
pub struct Summary<'a> {
    tally: &'a Tally,
    elapsed: Duration,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.tally;
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            t.total as f64 / seconds
        } else {
            0.0
        };
        writeln!(f, "requests:   {}", t.total)?;
        write!(f, "succeeded:  {}", t.succeeded)?;
        if t.from_semantic > 0 {
            write!(
                f,
                " ({} from the cache: {} exact, {} semantic)",
                t.from_cache,
                t.from_cache - t.from_semantic,
                t.from_semantic
            )?;
        } else if t.from_cache > 0 {
            write!(f, " ({} from the cache)", t.from_cache)?;
        }
        writeln!(f)?;
        write!(f, "failed:     {}", t.failed())?;
        if t.failed() > 0 {
            write!(
                f,
                " ({} invalid input lines, {} failed calls)",
                t.rejected, t.failed_calls
            )?;
        }
        writeln!(f)?;
        writeln!(f, "retries:    {}", t.retries)?;
        if !t.per_member.is_empty() {
            let members: Vec<String> = t
                .per_member
                .iter()
                .map(|(name, count)| format!("{name} {count}"))
                .collect();
            writeln!(f, "providers:  {}", members.join(", "))?;
        }
        write!(f, "elapsed:    {seconds:.2} s ({rate:.1} requests/s)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_prints() {
        let mut tally = Tally::default();
        tally.success(Some("a"), 3);
        tally.success(Some("b"), 1);
        tally.failure(2);
        tally.rejection();
        let plain = tally.summary(Duration::from_secs(2)).to_string();
        assert!(plain.contains("succeeded:  2\n"), "{plain}");
        tally.cached(false);
        let text = tally.summary(Duration::from_secs(2)).to_string();
        assert!(text.contains("succeeded:  3 (1 from the cache)"), "{text}");
        let mut semantic = tally.clone();
        semantic.cached(true);
        let text = semantic.summary(Duration::from_secs(2)).to_string();
        assert!(
            text.contains("succeeded:  4 (2 from the cache: 1 exact, 1 semantic)"),
            "{text}"
        );
        assert!(
            text.contains("a 1, b 1\n"),
            "hits are no provider's: {text}"
        );
        assert_eq!(tally.total, 5);
        assert_eq!(tally.retries, 3);
        let mut tally = Tally::default();
        tally.success(Some("a"), 3);
        tally.success(Some("b"), 1);
        tally.failure(2);
        tally.rejection();
        assert_eq!(tally.total, 4);
        assert_eq!(tally.failed(), 2);
        assert_eq!(tally.retries, 3);
        let text = tally.summary(Duration::from_secs(2)).to_string();
        assert!(text.contains("requests:   4"), "{text}");
        assert!(
            text.contains("1 invalid input lines, 1 failed calls"),
            "{text}"
        );
        assert!(text.contains("a 1, b 1"), "{text}");
        assert!(text.contains("2.0 requests/s"), "{text}");
    }
}
