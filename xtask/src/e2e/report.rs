//! The report of `cargo xtask bench e2e`, in Markdown.

use super::{Client, Results, Row};
use std::fmt::Write;

/// Peak memory counts as flat when the largest input's peak is within this share of the
/// smallest's.
const FLAT_SHARE: f64 = 0.10;

const MB: f64 = 1024.0 * 1024.0;

/// CPU time per request, in microseconds.
fn cpu_per_request_us(row: &Row) -> f64 {
    row.usage.cpu().as_secs_f64() * 1e6 / row.lines as f64
}

fn requests_per_second(row: &Row) -> f64 {
    row.lines as f64 / row.usage.wall.as_secs_f64().max(1e-9)
}

fn output_verdict(row: &Row) -> String {
    let check = &row.check;
    if row.usage.exit_code != Some(0) {
        format!("exit status {:?}", row.usage.exit_code)
    } else if check.complete(row.lines) {
        "complete".to_owned()
    } else {
        format!(
            "{} lines, {} in order, {} succeeded",
            check.lines, check.in_order, check.succeeded
        )
    }
}

/// One line about a run, for the console.
pub fn row_summary(row: &Row) -> String {
    format!(
        "wall {:.2} s ({:.0} requests/s), CPU {:.2} s ({:.1} us per request), peak RSS {:.1} MB, output {}",
        row.usage.wall.as_secs_f64(),
        requests_per_second(row),
        row.usage.cpu().as_secs_f64(),
        cpu_per_request_us(row),
        row.usage.peak_rss as f64 / MB,
        output_verdict(row)
    )
}

/// The results table.
pub fn table(results: &Results) -> String {
    let mut text = String::from(
        "| client | input lines | wall (s) | requests/s | CPU user + sys (s) | CPU per request (us) | peak RSS (MB) | output | load before |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for row in &results.rows {
        let _ = writeln!(
            text,
            "| {} | {} | {:.2} | {:.0} | {:.2} + {:.2} | {:.1} | {:.1} | {} | {:.2} |",
            row.client.label(),
            thousands(row.lines),
            row.usage.wall.as_secs_f64(),
            requests_per_second(row),
            row.usage.user.as_secs_f64(),
            row.usage.system.as_secs_f64(),
            cpu_per_request_us(row),
            row.usage.peak_rss as f64 / MB,
            output_verdict(row),
            row.load_before,
        );
    }
    text
}

fn find(results: &Results, client: Client, lines: u64) -> Option<&Row> {
    results
        .rows
        .iter()
        .find(|row| row.client == client && row.lines == lines)
}

/// The CPU ratio of each `lbgpt run` variant to the facade at each size both ran.
fn cpu_ratios(results: &Results) -> Vec<String> {
    let mut lines = Vec::new();
    for &size in &results.options.sizes {
        for variant in [Client::Cli, Client::CliNoDuplicateCheck] {
            let (Some(cli), Some(facade)) = (
                find(results, variant, size),
                find(results, Client::Facade, size),
            ) else {
                continue;
            };
            lines.push(format!(
                "- {} lines: {} {:.1} us, facade {:.1} us of CPU per request: \
                 **{:.2}x**; wall time {:.2}x, peak RSS {:.2}x.",
                thousands(size),
                variant.label(),
                cpu_per_request_us(cli),
                cpu_per_request_us(facade),
                cpu_per_request_us(cli) / cpu_per_request_us(facade),
                cli.usage.wall.as_secs_f64() / facade.usage.wall.as_secs_f64(),
                cli.usage.peak_rss as f64 / facade.usage.peak_rss as f64,
            ));
        }
    }
    lines
}

