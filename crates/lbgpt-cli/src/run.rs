//! `lbgpt run`: sends every line of an OpenAI Batch-API JSONL file (or standard input) and
//! writes one result line per input line, in input order, as results become available.
//!
//! This module loads the config, finds the run's endpoint (the `url` of the input's first good
//! line, [`input::detect_endpoint`]), opens the input and the output (resuming an existing
//! output file: [`crate::resume`]), builds that endpoint's stack ([`stack::build_for`]) and
//! reports; the lines themselves go through a [`Batch`] of the endpoint's request type.

use crate::batch::{Batch, BatchError, Stop};
use crate::cli::{InputPath, OutputPath, RunArgs};
use crate::config::Config;
use crate::endpoint::{CliEndpoint, Endpoint};
use crate::error::CliError;
use crate::input::{self, DuplicateCheck};
use crate::interrupt::Interrupts;
use crate::output_lock::{self, Lock, LockError};
use crate::progress::{ProgressMode, TotalLines};
use crate::resume::{self, Answered, ResumeError};
use crate::stack::{self, StackEndpoint};
use crate::summary::{self, Tally};
use lbgpt_balance::MemberStats;
use lbgpt_cache::CacheStats;
use lbgpt_core::{ChatRequest, CompletionRequest, EmbeddingRequest};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// The endpoint the run sent to.
    pub endpoint: Endpoint,
    /// What happened to the lines.
    pub tally: Tally,
    /// Every provider's statistics at the end.
    pub members: Vec<MemberStats>,
    /// The cache's kind and counters at the end, when the config has a `[cache]` table
    /// (counting inputs for embeddings, prompts for completions, requests for chat).
    pub cache: Option<(&'static str, CacheStats)>,
    /// The semantic cache's counters and index at the end, when the config has a
    /// `[semantic_cache]` table.
    pub semantic: Option<crate::semantic::SemanticReport>,
    /// How long it took.
    pub elapsed: Duration,
    /// How it stopped.
    pub stop: Stop,
    /// The process's peak memory at the end, when known.
    pub peak_memory: Option<u64>,
}

impl RunReport {
    /// The summary, the caches' counters and the per-provider table.
    pub fn render(&self) -> String {
        // Embeddings and completions count their cache per input and per prompt.
        let kind = self.cache.as_ref().map(|(kind, _)| match self.endpoint {
            Endpoint::Chat => (*kind).to_owned(),
            Endpoint::Embeddings => format!("{kind} (counted per input)"),
            Endpoint::Completions => format!("{kind} (counted per prompt)"),
        });
        summary::Report {
            tally: &self.tally,
            elapsed: self.elapsed,
            members: &self.members,
            cache: self
                .cache
                .as_ref()
                .zip(kind.as_deref())
                .map(|((_, stats), kind)| (kind, stats)),
            semantic: self.semantic.as_ref(),
            peak_memory: self.peak_memory,
        }
        .to_string()
    }
}

/// Runs `lbgpt run`: finds the endpoint of the input, then runs the batch through that
/// endpoint's stack.
pub async fn run(args: &RunArgs) -> Result<RunReport, CliError> {
    let config = load_config(args)?;
    let (input, endpoint) = open_input(&args.requests)?;
    if let (InputPath::File(input), OutputPath::File(output)) = (&args.requests, &args.output) {
        if same_file(input, output) {
            return Err(CliError::Usage(format!(
                "the output file {} is the requests file; choose another output",
                output.display()
            )));
        }
    }
    match endpoint {
        Endpoint::Chat => run_endpoint::<ChatRequest>(args, &config, input).await,
        Endpoint::Embeddings => run_endpoint::<EmbeddingRequest>(args, &config, input).await,
        Endpoint::Completions => run_endpoint::<CompletionRequest>(args, &config, input).await,
    }
}

