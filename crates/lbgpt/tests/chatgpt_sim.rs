//! `ChatGpt` and hand-built stacks against the real simulator on loopback.

mod common;

use common::{assert_answers, fault_mix, request, InFlight};
use futures::StreamExt;
use lbgpt::balance::retry::{RetryLayer, RetryPolicy};
use lbgpt::openai::{OpenAiConfig, OpenAiService};
use lbgpt::{ChatGpt, ChatMessage, ChatRequest, Error, Lbgpt, Progress};
use lbgpt_sim::{Fault, KeyConfig, Latency, SimConfig, Simulator};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceBuilder;

const KEY: &str = "sk-sim-facade";

async fn faulty_sim(seed: u64) -> Simulator {
    Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(KEY).random_faults(0.2, fault_mix()))
            .seed(seed),
    )
    .await
    .expect("simulator starts")
}

/// A client that rides out the 20 % faults: many attempts, millisecond backoff.
fn patient_client(sim: &Simulator, concurrency: usize) -> ChatGpt {
    ChatGpt::builder()
        .api_key(KEY)
        .base_url(sim.base_url())
        .max_concurrent_requests(concurrency)
        .max_attempts(30)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(10))
        .build()
        .expect("client builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_requests_with_random_faults_come_back_complete_in_order_once_each() {
    let sim = faulty_sim(7).await;
    let gpt = patient_client(&sim, 16);
    let requests: Vec<ChatRequest> = (0..2000).map(request).collect();

    let results = gpt.chat_completion_list(requests.clone()).await;

    assert_eq!(results.len(), 2000, "one result per input");
    let mut ids = HashSet::new();
    let mut retried = 0;
    for (request, result) in requests.iter().zip(&results) {
        let answer = result.as_ref().expect("every request succeeds eventually");
        assert_answers(request, answer);
        assert!(
            ids.insert(answer.id.clone()),
            "answer {} duplicated",
            answer.id
        );
        assert!(answer.meta.attempts >= 1);
        if answer.meta.attempts > 1 {
            retried += 1;
        }
    }
    let stats = sim.key_stats(KEY).expect("the key exists");
    assert_eq!(stats.succeeded, 2000, "each request answered exactly once");
    assert!(
        stats.faults_injected > 200,
        "faults were injected: {stats:?}"
    );
    assert!(retried > 100, "{retried} requests needed retries");
    assert_eq!(stats.requests, stats.succeeded + stats.faults_injected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_streams_yield_exactly_one_result_per_input() {
    let sim = faulty_sim(11).await;
    let gpt = patient_client(&sim, 8);
    let requests: Vec<ChatRequest> = (0..500).map(request).collect();

    // Completion order: every index exactly once.
    let mut seen = vec![false; requests.len()];
    let mut stream = gpt.chat_completion_stream(requests.clone());
    while let Some((index, result)) = stream.next().await {
        assert!(!seen[index], "index {index} yielded twice");
        seen[index] = true;
        assert_answers(&requests[index], &result.expect("succeeds"));
    }
    assert!(seen.iter().all(|s| *s), "every index yielded");
    assert_eq!(stream.progress().completed, 500);

    // Input order.
    let ordered: Vec<_> = gpt
        .chat_completion_ordered(requests.clone())
        .collect()
        .await;
    assert_eq!(ordered.len(), requests.len());
    for (request, result) in requests.iter().zip(&ordered) {
        assert_answers(request, result.as_ref().expect("succeeds"));
    }
    assert_eq!(sim.key_stats(KEY).expect("key").succeeded, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_never_exceeds_the_limit_across_concurrent_calls() {
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(KEY).random_faults(0.1, fault_mix()))
            .latency(Latency::fixed(Duration::from_millis(20))),
    )
    .await
    .expect("simulator starts");
    let gauge = InFlight::default();
    let openai = OpenAiService::new(OpenAiConfig::new().api_key(KEY).base_url(sim.base_url()))
        .expect("service builds");
    // The gauge sits under the retry layer, so it counts HTTP attempts on the wire.
    let stack = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::default()
                .max_attempts(30)
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(5)),
        ))
        .layer(gauge.clone())
        .service(openai);
    let client = Lbgpt::new(stack).max_concurrent_requests(7);
    let other = client.clone();

    let (a, b, c) = tokio::join!(
        client.chat_completion_list((0..150).map(request)),
        other
            .chat_completion_ordered((150..300).map(request))
            .collect::<Vec<_>>(),
        futures::future::join_all((300..330).map(|i| client.chat_completion(request(i)))),
    );
    for (i, result) in a.iter().chain(&b).chain(&c).enumerate() {
        assert_answers(&request(i), result.as_ref().expect("succeeds"));
    }
    assert!(gauge.peak() <= 7, "peak {} exceeds the limit", gauge.peak());
    // 20 ms per answer and 330 requests: the limit is reached.
    assert_eq!(gauge.peak(), 7);
    assert_eq!(gauge.now(), 0);
    assert_eq!(client.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_total() {
    let sim = faulty_sim(3).await;
    let gpt = patient_client(&sim, 6);
    let snapshots = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = snapshots.clone();
    let results = gpt
        .chat_completion_list_with_progress((0..300).map(request), move |p| {
            sink.lock().expect("not poisoned").push(*p);
        })
        .await;
    assert_eq!(results.len(), 300);
    let snapshots = snapshots.lock().expect("not poisoned");
    assert_eq!(snapshots.len(), 300, "called once per result");
    assert!(snapshots
        .windows(2)
        .all(|w| w[1].completed == w[0].completed + 1));
    let last = snapshots.last().expect("a snapshot");
    assert_eq!(last.total, Some(300));
    assert_eq!((last.completed, last.succeeded, last.failed), (300, 300, 0));
    assert_eq!(last.in_flight, 0);
    assert!(snapshots.iter().all(|p| p.in_flight <= 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_inputs_are_never_materialised() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new(KEY)))
        .await
        .expect("simulator starts");
    let gpt = patient_client(&sim, 5);
    let window = gpt.as_lbgpt().current_reorder_window();

    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let inputs = (0..1_000_000).map(move |i| {
        counter.fetch_add(1, Ordering::SeqCst);
        request(i)
    });
    let mut ordered = gpt.chat_completion_ordered(inputs);
    for i in 0..40 {
        let answer = ordered.next().await.expect("a result").expect("succeeds");
        assert_answers(&request(i), &answer);
    }
    let seen = pulled.load(Ordering::SeqCst);
    assert!(
        seen <= 40 + window,
        "pulled {seen} inputs for 40 results (window {window})"
    );
    drop(ordered);

    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let inputs = (0..1_000_000).map(move |i| {
        counter.fetch_add(1, Ordering::SeqCst);
        request(i)
    });
    let mut unordered = gpt.chat_completion_stream(inputs);
    for _ in 0..40 {
        let (index, result) = unordered.next().await.expect("a result");
        assert_answers(&request(index), &result.expect("succeeds"));
    }
    let seen = pulled.load(Ordering::SeqCst);
    assert!(seen <= 40 + 5 + 1, "pulled {seen} inputs for 40 results");
    drop(unordered);

    // Dropping the streams cancelled their requests: nothing is left running.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(gpt.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_error_fails_only_its_own_item() {
    let sim = Simulator::start(SimConfig::new().key(KeyConfig::new(KEY)))
        .await
        .expect("simulator starts");
    // The first request to arrive meets a 400; whichever it is, only it fails.
    sim.script(KEY, [Fault::Status(400)]);
    let gpt = patient_client(&sim, 4);
    let mut requests: Vec<ChatRequest> = (0..60).map(request).collect();
    // And one request is invalid before any network call.
    requests[30] = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("hot")]).temperature(5.0);

    let results = gpt.chat_completion_list(requests.clone()).await;

    assert_eq!(results.len(), 60);
    match &results[30] {
        Err(Error::InvalidRequest { field, .. }) => assert_eq!(field, "temperature"),
        other => panic!("item 30 should be refused locally, got {other:?}"),
    }
    let mut rejected = 0;
    for (i, (request, result)) in requests.iter().zip(&results).enumerate() {
        if i == 30 {
            continue;
        }
        match result {
            Ok(answer) => assert_answers(request, answer),
            Err(error) => {
                rejected += 1;
                assert_eq!(error.status(), Some(400), "{error}");
                assert!(
                    matches!(error, Error::Api(_)),
                    "sent once, not retried: {error:?}"
                );
            }
        }
    }
    assert_eq!(rejected, 1, "exactly the scripted request failed");
    let stats = sim.key_stats(KEY).expect("key");
    assert_eq!(
        stats.requests, 59,
        "the 400 was not retried, the invalid one never sent"
    );
    assert_eq!(stats.succeeded, 58);
}

