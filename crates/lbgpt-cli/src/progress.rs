//! Progress of a batch on standard error: an `indicatif` bar on a terminal (a spinner while
//! the number of lines is unknown), plain lines every few seconds and at the end otherwise
//! (logs, CI), or nothing (`--quiet`).

use crate::summary::Tally;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the bar's text (rate, ETA) is refreshed at most, and at least when nothing
/// happens.
const BAR_REFRESH: Duration = Duration::from_millis(200);

/// The value of [`TotalLines`] while the count is unknown.
const UNKNOWN: u64 = u64::MAX;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProgressMode {
    /// A bar redrawn in place (standard error is a terminal).
    Bar,
    /// One plain line every `every` and one at the end.
    Plain {
        /// Time between two lines.
        every: Duration,
    },
    /// Nothing.
    Off,
}

impl ProgressMode {
    /// Off when `quiet`, a bar when standard error is a terminal, else plain lines.
    pub fn choose(quiet: bool, terminal: bool, every: Duration) -> Self {
        if quiet {
            ProgressMode::Off
        } else if terminal {
            ProgressMode::Bar
        } else {
            ProgressMode::Plain { every }
        }
    }

    /// How often [`ProgressDisplay::tick`] should be called: `None` when never.
    pub fn tick_every(&self) -> Option<Duration> {
        match self {
            ProgressMode::Bar => Some(BAR_REFRESH),
            ProgressMode::Plain { every } => Some(*every),
            ProgressMode::Off => None,
        }
    }
}

/// The number of requests in the input, once known (counted on another thread for a file;
/// never for standard input).
#[derive(Debug, Clone)]
pub struct TotalLines(Arc<AtomicU64>);

impl Default for TotalLines {
    fn default() -> Self {
        TotalLines(Arc::new(AtomicU64::new(UNKNOWN)))
    }
}

impl TotalLines {
    /// A total not known yet.
    pub fn unknown() -> Self {
        TotalLines::default()
    }

    /// Sets the total.
    pub fn set(&self, total: u64) {
        self.0.store(total.min(UNKNOWN - 1), Ordering::Release);
    }

    /// The total, when known.
    pub fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Acquire)).filter(|&total| total != UNKNOWN)
    }
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Lines done: result lines written plus lines skipped (answered by an earlier run).
    pub done: u64,
    /// Lines skipped because an earlier run answered them.
    pub skipped: u64,
    /// Lines that failed.
    pub failed: u64,
    /// Lines answered from a cache.
    pub cache_hits: u64,
}

impl Counts {
    /// The counts of `tally`, with `skipped` lines skipped so far (the reader counts them as
    /// it reads; the tally gets the final count when the batch ends).
    pub fn of(tally: &Tally, skipped: u64) -> Self {
        Counts {
            done: tally.total + skipped,
            skipped,
            failed: tally.failed(),
            cache_hits: tally.from_cache,
        }
    }
}

/// Shows the progress of one batch.
pub struct ProgressDisplay {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: TotalLines,
    bar_has_length: bool,
    started: Instant,
    last_update: Option<Instant>,
}

