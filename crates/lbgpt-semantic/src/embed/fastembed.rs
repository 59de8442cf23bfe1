//! [`FastembedEmbedder`]: a local sentence-embedding model run by fastembed on ONNX Runtime.

use super::{normalise, Embedder};
use crate::assets::{default_model_dir, default_runtime_library, FETCH_HINT};
use crate::SemanticError;
use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Settings of a [`FastembedEmbedder`].
///
/// ```no_run
/// use lbgpt_semantic::{FastembedConfig, FastembedEmbedder};
///
/// let embedder = FastembedEmbedder::new(
///     FastembedConfig::new("/models/all-minilm-l6-v2-int8")
///         .runtime_library("/opt/onnxruntime/libonnxruntime.so.1.31.0")
///         .sessions(2),
/// )?;
/// # Ok::<(), lbgpt_semantic::SemanticError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FastembedConfig {
    model_dir: PathBuf,
    runtime_library: PathBuf,
    max_length: usize,
    intra_threads: usize,
    batch_size: usize,
    sessions: usize,
    id: Option<String>,
}

impl Default for FastembedConfig {
    /// The model and runtime fetched by `cargo xtask fetch-assets`
    /// ([`default_model_dir`], [`default_runtime_library`]).
    fn default() -> Self {
        Self::new(default_model_dir()).runtime_library(default_runtime_library())
    }
}

impl FastembedConfig {
    /// A model in `model_dir`, which holds `model.onnx` (a sentence-transformers model
    /// exported to ONNX; mean pooling is applied), `tokenizer.json`, `config.json`,
    /// `special_tokens_map.json` and `tokenizer_config.json`. ONNX Runtime is loaded from
    /// [`default_runtime_library`] unless [`runtime_library`](Self::runtime_library) says
    /// otherwise. Defaults: 256 tokens per text, one intra-op thread, batches of 64, one
    /// session.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        FastembedConfig {
            model_dir: model_dir.into(),
            runtime_library: default_runtime_library(),
            max_length: 256,
            intra_threads: 1,
            batch_size: 64,
            sessions: 1,
            id: None,
        }
    }

    /// The ONNX Runtime shared library (`libonnxruntime.so.1.x`, version 1.24 or newer). It is
    /// loaded once per process: the first embedder's library is used by all.
    pub fn runtime_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.runtime_library = path.into();
        self
    }

    /// Tokens per text beyond which text is cut (default 256, what all-MiniLM-L6-v2 was
    /// trained with).
    pub fn max_length(mut self, tokens: usize) -> Self {
        self.max_length = tokens;
        self
    }

    /// Threads one model run may use (default 1: on small machines one thread per session is
    /// fastest; add sessions instead).
    pub fn intra_threads(mut self, threads: usize) -> Self {
        self.intra_threads = threads;
        self
    }

    /// Texts per model run (default 64).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size;
        self
    }

    /// Model sessions that embed in parallel (default 1); each holds its own copy of the
    /// model (about 25 MB for MiniLM int8).
    pub fn sessions(mut self, sessions: usize) -> Self {
        self.sessions = sessions;
        self
    }

    /// The embedder's id (default `fastembed:<model directory name>:<model.onnx size>`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The model directory.
    pub fn get_model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// The ONNX Runtime library.
    pub fn get_runtime_library(&self) -> &Path {
        &self.runtime_library
    }

    fn validate(&self) -> Result<(), SemanticError> {
        if self.max_length == 0 || self.max_length > 8192 {
            return Err(SemanticError::config(
                "max_length",
                "must be between 1 and 8192",
            ));
        }
        if self.intra_threads == 0 || self.intra_threads > 256 {
            return Err(SemanticError::config(
                "intra_threads",
                "must be between 1 and 256",
            ));
        }
        if self.batch_size == 0 {
            return Err(SemanticError::config("batch_size", "must be at least 1"));
        }
        if self.sessions == 0 || self.sessions > 64 {
            return Err(SemanticError::config(
                "sessions",
                "must be between 1 and 64",
            ));
        }
        Ok(())
    }
}

/// Embeds text with a local ONNX sentence-embedding model (all-MiniLM-L6-v2 int8 by default:
/// 384 dimensions) through fastembed, without any network access.
///
/// Built from files on disk: a missing model file or ONNX Runtime library is a
/// [`SemanticError::MissingAsset`] naming the path, a runtime that cannot be loaded a
/// [`SemanticError::Runtime`], never a panic. Embedding runs on tokio's blocking threads.
#[derive(Clone)]
pub struct FastembedEmbedder {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    dimensions: usize,
    batch_size: usize,
    sessions: Vec<Mutex<TextEmbedding>>,
    next: AtomicUsize,
}

impl fmt::Debug for FastembedEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastembedEmbedder")
            .field("id", &self.inner.id)
            .field("dimensions", &self.inner.dimensions)
            .field("sessions", &self.inner.sessions.len())
            .finish()
    }
}

