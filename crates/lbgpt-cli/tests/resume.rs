//! `lbgpt run` into an existing output file resumes it; Ctrl-C finishes what is in flight (or,
//! twice, stops at once); a kill -9 at any point loses nothing a rerun cannot redo. The real
//! binary against the simulator on loopback.

mod common;

use common::*;
use lbgpt_sim::{expected_answer, Fault, Latency};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `count` good lines with custom_ids `r0`, `r1`, ...
fn requests(count: usize) -> String {
    (0..count)
        .map(|i| batch_line(&format!("r{i}"), &chat(i)) + "\n")
        .collect()
}

/// The complete lines of `path` (a cut-off last line left out), each parsed.
fn complete_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    parse_jsonl(complete)
}

/// Per custom_id, its successful lines and its failed lines, checking every success is the
/// answer to its own request.
fn by_custom_id(lines: &[Value]) -> BTreeMap<String, (usize, usize)> {
    let mut ids: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in lines {
        let id = line["custom_id"].as_str().expect("a custom_id").to_owned();
        let entry = ids.entry(id.clone()).or_default();
        if line["error"].is_null() {
            let i: usize = id[1..].parse().expect("r<number>");
            assert_eq!(answer_text(line), expected_answer(&chat(i)), "{line}");
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    ids
}

/// Starts `lbgpt run` with the OpenAI key, stderr piped.
fn spawn(h: &Harness, args: &[&str]) -> Child {
    let mut command = h.command(args, &[(OPENAI_KEY_ENV, OPENAI_KEY)]);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.spawn().expect("lbgpt runs")
}

/// Waits (blocking) until `path` has at least `lines` complete lines; panics after two
/// minutes, which only a hung run takes.
fn wait_for_lines(path: &Path, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while complete_lines(path).len() < lines {
        assert!(
            Instant::now() < deadline,
            "{} never reached {lines} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// A number from 5 to 150 that differs from run to run.
fn random_point() -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    5 + (hasher.finish() % 146) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_a_random_point_a_rerun_leaves_exactly_one_success_per_line() {
    // 300 lines at 8 at a time take at least 750 ms: the kill, at most 150 lines in, always
    // lands before the end.
    let h = Harness::openai_with_latency(Duration::from_millis(20)).await;
    let total = 300;
    let input = h.write("in.jsonl", &requests(total));
    let config = h.write("lbgpt.toml", &h.openai_config());
    let output = h.path("out.jsonl");
    let args = run_args(&input, &config, &output, &["--max-concurrent", "8"]);

    let point = random_point();
    let mut child = spawn(&h, &args);
    let output_path = output.clone();
    let child = tokio::task::spawn_blocking(move || {
        wait_for_lines(&output_path, point);
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        child
    })
    .await
    .expect("join");
    drop(child);
    // Whatever the kill left, a torn last line as well (a kill in the middle of a write).
    let before = complete_lines(&output);
    assert!(before.len() >= point, "{} < {point}", before.len());
    let answered_before = by_custom_id(&before).values().filter(|v| v.0 > 0).count();
    assert!(
        answered_before < total,
        "the kill came after the end: nothing left to resume"
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&output)
        .expect("append");
    let torn = batch_line("torn", &chat(0));
    file.write_all(&torn.as_bytes()[..torn.len() / 2])
        .expect("torn line");
    drop(file);
    let calls_before = h.sim.stats().status(200);

    let run = h.lbgpt(&args).await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let stderr = run.stderr();
    assert!(stderr.contains("removed a cut-off last line"), "{stderr}");
    assert!(
        stderr.contains(&format!("skipped:    {answered_before} ")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("requests:   {}\n", total - answered_before)),
        "{stderr}"
    );

    // Every line of the file is JSON, and every input has exactly one success.
    let text = std::fs::read_to_string(&output).expect("output");
    assert!(text.ends_with('\n'));
    let lines = parse_jsonl(&text);
    let ids = by_custom_id(&lines);
    assert_eq!(ids.len(), total, "no line for an unknown id");
    for i in 0..total {
        let (successes, failures) = ids[&format!("r{i}")];
        assert_eq!((successes, failures), (1, 0), "r{i}");
    }
    // The rerun sent only what had no result line.
    assert_eq!(
        h.sim.stats().status(200) - calls_before,
        (total - answered_before) as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_and_writes_what_is_in_flight_and_a_rerun_completes() {
    // 40 lines, 2 at a time, 1 s each: 20 s to finish, while Ctrl-C comes after the first.
    let h = Harness::openai_with_latency(Duration::from_secs(1)).await;
    let total = 40;
    let input = h.write("in.jsonl", &requests(total));
    let config = h.write("lbgpt.toml", &h.openai_config());
    let output = h.path("out.jsonl");
    let args = run_args(&input, &config, &output, &["--max-concurrent", "2"]);
    let mut child = spawn(&h, &args);
    let stderr = child.stderr.take().expect("stderr");
    let output_path = output.clone();
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        wait_for_lines(&output_path, 1);
        interrupt(&child);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text).expect("stderr");
        (child.wait().expect("exits"), text)
    })
    .await
    .expect("join");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("Ctrl-C: no new requests; finishing the"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "lbgpt run interrupted: the requests in flight were finished and written; run the \
             same command again to resume"
        ),
        "{stderr}"
    );
    // Every request the simulator answered has its line: a prefix of the input, in order.
    let lines = complete_lines(&output);
    let answered = h.sim.stats().status(200) as usize;
    assert_eq!(lines.len(), answered, "{stderr}");
    assert!(answered < total, "interrupted before the end: {stderr}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["custom_id"], format!("r{i}"));
        assert!(line["error"].is_null(), "{line}");
    }

    h.sim.set_latency(Latency::fixed(Duration::from_millis(1)));
    let run = h.lbgpt(&args).await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let ids = by_custom_id(&complete_lines(&output));
    assert_eq!(ids.len(), total);
    assert!(ids.values().all(|&counts| counts == (1, 0)), "{ids:?}");
    assert_eq!(
        h.sim.stats().status(200),
        total as u64,
        "no request was answered twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_stops_at_once() {
    let h = Harness::openai_with_latency(Duration::from_secs(60)).await;
    let input = h.write("in.jsonl", &requests(3));
    let config = h.write("lbgpt.toml", &h.openai_config());
    let output = h.path("out.jsonl");
    let mut child = spawn(&h, &run_args(&input, &config, &output, &[]));
    let stderr = child.stderr.take().expect("stderr");
    // Standard error, line by line, as it comes.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let first = lines.recv().await.expect("a start line");
    assert!(first.starts_with("lbgpt run:"), "{first}");
    seen.push(first);
    // The three requests are in flight (the simulator holds each for a minute).
    let deadline = Instant::now() + Duration::from_secs(120);
    while h.sim.stats().requests < 3 {
        assert!(Instant::now() < deadline, "the requests never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    interrupt(&child);
    loop {
        let line = lines.recv().await.expect("the graceful-stop message");
        let graceful = line.starts_with("Ctrl-C: no new requests");
        seen.push(line);
        if graceful {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.contains("finishing the 3 in flight")),
        "{seen:?}"
    );
    // The requests take a minute; the second Ctrl-C does not wait for them.
    interrupt(&child);
    while let Some(line) = lines.recv().await {
        seen.push(line);
    }
    let status = tokio::task::spawn_blocking(move || child.wait().expect("exits"))
        .await
        .expect("join");
    let rest = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("Ctrl-C again: stopping now"), "{rest}");
    assert!(
        rest.contains("lbgpt run interrupted: the requests in flight were dropped"),
        "{rest}"
    );
    assert!(rest.contains("requests:   0"), "{rest}");
    assert_eq!(std::fs::read_to_string(&output).expect("output"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_lines_are_tried_again_and_their_success_appended() {
    let h = Harness::new().await;
    h.sim.script(OPENAI_KEY, [Fault::Status(400)]);
    let input = h.write("in.jsonl", &requests(5));
    let config = h.write("lbgpt.toml", &h.openai_config());
    let output = h.path("out.jsonl");
    let args = run_args(&input, &config, &output, &["--max-concurrent", "1"]);
    let run = h.lbgpt(&args).await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert_eq!(by_custom_id(&complete_lines(&output))["r0"], (0, 1));

    let run = h.lbgpt(&args).await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let stderr = run.stderr();
    assert!(
        stderr.contains("resuming ") && stderr.contains("4 custom_ids answered there"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 failed lines there are tried again"),
        "{stderr}"
    );
    assert!(stderr.contains("requests:   1\nskipped:    4 "), "{stderr}");
    // The failed line stays; the success comes after it: the reader takes the success.
    let lines = complete_lines(&output);
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["custom_id"], "r0");
    assert!(!lines[0]["error"].is_null());
    assert_eq!(lines[5]["custom_id"], "r0");
    assert!(lines[5]["error"].is_null());
    let ids = by_custom_id(&lines);
    assert!(ids.values().all(|counts| counts.0 == 1), "{ids:?}");
    assert_eq!(h.sim.stats().requests, 6, "only r0 was sent again");

    // A third run has nothing left to do.
    let run = h.lbgpt(&args).await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    assert!(run.stderr().contains("requests:   0\nskipped:    5 "));
    assert_eq!(h.sim.stats().requests, 6);
    assert_eq!(complete_lines(&output).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_into_an_output_file_being_written_is_refused_even_with_fresh() {
    // 20 lines, 2 at a time, 200 ms each: the first run writes for about 2 s.
    let h = Harness::openai_with_latency(Duration::from_millis(200)).await;
    let total = 20;
    let input = h.write("in.jsonl", &requests(total));
    let config = h.write("lbgpt.toml", &h.openai_config());
    let output = h.path("out.jsonl");
    let args = run_args(&input, &config, &output, &["--max-concurrent", "2"]);
    let mut first = spawn(&h, &args);
    let output_path = output.clone();
    tokio::task::spawn_blocking(move || wait_for_lines(&output_path, 1))
        .await
        .expect("join");

    for extra in [&[][..], &["--fresh"][..]] {
        let mut second: Vec<&str> = args.to_vec();
        second.extend_from_slice(extra);
        let run = h.lbgpt(&second).await;
        assert_eq!(run.code(), 2, "{extra:?}: {}", run.describe());
        assert!(
            run.stderr().contains("another run is writing") && run.stderr().contains("out.jsonl"),
            "{}",
            run.stderr()
        );
    }
    let status = tokio::task::spawn_blocking(move || first.wait().expect("exits"))
        .await
        .expect("join");
    assert_eq!(status.code(), Some(0));
    // The refused runs neither emptied the file nor added to it, nor sent anything.
    let lines = complete_lines(&output);
    assert_eq!(lines.len(), total);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["custom_id"], format!("r{i}"));
        assert!(line["error"].is_null(), "{line}");
    }
    assert_eq!(h.sim.stats().requests, total as u64);

    // Once the first run is over, the file is free again.
    let run = h.lbgpt(&args).await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    assert!(
        run.stderr().contains(&format!("skipped:    {total} ")),
        "{}",
        run.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_answered_ids_than_fit_in_memory_are_all_skipped() {
    // More successes than the id set keeps in memory (65,536), so most of them are looked up
    // in its sorted runs on disk; the output file is written here, not by a run.
    let answered = 80_000;
    let h = Harness::new().await;
    let mut output_text = String::with_capacity(answered * 120);
    for i in 0..answered {
        output_text.push_str(
            &serde_json::json!({
                "id": format!("batch_req_{i}"), "custom_id": format!("r{i}"),
                "response": {"status_code": 200, "body": {}}, "error": null,
            })
            .to_string(),
        );
        output_text.push('\n');
    }
    let output = h.write("out.jsonl", &output_text);
    let total = answered + 5;
    let input = h.write("in.jsonl", &requests(total));
    let config = h.write("lbgpt.toml", &h.openai_config());
    let run = h.lbgpt(&run_args(&input, &config, &output, &[])).await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("requests:   5\nskipped:    {answered} ")),
        "{stderr}"
    );
    assert_eq!(h.sim.stats().requests, 5, "only the new lines were sent");
    let lines = complete_lines(&output);
    assert_eq!(lines.len(), total);
    for (offset, line) in lines[answered..].iter().enumerate() {
        let i = answered + offset;
        assert_eq!(line["custom_id"], format!("r{i}"));
        assert_eq!(answer_text(line), expected_answer(&chat(i)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_input_resumes_into_a_file_too() {
    let h = Harness::new().await;
    h.write("lbgpt.toml", &h.openai_config());
    let input = requests(6);
    let run = h
        .lbgpt_stdin(&["run", "-", "-o", "out.jsonl"], &requests(3))
        .await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let run = h
        .lbgpt_stdin(&["run", "-", "-o", "out.jsonl"], &input)
        .await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    assert!(
        run.stderr().contains("requests:   3\nskipped:    3 "),
        "{}",
        run.stderr()
    );
    let ids = by_custom_id(&complete_lines(&h.path("out.jsonl")));
    assert_eq!(ids.len(), 6);
    assert!(ids.values().all(|&counts| counts == (1, 0)));
    assert_eq!(h.sim.stats().requests, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_results_is_refused_and_fresh_replaces_it() {
    let h = Harness::new().await;
    let input_text = requests(2);
    let input = h.write("in.jsonl", &input_text);
    let config = h.write("lbgpt.toml", &h.openai_config());
    // The requests of another batch where the results should go.
    let output = h.write("out.jsonl", &input_text);
    let args = run_args(&input, &config, &output, &[]);
    let run = h.lbgpt(&args).await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(
        run.stderr().contains("exists but is not a results file")
            && run.stderr().contains("--fresh"),
        "{}",
        run.stderr()
    );
    assert_eq!(std::fs::read_to_string(&output).expect("read"), input_text);
    assert_eq!(h.sim.stats().requests, 0);

    let mut fresh = args.to_vec();
    fresh.push("--fresh");
    let run = h.lbgpt(&fresh).await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    let lines = complete_lines(&output);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["error"].is_null()));
    // --fresh on results starts over: everything is sent again.
    let run = h.lbgpt(&fresh).await;
    assert_eq!(run.code(), 0, "{}", run.describe());
    assert_eq!(complete_lines(&output).len(), 2);
    assert_eq!(h.sim.stats().requests, 4);
}
