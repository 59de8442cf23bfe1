//! Helpers shared by the integration tests: the simulator, a provider service on it, requests,
//! and a real `redis-server` started on a free loopback port.

#![allow(dead_code)]

pub mod completion;
pub mod embedding;
pub mod fixed_answer;

use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use lbgpt_sim::{KeyConfig, Latency, SimConfig, Simulator};
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const KEY: &str = "sk-sim-cache-test-key-0123456789";
pub const OTHER_KEY: &str = "sk-sim-cache-other-key-9876543210";

/// How many entry files a [`DiskStore`](lbgpt_cache::DiskStore) directory holds (its `v1`
/// directory of shard directories).
pub fn entry_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("v1"))
        .map(|shards| {
            shards
                .flatten()
                .filter_map(|shard| std::fs::read_dir(shard.path()).ok())
                .map(|files| files.count())
                .sum()
        })
        .unwrap_or(0)
}

/// A simulator with two keys and the given fixed latency.
pub async fn sim(latency: Duration) -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(KEY))
            .key(KeyConfig::new(OTHER_KEY))
            .latency(Latency::fixed(latency)),
    )
    .await
    .expect("simulator starts")
}

/// The real OpenAI service on the simulator with `key`.
pub fn provider(sim: &Simulator, key: &str) -> OpenAiService {
    OpenAiService::new(
        OpenAiConfig::new()
            .api_key(key)
            .base_url(sim.base_url())
            .no_proxy()
            .name("sim"),
    )
    .expect("valid provider config")
}

/// Requests that reached the simulator.
pub fn upstream_calls(sim: &Simulator) -> u64 {
    sim.stats().requests
}

pub fn request(text: &str) -> ChatRequest {
    ChatRequest::new(
        "gpt-4o-mini",
        vec![ChatMessage::system("Be brief."), ChatMessage::user(text)],
    )
    .max_tokens(64)
}

/// Whether the tests run under CI (`CI` set to anything but empty, `0` or `false`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A `redis-server` child process on a loopback port, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free port, or returns `None` (after a loud message) when
    /// `redis-server` is not installed. Under CI a missing `redis-server` fails the test.
    pub fn start(test: &str) -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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
        let port = free_port();
        Some(Self::start_on(port))
    }

    /// Starts a server on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let child = spawn_redis(port, dir.path());
        let server = RedisServer {
            child: Some(child),
            port,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn_redis(self.port, self._dir.path()));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_redis(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
