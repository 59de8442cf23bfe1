//! Reading OpenAI Batch-API input: one JSON object per line,
//! `{"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`.
//!
//! Lines are read lazily, one at a time. A line that cannot be sent becomes a
//! [`LineProblem`] naming what is wrong; it never stops the other lines. Blank lines
//! (empty or only whitespace) are skipped: they are not requests and get no output line.

use crate::idset::IdSet;
use lbgpt_core::{ChatRequest, Error};
use serde::Deserialize;
use serde_json::Value;
use std::io::{self, BufRead};

/// The request URLs `lbgpt run` can send.
pub const SUPPORTED_URLS: &[&str] = &["/v1/chat/completions"];

/// The HTTP methods `lbgpt run` accepts.
pub const SUPPORTED_METHODS: &[&str] = &["POST"];

/// One non-blank input line, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct InputLine {
    /// The line's number in the file, from 1 (blank lines count).
    pub line: usize,
    /// The line's `custom_id`, when it has a usable one.
    pub custom_id: Option<String>,
    /// The request, or why the line cannot be sent.
    pub request: Result<ChatRequest, LineProblem>,
}

/// Why an input line cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// A stable machine-readable code: `invalid_json`, `missing_custom_id`,
    /// `duplicate_custom_id`, `unsupported_method`, `unsupported_url` or `invalid_body`.
    pub code: &'static str,
    /// What is wrong, starting with the line number.
    pub message: String,
}

impl LineProblem {
    fn new(code: &'static str, line: usize, message: impl AsRef<str>) -> Self {
        LineProblem {
            code,
            message: format!("line {line}: {}", message.as_ref()),
        }
    }
}

/// The fields of a Batch-API line. Every field is optional here so that a missing one gets its
/// own message; other fields are ignored.
#[derive(Deserialize)]
struct BatchLine {
    custom_id: Option<Value>,
    method: Option<Value>,
    url: Option<Value>,
    body: Option<Value>,
}

/// Parses lines one by one, remembering the `custom_id`s seen so far (as fingerprints:
/// [`IdSet`], the only memory of a run that grows with the number of lines).
#[derive(Debug, Default)]
pub struct LineParser {
    seen: IdSet,
}

impl LineParser {
    /// A parser that has seen no line yet.
    pub fn new() -> Self {
        LineParser::default()
    }

    /// Parses the text of line number `line` (not blank).
    ///
    /// The first line with a given `custom_id` claims it, even if it is bad otherwise; later
    /// lines with the same id are `duplicate_custom_id` errors.
    pub fn parse(&mut self, line: usize, text: &str) -> InputLine {
        let reject = |custom_id: Option<String>, problem: LineProblem| InputLine {
            line,
            custom_id,
            request: Err(problem),
        };

        let fields: BatchLine = match serde_json::from_str::<Value>(text) {
            Err(err) => {
                return reject(
                    None,
                    LineProblem::new("invalid_json", line, format!("invalid JSON: {err}")),
                )
            }
            Ok(value @ Value::Object(_)) => match serde_json::from_value(value) {
                Ok(fields) => fields,
                Err(err) => {
                    return reject(
                        None,
                        LineProblem::new("invalid_json", line, format!("invalid line: {err}")),
                    )
                }
            },
            Ok(other) => {
                return reject(
                    None,
                    LineProblem::new(
                        "invalid_json",
                        line,
                        format!(
                            "expected a JSON object with custom_id, method, url and body, \
                             found {}",
                            json_type(&other)
                        ),
                    ),
                )
            }
        };

        let custom_id = match fields.custom_id {
            Some(Value::String(id)) if !id.trim().is_empty() => id,
            Some(Value::String(_)) => {
                return reject(
                    None,
                    LineProblem::new("missing_custom_id", line, "`custom_id` is empty"),
                )
            }
            Some(other) => {
                return reject(
                    None,
                    LineProblem::new(
                        "missing_custom_id",
                        line,
                        format!("`custom_id` must be a string, found {}", json_type(&other)),
                    ),
                )
            }
            None => {
                return reject(
                    None,
                    LineProblem::new("missing_custom_id", line, "`custom_id` is missing"),
                )
            }
        };
        if !self.seen.insert(&custom_id) {
            let message = format!("duplicate `custom_id` {custom_id:?}: an earlier line has it");
            return reject(
                Some(custom_id),
                LineProblem::new("duplicate_custom_id", line, message),
            );
        }
        let id = Some(custom_id);

        if let Err(problem) = check_choice(
            line,
            "method",
            "unsupported_method",
            fields.method.as_ref(),
            SUPPORTED_METHODS,
        ) {
            return reject(id, problem);
        }
        if let Err(problem) = check_choice(
            line,
            "url",
            "unsupported_url",
            fields.url.as_ref(),
            SUPPORTED_URLS,
        ) {
            return reject(id, problem);
        }

        let body = match fields.body {
            Some(body @ Value::Object(_)) => body,
            Some(other) => {
                let message = format!("`body` must be a JSON object, found {}", json_type(&other));
                return reject(id, LineProblem::new("invalid_body", line, message));
            }
            None => {
                return reject(
                    id,
                    LineProblem::new("invalid_body", line, "`body` is missing"),
                )
            }
        };
        let request: ChatRequest = match serde_json::from_value(body) {
            Ok(request) => request,
            Err(err) => {
                let message = format!("invalid chat request in `body`: {err}");
                return reject(id, LineProblem::new("invalid_body", line, message));
            }
        };
        if let Err(err) = request.validate() {
            let message = match err {
                Error::InvalidRequest { field, message } => {
                    format!("invalid chat request in `body`: `{field}` {message}")
                }
                other => format!("invalid chat request in `body`: {other}"),
            };
            return reject(id, LineProblem::new("invalid_body", line, message));
        }
        InputLine {
            line,
            custom_id: id,
            request: Ok(request),
        }
    }
}

