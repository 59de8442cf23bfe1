//! `lbgpt run` with several providers behind the balancer: weights, limits, a retired key, and
//! the per-provider statistics at the end.

mod common;

use common::*;
use lbgpt_sim::{expected_answer, KeyConfig, LimitMode, SimConfig};

/// A second OpenAI-style key, revoked before the run.
const REVOKED_KEY: &str = "sk-test-SECRET-revoked-91f3";
const REVOKED_KEY_ENV: &str = "LBGPT_TEST_REVOKED_KEY";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_providers_with_limits_and_a_revoked_key_answer_every_line_and_print_stats() {
    // Each key enforces its limits its own way; the config tells the balancer the same limits.
    let h = Harness::with_config(
        SimConfig::new()
            .key(
                KeyConfig::new(OPENAI_KEY)
                    .rpm(3_000)
                    .tpm(400_000)
                    .limit_mode(LimitMode::token_bucket()),
            )
            .key(
                KeyConfig::new(AZURE_KEY)
                    .rpm(6_000)
                    .tpm(600_000)
                    .limit_mode(LimitMode::short_windows()),
            )
            .key(KeyConfig::new(REVOKED_KEY).rpm(3_000)),
    )
    .await;
    assert!(h.sim.revoke_key(REVOKED_KEY));

    let config = format!(
        r#"max_concurrent_requests = 16

[retry]
max_attempts = 4
initial_backoff_ms = 10
max_backoff_ms = 100

[balance]
strategy = "max_headroom"
max_wait_ms = 30000
breaker_failures = 3
breaker_open_ms = 5000

[[providers]]
kind = "openai"
name = "openai-a"
base_url = "{base_url}"
api_key_env = "{OPENAI_KEY_ENV}"
proxy = "none"
limit_rpm = 3000
limit_tpm = 400000

[[providers]]
kind = "openai"
name = "openai-revoked"
base_url = "{base_url}"
api_key_env = "{REVOKED_KEY_ENV}"
proxy = "none"
rpm = 3000
weight = 2

[[providers]]
kind = "azure"
name = "azure-b"
endpoint = "{endpoint}"
api_key_env = "{AZURE_KEY_ENV}"
deployments = {{ "{MODEL}" = "mini-deployment" }}
proxy = "none"
rpm = 6000
tpm = 600000
"#,
        base_url = h.sim.base_url(),
        endpoint = h.sim.endpoint(),
    );
    let total = 150;
    let input: String = (0..total)
        .map(|i| batch_line(&format!("r{i}"), &chat(i)) + "\n")
        .collect();
    let input_path = h.write("in.jsonl", &input);
    let config_path = h.write("lbgpt.toml", &config);
    let output_path = h.path("out.jsonl");
    let run = h
        .lbgpt_env(
            &run_args(&input_path, &config_path, &output_path, &[]),
            &[
                (OPENAI_KEY_ENV, OPENAI_KEY),
                (AZURE_KEY_ENV, AZURE_KEY),
                (REVOKED_KEY_ENV, REVOKED_KEY),
            ],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.describe());

    let lines = read_jsonl(&output_path);
    assert_eq!(lines.len(), total);
    let mut served = std::collections::BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        assert!(line["error"].is_null(), "line {i} failed: {line}");
        assert_eq!(answer_text(line), expected_answer(&chat(i)));
        *served
            .entry(line["lbgpt"]["member"].as_str().expect("member").to_owned())
            .or_insert(0) += 1;
    }
    assert!(
        !served.contains_key("openai-revoked"),
        "the revoked key answered nothing: {served:?}"
    );
    assert_eq!(served.len(), 2, "{served:?}");

    // The simulator: no 429 at all, and the revoked key retired after its first 401s (one per
    // request already on its way, at most the 16 in flight).
    let stats = h.sim.stats();
    assert_eq!(stats.status(429), 0, "{stats:?}");
    let unauthorized = h.sim.key_stats(REVOKED_KEY).expect("key").unauthorized;
    assert!((1..=16).contains(&unauthorized), "{unauthorized} 401s");

    // The start line names the strategy and each provider's weight and limits.
    let stderr = run.stderr();
    assert!(
        stderr.contains("openai-revoked (openai, weight 2, rpm 3000)")
            && stderr.contains("strategy max_headroom"),
        "{stderr}"
    );
    // The statistics at the end: a header and one line per provider.
    let table: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.starts_with("per provider:"))
        .skip(1)
        .take(4)
        .collect();
    assert_eq!(table.len(), 4, "{stderr}");
    for column in [
        "requests",
        "prompt tok",
        "429s",
        "retries",
        "failovers",
        "headroom",
        "state",
    ] {
        assert!(table[0].contains(column), "{column}: {stderr}");
    }
    let row = |name: &str| {
        table
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .copied()
            .unwrap_or_else(|| panic!("no row for {name}: {stderr}"))
    };
    assert!(row("openai-a").contains("active"), "{stderr}");
    assert!(
        row("openai-a").contains("rpm ") && row("openai-a").contains("/3000"),
        "{stderr}"
    );
    assert!(
        row("azure-b").contains("tpm ") && row("azure-b").contains("/600000"),
        "{stderr}"
    );
    assert!(
        row("openai-revoked").contains("dead (HTTP 401 invalid_api_key)"),
        "{stderr}"
    );
    for secret in [OPENAI_KEY, AZURE_KEY, REVOKED_KEY] {
        assert!(!stderr.contains(secret), "a key leaked: {stderr}");
    }
    assert!(stderr.contains(&format!("succeeded:  {total}")), "{stderr}");
}
