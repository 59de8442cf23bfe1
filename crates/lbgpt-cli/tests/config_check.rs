//! `lbgpt config check FILE`: the real binary, a controlled environment (nothing inherited),
//! a temporary working directory with a `.env`.

mod common;

use common::{describe_output as describe, lbgpt_isolated as lbgpt};
use lbgpt::semantic::FastembedEmbedder;
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::path::Path;
use std::process::Output;

/// Runs `lbgpt config check FILE` in `dir` with exactly `vars` in its environment (and
/// `RUST_LOG=debug`, so that logs are searched for keys too).
fn check(dir: &Path, file: &str, vars: &[(&str, &str)]) -> Output {
    lbgpt(dir, &["config", "check", file], vars)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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

/// A model directory holding (empty) files named as the semantic cache's, and an (empty)
/// ONNX Runtime library: enough for a check, which looks at the files without loading them.
fn fake_semantic_assets(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let model = dir.join("model");
    std::fs::create_dir(&model).expect("model dir");
    for name in FastembedEmbedder::MODEL_FILES {
        std::fs::write(model.join(name), "").expect("model file");
    }
    let library = dir.join("libonnxruntime.so");
    std::fs::write(&library, "").expect("library");
    (model, library)
}

#[test]
fn the_semantic_caches_files_are_checked_and_named_at_their_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let complete = dir.path().join("complete");
    let broken = dir.path().join("broken");
    std::fs::create_dir(&complete).expect("dir");
    std::fs::create_dir(&broken).expect("dir");
    let (model, _) = fake_semantic_assets(&complete);
    let (broken_model, _) = fake_semantic_assets(&broken);
    std::fs::remove_file(broken_model.join("tokenizer.json")).expect("removed");
    std::fs::write(dir.path().join("a-file"), "").expect("file");
    let provider = "[[providers]]\nkind = \"openai\"\napi_key = \"k\"\n\n";
    let table = |model_dir: &str, library: &str, index_dir: &str| {
        format!(
            "{provider}[semantic_cache]\nmodel_dir = \"{model_dir}\"\n\
             runtime_library = \"{library}\"\nindex_dir = \"{index_dir}\"\n"
        )
    };
    let library = "complete/libonnxruntime.so";

    // Everything in place; index_dir is created by the run, not by the check.
    std::fs::write(
        dir.path().join("good.toml"),
        table("complete/model", library, "cache/index"),
    )
    .expect("config");
    let before = std::fs::read_dir(dir.path()).expect("list").count();
    let output = check(dir.path(), "good.toml", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        stdout(&output).contains("semantic cache: threshold"),
        "{}",
        describe(&output)
    );
    let after = std::fs::read_dir(dir.path()).expect("list").count();
    assert_eq!(before, after, "the check left nothing behind");

    let typo = format!("{}-typo", model.display());
    for (config, line, needles) in [
        // A typo in model_dir.
        (
            table(&typo, library, "index"),
            6,
            vec![
                "`[semantic_cache]` key `model_dir`: the model directory".to_owned(),
                format!("{typo} does not exist"),
            ],
        ),
        // A file the model is loaded from is missing.
        (
            table("broken/model", library, "index"),
            6,
            vec!["the model directory broken/model has no tokenizer.json (".to_owned()],
        ),
        // The runtime library's path is wrong.
        (
            table("complete/model", "lib/libonnxruntime.so", "index"),
            7,
            vec!["key `runtime_library`: the ONNX Runtime library".to_owned()],
        ),
        // The index cannot be saved: its parent is a file.
        (
            table("complete/model", library, "a-file/index"),
            8,
            vec![
                "key `index_dir`: a-file/index cannot be created: a-file is not a directory"
                    .to_owned(),
            ],
        ),
    ] {
        std::fs::write(dir.path().join("bad.toml"), &config).expect("config");
        let output = check(dir.path(), "bad.toml", &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{config}\n{}",
            describe(&output)
        );
        let text = stderr(&output);
        assert!(
            text.contains(&format!("config file bad.toml, line {line}")),
            "line {line} for\n{config}\nin:\n{text}"
        );
        for needle in needles {
            assert!(text.contains(&needle), "{needle:?} in:\n{text}");
        }
    }

    // A directory nobody may create files in (not even root): /proc.
    #[cfg(target_os = "linux")]
    {
        std::fs::write(
            dir.path().join("bad.toml"),
            table("complete/model", library, "/proc/lbgpt-index"),
        )
        .expect("config");
        let output = check(dir.path(), "bad.toml", &[]);
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let text = stderr(&output);
        assert!(
            text.contains("line 8")
                && text.contains(
                    "key `index_dir`: /proc/lbgpt-index cannot be created: /proc is not writable"
                ),
            "{text}"
        );
    }

    // No model_dir: the default directory (under LBGPT_ASSETS_DIR) is checked, at the table.
    std::fs::write(
        dir.path().join("default.toml"),
        format!("{provider}[semantic_cache]\nthreshold = 0.9\n"),
    )
    .expect("config");
    let output = check(
        dir.path(),
        "default.toml",
        &[("LBGPT_ASSETS_DIR", &broken.display().to_string())],
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let text = stderr(&output);
    assert!(
        text.contains("config file default.toml, line 5")
            && text.contains("no `model_dir` is set, and the default model directory")
            && text.contains("fetch-assets"),
        "{text}"
    );
}

#[test]
fn a_key_in_a_url_query_is_never_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port nothing listens on: the run's request fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"custom_id\": \"a\", \"method\": \"POST\", \"url\": \"/v1/chat/completions\", \
         \"body\": {\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}}\n",
    )
    .expect("input");

    // A base URL or endpoint with a query cannot work (paths are appended after it): an
    // error at its line, for check and run alike, that does not show it.
    for (config, vars, needle) in [
        (
            "[[providers]]\nkind = \"openai\"\napi_key = \"k\"\n\
             base_url = \"https://gateway.internal/v1?key=SECRET\"\n"
                .to_owned(),
            vec![],
            "line 4, column 12: key `base_url`: not a usable URL (it has a query after `?`",
        ),
        (
            "[[providers]]\nkind = \"azure\"\napi_key = \"k\"\ndeployments = { m = \"d\" }\n\
             endpoint = \"https://res.openai.azure.com/?code=SECRET\"\n"
                .to_owned(),
            vec![],
            "line 5, column 12: key `endpoint`: not a usable URL (it has a query",
        ),
        (
            "max_concurrent_requests = 2\n".to_owned(),
            vec![
                ("OPENAI_API_KEY", "sk-SECRET-000000000000000001"),
                ("OPENAI_BASE_URL", "https://gateway.internal/v1?key=SECRET"),
            ],
            "`OPENAI_BASE_URL` is not a URL of the API without query or fragment",
        ),
    ] {
        std::fs::write(dir.path().join("bad.toml"), &config).expect("config");
        for args in [
            vec!["config", "check", "bad.toml"],
            vec!["run", "in.jsonl", "-c", "bad.toml", "-o", "out.jsonl"],
        ] {
            let output = lbgpt(dir.path(), &args, &vars);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{config}\n{}",
                describe(&output)
            );
            assert!(
                stderr(&output).contains(needle),
                "{needle:?} in:\n{}",
                describe(&output)
            );
            assert_no_secret(&output);
        }
    }

    // A proxy's query does no harm (only its host and port are used), but it is not shown:
    // not by the check, nor by a run's output, errors or debug log.
    std::fs::write(
        dir.path().join("lbgpt.toml"),
        format!(
            "[retry]\nmax_attempts = 1\n\n\
             [[providers]]\nkind = \"openai\"\nname = \"file\"\napi_key = \"k\"\n\
             base_url = \"http://127.0.0.1:{closed}/v1\"\n\
             proxy = \"http://127.0.0.1:{closed}/?token=SECRET#SECRET\"\n\n\
             [[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\n"
        ),
    )
    .expect("config");
    let closed_url = format!("http://127.0.0.1:{closed}/v1");
    let vars = [
        ("OPENAI_API_KEY_1", "sk-SECRET-000000000000000001"),
        ("OPENAI_BASE_URL", closed_url.as_str()),
        ("OPENAI_API_PROXY", "socks5://127.0.0.1:1080/?token=SECRET"),
    ];
    let output = lbgpt(dir.path(), &["config", "check", "lbgpt.toml"], &vars);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_no_secret(&output);
    let report = stdout(&output);
    for needle in [
        format!("proxy:       http://127.0.0.1:{closed}/?***\n"),
        "proxy:       socks5://127.0.0.1:1080/?*** (from OPENAI_API_PROXY)\n".to_owned(),
    ] {
        assert!(report.contains(&needle), "{needle:?} in:\n{report}");
    }
    let output = lbgpt(
        dir.path(),
        &["run", "in.jsonl", "-c", "lbgpt.toml", "-o", "out.jsonl"],
        &vars,
    );
    let written = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("output");
    assert!(written.contains("\"error\""), "{written}");
    assert!(!written.contains("SECRET"), "{written}");
    assert_no_secret(&output);
    assert!(stderr(&output).contains("DEBUG"), "{}", describe(&output));
}

