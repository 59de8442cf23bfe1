//! Configuration from TOML: every documented key works, unknown keys are named.

mod common;

use common::{chat, client, header, json_body, post_azure, post_openai};
use lbgpt_sim::{Fault, FaultMix, LimitMode, SimConfig, SimConfigError, Simulator};
use std::time::Duration;

const FULL: &str = r#"
listen = "127.0.0.1:0"
seed = 42
seen_capacity = 3

[latency]
fixed_ms = 5
per_output_token_ms = 0.5

[azure]
api_versions = ["2024-10-21"]
deployments = { "gpt4o-prod" = "gpt-4o" }

[[keys]]
key = "sk-sim-a"
name = "a"
rpm = 2
tpm = 100000
window_ms = 60000

[[keys]]
key = "sk-sim-b"
fault_probability = 0.2
faults = [
  { kind = "rate_limited", weight = 4, retry_after_ms = 100 },
  { kind = "server_error", weight = 2 },
  { kind = "unavailable", retry_after_ms = 500 },
  { kind = "status", status = 418 },
  { kind = "stall", duration_ms = 5000 },
  { kind = "reset" },
  { kind = "malformed_json" },
  { kind = "unauthorized" },
  { kind = "insufficient_quota" },
  { kind = "empty_body" },
  { kind = "non_json_body", status = 504, weight = 0 },
]

[[keys]]
key = "sk-sim-c"
fault_probability = 1.0
"#;

#[test]
fn every_documented_key_is_read() {
    let config = SimConfig::from_toml_str(FULL).expect("parses");
    assert_eq!(config.seed_value(), 42);
    assert_eq!(config.listen_addr().to_string(), "127.0.0.1:0");
    let latency = config.latency_value();
    assert_eq!(latency.fixed_part(), Duration::from_millis(5));
    assert_eq!(latency.per_token_part(), Duration::from_micros(500));
    let keys = config.keys();
    assert_eq!(keys.len(), 3);
    assert_eq!(
        (keys[0].id(), keys[0].rpm_limit(), keys[0].tpm_limit()),
        ("a", Some(2), Some(100_000))
    );
    assert_eq!(keys[1].id(), "sk-sim-b");

    let expected = SimConfig::new()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .seed(42)
        .seen_capacity(3)
        .latency(
            lbgpt_sim::Latency::fixed(Duration::from_millis(5))
                .per_output_token(Duration::from_micros(500)),
        )
        .azure_api_versions(["2024-10-21"])
        .azure_deployment("gpt4o-prod", "gpt-4o")
        .key(
            lbgpt_sim::KeyConfig::new("sk-sim-a")
                .name("a")
                .rpm(2)
                .tpm(100_000),
        )
        .key(
            lbgpt_sim::KeyConfig::new("sk-sim-b").random_faults(
                0.2,
                FaultMix::new()
                    .with(
                        Fault::RateLimited {
                            retry_after: Duration::from_millis(100),
                        },
                        4,
                    )
                    .with(Fault::ServerError, 2)
                    .with(
                        Fault::Unavailable {
                            retry_after: Some(Duration::from_millis(500)),
                        },
                        1,
                    )
                    .with(Fault::Status(418), 1)
                    .with(Fault::Stall(Duration::from_secs(5)), 1)
                    .with(Fault::Reset, 1)
                    .with(Fault::MalformedJson, 1)
                    .with(Fault::Unauthorized, 1)
                    .with(Fault::InsufficientQuota, 1)
                    .with(Fault::EmptyBody(502), 1)
                    .with(Fault::NonJsonBody(504), 0),
            ),
        )
        .key(lbgpt_sim::KeyConfig::new("sk-sim-c").random_faults(1.0, FaultMix::default()));
    assert_eq!(config, expected);
}

