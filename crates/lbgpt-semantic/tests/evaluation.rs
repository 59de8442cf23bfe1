//! The project's labelled pairs with the real model: the default threshold and guard meet the
//! targets (precision >= 0.98, recall on paraphrases >= 0.5), and the guard is what gets there.

mod common;

use lbgpt_semantic::evaluation::{load_pairs, measure, score_pairs};
use lbgpt_semantic::{FalseHitGuard, SemanticConfig};
use std::path::Path;

#[tokio::test]
async fn the_default_threshold_meets_the_precision_and_recall_targets() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval-pairs.jsonl");
    let pairs = load_pairs(&path).expect("pairs load");
    let positives = pairs.iter().filter(|p| p.same).count();
    assert!(pairs.len() >= 300, "{} pairs", pairs.len());
    assert!(positives >= 150 && pairs.len() - positives >= 150);

    let embedder = common::embedder();
    let scored = score_pairs(embedder.as_ref(), &pairs, &FalseHitGuard::new())
        .await
        .expect("scored");
    let threshold = SemanticConfig::DEFAULT_THRESHOLD;
    let guarded = measure(&scored, threshold, true);
    assert!(guarded.precision >= 0.98, "{guarded:?}");
    assert!(guarded.recall >= 0.5, "{guarded:?}");
    let plain = measure(&scored, threshold, false);
    assert!(
        plain.precision < 0.8,
        "the hard negatives are hard: {plain:?}"
    );
    assert!(
        plain.wrong > 10 * guarded.wrong.max(1),
        "{plain:?} vs {guarded:?}"
    );
}
