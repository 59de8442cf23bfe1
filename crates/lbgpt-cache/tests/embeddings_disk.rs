//! The embedding cache over the disk store: vectors persist across store instances (a
//! restarted process), one file per input.

mod common;

use common::embedding::{assert_answers, embed, received_inputs, strings};
use common::{entry_files, provider, sim, KEY};
use lbgpt_cache::{CacheConfig, DiskStore, EmbeddingCacheLayer};
use lbgpt_core::CacheStatus;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};

fn layer_on(dir: &Path) -> EmbeddingCacheLayer {
    EmbeddingCacheLayer::with_config(
        Arc::new(DiskStore::open(dir).expect("opens")),
        CacheConfig::new().namespace("disk-test"),
    )
}

#[tokio::test]
async fn vectors_persist_across_store_instances() {
    let sim = sim(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("temp dir");

    {
        let layer = layer_on(dir.path());
        let service = layer.layer(provider(&sim, KEY));
        let answer = service
            .oneshot(embed(&["kept", "also kept", "kept"]))
            .await
            .expect("answer");
        assert_answers(&answer, &["kept", "also kept", "kept"]);
        assert_eq!(layer.stats().stores, 2);
    }
    assert_eq!(entry_files(dir.path()), 2, "one file per distinct input");

    // A new store instance on the same directory, as after a restart.
    let layer = layer_on(dir.path());
    let service = layer.layer(provider(&sim, KEY));
    let answer = service
        .clone()
        .oneshot(embed(&["new", "also kept", "kept"]))
        .await
        .expect("answer");
    assert_answers(&answer, &["new", "also kept", "kept"]);
    assert_eq!(
        answer.meta.cache,
        CacheStatus::Partial { hits: 2, misses: 1 }
    );
    assert_eq!(
        received_inputs(&sim),
        vec![strings(&["kept", "also kept"]), strings(&["new"])]
    );
    assert_eq!(entry_files(dir.path()), 3);

    let hit = service
        .oneshot(embed(&["kept", "new"]))
        .await
        .expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_answers(&hit, &["kept", "new"]);
    assert_eq!(received_inputs(&sim).len(), 2);
}

#[tokio::test]
async fn an_unreadable_entry_is_a_miss_and_is_replaced() {
    let sim = sim(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let layer = layer_on(dir.path());
    let service = layer.layer(provider(&sim, KEY));
    service
        .clone()
        .oneshot(embed(&["fine", "to be broken"]))
        .await
        .expect("answer");

    // Store a valid entry holding two embeddings under the key of one input.
    let keys = layer.keys_for(&embed(&["fine", "to be broken"]));
    let whole = serde_json::to_vec(&serde_json::json!({
        "object": "list", "model": "m",
        "data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [2.0]}],
    }))
    .expect("json");
    layer
        .store()
        .put(&keys[1], whole.into(), None)
        .await
        .expect("put");

    let answer = service
        .clone()
        .oneshot(embed(&["fine", "to be broken"]))
        .await
        .expect("answer");
    assert_answers(&answer, &["fine", "to be broken"]);
    assert_eq!(
        answer.meta.cache,
        CacheStatus::Partial { hits: 1, misses: 1 }
    );
    assert_eq!(received_inputs(&sim)[1..], [strings(&["to be broken"])]);
    assert!(layer.stats().errors >= 1, "the bad entry was counted");
    let again = service
        .oneshot(embed(&["to be broken"]))
        .await
        .expect("answer");
    assert_eq!(
        again.meta.cache,
        CacheStatus::Exact,
        "the entry was replaced"
    );
}
