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

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch file of this test process, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir();
            Scratch(dir.join(format!("lbgpt-xtask-e2e-{}-{name}", std::process::id())))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn answer(id: &str) -> String {
        format!(
            "{{\"custom_id\":\"{id}\",\"response\":{{\"status_code\":200,\"body\":\
             {{\"choices\":[]}}}},\"error\":null}}"
        )
    }

    #[test]
    fn input_lines_are_batch_lines_with_distinct_ids_and_prompts() {
        let file = Scratch::new("input.jsonl");
        write_input(&file.0, 3).expect("writes");
        let text = std::fs::read_to_string(&file.0).expect("reads");
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 3);
        for (k, line) in lines.iter().enumerate() {
            assert_eq!(line["custom_id"], custom_id(k as u64 + 1));
            assert_eq!(line["url"], "/v1/chat/completions");
            assert_eq!(line["body"]["model"], MODEL);
        }
        assert_ne!(
            lines[0]["body"]["messages"][0]["content"],
            lines[1]["body"]["messages"][0]["content"]
        );
        // A file of the right size is kept; another size is rewritten.
        write_input(&file.0, 3).expect("kept");
        write_input(&file.0, 5).expect("rewritten");
        assert_eq!(count_lines(&file.0).expect("counts"), 5);
    }

    #[test]
    fn a_complete_output_passes_and_each_defect_is_counted() {
        let file = Scratch::new("output.jsonl");
        let good = [answer("req-0000001"), answer("req-0000002")].join("\n");
        std::fs::write(&file.0, &good).expect("writes");
        let check = check_output(&file.0).expect("checks");
        assert!(check.complete(2), "{check:?}");
        assert!(!check.complete(3), "a missing line");

        let swapped = [answer("req-0000002"), answer("req-0000001")].join("\n");
        std::fs::write(&file.0, swapped).expect("writes");
        let check = check_output(&file.0).expect("checks");
        assert_eq!((check.lines, check.in_order, check.succeeded), (2, 0, 2));

        let failed = format!(
            "{}\n{{\"custom_id\":\"req-0000002\",\"response\":null,\
             \"error\":{{\"code\":\"timeout\",\"message\":\"...\"}}}}",
            answer("req-0000001")
        );
        std::fs::write(&file.0, failed).expect("writes");
        let check = check_output(&file.0).expect("checks");
        assert_eq!((check.lines, check.in_order, check.succeeded), (2, 2, 1));

        std::fs::write(&file.0, "not json\n").expect("writes");
        assert!(check_output(&file.0).is_err());
    }
}
