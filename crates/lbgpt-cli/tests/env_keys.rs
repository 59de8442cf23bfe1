//! `lbgpt run` over keys from the environment and `./.env`: the real binary, a controlled
//! environment (nothing inherited), the simulator on loopback.

mod common;

use common::{batch_line, chat, describe_output as describe, read_jsonl};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

/// Keys the simulator accepts; `SECRET` marks what must never be printed.
const KEY_1: &str = "sk-env-SECRET-first-0000000001";
const KEY_2: &str = "sk-env-SECRET-second-000000002";

/// Runs `lbgpt` in `dir` with exactly `vars` in its environment (and `RUST_LOG=debug`, so that
/// logs are searched for keys too).
async fn lbgpt(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = common::isolated_command(dir, args, vars);
    // The simulator runs on this runtime's other threads while the child runs.
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("lbgpt runs")
}

async fn simulator() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(KEY_1))
            .key(KeyConfig::new(KEY_2)),
    )
    .await
    .expect("simulator starts")
}

/// Writes `lines` requests to `in.jsonl` in `dir`.
fn write_input(dir: &Path, lines: usize) {
    let text: String = (0..lines)
        .map(|i| batch_line(&format!("r{i}"), &chat(i)) + "\n")
        .collect();
    std::fs::write(dir.join("in.jsonl"), text).expect("input written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_without_providers_runs_on_every_key_of_the_environment_and_dotenv() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_input(dir.path(), 8);
    std::fs::write(
        dir.path().join("lbgpt.toml"),
        "max_concurrent_requests = 2\n\n[balance]\nstrategy = \"round_robin\"\n\n\
         [env.OPENAI_API_KEY_2]\nrpm = 6000\n",
    )
    .expect("config written");
    // The second key only in ./.env; a wrong value for the first there, which the
    // environment's value overrides.
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "# keys\nOPENAI_API_KEY_1=sk-wrong-SECRET-value-from-dotenv\nOPENAI_API_KEY_2=\"{KEY_2}\"\n"
        ),
    )
    .expect(".env written");
    let base_url = sim.base_url();
    let output = lbgpt(
        dir.path(),
        &[
            "run",
            "in.jsonl",
            "--config",
            "lbgpt.toml",
            "--output",
            "out.jsonl",
        ],
        &[
            ("OPENAI_API_KEY_1", KEY_1),
            ("OPENAI_BASE_URL", &base_url),
            ("OPENAI_API_PROXY", "none"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let lines = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(lines.len(), 8);
    let members: BTreeSet<&str> = lines
        .iter()
        .map(|line| {
            assert!(line["error"].is_null(), "{line}");
            line["lbgpt"]["member"].as_str().expect("a member")
        })
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["OPENAI_API_KEY_1", "OPENAI_API_KEY_2"]),
        "every key answered, named by its variable"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OPENAI_API_KEY_1") && stderr.contains("OPENAI_API_KEY_2"),
        "the summary names the members by variable: {stderr}"
    );
    // Round robin over two keys: four requests each, and the wrong .env value never sent.
    assert_eq!(sim.key_stats(KEY_1).expect("key 1").requests, 4);
    assert_eq!(sim.key_stats(KEY_2).expect("key 2").requests, 4);
    assert_eq!(sim.stats().requests, 8, "no request with another key");

    let written = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("output");
    for text in [
        &written,
        &stderr.into_owned(),
        &String::from_utf8_lossy(&output.stdout).into_owned(),
    ] {
        assert!(!text.contains("SECRET"), "a key was printed: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_env_tables_take_their_pattern_and_sit_beside_providers_of_the_file() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_input(dir.path(), 6);
    std::fs::write(
        dir.path().join("lbgpt.toml"),
        format!(
            "[balance]\nstrategy = \"round_robin\"\n\n\
             [[providers]]\nkind = \"openai\"\nname = \"file-key\"\nbase_url = \"{}\"\n\
             api_key_env = \"MY_KEY\"\nproxy = \"none\"\n\n\
             [[providers]]\nfrom_env = \"OPENAI_API_KEY_EU*\"\nrequest_timeout_ms = 30000\n",
            sim.base_url()
        ),
    )
    .expect("config written");
    let base_url = sim.base_url();
    let output = lbgpt(
        dir.path(),
        &["run", "in.jsonl", "-c", "lbgpt.toml", "-o", "out.jsonl"],
        &[
            ("MY_KEY", KEY_1),
            ("OPENAI_API_KEY_EU_1", KEY_2),
            // Not matched by the pattern: never used.
            ("OPENAI_API_KEY_US", "sk-unused-SECRET-0000000000000"),
            ("OPENAI_BASE_URL", &base_url),
            ("OPENAI_API_PROXY", "none"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let lines = read_jsonl(&dir.path().join("out.jsonl"));
    let members: BTreeSet<&str> = lines
        .iter()
        .map(|line| line["lbgpt"]["member"].as_str().expect("a member"))
        .collect();
    assert_eq!(members, BTreeSet::from(["file-key", "OPENAI_API_KEY_EU_1"]));
    assert_eq!(sim.key_stats(KEY_1).expect("key 1").requests, 3);
    assert_eq!(sim.key_stats(KEY_2).expect("key 2").requests, 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("SECRET"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconsistent_variables_stop_the_run_before_anything_is_sent() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_input(dir.path(), 2);
    std::fs::write(
        dir.path().join("lbgpt.toml"),
        "max_concurrent_requests = 2\n",
    )
    .expect("config written");
    let base_url = sim.base_url();
    for (vars, needle) in [
        (
            vec![
                ("OPENAI_API_KEY_1", KEY_1),
                ("OPENAI_API_PROXY_3", "http://user:pw-SECRET@proxy:3128"),
            ],
            "`OPENAI_API_PROXY_3` is set, but `OPENAI_API_KEY_3` is not",
        ),
        (
            vec![("OPENAI_API_KEY_1", KEY_1), ("OPENAI_API_KEY_2", " ")],
            "`OPENAI_API_KEY_2` is set but empty",
        ),
        (
            vec![
                ("OPENAI_API_KEY_1", KEY_1),
                ("OPENAI_BASE_URL_1", "127.0.0.1:9/SECRET"),
            ],
            "`OPENAI_BASE_URL_1` is not a URL starting with http://, https://",
        ),
        (
            vec![("HOME", "/root")],
            "no `OPENAI_API_KEY*` or `AZURE_OPENAI_API_KEY*` variable is set",
        ),
    ] {
        let mut vars = vars;
        if vars
            .iter()
            .any(|(name, _)| name.starts_with("OPENAI_API_KEY"))
        {
            vars.push(("OPENAI_BASE_URL", &base_url));
        }
        let output = lbgpt(
            dir.path(),
            &["run", "in.jsonl", "-c", "lbgpt.toml", "-o", "out.jsonl"],
            &vars,
        )
        .await;
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
        assert!(stderr.contains("lbgpt.toml"), "names the file: {stderr}");
        assert!(!stderr.contains("SECRET"), "{stderr}");
        assert!(!dir.path().join("out.jsonl").exists(), "no output file");
    }
    assert_eq!(sim.stats().requests, 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_config_file_the_run_uses_the_keys_of_the_environment() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_input(dir.path(), 4);
    std::fs::write(
        dir.path().join(".env"),
        format!("OPENAI_API_KEY_2={KEY_2}\n"),
    )
    .expect(".env written");
    let base_url = sim.base_url();
    let vars = [
        ("OPENAI_API_KEY_1", KEY_1),
        ("OPENAI_BASE_URL", base_url.as_str()),
        ("OPENAI_API_PROXY", "none"),
    ];
    // No --config, no ./lbgpt.toml: every key of the environment and ./.env.
    let output = lbgpt(dir.path(), &["run", "in.jsonl", "-o", "out.jsonl"], &vars).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let lines = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(lines.len(), 4);
    assert!(
        lines.iter().all(|line| line["error"].is_null()),
        "{lines:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OPENAI_API_KEY_1") && stderr.contains("OPENAI_API_KEY_2"),
        "both keys are providers, named by their variable: {stderr}"
    );
    assert!(!stderr.contains("SECRET"), "{stderr}");
    assert_eq!(
        sim.key_stats(KEY_1).expect("key 1").requests
            + sim.key_stats(KEY_2).expect("key 2").requests,
        4
    );

    // A --config that names a missing file is an error, never a silent fall-back.
    let output = lbgpt(
        dir.path(),
        &[
            "run",
            "in.jsonl",
            "--config",
            "lbgpt.toml",
            "-o",
            "out2.jsonl",
        ],
        &vars,
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("lbgpt.toml") && stderr.contains("not found"),
        "{stderr}"
    );

    // Without a file and without keys (the .env gone too): the error says what to do.
    std::fs::remove_file(dir.path().join(".env")).expect(".env removed");
    let output = lbgpt(
        dir.path(),
        &["run", "in.jsonl", "-o", "out3.jsonl"],
        &[("HOME", "/")],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no config file (lbgpt.toml does not exist)")
            && stderr.contains("--config"),
        "{stderr}"
    );
    assert_eq!(sim.stats().requests, 4, "the failed runs sent nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dotenv_beside_the_config_is_read_before_the_working_directorys() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let project = dir.path().join("proj");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&project).expect("project dir");
    std::fs::create_dir(&elsewhere).expect("working dir");
    write_input(&elsewhere, 4);
    std::fs::write(
        project.join("lbgpt.toml"),
        format!(
            "[balance]\nstrategy = \"round_robin\"\n\n\
             [[providers]]\nkind = \"openai\"\nname = \"project\"\nbase_url = \"{url}\"\n\
             api_key_env = \"PROJECT_KEY\"\nproxy = \"none\"\n\n\
             [[providers]]\nkind = \"openai\"\nname = \"shared\"\nbase_url = \"{url}\"\n\
             api_key_env = \"SHARED_KEY\"\nproxy = \"none\"\n",
            url = sim.base_url()
        ),
    )
    .expect("config written");
    // The project's key beside its config; the working directory's .env has a wrong value
    // for it (the config's directory wins) and the only value of the shared key.
    std::fs::write(project.join(".env"), format!("PROJECT_KEY={KEY_1}\n")).expect(".env");
    std::fs::write(
        elsewhere.join(".env"),
        format!("PROJECT_KEY=sk-wrong-SECRET-from-the-cwd-0000\nSHARED_KEY={KEY_2}\n"),
    )
    .expect(".env");
    let config = "../proj/lbgpt.toml";
    let output = lbgpt(
        &elsewhere,
        &["run", "in.jsonl", "-c", config, "-o", "out.jsonl"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let lines = read_jsonl(&elsewhere.join("out.jsonl"));
    assert_eq!(lines.len(), 4);
    assert!(
        lines.iter().all(|line| line["error"].is_null()),
        "{lines:?}"
    );
    assert_eq!(sim.key_stats(KEY_1).expect("key 1").requests, 2);
    assert_eq!(sim.key_stats(KEY_2).expect("key 2").requests, 2);
    assert_eq!(sim.stats().requests, 4, "the wrong value was never sent");
    assert!(
        !describe(&output).contains("SECRET"),
        "{}",
        describe(&output)
    );

    // The process environment wins over both files.
    let output = lbgpt(
        &elsewhere,
        &["config", "check", config],
        &[("PROJECT_KEY", KEY_2)],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("sk-…0002 (from PROJECT_KEY)\n") && !report.contains("…0001"),
        "{report}"
    );

    // A variable in neither file: the error says where it was looked for.
    std::fs::write(project.join(".env"), "").expect(".env emptied");
    std::fs::write(elsewhere.join(".env"), "").expect(".env emptied");
    std::fs::write(
        project.join("lbgpt.toml"),
        "[[providers]]\nfrom_env = \"OPENAI_API_KEY_EU*\"\n",
    )
    .expect("config written");
    let output = lbgpt(&elsewhere, &["config", "check", config], &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "no variable matching `OPENAI_API_KEY_EU*` is set in the environment, \
             ../proj/.env or ./.env"
        ),
        "{stderr}"
    );
}
