//! Embeddings and legacy completions through the ready-made clients, against the simulator on
//! loopback: chunking, per-input caching, prompt lists split over members and put back in
//! order, failover, and providers that serve chat only.

use lbgpt::cache::{CacheConfig, MemoryStore};
use lbgpt::openai::OpenAiConfig;
use lbgpt::{
    BalancedGpt, CacheStatus, ChatGpt, ChatRequest, ChatResponse, CompletionRequest,
    EmbeddingRequest, Error, Provider,
};
use lbgpt_sim::{expected_completion, expected_embedding, KeyConfig, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::sync::Arc;

async fn simulator(keys: &[&str]) -> Simulator {
    let mut config = SimConfig::new();
    for key in keys {
        config = config.key(KeyConfig::new(*key));
    }
    Simulator::start(config).await.expect("simulator starts")
}

fn openai(sim: &Simulator, name: &str, key: &str) -> OpenAiConfig {
    OpenAiConfig::new()
        .api_key(key)
        .base_url(sim.base_url())
        .name(name)
        .no_proxy()
}

/// The texts the simulator received on `/v1/embeddings`, request by request.
fn embedded_inputs(sim: &Simulator) -> Vec<Vec<String>> {
    sim.seen_requests()
        .into_iter()
        .filter(|seen| seen.path.ends_with("/embeddings"))
        .map(|seen| match &seen.body["input"] {
            serde_json::Value::String(text) => vec![text.clone()],
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().expect("text input").to_owned())
                .collect(),
            other => panic!("unexpected input {other}"),
        })
        .collect()
}