/// How each client's peak memory changed from the smallest input to the largest.
fn memory_growth(results: &Results) -> Vec<(Client, String, bool)> {
    let smallest = results.options.sizes.iter().min().copied();
    let largest = results.options.sizes.iter().max().copied();
    let (Some(small), Some(large)) = (smallest, largest) else {
        return Vec::new();
    };
    if small == large {
        return Vec::new();
    }
    let mut lines = Vec::new();
    for &client in &results.options.clients {
        let (Some(a), Some(b)) = (find(results, client, small), find(results, client, large))
        else {
            continue;
        };
        let (ra, rb) = (a.usage.peak_rss as f64, b.usage.peak_rss as f64);
        let per_line = (rb - ra) / (large - small) as f64;
        let flat = rb <= ra * (1.0 + FLAT_SHARE);
        let verdict = if flat {
            format!(
                "**flat** (within {:.0} % while the input grew {}x)",
                FLAT_SHARE * 100.0,
                large / small
            )
        } else {
            format!(
                "**grows**: {:+.1} MB for {} more lines, about {:.0} bytes per extra line",
                (rb - ra) / MB,
                thousands(large - small),
                per_line
            )
        };
        lines.push((
            client,
            format!(
                "- {}: {:.1} MB at {} lines, {:.1} MB at {} lines: {verdict}.",
                client.label(),
                ra / MB,
                thousands(small),
                rb / MB,
                thousands(large),
            ),
            flat,
        ));
    }
    lines
}

/// At the largest size, how much higher `lbgpt run`'s peak memory was than
/// `--no-duplicate-check`'s (the set of `custom_id`s is the only difference between them), as
/// measured; empty when either did not run at that size.
fn id_set_share(results: &Results) -> String {
    let Some(&largest) = results.options.sizes.iter().max() else {
        return String::new();
    };
    let (Some(cli), Some(without)) = (
        find(results, Client::Cli, largest),
        find(results, Client::CliNoDuplicateCheck, largest),
    ) else {
        return String::new();
    };
    format!(
        "At {} lines `lbgpt run` peaked {:+.1} MB from `lbgpt run --no-duplicate-check`.\n",
        thousands(largest),
        (cli.usage.peak_rss as f64 - without.usage.peak_rss as f64) / MB,
    )
}

