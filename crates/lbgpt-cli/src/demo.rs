//! `lbgpt demo`: a fleet of simulated providers, a batch through the same machinery as
//! `lbgpt run`, and a plain explanation of what happened.
//!
//! Four simulated providers, each its own in-process simulator (so each has its own latency),
//! with different rate limits enforced their own way, two OpenAI-style and two Azure-style,
//! all answering a small share of requests with random retryable faults. The config of
//! `lbgpt run` is built from TOML text ([`Config::from_toml_str`]) and turned into the usual
//! stack ([`stack::build`]): the max-headroom balancer, retries, an exact cache in memory.
//! The first pass sends the requests; part-way through, one provider's key is revoked. The
//! second pass sends them again plus some new ones, and the cache answers the repeats. Every
//! answer is checked against its own request ([`lbgpt_sim::expected_answer`]). The progress
//! and the summary are those of `lbgpt run`; the explanation at the end is computed from the
//! same statistics.

use crate::batch::{Batch, Observer, Outcome, Stop};
use crate::cli::DemoArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::progress::{ProgressMode, TotalLines};
use crate::stack::{self, BuiltStack};
use crate::summary::{self, counted, Tally};
use lbgpt_balance::{MemberState, MemberStats};
use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_sim::{FaultMix, KeyConfig, KeyStats, Latency, LimitMode, SimConfig, Simulator};
use serde_json::Value;
use std::fmt;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

const MODEL: &str = "gpt-4o-mini";
const DEPLOYMENT: &str = "gpt-4o-mini-demo";
/// The share of the first pass after which the doomed provider's key is revoked.
const REVOKE_AT: f64 = 0.35;
/// New requests in the second pass, as a share of the first pass's.
const NEW_IN_SECOND_PASS: f64 = 0.2;

/// The API each simulated provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Azure,
}

/// One simulated provider of the fleet.
#[derive(Debug, Clone, Copy)]
struct Spec {
    name: &'static str,
    api: Api,
    rpm: u64,
    tpm: Option<u64>,
    latency_ms: u64,
    /// Its key is revoked part-way through the first pass.
    doomed: bool,
}

impl Spec {
    /// The simulator's key (not a secret: it only opens this process's simulator).
    fn key(&self) -> String {
        format!("sk-sim-demo-{}", self.name)
    }

    /// The environment variable the demo's config names for the key (served by the demo
    /// itself, never read from the process environment).
    fn key_variable(&self) -> String {
        format!(
            "LBGPT_DEMO_KEY_{}",
            self.name.to_uppercase().replace('-', "_")
        )
    }

    fn enforcement(&self) -> &'static str {
        match self.api {
            Api::OpenAi => "token bucket",
            Api::Azure => "10 s windows",
        }
    }
}

/// The fleet: different limits, latencies and enforcement; the last one fails part-way.
const FLEET: [Spec; 4] = [
    Spec {
        name: "openai-fast",
        api: Api::OpenAi,
        rpm: 2_400,
        tpm: Some(400_000),
        latency_ms: 15,
        doomed: false,
    },
    Spec {
        name: "openai-slow",
        api: Api::OpenAi,
        rpm: 1_200,
        tpm: None,
        latency_ms: 60,
        doomed: false,
    },
    Spec {
        name: "azure-eu",
        api: Api::Azure,
        rpm: 3_600,
        tpm: Some(600_000),
        latency_ms: 30,
        doomed: false,
    },
    Spec {
        name: "azure-us",
        api: Api::Azure,
        rpm: 1_800,
        tpm: None,
        latency_ms: 25,
        doomed: true,
    },
];

/// The demo's request number `i`: distinct, deterministic prompts.
fn request(i: u64) -> ChatRequest {
    const TOPICS: [&str; 6] = [
        "rate limits",
        "retries with jitter",
        "load balancing",
        "exact caching",
        "semantic caching",
        "batch files",
    ];
    let topic = TOPICS[(i % TOPICS.len() as u64) as usize];
    ChatRequest::new(
        MODEL,
        vec![
            ChatMessage::system("You answer in one short sentence."),
            ChatMessage::user(format!("Question {i}: why do {topic} matter?")),
        ],
    )
    .max_tokens(48)
    .temperature(0.0)
}

