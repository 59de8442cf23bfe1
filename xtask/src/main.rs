//! Project automation for lbgpt, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: everything CI checks, in the order a failure is cheapest to find:
//!   formatting, clippy with warnings denied, the whole test suite (unit, integration, doc tests
//!   and examples), and rustdoc with warnings denied.
//! - `cargo xtask bench`: the overhead benchmark (full facade path against a bare reqwest call on
//!   the same in-process simulator); writes `docs/benchmarks.md`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
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
         bench   overhead of the lbgpt stack vs. a bare reqwest call; writes docs/benchmarks.md\n\
         \x20       (options are passed to the benchmark, e.g. `--requests 20000`)"
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
    let mut command = cargo();
    command.args(["bench", "-p", "lbgpt", "--bench", "overhead", "--"]);
    command.args(extra);
    command.env(
        "LBGPT_BENCH_REPORT",
        workspace_root().join("docs/benchmarks.md"),
    );
    run("overhead benchmark", &mut command)
}
