//! The endpoints `lbgpt run` sends to, and what differs between them.
//!
//! A Batch-API file uses one endpoint for all its lines (the OpenAI Batch API requires it), so
//! a run is single-endpoint: [`Endpoint`] names it (`/v1/chat/completions`, `/v1/embeddings`
//! or `/v1/completions`). The run pipeline is generic over the request type through
//! [`CliEndpoint`] (implemented for [`ChatRequest`], [`EmbeddingRequest`] and
//! [`CompletionRequest`]): a line's `body` becomes a checked request ([`CliEndpoint::from_body`],
//! errors name the field), the ledger's stand-in for a bad line is a
//! [`placeholder`](CliEndpoint::placeholder), and the facade's ordered stream of that endpoint
//! answers the lines in input order ([`CliEndpoint::send_ordered`]). Answers are read through
//! [`CliAnswer`] (metadata, tokens, cache status) and serialised as they are (the provider's
//! body, unknown fields included).
//!
//! Legacy completions with a list of prompts are sent one request per prompt and put back
//! together in prompt order by the facade's `completion_ordered` (each prompt one call, one
//! permit of the client).

use futures::Stream;
use lbgpt::Lbgpt;
use lbgpt_balance::BalancedRequest;
use lbgpt_core::{
    ApiResponse, CacheStatus, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse,
    EmbeddingRequest, EmbeddingResponse, Error, Extra, Usage,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt;
use std::pin::Pin;
use tower::Service;

/// One endpoint of the OpenAI API that `lbgpt run` can send a file's lines to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/embeddings`.
    Embeddings,
    /// `/v1/completions` (legacy completions).
    Completions,
}

/// The `url` of each endpoint a Batch-API line may name, in the order of [`Endpoint::ALL`].
pub const SUPPORTED_URLS: [&str; 3] = ["/v1/chat/completions", "/v1/embeddings", "/v1/completions"];

impl Endpoint {
    /// Every endpoint, in the order of [`SUPPORTED_URLS`].
    pub const ALL: [Endpoint; 3] = [Endpoint::Chat, Endpoint::Embeddings, Endpoint::Completions];

    /// The `url` a Batch-API line names for this endpoint, e.g. `"/v1/embeddings"`.
    pub fn url(self) -> &'static str {
        match self {
            Endpoint::Chat => SUPPORTED_URLS[0],
            Endpoint::Embeddings => SUPPORTED_URLS[1],
            Endpoint::Completions => SUPPORTED_URLS[2],
        }
    }

    /// The endpoint of a line's `url`; `None` for any other text (the match is exact, as the
    /// Batch API's).
    pub fn from_url(url: &str) -> Option<Endpoint> {
        Endpoint::ALL
            .into_iter()
            .find(|endpoint| endpoint.url() == url)
    }

    /// What the endpoint is called in messages: `"chat completions"`, `"embeddings"` or
    /// `"legacy completions"`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Completions => "legacy completions",
        }
    }
}

impl fmt::Display for Endpoint {
    /// The endpoint's `url`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url())
    }
}

/// The answer type of request type `R`.
pub type Answer<R> = <R as BalancedRequest>::Response;

/// The results of [`CliEndpoint::send_ordered`]: one per request, in input order.
pub type AnswerStream<R> = Pin<Box<dyn Stream<Item = Result<Answer<R>, Error>> + Send>>;

