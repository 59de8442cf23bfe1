//! The stacks `lbgpt run` builds for embeddings and legacy completions, from a config, against
//! the simulator on loopback: embeddings cached per input on disk (a second run sends only the
//! inputs the first did not), and prompt lists sent one request per prompt over two providers
//! and answered in prompt order.
//!
//! The CLI is a binary crate, so its modules are compiled into this test by path (with the
//! modules they use); their own unit tests run here once more.

#[path = "../src/cache.rs"]
#[allow(dead_code)]
mod cache;
#[path = "../src/cli.rs"]
#[allow(dead_code)]
mod cli;
#[path = "../src/config/mod.rs"]
#[allow(dead_code, unused_imports)]
mod config;
#[path = "../src/endpoint.rs"]
#[allow(unused)]
mod endpoint;
#[path = "../src/error.rs"]
#[allow(dead_code)]
mod error;
#[path = "../src/stack.rs"]
#[allow(dead_code)]
mod stack;

mod common;

/// The exit status `config check` returns on success (the binary's constant).
#[allow(dead_code)]
const EXIT_OK: u8 = 0;

use common::{
    Harness, AZURE_KEY, AZURE_KEY_ENV, COMPLETION_MODEL, EMBEDDING_MODEL, OPENAI_KEY,
    OPENAI_KEY_ENV,
};
use config::Config;
use endpoint::{CliAnswer, CliEndpoint};
use futures::StreamExt;
use lbgpt::Lbgpt;
use lbgpt_core::{CacheStatus, CompletionRequest, EmbeddingRequest, TextInput};
use lbgpt_sim::{expected_completion_text, expected_embedding, input_texts};
use std::path::Path;

/// A config with an OpenAI provider and an Azure provider on the simulator, taking turns,
/// and `extra` (a `[cache]` table) before them.
fn config(h: &Harness, extra: &str) -> Config {
    let text = h.endpoints_config(extra);
    Config::from_toml_str(&h.path("lbgpt.toml"), &text).expect("a valid config")
}

/// The simulator's keys, as the environment would hold them.
fn env(name: &str) -> Option<String> {
    match name {
        OPENAI_KEY_ENV => Some(OPENAI_KEY.to_owned()),
        AZURE_KEY_ENV => Some(AZURE_KEY.to_owned()),
        _ => None,
    }
}

/// The texts of every embeddings or completions request the simulator has received, one list
/// per request, in arrival order.
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

fn disk_cache(dir: &Path) -> String {
    format!(
        "[cache]\nkind = \"disk\"\npath = \"{}\"\n",
        dir.join("cache").display()
    )
}

/// Sends `lines` through a fresh embeddings stack of `config` (one run), as the run pipeline
/// does: the facade's ordered stream over the stack. Returns the answers and the stack's
/// cache counters (hits, misses).
async fn embeddings_run(
    config: &Config,
    lines: &[&[&str]],
) -> (Vec<lbgpt_core::EmbeddingResponse>, (u64, u64)) {
    let built = stack::build_for::<EmbeddingRequest>(config, &env).expect("the stack builds");
    let client = Lbgpt::new(built.service.clone()).max_concurrent_requests(4);
    let requests: Vec<EmbeddingRequest> = lines
        .iter()
        .map(|inputs| EmbeddingRequest::new(EMBEDDING_MODEL, inputs.to_vec()))
        .collect();
    let answers: Vec<_> = EmbeddingRequest::send_ordered(&client, requests)
        .map(|answer| answer.expect("every line is answered"))
        .collect()
        .await;
    let stats = built.cache_stats().expect("a cache");
    (answers, (stats.hits, stats.misses))
}

