//! `lbgpt run`: sends every line of an OpenAI Batch-API JSONL file (or standard input) and
//! writes one result line per input line, in input order, as results become available.
//!
//! The path of a line: [`crate::pump`] reads and parses it on its own thread
//! ([`crate::input`]), [`Feed`] turns it into a request for the facade's ordered stream and
//! records it in the [`Ledger`], the stack answers it, and [`emit`] writes its output line
//! ([`crate::output`]) and counts it ([`Tally`]).

use crate::cli::{InputPath, OutputPath, RunArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::failures;
use crate::input;
use crate::ledger::{Entry, Feed, Ledger, LineService, Slot};
use crate::output::{self, IdMaker, OutputLine};
use crate::progress::{Counts, ProgressDisplay, ProgressMode, TotalLines};
use crate::pump;
use crate::stack::{self, Stack};
use crate::summary::{self, Tally};
use futures::{FutureExt, StreamExt};
use lbgpt::Lbgpt;
use lbgpt_balance::MemberStats;
use lbgpt_cache::CacheStats;
use lbgpt_core::{ChatResponse, Error};
use secrecy::{ExposeSecret, SecretString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The config file `lbgpt run` reads when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "lbgpt.toml";
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// What happened to the lines.
    pub tally: Tally,
    /// Every provider's statistics at the end.
    pub members: Vec<MemberStats>,
    /// The cache's kind and counters at the end, when the config has a `[cache]` table.
    pub cache: Option<(&'static str, CacheStats)>,
    /// The semantic cache's counters and index at the end, when the config has a
    /// `[semantic_cache]` table.
    pub semantic: Option<crate::semantic::SemanticReport>,
    /// How long it took.
    pub elapsed: Duration,
    /// Whether Ctrl-C stopped it early.
    pub interrupted: bool,
    /// The process's peak memory at the end, when known.
    pub peak_memory: Option<u64>,
}

impl RunReport {
    /// The summary, the caches' counters and the per-provider table.
    pub fn render(&self) -> String {
        summary::Report {
            tally: &self.tally,
            elapsed: self.elapsed,
            members: &self.members,
            cache: self.cache.as_ref().map(|(kind, stats)| (*kind, stats)),
            semantic: self.semantic.as_ref(),
            peak_memory: self.peak_memory,
        }
        .to_string()
    }
}

/// Runs `lbgpt run`.
pub async fn run(args: &RunArgs) -> Result<RunReport, CliError> {
    let config = load_config(args)?;
    let input = open_input(&args.requests)?;
    if let (InputPath::File(input), OutputPath::File(output)) = (&args.requests, &args.output) {
        if same_file(input, output) {
            return Err(CliError::Usage(format!(
                "the output file {} is the requests file; choose another output",
                output.display()
            )));
        }
    }

    let built = stack::build(&config, &|name| std::env::var(name).ok())?;
    if let Some(layer) = &built.cache {
        if let Err(reason) = crate::cache::check(layer).await {
            eprintln!(
                "warning: the {} cache does not answer ({reason}); the run goes on, and \
                 requests it cannot answer go to the providers",
                layer.store().name()
            );
        }
    }
    let concurrency = args
        .max_concurrent
        .map_or(config.max_concurrent_requests, |n| n as usize);

    // Opened only now, so that a config mistake does not truncate an earlier output file.
    let mut out = open_output(&args.output)?;
    if !args.quiet {
        eprintln!("{}", start_line(args, &config, concurrency));
    }

    let batch = Batch {
        input,
        total: count_in_background(&args.requests),
        service: built.service.clone(),
        secrets: &built.secrets,
        concurrency,
        progress: ProgressMode::choose(
            args.quiet,
            io::stderr().is_terminal(),
            Duration::from_secs_f64(args.progress_interval),
        ),
    };
    let outcome = batch.execute(&mut out).await;
    let (tally, elapsed, interrupted) = match outcome {
        Ok(done) => done,
        Err(BatchError::Write(err)) => return Err(write_error(&args.output, &err)),
        Err(BatchError::Read { err, lines }) => {
            return Err(CliError::Io(format!(
                "reading {} failed after {lines} lines: {err}",
                args.requests.describe()
            )))
        }
    };

    let cache = match (&config.cache, &built.cache) {
        (Some(settings), Some(layer)) => Some((settings.store.kind().as_str(), layer.stats())),
        _ => None,
    };
    // Saved also after Ctrl-C: what was learnt so far serves the next run.
    let semantic = match (&config.semantic_cache, &built.semantic) {
        (Some(section), Some(layer)) => {
            Some(crate::semantic::finish(layer, section.settings.index_dir.clone()).await)
        }
        _ => None,
    };
    Ok(RunReport {
        tally,
        members: built.balancer.stats(),
        cache,
        semantic,
        elapsed,
        interrupted,
        peak_memory: summary::peak_memory(),
    })
}

/// The number of requests of a file input, counted on a thread of its own while the run goes
/// on (unknown for standard input, or when counting fails).
fn count_in_background(input: &InputPath) -> TotalLines {
    let total = TotalLines::unknown();
    if let InputPath::File(path) = input {
        let path = path.clone();
        let counted = total.clone();
        let spawned = std::thread::Builder::new()
            .name("lbgpt-count".to_owned())
            .spawn(move || {
                let file = File::open(&path)?;
                counted.set(input::count_requests(BufReader::with_capacity(
                    1 << 16,
                    file,
                ))?);
                Ok::<(), io::Error>(())
            });
        // Without the count the progress shows a spinner instead of a bar; nothing else.
        drop(spawned);
    }
    total
}

/// The config of a run: `--config`, else `./lbgpt.toml`, else the keys of the environment.
fn load_config(args: &RunArgs) -> Result<Config, CliError> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    Ok(Config::load_for_run(&path, args.config.is_some())?)
}

/// The line printed on stderr when a run starts: input, output, providers, strategy, caches,
/// concurrency.
fn start_line(args: &RunArgs, config: &Config, concurrency: usize) -> String {
    let providers: Vec<String> = config.providers.iter().map(|p| p.describe()).collect();
    let mut cache = config.cache.as_ref().map_or_else(
        || "no cache".to_owned(),
        |c| format!("cache {}", c.describe()),
    );
    if let Some(semantic) = &config.semantic_cache {
        cache.push_str(&format!(", semantic cache ({})", semantic.describe()));
    }
    let output = match &args.output {
        OutputPath::Stdout => "stdout".to_owned(),
        OutputPath::File(path) => path.display().to_string(),
    };
    let input = match &args.requests {
        InputPath::Stdin => "stdin".to_owned(),
        InputPath::File(path) => path.display().to_string(),
    };
    let source = if config.path.as_os_str().is_empty() {
        "config: keys from the environment".to_owned()
    } else {
        format!("config {}", config.path.display())
    };
    format!(
        "lbgpt run: {input} -> {output}, {source}, providers: {}, strategy {}, {cache}, at most \
         {concurrency} in flight",
        providers.join(", "),
        config.balance.strategy.name(),
    )
}

/// Opens the requests: standard input for `-`, else the file (which must not be a
/// directory).
fn open_input(path: &InputPath) -> Result<Box<dyn BufRead + Send>, CliError> {
    match path {
        InputPath::Stdin => Ok(Box::new(BufReader::with_capacity(1 << 16, io::stdin()))),
        InputPath::File(path) => {
            let file = File::open(path).map_err(|err| {
                CliError::Usage(format!(
                    "cannot read the requests file {}: {}",
                    path.display(),
                    describe_io(&err)
                ))
            })?;
            if path.is_dir() {
                return Err(CliError::Usage(format!(
                    "the requests file {} is a directory",
                    path.display()
                )));
            }
            Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
        }
    }
}

/// Opens where results go: standard output, or the file (created or replaced).
fn open_output(path: &OutputPath) -> Result<BufWriter<Box<dyn Write>>, CliError> {
    let sink: Box<dyn Write> = match path {
        OutputPath::Stdout => Box::new(io::stdout().lock()),
        OutputPath::File(path) => {
            let file = File::create(path).map_err(|err| {
                CliError::Usage(format!(
                    "cannot create the output file {}: {}",
                    path.display(),
                    describe_io(&err)
                ))
            })?;
            Box::new(file)
        }
    };
    Ok(BufWriter::with_capacity(1 << 16, sink))
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

/// One pass over an input through a stack: what `lbgpt run` and `lbgpt demo` share.
pub struct Batch<'a> {
    /// The Batch-API lines.
    pub input: Box<dyn BufRead + Send>,
    /// How many requests the input has, once known.
    pub total: TotalLines,
    /// The stack that answers them.
    pub service: Stack,
    /// Secrets to scrub from error messages.
    pub secrets: &'a [SecretString],
    /// Most requests in flight.
    pub concurrency: usize,
    /// How progress is shown on standard error.
    pub progress: ProgressMode,
}

impl Batch<'_> {
    /// Sends every line and writes its result line to `out`, in input order, flushing
    /// whenever the next result is not ready yet. Returns the tally, the time taken and
    /// whether Ctrl-C stopped it.
    pub async fn execute(
        self,
        out: &mut impl Write,
    ) -> Result<(Tally, Duration, bool), BatchError> {
        let (lines, pump) =
            pump::start(self.input, Box::new(|_| true)).map_err(BatchError::Write)?;
        let ledger = Ledger::new();
        let client = Lbgpt::new(LineService::new(self.service, ledger.clone(), pump.clone()))
            .max_concurrent_requests(self.concurrency);
        let mut results =
            client.chat_completion_ordered(Feed::new(lines, pump.clone(), ledger.clone()));
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        // The first poll installs the handler: from here on Ctrl-C ends the run cleanly.
        let mut interrupted = (&mut ctrl_c).now_or_never().is_some();

        let started = Instant::now();
        let ids = IdMaker::new();
        let mut tally = Tally::default();
        let mut progress = ProgressDisplay::new(self.progress, self.total);
        let mut ticks = self.progress.tick_every().map(|every| {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });

        while !interrupted {
            // Flush whenever the next result is not ready yet, so the file grows as answers
            // come.
            let next = match results.next().now_or_never() {
                Some(next) => next,
                None => {
                    out.flush().map_err(BatchError::Write)?;
                    tokio::select! {
                        next = results.next() => next,
                        _ = &mut ctrl_c => {
                            interrupted = true;
                            break;
                        }
                        _ = tick(&mut ticks) => {
                            progress.tick(Counts::of(&tally, 0));
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
            progress.update(Counts::of(&tally, 0));
            // Also while results keep coming without a pause.
            interrupted = (&mut ctrl_c).now_or_never().is_some();
        }
        // Nothing more is read (the reader thread ends), and requests in flight are dropped.
        pump.stop();
        drop(results);
        out.flush().map_err(BatchError::Write)?;
        progress.finish(Counts::of(&tally, 0));
        if let Some(err) = ledger.take_io_error() {
            return Err(BatchError::Read {
                err,
                lines: tally.total,
            });
        }
        Ok((tally, started.elapsed(), interrupted))
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
fn emit(
    out: &mut impl Write,
    ids: &IdMaker,
    entry: &Entry,
    result: Result<ChatResponse, Error>,
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
            if output::from_cache(&answer) {
                tally.cached(output::semantic_score(&answer).is_some());
            } else {
                tally.success(
                    answer.meta.member.as_deref(),
                    answer.meta.attempts.max(1),
                    answer.meta.latency,
                );
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

fn write_line(out: &mut impl Write, line: &OutputLine<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

fn write_error(path: &OutputPath, err: &io::Error) -> CliError {
    CliError::Io(format!("writing {} failed: {err}", path.describe()))
}

fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
