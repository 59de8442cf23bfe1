//! The `lbgpt` command line: batch runs over OpenAI Batch-API JSONL files or standard input
//! with a TOML config or the keys of the environment (`lbgpt run`), the simulator as a server
//! (`lbgpt sim`), a self-contained demo on a simulated fleet (`lbgpt demo`), and config checks
//! (`lbgpt config check`).
//!
//! A run: [`run`] loads the config, finds the run's endpoint (chat, embeddings or legacy
//! completions: [`endpoint`]; the url of the input's first good line) and opens the input and
//! the output (an existing output file is resumed: [`resume`]); [`batch`], generic over the
//! endpoint's request type, sends the lines through that endpoint's stack ([`stack`]) with the
//! input read on its own thread ([`pump`], [`input`]), results paired with their lines
//! ([`ledger`]) and written in input order ([`output`]), progress on standard error
//! ([`progress`]), Ctrl-C handled ([`interrupt`]) and a bounded summary kept ([`summary`],
//! [`histogram`], [`failures`], [`member_table`]). The command line and its help are in
//! [`cli`]; `docs/cli.md` and `docs/config.md` describe them for users.
//!
//! Exit status: 0 success, 1 some requests failed, 2 usage, config or I/O error, 130
//! interrupted by Ctrl-C.

mod batch;
mod cache;
mod cli;
mod config;
mod demo;
mod endpoint;
mod error;
mod failures;
mod histogram;
mod idset;
mod input;
mod interrupt;
mod ledger;
mod member_table;
mod output;
mod output_lock;
mod progress;
mod pump;
mod resume;
mod run;
mod semantic;
mod sim_cmd;
mod stack;
mod summary;

use cli::Command;
use error::CliError;
use std::process::ExitCode;

/// Every line succeeded.
const EXIT_OK: u8 = 0;
/// Some lines (or demo requests) failed.
const EXIT_SOME_FAILED: u8 = 1;
/// Usage, config or I/O error.
const EXIT_USAGE: u8 = 2;
/// Stopped by Ctrl-C.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = cli::parse();
    init_tracing(default_log_level(&cli.command));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let code = runtime.block_on(dispatch(cli.command));
    ExitCode::from(code)
}

async fn dispatch(command: Command) -> u8 {
    let outcome: Result<u8, CliError> = match command {
        Command::Run(args) => run::run(&args).await.map(|report| {
            if !args.quiet {
                eprint!("{}\n{}", run_label(&report, &args), report.render());
            }
            if report.stop != batch::Stop::Finished {
                EXIT_INTERRUPTED
            } else if report.tally.failed() > 0 {
                EXIT_SOME_FAILED
            } else {
                EXIT_OK
            }
        }),
        Command::Config(cli::ConfigCommand::Check(args)) => config::check::run(&args),
        Command::Sim(args) => sim_cmd::run(&args).await.map(|()| EXIT_OK),
        Command::Demo(args) => demo::run(&args).await.map(|end| match end {
            demo::DemoEnd::AllAnswered => EXIT_OK,
            demo::DemoEnd::SomeFailed => EXIT_SOME_FAILED,
            demo::DemoEnd::Interrupted => EXIT_INTERRUPTED,
        }),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            EXIT_USAGE
        }
    }
}

/// The first line of the summary: how the run ended and, after Ctrl-C, how to go on.
fn run_label(report: &run::RunReport, args: &cli::RunArgs) -> String {
    let resume = match &args.output {
        cli::OutputPath::File(_) => "; run the same command again to resume",
        cli::OutputPath::Stdout => "",
    };
    match report.stop {
        batch::Stop::Finished => "lbgpt run finished".to_owned(),
        batch::Stop::Interrupted => format!(
            "lbgpt run interrupted: the requests in flight were finished and written{resume}"
        ),
        batch::Stop::Aborted => {
            format!("lbgpt run interrupted: the requests in flight were dropped{resume}")
        }
    }
}

/// The log level when `RUST_LOG` is not set: warnings, except in the demo, whose warnings are
/// the planned ones (the revoked key's provider being retired) and would look like real
/// failures; it explains them itself.
fn default_log_level(command: &Command) -> &'static str {
    match command {
        Command::Demo(_) => "error",
        _ => "warn",
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: `default_level`).
fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
