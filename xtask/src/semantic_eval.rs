//! `cargo xtask semantic-eval`: precision and recall of the semantic cache on the project's
//! labelled pairs, per threshold, with and without the false-hit guard.
//!
//! Fetches the model first, then runs the `semantic_eval` example of `lbgpt-semantic`, which
//! reads `crates/lbgpt-semantic/data/eval-pairs.jsonl` and prints the table (options go to
//! it, e.g. `--markdown`).

use std::path::Path;
use std::process::Command;

/// Runs the evaluation with `extra` arguments.
pub fn run(workspace: &Path, cargo: Command, extra: &[String]) -> Result<(), String> {
    crate::assets::fetch(workspace)?;
    let mut command = cargo;
    command.args([
        "run",
        "--quiet",
        "-p",
        "lbgpt-semantic",
        "--example",
        "semantic_eval",
        "--",
    ]);
    command.args(extra);
    crate::run("semantic-cache evaluation", &mut command)
}
