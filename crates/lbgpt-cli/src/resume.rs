//! Resuming into an existing output file: which `custom_id`s it answered already, and making
//! it safe to append to.
//!
//! The rule a reader of the file follows: per `custom_id`, the line whose `error` is null is
//! the answer; without one, the last line is the latest failure. A run appends; it never
//! rewrites earlier lines, except that a line cut off by a crash (the file does not end in a
//! newline) is removed first, so that the next line cannot be glued to it.

use crate::idset::IdSet;
use crate::output_lock::{self, Lock, LockError};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

/// What an existing output file holds.
#[derive(Debug, Default)]
pub struct Answered {
    /// The `custom_id`s with a successful line.
    pub ids: IdSet,
    /// Successful lines (more than `ids.len()` only if the file repeats a success).
    pub succeeded: u64,
    /// Result lines with an error (retried by this run, unless a success follows them).
    pub failed: u64,
    /// Bytes of a cut-off last line that were removed.
    pub truncated: u64,
    /// Complete lines that are not result lines (ignored; counted to be reported).
    pub unreadable: u64,
}

/// Why an existing output file cannot be resumed.
#[derive(Debug)]
pub enum ResumeError {
    /// Reading, locking or truncating it failed.
    Io(io::Error),
    /// Another run holds its lock.
    Busy,
    /// Its first line is not a result line: it is some other file.
    NotResults {
        /// What its first line is.
        reason: String,
    },
}

/// The top-level fields of a line. Every value is kept raw: the answer bodies are checked
/// and skipped, never built.
type Fields<'a> = BTreeMap<String, &'a RawValue>;

/// What one line of the file is.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A successful result for this `custom_id`.
    Success(String),
    /// A result with an error (or a success without a usable `custom_id`).
    Failure,
    /// Not a result line, and why.
    Foreign(String),
}

fn classify(text: &str) -> Line {
    let fields: Fields<'_> = match serde_json::from_str(text) {
        Ok(fields) => fields,
        Err(err) => return Line::Foreign(format!("not a JSON object ({err})")),
    };
    for key in ["custom_id", "response", "error"] {
        if !fields.contains_key(key) {
            return Line::Foreign(format!("no `{key}` key"));
        }
    }
    let success = fields.get("error").is_some_and(|e| e.get() == "null");
    let custom_id = fields
        .get("custom_id")
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    match (success, custom_id) {
        (true, Some(id)) => Line::Success(id),
        _ => Line::Failure,
    }
}

/// Opens `path` to append results: takes its lock ([`output_lock`]), scans the lines already
/// there, removes a cut-off last line, and returns the file (positioned at its end, locked
/// until closed) with what it answered and whether the lock is held.
pub fn open_for_append(path: &Path) -> Result<(File, Answered, Lock), ResumeError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(ResumeError::Io)?;
    let lock = output_lock::lock(&file).map_err(|err| match err {
        LockError::Busy => ResumeError::Busy,
        LockError::Io(err) => ResumeError::Io(err),
    })?;
    let mut answered = Answered::default();
    // Bytes up to the end of the last complete line.
    let mut complete = 0u64;
    let mut cut_off = 0u64;
    {
        let mut reader = BufReader::with_capacity(1 << 16, &mut file);
        let mut buffer = Vec::new();
        let mut first = true;
        loop {
            buffer.clear();
            let read = match reader.read_until(b'\n', &mut buffer) {
                Ok(0) => break,
                Ok(read) => read as u64,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(ResumeError::Io(err)),
            };
            if buffer.last() != Some(&b'\n') {
                cut_off = read;
                break;
            }
            complete += read;
            let text = String::from_utf8_lossy(&buffer);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match classify(text) {
                Line::Success(id) => {
                    answered.succeeded += 1;
                    answered.ids.insert(&id).map_err(ResumeError::Io)?;
                }
                Line::Failure => answered.failed += 1,
                Line::Foreign(reason) if first => {
                    return Err(ResumeError::NotResults { reason });
                }
                Line::Foreign(_) => answered.unreadable += 1,
            }
            first = false;
        }
    }
    if cut_off > 0 {
        file.set_len(complete).map_err(ResumeError::Io)?;
        answered.truncated = cut_off;
    }
    file.seek(SeekFrom::End(0)).map_err(ResumeError::Io)?;
    Ok((file, answered, lock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    const OK: &str = r#"{"id": "batch_req_1", "custom_id": "a", "response": {"status_code": 200, "body": {"choices": [{"message": {"content": "x \n y"}}]}}, "error": null, "lbgpt": {"line": 1}}"#;
    const FAILED: &str = r#"{"id": "batch_req_2", "custom_id": "b", "response": null, "error": {"code": "api_error", "message": "m"}, "lbgpt": {"line": 2}}"#;

    fn file_with(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, text).expect("written");
        (dir, path)
    }

    #[test]
    fn lines_are_successes_failures_or_foreign() {
        assert_eq!(classify(OK), Line::Success("a".into()));
        assert_eq!(classify(FAILED), Line::Failure);
        let no_id = OK.replace(r#""custom_id": "a""#, r#""custom_id": null"#);
        assert_eq!(classify(&no_id), Line::Failure);
        assert!(matches!(classify("{\"x\": 1}"), Line::Foreign(_)));
        assert!(matches!(classify("[1]"), Line::Foreign(_)));
        let request =
            r#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}"#;
        assert!(matches!(classify(request), Line::Foreign(reason) if reason.contains("response")));
    }

    #[test]
    fn answered_ids_and_failures_are_counted_and_the_file_is_appended_to() {
        let (_dir, path) = file_with(&format!("{OK}\n{FAILED}\n\n"));
        let (mut file, answered, _) = open_for_append(&path).expect("opens");
        assert_eq!((answered.succeeded, answered.failed), (1, 1));
        assert_eq!(answered.truncated, 0);
        let mut ids = answered.ids;
        assert!(!ids.insert("a").expect("in memory"), "a was answered");
        assert!(
            ids.insert("b").expect("in memory"),
            "b failed: not answered"
        );
        file.write_all(b"next\n").expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with("\n\nnext\n"), "{text}");
    }

    #[test]
    fn a_cut_off_last_line_is_removed() {
        let cut = &OK[..OK.len() / 2];
        let (_dir, path) = file_with(&format!("{FAILED}\n{OK}\n{cut}"));
        let (mut file, answered, _) = open_for_append(&path).expect("opens");
        assert_eq!(answered.truncated, cut.len() as u64);
        assert_eq!((answered.succeeded, answered.failed), (1, 1));
        file.write_all(b"{\"new\": 1}\n").expect("append");
        let mut text = String::new();
        File::open(&path)
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, format!("{FAILED}\n{OK}\n{{\"new\": 1}}\n"));
    }

    #[test]
    fn a_file_that_is_not_results_is_refused_and_left_alone() {
        let request =
            r#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}"#;
        let (_dir, path) = file_with(&format!("{request}\npartial"));
        match open_for_append(&path) {
            Err(ResumeError::NotResults { reason }) => assert!(reason.contains("response")),
            other => panic!("{other:?}"),
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with("partial"), "not truncated: {text}");
    }

    #[test]
    fn an_empty_file_resumes_with_nothing() {
        let (_dir, path) = file_with("");
        let (_, answered, _) = open_for_append(&path).expect("opens");
        assert_eq!((answered.succeeded, answered.failed), (0, 0));
    }
}
