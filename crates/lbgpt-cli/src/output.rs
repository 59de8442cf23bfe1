//! The lines `lbgpt run` writes: the OpenAI Batch-API output shape plus an `lbgpt` object.
//!
//! ```json
//! {"id": "batch_req_…", "custom_id": "q1",
//!  "response": {"status_code": 200, "request_id": "…", "body": {…the endpoint's answer…}},
//!  "error": null,
//!  "lbgpt": {"line": 1, "member": "openai-1", "attempts": 1, "latency_ms": 412, "cache": "miss"}}
//! ```
//!
//! A failed call has `error: {"code", "message"}` and, when the server answered with an error
//! status, `response` with that status and an OpenAI-style error body. A bad input line has
//! `response: null` and an `error` naming the problem. An answer from the exact cache has
//! `"cache": "exact"`, `"attempts": 0` and `"member": null`; one from the semantic cache has
//! `"cache": "semantic"`, the similarity `"score"` and the exact key of the cached request it
//! was served from (`"matched"`):
//!
//! ```json
//! "lbgpt": {"line": 7, "member": null, "attempts": 0, "latency_ms": 4, "cache": "semantic",
//!           "score": 0.9457, "matched": "v1:3f2a…"}
//! ```
//!
//! The body is the run's endpoint's answer as the provider sent it: a chat completion, an
//! embeddings list or a (legacy) completion. An embeddings or completions answer put together
//! from the cache and a provider (some inputs or prompts cached, the others sent) has
//! `"cache": "partial"` and says how many came from each (`"from_cache"`, `"from_provider"`).

use crate::endpoint::CliAnswer;
use crate::input::LineProblem;
use lbgpt_core::{CacheStatus, Error};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// One output line; `A` is the type of the answer body (the endpoint's answer type; for
/// lines without an answer, any type will do: the default).
#[derive(Debug, Serialize)]
pub struct OutputLine<'a, A = Value> {
    /// `batch_req_` followed by an id unique to this line of this run.
    pub id: String,
    /// The input's `custom_id` (null when the line had none).
    pub custom_id: Option<&'a str>,
    /// What the server answered, if it answered.
    pub response: Option<ResponsePart<'a, A>>,
    /// What went wrong, if anything.
    pub error: Option<ErrorPart>,
    /// How lbgpt got the answer.
    pub lbgpt: LbgptPart<'a>,
}

/// `response`: the HTTP status, the provider's request id and the body.
#[derive(Debug, Serialize)]
pub struct ResponsePart<'a, A = Value> {
    /// The HTTP status.
    pub status_code: u16,
    /// The provider's request id, when it sent one.
    pub request_id: Option<&'a str>,
    /// The answer, or the error body.
    pub body: Body<'a, A>,
}

/// A response body.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Body<'a, A = Value> {
    /// The answer (chat completion, embeddings, completion), as the provider sent it
    /// (unknown fields included).
    Answer(&'a A),
    /// An OpenAI-style error body `{"error": {...}}`.
    Error(Value),
}

/// `error`: a stable code and a readable message.
#[derive(Debug, Serialize)]
pub struct ErrorPart {
    /// For failed calls the error class (`api_error`, `retries_exhausted`, `timeout`, ...);
    /// for bad input lines the problem (`invalid_json`, `duplicate_custom_id`, ...).
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// `lbgpt`: where the answer came from.
#[derive(Debug, Serialize)]
pub struct LbgptPart<'a> {
    /// The input line number, from 1.
    pub line: usize,
    /// The provider that answered (null when none did).
    pub member: Option<&'a str>,
    /// Attempts made (0 when nothing was sent).
    pub attempts: u32,
    /// Time from the first attempt to the final outcome, waits included (null when nothing
    /// was sent); for a cache hit, the lookup's time.
    pub latency_ms: Option<u64>,
    /// `"exact"` for an answer from the exact cache, `"semantic"` for one from the semantic
    /// cache, `"partial"` for an embeddings or completions answer partly from the cache,
    /// `"miss"` for one (or an error) from a provider; null for a bad input line, which never
    /// reached the cache.
    pub cache: Option<&'static str>,
    /// Partial answers only: the inputs (embeddings) or prompts (completions) answered from
    /// the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_cache: Option<u32>,
    /// Partial answers only: the inputs or prompts a provider answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_provider: Option<u32>,
    /// Semantic hits only: the similarity of the request to the cached one (4 decimals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Semantic hits only: the exact-cache key of the cached request whose answer was served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<&'a str>,
}

