//! Answering one HTTP request: routing, authentication, validation, faults, limits, answers.

use crate::answer::{answer_for, request_hash};
use crate::endpoints::{completions_body, embeddings_body, MAX_EMBEDDING_DIMENSIONS};
use crate::limiter::{Admission, LimitKind, LimitSnapshot};
use crate::reply::{self, ApiErrorBody, Body};
use crate::seen::SeenRequest;
use crate::state::{lock, KeyState, State};
use crate::Fault;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use lbgpt_core::tokens::approx_text_tokens;
use lbgpt_core::{ArrivalCharge, ChatRequest, CompletionRequest, EmbeddingRequest};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// Largest request body accepted (OpenAI's own limit is in this range).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Most choices one request may ask for.
const MAX_CHOICES: u32 = 128;

/// What the handler can do to the connection it runs on.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    reset: Notify,
}

impl ConnControl {
    /// Asks the connection's task to reset the TCP connection.
    pub(crate) fn request_reset(&self) {
        self.reset.notify_one();
    }

    /// Resolves when a handler asked for a reset.
    pub(crate) async fn reset_requested(&self) {
        self.reset.notified().await;
    }
}

/// Which endpoint a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `chat/completions`
    Chat,
    /// `embeddings`
    Embeddings,
    /// `completions` (legacy)
    Completions,
}

impl Api {
    fn of(path: &str) -> Option<Api> {
        match path {
            "chat/completions" => Some(Api::Chat),
            "embeddings" => Some(Api::Embeddings),
            "completions" => Some(Api::Completions),
            _ => None,
        }
    }
}

/// Which API a path belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// `POST /v1/{chat/completions | embeddings | completions}`
    OpenAi(Api),
    /// `POST /openai/deployments/{deployment}/{chat/completions | embeddings | completions}`
    Azure { deployment: String, api: Api },
    /// `GET /health`
    Health,
    /// A known path with the wrong method.
    MethodNotAllowed,
    /// Anything else.
    NotFound,
}

impl Route {
    fn of(method: &Method, path: &str) -> Route {
        let route = if let Some(api) = path.strip_prefix("/v1/").and_then(Api::of) {
            Route::OpenAi(api)
        } else if let Some((deployment, api)) = path
            .strip_prefix("/openai/deployments/")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(d, _)| !d.is_empty())
            .and_then(|(d, rest)| Some((d, Api::of(rest)?)))
        {
            Route::Azure {
                deployment: deployment.to_owned(),
                api,
            }
        } else if path == "/health" {
            return if method == Method::GET {
                Route::Health
            } else {
                Route::MethodNotAllowed
            };
        } else {
            return Route::NotFound;
        };
        if method == Method::POST {
            route
        } else {
            Route::MethodNotAllowed
        }
    }
}

