//! `lbgpt run` on embeddings and legacy completions files: the real binary against the
//! simulator on loopback. A file's endpoint is the url of its first good line; embeddings are
//! cached per input (a second run sends only new inputs), a prompt list is spread over the
//! providers and answered in prompt order, a line naming another endpoint is rejected with
//! its reason, and resuming works as for chat.

mod common;

use common::*;
use lbgpt_core::TextInput;
use lbgpt_sim::{expected_completion_text, expected_embedding, input_texts};
use serde_json::{json, Value};
use std::path::Path;

fn embeddings_line(custom_id: &str, input: Value) -> String {
    json!({"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings",
           "body": {"model": EMBEDDING_MODEL, "input": input}})
    .to_string()
}

fn completions_line(custom_id: &str, prompt: Value) -> String {
    json!({"custom_id": custom_id, "method": "POST", "url": "/v1/completions",
           "body": {"model": COMPLETION_MODEL, "prompt": prompt, "max_tokens": 40}})
    .to_string()
}

fn jsonl(lines: &[String]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// Every text the simulator received in `field` (`input` or `prompt`), one list per call.
fn sent(h: &Harness, field: &str) -> Vec<Vec<String>> {
    h.sim
        .seen_requests()
        .into_iter()
        .filter_map(|seen| {
            let value = seen.body.get(field)?.clone();
            let input: TextInput = serde_json::from_value(value).expect("texts");
            Some(input_texts(&input))
        })
        .collect()
}

/// The output line's vectors are the simulator's for `inputs`, in order.
fn assert_vectors(line: &Value, inputs: &[&str]) {
    assert!(line["error"].is_null(), "{line}");
    let data = line["response"]["body"]["data"]
        .as_array()
        .expect("an embeddings list");
    assert_eq!(data.len(), inputs.len(), "{line}");
    for (at, (item, input)) in data.iter().zip(inputs).enumerate() {
        assert_eq!(item["index"], at, "{line}");
        let vector: Vec<f32> =
            serde_json::from_value(item["embedding"].clone()).expect("a float vector");
        assert_eq!(vector, expected_embedding(input), "vector of {input:?}");
    }
}

async fn run(h: &Harness, input: &Path, config: &Path, output: &Path) -> Run {
    h.lbgpt(&run_args(input, config, output, &[])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_embeddings_run_sends_only_the_new_inputs() {
    let h = Harness::new().await;
    let cache = format!(
        "[cache]\nkind = \"disk\"\npath = \"{}\"\n",
        h.path("cache").display()
    );
    let config = h.write("lbgpt.toml", &h.endpoints_config(&cache));

    let first = h.write(
        "first.jsonl",
        &jsonl(&[
            embeddings_line("e1", json!(["alpha", "beta"])),
            embeddings_line("e2", json!("gamma")),
        ]),
    );
    let out1 = h.path("out1.jsonl");
    let run1 = run(&h, &first, &config, &out1).await;
    assert_eq!(run1.code(), 0, "{}", run1.describe());
    let lines = read_jsonl(&out1);
    assert_eq!(lines.len(), 2);
    assert_vectors(&lines[0], &["alpha", "beta"]);
    assert_vectors(&lines[1], &["gamma"]);
    assert_eq!(lines[0]["custom_id"], "e1");
    assert_eq!(lines[0]["lbgpt"]["cache"], "miss");
    assert_eq!(sent(&h, "input").concat().len(), 3);
    let stderr = run1.stderr();
    assert!(stderr.contains("/v1/embeddings"), "{stderr}");
    assert!(
        stderr.contains("cache:      disk (counted per input), 0 hits, 3 misses"),
        "{stderr}"
    );
    assert!(stderr.contains("tokens:     "), "{stderr}");

    // The next run, over the same disk cache (a semantic cache in the config is chat-only:
    // it is not used, and the run says so).
    let semantic = format!(
        "{cache}\n[semantic_cache]\nmodel_dir = \"{}\"\n",
        h.path("no-model-here").display()
    );
    let config = h.write("lbgpt2.toml", &h.endpoints_config(&semantic));
    let before = h.sim.seen_requests().len();
    let second = h.write(
        "second.jsonl",
        &jsonl(&[
            embeddings_line("e1", json!(["beta", "delta", "alpha"])),
            embeddings_line("e2", json!("gamma")),
            embeddings_line("e3", json!(["epsilon"])),
        ]),
    );
    let out2 = h.path("out2.jsonl");
    let run2 = run(&h, &second, &config, &out2).await;
    assert_eq!(run2.code(), 0, "{}", run2.describe());
    let mut new_inputs = sent(&h, "input").split_off(before).concat();
    new_inputs.sort();
    assert_eq!(new_inputs, ["delta", "epsilon"], "only new inputs are sent");

    let lines = read_jsonl(&out2);
    assert_eq!(lines.len(), 3);
    assert_vectors(&lines[0], &["beta", "delta", "alpha"]);
    assert_eq!(lines[0]["lbgpt"]["cache"], "partial", "{}", lines[0]);
    assert_eq!(lines[0]["lbgpt"]["from_cache"], 2);
    assert_eq!(lines[0]["lbgpt"]["from_provider"], 1);
    assert!(lines[0]["lbgpt"]["member"].is_string());
    assert_vectors(&lines[1], &["gamma"]);
    assert_eq!(lines[1]["lbgpt"]["cache"], "exact");
    assert_eq!(lines[1]["lbgpt"]["attempts"], 0);
    assert_vectors(&lines[2], &["epsilon"]);
    assert_eq!(lines[2]["lbgpt"]["cache"], "miss");

    let stderr = run2.stderr();
    assert!(
        stderr.contains("warning: [semantic_cache] applies to chat completions only"),
        "{stderr}"
    );
    assert!(
        stderr.contains("succeeded:  3 (1 from the cache, 1 partly)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cache:      disk (counted per input), 3 hits, 2 misses"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_prompt_lists_go_over_both_keys_and_come_back_in_prompt_order() {
    let h = Harness::new().await;
    let config = h.write("lbgpt.toml", &h.endpoints_config(""));
    let prompts: [&[&str]; 3] = [&["one", "two", "three"], &["four"], &["five", "six"]];
    let input = h.write(
        "in.jsonl",
        &jsonl(&[
            completions_line("c1", json!(prompts[0])),
            completions_line("c2", json!(prompts[1][0])),
            completions_line("c3", json!(prompts[2])),
        ]),
    );
    let output = h.path("out.jsonl");
    let first = run(&h, &input, &config, &output).await;
    assert_eq!(first.code(), 0, "{}", first.describe());

    let lines = read_jsonl(&output);
    assert_eq!(lines.len(), 3);
    for (line, prompts) in lines.iter().zip(prompts) {
        assert!(line["error"].is_null(), "{line}");
        let choices = line["response"]["body"]["choices"]
            .as_array()
            .expect("choices");
        let texts: Vec<&str> = choices
            .iter()
            .map(|choice| choice["text"].as_str().expect("a text"))
            .collect();
        let expected: Vec<String> = prompts
            .iter()
            .map(|prompt| expected_completion_text(prompt, Some(40), false).0)
            .collect();
        assert_eq!(texts, expected, "in prompt order: {line}");
        let indices: Vec<u64> = choices
            .iter()
            .map(|choice| choice["index"].as_u64().expect("an index"))
            .collect();
        assert_eq!(indices, (0..prompts.len() as u64).collect::<Vec<_>>());
    }
    let calls = sent(&h, "prompt");
    assert_eq!(calls.len(), 6, "one call per prompt: {calls:?}");
    let openai = h.sim.key_stats(OPENAI_KEY).expect("openai used").requests;
    let azure = h.sim.key_stats(AZURE_KEY).expect("azure used").requests;
    assert!(openai > 0 && azure > 0, "openai {openai}, azure {azure}");
    assert_eq!(openai + azure, 6);
    let stderr = first.stderr();
    assert!(stderr.contains("/v1/completions"), "{stderr}");
    assert!(
        stderr.contains("openai-sim") && stderr.contains("azure-sim"),
        "{stderr}"
    );

    // Resuming: a new line appended to the input; only it is sent.
    let mut text = std::fs::read_to_string(&input).expect("input");
    text.push_str(&(completions_line("c4", json!("seven")) + "\n"));
    std::fs::write(&input, text).expect("input written");
    let again = run(&h, &input, &config, &output).await;
    assert_eq!(again.code(), 0, "{}", again.describe());
    assert!(
        again.stderr().contains("skipped:    3"),
        "{}",
        again.stderr()
    );
    assert_eq!(sent(&h, "prompt").len(), 7, "only seven was sent");
    let lines = read_jsonl(&output);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["custom_id"], "c4");
    assert_eq!(
        lines[3]["response"]["body"]["choices"][0]["text"],
        expected_completion_text("seven", Some(40), false).0
    );
}

/// A file mixing endpoints: the first good line's (embeddings, after a broken line) is the
/// run's; lines naming another supported url are rejected, naming both urls; an unknown url
/// is unsupported. Read from a file and from standard input alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_of_another_endpoint_is_rejected_with_its_reason() {
    let h = Harness::new().await;
    let config = h.write("lbgpt.toml", &h.endpoints_config(""));
    let text = jsonl(&[
        "{broken".to_owned(),
        embeddings_line("e1", json!(["a", "b"])),
        batch_line("chat-1", &chat(1)),
        completions_line("c1", json!("once")),
        embeddings_line("e2", json!("c")),
        embeddings_line("m1", json!("d")).replace("/v1/embeddings", "/v1/moderations"),
    ]);
    let input = h.write("in.jsonl", &text);
    let output = h.path("out.jsonl");
    let from_file = run(&h, &input, &config, &output).await;
    assert_eq!(from_file.code(), 1, "{}", from_file.describe());
    let from_stdin = h
        .lbgpt_stdin(&["run", "-", "-c", path_str(&config)], &text)
        .await;
    assert_eq!(from_stdin.code(), 1, "{}", from_stdin.describe());

    for lines in [read_jsonl(&output), parse_jsonl(&from_stdin.stdout())] {
        assert_eq!(lines.len(), 6, "one result line per line");
        assert_eq!(lines[0]["error"]["code"], "invalid_json");
        assert_vectors(&lines[1], &["a", "b"]);
        for (at, custom_id, url) in [
            (2, "chat-1", "/v1/chat/completions"),
            (3, "c1", "/v1/completions"),
        ] {
            let line = &lines[at];
            assert_eq!(line["custom_id"], custom_id);
            assert_eq!(line["error"]["code"], "mixed_url", "{line}");
            assert!(line["response"].is_null());
            let message = line["error"]["message"].as_str().expect("a message");
            assert!(
                message.starts_with(&format!("line {}:", at + 1))
                    && message.contains(&format!("{url:?}"))
                    && message.contains("\"/v1/embeddings\""),
                "{message}"
            );
        }
        assert_vectors(&lines[4], &["c"]);
        assert_eq!(lines[5]["error"]["code"], "unsupported_url");
    }
    assert_eq!(
        sent(&h, "input").len(),
        4,
        "two embeddings lines per run, nothing else"
    );
    assert!(
        h.sim
            .seen_requests()
            .iter()
            .all(|seen| seen.body.get("input").is_some()),
        "only embeddings were sent"
    );
}