/// The similarity of a semantic hit, rounded to 4 decimals; `None` for other answers.
pub fn semantic_score(answer: &impl CliAnswer) -> Option<f64> {
    match answer.cache_status() {
        CacheStatus::Semantic { score } => Some((f64::from(score) * 10_000.0).round() / 10_000.0),
        _ => None,
    }
}

/// Makes the `id` of each output line: `batch_req_` + a run nonce + the line number, so ids
/// are unique within a run and, with high probability, across runs.
#[derive(Debug, Clone)]
pub struct IdMaker {
    nonce: u64,
}

impl IdMaker {
    /// An id maker with a fresh random nonce.
    pub fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        IdMaker {
            nonce: hasher.finish(),
        }
    }

    /// The id of line `line`.
    pub fn id(&self, line: usize) -> String {
        format!("batch_req_{:016x}{:08x}", self.nonce, line)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The output line of a successful call.
pub fn success<'a, A: CliAnswer>(
    id: String,
    custom_id: Option<&'a str>,
    line: usize,
    answer: &'a A,
) -> OutputLine<'a, A> {
    let meta = answer.meta();
    let parts = answer.cached_parts();
    let score = semantic_score(answer);
    OutputLine {
        id,
        custom_id,
        response: Some(ResponsePart {
            status_code: 200,
            request_id: meta.request_id.as_deref(),
            body: Body::Answer(answer),
        }),
        error: None,
        lbgpt: LbgptPart {
            line,
            member: meta.member.as_deref(),
            // A hit made no attempt; an answer from a provider (whole or partial) took at
            // least one.
            attempts: if answer.answered_by_cache() {
                meta.attempts
            } else {
                meta.attempts.max(1)
            },
            latency_ms: Some(millis(meta.latency)),
            cache: Some(answer.cache_label()),
            from_cache: parts.map(|(hits, _)| hits),
            from_provider: parts.map(|(_, misses)| misses),
            score,
            matched: score.and(meta.cache_match.as_deref()),
        },
    }
}

/// The output line of a failed call. `latency` is the time the call took, when measured.
pub fn failure<'a>(
    id: String,
    custom_id: Option<&'a str>,
    line: usize,
    error: &'a Error,
    latency: Option<Duration>,
) -> OutputLine<'a> {
    let response = match error.last_attempt() {
        Error::Api(api) => Some(ResponsePart {
            status_code: api.status,
            request_id: api.request_id.as_deref(),
            body: Body::Error(json!({
                "error": {
                    "message": api.message,
                    "type": api.kind,
                    "param": api.param,
                    "code": api.code,
                }
            })),
        }),
        _ => None,
    };
    let attempts = error.attempts().unwrap_or(match error {
        Error::InvalidRequest { .. }
        | Error::ModelNotServed { .. }
        | Error::Config(_)
        | Error::Cancelled => 0,
        _ => 1,
    });
    OutputLine {
        id,
        custom_id,
        response,
        error: Some(ErrorPart {
            code: error.class().to_owned(),
            message: error.to_string(),
        }),
        lbgpt: LbgptPart {
            line,
            member: None,
            attempts,
            latency_ms: latency.filter(|_| attempts > 0).map(millis),
            // Errors never come from the cache (they are never stored).
            cache: Some("miss"),
            from_cache: None,
            from_provider: None,
            score: None,
            matched: None,
        },
    }
}

