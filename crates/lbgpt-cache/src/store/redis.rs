//! [`RedisStore`]: entries in Redis, shared by processes on many machines.

use super::memory::shorter;
use super::{CacheStore, StoreError};
use crate::CacheKey;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Most keys one `MGET` of [`RedisStore::get_many`](CacheStore::get_many) asks for: a
/// batch of 1536-dimension embeddings (about 6 KB each) answers well within the timeout.
const MGET_KEYS: usize = 64;

/// A store in Redis: `SET key value [PX ttl]`, `GET`, `MGET` (many keys at once), `DEL`,
/// under a key prefix.
///
/// Keys are `PREFIX` followed by the key's text, e.g. `lbgpt:v1:3f2a…` with the default
/// prefix `lbgpt:`. TTLs are Redis expirations (`PX`, milliseconds), so every client agrees on
/// them.
///
/// One [`ConnectionManager`] per store: a multiplexed connection that all clones of the store
/// share (pipelining many requests at once) and that reconnects by itself after an error.
/// Every operation has a short timeout (default 250 ms): a slow or unreachable server makes
/// the operation fail fast, which the cache layer turns into a miss with a warning, so a Redis
/// outage never fails a request.
///
/// ```no_run
/// use lbgpt_cache::{CacheLayer, RedisStore};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// # async fn demo() -> Result<(), lbgpt_cache::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0")
///     .prefix("myproject:")
///     .timeout(Duration::from_millis(100))
///     .connect()
///     .await?;
/// let layer = CacheLayer::new(Arc::new(store));
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Set up on first use, inside the runtime that uses the store.
    connection: OnceLock<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    ttl: Option<Duration>,
}

impl fmt::Debug for RedisStore {
    // The URL is not kept (it may hold a password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The default timeout of one operation.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "lbgpt:";

    /// A builder for a store at `url` (`redis://[user:password@]host:port/db`,
    /// `rediss://` for TLS is not compiled in).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            ttl: None,
        }
    }

    /// Connects to `url` with the defaults; see [`RedisStoreBuilder::connect`].
    pub async fn connect(url: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// The Redis key of `key`.
    pub fn redis_key(&self, key: &CacheKey) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// The shared connection, set up on first use (without contacting the server: the
    /// manager connects when the first command is sent, and again after an error).
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(connection) = self.inner.connection.get() {
            return Ok(connection.clone());
        }
        let connection = ConnectionManager::new_lazy_with_config(
            self.inner.client.clone(),
            self.inner.config.clone(),
        )
        .map_err(|err| backend_error(&err))?;
        // Two first uses at once may both build one; the first stored wins, the other is
        // dropped unused (it had not connected yet).
        Ok(self.inner.connection.get_or_init(|| connection).clone())
    }

    /// Runs one command within the timeout.
    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection()?;
        let operation = async move { command.query_async::<T>(&mut connection).await };
        match tokio::time::timeout(self.inner.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(backend_error(&err)),
            Err(_) => Err(StoreError::Timeout(self.inner.timeout)),
        }
    }
}

/// A [`StoreError`] describing a Redis error without quoting any URL.
fn backend_error(err: &redis::RedisError) -> StoreError {
    StoreError::backend(format!("redis: {err}"))
}

/// Builds a [`RedisStore`].
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    ttl: Option<Duration>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every Redis key (default `lbgpt:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one operation (and one connection attempt) may take (default 250 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest time an entry is served after it was stored, whatever TTL `put` asks for
    /// (the shorter of the two applies).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Connects and checks the server answers (`PING`): fails with [`StoreError::Config`] on
    /// a malformed URL and with another [`StoreError`] when the server cannot be reached in
    /// time. Must run inside a Tokio runtime.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.connect_lazy()?;
        store.run::<String>(redis::cmd("PING")).await?;
        Ok(store)
    }

    /// Builds the store without contacting the server: it connects on first use, so a server
    /// that is down at start only causes misses (with warnings) until it is back. Fails only
    /// on a malformed URL. Needs no runtime (the store must be used inside a Tokio runtime).
    pub fn connect_lazy(self) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|err| StoreError::Config(format!("invalid Redis URL: {err}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                config,
                connection: OnceLock::new(),
                prefix: self.prefix,
                timeout: self.timeout,
                ttl: self.ttl,
            }),
        })
    }
}

#[async_trait::async_trait]
impl CacheStore for RedisStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, StoreError> {
        let mut command = redis::cmd("GET");
        command.arg(self.redis_key(key));
        let value = self.run::<Option<Vec<u8>>>(command).await?;
        Ok(value.map(Bytes::from))
    }

    /// One `MGET` per 64 keys, all sent at once on the multiplexed connection,
    /// each within the timeout; a failed `MGET` is an error for each of its keys.
    async fn get_many(&self, keys: &[CacheKey]) -> Vec<Result<Option<Bytes>, StoreError>> {
        let batches = keys.chunks(MGET_KEYS).map(|batch| async move {
            let mut command = redis::cmd("MGET");
            for key in batch {
                command.arg(self.redis_key(key));
            }
            match self.run::<Vec<Option<Vec<u8>>>>(command).await {
                Ok(values) if values.len() == batch.len() => values
                    .into_iter()
                    .map(|value| Ok(value.map(Bytes::from)))
                    .collect(),
                Ok(values) => StoreError::for_each_key(
                    StoreError::backend(format!(
                        "redis: MGET of {} keys answered {} values",
                        batch.len(),
                        values.len()
                    )),
                    batch.len(),
                ),
                Err(err) => StoreError::for_each_key(err, batch.len()),
            }
        });
        futures::future::join_all(batches)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let mut command = redis::cmd("SET");
        command.arg(self.redis_key(key)).arg(value.as_ref());
        if let Some(ttl) = shorter(ttl, self.inner.ttl) {
            let ttl_ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000))
                .unwrap_or(u64::MAX)
                .max(1);
            command.arg("PX").arg(ttl_ms);
        }
        self.run::<()>(command).await
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.redis_key(key));
        self.run::<()>(command).await
    }

    fn name(&self) -> &str {
        "redis"
    }
}