#[tokio::test]
async fn builders_name_the_bad_setting_and_hide_the_key() {
    let secret = "sk-very-secret-key-123";
    let cases: Vec<(Result<ChatGpt, Error>, &str)> = vec![
        (
            ChatGpt::builder()
                .api_key(secret)
                .max_concurrent_requests(0)
                .build(),
            "max_concurrent_requests",
        ),
        (
            ChatGpt::builder().api_key(secret).max_attempts(0).build(),
            "max_attempts",
        ),
        (
            ChatGpt::builder()
                .api_key(secret)
                .base_url("not a url")
                .build(),
            "base URL",
        ),
        (
            ChatGpt::builder().api_key(secret).reorder_window(0).build(),
            "reorder_window",
        ),
    ];
    for (result, setting) in cases {
        match result {
            Err(Error::Config(message)) => {
                assert!(
                    message.contains(setting),
                    "{message:?} should name {setting}"
                );
                assert!(!message.contains(secret));
            }
            other => panic!("expected a config error naming {setting}, got {other:?}"),
        }
    }
    let builder = ChatGpt::builder().api_key(secret);
    assert!(!format!("{builder:?}").contains(secret));
    let gpt = builder.build().expect("builds");
    assert!(!format!("{gpt:?}").contains(secret));
    assert_eq!(gpt.max_concurrent(), 5, "the seed's default");
}