/// The output line of an input line that could not be sent.
pub fn rejected<'a>(
    id: String,
    custom_id: Option<&'a str>,
    line: usize,
    problem: &LineProblem,
) -> OutputLine<'a> {
    OutputLine {
        id,
        custom_id,
        response: None,
        error: Some(ErrorPart {
            code: problem.code.to_owned(),
            message: problem.message.clone(),
        }),
        lbgpt: LbgptPart {
            line,
            member: None,
            attempts: 0,
            latency_ms: None,
            cache: None,
            from_cache: None,
            from_provider: None,
            score: None,
            matched: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::{ApiError, ChatResponse, EmbeddingResponse};

    #[test]
    fn success_line_has_the_batch_shape() {
        let mut answer: ChatResponse = serde_json::from_value(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                         "finish_reason": "stop"}],
            "timings": {"predicted_ms": 3.5}
        }))
        .expect("valid answer");
        answer.meta.member = Some("openai-1".into());
        answer.meta.attempts = 2;
        answer.meta.latency = Duration::from_millis(1500);
        answer.meta.request_id = Some("req-9".into());
        let line = success("batch_req_x".into(), Some("c1"), 3, &answer);
        let value = serde_json::to_value(&line).expect("serialises");
        assert_eq!(value["id"], "batch_req_x");
        assert_eq!(value["custom_id"], "c1");
        assert_eq!(value["response"]["status_code"], 200);
        assert_eq!(value["response"]["request_id"], "req-9");
        assert_eq!(
            value["response"]["body"]["choices"][0]["message"]["content"],
            "hi"
        );
        assert_eq!(value["response"]["body"]["timings"]["predicted_ms"], 3.5);
        assert!(value["error"].is_null());
        assert_eq!(
            value["lbgpt"],
            json!({"line": 3, "member": "openai-1", "attempts": 2, "latency_ms": 1500, "cache": "miss"})
        );

        let mut hit = answer.clone();
        hit.meta.cache = CacheStatus::Exact;
        hit.meta.attempts = 0;
        hit.meta.member = None;
        hit.meta.latency = Duration::from_micros(40);
        let value = serde_json::to_value(success("id".into(), None, 4, &hit)).expect("json");
        assert_eq!(
            value["lbgpt"],
            json!({"line": 4, "member": null, "attempts": 0, "latency_ms": 0, "cache": "exact"})
        );
        assert_eq!(
            value["response"]["body"]["choices"][0]["message"]["content"],
            "hi"
        );

        let mut semantic = hit.clone();
        semantic.meta.cache = CacheStatus::Semantic { score: 0.912_345 };
        semantic.meta.cache_match = Some("v1:abc".into());
        let value = serde_json::to_value(success("id".into(), None, 5, &semantic)).expect("json");
        assert_eq!(
            value["lbgpt"],
            json!({"line": 5, "member": null, "attempts": 0, "latency_ms": 0,
                   "cache": "semantic", "score": 0.9123, "matched": "v1:abc"})
        );
    }

    #[test]
    fn a_partial_embeddings_answer_says_how_much_came_from_the_cache() {
        let mut answer: EmbeddingResponse = serde_json::from_value(json!({
            "object": "list", "model": "e",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.25]},
                     {"object": "embedding", "index": 1, "embedding": [0.5]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2}
        }))
        .expect("valid answer");
        answer.meta.cache = CacheStatus::Partial { hits: 1, misses: 1 };
        answer.meta.member = Some("p".into());
        let value =
            serde_json::to_value(success("id".into(), Some("e1"), 2, &answer)).expect("serialises");
        assert_eq!(
            value["response"]["body"]["data"][1]["embedding"],
            json!([0.5])
        );
        assert_eq!(
            value["lbgpt"],
            json!({"line": 2, "member": "p", "attempts": 1, "latency_ms": 0,
                   "cache": "partial", "from_cache": 1, "from_provider": 1})
        );
    }

    #[test]
    fn api_failure_keeps_status_and_error_body() {
        let mut api = ApiError::new(429, "You exceeded your current quota");
        api.code = Some("insufficient_quota".into());
        api.kind = Some("insufficient_quota".into());
        api.request_id = Some("req-1".into());
        let error = Error::from(api);
        let line = failure(
            "id".into(),
            Some("c"),
            1,
            &error,
            Some(Duration::from_millis(7)),
        );
        let value = serde_json::to_value(&line).expect("serialises");
        assert_eq!(value["response"]["status_code"], 429);
        assert_eq!(value["response"]["request_id"], "req-1");
        assert_eq!(
            value["response"]["body"]["error"]["code"],
            "insufficient_quota"
        );
        assert_eq!(value["error"]["code"], "api_error");
        assert!(value["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 429")));
        assert_eq!(value["lbgpt"]["attempts"], 1);
        assert_eq!(value["lbgpt"]["latency_ms"], 7);
    }

    #[test]
    fn exhausted_retries_report_attempts_and_last_status() {
        let error = Error::RetriesExhausted {
            attempts: 3,
            last: Box::new(ApiError::new(503, "busy").into()),
        };
        let value =
            serde_json::to_value(failure("id".into(), None, 1, &error, None)).expect("json");
        assert_eq!(value["response"]["status_code"], 503);
        assert_eq!(value["error"]["code"], "retries_exhausted");
        assert_eq!(value["lbgpt"]["attempts"], 3);
    }

    #[test]
    fn transport_failure_has_no_response() {
        let error = Error::Timeout {
            phase: lbgpt_core::TimeoutPhase::Request,
            after: None,
        };
        let value =
            serde_json::to_value(failure("id".into(), None, 1, &error, None)).expect("json");
        assert!(value["response"].is_null());
        assert_eq!(value["error"]["code"], "timeout");
    }

    #[test]
    fn ids_are_distinct_per_line() {
        let ids = IdMaker::new();
        assert_ne!(ids.id(1), ids.id(2));
        assert!(ids.id(1).starts_with("batch_req_"));
    }
}
