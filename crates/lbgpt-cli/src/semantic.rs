//! The semantic cache of `lbgpt run` at the end of a run: its index saved for the next run, and
//! its counters as a summary line.

use lbgpt::semantic::{SemanticCacheLayer, SemanticStats};
use std::path::PathBuf;

/// What the semantic cache did in a run.
#[derive(Debug)]
pub struct SemanticReport {
    /// Its counters at the end.
    pub stats: SemanticStats,
    /// Entries in its index at the end.
    pub entries: usize,
    /// Where the index was saved (`Ok(None)`: kept in memory only), or why it could not be.
    pub saved: Result<Option<PathBuf>, String>,
}

/// Saves the index of `layer` (to `index_dir`, when the config names one) and reports.
pub async fn finish(layer: &SemanticCacheLayer, index_dir: Option<PathBuf>) -> SemanticReport {
    let saved = match layer.save().await {
        Ok(()) => Ok(index_dir),
        Err(err) => Err(err.to_string()),
    };
    SemanticReport {
        stats: layer.stats(),
        entries: layer.index().len(),
        saved,
    }
}

/// The summary line, e.g. `3 hits, 2 misses (1 refused by the false-hit guard); 12 entries,
/// saved to /dir`.
pub fn describe(report: &SemanticReport) -> String {
    let stats = &report.stats;
    let mut text = format!("{} hits, {} misses", stats.hits, stats.misses);
    if stats.guard_rejections > 0 {
        text.push_str(&format!(
            " ({} refused by the false-hit guard)",
            stats.guard_rejections
        ));
    }
    if stats.ineligible > 0 {
        text.push_str(&format!(
            ", {} not eligible (tools, images or n > 1)",
            stats.ineligible
        ));
    }
    if stats.errors > 0 {
        text.push_str(&format!(
            ", {} embedding or index errors (treated as misses)",
            stats.errors
        ));
    }
    text.push_str(&format!("; {} entries", report.entries));
    match &report.saved {
        Ok(Some(dir)) => text.push_str(&format!(", saved to {}", dir.display())),
        Ok(None) => text.push_str(", in memory only (no index_dir)"),
        Err(err) => text.push_str(&format!(", NOT saved: {err}")),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_hits_rejections_and_where_the_index_went() {
        let mut stats = SemanticStats::default();
        stats.hits = 3;
        stats.misses = 2;
        stats.guard_rejections = 1;
        let report = SemanticReport {
            stats,
            entries: 12,
            saved: Ok(Some(PathBuf::from("/idx"))),
        };
        assert_eq!(
            describe(&report),
            "3 hits, 2 misses (1 refused by the false-hit guard); 12 entries, saved to /idx"
        );
        let failed = SemanticReport {
            saved: Err("disk full".to_owned()),
            ..report
        };
        assert!(
            describe(&failed).ends_with("NOT saved: disk full"),
            "{}",
            describe(&failed)
        );
    }
}
