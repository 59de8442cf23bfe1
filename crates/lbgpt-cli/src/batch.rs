//! One pass of Batch-API lines through a stack: what `lbgpt run` and `lbgpt demo` share.
//!
//! The path of a line: [`crate::pump`] reads and parses it on its own thread
//! ([`crate::input`]) and skips it when an earlier run answered its `custom_id`; [`Feed`]
//! turns it into a request for the facade's ordered stream and records it in the [`Ledger`];
//! the stack answers it; [`emit`] writes its output line ([`crate::output`]) and counts it
//! ([`Tally`]). Results are written in input order and flushed whenever the next one is not
//! ready yet.
//!
//! Ctrl-C: the first stops reading (no new request starts) and lets the requests in flight
//! finish and be written; the second drops them and ends at once.

use crate::endpoint::{CliAnswer, CliEndpoint};
use crate::failures;
use crate::idset::IdSet;
use crate::input::DuplicateCheck;
use crate::interrupt::Interrupts;
use crate::ledger::{Entry, Feed, Ledger, LineService, Slot};
use crate::output::{self, IdMaker, OutputLine};
use crate::progress::{Counts, ProgressDisplay, ProgressMode, TotalLines};
use crate::pump::{self, LineFilter};
use crate::stack::EndpointService;
use crate::summary::Tally;
use futures::{FutureExt, StreamExt};
use lbgpt::Lbgpt;
use lbgpt_core::Error;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::io::{self, BufRead, Write};
use std::time::{Duration, Instant};

/// Called after each result line with the tally so far (its `skipped` is set when the batch
/// ends).
pub type Observer<'a> = Box<dyn FnMut(&Tally) + 'a>;

/// One pass over an input through the stack of one endpoint (requests of type `R`).
pub struct Batch<'a, R: CliEndpoint> {
    /// The Batch-API lines.
    pub input: Box<dyn BufRead + Send>,
    /// How many requests the input has, once known.
    pub total: TotalLines,
    /// `custom_id`s answered by an earlier run: their lines are skipped.
    pub skip: Option<IdSet>,
    /// Whether a repeated `custom_id` is refused (off: nothing is kept per line).
    pub duplicates: DuplicateCheck,
    /// The stack that answers them.
    pub service: EndpointService<R>,
    /// Secrets to scrub from error messages.
    pub secrets: &'a [SecretString],
    /// Most requests in flight.
    pub concurrency: usize,
    /// How progress is shown on standard error.
    pub progress: ProgressMode,
    /// Ctrl-C, taken over by the caller (before it printed anything a user may react to);
    /// `None`: taken over when the batch starts.
    pub interrupts: Option<Interrupts>,
    /// Called after each result line with the tally so far (the demo revokes a key with it).
    pub observer: Option<Observer<'a>>,
}

/// How a batch ended.
#[derive(Debug)]
pub struct Outcome {
    /// What happened to the lines (and how many were skipped).
    pub tally: Tally,
    /// How long it took.
    pub elapsed: Duration,
    /// How it stopped.
    pub stop: Stop,
}

/// How a batch stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every line of the input has its result.
    Finished,
    /// Ctrl-C: reading stopped and the requests in flight were finished and written.
    Interrupted,
    /// Ctrl-C twice: the requests in flight were dropped.
    Aborted,
}

/// Why a batch stopped before its end.
#[derive(Debug)]
pub enum BatchError {
    /// Writing a result failed.
    Write(io::Error),
    /// Reading the input failed after `lines` lines (their results are written).
    Read {
        /// The read error.
        err: io::Error,
        /// Lines handled before it.
        lines: u64,
    },
}

