//! The benchmark's input files and the check of every output file.
//!
//! Line `k` (from 1) of an input has `custom_id` `req-k` (zero-padded to 7 digits) and a
//! prompt that names `k`, so no two requests are alike (no cache could answer one from
//! another, and the simulator answers each from its own prompt).

use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

/// The model every request asks for.
const MODEL: &str = "gpt-4o-mini";

/// The `custom_id` of line `k` (from 1).
fn custom_id(k: u64) -> String {
    format!("req-{k:07}")
}

/// Writes `lines` Batch-API chat lines to `path` (replacing it), unless a file of exactly
/// those lines is already there.
pub fn write_input(path: &Path, lines: u64) -> Result<(), String> {
    if count_lines(path).ok() == Some(lines) {
        return Ok(());
    }
    let fail = |err: std::io::Error| format!("writing {} failed: {err}", path.display());
    let mut out = BufWriter::with_capacity(1 << 16, File::create(path).map_err(fail)?);
    for k in 1..=lines {
        writeln!(
            out,
            "{{\"custom_id\":\"{}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\
             \"body\":{{\"model\":\"{MODEL}\",\"messages\":[{{\"role\":\"user\",\"content\":\
             \"Question {k}: in one short sentence, what is {k} times seven?\"}}],\
             \"max_tokens\":16}}}}",
            custom_id(k)
        )
        .map_err(fail)?;
    }
    out.flush().map_err(fail)
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    let reader = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut lines = 0;
    for line in reader.split(b'\n') {
        line?;
        lines += 1;
    }
    Ok(lines)
}

/// What the check of an output file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCheck {
    /// Lines in the file.
    pub lines: u64,
    /// Lines whose `custom_id` is the input's at the same position (so all distinct).
    pub in_order: u64,
    /// Lines with `"error": null` and a 200 response carrying a chat completion.
    pub succeeded: u64,
}

impl OutputCheck {
    /// Whether the output has exactly one successful line per input line, in input order.
    pub fn complete(&self, expected: u64) -> bool {
        self.lines == expected && self.in_order == expected && self.succeeded == expected
    }
}

/// Reads an output file (of `lbgpt run` or of the `batch_file` example) and counts its lines,
/// those in input order and those that succeeded.
pub fn check_output(path: &Path) -> Result<OutputCheck, String> {
    let fail = |err: std::io::Error| format!("reading {} failed: {err}", path.display());
    let reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(fail)?);
    let mut check = OutputCheck {
        lines: 0,
        in_order: 0,
        succeeded: 0,
    };
    for line in reader.lines() {
        let line = line.map_err(fail)?;
        check.lines += 1;
        let value: Value = serde_json::from_str(&line)
            .map_err(|err| format!("{} line {}: not JSON ({err})", path.display(), check.lines))?;
        if value["custom_id"].as_str() == Some(custom_id(check.lines).as_str()) {
            check.in_order += 1;
        }
        let ok = value["error"].is_null()
            && value["response"]["status_code"] == 200
            && value["response"]["body"]["choices"].is_array();
        if ok {
            check.succeeded += 1;
        }
    }
    Ok(check)
}
