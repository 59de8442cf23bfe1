//! The embedding cache over the Redis store, against a real `redis-server` on a loopback
//! port: two clients (two processes' worth of connections) share vectors, and a Redis that
//! is down degrades to misses.
//!
//! Skipped with a loud message when `redis-server` is not installed, except under CI (`CI`
//! set), where that fails.

#![cfg(feature = "redis")]

mod common;

use common::embedding::{assert_answers, embed, received_inputs, strings};
use common::{free_port, provider, sim, RedisServer, KEY};
use lbgpt_cache::{embedding_entry, CacheStore, EmbeddingCacheLayer, RedisStore};
use lbgpt_core::CacheStatus;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .prefix("emb-test:")
        .connect()
        .await
        .expect("connects to the test redis-server")
}

#[tokio::test]
async fn two_clients_share_vectors_per_input() {
    let Some(server) = RedisServer::start("embeddings two_clients_share_vectors_per_input") else {
        return;
    };
    let sim = sim(Duration::ZERO).await;
    let layer_a = EmbeddingCacheLayer::new(Arc::new(connect(&server).await));
    let layer_b = EmbeddingCacheLayer::new(Arc::new(connect(&server).await));
    let a = layer_a.layer(provider(&sim, KEY));
    let b = layer_b.layer(provider(&sim, KEY));

    let first = a
        .oneshot(embed(&["red", "green", "red"]))
        .await
        .expect("answer");
    assert_answers(&first, &["red", "green", "red"]);
    let second = b
        .clone()
        .oneshot(embed(&["blue", "green", "red"]))
        .await
        .expect("answer");
    assert_answers(&second, &["blue", "green", "red"]);
    assert_eq!(
        second.meta.cache,
        CacheStatus::Partial { hits: 2, misses: 1 }
    );
    assert_eq!(
        received_inputs(&sim),
        vec![strings(&["red", "green"]), strings(&["blue"])]
    );
    assert_eq!(layer_a.stats().stores, 2);
    assert_eq!((layer_b.stats().hits, layer_b.stats().stores), (2, 1));

    // Each vector is under PREFIX + its key, as one input's answer.
    let store = connect(&server).await;
    let keys = layer_a.keys_for(&embed(&["green"]));
    assert_eq!(store.redis_key(&keys[0]), format!("emb-test:{}", keys[0]));
    let raw = store.get(&keys[0]).await.expect("get").expect("stored");
    assert!(
        raw.starts_with(b"LBGPTEMB\x02"),
        "a version 2 embedding entry"
    );
    let stored = embedding_entry::decode(&raw).expect("an embedding entry");
    assert_eq!(stored.data.len(), 1);
    assert_eq!(
        stored.data[0].embedding.as_floats(),
        Some(&lbgpt_sim::expected_embedding("green")[..])
    );

    let hit = b.oneshot(embed(&["red", "blue"])).await.expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(received_inputs(&sim).len(), 2);
}

#[tokio::test]
async fn a_redis_that_is_down_degrades_to_misses() {
    // Nothing listens on this port: every operation fails within the store's timeout.
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let store = RedisStore::builder(url.as_str())
        .timeout(Duration::from_millis(200))
        .connect_lazy()
        .expect("a valid URL");
    let sim = sim(Duration::ZERO).await;
    let layer = EmbeddingCacheLayer::new(Arc::new(store));
    let service = layer.layer(provider(&sim, KEY));
    for _ in 0..2 {
        let answer = service
            .clone()
            .oneshot(embed(&["no", "redis", "no"]))
            .await
            .expect("answered without Redis");
        assert_answers(&answer, &["no", "redis", "no"]);
        assert_eq!(answer.meta.cache, CacheStatus::Miss);
    }
    assert_eq!(
        received_inputs(&sim),
        vec![strings(&["no", "redis"]), strings(&["no", "redis"])]
    );
    let stats = layer.stats();
    assert_eq!(stats.stores, 0);
    assert!(stats.errors >= 4, "{stats:?}");
}
