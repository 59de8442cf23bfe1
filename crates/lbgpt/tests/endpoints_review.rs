//! Review of the embeddings and legacy-completions paths of the ready-made clients, against
//! the simulator on loopback: what a request split into parts reports once its answers are
//! merged (cache status, progress), a failed part among many, and taking a provider out of
//! every endpoint's balancer.

use lbgpt::cache::{CacheConfig, MemoryStore};
use lbgpt::openai::OpenAiConfig;
use lbgpt::{
    BalancedGpt, CacheStatus, ChatGpt, CompletionRequest, EmbeddingRequest, Progress, Provider,
};
use lbgpt_sim::{
    expected_completion, expected_embedding, Fault, KeyConfig, Latency, SimConfig, Simulator,
};
use std::sync::Arc;
use std::time::Duration;

async fn simulator(key: &str) -> Simulator {
    Simulator::start(SimConfig::new().key(KeyConfig::new(key)))
        .await
        .expect("simulator starts")
}

fn cached_client(sim: &Simulator) -> ChatGpt {
    ChatGpt::builder()
        .openai_config(
            OpenAiConfig::new()
                .api_key("sk-1")
                .base_url(sim.base_url())
                .name("one")
                .no_proxy(),
        )
        .cache_store(Arc::new(MemoryStore::new()), CacheConfig::new())
        .max_concurrent_requests(3)
        .build()
        .expect("builds")
}

