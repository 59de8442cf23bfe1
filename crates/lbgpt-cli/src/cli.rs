//! The command line, as clap types, and its help texts.
//!
//! Help is wrapped at the width `COLUMNS` gives (clamped to 60..=100), else at the terminal's
//! width (at most 100), so its snapshot tests (which set `COLUMNS`) are stable.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The widest help, whatever the terminal.
const MAX_HELP_WIDTH: usize = 100;
/// The narrowest and widest help `COLUMNS` can ask for.
const HELP_WIDTHS: std::ops::RangeInclusive<usize> = 60..=100;

/// The address of a page of the repository's docs/ folder, for users of an installed binary
/// who have no checkout.
macro_rules! docs_url {
    ($page:literal) => {
        concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/", $page)
    };
}

const TOP_AFTER_HELP: &str = concat!(
    "\
Quick start:
  lbgpt demo                                   a batch on simulated providers, and its summary
                                               (no API key needed)
  lbgpt run requests.jsonl -o results.jsonl    send a Batch-API file through your providers
                                               (needs OPENAI_API_KEY or an lbgpt.toml)

Exit status:
  0    every request succeeded
  1    some requests failed (each has its error line in the results)
  2    usage, config or I/O error (nothing or not everything could run)
  130  interrupted by Ctrl-C (finished results are written; `lbgpt run` resumes on rerun)

Environment:
  RUST_LOG   log filter for the messages on standard error (default: warn; error in lbgpt demo)
  COLUMNS    width of this help (60 to 100)

Documentation:
  commands     ",
    docs_url!("cli.md"),
    "
  lbgpt.toml   ",
    docs_url!("config.md")
);

const RUN_AFTER_HELP: &str = concat!(
    "\
Examples:
  lbgpt run requests.jsonl -o results.jsonl          results to a file; rerun to resume
  lbgpt run requests.jsonl -o results.jsonl --fresh  start over, replacing results.jsonl
  zcat requests.jsonl.gz | lbgpt run - > results.jsonl
  lbgpt run requests.jsonl -c prod.toml --max-concurrent 32 -q -o results.jsonl

Input and output:
  One request per line: {\"custom_id\": \"q1\", \"method\": \"POST\", \"url\": \"/v1/chat/completions\",
  \"body\": {...}}. The url is /v1/chat/completions, /v1/embeddings or /v1/completions, one
  for the whole file (as in the Batch API): the first good line's; a line naming another
  gets a mixed_url error line. One result line per request, in input order, in the Batch
  API's output shape plus an \"lbgpt\" object (provider, attempts, latency, cache: exact,
  semantic, partial or miss). Bad lines get an error line; they never stop the run. Results
  are written as they come; a summary goes to standard error at the end.

Memory:
  Flat whatever the input size. The duplicate check keeps a fingerprint of every custom_id:
  up to 65,536 in memory (about 2 MB), the rest in temporary files in TMPDIR (16 bytes per
  id on disk, 62 KB of memory per million ids). --no-duplicate-check drops the check; a
  repeated custom_id is then sent again and gets a second result line. Resuming keeps the
  ids the output file answered the same way (only when it exists), with or without the flag.

Resuming:
  When the output file exists, the run appends to it and skips every custom_id that already
  has a successful line there; failed lines are tried again and their new result is appended
  below the old one. A reader takes, per custom_id, the line whose \"error\" is null if there
  is one, else the last line. A line cut off by a crash is removed first. --fresh starts over.
  A run locks its output file: a second run into the same file is refused (exit status 2).

Ctrl-C:
  The first stops reading input, lets the requests in flight finish and writes them; the
  second stops at once. Either way the summary is printed and the exit status is 130.

Progress and summary:
  On a terminal, a progress bar on standard error (done/total, rate, ETA, failures, cache
  hits); otherwise a plain line every --progress-interval seconds and one at the end. Then a
  summary: failures by kind, retries, latency, per provider requests, tokens, 429s, retries,
  failovers, latency p50/p95, headroom and state; cache hits (exact, semantic). -q hides it all.

Config:
  The providers, limits, retries, caches and concurrency come from --config FILE, else from
  ./lbgpt.toml (every key in docs/config.md). Without either, each OPENAI_API_KEY* and
  AZURE_OPENAI_API_KEY* variable (with AZURE_OPENAI_ENDPOINT*, AZURE_OPENAI_DEPLOYMENTS*) of
  the environment or ./.env becomes a provider with default settings. API keys are read from
  the environment, a .env beside the config file, ./.env or the file itself (in that order),
  never from the command line.

Exit status: 0 every line succeeded, 1 some lines failed, 2 usage, config or I/O error,
130 interrupted by Ctrl-C. More in docs/cli.md and docs/config.md:
  ",
    docs_url!("cli.md"),
    "
  ",
    docs_url!("config.md")
);

