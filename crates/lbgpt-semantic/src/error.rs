//! [`SemanticError`]: what can go wrong while building or using the semantic cache.

use std::path::PathBuf;

/// Why the semantic cache (or one of its parts) could not be built or could not answer.
///
/// Construction errors ([`SemanticError::MissingAsset`], [`SemanticError::Runtime`],
/// [`SemanticError::Model`], [`SemanticError::Config`]) name the file or setting at fault.
/// At run time the layer never fails a request because of its cache: an embedding or index
/// error is logged and the request goes upstream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SemanticError {
    /// A file the embedder needs is not where it was looked for.
    #[error("{what} not found at {}: {hint}", path.display())]
    MissingAsset {
        /// What is missing (e.g. "ONNX Runtime library", "model file model.onnx").
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it (e.g. "run `cargo xtask fetch-assets`").
        hint: String,
    },
    /// ONNX Runtime could not be loaded or set up.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// The embedding model could not be loaded.
    #[error("embedding model: {0}")]
    Model(String),
    /// Embedding some text failed.
    #[error("embedding failed: {0}")]
    Embedding(String),
    /// The embeddings endpoint answered with an error.
    #[error("embeddings endpoint: {0}")]
    Endpoint(#[source] lbgpt_core::Error),
    /// The vector index refused an operation (wrong dimension, bad saved data, ...).
    #[error("vector index: {0}")]
    Index(String),
    /// A saved index is of a format version this version of the crate cannot read (written
    /// by a newer one).
    #[error(
        "the index saved in {} is format version {found}; this version of lbgpt-semantic reads versions {readable:?}: open it with the lbgpt that wrote it, or use another directory (or delete this one) to start over",
        path.display()
    )]
    IndexVersion {
        /// The saved index's directory.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The versions this crate reads.
        readable: Vec<u32>,
    },
    /// A file operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid setting `{field}`: {message}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl SemanticError {
    /// A [`SemanticError::Config`] about `field`.
    pub fn config(field: &'static str, message: impl Into<String>) -> Self {
        SemanticError::Config {
            field,
            message: message.into(),
        }
    }

    /// A [`SemanticError::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SemanticError::Io {
            path: path.into(),
            source,
        }
    }

    /// The same error again, for each caller of a batch that failed as a whole (an I/O error's
    /// source keeps its kind and message).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            SemanticError::MissingAsset { what, path, hint } => SemanticError::MissingAsset {
                what: what.clone(),
                path: path.clone(),
                hint: hint.clone(),
            },
            SemanticError::Runtime(message) => SemanticError::Runtime(message.clone()),
            SemanticError::Model(message) => SemanticError::Model(message.clone()),
            SemanticError::Embedding(message) => SemanticError::Embedding(message.clone()),
            SemanticError::Endpoint(error) => SemanticError::Endpoint(error.clone()),
            SemanticError::Index(message) => SemanticError::Index(message.clone()),
            SemanticError::IndexVersion {
                path,
                found,
                readable,
            } => SemanticError::IndexVersion {
                path: path.clone(),
                found: *found,
                readable: readable.clone(),
            },
            SemanticError::Io { path, source } => SemanticError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            SemanticError::Config { field, message } => SemanticError::Config {
                field,
                message: message.clone(),
            },
        }
    }
}

impl From<SemanticError> for lbgpt_core::Error {
    /// Semantic-cache errors reach users when the cache is built (missing model, bad
    /// setting), so they become [`lbgpt_core::Error::Config`].
    fn from(error: SemanticError) -> Self {
        match error {
            SemanticError::Endpoint(inner) => inner,
            other => lbgpt_core::Error::Config(other.to_string()),
        }
    }
}
