//! The simulator's configuration: keys, limits, faults, latency, Azure options.

use crate::fault::RandomFaults;
use crate::{FaultMix, LimitMode};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Everything a [`Simulator`](crate::Simulator) needs to start.
///
/// ```
/// use lbgpt_sim::{FaultMix, KeyConfig, Latency, SimConfig};
/// use std::time::Duration;
///
/// let config = SimConfig::new()
///     .key(KeyConfig::new("sk-sim-a").rpm(600).tpm(100_000))
///     .key(KeyConfig::new("sk-sim-b").random_faults(0.2, FaultMix::default()))
///     .latency(Latency::fixed(Duration::from_millis(5)))
///     .seed(42);
/// assert_eq!(config.keys().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) seed: u64,
    pub(crate) latency: Latency,
    pub(crate) keys: Vec<KeyConfig>,
    pub(crate) azure_deployments: BTreeMap<String, String>,
    pub(crate) azure_api_versions: Vec<String>,
    pub(crate) seen_capacity: usize,
    pub(crate) tls: bool,
}

/// How many requests [`Simulator::seen_requests`](crate::Simulator::seen_requests) keeps by
/// default.
pub const DEFAULT_SEEN_CAPACITY: usize = 10_000;

impl SimConfig {
    /// No keys (every request is refused with 401 until keys are added), no latency, seed 0,
    /// listening on `127.0.0.1:0`, any Azure deployment and api-version accepted.
    pub fn new() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seed: 0,
            latency: Latency::none(),
            keys: Vec::new(),
            azure_deployments: BTreeMap::new(),
            azure_api_versions: Vec::new(),
            seen_capacity: DEFAULT_SEEN_CAPACITY,
            tls: false,
        }
    }

    /// Adds a key.
    pub fn key(mut self, key: KeyConfig) -> Self {
        self.keys.push(key);
        self
    }

    /// Sets the latency of successful answers.
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the seed of random fault injection.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the address [`Simulator::start`](crate::Simulator::start) listens on (default
    /// `127.0.0.1:0`, a free port on loopback).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Declares an Azure deployment and the model it serves (echoed as the answer's `model`).
    /// Once any deployment is declared, requests to other deployments get 404
    /// `DeploymentNotFound`; with none declared every deployment name is accepted and echoed
    /// as the model.
    pub fn azure_deployment(
        mut self,
        deployment: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        self.azure_deployments
            .insert(deployment.into(), model.into());
        self
    }

    /// Restricts the accepted Azure `api-version` values (default: any non-empty value).
    pub fn azure_api_versions<I, S>(mut self, versions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.azure_api_versions = versions.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how many requests the seen-request log keeps (default
    /// [`DEFAULT_SEEN_CAPACITY`]; 0 keeps none).
    pub fn seen_capacity(mut self, capacity: usize) -> Self {
        self.seen_capacity = capacity;
        self
    }

    /// Serves HTTPS instead of HTTP: a self-signed certificate for `localhost` and
    /// `127.0.0.1` is made when the simulator starts (a new key each time);
    /// [`Simulator::ca_certificate_pem`](crate::Simulator::ca_certificate_pem) gives it to
    /// clients to trust. For measuring a client's cost with TLS, as against a real provider.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The configured listen address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The configured keys.
    pub fn keys(&self) -> &[KeyConfig] {
        &self.keys
    }

    /// The configured seed.
    pub fn seed_value(&self) -> u64 {
        self.seed
    }

    /// The configured latency.
    pub fn latency_value(&self) -> Latency {
        self.latency
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::new()
    }
}

/// One API key the simulator accepts, with its optional limits and random faults.
///
/// The key string is what clients send (`Authorization: Bearer KEY` or `api-key: KEY`). Its
/// id, used in [`SimStats::keys`](crate::SimStats::keys) and
/// [`SeenRequest::key_id`](crate::SeenRequest::key_id), is the [`name`](KeyConfig::name) when
/// one is set, else the key string itself: simulator keys are test fixtures, not secrets.
/// `Debug` shows only the id when a name is set.
#[derive(Clone, PartialEq)]
pub struct KeyConfig {
    pub(crate) key: String,
    pub(crate) name: Option<String>,
    pub(crate) rpm: Option<u64>,
    pub(crate) tpm: Option<u64>,
    pub(crate) mode: LimitMode,
    pub(crate) token_factor: f64,
    pub(crate) random_faults: Option<RandomFaults>,
}

impl KeyConfig {
    /// A key without limits or faults.
    pub fn new(key: impl Into<String>) -> Self {
        KeyConfig {
            key: key.into(),
            name: None,
            rpm: None,
            tpm: None,
            mode: LimitMode::default(),
            token_factor: 1.0,
            random_faults: None,
        }
    }

    /// Names the key (its id in stats and the request log).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Limits the key to `rpm` requests per window (60 s by default).
    pub fn rpm(mut self, rpm: u64) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// Limits the key to `tpm` tokens per window (60 s by default), charged at arrival.
    pub fn tpm(mut self, tpm: u64) -> Self {
        self.tpm = Some(tpm);
        self
    }

    /// Sets how the limits are enforced (default: a 60 s sliding window; see [`LimitMode`] for
    /// the token bucket and Azure's short windows).
    pub fn limit_mode(mut self, mode: LimitMode) -> Self {
        self.mode = mode;
        self
    }

    /// Makes the key's provider count `factor` times the prompt tokens of
    /// [`lbgpt_core::tokens::approx_prompt_tokens`] (rounded to the nearest token), both in
    /// what its limits charge and in the `usage` its answers report (default 1.0). A factor
    /// of 1.3 simulates a provider whose tokenizer counts 30 % more than the client's
    /// estimate. Must be positive and finite ([`Simulator::start`](crate::Simulator::start)
    /// refuses others).
    pub fn token_factor(mut self, factor: f64) -> Self {
        self.token_factor = factor;
        self
    }

    /// Answers a share `probability` (0 to 1) of the key's requests with a fault drawn from
    /// `mix`. Draws are seeded by [`SimConfig::seed`]: the n-th request of a key meets the
    /// same fate on every run.
    pub fn random_faults(mut self, probability: f64, mix: FaultMix) -> Self {
        self.random_faults = Some(RandomFaults { probability, mix });
        self
    }

    /// The key's id: its name, else the key string.
    pub fn id(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.key)
    }

    /// The key string clients send.
    pub fn key_str(&self) -> &str {
        &self.key
    }

    /// The request limit, if any.
    pub fn rpm_limit(&self) -> Option<u64> {
        self.rpm
    }

    /// The token limit, if any.
    pub fn tpm_limit(&self) -> Option<u64> {
        self.tpm
    }

    /// How the limits are enforced.
    pub fn limit_mode_value(&self) -> LimitMode {
        self.mode
    }

    /// The prompt-token factor (see [`KeyConfig::token_factor`]).
    pub fn token_factor_value(&self) -> f64 {
        self.token_factor
    }
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key: &dyn fmt::Debug = match &self.name {
            Some(_) => &"<redacted>",
            None => &self.key,
        };
        f.debug_struct("KeyConfig")
            .field("key", key)
            .field("name", &self.name)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .field("mode", &self.mode)
            .field("token_factor", &self.token_factor)
            .field("random_faults", &self.random_faults)
            .finish()
    }
}

