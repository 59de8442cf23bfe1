//! `lbgpt config check FILE`: the real binary, a controlled environment (nothing inherited),
//! a temporary working directory with a `.env`.

use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `lbgpt config check FILE` in `dir` with exactly `vars` in its environment (and
/// `RUST_LOG=debug`, so that logs are searched for keys too).
fn check(dir: &Path, file: &str, vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lbgpt"));
    command
        .args(["config", "check", file])
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "debug");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("lbgpt runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

/// Asserts that nothing printed holds a value marked `SECRET`.
fn assert_no_secret(output: &Output) {
    let text = describe(output);
    assert!(!text.contains("SECRET"), "a secret was printed:\n{text}");
}

/// The block of provider `name` in the report: its name line and the indented lines below it.
fn block(report: &str, name: &str) -> String {
    let mut lines = report
        .lines()
        .skip_while(|line| *line != format!("  {name}"));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no block for {name} in:\n{report}"));
    let rest = lines.take_while(|line| line.starts_with("    "));
    std::iter::once(first)
        .chain(rest)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_every_member_with_redacted_keys_and_sends_nothing() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new("sk-unused")))
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("lbgpt.toml"),
        format!(
            r#"max_concurrent_requests = 7

[retry]
max_attempts = 4

[balance]
strategy = "round_robin"

[cache]
kind = "memory"

[[providers]]
kind = "azure"
name = "azure-eu"
endpoint = "{endpoint}"
api_key_env = "MY_AZURE_KEY"
deployments = {{ "gpt-4o-mini" = "mini-eu" }}
proxy = "none"
rpm = 100

[[providers]]
kind = "openai"
name = "local"
base_url = "{base_url}"
api_key = "inline-SECRET"

[[providers]]
from_env = "OPENAI_API_KEY*"
tpm = 90000

[env.OPENAI_API_KEY_2]
rpm = 500
weight = 2
"#,
            endpoint = sim.endpoint(),
            base_url = sim.base_url()
        ),
    )
    .expect("config written");
    std::fs::write(
        dir.path().join(".env"),
        "# from the team's .env\nOPENAI_API_KEY_10='sk-dotenv-SECRET-00000010'\n",
    )
    .expect(".env written");
    let path = dir.path().to_owned();
    // The simulator runs on this runtime's threads while the child runs.
    let output = tokio::task::spawn_blocking(move || {
        check(
            &path,
            "lbgpt.toml",
            &[
                ("MY_AZURE_KEY", "azure-key-SECRET-0000000000ab12"),
                ("OPENAI_API_KEY_2", "sk-second-SECRET-0000000002cd"),
                ("OPENAI_API_KEY_1", "sk-first-SECRET-000000000001ef"),
                (
                    "OPENAI_API_PROXY",
                    "http://alice:pw-SECRET@proxy.internal:3128",
                ),
                ("OPENAI_API_PROXY_2", "none"),
            ],
        )
    })
    .await
    .expect("join");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_no_secret(&output);
    let report = stdout(&output);
    assert!(
        report.starts_with("lbgpt.toml: valid, 5 providers\n"),
        "{report}"
    );
    for line in [
        "max concurrent requests: 7",
        "retry:    at most 4 attempts",
        "balance:  strategy round_robin",
        "cache:    memory",
    ] {
        assert!(report.contains(line), "{line:?} in:\n{report}");
    }
    // In balancing order: the file's providers, then the pattern's in numeric order.
    let order: Vec<usize> = [
        "\n  azure-eu\n",
        "\n  local\n",
        "\n  OPENAI_API_KEY_1\n",
        "\n  OPENAI_API_KEY_2\n",
        "\n  OPENAI_API_KEY_10\n",
    ]
    .iter()
    .map(|name| {
        report
            .find(name)
            .unwrap_or_else(|| panic!("{name:?} in:\n{report}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{report}");

    let azure = block(&report, "azure-eu");
    for part in [
        "kind:        azure",
        &format!("endpoint:    {}", sim.endpoint()),
        "deployments: gpt-4o-mini -> mini-eu",
        "api-version: 2024-10-21 (default)",
        "proxy:       none",
        "key:         …ab12 (from MY_AZURE_KEY)",
        "limits:      weight 1, rpm 100, tpm none",
    ] {
        assert!(azure.contains(part), "{part:?} in:\n{azure}");
    }
    let local = block(&report, "local");
    for part in [
        "kind:        compatible",
        "key:         [set] (inline, in the config file)",
        "proxy:       system settings",
    ] {
        assert!(local.contains(part), "{part:?} in:\n{local}");
    }
    let first = block(&report, "OPENAI_API_KEY_1");
    for part in [
        "kind:        openai",
        "base url:    https://api.openai.com/v1",
        "proxy:       http://***@proxy.internal:3128 (from OPENAI_API_PROXY)",
        "key:         sk-…01ef (from OPENAI_API_KEY_1, environment)",
        "limits:      weight 1, rpm none, tpm 90000",
    ] {
        assert!(first.contains(part), "{part:?} in:\n{first}");
    }
    let second = block(&report, "OPENAI_API_KEY_2");
    for part in [
        "proxy:       none (from OPENAI_API_PROXY_2)",
        "key:         sk-…02cd (from OPENAI_API_KEY_2, environment)",
        "limits:      weight 2, rpm 500, tpm 90000",
    ] {
        assert!(second.contains(part), "{part:?} in:\n{second}");
    }
    let tenth = block(&report, "OPENAI_API_KEY_10");
    assert!(
        tenth.contains("key:         sk-…0010 (from OPENAI_API_KEY_10, .env)"),
        "{tenth}"
    );
    assert_eq!(sim.stats().requests, 0, "a check sends nothing");
}

#[test]
fn a_missing_key_variable_is_named_with_exit_status_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("lbgpt.toml"),
        "[[providers]]\nkind = \"openai\"\nname = \"p\"\napi_key_env = \"TEAM_KEY\"\n",
    )
    .expect("config written");
    let output = check(dir.path(), "lbgpt.toml", &[("OTHER", "x")]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let text = stderr(&output);
    assert!(
        text.contains("lbgpt.toml, line 4") && text.contains("`TEAM_KEY`"),
        "{text}"
    );
    assert!(stdout(&output).is_empty(), "{}", describe(&output));
}

#[test]
fn the_errors_of_run_are_the_errors_of_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (config, vars, needle) in [
        (
            "[retry]\nmax_atempts = 3\n",
            vec![("OPENAI_API_KEY", "sk-SECRET-000000000000000001")],
            "line 2, column 1: unknown key `max_atempts`",
        ),
        (
            "[[providers]]\nfrom_env = \"OPENAI_API_KEY_EU*\"\n",
            vec![("OPENAI_API_KEY_US", "sk-SECRET-000000000000000001")],
            "line 2, column 12: key `from_env`: no variable matching `OPENAI_API_KEY_EU*` is set",
        ),
        (
            "[[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\nname = \"x\"\n",
            vec![("OPENAI_API_KEY", "sk-SECRET-000000000000000001")],
            "line 3, column 8: key `name` is not used with `from_env`",
        ),
        (
            "[[providers]]\nfrom_env = \"HOME\"\n",
            vec![],
            "key `from_env`: key pattern \"HOME\": must start with `OPENAI_API_KEY`",
        ),
        (
            "[env.OPENAI_API_KEY_9]\nrpm = 10\n",
            vec![("OPENAI_API_KEY_1", "sk-SECRET-000000000000000001")],
            "line 1, column 1: `[env.OPENAI_API_KEY_9]`: no provider takes its key",
        ),
        (
            "[env.OPENAI_KEY]\nrpm = 10\n",
            vec![("OPENAI_API_KEY_1", "sk-SECRET-000000000000000001")],
            "`[env.OPENAI_KEY]`: not the name of a key variable",
        ),
        (
            "[[providers]]\nkind = \"openai\"\napi_key_env = \"OPENAI_API_KEY_1\"\n\
             [[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\n",
            vec![("OPENAI_API_KEY_1", "sk-SECRET-000000000000000001")],
            "the key in `OPENAI_API_KEY_1` is already used by provider \"openai-1\"",
        ),
        (
            "max_concurrent_requests = 2\n",
            vec![
                ("OPENAI_API_KEY_1", "sk-SECRET-000000000000000001"),
                ("OPENAI_API_PROXY_1", "proxy:3128"),
            ],
            "no `[[providers]]` table, so keys come from the environment: \
             `OPENAI_API_PROXY_1` is not a URL",
        ),
    ] {
        std::fs::write(dir.path().join("bad.toml"), config).expect("config written");
        let output = check(dir.path(), "bad.toml", &vars);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{config}\n{}",
            describe(&output)
        );
        let text = stderr(&output);
        assert!(
            text.contains("config file bad.toml") && text.contains(needle),
            "{needle:?} for\n{config}\nin:\n{text}"
        );
        assert_no_secret(&output);
    }
}

#[test]
fn a_broken_dotenv_file_is_named_by_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("lbgpt.toml"),
        "max_concurrent_requests = 2\n",
    )
    .expect("config written");
    std::fs::write(
        dir.path().join(".env"),
        "OPENAI_API_KEY_1=sk-fine-SECRET-00000000001\nOPENAI_API_KEY_2=\"sk-SECRET-unterminated\n",
    )
    .expect(".env written");
    let output = check(dir.path(), "lbgpt.toml", &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let text = stderr(&output);
    assert!(
        text.contains(".env, line 2") && text.contains("OPENAI_API_KEY_2"),
        "{text}"
    );
    assert_no_secret(&output);
}