/// The key a request presents: `api-key` (Azure only), else `Authorization: Bearer`.
fn presented_key<'h>(headers: &'h HeaderMap, route: &Route) -> Option<&'h str> {
    if matches!(route, Route::Azure { .. }) {
        if let Some(key) = headers.get("api-key").and_then(|v| v.to_str().ok()) {
            return Some(key.trim());
        }
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// A future that never completes (the connection is reset under it).
async fn never() -> Response<Body> {
    match std::future::pending::<std::convert::Infallible>().await {}
}

impl State {
    /// Answers one request, counting it and tagging the answer with an `x-request-id`.
    pub(crate) async fn handle(
        self: Arc<Self>,
        request: Request<hyper::body::Incoming>,
        conn: Arc<ConnControl>,
    ) -> Response<Body> {
        let number = self.counters.arrive();
        let azure = request.uri().path().starts_with("/openai/");
        let mut response = self.respond(request, &conn).await;
        let request_id = format!("req-sim-{number:08x}");
        if azure {
            // Azure's API management layer names its request id this way.
            reply::set_header(&mut response, "apim-request-id", &request_id);
        }
        reply::set_header(&mut response, "x-request-id", &request_id);
        self.counters.answered(response.status().as_u16());
        response
    }

    async fn respond(
        &self,
        request: Request<hyper::body::Incoming>,
        conn: &ConnControl,
    ) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes: Bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return reply::error(
                    413,
                    ApiErrorBody {
                        message: "The request body is too large or could not be read.",
                        kind: "invalid_request_error",
                        param: None,
                        code: None,
                    },
                )
            }
        };
        let route = Route::of(&parts.method, parts.uri.path());
        match &route {
            Route::Health => return reply::with_body(200, "text/plain", "ok"),
            Route::NotFound => {
                let message = format!("Invalid URL ({} {})", parts.method, parts.uri.path());
                return reply::error(
                    404,
                    ApiErrorBody {
                        message: &message,
                        kind: "invalid_request_error",
                        param: None,
                        code: None,
                    },
                );
            }
            Route::MethodNotAllowed => {
                let message = format!(
                    "Method {} is not allowed on {}",
                    parts.method,
                    parts.uri.path()
                );
                return reply::error(
                    405,
                    ApiErrorBody {
                        message: &message,
                        kind: "invalid_request_error",
                        param: None,
                        code: None,
                    },
                );
            }
            Route::OpenAi(_) | Route::Azure { .. } => {}
        }

        let presented = presented_key(&parts.headers, &route).filter(|k| !k.is_empty());
        let key = presented.and_then(|k| self.key_for(k));
        let body_json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if self.seen.is_enabled() {
            self.seen.push(SeenRequest::new(
                &parts,
                key.as_ref().map(|k| k.id.clone()),
                body_json.clone().unwrap_or(Value::Null),
            ));
        }

        if let Route::Azure { deployment, .. } = &route {
            if let Some(refusal) = self.check_azure(parts.uri.query(), deployment) {
                return refusal;
            }
        }
        let Some(key) = key else {
            return unauthorized(presented.is_some());
        };
        let arrival = key.counters.arrive(self.clock.now());
        // Switches set at run time come before validation and faults (scripted faults wait).
        if key.is_revoked() {
            key.counters.revoked_refusal();
            return unauthorized(true);
        }
        if key.is_quota_exhausted() {
            key.counters.quota_refusal();
            return insufficient_quota();
        }

        let request = match parse_request(body_json, &route) {
            Ok(request) => request,
            Err(bad) => return bad.into_response(),
        };

        if let Some(fault) = key.next_fault(arrival, self.seed) {
            key.counters.fault();
            match fault {
                Fault::Stall(wait) => tokio::time::sleep(wait).await,
                Fault::Reset => {
                    self.counters.reset();
                    conn.request_reset();
                    return never().await;
                }
                other => {
                    let response = self.fault_answer(&other, &key, &request, &route);
                    if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        key.counters.injected_429();
                    }
                    return response;
                }
            }
        }

        let prompt_tokens = request.prompt_tokens(&key);
        let charge = prompt_tokens.saturating_add(request.completion_charge());
        let snapshot = if key.limited {
            let now = self.clock.now();
            let admission = lock(&key.limiter).admit(now, charge);
            match admission {
                Admission::Admitted(snapshot) => Some(snapshot),
                Admission::Refused {
                    limit,
                    retry_after,
                    snapshot,
                } => {
                    key.counters.rate_limit();
                    return limit_refusal(limit, retry_after, &snapshot, charge);
                }
            }
        } else {
            None
        };
        key.counters.charged(charge);

        let (body, completion_tokens) = self.answer(&request, &route, prompt_tokens);
        let latency = self.latency().for_tokens(completion_tokens);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        key.counters.succeed(prompt_tokens, completion_tokens);
        let mut response = reply::json(200, &body);
        if let Some(snapshot) = snapshot {
            reply::set_rate_limit_headers(&mut response, &snapshot);
        }
        response
    }

    /// Checks an Azure request's `api-version` and deployment.
    fn check_azure(&self, query: Option<&str>, deployment: &str) -> Option<Response<Body>> {
        let version = query_param(query, "api-version").unwrap_or("");
        if version.is_empty() {
            return Some(reply::invalid_request(
                Some("api-version"),
                "Missing required query parameter `api-version`.",
            ));
        }
        if !self.azure_api_versions.is_empty()
            && !self.azure_api_versions.iter().any(|v| v == version)
        {
            let message = format!(
                "Unsupported api-version `{version}`; supported: {}.",
                self.azure_api_versions.join(", ")
            );
            return Some(reply::invalid_request(Some("api-version"), &message));
        }
        if !self.azure_deployments.is_empty() && !self.azure_deployments.contains_key(deployment) {
            return Some(reply::error(
                404,
                ApiErrorBody {
                    message: "The API deployment for this resource does not exist.",
                    kind: "invalid_request_error",
                    param: None,
                    code: Some("DeploymentNotFound"),
                },
            ));
        }
        None
    }

    /// The model name an answer reports.
    fn answer_model(&self, model: &str, route: &Route) -> String {
        match route {
            Route::Azure { deployment, .. } => self
                .azure_deployments
                .get(deployment)
                .cloned()
                .unwrap_or_else(|| deployment.clone()),
            _ => model.to_owned(),
        }
    }

    /// The JSON answer to any request and its completion tokens.
    fn answer(&self, request: &SimRequest, route: &Route, prompt_tokens: u64) -> (Value, u64) {
        match request {
            SimRequest::Chat(chat) => self.completion(chat, route, prompt_tokens),
            SimRequest::Embeddings(embeddings) => {
                let model = self.answer_model(&embeddings.model, route);
                (embeddings_body(embeddings, &model, prompt_tokens), 0)
            }
            SimRequest::Completions(completions) => {
                let model = self.answer_model(&completions.model, route);
                completions_body(completions, &model, prompt_tokens, unix_now())
            }
        }
    }

    /// The JSON answer to `request` and its completion tokens.
    fn completion(&self, request: &ChatRequest, route: &Route, prompt_tokens: u64) -> (Value, u64) {
        let answer = answer_for(request);
        let choices = request.n.unwrap_or(1);
        let per_choice = approx_text_tokens(&answer.content);
        let completion_tokens = per_choice * u64::from(choices);
        let finish_reason = if answer.truncated { "length" } else { "stop" };
        let choices: Vec<Value> = (0..choices)
            .map(|index| {
                json!({
                    "index": index,
                    "message": {"role": "assistant", "content": answer.content, "refusal": null},
                    "logprobs": null,
                    "finish_reason": finish_reason,
                })
            })
            .collect();
        let created = unix_now();
        let body = json!({
            "id": format!("chatcmpl-sim-{:016x}", request_hash(request)),
            "object": "chat.completion",
            "created": created,
            "model": self.answer_model(&request.model, route),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_lbgpt_sim",
        });
        (body, completion_tokens)
    }

    /// The answer a fault calls for (every fault except `Stall` and `Reset`).
    fn fault_answer(
        &self,
        fault: &Fault,
        key: &KeyState,
        request: &SimRequest,
        route: &Route,
    ) -> Response<Body> {
        match fault {
            Fault::RateLimited { retry_after } => {
                let message = format!(
                    "Rate limit reached for requests (simulated). Please try again in {}.",
                    reply::openai_duration(*retry_after)
                );
                let mut response = reply::error(
                    429,
                    ApiErrorBody {
                        message: &message,
                        kind: "requests",
                        param: None,
                        code: Some("rate_limit_exceeded"),
                    },
                );
                if key.limited {
                    let snapshot = lock(&key.limiter).snapshot(self.clock.now());
                    reply::set_rate_limit_headers(&mut response, &snapshot);
                }
                reply::set_header(&mut response, "x-ratelimit-remaining-requests", "0");
                reply::set_header(
                    &mut response,
                    "x-ratelimit-reset-requests",
                    &reply::openai_duration(*retry_after),
                );
                reply::set_retry_after(&mut response, *retry_after);
                response
            }
            Fault::InsufficientQuota => insufficient_quota(),
            Fault::ServerError => reply::error(
                500,
                ApiErrorBody {
                    message:
                        "The server had an error while processing your request. Sorry about that!",
                    kind: "server_error",
                    param: None,
                    code: None,
                },
            ),
            Fault::Unavailable { retry_after } => {
                let mut response = reply::error(
                    503,
                    ApiErrorBody {
                        message: "The engine is currently overloaded, please try again later.",
                        kind: "server_error",
                        param: None,
                        code: Some("service_unavailable"),
                    },
                );
                if let Some(wait) = retry_after {
                    reply::set_retry_after(&mut response, *wait);
                }
                response
            }
            Fault::Status(status) => {
                let kind = match status {
                    400..=499 => "invalid_request_error",
                    500..=599 => "server_error",
                    _ => "api_error",
                };
                let message = format!("Simulated HTTP {status} error.");
                reply::error(
                    *status,
                    ApiErrorBody {
                        message: &message,
                        kind,
                        param: None,
                        code: None,
                    },
                )
            }
            Fault::MalformedJson => {
                let (body, _) = self.answer(request, route, request.prompt_tokens(key));
                let text = body.to_string();
                let mut end = text.len() / 2;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                reply::with_body(200, "application/json", text[..end].to_owned())
            }
            Fault::Unauthorized => unauthorized(true),
            Fault::EmptyBody(status) => {
                let mut response = reply::with_body(*status, "application/json", Bytes::new());
                response.headers_mut().remove(http::header::CONTENT_TYPE);
                response
            }
            Fault::NonJsonBody(status) => {
                let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
                let title = format!(
                    "{} {}",
                    code.as_u16(),
                    code.canonical_reason().unwrap_or("Error")
                );
                let page = format!(
                    "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
                );
                reply::with_body(*status, "text/html", page)
            }
            // Applied by the caller; answered normally if they ever reach here.
            Fault::Stall(_) | Fault::Reset => reply::error(
                500,
                ApiErrorBody {
                    message: "internal simulator error: fault applied twice",
                    kind: "server_error",
                    param: None,
                    code: None,
                },
            ),
        }
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A parsed request body of any served endpoint.
enum SimRequest {
    Chat(Box<ChatRequest>),
    Embeddings(EmbeddingRequest),
    Completions(CompletionRequest),
}

impl SimRequest {
    /// The request as its arrival charge.
    fn charge(&self) -> &dyn ArrivalCharge {
        match self {
            SimRequest::Chat(chat) => chat.as_ref(),
            SimRequest::Embeddings(embeddings) => embeddings,
            SimRequest::Completions(completions) => completions,
        }
    }

    /// The prompt tokens `key`'s provider counts (approximate, times its token factor).
    fn prompt_tokens(&self, key: &KeyState) -> u64 {
        key.scale_tokens(self.charge().approx_prompt_charge())
    }

    /// The completion tokens charged at arrival beside the prompt: the completion budget
    /// times the choices (times the prompts, for completions); none for embeddings or
    /// without a budget.
    fn completion_charge(&self) -> u64 {
        self.charge().completion_charge(0)
    }
}

/// `429 insufficient_quota`: the key's quota (billing) is used up; retrying does not help.
fn insufficient_quota() -> Response<Body> {
    reply::error(
        429,
        ApiErrorBody {
            message: "You exceeded your current quota, please check your plan and billing details.",
            kind: "insufficient_quota",
            param: None,
            code: Some("insufficient_quota"),
        },
    )
}

/// `401`: no key, an unknown or a revoked key (never echoing what was sent).
fn unauthorized(key_presented: bool) -> Response<Body> {
    if key_presented {
        reply::error(
            401,
            ApiErrorBody {
                message: "Incorrect API key provided.",
                kind: "invalid_request_error",
                param: None,
                code: Some("invalid_api_key"),
            },
        )
    } else {
        reply::error(
            401,
            ApiErrorBody {
                message: "You didn't provide an API key. Provide it in an Authorization header (Bearer) or, for Azure paths, an api-key header.",
                kind: "invalid_request_error",
                param: None,
                code: Some("missing_api_key"),
            },
        )
    }
}

/// Why a body is not a valid chat request: the `400` to answer with.
struct BadRequest {
    param: Option<String>,
    message: String,
}

impl BadRequest {
    fn new(param: Option<&str>, message: impl Into<String>) -> Self {
        BadRequest {
            param: param.map(str::to_owned),
            message: message.into(),
        }
    }

    fn into_response(self) -> Response<Body> {
        reply::invalid_request(self.param.as_deref(), &self.message)
    }
}

/// The request in a body, of the kind its route names, or what is wrong with it.
fn parse_request(body: Option<Value>, route: &Route) -> Result<SimRequest, BadRequest> {
    let Some(Value::Object(mut body)) = body else {
        return Err(BadRequest::new(
            None,
            "We could not parse the JSON body of your request: it must be a JSON object.",
        ));
    };
    let api = match route {
        Route::Azure { deployment, api } => {
            body.entry("model")
                .or_insert_with(|| Value::String(deployment.clone()));
            *api
        }
        Route::OpenAi(api) => *api,
        _ => Api::Chat,
    };
    match api {
        Api::Chat => parse_chat(body).map(|chat| SimRequest::Chat(Box::new(chat))),
        Api::Embeddings => parse_embeddings(body).map(SimRequest::Embeddings),
        Api::Completions => parse_completions(body).map(SimRequest::Completions),
    }
}

/// A validation failure as a `400` naming the field.
fn invalid(err: lbgpt_core::Error) -> BadRequest {
    match err {
        lbgpt_core::Error::InvalidRequest { field, message } => {
            let message = format!("`{field}` {message}.");
            BadRequest::new(Some(&field), message)
        }
        other => BadRequest::new(None, other.to_string()),
    }
}

/// An embeddings request, or what is wrong with it.
fn parse_embeddings(body: serde_json::Map<String, Value>) -> Result<EmbeddingRequest, BadRequest> {
    let request: EmbeddingRequest = serde_json::from_value(Value::Object(body))
        .map_err(|error| BadRequest::new(None, format!("Invalid embeddings request: {error}.")))?;
    request.validate().map_err(invalid)?;
    if request
        .dimensions
        .is_some_and(|d| d > MAX_EMBEDDING_DIMENSIONS)
    {
        return Err(BadRequest::new(
            Some("dimensions"),
            format!("`dimensions` must be at most {MAX_EMBEDDING_DIMENSIONS}."),
        ));
    }
    Ok(request)
}

/// The options chat and legacy completions share that the simulator limits: no streaming,
/// at most `MAX_CHOICES` choices.
fn check_stream_and_n(stream: Option<bool>, n: Option<u32>) -> Result<(), BadRequest> {
    if stream == Some(true) {
        return Err(BadRequest::new(
            Some("stream"),
            "Streaming is not simulated yet: leave `stream` out or set it to false.",
        ));
    }
    if n.is_some_and(|n| n > MAX_CHOICES) {
        return Err(BadRequest::new(
            Some("n"),
            format!("`n` must be at most {MAX_CHOICES}."),
        ));
    }
    Ok(())
}

/// A legacy completions request, or what is wrong with it.
fn parse_completions(
    body: serde_json::Map<String, Value>,
) -> Result<CompletionRequest, BadRequest> {
    let request: CompletionRequest = serde_json::from_value(Value::Object(body))
        .map_err(|error| BadRequest::new(None, format!("Invalid completions request: {error}.")))?;
    check_stream_and_n(request.stream, request.n)?;
    request.validate().map_err(invalid)?;
    Ok(request)
}

/// A chat request, or what is wrong with it.
fn parse_chat(body: serde_json::Map<String, Value>) -> Result<ChatRequest, BadRequest> {
    let request: ChatRequest = serde_json::from_value(Value::Object(body)).map_err(|error| {
        BadRequest::new(None, format!("Invalid chat completion request: {error}."))
    })?;
    check_stream_and_n(request.stream, request.n)?;
    request.validate().map_err(invalid)?;
    Ok(request)
}

/// The `429` of a key's own limits.
fn limit_refusal(
    limit: LimitKind,
    retry_after: Option<Duration>,
    snapshot: &LimitSnapshot,
    requested: u64,
) -> Response<Body> {
    let (kind, state, requested) = match limit {
        LimitKind::Requests => ("requests", snapshot.requests, 1),
        LimitKind::Tokens => ("tokens", snapshot.tokens, requested),
    };
    let (limit_value, used) = state.map_or((0, 0), |s| (s.limit, s.limit - s.remaining));
    let message = match retry_after {
        Some(wait) => format!(
            "Rate limit reached for {kind} per window: Limit {limit_value}, Used {used}, Requested {requested}. Please try again in {}.",
            reply::openai_duration(wait)
        ),
        None => format!(
            "Request too large for {kind} per window: Limit {limit_value}, Requested {requested}. The request can never fit; make it smaller."
        ),
    };
    let mut response = reply::error(
        429,
        ApiErrorBody {
            message: &message,
            kind,
            param: None,
            code: Some("rate_limit_exceeded"),
        },
    );
    reply::set_rate_limit_headers(&mut response, snapshot);
    if let Some(wait) = retry_after {
        reply::set_retry_after(&mut response, wait);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_recognised() {
        assert_eq!(
            Route::of(&Method::POST, "/v1/chat/completions"),
            Route::OpenAi(Api::Chat)
        );
        assert_eq!(
            Route::of(&Method::POST, "/openai/deployments/gpt4o/chat/completions"),
            Route::Azure {
                deployment: "gpt4o".into(),
                api: Api::Chat
            }
        );
        assert_eq!(
            Route::of(&Method::POST, "/openai/deployments/emb/embeddings"),
            Route::Azure {
                deployment: "emb".into(),
                api: Api::Embeddings
            }
        );
        assert_eq!(
            Route::of(&Method::POST, "/v1/embeddings"),
            Route::OpenAi(Api::Embeddings)
        );
        assert_eq!(
            Route::of(&Method::GET, "/v1/chat/completions"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            Route::of(&Method::POST, "/openai/deployments//chat/completions"),
            Route::NotFound
        );
        assert_eq!(
            Route::of(&Method::POST, "/v1/completions"),
            Route::OpenAi(Api::Completions)
        );
        assert_eq!(Route::of(&Method::POST, "/v1/moderations"), Route::NotFound);
        assert_eq!(
            Route::of(&Method::POST, "/openai/deployments/a/b/embeddings"),
            Route::NotFound
        );
    }

    #[test]
    fn query_params_are_found() {
        assert_eq!(
            query_param(Some("a=1&api-version=2024-10-21"), "api-version"),
            Some("2024-10-21")
        );
        assert_eq!(query_param(Some("api-version"), "api-version"), Some(""));
        assert_eq!(query_param(None, "api-version"), None);
    }
}
