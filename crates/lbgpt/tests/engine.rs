//! The batch engine's own guarantees, with small `tower::service_fn` services whose timing and
//! failures the test controls (paused Tokio time, so nothing depends on machine speed). The
//! provider paths are tested against the simulator in the other test files.

use futures::StreamExt;
use lbgpt::{ChatMessage, ChatRequest, ChatResponse, Error, Lbgpt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::service_fn;

fn request(i: usize) -> ChatRequest {
    ChatRequest::new("m", vec![ChatMessage::user(i.to_string())])
}

fn index_of(request: &ChatRequest) -> usize {
    request.messages[0]
        .text()
        .parse()
        .expect("test requests carry their index")
}

fn answer(i: usize) -> ChatResponse {
    let body = serde_json::json!({
        "id": format!("answer-{i}"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": i.to_string()}, "finish_reason": "stop"}]
    });
    serde_json::from_value(body).expect("a valid answer")
}

fn answered_index(response: &ChatResponse) -> usize {
    response
        .first_text()
        .expect("text")
        .parse()
        .expect("an index")
}

/// Counts requests running at once and the peak.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
    dropped_unfinished: Arc<AtomicUsize>,
}

struct Running {
    gauge: Gauge,
    finished: bool,
}

impl Gauge {
    fn enter(&self) -> Running {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        Running {
            gauge: self.clone(),
            finished: false,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.gauge.now.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.gauge.dropped_unfinished.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A service answering each request with its index after `delay(index)`.
fn timed_service(
    gauge: Gauge,
    delay: fn(usize) -> Duration,
) -> impl tower::Service<
    ChatRequest,
    Response = ChatResponse,
    Error = Error,
    Future = impl Send + 'static,
> + Clone
       + Send
       + 'static {
    service_fn(move |request: ChatRequest| {
        let gauge = gauge.clone();
        async move {
            let mut running = gauge.enter();
            let i = index_of(&request);
            tokio::time::sleep(delay(i)).await;
            running.finished = true;
            Ok::<_, Error>(answer(i))
        }
    })
}

/// An iterator of `count` requests that counts how many were pulled.
fn counted(count: usize, pulled: Arc<AtomicUsize>) -> impl Iterator<Item = ChatRequest> {
    (0..count).map(move |i| {
        pulled.fetch_add(1, Ordering::SeqCst);
        request(i)
    })
}

#[tokio::test(start_paused = true)]
async fn a_panicking_request_fails_alone() {
    let service = service_fn(|request: ChatRequest| async move {
        let i = index_of(&request);
        if i == 3 {
            panic!("boom on item {i}");
        }
        Ok::<_, Error>(answer(i))
    });
    let client = Lbgpt::new(service).max_concurrent_requests(4);
    let results = client.chat_completion_list((0..10).map(request)).await;
    assert_eq!(results.len(), 10);
    for (i, result) in results.iter().enumerate() {
        if i == 3 {
            match result {
                Err(Error::Internal(message)) => assert!(message.contains("boom on item 3")),
                other => panic!("item 3 should be an internal error, got {other:?}"),
            }
        } else {
            let answer = result.as_ref().expect("other items succeed");
            assert_eq!(answered_index(answer), i);
        }
    }
    // The single-call path turns a panic into an error too.
    let single = client.chat_completion(request(3)).await;
    assert!(matches!(single, Err(Error::Internal(_))), "{single:?}");
    assert_eq!(client.in_flight(), 0, "every permit came back");
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_item_does_not_block_the_rest_beyond_the_window() {
    let gauge = Gauge::default();
    let service = timed_service(gauge.clone(), |i| {
        if i == 0 {
            Duration::from_secs(10)
        } else {
            Duration::from_millis(10)
        }
    });
    let client = Lbgpt::new(service)
        .max_concurrent_requests(4)
        .reorder_window(16);
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut stream = client.chat_completion_ordered(counted(100, pulled.clone()));

    let first = stream.next().await.expect("a first result").expect("ok");
    assert_eq!(answered_index(&first), 0);
    // While item 0 ran for 10 s the other slots kept working until the window was full...
    assert_eq!(stream.progress().completed, 16, "{:?}", stream.progress());
    // ...and no further: the window bounds what was pulled.
    assert!(
        pulled.load(Ordering::SeqCst) <= 17,
        "pulled {}",
        pulled.load(Ordering::SeqCst)
    );
    assert_eq!(gauge.peak.load(Ordering::SeqCst), 4);

    let mut expected = 1;
    while let Some(result) = stream.next().await {
        assert_eq!(answered_index(&result.expect("ok")), expected);
        expected += 1;
    }
    assert_eq!(expected, 100);
    assert_eq!(gauge.started.load(Ordering::SeqCst), 100);
}

#[tokio::test(start_paused = true)]
async fn a_million_inputs_are_pulled_lazily() {
    let gauge = Gauge::default();
    let client =
        Lbgpt::new(timed_service(gauge, |_| Duration::from_millis(5))).max_concurrent_requests(8);
    let window = client.current_reorder_window();

    let pulled = Arc::new(AtomicUsize::new(0));
    let mut ordered = client.chat_completion_ordered(counted(1_000_000, pulled.clone()));
    for i in 0..20 {
        let result = ordered.next().await.expect("a result").expect("ok");
        assert_eq!(answered_index(&result), i);
    }
    let seen = pulled.load(Ordering::SeqCst);
    assert!(
        seen <= 20 + window,
        "pulled {seen} items for 20 results (window {window})"
    );
    assert_eq!(seen, ordered.pulled());
    drop(ordered);

    let pulled = Arc::new(AtomicUsize::new(0));
    let mut unordered = client.chat_completion_stream(counted(1_000_000, pulled.clone()));
    for _ in 0..20 {
        unordered.next().await.expect("a result").1.expect("ok");
    }
    let seen = pulled.load(Ordering::SeqCst);
    // 20 returned, at most 8 running, one pulled and waiting for a permit.
    assert!(seen <= 20 + 8 + 1, "pulled {seen} items for 20 results");
}

#[tokio::test(start_paused = true)]
async fn the_limit_is_shared_by_concurrent_calls_and_clones() {
    let gauge = Gauge::default();
    let client = Lbgpt::new(timed_service(gauge.clone(), |i| {
        Duration::from_millis(1 + (i % 7) as u64)
    }))
    .max_concurrent_requests(3);
    let other = client.clone();

    let (a, b, c) = tokio::join!(
        client.chat_completion_list((0..200).map(request)),
        other.chat_completion_list((0..200).map(request)),
        futures::future::join_all((0..20).map(|i| client.chat_completion(request(i)))),
    );
    assert_eq!(a.len(), 200);
    assert_eq!(b.len(), 200);
    for (i, result) in a.iter().chain(b.iter()).enumerate() {
        assert_eq!(answered_index(result.as_ref().expect("ok")), i % 200);
    }
    assert!(c.iter().all(Result::is_ok));
    assert_eq!(gauge.started.load(Ordering::SeqCst), 420);
    assert_eq!(
        gauge.peak.load(Ordering::SeqCst),
        3,
        "limit reached, never exceeded"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stream_cancels_its_requests() {
    let gauge = Gauge::default();
    let client = Lbgpt::new(timed_service(gauge.clone(), |_| Duration::from_secs(60)))
        .max_concurrent_requests(5);
    let mut stream = client.chat_completion_stream((0..50).map(request));
    // Let the requests start, then give up before any finishes.
    let early = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
    assert!(early.is_err(), "nothing finishes within a second");
    assert_eq!(gauge.now.load(Ordering::SeqCst), 5);
    assert_eq!(client.in_flight(), 5);
    drop(stream);
    // Aborted tasks are dropped by the runtime at its next turn.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(gauge.now.load(Ordering::SeqCst), 0);
    assert_eq!(gauge.dropped_unfinished.load(Ordering::SeqCst), 5);
    assert_eq!(client.in_flight(), 0, "permits returned");
}

#[tokio::test(start_paused = true)]
async fn progress_counts_reach_the_total() {
    let service = service_fn(|request: ChatRequest| async move {
        let i = index_of(&request);
        tokio::time::sleep(Duration::from_millis((i % 5) as u64)).await;
        if i.is_multiple_of(10) {
            Err(Error::invalid_request("messages", "test failure"))
        } else {
            Ok(answer(i))
        }
    });
    let client = Lbgpt::new(service);
    let mut snapshots = Vec::new();
    let results = client
        .chat_completion_list_with_progress((0..100).map(request), |p| snapshots.push(*p))
        .await;
    assert_eq!(results.len(), 100);
    assert_eq!(snapshots.len(), 100, "one call per result");
    for (n, p) in snapshots.iter().enumerate() {
        assert_eq!(p.completed, n + 1);
        assert_eq!(p.succeeded + p.failed, p.completed);
        assert_eq!(p.total, Some(100));
        assert!(p.in_flight <= 5);
    }
    let last = snapshots.last().expect("a snapshot");
    assert_eq!((last.succeeded, last.failed, last.in_flight), (90, 10, 0));
    assert!(last.is_done());
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), i.is_multiple_of(10), "item {i}");
    }
}

#[tokio::test]
async fn empty_inputs_finish_at_once() {
    let client = Lbgpt::new(timed_service(Gauge::default(), |_| Duration::ZERO));
    assert!(client.chat_completion_list(Vec::new()).await.is_empty());
    assert_eq!(client.chat_completion_stream(Vec::new()).count().await, 0);
    assert_eq!(client.chat_completion_ordered(Vec::new()).count().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_nobody_polls_does_not_starve_other_calls() {
    let gauge = Gauge::default();
    let client = Lbgpt::new(timed_service(gauge.clone(), |_| Duration::from_millis(10)))
        .max_concurrent_requests(1);
    let list = client.chat_completion_list((0..20).map(request));
    tokio::pin!(list);
    let mut idle = client.chat_completion_stream((100..110).map(request));

    // Both start while the single permit is taken, then the idle stream is left alone.
    assert!(futures::poll!(&mut list).is_pending());
    assert!(futures::poll!(idle.next()).is_pending());

    let results = tokio::time::timeout(Duration::from_secs(60), list)
        .await
        .expect("the list is not starved by the idle stream");
    for (i, result) in results.iter().enumerate() {
        assert_eq!(answered_index(result.as_ref().expect("ok")), i);
    }
    // The idle stream still delivers all of its items when finally polled.
    let mut indices: Vec<usize> = idle
        .map(|(_, result)| answered_index(&result.expect("ok")))
        .collect()
        .await;
    indices.sort_unstable();
    assert_eq!(indices, (100..110).collect::<Vec<_>>());
    assert_eq!(gauge.peak.load(Ordering::SeqCst), 1);
}