/// How long the simulator takes to answer a successful request: `fixed` plus
/// `per_output_token` times the answer's completion tokens (all choices). Error answers and
/// faults other than [`Fault::Stall`](crate::Fault::Stall) are immediate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    fixed: Duration,
    per_output_token: Duration,
}

impl Latency {
    /// No latency.
    pub fn none() -> Self {
        Latency::default()
    }

    /// A fixed latency per answer.
    pub fn fixed(fixed: Duration) -> Self {
        Latency {
            fixed,
            per_output_token: Duration::ZERO,
        }
    }

    /// Adds this much per generated token.
    pub fn per_output_token(mut self, per_token: Duration) -> Self {
        self.per_output_token = per_token;
        self
    }

    /// The fixed part.
    pub fn fixed_part(&self) -> Duration {
        self.fixed
    }

    /// The per-token part.
    pub fn per_token_part(&self) -> Duration {
        self.per_output_token
    }

    /// The latency of an answer of `completion_tokens` tokens.
    pub fn for_tokens(&self, completion_tokens: u64) -> Duration {
        let tokens = u32::try_from(completion_tokens).unwrap_or(u32::MAX);
        self.fixed
            .saturating_add(self.per_output_token.saturating_mul(tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_keys_hide_the_key_in_debug() {
        let named = KeyConfig::new("sk-secret-1").name("a");
        assert!(!format!("{named:?}").contains("sk-secret-1"));
        assert_eq!(named.id(), "a");
        assert_eq!(KeyConfig::new("sk-sim-b").id(), "sk-sim-b");
    }

    #[test]
    fn latency_adds_per_token_time() {
        let latency =
            Latency::fixed(Duration::from_millis(5)).per_output_token(Duration::from_millis(2));
        assert_eq!(latency.for_tokens(10), Duration::from_millis(25));
        assert_eq!(Latency::none().for_tokens(1_000), Duration::ZERO);
    }
}