/// The Batch-API lines of requests `range`, made as they are read (no memory per line).
struct DemoInput {
    next: u64,
    end: u64,
    pending: io::Cursor<Vec<u8>>,
}

impl DemoInput {
    fn new(range: std::ops::Range<u64>) -> Self {
        DemoInput {
            next: range.start,
            end: range.end,
            pending: io::Cursor::new(Vec::new()),
        }
    }
}

impl Read for DemoInput {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.position() as usize == self.pending.get_ref().len() {
            if self.next >= self.end {
                return Ok(0);
            }
            let i = self.next;
            self.next += 1;
            let mut line = serde_json::to_vec(&serde_json::json!({
                "custom_id": format!("demo-{i}"),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": request(i),
            }))
            .map_err(io::Error::other)?;
            line.push(b'\n');
            self.pending = io::Cursor::new(line);
        }
        self.pending.read(buf)
    }
}

/// Receives the result lines of a pass and checks each answer against its own request,
/// keeping only counts.
#[derive(Debug, Default)]
struct AnswerCheck {
    partial: Vec<u8>,
    /// Result lines seen.
    lines: u64,
    /// Answers that are their request's own answer.
    matched: u64,
    /// Answers that belong to another request (never expected).
    mismatched: u64,
    /// Error lines.
    failed: u64,
    /// The first few problems.
    problems: Vec<String>,
}

impl AnswerCheck {
    fn check_line(&mut self, line: &[u8]) {
        self.lines += 1;
        let problem = match serde_json::from_slice::<Value>(line) {
            Err(err) => Some(format!("a result line is not JSON: {err}")),
            Ok(value) => self.check_value(&value),
        };
        if let Some(problem) = problem {
            if self.problems.len() < 5 {
                self.problems.push(problem);
            }
        }
    }

    fn check_value(&mut self, line: &Value) -> Option<String> {
        let custom_id = line["custom_id"].as_str().unwrap_or_default();
        let index = custom_id.strip_prefix("demo-").and_then(|i| i.parse().ok());
        if !line["error"].is_null() {
            self.failed += 1;
            return Some(format!("{custom_id}: {}", line["error"]["message"]));
        }
        let text = line["response"]["body"]["choices"][0]["message"]["content"].as_str();
        match index {
            Some(i) if text == Some(lbgpt_sim::expected_answer(&request(i)).as_str()) => {
                self.matched += 1;
                None
            }
            _ => {
                self.mismatched += 1;
                Some(format!(
                    "{custom_id}: the answer belongs to another request"
                ))
            }
        }
    }

    fn all_ok(&self, expected: u64) -> bool {
        self.matched == expected && self.lines == expected
    }
}

impl Write for AnswerCheck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.check_line(&rest[..end]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..end]);
                self.check_line(&line);
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The fleet's simulators, one per provider.
struct Fleet {
    members: Vec<(Spec, Simulator)>,
}

impl Fleet {
    async fn start(faults: f64) -> Result<Fleet, CliError> {
        let mut members = Vec::new();
        for (seed, spec) in FLEET.into_iter().enumerate() {
            let mut key = KeyConfig::new(spec.key())
                .name(spec.name)
                .rpm(spec.rpm)
                .limit_mode(match spec.api {
                    Api::OpenAi => LimitMode::token_bucket(),
                    Api::Azure => LimitMode::short_windows(),
                });
            if let Some(tpm) = spec.tpm {
                key = key.tpm(tpm);
            }
            if faults > 0.0 {
                key = key.random_faults(faults, FaultMix::default());
            }
            let mut config = SimConfig::new()
                .key(key)
                .latency(Latency::fixed(Duration::from_millis(spec.latency_ms)))
                .seed(seed as u64 + 7);
            if spec.api == Api::Azure {
                config = config.azure_deployment(DEPLOYMENT, MODEL);
            }
            let sim = Simulator::start(config)
                .await
                .map_err(|err| CliError::Io(format!("the simulator could not start: {err}")))?;
            members.push((spec, sim));
        }
        Ok(Fleet { members })
    }

