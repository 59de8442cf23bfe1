//! `lbgpt run` with a `[semantic_cache]` (the real local model, from `cargo xtask
//! fetch-assets` or `$LBGPT_ASSETS_DIR`) under a disk `[cache]`: a second run whose lines are
//! paraphrases of the first run's is answered from the saved index without upstream calls and
//! reports the hits; a negation is not served; a missing model is a config error.

mod common;

use common::*;
use lbgpt::cache::CacheConfig;
use lbgpt::semantic::{assets, SemanticConfig};
use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_sim::expected_answer;
use serde_json::Value;
use std::path::Path;

/// A request with a fixed system prompt and `text` as the user message.
fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(
        MODEL,
        vec![
            ChatMessage::system("Answer briefly."),
            ChatMessage::user(text),
        ],
    )
    .max_tokens(32)
}

fn jsonl(requests: &[ChatRequest]) -> String {
    requests
        .iter()
        .enumerate()
        .map(|(i, request)| batch_line(&format!("q-{i}"), request) + "\n")
        .collect()
}

/// Runs `lbgpt run` with the OpenAI key; returns the exit status, output lines and stderr.
async fn run(h: &Harness, config: &Path, input: &Path, output: &str) -> (i32, Vec<Value>, String) {
    let output = h.path(output);
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
            &[(OPENAI_KEY_ENV, OPENAI_KEY)],
        )
        .await;
    let lines = if run.code() == 0 {
        read_jsonl(&output)
    } else {
        Vec::new()
    };
    (run.code(), lines, run.stderr())
}

/// The questions of the first run and their paraphrases for the second.
const PAIRS: [(&str, &str); 4] = [
    (
        "How do I reset my password?",
        "What are the steps to reset my password?",
    ),
    (
        "How do I sort an array in JavaScript?",
        "What's the way to sort an array in JavaScript?",
    ),
    (
        "Who painted the Mona Lisa?",
        "Which artist painted the Mona Lisa?",
    ),
    (
        "How does compound interest work?",
        "Explain how compound interest works.",
    ),
];

