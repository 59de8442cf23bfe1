//! Errors that stop a command before or while it runs (exit status 2).

use crate::config::ConfigError;
use std::fmt;

/// A usage, config or I/O error: the command could not do its job.
#[derive(Debug)]
pub enum CliError {
    /// The config file is missing or wrong.
    Config(ConfigError),
    /// A command-line argument is wrong (missing file, bad path, ...).
    Usage(String),
    /// Reading input or writing output failed midway, or the simulator could not start.
    Io(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Config(err) => err.fmt(f),
            CliError::Usage(message) | CliError::Io(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ConfigError> for CliError {
    fn from(err: ConfigError) -> Self {
        CliError::Config(err)
    }
}
