//! `lbgpt run`: sends every line of an OpenAI Batch-API JSONL file and writes one result line
//! per input line, in input order, as results become available.

use crate::cli::RunArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::input::InputReader;
use crate::ledger::{Entry, Feed, Ledger, LineService};
use crate::output::{self, IdMaker, OutputLine};
use crate::stack;
use crate::summary::Tally;
use futures::{FutureExt, StreamExt};
use lbgpt::Lbgpt;
use lbgpt_balance::MemberStats;
use lbgpt_cache::CacheStats;
use lbgpt_core::{ChatResponse, Error};
use secrecy::{ExposeSecret, SecretString};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;
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
}

/// Runs `lbgpt run`.
pub async fn run(args: &RunArgs) -> Result<RunReport, CliError> {
    let config = Config::load(&args.config)?;
    let input = File::open(&args.requests).map_err(|err| {
        CliError::Usage(format!(
            "cannot read the requests file {}: {}",
            args.requests.display(),
            describe_io(&err)
        ))
    })?;
    if args.requests.is_dir() {
        return Err(CliError::Usage(format!(
            "the requests file {} is a directory",
            args.requests.display()
        )));
    }
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && same_file(&args.requests, &args.output) {
        return Err(CliError::Usage(format!(
            "the output file {} is the requests file; choose another output",
            args.output.display()
        )));
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
    let providers: Vec<String> = config.providers.iter().map(|p| p.describe()).collect();
    let concurrency = args
        .max_concurrent
        .map_or(config.max_concurrent_requests, |n| n as usize);

    // Opened only now, so that a config mistake does not truncate an earlier output file.
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(io::stdout().lock())
    } else {
        let file = File::create(&args.output).map_err(|err| {
            CliError::Usage(format!(
                "cannot create the output file {}: {}",
                args.output.display(),
                describe_io(&err)
            ))
        })?;
        Box::new(file)
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);

    let ledger = Ledger::new();
    let client = Lbgpt::new(LineService::new(built.service, ledger.clone()))
        .max_concurrent_requests(concurrency);
    let feed = Feed::new(
        InputReader::new(BufReader::with_capacity(1 << 16, input)),
        ledger.clone(),
    );
    let mut results = client.chat_completion_ordered(feed);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // The first poll installs the handler: from here on Ctrl-C ends the run cleanly.
    let mut interrupted = (&mut ctrl_c).now_or_never().is_some();
    let mut cache = config.cache.as_ref().map_or_else(
        || "no cache".to_owned(),
        |c| format!("cache {}", c.describe()),
    );
    if let Some(semantic) = &config.semantic_cache {
        cache.push_str(&format!(", semantic cache ({})", semantic.describe()));
    }
    eprintln!(
        "lbgpt run: {} -> {}, providers: {}, strategy {}, {cache}, at most {concurrency} in flight",
        args.requests.display(),
        if to_stdout {
            "stdout".into()
        } else {
            args.output.display().to_string()
        },
        providers.join(", "),
        config.balance.strategy.name(),
    );

    let started = Instant::now();
    let ids = IdMaker::new();
    let mut tally = Tally::default();
    let mut progress = Progress::new(io::stderr().is_terminal());

    while !interrupted {
        // Flush whenever the next result is not ready yet, so the file grows as answers come.
        let next = match results.next().now_or_never() {
            Some(next) => next,
            None => {
                out.flush().map_err(|err| write_error(&args.output, &err))?;
                tokio::select! {
                    next = results.next() => next,
                    _ = &mut ctrl_c => {
                        interrupted = true;
                        break;
                    }
                }
            }
        };
        let Some(result) = next else { break };
        let Some(entry) = ledger.pop() else {
            // One entry per result is pushed before the request is sent; never taken.
            return Err(CliError::Io(
                "internal error: a result without its input line".to_owned(),
            ));
        };
        emit(&mut out, &ids, &entry, result, &built.secrets, &mut tally)
            .map_err(|err| write_error(&args.output, &err))?;
        progress.tick(&tally, started);
        // Also while results keep coming without a pause.
        interrupted = (&mut ctrl_c).now_or_never().is_some();
    }
    drop(results);
    progress.finish();
    out.flush().map_err(|err| write_error(&args.output, &err))?;

    if let Some(err) = ledger.take_io_error() {
        return Err(CliError::Io(format!(
            "reading {} failed after {} lines: {err}",
            args.requests.display(),
            tally.total
        )));
    }
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
        elapsed: started.elapsed(),
        interrupted,
    })
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
                tally.success(answer.meta.member.as_deref(), answer.meta.attempts.max(1));
            }
            write_line(out, &output::success(id, custom_id, entry.line, &answer))
        }
        Err(mut error) => {
            for secret in secrets {
                error.redact(secret.expose_secret());
            }
            let line = output::failure(id, custom_id, entry.line, &error, entry.failed_after);
            tally.failure(line.lbgpt.attempts);
            write_line(out, &line)
        }
    }
}

fn write_line(out: &mut impl Write, line: &OutputLine<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

fn write_error(path: &Path, err: &io::Error) -> CliError {
    CliError::Io(format!("writing {} failed: {err}", path.display()))
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

/// A one-line progress display on a terminal's stderr, redrawn at most once a second.
struct Progress {
    enabled: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            last: None,
        }
    }

    fn tick(&mut self, tally: &Tally, started: Instant) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now - last < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(now);
        let seconds = started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{} done, {} failed, {:.1} requests/s   ",
            tally.total,
            tally.failed(),
            tally.total as f64 / seconds
        );
    }

    fn finish(&self) {
        if self.enabled && self.last.is_some() {
            eprintln!();
        }
    }
}