/// The whole report.
pub fn render(results: &Results) -> String {
    let options = &results.options;
    let sizes: Vec<String> = options.sizes.iter().map(|&n| thousands(n)).collect();
    let mut text = String::new();
    let _ = write!(
        text,
        "# End-to-end benchmark: `lbgpt run` against the facade\n\n\
         Written by `cargo xtask bench e2e` (the benchmark is `xtask/src/e2e/`; options such as\n\
         `--sizes 10000` for a quick run). The figures below are from one run of each program\n\
         at each size, on a shared machine: compare within this run, not across machines.\n\n\
         ## What is measured\n\n\
         The same batch file goes through each program, one after the other, never together:\n\n\
         - **`lbgpt run`**, the command line: `lbgpt run INPUT -c lbgpt.toml -o OUTPUT{quiet}`,\n\
         \x20 where `lbgpt.toml` is `max_concurrent_requests = {conc}` and one `[[providers]]`\n\
         \x20 table `from_env = \"OPENAI_API_KEY*\"`; and the same with `--no-duplicate-check`, which\n\
         \x20 skips the duplicate check (no set of `custom_id`s, in memory or on disk);\n\
         - **the facade directly**, `examples/batch_file.rs`: `BalancedGpt::builder()\n\
         \x20 .providers_from_env()` with `max_concurrent_requests({conc})`, the file read\n\
         \x20 lazily line by line into `chat_completion_ordered`, one result line written per\n\
         \x20 input in input order (`custom_id`, `response` with the chat completion, `error`).\n\n\
         Both get the same {keys} providers (one per simulator key, `OPENAI_API_KEY_1` to\n\
         `OPENAI_API_KEY_{keys}`, with `OPENAI_BASE_URL` pointing at the simulator), the default\n\
         retry and balancer settings (strategy max headroom, no limits configured) and no cache.\n\
         Both are release builds on a multi-threaded Tokio runtime.\n\n\
         - **Input**: Batch-API chat lines (`{{\"custom_id\": \"req-0000001\", \"method\": \"POST\",\n\
         \x20 \"url\": \"/v1/chat/completions\", \"body\": {{...}}}}`, about 230 bytes each), every\n\
         \x20 prompt different, `max_tokens` 16; {sizes} lines.\n\
         - **Server**: the simulator as a separate process (`lbgpt sim`, on 127.0.0.1), {keys}\n\
         \x20 keys without rate limits or injected faults, a fixed latency of {latency} ms per\n\
         \x20 answer.\n\
         - **Measured**, for each client process alone (the kernel's accounting of that child,\n\
         \x20 `wait4`, so the simulator's work is never counted): wall time from start to exit,\n\
         \x20 user + system CPU time of all its threads (start-up, reading, parsing, sending,\n\
         \x20 answers, writing), and its peak resident memory (`ru_maxrss`).\n\
         - **Checked**: every output has exactly one line per input line, line *k* carries\n\
         \x20 the `custom_id` of input line *k* (so all are distinct and in order), and every\n\
         \x20 line succeeded (`error` null, status 200, a chat completion).\n\n\
         ## Results\n\n",
        quiet = if results.quiet { " --quiet" } else { "" },
        conc = options.concurrency,
        keys = options.keys,
        latency = options.latency_ms,
        sizes = sizes.join(" and "),
    );
    text.push_str(&table(results));
    let (sim_usage, served) = &results.simulator;
    let sent: u64 = results.rows.iter().map(|row| row.lines).sum();
    let _ = write!(
        text,
        "\nThe simulator served {} requests ({} sent by the runs above{}) with {:.1} s of CPU \
         in all (peak RSS {:.1} MB), about {:.1} us per request: on two cores the client and \
         the simulator share the machine, so the wall time is mostly their CPU time, not the \
         {} ms latency.\n\n",
        served.map_or_else(|| "an unknown number of".to_owned(), thousands),
        thousands(sent),
        // Only equal counts show that no request was retried or lost.
        if *served == Some(sent) {
            ", so no request was retried or lost"
        } else {
            ": the counts differ or are unknown, so some requests may have been retried or lost"
        },
        sim_usage.cpu().as_secs_f64(),
        sim_usage.peak_rss as f64 / MB,
        sim_usage.cpu().as_secs_f64() * 1e6 / sent.max(1) as f64,
        options.latency_ms,
    );

    text.push_str("## What the numbers mean\n\n### CPU: `lbgpt run` against the facade\n\n");
    let ratios = cpu_ratios(results);
    if ratios.is_empty() {
        text.push_str("(Both clients did not run at a common size.)\n");
    } else {
        text.push_str(&ratios.join("\n"));
        text.push('\n');
    }
    text.push_str(CPU_NOTES);

    text.push_str("\n### Peak memory against input size\n\n");
    let growth = memory_growth(results);
    if growth.is_empty() {
        text.push_str("(Only one input size ran.)\n");
    } else {
        for (_, line, _) in &growth {
            text.push_str(line);
            text.push('\n');
        }
        let grows = |wanted: Client| {
            growth
                .iter()
                .any(|(client, _, flat)| *client == wanted && !flat)
        };
        // Paragraphs, each followed by a blank line.
        let mut paragraphs: Vec<String> = Vec::new();
        if grows(Client::CliNoDuplicateCheck) || grows(Client::Facade) {
            paragraphs.push(UNEXPLAINED_GROWTH.to_owned());
        }
        if grows(Client::Cli) {
            paragraphs.push(format!("{ID_SET_GROWS}{}", id_set_share(results)));
        } else {
            paragraphs.push(format!("{ID_SET_BOUNDED}{}", id_set_share(results)));
        }
        if !grows(Client::CliNoDuplicateCheck) && !grows(Client::Facade) {
            paragraphs.push(
                "Neither program keeps state per input line beyond the lines in flight: the \
                 facade's and `lbgpt run --no-duplicate-check`'s peak memory does not depend \
                 on the input's size.\n"
                    .to_owned(),
            );
        }
        paragraphs.push(USAGE_WINDOW_BOUNDED.to_owned());
        for paragraph in paragraphs {
            text.push('\n');
            text.push_str(&paragraph);
        }
    }

    let (before, after) = results.load;
    let _ = write!(
        text,
        "\n## Machine\n\n{}. Load average (1, 5, 15 min) {:.2} / {:.2} / {:.2} before the runs \
         and {:.2} / {:.2} / {:.2} after; the \"load before\" column is the 1-minute figure \
         just before each run; it counts the benchmark's own client and simulator (about 2 \
         while a run goes on) and, before the first run, the release build. The machine has \
         two cores and was shared with other builds, and the simulator runs on the same two \
         cores: read the ratios, not the absolute figures.\n",
        machine(),
        before[0],
        before[1],
        before[2],
        after[0],
        after[1],
        after[2],
    );
    text
}

