//! The command line, as clap types.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// lbgpt: fast, reliable chat completions at volume against OpenAI, Azure OpenAI and
/// OpenAI-compatible servers.
#[derive(Debug, Parser)]
#[command(name = "lbgpt", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send every request of an OpenAI Batch-API JSONL file; write one result line per
    /// request, in input order.
    ///
    /// Exit status: 0 when every line succeeded, 1 when some failed, 2 for usage, config or
    /// I/O errors, 130 when interrupted. See docs/config.md for the config file.
    Run(RunArgs),
    /// Serve the simulator of OpenAI and Azure OpenAI endpoints until Ctrl-C.
    Sim(SimArgs),
    /// Run a few hundred requests through two providers on an in-process simulator with
    /// random faults, check every answer and print a summary. Needs no API key.
    Demo(DemoArgs),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// The `lbgpt config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and print the members it would build (keys redacted), without
    /// sending anything. Exit status 0 when the config is valid, 2 otherwise.
    Check(ConfigCheckArgs),
}

/// Arguments of `lbgpt config check`.
#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// The config file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Arguments of `lbgpt run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The requests: one Batch-API line per request,
    /// {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}.
    #[arg(value_name = "REQUESTS.jsonl")]
    pub requests: PathBuf,
    /// The config file (providers, retry, concurrency).
    #[arg(short, long, value_name = "FILE", default_value = "lbgpt.toml")]
    pub config: PathBuf,
    /// Where to write the results; `-` for standard output.
    #[arg(short, long, value_name = "RESULTS.jsonl", default_value = "-")]
    pub output: PathBuf,
    /// Most requests in flight at once (overrides `max_concurrent_requests` of the config).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: Option<u32>,
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
    /// How many requests to send.
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub requests: u32,
    /// The probability that the simulator answers a request with a (retryable) fault.
    #[arg(long, value_name = "P", default_value_t = 0.1, value_parser = probability)]
    pub faults: f64,
    /// Most requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: u32,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_defaults() {
        let cli = Cli::try_parse_from(["lbgpt", "run", "in.jsonl"]).expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        assert_eq!(args.config, PathBuf::from("lbgpt.toml"));
        assert_eq!(args.output, PathBuf::from("-"));
        assert_eq!(args.max_concurrent, None);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(Cli::try_parse_from(["lbgpt", "run", "x", "--max-concurrent", "0"]).is_err());
        assert!(Cli::try_parse_from(["lbgpt", "demo", "--faults", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["lbgpt", "sim", "-c", "s.toml", "--listen", "nope"]).is_err());
        let cli = Cli::try_parse_from(["lbgpt", "demo", "--requests", "50"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Demo(DemoArgs { requests: 50, .. })
        ));
    }
}
