//! Shared helpers of the CLI tests: a simulator on loopback, files in a temporary
//! directory, and the real `lbgpt` binary run as a child process.

#![allow(dead_code)]

use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_sim::{KeyConfig, Latency, SimConfig, Simulator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The OpenAI-style key the simulator accepts; tests look for it in every output.
pub const OPENAI_KEY: &str = "sk-test-SECRET-openai-5b1e9c";
/// The Azure key the simulator accepts.
pub const AZURE_KEY: &str = "azure-test-SECRET-77d0aa";
/// The environment variable the configs name for the OpenAI key.
pub const OPENAI_KEY_ENV: &str = "LBGPT_TEST_OPENAI_KEY";
/// The environment variable the configs name for the Azure key.
pub const AZURE_KEY_ENV: &str = "LBGPT_TEST_AZURE_KEY";
/// The model every test request names.
pub const MODEL: &str = "gpt-4o-mini";
/// The embeddings model of the endpoint tests.
pub const EMBEDDING_MODEL: &str = "text-embedding-3-small";
/// The legacy completions model of the endpoint tests.
pub const COMPLETION_MODEL: &str = "gpt-3.5-turbo-instruct";

/// A temporary directory and a simulator serving both test keys.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub sim: Simulator,
}

impl Harness {
    /// A simulator with both keys and no faults.
    pub async fn new() -> Harness {
        Harness::with_config(
            SimConfig::new()
                .key(KeyConfig::new(OPENAI_KEY))
                .key(KeyConfig::new(AZURE_KEY)),
        )
        .await
    }

    /// A simulator with only the OpenAI key, answering every request after `latency`, no
    /// faults.
    pub async fn openai_with_latency(latency: Duration) -> Harness {
        Harness::with_config(
            SimConfig::new()
                .key(KeyConfig::new(OPENAI_KEY))
                .latency(Latency::fixed(latency)),
        )
        .await
    }

    /// A simulator with `config`.
    pub async fn with_config(config: SimConfig) -> Harness {
        let sim = Simulator::start(config).await.expect("simulator starts");
        Harness {
            dir: tempfile::tempdir().expect("temporary directory"),
            sim,
        }
    }

    /// A path in the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` in the temporary directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("file written");
        path
    }

    /// A config with one OpenAI provider on the simulator (key from [`OPENAI_KEY_ENV`]).
    pub fn openai_config(&self) -> String {
        format!(
            r#"max_concurrent_requests = 4

[retry]
max_attempts = 4
initial_backoff_ms = 10
max_backoff_ms = 100

[[providers]]
kind = "openai"
name = "openai-sim"
base_url = "{}"
api_key_env = "{OPENAI_KEY_ENV}"
proxy = "none"
"#,
            self.sim.base_url()
        )
    }

    /// A config with an OpenAI and an Azure provider on the simulator.
    pub fn two_provider_config(&self) -> String {
        format!(
            r#"{}
[[providers]]
kind = "azure"
name = "azure-sim"
endpoint = "{}"
api_key_env = "{AZURE_KEY_ENV}"
api_version = "2024-10-21"
deployments = {{ "{MODEL}" = "mini-deployment" }}
proxy = "none"
"#,
            self.openai_config(),
            self.sim.endpoint()
        )
    }

    /// A config with an OpenAI and an Azure provider on the simulator, taking turns, with
    /// Azure deployments for [`EMBEDDING_MODEL`] and [`COMPLETION_MODEL`], and `extra` (a
    /// cache table) before the providers.
    pub fn endpoints_config(&self, extra: &str) -> String {
        format!(
            r#"max_concurrent_requests = 4

[retry]
max_attempts = 3
initial_backoff_ms = 10
max_backoff_ms = 50

[balance]
strategy = "round_robin"

{extra}

[[providers]]
kind = "openai"
name = "openai-sim"
base_url = "{base_url}"
api_key_env = "{OPENAI_KEY_ENV}"
proxy = "none"

[[providers]]
kind = "azure"
name = "azure-sim"
endpoint = "{endpoint}"
api_key_env = "{AZURE_KEY_ENV}"
deployments = {{ "{EMBEDDING_MODEL}" = "embed-dep", "{COMPLETION_MODEL}" = "instruct-dep" }}
proxy = "none"
"#,
            base_url = self.sim.base_url(),
            endpoint = self.sim.endpoint(),
        )
    }

    /// Runs `lbgpt` with `args` and both keys in the environment.
    pub async fn lbgpt(&self, args: &[&str]) -> Run {
        self.lbgpt_env(
            args,
            &[(OPENAI_KEY_ENV, OPENAI_KEY), (AZURE_KEY_ENV, AZURE_KEY)],
        )
        .await
    }

    /// Runs `lbgpt` with `args` and exactly these test variables set.
    pub async fn lbgpt_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args, env);
        // The simulator runs on this runtime's other threads while the child runs.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("lbgpt runs");
        Run { output }
    }

    /// Runs `lbgpt` with `args`, both keys, and `stdin` as its standard input.
    pub async fn lbgpt_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = self.command(
            args,
            &[(OPENAI_KEY_ENV, OPENAI_KEY), (AZURE_KEY_ENV, AZURE_KEY)],
        );
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let stdin = stdin.to_owned();
        let output = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut child = command.spawn().expect("lbgpt runs");
            let mut pipe = child.stdin.take().expect("stdin");
            // Written from another thread, so a full stdout pipe cannot deadlock the test.
            let writer = std::thread::spawn(move || pipe.write_all(stdin.as_bytes()));
            let output = child.wait_with_output().expect("lbgpt ends");
            writer.join().expect("writer").expect("stdin written");
            output
        })
        .await
        .expect("join");
        Run { output }
    }

    /// The `lbgpt` command with `args`, run in the temporary directory, with exactly these
    /// test variables set, no proxy and debug logs.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lbgpt"));
        command.args(args).current_dir(self.dir.path());
        for name in [
            OPENAI_KEY_ENV,
            AZURE_KEY_ENV,
            "OPENAI_API_KEY",
            "AZURE_OPENAI_API_KEY",
        ] {
            command.env_remove(name);
        }
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(name);
        }
        command.env("RUST_LOG", "debug");
        for (name, value) in env {
            command.env(name, value);
        }
        command
    }
}

