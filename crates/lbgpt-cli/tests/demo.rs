//! `lbgpt demo`: the command the README's first set-up step runs. Its explanation must state
//! what its own statistics show.

use std::collections::BTreeMap;
use std::process::Command;

/// Runs `lbgpt demo` with `args` (standard error is not a terminal: plain progress lines;
/// no `RUST_LOG`: the default log level).
fn demo(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lbgpt"))
        .arg("demo")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("lbgpt demo runs");
    (
        output.status.code().expect("exited"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The number right after `before` in `text`.
fn number_after(text: &str, before: &str) -> u64 {
    let start = text
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} not in:\n{text}"))
        + before.len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {before:?}:\n{text}"))
}

/// The `providers:` line of the first summary: answers per provider.
fn answers_per_provider(text: &str) -> BTreeMap<String, u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("providers:  "))
        .expect("a providers line");
    line["providers:  ".len()..]
        .split(", ")
        .map(|part| {
            let (name, count) = part.rsplit_once(' ').expect("name count");
            (name.to_owned(), count.parse().expect("a count"))
        })
        .collect()
}

/// The per-provider table rows of the first summary, split into words.
fn table(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .skip_while(|l| !l.starts_with("per provider:"))
        .skip(2)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let words: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
            (words[0].clone(), words)
        })
        .collect()
}

#[test]
fn the_demo_answers_everything_and_explains_what_its_statistics_show() {
    let (code, stdout, stderr) = demo(&["--requests", "60", "--faults", "0.05"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // The fleet, and both passes complete.
    for name in ["openai-fast", "openai-slow", "azure-eu", "azure-us"] {
        assert!(stdout.contains(&format!("  {name} ")), "{name}: {stdout}");
    }
    assert!(stdout.contains("First pass: 60 requests"), "{stdout}");
    assert!(
        stdout.contains("requests:   60\nsucceeded:  60\nfailed:     0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Second pass: the same 60 requests again, plus 12 new ones"),
        "{stdout}"
    );
    assert!(
        stdout.contains("requests:   72\nsucceeded:  72 (60 from the cache)\nfailed:     0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK: every request got exactly its own answer"),
        "{stdout}"
    );
    // The planned revocation's warning is not shown: it would look like a real failure.
    assert!(
        !stderr.contains("WARN") && !stderr.contains("retiring"),
        "{stderr}"
    );
    // Progress without a terminal: a plain line at the end of each pass.
    assert!(
        stderr.contains("progress: 60/60 done (100.0 %), 0 failed, 0 cache hits"),
        "{stderr}"
    );
    assert!(
        stderr.contains("progress: 72/72 done (100.0 %), 0 failed, 60 cache hits"),
        "{stderr}"
    );

    // The explanation against the statistics above it.
    let (first, rest) = stdout.split_once("Second pass:").expect("two passes");
    let explanation = rest
        .split_once("What you just saw:")
        .expect("an explanation")
        .1;
    let answers = answers_per_provider(first);
    let rows = table(first);
    assert_eq!(rows.len(), 4, "{first}");

    // The revoked provider: retired by the balancer, its failovers as in the table.
    let revoked = &rows["azure-us"];
    assert!(
        revoked
            .join(" ")
            .ends_with("dead (HTTP 401 invalid_api_key)"),
        "{revoked:?}"
    );
    assert!(
        explanation.contains("azure-us's key was revoked after 21 of the 60 requests"),
        "{explanation}"
    );
    assert_eq!(
        number_after(explanation, "It had answered "),
        answers.get("azure-us").copied().unwrap_or(0),
        "{explanation}"
    );
    assert!(
        explanation.contains("so the balancer retired it (state: dead)"),
        "{explanation}"
    );
    // provider, requests, ok, failed, prompt tok, completion tok, 429s, retries, failovers.
    let failovers: u64 = revoked[8].parse().expect("failovers");
    assert!(
        failovers >= 1,
        "a request failed on it and moved on: {revoked:?}"
    );
    assert_eq!(
        number_after(explanation, "another provider at once ("),
        failovers,
        "{explanation}"
    );
    assert!(explanation.contains("no request failed with its 401."));

    // The 429s column: the explanation's total is the column's, injected faults included.
    let column_429s: u64 = rows
        .values()
        .map(|row| row[6].parse::<u64>().expect("429s"))
        .sum();
    assert_eq!(
        number_after(explanation, "the table's 429s column, "),
        column_429s,
        "{explanation}"
    );

    // Faults and retries, as counted in the summary.
    assert_eq!(
        number_after(explanation, "absorbed them ("),
        number_after(first, "retries:    "),
        "{explanation}"
    );
    assert!(
        explanation.contains("60 of 60 requests got their own answer, 0 failed"),
        "{explanation}"
    );

    // Utilisation: each live provider's answers as in the summary, against its limit.
    for (name, rpm) in [
        ("openai-fast", 2400),
        ("openai-slow", 1200),
        ("azure-eu", 3600),
    ] {
        let answered = answers.get(name).copied().unwrap_or(0);
        assert!(
            explanation.contains(&format!("{name} {answered} answers = ")),
            "{name}: {explanation}"
        );
        assert!(
            explanation.contains(&format!("/min of its {rpm} rpm")),
            "{name}: {explanation}"
        );
        assert_eq!(
            rows[name][2].parse::<u64>().expect("ok"),
            answered,
            "the table's ok column is the answers of {name}"
        );
    }

    // The cache: the summary's hits, and the new requests went upstream.
    assert!(
        explanation
            .contains("in the second pass 60 of 72 requests (83 %) came from the exact cache"),
        "{explanation}"
    );
    assert!(number_after(explanation, "the 12 new ones made ") >= 12);
    assert!(explanation.contains("72 of 72 answers were their request's own"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let (code, _, stderr) = demo(&["--requests", "5"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--requests"), "{stderr}");
}
