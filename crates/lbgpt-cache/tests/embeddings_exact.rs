//! Stored vectors come back exactly: through the real OpenAI service, on the memory, disk and
//! Redis stores, a hit gives the very f32 bits of the provider's answer (awkward values such
//! as 1e-45 and -0.0 from a fixed answer on loopback; the simulator's 1536-dimension
//! vectors), and a base64 answer's text byte for byte (padded or not). Entries written by the
//! previous version (format version 1, JSON) are still hits; a binary entry of an unknown
//! version is a miss, counted, and replaced.

mod common;

use common::embedding::{embed, received_inputs, strings};
use common::fixed_answer::FixedAnswer;
use common::{provider, sim, KEY};
use lbgpt_cache::{embedding_entry, CacheStore, DiskStore, EmbeddingCacheLayer, MemoryStore};
use lbgpt_core::{CacheStatus, EmbeddingRequest, EmbeddingResponse, EmbeddingVector};
use lbgpt_openai::{OpenAiConfig, OpenAiService};
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};

/// The floats of the fixed answer, as the provider writes them.
const AWKWARD_FLOATS: &str = "1e-45, -0.0, 0.0, -1e-45, 7.006492e-45, 1.1754942e-38, \
     1.17549435e-38, 3.4028235e38, -3.4028235e38, 0.1, 0.33333334, 16777217, 1e-46, \
     0.123456789, 2.5e-45, -7.0e-42";

fn fixed_floats_body() -> String {
    format!(
        r#"{{"object": "list", "model": "fixed-model", "data": [{{"object": "embedding",
            "index": 0, "embedding": [{AWKWARD_FLOATS}]}}],
            "usage": {{"prompt_tokens": 1, "total_tokens": 1}}}}"#
    )
}

fn fixed_provider(server: &FixedAnswer) -> OpenAiService {
    OpenAiService::new(
        OpenAiConfig::new()
            .api_key(KEY)
            .base_url(server.base_url())
            .no_proxy()
            .name("fixed"),
    )
    .expect("valid provider config")
}

/// The bits of every float of every embedding, in order.
fn bits(answer: &EmbeddingResponse) -> Vec<Vec<u32>> {
    answer
        .data
        .iter()
        .map(|embedding| {
            embedding
                .embedding
                .as_floats()
                .expect("floats")
                .iter()
                .map(|x| x.to_bits())
                .collect()
        })
        .collect()
}

/// The stores a test runs on: memory, disk, and Redis when `redis-server` is installed.
struct Stores {
    stores: Vec<(&'static str, Arc<dyn CacheStore>)>,
    _dir: tempfile::TempDir,
    _redis: Option<common::RedisServer>,
}

async fn stores(test: &str) -> Stores {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = redis_store(test).await;
    let local: [(&'static str, Arc<dyn CacheStore>); 2] = [
        ("memory", Arc::new(MemoryStore::new())),
        (
            "disk",
            Arc::new(DiskStore::open(dir.path()).expect("disk store")),
        ),
    ];
    let stores = local
        .into_iter()
        .chain(
            redis
                .as_ref()
                .map(|(_, store)| ("redis", Arc::clone(store))),
        )
        .collect();
    Stores {
        stores,
        _dir: dir,
        _redis: redis.map(|(server, _)| server),
    }
}

/// A Redis store on a fresh `redis-server`, when it is installed.
#[cfg(feature = "redis")]
async fn redis_store(test: &str) -> Option<(common::RedisServer, Arc<dyn CacheStore>)> {
    let server = common::RedisServer::start(test)?;
    let store = lbgpt_cache::RedisStore::connect(server.url())
        .await
        .expect("connects to the test redis-server");
    Some((server, Arc::new(store)))
}

#[cfg(not(feature = "redis"))]
async fn redis_store(_test: &str) -> Option<(common::RedisServer, Arc<dyn CacheStore>)> {
    None
}

#[tokio::test]
async fn awkward_floats_come_back_with_the_providers_exact_bits() {
    let server = FixedAnswer::start(&fixed_floats_body()).await;
    let stores = stores("awkward_floats_come_back_with_the_providers_exact_bits").await;
    for (name, store) in &stores.stores {
        let layer = EmbeddingCacheLayer::new(Arc::clone(store));
        let service = layer.layer(fixed_provider(&server));
        let request = EmbeddingRequest::new("fixed-model", vec![format!("awkward on {name}")]);
        let served = server.served();

        let miss = service
            .clone()
            .oneshot(request.clone())
            .await
            .expect("miss");
        assert_eq!(miss.meta.cache, CacheStatus::Miss, "{name}");
        let hit = service.oneshot(request).await.expect("hit");
        assert_eq!(hit.meta.cache, CacheStatus::Exact, "{name}");
        assert_eq!(server.served(), served + 1, "{name}: the hit stayed local");

        assert_eq!(bits(&hit), bits(&miss), "{name}: bit for bit");
        let got = &bits(&hit)[0];
        assert_eq!(got.len(), 16, "{name}");
        assert_eq!(got[0], 0x0000_0001, "{name}: 1e-45, the smallest subnormal");
        assert_eq!(got[1], 0x8000_0000, "{name}: -0.0 keeps its sign");
        assert_eq!(got[3], 0x8000_0001, "{name}: -1e-45");
        assert_eq!(got[7], f32::MAX.to_bits(), "{name}");
        assert_eq!(hit.model, "fixed-model", "{name}");
        assert_eq!(hit.data[0].object, "embedding", "{name}");
    }
}

#[tokio::test]
async fn the_simulators_vectors_come_back_bit_for_bit_as_floats_and_as_base64() {
    let sim = sim(Duration::ZERO).await;
    let stores = stores("the_simulators_vectors_come_back_bit_for_bit").await;
    let texts = ["first text", "second text", "first text", "a third"];
    for (name, store) in &stores.stores {
        let layer = EmbeddingCacheLayer::new(Arc::clone(store));
        let service = layer.layer(provider(&sim, KEY));
        let floats = embed(&texts).dimensions(1536);
        let base64 = floats.clone().encoding_format("base64");

        for request in [floats, base64] {
            let miss = service
                .clone()
                .oneshot(request.clone())
                .await
                .expect("miss");
            let hit = service.clone().oneshot(request.clone()).await.expect("hit");
            assert_eq!(miss.meta.cache, CacheStatus::Miss, "{name}");
            assert_eq!(hit.meta.cache, CacheStatus::Exact, "{name}");
            assert_eq!(hit.data, miss.data, "{name}: the same answer");
            for (embedding, text) in hit.data.iter().zip(texts) {
                let expected: Vec<u32> = lbgpt_sim::expected_embedding_with_dimensions(text, 1536)
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                let floats = embedding.embedding.to_floats().expect("a vector");
                let got: Vec<u32> = floats.iter().map(|x| x.to_bits()).collect();
                assert_eq!(got, expected, "{name}: {text:?}");
            }
            if request.encoding_format.is_some() {
                // Base64 is served as the provider's text: compare the strings.
                for (got, sent) in hit.data.iter().zip(&miss.data) {
                    match (&got.embedding, &sent.embedding) {
                        (EmbeddingVector::Base64(got), EmbeddingVector::Base64(sent)) => {
                            assert_eq!(got.as_bytes(), sent.as_bytes(), "{name}")
                        }
                        other => panic!("{name}: expected base64 text, got {other:?}"),
                    }
                }
            } else {
                assert_eq!(bits(&hit), bits(&miss), "{name}");
            }
        }
        assert_eq!(layer.stats().errors, 0, "{name}");
    }
}

#[tokio::test]
async fn unpadded_base64_is_served_as_the_provider_wrote_it() {
    // 1.0 and -0.5 as little-endian f32s, without the trailing `=`.
    let body = r#"{"object": "list", "model": "fixed-model", "data": [{"object": "embedding",
        "index": 0, "embedding": "AACAPwAAAL8"}], "usage": {"prompt_tokens": 1, "total_tokens": 1}}"#;
    let server = FixedAnswer::start(body).await;
    let stores = stores("unpadded_base64_is_served_as_the_provider_wrote_it").await;
    for (name, store) in &stores.stores {
        let layer = EmbeddingCacheLayer::new(Arc::clone(store));
        let service = layer.layer(fixed_provider(&server));
        let request = EmbeddingRequest::new("fixed-model", vec![format!("unpadded on {name}")])
            .encoding_format("base64");
        service
            .clone()
            .oneshot(request.clone())
            .await
            .expect("miss");
        let hit = service.oneshot(request).await.expect("hit");
        assert_eq!(hit.meta.cache, CacheStatus::Exact, "{name}");
        assert_eq!(
            hit.data[0].embedding,
            EmbeddingVector::Base64("AACAPwAAAL8".into()),
            "{name}"
        );
        assert_eq!(
            hit.data[0].embedding.to_floats().expect("decodes"),
            vec![1.0, -0.5]
        );
    }
}