const SIM_AFTER_HELP: &str = concat!(
    "\
Examples:
  lbgpt sim --config sim.toml
  lbgpt sim --config sim.toml --listen 127.0.0.1:8080

Then point a provider of lbgpt.toml at it: base_url = \"http://127.0.0.1:8080/v1\" (openai)
or endpoint = \"http://127.0.0.1:8080\" (azure). The file's keys (limits, latency, faults)
are described in docs/config.md:
  ",
    docs_url!("config.md"),
    "

Exit status: 0 after Ctrl-C, 2 for a bad config file or an address in use."
);

const DEMO_AFTER_HELP: &str = "\
Examples:
  lbgpt demo
  lbgpt demo --requests 1000 --max-concurrent 32
  cargo run --release -p lbgpt-cli -- demo

What it does: starts four simulated providers in this process (OpenAI-style and Azure-style,
each with its own rate limits and latency; one key is revoked part-way), runs a batch through
the max-headroom balancer with retries and an exact cache (the machinery of `lbgpt run`),
shows its progress and summary, runs it again with some new requests (the repeats come from
the cache), and explains what happened. Every answer is checked against its own request. No
API key, no network beyond loopback; the default takes a few seconds. The revocation is
planned: the balancer's warning about it is hidden unless RUST_LOG asks for warnings.

Exit status: 0 when every request got its own answer, 1 otherwise, 2 if a simulator cannot
start, 130 when interrupted.";

const CONFIG_CHECK_AFTER_HELP: &str = "\
Examples:
  lbgpt config check                the config `lbgpt run` would use without --config
  lbgpt config check prod.toml

Exit status: 0 the config is valid, 2 it is not (the message names the line and key).";

/// lbgpt: fast, reliable chat completions at volume against OpenAI, Azure OpenAI and
/// OpenAI-compatible servers.
#[derive(Debug, Parser)]
#[command(
    name = "lbgpt",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = TOP_AFTER_HELP
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send every request of an OpenAI Batch-API JSONL file (or standard input) through the
    /// configured providers; write one result line per request, in input order.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Serve the simulator of rate-limited OpenAI and Azure OpenAI endpoints until Ctrl-C.
    #[command(after_help = SIM_AFTER_HELP)]
    Sim(SimArgs),
    /// Run a batch through a simulated fleet of providers (one fails part-way) and explain
    /// what the balancer, the retries and the cache did. Needs no API key.
    #[command(after_help = DEMO_AFTER_HELP)]
    Demo(DemoArgs),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// The `lbgpt config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and print the providers it would build (keys redacted), without
    /// sending anything.
    #[command(after_help = CONFIG_CHECK_AFTER_HELP)]
    Check(ConfigCheckArgs),
}

/// Arguments of `lbgpt config check`.
#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// The config file to check. Default: as `lbgpt run`, ./lbgpt.toml, or, when that does
    /// not exist, the OPENAI_API_KEY* / AZURE_OPENAI_API_KEY* variables of the environment
    /// (and ./.env).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Where `lbgpt run` reads its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPath {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl InputPath {
    /// How to name the input in messages: its path, or `standard input`.
    pub fn describe(&self) -> String {
        match self {
            InputPath::Stdin => "standard input".to_owned(),
            InputPath::File(path) => path.display().to_string(),
        }
    }
}

impl From<&std::ffi::OsStr> for InputPath {
    fn from(text: &std::ffi::OsStr) -> Self {
        if text == "-" {
            InputPath::Stdin
        } else {
            InputPath::File(PathBuf::from(text))
        }
    }
}

/// Where `lbgpt run` writes its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputPath {
    /// Standard output (`-`).
    Stdout,
    /// A file: appended to (resumed) when it exists, unless `--fresh`.
    File(PathBuf),
}

impl OutputPath {
    /// How to name the output in messages: its path, or `standard output`.
    pub fn describe(&self) -> String {
        match self {
            OutputPath::Stdout => "standard output".to_owned(),
            OutputPath::File(path) => path.display().to_string(),
        }
    }
}

impl From<&std::ffi::OsStr> for OutputPath {
    fn from(text: &std::ffi::OsStr) -> Self {
        if text == "-" {
            OutputPath::Stdout
        } else {
            OutputPath::File(PathBuf::from(text))
        }
    }
}

