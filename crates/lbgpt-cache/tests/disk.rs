//! The disk store: persistence across restarts (new instances and new processes), TTL, torn
//! and misplaced files, a writer killed mid-write, and two processes sharing one directory.
//!
//! Some tests run this test binary again as a child process (the ignored test
//! `child_process`, selected by the `LBGPT_CACHE_CHILD_ROLE` environment variable).

mod common;

use bytes::Bytes;
use common::{entry_files, provider, request, sim, upstream_calls, KEY};
use lbgpt_cache::{CacheConfig, CacheKey, CacheLayer, CacheStore, DiskStore};
use lbgpt_core::CacheStatus;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tower::{Layer, ServiceExt};

const ROLE_VAR: &str = "LBGPT_CACHE_CHILD_ROLE";
const DIR_VAR: &str = "LBGPT_CACHE_CHILD_DIR";
const URL_VAR: &str = "LBGPT_CACHE_CHILD_SIM_URL";

fn key(i: u64) -> CacheKey {
    let mut digest = [0x5Au8; 32];
    digest[..8].copy_from_slice(&i.to_le_bytes());
    CacheKey::from_digest(digest)
}

/// The value writer `writer` stores under key `i`: `size` bytes that name both.
fn value(writer: &str, i: u64, size: usize) -> Bytes {
    let unit = format!("[{writer}:{i}]");
    let mut bytes = unit.repeat(size / unit.len() + 1).into_bytes();
    bytes.truncate(size);
    Bytes::from(bytes)
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir.join("tmp"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Runs this test binary's `child_process` test with `role`.
fn spawn_child(role: &str, dir: &Path, sim_url: Option<&str>) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args([
            "child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE_VAR, role)
        .env(DIR_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = sim_url {
        command.env(URL_VAR, url);
    }
    command.spawn().expect("child process starts")
}

/// The `CHILD-RESULT ...` line a child printed.
fn child_result(child: Child) -> String {
    let output = child.wait_with_output().expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    stdout
        .lines()
        .find_map(|line| line.split_once("CHILD-RESULT ").map(|(_, result)| result))
        .unwrap_or_else(|| panic!("no CHILD-RESULT line in: {stdout}"))
        .to_owned()
}

#[tokio::test]
async fn entries_survive_a_new_store_instance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = sim(Duration::ZERO).await;
    {
        let layer = CacheLayer::new(Arc::new(DiskStore::open(dir.path()).expect("open")));
        let service = layer.layer(provider(&sim, KEY));
        for i in 0..5 {
            let response = service
                .clone()
                .oneshot(request(&format!("persist {i}")))
                .await
                .expect("answer");
            assert_eq!(response.meta.cache, CacheStatus::Miss);
        }
        assert_eq!(layer.stats().stores, 5);
    }
    assert_eq!(upstream_calls(&sim), 5);

    let layer = CacheLayer::new(Arc::new(DiskStore::open(dir.path()).expect("reopen")));
    let service = layer.layer(provider(&sim, KEY));
    for i in 0..5 {
        let text = format!("persist {i}");
        let response = service
            .clone()
            .oneshot(request(&text))
            .await
            .expect("answer");
        assert_eq!(response.meta.cache, CacheStatus::Exact);
        assert_eq!(
            response.first_text(),
            Some(lbgpt_sim::expected_answer(&request(&text)))
        );
    }
    assert_eq!(
        upstream_calls(&sim),
        5,
        "the reopened store answered everything"
    );
}

#[tokio::test]
async fn a_new_process_gets_hits_from_the_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = sim(Duration::ZERO).await;
    let layer = CacheLayer::with_config(
        Arc::new(DiskStore::open(dir.path()).expect("open")),
        CacheConfig::new().namespace("rerun"),
    );
    let service = layer.layer(provider(&sim, KEY));
    for i in 0..20 {
        service
            .clone()
            .oneshot(request(&format!("rerun {i}")))
            .await
            .expect("answer");
    }
    assert_eq!(upstream_calls(&sim), 20);

    // Another process runs the same 20 requests with its own store on the same directory.
    let child = spawn_child("rerun", dir.path(), Some(&sim.base_url()));
    let result = tokio::task::spawn_blocking(move || child_result(child))
        .await
        .expect("join");
    assert_eq!(result, "hits=20 misses=0");
    assert_eq!(
        upstream_calls(&sim),
        20,
        "the second process made no upstream call"
    );
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(dir.path()).expect("open");
    let started = Instant::now();
    store
        .put(
            &key(1),
            value("a", 1, 100),
            Some(Duration::from_millis(1500)),
        )
        .await
        .expect("put");
    store
        .put(&key(2), value("a", 2, 100), None)
        .await
        .expect("put");
    let early = store.get(&key(1)).await.expect("get");
    if started.elapsed() < Duration::from_millis(1400) {
        assert_eq!(early, Some(value("a", 1, 100)));
    }
    tokio::time::sleep(Duration::from_millis(1600).saturating_sub(started.elapsed())).await;
    assert_eq!(store.get(&key(1)).await.expect("get"), None, "expired");
    assert_eq!(
        store.get(&key(2)).await.expect("get"),
        Some(value("a", 2, 100))
    );
    // Other processes (here: another instance) agree: the expiry is in the file.
    let other = DiskStore::open(dir.path()).expect("open");
    assert_eq!(other.get(&key(1)).await.expect("get"), None);

    let report = store.purge().await.expect("purge");
    assert_eq!((report.expired, report.corrupt, report.kept), (1, 0, 1));
    assert!(!store.path_of(&key(1)).exists());

    // The store's own TTL caps longer requested ones.
    let capped = DiskStore::builder(dir.path())
        .ttl(Duration::from_millis(200))
        .open()
        .expect("open");
    capped
        .put(&key(3), value("a", 3, 10), Some(Duration::from_secs(3600)))
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(capped.get(&key(3)).await.expect("get"), None);
}

#[tokio::test]
async fn torn_and_misplaced_files_are_misses_never_corrupt_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(dir.path()).expect("open");
    let original = value("w", 1, 10_000);
    store
        .put(&key(1), original.clone(), None)
        .await
        .expect("put");
    let path = store.path_of(&key(1));
    let whole = fs::read(&path).expect("entry file");

    // A torn final file, at many lengths (as left by a file system that does not make the
    // rename atomic, or by a disk fault).
    for len in [0, 1, 40, 87, 88, 89, 5_000, whole.len() - 1] {
        fs::write(&path, &whole[..len]).expect("truncate");
        assert_eq!(store.get(&key(1)).await.expect("get"), None, "length {len}");
    }
    // One flipped bit anywhere in the payload.
    let mut flipped = whole.clone();
    flipped[whole.len() / 2] ^= 0x10;
    fs::write(&path, &flipped).expect("flip");
    assert_eq!(store.get(&key(1)).await.expect("get"), None);
    // Trailing garbage.
    let mut longer = whole.clone();
    longer.extend_from_slice(b"garbage");
    fs::write(&path, &longer).expect("extend");
    assert_eq!(store.get(&key(1)).await.expect("get"), None);
    // A whole entry of one key copied to another key's path.
    fs::write(&path, &whole).expect("restore");
    let other = store.path_of(&key(2));
    fs::create_dir_all(other.parent().expect("shard dir")).expect("shard");
    fs::copy(&path, &other).expect("copy");
    assert_eq!(store.get(&key(2)).await.expect("get"), None);
    assert_eq!(store.get(&key(1)).await.expect("get"), Some(original));

    // A torn temporary file (a writer killed before its rename) is never read.
    let hex = key(3).hex();
    fs::write(
        dir.path().join("tmp").join(format!("{hex}.99999.0.tmp")),
        &whole[..100],
    )
    .expect("torn temp");
    assert_eq!(store.get(&key(3)).await.expect("get"), None);

    let report = store.purge().await.expect("purge");
    assert_eq!((report.corrupt, report.kept), (1, 1));
}

#[tokio::test]
async fn a_torn_entry_is_a_miss_and_the_layer_rewrites_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = sim(Duration::ZERO).await;
    let store = Arc::new(DiskStore::open(dir.path()).expect("open"));
    let layer = CacheLayer::new(store.clone());
    let service = layer.layer(provider(&sim, KEY));
    service
        .clone()
        .oneshot(request("torn"))
        .await
        .expect("answer");
    let path = store.path_of(&layer.key_for(&request("torn")).expect("key"));
    let whole = fs::read(&path).expect("entry");
    fs::write(&path, &whole[..whole.len() - 10]).expect("tear");

    let response = service
        .clone()
        .oneshot(request("torn"))
        .await
        .expect("answer");
    assert_eq!(response.meta.cache, CacheStatus::Miss);
    assert_eq!(
        response.first_text(),
        Some(lbgpt_sim::expected_answer(&request("torn")))
    );
    assert_eq!(upstream_calls(&sim), 2);
    let hit = service.oneshot(request("torn")).await.expect("answer");
    assert_eq!(hit.meta.cache, CacheStatus::Exact);
    assert_eq!(fs::read(&path).expect("entry"), whole, "rewritten whole");
}