fn check_choice(
    line: usize,
    key: &str,
    code: &'static str,
    value: Option<&Value>,
    supported: &[&str],
) -> Result<(), LineProblem> {
    let list = supported
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    match value {
        Some(Value::String(text)) if supported.contains(&text.as_str()) => Ok(()),
        Some(Value::String(text)) => Err(LineProblem::new(
            code,
            line,
            format!("unsupported `{key}` {text:?}; supported: {list}"),
        )),
        Some(other) => Err(LineProblem::new(
            code,
            line,
            format!(
                "`{key}` must be a string, found {}; supported: {list}",
                json_type(other)
            ),
        )),
        None => Err(LineProblem::new(
            code,
            line,
            format!("`{key}` is missing; supported: {list}"),
        )),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads and parses a Batch-API file lazily: an iterator of its non-blank lines.
///
/// An I/O error ends the iteration; it is kept in [`InputReader::io_error`] for the caller to
/// report after the results of the lines read so far.
#[derive(Debug)]
pub struct InputReader<R> {
    reader: R,
    parser: LineParser,
    line: usize,
    buffer: Vec<u8>,
    io_error: Option<io::Error>,
}

impl<R: BufRead> InputReader<R> {
    /// A reader over `reader`.
    pub fn new(reader: R) -> Self {
        InputReader {
            reader,
            parser: LineParser::new(),
            line: 0,
            buffer: Vec::new(),
            io_error: None,
        }
    }

    /// The I/O error that ended the input early, if any.
    pub fn take_io_error(&mut self) -> Option<io::Error> {
        self.io_error.take()
    }
}

impl<R: BufRead> Iterator for InputReader<R> {
    type Item = InputLine;

    fn next(&mut self) -> Option<InputLine> {
        loop {
            self.buffer.clear();
            match self.reader.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    self.io_error = Some(err);
                    return None;
                }
            }
            self.line += 1;
            let line = self.line;
            let text = match std::str::from_utf8(&self.buffer) {
                Ok(text) => text,
                Err(err) => {
                    return Some(InputLine {
                        line,
                        custom_id: None,
                        request: Err(LineProblem::new(
                            "invalid_json",
                            line,
                            format!("not valid UTF-8: {err}"),
                        )),
                    })
                }
            };
            if is_blank(text) {
                continue;
            }
            return Some(self.parser.parse(line, text.trim()));
        }
    }
}

