//! [`DiskStore`]: one file per entry in a directory; crash-safe and shared by processes.

use super::entry_file::{self, Decoded};
use super::memory::shorter;
use super::{CacheStore, StoreError};
use crate::CacheKey;
use bytes::Bytes;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Temporary files older than this are left over by killed writers and removed on open.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Numbers temporary files within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A persistent store: one file per entry under a directory, kept across restarts and safe to
/// share between processes on one machine.
///
/// Layout: `DIR/v1/<first two hex digits>/<64 hex digits>` for entries (the key's text form,
/// fanned out over 256 subdirectories) and `DIR/tmp/` for writes in progress.
///
/// **Crash safety.** A write goes to a new temporary file in `DIR/tmp/`, which is flushed to
/// disk (`fsync`, unless [`durable(false)`](DiskStoreBuilder::durable)) and then renamed over
/// the entry's path; the rename is atomic, so readers see the old file or the new one, never a
/// mix, and a writer killed at any point leaves at most a temporary file that is never read
/// (and is removed by a later [`open`](DiskStore::open) once an hour old). Every entry file
/// also carries its key, length, expiry and a SHA-256 checksum; a file that fails a check
/// (a torn write on a file system without atomic rename, disk corruption, a file copied to
/// the wrong name) is a miss, never a corrupt answer. The format is described in
/// `docs/cache.md`.
///
/// **Processes.** Any number of processes may read and write one directory at once: each
/// writer uses its own temporary file names, and the last rename of a key wins.
///
/// **TTL.** The expiry is an absolute wall-clock time in the file's header, so every process
/// agrees on it. Expired entries are misses; they are replaced by the next write of their key
/// or removed by [`purge`](DiskStore::purge). The store has no size bound: purge it, or
/// delete the directory, to reclaim space.
///
/// ```no_run
/// use lbgpt_cache::{CacheLayer, DiskStore};
/// use std::sync::Arc;
///
/// # fn main() -> Result<(), lbgpt_cache::StoreError> {
/// let store = DiskStore::open(".lbgpt-cache")?;
/// let layer = CacheLayer::new(Arc::new(store));
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DiskStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    entries: PathBuf,
    temp: PathBuf,
    durable: bool,
    ttl: Option<Duration>,
}

/// What [`DiskStore::purge`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Whole entries whose TTL had passed.
    pub expired: u64,
    /// Entry files that failed their checks.
    pub corrupt: u64,
    /// Entries kept.
    pub kept: u64,
}

impl DiskStore {
    /// Opens (creating if needed) a store in `dir` with the defaults: durable writes, no TTL
    /// beyond what `put` asks for.
    ///
    /// Fails with [`StoreError::Config`] when the directory cannot be created or written.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::builder(dir).open()
    }

    /// A builder for a store in `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> DiskStoreBuilder {
        DiskStoreBuilder {
            dir: dir.into(),
            durable: true,
            ttl: None,
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.root
    }

    /// The file that holds (or would hold) the entry of `key`.
    pub fn path_of(&self, key: &CacheKey) -> PathBuf {
        self.inner.path_of(key)
    }

    /// Removes expired entries and files that fail their checks, and reports what it did.
    /// Safe while other processes use the directory (an entry rewritten meanwhile may be
    /// removed too; that costs one miss).
    pub async fn purge(&self) -> Result<PurgeReport, StoreError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.purge()).await
    }
}

/// Builds a [`DiskStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DiskStoreBuilder {
    dir: PathBuf,
    durable: bool,
    ttl: Option<Duration>,
}

impl DiskStoreBuilder {
    /// Whether each write is flushed to disk (`fsync` of the file and of its directory)
    /// before it counts as stored (default true). Without it a power loss may lose recent
    /// entries (never serve a corrupt one: the checks still apply); a killed process loses
    /// nothing either way.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The longest time an entry is served after it was stored, whatever TTL `put` asks for
    /// (the shorter of the two applies).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Creates the directories and removes temporary files left over by killed writers more
    /// than an hour ago.
    pub fn open(self) -> Result<DiskStore, StoreError> {
        let entries = self.dir.join("v1");
        let temp = self.dir.join("tmp");
        for dir in [&entries, &temp] {
            fs::create_dir_all(dir).map_err(|err| {
                StoreError::Config(format!(
                    "cannot create the cache directory {}: {err}",
                    dir.display()
                ))
            })?;
        }
        remove_stale_temps(&temp);
        Ok(DiskStore {
            inner: Arc::new(Inner {
                root: self.dir,
                entries,
                temp,
                durable: self.durable,
                ttl: self.ttl,
            }),
        })
    }
}