/// A request type `lbgpt run` can send: how a line's `body` becomes a request, the stand-in
/// for a line that is not sent, and the facade's ordered stream for the type.
pub trait CliEndpoint:
    BalancedRequest<Response: CliAnswer> + Serialize + DeserializeOwned + fmt::Debug
{
    /// The endpoint requests of this type go to.
    const ENDPOINT: Endpoint;

    /// What a body of this type is called in messages, e.g. `"embeddings request"`.
    const BODY_NAME: &'static str;

    /// The smallest body that parses into a valid request (used to find which field of a bad
    /// body is wrong: each field is tried in it alone).
    fn minimal_body() -> Value;

    /// The field holding the text(s) to send (`input`, `prompt`), when it is an untagged
    /// text-or-tokens value whose parse errors name no field.
    const TEXT_FIELD: Option<&'static str>;

    /// Parses and checks a line's `body`. The error is a message naming what is wrong, e.g.
    /// ``invalid embeddings request in `body`: `input[1]` must not be an empty string``; the
    /// caller adds the line number.
    fn from_body(body: Value) -> Result<Self, String> {
        let request = match Self::deserialize(&body) {
            Ok(request) => request,
            Err(err) => {
                let problem = wrong_field::<Self>(&body).unwrap_or_else(|| err.to_string());
                return Err(format!("invalid {} in `body`: {problem}", Self::BODY_NAME));
            }
        };
        match request.validate() {
            Ok(()) => Ok(request),
            Err(Error::InvalidRequest { field, message }) => Err(format!(
                "invalid {} in `body`: `{field}` {message}",
                Self::BODY_NAME
            )),
            Err(other) => Err(format!("invalid {} in `body`: {other}", Self::BODY_NAME)),
        }
    }

    /// A request no line ever parses into (an empty model and nothing to send, which
    /// [`from_body`](Self::from_body) refuses), for the ledger to stand in for a bad line or a
    /// wait.
    fn placeholder() -> Self;

    /// Whether `self` is a [`placeholder`](Self::placeholder) (extra fields aside).
    fn is_placeholder(&self) -> bool;

    /// The request's unknown fields (sent as given), where the ledger keeps its own marks.
    fn extra_mut(&mut self) -> &mut Extra;

    /// Sends every request through `client` and yields one result per request, in input
    /// order, pulling requests lazily within the client's reorder window: the facade's
    /// `chat_completion_ordered`, `embedding_ordered` or `completion_ordered` (which already
    /// sends a prompt list one prompt per call, each taking one of the client's permits).
    fn send_ordered<S, I>(client: &Lbgpt<S>, requests: I) -> AnswerStream<Self>
    where
        S: Service<Self, Response = Answer<Self>, Error = Error> + Clone + Send + 'static,
        S::Future: Send + 'static,
        I: IntoIterator<Item = Self>,
        I::IntoIter: Send + 'static;
}

/// An answer `lbgpt run` writes: serialised as the provider sent it (unknown fields
/// included, lbgpt's metadata left out), with its metadata, tokens and cache status read
/// the same way for every endpoint.
pub trait CliAnswer: ApiResponse + Serialize + Clone + fmt::Debug {
    /// How the cache answered: `Miss`, `Exact`, `Semantic` (chat only) or `Partial` (some
    /// inputs or prompts from the cache, the others from a provider).
    fn cache_status(&self) -> CacheStatus {
        self.meta().cache
    }

    /// Whether the whole answer came from a cache, with no call to any provider (a
    /// `Partial` answer made a call).
    fn answered_by_cache(&self) -> bool {
        matches!(
            self.meta().cache,
            CacheStatus::Exact | CacheStatus::Semantic { .. }
        )
    }

    /// The cache status's name in output lines: `"exact"`, `"semantic"`, `"partial"` or
    /// `"miss"`.
    fn cache_label(&self) -> &'static str {
        match self.meta().cache {
            CacheStatus::Exact => "exact",
            CacheStatus::Semantic { .. } => "semantic",
            CacheStatus::Partial { .. } => "partial",
            _ => "miss",
        }
    }

    /// For a `Partial` answer, how many inputs (embeddings) or prompts (completions) came
    /// from the cache and how many from a provider.
    fn cached_parts(&self) -> Option<(u32, u32)> {
        match self.meta().cache {
            CacheStatus::Partial { hits, misses } => Some((hits, misses)),
            _ => None,
        }
    }

    /// The tokens the provider reported, in one shape for every endpoint (embeddings have no
    /// completion tokens); `None` when the answer reported none.
    fn tokens(&self) -> Option<Usage> {
        self.token_usage()
    }
}

impl CliAnswer for ChatResponse {}
impl CliAnswer for EmbeddingResponse {}
impl CliAnswer for CompletionResponse {}

impl CliEndpoint for ChatRequest {
    const ENDPOINT: Endpoint = Endpoint::Chat;
    const BODY_NAME: &'static str = "chat request";
    const TEXT_FIELD: Option<&'static str> = None;

    fn minimal_body() -> Value {
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    }