/// Whether a line is blank (empty or only whitespace): not a request, no output line.
fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Counts the requests of a Batch-API input: its non-blank lines (invalid ones included,
/// since each gets an output line), exactly as [`InputReader`] yields them.
pub fn count_requests(mut reader: impl BufRead) -> io::Result<u64> {
    let mut buffer = Vec::new();
    let mut count = 0;
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => return Ok(count),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
        let blank = std::str::from_utf8(&buffer).is_ok_and(is_blank);
        if !blank {
            count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &str) -> Vec<InputLine> {
        InputReader::new(input.as_bytes()).collect()
    }

    fn problem(line: &InputLine) -> &LineProblem {
        line.request.as_ref().expect_err("expected a bad line")
    }

    const GOOD: &str = r#"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "reasoning_effort": "low"}}"#;

    #[test]
    fn a_good_line_becomes_a_request_keeping_unknown_fields() {
        let lines = parse_all(GOOD);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].line, 1);
        assert_eq!(lines[0].custom_id.as_deref(), Some("a"));
        let request = lines[0].request.as_ref().expect("good line");
        assert_eq!(request.model, "m");
        assert_eq!(request.max_tokens, Some(5));
        assert_eq!(
            serde_json::to_value(request).expect("serialises")["reasoning_effort"],
            "low"
        );
    }

    #[test]
    fn blank_lines_are_skipped_but_counted_and_crlf_is_fine() {
        let input = format!("\n{}\r\n   \n{}\n", GOOD, GOOD.replace("\"a\"", "\"b\""));
        let lines = parse_all(&input);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 2);
        assert_eq!(lines[1].line, 4);
        assert!(lines.iter().all(|l| l.request.is_ok()));
    }

    #[test]
    fn invalid_json_is_named_with_its_line() {
        let lines = parse_all(&format!("{GOOD}\n{{not json\n"));
        let p = problem(&lines[1]);
        assert_eq!(p.code, "invalid_json");
        assert!(
            p.message.starts_with("line 2: invalid JSON"),
            "{}",
            p.message
        );
        let lines = parse_all("[1, 2]\n");
        assert_eq!(problem(&lines[0]).code, "invalid_json");
        assert!(problem(&lines[0]).message.contains("an array"));
    }

    #[test]
    fn custom_id_missing_empty_or_not_a_string() {
        for (text, needle) in [
            (GOOD.replace(r#""custom_id": "a", "#, ""), "missing"),
            (
                GOOD.replace(r#""custom_id": "a""#, r#""custom_id": """#),
                "empty",
            ),
            (
                GOOD.replace(r#""custom_id": "a""#, r#""custom_id": 7"#),
                "a number",
            ),
        ] {
            let lines = parse_all(&text);
            let p = problem(&lines[0]);
            assert_eq!(p.code, "missing_custom_id");
            assert!(p.message.contains(needle), "{}", p.message);
            assert!(p.message.starts_with("line 1:"));
        }
    }

    #[test]
    fn duplicate_custom_id_keeps_the_first() {
        let lines = parse_all(&format!("{GOOD}\n{GOOD}\n"));
        assert!(lines[0].request.is_ok());
        let p = problem(&lines[1]);
        assert_eq!(p.code, "duplicate_custom_id");
        assert!(p.message.contains("\"a\"") && p.message.starts_with("line 2:"));
        assert_eq!(lines[1].custom_id.as_deref(), Some("a"));
    }

    #[test]
    fn unsupported_method_and_url_say_what_is_supported() {
        let lines = parse_all(&GOOD.replace("\"POST\"", "\"GET\""));
        let p = problem(&lines[0]);
        assert_eq!(p.code, "unsupported_method");
        assert!(p.message.contains("\"GET\"") && p.message.contains("\"POST\""));

        let lines = parse_all(&GOOD.replace("/v1/chat/completions", "/v1/embeddings"));
        let p = problem(&lines[0]);
        assert_eq!(p.code, "unsupported_url");
        assert!(p.message.contains("/v1/embeddings") && p.message.contains("/v1/chat/completions"));

        let lines = parse_all(&GOOD.replace(r#""url": "/v1/chat/completions", "#, ""));
        assert!(problem(&lines[0]).message.contains("`url` is missing"));
        assert_eq!(lines[0].custom_id.as_deref(), Some("a"));
    }

    #[test]
    fn invalid_bodies_name_the_field() {
        let lines = parse_all(&GOOD.replace(r#""model": "m", "#, ""));
        let p = problem(&lines[0]);
        assert_eq!(p.code, "invalid_body");
        assert!(p.message.contains("`model`"), "{}", p.message);

        let lines =
            parse_all(&GOOD.replace(r#""messages": [{"role": "user", "content": "hi"}], "#, ""));
        assert!(problem(&lines[0]).message.contains("`messages`"));

        let lines = parse_all(&GOOD.replace(r#"[{"role": "user", "content": "hi"}]"#, "[]"));
        let p = problem(&lines[0]);
        assert!(p.message.contains("`messages`"), "{}", p.message);

        let lines = parse_all(&GOOD.replace(r#""max_tokens": 5"#, r#""max_tokens": "five""#));
        assert_eq!(problem(&lines[0]).code, "invalid_body");

        let lines = parse_all(&GOOD.replace(r#""max_tokens": 5"#, r#""stream": true"#));
        assert!(problem(&lines[0]).message.contains("`stream`"));

        let text = r#"{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions"}"#;
        assert!(problem(&parse_all(text)[0])
            .message
            .contains("`body` is missing"));
    }

    #[test]
    fn counting_agrees_with_reading() {
        let mut bytes = format!("\n{GOOD}\r\n   \n{{broken\n\u{a0}\n").into_bytes();
        bytes.extend_from_slice(b"\xff\n\t\nlast line without newline");
        let read = InputReader::new(&bytes[..]).count() as u64;
        assert_eq!(read, 4);
        assert_eq!(count_requests(&bytes[..]).expect("counts"), read);
    }

    #[test]
    fn invalid_utf8_is_a_bad_line() {
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.extend_from_slice(b"\n\xff\xfe\n");
        let lines: Vec<InputLine> = InputReader::new(&bytes[..]).collect();
        assert_eq!(lines.len(), 2);
        assert!(problem(&lines[1]).message.contains("UTF-8"));
    }
}
