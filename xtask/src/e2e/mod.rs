//! `cargo xtask bench e2e`: the end-to-end cost of `lbgpt run` on a large batch file, against
//! the same batch sent through the facade directly (the `batch_file` example).
//!
//! Both programs are built in release mode and run as child processes, one after the other, on
//! the same input files against one simulator served by `lbgpt sim` in a process of its own
//! (no limits, no faults, a fixed latency), with the same providers (one per simulator key,
//! from `OPENAI_API_KEY_1..`) and the same concurrency. For each run the kernel's accounting of
//! that child alone gives its wall time, user + system CPU time and peak resident memory; every
//! output file is then checked line by line (one line per input, in input order, all
//! succeeded). Runs at several input sizes show whether peak memory grows with the input.
//!
//! Options: `--sizes 100000,1000000` (input lines per run), `--clients cli,cli-no-dup,facade`,
//! `--concurrency 64`, `--keys 4`, `--latency-ms 1`, `--no-report` (print the table only,
//! for quick trials), `--keep-outputs`.

mod batch_io;
mod measure;
mod report;
mod simulator;

use measure::Usage;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The report `cargo xtask bench e2e` writes, relative to the workspace.
pub const REPORT: &str = "docs/benchmarks-e2e.md";

/// The programs compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `lbgpt run IN -c lbgpt.toml -o OUT`.
    Cli,
    /// `lbgpt run IN -c lbgpt.toml -o OUT --no-duplicate-check`: no per-line memory for the
    /// custom_id check, like for like with the facade example (which does not check them).
    CliNoDuplicateCheck,
    /// `batch_file IN -o OUT --max-concurrent N` (examples/batch_file.rs).
    Facade,
}

impl Client {
    fn parse(text: &str) -> Result<Client, String> {
        match text {
            "cli" => Ok(Client::Cli),
            "cli-no-dup" => Ok(Client::CliNoDuplicateCheck),
            "facade" => Ok(Client::Facade),
            other => Err(format!(
                "unknown client `{other}`; cli, cli-no-dup or facade"
            )),
        }
    }

    /// Its name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Client::Cli => "`lbgpt run`",
            Client::CliNoDuplicateCheck => "`lbgpt run --no-duplicate-check`",
            Client::Facade => "facade (`batch_file` example)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Client::Cli => "cli",
            Client::CliNoDuplicateCheck => "cli-no-dup",
            Client::Facade => "facade",
        }
    }
}

/// The benchmark's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Input lines per run; every client runs at every size.
    pub sizes: Vec<u64>,
    /// The clients, in the order they run at each size.
    pub clients: Vec<Client>,
    /// Most requests in flight, for both clients.
    pub concurrency: usize,
    /// Simulator keys, one provider each.
    pub keys: usize,
    /// The simulator's fixed latency per answer.
    pub latency_ms: u64,
    /// Write the report (else only print the table).
    pub write_report: bool,
    /// Keep the output files (they are large).
    pub keep_outputs: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            sizes: vec![100_000, 1_000_000],
            clients: vec![Client::Cli, Client::CliNoDuplicateCheck, Client::Facade],
            concurrency: 64,
            keys: 4,
            latency_ms: 1,
            write_report: true,
            keep_outputs: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--sizes" | "--lines" => {
                    options.sizes = value(arg)?
                        .split(',')
                        .map(|n| positive(arg, n.trim().replace('_', "").as_str()))
                        .collect::<Result<_, _>>()?;
                }
                "--clients" => {
                    options.clients = value(arg)?
                        .split(',')
                        .map(|c| Client::parse(c.trim()))
                        .collect::<Result<_, _>>()?;
                }
                "--concurrency" => options.concurrency = positive(arg, &value(arg)?)? as usize,
                "--keys" => options.keys = positive(arg, &value(arg)?)? as usize,
                "--latency-ms" => {
                    let text = value(arg)?;
                    options.latency_ms = text
                        .parse()
                        .map_err(|_| format!("--latency-ms: {text:?} is not a number"))?;
                }
                "--no-report" => options.write_report = false,
                "--keep-outputs" => options.keep_outputs = true,
                other => {
                    return Err(format!(
                        "bench e2e: unknown option `{other}`; options: --sizes N[,N...], \
                         --clients cli,cli-no-dup,facade, --concurrency N, --keys N, --latency-ms N, \
                         --no-report, --keep-outputs"
                    ))
                }
            }
        }
        if options.sizes.is_empty() || options.clients.is_empty() {
            return Err("bench e2e: at least one size and one client".to_owned());
        }
        Ok(options)
    }
}

