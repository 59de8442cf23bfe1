//! `lbgpt sim`: serves the simulator from a config file until Ctrl-C.

use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use tower::ServiceExt;

/// Kills the child if the test fails before it exits on its own.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_serves_its_keys_until_ctrl_c() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("sim.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:9\"\nseed = 3\n[[keys]]\nkey = \"sk-sim-cli\"\nrpm = 100\n",
    )
    .expect("config written");

    // --listen overrides the file's address (port 9 would need privileges).
    let child = Command::new(env!("CARGO_BIN_EXE_lbgpt"))
        .args(["sim", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lbgpt sim starts");
    let mut guard = KillOnDrop(Some(child));
    let child = guard.0.as_mut().expect("child");
    let stdout = child.stdout.take().expect("stdout");
    let pid = child.id();
    let (base_url, banner) = tokio::task::spawn_blocking(move || {
        let mut banner = String::new();
        let mut url = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            banner.push_str(&line);
            banner.push('\n');
            if let Some(found) = line.trim().strip_prefix("OpenAI base URL: ") {
                url = Some(found.to_owned());
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        (
            url.unwrap_or_else(|| panic!("no base URL printed: {banner}")),
            banner,
        )
    })
    .await
    .expect("join");
    assert!(base_url.starts_with("http://127.0.0.1:"), "{banner}");
    assert!(!base_url.starts_with("http://127.0.0.1:9/"), "{banner}");
    assert!(banner.contains("sk-sim-cli (rpm 100)"), "{banner}");

    let service = OpenAiService::new(
        OpenAiConfig::new()
            .api_key("sk-sim-cli")
            .base_url(&base_url)
            .no_proxy(),
    )
    .expect("client");
    let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("ping")]);
    let answer = service
        .oneshot(request.clone())
        .await
        .expect("the simulator answers");
    assert_eq!(
        answer.first_text().as_deref(),
        Some(lbgpt_sim::expected_answer(&request).as_str())
    );

    // Ctrl-C: SIGINT to the child, which stops cleanly.
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let child = guard.0.take().expect("child");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("lbgpt sim exits");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stopped after 1 requests"), "{stderr}");
}

#[test]
fn sim_config_errors_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("sim.toml");
    std::fs::write(&config, "[[keys]]\nkey = \"k\"\nrpmm = 60\n").expect("written");
    let output = Command::new(env!("CARGO_BIN_EXE_lbgpt"))
        .args(["sim", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rpmm") && stderr.contains("line 3"),
        "{stderr}"
    );
    assert!(stderr.contains("sim.toml"), "{stderr}");
}