/// Runs the batch of `input` through the stack of `R`'s endpoint.
async fn run_endpoint<R: StackEndpoint + Send + 'static>(
    args: &RunArgs,
    config: &Config,
    input: Box<dyn BufRead + Send>,
) -> Result<RunReport, CliError> {
    let endpoint = <R as CliEndpoint>::ENDPOINT;
    if config.semantic_cache.is_some() && endpoint != Endpoint::Chat {
        eprintln!(
            "warning: [semantic_cache] applies to chat completions only; this run sends {} \
             ({endpoint}), so it is not used",
            endpoint.name()
        );
    }
    let built = stack::build_for::<R>(config, &|name| std::env::var(name).ok())?;
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

    // Opened only now, so that a config mistake does not touch an earlier output file.
    let opened = open_output(&args.output, args.fresh)?;
    if let Some(answered) = &opened.answered {
        report_resume(&args.output, answered, args.quiet);
    }
    let mut out = opened.writer;
    // Before the start line: whoever reads it may press Ctrl-C at once.
    let interrupts = Interrupts::install().ok();
    if !args.quiet {
        eprintln!("{}", start_line(args, config, endpoint, concurrency));
    }

    let batch = Batch::<R> {
        input,
        total: count_in_background(&args.requests),
        skip: opened.answered.map(|answered| answered.ids),
        duplicates: if args.no_duplicate_check {
            DuplicateCheck::Off
        } else {
            DuplicateCheck::On
        },
        service: built.service.clone(),
        secrets: &built.secrets,
        concurrency,
        progress: ProgressMode::choose(
            args.quiet,
            io::stderr().is_terminal(),
            Duration::from_secs_f64(args.progress_interval),
        ),
        interrupts,
        observer: None,
    };
    let outcome = match batch.execute(&mut out).await {
        Ok(outcome) => outcome,
        Err(BatchError::Write(err)) => return Err(write_error(&args.output, &err)),
        Err(BatchError::Read { err, lines }) => {
            return Err(CliError::Io(format!(
                "reading {} failed after {lines} lines: {err}",
                args.requests.describe()
            )))
        }
    };

    let cache = match (&config.cache, built.cache_stats()) {
        (Some(settings), Some(stats)) => Some((settings.store.kind().as_str(), stats)),
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
        endpoint,
        tally: outcome.tally,
        members: built.member_stats(),
        cache,
        semantic,
        elapsed: outcome.elapsed,
        stop: outcome.stop,
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
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG_FILE));
    Ok(Config::load_for_run(&path, args.config.is_some())?)
}

/// The line printed on stderr when a run starts: input, output, endpoint, providers,
/// strategy, caches, concurrency.
fn start_line(args: &RunArgs, config: &Config, endpoint: Endpoint, concurrency: usize) -> String {
    let providers: Vec<String> = config.providers.iter().map(|p| p.describe()).collect();
    let mut cache = config.cache.as_ref().map_or_else(
        || "no cache".to_owned(),
        |c| format!("cache {}", c.describe()),
    );
    if config.cache.is_some() {
        match endpoint {
            Endpoint::Embeddings => cache.push_str(" per input"),
            Endpoint::Completions => cache.push_str(" per prompt"),
            Endpoint::Chat => {}
        }
    }
    if let (Some(semantic), Endpoint::Chat) = (&config.semantic_cache, endpoint) {
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
        "lbgpt run: {input} -> {output}, {source}, {endpoint}, providers: {}, strategy {}, \
         {cache}, at most {concurrency} in flight",
        providers.join(", "),
        config.balance.strategy.name(),
    )
}

/// Opens the requests (standard input for `-`, else the file, which must not be a
/// directory) and finds their endpoint: the `url` of the first good line (chat when no line
/// names a supported one). A file is read twice; the lines of standard input read to find
/// the endpoint are kept and read again in front of the rest.
fn open_input(path: &InputPath) -> Result<(Box<dyn BufRead + Send>, Endpoint), CliError> {
    let read_error = |err: io::Error| {
        CliError::Io(format!(
            "reading {} failed: {}",
            path.describe(),
            describe_io(&err)
        ))
    };
    match path {
        InputPath::Stdin => {
            let mut stdin = BufReader::with_capacity(1 << 16, io::stdin());
            let detected = input::detect_endpoint(&mut stdin, true).map_err(read_error)?;
            let endpoint = detected.endpoint.unwrap_or(Endpoint::Chat);
            let input = io::Read::chain(io::Cursor::new(detected.read), stdin);
            Ok((Box::new(input), endpoint))
        }
        InputPath::File(path) => {
            let input = open_file(path)?;
            let detected = input::detect_endpoint(input, false).map_err(read_error)?;
            let endpoint = detected.endpoint.unwrap_or(Endpoint::Chat);
            Ok((open_file(path)?, endpoint))
        }
    }
}

