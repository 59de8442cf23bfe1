//! Sends an OpenAI Batch-API file of chat requests through a balanced client and writes one
//! result line per request, in input order: what `lbgpt run` does, in a page of library code.
//!
//! ```text
//! export OPENAI_API_KEY_1=sk-... OPENAI_API_KEY_2=sk-...   # every key is used
//! cargo run --release -p lbgpt --example batch_file -- requests.jsonl -o results.jsonl --max-concurrent 32
//! ```
//!
//! The providers come from the environment as [`lbgpt::env`] describes: one per
//! `OPENAI_API_KEY*` / `AZURE_OPENAI_API_KEY*` variable, `OPENAI_BASE_URL` for an
//! OpenAI-compatible server (the simulator served by `lbgpt sim`, for instance), `./.env` too.
//! Keys never go on the command line.
//!
//! Input: one `{"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions", "body":
//! {...}}` per line; blank lines are skipped. Output, one line per request:
//!
//! ```text
//! {"custom_id":"q1","response":{"status_code":200,"body":{...chat completion...}},"error":null}
//! {"custom_id":"q2","response":null,"error":{"code":"retries_exhausted","message":"..."}}
//! ```
//!
//! A bad line (not JSON, no `custom_id`, a `method` other than POST, another `url`, a body
//! that is no chat request) gets an error line in its place and never stops the others. The file is read lazily and
//! results are written as they come (`chat_completion_ordered`), so memory stays bounded
//! whatever the file's size. Unlike `lbgpt run`, this example does not look for duplicate
//! `custom_id`s (that needs memory per line).
//!
//! Exit status: 0 when every line succeeded, 1 when some failed, 2 for bad arguments or an
//! I/O error.

use futures::StreamExt;
use lbgpt::{BalancedGpt, ChatRequest, ChatResponse, Error};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::rc::Rc;

/// The only endpoint this example sends to.
const CHAT_URL: &str = "/v1/chat/completions";

/// The command line: `REQUESTS.jsonl [-o RESULTS.jsonl] [--max-concurrent N]`.
struct Args {
    input: String,
    output: Option<String>,
    max_concurrent: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut input = None;
    let mut output = None;
    let mut max_concurrent = 16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-o" | "--output" => {
                output = Some(args.next().ok_or("-o needs a file name")?);
            }
            "--max-concurrent" => {
                let value = args.next().ok_or("--max-concurrent needs a number")?;
                max_concurrent = match value.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(format!("--max-concurrent: {value:?} is not a number >= 1")),
                };
            }
            "-h" | "--help" => {
                return Err(
                    "usage: batch_file REQUESTS.jsonl [-o RESULTS.jsonl] [--max-concurrent N]"
                        .to_owned(),
                )
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            _ if input.is_none() => input = Some(arg),
            _ => return Err(format!("one input file only; {arg:?} is a second one")),
        }
    }
    Ok(Args {
        input: input
            .ok_or("usage: batch_file REQUESTS.jsonl [-o RESULTS.jsonl] [--max-concurrent N]")?,
        output,
        max_concurrent,
    })
}

/// An input line on its way: sent (its result comes from the client), or refused (its error
/// line is written in its place).
enum Pending {
    Sent {
        custom_id: String,
    },
    Refused {
        custom_id: Option<String>,
        problem: String,
    },
}

/// What the request iterator shares with the writer: the lines handed out and not written
/// yet, in input order, and the read error that ended the input, if any.
#[derive(Default)]
struct Shared {
    pending: VecDeque<Pending>,
    read_error: Option<io::Error>,
}

/// The requests of a Batch-API file, read one line at a time when the client asks for the
/// next one. Every line it reads (sent or refused) is recorded in [`Shared::pending`].
struct Requests<R> {
    reader: R,
    line: usize,
    text: String,
    shared: Rc<RefCell<Shared>>,
}

impl<R: BufRead> Iterator for Requests<R> {
    type Item = ChatRequest;

    fn next(&mut self) -> Option<ChatRequest> {
        loop {
            self.text.clear();
            match self.reader.read_line(&mut self.text) {
                Ok(0) => return None,
                Ok(_) => self.line += 1,
                Err(err) => {
                    self.shared.borrow_mut().read_error = Some(err);
                    return None;
                }
            }
            if self.text.trim().is_empty() {
                continue;
            }
            let mut shared = self.shared.borrow_mut();
            match parse_line(&self.text) {
                Ok((custom_id, request)) => {
                    shared.pending.push_back(Pending::Sent { custom_id });
                    return Some(request);
                }
                Err((custom_id, problem)) => shared.pending.push_back(Pending::Refused {
                    custom_id,
                    problem: format!("line {}: {problem}", self.line),
                }),
            }
        }
    }
}

