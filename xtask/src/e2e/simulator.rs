//! The simulator as a process of its own (`lbgpt sim`), so that its CPU time and memory are
//! never counted as the client's.

use super::measure::{self, Usage};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

/// The keys the simulator serves, one provider each in both clients.
pub fn keys(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("sk-sim-e2e-{i}")).collect()
}

/// The simulator's config: `keys` keys without limits or faults, a fixed latency of
/// `latency_ms` per answer, a small request log.
pub fn config(keys: &[String], latency_ms: u64) -> String {
    let mut text = format!(
        "# Written by `cargo xtask bench e2e`: no limits, no faults, a fixed latency.\n\
         seed = 1\nseen_capacity = 100\n\n[latency]\nfixed_ms = {latency_ms}\n"
    );
    for key in keys {
        text.push_str(&format!("\n[[keys]]\nkey = \"{key}\"\n"));
    }
    text
}

/// A running `lbgpt sim`; interrupted (and reaped) when dropped.
pub struct SimProcess {
    child: Option<Child>,
    started: Instant,
    /// Kept open so the simulator never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    stderr_path: std::path::PathBuf,
    /// The OpenAI base URL it serves.
    pub base_url: String,
}

impl SimProcess {
    /// Starts `lbgpt sim -c CONFIG --listen 127.0.0.1:0` and reads its base URL from what it
    /// prints. Its standard error goes to `stderr_path`.
    pub fn start(lbgpt: &Path, config: &Path, stderr_path: &Path) -> Result<SimProcess, String> {
        let stderr = File::create(stderr_path)
            .map_err(|err| format!("cannot create {}: {err}", stderr_path.display()))?;
        let started = Instant::now();
        let mut child = Command::new(lbgpt)
            .args(["sim", "--listen", "127.0.0.1:0", "-c"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", lbgpt.display()))?;
        let stdout = child.stdout.take();
        let mut process = SimProcess {
            child: Some(child),
            started,
            _stdout: BufReader::new(stdout.ok_or("the simulator's stdout is not piped")?),
            stderr_path: stderr_path.to_path_buf(),
            base_url: String::new(),
        };
        let mut line = String::new();
        loop {
            line.clear();
            let read = process
                ._stdout
                .read_line(&mut line)
                .map_err(|err| format!("reading the simulator's output failed: {err}"))?;
            if read == 0 {
                let errors = std::fs::read_to_string(stderr_path).unwrap_or_default();
                return Err(format!("the simulator exited at start: {}", errors.trim()));
            }
            if let Some(url) = line.trim().strip_prefix("OpenAI base URL:") {
                process.base_url = url.trim().to_owned();
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        if process.base_url.is_empty() {
            return Err("the simulator did not print its OpenAI base URL".to_owned());
        }
        Ok(process)
    }

    /// Stops it as Ctrl-C would; returns its usage over its whole life and the number of
    /// requests it says it served.
    pub fn stop(mut self) -> Result<(Usage, Option<u64>), String> {
        let child = self
            .child
            .take()
            .ok_or("the simulator was already stopped")?;
        measure::interrupt(child.id())?;
        let usage = measure::wait(child, self.started)?;
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        // "simulator stopped after N requests (M resets)"
        let served = stderr
            .split("simulator stopped after ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        Ok((usage, served))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            if measure::interrupt(child.id()).is_ok() {
                let _ = measure::wait(child, self.started);
            }
        }
    }
}
