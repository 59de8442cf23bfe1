//! `CacheStore::get_many` on every store: one result per key in the order asked (repeats and
//! absent keys included), expired entries absent, nothing asked nothing answered; Redis in
//! several `MGET`s (more keys than one asks for) against a real `redis-server`, and an error
//! for each key when it is down; the trait's default on a store without its own, where one
//! failing key leaves the others' values.

mod common;

use async_trait::async_trait;
use bytes::Bytes;
#[cfg(feature = "redis")]
use common::{free_port, RedisServer};
#[cfg(feature = "redis")]
use lbgpt_cache::RedisStore;
use lbgpt_cache::{CacheKey, CacheStore, DiskStore, MemoryStore, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

fn key(i: u64) -> CacheKey {
    let mut digest = [0x5Au8; 32];
    digest[..8].copy_from_slice(&i.to_le_bytes());
    CacheKey::from_digest(digest)
}

fn value(i: u64) -> Bytes {
    Bytes::from(format!("value {i}"))
}

/// The values `get_many` found, `None` for absent keys; panics on an error.
async fn values(store: &dyn CacheStore, keys: &[u64]) -> Vec<Option<Bytes>> {
    let keys: Vec<CacheKey> = keys.iter().map(|&i| key(i)).collect();
    store
        .get_many(&keys)
        .await
        .into_iter()
        .map(|found| found.expect("no store error"))
        .collect()
}

/// Stores 1, 2 and 3, then asks for them out of order with repeats and absent keys.
async fn answers_each_key_in_order(store: &dyn CacheStore) {
    for i in 1..=3 {
        store.put(&key(i), value(i), None).await.expect("put");
    }
    assert_eq!(
        values(store, &[3, 9, 1, 1, 2, 8]).await,
        vec![
            Some(value(3)),
            None,
            Some(value(1)),
            Some(value(1)),
            Some(value(2)),
            None
        ]
    );
    assert!(store.get_many(&[]).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn memory_store_answers_each_key_in_order_without_expired_entries() {
    let store = MemoryStore::new();
    answers_each_key_in_order(&store).await;
    store
        .put(&key(4), value(4), Some(Duration::from_secs(10)))
        .await
        .expect("put");
    assert_eq!(values(&store, &[4]).await, vec![Some(value(4))]);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(values(&store, &[4, 1]).await, vec![None, Some(value(1))]);
}

#[tokio::test]
async fn disk_store_answers_each_key_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(dir.path()).expect("disk store");
    answers_each_key_in_order(&store).await;
    // Another instance on the directory reads the same.
    let again = DiskStore::open(dir.path()).expect("disk store");
    assert_eq!(
        values(&again, &[2, 3]).await,
        vec![Some(value(2)), Some(value(3))]
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_answers_each_key_in_order_over_several_mgets() {
    let Some(mut server) = RedisServer::start("get_many redis") else {
        return;
    };
    let store = RedisStore::builder(server.url())
        .prefix("get-many:")
        .connect()
        .await
        .expect("connects");
    answers_each_key_in_order(&store).await;

    // 200 keys (more than one MGET asks for), every third one stored.
    for i in (100..300).step_by(3) {
        store.put(&key(i), value(i), None).await.expect("put");
    }
    let asked: Vec<u64> = (100..300).rev().collect();
    let expected: Vec<Option<Bytes>> = asked
        .iter()
        .map(|&i| ((i - 100) % 3 == 0).then(|| value(i)))
        .collect();
    assert_eq!(values(&store, &asked).await, expected);

    // Down: an error for each key, within the store's timeout.
    server.kill();
    let keys: Vec<CacheKey> = (1..=70).map(key).collect();
    let found = store.get_many(&keys).await;
    assert_eq!(found.len(), 70);
    assert!(found.iter().all(Result::is_err), "{found:?}");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_redis_down_from_the_start_answers_an_error_for_each_key() {
    let store = RedisStore::builder(format!("redis://127.0.0.1:{}/", free_port()))
        .timeout(Duration::from_millis(200))
        .connect_lazy()
        .expect("a valid URL");
    let found = store.get_many(&[key(1), key(2), key(3)]).await;
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(Result::is_err), "{found:?}");
    assert!(store.get_many(&[]).await.is_empty());
}

/// A store with only `get`, `put` and `delete`, so `get_many` is the trait's default; `get`
/// fails for the key it is told to.
#[derive(Default)]
struct MapStore {
    values: Mutex<HashMap<CacheKey, Bytes>>,
    failing: Mutex<Option<CacheKey>>,
}

#[async_trait]
impl CacheStore for MapStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, StoreError> {
        if *self.failing.lock().expect("lock") == Some(*key) {
            return Err(StoreError::backend("this key fails"));
        }
        Ok(self.values.lock().expect("lock").get(key).cloned())
    }

    async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        _ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.values.lock().expect("lock").insert(*key, value);
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.values.lock().expect("lock").remove(key);
        Ok(())
    }
}

#[tokio::test]
async fn the_default_answers_each_key_and_a_failing_key_spoils_no_other() {
    let store = MapStore::default();
    answers_each_key_in_order(&store).await;

    // More keys than the default runs at once, in order.
    for i in 10..110 {
        store.put(&key(i), value(i), None).await.expect("put");
    }
    let asked: Vec<u64> = (0..120).collect();
    let expected: Vec<Option<Bytes>> = asked
        .iter()
        .map(|&i| ((1..=3).contains(&i) || (10..110).contains(&i)).then(|| value(i)))
        .collect();
    assert_eq!(values(&store, &asked).await, expected);

    *store.failing.lock().expect("lock") = Some(key(2));
    let found = store.get_many(&[key(1), key(2), key(3)]).await;
    assert_eq!(found[0].as_ref().expect("1 answers"), &Some(value(1)));
    assert!(matches!(&found[1], Err(StoreError::Backend(message)) if message == "this key fails"));
    assert_eq!(found[2].as_ref().expect("3 answers"), &Some(value(3)));
}