#[tokio::test]
async fn old_temporary_files_are_removed_on_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    DiskStore::open(dir.path()).expect("open");
    let old = dir.path().join("tmp").join("old.1.0.tmp");
    let fresh = dir.path().join("tmp").join("fresh.1.1.tmp");
    fs::write(&old, b"partial").expect("old temp");
    fs::write(&fresh, b"partial").expect("fresh temp");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|file| file.set_modified(two_hours_ago))
        .expect("age the temp file");
    DiskStore::open(dir.path()).expect("reopen");
    assert!(!old.exists(), "a temp file two hours old is removed");
    assert!(fresh.exists(), "a recent one may belong to a live writer");
}

#[tokio::test]
async fn a_writer_killed_mid_write_leaves_no_corrupt_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    DiskStore::open(dir.path()).expect("open");
    let mut child = spawn_child("slow-writer", dir.path(), None);
    // Wait until the child has written a few entries and is in the middle of the next one
    // (its temp file exists), then kill it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while entry_files(dir.path()) < 3 || temp_files(dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "the child never started writing");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("kill the writer");
    let _ = child.wait();

    // A new process's view: every entry is either absent or exactly what was written.
    let store = DiskStore::open(dir.path()).expect("reopen");
    let mut whole = 0;
    let written = entry_files(dir.path());
    for i in 0..SLOW_WRITER_KEYS {
        match store.get(&key(i)).await.expect("get") {
            None => {}
            Some(bytes) => {
                assert_eq!(bytes, value("child", i, SLOW_WRITER_SIZE), "key {i}");
                whole += 1;
            }
        }
    }
    assert_eq!(whole, written, "every entry file is whole");
    assert!(whole >= 3);
    eprintln!(
        "killed writer: {whole} whole entries, {} temp files left",
        temp_files(dir.path()).len()
    );
    // The store keeps working on the same directory and keys.
    store
        .put(&key(0), value("parent", 0, 1000), None)
        .await
        .expect("put after the crash");
    assert_eq!(
        store.get(&key(0)).await.expect("get"),
        Some(value("parent", 0, 1000))
    );
}

