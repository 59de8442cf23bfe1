//! Usage and config errors: exit status 2 and a message naming the file, line and key.

mod common;

use common::*;

/// Runs `lbgpt run` on a one-line input with `config` text, expecting exit 2; returns stderr.
async fn config_failure(h: &Harness, config: &str) -> String {
    let input = h.write("in.jsonl", &(batch_line("a", &chat(0)) + "\n"));
    let config_path = h.write("bad.toml", config);
    let output = h.write("out.jsonl", "previous results\n");
    let run = h
        .lbgpt(&[
            "run",
            path_str(&input),
            "--config",
            path_str(&config_path),
            "--output",
            path_str(&output),
        ])
        .await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(run.stdout().is_empty(), "{}", run.describe());
    assert_eq!(
        std::fs::read_to_string(&output).expect("output"),
        "previous results\n",
        "a config error leaves an existing output file alone"
    );
    assert_eq!(h.sim.stats().requests, 0, "nothing was sent");
    let stderr = run.stderr();
    assert!(stderr.contains("bad.toml"), "names the file: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_config_file() {
    let h = Harness::new().await;
    let input = h.write("in.jsonl", &(batch_line("a", &chat(0)) + "\n"));
    let run = h
        .lbgpt(&["run", path_str(&input), "--config", "nowhere.toml"])
        .await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    let stderr = run.stderr();
    assert!(
        stderr.contains("nowhere.toml") && stderr.contains("not found"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_toml_syntax_names_the_line() {
    let h = Harness::new().await;
    let config = h
        .openai_config()
        .replace("kind = \"openai\"", "kind = \"openai");
    let stderr = config_failure(&h, &config).await;
    let line = config
        .lines()
        .position(|l| l.starts_with("kind = \"openai"))
        .expect("line")
        + 1;
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_names_key_and_line() {
    let h = Harness::new().await;
    let config = h
        .openai_config()
        .replace("initial_backoff_ms = 10", "initial_backof_ms = 10");
    let stderr = config_failure(&h, &config).await;
    let line = config
        .lines()
        .position(|l| l.starts_with("initial_backof_ms"))
        .expect("line")
        + 1;
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
    assert!(stderr.contains("initial_backof_ms"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_key_on_an_openai_provider_is_named() {
    let h = Harness::new().await;
    let config = format!("{}api_version = \"2024-10-21\"\n", h.openai_config());
    let stderr = config_failure(&h, &config).await;
    let line = config.lines().count();
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
    assert!(
        stderr.contains("`api_version`") && stderr.contains("azure"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_variable_names_variable_key_and_line() {
    let h = Harness::new().await;
    let input = h.write("in.jsonl", &(batch_line("a", &chat(0)) + "\n"));
    let config = h.openai_config();
    let config_path = h.write("lbgpt.toml", &config);
    let run = h
        .lbgpt_env(
            &["run", path_str(&input), "-c", path_str(&config_path)],
            &[],
        )
        .await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    let stderr = run.stderr();
    let line = config
        .lines()
        .position(|l| l.starts_with("api_key_env"))
        .expect("line")
        + 1;
    assert!(stderr.contains(OPENAI_KEY_ENV), "{stderr}");
    assert!(stderr.contains("`api_key_env`"), "{stderr}");
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
    assert!(stderr.contains("lbgpt.toml"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_requests_file_and_output_onto_input_are_usage_errors() {
    let h = Harness::new().await;
    let config_path = h.write("lbgpt.toml", &h.openai_config());
    let run = h
        .lbgpt(&["run", "missing.jsonl", "-c", path_str(&config_path)])
        .await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(
        run.stderr().contains("missing.jsonl") && run.stderr().contains("no such file"),
        "{}",
        run.describe()
    );

    let input = h.write("in.jsonl", &(batch_line("a", &chat(0)) + "\n"));
    let run = h.lbgpt(&run_args(&input, &config_path, &input, &[])).await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(
        std::fs::read_to_string(&input)
            .expect("input")
            .contains("\"a\""),
        "input intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_usage_errors() {
    let h = Harness::new().await;
    for args in [
        &["run"][..],
        &["run", "x.jsonl", "--max-concurrent", "0"][..],
        &["demo", "--faults", "2"][..],
        &["frobnicate"][..],
    ] {
        let run = h.lbgpt(args).await;
        assert_eq!(run.code(), 2, "{args:?}: {}", run.describe());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_balance_settings_name_the_key_and_line() {
    let h = Harness::new().await;
    // An unknown strategy in [balance].
    let config = h.openai_config().replacen(
        "[[providers]]",
        "[balance]\nstrategy = \"fastest\"\n\n[[providers]]",
        1,
    );
    let stderr = config_failure(&h, &config).await;
    let line = config
        .lines()
        .position(|l| l.starts_with("strategy"))
        .expect("line")
        + 1;
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
    assert!(
        stderr.contains("`strategy`") && stderr.contains("max_headroom"),
        "{stderr}"
    );

    // A typo in [balance].
    let config = h.openai_config().replacen(
        "[[providers]]",
        "[balance]\nmax_wait = 100\n\n[[providers]]",
        1,
    );
    let stderr = config_failure(&h, &config).await;
    assert!(stderr.contains("max_wait"), "{stderr}");

    // A provider's limit, under the Python lbgpt's name.
    let config = format!("{}limit_tpm = 0\n", h.openai_config());
    let stderr = config_failure(&h, &config).await;
    let line = config.lines().count();
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
    assert!(stderr.contains("`limit_tpm`"), "{stderr}");

    // A negative weight.
    let config = format!("{}weight = -2\n", h.openai_config());
    let stderr = config_failure(&h, &config).await;
    assert!(stderr.contains("`weight`"), "{stderr}");
}

/// The line of `config` that starts with `start`, counted from 1.
fn line_of(config: &str, start: &str) -> usize {
    config
        .lines()
        .position(|l| l.starts_with(start))
        .expect("line")
        + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cache_settings_name_the_key_and_line() {
    let h = Harness::new().await;
    let with_cache = |table: &str| format!("{}\n[cache]\n{table}", h.openai_config());

    // An unknown kind.
    let config = with_cache("kind = \"memcached\"\n");
    let stderr = config_failure(&h, &config).await;
    assert!(
        stderr.contains(&format!(
            "line {}",
            line_of(&config, "kind = \"memcached\"")
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("memcached") && stderr.contains("`disk`") && stderr.contains("`redis`"),
        "{stderr}"
    );

    // A disk cache without its directory: the table's line.
    let config = with_cache("kind = \"disk\"\n");
    let stderr = config_failure(&h, &config).await;
    assert!(
        stderr.contains(&format!("line {}", line_of(&config, "[cache]"))),
        "{stderr}"
    );
    assert!(stderr.contains("`path`"), "{stderr}");

    // A key of another kind (the URL's line is not quoted: it may hold a password).
    let config = with_cache("kind = \"memory\"\nurl = \"redis://:hunter2@127.0.0.1/\"\n");
    let stderr = config_failure(&h, &config).await;
    assert!(
        stderr.contains(&format!("line {}", line_of(&config, "url ="))),
        "{stderr}"
    );
    assert!(
        stderr.contains("key `url` belongs to kind = \"redis\" caches"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // A typo.
    let config = with_cache("kind = \"memory\"\nttl = 1000\n");
    let stderr = config_failure(&h, &config).await;
    assert!(
        stderr.contains(&format!("line {}", line_of(&config, "ttl ="))),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown key `ttl`") && stderr.contains("ttl_ms"),
        "{stderr}"
    );

    // A range.
    let config = with_cache("kind = \"memory\"\nttl_ms = 0\n");
    let stderr = config_failure(&h, &config).await;
    assert!(
        stderr.contains("key `ttl_ms`: must be at least 1"),
        "{stderr}"
    );

    // A Redis URL that is not one: named by key and line, never quoted (it may hold a
    // password).
    let config = with_cache("kind = \"redis\"\nurl = \"http://user:hunter2@cache:6379\"\n");
    let stderr = config_failure(&h, &config).await;
    assert!(
        stderr.contains(&format!("line {}", line_of(&config, "url ="))),
        "{stderr}"
    );
    assert!(stderr.contains("key `url`: not a Redis URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // A Redis URL variable that is not set.
    let config = with_cache("kind = \"redis\"\nurl_env = \"LBGPT_TEST_NO_SUCH_REDIS_URL\"\n");
    let stderr = config_failure(&h, &config).await;
    assert!(
        stderr.contains(&format!("line {}", line_of(&config, "url_env"))),
        "{stderr}"
    );
    assert!(
        stderr.contains("LBGPT_TEST_NO_SUCH_REDIS_URL") && stderr.contains("`url_env`"),
        "{stderr}"
    );
}
