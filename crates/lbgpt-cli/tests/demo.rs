//! `lbgpt demo`: the command the README's first set-up step runs.

mod common;

use common::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_50_requests_succeeds_and_prints_a_summary() {
    let h = Harness::new().await;
    let run = h
        .lbgpt(&["demo", "--requests", "50", "--faults", "0.2"])
        .await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let stdout = run.stdout();
    assert!(stdout.contains("requests        50"), "{stdout}");
    assert!(stdout.contains("succeeded       50"), "{stdout}");
    assert!(stdout.contains("failed          0"), "{stdout}");
    assert!(stdout.contains("per provider"), "{stdout}");
    assert!(
        stdout.contains("openai-sim") && stdout.contains("azure-sim"),
        "{stdout}"
    );
    assert!(stdout.contains("requests/s"), "{stdout}");
    assert!(
        stdout.contains("the same 50 requests again: 50 answered from the memory cache")
            && stdout.contains("0 upstream calls (50 hits, 50 misses in all)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK: every request got exactly its own answer"),
        "{stdout}"
    );
}
