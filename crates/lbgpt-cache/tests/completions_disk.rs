//! Legacy completions over the disk store: answers persist across store instances (a
//! restarted process) beside chat answers in one directory, and an unreadable entry is a miss
//! that the next answer replaces.

mod common;

use common::completion::{assert_completes, complete, received_prompts, wire};
use common::{entry_files, provider, request, sim, upstream_calls, KEY};
use lbgpt_cache::{CacheConfig, CacheLayer, DiskStore};
use lbgpt_core::CacheStatus;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};

fn layer_on(dir: &Path) -> CacheLayer {
    CacheLayer::with_config(
        Arc::new(DiskStore::open(dir).expect("opens")),
        CacheConfig::new().namespace("disk-test"),
    )
}

#[tokio::test]
async fn answers_persist_across_store_instances() {
    let sim = sim(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kept = complete("kept on disk");
    let both = complete(vec!["kept", "together"]).n(2);

    let first = {
        let layer = layer_on(dir.path());
        let service = layer.layer(provider(&sim, KEY));
        let first = service.clone().oneshot(kept.clone()).await.expect("answer");
        service.clone().oneshot(both.clone()).await.expect("answer");
        service
            .oneshot(request("a chat beside"))
            .await
            .expect("chat");
        assert_eq!(layer.stats().stores, 3);
        first
    };
    assert_eq!(entry_files(dir.path()), 3, "one file per answer");
    assert_eq!(upstream_calls(&sim), 3);

    // A new store instance on the same directory, as after a restart.
    let layer = layer_on(dir.path());
    let service = layer.layer(provider(&sim, KEY));
    let hit = service.clone().oneshot(kept.clone()).await.expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(hit.meta.attempts, 0);
    assert_eq!(wire(&hit), wire(&first));
    let hit = service.clone().oneshot(both.clone()).await.expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_completes(&hit, &both);
    let chat = service
        .clone()
        .oneshot(request("a chat beside"))
        .await
        .expect("chat");
    assert_eq!(chat.meta.cache, CacheStatus::Exact);
    assert_eq!(upstream_calls(&sim), 3, "the simulator was not asked again");

    // A prompt not asked before still goes upstream.
    let new = complete("not on disk yet");
    let answer = service.oneshot(new.clone()).await.expect("answer");
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_completes(&answer, &new);
    assert_eq!(
        received_prompts(&sim).last(),
        Some(&json!("not on disk yet"))
    );
    assert_eq!(entry_files(dir.path()), 4);
}

#[tokio::test]
async fn an_unreadable_entry_is_a_miss_and_is_replaced() {
    let sim = sim(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let layer = layer_on(dir.path());
    let service = layer.layer(provider(&sim, KEY));
    let request = complete("to be broken");

    // Under the request's key, a value that is not a completions answer (no `choices`).
    let key = layer.completion_key_for(&request).expect("a key");
    let broken = serde_json::to_vec(&json!({"object": "list", "data": []})).expect("json");
    layer
        .store()
        .put(&key, broken.into(), None)
        .await
        .expect("put");

    let answer = service
        .clone()
        .oneshot(request.clone())
        .await
        .expect("answer");
    assert_eq!(answer.meta.cache, CacheStatus::Miss);
    assert_completes(&answer, &request);
    assert_eq!(upstream_calls(&sim), 1);
    assert!(layer.stats().errors >= 1, "the bad entry was counted");
    let again = service.oneshot(request).await.expect("answer");
    assert_eq!(
        again.meta.cache,
        CacheStatus::Exact,
        "the entry was replaced"
    );
    assert_eq!(upstream_calls(&sim), 1);
}