/// A line's `custom_id` and chat request, or its `custom_id` (when it has one) and what is
/// wrong with it.
fn parse_line(text: &str) -> Result<(String, ChatRequest), (Option<String>, String)> {
    let mut line: Value =
        serde_json::from_str(text).map_err(|err| (None, format!("invalid JSON: {err}")))?;
    let custom_id = match line.get("custom_id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err((None, "`custom_id` is missing or not a string".to_owned())),
    };
    let refuse = |problem: String| Err((Some(custom_id.clone()), problem));
    if line.get("method").and_then(Value::as_str) != Some("POST") {
        return refuse("`method` must be \"POST\"".to_owned());
    }
    if line.get("url").and_then(Value::as_str) != Some(CHAT_URL) {
        return refuse(format!("`url` must be {CHAT_URL:?}"));
    }
    let Some(body) = line.get_mut("body").map(Value::take) else {
        return refuse("`body` is missing".to_owned());
    };
    match serde_json::from_value::<ChatRequest>(body) {
        Ok(request) => Ok((custom_id, request)),
        Err(err) => refuse(format!("`body` is not a chat request: {err}")),
    }
}

/// Writes `{"custom_id":...,"response":...,"error":...}` and a newline.
fn write_result(
    out: &mut impl Write,
    custom_id: Option<&str>,
    result: Result<&ChatResponse, (&str, String)>,
) -> io::Result<()> {
    out.write_all(b"{\"custom_id\":")?;
    serde_json::to_writer(&mut *out, &custom_id)?;
    match result {
        Ok(answer) => {
            out.write_all(b",\"response\":{\"status_code\":200,\"body\":")?;
            serde_json::to_writer(&mut *out, answer)?;
            out.write_all(b"},\"error\":null}\n")
        }
        Err((code, message)) => {
            out.write_all(b",\"response\":null,\"error\":")?;
            let error = serde_json::json!({ "code": code, "message": message });
            serde_json::to_writer(&mut *out, &error)?;
            out.write_all(b"}\n")
        }
    }
}

/// Writes the error lines of the refused lines at the front of `pending`.
fn write_refused(
    out: &mut impl Write,
    shared: &RefCell<Shared>,
    failed: &mut u64,
) -> io::Result<()> {
    loop {
        let mut shared = shared.borrow_mut();
        let Some(Pending::Refused { .. }) = shared.pending.front() else {
            return Ok(());
        };
        let Some(Pending::Refused { custom_id, problem }) = shared.pending.pop_front() else {
            return Ok(());
        };
        drop(shared);
        *failed += 1;
        write_result(out, custom_id.as_deref(), Err(("invalid_line", problem)))?;
    }
}

async fn run(args: Args) -> Result<(u64, u64), String> {
    let gpt = BalancedGpt::builder()
        .providers_from_env()
        .map_err(|err| format!("providers from the environment: {err}"))?
        .max_concurrent_requests(args.max_concurrent)
        .build()
        .map_err(|err| format!("cannot build the client: {err}"))?;
    let input =
        File::open(&args.input).map_err(|err| format!("cannot read {}: {err}", args.input))?;
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).map_err(|err| format!("cannot create {path}: {err}"))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let write_failed = |err: io::Error| format!("writing the results failed: {err}");

    let shared = Rc::new(RefCell::new(Shared::default()));
    let requests = Requests {
        reader: BufReader::with_capacity(1 << 16, input),
        line: 0,
        text: String::new(),
        shared: Rc::clone(&shared),
    };
    let (mut succeeded, mut failed) = (0u64, 0u64);
    let mut results = gpt.chat_completion_ordered(requests);
    while let Some(result) = results.next().await {
        // Results come in input order: the refused lines before this one are written first.
        write_refused(&mut out, &shared, &mut failed).map_err(write_failed)?;
        let Some(Pending::Sent { custom_id }) = shared.borrow_mut().pending.pop_front() else {
            return Err("internal error: a result without its input line".to_owned());
        };
        let result: Result<ChatResponse, Error> = result;
        match &result {
            Ok(answer) => {
                succeeded += 1;
                write_result(&mut out, Some(&custom_id), Ok(answer))
            }
            Err(error) => {
                failed += 1;
                write_result(
                    &mut out,
                    Some(&custom_id),
                    Err((error.class(), error.to_string())),
                )
            }
        }
        .map_err(write_failed)?;
    }
    // Refused lines after the last request sent.
    write_refused(&mut out, &shared, &mut failed).map_err(write_failed)?;
    out.flush().map_err(write_failed)?;
    if let Some(err) = shared.borrow_mut().read_error.take() {
        return Err(format!(
            "reading {} failed after {} lines (their results are written): {err}",
            args.input,
            succeeded + failed
        ));
    }
    Ok((succeeded, failed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok((succeeded, failed)) => {
            eprintln!("{succeeded} succeeded, {failed} failed");
            ExitCode::from(u8::from(failed > 0))
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