#[tokio::test]
async fn a_simulator_from_toml_behaves_as_configured() {
    let sim = Simulator::start(SimConfig::from_toml_str(FULL).expect("parses"))
        .await
        .expect("starts");
    let client = client();
    for _ in 0..2 {
        let ok = post_openai(&client, &sim, "sk-sim-a", &chat("hi"))
            .await
            .expect("sent");
        assert_eq!(ok.status(), 200);
    }
    let limited = post_openai(&client, &sim, "sk-sim-a", &chat("hi"))
        .await
        .expect("sent");
    assert_eq!(limited.status(), 429);
    assert_eq!(
        header(&limited, "x-ratelimit-limit-requests").as_deref(),
        Some("2")
    );

    let azure = post_azure(
        &client,
        &sim,
        "gpt4o-prod",
        Some("2024-10-21"),
        "sk-sim-a",
        &chat("hi"),
    )
    .await
    .expect("sent");
    assert_eq!(azure.status(), 429, "same key, same limit");
    let azure = post_azure(
        &client,
        &sim,
        "gpt4o-prod",
        Some("2024-02-01"),
        "sk-sim-a",
        &chat("hi"),
    )
    .await
    .expect("sent");
    assert_eq!(azure.status(), 400, "api-version not in the list");

    // fault_probability 1.0 with the default mix: every request is faulted.
    for _ in 0..5 {
        let _ = post_openai(&client, &sim, "sk-sim-c", &chat("hi")).await;
    }
    assert_eq!(sim.key_stats("sk-sim-c").expect("known").faults_injected, 5);
    assert_eq!(sim.seen_requests().len(), 3, "seen_capacity bounds the log");
    let stats = sim.stats();
    assert_eq!(stats.keys["a"].rate_limited, 2);
}

#[tokio::test]
async fn the_deployment_map_gives_the_answer_model() {
    let sim = Simulator::start(SimConfig::from_toml_str(FULL).expect("parses"))
        .await
        .expect("starts");
    let answer = post_azure(
        &client(),
        &sim,
        "gpt4o-prod",
        Some("2024-10-21"),
        "sk-sim-a",
        &chat("x"),
    )
    .await
    .expect("sent");
    assert_eq!(answer.status(), 200);
    assert_eq!(json_body(answer).await["model"], "gpt-4o");
}

fn error_of(text: &str) -> String {
    SimConfig::from_toml_str(text)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let top = error_of("seed = 1\nport = 8080\n");
    assert!(top.contains("port") && top.contains("line 2"), "{top}");
    let in_key = error_of("[[keys]]\nkey = \"k\"\nrpmm = 60\n");
    assert!(
        in_key.contains("rpmm") && in_key.contains("line 3"),
        "{in_key}"
    );
    let in_latency = error_of("[latency]\nfixed = 5\n");
    assert!(in_latency.contains("fixed"), "{in_latency}");
    let in_fault = error_of(
        "[[keys]]\nkey = \"k\"\nfault_probability = 0.1\nfaults = [{ kind = \"reset\", wieght = 2 }]\n",
    );
    assert!(in_fault.contains("wieght"), "{in_fault}");
    let kind = error_of(
        "[[keys]]\nkey = \"k\"\nfault_probability = 0.1\nfaults = [{ kind = \"explode\" }]\n",
    );
    assert!(kind.contains("explode"), "{kind}");
    let in_azure = error_of("[azure]\nversions = []\n");
    assert!(in_azure.contains("versions"), "{in_azure}");
}

