//! Reading a [`SimConfig`] from TOML (for `lbgpt sim --config FILE`).

use crate::{Fault, FaultMix, KeyConfig, Latency, LimitMode, SimConfig, SimConfigError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlSim {
    listen: Option<String>,
    seed: Option<u64>,
    seen_capacity: Option<usize>,
    latency: Option<TomlLatency>,
    azure: Option<TomlAzure>,
    #[serde(default)]
    keys: Vec<TomlKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlLatency {
    #[serde(default)]
    fixed_ms: f64,
    #[serde(default)]
    per_output_token_ms: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlAzure {
    #[serde(default)]
    api_versions: Vec<String>,
    #[serde(default)]
    deployments: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlKey {
    key: String,
    name: Option<String>,
    rpm: Option<u64>,
    tpm: Option<u64>,
    limit_mode: Option<TomlLimitMode>,
    window_ms: Option<u64>,
    period_ms: Option<u64>,
    token_factor: Option<f64>,
    fault_probability: Option<f64>,
    faults: Option<Vec<TomlFault>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TomlLimitMode {
    SlidingWindow,
    TokenBucket,
    ShortWindows,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TomlFaultKind {
    RateLimited,
    InsufficientQuota,
    ServerError,
    Unavailable,
    Status,
    Stall,
    Reset,
    MalformedJson,
    Unauthorized,
    EmptyBody,
    NonJsonBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFault {
    kind: TomlFaultKind,
    #[serde(default = "one")]
    weight: u32,
    retry_after_ms: Option<u64>,
    status: Option<u16>,
    duration_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

impl SimConfig {
    /// Reads a configuration from TOML text. Every key is optional except `keys[].key`:
    ///
    /// ```toml
    /// listen = "127.0.0.1:8080"      # default 127.0.0.1:0
    /// seed = 42                      # default 0
    /// seen_capacity = 10000          # requests kept in the log
    ///
    /// [latency]
    /// fixed_ms = 5                   # per successful answer
    /// per_output_token_ms = 0.5      # per completion token
    ///
    /// [azure]
    /// api_versions = ["2024-10-21"]  # default: any non-empty api-version
    /// deployments = { "gpt4o-prod" = "gpt-4o" }   # default: any deployment, echoed as model
    ///
    /// [[keys]]
    /// key = "sk-sim-a"
    /// name = "a"                     # id in stats and logs; default: the key
    /// rpm = 600                      # optional
    /// tpm = 100000                   # optional
    /// limit_mode = "sliding_window"  # or "token_bucket" or "short_windows"
    /// window_ms = 60000              # sliding window: its length, default 60000
    ///                                # short windows: their length, default 10000
    /// period_ms = 60000              # token bucket: refill time from empty, default 60000
    ///                                # short windows: the period limits are per, default 60000
    /// token_factor = 1.3             # prompt tokens counted x this, default 1.0
    /// fault_probability = 0.2        # optional random faults
    /// faults = [                     # the mix; default: FaultMix::default()
    ///   { kind = "rate_limited", weight = 4, retry_after_ms = 100 },
    ///   { kind = "server_error", weight = 2 },
    ///   { kind = "unavailable", retry_after_ms = 500 },
    ///   { kind = "status", status = 418 },
    ///   { kind = "stall", duration_ms = 5000 },
    ///   { kind = "reset" },
    /// ]
    /// ```
    ///
    /// Limit modes ([`LimitMode`]): `sliding_window` (the default; takes `window_ms`),
    /// `token_bucket` (OpenAI-like; takes `period_ms`) and `short_windows` (Azure-like: a
    /// 600 RPM key accepts 100 requests per 10 s; takes `window_ms` and `period_ms`). A
    /// setting the mode does not use is an error.
    ///
    /// Fault kinds: `rate_limited` (`retry_after_ms`, default 1000), `insufficient_quota`,
    /// `server_error`, `unavailable` (optional `retry_after_ms`), `status` (`status`), `stall`
    /// (`duration_ms`), `reset`, `malformed_json`, `unauthorized`, `empty_body` and
    /// `non_json_body` (`status`, default 502). `weight` defaults to 1.
    ///
    /// Every table rejects keys it does not know, and the error names the key and its line.
    ///
    /// ```
    /// let config = lbgpt_sim::SimConfig::from_toml_str(r#"
    ///     seed = 7
    ///     [[keys]]
    ///     key = "sk-sim-a"
    ///     rpm = 60
    /// "#).unwrap();
    /// assert_eq!(config.keys()[0].rpm_limit(), Some(60));
    ///
    /// let error = lbgpt_sim::SimConfig::from_toml_str("[[keys]]\nkey = \"k\"\nrpmm = 60\n")
    ///     .unwrap_err();
    /// assert!(error.to_string().contains("rpmm"));
    /// ```
    pub fn from_toml_str(text: &str) -> Result<SimConfig, SimConfigError> {
        let raw: TomlSim = toml::from_str(text).map_err(|error| SimConfigError::Toml {
            path: None,
            message: error.to_string(),
        })?;
        raw.into_config()
    }

    /// Reads a configuration from a TOML file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<SimConfig, SimConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SimConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        SimConfig::from_toml_str(&text).map_err(|error| match error {
            SimConfigError::Toml { message, .. } => SimConfigError::Toml {
                path: Some(path.to_owned()),
                message,
            },
            SimConfigError::Invalid { field, message } => SimConfigError::Toml {
                path: Some(path.to_owned()),
                message: format!("invalid `{field}`: {message}"),
            },
            other => other,
        })
    }
}

fn millis(field: &str, value: f64) -> Result<Duration, SimConfigError> {
    Duration::try_from_secs_f64(value / 1000.0).map_err(|_| {
        SimConfigError::invalid(
            field,
            format!("must be a non-negative number of milliseconds, got {value}"),
        )
    })
}

impl TomlSim {
    fn into_config(self) -> Result<SimConfig, SimConfigError> {
        let mut config = SimConfig::new();
        if let Some(listen) = self.listen {
            let addr: SocketAddr = listen.parse().map_err(|_| {
                SimConfigError::invalid(
                    "listen",
                    format!("`{listen}` is not an IP address with a port, like 127.0.0.1:8080"),
                )
            })?;
            config = config.listen(addr);
        }
        if let Some(seed) = self.seed {
            config = config.seed(seed);
        }
        if let Some(capacity) = self.seen_capacity {
            config = config.seen_capacity(capacity);
        }
        if let Some(latency) = self.latency {
            config = config.latency(
                Latency::fixed(millis("latency.fixed_ms", latency.fixed_ms)?).per_output_token(
                    millis("latency.per_output_token_ms", latency.per_output_token_ms)?,
                ),
            );
        }
        if let Some(azure) = self.azure {
            config = config.azure_api_versions(azure.api_versions);
            for (deployment, model) in azure.deployments {
                config = config.azure_deployment(deployment, model);
            }
        }
        for (index, key) in self.keys.into_iter().enumerate() {
            config = config.key(key.into_key(index)?);
        }
        Ok(config)
    }
}

impl TomlKey {
    fn into_key(self, index: usize) -> Result<KeyConfig, SimConfigError> {
        let field = |name: &str| format!("keys[{index}].{name}");
        let mut key = KeyConfig::new(self.key);
        if let Some(name) = self.name {
            key = key.name(name);
        }
        if let Some(rpm) = self.rpm {
            key = key.rpm(rpm);
        }
        if let Some(tpm) = self.tpm {
            key = key.tpm(tpm);
        }
        key = key.limit_mode(limit_mode(
            self.limit_mode.unwrap_or(TomlLimitMode::SlidingWindow),
            self.window_ms.map(Duration::from_millis),
            self.period_ms.map(Duration::from_millis),
            &field,
        )?);
        if let Some(factor) = self.token_factor {
            if !(factor.is_finite() && factor > 0.0) {
                return Err(SimConfigError::invalid(
                    field("token_factor"),
                    format!("must be a positive number, got {factor}"),
                ));
            }
            key = key.token_factor(factor);
        }
        match (self.fault_probability, self.faults) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(SimConfigError::invalid(
                    field("faults"),
                    "a fault mix needs `fault_probability` (0 to 1) beside it",
                ))
            }
            (Some(probability), faults) => {
                if !(0.0..=1.0).contains(&probability) {
                    return Err(SimConfigError::invalid(
                        field("fault_probability"),
                        format!("must be between 0 and 1, got {probability}"),
                    ));
                }
                let mix = match faults {
                    None => FaultMix::default(),
                    Some(entries) => {
                        let mut mix = FaultMix::new();
                        for (i, entry) in entries.into_iter().enumerate() {
                            let weight = entry.weight;
                            mix = mix
                                .with(entry.into_fault(&field(&format!("faults[{i}]")))?, weight);
                        }
                        mix
                    }
                };
                key = key.random_faults(probability, mix);
            }
        }
        Ok(key)
    }
}

/// The limit mode of a key's `limit_mode`, `window_ms` and `period_ms`.
fn limit_mode(
    mode: TomlLimitMode,
    window: Option<Duration>,
    period: Option<Duration>,
    field: &dyn Fn(&str) -> String,
) -> Result<LimitMode, SimConfigError> {
    let defaults = LimitMode::short_windows();
    let unused = |name: &str, mode: &str| {
        SimConfigError::invalid(field(name), format!("is not used by limit_mode `{mode}`"))
    };
    let mode = match mode {
        TomlLimitMode::SlidingWindow => match period {
            Some(_) => Err(unused("period_ms", "sliding_window")),
            None => Ok(window.map_or_else(LimitMode::default, LimitMode::sliding_window)),
        },
        TomlLimitMode::TokenBucket => match window {
            Some(_) => Err(unused("window_ms", "token_bucket")),
            None => Ok(period.map_or_else(LimitMode::token_bucket, LimitMode::token_bucket_over)),
        },
        TomlLimitMode::ShortWindows => Ok(LimitMode::short_windows_of(
            window.unwrap_or(defaults.window()),
            period.unwrap_or(defaults.period()),
        )),
    }?;
    match mode.problem() {
        Some((setting, message)) => Err(SimConfigError::invalid(
            field(&format!("{setting}_ms")),
            message,
        )),
        None => Ok(mode),
    }
}

impl TomlFault {
    fn into_fault(self, field: &str) -> Result<Fault, SimConfigError> {
        use TomlFaultKind as K;
        let unused = |name: &str, present: bool| {
            if present {
                Err(SimConfigError::invalid(
                    format!("{field}.{name}"),
                    format!("is not used by fault kind `{}`", kind_name(self.kind)),
                ))
            } else {
                Ok(())
            }
        };
        let takes_retry = matches!(self.kind, K::RateLimited | K::Unavailable);
        let takes_status = matches!(self.kind, K::Status | K::EmptyBody | K::NonJsonBody);
        unused(
            "retry_after_ms",
            !takes_retry && self.retry_after_ms.is_some(),
        )?;
        unused("status", !takes_status && self.status.is_some())?;
        unused(
            "duration_ms",
            !matches!(self.kind, K::Stall) && self.duration_ms.is_some(),
        )?;
        let status = |default: Option<u16>| -> Result<u16, SimConfigError> {
            let status = self.status.or(default).ok_or_else(|| {
                SimConfigError::invalid(
                    format!("{field}.status"),
                    "is required for this fault kind",
                )
            })?;
            if (100..=599).contains(&status) {
                Ok(status)
            } else {
                Err(SimConfigError::invalid(
                    format!("{field}.status"),
                    format!("must be an HTTP status from 100 to 599, got {status}"),
                ))
            }
        };
        Ok(match self.kind {
            K::RateLimited => Fault::RateLimited {
                retry_after: Duration::from_millis(self.retry_after_ms.unwrap_or(1000)),
            },
            K::InsufficientQuota => Fault::InsufficientQuota,
            K::ServerError => Fault::ServerError,
            K::Unavailable => Fault::Unavailable {
                retry_after: self.retry_after_ms.map(Duration::from_millis),
            },
            K::Status => Fault::Status(status(None)?),
            K::Stall => Fault::Stall(Duration::from_millis(self.duration_ms.ok_or_else(
                || {
                    SimConfigError::invalid(
                        format!("{field}.duration_ms"),
                        "is required for a stall",
                    )
                },
            )?)),
            K::Reset => Fault::Reset,
            K::MalformedJson => Fault::MalformedJson,
            K::Unauthorized => Fault::Unauthorized,
            K::EmptyBody => Fault::EmptyBody(status(Some(502))?),
            K::NonJsonBody => Fault::NonJsonBody(status(Some(502))?),
        })
    }
}

fn kind_name(kind: TomlFaultKind) -> &'static str {
    use TomlFaultKind as K;
    match kind {
        K::RateLimited => "rate_limited",
        K::InsufficientQuota => "insufficient_quota",
        K::ServerError => "server_error",
        K::Unavailable => "unavailable",
        K::Status => "status",
        K::Stall => "stall",
        K::Reset => "reset",
        K::MalformedJson => "malformed_json",
        K::Unauthorized => "unauthorized",
        K::EmptyBody => "empty_body",
        K::NonJsonBody => "non_json_body",
    }
}