impl<R: CliEndpoint + Send + 'static> Batch<'_, R> {
    /// Sends every line and writes its result line to `out`, in input order.
    pub async fn execute(mut self, out: &mut impl Write) -> Result<Outcome, BatchError> {
        // From here on, Ctrl-C ends the batch cleanly.
        let mut interrupts = match self.interrupts {
            Some(interrupts) => Some(interrupts),
            None => Interrupts::install().ok(),
        };
        let (lines, pump) = pump::start::<R>(self.input, self.duplicates, skip_filter(self.skip))
            .map_err(BatchError::Write)?;
        let ledger = Ledger::new();
        let client = Lbgpt::new(LineService::new(self.service, ledger.clone(), pump.clone()))
            .max_concurrent_requests(self.concurrency);
        let mut results = R::send_ordered(&client, Feed::new(lines, ledger.clone()));

        let started = Instant::now();
        let ids = IdMaker::new();
        let mut tally = Tally::default();
        let mut progress = ProgressDisplay::new(self.progress, self.total);
        let mut ticks = self.progress.tick_every().map(|every| {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        let mut stop = Stop::Finished;

        loop {
            // Flush whenever the next result is not ready yet, so the file grows as answers
            // come.
            let next = match results.next().now_or_never() {
                Some(next) => next,
                None => {
                    out.flush().map_err(BatchError::Write)?;
                    tokio::select! {
                        next = results.next() => next,
                        presses = next_interrupt(&mut interrupts) => {
                            stop = on_interrupt(presses, &pump, &ledger, &progress);
                            if stop == Stop::Aborted {
                                break;
                            }
                            continue;
                        }
                        _ = tick(&mut ticks) => {
                            progress.tick(Counts::of(&tally, pump.skipped()));
                            continue;
                        }
                    }
                }
            };
            let Some(result) = next else { break };
            let Some(slot) = ledger.pop() else {
                // One slot per result is pushed before the request is sent; never taken.
                return Err(BatchError::Write(io::Error::other(
                    "internal error: a result without its input line",
                )));
            };
            let Slot::Line(entry) = slot else { continue };
            emit(out, &ids, &entry, result, self.secrets, &mut tally).map_err(BatchError::Write)?;
            if let Some(observer) = &mut self.observer {
                observer(&tally);
            }
            progress.update(Counts::of(&tally, pump.skipped()));
            // Also while results keep coming without a pause.
            if let Some(presses) = next_interrupt(&mut interrupts).now_or_never() {
                stop = on_interrupt(presses, &pump, &ledger, &progress);
                if stop == Stop::Aborted {
                    break;
                }
            }
        }
        // Nothing more is read (the reader thread ends).
        pump.stop();
        if stop == Stop::Aborted {
            // Results already finished in order are still written; the requests still in
            // flight are dropped with the stream.
            while let Some(Some(result)) = results.next().now_or_never() {
                if let Some(Slot::Line(entry)) = ledger.pop() {
                    emit(out, &ids, &entry, result, self.secrets, &mut tally)
                        .map_err(BatchError::Write)?;
                }
            }
        }
        drop(results);
        out.flush().map_err(BatchError::Write)?;
        tally.skipped = pump.skipped();
        progress.finish(Counts::of(&tally, tally.skipped));
        if let Some(err) = pump.take_io_error() {
            return Err(BatchError::Read {
                err,
                lines: tally.total,
            });
        }
        Ok(Outcome {
            tally,
            elapsed: started.elapsed(),
            stop,
        })
    }
}

/// Skips the lines whose `custom_id` is in `skip`.
fn skip_filter<R>(skip: Option<IdSet>) -> LineFilter<R> {
    match skip {
        Some(ids) if !ids.is_empty() => Box::new(move |line| match line.custom_id.as_deref() {
            Some(custom_id) => Ok(!ids.contains(custom_id)?),
            None => Ok(true),
        }),
        _ => Box::new(|_| Ok(true)),
    }
}

/// The `presses`-th Ctrl-C: the first stops reading, the second aborts.
fn on_interrupt(
    presses: u32,
    pump: &pump::PumpHandle,
    ledger: &Ledger,
    progress: &ProgressDisplay,
) -> Stop {
    if presses >= 2 {
        progress.message("Ctrl-C again: stopping now; the requests in flight are dropped");
        return Stop::Aborted;
    }
    pump.stop();
    progress.message(&format!(
        "Ctrl-C: no new requests; finishing the {} in flight (Ctrl-C again to stop at once)",
        ledger.pending_lines()
    ));
    Stop::Interrupted
}

/// The number of the next Ctrl-C; never, when Ctrl-C could not be taken over.
async fn next_interrupt(interrupts: &mut Option<Interrupts>) -> u32 {
    match interrupts {
        Some(interrupts) => interrupts.next().await,
        None => std::future::pending().await,
    }
}

/// The next tick of `ticks`; never, without ticks.
async fn tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Writes the output line of `entry`, whose result is `result`, and counts it.
fn emit<A: CliAnswer>(
    out: &mut impl Write,
    ids: &IdMaker,
    entry: &Entry,
    result: Result<A, Error>,
    secrets: &[SecretString],
    tally: &mut Tally,
) -> io::Result<()> {
    let id = ids.id(entry.line);
    let custom_id = entry.custom_id.as_deref();
    if let Some(problem) = &entry.problem {
        tally.rejection();
        return write_line(out, &output::rejected(id, custom_id, entry.line, problem));
    }
    match result {
        Ok(answer) => {
            if answer.answered_by_cache() {
                tally.cached(output::semantic_score(&answer).is_some());
            } else {
                let meta = answer.meta();
                tally.success(meta.member.as_deref(), meta.attempts.max(1), meta.latency);
                if answer.cached_parts().is_some() {
                    tally.partial();
                }
                if let Some(usage) = answer.tokens() {
                    tally.tokens(&usage);
                }
            }
            write_line(out, &output::success(id, custom_id, entry.line, &answer))
        }
        Err(mut error) => {
            for secret in secrets {
                error.redact(secret.expose_secret());
            }
            let line = output::failure(id, custom_id, entry.line, &error, entry.failed_after);
            tally.failure(line.lbgpt.attempts, failures::kind_of(&error));
            write_line(out, &line)
        }
    }
}

/// Writes one result line, newline included.
fn write_line<A: Serialize>(out: &mut impl Write, line: &OutputLine<'_, A>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pump::tests::line;
    use lbgpt_core::{ChatRequest, ChatResponse};
    use std::io::Read;
    use tower::util::BoxCloneService;

    fn lines(ids: &[&str]) -> Vec<u8> {
        ids.iter()
            .map(|id| line(id))
            .collect::<String>()
            .into_bytes()
    }

    /// Yields its text, then fails to read.
    struct FailingInput(io::Cursor<Vec<u8>>);

    impl Read for FailingInput {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("the disk went away")),
                n => Ok(n),
            }
        }
    }

    /// Answers every request at once.
    fn answering() -> EndpointService<ChatRequest> {
        BoxCloneService::new(tower::service_fn(|_: ChatRequest| async {
            serde_json::from_value::<ChatResponse>(serde_json::json!({"choices": []}))
                .map_err(|err| Error::Internal(err.to_string()))
        }))
    }

    fn batch(
        input: impl Read + Send + 'static,
        skip: Option<IdSet>,
    ) -> Batch<'static, ChatRequest> {
        Batch {
            input: Box::new(io::BufReader::new(input)),
            total: TotalLines::unknown(),
            skip,
            duplicates: DuplicateCheck::On,
            service: answering(),
            secrets: &[],
            concurrency: 4,
            progress: ProgressMode::Off,
            interrupts: None,
            observer: None,
        }
    }

    fn custom_ids(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                value["custom_id"].as_str().expect("a custom_id").to_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_read_error_is_reported_after_the_results_of_the_lines_read() {
        let input = FailingInput(io::Cursor::new(lines(&["a", "b", "c"])));
        let mut out = Vec::new();
        match batch(input, None).execute(&mut out).await {
            Err(BatchError::Read { err, lines }) => {
                assert_eq!(lines, 3);
                assert_eq!(err.to_string(), "the disk went away");
            }
            other => panic!("expected a read error, got {other:?}"),
        }
        assert_eq!(custom_ids(&out), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn lines_answered_before_are_skipped_and_counted() {
        let mut skip = IdSet::default();
        for id in ["b", "d"] {
            skip.insert(id).expect("inserted");
        }
        let input = io::Cursor::new(lines(&["a", "b", "c", "d", "e"]));
        let mut out = Vec::new();
        let outcome = batch(input, Some(skip))
            .execute(&mut out)
            .await
            .expect("the batch runs");
        assert_eq!(outcome.stop, Stop::Finished);
        assert_eq!((outcome.tally.total, outcome.tally.skipped), (3, 2));
        assert_eq!(custom_ids(&out), ["a", "c", "e"]);
    }
}