    /// The `lbgpt.toml` of the fleet: one provider per simulator with its limits, the
    /// max-headroom balancer, retries with short backoffs, an exact cache in memory.
    fn config_text(&self, max_concurrent: u32) -> String {
        let mut text = format!(
            "max_concurrent_requests = {max_concurrent}\n\n\
             [retry]\nmax_attempts = 10\ninitial_backoff_ms = 20\nmax_backoff_ms = 500\n\
             deadline_ms = 60000\n\n\
             [balance]\nstrategy = \"max_headroom\"\n\n\
             [cache]\nkind = \"memory\"\n"
        );
        for (spec, sim) in &self.members {
            text.push_str(&format!(
                "\n[[providers]]\nname = \"{}\"\napi_key_env = \"{}\"\nproxy = \"none\"\n\
                 request_timeout_ms = 10000\nrpm = {}\n",
                spec.name,
                spec.key_variable(),
                spec.rpm
            ));
            if let Some(tpm) = spec.tpm {
                text.push_str(&format!("tpm = {tpm}\n"));
            }
            match spec.api {
                Api::OpenAi => text.push_str(&format!(
                    "kind = \"openai\"\nbase_url = \"{}\"\n",
                    sim.base_url()
                )),
                Api::Azure => text.push_str(&format!(
                    "kind = \"azure\"\nendpoint = \"{}\"\ndeployments = {{ \"{MODEL}\" = \"{DEPLOYMENT}\" }}\n",
                    sim.endpoint()
                )),
            }
        }
        text
    }

    /// The key behind a config's `api_key_env`.
    fn key_of(&self, variable: &str) -> Option<String> {
        self.members
            .iter()
            .find(|(spec, _)| spec.key_variable() == variable)
            .map(|(spec, _)| spec.key())
    }

    fn doomed(&self) -> Option<&(Spec, Simulator)> {
        self.members.iter().find(|(spec, _)| spec.doomed)
    }

    /// Each simulator's counters for its key.
    fn key_stats(&self) -> Vec<(Spec, KeyStats)> {
        self.members
            .iter()
            .map(|(spec, sim)| (*spec, sim.key_stats(spec.name).unwrap_or_default()))
            .collect()
    }

    /// HTTP requests the simulators received.
    fn requests(&self) -> u64 {
        self.members
            .iter()
            .map(|(_, sim)| sim.stats().requests)
            .sum()
    }

    async fn shutdown(self) {
        for (_, sim) in self.members {
            sim.shutdown().await;
        }
    }
}

/// How the demo ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoEnd {
    /// Every request got its own answer, both passes.
    AllAnswered,
    /// Some request did not.
    SomeFailed,
    /// Ctrl-C.
    Interrupted,
}