impl ProgressDisplay {
    /// A display in `mode` for a batch of `total` lines, starting now.
    pub fn new(mode: ProgressMode, total: TotalLines) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            bar.set_style(spinner_style());
            bar.enable_steady_tick(BAR_REFRESH);
            bar
        });
        let mut display = ProgressDisplay {
            mode,
            bar,
            total,
            bar_has_length: false,
            started: Instant::now(),
            last_update: None,
        };
        display.redraw(Counts::default());
        display
    }

    /// After a result: updates the bar (at most every [`BAR_REFRESH`]).
    pub fn update(&mut self, counts: Counts) {
        if self.bar.is_none() {
            return;
        }
        let now = Instant::now();
        if self
            .last_update
            .is_some_and(|last| now.duration_since(last) < BAR_REFRESH)
        {
            return;
        }
        self.last_update = Some(now);
        self.redraw(counts);
    }

    /// Periodically ([`ProgressMode::tick_every`]): refreshes the bar, or prints a plain line.
    pub fn tick(&mut self, counts: Counts) {
        match self.mode {
            ProgressMode::Bar => self.redraw(counts),
            ProgressMode::Plain { .. } => eprintln!("progress: {}", self.line(counts)),
            ProgressMode::Off => {}
        }
    }

    /// At the end: clears the bar, or prints the last plain line.
    pub fn finish(&mut self, counts: Counts) {
        match self.mode {
            ProgressMode::Bar => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
            ProgressMode::Plain { .. } => eprintln!("progress: {} (end)", self.line(counts)),
            ProgressMode::Off => {}
        }
    }

    /// Prints `message` on standard error without garbling the bar; nothing when off.
    pub fn message(&self, message: &str) {
        match (&self.bar, self.mode) {
            (_, ProgressMode::Off) => {}
            (Some(bar), _) => bar.suspend(|| eprintln!("{message}")),
            (None, _) => eprintln!("{message}"),
        }
    }

    fn redraw(&mut self, counts: Counts) {
        let Some(bar) = &self.bar else { return };
        if let (false, Some(total)) = (self.bar_has_length, self.total.get()) {
            bar.set_length(total);
            bar.set_style(bar_style());
            self.bar_has_length = true;
        }
        bar.set_position(counts.done);
        bar.set_message(self.details(counts));
    }

    /// `1200/5000 done (24.0 %), 3 failed, 150 cache hits, 85.3 requests/s, ETA 45 s`.
    fn line(&self, counts: Counts) -> String {
        let done = match self.total.get() {
            Some(total) if total > 0 => format!(
                "{}/{total} done ({:.1} %)",
                counts.done,
                counts.done as f64 * 100.0 / total as f64
            ),
            Some(total) => format!("{}/{total} done", counts.done),
            None => format!("{} done", counts.done),
        };
        format!("{done}, {}", self.details(counts))
    }

    /// `3 failed, 150 cache hits, 85.3 requests/s, ETA 45 s` (and `, 700 skipped` when
    /// resuming).
    fn details(&self, counts: Counts) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let handled = counts.done.saturating_sub(counts.skipped);
        let rate = if elapsed > 0.0 {
            handled as f64 / elapsed
        } else {
            0.0
        };
        let mut text = format!(
            "{} failed, {} cache hits, {rate:.1} requests/s",
            counts.failed, counts.cache_hits
        );
        if counts.skipped > 0 {
            text.push_str(&format!(", {} skipped (answered before)", counts.skipped));
        }
        if let Some(total) = self.total.get() {
            let left = total.saturating_sub(counts.done);
            if left > 0 && rate > 0.0 {
                text.push_str(&format!(", ETA {}", eta(left as f64 / rate)));
            }
        }
        text
    }
}

/// `45 s`, `12m05s`, `3h20m`.
fn eta(seconds: f64) -> String {
    let seconds = seconds.round() as u64;
    if seconds < 60 {
        format!("{seconds} s")
    } else if seconds < 3600 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} done, {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} ({percent}%) {msg}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_follows_quiet_and_the_terminal() {
        let every = Duration::from_secs(5);
        assert_eq!(ProgressMode::choose(true, true, every), ProgressMode::Off);
        assert_eq!(ProgressMode::choose(false, true, every), ProgressMode::Bar);
        assert_eq!(
            ProgressMode::choose(false, false, every),
            ProgressMode::Plain { every }
        );
        assert_eq!(ProgressMode::Off.tick_every(), None);
    }

    #[test]
    fn plain_lines_say_done_total_failed_hits_and_rate() {
        let total = TotalLines::unknown();
        let display = ProgressDisplay::new(
            ProgressMode::Plain {
                every: Duration::from_secs(5),
            },
            total.clone(),
        );
        let counts = Counts {
            done: 1200,
            skipped: 0,
            failed: 3,
            cache_hits: 150,
        };
        let line = display.line(counts);
        assert!(
            line.starts_with("1200 done, 3 failed, 150 cache hits, "),
            "{line}"
        );
        assert!(line.contains("requests/s"), "{line}");
        assert!(!line.contains("ETA"), "no ETA without a total: {line}");
        total.set(5000);
        let line = display.line(counts);
        assert!(
            line.starts_with("1200/5000 done (24.0 %), 3 failed"),
            "{line}"
        );
        assert!(line.contains("ETA"), "{line}");
        let resumed = Counts {
            skipped: 700,
            ..counts
        };
        assert!(display.line(resumed).contains("700 skipped"));
    }

    #[test]
    fn etas_read_well() {
        assert_eq!(eta(44.6), "45 s");
        assert_eq!(eta(725.0), "12m05s");
        assert_eq!(eta(12_000.0), "3h20m");
    }
}
