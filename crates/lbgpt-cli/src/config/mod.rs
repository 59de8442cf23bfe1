//! The `lbgpt.toml` config: serde types for the file ([`mod@file`]), the checks ([`validate`]) and
//! the checked result ([`Config`]). Loading needs no network and no API key; secrets are read
//! from the environment in a separate step ([`SecretSource::resolve`]).
//!
//! Every key is documented in `docs/config.md`.

pub mod check;
mod error;
mod file;
mod secret;
mod settings;
mod validate;

pub use error::ConfigError;
#[cfg(test)]
pub use file::ProviderKind;
pub use settings::{
    AzureCredential, BalanceSettings, CacheSettings, CacheStoreSettings, Config, ProviderApi,
    ProviderSettings, RetrySettings, SecretSource, TransportSettings, NO_PROXY,
};

use std::path::Path;

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|err| {
            let reason = match err.kind() {
                std::io::ErrorKind::NotFound => "file not found".to_owned(),
                _ => err.to_string(),
            };
            ConfigError::whole_file(path, format!("cannot read the config file: {reason}"))
        })?;
        Config::from_toml_str(path, &source)
    }

    /// Parses and checks `source`, naming `path` in errors.
    pub fn from_toml_str(path: &Path, source: &str) -> Result<Config, ConfigError> {
        let raw: file::RawConfig = toml::from_str(source).map_err(|err| {
            // serde says "field"; in TOML it is a key.
            let message = err
                .message()
                .trim_end()
                .replace("unknown field", "unknown key")
                .replace("duplicate field", "duplicate key");
            match err.span() {
                Some(span) => ConfigError::at(path, source, span, message),
                None => ConfigError::whole_file(path, message),
            }
        })?;
        validate::validate(path, source, raw)
    }
}

#[cfg(test)]
mod tests;
