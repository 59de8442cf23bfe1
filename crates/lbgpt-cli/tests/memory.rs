//! `lbgpt run` keeps nothing per line beyond its reorder window: the `custom_id`s of the
//! duplicate check go to temporary files past 65,536, so the peak memory the summary reports
//! stays flat with or without `--no-duplicate-check`, and a repeat of an id that went to disk
//! long before is still refused. Lines here are never sent (each is an invalid request), so
//! many pass quickly.

mod common;

use common::*;
use std::path::Path;

/// `count` lines with unique `custom_id`s (when `with_ids`) whose method is refused.
fn unsent_lines(count: usize, with_ids: bool) -> String {
    let body = serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "x".repeat(200)}],
    });
    let mut text = String::with_capacity(count * 330);
    for i in 0..count {
        let line = if with_ids {
            serde_json::json!({"custom_id": format!("request-number-{i:08}"), "method": "GET",
                               "url": "/v1/chat/completions", "body": body})
        } else {
            serde_json::json!({"method": "GET", "url": "/v1/chat/completions", "body": body})
        };
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

/// Runs `lines` lines (with `flags`) and returns the peak memory the summary reports, in
/// bytes.
async fn peak_memory(
    h: &Harness,
    config: &Path,
    lines: usize,
    with_ids: bool,
    flags: &[&str],
) -> f64 {
    let input = h.write("in.jsonl", &unsent_lines(lines, with_ids));
    let output = h.path(&format!("out-{lines}-{with_ids}-{}.jsonl", flags.len()));
    let run = h.lbgpt(&run_args(&input, config, &output, flags)).await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("requests:   {lines}\n")),
        "{stderr}"
    );
    let peak = stderr
        .lines()
        .find_map(|l| l.split_once(", peak memory "))
        .map(|(_, peak)| peak.to_owned())
        .unwrap_or_else(|| panic!("no peak memory in the summary: {stderr}"));
    let (number, unit) = peak.split_once(' ').expect("number and unit");
    let number: f64 = number.parse().expect("a number");
    number
        * match unit {
            "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            other => panic!("unit {other}"),
        }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_does_not_grow_with_the_number_of_lines() {
    if !cfg!(target_os = "linux") {
        return; // The peak memory comes from /proc/self/status.
    }
    let h = Harness::new().await;
    let config = h.write("lbgpt.toml", &h.openai_config());

    // Without ids nothing at all is kept per line.
    // (A leak of 46 bytes or more per line would show: 55,000 lines x 46 B > 2.5 MB.)
    let small = peak_memory(&h, &config, 5_000, false, &[]).await;
    let large = peak_memory(&h, &config, 60_000, false, &[]).await;
    assert!(
        large - small < 2.5e6,
        "5k lines: {small} bytes, 60k lines: {large} bytes"
    );

    // With ids: a fingerprint each, at most 65,536 in memory (its table allocated up front),
    // the rest in sorted runs on disk with 16 bytes per 256 ids in memory. 200k fingerprints
    // all in memory (a table of 2^18 slots of 17 bytes, 4.5 MB) would show.
    let small = peak_memory(&h, &config, 5_000, true, &[]).await;
    let large = peak_memory(&h, &config, 200_000, true, &[]).await;
    assert!(
        large - small < 2.5e6,
        "5k ids: {small} bytes, 200k ids: {large} bytes"
    );

    // With ids and --no-duplicate-check: nothing kept per line, as without ids. Enough lines
    // that the set of 195k fingerprints (a table of 2^18 slots of 17 bytes, 4.5 MB) would
    // show.
    let flat = ["--no-duplicate-check"];
    let small = peak_memory(&h, &config, 5_000, true, &flat).await;
    let large = peak_memory(&h, &config, 200_000, true, &flat).await;
    assert!(
        large - small < 2.5e6,
        "5k ids unchecked: {small} bytes, 200k ids unchecked: {large} bytes"
    );
    assert_eq!(h.sim.stats().requests, 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_of_an_id_kept_on_disk_is_still_refused() {
    let h = Harness::new().await;
    let config = h.write("lbgpt.toml", &h.openai_config());
    let lines = 150_000;
    let mut input = unsent_lines(lines, true);
    // Repeats of the first id, of one in the middle and of the last one.
    for repeated in [0, 70_000, lines - 1] {
        let original = input
            .lines()
            .nth(repeated)
            .expect("the line exists")
            .to_owned();
        input.push_str(&original);
        input.push('\n');
    }
    let input = h.write("in.jsonl", &input);
    let output = h.path("out.jsonl");
    let run = h.lbgpt(&run_args(&input, &config, &output, &[])).await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    let out = read_jsonl(&output);
    assert_eq!(out.len(), lines + 3);
    for line in &out[..lines] {
        assert_eq!(line["error"]["code"], "unsupported_method", "{line}");
    }
    for (line, repeated) in out[lines..].iter().zip([0, 70_000, lines - 1]) {
        assert_eq!(line["error"]["code"], "duplicate_custom_id", "{line}");
        assert_eq!(line["custom_id"], format!("request-number-{repeated:08}"));
    }
}
