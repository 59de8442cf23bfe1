//! The real local embedder: loads from the fetched assets, produces normalised vectors that
//! put paraphrases close and unrelated texts far apart; missing files are typed errors.

mod common;

use lbgpt_semantic::{dot, Embedder, FastembedConfig, FastembedEmbedder, SemanticError};

#[tokio::test]
async fn paraphrases_are_close_and_unrelated_texts_far() {
    let embedder = common::embedder();
    assert_eq!(embedder.dimensions(), 384);
    assert!(
        embedder
            .id()
            .starts_with("fastembed:all-minilm-l6-v2-int8:"),
        "{}",
        embedder.id()
    );
    let texts: Vec<String> = [
        "How do I reset my password?",
        "What are the steps to reset my password?",
        "What is the boiling point of water at sea level?",
    ]
    .map(String::from)
    .to_vec();
    let vectors = embedder.embed(&texts).await.expect("embeds");
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        let norm: f32 = dot(vector, vector);
        assert!((norm - 1.0).abs() < 1e-3, "not normalised: {norm}");
    }
    let paraphrase = dot(&vectors[0], &vectors[1]);
    let unrelated = dot(&vectors[0], &vectors[2]);
    assert!(paraphrase > 0.8, "paraphrase similarity {paraphrase}");
    assert!(unrelated < 0.3, "unrelated similarity {unrelated}");
    // A batch gives the same vectors as single calls.
    let single = embedder.embed_one(&texts[2]).await.expect("embeds");
    assert!(dot(&single, &vectors[2]) > 0.999);
}

#[test]
fn a_missing_model_is_a_typed_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = FastembedEmbedder::new(FastembedConfig::new(dir.path())).expect_err("no model");
    match &error {
        SemanticError::MissingAsset { path, hint, .. } => {
            assert_eq!(path, &dir.path().join("model.onnx"));
            assert!(hint.contains("cargo xtask fetch-assets"), "{hint}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(error.to_string().contains("model.onnx"), "{error}");
}

#[test]
fn a_missing_runtime_is_a_typed_error_not_a_panic() {
    let model_dir = lbgpt_semantic::assets::default_model_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("libonnxruntime.so.1.31.0");
    let error = FastembedEmbedder::new(FastembedConfig::new(model_dir).runtime_library(&missing))
        .expect_err("no runtime");
    match &error {
        SemanticError::MissingAsset { what, path, .. } => {
            assert_eq!(what, "ONNX Runtime library");
            assert_eq!(path, &missing);
        }
        other => panic!("unexpected error {other:?}"),
    }
    // A file that is not a library: an error from the loader, not a panic (only checked while
    // no runtime is loaded in this process; the other tests of this binary may have loaded one).
    let bogus = dir.path().join("libonnxruntime.so");
    std::fs::write(&bogus, b"not a library").expect("write");
    let result = FastembedEmbedder::new(
        FastembedConfig::new(lbgpt_semantic::assets::default_model_dir()).runtime_library(&bogus),
    );
    if let Err(error) = result {
        assert!(
            matches!(
                error,
                SemanticError::Runtime(_) | SemanticError::MissingAsset { .. }
            ),
            "{error:?}"
        );
    }
}

#[test]
fn bad_settings_are_rejected_before_loading() {
    let error = FastembedEmbedder::new(FastembedConfig::default().sessions(0)).expect_err("bad");
    assert!(
        matches!(
            error,
            SemanticError::Config {
                field: "sessions",
                ..
            }
        ),
        "{error:?}"
    );
}
