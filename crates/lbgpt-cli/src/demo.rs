//! `lbgpt demo`: the simulator in-process, two providers with rate limits behind the balancer
//! and retries, a few hundred requests through the facade, every answer checked, a readable
//! summary with each provider's statistics; then the same requests again, answered by the
//! exact cache in front of it all without a single upstream call.

use crate::cli::DemoArgs;
use crate::error::CliError;
use crate::member_table;
use crate::summary::MemberTally;
use futures::StreamExt;
use lbgpt::cache::{CacheConfig, MemoryStore};
use lbgpt::{BalancedGpt, CacheStatus, Provider, Strategy};
use lbgpt_azure::AzureConfig;
use lbgpt_core::{ChatMessage, ChatRequest};
use lbgpt_openai::OpenAiConfig;
use lbgpt_sim::{FaultMix, KeyConfig, Latency, LimitMode, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const OPENAI_KEY: &str = "sk-sim-demo-openai";
const AZURE_KEY: &str = "sim-demo-azure-key";
const MODEL: &str = "gpt-4o-mini";
const DEPLOYMENT: &str = "gpt-4o-mini-demo";
const OPENAI_MEMBER: &str = "openai-sim";
const AZURE_MEMBER: &str = "azure-sim";
/// The simulated keys' limits, told to the balancer too: the OpenAI-style key enforces them
/// with a token bucket, the Azure-style one with 10 s windows (limit/6 each).
const OPENAI_RPM: u64 = 12_000;
const OPENAI_TPM: u64 = 2_000_000;
const AZURE_RPM: u64 = 24_000;
const AZURE_TPM: u64 = 4_000_000;

/// What one pass over the demo's requests saw.
#[derive(Debug, Default)]
pub struct DemoReport {
    /// Requests sent.
    pub requests: u64,
    /// Answers that came from the cache.
    pub from_cache: u64,
    /// Answers that matched their request.
    pub matched: u64,
    /// Answers that came back but did not match their request (should never happen).
    pub mismatched: u64,
    /// Requests that failed, with the first few errors.
    pub failed: u64,
    /// Successful answers per provider, with their latencies.
    pub per_member: BTreeMap<String, MemberTally>,
    /// Example errors (at most 5).
    pub sample_errors: Vec<String>,
}

impl DemoReport {
    /// Whether every request got its own answer.
    pub fn all_ok(&self) -> bool {
        self.matched == self.requests
    }
}

/// The demo's request number `i`: distinct, deterministic prompts.
fn request(i: u32) -> ChatRequest {
    const TOPICS: [&str; 6] = [
        "rate limits",
        "retries with jitter",
        "load balancing",
        "exact caching",
        "semantic caching",
        "batch files",
    ];
    let topic = TOPICS[i as usize % TOPICS.len()];
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

/// Runs the demo and prints its summary; `Ok(true)` when every answer matched.
pub async fn run(args: &DemoArgs) -> Result<bool, CliError> {
    let faults = FaultMix::default();
    let sim = Simulator::start(
        SimConfig::new()
            .key(
                KeyConfig::new(OPENAI_KEY)
                    .rpm(OPENAI_RPM)
                    .tpm(OPENAI_TPM)
                    .limit_mode(LimitMode::token_bucket())
                    .random_faults(args.faults, faults.clone()),
            )
            .key(
                KeyConfig::new(AZURE_KEY)
                    .rpm(AZURE_RPM)
                    .tpm(AZURE_TPM)
                    .limit_mode(LimitMode::short_windows())
                    .random_faults(args.faults, faults),
            )
            .azure_deployment(DEPLOYMENT, MODEL)
            .latency(Latency::fixed(Duration::from_millis(15)))
            .seed(7),
    )
    .await
    .map_err(|err| CliError::Io(format!("the simulator could not start: {err}")))?;

    println!(
        "lbgpt demo: {} requests, 2 providers (OpenAI-style + Azure-style, with RPM/TPM limits) \
         behind the balancer (max headroom), retries and an exact cache,",
        args.requests
    );
    println!(
        "            on an in-process simulator at {} answering {:.0} % of requests with faults \
         (429, 500, 503, resets, broken JSON, HTML 502); then the same requests again.",
        sim.endpoint(),
        args.faults * 100.0
    );

    let openai = OpenAiConfig::new()
        .api_key(OPENAI_KEY)
        .base_url(sim.base_url())
        .name(OPENAI_MEMBER)
        .no_proxy()
        .request_timeout(Duration::from_secs(10));
    let azure = AzureConfig::new(sim.endpoint())
        .api_key(AZURE_KEY)
        .deployment(MODEL, DEPLOYMENT)
        .name(AZURE_MEMBER)
        .no_proxy()
        .request_timeout(Duration::from_secs(10));
    let client = BalancedGpt::builder()
        .provider(Provider::openai(openai).rpm(OPENAI_RPM).tpm(OPENAI_TPM))
        .provider(Provider::azure(azure).rpm(AZURE_RPM).tpm(AZURE_TPM))
        .strategy(Strategy::MaxHeadroom)
        .cache_store(Arc::new(MemoryStore::new()), CacheConfig::new())
        .max_attempts(10)
        .initial_backoff(Duration::from_millis(20))
        .max_backoff(Duration::from_millis(500))
        .deadline(Duration::from_secs(30))
        .max_concurrent_requests(args.max_concurrent as usize)
        .build()
        .map_err(|err| CliError::Io(format!("demo setup: {err}")))?;

    let started = Instant::now();
    let report = send_all(&client, args.requests).await;
    let elapsed = started.elapsed();
    let stats = sim.stats();

    // The same requests again: the exact cache in front of the retry layer answers them all.
    let started = Instant::now();
    let again = send_all(&client, args.requests).await;
    let elapsed_again = started.elapsed();
    let upstream_again = sim.stats().requests - stats.requests;
    sim.shutdown().await;

    let seconds = elapsed.as_secs_f64().max(1e-9);
    let faults: u64 = stats.keys.values().map(|k| k.faults_injected).sum();
    let statuses: Vec<String> = stats
        .by_status
        .iter()
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    let per_member: Vec<String> = report
        .per_member
        .iter()
        .map(|(name, member)| format!("{name} {}", member.answers))
        .collect();

    println!();
    println!("  requests        {}", report.requests);
    println!(
        "  succeeded       {} (each answer checked against its own request)",
        report.matched
    );
    println!("  failed          {}", report.failed + report.mismatched);
    let members = client.stats();
    let failovers: u64 = members.iter().map(|m| m.failovers).sum();
    println!(
        "  faults          {faults} injected by the simulator, absorbed by {failovers} failovers \
         to the other provider and by retries"
    );
    println!(
        "  simulator saw   {} HTTP requests ({}), {} connection resets",
        stats.requests,
        statuses.join(", "),
        stats.resets
    );
    println!("  per provider    {}", per_member.join(", "));
    print!(
        "{}",
        member_table::render(&members, &report.per_member, "    ")
    );
    println!(
        "  wall time       {seconds:.2} s ({:.0} requests/s, at most {} in flight)",
        report.requests as f64 / seconds,
        args.max_concurrent
    );
    let cache = client.cache_stats().unwrap_or_default();
    println!(
        "  cache           the same {} requests again: {} answered from the memory cache in \
         {:.3} s, {upstream_again} upstream calls ({} hits, {} misses in all)",
        again.requests,
        again.from_cache,
        elapsed_again.as_secs_f64(),
        cache.hits,
        cache.misses
    );
    for error in report.sample_errors.iter().chain(&again.sample_errors) {
        println!("  error: {error}");
    }
    println!();
    let all_ok = report.all_ok() && again.all_ok();
    if all_ok {
        println!(
            "OK: every request got exactly its own answer, in order, despite the faults; \
             the second time from the cache."
        );
    } else {
        println!(
            "FAILED: {} requests did not get their answer.",
            report.requests - report.matched + again.requests - again.matched
        );
    }
    Ok(all_ok)
}

/// Sends the demo's `count` requests through `client` and checks every answer against its
/// own request.
async fn send_all(client: &BalancedGpt, count: u32) -> DemoReport {
    let mut report = DemoReport::default();
    let mut results = client.chat_completion_ordered((0..count).map(request));
    let mut index = 0u32;
    while let Some(result) = results.next().await {
        report.requests += 1;
        match result {
            Ok(answer) => {
                let expected = lbgpt_sim::expected_answer(&request(index));
                if answer.first_text().as_deref() == Some(expected.as_str()) {
                    report.matched += 1;
                    if answer.meta.cache == CacheStatus::Exact {
                        report.from_cache += 1;
                    } else {
                        let member = answer.meta.member.as_deref().unwrap_or("unknown");
                        let tally = report.per_member.entry(member.to_owned()).or_default();
                        tally.answers += 1;
                        tally.latency.record(answer.meta.latency);
                    }
                } else {
                    report.mismatched += 1;
                    if report.sample_errors.len() < 5 {
                        report.sample_errors.push(format!(
                            "request {index}: the answer belongs to another request"
                        ));
                    }
                }
            }
            Err(err) => {
                report.failed += 1;
                if report.sample_errors.len() < 5 {
                    report.sample_errors.push(format!("request {index}: {err}"));
                }
            }
        }
        index += 1;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