const ALLOWED: &str = "Is smoking allowed in the hotel rooms?";
const NOT_ALLOWED: &str = "Is smoking not allowed in the hotel rooms?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_paraphrases_is_answered_from_the_saved_semantic_index() {
    let h = Harness::new().await;
    std::fs::create_dir(h.path("conf")).expect("dir");
    let config = format!(
        "{}\n[cache]\nkind = \"disk\"\npath = \"cache\"\nnamespace = \"cli-semantic\"\n\n\
         [semantic_cache]\nmodel_dir = \"{}\"\nruntime_library = \"{}\"\nmethod = \"last_user\"\n\
         threshold = 0.85\nguard = true\nindex_dir = \"semantic-index\"\nmax_entries = 1000\n",
        h.openai_config(),
        assets::default_model_dir().display(),
        assets::default_runtime_library().display(),
    );
    let config_path = h.write("conf/lbgpt.toml", &config);

    // First run: the questions and the "allowed" one; every line goes upstream.
    let mut originals: Vec<ChatRequest> = PAIRS.iter().map(|(q, _)| ask(q)).collect();
    originals.push(ask(ALLOWED));
    let first_input = h.write("first.jsonl", &jsonl(&originals));
    let (code, first, stderr) = run(&h, &config_path, &first_input, "first-out.jsonl").await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first.len(), originals.len());
    assert!(first.iter().all(|line| line["lbgpt"]["cache"] == "miss"));
    assert_eq!(h.sim.stats().requests, 5, "{stderr}");
    assert!(
        stderr.contains("semantic cache (threshold 0.85, guard on, index ")
            && stderr.contains("conf/semantic-index"),
        "{stderr}"
    );
    assert!(
        stderr.contains("semantic:   0 hits, 5 misses; 5 entries, saved to "),
        "{stderr}"
    );
    assert!(
        h.path("conf/semantic-index").is_dir(),
        "the index is saved next to the config"
    );

    // Second run: paraphrases, one line repeated word for word, and the negation.
    let mut second_requests: Vec<ChatRequest> = PAIRS.iter().map(|(_, p)| ask(p)).collect();
    second_requests.push(ask(PAIRS[0].0));
    second_requests.push(ask(NOT_ALLOWED));
    let second_input = h.write("second.jsonl", &jsonl(&second_requests));
    let (code, second, stderr) = run(&h, &config_path, &second_input, "second-out.jsonl").await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(second.len(), second_requests.len());

    // Both caches key alike: a hit names the exact key the `[cache]` table uses.
    let exact_keys = CacheConfig::new()
        .namespace("cli-semantic")
        .family("openai");
    for (line, original) in second.iter().zip(&originals).take(PAIRS.len()) {
        let lbgpt = &line["lbgpt"];
        assert_eq!(lbgpt["cache"], "semantic", "{line}");
        let score = lbgpt["score"].as_f64().expect("a score");
        assert!(
            score >= f64::from(SemanticConfig::DEFAULT_THRESHOLD) && score <= 1.0,
            "{line}"
        );
        assert_eq!(lbgpt["attempts"], 0, "{line}");
        assert!(lbgpt["member"].is_null(), "{line}");
        assert_eq!(
            answer_text(line),
            expected_answer(original),
            "the first run's answer to the question it paraphrases"
        );
        let key = exact_keys.key_for(original).expect("a key").to_string();
        assert_eq!(lbgpt["matched"], key.as_str(), "{line}");
    }
    let repeated = &second[PAIRS.len()];
    assert_eq!(repeated["lbgpt"]["cache"], "exact", "exact before semantic");
    assert!(repeated["lbgpt"].get("score").is_none(), "{repeated}");
    let trap = &second[PAIRS.len() + 1];
    assert_eq!(trap["lbgpt"]["cache"], "miss", "the negation is not served");
    assert_eq!(answer_text(trap), expected_answer(&ask(NOT_ALLOWED)));

    assert_eq!(
        h.sim.stats().requests,
        6,
        "only the negation went upstream: {stderr}"
    );
    assert!(
        stderr.contains("succeeded:  6 (5 from the cache: 1 exact, 4 semantic)"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("semantic:   4 hits, 1 misses (1 refused by the false-hit guard); 6 entries"),
        "{stderr}"
    );
    assert!(!stderr.contains(OPENAI_KEY), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_is_a_config_error_at_the_semantic_cache_table() {
    let h = Harness::new().await;
    let config = format!(
        "{}\n[semantic_cache]\nmodel_dir = \"no-model-here\"\n",
        h.openai_config()
    );
    let line = config
        .lines()
        .position(|l| l == "[semantic_cache]")
        .expect("the table")
        + 1;
    let config_path = h.write("lbgpt.toml", &config);
    let input = h.write("in.jsonl", &jsonl(&[ask(PAIRS[0].0)]));
    let (code, _, stderr) = run(&h, &config_path, &input, "out.jsonl").await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("lbgpt.toml")
            && stderr.contains(&format!("line {line}"))
            && stderr.contains("[semantic_cache]")
            && stderr.contains("no-model-here")
            && stderr.contains("cargo xtask fetch-assets"),
        "{stderr}"
    );
    assert_eq!(h.sim.stats().requests, 0, "nothing was sent");
    assert!(!h.path("out.jsonl").exists(), "no output file was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_semantic_cache_key_names_the_key_and_line() {
    let h = Harness::new().await;
    let config = format!(
        "{}\n[semantic_cache]\nindex_dir = \"idx\"\nthreshold = 1.2\n",
        h.openai_config()
    );
    let line = config
        .lines()
        .position(|l| l.starts_with("threshold = 1.2"))
        .expect("the key")
        + 1;
    let config_path = h.write("lbgpt.toml", &config);
    let input = h.write("in.jsonl", &jsonl(&[ask(PAIRS[0].0)]));
    let (code, _, stderr) = run(&h, &config_path, &input, "out.jsonl").await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("line {line}"))
            && stderr.contains("`[semantic_cache]` key `threshold`: must be between 0 and 1"),
        "{stderr}"
    );
    assert_eq!(h.sim.stats().requests, 0, "nothing was sent");
}