    fn placeholder() -> Self {
        ChatRequest::new("", Vec::new())
    }

    fn is_placeholder(&self) -> bool {
        self.model.is_empty() && self.messages.is_empty()
    }

    fn extra_mut(&mut self) -> &mut Extra {
        &mut self.extra
    }

    fn send_ordered<S, I>(client: &Lbgpt<S>, requests: I) -> AnswerStream<Self>
    where
        S: Service<Self, Response = ChatResponse, Error = Error> + Clone + Send + 'static,
        S::Future: Send + 'static,
        I: IntoIterator<Item = Self>,
        I::IntoIter: Send + 'static,
    {
        Box::pin(client.chat_completion_ordered(requests))
    }
}

impl CliEndpoint for EmbeddingRequest {
    const ENDPOINT: Endpoint = Endpoint::Embeddings;
    const BODY_NAME: &'static str = "embeddings request";
    const TEXT_FIELD: Option<&'static str> = Some("input");

    fn minimal_body() -> Value {
        json!({"model": "m", "input": "x"})
    }

    fn placeholder() -> Self {
        EmbeddingRequest::new("", Vec::<String>::new())
    }

    fn is_placeholder(&self) -> bool {
        self.model.is_empty() && self.input.is_empty()
    }

    fn extra_mut(&mut self) -> &mut Extra {
        &mut self.extra
    }

    fn send_ordered<S, I>(client: &Lbgpt<S>, requests: I) -> AnswerStream<Self>
    where
        S: Service<Self, Response = EmbeddingResponse, Error = Error> + Clone + Send + 'static,
        S::Future: Send + 'static,
        I: IntoIterator<Item = Self>,
        I::IntoIter: Send + 'static,
    {
        Box::pin(client.embedding_ordered(requests))
    }
}

impl CliEndpoint for CompletionRequest {
    const ENDPOINT: Endpoint = Endpoint::Completions;
    const BODY_NAME: &'static str = "completions request";
    const TEXT_FIELD: Option<&'static str> = Some("prompt");

    fn minimal_body() -> Value {
        json!({"model": "m", "prompt": "x"})
    }

    fn placeholder() -> Self {
        CompletionRequest::new("", Vec::<String>::new())
    }

    fn is_placeholder(&self) -> bool {
        self.model.is_empty() && self.prompt.is_empty()
    }

    fn extra_mut(&mut self) -> &mut Extra {
        &mut self.extra
    }

    fn send_ordered<S, I>(client: &Lbgpt<S>, requests: I) -> AnswerStream<Self>
    where
        S: Service<Self, Response = CompletionResponse, Error = Error> + Clone + Send + 'static,
        S::Future: Send + 'static,
        I: IntoIterator<Item = Self>,
        I::IntoIter: Send + 'static,
    {
        Box::pin(client.completion_ordered(requests))
    }
}

/// The first field of `body` that does not parse on its own (each field is put, alone, into
/// the type's minimal valid body), with serde's complaint about it.
fn wrong_field<R: CliEndpoint>(body: &Value) -> Option<String> {
    let Value::Object(fields) = body else {
        return None;
    };
    let Value::Object(minimal) = R::minimal_body() else {
        return None;
    };
    fields.iter().find_map(|(name, value)| {
        let mut probe: Map<String, Value> = minimal.clone();
        probe.insert(name.clone(), value.clone());
        let err = serde_json::from_value::<R>(Value::Object(probe)).err()?;
        if R::TEXT_FIELD == Some(name.as_str()) {
            // Serde's error for an untagged value names neither the field nor the shapes.
            return Some(format!(
                "`{name}` must be a string, an array of strings, an array of token ids or an \
                 array of token-id arrays, found {}",
                text_field_type(value)
            ));
        }
        Some(format!("`{name}`: {err}"))
    })
}

/// The JSON type of a text field's value: [`json_type`], except that an array reaching here
/// holds values other than strings or token ids.
fn text_field_type(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array of other values",
        other => json_type(other),
    }
}

