//! Reading OpenAI Batch-API input: one JSON object per line,
//! `{"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`.
//!
//! Lines are read lazily, one at a time. A line that cannot be sent becomes a
//! [`LineProblem`] naming what is wrong; it never stops the other lines. Blank lines
//! (empty or only whitespace) are skipped: they are not requests and get no output line.
//!
//! A file sends all its lines to one endpoint (as the Batch API requires): the `url` of its
//! first good line ([`detect_endpoint`]). The parser of a run is made for that endpoint's
//! request type; a later line naming another supported `url` is a `mixed_url` problem.

use crate::endpoint::{json_type, CliEndpoint, Endpoint, SUPPORTED_URLS};
use crate::idset::IdSet;
use serde::Deserialize;
use serde_json::Value;
use std::io::{self, BufRead};
use std::marker::PhantomData;

/// The HTTP methods `lbgpt run` accepts.
pub const SUPPORTED_METHODS: &[&str] = &["POST"];

/// One non-blank input line, parsed into a request of type `R` (the run's endpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct InputLine<R> {
    /// The line's number in the file, from 1 (blank lines count).
    pub line: usize,
    /// The line's `custom_id`, when it has a usable one.
    pub custom_id: Option<String>,
    /// The request, or why the line cannot be sent.
    pub request: Result<R, LineProblem>,
}

/// Why an input line cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// A stable machine-readable code: `invalid_json`, `missing_custom_id`,
    /// `duplicate_custom_id`, `unsupported_method`, `unsupported_url`, `mixed_url` (another
    /// supported endpoint than the run's) or `invalid_body`.
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

/// Whether a run refuses a line whose `custom_id` an earlier line has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateCheck {
    /// Every `custom_id` is remembered (a fingerprint each, [`IdSet`]: in memory up to
    /// [`MEMORY_IDS`](crate::idset::MEMORY_IDS), then in temporary files); a repeated one is a
    /// `duplicate_custom_id` error.
    #[default]
    On,
    /// Nothing is remembered (`--no-duplicate-check`): no memory or temporary file per id,
    /// and a repeated `custom_id` is sent again and gets a second result line.
    Off,
}

/// Parses lines one by one into requests of type `R`, remembering the `custom_id`s seen so
/// far unless the duplicate check is off.
#[derive(Debug)]
pub struct LineParser<R> {
    /// `None` without the duplicate check.
    seen: Option<IdSet>,
    endpoint: PhantomData<fn() -> R>,
}

impl<R: CliEndpoint> LineParser<R> {
    /// A parser that has seen no line yet.
    pub fn new(duplicates: DuplicateCheck) -> Self {
        LineParser {
            seen: (duplicates == DuplicateCheck::On).then(IdSet::default),
            endpoint: PhantomData,
        }
    }

    /// Parses the text of line number `line` (not blank).
    ///
    /// The first line with a given `custom_id` claims it, even if it is bad otherwise; later
    /// lines with the same id are `duplicate_custom_id` errors (unless the check is off).
    /// Fails only when the set of ids seen cannot use its temporary files ([`IdSet`]).
    pub fn parse(&mut self, line: usize, text: &str) -> io::Result<InputLine<R>> {
        let mut parsed = parse_line::<R>(line, text);
        if let (Some(seen), Some(custom_id)) = (self.seen.as_mut(), parsed.custom_id.as_deref()) {
            if !seen.insert(custom_id)? {
                let message =
                    format!("duplicate `custom_id` {custom_id:?}: an earlier line has it");
                parsed.request = Err(LineProblem::new("duplicate_custom_id", line, message));
            }
        }
        Ok(parsed)
    }
}

