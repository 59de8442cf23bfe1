//! Shared helpers of the CLI tests: a simulator on loopback, files in a temporary
//! directory, and the real `lbgpt` binary run as a child process.

#![allow(dead_code)]

use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
        // The simulator runs on this runtime's other threads while the child runs.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("lbgpt runs");
        Run { output }
    }
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
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        )
    }
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