fn assert_vectors(texts: &[String], answer: &lbgpt::EmbeddingResponse) {
    assert_eq!(answer.data.len(), texts.len());
    for (at, (text, embedding)) in texts.iter().zip(&answer.data).enumerate() {
        assert_eq!(embedding.index as usize, at);
        assert_eq!(
            embedding.embedding.to_floats().expect("floats"),
            expected_embedding(text),
            "input {at}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_embedding_request_is_sent_in_chunks_and_merged_in_order() {
    let sim = simulator(&["sk-1"]).await;
    let gpt = ChatGpt::builder()
        .openai_config(openai(&sim, "one", "sk-1"))
        .max_concurrent_requests(4)
        .build()
        .expect("builds");
    let texts: Vec<String> = (0..5000).map(|i| format!("sentence {i}")).collect();
    let answer = gpt
        .embedding(EmbeddingRequest::new(
            "text-embedding-3-small",
            texts.clone(),
        ))
        .await
        .expect("embeds");
    assert_vectors(&texts, &answer);
    let mut sent = embedded_inputs(&sim);
    sent.sort_by_key(Vec::len);
    assert_eq!(
        sent.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![904, 2048, 2048]
    );
    let usage = answer.usage.expect("usage summed");
    assert_eq!(
        usage.prompt_tokens,
        sim.stats().keys["sk-1"].prompt_tokens,
        "the merged usage is what the provider charged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cache_a_second_run_sends_only_the_new_inputs() {
    let sim = simulator(&["sk-1"]).await;
    let gpt = ChatGpt::builder()
        .openai_config(openai(&sim, "one", "sk-1"))
        .cache_store(Arc::new(MemoryStore::new()), CacheConfig::new())
        .build()
        .expect("builds");
    let first: Vec<String> = ["apple", "pear", "plum"].map(String::from).to_vec();
    let answers = gpt
        .embedding_list(vec![EmbeddingRequest::new(
            "text-embedding-3-small",
            first.clone(),
        )])
        .await;
    assert_vectors(&first, answers[0].as_ref().expect("embeds"));

    let second: Vec<String> = ["pear", "fig", "apple", "kiwi"].map(String::from).to_vec();
    let answer = gpt
        .embedding(EmbeddingRequest::new(
            "text-embedding-3-small",
            second.clone(),
        ))
        .await
        .expect("embeds");
    assert_vectors(&second, &answer);
    assert_eq!(
        answer.meta.cache,
        CacheStatus::Partial { hits: 2, misses: 2 }
    );
    assert_eq!(
        embedded_inputs(&sim),
        vec![first, vec!["fig".to_owned(), "kiwi".to_owned()]],
        "the second call sent only the inputs the cache did not have"
    );
    let stats = gpt.embedding_cache_stats().expect("a cache");
    assert_eq!(stats.hits, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_list_is_spread_over_members_and_put_back_in_prompt_order() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    let gpt = BalancedGpt::builder()
        .provider(Provider::openai(openai(&sim, "a", "sk-a")))
        .provider(Provider::openai(openai(&sim, "b", "sk-b")))
        .strategy("round_robin".parse().expect("a strategy"))
        .max_concurrent_requests(8)
        .build()
        .expect("builds");
    let prompts: Vec<String> = (0..12).map(|i| format!("Once upon a time {i}")).collect();
    let answer = gpt
        .completion(CompletionRequest::new("gpt-3.5-turbo-instruct", prompts.clone()).n(2))
        .await
        .expect("completes");
    assert_eq!(answer.choices.len(), prompts.len() * 2);
    for (at, choice) in answer.choices.iter().enumerate() {
        assert_eq!(choice.index as usize, at);
        assert_eq!(
            choice.text,
            expected_completion(&prompts[at / 2]),
            "choice {at}"
        );
    }
    let stats = sim.stats();
    assert_eq!(
        stats.keys["sk-a"].requests, 6,
        "one request per prompt, in turn"
    );
    assert_eq!(stats.keys["sk-b"].requests, 6);
    let usage = answer.usage.expect("usage summed");
    assert_eq!(
        usage.prompt_tokens,
        stats.keys["sk-a"].prompt_tokens + stats.keys["sk-b"].prompt_tokens
    );
    let served: u64 = gpt.completion_stats().iter().map(|m| m.requests).sum();
    assert_eq!(served, 12);
    assert!(
        gpt.stats().iter().all(|m| m.requests == 0),
        "chat untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_lists_keep_one_answer_per_request_in_order() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    let gpt = BalancedGpt::builder()
        .provider(Provider::openai(openai(&sim, "a", "sk-a")))
        .provider(Provider::openai(openai(&sim, "b", "sk-b")))
        .max_concurrent_requests(6)
        .build()
        .expect("builds");
    let requests: Vec<CompletionRequest> = (0..20)
        .map(|i| {
            let prompts: Vec<String> = (0..(i % 4 + 1)).map(|p| format!("r{i} p{p}")).collect();
            CompletionRequest::new("gpt-3.5-turbo-instruct", prompts)
        })
        .collect();
    let answers = gpt.completion_list(requests.clone()).await;
    assert_eq!(answers.len(), requests.len());
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.expect("completes");
        let texts: Vec<String> = answer.choices.iter().map(|c| c.text.clone()).collect();
        let expected: Vec<String> = (0..(i % 4 + 1))
            .map(|p| expected_completion(&format!("r{i} p{p}")))
            .collect();
        assert_eq!(texts, expected, "request {i}");
    }
    // An empty prompt list is refused, as its own result, without losing the others.
    let answers = gpt
        .completion_list(vec![
            CompletionRequest::new("gpt-3.5-turbo-instruct", Vec::<String>::new()),
            CompletionRequest::new("gpt-3.5-turbo-instruct", vec!["fine"]),
        ])
        .await;
    assert!(
        matches!(answers[0], Err(Error::InvalidRequest { .. })),
        "{:?}",
        answers[0]
    );
    assert_eq!(
        answers[1].as_ref().expect("completes").choices[0].text,
        expected_completion("fine")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_fail_over_from_a_revoked_key() {
    let sim = simulator(&["sk-a", "sk-b"]).await;
    sim.revoke_key("sk-a");
    let gpt = BalancedGpt::builder()
        .provider(Provider::openai(openai(&sim, "a", "sk-a")))
        .provider(Provider::openai(openai(&sim, "b", "sk-b")))
        .build()
        .expect("builds");
    let requests: Vec<EmbeddingRequest> = (0..10)
        .map(|i| EmbeddingRequest::new("text-embedding-3-small", vec![format!("text {i}")]))
        .collect();
    for (i, answer) in gpt.embedding_list(requests).await.into_iter().enumerate() {
        let answer = answer.expect("embeds");
        assert_vectors(&[format!("text {i}")], &answer);
        assert_eq!(answer.meta.member.as_deref(), Some("b"));
    }
    let stats: BTreeMap<String, u64> = gpt
        .embedding_stats()
        .into_iter()
        .map(|m| (m.name.to_string(), m.requests))
        .collect();
    assert_eq!(stats["b"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_only_provider_gives_every_embedding_request_a_clear_error() {
    let chat_only = tower::service_fn(|_request: ChatRequest| async {
        Err::<ChatResponse, Error>(Error::Cancelled)
    });
    let gpt = BalancedGpt::builder()
        .provider(Provider::service("mine", chat_only))
        .build()
        .expect("builds");
    let requests = vec![
        EmbeddingRequest::new("m", vec!["a"]),
        EmbeddingRequest::new("m", vec!["b"]),
    ];
    let answers = gpt.embedding_list(requests).await;
    assert_eq!(answers.len(), 2, "no item is dropped");
    for answer in answers {
        let Err(Error::Config(message)) = answer else {
            panic!("expected a config error")
        };
        assert!(message.contains("serves embeddings"), "{message}");
    }
    assert!(gpt.embeddings().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cache_repeated_prompts_are_not_sent_again() {
    let sim = simulator(&["sk-1"]).await;
    let gpt = ChatGpt::builder()
        .openai_config(openai(&sim, "one", "sk-1"))
        .cache_store(Arc::new(MemoryStore::new()), CacheConfig::new())
        .build()
        .expect("builds");
    let first = gpt
        .completion(CompletionRequest::new(
            "gpt-3.5-turbo-instruct",
            vec!["a", "b"],
        ))
        .await
        .expect("completes");
    let second = gpt
        .completion(CompletionRequest::new(
            "gpt-3.5-turbo-instruct",
            vec!["b", "c", "a"],
        ))
        .await
        .expect("completes");
    let texts: Vec<&str> = second.choices.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            expected_completion("b").as_str(),
            expected_completion("c").as_str(),
            expected_completion("a").as_str()
        ]
    );
    assert_eq!(first.choices.len(), 2);
    assert_eq!(
        sim.stats().keys["sk-1"].requests,
        3,
        "a and b once each, then only c"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ordered_endpoint_streams_report_the_progress_of_their_calls() {
    use futures::StreamExt;
    let sim = simulator(&["sk-1"]).await;
    let gpt = ChatGpt::builder()
        .openai_config(openai(&sim, "one", "sk-1"))
        .max_concurrent_requests(4)
        .build()
        .expect("builds");

    // 5000 inputs are 3 calls, then two requests of one call each: 5 calls.
    let long: Vec<String> = (0..5000).map(|i| format!("sentence {i}")).collect();
    let requests = vec![
        EmbeddingRequest::new("text-embedding-3-small", long),
        EmbeddingRequest::new("text-embedding-3-small", vec!["one"]),
        EmbeddingRequest::new("text-embedding-3-small", vec!["two"]),
    ];
    let mut embeddings = gpt.embedding_ordered(requests);
    assert_eq!(embeddings.progress(), lbgpt::Progress::default());
    let first = embeddings.next().await.expect("a first result");
    assert_eq!(first.expect("embedded").data.len(), 5000);
    let after_first = embeddings.progress();
    assert!(after_first.completed >= 3, "{after_first:?}");
    let rest: Vec<_> = embeddings.by_ref().collect().await;
    assert_eq!(rest.len(), 2);
    let end = embeddings.progress();
    assert_eq!(
        (end.completed, end.succeeded, end.failed, end.in_flight),
        (5, 5, 0, 0),
        "{end:?}"
    );

    // Three prompts and one: four calls.
    let mut completions = gpt.completion_ordered(vec![
        CompletionRequest::new("gpt-3.5-turbo-instruct", vec!["a", "b", "c"]),
        CompletionRequest::new("gpt-3.5-turbo-instruct", vec!["d"]),
    ]);
    let answers: Vec<_> = completions.by_ref().collect().await;
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(Result::is_ok));
    let end = completions.progress();
    assert_eq!(
        (end.completed, end.succeeded, end.failed),
        (4, 4, 0),
        "{end:?}"
    );
}
