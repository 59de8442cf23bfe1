//! Measuring the semantic cache on labelled pairs: precision (right hits / all hits) and
//! recall (hits on true paraphrases / true paraphrases) per threshold, with and without the
//! [`FalseHitGuard`].
//!
//! A pair is a hit when the similarity of its two texts reaches the threshold (and, with the
//! guard, the guard accepts it): the cache would answer `b` with `a`'s answer. The project's
//! own set is `data/eval-pairs.jsonl` in this crate (`cargo xtask semantic-eval`); the same
//! code measures any other set of the same form.

use crate::{dot, Embedder, FalseHitGuard, SemanticError};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// One labelled pair: `{"a": .., "b": .., "same": true|false, "kind": ..}` per JSONL line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LabelledPair {
    /// The cached request's text.
    pub a: String,
    /// The new request's text.
    pub b: String,
    /// Whether `a`'s answer is right for `b`.
    pub same: bool,
    /// The kind of pair (`paraphrase`, `negation`, `entity`, `number`, `date`, `scope`,
    /// `opposite`, `unrelated`), for reports.
    #[serde(default)]
    pub kind: String,
    /// Which part of the set the pair belongs to: `dev` (pairs the guard was designed on) or
    /// `holdout` (written after the guard was frozen, to measure how it generalises).
    #[serde(default = "dev")]
    pub split: String,
}

fn dev() -> String {
    "dev".to_owned()
}

/// A pair with its similarity and the guard's verdict.
#[derive(Debug, Clone)]
pub struct ScoredPair {
    /// The pair.
    pub pair: LabelledPair,
    /// Cosine similarity of the two texts.
    pub score: f32,
    /// Whether the default guard accepts the pair.
    pub guard_accepts: bool,
}

/// Precision and recall at one threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// The threshold.
    pub threshold: f32,
    /// Pairs that would be served (hits).
    pub hits: usize,
    /// Hits on pairs labelled the same.
    pub right: usize,
    /// Hits on pairs labelled different (wrong answers served).
    pub wrong: usize,
    /// right / hits (1 when there are no hits).
    pub precision: f64,
    /// right / pairs labelled the same.
    pub recall: f64,
}

/// Reads a JSONL file of [`LabelledPair`]s.
pub fn load_pairs(path: &Path) -> Result<Vec<LabelledPair>, SemanticError> {
    let text = std::fs::read_to_string(path).map_err(|e| SemanticError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line).map_err(|e| {
                SemanticError::config(
                    "pairs",
                    format!("{} line {}: {e}", path.display(), number + 1),
                )
            })
        })
        .collect()
}

/// Embeds every text once and scores every pair (with `guard`'s verdict).
pub async fn score_pairs(
    embedder: &dyn Embedder,
    pairs: &[LabelledPair],
    guard: &FalseHitGuard,
) -> Result<Vec<ScoredPair>, SemanticError> {
    let mut texts: Vec<String> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for pair in pairs {
        for text in [&pair.a, &pair.b] {
            if !position.contains_key(text.as_str()) {
                position.insert(text, texts.len());
                texts.push(text.clone());
            }
        }
    }
    let vectors = embedder.embed(&texts).await?;
    let vector = |text: &str| position.get(text).and_then(|&i| vectors.get(i));
    pairs
        .iter()
        .map(|pair| {
            let (Some(a), Some(b)) = (vector(&pair.a), vector(&pair.b)) else {
                return Err(SemanticError::Embedding("a text was not embedded".into()));
            };
            Ok(ScoredPair {
                pair: pair.clone(),
                score: dot(a, b),
                guard_accepts: guard.check(&pair.b, &pair.a).is_ok(),
            })
        })
        .collect()
}

/// Precision and recall at `threshold`, with or without the guard's verdicts.
pub fn measure(scored: &[ScoredPair], threshold: f32, with_guard: bool) -> Measure {
    let positives = scored.iter().filter(|s| s.pair.same).count();
    let hits: Vec<&ScoredPair> = scored
        .iter()
        .filter(|s| s.score >= threshold && (!with_guard || s.guard_accepts))
        .collect();
    let right = hits.iter().filter(|s| s.pair.same).count();
    let wrong = hits.len() - right;
    Measure {
        threshold,
        hits: hits.len(),
        right,
        wrong,
        precision: if hits.is_empty() {
            1.0
        } else {
            right as f64 / hits.len() as f64
        },
        recall: if positives == 0 {
            0.0
        } else {
            right as f64 / positives as f64
        },
    }
}