fn positive(name: &str, text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{name}: {text:?} is not a number >= 1")),
    }
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Row {
    /// Which program.
    pub client: Client,
    /// Input lines.
    pub lines: u64,
    /// What the process cost.
    pub usage: Usage,
    /// What its output held.
    pub check: batch_io::OutputCheck,
    /// The 1-minute load average just before it started.
    pub load_before: f64,
}

/// Everything the report needs.
#[derive(Debug)]
pub struct Results {
    /// The settings.
    pub options: Options,
    /// Every run, in run order.
    pub rows: Vec<Row>,
    /// The simulator over its whole life, and the requests it says it served.
    pub simulator: (Usage, Option<u64>),
    /// Whether `lbgpt run` was given `--quiet`.
    pub quiet: bool,
    /// The 1-, 5- and 15-minute load averages before and after all runs.
    pub load: ([f64; 3], [f64; 3]),
}

/// Runs the benchmark with `args`.
pub fn run(workspace: &Path, args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    // One build of both, so they share one set of dependency features (two builds would
    // rebuild the dependencies they differ in, every time).
    crate::run(
        "build lbgpt and the batch_file example (release)",
        crate::cargo().args([
            "build",
            "--release",
            "-p",
            "lbgpt-cli",
            "-p",
            "lbgpt",
            "--bin",
            "lbgpt",
            "--example",
            "batch_file",
        ]),
    )?;
    let target = target_dir(workspace);
    let lbgpt = target.join("release").join("lbgpt");
    let facade = target.join("release").join("examples").join("batch_file");
    let dir = target.join("bench-e2e");
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;

    let keys = simulator::keys(options.keys);
    let sim_config = dir.join("sim.toml");
    write(&sim_config, &simulator::config(&keys, options.latency_ms))?;
    let run_config = dir.join("lbgpt.toml");
    write(
        &run_config,
        &format!(
            "# Written by `cargo xtask bench e2e`: every simulator key from the environment.\n\
             max_concurrent_requests = {}\n\n[[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\n",
            options.concurrency
        ),
    )?;
    let quiet = has_quiet_flag(&lbgpt)?;

    eprintln!("\n==> e2e: inputs under {}", dir.display());
    for &lines in &options.sizes {
        batch_io::write_input(&input_path(&dir, lines), lines)?;
    }

    let load_start = load_average();
    let sim = simulator::SimProcess::start(&lbgpt, &sim_config, &dir.join("sim.stderr"))?;
    eprintln!("==> e2e: simulator at {}", sim.base_url);
    let mut rows = Vec::new();
    for &lines in &options.sizes {
        for &client in &options.clients {
            let input = input_path(&dir, lines);
            let output = dir.join(format!("output-{}-{lines}.jsonl", client.short()));
            let stderr = dir.join(format!("{}-{lines}.stderr", client.short()));
            remove_if_present(&output)?;
            let mut command = match client {
                Client::Cli | Client::CliNoDuplicateCheck => {
                    let mut command = Command::new(&lbgpt);
                    command
                        .arg("run")
                        .arg(&input)
                        .arg("-c")
                        .arg(&run_config)
                        .arg("-o")
                        .arg(&output);
                    if quiet {
                        command.arg("--quiet");
                    }
                    if client == Client::CliNoDuplicateCheck {
                        command.arg("--no-duplicate-check");
                    }
                    command
                }
                Client::Facade => {
                    let mut command = Command::new(&facade);
                    command
                        .arg(&input)
                        .arg("-o")
                        .arg(&output)
                        .arg("--max-concurrent")
                        .arg(options.concurrency.to_string());
                    command
                }
            };
            client_environment(&mut command, &keys, &sim.base_url, &dir);
            command.stdout(std::process::Stdio::null()).stderr(
                std::fs::File::create(&stderr)
                    .map_err(|err| format!("cannot create {}: {err}", stderr.display()))?,
            );
            let load_before = load_average()[0];
            eprintln!("==> e2e: {} over {lines} lines", client.label());
            let usage = measure::run(&mut command)?;
            let check = batch_io::check_output(&output)?;
            if !options.keep_outputs {
                remove_if_present(&output)?;
            }
            let row = Row {
                client,
                lines,
                usage,
                check,
                load_before,
            };
            eprintln!("    {}", report::row_summary(&row));
            if usage.exit_code != Some(0) || !check.complete(lines) {
                let errors = std::fs::read_to_string(&stderr).unwrap_or_default();
                eprintln!(
                    "    exit status {:?}; its standard error (last lines):\n{}",
                    usage.exit_code,
                    tail(&errors, 10)
                );
            }
            rows.push(row);
        }
    }
    let simulator = sim.stop()?;
    let load_end = load_average();

    let results = Results {
        options,
        rows,
        simulator,
        quiet,
        load: (load_start, load_end),
    };
    let text = report::render(&results);
    println!("\n{}", report::table(&results));
    if results.options.write_report {
        let path = workspace.join(REPORT);
        write(&path, &text)?;
        eprintln!("e2e: report written to {}", path.display());
    }
    let failed: Vec<String> = results
        .rows
        .iter()
        .filter(|row| row.usage.exit_code != Some(0) || !row.check.complete(row.lines))
        .map(|row| format!("{} at {} lines", row.client.label(), row.lines))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "bench e2e: incomplete or failed runs: {}",
            failed.join(", ")
        ))
    }
}

