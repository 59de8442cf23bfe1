//! The `lbgpt.toml` config: serde types for the file ([`mod@file`]), the checks ([`validate`]),
//! the checked result ([`Config`]) and the providers taken from the environment
//! ([`environment`]: `from_env` tables, a file without `[[providers]]`, no file at all).
//! Checking a file needs no network and no API key; the environment's keys are listed when the
//! file is loaded ([`Config::load`], [`Config::resolve_env`]; from the process environment,
//! the `.env` beside the file and `./.env`, [`Config::dotenv_files`]), and secrets are read in a
//! separate step ([`SecretSource::resolve`]).
//!
//! Every key is documented in `docs/config.md`.

pub mod check;
mod environment;
mod error;
mod file;
mod secret;
mod semantic_files;
mod settings;
mod validate;

pub use error::ConfigError;
#[cfg(test)]
pub use file::ProviderKind;
pub use settings::{
    AzureCredential, BalanceSettings, CacheSettings, CacheStoreSettings, Config, ProviderApi,
    ProviderSettings, RetrySettings, SecretSource, TransportSettings, NO_PROXY,
};

use std::path::{Path, PathBuf};

/// The config file `lbgpt run` and `lbgpt config check` read when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "lbgpt.toml";

impl Config {
    /// Reads and checks the config file at `path`, then adds the providers it takes from the
    /// environment ([`Config::resolve_env`] with the variables of [`Config::dotenv_files`]:
    /// the process environment, then the `.env` next to the file, then `./.env`; they also
    /// serve the variables the file names, e.g. in `api_key_env`).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let config = Config::read(path)?;
        let variables =
            lbgpt::env::EnvKeys::from_process_env_and_dotenv_files(Config::dotenv_files(path))
                .map_err(environment::dotenv_error)?;
        config.resolve_env(variables)
    }

    /// The `.env` files a run of the config file at `path` reads, in order of precedence (the
    /// process environment comes before both): the `.env` in the config file's directory
    /// (where its relative paths are taken from, so a project keeps its keys beside its
    /// config), then `./.env` in the working directory. The same file is read once.
    pub fn dotenv_files(path: &Path) -> [PathBuf; 2] {
        let beside = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(lbgpt::env::DOTENV_FILE),
            _ => PathBuf::from(lbgpt::env::DOTENV_FILE),
        };
        [beside, PathBuf::from(lbgpt::env::DOTENV_FILE)]
    }

    /// Reads and checks the config file at `path`, without looking at the environment.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
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
