//! [`OpenAiEmbedder`]: vectors from an OpenAI-compatible `POST /embeddings` endpoint.
//!
//! A small reqwest call of its own: `lbgpt-core` has no embeddings request type yet. When it
//! gets one (`EmbeddingRequest` served by the provider crates), this embedder should go
//! through those services, and so through retries and the balancer.

use super::{normalise, Embedder};
use crate::SemanticError;
use lbgpt_core::{ApiError, Error, TransportKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Settings of an [`OpenAiEmbedder`].
///
/// ```
/// use lbgpt_semantic::OpenAiEmbedderConfig;
///
/// let config = OpenAiEmbedderConfig::new("text-embedding-3-small")
///     .api_key("sk-...")
///     .base_url("https://api.openai.com/v1")
///     .dimensions(512);
/// assert!(!format!("{config:?}").contains("sk-"));
/// ```
#[derive(Clone)]
pub struct OpenAiEmbedderConfig {
    model: String,
    base_url: String,
    api_key: Option<SecretString>,
    dimensions: Option<usize>,
    timeout: Duration,
}

impl fmt::Debug for OpenAiEmbedderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedderConfig")
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dimensions", &self.dimensions)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OpenAiEmbedderConfig {
    /// The embeddings model `model` at `https://api.openai.com/v1`, with the key of
    /// `OPENAI_API_KEY` when set, a 30 s timeout and the model's own dimension.
    pub fn new(model: impl Into<String>) -> Self {
        OpenAiEmbedderConfig {
            model: model.into(),
            base_url: "https://api.openai.com/v1".to_owned(),
            api_key: std::env::var("OPENAI_API_KEY")
                .ok()
                .filter(|k| !k.is_empty())
                .map(SecretString::from),
            dimensions: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// The API key, sent as `Authorization: Bearer`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The OpenAI-style base URL (`.../v1`); `/embeddings` is appended.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Asks for vectors of this dimension (the `dimensions` parameter) and skips the probe
    /// call that otherwise measures it at construction.
    pub fn dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = Some(dimensions);
        self
    }

    /// How long one call may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Embeds through an OpenAI-compatible embeddings endpoint; vectors are L2-normalised.
///
/// Errors keep the endpoint's status and message (as [`SemanticError::Endpoint`] holding an
/// [`lbgpt_core::Error`]) and never the key.
#[derive(Clone)]
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    url: String,
    config: OpenAiEmbedderConfig,
    id: String,
    dimensions: usize,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("id", &self.id)
            .field("dimensions", &self.dimensions)
            .field("config", &self.config)
            .finish()
    }
}

#[derive(Deserialize)]
struct EmbeddingsBody {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

impl OpenAiEmbedder {
    /// An embedder for `config`. Unless [`OpenAiEmbedderConfig::dimensions`] was given, one
    /// probe call measures the dimension, so a wrong URL, key or model fails here.
    pub async fn new(config: OpenAiEmbedderConfig) -> Result<Self, SemanticError> {
        if config.model.trim().is_empty() {
            return Err(SemanticError::config("model", "must not be empty"));
        }
        if config.dimensions == Some(0) {
            return Err(SemanticError::config("dimensions", "must be at least 1"));
        }
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SemanticError::config(
                "base_url",
                "must start with http:// or https://",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| SemanticError::config("base_url", e.to_string()))?;
        let mut embedder = OpenAiEmbedder {
            client,
            url: format!("{base}/embeddings"),
            id: format!(
                "openai:{}:{}",
                config.model,
                config
                    .dimensions
                    .map_or_else(String::new, |d| d.to_string())
            ),
            dimensions: config.dimensions.unwrap_or(0),
            config,
        };
        if embedder.dimensions == 0 {
            let probe = embedder.call(&["probe".to_owned()]).await?;
            embedder.dimensions = probe.first().map_or(0, Vec::len);
            if embedder.dimensions == 0 {
                return Err(SemanticError::Embedding(
                    "the endpoint returned an empty vector".into(),
                ));
            }
        }
        embedder.id = format!("openai:{}:{}", embedder.config.model, embedder.dimensions);
        Ok(embedder)
    }

    async fn call(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError> {
        let mut body = serde_json::json!({ "model": self.config.model, "input": texts });
        if let Some(dimensions) = self.config.dimensions {
            body["dimensions"] = serde_json::Value::from(dimensions);
        }
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(self.endpoint(ApiError::new(status, message).into()));
        }
        let parsed: EmbeddingsBody = serde_json::from_slice(&bytes).map_err(|e| {
            SemanticError::Embedding(format!(
                "the endpoint's answer is not an embeddings list: {e}"
            ))
        })?;
        if parsed.data.len() != texts.len() {
            return Err(SemanticError::Embedding(format!(
                "{} vectors for {} texts",
                parsed.data.len(),
                texts.len()
            )));
        }
        let mut items = parsed.data;
        items.sort_by_key(|item| item.index.unwrap_or(0));
        let mut vectors: Vec<Vec<f32>> = items.into_iter().map(|item| item.embedding).collect();
        for vector in &mut vectors {
            if self.dimensions != 0 && vector.len() != self.dimensions {
                return Err(SemanticError::Embedding(format!(
                    "a vector of dimension {} where {} was expected",
                    vector.len(),
                    self.dimensions
                )));
            }
            normalise(vector);
        }
        Ok(vectors)
    }

    fn transport(&self, error: reqwest::Error) -> SemanticError {
        let core = if error.is_timeout() {
            Error::Timeout {
                phase: lbgpt_core::TimeoutPhase::Request,
                after: Some(self.config.timeout),
            }
        } else {
            let kind = if error.is_connect() {
                TransportKind::Connect
            } else {
                TransportKind::Other
            };
            Error::Transport {
                kind,
                message: error.without_url().to_string(),
            }
        };
        self.endpoint(core)
    }

    fn endpoint(&self, mut error: Error) -> SemanticError {
        if let Some(key) = &self.config.api_key {
            error.redact(key.expose_secret());
        }
        SemanticError::Endpoint(error)
    }
}

#[async_trait::async_trait]
impl Embedder for OpenAiEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.call(texts).await
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn id(&self) -> &str {
        &self.id
    }
}