/// Runs the demo, printing as it goes.
pub async fn run(args: &DemoArgs) -> Result<DemoEnd, CliError> {
    let fleet = Fleet::start(args.faults).await?;
    let config = Config::from_toml_str(Path::new("demo"), &fleet.config_text(args.max_concurrent))?;
    let built = stack::build(&config, &|variable| fleet.key_of(variable))?;
    print_intro(args);

    let first_count = u64::from(args.requests);
    let revoke_after = ((first_count as f64 * REVOKE_AT).ceil() as u64).max(1);
    let progress = ProgressMode::choose(
        args.quiet,
        io::stderr().is_terminal(),
        Duration::from_secs(5),
    );

    // First pass; the doomed provider's key is revoked part-way.
    println!("First pass: {first_count} requests");
    let mut revoked_at = None;
    let mut first_check = AnswerCheck::default();
    let doomed = fleet.doomed();
    let observer = |tally: &Tally| {
        if revoked_at.is_none() && tally.total >= revoke_after {
            if let Some((spec, sim)) = doomed {
                sim.revoke_key(&spec.key());
            }
            revoked_at = Some(tally.total);
        }
    };
    let concurrency = config.max_concurrent_requests;
    let first = pass(
        &built,
        0..first_count,
        (concurrency, progress),
        Some(Box::new(observer)),
        &mut first_check,
    )
    .await?;
    let members_first = built.balancer.stats();
    let keys_first = fleet.key_stats();
    let cache_first = built.cache.as_ref().map(|c| c.stats()).unwrap_or_default();
    let calls_first = fleet.requests();
    print!(
        "{}",
        summary::Report {
            tally: &first.tally,
            elapsed: first.elapsed,
            members: &members_first,
            cache: Some(("memory", &cache_first)),
            semantic: None,
            peak_memory: None,
        }
    );
    println!();
    if first.stop != Stop::Finished {
        fleet.shutdown().await;
        println!("\nInterrupted.");
        return Ok(DemoEnd::Interrupted);
    }

    // Second pass: the same requests again, and some new ones.
    let new_count = ((first_count as f64 * NEW_IN_SECOND_PASS).ceil() as u64).max(1);
    let second_count = first_count + new_count;
    println!("\nSecond pass: the same {first_count} requests again, plus {new_count} new ones");
    let mut second_check = AnswerCheck::default();
    let second = pass(
        &built,
        0..second_count,
        (concurrency, progress),
        None,
        &mut second_check,
    )
    .await?;
    let cache_second = built.cache.as_ref().map(|c| c.stats()).unwrap_or_default();
    let calls_second = fleet.requests() - calls_first;
    println!("{}", second.tally.summary(second.elapsed));
    fleet.shutdown().await;
    if second.stop != Stop::Finished {
        println!("\nInterrupted.");
        return Ok(DemoEnd::Interrupted);
    }

    let facts = Facts::gather(FactSources {
        first: &first,
        first_check: &first_check,
        members: &members_first,
        keys: &keys_first,
        revoked_at,
        second: &second,
        second_check: &second_check,
        second_hits: cache_second.hits.saturating_sub(cache_first.hits),
        second_calls: calls_second,
        new_in_second: new_count,
    });
    println!("\nWhat you just saw:\n{facts}");
    for problem in first_check.problems.iter().chain(&second_check.problems) {
        println!("  problem: {problem}");
    }
    let all_ok = first_check.all_ok(first_count) && second_check.all_ok(second_count);
    println!();
    if all_ok {
        println!(
            "OK: every request got exactly its own answer, in order, despite the revoked key \
             and the faults; the second time mostly from the cache."
        );
        Ok(DemoEnd::AllAnswered)
    } else {
        println!(
            "FAILED: {} of {} requests did not get their own answer.",
            first_count + second_count - first_check.matched - second_check.matched,
            first_count + second_count
        );
        Ok(DemoEnd::SomeFailed)
    }
}

fn print_intro(args: &DemoArgs) {
    println!(
        "lbgpt demo: {} simulated providers in this process behind the max-headroom balancer, \
         with retries and an exact cache (no API key, no network).",
        FLEET.len()
    );
    for spec in FLEET {
        let tpm = spec.tpm.map_or(String::new(), |tpm| format!(", tpm {tpm}"));
        let doom = if spec.doomed {
            "  <- its key gets revoked part-way (planned)"
        } else {
            ""
        };
        println!(
            "  {:<12} {:<7} rpm {}{tpm} ({}), {} ms per answer{doom}",
            spec.name,
            match spec.api {
                Api::OpenAi => "OpenAI",
                Api::Azure => "Azure",
            },
            spec.rpm,
            spec.enforcement(),
            spec.latency_ms
        );
    }
    if args.faults > 0.0 {
        println!(
            "  and every provider answers {:.0} % of calls with a random retryable fault (429, \
             500, 503, connection reset, broken JSON, HTML 502).",
            args.faults * 100.0
        );
    }
    println!();
}

/// One pass: `range` of the demo's requests through the stack, at most `concurrency` in
/// flight, results checked by `check`.
async fn pass(
    built: &BuiltStack,
    range: std::ops::Range<u64>,
    (concurrency, progress): (usize, ProgressMode),
    observer: Option<Observer<'_>>,
    check: &mut AnswerCheck,
) -> Result<Outcome, CliError> {
    let total = TotalLines::unknown();
    total.set(range.end - range.start);
    let batch = Batch {
        input: Box::new(io::BufReader::new(DemoInput::new(range))),
        total,
        skip: None,
        duplicates: crate::input::DuplicateCheck::On,
        service: built.service.clone(),
        secrets: &built.secrets,
        concurrency,
        progress,
        interrupts: None,
        observer,
    };
    batch.execute(check).await.map_err(|err| match err {
        crate::batch::BatchError::Write(err) => CliError::Io(format!("demo: {err}")),
        crate::batch::BatchError::Read { err, .. } => CliError::Io(format!("demo: {err}")),
    })
}

