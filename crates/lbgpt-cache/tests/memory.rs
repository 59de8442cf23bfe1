//! The memory store: TTL (on paused Tokio time), replacement, and its bound under a million
//! distinct inserts.

use bytes::Bytes;
use lbgpt_cache::{CacheConfig, CacheKey, CacheLayer, CacheStore, MemoryStore};
use lbgpt_core::{CacheStatus, ChatMessage, ChatRequest, ChatResponse, Error};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::{service_fn, Layer, ServiceExt};

fn key(i: u64) -> CacheKey {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&i.to_le_bytes());
    digest[31] = 0xAB;
    CacheKey::from_digest(digest)
}

#[tokio::test(start_paused = true)]
async fn entries_expire_after_their_ttl() {
    let store = MemoryStore::new();
    store
        .put(
            &key(1),
            Bytes::from_static(b"one"),
            Some(Duration::from_secs(60)),
        )
        .await
        .expect("put");
    store
        .put(&key(2), Bytes::from_static(b"two"), None)
        .await
        .expect("put");

    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(
        store.get(&key(1)).await.expect("get").as_deref(),
        Some(&b"one"[..])
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        store.get(&key(1)).await.expect("get"),
        None,
        "expired at 60 s"
    );
    assert_eq!(
        store.get(&key(2)).await.expect("get").as_deref(),
        Some(&b"two"[..]),
        "no TTL: kept"
    );

    // A rewrite renews the TTL.
    store
        .put(
            &key(1),
            Bytes::from_static(b"uno"),
            Some(Duration::from_secs(10)),
        )
        .await
        .expect("put");
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(
        store.get(&key(1)).await.expect("get").as_deref(),
        Some(&b"uno"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn the_store_ttl_caps_the_requested_ttl() {
    let store = MemoryStore::builder().ttl(Duration::from_secs(5)).build();
    store
        .put(
            &key(1),
            Bytes::from_static(b"x"),
            Some(Duration::from_secs(3600)),
        )
        .await
        .expect("put");
    store
        .put(&key(2), Bytes::from_static(b"y"), None)
        .await
        .expect("put");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(store.get(&key(1)).await.expect("get"), None);
    assert_eq!(store.get(&key(2)).await.expect("get"), None);
}

#[tokio::test(start_paused = true)]
async fn the_layer_ttl_expires_cached_answers() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let provider = service_fn(move |_request: ChatRequest| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            serde_json::from_str::<ChatResponse>(
                r#"{"choices": [{"message": {"role": "assistant", "content": "ok"}}]}"#,
            )
            .map_err(|e| Error::Internal(e.to_string()))
        }
    });
    let layer = CacheLayer::with_config(
        Arc::new(MemoryStore::new()),
        CacheConfig::new().ttl(Duration::from_secs(30)),
    );
    let service = layer.layer(provider);
    let request = ChatRequest::new("m", vec![ChatMessage::user("hi")]);

    service
        .clone()
        .oneshot(request.clone())
        .await
        .expect("miss");
    tokio::time::advance(Duration::from_secs(29)).await;
    let hit = service.clone().oneshot(request.clone()).await.expect("hit");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    tokio::time::advance(Duration::from_secs(1)).await;
    let expired = service.clone().oneshot(request).await.expect("miss");
    assert_eq!(expired.meta.cache, CacheStatus::Miss);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_bound_holds_under_a_million_distinct_inserts() {
    const MAX: u64 = 10_000;
    const PHASES: u64 = 10;
    const WRITERS: u64 = 2;
    const PER_WRITER: u64 = 50_000; // 10 phases x 2 writers x 50,000 = 1,000,000 keys
    let store = MemoryStore::builder().max_entries(MAX).build();
    for phase in 0..PHASES {
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = store.clone();
                let first = (phase * WRITERS + writer) * PER_WRITER;
                tokio::spawn(async move {
                    let value = Bytes::from_static(b"{}");
                    for i in first..first + PER_WRITER {
                        store.put(&key(i), value.clone(), None).await.expect("put");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("writer");
        }
        store.run_pending_tasks().await;
        assert!(
            store.entry_count() <= MAX && store.weighted_size() <= MAX,
            "{} entries after phase {phase}",
            store.entry_count()
        );
    }
    assert!(store.entry_count() > MAX / 2, "{}", store.entry_count());
    // A full store still admits a new entry (least recently used ones make room).
    let newest = key(u64::MAX);
    store
        .put(&newest, Bytes::from_static(b"new"), None)
        .await
        .expect("put");
    store.run_pending_tasks().await;
    assert!(store.get(&newest).await.expect("get").is_some());
    assert!(store.entry_count() <= MAX);
}

#[tokio::test]
async fn byte_bound_holds_and_counts_value_sizes() {
    const MAX_BYTES: u64 = 1024 * 1024;
    let store = MemoryStore::builder().max_bytes(MAX_BYTES).build();
    let value = Bytes::from(vec![b'x'; 4096]);
    for i in 0..5_000u64 {
        store.put(&key(i), value.clone(), None).await.expect("put");
    }
    store.run_pending_tasks().await;
    assert!(
        store.weighted_size() <= MAX_BYTES,
        "{}",
        store.weighted_size()
    );
    // 4 KiB values in 1 MiB: at most 256 entries, whatever the entry bound would allow.
    assert!(store.entry_count() <= 256, "{}", store.entry_count());
    assert!(store.entry_count() > 0);
}
