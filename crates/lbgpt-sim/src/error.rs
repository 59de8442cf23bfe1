//! The simulator's errors.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The configuration is invalid.
    #[error("invalid simulator configuration: {0}")]
    Config(#[from] SimConfigError),
    /// The listen address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another I/O failure while starting.
    #[error("simulator i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate could not be made or installed.
    #[error("simulator TLS setup failed: {0}")]
    Tls(String),
}

/// What is wrong with a simulator configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimConfigError {
    /// The configuration file could not be read.
    #[error("could not read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The TOML text is malformed or holds an unknown key; the message names the line and key.
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Toml {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The parser's message (line, column and the offending key).
        message: String,
    },
    /// A setting has an invalid value.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// The setting, e.g. `keys[1].rpm`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl SimConfigError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SimConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
