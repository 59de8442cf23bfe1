//! Precision and recall of the semantic cache per threshold on the project's labelled pairs,
//! with and without the false-hit guard (`cargo xtask semantic-eval`).
//!
//! Options: `--pairs FILE` (default `data/eval-pairs.jsonl` of this crate), `--markdown`
//! (tables for `docs/semantic-cache.md`), `--show-wrong T` (list wrong hits and missed
//! paraphrases at threshold T).

use lbgpt_semantic::evaluation::{load_pairs, measure, score_pairs, ScoredPair};
use lbgpt_semantic::{FalseHitGuard, FastembedEmbedder, SemanticConfig};
use std::path::PathBuf;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut pairs_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/eval-pairs.jsonl");
    let mut markdown = false;
    let mut show: Option<f32> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pairs" => pairs_path = args.next().ok_or("--pairs needs a file")?.into(),
            "--markdown" => markdown = true,
            "--show-wrong" => {
                show = Some(
                    args.next()
                        .ok_or("--show-wrong needs a threshold")?
                        .parse()?,
                )
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let pairs = load_pairs(&pairs_path)?;
    let embedder = FastembedEmbedder::from_default_assets()?;
    let scored = score_pairs(&embedder, &pairs, &FalseHitGuard::new()).await?;
    let positives = pairs.iter().filter(|p| p.same).count();
    println!(
        "{} pairs ({} paraphrases, {} hard negatives) from {}; model {}",
        pairs.len(),
        positives,
        pairs.len() - positives,
        pairs_path.display(),
        lbgpt_semantic::Embedder::id(&embedder)
    );
    let default = SemanticConfig::DEFAULT_THRESHOLD;
    if markdown {
        println!("\n| threshold | precision (no guard) | recall (no guard) | wrong hits (no guard) | precision (guard) | recall (guard) | wrong hits (guard) |");
        println!("|---|---|---|---|---|---|---|");
    } else {
        println!("\n           ------- without guard -------   --------- with guard ---------");
        println!("threshold  precision  recall  hits  wrong    precision  recall  hits  wrong");
    }
    for step in 0..=28 {
        let threshold = 0.70 + 0.01 * step as f32;
        let plain = measure(&scored, threshold, false);
        let guarded = measure(&scored, threshold, true);
        let mark = if (threshold - default).abs() < 0.005 {
            " <- default"
        } else {
            ""
        };
        if markdown {
            println!(
                "| {threshold:.2}{} | {:.3} | {:.3} | {} | {:.3} | {:.3} | {} |",
                if mark.is_empty() { "" } else { " (default)" },
                plain.precision,
                plain.recall,
                plain.wrong,
                guarded.precision,
                guarded.recall,
                guarded.wrong
            );
        } else {
            println!(
                "  {threshold:.2}      {:.3}    {:.3}  {:4}  {:4}      {:.3}    {:.3}  {:4}  {:4}{mark}",
                plain.precision, plain.recall, plain.hits, plain.wrong,
                guarded.precision, guarded.recall, guarded.hits, guarded.wrong
            );
        }
    }
    println!("\nWrong hits by kind at the default threshold {default:.2}:");
    let kinds = [
        "negation",
        "entity",
        "number",
        "date",
        "scope",
        "opposite",
        "related",
        "unrelated",
    ];
    for kind in kinds {
        let of_kind: Vec<&ScoredPair> = scored.iter().filter(|s| s.pair.kind == kind).collect();
        let plain = of_kind.iter().filter(|s| s.score >= default).count();
        let guarded = of_kind
            .iter()
            .filter(|s| s.score >= default && s.guard_accepts)
            .count();
        let mean = of_kind.iter().map(|s| s.score).sum::<f32>() / of_kind.len().max(1) as f32;
        println!(
            "  {kind:10} {:3} pairs, mean similarity {mean:.3}: {plain:3} served without the guard, {guarded:3} with it",
            of_kind.len()
        );
    }
    let paraphrases: Vec<&ScoredPair> = scored.iter().filter(|s| s.pair.same).collect();
    let mean = paraphrases.iter().map(|s| s.score).sum::<f32>() / paraphrases.len().max(1) as f32;
    let blocked = paraphrases
        .iter()
        .filter(|s| s.score >= default && !s.guard_accepts)
        .count();
    println!(
        "  paraphrase {:3} pairs, mean similarity {mean:.3}: {blocked} above the threshold blocked by the guard",
        paraphrases.len()
    );
    println!("\nBy split (guard on / off):");
    for split in ["dev", "holdout"] {
        let part: Vec<ScoredPair> = scored
            .iter()
            .filter(|s| s.pair.split == split)
            .cloned()
            .collect();
        let positives = part.iter().filter(|s| s.pair.same).count();
        println!("  {split}: {} pairs ({positives} paraphrases)", part.len());
        let mut thresholds = vec![0.80f32, 0.85, 0.90];
        if !thresholds.iter().any(|t| (t - default).abs() < 0.005) {
            thresholds.push(default);
        }
        for t in thresholds {
            let g = measure(&part, t, true);
            let p = measure(&part, t, false);
            println!(
                "    {t:.2}{}: guard precision {:.3} recall {:.3} wrong {}; no guard precision {:.3} recall {:.3} wrong {}",
                if (t - default).abs() < 0.005 { " (default)" } else { "" },
                g.precision, g.recall, g.wrong, p.precision, p.recall, p.wrong
            );
        }
    }
    let grid: Vec<f32> = (0..=28).map(|step| 0.70 + 0.01 * step as f32).collect();
    // The lowest threshold from which precision stays >= 0.98 (guard on), and the lowest from
    // which no wrong answer is served at all.
    let lowest = |ok: &dyn Fn(f32) -> bool| {
        grid.iter()
            .copied()
            .find(|&t| grid.iter().filter(|&&u| u >= t - 1e-6).all(|&u| ok(u)))
    };
    for (label, found) in [
        (
            "precision >= 0.98",
            lowest(&|u| measure(&scored, u, true).precision >= 0.98),
        ),
        (
            "no wrong hit",
            lowest(&|u| measure(&scored, u, true).wrong == 0),
        ),
    ] {
        if let Some(t) = found {
            let m = measure(&scored, t, true);
            println!(
                "Lowest threshold with {label} (guard on) there and above: {t:.2} (precision {:.3}, recall {:.3})",
                m.precision, m.recall
            );
        }
    }
    if let Some(t) = show {
        println!("\nWrong hits at {t:.2} (guard on):");
        for s in scored
            .iter()
            .filter(|s| !s.pair.same && s.score >= t && s.guard_accepts)
        {
            println!(
                "  {:.3} [{}] {:?} / {:?}",
                s.score, s.pair.kind, s.pair.a, s.pair.b
            );
        }
        println!("Wrong hits at {t:.2} stopped by the guard:");
        for s in scored
            .iter()
            .filter(|s| !s.pair.same && s.score >= t && !s.guard_accepts)
        {
            println!(
                "  {:.3} [{}] {:?} / {:?}",
                s.score, s.pair.kind, s.pair.a, s.pair.b
            );
        }
        println!("Paraphrases missed at {t:.2} (guard on):");
        for s in scored
            .iter()
            .filter(|s| s.pair.same && (s.score < t || !s.guard_accepts))
        {
            let why = match FalseHitGuard::new().check(&s.pair.b, &s.pair.a) {
                Err(rejection) if s.score >= t => format!("guard: {rejection:?}"),
                _ => "below".to_owned(),
            };
            println!("  {:.3} [{why}] {:?} / {:?}", s.score, s.pair.a, s.pair.b);
        }
    }
    Ok(())
}