#[test]
fn invalid_values_name_the_setting() {
    let cases = [
        ("listen = \"localhost\"\n", "listen"),
        ("[latency]\nfixed_ms = -1\n", "latency.fixed_ms"),
        ("[[keys]]\nkey = \"k\"\nfault_probability = 2.0\n", "keys[0].fault_probability"),
        (
            "[[keys]]\nkey = \"k\"\nfaults = [{ kind = \"reset\" }]\n",
            "keys[0].faults",
        ),
        (
            "[[keys]]\nkey = \"k\"\nfault_probability = 0.5\nfaults = [{ kind = \"status\" }]\n",
            "keys[0].faults[0].status",
        ),
        (
            "[[keys]]\nkey = \"k\"\nfault_probability = 0.5\nfaults = [{ kind = \"status\", status = 1000 }]\n",
            "keys[0].faults[0].status",
        ),
        (
            "[[keys]]\nkey = \"k\"\nfault_probability = 0.5\nfaults = [{ kind = \"reset\", status = 500 }]\n",
            "keys[0].faults[0].status",
        ),
        (
            "[[keys]]\nkey = \"k\"\nfault_probability = 0.5\nfaults = [{ kind = \"stall\" }]\n",
            "keys[0].faults[0].duration_ms",
        ),
        ("[[keys]]\nkey = \"k\"\nperiod_ms = 1000\n", "keys[0].period_ms"),
        (
            "[[keys]]\nkey = \"k\"\nlimit_mode = \"token_bucket\"\nwindow_ms = 1000\n",
            "keys[0].window_ms",
        ),
        (
            "[[keys]]\nkey = \"k\"\nlimit_mode = \"short_windows\"\nperiod_ms = 0\n",
            "keys[0].period_ms",
        ),
        ("[[keys]]\nkey = \"k\"\nwindow_ms = 0\n", "keys[0].window_ms"),
        ("[[keys]]\nkey = \"k\"\ntoken_factor = 0.0\n", "keys[0].token_factor"),
    ];
    for (text, field) in cases {
        match SimConfig::from_toml_str(text) {
            Err(SimConfigError::Invalid { field: named, .. }) => {
                assert_eq!(named, field, "for {text}")
            }
            other => panic!("expected an invalid `{field}` for {text:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn values_checked_at_start_are_refused_there() {
    let duplicate = "[[keys]]\nkey = \"k\"\n[[keys]]\nkey = \"k\"\n";
    let error = Simulator::start(SimConfig::from_toml_str(duplicate).expect("parses"))
        .await
        .expect_err("duplicate keys");
    assert!(error.to_string().contains("keys[1]"), "{error}");
    let zero = "[[keys]]\nkey = \"k\"\nrpm = 0\n";
    let error = Simulator::start(SimConfig::from_toml_str(zero).expect("parses"))
        .await
        .expect_err("rpm 0");
    assert!(error.to_string().contains("keys[0].rpm"), "{error}");
}

#[test]
fn files_are_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("lbgpt-sim-toml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let missing = dir.join("missing.toml");
    let error = SimConfig::from_file(&missing).expect_err("missing file");
    assert!(error.to_string().contains("missing.toml"), "{error}");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[keys]]\nkey = \"k\"\nrpmm = 1\n").expect("writes");
    let error = SimConfig::from_file(&bad)
        .expect_err("unknown key")
        .to_string();
    assert!(
        error.contains("bad.toml") && error.contains("rpmm"),
        "{error}"
    );

    let good = dir.join("good.toml");
    std::fs::write(&good, FULL).expect("writes");
    assert_eq!(SimConfig::from_file(&good).expect("reads").keys().len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn limit_modes_are_read_with_their_defaults() {
    let config = SimConfig::from_toml_str(
        r#"
        [[keys]]
        key = "default"
        rpm = 60
        [[keys]]
        key = "sliding"
        rpm = 60
        limit_mode = "sliding_window"
        window_ms = 1000
        [[keys]]
        key = "bucket"
        rpm = 60
        limit_mode = "token_bucket"
        [[keys]]
        key = "bucket-fast"
        limit_mode = "token_bucket"
        period_ms = 6000
        [[keys]]
        key = "azure"
        rpm = 600
        limit_mode = "short_windows"
        [[keys]]
        key = "azure-1s"
        limit_mode = "short_windows"
        window_ms = 1000
        token_factor = 1.25
        "#,
    )
    .expect("parses");
    let modes: Vec<_> = config
        .keys()
        .iter()
        .map(lbgpt_sim::KeyConfig::limit_mode_value)
        .collect();
    assert_eq!(
        modes,
        [
            LimitMode::default(),
            LimitMode::sliding_window(Duration::from_secs(1)),
            LimitMode::token_bucket(),
            LimitMode::token_bucket_over(Duration::from_secs(6)),
            LimitMode::short_windows_of(Duration::from_secs(10), Duration::from_secs(60)),
            LimitMode::short_windows_of(Duration::from_secs(1), Duration::from_secs(60)),
        ]
    );
    assert_eq!(config.keys()[0].token_factor_value(), 1.0);
    assert_eq!(config.keys()[5].token_factor_value(), 1.25);
    let unknown = error_of("[[keys]]\nkey = \"k\"\nlimit_mode = \"leaky\"\n");
    assert!(unknown.contains("leaky"), "{unknown}");
}