/// The vectors of an answer match the simulator's for `inputs`, in order.
fn assert_vectors(answer: &lbgpt_core::EmbeddingResponse, inputs: &[&str]) {
    assert_eq!(answer.data.len(), inputs.len());
    for (at, (embedding, input)) in answer.data.iter().zip(inputs).enumerate() {
        assert_eq!(embedding.index as usize, at);
        assert_eq!(
            embedding.embedding.as_floats().expect("floats"),
            expected_embedding(input).as_slice(),
            "vector of {input:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_embeddings_run_sends_only_the_inputs_the_first_did_not() {
    let h = Harness::new().await;
    let config = config(&h, &disk_cache(h.dir.path()));

    let first: &[&[&str]] = &[&["alpha", "beta"], &["gamma"]];
    let (answers, counters) = embeddings_run(&config, first).await;
    assert_vectors(&answers[0], &["alpha", "beta"]);
    assert_vectors(&answers[1], &["gamma"]);
    assert_eq!(answers[0].meta.cache, CacheStatus::Miss);
    assert_eq!(counters, (0, 3), "every input missed once");
    assert_eq!(sent(&h, "input").concat().len(), 3);

    // A new stack over the same disk cache: the next run.
    let before = h.sim.seen_requests().len();
    let second: &[&[&str]] = &[&["beta", "delta", "alpha"], &["gamma"], &["epsilon"]];
    let (answers, counters) = embeddings_run(&config, second).await;
    let new_calls: Vec<Vec<String>> = sent(&h, "input").split_off(before);
    let mut new_inputs = new_calls.concat();
    new_inputs.sort();
    assert_eq!(new_inputs, ["delta", "epsilon"], "only new inputs are sent");
    assert_eq!(new_calls.len(), 2, "one call per line with new inputs");

    assert_vectors(&answers[0], &["beta", "delta", "alpha"]);
    assert_eq!(
        answers[0].meta.cache,
        CacheStatus::Partial { hits: 2, misses: 1 }
    );
    assert_eq!(answers[0].cache_label(), "partial");
    assert!(
        answers[0].meta.member.is_some(),
        "delta came from a provider"
    );
    assert_vectors(&answers[1], &["gamma"]);
    assert!(answers[1].answered_by_cache());
    assert_eq!(answers[1].meta.attempts, 0);
    assert_vectors(&answers[2], &["epsilon"]);
    assert_eq!(answers[2].meta.cache, CacheStatus::Miss);
    assert_eq!(counters, (3, 2), "counted per input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_list_is_spread_over_both_providers_and_answered_in_order() {
    let h = Harness::new().await;
    let config = config(&h, "[cache]\nkind = \"memory\"\n");
    let built = stack::build_for::<CompletionRequest>(&config, &env).expect("the stack builds");

    let prompts = ["one", "two", "three", "four", "five", "six"];
    let request = CompletionRequest::new(COMPLETION_MODEL, prompts.to_vec())
        .max_tokens(40)
        .n(2);
    let client = Lbgpt::new(built.service.clone()).max_concurrent_requests(4);
    let answer = CompletionRequest::send_ordered(&client, vec![request])
        .next()
        .await
        .expect("one answer")
        .expect("answered");

    let calls = sent(&h, "prompt");
    assert_eq!(calls.len(), prompts.len(), "one call per prompt: {calls:?}");
    assert!(calls.iter().all(|call| call.len() == 1), "{calls:?}");
    let openai = h.sim.key_stats(OPENAI_KEY).expect("key").requests;
    let azure = h.sim.key_stats(AZURE_KEY).expect("key").requests;
    assert!(openai > 0 && azure > 0, "openai {openai}, azure {azure}");
    assert_eq!(openai + azure, prompts.len() as u64);
    let per_member: Vec<u64> = built
        .member_stats()
        .iter()
        .map(|member| member.requests)
        .collect();
    assert_eq!(per_member.iter().sum::<u64>(), prompts.len() as u64);

    let expected: Vec<String> = prompts
        .iter()
        .flat_map(|prompt| {
            let (text, _) = expected_completion_text(prompt, Some(40), false);
            [text.clone(), text]
        })
        .collect();
    assert_eq!(answer.texts(), expected, "choices in prompt order");
    let indices: Vec<u32> = answer.choices.iter().map(|c| c.index).collect();
    assert_eq!(indices, (0..12).collect::<Vec<u32>>());
    assert_eq!(answer.meta.cache, CacheStatus::Miss);

    // Each prompt was cached on its own: a list sharing one prompt sends only the other.
    let client = Lbgpt::new(built.service.clone()).max_concurrent_requests(4);
    let lines = vec![
        CompletionRequest::new(COMPLETION_MODEL, vec!["three", "seven"])
            .max_tokens(40)
            .n(2),
        CompletionRequest::new(COMPLETION_MODEL, "eight").max_tokens(40),
    ];
    let answers: Vec<_> = CompletionRequest::send_ordered(&client, lines)
        .map(|answer| answer.expect("answered"))
        .collect()
        .await;
    let calls = sent(&h, "prompt");
    assert_eq!(
        calls[prompts.len()..].concat().len(),
        2,
        "seven and eight only: {calls:?}"
    );
    let (three, _) = expected_completion_text("three", Some(40), false);
    let (seven, _) = expected_completion_text("seven", Some(40), false);
    assert_eq!(answers[0].texts(), [&three, &three, &seven, &seven]);
    assert_eq!(
        answers[0].meta.cache,
        CacheStatus::Partial { hits: 1, misses: 1 }
    );
    let (eight, _) = expected_completion_text("eight", Some(40), false);
    assert_eq!(answers[1].first_text(), Some(eight.as_str()));
    let stats = built.cache_stats().expect("a cache");
    assert_eq!((stats.hits, stats.misses), (1, 8), "counted per prompt");
}