/// The environment of a client: only the simulator's keys and base URL (every inherited
/// `OPENAI_*` / `AZURE_OPENAI_*` variable and proxy setting removed), in `dir`, where no
/// `.env` file is.
fn client_environment(command: &mut Command, keys: &[String], base_url: &str, dir: &Path) {
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        let upper = text.to_ascii_uppercase();
        if upper.starts_with("OPENAI_")
            || upper.starts_with("AZURE_OPENAI_")
            || upper.ends_with("_PROXY")
            || upper == "RUST_LOG"
        {
            command.env_remove(&name);
        }
    }
    for (i, key) in keys.iter().enumerate() {
        command.env(format!("OPENAI_API_KEY_{}", i + 1), key);
    }
    command
        .env("OPENAI_BASE_URL", base_url)
        .env("OPENAI_API_PROXY", "none")
        .current_dir(dir);
}

/// Whether `lbgpt run` has a `--quiet` flag (it silences progress output).
fn has_quiet_flag(lbgpt: &Path) -> Result<bool, String> {
    let output = Command::new(lbgpt)
        .args(["run", "--help"])
        .output()
        .map_err(|err| format!("cannot run {} run --help: {err}", lbgpt.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout).contains("--quiet"))
}

fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

fn input_path(dir: &Path, lines: u64) -> PathBuf {
    dir.join(format!("input-{lines}.jsonl"))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
}

fn remove_if_present(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("cannot remove {}: {err}", path.display())),
    }
}

/// The 1-, 5- and 15-minute load averages (zeros when unknown).
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [
        values.next().unwrap_or(0.0),
        values.next().unwrap_or(0.0),
        values.next().unwrap_or(0.0),
    ]
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