/// Runs `lbgpt ARGS` in `dir` with exactly `vars` in its environment (nothing inherited) and
/// `RUST_LOG=debug`, so that logs are searched for keys too. Blocks until it exits.
pub fn lbgpt_isolated(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    isolated_command(dir, args, vars)
        .output()
        .expect("lbgpt runs")
}

/// The `lbgpt ARGS` command of [`lbgpt_isolated`], not yet run.
pub fn isolated_command(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lbgpt"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "debug");
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

/// A finished `lbgpt` process.
pub struct Run {
    pub output: Output,
}

impl Run {
    /// The exit code.
    pub fn code(&self) -> i32 {
        self.output.status.code().expect("exited normally")
    }

    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Exit code, stdout and stderr, for assertion messages.
    pub fn describe(&self) -> String {
        describe_output(&self.output)
    }
}

/// Exit code, stdout and stderr of `output`, for assertion messages (and for searching
/// everything a process printed).
pub fn describe_output(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The chat request of test line `i`.
pub fn chat(i: usize) -> ChatRequest {
    ChatRequest::new(
        MODEL,
        vec![ChatMessage::user(format!("Tell me fact number {i}."))],
    )
    .max_tokens(32)
}

/// A Batch-API input line for `request`.
pub fn batch_line(custom_id: &str, request: &ChatRequest) -> String {
    json!({
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": request,
    })
    .to_string()
}

/// A temporary path as a command-line argument.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// The arguments of `lbgpt run INPUT -c CONFIG -o OUTPUT`, then `extra` (flags such as
/// `--max-concurrent 2`), for [`Harness::lbgpt`] and its kin. Tests of the long forms
/// (`--config`, `--output`) or of a missing `-c` / `-o` spell their arguments out.
pub fn run_args<'a>(
    input: &'a Path,
    config: &'a Path,
    output: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        path_str(input),
        "-c",
        path_str(config),
        "-o",
        path_str(output),
    ];
    args.extend_from_slice(extra);
    args
}

/// Reads a JSONL file into values, one per line.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("output file exists");
    parse_jsonl(&text)
}

/// Parses JSONL text into values, one per line.
pub fn parse_jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each output line is JSON"))
        .collect()
}

/// The answer text of a successful output line.
pub fn answer_text(line: &Value) -> &str {
    line["response"]["body"]["choices"][0]["message"]["content"]
        .as_str()
        .expect("an answer")
}

/// Whether the tests run under CI (`CI` set to anything but empty, `0` or `false`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A real `redis-server` child process on a free loopback port (no persistence), killed when
/// dropped. The same pattern as `lbgpt-cache`'s tests.
pub struct RedisServer {
    child: Option<std::process::Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server, or returns `None` after a loud message when `redis-server` is not on
    /// PATH. Under CI a missing `redis-server` fails the test instead.
    pub fn start(test: &str) -> Option<RedisServer> {
        use std::io::Write as _;
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            assert!(
                !under_ci(),
                "{test}: redis-server is not on PATH, and CI is set: .ci/run must install it"
            );
            // Written to the process's stderr directly: libtest captures `eprintln!`.
            let banner = "!".repeat(79);
            let _ = writeln!(
                std::io::stderr(),
                "\n{banner}\n!!! SKIPPED {test}: redis-server is not on PATH \
                 (apt-get install redis-server)\n{banner}"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free loopback port");
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = RedisServer {
            child: Some(child),
            port,
            _dir: dir,
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(100))
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen on port {port} within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(server)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