const SLOW_WRITER_KEYS: u64 = 1_000;
const SLOW_WRITER_SIZE: usize = 4 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(dir.path()).expect("open");
    let child = spawn_child("share", dir.path(), None);

    // Both processes write the same keys with their own values, and read them back, at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_from_child = 0;
    for round in 0..SHARE_ROUNDS {
        for i in 0..SHARE_KEYS {
            if round % 2 == 0 {
                store
                    .put(&key(i), value("parent", i, SHARE_SIZE), None)
                    .await
                    .expect("put");
            }
            if let Some(bytes) = store.get(&key(i)).await.expect("get") {
                if bytes == value("child", i, SHARE_SIZE) {
                    seen_from_child += 1;
                } else {
                    assert_eq!(bytes, value("parent", i, SHARE_SIZE), "key {i}: a mix");
                }
            }
        }
        assert!(Instant::now() < deadline, "too slow");
    }
    let result = tokio::task::spawn_blocking(move || child_result(child))
        .await
        .expect("join");
    let (child_saw_parent, child_mixed) = parse_share_result(&result);
    assert_eq!(child_mixed, 0, "the child read a mixed value");
    eprintln!(
        "parent saw {seen_from_child} child values; child saw {child_saw_parent} parent values"
    );

    // At the end every key holds one whole value of one of the two writers.
    for i in 0..SHARE_KEYS {
        let bytes = store.get(&key(i)).await.expect("get").expect("present");
        assert!(
            bytes == value("parent", i, SHARE_SIZE) || bytes == value("child", i, SHARE_SIZE),
            "key {i}"
        );
    }
    // Entries the child wrote alone are visible here.
    assert_eq!(
        store.get(&key(SHARE_KEYS + 1)).await.expect("get"),
        Some(value("child", SHARE_KEYS + 1, SHARE_SIZE))
    );
}

