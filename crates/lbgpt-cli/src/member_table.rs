//! The per-provider statistics table printed at the end of `lbgpt run` and `lbgpt demo`.

use crate::histogram::format_latency;
use crate::summary::MemberTally;
use lbgpt_balance::usage::UsageSnapshot;
use lbgpt_balance::MemberStats;
use std::collections::BTreeMap;

/// How many columns the table has.
const COLUMNS: usize = 13;

/// The column titles; every column but the first and the last two is a right-aligned number.
const HEADERS: [&str; COLUMNS] = [
    "provider",
    "requests",
    "ok",
    "failed",
    "prompt tok",
    "completion tok",
    "429s",
    "retries",
    "failovers",
    "p50",
    "p95",
    "headroom",
    "state",
];

/// The statistics of every provider as an aligned text table, one provider per line, each line
/// starting with `indent`.
///
/// `requests` counts upstream calls, `retries` the calls a provider received as another's
/// failover, `failovers` the calls that failed on it and moved on; `p50` / `p95` are the
/// latencies of the answers it gave (from `answers`, counted by the writer); `headroom` is what
/// is left of its limits in the current minute.
pub fn render(
    stats: &[MemberStats],
    answers: &BTreeMap<String, MemberTally>,
    indent: &str,
) -> String {
    let rows: Vec<[String; COLUMNS]> = stats
        .iter()
        .map(|member| row(member, answers.get(&member.name)))
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let headers = HEADERS.map(str::to_owned);
    for row in std::iter::once(&headers).chain(&rows) {
        text.push_str(indent);
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let numeric = (1..=10).contains(&i);
            if numeric {
                line.push_str(&format!("{cell:>width$}"));
            } else if i == row.len() - 1 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}"));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn row(stats: &MemberStats, answers: Option<&MemberTally>) -> [String; COLUMNS] {
    let latency = |quantile| format_latency(answers.and_then(|a| a.latency.percentile(quantile)));
    [
        stats.name.clone(),
        stats.requests.to_string(),
        stats.succeeded.to_string(),
        stats.failed.to_string(),
        stats.prompt_tokens.to_string(),
        stats.completion_tokens.to_string(),
        stats.rate_limited_seen.to_string(),
        stats.retries.to_string(),
        stats.failovers.to_string(),
        latency(0.5),
        latency(0.95),
        headroom(stats.headroom.as_ref()),
        stats.state.to_string(),
    ]
}

/// `rpm 480/500, tpm 190000/200000`, or `no limits`.
fn headroom(snapshot: Option<&UsageSnapshot>) -> String {
    let Some(snapshot) = snapshot else {
        return "-".to_owned();
    };
    let mut parts = Vec::new();
    if let Some(limit) = snapshot.limits.rpm {
        let left = snapshot.headroom_requests.unwrap_or(limit);
        parts.push(format!("rpm {left}/{limit}"));
    }
    if let Some(limit) = snapshot.limits.tpm {
        let left = snapshot.headroom_tokens.unwrap_or(limit);
        parts.push(format!("tpm {left}/{limit}"));
    }
    if parts.is_empty() {
        "no limits".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_balance::usage::Limits;

    #[test]
    fn headroom_shows_what_is_left_of_each_limit() {
        assert_eq!(headroom(None), "-");
        assert_eq!(
            headroom(Some(&UsageSnapshot::idle(Limits::none()))),
            "no limits"
        );
        let mut snapshot = UsageSnapshot::idle(Limits::none().rpm(500).tpm(200_000));
        snapshot.headroom_requests = Some(480);
        snapshot.headroom_tokens = Some(190_000);
        assert_eq!(headroom(Some(&snapshot)), "rpm 480/500, tpm 190000/200000");
    }
}