fn texts(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix} {i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_embedding_partly_cached_says_partial_not_the_first_chunks_status() {
    let sim = simulator("sk-1").await;
    let gpt = cached_client(&sim);
    let model = "text-embedding-3-small";
    let known = texts("known", 2048);
    gpt.embedding(EmbeddingRequest::new(model, known.clone()))
        .await
        .expect("first run embeds");

    // 2048 cached inputs (the whole first chunk) and 1000 new ones (the second chunk).
    let mut all = known.clone();
    all.extend(texts("new", 1000));
    let answer = gpt
        .embedding(EmbeddingRequest::new(model, all.clone()))
        .await
        .expect("embeds");
    assert_eq!(answer.data.len(), all.len());
    for (at, (text, embedding)) in all.iter().zip(&answer.data).enumerate() {
        assert_eq!(embedding.index as usize, at);
        assert_eq!(
            embedding.embedding.to_floats().expect("floats"),
            expected_embedding(text),
            "input {at}"
        );
    }
    assert_eq!(
        answer.meta.cache,
        CacheStatus::Partial {
            hits: 2048,
            misses: 1000
        },
        "1000 inputs were fetched from the provider: the answer is not an exact hit"
    );

    // Every chunk from the cache: exact; none: miss.
    let again = gpt
        .embedding(EmbeddingRequest::new(model, all.clone()))
        .await
        .expect("embeds");
    assert_eq!(again.meta.cache, CacheStatus::Exact);
    let fresh = gpt
        .embedding(EmbeddingRequest::new(model, texts("fresh", 3000)))
        .await
        .expect("embeds");
    assert_eq!(fresh.meta.cache, CacheStatus::Miss);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_list_partly_cached_says_partial_not_the_first_prompts_status() {
    let sim = simulator("sk-1").await;
    let gpt = cached_client(&sim);
    let model = "gpt-3.5-turbo-instruct";
    gpt.completion(CompletionRequest::new(model, vec!["a", "b"]))
        .await
        .expect("completes");

    let answer = gpt
        .completion(CompletionRequest::new(model, vec!["b", "c", "a"]))
        .await
        .expect("completes");
    let texts: Vec<&str> = answer.choices.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            expected_completion("b"),
            expected_completion("c"),
            expected_completion("a")
        ]
    );
    assert_eq!(
        sim.stats().keys["sk-1"].requests,
        3,
        "only c was sent again"
    );
    assert_eq!(
        answer.meta.cache,
        CacheStatus::Partial { hits: 2, misses: 1 },
        "prompt c came from the provider: the answer is not an exact hit"
    );

    let again = gpt
        .completion(CompletionRequest::new(model, vec!["c", "a"]))
        .await
        .expect("completes");
    assert_eq!(again.meta.cache, CacheStatus::Exact);
    let fresh = gpt
        .completion(CompletionRequest::new(model, vec!["d", "e"]))
        .await
        .expect("completes");
    assert_eq!(fresh.meta.cache, CacheStatus::Miss);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_progress_is_reported_after_each_prompt() {
    let sim = simulator("sk-1").await;
    let gpt = cached_client(&sim);
    let model = "gpt-3.5-turbo-instruct";
    let requests = vec![
        CompletionRequest::new(model, texts("long list", 6)),
        CompletionRequest::new(model, vec!["alone"]),
    ];
    let mut seen: Vec<Progress> = Vec::new();
    let answers = gpt
        .completions()
        .expect("OpenAI serves completions")
        .completion_list_with_progress(requests, |progress| seen.push(*progress))
        .await;
    assert_eq!(answers.len(), 2);
    for answer in &answers {
        answer.as_ref().expect("completes");
    }
    assert_eq!(
        seen.len(),
        7,
        "one report per prompt (one call each), not one per request: {seen:?}"
    );
    let last = seen.last().expect("reports");
    assert_eq!((last.completed, last.succeeded, last.failed), (7, 7, 0));
    assert!(
        seen.windows(2).all(|w| w[0].completed <= w[1].completed),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_progress_is_reported_after_each_chunk() {
    let sim = simulator("sk-1").await;
    let gpt = cached_client(&sim);
    let mut seen: Vec<Progress> = Vec::new();
    let answers = gpt
        .embeddings()
        .expect("OpenAI serves embeddings")
        .embedding_list_with_progress(
            vec![EmbeddingRequest::new(
                "text-embedding-3-small",
                texts("chunked", 5000),
            )],
            |progress| seen.push(*progress),
        )
        .await;
    assert_eq!(answers[0].as_ref().expect("embeds").data.len(), 5000);
    assert_eq!(seen.len(), 3, "one report per chunk: {seen:?}");
    assert_eq!(seen.last().expect("reports").completed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_prompt_fails_its_request_only_and_the_next_requests_stay_in_place() {
    let sim = simulator("sk-1").await;
    let gpt = ChatGpt::builder()
        .openai_config(
            OpenAiConfig::new()
                .api_key("sk-1")
                .base_url(sim.base_url())
                .name("one")
                .no_proxy(),
        )
        .max_concurrent_requests(1)
        .max_attempts(1)
        .build()
        .expect("builds");
    // One call at a time, in input order: the third call (prompt 1 of request 1) fails.
    sim.script(
        "sk-1",
        [
            Fault::Stall(Duration::ZERO),
            Fault::Stall(Duration::ZERO),
            Fault::Status(400),
        ],
    );
    let model = "gpt-3.5-turbo-instruct";
    let requests = vec![
        CompletionRequest::new(model, vec!["zero"]),
        CompletionRequest::new(model, vec!["r1 p0", "r1 p1", "r1 p2"]),
        CompletionRequest::new(model, vec!["r2 p0", "r2 p1"]),
    ];
    let answers = gpt.completion_list(requests).await;
    assert_eq!(answers.len(), 3);
    assert!(
        answers[1].is_err(),
        "the scripted failure: {:?}",
        answers[1]
    );
    let texts = |i: usize| -> Vec<String> {
        answers[i]
            .as_ref()
            .expect("completes")
            .choices
            .iter()
            .map(|c| c.text.clone())
            .collect()
    };
    assert_eq!(texts(0), [expected_completion("zero")]);
    assert_eq!(texts(2), ["r2 p0", "r2 p1"].map(expected_completion));
    let sent = sim
        .seen_requests()
        .into_iter()
        .filter(|seen| seen.path.ends_with("/completions"))
        .count();
    assert_eq!(sent, 6, "every prompt sent once, the failed one included");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_can_be_taken_out_of_every_endpoint_while_the_client_runs() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-a"))
            .key(KeyConfig::new("sk-b")),
    )
    .await
    .expect("simulator starts");
    let provider = |name: &str, key: &str| {
        Provider::openai(
            OpenAiConfig::new()
                .api_key(key)
                .base_url(sim.base_url())
                .name(name)
                .no_proxy(),
        )
    };
    let gpt = BalancedGpt::builder()
        .provider(provider("a", "sk-a"))
        .provider(provider("b", "sk-b"))
        .strategy("round_robin".parse().expect("a strategy"))
        .build()
        .expect("builds");
    // Key rotation: "a" goes out of service on every endpoint, not only chat.
    gpt.handle().disable("a").expect("chat member");
    gpt.embedding_handle()
        .expect("OpenAI serves embeddings")
        .disable("a")
        .expect("embeddings member");
    gpt.completion_handle()
        .expect("OpenAI serves completions")
        .disable("a")
        .expect("completions member");

    let embeddings = gpt
        .embedding_list(
            (0..4).map(|i| {
                EmbeddingRequest::new("text-embedding-3-small", vec![format!("text {i}")])
            }),
        )
        .await;
    let completion = gpt
        .completion(CompletionRequest::new(
            "gpt-3.5-turbo-instruct",
            texts("prompt", 4),
        ))
        .await
        .expect("completes");
    for answer in embeddings {
        assert_eq!(answer.expect("embeds").meta.member.as_deref(), Some("b"));
    }
    assert_eq!(completion.choices.len(), 4);
    assert_eq!(sim.stats().keys["sk-b"].requests, 8);
    assert_eq!(
        sim.stats().keys.get("sk-a").map_or(0, |key| key.requests),
        0,
        "the disabled provider got nothing"
    );
}

/// Waits (polling, no timing asserted) until `done` holds; panics after a generous minute so a
/// regression fails instead of hanging.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_embeddings_and_completions_draw_on_one_limit_and_a_dropped_call_gives_its_permits_back(
) {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new("sk-1"))
            .latency(Latency::fixed(Duration::from_secs(3600))),
    )
    .await
    .expect("simulator starts");
    let gpt = ChatGpt::builder()
        .openai_config(
            OpenAiConfig::new()
                .api_key("sk-1")
                .base_url(sim.base_url())
                .name("one")
                .no_proxy(),
        )
        .max_concurrent_requests(2)
        .build()
        .expect("builds");
    let embeddings = gpt.embeddings().expect("served").clone();
    let completions = gpt.completions().expect("served").clone();
    assert_eq!(embeddings.max_concurrent(), 2);

    // Five prompts, two at a time at most, then a chat call waiting for a permit.
    let prompts = tokio::spawn(gpt.completion(CompletionRequest::new(
        "gpt-3.5-turbo-instruct",
        texts("slow", 5),
    )));
    wait_until("two prompts running", || gpt.in_flight() == 2).await;
    assert_eq!(
        embeddings.in_flight(),
        2,
        "one semaphore for every endpoint"
    );
    assert_eq!(completions.in_flight(), 2);
    let chat = tokio::spawn(gpt.chat_completion(lbgpt::ChatRequest::new(
        "gpt-4o-mini",
        vec![lbgpt::ChatMessage::user("hi")],
    )));

    // Dropping the prompt list cancels its calls and frees both permits: the chat call takes one.
    prompts.abort();
    wait_until("the chat call reached the provider", || {
        sim.seen_requests()
            .iter()
            .any(|seen| seen.path.ends_with("/chat/completions"))
    })
    .await;
    let completions_sent = sim
        .seen_requests()
        .iter()
        .filter(|seen| seen.path.ends_with("/v1/completions"))
        .count();
    assert_eq!(completions_sent, 2, "no prompt beyond the limit was sent");
    wait_until("only the chat call holds a permit", || gpt.in_flight() == 1).await;
    chat.abort();
    wait_until("every permit back", || gpt.in_flight() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_answer_names_the_member_that_answered_even_when_its_first_part_was_cached() {
    let sim = simulator("sk-1").await;
    let gpt = cached_client(&sim);
    let model = "text-embedding-3-small";
    let known = texts("known", 2048);
    gpt.embedding(EmbeddingRequest::new(model, known.clone()))
        .await
        .expect("first run embeds");

    // The first chunk comes from the cache (no member, no request id); the second from "one".
    let mut all = known;
    all.extend(texts("new", 10));
    let answer = gpt
        .embedding(EmbeddingRequest::new(model, all))
        .await
        .expect("embeds");
    assert_eq!(answer.meta.member.as_deref(), Some("one"));
    assert!(
        answer.meta.request_id.is_some(),
        "the answering part's request id: {:?}",
        answer.meta
    );

    let completion_model = "gpt-3.5-turbo-instruct";
    gpt.completion(CompletionRequest::new(completion_model, vec!["a"]))
        .await
        .expect("completes");
    let answer = gpt
        .completion(CompletionRequest::new(completion_model, vec!["a", "b"]))
        .await
        .expect("completes");
    assert_eq!(
        answer.meta.cache,
        CacheStatus::Partial { hits: 1, misses: 1 }
    );
    assert_eq!(answer.meta.member.as_deref(), Some("one"));
    assert!(answer.meta.request_id.is_some(), "{:?}", answer.meta);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_load_balanced_clients_usage_tracker_counts_chat_only() {
    use lbgpt::balance::usage::{InMemoryUsage, PacingConfig, UsageTracker};

    let sim = simulator("sk-1").await;
    let tracker = Arc::new(InMemoryUsage::new(PacingConfig::unpaced()));
    let gpt = lbgpt::MultiLoadBalancedGpt::builder()
        .gpt(
            Provider::openai(
                OpenAiConfig::new()
                    .api_key("sk-1")
                    .base_url(sim.base_url())
                    .name("one")
                    .no_proxy(),
            )
            .limit_rpm(1_000),
        )
        .usage(Arc::clone(&tracker) as Arc<dyn UsageTracker>)
        .build()
        .expect("builds");
    gpt.chat_completion(lbgpt::ChatRequest::new(
        "gpt-4o-mini",
        vec![lbgpt::ChatMessage::user("hi")],
    ))
    .await
    .expect("chat answers");
    gpt.embedding(EmbeddingRequest::new("text-embedding-3-small", vec!["x"]))
        .await
        .expect("embeds");
    gpt.completion(CompletionRequest::new("gpt-3.5-turbo-instruct", vec!["p"]))
        .await
        .expect("completes");
    assert_eq!(sim.stats().keys["sk-1"].requests, 3);
    assert_eq!(
        tracker
            .snapshot("one")
            .expect("registered")
            .requests_in_window,
        1,
        "the shared tracker counts the chat call only (as MultiLoadBalancedGptBuilder::usage says)"
    );
}