const SHARE_ROUNDS: u64 = 20;
const SHARE_KEYS: u64 = 50;
const SHARE_SIZE: usize = 64 * 1024;

fn parse_share_result(result: &str) -> (u64, u64) {
    let field = |name: &str| -> u64 {
        result
            .split_whitespace()
            .find_map(|part| part.strip_prefix(name))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {result:?}"))
    };
    (field("saw_parent="), field("mixed="))
}

/// Not a test: the body of the child processes above.
#[test]
#[ignore = "run as a child process by other tests"]
fn child_process() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_VAR).expect("child: directory"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("child runtime");
    let result = runtime.block_on(async move {
        match role.as_str() {
            "rerun" => child_rerun(&dir).await,
            "slow-writer" => child_slow_writer(&dir).await,
            "share" => child_share(&dir).await,
            other => panic!("unknown child role {other}"),
        }
    });
    println!("\nCHILD-RESULT {result}");
}

async fn child_rerun(dir: &Path) -> String {
    let url = std::env::var(URL_VAR).expect("child: simulator URL");
    let layer = CacheLayer::with_config(
        Arc::new(DiskStore::open(dir).expect("open")),
        CacheConfig::new().namespace("rerun"),
    );
    let provider = lbgpt_openai::OpenAiService::new(
        lbgpt_openai::OpenAiConfig::new()
            .api_key(KEY)
            .base_url(url)
            .no_proxy(),
    )
    .expect("provider");
    let service = layer.layer(provider);
    for i in 0..20 {
        let text = format!("rerun {i}");
        let response = service
            .clone()
            .oneshot(request(&text))
            .await
            .expect("answer");
        assert_eq!(
            response.first_text(),
            Some(lbgpt_sim::expected_answer(&request(&text)))
        );
    }
    let stats = layer.stats();
    format!("hits={} misses={}", stats.hits, stats.misses)
}

async fn child_slow_writer(dir: &Path) -> String {
    let store = DiskStore::open(dir).expect("open");
    for i in 0..SLOW_WRITER_KEYS {
        store
            .put(&key(i), value("child", i, SLOW_WRITER_SIZE), None)
            .await
            .expect("put");
    }
    "wrote everything (the parent should have killed this process)".to_owned()
}

async fn child_share(dir: &Path) -> String {
    let store = DiskStore::open(dir).expect("open");
    let mut saw_parent = 0;
    let mut mixed = 0;
    for round in 0..SHARE_ROUNDS {
        for i in 0..SHARE_KEYS {
            if round % 2 == 1 || round == 0 {
                store
                    .put(&key(i), value("child", i, SHARE_SIZE), None)
                    .await
                    .expect("put");
            }
            if let Some(bytes) = store.get(&key(i)).await.expect("get") {
                if bytes == value("parent", i, SHARE_SIZE) {
                    saw_parent += 1;
                } else if bytes != value("child", i, SHARE_SIZE) {
                    mixed += 1;
                }
            }
        }
    }
    store
        .put(
            &key(SHARE_KEYS + 1),
            value("child", SHARE_KEYS + 1, SHARE_SIZE),
            None,
        )
        .await
        .expect("put");
    format!("saw_parent={saw_parent} mixed={mixed}")
}