/// The JSON type of `value` as error messages name it: `a string`, `an array`, ...
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The texts of an input, when they are texts.
#[cfg(test)]
fn texts(input: &lbgpt_core::TextInput) -> Vec<String> {
    input
        .texts()
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_endpoints_go_both_ways() {
        for (endpoint, url) in Endpoint::ALL.into_iter().zip(SUPPORTED_URLS) {
            assert_eq!(endpoint.url(), url);
            assert_eq!(Endpoint::from_url(url), Some(endpoint));
            assert_eq!(endpoint.to_string(), url);
        }
        assert_eq!(
            Endpoint::from_url("/v1/embeddings"),
            Some(Endpoint::Embeddings)
        );
        for other in [
            "/v1/chat/completions/",
            "/v1/Embeddings",
            "v1/completions",
            "",
        ] {
            assert_eq!(Endpoint::from_url(other), None, "{other:?}");
        }
        assert_eq!(
            <EmbeddingRequest as CliEndpoint>::ENDPOINT.url(),
            "/v1/embeddings"
        );
        assert_eq!(
            <CompletionRequest as CliEndpoint>::ENDPOINT.url(),
            "/v1/completions"
        );
        assert_eq!(<ChatRequest as CliEndpoint>::ENDPOINT, Endpoint::Chat);
    }

    fn error_of<R: CliEndpoint>(body: Value) -> String {
        match R::from_body(body) {
            Ok(request) => panic!("expected an error, parsed {request:?}"),
            Err(message) => message,
        }
    }

    #[test]
    fn embedding_bodies_keep_every_field_and_errors_name_the_field() {
        let request = EmbeddingRequest::from_body(json!({
            "model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8,
            "encoding_format": "base64", "user": "u1", "future_field": {"x": 1}
        }))
        .expect("a good body");
        assert_eq!(texts(&request.input), ["a", "b"]);
        assert_eq!(request.dimensions, Some(8));
        assert_eq!(
            serde_json::to_value(&request).expect("serialises")["future_field"],
            json!({"x": 1})
        );
        let tokens = EmbeddingRequest::from_body(json!({"model": "m", "input": [[1, 2], [3]]}))
            .expect("token lists");
        assert_eq!(tokens.input_count(), 2);

        for (body, needle) in [
            (json!({"input": "a"}), "missing field `model`"),
            (json!({"model": "m"}), "missing field `input`"),
            (
                json!({"model": "m", "input": ["a", ""]}),
                "`input[1]` must not be an empty string",
            ),
            (
                json!({"model": "m", "input": []}),
                "`input` must hold at least one input",
            ),
            (
                json!({"model": "m", "input": 7}),
                "`input` must be a string, an array of strings",
            ),
            (
                json!({"model": "m", "input": [true]}),
                "found an array of other values",
            ),
            (
                json!({"model": "m", "input": "a", "dimensions": "eight"}),
                "`dimensions`: invalid type",
            ),
            (
                json!({"model": "m", "input": "a", "dimensions": 0}),
                "`dimensions` must be at least 1",
            ),
            (
                json!({"model": "m", "input": "a", "encoding_format": "int8"}),
                "`encoding_format`",
            ),
            (json!({"model": " ", "input": "a"}), "`model`"),
        ] {
            let message = error_of::<EmbeddingRequest>(body.clone());
            assert!(
                message.starts_with("invalid embeddings request in `body`: "),
                "{message}"
            );
            assert!(message.contains(needle), "{body}: {message}");
        }
        let many: Vec<String> = (0..2049).map(|i| format!("t{i}")).collect();
        let message = error_of::<EmbeddingRequest>(json!({"model": "m", "input": many}));
        assert!(message.contains("2049 inputs"), "{message}");
    }

    #[test]
    fn completion_bodies_keep_every_field_and_errors_name_the_field() {
        let request = CompletionRequest::from_body(json!({
            "model": "gpt-3.5-turbo-instruct", "prompt": ["Once", "Twice"], "max_tokens": 5,
            "n": 2, "logit_bias": {"50256": -100}
        }))
        .expect("a good body");
        assert_eq!(request.prompt_count(), 2);
        assert_eq!(request.choices_per_prompt(), 2);
        assert_eq!(request.extra["logit_bias"], json!({"50256": -100}));

        for (body, needle) in [
            (json!({"prompt": "a"}), "missing field `model`"),
            (json!({"model": "m"}), "missing field `prompt`"),
            (
                json!({"model": "m", "prompt": []}),
                "`prompt` must hold at least one prompt",
            ),
            (
                json!({"model": "m", "prompt": [[1], []]}),
                "`prompt[1]` must not be an empty token list",
            ),
            (
                json!({"model": "m", "prompt": {"text": "a"}}),
                "`prompt` must be a string",
            ),
            (
                json!({"model": "m", "prompt": "a", "stream": true}),
                "`stream`",
            ),
            (json!({"model": "m", "prompt": "a", "n": 0}), "`n`"),
            (
                json!({"model": "m", "prompt": "a", "max_tokens": "five"}),
                "`max_tokens`: invalid type",
            ),
            (
                json!({"model": "m", "prompt": "a", "logprobs": 9}),
                "`logprobs` must be between 0 and 5",
            ),
        ] {
            let message = error_of::<CompletionRequest>(body.clone());
            assert!(
                message.starts_with("invalid completions request in `body`: "),
                "{message}"
            );
            assert!(message.contains(needle), "{body}: {message}");
        }
    }

    #[test]
    fn chat_bodies_are_parsed_as_before() {
        let request = ChatRequest::from_body(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "reasoning_effort": "low"
        }))
        .expect("a good body");
        assert_eq!(request.model, "m");
        for (body, needle) in [
            (
                json!({"messages": [{"role": "user", "content": "hi"}]}),
                "`model`",
            ),
            (json!({"model": "m", "messages": []}), "`messages`"),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "five"}),
                "`max_tokens`: invalid type",
            ),
        ] {
            let message = error_of::<ChatRequest>(body.clone());
            assert!(
                message.starts_with("invalid chat request in `body`: "),
                "{message}"
            );
            assert!(message.contains(needle), "{body}: {message}");
        }
    }

    /// The ledger's stand-in is never mistaken for a line, and a line never for it.
    fn placeholders_stand_apart<R: CliEndpoint>() {
        let mut placeholder = R::placeholder();
        assert!(placeholder.is_placeholder());
        placeholder
            .extra_mut()
            .insert("__lbgpt_index".to_owned(), json!(3));
        assert!(placeholder.is_placeholder(), "extra fields aside");
        assert!(
            R::from_body(serde_json::to_value(R::placeholder()).expect("serialises")).is_err(),
            "no line parses into a placeholder"
        );
        let minimal = R::from_body(R::minimal_body()).expect("the minimal body is valid");
        assert!(!minimal.is_placeholder());
    }

    #[test]
    fn placeholders_are_never_lines() {
        placeholders_stand_apart::<ChatRequest>();
        placeholders_stand_apart::<EmbeddingRequest>();
        placeholders_stand_apart::<CompletionRequest>();
    }

    #[test]
    fn answers_say_where_they_came_from_and_serialise_as_sent() {
        let mut answer: EmbeddingResponse = serde_json::from_value(json!({
            "object": "list", "model": "m", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}, "provider_note": "kept"
        }))
        .expect("an answer");
        assert_eq!(
            (answer.cache_label(), answer.answered_by_cache()),
            ("miss", false)
        );
        let tokens = answer.tokens().expect("usage");
        assert_eq!((tokens.prompt_tokens, tokens.completion_tokens), (4, 0));
        answer.meta.cache = CacheStatus::Partial { hits: 3, misses: 1 };
        assert_eq!(answer.cache_label(), "partial");
        assert!(!answer.answered_by_cache(), "a partial answer made a call");
        assert_eq!(answer.cached_parts(), Some((3, 1)));
        answer.meta.cache = CacheStatus::Exact;
        assert_eq!(
            (answer.cache_label(), answer.answered_by_cache()),
            ("exact", true)
        );
        let body = serde_json::to_value(&answer).expect("serialises");
        assert_eq!(body["provider_note"], "kept");
        assert!(
            body.get("meta").is_none(),
            "lbgpt's metadata is not part of the body"
        );

        let mut chat: ChatResponse =
            serde_json::from_value(json!({"choices": []})).expect("an answer");
        chat.meta.cache = CacheStatus::Semantic { score: 0.9 };
        assert_eq!(
            (chat.cache_label(), chat.answered_by_cache()),
            ("semantic", true)
        );
        assert_eq!(chat.tokens(), None);
    }
}