/// Opens the requests file (which must not be a directory).
fn open_file(path: &Path) -> Result<Box<dyn BufRead + Send>, CliError> {
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

/// Where results go, and what an existing output file answered already.
struct OpenedOutput {
    writer: BufWriter<Box<dyn Write>>,
    /// `Some` when an existing file is resumed.
    answered: Option<Answered>,
}

/// Opens where results go: standard output; a new file (or an existing one with `fresh`,
/// emptied); or an existing file to resume, appended to.
fn open_output(path: &OutputPath, fresh: bool) -> Result<OpenedOutput, CliError> {
    let buffered = |sink: Box<dyn Write>| BufWriter::with_capacity(1 << 16, sink);
    let path = match path {
        OutputPath::Stdout => {
            return Ok(OpenedOutput {
                writer: buffered(Box::new(io::stdout().lock())),
                answered: None,
            })
        }
        OutputPath::File(path) => path,
    };
    let name = path.display().to_string();
    let warn_unlocked = |lock: Lock| {
        if lock == Lock::Unsupported {
            eprintln!("{}", output_lock::unsupported_warning(&name));
        }
    };
    if fresh || !path.exists() {
        let cannot = |err: io::Error| {
            CliError::Usage(format!(
                "cannot create the output file {name}: {}",
                describe_io(&err)
            ))
        };
        // Locked before it is emptied: a run still writing it keeps its lines.
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(cannot)?;
        match output_lock::lock(&file) {
            Ok(lock) => warn_unlocked(lock),
            Err(LockError::Busy) => return Err(CliError::Usage(output_lock::busy_message(&name))),
            Err(LockError::Io(err)) => return Err(cannot(err)),
        }
        file.set_len(0).map_err(cannot)?;
        return Ok(OpenedOutput {
            writer: buffered(Box::new(file)),
            answered: None,
        });
    }
    match resume::open_for_append(path) {
        Ok((file, answered, lock)) => {
            warn_unlocked(lock);
            Ok(OpenedOutput {
                writer: buffered(Box::new(file)),
                answered: Some(answered),
            })
        }
        Err(ResumeError::Busy) => Err(CliError::Usage(output_lock::busy_message(&name))),
        Err(ResumeError::NotResults { reason }) => Err(CliError::Usage(format!(
            "the output file {} exists but is not a results file (its first line: {reason}); \
             use --fresh to replace it, or choose another output",
            path.display()
        ))),
        Err(ResumeError::Io(err)) => Err(CliError::Usage(format!(
            "cannot resume the output file {}: {}",
            path.display(),
            describe_io(&err)
        ))),
    }
}

/// Says what resuming an existing output file found (warnings even when `quiet`).
fn report_resume(output: &OutputPath, answered: &Answered, quiet: bool) {
    let name = output.describe();
    if answered.truncated > 0 {
        eprintln!(
            "warning: removed a cut-off last line ({} bytes) from {name}, left by an \
             interrupted run; its request runs again",
            answered.truncated
        );
    }
    if answered.unreadable > 0 {
        eprintln!(
            "warning: {} lines of {name} are not result lines; they are ignored",
            answered.unreadable
        );
    }
    if !quiet && (answered.succeeded > 0 || answered.failed > 0) {
        eprintln!(
            "resuming {name}: {} custom_ids answered there are skipped; {} failed lines there \
             are tried again (their new result is appended; --fresh starts over)",
            answered.ids.len(),
            answered.failed
        );
    }
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
