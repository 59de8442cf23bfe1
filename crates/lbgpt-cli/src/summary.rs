//! Counting outcomes and printing the end-of-run summary.
//!
//! Everything counted is bounded whatever the number of lines: counters, one
//! [`LatencyHistogram`] per provider and one overall, and a count per failure kind.

use crate::failures;
use crate::histogram::{format_latency, LatencyHistogram};
use crate::member_table;
use crate::semantic::SemanticReport;
use lbgpt_balance::MemberStats;
use lbgpt_cache::CacheStats;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What one provider answered in a batch (answers from the cache not included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberTally {
    /// Successful answers it gave.
    pub answers: u64,
    /// Their latencies: from the request's first attempt (on any provider) to the answer.
    pub latency: LatencyHistogram,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Result lines written (one per non-blank input line handled in this run).
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
    /// Lines answered partly from the cache and partly by a provider (embeddings inputs or
    /// completions prompts); counted as provider answers too.
    pub partly_cached: u64,
    /// Prompt (input) tokens the providers reported for the answers they gave.
    pub prompt_tokens: u64,
    /// Completion tokens the providers reported (none for embeddings).
    pub completion_tokens: u64,
    /// Per provider: answers and their latencies.
    pub per_member: BTreeMap<String, MemberTally>,
    /// Failed lines per kind ([`failures::kind_of`], or `invalid_input`).
    pub failures: BTreeMap<&'static str, u64>,
    /// Latencies of every answer from a provider.
    pub latency: LatencyHistogram,
    /// Lines skipped because an earlier run answered their `custom_id` (no result line).
    pub skipped: u64,
}

impl Tally {
    /// Lines that did not succeed.
    pub fn failed(&self) -> u64 {
        self.rejected + self.failed_calls
    }

    /// Counts a success served by `member` after `attempts` attempts, `latency` after the
    /// first attempt started.
    pub fn success(&mut self, member: Option<&str>, attempts: u32, latency: Duration) {
        self.total += 1;
        self.succeeded += 1;
        self.retries += u64::from(attempts.saturating_sub(1));
        let name = member.unwrap_or("unknown");
        let entry = match self.per_member.get_mut(name) {
            Some(entry) => entry,
            None => self.per_member.entry(name.to_owned()).or_default(),
        };
        entry.answers += 1;
        entry.latency.record(latency);
        self.latency.record(latency);
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

    /// Counts the tokens a provider reported for an answer it gave.
    pub fn tokens(&mut self, usage: &lbgpt_core::Usage) {
        self.prompt_tokens += usage.prompt_tokens;
        self.completion_tokens += usage.completion_tokens;
    }

    /// Notes that the last success (counted with [`Tally::success`]) was partly from the
    /// cache.
    pub fn partial(&mut self) {
        self.partly_cached += 1;
    }

    /// Counts a failed call of kind `kind` after `attempts` attempts.
    pub fn failure(&mut self, attempts: u32, kind: &'static str) {
        self.total += 1;
        self.failed_calls += 1;
        self.retries += u64::from(attempts.saturating_sub(1));
        *self.failures.entry(kind).or_default() += 1;
    }

    /// Counts a bad input line.
    pub fn rejection(&mut self) {
        self.total += 1;
        self.rejected += 1;
        *self.failures.entry(failures::INVALID_INPUT).or_default() += 1;
    }

    /// The summary of a batch that took `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary<'_> {
        Summary {
            tally: self,
            elapsed,
            peak_memory: None,
        }
    }
}

/// A readable multi-line summary of a [`Tally`] (for stderr).
pub struct Summary<'a> {
    tally: &'a Tally,
    elapsed: Duration,
    peak_memory: Option<u64>,
}

