//! The Redis store against a real `redis-server` started on a free loopback port: shared by
//! two clients, TTL, an outage (server killed mid-run) degrading to misses, reconnecting
//! when the server is back, and a server down from the start.
//!
//! Skipped with a loud message when `redis-server` is not installed, except under CI (`CI`
//! set), where that fails.

#![cfg(feature = "redis")]

mod common;

use bytes::Bytes;
use common::{free_port, provider, request, sim, upstream_calls, RedisServer, KEY};
use lbgpt_cache::{CacheKey, CacheLayer, CacheStore, RedisStore, StoreError};
use lbgpt_core::CacheStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{Layer, ServiceExt};

fn key(i: u64) -> CacheKey {
    let mut digest = [0xC3u8; 32];
    digest[..8].copy_from_slice(&i.to_le_bytes());
    CacheKey::from_digest(digest)
}

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .prefix("test:")
        .connect()
        .await
        .expect("connects to the test redis-server")
}

#[tokio::test]
async fn two_clients_share_entries() {
    let Some(server) = RedisServer::start("two_clients_share_entries") else {
        return;
    };
    let sim = sim(Duration::ZERO).await;
    // Two stores, each with its own connection, as two processes would have.
    let layer_a = CacheLayer::new(Arc::new(connect(&server).await));
    let layer_b = CacheLayer::new(Arc::new(connect(&server).await));
    let a = layer_a.layer(provider(&sim, KEY));
    let b = layer_b.layer(provider(&sim, KEY));

    let first = a.oneshot(request("shared")).await.expect("answer");
    assert_eq!(first.meta.cache, CacheStatus::Miss);
    let second = b.oneshot(request("shared")).await.expect("answer");
    assert_eq!(second.meta.cache, CacheStatus::Exact);
    assert_eq!(
        second.first_text(),
        Some(lbgpt_sim::expected_answer(&request("shared")))
    );
    assert_eq!(upstream_calls(&sim), 1);
    assert_eq!(layer_a.stats().stores, 1);
    assert_eq!(layer_b.stats().hits, 1);

    // The entry is where the documentation says: PREFIX + key text.
    let store = connect(&server).await;
    let key = layer_a.key_for(&request("shared")).expect("key");
    assert_eq!(store.redis_key(&key), format!("test:{key}"));
    let raw = store.get(&key).await.expect("get").expect("stored");
    let stored: serde_json::Value = serde_json::from_slice(&raw).expect("JSON answer");
    assert_eq!(stored["choices"][0]["message"]["role"], "assistant");

    store.delete(&key).await.expect("delete");
    assert_eq!(store.get(&key).await.expect("get"), None);
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let Some(server) = RedisServer::start("redis entries_expire_after_their_ttl") else {
        return;
    };
    let store = connect(&server).await;
    let started = Instant::now();
    store
        .put(
            &key(1),
            Bytes::from_static(b"short"),
            Some(Duration::from_millis(800)),
        )
        .await
        .expect("put");
    store
        .put(&key(2), Bytes::from_static(b"long"), None)
        .await
        .expect("put");
    let early = store.get(&key(1)).await.expect("get");
    if started.elapsed() < Duration::from_millis(700) {
        assert_eq!(early.as_deref(), Some(&b"short"[..]));
    }
    tokio::time::sleep(Duration::from_millis(1000).saturating_sub(started.elapsed())).await;
    assert_eq!(store.get(&key(1)).await.expect("get"), None);
    assert_eq!(
        store.get(&key(2)).await.expect("get").as_deref(),
        Some(&b"long"[..])
    );

    // The store's own TTL caps a longer one.
    let capped = RedisStore::builder(server.url())
        .prefix("test:")
        .ttl(Duration::from_millis(200))
        .connect()
        .await
        .expect("connects");
    capped
        .put(
            &key(3),
            Bytes::from_static(b"x"),
            Some(Duration::from_secs(3600)),
        )
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(capped.get(&key(3)).await.expect("get"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_degrades_to_misses_and_recovers() {
    let Some(mut server) = RedisServer::start("a_redis_outage_degrades_to_misses_and_recovers")
    else {
        return;
    };
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::new(Arc::new(connect(&server).await));
    let service = layer.layer(provider(&sim, KEY));

    service
        .clone()
        .oneshot(request("before"))
        .await
        .expect("answer");
    let hit = service
        .clone()
        .oneshot(request("before"))
        .await
        .expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 1);

    server.kill();

    // Every request still gets its answer, from upstream, and quickly.
    for i in 0..10 {
        let started = Instant::now();
        let text = if i == 0 {
            "before".to_owned()
        } else {
            format!("during {i}")
        };
        let response = service
            .clone()
            .oneshot(request(&text))
            .await
            .expect("a Redis outage never fails a request");
        assert_eq!(response.meta.cache, CacheStatus::Miss);
        assert_eq!(
            response.first_text(),
            Some(lbgpt_sim::expected_answer(&request(&text)))
        );
        // Each store operation is bounded by the store's timeout (250 ms); generous bound.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(upstream_calls(&sim), 11);
    let errors = layer.stats().errors;
    assert!(
        errors >= 10,
        "lookups and writes failed: {:?}",
        layer.stats()
    );

    // Back up (empty: no persistence): the store reconnects by itself.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        service
            .clone()
            .oneshot(request("after"))
            .await
            .expect("answer");
        let response = service
            .clone()
            .oneshot(request("after"))
            .await
            .expect("answer");
        if response.meta.cache == CacheStatus::Exact {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never reconnected: {:?}",
            layer.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_server_down_from_the_start() {
    let port = free_port();
    let url = format!("redis://:s3cret-password@127.0.0.1:{port}/");

    // Eager connect fails in bounded time, with an error that does not quote the password.
    let started = Instant::now();
    let err = RedisStore::builder(url.as_str())
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(10));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");

    // Lazy connect works, and the layer degrades to misses.
    let store = RedisStore::builder(url.as_str())
        .timeout(Duration::from_millis(200))
        .connect_lazy()
        .expect("a valid URL");
    assert!(!format!("{store:?}").contains("s3cret"));
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::new(Arc::new(store));
    let service = layer.layer(provider(&sim, KEY));
    for _ in 0..3 {
        let response = service
            .clone()
            .oneshot(request("no redis"))
            .await
            .expect("answer without Redis");
        assert_eq!(response.meta.cache, CacheStatus::Miss);
    }
    assert_eq!(upstream_calls(&sim), 3);
    assert!(layer.stats().errors >= 3);

    // A malformed URL is a configuration error.
    let err = RedisStore::builder("not a url")
        .connect_lazy()
        .expect_err("bad URL");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
}

#[test]
fn a_lazy_store_is_built_outside_any_runtime() {
    let Some(server) = RedisServer::start("a_lazy_store_is_built_outside_any_runtime") else {
        return;
    };
    // As a synchronous builder (the facade's) would: no Tokio runtime here.
    let store = RedisStore::builder(server.url())
        .prefix("test:")
        .connect_lazy()
        .expect("a valid URL");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        store
            .put(&key(9), Bytes::from_static(b"nine"), None)
            .await
            .expect("put");
        assert_eq!(
            store.get(&key(9)).await.expect("get").as_deref(),
            Some(&b"nine"[..])
        );
    });
}