impl FastembedEmbedder {
    /// The files a model directory must hold, in the order they are read: the ONNX model,
    /// then the four tokenizer files (what `lbgpt config check` looks for, loading nothing).
    pub const MODEL_FILES: [&'static str; 5] = [
        "model.onnx",
        "tokenizer.json",
        "config.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ];

    /// Loads the model fetched by `cargo xtask fetch-assets` ([`FastembedConfig::default`]).
    pub fn from_default_assets() -> Result<Self, SemanticError> {
        Self::new(FastembedConfig::default())
    }

    /// Loads the model `config` names, checks that it runs and measures its dimension.
    pub fn new(config: FastembedConfig) -> Result<Self, SemanticError> {
        config.validate()?;
        let [model_file, tokenizer_files @ ..] = Self::MODEL_FILES;
        let onnx_path = config.model_dir.join(model_file);
        let onnx = read_asset(&onnx_path, &format!("model file {model_file}"))?;
        let mut files = Vec::with_capacity(tokenizer_files.len());
        for name in tokenizer_files {
            let path = config.model_dir.join(name);
            files.push(read_asset(&path, &format!("tokenizer file {name}"))?);
        }
        let mut files = files.into_iter();
        let mut next_file = || files.next().unwrap_or_default();
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: next_file(),
            config_file: next_file(),
            special_tokens_map_file: next_file(),
            tokenizer_config_file: next_file(),
        };
        let environment = runtime_environment(&config.runtime_library)?;
        let id = config.id.clone().unwrap_or_else(|| {
            let name = config
                .model_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".to_owned());
            format!("fastembed:{name}:{}", onnx.len())
        });
        let mut sessions = Vec::with_capacity(config.sessions);
        for _ in 0..config.sessions {
            let model = UserDefinedEmbeddingModel::new(onnx.clone(), tokenizer_files.clone())
                .with_pooling(Pooling::Mean);
            let options = InitOptionsUserDefined::new()
                .with_environment(environment.clone())
                .with_max_length(config.max_length)
                .with_intra_threads(config.intra_threads);
            let session = TextEmbedding::try_new_from_user_defined(model, options)
                .map_err(|e| SemanticError::Model(format!("{}: {e}", onnx_path.display())))?;
            sessions.push(Mutex::new(session));
        }
        let mut inner = Inner {
            id,
            dimensions: 0,
            batch_size: config.batch_size,
            sessions,
            next: AtomicUsize::new(0),
        };
        let probe = inner.embed_blocking(&["probe".to_owned()])?;
        inner.dimensions = probe.first().map_or(0, Vec::len);
        if inner.dimensions == 0 {
            return Err(SemanticError::Model(format!(
                "{} produced an empty vector",
                onnx_path.display()
            )));
        }
        Ok(FastembedEmbedder {
            inner: Arc::new(inner),
        })
    }

    /// Embeds on the calling thread (for batch jobs and benchmarks outside an async context).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError> {
        self.inner.embed_blocking(texts)
    }
}

impl Inner {
    fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Take a free session if there is one, else wait for the next in turn.
        let count = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let mut guard = (0..count)
            .find_map(|offset| self.sessions[(start + offset) % count].try_lock().ok())
            .unwrap_or_else(|| {
                self.sessions[start]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            });
        let mut vectors = guard
            .embed(texts, Some(self.batch_size))
            .map_err(|e| SemanticError::Embedding(e.to_string()))?;
        drop(guard);
        if vectors.len() != texts.len() {
            return Err(SemanticError::Embedding(format!(
                "{} vectors for {} texts",
                vectors.len(),
                texts.len()
            )));
        }
        for vector in &mut vectors {
            normalise(vector);
        }
        Ok(vectors)
    }
}

#[async_trait::async_trait]
impl Embedder for FastembedEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SemanticError> {
        let inner = Arc::clone(&self.inner);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let texts = texts.to_vec();
                handle
                    .spawn_blocking(move || inner.embed_blocking(&texts))
                    .await
                    .map_err(|e| SemanticError::Embedding(format!("embedding task failed: {e}")))?
            }
            Err(_) => inner.embed_blocking(texts),
        }
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    fn id(&self) -> &str {
        &self.inner.id
    }
}

fn read_asset(path: &Path, what: &str) -> Result<Vec<u8>, SemanticError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SemanticError::MissingAsset {
            what: what.to_owned(),
            path: path.to_path_buf(),
            hint: FETCH_HINT.to_owned(),
        }),
        Err(e) => Err(SemanticError::io(path, e)),
    }
}

/// The process's ONNX Runtime environment: ONNX Runtime is one library per process and `ort`
/// allows one environment, so the first successful load is kept and shared.
static RUNTIME: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);

fn runtime_environment(library: &Path) -> Result<ort::environment::Environment, SemanticError> {
    // Checked even when a runtime is loaded already, so a wrong path is always reported.
    if !library.is_file() {
        return Err(SemanticError::MissingAsset {
            what: "ONNX Runtime library".to_owned(),
            path: library.to_path_buf(),
            hint: FETCH_HINT.to_owned(),
        });
    }
    let mut runtime = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(environment) = runtime.as_ref() {
        return Ok(environment.clone());
    }
    // `ort` resolves relative paths against the executable's directory; make it absolute.
    let absolute = std::path::absolute(library).map_err(|e| SemanticError::io(library, e))?;
    let environment = ort::init_from(&absolute)
        .map_err(|e| SemanticError::Runtime(e.to_string()))?
        .with_name("lbgpt-semantic")
        .build()
        .map_err(|e| SemanticError::Runtime(e.to_string()))?;
    *runtime = Some(environment.clone());
    Ok(environment)
}