/// Arguments of `lbgpt run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The requests: one Batch-API line per request ({"custom_id", "method": "POST", "url":
    /// "/v1/chat/completions", "body": {...}}); `-` reads standard input. The url is
    /// /v1/chat/completions, /v1/embeddings or /v1/completions, the same for every line (the
    /// first good line's; lines naming another get a `mixed_url` error line).
    #[arg(value_name = "REQUESTS.jsonl")]
    pub requests: InputPath,
    /// The config file: providers, limits, retries, caches, concurrency. Default: ./lbgpt.toml,
    /// or, when that does not exist, every OPENAI_API_KEY* / AZURE_OPENAI_API_KEY* variable of
    /// the environment (and ./.env) with default settings.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to write the results; `-` for standard output. An existing file is resumed:
    /// custom_ids answered there are skipped and new results appended.
    #[arg(short, long, value_name = "RESULTS.jsonl", default_value = "-")]
    pub output: OutputPath,
    /// Start over: replace an existing output file instead of resuming it.
    #[arg(long, visible_alias = "overwrite")]
    pub fresh: bool,
    /// Do not refuse repeated custom_ids: no fingerprint of each id is kept (in memory or in
    /// temporary files), but a repeated custom_id is sent again and gets a second result
    /// line. For inputs whose ids are known to be unique.
    #[arg(long)]
    pub no_duplicate_check: bool,
    /// Most requests in flight at once (overrides `max_concurrent_requests` of the config).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: Option<u32>,
    /// No progress display, no start line and no summary; warnings and errors are still
    /// printed, and the exit status tells the outcome.
    #[arg(short, long)]
    pub quiet: bool,
    /// Seconds between the plain progress lines printed when standard error is not a
    /// terminal (one more comes at the end).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = interval_seconds)]
    pub progress_interval: f64,
}

/// Arguments of `lbgpt sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The simulator's config file (keys, limits, faults, latency; see docs/config.md).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// The address to listen on (overrides the config's `listen`), e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// Arguments of `lbgpt demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many requests the first pass sends (the second pass repeats them and adds a fifth
    /// more).
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u32).range(20..=100_000))]
    pub requests: u32,
    /// The probability that a simulated provider answers a call with a random retryable fault
    /// (429, 500, 503, connection reset, broken JSON, HTML 502), on top of the revoked key.
    #[arg(long, value_name = "P", default_value_t = 0.03, value_parser = probability)]
    pub faults: f64,
    /// Most requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: u32,
    /// No progress display (the summary and the explanation are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

fn probability(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=0.9).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is not between 0 and 0.9 (above that, retries cannot keep up)"
        ))
    }
}

fn interval_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if (0.1..=86_400.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not between 0.1 and 86400 seconds"))
    }
}

/// The help's width from `COLUMNS`, clamped to 60..=100, when it is set to a number.
fn columns() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .map(|width| width.clamp(*HELP_WIDTHS.start(), *HELP_WIDTHS.end()))
}

/// The clap command. Help wraps at `COLUMNS` (clamped to 60..=100) when it is set, else at the
/// terminal's width, at most 100.
pub fn command() -> clap::Command {
    let command = Cli::command();
    match columns() {
        Some(width) => command.term_width(width),
        None => command.max_term_width(MAX_HELP_WIDTH),
    }
}

/// Parses the process's arguments; prints help, version or a usage error and exits (status
/// 0 for help and version, 2 for usage errors) as clap does.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_from(args: &[&str]) -> Result<Cli, clap::Error> {
        let matches = command().try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn run_defaults() {
        let cli = parse_from(&["lbgpt", "run", "in.jsonl"]).expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        assert_eq!(args.requests, InputPath::File(PathBuf::from("in.jsonl")));
        assert_eq!(args.config, None);
        assert_eq!(args.output, OutputPath::Stdout);
        assert_eq!(args.max_concurrent, None);
        assert!(!args.quiet && !args.fresh);
        assert!((args.progress_interval - 5.0).abs() < f64::EPSILON);
    }

    #[test]
    fn dash_means_standard_input_and_output() {
        let cli = parse_from(&["lbgpt", "run", "-", "-o", "out.jsonl", "-q", "--overwrite"])
            .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        assert_eq!(args.requests, InputPath::Stdin);
        assert_eq!(args.output, OutputPath::File(PathBuf::from("out.jsonl")));
        assert_eq!(args.requests.describe(), "standard input");
        assert!(args.quiet);
        assert!(args.fresh, "--overwrite is --fresh");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(parse_from(&["lbgpt", "run", "x", "--max-concurrent", "0"]).is_err());
        assert!(
            parse_from(&["lbgpt", "run"]).is_err(),
            "the input is required"
        );
        assert!(parse_from(&["lbgpt", "demo", "--faults", "1.5"]).is_err());
        assert!(parse_from(&["lbgpt", "demo", "--requests", "5"]).is_err());
        assert!(parse_from(&["lbgpt", "sim", "-c", "s.toml", "--listen", "nope"]).is_err());
        let cli = parse_from(&["lbgpt", "demo", "--requests", "50"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Demo(DemoArgs { requests: 50, .. })
        ));
    }
}