#[tokio::test]
async fn version_1_entries_are_hits_and_unknown_versions_are_replaced() {
    let sim = sim(Duration::ZERO).await;
    let stores = stores("version_1_entries_are_hits_and_unknown_versions_are_replaced").await;
    for (name, store) in &stores.stores {
        let layer = EmbeddingCacheLayer::new(Arc::clone(store));
        let service = layer.layer(provider(&sim, KEY));
        let keys = layer.keys_for(&embed(&["written before", "written later"]));
        let calls = received_inputs(&sim).len();

        // What the previous version stored: the answer's JSON.
        let old = serde_json::json!({
            "object": "list", "model": "old-model",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.0, 1e-45]}],
        });
        let old = serde_json::to_vec(&old).expect("json");
        store.put(&keys[0], old.into(), None).await.expect("put");
        // A binary entry of a version this one does not know.
        let mut newer = embedding_entry::encode(
            &serde_json::from_value(serde_json::json!({
                "model": "m", "data": [{"index": 0, "embedding": [9.0]}]
            }))
            .expect("answer"),
        )
        .expect("encodes")
        .to_vec();
        newer[8] = 3;
        store.put(&keys[1], newer.into(), None).await.expect("put");

        let answer = service
            .clone()
            .oneshot(embed(&["written before", "written later"]))
            .await
            .expect("answer");
        assert_eq!(
            answer.meta.cache,
            CacheStatus::Partial { hits: 1, misses: 1 },
            "{name}"
        );
        let old_bits: Vec<u32> = [0.5f32, -0.0, 1e-45].iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits(&answer)[0], old_bits, "{name}: the version 1 entry");
        assert_eq!(
            answer.data[1].embedding.as_floats(),
            Some(&lbgpt_sim::expected_embedding("written later")[..]),
            "{name}: never the unknown entry's vector"
        );
        assert_eq!(
            received_inputs(&sim)[calls..],
            [strings(&["written later"])],
            "{name}"
        );
        assert_eq!(layer.stats().errors, 1, "{name}: the unknown entry");

        // The unknown entry was replaced by a version 2 one; the version 1 entry stays.
        let replaced = store.get(&keys[1]).await.expect("get").expect("stored");
        assert!(replaced.starts_with(b"LBGPTEMB\x02"), "{name}");
        let kept = store.get(&keys[0]).await.expect("get").expect("stored");
        assert!(kept.starts_with(b"{"), "{name}");
    }
}