/// What the explanation is computed from.
struct FactSources<'a> {
    first: &'a Outcome,
    first_check: &'a AnswerCheck,
    members: &'a [MemberStats],
    keys: &'a [(Spec, KeyStats)],
    revoked_at: Option<u64>,
    second: &'a Outcome,
    second_check: &'a AnswerCheck,
    second_hits: u64,
    second_calls: u64,
    new_in_second: u64,
}

/// The revoked provider's story.
#[derive(Debug, Clone, PartialEq)]
struct Revoked {
    name: String,
    /// Results of the first pass written when the key was revoked.
    after: u64,
    /// Answers it gave (all before the revocation).
    answered: u64,
    /// 401 answers its simulator gave.
    unauthorized: u64,
    /// Requests that failed on it and moved on to another provider.
    failovers: u64,
    /// Whether the balancer retired it.
    retired: bool,
    /// First-pass requests that failed with a 401/403 in the end.
    auth_failures: u64,
}

/// One live provider's use of its limit in the first pass.
#[derive(Debug, Clone, PartialEq)]
struct Use {
    name: String,
    answered: u64,
    per_minute: f64,
    rpm: u64,
}

/// The facts the explanation states, each from the statistics printed above it.
#[derive(Debug, Clone, PartialEq)]
struct Facts {
    requests: u64,
    matched: u64,
    failed: u64,
    revoked: Option<Revoked>,
    faults: u64,
    limit_429s: u64,
    /// 429 answers among the injected faults.
    injected_429s: u64,
    /// 429 answers the balancer saw (the table's `429s` column, summed).
    seen_429s: u64,
    retries: u64,
    elapsed: Duration,
    uses: Vec<Use>,
    second_requests: u64,
    second_hits: u64,
    second_new: u64,
    second_calls: u64,
    second_matched: u64,
}

impl Facts {
    fn gather(s: FactSources<'_>) -> Facts {
        let stats_of = |name: &str| s.members.iter().find(|m| m.name == name);
        let revoked = s
            .keys
            .iter()
            .find(|(spec, _)| spec.doomed)
            .and_then(|(spec, key)| {
                let member = stats_of(spec.name)?;
                Some(Revoked {
                    name: spec.name.to_owned(),
                    after: s.revoked_at?,
                    answered: member.succeeded,
                    unauthorized: key.unauthorized,
                    failovers: member.failovers,
                    retired: matches!(member.state, MemberState::Dead { .. }),
                    auth_failures: s.first.tally.failures.get("auth").copied().unwrap_or(0),
                })
            });
        let minutes = s.first.elapsed.as_secs_f64() / 60.0;
        let uses = s
            .keys
            .iter()
            .filter(|(spec, _)| !spec.doomed)
            .filter_map(|(spec, _)| {
                let member = stats_of(spec.name)?;
                Some(Use {
                    name: spec.name.to_owned(),
                    answered: member.succeeded,
                    per_minute: if minutes > 0.0 {
                        member.succeeded as f64 / minutes
                    } else {
                        0.0
                    },
                    rpm: spec.rpm,
                })
            })
            .collect();
        Facts {
            requests: s.first.tally.total,
            matched: s.first_check.matched,
            failed: s.first.tally.failed(),
            revoked,
            faults: s.keys.iter().map(|(_, key)| key.faults_injected).sum(),
            limit_429s: s.keys.iter().map(|(_, key)| key.rate_limited).sum(),
            injected_429s: s.keys.iter().map(|(_, key)| key.injected_429s).sum(),
            seen_429s: s.members.iter().map(|m| m.rate_limited_seen).sum(),
            retries: s.first.tally.retries,
            elapsed: s.first.elapsed,
            uses,
            second_requests: s.second.tally.total,
            second_hits: s.second_hits,
            second_new: s.new_in_second,
            second_calls: s.second_calls,
            second_matched: s.second_check.matched,
        }
    }
}