impl Summary<'_> {
    /// Adds the process's peak memory (bytes) to the `elapsed` line.
    pub fn peak_memory(mut self, bytes: Option<u64>) -> Self {
        self.peak_memory = bytes;
        self
    }
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
        if t.skipped > 0 {
            writeln!(
                f,
                "skipped:    {} (answered in the output file by an earlier run)",
                t.skipped
            )?;
        }
        write!(f, "succeeded:  {}", t.succeeded)?;
        if t.from_semantic > 0 {
            write!(
                f,
                " ({} from the cache: {} exact, {} semantic)",
                t.from_cache,
                t.from_cache - t.from_semantic,
                t.from_semantic
            )?;
        } else if t.from_cache > 0 && t.partly_cached > 0 {
            write!(
                f,
                " ({} from the cache, {} partly)",
                t.from_cache, t.partly_cached
            )?;
        } else if t.from_cache > 0 {
            write!(f, " ({} from the cache)", t.from_cache)?;
        } else if t.partly_cached > 0 {
            write!(f, " ({} partly from the cache)", t.partly_cached)?;
        }
        writeln!(f)?;
        write!(f, "failed:     {}", t.failed())?;
        if t.failed() > 0 {
            write!(f, " ({})", failed_parts(t.rejected, t.failed_calls))?;
        }
        writeln!(f)?;
        if !t.failures.is_empty() {
            let kinds: Vec<String> = t
                .failures
                .iter()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect();
            writeln!(f, "failures:   {}", kinds.join(", "))?;
        }
        writeln!(f, "retries:    {}", t.retries)?;
        if !t.per_member.is_empty() {
            let members: Vec<String> = t
                .per_member
                .iter()
                .map(|(name, member)| format!("{name} {}", member.answers))
                .collect();
            writeln!(f, "providers:  {}", members.join(", "))?;
        }
        if t.prompt_tokens + t.completion_tokens > 0 {
            writeln!(
                f,
                "tokens:     {} prompt, {} completion (answers from providers)",
                t.prompt_tokens, t.completion_tokens
            )?;
        }
        if t.latency.samples() > 0 {
            writeln!(
                f,
                "latency:    p50 {}, p95 {} (answers from providers, retries included)",
                format_latency(t.latency.percentile(0.5)),
                format_latency(t.latency.percentile(0.95))
            )?;
        }
        write!(f, "elapsed:    {seconds:.2} s ({rate:.1} requests/s)")?;
        if let Some(bytes) = self.peak_memory {
            write!(f, ", peak memory {}", format_bytes(bytes))?;
        }
        Ok(())
    }
}

/// Everything printed at the end of a run: the [`Summary`], the caches' counters and the
/// per-provider table.
pub struct Report<'a> {
    /// What happened to the lines.
    pub tally: &'a Tally,
    /// How long the batch took.
    pub elapsed: Duration,
    /// Every provider's statistics.
    pub members: &'a [MemberStats],
    /// The exact cache's kind and counters, when there is one.
    pub cache: Option<(&'a str, &'a CacheStats)>,
    /// The semantic cache's report, when there is one.
    pub semantic: Option<&'a SemanticReport>,
    /// The process's peak memory, when known.
    pub peak_memory: Option<u64>,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}",
            self.tally
                .summary(self.elapsed)
                .peak_memory(self.peak_memory)
        )?;
        if let Some((kind, stats)) = self.cache {
            writeln!(
                f,
                "cache:      {}",
                crate::cache::describe_stats(kind, stats)
            )?;
        }
        if let Some(semantic) = self.semantic {
            writeln!(f, "semantic:   {}", crate::semantic::describe(semantic))?;
        }
        write!(
            f,
            "per provider:\n{}",
            member_table::render(self.members, &self.tally.per_member, "  ")
        )
    }
}

/// `812 KB`, `23.4 MB`, `1.20 GB`.
pub fn format_bytes(bytes: u64) -> String {
    const KB: f64 = 1e3;
    const MB: f64 = 1e6;
    const GB: f64 = 1e9;
    let value = bytes as f64;
    if value < MB {
        format!("{:.0} KB", value / KB)
    } else if value < GB {
        format!("{:.1} MB", value / MB)
    } else {
        format!("{:.2} GB", value / GB)
    }
}