const CPU_NOTES: &str = "
What `lbgpt run` does beyond the example: it reads and parses the input on a thread of its own
(so a slow standard input never holds up results), validates every line fully (method, url,
the body as a chat request, duplicate `custom_id`s) before sending it, keeps a ledger pairing
each request with its line, scrubs the API keys from error messages, and writes a richer line
(the Batch API's `id`, `request_id`, and the `lbgpt` object: line, member, attempts, latency,
cache). The example parses each line once into a `serde_json::Value` and the body into a
`ChatRequest`, and writes the answer as it came.
";

const UNEXPLAINED_GROWTH: &str = "\
**Growth beyond the `custom_id` set.** The facade example and `lbgpt run --no-duplicate-check`
keep nothing per line beyond the lines in flight, and the balancer's usage windows are bounded
(below): something else now holds state per line or per request. Find it with heaptrack on
both sizes.
";

const USAGE_WINDOW_BOUNDED: &str = "\
**Both programs: the balancer's usage windows are bounded.** Each provider's usage ledger
(`Ledger` in `crates/lbgpt-balance/src/usage/ledger.rs`, inside `InMemoryUsage`) sums its
windows' charges in time buckets (`crates/lbgpt-balance/src/usage/window.rs`: 1/600 of a
window each, at most 602 per window; a provider without `rpm` / `tpm` limits, as here, keeps
only the 60 s window), at most 1204 buckets (under 80 KB) per provider whatever its
throughput. Before, it recorded every admitted request as one 64-byte `Entry` kept for the
60.05 s window, also for a provider without limits; a 1M-line run at this rate lasts about a
minute, so the ledgers held nearly all of it: 4 providers x 2^18 entries (the `VecDeque`
doubles) x 64 bytes = 67 MB at 1M lines and 8 MB at 100k, and the facade's peak RSS grew from
19.6 MB to 74.9 MB between the two sizes (`lbgpt run`: 24.5 MB to 123.6 MB).
";

const ID_SET_BOUNDED: &str = "\
**`lbgpt run` only: the set of `custom_id`s, bounded.** To refuse a duplicate `custom_id`,
`LineParser::seen` (`crates/lbgpt-cli/src/input.rs`) keeps an `IdSet`
(`crates/lbgpt-cli/src/idset/`): a 16-byte fingerprint of every distinct `custom_id`, at most
65,536 of them in memory (a table of about 2 MB, allocated up front); when that is full they
are sorted into a run in an anonymous temporary file, and runs of similar size are merged
(at most 4 runs for a million ids). Of each run only every 256th fingerprint stays in memory (62 KB
per million ids); a lookup reads one 4 KiB block per run. Before, every fingerprint stayed in
memory: +51 MB at 1M lines. `lbgpt run --no-duplicate-check` skips the set (a repeated
`custom_id` is then sent again), which is the like-for-like row for memory: the facade
example does not check ids either.
";

const ID_SET_GROWS: &str = "\
**`lbgpt run` only: growth with the input.** `--no-duplicate-check` differs from it only by
the set of `custom_id`s (`IdSet` in `crates/lbgpt-cli/src/idset/`), which keeps at most 65,536
fingerprints in memory and the rest in temporary files: if only `lbgpt run` grows, look there
first (runs not spilled, their indexes), then with heaptrack on both sizes.
";

/// The CPU model, core count and memory, from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gb = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0);
    match memory_gb {
        Some(gb) => format!("{model}, {cores} cores, {gb:.0} GB of memory, Linux"),
        None => format!("{model}, {cores} cores, Linux"),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}
