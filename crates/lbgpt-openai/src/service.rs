//! [`OpenAiService`]: chat completions, embeddings and legacy completions against OpenAI or a
//! compatible server.

use crate::config::OpenAiConfig;
use crate::transport::{Endpoint, EndpointRequest, HttpCaller, PerEndpoint};
use futures::future::BoxFuture;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use lbgpt_core::{
    ChatRequest, ChatResponse, CompletionRequest, CompletionResponse, EmbeddingRequest,
    EmbeddingResponse, Error, Result,
};
use secrecy::ExposeSecret;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The `OpenAI-Organization` header.
pub const OPENAI_ORGANIZATION: HeaderName = HeaderName::from_static("openai-organization");
/// The `OpenAI-Project` header.
pub const OPENAI_PROJECT: HeaderName = HeaderName::from_static("openai-project");

/// Chat completions (`POST {base_url}/chat/completions`), embeddings (`{base_url}/embeddings`)
/// and legacy completions (`{base_url}/completions`) as a [`tower::Service`] of
/// [`ChatRequest`], [`EmbeddingRequest`] and [`CompletionRequest`] (any
/// [`EndpointRequest`]).
///
/// One pooled HTTP client per service; cloning is cheap (an `Arc`) and clones share the pool.
/// Always ready. Each call validates the request, serialises it once and sends it; the answer's
/// [`ResponseMeta`](lbgpt_core::ResponseMeta) gets the member name, `attempts = 1`, latency,
/// rate-limit headers and request id. Errors are typed ([`Error::Api`], [`Error::Decode`],
/// [`Error::Transport`], [`Error::Timeout`], [`Error::InvalidRequest`]) and never contain the
/// API key.
#[derive(Clone)]
pub struct OpenAiService {
    inner: Arc<Inner>,
}

struct Inner {
    caller: HttpCaller,
    urls: PerEndpoint<reqwest::Url>,
}

impl OpenAiService {
    /// Builds the service: parses the base URL, prepares the headers and the pooled client.
    ///
    /// Fails with [`Error::Config`] on a bad base URL, header or proxy.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let urls = PerEndpoint::try_new(|endpoint| endpoint_url(&config.base_url, endpoint))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &config.api_key {
            let mut value = HeaderValue::try_from(format!("Bearer {}", key.expose_secret()))
                .map_err(|_| {
                    Error::Config("the API key holds characters not allowed in a header".into())
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in [
            (OPENAI_ORGANIZATION, &config.organization),
            (OPENAI_PROJECT, &config.project),
        ] {
            if let Some(value) = value {
                let value = HeaderValue::from_str(value).map_err(|_| {
                    Error::Config(format!(
                        "invalid value for header {name} (only visible ASCII is allowed)"
                    ))
                })?;
                headers.insert(name, value);
            }
        }
        let client = config.http.build_client(headers)?;
        let caller = HttpCaller::new(
            client,
            config.name.as_str(),
            config.api_key,
            config.http.timeouts(),
        );
        Ok(OpenAiService {
            inner: Arc::new(Inner { caller, urls }),
        })
    }

    /// The member name put into answers.
    pub fn name(&self) -> &str {
        self.inner.caller.member()
    }

    /// The URL chat requests are sent to.
    pub fn url(&self) -> &str {
        self.endpoint_url(Endpoint::ChatCompletions)
    }

    /// The URL requests for `endpoint` are sent to.
    pub fn endpoint_url(&self, endpoint: Endpoint) -> &str {
        self.inner.urls.get(endpoint).as_str()
    }

    /// Sends one chat completion (the same as calling the service).
    pub fn chat(&self, request: ChatRequest) -> BoxFuture<'static, Result<ChatResponse>> {
        self.send(request)
    }

    /// Sends one embeddings request (the same as calling the service).
    pub fn embeddings(
        &self,
        request: EmbeddingRequest,
    ) -> BoxFuture<'static, Result<EmbeddingResponse>> {
        self.send(request)
    }

    /// Sends one legacy completions request (the same as calling the service).
    pub fn completions(
        &self,
        request: CompletionRequest,
    ) -> BoxFuture<'static, Result<CompletionResponse>> {
        self.send(request)
    }

    /// Validates and serialises `request`, then POSTs it to its endpoint.
    pub fn send<R: EndpointRequest>(&self, request: R) -> BoxFuture<'static, Result<R::Response>> {
        let started = Instant::now();
        let body = match self.inner.caller.prepare(&request) {
            Ok(body) => body,
            Err(err) => return Box::pin(futures::future::ready(Err(err))),
        };
        let keep_body = request.options().keep_body;
        drop(request);
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let url = inner.urls.get(R::ENDPOINT).clone();
            inner.caller.post_json(url, body, started, keep_body).await
        })
    }
}

/// `{base_url}/{endpoint path}`, tolerating a trailing slash.
fn endpoint_url(base_url: &str, endpoint: Endpoint) -> Result<reqwest::Url> {
    let joined = format!(
        "{}/{}",
        base_url.trim().trim_end_matches('/'),
        endpoint.path()
    );
    let url = reqwest::Url::parse(&joined).map_err(|err| {
        Error::Config(format!(
            "invalid base URL {:?}: {err}",
            lbgpt_core::redact_url(base_url)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "invalid base URL {:?}: the scheme must be http or https",
            lbgpt_core::redact_url(base_url)
        )));
    }
    Ok(url)
}

impl<R: EndpointRequest> tower::Service<R> for OpenAiService {
    type Response = R::Response;
    type Error = Error;
    type Future = BoxFuture<'static, Result<R::Response>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.send(request)
    }
}

impl fmt::Debug for OpenAiService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiService")
            .field("url", &lbgpt_core::redact_url(self.url()))
            .field("caller", &self.inner.caller)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_joins_with_or_without_slash() {
        for base in ["http://h:1/v1", "http://h:1/v1/", " http://h:1/v1// "] {
            assert_eq!(
                endpoint_url(base, Endpoint::ChatCompletions)
                    .expect("valid")
                    .as_str(),
                "http://h:1/v1/chat/completions"
            );
            assert_eq!(
                endpoint_url(base, Endpoint::Embeddings)
                    .expect("valid")
                    .as_str(),
                "http://h:1/v1/embeddings"
            );
            assert_eq!(
                endpoint_url(base, Endpoint::Completions)
                    .expect("valid")
                    .as_str(),
                "http://h:1/v1/completions"
            );
        }
        assert!(matches!(
            endpoint_url("nope", Endpoint::Embeddings),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            endpoint_url("ftp://h/v1", Endpoint::ChatCompletions),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let config = OpenAiConfig::new()
            .api_key("sk-debug-secret")
            .base_url("http://127.0.0.1:9/v1")
            .header("x-other-key", "hdr-secret");
        let service = OpenAiService::new(config.clone()).expect("valid config");
        for text in [format!("{config:?}"), format!("{service:?}")] {
            assert!(!text.contains("sk-debug-secret"), "{text}");
            assert!(!text.contains("hdr-secret"), "{text}");
        }
    }

    #[test]
    fn bad_key_characters_are_a_config_error_without_the_key() {
        let err = OpenAiService::new(OpenAiConfig::new().api_key("sk-a\nb-secret"))
            .expect_err("newline in key");
        assert!(matches!(err, Error::Config(_)));
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