#[test]
fn without_a_file_check_uses_the_default_of_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    // No ./lbgpt.toml: the keys of the environment, as `lbgpt run` without --config.
    let key = "sk-SECRET-from-the-environment-0001";
    let output = lbgpt(dir.path(), &["config", "check"], &[("OPENAI_API_KEY", key)]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_no_secret(&output);
    let text = stdout(&output);
    assert!(
        text.starts_with("no config file, the keys of the environment: valid, 1 provider\n"),
        "{text}"
    );
    assert!(text.contains("(from OPENAI_API_KEY"), "{text}");

    // Nothing at all: the error of `lbgpt run`, naming the missing ./lbgpt.toml.
    let output = lbgpt(dir.path(), &["config", "check"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        stderr(&output).contains("lbgpt.toml does not exist"),
        "{}",
        describe(&output)
    );

    // With ./lbgpt.toml, that file.
    std::fs::write(
        dir.path().join("lbgpt.toml"),
        "[[providers]]\nkind = \"openai\"\nname = \"from-the-file\"\napi_key_env = \"TEAM_KEY\"\n",
    )
    .expect("config written");
    let output = lbgpt(dir.path(), &["config", "check"], &[("TEAM_KEY", key)]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("lbgpt.toml: valid, 1 provider\n"),
        "{text}"
    );
    assert!(text.contains("from-the-file"), "{text}");
}