impl Inner {
    fn path_of(&self, key: &CacheKey) -> PathBuf {
        let hex = key.hex();
        self.entries.join(&hex[..2]).join(hex)
    }

    fn read(&self, key: &CacheKey) -> Result<Option<Bytes>, StoreError> {
        let path = self.path_of(key);
        let file = match fs::read(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        match entry_file::decode(file, key.digest(), now_ms()) {
            Decoded::Valid(payload) => Ok(Some(payload)),
            Decoded::Expired => Ok(None),
            Decoded::Corrupt(reason) => {
                tracing::warn!(
                    path = %path.display(),
                    reason,
                    "disk cache entry failed its checks; treated as a miss"
                );
                Ok(None)
            }
        }
    }

    fn write(&self, key: &CacheKey, value: &[u8], ttl: Option<Duration>) -> io::Result<()> {
        let expires_at = match shorter(ttl, self.ttl) {
            None => 0,
            Some(ttl) => {
                let ttl_ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
                now_ms().saturating_add(ttl_ms).max(1)
            }
        };
        let contents = entry_file::encode(key.digest(), expires_at, value);
        let hex = key.hex();
        let temp = self.temp.join(format!(
            "{hex}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.write_then_rename(&temp, &hex, &contents);
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn write_then_rename(&self, temp: &Path, hex: &str, contents: &[u8]) -> io::Result<()> {
        let mut file = File::create(temp)?;
        file.write_all(contents)?;
        if self.durable {
            file.sync_data()?;
        }
        drop(file);
        let shard = self.entries.join(&hex[..2]);
        let target = shard.join(hex);
        match fs::rename(temp, &target) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&shard)?;
                fs::rename(temp, &target)?;
            }
            other => other?,
        }
        if self.durable {
            // Makes the rename itself durable.
            File::open(&shard)?.sync_all()?;
        }
        Ok(())
    }

    fn remove(&self, key: &CacheKey) -> io::Result<()> {
        match fs::remove_file(self.path_of(key)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    fn purge(&self) -> Result<PurgeReport, StoreError> {
        remove_stale_temps(&self.temp);
        let mut report = PurgeReport::default();
        let now = now_ms();
        for shard in fs::read_dir(&self.entries)? {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard)? {
                let path = entry?.path();
                let Some(digest) = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .and_then(parse_hex_digest)
                else {
                    continue;
                };
                let file = match fs::read(&path) {
                    Ok(file) => file,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err.into()),
                };
                let counter = match entry_file::decode(file, &digest, now) {
                    Decoded::Valid(_) => {
                        report.kept += 1;
                        continue;
                    }
                    Decoded::Expired => &mut report.expired,
                    Decoded::Corrupt(_) => &mut report.corrupt,
                };
                match fs::remove_file(&path) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err.into()),
                    _ => *counter += 1,
                }
            }
        }
        Ok(report)
    }
}

/// Removes temporary files older than [`STALE_TEMP_AGE`]; errors are ignored (another process
/// may be removing them too).
fn remove_stale_temps(temp: &Path) {
    let Ok(entries) = fs::read_dir(temp) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn parse_hex_digest(name: &str) -> Option<[u8; 32]> {
    if name.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (index, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(name.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(digest)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Runs file-system work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| StoreError::backend(format!("disk cache task failed: {err}")))?
}

#[async_trait::async_trait]
impl CacheStore for DiskStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let key = *key;
        blocking(move || inner.read(&key)).await
    }

    /// Every key in one blocking task (one file read after the other), instead of a task per
    /// key.
    async fn get_many(&self, keys: &[CacheKey]) -> Vec<Result<Option<Bytes>, StoreError>> {
        let inner = Arc::clone(&self.inner);
        let owned = keys.to_vec();
        let count = keys.len();
        match blocking(move || Ok(owned.iter().map(|key| inner.read(key)).collect())).await {
            Ok(values) => values,
            Err(err) => StoreError::for_each_key(err, count),
        }
    }

    async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let key = *key;
        blocking(move || Ok(inner.write(&key, &value, ttl)?)).await
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let key = *key;
        blocking(move || Ok(inner.remove(&key)?)).await
    }

    fn name(&self) -> &str {
        "disk"
    }
}
