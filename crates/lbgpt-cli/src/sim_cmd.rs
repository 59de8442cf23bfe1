//! `lbgpt sim`: serves the simulator from a config file until Ctrl-C.

use crate::cli::SimArgs;
use crate::error::CliError;
use crate::interrupt::Interrupts;
use lbgpt_sim::{SimConfig, SimConfigError, Simulator};

/// Starts the simulator, prints where it listens and which keys it serves, and waits for
/// Ctrl-C.
pub async fn run(args: &SimArgs) -> Result<(), CliError> {
    let config = SimConfig::from_file(&args.config).map_err(|err| match err {
        // These name the file themselves.
        SimConfigError::Read { .. } | SimConfigError::Toml { .. } => {
            CliError::Usage(format!("simulator config: {err}"))
        }
        other => CliError::Usage(format!(
            "simulator config {}: {other}",
            args.config.display()
        )),
    })?;
    let addr = args.listen.unwrap_or_else(|| config.listen_addr());
    let keys: Vec<String> = config
        .keys()
        .iter()
        .map(|key| {
            let mut text = key.key_str().to_owned();
            let mut limits: Vec<String> = Vec::new();
            if key.id() != key.key_str() {
                limits.push(format!("name {}", key.id()));
            }
            limits.extend(
                [("rpm", key.rpm_limit()), ("tpm", key.tpm_limit())]
                    .into_iter()
                    .filter_map(|(name, limit)| limit.map(|l| format!("{name} {l}"))),
            );
            if !limits.is_empty() {
                text.push_str(&format!(" ({})", limits.join(", ")));
            }
            text
        })
        .collect();
    // Installed before the banner: whoever reads it may press Ctrl-C at once.
    let mut interrupts = Interrupts::install()
        .map_err(|err| CliError::Io(format!("waiting for Ctrl-C failed: {err}")))?;
    let sim = Simulator::start_on(config, addr)
        .await
        .map_err(|err| CliError::Io(format!("the simulator could not start: {err}")))?;

    println!("lbgpt simulator listening on {}", sim.addr());
    println!("  OpenAI base URL: {}", sim.base_url());
    println!(
        "  Azure endpoint:  {}  (POST /openai/deployments/{{deployment}}/chat/completions?api-version=...)",
        sim.endpoint()
    );
    if keys.is_empty() {
        println!("  keys: none configured: every request gets 401");
    } else {
        println!("  keys: {}", keys.join(", "));
    }
    println!("Press Ctrl-C to stop.");

    interrupts.next().await;
    let stats = sim.stats();
    sim.shutdown().await;
    eprintln!(
        "simulator stopped after {} requests ({} resets)",
        stats.requests, stats.resets
    );
    Ok(())
}