/// Parses one line on its own (no duplicate check): a line with a usable `custom_id` keeps it
/// whatever else is wrong with it.
fn parse_line<R: CliEndpoint>(line: usize, text: &str) -> InputLine<R> {
    let reject = |custom_id: Option<String>, problem: LineProblem| InputLine {
        line,
        custom_id,
        request: Err(problem),
    };

    let fields: BatchLine = match serde_json::from_str::<Value>(text) {
        Err(err) => {
            return reject(
                None,
                LineProblem::new(
                    "invalid_json",
                    line,
                    format!("invalid JSON: {}", without_line_number(&err)),
                ),
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
    if let Err(problem) = check_url(line, R::ENDPOINT, fields.url.as_ref()) {
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
    match R::from_body(body) {
        Ok(request) => InputLine {
            line,
            custom_id: id,
            request: Ok(request),
        },
        Err(message) => reject(id, LineProblem::new("invalid_body", line, message)),
    }
}

/// Checks a line's `url`: the run's endpoint's is fine; another supported one is `mixed_url`
/// (a file uses one endpoint); anything else is `unsupported_url`.
fn check_url(line: usize, run: Endpoint, url: Option<&Value>) -> Result<(), LineProblem> {
    if let Some(Value::String(text)) = url {
        if text == run.url() {
            return Ok(());
        }
        if let Some(other) = Endpoint::from_url(text) {
            return Err(LineProblem::new(
                "mixed_url",
                line,
                format!(
                    "`url` {:?} differs from this run's endpoint {:?} (the url of the file's \
                     first good line); a Batch-API file sends every line to one endpoint, so \
                     put the {} lines in a file of their own",
                    other.url(),
                    run.url(),
                    other.name()
                ),
            ));
        }
    }
    check_choice(line, "url", "unsupported_url", url, &SUPPORTED_URLS)
}

fn check_choice(
    line: usize,
    key: &str,
    code: &'static str,
    value: Option<&Value>,
    supported: &[&str],
) -> Result<(), LineProblem> {
    let problem = match value {
        Some(Value::String(text)) if supported.contains(&text.as_str()) => return Ok(()),
        Some(Value::String(text)) => format!("unsupported `{key}` {text:?}"),
        Some(other) => format!("`{key}` must be a string, found {}", json_type(other)),
        None => format!("`{key}` is missing"),
    };
    // Built only for a bad line: the check runs on every line.
    let list = supported
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Err(LineProblem::new(
        code,
        line,
        format!("{problem}; supported: {list}"),
    ))
}

/// A JSON syntax error as `expected ident at column 2`: the input is one line per request and
/// the message already names the file's line, so serde_json's `line 1` would only confuse.
fn without_line_number(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&position) {
        Some(message) if err.line() > 0 => format!("{message} at column {}", err.column()),
        _ => text,
    }
}

/// The most bytes [`detect_endpoint`] keeps from an input that cannot be read twice (standard
/// input) while looking for its first good line; past it, the first supported `url` seen
/// decides.
pub const DETECT_LIMIT: usize = 16 << 20;

/// What [`detect_endpoint`] found.
#[derive(Debug)]
pub struct Detected {
    /// The run's endpoint: the `url` of the first good line (one that would be sent); without
    /// one, the first supported `url` of any line; `None` when no line names one.
    pub endpoint: Option<Endpoint>,
    /// The bytes read, when they were to be kept (to be read again in front of the rest).
    pub read: Vec<u8>,
}

/// Reads `reader` up to its first good line (valid JSON, a `custom_id`, method `POST`, a
/// supported `url` and a valid body for that endpoint) to find the run's endpoint. With `keep`
/// the bytes read are returned (at most about [`DETECT_LIMIT`]: past it, the first supported
/// `url` of any line decides).
pub fn detect_endpoint(mut reader: impl BufRead, keep: bool) -> io::Result<Detected> {
    let mut read = Vec::new();
    let mut buffer = Vec::new();
    let mut first_named = None;
    let endpoint = loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => break first_named,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
        if keep {
            read.extend_from_slice(&buffer);
        }
        let Ok(text) = std::str::from_utf8(&buffer) else {
            continue;
        };
        let Some(named) = named_endpoint(text) else {
            continue;
        };
        let good = match named {
            Endpoint::Chat => parses::<lbgpt_core::ChatRequest>(text),
            Endpoint::Embeddings => parses::<lbgpt_core::EmbeddingRequest>(text),
            Endpoint::Completions => parses::<lbgpt_core::CompletionRequest>(text),
        };
        if good {
            break Some(named);
        }
        first_named = first_named.or(Some(named));
        if keep && read.len() > DETECT_LIMIT {
            break first_named;
        }
    };
    Ok(Detected { endpoint, read })
}

/// The supported endpoint a line's `url` names, if it is a JSON object naming one.
fn named_endpoint(text: &str) -> Option<Endpoint> {
    #[derive(Deserialize)]
    struct Url {
        url: Option<Value>,
    }
    let fields: Url = serde_json::from_str(text.trim()).ok()?;
    match fields.url? {
        Value::String(url) => Endpoint::from_url(&url),
        _ => None,
    }
}

/// Whether a line is good as a request of type `R`.
fn parses<R: CliEndpoint>(text: &str) -> bool {
    parse_line::<R>(1, text.trim()).request.is_ok()
}

/// Reads and parses a Batch-API file lazily: an iterator of its non-blank lines.
///
/// An I/O error ends the iteration; it is kept in [`InputReader::io_error`] for the caller to
/// report after the results of the lines read so far.
#[derive(Debug)]
pub struct InputReader<B, R> {
    reader: B,
    parser: LineParser<R>,
    line: usize,
    buffer: Vec<u8>,
    io_error: Option<io::Error>,
}

impl<B: BufRead, R: CliEndpoint> InputReader<B, R> {
    /// A reader of requests of type `R` over `reader`.
    pub fn new(reader: B, duplicates: DuplicateCheck) -> Self {
        InputReader {
            reader,
            parser: LineParser::new(duplicates),
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

impl<B: BufRead, R: CliEndpoint> Iterator for InputReader<B, R> {
    type Item = InputLine<R>;

    fn next(&mut self) -> Option<InputLine<R>> {
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
            match self.parser.parse(line, text.trim()) {
                Ok(parsed) => return Some(parsed),
                Err(err) => {
                    self.io_error = Some(err);
                    return None;
                }
            }
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
    use lbgpt_core::{ChatRequest, EmbeddingRequest};

    fn parse_all(input: &str) -> Vec<InputLine<ChatRequest>> {
        InputReader::new(input.as_bytes(), DuplicateCheck::On).collect()
    }

    fn problem<R: std::fmt::Debug>(line: &InputLine<R>) -> &LineProblem {
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
        assert_eq!(
            p.message, "line 2: invalid JSON: key must be a string at column 2",
            "the column of the line, not serde_json's `line 1`"
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

        let lines = parse_all(&GOOD.replace("/v1/chat/completions", "/v1/moderations"));
        let p = problem(&lines[0]);
        assert_eq!(p.code, "unsupported_url");
        for url in ["/v1/moderations", "/v1/chat/completions", "/v1/embeddings"] {
            assert!(p.message.contains(url), "{}", p.message);
        }

        let lines = parse_all(&GOOD.replace(r#""url": "/v1/chat/completions", "#, ""));
        assert!(problem(&lines[0]).message.contains("`url` is missing"));
        assert_eq!(lines[0].custom_id.as_deref(), Some("a"));
    }

    #[test]
    fn another_supported_url_is_a_mixed_url_naming_both() {
        let lines = parse_all(&GOOD.replace("/v1/chat/completions", "/v1/embeddings"));
        let p = problem(&lines[0]);
        assert_eq!(p.code, "mixed_url");
        assert!(
            p.message.contains("\"/v1/embeddings\"")
                && p.message.contains("\"/v1/chat/completions\""),
            "{}",
            p.message
        );
        assert_eq!(lines[0].custom_id.as_deref(), Some("a"));

        let embeddings = r#"{"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": {"model": "e", "input": ["x", "y"]}}"#;
        let text = format!("{embeddings}\n{GOOD}\n");
        let lines: Vec<InputLine<EmbeddingRequest>> =
            InputReader::new(text.as_bytes(), DuplicateCheck::On).collect();
        assert_eq!(lines[0].request.as_ref().expect("good").input_count(), 2);
        assert_eq!(problem(&lines[1]).code, "mixed_url");
    }

    #[test]
    fn without_the_duplicate_check_a_repeated_id_is_sent_again() {
        let text = format!("{GOOD}\n{GOOD}\n");
        let lines: Vec<InputLine<ChatRequest>> =
            InputReader::new(text.as_bytes(), DuplicateCheck::Off).collect();
        assert!(lines.iter().all(|line| line.request.is_ok()));
    }

    #[test]
    fn the_endpoint_is_the_url_of_the_first_good_line() {
        let embeddings = r#"{"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": {"model": "e", "input": "x"}}"#;
        let bad_completions = r#"{"custom_id": "c", "method": "POST", "url": "/v1/completions", "body": {"model": "c"}}"#;
        let text = format!("{{broken\n\n{bad_completions}\n{embeddings}\n{GOOD}\n");
        let detected = detect_endpoint(text.as_bytes(), true).expect("reads");
        assert_eq!(detected.endpoint, Some(Endpoint::Embeddings));
        let kept = String::from_utf8(detected.read).expect("utf-8");
        assert!(
            kept.ends_with(&format!("{embeddings}\n")),
            "read up to it: {kept}"
        );
        assert!(detect_endpoint(text.as_bytes(), false)
            .expect("reads")
            .read
            .is_empty());
        // No good line: the first supported url named; none at all: unknown.
        let detected = detect_endpoint(format!("{bad_completions}\n").as_bytes(), true);
        assert_eq!(
            detected.expect("reads").endpoint,
            Some(Endpoint::Completions)
        );
        let detected = detect_endpoint("{broken\n[1]\n".as_bytes(), true).expect("reads");
        assert_eq!(detected.endpoint, None);
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
        let read =
            InputReader::<_, ChatRequest>::new(&bytes[..], DuplicateCheck::On).count() as u64;
        assert_eq!(read, 4);
        assert_eq!(count_requests(&bytes[..]).expect("counts"), read);
    }

    #[test]
    fn invalid_utf8_is_a_bad_line() {
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.extend_from_slice(b"\n\xff\xfe\n");
        let lines: Vec<InputLine<ChatRequest>> =
            InputReader::new(&bytes[..], DuplicateCheck::On).collect();
        assert_eq!(lines.len(), 2);
        assert!(problem(&lines[1]).message.contains("UTF-8"));
    }
}
