//! `lbgpt run` with a `[cache]`: the real binary, the simulator on loopback, a disk cache in a
//! temporary directory and a real `redis-server`. A second run over the same input makes zero
//! upstream calls and reports the hits.

mod common;

use common::*;
use lbgpt_core::ChatRequest;
use lbgpt_sim::expected_answer;
use serde_json::Value;
use std::path::Path;

const REDIS_URL_ENV: &str = "LBGPT_TEST_REDIS_URL";

/// The input: `distinct` different requests, then `repeats` more lines repeating them in turn
/// under new `custom_id`s, then one bad line. Returns the file's text and each good line's
/// request.
fn input(distinct: usize, repeats: usize) -> (String, Vec<ChatRequest>) {
    let mut requests: Vec<ChatRequest> = (0..distinct).map(chat).collect();
    requests.extend((0..repeats).map(|i| chat(i % distinct)));
    let mut text: String = requests
        .iter()
        .enumerate()
        .map(|(i, request)| batch_line(&format!("req-{i}"), request) + "\n")
        .collect();
    text.push_str("{not json}\n");
    (text, requests)
}

/// Runs `lbgpt run` with both provider keys and `extra_env`; expects exit 0 and returns the
/// output lines and stderr.
async fn run(
    h: &Harness,
    config: &Path,
    input: &Path,
    output: &str,
    extra_env: &[(&str, &str)],
) -> (Vec<Value>, String) {
    let output = h.path(output);
    let mut env = vec![(OPENAI_KEY_ENV, OPENAI_KEY), (AZURE_KEY_ENV, AZURE_KEY)];
    env.extend_from_slice(extra_env);
    let run = h
        .lbgpt_env(
            &[
                "run",
                path_str(input),
                "--config",
                path_str(config),
                "--output",
                path_str(&output),
            ],
            &env,
        )
        .await;
    // The bad line makes the exit status 1; everything else must have succeeded.
    assert_eq!(run.code(), 1, "{}", run.describe());
    (read_jsonl(&output), run.stderr())
}

/// Checks that every good line has its own answer and the bad line has its error, and returns
/// the good lines' `lbgpt.cache` values.
fn cache_column(lines: &[Value], requests: &[ChatRequest]) -> Vec<String> {
    assert_eq!(lines.len(), requests.len() + 1);
    let (bad, good) = lines.split_last().expect("lines");
    assert_eq!(bad["error"]["code"], "invalid_json");
    assert!(
        bad["lbgpt"]["cache"].is_null(),
        "a bad line never reached the cache"
    );
    good.iter()
        .zip(requests)
        .map(|(line, request)| {
            assert!(line["error"].is_null(), "{line}");
            assert_eq!(answer_text(line), expected_answer(request));
            line["lbgpt"]["cache"]
                .as_str()
                .expect("cache is a string")
                .to_owned()
        })
        .collect()
}

