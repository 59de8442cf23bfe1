//! The files of a `[semantic_cache]` table, checked on disk without loading anything (for
//! `lbgpt config check`): the model directory holds every file the model is loaded from, the
//! ONNX Runtime library exists, and the index can be saved where `index_dir` says. Each error
//! names the missing file and the key's line (the table's line for a default).

use super::error::ConfigError;
use super::settings::{ErrorSite, SemanticSettings};
use lbgpt::semantic::assets::FETCH_HINT;
use lbgpt::semantic::FastembedEmbedder;
use std::path::{Path, PathBuf};

/// The files the semantic cache loads from a model directory, as `lbgpt-semantic` reads them.
const MODEL_FILES: [&str; 5] = FastembedEmbedder::MODEL_FILES;

impl SemanticSettings {
    /// Checks that the model directory holds [`MODEL_FILES`], that the ONNX Runtime library is
    /// a file (both as set, else their defaults, which `LBGPT_ASSETS_DIR` and `ORT_DYLIB_PATH`
    /// change), and that `index_dir`, when set, is a writable directory or can be created (its
    /// nearest existing parent is a writable directory). Loads nothing and leaves nothing
    /// behind (a probe file is created and removed to test writing).
    pub fn check_files(&self, config_path: &Path) -> Result<(), ConfigError> {
        let embedder = self.settings.embedder_config();
        self.check_model_dir(config_path, embedder.get_model_dir())?;
        self.check_runtime_library(config_path, embedder.get_runtime_library())?;
        if let Some(dir) = &self.settings.index_dir {
            self.check_index_dir(config_path, dir)?;
        }
        Ok(())
    }

    fn check_model_dir(&self, config_path: &Path, dir: &Path) -> Result<(), ConfigError> {
        let (site, what, advice) = match &self.path_sites.model_dir {
            Some(site) => (site, "key `model_dir`: the model directory", String::new()),
            None => (
                &self.site,
                "no `model_dir` is set, and the default model directory",
                format!("; {FETCH_HINT}, or set `model_dir`"),
            ),
        };
        let problem = if !dir.exists() {
            "does not exist".to_owned()
        } else if !dir.is_dir() {
            "is not a directory".to_owned()
        } else {
            let missing: Vec<&str> = MODEL_FILES
                .iter()
                .copied()
                .filter(|name| !dir.join(name).is_file())
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            format!("has no {}", missing.join(", "))
        };
        let problem = format!(
            "{problem} (a model directory holds {})",
            MODEL_FILES.join(", ")
        );
        Err(error(
            site,
            config_path,
            format!("{what} {} {problem}{advice}", dir.display()),
        ))
    }

    fn check_runtime_library(&self, config_path: &Path, library: &Path) -> Result<(), ConfigError> {
        if library.is_file() {
            return Ok(());
        }
        let (site, what, advice) = match &self.path_sites.runtime_library {
            Some(site) => (
                site,
                "key `runtime_library`: the ONNX Runtime library",
                String::new(),
            ),
            None => (
                &self.site,
                "no `runtime_library` is set, and the default ONNX Runtime library",
                format!("; {FETCH_HINT}, or set `runtime_library` (or ORT_DYLIB_PATH)"),
            ),
        };
        let problem = if library.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        Err(error(
            site,
            config_path,
            format!("{what} {} {problem}{advice}", library.display()),
        ))
    }

    fn check_index_dir(&self, config_path: &Path, dir: &Path) -> Result<(), ConfigError> {
        let site = self.path_sites.index_dir.as_ref().unwrap_or(&self.site);
        let fail = |problem: String| {
            Err(error(
                site,
                config_path,
                format!(
                    "key `index_dir`: {problem}; the index is saved there at the end of every \
                     run"
                ),
            ))
        };
        if dir.exists() {
            if !dir.is_dir() {
                return fail(format!("{} is not a directory", dir.display()));
            }
            return match probe_write(dir) {
                Ok(()) => Ok(()),
                Err(err) => fail(format!("{} is not writable: {err}", dir.display())),
            };
        }
        let Some(parent) = nearest_existing_ancestor(dir) else {
            return fail(format!(
                "{} cannot be created: none of its parents exists",
                dir.display()
            ));
        };
        if !parent.is_dir() {
            return fail(format!(
                "{} cannot be created: {} is not a directory",
                dir.display(),
                parent.display()
            ));
        }
        match probe_write(&parent) {
            Ok(()) => Ok(()),
            Err(err) => fail(format!(
                "{} cannot be created: {} is not writable: {err}",
                dir.display(),
                parent.display()
            )),
        }
    }
}

/// An error at `site` of `config_path` about the table: `message` is `key `...`: ...` or says
/// what is wrong with a default.
fn error(site: &ErrorSite, config_path: &Path, message: String) -> ConfigError {
    let separator = if message.starts_with("key `") {
        " "
    } else {
        ": "
    };
    site.error(
        config_path,
        format!("`[semantic_cache]`{separator}{message}"),
    )
}

/// The nearest ancestor of `path` that exists (`.` for a relative path none of whose
/// parents exists).
fn nearest_existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors().skip(1).find_map(|ancestor| {
        if ancestor.as_os_str().is_empty() {
            Some(PathBuf::from("."))
        } else if ancestor.exists() {
            Some(ancestor.to_owned())
        } else {
            None
        }
    })
}

/// Creates and removes a file in `dir`: the only sure test that it can be written to (a
/// read-only file system, ACLs and the user's rights all play a part).
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let probe = dir.join(format!(
        ".lbgpt-config-check-{}-{nanos}",
        std::process::id()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