/// The process's peak resident memory so far (`VmHWM` of `/proc/self/status`), on Linux.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kilobytes * 1024)
}

/// `count` and `noun`, the noun in the plural unless `count` is 1: `1 failed call`,
/// `2 failed calls`.
pub fn counted(count: u64, singular: &str, plural: &str) -> String {
    if count == 1 {
        format!("{count} {singular}")
    } else {
        format!("{count} {plural}")
    }
}

/// What the failures are made of, zero parts left out: `1 invalid input line`,
/// `2 invalid input lines, 1 failed call`.
fn failed_parts(rejected: u64, failed_calls: u64) -> String {
    let mut parts = Vec::new();
    if rejected > 0 {
        parts.push(counted(
            rejected,
            "invalid input line",
            "invalid input lines",
        ));
    }
    if failed_calls > 0 {
        parts.push(counted(failed_calls, "failed call", "failed calls"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn counts_and_prints() {
        let mut tally = Tally::default();
        tally.success(Some("a"), 3, 100 * MS);
        tally.success(Some("b"), 1, 300 * MS);
        tally.failure(2, "rate_limited");
        tally.rejection();
        let plain = tally.summary(Duration::from_secs(2)).to_string();
        assert!(plain.contains("succeeded:  2\n"), "{plain}");
        assert!(
            plain.contains("failures:   invalid_input 1, rate_limited 1\n"),
            "{plain}"
        );
        assert!(plain.contains("latency:    p50 "), "{plain}");
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
        assert_eq!(tally.latency.samples(), 2, "hits have no provider latency");
        let mut tally = Tally::default();
        tally.success(Some("a"), 3, MS);
        tally.success(Some("b"), 1, MS);
        tally.failure(2, "server_error");
        tally.rejection();
        assert_eq!(tally.total, 4);
        assert_eq!(tally.failed(), 2);
        assert_eq!(tally.retries, 3);
        let text = tally
            .summary(Duration::from_secs(2))
            .peak_memory(Some(23_400_000))
            .to_string();
        assert!(text.contains("requests:   4"), "{text}");
        assert!(
            text.contains("failed:     2 (1 invalid input line, 1 failed call)\n"),
            "{text}"
        );
        assert!(text.contains("a 1, b 1"), "{text}");
        assert!(
            text.contains("2.0 requests/s), peak memory 23.4 MB"),
            "{text}"
        );
    }

    #[test]
    fn failed_parts_leave_out_zeros_and_use_singulars() {
        assert_eq!(failed_parts(0, 1), "1 failed call");
        assert_eq!(failed_parts(3, 0), "3 invalid input lines");
        assert_eq!(failed_parts(1, 2), "1 invalid input line, 2 failed calls");
        assert_eq!(counted(0, "failover", "failovers"), "0 failovers");
    }

    #[test]
    fn per_member_latencies_are_kept_apart() {
        let mut tally = Tally::default();
        for _ in 0..10 {
            tally.success(Some("fast"), 1, 10 * MS);
            tally.success(Some("slow"), 1, 200 * MS);
        }
        let fast = tally.per_member["fast"].latency.percentile(0.95);
        let slow = tally.per_member["slow"].latency.percentile(0.5);
        assert!(fast.expect("samples") < 11 * MS, "{fast:?}");
        assert!(slow.expect("samples") > 190 * MS, "{slow:?}");
        assert_eq!(tally.latency.samples(), 20);
    }

    #[test]
    fn bytes_and_peak_memory() {
        assert_eq!(format_bytes(812_000), "812 KB");
        assert_eq!(format_bytes(23_400_000), "23.4 MB");
        assert_eq!(format_bytes(1_200_000_000), "1.20 GB");
        if cfg!(target_os = "linux") {
            assert!(peak_memory().is_some_and(|bytes| bytes > 1_000_000));
        }
    }
}