/// Asserts that `lines` were all answered from the cache: `"exact"`, no attempt, no member,
/// and the very answers of `first` (same completion ids).
fn assert_all_from_cache(lines: &[Value], first: &[Value], requests: &[ChatRequest]) {
    let column = cache_column(lines, requests);
    assert!(column.iter().all(|c| c == "exact"), "{column:?}");
    for (line, before) in lines.iter().zip(first).take(requests.len()) {
        assert_eq!(line["lbgpt"]["attempts"], 0, "{line}");
        assert!(line["lbgpt"]["member"].is_null(), "{line}");
        assert_eq!(
            line["response"]["body"]["id"], before["response"]["body"]["id"],
            "the stored answer itself"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_with_a_disk_cache_makes_zero_upstream_calls_and_reports_the_hits() {
    let h = Harness::new().await;
    let (text, requests) = input(20, 5);
    let input = h.write("requests.jsonl", &text);
    // The config in a subdirectory: a relative `path` is taken from the config's directory.
    std::fs::create_dir(h.path("conf")).expect("dir");
    let config = format!(
        "{}\n[cache]\nkind = \"disk\"\npath = \"cache\"\nnamespace = \"cli-test\"\nttl_ms = 86_400_000\n",
        h.two_provider_config()
    );
    let config_path = h.write("conf/lbgpt.toml", &config);

    let (first, stderr) = run(&h, &config_path, &input, "first.jsonl", &[]).await;
    let column = cache_column(&first, &requests);
    // 20 distinct requests reach the providers; the 5 repeats are answered from the cache or
    // share the call of their identical request still in flight.
    assert_eq!(h.sim.stats().status(200), 20, "{stderr}");
    assert!(column[..20].iter().all(|c| c == "miss"), "{column:?}");
    assert!(
        stderr.contains("cache disk (") && stderr.contains("conf/cache"),
        "{stderr}"
    );
    assert!(stderr.contains("cache:      disk, "), "{stderr}");
    assert!(
        h.path("conf/cache").is_dir(),
        "the cache is next to the config"
    );

    let (second, stderr) = run(&h, &config_path, &input, "second.jsonl", &[]).await;
    assert_all_from_cache(&second, &first, &requests);
    assert_eq!(
        h.sim.stats().requests,
        20,
        "zero upstream calls on the second run"
    );
    assert!(
        stderr.contains("cache:      disk, 25 hits, 0 misses"),
        "{stderr}"
    );
    assert!(
        stderr.contains("succeeded:  25 (25 from the cache)"),
        "{stderr}"
    );
    assert!(!stderr.contains(OPENAI_KEY), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_cache_answers_repeats_within_one_run() {
    let h = Harness::new().await;
    // One request, ten times (with distinct custom_ids).
    let (text, requests) = input(1, 9);
    let input = h.write("requests.jsonl", &text);
    let config = format!(
        "{}\n[cache]\nkind = \"memory\"\nmax_entries = 1000\n",
        h.openai_config()
    );
    let config_path = h.write("lbgpt.toml", &config);

    let (lines, stderr) = run(&h, &config_path, &input, "out.jsonl", &[]).await;
    cache_column(&lines, &requests);
    assert_eq!(h.sim.stats().requests, 1, "one upstream call for ten lines");
    assert!(
        stderr.contains("cache memory (at most 1000 entries)"),
        "{stderr}"
    );
    assert!(stderr.contains("cache:      memory, "), "{stderr}");
    assert!(stderr.contains(", 1 misses"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_with_a_redis_cache_makes_zero_upstream_calls_and_an_outage_degrades_to_misses(
) {
    let Some(mut redis) = RedisServer::start("lbgpt-cli redis cache") else {
        return;
    };
    let h = Harness::new().await;
    let (text, requests) = input(12, 0);
    let input = h.write("requests.jsonl", &text);
    let config = format!(
        "{}\n[cache]\nkind = \"redis\"\nurl_env = \"{REDIS_URL_ENV}\"\nnamespace = \"cli-redis\"\n",
        h.two_provider_config()
    );
    let config_path = h.write("lbgpt.toml", &config);
    let url = redis.url();
    let env = [(REDIS_URL_ENV, url.as_str())];

    let (first, stderr) = run(&h, &config_path, &input, "first.jsonl", &env).await;
    let column = cache_column(&first, &requests);
    assert!(column.iter().all(|c| c == "miss"), "{column:?}");
    assert_eq!(h.sim.stats().requests, 12, "{stderr}");
    assert!(stderr.contains("cache redis"), "{stderr}");
    assert!(!stderr.contains(&url), "the URL is never shown: {stderr}");

    let (second, stderr) = run(&h, &config_path, &input, "second.jsonl", &env).await;
    assert_all_from_cache(&second, &first, &requests);
    assert_eq!(
        h.sim.stats().requests,
        12,
        "zero upstream calls on the second run"
    );
    assert!(
        stderr.contains("cache:      redis, 12 hits, 0 misses"),
        "{stderr}"
    );

    // Another namespace is another set of keys.
    let other = config.replace("cli-redis", "cli-redis-2");
    let other_path = h.write("other.toml", &other);
    let (third, _) = run(&h, &other_path, &input, "third.jsonl", &env).await;
    assert!(cache_column(&third, &requests).iter().all(|c| c == "miss"));
    assert_eq!(h.sim.stats().requests, 24);

    // Redis gone: a warning, every line still answered (by the providers).
    redis.kill();
    let (fourth, stderr) = run(&h, &config_path, &input, "fourth.jsonl", &env).await;
    assert!(cache_column(&fourth, &requests).iter().all(|c| c == "miss"));
    assert_eq!(h.sim.stats().requests, 36);
    assert!(
        stderr.contains("warning: the redis cache does not answer"),
        "{stderr}"
    );
    assert!(stderr.contains("store errors"), "{stderr}");
    assert!(!stderr.contains(&url), "the URL is never shown: {stderr}");
}
