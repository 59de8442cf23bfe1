//! `lbgpt run` end to end: the real binary against the simulator on loopback.

mod common;

use common::*;
use lbgpt_sim::{expected_answer, Fault, FaultMix, KeyConfig, Latency, SimConfig};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_run_answers_every_line_in_order_across_two_providers() {
    // Answers take 2 ms, so the 40 requests (4 at a time) take at least 20 ms: longer than the
    // OpenAI provider's 5 ms cooldown after its 429, so it gets requests again and meets its
    // third fault whatever the machine's speed.
    let h = Harness::with_config(
        SimConfig::new()
            .key(KeyConfig::new(OPENAI_KEY))
            .key(KeyConfig::new(AZURE_KEY))
            .latency(Latency::fixed(Duration::from_millis(2))),
    )
    .await;
    // A few retryable faults on the OpenAI key: the run must still succeed everywhere.
    h.sim.script(
        OPENAI_KEY,
        [
            Fault::ServerError,
            Fault::RateLimited {
                retry_after: Duration::from_millis(5),
            },
            Fault::Reset,
        ],
    );
    let requests: Vec<_> = (0..40).map(chat).collect();
    let input: String = requests
        .iter()
        .enumerate()
        .map(|(i, r)| batch_line(&format!("req-{i}"), r) + "\n")
        .collect();
    let input_path = h.write("requests.jsonl", &input);
    // Round robin takes turns whatever the providers' rate-limit headers say.
    let config = h.two_provider_config().replacen(
        "[[providers]]",
        "[balance]\nstrategy = \"round_robin\"\n\n[[providers]]",
        1,
    );
    let config_path = h.write("lbgpt.toml", &config);
    let output_path = h.path("results.jsonl");

    let run = h
        .lbgpt(&[
            "run",
            path_str(&input_path),
            "--config",
            path_str(&config_path),
            "--output",
            path_str(&output_path),
        ])
        .await;
    assert_eq!(run.code(), 0, "{}", run.describe());

    let lines = read_jsonl(&output_path);
    assert_eq!(lines.len(), requests.len());
    let mut members = BTreeMap::new();
    let mut retried = 0;
    for (i, (line, request)) in lines.iter().zip(&requests).enumerate() {
        assert_eq!(line["custom_id"], format!("req-{i}"), "order at {i}");
        assert!(line["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("batch_req_")));
        assert!(line["error"].is_null(), "{line}");
        assert_eq!(line["response"]["status_code"], 200);
        assert!(line["response"]["request_id"].is_string(), "{line}");
        assert_eq!(
            answer_text(line),
            expected_answer(request),
            "answer of line {i}"
        );
        assert_eq!(line["lbgpt"]["line"], i + 1);
        assert!(line["lbgpt"]["latency_ms"].is_u64());
        let attempts = line["lbgpt"]["attempts"].as_u64().expect("attempts");
        if attempts > 1 {
            retried += 1;
        }
        *members
            .entry(line["lbgpt"]["member"].as_str().expect("member").to_owned())
            .or_insert(0) += 1;
    }
    // Round robin sent requests to both; the OpenAI provider's three faults moved those
    // requests on to the Azure one (it may then have been cooling down for the short rest of
    // the batch).
    assert!(members.contains_key("azure-sim"), "{members:?}");
    let openai_calls = h.sim.key_stats(OPENAI_KEY).expect("key").requests;
    assert!(openai_calls >= 3, "{openai_calls}: {}", run.stderr());
    assert!(retried >= 1, "the scripted faults were retried");
    let stats = h.sim.stats();
    assert_eq!(
        stats.status(200),
        40,
        "each request answered once: {stats:?}"
    );

    let stderr = run.stderr();
    assert!(stderr.contains("requests:   40"), "{stderr}");
    assert!(stderr.contains("succeeded:  40"), "{stderr}");
    assert!(stderr.contains("failed:     0"), "{stderr}");
    assert!(stderr.contains("retries:"), "{stderr}");
    assert!(stderr.contains("requests/s"), "{stderr}");
    assert!(run.stdout().is_empty(), "results go to the file only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_dash_writes_to_stdout_and_max_concurrent_overrides() {
    let h = Harness::new().await;
    let input: String = (0..5)
        .map(|i| batch_line(&format!("c{i}"), &chat(i)) + "\n")
        .collect();
    let input_path = h.write("in.jsonl", &input);
    h.write("lbgpt.toml", &h.openai_config());
    // The config file defaults to ./lbgpt.toml, the output to stdout.
    let run = h
        .lbgpt(&["run", path_str(&input_path), "--max-concurrent", "2"])
        .await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let lines = parse_jsonl(&run.stdout());
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["custom_id"], format!("c{i}"));
        assert_eq!(answer_text(line), expected_answer(&chat(i)));
    }
    assert!(
        run.stderr().contains("at most 2 in flight"),
        "{}",
        run.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_line_gets_its_error_line_and_the_others_still_run() {
    let h = Harness::new().await;
    let good = |i: usize| batch_line(&format!("good-{i}"), &chat(i));
    let lines_in = [
        good(0),                                                  // line 1
        "{this is not json".to_owned(),                           // line 2
        r#"{"method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}"#.to_owned(), // line 3
        good(1),                                                  // line 4
        batch_line("good-1", &chat(99)),                          // line 5: duplicate custom_id
        "".to_owned(),                                            // line 6: blank, skipped
        good(2).replace("/v1/chat/completions", "/v1/embeddings"), // line 7
        good(3).replace("\"POST\"", "\"GET\""),                   // line 8
        r#"{"custom_id": "no-model", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "x"}]}}"#.to_owned(), // line 9
        r#"{"custom_id": "no-messages", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini"}}"#.to_owned(), // line 10
        good(4),                                                  // line 11
    ];
    let input_path = h.write("in.jsonl", &(lines_in.join("\n") + "\n"));
    let config_path = h.write("lbgpt.toml", &h.openai_config());
    let output_path = h.path("out.jsonl");
    let run = h
        .lbgpt(&run_args(&input_path, &config_path, &output_path, &[]))
        .await;
    assert_eq!(run.code(), 1, "{}", run.describe());

    let out = read_jsonl(&output_path);
    assert_eq!(out.len(), 10, "one output line per non-blank input line");
    let expect_error = |index: usize, line_no: usize, code: &str, needles: &[&str]| {
        let line = &out[index];
        assert!(line["response"].is_null(), "{line}");
        assert_eq!(line["error"]["code"], code, "{line}");
        let message = line["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with(&format!("line {line_no}:")),
            "{message}"
        );
        for needle in needles {
            assert!(
                message.contains(needle),
                "{message} should mention {needle}"
            );
        }
        assert_eq!(line["lbgpt"]["line"], line_no);
        assert_eq!(line["lbgpt"]["attempts"], 0);
    };
    let expect_ok = |index: usize, line_no: usize, i: usize| {
        let line = &out[index];
        assert_eq!(line["custom_id"], format!("good-{i}"), "{line}");
        assert!(line["error"].is_null(), "{line}");
        assert_eq!(answer_text(line), expected_answer(&chat(i)));
        assert_eq!(line["lbgpt"]["line"], line_no);
    };
    expect_ok(0, 1, 0);
    expect_error(1, 2, "invalid_json", &["invalid JSON"]);
    assert!(out[1]["custom_id"].is_null());
    expect_error(2, 3, "missing_custom_id", &["custom_id"]);
    expect_ok(3, 4, 1);
    expect_error(4, 5, "duplicate_custom_id", &["\"good-1\""]);
    assert_eq!(out[4]["custom_id"], "good-1");
    expect_error(
        5,
        7,
        "mixed_url",
        &["\"/v1/embeddings\"", "\"/v1/chat/completions\""],
    );
    assert_eq!(out[5]["custom_id"], "good-2");
    expect_error(6, 8, "unsupported_method", &["\"GET\"", "\"POST\""]);
    expect_error(7, 9, "invalid_body", &["`model`"]);
    assert_eq!(out[7]["custom_id"], "no-model");
    expect_error(8, 10, "invalid_body", &["`messages`"]);
    expect_ok(9, 11, 4);

    assert_eq!(h.sim.stats().requests, 3, "only the good lines were sent");
    let stderr = run.stderr();
    assert!(
        stderr.contains("failed:     7 (7 invalid input lines)"),
        "{stderr}"
    );
}

/// `--no-duplicate-check` keeps no custom_id: a repeated one is sent again and gets a result
/// line of its own (the trade-off the flag documents); without it the repeat is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_duplicate_check_a_repeated_custom_id_is_sent_again() {
    let h = Harness::new().await;
    let input = [
        batch_line("same", &chat(1)),
        batch_line("other", &chat(2)),
        batch_line("same", &chat(3)),
    ]
    .join("\n");
    let input_path = h.write("in.jsonl", &(input + "\n"));
    let config_path = h.write("lbgpt.toml", &h.openai_config());
    let output_path = h.path("out.jsonl");
    let run = h
        .lbgpt(&run_args(
            &input_path,
            &config_path,
            &output_path,
            &["--no-duplicate-check"],
        ))
        .await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let out = read_jsonl(&output_path);
    assert_eq!(out.len(), 3);
    for (line, i) in out.iter().zip([1, 2, 3]) {
        assert!(line["error"].is_null(), "{line}");
        assert_eq!(answer_text(line), expected_answer(&chat(i)));
    }
    assert_eq!(out[2]["custom_id"], "same");
    assert_eq!(h.sim.stats().requests, 3, "the repeat was sent");

    let checked = h.path("checked.jsonl");
    let run = h
        .lbgpt(&run_args(&input_path, &config_path, &checked, &[]))
        .await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert_eq!(
        read_jsonl(&checked)[2]["error"]["code"],
        "duplicate_custom_id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_api_calls_give_error_lines_with_status_codes() {
    let h = Harness::new().await;
    let input: String = (0..4)
        .map(|i| batch_line(&format!("c{i}"), &chat(i)) + "\n")
        .collect();
    let input_path = h.write("in.jsonl", &input);
    let config_path = h.write("lbgpt.toml", &h.openai_config());
    let output_path = h.path("out.jsonl");
    // One request at a time (--max-concurrent 1), so the faults meet lines 1 and 2 in order.
    // The 401 retires the only provider: the lines after it fail without being sent.
    h.sim
        .script(OPENAI_KEY, [Fault::Status(400), Fault::Unauthorized]);
    let run = h
        .lbgpt(&run_args(
            &input_path,
            &config_path,
            &output_path,
            &["--max-concurrent", "1"],
        ))
        .await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    let out = read_jsonl(&output_path);
    assert_eq!(out.len(), 4);
    let statuses: Vec<_> = out
        .iter()
        .map(|l| l["response"]["status_code"].as_u64())
        .collect();
    assert_eq!(statuses, [Some(400), Some(401), None, None], "{out:?}");
    for line in &out[..2] {
        assert_eq!(line["error"]["code"], "api_error", "{line}");
        assert!(line["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP")));
        assert!(
            line["response"]["body"]["error"]["message"].is_string(),
            "{line}"
        );
        assert_eq!(line["lbgpt"]["attempts"], 1, "not retried: {line}");
        assert!(line["lbgpt"]["latency_ms"].is_u64(), "{line}");
    }
    assert_eq!(
        out[1]["response"]["body"]["error"]["code"],
        "invalid_api_key"
    );
    for line in &out[2..] {
        assert_eq!(line["error"]["code"], "no_member_available", "{line}");
        let message = line["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("openai-sim") && message.contains("401"),
            "says which provider is dead and why: {line}"
        );
    }
    // Each failure was sent once; nothing was sent to the retired key.
    let stats = h.sim.key_stats(OPENAI_KEY).expect("key");
    assert_eq!(stats.requests, 2, "{stats:?}");
    let stderr = run.stderr();
    assert!(stderr.contains("4 failed calls"), "{stderr}");
    assert!(stderr.contains("dead (HTTP 401"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_report_attempts_and_last_status() {
    let h = Harness::new().await;
    h.sim.script(OPENAI_KEY, vec![Fault::ServerError; 4]);
    let input_path = h.write("in.jsonl", &(batch_line("only", &chat(0)) + "\n"));
    let config_path = h.write("lbgpt.toml", &h.openai_config());
    let run = h
        .lbgpt(&["run", path_str(&input_path), "-c", path_str(&config_path)])
        .await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    let out = parse_jsonl(&run.stdout());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["error"]["code"], "retries_exhausted", "{}", out[0]);
    assert_eq!(out[0]["response"]["status_code"], 500);
    assert_eq!(
        out[0]["lbgpt"]["attempts"], 4,
        "max_attempts = 4 in the config"
    );
    assert!(run.stderr().contains("retries:    3"), "{}", run.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_never_appear_in_any_output_even_on_401() {
    let h = Harness::new().await;
    let unknown_key = "sk-unknown-SECRET-c0ffee42";
    let input: String = (0..3)
        .map(|i| batch_line(&format!("c{i}"), &chat(i)) + "\n")
        .collect();
    let input_path = h.write("in.jsonl", &input);
    // The OpenAI provider's key is unknown to the simulator (401); the Azure one is fine.
    // Round robin sends the first request to the OpenAI provider.
    let config = h.two_provider_config().replacen(
        "[[providers]]",
        "[balance]\nstrategy = \"round_robin\"\n\n[[providers]]",
        1,
    );
    let config_path = h.write("lbgpt.toml", &config);
    let output_path = h.path("out.jsonl");
    let run = h
        .lbgpt_env(
            &run_args(&input_path, &config_path, &output_path, &[]),
            &[(OPENAI_KEY_ENV, unknown_key), (AZURE_KEY_ENV, AZURE_KEY)],
        )
        .await;
    let written = std::fs::read_to_string(&output_path).expect("output");
    // The provider with the unknown key is retired after its 401 and its requests fail over
    // to the other one; the end-of-run statistics say why it is dead.
    assert_eq!(run.code(), 0, "{}", run.describe());
    assert!(
        run.stderr().contains("dead (HTTP 401 invalid_api_key)"),
        "{}",
        run.stderr()
    );
    for text in [written.as_str(), &run.stdout(), &run.stderr()] {
        for secret in [unknown_key, AZURE_KEY, OPENAI_KEY] {
            assert!(!text.contains(secret), "a key leaked: {text}");
        }
    }
    // Inline keys in the config file stay secret too, also in config errors.
    let config_inline = h.two_provider_config().replace(
        &format!("api_key_env = \"{OPENAI_KEY_ENV}\""),
        &format!("api_key = \"{unknown_key}\"\nbogus_key = 1"),
    );
    let config_path = h.write("inline.toml", &config_inline);
    let run = h
        .lbgpt(&["run", path_str(&input_path), "-c", path_str(&config_path)])
        .await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(run.stderr().contains("bogus_key"), "{}", run.stderr());
    assert!(!run.stderr().contains(unknown_key), "{}", run.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_lines_with_random_faults_come_back_complete_and_in_order() {
    let h = Harness::with_config(
        SimConfig::new()
            .key(KeyConfig::new(OPENAI_KEY).random_faults(0.2, FaultMix::default()))
            .key(KeyConfig::new(AZURE_KEY).random_faults(0.2, FaultMix::default()))
            .seed(11),
    )
    .await;
    let total = 2_000;
    let mut input = String::new();
    for i in 0..total {
        if i % 97 == 13 {
            input.push_str("not json\n");
        } else {
            input.push_str(&batch_line(&format!("r{i}"), &chat(i)));
            input.push('\n');
        }
    }
    let input_path = h.write("in.jsonl", &input);
    let config = h
        .two_provider_config()
        .replace("max_attempts = 4", "max_attempts = 12")
        .replace(
            "max_concurrent_requests = 4",
            "max_concurrent_requests = 32",
        );
    let config_path = h.write("lbgpt.toml", &config);
    let output_path = h.path("out.jsonl");
    let run = h
        .lbgpt(&run_args(&input_path, &config_path, &output_path, &[]))
        .await;
    assert_eq!(run.code(), 1, "the invalid lines fail: {}", run.describe());
    let out = read_jsonl(&output_path);
    assert_eq!(out.len(), total);
    for (i, line) in out.iter().enumerate() {
        assert_eq!(line["lbgpt"]["line"], i + 1);
        if i % 97 == 13 {
            assert_eq!(line["error"]["code"], "invalid_json");
        } else {
            assert_eq!(line["custom_id"], format!("r{i}"));
            assert!(line["error"].is_null(), "line {}: {line}", i + 1);
            assert_eq!(
                answer_text(line),
                expected_answer(&chat(i)),
                "line {}",
                i + 1
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_reads_standard_input_and_stdout_gets_only_jsonl() {
    let h = Harness::new().await;
    let input: String = (0..6)
        .map(|i| batch_line(&format!("s{i}"), &chat(i)) + "\n")
        .collect::<String>()
        + "not json\n";
    h.write("lbgpt.toml", &h.openai_config());
    let run = h.lbgpt_stdin(&["run", "-"], &input).await;
    assert_eq!(run.code(), 1, "the bad line fails: {}", run.describe());
    let lines = parse_jsonl(&run.stdout());
    assert_eq!(lines.len(), 7, "{}", run.describe());
    for (i, line) in lines.iter().take(6).enumerate() {
        assert_eq!(line["custom_id"], format!("s{i}"));
        assert_eq!(answer_text(line), expected_answer(&chat(i)));
    }
    assert_eq!(lines[6]["error"]["code"], "invalid_json");
    assert_eq!(lines[6]["lbgpt"]["line"], 7);
    let stderr = run.stderr();
    assert!(stderr.contains("lbgpt run: stdin -> stdout"), "{stderr}");
    assert!(stderr.contains("requests:   7"), "{stderr}");

    // Standard input to a file works the same.
    let run = h
        .lbgpt_stdin(&["run", "-", "-o", "out.jsonl"], &input)
        .await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(run.stdout().is_empty(), "{}", run.describe());
    assert_eq!(read_jsonl(&h.path("out.jsonl")).len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_producer_on_stdin_gets_each_result_before_sending_the_next_line() {
    use std::io::Write as _;
    let h = Harness::new().await;
    h.write("lbgpt.toml", &h.openai_config());
    let mut command = h.command(&["run", "-"], &[(OPENAI_KEY_ENV, OPENAI_KEY)]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("lbgpt runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    // Result lines as they appear on stdout.
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        for i in 0..3 {
            stdin
                .write_all((batch_line(&format!("p{i}"), &chat(i)) + "\n").as_bytes())
                .expect("write a line");
            stdin.flush().expect("flush");
            // The producer waits for this line's result before it writes the next line: if
            // results were only written once more input came, this would never arrive.
            let line = lines_rx
                .recv_timeout(Duration::from_secs(120))
                .expect("the result arrives while standard input is still open");
            got.push(line);
        }
        drop(stdin);
        got
    })
    .await
    .expect("join");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("exits");
    assert_eq!(status.code(), Some(0));
    for (i, text) in result.iter().enumerate() {
        let line: serde_json::Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(line["custom_id"], format!("p{i}"));
        assert_eq!(answer_text(&line), expected_answer(&chat(i)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_config_file_the_keys_of_the_environment_are_used() {
    let h = Harness::new().await;
    let input: String = (0..3)
        .map(|i| batch_line(&format!("e{i}"), &chat(i)) + "\n")
        .collect();
    let input_path = h.write("in.jsonl", &input);
    let base_url = h.sim.base_url();
    let run = h
        .lbgpt_env(
            &["run", path_str(&input_path)],
            &[
                ("OPENAI_API_KEY", OPENAI_KEY),
                ("OPENAI_BASE_URL", &base_url),
                ("OPENAI_API_PROXY", "none"),
            ],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let lines = parse_jsonl(&run.stdout());
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(answer_text(line), expected_answer(&chat(i)));
        assert_eq!(line["lbgpt"]["member"], "OPENAI_API_KEY");
    }
    let stderr = run.stderr();
    assert!(
        stderr.contains("config: keys from the environment"),
        "{stderr}"
    );
    assert!(!stderr.contains(OPENAI_KEY), "{stderr}");

    // A --config that names a missing file is an error, not a silent fallback.
    let run = h
        .lbgpt_env(
            &["run", path_str(&input_path), "--config", "missing.toml"],
            &[("OPENAI_API_KEY", OPENAI_KEY)],
        )
        .await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(run.stderr().contains("missing.toml"), "{}", run.stderr());
    // No key and no file: the error says what to set.
    let run = h.lbgpt_env(&["run", path_str(&input_path)], &[]).await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(run.stderr().contains("OPENAI_API_KEY"), "{}", run.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_progress_comes_as_plain_lines_and_the_summary_counts_everything() {
    // Each answer takes 150 ms and one runs at a time, so the run lasts at least 1.2 s: long
    // enough for several progress lines at a 0.1 s interval, however fast the machine.
    let h = Harness::openai_with_latency(Duration::from_millis(150)).await;
    h.sim.script(
        OPENAI_KEY,
        [
            Fault::RateLimited {
                retry_after: Duration::from_millis(1),
            },
            Fault::Status(400),
        ],
    );
    let mut input: String = (0..8)
        .map(|i| batch_line(&format!("g{i}"), &chat(i)) + "\n")
        .collect();
    input.push_str("{oops\n");
    let input_path = h.write("in.jsonl", &input);
    let config_path = h.write("lbgpt.toml", &h.openai_config());
    let run = h
        .lbgpt(&[
            "run",
            path_str(&input_path),
            "-c",
            path_str(&config_path),
            "--max-concurrent",
            "1",
            "--progress-interval",
            "0.1",
        ])
        .await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    // Standard output: result lines only.
    let lines = parse_jsonl(&run.stdout());
    assert_eq!(lines.len(), 9);
    let stderr = run.stderr();
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(progress.len() >= 2, "periodic lines and the end: {stderr}");
    for line in &progress {
        assert!(
            line.contains("/9 done") && line.contains(" failed, ") && line.contains("cache hits"),
            "{line}"
        );
        assert!(line.contains("requests/s"), "{line}");
    }
    let last = progress.last().expect("a last line");
    assert!(
        last.starts_with("progress: 9/9 done (100.0 %), 2 failed, 0 cache hits")
            && last.ends_with("(end)"),
        "{last}"
    );
    assert!(!stderr.contains('\r'), "no bar redraws without a terminal");

    // The summary: failures by kind, the 429 and its retry, latencies per provider.
    assert!(
        stderr.contains("failures:   invalid_input 1, invalid_request 1\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("retries:    1\n"),
        "the 429 was retried: {stderr}"
    );
    assert!(stderr.contains("latency:    p50 "), "{stderr}");
    let table: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.starts_with("per provider:"))
        .skip(1)
        .collect();
    let header = table.first().expect("a header");
    for column in [
        "requests",
        "prompt tok",
        "429s",
        "retries",
        "failovers",
        "p50",
        "p95",
    ] {
        assert!(header.contains(column), "{column}: {stderr}");
    }
    let row = table.get(1).expect("a row");
    assert!(row.starts_with("  openai-sim"), "{stderr}");
    let cells: Vec<&str> = row.split_whitespace().collect();
    // provider, requests, ok, failed, prompt tok, completion tok, 429s, ...
    assert_eq!(cells[1], "9", "8 lines sent, one of them twice: {row}");
    assert_eq!(cells[6], "1", "one 429: {row}");
    assert!(row.contains(" ms"), "latencies in ms: {row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_nothing_but_errors_and_the_exit_status_tells() {
    let h = Harness::new().await;
    let input = batch_line("q0", &chat(0)) + "\n" + "not json\n";
    let input_path = h.write("in.jsonl", &input);
    let config_path = h.write("lbgpt.toml", &h.openai_config());
    let output_path = h.path("out.jsonl");
    let run = h
        .lbgpt_env(
            &run_args(&input_path, &config_path, &output_path, &["-q"]),
            &[(OPENAI_KEY_ENV, OPENAI_KEY), ("RUST_LOG", "warn")],
        )
        .await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert_eq!(run.stderr(), "", "quiet: {}", run.describe());
    assert_eq!(run.stdout(), "");
    assert_eq!(read_jsonl(&output_path).len(), 2);

    // Errors are still printed.
    let run = h
        .lbgpt(&["run", "missing.jsonl", "-c", path_str(&config_path), "-q"])
        .await;
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("missing.jsonl"), "{}", run.describe());
}