impl fmt::Display for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.revoked {
            write!(
                f,
                "  - {}'s key was revoked after {} of the {} requests of the first pass (planned: \
                 the demo shows what a revoked key does). It had answered {}; ",
                r.name,
                r.after,
                self.requests,
                counted(r.answered, "request", "requests")
            )?;
            match (r.unauthorized, r.retired) {
                (0, _) => write!(f, "no request reached it afterwards")?,
                (1, true) => write!(
                    f,
                    "its next call got HTTP 401, so the balancer retired it (state: dead)"
                )?,
                (n, true) => write!(
                    f,
                    "its next calls got HTTP 401 ({n} in all, the requests already on their \
                     way), so the balancer retired it (state: dead)"
                )?,
                (n, false) => write!(
                    f,
                    "{} HTTP 401, but the balancer did not retire it",
                    counted(n, "call got", "calls got")
                )?,
            }
            write!(
                f,
                ". Requests that failed on it moved on to another provider at once ({}); ",
                counted(r.failovers, "failover", "failovers")
            )?;
            match r.auth_failures {
                0 => writeln!(f, "no request failed with its 401.")?,
                n => writeln!(
                    f,
                    "{} with a 401.",
                    counted(n, "request still failed", "requests still failed")
                )?,
            }
        }
        writeln!(
            f,
            "  - Faults: the simulators answered {} calls with random faults; retries and \
             failovers absorbed them ({} attempts beyond the first). {} of {} requests got \
             their own answer, {} failed.",
            self.faults, self.retries, self.matched, self.requests, self.failed
        )?;
        let uses: Vec<String> = self
            .uses
            .iter()
            .map(|u| {
                format!(
                    "{} {} answers = {:.0}/min of its {} rpm ({:.0} %)",
                    u.name,
                    u.answered,
                    u.per_minute,
                    u.rpm,
                    u.per_minute * 100.0 / u.rpm as f64
                )
            })
            .collect();
        writeln!(
            f,
            "  - Limits: max headroom sent each request to the provider with the most room \
             left, pacing each within its limits; the providers' own limits answered {} with \
             429 (the table's 429s column, {} in all, also counts the {}). \
             In {:.1} s: {}. Pacing spreads each provider's requests evenly, so a run of \
             seconds stays below the full rate; longer runs come closer to it.",
            counted(self.limit_429s, "call", "calls"),
            self.seen_429s,
            counted(
                self.injected_429s,
                "injected 429 fault",
                "injected 429 faults"
            ),
            self.elapsed.as_secs_f64(),
            uses.join("; ")
        )?;
        let share = if self.second_requests > 0 {
            self.second_hits as f64 * 100.0 / self.second_requests as f64
        } else {
            0.0
        };
        write!(
            f,
            "  - Cache: in the second pass {} of {} requests ({share:.0} %) came from the exact \
             cache with no call at all; the {} new ones made {} calls. {} of {} answers were \
             their request's own.",
            self.second_hits,
            self.second_requests,
            self.second_new,
            self.second_calls,
            self.second_matched,
            self.second_requests
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fleet_config_builds_the_run_stack_with_every_limit_and_no_key_in_it() {
        let fleet = Fleet::start(0.0).await.expect("simulators start");
        let text = fleet.config_text(8);
        for spec in FLEET {
            assert!(!text.contains(&spec.key()), "no key in the config: {text}");
        }
        let config = Config::from_toml_str(Path::new("demo"), &text).expect("valid config");
        assert_eq!(config.max_concurrent_requests, 8);
        assert!(config.cache.is_some());
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["openai-fast", "openai-slow", "azure-eu", "azure-us"]
        );
        for (provider, spec) in config.providers.iter().zip(FLEET) {
            assert_eq!(provider.rpm, Some(spec.rpm));
            assert_eq!(provider.tpm, spec.tpm);
        }
        let built = stack::build(&config, &|variable| fleet.key_of(variable)).expect("builds");
        assert_eq!(built.balancer.stats().len(), 4);
        fleet.shutdown().await;
    }

    #[test]
    fn demo_requests_are_distinct_and_valid() {
        let a = request(1);
        let b = request(2);
        assert_ne!(a, b);
        assert!(a.validate().is_ok());
        assert_ne!(
            lbgpt_sim::expected_answer(&a),
            lbgpt_sim::expected_answer(&b)
        );
    }

    #[test]
    fn the_generated_input_is_one_good_line_per_request() {
        let mut text = String::new();
        DemoInput::new(3..6)
            .read_to_string(&mut text)
            .expect("reads");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let parsed: Vec<_> = crate::input::InputReader::<_, lbgpt_core::ChatRequest>::new(
            text.as_bytes(),
            crate::input::DuplicateCheck::On,
        )
        .collect();
        assert_eq!(parsed[0].custom_id.as_deref(), Some("demo-3"));
        assert_eq!(parsed[2].request.as_ref().expect("good"), &request(5));
    }

    #[test]
    fn the_check_counts_own_answers_others_and_errors_across_write_calls() {
        let answer = |i: u64, text: &str| {
            serde_json::json!({"custom_id": format!("demo-{i}"), "error": null,
                "response": {"body": {"choices": [{"message": {"content": text}}]}}})
            .to_string()
        };
        let own = answer(4, &lbgpt_sim::expected_answer(&request(4)));
        let other = answer(5, &lbgpt_sim::expected_answer(&request(4)));
        let failed = r#"{"custom_id": "demo-6", "error": {"message": "boom"}}"#;
        let text = format!("{own}\n{other}\n{failed}\n");
        let mut check = AnswerCheck::default();
        // In awkward pieces, as a buffered writer may hand them over.
        for chunk in text.as_bytes().chunks(7) {
            check.write_all(chunk).expect("write");
        }
        assert_eq!(
            (check.lines, check.matched, check.mismatched, check.failed),
            (3, 1, 1, 1)
        );
        assert_eq!(check.problems.len(), 2);
        assert!(!check.all_ok(3));
    }

    #[test]
    fn the_explanation_states_the_facts() {
        let facts = Facts {
            requests: 300,
            matched: 300,
            failed: 0,
            revoked: Some(Revoked {
                name: "azure-us".into(),
                after: 105,
                answered: 20,
                unauthorized: 6,
                failovers: 6,
                retired: true,
                auth_failures: 0,
            }),
            faults: 9,
            limit_429s: 0,
            injected_429s: 4,
            seen_429s: 4,
            retries: 15,
            elapsed: Duration::from_secs(3),
            uses: vec![Use {
                name: "openai-fast".into(),
                answered: 110,
                per_minute: 2200.0,
                rpm: 2400,
            }],
            second_requests: 360,
            second_hits: 300,
            second_new: 60,
            second_calls: 61,
            second_matched: 360,
        };
        let text = facts.to_string();
        for needle in [
            "azure-us's key was revoked after 105 of the 300 requests of the first pass (planned",
            "answered 20 requests; its next calls got HTTP 401 (6 in all, the requests \
             already on their way), so the balancer retired it (state: dead). Requests that \
             failed on it moved on to another provider at once (6 failovers); no request \
             failed with its 401.",
            "answered 9 calls with random faults",
            "(15 attempts beyond the first). 300 of 300 requests got their own answer, 0 failed",
            "limits answered 0 calls with 429 (the table's 429s column, 4 in all, also counts \
             the 4 injected 429 faults)",
            "openai-fast 110 answers = 2200/min of its 2400 rpm (92 %)",
            "in the second pass 300 of 360 requests (83 %) came from the exact cache",
            "the 60 new ones made 61 calls",
        ] {
            assert!(text.contains(needle), "{needle}\n{text}");
        }

        let mut one = facts.clone();
        if let Some(r) = one.revoked.as_mut() {
            (r.answered, r.failovers, r.auth_failures) = (1, 1, 1);
        }
        (one.limit_429s, one.injected_429s) = (1, 1);
        let text = one.to_string();
        for needle in [
            "It had answered 1 request;",
            "(1 failover); 1 request still failed with a 401.",
            "limits answered 1 call with 429 (the table's 429s column, 4 in all, also counts \
             the 1 injected 429 fault)",
        ] {
            assert!(text.contains(needle), "singular: {needle}\n{text}");
        }
    }
}
